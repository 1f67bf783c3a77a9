//! What the user can move to: the upgraded image's tags from its registry, read as versions and
//! ordered; what `latest` really is; the next step and the path to the newest.
pub mod order;
pub mod registry;

use serde::Serialize;

use order::Version;
use registry::{Registry, RegistryError};

/// Tags looked at, newest first, when matching a digest to find what `latest` is.
const DIGEST_MATCH_LIMIT: usize = 30;

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The repository the tags come from, e.g. `127.0.0.1:5000/specivo/specivo`.
    pub repository: String,
    pub pinned: Option<String>,
    /// The version the app is on: the pinned tag when it is a version, else the running
    /// container's version label, else what the tag is in the registry.
    pub current: Option<String>,
    /// When the pinned tag is not a version (`latest`): the version it points to in the
    /// registry, and how hoist knows (`label` or `digest`).
    pub resolved: Option<Resolved>,
    /// Newer versions, newest first.
    pub newer: Vec<String>,
    pub next: Option<String>,
    pub newest: Option<String>,
    /// The hops from current to newest.
    pub path: Vec<String>,
    /// Every tag the registry has, as it listed them.
    pub tags: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub tag: String,
    pub version: String,
    pub how: String,
}

/// Reads the registry for `image` (the upgraded image as it runs now, e.g.
/// `127.0.0.1:5000/specivo/specivo:latest`). `label_version` is the running container's
/// `org.opencontainers.image.version`, if any.
pub async fn overview(
    image: &str,
    pinned: Option<&str>,
    label_version: Option<&str>,
) -> Result<Overview, RegistryError> {
    let registry = Registry::for_image(image)?;
    let tags = registry.tags().await?;
    let repository = format!("{}/{}", registry.registry(), registry.repository());
    let mut resolved = None;
    let current: Option<Version> = match pinned.and_then(Version::parse) {
        Some(v) => Some(v),
        None => {
            // What runs here comes first: the registry's `latest` may have moved since.
            let tag = pinned.unwrap_or("latest");
            let r = resolve(&registry, tag, &tags).await?;
            let registry_version = r.as_ref().and_then(|r| Version::parse(&r.version));
            resolved = r;
            label_version.and_then(Version::parse).or(registry_version)
        }
    };
    let newer = current
        .as_ref()
        .map(|c| order::newer(c, tags.iter().map(String::as_str)))
        .unwrap_or_default();
    let path = match (&current, newer.last()) {
        (Some(c), Some(newest)) => order::path(c, newest, &newer),
        _ => Vec::new(),
    };
    Ok(Overview {
        repository,
        pinned: pinned.map(str::to_string),
        current: current.map(|v| v.tag),
        resolved,
        next: path.first().map(|v| v.tag.clone()),
        newest: newer.last().map(|v| v.tag.clone()),
        newer: newer.iter().rev().map(|v| v.tag.clone()).collect(),
        path: path.into_iter().map(|v| v.tag).collect(),
        tags: tags.len(),
    })
}

/// The hops of an upgrade from `from` to `to` of `image`'s repository (see `order::path`):
/// just `to` when either is not a version, so there is no order to step through.
pub async fn path_to(image: &str, from: &str, to: &str) -> Result<Vec<String>, RegistryError> {
    let (Some(current), Some(target)) = (Version::parse(from), Version::parse(to)) else {
        return Ok(vec![to.to_string()]);
    };
    if target <= current {
        return Ok(vec![to.to_string()]);
    }
    let registry = Registry::for_image(image)?;
    let tags = registry.tags().await?;
    let newer = order::newer(&current, tags.iter().map(String::as_str));
    Ok(order::path(&current, &target, &newer)
        .into_iter()
        .map(|v| v.tag)
        .collect())
}

/// The version a non-version tag (`latest`) points to in the registry: the image's version
/// label when it names an existing version tag, else the version tag with the same digest.
async fn resolve(
    registry: &Registry,
    tag: &str,
    tags: &[String],
) -> Result<Option<Resolved>, RegistryError> {
    let image = registry.image(tag).await?;
    let label = image
        .labels
        .get("org.opencontainers.image.version")
        .map(String::as_str);
    if let Some(label) = label
        && tags.iter().any(|t| t == label)
        && Version::parse(label).is_some()
    {
        return Ok(Some(Resolved {
            tag: tag.to_string(),
            version: label.to_string(),
            how: "label".into(),
        }));
    }
    // Manifest digests on both sides (an index's digest is not its platform image's).
    let digest = registry.digest(tag).await?;
    let mut versions: Vec<Version> = tags.iter().filter_map(|t| Version::parse(t)).collect();
    versions.sort();
    for v in versions.iter().rev().take(DIGEST_MATCH_LIMIT) {
        if registry.digest(&v.tag).await? == digest {
            return Ok(Some(Resolved {
                tag: tag.to_string(),
                version: v.tag.clone(),
                how: "digest".into(),
            }));
        }
    }
    Ok(None)
}
