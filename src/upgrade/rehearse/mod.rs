//! The rehearsal (`hoist upgrade --to V --rehearse`): after the backup and the pull, the same
//! upgrade on a throwaway copy of the app, before anything of the real one changes. A Compose
//! project of its own (`model.rs`) with the database loaded from the dump just taken, copies of
//! the app's data, no published ports, no way out of its network; restarted, watched and
//! verified by the same steps as the real upgrade; then removed whatever happened. What a hoist
//! killed outright left is removed by the next upgrade of the project (`clear_left_behind`).
mod data;
mod leftovers;
mod model;
mod offer;
mod report;

use data::{copy_data, database_from_dump};
pub(super) use leftovers::clear_left_behind;
use leftovers::{rehearsal_name, teardown};
pub(super) use offer::offer;
use report::{Failed, Found, Seen};

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use crate::context::Context;
use crate::docker::compose_cli;
use crate::probe::facts::{self, Facts, StackView};
use crate::run::{Event, Run, Step, Stop};
use crate::stack::Stack;
use crate::steps::engine_loss::EngineLoss;
use crate::steps::restart::{WatchUntil, restart_and_watch};

/// What the rehearsal found: passed or not, in words and as the summary's `rehearsal` object.
pub(super) struct Rehearsed {
    pub(super) passed: bool,
    /// It failed because the new version failed on the copy (else: no copy could be made).
    pub(super) by_the_release: bool,
    /// One sentence: what happened on the copy.
    pub(super) sentence: String,
    pub(super) report: Value,
    /// The failing containers' last lines, when it failed.
    pub(super) evidence: BTreeMap<String, Vec<String>>,
}

/// What the upgrade hands the rehearsal.
pub(super) struct Rehearsal<'a> {
    pub(super) ctx: &'a Context,
    pub(super) stack: &'a Stack,
    pub(super) facts: &'a Facts,
    pub(super) engine_loss: &'a EngineLoss,
    pub(super) backup_dir: &'a Path,
    pub(super) hops: &'a [(String, BTreeMap<String, String>)],
    pub(super) stop: &'a Stop,
}

/// Why no rehearsal of this stack can be made, known from its files alone: said before the
/// backup, so that a refusal stops nothing and copies nothing.
pub(super) async fn precheck(facts: &crate::probe::facts::Facts) -> Result<(), String> {
    let view = &facts.view;
    // The copy is a Compose project made from Compose's view of the files; a Swarm stack's
    // copy would not run as the stack does (its update_config, its placement, its networks).
    if let Some(stack) = crate::probe::swarm::stack_name(facts.swarm.as_ref()) {
        return Err(format!(
            "the app runs as the Docker Swarm stack {stack:?}, and hoist makes its throwaway copy only of a Compose project"
        ));
    }
    if view.database_declined {
        return Err(NO_DUMP.into());
    }
    let tool = compose_cli::find().await.map_err(|e| e.to_string())?;
    let config = view.compose().config_json(&tool).await?;
    let (images, copies) = (BTreeMap::new(), data::Copies::default());
    let plan = model::Plan {
        project: "hoist-rehearsal-000000-check",
        of: &view.project,
        images: &images,
        database_service: view.database.as_ref().map(|d| d.service.as_str()),
        copies: &copies.copies,
        without: &copies.without,
    };
    model::model(&config, &plan).map(|_| ())
}

const NO_DUMP: &str = "the settings say `database: none`, so the backup holds no dump to give the copy; a copy started on an empty database would migrate nothing of yours, and one given the real database would change it";

/// Runs the rehearsal and removes it, whatever happened. Its steps show as progress of
/// `Step::Rehearse`; its checks as checks named "rehearsal: …".
pub(super) async fn rehearse(run: &mut Run<'_>, r: &Rehearsal<'_>) -> Rehearsed {
    let started = Instant::now();
    let name = rehearsal_name(&r.facts.view.project);
    let dir = r.ctx.state_dir.join("rehearsals").join(&name);
    let step = run
        .start(
            Step::Rehearse,
            &format!("trying the upgrade on a throwaway copy ({name})"),
        )
        .await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let work = async move {
        let tx = tx;
        let mut inner = Run::new(&tx);
        let outcome = on_a_copy(&mut inner, r, &name, &dir).await;
        let removed = teardown(r, &name, &dir).await;
        (outcome, removed, name)
    };
    let forward = async {
        let mut seen = Seen::default();
        while let Some(e) = rx.recv().await {
            seen.forward(run, e);
        }
        seen
    };
    let ((outcome, removed, name), seen) = tokio::join!(work, forward);
    let mut report = match &outcome {
        Ok(o) | Err(Failed { found: o, .. }) => o.report(),
    };
    report["project"] = json!(name);
    report["migrations"] = json!(seen.migrations);
    report["took_ms"] = json!(started.elapsed().as_millis() as u64);
    report["removed"] = json!(removed.is_ok());
    if let Err(e) = &removed {
        run.progress(Step::Rehearse, e.clone());
        report["left_behind"] = json!(e);
    }
    let rehearsed = match outcome {
        Ok(o) => {
            report["passed"] = json!(true);
            let sentence = format!(
                "the rehearsal passed: on a copy of the app, {} came up and verified{}",
                r.hops.last().map_or("the new version", |(v, _)| v.as_str()),
                o.migration_words(&seen.migrations)
            );
            Rehearsed {
                passed: true,
                by_the_release: false,
                sentence,
                report,
                evidence: BTreeMap::new(),
            }
        }
        Err(Failed {
            reason,
            by_the_release,
            ..
        }) => {
            report["passed"] = json!(false);
            report["failure"] = json!(reason);
            report["by_the_release"] = json!(by_the_release);
            let mut evidence = seen.evidence;
            if !evidence.is_empty() {
                report["evidence"] = json!(evidence);
            }
            evidence.retain(|_, lines| !lines.is_empty());
            Rehearsed {
                passed: false,
                by_the_release,
                sentence: if by_the_release {
                    format!("the rehearsal failed: {reason}")
                } else if r.stop.requested() {
                    format!("the rehearsal ended early ({reason}) and its copy was removed")
                } else {
                    format!("the rehearsal could not be made: {reason}")
                },
                report,
                evidence,
            }
        }
    };
    let words = Some(rehearsed.sentence.clone());
    run.finish(Step::Rehearse, step, rehearsed.passed, words)
        .await;
    rehearsed
}

/// The copy made, started and checked; Err: why it failed, with what was found before.
async fn on_a_copy(
    run: &mut Run<'_>,
    r: &Rehearsal<'_>,
    name: &str,
    dir: &Path,
) -> Result<Found, Failed> {
    let mut found = Found::default();
    macro_rules! fail {
        ($reason:expr) => {
            return Err(Failed {
                reason: $reason,
                found,
                by_the_release: false,
            })
        };
    }
    macro_rules! release_failed {
        ($reason:expr) => {
            return Err(Failed {
                reason: $reason,
                found,
                by_the_release: true,
            })
        };
    }
    let Ok(docker) = &r.facts.docker else {
        fail!("Docker is not reachable".into());
    };
    let engine = &docker.engine;
    let view = &r.facts.view;
    if view.database.is_none() && !view.database_declined {
        // Nothing to load: fine (an app without a database), said in the notes.
        found.notes.push(
            "the stack has no database hoist knows of: the copy starts with its data only".into(),
        );
    }
    if view.database_declined {
        fail!(NO_DUMP.into());
    }
    if let Some(db) = &view.database
        && db.kind == crate::db::DbKind::Sqlite
    {
        found.notes.push(
            "the SQLite database is copied with the data while the app runs: a write during the copy may be missing from it".into(),
        );
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        fail!(format!("{} could not be made: {e}", dir.display()));
    }
    let tool = match compose_cli::find().await {
        Ok(t) => t,
        Err(e) => fail!(e.to_string()),
    };
    let config = match view.compose().config_json(&tool).await {
        Ok(c) => c,
        Err(e) => fail!(e),
    };

    // The data: each mount the app writes, copied into a volume of the rehearsal's.
    run.progress(Step::Restart, "copying the app's data");
    let copy_started = Instant::now();
    let copies = match copy_data(run, r, docker, name, &config, &mut found).await {
        Ok(c) => c,
        Err(e) => fail!(e),
    };
    found.copy_ms = copy_started.elapsed().as_millis() as u64;
    if r.stop.requested() {
        fail!("it was stopped before the copy started".into());
    }

    let rview = rehearsal_view(view, name, dir);
    let mut rstack = r.stack.clone();
    // The smoke checks reach the real app's ports: the copy's are made once it runs.
    rstack.detection.smoke.clear();
    let published = model::published(&config);
    let first_images = r.hops.first().map(|(_, t)| t.clone()).unwrap_or_default();

    // The database first, empty, then the dump loaded into it.
    if let Some(db) = &view.database
        && db.kind != crate::db::DbKind::Sqlite
    {
        let at_start = BTreeMap::new();
        if let Err(e) = write_model(
            &config,
            name,
            view,
            &at_start,
            &copies,
            dir,
            &mut Vec::new(),
        ) {
            fail!(e);
        }
        let restore_started = Instant::now();
        if let Err(e) = database_from_dump(run, r, &rview, &tool, db).await {
            fail!(e);
        }
        found.restore_ms = Some(restore_started.elapsed().as_millis() as u64);
    }
    if r.stop.requested() {
        fail!("it was stopped before the new version started on the copy".into());
    }

    let schema_before = r.facts.db.as_ref().and_then(|d| d.as_ref().ok());
    let said_before_hops = found.notes.len();
    for (hop, targets) in r.hops {
        let images = if targets.is_empty() {
            &first_images
        } else {
            targets
        };
        // Each hop's model says the same: its notes once, after what the copy's data said.
        found.notes.truncate(said_before_hops);
        if let Err(e) = write_model(&config, name, view, images, &copies, dir, &mut found.notes)
            .and_then(|()| version_in_environment(dir, &r.stack.detection.version.variable, hop))
        {
            fail!(e);
        }
        if hop == &r.hops[0].0 {
            for note in &found.notes {
                run.progress(Step::Restart, format!("on the copy: {note}"));
            }
        }
        let up_started = Instant::now();
        let up = restart_and_watch(
            run,
            &rstack,
            &rview,
            engine,
            targets,
            hop,
            r.engine_loss,
            WatchUntil::Ready,
        )
        .await;
        let up = match up {
            Ok(up) => up,
            Err(f) => {
                run.emit(Event::Failure {
                    reason: f.reason.clone(),
                    evidence: f.evidence.unwrap_or_default(),
                });
                release_failed!(f.reason);
            }
        };
        let ready_ms = up_started.elapsed().as_millis() as u64;
        let _ = up.end().await;
        let step = run.start(Step::Verify, "checking the copy").await;
        let after = facts::gather(r.ctx, rview.clone()).await;
        let mut problems = crate::steps::verify::running_problems(&after, targets);
        run.emit(Event::Check {
            what: "containers".into(),
            ok: problems.is_empty(),
            detail: if problems.is_empty() {
                "run the new image, healthy, no restart".into()
            } else {
                problems.join("; ")
            },
        });
        problems.extend(super::hop::data_checks(run, schema_before, &after));
        problems.extend(smoke_on_copy(run, r.stack, &published, &after, &mut found.notes).await);
        let reached = after
            .db
            .as_ref()
            .and_then(|d| d.as_ref().ok())
            .and_then(|p| p.migrations.as_ref().map(|m| m.revision.clone()));
        found
            .hops
            .push(json!({"to": hop, "ready_ms": ready_ms, "schema_after": reached}));
        if !problems.is_empty() {
            let reason = format!("{hop} did not verify on the copy: {}", problems.join("; "));
            run.finish(Step::Verify, step, false, Some(reason.clone()))
                .await;
            release_failed!(reason);
        }
        run.finish(Step::Verify, step, true, None).await;
        if r.stop.requested() {
            fail!(format!("it was stopped after {hop} verified on the copy"));
        }
    }
    Ok(found)
}

/// The rehearsal's own view: its project, its directory, its model file.
fn rehearsal_view(view: &StackView, name: &str, dir: &Path) -> StackView {
    let mut rview = view.clone();
    rview.project = name.to_string();
    rview.project_dir = dir.to_path_buf();
    rview.compose_file = dir.join("compose.json");
    rview.compose_files = vec![dir.join("compose.json")];
    rview.given_files = vec![dir.join("compose.json")];
    // None there: Compose reads no variables the model does not already hold.
    rview.env_file = dir.join(".env");
    rview.env_files = Vec::new();
    rview
}

/// Writes the model with `images` (service -> image) into `dir/compose.json`.
fn write_model(
    config: &Value,
    name: &str,
    view: &StackView,
    images: &BTreeMap<String, String>,
    copies: &data::Copies,
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let plan = model::Plan {
        project: name,
        of: &view.project,
        images,
        database_service: view.database.as_ref().map(|d| d.service.as_str()),
        copies: &copies.copies,
        without: &copies.without,
    };
    let m = model::model(config, &plan)?;
    notes.extend(m.notes);
    let text = serde_json::to_string_pretty(&m.json).map_err(|e| e.to_string())?;
    crate::stack::pin::write_atomic(&dir.join("compose.json"), &text)
        .map_err(|e| format!("the copy's compose file could not be written: {e}"))
}

/// The version variable as the real upgrade's pin sets it: a service that reads the pinned
/// variable into its environment (`env_file: .env`, `VERSION: ${APP_VERSION}`) sees the new
/// version on the copy too. Compose's view was read with the old pin.
fn version_in_environment(dir: &Path, variable: &str, version: &str) -> Result<(), String> {
    if variable.is_empty() {
        return Ok(());
    }
    let path = dir.join("compose.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("the copy's compose file could not be read: {e}"))?;
    let mut json: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the copy's compose file could not be read: {e}"))?;
    if !model::set_environment(&mut json, variable, version) {
        return Ok(());
    }
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    crate::stack::pin::write_atomic(&path, &text)
        .map_err(|e| format!("the copy's compose file could not be written: {e}"))
}

/// The smoke checks, each sent to the copy's container instead of the real app's port; one the
/// copy cannot be reached by is said, not run. Returns the problems.
async fn smoke_on_copy(
    run: &Run<'_>,
    stack: &Stack,
    published: &[model::Published],
    after: &Facts,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let address_of = |service: &str| -> Option<String> {
        let running = after.docker.as_ref().ok()?;
        let c = running.of_service(service).into_iter().next()?;
        c.addresses.first().map(|(_, ip)| ip.clone())
    };
    let mut problems = Vec::new();
    for s in &stack.detection.smoke {
        let Some(url) = model::rehearsal_url(&s.url, published, &address_of) else {
            let note = format!(
                "the check {} {} goes to the real app, so it is not run on the copy",
                s.method, s.url
            );
            run.progress(Step::Verify, format!("on the copy: {note}"));
            notes.push(note);
            continue;
        };
        let mut on_copy = s.clone();
        on_copy.url = url.clone();
        let result = crate::steps::smoke::check(&on_copy).await;
        run.emit(Event::Check {
            what: format!("{} {url} on the copy (the app's {})", s.method, s.url),
            ok: result.error.is_none(),
            detail: format!(
                "{} in {} ms{}",
                result
                    .status
                    .map_or("no answer".to_string(), |c| c.to_string()),
                result.latency_ms,
                result
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        });
        if let Some(e) = result.error {
            problems.push(format!("{}: {e}", s.url));
        }
    }
    problems.extend(app_checks_on_copy(run, stack, published, after, &address_of, notes).await);
    problems
}

/// The app's own checks (`x-hoist: checks`) on the copy: a command in a service runs in the
/// copy's container, a WebSocket goes to the copy's address; a metrics rule is not run (it
/// judges live traffic, and nobody uses the copy), and that is said. Returns the problems.
async fn app_checks_on_copy(
    run: &Run<'_>,
    stack: &Stack,
    published: &[model::Published],
    after: &Facts,
    address_of: &(dyn Fn(&str) -> Option<String> + Sync),
    notes: &mut Vec<String>,
) -> Vec<String> {
    use crate::stack::checks::AppCheck;
    let mut on_copy = Vec::new();
    let mut say = |note: String| {
        run.progress(Step::Verify, format!("on the copy: {note}"));
        notes.push(note);
    };
    for check in &stack.detection.app_checks {
        match check {
            AppCheck::Exec(_) => on_copy.push(check.clone()),
            AppCheck::Websocket(ws) => match model::rehearsal_url(&ws.url, published, address_of) {
                Some(url) => on_copy.push(AppCheck::Websocket(crate::stack::checks::WsCheck {
                    url,
                    ..ws.clone()
                })),
                None => say(format!(
                    "the check {} goes to the real app, so it is not run on the copy",
                    check.what()
                )),
            },
            AppCheck::Metrics(_) => say(format!(
                "the check {} is not run on the copy: a metrics rule judges live traffic, and nobody uses the copy",
                check.what()
            )),
        }
    }
    if on_copy.is_empty() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for o in crate::steps::checks::run_all(&on_copy, after.docker.as_ref().ok()).await {
        if !o.ok {
            problems.push(format!("{}: {}", o.what, o.detail));
        }
        run.emit(Event::Check {
            what: format!("{} on the copy", o.what),
            ok: o.ok,
            detail: o.detail,
        });
    }
    problems
}
