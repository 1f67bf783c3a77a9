//! The compose file, as far as hoist needs it: services with their image, environment,
//! env files, mounts, ports, dependencies, healthcheck and labels, plus `x-` extensions.
//!
//! The YAML is read into a generic tree first (serde-saphyr resolves anchors and `<<:` merge
//! keys), every string scalar is interpolated as Compose does, then typed. Unknown keys are
//! ignored: real compose files carry many that hoist has no use for.
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::interpolate::{self, InterpolateError};

#[derive(Debug, Clone)]
pub struct ComposeFile {
    pub path: PathBuf,
    pub name: Option<String>,
    pub services: IndexMap<String, Service>,
    /// Top-level named volumes (their definitions, interpolated).
    pub volumes: IndexMap<String, Value>,
    /// Top-level networks (their definitions, interpolated).
    pub networks: IndexMap<String, Value>,
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
    /// The `condition:` of each dependency (`service_started` for the list form).
    pub depends_on_condition: IndexMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
    pub labels: IndexMap<String, String>,
    pub command: Option<Command>,
    pub restart: Option<String>,
    pub container_name: Option<String>,
    pub profiles: Vec<String>,
    /// It has a `build:`: its image is made here, not pulled at a version.
    pub build: bool,
    /// `scale:` or `deploy.replicas:`, when set: 0 means Compose starts no container.
    pub replicas: Option<u64>,
    pub extensions: IndexMap<String, Value>,
}

/// `command:` as written: a string (split by Compose like a shell would) or an argv list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    String(String),
    List(Vec<String>),
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
    /// `disable: true`, or `test: ["NONE"]`.
    pub disabled: bool,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u64>,
    pub start_period: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "{path}:{line}:{column}: the YAML is malformed at line {line}, column {column}: {message}. Fix that line (Compose cannot read it either), then try again."
    )]
    Syntax {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error(
        "{path}: the YAML is malformed: {message}. Fix it (Compose cannot read it either), then try again."
    )]
    SyntaxNoLocation { path: String, message: String },
    #[error(
        "{path}: error while interpolating {key}: {source}. Set the variable in .env or the environment, or fix the ${{...}} expression."
    )]
    Interpolation {
        path: String,
        key: String,
        source: InterpolateError,
    },
    #[error("{path}: {key}: expected {expected}. Fix it in the compose file, then try again.")]
    Shape {
        path: String,
        key: String,
        expected: String,
    },
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
        let top_level = |key: &str| match tree.get(key) {
            Some(Value::Object(map)) => {
                Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            None | Some(Value::Null) => Ok(IndexMap::new()),
            Some(_) => Err(shape(key, &format!("a mapping of {key} names"))),
        };
        let volumes = top_level("volumes")?;
        let networks = top_level("networks")?;
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
            networks,
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

pub(crate) fn absolute(project_dir: &Path, p: &str) -> PathBuf {
    // `~` and `~/x` are the user's home, as Compose expands them; without HOME they stay as written.
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let path = match (p, p.strip_prefix("~/"), home) {
        ("~", _, Some(home)) => home,
        (_, Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    };
    let joined = if path.is_absolute() {
        path
    } else {
        project_dir.join(path)
    };
    normalize(&joined)
}

/// `a/./b/../c` → `a/c`, without touching the file system (the path may not exist yet).
pub(crate) fn normalize(p: &Path) -> PathBuf {
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
                s.depends_on_condition = match v {
                    Value::Object(map) => map
                        .iter()
                        .map(|(dep, spec)| {
                            let at = format!("depends_on.{dep}");
                            let condition = match spec {
                                Value::Null => None,
                                Value::Object(m) => match m.get("condition") {
                                    None | Some(Value::Null) => None,
                                    Some(Value::String(c)) => Some(c.clone()),
                                    Some(_) => {
                                        return Err((
                                            format!("{at}.condition"),
                                            "service_started, service_healthy or service_completed_successfully".into(),
                                        ));
                                    }
                                },
                                _ => return Err((at, "a mapping with `condition:`".into())),
                            };
                            Ok((
                                dep.clone(),
                                condition.unwrap_or_else(|| "service_started".into()),
                            ))
                        })
                        .collect::<Result<_, _>>()?,
                    other => string_list(other, key)?
                        .into_iter()
                        .map(|dep| (dep, "service_started".to_string()))
                        .collect(),
                };
                s.depends_on = s.depends_on_condition.keys().cloned().collect();
            }
            "healthcheck" => s.healthcheck = Some(healthcheck(v)?),
            "command" => {
                s.command = match v {
                    Value::Null => None,
                    Value::Array(_) => Some(Command::List(string_list(v, key)?)),
                    other => Some(Command::String(scalar_string(other).ok_or_else(|| {
                        (key.clone(), "a string or a list of strings".to_string())
                    })?)),
                }
            }
            "restart" => s.restart = optional_string(v, key)?,
            "container_name" => s.container_name = optional_string(v, key)?,
            "profiles" => s.profiles = string_list(v, key)?,
            "build" => s.build = !v.is_null(),
            "scale" => s.replicas = replicas(v).map_err(|e| (key.clone(), e))?,
            "deploy" => {
                if let Some(r) = v.get("replicas") {
                    s.replicas = replicas(r).map_err(|e| ("deploy.replicas".to_string(), e))?;
                }
            }
            k if k.starts_with("x-") => {
                s.extensions.insert(k.to_string(), v.clone());
            }
            _ => {}
        }
    }
    Ok(s)
}

fn replicas(v: &Value) -> Result<Option<u64>, String> {
    match v {
        Value::Null => Ok(None),
        other => scalar_string(other)
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| "a whole number".to_string()),
    }
}

fn optional_string(v: &Value, key: &str) -> Result<Option<String>, ShapeErr> {
    match v {
        Value::Null => Ok(None),
        other => scalar_string(other)
            .map(Some)
            .ok_or_else(|| (key.to_string(), "a string".to_string())),
    }
}

/// A boolean option of a mapping; absent is `None`, a wrong type is the user's mistake to see.
fn optional_bool(m: &serde_json::Map<String, Value>, key: &str) -> Result<Option<bool>, ShapeErr> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err((key.to_string(), "true or false".to_string())),
    }
}

/// Compose durations are Go's: `30s`, `1m30s`, `500ms`.
fn optional_duration(
    m: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<Duration>, ShapeErr> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => super::settings::parse_duration(v).map(Some).ok_or_else(|| {
            (
                key.to_string(),
                "a duration like \"30s\" or \"1m30s\"".to_string(),
            )
        }),
    }
}

fn healthcheck(v: &Value) -> Result<Healthcheck, ShapeErr> {
    let at = |k: &str| format!("healthcheck.{k}");
    let Value::Object(h) = v else {
        return Err(("healthcheck".into(), "a mapping with `test:`".into()));
    };
    let test = match h.get("test") {
        Some(t) => string_list(t, &at("test"))?,
        None => Vec::new(),
    };
    let disabled = optional_bool(h, "disable")
        .map_err(|(k, e)| (at(&k), e))?
        .unwrap_or(false)
        || test.first().is_some_and(|t| t == "NONE");
    let retries = match h.get("retries") {
        None | Some(Value::Null) => None,
        Some(r) => Some(
            r.as_u64()
                .ok_or_else(|| (at("retries"), "a whole number".to_string()))?,
        ),
    };
    let duration = |k: &str| optional_duration(h, k).map_err(|(k, e)| (at(&k), e));
    Ok(Healthcheck {
        test,
        disabled,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        retries,
        start_period: duration("start_period")?,
    })
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
                    required: optional_bool(m, "required")
                        .map_err(|(k, e)| (format!("env_file.{k}"), e))?
                        .unwrap_or(true),
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
            let read_only = optional_bool(m, "read_only")
                .map_err(|(k, e)| format!("`{k}:` to be {e}"))?
                .unwrap_or(false);
            let source = match m.get("source") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => return Err("`source:` to be a path or a volume name".into()),
            };
            let kind_name = match m.get("type") {
                None | Some(Value::Null) => "volume",
                Some(Value::String(t)) => t.as_str(),
                Some(_) => return Err("`type:` to be bind, volume or tmpfs".into()),
            };
            // `docker compose config --no-interpolate` writes `${DIR}:/data` as a volume; once
            // interpolated, a source that is a path makes it a bind, by Compose's own rule.
            let is_path = |s: &str| s.starts_with('.') || s.starts_with('/') || s.starts_with('~');
            let kind = match kind_name {
                "bind" => MountKind::Bind,
                "volume" if source.is_some_and(is_path) => MountKind::Bind,
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
            "/app/compose.yaml: error while interpolating services.api.image: required variable NOPE is missing a value: set NOPE. Set the variable in .env or the environment, or fix the ${...} expression."
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
    fn service_details_and_top_level_networks() {
        let f = parse(
            "name: demo\nservices:\n  api:\n    image: app:1\n    command: serve --port 8000\n    restart: unless-stopped\n    container_name: demo-api\n    depends_on: [db]\n    healthcheck:\n      test: CMD-SHELL curl -f http://localhost/ || exit 1\n      interval: 2s\n      timeout: 1m30s\n      retries: 5\n      start_period: 500ms\n    volumes:\n      - {type: bind, source: ./conf, target: /conf, read_only: true}\n      - {type: tmpfs, target: /tmp}\n      - ~/x:/x\n    ports:\n      - {target: 8000, published: 9000, host_ip: 127.0.0.1}\n      - \"8000-8001:8000-8001/udp\"\n  db:\n    image: postgres\n    command: [postgres, -c, fsync=off]\n    depends_on: {cache: {condition: service_healthy}, x: {}}\n    healthcheck: {disable: true}\nnetworks:\n  front: {}\n",
        )
        .unwrap();
        assert_eq!(f.name.as_deref(), Some("demo"));
        assert!(f.networks.contains_key("front"));
        let api = &f.services["api"];
        assert_eq!(
            api.command,
            Some(Command::String("serve --port 8000".into()))
        );
        assert_eq!(api.restart.as_deref(), Some("unless-stopped"));
        assert_eq!(api.container_name.as_deref(), Some("demo-api"));
        assert_eq!(api.depends_on_condition["db"], "service_started");
        let h = api.healthcheck.as_ref().unwrap();
        assert_eq!(h.test, ["CMD-SHELL curl -f http://localhost/ || exit 1"]);
        assert_eq!(h.interval, Some(Duration::from_secs(2)));
        assert_eq!(h.timeout, Some(Duration::from_secs(90)));
        assert_eq!(h.retries, Some(5));
        assert_eq!(h.start_period, Some(Duration::from_millis(500)));
        assert_eq!(
            api.volumes[0],
            Mount {
                kind: MountKind::Bind,
                source: Some("/app/conf".into()),
                target: "/conf".into(),
                read_only: true
            }
        );
        assert_eq!(api.volumes[1].kind, MountKind::Tmpfs);
        assert_eq!(api.volumes[2].kind, MountKind::Bind);
        assert!(api.volumes[2].source.as_deref().unwrap().ends_with("/x"));
        assert_eq!(
            api.ports[0],
            Port {
                host_ip: Some("127.0.0.1".into()),
                published: Some("9000".into()),
                target: "8000".into(),
                protocol: "tcp".into()
            }
        );
        assert_eq!(api.ports[1].published.as_deref(), Some("8000-8001"));
        assert_eq!(api.ports[1].protocol, "udp");
        let db = &f.services["db"];
        assert_eq!(
            db.command,
            Some(Command::List(vec![
                "postgres".into(),
                "-c".into(),
                "fsync=off".into()
            ]))
        );
        assert_eq!(db.depends_on, ["cache", "x"]);
        assert_eq!(db.depends_on_condition["cache"], "service_healthy");
        assert_eq!(db.depends_on_condition["x"], "service_started");
        assert!(db.healthcheck.as_ref().unwrap().disabled);
    }

    #[test]
    fn wrong_types_are_not_ignored() {
        for (text, key) in [
            (
                "services:\n  a:\n    healthcheck: {disable: \"yes\"}\n",
                "services.a.healthcheck.disable: expected true or false",
            ),
            (
                "services:\n  a:\n    healthcheck: {interval: soon}\n",
                "services.a.healthcheck.interval: expected a duration",
            ),
            (
                "services:\n  a:\n    env_file: [{path: x.env, required: maybe}]\n",
                "services.a.env_file.required: expected true or false",
            ),
            (
                "services:\n  a:\n    volumes: [{type: bind, source: ., target: /x, read_only: 1}]\n",
                "services.a.volumes[0]: expected `read_only:` to be true or false",
            ),
            (
                "services:\n  a:\n    depends_on: {db: {condition: [x]}}\n",
                "services.a.depends_on.db.condition: expected service_started",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
            assert!(e.starts_with("/app/compose.yaml: "), "{e}");
        }
    }

    #[test]
    fn project_names_are_normalized_like_compose() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_-specivo"), "specivo");
        assert_eq!(normalize_project_name("hoist-t-1_a"), "hoist-t-1_a");
    }
}
