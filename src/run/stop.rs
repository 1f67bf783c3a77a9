//! A `Stop` asked of a run by a person or a signal.

/// Asks a running upgrade to stop at its next safe point: before the first change (after
/// the backup and the pull), or between two hops. A restart, once begun, goes on through
/// verification. Cloned into whoever may ask (the wizard's `q`, a signal handler).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    detached: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// During an observation window: the person accepts the upgrade now.
    accept: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// During an observation window: the person wants the upgrade rolled back.
    reject: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Stop {
    /// Ends an observation window early, the upgrade accepted.
    pub fn accept_now(&self) {
        self.accept.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn accepted(&self) -> bool {
        self.accept.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Ends an observation window early as a failure: the upgrade is rolled back.
    pub fn roll_back_now(&self) {
        self.reject.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn rejected(&self) -> bool {
        self.reject.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A new observation window starts with no answer: the wizard keeps one `Stop` for every
    /// run of its session, and an earlier window's `r` must not end this one.
    pub fn new_window(&self) {
        self.accept
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.reject
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

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

    /// How a run that stopped at a safe point says why: a person asked, or nobody was left to.
    pub fn stopped_words(&self) -> &'static str {
        if self.detached() {
            "stopped as nobody was attached any more (the session ended, or hoist was told to end)"
        } else {
            "stopped at your request"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Stop;

    #[test]
    fn a_hangup_is_not_called_a_request() {
        let stop = Stop::default();
        stop.request();
        assert_eq!(stop.stopped_words(), "stopped at your request");
        let hung_up = Stop::default();
        hung_up.detach();
        assert!(hung_up.requested());
        assert!(hung_up.stopped_words().contains("nobody was attached"));
    }
}
