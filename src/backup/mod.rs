//! A backup: the database dump, an archive per data mount, copies of `.env` and the compose
//! file, a `manifest.json` (versions, image digests, schema revision, row counts, sha256 and
//! size of every file) and a `RESTORE.md` with the manual steps in standard tools.
//!
//! Everything is written into a hidden `.NAME.partial` directory (0700, files 0600: dumps hold
//! secrets), each file under a temporary name, verified, then the directory is renamed: a
//! backup directory that exists is complete. A failure removes the partial directory, and the
//! partial directory of a hoist that was killed is removed by the next backup (see
//! `remove_stale_partials`).
pub mod archive;
mod beside;
pub mod config_snapshot;
pub mod dump;
pub mod gzip;
pub mod hold;
mod list;
mod restore_doc;

pub use beside::BesideSource;
pub use list::{BackupEntry, list_backups, restore_version};

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::db::DbProbe;
use crate::docker::{ContainerInfo, DockerError, Engine};
use crate::stack::detect::{DataMount, Database};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{0}")]
    Docker(#[from] DockerError),
    #[error("the database dump failed (exit code {exit_code}): {stderr}")]
    Dump { exit_code: i64, stderr: String },
    /// A database hoist exports itself (SurrealDB over its HTTP API) did not export.
    #[error("the database export failed: {0}")]
    Export(String),
    #[error("the backup failed its check: {0}")]
    Verify(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Precondition(String),
    /// The file system ran out of space (or quota) while the backup was written.
    #[error("{}{}", disk_full_sentence(path, dir.as_deref(), *needed, *free), also.as_deref().map(|a| format!(". Also: {a}")).unwrap_or_default())]
    DiskFull {
        /// What else went wrong meanwhile (a service stopped for the copy that would not start).
        also: Option<String>,
        /// The file being written when it happened.
        path: String,
        /// The backup directory (filled in by `take`).
        dir: Option<String>,
        /// What the whole backup needs, by the pre-flight estimate.
        needed: Option<u64>,
        /// Free space once the partial backup is removed.
        free: Option<u64>,
    },
}

fn disk_full_sentence(
    path: &str,
    dir: Option<&str>,
    needed: Option<u64>,
    free: Option<u64>,
) -> String {
    let hb = crate::units::human_bytes;
    let place = dir.unwrap_or(path);
    // The file's own name: the partial directory it was in is gone.
    let file = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".tmp").to_string())
        .unwrap_or_else(|| path.to_string());
    let figures = match (needed, free) {
        (Some(n), Some(f)) => format!(
            ": the backup needs about {}, and {} is free there once the partial backup is removed",
            hb(n),
            hb(f)
        ),
        (None, Some(f)) => format!(
            "; {} is free there once the partial backup is removed",
            hb(f)
        ),
        (Some(n), None) => format!(": the backup needs about {}", hb(n)),
        (None, None) => String::new(),
    };
    format!(
        "the disk holding {place} is full (writing {file} failed){figures}. The partial backup was removed. Free some space (old backups, `docker image prune`) or choose another place with --backup-dir DIR"
    )
}

/// Whether `e`, or an error it wraps, says the disk (or the user's quota) is full: the
/// compressor and tar wrap the OS error of the file they write.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(ENOSPC | EDQUOT))
                || matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                )
            {
                return true;
            }
            // An io::Error built from another error hides it behind get_ref, not source.
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        // The compressor's error is transparent: its source skips the io::Error it holds.
        if let Some(gzp::GzpError::Io(inner)) = err.downcast_ref::<gzp::GzpError>() {
            current = Some(inner);
            continue;
        }
        current = err.source();
    }
    false
}

impl BackupError {
    pub fn io(path: &Path, e: std::io::Error) -> BackupError {
        if is_disk_full(&e) {
            return BackupError::DiskFull {
                also: None,
                path: path.display().to_string(),
                dir: None,
                needed: None,
                free: None,
            };
        }
        BackupError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}

/// What to back up, as the caller found it (files, running containers, a database probe).
pub struct Source<'a> {
    pub project: &'a str,
    pub project_dir: &'a Path,
    pub compose_file: &'a Path,
    /// Every compose file the project reads (with included and extended ones); the first is
    /// `compose_file`. A literal tag is pinned in one of them, so all are kept.
    pub compose_files: Vec<PathBuf>,
    pub env_file: &'a Path,
    /// The services' other `env_file:` files (they may hold the database's settings).
    pub env_files: Vec<PathBuf>,
    /// hoist.yaml, when the project has one.
    pub settings_file: Option<&'a Path>,
    /// The smoke checks as the app answered them when the backup was taken: a rollback to
    /// this backup holds the app to these, not to what the files alone would suggest.
    pub smoke: Vec<crate::stack::detect::Smoke>,
    pub version_variable: &'a str,
    /// The services an upgrade recreates (the ones to stop for a restore).
    pub upgraded: &'a [String],
    pub pinned: Option<&'a str>,
    pub running_version: Option<&'a str>,
    /// The database, its running container, and what it held just before the dump.
    pub database: Option<(&'a Database, &'a ContainerInfo, &'a DbProbe)>,
    /// Each data mount with a container (of a service that mounts it) to read it through.
    pub data: Vec<(&'a DataMount, &'a ContainerInfo)>,
    /// SQLite files found in the app's data (path in the container, schema fingerprint): a
    /// rollback compares them with the files then, to know whether the schema changed.
    pub sqlite_files: Vec<ManifestSqlite>,
    /// App services stopped while the data is archived: they keep SQLite files in it, which
    /// are not a consistent copy while they are written.
    pub stop_for_copy: Vec<String>,
    /// The Swarm stack the app runs as (None: a Compose project): its tasks are not stopped
    /// for a copy, and RESTORE.md says Swarm's commands.
    pub swarm_stack: Option<&'a str>,
    /// Services beside the app that keep data, each archived (or left out, as it says).
    pub beside: Vec<BesideSource<'a>>,
    /// Where a stop for the copy is recorded before it happens.
    pub record: Option<hold::Recorder<'a>>,
    /// How long a container stopped for the copy may take to stop.
    pub stop_timeout: std::time::Duration,
    /// Every container of the stack, for the image digests.
    pub containers: &'a [ContainerInfo],
    /// The backup's size by the pre-flight estimate, computed only when a full disk must be
    /// explained (it walks the data directories).
    pub estimate: Option<Box<dyn Fn() -> Option<u64> + Send + Sync + 'a>>,
}

impl ManifestFile {
    /// A file of the backup with its (sha256, size), nothing else said about it.
    fn new(name: &str, kind: &str, (sha256, size_bytes): (String, u64)) -> ManifestFile {
        ManifestFile {
            name: name.to_string(),
            kind: kind.to_string(),
            size_bytes,
            sha256,
            source: None,
            target: None,
            files: None,
            content_bytes: None,
            service: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestFile {
    pub name: String,
    /// dump, archive, env, compose.
    pub kind: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// For an archive: the mount it holds (host path or volume) and where it is mounted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_bytes: Option<u64>,
    /// For the archive of a service beside the app (kind `beside`): that service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// An SQLite file in the app's data, as the backup found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ManifestSqlite {
    pub path: String,
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestImage {
    pub service: String,
    pub image: String,
    pub digest: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestDatabase {
    pub service: String,
    pub kind: String,
    pub name: String,
    pub user: String,
    pub migrations: Option<String>,
    pub revision: Option<String>,
    pub fingerprint: String,
    pub tables: Vec<crate::db::TableRows>,
    /// Every table's write tally when the backup was taken: what a restore takes away is
    /// counted from it. Absent when the database would not say (`writes_unread` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes: Option<crate::db::Writes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes_unread: Option<String>,
    /// Every column of the user tables: a rollback tells an additive schema change from one
    /// the previous version cannot live with.
    pub columns: Vec<crate::db::SchemaColumn>,
    /// `kind: command`: the restore command as the settings gave it then, as one shell line
    /// with secrets masked (RESTORE.md shows it; the manifest is no place for a password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_command: Option<String>,
    /// SurrealDB: the namespace that holds the database, and the port the server listens on
    /// (RESTORE.md's commands need both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub created_at: String,
    pub hoist_version: String,
    pub project: String,
    pub project_dir: String,
    pub version_variable: String,
    pub services: Vec<String>,
    pub pinned: Option<String>,
    pub running_version: Option<String>,
    pub images: Vec<ManifestImage>,
    pub database: Option<ManifestDatabase>,
    pub files: Vec<ManifestFile>,
    /// The smoke checks as the app answered them then (absent in older backups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smoke: Vec<crate::stack::detect::Smoke>,
    /// SQLite files in the app's data (absent when there were none, and in older backups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sqlite_files: Vec<ManifestSqlite>,
    /// The Docker Swarm stack the app ran as (absent for a Compose project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_stack: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Backup {
    pub id: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub manifest_sha256: String,
    pub total_bytes: u64,
    /// Partial backups left by a hoist that was killed, removed before this one was taken.
    pub removed_partials: Vec<PathBuf>,
}

/// Progress for a front end: which part, and how far.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Something the backup does that is not a file: a service stopped for the copy.
    Note(String),
    Started {
        part: String,
    },
    /// Bytes read from Docker so far (the dump's text, the data's tar stream).
    Read {
        part: String,
        bytes: u64,
    },
    Finished {
        part: String,
        bytes: u64,
    },
}

/// The size of the newest other backup's dump `name` of `project`'s database in `service`,
/// beside the backup being written in `dir`, and where it is.
fn last_dump_size(
    dir: &Path,
    (project, service): (&str, &str),
    name: &str,
) -> Option<(u64, PathBuf)> {
    let root = dir.parent()?;
    let mut found: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if path == dir || entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(text) = std::fs::read(path.join("manifest.json")) else {
            continue;
        };
        let Ok(m) = serde_json::from_slice::<serde_json::Value>(&text) else {
            continue;
        };
        if m["project"] != project || m["database"]["service"] != service {
            continue;
        }
        let Ok(meta) = std::fs::metadata(path.join(name)) else {
            continue;
        };
        let when = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        found.push((when, meta.len(), path));
    }
    found.sort();
    found.pop().map(|(_, size, path)| (size, path))
}

/// A name for a file from a mount: `data-specivo-data` for `./specivo-data`, `data-` and the
/// volume's name; `prefix` is `data` or `beside-<service>`.
fn archive_name(prefix: &str, source: &str, taken: &[String]) -> String {
    let base = Path::new(source)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| source.to_string());
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("{prefix}-{clean}.tar.gz");
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{prefix}-{clean}-{n}.tar.gz");
        n += 1;
    }
    name
}

/// Takes the backup into a new directory under `root`.
pub async fn take(
    engine: &Engine,
    src: &Source<'_>,
    root: &Path,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Backup, BackupError> {
    crate::fsutil::create_private_dir(root).map_err(|e| BackupError::io(root, e))?;
    let removed_partials = remove_stale_partials(root, src.project);
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    let version = src.running_version.or(src.pinned).unwrap_or("unknown");
    // Two backups within one second (a hoist killed just after one, run again at once) get a
    // number after the first's name rather than an error.
    let first = format!("{}-{stamp}-{version}", src.project);
    let free = |id: &str| !root.join(id).exists() && !root.join(format!(".{id}.partial")).exists();
    let Some(id) = std::iter::once(first.clone())
        .chain((2..100).map(|n| format!("{first}-{n}")))
        .find(|id| free(id))
    else {
        return Err(BackupError::Precondition(format!(
            "{} and 98 numbered after it already exist; wait a second and try again",
            root.join(&first).display()
        )));
    };
    let dir = root.join(&id);
    let partial = root.join(format!(".{id}.partial"));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&partial)
            .map_err(|e| BackupError::io(&partial, e))?;
    }
    // Held while the partial directory is written: the kernel drops it when this process
    // dies, even on kill -9, which is how the next backup knows a partial directory is stale.
    let _writing = lock_partial(&partial);
    let result = write_and_rename(engine, src, &id, root, &partial, &dir, progress).await;
    match result {
        Ok((manifest, manifest_sha256, total_bytes)) => Ok(Backup {
            id,
            dir,
            manifest,
            manifest_sha256,
            total_bytes,
            removed_partials,
        }),
        Err(e) => {
            // Nothing half-written may look like a backup.
            match std::fs::remove_dir_all(&partial) {
                Err(r) if r.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(partial = %partial.display(), "the partial backup could not be removed: {r}");
                }
                _ => {}
            }
            match e {
                BackupError::DiskFull { path, also, .. } => Err(BackupError::DiskFull {
                    also,
                    path,
                    dir: Some(root.display().to_string()),
                    needed: src.estimate.as_ref().and_then(|f| f()),
                    free: fs4::available_space(root).ok(),
                }),
                other => Err(other),
            }
        }
    }
}

/// Writes every file into `partial`, checks them, and renames it to `dir`: the manifest, its
/// sha256, and the total size.
async fn write_and_rename(
    engine: &Engine,
    src: &Source<'_>,
    id: &str,
    root: &Path,
    partial: &Path,
    dir: &Path,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Manifest, String, u64), BackupError> {
    let manifest = write_all(engine, src, id, partial, progress).await?;
    let (sha, _) = gzip::sha256_file(&partial.join("manifest.json"))
        .map_err(|e| BackupError::io(partial, e))?;
    std::fs::File::open(partial)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io(partial, e))?;
    std::fs::rename(partial, dir).map_err(|e| BackupError::io(dir, e))?;
    std::fs::File::open(root)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io(root, e))?;
    let total = manifest.files.iter().map(|f| f.size_bytes).sum();
    Ok((manifest, sha, total))
}

/// An exclusive `flock` on the partial directory, or None where the file system has no locks
/// (then a stale partial directory is left for the user rather than guessed at).
fn lock_partial(partial: &Path) -> Option<std::fs::File> {
    let dir = std::fs::File::open(partial).ok()?;
    dir.try_lock().ok()?;
    Some(dir)
}

/// Removes the `.PROJECT-*.partial` directories under `root` that no live hoist is writing (a
/// hoist killed mid-backup leaves one; its lock died with it), and says so in the log.
/// Returns what it removed.
pub fn remove_stale_partials(root: &Path, project: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return removed;
    };
    let prefix = format!(".{project}-");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(&prefix) && name.ends_with(".partial")) {
            continue;
        }
        let path = entry.path();
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        // Taken only when its writer is gone; held while removing it.
        let Some(_lock) = lock_partial(&path) else {
            continue;
        };
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::warn!(partial = %path.display(), "removed the partial backup left by a hoist that was stopped before it finished");
                removed.push(path);
            }
            Err(e) => {
                tracing::warn!(partial = %path.display(), "a stale partial backup could not be removed: {e}");
            }
        }
    }
    removed
}

/// The files copied as they are: the env file, the main compose file as `compose.yaml`, every
/// other compose file as `compose-N-<name>`, the services' env files as `env-N-<name>`; each
/// (from, name in the backup, kind).
fn file_copies(src: &Source<'_>) -> Vec<(PathBuf, String, &'static str)> {
    let mut copies: Vec<(PathBuf, String, &'static str)> = vec![
        (src.env_file.to_path_buf(), "env".into(), "env"),
        (
            src.compose_file.to_path_buf(),
            "compose.yaml".into(),
            "compose",
        ),
    ];
    for (i, f) in src
        .compose_files
        .iter()
        .filter(|f| f.as_path() != src.compose_file)
        .enumerate()
    {
        let base = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "compose.yaml".into());
        copies.push((f.clone(), format!("compose-{}-{base}", i + 2), "compose"));
    }
    for (i, f) in src.env_files.iter().enumerate() {
        let base = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "env".into());
        copies.push((f.clone(), format!("env-{}-{base}", i + 2), "env_file"));
    }
    if let Some(f) = src.settings_file {
        copies.push((f.to_path_buf(), "hoist.yaml".into(), "settings"));
    }
    copies
}

/// Copies each of `copies` into `dir` (private, synced) and returns their manifest entries.
fn copy_files(
    dir: &Path,
    copies: &[(PathBuf, String, &'static str)],
    file_entry: &dyn Fn(&str, &str) -> Result<ManifestFile, BackupError>,
) -> Result<Vec<ManifestFile>, BackupError> {
    let mut files = Vec::new();
    for (from, name, kind) in copies {
        let (from, name, kind) = (from.as_path(), name.as_str(), *kind);
        if !from.exists() {
            continue;
        }
        let to = dir.join(name);
        let (mut out, sync) = gzip::create_private(&to).map_err(|e| BackupError::io(&to, e))?;
        let mut input = std::fs::File::open(from).map_err(|e| BackupError::io(from, e))?;
        std::io::copy(&mut input, &mut out).map_err(|e| BackupError::io(&to, e))?;
        sync.sync_all().map_err(|e| BackupError::io(&to, e))?;
        let mut entry = file_entry(name, kind)?;
        if kind != "env" {
            entry.source = Some(from.display().to_string());
        }
        files.push(entry);
    }
    Ok(files)
}

async fn write_all(
    engine: &Engine,
    src: &Source<'_>,
    id: &str,
    dir: &Path,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Manifest, BackupError> {
    let mut files: Vec<ManifestFile> = Vec::new();
    let file_entry = |name: &str, kind: &str| -> Result<ManifestFile, BackupError> {
        let path = dir.join(name);
        let digest = gzip::sha256_file(&path).map_err(|e| BackupError::io(&path, e))?;
        Ok(ManifestFile::new(name, kind, digest))
    };

    let mut database = None;
    if let Some((db, container, probe)) = src.database {
        if db.kind != crate::db::DbKind::Sqlite {
            // A command's dump is in a format hoist does not know.
            let name = match db.kind {
                crate::db::DbKind::Command => "database.dump.gz",
                crate::db::DbKind::Surrealdb => "database.surql.gz",
                _ => "database.sql.gz",
            };
            progress(Progress::Started { part: name.into() });
            let read = |bytes| {
                progress(Progress::Read {
                    part: name.into(),
                    bytes,
                })
            };
            let bytes = dump::dump(engine, db, &container.id, &dir.join(name), &read).await?;
            progress(Progress::Finished {
                part: name.into(),
                bytes,
            });
            // A command's dump cannot be read by hoist: one far smaller than the last backup's
            // is the one sign left that the command reads the wrong database.
            if db.kind.without_sql()
                && let Some((before, at)) = last_dump_size(dir, (src.project, &db.service), name)
                && bytes.saturating_mul(4) < before
            {
                progress(Progress::Note(if db.kind == crate::db::DbKind::Surrealdb {
                    format!(
                        "SurrealDB's export is {}, under a quarter of the last backup's ({}, in {}): make sure hoist reads the database the app uses (namespace {}, database {}; x-hoist.database.namespace and name) before you rely on this backup",
                        crate::units::human_bytes(bytes),
                        crate::units::human_bytes(before),
                        at.display(),
                        db.namespace,
                        db.name
                    )
                } else {
                    format!(
                        "the dump is {}, under a quarter of the last backup's ({}, in {}): make sure the dump command reads the whole database before you rely on this backup (hoist cannot read its format; a rollback would load it)",
                        crate::units::human_bytes(bytes),
                        crate::units::human_bytes(before),
                        at.display()
                    )
                }));
            }
            files.push(file_entry(name, "dump")?);
        }
        database = Some(ManifestDatabase {
            service: db.service.clone(),
            kind: db.kind.name().to_string(),
            name: db.name.clone(),
            user: db.user.clone(),
            migrations: probe
                .migrations
                .as_ref()
                .map(|m| m.framework.name().to_string()),
            revision: probe.migrations.as_ref().map(|m| m.revision.clone()),
            fingerprint: probe.fingerprint.clone(),
            tables: probe.tables.clone(),
            writes: probe.writes.clone().ok(),
            writes_unread: probe.writes.clone().err(),
            columns: probe.columns.clone(),
            restore_command: db
                .commands
                .as_ref()
                .map(|c| crate::redact::command_line(&c.restore)),
            namespace: (db.kind == crate::db::DbKind::Surrealdb).then(|| db.namespace.clone()),
            port: (db.kind == crate::db::DbKind::Surrealdb).then_some(db.port),
        });
    }

    let mut taken: Vec<String> = Vec::new();
    files.extend(app_data(engine, src, dir, &mut taken, progress).await?);
    files.extend(beside::copy_all(engine, src, dir, &mut taken, progress).await?);

    files.extend(copy_files(dir, &file_copies(src), &file_entry)?);

    // The configuration the app ran with: said as a diff after an upgrade, kept whole here.
    let upgraded: Vec<ContainerInfo> = src
        .containers
        .iter()
        .filter(|c| src.upgraded.contains(&c.service))
        .cloned()
        .collect();
    let snapshot = config_snapshot::take(engine, &upgraded).await;
    if !snapshot.is_empty() {
        let bytes =
            serde_json::to_vec_pretty(&snapshot).map_err(|e| BackupError::Verify(e.to_string()))?;
        write_private(dir, config_snapshot::FILE, &bytes)?;
        files.push(file_entry(config_snapshot::FILE, "config")?);
    }

    let manifest = Manifest {
        format: 1,
        id: id.to_string(),
        created_at: crate::journal::now(),
        hoist_version: env!("CARGO_PKG_VERSION").to_string(),
        project: src.project.to_string(),
        project_dir: src.project_dir.display().to_string(),
        version_variable: src.version_variable.to_string(),
        services: src.upgraded.to_vec(),
        pinned: src.pinned.map(str::to_string),
        running_version: src.running_version.map(str::to_string),
        images: src
            .containers
            .iter()
            .map(|c| ManifestImage {
                service: c.service.clone(),
                image: c.image.clone(),
                digest: c.digest.clone(),
                version: c.version_label.clone(),
            })
            .collect(),
        database,
        files,
        smoke: src.smoke.clone(),
        sqlite_files: src.sqlite_files.clone(),
        swarm_stack: src.swarm_stack.map(str::to_string),
    };
    write_private(
        dir,
        "manifest.json",
        &serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Verify(e.to_string()))?,
    )?;
    write_private(dir, "RESTORE.md", restore_doc::render(&manifest).as_bytes())?;
    Ok(manifest)
}

/// Archives one mount through `container` into `dir` as `name` (a file of `kind`), with its
/// manifest entry.
async fn archive_mount(
    engine: &Engine,
    container: &str,
    (source, target): (&str, &str),
    (dir, name, kind): (&Path, &str, &str),
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ManifestFile, BackupError> {
    progress(Progress::Started { part: name.into() });
    let read = |bytes| {
        progress(Progress::Read {
            part: name.into(),
            bytes,
        })
    };
    let (stats, digest) =
        archive::archive(engine, container, target, &dir.join(name), &read).await?;
    progress(Progress::Finished {
        part: name.into(),
        bytes: stats.bytes,
    });
    let mut entry = ManifestFile::new(name, kind, digest);
    entry.source = Some(source.to_string());
    entry.target = Some(target.to_string());
    entry.files = Some(stats.files);
    entry.content_bytes = Some(stats.bytes);
    Ok(entry)
}

/// The app's data mounts, archived; with the services in `stop_for_copy` stopped meanwhile
/// (and started again whatever the outcome).
async fn app_data(
    engine: &Engine,
    src: &Source<'_>,
    dir: &Path,
    taken: &mut Vec<String>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<ManifestFile>, BackupError> {
    let held = if src.stop_for_copy.is_empty() || src.data.is_empty() {
        None
    } else {
        let containers: Vec<&ContainerInfo> = src
            .containers
            .iter()
            .filter(|c| src.stop_for_copy.contains(&c.service))
            .collect();
        hold::not_in_swarm(src.swarm_stack, &src.stop_for_copy)?;
        progress(Progress::Note(format!(
            "stopping {} while the data is copied (SQLite files are kept there)",
            src.stop_for_copy.join(", ")
        )));
        Some(
            hold::stop_for_copy(
                engine,
                src.record,
                &src.stop_for_copy,
                &containers,
                src.stop_timeout,
            )
            .await?,
        )
    };
    let copies = src
        .data
        .iter()
        .map(|(mount, container)| {
            let name = archive_name("data", &mount.source, taken);
            taken.push(name.clone());
            MountCopy {
                container: &container.id,
                source: &mount.source,
                target: &mount.target,
                name,
                kind: "archive",
                service: None,
            }
        })
        .collect();
    let held = held.map(|h| (h, src.stop_for_copy.join(", ")));
    archive_then_start(engine, src, copies, held, dir, progress).await
}

/// One mount to archive: through which container, from where, into which file.
struct MountCopy<'a> {
    container: &'a str,
    source: &'a str,
    target: &'a str,
    name: String,
    kind: &'static str,
    /// For a service beside the app: that service (said in the manifest).
    service: Option<&'a str>,
}

/// Archives each of `copies` (stopping at the first failure), then starts again what `held`
/// stopped (named `who`), whatever the copies' outcome.
async fn archive_then_start(
    engine: &Engine,
    src: &Source<'_>,
    copies: Vec<MountCopy<'_>>,
    held: Option<(hold::Held, String)>,
    dir: &Path,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<ManifestFile>, BackupError> {
    let mut files = Vec::new();
    let mut result = Ok(());
    for c in copies {
        let at = (c.source, c.target);
        let into = (dir, c.name.as_str(), c.kind);
        match archive_mount(engine, c.container, at, into, progress).await {
            Ok(mut entry) => {
                entry.service = c.service.map(str::to_string);
                files.push(entry);
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if let Some((held, who)) = held {
        if let Some(said) = held.killed_words() {
            progress(Progress::Note(said));
        }
        let again = hold::start_again(engine, src.record, held).await;
        if again.is_ok() {
            progress(Progress::Note(format!("{who} started again")));
        }
        // A failed copy is what the user hears first; a failed start is said with it.
        result = joined(result, again);
    }
    result.map(|()| files)
}

/// A copy's outcome and the start after it: a failed copy is what the user hears first, and a
/// failed start is said with it (a full disk keeps its own sentence, the start's added).
fn joined(
    copy: Result<(), BackupError>,
    again: Result<(), BackupError>,
) -> Result<(), BackupError> {
    match (copy, again) {
        (
            Err(BackupError::DiskFull {
                path,
                dir,
                needed,
                free,
                ..
            }),
            Err(b),
        ) => Err(BackupError::DiskFull {
            also: Some(b.to_string()),
            path,
            dir,
            needed,
            free,
        }),
        (Err(a), Err(b)) => Err(BackupError::Precondition(format!("{a}; {b}"))),
        (Err(a), Ok(())) => Err(a),
        (Ok(()), again) => again,
    }
}

fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    let path = dir.join(name);
    let tmp = gzip::temp_name(&path);
    let (mut file, sync) = gzip::create_private(&tmp).map_err(|e| BackupError::io(&tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| BackupError::io(&tmp, e))?;
    sync.sync_all().map_err(|e| BackupError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| BackupError::io(&path, e))
}

/// A file name in a backup's manifest: one component, in the backup's own directory.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// Checks a finished backup against its manifest: every file present, with its size and
/// sha256. Returns the manifest as JSON.
pub fn check(dir: &Path) -> Result<serde_json::Value, BackupError> {
    let manifest_path = dir.join("manifest.json");
    let text =
        std::fs::read_to_string(&manifest_path).map_err(|e| BackupError::io(&manifest_path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        BackupError::Verify(format!(
            "{} is not valid JSON: {e}",
            manifest_path.display()
        ))
    })?;
    let Some(files) = value["files"].as_array() else {
        return Err(BackupError::Verify(format!(
            "{} lists no files",
            manifest_path.display()
        )));
    };
    for f in files {
        let name = f["name"].as_str().unwrap_or_default();
        // A backup's files are in its directory: a manifest that names others is not hoist's.
        if !plain_name(name) {
            return Err(BackupError::Verify(format!(
                "{} lists a file without a plain name ({name:?}): it is not a manifest hoist wrote",
                manifest_path.display()
            )));
        }
        let path = dir.join(name);
        let (sha, size) = gzip::sha256_file(&path).map_err(|e| BackupError::io(&path, e))?;
        if Some(sha.as_str()) != f["sha256"].as_str() || Some(size) != f["size_bytes"].as_u64() {
            return Err(BackupError::Verify(format!(
                "{} does not match its sha256 or size in manifest.json: the file was changed or damaged",
                path.display()
            )));
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_recognised_through_the_writers_that_wrap_it() {
        let enospc = || std::io::Error::from_raw_os_error(28);
        assert!(is_disk_full(&enospc()));
        assert!(is_disk_full(&std::io::Error::from_raw_os_error(122)));
        // How the parallel compressor and tar hand it on.
        assert!(is_disk_full(&std::io::Error::other(gzp::GzpError::Io(
            enospc()
        ))));
        assert!(is_disk_full(&std::io::Error::other(std::io::Error::other(
            enospc()
        ))));
        // tar's way: the kind kept, the OS error turned into words.
        assert!(is_disk_full(&std::io::Error::new(
            enospc().kind(),
            format!("failed to write entry: {}", enospc())
        )));
        assert!(!is_disk_full(&std::io::Error::from_raw_os_error(5)));
        assert!(!is_disk_full(&std::io::Error::other(
            "the archive's writer stopped"
        )));
    }

    #[test]
    fn the_disk_full_sentence_says_where_what_and_what_to_do() {
        let e = BackupError::io(
            Path::new("/srv/b/.app-1.partial/data-x.tar.gz.tmp"),
            std::io::Error::from_raw_os_error(28),
        );
        let BackupError::DiskFull { path, .. } = e else {
            panic!("not a full disk: {e}");
        };
        let full = BackupError::DiskFull {
            also: None,
            path,
            dir: Some("/srv/b".into()),
            needed: Some(29_000_000),
            free: Some(1_000_000),
        };
        assert_eq!(
            full.to_string(),
            "the disk holding /srv/b is full (writing data-x.tar.gz failed): the backup needs about 29 MB, and 1.0 MB is free there once the partial backup is removed. The partial backup was removed. Free some space (old backups, `docker image prune`) or choose another place with --backup-dir DIR"
        );
    }

    #[test]
    fn only_partial_dirs_whose_writer_is_gone_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let stale = root.path().join(".app-20250101-000000-1.0.partial");
        let live = root.path().join(".app-20250101-000001-1.0.partial");
        let other = root.path().join(".other-20250101-000000-1.0.partial");
        let done = root.path().join("app-20250101-000000-1.0");
        for d in [&stale, &live, &other, &done] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("database.sql.gz.tmp"), "x").unwrap();
        }
        // A live writer holds its lock (flock conflicts between two opens, even in one process).
        let _writer = lock_partial(&live).unwrap();
        assert_eq!(
            remove_stale_partials(root.path(), "app"),
            vec![stale.clone()]
        );
        assert!(!stale.exists() && live.exists() && other.exists() && done.exists());
    }
}
