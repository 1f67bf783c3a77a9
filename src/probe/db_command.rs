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
pub async fn probe(engine: &Engine, container: &str, db: &Database) -> Result<DbProbe, String> {
    let Some(commands) = &db.commands else {
        return Err(format!(
            "service {} is a database of kind command, but the settings give no revision command (x-hoist.database.revision)",
            db.service
        ));
    };
    let cmd: Vec<&str> = commands.revision.iter().map(String::as_str).collect();
    let shown = commands.revision.join(" ");
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
        return Err(format!(
            "the revision command ({shown}) failed in service {} (exit code {}): {}",
            db.service,
            outcome.exit_code,
            outcome.stderr.trim()
        ));
    }
    let revision = out.trim().to_string();
    if revision.is_empty() {
        return Err(format!(
            "the revision command ({shown}) printed nothing in service {}: it must print the schema's revision (e.g. the last applied migration)",
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
