//! Rollbacks that restore a database other than PostgreSQL, on the bed's real MariaDB: the
//! newer database kept as a dump file the report names, the backup's loaded in its place with
//! its tables, rows, trigger and view, and the migration's change gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{MARIADB_APP_PASSWORD, TestStack, docker_available, docker_exec};

fn sql(stack: &TestStack, statements: &str) -> String {
    let password = format!("-p{MARIADB_APP_PASSWORD}");
    docker_exec(
        &stack.container("db"),
        &[
            "mariadb", "-uapp", &password, "-N", "-B", "app", "-e", statements,
        ],
    )
}

#[test]
fn a_mariadb_database_is_restored_and_the_newer_one_kept_as_a_dump() {
    if !docker_available() {
        return;
    }
    let stack = common::mariadb_stack("maria-rb");
    // A schema with what a cross-schema RENAME TABLE cannot move: a trigger and a view.
    sql(
        &stack,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('abc123'); \
         CREATE TABLE notes (id INT PRIMARY KEY, body TEXT) DEFAULT CHARSET=utf8mb4; INSERT INTO notes VALUES (1, 'één'), (2, 'two'); \
         CREATE TABLE audit (note INT); CREATE TRIGGER noted AFTER INSERT ON notes FOR EACH ROW INSERT INTO audit VALUES (NEW.id); \
         CREATE VIEW note_bodies AS SELECT body FROM notes;",
    );

    let up = stack.hoist(&["upgrade", "--to", "0.1.11", "--yes", "--json"]);
    up.assert_no_panic();
    assert_eq!(up.code, 0, "{up:?}");
    // What a migration of the new release would do (a column added, one retyped: not only
    // additions, so the previous version is not tried on it), and a row written after it.
    sql(
        &stack,
        "UPDATE alembic_version SET version_num = 'def456'; ALTER TABLE notes ADD COLUMN pinned INT; ALTER TABLE notes MODIFY body VARCHAR(200); INSERT INTO notes VALUES (3, 'three', 1);",
    );

    let back = stack.hoist(&["rollback", "--yes", "--json"]);
    back.assert_no_panic();
    assert_eq!(back.code, 0, "{back:?}");
    let s = back.summary();
    assert_eq!(s["decision"], "restore", "{s:#}");
    assert!(s.get("keep").is_none(), "{s:#}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("column notes.body was retyped from text to varchar(200)"),
        "{s:#}"
    );
    assert_eq!(
        sql(&stack, "SELECT version_num FROM alembic_version"),
        "abc123"
    );
    assert_eq!(
        sql(&stack, "SELECT id, body FROM notes ORDER BY id"),
        "1\téén\n2\ttwo"
    );
    assert_eq!(
        sql(
            &stack,
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'notes' AND COLUMN_NAME = 'pinned'"
        ),
        "0"
    );
    assert_eq!(sql(&stack, "SELECT COUNT(*) FROM note_bodies"), "2");
    sql(&stack, "INSERT INTO notes VALUES (4, 'four')");
    assert_eq!(
        sql(&stack, "SELECT note FROM audit"),
        "4",
        "the trigger came back"
    );
    // The newer database is kept, whole, in the file the report names.
    let kept = s["kept_aside"]["database"].as_str().unwrap().to_string();
    assert!(kept.ends_with(".sql.gz"), "{kept}");
    let text = Command::new("gunzip").args(["-c", &kept]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("def456") && text.contains("three"), "{kept}");
    assert!(
        !back.stdout.contains(MARIADB_APP_PASSWORD),
        "the password leaked"
    );
}

fn python(stack: &TestStack, script: &str) -> String {
    docker_exec(&stack.container("app"), &["python3", "-c", script])
}

#[test]
fn an_sqlite_database_comes_back_with_its_data_and_the_newer_file_is_kept() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::custom(
        "sqlite-rb",
        &[
            (
                "compose.yaml",
                "services:\n  app:\n    image: 127.0.0.1:5000/specivo/specivo:${APP_VERSION:-latest}\n    command: [\"beat\"]\n    volumes:\n      - ./data:/data\nx-hoist:\n  database:\n    service: app\n    kind: sqlite\n    path: /data/db/app.sqlite3\n",
            ),
            (".env", "APP_VERSION=0.1.10\n"),
        ],
    );
    python(
        &stack,
        "import sqlite3, os; os.makedirs('/data/db', exist_ok=True); c = sqlite3.connect('/data/db/app.sqlite3'); c.executescript(\"CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, success BOOLEAN NOT NULL); INSERT INTO _sqlx_migrations VALUES (20240101, 'init', 1); CREATE TABLE items (id INTEGER); INSERT INTO items VALUES (1), (2);\"); c.commit()",
    );
    let up = stack.hoist(&["upgrade", "--to", "0.1.11", "--yes", "--json"]);
    up.assert_no_panic();
    assert_eq!(up.code, 0, "{up:?}");
    // The app's services were stopped while the file was copied.
    assert!(
        up.stdout.contains("stopping app while the data is copied"),
        "{}",
        up.stdout
    );
    python(
        &stack,
        "import sqlite3; c = sqlite3.connect('/data/db/app.sqlite3'); c.executescript(\"INSERT INTO _sqlx_migrations VALUES (20240301, 'tags', 1); CREATE TABLE tags (t TEXT); INSERT INTO items VALUES (3); ALTER TABLE items RENAME COLUMN id TO item_id;\"); c.commit()",
    );

    let back = stack.hoist(&["rollback", "--yes", "--json"]);
    back.assert_no_panic();
    assert_eq!(back.code, 0, "{back:?}");
    let s = back.summary();
    assert_eq!(s["decision"], "restore", "{s:#}");
    // A renamed column is not an addition: no keeping first.
    assert!(s.get("keep").is_none(), "{s:#}");
    assert!(
        back.stdout
            .contains("the SQLite database /data/db/app.sqlite3 came back with the data of /data"),
        "{}",
        back.stdout
    );
    assert_eq!(
        python(
            &stack,
            "import sqlite3; c = sqlite3.connect('/data/db/app.sqlite3'); print(c.execute('SELECT COUNT(*) FROM items').fetchone()[0], c.execute(\"SELECT COUNT(*) FROM sqlite_master WHERE name = 'tags'\").fetchone()[0], c.execute('SELECT MAX(version) FROM _sqlx_migrations').fetchone()[0])"
        ),
        "2 0 20240101"
    );
    // The newer file is kept in the directory the report names.
    let aside = s["kept_aside"]["data"][0].as_str().unwrap().to_string();
    let aside = std::path::PathBuf::from(aside.strip_prefix("directory ").unwrap_or(&aside));
    assert!(
        aside.join("db/app.sqlite3").is_file(),
        "{}",
        aside.display()
    );
}

#[test]
fn an_sqlite_file_found_in_the_data_whose_schema_changed_is_restored() {
    if !docker_available() {
        return;
    }
    // No x-hoist: hoist finds the file by its header in the app's data.
    let stack = TestStack::custom(
        "sqlite-found",
        &[
            (
                "compose.yaml",
                "services:\n  app:\n    image: 127.0.0.1:5000/specivo/specivo:${APP_VERSION:-latest}\n    command: [\"beat\"]\n    volumes:\n      - notes:/data\nvolumes:\n  notes:\n",
            ),
            (".env", "APP_VERSION=0.1.10\n"),
        ],
    );
    python(
        &stack,
        "import sqlite3; c = sqlite3.connect('/data/notes.db'); c.executescript('CREATE TABLE notes (id INTEGER, body TEXT); INSERT INTO notes VALUES (1, \"a\");'); c.commit()",
    );
    let up = stack.hoist(&["upgrade", "--to", "0.1.11", "--yes", "--json"]);
    up.assert_no_panic();
    assert_eq!(up.code, 0, "{up:?}");
    python(
        &stack,
        "import sqlite3; c = sqlite3.connect('/data/notes.db'); c.executescript('ALTER TABLE notes ADD COLUMN pinned INTEGER; INSERT INTO notes VALUES (2, \"b\", 1);'); c.commit()",
    );

    let back = stack.hoist(&["rollback", "--yes", "--json"]);
    back.assert_no_panic();
    assert_eq!(back.code, 0, "{back:?}");
    let s = back.summary();
    assert_eq!(s["decision"], "restore", "{s:#}");
    assert!(
        s["reason"].as_str().unwrap().contains("/data/notes.db"),
        "{s:#}"
    );
    // The rows written since cannot be counted, and the plan says so instead of "nothing".
    assert!(
        back.stdout.contains("hoist cannot count its rows"),
        "{}",
        back.stdout
    );
    assert_eq!(
        python(
            &stack,
            "import sqlite3; c = sqlite3.connect('/data/notes.db'); print(len(c.execute('PRAGMA table_info(notes)').fetchall()), c.execute('SELECT COUNT(*) FROM notes').fetchone()[0])"
        ),
        "2 1"
    );
}
