//! The backup as a step of a run: what to back up, from the gathered facts; recording the
//! finished backup in the journal; how to copy it off the server.
use crate::backup;
use crate::journal::{BackupFileRow, Journal, NewBackup};
use crate::probe::facts::{self, Facts};

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
/// container and probe, each data mount with a container of a service that mounts it, the
/// services beside the app that keep data; `record` is where a stop for the copy is written.
pub fn source_from<'a>(
    facts: &'a Facts,
    docker: &'a facts::Running,
    running_version: Option<&'a str>,
    estimate_bytes: u64,
    record: Option<backup::hold::Recorder<'a>>,
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
        compose_files: crate::stack::project::all_files(&view.compose_files),
        env_file: &view.env_file,
        env_files: view.env_files.clone(),
        settings_file: view.settings_file.as_deref(),
        smoke: view.smoke.clone(),
        version_variable: view.version_variable.as_deref().unwrap_or(""),
        upgraded: &view.upgraded,
        pinned: view.pinned.as_deref(),
        running_version,
        database,
        data,
        sqlite_files: facts
            .sqlite
            .iter()
            .map(|f| backup::ManifestSqlite {
                path: f.path.clone(),
                fingerprint: f.fingerprint.clone(),
            })
            .collect(),
        stop_for_copy: facts.stop_for_copy(),
        swarm_stack: crate::probe::swarm::stack_name(facts.swarm.as_ref()),
        beside: facts
            .view
            .beside
            .iter()
            .map(|b| beside_source(b, docker))
            .collect(),
        record,
        // Callers that read the settings set `timeouts.stop` here.
        stop_timeout: crate::steps::stop::DEFAULT_STOP,
        containers: &docker.containers,
        estimate: Some(Box::new(move || Some(estimate_bytes).filter(|&n| n > 0))),
    }
}

/// A service beside the app with its containers and the mounts to archive: as the compose
/// file says, or (a volume its image declares) as the running container has them.
fn beside_source<'a>(
    b: &'a crate::stack::detect::Beside,
    docker: &'a facts::Running,
) -> backup::BesideSource<'a> {
    let containers = docker.of_service(&b.service);
    let mounts = if b.targets.is_empty() {
        containers
            .first()
            .map(|c| {
                c.mounts
                    .iter()
                    .filter(|m| m.kind == "volume" && m.read_write)
                    .map(|m| {
                        (
                            m.name.clone().unwrap_or_else(|| m.source.clone()),
                            m.destination.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        b.mounts
            .iter()
            .cloned()
            .zip(b.targets.iter().cloned())
            .collect()
    };
    backup::BesideSource {
        beside: b,
        containers,
        mounts,
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
