//! What hoist changes of a Swarm service: its image (Swarm then replaces its tasks as its
//! `update_config` says), and its replicas scaled to zero while a restore runs. Read through
//! the Engine API, changed with `docker service update`: an update sends the whole spec back,
//! and a spec read into bollard's types and written again loses what they do not hold as the
//! engine names it (a container spec's healthcheck, on Engine 20.10). The CLI also resolves
//! the image's digest, so every node runs the same bits, and passes registry credentials on.
//! A rollback sets the previous image rather than asking for Swarm's previous spec: after
//! Swarm rolled an update back by itself, its "previous" spec is the failed one.
use std::time::Duration;

use bollard::query_parameters::InspectServiceOptions;
use tokio::process::Command;

use super::{DockerError, Engine};

/// The label that holds a replicated service's replicas while hoist has it scaled to zero
/// (for a restore), so that the count comes back even after a hoist that was killed.
pub const STOPPED_REPLICAS: &str = "io.hoist.stopped-replicas";

/// The label on a global service hoist stopped for a restore, and the placement constraint
/// that stopped it: a global service runs a task on every node that its constraints allow, so
/// one no node meets stops it (there are no replicas to scale to zero).
pub const STOPPED_GLOBAL: &str = "io.hoist.stopped-global";
const NO_NODE: &str = "node.labels.io.hoist.stopped==true";

/// How long one `docker service update --detach` may take (it returns once Swarm took it).
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether the update changed the spec: a service already on the image is left alone (an
/// update that changes nothing would start no tasks and leave the last update's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    Started,
    AlreadyThere,
}

/// Sets the image of service `name` (`<stack>_<service>`) to `image`. A service hoist scaled
/// to zero gets its replicas back in the same update.
pub async fn set_image(engine: &Engine, name: &str, image: &str) -> Result<Updated, DockerError> {
    let (image_now, replicas, labels) = read(engine, name).await?;
    let stopped = labels
        .get(STOPPED_REPLICAS)
        .and_then(|n| n.parse::<u64>().ok());
    let stopped_global = labels.contains_key(STOPPED_GLOBAL);
    if image_now.split('@').next() == Some(image) && stopped.is_none() && !stopped_global {
        return Ok(Updated::AlreadyThere);
    }
    let mut args = vec!["--image".to_string(), image.to_string()];
    if stopped_global {
        args.extend([
            "--constraint-rm".into(),
            NO_NODE.into(),
            "--label-rm".into(),
            STOPPED_GLOBAL.into(),
        ]);
    }
    if let (Some(n), Some(_)) = (stopped, replicas) {
        args.extend([
            "--replicas".into(),
            n.to_string(),
            "--label-rm".into(),
            STOPPED_REPLICAS.into(),
        ]);
    }
    service_update(
        name,
        &args,
        &format!("update Swarm service {name} to {image}"),
    )
    .await?;
    Ok(Updated::Started)
}

/// How a service was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// Scaled to zero from this many replicas (kept in the service's label).
    Scaled(u64),
    /// A global service (one task per node), stopped by a placement constraint no node meets.
    Global,
}

/// Scales replicated service `name` to zero, its replicas kept in a label of the service
/// (`STOPPED_REPLICAS`) for `set_image` to give back; a global one is stopped by a placement
/// constraint no node meets (`STOPPED_GLOBAL`), which `set_image` removes. Swarm then stops
/// its tasks.
pub async fn scale_to_zero(engine: &Engine, name: &str) -> Result<Stopped, DockerError> {
    let (_, replicas, labels) = read(engine, name).await?;
    let Some(before) = replicas else {
        if !labels.contains_key(STOPPED_GLOBAL) {
            let args = [
                "--constraint-add".to_string(),
                NO_NODE.into(),
                "--label-add".into(),
                format!("{STOPPED_GLOBAL}=true"),
            ];
            service_update(name, &args, &format!("stop global Swarm service {name}")).await?;
        }
        return Ok(Stopped::Global);
    };
    if before == 0 {
        // Scaled to zero before: by hoist (its label holds the count) or by the user.
        let kept = labels
            .get(STOPPED_REPLICAS)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        return Ok(Stopped::Scaled(kept));
    }
    let args = [
        "--label-add".to_string(),
        format!("{STOPPED_REPLICAS}={before}"),
        "--replicas".into(),
        "0".into(),
    ];
    service_update(name, &args, &format!("scale Swarm service {name} to zero")).await?;
    Ok(Stopped::Scaled(before))
}

/// The service's image, its replicas (None: global) and its labels.
async fn read(
    engine: &Engine,
    name: &str,
) -> Result<
    (
        String,
        Option<u64>,
        std::collections::HashMap<String, String>,
    ),
    DockerError,
> {
    let service = engine
        .docker
        .inspect_service(name, None::<InspectServiceOptions>)
        .await
        .map_err(|e| DockerError::api(format!("read Swarm service {name}"), e))?;
    let spec = service.spec.unwrap_or_default();
    let image = spec
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.image)
        .unwrap_or_default();
    let mode = spec.mode.unwrap_or_default();
    let replicas = match (mode.global, mode.replicated) {
        (Some(_), _) => None,
        (None, r) => Some(
            r.and_then(|r| r.replicas)
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(1),
        ),
    };
    Ok((image, replicas, spec.labels.unwrap_or_default()))
}

/// `docker service update --detach --with-registry-auth ARGS NAME`.
async fn service_update(name: &str, args: &[String], what: &str) -> Result<(), DockerError> {
    let mut cmd = Command::new("docker");
    cmd.args([
        "service",
        "update",
        "--detach",
        "--quiet",
        "--with-registry-auth",
    ])
    .args(args)
    .arg(name)
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let failed = |reason: String| DockerError::Api {
        what: what.to_string(),
        reason,
    };
    match tokio::time::timeout(CLI_TIMEOUT, cmd.output()).await {
        Err(_) => Err(failed(format!(
            "`docker service update` did not answer within {} s",
            CLI_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Err(failed(format!("`docker` could not be run: {e}"))),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(failed(
            crate::redact::mask(String::from_utf8_lossy(&out.stderr).trim()).to_string(),
        )),
    }
}
