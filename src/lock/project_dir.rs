//! The lock every hoist meets on a project, whoever runs it and whatever state dir it keeps: a
//! `flock` on the project directory itself. Two admins (root and a `docker`-group user), or one
//! with two `--state-dir`s, would otherwise each take their own state dir's lock and upgrade
//! the same app at once. A directory can be locked by anyone who can read it, needs no file of
//! hoist's in the user's project, and, like every flock, is released by the kernel when its
//! holder dies. Who holds it is read from `/proc/locks` (the pid on the directory's inode) and
//! the holder's `/proc/PID/cmdline`, since a directory has no content to write a name into.
use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;

use super::Holder;

/// Locks `project_dir` (resolved). `Ok(Err(holder))`: another process holds it (its pid and
/// command when `/proc` says, else None).
pub(super) fn lock(project_dir: &Path) -> std::io::Result<Result<File, Option<Holder>>> {
    let dir = File::open(project_dir)?;
    // A holder releasing it, or a fork of this process not yet past its exec, holds it for a
    // moment: retried for a second before refusing.
    for _ in 0..20 {
        match dir.try_lock() {
            Ok(()) => return Ok(Ok(dir)),
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(50)),
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
    let meta = dir.metadata()?;
    Ok(Err(holder(project_dir, meta.dev(), meta.ino())))
}

/// The process `/proc/locks` says holds a flock on the inode `(dev, ino)`.
fn holder(project_dir: &Path, dev: u64, ino: u64) -> Option<Holder> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = holder_pid(&locks, dev, ino)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .skip(1)
        .map(|a| std::ffi::OsString::from(String::from_utf8_lossy(a).into_owned()));
    let since = std::fs::metadata(format!("/proc/{pid}"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok())
        .unwrap_or_else(Timestamp::now);
    Some(Holder {
        pid,
        command: super::command_line(args),
        since,
        host: super::hostname(),
        project_dir: project_dir.to_path_buf(),
    })
}

/// The pid of a FLOCK line on `(dev, ino)` in `/proc/locks`: `1: FLOCK  ADVISORY  WRITE 1234
/// fd:01:5678 0 EOF` (device as hex `major:minor`).
fn holder_pid(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let (major, minor) = (libc_major(dev), libc_minor(dev));
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let at = fields.iter().position(|f| *f == "FLOCK")?;
        let pid: u32 = fields.get(at + 3)?.parse().ok()?;
        let mut id = fields.get(at + 4)?.split(':');
        let (ma, mi, i) = (id.next()?, id.next()?, id.next()?);
        let same = u64::from_str_radix(ma, 16).ok()? == major
            && u64::from_str_radix(mi, 16).ok()? == minor
            && i.parse::<u64>().ok()? == ino;
        same.then_some(pid)
    })
}

/// Linux's `major()` and `minor()` of a `dev_t`.
fn libc_major(dev: u64) -> u64 {
    ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0fff)
}

fn libc_minor(dev: u64) -> u64 {
    ((dev >> 12) & 0xffff_ff00) | (dev & 0x00ff)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_holder_is_found_by_the_directory_inode() {
        let locks = "1: POSIX  ADVISORY  WRITE 99 fd:01:1234 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4321 fd:01:5678 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 77 08:02:5678 0 EOF\n";
        let dev = (0xfd << 8) | 0x01;
        assert_eq!(holder_pid(locks, dev, 5678), Some(4321));
        assert_eq!(holder_pid(locks, dev, 1234), None, "not a flock");
        assert_eq!(holder_pid(locks, (0x08 << 8) | 0x02, 5678), Some(77));
    }

    #[test]
    fn a_locked_directory_is_refused_to_a_second_opener_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap().unwrap();
        // A second open file description, as a second process would have.
        match lock(dir.path()).unwrap() {
            Err(Some(h)) => assert_eq!(h.pid, std::process::id()),
            Err(None) => panic!("the holder was not found in /proc/locks"),
            Ok(_) => panic!("locked twice"),
        }
        drop(first);
        assert!(lock(dir.path()).unwrap().is_ok(), "released with its file");
    }
}
