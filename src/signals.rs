//! The signals that would end hoist mid-step: a hung-up terminal (SIGHUP, a dropped SSH
//! session), SIGTERM, SIGINT. Once listened to, none of them kills the process: the front ends
//! turn them into a stop at the next safe point (a dropped session must not leave
//! things half done).
use tokio::signal::unix::{Signal, SignalKind, signal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The terminal went away.
    Hangup,
    /// Asked to end (SIGTERM: a shutdown, `kill`).
    Terminate,
    /// Ctrl-C from a terminal that is still there.
    Interrupt,
}

pub struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    /// Starts listening (from then on the default action, ending the process, is off).
    pub fn listen() -> std::io::Result<Signals> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next of them to arrive.
    pub async fn recv(&mut self) -> Ending {
        tokio::select! {
            _ = self.hangup.recv() => Ending::Hangup,
            _ = self.terminate.recv() => Ending::Terminate,
            _ = self.interrupt.recv() => Ending::Interrupt,
        }
    }
}

/// For a headless run: a hangup or SIGTERM detaches the run (it stops at the next safe point and
/// decides alone only what loses nothing); Ctrl-C asks for the stop, the user still being there.
pub fn stop_on_signals(stop: crate::run::Stop) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut signals = match Signals::listen() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for signals: {e}");
                return;
            }
        };
        loop {
            let ending = signals.recv().await;
            tracing::warn!(?ending, "signal received: stopping at the next safe point");
            match ending {
                Ending::Hangup | Ending::Terminate => stop.detach(),
                Ending::Interrupt => {
                    stop.request();
                    use std::io::Write;
                    // The terminal may be gone: a failed write is not worth a panic.
                    let _ = writeln!(
                        std::io::stderr(),
                        "hoist: stopping at the next safe point (the step under way finishes first: a restart goes on through its checks, a rehearsal's copy through its own and is then removed)."
                    );
                }
            }
        }
    })
}
