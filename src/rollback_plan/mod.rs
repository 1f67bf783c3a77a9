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

/// The kind of rollback at hand, in the words upgrade runbooks classify it with (SyncTV's:
/// binary-only, config, additive schema, destructive schema), plus the two hoist meets when it
/// cannot see a schema: an app whose state is only files, and a database it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Case {
    /// Only the image changed; no migration ran: pin the previous image again.
    BinaryOnly,
    /// No migration ran, and the configuration changed beside the image.
    Config,
    /// Migrations ran that only added tables or columns: the previous version may run on them.
    AdditiveSchema,
    /// A migration the previous version cannot run on: the database backup is restored.
    DestructiveSchema,
    /// No database: the app's state is its data files, which the new version may have rewritten.
    DataOnly,
    /// The database cannot be read: nobody can tell what ran.
    Unknown,
    /// A database known only by its commands moved to another revision: a migration ran, and
    /// whether the previous version can run on it cannot be seen.
    SchemaMoved,
    /// `hoist restore DIR`: a backup put back because it was asked for.
    Restore,
}

impl Case {
    /// The case, first in the plan's reason: "Binary-only rollback (no migration ran):".
    pub fn headline(&self) -> &'static str {
        match self {
            Case::BinaryOnly => "Binary-only rollback (only the image changed, no migration ran):",
            Case::Config => "Config rollback (no migration ran; the configuration changed too):",
            Case::AdditiveSchema => {
                "Additive schema (migrations ran that the previous version may support):"
            }
            Case::DestructiveSchema => {
                "Destructive schema (a migration ran that the previous version cannot run on):"
            }
            Case::DataOnly => "No database (the app keeps its state in its data files):",
            Case::Unknown => "Unknown (hoist cannot read the database):",
            Case::SchemaMoved => {
                "Schema changed (a migration ran; hoist cannot see whether the previous version can run on it):"
            }
            Case::Restore => "Restore (as you asked):",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Which kind of rollback this is (binary-only, config, additive or destructive schema…).
    pub case: Case,
    /// Files of the configuration that changed since the backup besides the version (the
    /// Config case; said with any other).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config_changes: Vec<String>,
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
        let config = if self.config_changes.is_empty() {
            String::new()
        } else {
            format!(
                ". Changed since the backup besides the version: {} — hoist pins the previous version and leaves the rest of your configuration as it is; the backup holds the files as they were",
                self.config_changes.join(", ")
            )
        };
        if self.keep_first {
            format!(
                "{} {}, keeping everything written since, so that is tried first; the backup is restored if it does not come up{config}",
                self.case.headline(),
                self.reason
            )
        } else {
            format!("{} {}{config}", self.case.headline(), self.reason)
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
        case: Case::DestructiveSchema,
        config_changes: plan.config_changes,
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

/// After `decide` and `with_sqlite_files`, for a backup with no database dump that holds the
/// app's data: the new version may have rewritten the data in a format the previous version
/// cannot read (a storage-impacting release), which hoist cannot tell from outside. So the
/// previous version is tried on the data as it is first (losing nothing), and the data backup
/// is restored if it does not come up — never a bare re-pin that leaves the app down.
pub fn with_data_archives(plan: Plan, has_database: bool, has_data: bool) -> Plan {
    if plan.decision != Decision::Repin || has_database || !has_data {
        return plan;
    }
    Plan {
        case: Case::DataOnly,
        decision: Decision::Restore,
        reason: "the backup holds the app's data and no database dump (hoist found no database it can dump): the new version may have rewritten the data in a format the previous version cannot read, and hoist cannot tell, so the previous version may run on it".into(),
        losses: Vec::new(),
        unknown_loss: Some(
            "what the app wrote to its data since the backup (hoist cannot count files)"
                .into(),
        ),
        schema_change: None,
        keep_first: true,
        ..plan
    }
}

/// Pins the case to Config when no migration ran and the configuration changed (`changes`:
/// the files, said), and records the changes for any other case.
pub fn with_config_changes(mut plan: Plan, changes: Vec<String>) -> Plan {
    if !changes.is_empty() && plan.case == Case::BinaryOnly {
        plan.case = Case::Config;
    }
    plan.config_changes = changes;
    plan
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
        case: Case::BinaryOnly,
        config_changes: Vec::new(),
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
                case: Case::Unknown,
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
    // Known only by its commands: its revision, never its tables or its writes.
    let by_commands = now
        .migrations
        .as_ref()
        .is_some_and(|m| m.framework == crate::db::MigrationFramework::Command);
    let (losses, unknown) = if by_commands {
        (
            Vec::new(),
            Some("whatever was written to the database since the backup (hoist knows this database only through its commands, so it cannot count what was written)".to_string()),
        )
    } else {
        losses::since_backup(backup, marks, now)
    };
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
        _ if by_commands => ", and hoist cannot see what it changed (it knows this database only through its commands), so the previous version may not run on it".to_string(),
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
        case: match decision {
            Decision::Repin => Case::BinaryOnly,
            Decision::Restore if additive => Case::AdditiveSchema,
            Decision::Restore if by_commands => Case::SchemaMoved,
            Decision::Restore => Case::DestructiveSchema,
        },
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
    let same = match now.migrations.as_ref().map(|m| m.framework) {
        // Only the command's words are known of such a database.
        Some(crate::db::MigrationFramework::Command) => format!(
            "the database's revision command prints what it printed at the backup ({})",
            shown(&backup.revision)
        ),
        _ => format!(
            "the schema is as it was at the backup (revision {}, same tables and columns)",
            shown(&backup.revision)
        ),
    };
    Plan {
        unknown_loss: None,
        ..plan(
            Decision::Repin,
            format!("{same}: going back needs no restore, only the previous version"),
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
    fn each_case_in_the_runbooks_words() {
        let repin = decide(None, None, &[]);
        assert_eq!(repin.case, Case::BinaryOnly);
        assert!(repin.reason_words().starts_with("Binary-only rollback (only the image changed, no migration ran): the backup holds no database dump"));
        let config = with_config_changes(repin.clone(), vec![".env (2 lines)".into()]);
        assert_eq!(config.case, Case::Config);
        assert!(
            config
                .reason_words()
                .starts_with("Config rollback (no migration ran; the configuration changed too):"),
            "{}",
            config.reason_words()
        );
        assert!(config.reason_words().ends_with("Changed since the backup besides the version: .env (2 lines) — hoist pins the previous version and leaves the rest of your configuration as it is; the backup holds the files as they were"), "{}", config.reason_words());
        assert_eq!(
            with_config_changes(repin.clone(), Vec::new()).case,
            Case::BinaryOnly
        );
        // A backup of the app's data alone: tried as it is, restored if that fails.
        let data = with_data_archives(repin.clone(), false, true);
        assert_eq!(
            (data.case, data.decision, data.keep_first),
            (Case::DataOnly, Decision::Restore, true)
        );
        assert!(!data.loses_nothing());
        assert!(
            data.reason_words()
                .starts_with("No database (the app keeps its state in its data files):"),
            "{}",
            data.reason_words()
        );
        assert_eq!(
            with_data_archives(repin.clone(), true, true).decision,
            Decision::Repin
        );
        assert_eq!(
            with_data_archives(repin.clone(), false, false).decision,
            Decision::Repin
        );
        // Config changes are said with any case, the case kept.
        let restore_config = with_config_changes(data, vec!["compose.yaml (1 line)".into()]);
        assert_eq!(restore_config.case, Case::DataOnly);
    }

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
    fn a_database_known_by_its_commands_is_judged_by_its_revision_alone() {
        let by_commands = |revision: &str| {
            let mut p = probe(revision, revision, &[]);
            if let Some(m) = p.migrations.as_mut() {
                m.framework = crate::db::MigrationFramework::Command;
            }
            p
        };
        let b = backup("v3", "v3", &[]);
        let same = decide(Some(&b), Some(Ok(&by_commands("v3"))), &[]);
        assert_eq!(same.decision, Decision::Repin);
        assert!(
            same.reason.contains("revision command prints"),
            "{}",
            same.reason
        );
        assert!(!same.reason.contains("tables"), "{}", same.reason);
        let moved = decide(Some(&b), Some(Ok(&by_commands("v4"))), &[]);
        assert_eq!(moved.decision, Decision::Restore);
        assert_eq!(moved.case, Case::SchemaMoved);
        assert!(!moved.keep_first);
        assert!(
            moved.reason.contains("cannot see what it changed"),
            "{}",
            moved.reason
        );
        // Never "nothing was written": the writes are not known.
        assert!(!moved.loses_nothing());
        assert!(
            moved.loss_words().contains("cannot count"),
            "{}",
            moved.loss_words()
        );
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
