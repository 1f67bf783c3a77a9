//! What a restore takes away: every row the app wrote since the backup — inserted, updated or
//! deleted — counted from the database's write tallies (see `db::writes`) at the backup, at
//! the marks an upgrade left around each restart, and now. What the new version wrote while it
//! started (its migrations, between a `before_restart` mark and the `after_start` mark that
//! follows it) is the upgrade's own, undone on purpose, and not counted.
use std::collections::BTreeMap;

use serde::Serialize;

use super::BackupDb;
use crate::db::DbProbe;
use crate::db::writes::{Change, Writes, between};

/// Rows a restore takes away: written since the backup, kept aside but no longer in the app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Loss {
    pub table: String,
    pub rows_in_backup: u64,
    pub rows_now: u64,
    /// Rows written since the backup, counted (PostgreSQL); None where only a digest (MySQL,
    /// SQLite) or the row counts tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inserted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<u64>,
    /// The table's content changed in a way that cannot be counted (a digest changed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub edited: bool,
}

impl Loss {
    /// Rows more now than in the backup.
    pub fn rows(&self) -> u64 {
        self.rows_now.saturating_sub(self.rows_in_backup)
    }

    /// "1 updated row in issues", "2 inserted rows and 1 deleted row in notes", "changes to
    /// users (hoist cannot count the rows)", "3 rows in issues".
    pub fn words(&self) -> String {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        let counted: Vec<(u64, &str)> = [
            ("inserted", self.inserted),
            ("updated", self.updated),
            ("deleted", self.deleted),
        ]
        .iter()
        .filter_map(|(what, n)| n.filter(|n| *n > 0).map(|n| (n, *what)))
        .collect();
        if let Some((last_n, _)) = counted.last() {
            // "1 updated row", "2 inserted and 1 deleted row", "1 inserted, 1 updated and 3 deleted rows"
            let parts: Vec<String> = counted
                .iter()
                .map(|(n, what)| format!("{n} {what}"))
                .collect();
            let list = match parts.as_slice() {
                [one] => one.clone(),
                [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
                [] => String::new(),
            };
            return format!("{list} row{} in {}", plural(*last_n), self.table);
        }
        if self.edited {
            let more = match self.rows() {
                0 => String::new(),
                n => format!("{n} more row{}; ", plural(n)),
            };
            return format!(
                "changes to {} ({more}hoist cannot count the edited rows)",
                self.table
            );
        }
        format!(
            "{} row{} in {}",
            self.rows(),
            plural(self.rows()),
            self.table
        )
    }
}

/// When a write mark was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Just before `up -d` of a release.
    BeforeRestart,
    /// Once that release started (ready, or failed).
    AfterStart,
}

impl Moment {
    pub fn parse(text: &str) -> Option<Moment> {
        match text {
            "before_restart" => Some(Moment::BeforeRestart),
            "after_start" => Some(Moment::AfterStart),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Moment::BeforeRestart => "before_restart",
            Moment::AfterStart => "after_start",
        }
    }
}

/// The database's write tally at a moment of the upgrade being undone (from the journal).
#[derive(Debug, Clone)]
pub struct Mark {
    pub moment: Moment,
    /// The release being started.
    pub hop: String,
    /// Err: why the database did not say.
    pub writes: Result<Writes, String>,
}

/// The tables that lose rows to a restore, and what cannot be counted (None: everything was).
pub(super) fn since_backup(
    backup: &BackupDb,
    marks: &[Mark],
    now: &DbProbe,
) -> (Vec<Loss>, Option<String>) {
    let mut points: Vec<(Option<Moment>, &Result<Writes, String>, String)> =
        vec![(None, &backup.writes, "the backup".to_string())];
    for m in marks {
        let label = match m.moment {
            Moment::BeforeRestart => format!("the restart to {}", m.hop),
            Moment::AfterStart => format!("{} started", m.hop),
        };
        points.push((Some(m.moment), &m.writes, label));
    }
    points.push((None, &now.writes, "now".to_string()));

    let mut counted: BTreeMap<String, Loss> = BTreeMap::new();
    let mut unknown: Vec<String> = Vec::new();
    for pair in points.windows(2) {
        let ((from_moment, from, from_label), (to_moment, to, to_label)) = (&pair[0], &pair[1]);
        // The new version starting: its migrations' writes are the upgrade's own.
        if *from_moment == Some(Moment::BeforeRestart) && *to_moment == Some(Moment::AfterStart) {
            continue;
        }
        let window = format!("between {from_label} and {to_label}");
        let changes = match (from, to) {
            (Ok(a), Ok(b)) => between(a, b),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        };
        match changes {
            Ok(changes) => {
                for (table, change) in changes {
                    let loss = counted.entry(table.clone()).or_insert_with(|| Loss {
                        table,
                        ..Loss::default()
                    });
                    match change {
                        Change::Counted {
                            inserted,
                            updated,
                            deleted,
                        } => {
                            let add = |sum: &mut Option<u64>, n: u64| {
                                *sum = Some(sum.unwrap_or(0) + n);
                            };
                            add(&mut loss.inserted, inserted);
                            add(&mut loss.updated, updated);
                            add(&mut loss.deleted, deleted);
                        }
                        Change::Changed => loss.edited = true,
                    }
                }
            }
            Err(why) => unknown.push(format!("{why} ({window})")),
        }
    }

    let rows_in_backup = |table: &str| {
        backup
            .tables
            .iter()
            .find(|(name, _)| name == table)
            .map_or(0, |(_, rows)| *rows)
    };
    let rows_now = |table: &str| {
        now.tables
            .iter()
            .find(|t| t.name == table)
            .map_or(0, |t| t.rows)
    };
    let mut losses: Vec<Loss> = counted
        .into_values()
        .map(|mut l| {
            l.rows_in_backup = rows_in_backup(&l.table);
            l.rows_now = rows_now(&l.table);
            l
        })
        .collect();
    if unknown.is_empty() {
        return (losses, None);
    }
    // A database that never keeps a tally (SurrealDB, kind command): said once, not per window.
    if let Err(never) = &now.writes
        && unknown.len() > 1
    {
        unknown = vec![never.clone()];
    }
    // Where the tallies do not reach, the row counts still say something.
    for t in &now.tables {
        let before = rows_in_backup(&t.name);
        if t.rows > before && !losses.iter().any(|l| l.table == t.name) {
            losses.push(Loss {
                table: t.name.clone(),
                rows_in_backup: before,
                rows_now: t.rows,
                ..Loss::default()
            });
        }
    }
    losses.sort_by(|a, b| a.table.cmp(&b.table));
    (
        losses,
        Some(format!(
            "rows updated or deleted since the backup cannot all be counted, so the restore may take away more than the row counts show: {}",
            unknown.join("; ")
        )),
    )
}
