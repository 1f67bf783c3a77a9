//! The data of services beside the app (a Redis, a search index, another database): archived
//! as files into the backup (kind `beside`), each copy made consistent the way the service
//! allows — Redis by `SAVE`, the rest by stopping the service for the copy — or left out when
//! the settings say so. A rollback does not restore them (those services were not upgraded);
//! RESTORE.md says how to by hand.
use std::path::Path;

use super::{
    BackupError, ManifestFile, MountCopy, Progress, Source, archive_name, archive_then_start, hold,
};
use crate::docker::{ContainerInfo, Engine};
use crate::stack::detect::{Beside, BesideCopy};

/// A service beside the app as the backup takes it.
pub struct BesideSource<'a> {
    pub beside: &'a Beside,
    /// Its containers; the first one's mounts are read.
    pub containers: Vec<&'a ContainerInfo>,
    /// Each mount to archive: (volume or host path, path in the container).
    pub mounts: Vec<(String, String)>,
}

/// Archives every service beside the app that is not left out.
pub(super) async fn copy_all(
    engine: &Engine,
    src: &Source<'_>,
    dir: &Path,
    taken: &mut Vec<String>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<ManifestFile>, BackupError> {
    let mut files = Vec::new();
    for b in src
        .beside
        .iter()
        .filter(|b| b.beside.copy != BesideCopy::LeftOut)
    {
        files.extend(copy_one(engine, src, b, dir, taken, progress).await?);
    }
    Ok(files)
}

async fn copy_one(
    engine: &Engine,
    src: &Source<'_>,
    b: &BesideSource<'_>,
    dir: &Path,
    taken: &mut Vec<String>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Vec<ManifestFile>, BackupError> {
    let service = b.beside.service.as_str();
    let Some(reader) = b.containers.first() else {
        // Said, not a failure: a service that was never created has written nothing yet.
        progress(Progress::Note(format!(
            "warning: {service} keeps data beside the app but has no container, so its data was not copied (create it with `docker compose up -d {service}`, or leave it out with `x-hoist: {{leave_out: [{service}]}}`)"
        )));
        return Ok(Vec::new());
    };
    // A crash-looping one is written to between its restarts: stopped too.
    let running: Vec<&ContainerInfo> = b
        .containers
        .iter()
        .copied()
        .filter(|c| c.is_running() || c.state == "restarting")
        .collect();
    let mut stop = !running.is_empty();
    if stop && b.beside.copy == BesideCopy::SaveThenCopy {
        match hold::redis_save(engine, &running[0].id).await {
            Ok(()) => {
                progress(Progress::Note(format!(
                    "{service} saved its snapshot; copying it while it runs"
                )));
                if let Some(dir) = hold::redis_dir(engine, &running[0].id).await {
                    let under = |t: &str| Path::new(&dir).starts_with(t);
                    if !b.mounts.iter().any(|(_, t)| under(t)) {
                        progress(Progress::Note(format!(
                            "{service} writes its snapshot to {dir}, which is not on any of its volumes: the backup holds its volumes only, and a re-created container would start without that data"
                        )));
                    }
                }
                stop = false;
            }
            Err(why) => progress(Progress::Note(format!(
                "{service}: {why}; it is stopped for the copy instead"
            ))),
        }
    }
    let held = if stop {
        progress(Progress::Note(format!(
            "stopping {service} while its data is copied"
        )));
        let services = [service.to_string()];
        hold::not_in_swarm(src.swarm_stack, &services)?;
        Some(hold::stop_for_copy(engine, src.record, &services, &running, src.stop_timeout).await?)
    } else {
        None
    };
    let copies = b
        .mounts
        .iter()
        .map(|(source, target)| {
            let name = archive_name(&format!("beside-{service}"), source, taken);
            taken.push(name.clone());
            MountCopy {
                container: &reader.id,
                source,
                target,
                name,
                kind: "beside",
                service: Some(service),
            }
        })
        .collect();
    let held = held.map(|h| (h, service.to_string()));
    archive_then_start(engine, src, copies, held, dir, progress).await
}
