//! The containers of one Compose project, found by Compose's labels, with what an upgrade
//! needs to know of each: state, health, restarts, the image it runs and that image's version.
use std::collections::HashMap;

use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, LogsOptionsBuilder,
};
use futures_util::StreamExt;
use serde::Serialize;

use super::engine::{DockerError, Engine};

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_ENV_FILE: &str = "com.docker.compose.project.environment_file";
pub const LABEL_OCI_VERSION: &str = "org.opencontainers.image.version";

/// A container's health as Docker reports it; `None` when the container has no healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        })
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    /// created, running, paused, restarting, removing, exited or dead.
    pub state: String,
    pub health: Option<Health>,
    pub exit_code: i64,
    pub restart_count: i64,
    pub started_at: Option<String>,
    /// When its last run ended (RFC 3339; Docker's zero time when it never ended).
    pub finished_at: Option<String>,
    /// The image as the compose file asked for it, e.g. `registry/app:0.1.9`.
    pub image: String,
    pub image_id: String,
    /// The registry digest of that image (`sha256:...`), when it came from a registry.
    pub digest: Option<String>,
    /// The image's `org.opencontainers.image.version` label.
    pub version_label: Option<String>,
    /// Network name -> container IP address.
    pub addresses: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub config_files: Option<String>,
    pub env_file: Option<String>,
    /// What is mounted where, as the engine sees it (host paths of volumes included).
    pub mounts: Vec<Mount>,
    /// Seconds it is given to stop (Compose's `stop_grace_period`), when it sets one.
    pub stop_timeout: Option<i64>,
    /// The process it runs (its path, then its arguments): what the image's entrypoint and
    /// command make of it, which the compose file may not show.
    pub process: Vec<String>,
    /// The image's `org.opencontainers.image.title` label.
    pub image_title: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mount {
    /// bind, volume or tmpfs.
    pub kind: String,
    /// The volume's name (named volumes only).
    pub name: Option<String>,
    /// The path on the host (for a volume, its directory under Docker's data root).
    pub source: String,
    pub destination: String,
    pub read_write: bool,
}

impl ContainerInfo {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    /// The tag part of the image reference (`0.1.9` of `host:5000/app:0.1.9`).
    pub fn image_tag(&self) -> Option<&str> {
        image_tag(&self.image)
    }
}

/// The tag of an image reference; the registry's port is not a tag, and a digest is not either.
pub fn image_tag(reference: &str) -> Option<&str> {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

/// The repository part of an image reference (`host:5000/app` of `host:5000/app:0.1.9`).
pub fn image_repository(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    match image_tag(without_digest) {
        Some(tag) => &without_digest[..without_digest.len() - tag.len() - 1],
        None => without_digest,
    }
}

/// All containers of the project (running or not), one-off `compose run` containers excluded,
/// sorted by service and number.
pub async fn stack_containers(
    engine: &Engine,
    project: &str,
) -> Result<Vec<ContainerInfo>, DockerError> {
    let summaries = list_by_label(
        engine,
        &format!("{LABEL_PROJECT}={project}"),
        &format!("list the containers of project {project}"),
    )
    .await?;
    inspect_all(engine, summaries, &|labels| {
        if labels
            .get(LABEL_ONEOFF)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return None;
        }
        Some((
            labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
            labels
                .get(LABEL_NUMBER)
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        ))
    })
    .await
}

/// The containers of a Swarm stack's tasks on this node, named by the compose file's service
/// (`<stack>_api` is `api`) and numbered by the task's slot: the running ones, and the newest
/// of a service that has none running (Swarm keeps the containers of replaced tasks, which are
/// history, not the app).
pub async fn swarm_task_containers(
    engine: &Engine,
    stack: &str,
) -> Result<Vec<ContainerInfo>, DockerError> {
    let summaries = list_by_label(
        engine,
        &format!("{}={stack}", super::swarm::NAMESPACE),
        &format!("list the containers of Swarm stack {stack}"),
    )
    .await?;
    let prefix = format!("{stack}_");
    let all = inspect_all(engine, summaries, &|labels| {
        let service = labels
            .get(LABEL_SWARM_SERVICE)?
            .strip_prefix(&prefix)?
            .to_string();
        // `stack_api.2.taskid` (a replicated service's slot) or `stack_api.nodeid.taskid`.
        let slot = labels
            .get(LABEL_SWARM_TASK_NAME)
            .and_then(|n| n.split('.').nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Some((service, slot))
    })
    .await?;
    let mut kept: Vec<ContainerInfo> = Vec::new();
    for c in &all {
        if c.is_running() {
            kept.push(c.clone());
        } else if !all.iter().any(|o| o.service == c.service && o.is_running()) {
            let newest = all
                .iter()
                .filter(|o| o.service == c.service)
                .max_by(|a, b| a.started_at.cmp(&b.started_at));
            if newest.is_some_and(|n| n.id == c.id) {
                kept.push(c.clone());
            }
        }
    }
    // A task container's own networks are overlays, which the host need not reach; its
    // `docker_gwbridge` endpoint is on this host's bridge, so it is tried first.
    let gateway = gateway_addresses(engine).await;
    for c in &mut kept {
        c.image = c.image.split('@').next().unwrap_or(&c.image).to_string();
        if let Some(ip) = gateway.get(&c.id) {
            c.addresses
                .insert(0, (GATEWAY_BRIDGE.to_string(), ip.clone()));
        }
    }
    Ok(kept)
}

pub const LABEL_SWARM_SERVICE: &str = "com.docker.swarm.service.name";
pub const LABEL_SWARM_TASK_NAME: &str = "com.docker.swarm.task.name";
/// The bridge that gives a Swarm task's container its way out of the overlay, on each node.
const GATEWAY_BRIDGE: &str = "docker_gwbridge";

/// Container id -> its address on `docker_gwbridge` (empty when there is none).
async fn gateway_addresses(engine: &Engine) -> HashMap<String, String> {
    let Ok(network) = engine
        .docker
        .inspect_network(
            GATEWAY_BRIDGE,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    else {
        return HashMap::new();
    };
    network
        .containers
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(id, ep)| {
            let ip = ep.ipv4_address?;
            let ip = ip.split('/').next()?.to_string();
            (!ip.is_empty()).then_some((id, ip))
        })
        .collect()
}

/// A container's service and number, read from its labels (None: not one of the app's).
type NameOf<'a> = dyn Fn(&HashMap<String, String>) -> Option<(String, u32)> + Sync + 'a;

/// Each container of `summaries` inspected, named by `name_of` its labels (service, number;
/// None: left out), sorted by service and number.
async fn inspect_all(
    engine: &Engine,
    summaries: Vec<bollard::models::ContainerSummary>,
    name_of: &NameOf<'_>,
) -> Result<Vec<ContainerInfo>, DockerError> {
    let mut images: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    let mut out = Vec::new();
    for summary in summaries {
        let Some(id) = summary.id else { continue };
        let labels = summary.labels.unwrap_or_default();
        let Some((service, number)) = name_of(&labels) else {
            continue;
        };
        // A container can vanish between the list and the inspect (compose recreating it).
        let inspect = match engine
            .docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspect) => inspect,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => continue,
            Err(e) => return Err(DockerError::api(format!("inspect container {id}"), e)),
        };
        let state = inspect.state.unwrap_or_default();
        let config = inspect.config.unwrap_or_default();
        // The app's secrets, so that its log lines and errors can be masked wherever shown.
        for entry in config.env.iter().flatten() {
            crate::redact::learn_env_entry(entry);
        }
        let stop_timeout = config.stop_timeout;
        let image_title = config
            .labels
            .as_ref()
            .and_then(|l| l.get("org.opencontainers.image.title"))
            .cloned();
        let process: Vec<String> = inspect
            .path
            .clone()
            .into_iter()
            .chain(inspect.args.clone().unwrap_or_default())
            .collect();
        let image = config.image.unwrap_or_default();
        let image_id = inspect.image.unwrap_or_default();
        if !images.contains_key(&image_id) {
            let facts = image_facts(engine, &image_id, &image).await?;
            images.insert(image_id.clone(), facts);
        }
        let (digest, version_label) = images.get(&image_id).cloned().unwrap_or((None, None));
        let addresses = addresses(inspect.network_settings);
        let mounts = inspect
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| Mount {
                kind: m.typ.unwrap_or_default(),
                name: m.name,
                source: m.source.unwrap_or_default(),
                destination: m.destination.unwrap_or_default(),
                read_write: m.rw.unwrap_or(true),
            })
            .collect();
        out.push(ContainerInfo {
            id,
            name: inspect
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            service,
            number,
            state: state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            health: state.health.and_then(|h| h.status).and_then(|s| {
                match s.to_string().as_str() {
                    "starting" => Some(Health::Starting),
                    "healthy" => Some(Health::Healthy),
                    "unhealthy" => Some(Health::Unhealthy),
                    _ => None,
                }
            }),
            exit_code: state.exit_code.unwrap_or(0),
            restart_count: inspect.restart_count.unwrap_or(0),
            started_at: state.started_at,
            finished_at: state.finished_at,
            image,
            image_id,
            digest,
            version_label,
            addresses,
            working_dir: labels.get(LABEL_WORKING_DIR).cloned(),
            config_files: labels.get(LABEL_CONFIG_FILES).cloned(),
            env_file: labels.get(LABEL_ENV_FILE).cloned(),
            mounts,
            stop_timeout,
            process,
            image_title,
        });
    }
    out.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
    Ok(out)
}

/// The Compose project that runs containers started from `working_dir`, when there is one: a
/// stack started with `-p NAME` runs under a name the files do not tell.
pub async fn project_started_from(
    engine: &Engine,
    working_dir: &std::path::Path,
) -> Result<Option<String>, DockerError> {
    let summaries = list_by_label(
        engine,
        &format!("{LABEL_WORKING_DIR}={}", working_dir.display()),
        "list the containers started from the project directory",
    )
    .await?;
    Ok(summaries
        .into_iter()
        .find_map(|s| s.labels.and_then(|mut l| l.remove(LABEL_PROJECT))))
}

/// Every container (running or not) with the label `key=value`; `what` names the request in errors.
async fn list_by_label(
    engine: &Engine,
    label: &str,
    what: &str,
) -> Result<Vec<bollard::models::ContainerSummary>, DockerError> {
    let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    engine
        .docker
        .list_containers(Some(options))
        .await
        .map_err(|e| DockerError::api(what, e))
}

/// The registry digest matching the reference's repository, and the OCI version label.
async fn image_facts(
    engine: &Engine,
    image_id: &str,
    reference: &str,
) -> Result<(Option<String>, Option<String>), DockerError> {
    let inspect = match engine.docker.inspect_image(image_id).await {
        Ok(i) => i,
        // The image was removed while the container still runs: nothing more to tell.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Ok((None, None)),
        Err(e) => return Err(DockerError::api(format!("inspect image {reference}"), e)),
    };
    let repo = image_repository(reference);
    let digest = inspect
        .repo_digests
        .unwrap_or_default()
        .into_iter()
        .find_map(|d| {
            d.split_once('@')
                .filter(|(r, _)| *r == repo)
                .map(|(_, dig)| dig.to_string())
        });
    let version = inspect
        .config
        .and_then(|c| c.labels)
        .and_then(|mut l| l.remove(LABEL_OCI_VERSION));
    Ok((digest, version))
}

/// Learns the secrets in a container's environment (see `redact`), so that its log lines can be
/// masked. A container that cannot be inspected is left to what was learned already.
pub async fn learn_secrets(engine: &Engine, container: &str) {
    if let Ok(inspect) = engine
        .docker
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
    {
        for entry in inspect.config.and_then(|c| c.env).iter().flatten() {
            crate::redact::learn_env_entry(entry);
        }
    }
}

/// A container's address on its first network (by name, sorted), for a server hoist talks to
/// directly (SurrealDB's HTTP API). None when it has none (not running, or host networking).
pub async fn address_of(engine: &Engine, container: &str) -> Result<Option<String>, DockerError> {
    let inspect = engine
        .docker
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
        .map_err(|e| DockerError::api(format!("inspect container {container}"), e))?;
    Ok(addresses(inspect.network_settings)
        .into_iter()
        .next()
        .map(|(_, ip)| ip))
}

/// A container's (network, address) pairs, sorted by network; networks without one left out.
fn addresses(settings: Option<bollard::models::NetworkSettings>) -> Vec<(String, String)> {
    let mut addresses: Vec<(String, String)> = settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(net, ep)| {
            ep.ip_address
                .filter(|ip| !ip.is_empty())
                .map(|ip| (net, ip))
        })
        .collect();
    addresses.sort();
    addresses
}

/// A container's environment (`KEY=value` entries, secrets whole: the caller decides what is
/// shown) and its labels (the image's and its own), Compose's and Swarm's bookkeeping labels left out.
pub async fn config_of(
    engine: &Engine,
    id: &str,
) -> Result<(Vec<String>, std::collections::BTreeMap<String, String>), DockerError> {
    let inspect = engine
        .docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| DockerError::api(format!("inspect container {id}"), e))?;
    let config = inspect.config.unwrap_or_default();
    let labels = config
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| {
            !k.starts_with("com.docker.compose.") && !k.starts_with("com.docker.swarm.")
        })
        .collect();
    Ok((config.env.unwrap_or_default(), labels))
}

/// The last `n` lines a container logged (stdout and stderr), for evidence in a report, with
/// known secrets masked.
pub async fn last_log_lines(
    engine: &Engine,
    container: &str,
    n: usize,
) -> Result<Vec<String>, DockerError> {
    learn_secrets(engine, container).await;
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let mut stream = engine.docker.logs(container, Some(options));
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| DockerError::api(format!("read the logs of {container}"), e))?;
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    let lines: Vec<String> = text
        .lines()
        .map(|l| crate::redact::mask(l).into_owned())
        .collect();
    let skip = lines.len().saturating_sub(n);
    Ok(lines.into_iter().skip(skip).collect())
}

/// Stops a container, giving it `timeout` to exit after SIGTERM (Docker then kills it).
pub async fn stop(
    engine: &Engine,
    id: &str,
    timeout: std::time::Duration,
) -> Result<(), DockerError> {
    let options = bollard::query_parameters::StopContainerOptionsBuilder::new()
        .t(i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX))
        .build();
    // The daemon kills the container after `timeout`; a stop still pending well after that
    // (a crash-looping container on a loaded daemon) is said, not waited on for minutes.
    let bound = timeout + std::time::Duration::from_secs(20);
    match tokio::time::timeout(bound, engine.docker.stop_container(id, Some(options))).await {
        Ok(done) => done.map_err(|e| DockerError::api(format!("stop container {id}"), e)),
        Err(_) => Err(DockerError::Api {
            what: format!("stop container {id}"),
            reason: format!(
                "it had not stopped {} s after it was asked to",
                bound.as_secs()
            ),
        }),
    }
}

/// The exit code a container's last run ended with (137: it was killed).
pub async fn exit_code(engine: &Engine, id: &str) -> Option<i64> {
    let inspect = engine
        .docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .ok()?;
    inspect.state?.exit_code
}

/// Starts a stopped container again.
pub async fn start(engine: &Engine, id: &str) -> Result<(), DockerError> {
    engine
        .docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .map_err(|e| DockerError::api(format!("start container {id}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_repositories_ignore_the_registry_port() {
        assert_eq!(
            image_tag("127.0.0.1:5000/specivo/specivo:0.1.9"),
            Some("0.1.9")
        );
        assert_eq!(image_tag("127.0.0.1:5000/specivo/specivo"), None);
        assert_eq!(image_tag("postgres@sha256:abc"), None);
        assert_eq!(
            image_repository("127.0.0.1:5000/specivo/specivo:0.1.9"),
            "127.0.0.1:5000/specivo/specivo"
        );
        assert_eq!(image_repository("redis"), "redis");
        assert_eq!(image_repository("redis:7@sha256:abc"), "redis");
    }
}
