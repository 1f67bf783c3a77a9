//! Following a container's log as it is written.
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use super::engine::{DockerError, Engine};

/// Follows the log of `container` from `since` (unix seconds) until the container stops or the
/// future is dropped, handing each line to `on_line` with known secrets masked (apps log their
/// connection URLs; the lines are shown and journaled as evidence).
pub async fn follow(
    engine: &Engine,
    container: &str,
    since: i64,
    on_line: &mut (dyn FnMut(String) + Send),
) -> Result<(), DockerError> {
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .since(i32::try_from(since).unwrap_or(0))
        .build();
    super::containers::learn_secrets(engine, container).await;
    let mut stream = engine.docker.logs(container, Some(options));
    let mut partial = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| DockerError::api(format!("follow the log of {container}"), e))?;
        partial.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        while let Some(pos) = partial.find('\n') {
            let line: String = partial.drain(..=pos).collect();
            on_line(crate::redact::mask(line.trim_end_matches(['\n', '\r'])).into_owned());
        }
    }
    if !partial.is_empty() {
        on_line(crate::redact::mask(&partial).into_owned());
    }
    Ok(())
}
