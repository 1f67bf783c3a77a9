//! The restart: wait for any other `docker compose` at work on the project, run `docker compose
//! up -d` the way the stack was started, follow Docker's container events and the downtime,
//! then watch the upgraded services until they are ready.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::engine_loss::{After, EngineLoss};
use super::watch;
use crate::docker::compose_cli::{self, ComposeInvocation};
use crate::probe::facts;
use crate::run::{Event, Run, Step, progress_to};

/// How long a run waits for a `docker compose` it did not start (as long as hoist gives its own
/// `up -d`).
const OTHER_COMPOSE_WAIT: Duration = Duration::from_secs(600);

/// Waits for the Compose processes changing `project` that hoist did not start (an `up` left
/// by a hoist killed outright runs on), telling the user as progress of `step`. Err: the
/// sentence for a refusal, when they still run after the wait.
pub(crate) async fn wait_for_compose(
    run: &Run<'_>,
    step: Step,
    project: &str,
) -> Result<(), String> {
    let say = progress_to(run.events, step);
    crate::docker::compose_procs::wait_for_others(project, OTHER_COMPOSE_WAIT, &say)
        .await
        .map_err(|others| {
            let list: Vec<String> = others
                .iter()
                .map(|p| format!("pid {}: {}", p.pid, crate::redact::mask(&p.command)))
                .collect();
            format!(
                "a `docker compose` that changes this stack's containers is still running after {} s ({}); hoist changes nothing while another tool does. Nothing was changed. Let it finish (or stop it), then run hoist again",
                OTHER_COMPOSE_WAIT.as_secs(),
                list.join("; ")
            )
        })
}

/// The app restarted and up: what still runs until verification ends.
pub(crate) struct Up {
    downtime: watch::Downtime,
    container_events: tokio::task::JoinHandle<()>,
    /// With `WatchUntil::Up`: the services without a healthcheck still running their window.
    steady: Option<watch::Steady>,
}

impl Up {
    /// A start Docker's container events are not followed for (a Swarm's update, whose tasks
    /// Swarm replaces): only the downtime, measured by `smoke`'s answers.
    pub(crate) fn downtime_only(downtime: watch::Downtime) -> Up {
        Up {
            downtime,
            container_events: tokio::spawn(async {}),
            steady: None,
        }
    }

    /// Stops following; the downtime in ms (see `watch::Downtime::stop`).
    pub(crate) async fn end(self) -> Option<u64> {
        self.container_events.abort();
        self.downtime.stop().await
    }

    /// Until the services without a healthcheck ran their window out (at once when there is
    /// nothing left to wait for).
    pub(crate) async fn held(&mut self) -> Result<(), watch::Failure> {
        match self.steady.take() {
            Some(steady) => steady.held().await,
            None => Ok(()),
        }
    }

    /// Whether services are still running their window.
    pub(crate) fn steadying(&self) -> bool {
        self.steady.is_some()
    }
}

/// Where the watch step ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchUntil {
    /// Ready: services without a healthcheck ran their window out too.
    Ready,
    /// Up: every service runs (healthy where it has a healthcheck); the window goes on,
    /// alongside the checks, until `Up::held`.
    Up,
}

/// Why the restart or the watch failed: the step (started, for the journal), the reason, and
/// the failing containers' last log lines.
pub(crate) struct UpFailed {
    pub(crate) step: Step,
    pub(crate) started: (Instant, Option<i64>),
    pub(crate) reason: String,
    pub(crate) evidence: Option<BTreeMap<String, Vec<String>>>,
    /// The Docker engine went away and did not come back: the release is not to blame.
    pub(crate) engine_gone: bool,
}

/// `docker compose up -d` the way the stack was started (Docker's container events and the
/// downtime followed meanwhile), then the `targets` (service -> image) watched until ready.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn restart_and_watch(
    run: &mut Run<'_>,
    stack: &crate::stack::Stack,
    view: &facts::StackView,
    engine: &crate::docker::Engine,
    targets: &BTreeMap<String, String>,
    version: &str,
    engine_loss: &EngineLoss,
    until: WatchUntil,
) -> Result<Up, UpFailed> {
    let step = run.start(Step::Restart, "docker compose up -d").await;
    let now = jiff::Timestamp::now();
    let restart_started = now.as_second();
    let downtime = watch::Downtime::start(view_smoke(stack));
    let exit_codes = watch::ExitCodes::default();
    let follow = |since: jiff::Timestamp, downtime: &watch::Downtime| {
        follow_containers(
            run.events,
            engine,
            &view.project,
            &crate::docker::events::unix_time(since),
            downtime,
            &exit_codes,
        )
    };
    let container_events = follow(now, &downtime);
    let mut up = Up {
        downtime,
        container_events,
        steady: None,
    };
    let failed = |step: Step, started, reason: String, evidence| UpFailed {
        step,
        started,
        reason,
        evidence,
        engine_gone: false,
    };
    let engine_gone = |step: Step, started, reason: String, evidence| UpFailed {
        engine_gone: true,
        ..failed(step, started, reason, evidence)
    };
    let (invocation, tool) = match compose_up_again(run, view, engine_loss).await {
        Ok(up_done) => up_done,
        Err((reason, gone)) => {
            up.end().await;
            return Err(if gone {
                engine_gone(Step::Restart, step, reason, None)
            } else {
                failed(Step::Restart, step, reason, None)
            });
        }
    };
    run.finish(Step::Restart, step, true, None).await;

    let step = run
        .start(Step::Watch, "following the logs until the app is ready")
        .await;
    let timeout = stack
        .settings
        .timeout_ready
        .unwrap_or(Duration::from_secs(180));
    // Without a healthcheck: running 5 s without a restart, as Docker Swarm's default
    // `--update-monitor` judges a task; verify then checks again that nothing restarted.
    let ready_after = stack.settings.ready_after.unwrap_or(Duration::from_secs(5));
    let mut since = restart_started;
    loop {
        let mark = engine_loss.mark();
        let watching = watch::Watch {
            events: run.events.clone(),
            engine: engine.clone(),
            project: view.project.clone(),
            targets: targets.clone(),
            with_healthcheck: view.with_healthcheck.clone(),
            one_shot: view.one_shot.clone(),
            since,
            timeout,
            ready_after,
            ready_pattern: stack.settings.log_ready.clone(),
            failure_patterns: stack.settings.log_failure.clone(),
            exit_codes: exit_codes.clone(),
            no_dump: view.database.is_none(),
            ready_url: stack
                .detection
                .smoke
                .iter()
                .find(|s| s.url.ends_with("/health/ready") && s.expect == "200")
                .cloned(),
        }
        .start();
        let watched = match until {
            WatchUntil::Ready => watching.ready().await.map(|()| None),
            WatchUntil::Up => watching.up().await,
        };
        let failure = match watched {
            Ok(steady) => {
                up.steady = steady;
                break;
            }
            Err(failure) => failure,
        };
        let say = progress_to(run.events, Step::Watch);
        let reason = match engine_loss
            .after_failure(mark, "the watch of the app's start", &say)
            .await
        {
            After::NotEngine => format!("the app did not come up on {version}: {}", failure.reason),
            After::Gone(why) => {
                up.end().await;
                return Err(engine_gone(Step::Watch, step, why, Some(failure.evidence)));
            }
            After::Again => {
                // The daemon stopped the containers and starts again those whose restart
                // policy says so; `up -d` brings back the rest, then the watch starts over
                // (from now: the lines already shown are not shown twice).
                let again = jiff::Timestamp::now();
                up.container_events.abort();
                up.container_events = follow(again, &up.downtime);
                since = again.as_second();
                match compose_up(run, Step::Watch, &invocation, &tool).await {
                    Ok(()) => continue,
                    Err(e) => format!(
                        "after the Docker engine came back, `docker compose up -d` failed: {e}"
                    ),
                }
            }
        };
        up.end().await;
        return Err(failed(Step::Watch, step, reason, Some(failure.evidence)));
    }
    let words = up.steadying().then(|| {
        format!(
            "up; those without a healthcheck must run {} s without a restart, watched while the checks run",
            ready_after.as_secs()
        )
    });
    run.finish(Step::Watch, step, true, words).await;
    Ok(up)
}

/// `docker compose up -d` with the tool found, again after a restart of the Docker daemon
/// meanwhile. Err: why not, and whether the Docker engine went away.
async fn compose_up_again(
    run: &Run<'_>,
    view: &facts::StackView,
    engine_loss: &EngineLoss,
) -> Result<(ComposeInvocation, compose_cli::ComposeTool), (String, bool)> {
    let tool = match compose_cli::find().await {
        Ok(t) => t,
        Err(e) => return Err((format!("the restart could not start: {e}"), false)),
    };
    if matches!(tool, compose_cli::ComposeTool::V1 { .. }) {
        run.progress(
            Step::Restart,
            "using docker-compose v1 (end of life); install the Compose v2 plugin",
        );
    }
    let invocation = view.compose();
    // A restart of the Docker daemon meanwhile stops every container and breaks `up`: once it
    // answers again, `up -d` again brings the stack to what .env pins (it is idempotent).
    loop {
        let mark = engine_loss.mark();
        let result = compose_up(run, Step::Restart, &invocation, &tool).await;
        let Err(e) = result else { break };
        let say = progress_to(run.events, Step::Restart);
        match engine_loss
            .after_failure(mark, "`docker compose up -d`", &say)
            .await
        {
            After::Again => continue,
            After::NotEngine => return Err((format!("`docker compose up -d` failed: {e}"), false)),
            After::Gone(why) => return Err((why, true)),
        }
    }
    Ok((invocation, tool))
}

/// `docker compose up -d` for `invocation`, each line Compose prints a progress line of `step`.
async fn compose_up(
    run: &Run<'_>,
    step: Step,
    invocation: &ComposeInvocation,
    tool: &compose_cli::ComposeTool,
) -> Result<(), compose_cli::ComposeCliError> {
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let compose_up = async {
        // The sender lives in this block: when `up` ends, the forwarder below ends too.
        let mut on_line = move |l: String| {
            let _ = line_tx.send(l);
        };
        invocation
            .up(tool, Duration::from_secs(600), &mut on_line)
            .await
    };
    let forward = async {
        while let Some(l) = line_rx.recv().await {
            run.progress(step, l);
        }
    };
    let (result, ()) = tokio::join!(compose_up, forward);
    result
}

/// Reports each container Docker stops, removes, creates and starts from `since` on, and tells
/// the downtime watcher when the first one stopped. Abort the handle to stop following.
fn follow_containers(
    events: &UnboundedSender<Event>,
    engine: &crate::docker::Engine,
    project: &str,
    since: &str,
    downtime: &watch::Downtime,
    exit_codes: &watch::ExitCodes,
) -> tokio::task::JoinHandle<()> {
    let exit_codes = exit_codes.clone();
    let (events, engine, project, since) = (
        events.clone(),
        engine.clone(),
        project.to_string(),
        since.to_string(),
    );
    let stopped = downtime.stop_marker();
    tokio::spawn(async move {
        let mut on_event = |e: crate::docker::events::ContainerEvent| {
            if e.is_stop() {
                stopped();
            }
            if let (Some(code), Ok(mut codes)) = (e.exit_code, exit_codes.lock()) {
                codes.insert(e.service.clone(), code);
            }
            let _ = events.send(Event::Container {
                service: e.service,
                container: e.container,
                action: e.action,
                exit_code: e.exit_code,
            });
        };
        // Losing the events costs only these lines: watch and verify do not depend on them.
        let _ =
            crate::docker::events::follow_project(&engine, &project, &since, &mut on_event).await;
    })
}

/// The URL the downtime watcher polls: the first smoke check.
pub(crate) fn view_smoke(stack: &crate::stack::Stack) -> Option<crate::stack::detect::Smoke> {
    stack.detection.smoke.first().cloned()
}
