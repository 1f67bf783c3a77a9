//! The restart of a Swarm stack: each upgraded service's image set through the Engine API, and
//! Swarm left to replace its tasks as the service's `update_config` says (order, parallelism,
//! delay, monitor, failure action), followed until every service's update completed. A paused
//! update, or one Swarm rolled back by its failure action, fails the restart with Swarm's
//! own words and the failed task's error.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::restart::{Up, UpFailed, view_smoke};
use super::watch;
use crate::docker::Engine;
use crate::docker::swarm::{self, StackService};
use crate::docker::swarm_change::{self, Updated};
use crate::run::{Run, Step};

/// How often Swarm's state is read while an update runs.
const POLL: Duration = Duration::from_millis(1000);

/// Updates `targets` (service -> image) of Swarm stack `stack` to `version` and follows Swarm
/// until each update completed, or failed.
pub(crate) async fn update_and_watch(
    run: &mut Run<'_>,
    stack: &crate::stack::Stack,
    engine: &Engine,
    swarm_stack: &str,
    targets: &BTreeMap<String, String>,
    version: &str,
) -> Result<Up, UpFailed> {
    let names: Vec<&str> = targets.keys().map(String::as_str).collect();
    let step = run
        .start(
            Step::Restart,
            &format!(
                "docker service update of {} in Swarm stack {swarm_stack}",
                names.join(", ")
            ),
        )
        .await;
    let failed = |step: Step, started, reason: String| UpFailed {
        step,
        started,
        reason,
        evidence: None,
        engine_gone: false,
    };
    let downtime = watch::Downtime::start(view_smoke(stack));
    let up = Up::downtime_only(downtime);
    // Each service's last update as it was before this one: a status Swarm has not renewed yet
    // (the last update's "completed", or its "rollback_completed") says nothing of this one.
    let deployed = match swarm::stack_services(engine).await {
        Ok(d) => d,
        Err(e) => {
            up.end().await;
            return Err(failed(
                Step::Restart,
                step,
                format!("Swarm's state could not be read, so nothing was updated: {e}"),
            ));
        }
    };
    let before: BTreeMap<String, Option<String>> = deployed
        .into_iter()
        .filter(|d| d.stack == swarm_stack)
        .map(|d| (d.service, d.update_started))
        .collect();
    let mut updating: Vec<String> = Vec::new();
    for (service, image) in targets {
        let full = format!("{swarm_stack}_{service}");
        if !before.contains_key(service) {
            up.end().await;
            return Err(failed(
                Step::Restart,
                step,
                format!(
                    "{service} is not a service of Swarm stack {swarm_stack} (removed from it, or the stack was deployed from other files), so Swarm cannot update it; deploy the files again (`set -a; . ./.env; set +a; docker stack deploy -c FILE {swarm_stack}`), which creates it at the version .env pins{}",
                    if updating.is_empty() {
                        String::new()
                    } else {
                        format!(" (Swarm is already updating {})", updating.join(", "))
                    }
                ),
            ));
        }
        match swarm_change::set_image(engine, &full, image).await {
            Ok(Updated::Started) => {
                run.progress(
                    Step::Restart,
                    format!("{service}: Swarm updates it to {image}"),
                );
                updating.push(service.clone());
            }
            Ok(Updated::AlreadyThere) => {
                run.progress(Step::Restart, format!("{service}: already on {image}"));
            }
            Err(e) => {
                up.end().await;
                let done = if updating.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (Swarm is already updating {}, which hoist does not stop)",
                        updating.join(", ")
                    )
                };
                return Err(failed(
                    Step::Restart,
                    step,
                    format!("Swarm did not take the update of {service}: {e}{done}"),
                ));
            }
        }
    }
    run.finish(Step::Restart, step, true, None).await;

    let step = run
        .start(
            Step::Watch,
            "following Swarm's update until every task runs the new release",
        )
        .await;
    let timeout = stack
        .settings
        .timeout_ready
        .unwrap_or(Duration::from_secs(180));
    let started = Instant::now();
    let since = jiff::Timestamp::now().as_second();
    let mut logs = Followers::default();
    let mut said: BTreeMap<String, String> = BTreeMap::new();
    // Since when a service has had a task on the new image that Swarm cannot place.
    let mut unplaced: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        let deployed = match swarm::stack_services(engine).await {
            Ok(d) => d,
            Err(e) => {
                up.end().await;
                return Err(failed(
                    Step::Watch,
                    step,
                    format!("Swarm's state could not be read during the update: {e}"),
                ));
            }
        };
        let mut waiting = Vec::new();
        for service in &updating {
            let Some(image) = targets.get(service) else {
                continue;
            };
            let Some(now) = deployed
                .iter()
                .find(|d| d.stack == swarm_stack && &d.service == service)
            else {
                up.end().await;
                return Err(failed(
                    Step::Watch,
                    step,
                    format!("Swarm service {swarm_stack}_{service} is gone during the update"),
                ));
            };
            for task in now.tasks.iter().filter(|t| t.image == *image) {
                if let Some(id) = &task.container {
                    logs.follow(run, engine, service, id, since);
                }
            }
            for line in task_lines(now, image) {
                let key = format!("{service}/{}", line.0);
                if said.get(&key) != Some(&line.1) {
                    run.progress(Step::Watch, format!("{service}: {}", line.1));
                    said.insert(key, line.1);
                }
            }
            match now.unplaceable(Some(image)) {
                Some(why) => {
                    let since = *unplaced.entry(service.clone()).or_insert_with(Instant::now);
                    if since.elapsed() > UNPLACED_FOR {
                        up.end().await;
                        return Err(failed(
                            Step::Watch,
                            step,
                            format!(
                                "the app did not come up on {version}: Swarm cannot place a task of {} for {} s: {why}. With a port published in `mode: host`, a node runs one task of the service at a time, so more replicas than nodes, or `order: start-first`, cannot all be placed. Swarm goes on trying; `docker service ps {}` shows its tasks",
                                now.name,
                                UNPLACED_FOR.as_secs(),
                                now.name
                            ),
                        ));
                    }
                }
                None => {
                    unplaced.remove(service);
                }
            }
            let fresh = before.get(service).is_none_or(|b| *b != now.update_started);
            match judge(now, image, fresh) {
                Judged::Done => {}
                Judged::Waiting(why) => waiting.push(format!("{service} ({why})")),
                Judged::Failed(why) => {
                    up.end().await;
                    let mut f = failed(
                        Step::Watch,
                        step,
                        format!("the app did not come up on {version}: {why}"),
                    );
                    f.evidence = failed_task_lines(engine, now, image).await;
                    return Err(f);
                }
            }
        }
        if waiting.is_empty() {
            break;
        }
        if started.elapsed() > timeout {
            up.end().await;
            return Err(failed(
                Step::Watch,
                step,
                format!(
                    "the app did not come up on {version}: after {} s Swarm still updates {}. Swarm goes on with it; `docker service ps` shows its tasks",
                    timeout.as_secs(),
                    waiting.join(", ")
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    run.finish(Step::Watch, step, true, None).await;
    Ok(up)
}

/// Scales `services` of Swarm stack `swarm_stack` to zero (their replicas kept in a label for
/// the update that starts them again) and waits until none of their tasks runs. Err: the
/// sentence of what could not be stopped.
pub(crate) async fn stop_services(
    run: &Run<'_>,
    step: Step,
    engine: &Engine,
    swarm_stack: &str,
    services: &[String],
    timeout: Duration,
) -> Result<(), String> {
    let mut scaled = Vec::new();
    let deployed = swarm::stack_services(engine)
        .await
        .map_err(|e| format!("Swarm's state could not be read: {e}"))?;
    let in_stack = |service: &str| {
        deployed
            .iter()
            .any(|d| d.stack == swarm_stack && d.service == service)
    };
    for service in services {
        let full = format!("{swarm_stack}_{service}");
        if !in_stack(service) {
            run.progress(
                step,
                format!(
                    "{service}: not a service of Swarm stack {swarm_stack}, so nothing runs to stop"
                ),
            );
            continue;
        }
        match swarm_change::scale_to_zero(engine, &full).await {
            Ok(swarm_change::Stopped::Scaled(n)) => {
                run.progress(step, format!("{service}: scaled from {n} to 0 replicas"));
                scaled.push(service.clone());
            }
            Ok(swarm_change::Stopped::Global) => {
                run.progress(
                    step,
                    format!(
                        "{service}: a global service, stopped on every node by a placement constraint no node meets (removed when it is updated again)"
                    ),
                );
                scaled.push(service.clone());
            }
            Err(e) => return Err(format!("{service} could not be scaled to zero: {e}")),
        }
    }
    let started = Instant::now();
    loop {
        let deployed = swarm::stack_services(engine)
            .await
            .map_err(|e| format!("Swarm's state could not be read: {e}"))?;
        let running: Vec<String> = deployed
            .iter()
            .filter(|d| d.stack == swarm_stack && services.contains(&d.service))
            .filter(|d| {
                d.tasks
                    .iter()
                    .any(|t| matches!(t.state.as_str(), "running" | "starting" | "preparing"))
            })
            .map(|d| d.service.clone())
            .collect();
        if running.is_empty() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "after {} s, tasks of {} still run although Swarm scaled them to zero",
                timeout.as_secs(),
                running.join(", ")
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The last log lines of the newest failed task of `image` whose container is on this node,
/// as evidence keyed by the service (None: no such container here).
async fn failed_task_lines(
    engine: &Engine,
    s: &StackService,
    image: &str,
) -> Option<BTreeMap<String, Vec<String>>> {
    let task = s.tasks.iter().find(|t| {
        t.image == image && t.error.is_some() && t.container.is_some() && t.desired != "running"
    })?;
    let lines = crate::docker::last_log_lines(engine, task.container.as_deref()?, 20)
        .await
        .ok()?;
    (!lines.is_empty()).then(|| BTreeMap::from([(s.service.clone(), lines)]))
}

/// How long a task may wait for a node before the update is called stuck: a stop-first update
/// frees a host-mode port only once the old task stopped, a few seconds.
const UNPLACED_FOR: Duration = Duration::from_secs(30);

/// The logs of the new tasks' containers on this node, followed as lines of their service
/// (as the Compose watch shows them); stopped when dropped.
#[derive(Default)]
struct Followers {
    seen: std::collections::BTreeSet<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Followers {
    fn follow(&mut self, run: &Run<'_>, engine: &Engine, service: &str, id: &str, since: i64) {
        if !self.seen.insert(id.to_string()) {
            return;
        }
        let (events, engine, service, id) = (
            run.events.clone(),
            engine.clone(),
            service.to_string(),
            id.to_string(),
        );
        self.tasks.push(tokio::spawn(async move {
            let mut on_line = |line: String| {
                let _ = events.send(crate::run::Event::Log {
                    service: service.clone(),
                    line,
                });
            };
            // A task on another node has no container here: nothing to follow.
            let _ = crate::docker::logs::follow(&engine, &id, since, &mut on_line).await;
        }));
    }
}

impl Drop for Followers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Where one service's update stands.
#[derive(Debug, PartialEq)]
enum Judged {
    Done,
    Waiting(String),
    Failed(String),
}

/// A service's update against the image it should run: done when Swarm says it completed and
/// every task it wants running runs that image. A status that is not `fresh` (the last update's)
/// is left to the tasks; so is none at all, as for a service scaled up from zero, which Swarm
/// starts without a rolling update.
fn judge(s: &StackService, image: &str, fresh: bool) -> Judged {
    let (state, message) = s
        .update
        .clone()
        .filter(|_| fresh)
        .unwrap_or_else(|| ("completed".into(), String::new()));
    // The error of a task that failed on this image first: a later one may only be waiting
    // for a port the failed one held.
    let last_error = s
        .tasks
        .iter()
        .filter(|t| t.image == image && matches!(t.state.as_str(), "failed" | "rejected"))
        .chain(s.tasks.iter().filter(|t| t.image == image))
        .chain(&s.tasks)
        .find_map(|t| t.error.clone())
        .map(|e| format!("; its last failed task: {e}"))
        .unwrap_or_default();
    let policy = s
        .update_config
        .as_ref()
        .map(|p| p.failure_action.clone())
        .unwrap_or_default();
    match state.as_str() {
        "paused" => Judged::Failed(format!(
            "Swarm paused the update of {} ({message}){last_error}. Its update_config says failure_action: {policy}, so its tasks are as Swarm left them",
            s.name
        )),
        "rollback_completed" => Judged::Failed(format!(
            "Swarm rolled {} back to {}, its previous image, as its update_config says (failure_action: rollback): {message}{last_error}",
            s.name,
            crate::docker::containers::image_tag(&s.image).unwrap_or("the image before")
        )),
        "rollback_paused" => Judged::Failed(format!(
            "Swarm's rollback of {} paused ({message}){last_error}",
            s.name
        )),
        "rollback_started" => Judged::Waiting("Swarm is rolling it back".into()),
        "completed" => {
            // A service scaled up from zero has nothing to roll: its new tasks fail and are
            // replaced, and the update says completed all the same.
            let failed_on_image = s
                .tasks
                .iter()
                .filter(|t| t.image == image && matches!(t.state.as_str(), "failed" | "rejected"))
                .count();
            if failed_on_image >= 3 {
                return Judged::Failed(format!(
                    "{failed_on_image} tasks of {} on {image} failed one after another{last_error}",
                    s.name
                ));
            }
            let wanted: Vec<_> = s.tasks.iter().filter(|t| t.desired == "running").collect();
            let on_image = wanted
                .iter()
                .filter(|t| t.state == "running" && t.image == image)
                .count();
            let enough = match s.replicas {
                Some(n) => on_image as u64 >= n,
                None => !wanted.is_empty() && on_image == wanted.len(),
            };
            if enough {
                Judged::Done
            } else {
                Judged::Waiting(format!("{on_image} task(s) run {image}"))
            }
        }
        other => Judged::Waiting(other.to_string()),
    }
}

/// Each task that should run, or failed on `image`, as a line keyed by its slot and image (an
/// earlier update's failed task is history, not news).
fn task_lines(s: &StackService, image: &str) -> Vec<(String, String)> {
    s.tasks
        .iter()
        .filter(|t| t.desired == "running" || (t.error.is_some() && t.image == image))
        .take(4)
        .map(|t| {
            let slot = t.slot.map_or_else(|| t.node.clone(), |n| n.to_string());
            let version = crate::docker::containers::image_tag(&t.image).unwrap_or("?");
            let error = t
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            (
                format!("{slot}/{}", t.image),
                if t.node.is_empty() {
                    format!("task {slot} {} ({version}){error}", t.state)
                } else {
                    format!("task {slot} on {} {} ({version}){error}", t.node, t.state)
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::swarm::{StackTask, UpdatePolicy};

    fn service(update: Option<(&str, &str)>, tasks: Vec<(&str, &str, &str)>) -> StackService {
        StackService {
            name: "s_api".into(),
            stack: "s".into(),
            service: "api".into(),
            image: "r/app:2".into(),
            replicas: Some(1),
            running: 1,
            update: update.map(|(a, b)| (a.to_string(), b.to_string())),
            update_started: None,
            binds: Vec::new(),
            host_ports: false,
            stopped_by_hoist: None,
            update_config: Some(UpdatePolicy {
                order: "stop-first".into(),
                parallelism: 1,
                delay_s: 0.0,
                failure_action: "rollback".into(),
                monitor_s: 5.0,
            }),
            tasks: tasks
                .into_iter()
                .map(|(state, desired, image)| StackTask {
                    node: "n1".into(),
                    slot: Some(1),
                    state: state.into(),
                    desired: desired.into(),
                    error: (state == "failed").then(|| "task: non-zero exit (3)".to_string()),
                    image: image.into(),
                    since: "t".into(),
                    container: None,
                })
                .collect(),
        }
    }

    #[test]
    fn an_update_is_done_only_when_swarm_completed_it_on_the_new_image() {
        let done = service(
            Some(("completed", "update completed")),
            vec![("running", "running", "r/app:2")],
        );
        assert_eq!(judge(&done, "r/app:2", true), Judged::Done);
        let old = service(
            Some(("completed", "update completed")),
            vec![("running", "running", "r/app:1")],
        );
        assert!(matches!(judge(&old, "r/app:2", true), Judged::Waiting(_)));
        let going = service(
            Some(("updating", "")),
            vec![("starting", "running", "r/app:2")],
        );
        assert!(matches!(judge(&going, "r/app:2", true), Judged::Waiting(_)));
        let none = service(None, vec![("running", "running", "r/app:1")]);
        assert!(matches!(judge(&none, "r/app:2", true), Judged::Waiting(_)));
        let scaled_up = service(None, vec![("running", "running", "r/app:2")]);
        assert_eq!(judge(&scaled_up, "r/app:2", true), Judged::Done);
    }

    #[test]
    fn swarms_rollback_and_pause_fail_with_the_failed_tasks_error() {
        let rolled = service(
            Some(("rollback_completed", "rollback completed")),
            vec![
                ("running", "running", "r/app:1"),
                ("failed", "shutdown", "r/app:2"),
            ],
        );
        let Judged::Failed(why) = judge(&rolled, "r/app:2", true) else {
            panic!("not failed")
        };
        assert!(
            why.contains("rolled s_api back") && why.contains("non-zero exit (3)"),
            "{why}"
        );
        let paused = service(Some(("paused", "update paused due to failure")), vec![]);
        assert!(
            matches!(judge(&paused, "r/app:2", true), Judged::Failed(w) if w.contains("paused"))
        );
        // The last update's rollback, before Swarm started this one: not this one's failure.
        let stale = service(
            Some(("rollback_completed", "rollback completed")),
            vec![("running", "running", "r/app:1")],
        );
        assert!(matches!(
            judge(&stale, "r/app:2", false),
            Judged::Waiting(_)
        ));
        let rolling = service(Some(("rollback_started", "")), vec![]);
        assert!(matches!(
            judge(&rolling, "r/app:2", true),
            Judged::Waiting(_)
        ));
    }
}
