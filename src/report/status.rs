//! `hoist status`: the stack, pinned and running versions, health, schema revision.
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::Output;
use crate::context::Context;
use crate::db::DbProbe;
use crate::probe::facts::{self, Facts};
use crate::probe::services::{self, ServiceStatus};
use crate::stack::detect::BesideCopy;
use crate::units::human_bytes;

pub async fn run(ctx: &Context) -> Output {
    let (_stack, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return Output::failed("status", 2, err.to_string()),
    };
    let attention = crate::resume::check(&ctx.state_dir, &view.project).await;
    let facts = facts::gather(ctx, view).await;
    let left_stopped = crate::resume::left_stopped(&facts);
    let kept = crate::probe::kept_aside::find(&facts).await;
    let mut output = render(&facts);
    backups_line(&facts.view, &mut output);
    if let Some(summary) = output.events.last_mut() {
        summary["kept_aside"] = json!(kept);
    }
    if !kept.is_empty() {
        output.text.push_str(
            "\nKept aside by earlier rollbacks or restores (the newer data they moved out of the way; remove it once you no longer need it):\n",
        );
        for k in &kept {
            output.text.push_str(&format!("  {}\n", k.words()));
        }
    }
    // A rehearsal (`upgrade --rehearse`) runs now, or a hoist killed during one left it.
    let rehearsals = match &facts.docker {
        Ok(d) => crate::docker::rehearsals::of_project(&d.engine, &facts.view.project)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    if let Some(summary) = output.events.last_mut() {
        summary["rehearsals"] = json!(
            rehearsals
                .iter()
                .map(|(name, running)| json!({"name": name, "running_containers": running}))
                .collect::<Vec<_>>()
        );
    }
    for (name, running) in &rehearsals {
        output.text = format!(
            "Note      a rehearsal of this project is in Docker: {name} ({running} container{} running; its networks and volumes, a copy of the app's data among them, too), a throwaway copy an `upgrade --rehearse` makes and removes; if no hoist is at work, one was stopped outright during it, and the next `hoist upgrade` removes it\n{}",
            if *running == 1 { "" } else { "s" },
            output.text
        );
    }
    for said in left_stopped.iter().rev() {
        output.text = format!("Attention {said}\n{}", output.text);
    }
    if let Some(summary) = output.events.last_mut()
        && !left_stopped.is_empty()
    {
        summary["left_stopped"] = json!(left_stopped);
    }
    // An interrupted, stopped or undecided run comes first: it is what needs the user.
    if let Some(a) = attention {
        let ways: Vec<String> = a
            .choices
            .iter()
            .map(|c| match c {
                crate::resume::Choice::Continue => format!(
                    // Headless commands ask nothing: `--yes` is the confirmation (or `hoist`,
                    // the wizard, asks).
                    "continue: hoist upgrade --to {}{} --yes",
                    a.to.as_deref().unwrap_or("VERSION"),
                    // Stopped before its rehearsal ended: going on must rehearse again.
                    if a.last_step.as_deref() == Some("rehearse") && !a.changed {
                        " --rehearse"
                    } else {
                        ""
                    }
                ),
                crate::resume::Choice::Rollback => "roll back: hoist rollback --yes".to_string(),
                crate::resume::Choice::Show => "what happened: hoist history".to_string(),
            })
            .collect();
        output.text = format!(
            "Attention {}\n          {}\n{}",
            a.sentence,
            ways.join("; "),
            output.text
        );
        if let Some(summary) = output.events.last_mut() {
            summary["attention"] = serde_json::to_value(&a).unwrap_or_default();
        }
    }
    output
}

/// The backups in the backup dir, read from their manifests (not from the journal, which may
/// be another user's or lost): how many, and the newest.
fn backups_line(view: &facts::StackView, output: &mut Output) {
    let root = &view.backup_dir;
    let (line, json) = match crate::backup::list_backups(root, &[]) {
        Err(e) => (format!("Backups   {e}\n"), json!({"dir": root, "error": e})),
        Ok(all) => {
            let ours: Vec<_> = all
                .into_iter()
                .filter(|b| b.project.as_deref().is_none_or(|p| p == view.project))
                .collect();
            let line = match ours.first() {
                None => format!("Backups   none yet in {}\n", root.display()),
                Some(newest) => format!(
                    "Backups   {} in {}; the newest {} (version {}, taken {}); `hoist history` lists them\n",
                    ours.len(),
                    root.display(),
                    newest.id,
                    newest.version.as_deref().unwrap_or("unknown"),
                    newest.taken_at.as_deref().unwrap_or("at an unknown time")
                ),
            };
            (
                line,
                json!({"dir": root, "count": ours.len(), "newest": ours.first()}),
            )
        }
    };
    output.text.push_str(&line);
    if let Some(summary) = output.events.last_mut() {
        summary["backups"] = json;
    }
}

pub fn database_json(facts: &Facts) -> Value {
    let Some(spec) = &facts.view.database else {
        return Value::Null;
    };
    let mut out = json!({
        "service": spec.service,
        "kind": spec.kind.name(),
        "how": spec.how,
        "migrations": null,
        "revision": null,
    });
    match &facts.db {
        Some(Ok(probe)) => {
            out["migrations"] = probe
                .migrations
                .as_ref()
                .map(|m| json!(m.framework.name()))
                .unwrap_or(Value::Null);
            out["revision"] = probe
                .migrations
                .as_ref()
                .map(|m| json!(m.revision))
                .unwrap_or(Value::Null);
            out["fingerprint"] = json!(probe.fingerprint);
            out["size_bytes"] = json!(probe.size_bytes);
            out["server_version"] = json!(probe.server_version);
            out["tables"] = json!(
                probe
                    .tables
                    .iter()
                    .map(|t| json!({"name": t.name, "rows": t.rows}))
                    .collect::<Vec<_>>()
            );
        }
        Some(Err(e)) => out["error"] = json!(e),
        None => {}
    }
    out
}

fn render(facts: &Facts) -> Output {
    let view = &facts.view;
    let services = services::services(facts);
    let running = services::running_version(&services);
    let mut summary = json!({
        "type": "summary",
        "command": "status",
        "hoist": crate::build_info::json(),
        "outcome": if facts.docker.is_ok() { "ok" } else { "error" },
        "project": view.project,
        "project_dir": view.project_dir,
        "compose_file": view.compose_file,
        "compose_files": view.compose_files,
        "env_file": view.env_file,
        "version_variable": view.version_variable,
        "pin_place": view.pin_place,
        "pin_unknown": view.pin_unknown,
        "moving": view.moving,
        "pinned": view.pinned,
        "pinned_source": view.pinned_source,
        "running_version": running,
        "services": services,
        "database": database_json(facts),
        "unsupported_database": view.unsupported_database,
        "sqlite": facts.sqlite,
        "beside": view.beside,
        "smoke": view.smoke,
        "checks": view.app_checks,
        "observe_s": view.observe_s,
        "one_shot": view.one_shot,
        "inactive": view.inactive.iter().map(|(n, why)| json!({"service": n, "why": why})).collect::<Vec<_>>(),
        "notes": facts.notes,
        "swarm": facts.swarm,
    });
    let mut errors = String::new();
    let mut exit_code = 0;
    match &facts.docker {
        Ok(r) => {
            summary["docker"] =
                json!({"host": r.engine.host, "server_version": r.engine.server_version})
        }
        Err(e) => {
            summary["error"] = json!(e.to_string());
            summary["exit_code"] = json!(e.exit_code());
            errors = format!("hoist: {e}\n");
            exit_code = e.exit_code() as u8;
        }
    }
    Output {
        exit_code,
        text: human(facts, &services, running.as_deref()),
        errors,
        events: vec![summary],
    }
}

fn human(facts: &Facts, services: &[ServiceStatus], running: Option<&str>) -> String {
    let view = &facts.view;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Project   {} ({})",
        view.project,
        view.project_dir.display()
    );
    for note in &facts.notes {
        let _ = writeln!(t, "Note      {note}");
    }
    let files: Vec<String> = view
        .compose_files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let _ = writeln!(t, "Compose   {}", files.join(" + "));
    let moving = if view.moving {
        "; a moving tag, not a pin"
    } else {
        ""
    };
    match (&view.pin_unknown, &view.version_variable, &view.pinned) {
        (Some(reason), _, _) => {
            let _ = writeln!(
                t,
                "Version   (hoist cannot tell where it is written: {reason})"
            );
        }
        (None, Some(var), Some(pinned)) => {
            let source = view
                .pinned_source
                .as_deref()
                .map(|s| format!(" ({s}{moving})"))
                .unwrap_or_default();
            let _ = writeln!(t, "Version   {var}={pinned}{source}");
        }
        (None, Some(var), None) => {
            let _ = writeln!(t, "Version   {var} is not set");
        }
        (None, None, Some(pinned)) => {
            let _ = writeln!(t, "Version   {pinned} ({}{moving})", view.pin_place);
        }
        (None, None, None) => {
            let _ = writeln!(t, "Version   (no tag: {})", view.pin_place);
        }
    }
    let in_swarm = matches!(
        facts.swarm,
        Some(crate::probe::swarm::InSwarm::Stack(_) | crate::probe::swarm::InSwarm::Several { .. })
    );
    match running {
        Some(v) => {
            let _ = writeln!(t, "Running   {v}");
        }
        None if facts.docker.is_ok() && services.iter().any(|s| s.upgraded && s.containers > 0) => {
            let _ = writeln!(
                t,
                "Running   (the app's services do not agree on one version)"
            );
        }
        None if in_swarm => {}
        None if facts.docker.is_ok() => {
            let _ = writeln!(t, "Running   (no container of the app's services exists)");
        }
        None => {}
    }
    // A Swarm stack has no Compose containers: its services are said as Swarm runs them.
    if let Some(found) = &facts.swarm {
        t.push_str(&super::swarm::lines(found));
    }
    if facts.docker.is_ok() && !in_swarm {
        services_lines(&mut t, view, services);
    }
    data_lines(&mut t, facts);
    // What an upgrade checks after each restart (a port with no HTTP answer is dropped then).
    for check in &view.smoke {
        let _ = writeln!(t, "Check     {}", check.words());
    }
    for check in &view.app_checks {
        let _ = writeln!(t, "Check     {}", check.words());
    }
    if let Some(s) = view.observe_s {
        let _ = writeln!(
            t,
            "Observe   {}:{:02} after an upgrade verified, before it is called done",
            s / 60,
            s % 60
        );
    }
    t
}

/// The services table: each one's version and state, its role when it has one.
fn services_lines(t: &mut String, view: &facts::StackView, services: &[ServiceStatus]) {
    let _ = writeln!(t, "\nServices");
    let width = services.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in services {
        let version = s.version.as_deref().unwrap_or("-");
        let mut state = s.state.clone();
        if let Some(code) = s
            .exit_code
            .filter(|_| s.state != "running" && s.state != "missing")
        {
            let _ = write!(state, " (exit code {code})");
        }
        if let Some(h) = &s.health {
            let _ = write!(state, ", {h}");
        }
        if s.restart_count > 0 {
            let _ = write!(state, ", restarted {} times", s.restart_count);
        }
        let role = crate::preflight::Role::of(view, &s.name);
        if s.state == "missing" {
            if let Some(why) = &role.inactive {
                state = format!("not started ({why})");
            } else if role.one_shot {
                state = "one-shot job, no container now".to_string();
            }
        } else if role.one_shot {
            let _ = write!(state, " (one-shot job)");
        }
        let mark = if s.upgraded { "*" } else { " " };
        let _ = writeln!(t, "  {mark} {:width$}  {:10}  {state}", s.name, version);
    }
    let _ = writeln!(t, "  (* upgraded with the app's version)");
}

/// Where the data is: the database (what it is, what the probe read) and what is left out.
fn data_lines(t: &mut String, facts: &Facts) {
    let view = &facts.view;
    if let Some(seen) = &view.unsupported_database {
        let _ = writeln!(
            t,
            "\nDatabase  {} (service {}, known by {}): hoist cannot back it up",
            seen.kind, seen.service, seen.how
        );
    }
    let stopped = facts.stop_for_copy();
    for f in &facts.sqlite {
        let how = if stopped.is_empty() {
            "copied as it is".to_string()
        } else {
            format!("{} stopped for the copy", stopped.join(", "))
        };
        let _ = writeln!(
            t,
            "SQLite    {} (service {}): backed up with the data, {how}",
            f.path, f.service
        );
    }
    for b in &view.beside {
        let label = if b.copy == BesideCopy::LeftOut {
            "Left out"
        } else {
            "Beside"
        };
        let _ = writeln!(t, "{label:9} {}: {}", b.words(), b.copy_words());
    }
    if let Some(spec) = &view.database {
        let _ = writeln!(t);
        // A database of kind command is known by the settings: the line below says its kind.
        if spec.how != "its image name" && spec.kind != crate::db::DbKind::Command {
            let _ = writeln!(
                t,
                "Database  service {} is {}, known by {}",
                spec.service,
                spec.kind.name(),
                spec.how
            );
        }
        let kind = match spec.kind {
            crate::db::DbKind::Command => "kind command",
            k => k.name(),
        };
        match &facts.db {
            Some(Ok(probe)) => {
                let _ = writeln!(
                    t,
                    "Database  {kind} (service {}), {}",
                    spec.service,
                    describe_probe(probe, spec.kind)
                );
                for table in &probe.tables {
                    let _ = writeln!(t, "            {:28} {:>10} rows", table.name, table.rows);
                }
            }
            Some(Err(e)) => {
                let _ = writeln!(t, "Database  {kind} (service {}): {e}", spec.service);
            }
            None => {}
        }
    }
}

fn describe_probe(probe: &DbProbe, kind: crate::db::DbKind) -> String {
    if let Some(m) = probe
        .migrations
        .as_ref()
        .filter(|m| m.framework == crate::db::MigrationFramework::Command)
    {
        return format!(
            "revision {} (as its revision command prints it; its tables, rows and size are known only to its own tools)",
            m.revision
        );
    }
    let migrations = match &probe.migrations {
        Some(m) => format!("{} revision {}", m.framework.name(), m.revision),
        None => "no migrations table".to_string(),
    };
    let rows: u64 = probe.tables.iter().map(|t| t.rows).sum();
    if kind == crate::db::DbKind::Surrealdb {
        // SurrealDB does not say how much room a database takes.
        return format!(
            "{migrations}; {} tables, {rows} records",
            probe.tables.len()
        );
    }
    format!(
        "{migrations}; {} tables, {rows} rows, {}",
        probe.tables.len(),
        human_bytes(probe.size_bytes)
    )
}
