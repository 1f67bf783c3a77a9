//! The observation window (`x-hoist: observe: 10m`): after the last release verified, the app
//! is watched before the upgrade is called done, as runbooks ask ("promote only after a stable
//! observation window"). Its containers must keep running, healthy and unrestarted, and each
//! metrics rule must hold over every stretch of its own window. A person may accept early or
//! roll back (the wizard's `a` and `r`); with nobody attached it runs to its end. A break is a
//! failed upgrade, rolled back as any other.
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::probe::facts;
use crate::run::{Event, Run, Stop};
use crate::stack::checks::{AppCheck, MetricsCheck};
use crate::steps::checks::metrics;
use crate::steps::verify::running_problems;
use crate::units::clock;

/// How often the containers and the metrics are looked at, at most.
const EVERY: Duration = Duration::from_secs(10);

/// How the window ended.
pub(super) enum Observed {
    /// Stable to the end, or accepted early (the words say which).
    Stable(String),
    /// What broke, or that the person asked to roll back.
    Broke(String),
}

/// One metrics page and the scrapes kept for its rules' windows.
struct Scrapes<'a> {
    check: &'a MetricsCheck,
    kept: VecDeque<(Instant, metrics::Page)>,
}

pub(super) async fn observe(
    run: &Run<'_>,
    ctx: &crate::context::Context,
    view: &facts::StackView,
    checks: &[AppCheck],
    targets: &BTreeMap<String, String>,
    window: Duration,
    stop: &Stop,
) -> Observed {
    stop.new_window();
    // A stop asked before the window (in an earlier run of the wizard's session) is not an answer.
    let asked_before = stop.requested();
    let started = Instant::now();
    let total_s = window.as_secs();
    let mut pages: Vec<Scrapes<'_>> = checks
        .iter()
        .filter_map(|c| match c {
            AppCheck::Metrics(m) => Some(Scrapes {
                check: m,
                kept: VecDeque::new(),
            }),
            _ => None,
        })
        .collect();
    let mut next_look = Instant::now();
    let mut said_s = u64::MAX;
    loop {
        let elapsed = started.elapsed();
        if stop.rejected() {
            return Observed::Broke(format!(
                "you asked to roll back during the observation window, after {} of {}",
                clock(elapsed.as_secs()),
                clock(total_s)
            ));
        }
        // `q` then `s` in the wizard, or Ctrl-C: the upgrade verified; stop watching. A hung-up
        // terminal also asks to stop, and then the window runs to its end alone.
        if stop.accepted() || (!asked_before && stop.requested() && !stop.detached()) {
            return Observed::Stable(format!(
                "accepted at your word after {} of the {} observation window",
                clock(elapsed.as_secs()),
                clock(total_s)
            ));
        }
        if elapsed >= window {
            return Observed::Stable(format!(
                "stable for the whole {} observation window",
                clock(total_s)
            ));
        }
        if Instant::now() >= next_look {
            next_look = Instant::now() + every(checks);
            if let Some(broke) = look(ctx, view, targets, &mut pages).await {
                return Observed::Broke(format!(
                    "during the observation window, after {}: {broke}",
                    clock(elapsed.as_secs())
                ));
            }
        }
        if elapsed.as_secs() != said_s {
            said_s = elapsed.as_secs();
            run.emit(Event::Observe {
                elapsed_s: said_s,
                total_s,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One look: the upgraded containers, then each metrics page against its rules. Some: what broke.
async fn look(
    ctx: &crate::context::Context,
    view: &facts::StackView,
    targets: &BTreeMap<String, String>,
    pages: &mut [Scrapes<'_>],
) -> Option<String> {
    let now = facts::gather(ctx, view.clone()).await;
    let problems = running_problems(&now, targets);
    if !problems.is_empty() {
        return Some(problems.join("; "));
    }
    for page in pages.iter_mut() {
        let samples = match metrics::scrape(&page.check.url).await {
            Ok(s) => s,
            Err(e) => return Some(format!("metrics {}: {e}", page.check.url)),
        };
        let at = Instant::now();
        let window = Duration::from_millis(page.check.window_ms);
        // The base is the newest scrape at least a window old: a counter may rise by its limit
        // over any stretch that long, not over the whole observation. A stretch longer than the
        // window (the looks are further apart) allows as much more as it is longer.
        while page
            .kept
            .get(1)
            .is_some_and(|(t, _)| at.duration_since(*t) >= window)
        {
            page.kept.pop_front();
        }
        let since = page.kept.front().map(|(t, s)| (at.duration_since(*t), s));
        let (broken, _) = match since {
            Some((span, oldest)) => {
                metrics::judge(&stretched(page.check, span), oldest, Some(&samples))
            }
            None => metrics::judge(page.check, &samples, None),
        };
        if !broken.is_empty() {
            return Some(format!("metrics {}: {}", page.check.url, broken.join("; ")));
        }
        page.kept.push_back((at, samples));
    }
    None
}

/// `check` judged over `span`: its window that long, each counter's limit scaled to it when
/// it is longer than the check's own window.
fn stretched(check: &MetricsCheck, span: Duration) -> MetricsCheck {
    let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX).max(1);
    let scale = (span_ms as f64 / check.window_ms.max(1) as f64).max(1.0);
    let rules = check
        .rules
        .iter()
        .map(|r| match r {
            crate::stack::checks::MetricRule::Counter {
                series,
                max_increase,
            } => crate::stack::checks::MetricRule::Counter {
                series: series.clone(),
                max_increase: (max_increase * scale).floor(),
            },
            gauge => gauge.clone(),
        })
        .collect();
    MetricsCheck {
        url: check.url.clone(),
        rules,
        window_ms: span_ms,
    }
}

/// How often to look: every 10 s, or each metrics window when one is shorter (at least 1 s).
fn every(checks: &[AppCheck]) -> Duration {
    checks
        .iter()
        .filter_map(|c| match c {
            AppCheck::Metrics(m) => Some(Duration::from_millis(m.window_ms)),
            _ => None,
        })
        .fold(EVERY, Duration::min)
        .max(Duration::from_secs(1))
}

/// Said before the window starts.
pub(super) fn start_words(window: Duration, has_metrics: bool) -> String {
    format!(
        "watching the app for {} before calling the upgrade done: its containers{}",
        clock(window.as_secs()),
        if has_metrics {
            " and its metrics rules"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::checks::{MetricRule, Selector};

    #[test]
    fn a_longer_stretch_allows_proportionally_more() {
        let check = MetricsCheck {
            url: "http://x/metrics".into(),
            rules: vec![MetricRule::Counter {
                series: Selector::parse("errors_total").unwrap_or_else(|| unreachable!()),
                max_increase: 2.0,
            }],
            window_ms: 4_000,
        };
        let s = stretched(&check, Duration::from_secs(10));
        assert_eq!(s.window_ms, 10_000);
        assert_eq!(
            s.rules,
            [MetricRule::Counter {
                series: Selector::parse("errors_total").unwrap_or_else(|| unreachable!()),
                max_increase: 5.0,
            }]
        );
        // Never less than the rule itself over a shorter stretch.
        assert_eq!(stretched(&check, Duration::from_secs(1)).rules, check.rules);
        assert_eq!(every(&[AppCheck::Metrics(check)]), Duration::from_secs(4));
        assert_eq!(every(&[]), EVERY);
        assert_eq!(clock(605), "10:05");
    }
}
