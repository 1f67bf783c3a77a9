//! The Docker daemon restarted in the middle of an upgrade, on the test bed: the daemon is sent
//! SIGTERM (it stops every container) and started again, as `systemctl restart docker` or a
//! package upgrade does. hoist waits for it, does the interrupted step again and finishes; or,
//! when it stays away too long, stops with the state said, and the next hoist continues the run.
//!
//! Restarting the daemon stops every container on it, so these tests run one at a time, and
//! test binaries run one after another: nothing else runs on the engine meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use common::{Run, TestStack, docker_available, repo_root};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Restarts the daemon, down `down_secs` in between; fails the test when it does not come back.
fn restart_engine(down_secs: u32) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let out = Command::new(repo_root().join("testbed/restart-engine.sh"))
            .env("HOIST_ENGINE_DOWN_SECS", down_secs.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "restart-engine.sh: {out:?}");
    })
}

/// Runs `hoist upgrade --to TO --yes --json` and restarts the daemon at the first event
/// `at` accepts; the run, once it ended and the daemon is back.
fn upgrade_restarting_engine(
    stack: &TestStack,
    to: &str,
    down_secs: u32,
    at: impl Fn(&serde_json::Value) -> bool,
) -> Run {
    let mut child = stack
        .hoist_command(&["upgrade", "--to", to, "--yes", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = Vec::new();
        stderr.read_to_end(&mut text).unwrap();
        text
    });
    let mut stdout = Vec::new();
    let mut restart = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if restart.is_none()
            && let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && at(&event)
        {
            restart = Some(restart_engine(down_secs));
        }
        stdout.extend_from_slice(line.as_bytes());
        stdout.push(b'\n');
    }
    let status = child.wait().unwrap();
    restart
        .expect("the event to restart the engine at never came")
        .join()
        .unwrap();
    Run::of(Output {
        status,
        stdout,
        stderr: stderr.join().unwrap(),
    })
}

fn step_started(step: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |e| e["type"] == "step_started" && e["step"] == step
}

/// The progress lines that say the engine went away and came back, in `step`.
fn engine_lines(run: &Run, step: &str) -> Vec<String> {
    run.json_lines()
        .iter()
        .filter(|e| e["type"] == "progress" && e["step"] == step)
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .filter(|m| m.contains("the Docker engine"))
        .collect()
}

#[test]
fn a_daemon_restart_during_the_restart_is_waited_out_and_the_upgrade_finishes() {
    if !docker_available() {
        return;
    }
    let _serial = serial();
    let stack = TestStack::start("engrestart", "0.1.9");
    let run = upgrade_restarting_engine(&stack, "0.1.10", 2, step_started("restart"));
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let said = engine_lines(&run, "restart");
    assert!(
        said.iter().any(|m| m.contains("went away during"))
            && said.iter().any(|m| m.contains("answers again")),
        "{said:?}\n{run:?}"
    );
    assert_eq!(run.summary()["outcome"], "succeeded");
    assert_eq!(stack.health_version(), "0.1.10");
    assert!(stack.hoist(&["status", "--json"]).summary()["attention"].is_null());
}

#[test]
fn a_daemon_restart_while_a_migration_runs_is_waited_out_and_the_upgrade_finishes() {
    if !docker_available() {
        return;
    }
    let _serial = serial();
    let stack = TestStack::start("engwatch", "0.1.10");
    let run = upgrade_restarting_engine(&stack, "0.1.11", 0, step_started("watch"));
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let said = engine_lines(&run, "watch");
    assert!(
        said.iter().any(|m| m.contains("went away during")),
        "{said:?}\n{run:?}"
    );
    let s = run.summary();
    assert_eq!(s["outcome"], "succeeded");
    assert_eq!(s["schema_after"], "0021", "{s:#}");
    assert_eq!(stack.health_version(), "0.1.11");
}

#[test]
fn a_daemon_restart_during_the_pull_and_backup_is_waited_out_with_a_whole_backup() {
    if !docker_available() {
        return;
    }
    let _serial = serial();
    // Uploads big enough that the backup is still running when the daemon, which first stops
    // every container (up to 15 s), drops its API: with the default 100 MB the pull and the
    // backup were once both done before it went (a CI flake).
    let stack = TestStack::start_sized("engpull", "0.1.9", 400);
    common::remove_image("127.0.0.1:5000/specivo/specivo:0.1.10");
    let run = upgrade_restarting_engine(&stack, "0.1.10", 1, |e| e["type"] == "pull");
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    // The pull or the backup (they run together) was cut off, and done again.
    let mut said = engine_lines(&run, "pull");
    said.extend(engine_lines(&run, "backup"));
    assert!(
        said.iter().any(|m| m.contains("went away during")),
        "{said:?}\n{run:?}"
    );
    let s = run.summary();
    assert_eq!(s["outcome"], "succeeded");
    hoist::backup::check(std::path::Path::new(s["backup"].as_str().unwrap())).unwrap();
    assert_eq!(stack.health_version(), "0.1.10");
}

#[test]
fn a_daemon_that_stays_away_ends_the_upgrade_with_its_state_said_and_the_next_hoist_continues_it() {
    if !docker_available() {
        return;
    }
    let _serial = serial();
    let stack = TestStack::start("engaway", "0.1.9");
    std::fs::write(stack.dir.join("hoist.yaml"), "timeouts:\n  engine: 4s\n").unwrap();
    let run = upgrade_restarting_engine(&stack, "0.1.10", 12, step_started("restart"));
    run.assert_no_panic();
    assert_eq!(run.code, 1, "{run:?}");
    let s = run.summary();
    let error = s["error"].as_str().unwrap();
    assert!(
        error.contains("did not answer again within 4 s")
            && error.contains(".env now pins SPECIVO_VERSION to 0.1.10"),
        "{error}"
    );
    assert_eq!(stack.env_value("SPECIVO_VERSION"), "0.1.10");
    // With the engine back, the next hoist offers the way on and the way back, and `upgrade`
    // to the same version goes on with the run's backup.
    let a = stack.hoist(&["status", "--json"]).summary()["attention"].clone();
    assert_eq!(a["state"], "interrupted", "{a:#}");
    assert_eq!(a["changed"], true, "{a:#}");
    assert_eq!(
        a["choices"],
        serde_json::json!(["continue", "rollback", "show"])
    );
    let again = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes", "--json"]);
    assert_eq!(again.code, 0, "{again:?}");
    let s = again.summary();
    assert_eq!(s["resumed_from"], a["run_id"], "{s:#}");
    assert_eq!(s["backup"], run.summary()["backup"]);
    assert_eq!(stack.health_version(), "0.1.10");
    assert!(stack.hoist(&["status", "--json"]).summary()["attention"].is_null());
}
