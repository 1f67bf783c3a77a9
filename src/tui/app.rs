//! The wizard's loop: one `tokio::select!` over the terminal's keys, the engine's events (its
//! questions among them), and the engine's end; the screen is drawn only when something changed, at most
//! about 30 times a second, so an idle wizard costs nothing and a log flood does not flood a
//! slow SSH link.
use crate::context::Context;
use crate::stack::detect::BesideCopy;
use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use ratatui::crossterm::event::{
    Event as TermEvent, EventStream, KeyCode, KeyEventKind, KeyModifiers,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::state::{Command, Key, Msg, State, update};
use super::view::{Theme, render};
use crate::probe::facts;
use crate::run::{Event, Reply};
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

/// The start screen's words about the stack itself (see `Start::about`).
fn about(stack: &crate::stack::Stack, view: &facts::StackView) -> Vec<String> {
    let mut out = Vec::new();
    if view.pin_unknown.is_none() {
        out.push(format!(
            "Version in {}{}.",
            view.pin_place,
            if view.moving {
                " (a moving tag, not a pin: hoist pins an exact version)"
            } else {
                ""
            }
        ));
    }
    if let Some(db) = &stack.detection.database {
        out.push(format!(
            "Database {} (service {}), known by {}.",
            db.kind.name(),
            db.service,
            db.how
        ));
    } else if let Some(seen) = &view.unsupported_database {
        out.push(format!(
            "Database {} (service {}): hoist cannot back it up.",
            seen.kind, seen.service
        ));
    }
    let names = |left_out: bool| -> Vec<&str> {
        view.beside
            .iter()
            .filter(|b| (b.copy == BesideCopy::LeftOut) == left_out)
            .map(|b| b.service.as_str())
            .collect()
    };
    let copied = names(false);
    if !copied.is_empty() {
        out.push(format!(
            "Backed up beside the app: the data of {}.",
            copied.join(", ")
        ));
    }
    let left_out = names(true);
    if !left_out.is_empty() {
        out.push(format!(
            "Not backed up (x-hoist leave_out): the data of {}.",
            left_out.join(", ")
        ));
    }
    out
}

/// The start screen's facts: what runs, how healthy, and the newer versions.
async fn starting_state(ctx: &Context) -> Result<State, String> {
    let (stack, view) = facts::load_stack(ctx).map_err(|e| e.to_string())?;
    let pinned = stack.detection.version.value.clone();
    let facts = facts::gather(ctx, view).await;
    let services = crate::probe::services::services(&facts);
    let running = crate::probe::services::running_version(&services);
    let mut state = State::new(&facts.view.project, pinned.as_deref().unwrap_or("?"), "");
    state.start.attention = crate::resume::check(&ctx.state_dir, &facts.view.project).await;
    state.start.pinned = pinned.clone();
    state.start.running = running.clone();
    state.start.about = about(&stack, &facts.view);
    state.start.services = services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.version.clone().unwrap_or_default(),
                s.state_words(),
            )
        })
        .collect();
    let image = crate::stack::targets::target_images(&stack, pinned.as_deref().unwrap_or("latest"))
        .ok()
        .and_then(|i| i.into_values().next());
    match image {
        Some(image) => {
            match crate::versions::overview(&image, pinned.as_deref(), running.as_deref()).await {
                Ok(o) => {
                    state.start.selected = o
                        .next
                        .as_ref()
                        .and_then(|n| o.newer.iter().position(|v| v == n))
                        .unwrap_or(0);
                    state.start.choices = o.newer;
                    state.start.next = o.next;
                }
                Err(e) => {
                    state.start.note = Some(format!(
                        "The registry's versions could not be read ({e}). Type the version to upgrade to."
                    ))
                }
            }
        }
        None => {
            state.start.note = Some(match &stack.detection.version.site {
                crate::stack::detect::Site::Unknown { reason } => {
                    format!("hoist cannot tell where the app's version is written: {reason}.")
                }
                _ => "No service's image uses the version variable.".into(),
            })
        }
    }
    Ok(state)
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
    let mut exit_code = 0u8;
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let lost = loop {
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
            // The step's timer, once a second while the engine runs (an idle wizard sleeps).
            _ = tokio::time::sleep_until(next_tick), if engine.is_some() => {
                next_tick = Instant::now() + Duration::from_secs(1);
                dirty = true;
                continue;
            }
            _ = tokio::time::sleep_until(next_draw), if dirty => continue,
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
                Command::Stop => stop.request(),
                // A rollback, an upgrade, or the continuation of an interrupted one.
                command @ (Command::Rollback | Command::Upgrade(_) | Command::Resume { .. }) => {
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
                    "Record:   `hoist history` (run {run}); log {}",
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

/// The engine a command starts, on its own task: a rollback, an upgrade, or the continuation of
/// an interrupted one (with its backup). None for other commands.
fn spawn_engine(
    ctx: &Context,
    command: Command,
    event_tx: &mpsc::UnboundedSender<Event>,
    stop: &crate::run::Stop,
) -> Option<tokio::task::JoinHandle<crate::run::Finished>> {
    let (to, resume) = match command {
        Command::Rollback => {
            let (ctx, events) = (ctx.clone(), event_tx.clone());
            return Some(tokio::spawn(async move {
                crate::rollback::run_last(&ctx, None, &events).await
            }));
        }
        Command::Resume { run, to } => (to, Some(run)),
        Command::Upgrade(to) => (to, None),
        _ => return None,
    };
    let (ctx, events, stop) = (ctx.clone(), event_tx.clone(), stop.clone());
    Some(tokio::spawn(async move {
        let request = Request {
            to,
            dry_run: false,
            path: PathMode::Steps,
            stop,
            resume,
        };
        crate::recovery::upgrade(&ctx, &request, &events).await
    }))
}
