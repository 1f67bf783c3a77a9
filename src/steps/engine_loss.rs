//! What a run does when the Docker engine goes away under one of its steps (a restart of the
//! daemon stops every container and breaks every stream): wait for it to answer again, then do
//! the step again; or, when it does not come back, give the reason for the failure sentence.
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::docker::engine_watch::EngineWatch;
use crate::docker::{Engine, Health};

/// More restarts than this in one run is no longer a restart to ride out.
const MAX_LOSSES: u32 = 3;

/// The run's watch on the engine and how long it waits for the engine to come back.
pub(crate) struct EngineLoss {
    pub(crate) watch: EngineWatch,
    pub(crate) wait: Duration,
    handled: AtomicU32,
}

/// After a step failed.
pub(crate) enum After {
    /// The engine went away and is back: do the step again.
    Again,
    /// The engine did not go away: the failure is the step's own.
    NotEngine,
    /// The engine went away and stayed away (or went away too often): why, in a phrase.
    Gone(String),
}

impl EngineLoss {
    pub(crate) fn start(engine: &Engine, wait: Option<Duration>) -> EngineLoss {
        EngineLoss {
            watch: EngineWatch::start(engine),
            wait: wait.unwrap_or(crate::docker::engine_watch::DEFAULT_WAIT),
            handled: AtomicU32::new(0),
        }
    }

    /// A mark taken before a step, for `after_failure`.
    pub(crate) fn mark(&self) -> u32 {
        self.watch.mark()
    }

    /// A step (`what`, e.g. "the pull") failed: whether because the engine went away since
    /// `mark`; if so, waits for it and says so through `say`.
    pub(crate) async fn after_failure(
        &self,
        mark: u32,
        what: &str,
        say: &(dyn Fn(String) + Sync),
    ) -> After {
        if !self.watch.went_away_since(mark).await {
            return After::NotEngine;
        }
        let n = self.handled.fetch_add(1, Ordering::SeqCst) + 1;
        if n > MAX_LOSSES {
            return After::Gone(format!(
                "the Docker engine went away during {what}, the {} time in this run; hoist does not try again",
                ordinal(n)
            ));
        }
        let secs = self.wait.as_secs();
        say(format!(
            "the Docker engine went away during {what} (it was restarted or stopped); waiting up to {secs} s for it to answer again"
        ));
        tracing::warn!("the Docker engine went away during {what}");
        match self.watch.wait_back(self.wait).await {
            Some(took) => {
                say(format!(
                    "the Docker engine answers again (after {:.1} s); {what} starts again",
                    took.as_secs_f64()
                ));
                After::Again
            }
            None => After::Gone(format!(
                "the Docker engine went away during {what} and did not answer again within {secs} s (`sudo systemctl status docker` says why)"
            )),
        }
    }

    /// Waits until each of `services`' containers runs, and is healthy where it has a
    /// healthcheck (the daemon starts them again by their restart policy), at most the wait.
    pub(crate) async fn services_back(
        &self,
        engine: &Engine,
        project: &str,
        services: &[String],
    ) -> Result<(), String> {
        let began = Instant::now();
        loop {
            let mut waiting = Vec::new();
            match crate::docker::stack_containers(engine, project).await {
                Ok(containers) => {
                    for s in services {
                        let mine: Vec<_> = containers.iter().filter(|c| &c.service == s).collect();
                        let ok = !mine.is_empty()
                            && mine.iter().all(|c| {
                                c.is_running() && c.health.is_none_or(|h| h == Health::Healthy)
                            });
                        if !ok {
                            waiting.push(match mine.first() {
                                Some(c) => format!(
                                    "{s} is {}{}",
                                    c.state,
                                    c.health.map(|h| format!(", {h}")).unwrap_or_default()
                                ),
                                None => format!("{s} has no container"),
                            });
                        }
                    }
                }
                Err(e) => waiting.push(e.to_string()),
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if began.elapsed() >= self.wait {
                return Err(format!(
                    "after the Docker engine came back, {} within {} s",
                    waiting.join(", "),
                    self.wait.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn ordinal(n: u32) -> String {
    match n {
        1 => "first".into(),
        2 => "second".into(),
        3 => "third".into(),
        n => format!("{n}th"),
    }
}
