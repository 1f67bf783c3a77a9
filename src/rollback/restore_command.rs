//! The restore of a database of kind `command` (a kind hoist does not know): the settings'
//! dump command keeps the newer database as a verified dump first, then the restore command
//! reads the backup's dump on its standard input. Whether it can load into a fresh database and
//! swap is the command's affair; hoist's part is that nothing is lost: a restore that fails is
//! followed by the restore of the kept dump, and what state the database is in is said.
use std::path::Path;

use super::restore::{DatabaseRestored, feed_dump, keep_as_dump, load_failure};
use crate::docker::{Engine, exec};
use crate::stack::detect::Database;

/// Feeds `dump_gz` to the restore command.
async fn load(
    engine: &Engine,
    container: &str,
    restore: &[String],
    dump_gz: &Path,
) -> Result<(), String> {
    let (rx, reader) = feed_dump(dump_gz);
    let cmd: Vec<&str> = restore.iter().map(String::as_str).collect();
    let loaded = exec::exec_with_input(engine, container, &cmd, &[], rx).await;
    match load_failure(loaded, reader, dump_gz, "the restore command").await {
        None => Ok(()),
        Some(why) => Err(why),
    }
}

/// Whether the database prints the backup's revision after a load: a restore command that
/// exits 0 without replacing the database (it loaded over it, or did nothing) is caught here,
/// before the previous version is started on it.
async fn check_revision(
    engine: &Engine,
    container: &str,
    db: &Database,
    (expected, whose): (Option<&str>, &str),
) -> Result<(), String> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let now = crate::probe::db_command::read_revision(engine, container, db).await?;
    if now == expected {
        Ok(())
    } else {
        Err(format!(
            "the restore command exited 0, but the revision command now prints {now:?}, not {whose} {expected:?}: the restore did not replace the database (a restore must drop and load, not load over it)"
        ))
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
    let Some(commands) = &db.commands else {
        return Err(format!(
            "service {} is a database of kind command, but the settings give no restore command (x-hoist.database.restore); the database was not touched",
            db.service
        ));
    };
    // What the newer database prints, to know it is back if it must be put back.
    let before = crate::probe::db_command::read_revision(engine, container, db)
        .await
        .ok();
    let kept = keep_as_dump(engine, container, db, (keep_dir, stamp, "dump.gz")).await?;
    let kept_words = kept.display().to_string();
    let loaded = match load(engine, container, &commands.restore, dump_gz).await {
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
    // The command may have changed part of the database before it failed: the newer one back.
    let back = match load(engine, container, &commands.restore, &kept).await {
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
    Err(match back {
        Ok(()) => format!(
            "{failure}; the database is back as it was before the restore (the restore command loaded the copy kept in {kept_words})"
        ),
        Err(e) => format!(
            "{failure}, and putting the newer database back failed too ({e}): database {} may be half restored. Just before the restore, hoist kept it with your dump command as {kept_words} ({}); if that command reads the wrong thing, that copy holds it too, so look inside before anything else. Once the restore command works, load it by hand: `gunzip -c {kept_words} | docker compose exec -T {} {}`",
            db.name,
            std::fs::metadata(&kept).map_or_else(
                |_| "its size unknown".to_string(),
                |m| crate::units::human_bytes(m.len())
            ),
            db.service,
            crate::redact::command_line(&commands.restore)
        ),
    })
}
