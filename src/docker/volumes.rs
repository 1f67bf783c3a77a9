//! Named volumes for a restore: a volume cannot be renamed, so its newer content is copied
//! into a new volume that keeps it (never deleted), and only then emptied for the archive to
//! be extracted into it. The work is done by a short-lived container of an image already on
//! this machine (the app's own, or the database's), through the Docker API.
use std::collections::HashMap;

use futures_util::StreamExt;

use super::{DockerError, Engine};

/// Copies every entry of volume `name` (owners, modes and timestamps kept: `cp -a`) into a
/// new volume `<name>-before-rollback-<stamp>`, then empties `name`. Tries each of `images`
/// until one has a shell. Returns the new volume's name.
pub async fn move_aside(
    engine: &Engine,
    name: &str,
    stamp: &str,
    images: &[String],
) -> Result<String, String> {
    let aside = format!("{name}-before-rollback-{stamp}");
    let exists = engine.docker.inspect_volume(&aside).await.is_ok();
    if exists {
        return Err(format!(
            "volume {aside} already exists; hoist will not overwrite it"
        ));
    }
    let labels = HashMap::from([
        ("io.hoist.kept-aside-from".to_string(), name.to_string()),
        ("io.hoist.kept-aside-at".to_string(), stamp.to_string()),
    ]);
    engine
        .docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(aside.clone()),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .map_err(|e| DockerError::api(format!("create volume {aside}"), e).to_string())?;
    // Copy first; empty only once the copy succeeded, so the content is always somewhere.
    let script =
        "cp -a /volume/. /aside/ && find /volume -mindepth 1 -maxdepth 1 -exec rm -rf {} +";
    let mut last = String::from("no image to run the copy with");
    for image in images {
        let binds = vec![format!("{name}:/volume"), format!("{aside}:/aside")];
        let helper = Helper {
            what: "volume-restore",
            labels: HashMap::new(),
        };
        match run_once(engine, image, script, binds, &helper).await {
            Ok(()) => return Ok(aside),
            Err(e) => last = e,
        }
    }
    Err(format!(
        "the content of volume {name} could not be moved aside into volume {aside}: {last}"
    ))
}

/// Makes the volume `name` (with `labels`) and copies into it everything in `source`, a host
/// directory or a volume, mounted read-only (owners, modes and timestamps kept). Tries each of
/// `images` until one has a shell. Err: why not (the new volume may exist, half filled).
pub async fn copy_into_new(
    engine: &Engine,
    source: &str,
    name: &str,
    labels: HashMap<String, String>,
    images: &[String],
) -> Result<(), String> {
    engine
        .docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .map_err(|e| DockerError::api(format!("create volume {name}"), e).to_string())?;
    let script = "cp -a /volume/. /aside/";
    let mut last = String::from("no image to run the copy with");
    for image in images {
        let binds = vec![format!("{source}:/volume:ro"), format!("{name}:/aside")];
        // The volume's labels on the helper too: one left by a hoist killed during the copy
        // is found and removed with the volume it holds.
        let helper = Helper {
            what: "rehearsal-copy",
            labels: labels.clone(),
        };
        match run_once(engine, image, script, binds, &helper).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(format!(
        "{source} could not be copied into volume {name}: {last}"
    ))
}

/// A short-lived helper container's labels: what it does, and any others.
struct Helper {
    what: &'static str,
    labels: HashMap<String, String>,
}

/// Runs `sh -c script` in a new container of `image` with `binds`, without a network, waits
/// for it, and removes it.
async fn run_once(
    engine: &Engine,
    image: &str,
    script: &str,
    binds: Vec<String>,
    helper: &Helper,
) -> Result<(), String> {
    let mut labels = helper.labels.clone();
    labels.insert("io.hoist.helper".to_string(), helper.what.to_string());
    let docker = &engine.docker;
    let body = bollard::models::ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        cmd: Some(vec![script.to_string()]),
        user: Some("0:0".into()),
        network_disabled: Some(true),
        labels: Some(labels),
        host_config: Some(bollard::models::HostConfig {
            binds: Some(binds),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .map_err(|e| DockerError::api(format!("create a container of {image}"), e).to_string())?;
    let id = created.id;
    let result = async {
        docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| {
                DockerError::api(format!("start a container of {image}"), e).to_string()
            })?;
        let mut wait =
            docker.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
        match wait.next().await {
            Some(Ok(r)) if r.status_code == 0 => Ok(()),
            Some(Ok(r)) => Err(format!(
                "the copy in {image} exited with code {}",
                r.status_code
            )),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                Err(format!("the copy in {image} exited with code {code}"))
            }
            Some(Err(e)) => Err(DockerError::api("wait for the copy", e).to_string()),
            None => Err("the copy's container vanished".to_string()),
        }
    }
    .await;
    let _ = docker
        .remove_container(
            &id,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await;
    result
}

/// The volumes a restore made to keep newer content (`move_aside`'s label): (name, the volume
/// it was copied from), sorted by name.
pub async fn kept_aside(engine: &Engine) -> Result<Vec<(String, String)>, String> {
    let filters = HashMap::from([("label", vec!["io.hoist.kept-aside-from"])]);
    let options = bollard::query_parameters::ListVolumesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let listed = engine
        .docker
        .list_volumes(Some(options))
        .await
        .map_err(|e| DockerError::api("list volumes", e).to_string())?;
    let mut kept: Vec<(String, String)> = listed
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| {
            let from = v.labels.get("io.hoist.kept-aside-from")?.clone();
            Some((v.name, from))
        })
        .collect();
    kept.sort();
    Ok(kept)
}
