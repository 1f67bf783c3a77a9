//! A database of a kind hoist does not know, described by its commands (`x-hoist.database:
//! {kind: command, dump, restore, revision}`), on a real database driven through its own CLI
//! tools: the bed's PostgreSQL via pg_dump/psql in its container, hoist's own PostgreSQL
//! support left out entirely. The backup streams the dump command's output, the planner reads
//! the revision command, a rollback restores through the restore command keeping the newer
//! database as a dump first; bad commands are said and change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{TestStack, docker_available, fixture_sql};

/// The settings, with the restore replacing the database whole (drop, create, load in one
/// transaction), as a careful user of such a database would write it.
fn settings(dump: &str, restore: &str, revision: &str) -> String {
    format!(
        "database:\n  service: db\n  kind: command\n  dump: {dump}\n  restore: {restore}\n  revision: {revision}\n"
    )
}

const DUMP: &str = r#"[pg_dump, -U, specivo, -d, specivo, --format=plain]"#;
const RESTORE: &str = r#"[sh, -c, 'dropdb -U specivo --force specivo && createdb -U specivo specivo && psql -U specivo -d specivo -q -v ON_ERROR_STOP=1 --single-transaction >/dev/null']"#;
const REVISION: &str =
    r#"[psql, -U, specivo, -d, specivo, -tAc, "SELECT version_num FROM alembic_version"]"#;

fn rows(stack: &TestStack) -> String {
    fixture_sql(
        stack,
        "SELECT string_agg(t, ',' ORDER BY t) FROM (SELECT table_name || '=' || (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM ' || quote_ident(table_name), false, true, '')))[1]::text AS t FROM information_schema.tables WHERE table_schema = 'public') s",
    )
}

fn revision(stack: &TestStack) -> String {
    fixture_sql(stack, "SELECT version_num FROM alembic_version")
}

#[test]
fn a_failed_migration_is_rolled_back_through_the_restore_command() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("cmd-db", "0.1.11");
    std::fs::write(
        stack.dir.join("hoist.yaml"),
        settings(DUMP, RESTORE, REVISION),
    )
    .unwrap();
    let rows_before = rows(&stack);
    assert_eq!(revision(&stack), "0021");

    // What status and the plan say of such a database.
    let status = stack.hoist(&["status", "--json"]);
    status.assert_no_panic();
    let s = status.summary();
    assert_eq!(s["database"]["kind"], "command", "{:#}", s["database"]);
    assert_eq!(s["database"]["revision"], "0021", "{:#}", s["database"]);

    // 0.1.14's migration fails after 0023 ran: the revision command sees the move.
    let run = stack.hoist(&[
        "upgrade", "--to", "0.1.14", "--path", "direct", "--yes", "--json",
    ]);
    run.assert_no_panic();
    let s = run.summary();
    assert_eq!(run.code, 4, "{s:#}\n{}", run.stderr);
    let backup = Path::new(s["backup"].as_str().unwrap()).to_path_buf();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["database"]["kind"], "command");
    assert_eq!(manifest["database"]["revision"], "0021");
    let dump = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "dump")
        .unwrap();
    assert_eq!(dump["name"], "database.dump.gz");
    // The settings that say how to restore it are kept with it.
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "hoist.yaml" && f["kind"] == "settings"),
        "{manifest:#}"
    );
    assert_eq!(
        std::fs::read_to_string(backup.join("hoist.yaml")).unwrap(),
        settings(DUMP, RESTORE, REVISION)
    );
    assert!(dump["size_bytes"].as_u64().unwrap() > 0);

    let rb = &s["rollback"];
    assert_eq!(rb["decision"], "restore", "{rb:#}");
    assert!(
        rb["reason"].as_str().unwrap().contains("from 0021 to 0023"),
        "{rb}"
    );
    assert_eq!(rb["outcome"], "succeeded", "{rb:#}");
    // Back as it was, row for row; the app answers at 0.1.11.
    assert_eq!(revision(&stack), "0021");
    assert_eq!(rows(&stack), rows_before);
    assert_eq!(stack.health_version(), "0.1.11");
    // The newer database was kept as a dump, whole, before the restore replaced it.
    let kept = s["kept_aside"]["database"]
        .as_str()
        .or_else(|| rb["kept_aside"]["database"].as_str())
        .unwrap_or_else(|| panic!("no kept database in {s:#}"))
        .to_string();
    assert!(kept.ends_with(".dump.gz"), "{kept}");
    let kept_text = std::process::Command::new("sh")
        .args(["-c", &format!("gunzip -c '{kept}' | grep -c 0023")])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&kept_text.stdout).trim(), "0");
    // RESTORE.md gives the user's own restore command.
    let doc = std::fs::read_to_string(backup.join("RESTORE.md")).unwrap();
    assert!(
        doc.contains("database.dump.gz | docker compose exec -T db sh -c"),
        "{doc}"
    );
}

#[test]
fn a_dump_command_that_writes_nothing_or_fails_stops_the_upgrade_before_any_change() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("cmd-db-bad", "0.1.11");
    let env_before = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    for (dump, said) in [
        // Writes its dump to a file, not stdout: an empty dump is no backup.
        (
            r#"[sh, -c, "pg_dump -U specivo specivo > /tmp/x.sql"]"#,
            "is empty",
        ),
        (r#"[pg_dump, -U, nobody_here, specivo]"#, "nobody_here"),
        (r#"[no-such-dump-tool]"#, "no-such-dump-tool"),
    ] {
        std::fs::write(
            stack.dir.join("hoist.yaml"),
            settings(dump, RESTORE, REVISION),
        )
        .unwrap();
        let run = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes", "--json"]);
        run.assert_no_panic();
        assert_ne!(run.code, 0, "{dump}: {}", run.stderr);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains(said), "{dump}: {all}");
        assert_eq!(
            std::fs::read_to_string(stack.dir.join(".env")).unwrap(),
            env_before,
            "{dump}"
        );
        assert_eq!(stack.health_version(), "0.1.11");
        assert_eq!(revision(&stack), "0021");
    }
}

#[test]
fn a_revision_command_that_fails_is_said_by_status_and_check() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("cmd-db-rev", "0.1.11");
    std::fs::write(
        stack.dir.join("hoist.yaml"),
        settings(
            DUMP,
            RESTORE,
            r#"[psql, -U, specivo, -d, specivo, -tAc, "SELECT nope FROM alembic_version"]"#,
        ),
    )
    .unwrap();
    let check = stack.hoist(&["check"]);
    check.assert_no_panic();
    let all = format!("{}{}", check.stdout, check.stderr);
    assert!(all.contains("revision command"), "{all}");
    assert!(all.contains("nope"), "{all}");
    assert_ne!(check.code, 0, "{all}");
    // An upgrade is refused: the planner could not tell a migration from none.
    let run = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes"]);
    assert_ne!(run.code, 0);
    assert_eq!(stack.health_version(), "0.1.11");
}

#[test]
fn a_restore_command_that_fails_puts_the_newer_database_back_from_the_kept_dump() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("cmd-db-putback", "0.1.11");
    // A restore that refuses the backup's (older) dump, as a server refusing an old export
    // format would, and loads the newer one.
    // `$$`: hoist.yaml is interpolated as the compose file is; a shell's `$` is written twice.
    let picky = r#"[sh, -c, 'f=$$(mktemp) && cat > "$$f" && grep -q 0022 "$$f" || { echo "refusing a dump without 0022" >&2; exit 3; }; dropdb -U specivo --force specivo && createdb -U specivo specivo && psql -U specivo -d specivo -q -v ON_ERROR_STOP=1 --single-transaction -f "$$f" >/dev/null']"#;
    std::fs::write(
        stack.dir.join("hoist.yaml"),
        settings(DUMP, picky, REVISION),
    )
    .unwrap();
    let up = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes", "--json"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert_eq!(revision(&stack), "0022");
    let rows_after_upgrade = rows(&stack);

    let run = stack.hoist(&["rollback", "--yes", "--json"]);
    run.assert_no_panic();
    assert_ne!(run.code, 0, "{}", run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("refusing a dump without 0022"), "{all}");
    assert!(
        all.contains("the database is back as it was before the restore"),
        "{all}"
    );
    // The newer database, put back whole from the dump kept first.
    assert_eq!(revision(&stack), "0022");
    assert_eq!(rows(&stack), rows_after_upgrade);
}

#[test]
fn careless_commands_are_caught_before_they_can_hurt_and_secrets_stay_hidden() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("cmd-db-careless", "0.1.11");
    let write = |dump: &str, restore: &str, revision: &str| {
        std::fs::write(
            stack.dir.join("hoist.yaml"),
            settings(dump, restore, revision),
        )
        .unwrap()
    };
    let said = |run: &common::Run| format!("{}{}", run.stdout, run.stderr);

    // A revision that is new on every call could never match a backup's.
    write(DUMP, RESTORE, "[date, +%s%N]");
    let check = stack.hoist(&["check"]);
    assert_ne!(check.code, 0);
    assert!(
        said(&check).contains("prints something new each time"),
        "{}",
        said(&check)
    );

    // A restore program that is not in the image is found now, not mid-rollback.
    write(DUMP, "[pg_restoer, -d, specivo]", REVISION);
    let check = stack.hoist(&["check"]);
    assert_ne!(check.code, 0);
    assert!(
        said(&check).contains(
            "the restore command's program \"pg_restoer\" is not in service db's container"
        ),
        "{}",
        said(&check)
    );
    let up = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes"]);
    assert_eq!(up.code, 3, "{}", said(&up));
    assert_eq!(revision(&stack), "0021");

    // A password written into a command (from .env) is never repeated.
    let password = stack.env_value("POSTGRES_PASSWORD");
    write(
        DUMP,
        RESTORE,
        r#"[sh, -c, 'PGPASSWORD=${POSTGRES_PASSWORD} psql -U specivo -d specivo -tAc "SELECT version_num FROM alembic_version WHERE false"']"#,
    );
    for args in [&["check"][..], &["status"], &["status", "--json"]] {
        let run = stack.hoist(args);
        assert!(said(&run).contains("printed nothing"), "{}", said(&run));
        assert!(
            !said(&run).contains(&password),
            "{args:?} shows the password"
        );
        assert!(said(&run).contains("PGPASSWORD=***"), "{}", said(&run));
    }
}

#[test]
fn a_restore_that_loads_over_the_database_instead_of_replacing_it_is_not_called_done() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("cmd-db-over", "0.1.11");
    // Loads the dump over the newer database: the old alembic row lands beside the new one.
    let over = r#"[sh, -c, 'psql -U specivo -d specivo -q >/dev/null 2>&1; exit 0']"#;
    // Every alembic row on one line, so the mixed database shows as "0021,0022".
    let all_rows = r#"[sh, -c, "psql -U specivo -d specivo -tAc 'SELECT string_agg(version_num, chr(44) ORDER BY version_num) FROM alembic_version'"]"#;
    std::fs::write(stack.dir.join("hoist.yaml"), settings(DUMP, over, all_rows)).unwrap();
    let up = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert_eq!(revision(&stack), "0022");
    let run = stack.hoist(&["rollback", "--yes"]);
    run.assert_no_panic();
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_ne!(run.code, 0, "{all}");
    assert!(
        all.contains("the restore did not replace the database"),
        "{all}"
    );
    assert!(!all.contains("Done:"), "{all}");
}
