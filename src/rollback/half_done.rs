//! A rollback or restore that stopped inside its restore (killed, or failed after it began
//! putting the backup back) may have left the app's data or database half restored: the
//! database already the backup's while the files are not, or the files moved aside and half
//! extracted. The planner, looking at the schema alone, would then say "re-pin, nothing to
//! restore" and start the old version on that. So the next rollback of the same upgrade
//! restores again, and says why.
use crate::journal::{Journal, Outcome, RunKind, RunRecord};
use crate::rollback_plan::{Decision, Plan};

/// The newest rollback or restore after the upgrade `upgrade_run` that stopped inside a step
/// putting the backup back and did not succeed (`runs` newest first).
pub fn earlier_attempt<'a>(runs: &'a [RunRecord], upgrade_run: &str) -> Option<&'a RunRecord> {
    runs.iter()
        .take_while(|r| r.id != upgrade_run)
        .filter(|r| matches!(r.kind, RunKind::Rollback | RunKind::Restore))
        .take_while(|r| r.outcome != Outcome::Succeeded)
        .find(|r| {
            // A restore step that did not finish: once both are done, data and database are
            // the backup's whole, and the planner sees that.
            r.steps.iter().any(|s| {
                matches!(s.name.as_str(), "restore_data" | "restore_database")
                    && s.status != crate::journal::StepState::Done
            })
        })
}

/// The upgrade that the newest rollback was undoing, when that rollback was cut short or failed
/// after it stopped the app (`runs` newest first): the next `hoist rollback` finishes it, even
/// when it was of an older upgrade given with `--run`. Found by the backup it went back to.
pub fn unfinished_upgrade<'a>(
    runs: &'a [RunRecord],
    backups: &[crate::journal::BackupRecord],
) -> Option<&'a RunRecord> {
    let at = runs.iter().position(|r| {
        matches!(r.kind, RunKind::Rollback | RunKind::Restore)
            && !matches!(r.outcome, Outcome::Refused | Outcome::DryRun)
    })?;
    // An upgrade that changed the stack after it is what a rollback undoes now: the cut-short
    // one was overtaken (and that upgrade's own backup holds what was written in between).
    if runs[..at]
        .iter()
        .any(|r| r.kind == RunKind::Upgrade && crate::resume::changed_stack(r))
    {
        return None;
    }
    let last = &runs[at];
    let cut_short = last.kind == RunKind::Rollback
        && match last.outcome {
            Outcome::Running => true,
            Outcome::Failed => last.steps.iter().any(|s| {
                matches!(
                    s.name.as_str(),
                    "stop" | "restore_data" | "restore_database" | "restart" | "watch" | "verify"
                )
            }),
            _ => false,
        };
    if !cut_short {
        return None;
    }
    let dir = last.backup_dir.as_deref()?;
    runs.iter()
        .filter(|r| r.kind == RunKind::Upgrade)
        .find(|r| crate::resume::backup_of(r, backups).is_some_and(|(b, _)| b == dir))
}

/// The journal's half-done attempt at undoing `upgrade_run`, if any (a journal that cannot be
/// read is logged: the planner's decision then stands alone).
pub async fn find(journal: &Journal, project: &str, upgrade_run: &str) -> Option<RunRecord> {
    match journal.runs(project, 1000).await {
        Ok(runs) => earlier_attempt(&runs, upgrade_run).cloned(),
        Err(e) => {
            tracing::warn!("the journal's earlier rollbacks cannot be read: {e}");
            None
        }
    }
}

/// `plan`, made a restore when an earlier attempt stopped inside its restore.
pub fn restore_again(plan: Plan, earlier: Option<&RunRecord>) -> Plan {
    let Some(earlier) = earlier else {
        return plan;
    };
    if plan.decision == Decision::Restore {
        return plan;
    }
    let step = earlier
        .steps
        .last()
        .map(|s| s.name.replace('_', " "))
        .unwrap_or_default();
    Plan {
        case: plan.case,
        config_changes: plan.config_changes,
        decision: Decision::Restore,
        reason: format!(
            "an earlier {} (run {}) stopped during its {step}: the app's data or database may be half restored, so the backup is restored again from the start",
            earlier.kind, earlier.id
        ),
        losses: Vec::new(),
        unknown_loss: Some(
            "nothing that attempt kept aside (the newer data; `hoist status` lists where it is, and it stays there); anything the app wrote since that attempt is taken away (hoist cannot count it)".into(),
        ),
        schema_change: plan.schema_change,
        keep_first: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{StepRecord, StepState};

    fn run(id: &str, kind: RunKind, outcome: Outcome, steps: &[&str]) -> RunRecord {
        RunRecord {
            id: id.into(),
            kind,
            project: "app".into(),
            from_version: None,
            to_version: None,
            started_at: String::new(),
            finished_at: None,
            outcome,
            exit_code: None,
            message: None,
            pid: 0,
            summary: None,
            steps: steps
                .iter()
                .map(|s| StepRecord {
                    name: s.to_string(),
                    status: StepState::Running,
                    started_at: String::new(),
                    duration_ms: None,
                    message: None,
                })
                .collect(),
            backup_dir: None,
        }
    }

    #[test]
    fn a_cut_short_rollback_of_an_older_upgrade_is_the_one_finished() {
        let backup = |run_id: &str, path: &str| crate::journal::BackupRecord {
            id: path.into(),
            run_id: run_id.into(),
            path: path.into(),
            created_at: String::new(),
            size_bytes: 0,
            manifest_sha256: String::new(),
            app_version: None,
            schema_revision: None,
        };
        let backups = vec![backup("u1", "/b/one"), backup("u2", "/b/two")];
        let mut killed = run("r1", RunKind::Rollback, Outcome::Running, &["restore_data"]);
        killed.backup_dir = Some("/b/one".into());
        let runs = vec![
            killed,
            run("r2", RunKind::Rollback, Outcome::Succeeded, &["verify"]),
            run("u2", RunKind::Upgrade, Outcome::Succeeded, &["pin"]),
            run("u1", RunKind::Upgrade, Outcome::Succeeded, &["pin"]),
        ];
        assert_eq!(
            unfinished_upgrade(&runs, &backups).map(|r| r.id.as_str()),
            Some("u1")
        );
        // Finished, or refused before it changed anything: nothing to continue.
        assert!(unfinished_upgrade(&runs[1..], &backups).is_none());
        let mut refused = runs.clone();
        refused[0].outcome = Outcome::Failed;
        refused[0].steps = Vec::new();
        assert!(unfinished_upgrade(&refused, &backups).is_none());
        // An upgrade after the cut-short rollback overtakes it: that upgrade is undone next,
        // with its own backup (found by the trial: the older backup lost what came between).
        let mut overtaken = runs.clone();
        overtaken.insert(0, run("u3", RunKind::Upgrade, Outcome::Succeeded, &["pin"]));
        assert!(unfinished_upgrade(&overtaken, &backups).is_none());
    }

    fn repin() -> Plan {
        crate::rollback_plan::decide(None, None, &[])
    }

    #[test]
    fn a_rollback_killed_in_its_restore_makes_the_next_one_restore() {
        let runs = vec![
            run(
                "r1",
                RunKind::Rollback,
                Outcome::Running,
                &["check_backup", "restore_database", "restore_data"],
            ),
            run("u1", RunKind::Upgrade, Outcome::Succeeded, &["pin"]),
        ];
        let earlier = earlier_attempt(&runs, "u1");
        assert_eq!(earlier.map(|r| r.id.as_str()), Some("r1"));
        let plan = restore_again(repin(), earlier);
        assert_eq!(plan.decision, Decision::Restore);
        assert!(
            plan.reason.contains("stopped during its restore data"),
            "{}",
            plan.reason
        );
        assert!(plan.unknown_loss.is_some());
    }

    #[test]
    fn an_attempt_that_changed_nothing_or_a_later_success_leaves_the_plan_alone() {
        let before_restore = vec![
            run("r1", RunKind::Rollback, Outcome::Failed, &["check_backup"]),
            run("u1", RunKind::Upgrade, Outcome::Succeeded, &["pin"]),
        ];
        assert!(earlier_attempt(&before_restore, "u1").is_none());
        let settled = vec![
            run(
                "r2",
                RunKind::Rollback,
                Outcome::Succeeded,
                &["restore_database"],
            ),
            run(
                "r1",
                RunKind::Rollback,
                Outcome::Running,
                &["restore_database"],
            ),
            run("u1", RunKind::Upgrade, Outcome::Succeeded, &["pin"]),
        ];
        assert!(earlier_attempt(&settled, "u1").is_none());
        // Both restores done (killed at its restart): data and database are the backup's.
        let mut restored = run(
            "r1",
            RunKind::Rollback,
            Outcome::Running,
            &["restore_data", "restore_database", "restart"],
        );
        for s in &mut restored.steps[..2] {
            s.status = StepState::Done;
        }
        let finished = vec![
            restored,
            run("u1", RunKind::Upgrade, Outcome::Succeeded, &["pin"]),
        ];
        assert!(earlier_attempt(&finished, "u1").is_none());
        // One of an older upgrade does not count.
        let older = vec![
            run("u2", RunKind::Upgrade, Outcome::Succeeded, &["pin"]),
            run("r1", RunKind::Rollback, Outcome::Running, &["restore_data"]),
        ];
        assert!(earlier_attempt(&older, "u2").is_none());
        assert_eq!(restore_again(repin(), None).decision, Decision::Repin);
    }
}
