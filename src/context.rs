//! Where things are, from the global options and their defaults: the project's files, the
//! backup and state directories, and how long to wait for Docker. Every layer above the
//! bottom ones takes it.
use std::path::PathBuf;
use std::time::Duration;

use crate::stack::StackPaths;

/// Where things are, from the global options and their defaults (README, Use).
#[derive(Debug, Clone)]
pub struct Context {
    pub paths: StackPaths,
    pub backup_dir: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub docker_timeout: Duration,
    /// `hoist` with the global options this run was given that name the stack and hoist's
    /// state (`-C`, `-f`, `--env-file`, `--backup-dir`, `--state-dir`), quoted for a shell:
    /// the start of every command hoist suggests, so that it finds this stack again.
    pub hoist: String,
}

impl Context {
    pub fn from_args(
        project_dir: Option<PathBuf>,
        files: Vec<PathBuf>,
        env_file: Option<PathBuf>,
        backup_dir: Option<PathBuf>,
        state_dir: Option<PathBuf>,
    ) -> Result<Context, String> {
        let mut given: Vec<std::ffi::OsString> = Vec::new();
        let mut give = |flag: &str, value: &Option<PathBuf>| {
            if let Some(v) = value {
                given.push(flag.into());
                given.push(v.clone().into_os_string());
            }
        };
        give("-C", &project_dir);
        for f in &files {
            give("-f", &Some(f.clone()));
        }
        give("--env-file", &env_file);
        give("--backup-dir", &backup_dir);
        give("--state-dir", &state_dir);
        let hoist = crate::lock::command_line(given.into_iter());
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the current directory: {e}"))?;
        let absolute = |p: PathBuf| if p.is_absolute() { p } else { cwd.join(p) };
        let project_dir = absolute(project_dir.unwrap_or_else(|| cwd.clone()));
        if !project_dir.is_dir() {
            return Err(format!(
                "the project directory {} does not exist. Give the app's directory with -C DIR.",
                project_dir.display()
            ));
        }
        let state_dir = match state_dir {
            Some(dir) => absolute(dir),
            None => default_state_dir().ok_or(
                "cannot tell where to keep hoist's state: neither XDG_STATE_HOME nor HOME is set. Pass --state-dir DIR.",
            )?,
        };
        let docker_timeout = std::env::var("HOIST_DOCKER_TIMEOUT_SECS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(10));
        Ok(Context {
            paths: StackPaths {
                project_dir,
                compose_files: files.into_iter().map(absolute).collect(),
                env_file: env_file.map(absolute),
            },
            backup_dir: backup_dir.map(absolute),
            state_dir,
            docker_timeout,
            hoist,
        })
    }
}

fn default_state_dir() -> Option<PathBuf> {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    non_empty("XDG_STATE_HOME")
        .map(|d| d.join("hoist"))
        .or_else(|| non_empty("HOME").map(|h| h.join(".local/state/hoist")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn suggested_commands_carry_the_options_that_name_this_stack() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("my app");
        std::fs::create_dir(&project).unwrap();
        let ctx = Context::from_args(
            Some(project.clone()),
            Vec::new(),
            None,
            None,
            Some(PathBuf::from("/srv/state")),
        )
        .unwrap();
        assert_eq!(
            ctx.hoist,
            format!("hoist -C '{}' --state-dir /srv/state", project.display())
        );
    }
}
