//! The upgrade engine, without any terminal: preflight, target check, backup and pull (they
//! overlap), pin, restart, watch, verify. It reports through `Event`s on a channel and asks its
//! questions through a `Decider`; front ends (headless lines or JSON, later the wizard) print.

use crate::context::Context;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::docker::images::{self, TagStatus};
use crate::journal::Journal;
use crate::preflight::{self as checks, Level};
use crate::probe::facts::{self, Facts};
use crate::run::{Decider, Event, Finished, Step, Stop};
use crate::run::{Run, progress_to, record_finish};
use crate::stack::pin;
use crate::stack::targets::target_images;
use crate::steps::engine_loss::{After, EngineLoss};
use crate::steps::evidence::last_lines;
use crate::steps::restart::{restart_and_watch, wait_for_compose};
use crate::steps::verify::{running_problems, smoke_checks};

pub struct Request {
    pub to: String,
    pub dry_run: bool,
    /// Step through each release (0.x) or minor (1.0+) on the way, or jump.
    pub path: PathMode,
    pub stop: Stop,
    /// Continue this interrupted run (its pin was written): no new backup, the run's backup
    /// kept for a rollback, unhealthy app services expected.
    pub resume: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathMode {
    #[default]
    Steps,
    Direct,
}

fn refused(code: u8, sentence: String, to: &str) -> Finished {
    Finished {
        exit_code: code,
        summary: json!({"type": "summary", "command": "upgrade", "to": to, "outcome": "refused", "exit_code": code, "error": sentence, "steps": []}),
        sentence,
    }
}

/// How an upgrade ended, and the change it left when it failed after changing the stack.
pub struct Ended {
    pub finished: Finished,
    pub failed_change: Option<FailedChange>,
}

/// An upgrade that failed after its pin (not stopped, not cut off by the engine): what a
/// rollback needs to go back, and what the user is told.
pub struct FailedChange {
    pub run_id: String,
    pub from: String,
    pub to: String,
    /// Why it failed, in a few words.
    pub failure: String,
    /// The version `.env` pins now.
    pub pinned_now: String,
    pub backup_dir: PathBuf,
    pub view: facts::StackView,
}

/// The upgrade itself: preflight, target, backup and pull, then each hop's pin, restart, watch
/// and verify. What follows a failure (a rollback, or waiting for a decision) is not decided
/// here: see `crate::recovery`.
pub async fn run(
    ctx: &Context,
    req: &Request,
    decider: &dyn Decider,
    events: &UnboundedSender<Event>,
) -> Ended {
    let mut failed_change = None;
    let finished = prepare_and_run(ctx, req, decider, events, &mut failed_change).await;
    Ended {
        finished,
        failed_change,
    }
}

async fn prepare_and_run(
    ctx: &Context,
    req: &Request,
    decider: &dyn Decider,
    events: &UnboundedSender<Event>,
    failed_change: &mut Option<FailedChange>,
) -> Finished {
    let to = req.to.trim().to_string();
    let (stack, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return refused(2, err.to_string(), &to),
    };
    if to.is_empty() || to.contains(char::is_whitespace) || to.contains(['/', '@']) {
        return refused(2, format!("{to:?} is not a version tag"), &to);
    }
    let variable = stack.detection.version.variable.clone();
    if std::env::var_os(&variable).is_some() {
        return refused(
            2,
            format!(
                "{variable} is set in your shell's environment, which overrides .env: pinning it in .env would not take effect. Unset it (`unset {variable}`) and run hoist again."
            ),
            &to,
        );
    }
    let mut from = stack.detection.version.value.clone().unwrap_or_default();
    let resumed = match &req.resume {
        Some(run_id) => match resumable(ctx, &stack, run_id, &to).await {
            Ok(r) => {
                from = r.from.clone();
                Some(r)
            }
            Err(e) => return refused(3, format!("{e}. Nothing was changed."), &to),
        },
        None => None,
    };
    // A run that goes on with its own backup over a half-upgraded app (not one started over
    // with a new backup because the app was never restarted).
    let continuing = resumed.as_ref().is_some_and(|r| r.backup.is_some());
    if from == to && resumed.is_none() {
        return refused(
            2,
            format!("{variable} is already pinned to {to}; there is nothing to upgrade."),
            &to,
        );
    }
    let mut run = Run::new(events);

    // Preflight: the same checks as `hoist check`; a failed one refuses with nothing changed.
    let step = run
        .start(Step::Preflight, "checking the stack is healthy and ready")
        .await;
    if let Err(sentence) = wait_for_compose(&run, Step::Preflight, &view.project).await {
        run.finish(Step::Preflight, step, false, Some(sentence.clone()))
            .await;
        return refused(3, sentence, &to);
    }
    let facts = facts::gather(ctx, view).await;
    // Problems nobody may wave through (no Docker, no possible backup), and unhealthy
    // services, which a person who knows why may choose to upgrade past.
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = &facts.docker {
        problems.push(e.to_string());
    }
    // A continued run takes no backup: it keeps the one taken before its pin.
    if !continuing && let Err((_, sentence)) = crate::preflight::backup_preconditions(&facts) {
        problems.push(sentence);
    }
    let services = crate::probe::services::services(&facts);
    let mut unhealthy: Vec<String> = Vec::new();
    let mut evidence = BTreeMap::new();
    for s in &services {
        let (level, message) =
            checks::judge_service(s, facts.view.with_healthcheck.contains(&s.name));
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
        && (continuing || decider.override_unhealthy(&unhealthy));
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
            problems.join("; ")
        );
        run.finish(Step::Preflight, step, false, Some(sentence.clone()))
            .await;
        return refused(3, sentence, &to);
    }
    run.finish(Step::Preflight, step, true, None).await;
    let overridden: Vec<String> = if overridden { unhealthy } else { Vec::new() };
    let Ok(docker) = &facts.docker else {
        return refused(3, "Docker is not reachable".into(), &to);
    };

    // The target exists for every upgraded image, before anything is touched.
    let step = run
        .start(
            Step::Target,
            &format!("checking {to} exists in the registry"),
        )
        .await;
    let targets = match target_images(&stack, &variable, &to) {
        Ok(t) => t,
        Err(e) => {
            run.finish(Step::Target, step, false, Some(e.clone())).await;
            return refused(2, e, &to);
        }
    };
    // The releases on the way, each a hop (the runbooks' "one minor version at a time").
    // A resumed run goes on from the release .env pins now: that hop first (its restart is
    // what was interrupted), then the rest of the way.
    let pinned_now = stack.detection.version.value.clone().unwrap_or_default();
    let path_from = if continuing {
        pinned_now.clone()
    } else {
        from.clone()
    };
    let hop_versions = match req.path {
        _ if path_from == to => vec![to.clone()],
        PathMode::Direct => vec![to.clone()],
        PathMode::Steps => match targets.values().next() {
            Some(image) => match crate::versions::path_to(image, &path_from, &to).await {
                Ok(mut p) => {
                    if continuing {
                        p.insert(0, pinned_now.clone());
                    }
                    p
                }
                Err(e) => {
                    let sentence = format!(
                        "{e}, so hoist cannot tell which releases lie between {from} and {to}. Nothing was changed. To jump straight to {to}, run with --path direct."
                    );
                    run.finish(Step::Target, step, false, Some(sentence.clone()))
                        .await;
                    return refused(3, sentence, &to);
                }
            },
            None => vec![to.clone()],
        },
    };
    if hop_versions.len() > 1 {
        run.progress(
            Step::Target,
            format!(
                "{from} -> {to} goes through each release on the way: {}",
                hop_versions.join(" -> ")
            ),
        );
    }
    let mut hops: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for hop in &hop_versions {
        match target_images(&stack, &variable, hop) {
            Ok(t) => hops.push((hop.clone(), t)),
            Err(e) => {
                run.finish(Step::Target, step, false, Some(e.clone())).await;
                return refused(2, e, &to);
            }
        }
    }
    let mut references: Vec<String> = hops.iter().flat_map(|(_, t)| t.values().cloned()).collect();
    references.sort();
    references.dedup();
    for reference in &references {
        match images::tag_status(&docker.engine, reference).await {
            Ok(TagStatus::Exists { digest }) => {
                run.progress(Step::Target, format!("{reference} exists ({digest})"))
            }
            Ok(TagStatus::Missing) => {
                let sentence = format!(
                    "{reference} does not exist in its registry: check the version tag. Nothing was changed."
                );
                run.finish(Step::Target, step, false, Some(sentence.clone()))
                    .await;
                return refused(3, sentence, &to);
            }
            Err(e) => {
                let sentence = format!("{e}. Nothing was changed.");
                run.finish(Step::Target, step, false, Some(sentence.clone()))
                    .await;
                return refused(3, sentence, &to);
            }
        }
    }
    run.finish(Step::Target, step, true, None).await;

    // The .env change, as the first hop makes it (each hop changes the same value).
    let change = match pin::plan(&stack.env_path, &variable, &to) {
        Ok(c) => c,
        Err(e) => return refused(2, e.to_string(), &to),
    };
    let mut to_pull = Vec::new();
    for reference in &references {
        match images::is_local(&docker.engine, reference).await {
            Ok(true) => {}
            Ok(false) => to_pull.push(reference.clone()),
            Err(e) => return refused(3, e.to_string(), &to),
        }
    }
    // The download must fit too (with the backup, when Docker keeps images on the same disk).
    let mut download_bytes = 0u64;
    if !to_pull.is_empty() {
        match checks::measure_download(&facts, &to, &to_pull).await {
            Ok(d) => {
                download_bytes = d.bytes;
                let backup_estimate = checks::disk_finding(&facts).estimate();
                let f = checks::download_finding(&facts, &d, backup_estimate);
                if f.status == Level::Fail {
                    return refused(3, format!("{}. Nothing was changed.", f.message), &to);
                }
            }
            // The size is an estimate: not knowing it is not a reason to refuse.
            Err(e) => tracing::warn!("download size unknown: {e}"),
        }
    }
    let plan = json!({
        "project": facts.view.project,
        "from": from,
        "to": to,
        "backup": {
            "dir": facts.view.backup_dir,
            "database": facts.view.database.as_ref().map(|d| format!("{} dump of {} (service {})", d.kind.name(), d.name, d.service)),
            "data": facts.view.data.iter().map(|d| &d.source).collect::<Vec<_>>(),
        },
        "path": hop_versions,
        "pull": to_pull,
        "download_bytes": download_bytes,
        "recreate": facts.view.upgraded,
        "env_diff": {"file": stack.env_path, "line": change.line, "before": change.before, "after": change.after},
        "overridden": overridden,
    });
    run.emit(Event::Plan { plan: plan.clone() });
    if req.dry_run {
        return Finished {
            exit_code: 0,
            sentence: "dry run: nothing was changed".into(),
            summary: json!({"type": "summary", "command": "upgrade", "outcome": "dry_run", "from": from, "to": to, "plan": plan, "exit_code": 0, "steps": run.steps}),
        };
    }
    if !decider.confirm(&format!(
        "Upgrade {} from {from} to {to}?",
        facts.view.project
    )) {
        return refused(3, "the upgrade needs a confirmation: run it with --yes (or in the wizard). Nothing was changed.".into(), &to);
    }

    let journal = match Journal::open(&ctx.state_dir).await {
        Ok(j) => j,
        Err(e) => return refused(1, e.to_string(), &to),
    };
    let run_id = match journal
        .start_run(
            "upgrade",
            &facts.view.project,
            &facts.view.project_dir,
            Some(&from),
            Some(&to),
        )
        .await
    {
        Ok(id) => id,
        Err(e) => return refused(1, e.to_string(), &to),
    };
    run.journal = Some(&journal);
    run.run_id = Some(run_id.clone());
    let started_all = Instant::now();
    match &resumed {
        Some(Resumed {
            run_id,
            backup: Some(_),
            ..
        }) => run.progress(
            Step::Preflight,
            format!("continuing run {run_id}, with the backup it took"),
        ),
        Some(Resumed {
            run_id,
            backup: None,
            fresh_because,
            ..
        }) => run.progress(
            Step::Preflight,
            format!(
                "continuing run {run_id} from its start: {}; it had not restarted the app, which still runs {from}, so a new backup is taken first",
                fresh_because.as_deref().unwrap_or("its backup cannot be used")
            ),
        ),
        None => {}
    }
    let mut finished = upgrade(
        &mut run,
        ctx,
        &stack,
        &facts,
        docker,
        &from,
        &to,
        &hops,
        &to_pull,
        &req.stop,
        resumed.as_ref().and_then(|r| r.backup.clone()),
    )
    .await;
    if let Some(r) = &resumed {
        finished.summary["resumed_from"] = json!(r.run_id);
    }
    if !overridden.is_empty() {
        finished.summary["overridden"] = json!(overridden);
    }
    finished.summary["run_id"] = json!(run_id);
    finished.summary["steps"] = json!(run.steps);
    finished.summary["duration_ms"] = json!(started_all.elapsed().as_millis() as u64);
    record_finish(&journal, &run_id, &finished).await;
    drop(run);
    if finished.summary["engine_gone"] == json!(true) {
        // Nothing can be rolled back without the engine, and the release is not to blame.
        finished.sentence = format!(
            "{} Once Docker answers again, `hoist upgrade --to {to}` continues this upgrade with that backup, or `hoist rollback` goes back to {from}.",
            finished.sentence
        );
        finished.summary["error"] = json!(finished.sentence);
        record_finish(&journal, &run_id, &finished).await;
    } else if finished.exit_code == 1
        && finished.summary["changed"] == json!(true)
        && finished.summary["outcome"] != json!("stopped")
        && let Some(backup_dir) = finished.summary["backup"].as_str().map(PathBuf::from)
    {
        *failed_change = Some(FailedChange {
            run_id: run_id.clone(),
            from: from.clone(),
            to: to.clone(),
            failure: finished.summary["failure"]
                .as_str()
                .unwrap_or(&finished.sentence)
                .to_string(),
            pinned_now: finished.summary["pinned_now"]
                .as_str()
                .unwrap_or(&to)
                .to_string(),
            backup_dir,
            view: facts.view.clone(),
        });
    }
    journal.close().await;
    finished
}

/// An interrupted upgrade that `hoist upgrade --to V` goes on with.
struct Resumed {
    /// The version the run started from.
    from: String,
    run_id: String,
    /// The backup it took, which the run goes on with (no new backup over a half-upgraded
    /// app). None: the run never restarted the app and its backup cannot be used (a kill
    /// before it was complete, or it was removed since), so a new one is taken first: the app
    /// still runs `from`, and a backup of it now is as good as the lost one.
    backup: Option<PathBuf>,
    /// Why its backup is not used, when it is not.
    fresh_because: Option<String>,
}

/// The interrupted run `run_id` to continue, or why it cannot be.
async fn resumable(
    ctx: &Context,
    stack: &crate::stack::Stack,
    run_id: &str,
    to: &str,
) -> Result<Resumed, String> {
    let journal = Journal::open(&ctx.state_dir)
        .await
        .map_err(|e| e.to_string())?;
    let project = stack.project_name.clone();
    let runs = journal
        .runs(&project, 1000)
        .await
        .map_err(|e| e.to_string())?;
    let backups = journal.backups(&project).await.map_err(|e| e.to_string())?;
    journal.close().await;
    let run = runs
        .iter()
        .find(|r| r.id == run_id)
        .ok_or_else(|| format!("the journal has no run {run_id} to continue"))?;
    if run.kind != "upgrade" || run.to_version.as_deref() != Some(to) {
        return Err(format!("run {run_id} is not an upgrade to {to}"));
    }
    let from = run.from_version.clone().unwrap_or_default();
    let usable = match crate::resume::backup_of(run, &backups) {
        None => Err(format!("run {run_id} has no backup in the journal")),
        Some((dir, _)) => crate::backup::check(&dir)
            .map(|_| dir)
            .map_err(|e| format!("the backup of run {run_id} cannot be used ({e})")),
    };
    let restarted = run.steps.iter().any(|s| s.name == Step::Restart.name())
        || recreated_since(ctx, stack, &run.started_at).await;
    match usable {
        Ok(dir) => Ok(Resumed {
            from,
            run_id: run.id.clone(),
            backup: Some(dir),
            fresh_because: None,
        }),
        Err(why) if !restarted => Ok(Resumed {
            from,
            run_id: run.id.clone(),
            backup: None,
            fresh_because: Some(why),
        }),
        Err(why) => Err(format!(
            "{why}, and that run had already restarted the app, so hoist has no backup from before the change to continue or roll back with. `hoist status` shows what runs now; the backup directory's RESTORE.md files say how to restore an older backup by hand"
        )),
    }
}

/// Whether a container of an upgraded service was started at or after `since` (a journal
/// time), or that cannot be told: the journal records a restart before `up -d` runs, but this
/// looks at what Docker says too, in case the journal could not be written.
async fn recreated_since(ctx: &Context, stack: &crate::stack::Stack, since: &str) -> bool {
    let Ok(since) = since.parse::<jiff::Timestamp>() else {
        return true;
    };
    let Ok(engine) = crate::docker::Engine::connect(ctx.docker_timeout).await else {
        return true;
    };
    let Ok(containers) = crate::docker::stack_containers(&engine, &stack.project_name).await else {
        return true;
    };
    containers
        .iter()
        .filter(|c| stack.detection.upgraded.contains(&c.service))
        .any(|c| {
            c.started_at
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_none_or(|t| t >= since)
        })
}

#[allow(clippy::too_many_arguments)]
async fn upgrade(
    run: &mut Run<'_>,
    ctx: &Context,
    stack: &crate::stack::Stack,
    facts: &Facts,
    docker: &facts::Running,
    from: &str,
    to: &str,
    hops: &[(String, BTreeMap<String, String>)],
    to_pull: &[String],
    stop: &Stop,
    resume_backup: Option<PathBuf>,
) -> Finished {
    let engine = &docker.engine;
    let view = &facts.view;
    let services = crate::probe::services::services(facts);
    let running_version = crate::probe::services::running_version(&services);
    let schema_before = facts.db.as_ref().and_then(|r| r.as_ref().ok());
    let base = |outcome: &str, code: u8| {
        json!({"type": "summary", "command": "upgrade", "from": from, "to": to, "outcome": outcome, "exit_code": code,
               "schema_before": schema_before.and_then(|p| p.migrations.as_ref().map(|m| m.revision.clone()))})
    };

    // Backup and pull overlap: a pull does not touch the running containers.
    let backup_began = jiff::Timestamp::now();
    let backup_step = run
        .start(Step::Backup, "database dump and data archives")
        .await;
    let pull_step = (Instant::now(), None);
    run.emit(Event::StepStarted {
        step: Step::Pull,
        what: format!("{} image(s) to download", to_pull.len()),
    });
    let source = crate::steps::backup::source_from(facts, docker, running_version.as_deref());
    // A restart of the Docker daemon from here on is waited out and the step done again.
    let engine_loss = &EngineLoss::start(engine, stack.settings.timeout_engine);
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let backup_tx = progress_tx.clone();
    // Each future owns its senders (see below), these included.
    let backup_say = progress_to(&progress_tx, Step::Backup);
    let pull_say = progress_to(&progress_tx, Step::Pull);
    let db_service: Vec<String> = view
        .database
        .as_ref()
        .map(|d| vec![d.service.clone()])
        .unwrap_or_default();
    // Byte counts at most a few times a second: a front end on a slow link needs no more.
    const EVERY: Duration = Duration::from_millis(250);
    // Each sender lives inside its future, so the forwarder ends when both are done.
    let backup_fut = async {
        let backup_say = backup_say;
        let began = Instant::now();
        let last_read = std::sync::Mutex::new(None::<Instant>);
        let on_backup = move |p: crate::backup::Progress| {
            let event = match p {
                crate::backup::Progress::Started { part } => Event::Progress {
                    step: Step::Backup,
                    message: format!("writing {part}"),
                },
                crate::backup::Progress::Read { part, bytes } => {
                    let Ok(mut last) = last_read.lock() else {
                        return;
                    };
                    if last.is_some_and(|t| t.elapsed() < EVERY) {
                        return;
                    }
                    *last = Some(Instant::now());
                    Event::BackupProgress {
                        part,
                        bytes,
                        elapsed_ms: began.elapsed().as_millis() as u64,
                    }
                }
                crate::backup::Progress::Finished { part, bytes } => Event::Progress {
                    step: Step::Backup,
                    message: format!("{part} done ({})", crate::units::human_bytes(bytes)),
                },
            };
            let _ = backup_tx.send(event);
        };
        if resume_backup.is_some() {
            return Ok(None);
        }
        loop {
            let mark = engine_loss.mark();
            let error =
                match crate::backup::take(engine, &source, &view.backup_dir, &on_backup).await {
                    Ok(b) => return Ok(Some(b)),
                    Err(e) => e,
                };
            // The partial backup is already removed; once the database runs again, a whole
            // new backup is taken.
            match engine_loss
                .after_failure(mark, "the backup", &backup_say)
                .await
            {
                After::NotEngine => return Err(StepError::Own(error.to_string())),
                After::Gone(why) => return Err(StepError::Engine(why)),
                After::Again => {
                    engine_loss
                        .services_back(engine, &view.project, &db_service)
                        .await
                        .map_err(StepError::Engine)?;
                }
            }
        }
    };
    let pull_tx = progress_tx;
    let pull_fut = async move {
        let pull_say = pull_say;
        for reference in to_pull {
            let mut tally = crate::docker::pull_tally::PullTally::default();
            let mut last: Option<Instant> = None;
            let mut report = |p: images::PullProgress| {
                let milestone = tally.see(&p);
                if milestone || last.is_none_or(|t| t.elapsed() >= EVERY) {
                    last = Some(Instant::now());
                    let _ = pull_tx.send(Event::Pull {
                        image: reference.clone(),
                        progress: tally.snapshot(),
                        done: false,
                    });
                }
            };
            loop {
                let mark = engine_loss.mark();
                let Err(error) = images::pull(engine, reference, &mut report).await else {
                    break;
                };
                // Layers already down are kept by the engine: the pull goes on where it was.
                match engine_loss.after_failure(mark, "the pull", &pull_say).await {
                    After::NotEngine => return Err(StepError::Own(error.to_string())),
                    After::Gone(why) => return Err(StepError::Engine(why)),
                    After::Again => {}
                }
            }
            let _ = pull_tx.send(Event::Pull {
                image: reference.clone(),
                progress: tally.snapshot(),
                done: true,
            });
        }
        Ok::<(), StepError>(())
    };
    let forward = async {
        while let Some(event) = progress_rx.recv().await {
            run.emit(event);
        }
    };
    let ((backup, pulled), ()) =
        tokio::join!(async { tokio::join!(backup_fut, pull_fut) }, forward);
    let backup = match backup {
        Ok(None) => {
            let dir = resume_backup.clone().unwrap_or_default();
            run.progress(
                Step::Backup,
                format!(
                    "{} was taken by the interrupted run and checked",
                    dir.display()
                ),
            );
            run.finish(
                Step::Backup,
                backup_step,
                true,
                Some(dir.display().to_string()),
            )
            .await;
            Ok((dir, None))
        }
        Ok(Some(b)) => {
            for p in &b.removed_partials {
                run.progress(
                    Step::Backup,
                    format!(
                        "removed {}: a partial backup left by a hoist that was stopped before it finished",
                        p.display()
                    ),
                );
            }
            run.emit(Event::BackupDone {
                dir: b.dir.clone(),
                files: b.manifest.files.clone(),
                total_bytes: b.total_bytes,
            });
            run.finish(
                Step::Backup,
                backup_step,
                true,
                Some(b.dir.display().to_string()),
            )
            .await;
            Ok((b.dir.clone(), Some(b)))
        }
        Err(StepError::Own(e)) => {
            let db = view.database.as_ref().map_or("db", |d| d.service.as_str());
            let sentence = match stopped_database(engine, view, backup_began).await {
                Some(DatabaseFate::Down(state)) => format!(
                    "the backup failed: {e}. The database's container is not running now ({state}); hoist did not stop it, and changed nothing: .env still pins {from}. Start it again (`docker compose start {db}`), see why it stopped (`docker compose logs {db}`), then run the upgrade again."
                ),
                Some(DatabaseFate::Stopping(state)) => format!(
                    "the backup failed: {e}. The database's container is stopping ({state}); hoist did not stop it, and changed nothing: .env still pins {from}. Once it has stopped, start it again (`docker compose start {db}`), see why it was stopped (`docker compose logs {db}`), then run the upgrade again."
                ),
                Some(DatabaseFate::Restarted(state)) => format!(
                    "the backup failed: {e}. The database's container restarted under the dump ({state}); hoist changed nothing: .env still pins {from}. See why it stopped (`docker compose logs {db}`), then run the upgrade again."
                ),
                None => format!(
                    "the backup failed: {e}. Nothing was changed: the stack still runs {from}."
                ),
            };
            backup_failed(run, backup_step, base("failed", 1), sentence).await
        }
        Err(StepError::Engine(why)) => {
            let sentence = format!(
                "the backup could not be taken: {why}. Nothing was changed: .env still pins {from}. Check the stack with `hoist status`, then run the upgrade again."
            );
            backup_failed(run, backup_step, base("failed", 1), sentence).await
        }
    };
    let (backup_dir, taken) = match backup {
        Ok(b) => b,
        Err(finished) => return finished,
    };
    if let (Some(j), Some(taken)) = (run.journal, &taken) {
        let _ = crate::steps::backup::journal_backup(
            j,
            run.run_id.as_deref().unwrap_or_default(),
            &view.project,
            running_version.as_deref(),
            taken,
        )
        .await;
    }
    let mut summary = base("failed", 1);
    summary["backup"] = json!(backup_dir);
    let resuming = taken.is_none();
    if resuming {
        // The interrupted run already changed the stack: a failure from here offers the way back.
        summary["changed"] = json!(true);
        summary["pinned_now"] = json!(to);
    }
    if let Err(e) = pulled {
        let sentence = match (&e, resuming) {
            (_, true) => after_pin_state(
                stack,
                to,
                from,
                &backup_dir,
                format!("pulling the new image failed: {e}"),
            ),
            (StepError::Own(_), false) => format!(
                "pulling the new image failed: {e}. Nothing was changed: the stack still runs {from}; the backup is in {}.",
                backup_dir.display()
            ),
            (StepError::Engine(_), false) => format!(
                "pulling the new image failed: {e}. Nothing was changed: .env still pins {from}; the backup is in {}. Check the stack with `hoist status`, then run the upgrade again.",
                backup_dir.display()
            ),
        };
        return run.fail(Step::Pull, pull_step, sentence, summary).await;
    }
    run.finish(Step::Pull, pull_step, true, None).await;
    if stop.requested() && !resuming {
        let sentence = format!(
            "stopped at your request before any change: the stack still runs {from}, .env is as it was; the backup is in {}. Run the upgrade again when you are ready.",
            backup_dir.display()
        );
        summary["outcome"] = json!("stopped");
        summary["exit_code"] = json!(3);
        summary["error"] = json!(sentence);
        return Finished {
            exit_code: 3,
            sentence,
            summary,
        };
    }

    // Each hop: pin, restart, watch, verify. From the first pin on, a failure leaves the stack
    // changed, and says how.
    let variable = &stack.detection.version.variable;
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
        let change = match pin::plan(&stack.env_path, variable, hop) {
            Ok(c) => c,
            Err(e) => {
                let step = run.start(Step::Pin, hop).await;
                let sentence = after_pin_state(stack, &previous, from, &backup_dir, e.to_string());
                return run.fail(Step::Pin, step, sentence, summary).await;
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
        if let Err(e) = pin::write_atomic(&stack.env_path, &change.new_text) {
            let sentence = if hops_done.is_empty() {
                format!(
                    "writing .env failed: {e}. Nothing was changed: the stack still runs {from}."
                )
            } else {
                after_pin_state(
                    stack,
                    &previous,
                    from,
                    &backup_dir,
                    format!("writing .env failed: {e}"),
                )
            };
            return run.fail(Step::Pin, step, sentence, summary).await;
        }
        run.finish(Step::Pin, step, true, None).await;
        // From here on a failure has changed the stack: a rollback is offered.
        summary["changed"] = json!(true);
        summary["pinned_now"] = json!(hop);
        let after_pin = |what: String| after_pin_state(stack, hop, from, &backup_dir, what);

        // Restart, then watch the new containers until they are ready, or fail.
        // A daemon that went away between the watch and the checks: `up -d` and the watch
        // again once it answers, then the checks.
        let (up, step, after) = loop {
            let up = match restart_and_watch(run, stack, view, engine, targets, hop, engine_loss)
                .await
            {
                Ok(up) => up,
                Err(f) => {
                    summary["failure"] = json!(f.reason);
                    if f.engine_gone {
                        summary["engine_gone"] = json!(true);
                    }
                    run.emit(Event::Failure {
                        reason: f.reason.clone(),
                        evidence: f.evidence.clone().unwrap_or_default(),
                    });
                    let sentence = after_pin(f.reason);
                    if let Some(evidence) = f.evidence {
                        summary["evidence"] = json!(evidence);
                    }
                    summary["hops_done"] = json!(hops_done);
                    return run.fail(f.step, f.started, sentence, summary).await;
                }
            };
            let mark = engine_loss.mark();
            // Verify: new images, healthy, schema after, no rows lost, smoke checks.
            let step = run
                .start(
                    Step::Verify,
                    "checking images, health, data and the app's answers",
                )
                .await;
            let after = facts::gather(ctx, facts.view.clone()).await;
            if after.docker.is_ok() {
                break (up, step, after);
            }
            let say = progress_to(run.events, Step::Verify);
            match engine_loss.after_failure(mark, "the checks", &say).await {
                After::NotEngine => break (up, step, after),
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
                    summary["failure"] = json!(why);
                    summary["engine_gone"] = json!(true);
                    summary["hops_done"] = json!(hops_done);
                    let sentence = after_pin(why);
                    return run.fail(Step::Verify, step, sentence, summary).await;
                }
            }
        };
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
        let (smoke_results, smoke_problems) = smoke_checks(run, stack).await;
        problems.extend(smoke_problems);
        let downtime_ms = up.end().await;
        downtime_total = match (downtime_total, downtime_ms) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        summary["schema_after"] =
            json!(schema_after.and_then(|p| p.migrations.as_ref().map(|m| m.revision.clone())));
        summary["fingerprint_before"] = json!(schema_before.map(|p| &p.fingerprint));
        summary["fingerprint_after"] = json!(schema_after.map(|p| &p.fingerprint));
        summary["smoke"] = json!(smoke_results);
        summary["downtime_ms"] = json!(downtime_total);
        if !problems.is_empty() {
            let failure = format!(
                "the upgrade to {hop} did not verify: {}",
                problems.join("; ")
            );
            summary["failure"] = json!(failure);
            run.emit(Event::Failure {
                reason: failure.clone(),
                evidence: BTreeMap::new(),
            });
            summary["hops_done"] = json!(hops_done);
            let sentence = after_pin(failure);
            return run.fail(Step::Verify, step, sentence, summary).await;
        }
        run.finish(Step::Verify, step, true, None).await;
        hops_done.push(hop.clone());
        previous = hop.clone();
        if stop.requested() && i + 1 < hops.len() {
            run.hop = None;
            let sentence = format!(
                "stopped at your request between two releases: {} runs {hop} (checked and healthy) and .env pins it; the backup taken before is in {}. To go on: `hoist upgrade --to {to}`; to go back to {from}: `hoist rollback`.",
                view.project,
                backup_dir.display()
            );
            summary["hops_done"] = json!(hops_done);
            summary["outcome"] = json!("stopped");
            summary["error"] = json!(sentence);
            return Finished {
                exit_code: 1,
                sentence,
                summary,
            };
        }
    }
    run.hop = None;
    summary["hops_done"] = json!(hops_done);
    summary["outcome"] = json!("succeeded");
    summary["exit_code"] = json!(0);
    Finished {
        exit_code: 0,
        sentence: format!(
            "{} upgraded from {from} to {to}{}; the backup taken before is in {}",
            view.project,
            if hops.len() > 1 {
                format!(" through {}", hops_done.join(", "))
            } else {
                String::new()
            },
            backup_dir.display()
        ),
        summary,
    }
}

/// Why a step before the pin failed: its own failure, or the Docker engine going away.
enum StepError {
    Own(String),
    Engine(String),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Own(e) | StepError::Engine(e) => f.write_str(e),
        }
    }
}

/// What became of the database's container while its dump ran.
enum DatabaseFate {
    /// Not running now: "db is exited (exit code 0)".
    Down(String),
    /// Told to stop during the dump and still shutting down after `DB_SETTLE`.
    Stopping(String),
    /// It stopped during the dump and Docker started it again (a restart policy).
    Restarted(String),
}

/// How long a database told to stop may take to shut down before hoist says it is stopping
/// (Docker's own stop timeout is 10 s).
const DB_SETTLE: Duration = Duration::from_secs(30);

/// Whether the database's container stopped while its dump ran (since `began`), or None when
/// it ran throughout. pg_dump's connection is cut as soon as the server begins to shut down,
/// before its container has exited, so a container that Docker was told to stop is watched
/// until it settles rather than judged at the first look.
async fn stopped_database(
    engine: &crate::docker::Engine,
    view: &facts::StackView,
    began: jiff::Timestamp,
) -> Option<DatabaseFate> {
    let db = view.database.as_ref()?;
    let service = db.service.as_str();
    let events = crate::docker::events::project_events_between(
        engine,
        &view.project,
        &crate::docker::events::unix_time(began),
        &crate::docker::events::unix_time(jiff::Timestamp::now()),
    )
    .await
    .unwrap_or_else(|e| {
        tracing::warn!("the database's events during the dump: {e}");
        Vec::new()
    });
    let stop_events: Vec<_> = events
        .iter()
        .filter(|e| e.service == service && e.is_stop())
        .collect();
    let deadline = Instant::now() + DB_SETTLE;
    loop {
        let containers = crate::docker::stack_containers(engine, &view.project)
            .await
            .ok()?;
        let c = containers.iter().find(|c| c.service == service)?;
        if !c.is_running() {
            return Some(DatabaseFate::Down(format!(
                "{service} is {} (exit code {})",
                c.state, c.exit_code
            )));
        }
        if stop_events.is_empty() {
            return None;
        }
        // A `die` already seen with the container running again: Docker restarted it.
        if let Some(died) = stop_events.iter().find(|e| e.action == "die") {
            return Some(DatabaseFate::Restarted(format!(
                "{service} stopped during the dump (exit code {}) and Docker started it again",
                died.exit_code
                    .map_or("unknown".to_string(), |c| c.to_string())
            )));
        }
        if Instant::now() >= deadline {
            return Some(DatabaseFate::Stopping(format!(
                "{service} was told to stop during the dump ({}) and still runs {} s later",
                stop_events
                    .iter()
                    .map(|e| e.action.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                DB_SETTLE.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The backup failed: nothing was changed, the run ends with `sentence`.
async fn backup_failed(
    run: &mut Run<'_>,
    step: (Instant, Option<i64>),
    mut summary: Value,
    sentence: String,
) -> Result<(PathBuf, Option<crate::backup::Backup>), Finished> {
    run.finish(Step::Backup, step, false, Some(sentence.clone()))
        .await;
    summary["error"] = json!(sentence);
    Err(Finished {
        exit_code: 1,
        sentence,
        summary,
    })
}

/// What state a failure after a pin leaves, and how to go back by hand.
fn after_pin_state(
    stack: &crate::stack::Stack,
    pinned: &str,
    from: &str,
    backup: &std::path::Path,
    what: String,
) -> String {
    let variable = &stack.detection.version.variable;
    format!(
        "{what}. State: .env now pins {variable} to {pinned}; the backup taken before the change is in {} (RESTORE.md there says how to restore by hand). To go back: set {variable}={from} in .env and run `docker compose up -d`; if a migration already ran, restore the backup first.",
        backup.display()
    )
}
