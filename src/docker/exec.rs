//! Running a command inside a container through the exec API, its stdout streamed to a sink
//! (binary-safe: no TTY, so frames keep stdout and stderr apart).
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;

use super::engine::{DockerError, Engine};

#[derive(Debug, Clone)]
pub struct ExecOutcome {
    pub exit_code: i64,
    /// What the command wrote on stderr (the last 64 KiB).
    pub stderr: String,
    pub stdout_bytes: u64,
}

const STDERR_KEEP: usize = 64 * 1024;

/// Runs `cmd` (an argv, never a shell string) in `container` with extra `env` entries
/// (`KEY=value`), handing each stdout chunk to `sink`. A sink error stops the exec's reading.
pub async fn exec_streaming(
    engine: &Engine,
    container: &str,
    cmd: &[&str],
    env: &[String],
    sink: &mut (dyn FnMut(bytes::Bytes) -> std::io::Result<()> + Send),
) -> Result<ExecOutcome, DockerError> {
    let what = format!(
        "run `{}` in container {container}",
        cmd.first().copied().unwrap_or("")
    );
    let created = engine
        .docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                env: Some(env.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(false),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| DockerError::api(what.clone(), e))?;
    let started = engine
        .docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| DockerError::api(what.clone(), e))?;
    let StartExecResults::Attached { mut output, .. } = started else {
        return Err(DockerError::Api {
            what,
            reason: "the exec started detached".into(),
        });
    };
    let mut stderr: Vec<u8> = Vec::new();
    let mut stdout_bytes = 0u64;
    while let Some(frame) = output.next().await {
        match frame.map_err(|e| DockerError::api(what.clone(), e))? {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                stdout_bytes += message.len() as u64;
                sink(message).map_err(|e| DockerError::Api {
                    what: what.clone(),
                    reason: format!("its output could not be written: {e}"),
                })?;
            }
            LogOutput::StdErr { message } => {
                stderr.extend_from_slice(&message);
                if stderr.len() > STDERR_KEEP {
                    stderr.drain(..stderr.len() - STDERR_KEEP);
                }
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    let inspect = engine
        .docker
        .inspect_exec(&created.id)
        .await
        .map_err(|e| DockerError::api(what.clone(), e))?;
    Ok(ExecOutcome {
        exit_code: inspect.exit_code.unwrap_or(-1),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        stdout_bytes,
    })
}

/// The tar stream of `path` in `container` (the endpoint `docker cp` uses; it serves bind
/// mounts and named volumes alike), chunk by chunk to `sink`.
pub async fn download_path(
    engine: &Engine,
    container: &str,
    path: &str,
    sink: &mut (dyn FnMut(bytes::Bytes) -> std::io::Result<()> + Send),
) -> Result<u64, DockerError> {
    let what = format!("read {path} from container {container}");
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let mut stream = engine
        .docker
        .download_from_container(container, Some(options));
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| DockerError::api(what.clone(), e))?;
        total += chunk.len() as u64;
        sink(chunk).map_err(|e| DockerError::Api {
            what: what.clone(),
            reason: format!("the archive could not be written: {e}"),
        })?;
    }
    Ok(total)
}
