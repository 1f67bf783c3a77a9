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

/// Of `stacks` (each holding every service of the files), the one whose services mount every
/// one of `binds` (the files' bind-mounted host paths), when exactly one does: the same files
/// copied to another directory and deployed as another stack mount that directory's paths.
/// Otherwise `stacks` as they were (deployed twice from the same directory, nothing tells).
pub fn narrowed_by_binds(
    stacks: Vec<String>,
    deployed: &[StackService],
    binds: &[String],
) -> Vec<String> {
    if stacks.len() < 2 || binds.is_empty() {
        return stacks;
    }
    let matching: Vec<String> = stacks
        .iter()
        .filter(|stack| {
            binds.iter().all(|b| {
                deployed
                    .iter()
                    .any(|d| &d.stack == *stack && d.binds.iter().any(|x| x == b))
            })
        })
        .cloned()
        .collect();
    if matching.len() == 1 {
        matching
    } else {
        stacks
    }
}

/// Looks for the files' services in the Swarm this engine is part of. None: it is in no
/// Swarm, or no stack there holds them.
pub async fn find(engine: &Engine, services: &[String], binds: &[String]) -> Option<InSwarm> {
    let membership = swarm::membership(engine).await.ok()?;
    if !membership.active() {
        return None;
    }
    if !membership.manager {
        return Some(InSwarm::Worker { membership });
    }
    let deployed = swarm::stack_services(engine).await.ok()?;
    let mut stacks = stacks_holding(services, &deployed);
    if stacks.is_empty() {
        // A service removed from the stack (or not deployed yet) must not make hoist lose the
        // whole stack and take the app for a Compose project that is down.
        stacks = stacks_holding_most(services, &deployed);
    }
    match narrowed_by_binds(stacks, &deployed, binds).as_slice() {
        [] => None,
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
    fn the_stack_that_mounts_the_files_bind_paths_is_this_directorys() {
        let with = |stack: &str, bind: &str| StackService {
            binds: vec![bind.to_string()],
            ..deployed(stack, "api")
        };
        let deployed = vec![
            with("app", "/srv/app/data"),
            with("staging", "/srv/staging/data"),
        ];
        let both = vec!["app".to_string(), "staging".to_string()];
        assert_eq!(
            narrowed_by_binds(both.clone(), &deployed, &["/srv/app/data".into()]),
            vec!["app".to_string()]
        );
        // Nothing to tell them by: both stay, and hoist says it cannot choose.
        assert_eq!(narrowed_by_binds(both.clone(), &deployed, &[]), both);
        let twice = vec![with("app", "/srv/app/data"), with("app2", "/srv/app/data")];
        let names = vec!["app".to_string(), "app2".to_string()];
        assert_eq!(
            narrowed_by_binds(names.clone(), &twice, &["/srv/app/data".into()]),
            names
        );
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
