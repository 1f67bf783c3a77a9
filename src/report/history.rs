//! `hoist history`: the project's past runs with their steps, and its backups, from the journal.
use std::fmt::Write as _;

use serde_json::json;

use super::Output;
use crate::context::Context;
use crate::journal::Journal;
use crate::probe::facts;
use crate::units::human_bytes;

pub async fn run(ctx: &Context) -> Output {
    let (_stack, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return Output::failed("history", 2, err.to_string()),
    };
    let journal = match Journal::open(&ctx.state_dir).await {
        Ok(j) => j,
        Err(e) => return Output::failed("history", 1, e.to_string()),
    };
    let runs = journal.runs(&view.project, 200).await;
    let backups = journal.backups(&view.project).await;
    journal.close().await;
    let (runs, backups) = match (runs, backups) {
        (Ok(r), Ok(b)) => (r, b),
        (Err(e), _) | (_, Err(e)) => return Output::failed("history", 1, e.to_string()),
    };
    let mut text = String::new();
    if runs.is_empty() {
        let _ = writeln!(
            text,
            "No runs of hoist for project {} yet (journal: {}).",
            view.project,
            ctx.state_dir.display()
        );
    } else {
        let _ = writeln!(text, "Runs of project {} (newest first):", view.project);
        for r in &runs {
            let versions = match (&r.from_version, &r.to_version) {
                (Some(f), Some(t)) => format!(" {f} -> {t}"),
                (Some(f), None) => format!(" at {f}"),
                _ => String::new(),
            };
            // A run still "running" whose hoist is gone was cut short (killed, or the machine
            // went down); `status` says what it left.
            let outcome = if interrupted(r) {
                "interrupted".to_string()
            } else {
                r.outcome.to_string()
            };
            let _ = writeln!(
                text,
                "  {}  {} {}{versions}  [{}]",
                r.started_at, r.kind, outcome, r.id
            );
            if let Some(m) = r
                .message
                .as_deref()
                .filter(|m| r.outcome != crate::journal::Outcome::Succeeded && !m.is_empty())
            {
                let _ = writeln!(text, "      {m}");
            }
        }
    }
    // What is in the backup directory (and what the journal knows elsewhere), so that a user
    // finds the DIR to give `hoist restore`.
    let listed = crate::backup::list_backups(&view.backup_dir, &backups);
    backups_section(&mut text, &view.project, &view.backup_dir, &listed);
    let interrupted_ids: Vec<&str> = runs
        .iter()
        .filter(|r| interrupted(r))
        .map(|r| r.id.as_str())
        .collect();
    let mut summary = json!({
        "type": "summary",
        "command": "history",
        "outcome": "ok",
        "project": view.project,
        "runs": runs,
        "backups": backups,
        "backup_dir": view.backup_dir,
        "interrupted_runs": interrupted_ids,
    });
    match listed {
        Ok(list) => summary["backup_list"] = json!(list),
        Err(e) => summary["backup_list_error"] = json!(e),
    }
    Output {
        exit_code: 0,
        text,
        errors: String::new(),
        events: vec![summary],
    }
}

/// The "Backups" section: each backup with its date, version, size, schema, whether it can be
/// restored (or why not), and its directory on a line of its own (to copy whole).
fn backups_section(
    text: &mut String,
    project: &str,
    root: &std::path::Path,
    listed: &Result<Vec<crate::backup::BackupEntry>, String>,
) {
    let list = match listed {
        Ok(list) => list,
        Err(e) => {
            let _ = writeln!(text, "\nBackups: {e}.");
            return;
        }
    };
    if list.is_empty() {
        let _ = writeln!(text, "\nNo backups in {} yet.", root.display());
        return;
    }
    let _ = writeln!(
        text,
        "\nBackups in {} (newest first; `hoist restore DIR` puts one back):",
        root.display()
    );
    for b in list {
        let taken = b
            .taken_at
            .as_deref()
            .map(|t| t.get(..16).unwrap_or(t).replace('T', " "))
            .unwrap_or_else(|| "date unknown".into());
        let mut notes = Vec::new();
        if let Some(schema) = &b.schema_revision {
            notes.push(format!("schema {schema}"));
        }
        if !b.has_dump && b.problem.is_none() {
            notes.push("no database dump".into());
        }
        match &b.project {
            Some(p) if p != project => notes.push(format!("a backup of {p}")),
            _ => {}
        }
        if !b.known && b.problem.is_none() {
            notes.push("not in hoist's journal".into());
        }
        notes.push(match &b.problem {
            None => "files present".into(),
            Some(why) => format!("NOT USABLE: {why}"),
        });
        let _ = writeln!(
            text,
            "  {taken}  {:10} {:>9}  {}\n      {}",
            b.version.as_deref().unwrap_or("?"),
            human_bytes(b.total_bytes),
            notes.join(", "),
            b.dir.display()
        );
    }
}

/// A run the journal still holds as running whose process is gone.
fn interrupted(r: &crate::journal::RunRecord) -> bool {
    r.outcome == crate::journal::Outcome::Running && !crate::journal::pid_alive(r.pid)
}
