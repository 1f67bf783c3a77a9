//! The files run as a Docker Swarm stack, not as a Compose project: said as that (and upgraded
//! through Swarm), rather than each service called "not running" with the advice to run
//! `docker compose up -d`, which would start a second copy of the app beside the stack. The
//! same file deployed twice is refused: hoist cannot tell which stack is this directory's.
use super::{Finding, Level};
use crate::probe::facts::Facts;
use crate::probe::swarm::InSwarm;

/// The finding, when the Swarm holds the files' services (or this engine is a Swarm worker
/// and no Compose container of the project runs).
pub fn finding(facts: &Facts) -> Option<Finding> {
    Some(match facts.swarm.as_ref()? {
        InSwarm::Stack(stack) => {
            let one_node = stack.membership.nodes <= 1;
            let held: Vec<&str> = stack
                .services
                .iter()
                .filter(|s| s.stopped_by_hoist.is_some())
                .map(|s| s.name.as_str())
                .collect();
            if !held.is_empty() {
                return Some(Finding::new(
                    "swarm",
                    Level::Fail,
                    format!(
                        "hoist stopped {} of Swarm stack {} for a restore that did not finish (a hoist killed or cut off in it): run `hoist rollback` (or the restore again), which finishes it and starts them again with their replicas. Do not scale them up by hand: they would start on data that is half put back",
                        held.join(", "),
                        stack.name
                    ),
                ));
            }
            if let Some(short) = short_of_replicas(stack) {
                return Some(Finding::new("swarm", Level::Fail, short));
            }
            if let Some(mixed) = mixed_versions(stack, &facts.view.upgraded) {
                return Some(Finding::new("swarm", Level::Warn, mixed));
            }
            Finding::new(
                "swarm",
                if one_node { Level::Ok } else { Level::Warn },
                if one_node {
                    format!(
                        "the compose file's services run as the Docker Swarm stack {:?} (deployed with `docker stack deploy`), not as a Compose project: hoist upgrades it through Swarm (`docker service update` of each upgraded service, as its update_config says) and never with `docker compose up -d`, which would start a second copy of the app beside the stack. A later `docker stack deploy` reads the variables of your shell, not .env: load .env first (`set -a; . ./.env; set +a`)",
                        stack.name
                    )
                } else {
                    format!(
                        "the compose file's services run as the Docker Swarm stack {:?} on a Swarm of {} nodes: hoist upgrades it through Swarm, but it reads the database and backs up the data only of tasks that run on this node ({}); a service whose task runs on another node is said as such",
                        stack.name, stack.membership.nodes, stack.membership.hostname
                    )
                },
            )
        }
        .details(
            stack
                .services
                .iter()
                .map(|s| match s.replicas {
                    Some(n) => format!("{}: {} of {n} running, {}", s.name, s.running, s.image),
                    None => format!(
                        "{}: {} running (one per node), {}",
                        s.name, s.running, s.image
                    ),
                })
                .collect(),
        ),
        InSwarm::Several { stacks } => Finding::new(
            "swarm",
            Level::Fail,
            format!(
                "the compose file's services run in several Docker Swarm stacks ({}): the same file deployed more than once. hoist cannot tell which of them is this directory's, so it upgrades, restores and rolls back none of them: remove the stacks that are not this one's (`docker stack rm NAME`). Do not run `docker compose up -d` here: it would start yet another copy of the app",
                stacks.join(", ")
            ),
        ),
        InSwarm::Unclaimed { stacks, project } => Finding::new(
            "swarm",
            Level::Fail,
            format!(
                "Docker Swarm stack{} {} hold{} the compose file's services, but nothing ties {} to this directory: {} none of this directory's data paths{}. It may be another copy of the app (another directory's), so hoist changes nothing of it. If {} is this app's stack, say so with `name: {}` at the top of the compose file (or `COMPOSE_PROJECT_NAME={}` in .env); do not run `docker compose up -d` here",
                if stacks.len() == 1 { "" } else { "s" },
                stacks.join(", "),
                if stacks.len() == 1 { "s" } else { "" },
                if stacks.len() == 1 { "it" } else { "them" },
                if stacks.len() == 1 { "it mounts" } else { "they mount" },
                if facts.view.data.iter().any(|m| m.kind == crate::stack::compose::MountKind::Bind) {
                    String::new()
                } else {
                    format!(", and the project's name is {project:?}")
                },
                stacks[0],
                stacks[0],
                stacks[0]
            ),
        ),
        InSwarm::Worker { .. } => Finding::new(
            "swarm",
            Level::Warn,
            "this engine is a Docker Swarm worker and no Compose container of the project runs here: if the app runs as a Swarm stack, only a manager node can see it (run hoist there)",
        ),
    })
}

/// Whether the containers hoist found on this engine are all of the app's: false for a Swarm
/// stack on several nodes (its other tasks run elsewhere) and for a Swarm hoist cannot read
/// (several stacks, a worker), where "no container" would be wrong.
pub fn containers_tell_all(facts: &Facts) -> bool {
    match &facts.swarm {
        None => true,
        Some(InSwarm::Stack(stack)) => stack.membership.nodes <= 1,
        Some(_) => false,
    }
}

/// Why a backup taken here would miss data of a Swarm stack: a data mount none of whose
/// services has a task container on this node (its data is on the node that runs it).
pub fn data_elsewhere(facts: &Facts) -> Option<String> {
    let Some(InSwarm::Stack(stack)) = &facts.swarm else {
        return None;
    };
    let running = facts.docker.as_ref().ok()?;
    let missing: Vec<String> = facts
        .view
        .data
        .iter()
        .filter(|m| m.services.iter().all(|s| running.of_service(s).is_empty()))
        .map(|m| {
            let nodes: Vec<&str> = stack
                .services
                .iter()
                .filter(|d| m.services.contains(&d.service))
                .flat_map(|d| d.tasks.iter().filter(|t| t.desired == "running"))
                .map(|t| t.node.as_str())
                .filter(|n| !n.is_empty())
                .collect();
            format!(
                "{} of {} ({})",
                m.target,
                m.services.join(", "),
                if nodes.is_empty() {
                    "no task of it runs".to_string()
                } else {
                    format!("its task runs on {}", nodes.join(", "))
                }
            )
        })
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "the data of Swarm stack {} is not all on this node ({}): {}. A backup taken here would miss it, so none is taken; nothing was changed. Run hoist on the node that runs those tasks, or constrain the services to one node (`deploy: placement: constraints: [node.hostname == NAME]`)",
        stack.name,
        stack.membership.hostname,
        missing.join("; ")
    ))
}

/// A service of the stack that Swarm cannot run at its replicas because no node can take a
/// task (a host-mode port taken, a constraint no node meets): an update would wait for it
/// and fail, so the upgrade does not start. None when every service can be placed.
fn short_of_replicas(stack: &crate::probe::swarm::SwarmStack) -> Option<String> {
    let nodes = stack.membership.nodes.max(1);
    let stuck: Vec<String> = stack
        .services
        .iter()
        .filter(|s| s.stopped_by_hoist.is_none())
        .filter_map(|s| {
            // start-first starts the new task before the old one frees the node's port.
            let start_first = s
                .update_config
                .as_ref()
                .is_some_and(|p| p.order == "start-first");
            let why = s.unplaceable(None).or_else(|| {
                (start_first && s.host_ports && s.replicas.is_none_or(|n| n >= nodes)).then(|| {
                    "`order: start-first` with a port in `mode: host`: the new task cannot start while the old one holds the port on its node".to_string()
                })
            })?;
            Some(format!(
                "{} runs {} of {} ({why})",
                s.name,
                s.running,
                s.replicas
                    .map_or_else(|| "its nodes".to_string(), |n| n.to_string())
            ))
        })
        .collect();
    if stuck.is_empty() {
        return None;
    }
    Some(format!(
        "Swarm cannot place every task of stack {}: {}. An update would wait for tasks that cannot start, so hoist does not upgrade it as it is. With a port published in `mode: host`, a node runs one task of the service at a time: lower the replicas to the number of nodes (and use `order: stop-first`), or publish through the routing mesh, then deploy again",
        stack.name,
        stuck.join("; ")
    ))
}

/// The upgraded services of the stack running different versions (an update Swarm paused or
/// rolled back for some of them, a rollback that did not finish), in words.
fn mixed_versions(stack: &crate::probe::swarm::SwarmStack, upgraded: &[String]) -> Option<String> {
    let versions: Vec<(String, String)> = stack
        .services
        .iter()
        .filter(|s| upgraded.contains(&s.service))
        .filter_map(|s| Some((s.service.clone(), crate::probe::swarm::version_of(s)?)))
        .collect();
    let first = &versions.first()?.1;
    if versions.iter().all(|(_, v)| v == first) {
        return None;
    }
    Some(format!(
        "the app's services in Swarm stack {} run different versions ({}): an update that Swarm paused or rolled back for some of them, or a rollback that did not finish. `hoist status` says what hoist last did; finish that first (`hoist rollback`, or the upgrade again)",
        stack.name,
        versions
            .iter()
            .map(|(s, v)| format!("{s} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
