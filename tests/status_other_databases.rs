//! `hoist status` on stacks whose database is MariaDB or SQLite, end to end on the test bed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{TestStack, docker_available};

#[test]
fn a_mariadb_stack_is_detected_and_read() {
    if !docker_available() {
        return;
    }
    let stack = common::mariadb_stack("maria");
    let sql = "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('abc123'); CREATE TABLE notes (id INT); INSERT INTO notes VALUES (1),(2);";
    let password = format!("-p{}", common::MARIADB_APP_PASSWORD);
    common::docker_exec(
        &stack.container("db"),
        &[
            "mariadb",
            "-uapp",
            &password,
            "-h127.0.0.1",
            "app",
            "-e",
            sql,
        ],
    );

    let run = stack.hoist(&["status", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["version_variable"], "APP_VERSION");
    assert_eq!(s["pinned"], "0.1.10");
    let db = &s["database"];
    assert_eq!(db["kind"], "mysql", "{db}");
    assert_eq!(db["migrations"], "alembic");
    assert_eq!(db["revision"], "abc123");
    let notes = db["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "notes")
        .unwrap()
        .clone();
    assert_eq!(notes["rows"], 2);
    assert!(!run.stdout.contains("app-Pw-2"), "the password leaked");

    // Told it is PostgreSQL, hoist cannot read it, and asks the container what runs there.
    std::fs::write(
        stack.dir.join("hoist.yaml"),
        "database:\n  service: db\n  kind: postgres\n  user: app\n  password_variable: MARIADB_PASSWORD\n  name: app\n",
    )
    .unwrap();
    let wrong = stack.hoist(&["status", "--json"]);
    wrong.assert_no_panic();
    let error = wrong.summary()["database"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("but it runs MariaDB"), "{error}");
    assert!(error.contains("kind: mariadb"), "{error}");
}

#[test]
fn an_sqlite_database_on_a_volume_is_read_through_its_mount() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::custom(
        "sqlite",
        &[
            (
                "compose.yaml",
                "services:\n  app:\n    image: 127.0.0.1:5000/specivo/specivo:${APP_VERSION:-latest}\n    command: [\"beat\"]\n    volumes:\n      - ./data:/data\nx-hoist:\n  database:\n    service: app\n    kind: sqlite\n    path: /data/db/app.sqlite3\n",
            ),
            (".env", "APP_VERSION=0.1.9\n"),
        ],
    );
    // The app's own database, written inside its container, as the app would.
    let script = "import sqlite3, os; os.makedirs('/data/db', exist_ok=True); c = sqlite3.connect('/data/db/app.sqlite3'); c.executescript(\"CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, success BOOLEAN NOT NULL); INSERT INTO _sqlx_migrations VALUES (20240101, 'init', 1), (20240301, 'more', 1); CREATE TABLE items (id INTEGER); INSERT INTO items VALUES (1), (2), (3);\"); c.commit()";
    let out = Command::new("docker")
        .args(["exec", &stack.container("app"), "python3", "-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let run = stack.hoist(&["status", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let db = run.summary()["database"].clone();
    assert_eq!(db["kind"], "sqlite", "{db}");
    assert_eq!(db["migrations"], "sqlx");
    assert_eq!(db["revision"], "20240301");
    let items = db["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "items")
        .unwrap()
        .clone();
    assert_eq!(items["rows"], 3);
}
