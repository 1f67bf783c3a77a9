//! A hop of a Swarm stack: where a Compose project's hop runs `up -d` and watches its
//! containers, Swarm is asked to update each service's image and followed until it says the
//! update completed; the verification after it is the Compose hop's (the containers are the
//! tasks' on this node).
use std::collections::BTreeMap;

use super::hop::{Gathered, Journey, begin_verify, start_failed};
use crate::run::{Run, UpgradeSummary};
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
    write_mark::before_swarm_update(run, j.facts, hop).await;
    let up = match swarm_update::update_and_watch(run, j.stack, j.engine, swarm_stack, targets, hop)
        .await
    {
        Ok(up) => up,
        Err(f) => return Err(start_failed(j, run, hop, hops_done, summary, f).await),
    };
    let (step, after, smoke, checks) = begin_verify(j, run, hop).await;
    Ok(Gathered {
        up,
        step,
        after,
        stopped_first_ms: 0,
        smoke,
        checks,
    })
}
