//! Spectron, the app of runbook 000 whose state lives in SurrealDB (testbed/images/spectron and
//! testbed/images/surrealdb: SurrealDB 3's engine from the npm registry behind its HTTP API and
//! CLI). Migrations are applied at start-up and tracked in the database; 2.0.0's is destructive
//! and the release then fails, and 1.1.0 cannot start on what it left. hoist has no SurrealDB
//! driver: it must name the database and refuse to upgrade without a dump, then, taught by
//! `kind: command`, back it up with `surreal export`, see the migration through the revision
//! command, and restore with `surreal import` so that 1.1.0 runs again.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::process::Command;

use common::{TestStack, docker_available, free_port};

const PASS: &str = "surreal-secret-6180";

/// The settings a self-hoster writes for Spectron: the CLI in the SurrealDB container; the
/// restore removes the database before it imports (an import over it keeps what the new
/// version wrote: see the last test); `$$1` keeps the password out of the shell's text.
fn settings(restore: &str) -> String {
    format!(
        r#"x-hoist:
  database:
    service: surrealdb
    kind: command
    dump: [surreal, export, --endpoint, http://localhost:8000, --user, root, --pass, "${{SURREAL_PASS}}", --ns, spectron, --db, main, "-"]
    restore: [sh, -c, '{restore}', restore, "${{SURREAL_PASS}}"]
    revision: [sh, -c, 'echo "SELECT VALUE version FROM migration ORDER BY version DESC LIMIT 1" | surreal sql --endpoint http://localhost:8000 --user root --pass "$$1" --ns spectron --db main', revision, "${{SURREAL_PASS}}"]
"#
    )
}

const SQL: &str = r#"surreal sql --endpoint http://localhost:8000 --user root --pass "$$1" --ns spectron --db main"#;
const IMPORT: &str = r#"surreal import --endpoint http://localhost:8000 --user root --pass "$$1" --ns spectron --db main /dev/stdin"#;

fn careful_restore() -> String {
    format!(r#"echo "REMOVE DATABASE IF EXISTS main" | {SQL} >/dev/null && {IMPORT}"#)
}

/// The stack as Spectron's docs would have it; `image` is the database's image (a renamed one
/// must be found all the same) and `x_hoist` the settings block, or "".
fn spectron_stack(tag: &str, version: &str, image: &str, x_hoist: &str) -> TestStack {
    spectron_stack_with(tag, version, image, x_hoist, "")
}

/// As `spectron_stack`, with `app_env` (indented `KEY: value` lines) added to the app's
/// environment.
fn spectron_stack_with(
    tag: &str,
    version: &str,
    image: &str,
    x_hoist: &str,
    app_env: &str,
) -> TestStack {
    let port = free_port();
    let compose = format!(
        r#"services:
  surrealdb:
    image: {image}
    command: start --log info --user root --pass ${{SURREAL_PASS}} --bind 0.0.0.0:8000 rocksdb:/data/spectron.db
    volumes:
      - ./surrealdb-data:/data
    restart: unless-stopped
  spectron:
    image: 127.0.0.1:5000/spectron/spectron:${{SPECTRON_VERSION}}
    environment:
      SURREAL_ENDPOINT: http://surrealdb:8000
      SURREAL_USER: root
      SURREAL_PASS: ${{SURREAL_PASS}}
{app_env}    ports:
      - "127.0.0.1:${{SPECTRON_PORT}}:8080"
    depends_on:
      - surrealdb
    restart: unless-stopped
{x_hoist}"#
    );
    let env = format!("SPECTRON_VERSION={version}\nSPECTRON_PORT={port}\nSURREAL_PASS={PASS}\n");
    let mut stack = TestStack::custom(tag, &[("compose.yaml", &compose), (".env", &env)]);
    stack.port = port;
    wait_for_version(&stack, version);
    stack
}

/// The version Spectron's `/health` reports ("" when it does not answer).
fn version(stack: &TestStack) -> String {
    let out = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{}/health", stack.port)])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["version"].as_str().unwrap_or("").to_string()
}

fn wait_for_version(stack: &TestStack, want: &str) {
    for _ in 0..120 {
        if version(stack) == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("Spectron did not answer as {want}");
}

/// SurrealQL through the CLI in the database's container: one JSON line per statement.
fn surql(stack: &TestStack, text: &str) -> String {
    let mut child = Command::new("docker")
        .args([
            "exec",
            "-i",
            &stack.container("surrealdb"),
            "surreal",
            "sql",
            "--endpoint",
            "http://localhost:8000",
            "--user",
            "root",
            "--pass",
            PASS,
            "--ns",
            "spectron",
            "--db",
            "main",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "surreal sql {text}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn seed(stack: &TestStack) {
    surql(
        stack,
        "CREATE document:1 SET title = 'runbook', body = 'take a backup first'; \
         CREATE document:2 SET title = 'notes', body = 'destructive steps drop fields';",
    );
}

const DOCUMENTS: &str = "RETURN (SELECT id, body FROM document ORDER BY id).body";
const APPLIED: &str = "SELECT VALUE version FROM migration ORDER BY version";

#[test]
fn surrealdb_is_named_and_the_upgrade_refused_until_hoist_is_told_how_to_dump_it() {
    if !docker_available() {
        return;
    }
    // Under a name that says nothing: its command line (`start … rocksdb:`) says what it is.
    let renamed = "hoist-testbed/kv-store:3";
    let tag = Command::new("docker")
        .args(["tag", "127.0.0.1:5000/surrealdb/surrealdb:v3", renamed])
        .status()
        .unwrap();
    assert!(tag.success());
    let stack = spectron_stack("spectron-unknown", "1.1.0", renamed, "");
    let env_before = std::fs::read_to_string(stack.dir.join(".env")).unwrap();

    let check = stack.hoist(&["check"]);
    check.assert_no_panic();
    assert_ne!(check.code, 0, "{check:?}");
    // hoist speaks SurrealDB, but the app's settings do not say which namespace and database
    // it uses (Spectron falls back to its own defaults): asked, not guessed.
    assert!(
        check.stdout.contains(
            "FAIL  service surrealdb is SurrealDB (known by its command (`start … rocksdb:/data/spectron.db`)), but hoist cannot tell which namespace and database the app keeps its data in"
        ),
        "{check:?}"
    );
    assert!(
        check
            .stdout
            .contains("Set x-hoist.database.namespace and x-hoist.database.name"),
        "{check:?}"
    );
    let status = stack.hoist(&["status"]);
    assert!(
        status
            .stdout
            .contains("Database  SurrealDB (service surrealdb"),
        "{status:?}"
    );

    // Not "archived beside the app" and upgraded anyway: refused, nothing changed.
    let run = stack.hoist(&["upgrade", "--to", "2.0.0", "--yes"]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("SurrealDB"), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(stack.dir.join(".env")).unwrap(),
        env_before
    );
    assert_eq!(version(&stack), "1.1.0");
    assert_eq!(surql(&stack, APPLIED), "[1,2]");
}

#[test]
fn runbook_000_an_additive_upgrade_then_a_destructive_one_that_fails_is_rolled_back_by_import() {
    if !docker_available() {
        return;
    }
    let stack = spectron_stack(
        "spectron",
        "1.0.0",
        "127.0.0.1:5000/surrealdb/surrealdb:v3",
        &settings(&careful_restore()),
    );
    seed(&stack);
    let bodies = surql(&stack, DOCUMENTS);
    assert_eq!(
        bodies,
        r#"["take a backup first","destructive steps drop fields"]"#
    );

    // What hoist says of it, with the password nowhere.
    let check = stack.hoist(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check
            .stdout
            .contains("ok    the database of service surrealdb answers its revision command: [1]"),
        "{check:?}"
    );
    let status = stack.hoist(&["status", "--json"]);
    let all = format!(
        "{}{}{}{}",
        check.stdout, check.stderr, status.stdout, status.stderr
    );
    assert!(!all.contains(PASS), "{all}");

    // 1.1.0 adds a table: the revision moves, the upgrade holds.
    let up = stack.hoist(&["upgrade", "--to", "1.1.0", "--yes"]);
    up.assert_no_panic();
    assert_eq!(up.code, 0, "{up:?}");
    assert!(up.stdout.contains("schema: [1] -> [2]"), "{up:?}");
    assert_eq!(version(&stack), "1.1.0");

    // 2.0.0 moves the bodies out and removes the field, then fails to start.
    let run = stack.hoist(&["upgrade", "--to", "2.0.0", "--yes", "--json"]);
    run.assert_no_panic();
    let s = run.summary();
    assert_eq!(run.code, 4, "{s:#}\n{}", run.stderr);
    let rb = &s["rollback"];
    assert_eq!(rb["decision"], "restore", "{rb:#}");
    assert!(
        rb["reason"]
            .as_str()
            .unwrap()
            .starts_with("Schema changed (a migration ran; hoist cannot see whether the previous version can run on it): the schema revision went from [2] to [3]"),
        "{rb}"
    );
    assert_eq!(rb["outcome"], "succeeded", "{rb:#}");

    assert_back_on_1_1_0(&stack, &bodies);

    // The backup is SurrealDB's own export; the newer database is kept as one too.
    let backup = std::path::Path::new(s["backup"].as_str().unwrap()).to_path_buf();
    let exported = gunzip(&backup.join("database.dump.gz"));
    assert!(exported.contains("OPTION IMPORT;"), "{exported}");
    assert!(exported.contains("take a backup first"), "{exported}");
    let kept = kept_database(&s);
    let newer = gunzip(std::path::Path::new(&kept));
    assert!(newer.contains("TABLE: chunk"), "{newer}");
    let restore_md = std::fs::read_to_string(backup.join("RESTORE.md")).unwrap();
    assert!(!restore_md.contains(PASS), "{restore_md}");
    assert!(
        restore_md.contains("REMOVE DATABASE IF EXISTS main"),
        "{restore_md}"
    );
}

#[test]
fn an_import_over_the_live_database_is_not_called_a_restore() {
    if !docker_available() {
        return;
    }
    // The careless restore: `surreal import` into the database as the new version left it.
    // SurrealDB keeps the records it already has (the bodies stay gone, migration 3 stays),
    // and the import exits 0.
    let stack = spectron_stack(
        "spectron-careless",
        "1.1.0",
        "127.0.0.1:5000/surrealdb/surrealdb:v3",
        &settings(IMPORT),
    );
    seed(&stack);

    let run = stack.hoist(&["upgrade", "--to", "2.0.0", "--yes", "--json"]);
    run.assert_no_panic();
    let s = run.summary();
    assert_ne!(run.code, 0, "{s:#}");
    assert_ne!(s["rollback"]["outcome"], "succeeded", "{s:#}");
    let all = format!("{}{}", run.stdout, run.stderr);
    // Said as what it is: the restore exited 0 but the database is not the backup's.
    assert!(all.contains("[3]"), "{all}");
    assert!(all.contains("[2]"), "{all}");
    // Nothing lost: the database is as 2.0.0 left it (the import changed nothing it had).
    assert_eq!(surql(&stack, APPLIED), "[1,2,3]");
}

#[test]
fn surrealdb_built_in_the_app_settings_name_the_database_and_a_failed_destructive_upgrade_is_restored()
 {
    if !docker_available() {
        return;
    }
    // No x-hoist at all: the server's command gives the user and password, the app's
    // SURREAL_NS and SURREAL_DB the namespace and database; hoist speaks the HTTP API itself.
    let stack = spectron_stack_with(
        "spectron-builtin",
        "1.0.0",
        "127.0.0.1:5000/surrealdb/surrealdb:v3",
        "",
        "      SURREAL_NS: spectron\n      SURREAL_DB: main\n",
    );
    seed(&stack);
    let bodies = surql(&stack, DOCUMENTS);

    let check = stack.hoist(&["check"]);
    check.assert_no_panic();
    assert_eq!(check.code, 0, "{check:?}");
    let status = stack.hoist(&["status"]);
    assert!(
        status
            .stdout
            .contains("Database  surrealdb (service surrealdb)"),
        "{status:?}"
    );
    assert!(status.stdout.contains("migration 1"), "{status:?}");
    let all = format!(
        "{}{}{}{}",
        check.stdout, check.stderr, status.stdout, status.stderr
    );
    assert!(!all.contains(PASS), "{all}");

    let up = stack.hoist(&["upgrade", "--to", "1.1.0", "--yes"]);
    up.assert_no_panic();
    assert_eq!(up.code, 0, "{up:?}");
    assert!(up.stdout.contains("migration 1 -> migration 2"), "{up:?}");

    let run = stack.hoist(&["upgrade", "--to", "2.0.0", "--yes", "--json"]);
    run.assert_no_panic();
    let s = run.summary();
    assert_eq!(run.code, 4, "{s:#}\n{}", run.stderr);
    let rb = &s["rollback"];
    assert_eq!(rb["decision"], "restore", "{rb:#}");
    assert_eq!(rb["outcome"], "succeeded", "{rb:#}");
    assert_back_on_1_1_0(&stack, &bodies);

    let backup = std::path::Path::new(s["backup"].as_str().unwrap()).to_path_buf();
    let exported = gunzip(&backup.join("database.surql.gz"));
    assert!(exported.contains("take a backup first"), "{exported}");
    let kept = kept_database(&s);
    assert!(kept.ends_with(".surql.gz"), "{kept}");
    assert!(gunzip(std::path::Path::new(&kept)).contains("TABLE: chunk"));
    let restore_md = std::fs::read_to_string(backup.join("RESTORE.md")).unwrap();
    assert!(!restore_md.contains(PASS), "{restore_md}");
    assert!(
        restore_md.contains("REMOVE DATABASE IF EXISTS main; DEFINE DATABASE main;"),
        "{restore_md}"
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains(PASS), "{all}");
    // The fields SurrealDB defines are compared as columns: the removed one is named.
    assert!(
        rb["reason"]
            .as_str()
            .unwrap()
            .contains("column document.body was dropped"),
        "{rb}"
    );
}

#[test]
fn surrealdb_with_a_wrong_password_is_refused_before_anything_changes() {
    if !docker_available() {
        return;
    }
    let stack = spectron_stack_with(
        "spectron-badpass",
        "1.0.0",
        "127.0.0.1:5000/surrealdb/surrealdb:v3",
        "x-hoist:\n  database: {password_variable: NOT_THE_PASSWORD}\n",
        "      SURREAL_NS: spectron\n      SURREAL_DB: main\n      NOT_THE_PASSWORD: wrong\n",
    );
    let env_before = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    let run = stack.hoist(&["upgrade", "--to", "1.1.0", "--yes"]);
    run.assert_no_panic();
    assert_ne!(run.code, 0, "{run:?}");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("refused user root"), "{all}");
    assert_eq!(
        std::fs::read_to_string(stack.dir.join(".env")).unwrap(),
        env_before
    );
    assert_eq!(version(&stack), "1.0.0");
}

#[test]
fn surrealdb_a_namespace_that_is_not_there_or_a_revision_that_moves_is_refused() {
    if !docker_available() {
        return;
    }
    // The settings name a namespace the server does not have: SurrealDB would answer as if it
    // were empty, and the backup would hold nothing.
    let stack = spectron_stack_with(
        "spectron-nowhere",
        "1.0.0",
        "127.0.0.1:5000/surrealdb/surrealdb:v3",
        "x-hoist:\n  database: {namespace: nowhere}\n",
        "      SURREAL_NS: spectron\n      SURREAL_DB: main\n",
    );
    seed(&stack);
    let env_before = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    let check = stack.hoist(&["check"]);
    check.assert_no_panic();
    assert_ne!(check.code, 0, "{check:?}");
    assert!(
        check
            .stdout
            .contains(r#"has no namespace "nowhere" (it has: main, spectron)"#),
        "{check:?}"
    );
    assert!(
        check.stdout.contains(
            r#"x-hoist.database.namespace says "nowhere" but the app's settings say "spectron""#
        ),
        "{check:?}"
    );
    let run = stack.hoist(&["upgrade", "--to", "2.0.0", "--yes"]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        std::fs::read_to_string(stack.dir.join(".env")).unwrap(),
        env_before
    );
    assert_eq!(version(&stack), "1.0.0");

    // A revision that is a clock would make every rollback a restore: refused too.
    let compose = stack.dir.join("compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap().replace(
        "{namespace: nowhere}",
        "{revision_query: 'RETURN time::now()'}",
    );
    std::fs::write(&compose, text).unwrap();
    let check = stack.hoist(&["check"]);
    check.assert_no_panic();
    assert_ne!(check.code, 0, "{check:?}");
    assert!(
        check.stdout.contains("returns something new each time"),
        "{check:?}"
    );
    assert_eq!(surql(&stack, APPLIED), "[1]");
}

#[test]
fn a_database_only_the_running_container_shows_stops_the_upgrade() {
    if !docker_available() {
        return;
    }
    // Nothing in the files says database: a neutral image name, the server's `start` in the
    // image's own CMD, no variables, no volumes; the app finds it by its defaults. Only the
    // running process (and the image's title label) tell.
    let renamed = "hoist-testbed/kv-cache:3";
    let tag = Command::new("docker")
        .args(["tag", "127.0.0.1:5000/surrealdb/surrealdb:v3", renamed])
        .status()
        .unwrap();
    assert!(tag.success());
    let port = free_port();
    let compose = format!(
        "services:\n  surrealdb:\n    image: {renamed}\n  spectron:\n    image: 127.0.0.1:5000/spectron/spectron:${{SPECTRON_VERSION}}\n    ports:\n      - \"127.0.0.1:${{SPECTRON_PORT}}:8080\"\n    depends_on: [surrealdb]\n"
    );
    let env = format!("SPECTRON_VERSION=1.0.0\nSPECTRON_PORT={port}\n");
    let mut stack = TestStack::custom(
        "spectron-unseen",
        &[("compose.yaml", &compose), (".env", &env)],
    );
    stack.port = port;
    wait_for_version(&stack, "1.0.0");

    let check = stack.hoist(&["check"]);
    check.assert_no_panic();
    assert_ne!(check.code, 0, "{check:?}");
    assert!(
        check
            .stdout
            .contains("FAIL  service surrealdb runs SurrealDB (its process `"),
        "{check:?}"
    );
    assert!(
        check
            .stdout
            .contains("kind: surrealdb, namespace: ..., name: ..."),
        "{check:?}"
    );
    let run = stack.hoist(&["upgrade", "--to", "1.1.0", "--yes"]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("runs SurrealDB"), "{run:?}");
    assert_eq!(version(&stack), "1.0.0");
}

/// 1.1.0 runs again on the data as it was: the bodies in place, no chunk table, no migration 3.
fn assert_back_on_1_1_0(stack: &TestStack, bodies: &str) {
    assert_eq!(version(stack), "1.1.0");
    assert_eq!(surql(stack, DOCUMENTS), bodies);
    assert_eq!(surql(stack, APPLIED), "[1,2]");
    assert!(!surql(stack, "INFO FOR DB").contains("chunk"));
}

/// Where a rollback's summary says the newer database was kept.
fn kept_database(s: &serde_json::Value) -> String {
    s["kept_aside"]["database"]
        .as_str()
        .or_else(|| s["rollback"]["kept_aside"]["database"].as_str())
        .unwrap_or_else(|| panic!("no kept database in {s:#}"))
        .to_string()
}

fn gunzip(path: &std::path::Path) -> String {
    let out = Command::new("gunzip").arg("-c").arg(path).output().unwrap();
    assert!(out.status.success(), "gunzip {}", path.display());
    String::from_utf8_lossy(&out.stdout).to_string()
}
