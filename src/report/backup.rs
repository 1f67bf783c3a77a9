//! `hoist backup`: take a backup now, record it in the journal, say where it is and how to copy
//! it off the server.
use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{Value, json};

use super::Output;
use crate::backup::{self, Progress};
use crate::context::Context;
use crate::journal::{BackupFileRow, Journal, NewBackup};
use crate::probe::facts::{self, Facts};
use crate::units::human_bytes;

pub async fn run(ctx: &Context) -> Output {
    let (_stack, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return Output::failed("backup", 2, err.to_string()),
    };
    let facts = facts::gather(ctx, view).await;
    let backup_root = facts.view.backup_dir.clone();
    if let Err((code, sentence)) = preconditions(&facts) {
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
            "backup",
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
    let source = source_from(&facts, docker, running.as_deref());
    let events = std::sync::Mutex::new(Vec::<Value>::new());
    let record = |p: Progress| {
        let event = match p {
            // The command's output is collected: a line per chunk would say nothing more.
            Progress::Read { .. } => return,
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
    let ms = started.elapsed().as_millis() as u64;
    let mut events = events.into_inner().unwrap_or_default();
    match result {
        Ok(b) => {
            if let Ok(step) = step {
                let _ = journal.step_finished(step, "done", ms, None).await;
            }
            let recorded =
                journal_backup(&journal, &run_id, &view.project, running.as_deref(), &b).await;
            let summary = json!({
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
            });
            let _ = journal
                .finish_run(
                    &run_id,
                    "succeeded",
                    0,
                    "backup taken",
                    &summary.to_string(),
                )
                .await;
            journal.close().await;
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
            let _ = writeln!(
                text,
                "Total {}. Checked: the dump is complete, every archive lists, checksums are in manifest.json.",
                human_bytes(b.total_bytes)
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
                let _ = journal
                    .step_finished(step, "failed", ms, Some(&sentence))
                    .await;
            }
            let _ = journal
                .finish_run(&run_id, "failed", 1, &sentence, "")
                .await;
            journal.close().await;
            let mut out = Output::failed("backup", 1, sentence);
            out.events.splice(0..0, events);
            out
        }
    }
}

/// What must hold before a backup can be taken: Docker answers, and the database can be read
/// (a dump of a database hoist cannot reach would not be a backup). The reason has no final
/// period: callers add what they did not change.
pub fn preconditions(facts: &Facts) -> Result<(), (u8, String)> {
    if let Err(e) = &facts.docker {
        return Err((e.exit_code() as u8, e.to_string()));
    }
    if let (Some(spec), Some(Err(e))) = (&facts.view.database, &facts.db) {
        return Err((
            3,
            format!(
                "the {} database (service {}) cannot be read, so it cannot be backed up: {e}",
                spec.kind.name(),
                spec.service
            ),
        ));
    }
    let disk = super::check::disk_finding(facts);
    if disk.status == super::check::Level::Fail {
        return Err((3, disk.message));
    }
    Ok(())
}

/// `scp -r user@host:/path .`, with the server's address from the SSH session when there is one.
pub fn copy_command(dir: &std::path::Path) -> String {
    let host = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|c| c.split_whitespace().nth(2).map(str::to_string))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "YOUR-SERVER".into());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".into());
    format!("scp -r {user}@{host}:{} .", dir.display())
}

/// What a backup of this stack takes, from the gathered facts: the database with its running
/// container and probe, each data mount with a container of a service that mounts it.
pub fn source_from<'a>(
    facts: &'a Facts,
    docker: &'a facts::Running,
    running_version: Option<&'a str>,
) -> backup::Source<'a> {
    let view = &facts.view;
    let database = match (&view.database, &facts.db) {
        (Some(spec), Some(Ok(probe))) => docker
            .of_service(&spec.service)
            .into_iter()
            .find(|c| c.is_running())
            .map(|c| (spec, c, probe)),
        _ => None,
    };
    let data = view
        .data
        .iter()
        .filter_map(|m| {
            m.services
                .iter()
                .flat_map(|s| docker.of_service(s))
                .next()
                .map(|c| (m, c))
        })
        .collect();
    backup::Source {
        project: &view.project,
        project_dir: &view.project_dir,
        compose_file: &view.compose_file,
        env_file: &view.env_file,
        version_variable: view.version_variable.as_deref().unwrap_or(""),
        upgraded: &view.upgraded,
        pinned: view.pinned.as_deref(),
        running_version,
        database,
        data,
        containers: &docker.containers,
        estimate: Some(Box::new(|| {
            Some(super::check::backup_estimate(facts).0).filter(|&n| n > 0)
        })),
    }
}

/// Records a finished backup, with its files, in the journal.
pub async fn journal_backup(
    journal: &Journal,
    run_id: &str,
    project: &str,
    app_version: Option<&str>,
    b: &backup::Backup,
) -> Result<(), crate::journal::JournalError> {
    let files = b
        .manifest
        .files
        .iter()
        .map(|f| BackupFileRow {
            name: &f.name,
            kind: &f.kind,
            size_bytes: f.size_bytes,
            sha256: &f.sha256,
        })
        .collect();
    journal
        .record_backup(&NewBackup {
            id: &b.id,
            run_id,
            project,
            path: &b.dir,
            size_bytes: b.total_bytes,
            manifest_sha256: &b.manifest_sha256,
            app_version,
            schema_revision: b
                .manifest
                .database
                .as_ref()
                .and_then(|d| d.revision.as_deref()),
            schema_fingerprint: b.manifest.database.as_ref().map(|d| d.fingerprint.as_str()),
            files,
        })
        .await
}
