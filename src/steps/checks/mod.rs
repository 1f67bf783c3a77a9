//! The checks beyond HTTP (`x-hoist: checks:`): a WebSocket exchange (`websocket.rs`), a
//! command in a service (`exec.rs`), rules on the app's metrics (`metrics.rs`). The same run
//! is the baseline before an upgrade and the verification after every restart.
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::probe::facts::Running;
use crate::stack::checks::AppCheck;

pub mod exec;
pub mod metrics;
pub mod websocket;

/// One check's result: what it is, whether it passed, what it saw.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub what: String,
    pub ok: bool,
    pub detail: String,
    pub ms: u64,
}

/// The checks a settings file configured, as the app answers them now: its HTTP checks (the
/// detected ones are settled by the smoke baseline) and every other kind. The baseline before
/// an upgrade and `hoist check` run the same.
pub async fn configured_now(
    smoke: &[crate::stack::detect::Smoke],
    checks: &[AppCheck],
    running: Option<&Running>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for s in smoke.iter().filter(|s| s.configured) {
        let r = crate::steps::smoke::check(s).await;
        outcomes.push(Outcome {
            what: format!("{} {}", s.method, s.url),
            ok: r.ok,
            detail: match r.error {
                Some(e) => e,
                None => format!(
                    "answered {} in {} ms",
                    r.status.unwrap_or_default(),
                    r.latency_ms
                ),
            },
            ms: r.latency_ms,
        });
    }
    if !checks.is_empty() {
        outcomes.extend(run_all(checks, running).await);
    }
    outcomes
}

/// Runs every check against the app as it is now (`running`: its containers, for commands).
/// Each metrics page is scraped first, the other checks run, and the second scrape comes when
/// its window has passed: the window covers the other checks' traffic too.
pub async fn run_all(checks: &[AppCheck], running: Option<&Running>) -> Vec<Outcome> {
    let started = Instant::now();
    let mut first: Vec<(usize, Result<metrics::Page, String>)> = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        if let AppCheck::Metrics(m) = check {
            first.push((i, metrics::scrape(&m.url).await));
        }
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; checks.len()];
    for (i, check) in checks.iter().enumerate() {
        let t = Instant::now();
        let result = match check {
            AppCheck::Websocket(w) => websocket::exchange(w).await,
            AppCheck::Exec(e) => match running {
                Some(running) => exec::run(e, running).await,
                None => Err("Docker did not answer, so the command could not be run".into()),
            },
            AppCheck::Metrics(_) => continue,
        };
        outcomes[i] = Some(outcome(check, result, t));
    }
    for (i, start) in first {
        let AppCheck::Metrics(m) = &checks[i] else {
            continue;
        };
        let result = match start {
            Err(e) => Err(e),
            Ok(start) => {
                let window = Duration::from_millis(m.window_ms);
                tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
                match metrics::scrape(&m.url).await {
                    Err(e) => Err(format!("at the end of the window: {e}")),
                    Ok(end) => {
                        let (broken, held) = metrics::judge(m, &start, Some(&end));
                        if broken.is_empty() {
                            Ok((held.join("; "), started.elapsed().as_millis() as u64))
                        } else {
                            Err(broken.join("; "))
                        }
                    }
                }
            }
        };
        outcomes[i] = Some(outcome(&checks[i], result, started));
    }
    outcomes.into_iter().flatten().collect()
}

fn outcome(check: &AppCheck, result: Result<(String, u64), String>, started: Instant) -> Outcome {
    match result {
        Ok((detail, ms)) => Outcome {
            what: check.what(),
            ok: true,
            detail,
            ms,
        },
        Err(detail) => Outcome {
            what: check.what(),
            ok: false,
            detail,
            ms: started.elapsed().as_millis() as u64,
        },
    }
}

/// A reply's or an output's start, on one line, secrets masked, at most `max` characters.
pub(crate) fn short(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    let masked = crate::redact::mask(&one_line).into_owned();
    if masked.chars().count() > max {
        format!("{}…", masked.chars().take(max).collect::<String>())
    } else {
        masked
    }
}
