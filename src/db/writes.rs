//! What changes with every write, per table, so that a rollback can say what a restore takes
//! away beyond row counts (an UPDATE, or a DELETE plus an INSERT, leaves the counts as they were).
//!
//! - PostgreSQL: the cumulative insert, update and delete counters of `pg_stat_user_tables`.
//!   They count every row written (an aborted transaction's too), cost one catalog query, and
//!   survive a clean restart of the server (the statistics are saved at shutdown); a crash or
//!   `pg_stat_reset()` zeroes them, which shows as a counter lower than before, or as a new
//!   reset time, and is then said, never taken for "nothing written".
//! - MySQL/MariaDB: no counter that every server keeps (performance_schema is off by default
//!   on MariaDB, and its counters restart with the server), so a digest of every row: the sum
//!   of each row's MD5, computed by the server in one scan. It says that a table changed, not how.
//! - SQLite: the same digest, computed here from each row's `quote()`d values, streamed.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::conn::Conn;
use super::{Column, DbError, DbKind, Table};

/// One reading of every table's write tally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writes {
    /// PostgreSQL: when the statistics were last reset (`pg_stat_database.stats_reset`), so
    /// that a reset between two readings is seen even where no counter went down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_reset: Option<String>,
    pub tables: Vec<TableWrites>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableWrites {
    pub name: String,
    #[serde(flatten)]
    pub tally: Tally,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tally", rename_all = "snake_case")]
pub enum Tally {
    /// Rows written since the statistics began (PostgreSQL).
    Counters {
        inserted: u64,
        updated: u64,
        deleted: u64,
    },
    /// The table's rows and a digest of their content (MySQL/MariaDB, SQLite).
    Digest { rows: u64, digest: String },
}

/// What changed in one table between two readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "seen", rename_all = "snake_case")]
pub enum Change {
    /// Rows inserted, updated and deleted, counted.
    Counted {
        inserted: u64,
        updated: u64,
        deleted: u64,
    },
    /// The content changed; how many rows, the digest cannot tell.
    Changed,
}

/// The tables whose tally moved from `earlier` to `later`, sorted by name; tables new since
/// count from nothing. Err: the two readings cannot be compared, and why (a reset).
pub fn between(earlier: &Writes, later: &Writes) -> Result<Vec<(String, Change)>, String> {
    if earlier.stats_reset != later.stats_reset {
        return Err(
            "the database's write statistics were reset between the two readings".to_string(),
        );
    }
    let mut changes = Vec::new();
    for table in &later.tables {
        let before = earlier.tables.iter().find(|t| t.name == table.name);
        let change = match (&table.tally, before.map(|t| &t.tally)) {
            (
                Tally::Counters {
                    inserted,
                    updated,
                    deleted,
                },
                before,
            ) => {
                let (i0, u0, d0) = match before {
                    None => (0, 0, 0),
                    Some(Tally::Counters {
                        inserted,
                        updated,
                        deleted,
                    }) => (*inserted, *updated, *deleted),
                    Some(Tally::Digest { .. }) => {
                        return Err("the two readings are of different kinds".to_string());
                    }
                };
                if *inserted < i0 || *updated < u0 || *deleted < d0 {
                    return Err(format!(
                        "the database's write counters went down (table {}): the database was restored or re-created since (a rollback or a restore does that), or its server crashed, or someone reset them",
                        table.name
                    ));
                }
                let counted = (inserted - i0, updated - u0, deleted - d0);
                (counted != (0, 0, 0)).then_some(Change::Counted {
                    inserted: counted.0,
                    updated: counted.1,
                    deleted: counted.2,
                })
            }
            (Tally::Digest { rows, digest }, before) => {
                let same = match before {
                    None => *rows == 0,
                    Some(Tally::Digest {
                        rows: r0,
                        digest: d0,
                    }) => rows == r0 && digest == d0,
                    Some(Tally::Counters { .. }) => {
                        return Err("the two readings are of different kinds".to_string());
                    }
                };
                (!same).then_some(Change::Changed)
            }
        };
        if let Some(change) = change {
            changes.push((table.name.clone(), change));
        }
    }
    changes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(changes)
}

/// Reads every table's tally. `tables` and `columns` are the catalog's; `default_schema` is
/// left out of names, as the row counts name them.
pub(super) async fn read(
    conn: &mut Conn,
    kind: DbKind,
    tables: &[Table],
    columns: &[Column],
    default_schema: Option<&str>,
) -> Result<Writes, DbError> {
    let name = |t: &Table| match default_schema {
        Some(d) if d != t.schema => format!("{}.{}", t.schema, t.name),
        _ => t.name.clone(),
    };
    let mut out = Vec::with_capacity(tables.len());
    let mut stats_reset = None;
    match kind {
        // No catalog, so no tables: nothing is counted.
        DbKind::Command | DbKind::Surrealdb => {}
        DbKind::Postgres => {
            stats_reset = conn
                .scalar(
                    "SELECT CAST(stats_reset AS text) FROM pg_catalog.pg_stat_database \
                     WHERE datname = current_database()",
                )
                .await?;
            // A partition's writes are counted on the partition: summed into its root table,
            // which is how the row counts name them.
            let rows = conn
                .rows(
                    "SELECT CAST(n.nspname AS text), CAST(c.relname AS text), \
                     CAST(sum(s.n_tup_ins) AS text), CAST(sum(s.n_tup_upd) AS text), CAST(sum(s.n_tup_del) AS text) \
                     FROM pg_catalog.pg_stat_user_tables s \
                     JOIN pg_catalog.pg_class c ON c.oid = COALESCE(pg_catalog.pg_partition_root(s.relid), s.relid) \
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     GROUP BY 1, 2",
                )
                .await?;
            for row in rows {
                let mut r = row.into_iter().map(Option::unwrap_or_default);
                let table = Table {
                    schema: r.next().unwrap_or_default(),
                    name: r.next().unwrap_or_default(),
                };
                let mut n = || super::parse_u64(r.next());
                let (inserted, updated, deleted) = (n(), n(), n());
                if tables.contains(&table) {
                    out.push(TableWrites {
                        name: name(&table),
                        tally: Tally::Counters {
                            inserted,
                            updated,
                            deleted,
                        },
                    });
                }
            }
        }
        DbKind::Mysql => {
            for table in tables {
                let values = row_text(conn, kind, table, columns);
                let sql = format!(
                    "SELECT CAST(COUNT(*) AS CHAR), CAST(COALESCE(SUM(CAST(CONV(SUBSTR(MD5({values}), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) FROM {}",
                    conn.table(&table.schema, &table.name)
                );
                let row = conn.first_row(&sql).await?;
                let mut r = row.into_iter();
                out.push(TableWrites {
                    name: name(table),
                    tally: Tally::Digest {
                        rows: super::parse_u64(r.next().flatten()),
                        digest: r.next().flatten().unwrap_or_default(),
                    },
                });
            }
        }
        DbKind::Sqlite => {
            for table in tables {
                let sql = format!(
                    "SELECT {} FROM {}",
                    row_text(conn, kind, table, columns),
                    conn.table(&table.schema, &table.name)
                );
                // Order-free: the wrapping sum of each row's hash, so a VACUUM that reorders
                // rows changes nothing, and two equal rows do not cancel out.
                let (mut rows, mut sum) = (0u64, 0u64);
                conn.each_text(&sql, |value| {
                    let hash = Sha256::digest(value.unwrap_or_default().as_bytes());
                    let mut first = [0u8; 8];
                    first.copy_from_slice(&hash[..8]);
                    sum = sum.wrapping_add(u64::from_be_bytes(first));
                    rows += 1;
                })
                .await?;
                out.push(TableWrites {
                    name: name(table),
                    tally: Tally::Digest {
                        rows,
                        digest: format!("{sum:016x}"),
                    },
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Writes {
        stats_reset,
        tables: out,
    })
}

#[cfg(test)]
impl Writes {
    /// PostgreSQL-like counters: (table, inserted, updated, deleted), for tests.
    pub(crate) fn counted(tables: &[(&str, u64, u64, u64)]) -> Writes {
        Writes {
            stats_reset: None,
            tables: tables
                .iter()
                .map(|(n, i, u, d)| TableWrites {
                    name: n.to_string(),
                    tally: Tally::Counters {
                        inserted: *i,
                        updated: *u,
                        deleted: *d,
                    },
                })
                .collect(),
        }
    }
}

/// One row of `table` as one text value: each column quoted (so NULL, '' and 'NULL' differ),
/// joined with commas.
fn row_text(conn: &Conn, kind: DbKind, table: &Table, columns: &[Column]) -> String {
    let quoted: Vec<String> = columns
        .iter()
        .filter(|c| c.schema == table.schema && c.table == table.name)
        .map(|c| format!("QUOTE({})", conn.ident(&c.name)))
        .collect();
    if quoted.is_empty() {
        return "''".to_string();
    }
    match kind {
        DbKind::Mysql => format!("CONCAT_WS(',', {})", quoted.join(", ")),
        _ => quoted.join(" || ',' || "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(tables: &[(&str, u64, &str)]) -> Writes {
        Writes {
            stats_reset: None,
            tables: tables
                .iter()
                .map(|(n, rows, d)| TableWrites {
                    name: n.to_string(),
                    tally: Tally::Digest {
                        rows: *rows,
                        digest: d.to_string(),
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn counters_give_what_was_written_in_each_table() {
        let a = Writes::counted(&[("issues", 40, 3, 0), ("users", 3, 0, 0)]);
        let b = Writes::counted(&[("issues", 41, 4, 1), ("users", 3, 0, 0), ("notes", 2, 0, 0)]);
        assert_eq!(
            between(&a, &b),
            Ok(vec![
                (
                    "issues".to_string(),
                    Change::Counted {
                        inserted: 1,
                        updated: 1,
                        deleted: 1
                    }
                ),
                (
                    "notes".to_string(),
                    Change::Counted {
                        inserted: 2,
                        updated: 0,
                        deleted: 0
                    }
                ),
            ])
        );
        assert_eq!(between(&a, &a), Ok(Vec::new()));
    }

    #[test]
    fn a_reset_is_said_never_taken_for_nothing_written() {
        let a = Writes::counted(&[("issues", 40, 3, 0)]);
        let b = Writes::counted(&[("issues", 1, 0, 0)]);
        assert!(between(&a, &b).unwrap_err().contains("reset"));
        let mut c = a.clone();
        c.stats_reset = Some("2026-12-02 10:00:00+00".into());
        assert!(between(&a, &c).unwrap_err().contains("reset"));
        assert!(between(&a, &digests(&[("issues", 40, "x")])).is_err());
    }

    #[test]
    fn a_digest_says_changed_without_a_count() {
        let a = digests(&[("issues", 40, "aa"), ("users", 3, "bb")]);
        let b = digests(&[("issues", 40, "ac"), ("users", 3, "bb"), ("empty", 0, "0")]);
        assert_eq!(
            between(&a, &b),
            Ok(vec![("issues".to_string(), Change::Changed)])
        );
    }
}
