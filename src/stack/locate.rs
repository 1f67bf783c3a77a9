//! Where the app's version is written, so hoist can read it and pin another: a variable in
//! the image tag (`image: org/app:${APP_VERSION}`, set in `.env`), or a literal tag
//! (`image: org/app:4.3.1`) in whichever compose file defines it. Which services are the app
//! follows from it: the ones whose image the version sets.
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;

use super::compose::ComposeFile;
use super::detect::{DetectError, Inputs};
use super::interpolate;
use super::sense;

/// Where the version is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Site {
    /// A variable in the tag; its value is set in `.env` (or defaults in the compose file).
    Env { variable: String },
    /// A variable that holds the whole image reference; its tag is the version.
    Image {
        variable: String,
        /// The image it holds now.
        image: String,
    },
    /// A literal tag in `image:` lines of one compose file.
    Tags {
        file: PathBuf,
        /// 1-based lines, each holding `image` as written.
        lines: Vec<usize>,
        /// The image reference as written (`org/app:4.3.1`), the first one.
        image: String,
        /// Every repository whose tag is the app's version (`mastodon`, `mastodon-streaming`).
        repositories: Vec<String>,
    },
    /// hoist cannot tell; why, and what the user can do.
    Unknown { reason: String },
}

impl Site {
    /// Where, for people: ".env", "compose.yaml line 12".
    pub fn place(&self) -> String {
        match self {
            Site::Env { variable } => format!("{variable} in .env"),
            Site::Image { variable, .. } => format!("the image in {variable} in .env"),
            Site::Tags { file, lines, .. } => format!(
                "the image tag in {} line{} {}",
                file.display(),
                if lines.len() == 1 { "" } else { "s" },
                lines
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Site::Unknown { .. } => "nowhere hoist can tell".to_string(),
        }
    }
}

impl VersionPin {
    /// The file the pin is written in, by its name (".env", "compose.yaml").
    pub fn file_label(&self) -> String {
        match &self.site {
            Site::Tags { file, .. } => file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            _ => ".env".to_string(),
        }
    }

    /// Setting `value`, for people: "APP_VERSION=1.2 in .env", "the tag 1.2 in compose.yaml".
    pub fn assignment(&self, value: &str) -> String {
        match &self.site {
            Site::Env { variable } => format!("{variable}={value} in .env"),
            Site::Image { variable, image } => {
                format!("{variable}={} in .env", super::pin::retagged(image, value))
            }
            _ => format!("the tag {value} in {}", self.file_label()),
        }
    }
}

/// What the candidates settle on.
enum Chosen {
    Variable(String),
    Literal {
        repositories: Vec<String>,
        services: Vec<String>,
    },
    /// A variable that holds the whole image reference (`${APP_IMAGE:-org/app:1.2}`).
    Image(String),
    Unknown(String),
}

impl Chosen {
    /// Whether the service's `image:` as written is the app's.
    fn uses(&self, raw: &str) -> bool {
        match self {
            Chosen::Variable(v) => interpolate::references(raw).iter().any(|r| &r.name == v),
            Chosen::Literal { repositories, .. } => {
                interpolate::references(raw).is_empty()
                    && repositories.iter().any(|r| r == split_tag(raw).0)
            }
            Chosen::Image(v) => whole_reference(raw).as_deref() == Some(v.as_str()),
            Chosen::Unknown(_) => false,
        }
    }
}

/// `org/app:1.2@sha256:…` → (`org/app`, Some(`1.2`)); the digest is dropped.
pub fn split_tag(image: &str) -> (&str, Option<&str>) {
    let no_digest = image.split('@').next().unwrap_or(image);
    let slash = no_digest.rfind('/').map_or(0, |p| p + 1);
    match no_digest[slash..].find(':') {
        Some(p) => (&no_digest[..slash + p], Some(&no_digest[slash + p + 1..])),
        None => (no_digest, None),
    }
}

/// Whether `s` is an image tag as a registry takes it (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`):
/// anything else written into `.env` or a compose file would be read as something else
/// (`${X}` interpolated, `a:b` a second reference part) or break the line.
pub fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A tag that names no single release: words (`latest`, `stable`, `apache`), a major alone
/// (`16`, `v2`), or a major with a variant (`16-alpine`). `1.2`, `v1.22.3`, `2024.8.3` and
/// `1.2.3-alpine` name one.
pub fn is_moving(tag: &str) -> bool {
    let t = tag.trim();
    if t.is_empty() || t.starts_with("sha256:") || t.contains('@') {
        return false;
    }
    // Some part of it (`apache-2.26.0`, `v1.22.3`, `2024.8.3-alpine`) must be a release of two
    // numbers or more; a bare major (`16`) or a word (`latest`, `apache`) moves.
    !t.split(['-', '_', '+']).any(|part| {
        let core = part.strip_prefix('v').unwrap_or(part);
        let numbers: Vec<&str> = core.split('.').collect();
        numbers.len() >= 2
            && numbers
                .iter()
                .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionPin {
    /// Where the version is written; `Site::Unknown` says why hoist cannot tell.
    pub site: Site,
    /// The variable that holds it (`Site::Env`), else empty.
    pub variable: String,
    /// The value Compose uses now (`None` when unset and without a default).
    pub value: Option<String>,
    /// Where the value comes from, for people: ".env line 2", "the environment", "the default in the compose file".
    pub source: String,
    /// The line of `.env` that sets it, when it is `.env`.
    pub env_line: Option<usize>,
    /// The tag names no single version (`latest`, `release`, `16`, `apache`): it moves when
    /// the project publishes, so it is no pin.
    pub moving: bool,
}

/// The byte offset where the tag starts in an image reference whose variables are `refs`
/// (a `:` after the last `/`, ignoring the insides of `${...}`).
fn tag_start(raw: &str, refs: &[interpolate::VarRef]) -> Option<usize> {
    let mut masked: Vec<u8> = raw.as_bytes().to_vec();
    for r in refs {
        for b in &mut masked[r.start..r.end] {
            *b = b'x';
        }
    }
    let slash = masked.iter().rposition(|&b| b == b'/').map_or(0, |p| p + 1);
    masked[slash..]
        .iter()
        .position(|&b| b == b':')
        .map(|p| slash + p + 1)
}

/// Variables in the tag part of each service's raw `image:`: variable → services using it.
/// Database images do not count: a database's major version is not upgraded by swapping its
/// tag (its files need a dump and restore), so `postgres:${PG_MAJOR}` is not the app's version.
pub fn version_candidates(compose: &ComposeFile) -> IndexMap<String, Vec<String>> {
    let mut out: IndexMap<String, Vec<String>> = IndexMap::new();
    for (name, svc) in &compose.services {
        let Some(raw) = &svc.raw_image else { continue };
        if svc
            .image
            .as_deref()
            .and_then(sense::image_kind)
            .is_some_and(sense::Seen::is_database)
        {
            continue;
        }
        let refs = interpolate::references(raw);
        let Some(tag) = tag_start(raw, &refs) else {
            continue;
        };
        for r in refs.iter().filter(|r| r.start >= tag) {
            out.entry(r.name.clone()).or_default().push(name.clone());
        }
    }
    out
}

/// The variable when `raw` is nothing but one variable (`${APP_IMAGE:-org/app:latest}`).
fn whole_reference(raw: &str) -> Option<String> {
    let refs = interpolate::references(raw);
    match refs.as_slice() {
        [r] if r.start == 0 && r.end == raw.len() => Some(r.name.clone()),
        _ => None,
    }
}

/// The one variable that holds a whole image reference of a non-infrastructure service.
fn whole_image_variable(inp: &Inputs<'_>) -> Option<String> {
    let mut found: Vec<String> = Vec::new();
    for (name, svc) in &inp.compose.services {
        if inp.inactive.iter().any(|(i, _)| i == name) {
            continue;
        }
        let (Some(raw), Some(image)) = (svc.raw_image.as_deref(), svc.image.as_deref()) else {
            continue;
        };
        if sense::image_kind(image).is_some() {
            continue;
        }
        if let Some(v) = whole_reference(raw)
            && !found.contains(&v)
        {
            found.push(v);
        }
    }
    (found.len() == 1).then(|| found.remove(0))
}

/// No variable in any tag: the app is the image (repository) that literal tags name, among the
/// services that are not infrastructure (databases, caches, search, stores) and not built here.
/// Images of one owner at one tag (`mastodon` and `mastodon-streaming` at v4.3.2) are one app.
fn literal(inp: &Inputs<'_>) -> Chosen {
    let compose = inp.compose;
    // (repositories, tag) -> services
    let mut groups: Vec<(Vec<String>, Option<String>, Vec<String>)> = Vec::new();
    for (name, svc) in &compose.services {
        if inp.inactive.iter().any(|(i, _)| i == name) || svc.build {
            continue;
        }
        let Some(raw) = svc.raw_image.as_deref() else {
            continue;
        };
        let (repo, tag) = split_tag(raw);
        if !interpolate::references(raw).is_empty()
            || sense::image_kind(raw).is_some()
            || sense::sense(svc, &svc_env(inp, name, svc)).is_some()
        {
            continue;
        }
        let owner = |r: &str| r.rsplit_once('/').map(|(o, _)| o.to_string());
        let tag = tag.map(str::to_string);
        match groups.iter_mut().find(|(repos, t, _)| {
            repos.iter().any(|r| r == repo)
                || (*t == tag
                    && tag.is_some()
                    && owner(&repos[0]).is_some()
                    && owner(&repos[0]) == owner(repo))
        }) {
            Some((repos, _, users)) => {
                if !repos.iter().any(|r| r == repo) {
                    repos.push(repo.to_string());
                }
                users.push(name.clone());
            }
            None => groups.push((vec![repo.to_string()], tag, vec![name.clone()])),
        }
    }
    if let Some(list) = &inp.settings.services {
        groups.retain(|(_, _, users)| users.iter().any(|u| list.contains(u)));
    }
    let chosen = |(repositories, _, services): &(Vec<String>, Option<String>, Vec<String>)| {
        Chosen::Literal {
            repositories: repositories.clone(),
            services: services.clone(),
        }
    };
    match groups.len() {
        0 => Chosen::Unknown(
            "no service's `image:` looks like the app's (each is a database, cache or other infrastructure, built here, or has no image); name the app's services with `x-hoist: {services: [NAME, ...]}`".to_string(),
        ),
        1 => chosen(&groups[0]),
        _ => {
            let users: Vec<Vec<String>> = groups.iter().map(|g| g.2.clone()).collect();
            match best_group(inp, &users) {
                Some(i) => chosen(&groups[i]),
                None => Chosen::Unknown(format!(
                    "several images could be the app ({}); say which services are the app with `x-hoist: {{services: [NAME, ...]}}` in the compose file",
                    groups
                        .iter()
                        .map(|(r, _, u)| format!("{} in {}", r.join(" and "), u.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
            }
        }
    }
}

/// Of several candidate groups of services, the one that is the app: the one that depends on
/// the others (a front end needs its model server, not the other way round), then the one that
/// uses a database and publishes a port. None when that does not single one out.
fn best_group(inp: &Inputs<'_>, groups: &[Vec<String>]) -> Option<usize> {
    let compose = inp.compose;
    let depends_on_group = |a: &[String], b: &[String]| {
        a.iter()
            .any(|u| compose.services[u].depends_on.iter().any(|d| b.contains(d)))
    };
    let score = |i: usize| {
        let users = &groups[i];
        let on_others = groups
            .iter()
            .enumerate()
            .filter(|(j, other)| *j != i && depends_on_group(users, other))
            .count();
        let ports = users.iter().any(|u| !compose.services[u].ports.is_empty());
        let database = users.iter().any(|u| {
            compose.services[u].depends_on.iter().any(|d| {
                // `sense` reads the image's name first, then what the service does.
                compose.services.get(d).is_some_and(|db| {
                    sense::sense(db, &svc_env(inp, d, db)).is_some_and(|k| k.kind.is_database())
                })
            })
        });
        // A reverse proxy in front of the app depends on it, and is not it.
        let proxy = users.iter().any(|u| {
            compose.services[u]
                .image
                .as_deref()
                .map(sense::repository_name)
                .is_some_and(|n| {
                    [
                        "nginx",
                        "caddy",
                        "traefik",
                        "https-portal",
                        "haproxy",
                        "swag",
                        "cloudflared",
                    ]
                    .iter()
                    .any(|p| n.contains(p))
                })
        });
        (!proxy, on_others, u8::from(database) + u8::from(ports))
    };
    let scores: Vec<_> = (0..groups.len()).map(score).collect();
    let best = scores.iter().max()?;
    let top: Vec<usize> = (0..groups.len()).filter(|i| &scores[*i] == best).collect();
    (top.len() == 1).then(|| top[0])
}

/// A service's environment as Compose gives it (`env_file:` too: a database's
/// `POSTGRES_PASSWORD` often lives there), for telling infrastructure from the app; its
/// `environment:` as written when an env file cannot be read (detection says why elsewhere).
fn svc_env(
    inp: &Inputs<'_>,
    name: &str,
    svc: &super::compose::Service,
) -> IndexMap<String, String> {
    super::detect::service_env(inp, name).unwrap_or_else(|_| {
        svc.environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect()
    })
}

/// The pin of a literal tag: the lines of the one file that defines it (the last file that
/// does, as Compose merges them), found in the compose files and the files they include or
/// extend.
fn literal_pin(inp: &Inputs<'_>, repositories: &[String], services: &[String]) -> VersionPin {
    let mut images: Vec<String> = services
        .iter()
        .filter_map(|s| inp.compose.services.get(s)?.raw_image.clone())
        .collect();
    images.dedup();
    let unknown = |reason: String| VersionPin {
        site: Site::Unknown { reason },
        variable: String::new(),
        value: None,
        source: "not found".into(),
        env_line: None,
        moving: false,
    };
    let Some(image) = images.first().cloned() else {
        return unknown(format!(
            "the app's services ({}) have no image",
            services.join(", ")
        ));
    };
    let tag_of = |i: &str| {
        let (_, tag) = split_tag(i);
        let digest = i.split_once('@').map(|(_, d)| d.to_string());
        (tag.map(str::to_string), digest)
    };
    if images.iter().any(|i| tag_of(i) != tag_of(&image)) {
        return unknown(format!(
            "the app's services name its image at different tags ({}); give them one tag, then try again",
            images.join(", ")
        ));
    }
    let mut found: Option<(PathBuf, Vec<usize>)> = None;
    for file in super::project::all_files(inp.files).iter().rev() {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        // An image written on the line after its key (`image: >-`, `image: |`, or a plain
        // scalar on the next line) cannot be edited on one line: pinning the others would
        // leave the app on two versions.
        let lines: Vec<&str> = text.lines().collect();
        for (i, pair) in lines.windows(2).enumerate() {
            let key = pair[0].trim_end();
            let after_key = key
                .rsplit_once("image:")
                .map(|(_, rest)| rest.trim())
                .filter(|rest| {
                    rest.is_empty() || ["|", ">", "|-", ">-", "|+", ">+"].contains(rest)
                });
            if after_key.is_some() && images.iter().any(|img| pair[1].contains(img.as_str())) {
                return unknown(format!(
                    "{} line {}: the app's image is written on the line after `image:`, which hoist cannot edit safely; write it on one line (`image: {image}`)",
                    file.display(),
                    i + 1
                ));
            }
        }
        let lines: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| images.iter().any(|i| image_line_holds(l, i)))
            .map(|(i, _)| i + 1)
            .collect();
        if !lines.is_empty() {
            found = Some((file.clone(), lines));
            break;
        }
    }
    let Some((file, lines)) = found else {
        return unknown(format!(
            "the app's image {image} is not written on an `image:` line of the compose files hoist can edit; write it as `image: {image}`, or use a variable (`image: {}:${{APP_VERSION}}` with APP_VERSION in .env)",
            repositories[0]
        ));
    };
    let (tag, digest) = tag_of(&image);
    let site = Site::Tags {
        file: file.clone(),
        lines: lines.clone(),
        image: image.clone(),
        repositories: repositories.to_vec(),
    };
    VersionPin {
        source: site.place(),
        site,
        variable: String::new(),
        // A digest pins the bits whatever the tag says; no tag at all means `latest`.
        moving: digest.is_none() && tag.as_deref().is_none_or(is_moving),
        value: tag.or(digest).or_else(|| Some("latest".to_string())),
        env_line: None,
    }
}

/// Whether a YAML line is `image: <image>` (quoted or not, a comment after it allowed), as
/// the key of a block mapping or inside a flow mapping.
pub fn image_line_holds(line: &str, image: &str) -> bool {
    image_token(line, split_tag(image).0).is_some_and(|(a, b)| &line[a..b] == image)
}

/// Where on the line `image: <repository>[:tag][@digest]` has its image reference: the byte
/// range of the whole reference, whatever its tag (a later hop finds the earlier hop's tag).
pub fn image_token(line: &str, repository: &str) -> Option<(usize, usize)> {
    let key = line.find("image:")?;
    let after_key = key + "image:".len();
    let rest = &line[after_key..];
    let skipped = rest.len() - rest.trim_start_matches([' ', '\t', '"', '\'']).len();
    let start = after_key + skipped;
    let token = &line[start..];
    let end = token
        .find(['"', '\'', ' ', '\t', '#', ',', '}', '\r', '\n'])
        .unwrap_or(token.len());
    let reference = &token[..end];
    (split_tag(reference).0 == repository).then_some((start, start + end))
}

/// The app's version pin and the services it upgrades. Settings that name what does not
/// exist are errors; not knowing where the version lives is not (the pin says why).
pub fn locate(
    inp: &Inputs<'_>,
    check_service: &dyn Fn(&str, &str) -> Result<(), DetectError>,
) -> Result<(VersionPin, Vec<String>), DetectError> {
    let compose = inp.compose;
    let file = compose.path.display().to_string();
    let candidates = version_candidates(compose);
    let chosen = match &inp.settings.version_variable {
        Some(v) => {
            let used = compose.services.values().any(|s| {
                s.raw_image
                    .as_deref()
                    .is_some_and(|raw| interpolate::references(raw).iter().any(|r| &r.name == v))
            });
            if !used {
                return Err(DetectError::UnusedVariable {
                    file,
                    variable: v.clone(),
                });
            }
            Chosen::Variable(v.clone())
        }
        None => {
            let in_env: Vec<&String> = candidates
                .keys()
                .filter(|k| inp.env.raw_value(k).is_some())
                .collect();
            // Among several, a variable that only tags infrastructure images (`redis:${REDIS_VERSION}`)
            // is not the app's.
            let apps: Vec<&String> = candidates
                .iter()
                .filter(|(_, users)| {
                    users.iter().any(|u| {
                        compose.services[u]
                            .image
                            .as_deref()
                            .and_then(sense::image_kind)
                            .is_none()
                    })
                })
                .map(|(k, _)| k)
                .collect();
            let users: Vec<Vec<String>> = apps.iter().map(|a| candidates[*a].clone()).collect();
            let best = best_group(inp, &users).map(|i| apps[i].clone());
            match (candidates.len(), in_env.as_slice()) {
                (0, _) => match whole_image_variable(inp) {
                    Some(v) => Chosen::Image(v),
                    None => literal(inp),
                },
                (1, _) => Chosen::Variable(candidates.keys().next().cloned().unwrap_or_default()),
                _ if apps.len() == 1 => Chosen::Variable(apps[0].clone()),
                (_, [only]) => Chosen::Variable((*only).clone()),
                _ if best.is_some() => Chosen::Variable(best.unwrap_or_default()),
                _ => Chosen::Unknown(format!(
                    "several variables could set the app's version ({}) and .env does not settle it; say which with `x-hoist: {{version_variable: NAME}}` in the compose file or `version_variable: NAME` in hoist.yaml",
                    candidates
                        .iter()
                        .map(|(var, users)| format!("{var} in {}", users.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
            }
        }
    };
    let upgraded = match &inp.settings.services {
        Some(list) => {
            for s in list {
                check_service("services", s)?;
            }
            list.clone()
        }
        None => {
            let mut users: Vec<String> = compose
                .services
                .iter()
                .filter(|(n, _)| !inp.inactive.iter().any(|(i, _)| &i == n))
                .filter(|(_, s)| s.raw_image.as_deref().is_some_and(|raw| chosen.uses(raw)))
                .map(|(n, _)| n.clone())
                .collect();
            users.sort();
            users
        }
    };
    let version = match &chosen {
        Chosen::Variable(v) => env_pin(v, inp),
        Chosen::Literal {
            repositories,
            services,
        } => literal_pin(inp, repositories, services),
        Chosen::Image(v) => image_pin(v, inp, &upgraded),
        Chosen::Unknown(reason) => VersionPin {
            site: Site::Unknown {
                reason: reason.clone(),
            },
            variable: String::new(),
            value: None,
            source: "not found".into(),
            env_line: None,
            moving: false,
        },
    };
    Ok((version, upgraded))
}

/// The pin of a variable that holds the whole image: its tag is the version.
fn image_pin(variable: &str, inp: &Inputs<'_>, upgraded: &[String]) -> VersionPin {
    let mut pin = env_pin(variable, inp);
    let image = upgraded
        .iter()
        .find_map(|u| inp.compose.services.get(u)?.image.clone())
        .unwrap_or_default();
    let (_, tag) = split_tag(&image);
    let tag = tag.unwrap_or("latest").to_string();
    pin.moving = is_moving(&tag);
    pin.value = Some(tag);
    pin.site = Site::Image {
        variable: variable.to_string(),
        image,
    };
    pin
}

fn env_pin(variable: &str, inp: &Inputs<'_>) -> VersionPin {
    let env_name = inp
        .env_path
        .file_name()
        .map_or(".env".to_string(), |n| n.to_string_lossy().into_owned());
    if let Some(v) = (inp.os_env)(variable) {
        return VersionPin {
            site: Site::Env {
                variable: variable.into(),
            },
            variable: variable.into(),
            moving: is_moving(&v),
            value: Some(v),
            source: "the environment (it overrides .env)".into(),
            env_line: None,
        };
    }
    if let Some(value) = (inp.lookup)(variable) {
        let line = inp.env.line_of(variable);
        return VersionPin {
            site: Site::Env {
                variable: variable.into(),
            },
            variable: variable.into(),
            moving: is_moving(&value),
            value: Some(value),
            source: line.map_or_else(|| env_name.clone(), |l| format!("{env_name} line {l}")),
            env_line: line,
        };
    }
    // Not set anywhere: the default in the image reference, as Compose would use it.
    let default = inp
        .compose
        .services
        .values()
        .filter_map(|s| s.raw_image.as_deref())
        .find_map(|raw| {
            interpolate::references(raw)
                .into_iter()
                .find(|r| r.name == variable)
                .and_then(|r| r.default)
                // The whole image already interpolated without error while parsing, so this
                // cannot fail; the raw default is the closest thing to show if it did.
                .map(|d| interpolate::interpolate(&d, inp.lookup).unwrap_or(d))
        });
    VersionPin {
        site: Site::Env {
            variable: variable.into(),
        },
        variable: variable.into(),
        moving: default.as_deref().is_some_and(is_moving),
        source: if default.is_some() {
            "the default in the compose file (not set in .env)".into()
        } else {
            "not set".into()
        },
        value: default,
        env_line: None,
    }
}
