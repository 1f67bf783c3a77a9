//! Backups found by their manifests, not only by the journal's path: a backup the user moved
//! into the backup dir (`--backup-dir`, `x-hoist.backup_dir`), and the backups on disk when the
//! journal knows no upgrade to undo (a lost or other state dir). A backup is never unfindable
//! because a record of it was lost.
use std::path::{Path, PathBuf};

/// Where the backup the journal records at `recorded` is now: there when its manifest is, else
/// the directory in `backup_root` with its name or with the manifest the journal recorded
/// (`sha256`). None: it is nowhere hoist can see.
pub fn relocate(recorded: &Path, sha256: Option<&str>, backup_root: &Path) -> Option<PathBuf> {
    if recorded.join("manifest.json").is_file() {
        return Some(recorded.to_path_buf());
    }
    let manifest_sha = |dir: &Path| {
        crate::backup::gzip::sha256_file(&dir.join("manifest.json"))
            .ok()
            .map(|(sha, _)| sha)
    };
    // The same name first: a moved backup keeps it. With a recorded manifest, it must match.
    if let Some(name) = recorded.file_name() {
        let candidate = backup_root.join(name);
        if candidate.join("manifest.json").is_file()
            && sha256.is_none_or(|want| manifest_sha(&candidate).as_deref() == Some(want))
        {
            return Some(candidate);
        }
    }
    let want = sha256?;
    // `--backup-dir` given the backup itself.
    if manifest_sha(backup_root).as_deref() == Some(want) {
        return Some(backup_root.to_path_buf());
    }
    std::fs::read_dir(backup_root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("manifest.json").is_file())
        .find(|p| manifest_sha(p).as_deref() == Some(want))
}

/// When the journal has nothing to roll back: the backups of `project` on disk in
/// `backup_root`, newest first, as a clause that says how to put one back. None: there are none.
pub fn on_disk(project: &str, backup_root: &Path) -> Option<String> {
    let backups = crate::backup::list_backups(backup_root, &[]).ok()?;
    let ours: Vec<_> = backups
        .iter()
        .filter(|b| b.project.as_deref() == Some(project))
        .collect();
    let newest = ours.first()?;
    let what = |b: &crate::backup::BackupEntry| {
        format!(
            "{} (version {}, taken {})",
            b.dir.display(),
            b.version.as_deref().unwrap_or("unknown"),
            b.taken_at.as_deref().unwrap_or("at an unknown time")
        )
    };
    Some(format!(
        "{} holds {} backup{} of {project} that the journal does not lead to, the newest {}: `hoist restore DIR` puts one back (`hoist history` lists them)",
        backup_root.display(),
        ours.len(),
        if ours.len() == 1 { "" } else { "s" },
        what(newest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(root: &Path, name: &str, manifest: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("manifest.json"), manifest).unwrap();
        dir
    }

    fn sha(dir: &Path) -> String {
        crate::backup::gzip::sha256_file(&dir.join("manifest.json"))
            .unwrap()
            .0
    }

    #[test]
    fn a_backup_where_the_journal_says_is_taken_as_it_is() {
        let t = tempfile::tempdir().unwrap();
        let dir = backup(t.path(), "b1", "{}");
        assert_eq!(relocate(&dir, None, Path::new("/nowhere")), Some(dir));
    }

    #[test]
    fn a_moved_backup_is_found_by_its_name_or_its_manifest() {
        let old = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let recorded = old.path().join("app-20261202-0.1.9");
        let moved = backup(root.path(), "app-20261202-0.1.9", r#"{"a":1}"#);
        let want = sha(&moved);
        assert_eq!(
            relocate(&recorded, Some(&want), root.path()),
            Some(moved.clone())
        );
        assert_eq!(relocate(&recorded, None, root.path()), Some(moved.clone()));
        // Renamed too: its manifest still says which it is.
        let renamed = root.path().join("renamed");
        std::fs::rename(&moved, &renamed).unwrap();
        assert_eq!(
            relocate(&recorded, Some(&want), root.path()),
            Some(renamed.clone())
        );
        assert_eq!(relocate(&recorded, None, root.path()), None);
        // Given the backup's own directory as the backup dir.
        assert_eq!(relocate(&recorded, Some(&want), &renamed), Some(renamed));
    }

    #[test]
    fn a_backup_with_the_name_but_another_manifest_is_not_taken_for_it() {
        let old = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let recorded = old.path().join("b1");
        backup(root.path(), "b1", r#"{"other":true}"#);
        assert_eq!(
            relocate(&recorded, Some("0".repeat(64).as_str()), root.path()),
            None
        );
    }
}
