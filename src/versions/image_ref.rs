//! An image reference split into registry and repository, as Docker reads it (`postgres:16` is
//! `docker.io` / `library/postgres`). Parsed here rather than by `oci_client::Reference`'s
//! `FromStr`: its Unicode-aware grammar compiles to a regex of about 20 MB, most of an upgrade's
//! memory on a small VPS. The grammar is the distribution spec's, in ASCII.
use std::sync::OnceLock;

/// The registry Docker uses for names without one.
const DOCKER_HUB: &str = "docker.io";

/// name [":" tag] ["@" digest], per the OCI distribution reference grammar.
const GRAMMAR: &str = concat!(
    r"^(?P<name>",
    // An optional domain: dot-separated components, an optional port, then a slash.
    r"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?",
    // Path components: lower-case alphanumerics joined by `.`, `_`, `__` or dashes.
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*",
    r")(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?",
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}))?$",
);

fn grammar() -> Option<&'static regex::Regex> {
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    RE.get_or_init(|| {
        regex::RegexBuilder::new(GRAMMAR)
            .unicode(false)
            .build()
            .ok()
    })
    .as_ref()
}

/// An image reference's parts: registry and repository normalised as Docker does, and the tag
/// and digest it names, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// (registry, repository) of `image`, normalised as Docker does; None when it is not a
/// reference.
pub fn split(image: &str) -> Option<(String, String)> {
    parse(image).map(|p| (p.registry, p.repository))
}

/// The parts of `image`; None when it is not a reference.
pub fn parse(image: &str) -> Option<Parts> {
    let captures = grammar()?.captures(image)?;
    let tag = captures.name("tag").map(|t| t.as_str().to_string());
    let digest = captures.name("digest").map(|d| d.as_str().to_string());
    let name = captures.name("name")?.as_str();
    if name.len() > 255 {
        return None;
    }
    // The first component names a registry only when it looks like a host: a dot, a port or
    // `localhost` (`user/app` is Docker Hub's `user/app`).
    let (registry, repository) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        registry
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    Some(Parts {
        registry,
        repository,
        tag,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(image: &str) -> Option<(String, String)> {
        split(image)
    }

    fn is(registry: &str, repository: &str) -> Option<(String, String)> {
        Some((registry.to_string(), repository.to_string()))
    }

    #[test]
    fn names_are_normalised_as_docker_does() {
        assert_eq!(pair("postgres"), is("docker.io", "library/postgres"));
        assert_eq!(
            pair("postgres:16-alpine"),
            is("docker.io", "library/postgres")
        );
        assert_eq!(
            pair("immich-app/server:v1"),
            is("docker.io", "immich-app/server")
        );
        assert_eq!(pair("docker.io/nginx"), is("docker.io", "library/nginx"));
        assert_eq!(
            pair("index.docker.io/nginx"),
            is("docker.io", "library/nginx")
        );
        assert_eq!(
            pair("ghcr.io/immich-app/immich-server:release"),
            is("ghcr.io", "immich-app/immich-server")
        );
        assert_eq!(
            pair("127.0.0.1:5000/specivo/specivo:0.1.9"),
            is("127.0.0.1:5000", "specivo/specivo")
        );
        assert_eq!(pair("localhost/app:1"), is("localhost", "app"));
        assert_eq!(
            pair("lscr.io/linuxserver/nextcloud:version-29.0.0"),
            is("lscr.io", "linuxserver/nextcloud")
        );
        let digest = format!("redis@sha256:{}", "a".repeat(64));
        assert_eq!(pair(&digest), is("docker.io", "library/redis"));
        let both = format!("quay.io/a/b_c__d-e:1.2@sha256:{}", "0f".repeat(32));
        assert_eq!(pair(&both), is("quay.io", "a/b_c__d-e"));
    }

    #[test]
    fn the_tag_and_the_digest_are_kept() {
        let p = parse("127.0.0.1:5000/specivo/specivo:0.1.10").unwrap();
        assert_eq!(p.tag.as_deref(), Some("0.1.10"));
        assert_eq!(p.digest, None);
        // A port is not a tag.
        let p = parse("127.0.0.1:5000/specivo/specivo").unwrap();
        assert_eq!((p.tag, p.digest), (None, None));
        let digest = format!("sha256:{}", "ab".repeat(32));
        let p = parse(&format!("ghcr.io/a/b:edge@{digest}")).unwrap();
        assert_eq!(p.tag.as_deref(), Some("edge"));
        assert_eq!(p.digest.as_deref(), Some(digest.as_str()));
        let p = parse(&format!("redis@{digest}")).unwrap();
        assert_eq!((p.tag, p.digest.as_deref()), (None, Some(digest.as_str())));
    }

    #[test]
    fn what_is_not_a_reference_is_refused() {
        for bad in [
            "",
            "Postgres",
            "app:",
            "app::1",
            "-app",
            "app/",
            "a b",
            "app:tag with space",
            "app@sha256:short",
            "ghcr.io/Upper/app",
            "app:épée",
        ] {
            assert_eq!(pair(bad), None, "{bad:?}");
        }
        assert_eq!(pair(&"a".repeat(256)), None);
    }
}
