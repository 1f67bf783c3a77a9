//! The database dump: the database's own dump tool run inside its container through the exec
//! API, streamed into a gzip file on the host, then read back to prove it is complete.
use std::io::{BufRead, Write};
use std::path::Path;

use super::BackupError;
use super::gzip;
use crate::db::DbKind;
use crate::docker::{Engine, exec};
use crate::stack::detect::Database;

/// The last line each tool writes when, and only when, the dump is whole.
fn completion_marker(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Postgres => "-- PostgreSQL database dump complete",
        DbKind::Mysql => "-- Dump completed",
        // The commands' own format, or SurrealDB's export: no marker is known.
        DbKind::Sqlite | DbKind::Command | DbKind::Surrealdb => "",
    }
}

/// Dumps the database into `dest` (gzip). Returns the uncompressed size; `read` hears the
/// bytes read so far as they come.
pub async fn dump(
    engine: &Engine,
    db: &Database,
    container: &str,
    dest: &Path,
    read: &(dyn Fn(u64) + Sync),
) -> Result<u64, BackupError> {
    if db.kind == DbKind::Surrealdb {
        return export_surreal(engine, db, container, dest, read).await;
    }
    let attempts: Vec<(Vec<&str>, Vec<String>)> = match db.kind {
        DbKind::Postgres => vec![(
            vec![
                "pg_dump",
                "--username",
                &db.user,
                "--dbname",
                &db.name,
                "--no-password",
                "--format=plain",
            ],
            vec![format!("PGPASSWORD={}", db.password.expose())],
        )],
        DbKind::Mysql => ["mariadb-dump", "mysqldump"]
            .iter()
            .map(|tool| {
                (
                    vec![
                        *tool,
                        "--user",
                        &db.user,
                        "--single-transaction",
                        "--routines",
                        "--triggers",
                        "--events",
                        &db.name,
                    ],
                    vec![format!("MYSQL_PWD={}", db.password.expose())],
                )
            })
            .collect(),
        DbKind::Command => match &db.commands {
            Some(c) => vec![(c.dump.iter().map(String::as_str).collect(), Vec::new())],
            None => {
                return Err(BackupError::Unsupported(format!(
                    "service {} is a database of kind command, but its dump command is not set (x-hoist.database.dump)",
                    db.service
                )));
            }
        },
        DbKind::Surrealdb => Vec::new(),
        DbKind::Sqlite => {
            return Err(BackupError::Unsupported(format!(
                "service {} keeps its database in an SQLite file; hoist backs it up with the data archive of the mount that holds it, not as a dump",
                db.service
            )));
        }
    };
    let tmp = gzip::temp_name(dest);
    let mut last_err = None;
    for (cmd, env) in attempts {
        let _ = std::fs::remove_file(&tmp);
        match dump_once(engine, container, &cmd, &env, &tmp, read).await {
            Ok(bytes) => {
                verify(&tmp, db.kind)?;
                std::fs::rename(&tmp, dest).map_err(|e| BackupError::io(dest, e))?;
                return Ok(bytes);
            }
            // The tool is not in this image (exit 126/127): try the next name.
            Err(BackupError::Dump {
                exit_code: 126 | 127,
                ..
            }) => {}
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
        last_err = Some(cmd[0].to_string());
    }
    let _ = std::fs::remove_file(&tmp);
    Err(BackupError::Dump {
        exit_code: 127,
        stderr: format!(
            "no dump tool ({}) in the database container",
            last_err.unwrap_or_default()
        ),
    })
}

/// The gzip file a dump is streamed into, written on a blocking thread: chunks go in through
/// `tx`; `finish` waits for the file to be whole on disk.
struct GzFile {
    tx: std::sync::mpsc::SyncSender<bytes::Bytes>,
    writer: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl GzFile {
    fn create(tmp: &Path) -> Result<GzFile, BackupError> {
        let (file, sync) = gzip::create_private(tmp).map_err(|e| BackupError::io(tmp, e))?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(64);
        let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut gz = flate2::write::GzEncoder::new(
                std::io::BufWriter::new(file),
                flate2::Compression::new(6),
            );
            for chunk in rx {
                gz.write_all(&chunk)?;
            }
            gz.finish()?.flush()?;
            sync.sync_all()
        });
        Ok(GzFile { tx, writer })
    }

    /// A sink that counts what passes (telling `read`) and hands it to the writer.
    fn sink<'a>(
        tx: std::sync::mpsc::SyncSender<bytes::Bytes>,
        read: &'a (dyn Fn(u64) + Sync),
    ) -> impl FnMut(bytes::Bytes) -> std::io::Result<()> + Send + 'a {
        let mut so_far = 0u64;
        move |chunk: bytes::Bytes| {
            so_far += chunk.len() as u64;
            read(so_far);
            tx.send(chunk).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the dump file's writer stopped",
                )
            })
        }
    }

    async fn finish(
        writer: tokio::task::JoinHandle<std::io::Result<()>>,
        tmp: &Path,
    ) -> Result<(), BackupError> {
        let written = writer
            .await
            .map_err(|e| BackupError::io(tmp, std::io::Error::other(e.to_string())))?;
        written.map_err(|e| BackupError::io(tmp, e))
    }
}

async fn dump_once(
    engine: &Engine,
    container: &str,
    cmd: &[&str],
    env: &[String],
    tmp: &Path,
    read: &(dyn Fn(u64) + Sync),
) -> Result<u64, BackupError> {
    let GzFile { tx, writer } = GzFile::create(tmp)?;
    let mut sink = GzFile::sink(tx, read);
    let outcome = exec::exec_streaming(engine, container, cmd, env, &mut sink).await;
    drop(sink);
    let written = GzFile::finish(writer, tmp).await;
    // A full disk stopped the writer, and so the exec's reading: that is what happened.
    if let Err(e @ BackupError::DiskFull { .. }) = written {
        return Err(e);
    }
    let outcome = outcome.map_err(BackupError::Docker)?;
    written?;
    if outcome.exit_code != 0 {
        return Err(BackupError::Dump {
            exit_code: outcome.exit_code,
            stderr: match outcome.stderr.trim() {
                "" => "it wrote nothing on stderr".to_string(),
                said => said.to_string(),
            },
        });
    }
    Ok(outcome.stdout_bytes)
}

/// SurrealDB's HTTP API on the container's address (the official image has nothing to exec).
pub async fn surreal_target(
    engine: &Engine,
    container: &str,
    db: &Database,
) -> Result<crate::db::surreal::SurrealTarget, String> {
    match crate::docker::containers::address_of(engine, container).await {
        Ok(Some(ip)) => Ok(db.surreal_at(&ip)),
        Ok(None) => Err(format!(
            "the SurrealDB container {container} has no network address that hoist can reach (is it running?)"
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// SurrealDB's export (`GET /export`), streamed into `dest` as any dump is, then checked.
async fn export_surreal(
    engine: &Engine,
    db: &Database,
    container: &str,
    dest: &Path,
    read: &(dyn Fn(u64) + Sync),
) -> Result<u64, BackupError> {
    let target = surreal_target(engine, container, db)
        .await
        .map_err(BackupError::Export)?;
    let tmp = gzip::temp_name(dest);
    let _ = std::fs::remove_file(&tmp);
    let GzFile { tx, writer } = GzFile::create(&tmp)?;
    let mut sink = GzFile::sink(tx, read);
    let exported = target.export(&mut sink).await;
    drop(sink);
    let written = GzFile::finish(writer, &tmp).await;
    let outcome = match (written, exported) {
        (Err(e @ BackupError::DiskFull { .. }), _) => Err(e),
        (_, Err(e)) => Err(BackupError::Export(e)),
        (Err(e), Ok(_)) => Err(e),
        (Ok(()), Ok(bytes)) => verify(&tmp, db.kind).map(|()| bytes),
    };
    match outcome {
        Ok(bytes) => {
            std::fs::rename(&tmp, dest).map_err(|e| BackupError::io(dest, e))?;
            Ok(bytes)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The dump gunzips whole and ends with its tool's completion line; a command's dump, whose
/// format hoist does not know, gunzips whole and is not empty.
pub fn verify(path: &Path, kind: DbKind) -> Result<(), BackupError> {
    let file = std::fs::File::open(path).map_err(|e| BackupError::io(path, e))?;
    if kind.without_sql() {
        let mut gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
        let bytes = std::io::copy(&mut gz, &mut std::io::sink())
            .map_err(|e| BackupError::Verify(format!("{} does not gunzip: {e}", path.display())))?;
        if bytes == 0 {
            return Err(BackupError::Verify(if kind == DbKind::Surrealdb {
                format!(
                    "{} is empty: SurrealDB's export sent nothing",
                    path.display()
                )
            } else {
                format!(
                    "{} is empty: the dump command wrote nothing to its standard output (it may write to a file instead; it must write the dump to stdout)",
                    path.display()
                )
            }));
        }
        return Ok(());
    }
    let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(file));
    // The marker is among the last lines (pg_dump frames it with `--` lines).
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for line in reader.lines() {
        let line = line
            .map_err(|e| BackupError::Verify(format!("{} does not gunzip: {e}", path.display())))?;
        if !line.trim().is_empty() {
            if tail.len() == 3 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
    let marker = completion_marker(kind);
    if !tail.iter().any(|l| l.starts_with(marker)) {
        return Err(BackupError::Verify(format!(
            "{} is incomplete: it does not end with {marker:?}",
            path.display()
        )));
    }
    Ok(())
}
