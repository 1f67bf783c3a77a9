//! A hop of a Swarm stack: where a Compose project's hop runs `up -d` and watches its
//! containers, Swarm is asked to update each service's image and followed until it says the
//! update completed; the verification after it is the Compose hop's (the containers are the
//! tasks' on this node).
use std::collections::BTreeMap;

use super::after_pin_in;
use super::hop::{Gathered, Journey};
use crate::probe::facts;
use crate::rollback_plan::Moment;
use crate::run::{Event, Run, Step, UpgradeSummary};
use crate::steps::verify::{app_checks, smoke_checks};
use crate::steps::{swarm_update, write_mark};

type Finished = crate::run::Finished<UpgradeSummary>;

/// Swarm's update of `targets` (service -> image) to `hop`, then the facts, smoke and app
/// checks gathered for verification. Err: the run ends there.
pub(super) async fn update_and_gather(
    j: &Journey<'_>,
    run: &mut Run<'_>,
    swarm_stack: &str,
    hop: &str,
    targets: &BTreeMap<String, String>,
    hops_done: &[String],
    summary: &mut UpgradeSummary,
) -> Result<Gathered, Finished> {
    let Journey {
        ctx,
        stack,
        facts,
        engine,
        from,
        backup_dir,
        ..
    } = *j;
    write_mark::before_swarm_update(run, facts, hop).await;
    let up = match swarm_update::update_and_watch(run, stack, engine, swarm_stack, targets, hop)
        .await
    {
        Ok(up) => up,
        Err(f) => {
            let now = facts::database_again(facts).await;
            write_mark::record(run, Moment::AfterStart, hop, now.as_ref()).await;
            summary.failure = Some(f.reason.clone());
            run.emit(Event::Failure {
                reason: f.reason.clone(),
                evidence: f.evidence.clone().unwrap_or_default(),
            });
            let sentence = after_pin_in(stack, Some(swarm_stack), hop, from, backup_dir, f.reason);
            if let Some(evidence) = f.evidence {
                summary.evidence = Some(evidence);
            }
            summary.hops_done = Some(hops_done.to_vec());
            return Err(run.fail(f.step, f.started, sentence, summary.clone()).await);
        }
    };
    let step = run
        .start(
            Step::Verify,
            "checking images, health, data and the app's answers",
        )
        .await;
    let after = facts::gather(ctx, facts.view.clone()).await;
    write_mark::record(run, Moment::AfterStart, hop, after.db.as_ref()).await;
    let smoke = smoke_checks(run, stack).await;
    let checks = app_checks(run, stack, &after).await;
    Ok(Gathered {
        up,
        step,
        after,
        stopped_first_ms: 0,
        smoke,
        checks,
    })
}
