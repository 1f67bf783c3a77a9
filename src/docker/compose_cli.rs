//! Running the Compose tool itself (as argv, never a shell string). hoist reads compose files on
//! its own, but Compose is the authority on whether a file is valid and it does `up -d`.
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// Which Compose is installed: the v2 plugin (`docker compose`) or the old v1 `docker-compose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeTool {
    V2 { version: String },
    V1 { version: String },
}

impl ComposeTool {
    pub fn version(&self) -> &str {
        match self {
            ComposeTool::V2 { version } | ComposeTool::V1 { version } => version,
        }
    }

    fn command(&self) -> Command {
        match self {
            ComposeTool::V2 { .. } => {
                let mut c = Command::new("docker");
                c.arg("compose");
                c
            }
            ComposeTool::V1 { .. } => Command::new("docker-compose"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeCliError {
    #[error(
        "Docker Compose is not installed: neither `docker compose` (v2) nor `docker-compose` answers. Install Compose v2: `apt-get install docker-compose-plugin` from Docker's own apt repository (https://docs.docker.com/engine/install/), or `apt-get install docker-compose-v2` on Ubuntu. Debian's own `docker-compose` package is the old v1, which hoist also uses (`apt-get install docker-compose`)."
    )]
    Missing,
    #[error("`{command}` did not finish within {secs} s.")]
    TimedOut { command: String, secs: u64 },
    #[error("could not run `{command}`: {reason}")]
    Spawn { command: String, reason: String },
    #[error("`{command}` failed (exit code {code}): {output}")]
    Failed {
        command: String,
        code: i32,
        output: String,
    },
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Finds Compose, v2 first (v1 is end-of-life, kept as a fallback for old servers). Found
/// once per process: each probe runs `docker compose version` (a few hundred ms), and the
/// restart's would fall inside the downtime.
pub async fn find() -> Result<ComposeTool, ComposeCliError> {
    static FOUND: tokio::sync::OnceCell<ComposeTool> = tokio::sync::OnceCell::const_new();
    FOUND.get_or_try_init(probe).await.cloned()
}

async fn probe() -> Result<ComposeTool, ComposeCliError> {
    let v2 = ComposeTool::V2 {
        version: String::new(),
    };
    if let Ok(Some(out)) = output_of(v2.command().args(["version", "--short"])).await {
        return Ok(ComposeTool::V2 { version: out });
    }
    let v1 = ComposeTool::V1 {
        version: String::new(),
    };
    if let Ok(Some(out)) = output_of(v1.command().args(["version", "--short"])).await {
        return Ok(ComposeTool::V1 { version: out });
    }
    Err(ComposeCliError::Missing)
}

async fn output_of(cmd: &mut Command) -> Result<Option<String>, ComposeCliError> {
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(PROBE_TIMEOUT, cmd.output()).await {
        Ok(Ok(out)) if out.status.success() => Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )),
        Ok(Ok(_)) | Ok(Err(_)) => Ok(None),
        Err(_) => Err(ComposeCliError::TimedOut {
            command: "docker compose version".into(),
            secs: PROBE_TIMEOUT.as_secs(),
        }),
    }
}

/// The files one Compose invocation works on: the same project, files and env file the stack
/// was started with.
#[derive(Debug, Clone)]
pub struct ComposeInvocation {
    pub project_dir: PathBuf,
    pub project_name: String,
    pub files: Vec<PathBuf>,
    pub env_file: Option<PathBuf>,
}

impl ComposeInvocation {
    fn command(&self, tool: &ComposeTool) -> Command {
        let mut c = tool.command();
        c.arg("--project-directory").arg(&self.project_dir);
        c.arg("--project-name").arg(&self.project_name);
        for f in &self.files {
            c.arg("--file").arg(f);
        }
        if let Some(env) = self.env_file.as_deref().filter(|p| Path::new(p).exists()) {
            c.arg("--env-file").arg(env);
        }
        c.current_dir(&self.project_dir);
        c.stdin(std::process::Stdio::null()).kill_on_drop(true);
        c
    }

    /// `compose up -d`: recreates what changed, as a user would. Each line Compose prints is
    /// handed to `on_line`. Err carries Compose's exit code and last lines.
    ///
    /// Compose runs in its own process group and writes to a file, not a pipe: a Ctrl-C or a
    /// hangup of hoist's terminal does not reach it, and a hoist killed outright does not kill
    /// it with SIGPIPE at its next line. Stopped half-way, `up` leaves old containers stopped
    /// and new ones created under temporary names; left alone, it finishes.
    pub async fn up(
        &self,
        tool: &ComposeTool,
        timeout: Duration,
        on_line: &mut (dyn FnMut(String) + Send),
    ) -> Result<(), ComposeCliError> {
        self.up_services(tool, timeout, &[], on_line).await
    }

    /// `compose up -d SERVICE…` (every service when `services` is empty), as `up`.
    pub async fn up_services(
        &self,
        tool: &ComposeTool,
        timeout: Duration,
        services: &[String],
        on_line: &mut (dyn FnMut(String) + Send),
    ) -> Result<(), ComposeCliError> {
        use tokio::io::AsyncReadExt;
        let shown = if services.is_empty() {
            "docker compose up -d".to_string()
        } else {
            format!("docker compose up -d {}", services.join(" "))
        };
        let spawn_error = |e: std::io::Error| ComposeCliError::Spawn {
            command: shown.clone(),
            reason: e.to_string(),
        };
        let output = tempfile::NamedTempFile::new().map_err(spawn_error)?;
        let reader = output.reopen().map_err(spawn_error)?;
        let writer = output.as_file().try_clone().map_err(spawn_error)?;
        let mut cmd = self.command(tool);
        cmd.args(["up", "-d"]).args(services);
        // Plain progress lines, not a redrawn TTY view.
        cmd.env("COMPOSE_PROGRESS", "plain")
            .env("COMPOSE_ANSI", "never")
            .stdout(writer.try_clone().map_err(spawn_error)?)
            .stderr(writer)
            .process_group(0)
            // Only a hoist that gives up on it (its timeout) stops it.
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(spawn_error)?;
        // The open handles keep the file while Compose writes it; nothing is left behind.
        let _ = output.close();
        let mut reader = tokio::fs::File::from_std(reader);
        let mut last: Vec<String> = Vec::new();
        let mut partial: Vec<u8> = Vec::new();
        let mut keep = |bytes: &[u8], partial: &mut Vec<u8>, flush: bool| {
            partial.extend_from_slice(bytes);
            let mut lines: Vec<String> = Vec::new();
            while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=pos).collect();
                lines.push(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            if flush && !partial.is_empty() {
                lines.push(String::from_utf8_lossy(partial).trim_end().to_string());
                partial.clear();
            }
            for l in lines {
                let l = crate::redact::mask(&l).into_owned();
                last.push(l.clone());
                if last.len() > 20 {
                    last.remove(0);
                }
                on_line(l);
            }
        };
        let run = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let exited = tokio::select! {
                    status = child.wait() => Some(status),
                    () = tokio::time::sleep(Duration::from_millis(100)) => None,
                };
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => keep(&buf[..n], &mut partial, false),
                    }
                }
                if let Some(status) = exited {
                    keep(&[], &mut partial, true);
                    break status;
                }
            }
        };
        let status = tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| ComposeCliError::TimedOut {
                command: shown.clone(),
                secs: timeout.as_secs(),
            })?
            .map_err(spawn_error)?;
        if status.success() {
            Ok(())
        } else {
            Err(ComposeCliError::Failed {
                command: shown,
                code: status.code().unwrap_or(-1),
                output: last.join("\n"),
            })
        }
    }

    /// Each named service's `environment` as Compose resolves it from the files and `.env`
    /// (`compose config --format json`); empty when Compose cannot say (v1, a bad file: the
    /// validation says that).
    pub async fn environments(
        &self,
        tool: &ComposeTool,
        services: &[String],
    ) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        let mut cmd = self.command(tool);
        cmd.args(["config", "--format", "json"]);
        let Ok(Ok(done)) = tokio::time::timeout(PROBE_TIMEOUT, cmd.output()).await else {
            return out;
        };
        let Ok(config) = serde_json::from_slice::<serde_json::Value>(&done.stdout) else {
            return out;
        };
        for service in services {
            if let Some(env) = config["services"][service]["environment"].as_object() {
                let env = env
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect();
                out.insert(service.clone(), env);
            }
        }
        out
    }

    /// Compose's whole view of the project (`compose config --format json`): the files merged,
    /// `.env` and `env_file:` read in, paths made absolute. Err: Compose's own words (v1 cannot
    /// print it).
    pub async fn config_json(&self, tool: &ComposeTool) -> Result<serde_json::Value, String> {
        if matches!(tool, ComposeTool::V1 { .. }) {
            return Err("docker-compose v1 cannot print the project's model (`config --format json`); install the Compose v2 plugin".into());
        }
        let mut cmd = self.command(tool);
        cmd.args(["config", "--format", "json"]);
        let out = tokio::time::timeout(PROBE_TIMEOUT, cmd.output())
            .await
            .map_err(|_| {
                format!(
                    "`docker compose config` did not answer within {} s",
                    PROBE_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("`docker compose config` could not run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`docker compose config` failed: {}",
                crate::redact::mask(String::from_utf8_lossy(&out.stderr).trim())
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("`docker compose config` printed no model hoist can read: {e}"))
    }

    /// `compose config --quiet`: Ok(None) when Compose accepts the files, Ok(Some(its words)) when not.
    pub async fn validate(&self, tool: &ComposeTool) -> Result<Option<String>, ComposeCliError> {
        let mut cmd = self.command(tool);
        cmd.args(["config", "--quiet"]);
        let shown = "docker compose config --quiet".to_string();
        let out = tokio::time::timeout(PROBE_TIMEOUT, cmd.output())
            .await
            .map_err(|_| ComposeCliError::TimedOut {
                command: shown.clone(),
                secs: PROBE_TIMEOUT.as_secs(),
            })?
            .map_err(|e| ComposeCliError::Spawn {
                command: shown,
                reason: e.to_string(),
            })?;
        if out.status.success() {
            Ok(None)
        } else {
            Ok(Some(
                crate::redact::mask(String::from_utf8_lossy(&out.stderr).trim()).into_owned(),
            ))
        }
    }
}
