//! Going back without a restore after an additive migration: the previous version pinned
//! again and started on the newer schema (it ignores the tables and columns it does not know),
//! so everything written since the backup stays. Offered first when the planner says the schema
//! change only added things; when the previous version does not come up healthy, the rollback
//! goes on to the restore, asking again with what it takes away.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::plan::Plan;
use super::{Finished, Target, repin, state_words, verify};
use crate::context::Context;
use crate::docker::Engine;
use crate::probe::facts::StackView;
use crate::run::{Question, Run, Step};
use crate::stack::Stack;
use crate::steps::engine_loss::EngineLoss;

/// How the attempt ended.
pub(super) enum Kept {
    /// The previous version runs on the newer schema, verified: the rollback is done.
    Done(Finished),
    /// The user would rather restore: nothing was changed.
    Declined,
    /// The previous version did not come up; why. It stays pinned, for the restore to follow.
    Failed(String),
    /// The run ends here (the pin or the pull failed), said.
    Ended(Finished),
}

/// Asks (unless the user already agreed to a rollback that keeps first, or nobody is there:
/// trying loses nothing), then
/// re-pins the previous version, starts it and verifies it: images, health, `.env`, the
/// database readable, the smoke checks.
#[allow(clippy::too_many_arguments)]
pub(super) async fn attempt(
    run: &mut Run<'_>,
    ctx: &Context,
    stack: &Stack,
    view: &StackView,
    engine: &Engine,
    engine_loss: &EngineLoss,
    target: &Target,
    plan: &Plan,
    consent: super::Consent,
    summary: &mut Value,
) -> Kept {
    let previous = target.previous.as_str();
    let why = match &plan.schema_change {
        Some(change) => format!(
            "The schema change is additive ({}), so {previous} may run on it.",
            change.words()
        ),
        // A backup of the app's data alone: nothing tells whether the data changed format.
        None => format!(
            "The app keeps its state in its data, not in a database hoist can read; {previous} may read the data as the newer version left it."
        ),
    };
    let question = Question::Rollback {
        text: format!(
            "Go back to {previous} and keep everything written since the backup? {why} hoist starts it and checks it; if it does not come up healthy, the backup is restored instead (you are asked again, with what that takes away)."
        ),
        restore: false,
    };
    if consent == super::Consent::Ask && !run.ask(question).await {
        run.progress(
            Step::CheckBackup,
            "going back while keeping the newer data was not confirmed; the restore is asked next",
        );
        return Kept::Declined;
    }
    summary["keep"] = json!({"tried": true});
    let targets =
        match repin::repin_and_pull(run, stack, engine, engine_loss, target, summary).await {
            Ok(t) => t,
            Err(finished) => return Kept::Ended(finished),
        };
    let up = match crate::steps::restart::restart_and_watch(
        run,
        stack,
        view,
        engine,
        &targets,
        previous,
        engine_loss,
        crate::steps::restart::WatchUntil::Ready,
    )
    .await
    {
        Ok(up) => up,
        Err(f) => {
            let why = format!("{previous} did not come up on {}: {}", on(plan), f.reason);
            run.finish(f.step, f.started, false, Some(why.clone()))
                .await;
            run.emit(crate::run::Event::Failure {
                reason: why.clone(),
                evidence: f.evidence.clone().unwrap_or_default(),
            });
            summary["keep"] = json!({"tried": true, "failed": why, "evidence": f.evidence});
            return Kept::Failed(why);
        }
    };
    finish(run, ctx, stack, view, &targets, target, up, summary, plan).await
}

/// What the previous version is started on: "the newer schema", or for a backup of the app's
/// data alone "the data as the newer version left it".
fn on(plan: &Plan) -> &'static str {
    if plan.schema_change.is_some() {
        "the newer schema"
    } else {
        "the data as the newer version left it"
    }
}

/// The verify step of a kept rollback: no revision or row check (the schema is the newer one,
/// and every row written since is meant to be there).
#[allow(clippy::too_many_arguments)]
async fn finish(
    run: &mut Run<'_>,
    ctx: &Context,
    stack: &Stack,
    view: &StackView,
    targets: &BTreeMap<String, String>,
    target: &Target,
    up: crate::steps::restart::Up,
    summary: &mut Value,
    plan: &Plan,
) -> Kept {
    let (previous, current) = (target.previous.as_str(), target.current.as_str());
    let step = run
        .start(
            Step::Verify,
            &format!(
                "checking images, health, .env and the app's answers on {}",
                on(plan)
            ),
        )
        .await;
    let problems = verify::check_after(
        run,
        ctx,
        stack,
        view,
        targets,
        previous,
        None,
        super::plan::Decision::Repin,
        summary,
    )
    .await;
    summary["downtime_ms"] = json!(up.end().await);
    if !problems.is_empty() {
        let why = format!(
            "{previous} runs on {} but did not verify: {}",
            on(plan),
            problems.join("; ")
        );
        run.finish(Step::Verify, step, false, Some(why.clone()))
            .await;
        summary["keep"] = json!({"tried": true, "failed": why});
        return Kept::Failed(why);
    }
    run.finish(Step::Verify, step, true, None).await;
    summary["keep"] = json!({"tried": true, "kept": true});
    summary["outcome"] = json!("succeeded");
    summary["exit_code"] = json!(0);
    Kept::Done(Finished {
        exit_code: 0,
        sentence: format!(
            "{} rolled back from {current} to {previous}, which runs on {}{}: everything written since the backup is kept, nothing was restored. {}",
            view.project,
            on(plan),
            if plan.schema_change.is_some() {
                " (the change was additive)"
            } else {
                ""
            },
            state_words(target, &format!(".env pins {previous}"))
        ),
        summary: summary.clone(),
    })
}
