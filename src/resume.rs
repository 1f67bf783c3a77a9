//! What the journal says still needs the user: an upgrade that was interrupted (its process
//! died mid-run), stopped at a safe point, or left for a decision (it failed while nobody was
//! attached and a rollback would lose data), or a rollback that was interrupted. The next
//! `hoist` (status, the wizard, the headless commands) shows it with the ways on.
use serde::Serialize;

use crate::journal::{Outcome, RunKind, RunRecord, StepState};

/// The ways on from a run that needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Go on to the run's target (`hoist upgrade --to V`; resumed from the run's backup when
    /// its pin was already written).
    Continue,
    /// `hoist rollback`: back to the version before the run.
    Rollback,
    /// What happened, step by step (`hoist history`).
    Show,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attention {
    pub run_id: String,
    /// interrupted, stopped, needs_decision, failed, rollback_interrupted, restore_interrupted.
    pub state: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The version `.env` pinned when the run ended (the last hop done, or the target).
    pub pinned: Option<String>,
    /// Whether the run changed the stack (pinned a version) before it ended.
    pub changed: bool,
    /// The last step it began.
    pub last_step: Option<String>,
    /// What happened and what state things are in, in one sentence.
    pub sentence: String,
    pub choices: Vec<Choice>,
    /// What happened, a line per step: name, status, and its message.
    pub steps: Vec<String>,
}

/// Whether an upgrade run changed the stack: it wrote a pin (its summary says so, or its
/// journal shows the pin step begun).
pub fn changed_stack(run: &RunRecord) -> bool {
    if matches!(run.outcome, Outcome::Succeeded | Outcome::NeedsDecision) {
        return true;
    }
    if let Some(s) = &run.summary {
        return s["changed"] == serde_json::json!(true);
    }
    run.steps.iter().any(|s| s.name == "pin")
}

/// The version `.env` pins after `run`.
pub fn pinned_after(run: &RunRecord) -> Option<String> {
    run.summary
        .as_ref()
        .and_then(|s| s["pinned_now"].as_str().map(str::to_string))
        .or_else(|| {
            if changed_stack(run) {
                run.to_version.clone()
            } else {
                run.from_version.clone()
            }
        })
}

/// The newest upgrade or rollback run, if it still needs the user. `alive(pid)` says whether
/// the process that ran it still runs (a run marked running whose process is gone was
/// interrupted).
pub fn attention(runs: &[RunRecord], alive: impl Fn(i64) -> bool) -> Option<Attention> {
    let run = which_run(runs, &alive)?;
    let last_step = run.steps.last().map(|s| s.name.clone());
    let changed = changed_stack(run);
    let pinned = pinned_after(run);
    if run.outcome == Outcome::Running && alive(run.pid) {
        // Another hoist is at work on it right now (the lock says who).
        return None;
    }
    let (state, sentence, choices) = said(run, changed, pinned.as_deref())?;
    Some(Attention {
        run_id: run.id.clone(),
        state: state.to_string(),
        from: run.from_version.clone(),
        to: run.to_version.clone(),
        pinned,
        changed,
        last_step,
        sentence,
        choices,
        steps: step_lines(run),
    })
}

/// Whether a rollback or restore run got as far as stopping the app (or further).
fn touched_the_app(run: &RunRecord) -> bool {
    run.steps.iter().any(|s| {
        matches!(
            s.name.as_str(),
            "stop" | "restore_data" | "restore_database" | "restart" | "watch"
        )
    })
}

/// The run that may need attention: the newest upgrade or rollback that changed something, or
/// an older unsettled upgrade that did when the newest changed nothing.
fn which_run(runs: &[RunRecord], alive: impl Fn(i64) -> bool) -> Option<&RunRecord> {
    // Newest first; runs that changed nothing (refused, dry runs, a failed backup) do not
    // count, nor do plain backups.
    let mut candidates = runs
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            matches!(
            r.kind,
            RunKind::Upgrade | RunKind::Rollback | RunKind::Restore
        ) && !matches!(r.outcome, Outcome::Refused | Outcome::DryRun)
            && !(r.kind == RunKind::Upgrade
                && r.outcome == Outcome::Failed
                && !changed_stack(r)
                && r.finished_at.is_some())
            // A stop before any change leaves nothing to go on with once a newer upgrade of
            // the project ran, whatever that one did (declined, refused, failed on a copy).
            && !(r.kind == RunKind::Upgrade
                && r.outcome == Outcome::Stopped
                && !changed_stack(r)
                && runs[..*i].iter().any(|newer| newer.kind == RunKind::Upgrade))
        })
        .map(|(_, r)| r);
    let newest = candidates.next()?;
    // A run that ended before changing anything (killed or stopped before its pin) leaves
    // whatever an older run left: an older upgrade that changed the stack and was never
    // settled is still the one to continue or roll back.
    let run = if newest.kind == RunKind::Upgrade && !changed_stack(newest) {
        candidates
            .find(|r| matches!(r.kind, RunKind::Rollback | RunKind::Restore) || changed_stack(r))
            .filter(|r| {
                r.kind == RunKind::Upgrade
                    && matches!(
                        r.outcome,
                        Outcome::Running
                            | Outcome::Stopped
                            | Outcome::NeedsDecision
                            | Outcome::Failed
                    )
                    && !alive(r.pid)
            })
            .unwrap_or(newest)
    } else {
        newest
    };
    Some(run)
}

/// The state a run that needs attention is in, the sentence that says so, and the ways on; None
/// when it needs none.
fn said(
    run: &RunRecord,
    changed: bool,
    pinned: Option<&str>,
) -> Option<(&'static str, String, Vec<Choice>)> {
    let from = run.from_version.clone().unwrap_or_default();
    let to = run.to_version.clone().unwrap_or_default();
    // Failed because the Docker engine went away: the release is not to blame, so the run can
    // be continued like an interrupted one.
    let engine_gone = run
        .summary
        .as_ref()
        .is_some_and(|s| s["engine_gone"] == serde_json::json!(true));
    // The journal records a step as it begins: one still "running" is where it stopped.
    let step_words = match run.steps.last() {
        Some(s) if s.status == StepState::Running => format!("during {}", s.name),
        Some(s) => format!("after {}", s.name),
        None => "at its start".to_string(),
    };
    let said = match (&run.kind, &run.outcome) {
        (RunKind::Rollback, Outcome::Running) => (
            "rollback_interrupted",
            format!(
                "a rollback (run {}) was interrupted {step_words}: the app may be stopped or half restored. Run `hoist rollback` again; it starts over from the backup.",
                run.id
            ),
            vec![Choice::Rollback, Choice::Show],
        ),
        // Failed once it had stopped the app: the app may be down or half restored.
        (RunKind::Rollback | RunKind::Restore, Outcome::Failed) if touched_the_app(run) => (
            if run.kind == RunKind::Rollback {
                "rollback_failed"
            } else {
                "restore_failed"
            },
            format!(
                "a {} (run {}) failed {step_words}, after it stopped the app: the app may be stopped or half restored ({}). Fix the cause, then run `{}` again; it starts over from the backup, and `hoist status` lists where the newer data was kept.",
                run.kind,
                run.id,
                run.message
                    .as_deref()
                    .unwrap_or("see `hoist history`")
                    .trim_end_matches('.'),
                if run.kind == RunKind::Rollback {
                    "hoist rollback".to_string()
                } else {
                    format!(
                        "hoist restore {}",
                        run.backup_dir
                            .as_deref()
                            .map_or("DIR".into(), |d| d.display().to_string())
                    )
                }
            ),
            if run.kind == RunKind::Rollback {
                vec![Choice::Rollback, Choice::Show]
            } else {
                vec![Choice::Show]
            },
        ),
        (RunKind::Rollback, _) => return None,
        // No choice to offer: going on means the same restore again, which only its command says.
        (RunKind::Restore, Outcome::Running) => (
            "restore_interrupted",
            format!(
                "a restore of the backup {} (run {}) was interrupted {step_words}: the app may be stopped or half restored. Run `hoist restore {}` again; it starts over from the backup.",
                run.backup_dir
                    .as_deref()
                    .map_or("?".into(), |d| d.display().to_string()),
                run.id,
                run.backup_dir
                    .as_deref()
                    .map_or("DIR".into(), |d| d.display().to_string()),
            ),
            vec![Choice::Show],
        ),
        (RunKind::Restore, _) => return None,
        (_, Outcome::Running) if changed => (
            "interrupted",
            format!(
                "the upgrade {from} -> {to} (run {}) was interrupted {step_words}, after .env was changed: the app may be half upgraded. Continue it (the backup taken before is kept for a rollback), or roll back to {from}.",
                run.id
            ),
            vec![Choice::Continue, Choice::Rollback, Choice::Show],
        ),
        (_, Outcome::Running) => (
            "interrupted",
            format!(
                "the upgrade {from} -> {to} (run {}) was interrupted {step_words}, before any change: the app still runs {from}. Run it again when you are ready.",
                run.id
            ),
            vec![Choice::Continue, Choice::Show],
        ),
        (_, Outcome::Stopped) if changed => (
            "stopped",
            format!(
                "the upgrade {from} -> {to} (run {}) was stopped on the way, at {}, checked and healthy. Go on to {to}, or roll back to {from}.",
                run.id,
                pinned.unwrap_or("?")
            ),
            vec![Choice::Continue, Choice::Rollback, Choice::Show],
        ),
        (_, Outcome::Stopped) => (
            "stopped",
            format!(
                "the upgrade {from} -> {to} (run {}) was stopped before any change; the app still runs {from}.",
                run.id
            ),
            vec![Choice::Continue, Choice::Show],
        ),
        (_, Outcome::NeedsDecision) => (
            "needs_decision",
            format!(
                "the upgrade {from} -> {to} (run {}) failed while nobody was attached, and going back would lose data written since the backup, so hoist stopped the app's services and waited for you: {}",
                run.id,
                run.message.as_deref().unwrap_or("see `hoist history`")
            ),
            vec![Choice::Rollback, Choice::Show],
        ),
        (_, Outcome::Failed) if changed && engine_gone => (
            "interrupted",
            format!(
                "the upgrade {from} -> {to} (run {}) was cut off {step_words}, after .env was changed, when the Docker engine went away and did not come back in time: the app may be half upgraded. Continue it (the backup taken before is kept for a rollback), or roll back to {from}.",
                run.id
            ),
            vec![Choice::Continue, Choice::Rollback, Choice::Show],
        ),
        (_, Outcome::Failed) if changed => (
            "failed",
            format!(
                "the upgrade {from} -> {to} (run {}) failed after .env was changed and was not rolled back: {}",
                run.id,
                run.message.as_deref().unwrap_or("see `hoist history`")
            ),
            vec![Choice::Rollback, Choice::Show],
        ),
        _ => return None,
    };
    Some(said)
}

/// What happened, a line per step: name, status, and its message.
fn step_lines(run: &RunRecord) -> Vec<String> {
    run.steps
        .iter()
        .map(|s| {
            let mut line = format!("{} {}", s.name, s.status);
            if let Some(ms) = s.duration_ms {
                line.push_str(&format!(" ({:.1} s)", ms as f64 / 1000.0));
            }
            if let Some(m) = &s.message {
                line.push_str(&format!(": {m}"));
            }
            line
        })
        .collect()
}

/// The backup a run can go back to: its own (with the manifest's sha256 the journal keeps), or,
/// for a run that continued an interrupted one, the backup that run took: the directory the
/// run recorded (with the sha256 of the journal's backup there), else through its summary, else
/// (journals written before runs recorded it) through its backup step's message.
pub fn backup_of(
    run: &RunRecord,
    backups: &[crate::journal::BackupRecord],
) -> Option<(std::path::PathBuf, Option<String>)> {
    if let Some(b) = backups.iter().find(|b| b.run_id == run.id) {
        return Some((b.path.clone().into(), Some(b.manifest_sha256.clone())));
    }
    if let Some(dir) = &run.backup_dir {
        let sha = backups
            .iter()
            .find(|b| std::path::Path::new(&b.path) == dir.as_path())
            .map(|b| b.manifest_sha256.clone());
        return Some((dir.clone(), sha));
    }
    let resumed_from = run
        .summary
        .as_ref()
        .and_then(|s| s["resumed_from"].as_str().map(str::to_string));
    if let Some(b) = backups
        .iter()
        .find(|b| resumed_from.as_deref() == Some(b.run_id.as_str()))
    {
        return Some((b.path.clone().into(), Some(b.manifest_sha256.clone())));
    }
    run.steps
        .iter()
        .find(|s| s.name == "backup" && s.status == StepState::Done)
        .and_then(|s| s.message.as_deref())
        .filter(|m| m.starts_with('/'))
        .map(|m| (m.into(), None))
}

pub use crate::journal::pid_alive;

/// The attention the journal in `state_dir` asks for `project`, if any (a journal that cannot
/// be read asks for none: the commands that need it say so themselves).
pub async fn check(state_dir: &std::path::Path, project: &str) -> Option<Attention> {
    if !state_dir.join("journal.sqlite3").exists() {
        return None;
    }
    let journal = crate::journal::Journal::open(state_dir).await.ok()?;
    let runs = journal.runs(project, 20).await.ok();
    journal.close().await;
    let own = i64::from(std::process::id());
    attention(&runs?, |pid| pid != own && pid_alive(pid))
}

/// Services that a hoist stopped for a backup's copy and did not start again (killed, or it
/// failed to), each said with what to do; none while that hoist still copies.
pub fn left_stopped(facts: &crate::probe::facts::Facts) -> Vec<String> {
    facts
        .held
        .iter()
        .filter(|h| !h.copying)
        .map(|h| {
            format!(
                "{} may be stopped: a hoist (run {}) stopped it to copy its data and {} it again. The next upgrade, rollback or backup starts it, or run `docker compose start {}`.",
                h.service,
                h.run_id,
                if h.run_ended {
                    "could not start"
                } else {
                    "was killed before it started"
                },
                h.service
            )
        })
        .collect()
}

/// The attention the stack of `ctx` needs, if any (none when the stack cannot be read: the
/// command says why itself).
pub async fn for_context(ctx: &crate::context::Context) -> Option<Attention> {
    // No journal, nothing to attend to: the stack (a `docker compose config`) is not read.
    if !ctx.state_dir.join("journal.sqlite3").exists() {
        return None;
    }
    let (_, view) = crate::probe::facts::load_stack(ctx).ok()?;
    check(&ctx.state_dir, &view.project).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::StepRecord;

    fn run(
        kind: &str,
        outcome: &str,
        steps: &[&str],
        summary: Option<serde_json::Value>,
    ) -> RunRecord {
        RunRecord {
            id: format!("{kind}-{outcome}"),
            kind: RunKind::parse(kind),
            project: "p".into(),
            from_version: Some("0.1.9".into()),
            to_version: Some("0.1.11".into()),
            started_at: "2026-11-28T10:00:00Z".into(),
            finished_at: (outcome != "running").then(|| "2026-11-28T10:01:00Z".into()),
            outcome: Outcome::parse(outcome),
            exit_code: None,
            message: Some("api is crash-looping".into()),
            pid: 4242,
            summary,
            backup_dir: None,
            steps: steps
                .iter()
                .map(|n| StepRecord {
                    name: n.to_string(),
                    status: StepState::Done,
                    started_at: String::new(),
                    duration_ms: None,
                    message: None,
                })
                .collect(),
        }
    }

    #[test]
    fn an_interrupted_run_after_its_pin_offers_continue_and_rollback() {
        let runs = [run(
            "upgrade",
            "running",
            &["preflight", "backup", "pin", "restart"],
            None,
        )];
        let a = attention(&runs, |_| false).unwrap();
        assert_eq!(a.state, "interrupted");
        assert!(a.changed);
        assert_eq!(a.last_step.as_deref(), Some("restart"));
        assert_eq!(
            a.choices,
            [Choice::Continue, Choice::Rollback, Choice::Show]
        );
        // Still running: another hoist is on it.
        assert!(attention(&runs, |_| true).is_none());
        // Before the pin: nothing to roll back.
        let runs = [run("upgrade", "running", &["preflight", "backup"], None)];
        let a = attention(&runs, |_| false).unwrap();
        assert!(!a.changed);
        assert_eq!(a.choices, [Choice::Continue, Choice::Show]);
    }

    #[test]
    fn an_interrupted_restore_says_its_command_and_a_finished_one_settles_the_upgrade() {
        let mut restore = run("restore", "running", &["check_backup", "stop"], None);
        restore.backup_dir = Some("/b/p-1".into());
        let upgrade = run("upgrade", "succeeded", &["pin"], None);
        let a = attention(&[restore.clone(), upgrade.clone()], |_| false).unwrap();
        assert_eq!(a.state, "restore_interrupted");
        assert!(
            a.sentence.contains("Run `hoist restore /b/p-1` again"),
            "{}",
            a.sentence
        );
        assert_eq!(a.choices, [Choice::Show]);
        let mut done = restore;
        done.outcome = Outcome::Succeeded;
        let failed_upgrade = run("upgrade", "failed", &["pin"], None);
        assert!(attention(&[done, failed_upgrade], |_| false).is_none());
    }

    #[test]
    fn finished_runs_need_nothing_but_a_decision_left_or_a_stop_on_the_way() {
        assert!(attention(&[run("upgrade", "succeeded", &[], None)], |_| false).is_none());
        assert!(attention(&[run("upgrade", "rolled_back", &[], None)], |_| false).is_none());
        let nothing = serde_json::json!({"changed": false});
        assert!(
            attention(
                &[run("upgrade", "failed", &["backup"], Some(nothing))],
                |_| false
            )
            .is_none()
        );
        let a = attention(&[run("upgrade", "needs_decision", &[], None)], |_| false).unwrap();
        assert_eq!(a.choices, [Choice::Rollback, Choice::Show]);
        // Failed after the pin: the way back; failed because the engine went away: the way
        // on too.
        let failed = serde_json::json!({"changed": true, "pinned_now": "0.1.11"});
        let a = attention(&[run("upgrade", "failed", &["pin"], Some(failed))], |_| {
            false
        })
        .unwrap();
        assert_eq!(
            (a.state.as_str(), a.choices.as_slice()),
            ("failed", [Choice::Rollback, Choice::Show].as_slice())
        );
        let gone =
            serde_json::json!({"changed": true, "pinned_now": "0.1.11", "engine_gone": true});
        let a = attention(&[run("upgrade", "failed", &["pin"], Some(gone))], |_| false).unwrap();
        assert_eq!(a.state, "interrupted");
        assert_eq!(
            a.choices,
            [Choice::Continue, Choice::Rollback, Choice::Show]
        );
        assert!(
            a.sentence.contains("Docker engine went away"),
            "{}",
            a.sentence
        );
        let between = serde_json::json!({"changed": true, "pinned_now": "0.1.10"});
        let a = attention(&[run("upgrade", "stopped", &[], Some(between))], |_| false).unwrap();
        assert_eq!(a.pinned.as_deref(), Some("0.1.10"));
        assert!(a.sentence.contains("at 0.1.10"), "{}", a.sentence);
        // A stop before any change (a rehearsal's, a backup's) is moot once a newer upgrade
        // ran, declined or failed on a copy alike; alone, it is still said.
        let unchanged = || {
            run(
                "upgrade",
                "stopped",
                &["preflight", "backup", "rehearse"],
                Some(serde_json::json!({"changed": false})),
            )
        };
        assert!(attention(&[unchanged()], |_| false).is_some());
        for newer in ["refused", "failed"] {
            let later = run(
                "upgrade",
                newer,
                &["rehearse"],
                Some(serde_json::json!({"changed": false})),
            );
            assert!(
                attention(&[later, unchanged()], |_| false).is_none(),
                "{newer}"
            );
        }
        // A refused run or a backup after it does not hide it.
        let runs = [
            run("backup", "succeeded", &[], None),
            run("upgrade", "refused", &[], None),
            run("upgrade", "needs_decision", &[], None),
        ];
        assert_eq!(attention(&runs, |_| false).unwrap().state, "needs_decision");
        // A rollback after it settled it.
        let runs = [
            run("rollback", "succeeded", &[], None),
            run("upgrade", "needs_decision", &[], None),
        ];
        assert!(attention(&runs, |_| false).is_none());
        // A run killed before its pin, over an older one killed after its own: the older one
        // is what to continue.
        let mut older = run("upgrade", "running", &["backup", "pin", "restart"], None);
        older.id = "older".into();
        let runs = [run("upgrade", "running", &["preflight"], None), older];
        let a = attention(&runs, |_| false).unwrap();
        assert_eq!((a.run_id.as_str(), a.changed), ("older", true));
        let runs = [run("rollback", "running", &["stop"], None)];
        assert_eq!(
            attention(&runs, |_| false).unwrap().state,
            "rollback_interrupted"
        );
        // A rollback that failed after stopping the app needs attention; one refused at its
        // backup check changed nothing and does not.
        let runs = [run(
            "rollback",
            "failed",
            &["check_backup", "stop", "restore_data"],
            None,
        )];
        let a = attention(&runs, |_| false).unwrap();
        assert_eq!(a.state, "rollback_failed");
        assert!(
            a.sentence.contains("after it stopped the app"),
            "{}",
            a.sentence
        );
        let runs = [run("rollback", "failed", &["check_backup"], None)];
        assert!(attention(&runs, |_| false).is_none());
    }

    fn backup(run_id: &str, path: &str) -> crate::journal::BackupRecord {
        crate::journal::BackupRecord {
            id: path.rsplit('/').next().unwrap_or_default().into(),
            run_id: run_id.into(),
            path: path.into(),
            created_at: String::new(),
            size_bytes: 1,
            manifest_sha256: format!("sha-of-{path}"),
            app_version: None,
            schema_revision: None,
        }
    }

    #[test]
    fn a_runs_backup_is_its_own_then_the_one_it_recorded_then_its_step_message() {
        let backups = [backup("older", "/b/older"), backup("own", "/b/own")];
        // Its own backup, with the journal's sha256.
        let mut r = run("upgrade", "succeeded", &["backup"], None);
        r.id = "own".into();
        assert_eq!(
            backup_of(&r, &backups),
            Some(("/b/own".into(), Some("sha-of-/b/own".into())))
        );
        // A continued run: the directory it recorded, with the sha256 of the backup there.
        let mut r = run("upgrade", "running", &["backup", "pin"], None);
        r.backup_dir = Some("/b/older".into());
        assert_eq!(
            backup_of(&r, &backups),
            Some(("/b/older".into(), Some("sha-of-/b/older".into())))
        );
        // A journal from before runs recorded it: the backup step's message names it.
        let mut r = run("upgrade", "running", &[], None);
        r.steps.push(StepRecord {
            name: "backup".into(),
            status: StepState::Done,
            started_at: String::new(),
            duration_ms: None,
            message: Some("/b/legacy".into()),
        });
        assert_eq!(backup_of(&r, &backups), Some(("/b/legacy".into(), None)));
        // Nothing known: no backup.
        let r = run("upgrade", "running", &["backup"], None);
        assert_eq!(backup_of(&r, &backups), None);
    }
}
