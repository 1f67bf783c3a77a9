//! One hoist at a time per project, with real hoist processes: a wizard holds the project's lock
//! while other hoists are refused (naming it, exit 3, nothing changed); a lock left by a hoist
//! killed with kill -9 is taken over and the log says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestStack, docker_available};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// hoist with no command (the wizard) in a PTY: a real hoist that holds the lock until it quits.
struct Wizard {
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn std::io::Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Wizard {
    fn start(stack: &TestStack) -> Wizard {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.arg("-C");
        cmd.arg(&stack.dir);
        cmd.arg("--state-dir");
        cmd.arg(&stack.state_dir);
        cmd.env("TERM", "xterm-256color");
        cmd.env("NO_COLOR", "1");
        let child = pty.slave.spawn_command(cmd).unwrap();
        drop(pty.slave);
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(24).unwrap(),
            NonZeroU16::new(120).unwrap(),
            0,
        )));
        let mut reader = pty.master.try_clone_reader().unwrap();
        let parser = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                parser.lock().unwrap().process(&buf[..n]);
            }
        });
        let writer = pty.master.take_writer().unwrap();
        // Dropping the master would hang the wizard up.
        std::mem::forget(pty.master);
        Wizard {
            screen,
            writer,
            child,
        }
    }

    fn pid(&self) -> u32 {
        self.child.process_id().unwrap()
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn wait_for(&self, text: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !self.contents().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the screen never showed {text:?}; it shows:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    fn exit_code(&mut self, secs: u64) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "hoist did not exit:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Wizard {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

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
            if path == stack.state_dir {
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
    let mut first = Wizard::start(&stack);
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

    // A second wizard (two people in two SSH sessions) is refused before it draws anything.
    let mut other = Wizard::start(&stack);
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
    assert_eq!(snapshot(&stack), before);
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

#[test]
fn a_lock_left_by_a_hoist_killed_with_kill_9_is_taken_over() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("lockstale", "0.1.9");
    let mut killed = Wizard::start(&stack);
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
