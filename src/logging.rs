//! hoist's log file, in the state dir. Never the terminal: under the wizard it would tear the screen.
//! Every line passes through `redact::mask`: a secret hoist has learned never reaches the file,
//! whatever message carried it.
use std::io::Write;
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
    // 0600 whatever the umask, and whatever an older hoist left: the state dir may be one the
    // user pointed at (`--state-dir`) with looser permissions than hoist's own 0700.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
    }
    .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
    crate::fsutil::make_private(&path);
    // The default queue preallocates 128,000 lines (4 MB); hoist logs a few hundred a run.
    // Not lossy: when the queue is full a logging thread waits for the file, never drops.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(4096)
        .lossy(false)
        .finish(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("hoist=info"));
    tracing_subscriber::fmt()
        .with_writer(move || Masked(writer.clone()))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))?;
    Ok(guard)
}

/// A writer that masks the secrets learned so far in what it is given (the formatter hands it
/// one whole event at a time).
struct Masked<W>(W);

impl<W: Write> Write for Masked<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(crate::redact::mask(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learned_secret_never_reaches_the_log() {
        crate::redact::learn("log-secret-value-7731");
        let mut out = Vec::new();
        writeln!(
            Masked(&mut out),
            "WARN connect failed: postgres://app:log-secret-value-7731@db/app"
        )
        .unwrap_or_default();
        let text = String::from_utf8(out).unwrap_or_default();
        assert_eq!(text, "WARN connect failed: postgres://app:***@db/app\n");
    }
}
