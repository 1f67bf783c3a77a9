//! What the rehearsal's inner run tells the upgrade's (its steps as progress of
//! `Step::Rehearse`, its checks as "rehearsal: …"), and what its report keeps.
use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::run::{Event, Run, Step};

/// What the inner run's events tell the outer run, and what the report keeps of them.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) migrations: Vec<Value>,
    pub(super) evidence: BTreeMap<String, Vec<String>>,
}

impl Seen {
    pub(super) fn forward(&mut self, run: &Run<'_>, e: Event) {
        let say = |m: String| run.progress(Step::Rehearse, m);
        match e {
            Event::StepStarted { step, what } => say(format!("{}: {what}", step.name())),
            Event::StepFinished {
                step,
                status,
                message,
                ..
            } => say(format!(
                "{} {status}{}",
                step.name(),
                message.map(|m| format!(": {m}")).unwrap_or_default()
            )),
            Event::Progress { message, .. } => say(message),
            Event::Log { service, line } => run.emit(Event::Log {
                service: format!("{service} (copy)"),
                line,
            }),
            Event::Migration { service, from, to } => {
                say(format!("migration {from} -> {to} ({service})"));
                self.migrations
                    .push(json!({"service": service, "from": from, "to": to}));
            }
            Event::Check { what, ok, detail } => run.emit(Event::Check {
                what: format!("rehearsal: {what}"),
                ok,
                detail,
            }),
            Event::Failure { reason, evidence } => {
                say(format!("failed: {reason}"));
                for (service, lines) in &evidence {
                    let from = lines.len().saturating_sub(10);
                    for line in &lines[from..] {
                        say(format!("  {service} (copy) | {line}"));
                    }
                }
                self.evidence.extend(evidence);
            }
            Event::Ask { reply, .. } => reply.send(false),
            _ => {}
        }
    }
}

/// What the copy showed, passed or not.
#[derive(Default)]
pub(super) struct Found {
    pub(super) notes: Vec<String>,
    pub(super) copied: Vec<Value>,
    pub(super) copy_ms: u64,
    /// What the data holds (the backup's count), copied or not.
    pub(super) copy_bytes: Option<u64>,
    pub(super) restore_ms: Option<u64>,
    /// Per hop: the version, `up -d` to ready in ms, the schema revision reached.
    pub(super) hops: Vec<Value>,
}

impl Found {
    pub(super) fn report(&self) -> Value {
        json!({
            "notes": self.notes,
            "copied": self.copied,
            "copy_ms": self.copy_ms,
            "copy_bytes": self.copy_bytes,
            "restore_ms": self.restore_ms,
            "hops": self.hops,
        })
    }

    pub(super) fn migration_words(&self, migrations: &[Value]) -> String {
        let start_ms: u64 = self
            .hops
            .iter()
            .filter_map(|h| h["ready_ms"].as_u64())
            .sum();
        let secs = start_ms as f64 / 1000.0;
        let migrated = match migrations.len() {
            0 => "no migration seen in its logs".to_string(),
            n => format!("{n} migration{} applied", if n == 1 { "" } else { "s" }),
        };
        format!(
            " ({migrated}; {secs:.1} s from `up -d` to ready: a rough guide to the real app's downtime, which is usually shorter, as the copy runs at a lower CPU priority)"
        )
    }
}

pub(super) struct Failed {
    pub(super) reason: String,
    pub(super) found: Found,
    /// The new version failed on the copy (not the copy that could not be made).
    pub(super) by_the_release: bool,
}
