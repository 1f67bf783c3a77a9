//! The rehearsal's Compose model, made from the real project's (`docker compose config --format
//! json`): the same services at the new version, under another project name, with nothing
//! that could reach or collide with the real app. Pure, so that every shape of compose file is
//! tested without an engine.
//!
//! What changes, and why:
//! - every network and volume is the rehearsal's own (their `name:` and `external:` dropped, so
//!   Compose prefixes them with the rehearsal's project), networks `internal` (no way out: the
//!   copy sends no e-mail and calls no webhook, and cannot reach a database outside the stack);
//! - no published ports, no `container_name`, no fixed addresses (they would collide);
//! - the data mounts the app writes are copies made beforehand (external volumes here); the
//!   database's own storage starts empty (the dump is loaded into it); other host files are
//!   mounted read-only; the Docker socket is not given;
//! - the user's labels and a reverse proxy's variables are dropped, so that a proxy watching
//!   Docker (Traefik, Caddy, nginx-proxy) never sends a visitor to the copy;
//! - a lower CPU weight and the first place in line for the OOM killer, so that the copy
//!   cannot starve the real app.
use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::docker::rehearsals::{LABEL, LABEL_OF};

/// Variables a Docker-watching reverse proxy routes by (nginx-proxy, acme-companion).
const PROXY_VARIABLES: &[&str] = &[
    "VIRTUAL_HOST",
    "VIRTUAL_PORT",
    "VIRTUAL_PATH",
    "VIRTUAL_PROTO",
    "LETSENCRYPT_HOST",
    "LETSENCRYPT_EMAIL",
];

const DOCKER_SOCKETS: &[&str] = &["/var/run/docker.sock", "/run/docker.sock"];

/// What the model is made for.
pub struct Plan<'a> {
    /// The rehearsal's Compose project name.
    pub project: &'a str,
    /// The real project's.
    pub of: &'a str,
    /// service -> image at the version rehearsed (the app's services).
    pub images: &'a BTreeMap<String, String>,
    /// The database's service: its storage starts empty, for the dump.
    pub database_service: Option<&'a str>,
    /// A data mount's source (a bind's absolute path, or a volume's key in the file) -> the
    /// volume that holds its copy, made beforehand.
    pub copies: &'a BTreeMap<String, String>,
    /// Data mounts' sources that start empty (no room for their copy).
    pub without: &'a std::collections::BTreeSet<String>,
}

/// The model, and what differs from the real app that a person should know.
#[derive(Debug)]
pub struct Model {
    pub json: Value,
    pub notes: Vec<String>,
}

/// A port the real app publishes: (service, port on the host, port in the container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub service: String,
    pub host_port: u16,
    pub container_port: u16,
}

/// The model of the rehearsal. Err: why this stack cannot be rehearsed on a copy.
pub fn model(config: &Value, plan: &Plan<'_>) -> Result<Model, String> {
    let Some(services) = config["services"].as_object() else {
        return Err("Compose's view of the files has no services".into());
    };
    let mut notes = Vec::new();
    let mut out = Map::new();
    out.insert("name".into(), json!(plan.project));
    let mut extra_volumes = Map::new();
    let mut new_services = Map::new();
    let mut uses_default_network = false;
    for (name, service) in services {
        let service = rehearse_service(
            name,
            service,
            plan,
            &mut extra_volumes,
            &mut notes,
            &mut uses_default_network,
        )?;
        new_services.insert(name.clone(), service);
    }
    out.insert("services".into(), Value::Object(new_services));
    out.insert(
        "networks".into(),
        Value::Object(networks(config, plan, uses_default_network, &mut notes)),
    );
    let mut volumes = volumes(config, plan);
    volumes.extend(extra_volumes);
    if !volumes.is_empty() {
        out.insert("volumes".into(), Value::Object(volumes));
    }
    for key in ["secrets", "configs"] {
        if let Some(v) = config.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    notes.sort();
    notes.dedup();
    Ok(Model {
        json: Value::Object(out),
        notes,
    })
}

fn labels(plan: &Plan<'_>) -> Value {
    json!({ LABEL: plan.project, LABEL_OF: plan.of })
}

#[allow(clippy::too_many_arguments)]
fn rehearse_service(
    name: &str,
    service: &Value,
    plan: &Plan<'_>,
    extra_volumes: &mut Map<String, Value>,
    notes: &mut Vec<String>,
    uses_default_network: &mut bool,
) -> Result<Value, String> {
    let Some(original) = service.as_object() else {
        return Err(format!("service {name} is not a mapping in Compose's view"));
    };
    let mut s = original.clone();
    match s.get("network_mode").and_then(Value::as_str) {
        Some("host") => {
            return Err(format!(
                "service {name} uses the host's network (`network_mode: host`), so a copy of it would take the real one's ports and reach everything the real one reaches"
            ));
        }
        Some(m) if m.starts_with("container:") => {
            return Err(format!(
                "service {name} shares the network of container {} (`network_mode: {m}`), which belongs to the real app",
                &m["container:".len()..]
            ));
        }
        Some("none") => {}
        Some(m) if m.starts_with("service:") => {}
        Some(m) => {
            notes.push(format!(
                "service {name}'s `network_mode: {m}` is replaced by the rehearsal's own network"
            ));
            s.remove("network_mode");
            *uses_default_network = true;
        }
        None => match s.get("networks") {
            Some(Value::Object(nets)) if !nets.is_empty() => {
                let mut cleaned = Map::new();
                for (net, opts) in nets {
                    cleaned.insert(net.clone(), network_attachment(opts));
                    if net == "default" {
                        *uses_default_network = true;
                    }
                }
                s.insert("networks".into(), Value::Object(cleaned));
            }
            Some(Value::Array(nets)) if !nets.is_empty() => {
                if nets.iter().any(|n| n == "default") {
                    *uses_default_network = true;
                }
            }
            _ => *uses_default_network = true,
        },
    }
    if let Some(from) = s.get("volumes_from").and_then(Value::as_array)
        && let Some(c) = from
            .iter()
            .filter_map(Value::as_str)
            .find(|v| v.starts_with("container:"))
    {
        return Err(format!(
            "service {name} mounts the volumes of container {} (`volumes_from`), which belongs to the real app",
            &c["container:".len()..]
        ));
    }
    if s.remove("ports").is_some_and(|p| p != json!([])) {
        notes.push(
            "no port is published: hoist reaches the copy's containers by their addresses".into(),
        );
    }
    for key in ["container_name", "mac_address", "build", "develop"] {
        s.remove(key);
    }
    if s.remove("external_links").is_some() {
        notes.push(format!(
            "service {name}'s `external_links` (containers outside the stack) are left out"
        ));
    }
    if let Some(image) = plan.images.get(name) {
        s.insert("image".into(), json!(image));
    }
    // The user's labels go: a proxy that routes by them (Traefik, Caddy) would send visitors here.
    if s.remove("labels").is_some_and(|l| l != json!({})) {
        notes.push("the services' own labels are left out, so that a reverse proxy watching Docker never routes visitors to the copy".into());
    }
    s.insert("labels".into(), labels(plan));
    if let Some(Value::Object(env)) = s.get_mut("environment") {
        let before = env.len();
        env.retain(|k, _| !PROXY_VARIABLES.contains(&k.as_str()));
        if env.len() != before {
            notes.push(format!(
                "service {name}'s reverse-proxy variables (VIRTUAL_HOST and the like) are left out"
            ));
        }
    }
    let is_database = plan.database_service == Some(name);
    if let Some(Value::Array(mounts)) = s.get("volumes") {
        let mut kept = Vec::new();
        for m in mounts {
            if let Some(m) = mount(name, m, is_database, plan, extra_volumes, notes) {
                kept.push(m);
            }
        }
        s.insert("volumes".into(), Value::Array(kept));
    }
    // Second in line: the real app keeps its CPU and memory when both want them.
    s.insert("cpu_shares".into(), json!(256));
    s.insert("oom_score_adj".into(), json!(1000));
    if !s.contains_key("pids_limit") {
        s.insert("pids_limit".into(), json!(2048));
    }
    Ok(Value::Object(s))
}

/// A service's attachment to a network, without fixed addresses (they belong to the real one's
/// subnet) but with its aliases.
fn network_attachment(opts: &Value) -> Value {
    match opts.as_object() {
        Some(o) => {
            let mut o = o.clone();
            for key in [
                "ipv4_address",
                "ipv6_address",
                "link_local_ips",
                "mac_address",
            ] {
                o.remove(key);
            }
            Value::Object(o)
        }
        None => Value::Null,
    }
}

/// One mount of a service in the rehearsal; None when it is left out.
fn mount(
    service: &str,
    m: &Value,
    is_database: bool,
    plan: &Plan<'_>,
    extra_volumes: &mut Map<String, Value>,
    notes: &mut Vec<String>,
) -> Option<Value> {
    let mut m = m.as_object()?.clone();
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("volume");
    let source = m
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let target = m
        .get("target")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match kind {
        "bind" => {
            if DOCKER_SOCKETS.contains(&source.as_str()) {
                notes.push(format!(
                    "service {service} does not get the Docker socket in the copy (it could change the real app)"
                ));
                return None;
            }
            if let Some(copy) = plan.copies.get(&source) {
                let key = format!("hoist-copy-{}", extra_volumes.len() + 1);
                extra_volumes.insert(key.clone(), json!({ "external": true, "name": copy }));
                return Some(volume_mount(&key, &target, &m));
            }
            if is_database || plan.without.contains(&source) {
                // The database starts empty (the dump is loaded into it); so does data there
                // was no room to copy.
                let key = format!("hoist-empty-{}", extra_volumes.len() + 1);
                extra_volumes.insert(key.clone(), json!({ "labels": labels(plan) }));
                return Some(volume_mount(&key, &target, &m));
            }
            if m.get("read_only") != Some(&json!(true)) {
                notes.push(format!(
                    "service {service} gets {source} read-only in the copy (not a data mount hoist backs up, so not copied)"
                ));
                m.insert("read_only".into(), json!(true));
            }
            Some(Value::Object(m))
        }
        "volume" if !source.is_empty() => {
            if plan.copies.contains_key(&source) {
                return Some(Value::Object(m));
            }
            if !is_database {
                notes.push(format!(
                    "volume {source} ({service}) starts empty in the copy (not a data mount hoist backs up)"
                ));
            }
            Some(Value::Object(m))
        }
        _ => Some(Value::Object(m)),
    }
}

/// A bind mount turned into a volume mount of `key` at `target`, its read-only flag kept.
fn volume_mount(key: &str, target: &str, bind: &Map<String, Value>) -> Value {
    let mut v = json!({ "type": "volume", "source": key, "target": target });
    if bind.get("read_only") == Some(&json!(true)) {
        v["read_only"] = json!(true);
    }
    v
}

/// Every network of the model: the real ones' names, the rehearsal's own and internal.
fn networks(
    config: &Value,
    plan: &Plan<'_>,
    uses_default: bool,
    notes: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(nets) = config["networks"].as_object() {
        for (key, net) in nets {
            if net["external"] == json!(true) {
                notes.push(format!(
                    "network {key} (outside the stack) is replaced by one of the rehearsal's own"
                ));
            }
            out.insert(key.clone(), internal_network(plan));
        }
    }
    if uses_default && !out.contains_key("default") {
        out.insert("default".into(), internal_network(plan));
    }
    notes.push(
        "the copy has no way out of its own network: it sends no e-mail, calls no webhook and reaches nothing outside the stack"
            .into(),
    );
    out
}

fn internal_network(plan: &Plan<'_>) -> Value {
    json!({ "internal": true, "labels": labels(plan) })
}

/// Every volume of the model: a copy made beforehand, or an empty one of the rehearsal's own.
fn volumes(config: &Value, plan: &Plan<'_>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(vols) = config["volumes"].as_object() {
        for key in vols.keys() {
            let v = match plan.copies.get(key) {
                Some(copy) => json!({ "external": true, "name": copy }),
                None => json!({ "labels": labels(plan) }),
            };
            out.insert(key.clone(), v);
        }
    }
    out
}

/// Sets `variable` to `value` in the environment of every service that has it; whether any
/// did.
pub fn set_environment(model: &mut Value, variable: &str, value: &str) -> bool {
    let mut set = false;
    if let Some(services) = model["services"].as_object_mut() {
        for service in services.values_mut() {
            if let Some(slot) = service["environment"]
                .as_object_mut()
                .and_then(|env| env.get_mut(variable))
            {
                *slot = Value::String(value.to_string());
                set = true;
            }
        }
    }
    set
}

/// The ports the real app publishes on the host.
pub fn published(config: &Value) -> Vec<Published> {
    let mut out = Vec::new();
    let Some(services) = config["services"].as_object() else {
        return out;
    };
    for (name, s) in services {
        for p in s["ports"].as_array().into_iter().flatten() {
            let host = match &p["published"] {
                Value::String(s) => s.split('-').next().and_then(|p| p.parse().ok()),
                Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                _ => None,
            };
            let target = p["target"].as_u64().and_then(|n| u16::try_from(n).ok());
            if let (Some(host_port), Some(container_port)) = (host, target) {
                out.push(Published {
                    service: name.clone(),
                    host_port,
                    container_port,
                });
            }
        }
    }
    out
}

/// `url` (a check of the real app through a port it publishes on this host) turned into one of
/// the copy: the container's address and port. None when the URL goes elsewhere (a domain
/// name, a proxy), which the rehearsal cannot check without reaching the real app.
pub fn rehearsal_url(
    url: &str,
    published: &[Published],
    address_of: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse::<u16>().ok()?),
        _ => (
            authority,
            if matches!(scheme, "https" | "wss") {
                443
            } else {
                80
            },
        ),
    };
    let local = matches!(
        host,
        "127.0.0.1" | "localhost" | "0.0.0.0" | "[::1]" | "::1"
    );
    if !local {
        return None;
    }
    let p = published.iter().find(|p| p.host_port == port)?;
    let address = address_of(&p.service)?;
    Some(format!("{scheme}://{address}:{}{path}", p.container_port))
}

#[cfg(test)]
mod tests;
