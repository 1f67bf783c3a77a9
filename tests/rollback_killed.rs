//! Red team: a restoring rollback killed outright (kill -9: no signal to catch, no safe point) at
//! each of its steps, on the test bed. Each round the next `hoist rollback` must finish: the app
//! on the previous version with the backup's schema, `status` with nothing left to attend to,
//! and the row written after the upgrade not lost — in the database, or in one that `status`
//! lists as kept aside.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{TestStack, db_state, docker_available, docker_exec, post_issue, user_files};

/// Runs `hoist rollback --yes --json` and kills it (SIGKILL) at the first event `when` picks.
/// Returns whether it got there.
fn kill_rollback_when(stack: &TestStack, when: impl Fn(&serde_json::Value) -> bool) -> bool {
    let mut child = stack
        .hoist_command(&["rollback", "--yes", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reached = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line.unwrap()) else {
            continue;
        };
        if when(&event) {
            child.kill().unwrap();
            reached = true;
            break;
        }
    }
    child.wait().unwrap();
    reached
}

/// How many issues titled `title` each database holds: the app's and those kept aside.
fn issue_copies(stack: &TestStack, databases: &[String], title: &str) -> Vec<(String, String)> {
    databases
        .iter()
        .map(|db| {
            let count = docker_exec(
                &stack.container("db"),
                &[
                    "psql",
                    "-U",
                    "specivo",
                    "-d",
                    db,
                    "-tAc",
                    &format!("SELECT count(*) FROM issues WHERE title = '{title}'"),
                ],
            );
            (db.clone(), count)
        })
        .collect()
}

#[test]
fn a_rollback_killed_at_each_step_is_finished_by_the_next_with_nothing_lost() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("rbkill", "0.1.11", 1);
    let data = stack.dir.join("specivo-data");
    // Each step as it starts, and once in the middle of the data's extraction (the app's data
    // moved aside, the backup's half written in its place).
    for step in [
        "stop",
        "restore_database",
        "restore_data",
        "extracting",
        "restart",
        "verify",
    ] {
        let files_before = user_files(&data);
        // 0.1.12's migration drops a column and rewrites the files: going back restores the
        // backup.
        let up = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes"]);
        assert_eq!(up.code, 0, "{step}: {up:?}");
        let title = format!("written on 0.1.12 before the kill at {step}");
        post_issue(&stack, &title);
        let files_upgraded = user_files(&data);

        let reached = kill_rollback_when(&stack, |e| match step {
            "extracting" => {
                e["type"] == "progress"
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("moved aside to"))
            }
            _ => e["type"] == "step_started" && e["step"] == step,
        });
        assert!(reached, "{step}: never reached");
        // The next hoist knows a rollback was cut short and finishes going back.
        let status = stack.hoist(&["status", "--json"]).summary();
        assert_eq!(
            status["attention"]["state"], "rollback_interrupted",
            "{step}: {status:#}"
        );
        let killed = status["attention"]["run_id"].as_str().unwrap().to_string();
        let again = stack.hoist(&["rollback", "--yes", "--json"]);
        again.assert_no_panic();
        assert_eq!(again.code, 0, "{step}: {again:?}");
        assert_eq!(stack.health_version(), "0.1.11", "{step}");
        assert!(
            std::fs::read_to_string(stack.dir.join(".env"))
                .unwrap()
                .contains("SPECIVO_VERSION=0.1.11\n"),
            "{step}"
        );
        let (revision, _) = db_state(&stack);
        assert_eq!(revision, "0021", "{step}: the backup's schema");
        // The backup's files, whole: never the newer ones, nor a half-extracted tree.
        assert_eq!(user_files(&data), files_before, "{step}: {again:?}");
        // What the report calls the newer data is the data as it was after the upgrade, never
        // a copy an interrupted attempt had half put back.
        let summary = again.summary();
        let newer: Vec<&str> = summary["newer_data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kind"] == "files")
            .map(|k| k["place"].as_str().unwrap())
            .collect();
        assert_eq!(newer.len(), 1, "{step}: {summary:#}");
        assert_eq!(
            user_files(std::path::Path::new(newer[0])),
            files_upgraded,
            "{step}: {summary:#}"
        );
        let status = stack.hoist(&["status", "--json"]).summary();
        assert!(status["attention"].is_null(), "{step}: {status:#}");
        // History says the killed run was cut short, not that it is still running.
        let history = stack.hoist(&["history", "--json"]).summary();
        assert!(
            history["interrupted_runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|id| id == killed.as_str()),
            "{step}: {history:#}"
        );
        // The row written after the upgrade is somewhere the user is told of.
        let mut databases = vec!["specivo".to_string()];
        databases.extend(
            status["kept_aside"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|k| k["kind"] == "database")
                .map(|k| k["place"].as_str().unwrap().to_string()),
        );
        let copies = issue_copies(&stack, &databases, &title);
        assert!(
            copies.iter().any(|(_, n)| n == "1"),
            "{step}: the row written after the upgrade is nowhere: {copies:?}\n{status:#}"
        );
    }
}
