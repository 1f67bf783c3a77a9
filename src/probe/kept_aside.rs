//! What earlier rollbacks and restores kept aside and nobody has removed yet: the newer data
//! they moved out of the app's way, found where they put it (not only in the journal, so that a
//! run killed half way, or another state dir's, is found too) — a data directory's
//! `DIR.before-rollback-STAMP` beside it, a named volume's copy (labelled by hoist), a
//! PostgreSQL database renamed `NAME_before_rollback_STAMP`, a MySQL/MariaDB database kept as
//! `<backup dir>/NAME-before-rollback-STAMP.sql.gz`. Listed until the user removes them.
use std::path::Path;

use serde::Serialize;

use super::facts::Facts;
use crate::stack::compose::MountKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptAside {
    /// "files", "volume", "database", "database dump".
    pub kind: &'static str,
    /// A path, a volume's or a database's name.
    pub place: String,
    /// What it is the newer copy of.
    pub of: String,
}

impl KeptAside {
    /// "files of /srv/app/data in /srv/app/data.before-rollback-20261202T120000Z",
    /// "database specivo, renamed specivo_before_rollback_20261202T120000Z".
    pub fn words(&self) -> String {
        match self.kind {
            "files" => format!("files of {} in {}", self.of, self.place),
            "database" => format!("{}, renamed {}", self.of, self.place),
            "volume" => format!("{}, copied to volume {}", self.of, self.place),
            _ => format!("{}, kept as {}", self.of, self.place),
        }
    }
}

/// Everything kept aside for this stack that is still there.
pub async fn find(facts: &Facts) -> Vec<KeptAside> {
    let view = &facts.view;
    let mut kept = Vec::new();
    for mount in &view.data {
        if mount.kind == MountKind::Bind
            && let Some(host) = facts.host_path(mount)
        {
            kept.extend(siblings(Path::new(&host)));
        }
    }
    if let Ok(running) = &facts.docker
        && let Ok(volumes) = crate::docker::volumes::kept_aside(&running.engine).await
    {
        let prefix = format!("{}_", view.project);
        let ours =
            |from: &str| from.starts_with(&prefix) || view.data.iter().any(|m| m.source == from);
        kept.extend(
            volumes
                .into_iter()
                .filter(|(_, from)| ours(from))
                .map(|(name, from)| KeptAside {
                    kind: "volume",
                    place: name,
                    of: format!("volume {from}"),
                }),
        );
    }
    if let Some(Ok(probe)) = &facts.db {
        let name = view
            .database
            .as_ref()
            .map(|d| d.name.clone())
            .unwrap_or_default();
        kept.extend(probe.kept_aside.iter().map(|db| KeptAside {
            kind: "database",
            place: db.clone(),
            of: format!("database {name}"),
        }));
    }
    if let Some(db) = &view.database
        && matches!(
            db.kind,
            crate::db::DbKind::Mysql | crate::db::DbKind::Command | crate::db::DbKind::Surrealdb
        )
    {
        kept.extend(dumps(&view.backup_dir, &db.name));
    }
    kept
}

/// `DIR.before-rollback-*` beside the data directory `dir`.
fn siblings(dir: &Path) -> Vec<KeptAside> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.before-rollback-", name.to_string_lossy());
    let mut found: Vec<KeptAside> = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| KeptAside {
            kind: "files",
            place: e.path().display().to_string(),
            of: dir.display().to_string(),
        })
        .collect();
    found.sort_by(|a, b| a.place.cmp(&b.place));
    found
}

/// A database's name as it stands in a kept dump's file name: what is not a letter, a digit,
/// `-` or `_` becomes `_`.
pub fn file_name_part(database: &str) -> String {
    database
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `<name>-before-rollback-*.sql.gz` and `.dump.gz` in the backup dir (as
/// `steps::restore::keep_as_dump` names them).
fn dumps(backup_dir: &Path, database: &str) -> Vec<KeptAside> {
    let clean = file_name_part(database);
    let prefix = format!("{clean}-before-rollback-");
    let mut found: Vec<KeptAside> = std::fs::read_dir(backup_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix)
                && [".sql.gz", ".dump.gz", ".surql.gz"]
                    .iter()
                    .any(|ext| n.ends_with(ext))
        })
        .map(|e| KeptAside {
            kind: "database dump",
            place: e.path().display().to_string(),
            of: format!("database {database}"),
        })
        .collect();
    found.sort_by(|a, b| a.place.cmp(&b.place));
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn directories_and_dumps_kept_aside_are_found_by_their_names() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::create_dir(root.path().join("data.before-rollback-20261202T120000Z")).unwrap();
        std::fs::create_dir(root.path().join("database.before-rollback-X")).unwrap();
        std::fs::create_dir(root.path().join("data-other")).unwrap();
        let found = siblings(&data);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .place
                .ends_with("data.before-rollback-20261202T120000Z")
        );
        assert_eq!(found[0].kind, "files");

        std::fs::write(root.path().join("app-before-rollback-1.sql.gz"), "x").unwrap();
        std::fs::write(root.path().join("app-before-rollback-1.sql.gz.tmp"), "x").unwrap();
        std::fs::write(root.path().join("apple-before-rollback-1.sql.gz"), "x").unwrap();
        let found = dumps(root.path(), "app");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].words().starts_with("database app, kept as "),
            "{}",
            found[0].words()
        );
    }
}
