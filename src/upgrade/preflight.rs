//! The upgrade's preflight: the same checks as `hoist check` (Docker, a backup that can be
//! taken and fits, every service healthy), the services shown with a failing one's last log
//! lines, and an unhealthy service gone past only at a person's word (or expected, when an
//! interrupted upgrade is continued). A failure refuses with nothing changed.
use std::collections::BTreeMap;

use super::Finished;
use super::{Request, refused};
use crate::context::Context;
use crate::preflight::{self as checks, BackupEstimate, Level};
use crate::probe::evidence::last_lines;
use crate::probe::facts::{self, Facts};
use crate::run::{Event, Question, Run, Step};
use crate::steps::restart::wait_for_compose;

/// What the preflight found, for the rest of the run.
pub(super) struct Preflighted {
    pub(super) facts: Facts,
    /// The backup's size, walked once for the whole run.
    pub(super) estimate: BackupEstimate,
    /// The unhealthy services gone past (at the user's word, or expected when continuing).
    pub(super) overridden: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_preflight(
    run: &mut Run<'_>,
    ctx: &Context,
    req: &Request,
    view: facts::StackView,
    continuing: bool,
    to: &str,
    smoke: &mut Vec<crate::stack::detect::Smoke>,
    app_checks: &[crate::stack::checks::AppCheck],
) -> Result<Preflighted, Finished> {
    // Preflight: the same checks as `hoist check`; a failed one refuses with nothing changed.
    let step = run
        .start(Step::Preflight, "checking the stack is healthy and ready")
        .await;
    if let Err(sentence) = wait_for_compose(run, Step::Preflight, &view.project).await {
        run.finish(Step::Preflight, step, false, Some(sentence.clone()))
            .await;
        return Err(refused(3, sentence, to));
    }
    let facts = facts::gather(ctx, view).await;
    // Problems nobody may wave through (no Docker, no possible backup), and unhealthy
    // services, which a person who knows why may choose to upgrade past.
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = &facts.docker {
        problems.push(e.to_string());
    }
    // The backup's size, walked once for the whole run (the disk checks and a full disk's message).
    let estimate = crate::preflight::backup_estimate(&facts).await;
    // A continued run takes no backup: it keeps the one taken before its pin.
    if !continuing
        && let Err((_, sentence)) = crate::preflight::backup_preconditions(&facts, &estimate)
    {
        // Said once: without Docker the backup's own precondition says the same.
        if !problems.contains(&sentence) {
            problems.push(sentence);
        }
    }
    // A restore program that is missing would show only mid-rollback, with the app stopped.
    if !continuing
        && let Some(f) = crate::preflight::database_programs_finding(&facts).await
        && f.status == Level::Fail
    {
        problems.push(f.message);
    }
    // Several Swarm stacks of the files: nobody may wave that through. And a service whose
    // tasks run on other nodes has no container here: "start it" would be wrong.
    if let Some(f) = crate::preflight::swarm_finding(&facts)
        && f.status == Level::Fail
    {
        problems.insert(0, f.message);
    }
    let in_swarm = !crate::preflight::containers_tell_all(&facts);
    let services = crate::probe::services::services(&facts);
    let mut unhealthy: Vec<String> = Vec::new();
    let mut evidence = BTreeMap::new();
    // Without Docker no service's state is known: "api is unknown: start it" would send the
    // user after the wrong thing.
    for s in services
        .iter()
        .filter(|_| facts.docker.is_ok() && !in_swarm)
    {
        let role = checks::Role::of(&facts.view, &s.name).in_swarm(&facts, &s.name);
        let (level, message) = checks::judge_service(s, &role);
        if level == Level::Fail {
            unhealthy.push(message);
            if let Ok(docker) = &facts.docker {
                evidence.insert(s.name.clone(), last_lines(docker, &s.name).await);
            }
        }
    }
    run.emit(Event::Health {
        services: services.clone(),
        problems: problems.iter().chain(&unhealthy).cloned().collect(),
        evidence,
    });
    // A resumed run expects a half-upgraded app: it is what the run goes on to mend.
    let overridden = problems.is_empty()
        && !unhealthy.is_empty()
        && !req.dry_run
        && (continuing
            || run
                .ask(Question::Override {
                    problems: unhealthy.clone(),
                })
                .await);
    if overridden && continuing {
        run.progress(
            Step::Preflight,
            format!(
                "resuming an interrupted upgrade, so these are expected: {}",
                unhealthy.join("; ")
            ),
        );
    } else if overridden {
        run.progress(
            Step::Preflight,
            format!("going on at your request although {}", unhealthy.join("; ")),
        );
        tracing::warn!(?unhealthy, "preflight overridden by the user");
    } else {
        problems.extend(unhealthy.iter().cloned());
    }
    if !problems.is_empty() {
        let sentence = format!(
            "the stack is not ready to upgrade: {}. Nothing was changed; `hoist check` shows the details.",
            problems
                .iter()
                .map(|p| p.trim_end_matches('.'))
                .collect::<Vec<_>>()
                .join("; ")
        );
        run.finish(Step::Preflight, step, false, Some(sentence.clone()))
            .await;
        return Err(refused(3, sentence, to));
    }
    // A change waiting in the files goes in with the new version: said before anything changes.
    if !continuing && let Some(f) = crate::preflight::pending_config_finding(&facts).await {
        run.progress(Step::Preflight, f.message);
    }
    // The smoke checks as the app answers them now (a continued run's app is half-upgraded:
    // what it answers says nothing).
    if !continuing {
        for words in crate::steps::smoke::baseline(smoke).await {
            run.progress(Step::Preflight, words);
        }
        if let Err(sentence) = app_checks_baseline(run, smoke, app_checks, &facts).await {
            run.finish(Step::Preflight, step, false, Some(sentence.clone()))
                .await;
            return Err(refused(3, sentence, to));
        }
    }
    run.finish(Step::Preflight, step, true, None).await;
    let overridden: Vec<String> = if overridden { unhealthy } else { Vec::new() };
    // The plan lists the checks as the preflight left them.
    let mut facts = facts;
    facts.view.smoke = smoke.clone();
    Ok(Preflighted {
        facts,
        estimate,
        overridden,
    })
}

/// The checks beyond HTTP, run once before anything changes: a check that fails now could not
/// tell a broken upgrade from a good one (the app is unwell already, or the check is wrong),
/// so the upgrade is refused with why.
async fn app_checks_baseline(
    run: &Run<'_>,
    smoke: &[crate::stack::detect::Smoke],
    checks: &[crate::stack::checks::AppCheck],
    facts: &Facts,
) -> Result<(), String> {
    // The configured HTTP checks too (the detected ones were settled by the baseline above):
    // a wrong expectation must show now, not after the pin.
    let configured = smoke.iter().filter(|s| s.configured).count() + checks.len();
    if configured == 0 {
        return Ok(());
    }
    run.progress(
        Step::Preflight,
        format!(
            "running the app's {configured} check{} once before the upgrade",
            if configured == 1 { "" } else { "s" }
        ),
    );
    let outcomes =
        crate::steps::checks::configured_now(smoke, checks, facts.docker.as_ref().ok()).await;
    let mut failed = Vec::new();
    for o in &outcomes {
        run.progress(
            Step::Preflight,
            format!(
                "{} before the upgrade: {}{}",
                o.what,
                if o.ok { "" } else { "FAILED, " },
                o.detail
            ),
        );
        if !o.ok {
            failed.push(format!("{}: {}", o.what, o.detail));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the app's own check{} already fail{} before the upgrade ({}), so {} could not tell a broken upgrade from a good one. Nothing was changed: fix the app, or the check in your settings (x-hoist or hoist.yaml), then upgrade again.",
        if failed.len() == 1 { "" } else { "s" },
        if failed.len() == 1 { "s" } else { "" },
        failed.join("; "),
        if failed.len() == 1 { "it" } else { "they" }
    ))
}
