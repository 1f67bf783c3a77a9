//! The backup and the pull, side by side (a pull does not touch the running containers): each
//! done again when the Docker daemon restarts under it. A failed backup ends the run with
//! nothing changed, and says what became of a database that stopped under its dump.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::probe::facts::{self, Facts};
use crate::run::{Event, Run, Step, UpgradeSummary, progress_to};

type Finished = crate::run::Finished<UpgradeSummary>;
use crate::steps::StepError;
use crate::steps::engine_loss::{After, EngineLoss};

/// What the backup and the pull left: the backup (taken now, or the interrupted run's), and
/// how the pull went (its step still open).
pub(super) struct BackedUp {
    pub(super) dir: PathBuf,
    /// The backup taken now; None when the run goes on with an interrupted run's.
    pub(super) taken: Option<crate::backup::Backup>,
    pub(super) pulled: Result<(), StepError>,
    pub(super) pull_step: (Instant, Option<i64>),
}

/// Takes the backup (unless `resume_backup` is given) while the new images download. Err: the
/// backup failed, and the run ends there with `base` as its summary.
#[allow(clippy::too_many_arguments)]
pub(super) async fn backup_and_pull(
    run: &mut Run<'_>,
    facts: &Facts,
    docker: &facts::Running,
    from: &str,
    to_pull: &[String],
    engine_loss: &EngineLoss,
    resume_backup: Option<PathBuf>,
    running_version: Option<&str>,
    estimate_bytes: u64,
    settings: &crate::stack::settings::Settings,
    base: UpgradeSummary,
) -> Result<BackedUp, Finished> {
    let engine = &docker.engine;
    let view = &facts.view;
    // Backup and pull overlap: a pull does not touch the running containers.
    let backup_began = jiff::Timestamp::now();
    let backup_step = run
        .start(Step::Backup, "database dump and data archives")
        .await;
    let pull_step = (Instant::now(), None);
    run.emit(Event::StepStarted {
        step: Step::Pull,
        what: format!("{} image(s) to download", to_pull.len()),
    });
    let pull_timeout = settings.timeout_pull;
    let run_id = run.run_id.clone();
    let record = match (run.journal, run_id.as_deref()) {
        (Some(journal), Some(run_id)) => Some(crate::backup::hold::Recorder { journal, run_id }),
        _ => None,
    };
    let mut source =
        crate::steps::backup::source_from(facts, docker, running_version, estimate_bytes, record);
    if let Some(t) = settings.timeout_stop {
        source.stop_timeout = t;
    }
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let backup_tx = progress_tx.clone();
    // Each future owns its senders (see below), these included.
    let backup_say = progress_to(&progress_tx, Step::Backup);
    let pull_say = progress_to(&progress_tx, Step::Pull);
    let db_service: Vec<String> = view
        .database
        .as_ref()
        .map(|d| vec![d.service.clone()])
        .unwrap_or_default();
    // Each sender lives inside its future, so the forwarder ends when both are done.
    let backup_fut = async {
        let backup_say = backup_say;
        if resume_backup.is_some() {
            return Ok(None);
        }
        take_backup(
            engine,
            &source,
            view,
            engine_loss,
            backup_tx,
            &backup_say,
            &db_service,
        )
        .await
        .map(Some)
    };
    let pull_tx = progress_tx;
    let pull_fut = async move {
        let pull_say = pull_say;
        crate::steps::pull::pull_images(
            engine,
            to_pull,
            engine_loss,
            pull_timeout,
            &pull_tx,
            &pull_say,
        )
        .await
    };
    let forward = async {
        while let Some(event) = progress_rx.recv().await {
            run.emit(event);
        }
    };
    let ((backup, pulled), ()) =
        tokio::join!(async { tokio::join!(backup_fut, pull_fut) }, forward);
    let backup = match backup {
        Ok(None) => {
            let dir = resume_backup.clone().unwrap_or_default();
            backup_resumed(run, backup_step, &dir).await;
            Ok((dir, None))
        }
        Ok(Some(b)) => {
            backup_taken(run, backup_step, &b).await;
            Ok((b.dir.clone(), Some(b)))
        }
        Err(StepError::Own(e)) => {
            let fate = stopped_database(engine, view, backup_began).await;
            let sentence = backup_failure(&e, fate, view, from);
            backup_failed(run, backup_step, base.clone(), sentence).await
        }
        Err(StepError::Engine(why)) => {
            let sentence = format!(
                "the backup could not be taken: {why}. Nothing was changed: .env still pins {from}. Check the stack with `hoist status`, then run the upgrade again."
            );
            backup_failed(run, backup_step, base.clone(), sentence).await
        }
    };
    let (backup_dir, taken) = match backup {
        Ok(b) => b,
        Err(finished) => return Err(finished),
    };
    record_backup(
        run,
        &view.project,
        running_version,
        &backup_dir,
        taken.as_ref(),
    )
    .await;
    Ok(BackedUp {
        dir: backup_dir,
        taken,
        pulled,
        pull_step,
    })
}

/// The Backup step ended on the interrupted run's backup, which goes on.
async fn backup_resumed(run: &mut Run<'_>, backup_step: (Instant, Option<i64>), dir: &Path) {
    run.progress(
        Step::Backup,
        format!(
            "{} was taken by the interrupted run and checked",
            dir.display()
        ),
    );
    run.finish(
        Step::Backup,
        backup_step,
        true,
        Some(dir.display().to_string()),
    )
    .await;
}

/// The Backup step ended on the backup taken now.
async fn backup_taken(
    run: &mut Run<'_>,
    backup_step: (Instant, Option<i64>),
    b: &crate::backup::Backup,
) {
    for p in &b.removed_partials {
        run.progress(
            Step::Backup,
            format!(
                "removed {}: a partial backup left by a hoist that was stopped before it finished",
                p.display()
            ),
        );
    }
    run.emit(Event::BackupDone {
        dir: b.dir.clone(),
        files: b.manifest.files.clone(),
        total_bytes: b.total_bytes,
    });
    run.finish(
        Step::Backup,
        backup_step,
        true,
        Some(b.dir.display().to_string()),
    )
    .await;
}

/// The backup recorded in the journal: as the run's, and (when taken now) as a backup.
async fn record_backup(
    run: &Run<'_>,
    project: &str,
    running_version: Option<&str>,
    backup_dir: &Path,
    taken: Option<&crate::backup::Backup>,
) {
    // Named in the run's record from now on: a kill after this still leaves it known.
    if let (Some(j), Some(id)) = (run.journal, run.run_id.as_deref()) {
        let result = j.set_backup_dir(id, backup_dir).await;
        run.journaled(result, "record the run's backup");
    }
    if let (Some(j), Some(taken)) = (run.journal, taken) {
        let result = crate::steps::backup::journal_backup(
            j,
            run.run_id.as_deref().unwrap_or_default(),
            project,
            running_version,
            taken,
        )
        .await;
        run.journaled(result, "record the backup");
    }
}

/// Takes the backup, sending its progress, and takes it again (a whole new one) when the
/// Docker daemon restarted under it, once the database runs again.
async fn take_backup(
    engine: &crate::docker::Engine,
    source: &crate::backup::Source<'_>,
    view: &facts::StackView,
    engine_loss: &EngineLoss,
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
    say: &(dyn Fn(String) + Sync),
    db_service: &[String],
) -> Result<crate::backup::Backup, StepError> {
    let began = Instant::now();
    let last_read = std::sync::Mutex::new(None::<Instant>);
    let on_backup = move |p: crate::backup::Progress| {
        let event = match p {
            crate::backup::Progress::Note(message) => Event::Progress {
                step: Step::Backup,
                message,
            },
            crate::backup::Progress::Started { part } => Event::Progress {
                step: Step::Backup,
                message: format!("writing {part}"),
            },
            crate::backup::Progress::Read { part, bytes } => {
                let Ok(mut last) = last_read.lock() else {
                    return;
                };
                if last.is_some_and(|t| t.elapsed() < crate::run::PROGRESS_EVERY) {
                    return;
                }
                *last = Some(Instant::now());
                Event::BackupProgress {
                    part,
                    bytes,
                    elapsed_ms: began.elapsed().as_millis() as u64,
                }
            }
            crate::backup::Progress::Finished { part, bytes } => Event::Progress {
                step: Step::Backup,
                message: format!("{part} done ({} read)", crate::units::human_bytes(bytes)),
            },
        };
        let _ = tx.send(event);
    };
    loop {
        let mark = engine_loss.mark();
        let error = match crate::backup::take(engine, source, &view.backup_dir, &on_backup).await {
            Ok(b) => return Ok(b),
            Err(e) => e,
        };
        // The partial backup is already removed; once the database runs again, a whole new
        // backup is taken.
        match engine_loss.after_failure(mark, "the backup", say).await {
            After::NotEngine => return Err(StepError::Own(error.to_string())),
            After::Gone(why) => return Err(StepError::Engine(why)),
            After::Again => {
                engine_loss
                    .services_back(engine, &view.project, db_service)
                    .await
                    .map_err(StepError::Engine)?;
            }
        }
    }
}

/// What became of the database's container while its dump ran.
enum DatabaseFate {
    /// Not running now: "db is exited (exit code 0)".
    Down(String),
    /// Told to stop during the dump and still shutting down after `DB_SETTLE`.
    Stopping(String),
    /// It stopped during the dump and Docker started it again (a restart policy).
    Restarted(String),
}

/// How long a database told to stop may take to shut down before hoist says it is stopping
/// (Docker's own stop timeout is 10 s).
const DB_SETTLE: Duration = Duration::from_secs(30);

/// Whether the database's container stopped while its dump ran (since `began`), or None when
/// it ran throughout. pg_dump's connection is cut as soon as the server begins to shut down,
/// before its container has exited, so a container that Docker was told to stop is watched
/// until it settles rather than judged at the first look.
async fn stopped_database(
    engine: &crate::docker::Engine,
    view: &facts::StackView,
    began: jiff::Timestamp,
) -> Option<DatabaseFate> {
    // An SQLite database has no server to stop under a dump; its service may have been
    // stopped by hoist itself, for the copy.
    let db = view
        .database
        .as_ref()
        .filter(|d| d.kind != crate::db::DbKind::Sqlite)?;
    let service = db.service.as_str();
    let events = crate::docker::events::project_events_between(
        engine,
        &view.project,
        &crate::docker::events::unix_time(began),
        &crate::docker::events::unix_time(jiff::Timestamp::now()),
    )
    .await
    .unwrap_or_else(|e| {
        tracing::warn!("the database's events during the dump: {e}");
        Vec::new()
    });
    let stop_events: Vec<_> = events
        .iter()
        .filter(|e| e.service == service && e.is_stop())
        .collect();
    let deadline = Instant::now() + DB_SETTLE;
    loop {
        let containers = crate::docker::stack_containers(engine, &view.project)
            .await
            .ok()?;
        let c = containers.iter().find(|c| c.service == service)?;
        if !c.is_running() {
            return Some(DatabaseFate::Down(format!(
                "{service} is {} (exit code {})",
                c.state, c.exit_code
            )));
        }
        if stop_events.is_empty() {
            return None;
        }
        // A `die` already seen with the container running again: Docker restarted it.
        if let Some(died) = stop_events.iter().find(|e| e.action == "die") {
            return Some(DatabaseFate::Restarted(format!(
                "{service} stopped during the dump (exit code {}) and Docker started it again",
                died.exit_code
                    .map_or("unknown".to_string(), |c| c.to_string())
            )));
        }
        if Instant::now() >= deadline {
            return Some(DatabaseFate::Stopping(format!(
                "{service} was told to stop during the dump ({}) and still runs {} s later",
                stop_events
                    .iter()
                    .map(|e| e.action.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                DB_SETTLE.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What to tell of a backup that failed: `error`, what became of the database meanwhile, and
/// what to do.
fn backup_failure(
    error: &str,
    fate: Option<DatabaseFate>,
    view: &facts::StackView,
    from: &str,
) -> String {
    let db = view.database.as_ref().map_or("db", |d| d.service.as_str());
    match fate {
        Some(DatabaseFate::Down(state)) => format!(
            "the backup failed: {error}. The database's container is not running now ({state}); hoist did not stop it, and changed nothing: .env still pins {from}. Start it again (`docker compose start {db}`), see why it stopped (`docker compose logs {db}`), then run the upgrade again."
        ),
        Some(DatabaseFate::Stopping(state)) => format!(
            "the backup failed: {error}. The database's container is stopping ({state}); hoist did not stop it, and changed nothing: .env still pins {from}. Once it has stopped, start it again (`docker compose start {db}`), see why it was stopped (`docker compose logs {db}`), then run the upgrade again."
        ),
        Some(DatabaseFate::Restarted(state)) => format!(
            "the backup failed: {error}. The database's container restarted under the dump ({state}); hoist changed nothing: .env still pins {from}. See why it stopped (`docker compose logs {db}`), then run the upgrade again."
        ),
        None => {
            format!("the backup failed: {error}. Nothing was changed: the stack still runs {from}.")
        }
    }
}

/// The backup failed: nothing was changed, the run ends with `sentence`.
async fn backup_failed(
    run: &mut Run<'_>,
    step: (Instant, Option<i64>),
    mut summary: UpgradeSummary,
    sentence: String,
) -> Result<(PathBuf, Option<crate::backup::Backup>), Finished> {
    run.finish(Step::Backup, step, false, Some(sentence.clone()))
        .await;
    summary.error = Some(sentence.clone());
    Err(Finished {
        exit_code: 1,
        sentence,
        summary,
    })
}
