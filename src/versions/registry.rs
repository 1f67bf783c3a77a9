//! Talking to an image's registry with the OCI distribution API (through `oci-client`): the
//! repository's tags, page by page; a tag's digest; an image's labels and download size.
//! Anonymous, basic and bearer-token access as the registry asks for it, with the user's Docker
//! credentials (`~/.docker/config.json`, `DOCKER_CONFIG`, credential helpers); plain HTTP for
//! registries on the loopback address, as Docker itself allows.
use std::collections::BTreeMap;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// Tags asked for per page; the registry may send fewer.
const PAGE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0:?} is not an image reference")]
    BadReference(String),
    #[error(
        "the registry {registry} refused access to {repository} ({reason}). If it is private, log in first: `docker login {registry}`"
    )]
    Denied {
        registry: String,
        repository: String,
        reason: String,
    },
    #[error("the registry {registry} has no repository {repository}")]
    NoRepository {
        registry: String,
        repository: String,
    },
    #[error("the registry {registry} could not be reached: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error("the registry {registry} answered something hoist cannot read: {reason}")]
    Protocol { registry: String, reason: String },
    #[error("your Docker credentials for {registry} could not be read: {reason}")]
    Credentials { registry: String, reason: String },
}

/// What the registry says about one image.
#[derive(Debug, Clone, Default)]
pub struct ImageInfo {
    pub digest: String,
    /// The image config's labels (`org.opencontainers.image.*` among them).
    pub labels: BTreeMap<String, String>,
    /// (layer digest, compressed size in bytes).
    pub layers: Vec<(String, u64)>,
    /// The layers' uncompressed digests, in the same order (what `docker image inspect` lists
    /// as RootFS.Layers).
    pub diff_ids: Vec<String>,
}

/// How long one request to a registry may go unanswered.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// A registry client for one image repository.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    reference: Reference,
    registry: String,
}

/// A registry on this machine: Docker talks plain HTTP to it without being told.
fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .map_or(registry, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                registry
            }
        })
        .trim_start_matches('[')
        .trim_end_matches(']');
    host == "localhost" || host.starts_with("127.") || host == "::1"
}

/// The key Docker's config uses for a registry's credentials.
fn credential_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".to_string()
        }
        other => other.to_string(),
    }
}

fn auth_for(registry: &str) -> Result<RegistryAuth, RegistryError> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    match docker_credential::get_credential(&credential_key(registry)) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(RegistryAuth::Basic(user, password))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
        // No config, or nothing for this registry: ask anonymously.
        Err(E::ConfigNotFound | E::ConfigReadError | E::NoCredentialConfigured) => {
            Ok(RegistryAuth::Anonymous)
        }
        Err(e) => Err(RegistryError::Credentials {
            registry: registry.to_string(),
            reason: e.to_string(),
        }),
    }
}

impl Registry {
    /// For the repository of `image` (e.g. `127.0.0.1:5000/specivo/specivo:0.1.9`).
    pub fn for_image(image: &str) -> Result<Registry, RegistryError> {
        let parts = super::image_ref::parse(image)
            .ok_or_else(|| RegistryError::BadReference(image.to_string()))?;
        // The image's own tag and digest, which `pinned_image` reads (a name alone is `latest`).
        let reference = match (parts.tag, parts.digest) {
            (Some(tag), Some(digest)) => {
                Reference::with_tag_and_digest(parts.registry, parts.repository, tag, digest)
            }
            (None, Some(digest)) => {
                Reference::with_digest(parts.registry, parts.repository, digest)
            }
            (tag, None) => Reference::with_tag(
                parts.registry,
                parts.repository,
                tag.unwrap_or_else(|| "latest".to_string()),
            ),
        };
        let registry = reference.resolve_registry().to_string();
        let protocol = if is_loopback(&registry) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(30)),
            ..Default::default()
        });
        let auth = auth_for(&registry)?;
        Ok(Registry {
            client,
            auth,
            reference,
            registry,
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        self.reference.repository()
    }

    /// The tag the image reference named (`latest` when it named none).
    /// The image this registry was made for, at its digest when it names one, else its tag.
    pub async fn pinned_image(&self) -> Result<ImageInfo, RegistryError> {
        let what = self
            .reference
            .digest()
            .or(self.reference.tag())
            .unwrap_or("latest")
            .to_string();
        self.image_at(&self.reference, &what).await
    }

    fn error(&self, e: oci_client::errors::OciDistributionError) -> RegistryError {
        use oci_client::errors::OciDistributionError as O;
        let (registry, repository) = (self.registry.clone(), self.repository().to_string());
        let text = e.to_string();
        match e {
            O::AuthenticationFailure(reason) | O::UnauthorizedError { url: reason } => {
                RegistryError::Denied {
                    registry,
                    repository,
                    reason,
                }
            }
            O::RequestError(err) => RegistryError::Unreachable {
                registry,
                reason: err.to_string(),
            },
            O::RegistryError { envelope, .. }
                if envelope
                    .errors
                    .iter()
                    .any(|e| format!("{:?}", e.code).contains("NameUnknown")) =>
            {
                RegistryError::NoRepository {
                    registry,
                    repository,
                }
            }
            O::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    let code = format!("{:?}", e.code);
                    code.contains("Unauthorized") || code.contains("Denied")
                }) =>
            {
                RegistryError::Denied {
                    registry,
                    repository,
                    reason: text,
                }
            }
            _ => RegistryError::Protocol {
                registry,
                reason: text,
            },
        }
    }

    /// One request's answer, in time: a registry that takes connections and says nothing (a
    /// firewall that drops, a proxy, a registry half down) is an error said, not a wait.
    async fn answer<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, oci_client::errors::OciDistributionError>>,
    ) -> Result<T, RegistryError> {
        match tokio::time::timeout(ANSWER_WITHIN, request).await {
            Ok(result) => result.map_err(|e| self.error(e)),
            Err(_) => Err(RegistryError::Unreachable {
                registry: self.registry.clone(),
                reason: format!(
                    "it did not answer within {} s (it may be down, or a firewall or proxy holds the connection)",
                    ANSWER_WITHIN.as_secs()
                ),
            }),
        }
    }

    /// Every tag of the repository, following the registry's pages.
    pub async fn tags(&self) -> Result<Vec<String>, RegistryError> {
        let mut all: Vec<String> = Vec::new();
        loop {
            let page = self
                .answer(self.client.list_tags(
                    &self.reference,
                    &self.auth,
                    Some(PAGE),
                    all.last().map(String::as_str),
                ))
                .await?;
            let n = page.tags.len();
            // A registry that ignores `last` would send the same page again: stop there.
            let before = all.len();
            for t in page.tags {
                if !all.contains(&t) {
                    all.push(t);
                }
            }
            if n < PAGE || all.len() == before {
                break;
            }
        }
        Ok(all)
    }

    fn with_tag(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            tag.to_string(),
        )
    }

    /// The manifest digest of `tag`.
    pub async fn digest(&self, tag: &str) -> Result<String, RegistryError> {
        self.answer(
            self.client
                .fetch_manifest_digest(&self.with_tag(tag), &self.auth),
        )
        .await
    }

    /// The labels and layers of the image `tag` (for this machine's platform when it is an
    /// index).
    pub async fn image(&self, tag: &str) -> Result<ImageInfo, RegistryError> {
        self.image_at(&self.with_tag(tag), tag).await
    }

    /// The labels and layers of the image at `reference`, called `tag` in errors.
    async fn image_at(&self, reference: &Reference, tag: &str) -> Result<ImageInfo, RegistryError> {
        let (manifest, digest, config) = self
            .answer(self.client.pull_manifest_and_config(reference, &self.auth))
            .await?;
        let config: serde_json::Value =
            serde_json::from_str(&config).map_err(|e| RegistryError::Protocol {
                registry: self.registry.clone(),
                reason: format!("the image config of {tag}: {e}"),
            })?;
        let labels = config["config"]["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(ImageInfo {
            digest,
            labels,
            diff_ids,
            layers: manifest
                .layers
                .iter()
                .map(|l| (l.digest.clone(), u64::try_from(l.size).unwrap_or(0)))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert_eq!(credential_key("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(credential_key("ghcr.io"), "ghcr.io");
    }
}
