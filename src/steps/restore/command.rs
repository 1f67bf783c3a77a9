//! The restore of a database hoist reaches without SQL: one of kind `command` (a kind hoist does
//! not know), whose settings' dump command keeps the newer database as a verified dump first and
//! whose restore command reads the backup's dump on its standard input; or SurrealDB, which
//! hoist exports, empties (`REMOVE DATABASE`, `DEFINE DATABASE`) and imports into over its HTTP
//! API. hoist's part is that nothing is lost: a restore that fails is followed by the restore of
//! the kept dump, and what state the database is in is said.
use std::path::Path;

use super::{DatabaseRestored, feed_dump, keep_as_dump, load_failure};
use crate::db::DbKind;
use crate::docker::{Engine, exec};
use crate::stack::detect::Database;

/// What loads a dump, in words.
fn loader(db: &Database) -> &'static str {
    match db.kind {
        DbKind::Surrealdb => "the import into SurrealDB",
        _ => "the restore command",
    }
}

/// Feeds `dump_gz` to the restore command, or to SurrealDB's import after emptying it.
async fn load(
    engine: &Engine,
    container: &str,
    db: &Database,
    dump_gz: &Path,
) -> Result<(), String> {
    let (rx, reader) = feed_dump(dump_gz);
    if db.kind == DbKind::Surrealdb {
        let target = crate::backup::dump::surreal_target(engine, container, db).await?;
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok::<bytes::Bytes, std::io::Error>(chunk), rx))
        });
        let replaced = target.replace(reqwest::Body::wrap_stream(chunks)).await;
        let read = reader
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        return match (replaced, read) {
            (Err(e), _) => Err(e),
            (_, Err(e)) => Err(format!("{} could not be read: {e}", dump_gz.display())),
            (Ok(()), Ok(())) => Ok(()),
        };
    }
    let restore = db
        .commands
        .as_ref()
        .map(|c| c.restore.clone())
        .unwrap_or_default();
    let cmd: Vec<&str> = restore.iter().map(String::as_str).collect();
    let loaded = exec::exec_with_input(engine, container, &cmd, &[], rx).await;
    match load_failure(loaded, reader, dump_gz, "the restore command").await {
        None => Ok(()),
        Some(why) => Err(why),
    }
}

/// What the database's revision is now: the revision command's line, or SurrealDB's revision
/// query or migrations table (None when it has neither).
async fn revision_now(
    engine: &Engine,
    container: &str,
    db: &Database,
) -> Result<Option<String>, String> {
    if db.kind == DbKind::Surrealdb {
        let target = crate::backup::dump::surreal_target(engine, container, db).await?;
        let migrations = crate::db::surreal::current_revision(&target).await?;
        return Ok(migrations.map(|m| m.revision));
    }
    crate::probe::db_command::read_revision(engine, container, db)
        .await
        .map(Some)
}

/// Whether the database has the backup's revision after a load: a restore that exits 0
/// without replacing the database (it loaded over it, or did nothing) is caught here, before
/// the previous version is started on it.
async fn check_revision(
    engine: &Engine,
    container: &str,
    db: &Database,
    (expected, whose): (Option<&str>, &str),
) -> Result<(), String> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let now = revision_now(engine, container, db).await?;
    if now.as_deref() == Some(expected) {
        return Ok(());
    }
    let now = now.map_or_else(|| "no revision".to_string(), |n| format!("{n:?}"));
    Err(match db.kind {
        DbKind::Surrealdb => format!(
            "SurrealDB took the import, but the database's revision is now {now}, not {whose} {expected:?}: the import did not bring the database back"
        ),
        _ => format!(
            "the restore command exited 0, but the revision command now prints {now}, not {whose} {expected:?}: the restore did not replace the database (a restore must drop and load, not load over it)"
        ),
    })
}

/// How to put the kept dump back by hand, in one sentence's tail.
fn by_hand(db: &Database, kept_words: &str) -> String {
    match db.kind {
        DbKind::Surrealdb => format!(
            "To load it by hand, empty the database first (`REMOVE DATABASE {name}; DEFINE DATABASE {name};` in namespace {ns}), then `gunzip -c {kept_words} | docker compose exec -T {svc} /surreal import --endpoint http://localhost:{port} --user {user} --pass '<password>' --ns {ns} --db {name} /dev/stdin`",
            name = db.name,
            ns = db.namespace,
            svc = db.service,
            port = db.port,
            user = db.user,
        ),
        _ => format!(
            "Once the restore command works, load it by hand: `gunzip -c {kept_words} | docker compose exec -T {} {}`",
            db.service,
            crate::redact::command_line(
                &db.commands
                    .as_ref()
                    .map(|c| c.restore.clone())
                    .unwrap_or_default()
            )
        ),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn restore(
    engine: &Engine,
    container: &str,
    db: &Database,
    dump_gz: &Path,
    stamp: &str,
    keep_dir: &Path,
    expected: Option<&str>,
) -> Result<DatabaseRestored, String> {
    if db.kind == DbKind::Command && db.commands.is_none() {
        return Err(format!(
            "service {} is a database of kind command, but the settings give no restore command (x-hoist.database.restore); the database was not touched",
            db.service
        ));
    }
    // What the newer database's revision is, to know it is back if it must be put back.
    let before = revision_now(engine, container, db).await.ok().flatten();
    let ext = match db.kind {
        DbKind::Surrealdb => "surql.gz",
        _ => "dump.gz",
    };
    let kept = keep_as_dump(engine, container, db, (keep_dir, stamp, ext)).await?;
    let kept_words = kept.display().to_string();
    let loaded = match load(engine, container, db, dump_gz).await {
        Ok(()) => check_revision(engine, container, db, (expected, "the backup's")).await,
        Err(e) => Err(e),
    };
    let failure = match loaded {
        Ok(()) => {
            return Ok(DatabaseRestored {
                kept_aside_as: kept_words,
            });
        }
        Err(e) => e,
    };
    // The load may have changed part of the database before it failed: the newer one back.
    let back = match load(engine, container, db, &kept).await {
        Ok(()) => {
            check_revision(
                engine,
                container,
                db,
                (before.as_deref(), "the newer database's"),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let size = std::fs::metadata(&kept).map_or_else(
        |_| "its size unknown".to_string(),
        |m| crate::units::human_bytes(m.len()),
    );
    Err(match back {
        Ok(()) => format!(
            "{failure}; the database is back as it was before the restore ({} loaded the copy kept in {kept_words})",
            loader(db)
        ),
        Err(e) if db.kind == DbKind::Surrealdb => format!(
            "{failure}, and putting the newer database back failed too ({e}): database {} may be half restored. Just before the restore, hoist kept it as SurrealDB's export in {kept_words} ({size}). {}",
            db.name,
            by_hand(db, &kept_words)
        ),
        Err(e) => format!(
            "{failure}, and putting the newer database back failed too ({e}): database {} may be half restored. Just before the restore, hoist kept it with your dump command as {kept_words} ({size}); if that command reads the wrong thing, that copy holds it too, so look inside before anything else. {}",
            db.name,
            by_hand(db, &kept_words)
        ),
    })
}
