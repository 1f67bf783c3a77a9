//! One hoist at a time per project: an advisory lock (`flock`) on a file in the state dir,
//! `<state dir>/locks/<project>-<hash>.lock`, held for as long as the `ProjectLock` lives.
//!
//! The kernel releases the lock when its holder dies, even on `kill -9`, so a lock can never
//! outlive its process; the file's content only says who holds it, for the sentence a second
//! hoist prints. A clean release empties the file, so content found when taking the lock means
//! the last holder died without releasing it: a stale lock, taken over and reported.
//! The file is never deleted: deleting it would let two processes lock two different inodes.
//!
//! A second lock, on the project directory itself (`project_dir.rs`), is met by every hoist
//! whoever runs it and whatever its state dir: the state dir's lock names its holder, this one
//! excludes them all.
mod project_dir;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Who holds (or held) a project's lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The holder's command line, for people (`hoist upgrade --to 0.1.10`).
    pub command: String,
    pub since: Timestamp,
    pub host: String,
    pub project_dir: PathBuf,
}

impl Holder {
    /// This process, about to hold the lock on `project_dir`.
    pub fn this_process(project_dir: &Path) -> Holder {
        Holder {
            pid: std::process::id(),
            command: command_line(std::env::args_os().skip(1)),
            since: Timestamp::now(),
            host: hostname(),
            project_dir: project_dir.to_path_buf(),
        }
    }

    /// One JSON object on one line: readable with `cat`, parseable by the next hoist.
    pub fn to_line(&self) -> String {
        json!({
            "pid": self.pid,
            "command": self.command,
            "since": self.since.to_string(),
            "host": self.host,
            "project_dir": self.project_dir.display().to_string(),
        })
        .to_string()
            + "\n"
    }

    /// The holder a lock file names; `None` for an empty or partly written file.
    pub fn parse(text: &str) -> Option<Holder> {
        let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
        Some(Holder {
            pid: u32::try_from(v["pid"].as_u64()?).ok()?,
            command: v["command"].as_str()?.to_string(),
            since: v["since"].as_str()?.parse().ok()?,
            host: v["host"].as_str().unwrap_or_default().to_string(),
            project_dir: PathBuf::from(v["project_dir"].as_str().unwrap_or_default()),
        })
    }

    /// Whether the holder runs on this machine (only then does its pid mean anything here).
    fn is_local(&self) -> bool {
        self.host.is_empty() || self.host == hostname()
    }

    /// `pid 1234, `hoist upgrade --to 0.1.10`, since 14:02:11 UTC`
    fn describe(&self, now: Timestamp) -> String {
        format!(
            "pid {}, `{}`, since {}",
            self.pid,
            self.command,
            since_words(self.since, now)
        )
    }
}

/// A held project lock; dropping it (or the process ending in any way) releases it.
#[derive(Debug)]
pub struct ProjectLock {
    file: File,
    path: PathBuf,
    /// The project directory, flocked (once taken); released with this lock.
    _project: Option<File>,
}

impl ProjectLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        // Emptied while still locked: an empty file tells the next hoist we ended cleanly.
        if let Err(err) = self.file.set_len(0) {
            tracing::warn!(
                "could not empty the lock file {} on release: {err}; the next hoist will report a stale lock, which is harmless",
                self.path.display()
            );
        }
    }
}

/// What was in the lock file when this process took the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// Empty: the last holder released it cleanly (or there was none).
    Released,
    /// A holder that ended without releasing it (killed, crashed, power lost).
    Stale(Holder),
    /// Content that does not parse: a holder killed while writing it.
    Unreadable,
}

#[derive(Debug)]
pub struct Acquired {
    pub lock: ProjectLock,
    pub previous: Previous,
}

impl Acquired {
    /// The sentence for the log (and stderr) when a stale lock was taken over; `None` otherwise.
    pub fn takeover_sentence(&self) -> Option<String> {
        let path = self.lock.path.display();
        match &self.previous {
            Previous::Released => None,
            Previous::Stale(h) => {
                let how = if !h.is_local() {
                    format!("on host {}", h.host)
                } else if pid_alive(h.pid) {
                    "no longer holding it; that pid now belongs to another process".to_string()
                } else {
                    "no longer running".to_string()
                };
                Some(format!(
                    "took over a stale lock ({path}): the hoist that held it ({}) ended without releasing it ({how}); its run may have stopped part way, so `hoist status` and `hoist history` say what it did.",
                    h.describe(Timestamp::now())
                ))
            }
            Previous::Unreadable => Some(format!(
                "took over a stale lock ({path}) whose holder ended without releasing it and without saying who it was; its run may have stopped part way, so `hoist status` and `hoist history` say what it did."
            )),
        }
    }
}

#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock: refused, nothing was changed (exit 3).
    Held {
        project_dir: PathBuf,
        lock_file: PathBuf,
        holder: Option<Box<Holder>>,
    },
    /// The lock cannot be taken at all (state dir not writable, no flock on that file system):
    /// a problem of the setup, and nothing was changed (exit 2).
    Unusable(String),
}

impl LockError {
    pub fn exit_code(&self) -> u8 {
        match self {
            LockError::Held { .. } => 3,
            LockError::Unusable(_) => 2,
        }
    }

    pub fn sentence(&self) -> String {
        match self {
            LockError::Held {
                project_dir,
                lock_file,
                holder,
            } => held_sentence(project_dir, lock_file, holder.as_deref(), Timestamp::now()),
            LockError::Unusable(s) => s.clone(),
        }
    }

    /// The JSON Lines summary of a command that did not run because of the lock.
    pub fn summary(&self, command: &str) -> serde_json::Value {
        let mut v = json!({
            "type": "summary",
            "command": command,
            "outcome": match self {
                LockError::Held { .. } => "refused",
                LockError::Unusable(_) => "error",
            },
            "exit_code": self.exit_code(),
            "error": self.sentence(),
        });
        if let LockError::Held {
            holder: Some(h), ..
        } = self
        {
            v["held_by"] = json!({
                "pid": h.pid,
                "command": h.command,
                "since": h.since.to_string(),
                "host": h.host,
            });
        }
        v
    }
}

/// The sentence a second hoist prints.
fn held_sentence(
    project_dir: &Path,
    lock_file: &Path,
    holder: Option<&Holder>,
    now: Timestamp,
) -> String {
    let dir = project_dir.display();
    match holder {
        Some(h) if h.is_local() => format!(
            "another hoist ({}) is working on {dir}; wait for it to finish, or stop it (kill {}) if it is stuck. Nothing was changed.",
            h.describe(now),
            h.pid
        ),
        Some(h) => format!(
            "another hoist on host {} ({}) is working on {dir}; wait for it to finish, or stop it there (kill {}) if it is stuck. Nothing was changed.",
            h.host,
            h.describe(now),
            h.pid
        ),
        None => format!(
            "another hoist is working on {dir} (it holds {}, which does not say who it is); wait for it to finish, or find it with `fuser -v {}`. Nothing was changed.",
            lock_file.display(),
            lock_file.display()
        ),
    }
}

/// The lock file of `project_dir` under `state_dir` (the project dir resolved, so a symlink or
/// `..` in the path names the same lock).
pub fn lock_file(state_dir: &Path, project_dir: &Path) -> Result<PathBuf, LockError> {
    Ok(state_dir
        .join("locks")
        .join(lock_name(&resolve(project_dir)?)))
}

fn resolve(project_dir: &Path) -> Result<PathBuf, LockError> {
    std::fs::canonicalize(project_dir).map_err(|e| {
        LockError::Unusable(format!(
            "cannot resolve the project directory {} to take hoist's lock on it: {e}. Check that it exists and is readable; nothing was changed.",
            project_dir.display()
        ))
    })
}

/// `<last component, sanitised>-<16 hex digits of the path's sha256>.lock`: unique per path, and
/// a person listing the dir can tell which project each file is for.
fn lock_name(canonical: &Path) -> String {
    let base: String = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".to_string())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let hash = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    format!("{base}-{}.lock", &hex::encode(hash)[..16])
}

/// Takes the lock of `project_dir` for this process, or says who holds it.
pub fn acquire(state_dir: &Path, project_dir: &Path) -> Result<Acquired, LockError> {
    use std::os::unix::fs::OpenOptionsExt;
    let project_dir = resolve(project_dir)?;
    let dir = state_dir.join("locks");
    let path = dir.join(lock_name(&project_dir));
    let unusable = |what: String, e: std::io::Error| {
        LockError::Unusable(format!(
            "cannot {what}: {e}. hoist keeps a lock there so that only one hoist works on a project at a time; make the state directory writable, or pass --state-dir DIR on a local disk. Nothing was changed."
        ))
    };
    let on_file = |what: &str| format!("{what} {}", path.display());
    crate::fsutil::create_private_dir(&dir)
        .map_err(|e| unusable(format!("create the lock directory {}", dir.display()), e))?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        // The holder's content is read before it is replaced.
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| unusable(on_file("open the lock file"), e))?;
    if let Some(holder) =
        wait_for_lock(&mut file).map_err(|e| unusable(on_file("lock the lock file"), e))?
    {
        return Err(LockError::Held {
            holder: holder.map(Box::new),
            project_dir,
            lock_file: path,
        });
    }
    let previous = match read_text(&mut file) {
        Ok(text) if text.trim().is_empty() => Previous::Released,
        Ok(text) => Holder::parse(&text).map_or(Previous::Unreadable, Previous::Stale),
        Err(e) => return Err(unusable(on_file("read the lock file"), e)),
    };
    let me = Holder::this_process(&project_dir);
    write_holder(&mut file, &me)
        .map_err(|e| unusable(on_file("write who holds the lock into"), e))?;
    // Held from here, so that a refusal below empties the file again on its way out.
    let mut lock = ProjectLock {
        file,
        path,
        _project: None,
    };
    // Every hoist on this project, whoever runs it and whatever its state dir.
    let project = match project_dir::lock(&project_dir) {
        Ok(Ok(project)) => project,
        Ok(Err(holder)) => {
            return Err(LockError::Held {
                holder: holder.map(Box::new),
                lock_file: project_dir.clone(),
                project_dir,
            });
        }
        Err(e) => {
            return Err(LockError::Unusable(format!(
                "cannot lock the project directory {}: {e}. hoist locks it so that only one hoist works on a project at a time, whoever runs it; check that you may read it. Nothing was changed.",
                project_dir.display()
            )));
        }
    };
    lock._project = Some(project);
    Ok(Acquired { lock, previous })
}

/// Tries to lock `file`: `None` once locked, else who holds it (`Some(None)`: it does not say).
/// A holder that names a live process is final at once. An empty file, or one naming a dead
/// process, is a holder between its lock and its write, or one releasing, or a fork of this
/// process not yet past its exec (which holds a copy of the descriptor, and so the lock, for
/// a moment): worth a second of retries before refusing.
fn wait_for_lock(file: &mut File) -> std::io::Result<Option<Option<Holder>>> {
    let mut last = None;
    for _ in 0..40 {
        match file.try_lock() {
            Ok(()) => return Ok(None),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(e),
        }
        last = read_text(file).ok().and_then(|t| Holder::parse(&t));
        if let Some(h) = &last
            && (!h.is_local() || pid_alive(h.pid))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(Some(last))
}

fn read_text(file: &mut File) -> std::io::Result<String> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    Ok(text)
}

fn write_holder(file: &mut File, holder: &Holder) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(holder.to_line().as_bytes())?;
    file.sync_all()
}

/// Whether a process with this pid exists on this machine.
fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// `hoist` and the arguments, quoted as a shell would need them (for people to read and rerun).
pub fn command_line(args: impl Iterator<Item = std::ffi::OsString>) -> String {
    let mut line = "hoist".to_string();
    for arg in args {
        let arg = arg.to_string_lossy();
        line.push(' ');
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
        if plain {
            line.push_str(&arg);
        } else {
            line.push('\'');
            line.push_str(&arg.replace('\'', r"'\''"));
            line.push('\'');
        }
    }
    line
}

/// `14:02:11 UTC` today, `2025-03-01 14:02:11 UTC` on another day.
fn since_words(since: Timestamp, now: Timestamp) -> String {
    let then = since.to_zoned(TimeZone::UTC);
    if then.date() == now.to_zoned(TimeZone::UTC).date() {
        then.strftime("%H:%M:%S UTC").to_string()
    } else {
        then.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn holder(pid: u32, host: &str) -> Holder {
        Holder {
            pid,
            command: "hoist upgrade --to 0.1.10".to_string(),
            since: ts("2025-06-01T14:02:11Z"),
            host: host.to_string(),
            project_dir: PathBuf::from("/opt/specivo"),
        }
    }

    #[test]
    fn the_holder_line_reads_back() {
        let h = holder(1234, "web1");
        assert_eq!(Holder::parse(&h.to_line()), Some(h));
        assert_eq!(Holder::parse(""), None);
        assert_eq!(Holder::parse("{\"pid\": 12, \"comm"), None);
    }

    #[test]
    fn a_second_hoist_names_pid_command_and_since() {
        let h = holder(1234, "");
        let s = held_sentence(
            Path::new("/opt/specivo"),
            Path::new("/x.lock"),
            Some(&h),
            ts("2025-06-01T14:30:00Z"),
        );
        assert_eq!(
            s,
            "another hoist (pid 1234, `hoist upgrade --to 0.1.10`, since 14:02:11 UTC) is working on /opt/specivo; wait for it to finish, or stop it (kill 1234) if it is stuck. Nothing was changed."
        );
        // On another day the date is given too.
        let s = held_sentence(
            Path::new("/opt/specivo"),
            Path::new("/x.lock"),
            Some(&h),
            ts("2025-06-02T09:00:00Z"),
        );
        assert!(s.contains("since 2025-06-01 14:02:11 UTC"), "{s}");
    }

    #[test]
    fn a_holder_on_another_host_or_unknown_is_said_so() {
        let s = held_sentence(
            Path::new("/opt/specivo"),
            Path::new("/x.lock"),
            Some(&holder(7, "some-other-host-that-is-not-this-one")),
            ts("2025-06-01T14:30:00Z"),
        );
        assert!(
            s.starts_with("another hoist on host some-other-host-that-is-not-this-one (pid 7,"),
            "{s}"
        );
        let s = held_sentence(
            Path::new("/opt/specivo"),
            Path::new("/s/locks/x.lock"),
            None,
            ts("2025-06-01T14:30:00Z"),
        );
        assert!(s.contains("fuser -v /s/locks/x.lock"), "{s}");
        assert!(s.ends_with("Nothing was changed."), "{s}");
    }

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let args = ["-C", "/opt/my app", "upgrade", "--to", "0.1.10", "it's"];
        assert_eq!(
            command_line(args.iter().map(std::ffi::OsString::from)),
            r"hoist -C '/opt/my app' upgrade --to 0.1.10 'it'\''s'"
        );
    }

    #[test]
    fn one_project_one_lock_file_whatever_the_path_spelling() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("my app");
        let b = root.path().join("other");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::os::unix::fs::symlink(&a, root.path().join("link")).unwrap();
        let state = root.path().join("state");
        let la = lock_file(&state, &a).unwrap();
        assert_eq!(la, lock_file(&state, &root.path().join("link")).unwrap());
        assert_eq!(la, lock_file(&state, &b.join("../my app")).unwrap());
        assert_ne!(la, lock_file(&state, &b).unwrap());
        let name = la.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("my_app-") && name.ends_with(".lock"),
            "{name}"
        );
        assert_eq!(lock_name(Path::new("/")).len(), "root-".len() + 16 + 5);
    }

    #[test]
    fn a_held_lock_is_refused_and_a_released_one_is_taken_cleanly() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        let first = acquire(&state, root.path()).unwrap();
        assert_eq!(first.previous, Previous::Released);
        assert_eq!(first.takeover_sentence(), None);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(first.lock.path()), 0o600);
        assert_eq!(mode(first.lock.path().parent().unwrap()), 0o700);
        // flock conflicts between two opens even in one process, so this stands for a second hoist.
        match acquire(&state, root.path()) {
            Err(e @ LockError::Held { .. }) => {
                assert_eq!(e.exit_code(), 3);
                let LockError::Held { holder, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(holder.as_ref().map(|h| h.pid), Some(std::process::id()));
                assert_eq!(e.summary("backup")["outcome"], "refused");
                assert_eq!(e.summary("backup")["held_by"]["pid"], std::process::id());
            }
            other => panic!("not refused: {other:?}"),
        }
        let path = first.lock.path().to_path_buf();
        drop(first);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let again = acquire(&state, root.path()).unwrap();
        assert_eq!(again.previous, Previous::Released);
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        let path = lock_file(&state, root.path()).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mut left = holder(dead, "");
        left.project_dir = root.path().to_path_buf();
        std::fs::write(&path, left.to_line()).unwrap();
        let taken = acquire(&state, root.path()).unwrap();
        assert_eq!(taken.previous, Previous::Stale(left));
        let said = taken.takeover_sentence().unwrap();
        assert!(said.contains(&format!("pid {dead},")), "{said}");
        assert!(said.contains("no longer running"), "{said}");
        let now = Holder::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(now.pid, std::process::id());
        drop(taken);
        // Garbage (a holder killed mid-write) is a stale lock too.
        std::fs::write(&path, "{\"pid\": 4").unwrap();
        let taken = acquire(&state, root.path()).unwrap();
        assert_eq!(taken.previous, Previous::Unreadable);
        assert!(taken.takeover_sentence().is_some());
    }

    #[test]
    fn a_state_dir_that_cannot_hold_the_lock_is_a_setup_error() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("locks"), "a file, not a dir").unwrap();
        match acquire(&state, root.path()) {
            Err(e @ LockError::Unusable(_)) => {
                assert_eq!(e.exit_code(), 2);
                let s = e.sentence();
                assert!(s.contains("--state-dir"), "{s}");
                assert!(s.ends_with("Nothing was changed."), "{s}");
            }
            other => panic!("not an error: {other:?}"),
        }
    }
}
