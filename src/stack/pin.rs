//! Pinning the version in `.env`: one value changes, every other byte stays, and the file is
//! replaced atomically (temporary file in the same directory, fsync, rename) with its mode and
//! owner kept, so a crash leaves the old file or the new one, whole.
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::envfile::EnvFile;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: super::envfile::EnvFileError,
    },
}

/// What the pin changed: the line before and after (for a diff), 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinChange {
    pub line: Option<usize>,
    pub before: Option<String>,
    pub after: String,
    pub old_text: String,
    pub new_text: String,
}

/// The `.env` text with `variable` set to `value`, and what changed; nothing is written.
pub fn plan(path: &Path, variable: &str, value: &str) -> Result<PinChange, PinError> {
    let old_text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(path, e)),
    };
    let parse = |text: &str| {
        EnvFile::parse(text).map_err(|source| PinError::Parse {
            path: path.display().to_string(),
            source,
        })
    };
    let mut doc = parse(&old_text)?;
    let line_of = |doc: &EnvFile, text: &str| {
        doc.line_of(variable)
            .and_then(|l| text.lines().nth(l - 1).map(str::to_string))
    };
    let before = line_of(&doc, &old_text);
    doc.set(variable, value).map_err(|source| PinError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    let new_text = doc.render();
    let line = doc.line_of(variable);
    let after = line_of(&parse(&new_text)?, &new_text).unwrap_or_default();
    Ok(PinChange {
        line,
        before,
        after,
        old_text,
        new_text,
    })
}

fn io(path: &Path, e: std::io::Error) -> PinError {
    PinError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Replaces `path` with `text` atomically, keeping the old file's mode and owner (0600 for a
/// new file: it holds secrets).
pub fn write_atomic(path: &Path, text: &str) -> Result<(), PinError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let old = std::fs::metadata(path).ok();
    let mode = old
        .as_ref()
        .map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".env".into());
    remove_stale_temps(dir, &name);
    let tmp = dir.join(temp_name(&name, std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        // create_new applies the umask: set the mode exactly.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some(m) = &old {
            std::os::unix::fs::fchown(&file, Some(m.uid()), Some(m.gid()))?;
        }
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path, e));
    }
    Ok(())
}

/// `.NAME.hoist-PID.tmp`: where the new file is written before it replaces NAME.
fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.hoist-{pid}.tmp")
}

/// The pid in a temporary name of ours for `name`, if `file` is one.
fn temp_pid(name: &str, file: &str) -> Option<u32> {
    file.strip_prefix(&format!(".{name}.hoist-"))?
        .strip_suffix(".tmp")?
        .parse()
        .ok()
}

/// Removes the temporary files a hoist killed in the middle of a write left beside `name` (the
/// old file is intact; the temporary one may be half-written and holds secrets). One whose
/// process still runs is left alone; ours can only be stale, from a dead process with our pid.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_pid(name, &file) else {
            continue;
        };
        if pid != me && Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => tracing::warn!(
                file = %entry.path().display(),
                "removed a temporary file left by a hoist that was stopped while writing {name}"
            ),
            Err(e) => tracing::warn!(
                file = %entry.path().display(),
                "a temporary file left by a stopped hoist could not be removed: {e}"
            ),
        }
    }
}

/// Sets `variable` to `value` in the `.env` at `path`, atomically.
pub fn pin(path: &Path, variable: &str, value: &str) -> Result<PinChange, PinError> {
    let change = plan(path, variable, value)?;
    write_atomic(path, &change.new_text)?;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_changes_one_line_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let text = "# Specivo\nexport SPECIVO_VERSION=0.1.9 # pinned\nPASS='a b'\n";
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let change = pin(&path, "SPECIVO_VERSION", "0.1.10").unwrap();
        assert_eq!(
            change.before.as_deref(),
            Some("export SPECIVO_VERSION=0.1.9 # pinned")
        );
        assert_eq!(change.after, "export SPECIVO_VERSION=0.1.10 # pinned");
        assert_eq!(change.line, Some(2));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# Specivo\nexport SPECIVO_VERSION=0.1.10 # pinned\nPASS='a b'\n"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    }

    #[test]
    fn a_temporary_file_left_by_a_killed_write_is_removed_and_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "V=1\nPASS=x\n").unwrap();
        // One from a dead process, one from a process with our pid (a reused pid), one from a
        // live process (pid 1), and an unrelated file.
        let dead = dir.path().join(temp_name(".env", u32::MAX - 1));
        let reused = dir.path().join(temp_name(".env", std::process::id()));
        let live = dir.path().join(temp_name(".env", 1));
        let other = dir.path().join("..env.hoist-notes.tmp");
        for p in [&dead, &reused, &live, &other] {
            std::fs::write(p, "V=half").unwrap();
        }
        pin(&path, "V", "2").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "V=2\nPASS=x\n");
        assert!(!dead.exists() && !reused.exists());
        assert!(live.exists() && other.exists());
        assert_eq!(temp_pid(".env", ".env.hoist-42.tmp"), None);
        assert_eq!(temp_pid(".env", "..env.hoist-42.tmp"), Some(42));
    }

    #[test]
    fn a_bad_env_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "BAD KEY=1\n").unwrap();
        assert!(pin(&path, "V", "1").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "BAD KEY=1\n");
    }
}
