//! What the user can move to: the upgraded image's tags from its registry, read as versions and
//! ordered; what `latest` really is; the next step and the path to the newest.
pub mod image_ref;
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
    /// What the next version's image says about itself, and where its release notes are.
    pub about_next: Option<About>,
}

/// An image's own words about what it is (`org.opencontainers.image.*` labels), and its
/// release notes when its source is on a known forge.
#[derive(Debug, Clone, Default, Serialize)]
pub struct About {
    pub version: Option<String>,
    pub revision: Option<String>,
    pub source: Option<String>,
    pub url: Option<String>,
    pub documentation: Option<String>,
    pub release_notes: Option<String>,
}

impl About {
    pub fn from_labels(labels: &std::collections::BTreeMap<String, String>, tag: &str) -> About {
        let get = |k: &str| {
            labels
                .get(&format!("org.opencontainers.image.{k}"))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        let source = get("source");
        About {
            version: get("version"),
            revision: get("revision"),
            release_notes: source
                .as_deref()
                .and_then(|s| release_notes(s, get("version").as_deref().unwrap_or(tag))),
            url: get("url"),
            documentation: get("documentation"),
            source,
        }
    }
}

/// The release page of `version` on the forge `source` points to (GitHub, GitLab, Codeberg,
/// Gitea); `None` for a forge hoist does not know.
pub fn release_notes(source: &str, version: &str) -> Option<String> {
    let repo = source.trim_end_matches('/').trim_end_matches(".git");
    let host = repo
        .strip_prefix("https://")
        .or_else(|| repo.strip_prefix("http://"))?
        .split('/')
        .next()?;
    // The image's version label is usually the release's tag; a `v` prefix may differ.
    match host {
        "github.com" => Some(format!("{repo}/releases/tag/{version}")),
        "gitlab.com" => Some(format!("{repo}/-/releases/{version}")),
        "codeberg.org" | "gitea.com" => Some(format!("{repo}/releases/tag/{version}")),
        _ => None,
    }
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
    // What is new: the next version's labels (not knowing them is no reason to fail).
    let about_next = match path.first() {
        Some(next) => registry
            .image(&next.tag)
            .await
            .ok()
            .map(|i| About::from_labels(&i.labels, &next.tag)),
        None => None,
    };
    Ok(Overview {
        about_next,
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

/// The compressed bytes to download for `images` (references with their tags), leaving out
/// the layers already present locally (`local`: uncompressed digests, see
/// `docker::images::local_layers`).
pub async fn download_size(
    images: &[String],
    local: &std::collections::HashSet<String>,
) -> Result<u64, RegistryError> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    for image in images {
        let registry = Registry::for_image(image)?;
        let info = registry.pinned_image().await?;
        for (i, (digest, size)) in info.layers.iter().enumerate() {
            let present = info.diff_ids.get(i).is_some_and(|d| local.contains(d));
            if !present && seen.insert(digest.clone()) {
                total += size;
            }
        }
    }
    Ok(total)
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
/// What the moving tag `tag` of `image`'s repository is now: the exact version with the same
/// image, when the registry has one.
pub async fn resolve_tag(image: &str, tag: &str) -> Result<Option<Resolved>, RegistryError> {
    let registry = Registry::for_image(image)?;
    let tags = registry.tags().await?;
    resolve(&registry, tag, &tags).await
}

/// A tag that looks like a release but moves (`v2.0` following each 2.0.x): the more specific
/// version tag with the same image, when there is one.
pub async fn more_specific(image: &str, tag: &str) -> Result<Option<String>, RegistryError> {
    let Some(version) = Version::parse(tag) else {
        return Ok(None);
    };
    let registry = Registry::for_image(image)?;
    let tags = registry.tags().await?;
    let mut longer: Vec<Version> = tags
        .iter()
        .filter(|t| t.len() > tag.len() && t.starts_with(tag) && t[tag.len()..].starts_with('.'))
        .filter_map(|t| Version::parse(t))
        .filter(|v| {
            v.variant == version.variant && v.v_prefix == version.v_prefix && v.pre.is_empty()
        })
        .collect();
    if longer.is_empty() {
        return Ok(None);
    }
    longer.sort();
    let digest = registry.digest(tag).await?;
    for v in longer.iter().rev().take(DIGEST_MATCH_LIMIT) {
        if registry.digest(&v.tag).await? == digest {
            return Ok(Some(v.tag.clone()));
        }
    }
    Ok(None)
}

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

#[cfg(test)]
mod tests {
    use super::release_notes;

    #[test]
    fn release_notes_on_known_forges() {
        assert_eq!(
            release_notes("https://github.com/specivo/specivo", "0.1.10").as_deref(),
            Some("https://github.com/specivo/specivo/releases/tag/0.1.10")
        );
        assert_eq!(
            release_notes("https://gitlab.com/group/app.git", "v2.0.0").as_deref(),
            Some("https://gitlab.com/group/app/-/releases/v2.0.0")
        );
        assert_eq!(release_notes("https://example.com/app", "1.0"), None);
        assert_eq!(release_notes("git@github.com:a/b", "1.0"), None);
    }
}
