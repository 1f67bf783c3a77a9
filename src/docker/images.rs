//! Images: whether a tag exists in its registry (asked through the engine, which knows the
//! registry's address, TLS and credentials), pulling with per-layer progress, local presence.
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

use super::containers::{image_repository, image_tag};
use super::engine::{DockerError, Engine, describe};

/// What the registry says of a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagStatus {
    /// It exists, with this manifest digest.
    Exists { digest: String },
    /// The registry answered: no such tag (or repository).
    Missing,
}

/// Asks the registry, through the engine, whether `reference` exists. A registry that cannot
/// be reached is an error, not "missing".
pub async fn tag_status(engine: &Engine, reference: &str) -> Result<TagStatus, DockerError> {
    match engine.docker.inspect_registry_image(reference, None).await {
        Ok(d) => Ok(TagStatus::Exists {
            digest: d.descriptor.digest.unwrap_or_default(),
        }),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(TagStatus::Missing),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        }) => Err(DockerError::Api {
            what: format!("ask the registry about {reference}"),
            reason: format!(
                "{message} (HTTP {status_code}); check that the registry is reachable from this server"
            ),
        }),
        Err(e) => Err(DockerError::Api {
            what: format!("ask the registry about {reference}"),
            reason: describe(&e),
        }),
    }
}

/// Whether the image is present locally.
pub async fn is_local(engine: &Engine, reference: &str) -> Result<bool, DockerError> {
    match engine.docker.inspect_image(reference).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(DockerError::api(format!("inspect image {reference}"), e)),
    }
}

/// One progress report of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    pub reference: String,
    /// The layer id, when the report is about a layer.
    pub layer: Option<String>,
    /// Downloading, Extracting, Pull complete, Already exists, ...
    pub status: String,
    pub current: Option<u64>,
    pub total: Option<u64>,
}

/// Pulls `reference`, reporting each status line. Errors in the middle of the stream (a layer
/// that fails) are errors, not the end of the stream.
pub async fn pull(
    engine: &Engine,
    reference: &str,
    progress: &mut (dyn FnMut(PullProgress) + Send),
) -> Result<(), DockerError> {
    let repo = image_repository(reference);
    let tag = image_tag(reference).unwrap_or("latest");
    let options = CreateImageOptionsBuilder::default()
        .from_image(repo)
        .tag(tag)
        .build();
    let mut stream = engine.docker.create_image(Some(options), None, None);
    let what = format!("pull {reference}");
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| DockerError::api(what.clone(), e))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(DockerError::Api { what, reason: err });
        }
        let detail = info.progress_detail.unwrap_or_default();
        progress(PullProgress {
            reference: reference.to_string(),
            layer: info.id,
            status: info.status.unwrap_or_default(),
            current: detail.current.and_then(|c| u64::try_from(c).ok()),
            total: detail.total.and_then(|t| u64::try_from(t).ok()),
        });
    }
    Ok(())
}

/// The uncompressed layer digests (diff IDs) of every local image of `repository`: a layer of
/// a new image that is among them needs no download.
pub async fn local_layers(
    engine: &Engine,
    repository: &str,
) -> Result<std::collections::HashSet<String>, DockerError> {
    let mut filters = std::collections::HashMap::new();
    filters.insert("reference", vec![format!("{repository}:*")]);
    let options = bollard::query_parameters::ListImagesOptionsBuilder::new()
        .filters(&filters)
        .build();
    let images = engine
        .docker
        .list_images(Some(options))
        .await
        .map_err(|e| DockerError::api(format!("list the local images of {repository}"), e))?;
    let mut layers = std::collections::HashSet::new();
    for image in images {
        let inspect = engine
            .docker
            .inspect_image(&image.id)
            .await
            .map_err(|e| DockerError::api(format!("inspect image {}", image.id), e))?;
        layers.extend(inspect.root_fs.and_then(|r| r.layers).unwrap_or_default());
    }
    Ok(layers)
}

/// Where the engine keeps images (e.g. `/var/lib/docker`), when it says.
pub async fn root_dir(engine: &Engine) -> Result<Option<String>, DockerError> {
    let info = engine
        .docker
        .info()
        .await
        .map_err(|e| DockerError::api("read the engine's info", e))?;
    Ok(info.docker_root_dir)
}
