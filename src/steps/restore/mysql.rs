//! The MySQL/MariaDB restore. MySQL has no `RENAME DATABASE`, and the usual stand-in — load
//! into a scratch schema, then one `RENAME TABLE` moving every table across — fails on the
//! stacks hoist meets: the app's user may not create another schema (it is granted its own
//! database only), a table with a trigger cannot change schema ("Trigger in wrong schema"), a
//! view cannot at all, and routines and events do not move with tables. So the newer
//! database is kept as a verified dump file first (in the backup directory, named in the
//! report), then the database is dropped, made again with its character set and collation, and
//! the backup's dump loaded into it. A load that fails puts the newer database back from the
//! kept dump. Everything runs as the app's own user, inside the database container.
use std::path::Path;

use super::{DatabaseRestored, feed_dump, keep_as_dump, load_failure};
use crate::docker::{Engine, exec};
use crate::stack::detect::Database;

/// The client, by either name (MariaDB images have `mariadb`; MySQL ones `mysql`).
const CLIENTS: [&str; 2] = ["mariadb", "mysql"];

/// A MySQL identifier, quoted.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A SQL string literal.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// Runs `sql` with the client (no database selected), stdout returned (tab-separated rows).
async fn client(
    engine: &Engine,
    container: &str,
    db: &Database,
    sql: &str,
) -> Result<String, String> {
    let env = [format!("MYSQL_PWD={}", db.password.expose())];
    let mut last = String::new();
    for tool in CLIENTS {
        let cmd = [tool, "--user", &db.user, "-N", "-B", "-e", sql];
        let (outcome, out) = exec::exec_output(engine, container, &cmd, &env, usize::MAX)
            .await
            .map_err(|e| e.to_string())?;
        match outcome.exit_code {
            0 => return Ok(out),
            // Not in this image: try the other name.
            126 | 127 => last = format!("no {tool} client in the database container"),
            code => {
                return Err(format!(
                    "{tool} failed (exit code {code}): {}",
                    outcome.stderr.trim()
                ));
            }
        }
    }
    Err(last)
}

/// Loads the gzip dump `dump_gz` into database `name` (stops at the first error).
async fn load(
    engine: &Engine,
    container: &str,
    db: &Database,
    dump_gz: &Path,
) -> Result<(), String> {
    let env = [format!("MYSQL_PWD={}", db.password.expose())];
    let mut failure = String::new();
    for tool in CLIENTS {
        let (rx, reader) = feed_dump(dump_gz);
        let cmd = [tool, "--user", &db.user, &db.name];
        let loaded = exec::exec_with_input(engine, container, &cmd, &env, rx).await;
        let missing = matches!(&loaded, Ok(o) if o.exit_code == 126 || o.exit_code == 127);
        match load_failure(loaded, reader, dump_gz, tool).await {
            None => return Ok(()),
            Some(_) if missing => failure = format!("no {tool} client in the database container"),
            Some(why) => return Err(why),
        }
    }
    Err(failure)
}

/// Why making the database again failed: before the drop (nothing changed) or after it.
enum Recreate {
    NotDropped(String),
    Dropped(String),
}

/// Drops database `name` and makes it again, empty, with `charset` and `collation`. The drop
/// waits at most 30 s for another connection's lock (a service beside the app, an admin tool)
/// rather than hang with the app stopped.
async fn recreate(
    engine: &Engine,
    container: &str,
    db: &Database,
    (charset, collation): (&str, &str),
) -> Result<(), Recreate> {
    let name = ident(&db.name);
    let drop = format!("SET SESSION lock_wait_timeout = 30; DROP DATABASE IF EXISTS {name}");
    client(engine, container, db, &drop)
        .await
        .map_err(Recreate::NotDropped)?;
    let create = format!("CREATE DATABASE {name} CHARACTER SET {charset} COLLATE {collation}");
    client(engine, container, db, &create)
        .await
        .map(|_| ())
        .map_err(Recreate::Dropped)
}

/// How to load the kept dump by hand, when hoist could not.
fn by_hand(db: &Database, kept: &str) -> String {
    format!(
        "gunzip -c {kept} | docker compose exec -T -e MYSQL_PWD=PASSWORD {} sh -c 'mariadb -u {} {} || mysql -u {} {}'",
        db.service, db.user, db.name, db.user, db.name
    )
}

/// The database's default character set and collation (kept when it is made again).
async fn character_set(
    engine: &Engine,
    container: &str,
    db: &Database,
) -> Result<(String, String), String> {
    let sql = format!(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
        literal(&db.name)
    );
    let out = client(engine, container, db, &sql).await?;
    let mut fields = out.lines().next().unwrap_or_default().split('\t');
    let safe = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (fields.next(), fields.next()) {
        (Some(cs), Some(co)) if safe(cs) && safe(co) => Ok((cs.to_string(), co.to_string())),
        _ => Err(format!(
            "the character set of database {} could not be read ({out:?})",
            db.name
        )),
    }
}

pub(super) async fn restore(
    engine: &Engine,
    container: &str,
    db: &Database,
    dump_gz: &Path,
    stamp: &str,
    keep_dir: &Path,
) -> Result<DatabaseRestored, String> {
    let charset = character_set(engine, container, db).await?;
    // The newer database, whole and checked, before anything is dropped.
    let kept = keep_as_dump(engine, container, db, (keep_dir, stamp, "sql.gz")).await?;
    let kept_words = kept.display().to_string();
    let charset = (charset.0.as_str(), charset.1.as_str());
    let failure = match recreate(engine, container, db, charset).await {
        Err(Recreate::NotDropped(e)) => {
            return Err(format!(
                "the database could not be emptied ({e}); it was not touched, and a copy of it is also in {kept_words}"
            ));
        }
        Err(Recreate::Dropped(e)) => format!("it was dropped and could not be made again ({e})"),
        Ok(()) => match load(engine, container, db, dump_gz).await {
            Ok(()) => {
                return Ok(DatabaseRestored {
                    kept_aside_as: kept_words,
                });
            }
            Err(e) => format!("the dump did not load ({e})"),
        },
    };
    // Put the newer database back as it was.
    let back = match recreate(engine, container, db, charset).await {
        Ok(()) => load(engine, container, db, &kept).await,
        Err(Recreate::NotDropped(e) | Recreate::Dropped(e)) => Err(e),
    };
    Err(match back {
        Ok(()) => format!(
            "{failure}; the database is back as it was before the restore (from {kept_words})"
        ),
        Err(e) => format!(
            "{failure}, and putting the newer database back failed too ({e}): database {} may be empty or missing. Its content is in {kept_words}; load it by hand: `{}`",
            db.name,
            by_hand(db, &kept_words)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_the_kept_dump_is_named_after_the_database() {
        assert_eq!(ident("we`ird"), "`we``ird`");
        assert_eq!(literal("o'b\\r"), "'o''b\\\\r'");
        assert_eq!(
            super::super::kept_dump_path(Path::new("/b"), "app db", "20261202T120000Z", "sql.gz"),
            Path::new("/b/app_db-before-rollback-20261202T120000Z.sql.gz")
        );
    }
}
