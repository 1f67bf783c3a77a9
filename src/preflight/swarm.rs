//! The files run as a Docker Swarm stack, not as a Compose project: said as that, and the
//! upgrade refused, rather than each service called "not running" with the advice to run
//! `docker compose up -d`, which would start a second copy of the app beside the stack.
use super::{Finding, Level};
use crate::probe::facts::Facts;
use crate::probe::swarm::InSwarm;

/// The finding, when the Swarm holds the files' services (or this engine is a Swarm worker
/// and no Compose container of the project runs).
pub fn finding(facts: &Facts) -> Option<Finding> {
    let file = facts.view.compose_file.display();
    Some(match facts.swarm.as_ref()? {
        InSwarm::Stack(stack) => Finding::new(
            "swarm",
            Level::Fail,
            format!(
                "the compose file's services run as the Docker Swarm stack {:?} (deployed with `docker stack deploy`), not as a Compose project, and hoist does not upgrade a Swarm stack yet. Do not run `docker compose up -d` here: it would start a second copy of the app beside the stack. By hand: take a backup, set the new version, then `docker stack deploy -c {file} {}` (a stack deploy reads the variables of your shell, not .env)",
                stack.name, stack.name
            ),
        )
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
                "the compose file's services run in several Docker Swarm stacks ({}): the same file deployed more than once. hoist does not upgrade a Swarm stack yet, and cannot tell which of them is this directory's. Do not run `docker compose up -d` here: it would start yet another copy of the app",
                stacks.join(", ")
            ),
        ),
        InSwarm::Worker { .. } => Finding::new(
            "swarm",
            Level::Warn,
            "this engine is a Docker Swarm worker and no Compose container of the project runs here: if the app runs as a Swarm stack, only a manager node can see it (run hoist there)",
        ),
    })
}
