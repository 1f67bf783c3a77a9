//! SQLite databases kept in the app's data: an app with no database service (Vaultwarden,
//! Uptime Kuma, Navidrome) keeps its records in a file that nothing in the compose files
//! names. Found by the file's own header, in the host directory behind each data mount.
use std::io::Read;
use std::path::{Path, PathBuf};

use super::facts::Running;
use crate::stack::compose::MountKind;
use crate::stack::detect::DataMount;

/// Every SQLite file hoist saw: the service that mounts it and its path inside the container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SqliteFile {
    pub service: String,
    pub path: String,
    /// Its schema's fingerprint (tables, columns and types), when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// How many files' schemas are read: a media library of SQLite files must not make `status`
/// slow (the rest are still named).
const MAX_READ: usize = 32;

/// The schema fingerprint of the SQLite file at `host` (read-only), when it can be read.
async fn fingerprint(host: PathBuf) -> Option<String> {
    let target = crate::db::DbTarget {
        kind: crate::db::DbKind::Sqlite,
        host: String::new(),
        port: 0,
        user: String::new(),
        password: crate::secret::Secret::new(""),
        database: String::new(),
        sqlite_path: Some(host),
    };
    crate::db::probe(&target, std::time::Duration::from_secs(5))
        .await
        .ok()
        .map(|p| p.fingerprint)
}

/// How far a search goes: a media library must not make `status` slow.
const MAX_DEPTH: usize = 4;
const MAX_ENTRIES: usize = 5_000;

/// The files under `root` that start with SQLite's header, relative to `root`.
pub fn find(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut todo = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return out;
            }
            let Ok(kind) = e.file_type() else { continue };
            let path = e.path();
            if kind.is_dir() && depth < MAX_DEPTH {
                todo.push((path, depth + 1));
            } else if kind.is_file() && is_sqlite(&path) {
                out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn is_sqlite(path: &Path) -> bool {
    let mut header = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| &header == b"SQLite format 3\0")
}

/// The SQLite files in the data mounts of the app, through the host directory of each (a bind
/// mount's path; a named volume's directory as the engine reports it).
pub async fn in_data(data: &[DataMount], running: &Running) -> Vec<SqliteFile> {
    let mut roots: Vec<(String, String, PathBuf)> = Vec::new();
    for m in data {
        let host = match m.kind {
            MountKind::Bind => Some(PathBuf::from(&m.source)),
            _ => m
                .services
                .iter()
                .flat_map(|s| running.of_service(s))
                .flat_map(|c| c.mounts.iter())
                .find(|mm| mm.destination == m.target)
                .map(|mm| PathBuf::from(&mm.source)),
        };
        if let (Some(host), Some(service)) = (host, m.services.first()) {
            roots.push((service.clone(), m.target.clone(), host));
        }
    }
    let found: Vec<(SqliteFile, PathBuf)> = tokio::task::spawn_blocking(move || {
        roots
            .into_iter()
            .flat_map(|(service, target, host)| {
                find(&host).into_iter().map(move |rel| {
                    let file = SqliteFile {
                        service: service.clone(),
                        path: format!("{}/{}", target.trim_end_matches('/'), rel.display()),
                        fingerprint: None,
                    };
                    (file, host.join(rel))
                })
            })
            .collect()
    })
    .await
    .unwrap_or_default();
    // In path order, so that the same files are read each time (a rollback compares them).
    let mut found = found;
    found.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    let mut out = Vec::new();
    for (i, (mut file, host)) in found.into_iter().enumerate() {
        if i < MAX_READ {
            file.fingerprint = fingerprint(host).await;
        }
        out.push(file);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_files_are_known_by_their_header() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        let mut db = b"SQLite format 3\0".to_vec();
        db.extend([0u8; 100]);
        std::fs::write(dir.path().join("a/b/db.sqlite3"), &db).unwrap();
        std::fs::write(dir.path().join("a/notes.txt"), "SQLite format 2").unwrap();
        std::fs::write(dir.path().join("empty"), "").unwrap();
        assert_eq!(find(dir.path()), [PathBuf::from("a/b/db.sqlite3")]);
    }
}
