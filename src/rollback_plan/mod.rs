//! The rollback planner: from the backup's manifest and the database as it is now, whether going
//! back needs a restore, and why, in one sentence; and what a restore would lose.
mod losses;
mod schema_change;

use serde::Serialize;

use crate::db::{DbProbe, Writes};
pub use losses::{Loss, Mark, Moment};
pub use schema_change::{SchemaChange, classify};

/// What the backup's manifest says about the database when it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupDb {
    pub revision: Option<String>,
    pub fingerprint: String,
    /// (table, rows), sorted by table.
    pub tables: Vec<(String, u64)>,
    /// Every table's write tally at the backup; Err says why there is none.
    pub writes: Result<Writes, String>,
    /// Every column at the backup (None: an older hoist took it).
    pub columns: Option<Vec<crate::db::SchemaColumn>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Re-pin the previous version and recreate: the schema is as it was.
    Repin,
    /// Restore the database and the data, then re-pin and recreate: the schema changed.
    Restore,
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
    /// The schema change since the backup, when both schemas are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_change: Option<SchemaChange>,
    /// A restore whose schema change only added tables and columns: the previous version may
    /// run on the newer schema, keeping everything written since, so that is tried first (and
    /// the backup restored if it does not come up).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_first: bool,
}

impl Plan {
    /// What a restore by this plan takes away, in words.
    pub fn loss_words(&self) -> String {
        loss_words(&self.losses, self.unknown_loss.as_deref())
    }

    /// The reason, and when the previous version is tried first, that it is: what front ends
    /// show ("why").
    pub fn reason_words(&self) -> String {
        if self.keep_first {
            format!(
                "{}, keeping everything written since, so that is tried first; the backup is restored if it does not come up",
                self.reason
            )
        } else {
            self.reason.clone()
        }
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
        schema_change: None,
        keep_first: false,
    }
}

/// Decides from facts: the schema revision and fingerprint now against the backup's.
/// `now` is `None` when the stack has no database, `Some(Err)` when it cannot be read.
/// `marks` are the upgrade's write marks (see `losses`), oldest first.
pub fn decide(
    backup: Option<&BackupDb>,
    now: Option<Result<&DbProbe, &str>>,
    marks: &[Mark],
) -> Plan {
    let plan = |decision, reason: String, losses| Plan {
        decision,
        reason,
        losses,
        unknown_loss: None,
        schema_change: None,
        keep_first: false,
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
    let (losses, unknown) = losses::since_backup(backup, marks, now);
    let plan = |decision, reason, losses| Plan {
        unknown_loss: unknown.clone(),
        ..plan(decision, reason, losses)
    };
    let shown = |r: &Option<String>| r.clone().unwrap_or_else(|| "(none)".into());
    let change = backup
        .columns
        .as_ref()
        .map(|before| classify(before, &now.columns));
    let additive = change
        .as_ref()
        .is_some_and(|c| c.is_additive() && !c.added.is_empty());
    // What changed, said after the reason: additive or not, and what makes it so.
    let what_changed = match &change {
        Some(c) if additive => format!(
            ". The change is additive, {}: the previous version may run on it",
            c.words()
        ),
        Some(c) if c.is_additive() => ", and the previous version may not run on what it did (the tables and columns are as they were: it changed data, or indexes or constraints, which hoist does not compare)".to_string(),
        Some(c) => format!(
            ", and the previous version cannot run on the newer schema. The change is not additive: {}",
            c.words()
        ),
        None => ", and the previous version cannot run on the newer schema".to_string(),
    };
    let plan = |decision, reason: String, losses| Plan {
        schema_change: change.clone(),
        keep_first: additive && decision == Decision::Restore,
        ..plan(decision, reason, losses)
    };
    if now.migrations.as_ref().is_some_and(|m| m.dirty) {
        // A half-finished migration: no old version should run on it, additions or not.
        return Plan {
            keep_first: false,
            ..plan(
                Decision::Restore,
                format!(
                    "the migrations table says a migration started and did not finish (revision {}): the schema may be half-changed",
                    shown(&revision_now)
                ),
                losses,
            )
        };
    }
    if revision_now != backup.revision {
        return plan(
            Decision::Restore,
            format!(
                "the schema revision went from {} to {}: a migration ran{what_changed}",
                shown(&backup.revision),
                shown(&revision_now)
            ),
            losses,
        );
    }
    if now.fingerprint != backup.fingerprint {
        let how = match &backup.revision {
            Some(r) => format!(" though the revision is still {r}: a migration ran part way"),
            // No migrations table to say what did it: the app itself, or a person.
            None => ", and the database has no migrations table hoist knows, so something (the app at start, or a person) changed its tables".to_string(),
        };
        return plan(
            Decision::Restore,
            format!(
                "the schema changed (its tables or columns differ from the backup's){how}{what_changed}"
            ),
            losses,
        );
    }
    Plan {
        unknown_loss: None,
        ..plan(
            Decision::Repin,
            format!(
                "the schema is as it was at the backup (revision {}, same tables and columns): going back needs no restore, only the previous version",
                shown(&backup.revision)
            ),
            Vec::new(),
        )
    }
}

/// The loss in words, for the confirmation question and the report.
pub fn loss_sentence(losses: &[Loss]) -> String {
    if losses.is_empty() {
        return "no rows were written since the backup".into();
    }
    let parts: Vec<String> = losses.iter().map(Loss::words).collect();
    format!("what was written since the backup: {}", parts.join(", "))
}

/// What a restore takes away, counted and not: the sentence every front end shows.
pub fn loss_words(losses: &[Loss], unknown: Option<&str>) -> String {
    match unknown {
        None => loss_sentence(losses),
        Some(unknown) if losses.is_empty() => unknown.to_string(),
        Some(unknown) => format!("{}; and {unknown}", loss_sentence(losses)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_file_whose_schema_changed_means_a_restore_with_an_uncounted_loss() {
        let repin = decide(None, None, &[]);
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
                writes: Err("none".into()),
                columns: None,
            }),
            Some(Err("refused")),
            &[],
        );
        assert!(!unread.loses_nothing());
        assert!(
            unread.loss_words().contains("cannot count"),
            "{}",
            unread.loss_words()
        );
    }

    fn probe(revision: &str, fingerprint: &str, tables: &[(&str, u64)]) -> DbProbe {
        DbProbe::alembic(revision, fingerprint, tables)
    }

    fn backup(revision: &str, fingerprint: &str, tables: &[(&str, u64)]) -> BackupDb {
        BackupDb {
            revision: Some(revision.into()),
            fingerprint: fingerprint.into(),
            tables: tables.iter().map(|(n, r)| (n.to_string(), *r)).collect(),
            writes: Err("not read".into()),
            columns: None,
        }
    }

    #[test]
    fn same_schema_is_a_repin() {
        let b = backup("0022", "f1", &[("issues", 40)]);
        let now = probe("0022", "f1", &[("issues", 42)]);
        let p = decide(Some(&b), Some(Ok(&now)), &[]);
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
        let p = decide(Some(&b), Some(Ok(&now)), &[]);
        assert_eq!(p.decision, Decision::Restore);
        assert!(p.reason.contains("from 0021 to 0022"), "{}", p.reason);
        assert_eq!(
            loss_sentence(&p.losses),
            "what was written since the backup: 3 rows in issues, 2 rows in notes"
        );
    }

    #[test]
    fn a_partial_migration_changes_the_fingerprint_only() {
        let b = backup("0022", "f1", &[]);
        let now = probe("0022", "f2", &[]);
        let p = decide(Some(&b), Some(Ok(&now)), &[]);
        assert_eq!(p.decision, Decision::Restore);
        assert!(p.reason.contains("part way"), "{}", p.reason);
    }

    #[test]
    fn an_unreadable_database_is_a_restore_and_no_database_a_repin() {
        let b = backup("0022", "f1", &[]);
        let p = decide(Some(&b), Some(Err("connection refused")), &[]);
        assert_eq!(p.decision, Decision::Restore);
        assert!(p.reason.contains("connection refused"), "{}", p.reason);
        assert_eq!(decide(None, None, &[]).decision, Decision::Repin);
        assert_eq!(loss_sentence(&[]), "no rows were written since the backup");
    }

    fn mark(moment: Moment, writes: Result<Writes, String>) -> Mark {
        Mark {
            moment,
            hop: "0.1.11".into(),
            writes,
        }
    }

    #[test]
    fn an_update_after_the_upgrade_is_a_loss_though_the_counts_are_the_same() {
        let mut b = backup("0020", "f1", &[("issues", 40)]);
        b.writes = Ok(Writes::counted(&[
            ("alembic_version", 1, 20, 0),
            ("issues", 40, 0, 0),
        ]));
        let marks = [
            mark(
                Moment::BeforeRestart,
                Ok(Writes::counted(&[
                    ("alembic_version", 1, 20, 0),
                    ("issues", 40, 0, 0),
                ])),
            ),
            // The migration's own writes: an update of the revision, a backfill of issues.
            mark(
                Moment::AfterStart,
                Ok(Writes::counted(&[
                    ("alembic_version", 1, 21, 0),
                    ("issues", 40, 40, 0),
                ])),
            ),
        ];
        let mut now = probe("0021", "f2", &[("issues", 40)]);
        now.writes = Ok(Writes::counted(&[
            ("alembic_version", 1, 21, 0),
            ("issues", 40, 41, 0),
        ]));
        let p = decide(Some(&b), Some(Ok(&now)), &marks);
        assert_eq!(p.decision, Decision::Restore);
        assert!(!p.loses_nothing());
        assert_eq!(p.unknown_loss, None);
        assert_eq!(
            p.loss_words(),
            "what was written since the backup: 1 updated row in issues"
        );
        // Nothing written outside the migration: a restore loses nothing.
        now.writes = marks[1].writes.clone();
        let p = decide(Some(&b), Some(Ok(&now)), &marks);
        assert!(p.loses_nothing(), "{p:?}");
        // A write between the backup and the restart is lost too.
        let mut early = marks.clone();
        early[0].writes = Ok(Writes::counted(&[
            ("alembic_version", 1, 20, 0),
            ("issues", 41, 0, 1),
        ]));
        early[1].writes = Ok(Writes::counted(&[
            ("alembic_version", 1, 21, 0),
            ("issues", 41, 40, 1),
        ]));
        now.writes = early[1].writes.clone();
        let p = decide(Some(&b), Some(Ok(&now)), &early);
        assert_eq!(
            p.loss_words(),
            "what was written since the backup: 1 inserted and 1 deleted row in issues"
        );
    }

    #[test]
    fn writes_that_cannot_be_counted_are_said_never_nothing() {
        let mut b = backup("0020", "f1", &[("issues", 40)]);
        b.writes = Ok(Writes::counted(&[("issues", 40, 0, 0)]));
        let mut now = probe("0021", "f2", &[("issues", 40)]);
        // The database crashed since: its counters started again from nothing.
        now.writes = Ok(Writes::counted(&[("issues", 0, 1, 0)]));
        let p = decide(Some(&b), Some(Ok(&now)), &[]);
        assert!(!p.loses_nothing());
        assert!(p.loss_words().contains("reset"), "{}", p.loss_words());
        // No mark after a failed start: the window from the restart is counted whole.
        now.writes = Ok(Writes::counted(&[("issues", 40, 2, 0)]));
        let marks = [mark(
            Moment::BeforeRestart,
            Ok(Writes::counted(&[("issues", 40, 0, 0)])),
        )];
        let p = decide(Some(&b), Some(Ok(&now)), &marks);
        assert_eq!(
            p.loss_words(),
            "what was written since the backup: 2 updated rows in issues"
        );
        // A backup that recorded no writes (an older hoist): the counts, and what they miss.
        b.writes = Err("the backup does not record the database's writes".into());
        let p = decide(Some(&b), Some(Ok(&now)), &[]);
        assert!(!p.loses_nothing());
        assert!(
            p.loss_words().contains("cannot all be counted"),
            "{}",
            p.loss_words()
        );
    }

    #[test]
    fn only_additions_try_the_previous_version_first() {
        use crate::db::SchemaColumn;
        let col = |table: &str, name: &str, default: bool| SchemaColumn {
            table: table.into(),
            name: name.into(),
            data_type: "text".into(),
            nullable: false,
            has_default: default,
        };
        let mut b = backup("0020", "f1", &[("issues", 40)]);
        b.columns = Some(vec![col("issues", "id", true)]);
        let mut now = probe("0021", "f2", &[("issues", 40)]);
        now.columns = vec![col("issues", "id", true), col("issues", "metadata", true)];
        let p = decide(Some(&b), Some(Ok(&now)), &[]);
        assert_eq!(p.decision, Decision::Restore);
        assert!(p.keep_first, "{p:?}");
        assert!(p.reason.contains("additive"), "{}", p.reason);
        // A column the previous version's inserts cannot fill: restore only, and why.
        now.columns[1].has_default = false;
        let p = decide(Some(&b), Some(Ok(&now)), &[]);
        assert!(!p.keep_first);
        assert!(
            p.reason.contains("not additive: column issues.metadata"),
            "{}",
            p.reason
        );
        // A half-finished migration: restore only, whatever it added.
        now.columns[1].has_default = true;
        if let Some(m) = now.migrations.as_mut() {
            m.dirty = true;
        }
        let p = decide(Some(&b), Some(Ok(&now)), &[]);
        assert!(!p.keep_first);
        assert!(p.reason.contains("did not finish"), "{}", p.reason);
        // An older backup without columns: restore only.
        b.columns = None;
        if let Some(m) = now.migrations.as_mut() {
            m.dirty = false;
        }
        assert!(!decide(Some(&b), Some(Ok(&now)), &[]).keep_first);
    }
}
