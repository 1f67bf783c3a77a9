//! The guided rollback: check the backup, decide from facts whether a restore is needed (and say
//! why, and what it would lose), restore the data and the database when it is, re-pin the
//! previous version, make sure its image is here, recreate, watch, and verify against the
//! backup's manifest. Driven through the Docker API and Compose, reported through the upgrade
//! engine's `Event`s and journal.
pub use crate::rollback_plan as plan;
mod aside_report;
mod config_change;
mod half_done;
mod keep;
mod moved;
pub mod repin;
mod restore_dir;
mod restore_run;
mod verify;

use crate::context::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::journal::{Journal, Outcome, RunKind};
use crate::probe::facts;
use crate::run::{Event, Question, Run, Step};

/// A rollback's summary is still JSON (an upgrade's is typed).
type Finished = crate::run::Finished<serde_json::Value>;
use plan::{BackupDb, Decision};
pub use restore_dir::{Refusal, restore_target, run_restore};

/// What to roll back: the backup taken before the upgrade and the versions on either side.
#[derive(Debug, Clone)]
pub struct Target {
    pub backup_dir: PathBuf,
    /// The manifest's sha256 as the journal recorded it, when known: a changed manifest is refused.
    pub manifest_sha256: Option<String>,
    /// The version to go back to.
    pub previous: String,
    /// The version being left.
    pub current: String,
    /// The upgrade run being undone.
    pub upgrade_run: Option<String>,
    /// `hoist restore DIR`: the backup is restored whatever the planner says (never a bare
    /// re-pin), and the run is journaled and said as a restore.
    pub restore: bool,
}

/// What the user agreed to before the rollback started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Nothing yet: a step that risks or takes something away asks first.
    Ask,
    /// Yes, with the plan and its loss in view: nothing is asked again.
    Given,
    /// Nobody is attached: only what loses nothing is done (a re-pin, or the previous version
    /// tried on the database and data as they are); a restore is left for a person.
    LosslessOnly,
}

impl Target {
    /// What the run is called in its sentences and its summary's `command`.
    pub fn noun(&self) -> &'static str {
        if self.restore { "restore" } else { "rollback" }
    }

    /// The command that starts it over.
    pub(crate) fn again(&self) -> String {
        if self.restore {
            format!("hoist restore {}", self.backup_dir.display())
        } else {
            "hoist rollback".into()
        }
    }
}

/// Finds the last succeeded upgrade of `project` (or the run `id`) and its backup: where the
/// journal says, or moved into `backup_root` (found by its name or manifest). When there is
/// nothing to roll back, the sentence names the backups on disk that `hoist restore` takes.
pub async fn find_target(
    journal: &Journal,
    project: &str,
    id: Option<&str>,
    backup_root: &Path,
) -> Result<Target, String> {
    // The journal may have lost what the disk still holds (another or a lost state dir).
    let or_on_disk = |e: String| match moved::on_disk(project, backup_root) {
        Some(there) => format!("{e}; {there}"),
        None => e,
    };
    let runs = journal
        .runs(project, 1000)
        .await
        .map_err(|e| e.to_string())?;
    let backups = journal.backups(project).await.map_err(|e| e.to_string())?;
    let unfinished = half_done::unfinished_upgrade(&runs, &backups);
    let run = match (id, unfinished) {
        (Some(id), _) => runs.iter().find(|r| r.id == id).ok_or_else(|| {
            format!("the journal has no run {id} for {project}; `hoist history` lists them")
        })?,
        // A rollback cut short (perhaps of an older upgrade, given with --run) is finished first.
        (None, Some(upgrade)) => upgrade,
        (None, None) => {
            // Newest first: a succeeded rollback after the last upgrade already undid it; a
            // failed or interrupted one did not. Upgrades that changed nothing (refused,
            // stopped or failed before their pin) are passed over.
            let last = runs
                .iter()
                .filter(|r| !matches!(r.outcome, Outcome::Refused | Outcome::DryRun))
                .find(|r| {
                    (matches!(r.kind, RunKind::Rollback | RunKind::Restore)
                        && r.outcome == Outcome::Succeeded)
                        || (r.kind == RunKind::Upgrade && crate::resume::changed_stack(r))
                })
                .ok_or_else(|| {
                    or_on_disk(format!("the journal has no upgrade of {project} that changed the stack, so there is nothing to roll back; `hoist history` lists the runs"))
                })?;
            if last.kind == RunKind::Restore {
                return Err(format!(
                    "a backup of {project} was restored (run {}) after its last upgrade, so there is no upgrade to roll back; `hoist restore DIR` puts another backup back, `--run ID` picks an upgrade (`hoist history` lists both)",
                    last.id
                ));
            }
            if last.kind == RunKind::Rollback {
                return Err(format!(
                    "the last upgrade of {project} was already rolled back (run {}); `hoist history` lists the runs, `--run ID` picks one",
                    last.id
                ));
            }
            last
        }
    };
    if run.kind != RunKind::Upgrade {
        return Err(format!(
            "run {} is a {}, not an upgrade: there is nothing to roll back",
            run.id, run.kind
        ));
    }
    let (Some(previous), Some(current)) =
        (run.from_version.clone(), crate::resume::pinned_after(run))
    else {
        return Err(format!(
            "run {} does not record the versions it went between",
            run.id
        ));
    };
    // A run that continued an interrupted one kept that run's backup.
    let (recorded, manifest_sha256) = crate::resume::backup_of(run, &backups)
        .ok_or_else(|| or_on_disk(format!("run {} has no backup in the journal", run.id)))?;
    // Moved since (into the backup dir given now): its manifest says it is the same backup.
    let backup_dir = match moved::relocate(&recorded, manifest_sha256.as_deref(), backup_root) {
        Some(dir) => {
            if dir != recorded {
                tracing::info!(recorded = %recorded.display(), found = %dir.display(), "the backup was moved; found by its manifest");
                if let Err(e) = journal.move_backup(&recorded, &dir).await {
                    tracing::warn!("the backup's new place could not be recorded: {e}");
                }
            }
            dir
        }
        None if !recorded.exists() => {
            return Err(format!(
                "the backup {} is missing, and {} holds no backup with its manifest: if you moved it, give the directory that now holds it with `--backup-dir DIR` (hoist finds it there by its name or manifest)",
                recorded.display(),
                backup_root.display()
            ));
        }
        None => recorded,
    };
    Ok(Target {
        previous: repin::exact_previous(&previous, &backup_dir),
        backup_dir,
        manifest_sha256,
        current,
        upgrade_run: Some(run.id.clone()),
        restore: false,
    })
}

fn refused(code: u8, sentence: String) -> Finished {
    Finished {
        exit_code: code,
        summary: json!({"type": "summary", "command": "rollback", "outcome": "refused", "exit_code": code, "error": sentence, "steps": []}),
        sentence,
    }
}

/// The backup's manifest, checked: every file there with its size and sha256, and the
/// manifest itself as the journal recorded it.
fn checked_manifest(target: &Target) -> Result<Value, String> {
    let dir = &target.backup_dir;
    let manual = format!(
        "RESTORE.md in {} describes the manual steps, if the files you need are intact",
        dir.display()
    );
    if !dir.is_dir() {
        return Err(format!(
            "the backup {} is missing (if you moved it, give the directory that now holds it with `--backup-dir DIR`: hoist finds it there by its manifest)",
            dir.display()
        ));
    }
    if let Some(expected) = &target.manifest_sha256 {
        let path = dir.join("manifest.json");
        match crate::backup::gzip::sha256_file(&path) {
            Ok((sha, _)) if &sha == expected => {}
            Ok(_) => {
                return Err(format!(
                    "{} is not the manifest hoist wrote (its sha256 differs from the journal's); {manual}",
                    path.display()
                ));
            }
            Err(e) => return Err(format!("{}: {e}; {manual}", path.display())),
        }
    }
    crate::backup::check(dir).map_err(|e| format!("{e}; {manual}"))
}

fn backup_db(manifest: &Value) -> Option<BackupDb> {
    let db = manifest.get("database").filter(|d| !d.is_null())?;
    Some(BackupDb {
        revision: db["revision"].as_str().map(str::to_string),
        fingerprint: db["fingerprint"].as_str().unwrap_or_default().to_string(),
        tables: db["tables"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| Some((t["name"].as_str()?.to_string(), t["rows"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default(),
        columns: db
            .get("columns")
            .and_then(|c| serde_json::from_value(c.clone()).ok()),
        writes: match db.get("writes").filter(|w| !w.is_null()) {
            Some(w) => serde_json::from_value(w.clone()).map_err(|e| {
                format!("the backup's record of the database's writes cannot be read ({e})")
            }),
            None => Err(db["writes_unread"].as_str().map_or_else(
                || {
                    "the backup does not record the database's writes (an older hoist took it)"
                        .to_string()
                },
                |why| format!("the database's writes could not be read at the backup ({why})"),
            )),
        },
    })
}

/// The write marks the upgrade being undone left in the journal, oldest first.
async fn upgrade_marks(journal: &Journal, target: &Target) -> Vec<plan::Mark> {
    let Some(run) = &target.upgrade_run else {
        return Vec::new();
    };
    let marks = match journal.write_marks(run).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("the upgrade's write marks cannot be read: {e}");
            return Vec::new();
        }
    };
    marks
        .into_iter()
        .filter_map(|m| {
            Some(plan::Mark {
                moment: plan::Moment::parse(&m.moment)?,
                writes: match m.writes {
                    Some(json) => serde_json::from_str(&json).map_err(|e| {
                        format!(
                            "the journal's record of the database's writes cannot be read ({e})"
                        )
                    }),
                    None => Err(match m.moment.as_str() {
                        "before_restart" => format!(
                            "the database's writes could not be read just before {} was started",
                            m.hop
                        ),
                        _ => format!(
                            "the database's writes could not be read once {} had started",
                            m.hop
                        ),
                    }),
                },
                hop: m.hop,
            })
        })
        .collect()
}

/// An archive of the backup: its file, the host directory it came from, the mount target.
struct DataArchive {
    file: PathBuf,
    source: String,
    target: String,
}

fn data_archives(manifest: &Value, dir: &Path) -> Vec<DataArchive> {
    manifest["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter(|f| f["kind"] == "archive")
                .filter_map(|f| {
                    Some(DataArchive {
                        file: dir.join(f["name"].as_str()?),
                        source: f["source"].as_str()?.to_string(),
                        target: f["target"].as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a rollback of `target` would do and why, before anything is asked or changed: the
/// backup checked, the database read, the planner's decision.
pub async fn preview(ctx: &Context, target: &Target) -> Result<plan::Plan, String> {
    let manifest = checked_manifest(target)?;
    let (_, view) = facts::load_stack(ctx).map_err(|e| e.to_string())?;
    let facts = facts::gather(ctx, view).await;
    let (marks, earlier) = match Journal::open(&ctx.state_dir).await {
        Ok(journal) => {
            let marks = upgrade_marks(&journal, target).await;
            let earlier = earlier_attempt(&journal, &facts.view.project, target).await;
            journal.close().await;
            (marks, earlier)
        }
        Err(_) => (Vec::new(), None),
    };
    Ok(plan_for(target, &manifest, &facts, &marks, earlier.as_ref()).await)
}

/// An earlier attempt at undoing the target's upgrade that stopped inside its restore.
async fn earlier_attempt(
    journal: &Journal,
    project: &str,
    target: &Target,
) -> Option<crate::journal::RunRecord> {
    half_done::find(journal, project, target.upgrade_run.as_deref()?).await
}

/// The planner's decision, or for `hoist restore` that decision forced to a restore.
/// The plan as front ends are shown it (again, when it changed).
fn plan_event(plan: &plan::Plan) -> Event {
    Event::Rollback {
        decision: plan.decision,
        reason: plan.reason_words(),
        losses: plan.losses.clone(),
        unknown_loss: plan.unknown_loss.clone(),
        keep_first: plan.keep_first,
    }
}

async fn plan_for(
    target: &Target,
    manifest: &Value,
    facts: &facts::Facts,
    marks: &[plan::Mark],
    earlier: Option<&crate::journal::RunRecord>,
) -> plan::Plan {
    let plan = half_done::restore_again(decide(manifest, facts, marks), earlier);
    let mut changes = config_change::changes(
        &target.backup_dir,
        &facts.view,
        &[&target.previous, &target.current],
    );
    changes.extend(config_change::environment(&target.backup_dir, facts).await);
    let mut plan = plan::with_config_changes(plan, changes);
    // Trying the previous version on the newer schema first restarts through Compose; on a
    // Swarm stack the restore goes straight on (Swarm's own rollback may have tried it).
    if crate::probe::swarm::stack_name(facts.swarm.as_ref()).is_some() {
        plan.keep_first = false;
    }
    if target.restore {
        restore_dir::forced(plan, manifest, facts, target, marks)
    } else {
        plan
    }
}

/// The planner's decision from the backup's manifest and the stack now: the database's schema,
/// or (a backup without a dump) the schemas of the SQLite files in the app's data.
fn decide(manifest: &Value, facts: &facts::Facts, marks: &[plan::Mark]) -> plan::Plan {
    let now = facts
        .db
        .as_ref()
        .map(|r| r.as_ref().map_err(|e| e.as_str()));
    let plan = plan::decide(backup_db(manifest).as_ref(), now, marks);
    let then: Vec<(String, Option<String>)> = manifest["sqlite_files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(|f| {
                    Some((
                        f["path"].as_str()?.to_string(),
                        f["fingerprint"].as_str().map(str::to_string),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let now: Vec<(String, Option<String>)> = facts
        .sqlite
        .iter()
        .map(|f| (f.path.clone(), f.fingerprint.clone()))
        .collect();
    let has_database = !manifest["database"].is_null();
    let plan = plan::with_sqlite_files(plan, has_database, &then, &now);
    let has_data = manifest["files"]
        .as_array()
        .is_some_and(|files| files.iter().any(|f| f["kind"] == "archive"));
    plan::with_data_archives(plan, has_database, has_data)
}

/// `hoist rollback [--run ID]`: the last succeeded upgrade (or run `id`) of this stack, rolled
/// back by the planner.
pub async fn run_last(
    ctx: &Context,
    id: Option<&str>,
    events: &UnboundedSender<Event>,
) -> crate::run::Finished {
    let (_, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return refused(2, err.to_string()).erased(),
    };
    let journal = match Journal::open(&ctx.state_dir).await {
        Ok(j) => j,
        Err(e) => return refused(1, e.to_string()).erased(),
    };
    let finished = match find_target(&journal, &view.project, id, &view.backup_dir).await {
        Ok(target) => run(ctx, &target, events, Some(&journal), Consent::Ask).await,
        Err(e) => refused(
            if id.is_some() { 2 } else { 3 },
            format!("{e}. Nothing was changed."),
        ),
    };
    journal.close().await;
    finished.erased()
}

/// Rolls back as `target` says. `journal` records the run; when the caller has none, one is
/// opened in the state dir.
pub async fn run(
    ctx: &Context,
    target: &Target,
    events: &UnboundedSender<Event>,
    journal: Option<&Journal>,
    consent: Consent,
) -> Finished {
    let opened;
    let journal = match journal {
        Some(j) => j,
        None => match Journal::open(&ctx.state_dir).await {
            Ok(j) => {
                opened = j;
                &opened
            }
            Err(e) => return refused(1, e.to_string()),
        },
    };
    let (stack, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return refused(2, err.to_string()),
    };
    let mut run = Run::new(events);
    let run_id = match journal
        .start_run(
            if target.restore {
                RunKind::Restore
            } else {
                RunKind::Rollback
            },
            &view.project,
            &view.project_dir,
            Some(&target.current),
            Some(&target.previous),
        )
        .await
    {
        Ok(id) => id,
        Err(e) => return refused(1, e.to_string()),
    };
    run.attach_journal(journal, &run_id);
    // Named in the journal so that an interrupted restore says what to run again, and an
    // interrupted rollback is continued on the same upgrade (`half_done::unfinished_upgrade`).
    let result = journal.set_backup_dir(&run_id, &target.backup_dir).await;
    run.journaled(result, "record the backup it goes back to");
    let started = Instant::now();
    let mut finished = roll_back(&mut run, ctx, &stack, view, target, consent).await;
    finished.summary["run_id"] = json!(run_id);
    finished.summary["steps"] = json!(run.steps());
    finished.summary["duration_ms"] = json!(started.elapsed().as_millis() as u64);
    if let Some(upgrade) = &target.upgrade_run {
        finished.summary["upgrade_run"] = json!(upgrade);
    }
    finished.summary["command"] = json!(target.noun());
    if let Some(why) = run.journal_lost() {
        crate::run::say_incomplete_record(&mut finished, &why);
    }
    if let Err(why) = crate::run::record_finish(journal, &run_id, &finished).await {
        crate::run::say_incomplete_record(&mut finished, &why);
    }
    finished
}

/// Where the newer data went, told apart from what interrupted attempts had put back and from
/// what rollbacks of earlier upgrades left (`aside_report`); also in the summary
/// (`newer_data`, `attempt_copies`, `kept_aside_earlier`).
async fn aside_words(
    ctx: &Context,
    view: &facts::StackView,
    target: &Target,
    summary: &mut Value,
) -> String {
    let facts = facts::gather(ctx, view.clone()).await;
    let all = crate::probe::kept_aside::find(&facts).await;
    let since = target.upgrade_run.as_deref().and_then(|id| id.get(..16));
    let sorted = aside_report::sort(all, since);
    summary["newer_data"] = json!(sorted.newer_data);
    summary["attempt_copies"] = json!(sorted.attempt_copies);
    summary["kept_aside_earlier"] = json!(sorted.older);
    aside_report::words(&sorted)
}

/// "State: WHAT. The backup is in DIR (RESTORE.md there says how to restore by hand)."
pub(super) fn state_words(target: &Target, what: &str) -> String {
    format!(
        "State: {what}. The backup is in {} (RESTORE.md there says how to restore by hand).",
        target.backup_dir.display()
    )
}

/// The stack as the rollback verifies it: with the detected smoke checks the backup recorded
/// (a port that gave no HTTP answer then is not held against the rollback), when it recorded
/// them, and the configured ones as the settings say now.
/// Refused, with nothing changed, when the previous version cannot be pinned again: a restore
/// followed by a pin that cannot be written would leave the app down on restored data.
fn checked_stack(
    stack: &crate::stack::Stack,
    manifest: &Value,
    previous: &str,
) -> Result<crate::stack::Stack, Finished> {
    if let Err(e) =
        crate::stack::pin::plan_at(&stack.detection.version.site, &stack.env_path, previous)
    {
        return Err(refused(
            3,
            format!("the rollback cannot pin {previous} again: {e}. Nothing was changed."),
        ));
    }
    // A backup records its checks even when there are none (every port dropped before the
    // upgrade); only a backup written before hoist recorded them lacks the key.
    let recorded: Option<Vec<crate::stack::detect::Smoke>> = manifest
        .get("smoke")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let mut checked = stack.clone();
    if let Some(recorded) = recorded {
        // Detected checks as the app answered them at the backup; configured ones as the
        // settings say now: a user who fixed a wrong expectation is heard (else every
        // rollback fails on it again), and a header's value, recorded masked, is there.
        let mut checks: Vec<_> = recorded.into_iter().filter(|s| !s.configured).collect();
        checks.extend(
            stack
                .detection
                .smoke
                .iter()
                .filter(|s| s.configured)
                .cloned(),
        );
        checked.detection.smoke = checks;
    }
    Ok(checked)
}

async fn roll_back(
    run: &mut Run<'_>,
    ctx: &Context,
    stack: &crate::stack::Stack,
    view: facts::StackView,
    target: &Target,
    consent: Consent,
) -> Finished {
    let (previous, current) = (target.previous.as_str(), target.current.as_str());
    let base = json!({"type": "summary", "command": "rollback", "from": current, "to": previous,
                      "backup": target.backup_dir, "outcome": "failed", "exit_code": 1});

    let manifest = match check_backup(run, &view.project, target).await {
        Ok(m) => m,
        Err(refusal) => return refusal,
    };
    let stack = &match checked_stack(stack, &manifest, previous) {
        Ok(s) => s,
        Err(refusal) => return refusal,
    };

    for said in crate::steps::left_behind::start_again(ctx, &view.project).await {
        run.progress(Step::CheckBackup, said);
    }
    let facts = facts::gather(ctx, view).await;
    // A Swarm stack is no Compose project: stopping, restoring and `up -d` would miss its
    // tasks and could start a second copy of the app beside it.
    // (Not the finding's level: a stack with a task waiting for a node fails the upgrade's
    // check, and is just what a rollback may have to mend.)
    if let Some(f) = crate::preflight::swarm_finding(&facts)
        && !crate::preflight::containers_tell_all(&facts)
    {
        return refused(
            3,
            format!(
                "{}. hoist restores a Swarm stack only when all of its tasks run on this node. Nothing was {}, nothing was stopped.",
                f.message,
                if target.restore {
                    "restored"
                } else {
                    "rolled back"
                }
            ),
        );
    }
    // Swarm does not start a database the restore needs: one that runs no task here is said
    // before anything is stopped.
    if let (Some(stack), Some(db), Ok(running)) = (
        crate::probe::swarm::stack_name(facts.swarm.as_ref()),
        &facts.view.database,
        &facts.docker,
    ) && db.kind != crate::db::DbKind::Sqlite
        && !running
            .of_service(&db.service)
            .iter()
            .any(|c| c.is_running())
    {
        return refused(
            3,
            format!(
                "the database service {stack}_{} runs no task on this node, so the backup's dump could not be loaded. Nothing was {}, nothing was stopped. Start it (`docker service scale {stack}_{}=1`; `docker service ps --no-trunc {stack}_{}` says why it does not run), then run hoist again",
                db.service,
                if target.restore {
                    "restored"
                } else {
                    "rolled back"
                },
                db.service,
                db.service
            ),
        );
    }
    let Ok(docker) = &facts.docker else {
        return refused(
            3,
            format!(
                "Docker is not reachable, so nothing can be {}. Nothing was changed.",
                if target.restore {
                    "restored"
                } else {
                    "rolled back"
                }
            ),
        );
    };
    let engine = docker.engine.clone();
    // A restart of the Docker daemon from here on (the pull, the restart, the watch) is waited out.
    let engine_loss =
        crate::steps::engine_loss::EngineLoss::start(&engine, stack.settings.timeout_engine);
    let (marks, earlier) = match run.journal {
        Some(journal) => (
            upgrade_marks(journal, target).await,
            earlier_attempt(journal, &facts.view.project, target).await,
        ),
        None => (Vec::new(), None),
    };
    let mut plan = plan_for(target, &manifest, &facts, &marks, earlier.as_ref()).await;
    let backup_db = backup_db(&manifest);
    let archives = data_archives(&manifest, &target.backup_dir);
    run.emit(plan_event(&plan));
    let mut summary = base.clone();
    summary["decision"] = json!(plan.decision);
    summary["reason"] = json!(plan.reason_words());
    summary["losses"] = json!(plan.losses);
    if let Some(change) = &plan.schema_change {
        summary["schema_change"] = json!(change);
    }

    // After an additive migration, the previous version on the newer schema first.
    let mut facts = facts;
    let mut restore_target = target.clone();
    // When the previous version is tried first and fails, the app is down from that restart
    // until the restore's version answers: the downtime counts from here.
    let mut down_since: Option<Instant> = None;
    if plan.decision == Decision::Restore && plan.keep_first {
        let keep_started = Instant::now();
        match keep::attempt(
            run,
            ctx,
            stack,
            &facts.view,
            &engine,
            &engine_loss,
            target,
            &plan,
            consent,
            &mut summary,
        )
        .await
        {
            keep::Kept::Done(finished) | keep::Kept::Ended(finished) => return finished,
            keep::Kept::Declined => {}
            keep::Kept::Failed(why) => {
                down_since = Some(keep_started);
                // The plan again, with why, before the restore's question.
                plan.reason = format!("{why}; and {}", plan.reason);
                plan.keep_first = false;
                run.emit(plan_event(&plan));
                summary["reason"] = json!(plan.reason_words());
                // Its containers were recreated: the restore stops the ones running now.
                facts = facts::gather(ctx, facts.view.clone()).await;
                restore_target.current = previous.to_string();
            }
        }
    }
    if facts.docker.is_err() {
        return refused(
            3,
            "Docker is not reachable, so nothing can be rolled back. Nothing was changed.".into(),
        );
    }

    let mut kept_aside = json!({});
    if plan.decision == Decision::Restore {
        let mut asked = confirm_restore(run, &facts.view, target, &plan, &archives, consent).await;
        // On a Swarm stack the previous version Swarm put back by itself serves and writes
        // while the question waits: what a restore takes away is counted again once the answer
        // came, and asked again (of a person; refused with nobody attached) when it changed.
        if asked.is_ok()
            && crate::probe::swarm::stack_name(facts.swarm.as_ref()).is_some()
            && let Ok(docker) = &facts.docker
        {
            // Stopped first: PostgreSQL publishes a connection's writes when it closes.
            if let Err(finished) =
                restore_run::stop_app(run, stack, &facts, docker, &restore_target, &summary).await
            {
                return finished;
            }
            crate::steps::write_mark::settled_writes(&facts).await;
            let now = facts::gather(ctx, facts.view.clone()).await;
            let fresh = plan_for(target, &manifest, &now, &marks, earlier.as_ref()).await;
            if fresh.decision == Decision::Restore
                && (fresh.losses != plan.losses || fresh.unknown_loss != plan.unknown_loss)
            {
                run.progress(
                    Step::CheckBackup,
                    "the app wrote to its database while the question waited: what the restore takes away is counted again",
                );
                plan.losses = fresh.losses;
                plan.unknown_loss = fresh.unknown_loss;
                run.emit(plan_event(&plan));
                summary["losses"] = json!(plan.losses);
                let again = match consent {
                    Consent::Given => Consent::Ask,
                    other => other,
                };
                // The app is stopped now: a "no" leaves it so, for a person, and says so.
                asked = match confirm_restore(run, &now.view, target, &plan, &archives, again).await
                {
                    Err(Some(_)) => Err(None),
                    other => other,
                };
            }
            facts = now;
        }
        match asked {
            Ok(()) => {}
            Err(Some(refusal)) => return refusal,
            Err(None) => {
                // The keep attempt may have started the previous version's services on the
                // newer schema: stopped, so that nothing writes while a person decides.
                let facts_now = facts::gather(ctx, facts.view.clone()).await;
                let stopped = match &facts_now.docker {
                    Ok(now) => Some(
                        stop_for_a_person(stack, &facts.view, now, facts_now.swarm.as_ref()).await,
                    ),
                    Err(_) => None,
                };
                return left_for_a_person(target, &plan, stopped.as_ref());
            }
        }
        let Ok(docker) = &facts.docker else {
            return refused(
                3,
                "Docker is not reachable, so nothing can be rolled back. Nothing was changed."
                    .into(),
            );
        };
        if let Err(finished) = restore_run::stop_and_restore(
            run,
            stack,
            &facts,
            docker,
            &restore_target,
            &manifest,
            &archives,
            &mut summary,
            &mut kept_aside,
        )
        .await
        {
            return finished;
        }
    }

    let targets = match repin::repin_and_pull(
        run,
        stack,
        &engine,
        &engine_loss,
        target,
        &mut summary,
    )
    .await
    {
        Ok(t) => t,
        Err(finished) => return finished,
    };

    let started = match crate::probe::swarm::stack_name(facts.swarm.as_ref()) {
        Some(swarm) => {
            crate::steps::swarm_update::update_and_watch(
                run, stack, &engine, swarm, &targets, previous,
            )
            .await
        }
        None => {
            crate::steps::restart::restart_and_watch(
                run,
                stack,
                &facts.view,
                &engine,
                &targets,
                previous,
                &engine_loss,
                crate::steps::restart::WatchUntil::Ready,
            )
            .await
        }
    };
    let up = match started {
        Ok(up) => up,
        Err(f) => {
            if let Some(evidence) = f.evidence {
                summary["evidence"] = json!(evidence);
            }
            let sentence = format!(
                "{}. {}",
                f.reason,
                state_words(target, &format!(".env pins {previous}"))
            );
            return run.fail(f.step, f.started, sentence, summary).await;
        }
    };

    verify_and_finish(
        run,
        ctx,
        stack,
        &facts.view,
        &targets,
        target,
        backup_db.as_ref(),
        plan.decision,
        up,
        summary,
        &kept_aside,
        down_since,
    )
    .await
}

/// Waits out any other `docker compose` on the stack, then checks the backup's files against its
/// manifest: a rollback that cannot restore must not start.
async fn check_backup(
    run: &mut Run<'_>,
    project: &str,
    target: &Target,
) -> Result<Value, Finished> {
    // Nothing else may be changing the containers (an `up` left by a killed hoist runs on).
    if let Err(sentence) =
        crate::steps::restart::wait_for_compose(run, Step::CheckBackup, project).await
    {
        return Err(refused(3, sentence));
    }
    // The backup first: a rollback that cannot restore must not start.
    let step = run
        .start(
            Step::CheckBackup,
            "checking the backup's files against its manifest",
        )
        .await;
    let manifest = match checked_manifest(target) {
        Ok(m) => m,
        Err(e) => {
            let sentence = format!(
                "the {} cannot start: {e}. Nothing was changed.",
                target.noun()
            );
            run.finish(Step::CheckBackup, step, false, Some(sentence.clone()))
                .await;
            return Err(refused(3, sentence));
        }
    };
    run.finish(Step::CheckBackup, step, true, None).await;
    Ok(manifest)
}

/// The end of an unattended rollback that would need a restore: the previous version did not
/// come up as things are, and restoring takes something away, which hoist does not do alone.
fn left_for_a_person(
    target: &Target,
    plan: &plan::Plan,
    stopped: Option<&crate::steps::stop::Stopped>,
) -> Finished {
    let previous = &target.previous;
    let services = match stopped {
        Some(s) if s.failed.is_empty() => {
            "its services are stopped so that nothing more is written (the database keeps running)"
                .to_string()
        }
        Some(s) => format!(
            "these of its services could not be stopped and may still write: {}",
            s.failed.join("; ")
        ),
        None => "Docker did not answer, so its services may still be running".to_string(),
    };
    let sentence = format!(
        "nobody was attached to decide: {previous} did not come up on the database and data as they are now, and restoring the backup would take away {}, which hoist does not do alone. {} Run `{}` to restore it (it asks first, saying what it takes away).",
        plan.loss_words(),
        state_words(
            target,
            &format!(".env pins {previous}, which is not running; {services}")
        ),
        target.again()
    );
    Finished {
        exit_code: 1,
        summary: json!({"type": "summary", "command": target.noun(), "outcome": "failed", "exit_code": 1, "error": sentence, "left_for_decision": true, "steps": []}),
        sentence,
    }
}

/// The app's services stopped before the run ends for a person to decide (the database keeps
/// running).
async fn stop_for_a_person(
    stack: &crate::stack::Stack,
    view: &facts::StackView,
    docker: &facts::Running,
    swarm: Option<&crate::probe::swarm::InSwarm>,
) -> crate::steps::stop::Stopped {
    let grace = crate::steps::stop::Grace::Fixed(
        stack
            .settings
            .timeout_stop
            .unwrap_or(crate::steps::stop::DEFAULT_STOP),
    );
    match crate::probe::swarm::stack_name(swarm) {
        // Swarm would start a stopped task's container again: its services are scaled to zero.
        Some(swarm) => {
            let mut stopped = crate::steps::stop::Stopped::default();
            for service in &view.upgraded {
                let full = format!("{swarm}_{service}");
                match crate::docker::swarm_change::scale_to_zero(&docker.engine, &full).await {
                    Ok(crate::docker::swarm_change::Stopped::Scaled(_)) => {
                        stopped.stopped.push(full)
                    }
                    Ok(crate::docker::swarm_change::Stopped::Global) => stopped.stopped.push(full),
                    Err(e) => stopped.failed.push(format!("{full} ({e})")),
                }
            }
            stopped
        }
        None => crate::steps::stop::stop_services(docker, &view.upgraded, grace, &|_| {}).await,
    }
}

/// Before a restore changes anything: refuses what a restore cannot do, then asks. `Err(None)`:
/// nobody is attached to say yes, and the restore would take something away.
async fn confirm_restore(
    run: &mut Run<'_>,
    view: &facts::StackView,
    target: &Target,
    plan: &plan::Plan,
    archives: &[DataArchive],
    consent: Consent,
) -> Result<(), Option<Finished>> {
    let previous = target.previous.as_str();
    // What a restore cannot do is said before anything changes.
    if let Some(sentence) = restore_run::unsupported(
        &plan.reason,
        archives,
        view.database.as_ref(),
        &target.backup_dir,
    ) {
        return Err(Some(refused(3, sentence)));
    }
    let loss = plan.loss_words();
    // Nobody attached: the restore would take something away, so a person decides.
    if consent == Consent::LosslessOnly {
        return Err(None);
    }
    let question = Question::Rollback {
        text: format!(
            "Restore the backup of {} and go back to {previous}? {}; {loss}. The current data is kept aside, not deleted.",
            view.project, plan.reason
        ),
        restore: true,
    };
    if consent == Consent::Ask && !run.ask(question).await {
        let sentence = if target.restore {
            format!(
                "a restore needs a confirmation ({}; {loss}): run it with --yes. Nothing was changed.",
                plan.reason
            )
        } else if plan.keep_first {
            format!(
                "going back to {previous} on the newer schema, keeping the newer data, needs a confirmation, and so does the restore that follows if {previous} does not come up ({loss}): run it with --yes, which tries keeping first. Why: {}. Nothing was changed.",
                plan.reason_words()
            )
        } else {
            format!(
                "the rollback needs a restore ({}), and a restore needs a confirmation ({loss}): run it with --yes. Nothing was changed.",
                plan.reason
            )
        };
        return Err(Some(refused(3, sentence)));
    }
    Ok(())
}

/// The last step, the previous version checked, and the run's end.
#[allow(clippy::too_many_arguments)]
async fn verify_and_finish(
    run: &mut Run<'_>,
    ctx: &Context,
    stack: &crate::stack::Stack,
    view: &facts::StackView,
    targets: &BTreeMap<String, String>,
    target: &Target,
    backup_db: Option<&BackupDb>,
    decision: Decision,
    up: crate::steps::restart::Up,
    mut summary: Value,
    kept_aside: &Value,
    down_since: Option<Instant>,
) -> Finished {
    let (previous, current) = (target.previous.as_str(), target.current.as_str());
    // The app answers again by now (the watch said it is ready).
    let down_for = down_since.map(|t| t.elapsed().as_millis() as u64);
    // Verify: previous images, healthy, .env, schema and rows as the backup says, smoke checks.
    let step = run
        .start(
            Step::Verify,
            "checking images, health, .env, the schema and the app's answers",
        )
        .await;
    let problems = verify::check_after(
        run,
        ctx,
        stack,
        view,
        targets,
        previous,
        backup_db,
        decision,
        &mut summary,
    )
    .await;
    let downtime = up.end().await;
    summary["downtime_ms"] = json!(down_for.or(downtime));
    if !problems.is_empty() {
        let sentence = format!(
            "the {} to {previous} did not verify: {}. {}",
            target.noun(),
            problems.join("; "),
            state_words(target, &format!(".env pins {previous}"))
        );
        return run.fail(Step::Verify, step, sentence, summary).await;
    }
    run.finish(Step::Verify, step, true, None).await;
    summary["outcome"] = json!("succeeded");
    summary["exit_code"] = json!(0);
    let aside_words = if target.restore {
        verify::aside_words(kept_aside)
    } else {
        aside_words(ctx, view, target, &mut summary).await
    };
    // Services beside the app were not upgraded, so their data stays as it is now.
    let beside: Vec<&str> = view.beside.iter().map(|b| b.service.as_str()).collect();
    let beside_words = if decision == Decision::Restore && !beside.is_empty() {
        format!(
            ". The data of {} (beside the app, not upgraded) was left as it is",
            beside.join(", ")
        )
    } else {
        String::new()
    };
    if target.restore {
        let sentence = restore_dir::done_words(target, view, kept_aside);
        return Finished {
            exit_code: 0,
            sentence: format!("{sentence}{aside_words}{beside_words}"),
            summary,
        };
    }
    Finished {
        exit_code: 0,
        sentence: format!(
            "{} rolled back from {current} to {previous} ({}){aside_words}{beside_words}",
            view.project,
            match (decision, summary["keep"]["failed"].as_str()) {
                (Decision::Repin, _) => "re-pinned, no restore needed".to_string(),
                (Decision::Restore, Some(why)) => format!("the backup was restored, because {why}"),
                (Decision::Restore, None) => "the backup was restored".to_string(),
            }
        ),
        summary,
    }
}
