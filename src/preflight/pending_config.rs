//! A change of configuration waiting in the files: `.env` or the compose file gives an upgraded
//! service another environment than its running container has (a secret rotated since the
//! container was created). The upgrade applies it together with the new version, and if it is
//! wrong the previous version fails with it too: runbook 003's "secret was rotated incorrectly",
//! said before anything changes.
use std::collections::BTreeMap;

use super::{Finding, Level};
use crate::probe::facts::Facts;

/// "synctv: SYNCTV_JWT_SECRET (a secret)" for each variable the files change; values are never
/// said. None when nothing waits (or nothing runs to compare with).
pub async fn finding(facts: &Facts) -> Option<Finding> {
    let running = facts.docker.as_ref().ok()?;
    let containers: Vec<_> = facts
        .view
        .upgraded
        .iter()
        .filter_map(|s| {
            running
                .of_service(s)
                .into_iter()
                .find(|c| c.is_running())
                .cloned()
        })
        .collect();
    if containers.is_empty() {
        return None;
    }
    let now = crate::backup::config_snapshot::take(&running.engine, &containers).await;
    let changed = changed_from(facts, &now).await;
    if changed.is_empty() {
        return None;
    }
    if let Some(stack) = crate::probe::swarm::stack_name(facts.swarm.as_ref()) {
        // hoist's Swarm update sets the image only: the difference stays as it is.
        return Some(Finding::new(
            "pending_config",
            Level::Warn,
            format!(
                "the files with .env give {} another value than Swarm stack {stack} runs with: it was deployed with other variables in the shell (or without .env loaded), or .env changed since. hoist reads the files with .env (the database's password too), and its update sets only the image, so the running values stay. Do not simply deploy again with .env loaded: a database's password takes effect only when its volume is first made, so the app would lose its connection. Rather make .env say what the stack runs with (`docker service inspect` shows it; the backup's config.json keeps it)",
                changed.join(", ")
            ),
        ));
    }
    Some(Finding::new(
        "pending_config",
        Level::Warn,
        format!(
            "the files give {} another value than the running container has: .env or the compose file changed since it was created, and the upgrade applies that change together with the new version. If the change is wrong (a secret rotated wrongly), the previous version fails with it too: put the old value back (the backup's config.json keeps what runs now) and run `docker compose up -d`",
            changed.join(", ")
        ),
    ))
}

/// The variables the files give the upgraded services (Compose's resolved `environment`)
/// otherwise than `ran` (a snapshot of their containers, now or at a backup), in words; empty
/// when Compose cannot say.
pub async fn changed_from(
    facts: &Facts,
    ran: &crate::backup::config_snapshot::Snapshot,
) -> Vec<String> {
    let Ok(tool) = crate::docker::compose_cli::find().await else {
        return Vec::new();
    };
    let files = facts
        .view
        .compose()
        .environments(&tool, &facts.view.upgraded)
        .await;
    pending(&files, ran)
}

/// The variables `files` sets otherwise than the containers (`now`) run with.
fn pending(
    files: &BTreeMap<String, BTreeMap<String, String>>,
    now: &crate::backup::config_snapshot::Snapshot,
) -> Vec<String> {
    let mut out = Vec::new();
    for (service, env) in files {
        let Some(running) = now.get(service) else {
            continue;
        };
        for (key, value) in env {
            // `compose config` writes a literal `$` escaped as `$$`.
            let ran = running.env.get(key);
            if ran != Some(value) && ran != Some(&value.replace("$$", "$")) {
                let secret = if crate::redact::is_secret_name(key) {
                    " (a secret)"
                } else {
                    ""
                };
                out.push(format!("{service}: {key}{secret}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::config_snapshot::{ServiceConfig, Snapshot};

    #[test]
    fn a_variable_the_files_change_is_named_and_its_value_never_said() {
        let files = BTreeMap::from([(
            "app".to_string(),
            BTreeMap::from([
                ("JWT_SECRET".to_string(), "new-secret-value".to_string()),
                ("LOG_LEVEL".to_string(), "info".to_string()),
                ("NEW_FLAG".to_string(), "on".to_string()),
                ("PRICE".to_string(), "$$5".to_string()),
            ]),
        )]);
        let mut now = Snapshot::new();
        now.insert(
            "app".into(),
            ServiceConfig {
                env: BTreeMap::from([
                    ("JWT_SECRET".to_string(), "old-secret-value".to_string()),
                    ("LOG_LEVEL".to_string(), "info".to_string()),
                    ("PRICE".to_string(), "$5".to_string()),
                    ("PATH".to_string(), "/usr/bin".to_string()),
                ]),
                labels: BTreeMap::new(),
            },
        );
        let said = pending(&files, &now);
        assert_eq!(said, ["app: JWT_SECRET (a secret)", "app: NEW_FLAG"]);
        assert!(!said.join(" ").contains("secret-value"));
        // A service that runs nothing is not compared.
        assert!(pending(&files, &Snapshot::new()).is_empty());
    }
}
