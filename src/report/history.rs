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
            let _ = writeln!(
                text,
                "  {}  {:8} {:10}{versions}  [{}]",
                r.started_at, r.kind, r.outcome, r.id
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
    if !backups.is_empty() {
        let _ = writeln!(text, "\nBackups:");
        for b in &backups {
            let _ = writeln!(
                text,
                "  {}  {:>9}  version {}, schema {}  {}",
                b.created_at,
                human_bytes(u64::try_from(b.size_bytes).unwrap_or(0)),
                b.app_version.as_deref().unwrap_or("?"),
                b.schema_revision.as_deref().unwrap_or("?"),
                b.path
            );
        }
    }
    let summary = json!({
        "type": "summary",
        "command": "history",
        "outcome": "ok",
        "project": view.project,
        "runs": runs,
        "backups": backups,
    });
    Output {
        exit_code: 0,
        text,
        errors: String::new(),
        events: vec![summary],
    }
}
