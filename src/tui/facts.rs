//! What the home shows, read from the stack, Docker, the registry and the journal: what runs
//! now and the newer versions first (before the screen opens), then what takes a moment (the
//! last upgrade as `hoist rollback`'s planner sees it, which checks its backup's files).
use crate::context::Context;
use crate::journal::{Journal, RunKind};
use crate::probe::facts;
use crate::stack::detect::BesideCopy;

use super::home::{Available, LastUpgrade, ago};
use super::state::State;

/// The start screen's words about the stack itself (see `Start::about`).
fn about(stack: &crate::stack::Stack, view: &facts::StackView) -> Vec<String> {
    let mut out = Vec::new();
    if view.pin_unknown.is_none() {
        out.push(format!(
            "Version in {}{}.",
            view.pin_place,
            if view.moving {
                " (a moving tag, not a pin: hoist pins an exact version)"
            } else {
                ""
            }
        ));
    }
    if let Some(db) = &stack.detection.database {
        out.push(format!(
            "Database {} (service {}), known by {}.",
            db.kind.name(),
            db.service,
            db.how
        ));
    } else if let Some(seen) = &view.unsupported_database {
        out.push(format!(
            "Database {} (service {}): hoist cannot back it up.",
            seen.kind, seen.service
        ));
    }
    let names = |left_out: bool| -> Vec<&str> {
        view.beside
            .iter()
            .filter(|b| (b.copy == BesideCopy::LeftOut) == left_out)
            .map(|b| b.service.as_str())
            .collect()
    };
    let copied = names(false);
    if !copied.is_empty() {
        out.push(format!(
            "Backed up beside the app: the data of {}.",
            copied.join(", ")
        ));
    }
    let left_out = names(true);
    if !left_out.is_empty() {
        out.push(format!(
            "Not backed up (x-hoist leave_out): the data of {}.",
            left_out.join(", ")
        ));
    }
    out
}

/// The start screen's facts: what runs, how healthy, and the newer versions.
pub async fn starting_state(ctx: &Context) -> Result<State, String> {
    let (stack, view) = facts::load_stack(ctx).map_err(|e| e.to_string())?;
    let pinned = stack.detection.version.value.clone();
    let facts = facts::gather(ctx, view).await;
    let services = crate::probe::services::services(&facts);
    let running = crate::probe::services::running_version(&services);
    let mut state = State::new(&facts.view.project, pinned.as_deref().unwrap_or("?"), "");
    state.hoist = ctx.hoist.clone();
    state.start.attention = crate::resume::check(&ctx.state_dir, &facts.view.project).await;
    state.start.pinned = pinned.clone();
    state.start.running = running.clone();
    state.start.about = about(&stack, &facts.view);
    state.start.services = services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.version.clone().unwrap_or_default(),
                s.state_words(),
            )
        })
        .collect();
    let image = crate::stack::targets::target_images(&stack, pinned.as_deref().unwrap_or("latest"))
        .ok()
        .and_then(|i| i.into_values().next());
    match image {
        Some(image) => {
            match crate::versions::overview(&image, pinned.as_deref(), running.as_deref()).await {
                Ok(o) => {
                    state.start.selected = o
                        .next
                        .as_ref()
                        .and_then(|n| o.newer.iter().position(|v| v == n))
                        .unwrap_or(0);
                    state.start.choices = o.newer;
                    state.start.next = o.next;
                }
                Err(e) => {
                    state.start.note = Some(format!(
                        "The registry's versions could not be read ({e}). Type the version to upgrade to."
                    ))
                }
            }
        }
        None => {
            state.start.note = Some(match &stack.detection.version.site {
                crate::stack::detect::Site::Unknown { reason } => {
                    format!("hoist cannot tell where the app's version is written: {reason}.")
                }
                _ => "No service's image uses the version variable.".into(),
            })
        }
    }
    state.start.backup_root = Some(facts.view.backup_dir.display().to_string());
    in_swarm(&facts, &mut state);
    state.start.preselect();
    Ok(state)
}

/// A Swarm stack is no Compose project: the home says so first and shows its services as Swarm
/// runs them (not "missing"). The same file deployed as several stacks offers no upgrade.
fn in_swarm(facts: &facts::Facts, state: &mut State) {
    let Some(finding) = crate::preflight::swarm_finding(facts) else {
        return;
    };
    state.start.about.insert(0, format!("{}.", finding.message));
    if let Some(crate::probe::swarm::InSwarm::Stack(stack)) = &facts.swarm {
        state.start.services = stack
            .services
            .iter()
            .map(|s| {
                let version = crate::probe::swarm::version_of(s).unwrap_or_default();
                let running = match s.replicas {
                    Some(n) => format!("{} of {n} running (Swarm)", s.running),
                    None => format!("{} running, one per node (Swarm)", s.running),
                };
                (s.service.clone(), version, running)
            })
            .collect();
    }
    if finding.status == crate::preflight::Level::Fail {
        state.start.choices.clear();
        state.start.next = None;
        state.start.note = Some(match &facts.swarm {
            Some(crate::probe::swarm::InSwarm::Stack(_)) => {
                "No upgrade is offered until Swarm can place every task of the stack (see above)."
                    .into()
            }
            _ => "No upgrade is offered: hoist cannot tell which of the Swarm stacks is this directory's."
                .into(),
        });
    }
}

/// The last upgrade and how `hoist rollback` would undo it (the same planner: `find_target`,
/// then `preview`, which checks the backup's files), or why there is nothing to roll back;
/// and how many runs and backups the journal holds, in words.
pub async fn journal_facts(
    ctx: &Context,
    project: &str,
    backup_root: &std::path::Path,
) -> (
    Available<LastUpgrade>,
    Option<String>,
    Vec<(String, String)>,
) {
    let journal = match Journal::open(&ctx.state_dir).await {
        Ok(j) => j,
        Err(e) => {
            return (
                Available::Not(format!("the journal cannot be read: {e}")),
                None,
                Vec::new(),
            );
        }
    };
    let runs = journal.runs(project, 1000).await.unwrap_or_default();
    let backups = journal.backups(project).await.map_or(0, |b| b.len());
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let words = format!(
        "{}, {}",
        plural(runs.len(), "run"),
        plural(backups, "backup")
    );
    let upgraded = runs
        .iter()
        .any(|r| r.kind == RunKind::Upgrade && crate::resume::changed_stack(r));
    let last = if !upgraded {
        Available::Not("nothing to roll back: no upgrade in the journal".into())
    } else {
        match crate::rollback::find_target(&journal, project, None, backup_root).await {
            Err(e) => Available::Not(e),
            Ok(target) => match crate::rollback::preview(ctx, &target).await {
                Err(e) => Available::Not(format!("its backup cannot be used: {e}")),
                Ok(plan) => {
                    let run = runs
                        .iter()
                        .find(|r| Some(&r.id) == target.upgrade_run.as_ref());
                    let at = run
                        .and_then(|r| r.finished_at.as_deref().or(Some(r.started_at.as_str())))
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
                    Available::Ready(LastUpgrade {
                        run: target.upgrade_run.clone().unwrap_or_default(),
                        now: target.current.clone(),
                        back_to: target.previous.clone(),
                        when: at.map_or_else(String::new, |t| {
                            t.strftime("%Y-%m-%d %H:%M UTC").to_string()
                        }),
                        ago: at.map_or_else(String::new, |t| {
                            ago(jiff::Timestamp::now().as_second() - t.as_second())
                        }),
                        restore: plan.decision == crate::rollback::plan::Decision::Restore,
                        loss: plan.loss_words(),
                        reason: plan.reason_words(),
                    })
                }
            },
        }
    };
    journal.close().await;
    (last, Some(words), failed_here(&runs))
}

/// The versions an upgrade to failed here, newest first: (version, "failed here 2 h ago,
/// rolled back"), so the home does not recommend one without saying so.
/// A version an upgrade reached since it failed is not called failed (it may have failed for
/// a reason of the moment: a worker killed, a full disk).
fn failed_here(runs: &[crate::journal::RunRecord]) -> Vec<(String, String)> {
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut reached_since: Vec<&str> = Vec::new();
    for r in runs {
        let outcome = r.outcome.as_str();
        if r.kind == RunKind::Upgrade
            && outcome == "succeeded"
            && let Some(to) = &r.to_version
        {
            reached_since.push(to);
        }
        if r.kind != RunKind::Upgrade || !matches!(outcome, "failed" | "rolled_back") {
            continue;
        }
        let Some(to) = &r.to_version else { continue };
        // A run of several hops failed at the hop its failed step names, not at its target.
        let failed_hop = r
            .summary
            .as_ref()
            .and_then(|s| s["steps"].as_array())
            .and_then(|steps| {
                steps
                    .iter()
                    .rev()
                    .find(|st| st["status"] == "failed")
                    .and_then(|st| st["hop"].as_str())
            })
            .map(str::to_string);
        let to = &failed_hop.unwrap_or_else(|| to.clone());
        if failed.iter().any(|(v, _)| v == to) || reached_since.contains(&to.as_str()) {
            continue;
        }
        let at = r
            .finished_at
            .as_deref()
            .unwrap_or(r.started_at.as_str())
            .parse::<jiff::Timestamp>()
            .ok();
        let when = at.map_or_else(String::new, |t| {
            format!(
                " {}",
                ago(jiff::Timestamp::now().as_second() - t.as_second())
            )
        });
        let after = if outcome == "rolled_back" {
            ", rolled back"
        } else {
            ""
        };
        // Caught by a rehearsal: it failed on a throwaway copy, the app never ran it.
        let words = if r.failed_on_a_copy() {
            format!("failed on a throwaway copy here{when}")
        } else {
            format!("failed here{when}{after}")
        };
        failed.push((to.clone(), words));
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::failed_here;
    use crate::journal::{Outcome, RunKind, RunRecord};

    fn upgrade(to: &str, outcome: Outcome) -> RunRecord {
        RunRecord {
            id: String::new(),
            kind: RunKind::Upgrade,
            project: "app".into(),
            from_version: Some("0.1.9".into()),
            to_version: Some(to.into()),
            started_at: "2026-12-04T08:00:00Z".into(),
            finished_at: None,
            outcome,
            exit_code: None,
            message: None,
            pid: 0,
            summary: None,
            steps: Vec::new(),
            backup_dir: None,
        }
    }

    #[test]
    fn a_version_reached_after_its_failure_is_not_called_failed() {
        // Newest first: 0.1.10 failed, then an upgrade to it succeeded (and was rolled back
        // by hand later, which says nothing against the release).
        let runs = [
            upgrade("0.1.10", Outcome::Succeeded),
            upgrade("0.1.10", Outcome::RolledBack),
            upgrade("0.1.13", Outcome::RolledBack),
        ];
        let failed = failed_here(&runs);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].0, "0.1.13");
        // A failure after the success is said.
        let runs = [
            upgrade("0.1.10", Outcome::Failed),
            upgrade("0.1.10", Outcome::Succeeded),
        ];
        assert_eq!(failed_here(&runs)[0].0, "0.1.10");
    }
}
