//! The wizard end to end in a real pseudo-terminal on the test bed, keys typed as a user would;
//! each test asserts on what is on the screen and on the stack. The terminal is 80x24, the
//! smallest a user is likely to have: every question the engine asks must be read whole there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Instant;

use common::pty::Wizard;
use common::{TestStack, docker_available};

const ROWS: u16 = 24;
const COLS: u16 = 80;

fn wizard(stack: &TestStack) -> Wizard {
    Wizard::start(stack, ROWS, COLS)
}

#[test]
fn a_user_upgrades_0_1_9_to_0_1_10_in_the_wizard() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("wizard", "0.1.9");
    let mut w = wizard(&stack);
    // The start screen: health, the newer versions, the next step preselected.
    w.wait_for("next step (recommended)", 30);
    let start = w.contents();
    assert!(start.contains("> 0.1.10"), "{start}");
    assert!(
        start.contains("api        0.1.9      running, healthy"),
        "{start}"
    );
    w.keys("\r");
    // The plan, then the question, whole, above the key bar.
    w.wait_for(
        &format!("Upgrade {} from 0.1.9 to 0.1.10? [y/n", stack.project),
        30,
    );
    let plan = w.contents();
    assert!(
        plan.contains("SPECIVO_VERSION=0.1.9 -> SPECIVO_VERSION=0.1.10"),
        "{plan}"
    );
    // The backup's directory is on a row of its own, whole.
    assert!(
        plan.contains(&format!("Into:     {}-backups", stack.dir.display())),
        "{plan}"
    );
    w.keys("y");
    w.wait_for("runs 0.1.10 now", 180);
    // The screen's last lines too: a frame can reach the terminal in more than one read.
    w.wait_for("scp -r ", 30);
    let done = w.contents();
    assert!(done.contains("Downtime:"), "{done}");
    // The command to go back later carries the stack's -C and --state-dir, so it wraps, and
    // only between its words.
    assert!(done.contains("To go back later:"), "{done}");
    assert!(done.contains("--state-dir"), "{done}");
    assert!(done.contains(" rollback` (it restores"), "{done}");
    assert_eq!(stack.health_version(), "0.1.10");
    w.keys("q");
    assert_eq!(w.exit_code(10), 0);
    // Once the wizard has left the screen, the copy command is printed whole, where the
    // terminal wraps it without breaking it.
    let backup = only_backup(&stack);
    let printed = w.contents().replace('\n', "");
    assert!(
        printed.contains(&format!(":{} .", backup.display())),
        "{printed}"
    );
}

/// The one backup in the stack's backup dir.
fn only_backup(stack: &TestStack) -> std::path::PathBuf {
    let root = std::path::PathBuf::from(format!("{}-backups", stack.dir.display()));
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

#[test]
fn a_broken_release_fails_and_the_user_accepts_the_offered_rollback() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("wizardfail", "0.1.12");
    let mut w = wizard(&stack);
    w.upgrade_to_next("0.1.13", 30);
    // The failure, its evidence, and the planner's offer with its reason.
    w.wait_for("Roll back now? [y/n]", 180);
    let failed = w.contents();
    assert!(failed.contains("Watch logs failed"), "{failed}");
    assert!(failed.contains("ImportError"), "{failed}");
    assert!(failed.contains("by pinning it again"), "{failed}");
    assert!(failed.contains("Why: Binary-only rollback"), "{failed}");
    // Only the failed service's last lines: the healthy worker's say nothing about it.
    assert!(failed.contains("Last lines of api"), "{failed}");
    assert!(!failed.contains("Last lines of worker"), "{failed}");
    w.keys("y");
    w.wait_for("runs 0.1.12 again", 180);
    assert_eq!(stack.health_version(), "0.1.12");
    w.keys("q");
    assert_eq!(w.exit_code(10), 4);
}

#[test]
fn a_user_stops_the_upgrade_at_its_next_safe_point() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("wizardstop", "0.1.9");
    let env_before = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    let mut w = wizard(&stack);
    w.wait_for("next step (recommended)", 30);
    w.keys("\r");
    w.wait_for("? [y/n", 30);
    // Yes, then at once q (the explanation) and s (stop at the next safe point): all three
    // are read long before the backup ends, the first safe point.
    w.keys("yqs");
    w.wait_for("Stopped, as you asked", 180);
    let stopped = w.contents();
    assert!(stopped.contains("before any change"), "{stopped}");
    assert!(stopped.contains("Backup:"), "{stopped}");
    assert_eq!(
        std::fs::read_to_string(stack.dir.join(".env")).unwrap(),
        env_before
    );
    assert_eq!(stack.health_version(), "0.1.9");
    w.keys("q");
    assert_eq!(w.exit_code(10), 3);
}

#[test]
fn a_multi_release_upgrade_says_which_release_runs() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("wizardhops", "0.1.9");
    let mut w = wizard(&stack);
    w.wait_for("next step (recommended)", 30);
    // A version typed instead of chosen: two releases on the way.
    w.keys("0.1.11\r");
    w.wait_for("? [y/n", 30);
    assert!(
        w.contents().contains("Path:     0.1.10 -> 0.1.11"),
        "{}",
        w.contents()
    );
    w.keys("y");
    w.wait_for("release 2 of 2: 0.1.10 -> 0.1.11", 240);
    w.wait_for("runs 0.1.11 now", 240);
    assert_eq!(stack.health_version(), "0.1.11");
    w.keys("q");
    assert_eq!(w.exit_code(10), 0);
}

#[test]
fn going_on_past_a_stopped_service_asks_for_its_word_in_sight() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("wizardover", "0.1.9");
    stack.compose(&["stop", "worker"]);
    let env_before = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    let mut w = wizard(&stack);
    w.wait_for("next step (recommended)", 30);
    w.keys("\r");
    w.wait_for("Type override and press Enter to say yes", 60);
    let asked = w.contents();
    assert!(asked.contains("Upgrade although worker"), "{asked}");
    w.keys("\x1b");
    w.wait_for("the stack is not ready to upgrade", 30);
    assert_eq!(
        std::fs::read_to_string(stack.dir.join(".env")).unwrap(),
        env_before
    );
    w.keys("q");
    assert_eq!(w.exit_code(10), 3);
}

/// Upgraded yesterday, broken today: the home offers the way back, with what it does.
#[test]
fn a_user_rolls_back_the_last_upgrade_from_the_home() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("wizardback", "0.1.9");
    let run = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(stack.health_version(), "0.1.10");
    let mut w = wizard(&stack);
    w.choose("Roll back the last upgrade", 30);
    let home = w.contents();
    assert!(home.contains("0.1.10 -> 0.1.9"), "{home}");
    assert!(
        home.contains("Going back pins 0.1.9 again, no restore"),
        "{home}"
    );
    w.keys("\r");
    // The question, whole, above the key bar.
    w.wait_for("Go on? [y/n]", 10);
    let asked = w.contents();
    assert!(
        asked.contains("from 0.1.10 to 0.1.9 (pin 0.1.9 again,"),
        "{asked}"
    );
    w.keys("y");
    w.wait_for("runs 0.1.9 again", 180);
    assert_eq!(stack.health_version(), "0.1.9");
    w.keys("q");
    assert_eq!(w.exit_code(10), 0);
}

/// After a migration, going back restores the backup: the engine asks for the word, with
/// what a restore takes away, in sight at 80x24.
#[test]
fn a_rollback_from_the_home_that_restores_asks_for_the_word() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("wizardrestore", "0.1.11");
    let run = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut w = wizard(&stack);
    w.choose("Roll back the last upgrade", 60);
    assert!(w.contents().contains("with a restore"), "{}", w.contents());
    w.keys("\r");
    w.wait_for("Type restore and press Enter to restore", 120);
    let asked = w.contents();
    assert!(asked.contains("Rolling back the last upgrade"), "{asked}");
    assert!(asked.contains("by restoring the backup first"), "{asked}");
    assert!(asked.contains("Why: "), "{asked}");
    w.keys("restore\r");
    w.wait_for("runs 0.1.11 again", 240);
    assert_eq!(stack.health_version(), "0.1.11");
    w.keys("q");
    assert_eq!(w.exit_code(10), 0);
}

/// A backup chosen from the home's list is restored: the engine asks for the word with what a
/// restore takes away, and the app runs the backup's version after.
#[test]
fn a_user_restores_a_chosen_backup_from_the_home() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("wizardpick", "0.1.10");
    let run = stack.hoist(&["upgrade", "--to", "0.1.11", "--yes"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mut w = wizard(&stack);
    w.choose("Restore a backup", 60);
    w.keys("\r");
    w.wait_for("verified", 30);
    w.keys("\r");
    w.wait_for("Go on? [y/n]", 10);
    w.keys("y");
    w.wait_for("Type restore and press Enter to restore", 120);
    assert!(
        w.contents().contains("you asked to put back"),
        "{}",
        w.contents()
    );
    w.keys("restore\r");
    w.wait_for("runs 0.1.10 again", 240);
    assert!(w.contents().contains("Restored: "), "{}", w.contents());
    assert_eq!(stack.health_version(), "0.1.10");
    w.keys("q");
    assert_eq!(w.exit_code(10), 0);
}

#[test]
fn a_user_backs_up_now_from_the_home() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("wizardbackup", "0.1.9");
    let mut w = wizard(&stack);
    w.choose("Back up now", 30);
    w.keys("\r");
    w.wait_for("Backup taken", 120);
    w.wait_for("scp -r ", 10);
    let backup = only_backup(&stack);
    assert!(backup.join("manifest.json").is_file());
    // Back home: the backup is in the journal now.
    w.keys("\r");
    w.choose("History", 30);
    assert!(w.contents().contains("1 run, 1 backup"), "{}", w.contents());
    w.keys("\r");
    w.wait_for("History of", 10);
    w.wait_for("succeeded at 0.1.9", 10);
    w.keys("\x1b");
    w.wait_for("Roll back the last upgrade", 10);
    w.keys("q");
    assert_eq!(w.exit_code(10), 0);
}

/// For the closing note, not pass/fail: bytes written to the terminal per minute while the
/// wizard follows a service logging ~2000 lines a second, against `docker compose logs -f` on the
/// same log. `cargo test --test wizard_pty busy_log -- --ignored --nocapture`.
#[test]
#[ignore]
fn busy_log_terminal_bytes_per_minute() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("busylog", "0.1.9");
    let compose = stack.dir.join("compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    let flood = r#"
  flood:
    image: 127.0.0.1:5000/specivo/specivo:${SPECIVO_VERSION:-latest}
    entrypoint: ["python3", "-c", "import itertools, time\nfor i in itertools.count():\n    print('INFO:     172.18.0.1 - GET /api/issues/%d HTTP/1.1 200 OK' % i, flush=True)\n    time.sleep(0.0005)"]
"#;
    let text = text.replacen("\nservices:\n", &format!("\nservices:{flood}"), 1);
    std::fs::write(&compose, text).unwrap();
    // flood has no healthcheck: a 60 s stability window keeps the wizard on its log.
    std::fs::write(stack.dir.join("hoist.yaml"), "ready_after: 60s\n").unwrap();
    stack.compose(&["up", "-d", "--wait"]);
    let mut w = wizard(&stack);
    w.wait_for("next step (recommended)", 30);
    w.keys("\r");
    w.wait_for("? [y/n", 30);
    w.keys("y");
    w.wait_for("Following the app's logs", 120);
    let compose_logs = Command::new("timeout")
        .args(["50", "docker", "compose", "--project-directory"])
        .arg(&stack.dir)
        .args(["logs", "-f", "--since", "1s", "flood"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = w.bytes();
    let started = Instant::now();
    let compose_bytes = compose_logs.wait_with_output().unwrap().stdout.len() as f64;
    let secs = started.elapsed().as_secs_f64();
    let wizard_bytes = (w.bytes() - start) as f64;
    println!(
        "over {secs:.0} s: wizard {:.0} bytes/min, docker compose logs -f {:.0} bytes/min ({:.1}x)",
        wizard_bytes * 60.0 / secs,
        compose_bytes * 60.0 / 50.0,
        compose_bytes / wizard_bytes
    );
    w.wait_for("runs 0.1.10 now", 180);
    w.keys("q");
}

/// `hoist upgrade` without `--yes` in a terminal asks there, y/N: "n" (or Enter) stops before
/// anything changed, "y" upgrades.
#[test]
fn a_headless_upgrade_in_a_terminal_asks_before_it_starts() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("asks", "0.1.9");
    let env_before = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    let mut no = Wizard::start_with(&stack, 40, 120, &["upgrade", "--to", "0.1.10"]);
    no.wait_for("[y/N", 120);
    // 0.1.10 never ran here: the rehearsal is offered, with its cost, before the question.
    let asked = no.contents();
    assert!(asked.contains("[y/N/t]"), "{asked}");
    assert!(asked.contains("0.1.10 has not run here before"), "{asked}");
    no.keys("n\r");
    assert_eq!(no.exit_code(60), 3, "{}", no.contents());
    assert_eq!(
        std::fs::read_to_string(stack.dir.join(".env")).unwrap(),
        env_before
    );
    let mut yes = Wizard::start_with(&stack, 40, 120, &["upgrade", "--to", "0.1.10"]);
    yes.wait_for("[y/N", 120);
    yes.keys("y\r");
    assert_eq!(yes.exit_code(300), 0, "{}", yes.contents());
    assert_eq!(stack.health_version(), "0.1.10");
}
