#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Database probes against real servers. The server comes from the environment:
//! `HOIST_TEST_PG` and `HOIST_TEST_MYSQL` = `host:port:user:password:db` (the user may create
//! databases). Without one, a container of the test bed is started when the bed is up; else the
//! test fails under `HOIST_REQUIRE_DOCKER=1` and skips, saying why, otherwise.
//! Each test works in its own database, created here and dropped at the end (pass or fail).
//! SQLite is covered by the unit tests in `src/db/tests.rs`.

mod common;
#[path = "../src/db/test_fixtures.rs"]
mod fixtures;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hoist::db::{self, DbError, DbKind, DbProbe, DbTarget, Secret};
use sqlx::Connection;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A database server the tests may create databases on.
struct Server {
    kind: DbKind,
    host: String,
    port: u16,
    user: String,
    password: String,
    /// A database that exists, to connect to for CREATE/DROP DATABASE.
    admin_db: String,
    /// The container started for it, removed when the server is dropped.
    _container: Option<common::DbContainer>,
}

impl Server {
    /// The server for `kind`, or None (after saying why) when the test must skip.
    fn get(kind: DbKind) -> Option<Server> {
        let var = match kind {
            DbKind::Postgres => "HOIST_TEST_PG",
            DbKind::Mysql => "HOIST_TEST_MYSQL",
            DbKind::Sqlite | DbKind::Command | DbKind::Surrealdb => {
                unreachable!("{kind:?} is not probed here")
            }
        };
        if let Ok(spec) = std::env::var(var) {
            return Some(Server::parse(kind, var, &spec));
        }
        if bed_is_up() {
            return Some(Server::container(kind));
        }
        let why = format!(
            "{var} is not set (host:port:user:password:db of a server where the user may create databases) and the test bed is not up (`sudo testbed/up.sh`)"
        );
        if std::env::var("HOIST_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("HOIST_REQUIRE_DOCKER=1 but {why}");
        }
        eprintln!("SKIPPED: {why}");
        None
    }

    /// `host:port:user:password:db`; the password may itself hold colons.
    fn parse(kind: DbKind, var: &str, spec: &str) -> Server {
        let bad = || panic!("{var} must be host:port:user:password:db");
        let mut head = spec.splitn(4, ':');
        let (Some(host), Some(port), Some(user), Some(rest)) =
            (head.next(), head.next(), head.next(), head.next())
        else {
            bad()
        };
        let Some((password, db)) = rest.rsplit_once(':') else {
            bad()
        };
        Server {
            kind,
            host: host.to_string(),
            port: port.parse().unwrap_or_else(|_| bad()),
            user: user.to_string(),
            password: password.to_string(),
            admin_db: db.to_string(),
            _container: None,
        }
    }

    fn container(kind: DbKind) -> Server {
        let (container, port, user, password, admin_db) = match kind {
            DbKind::Postgres => (
                common::DbContainer::start(
                    "pg",
                    "127.0.0.1:5000/postgres:15",
                    &[
                        ("POSTGRES_USER", "hoist"),
                        ("POSTGRES_PASSWORD", "pg-test-S3cret"),
                        ("POSTGRES_DB", "hoist"),
                    ],
                    &["pg_isready", "-h", "127.0.0.1", "-U", "hoist"],
                ),
                5432,
                "hoist",
                "pg-test-S3cret",
                "hoist",
            ),
            _ => (
                common::DbContainer::start(
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
                        // Over TCP, as the app's user: ready only once the final server is up
                        // (root may not log in from 127.0.0.1 in this image).
                        "-uapp",
                        "-papp-S3cret",
                        "-h127.0.0.1",
                        "app",
                        "-e",
                        "SELECT 1",
                    ],
                ),
                3306,
                "root",
                "root-S3cret",
                "app",
            ),
        };
        Server {
            kind,
            host: container.ip.clone(),
            port,
            user: user.to_string(),
            password: password.to_string(),
            admin_db: admin_db.to_string(),
            _container: Some(container),
        }
    }

    fn target(&self, database: &str) -> DbTarget {
        DbTarget {
            kind: self.kind,
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: Secret::new(&self.password),
            database: database.to_string(),
            sqlite_path: None,
        }
    }

    /// A new, uniquely named, empty database, dropped with the returned guard.
    async fn fresh_db(&self) -> TestDb<'_> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "hoist_t_{}_{}_{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        self.exec(&self.admin_db, &[&format!("CREATE DATABASE {name}")])
            .await;
        TestDb { server: self, name }
    }

    /// Runs statements as the test's user (not through hoist, which only reads).
    async fn exec(&self, database: &str, statements: &[&str]) {
        match self.kind {
            DbKind::Postgres => {
                let mut conn = self.pg(database).await;
                for sql in statements {
                    // The fixtures are portable but for BLOB, which PostgreSQL calls BYTEA.
                    let sql = sql.replace("BLOB", "BYTEA");
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                        .execute(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
                conn.close().await.unwrap();
            }
            _ => {
                let mut conn = self.mysql(database).await;
                for sql in statements {
                    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                        .execute(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
                conn.close().await.unwrap();
            }
        }
    }

    async fn pg(&self, database: &str) -> sqlx::PgConnection {
        let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(&self.password)
            .database(database)
            .ssl_mode(sqlx::postgres::PgSslMode::Disable);
        sqlx::PgConnection::connect_with(&options).await.unwrap()
    }

    async fn mysql(&self, database: &str) -> sqlx::MySqlConnection {
        let options = sqlx::mysql::MySqlConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(&self.password)
            .database(database)
            .ssl_mode(sqlx::mysql::MySqlSslMode::Disabled);
        sqlx::MySqlConnection::connect_with(&options).await.unwrap()
    }
}

/// A test's own database; dropped when the guard is, even when the test panics.
struct TestDb<'a> {
    server: &'a Server,
    name: String,
}

impl TestDb<'_> {
    fn target(&self) -> DbTarget {
        self.server.target(&self.name)
    }

    async fn exec(&self, statements: &[&str]) {
        self.server.exec(&self.name, statements).await;
    }

    async fn probe(&self) -> DbProbe {
        db::probe(&self.target(), TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("probe of {}: {e}", self.name))
    }
}

impl Drop for TestDb<'_> {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let sql = match self.server.kind {
            DbKind::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        let server = self.server;
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(server.exec(&server.admin_db, &[&sql]));
            });
        });
    }
}

/// Docker and the bed's registry, checked without failing (the caller decides).
fn bed_is_up() -> bool {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    engine
        && std::net::TcpStream::connect_timeout(
            &"127.0.0.1:5000".parse().unwrap(),
            Duration::from_secs(2),
        )
        .is_ok()
}

fn rows_of(probe: &DbProbe, table: &str) -> u64 {
    probe
        .tables
        .iter()
        .find(|t| t.name == table)
        .unwrap_or_else(|| panic!("no table {table} in {:?}", probe.tables))
        .rows
}

/// Every framework's table: framework, revision, applied, dirty; and the app's table counted.
async fn every_framework(server: &Server) {
    for f in fixtures::FIXTURES {
        let db = server.fresh_db().await;
        db.exec(f.statements).await;
        db.exec(fixtures::APP_TABLE).await;
        let probe = db.probe().await;
        let m = probe
            .migrations
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no migrations found", f.framework));
        assert_eq!(m.framework.name(), f.framework);
        assert_eq!(m.revision, f.revision, "{}", f.framework);
        assert_eq!(m.applied, f.applied, "{}", f.framework);
        assert_eq!(m.dirty, f.dirty, "{}", f.framework);
        assert_eq!(rows_of(&probe, "issues"), 3);
        assert!(probe.size_bytes > 0);
        assert!(!probe.server_version.is_empty());
    }
}

/// Rows change counts, not the fingerprint; added, retyped, re-nulled columns change it.
async fn fingerprint_and_counts(server: &Server, widen: &str, not_null: &str) {
    let db = server.fresh_db().await;
    db.exec(fixtures::APP_TABLE).await;
    let before = db.probe().await;
    assert!(before.migrations.is_none());
    assert_eq!(
        before.tables,
        [db::TableRows {
            name: "issues".into(),
            rows: 3
        }]
    );

    db.exec(&[
        "INSERT INTO issues (id, title) VALUES (4, 'd')",
        "DELETE FROM issues WHERE id = 1",
    ])
    .await;
    db.exec(&["INSERT INTO issues (id, title) VALUES (5, 'e')"])
        .await;
    let more_rows = db.probe().await;
    assert_eq!(rows_of(&more_rows, "issues"), 4);
    assert_eq!(
        more_rows.fingerprint, before.fingerprint,
        "rows are not schema"
    );

    db.exec(&["ALTER TABLE issues ADD COLUMN body TEXT"]).await;
    let added = db.probe().await;
    assert_ne!(added.fingerprint, before.fingerprint, "an added column");

    db.exec(&["ALTER TABLE issues DROP COLUMN body"]).await;
    assert_eq!(
        db.probe().await.fingerprint,
        before.fingerprint,
        "dropped again"
    );

    db.exec(&[widen]).await;
    let widened = db.probe().await;
    assert_ne!(widened.fingerprint, before.fingerprint, "a retyped column");

    db.exec(&[not_null]).await;
    let nulls = db.probe().await;
    assert_ne!(nulls.fingerprint, widened.fingerprint, "nullability");

    db.exec(&["CREATE TABLE tags (id INTEGER PRIMARY KEY)"])
        .await;
    let tagged = db.probe().await;
    assert_ne!(tagged.fingerprint, nulls.fingerprint, "a new table");
    let names: Vec<&str> = tagged.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["issues", "tags"]);
}

/// The changes since `before`, once the statistics show any (within 5 s).
async fn changes_after(
    db: &TestDb<'_>,
    before: &hoist::db::Writes,
    expect: &str,
) -> (hoist::db::Writes, Vec<(String, hoist::db::writes::Change)>) {
    for _ in 0..50 {
        let now = db.probe().await.writes.expect("the write tally is read");
        let changes = hoist::db::writes::between(before, &now).expect("comparable");
        if !changes.is_empty() {
            return (now, changes);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{expect}: no change seen in 5 s");
}

/// Every write shows in the tally: an UPDATE that leaves the counts as they were, a DELETE
/// plus an INSERT. PostgreSQL counts them (its statistics reach readers within about a second
/// of the writer's commit, so the test waits for them); MySQL/MariaDB says the table changed.
async fn writes_see_every_write(server: &Server) {
    use hoist::db::writes::{Change, between};
    let db = server.fresh_db().await;
    db.exec(fixtures::APP_TABLE).await;
    let settled = |p: &DbProbe| p.writes.clone().expect("the write tally is read");
    let mut before = settled(&db.probe().await);
    // Wait for the fixture's own inserts to reach the statistics.
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let again = settled(&db.probe().await);
        if again == before {
            break;
        }
        before = again;
    }
    assert_eq!(
        between(&before, &settled(&db.probe().await)),
        Ok(Vec::new())
    );

    db.exec(&["UPDATE issues SET title = 'edited' WHERE id = 2"])
        .await;
    let (after_update, changes) = changes_after(&db, &before, "an update").await;
    let expected = match server.kind {
        DbKind::Postgres => Change::Counted {
            inserted: 0,
            updated: 1,
            deleted: 0,
        },
        _ => Change::Changed,
    };
    assert_eq!(changes, vec![("issues".to_string(), expected)]);
    assert_eq!(rows_of(&db.probe().await, "issues"), 3, "counts unchanged");

    db.exec(&[
        "DELETE FROM issues WHERE id = 3",
        "INSERT INTO issues (id, title) VALUES (9, 'replaced')",
    ])
    .await;
    let (_, changes) = changes_after(&db, &after_update, "a delete and an insert").await;
    let expected = match server.kind {
        DbKind::Postgres => Change::Counted {
            inserted: 1,
            updated: 0,
            deleted: 1,
        },
        _ => Change::Changed,
    };
    assert_eq!(changes, vec![("issues".to_string(), expected)]);
}

/// The wrong password: the authentication sentence, naming the variables, without any password.
async fn wrong_password(server: &Server, variable: &str) {
    let mut target = server.target(&server.admin_db);
    target.password = Secret::new("Wr0ng-pass-XYZ");
    let err = db::probe(&target, TIMEOUT).await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, DbError::Auth { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains(variable), "{text}");
    assert!(!text.contains("Wr0ng-pass-XYZ"), "{text}");
    assert!(!text.contains(&server.password), "{text}");
}

async fn missing_database(server: &Server) {
    let err = db::probe(&server.target("hoist_no_such_db"), TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::NoDatabase { .. }), "{err:?}");
    assert!(err.to_string().contains("hoist_no_such_db"), "{err}");
}

/// Nothing listens: the connect sentence, with the address, well within the timeout.
async fn unreachable_port(server: &Server) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut target = server.target(&server.admin_db);
    target.host = "127.0.0.1".into();
    target.port = port;
    let timeout = Duration::from_secs(3);
    let started = Instant::now();
    let err = db::probe(&target, timeout).await.unwrap_err();
    eprintln!("{err}");
    assert!(started.elapsed() < timeout + Duration::from_secs(1));
    assert!(matches!(err, DbError::Connect { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains(&server.password), "{text}");
}

/// A table locked by a migration: the probe gives up after its timeout, and says so.
async fn locked_table_times_out(server: &Server, db: &TestDb<'_>) {
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = db::probe(&db.target(), timeout).await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, DbError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < timeout * 2 + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!format!("{err} {err:?}").contains(&server.password));
}

#[tokio::test]
async fn postgres_every_framework() {
    let Some(server) = Server::get(DbKind::Postgres) else {
        return;
    };
    every_framework(&server).await;
}

#[tokio::test]
async fn postgres_fingerprint_and_counts() {
    let Some(server) = Server::get(DbKind::Postgres) else {
        return;
    };
    fingerprint_and_counts(
        &server,
        "ALTER TABLE issues ALTER COLUMN title TYPE VARCHAR(300)",
        "ALTER TABLE issues ALTER COLUMN title DROP NOT NULL",
    )
    .await;
}

#[tokio::test]
async fn postgres_schemas_qualify_names_and_count_in_the_fingerprint() {
    let Some(server) = Server::get(DbKind::Postgres) else {
        return;
    };
    let db = server.fresh_db().await;
    db.exec(fixtures::APP_TABLE).await;
    let before = db.probe().await;
    db.exec(&[
        "CREATE SCHEMA audit",
        "CREATE TABLE audit.events (id int)",
        "INSERT INTO audit.events VALUES (1), (2)",
        "CREATE TABLE \"Odd \"\"name\" (x int)",
        "CREATE VIEW open_issues AS SELECT * FROM issues",
    ])
    .await;
    let probe = db.probe().await;
    assert_eq!(
        probe.tables,
        [
            db::TableRows {
                name: "Odd \"name".into(),
                rows: 0
            },
            db::TableRows {
                name: "audit.events".into(),
                rows: 2
            },
            db::TableRows {
                name: "issues".into(),
                rows: 3
            },
        ]
    );
    assert_ne!(probe.fingerprint, before.fingerprint);
    // A framework's table in another schema is still found.
    db.exec(&[
        "CREATE SCHEMA app",
        "CREATE TABLE app.alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
        "INSERT INTO app.alembic_version VALUES ('abc123')",
    ])
    .await;
    let m = db.probe().await.migrations.unwrap();
    assert_eq!(
        (m.framework.name(), m.revision.as_str()),
        ("alembic", "abc123")
    );
}

#[tokio::test]
async fn postgres_errors_say_what_happened_without_the_password() {
    let Some(server) = Server::get(DbKind::Postgres) else {
        return;
    };
    wrong_password(&server, "POSTGRES_PASSWORD").await;
    missing_database(&server).await;
    unreachable_port(&server).await;
}

#[tokio::test]
async fn postgres_a_locked_table_times_out() {
    let Some(server) = Server::get(DbKind::Postgres) else {
        return;
    };
    let db = server.fresh_db().await;
    db.exec(fixtures::APP_TABLE).await;
    let mut locker = server.pg(&db.name).await;
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE issues IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    locked_table_times_out(&server, &db).await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    locker.close().await.unwrap();
}

#[tokio::test]
async fn mysql_every_framework() {
    let Some(server) = Server::get(DbKind::Mysql) else {
        return;
    };
    every_framework(&server).await;
}

#[tokio::test]
async fn mysql_fingerprint_and_counts() {
    let Some(server) = Server::get(DbKind::Mysql) else {
        return;
    };
    fingerprint_and_counts(
        &server,
        "ALTER TABLE issues MODIFY COLUMN title VARCHAR(300) NOT NULL",
        "ALTER TABLE issues MODIFY COLUMN title VARCHAR(300) NULL",
    )
    .await;
}

#[tokio::test]
async fn mysql_errors_say_what_happened_without_the_password() {
    let Some(server) = Server::get(DbKind::Mysql) else {
        return;
    };
    wrong_password(&server, "MYSQL_PASSWORD").await;
    missing_database(&server).await;
    unreachable_port(&server).await;
}

#[tokio::test]
async fn mysql_a_locked_table_times_out() {
    let Some(server) = Server::get(DbKind::Mysql) else {
        return;
    };
    let db = server.fresh_db().await;
    db.exec(fixtures::APP_TABLE).await;
    let mut locker = server.mysql(&db.name).await;
    sqlx::query("LOCK TABLES issues WRITE")
        .execute(&mut locker)
        .await
        .unwrap();
    locked_table_times_out(&server, &db).await;
    sqlx::query("UNLOCK TABLES")
        .execute(&mut locker)
        .await
        .unwrap();
    locker.close().await.unwrap();
}

#[tokio::test]
async fn postgres_writes_see_every_write() {
    let Some(server) = Server::get(DbKind::Postgres) else {
        return;
    };
    writes_see_every_write(&server).await;
}

#[tokio::test]
async fn mysql_writes_see_every_write() {
    let Some(server) = Server::get(DbKind::Mysql) else {
        return;
    };
    writes_see_every_write(&server).await;
}
