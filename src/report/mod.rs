//! `hoist status` and `hoist check`: gather facts from the files, Docker and the database, and
//! present them as human lines or JSON Lines. Gathering knows nothing of the terminal; the
//! binary only prints what `Output` renders.
pub mod backup;
pub mod check;
pub mod facts;
pub mod history;
pub mod status;
pub mod versions;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::stack::StackPaths;

/// Where things are, from the global options and their defaults (DESIGN.md, Command line).
#[derive(Debug, Clone)]
pub struct Context {
    pub paths: StackPaths,
    pub backup_dir: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub docker_timeout: Duration,
}

impl Context {
    pub fn from_args(
        project_dir: Option<PathBuf>,
        file: Option<PathBuf>,
        env_file: Option<PathBuf>,
        backup_dir: Option<PathBuf>,
        state_dir: Option<PathBuf>,
    ) -> Result<Context, String> {
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
                compose_file: file.map(absolute),
                env_file: env_file.map(absolute),
            },
            backup_dir: backup_dir.map(absolute),
            state_dir,
            docker_timeout,
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

/// What a command produced: human text, the JSON Lines events, and the exit code.
#[derive(Debug, Default)]
pub struct Output {
    pub exit_code: u8,
    /// Human report for stdout.
    pub text: String,
    /// Error sentences for stderr (in both modes: human words never go to stdout under --json).
    pub errors: String,
    /// JSON Lines; the last one is the summary (`"type": "summary"`).
    pub events: Vec<Value>,
}

/// Text for each stream.
pub struct Rendered {
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn human(&self) -> Rendered {
        Rendered {
            stdout: self.text.clone(),
            stderr: self.errors.clone(),
        }
    }

    pub fn json_lines(&self) -> Rendered {
        let mut stdout = String::new();
        for event in &self.events {
            stdout.push_str(&event.to_string());
            stdout.push('\n');
        }
        Rendered {
            stdout,
            stderr: self.errors.clone(),
        }
    }

    /// A command that could not run at all: one sentence, and a summary saying so.
    pub fn failed(command: &str, exit_code: u8, sentence: String) -> Output {
        Output {
            exit_code,
            text: String::new(),
            errors: format!("hoist: {sentence}\n"),
            events: vec![serde_json::json!({
                "type": "summary",
                "command": command,
                "outcome": "error",
                "exit_code": exit_code,
                "error": sentence,
            })],
        }
    }
}

/// Human size: 1.5 GB, 230 MB, 12 KB (powers of 1000, as `df -H` and most people count).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_df() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
        assert_eq!(human_bytes(230_000_000), "230 MB");
        assert_eq!(human_bytes(4_200_000_000_000), "4.2 TB");
    }
}
