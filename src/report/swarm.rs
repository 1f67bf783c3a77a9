//! `status` of a stack deployed to Docker Swarm (`docker stack deploy`): its services with
//! replicas and version, each one's update policy and the state of its last update, and its
//! tasks per node (the running ones, and the latest that failed, with Swarm's error).
use std::fmt::Write;

use crate::docker::swarm::StackService;
use crate::probe::swarm::InSwarm;

/// The lines `status` prints for what was found in the Swarm.
pub fn lines(found: &InSwarm) -> String {
    let mut t = String::new();
    match found {
        InSwarm::Stack(stack) => {
            let m = &stack.membership;
            let _ = writeln!(
                t,
                "Swarm     the files run as Swarm stack {:?} (`docker stack deploy`), not as a Compose project; this engine manages a Swarm of {} node{} ({} manager{}). hoist upgrades it through Swarm (`docker service update`), never with `docker compose up -d`",
                stack.name,
                m.nodes,
                plural(m.nodes),
                m.managers,
                plural(m.managers),
            );
            let _ = writeln!(t, "\nServices (Swarm)");
            let width = stack
                .services
                .iter()
                .map(|s| s.service.len())
                .max()
                .unwrap_or(0);
            for s in &stack.services {
                service_lines(&mut t, s, width);
            }
        }
        InSwarm::Several { stacks } => {
            let _ = writeln!(
                t,
                "Swarm     the files' services run in several Swarm stacks ({}): the same file deployed more than once; hoist cannot tell which is this directory's",
                stacks.join(", ")
            );
        }
        InSwarm::Unclaimed { stacks, .. } => {
            let _ = writeln!(
                t,
                "Swarm     Swarm stack(s) {} hold the files' services, but none mounts this directory's data paths or bears the project's name: hoist does not take it for this app (`hoist check` says how to tie it)",
                stacks.join(", ")
            );
        }
        InSwarm::Worker { .. } => {
            let _ = writeln!(
                t,
                "Swarm     this engine is a Swarm worker: if the app runs as a Swarm stack, only a manager node can show it (run hoist there)"
            );
        }
    }
    t
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn service_lines(t: &mut String, s: &StackService, width: usize) {
    let version = crate::probe::swarm::version_of(s).unwrap_or_else(|| "-".into());
    let replicas = match s.replicas {
        Some(n) => format!("{}/{n} running", s.running),
        None => format!("{} running (global)", s.running),
    };
    let _ = writeln!(t, "    {:width$}  {version:10}  {replicas}", s.service);
    match (s.stopped_by_hoist, s.replicas) {
        (Some(_), None) => {
            let _ = writeln!(
                t,
                "    {:width$}  stopped by hoist for a restore (a placement constraint no node meets); `hoist rollback` (or the restore again) finishes it and starts it again",
                ""
            );
        }
        (Some(n), Some(_)) => {
            let _ = writeln!(
                t,
                "    {:width$}  scaled to 0 by hoist for a restore (it had {n}); `hoist rollback` (or the restore again) finishes it and gives them back",
                ""
            );
        }
        (None, _) => {}
    }
    if let Some(p) = &s.update_config {
        let _ = writeln!(
            t,
            "    {:width$}  update: {}, {} at a time, {} s apart, watched {} s, on failure {}",
            "", p.order, p.parallelism, p.delay_s, p.monitor_s, p.failure_action
        );
    }
    if let Some((state, message)) = &s.update {
        let _ = writeln!(
            t,
            "    {:width$}  last update: {state}{}",
            "",
            if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            }
        );
    }
    // The tasks that are meant to run, then the latest one that failed (its error is the
    // evidence of a crash loop or an image that cannot be pulled).
    for task in s.tasks.iter().filter(|t| t.desired == "running") {
        let _ = writeln!(
            t,
            "    {:width$}  task {} on {}: {}",
            "",
            task.slot.map_or("-".to_string(), |n| n.to_string()),
            task.node,
            task.state
        );
    }
    if let Some(failed) = s
        .tasks
        .iter()
        .filter(|t| t.desired != "running" && t.error.is_some())
        .max_by(|a, b| a.since.cmp(&b.since))
    {
        let _ = writeln!(
            t,
            "    {:width$}  last failed task on {}: {} ({})",
            "",
            failed.node,
            failed.state,
            failed.error.as_deref().unwrap_or_default()
        );
    }
}
