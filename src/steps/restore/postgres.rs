//! The PostgreSQL restore: the dump loaded into a scratch database in one transaction that
//! stops at the first error (a failed load changes nothing), then the current database renamed
//! aside and the restored one renamed into its place.
use std::path::Path;

use super::{DatabaseRestored, feed_dump, load_failure};
use crate::docker::{Engine, exec};
use crate::stack::detect::Database;

/// A SQL identifier, quoted.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Runs each SQL statement with psql in the database container (each on its own: CREATE and
/// DROP DATABASE cannot run inside a transaction).
async fn psql(
    engine: &Engine,
    container: &str,
    db: &Database,
    dbname: &str,
    statements: &[String],
) -> Result<(), String> {
    let mut cmd: Vec<&str> = vec![
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "--no-password",
        "--username",
        &db.user,
        "--dbname",
        dbname,
    ];
    for s in statements {
        cmd.push("-c");
        cmd.push(s);
    }
    let env = [format!("PGPASSWORD={}", db.password.expose())];
    let mut discard = |_: bytes::Bytes| Ok(());
    let out = exec::exec_streaming(engine, container, &cmd, &env, &mut discard)
        .await
        .map_err(|e| e.to_string())?;
    if out.exit_code != 0 {
        return Err(format!(
            "psql failed (exit code {}): {}",
            out.exit_code,
            out.stderr.trim()
        ));
    }
    Ok(())
}

/// Restores the PostgreSQL database from the gzip dump: loaded into a new database in one
/// transaction that stops at the first error, then the current database is renamed aside and
/// the restored one takes its name, in one transaction. A failed load or swap changes nothing.
pub(super) async fn restore(
    engine: &Engine,
    container: &str,
    db: &Database,
    dump_gz: &Path,
    stamp: &str,
) -> Result<DatabaseRestored, String> {
    // PostgreSQL names are at most 63 bytes.
    let short: String = db.name.chars().take(30).collect();
    let scratch = format!("{short}_hoist_restore");
    let aside = format!("{short}_before_rollback_{stamp}");
    psql(
        engine,
        container,
        db,
        "postgres",
        &[
            format!("DROP DATABASE IF EXISTS {}", ident(&scratch)),
            format!(
                "CREATE DATABASE {} OWNER {}",
                ident(&scratch),
                ident(&db.user)
            ),
        ],
    )
    .await
    .map_err(|e| format!("a scratch database for the restore could not be made: {e}"))?;

    let (rx, reader) = feed_dump(dump_gz);
    let cmd = [
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "--single-transaction",
        "--no-password",
        "--username",
        &db.user,
        "--dbname",
        &scratch,
    ];
    let env = [format!("PGPASSWORD={}", db.password.expose())];
    let loaded = exec::exec_with_input(engine, container, &cmd, &env, rx).await;
    let failure = load_failure(loaded, reader, dump_gz, "psql").await;
    if let Some(failure) = failure {
        let _ = psql(
            engine,
            container,
            db,
            "postgres",
            &[format!("DROP DATABASE IF EXISTS {}", ident(&scratch))],
        )
        .await;
        return Err(format!(
            "the dump did not load ({failure}); the database was not touched"
        ));
    }

    // Swap: nobody may stay connected to either database while it is renamed.
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN ({}, {}) AND pid <> pg_backend_pid()",
        literal(&db.name),
        literal(&scratch)
    );
    // Both renames in one transaction: a hoist killed, or a rename refused, in between leaves
    // the database under its name, never the app's name free and its data renamed aside.
    let swap = format!(
        "BEGIN; ALTER DATABASE {cur} RENAME TO {aside}; ALTER DATABASE {scratch} RENAME TO {cur}; COMMIT;",
        cur = ident(&db.name),
        aside = ident(&aside),
        scratch = ident(&scratch)
    );
    psql(engine, container, db, "postgres", &[terminate, swap])
        .await
        .map_err(|e| format!("the restored database could not take the name {} ({e}); the database was not touched, the restored copy is in {scratch}", db.name))?;
    Ok(DatabaseRestored {
        kept_aside_as: aside,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(literal("o'brien"), "'o''brien'");
    }
}
