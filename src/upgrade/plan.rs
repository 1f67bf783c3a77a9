//! The plan shown before an upgrade asks to go on, built from what the preflight and the
//! target found. Pure: tested without Docker.
use std::path::Path;

use crate::probe::facts::StackView;
use crate::run::{EnvDiff, PlannedBackup, UpgradePlan};
use crate::stack::detect::{Beside, BesideCopy};
use crate::stack::pin::PinChange;

#[allow(clippy::too_many_arguments)]
pub(super) fn build(
    view: &StackView,
    env_path: &Path,
    (from, to): (&str, &str),
    path: &[String],
    pull: &[String],
    download_bytes: u64,
    change: &PinChange,
    overridden: &[String],
) -> UpgradePlan {
    UpgradePlan {
        project: view.project.clone(),
        from: from.to_string(),
        to: to.to_string(),
        backup: PlannedBackup {
            dir: view.backup_dir.clone(),
            database: view.database.as_ref().map(|d| match d.kind {
                crate::db::DbKind::Sqlite => format!(
                    "SQLite file {} (service {}), archived with its data",
                    d.path.as_deref().unwrap_or("?"),
                    d.service
                ),
                crate::db::DbKind::Command => format!(
                    "dump by the settings' command `{}` (service {})",
                    d.commands
                        .as_ref()
                        .map(|c| crate::redact::command_line(&c.dump))
                        .unwrap_or_default(),
                    d.service
                ),
                crate::db::DbKind::Surrealdb => format!(
                    "SurrealDB export of database {} in namespace {} (service {})",
                    d.name, d.namespace, d.service
                ),
                _ => format!(
                    "{} dump of {} (service {})",
                    d.kind.name(),
                    d.name,
                    d.service
                ),
            }),
            data: view
                .data
                .iter()
                .map(|d| d.source.clone())
                .chain(
                    view.beside
                        .iter()
                        .filter(|b| b.copy != BesideCopy::LeftOut)
                        .map(beside_words),
                )
                .collect(),
        },
        path: path.to_vec(),
        pull: pull.to_vec(),
        download_bytes,
        recreate: view.upgraded.clone(),
        env_diff: EnvDiff {
            // The file the pin changes: `.env`, or the compose file holding a literal tag.
            file: if change.path.as_os_str().is_empty() {
                env_path.to_path_buf()
            } else {
                change.path.clone()
            },
            line: change.line,
            before: change.before.clone(),
            after: change.after.clone(),
            also_lines: change
                .old_text
                .lines()
                .zip(change.new_text.lines())
                .enumerate()
                .filter(|(i, (a, b))| a != b && Some(i + 1) != change.line)
                .map(|(i, _)| i + 1)
                .collect(),
        },
        overridden: overridden.to_vec(),
        checks: view
            .smoke
            .iter()
            .map(|s| s.words())
            .chain(view.app_checks.iter().map(|c| c.words()))
            .chain(view.observe_s.map(|s| {
                format!(
                    "then watched for {}:{:02} before the upgrade is called done (containers and metrics rules)",
                    s / 60,
                    s % 60
                )
            }))
            .collect(),
        left_out: view
            .beside
            .iter()
            .filter(|b| b.copy == BesideCopy::LeftOut)
            .map(|b| format!("{} (not backed up, as x-hoist leave_out says)", b.words()))
            .collect(),
        swarm_stack: None,
    }
}

/// "redisdata of redis (after a SAVE)", "meili_data of search (stopped for the copy)".
fn beside_words(b: &Beside) -> String {
    format!(
        "{} of {} ({})",
        b.mounts.join(", "),
        b.service,
        match b.copy {
            BesideCopy::SaveThenCopy => "after a SAVE",
            _ => "stopped for the copy",
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::compose::MountKind;
    use crate::stack::detect::DataMount;

    fn view() -> StackView {
        StackView {
            project: "specivo".into(),
            project_dir: "/srv/specivo".into(),
            compose_file: "/srv/specivo/compose.yaml".into(),
            compose_files: vec!["/srv/specivo/compose.yaml".into()],
            given_files: Vec::new(),
            env_files: Vec::new(),
            settings_file: None,
            env_file: "/srv/specivo/.env".into(),
            version_variable: Some("SPECIVO_VERSION".into()),
            pin_place: "SPECIVO_VERSION in .env".into(),
            pin_unknown: None,
            moving: false,
            pinned: Some("0.1.9".into()),
            pinned_source: None,
            services: vec!["api".into(), "worker".into()],
            upgraded: vec!["api".into(), "worker".into()],
            with_healthcheck: vec!["api".into()],
            database: None,
            unsupported_database: None,
            beside: Vec::new(),
            one_shot: Vec::new(),
            smoke: Vec::new(),
            app_checks: Vec::new(),
            observe_s: None,
            inactive: Vec::new(),
            data: vec![DataMount {
                kind: MountKind::Bind,
                source: "/srv/specivo/data".into(),
                target: "/data".into(),
                read_only: false,
                services: vec!["api".into()],
            }],
            backup_dir: "/srv/specivo-backups".into(),
            unheeded: Vec::new(),
            database_declined: false,
        }
    }

    #[test]
    fn the_plan_says_what_is_backed_up_pulled_recreated_and_changed() {
        let change = PinChange {
            path: "/srv/specivo/.env".into(),
            line: Some(2),
            before: Some("SPECIVO_VERSION=0.1.9".into()),
            after: "SPECIVO_VERSION=0.1.11".into(),
            old_text: String::new(),
            new_text: String::new(),
        };
        let plan = build(
            &view(),
            Path::new("/srv/specivo/.env"),
            ("0.1.9", "0.1.11"),
            &["0.1.10".into(), "0.1.11".into()],
            &["registry/specivo:0.1.10".into()],
            60_000_000,
            &change,
            &[],
        );
        assert_eq!(plan.backup.database, None);
        assert_eq!(plan.backup.data, ["/srv/specivo/data"]);
        assert_eq!(plan.recreate, ["api", "worker"]);
        assert_eq!(plan.env_diff.line, Some(2));
        assert_eq!(plan.env_diff.after, "SPECIVO_VERSION=0.1.11");
        assert!(plan.is_multi_hop());
        assert_eq!(plan.download_bytes, 60_000_000);
    }
}
