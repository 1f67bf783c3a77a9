//! The app's configuration as it ran when the backup was taken: each upgraded service's
//! environment and labels (its image's included), kept whole in the backup (`config.json`,
//! 0600, beside `.env` which holds the same secrets), and after an upgrade said as a diff with
//! secret values masked. A runbook's "record the deployed config and snapshot the environment"
//! done for the user.
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::docker::{ContainerInfo, Engine};

/// Service -> what its (first) container ran with.
pub type Snapshot = BTreeMap<String, ServiceConfig>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// The configuration of the `containers` now (one per service; a container that cannot be
/// inspected is left out).
pub async fn take(engine: &Engine, containers: &[ContainerInfo]) -> Snapshot {
    let mut out = Snapshot::new();
    for c in containers {
        if out.contains_key(&c.service) {
            continue;
        }
        if let Ok((env, labels)) = crate::docker::containers::config_of(engine, &c.id).await {
            let env = env
                .into_iter()
                .filter_map(|e| {
                    e.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
            out.insert(c.service.clone(), ServiceConfig { env, labels });
        }
    }
    out
}

pub const FILE: &str = "config.json";

/// The snapshot kept in a backup, when it has one.
pub fn read(backup_dir: &Path) -> Option<Snapshot> {
    let text = std::fs::read(backup_dir.join(FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// What changed between `then` and `now`, one line each, for people: a variable added,
/// removed or changed (a secret's value never said), a label changed.
pub fn diff(then: &Snapshot, now: &Snapshot) -> Vec<String> {
    let mut lines = Vec::new();
    for (service, after) in now {
        let Some(before) = then.get(service) else {
            lines.push(format!("{service}: a new service"));
            continue;
        };
        let said = |key: &str, value: &str| -> String {
            if crate::redact::is_secret_name(key) {
                crate::redact::MASK.to_string()
            } else {
                let masked = crate::redact::mask(value).into_owned();
                format!("{masked:?}")
            }
        };
        for (key, value) in &after.env {
            match before.env.get(key) {
                None => lines.push(format!("{service}: {key} added ({})", said(key, value))),
                Some(old) if old != value => {
                    if crate::redact::is_secret_name(key) {
                        lines.push(format!("{service}: {key} changed (a secret: not shown)"));
                    } else {
                        lines.push(format!(
                            "{service}: {key} {} -> {}",
                            said(key, old),
                            said(key, value)
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        for key in before.env.keys().filter(|k| !after.env.contains_key(*k)) {
            lines.push(format!("{service}: {key} removed"));
        }
        for (key, value) in &after.labels {
            match before.labels.get(key) {
                Some(old) if old != value => {
                    lines.push(format!("{service}: label {key} {old:?} -> {value:?}"))
                }
                None => lines.push(format!("{service}: label {key} added ({value:?})")),
                Some(_) => {}
            }
        }
        for key in before
            .labels
            .keys()
            .filter(|k| !after.labels.contains_key(*k))
        {
            lines.push(format!("{service}: label {key} removed"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(env: &[(&str, &str)], labels: &[(&str, &str)]) -> ServiceConfig {
        ServiceConfig {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_diff_says_what_changed_and_never_a_secret() {
        let then = Snapshot::from([(
            "api".to_string(),
            config(
                &[
                    ("APP_RELEASE", "0.1.9"),
                    ("DB_PASSWORD", "hunter22"),
                    ("OLD", "1"),
                ],
                &[("org.opencontainers.image.version", "0.1.9")],
            ),
        )]);
        let now = Snapshot::from([
            (
                "api".to_string(),
                config(
                    &[
                        ("APP_RELEASE", "0.1.10"),
                        ("DB_PASSWORD", "hunter23"),
                        ("API_TOKEN", "abcdefgh"),
                    ],
                    &[("org.opencontainers.image.version", "0.1.10")],
                ),
            ),
            ("search".to_string(), ServiceConfig::default()),
        ]);
        let lines = diff(&then, &now);
        assert_eq!(
            lines,
            [
                "api: API_TOKEN added (***)",
                "api: APP_RELEASE \"0.1.9\" -> \"0.1.10\"",
                "api: DB_PASSWORD changed (a secret: not shown)",
                "api: OLD removed",
                "api: label org.opencontainers.image.version \"0.1.9\" -> \"0.1.10\"",
                "search: a new service",
            ]
        );
        assert!(diff(&now, &now).is_empty());
    }
}
