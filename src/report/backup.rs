//! `hoist backup`: take a backup now, record it in the journal, say where it is and how to copy
//! it off the server.
use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{Value, json};

use super::Output;
use crate::backup::{self, Progress};
use crate::context::Context;
use crate::journal::{Journal, Logged};
use crate::preflight::backup_preconditions;
use crate::probe::facts;
use crate::steps::backup::{copy_command, journal_backup, source_from};
use crate::units::human_bytes;

/// Takes a backup; `live` (when given) hears each part as it starts and ends, for a person
/// watching a long backup.
pub async fn run(ctx: &Context, live: Option<&(dyn Fn(&str) + Sync)>) -> Output {
    let (stack, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return Output::failed("backup", 2, err.to_string()),
    };
    // Said in the log and in --json's events: the command's own output is its report.
    let left_behind = crate::steps::left_behind::start_again(ctx, &view.project).await;
    for said in &left_behind {
        tracing::warn!("{said}");
    }
    let facts = facts::gather(ctx, view).await;
    let backup_root = facts.view.backup_dir.clone();
    let estimate = crate::preflight::backup_estimate(&facts).await;
    if let Err((code, sentence)) = backup_preconditions(&facts, &estimate) {
        let sentence = sentence.trim_end_matches('.');
        return Output::failed("backup", code, format!("{sentence}. Nothing was changed."));
    }
    let Ok(docker) = &facts.docker else {
        return Output::failed("backup", 3, "Docker is not reachable".into());
    };
    let journal = match Journal::open(&ctx.state_dir).await {
        Ok(j) => j,
        Err(e) => return Output::failed("backup", 1, e.to_string()),
    };
    let services = crate::probe::services::services(&facts);
    let running = crate::probe::services::running_version(&services);
    let view = &facts.view;
    let run_id = match journal
        .start_run(
            crate::journal::RunKind::Backup,
            &view.project,
            &view.project_dir,
            running.as_deref(),
            None,
        )
        .await
    {
        Ok(id) => id,
        Err(e) => return Output::failed("backup", 1, e.to_string()),
    };
    let recorder = backup::hold::Recorder {
        journal: &journal,
        run_id: &run_id,
    };
    let mut source = source_from(
        &facts,
        docker,
        running.as_deref(),
        estimate.bytes,
        Some(recorder),
    );
    if let Some(t) = stack.settings.timeout_stop {
        source.stop_timeout = t;
    }
    let events = std::sync::Mutex::new(Vec::<Value>::new());
    let record = |p: Progress| {
        if let Some(say) = live {
            match &p {
                Progress::Note(said) => say(said),
                Progress::Started { part } => say(&format!("writing {part}")),
                Progress::Finished { part, .. } => say(&format!("{part} written")),
                Progress::Read { .. } => {}
            }
        }
        let event = match p {
            // The command's output is collected: a line per chunk would say nothing more.
            Progress::Read { .. } => return,
            Progress::Note(said) => json!({"type": "progress", "note": said}),
            Progress::Started { part } => {
                json!({"type": "progress", "part": part, "state": "started"})
            }
            Progress::Finished { part, bytes } => {
                json!({"type": "progress", "part": part, "state": "finished", "bytes": bytes})
            }
        };
        if let Ok(mut list) = events.lock() {
            list.push(event);
        }
    };
    let started = Instant::now();
    let step = journal.step_started(&run_id, "backup").await;
    let result = backup::take(&docker.engine, &source, &backup_root, &record).await;
    drop(source);
    let ms = started.elapsed().as_millis() as u64;
    let mut events = events.into_inner().unwrap_or_default();
    match result {
        Ok(b) => {
            if let Ok(step) = step {
                journal
                    .step_finished(step, "done", ms, None)
                    .await
                    .logged("record a step's end");
            }
            let recorded =
                journal_backup(&journal, &run_id, &view.project, running.as_deref(), &b).await;
            let summary = taken_summary(&run_id, &b, ms);
            journal
                .finish_run(
                    &run_id,
                    &crate::journal::Outcome::Succeeded,
                    0,
                    "backup taken",
                    &summary.to_string(),
                )
                .await
                .logged("record how the run ended");
            journal.close().await;
            let text = taken_text(&b, ms);
            let mut errors = String::new();
            if let Err(e) = recorded {
                let _ = writeln!(errors, "hoist: warning: the backup is complete, but {e}");
            }
            events.push(summary);
            Output {
                exit_code: 0,
                text,
                errors,
                events,
            }
        }
        Err(e) => {
            let sentence = format!(
                "the backup failed: {e}. Nothing was changed, and no partial backup was left in {}.",
                backup_root.display()
            );
            if let Ok(step) = step {
                journal
                    .step_finished(step, "failed", ms, Some(&sentence))
                    .await
                    .logged("record a step's end");
            }
            journal
                .finish_run(&run_id, &crate::journal::Outcome::Failed, 1, &sentence, "")
                .await
                .logged("record how the run ended");
            journal.close().await;
            let mut out = Output::failed("backup", 1, sentence);
            out.events.splice(0..0, events);
            out
        }
    }
}

/// The summary of a backup taken: what `--json` prints last and the journal keeps.
fn taken_summary(run_id: &str, b: &backup::Backup, ms: u64) -> Value {
    json!({
        "type": "summary",
        "command": "backup",
        "outcome": "succeeded",
        "run_id": run_id,
        "backup": b.dir,
        "id": b.id,
        "total_bytes": b.total_bytes,
        "manifest_sha256": b.manifest_sha256,
        "duration_ms": ms,
        "files": b.manifest.files,
        "copy_command": copy_command(&b.dir),
        "removed_partials": b.removed_partials,
        "exit_code": 0,
    })
}

/// What a person reads after a backup: where it is, its files, and how to copy it off the server.
fn taken_text(b: &backup::Backup, ms: u64) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Backup taken in {:.1} s: {}",
        ms as f64 / 1000.0,
        b.dir.display()
    );
    for f in &b.manifest.files {
        let _ = writeln!(
            text,
            "  {:28} {:>9}  sha256 {}",
            f.name,
            human_bytes(f.size_bytes),
            &f.sha256[..16]
        );
    }
    let has = |kind: &str| b.manifest.files.iter().any(|f| f.kind == kind);
    let command_kind = b
        .manifest
        .database
        .as_ref()
        .is_some_and(|d| d.kind == "command");
    let surreal = b
        .manifest
        .database
        .as_ref()
        .is_some_and(|d| d.kind == "surrealdb");
    let checked: Vec<&str> = [
        // A command's dump is in a format only its restore command reads.
        (
            has("dump") && command_kind,
            "the dump command exited 0 and its output gunzips whole (hoist cannot read its format)",
        ),
        // SurrealDB's export has no closing line to prove it whole.
        (
            has("dump") && surreal,
            "SurrealDB's export was read to its end, is not empty and gunzips whole",
        ),
        (
            has("dump") && !command_kind && !surreal,
            "the dump is complete",
        ),
        (has("archive") || has("beside"), "every archive lists"),
    ]
    .into_iter()
    .filter_map(|(yes, words)| yes.then_some(words))
    .collect();
    let _ = writeln!(
        text,
        "Total {}. Checked: {}checksums are in manifest.json.",
        human_bytes(b.total_bytes),
        checked.iter().map(|c| format!("{c}, ")).collect::<String>()
    );
    let _ = writeln!(text, "RESTORE.md inside says how to restore it by hand.\n");
    for p in &b.removed_partials {
        let _ = writeln!(
            text,
            "Removed {}: a partial backup left by a hoist that was stopped before it finished.",
            p.display()
        );
    }
    let _ = writeln!(
        text,
        "A backup on the same server is lost with the server. Copy it to your own computer (run this there):\n  {}",
        copy_command(&b.dir)
    );
    text
}
