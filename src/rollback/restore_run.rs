//! A rollback's restore, step by step: stop the app's services (the database keeps running),
//! move each data directory aside and extract the backup's archive in its place, then load the
//! dump into a fresh database and swap it in. What cannot be restored is refused before anything
//! changes; nothing is deleted, and the summary says where the newer data went.
use std::path::Path;

use serde_json::{Value, json};

use super::Finished;
use super::{DataArchive, Target};
use crate::db::DbKind;
use crate::probe::facts::{self, Facts};
use crate::run::{Run, Step};
use crate::stack::Stack;

/// Why a restore that the planner asks for cannot be done by hoist, when it cannot: an SQLite
/// database comes back with the data archive that holds its file, so there must be one.
pub(super) fn unsupported(
    reason: &str,
    archives: &[DataArchive],
    database: Option<&crate::stack::detect::Database>,
    backup_dir: &Path,
) -> Option<String> {
    let db = database.filter(|d| d.kind == DbKind::Sqlite)?;
    if sqlite_archive(db, archives).is_some() {
        return None;
    }
    Some(format!(
        "the rollback needs a restore ({reason}), but the SQLite database of service {} ({}) is in none of the backup's data archives, so hoist cannot put it back. Nothing was changed; RESTORE.md in {} gives the manual steps.",
        db.service,
        db.path.as_deref().unwrap_or("its file"),
        backup_dir.display()
    ))
}

/// The data archive that holds an SQLite database's file (by the mount it was taken from).
fn sqlite_archive<'a>(
    db: &crate::stack::detect::Database,
    archives: &'a [DataArchive],
) -> Option<&'a DataArchive> {
    let path = Path::new(db.path.as_deref()?);
    archives.iter().find(|a| path.starts_with(&a.target))
}

/// The second that names what this restore keeps aside: one no earlier attempt used (an attempt
/// killed a moment ago may have used this one, and hoist never overwrites what it kept).
async fn fresh_stamp(facts: &Facts) -> String {
    let kept = crate::probe::kept_aside::find(facts).await;
    loop {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        if !kept.iter().any(|k| k.place.contains(&stamp)) {
            return stamp;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Stops the app, restores the data and then the database. `summary` and `kept_aside` learn
/// where the newer data went as it moves. Err: the run ends there, the state said.
#[allow(clippy::too_many_arguments)]
pub(super) async fn stop_and_restore(
    run: &mut Run<'_>,
    stack: &Stack,
    facts: &Facts,
    docker: &facts::Running,
    target: &Target,
    manifest: &Value,
    archives: &[DataArchive],
    summary: &mut Value,
    kept_aside: &mut Value,
) -> Result<(), Finished> {
    let engine = &docker.engine;
    let current = target.current.as_str();
    // Stop the app (the database keeps running), then data, then database.
    stop_app(run, stack, facts, docker, target, summary).await?;
    let stamp = fresh_stamp(facts).await;

    let aside = restore_data(
        run, facts, docker, target, archives, &stamp, summary, kept_aside,
    )
    .await?;

    if let Some(db) = &facts.view.database
        && db.kind == DbKind::Sqlite
    {
        // Its file came back with the data archive that holds it (checked before anything).
        if let Some(a) = sqlite_archive(db, archives) {
            run.progress(
                Step::RestoreData,
                format!(
                    "the SQLite database {} came back with the data of {}",
                    db.path.as_deref().unwrap_or_default(),
                    a.target
                ),
            );
        }
    } else if let Some(db) = &facts.view.database
        && target.restore
        && dump_of(manifest).is_none()
    {
        // `hoist restore` of a backup without a dump, at the version that runs (checked before).
        run.progress(
            Step::RestoreData,
            format!(
                "the backup holds no dump of the database (service {}): it is left as it is",
                db.service
            ),
        );
    } else if let Some(db) = &facts.view.database {
        let step = run
            .start(
                Step::RestoreDatabase,
                "loading the backup's dump, the current database kept aside",
            )
            .await;
        let dump = dump_of(manifest).map(|n| target.backup_dir.join(n));
        let container = docker
            .of_service(&db.service)
            .into_iter()
            .find(|c| c.is_running());
        let restored = match (dump, container) {
            (Some(dump), Some(c)) => {
                let keep = target.backup_dir.parent().unwrap_or(&facts.view.backup_dir);
                let expected = manifest["database"]["revision"].as_str();
                crate::steps::restore::restore_database(
                    engine, &c.id, db, &dump, &stamp, keep, expected,
                )
                .await
            }
            (None, _) => Err("the backup holds no database dump".to_string()),
            (_, None) => Err(format!(
                "the database service {} is not running",
                db.service
            )),
        };
        match restored {
            Ok(r) => {
                run.progress(
                    Step::RestoreDatabase,
                    format!(
                        "database {} restored; the newer one is kept as {}",
                        db.name, r.kept_aside_as
                    ),
                );
                kept_aside["database"] = json!(r.kept_aside_as);
                summary["kept_aside"] = kept_aside.clone();
            }
            Err(e) => {
                let data = if aside.is_empty() {
                    String::new()
                } else {
                    format!(
                        "its data files were restored (the newer content is in {}); ",
                        aside.join(", ")
                    )
                };
                let again = if target.restore {
                    format!("hoist restore {}", target.backup_dir.display())
                } else {
                    "hoist rollback".to_string()
                };
                let sentence = format!(
                    "restoring the database failed: {e}. State: the app is stopped; {data}{} still pins {current}. Fix what is said above and run `{again}` again, or follow RESTORE.md in {}.",
                    facts.view.pin_place,
                    target.backup_dir.display()
                );
                return Err(run
                    .fail(Step::RestoreDatabase, step, sentence, summary.clone())
                    .await);
            }
        }
        run.finish(Step::RestoreDatabase, step, true, None).await;
    }
    Ok(())
}

/// Puts every directory moved aside so far back where it was (volumes are left: their copy is
/// not a rename). `aside[i]` is where `archives[i]`'s content went.
fn put_back_directories(archives: &[DataArchive], aside: &[String]) -> Result<(), String> {
    let mut problems = Vec::new();
    for (a, moved) in archives.iter().zip(aside) {
        if a.source.starts_with('/')
            && let Err(e) = crate::steps::restore::put_back(Path::new(&a.source), Path::new(moved))
        {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The name of the backup's database dump, when it holds one.
fn dump_of(manifest: &Value) -> Option<&str> {
    manifest["files"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["kind"] == "dump"))
        .and_then(|f| f["name"].as_str())
}

/// Moves a mount's newer content aside: a directory is renamed; a named volume (which cannot
/// be) is copied into a new volume by a short-lived container of an image already here (the
/// app's, else the database's), then emptied. Returns where the content went.
async fn move_aside(
    facts: &Facts,
    docker: &facts::Running,
    container: &crate::docker::ContainerInfo,
    a: &DataArchive,
    stamp: &str,
) -> Result<std::path::PathBuf, String> {
    if a.source.starts_with('/') {
        return crate::steps::restore::move_aside(Path::new(&a.source), stamp);
    }
    let volume = container
        .mounts
        .iter()
        .find(|m| m.destination == a.target && m.kind == "volume")
        .and_then(|m| m.name.clone())
        .unwrap_or_else(|| a.source.clone());
    let mut images = vec![container.image.clone()];
    images.extend(
        facts
            .view
            .database
            .iter()
            .flat_map(|db| docker.of_service(&db.service))
            .map(|c| c.image.clone()),
    );
    crate::docker::volumes::move_aside(&docker.engine, &volume, stamp, &images)
        .await
        .map(|aside| std::path::PathBuf::from(format!("volume {aside}")))
}

/// Stops the app's services; the database keeps running for its restore.
pub(super) async fn stop_app(
    run: &mut Run<'_>,
    stack: &Stack,
    facts: &Facts,
    docker: &facts::Running,
    target: &Target,
    summary: &Value,
) -> Result<(), Finished> {
    let current = target.current.as_str();
    let step = run
        .start(
            Step::Stop,
            "stopping the app's services (the database keeps running)",
        )
        .await;
    let timeout = stack
        .settings
        .timeout_stop
        .unwrap_or(crate::steps::stop::DEFAULT_STOP);
    if let Some(swarm) = crate::probe::swarm::stack_name(facts.swarm.as_ref()) {
        // Swarm would start a stopped task's container again: the services are scaled to zero.
        let waited = timeout + std::time::Duration::from_secs(30);
        let stopped = crate::steps::swarm_update::stop_services(
            run,
            Step::Stop,
            &docker.engine,
            swarm,
            &facts.view.upgraded,
            waited,
        )
        .await;
        if let Err(why) = stopped {
            let sentence = format!(
                "{why}. State: nothing was restored; .env still pins {current}; a service scaled to zero keeps its replicas in its label {} and gets them back when hoist updates it. Run `{}` again, or follow RESTORE.md in {}.",
                crate::docker::swarm_change::STOPPED_REPLICAS,
                target.again(),
                target.backup_dir.display()
            );
            return Err(run.fail(Step::Stop, step, sentence, summary.clone()).await);
        }
        run.finish(Step::Stop, step, true, None).await;
        return Ok(());
    }
    let say = crate::run::progress_to(run.events, Step::Stop);
    use crate::steps::stop::Grace;
    let stopped = crate::steps::stop::stop_services(
        docker,
        &facts.view.upgraded,
        Grace::Fixed(timeout),
        &|name| say(format!("{name} stopped")),
    )
    .await;
    if !stopped.failed.is_empty() {
        let sentence = format!(
            "could not stop {}. State: nothing was restored; .env still pins {current}. Run `{}` again, or follow RESTORE.md in {}.",
            stopped.failed.join(", "),
            target.again(),
            target.backup_dir.display()
        );
        return Err(run.fail(Step::Stop, step, sentence, summary.clone()).await);
    }
    run.finish(Step::Stop, step, true, None).await;
    Ok(())
}

/// Each archive extracted where its data was, that data moved aside first (stamped `stamp`).
/// Ok: where the newer data went.
#[allow(clippy::too_many_arguments)]
async fn restore_data(
    run: &mut Run<'_>,
    facts: &Facts,
    docker: &facts::Running,
    target: &Target,
    archives: &[DataArchive],
    stamp: &str,
    summary: &mut Value,
    kept_aside: &mut Value,
) -> Result<Vec<String>, Finished> {
    let engine = &docker.engine;
    let current = target.current.as_str();
    let step = run
        .start(Step::RestoreData, "putting the data back from the archives")
        .await;
    let mut aside = Vec::new();
    for a in archives {
        // A bind mount by its host path; a named volume by where the app mounts it (its
        // Docker name carries the project's prefix).
        let is_volume = !a.source.starts_with('/');
        let container = docker
            .containers
            .iter()
            .filter(|c| facts.view.upgraded.contains(&c.service))
            .find(|c| {
                c.mounts.iter().any(|m| {
                    m.destination == a.target
                        && (m.source == a.source || (is_volume && m.kind == "volume"))
                })
            });
        let Some(container) = container else {
            let sentence = format!(
                "no container of the stack mounts {}, so {} cannot be restored into it. State: the app is stopped; nothing was restored; .env still pins {current}. RESTORE.md in {} gives the manual steps.",
                a.target,
                a.file.display(),
                target.backup_dir.display()
            );
            return Err(run
                .fail(Step::RestoreData, step, sentence, summary.clone())
                .await);
        };
        let moved = match move_aside(facts, docker, container, a, stamp).await {
            Ok(p) => p,
            Err(e) => {
                let sentence = format!(
                    "{e}. State: the app is stopped; {} restored so far; .env still pins {current}. RESTORE.md in {} gives the manual steps.",
                    if aside.is_empty() {
                        "nothing was".to_string()
                    } else {
                        format!("data moved aside to {aside:?} and")
                    },
                    target.backup_dir.display()
                );
                return Err(run
                    .fail(Step::RestoreData, step, sentence, summary.clone())
                    .await);
            }
        };
        run.progress(
            Step::RestoreData,
            format!("{} moved aside to {}", a.source, moved.display()),
        );
        aside.push(moved.display().to_string());
        kept_aside["data"] = json!(aside);
        summary["kept_aside"] = kept_aside.clone();
        if let Err(e) =
            crate::docker::exec::upload_archive(engine, &container.id, &a.target, &a.file).await
        {
            // A half tree is worse than the data the app had: a directory goes back as it was
            // (and so do the ones restored before it, so the app is on one side or the other).
            let put_back = put_back_directories(archives, &aside);
            let sentence = match put_back {
                Ok(()) if !is_volume => {
                    kept_aside["data"] = json!([]);
                    summary["kept_aside"] = kept_aside.clone();
                    format!(
                        "{e}. The data was put back as it was (what was extracted was removed). State: the app is stopped; nothing was restored; .env still pins {current}. Run `{}` again once the cause is fixed, or see RESTORE.md in {}.",
                        target.again(),
                        target.backup_dir.display()
                    )
                }
                Ok(()) => format!(
                    "{e}. State: the app is stopped; the newer content of volume {} is in {}; .env still pins {current}. Extract {} into the volume by hand (`tar xzf`), or see RESTORE.md.",
                    a.source,
                    moved.display(),
                    a.file.display()
                ),
                Err(why) => format!(
                    "{e}; putting the data back failed too: {why}. State: the app is stopped; the newer content of {} is in {}; .env still pins {current}. Extract {} there by hand (`tar xzf`), or see RESTORE.md.",
                    a.source,
                    moved.display(),
                    a.file.display()
                ),
            };
            return Err(run
                .fail(Step::RestoreData, step, sentence, summary.clone())
                .await);
        }
        run.progress(
            Step::RestoreData,
            format!("{} extracted into {}", a.file.display(), a.source),
        );
    }
    run.finish(Step::RestoreData, step, true, None).await;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(source: &str) -> DataArchive {
        DataArchive {
            file: "/b/data.tar.gz".into(),
            source: source.into(),
            target: "/data".into(),
        }
    }

    fn database(kind: DbKind, path: Option<&str>) -> crate::stack::detect::Database {
        crate::stack::detect::Database {
            service: "db".into(),
            kind,
            user: "u".into(),
            password: crate::secret::Secret::new("p"),
            name: "app".into(),
            port: 0,
            path: path.map(str::to_string),
            published: None,
            note: None,
            how: "x-hoist".into(),
            commands: None,
            namespace: String::new(),
            revision_query: None,
        }
    }

    #[test]
    fn an_sqlite_database_outside_every_archive_is_refused_before_anything() {
        let dir = Path::new("/b");
        let archives = [archive("/srv/data"), archive("app_data")];
        for kind in [DbKind::Postgres, DbKind::Mysql] {
            assert_eq!(
                unsupported(
                    "a migration ran",
                    &archives,
                    Some(&database(kind, None)),
                    dir
                ),
                None
            );
        }
        let inside = database(DbKind::Sqlite, Some("/data/app.db"));
        assert_eq!(unsupported("x", &archives, Some(&inside), dir), None);
        let outside = database(DbKind::Sqlite, Some("/var/lib/app.db"));
        let said = unsupported("x", &archives, Some(&outside), dir).unwrap();
        assert!(
            said.contains("in none of the backup's data archives"),
            "{said}"
        );
    }
}
