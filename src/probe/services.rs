//! Each service of the stack as it runs: image, the version it really runs, state, health.
use serde::Serialize;

use crate::probe::facts::Facts;

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// Whether an upgrade recreates this service (it runs the app's image).
    pub upgraded: bool,
    pub image: Option<String>,
    /// The version it really runs: the image's OCI version label, else its tag.
    pub version: Option<String>,
    pub digest: Option<String>,
    /// running, exited, restarting, ... or "missing" when no container exists.
    pub state: String,
    pub health: Option<String>,
    pub exit_code: Option<i64>,
    pub restart_count: i64,
    pub containers: usize,
    /// What the files say it is meant to do when that is not "run all the time": "one-shot"
    /// (a job that exits when done) or "inactive: <why>" (Compose does not start it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
}

impl ServiceStatus {
    /// Its state in words: "running, healthy", "one-shot job, exited 0", "not started".
    pub fn state_words(&self) -> String {
        match (&self.health, self.lifecycle.as_deref()) {
            (_, Some("one-shot")) if self.state == "exited" => {
                format!(
                    "one-shot job, exited {}",
                    self.exit_code.unwrap_or_default()
                )
            }
            (_, Some(l)) if self.state == "missing" && l.starts_with("inactive") => {
                "not started".to_string()
            }
            (Some(h), _) => format!("{}, {h}", self.state),
            (None, _) => self.state.clone(),
        }
    }

    /// Whether its state is what it should be: running (and healthy, when it reports health),
    /// a one-shot job that finished with exit code 0, or a service Compose does not start.
    pub fn is_fine(&self) -> bool {
        match self.lifecycle.as_deref() {
            Some("one-shot") if self.state == "exited" => self.exit_code == Some(0),
            Some(l) if l.starts_with("inactive") && self.state == "missing" => true,
            _ => self.state == "running" && self.health.as_deref().is_none_or(|h| h == "healthy"),
        }
    }
}

pub fn services(facts: &Facts) -> Vec<ServiceStatus> {
    let view = &facts.view;
    view.services
        .iter()
        .map(|name| {
            let upgraded = view.upgraded.contains(name);
            let lifecycle = if let Some((_, why)) = view.inactive.iter().find(|(n, _)| n == name) {
                Some(format!("inactive: {why}"))
            } else if view.one_shot.contains(name) {
                Some("one-shot".to_string())
            } else {
                None
            };
            let containers = match &facts.docker {
                Ok(running) => running.of_service(name),
                Err(_) => Vec::new(),
            };
            // With replicas, report the worst one: that is the one that needs attention.
            let worst = containers
                .iter()
                .max_by_key(|c| {
                    (
                        !c.is_running(),
                        c.health.map(|h| h.to_string() != "healthy"),
                        c.restart_count,
                    )
                })
                .copied();
            match worst {
                Some(c) => ServiceStatus {
                    name: name.clone(),
                    upgraded,
                    image: Some(c.image.clone()),
                    version: c
                        .version_label
                        .clone()
                        .or_else(|| c.image_tag().map(str::to_string)),
                    digest: c.digest.clone(),
                    state: c.state.clone(),
                    health: c.health.map(|h| h.to_string()),
                    exit_code: (!c.is_running()).then_some(c.exit_code),
                    restart_count: c.restart_count,
                    containers: containers.len(),
                    lifecycle,
                },
                None => ServiceStatus {
                    name: name.clone(),
                    upgraded,
                    image: None,
                    version: None,
                    digest: None,
                    state: if facts.docker.is_ok() {
                        "missing".into()
                    } else {
                        "unknown".into()
                    },
                    health: None,
                    exit_code: None,
                    restart_count: 0,
                    containers: 0,
                    lifecycle,
                },
            }
        })
        .collect()
}

/// The version the upgraded services run, when they agree on one.
pub fn running_version(services: &[ServiceStatus]) -> Option<String> {
    let mut versions = services
        .iter()
        .filter(|s| s.upgraded)
        .filter_map(|s| s.version.clone());
    let first = versions.next()?;
    versions.all(|v| v == first).then_some(first)
}
