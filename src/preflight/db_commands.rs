//! A database of kind `command`: its dump and restore programs must be in its container now,
//! not found missing in the middle of a rollback with the app stopped.
use super::{Finding, Level};
use crate::probe::facts::Facts;

pub async fn programs_finding(facts: &Facts) -> Option<Finding> {
    let db = facts
        .view
        .database
        .as_ref()
        .filter(|d| d.kind == crate::db::DbKind::Command)?;
    let running = facts.docker.as_ref().ok()?;
    let container = running
        .of_service(&db.service)
        .into_iter()
        .find(|c| c.is_running())?;
    Some(
        match crate::probe::db_command::missing_programs(&running.engine, &container.id, db).await {
            Ok(missing) if missing.is_empty() => Finding::new(
                "database_commands",
                Level::Ok,
                format!(
                    "the dump and restore programs are in service {}'s container",
                    db.service
                ),
            ),
            Ok(missing) => Finding::new(
                "database_commands",
                Level::Fail,
                format!(
                    "{} not in service {}'s container: a backup or a restore would fail (a restore with the app stopped). Fix x-hoist.database in your settings",
                    missing
                        .iter()
                        .map(|(setting, program)| format!(
                            "the {setting} command's program {program:?} is"
                        ))
                        .collect::<Vec<_>>()
                        .join(", and "),
                    db.service
                ),
            ),
            Err(e) => Finding::new(
                "database_commands",
                Level::Warn,
                format!(
                    "whether the dump and restore programs are in service {}'s container could not be checked ({e}); a missing one shows only when it runs",
                    db.service
                ),
            ),
        },
    )
}
