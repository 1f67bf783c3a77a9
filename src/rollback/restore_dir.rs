//! `hoist restore DIR`: any backup hoist took put back, by the rollback's own engine and rules,
//! as a restore whatever the planner says (never a bare re-pin). The backup need not be in the
//! journal (one taken before the journal existed, or with another state dir): its manifest then
//! vouches for it alone; when the journal knows it, the manifest is held to the recorded sha256.
//! What differs from a rollback is said here: which version (the manifest's), whose backup (this
//! project's only), what the database part means, and the plan forced to a restore.
use std::path::Path;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::plan::{Decision, Plan};
use super::{Finished, Target};
use crate::context::Context;
use crate::db::DbKind;
use crate::journal::Journal;
use crate::probe::facts::{self, Facts, StackView};
use crate::run::Event;

/// A refusal before anything is started: the exit code and the sentence.
pub type Refusal = (u8, String);

fn refused(code: u8, sentence: String) -> Finished {
    let mut f = super::refused(code, sentence);
    f.summary["command"] = json!("restore");
    f
}

/// `hoist restore DIR`: the backup in `dir` restored (asking first, with what it loses).
pub async fn run_restore(
    ctx: &Context,
    dir: &Path,
    events: &UnboundedSender<Event>,
) -> crate::run::Finished {
    let journal = match Journal::open(&ctx.state_dir).await {
        Ok(j) => j,
        Err(e) => return refused(1, e.to_string()).erased(),
    };
    let finished = match restore_target(ctx, dir, Some(&journal)).await {
        Ok(target) => super::run(ctx, &target, events, Some(&journal), super::Consent::Ask).await,
        Err((code, sentence)) => refused(code, format!("{sentence}. Nothing was changed.")),
    };
    journal.close().await;
    finished.erased()
}

/// What restoring the backup in `dir` means for this stack, read from its manifest before
/// anything changes: the version to go back to, and the manifest's sha256 when the journal knows
/// the backup. Err: why it cannot be restored (nothing was changed), with the exit code.
/// The files themselves are checked against the manifest when the run starts.
pub async fn restore_target(
    ctx: &Context,
    dir: &Path,
    journal: Option<&Journal>,
) -> Result<Target, Refusal> {
    let (_, view) = facts::load_stack(ctx).map_err(|e| (2, e.to_string()))?;
    let manifest = read_manifest(dir)?;
    let (previous, current) = versions(&manifest, &view, dir)?;
    if let Err(sentence) = database_part(&manifest, &view, &previous, &current) {
        return Err((3, sentence));
    }
    let known = match journal {
        Some(j) => j.backups(&view.project).await.unwrap_or_else(|e| {
            tracing::warn!("the journal's backups, to check the manifest against: {e}");
            Vec::new()
        }),
        None => Vec::new(),
    };
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let canonical = std::fs::canonicalize(dir).ok();
    let manifest_sha256 = known
        .iter()
        .find(|b| std::fs::canonicalize(&b.path).ok() == canonical || Some(&b.id) == name.as_ref())
        .map(|b| b.manifest_sha256.clone());
    Ok(Target {
        previous: super::repin::exact_previous(&previous, dir),
        backup_dir: dir.to_path_buf(),
        manifest_sha256,
        current,
        upgrade_run: None,
        restore: true,
    })
}

/// The manifest of the backup in `dir`, of this stack's project. Err: DIR is missing or no
/// backup (2), or its manifest cannot be read or is another project's (3).
fn read_manifest(dir: &Path) -> Result<Value, Refusal> {
    if !dir.exists() {
        return Err((
            2,
            format!(
                "{} does not exist; `hoist history` lists the backups and their directories",
                dir.display()
            ),
        ));
    }
    let path = dir.join("manifest.json");
    if !dir.is_dir() || !path.exists() {
        return Err((
            2,
            format!(
                "{} is not a backup hoist took: it holds no manifest.json. Give the backup's own directory (`hoist history` lists them)",
                dir.display()
            ),
        ));
    }
    let manual = format!(
        "RESTORE.md in {} describes the manual steps, if the files you need are intact",
        dir.display()
    );
    let bytes =
        std::fs::read(&path).map_err(|e| (3, format!("{} cannot be read: {e}", path.display())))?;
    let manifest: Value = serde_json::from_slice(&bytes).map_err(|e| {
        (
            3,
            format!("{} is not valid JSON ({e}); {manual}", path.display()),
        )
    })?;
    if !manifest["files"].is_array() {
        return Err((
            3,
            format!(
                "{} is not a manifest hoist wrote (it lists no files); {manual}",
                path.display()
            ),
        ));
    }
    Ok(manifest)
}

/// The version to go back to (the manifest's) and the version pinned now. Err: the backup is
/// another project's, or says no version.
fn versions(manifest: &Value, view: &StackView, dir: &Path) -> Result<(String, String), Refusal> {
    let project = manifest["project"].as_str().unwrap_or("(none)");
    if project != view.project {
        return Err((
            3,
            format!(
                "{} is a backup of the project {project}, not of {} (the project in {}): restoring it here would put another app's database and data into this one",
                dir.display(),
                view.project,
                view.project_dir.display()
            ),
        ));
    }
    let Some(previous) = crate::backup::restore_version(manifest) else {
        return Err((
            3,
            format!(
                "the manifest of {} does not say which version ran when it was taken, so hoist cannot tell which version to go back to; RESTORE.md there describes the manual steps",
                dir.display()
            ),
        ));
    };
    let current = view.pinned.clone().unwrap_or_else(|| "(unknown)".into());
    Ok((previous, current))
}

fn kind_words(kind: &str) -> &str {
    match kind {
        "postgres" => "PostgreSQL",
        "mysql" => "MySQL/MariaDB",
        "sqlite" => "SQLite",
        other => other,
    }
}

/// What becomes of the database: Ok(None) it is restored (or there is none, or an SQLite file
/// comes back with the data); Ok(Some(words)) it is left as it is, said; Err why the restore
/// is refused.
///
/// A backup without a dump, of a stack that has a database now (taken before the database was
/// there or known), restores the data only, and only when the stack already pins the backup's
/// version: the database then stays on the schema of the version that runs. Going to another
/// version on a database the backup cannot put back could start that version on a schema it
/// does not know, the very thing a restore is for; that is refused.
pub(super) fn database_part(
    manifest: &Value,
    view: &StackView,
    previous: &str,
    current: &str,
) -> Result<Option<String>, String> {
    let has_dump = manifest["files"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["kind"] == "dump"));
    let then = manifest["database"]["kind"].as_str();
    let now = view.database.as_ref().filter(|d| d.kind != DbKind::Sqlite);
    match (has_dump, now) {
        (true, Some(db)) => match then {
            Some(kind) if kind != db.kind.name() => Err(format!(
                "the backup's dump is of a {} database, and this stack's database (service {}) is {}: one cannot be loaded into the other",
                kind_words(kind),
                db.service,
                kind_words(db.kind.name())
            )),
            _ => Ok(None),
        },
        (true, None) => Err(format!(
            "the backup holds a dump of the database {} (service {}), and hoist finds no database in this stack now to load it into. If the stack still has it, tell hoist which service it is (`x-hoist: {{database: {{service: NAME, kind: KIND}}}}`)",
            manifest["database"]["name"].as_str().unwrap_or("?"),
            manifest["database"]["service"].as_str().unwrap_or("?")
        )),
        (false, Some(db)) if previous == current => Ok(Some(format!(
            "the database (service {}) is left as it is: the backup holds no dump of it",
            db.service
        ))),
        (false, Some(db)) => Err(format!(
            "the backup holds no database dump (hoist found no database it could dump when it was taken), and this stack has a {} database now (service {}): the files would go back to {previous} while the database stays as {current} left it, which {previous} may not run on. Restore the database by hand first, or pin {previous} yourself (then `hoist restore` puts back the files only)",
            kind_words(db.kind.name()),
            db.service
        )),
        (false, None) => Ok(None),
    }
}

/// "2026-11-28 12:00 UTC" from the manifest's RFC 3339 time.
fn taken_words(manifest: &Value) -> String {
    let at = manifest["created_at"].as_str().unwrap_or("an unknown time");
    match (at.get(..10), at.get(11..16)) {
        (Some(day), Some(time)) if at.ends_with('Z') => format!("{day} {time} UTC"),
        _ => at.to_string(),
    }
}

/// The planner's plan, forced to a restore: the reason says it was asked for (and what the
/// planner saw besides), the loss is the planner's count of what a restore takes away.
pub(super) fn forced(
    plan: Plan,
    manifest: &Value,
    facts: &Facts,
    target: &Target,
    marks: &[super::plan::Mark],
) -> Plan {
    let asked = format!(
        "you asked to put back the backup taken {} at {}",
        taken_words(manifest),
        target.previous
    );
    let database_left = database_part(manifest, &facts.view, &target.previous, &target.current)
        .ok()
        .flatten();
    let has_database = !manifest["database"].is_null();
    // The planner counts what a restore loses only when it restores; asked as if the schema
    // had moved (a fingerprint no schema has), the count stays the planner's own.
    let counted = if plan.decision == Decision::Restore || !has_database {
        plan.clone()
    } else {
        let mut moved = manifest.clone();
        moved["database"]["fingerprint"] = json!("(a restore was asked for)");
        super::decide(&moved, facts, marks)
    };
    let reason = if plan.decision == Decision::Restore {
        format!("{asked}; and {}", plan.reason)
    } else {
        asked
    };
    let uncounted = |what: &str| {
        format!("what was written to {what} since the backup is taken away (hoist cannot count it)")
    };
    let (losses, unknown_loss) = match database_left {
        Some(left) => (
            Vec::new(),
            Some(format!("{}; {left}", uncounted("the app's files"))),
        ),
        None if !has_database => (
            Vec::new(),
            counted
                .unknown_loss
                .or_else(|| Some(uncounted("the app's data"))),
        ),
        None if counted.decision != Decision::Restore => {
            (Vec::new(), Some(uncounted("the database and the data")))
        }
        None => (counted.losses, counted.unknown_loss),
    };
    Plan {
        case: crate::rollback_plan::Case::Restore,
        config_changes: counted.config_changes,
        decision: Decision::Restore,
        reason,
        losses,
        unknown_loss,
        schema_change: counted.schema_change,
        // What was asked for is the backup put back, not the previous version kept.
        keep_first: false,
    }
}

/// "P restored from the backup DIR: V runs on its database and data as they were then (.env
/// pinned W before)": what a restore that verified did, before where the newer data went.
pub(super) fn done_words(target: &Target, view: &StackView, kept_aside: &Value) -> String {
    let (previous, current) = (&target.previous, &target.current);
    let what = match &view.database {
        Some(db) if db.kind != DbKind::Sqlite && kept_aside["database"].is_null() => {
            "its data as it was then (the database was left as it is)"
        }
        Some(_) => "its database and data as they were then",
        None => "its data as it was then",
    };
    let was = if current == previous {
        String::new()
    } else {
        format!(" (.env pinned {current} before)")
    };
    format!(
        "{} restored from the backup {}: {previous} runs on {what}{was}",
        view.project,
        target.backup_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(database: Option<DbKind>) -> StackView {
        let mut v = StackView {
            project: "app".into(),
            project_dir: "/srv/app".into(),
            compose_file: "/srv/app/compose.yaml".into(),
            compose_files: vec!["/srv/app/compose.yaml".into()],
            given_files: Vec::new(),
            env_files: Vec::new(),
            settings_file: None,
            env_file: "/srv/app/.env".into(),
            version_variable: Some("APP_VERSION".into()),
            pin_place: "APP_VERSION in .env".into(),
            pin_unknown: None,
            moving: false,
            pinned: Some("1.1".into()),
            pinned_source: None,
            services: vec!["app".into(), "db".into()],
            upgraded: vec!["app".into()],
            with_healthcheck: Vec::new(),
            database: None,
            unsupported_database: None,
            beside: Vec::new(),
            one_shot: Vec::new(),
            smoke: Vec::new(),
            app_checks: Vec::new(),
            observe_s: None,
            inactive: Vec::new(),
            data: Vec::new(),
            backup_dir: "/srv/app-backups".into(),
            unheeded: Vec::new(),
            database_declined: false,
        };
        v.database = database.map(|kind| crate::stack::detect::Database {
            service: "db".into(),
            kind,
            user: "u".into(),
            password: crate::secret::Secret::new("p"),
            name: "app".into(),
            port: 0,
            path: (kind == DbKind::Sqlite).then(|| "/data/app.db".into()),
            published: None,
            note: None,
            how: "x-hoist".into(),
            commands: None,
            namespace: String::new(),
            revision_query: None,
        });
        v
    }

    fn manifest(dump: bool, kind: Option<&str>) -> Value {
        let mut files = vec![json!({"name": "data-x.tar.gz", "kind": "archive"})];
        if dump {
            files.push(json!({"name": "database.sql.gz", "kind": "dump"}));
        }
        json!({"project": "app", "pinned": "1.0", "files": files,
               "database": kind.map(|k| json!({"kind": k, "service": "db", "name": "app"}))})
    }

    #[test]
    fn the_database_part_restores_refuses_or_leaves_it_and_says_which() {
        let pg = Some(DbKind::Postgres);
        // A dump and a database of its kind: restored.
        let ok = database_part(&manifest(true, Some("postgres")), &view(pg), "1.0", "1.1");
        assert_eq!(ok, Ok(None));
        // A dump of another kind: refused.
        let e = database_part(&manifest(true, Some("mysql")), &view(pg), "1.0", "1.1");
        assert!(
            e.unwrap_err()
                .contains("one cannot be loaded into the other")
        );
        // A dump, and no database now: refused.
        let e = database_part(&manifest(true, Some("postgres")), &view(None), "1.0", "1.1");
        assert!(e.unwrap_err().contains("finds no database"));
        // No dump, a database now: the files only at the same version, refused at another.
        let same = database_part(&manifest(false, None), &view(pg), "1.0", "1.0");
        assert!(same.unwrap().unwrap().contains("left as it is"));
        let e = database_part(&manifest(false, None), &view(pg), "1.0", "1.1");
        let e = e.unwrap_err();
        assert!(
            e.contains("holds no database dump") && e.contains("may not run on"),
            "{e}"
        );
        // No dump and no database, or an SQLite file in the data: the data is the backup.
        assert_eq!(
            database_part(&manifest(false, None), &view(None), "1.0", "1.1"),
            Ok(None)
        );
        let sqlite = manifest(false, Some("sqlite"));
        assert_eq!(
            database_part(&sqlite, &view(Some(DbKind::Sqlite)), "1.0", "1.1"),
            Ok(None)
        );
    }

    #[test]
    fn a_backup_of_another_project_or_without_a_version_is_refused() {
        let dir = Path::new("/b/other-1");
        let mut m = manifest(true, Some("postgres"));
        m["project"] = json!("other");
        let (code, e) = versions(&m, &view(None), dir).unwrap_err();
        assert_eq!(code, 3);
        assert!(
            e.contains("a backup of the project other, not of app"),
            "{e}"
        );
        let mut m = manifest(true, Some("postgres"));
        m["pinned"] = Value::Null;
        assert!(
            versions(&m, &view(None), dir)
                .unwrap_err()
                .1
                .contains("which version")
        );
        m["running_version"] = json!("0.9");
        assert_eq!(versions(&m, &view(None), dir).unwrap().0, "0.9");
    }

    #[test]
    fn a_directory_that_is_no_backup_is_bad_input_and_a_garbage_manifest_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_manifest(&tmp.path().join("none")).unwrap_err().0, 2);
        let (code, e) = read_manifest(tmp.path()).unwrap_err();
        assert_eq!(code, 2);
        assert!(e.contains("holds no manifest.json"), "{e}");
        std::fs::write(tmp.path().join("manifest.json"), "{ nope").unwrap();
        let (code, e) = read_manifest(tmp.path()).unwrap_err();
        assert_eq!(code, 3);
        assert!(e.contains("not valid JSON"), "{e}");
        std::fs::write(tmp.path().join("manifest.json"), "[]").unwrap();
        assert!(
            read_manifest(tmp.path())
                .unwrap_err()
                .1
                .contains("lists no files")
        );
    }

    fn facts(database: Option<DbKind>, issues_now: u64) -> Facts {
        let probe = crate::db::DbProbe::alembic("0020", "f", &[("issues", issues_now)]);
        Facts {
            view: view(database),
            notes: Vec::new(),
            docker: Err(crate::docker::DockerError::NoSocket {
                path: "/none".into(),
            }),
            db: database.map(|_| Ok(probe)),
            sqlite: Vec::new(),
            held: Vec::new(),
            swarm: None,
        }
    }

    fn target(previous: &str) -> Target {
        Target {
            backup_dir: "/b/app-1".into(),
            manifest_sha256: None,
            previous: previous.into(),
            current: "1.1".into(),
            upgrade_run: None,
            restore: true,
        }
    }

    #[test]
    fn a_restore_is_forced_with_the_planners_count_of_what_it_loses() {
        let mut m = manifest(true, Some("postgres"));
        m["created_at"] = json!("2026-11-28T12:34:56.789Z");
        m["database"]["revision"] = json!("0020");
        m["database"]["fingerprint"] = json!("f");
        m["database"]["tables"] = json!([{"name": "issues", "rows": 40}]);
        let facts = facts(Some(DbKind::Postgres), 42);
        // Same schema: the planner re-pins; asked for, it is a restore that loses 2 rows.
        let plan = super::super::decide(&m, &facts, &[]);
        assert_eq!(plan.decision, Decision::Repin);
        let restore = forced(plan, &m, &facts, &target("1.0"), &[]);
        assert_eq!(restore.decision, Decision::Restore);
        assert_eq!(
            restore.reason,
            "you asked to put back the backup taken 2026-11-28 12:34 UTC at 1.0"
        );
        // The manifest records no write tally: the counts, and that edits cannot be counted.
        assert!(
            restore
                .loss_words()
                .starts_with("what was written since the backup: 2 rows in issues; and rows updated or deleted since the backup cannot all be counted"),
            "{}",
            restore.loss_words()
        );
        // A migration since: the planner's reason is said too.
        m["database"]["revision"] = json!("0019");
        let plan = super::super::decide(&m, &facts, &[]);
        let restore = forced(plan, &m, &facts, &target("1.0"), &[]);
        assert!(
            restore
                .reason
                .contains("; and the schema revision went from 0019 to 0020")
        );
        assert_eq!(restore.losses.len(), 1);
        // No dump, at the version pinned now: the files only, the database left, said.
        let data_only = manifest(false, None);
        let plan = super::super::decide(&data_only, &facts, &[]);
        let restore = forced(plan, &data_only, &facts, &target("1.1"), &[]);
        assert_eq!(restore.decision, Decision::Restore);
        assert!(restore.losses.is_empty());
        let words = restore.loss_words();
        assert!(
            words.contains("the app's files") && words.contains("left as it is"),
            "{words}"
        );
    }

    #[test]
    fn the_end_says_what_came_back() {
        let restored = done_words(
            &target("1.0"),
            &view(Some(DbKind::Postgres)),
            &json!({"database": "app_before_rollback_X"}),
        );
        assert_eq!(
            restored,
            "app restored from the backup /b/app-1: 1.0 runs on its database and data as they were then (.env pinned 1.1 before)"
        );
        let data_only = done_words(&target("1.1"), &view(Some(DbKind::Postgres)), &json!({}));
        assert_eq!(
            data_only,
            "app restored from the backup /b/app-1: 1.1 runs on its data as it was then (the database was left as it is)"
        );
    }

    #[test]
    fn the_time_taken_is_said_to_the_minute() {
        let m = json!({"created_at": "2026-11-28T12:34:56.789Z"});
        assert_eq!(taken_words(&m), "2026-11-28 12:34 UTC");
        assert_eq!(taken_words(&json!({})), "an unknown time");
    }
}
