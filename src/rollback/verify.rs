//! What a rollback checks once the previous version runs again, and how it says where the
//! newer data went. The data checks and the words are pure, tested without Docker.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::plan::{BackupDb, Decision};
use crate::context::Context;
use crate::db::DbProbe;
use crate::probe::facts::{self, StackView};
use crate::run::Run;
use crate::stack::{Stack, pin};

/// Everything wrong once the previous version runs again: its images, health and restarts,
/// `.env`, the schema (and after a restore every table's rows) against the backup, and the
/// smoke checks, each reported as it answers. The summary learns the schema and smoke results.
#[allow(clippy::too_many_arguments)]
pub(super) async fn check_after(
    run: &mut Run<'_>,
    ctx: &Context,
    stack: &Stack,
    view: &StackView,
    targets: &BTreeMap<String, String>,
    previous: &str,
    backup_db: Option<&BackupDb>,
    decision: Decision,
    summary: &mut Value,
) -> Vec<String> {
    let after = facts::gather(ctx, view.clone()).await;
    // Each check said as it is made, passed or not, as the upgrade's verify says them.
    let check = |what: &str, found: &[String], ok_words: String| {
        run.emit(crate::run::Event::Check {
            what: what.to_string(),
            ok: found.is_empty(),
            detail: if found.is_empty() {
                ok_words
            } else {
                found.join("; ")
            },
        });
    };
    let mut problems = crate::steps::verify::running_problems(&after, targets);
    check(
        "containers",
        &problems,
        format!(
            "{} run the previous images, healthy, no restart",
            targets.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    );
    let version = &stack.detection.version;
    let pinned = match pin::plan_at(&version.site, &stack.env_path, previous) {
        Ok(c) if c.before.as_deref() == Some(c.after.as_str()) => Vec::new(),
        Ok(_) => vec![format!("{} is not set", version.assignment(previous))],
        Err(e) => vec![e.to_string()],
    };
    check(
        "pin",
        &pinned,
        format!("{} pins {previous}", version.file_label()),
    );
    problems.extend(pinned);
    let data = match (backup_db, &after.db) {
        (Some(backup), Some(Ok(now))) => {
            summary["schema_after"] = json!(now.migrations.as_ref().map(|m| m.revision.clone()));
            let found = data_problems(backup, now, decision);
            let revision = now
                .migrations
                .as_ref()
                .map_or("(no migrations table)".to_string(), |m| m.revision.clone());
            check(
                "data",
                &found,
                if now.migrations.as_ref().map(|m| m.framework)
                    == Some(crate::db::MigrationFramework::Command)
                {
                    // Its tables are not known to hoist: only the revision is compared.
                    format!("the revision command prints {revision}, as at the backup")
                } else if decision == Decision::Restore {
                    format!(
                        "schema revision {revision} and every table's rows as the backup has them"
                    )
                } else {
                    format!("schema revision {revision}, as the backup's")
                },
            );
            found
        }
        (_, Some(Err(e))) => {
            let found = vec![format!("the database cannot be read: {e}")];
            check("database", &found, String::new());
            found
        }
        _ => Vec::new(),
    };
    problems.extend(data);
    let (smoke_results, smoke_problems) = crate::steps::verify::smoke_checks(run, stack).await;
    problems.extend(smoke_problems);
    summary["smoke"] = json!(smoke_results);
    let (check_results, check_problems) =
        crate::steps::verify::app_checks(run, stack, &after).await;
    problems.extend(check_problems);
    if !check_results.is_empty() {
        summary["checks"] = json!(check_results);
    }
    problems
}

/// The schema revision must be the backup's; after a restore, every table's rows too.
pub(super) fn data_problems(backup: &BackupDb, now: &DbProbe, decision: Decision) -> Vec<String> {
    let mut problems = Vec::new();
    let revision = now.migrations.as_ref().map(|m| m.revision.clone());
    if revision != backup.revision {
        problems.push(format!(
            "the schema revision is {}, the backup's is {}",
            revision.as_deref().unwrap_or("(none)"),
            backup.revision.as_deref().unwrap_or("(none)")
        ));
    }
    if decision == Decision::Restore {
        for (table, rows) in &backup.tables {
            let rows_now = now.tables.iter().find(|t| &t.name == table).map(|t| t.rows);
            if rows_now != Some(*rows) {
                problems.push(format!(
                    "table {table} has {} rows, the backup {rows}",
                    rows_now.map_or("no".to_string(), |r| r.to_string())
                ));
            }
        }
    }
    problems
}

/// "; the newer data is kept aside (files in D, database N)", or nothing when nothing was.
pub(super) fn aside_words(kept_aside: &Value) -> String {
    let mut kept: Vec<String> = kept_aside["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(|d| format!("files in {d}")))
        .collect();
    if let Some(db) = kept_aside["database"].as_str() {
        kept.push(format!("database {db}"));
    }
    if kept.is_empty() {
        String::new()
    } else {
        format!("; the newer data is kept aside ({})", kept.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newer_data_is_named_where_it_went() {
        assert_eq!(aside_words(&json!({})), "");
        assert_eq!(
            aside_words(
                &json!({"data": ["/srv/data.before-rollback-X"], "database": "app_before_rollback_X"})
            ),
            "; the newer data is kept aside (files in /srv/data.before-rollback-X, database app_before_rollback_X)"
        );
    }

    fn probe(revision: &str, tables: &[(&str, u64)]) -> DbProbe {
        DbProbe::alembic(revision, "f", tables)
    }

    #[test]
    fn a_rollback_verifies_the_revision_and_after_a_restore_every_table() {
        let backup = BackupDb {
            revision: Some("0020".into()),
            fingerprint: "f".into(),
            tables: vec![("issues".into(), 10), ("users".into(), 3)],
            writes: Err("not read".into()),
            columns: None,
        };
        // Re-pinned: rows written since are kept, only the revision must match.
        let now = probe("0020", &[("issues", 12), ("users", 3)]);
        assert!(data_problems(&backup, &now, Decision::Repin).is_empty());
        // Restored: every table as the backup has it.
        let problems = data_problems(&backup, &now, Decision::Restore);
        assert_eq!(problems, ["table issues has 12 rows, the backup 10"]);
        let gone = probe("0021", &[("issues", 10)]);
        let problems = data_problems(&backup, &gone, Decision::Restore);
        assert_eq!(
            problems,
            [
                "the schema revision is 0021, the backup's is 0020",
                "table users has no rows, the backup 3"
            ]
        );
    }
}
