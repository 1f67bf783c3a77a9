//! The backups in a backup directory, for a person choosing one to restore: each directory with
//! a `manifest.json`, newest first, with its version, date, size, project, whether hoist's
//! journal knows it, and a cheap check (the manifest reads, every file is there with its size).
//! The full sha256 check is the restore's: reading every archive to list them would take minutes.
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::journal::BackupRecord;

/// One backup directory, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupEntry {
    /// The backup's directory: what `hoist restore DIR` takes.
    pub dir: PathBuf,
    /// Its name (the backup's id).
    pub id: String,
    /// The project it was taken of.
    pub project: Option<String>,
    /// The version pinned when it was taken: the version a restore goes back to.
    pub version: Option<String>,
    /// When it was taken (RFC 3339, UTC): the manifest's, else the directory's modification time.
    pub taken_at: Option<String>,
    /// The size of its files.
    pub total_bytes: u64,
    /// The database's schema revision then, when it had one.
    pub schema_revision: Option<String>,
    /// Whether it holds a database dump (a backup of a stack with no database, or an SQLite
    /// one, holds none: its data archives are the whole backup).
    pub has_dump: bool,
    /// Whether hoist's journal records it (one taken before the journal existed, by another
    /// state dir, or copied here from elsewhere is not; its manifest alone then vouches for it).
    pub known: bool,
    /// The manifest reads and every file it lists is there with its size (and, when the journal
    /// knows the backup, the manifest is the one it recorded).
    pub verified: bool,
    /// Why it is not verified, in words.
    pub problem: Option<String>,
}

/// The version a restore of a backup with this manifest goes back to: the version pinned when
/// it was taken (else, for a stack whose pin hoist could not read then, the version that ran).
pub fn restore_version(manifest: &Value) -> Option<String> {
    ["pinned", "running_version"]
        .iter()
        .find_map(|k| manifest[*k].as_str().filter(|v| !v.is_empty()))
        .map(str::to_string)
}

/// Every backup under `backup_root` (each subdirectory with a `manifest.json`), and every backup
/// in `known` (the journal's, for this project) kept elsewhere or gone since, newest first.
/// Err: `backup_root` exists and cannot be read. A backup root that does not exist yet holds
/// no backups.
pub fn list_backups(
    backup_root: &Path,
    known: &[BackupRecord],
) -> Result<Vec<BackupEntry>, String> {
    let mut entries = Vec::new();
    let mut found: Vec<PathBuf> = Vec::new();
    match std::fs::read_dir(backup_root) {
        Ok(dirs) => {
            for d in dirs {
                let d = d.map_err(|e| unreadable_root(backup_root, &e))?;
                let path = d.path();
                // Hidden: a backup being written (`.NAME.partial`), not yet a backup.
                if d.file_name().to_string_lossy().starts_with('.') || !path.is_dir() {
                    continue;
                }
                match path.join("manifest.json").try_exists() {
                    Ok(false) => continue,
                    Ok(true) => {}
                    // A directory hoist cannot look into may well be a backup: said, not skipped.
                    Err(e) => {
                        entries.push(unreadable(
                            &path,
                            known,
                            format!("{} cannot be read: {e}", path.display()),
                        ));
                        found.push(path);
                        continue;
                    }
                }
                entries.push(entry(&path, known));
                found.push(path);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(unreadable_root(backup_root, &e)),
    }
    // The journal's backups kept elsewhere (another --backup-dir then), or removed since.
    for record in known {
        let path = PathBuf::from(&record.path);
        if found.iter().any(|f| same_dir(f, &path)) {
            continue;
        }
        if path.join("manifest.json").is_file() {
            entries.push(entry(&path, known));
        } else {
            let mut e = unreadable(
                &path,
                known,
                format!(
                    "hoist's journal records this backup at {}, and it is not there any more",
                    path.display()
                ),
            );
            e.taken_at = Some(record.created_at.clone());
            e.version = record.app_version.clone();
            e.schema_revision = record.schema_revision.clone();
            e.total_bytes = u64::try_from(record.size_bytes).unwrap_or(0);
            entries.push(e);
        }
        found.push(path);
    }
    // Newest first; a backup whose date is unknown last.
    entries.sort_by(|a, b| {
        b.taken_at
            .is_some()
            .cmp(&a.taken_at.is_some())
            .then_with(|| b.taken_at.cmp(&a.taken_at))
            .then_with(|| b.id.cmp(&a.id))
    });
    Ok(entries)
}

fn unreadable_root(root: &Path, e: &std::io::Error) -> String {
    format!(
        "the backup directory {} cannot be read: {e}; run hoist as a user who may read it (the backups are private to their owner)",
        root.display()
    )
}

/// The journal's record of the backup in `dir`: the same directory, or the same name (a
/// backup moved since keeps its name and its manifest).
fn record_of<'a>(dir: &Path, known: &'a [BackupRecord]) -> Option<&'a BackupRecord> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    known
        .iter()
        .find(|r| same_dir(Path::new(&r.path), dir))
        .or_else(|| known.iter().find(|r| Some(&r.id) == name.as_ref()))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// An entry for `dir` that could not be read, with why.
fn unreadable(dir: &Path, known: &[BackupRecord], problem: String) -> BackupEntry {
    BackupEntry {
        dir: dir.to_path_buf(),
        id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        project: None,
        version: None,
        taken_at: modified(dir),
        total_bytes: 0,
        schema_revision: None,
        has_dump: false,
        known: record_of(dir, known).is_some(),
        verified: false,
        problem: Some(problem),
    }
}

/// The directory's modification time, for a backup whose manifest gives no date.
fn modified(dir: &Path) -> Option<String> {
    let time = std::fs::metadata(dir).ok()?.modified().ok()?;
    let ts = jiff::Timestamp::try_from(time).ok()?;
    Some(ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// The backup in `dir`, read and cheaply checked.
fn entry(dir: &Path, known: &[BackupRecord]) -> BackupEntry {
    let manifest_path = dir.join("manifest.json");
    let record = record_of(dir, known);
    let bytes = match std::fs::read(&manifest_path) {
        Ok(b) => b,
        Err(e) => {
            return unreadable(
                dir,
                known,
                format!("{} cannot be read: {e}", manifest_path.display()),
            );
        }
    };
    let manifest: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return unreadable(
                dir,
                known,
                format!("{} is not a hoist manifest", manifest_path.display()),
            );
        }
        Err(e) => {
            return unreadable(
                dir,
                known,
                format!("{} is not valid JSON: {e}", manifest_path.display()),
            );
        }
    };
    let files = manifest["files"].as_array();
    let mut problem = match files {
        None => Some(format!(
            "{} lists no files: it is not a hoist manifest",
            manifest_path.display()
        )),
        Some(files) => files.iter().find_map(|f| file_problem(dir, f)),
    };
    if problem.is_none()
        && let Some(record) = record
    {
        use sha2::{Digest, Sha256};
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha != record.manifest_sha256 {
            problem = Some(format!(
                "{} is not the manifest hoist wrote (its sha256 differs from the journal's)",
                manifest_path.display()
            ));
        }
    }
    let files = files.cloned().unwrap_or_default();
    let total_bytes = files.iter().filter_map(|f| f["size_bytes"].as_u64()).sum();
    BackupEntry {
        dir: dir.to_path_buf(),
        id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        project: manifest["project"].as_str().map(str::to_string),
        version: restore_version(&manifest),
        taken_at: manifest["created_at"]
            .as_str()
            .map(str::to_string)
            .or_else(|| modified(dir)),
        total_bytes,
        schema_revision: manifest["database"]["revision"]
            .as_str()
            .map(str::to_string),
        has_dump: files.iter().any(|f| f["kind"] == "dump"),
        known: record.is_some(),
        verified: problem.is_none(),
        problem,
    }
}

/// What is wrong with one file the manifest lists, by its size alone.
fn file_problem(dir: &Path, f: &Value) -> Option<String> {
    let Some(name) = f["name"].as_str().filter(|n| super::plain_name(n)) else {
        return Some(format!(
            "the manifest lists a file without a plain name ({}): it is not a hoist manifest",
            f["name"]
        ));
    };
    let path = dir.join(name);
    let expected = f["size_bytes"].as_u64();
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{} is missing", path.display()))
        }
        Err(e) => Some(format!("{} cannot be read: {e}", path.display())),
        Ok(m) if Some(m.len()) != expected => Some(format!(
            "{} is {} bytes, the manifest says {}: the file was changed or damaged",
            path.display(),
            m.len(),
            expected.map_or("nothing".to_string(), |s| s.to_string())
        )),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A backup directory `name` under `root` with `files` (name, content) and a manifest that
    /// lists them as they are.
    fn backup(root: &Path, name: &str, created: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut listed = Vec::new();
        for (n, content) in files {
            std::fs::write(dir.join(n), content).unwrap();
            listed.push(
                json!({"name": n, "kind": if n.ends_with(".sql.gz") {"dump"} else {"archive"},
                               "size_bytes": content.len(), "sha256": "x"}),
            );
        }
        let manifest = json!({"format": 1, "id": name, "created_at": created, "project": "app",
                              "pinned": "1.2.0", "running_version": "1.2.0",
                              "database": {"revision": "0020"}, "files": listed});
        std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
        dir
    }

    fn record(dir: &Path, sha: &str) -> BackupRecord {
        BackupRecord {
            id: dir.file_name().unwrap().to_string_lossy().into_owned(),
            run_id: "r".into(),
            path: dir.display().to_string(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            size_bytes: 3,
            manifest_sha256: sha.into(),
            app_version: Some("1.0.0".into()),
            schema_revision: None,
        }
    }

    #[test]
    fn good_damaged_and_garbage_backups_are_all_listed_newest_first_with_why() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let good = backup(
            root,
            "app-good",
            "2026-03-01T00:00:00.000Z",
            &[("database.sql.gz", "dump"), ("data-x.tar.gz", "data")],
        );
        let missing = backup(
            root,
            "app-missing",
            "2026-02-01T00:00:00.000Z",
            &[("data-x.tar.gz", "data")],
        );
        std::fs::remove_file(missing.join("data-x.tar.gz")).unwrap();
        let resized = backup(
            root,
            "app-resized",
            "2026-01-01T00:00:00.000Z",
            &[("data-x.tar.gz", "data")],
        );
        std::fs::write(resized.join("data-x.tar.gz"), "data, and more").unwrap();
        let garbage = root.join("app-garbage");
        std::fs::create_dir(&garbage).unwrap();
        std::fs::write(garbage.join("manifest.json"), "{ not json").unwrap();
        // Not backups: a directory without a manifest, a partial one, a file.
        std::fs::create_dir(root.join("photos")).unwrap();
        backup(root, ".app-x.partial", "2026-04-01T00:00:00.000Z", &[]);
        std::fs::write(root.join("app-before-rollback.sql.gz"), "x").unwrap();

        let list = list_backups(root, &[]).unwrap();
        let ids: Vec<&str> = list.iter().map(|e| e.id.as_str()).collect();
        // The garbage one is dated by its directory (now): the newest.
        assert_eq!(
            ids,
            ["app-garbage", "app-good", "app-missing", "app-resized"]
        );
        let by = |id: &str| list.iter().find(|e| e.id == id).unwrap();
        let g = by("app-good");
        assert!(g.verified && g.problem.is_none(), "{g:?}");
        assert_eq!(g.dir, good);
        assert_eq!(g.version.as_deref(), Some("1.2.0"));
        assert_eq!(g.project.as_deref(), Some("app"));
        assert_eq!(g.schema_revision.as_deref(), Some("0020"));
        assert_eq!(g.total_bytes, 8);
        assert!(g.has_dump && !g.known);
        let m = by("app-missing");
        assert!(!m.verified);
        assert!(
            m.problem.as_deref().unwrap().contains("is missing"),
            "{m:?}"
        );
        let r = by("app-resized");
        assert!(!r.verified);
        assert!(
            r.problem
                .as_deref()
                .unwrap()
                .contains("14 bytes, the manifest says 4"),
            "{r:?}"
        );
        let x = by("app-garbage");
        assert!(!x.verified && x.version.is_none());
        assert!(
            x.problem.as_deref().unwrap().contains("not valid JSON"),
            "{x:?}"
        );
        assert!(x.taken_at.is_some());
    }

    #[test]
    fn the_journal_vouches_for_its_manifests_and_names_what_it_lost() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("backups");
        let dir = backup(
            &root,
            "app-1",
            "2026-03-01T00:00:00.000Z",
            &[("d.tar.gz", "d")],
        );
        let (sha, _) = crate::backup::gzip::sha256_file(&dir.join("manifest.json")).unwrap();
        let gone = tmp.path().join("elsewhere/app-0");
        let known = [record(&dir, &sha), record(&gone, "y")];
        let list = list_backups(&root, &known).unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].known && list[0].verified, "{:?}", list[0]);
        assert_eq!(list[1].dir, gone);
        assert!(list[1].known && !list[1].verified);
        assert!(
            list[1]
                .problem
                .as_deref()
                .unwrap()
                .contains("not there any more"),
            "{:?}",
            list[1]
        );
        assert_eq!(list[1].version.as_deref(), Some("1.0.0"));
        // A manifest changed since the journal recorded it.
        let changed = [record(&dir, "0000")];
        let list = list_backups(&root, &changed).unwrap();
        assert!(!list[0].verified);
        assert!(
            list[0].problem.as_deref().unwrap().contains("journal"),
            "{:?}",
            list[0]
        );
        // No backup directory yet: no backups, no error.
        assert_eq!(list_backups(&tmp.path().join("none"), &[]).unwrap(), []);
    }

    #[test]
    fn a_file_name_that_leaves_the_backup_is_not_a_backup() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app-1");
        std::fs::create_dir(&dir).unwrap();
        let manifest = json!({"project": "app", "files": [{"name": "../x", "size_bytes": 1}]});
        std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
        let list = list_backups(tmp.path(), &[]).unwrap();
        assert!(
            list[0].problem.as_deref().unwrap().contains("plain name"),
            "{:?}",
            list[0]
        );
    }
}
