//! Whether the compose files in the directory run as a Docker Swarm stack (`docker stack
//! deploy -c compose.yaml NAME`) rather than as a Compose project: looked for only when no
//! Compose container of the project runs, so that a Swarm stack is named as one instead of
//! being taken for an app that is down.
use serde::Serialize;

use crate::docker::Engine;
use crate::docker::swarm::{self, Membership, StackService};

/// The Swarm stack deployed from these files, as the manager sees it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwarmStack {
    pub name: String,
    pub membership: Membership,
    pub services: Vec<StackService>,
}

/// What was found of the files in the Swarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "found", rename_all = "snake_case")]
pub enum InSwarm {
    Stack(SwarmStack),
    /// Several stacks hold every service of the files (the same file deployed twice).
    Several {
        stacks: Vec<String>,
    },
    /// This engine is in a Swarm but not a manager: it cannot list the stacks.
    Worker {
        membership: Membership,
    },
    /// Stacks hold the files' services, but none is tied to this directory (no bind path of
    /// it, not the project's name): maybe another copy of the app, never changed by hoist.
    Unclaimed {
        stacks: Vec<String>,
        project: String,
    },
}

/// The name of the Swarm stack the files run as (None: a Compose project, or no one stack).
pub fn stack_name(swarm: Option<&InSwarm>) -> Option<&str> {
    match swarm {
        Some(InSwarm::Stack(s)) => Some(&s.name),
        _ => None,
    }
}

/// The version a Swarm service runs: its image's tag.
pub fn version_of(service: &StackService) -> Option<String> {
    crate::versions::image_ref::parse(&service.image).and_then(|p| p.tag)
}

/// The stack (or stacks) of `deployed` that hold every one of `services` (`<stack>_<name>`).
pub fn stacks_holding(services: &[String], deployed: &[StackService]) -> Vec<String> {
    let mut stacks: Vec<String> = deployed.iter().map(|s| s.stack.clone()).collect();
    stacks.sort();
    stacks.dedup();
    stacks.retain(|stack| {
        !services.is_empty()
            && services.iter().all(|name| {
                deployed
                    .iter()
                    .any(|d| &d.stack == stack && &d.service == name)
            })
    });
    stacks
}

/// The stacks that hold the most of `services`, when that is at least half of them (and one):
/// the files' stack with a service missing from it.
pub fn stacks_holding_most(services: &[String], deployed: &[StackService]) -> Vec<String> {
    let mut held: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for d in deployed {
        if services.contains(&d.service) {
            *held.entry(d.stack.as_str()).or_default() += 1;
        }
    }
    let most = held.values().copied().max().unwrap_or(0);
    if most == 0 || most * 2 < services.len() {
        return Vec::new();
    }
    held.into_iter()
        .filter(|(_, n)| *n == most)
        .map(|(s, _)| s.to_string())
        .collect()
}

/// Whether `stack` is tied to this directory: it mounts every one of the files' bind-mounted
/// data paths (a directory's own paths), or, when the files bind-mount none, it bears the
/// project's name. Holding the same services is not enough: two copies of one app (prod and
/// staging, from two directories) hold the same services.
pub fn tied(stack: &str, deployed: &[StackService], binds: &[String], project: &str) -> bool {
    if binds.is_empty() {
        return stack == project;
    }
    binds.iter().all(|b| {
        deployed
            .iter()
            .any(|d| d.stack == stack && d.binds.iter().any(|x| x == b))
    })
}

/// Looks for the files' services in the Swarm this engine is part of: the stacks holding them
/// (all, or at least half when one was removed), of those the ones tied to this directory
/// (`tied`). None: it is in no Swarm, or no stack there holds them.
pub async fn find(
    engine: &Engine,
    services: &[String],
    binds: &[String],
    project: &str,
) -> Option<InSwarm> {
    let membership = swarm::membership(engine).await.ok()?;
    if !membership.active() {
        return None;
    }
    if !membership.manager {
        return Some(InSwarm::Worker { membership });
    }
    let deployed = swarm::stack_services(engine).await.ok()?;
    let mut holding = stacks_holding(services, &deployed);
    if holding.is_empty() {
        // A service removed from the stack (or not deployed yet) must not make hoist lose the
        // whole stack and take the app for a Compose project that is down.
        holding = stacks_holding_most(services, &deployed);
    }
    let ours: Vec<String> = holding
        .iter()
        .filter(|s| tied(s, &deployed, binds, project))
        .cloned()
        .collect();
    match ours.as_slice() {
        [] if holding.is_empty() => None,
        [] => Some(InSwarm::Unclaimed {
            stacks: holding,
            project: project.to_string(),
        }),
        [one] => Some(InSwarm::Stack(SwarmStack {
            name: one.clone(),
            membership,
            services: deployed.into_iter().filter(|s| &s.stack == one).collect(),
        })),
        several => Some(InSwarm::Several {
            stacks: several.to_vec(),
        }),
    }
}

/// Why a service of a Swarm stack cannot be reached from this node: its tasks run on other
/// nodes only (None: not a Swarm stack, or a task of it runs here).
pub fn elsewhere(
    swarm: Option<&InSwarm>,
    running: &super::facts::Running,
    service: &str,
) -> Option<String> {
    let Some(InSwarm::Stack(stack)) = swarm else {
        return None;
    };
    if running.of_service(service).iter().any(|c| c.is_running()) {
        return None;
    }
    let deployed = stack.services.iter().find(|s| s.service == service)?;
    let nodes: Vec<&str> = deployed
        .tasks
        .iter()
        .filter(|t| t.state == "running")
        .map(|t| t.node.as_str())
        .collect();
    if nodes.is_empty() {
        return None;
    }
    Some(format!(
        "it runs as a task of the Swarm service {} on node {}, not on this one, and hoist reaches a Swarm task's container only on the node that runs it: run hoist on {}, or constrain the service to this node (`deploy: placement: constraints: [node.hostname == {}]`)",
        deployed.name,
        nodes.join(", "),
        nodes.join(" or "),
        stack.membership.hostname
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_missing_one_service_is_still_the_files_stack() {
        let files: Vec<String> = ["db", "api", "jobs"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let found = vec![
            deployed("app", "db"),
            deployed("app", "api"),
            deployed("other", "db"),
        ];
        assert!(stacks_holding(&files, &found).is_empty());
        assert_eq!(stacks_holding_most(&files, &found), vec!["app".to_string()]);
        // One service of three in common is not enough to call it the files' stack.
        let unrelated = vec![deployed("other", "db")];
        assert!(stacks_holding_most(&files, &unrelated).is_empty());
    }

    #[test]
    fn a_stack_is_this_directorys_by_its_bind_paths_or_else_its_name() {
        let with = |stack: &str, bind: &str| StackService {
            binds: vec![bind.to_string()],
            ..deployed(stack, "api")
        };
        let found = vec![
            with("app", "/srv/app/data"),
            with("staging", "/srv/staging/data"),
        ];
        assert!(tied("app", &found, &["/srv/app/data".into()], "whatever"));
        // Another copy of the app, even one named as this project, mounts other paths.
        assert!(!tied(
            "staging",
            &found,
            &["/srv/app/data".into()],
            "staging"
        ));
        // Without bind paths only the name ties a stack to the directory.
        assert!(tied("app", &found, &[], "app"));
        assert!(!tied("staging", &found, &[], "app"));
    }

    fn deployed(stack: &str, service: &str) -> StackService {
        StackService {
            name: format!("{stack}_{service}"),
            stack: stack.into(),
            service: service.into(),
            image: "app:1".into(),
            replicas: Some(1),
            running: 1,
            update: None,
            update_started: None,
            binds: Vec::new(),
            host_ports: false,
            stopped_by_hoist: None,
            update_config: None,
            tasks: Vec::new(),
        }
    }

    #[test]
    fn the_stack_that_holds_every_service_of_the_files_is_theirs() {
        let files = vec!["api".to_string(), "db".to_string()];
        let swarm = vec![
            deployed("shop", "api"),
            deployed("shop", "db"),
            deployed("shop", "cache"),
            // Another stack with a service of the same name is not it.
            deployed("blog", "api"),
        ];
        assert_eq!(stacks_holding(&files, &swarm), ["shop"]);
        // The same files deployed twice: both, said as ambiguous by the caller.
        let twice = [swarm.clone(), vec![deployed("blog", "db")]].concat();
        assert_eq!(stacks_holding(&files, &twice), ["blog", "shop"]);
        // A service the Swarm lacks: not this stack.
        let more = vec!["api".to_string(), "worker".to_string()];
        assert!(stacks_holding(&more, &swarm).is_empty());
        assert!(stacks_holding(&[], &swarm).is_empty());
    }
}
