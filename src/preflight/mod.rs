//! The preflight of an upgrade, as findings (ok, warning, failure, with evidence): Docker,
//! Compose, every service, the database, the pinned version, the backup directory and its disk,
//! the next download, the session. `hoist check` shows them; the engine refuses on a failure.
//! Changes nothing.
mod db_commands;
mod pending_config;
mod swarm;
mod unseen_database;

pub use db_commands::programs_finding as database_programs_finding;
pub use pending_config::{
    changed_from as environment_changed_from, finding as pending_config_finding,
};
pub use swarm::{containers_tell_all, finding as swarm_finding};

use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use crate::docker::compose_cli;
use crate::fsutil;
use crate::probe::facts::Facts;
use crate::probe::services::ServiceStatus;
use crate::stack::detect::BesideCopy;
use crate::stack::detect::DataMount;
use crate::units::human_bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub name: String,
    pub status: Level,
    pub message: String,
    /// Evidence: log lines, Compose's own words.
    pub details: Vec<String>,
    /// Extra machine-readable fields (e.g. the disk figures).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl Finding {
    fn new(name: &str, status: Level, message: impl Into<String>) -> Finding {
        Finding {
            name: name.to_string(),
            status,
            message: message.into(),
            details: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    fn details(mut self, details: Vec<String>) -> Finding {
        self.details = details;
        self
    }
}

/// Free space kept beyond the estimate, so a backup never fills the disk to the last byte.
const DISK_MARGIN: u64 = 256 * 1000 * 1000;

/// Every finding of the preflight, in the order they are shown.
pub async fn findings(stack: &crate::stack::Stack, facts: &Facts) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.push(docker_finding(facts));
    findings.push(compose_finding(facts).await);
    findings.extend(swarm_finding(facts));
    // A Swarm's tasks elsewhere have no container here: "not running" would be wrong.
    if facts.docker.is_ok() && containers_tell_all(facts) {
        findings.extend(service_findings(facts).await);
    }
    if let Some(f) = database_finding(facts) {
        findings.push(f);
    }
    if let Some(f) = unseen_database::finding(facts) {
        findings.push(f);
    }
    if let Some(f) = db_commands::programs_finding(facts).await {
        findings.push(f);
    }
    if let Some(f) = pending_config::finding(facts).await {
        findings.push(f);
    }
    findings.extend(beside_findings(facts));
    if let Some(f) = sqlite_finding(facts) {
        findings.push(f);
    }
    let mut version = version_finding(facts);
    if version.status == Level::Ok
        && let Some(moving) = moving_in_registry(stack, facts).await
    {
        version = moving;
    }
    findings.push(version);
    findings.push(
        backup_inside_data(facts).unwrap_or_else(|| backup_dir_finding(&facts.view.backup_dir)),
    );
    let estimate = backup_estimate(facts).await;
    findings.push(disk_finding(facts, &estimate));
    let backup_estimate = estimate.bytes;
    if facts.docker.is_ok()
        && let Some(f) = next_download_finding(stack, facts, backup_estimate).await
    {
        findings.push(f);
    }
    if let Some(f) = session_finding(&|k| std::env::var(k).ok()) {
        findings.push(f);
    }
    findings
}

fn docker_finding(facts: &Facts) -> Finding {
    match &facts.docker {
        Ok(r) => Finding::new(
            "docker",
            Level::Ok,
            format!(
                "Docker {} answers at {}",
                r.engine.server_version, r.engine.host
            ),
        ),
        Err(e) => Finding::new("docker", Level::Fail, e.to_string()),
    }
}

/// The compose files, as `status` shows them.
fn files_words(view: &crate::probe::facts::StackView) -> String {
    view.compose_files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ")
}

async fn compose_finding(facts: &Facts) -> Finding {
    let tool = match compose_cli::find().await {
        Ok(tool) => tool,
        Err(e) => return Finding::new("compose", Level::Fail, e.to_string()),
    };
    let view = &facts.view;
    let invocation = view.compose();
    let label = match &tool {
        compose_cli::ComposeTool::V2 { version } => format!("Docker Compose {version}"),
        compose_cli::ComposeTool::V1 { version } => {
            format!("docker-compose {version} (v1, end of life)")
        }
    };
    match invocation.validate(&tool).await {
        Ok(None) => {
            let level = if matches!(tool, compose_cli::ComposeTool::V1 { .. }) {
                Level::Warn
            } else {
                Level::Ok
            };
            let mut message = format!("{label} accepts {}", files_words(view));
            if level == Level::Warn {
                message.push_str("; install the Compose v2 plugin, v1 no longer gets fixes");
            }
            Finding::new("compose", level, message)
        }
        Ok(Some(words)) => Finding::new(
            "compose",
            Level::Fail,
            format!(
                "{label} rejects {}: fix the file, then run `hoist check` again",
                files_words(view)
            ),
        )
        .details(words.lines().map(str::to_string).collect()),
        Err(e) => Finding::new("compose", Level::Fail, e.to_string()),
    }
}

async fn service_findings(facts: &Facts) -> Vec<Finding> {
    let Ok(running) = &facts.docker else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in crate::probe::services::services(facts) {
        let name = format!("service {}", s.name);
        let mut role = Role::of(&facts.view, &s.name).in_swarm(facts, &s.name);
        role.held = facts
            .held
            .iter()
            .find(|h| h.service == s.name)
            .map(|h| h.copying);
        let (level, message) = judge_service(&s, &role);
        let mut finding = Finding::new(&name, level, message);
        if level == Level::Fail && !running.of_service(&s.name).is_empty() {
            finding.details = crate::probe::evidence::last_lines(running, &s.name).await;
        }
        out.push(finding);
    }
    out
}

/// What a service is meant to do, from the files: run with a healthcheck, run once and exit,
/// or not run at all (an inactive profile, zero replicas).
#[derive(Debug, Clone, Default)]
pub struct Role {
    pub healthcheck: bool,
    pub one_shot: bool,
    /// Why Compose does not start it.
    pub inactive: Option<String>,
    /// Stopped by a hoist for a backup's copy: Some(true) while that hoist copies, Some(false)
    /// when it was killed before it started the service again.
    pub held: Option<bool>,
    /// The Swarm stack it runs in (None: a Compose project): what to do is said in Swarm's
    /// commands, never `docker compose up -d`, which would start a second copy of the app.
    pub swarm: Option<String>,
    /// In a Swarm stack that has no service of this name (removed from it, or never deployed).
    pub swarm_missing: bool,
    /// Stopped by a hoist for a restore that has not finished (its label is on the service).
    pub swarm_held: bool,
}

impl Role {
    pub fn of(view: &crate::probe::facts::StackView, service: &str) -> Role {
        Role {
            healthcheck: view.with_healthcheck.iter().any(|s| s == service),
            one_shot: view.one_shot.iter().any(|s| s == service),
            inactive: view
                .inactive
                .iter()
                .find(|(n, _)| n == service)
                .map(|(_, why)| why.clone()),
            held: None,
            swarm: None,
            swarm_missing: false,
            swarm_held: false,
        }
    }

    /// The role in Swarm stack `facts.swarm` (when the app runs as one).
    pub fn in_swarm(mut self, facts: &Facts, service: &str) -> Role {
        if let Some(crate::probe::swarm::InSwarm::Stack(stack)) = &facts.swarm {
            let deployed = stack.services.iter().find(|d| d.service == service);
            self.swarm_missing = deployed.is_none();
            self.swarm_held = deployed.is_some_and(|d| d.stopped_by_hoist.is_some());
            self.swarm = Some(stack.name.clone());
        }
        self
    }
}

/// One service's verdict: running and (when it has a healthcheck) healthy is ready; a
/// one-shot job that exited 0 is done; a service Compose does not start is no problem.
pub fn judge_service(s: &ServiceStatus, role: &Role) -> (Level, String) {
    let name = &s.name;
    let with_healthcheck = role.healthcheck;
    if let Some(why) = &role.inactive
        && s.state == "missing"
    {
        return (
            Level::Ok,
            format!("{name} is not started by Compose ({why}); an upgrade leaves it alone"),
        );
    }
    if let Some(copying) = role.held
        && matches!(s.state.as_str(), "exited" | "created")
    {
        return (
            Level::Warn,
            if copying {
                format!(
                    "{name} is stopped while a hoist backup copies its data; it starts again when the copy is done: do not start it meanwhile"
                )
            } else {
                format!(
                    "{name} was stopped for a backup's copy by a hoist that did not start it again; the next upgrade, rollback or backup starts it (or `docker compose start {name}`)"
                )
            },
        );
    }
    if role.one_shot {
        match (s.state.as_str(), s.exit_code) {
            ("exited", Some(0)) => {
                return (
                    Level::Ok,
                    format!("{name} is a one-shot job; it ran and finished (exit code 0)"),
                );
            }
            ("missing", _) => {
                return (
                    Level::Ok,
                    format!(
                        "{name} is a one-shot job with no container now (it ran and was removed, or has not run yet)"
                    ),
                );
            }
            ("running", _) => {
                return (Level::Ok, format!("{name} is a one-shot job, running now"));
            }
            _ => {}
        }
    }
    if let Some(stack) = &role.swarm
        && !matches!(s.state.as_str(), "running" | "restarting" | "paused")
    {
        let full = format!("{stack}_{name}");
        if role.swarm_missing {
            return (
                Level::Fail,
                format!(
                    "{name} is not a service of Swarm stack {stack}: it was removed from it, or the stack was deployed from other files. Deploy the files again (`set -a; . ./.env; set +a; docker stack deploy -c FILE {stack}`) before upgrading; do not use `docker compose` here"
                ),
            );
        }
        if role.swarm_held {
            return (
                Level::Fail,
                format!(
                    "{name} is stopped by hoist for a restore that did not finish: `hoist rollback` (or the restore again) finishes it and starts it again; do not scale it up by hand"
                ),
            );
        }
        let what = if s.state == "missing" {
            "no task of it runs on this node".to_string()
        } else {
            format!(
                "its task's container is {}{}",
                s.state,
                s.exit_code
                    .map(|c| format!(" (exit code {c})"))
                    .unwrap_or_default()
            )
        };
        return (
            Level::Fail,
            format!(
                "{name} is not running: {what}. `docker service ps --no-trunc {full}` says why Swarm does not run it; if it was scaled to zero, `docker service scale {full}=1` (or the replicas it had) starts it again. Do not use `docker compose` here: it would start a second copy of the app beside the Swarm stack"
            ),
        );
    }
    match s.state.as_str() {
        "missing" => (
            Level::Fail,
            format!(
                "{name} has no container: start the stack (`docker compose up -d`) before upgrading"
            ),
        ),
        "running" => match s.health.as_deref() {
            Some("healthy") => (Level::Ok, format!("{name} is running and healthy")),
            Some("unhealthy") => (
                Level::Fail,
                format!(
                    "{name} is running but unhealthy: its healthcheck fails; fix it before upgrading (its last log lines are below)"
                ),
            ),
            Some(_) => (
                Level::Fail,
                format!(
                    "{name} is still starting (its healthcheck has not passed yet): wait a minute and run `hoist check` again"
                ),
            ),
            None if with_healthcheck => (
                Level::Warn,
                format!("{name} is running; its health is not reported"),
            ),
            None if s.restart_count > 0 => (
                Level::Warn,
                format!(
                    "{name} is running, but has restarted {} times",
                    s.restart_count
                ),
            ),
            None => (Level::Ok, format!("{name} is running")),
        },
        "restarting" => (
            Level::Fail,
            format!(
                "{name} is crash-looping (restarted {} times, last exit code {}): fix it before upgrading (its last log lines are below)",
                s.restart_count,
                s.exit_code.unwrap_or(0)
            ),
        ),
        "paused" => (
            Level::Fail,
            format!(
                "{name} is paused: unpause it (`docker compose unpause {name}`) before upgrading; a paused container answers nothing, so it could be neither backed up nor checked"
            ),
        ),
        other => (
            Level::Fail,
            format!(
                "{name} is {other}{}: start it (`docker compose up -d {name}`) or find out why it stopped (its last log lines are below)",
                s.exit_code
                    .map(|c| format!(" (exit code {c})"))
                    .unwrap_or_default()
            ),
        ),
    }
}

/// A database hoist recognised and cannot dump, in one sentence (what, how known, what to do).
pub fn unsupported_database_sentence(seen: &crate::stack::detect::SeenDatabase) -> String {
    if let Some(missing) = &seen.missing {
        return format!(
            "service {} is {} (known by {}), but hoist cannot tell {missing}, so that it can dump the right one. An upgrade would run without a dump of it, so hoist will not start one. Or set `x-hoist: {{database: none}}` to upgrade without a dump",
            seen.service, seen.kind, seen.how
        );
    }
    format!(
        "service {} is a database hoist cannot back up on its own ({}, known by {}): an upgrade would run without a dump of it, so hoist will not start one. Tell hoist how to dump, restore and read it with `x-hoist: {{database: {{kind: command, service: {}, dump: [...], restore: [...], revision: [...]}}}}` (the README's \"A database of another kind\"), or back it up yourself and set `x-hoist: {{database: none}}` to upgrade without a dump",
        seen.service, seen.kind, seen.how, seen.service
    )
}

/// SQLite files in the app's data: archived as files, with the app running.
fn sqlite_finding(facts: &Facts) -> Option<Finding> {
    let first = facts.sqlite.first()?;
    let files: Vec<String> = facts
        .sqlite
        .iter()
        .map(|f| format!("{} ({})", f.path, f.service))
        .collect();
    let stopped = facts.stop_for_copy();
    Some(if stopped.is_empty() {
        Finding::new(
            "sqlite",
            Level::Warn,
            format!(
                "{} keeps a database in SQLite files: {}. No running service of the app writes them, so the backup copies them as they are",
                first.service,
                files.join(", ")
            ),
        )
    } else {
        Finding::new(
            "sqlite",
            Level::Ok,
            format!(
                "{} keeps a database in SQLite files: {}. The backup stops {} while it copies them (a file copied while it is written is not a consistent database), then starts {} again",
                first.service,
                files.join(", "),
                stopped.join(", "),
                if stopped.len() == 1 { "it" } else { "them" }
            ),
        )
    })
}

/// Services beside the app that keep data: how the backup copies it, or that it is left out.
/// Said, never skipped.
fn beside_findings(facts: &Facts) -> Vec<Finding> {
    facts
        .view
        .beside
        .iter()
        .map(|b| {
            let name = format!("data of {}", b.service);
            match b.copy {
                BesideCopy::LeftOut => Finding::new(
                    &name,
                    Level::Warn,
                    format!(
                        "{}; left out of the backup, as x-hoist leave_out says: no backup holds it, so none can restore it",
                        b.words()
                    ),
                ),
                _ if facts
                    .docker
                    .as_ref()
                    .is_ok_and(|r| r.of_service(&b.service).is_empty()) =>
                {
                    Finding::new(
                        &name,
                        Level::Warn,
                        match crate::probe::swarm::stack_name(facts.swarm.as_ref()) {
                            Some(stack) => format!(
                                "{}; no task of it runs on this node, so a backup cannot copy its data (`docker service ps {stack}_{}` says where it runs)",
                                b.words(),
                                b.service
                            ),
                            None => format!(
                                "{}; it has no container, so a backup cannot copy its data until it is created (`docker compose up -d {}`)",
                                b.words(),
                                b.service
                            ),
                        },
                    )
                }
                _ => Finding::new(
                    &name,
                    Level::Ok,
                    format!(
                        "{}; {} (add it to `x-hoist: {{leave_out: [{}]}}` if it can be rebuilt)",
                        b.words(),
                        b.copy_words(),
                        b.service
                    ),
                ),
            }
        })
        .collect()
}

fn database_finding(facts: &Facts) -> Option<Finding> {
    if let Some(seen) = &facts.view.unsupported_database {
        return Some(Finding::new(
            "database",
            Level::Fail,
            unsupported_database_sentence(seen),
        ));
    }
    let spec = facts.view.database.as_ref()?;
    // An SQLite file is backed up with the data mount that holds it: there must be one.
    if let Some(path) = spec
        .path
        .as_deref()
        .filter(|_| spec.kind == crate::db::DbKind::Sqlite)
        && !facts
            .view
            .data
            .iter()
            .any(|m| std::path::Path::new(path).starts_with(&m.target))
    {
        return Some(Finding::new(
            "database",
            Level::Fail,
            format!(
                "the SQLite database {path} of service {} is on none of the data mounts the backup archives, so no backup would hold it: mount its directory, or add that mount to `x-hoist: {{data: [...]}}`",
                spec.service
            ),
        ));
    }
    let result = facts.db.as_ref()?;
    Some(match result {
        Ok(probe) => {
            let message = match &probe.migrations {
                Some(m) if m.framework == crate::db::MigrationFramework::Command => format!(
                    "the database of service {} answers its revision command: {}",
                    spec.service, m.revision
                ),
                Some(m) => format!(
                    "{} answers (service {}); {} revision {}",
                    spec.kind.name(),
                    spec.service,
                    m.framework.name(),
                    m.revision
                ),
                None => format!(
                    "{} answers (service {}); no migrations table, the schema fingerprint stands in for a revision",
                    spec.kind.name(),
                    spec.service
                ),
            };
            // A SurrealDB note is about where the data is (settings against the app's, a
            // memory store): worth a warning even when the database answers.
            match spec.note.as_deref() {
                Some(note) if spec.kind == crate::db::DbKind::Surrealdb => {
                    Finding::new("database", Level::Warn, format!("{message}. But {note}"))
                }
                _ => Finding::new("database", Level::Ok, message),
            }
        }
        Err(e) => Finding::new(
            "database",
            Level::Fail,
            match spec.note.as_deref() {
                Some(note) => format!("the database could not be read: {e} ({note})"),
                None => format!("the database could not be read: {e}"),
            },
        ),
    })
}

/// A pin that looks exact but moves (`v2.0`, which the project re-points at each 2.0.x),
/// told by the registry: the same image as a more specific version tag. Unreachable
/// registries say nothing here (the download finding reports them).
async fn moving_in_registry(stack: &crate::stack::Stack, facts: &Facts) -> Option<Finding> {
    let pinned = facts.view.pinned.clone()?;
    let images = crate::stack::targets::target_images(stack, &pinned).ok()?;
    let image = images.values().next()?;
    let specific = crate::versions::more_specific(image, &pinned)
        .await
        .ok()??;
    Some(Finding::new(
        "version",
        Level::Warn,
        format!(
            "`{pinned}` is a moving tag: the registry gives it the same image as {specific}, and it will follow later releases. hoist pins the exact version it upgrades to, and a rollback goes back to the exact image that ran"
        ),
    ))
}

fn version_finding(facts: &Facts) -> Finding {
    let view = &facts.view;
    if let Some(reason) = &view.pin_unknown {
        return Finding::new(
            "version",
            Level::Fail,
            format!("hoist cannot tell where the app's version is written: {reason}"),
        );
    }
    let var = view
        .version_variable
        .clone()
        .unwrap_or_else(|| view.pin_place.clone());
    let var = &var;
    let Some(pinned) = &view.pinned else {
        return Finding::new(
            "version",
            Level::Fail,
            format!(
                "{var} is not set, so the app's version is whatever the registry's default tag is; set it to the version that runs"
            ),
        );
    };
    let services = crate::probe::services::services(facts);
    let running = crate::probe::services::running_version(&services);
    let digest = services
        .iter()
        .find(|s| s.upgraded)
        .and_then(|s| s.digest.clone());
    if view.moving || pinned.is_empty() {
        let actually = match (&running, &digest) {
            (Some(v), Some(d)) => format!("version {v} ({d})"),
            (Some(v), None) => format!("version {v}"),
            _ => "an unknown version".to_string(),
        };
        let mut f = Finding::new(
            "version",
            Level::Warn,
            format!(
                "{var} is `{}`, a moving tag: it changes whenever the project publishes, so it pins nothing; what actually runs is {actually}. hoist pins the exact version it upgrades to",
                if pinned.is_empty() { "empty" } else { pinned }
            ),
        );
        f.extra.insert("pinned".into(), json!(pinned));
        f.extra.insert("running".into(), json!(running));
        return f;
    }
    if let Some((tag, _)) = pinned.split_once("@sha256:") {
        // A rollback to a moving tag pins the exact image by its digest.
        return Finding::new(
            "version",
            Level::Ok,
            format!(
                "{var} is pinned to the exact image of `{tag}` by its digest{}",
                running
                    .as_deref()
                    .map(|r| format!(" (version {r})"))
                    .unwrap_or_default()
            ),
        );
    }
    match running {
        Some(r) if &r != pinned => Finding::new(
            "version",
            Level::Warn,
            format!(
                "{var} is pinned to {pinned} but {r} is running: the stack was not restarted since .env changed"
            ),
        ),
        _ => Finding::new("version", Level::Ok, format!("{var} is pinned to {pinned}")),
    }
}

/// hoist's state dir (journal, lock, log) must really take a file: tried, not guessed from
/// permission bits (a read-only mount, a full disk, a link to nowhere).
pub fn state_dir_finding(dir: &Path) -> Finding {
    let shown = dir.display();
    let fail = |why: String| {
        Finding::new(
            "state dir",
            Level::Fail,
            format!(
                "hoist's state dir {shown} {why}: its journal and lock live there. Make it writable, or pass --state-dir DIR on a local disk"
            ),
        )
    };
    if let Ok(meta) = dir.symlink_metadata()
        && meta.file_type().is_symlink()
        && !dir.exists()
    {
        return fail("is a symbolic link to a directory that does not exist".to_string());
    }
    let existing = fsutil::nearest_existing(dir).unwrap_or_else(|| dir.to_path_buf());
    if !existing.is_dir() {
        return fail(format!(
            "cannot be made: {} is not a directory",
            existing.display()
        ));
    }
    match fsutil::can_create_files_in(&existing) {
        Ok(()) => Finding::new(
            "state dir",
            Level::Ok,
            format!("hoist keeps its journal and lock in {shown}"),
        ),
        Err(e) => fail(format!("cannot take a file ({e})")),
    }
}

/// A backup dir inside data the backup archives: each backup would hold the ones before it,
/// and a restore, which moves that data aside, would move the backups with it.
fn backup_inside_data(facts: &Facts) -> Option<Finding> {
    let dir = &facts.view.backup_dir;
    // Where the backup dir is, or will be once created, with symlinks resolved.
    let existing = fsutil::nearest_existing(dir)?;
    let rest = dir.strip_prefix(&existing).ok()?;
    let resolved = std::fs::canonicalize(&existing).ok()?.join(rest);
    facts.view.data.iter().find_map(|mount| {
        let host = std::fs::canonicalize(host_path_of(facts, mount)?).ok()?;
        resolved.starts_with(&host).then(|| {
            Finding::new(
                "backup dir",
                Level::Fail,
                format!(
                    "backups would go to {}, inside {} ({} of service {}), which every backup archives: each backup would hold the ones before it, and a rollback moves that data aside, backups included. Choose a place outside the app's data with --backup-dir DIR",
                    dir.display(),
                    host.display(),
                    mount.target,
                    mount.services.join(", ")
                ),
            )
        })
    })
}

fn backup_dir_finding(dir: &Path) -> Finding {
    let shown = dir.display();
    // A symlink to nowhere: `is_dir` and every ancestor check would pass over it, and creating
    // the directory would then fail with "File exists".
    if let Ok(meta) = dir.symlink_metadata()
        && meta.file_type().is_symlink()
        && !dir.exists()
    {
        let target = std::fs::read_link(dir)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "(unreadable)".to_string());
        return Finding::new(
            "backup dir",
            Level::Fail,
            format!(
                "{shown} is a symbolic link to {target}, which does not exist: create {target} (or mount the disk it is on), or choose another place with --backup-dir DIR"
            ),
        );
    }
    if dir.is_dir() {
        return match fsutil::can_create_files_in(dir) {
            Ok(()) => Finding::new("backup dir", Level::Ok, format!("backups go to {shown}")),
            Err(e) => Finding::new(
                "backup dir",
                Level::Fail,
                format!(
                    "backups cannot be written to {shown}: {e}. Choose another place with --backup-dir DIR"
                ),
            ),
        };
    }
    match fsutil::nearest_existing(dir) {
        Some(parent) if parent.is_dir() => match fsutil::can_create_files_in(&parent) {
            Ok(()) => Finding::new(
                "backup dir",
                Level::Ok,
                format!("backups go to {shown} (created by the first backup)"),
            ),
            Err(e) => Finding::new(
                "backup dir",
                Level::Fail,
                format!(
                    "{shown} cannot be created: {} is not writable ({e}). Choose another place with --backup-dir DIR",
                    parent.display()
                ),
            ),
        },
        _ => Finding::new(
            "backup dir",
            Level::Fail,
            format!(
                "{shown} cannot be created: a part of the path is not a directory. Choose another place with --backup-dir DIR"
            ),
        ),
    }
}

/// The backup's size as far as it can be known before taking it (the database's size plus the
/// app's data on this host), and what the estimate leaves out.
#[derive(Debug, Clone, Default)]
pub struct BackupEstimate {
    pub bytes: u64,
    pub unknown: Vec<String>,
}

/// Estimates the backup once per run: the data directories are walked on a blocking thread
/// (a large upload tree takes seconds), never on the async ones.
pub async fn backup_estimate(facts: &Facts) -> BackupEstimate {
    let view = &facts.view;
    let mut estimate = BackupEstimate::default();
    match &facts.db {
        // Known only through its commands: its size comes with its dump.
        Some(Ok(_)) if view.database.as_ref().is_some_and(|d| d.kind.without_sql()) => {
            estimate.unknown.push(
                match view.database.as_ref().map(|d| d.kind) {
                    Some(crate::db::DbKind::Surrealdb) => {
                        "the database (SurrealDB: its size is known only once exported)"
                    }
                    _ => "the database (kind command: its size is known only once dumped)",
                }
                .into(),
            )
        }
        Some(Ok(probe)) => estimate.bytes += probe.size_bytes,
        Some(Err(_)) => estimate.unknown.push("the database".into()),
        None => {}
    }
    let mut paths = Vec::new();
    for mount in &view.data {
        match host_path_of(facts, mount) {
            Some(path) => paths.push(path),
            None => estimate
                .unknown
                .push(format!("{} (not found on this host)", mount.source)),
        }
    }
    let walked = tokio::task::spawn_blocking(move || {
        paths
            .into_iter()
            .map(|p| {
                let (bytes, unreadable) = fsutil::tree_size(Path::new(&p));
                (p, bytes, unreadable)
            })
            .collect::<Vec<_>>()
    })
    .await;
    match walked {
        Ok(walked) => {
            for (path, bytes, unreadable) in walked {
                estimate.bytes += bytes;
                if unreadable > 0 {
                    estimate
                        .unknown
                        .push(format!("{unreadable} unreadable entries under {path}"));
                }
            }
        }
        Err(e) => estimate
            .unknown
            .push(format!("the data directories (the walk failed: {e})")),
    }
    estimate
}

/// Free space where the backup will be written, against what the backup will take: the
/// database (its on-disk size bounds the dump) plus the data mounts, uncompressed (uploads are
/// mostly photos and PDFs, which do not compress).
pub fn disk_finding(facts: &Facts, backup: &BackupEstimate) -> Finding {
    let view = &facts.view;
    let (estimate, unknown) = (backup.bytes, &backup.unknown);
    let Some(place) = fsutil::nearest_existing(&view.backup_dir) else {
        return Finding::new(
            "disk",
            Level::Fail,
            "the backup directory's filesystem could not be found",
        );
    };
    let available = match fs4::available_space(&place) {
        Ok(a) => a,
        Err(e) => {
            return Finding::new(
                "disk",
                Level::Warn,
                format!("free space on {} could not be read: {e}", place.display()),
            );
        }
    };
    let needed = estimate + DISK_MARGIN;
    let partial = if unknown.is_empty() {
        String::new()
    } else {
        format!(" (estimate leaves out: {})", unknown.join(", "))
    };
    let mut f = if available >= needed {
        Finding::new(
            "disk",
            Level::Ok,
            format!(
                "{} free on {}; the backup needs about {}{partial}",
                human_bytes(available),
                place.display(),
                human_bytes(estimate)
            ),
        )
    } else {
        Finding::new(
            "disk",
            Level::Fail,
            format!(
                "not enough free disk for the backup: {} free on {}, about {} needed ({} plus a {} margin){partial}. Free some space (e.g. `docker image prune`, old backups) or choose another place with --backup-dir DIR",
                human_bytes(available),
                place.display(),
                human_bytes(needed),
                human_bytes(estimate),
                human_bytes(DISK_MARGIN)
            ),
        )
    };
    f.extra.insert("available_bytes".into(), json!(available));
    f.extra.insert("estimate_bytes".into(), json!(estimate));
    f.extra.insert("needed_bytes".into(), json!(needed));
    f
}

/// A download ahead: the version, its compressed size (layers already here left out), and the
/// directory the engine keeps images in.
pub struct Download {
    pub version: String,
    pub bytes: u64,
    pub root: std::path::PathBuf,
}

/// Free space where Docker keeps images against the download; when that is the backup's
/// filesystem too, against both.
/// `backup_estimate` is the backup's size as `backup_estimate` found it.
pub fn download_finding(facts: &Facts, download: &Download, backup_estimate: u64) -> Finding {
    use std::os::unix::fs::MetadataExt;
    let Some(root) = fsutil::nearest_existing(&download.root) else {
        return Finding::new(
            "download",
            Level::Warn,
            format!(
                "Docker's image directory {} was not found, so the space for the download ({}) was not checked",
                download.root.display(),
                human_bytes(download.bytes)
            ),
        );
    };
    let available = match fs4::available_space(&root) {
        Ok(a) => a,
        Err(e) => {
            return Finding::new(
                "download",
                Level::Warn,
                format!("free space on {} could not be read: {e}", root.display()),
            );
        }
    };
    let device = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    let shared = fsutil::nearest_existing(&facts.view.backup_dir)
        .is_some_and(|b| device(&b).is_some() && device(&b) == device(&root));
    let backup = if shared { backup_estimate } else { 0 };
    let needed = download.bytes + backup + DISK_MARGIN;
    let also = if shared {
        format!(
            " plus the backup's {} on the same disk",
            human_bytes(backup)
        )
    } else {
        String::new()
    };
    let mut f = if available >= needed {
        Finding::new(
            "download",
            Level::Ok,
            format!(
                "{} to download for {} (compressed, layers already here left out){also}; {} free on {}",
                human_bytes(download.bytes),
                download.version,
                human_bytes(available),
                root.display()
            ),
        )
    } else {
        Finding::new(
            "download",
            Level::Fail,
            format!(
                "not enough free disk for the download of {}: {} free on {}, about {} needed ({} to download{also}, plus a {} margin). Free some space (e.g. `docker image prune`, old backups)",
                download.version,
                human_bytes(available),
                root.display(),
                human_bytes(needed),
                human_bytes(download.bytes),
                human_bytes(DISK_MARGIN)
            ),
        )
    };
    f.extra
        .insert("download_bytes".into(), json!(download.bytes));
    f.extra.insert("available_bytes".into(), json!(available));
    f.extra.insert("needed_bytes".into(), json!(needed));
    f
}

/// What downloading `images` (at `version`) takes: their compressed layers that are not here.
pub async fn measure_download(
    facts: &Facts,
    version: &str,
    images: &[String],
) -> Result<Download, String> {
    let Ok(running) = &facts.docker else {
        return Err("Docker is not reachable".into());
    };
    let mut local = std::collections::HashSet::new();
    for image in images {
        let repository = crate::docker::containers::image_repository(image);
        local.extend(
            crate::docker::images::local_layers(&running.engine, repository)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let bytes = crate::versions::download_size(images, &local)
        .await
        .map_err(|e| e.to_string())?;
    let root = crate::docker::images::root_dir(&running.engine)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "/var/lib/docker".into());
    Ok(Download {
        version: version.to_string(),
        bytes,
        root: root.into(),
    })
}

/// The download of the next version the registry offers (see `hoist versions`), checked.
async fn next_download_finding(
    stack: &crate::stack::Stack,
    facts: &Facts,
    backup_estimate: u64,
) -> Option<Finding> {
    // Without a pinned version there is no next one to measure (the version finding says why).
    let pinned = stack.detection.version.value.clone();
    let unknown = |e: String| {
        Finding::new(
            "download",
            Level::Warn,
            format!("the size of the next version's download is unknown: {e}"),
        )
    };
    let images = match crate::stack::targets::target_images(stack, pinned.as_deref()?) {
        Ok(images) => images,
        Err(e) => return Some(unknown(e)),
    };
    let image = images.values().next()?.clone();
    let services = crate::probe::services::services(facts);
    let running = crate::probe::services::running_version(&services);
    let overview = match crate::versions::overview(&image, pinned.as_deref(), running.as_deref())
        .await
    {
        Ok(o) => o,
        // No registry, no new images: an upgrade cannot start, so this is no mere unknown.
        Err(e @ crate::versions::registry::RegistryError::Unreachable { .. }) => {
            return Some(Finding::new(
                "download",
                Level::Fail,
                format!(
                    "{e}: an upgrade needs it for the new images; run hoist again once it answers"
                ),
            ));
        }
        Err(e) => return Some(unknown(e.to_string())),
    };
    let next = overview.next?;
    let mut refs: Vec<String> = match crate::stack::targets::target_images(stack, &next) {
        Ok(images) => images.into_values().collect(),
        Err(e) => return Some(unknown(e)),
    };
    refs.sort();
    refs.dedup();
    Some(match measure_download(facts, &next, &refs).await {
        Ok(d) => download_finding(facts, &d, backup_estimate),
        Err(e) => unknown(e),
    })
}

/// Where a data mount's content is on this host: a bind mount's path, or the directory the
/// engine reports for the named volume mounted at that place.
fn host_path_of(facts: &Facts, mount: &DataMount) -> Option<String> {
    facts.host_path(mount)
}

/// An SSH session outside tmux or screen dies with the connection; the upgrade should not.
pub fn session_finding(env: &dyn Fn(&str) -> Option<String>) -> Option<Finding> {
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    if !(set("SSH_CONNECTION") || set("SSH_TTY")) {
        return None;
    }
    if set("TMUX")
        || set("STY")
        || env("TERM").is_some_and(|t| t.starts_with("screen") || t.starts_with("tmux"))
    {
        return Some(Finding::new(
            "session",
            Level::Ok,
            "running inside tmux/screen: a dropped SSH connection will not interrupt an upgrade",
        ));
    }
    Some(Finding::new(
        "session",
        Level::Warn,
        "you are in an SSH session outside tmux or screen: if the connection drops, so does your view of the upgrade. Start `tmux` (or `screen`) and run hoist inside it",
    ))
}

/// What must hold before a backup can be taken: Docker answers, and the database can be read
/// (a dump of a database hoist cannot reach would not be a backup). The reason has no final
/// period: callers add what they did not change.
pub fn backup_preconditions(facts: &Facts, estimate: &BackupEstimate) -> Result<(), (u8, String)> {
    if let Err(e) = &facts.docker {
        return Err((e.exit_code() as u8, e.to_string()));
    }
    if let Some(seen) = &facts.view.unsupported_database {
        return Err((3, unsupported_database_sentence(seen)));
    }
    if let Some(unseen) = unseen_database::finding(facts)
        && unseen.status == Level::Fail
    {
        return Err((3, unseen.message));
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
    if let Some(why) = swarm::data_elsewhere(facts) {
        return Err((3, why));
    }
    // A backup dir that cannot hold a backup, or lies in what it archives: the setup (exit 2).
    let dir =
        backup_inside_data(facts).unwrap_or_else(|| backup_dir_finding(&facts.view.backup_dir));
    if dir.status == Level::Fail {
        return Err((2, dir.message));
    }
    let disk = disk_finding(facts, estimate);
    if disk.status == Level::Fail {
        return Err((3, disk.message));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn ssh_outside_tmux_gets_the_hint() {
        let f = session_finding(&env(&[("SSH_CONNECTION", "10.0.0.2 5000 10.0.0.1 22")])).unwrap();
        assert_eq!(f.status, Level::Warn);
        assert!(f.message.contains("tmux"));
    }

    #[test]
    fn ssh_inside_tmux_or_screen_is_fine_and_local_says_nothing() {
        let f = session_finding(&env(&[
            ("SSH_TTY", "/dev/pts/1"),
            ("TMUX", "/tmp/tmux-0/default,1,0"),
        ]))
        .unwrap();
        assert_eq!(f.status, Level::Ok);
        let f = session_finding(&env(&[("SSH_TTY", "/dev/pts/1"), ("STY", "1234.pts-1")])).unwrap();
        assert_eq!(f.status, Level::Ok);
        assert!(session_finding(&env(&[("TERM", "xterm")])).is_none());
    }

    fn service(state: &str, health: Option<&str>) -> ServiceStatus {
        ServiceStatus {
            name: "api".into(),
            upgraded: true,
            image: None,
            version: None,
            digest: None,
            state: state.into(),
            health: health.map(str::to_string),
            exit_code: Some(1),
            restart_count: 4,
            containers: 1,
            lifecycle: None,
        }
    }

    fn hc(healthcheck: bool) -> Role {
        Role {
            healthcheck,
            ..Role::default()
        }
    }

    #[test]
    fn one_shot_and_inactive_services_are_not_failures() {
        let mut done = service("exited", None);
        done.exit_code = Some(0);
        let one_shot = Role {
            one_shot: true,
            ..Role::default()
        };
        assert_eq!(judge_service(&done, &one_shot).0, Level::Ok);
        assert_eq!(judge_service(&done, &hc(false)).0, Level::Fail);
        let mut failed = service("exited", None);
        failed.exit_code = Some(1);
        assert_eq!(judge_service(&failed, &one_shot).0, Level::Fail);
        let off = Role {
            inactive: Some("profile debug is not active".into()),
            ..Role::default()
        };
        let (level, message) = judge_service(&service("missing", None), &off);
        assert_eq!(level, Level::Ok);
        assert!(message.contains("profile debug"), "{message}");
    }

    #[test]
    fn services_are_judged_by_state_and_health() {
        assert_eq!(
            judge_service(&service("running", Some("healthy")), &hc(true)).0,
            Level::Ok
        );
        assert_eq!(
            judge_service(&service("running", Some("unhealthy")), &hc(true)).0,
            Level::Fail
        );
        assert_eq!(
            judge_service(&service("running", Some("starting")), &hc(true)).0,
            Level::Fail
        );
        assert_eq!(
            judge_service(&service("exited", None), &hc(false)).0,
            Level::Fail
        );
        assert_eq!(
            judge_service(&service("missing", None), &hc(false)).0,
            Level::Fail
        );
        let (level, message) = judge_service(&service("restarting", None), &hc(false));
        assert_eq!(level, Level::Fail);
        assert!(
            message.contains("restarted 4 times") && message.contains("exit code 1"),
            "{message}"
        );
    }

    #[test]
    fn the_state_dir_is_tried_for_real() {
        let tmp = tempfile::tempdir().unwrap();
        let ok = state_dir_finding(&tmp.path().join("state").join("hoist"));
        assert_eq!(ok.status, Level::Ok, "{}", ok.message);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink("/nonexistent/hoist-state", &link).unwrap();
        let dangling = state_dir_finding(&link);
        assert_eq!(dangling.status, Level::Fail);
        assert!(
            dangling.message.contains("symbolic link"),
            "{}",
            dangling.message
        );
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let not_dir = state_dir_finding(&file.join("hoist"));
        assert_eq!(not_dir.status, Level::Fail);
        assert!(
            not_dir.message.contains("is not a directory"),
            "{}",
            not_dir.message
        );
    }
}
