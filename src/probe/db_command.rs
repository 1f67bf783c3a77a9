//! A database of kind `command` read as far as hoist can: its revision command, run in its
//! container. Nothing else is known of it (no tables, no row counts, no write tally), and what
//! is unknown is said so, never taken for "unchanged".
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::db::{DbProbe, MigrationFramework, Migrations};
use crate::docker::{Engine, exec};
use crate::stack::detect::Database;

/// A revision command longer than this is stuck, not slow.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why no write is counted, said where a rollback would say "nothing was written".
const NO_TALLY: &str = "hoist reaches this database (kind command) only through its commands, so it cannot count what was written to it";

/// Runs the settings' revision command in `container` and makes a probe of what it printed.
/// It runs twice: a revision that changes from one call to the next (a clock, a random id)
/// would make every restore look failed and every rollback a restore, so it is refused here.
pub async fn probe(engine: &Engine, container: &str, db: &Database) -> Result<DbProbe, String> {
    let Some(commands) = &db.commands else {
        return Err(format!(
            "service {} is a database of kind command, but the settings give no revision command (x-hoist.database.revision)",
            db.service
        ));
    };
    let revision = read_revision(engine, container, db).await?;
    let again = read_revision(engine, container, db).await?;
    let shown = crate::redact::command_line(&commands.revision);
    if again != revision {
        return Err(format!(
            "the revision command ({shown}) in service {} printed {revision:?}, then {again:?}: it prints something new each time, so hoist could never tell whether the database is as a backup has it. Give a command that prints the schema's revision (e.g. the last applied migration)",
            db.service
        ));
    }
    Ok(DbProbe {
        fingerprint: hex::encode(Sha256::digest(revision.as_bytes())),
        migrations: Some(Migrations {
            framework: MigrationFramework::Command,
            revision,
            applied: 0,
            dirty: false,
        }),
        tables: Vec::new(),
        size_bytes: 0,
        server_version: String::new(),
        writes: Err(NO_TALLY.to_string()),
        columns: Vec::new(),
        kept_aside: Vec::new(),
    })
}

/// What the revision command prints, trimmed: one line, not empty.
pub async fn read_revision(
    engine: &Engine,
    container: &str,
    db: &Database,
) -> Result<String, String> {
    let argv = db
        .commands
        .as_ref()
        .map(|c| c.revision.clone())
        .unwrap_or_default();
    if argv.is_empty() {
        return Err(format!(
            "service {} is a database of kind command, but the settings give no revision command (x-hoist.database.revision)",
            db.service
        ));
    }
    let shown = &crate::redact::command_line(&argv);
    let cmd: Vec<&str> = argv.iter().map(String::as_str).collect();
    let run = exec::exec_output(engine, container, &cmd, &[], 64 * 1024);
    let (outcome, out) = match tokio::time::timeout(TIMEOUT, run).await {
        Err(_) => {
            return Err(format!(
                "the revision command ({shown}) in service {} did not finish within {}s",
                db.service,
                TIMEOUT.as_secs()
            ));
        }
        Ok(r) => r.map_err(|e| e.to_string())?,
    };
    if outcome.exit_code != 0 {
        let said = outcome.stderr.trim();
        return Err(format!(
            "the revision command ({shown}) failed in service {} (exit code {}){}",
            db.service,
            outcome.exit_code,
            if said.is_empty() {
                ", saying nothing".to_string()
            } else {
                format!(": {said}")
            }
        ));
    }
    let printed = crate::redact::mask(out.trim()).into_owned();
    if printed.is_empty() {
        return Err(format!(
            "the revision command ({shown}) printed nothing in service {}: it must print the schema's revision (e.g. the last applied migration)",
            db.service
        ));
    }
    let lines = printed.lines().count();
    if lines > 1 {
        return Err(format!(
            "the revision command ({shown}) printed {lines} lines in service {} ({:?}): it must print the schema's revision on one line (two revisions at once can be a restore that loaded over a newer database)",
            db.service,
            printed.chars().take(200).collect::<String>()
        ));
    }
    Ok(printed)
}

/// What `command -v` says of the dump and restore programs in `container`: the ones missing,
/// as (setting, program). Err when it cannot be asked (no `sh` in the image).
pub async fn missing_programs(
    engine: &Engine,
    container: &str,
    db: &Database,
) -> Result<Vec<(&'static str, String)>, String> {
    let Some(commands) = &db.commands else {
        return Ok(Vec::new());
    };
    let mut missing = Vec::new();
    for (setting, argv) in [("dump", &commands.dump), ("restore", &commands.restore)] {
        let Some(program) = argv.first() else {
            continue;
        };
        // `command -v` exits 127 in dash when the name is not found, as a missing sh would.
        let cmd = [
            "sh",
            "-c",
            "command -v \"$1\" >/dev/null || exit 3",
            "sh",
            program,
        ];
        let (outcome, _) = exec::exec_output(engine, container, &cmd, &[], 1024)
            .await
            .map_err(|e| e.to_string())?;
        match outcome.exit_code {
            0 => {}
            126 | 127 => return Err("the container has no sh to ask".to_string()),
            _ => missing.push((setting, program.clone())),
        }
    }
    Ok(missing)
}
