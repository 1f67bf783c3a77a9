//! Fault injection on the test bed, each case asserting that nothing was lost: the backup
//! directory's disk too small or filling up during the backup, and hoist killed with SIGKILL
//! during the `.env` write and during the backup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Run, TestStack, docker_available};

/// service -> container id, for "was anything recreated?".
fn container_ids(stack: &TestStack) -> BTreeMap<String, String> {
    let out = stack.compose(&["ps", "-a", "--format", "{{.Service}} {{.ID}}"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(s, id)| (s.to_string(), id.to_string()))
        })
        .collect()
}

/// A small tmpfs mounted at `dir`, unmounted when dropped (pass or fail).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root");
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    fn free(&self) -> u64 {
        fs4::available_space(&self.dir).unwrap()
    }

    /// Takes all but `leave` bytes of the free space, at once (fallocate), as another process
    /// writing to the same disk would.
    ///
    /// The backup writes meanwhile: when what was free is gone before the allocation, it is
    /// measured and tried again.
    fn fill_leaving(&self, leave: u64) {
        use fs4::FileExt;
        let file = std::fs::File::create(self.dir.join("filler")).unwrap();
        let mut last = None;
        for _ in 0..50 {
            // A failed attempt may have kept some blocks: they count as the filler's.
            use std::os::unix::fs::MetadataExt;
            let held = file.metadata().unwrap().blocks() * 512;
            match file.allocate(held + self.free().saturating_sub(leave)) {
                Ok(()) => return,
                Err(e) => last = Some(e),
            }
        }
        panic!("the tmpfs could not be filled: {last:?}");
    }

    fn unfill(&self) {
        let _ = std::fs::remove_file(self.dir.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The entries of the backup root, hidden ones included ("" list when it does not exist).
fn entries(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(root) {
        Ok(e) => e
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Nothing in `root` looks like a backup unless it is one: every visible entry is a directory
/// that passes hoist's own check against its manifest; every hidden one is a `.NAME.partial`
/// directory. Returns (complete backups, partial dirs).
fn assert_nothing_looks_complete_that_is_not(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut complete, mut partial) = (Vec::new(), Vec::new());
    for name in entries(root) {
        let path = root.join(&name);
        assert!(
            path.is_dir(),
            "{} is not a backup directory",
            path.display()
        );
        if name.starts_with('.') {
            assert!(
                name.ends_with(".partial"),
                "{}: a hidden entry that is not a partial backup",
                path.display()
            );
            partial.push(path);
        } else {
            if let Err(e) = hoist::backup::check(&path) {
                panic!(
                    "{} looks like a backup but is not complete: {e}",
                    path.display()
                );
            }
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o700
            );
            complete.push(path);
        }
    }
    (complete, partial)
}

/// `.env` as a user cares about it: its bytes, mode and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EnvFile {
    bytes: Vec<u8>,
    mode: u32,
    owner: (u32, u32),
}

fn env_file(stack: &TestStack) -> EnvFile {
    let path = stack.dir.join(".env");
    let meta = std::fs::metadata(&path).expect(".env must never be missing");
    EnvFile {
        bytes: std::fs::read(&path).unwrap(),
        mode: meta.permissions().mode() & 0o7777,
        owner: (meta.uid(), meta.gid()),
    }
}

/// Temporary files of an interrupted `.env` write (pin::write_atomic's `..env.hoist-PID.tmp`).
fn env_temps(stack: &TestStack) -> Vec<String> {
    entries(&stack.dir)
        .into_iter()
        .filter(|n| n.starts_with("..env.hoist-") && n.ends_with(".tmp"))
        .collect()
}

/// A hoist started with its JSON Lines read as they come.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line and stderr, for the messages of failed assertions.
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

/// What `Watched::seek` found: the line, hoist's end, or neither in time.
#[derive(PartialEq, Eq)]
enum Sought {
    Seen,
    Ended,
    TimedOut,
}

impl Watched {
    fn spawn(mut cmd: Command) -> Watched {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                keep.lock().unwrap().push_str(&format!("{line}\n"));
                // The test may stop listening; the rest is still kept.
                let _ = tx.send(line);
            }
        });
        let keep = seen.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                keep.lock().unwrap().push_str(&format!("stderr: {line}\n"));
            }
        });
        Watched { child, lines, seen }
    }

    /// Waits (up to 60 s) for an event line containing every one of `parts`; false when hoist
    /// ended first.
    fn wait_for(&mut self, parts: &[&str]) -> bool {
        match self.seek(parts, Duration::from_secs(60)) {
            Sought::Seen => true,
            Sought::Ended => false,
            Sought::TimedOut => panic!("hoist did not report {parts:?} within 60 s"),
        }
    }

    /// Waits up to `limit` for an event line containing every one of `parts`: whether it came.
    fn saw_within(&mut self, parts: &[&str], limit: Duration) -> bool {
        self.seek(parts, limit) == Sought::Seen
    }

    /// The next event line containing every one of `parts`, within `limit`.
    fn seek(&mut self, parts: &[&str], limit: Duration) -> Sought {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Sought::TimedOut;
            }
            match self.lines.recv_timeout(left) {
                Ok(line) if parts.iter().all(|p| line.contains(p)) => return Sought::Seen,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return Sought::TimedOut,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Sought::Ended,
            }
        }
    }

    /// Polls (tightly) until `seen` is true; false when hoist ended first.
    fn wait_until(&mut self, seen: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if seen() {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return seen();
            }
            std::thread::yield_now();
        }
        panic!("the awaited state did not come within 60 s");
    }

    /// SIGKILL, and reaped: whether hoist was still running when killed, and what it said.
    fn kill_9(mut self) -> (bool, String) {
        let running = self.child.try_wait().unwrap().is_none();
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Give the readers a moment to take the last lines.
        std::thread::sleep(Duration::from_millis(20));
        let said = self.seen.lock().unwrap().clone();
        (running, said)
    }
}

/// A small pseudo-random sequence (no dependency for it): varied, and the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------------------------------------
// A full disk for the backup directory.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_backup_disk_too_small_by_the_estimate_is_refused_before_anything() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("full-estimate", "0.1.9", 20);
    let small = Tmpfs::mount(&stack.dir.parent().unwrap().join("small"), 8 << 20);
    let backups = small.dir.join("backups");
    let env_before = env_file(&stack);
    let ids_before = container_ids(&stack);

    for json in [false, true] {
        let mut args = vec![
            "--backup-dir",
            backups.to_str().unwrap(),
            "upgrade",
            "--to",
            "0.1.10",
            "--yes",
        ];
        if json {
            args.push("--json");
        }
        let run = stack.hoist(&args);
        run.assert_no_panic();
        assert_eq!(run.code, 3, "{run:?}");
        // One sentence: what is short (needed and free), where, and that nothing changed.
        for says in [
            "not enough free disk for the backup",
            "free on",
            "needed",
            "--backup-dir",
            "Nothing was changed",
        ] {
            assert!(run.stderr.contains(says), "{says:?} in {}", run.stderr);
        }
        assert!(!run.stderr.contains(".."), "{}", run.stderr);
        assert_eq!(run.stderr.matches("Nothing was changed").count(), 1);
        if json {
            let s = run.summary();
            assert_eq!(s["outcome"], "refused");
            assert_eq!(s["exit_code"], 3);
        }
        assert_eq!(env_file(&stack), env_before, ".env changed");
        assert_eq!(container_ids(&stack), ids_before, "containers recreated");
        assert!(entries(&backups).is_empty(), "{:?}", entries(&backups));
    }
    // `hoist backup` refuses the same way.
    let run = stack.hoist(&["--backup-dir", backups.to_str().unwrap(), "backup"]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("not enough free disk"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.matches("Nothing was changed").count(), 1);
    assert!(entries(&backups).is_empty());
}

/// Starts `args` on the stack, fills the tmpfs as soon as the backup's partial directory
/// appears, and returns the run.
fn fill_during_backup(stack: &TestStack, disk: &Tmpfs, backups: &Path, args: &[&str]) -> Run {
    let mut cmd = stack.hoist_command(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut filled = false;
    while Instant::now() < deadline {
        if entries(backups).iter().any(|n| n.ends_with(".partial")) {
            disk.fill_leaving(1 << 20);
            filled = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let run = Run::of(out);
    assert!(filled, "the backup never started: {run:?}");
    run
}

#[test]
fn a_disk_that_fills_during_the_backup_fails_cleanly_and_changes_nothing() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("full-during", "0.1.9", 20);
    let root = stack.dir.parent().unwrap().join("small");
    std::fs::create_dir_all(&root).unwrap();
    // Just big enough by hoist's own estimate (and its margin).
    let backups = root.join("backups");
    let check = stack.hoist(&["--backup-dir", backups.to_str().unwrap(), "check", "--json"]);
    let disk_finding = check
        .json_lines()
        .into_iter()
        .find(|f| f["type"] == "check" && f["name"] == "disk")
        .unwrap_or_else(|| panic!("no disk finding: {check:?}"));
    let needed = disk_finding["needed_bytes"].as_u64().unwrap();
    let estimate = disk_finding["estimate_bytes"].as_u64().unwrap();
    assert!(estimate > 20_000_000, "{disk_finding}");
    let disk = Tmpfs::mount(&root, needed + (16 << 20));
    let env_before = env_file(&stack);
    let ids_before = container_ids(&stack);

    // The upgrade: the backup fails, nothing is pinned or restarted.
    let args = [
        "--backup-dir",
        backups.to_str().unwrap(),
        "upgrade",
        "--to",
        "0.1.10",
        "--yes",
        "--json",
    ];
    let run = fill_during_backup(&stack, &disk, &backups, &args);
    run.assert_no_panic();
    assert_eq!(run.code, 1, "{run:?}");
    let s = run.summary();
    let sentence = s["error"].as_str().unwrap();
    for says in [
        "the backup failed",
        "is full",
        "the backup needs about",
        "is free there",
        "--backup-dir",
        "Nothing was changed",
    ] {
        assert!(sentence.contains(says), "{says:?} in {sentence}");
    }
    assert!(run.stderr.contains(sentence), "{}", run.stderr);
    let steps: Vec<(&str, &str)> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| (st["name"].as_str().unwrap(), st["status"].as_str().unwrap()))
        .collect();
    assert!(steps.contains(&("backup", "failed")), "{steps:?}");
    assert!(!steps.iter().any(|(n, _)| *n == "pin"), "{steps:?}");
    assert_eq!(env_file(&stack), env_before, ".env changed");
    assert_eq!(container_ids(&stack), ids_before, "containers recreated");
    assert!(
        entries(&backups).is_empty(),
        "left: {:?}",
        entries(&backups)
    );
    assert_eq!(stack.health_version(), "0.1.9");
    // The journal says the backup failed.
    let history = stack.hoist(&["history", "--json"]);
    let h = history.summary();
    assert_eq!(h["runs"][0]["outcome"], "failed", "{h}");
    assert!(h["backups"].as_array().is_none_or(|b| b.is_empty()), "{h}");

    // `hoist backup` alone, human output: the same clean failure.
    disk.unfill();
    let run = fill_during_backup(
        &stack,
        &disk,
        &backups,
        &["--backup-dir", backups.to_str().unwrap(), "backup"],
    );
    run.assert_no_panic();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("is full") && run.stderr.contains("Nothing was changed"),
        "{}",
        run.stderr
    );
    assert!(
        entries(&backups).is_empty(),
        "left: {:?}",
        entries(&backups)
    );

    // With the space back, the same backup succeeds: the failure left nothing in the way.
    disk.unfill();
    let run = stack.hoist(&["--backup-dir", backups.to_str().unwrap(), "backup"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (complete, partial) = assert_nothing_looks_complete_that_is_not(&backups);
    assert_eq!((complete.len(), partial.len()), (1, 0));
    drop(disk);
}

// ---------------------------------------------------------------------------------------------
// kill -9 of hoist.
// ---------------------------------------------------------------------------------------------

/// What a round of killing found `.env` to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Found {
    Old,
    New,
}

/// `.env` after a kill: old or new, whole, with its mode and owner. Puts the old one back
/// (and the stack with it, as a user would) when the kill came after the write.
fn judge_env(stack: &TestStack, old: &EnvFile, new_bytes: &[u8], round: &str) -> Found {
    let now = env_file(stack);
    assert_eq!(
        (now.mode, now.owner),
        (old.mode, old.owner),
        "{round}: .env lost its mode or owner"
    );
    if now.bytes == old.bytes {
        return Found::Old;
    }
    assert_eq!(
        now.bytes,
        new_bytes,
        "{round}: .env is neither the old nor the new file: {:?}",
        String::from_utf8_lossy(&now.bytes)
    );
    wait_for_orphans(stack);
    std::fs::write(stack.dir.join(".env"), &old.bytes).unwrap();
    // A stop hoist had asked the engine for just before it was killed (the write mark's, before
    // the restart) goes on inside the daemon, where no process shows it: a container it stops
    // under the `up --wait` below fails that; the next `up` starts it again, as a user's would.
    for attempt in 1..=3 {
        let out = stack.compose_output(&["up", "-d", "--wait"]);
        if out.status.success() {
            return Found::New;
        }
        eprintln!(
            "{round}: putting the old stack back, attempt {attempt}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    stack.compose(&["up", "-d", "--wait"]);
    Found::New
}

/// A kill -9 ends hoist, not its children: a `docker compose up -d` it had started after the
/// write may still be recreating the stack, and putting the old stack back meanwhile races it
/// (a CI run saw the api stopped under the test's own `up --wait`). Waits until no process
/// names the stack's directory any more.
fn wait_for_orphans(stack: &TestStack) {
    let dir = stack.dir.to_str().unwrap();
    let mut last = String::new();
    for _ in 0..600 {
        let found = Command::new("pgrep").args(["-af", dir]).output().unwrap();
        if !found.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&found.stdout).into_owned();
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("hoist's children outlived it by 60 s: {last}");
}

#[test]
fn kill_9_during_the_env_write_leaves_the_old_or_the_new_file_whole() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("kill-pin", "0.1.9", 1);
    let backups = stack.dir.parent().unwrap().join("backups");
    let b = backups.to_str().unwrap().to_string();
    let old = env_file(&stack);
    assert_eq!(old.mode, 0o600);
    let new_bytes = String::from_utf8(old.bytes.clone())
        .unwrap()
        .replace("SPECIVO_VERSION=0.1.9\n", "SPECIVO_VERSION=0.1.10\n")
        .into_bytes();
    let args = [
        "--backup-dir",
        b.as_str(),
        "upgrade",
        "--to",
        "0.1.10",
        "--yes",
        "--json",
    ];
    let budget = Duration::from_secs(80);
    let began = Instant::now();
    let mut rng = Lcg(7);
    // Delays after the pin step is announced: the write lies between `old_max` (the longest
    // delay that found the old file) and `new_min` (the shortest that found the new one).
    let (mut old_max, mut new_min) = (Duration::ZERO, Duration::from_millis(40));
    let mut tally: BTreeMap<String, u32> = BTreeMap::new();
    let mut round = 0;
    while began.elapsed() < budget || round < 6 {
        round += 1;
        let mut hoist = Watched::spawn(stack.hoist_command(&args));
        assert!(
            hoist.wait_for(&[r#""type":"step_started""#, r#""step":"pin""#]),
            "round {round}: hoist ended before the pin:\n{}",
            hoist.seen.lock().unwrap()
        );
        let announced = Instant::now();
        // Every third round kills the moment the temporary file exists: inside the write.
        let how = if round % 3 == 0 {
            let inside = hoist.wait_until(|| !env_temps(&stack).is_empty());
            if inside {
                "killed when the temporary file appeared"
            } else {
                "the temporary file was not seen"
            }
        } else {
            let span = new_min.saturating_sub(old_max).as_secs_f64();
            let delay = (old_max.as_secs_f64() - span * 0.25 + span * 1.5 * rng.next()).max(0.0);
            std::thread::sleep(Duration::from_secs_f64(delay));
            "killed after a delay"
        };
        let delay = announced.elapsed();
        let (killed_running, said) = hoist.kill_9();
        let temps = env_temps(&stack);
        let found = judge_env(&stack, &old, &new_bytes, &format!("round {round}"));
        if how == "killed after a delay" {
            // Narrow the window where the write happens, to aim the next kills at it.
            match found {
                Found::Old => old_max = old_max.max(delay),
                Found::New => new_min = new_min.min(delay),
            }
            if new_min <= old_max {
                new_min = old_max + Duration::from_millis(1);
            }
        }
        let outcome = match (found, temps.is_empty()) {
            (Found::Old, false) => "old file whole, temp left: killed inside the write",
            (Found::Old, true) => "old file whole: killed before the write",
            (Found::New, _) => "new file whole: killed after the write",
        };
        let key = format!("{how}: {outcome}");
        *tally.entry(key.clone()).or_default() += 1;
        assert!(
            killed_running || found == Found::New,
            "round {round}: {key}\n{said}"
        );
        // The backup dir is never confused either.
        assert_nothing_looks_complete_that_is_not(&backups);
    }
    eprintln!(
        "{round} rounds in {:.0} s; the write lies between {old_max:?} and {new_min:?} after the pin is announced: {tally:#?}",
        began.elapsed().as_secs_f64()
    );
    assert!(
        tally.keys().any(|k| k.contains("killed inside the write")),
        "no kill landed inside the write: {tally:?}"
    );

    // The next hoist is not confused by what the kills left: it upgrades, and removes the
    // temporary files (a leftover with our future pid would otherwise block its write).
    let leftover = stack.dir.join("..env.hoist-4194303.tmp");
    std::fs::write(&leftover, "SPECIVO_VERSION=0.1.1").unwrap();
    let run = stack.hoist(&["--backup-dir", &b, "upgrade", "--to", "0.1.10", "--yes"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let now = env_file(&stack);
    assert_eq!(now.bytes, new_bytes);
    assert_eq!((now.mode, now.owner), (old.mode, old.owner));
    assert!(env_temps(&stack).is_empty(), "{:?}", env_temps(&stack));
    let log = std::fs::read_to_string(stack.state_dir.join("hoist.log")).unwrap();
    assert!(
        log.contains("removed a temporary file left by a hoist"),
        "{log}"
    );
    assert_eq!(stack.health_version(), "0.1.10");
}

/// Where a round of the backup test kills hoist: when a file of the backup appears (in the
/// partial directory, or the finished directory itself), or after a delay.
const BACKUP_STAGES: [&str; 8] = [
    "database.sql.gz.tmp",
    "database.sql.gz",
    "data-specivo-data.tar.gz.tmp",
    "data-specivo-data.tar.gz",
    "env",
    "manifest.json",
    "RESTORE.md",
    "(renamed)",
];

/// Whether the backup under `root` has reached `stage`.
fn reached(root: &Path, stage: &str) -> bool {
    let names = entries(root);
    if stage == "(renamed)" {
        return names.iter().any(|n| !n.starts_with('.'));
    }
    names
        .iter()
        .filter(|n| n.ends_with(".partial"))
        .any(|n| root.join(n).join(stage).exists())
}

#[test]
fn kill_9_during_the_backup_leaves_nothing_that_looks_complete() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("kill-backup", "0.1.9", 20);
    let backups = stack.dir.parent().unwrap().join("backups");
    let b = backups.to_str().unwrap().to_string();
    let old = env_file(&stack);
    let new_bytes = String::from_utf8(old.bytes.clone())
        .unwrap()
        .replace("SPECIVO_VERSION=0.1.9\n", "SPECIVO_VERSION=0.1.10\n")
        .into_bytes();
    let args = [
        "--backup-dir",
        b.as_str(),
        "upgrade",
        "--to",
        "0.1.10",
        "--yes",
        "--json",
    ];
    let budget = Duration::from_secs(80);
    let began = Instant::now();
    let mut rng = Lcg(11);
    let mut backup_time = Duration::from_millis(1500);
    let mut tally: BTreeMap<String, u32> = BTreeMap::new();
    let mut partial_left = false;
    let mut round = 0;
    while began.elapsed() < budget || round < BACKUP_STAGES.len() {
        round += 1;
        // Each round clears the complete backups of the one before, so that a backup that
        // appears is this round's.
        for dir in assert_nothing_looks_complete_that_is_not(&backups).0 {
            std::fs::remove_dir_all(dir).unwrap();
        }
        let mut hoist = Watched::spawn(stack.hoist_command(&args));
        assert!(
            hoist.wait_for(&[r#""type":"step_started""#, r#""step":"backup""#]),
            "round {round}: hoist ended before the backup:\n{}",
            hoist.seen.lock().unwrap()
        );
        let announced = Instant::now();
        let how = if round % 2 == 1 {
            let i = (round / 2) % BACKUP_STAGES.len();
            let stage = BACKUP_STAGES[i];
            // Or a later one: a busy machine may not look in time to see a short stage.
            hoist.wait_until(|| BACKUP_STAGES[i..].iter().any(|s| reached(&backups, s)));
            format!("when {stage} appeared")
        } else {
            let delay = backup_time.mul_f64(rng.next());
            // At the latest when the backup ends: a kill after the restart began would test
            // another thing (and leave a run whose backup the next round removes).
            hoist.saw_within(&[r#""type":"step_finished""#, r#""step":"backup""#], delay);
            format!(
                "{} % into the backup",
                (delay.as_secs_f64() / backup_time.as_secs_f64() * 10.0).floor() * 10.0
            )
        };
        let (killed_running, said) = hoist.kill_9();
        let found = judge_env(&stack, &old, &new_bytes, &format!("round {round}"));
        assert!(
            killed_running,
            "round {round}: hoist had ended ({how}):\n{said}"
        );
        let (complete, partial) = assert_nothing_looks_complete_that_is_not(&backups);
        // A partial directory holds the dump: private like a backup.
        for p in &partial {
            assert_eq!(
                std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        // The partial directory a kill left is removed by the next backup: never two.
        assert!(partial.len() <= 1, "round {round}: {partial:?}");
        partial_left |= !partial.is_empty();
        if complete.len() == 1 && partial.is_empty() {
            backup_time = backup_time.min(announced.elapsed());
        }
        let left = match (complete.len(), partial.len()) {
            (0, 0) => "nothing",
            (0, _) => "a hidden partial dir",
            (_, 0) => "a complete backup",
            _ => "a complete backup and a stale partial",
        };
        *tally
            .entry(format!("killed {how}: {left}, .env {found:?}"))
            .or_default() += 1;
    }
    eprintln!(
        "{round} rounds in {:.0} s: {tally:#?}",
        began.elapsed().as_secs_f64()
    );
    assert!(partial_left, "no kill landed inside a backup: {tally:?}");
    assert!(
        tally.keys().any(|k| k.contains("a complete backup")),
        "no kill came after a backup was complete: {tally:?}"
    );

    // One more kill in the middle of the archive, then the next backup removes what it left,
    // and says so.
    let mut hoist = Watched::spawn(stack.hoist_command(&args));
    assert!(hoist.wait_for(&[r#""type":"step_started""#, r#""step":"backup""#]));
    hoist.wait_until(|| reached(&backups, "data-specivo-data.tar.gz.tmp"));
    let (running, said) = hoist.kill_9();
    assert!(running, "hoist had ended before the kill: {said}");
    let (_, stale) = assert_nothing_looks_complete_that_is_not(&backups);
    assert_eq!(stale.len(), 1, "{stale:?}");
    let run = stack.hoist(&["--backup-dir", &b, "backup", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let removed: Vec<PathBuf> = run.summary()["removed_partials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    assert_eq!(removed, stale);
    let (complete, partial) = assert_nothing_looks_complete_that_is_not(&backups);
    assert!(partial.is_empty() && !complete.is_empty());
    let log = std::fs::read_to_string(stack.state_dir.join("hoist.log")).unwrap();
    assert!(
        log.contains("removed the partial backup left by a hoist"),
        "{log}"
    );
    assert_eq!(env_file(&stack), old);
}

#[test]
fn a_database_stopped_during_its_dump_fails_the_backup_and_changes_nothing() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("dbstop", "0.1.9", 1);
    // A table big enough that the dump takes seconds, so the stop lands in the middle of it.
    let fill = stack.compose(&[
        "exec",
        "-T",
        "db",
        "psql",
        "-U",
        "specivo",
        "-d",
        "specivo",
        "-c",
        "CREATE TABLE ballast AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS pad FROM generate_series(1, 3000000) g",
    ]);
    assert!(fill.status.success(), "{fill:?}");
    let env_before = std::fs::read(stack.dir.join(".env")).unwrap();
    let backups = stack.dir.parent().unwrap().join("backups");
    let b = backups.to_str().unwrap();
    let mut child = stack
        .hoist_command(&[
            "--backup-dir",
            b,
            "upgrade",
            "--to",
            "0.1.10",
            "--yes",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut stopped_at = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if stopped_at.is_none()
            && event["type"] == "backup_progress"
            && event["part"].as_str().unwrap().starts_with("database")
            && event["bytes"].as_u64().unwrap() > 0
        {
            let stop = Command::new("docker")
                .args(["stop", "-t", "1", &stack.container("db")])
                .output()
                .unwrap();
            assert!(stop.status.success(), "{stop:?}");
            stopped_at = Some(event["bytes"].as_u64().unwrap());
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: lines.join("\n"),
        stderr,
    };
    run.assert_no_panic();
    let stopped_at = stopped_at.unwrap_or_else(|| panic!("the dump never reported bytes: {run:?}"));
    assert_eq!(run.code, 1, "stopped after {stopped_at} bytes: {run:?}");
    let s = run.summary();
    let error = s["error"].as_str().unwrap();
    // pg_dump's own words, and the state hoist found: the database is down, nothing changed.
    assert!(
        error.contains("the database dump failed")
            && error.contains("not running now (db is exited")
            && error.contains("changed nothing: .env still pins 0.1.9")
            && error.contains("`docker compose start db`"),
        "{error}"
    );
    // Nothing pinned, nothing that looks like a backup, no partial left.
    assert_eq!(std::fs::read(stack.dir.join(".env")).unwrap(), env_before);
    assert!(
        !run.stdout.contains("\"step\":\"pin\""),
        "a pin step ran: {run:?}"
    );
    let (visible, partial) = assert_nothing_looks_complete_that_is_not(&backups);
    assert!(
        visible.is_empty() && partial.is_empty(),
        "{visible:?} {partial:?}"
    );
    let h = stack.hoist(&["history", "--json"]).summary();
    assert!(h["backups"].as_array().is_none_or(|b| b.is_empty()), "{h}");
    // With the database started again, the next backup is whole.
    let start = stack.compose(&["start", "db"]);
    assert!(start.status.success(), "{start:?}");
    stack.wait_inspect("db", "{{.State.Health.Status}}", "healthy", 60);
    let drop = stack.compose(&[
        "exec",
        "-T",
        "db",
        "psql",
        "-U",
        "specivo",
        "-d",
        "specivo",
        "-c",
        "DROP TABLE ballast",
    ]);
    assert!(drop.status.success(), "{drop:?}");
    let backup = stack.hoist(&["--backup-dir", b, "backup", "--json"]);
    assert_eq!(backup.code, 0, "{backup:?}");
    let (visible, _) = assert_nothing_looks_complete_that_is_not(&backups);
    assert_eq!(visible.len(), 1, "{visible:?}");
}

#[test]
fn a_backup_dir_inside_the_apps_data_or_a_dangling_link_is_refused_before_anything() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("badbackupdir", "0.1.9", 1);
    let env_before = env_file(&stack);
    let ids_before = container_ids(&stack);
    let inside = stack.dir.join("specivo-data").join("backups");
    let inside = inside.to_str().unwrap();

    let check = stack.hoist(&["--backup-dir", inside, "check"]);
    assert_eq!(check.code, 3, "{check:?}");
    assert!(
        check.stdout.contains("which every backup archives"),
        "{check:?}"
    );
    let backup = stack.hoist(&["--backup-dir", inside, "backup"]);
    backup.assert_no_panic();
    assert_eq!(backup.code, 2, "{backup:?}");
    assert!(
        backup.stderr.contains("which every backup archives")
            && backup.stderr.contains("Nothing was changed"),
        "{backup:?}"
    );
    let upgrade = stack.hoist(&["--backup-dir", inside, "upgrade", "--to", "0.1.10", "--yes"]);
    assert_eq!(upgrade.code, 3, "{upgrade:?}");
    assert!(!Path::new(inside).exists(), "no backup was written");

    // A link to a directory that is not there (a disk not mounted): said, not "File exists".
    let link = stack.dir.parent().unwrap().join("badbackupdir-link");
    std::os::unix::fs::symlink("/nonexistent/hoist-backups", &link).unwrap();
    let link = link.to_str().unwrap();
    let check = stack.hoist(&["--backup-dir", link, "check"]);
    assert_eq!(check.code, 3, "{check:?}");
    assert!(
        check
            .stdout
            .contains("is a symbolic link to /nonexistent/hoist-backups, which does not exist"),
        "{check:?}"
    );
    let backup = stack.hoist(&["--backup-dir", link, "backup"]);
    assert_eq!(backup.code, 2, "{backup:?}");
    assert!(!backup.stderr.contains("File exists"), "{backup:?}");

    assert_eq!(env_file(&stack), env_before, ".env changed");
    assert_eq!(container_ids(&stack), ids_before, "containers recreated");
}

/// The state dir fills while the backup is taken: the journal cannot record the run, so the
/// upgrade stops before its first change, and says why (it used to finish "upgraded", exit 0,
/// with a journal that kept the run as running for ever).
#[test]
fn a_state_dir_that_fills_during_the_upgrade_stops_it_before_any_change() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("state-full", "0.1.9", 20);
    let state = Tmpfs::mount(
        &stack.dir.parent().unwrap().join("state-full-state"),
        8 << 20,
    );
    let backups = stack.dir.parent().unwrap().join("state-full-backups");
    let env_before = env_file(&stack);
    let ids_before = container_ids(&stack);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.arg("-C")
        .arg(&stack.dir)
        .arg("--state-dir")
        .arg(&state.dir)
        .arg("--backup-dir")
        .arg(&backups)
        .args(["upgrade", "--to", "0.1.10", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut filled = false;
    while Instant::now() < deadline {
        if entries(&backups).iter().any(|n| n.ends_with(".partial")) {
            state.fill_leaving(0);
            filled = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let run = Run::of(child.wait_with_output().unwrap());
    assert!(filled, "the backup never started: {run:?}");
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("hoist's journal could not record this upgrade")
            && run.stderr.contains("Nothing was changed"),
        "{run:?}"
    );
    assert_eq!(env_file(&stack), env_before, ".env changed");
    assert_eq!(container_ids(&stack), ids_before, "containers recreated");
    assert_eq!(stack.health_version(), "0.1.9");
}
