//! One release on the way: pin it in `.env`, restart and watch the app, then verify it (new
//! images, health, schema, rows, smoke checks). From the pin on, a failure leaves the stack
//! changed, and its sentence says how and how to go back.
use std::collections::BTreeMap;
use std::path::Path;

use super::after_pin_state;
use super::observe::{self, Observed};
use crate::context::Context;
use crate::db::DbProbe;
use crate::docker::Engine;
use crate::journal::Outcome;
use crate::probe::facts::{self, Facts};
use crate::run::{Event, Run, Step, Stop, UpgradeSummary, progress_to};

type Finished = crate::run::Finished<UpgradeSummary>;
use crate::rollback_plan::Moment;
use crate::stack::{Stack, pin};
use crate::steps::engine_loss::{After, EngineLoss};
use crate::steps::restart::{Up, restart_and_watch};
use crate::steps::verify::{app_checks, running_problems, smoke_checks};
use crate::steps::write_mark;

/// What every hop of one upgrade shares.
pub(super) struct Journey<'a> {
    pub(super) ctx: &'a Context,
    pub(super) stack: &'a Stack,
    pub(super) facts: &'a Facts,
    pub(super) engine: &'a Engine,
    pub(super) engine_loss: &'a EngineLoss,
    /// The version the upgrade started from.
    pub(super) from: &'a str,
    pub(super) backup_dir: &'a Path,
    pub(super) schema_before: Option<&'a DbProbe>,
}

/// Every hop in turn, stopping between two when asked; how the upgrade ended.
pub(super) async fn run_hops(
    j: &Journey<'_>,
    run: &mut Run<'_>,
    hops: &[(String, BTreeMap<String, String>)],
    stop: &Stop,
    to: &str,
    mut summary: UpgradeSummary,
) -> Finished {
    let from = j.from;
    let mut previous = from.to_string();
    let mut downtime_total: Option<u64> = Some(0);
    let mut hops_done: Vec<String> = Vec::new();
    for (i, (hop, targets)) in hops.iter().enumerate() {
        if hops.len() > 1 {
            run.emit(Event::Hop {
                number: i + 1,
                of: hops.len(),
                from: previous.clone(),
                to: hop.clone(),
            });
        }
        run.hop = (hops.len() > 1).then(|| hop.clone());
        if let Err(finished) = run_hop(
            j,
            run,
            hop,
            targets,
            &previous,
            &hops_done,
            &mut summary,
            &mut downtime_total,
        )
        .await
        {
            return finished;
        }
        hops_done.push(hop.clone());
        previous = hop.clone();
        if stop.requested() && i + 1 < hops.len() {
            run.hop = None;
            let sentence = format!(
                "{} between two releases: {} runs {hop} (checked and healthy) and .env pins it; the backup taken before is in {}. To go on: `hoist upgrade --to {to}`; to go back to {from}: `hoist rollback`.",
                stop.stopped_words(),
                j.facts.view.project,
                j.backup_dir.display()
            );
            summary.hops_done = Some(hops_done);
            summary.outcome = Outcome::Stopped;
            summary.error = Some(sentence.clone());
            return Finished {
                exit_code: 1,
                sentence,
                summary,
            };
        }
    }
    run.hop = None;
    if let (Some(window), Some((last, targets))) = (
        j.stack.settings.observe.filter(|w| !w.is_zero()),
        hops.last(),
    ) {
        let has_metrics = j
            .stack
            .detection
            .app_checks
            .iter()
            .any(|c| matches!(c, crate::stack::checks::AppCheck::Metrics(_)));
        let step = run
            .start(Step::Verify, &observe::start_words(window, has_metrics))
            .await;
        let watched = observe::observe(
            run,
            j.ctx,
            &j.facts.view,
            &j.stack.detection.app_checks,
            targets,
            window,
            stop,
        )
        .await;
        match watched {
            Observed::Stable(words) => run.finish(Step::Verify, step, true, Some(words)).await,
            Observed::Broke(why) => {
                let failure = format!("the upgrade to {last} did not hold: {why}");
                summary.failure = Some(failure.clone());
                summary.hops_done = Some(hops_done.clone());
                run.emit(Event::Failure {
                    reason: failure.clone(),
                    evidence: BTreeMap::new(),
                });
                let sentence = after_pin_state(j.stack, last, from, j.backup_dir, failure);
                return run.fail(Step::Verify, step, sentence, summary).await;
            }
        }
    }
    // Said, never waited on long: the upgrade is done whatever Docker takes to answer.
    summary.config_changes =
        tokio::time::timeout(std::time::Duration::from_secs(15), config_changes(j, run))
            .await
            .ok()
            .flatten();
    summary.hops_done = Some(hops_done.clone());
    summary.outcome = Outcome::Succeeded;
    summary.exit_code = 0;
    Finished {
        exit_code: 0,
        sentence: format!(
            "{} upgraded from {from} to {to}{}; the backup taken before is in {}",
            j.facts.view.project,
            if hops.len() > 1 {
                format!(" through {}", hops_done.join(", "))
            } else {
                String::new()
            },
            j.backup_dir.display()
        ),
        summary,
    }
}

/// The hop to `hop` (service -> image in `targets`), after `previous`. Err: the run ends there.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_hop(
    j: &Journey<'_>,
    run: &mut Run<'_>,
    hop: &str,
    targets: &BTreeMap<String, String>,
    previous: &str,
    hops_done: &[String],
    summary: &mut UpgradeSummary,
    downtime_total: &mut Option<u64>,
) -> Result<(), Finished> {
    let Journey {
        stack,
        from,
        backup_dir,
        schema_before,
        ..
    } = *j;
    // Before the first change: a run hoist cannot record could not be continued or rolled
    // back by it after a crash, so it stops here.
    if hops_done.is_empty()
        && let Some(why) = run.journal_lost()
    {
        let step = run.start(Step::Pin, hop).await;
        let sentence = format!(
            "hoist's journal could not record this upgrade ({why}); an upgrade hoist cannot record could not be continued or rolled back by it after a crash. Nothing was changed: the stack still runs {from}, and the backup in {} is complete. Make room in (or fix) the state dir, then upgrade again.",
            backup_dir.display()
        );
        let mut finished = run.fail(Step::Pin, step, sentence, summary.clone()).await;
        finished.exit_code = 3;
        finished.summary.outcome = crate::journal::Outcome::Refused;
        return Err(finished);
    }
    let change = match pin::plan_at(&stack.detection.version.site, &stack.env_path, hop) {
        Ok(c) => c,
        Err(e) => {
            let step = run.start(Step::Pin, hop).await;
            let sentence = after_pin_state(stack, previous, from, backup_dir, e.to_string());
            return Err(run.fail(Step::Pin, step, sentence, summary.clone()).await);
        }
    };
    let step = run
        .start(
            Step::Pin,
            &format!(
                "{} -> {}",
                change.before.as_deref().unwrap_or("(absent)"),
                change.after
            ),
        )
        .await;
    let file = stack.detection.version.file_label();
    if let Err(e) = pin::write_atomic(&change.path, &change.new_text) {
        let sentence = if hops_done.is_empty() {
            format!("writing {file} failed: {e}. Nothing was changed: the stack still runs {from}.")
        } else {
            after_pin_state(
                stack,
                previous,
                from,
                backup_dir,
                format!("writing {file} failed: {e}"),
            )
        };
        return Err(run.fail(Step::Pin, step, sentence, summary.clone()).await);
    }
    run.finish(Step::Pin, step, true, None).await;
    // From here on a failure has changed the stack: a rollback is offered.
    summary.changed = true;
    summary.pinned_now = Some(hop.to_string());
    let swarm = crate::probe::swarm::stack_name(j.facts.swarm.as_ref());
    let after_pin = |what: String| super::after_pin_in(stack, swarm, hop, from, backup_dir, what);

    let Gathered {
        up,
        step,
        after,
        stopped_first_ms,
        smoke: (smoke_results, smoke_problems),
        checks: (check_results, check_problems),
    } = up_and_gather(j, run, hop, targets, hops_done, summary).await?;
    let mut problems = running_problems(&after, targets);
    run.emit(Event::Check {
        what: "containers".into(),
        ok: problems.is_empty(),
        detail: if problems.is_empty() {
            format!(
                "{} run{} the new image, healthy, no restart",
                targets.keys().cloned().collect::<Vec<_>>().join(", "),
                if targets.len() == 1 { "s" } else { "" }
            )
        } else {
            problems.join("; ")
        },
    });
    let schema_after = after.db.as_ref().and_then(|r| r.as_ref().ok());
    problems.extend(data_checks(run, schema_before, &after));
    problems.extend(smoke_problems);
    problems.extend(check_problems);
    // The app was stopped for the write mark just before `up -d`: part of the downtime.
    let downtime_ms = up.end().await.map(|d| d + stopped_first_ms);
    *downtime_total = match (*downtime_total, downtime_ms) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
    summary.schema_after =
        Some(schema_after.and_then(|p| p.migrations.as_ref().map(|m| m.revision.clone())));
    summary.fingerprint_before = Some(schema_before.map(|p| p.fingerprint.clone()));
    summary.fingerprint_after = Some(schema_after.map(|p| p.fingerprint.clone()));
    summary.smoke = Some(serde_json::to_value(&smoke_results).unwrap_or_default());
    if !check_results.is_empty() {
        summary.checks = Some(serde_json::to_value(&check_results).unwrap_or_default());
    }
    summary.downtime_ms = Some(*downtime_total);
    if !problems.is_empty() {
        let failure = format!(
            "the upgrade to {hop} did not verify: {}",
            problems.join("; ")
        );
        summary.failure = Some(failure.clone());
        run.emit(Event::Failure {
            reason: failure.clone(),
            evidence: BTreeMap::new(),
        });
        summary.hops_done = Some(hops_done.to_vec());
        let sentence = after_pin(failure);
        return Err(run
            .fail(Step::Verify, step, sentence, summary.clone())
            .await);
    }
    run.finish(Step::Verify, step, true, None).await;
    Ok(())
}

/// The app restarted and up, what verification read of it, and the answers of its checks.
pub(super) struct Gathered {
    pub(super) up: Up,
    /// The verify step, started.
    pub(super) step: (std::time::Instant, Option<i64>),
    pub(super) after: Facts,
    /// How long the app was stopped before `up -d` (part of the downtime).
    pub(super) stopped_first_ms: u64,
    pub(super) smoke: (Vec<crate::steps::smoke::SmokeResult>, Vec<String>),
    pub(super) checks: (Vec<crate::steps::checks::Outcome>, Vec<String>),
}

/// Restarts and watches the app until it is up, then gathers the facts to verify and runs the
/// smoke and app checks while services without a healthcheck run out their window (a restart
/// in it fails the hop as it would the watch). A daemon that went away meanwhile: `up -d` and
/// the watch again once it answers, then the checks. Err: the run ends there.
async fn up_and_gather(
    j: &Journey<'_>,
    run: &mut Run<'_>,
    hop: &str,
    targets: &BTreeMap<String, String>,
    hops_done: &[String],
    summary: &mut UpgradeSummary,
) -> Result<Gathered, Finished> {
    let Journey {
        stack,
        facts,
        engine,
        engine_loss,
        from,
        backup_dir,
        ..
    } = *j;
    let view = &facts.view;
    let after_pin = |what: String| after_pin_state(stack, hop, from, backup_dir, what);
    if let Some(crate::probe::swarm::InSwarm::Stack(swarm)) = &facts.swarm {
        return super::swarm_hop::update_and_gather(
            j,
            run,
            &swarm.name,
            hop,
            targets,
            hops_done,
            summary,
        )
        .await;
    }
    loop {
        let stop_timeout = stack.settings.timeout_stop;
        // Found before the app stops: the restart's own search would add to the downtime.
        let _ = crate::docker::compose_cli::find().await;
        let stopped_first_ms = write_mark::before_restart(run, facts, stop_timeout, hop).await;
        let until = crate::steps::restart::WatchUntil::Up;
        let mut up =
            match restart_and_watch(run, stack, view, engine, targets, hop, engine_loss, until)
                .await
            {
                Ok(up) => up,
                Err(f) => return Err(start_failed(j, run, hop, hops_done, summary, f).await),
            };
        let mark = engine_loss.mark();
        let (step, after, smoke, checks) = begin_verify(j, run, hop).await;
        if up.steadying() {
            run.progress(
                Step::Verify,
                "waiting for the services without a healthcheck to run their window out",
            );
        }
        let held = up.held().await.err();
        if held.is_none() && after.docker.is_ok() {
            return Ok(Gathered {
                up,
                step,
                after,
                stopped_first_ms,
                smoke,
                checks,
            });
        }
        let say = progress_to(run.events, Step::Verify);
        let what = if held.is_some() {
            "the watch of the app's start"
        } else {
            "the checks"
        };
        match engine_loss.after_failure(mark, what, &say).await {
            After::NotEngine => {
                let Some(failure) = held else {
                    return Ok(Gathered {
                        up,
                        step,
                        after,
                        stopped_first_ms,
                        smoke,
                        checks,
                    });
                };
                up.end().await;
                let now = facts::database_again(facts).await;
                write_mark::record(run, Moment::AfterStart, hop, now.as_ref()).await;
                let reason = format!("the app did not stay up on {hop}: {}", failure.reason);
                summary.failure = Some(reason.clone());
                run.emit(Event::Failure {
                    reason: reason.clone(),
                    evidence: failure.evidence.clone(),
                });
                summary.evidence = Some(failure.evidence);
                summary.hops_done = Some(hops_done.to_vec());
                let sentence = after_pin(reason);
                return Err(run
                    .fail(Step::Verify, step, sentence, summary.clone())
                    .await);
            }
            After::Again => {
                up.end().await;
                run.finish(
                    Step::Verify,
                    step,
                    false,
                    Some("the Docker engine went away; the restart and the watch again".into()),
                )
                .await;
            }
            After::Gone(why) => {
                up.end().await;
                summary.failure = Some(why.clone());
                summary.engine_gone = true;
                summary.hops_done = Some(hops_done.to_vec());
                let sentence = after_pin(why);
                return Err(run
                    .fail(Step::Verify, step, sentence, summary.clone())
                    .await);
            }
        }
    }
}

/// A start that failed (`up -d` and its watch, or Swarm's update): the write mark after it,
/// the failure said, and the run ended with the state after the pin and the way back.
pub(super) async fn start_failed(
    j: &Journey<'_>,
    run: &mut Run<'_>,
    hop: &str,
    hops_done: &[String],
    summary: &mut UpgradeSummary,
    f: crate::steps::restart::UpFailed,
) -> Finished {
    let now = facts::database_again(j.facts).await;
    write_mark::record(run, Moment::AfterStart, hop, now.as_ref()).await;
    summary.failure = Some(f.reason.clone());
    if f.engine_gone {
        summary.engine_gone = true;
    }
    run.emit(Event::Failure {
        reason: f.reason.clone(),
        evidence: f.evidence.clone().unwrap_or_default(),
    });
    let swarm = crate::probe::swarm::stack_name(j.facts.swarm.as_ref());
    let sentence = super::after_pin_in(j.stack, swarm, hop, j.from, j.backup_dir, f.reason);
    if let Some(evidence) = f.evidence {
        summary.evidence = Some(evidence);
    }
    summary.hops_done = Some(hops_done.to_vec());
    run.fail(f.step, f.started, sentence, summary.clone()).await
}

/// The verify step started, the facts read again with the write mark after the start, and
/// the smoke and app checks run.
#[allow(clippy::type_complexity)]
pub(super) async fn begin_verify(
    j: &Journey<'_>,
    run: &mut Run<'_>,
    hop: &str,
) -> (
    (std::time::Instant, Option<i64>),
    Facts,
    (Vec<crate::steps::smoke::SmokeResult>, Vec<String>),
    (Vec<crate::steps::checks::Outcome>, Vec<String>),
) {
    // Verify: new images, healthy, schema after, no rows lost, smoke checks.
    let step = run
        .start(
            Step::Verify,
            "checking images, health, data and the app's answers",
        )
        .await;
    let after = facts::gather(j.ctx, j.facts.view.clone()).await;
    write_mark::record(run, Moment::AfterStart, hop, after.db.as_ref()).await;
    let smoke = smoke_checks(run, j.stack).await;
    let checks = app_checks(run, j.stack, &after).await;
    (step, after, smoke, checks)
}

/// The schema before and after, and every table's rows against the backup's (none may be
/// lost). Returns the problems.
pub(super) fn data_checks(
    run: &Run<'_>,
    schema_before: Option<&DbProbe>,
    after: &Facts,
) -> Vec<String> {
    let mut problems = Vec::new();
    let schema_after = after.db.as_ref().and_then(|r| r.as_ref().ok());
    if let (Some(before), Some(now)) = (schema_before, schema_after) {
        let revision = |p: &crate::db::DbProbe| {
            p.migrations
                .as_ref()
                .map_or("(no migrations table)".to_string(), |m| m.revision.clone())
        };
        run.emit(Event::Check {
            what: "schema".into(),
            ok: true,
            detail: format!("{} -> {}", revision(before), revision(now)),
        });
        // Known only by its commands: no rows to count, and none claimed.
        let by_commands = now
            .migrations
            .as_ref()
            .is_some_and(|m| m.framework == crate::db::MigrationFramework::Command);
        if by_commands {
            return problems;
        }
        let mut lost = Vec::new();
        for t in &before.tables {
            let rows_now = now.tables.iter().find(|n| n.name == t.name).map(|n| n.rows);
            match rows_now {
                Some(n) if n >= t.rows => {}
                Some(n) => lost.push(format!(
                    "table {} has {n} rows, {} before the upgrade",
                    t.name, t.rows
                )),
                None => lost.push(format!(
                    "table {} is gone ({} rows before the upgrade)",
                    t.name, t.rows
                )),
            }
        }
        run.emit(Event::Check {
            what: "rows".into(),
            ok: lost.is_empty(),
            detail: if lost.is_empty() {
                format!(
                    "{} tables, {} rows before, none lost",
                    before.tables.len(),
                    before.tables.iter().map(|t| t.rows).sum::<u64>()
                )
            } else {
                lost.join("; ")
            },
        });
        problems.extend(lost);
    } else if let Some(Err(e)) = &after.db {
        let problem = format!("the database cannot be read after the upgrade: {e}");
        run.emit(Event::Check {
            what: "database".into(),
            ok: false,
            detail: problem.clone(),
        });
        problems.push(problem);
    }
    problems
}

/// The upgraded services' environment and labels now against the backup's snapshot, each
/// change said (secret values masked); None when the backup kept none.
async fn config_changes(j: &Journey<'_>, run: &Run<'_>) -> Option<Vec<String>> {
    use crate::backup::config_snapshot;
    let then = config_snapshot::read(j.backup_dir)?;
    let containers = match crate::probe::swarm::stack_name(j.facts.swarm.as_ref()) {
        Some(swarm) => crate::docker::containers::swarm_task_containers(j.engine, swarm).await,
        None => crate::docker::stack_containers(j.engine, &j.facts.view.project).await,
    }
    .ok()?;
    let upgraded: Vec<_> = containers
        .into_iter()
        .filter(|c| j.facts.view.upgraded.contains(&c.service))
        .collect();
    let now = config_snapshot::take(j.engine, &upgraded).await;
    let changes = config_snapshot::diff(&then, &now);
    let head = if changes.is_empty() {
        "configuration: the same environment and labels as before the upgrade".to_string()
    } else {
        format!(
            "configuration since the backup ({} change{}; the backup's config.json holds it as it was):",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        )
    };
    run.progress(Step::Verify, head);
    for line in &changes {
        run.progress(Step::Verify, format!("  {line}"));
    }
    Some(changes)
}
