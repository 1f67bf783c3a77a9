//! Putting a backup back: each data mount's current content moved aside (never deleted) and the
//! archive extracted in its place; the database loaded from the dump into a fresh database in
//! one transaction, then swapped in, the newer one kept aside under another name.
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::db::DbKind;
use crate::docker::{Engine, exec};
use crate::stack::detect::Database;

/// Renames the bind-mounted directory `source` to `<source>.before-rollback-<stamp>` and makes
/// it again, empty, with the same mode and owner. Returns where the content went.
pub fn move_aside(source: &Path, stamp: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(source)
        .map_err(|e| format!("{} cannot be read: {e}", source.display()))?;
    let mut aside = source.as_os_str().to_owned();
    aside.push(format!(".before-rollback-{stamp}"));
    let aside = PathBuf::from(aside);
    if aside.exists() {
        return Err(format!(
            "{} already exists; hoist will not overwrite it",
            aside.display()
        ));
    }
    std::fs::rename(source, &aside).map_err(|e| {
        format!(
            "{} could not be moved to {}: {e}",
            source.display(),
            aside.display()
        )
    })?;
    let remake = || -> std::io::Result<()> {
        std::fs::create_dir(source)?;
        std::fs::set_permissions(
            source,
            std::fs::Permissions::from_mode(meta.mode() & 0o7777),
        )?;
        // Only root may give a directory away; anyone else keeps it as their own.
        let _ = std::os::unix::fs::chown(source, Some(meta.uid()), Some(meta.gid()));
        Ok(())
    };
    if let Err(e) = remake() {
        // Put the content back where it was rather than leave the app without its directory.
        let _ = std::fs::remove_dir(source);
        let back = std::fs::rename(&aside, source);
        return Err(format!(
            "{} could not be made again ({e}); {}",
            source.display(),
            if back.is_ok() {
                "its content is back in place".to_string()
            } else {
                format!("its content is in {}", aside.display())
            }
        ));
    }
    Ok(aside)
}

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

/// Where the restored database's predecessor was kept.
pub struct DatabaseRestored {
    pub kept_aside_as: String,
}

/// Restores the PostgreSQL database from the gzip dump: loaded into a new database in one
/// transaction that stops at the first error, then the current database is renamed aside and
/// the restored one takes its name. A failed load changes nothing.
pub async fn restore_database(
    engine: &Engine,
    container: &str,
    db: &Database,
    dump_gz: &Path,
    stamp: &str,
) -> Result<DatabaseRestored, String> {
    if db.kind != DbKind::Postgres {
        return Err(format!(
            "restoring a {} database is not built into hoist yet",
            db.kind.name()
        ));
    }
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

    // The dump, gunzipped on a blocking thread, streams into psql's stdin.
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let path = dump_gz.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&path)?);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = gz.read(&mut buf)?;
            if n == 0
                || tx
                    .blocking_send(bytes::Bytes::copy_from_slice(&buf[..n]))
                    .is_err()
            {
                return Ok(());
            }
        }
    });
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
    let read = reader
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let failure = match (loaded, read) {
        (Err(e), _) => Some(e.to_string()),
        (_, Err(e)) => Some(format!("{} could not be read: {e}", dump_gz.display())),
        (Ok(out), Ok(())) if out.exit_code != 0 => Some(format!(
            "psql stopped at the first error (exit code {}): {}",
            out.exit_code,
            out.stderr.trim()
        )),
        _ => None,
    };
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
    psql(
        engine,
        container,
        db,
        "postgres",
        &[
            terminate,
            format!(
                "ALTER DATABASE {} RENAME TO {}",
                ident(&db.name),
                ident(&aside)
            ),
        ],
    )
    .await
    .map_err(|e| format!("the current database could not be moved aside ({e}); the database was not touched, the restored copy is in {scratch}"))?;
    if let Err(e) = psql(
        engine,
        container,
        db,
        "postgres",
        &[format!(
            "ALTER DATABASE {} RENAME TO {}",
            ident(&scratch),
            ident(&db.name)
        )],
    )
    .await
    {
        let back = psql(
            engine,
            container,
            db,
            "postgres",
            &[format!(
                "ALTER DATABASE {} RENAME TO {}",
                ident(&aside),
                ident(&db.name)
            )],
        )
        .await;
        return Err(format!(
            "the restored database could not take the name {} ({e}); {}",
            db.name,
            if back.is_ok() {
                "the current database is back under its name".to_string()
            } else {
                format!("the current database is now named {aside}")
            }
        ));
    }
    Ok(DatabaseRestored {
        kept_aside_as: aside,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_aside_keeps_the_content_and_remakes_the_directory() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::write(data.join("a.txt"), "newer").unwrap();
        let aside = move_aside(&data, "20261128T120000Z").unwrap();
        assert_eq!(
            aside,
            tmp.path().join("data.before-rollback-20261128T120000Z")
        );
        assert_eq!(
            std::fs::read_to_string(aside.join("a.txt")).unwrap(),
            "newer"
        );
        assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
        assert_eq!(
            std::fs::metadata(&data).unwrap().permissions().mode() & 0o7777,
            0o750
        );
        // A second move with the same stamp refuses rather than overwrite.
        let e = move_aside(&data, "20261128T120000Z").unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        assert!(data.is_dir());
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(literal("o'brien"), "'o''brien'");
    }
}
