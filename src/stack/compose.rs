//! The compose file, as far as hoist needs it: services with their image, environment,
//! env files, mounts, ports, dependencies, healthcheck and labels, plus `x-` extensions.
//!
//! The YAML is read into a generic tree first (serde-saphyr resolves anchors and `<<:` merge
//! keys), every string scalar is interpolated as Compose does, then typed. Unknown keys are
//! ignored: real compose files carry many that hoist has no use for.
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use super::interpolate::{self, InterpolateError};

#[derive(Debug, Clone)]
pub struct ComposeFile {
    pub path: PathBuf,
    pub name: Option<String>,
    pub services: IndexMap<String, Service>,
    /// Top-level named volumes (their definitions, as written).
    pub volumes: IndexMap<String, Value>,
    /// Top-level `x-*` extensions, interpolated.
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Service {
    pub name: String,
    pub image: Option<String>,
    /// `image:` before interpolation: tells which variable sets the tag.
    pub raw_image: Option<String>,
    /// `KEY: value`, or `KEY` alone (value from the environment): `None`.
    pub environment: IndexMap<String, Option<String>>,
    pub env_files: Vec<EnvFileRef>,
    pub volumes: Vec<Mount>,
    pub ports: Vec<Port>,
    pub depends_on: Vec<String>,
    pub healthcheck: Option<Healthcheck>,
    pub labels: IndexMap<String, String>,
    pub profiles: Vec<String>,
    pub extensions: IndexMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileRef {
    pub path: PathBuf,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountKind,
    /// Absolute host path (bind), volume name (named volume), or `None` (anonymous volume, tmpfs).
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub host_ip: Option<String>,
    /// Published host port (or range); `None` when only the container port is given.
    pub published: Option<String>,
    pub target: String,
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "{path}:{line}:{column}: the YAML is malformed at line {line}, column {column}: {message}"
    )]
    Syntax {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("{path}: the YAML is malformed: {message}")]
    SyntaxNoLocation { path: String, message: String },
    #[error("{path}: error while interpolating {key}: {source}")]
    Interpolation {
        path: String,
        key: String,
        source: InterpolateError,
    },
    #[error("{path}: {key}: expected {expected}")]
    Shape {
        path: String,
        key: String,
        expected: String,
    },
}

/// Compose's file names, in the order Compose tries them.
pub const FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

pub fn find_file(project_dir: &Path) -> Option<PathBuf> {
    FILE_NAMES
        .iter()
        .map(|n| project_dir.join(n))
        .find(|p| p.is_file())
}

impl ComposeFile {
    /// Parses `text` (read from `path`); relative paths resolve against `project_dir`.
    pub fn parse(
        path: &Path,
        text: &str,
        project_dir: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ComposeFile, ComposeError> {
        let shown = path.display().to_string();
        let raw: Value = serde_saphyr::from_str(text).map_err(|e| match e.location() {
            Some(loc) => ComposeError::Syntax {
                path: shown.clone(),
                line: loc.line(),
                column: loc.column(),
                message: first_line(&e.to_string()),
            },
            None => ComposeError::SyntaxNoLocation {
                path: shown.clone(),
                message: first_line(&e.to_string()),
            },
        })?;
        let shape = |key: &str, expected: &str| ComposeError::Shape {
            path: shown.clone(),
            key: key.to_string(),
            expected: expected.to_string(),
        };
        let raw = match raw {
            Value::Object(map) => map,
            Value::Null => {
                return Err(shape(
                    "(top level)",
                    "a mapping with a `services:` key; the file is empty",
                ));
            }
            _ => return Err(shape("(top level)", "a mapping with a `services:` key")),
        };
        let mut tree = serde_json::Map::new();
        for (key, value) in &raw {
            tree.insert(
                key.clone(),
                interpolate_tree(value, key, lookup).map_err(|(key, source)| {
                    ComposeError::Interpolation {
                        path: shown.clone(),
                        key,
                        source,
                    }
                })?,
            );
        }
        let name = match tree.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(shape("name", "a string")),
        };
        let mut services = IndexMap::new();
        match tree.get("services") {
            Some(Value::Object(map)) => {
                for (svc_name, def) in map {
                    let key = format!("services.{svc_name}");
                    let Value::Object(def) = def else {
                        return Err(shape(&key, "a mapping (the service's settings)"));
                    };
                    let raw_image = raw
                        .get("services")
                        .and_then(|s| s.get(svc_name))
                        .and_then(|s| s.get("image"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    let service = parse_service(svc_name, def, raw_image, project_dir)
                        .map_err(|(k, e)| shape(&format!("{key}.{k}"), &e))?;
                    services.insert(svc_name.clone(), service);
                }
            }
            None | Some(Value::Null) => {
                return Err(shape(
                    "services",
                    "a mapping of services; this file defines none",
                ));
            }
            Some(_) => {
                return Err(shape(
                    "services",
                    "a mapping of service names to their settings",
                ));
            }
        }
        let volumes = match tree.get("volumes") {
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None | Some(Value::Null) => IndexMap::new(),
            Some(_) => return Err(shape("volumes", "a mapping of volume names")),
        };
        let extensions = tree
            .iter()
            .filter(|(k, _)| k.starts_with("x-"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(ComposeFile {
            path: path.to_path_buf(),
            name,
            services,
            volumes,
            extensions,
        })
    }
}

/// The parser's own words, without the location it repeats (hoist puts that first).
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line
        .find(" column ")
        .and_then(|i| line[i..].find(": ").map(|j| i + j + 2))
    {
        Some(start) if line.starts_with("line ") => line[start..].to_string(),
        _ => line.to_string(),
    }
}

/// Interpolates every string scalar (not keys). On error: the dotted key path and the error.
fn interpolate_tree(
    value: &Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, (String, InterpolateError)> {
    Ok(match value {
        Value::String(s) => {
            Value::String(interpolate::interpolate(s, lookup).map_err(|e| (path.to_string(), e))?)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| interpolate_tree(v, &format!("{path}[{i}]"), lookup))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(
                    k.clone(),
                    interpolate_tree(v, &format!("{path}.{k}"), lookup)?,
                );
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

type ShapeErr = (String, String);

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(v: &Value, key: &str) -> Result<Vec<String>, ShapeErr> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                scalar_string(i).ok_or_else(|| (key.to_string(), "a list of strings".to_string()))
            })
            .collect(),
        other => scalar_string(other)
            .map(|s| vec![s])
            .ok_or_else(|| (key.to_string(), "a string or a list of strings".to_string())),
    }
}

/// `KEY: value` mapping or `- KEY=value` list, as `environment` and `labels` take.
fn key_values(v: &Value, key: &str) -> Result<IndexMap<String, Option<String>>, ShapeErr> {
    let mut out = IndexMap::new();
    match v {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                let value = match v {
                    Value::Null => None,
                    other => Some(scalar_string(other).ok_or_else(|| {
                        (
                            format!("{key}.{k}"),
                            "a string, number or boolean".to_string(),
                        )
                    })?),
                };
                out.insert(k.clone(), value);
            }
        }
        Value::Array(items) => {
            for item in items {
                let s = scalar_string(item)
                    .ok_or_else(|| (key.to_string(), "a list of KEY=VALUE strings".to_string()))?;
                match s.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                    None => out.insert(s, None),
                };
            }
        }
        _ => {
            return Err((
                key.to_string(),
                "a mapping or a list of KEY=VALUE strings".to_string(),
            ));
        }
    }
    Ok(out)
}

fn absolute(project_dir: &Path, p: &str) -> PathBuf {
    let path = if let Some(rest) = p.strip_prefix("~/") {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(rest)
    } else {
        PathBuf::from(p)
    };
    let joined = if path.is_absolute() {
        path
    } else {
        project_dir.join(path)
    };
    normalize(&joined)
}

/// `a/./b/../c` → `a/c`, without touching the file system (the path may not exist yet).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn parse_service(
    name: &str,
    def: &serde_json::Map<String, Value>,
    raw_image: Option<String>,
    project_dir: &Path,
) -> Result<Service, ShapeErr> {
    let mut s = Service {
        name: name.to_string(),
        raw_image,
        ..Service::default()
    };
    for (key, v) in def {
        match key.as_str() {
            "image" => {
                s.image =
                    Some(scalar_string(v).ok_or_else(|| {
                        (key.clone(), "a string (an image reference)".to_string())
                    })?)
            }
            "environment" => s.environment = key_values(v, key)?,
            "labels" => {
                s.labels = key_values(v, key)?
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect();
            }
            "env_file" => s.env_files = env_files(v, project_dir)?,
            "volumes" => match v {
                Value::Null => {}
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        s.volumes.push(
                            mount(item, project_dir).map_err(|e| (format!("volumes[{i}]"), e))?,
                        );
                    }
                }
                _ => return Err((key.clone(), "a list of mounts".into())),
            },
            "ports" => match v {
                Value::Null => {}
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        s.ports
                            .extend(ports(item).map_err(|e| (format!("ports[{i}]"), e))?);
                    }
                }
                _ => {
                    return Err((
                        key.clone(),
                        "a list of ports such as \"127.0.0.1:8080:80\"".into(),
                    ));
                }
            },
            "depends_on" => {
                s.depends_on = match v {
                    Value::Object(map) => map.keys().cloned().collect(),
                    other => string_list(other, key)?,
                }
            }
            "healthcheck" => {
                let Value::Object(h) = v else {
                    return Err((key.clone(), "a mapping with `test:`".into()));
                };
                let disabled = h.get("disable").and_then(Value::as_bool).unwrap_or(false);
                let test = match h.get("test") {
                    Some(t) => string_list(t, "healthcheck.test")?,
                    None => Vec::new(),
                };
                let disabled = disabled || test.first().is_some_and(|t| t == "NONE");
                s.healthcheck = Some(Healthcheck { test, disabled });
            }
            "profiles" => s.profiles = string_list(v, key)?,
            k if k.starts_with("x-") => {
                s.extensions.insert(k.to_string(), v.clone());
            }
            _ => {}
        }
    }
    Ok(s)
}

fn env_files(v: &Value, project_dir: &Path) -> Result<Vec<EnvFileRef>, ShapeErr> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(p) => Ok(EnvFileRef {
                path: absolute(project_dir, p),
                required: true,
            }),
            Value::Object(m) => {
                let p = m.get("path").and_then(Value::as_str).ok_or_else(|| {
                    (
                        "env_file".to_string(),
                        "each entry to have a `path:`".to_string(),
                    )
                })?;
                Ok(EnvFileRef {
                    path: absolute(project_dir, p),
                    required: m.get("required").and_then(Value::as_bool).unwrap_or(true),
                })
            }
            _ => Err((
                "env_file".to_string(),
                "a path or a list of paths".to_string(),
            )),
        })
        .collect()
}

/// A mount in short (`./data:/data:ro`, `name:/data`, `/anon`) or long syntax.
fn mount(v: &Value, project_dir: &Path) -> Result<Mount, String> {
    match v {
        Value::String(spec) => {
            let parts: Vec<&str> = spec.split(':').collect();
            let (source, target, mode) = match parts.as_slice() {
                [target] => (None, *target, ""),
                [source, target] => (Some(*source), *target, ""),
                [source, target, mode] => (Some(*source), *target, *mode),
                _ => return Err(format!("a mount like SOURCE:TARGET[:ro], found {spec:?}")),
            };
            if target.is_empty() {
                return Err(format!("a mount like SOURCE:TARGET[:ro], found {spec:?}"));
            }
            let read_only = mode.split(',').any(|m| m == "ro");
            Ok(match source {
                None => Mount {
                    kind: MountKind::Volume,
                    source: None,
                    target: target.to_string(),
                    read_only,
                },
                Some(src)
                    if src.starts_with('.') || src.starts_with('/') || src.starts_with('~') =>
                {
                    Mount {
                        kind: MountKind::Bind,
                        source: Some(absolute(project_dir, src).display().to_string()),
                        target: target.to_string(),
                        read_only,
                    }
                }
                Some(src) => Mount {
                    kind: MountKind::Volume,
                    source: Some(src.to_string()),
                    target: target.to_string(),
                    read_only,
                },
            })
        }
        Value::Object(m) => {
            let target = m
                .get("target")
                .and_then(Value::as_str)
                .ok_or("a `target:` for the mount")?;
            let read_only = m.get("read_only").and_then(Value::as_bool).unwrap_or(false);
            let source = m.get("source").and_then(Value::as_str);
            let kind = match m.get("type").and_then(Value::as_str).unwrap_or("volume") {
                "bind" => MountKind::Bind,
                "volume" => MountKind::Volume,
                "tmpfs" => MountKind::Tmpfs,
                other => return Err(format!("type bind, volume or tmpfs, found {other:?}")),
            };
            let source = match kind {
                MountKind::Bind => Some(
                    absolute(project_dir, source.ok_or("a `source:` for the bind mount")?)
                        .display()
                        .to_string(),
                ),
                MountKind::Volume => source.map(str::to_string),
                MountKind::Tmpfs => None,
            };
            Ok(Mount {
                kind,
                source,
                target: target.to_string(),
                read_only,
            })
        }
        _ => Err("a mount as a string or a mapping".to_string()),
    }
}

/// Ports in short (`"8000"`, `"9933:8000"`, `"127.0.0.1:9933:8000/tcp"`, ranges) or long syntax.
fn ports(v: &Value) -> Result<Vec<Port>, String> {
    match v {
        Value::Number(n) => Ok(vec![Port {
            host_ip: None,
            published: None,
            target: n.to_string(),
            protocol: "tcp".into(),
        }]),
        Value::String(spec) => {
            let (spec_no_proto, protocol) = match spec.rsplit_once('/') {
                Some((s, p)) => (s, p.to_string()),
                None => (spec.as_str(), "tcp".to_string()),
            };
            // An IPv6 host address is bracketed: [::1]:8080:80.
            let (host_ip, rest) = if let Some(stripped) = spec_no_proto.strip_prefix('[') {
                let (ip, rest) = stripped
                    .split_once("]:")
                    .ok_or(format!("a port like [::1]:8080:80, found {spec:?}"))?;
                (Some(ip.to_string()), rest)
            } else {
                (None, spec_no_proto)
            };
            let parts: Vec<&str> = rest.split(':').collect();
            let (ip, published, target) = match parts.as_slice() {
                [t] => (None, None, *t),
                [p, t] => (None, Some(*p), *t),
                [ip, p, t] => (Some(*ip), Some(*p), *t),
                _ => return Err(format!("a port like \"127.0.0.1:8080:80\", found {spec:?}")),
            };
            let valid = |s: &str| !s.is_empty() && s.split('-').all(|n| n.parse::<u16>().is_ok());
            if !valid(target) || published.is_some_and(|p| !p.is_empty() && !valid(p)) {
                return Err(format!("a port like \"127.0.0.1:8080:80\", found {spec:?}"));
            }
            Ok(vec![Port {
                host_ip: host_ip.or(ip.map(str::to_string)).filter(|s| !s.is_empty()),
                published: published.filter(|p| !p.is_empty()).map(str::to_string),
                target: target.to_string(),
                protocol,
            }])
        }
        Value::Object(m) => {
            let target = m
                .get("target")
                .and_then(scalar_string)
                .ok_or("a `target:` container port")?;
            Ok(vec![Port {
                host_ip: m.get("host_ip").and_then(Value::as_str).map(str::to_string),
                published: m.get("published").and_then(scalar_string),
                target,
                protocol: m
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("tcp")
                    .to_string(),
            }])
        }
        _ => Err("a port as a string, number or mapping".into()),
    }
}

/// The project name Compose would use: `name:`, else `COMPOSE_PROJECT_NAME`, else the project
/// dir's base name, normalized as compose-go does (lowercase; `a-z0-9_-` only; must start with
/// a letter or digit).
pub fn normalize_project_name(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lowered
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ComposeFile, ComposeError> {
        let lookup = |k: &str| match k {
            "V" => Some("0.1.9".to_string()),
            _ => None,
        };
        ComposeFile::parse(
            Path::new("/app/compose.yaml"),
            text,
            Path::new("/app"),
            &lookup,
        )
    }

    #[test]
    fn anchors_merge_keys_and_interpolation() {
        let f = parse(
            "x-app: &app\n  image: reg/app:${V:-latest}\n  environment:\n    - A=1\n    - B\nservices:\n  api:\n    <<: *app\n    ports: [\"127.0.0.1:${P:-9933}:8000\", \"8001\"]\n    volumes: [\"./data:/data\", \"cache:/cache:ro\", \"/anon\"]\n    depends_on: {db: {condition: service_healthy}}\n    healthcheck: {test: [\"CMD\", \"true\"]}\n  db:\n    image: postgres:15\n    labels: [\"a=b\"]\n    env_file: [db.env, {path: opt.env, required: false}]\n",
        )
        .unwrap();
        let api = &f.services["api"];
        assert_eq!(api.image.as_deref(), Some("reg/app:0.1.9"));
        assert_eq!(api.raw_image.as_deref(), Some("reg/app:${V:-latest}"));
        assert_eq!(api.environment["A"].as_deref(), Some("1"));
        assert_eq!(api.environment["B"], None);
        assert_eq!(api.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(api.ports[0].published.as_deref(), Some("9933"));
        assert_eq!(api.ports[1].published, None);
        assert_eq!(api.volumes[0].kind, MountKind::Bind);
        assert_eq!(api.volumes[0].source.as_deref(), Some("/app/data"));
        assert_eq!(api.volumes[1].kind, MountKind::Volume);
        assert!(api.volumes[1].read_only);
        assert_eq!(api.volumes[2].source, None);
        assert_eq!(api.depends_on, ["db"]);
        assert!(!api.healthcheck.as_ref().unwrap().disabled);
        let db = &f.services["db"];
        assert_eq!(db.labels["a"], "b");
        assert_eq!(
            db.env_files[1],
            EnvFileRef {
                path: "/app/opt.env".into(),
                required: false
            }
        );
        assert!(f.extensions.contains_key("x-app"));
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse("services:\n  api:\n    image: [unclosed\n").unwrap_err();
        assert!(matches!(e, ComposeError::Syntax { .. }), "{e}");
        assert!(e.to_string().starts_with("/app/compose.yaml:"), "{e}");
        let e = parse("services:\n  api:\n    image: x:${NOPE:?set NOPE}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/app/compose.yaml: error while interpolating services.api.image: required variable NOPE is missing a value: set NOPE"
        );
        let e = parse("services:\n  api:\n    ports: {a: 1}\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("services.api.ports: expected a list of ports"),
            "{e}"
        );
        let e = parse("services:\n  api:\n    volumes: [\"a:b:c:d\"]\n").unwrap_err();
        assert!(e.to_string().contains("services.api.volumes[0]"), "{e}");
        assert!(parse("").is_err());
    }

    #[test]
    fn project_names_are_normalized_like_compose() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_-specivo"), "specivo");
        assert_eq!(normalize_project_name("hoist-t-1_a"), "hoist-t-1_a");
    }
}
