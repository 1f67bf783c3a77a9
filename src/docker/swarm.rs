//! A Docker Swarm as its manager sees it: whether this engine is in one, and the services of
//! the stacks deployed there (`docker stack deploy`), each with its tasks on their nodes. Read
//! only: nothing here changes a service.
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{DockerError, Engine};

/// The label `docker stack deploy` puts on every service, network and task of a stack.
pub const NAMESPACE: &str = "com.docker.stack.namespace";

/// This engine's place in a Swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// "inactive", "pending", "active", "error", "locked".
    pub state: String,
    /// A manager: it can list the Swarm's services and tasks.
    pub manager: bool,
    pub nodes: u64,
    pub managers: u64,
    /// This node's hostname, as Swarm's placement constraints name it.
    pub hostname: String,
}

impl Membership {
    pub fn active(&self) -> bool {
        self.state == "active"
    }
}

/// A service of a stack, with what `docker service ls` and `docker service ps` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackService {
    /// The service's full name (`<stack>_<service>`).
    pub name: String,
    pub stack: String,
    /// The name the compose file gives it.
    pub service: String,
    pub image: String,
    /// Replicas wanted (None: a global service, one task per node).
    pub replicas: Option<u64>,
    pub running: u64,
    /// An update under way or ended: its state and message (`updating`, `paused`,
    /// `rollback_completed`…).
    pub update: Option<(String, String)>,
    /// When that update started (RFC 3339), to tell a new update from the last one.
    pub update_started: Option<String>,
    /// How Swarm updates it: order, parallelism, delay, failure action, monitor.
    pub update_config: Option<UpdatePolicy>,
    /// The host paths of its bind mounts (absolute: `docker stack deploy` resolves them).
    pub binds: Vec<String>,
    /// It publishes a port in `mode: host`: a node runs one of its tasks at a time.
    pub host_ports: bool,
    /// The replicas a hoist kept in the service's label when it scaled it to zero for a
    /// restore that has not given them back (a restore under way, or a hoist killed in one);
    /// 0 for a global service hoist stopped by a placement constraint.
    pub stopped_by_hoist: Option<u64>,
    pub tasks: Vec<StackTask>,
}

/// A service's `update_config`, as Swarm applies it (its defaults filled in).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdatePolicy {
    pub order: String,
    pub parallelism: i64,
    pub delay_s: f64,
    pub failure_action: String,
    pub monitor_s: f64,
}

/// One task of a service: where it runs and in what state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackTask {
    pub node: String,
    pub slot: Option<i64>,
    pub state: String,
    pub desired: String,
    pub error: Option<String>,
    pub image: String,
    pub since: String,
    /// Its container's id, once it has one (on whichever node runs it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// This engine's place in a Swarm ("inactive" when it is in none).
pub async fn membership(engine: &Engine) -> Result<Membership, DockerError> {
    let info = engine
        .docker
        .info()
        .await
        .map_err(|e| DockerError::api("read the engine's information", e))?;
    let swarm = info.swarm.unwrap_or_default();
    let count = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    Ok(Membership {
        state: swarm
            .local_node_state
            .map_or_else(|| "inactive".to_string(), |s| s.to_string()),
        manager: swarm.control_available.unwrap_or(false),
        nodes: count(swarm.nodes),
        managers: count(swarm.managers),
        hostname: info.name.unwrap_or_default(),
    })
}

/// Every service of every stack, with its tasks (a manager only; else an empty list).
pub async fn stack_services(engine: &Engine) -> Result<Vec<StackService>, DockerError> {
    let filters = HashMap::from([("label".to_string(), vec![NAMESPACE.to_string()])]);
    let services = engine
        .docker
        .list_services(Some(
            bollard::query_parameters::ListServicesOptionsBuilder::default()
                .filters(&filters)
                .status(true)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list the Swarm's services", e))?;
    let tasks = engine
        .docker
        .list_tasks(Some(
            bollard::query_parameters::ListTasksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list the Swarm's tasks", e))?;
    let nodes = engine
        .docker
        .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
        .await
        .map_err(|e| DockerError::api("list the Swarm's nodes", e))?;
    let hostnames: HashMap<String, String> = nodes
        .into_iter()
        .filter_map(|n| {
            let id = n.id?;
            let host = n.description.and_then(|d| d.hostname).unwrap_or(id.clone());
            Some((id, host))
        })
        .collect();
    let mut by_service: BTreeMap<String, Vec<StackTask>> = BTreeMap::new();
    for t in tasks {
        let Some(service) = t.service_id.clone() else {
            continue;
        };
        let status = t.status.unwrap_or_default();
        let node = t.node_id.unwrap_or_default();
        by_service.entry(service).or_default().push(StackTask {
            node: hostnames.get(&node).cloned().unwrap_or(node),
            slot: t.slot,
            state: status
                .state
                .map_or_else(|| "unknown".to_string(), |s| s.to_string()),
            desired: t
                .desired_state
                .map_or_else(|| "unknown".to_string(), |s| s.to_string()),
            error: status.err.filter(|e| !e.is_empty()),
            image: t
                .spec
                .and_then(|s| s.container_spec)
                .and_then(|c| c.image)
                .map(|i| without_digest(&i))
                .unwrap_or_default(),
            container: status
                .container_status
                .as_ref()
                .and_then(|c| c.container_id.clone())
                .filter(|c| !c.is_empty()),
            since: status.timestamp.unwrap_or_default(),
        });
    }
    let mut out = Vec::new();
    for s in services {
        let spec = s.spec.unwrap_or_default();
        let labels = spec.labels.clone().unwrap_or_default();
        let (Some(name), Some(stack)) = (spec.name.clone(), labels.get(NAMESPACE).cloned()) else {
            continue;
        };
        let service = name
            .strip_prefix(&format!("{stack}_"))
            .unwrap_or(&name)
            .to_string();
        let mode = spec.mode.unwrap_or_default();
        let replicas = if mode.global.is_some() {
            None
        } else {
            Some(
                mode.replicated
                    .and_then(|r| r.replicas)
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(1),
            )
        };
        let mut tasks =
            s.id.as_ref()
                .and_then(|id| by_service.remove(id))
                .unwrap_or_default();
        tasks.sort_by(|a, b| (a.slot, &a.node, &b.since).cmp(&(b.slot, &b.node, &a.since)));
        let container = spec.task_template.and_then(|t| t.container_spec);
        let binds = container
            .as_ref()
            .and_then(|c| c.mounts.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.is_some_and(|t| t.to_string() == "bind"))
            .filter_map(|m| m.source)
            .collect();
        let host_ports = spec
            .endpoint_spec
            .as_ref()
            .and_then(|e| e.ports.as_ref())
            .is_some_and(|ports| {
                ports
                    .iter()
                    .any(|p| p.publish_mode.is_some_and(|m| m.to_string() == "host"))
            });
        out.push(StackService {
            binds,
            host_ports,
            stopped_by_hoist: labels
                .get(super::swarm_change::STOPPED_REPLICAS)
                .and_then(|n| n.parse().ok())
                .or_else(|| {
                    labels
                        .contains_key(super::swarm_change::STOPPED_GLOBAL)
                        .then_some(0)
                }),
            image: container
                .and_then(|c| c.image)
                .map(|i| without_digest(&i))
                .unwrap_or_default(),
            running: s
                .service_status
                .and_then(|st| st.running_tasks)
                .unwrap_or(0),
            update_started: s
                .update_status
                .as_ref()
                .and_then(|u| u.started_at.as_ref())
                .map(|t| t.to_string()),
            update: s.update_status.and_then(|u| {
                let state = u.state?.to_string();
                (!state.is_empty()).then(|| (state, u.message.unwrap_or_default()))
            }),
            update_config: Some(policy(spec.update_config)),
            name,
            stack,
            service,
            replicas,
            tasks,
        });
    }
    out.sort_by(|a, b| (&a.stack, &a.service).cmp(&(&b.stack, &b.service)));
    Ok(out)
}

impl StackService {
    /// Swarm's reason when a task that should run (of `image`, when given) waits for a node
    /// it cannot have: a host-mode port taken on every node, a constraint no node meets.
    pub fn unplaceable(&self, image: Option<&str>) -> Option<String> {
        self.tasks
            .iter()
            .filter(|t| t.desired == "running" && t.state == "pending")
            .filter(|t| image.is_none_or(|i| t.image == i))
            .find_map(|t| t.error.clone().filter(|e| e.contains("no suitable node")))
    }
}

/// `update_config` with Swarm's own defaults where it says nothing: stop-first, one at a time,
/// no delay, pause on failure, 5 s monitor.
fn policy(c: Option<bollard::models::ServiceSpecUpdateConfig>) -> UpdatePolicy {
    let c = c.unwrap_or_default();
    let word = |s: String| if s.is_empty() { None } else { Some(s) };
    let secs = |ns: Option<i64>, default: f64| ns.map_or(default, |n| n as f64 / 1e9);
    UpdatePolicy {
        order: c
            .order
            .and_then(|o| word(o.to_string()))
            .unwrap_or_else(|| "stop-first".into()),
        parallelism: c.parallelism.unwrap_or(1),
        delay_s: secs(c.delay, 0.0),
        failure_action: c
            .failure_action
            .and_then(|a| word(a.to_string()))
            .unwrap_or_else(|| "pause".into()),
        monitor_s: secs(c.monitor, 5.0),
    }
}

/// `image:tag@sha256:…` as Swarm pins it, said as `image:tag`.
fn without_digest(image: &str) -> String {
    image.split('@').next().unwrap_or(image).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_image_is_said_by_its_tag_and_defaults_fill_the_policy() {
        assert_eq!(
            without_digest("127.0.0.1:5000/specivo/specivo:0.1.9@sha256:abc"),
            "127.0.0.1:5000/specivo/specivo:0.1.9"
        );
        let p = policy(None);
        assert_eq!(
            (p.order.as_str(), p.parallelism, p.failure_action.as_str()),
            ("stop-first", 1, "pause")
        );
        assert!((p.monitor_s - 5.0).abs() < f64::EPSILON);
    }
}
