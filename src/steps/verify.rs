//! Verification after a restart: the upgraded services on their new images, running, healthy
//! and not restarted; the smoke checks answering.
use std::collections::BTreeMap;

use super::smoke;
use crate::probe::facts::Facts;
use crate::run::{Event, Run};

/// What is wrong with the `targets` (service -> image) now: another image, not running, not
/// healthy, restarted.
pub(crate) fn running_problems(after: &Facts, targets: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(now) = &after.docker else {
        problems.push("Docker did not answer after the restart".to_string());
        return problems;
    };
    for (service, image) in targets {
        let one_shot = after.view.one_shot.contains(service);
        for c in now.of_service(service) {
            if &c.image != image {
                problems.push(format!("{service} runs {} instead of {image}", c.image));
            }
            if c.restart_count > 0 {
                problems.push(format!(
                    "{service} restarted {} times (last exit code {})",
                    c.restart_count, c.exit_code
                ));
            }
            // A one-shot job (an init or migration service) is done when it exited 0.
            if one_shot && c.state == "exited" && c.exit_code == 0 {
                continue;
            }
            if !c.is_running()
                || c.health
                    .is_some_and(|h| h != crate::docker::Health::Healthy)
            {
                problems.push(format!(
                    "{service} is {}{}",
                    c.state,
                    c.health.map(|h| format!(", {h}")).unwrap_or_default()
                ));
            }
        }
    }
    problems
}

/// The checks beyond HTTP (`x-hoist: checks:`), each reported as it answers; none when the
/// stack has none. `after`: the app as it is now (its containers run the commands).
pub(crate) async fn app_checks(
    run: &Run<'_>,
    stack: &crate::stack::Stack,
    after: &Facts,
) -> (Vec<super::checks::Outcome>, Vec<String>) {
    let checks = &stack.detection.app_checks;
    if checks.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let outcomes = super::checks::run_all(checks, after.docker.as_ref().ok()).await;
    let mut problems = Vec::new();
    for o in &outcomes {
        run.emit(Event::Check {
            what: o.what.clone(),
            ok: o.ok,
            detail: format!("{} ({} ms)", o.detail, o.ms),
        });
        if !o.ok {
            problems.push(format!("{}: {}", o.what, o.detail));
        }
    }
    (outcomes, problems)
}

/// The smoke checks (detected and configured), each reported as it answers.
pub(crate) async fn smoke_checks(
    run: &Run<'_>,
    stack: &crate::stack::Stack,
) -> (Vec<smoke::SmokeResult>, Vec<String>) {
    let mut results = Vec::new();
    let mut problems = Vec::new();
    for s in &stack.detection.smoke {
        let r = smoke::check(s).await;
        run.emit(Event::Check {
            what: format!("{} {}", s.method, s.url),
            ok: r.error.is_none(),
            detail: format!(
                "{} in {} ms{}",
                r.status.map_or("no answer".to_string(), |c| c.to_string()),
                r.latency_ms,
                r.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        });
        if let Some(e) = &r.error {
            problems.push(format!("{}: {e}", s.url));
        }
        results.push(r);
    }
    (results, problems)
}
