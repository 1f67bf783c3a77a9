//! Pinning the version where it is written (`.env`, or a literal tag in a compose file): one
//! value changes, every other byte stays, and the file is replaced atomically (temporary file
//! in the same directory, fsync, rename) with its mode and owner kept, so a crash leaves the
//! old file or the new one, whole. A symlinked file is written through: its target changes
//! and the link stays.
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::envfile::EnvFile;
use super::locate::{Site, split_tag};

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: super::envfile::EnvFileError,
    },
    #[error("hoist cannot tell where the app's version is written: {0}")]
    Unknown(String),
    #[error(
        "{path} line {line} no longer reads `image: {image}`: the file changed since hoist read it; run hoist again"
    )]
    Moved {
        path: String,
        line: usize,
        image: String,
    },
}

/// What the pin changed: the line before and after (for a diff), 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinChange {
    /// The file that changes.
    pub path: PathBuf,
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
        path: path.to_path_buf(),
        line,
        before,
        after,
        old_text,
        new_text,
    })
}

/// The change that pins `value` at `site` (`.env` at `env_path` for a variable); nothing is
/// written.
pub fn plan_at(site: &Site, env_path: &Path, value: &str) -> Result<PinChange, PinError> {
    match site {
        Site::Env { variable } => plan(env_path, variable, value),
        Site::Image { variable, image } => plan(env_path, variable, &retagged(image, value)),
        Site::Tags {
            file,
            lines,
            repositories,
            ..
        } => plan_tag(file, lines, repositories, value),
        Site::Unknown { reason } => Err(PinError::Unknown(reason.clone())),
    }
}

/// The image a literal tag becomes at `value`: the same repository, the new tag, no digest
/// (a digest would keep the old bits).
pub fn retagged(image: &str, value: &str) -> String {
    format!("{}:{value}", split_tag(image).0)
}

/// The compose file with the tag of `image` on each of `lines` set to `value`, every other
/// byte kept (quotes, comments, indentation).
fn plan_tag(
    file: &Path,
    lines: &[usize],
    repositories: &[String],
    value: &str,
) -> Result<PinChange, PinError> {
    let old_text = std::fs::read_to_string(file).map_err(|e| io(file, e))?;
    let mut out = String::with_capacity(old_text.len() + 16);
    let (mut before, mut after) = (None, String::new());
    for (i, line) in old_text.split_inclusive('\n').enumerate() {
        if !lines.contains(&(i + 1)) {
            out.push_str(line);
            continue;
        }
        let moved = || PinError::Moved {
            path: file.display().to_string(),
            line: i + 1,
            image: repositories.join(" or "),
        };
        let (start, end) = repositories
            .iter()
            .find_map(|r| super::locate::image_token(line, r))
            .ok_or_else(moved)?;
        let at = start;
        let new_image = retagged(&line[start..end], value);
        let changed = format!("{}{new_image}{}", &line[..at], &line[end..]);
        if before.is_none() {
            before = Some(line.trim_end_matches(['\n', '\r']).to_string());
            after = changed.trim_end_matches(['\n', '\r']).to_string();
        }
        out.push_str(&changed);
    }
    Ok(PinChange {
        path: file.to_path_buf(),
        line: lines.first().copied(),
        before,
        after,
        old_text,
        new_text: out,
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
    // A symlink (`.env -> env/production.env`): the target is what Compose reads; replacing
    // the link with a plain file would leave the target on the old version.
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            resolved = std::fs::canonicalize(path).map_err(|e| io(path, e))?;
            resolved.as_path()
        }
        _ => path,
    };
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
    fn a_literal_tag_is_pinned_on_its_lines_and_nothing_else_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compose.yaml");
        let text = "services:\n  server:\n    image: \"gitea/gitea:1.22.3\" # pinned\n  runner:\n    image: gitea/gitea:1.22.3\n  db: {image: postgres:16}\n";
        std::fs::write(&path, text).unwrap();
        let site = Site::Tags {
            file: path.clone(),
            lines: vec![3, 5],
            image: "gitea/gitea:1.22.3".into(),
            repositories: vec!["gitea/gitea".into()],
        };
        let change = plan_at(&site, Path::new("/nonexistent/.env"), "1.23.0").unwrap();
        assert_eq!(change.path, path);
        assert_eq!(change.after, "    image: \"gitea/gitea:1.23.0\" # pinned");
        assert_eq!(
            change.new_text,
            text.replace("gitea/gitea:1.22.3", "gitea/gitea:1.23.0")
        );
        // The next hop finds the lines at the tag the first hop wrote.
        std::fs::write(&path, &change.new_text).unwrap();
        let next = plan_at(&site, Path::new("/x"), "1.24.1").unwrap();
        assert_eq!(next.after, "    image: \"gitea/gitea:1.24.1\" # pinned");
        // A file edited since it was read is not overwritten blindly.
        std::fs::write(&path, "services:\n  server:\n    image: other:1\n").unwrap();
        assert!(matches!(
            plan_at(&site, Path::new("/x"), "1.23.0"),
            Err(PinError::Moved { .. })
        ));
        assert_eq!(retagged("org/app:1.2@sha256:abc", "1.3"), "org/app:1.3");
        assert_eq!(retagged("reg:5000/app", "2"), "reg:5000/app:2");
    }

    #[test]
    fn a_symlinked_env_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("env")).unwrap();
        let target = dir.path().join("env/production.env");
        std::fs::write(&target, "V=1\n").unwrap();
        let link = dir.path().join(".env");
        std::os::unix::fs::symlink("env/production.env", &link).unwrap();
        pin(&link, "V", "2").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "V=2\n");
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
