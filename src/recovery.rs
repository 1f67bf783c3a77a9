//! What follows an upgrade that failed after it changed the stack: the rollback planner's
//! preview, the question to the user, then the rollback — or, with nobody attached and a
//! restore that would lose data, the app's services stopped and the decision left to a person.
//! It sits above both `upgrade` and `rollback`, so neither imports the other.
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::context::Context;
use crate::journal::Journal;
use crate::journal::Outcome;
use crate::probe::facts;
use crate::run::{Event, Finished, Question, UpgradeSummary, ask, record_finish, run_event};
use crate::steps::stop::{Grace, stop_services};
use crate::upgrade::{Ended, FailedChange, Request};

/// An upgrade, and what follows when it fails after changing the stack. Front ends call this.
pub async fn upgrade(ctx: &Context, req: &Request, events: &UnboundedSender<Event>) -> Finished {
    let Ended {
        finished,
        failed_change,
    } = crate::upgrade::run(ctx, req, events).await;
    match failed_change {
        None => finished.erased(),
        Some(change) => after_failure(ctx, req, events, finished, change)
            .await
            .erased(),
    }
}

/// Offers the rollback the planner picks (or takes it alone when that loses nothing and nobody
/// is attached), and records how the run ended.
async fn after_failure(
    ctx: &Context,
    req: &Request,
    events: &UnboundedSender<Event>,
    mut finished: Finished<UpgradeSummary>,
    change: FailedChange,
) -> Finished<UpgradeSummary> {
    let journal = match Journal::open(&ctx.state_dir).await {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::warn!("the journal, to record the rollback: {e}");
            None
        }
    };
    let FailedChange {
        run_id,
        from,
        failure,
        ..
    } = &change;
    let target = crate::rollback::Target {
        backup_dir: change.backup_dir.clone(),
        manifest_sha256: None,
        previous: crate::rollback::repin::exact_previous(from, &change.backup_dir),
        current: change.pinned_now.clone(),
        upgrade_run: Some(run_id.clone()),
        restore: false,
    };
    if req.stop.detached() {
        // Nobody to ask: the app's services are stopped before the database's writes are
        // counted, so that nothing more is written and every connection has closed and
        // published its counts (PostgreSQL holds an idle connection's for up to ten seconds).
        let now = facts::gather(ctx, change.view.clone()).await;
        if let Ok(docker) = &now.docker {
            let grace = Grace::Fixed(change.stop_timeout);
            stop_services(docker, &change.view.upgraded, grace, &|_| {}).await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    // The planner's choice, its reason and what it would lose are shown before asking.
    let offer = offer(ctx, events, &target, &mut finished, &change).await;
    // With nobody attached (or gone while asked), hoist rolls back alone only when that
    // loses nothing; otherwise it leaves the app stopped and the decision recorded.
    let mut go = false;
    let mut unattended_loss = None;
    if let Some((question, plan)) = &offer {
        go = !req.stop.detached() && ask(events, question.clone()).await.yes();
        if req.stop.detached() {
            // Trying the previous version as things are loses nothing; the restore that may
            // follow is left for a person (`Consent::LosslessOnly`).
            go = plan.loses_nothing() || plan.keep_first;
            if !go {
                unattended_loss = Some(plan.loss_words());
            }
        }
    }
    if let Some(loss) = unattended_loss {
        finished = leave_for_decision(
            ctx,
            &change.view,
            change.stop_timeout,
            &change.backup_dir,
            finished,
            failure,
            &loss,
        )
        .await;
    } else if go {
        let consent = if req.stop.detached() {
            crate::rollback::Consent::LosslessOnly
        } else {
            crate::rollback::Consent::Given
        };
        let rolled = crate::rollback::run(ctx, &target, events, journal.as_ref(), consent).await;
        finished = after_rollback(finished, rolled, &change);
    }

    if let Some(journal) = &journal
        && let Err(why) = record_finish(journal, run_id, &finished).await
    {
        crate::run::say_incomplete_record(&mut finished, &why);
    }
    if let Some(journal) = journal {
        journal.close().await;
    }
    finished
}

/// The rollback the planner picks, shown (as an event) and put as a question; None, said in
/// `finished`, when hoist cannot roll back.
async fn offer(
    ctx: &Context,
    events: &UnboundedSender<Event>,
    target: &crate::rollback::Target,
    finished: &mut Finished<UpgradeSummary>,
    change: &FailedChange,
) -> Option<(Question, crate::rollback_plan::Plan)> {
    let FailedChange {
        from, to, failure, ..
    } = change;
    match crate::rollback::preview(ctx, target).await {
        Ok(plan) => {
            let what = match plan.decision {
                crate::rollback_plan::Decision::Repin => format!("re-pin {from}, no restore"),
                crate::rollback_plan::Decision::Restore if plan.keep_first => format!(
                    "re-pin {from} on the database and data as they are now, keeping everything written since; if it does not come up, restore the backup: {} (kept aside)",
                    plan.loss_words()
                ),
                crate::rollback_plan::Decision::Restore => format!(
                    "restore the backup, then {from}; {} (kept aside)",
                    plan.loss_words()
                ),
            };
            run_event(
                events,
                Event::Rollback {
                    decision: plan.decision,
                    reason: plan.reason_words(),
                    losses: plan.losses.clone(),
                    unknown_loss: plan.unknown_loss.clone(),
                    keep_first: plan.keep_first,
                },
            );
            Some((
                Question::Rollback {
                    text: format!(
                        "The upgrade to {to} failed: {failure}. Roll back ({what})? Because {}.",
                        plan.reason
                    ),
                    restore: plan.decision == crate::rollback_plan::Decision::Restore,
                },
                plan,
            ))
        }
        Err(e) => {
            finished.sentence = format!("{} hoist cannot roll back: {e}.", finished.sentence);
            finished.summary.rollback_error = Some(e);
            None
        }
    }
}

/// How the failed upgrade ended once its rollback `rolled` did: rolled back (exit 4), or not.
fn after_rollback(
    finished: Finished<UpgradeSummary>,
    rolled: Finished<serde_json::Value>,
    change: &FailedChange,
) -> Finished<UpgradeSummary> {
    let FailedChange {
        from, to, failure, ..
    } = change;
    match rolled.exit_code {
        0 => {
            let mut summary = finished.summary;
            let sentence = format!(
                "the upgrade to {to} failed ({failure}), and hoist rolled it back: {}",
                rolled.sentence
            );
            summary.outcome = Outcome::RolledBack;
            summary.exit_code = 4;
            summary.rollback = Some(rolled.summary);
            // What holds now, not what held before the rollback.
            summary.pinned_now = Some(from.clone());
            summary.error = Some(sentence.clone());
            Finished {
                exit_code: 4,
                sentence,
                summary,
            }
        }
        code => {
            let mut summary = finished.summary;
            summary.rollback = Some(rolled.summary);
            let sentence = if code == 3 {
                format!(
                    "{} hoist did not roll back: {}",
                    finished.sentence, rolled.sentence
                )
            } else {
                format!(
                    "the upgrade to {to} failed ({failure}), and the rollback failed too: {}",
                    rolled.sentence
                )
            };
            Finished {
                exit_code: 1,
                sentence,
                summary,
            }
        }
    }
}

/// An upgrade failed with nobody attached, and a rollback would lose data: stop the app's
/// services (the database keeps running) so nothing more is written or migrated, and record
/// that a decision is needed.
async fn leave_for_decision(
    ctx: &Context,
    view: &facts::StackView,
    stop_timeout: Duration,
    backup: &std::path::Path,
    mut finished: Finished<UpgradeSummary>,
    failure: &str,
    loss: &str,
) -> Finished<UpgradeSummary> {
    let now = facts::gather(ctx, view.clone()).await;
    let (stopped, not_stopped) = match &now.docker {
        Ok(docker) => {
            let s =
                stop_services(docker, &view.upgraded, Grace::Fixed(stop_timeout), &|_| {}).await;
            (s.stopped, s.failed)
        }
        Err(e) => (Vec::new(), vec![format!("any of them ({e})")]),
    };
    let backup = backup.display();
    let state = if not_stopped.is_empty() {
        // Stopped before the writes were counted, or now.
        format!(
            "hoist stopped the app's services ({}the database still runs) so that nothing more is written",
            if stopped.is_empty() {
                String::new()
            } else {
                format!("{}; ", stopped.join(", "))
            }
        )
    } else {
        format!(
            "hoist tried to stop the app's services so that nothing more is written, but could not stop {}",
            not_stopped.join(", ")
        )
    };
    finished.sentence = format!(
        "the upgrade failed ({failure}) while nobody was attached. Going back means restoring the backup, which would lose what was {loss}, and hoist does not decide that alone: {state}. Run `hoist` (or `hoist rollback`) to roll back, or look into the failure first; the backup is in {backup}."
    );
    finished.summary.outcome = Outcome::NeedsDecision;
    finished.summary.stopped_services = Some(stopped);
    finished.summary.error = Some(finished.sentence.clone());
    tracing::warn!("{}", finished.sentence);
    finished
}
