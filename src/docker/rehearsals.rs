//! What a rehearsal made in Docker, found and removed by its labels: containers, networks and
//! volumes (the copies of the data included). Labels, not names, so that what a hoist killed
//! outright left behind is found by the next one exactly as a finished rehearsal is cleared.
use std::collections::{BTreeSet, HashMap};

use super::{DockerError, Engine};

/// The rehearsal's own Compose project name, on everything it made.
pub const LABEL: &str = "io.hoist.rehearsal";
/// The real project it rehearsed.
pub const LABEL_OF: &str = "io.hoist.rehearsal-of";

fn of_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL_OF}={project}")])])
}

fn named_filter(rehearsal: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL}={rehearsal}")])])
}

/// The rehearsals of `project` that have anything in Docker, and how many of their containers
/// run.
pub async fn of_project(
    engine: &Engine,
    project: &str,
) -> Result<Vec<(String, usize)>, DockerError> {
    let filters = of_filter(project);
    let containers = engine
        .docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list a rehearsal's containers", e))?;
    let volumes = engine
        .docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list a rehearsal's volumes", e))?;
    let networks = engine
        .docker
        .list_networks(Some(
            bollard::query_parameters::ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list a rehearsal's networks", e))?;
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut running: HashMap<String, usize> = HashMap::new();
    for c in &containers {
        if let Some(name) = c.labels.as_ref().and_then(|l| l.get(LABEL)) {
            names.insert(name.clone());
            if c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING) {
                *running.entry(name.clone()).or_default() += 1;
            }
        }
    }
    for v in volumes.volumes.unwrap_or_default() {
        if let Some(name) = v.labels.get(LABEL) {
            names.insert(name.clone());
        }
    }
    for n in networks {
        if let Some(name) = n.labels.as_ref().and_then(|l| l.get(LABEL)) {
            names.insert(name.clone());
        }
    }
    Ok(names
        .into_iter()
        .map(|n| {
            let r = running.get(&n).copied().unwrap_or(0);
            (n, r)
        })
        .collect())
}

/// Removes every container, network and volume of the rehearsal `rehearsal`, in that order
/// (a network or volume in use cannot go). Err: what is still there.
pub async fn remove(engine: &Engine, rehearsal: &str) -> Result<(), String> {
    let docker = &engine.docker;
    let filters = named_filter(rehearsal);
    let mut left = Vec::new();
    let containers = docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list a rehearsal's containers", e).to_string())?;
    for c in containers {
        let Some(id) = c.id else { continue };
        let removed = docker
            .remove_container(
                &id,
                Some(
                    bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await;
        if let Err(e) = removed {
            left.push(format!("container {id:.12} ({e})"));
        }
    }
    let networks = docker
        .list_networks(Some(
            bollard::query_parameters::ListNetworksOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list a rehearsal's networks", e).to_string())?;
    for n in networks {
        let Some(name) = n.name else { continue };
        if let Err(e) = docker.remove_network(&name).await {
            left.push(format!("network {name} ({e})"));
        }
    }
    let volumes = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| DockerError::api("list a rehearsal's volumes", e).to_string())?;
    for v in volumes.volumes.unwrap_or_default() {
        let removed = docker
            .remove_volume(
                &v.name,
                Some(
                    bollard::query_parameters::RemoveVolumeOptionsBuilder::new()
                        .force(true)
                        .build(),
                ),
            )
            .await;
        if let Err(e) = removed {
            left.push(format!("volume {} ({e})", v.name));
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the rehearsal {rehearsal} could not be removed whole: {}",
            left.join("; ")
        ))
    }
}
