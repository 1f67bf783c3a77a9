//! How a run is steered from outside: the questions it asks (a `Decider`), and a `Stop` asked
//! for by a person or a signal.

/// Who answers the engine's questions: a person in the wizard; `--yes` headless.
pub trait Decider: Send + Sync {
    fn confirm(&self, question: &str) -> bool;

    /// Whether to upgrade although these services are unhealthy. Only a person looking at
    /// them can say yes (the wizard asks for a typed word); `--yes` does not cover it.
    fn override_unhealthy(&self, _problems: &[String]) -> bool {
        false
    }
}

/// Asks a running upgrade to stop at its next safe point: before the first change (after
/// the backup and the pull), or between two hops. A restart, once begun, goes on through
/// verification. Cloned into whoever may ask (the wizard's `q`, a signal handler).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    detached: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Stop {
    pub fn request(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Nobody is attached any more (the terminal hung up, or hoist was told to end): stop at
    /// the next safe point, and decide alone only what loses nothing.
    pub fn detach(&self) {
        self.request();
        self.detached
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn detached(&self) -> bool {
        self.detached.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Headless: yes when `--yes` was given, else every question is a refusal.
pub struct Headless(pub bool);

impl Decider for Headless {
    fn confirm(&self, _question: &str) -> bool {
        self.0
    }
}
