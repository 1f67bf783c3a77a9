//! The wizard's loop: one `tokio::select!` over the terminal's keys, the engine's events (its
//! questions among them), and the engine's end; the screen is drawn only when something changed, at most
//! about 30 times a second, so an idle wizard costs nothing and a log flood does not flood a
//! slow SSH link.
use crate::context::Context;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use ratatui::crossterm::event::{
    Event as TermEvent, EventStream, KeyCode, KeyEventKind, KeyModifiers,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::facts::starting_state;
use super::state::{Available, BackupEntry, Command, Key, Msg, State, update};
use super::view::{Theme, render};
use crate::run::{Event, Reply, Step, StepStatus};
use crate::upgrade::{PathMode, Request};

const FRAME: Duration = Duration::from_millis(33);

fn key_of(event: &TermEvent) -> Option<Key> {
    let TermEvent::Key(k) = event else {
        return None;
    };
    if k.kind == KeyEventKind::Release {
        return None;
    }
    Some(match k.code {
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Esc => Key::Esc,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        _ => return None,
    })
}

/// Nobody is at the terminal any more (it hung up, or hoist was signalled to end): leave the
/// screen, and let the engine carry the run to its next safe point alone — it decides by
/// itself only what loses nothing. Returns the run's exit code once it ends.
async fn detach(
    stop: &crate::run::Stop,
    pending: Option<Reply>,
    events: &mut mpsc::UnboundedReceiver<Event>,
    engine: Option<tokio::task::JoinHandle<crate::run::Finished>>,
    why: &str,
) -> u8 {
    // Detached first: a question answered "no" below is then read as "nobody to ask".
    stop.detach();
    tracing::warn!("the wizard lost its terminal ({why}): carrying on to the next safe point");
    if let Some(reply) = pending {
        reply.send(false);
    }
    // Questions already asked, and any asked later, are answered no: nobody is there (a
    // question dropped unanswered is a no). Nothing is drawn any more, so no event is kept.
    events.close();
    while let Ok(event) = events.try_recv() {
        if let Event::Ask { reply, .. } = event {
            reply.send(false);
        }
    }
    // try_restore: restore() reports a failure on stderr, which panics on a hung-up tty.
    let _ = ratatui::try_restore();
    match engine {
        Some(handle) => {
            let code = handle.await.map(|f| {
                tracing::info!(
                    exit_code = f.exit_code,
                    "the run ended unattended: {}",
                    f.sentence
                );
                f.exit_code
            });
            code.unwrap_or(1)
        }
        None => 0,
    }
}

/// Runs the wizard on the stack of `ctx`; returns the exit code (README, Exit codes).
pub async fn run(ctx: &Context) -> u8 {
    let mut state = match starting_state(ctx).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hoist: {e}");
            return 2;
        }
    };
    let theme = Theme {
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let mut terminal = ratatui::init();
    let code = drive(ctx, &mut state, theme, &mut terminal).await;
    // try_restore: restore() reports a failure on stderr, which panics on a hung-up tty.
    let _ = ratatui::try_restore();
    // Likewise the terminal's drop, when it cannot show the cursor again: on a hung-up tty
    // there is nothing left to restore, so it is not dropped.
    if terminal.show_cursor().is_err() {
        std::mem::forget(terminal);
    }
    if let super::state::Phase::Finished { sentence, .. } = &state.phase {
        // The terminal may have hung up: a failed write is not worth a panic.
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "hoist: {sentence}");
        // Printed whole here, where the terminal wraps it as it likes: copied from the
        // wizard's screen, a command wider than it would come in pieces.
        if let Some(copy) = &state.copy_command {
            let _ = writeln!(
                std::io::stdout(),
                "Copy the backup to your own computer (run this there):\n  {copy}"
            );
        }
    }
    code
}

async fn drive(
    ctx: &Context,
    state: &mut State,
    theme: Theme,
    terminal: &mut ratatui::DefaultTerminal,
) -> u8 {
    let mut keys = EventStream::new();
    // From here a hangup, SIGTERM or SIGINT no longer ends the process: they end the screen.
    let mut signals = crate::signals::Signals::listen().ok();
    let (event_tx, mut event_rx) = mpsc::unbounded_channel();
    // The reply to the engine's question on screen; `Command::Answer` sends it.
    let mut pending: Option<Reply> = None;
    let mut engine: Option<tokio::task::JoinHandle<crate::run::Finished>> = None;
    let stop = crate::run::Stop::default();
    let mut step_clock = Instant::now();
    let mut next_tick = Instant::now();
    let mut next_look = Instant::now() + Duration::from_secs(1);
    let mut exit_code = 0u8;
    // What the home looks up once it is on screen (the journal, the rollback's planner).
    let mut home: Option<tokio::task::JoinHandle<Msg>> = Some(spawn_home(ctx, state));
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let lost = loop {
        // Whether the terminal is still there, once a second, here as well as in the select
        // below: a hung-up tty can keep the key reader ready with non-keys for ever, and the
        // biased select would then never reach its own look (seen in CI: the engine's question
        // went unanswered and the run never ended).
        if Instant::now() >= next_look {
            next_look = Instant::now() + Duration::from_secs(1);
            use std::io::IsTerminal;
            if !std::io::stdout().is_terminal() {
                break "the terminal went away".to_string();
            }
        }
        if dirty && last_draw.elapsed() >= FRAME {
            if engine.is_some() {
                update(state, Msg::Tick(step_clock.elapsed().as_secs()));
            }
            // A terminal that cannot be drawn on is gone (EIO once hung up), whether or not
            // its SIGHUP arrives: the wizard draws at least once a second while a run goes on.
            if let Err(e) = terminal.draw(|f| render(state, theme, f)) {
                break format!("drawing failed: {e}");
            }
            last_draw = Instant::now();
            dirty = false;
        }
        let next_draw = last_draw + FRAME;
        // Biased: a hangup is looked at first.
        let msg = tokio::select! {
            biased;
            // A hangup first: a dying terminal may keep the key reader busy with non-keys.
            ending = async {
                match signals.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                break format!("{ending:?}");
            }
            key = keys.next() => match key {
                Some(Ok(TermEvent::Resize(_, _))) => { dirty = true; continue; }
                Some(Ok(ev)) => match key_of(&ev) { Some(k) => Msg::Key(k), None => continue },
                // The terminal is gone (EIO on the tty).
                Some(Err(_)) | None => break "the terminal stopped answering".to_string(),
            },
            Some(event) = event_rx.recv() => {
                match &event {
                    Event::StepStarted { .. } => step_clock = Instant::now(),
                    // The state shows the question; the answer goes back on its reply.
                    Event::Ask { reply, .. } => pending = Some(reply.clone()),
                    _ => {}
                }
                Msg::Engine(event)
            }
            finished = async {
                match engine.as_mut() {
                    Some(handle) => handle.await,
                    None => std::future::pending().await,
                }
            }, if engine.is_some() => {
                engine = None;
                // Let the last events in before the end is shown.
                while let Ok(event) = event_rx.try_recv() {
                    update(state, Msg::Engine(event));
                }
                let (code, msg) = ended(ctx, state, finished);
                exit_code = code;
                msg
            }
            looked = async {
                match home.as_mut() {
                    Some(handle) => handle.await,
                    None => std::future::pending().await,
                }
            }, if home.is_some() => {
                home = None;
                match looked {
                    Ok(msg) => msg,
                    Err(_) => continue,
                }
            }
            // The step's timer, once a second while the engine runs (an idle wizard sleeps).
            _ = tokio::time::sleep_until(next_tick), if engine.is_some() => {
                next_tick = Instant::now() + Duration::from_secs(1);
                dirty = true;
                continue;
            }
            _ = tokio::time::sleep_until(next_draw), if dirty => continue,
            // Once a second, whether the terminal is still there: a hung-up tty fails every
            // ioctl, even when its hangup signal went astray and the key reader only sees
            // "nothing to read" (seen under load: the wizard would wait for ever).
            _ = tokio::time::sleep_until(next_look) => {
                next_look = Instant::now() + Duration::from_secs(1);
                use std::io::IsTerminal;
                if !std::io::stdout().is_terminal() {
                    break "the terminal went away".to_string();
                }
                continue;
            }
        };
        dirty = true;
        let commands = update(state, msg);
        if state.copy_command.is_none()
            && let Some(dir) = &state.backup_dir
        {
            state.copy_command = Some(crate::steps::backup::copy_command(std::path::Path::new(
                dir,
            )));
        }
        for command in commands {
            match command {
                Command::Quit => return exit_code,
                Command::Answer(yes) => {
                    if let Some(reply) = pending.take() {
                        reply.send(yes);
                    }
                }
                Command::RehearseFirst => {
                    if let Some(reply) = pending.take() {
                        reply.answer(crate::run::Answer::RehearseFirst);
                    }
                }
                Command::Stop => stop.request(),
                Command::AcceptNow => stop.accept_now(),
                Command::RollBackNow => stop.roll_back_now(),
                Command::History => {
                    let out = crate::report::history::run(ctx).await;
                    let text = if out.exit_code == 0 {
                        out.text
                    } else {
                        out.errors
                    };
                    update(
                        state,
                        Msg::History(text.lines().map(str::to_string).collect()),
                    );
                }
                // Back to the home, everything read again (what runs now, the journal).
                Command::Home => match starting_state(ctx).await {
                    Ok(fresh) => {
                        *state = fresh;
                        home = Some(spawn_home(ctx, state));
                    }
                    Err(e) => tracing::warn!("the home could not be read again: {e}"),
                },
                // An upgrade (or the continuation of an interrupted one), a rollback, a
                // backup, a restore.
                command => {
                    if let Some(handle) = spawn_engine(ctx, command, &event_tx, &stop) {
                        engine = Some(handle);
                    }
                }
            }
        }
    };
    // Stop reading the terminal first: on a hung-up tty every read fails at once, and the
    // key reader would spin.
    drop(keys);
    detach(&stop, pending.take(), &mut event_rx, engine.take(), &lost).await
}

/// The engine's end turned into the wizard's: its exit code and the message that shows it.
fn ended(
    ctx: &Context,
    state: &mut State,
    finished: Result<crate::run::Finished, tokio::task::JoinError>,
) -> (u8, Msg) {
    match finished {
        Ok(f) => {
            let evidence = f.summary.evidence();
            state.downtime_ms = f.summary.downtime_ms();
            if let Some(run) = f.summary.run_id() {
                state.record = Some(format!(
                    "Record:   `{} history` (run {run}); log {}",
                    ctx.hoist,
                    ctx.state_dir.join("hoist.log").display()
                ));
            }
            (
                f.exit_code,
                Msg::Finished {
                    exit_code: f.exit_code,
                    sentence: f.sentence,
                    evidence,
                },
            )
        }
        Err(e) => (
            1,
            Msg::Finished {
                exit_code: 1,
                sentence: format!("the upgrade stopped unexpectedly: {e}"),
                evidence: BTreeMap::new(),
            },
        ),
    }
}

/// The home's facts that take a moment, looked up on their own task.
fn spawn_home(ctx: &Context, state: &State) -> tokio::task::JoinHandle<Msg> {
    let (ctx, project) = (ctx.clone(), state.project.clone());
    let backup_root = std::path::PathBuf::from(state.start.backup_root.clone().unwrap_or_default());
    tokio::spawn(async move {
        let (last_upgrade, journal, failed) =
            super::facts::journal_facts(&ctx, &project, &backup_root).await;
        let backups = match restore_engine(&ctx, RestoreCall::List, None).await {
            RestoreReply::Backups(b) => b,
            RestoreReply::Finished(_) => Available::Not("the backups cannot be listed".into()),
        };
        Msg::Home {
            last_upgrade,
            journal,
            backups,
            failed,
        }
    })
}

/// The engine a command starts, on its own task: an upgrade, the continuation of an
/// interrupted one (with its backup), a rollback, a backup, a restore. None for other commands.
fn spawn_engine(
    ctx: &Context,
    command: Command,
    event_tx: &mpsc::UnboundedSender<Event>,
    stop: &crate::run::Stop,
) -> Option<tokio::task::JoinHandle<crate::run::Finished>> {
    let (ctx, events) = (ctx.clone(), event_tx.clone());
    let (to, resume) = match command {
        Command::Rollback => {
            return Some(tokio::spawn(async move { roll_back(&ctx, &events).await }));
        }
        Command::Backup => return Some(tokio::spawn(async move { back_up(&ctx, &events).await })),
        Command::Restore(dir) => {
            return Some(tokio::spawn(async move {
                match restore_engine(
                    &ctx,
                    RestoreCall::Restore(PathBuf::from(dir)),
                    Some(&events),
                )
                .await
                {
                    RestoreReply::Finished(f) => f,
                    RestoreReply::Backups(_) => refused("the restore did not run"),
                }
            }));
        }
        Command::Resume { run, to } => (to, Some(run)),
        Command::Upgrade(to) => (to, None),
        _ => return None,
    };
    let stop = stop.clone();
    Some(tokio::spawn(async move {
        let request = Request {
            to,
            dry_run: false,
            path: PathMode::Steps,
            stop,
            resume,
            rehearse: false,
            offer_rehearsal: true,
        };
        crate::recovery::upgrade(&ctx, &request, &events).await
    }))
}

/// A run that did not start: exit 3 and why, nothing changed.
fn refused(sentence: &str) -> crate::run::Finished {
    crate::run::Finished {
        exit_code: 3,
        sentence: format!("{sentence}. Nothing was changed."),
        summary: crate::run::Summary::Rollback(serde_json::json!({
            "type": "summary", "outcome": "refused", "exit_code": 3, "error": sentence,
        })),
    }
}

/// `hoist rollback`, as the home and a run that needs the user offer it: the last upgrade
/// found again (the journal may have changed since the home was drawn), then rolled back by
/// the planner. A restore asks for its word through the engine, with what it takes away now.
async fn roll_back(ctx: &Context, events: &mpsc::UnboundedSender<Event>) -> crate::run::Finished {
    let (_, view) = match crate::probe::facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(e) => return refused(&e.to_string()),
    };
    let journal = match crate::journal::Journal::open(&ctx.state_dir).await {
        Ok(j) => j,
        Err(e) => return refused(&e.to_string()),
    };
    let finished =
        match crate::rollback::find_target(&journal, &view.project, None, &view.backup_dir).await {
            Ok(target) => crate::rollback::run(
                ctx,
                &target,
                events,
                Some(&journal),
                crate::rollback::Consent::Ask,
            )
            .await
            .erased(),
            Err(e) => refused(&e),
        };
    journal.close().await;
    finished
}

/// `hoist backup`, its progress said as the backup step's: where it is, its files, and the
/// command to copy it off the server, on the wizard's end screen.
async fn back_up(ctx: &Context, events: &mpsc::UnboundedSender<Event>) -> crate::run::Finished {
    let send = |event: Event| {
        let _ = events.send(event);
    };
    send(Event::StepStarted {
        step: Step::Backup,
        what: "database dump and data archives, then checked".into(),
    });
    let started = std::time::Instant::now();
    let say = |line: &str| {
        let _ = events.send(Event::Progress {
            step: Step::Backup,
            message: line.to_string(),
        });
    };
    let out = crate::report::backup::run(ctx, Some(&say)).await;
    let summary = out.events.last().cloned().unwrap_or_default();
    let ok = out.exit_code == 0;
    let dir = summary["backup"].as_str().map(str::to_string);
    if let Some(dir) = dir.as_ref().filter(|_| ok) {
        send(Event::BackupDone {
            dir: dir.into(),
            files: manifest_files(&summary["files"]),
            total_bytes: summary["total_bytes"].as_u64().unwrap_or(0),
        });
    }
    let sentence = if ok {
        format!(
            "the backup is taken and checked: {}",
            dir.as_deref().unwrap_or("")
        )
    } else {
        out.errors.trim().trim_start_matches("hoist: ").to_string()
    };
    send(Event::StepFinished {
        step: Step::Backup,
        status: if ok {
            StepStatus::Done
        } else {
            StepStatus::Failed
        },
        ms: started.elapsed().as_millis() as u64,
        message: if ok { dir } else { Some(sentence.clone()) },
    });
    crate::run::Finished {
        exit_code: out.exit_code,
        sentence,
        summary: crate::run::Summary::Rollback(summary),
    }
}

/// A backup's files as its summary lists them.
fn manifest_files(files: &serde_json::Value) -> Vec<crate::backup::ManifestFile> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    files
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| crate::backup::ManifestFile {
                    name: text(&f["name"]).unwrap_or_default(),
                    kind: text(&f["kind"]).unwrap_or_default(),
                    size_bytes: f["size_bytes"].as_u64().unwrap_or(0),
                    sha256: text(&f["sha256"]).unwrap_or_default(),
                    source: text(&f["source"]),
                    target: text(&f["target"]),
                    files: f["files"].as_u64(),
                    content_bytes: f["content_bytes"].as_u64(),
                    service: text(&f["service"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the restore entry asks of the engine.
enum RestoreCall {
    /// The backups in the backup dir, for the list.
    List,
    /// Restore the backup in this directory; the user typed the word already.
    Restore(PathBuf),
}

enum RestoreReply {
    Backups(Available<Vec<BackupEntry>>),
    Finished(crate::run::Finished),
}

/// The restore entry's engine calls: the backups in the backup dir (every one with a manifest,
/// of this project, taken before the journal existed too), and the restore of a chosen one,
/// which asks for its word itself with what it takes away.
async fn restore_engine(
    ctx: &Context,
    call: RestoreCall,
    events: Option<&mpsc::UnboundedSender<Event>>,
) -> RestoreReply {
    match call {
        RestoreCall::List => RestoreReply::Backups(match list_backups(ctx).await {
            Err(e) => Available::Not(e),
            Ok(list) if list.is_empty() => Available::Not("no backup in the backup dir".into()),
            Ok(list) => Available::Ready(list),
        }),
        RestoreCall::Restore(dir) => RestoreReply::Finished(match events {
            Some(events) => crate::rollback::run_restore(ctx, &dir, events).await,
            None => refused("the restore had nowhere to report"),
        }),
    }
}

/// This project's backups in the backup dir, newest first, as the list shows them.
async fn list_backups(ctx: &Context) -> Result<Vec<BackupEntry>, String> {
    let (_, view) = crate::probe::facts::load_stack(ctx).map_err(|e| e.to_string())?;
    let known = match crate::journal::Journal::open(&ctx.state_dir).await {
        Ok(journal) => {
            let known = journal.backups(&view.project).await.unwrap_or_default();
            journal.close().await;
            known
        }
        Err(_) => Vec::new(),
    };
    let root = view.backup_dir.clone();
    let listed = tokio::task::spawn_blocking(move || crate::backup::list_backups(&root, &known))
        .await
        .map_err(|e| e.to_string())??;
    Ok(listed
        .into_iter()
        .filter(|b| b.project.as_deref().is_none_or(|p| p == view.project))
        .map(|b| BackupEntry {
            version: b.version,
            date: b
                .taken_at
                .map(|t| t.chars().take(16).collect::<String>().replace('T', " "))
                .unwrap_or_else(|| "(date unknown)".to_string()),
            bytes: b.total_bytes,
            path: b.dir.display().to_string(),
            verified: b.verified,
            note: b.problem.or_else(|| {
                (!b.known)
                    .then(|| "not in hoist's journal: its manifest vouches for it".to_string())
            }),
        })
        .collect())
}
