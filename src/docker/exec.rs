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

/// An exec created and started, attached: its frames, and its stdin when asked for.
struct Started {
    what: String,
    id: String,
    output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

/// Creates and starts `cmd` in `container`: no TTY, so frames keep stdout and stderr apart.
async fn start(
    engine: &Engine,
    container: &str,
    cmd: &[&str],
    env: &[String],
    stdin: bool,
) -> Result<Started, DockerError> {
    let what = format!(
        "run `{}` in container {container}",
        cmd.first().copied().unwrap_or("")
    );
    // A password handed to the command (PGPASSWORD) may come back in its error output.
    for entry in env {
        crate::redact::learn_env_entry(entry);
    }
    let created = engine
        .docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                env: Some(env.to_vec()),
                attach_stdin: Some(stdin),
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
    let StartExecResults::Attached { output, input } = started else {
        return Err(DockerError::Api {
            what,
            reason: "the exec started detached".into(),
        });
    };
    Ok(Started {
        what,
        id: created.id,
        output,
        input,
    })
}

/// The exit code of a finished exec (-1 when Docker does not say).
async fn exit_code(engine: &Engine, id: &str, what: &str) -> Result<i64, DockerError> {
    let inspect = engine
        .docker
        .inspect_exec(id)
        .await
        .map_err(|e| DockerError::api(what.to_string(), e))?;
    Ok(inspect.exit_code.unwrap_or(-1))
}

/// Runs `cmd` (an argv, never a shell string) in `container` with extra `env` entries
/// (`KEY=value`), handing each stdout chunk to `sink`. A sink error stops the exec's reading.
pub async fn exec_streaming(
    engine: &Engine,
    container: &str,
    cmd: &[&str],
    env: &[String],
    sink: &mut (dyn FnMut(bytes::Bytes) -> std::io::Result<()> + Send),
) -> Result<ExecOutcome, DockerError> {
    let Started {
        what,
        id,
        mut output,
        ..
    } = start(engine, container, cmd, env, false).await?;
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
    let exit_code = exit_code(engine, &id, &what).await?;
    Ok(ExecOutcome {
        exit_code,
        stderr: crate::redact::mask(&String::from_utf8_lossy(&stderr)).into_owned(),
        stdout_bytes,
    })
}

/// Runs `cmd` as `exec_streaming` does and returns its outcome with its stdout as text (at most
/// the first `limit` bytes of it): for a command whose short answer is read.
pub async fn exec_output(
    engine: &Engine,
    container: &str,
    cmd: &[&str],
    env: &[String],
    limit: usize,
) -> Result<(ExecOutcome, String), DockerError> {
    let mut out: Vec<u8> = Vec::new();
    let mut sink = |b: bytes::Bytes| {
        if out.len() < limit {
            out.extend_from_slice(&b);
        }
        Ok(())
    };
    let outcome = exec_streaming(engine, container, cmd, env, &mut sink).await?;
    Ok((outcome, String::from_utf8_lossy(&out).into_owned()))
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

/// Runs `cmd` in `container` with the chunks from `input` on its stdin, then end of file (a
/// restore: the dump streamed in as it is read). The command's stdout and stderr are kept (the
/// last 64 KiB of each: a failed restore's error is at the end).
pub async fn exec_with_input(
    engine: &Engine,
    container: &str,
    cmd: &[&str],
    env: &[String],
    mut input: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> Result<ExecOutcome, DockerError> {
    use tokio::io::AsyncWriteExt;
    let Started {
        what,
        id,
        mut output,
        input: mut stdin,
    } = start(engine, container, cmd, env, true).await?;
    let feed = async move {
        while let Some(chunk) = input.recv().await {
            // The command may stop reading (it failed): its exit code says why.
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    };
    let drain = async {
        let (mut out, mut err): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
        let mut stdout_bytes = 0u64;
        while let Some(frame) = output.next().await {
            let (buf, message) = match frame.map_err(|e| DockerError::api(what.clone(), e))? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    stdout_bytes += message.len() as u64;
                    (&mut out, message)
                }
                LogOutput::StdErr { message } => (&mut err, message),
                LogOutput::StdIn { .. } => continue,
            };
            buf.extend_from_slice(&message);
            if buf.len() > STDERR_KEEP {
                buf.drain(..buf.len() - STDERR_KEEP);
            }
        }
        Ok::<_, DockerError>((out, err, stdout_bytes))
    };
    let ((), drained) = tokio::join!(feed, drain);
    let (out, err, stdout_bytes) = drained?;
    let exit_code = exit_code(engine, &id, &what).await?;
    let mut stderr = String::from_utf8_lossy(&err).into_owned();
    if stderr.trim().is_empty() {
        stderr = String::from_utf8_lossy(&out).into_owned();
    }
    Ok(ExecOutcome {
        exit_code,
        stderr: crate::redact::mask(&stderr).into_owned(),
        stdout_bytes,
    })
}

/// Extracts the tar (or `.tar.gz`: Docker gunzips it) at `archive` into `path` of `container`,
/// which may be stopped: the endpoint `docker cp` uses, serving bind mounts and named volumes.
/// The daemon extracts as root, so owners and modes come back as archived.
pub async fn upload_archive(
    engine: &Engine,
    container: &str,
    path: &str,
    archive: &std::path::Path,
) -> Result<(), DockerError> {
    use tokio::io::AsyncReadExt;
    let what = format!("extract {} into {path} of {container}", archive.display());
    let file = tokio::fs::File::open(archive)
        .await
        .map_err(|e| DockerError::Api {
            what: what.clone(),
            reason: e.to_string(),
        })?;
    // The state is the file until it ends or fails; an error is the stream's last item.
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 1 << 20];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let options = bollard::query_parameters::UploadToContainerOptionsBuilder::new()
        .path(path)
        .build();
    engine
        .docker
        .upload_to_container(container, Some(options), bollard::body_try_stream(chunks))
        .await
        .map_err(|e| DockerError::api(what, e))
}
