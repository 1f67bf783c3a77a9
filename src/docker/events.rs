//! The life events of a Compose project's containers as Docker reports them: which container
//! was stopped, removed, created and started while `docker compose up -d` recreates the stack.
use std::collections::HashMap;

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;

use super::engine::{DockerError, Engine};

/// One thing that happened to one container of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// The Compose service the container belongs to.
    pub service: String,
    /// The container's name (e.g. `specivo-api-1`).
    pub container: String,
    /// Docker's action: `kill`, `die`, `stop`, `destroy`, `create`, `start`.
    pub action: String,
    /// The exit code, for `die`.
    pub exit_code: Option<i64>,
    /// When Docker says it happened, nanoseconds since the epoch.
    pub time_nano: i64,
}

impl ContainerEvent {
    /// The first sign that the old container is going away.
    pub fn is_stop(&self) -> bool {
        matches!(self.action.as_str(), "kill" | "die" | "stop")
    }
}

/// The actions worth telling a user about; health checks' `exec_*` noise is left out.
const ACTIONS: &[&str] = &["kill", "die", "stop", "destroy", "create", "start"];

/// Follows the events of `project`'s containers from `since` (unix seconds, with a fraction
/// down to nanoseconds, e.g. `1764331200.250000000`; the daemon replays
/// what happened since then, so nothing is missed between subscribing and acting) until the
/// future is dropped or the daemon ends the stream.
pub async fn follow_project(
    engine: &Engine,
    project: &str,
    since: &str,
    on_event: &mut (dyn FnMut(ContainerEvent) + Send),
) -> Result<(), DockerError> {
    let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
    project_filters(&mut filters, project);
    let options = EventsOptionsBuilder::new()
        .since(since)
        .filters(&filters)
        .build();
    let mut stream = engine.docker.events(Some(options));
    while let Some(message) = stream.next().await {
        let message =
            message.map_err(|e| DockerError::api(format!("follow the events of {project}"), e))?;
        if let Some(event) = container_event(message) {
            on_event(event);
        }
    }
    Ok(())
}

/// What happened to `project`'s containers between `since` and `until` (unix seconds, as for
/// `follow_project`): the daemon replays its history and ends the stream at `until`.
pub async fn project_events_between(
    engine: &Engine,
    project: &str,
    since: &str,
    until: &str,
) -> Result<Vec<ContainerEvent>, DockerError> {
    let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
    project_filters(&mut filters, project);
    let options = EventsOptionsBuilder::new()
        .since(since)
        .until(until)
        .filters(&filters)
        .build();
    let mut stream = engine.docker.events(Some(options));
    let mut out = Vec::new();
    while let Some(message) = stream.next().await {
        let message = message
            .map_err(|e| DockerError::api(format!("read the past events of {project}"), e))?;
        out.extend(container_event(message));
    }
    Ok(out)
}

/// A point in time as the events API takes it: unix seconds with nanoseconds.
pub fn unix_time(at: jiff::Timestamp) -> String {
    format!("{}.{:09}", at.as_second(), at.subsec_nanosecond())
}

fn project_filters(filters: &mut HashMap<&str, Vec<String>>, project: &str) {
    filters.insert("type", vec!["container".into()]);
    filters.insert(
        "label",
        vec![format!("com.docker.compose.project={project}")],
    );
    filters.insert("event", ACTIONS.iter().map(|a| a.to_string()).collect());
}

/// One of the daemon's messages as a container event, when it is one worth telling.
fn container_event(message: bollard::models::EventMessage) -> Option<ContainerEvent> {
    // Docker 20.10 reports e.g. "exec_start: ..." with arguments; keep the verb.
    let action = message.action?.split(':').next()?.to_string();
    if !ACTIONS.contains(&action.as_str()) {
        return None;
    }
    let attributes = message.actor.and_then(|a| a.attributes).unwrap_or_default();
    Some(ContainerEvent {
        service: attributes
            .get("com.docker.compose.service")
            .cloned()
            .unwrap_or_default(),
        container: attributes.get("name").cloned().unwrap_or_default(),
        exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        action,
        time_nano: message
            .time_nano
            .or(message.time.map(|t| t * 1_000_000_000))
            .unwrap_or_default(),
    })
}
