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
/// counts: between two crashes it would migrate the database again), each given `timeout`, all
/// at once as `docker compose stop` does (one after another, their timeouts would add up, and
/// so would the downtime). `on_stopped` hears each one as it stops. Every container is tried,
/// even after one failed.
pub async fn stop_services(
    docker: &facts::Running,
    services: &[String],
    timeout: Duration,
    on_stopped: &(dyn Fn(&str) + Sync),
) -> Stopped {
    let to_stop: Vec<_> = services
        .iter()
        .flat_map(|service| docker.of_service(service))
        .filter(|c| matches!(c.state.as_str(), "running" | "restarting" | "paused"))
        .collect();
    let stops = to_stop.iter().map(|c| async move {
        let result = crate::docker::containers::stop(&docker.engine, &c.id, timeout).await;
        if result.is_ok() {
            on_stopped(&c.name);
        }
        (c, result)
    });
    let mut out = Stopped::default();
    for (c, result) in futures_util::future::join_all(stops).await {
        match result {
            Ok(()) => out.stopped.push(c.name.clone()),
            Err(e) => out.failed.push(format!("{} ({e})", c.name)),
        }
    }
    out
}
