//! The facts `status` and `check` both report: what the files say, what Docker runs, what the
//! database holds. Gathered once, read-only.
use std::path::PathBuf;

use crate::db::{self, DbProbe};
use crate::docker::{self, ContainerInfo, DockerError, Engine};
use crate::stack::detect::{Beside, DataMount, Database, SeenDatabase};
use crate::stack::{self, Stack};

use crate::context::Context;

/// What the report needs of the stack's files, in one place.
#[derive(Debug, Clone)]
pub struct StackView {
    pub project: String,
    pub project_dir: PathBuf,
    pub compose_file: PathBuf,
    /// Every file Compose reads, in order (`compose_file` first).
    pub compose_files: Vec<PathBuf>,
    /// The services' `env_file:` files that exist (kept in the backup beside `.env`).
    pub env_files: Vec<PathBuf>,
    /// The `-f` files the user gave hoist (Compose is given the same).
    pub given_files: Vec<PathBuf>,
    /// hoist.yaml beside the compose file, when there is one (kept in the backup: it holds
    /// the checks and the database's commands).
    pub settings_file: Option<PathBuf>,
    pub env_file: PathBuf,
    /// The variable that holds the version (None for a literal tag).
    pub version_variable: Option<String>,
    /// Where the version is written, for people.
    pub pin_place: String,
    /// Why hoist cannot tell where the version is written.
    pub pin_unknown: Option<String>,
    /// The pinned tag names no single release (`latest`, `16`).
    pub moving: bool,
    pub pinned: Option<String>,
    pub pinned_source: Option<String>,
    /// All services of the compose file, in name order.
    pub services: Vec<String>,
    /// The services that run the app's image (the ones an upgrade recreates).
    pub upgraded: Vec<String>,
    /// Services with a healthcheck (readiness is their health).
    pub with_healthcheck: Vec<String>,
    pub database: Option<Database>,
    /// `x-hoist: {database: none}`: the user says the app keeps nothing worth a dump.
    pub database_declined: bool,
    /// A database hoist recognised and cannot dump.
    pub unsupported_database: Option<SeenDatabase>,
    pub data: Vec<DataMount>,
    /// Services beside the app that keep data hoist does not back up.
    pub beside: Vec<Beside>,
    /// Services that run once and exit.
    pub one_shot: Vec<String>,
    /// The smoke checks (after an upgrade's preflight: as the app answered them before it).
    pub smoke: Vec<crate::stack::detect::Smoke>,
    /// The checks beyond HTTP (`x-hoist: checks:`).
    pub app_checks: Vec<crate::stack::checks::AppCheck>,
    /// The observation window after an upgrade verified, in seconds (`observe:`).
    pub observe_s: Option<u64>,
    /// Services Compose does not start, and why.
    pub inactive: Vec<(String, String)>,
    pub backup_dir: PathBuf,
    /// What the files ask for that hoist does not do (said as notes, never silently dropped).
    pub unheeded: Vec<String>,
}

pub struct Facts {
    pub view: StackView,
    /// Things the user should know that are not problems (e.g. the project runs under another name).
    pub notes: Vec<String>,
    pub docker: Result<Running, DockerError>,
    /// None when the stack has no database hoist knows of.
    pub db: Option<Result<DbProbe, String>>,
    /// SQLite files in the app's data (found on a running stack).
    pub sqlite: Vec<super::sqlite_files::SqliteFile>,
    /// Services a hoist stopped for a backup's copy and has not started again (the journal's
    /// open records): the hoist may still be copying, or was killed.
    pub held: Vec<Held>,
    /// No Compose container of the project runs, and the Swarm this engine is in holds the
    /// files' services as a stack (`docker stack deploy`): hoist says so rather than calling
    /// the app down.
    pub swarm: Option<super::swarm::InSwarm>,
}

impl Facts {
    /// Where a data mount is on this host: the running containers' mount source (bind or
    /// named volume alike), else a bind mount's path when it exists.
    pub fn host_path(&self, mount: &crate::stack::detect::DataMount) -> Option<String> {
        if let Ok(running) = &self.docker {
            for service in &mount.services {
                for c in running.of_service(service) {
                    if let Some(m) = c.mounts.iter().find(|m| m.destination == mount.target) {
                        return Some(m.source.clone());
                    }
                }
            }
        }
        // A Swarm task on another node has the path on its node: this node's is not its data.
        let swarm = matches!(self.swarm, Some(super::swarm::InSwarm::Stack(_)));
        (mount.kind == crate::stack::compose::MountKind::Bind
            && !swarm
            && std::path::Path::new(&mount.source).exists())
        .then(|| mount.source.clone())
    }

    /// The app's services to stop while their data is copied: those that keep SQLite files in it
    /// (a file copied while it is written is not a consistent database).
    pub fn stop_for_copy(&self) -> Vec<String> {
        let view = &self.view;
        let mut services: Vec<String> = self.sqlite.iter().map(|f| f.service.clone()).collect();
        if let Some(db) = view
            .database
            .as_ref()
            .filter(|d| d.kind == crate::db::DbKind::Sqlite)
        {
            services.push(db.service.clone());
        }
        // Every app service that mounts the same data writes to it too.
        for m in &view.data {
            if m.services.iter().any(|s| services.contains(s)) {
                services.extend(m.services.iter().cloned());
            }
        }
        // The app's services, and an SQLite database's own service (it writes the file).
        let sqlite_db = view
            .database
            .as_ref()
            .filter(|d| d.kind == crate::db::DbKind::Sqlite)
            .map(|d| d.service.clone());
        services.retain(|s| view.upgraded.contains(s) || sqlite_db.as_ref() == Some(s));
        services.sort();
        services.dedup();
        services
    }
}

/// A service stopped for a backup's copy, by the journal.
#[derive(Debug, Clone)]
pub struct Held {
    pub service: String,
    pub run_id: String,
    /// The hoist that stopped it still runs (it is copying now).
    pub copying: bool,
    /// That hoist's run ended without starting it again (rather than being killed).
    pub run_ended: bool,
}

/// The services the journal in `state_dir` says a hoist stopped for a copy of `project`.
async fn held(state_dir: &std::path::Path, project: &str) -> Vec<Held> {
    if !state_dir.join("journal.sqlite3").exists() {
        return Vec::new();
    }
    let Ok(journal) = crate::journal::Journal::open(state_dir).await else {
        return Vec::new();
    };
    let holds = journal.unfinished_holds(project).await.unwrap_or_default();
    journal.close().await;
    holds
        .into_iter()
        .flat_map(|h| {
            // The hoist asking now is not the one copying (the wizard runs several in one).
            let own = i64::from(std::process::id());
            let copying = !h.run_ended && h.pid != own && crate::journal::pid_alive(h.pid);
            h.services.into_iter().map(move |service| Held {
                service,
                run_id: h.run_id.clone(),
                copying,
                run_ended: h.run_ended,
            })
        })
        .collect()
}

pub struct Running {
    pub engine: Engine,
    pub containers: Vec<ContainerInfo>,
}

impl Running {
    pub fn of_service(&self, service: &str) -> Vec<&ContainerInfo> {
        self.containers
            .iter()
            .filter(|c| c.service == service)
            .collect()
    }
}

/// Loads the stack's files; an error here is bad input (exit 2) and nothing else is attempted.
pub fn load_stack(ctx: &Context) -> Result<(Stack, StackView), stack::StackError> {
    let os_env = |key: &str| std::env::var(key).ok();
    let stack = stack::load(&ctx.paths, &os_env)?;
    let view = StackView::of(&stack, ctx);
    Ok((stack, view))
}

impl StackView {
    /// How every Compose call of hoist names the project: the user's own `-f` files (none:
    /// Compose finds the same files as `docker compose` in that directory) and env file.
    pub fn compose(&self) -> docker::compose_cli::ComposeInvocation {
        docker::compose_cli::ComposeInvocation {
            project_dir: self.project_dir.clone(),
            project_name: self.project.clone(),
            files: self.given_files.clone(),
            env_file: Some(self.env_file.clone()),
        }
    }

    pub fn of(stack: &Stack, ctx: &Context) -> StackView {
        let d = &stack.detection;
        let mut services: Vec<String> = stack.compose.services.keys().cloned().collect();
        services.sort();
        let backup_dir = ctx
            .backup_dir
            .clone()
            .or_else(|| stack.settings.backup_dir.clone())
            .unwrap_or_else(|| {
                let parent = stack.project_dir.parent().unwrap_or(&stack.project_dir);
                parent.join(format!("{}-backups", stack.project_name))
            });
        StackView {
            project: stack.project_name.clone(),
            project_dir: stack.project_dir.clone(),
            compose_file: stack.compose_path.clone(),
            compose_files: stack.compose_files.clone(),
            given_files: stack.given_files.clone(),
            settings_file: stack.settings_path.clone(),
            env_files: {
                let mut files: Vec<PathBuf> = stack
                    .compose
                    .services
                    .values()
                    .flat_map(|s| s.env_files.iter().map(|e| e.path.clone()))
                    .filter(|p| p.is_file() && p != &stack.env_path)
                    .collect();
                files.sort();
                files.dedup();
                files
            },
            env_file: stack.env_path.clone(),
            version_variable: (!d.version.variable.is_empty()).then(|| d.version.variable.clone()),
            pin_place: d
                .version
                .site
                .place()
                .replace(&format!("{}/", stack.project_dir.display()), ""),
            pin_unknown: match &d.version.site {
                crate::stack::detect::Site::Unknown { reason } => Some(reason.clone()),
                _ => None,
            },
            moving: d.version.moving,
            pinned: d.version.value.clone(),
            pinned_source: Some(d.version.source.clone()),
            services,
            upgraded: d.upgraded.clone(),
            with_healthcheck: d.with_healthcheck.clone(),
            database: d.database.clone(),
            database_declined: stack.settings.database.as_ref().is_some_and(|s| s.none),
            unsupported_database: d.unsupported_database.clone(),
            data: d.data.clone(),
            beside: d.beside.clone(),
            one_shot: d.one_shot.clone(),
            smoke: d.smoke.clone(),
            app_checks: d.app_checks.clone(),
            observe_s: stack
                .settings
                .observe
                .filter(|w| !w.is_zero())
                .map(|w| w.as_secs()),
            inactive: stack.inactive.clone(),
            unheeded: stack
                .reading_note
                .clone()
                .into_iter()
                .chain(stack.unread_files.iter().cloned())
                .chain(stack.settings.backup_keep
                .map(|n| {
                    format!(
                        "backup.keep is {n}, but hoist does not remove old backups yet: it keeps every one in {}; remove old ones by hand",
                        backup_dir.display()
                    )
                }))
                .collect(),
            backup_dir,
        }
    }
}

pub async fn gather(ctx: &Context, mut view: StackView) -> Facts {
    let mut notes = view.unheeded.clone();
    let docker = match Engine::connect(ctx.docker_timeout).await {
        Ok(engine) => match find_containers(&engine, &mut view, &mut notes).await {
            Ok(containers) => Ok(Running { engine, containers }),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    tracing::info!(project = %view.project, docker_ok = docker.is_ok(), "gathered the stack's state");
    let swarm = match &docker {
        Ok(running) if running.containers.is_empty() => {
            let wanted: Vec<String> = view
                .services
                .iter()
                .filter(|s| {
                    !view.one_shot.contains(s) && !view.inactive.iter().any(|(i, _)| i == *s)
                })
                .cloned()
                .collect();
            let binds: Vec<String> = view
                .data
                .iter()
                .filter(|m| m.kind == crate::stack::compose::MountKind::Bind)
                .map(|m| m.source.clone())
                .collect();
            super::swarm::find(&running.engine, &wanted, &binds, &view.project).await
        }
        _ => None,
    };
    // A Swarm stack's services run as tasks: their containers on this node are the app's.
    let mut docker = docker;
    if let (Some(super::swarm::InSwarm::Stack(stack)), Ok(running)) = (&swarm, &mut docker) {
        match docker::containers::swarm_task_containers(&running.engine, &stack.name).await {
            Ok(containers) => running.containers = containers,
            Err(e) => notes.push(format!(
                "the containers of Swarm stack {} could not be listed: {e}",
                stack.name
            )),
        }
    }
    let db = match (&mut view.database, &docker) {
        (None, _) => None,
        (Some(spec), Ok(running)) => {
            match super::swarm::elsewhere(swarm.as_ref(), running, &spec.service) {
                Some(why) => Some(Err(why)),
                None => Some(probe_and_confirm(spec, running).await),
            }
        }
        (Some(_), Err(_)) => Some(Err("not read: Docker is not reachable".to_string())),
    };
    let sqlite = match &docker {
        Ok(running) => super::sqlite_files::in_data(&view.data, running).await,
        Err(_) => Vec::new(),
    };
    let held = held(&ctx.state_dir, &view.project).await;
    Facts {
        view,
        notes,
        docker,
        db,
        sqlite,
        held,
        swarm,
    }
}

/// The project's containers, by the name the files give it, or else by the directory they were
/// started from (a stack started with `docker compose -p NAME`).
async fn find_containers(
    engine: &Engine,
    view: &mut StackView,
    notes: &mut Vec<String>,
) -> Result<Vec<ContainerInfo>, DockerError> {
    let containers = docker::stack_containers(engine, &view.project).await?;
    if !containers.is_empty() {
        return Ok(containers);
    }
    match docker::containers::project_started_from(engine, &view.project_dir).await? {
        Some(other) if other != view.project => {
            notes.push(format!(
                "the containers of {} run as Compose project {other:?} (started with `-p {other}`), not {:?}; hoist follows them",
                view.project_dir.display(),
                view.project
            ));
            view.project = other;
            docker::stack_containers(engine, &view.project).await
        }
        _ => Ok(containers),
    }
}

/// Reads the database, and asks its container which server it runs when that helps: a
/// database known by other evidence than its image's name is confirmed (said in `how`), and a
/// failed read says so when another kind runs there.
async fn probe_and_confirm(spec: &mut Database, running: &Running) -> Result<DbProbe, String> {
    use super::db_kind::{Confirmation, confirm};
    let probe = probe_db(spec, running).await;
    let by_name = spec.how == "its image name";
    if probe.is_ok() && by_name {
        return probe;
    }
    let containers = running.of_service(&spec.service);
    let Some(container) = containers.iter().find(|c| c.is_running()) else {
        return probe;
    };
    match (
        confirm(&running.engine, &container.id, spec.kind).await,
        probe,
    ) {
        (Confirmation::Confirmed(version), probe) => {
            spec.how = format!("{}, confirmed: it runs {version}", spec.how);
            probe
        }
        (
            Confirmation::Other {
                name,
                setting,
                version,
            },
            Err(e),
        ) => Err(format!(
            "{e}. Service {} was taken for {} by {}, but it runs {name} ({version}): say so with `x-hoist: {{database: {{service: {}, kind: {setting}}}}}`",
            spec.service,
            spec.kind.name(),
            spec.how,
            spec.service
        )),
        (_, probe) => probe,
    }
}

/// The database read again, as `gather` read it (None: the stack has none, or Docker was not
/// reachable then). For a moment that needs the database's state and not the rest.
pub async fn database_again(facts: &Facts) -> Option<Result<DbProbe, String>> {
    let spec = facts.view.database.as_ref()?;
    let running = facts.docker.as_ref().ok()?;
    Some(probe_db(spec, running).await)
}

/// Reads the database through the db container's address on its network (the database is
/// rarely published on the host, and should not need to be).
async fn probe_db(spec: &Database, running: &Running) -> Result<DbProbe, String> {
    if spec.kind == db::DbKind::Command {
        let container = running_db_container(spec, running)?;
        return super::db_command::probe(&running.engine, &container, spec).await;
    }
    if spec.kind == db::DbKind::Surrealdb {
        let target = db_target(spec, running)?;
        return db::surreal::probe(&spec.surreal_at(&target.host)).await;
    }
    let timeout = std::time::Duration::from_secs(10);
    let target = db_target(spec, running)?;
    match db::probe(&target, timeout).await {
        // The container's address is not reachable from every host (rootless Docker, some
        // VPN setups): a port the compose file publishes is the other way in.
        Err(db::DbError::Connect { .. } | db::DbError::Timeout { .. })
            if spec.published.is_some() =>
        {
            db::probe(&via_port(spec, target), timeout)
                .await
                .map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

/// The database's write tally alone (see `db::read_writes`), as `probe_db` reaches it.
async fn writes_of(spec: &Database, running: &Running) -> Result<db::Writes, String> {
    if spec.kind == db::DbKind::Command {
        return Err(format!(
            "hoist reaches the database of service {} (kind command) only through its commands, so it cannot count what was written to it",
            spec.service
        ));
    }
    if spec.kind == db::DbKind::Surrealdb {
        return Err(db::surreal::NO_TALLY.to_string());
    }
    let timeout = std::time::Duration::from_secs(10);
    let target = db_target(spec, running)?;
    match db::read_writes(&target, timeout).await {
        Err(db::DbError::Connect { .. } | db::DbError::Timeout { .. })
            if spec.published.is_some() =>
        {
            db::read_writes(&via_port(spec, target), timeout)
                .await
                .map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

/// The database's write tally alone, read again now (None: no database, or no Docker).
pub async fn database_writes(facts: &Facts) -> Option<Result<db::Writes, String>> {
    let spec = facts.view.database.as_ref()?;
    let running = facts.docker.as_ref().ok()?;
    Some(writes_of(spec, running).await)
}

/// The stack's containers listed again (they are recreated by every restart); None without
/// Docker.
pub async fn running_again(facts: &Facts) -> Option<Running> {
    let running = facts.docker.as_ref().ok()?;
    let mut view = facts.view.clone();
    let containers = find_containers(&running.engine, &mut view, &mut Vec::new())
        .await
        .ok()?;
    Some(Running {
        engine: running.engine.clone(),
        containers,
    })
}

fn via_port(spec: &Database, target: db::DbTarget) -> db::DbTarget {
    let (host, port) = spec.published.clone().unwrap_or_default();
    db::DbTarget {
        host,
        port,
        ..target
    }
}

/// The id of `spec`'s running container, for a database reached through commands.
fn running_db_container(spec: &Database, running: &Running) -> Result<String, String> {
    running
        .of_service(&spec.service)
        .iter()
        .find(|c| c.is_running())
        .map(|c| c.id.clone())
        .ok_or_else(|| {
            format!(
                "the database container of service {} is not running, so its revision could not be read",
                spec.service
            )
        })
}

/// Where and how to reach the database of `spec` among `running`'s containers.
fn db_target(spec: &Database, running: &Running) -> Result<db::DbTarget, String> {
    let containers = running.of_service(&spec.service);
    let Some(container) = containers.iter().find(|c| c.is_running()) else {
        return Err(format!(
            "the database container of service {} is not running, so its schema could not be read",
            spec.service
        ));
    };
    let sqlite_path = match spec.kind {
        db::DbKind::Sqlite => Some(sqlite_host_path(spec, container)?),
        _ => None,
    };
    let ip = match (spec.kind, container.addresses.first()) {
        (db::DbKind::Sqlite, _) => String::new(),
        (_, Some((_, ip))) => ip.clone(),
        (_, None) => {
            return Err(format!(
                "the database container {} has no network address that hoist can reach",
                container.name
            ));
        }
    };
    Ok(db::DbTarget {
        kind: spec.kind,
        host: ip,
        port: spec.port,
        user: spec.user.clone(),
        password: spec.password.clone(),
        database: spec.name.clone(),
        sqlite_path,
    })
}

/// Where an SQLite file inside a container is on this host: under the mount that holds it
/// (bind mount or named volume alike; the engine reports the host directory of both).
fn sqlite_host_path(spec: &Database, container: &ContainerInfo) -> Result<PathBuf, String> {
    let Some(path) = &spec.path else {
        return Err(format!(
            "service {} uses SQLite, but x-hoist.database.path (the database file inside the container) is not set",
            spec.service
        ));
    };
    let inside = std::path::Path::new(path);
    container
        .mounts
        .iter()
        .filter_map(|m| {
            inside
                .strip_prefix(&m.destination)
                .ok()
                .map(|rest| (m.destination.len(), PathBuf::from(&m.source).join(rest)))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, host)| host)
        .ok_or_else(|| {
            format!(
                "the SQLite database {path} of service {} is not on a volume or bind mount, so it would be lost with the container; hoist cannot read or back it up",
                spec.service
            )
        })
}
