//! `hoist upgrade --yes` rolling back on its own, and `hoist rollback`, on the test bed: the
//! planner's decision from facts, the restore of data and database, and the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{Run, TestStack, db_state as database, docker_available, post_issue, user_files};

fn pinned(stack: &TestStack) -> String {
    let env = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix("SPECIVO_VERSION="))
        .unwrap()
        .to_string()
}

fn step_names(summary: &serde_json::Value) -> Vec<String> {
    summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_broken_release_without_a_migration_is_rolled_back_by_re_pinning() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("repin", "0.1.12");
    let data = stack.dir.join("specivo-data");
    let (revision_before, rows_before) = database(&stack);
    let files_before = user_files(&data);

    let run = stack.hoist(&["upgrade", "--to", "0.1.13", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 4, "{run:?}");
    let s = run.summary();
    assert_eq!(s["outcome"], "rolled_back", "{s:#}");
    // The summary says what holds after the rollback, not before it.
    assert_eq!(s["pinned_now"], "0.1.12", "{s:#}");
    assert!(
        s["error"].as_str().unwrap().contains("rolled it back"),
        "{s:#}"
    );
    // The evidence of the failure is quoted: the traceback of the api.
    let evidence = s["evidence"]["api"].as_array().unwrap();
    assert!(
        evidence
            .iter()
            .any(|l| l.as_str().unwrap().contains("ImportError")),
        "{evidence:?}"
    );
    // ... with its exit code (Docker's `die` event) and restart count.
    let failure = s["failure"].as_str().unwrap();
    assert!(
        failure.contains("crash-looping (restarted") && failure.contains("last exit code 3"),
        "{failure}"
    );
    let rb = &s["rollback"];
    assert_eq!(rb["outcome"], "succeeded", "{rb:#}");
    assert_eq!(rb["decision"], "repin", "{rb:#}");
    assert!(
        rb["reason"].as_str().unwrap().contains("revision 0022"),
        "{rb}"
    );
    let steps = step_names(rb);
    assert!(
        !steps
            .iter()
            .any(|s| s.starts_with("restore") || s == "stop"),
        "no restore: {steps:?}"
    );
    // The decision was announced before it was carried out.
    assert!(
        run.json_lines()
            .iter()
            .any(|e| e["type"] == "rollback" && e["decision"] == "repin")
    );

    assert_eq!(stack.health_version(), "0.1.12");
    assert_eq!(pinned(&stack), "0.1.12");
    assert_eq!(database(&stack), (revision_before, rows_before));
    assert_eq!(user_files(&data), files_before, "data untouched");
    assert!(
        !std::fs::read_dir(&stack.dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("before-rollback")),
        "nothing was moved aside"
    );
    let history = stack.hoist(&["history", "--json"]).summary();
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs[0]["kind"], "rollback");
    assert_eq!(runs[0]["outcome"], "succeeded");
    assert_eq!(runs[1]["kind"], "upgrade");
    assert_eq!(runs[1]["outcome"], "rolled_back");
}

#[test]
fn a_migration_that_fails_half_way_is_rolled_back_with_a_restore() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("halfway", "0.1.11");
    let (revision_before, rows_before) = database(&stack);
    assert_eq!(revision_before, "0021");

    // Straight there: stepping would stop at the broken 0.1.13 first.
    let run = stack.hoist(&[
        "upgrade", "--to", "0.1.14", "--path", "direct", "--yes", "--json",
    ]);
    run.assert_no_panic();
    let s = run.summary();
    assert_eq!(run.code, 4, "{:#}", s["rollback"]);
    // 0023 ran before 0024 failed: the logs said so, and the planner saw the schema move.
    assert!(
        run.json_lines()
            .iter()
            .any(|e| e["type"] == "migration" && e["to"] == "0023"),
    );
    let rb = &s["rollback"];
    assert_eq!(rb["decision"], "restore", "{rb:#}");
    assert!(
        rb["reason"].as_str().unwrap().contains("from 0021 to 0023"),
        "{rb}"
    );
    assert_eq!(
        step_names(rb),
        [
            "check_backup",
            "stop",
            "restore_data",
            "restore_database",
            "pin",
            "pull",
            "restart",
            "watch",
            "verify"
        ]
    );
    // Schema back to the pre-upgrade revision; every table has the backup's row count.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(s["backup"].as_str().unwrap()).join("manifest.json")).unwrap(),
    )
    .unwrap();
    let (revision_after, rows_after) = database(&stack);
    assert_eq!(revision_after, "0021");
    for t in manifest["database"]["tables"].as_array().unwrap() {
        assert_eq!(
            rows_after.get(t["name"].as_str().unwrap()).copied(),
            t["rows"].as_u64(),
            "{t}"
        );
    }
    assert_eq!(rows_after, rows_before);
    assert_eq!(stack.health_version(), "0.1.11");
    assert_eq!(pinned(&stack), "0.1.11");
}

#[test]
fn rollback_after_a_destructive_upgrade_restores_and_keeps_the_newer_data_aside() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_removing_images("later", "0.1.11");
    let data = stack.dir.join("specivo-data");
    let (_, rows_before) = database(&stack);
    let files_before = user_files(&data);

    let run = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(stack.health_version(), "0.1.12");
    // The user goes on working on 0.1.12: new issues, new uploads.
    post_issue(&stack, "written after the upgrade 1");
    post_issue(&stack, "written after the upgrade 2");
    let (revision_now, rows_now) = database(&stack);
    assert_eq!(revision_now, "0022");
    assert_eq!(rows_now["issues"], rows_before["issues"] + 2);
    let files_now = user_files(&data);

    // The previous image is gone from this machine: the rollback pulls it again.
    let image = "127.0.0.1:5000/specivo/specivo:0.1.11";
    // (-f untags it even while another test's container runs it; they keep their image.)
    common::remove_image(image);

    // Without --yes a restore is refused, nothing changed, and the loss is named.
    let refused = stack.hoist(&["rollback", "--json"]);
    assert_eq!(refused.code, 3, "{refused:?}");
    let error = refused.summary()["error"].as_str().unwrap().to_string();
    assert!(error.contains("2 inserted rows in issues"), "{error}");
    // 0022 dropped a column: the reason names the change that rules out going back without
    // a restore.
    assert!(
        error.contains("not additive: column issues.legacy_priority was dropped"),
        "{error}"
    );
    assert_eq!(pinned(&stack), "0.1.12");
    assert_eq!(user_files(&data), files_now);

    // An earlier attempt, killed half way, left a copy aside: the newer data may be in it, so
    // the report names it too.
    let earlier = stack
        .dir
        .join("specivo-data.before-rollback-20200101T000000Z");
    std::fs::create_dir(&earlier).unwrap();
    std::fs::write(earlier.join("newer.txt"), "from the first attempt").unwrap();

    let run: Run = stack.hoist(&["rollback", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["decision"], "restore", "{s:#}");
    assert!(
        s["kept_aside_earlier"]
            .to_string()
            .contains(&earlier.display().to_string()),
        "{s:#}"
    );
    std::fs::remove_dir_all(&earlier).unwrap();
    let losses = s["losses"].as_array().unwrap();
    assert!(
        losses.iter().any(|l| l["table"] == "issues"
            && l["rows_now"].as_u64().unwrap() - l["rows_in_backup"].as_u64().unwrap() == 2),
        "{losses:?}"
    );
    assert!(
        run.json_lines().iter().any(|e| e["type"] == "progress"
            && e["message"].as_str().unwrap().contains("pulling it again")),
        "the deleted image was pulled again"
    );
    assert_eq!(stack.health_version(), "0.1.11");
    assert_eq!(pinned(&stack), "0.1.11");
    let (revision_after, rows_after) = database(&stack);
    assert_eq!(revision_after, "0021");
    assert_eq!(rows_after, rows_before);
    // The data is the pre-upgrade data (format 1 again), and the newer content is where hoist
    // said it put it; the newer database too.
    assert_eq!(user_files(&data), files_before);
    let aside = PathBuf::from(s["kept_aside"]["data"][0].as_str().unwrap());
    assert_eq!(user_files(&aside), files_now);
    let kept_db = s["kept_aside"]["database"].as_str().unwrap();
    let count = stack.compose(&[
        "exec",
        "-T",
        "db",
        "psql",
        "-U",
        "specivo",
        "-d",
        kept_db,
        "-tAc",
        "SELECT count(*) FROM issues",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&count.stdout).trim(),
        rows_now["issues"].to_string()
    );
    // `status` lists what was kept aside, found where it is, until it is removed.
    let status = stack.hoist(&["status", "--json"]).summary();
    let kept: Vec<(String, String)> = status["kept_aside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kind"].as_str().unwrap().to_string(),
                k["place"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        kept.contains(&("files".to_string(), aside.display().to_string())),
        "{kept:?}"
    );
    assert!(
        kept.contains(&("database".to_string(), kept_db.to_string())),
        "{kept:?}"
    );
    let human = stack.hoist(&["status"]);
    assert!(
        human.stdout.contains("Kept aside by earlier rollbacks"),
        "{human:?}"
    );
    std::fs::remove_dir_all(&aside).unwrap();
    let status = stack.hoist(&["status", "--json"]).summary();
    assert!(
        !status["kept_aside"]
            .to_string()
            .contains(&aside.display().to_string()),
        "removed, no longer listed: {status:#}"
    );
    // Rolled back once: a second `hoist rollback` has nothing to undo.
    let again = stack.hoist(&["rollback", "--yes"]);
    assert_eq!(again.code, 3, "{again:?}");
    assert!(again.stderr.contains("already rolled back"), "{again:?}");
}

#[test]
fn a_damaged_or_missing_backup_is_refused_with_nothing_changed() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("damaged", "0.1.9");
    let run = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    // With another (or a lost) state dir the journal knows no upgrade, but the disk still
    // holds the backup: said, with the command that puts it back.
    let other_state = stack.state_dir.with_extension("other");
    let lost = stack.hoist_with_state(&other_state, &["rollback", "--yes"]);
    assert_eq!(lost.code, 3, "{lost:?}");
    let backup_dir = run.summary()["backup"].as_str().unwrap().to_string();
    assert!(
        lost.stderr.contains("holds 1 backup of")
            && lost.stderr.contains(&backup_dir)
            && lost.stderr.contains("version 0.1.9")
            && lost.stderr.contains("hoist restore DIR"),
        "{lost:?}"
    );
    // `status` too reads the backups from their manifests, whatever the journal knows.
    let status = stack
        .hoist_with_state(&other_state, &["status", "--json"])
        .summary();
    assert_eq!(status["backups"]["count"], 1, "{status:#}");
    assert_eq!(status["backups"]["newest"]["dir"], backup_dir.as_str());
    let backup = PathBuf::from(run.summary()["backup"].as_str().unwrap());
    let dump = std::fs::read_dir(&backup)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".sql.gz"))
        .unwrap();
    let original = std::fs::read(&dump).unwrap();
    let mut damaged = original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::write(&dump, &damaged).unwrap();
    let env_before = std::fs::read(stack.dir.join(".env")).unwrap();
    let ps_before = stack.compose(&["ps", "-q"]).stdout;

    let run = stack.hoist(&["rollback", "--yes"]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("sha256") && run.stderr.contains("RESTORE.md"),
        "{run:?}"
    );
    assert!(run.stderr.contains("Nothing was changed"), "{run:?}");
    assert_eq!(std::fs::read(stack.dir.join(".env")).unwrap(), env_before);
    assert_eq!(stack.compose(&["ps", "-q"]).stdout, ps_before);
    assert_eq!(stack.health_version(), "0.1.10");

    // A missing backup likewise.
    std::fs::write(&dump, &original).unwrap();
    let elsewhere = backup.parent().unwrap().with_extension("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let moved = elsewhere.join("renamed-by-the-user");
    std::fs::rename(&backup, &moved).unwrap();
    let run = stack.hoist(&["rollback", "--yes"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("is missing") && run.stderr.contains("--backup-dir"),
        "{run:?}"
    );
    assert_eq!(std::fs::read(stack.dir.join(".env")).unwrap(), env_before);
    // Given the directory it is in now, hoist finds it by its manifest and goes back.
    let run = stack.hoist(&[
        "--backup-dir",
        elsewhere.to_str().unwrap(),
        "rollback",
        "--yes",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(stack.health_version(), "0.1.9");
    assert_eq!(
        run.summary()["backup"].as_str().unwrap(),
        moved.to_str().unwrap(),
        "{run:?}"
    );
    // The journal now knows where it is: the next hoist finds it without --backup-dir.
    let history = stack.hoist(&["history", "--json"]).summary();
    assert_eq!(
        history["backups"][0]["path"].as_str().unwrap(),
        moved.to_str().unwrap(),
        "{history:#}"
    );
}

#[test]
fn an_edit_after_the_upgrade_is_a_loss_the_rollback_names_though_no_count_changed() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("edited", "0.1.11", 1);
    let upgraded = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes", "--json"]);
    assert_eq!(upgraded.code, 0, "{upgraded:?}");
    let (_, rows_upgraded) = database(&stack);
    let title = "SELECT title FROM issues WHERE id = 1";
    let original = common::fixture_sql(&stack, title);
    // A user edits an issue on 0.1.12: no table has more or fewer rows.
    common::fixture_sql(
        &stack,
        "UPDATE issues SET title = 'edited after the upgrade' WHERE id = 1",
    );
    assert_eq!(database(&stack).1, rows_upgraded, "counts unchanged");

    let refused = stack.hoist(&["rollback", "--json"]);
    assert_eq!(refused.code, 3, "{refused:?}");
    let error = refused.summary()["error"].as_str().unwrap().to_string();
    assert!(error.contains("1 updated row in issues"), "{error}");
    assert!(!error.contains("no rows were written"), "{error}");
    assert_eq!(pinned(&stack), "0.1.12");

    let run = stack.hoist(&["rollback", "--yes", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["decision"], "restore", "{s:#}");
    assert_eq!(
        s["losses"],
        serde_json::json!([{"table": "issues", "rows_in_backup": rows_upgraded["issues"],
            "rows_now": rows_upgraded["issues"], "inserted": 0, "updated": 1, "deleted": 0}]),
        "{s:#}"
    );
    // The restore put back the issue as the backup had it.
    assert_eq!(common::fixture_sql(&stack, title), original);
}

/// The issues' titles, oldest first.
fn titles(stack: &TestStack) -> Vec<String> {
    common::fixture_sql(stack, "SELECT title FROM issues ORDER BY id")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn after_an_additive_migration_the_previous_version_is_tried_first_and_restored_when_it_will_not_start()
 {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("additive", "0.1.10", 1);
    let titles_before = titles(&stack);
    let upgraded = stack.hoist(&["upgrade", "--to", "0.1.11", "--yes", "--json"]);
    assert_eq!(upgraded.code, 0, "{upgraded:?}");
    post_issue(&stack, "written on 0.1.11");

    // Without --yes: keeping is offered first, then the restore; both declined, nothing changed.
    let refused = stack.hoist(&["rollback", "--json"]);
    assert_eq!(refused.code, 3, "{refused:?}");
    let error = refused.summary()["error"].as_str().unwrap().to_string();
    for words in [
        "The change is additive, only additions (table saved_searches; column issues.metadata)",
        "1 inserted row in issues",
    ] {
        assert!(error.contains(words), "{words}: {error}");
    }
    assert_eq!(pinned(&stack), "0.1.11");

    // 0.1.10's alembic refuses a revision it does not know (0021): keeping fails, the backup
    // is restored.
    let run = stack.hoist(&["rollback", "--yes", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["decision"], "restore", "{s:#}");
    assert_eq!(s["keep"]["tried"], true, "{s:#}");
    let failed = s["keep"]["failed"].as_str().unwrap();
    assert!(
        failed.contains("0.1.10 did not come up on the newer schema"),
        "{failed}"
    );
    assert!(s["reason"].as_str().unwrap().contains(failed), "{s:#}");
    assert!(s["kept_aside"]["database"].is_string(), "{s:#}");
    assert_eq!(stack.health_version(), "0.1.10");
    assert_eq!(pinned(&stack), "0.1.10");
    assert_eq!(titles(&stack), titles_before, "the backup's rows, restored");
}

#[test]
fn after_additions_the_previous_version_that_runs_on_them_keeps_everything_written_since() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("keep", "0.1.9", 1);
    let upgraded = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes", "--json"]);
    assert_eq!(upgraded.code, 0, "{upgraded:?}");
    // As a release that migrates without a revision table would: a table and a column with a
    // default, which 0.1.9 does not know and does not need.
    common::fixture_sql(
        &stack,
        "ALTER TABLE issues ADD COLUMN pinned boolean NOT NULL DEFAULT false; \
         CREATE TABLE reactions (id serial PRIMARY KEY, issue_id integer, emoji text)",
    );
    post_issue(&stack, "written on 0.1.10");
    let titles_now = titles(&stack);

    let run = stack.hoist(&["rollback", "--yes", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["keep"]["kept"], true, "{s:#}");
    assert_eq!(
        s["schema_change"]["added"],
        serde_json::json!(["table reactions", "column issues.pinned"]),
        "{s:#}"
    );
    let steps = step_names(&s);
    assert!(
        !steps.iter().any(|n| n.starts_with("restore")),
        "nothing restored: {steps:?}"
    );
    assert_eq!(stack.health_version(), "0.1.9");
    assert_eq!(pinned(&stack), "0.1.9");
    assert_eq!(
        titles(&stack),
        titles_now,
        "every row written since is there"
    );
    // And 0.1.9 writes on the newer schema.
    post_issue(&stack, "written on 0.1.9");
}
