//! hoist's log file, in the state dir. Never the terminal: under the wizard it would tear the screen.
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;

/// Opens `<state dir>/hoist.log` for appending (dir 0700: logs name paths and containers).
pub fn init(state_dir: &Path) -> Result<WorkerGuard, String> {
    crate::fsutil::create_private_dir(state_dir).map_err(|e| {
        format!(
            "cannot create the state directory {}: {e}",
            state_dir.display()
        )
    })?;
    let path = state_dir.join("hoist.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("hoist=info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))?;
    Ok(guard)
}
