//! Database probes against real databases: SQLite files, and PostgreSQL and MariaDB servers in
//! containers of the test bed. Each migration framework's own table shape, as it writes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use hoist::db::{self, DbError, DbKind, DbTarget, MigrationFramework, Secret};
use sqlx::Connection;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Each framework's table as the framework creates it, with two applied migrations.
fn framework_sql(framework: MigrationFramework) -> &'static [&'static str] {
    match framework {
        MigrationFramework::Alembic => &[
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
            "INSERT INTO alembic_version VALUES ('0021')",
        ],
        MigrationFramework::Sqlx => &[
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB, execution_time BIGINT NOT NULL)",
            "INSERT INTO _sqlx_migrations (version, description, success, execution_time) VALUES (20240101000000, 'init', TRUE, 1), (20240202000000, 'more', TRUE, 1)",
        ],
        MigrationFramework::Django => &[
            "CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, app VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, applied TIMESTAMP)",
            "INSERT INTO django_migrations (id, app, name) VALUES (1, 'contenttypes', '0001_initial'), (2, 'blog', '0002_add_tags')",
        ],
        MigrationFramework::Rails => &[
            "CREATE TABLE schema_migrations (version VARCHAR(255) NOT NULL PRIMARY KEY)",
            "INSERT INTO schema_migrations VALUES ('20240101120000'), ('20240301090000')",
        ],
        MigrationFramework::GolangMigrate => &[
            "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)",
            "INSERT INTO schema_migrations VALUES (7, FALSE)",
        ],
        MigrationFramework::Flyway => &[
            "CREATE TABLE flyway_schema_history (installed_rank INT PRIMARY KEY, version VARCHAR(50), description VARCHAR(200), success BOOLEAN NOT NULL)",
            "INSERT INTO flyway_schema_history VALUES (1, '1', 'init', TRUE), (2, '1.1', 'more', TRUE), (3, '1.2', 'broken', FALSE)",
        ],
        _ => &[],
    }
}

/// (framework, expected revision, applied, dirty)
const EXPECTED: [(MigrationFramework, &str, u64, bool); 6] = [
    (MigrationFramework::Alembic, "0021", 1, false),
    (MigrationFramework::Sqlx, "20240202000000", 2, false),
    (MigrationFramework::Django, "blog.0002_add_tags", 2, false),
    (MigrationFramework::Rails, "20240301090000", 2, false),
    (MigrationFramework::GolangMigrate, "7", 1, false),
    (MigrationFramework::Flyway, "1.1", 2, true),
];

const APP_TABLES: [&str; 2] = [
    "CREATE TABLE issues (id INTEGER PRIMARY KEY, title VARCHAR(200) NOT NULL)",
    "INSERT INTO issues (id, title) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
];

fn assert_probe(
    probe: &db::DbProbe,
    framework: MigrationFramework,
    revision: &str,
    applied: u64,
    dirty: bool,
) {
    let m = probe
        .migrations
        .as_ref()
        .unwrap_or_else(|| panic!("{framework:?}: no migrations found"));
    assert_eq!(m.framework, framework);
    assert_eq!(m.revision, revision, "{framework:?}");
    assert_eq!(m.applied, applied, "{framework:?}");
    assert_eq!(m.dirty, dirty, "{framework:?}");
    let issues = probe.tables.iter().find(|t| t.name == "issues").unwrap();
    assert_eq!(issues.rows, 3);
    assert_eq!(probe.fingerprint.len(), 64);
}

#[tokio::test]
async fn sqlite_every_framework_and_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    for (framework, revision, applied, dirty) in EXPECTED {
        let path = dir.path().join(format!("{}.db", framework.name()));
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        for sql in framework_sql(framework).iter().chain(APP_TABLES.iter()) {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let target = DbTarget {
            kind: DbKind::Sqlite,
            host: String::new(),
            port: 0,
            user: String::new(),
            password: Secret::default(),
            database: String::new(),
            sqlite_path: Some(path.clone()),
        };
        let before = db::probe(&target, TIMEOUT).await.unwrap();
        assert_probe(&before, framework, revision, applied, dirty);

        sqlx::query("INSERT INTO issues (id, title) VALUES (4, 'd')")
            .execute(&mut conn)
            .await
            .unwrap();
        let more_rows = db::probe(&target, TIMEOUT).await.unwrap();
        assert_eq!(
            more_rows.fingerprint, before.fingerprint,
            "rows are not schema"
        );
        sqlx::query("ALTER TABLE issues ADD COLUMN body TEXT")
            .execute(&mut conn)
            .await
            .unwrap();
        let altered = db::probe(&target, TIMEOUT).await.unwrap();
        assert_ne!(
            altered.fingerprint, before.fingerprint,
            "a new column is a schema change"
        );
        conn.close().await.unwrap();
    }
}

#[tokio::test]
async fn sqlite_without_a_migrations_table_still_has_a_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    for sql in APP_TABLES {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let target = DbTarget {
        kind: DbKind::Sqlite,
        host: String::new(),
        port: 0,
        user: String::new(),
        password: Secret::default(),
        database: String::new(),
        sqlite_path: Some(path),
    };
    let probe = db::probe(&target, TIMEOUT).await.unwrap();
    assert!(probe.migrations.is_none());
    assert_eq!(
        probe.tables,
        [db::TableRows {
            name: "issues".into(),
            rows: 3
        }]
    );
}

const PG_PASSWORD: &str = "pg-test-S3cret";

fn pg_target(ip: &str, database: &str, password: &str) -> DbTarget {
    DbTarget {
        kind: DbKind::Postgres,
        host: ip.to_string(),
        port: 5432,
        user: "hoist".into(),
        password: Secret::new(password),
        database: database.into(),
        sqlite_path: None,
    }
}

async fn pg_exec(ip: &str, database: &str, statements: &[&str]) {
    let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .host(ip)
        .username("hoist")
        .password(PG_PASSWORD)
        .database(database)
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
    for sql in statements {
        // The frameworks' SQL is portable but for BLOB, which PostgreSQL calls BYTEA.
        let sql = sql.replace("BLOB", "BYTEA");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn postgres_every_framework_counts_fingerprint_and_errors() {
    if !common::docker_available() {
        return;
    }
    let pg = common::DbContainer::start(
        "pg",
        "127.0.0.1:5000/postgres:15",
        &[
            ("POSTGRES_USER", "hoist"),
            ("POSTGRES_PASSWORD", PG_PASSWORD),
            ("POSTGRES_DB", "hoist"),
        ],
        &["pg_isready", "-h", "127.0.0.1", "-U", "hoist"],
    );
    for (framework, revision, applied, dirty) in EXPECTED {
        let database = format!("db_{}", framework.name().replace('-', "_"));
        pg_exec(&pg.ip, "hoist", &[&format!("CREATE DATABASE {database}")]).await;
        let mut statements: Vec<&str> = framework_sql(framework).to_vec();
        statements.extend(APP_TABLES);
        pg_exec(&pg.ip, &database, &statements).await;
        let target = pg_target(&pg.ip, &database, PG_PASSWORD);
        let before = db::probe(&target, TIMEOUT).await.unwrap();
        assert_probe(&before, framework, revision, applied, dirty);
        assert!(
            before.size_bytes > 1_000_000,
            "pg_database_size: {}",
            before.size_bytes
        );
        assert!(
            before.server_version.starts_with("15"),
            "{}",
            before.server_version
        );

        pg_exec(&pg.ip, &database, &["INSERT INTO issues VALUES (4, 'd')"]).await;
        assert_eq!(
            db::probe(&target, TIMEOUT).await.unwrap().fingerprint,
            before.fingerprint
        );
        pg_exec(
            &pg.ip,
            &database,
            &["ALTER TABLE issues ALTER COLUMN title TYPE text"],
        )
        .await;
        assert_ne!(
            db::probe(&target, TIMEOUT).await.unwrap().fingerprint,
            before.fingerprint,
            "a retyped column is a schema change"
        );
    }

    // A table outside the default schema is named with its schema.
    pg_exec(
        &pg.ip,
        "hoist",
        &[
            "CREATE SCHEMA audit",
            "CREATE TABLE audit.events (id int)",
            "INSERT INTO audit.events VALUES (1), (2)",
        ],
    )
    .await;
    let probe = db::probe(&pg_target(&pg.ip, "hoist", PG_PASSWORD), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        probe.tables,
        [db::TableRows {
            name: "audit.events".into(),
            rows: 2
        }]
    );
    assert!(probe.migrations.is_none());

    let wrong = db::probe(&pg_target(&pg.ip, "hoist", "not-the-password"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(wrong, DbError::Auth { .. }), "{wrong:?}");
    let text = wrong.to_string();
    assert!(
        text.contains("POSTGRES_PASSWORD") && !text.contains("not-the-password"),
        "{text}"
    );

    let missing = db::probe(&pg_target(&pg.ip, "nope", PG_PASSWORD), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(missing, DbError::NoDatabase { .. }), "{missing:?}");

    let mut closed = pg_target(&pg.ip, "hoist", PG_PASSWORD);
    closed.port = 1;
    let started = std::time::Instant::now();
    let refused = db::probe(&closed, Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, DbError::Connect { .. } | DbError::Timeout { .. }),
        "{refused:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!format!("{refused} {refused:?}").contains(PG_PASSWORD));
}

#[tokio::test]
async fn mariadb_frameworks_counts_and_auth() {
    if !common::docker_available() {
        return;
    }
    let maria = common::DbContainer::start(
        "maria",
        "127.0.0.1:5000/mariadb:10.11",
        &[
            ("MARIADB_ROOT_PASSWORD", "root-S3cret"),
            ("MARIADB_DATABASE", "app"),
            ("MARIADB_USER", "app"),
            ("MARIADB_PASSWORD", "app-S3cret"),
        ],
        &[
            "mariadb",
            "-uapp",
            "-papp-S3cret",
            "-h127.0.0.1",
            "app",
            "-e",
            "SELECT 1",
        ],
    );
    let target = |database: &str, password: &str| DbTarget {
        kind: DbKind::Mysql,
        host: maria.ip.clone(),
        port: 3306,
        user: "root".into(),
        password: Secret::new(password),
        database: database.into(),
        sqlite_path: None,
    };
    for (framework, revision, applied, dirty) in EXPECTED {
        let database = format!("db_{}", framework.name().replace('-', "_"));
        let options = sqlx::mysql::MySqlConnectOptions::new()
            .host(&maria.ip)
            .username("root")
            .password("root-S3cret")
            .ssl_mode(sqlx::mysql::MySqlSslMode::Disabled);
        let mut conn = sqlx::MySqlConnection::connect_with(&options).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("USE {database}")))
            .execute(&mut conn)
            .await
            .unwrap();
        for sql in framework_sql(framework).iter().chain(APP_TABLES.iter()) {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let before = db::probe(&target(&database, "root-S3cret"), TIMEOUT)
            .await
            .unwrap();
        assert_probe(&before, framework, revision, applied, dirty);
        sqlx::query("ALTER TABLE issues ADD COLUMN body TEXT")
            .execute(&mut conn)
            .await
            .unwrap();
        let after = db::probe(&target(&database, "root-S3cret"), TIMEOUT)
            .await
            .unwrap();
        assert_ne!(after.fingerprint, before.fingerprint);
        conn.close().await.unwrap();
    }
    let wrong = db::probe(&target("app", "wrong"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(wrong, DbError::Auth { .. }), "{wrong:?}");
}
