//! Noticing that the Docker daemon went away in the middle of a run (restarted by a package
//! upgrade or `systemctl restart docker`, or crashed), and waiting for it to come back.
//!
//! An error from a pull, `docker compose up` or a log stream does not say whether the daemon
//! went away: a fast restart is already over when the error is seen. So a watcher holds an event
//! stream open the whole run. A daemon never ends that stream while it runs; when it ends, the
//! daemon went away, and the watcher counts it and reconnects.
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;

use super::engine::Engine;

/// How long to wait for the daemon to come back when nothing is configured
/// (`timeouts.engine`): a restart with a few stacks takes seconds, a package upgrade a minute.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(120);

/// Counts the times the daemon went away since the watch started. Dropping it stops watching.
pub struct EngineWatch {
    engine: Engine,
    losses: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl EngineWatch {
    pub fn start(engine: &Engine) -> EngineWatch {
        let losses = Arc::new(AtomicU32::new(0));
        let (counter, watched) = (losses.clone(), engine.clone());
        let task = tokio::spawn(async move {
            // Only the daemon's own events (rare): the stream is for its end, not its content.
            let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
            filters.insert("type", vec!["daemon".into()]);
            loop {
                let options = EventsOptionsBuilder::new().filters(&filters).build();
                let mut stream = watched.docker.events(Some(options));
                let opened = Instant::now();
                while let Some(item) = stream.next().await {
                    if item.is_err() {
                        break;
                    }
                }
                // An answering daemon that refused the stream at once would be counted again
                // and again: only a stream that was open counts as the daemon going away.
                if opened.elapsed() > Duration::from_millis(200) || !answers(&watched).await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!("the Docker engine went away (its event stream ended)");
                }
                while !answers(&watched).await {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                // Never a tight loop, even against a daemon that ends every stream at once.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        EngineWatch {
            engine: engine.clone(),
            losses,
            task,
        }
    }

    /// A mark to compare with later: `went_away_since(mark)`.
    pub fn mark(&self) -> u32 {
        self.losses.load(Ordering::SeqCst)
    }

    /// Whether the daemon went away since `mark`, or does not answer now. Called after an
    /// operation failed, to tell a daemon restart from a failure of the operation itself.
    pub async fn went_away_since(&self, mark: u32) -> bool {
        if self.mark() > mark {
            return true;
        }
        if !answers(&self.engine).await {
            return true;
        }
        // The error and the stream's end arrive together; give the watcher a moment to count.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.mark() > mark
    }

    /// Waits until the daemon answers again, at most `limit`; how long that took, or `None`.
    pub async fn wait_back(&self, limit: Duration) -> Option<Duration> {
        let began = Instant::now();
        loop {
            if answers(&self.engine).await {
                return Some(began.elapsed());
            }
            if began.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for EngineWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The daemon answers a ping within 2 s.
async fn answers(engine: &Engine) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), engine.docker.ping()).await,
        Ok(Ok(_))
    )
}
