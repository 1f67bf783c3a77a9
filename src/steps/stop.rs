//! Stopping the app's services so that nothing more is written or migrated (the database keeps
//! running): before a restore, and when a failed upgrade is left for a person to decide.
use std::time::Duration;

use crate::probe::facts;

/// How long each container may take to stop when `timeouts.stop` does not say.
pub const DEFAULT_STOP: Duration = Duration::from_secs(30);

/// Docker's own grace when a container sets none (what `docker compose up` gives it).
pub const DOCKER_DEFAULT_STOP: Duration = Duration::from_secs(10);

/// How long each container is given to stop.
#[derive(Debug, Clone, Copy)]
pub enum Grace {
    /// The same for every container (hoist's own stops, with nothing about to kill them).
    Fixed(Duration),
    /// Each container's own (`stop_grace_period`), else Docker's 10 s: a stop that stands in
    /// for the one `up -d` is about to do, so that it takes no longer than Compose's would.
    AsCompose,
}

impl Grace {
    fn for_container(self, c: &crate::docker::containers::ContainerInfo) -> Duration {
        match self {
            Grace::Fixed(d) => d,
            Grace::AsCompose => c
                .stop_timeout
                .and_then(|s| u64::try_from(s).ok())
                .map_or(DOCKER_DEFAULT_STOP, Duration::from_secs),
        }
    }
}

/// What stopping the services did.
#[derive(Debug, Default)]
pub struct Stopped {
    /// The containers stopped.
    pub stopped: Vec<String>,
    /// The containers that would not stop, each with why.
    pub failed: Vec<String>,
}

/// Stops every container of `services` that runs, restarts or is paused (a crash-looping one
/// counts: between two crashes it would migrate the database again), each given its `grace`, all
/// at once as `docker compose stop` does (one after another, their timeouts would add up, and
/// so would the downtime). `on_stopped` hears each one as it stops. Every container is tried,
/// even after one failed.
pub async fn stop_services(
    docker: &facts::Running,
    services: &[String],
    grace: Grace,
    on_stopped: &(dyn Fn(&str) + Sync),
) -> Stopped {
    let to_stop: Vec<_> = services
        .iter()
        .flat_map(|service| docker.of_service(service))
        .filter(|c| matches!(c.state.as_str(), "running" | "restarting" | "paused"))
        .collect();
    let stops = to_stop.iter().map(|c| async move {
        let result =
            crate::docker::containers::stop(&docker.engine, &c.id, grace.for_container(c)).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::containers::ContainerInfo;

    #[test]
    fn a_stop_in_place_of_compose_s_gives_what_compose_would() {
        let with = |secs| ContainerInfo {
            stop_timeout: secs,
            ..Default::default()
        };
        // Compose's `stop_grace_period: 1m` reaches the engine as the container's StopTimeout.
        assert_eq!(
            Grace::AsCompose.for_container(&with(Some(60))),
            Duration::from_secs(60)
        );
        assert_eq!(
            Grace::AsCompose.for_container(&with(None)),
            DOCKER_DEFAULT_STOP
        );
        // A negative StopTimeout is not a duration: Docker's default, not a wrap-around.
        assert_eq!(
            Grace::AsCompose.for_container(&with(Some(-1))),
            DOCKER_DEFAULT_STOP
        );
        assert_eq!(
            Grace::Fixed(DEFAULT_STOP).for_container(&with(Some(5))),
            DEFAULT_STOP
        );
    }
}
