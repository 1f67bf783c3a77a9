//! One hoist at a time per project, with real hoist processes: a wizard holds the project's lock
//! while other hoists are refused (naming it, exit 3, nothing changed); a lock left by a hoist
//! killed with kill -9 is taken over and the log says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::pty::Wizard;
use common::{TestStack, docker_available};

fn lock_file(stack: &TestStack) -> PathBuf {
    hoist::lock::lock_file(&stack.state_dir, &stack.dir)
        .map_err(|e| e.sentence())
        .unwrap()
}

/// Every file beside the state dir (the project's files, its data, any backup) with its bytes:
/// what a refused hoist must leave as it was.
fn snapshot(stack: &TestStack) -> BTreeMap<PathBuf, Vec<u8>> {
    let root = stack.dir.parent().unwrap();
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // The app's worker and beat rewrite their heartbeat files every few seconds.
            if path == stack.state_dir || path.file_name().is_some_and(|n| n == "heartbeat") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                // The app's data dir belongs to the container's user; its names are enough.
                out.insert(path.clone(), Vec::new());
                if std::fs::read_dir(&path).is_ok() {
                    dirs.push(path);
                }
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    out
}

/// Every file, its bytes, as `before`: nothing was changed.
fn assert_unchanged(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let changed: Vec<_> = after
        .keys()
        .chain(before.keys())
        .filter(|k| after.get(*k) != before.get(*k))
        .collect();
    assert!(changed.is_empty(), "changed: {changed:?}");
}

fn runs_in_journal(stack: &TestStack) -> usize {
    let run = stack.hoist(&["history", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    run.summary()["runs"].as_array().unwrap().len()
}

#[test]
fn a_second_hoist_is_refused_naming_the_first_and_changes_nothing() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("lock", "0.1.9");
    let mut first = Wizard::start(&stack, 24, 120);
    first.wait_for("next step (recommended)", 60);
    let pid = first.pid();
    let before = snapshot(&stack);
    let runs = runs_in_journal(&stack);
    let dir = std::fs::canonicalize(&stack.dir).unwrap();
    let sentence = regex::Regex::new(&format!(
        r"^hoist: another hoist \(pid {pid}, `hoist -C {} --state-dir {}`, since \d\d:\d\d:\d\d UTC\) is working on {}; wait for it to finish, or stop it \(kill {pid}\) if it is stuck\. Nothing was changed\.\n$",
        regex::escape(stack.dir.to_str().unwrap()),
        regex::escape(stack.state_dir.to_str().unwrap()),
        regex::escape(dir.to_str().unwrap()),
    ))
    .unwrap();

    let second = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes"]);
    second.assert_no_panic();
    assert_eq!(second.code, 3, "{second:?}");
    assert!(sentence.is_match(&second.stderr), "{second:?}");
    assert_eq!(second.stdout, "", "{second:?}");

    // Scripts get the same under --json: one summary line naming the holder.
    let json = stack.hoist(&["backup", "--json"]);
    assert_eq!(json.code, 3, "{json:?}");
    let summary = json.summary();
    assert_eq!(summary["outcome"], "refused");
    assert_eq!(summary["command"], "backup");
    assert_eq!(summary["held_by"]["pid"], pid);
    assert!(sentence.is_match(&json.stderr), "{json:?}");

    let rollback = stack.hoist(&["rollback", "--yes"]);
    assert_eq!(rollback.code, 3, "{rollback:?}");
    assert!(sentence.is_match(&rollback.stderr), "{rollback:?}");

    // A hoist with another state dir (a second admin, root beside a docker-group user) meets
    // the lock on the project directory, and is told who holds it.
    let other_state = tempfile::tempdir().unwrap();
    let other = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("-C")
        .arg(&stack.dir)
        .arg("--state-dir")
        .arg(other_state.path())
        .args(["upgrade", "--to", "0.1.10", "--yes"])
        .output()
        .unwrap();
    let other = common::Run::of(other);
    assert_eq!(other.code, 3, "{other:?}");
    assert!(sentence.is_match(&other.stderr), "{other:?}");

    // A second wizard (two people in two SSH sessions) is refused before it draws anything.
    let mut other = Wizard::start(&stack, 24, 120);
    assert_eq!(other.exit_code(30), 3, "{}", other.contents());
    assert!(
        other
            .contents()
            .contains(&format!("another hoist (pid {pid}, `hoist -C")),
        "{}",
        other.contents()
    );

    // Read-only commands and a dry run do not wait for the lock.
    let status = stack.hoist(&["status"]);
    assert_eq!(status.code, 0, "{status:?}");
    let dry = stack.hoist(&["upgrade", "--to", "0.1.10", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");

    // Nothing changed: files, data, backups, the journal, the running version.
    assert_unchanged(&before, &snapshot(&stack));
    assert_eq!(runs_in_journal(&stack), runs);
    assert_eq!(stack.health_version(), "0.1.9");

    // Once the first one quits, the lock is free and says so (an empty file).
    first.keys("q");
    assert_eq!(first.exit_code(10), 0, "{}", first.contents());
    assert_eq!(std::fs::read_to_string(lock_file(&stack)).unwrap(), "");
    let after = stack.hoist(&["backup"]);
    assert_eq!(after.code, 0, "{after:?}");
    assert!(!after.stderr.contains("stale lock"), "{after:?}");
}

/// Two admins on one server: root's wizard holds the project while another Unix user of the
/// `docker` group (its own home, its own state dir) tries an upgrade and a backup: refused,
/// naming root's hoist, nothing changed.
#[test]
fn another_unix_user_is_refused_while_root_holds_the_project() {
    if !docker_available() {
        return;
    }
    if !common::is_root() {
        eprintln!("SKIPPED: needs root to run hoist as another user");
        return;
    }
    let docker_gid = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some("docker")).then(|| f.nth(1).map(str::to_string))?
        })
        .expect("the test bed's docker group");
    let stack = TestStack::start("lock-users", "0.1.9");
    common::set_mode(&stack.dir, 0o755);
    let mut first = Wizard::start(&stack, 24, 120);
    first.wait_for("next step (recommended)", 60);
    let pid = first.pid();
    let before = snapshot(&stack);
    let runs = runs_in_journal(&stack);

    // The other user's copy of hoist and its own state dir, as it would have them.
    let home = tempfile::tempdir().unwrap();
    common::set_mode(home.path(), 0o777);
    let bin = home.path().join("hoist");
    std::fs::copy(env!("CARGO_BIN_EXE_hoist"), &bin).unwrap();
    common::set_mode(&bin, 0o755);
    let as_other = |args: &[&str]| {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534"])
            .arg(format!("--groups={docker_gid}"))
            .arg("--")
            .arg(&bin)
            .arg("-C")
            .arg(&stack.dir)
            .arg("--state-dir")
            .arg(home.path().join("state"))
            .args(args)
            .env("HOME", home.path())
            .env("DOCKER_HOST", "unix:///var/run/docker.sock")
            .output()
            .unwrap();
        common::Run::of(out)
    };
    let holder = format!("another hoist (pid {pid}, `hoist -C");
    for args in [
        &["upgrade", "--to", "0.1.10", "--yes"][..],
        &["backup"][..],
        &["rollback", "--yes"][..],
    ] {
        let run = as_other(args);
        run.assert_no_panic();
        assert_eq!(run.code, 3, "{args:?}: {run:?}");
        assert!(run.stderr.contains(&holder), "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("Nothing was changed."),
            "{args:?}: {run:?}"
        );
    }
    assert_unchanged(&before, &snapshot(&stack));
    assert_eq!(runs_in_journal(&stack), runs);
    assert_eq!(stack.health_version(), "0.1.9");
    first.keys("q");
    assert_eq!(first.exit_code(10), 0, "{}", first.contents());
}

#[test]
fn a_lock_left_by_a_hoist_killed_with_kill_9_is_taken_over() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("lockstale", "0.1.9");
    let mut killed = Wizard::start(&stack, 24, 120);
    killed.wait_for("next step (recommended)", 60);
    let pid = killed.pid();
    let out = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    killed.exit_code(10);
    // The kernel dropped its flock; the file still names it.
    let left = std::fs::read_to_string(lock_file(&stack)).unwrap();
    assert!(left.contains(&format!("\"pid\":{pid},")), "{left}");

    let run = stack.hoist(&["backup", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.summary()["outcome"], "succeeded");
    let said = format!("took over a stale lock ({})", lock_file(&stack).display());
    assert!(run.stderr.contains(&said), "{run:?}");
    let log = std::fs::read_to_string(stack.state_dir.join("hoist.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains(&said))
        .unwrap_or_else(|| panic!("no takeover in the log:\n{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&format!("(pid {pid}, `hoist -C")), "{line}");
    assert!(line.contains("no longer running"), "{line}");
    // Released cleanly this time.
    assert_eq!(std::fs::read_to_string(lock_file(&stack)).unwrap(), "");
}

/// Without the test bed: a lock file written by hand naming a dead process is taken over.
#[test]
fn a_lock_file_naming_a_dead_process_is_taken_over() {
    let stack = TestStack::files_only("lockfile", "0.1.9");
    let path = lock_file(&stack);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(
        &path,
        format!(
            "{{\"pid\":{dead},\"command\":\"hoist upgrade --to 0.1.10\",\"since\":\"2025-06-01T14:02:11Z\",\"host\":\"\",\"project_dir\":\"{}\"}}\n",
            stack.dir.display()
        ),
    )
    .unwrap();
    // Whatever becomes of the backup (no stack runs here), the lock was not what stopped it.
    let run = stack.hoist(&["backup"]);
    run.assert_no_panic();
    assert!(!run.stderr.contains("another hoist"), "{run:?}");
    let log = std::fs::read_to_string(stack.state_dir.join("hoist.log")).unwrap();
    assert!(
        log.contains(&format!(
            "took over a stale lock ({}): the hoist that held it (pid {dead}, `hoist upgrade --to 0.1.10`, since 2025-06-01 14:02:11 UTC) ended without releasing it (no longer running)",
            path.display()
        )),
        "{log}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
}

/// A state dir where no lock can be made is a setup problem: exit 2, one sentence, nothing done.
#[test]
fn a_state_dir_that_cannot_hold_the_lock_stops_a_change() {
    let stack = TestStack::files_only("lockdir", "0.1.9");
    std::fs::create_dir_all(&stack.state_dir).unwrap();
    std::fs::write(stack.state_dir.join("locks"), "not a directory").unwrap();
    let env = std::fs::read(stack.dir.join(".env")).unwrap();
    let run = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes"]);
    run.assert_no_panic();
    assert_eq!(run.code, 2, "{run:?}");
    let locks = stack.state_dir.join("locks");
    assert_eq!(
        run.stderr,
        format!(
            "hoist: cannot create the lock directory {}: File exists (os error 17). hoist keeps a lock there so that only one hoist works on a project at a time; make the state directory writable, or pass --state-dir DIR on a local disk. Nothing was changed.\n",
            locks.display()
        )
    );
    assert_eq!(std::fs::read(stack.dir.join(".env")).unwrap(), env);
    assert!(!Path::new(&locks).is_dir());
}
