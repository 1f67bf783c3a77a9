//! Stopping the app's services so that nothing more is written or migrated (the database keeps
//! running): before a restore, and when a failed upgrade is left for a person to decide.
use std::time::Duration;

use crate::probe::facts;

/// How long each container may take to stop when `timeouts.stop` does not say.
pub const DEFAULT_STOP: Duration = Duration::from_secs(30);

/// What stopping the services did.
#[derive(Debug, Default)]
pub struct Stopped {
    /// The containers stopped.
    pub stopped: Vec<String>,
    /// The containers that would not stop, each with why.
    pub failed: Vec<String>,
}

/// Stops every container of `services` that runs, restarts or is paused (a crash-looping one
/// counts: between two crashes it would migrate the database again), each given `timeout`.
/// `on_stopped` hears each one as it stops. Every container is tried, even after one failed.
pub async fn stop_services(
    docker: &facts::Running,
    services: &[String],
    timeout: Duration,
    on_stopped: &(dyn Fn(&str) + Sync),
) -> Stopped {
    let mut out = Stopped::default();
    for service in services {
        for c in docker.of_service(service) {
            if !matches!(c.state.as_str(), "running" | "restarting" | "paused") {
                continue;
            }
            match crate::docker::containers::stop(&docker.engine, &c.id, timeout).await {
                Ok(()) => {
                    on_stopped(&c.name);
                    out.stopped.push(c.name.clone());
                }
                Err(e) => out.failed.push(format!("{} ({e})", c.name)),
            }
        }
    }
    out
}
