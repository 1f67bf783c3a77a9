//! Services stopped while their files are copied, so that the copy is consistent (an app that
//! keeps SQLite files, a search index beside it), and Redis asked to `SAVE` instead where it
//! answers. A stop is written to the journal before it happens and marked done once the
//! services run again, so a hoist killed in between leaves a record that the next run acts on
//! (`start_left_behind`) and `status` shows.
use std::time::{Duration, Instant};

use super::BackupError;
use crate::docker::{ContainerInfo, Engine, containers, exec};
use crate::journal::Journal;

/// Where a stop is recorded: the journal and the run it belongs to.
#[derive(Clone, Copy)]
pub struct Recorder<'a> {
    pub journal: &'a Journal,
    pub run_id: &'a str,
}

/// Containers stopped for a copy, to be started again with `start_again`.
pub struct Held {
    services: Vec<String>,
    step: Option<i64>,
    /// (id, name) of each container stopped.
    stopped: Vec<(String, String)>,
    /// Each container that did not stop in its time and was killed, with that time: its files
    /// are what a crash leaves.
    pub killed: Vec<(String, u64)>,
    /// A stop that failed may still be under way in Docker: the journal's record stays open,
    /// so the next run starts what ends up stopped.
    keep_open: bool,
    began: Instant,
}

/// The journal's step name for services stopped for the copy: `hold api worker`.
fn step_name(services: &[String]) -> String {
    format!("hold {}", services.join(" "))
}

/// A Swarm task's container cannot be stopped for a copy: Swarm would start another task in
/// its place, writing to the data being copied. Err: the backup's refusal, before anything.
pub fn not_in_swarm(swarm_stack: Option<&str>, services: &[String]) -> Result<(), BackupError> {
    let Some(stack) = swarm_stack else {
        return Ok(());
    };
    let names: Vec<String> = services.iter().map(|s| format!("{stack}_{s}")).collect();
    Err(BackupError::Precondition(format!(
        "a consistent copy of the data of {} needs it stopped, and it runs as a task of Swarm stack {stack}: stopping its container would only make Swarm start another one. hoist does not stop a Swarm service for a copy yet; nothing was changed. By hand: `docker service scale {}` (each to 0), take the backup, then scale each back to its replicas",
        services.join(", "),
        names
            .iter()
            .map(|n| format!("{n}=0"))
            .collect::<Vec<_>>()
            .join(" ")
    )))
}

/// Stops the running containers among `containers` (of `services`), each given `timeout`,
/// after recording the stop. A container that will not stop starts the others again and
/// fails the backup.
pub async fn stop_for_copy(
    engine: &Engine,
    record: Option<Recorder<'_>>,
    services: &[String],
    containers: &[&ContainerInfo],
    timeout: Duration,
) -> Result<Held, BackupError> {
    let step = match record {
        Some(r) => Some(
            r.journal
                .step_started(r.run_id, &step_name(services))
                .await
                .map_err(|e| {
                    BackupError::Precondition(format!(
                        "the journal could not record that {} would be stopped for the copy ({e}), so nothing was stopped",
                        services.join(", ")
                    ))
                })?,
        ),
        None => None,
    };
    let mut held = Held {
        services: services.to_vec(),
        step,
        stopped: Vec::new(),
        killed: Vec::new(),
        keep_open: false,
        began: Instant::now(),
    };
    for c in containers
        .iter()
        .filter(|c| matches!(c.state.as_str(), "running" | "restarting"))
    {
        // The compose file's `stop_grace_period`, when longer, is what the service needs.
        let own = c
            .stop_timeout
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs);
        let timeout = own.map_or(timeout, |own| own.max(timeout));
        let stopped = containers::stop(engine, &c.id, timeout).await;
        // Docker kills what does not stop in time: exit code 137 (SIGKILL).
        if stopped.is_ok() && containers::exit_code(engine, &c.id).await == Some(137) {
            held.killed.push((c.name.clone(), timeout.as_secs()));
        }
        if let Err(e) = stopped {
            held.keep_open = true;
            let again = start_again(engine, record, held).await;
            let also = again.err().map(|a| format!("; {a}")).unwrap_or_default();
            return Err(BackupError::Precondition(format!(
                "{} would not stop for the copy of its data ({e}){also}",
                c.name
            )));
        }
        held.stopped.push((c.id.clone(), c.name.clone()));
    }
    Ok(held)
}

impl Held {
    /// What to say of the containers that were killed rather than stopped, if any.
    pub fn killed_words(&self) -> Option<String> {
        if self.killed.is_empty() {
            return None;
        }
        let names: Vec<String> = self
            .killed
            .iter()
            .map(|(n, s)| format!("{n} (after {s} s)"))
            .collect();
        Some(format!(
            "warning: {} did not stop when asked and Docker killed it: its copy is what a crash leaves (a database recovers from it as from a power cut; set `stop_grace_period` in the compose file if it needs longer to stop)",
            names.join(", ")
        ))
    }
}

/// Starts again what `stop_for_copy` stopped. The journal's record is closed only when every
/// container runs again: one that would not start is left for the next run to start.
pub async fn start_again(
    engine: &Engine,
    record: Option<Recorder<'_>>,
    held: Held,
) -> Result<(), BackupError> {
    let mut failed = Vec::new();
    for (id, name) in &held.stopped {
        if let Err(e) = containers::start(engine, id).await {
            failed.push(format!("{name} ({e})"));
        }
    }
    if !failed.is_empty() {
        return Err(BackupError::Precondition(format!(
            "{} could not be started again after the copy of its data: {}. Start it with `docker compose start {}`",
            held.services.join(", "),
            failed.join(", "),
            held.services.join(" ")
        )));
    }
    if let (Some(r), Some(step)) = (record, held.step.filter(|_| !held.keep_open)) {
        let ms = held.began.elapsed().as_millis() as u64;
        let said = format!("stopped {} ms for the copy", ms);
        if let Err(e) = r.journal.step_finished(step, "done", ms, Some(&said)).await {
            tracing::warn!("the journal could not record that the services run again: {e}");
        }
    }
    Ok(())
}

/// Asks Redis in `container` to write its snapshot now (`redis-cli SAVE`, whose file is
/// replaced whole by a rename, so copying it while Redis runs is consistent). Err: why not.
pub async fn redis_save(engine: &Engine, container: &str) -> Result<(), String> {
    let cmd = ["redis-cli", "SAVE"];
    let (outcome, out) = exec::exec_output(engine, container, &cmd, &[], usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    let said = out.trim().to_string();
    if outcome.exit_code == 0 && said == "OK" {
        Ok(())
    } else {
        Err(format!(
            "redis-cli SAVE answered {:?} (exit code {})",
            if said.is_empty() {
                outcome.stderr.trim().to_string()
            } else {
                said
            },
            outcome.exit_code
        ))
    }
}

/// Where Redis in `container` writes its snapshot (`CONFIG GET dir`), when it says.
pub async fn redis_dir(engine: &Engine, container: &str) -> Option<String> {
    let cmd = ["redis-cli", "CONFIG", "GET", "dir"];
    let (outcome, text) = exec::exec_output(engine, container, &cmd, &[], usize::MAX)
        .await
        .ok()?;
    // The answer is the key's name, then its value.
    let dir = text.lines().nth(1)?.trim().to_string();
    (outcome.exit_code == 0 && dir.starts_with('/')).then_some(dir)
}

/// Starts again the services that a hoist killed during a copy left stopped (`alive` tells
/// whether that hoist still runs), closing each record. Returns a sentence per record: what
/// was started, or what could not be and what to do.
pub async fn start_left_behind(
    engine: &Engine,
    journal: &Journal,
    project: &str,
    alive: &(dyn Fn(i64) -> bool + Sync),
) -> Vec<String> {
    let holds = match journal.unfinished_holds(project).await {
        Ok(h) => h,
        Err(e) => return vec![format!("the journal's record of stopped services: {e}")],
    };
    let mut said = Vec::new();
    // A run that ended left them for good; one whose process is gone was killed.
    for hold in holds.into_iter().filter(|h| h.run_ended || !alive(h.pid)) {
        let containers = match crate::docker::stack_containers(engine, project).await {
            Ok(c) => c,
            Err(e) => {
                said.push(format!(
                    "{} stopped for a backup's copy by run {} may still be stopped, and Docker could not be asked ({e}); start it with `docker compose start {}`",
                    hold.services.join(", "),
                    hold.run_id,
                    hold.services.join(" ")
                ));
                continue;
            }
        };
        let mut failed = Vec::new();
        let mut started = Vec::new();
        // Only what stopped after the hold began: not a one-shot job that had finished before.
        let since = hold.started_at.parse::<jiff::Timestamp>().ok();
        let stopped_since = |c: &&crate::docker::ContainerInfo| {
            let ended = c
                .finished_at
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok());
            matches!((since, ended), (Some(s), Some(e)) if e >= s)
        };
        for c in containers
            .iter()
            .filter(|c| hold.services.contains(&c.service) && c.state == "exited")
            .filter(stopped_since)
        {
            match containers::start(engine, &c.id).await {
                Ok(()) => started.push(c.name.clone()),
                Err(e) => failed.push(format!("{} ({e})", c.name)),
            }
        }
        if failed.is_empty() {
            let message = format!("started again by a later hoist: {}", started.join(", "));
            if let Err(e) = journal
                .step_finished(hold.step_id, "done", 0, Some(&message))
                .await
            {
                tracing::warn!("the journal could not close a stop record: {e}");
            }
            if !started.is_empty() {
                said.push(format!(
                    "started {} again: a hoist (run {}) stopped it to copy its data and {} it",
                    started.join(", "),
                    hold.run_id,
                    if hold.run_ended {
                        "could not start"
                    } else {
                        "was killed before it could start"
                    }
                ));
            }
        } else {
            said.push(format!(
                "{} could not be started again after a killed hoist (run {}) stopped it for a backup's copy: {}. Start it with `docker compose start {}`",
                hold.services.join(", "),
                hold.run_id,
                failed.join(", "),
                hold.services.join(" ")
            ));
        }
    }
    said
}
