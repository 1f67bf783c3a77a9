//! The upgrade engine, without any terminal: preflight, target check, backup and pull (they
//! overlap, `backup_pull.rs`), then for each release on the way pin, restart, watch and verify
//! (`hop.rs`). It reports through `Event`s on a channel, its questions too (`Event::Ask`, the
//! answer on a reply channel); the front ends (headless lines or JSON, the wizard) show them.
//! What follows a failure is `crate::recovery`'s.

mod backup_pull;
mod hop;
mod observe;
mod plan;
mod preflight;
mod rehearse;
mod resume;
mod swarm_hop;
mod target;

use crate::context::Context;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use crate::journal::{Journal, Outcome};
use crate::probe::facts::{self, Facts};
use crate::run::{Answer, Event, Question, Step, Stop, UpgradeSummary};

type Finished = crate::run::Finished<UpgradeSummary>;
use crate::run::{Run, record_finish};
use crate::stack::pin;
use crate::steps::StepError;
use crate::steps::engine_loss::EngineLoss;
use backup_pull::{BackedUp, backup_and_pull};
use preflight::Preflighted;
use resume::{Resumed, resumable};
use target::Targets;

pub struct Request {
    pub to: String,
    pub dry_run: bool,
    /// Step through each release (0.x) or minor (1.0+) on the way, or jump.
    pub path: PathMode,
    pub stop: Stop,
    /// Continue this interrupted run (its pin was written): no new backup, the run's backup
    /// kept for a rollback, unhealthy app services expected.
    pub resume: Option<String>,
    /// Try the upgrade on a throwaway copy first (`rehearse/`); the real one follows only if
    /// the copy verified, and on a second yes.
    pub rehearse: bool,
    /// Someone reads the upgrade's question and can take a rehearsal offered with it (the
    /// wizard, a terminal without `--yes`): only then is its cost worked out.
    pub offer_rehearsal: bool,
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
        summary: UpgradeSummary {
            error: Some(sentence.clone()),
            ..UpgradeSummary::new(to, Outcome::Refused, code)
        },
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
    /// How long each of the app's containers may take to stop (`timeouts.stop`).
    pub stop_timeout: std::time::Duration,
}

/// The upgrade itself: preflight, target, backup and pull, then each hop's pin, restart, watch
/// and verify. What follows a failure (a rollback, or waiting for a decision) is not decided
/// here: see `crate::recovery`.
pub async fn run(ctx: &Context, req: &Request, events: &UnboundedSender<Event>) -> Ended {
    let mut failed_change = None;
    let finished = prepare_and_run(ctx, req, events, &mut failed_change).await;
    Ended {
        finished,
        failed_change,
    }
}

async fn prepare_and_run(
    ctx: &Context,
    req: &Request,
    events: &UnboundedSender<Event>,
    failed_change: &mut Option<FailedChange>,
) -> Finished {
    let to = req.to.trim().to_string();
    let (mut stack, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return refused(2, err.to_string(), &to),
    };
    if let Err(sentence) = check_request(&stack, &to).await {
        return refused(2, sentence, &to);
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
            format!(
                "{} already pins {to}; there is nothing to upgrade.",
                stack.detection.version.site.place()
            ),
            &to,
        );
    }
    let mut run = Run::new(events);
    // A dry run changes nothing, not even that (check and status say what is left stopped).
    if !req.dry_run {
        for said in crate::steps::left_behind::start_again(ctx, &view.project).await {
            run.progress(Step::Preflight, said);
        }
    }

    let Preflighted {
        facts,
        estimate,
        overridden,
    } = match preflight::run_preflight(
        &mut run,
        ctx,
        req,
        view,
        continuing,
        &to,
        &mut stack.detection.smoke,
        &stack.detection.app_checks,
    )
    .await
    {
        Ok(p) => p,
        Err(finished) => return finished,
    };
    let Ok(docker) = &facts.docker else {
        return refused(3, "Docker is not reachable".into(), &to);
    };
    if req.rehearse
        && let Err(why) = rehearse::precheck(&facts).await
    {
        return refused(
            3,
            format!(
                "the rehearsal cannot be made: {why}. Nothing was changed, nothing was backed up. Upgrade without --rehearse if you accept the risk."
            ),
            &to,
        );
    }

    let Targets {
        hop_versions,
        hops,
        references,
    } = match target::check_target(&mut run, &stack, docker, req.path, &from, &to, continuing).await
    {
        Ok(t) => t,
        Err(finished) => return finished,
    };

    // The .env change, as the first hop makes it (each hop changes the same value).
    let change = match pin::plan_at(&stack.detection.version.site, &stack.env_path, &to) {
        Ok(c) => c,
        Err(e) => return refused(2, e.to_string(), &to),
    };
    let (to_pull, download_bytes) =
        match target::downloads(docker, &facts, &references, &to, estimate.bytes).await {
            Ok(d) => d,
            Err(finished) => return finished,
        };
    let mut plan = plan::build(
        &facts.view,
        &stack.env_path,
        (&from, &to),
        &hop_versions,
        &to_pull,
        download_bytes,
        &change,
        &overridden,
    );
    plan.swarm_stack = crate::probe::swarm::stack_name(facts.swarm.as_ref()).map(str::to_string);
    run.emit(Event::Plan {
        plan: Box::new(plan.clone()),
    });
    if req.dry_run {
        return Finished {
            exit_code: 0,
            sentence: "dry run: nothing was changed".into(),
            summary: UpgradeSummary {
                from: Some(from),
                plan: Some(Box::new(plan)),
                steps: run.steps,
                ..UpgradeSummary::new(&to, Outcome::DryRun, 0)
            },
        };
    }
    // A rehearsal changes nothing of the app: with --rehearse the question comes once it has
    // passed. Without it, the question offers one when the next release never ran here.
    let mut rehearse = req.rehearse;
    if !rehearse {
        let offer = match (&resumed, hop_versions.first()) {
            (None, Some(next)) if req.offer_rehearsal => {
                let database = match &facts.db {
                    Some(Ok(probe)) => probe.size_bytes,
                    _ => 0,
                };
                let sizes = (estimate.bytes.saturating_sub(database), database);
                rehearse::offer(ctx, &facts, next, hop_versions.len(), sizes).await
            }
            _ => None,
        };
        let question = Question::Upgrade {
            text: format!("Upgrade {} from {from} to {to}?", facts.view.project),
            rehearsal: offer,
        };
        match run.answer(question).await {
            Answer::Yes => {}
            Answer::RehearseFirst => rehearse = true,
            Answer::No => {
                // A "no" in the wizard, or a headless run without --yes.
                return refused(
                    3,
                    "the upgrade was not confirmed, so nothing was changed (without the wizard, --yes confirms it)".into(),
                    &to,
                );
            }
        }
    }

    let prepared = Prepared {
        stack: &stack,
        facts: &facts,
        docker,
        from: &from,
        to: &to,
        hops: &hops,
        to_pull: &to_pull,
        resumed: resumed.as_ref(),
        estimate_bytes: estimate.bytes,
        overridden: &overridden,
    };
    // Chosen at the question: the run goes on as `--rehearse` would have it.
    let chosen;
    let req = if rehearse && !req.rehearse {
        chosen = Request {
            to: req.to.clone(),
            dry_run: req.dry_run,
            path: req.path,
            stop: req.stop.clone(),
            resume: req.resume.clone(),
            rehearse: true,
            offer_rehearsal: false,
        };
        &chosen
    } else {
        req
    };
    journal_and_run(run, ctx, req, &prepared, failed_change).await
}

/// Why the request is refused (exit 2) before anything is looked at: a tag that is not one, a
/// version hoist cannot find, a shell variable that would override the pin.
async fn check_request(stack: &crate::stack::Stack, to: &str) -> Result<(), String> {
    if !crate::stack::locate::is_tag(to) {
        return Err(format!(
            "{to:?} is not a version tag (a tag is 1 to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`); nothing was changed. `hoist versions` lists the versions there are."
        ));
    }
    if crate::stack::locate::is_moving(to) {
        return Err(moving_target(stack, to).await);
    }
    // Going back is not an upgrade: the older version would start on what the newer one
    // migrated, and only a rollback or a restore puts the data back with it.
    let pinned = stack.detection.version.value.as_deref().unwrap_or_default();
    use crate::versions::order::Version;
    // A year-numbered version (`2024.8.3`) and a semantic one (`5.0`) are two schemes, not an
    // order: a project that changed schemes is not refused.
    let calendar = |v: &Version| v.parts.first().is_some_and(|p| *p >= 1000);
    if let (Some(now), Some(asked)) = (Version::parse(pinned), Version::parse(to))
        && now.variant == asked.variant
        && calendar(&now) == calendar(&asked)
        && asked < now
    {
        return Err(format!(
            "{to} is older than {pinned}, the version pinned now: an upgrade does not go back, since {to} would start on data {pinned} may have migrated. Nothing was changed. To go back, `hoist rollback` undoes the last upgrade (restoring its backup when a migration ran), or `hoist restore DIR` puts back a backup you choose (`hoist history` lists them)"
        ));
    }
    if let crate::stack::detect::Site::Unknown { reason } = &stack.detection.version.site {
        return Err(format!(
            "hoist cannot tell where the app's version is written: {reason}. Nothing was changed."
        ));
    }
    let variable = &stack.detection.version.variable;
    if !variable.is_empty() && std::env::var_os(variable).is_some() {
        return Err(format!(
            "{variable} is set in your shell's environment, which overrides .env: pinning it in .env would not take effect. Unset it (`unset {variable}`) and run hoist again."
        ));
    }
    Ok(())
}

/// The run from its start in the journal to its end there.
async fn journal_and_run(
    run: Run<'_>,
    ctx: &Context,
    req: &Request,
    p: &Prepared<'_>,
    failed_change: &mut Option<FailedChange>,
) -> Finished {
    let journal = match Journal::open(&ctx.state_dir).await {
        Ok(j) => j,
        Err(e) => return refused(1, e.to_string(), p.to),
    };
    let run_id = match journal
        .start_run(
            crate::journal::RunKind::Upgrade,
            &p.facts.view.project,
            &p.facts.view.project_dir,
            Some(p.from),
            Some(p.to),
        )
        .await
    {
        Ok(id) => id,
        Err(e) => return refused(1, e.to_string(), p.to),
    };
    let finished = journaled(run, &journal, &run_id, ctx, req, p, failed_change).await;
    journal.close().await;
    finished
}

/// What the preflight, the target and the plan settled, for the run itself.
struct Prepared<'a> {
    stack: &'a crate::stack::Stack,
    facts: &'a Facts,
    docker: &'a facts::Running,
    from: &'a str,
    to: &'a str,
    hops: &'a [(String, BTreeMap<String, String>)],
    to_pull: &'a [String],
    resumed: Option<&'a Resumed>,
    estimate_bytes: u64,
    overridden: &'a [String],
}

/// The run itself, recorded in the journal from its first step to how it ended; a failure
/// after the pin is handed on as a `FailedChange`.
async fn journaled<'j>(
    mut run: Run<'j>,
    journal: &'j Journal,
    run_id: &str,
    ctx: &Context,
    req: &Request,
    p: &Prepared<'_>,
    failed_change: &mut Option<FailedChange>,
) -> Finished {
    let Prepared {
        stack,
        facts,
        docker,
        from,
        to,
        hops,
        to_pull,
        resumed,
        estimate_bytes,
        overridden,
    } = *p;
    run.journal = Some(journal);
    run.run_id = Some(run_id.to_string());
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
        stack,
        facts,
        docker,
        from,
        to,
        hops,
        to_pull,
        req,
        resumed.as_ref().and_then(|r| r.backup.clone()),
        estimate_bytes,
    )
    .await;
    if let Some(r) = resumed {
        finished.summary.resumed_from = Some(r.run_id.clone());
    }
    finished.summary.overridden = overridden.to_vec();
    finished.summary.run_id = Some(run_id.to_string());
    finished.summary.steps = std::mem::take(&mut run.steps);
    finished.summary.duration_ms = Some(started_all.elapsed().as_millis() as u64);
    if let Some(why) = run.journal_lost() {
        crate::run::say_incomplete_record(&mut finished, &why);
    }
    if let Err(why) = record_finish(journal, run_id, &finished).await {
        crate::run::say_incomplete_record(&mut finished, &why);
    }
    drop(run);
    let summary = &mut finished.summary;
    if summary.engine_gone {
        // Nothing can be rolled back without the engine, and the release is not to blame.
        finished.sentence = format!(
            "{} Once Docker answers again, `hoist upgrade --to {to}` continues this upgrade with that backup, or `hoist rollback` goes back to {from}.",
            finished.sentence
        );
        summary.error = Some(finished.sentence.clone());
        if let Err(why) = record_finish(journal, run_id, &finished).await {
            crate::run::say_incomplete_record(&mut finished, &why);
        }
    } else if finished.exit_code == 1
        && summary.changed
        && summary.outcome != Outcome::Stopped
        && let Some(backup_dir) = summary.backup.clone()
    {
        *failed_change = Some(FailedChange {
            run_id: run_id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            failure: summary
                .failure
                .clone()
                .unwrap_or_else(|| finished.sentence.clone()),
            pinned_now: summary.pinned_now.clone().unwrap_or_else(|| to.to_string()),
            backup_dir,
            view: facts.view.clone(),
            stop_timeout: stack
                .settings
                .timeout_stop
                .unwrap_or(crate::steps::stop::DEFAULT_STOP),
        });
    }
    finished
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
    req: &Request,
    resume_backup: Option<PathBuf>,
    estimate_bytes: u64,
) -> Finished {
    let stop = &req.stop;
    let engine = &docker.engine;
    let services = crate::probe::services::services(facts);
    let running_version = crate::probe::services::running_version(&services);
    let schema_before = facts.db.as_ref().and_then(|r| r.as_ref().ok());
    let base = UpgradeSummary {
        from: Some(from.to_string()),
        schema_before: Some(
            schema_before.and_then(|p| p.migrations.as_ref().map(|m| m.revision.clone())),
        ),
        ..UpgradeSummary::new(to, Outcome::Failed, 1)
    };

    // A restart of the Docker daemon from here on is waited out and the step done again.
    let engine_loss = &EngineLoss::start(engine, stack.settings.timeout_engine);
    for said in rehearse::clear_left_behind(ctx, engine, &facts.view.project).await {
        run.progress(Step::Preflight, said);
    }
    let BackedUp {
        dir: backup_dir,
        taken,
        pulled,
        pull_step,
    } = match backup_and_pull(
        run,
        facts,
        docker,
        from,
        to_pull,
        engine_loss,
        resume_backup,
        running_version.as_deref(),
        estimate_bytes,
        &stack.settings,
        base.clone(),
    )
    .await
    {
        Ok(b) => b,
        Err(finished) => return finished,
    };
    let mut summary = base;
    summary.backup = Some(backup_dir.clone());
    let resuming = taken.is_none();
    if resuming {
        // The interrupted run already changed the stack: a failure from here offers the way back.
        summary.changed = true;
        summary.pinned_now = Some(to.to_string());
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
            "{} before any change: the stack still runs {from}, .env is as it was; the backup is in {}. Run the upgrade again when you are ready.",
            stop.stopped_words(),
            backup_dir.display()
        );
        summary.outcome = Outcome::Stopped;
        summary.exit_code = 3;
        summary.error = Some(sentence.clone());
        return Finished {
            exit_code: 3,
            sentence,
            summary,
        };
    }

    if req.rehearse && resuming {
        run.progress(
            Step::Rehearse,
            format!("no rehearsal: this run continues an upgrade that already pinned {to} and restarted the app, so there is nothing left to try on a copy first"),
        );
    }
    if req.rehearse && !resuming {
        let rehearsal = rehearse::Rehearsal {
            ctx,
            stack,
            facts,
            engine_loss,
            backup_dir: &backup_dir,
            hops,
            stop,
        };
        if let Err(finished) = rehearse_first(run, &rehearsal, from, to, &mut summary).await {
            return *finished;
        }
    }

    // Each hop: pin, restart, watch, verify. From the first pin on, a failure leaves the stack
    // changed, and says how.
    let journey = hop::Journey {
        ctx,
        stack,
        facts,
        engine,
        engine_loss,
        from,
        backup_dir: &backup_dir,
        schema_before,
    };
    hop::run_hops(&journey, run, hops, stop, to, summary).await
}

/// The rehearsal, then the user's go for the real upgrade. Err: how the run ends instead (a
/// failed rehearsal, a stop, no go), with nothing of the real app changed.
async fn rehearse_first(
    run: &mut Run<'_>,
    r: &rehearse::Rehearsal<'_>,
    from: &str,
    to: &str,
    summary: &mut UpgradeSummary,
) -> Result<(), Box<Finished>> {
    let project = &r.facts.view.project;
    let rehearsed = rehearse::rehearse(run, r).await;
    summary.rehearsal = Some(rehearsed.report.clone());
    let unchanged = format!(
        "Nothing of the real app was changed: {project} still runs {from}, .env is as it was; the backup just taken is in {}",
        r.backup_dir.display()
    );
    let end = |exit_code: u8, outcome: Outcome, sentence: String, summary: &mut UpgradeSummary| {
        summary.outcome = outcome;
        summary.exit_code = exit_code;
        summary.error = Some(sentence.clone());
        Box::new(Finished {
            exit_code,
            sentence,
            summary: summary.clone(),
        })
    };
    if r.stop.requested() {
        let sentence = format!(
            "{} during the rehearsal: {}. {unchanged}. Run the upgrade again when you are ready.",
            r.stop.stopped_words(),
            rehearsed.sentence
        );
        return Err(end(3, Outcome::Stopped, sentence, summary));
    }
    if !rehearsed.passed {
        summary.failure = Some(rehearsed.sentence.clone());
        if !rehearsed.evidence.is_empty() {
            summary.evidence = Some(rehearsed.evidence.clone());
        }
        if !rehearsed.by_the_release {
            // Not the release's fault: nothing was tried, so the run is refused, not failed.
            let sentence = format!(
                "{}. {unchanged}. Fix what stands in the way and rehearse again, or upgrade without --rehearse if you accept the risk.",
                rehearsed.sentence
            );
            return Err(end(3, Outcome::Refused, sentence, summary));
        }
        let sentence = format!(
            "{}. {unchanged}. The copy was removed; hoist shows its last log lines. Report them to the project, and wait for a release that fixes this.",
            rehearsed.sentence
        );
        return Err(end(1, Outcome::Failed, sentence, summary));
    }
    run.progress(Step::Rehearse, rehearsed.sentence.clone());
    let question = Question::Upgrade {
        text: format!("The rehearsal passed. Upgrade {project} from {from} to {to} now?"),
        rehearsal: None,
    };
    if !run.ask(question).await {
        let sentence = format!(
            "{}. The real upgrade was not confirmed, so it did not run. {unchanged}. To upgrade now: `{} upgrade --to {to} --yes` (it takes a new backup; add --rehearse to try it on a copy again).",
            rehearsed.sentence, r.ctx.hoist
        );
        return Err(end(3, Outcome::Refused, sentence, summary));
    }
    Ok(())
}

/// Why `--to latest` (or `release`, `16`) is refused, with the exact version it stands for now
/// when the registry says.
async fn moving_target(stack: &crate::stack::Stack, to: &str) -> String {
    let now = match crate::stack::targets::target_images(stack, to)
        .ok()
        .and_then(|i| i.into_values().next())
    {
        Some(image) => crate::versions::resolve_tag(&image, to)
            .await
            .ok()
            .flatten()
            .map(|r| r.version),
        None => None,
    };
    match now {
        Some(v) => format!(
            "`{to}` is a moving tag: it changes whenever the project publishes, so it pins nothing and a rollback could not find this version again. It is {v} now: run `hoist upgrade --to {v}`. Nothing was changed."
        ),
        None => format!(
            "`{to}` is a moving tag: it changes whenever the project publishes, so it pins nothing and a rollback could not find this version again. Give an exact version (`hoist versions` lists them). Nothing was changed."
        ),
    }
}

/// What state a failure after a pin leaves, and how to go back by hand.
pub(super) fn after_pin_state(
    stack: &crate::stack::Stack,
    pinned: &str,
    from: &str,
    backup: &std::path::Path,
    what: String,
) -> String {
    after_pin_in(stack, None, pinned, from, backup, what)
}

/// `after_pin_state` for a stack that may run as Swarm stack `swarm`, whose way back by hand is
/// a `docker stack deploy` with .env's variables in the shell.
pub(super) fn after_pin_in(
    stack: &crate::stack::Stack,
    swarm: Option<&str>,
    pinned: &str,
    from: &str,
    backup: &std::path::Path,
    what: String,
) -> String {
    let version = &stack.detection.version;
    // ".env now pins APP_VERSION to 1.3", "compose.yaml now pins 1.3".
    let pins = if version.variable.is_empty() {
        format!("{} now pins {pinned}", version.file_label())
    } else {
        format!(".env now pins {} to {pinned}", version.variable)
    };
    format!(
        "{what}. State: {pins}; the backup taken before the change is in {} (RESTORE.md there says how to restore by hand). To go back: `hoist rollback` (it restores the backup first when a migration ran, and asks before anything is lost); by hand: set {} and run {}, restoring the backup first if a migration already ran.",
        backup.display(),
        version.assignment(from),
        match swarm {
            Some(name) => format!(
                "`set -a; . ./.env; set +a; docker stack deploy -c {} {name}`",
                stack
                    .compose_path
                    .file_name()
                    .map_or_else(|| "compose.yaml".into(), |f| f.to_string_lossy())
            ),
            None => "`docker compose up -d`".to_string(),
        }
    )
}
