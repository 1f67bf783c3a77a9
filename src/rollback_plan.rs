//! The rollback planner: from the backup's manifest and the database as it is now, whether going
//! back needs a restore, and why, in one sentence; and what a restore would lose.
use serde::Serialize;

use crate::db::DbProbe;

/// What the backup's manifest says about the database when it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDb {
    pub revision: Option<String>,
    pub fingerprint: String,
    /// (table, rows), sorted by table.
    pub tables: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Re-pin the previous version and recreate: the schema is as it was.
    Repin,
    /// Restore the database and the data, then re-pin and recreate: the schema changed.
    Restore,
}

/// Rows a restore takes away: written since the backup, kept aside but no longer in the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    pub table: String,
    pub rows_in_backup: u64,
    pub rows_now: u64,
}

impl Loss {
    pub fn rows(&self) -> u64 {
        self.rows_now - self.rows_in_backup
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub decision: Decision,
    pub reason: String,
    /// Tables with more rows now than in the backup (a restore only).
    pub losses: Vec<Loss>,
    /// What a restore takes away that cannot be counted in rows, said instead of "nothing".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_loss: Option<String>,
}

impl Plan {
    /// What a restore by this plan takes away, in words.
    pub fn loss_words(&self) -> String {
        self.unknown_loss
            .clone()
            .unwrap_or_else(|| loss_sentence(&self.losses))
    }

    /// Whether a restore by this plan takes nothing away that hoist can see.
    pub fn loses_nothing(&self) -> bool {
        self.decision == Decision::Repin || (self.losses.is_empty() && self.unknown_loss.is_none())
    }
}

/// After `decide`, for a backup with no database dump (`has_database` false): when the app
/// keeps SQLite files in its data, a file whose schema changed since the backup (or that is
/// gone or unreadable now) means the data is restored, which puts the file back. `backup` and
/// `now` are (path in the container, schema fingerprint). With a database dump, the
/// database's own comparison decides (a restore then also puts the files back).
pub fn with_sqlite_files(
    plan: Plan,
    has_database: bool,
    backup: &[(String, Option<String>)],
    now: &[(String, Option<String>)],
) -> Plan {
    if plan.decision != Decision::Repin || has_database {
        return plan;
    }
    let changed = backup.iter().find(|(path, then)| {
        then.is_some() && now.iter().find(|(p, _)| p == path).map(|(_, fp)| fp) != Some(then)
    });
    let Some((path, _)) = changed else {
        return plan;
    };
    Plan {
        decision: Decision::Restore,
        reason: format!(
            "the SQLite database {path} in the app's data changed its schema since the backup (or cannot be read now): the previous version may not run on it, so the data is restored, which puts it back"
        ),
        losses: Vec::new(),
        unknown_loss: Some(format!(
            "what was written to {path} since the backup is taken away (hoist cannot count its rows)"
        )),
    }
}

/// Decides from facts: the schema revision and fingerprint now against the backup's.
/// `now` is `None` when the stack has no database, `Some(Err)` when it cannot be read.
pub fn decide(backup: Option<&BackupDb>, now: Option<Result<&DbProbe, &str>>) -> Plan {
    let plan = |decision, reason: String, losses| Plan {
        decision,
        reason,
        losses,
        unknown_loss: None,
    };
    let Some(backup) = backup else {
        return plan(
            Decision::Repin,
            "the backup holds no database dump (hoist found no database it can dump), so there is no schema to restore: the previous version is pinned again. If the app migrated a database hoist does not see, the previous version may not start on it".into(),
            Vec::new(),
        );
    };
    let now = match now {
        None | Some(Err(_)) => {
            let why = match now {
                Some(Err(e)) => format!("the database cannot be read now ({e})"),
                _ => "the database is not found now".to_string(),
            };
            return Plan {
                unknown_loss: Some(format!(
                    "what was written since the backup is taken away ({why}, so hoist cannot count it)"
                )),
                ..plan(
                    Decision::Restore,
                    format!(
                        "{why}, so hoist cannot tell whether a migration ran: restoring the backup is the safe way back"
                    ),
                    Vec::new(),
                )
            };
        }
        Some(Ok(p)) => p,
    };
    let revision_now = now.migrations.as_ref().map(|m| m.revision.clone());
    let losses = losses(backup, now);
    let shown = |r: &Option<String>| r.clone().unwrap_or_else(|| "(none)".into());
    if revision_now != backup.revision {
        return plan(
            Decision::Restore,
            format!(
                "the schema revision went from {} to {}: a migration ran, and the previous version cannot run on the newer schema",
                shown(&backup.revision),
                shown(&revision_now)
            ),
            losses,
        );
    }
    if now.migrations.as_ref().is_some_and(|m| m.dirty) {
        return plan(
            Decision::Restore,
            format!(
                "the migrations table says a migration started and did not finish (revision {}): the schema may be half-changed",
                shown(&revision_now)
            ),
            losses,
        );
    }
    if now.fingerprint != backup.fingerprint {
        return plan(
            Decision::Restore,
            format!(
                "the schema changed (its tables or columns differ from the backup's) though the revision is still {}: a migration ran part way",
                shown(&backup.revision)
            ),
            losses,
        );
    }
    plan(
        Decision::Repin,
        format!(
            "the schema is as it was at the backup (revision {}, same tables and columns): going back needs no restore, only the previous version",
            shown(&backup.revision)
        ),
        Vec::new(),
    )
}

/// Every table with more rows now than the backup holds (tables new since count from 0).
fn losses(backup: &BackupDb, now: &DbProbe) -> Vec<Loss> {
    now.tables
        .iter()
        .filter_map(|t| {
            let before = backup
                .tables
                .iter()
                .find(|(name, _)| name == &t.name)
                .map_or(0, |(_, rows)| *rows);
            (t.rows > before).then(|| Loss {
                table: t.name.clone(),
                rows_in_backup: before,
                rows_now: t.rows,
            })
        })
        .collect()
}

/// The loss in words, for the confirmation question and the report.
pub fn loss_sentence(losses: &[Loss]) -> String {
    if losses.is_empty() {
        return "no rows were written since the backup".into();
    }
    let parts: Vec<String> = losses
        .iter()
        .map(|l| {
            format!(
                "{} row{} in {}",
                l.rows(),
                if l.rows() == 1 { "" } else { "s" },
                l.table
            )
        })
        .collect();
    format!("written since the backup: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::TableRows;
    use crate::db::migrations::{MigrationFramework, Migrations};

    #[test]
    fn an_sqlite_file_whose_schema_changed_means_a_restore_with_an_uncounted_loss() {
        let repin = decide(None, None);
        assert_eq!(repin.decision, Decision::Repin);
        let file = |fp: Option<&str>| vec![("/data/app.db".to_string(), fp.map(str::to_string))];
        let same = with_sqlite_files(repin.clone(), false, &file(Some("a")), &file(Some("a")));
        assert_eq!(same.decision, Decision::Repin);
        assert!(same.loses_nothing());
        for now in [file(Some("b")), file(None), Vec::new()] {
            let p = with_sqlite_files(repin.clone(), false, &file(Some("a")), &now);
            assert_eq!(p.decision, Decision::Restore, "{now:?}");
            assert!(p.reason.contains("/data/app.db"), "{}", p.reason);
            assert!(!p.loses_nothing());
            assert!(
                p.loss_words().contains("cannot count"),
                "{}",
                p.loss_words()
            );
        }
        // A file whose schema could not be read at the backup tells nothing.
        let unknown = with_sqlite_files(repin.clone(), false, &file(None), &file(Some("b")));
        assert_eq!(unknown.decision, Decision::Repin);
        // With a database dump, the database decides.
        let with_db = with_sqlite_files(repin, true, &file(Some("a")), &file(Some("b")));
        assert_eq!(with_db.decision, Decision::Repin);
        // A database that cannot be read now: a restore whose loss nobody counted.
        let unread = decide(
            Some(&BackupDb {
                revision: None,
                fingerprint: "f".into(),
                tables: Vec::new(),
            }),
            Some(Err("refused")),
        );
        assert!(!unread.loses_nothing());
        assert!(
            unread.loss_words().contains("cannot count"),
            "{}",
            unread.loss_words()
        );
    }

    fn probe(revision: &str, fingerprint: &str, tables: &[(&str, u64)]) -> DbProbe {
        DbProbe {
            migrations: Some(Migrations {
                framework: MigrationFramework::Alembic,
                revision: revision.into(),
                applied: 1,
                dirty: false,
            }),
            fingerprint: fingerprint.into(),
            tables: tables
                .iter()
                .map(|(n, r)| TableRows {
                    name: n.to_string(),
                    rows: *r,
                })
                .collect(),
            size_bytes: 0,
            server_version: "15".into(),
        }
    }

    fn backup(revision: &str, fingerprint: &str, tables: &[(&str, u64)]) -> BackupDb {
        BackupDb {
            revision: Some(revision.into()),
            fingerprint: fingerprint.into(),
            tables: tables.iter().map(|(n, r)| (n.to_string(), *r)).collect(),
        }
    }

    #[test]
    fn same_schema_is_a_repin() {
        let b = backup("0022", "f1", &[("issues", 40)]);
        let now = probe("0022", "f1", &[("issues", 42)]);
        let p = decide(Some(&b), Some(Ok(&now)));
        assert_eq!(p.decision, Decision::Repin);
        assert!(p.reason.contains("revision 0022"), "{}", p.reason);
        assert!(p.losses.is_empty());
    }

    #[test]
    fn a_migration_is_a_restore_with_the_rows_it_would_lose() {
        let b = backup("0021", "f1", &[("comments", 120), ("issues", 40)]);
        let now = probe(
            "0022",
            "f2",
            &[("comments", 120), ("issues", 43), ("notes", 2)],
        );
        let p = decide(Some(&b), Some(Ok(&now)));
        assert_eq!(p.decision, Decision::Restore);
        assert!(p.reason.contains("from 0021 to 0022"), "{}", p.reason);
        assert_eq!(
            loss_sentence(&p.losses),
            "written since the backup: 3 rows in issues, 2 rows in notes"
        );
    }

    #[test]
    fn a_partial_migration_changes_the_fingerprint_only() {
        let b = backup("0022", "f1", &[]);
        let now = probe("0022", "f2", &[]);
        let p = decide(Some(&b), Some(Ok(&now)));
        assert_eq!(p.decision, Decision::Restore);
        assert!(p.reason.contains("part way"), "{}", p.reason);
    }

    #[test]
    fn an_unreadable_database_is_a_restore_and_no_database_a_repin() {
        let b = backup("0022", "f1", &[]);
        let p = decide(Some(&b), Some(Err("connection refused")));
        assert_eq!(p.decision, Decision::Restore);
        assert!(p.reason.contains("connection refused"), "{}", p.reason);
        assert_eq!(decide(None, None).decision, Decision::Repin);
        assert_eq!(loss_sentence(&[]), "no rows were written since the backup");
    }
}
