//! Putting a backup back: each data mount's current content moved aside (never deleted) and the
//! archive extracted in its place; the database restored by its kind's own rules
//! (`postgres.rs`, `mysql.rs`, `command.rs` for a database restored by its commands or its
//! API), the newer one always kept. Here, below the rollback, so that an upgrade's rehearsal
//! loads the same dump the same way into its throwaway database.
mod command;
mod mysql;
mod postgres;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::db::DbKind;
use crate::docker::Engine;
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

/// Undoes `move_aside` after an extraction into `source` failed: the half-extracted tree is
/// removed (it holds only what came from the backup's archive, which is still whole) and the
/// content kept in `aside` goes back, with its own modes and owners.
pub fn put_back(source: &Path, aside: &Path) -> Result<(), String> {
    if !aside.is_dir() {
        return Err(format!("{} is not there to put back", aside.display()));
    }
    match std::fs::remove_dir_all(source) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "the half-extracted {} could not be removed ({e})",
                source.display()
            ));
        }
    }
    std::fs::rename(aside, source).map_err(|e| {
        format!(
            "{} could not be moved back to {} ({e})",
            aside.display(),
            source.display()
        )
    })
}

/// Where the restored database's predecessor was kept.
pub struct DatabaseRestored {
    /// A database name (PostgreSQL) or a dump file (MySQL/MariaDB).
    pub kept_aside_as: String,
}

/// Restores the database from the gzip dump, by its kind's rules; the newer database is kept
/// (MySQL/MariaDB: as a dump in `keep_dir`). A failed restore leaves the database as it was.
/// `expected`: the backup's revision, which a database restored by its commands must print.
pub async fn restore_database(
    engine: &Engine,
    container: &str,
    db: &Database,
    dump_gz: &Path,
    stamp: &str,
    keep_dir: &Path,
    expected: Option<&str>,
) -> Result<DatabaseRestored, String> {
    match db.kind {
        DbKind::Postgres => postgres::restore(engine, container, db, dump_gz, stamp).await,
        DbKind::Mysql => mysql::restore(engine, container, db, dump_gz, stamp, keep_dir).await,
        DbKind::Command | DbKind::Surrealdb => {
            command::restore(engine, container, db, dump_gz, stamp, keep_dir, expected).await
        }
        DbKind::Sqlite => Err(format!(
            "service {} keeps its database in an SQLite file, which comes back with the data it is in, not from a dump",
            db.service
        )),
    }
}

/// Where the newer database's dump is kept: `<keep_dir>/<name>-before-rollback-<stamp>.<ext>`
/// (`probe::kept_aside` lists them by that shape).
pub(crate) fn kept_dump_path(keep_dir: &Path, name: &str, stamp: &str, ext: &str) -> PathBuf {
    let clean = crate::probe::kept_aside::file_name_part(name);
    keep_dir.join(format!("{clean}-before-rollback-{stamp}.{ext}"))
}

/// Keeps the current database as a verified dump (`kept_dump_path`) before a restore touches
/// it, never over an existing file. Err: nothing was touched.
pub(crate) async fn keep_as_dump(
    engine: &Engine,
    container: &str,
    db: &Database,
    (keep_dir, stamp, ext): (&Path, &str, &str),
) -> Result<PathBuf, String> {
    let kept = kept_dump_path(keep_dir, &db.name, stamp, ext);
    if kept.exists() {
        return Err(format!(
            "{} already exists; hoist will not overwrite it. The database was not touched",
            kept.display()
        ));
    }
    crate::backup::dump::dump(engine, db, container, &kept, &|_| {})
        .await
        .map_err(|e| {
            format!("the current database could not be kept as a dump first ({e}); the database was not touched")
        })?;
    Ok(kept)
}

/// The dump, gunzipped on a blocking thread, as chunks for a command's stdin. The task ends
/// when the file is read or the receiver is gone.
pub(crate) fn feed_dump(
    dump_gz: &Path,
) -> (
    tokio::sync::mpsc::Receiver<bytes::Bytes>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let path = dump_gz.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(&path)?);
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
    (rx, reader)
}

/// Why feeding a command the dump failed, if it did: the command, the file, or its exit code.
pub(crate) async fn load_failure(
    loaded: Result<crate::docker::exec::ExecOutcome, crate::docker::DockerError>,
    reader: tokio::task::JoinHandle<std::io::Result<()>>,
    dump_gz: &Path,
    tool: &str,
) -> Option<String> {
    let read = reader
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    match (loaded, read) {
        (Err(e), _) => Some(e.to_string()),
        (_, Err(e)) => Some(format!("{} could not be read: {e}", dump_gz.display())),
        // psql and mariadb are run to stop at the first error; a command's own tool may not.
        (Ok(out), Ok(())) if out.exit_code != 0 && tool.starts_with("the restore command") => {
            Some(format!(
                "{tool} failed (exit code {}): {}",
                out.exit_code,
                out.stderr.trim()
            ))
        }
        (Ok(out), Ok(())) if out.exit_code != 0 => Some(format!(
            "{tool} stopped at the first error (exit code {}): {}",
            out.exit_code,
            out.stderr.trim()
        )),
        _ => None,
    }
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
    fn a_failed_extraction_puts_the_data_back_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("data");
        std::fs::create_dir(&source).unwrap();
        std::fs::write(source.join("newer.txt"), "newer").unwrap();
        let aside = move_aside(&source, "20261202T120000Z").unwrap();
        // Half an archive's worth, then the extraction fails.
        std::fs::create_dir(source.join("uploads")).unwrap();
        std::fs::write(source.join("uploads").join("half"), "x").unwrap();
        put_back(&source, &aside).unwrap();
        assert_eq!(
            std::fs::read_to_string(source.join("newer.txt")).unwrap(),
            "newer"
        );
        assert!(!source.join("uploads").exists(), "the half tree is gone");
        assert!(!aside.exists());
        assert!(
            put_back(&source, &aside).is_err(),
            "nothing left to put back"
        );
    }
}
