//! Probes of real SQLite files, one per framework's table shape.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Connection;

use super::test_fixtures::{APP_TABLE, FIXTURES};
use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);

fn sqlite_target(path: &Path) -> DbTarget {
    DbTarget {
        kind: DbKind::Sqlite,
        host: String::new(),
        port: 0,
        user: String::new(),
        password: Secret::default(),
        database: String::new(),
        sqlite_path: Some(path.to_path_buf()),
    }
}

/// A writable connection to a new database file, with `statements` run.
async fn create(path: &Path, statements: &[&str]) -> sqlx::SqliteConnection {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    exec(&mut conn, statements).await;
    conn
}

async fn exec(conn: &mut sqlx::SqliteConnection, statements: &[&str]) {
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn rows_of(probe: &DbProbe, table: &str) -> u64 {
    probe
        .tables
        .iter()
        .find(|t| t.name == table)
        .unwrap_or_else(|| panic!("no table {table} in {:?}", probe.tables))
        .rows
}

#[tokio::test]
async fn every_framework_its_revision_counts_and_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    for (i, f) in FIXTURES.iter().enumerate() {
        let path = dir.path().join(format!("{i}-{}.db", f.framework));
        let mut conn = create(&path, f.statements).await;
        exec(&mut conn, APP_TABLE).await;
        let target = sqlite_target(&path);

        let before = probe(&target, TIMEOUT).await.unwrap();
        let m = before
            .migrations
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no migrations found", f.framework));
        assert_eq!(m.framework.name(), f.framework);
        assert_eq!(m.revision, f.revision, "{}", f.framework);
        assert_eq!(m.applied, f.applied, "{}", f.framework);
        assert_eq!(m.dirty, f.dirty, "{}", f.framework);
        assert_eq!(rows_of(&before, "issues"), 3);
        let names: Vec<&str> = before.tables.iter().map(|t| t.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "tables sorted by name");
        assert_eq!(before.fingerprint.len(), 64);
        assert!(
            before
                .fingerprint
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(before.server_version.starts_with('3'));

        exec(
            &mut conn,
            &["INSERT INTO issues (id, title) VALUES (4, 'd')"],
        )
        .await;
        let more_rows = probe(&target, TIMEOUT).await.unwrap();
        assert_eq!(rows_of(&more_rows, "issues"), 4);
        assert_eq!(
            more_rows.fingerprint, before.fingerprint,
            "rows are not schema"
        );

        exec(&mut conn, &["ALTER TABLE issues ADD COLUMN body TEXT"]).await;
        let added = probe(&target, TIMEOUT).await.unwrap();
        assert_ne!(added.fingerprint, before.fingerprint, "an added column");

        exec(&mut conn, &["ALTER TABLE issues DROP COLUMN body"]).await;
        let dropped = probe(&target, TIMEOUT).await.unwrap();
        assert_eq!(
            dropped.fingerprint, before.fingerprint,
            "the same columns again"
        );
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn no_migrations_table_still_counts_and_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let conn = create(
        &path,
        &[
            APP_TABLE[0],
            APP_TABLE[1],
            // Not Laravel's: no `batch`.
            "CREATE TABLE migrations (id INTEGER PRIMARY KEY, migration TEXT)",
            "CREATE TABLE \"we\"\"ird table\" (x INTEGER)",
            "INSERT INTO \"we\"\"ird table\" VALUES (1), (2)",
            "CREATE VIEW open_issues AS SELECT * FROM issues",
        ],
    )
    .await;
    conn.close().await.unwrap();
    let probe = probe(&sqlite_target(&path), TIMEOUT).await.unwrap();
    assert!(probe.migrations.is_none(), "{:?}", probe.migrations);
    assert_eq!(
        probe.tables,
        [
            TableRows {
                name: "issues".into(),
                rows: 3
            },
            TableRows {
                name: "migrations".into(),
                rows: 0
            },
            TableRows {
                name: "we\"ird table".into(),
                rows: 2
            },
        ]
    );
    assert_eq!(
        probe.size_bytes,
        std::fs::metadata(&path).unwrap().len(),
        "the file's size"
    );
}

#[tokio::test]
async fn the_probe_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    create(&path, APP_TABLE).await.close().await.unwrap();
    let before = std::fs::read(&path).unwrap();
    probe(&sqlite_target(&path), TIMEOUT).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names, [path], "no journal or WAL left beside it");
}

#[tokio::test]
async fn a_missing_file_is_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let err = probe(&sqlite_target(&path), TIMEOUT).await.unwrap_err();
    assert!(matches!(err, DbError::NoDatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.db"), "{err}");
    assert!(!path.exists(), "the probe must not create it");

    let mut no_path = sqlite_target(&path);
    no_path.sqlite_path = None;
    let err = probe(&no_path, TIMEOUT).await.unwrap_err();
    assert!(matches!(err, DbError::NoDatabase { .. }), "{err:?}");
}

#[test]
fn the_password_never_shows() {
    let target = DbTarget {
        kind: DbKind::Postgres,
        host: "db".into(),
        port: 5432,
        user: "app".into(),
        password: Secret::new("hunter2-S3cret"),
        database: "app".into(),
        sqlite_path: None,
    };
    let debug = format!("{target:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("***"), "{debug}");
}

#[test]
fn every_error_is_one_sentence_that_says_what_to_do() {
    let errors = [
        DbError::Connect {
            addr: "db:5432".into(),
            reason: "connection refused".into(),
        },
        DbError::Auth {
            addr: "db:5432".into(),
            user: "app".into(),
        },
        DbError::NoDatabase {
            addr: "db:5432".into(),
            name: "app".into(),
        },
        DbError::Timeout {
            addr: "db:5432".into(),
            after: Duration::from_millis(1500),
            what: "connecting".into(),
        },
        DbError::Query {
            addr: "db:5432".into(),
            what: "SELECT 1".into(),
            reason: "permission denied".into(),
        },
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.ends_with('.'), "{text}");
        assert!(text.contains("db:5432"), "{text}");
        assert!(text.contains("check"), "says what to do: {text}");
    }
}
