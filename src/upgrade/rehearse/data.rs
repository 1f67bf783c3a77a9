//! The copy's data: each data mount the app writes copied into a volume of the rehearsal's,
//! and the database started empty and loaded from the backup's dump.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Rehearsal;
use super::report::Found;
use crate::docker::compose_cli;
use crate::docker::rehearsals::{LABEL, LABEL_OF};
use crate::probe::facts::{self, StackView};
use crate::run::{Run, Step};
use crate::stack::compose::MountKind;

/// The data mounts' copies: source (path or key) -> the copy's volume; and the mounts that
/// start empty, as there was no room for their copy.
#[derive(Default)]
pub(super) struct Copies {
    pub(super) copies: BTreeMap<String, String>,
    pub(super) without: BTreeSet<String>,
}

/// Room kept free beside the copies on Docker's disk.
const MARGIN: u64 = 256 * 1000 * 1000;

/// What the data holds, as the backup just taken counted it (each archive's content).
fn data_bytes(backup_dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(backup_dir.join("manifest.json")).ok()?;
    let manifest: Value = serde_json::from_str(&text).ok()?;
    Some(
        manifest["files"]
            .as_array()?
            .iter()
            .filter(|f| f["kind"] == "archive")
            .filter_map(|f| f["content_bytes"].as_u64())
            .sum(),
    )
}

/// Copies each data mount the app writes into a new volume of the rehearsal, when Docker's
/// disk has room for them (else the copy runs without them, and says so).
pub(super) async fn copy_data(
    run: &Run<'_>,
    r: &Rehearsal<'_>,
    docker: &facts::Running,
    name: &str,
    config: &Value,
    found: &mut Found,
) -> Result<Copies, String> {
    let view = &r.facts.view;
    let mut out = Copies::default();
    let writable: Vec<_> = view
        .data
        .iter()
        .filter(|m| !m.read_only && m.kind != MountKind::Tmpfs)
        .collect();
    if writable.is_empty() {
        return Ok(out);
    }
    let needed = data_bytes(r.backup_dir);
    let root = crate::docker::images::root_dir(&docker.engine)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| "/var/lib/docker".into());
    let free = fs4::available_space(Path::new(&root)).ok();
    found.copy_bytes = needed;
    match (needed, free) {
        (Some(needed), Some(free)) if needed + MARGIN > free => {
            found.notes.push(format!(
                "the app's files are NOT in the copy: they hold {}, and {root} has {} free (a copy needs that plus {}); the copy runs with empty data mounts, so a release that changes or needs the files is not tested",
                crate::units::human_bytes(needed),
                crate::units::human_bytes(free),
                crate::units::human_bytes(MARGIN)
            ));
            out.without = writable.iter().map(|m| m.source.clone()).collect();
            return Ok(out);
        }
        (Some(_), Some(_)) => {}
        _ => found.notes.push(format!(
            "the free space on {root} could not be read, so the data was copied without knowing it fits"
        )),
    }
    let images: Vec<String> = docker
        .containers
        .iter()
        .filter(|c| view.upgraded.contains(&c.service))
        .map(|c| c.image.clone())
        .chain(
            view.database
                .iter()
                .flat_map(|db| docker.of_service(&db.service))
                .map(|c| c.image.clone()),
        )
        .collect();
    for (i, mount) in writable.into_iter().enumerate() {
        let source = match mount.kind {
            MountKind::Bind => mount.source.clone(),
            MountKind::Volume => config["volumes"][&mount.source]["name"]
                .as_str()
                .unwrap_or(&mount.source)
                .to_string(),
            MountKind::Tmpfs => continue,
        };
        let copy = format!("{name}-copy-{}", i + 1);
        run.progress(
            Step::Restart,
            format!("copying {} into volume {copy}", mount.source),
        );
        let labels = HashMap::from([
            (LABEL.to_string(), name.to_string()),
            (LABEL_OF.to_string(), view.project.clone()),
        ]);
        let started = Instant::now();
        crate::docker::volumes::copy_into_new(&docker.engine, &source, &copy, labels, &images)
            .await?;
        found.copied.push(json!({
            "from": mount.source,
            "to": copy,
            "ms": started.elapsed().as_millis() as u64,
        }));
        out.copies.insert(mount.source.clone(), copy);
    }
    Ok(out)
}

/// Starts the copy's database alone, waits until it answers at its address, and loads the
/// backup's dump into it.
pub(super) async fn database_from_dump(
    run: &mut Run<'_>,
    r: &Rehearsal<'_>,
    rview: &StackView,
    tool: &compose_cli::ComposeTool,
    db: &crate::stack::detect::Database,
) -> Result<(), String> {
    let Some(dump) = dump_in(r.backup_dir) else {
        return Err(format!(
            "the backup in {} holds no database dump to give the copy",
            r.backup_dir.display()
        ));
    };
    let step = run
        .start(Step::RestoreDatabase, "the copy's database, from the dump")
        .await;
    let mut on_line = |_: String| {};
    rview
        .compose()
        .up_services(
            tool,
            Duration::from_secs(600),
            std::slice::from_ref(&db.service),
            &mut on_line,
        )
        .await
        .map_err(|e| format!("the copy's database did not start: {e}"))?;
    let wait = r
        .stack
        .settings
        .timeout_ready
        .unwrap_or(Duration::from_secs(180));
    let deadline = Instant::now() + wait;
    // At its address, as hoist reads it: a server still initialising listens on none.
    let container = loop {
        let now = facts::gather(r.ctx, rview.clone()).await;
        let answered = matches!(now.db, Some(Ok(_)));
        let container = now
            .docker
            .as_ref()
            .ok()
            .and_then(|d| d.of_service(&db.service).first().map(|c| c.id.clone()));
        if answered && let Some(id) = container {
            break id;
        }
        if Instant::now() > deadline {
            let why = match now.db {
                Some(Err(e)) => e,
                _ => "it did not start".into(),
            };
            return Err(format!(
                "the copy's database did not answer within {} s: {why}",
                wait.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let engine = match &r.facts.docker {
        Ok(d) => &d.engine,
        Err(e) => return Err(e.to_string()),
    };
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let loaded = crate::steps::restore::restore_database(
        engine,
        &container,
        db,
        &dump,
        &stamp,
        &rview.project_dir,
        None,
    )
    .await;
    match loaded {
        Ok(_) => {
            run.finish(Step::RestoreDatabase, step, true, None).await;
            Ok(())
        }
        Err(e) => {
            let reason = format!("the dump did not load into the copy's database: {e}");
            run.finish(Step::RestoreDatabase, step, false, Some(reason.clone()))
                .await;
            Err(reason)
        }
    }
}

/// The backup's dump file, from its manifest.
pub(super) fn dump_in(backup_dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(backup_dir.join("manifest.json")).ok()?;
    let manifest: Value = serde_json::from_str(&text).ok()?;
    let name = manifest["files"]
        .as_array()?
        .iter()
        .find(|f| f["kind"] == "dump")?
        .get("name")?
        .as_str()?
        .to_string();
    Some(backup_dir.join(name))
}
