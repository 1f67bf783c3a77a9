//! `hoist restore DIR` on the test bed: an upgrade's backup and a `hoist backup` one put back
//! (version, database, data; the newer ones kept aside and named), with and without the journal
//! that knows them; and the refusals, each with nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Run, TestStack, db_state, docker_available, post_issue, user_files};

/// The entry for `dir` in `hoist history --json`'s backup list.
fn listed(history: &serde_json::Value, dir: &Path) -> serde_json::Value {
    history["backup_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| Path::new(b["dir"].as_str().unwrap()) == dir)
        .cloned()
        .unwrap_or_else(|| panic!("{} is not listed: {history:#}", dir.display()))
}

/// The directories under `dir` whose name contains `part`.
fn named(dir: &Path, part: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(part))
        .collect()
}

#[test]
fn an_upgrades_backup_is_restored_with_its_version_database_and_data() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("restore-up", "0.1.9", 2);
    let data = stack.dir.join("specivo-data");
    let before = db_state(&stack);
    assert_eq!(before.0, "0020");
    let files_before = user_files(&data);

    let run = stack.hoist(&[
        "upgrade", "--to", "0.1.11", "--path", "direct", "--yes", "--json",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let backup = PathBuf::from(run.summary()["backup"].as_str().unwrap());
    post_issue(&stack, "written after the upgrade");
    let (revision_now, rows_now) = db_state(&stack);
    assert_eq!(revision_now, "0021");
    assert_eq!(rows_now["issues"], before.1["issues"] + 1);
    let files_now = user_files(&data);

    // `hoist history` lists it, known to the journal, its files there.
    let history = stack.hoist(&["history", "--json"]).summary();
    let entry = listed(&history, &backup);
    assert_eq!(entry["version"], "0.1.9", "{entry:#}");
    assert_eq!(entry["schema_revision"], "0020", "{entry:#}");
    assert_eq!(entry["known"], true, "{entry:#}");
    assert_eq!(entry["verified"], true, "{entry:#}");
    assert_eq!(entry["has_dump"], true, "{entry:#}");
    let human = stack.hoist(&["history"]);
    assert!(
        human.stdout.contains("`hoist restore DIR` puts one back")
            && human
                .stdout
                .contains(&format!("      {}\n", backup.display())),
        "{human:?}"
    );

    // Without --yes it is refused, what it would lose named, nothing changed.
    let dir = backup.to_str().unwrap();
    let refused = stack.hoist(&["restore", dir, "--json"]);
    refused.assert_no_panic();
    assert_eq!(refused.code, 3, "{refused:?}");
    let s = refused.summary();
    assert_eq!(s["command"], "restore", "{s:#}");
    let error = s["error"].as_str().unwrap();
    assert!(
        error.contains("1 inserted row in issues") && error.contains("--yes"),
        "{error}"
    );
    assert_eq!(stack.env_value("SPECIVO_VERSION"), "0.1.11");
    assert_eq!(db_state(&stack), (revision_now.clone(), rows_now.clone()));

    // With --yes: put back, and the output names where the newer data went.
    let run = stack.hoist(&["restore", dir, "--yes"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("restored from the backup"), "{run:?}");
    assert!(run.stdout.contains("kept aside (files in"), "{run:?}");
    assert!(run.stdout.contains("_before_rollback_"), "{run:?}");
    assert_eq!(stack.health_version(), "0.1.9");
    assert_eq!(stack.env_value("SPECIVO_VERSION"), "0.1.9");
    assert_eq!(db_state(&stack), before);
    assert_eq!(user_files(&data), files_before);
    let aside = named(&stack.dir, "specivo-data.before-rollback-");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(run.stdout.contains(aside[0].to_str().unwrap()), "{run:?}");
    assert_eq!(user_files(&aside[0]), files_now);

    // The journal has it as a restore; the upgrade it undid is not rolled back again.
    let history = stack.hoist(&["history", "--json"]).summary();
    let last = &history["runs"][0];
    assert_eq!(last["kind"], "restore", "{last:#}");
    assert_eq!(last["outcome"], "succeeded", "{last:#}");
    assert_eq!(last["from_version"], "0.1.11", "{last:#}");
    assert_eq!(last["to_version"], "0.1.9", "{last:#}");
    let again = stack.hoist(&["rollback", "--yes"]);
    assert_eq!(again.code, 3, "{again:?}");
    assert!(again.stderr.contains("was restored"), "{again:?}");
    let status = stack.hoist(&["status", "--json"]).summary();
    assert!(status["attention"].is_null(), "{status:#}");
}

#[test]
fn a_hoist_backup_is_restored_by_a_hoist_whose_journal_never_saw_it() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("restore-bk", "0.1.10", 2);
    let taken = stack.hoist(&["backup", "--json"]);
    assert_eq!(taken.code, 0, "{taken:?}");
    let backup = PathBuf::from(taken.summary()["backup"].as_str().unwrap());
    let before = db_state(&stack);
    post_issue(&stack, "written after the backup");

    // A journal that never saw the backup (one taken before hoist kept a journal).
    let fresh = stack.state_dir.with_file_name("fresh-state");
    let history = stack
        .hoist_with_state(&fresh, &["history", "--json"])
        .summary();
    let entry = listed(&history, &backup);
    assert_eq!(entry["known"], false, "{entry:#}");
    assert_eq!(entry["verified"], true, "{entry:#}");
    assert_eq!(entry["version"], "0.1.10", "{entry:#}");

    let run = stack.hoist_with_state(
        &fresh,
        &["restore", backup.to_str().unwrap(), "--yes", "--json"],
    );
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["command"], "restore", "{s:#}");
    // The schema did not change, and still it is a restore, never a bare re-pin.
    assert_eq!(s["decision"], "restore", "{s:#}");
    assert!(
        s["losses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["table"] == "issues"
                && l["rows_now"].as_u64().unwrap() - l["rows_in_backup"].as_u64().unwrap() == 1),
        "{s:#}"
    );
    assert!(
        s["kept_aside"]["database"]
            .as_str()
            .is_some_and(|d| d.contains("_before_rollback_")),
        "{s:#}"
    );
    assert_eq!(db_state(&stack), before);
    assert_eq!(stack.env_value("SPECIVO_VERSION"), "0.1.10");
    assert_eq!(stack.health_version(), "0.1.10");
    let history = stack
        .hoist_with_state(&fresh, &["history", "--json"])
        .summary();
    assert_eq!(history["runs"][0]["kind"], "restore", "{history:#}");
    assert_eq!(history["runs"][0]["outcome"], "succeeded", "{history:#}");

    // A backup without a dump (as one of a stack whose database hoist could not dump), at the
    // version pinned now: its data comes back, the database is left as it is, and said so.
    let scratch = tempfile::tempdir().unwrap();
    let data_only = scratch.path().join("data-only");
    copy_with(&backup, &data_only, |m| {
        m["files"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f["kind"] != "dump");
        m["database"] = serde_json::Value::Null;
    });
    let data = stack.dir.join("specivo-data");
    let files_then = user_files(&data);
    std::fs::write(data.join("written-after.txt"), "newer").unwrap();
    post_issue(&stack, "kept by a data-only restore");
    let rows = db_state(&stack);
    let run = stack.hoist(&["restore", data_only.to_str().unwrap(), "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let said = run
        .json_lines()
        .into_iter()
        .find(|e| e["type"] == "rollback")
        .unwrap();
    assert!(
        said["unknown_loss"]
            .as_str()
            .unwrap()
            .contains("the database (service db) is left as it is"),
        "{said:#}"
    );
    let s = run.summary();
    assert!(s["kept_aside"]["database"].is_null(), "{s:#}");
    assert_eq!(db_state(&stack), rows);
    assert_eq!(user_files(&data), files_then);
    assert_eq!(stack.health_version(), "0.1.10");
}

/// What a refusal must leave as it was: `.env`, the containers, the app's answer, the rows.
struct Untouched {
    env: Vec<u8>,
    containers: Vec<u8>,
    version: String,
    db: (String, std::collections::BTreeMap<String, u64>),
}

impl Untouched {
    fn of(stack: &TestStack) -> Untouched {
        Untouched {
            env: std::fs::read(stack.dir.join(".env")).unwrap(),
            containers: stack.compose(&["ps", "-q"]).stdout,
            version: stack.health_version(),
            db: db_state(stack),
        }
    }

    fn assert_same(&self, stack: &TestStack, what: &str) {
        assert_eq!(
            std::fs::read(stack.dir.join(".env")).unwrap(),
            self.env,
            "{what}: .env"
        );
        assert_eq!(
            stack.compose(&["ps", "-q"]).stdout,
            self.containers,
            "{what}: containers"
        );
        assert_eq!(stack.health_version(), self.version, "{what}: version");
        assert_eq!(db_state(stack), self.db, "{what}: database");
    }
}

/// A copy of the backup `from` at `to`, its manifest changed by `edit`.
fn copy_with(from: &Path, to: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let path = to.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

#[test]
fn what_is_not_this_stacks_intact_backup_is_refused_with_nothing_changed() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("restore-no", "0.1.10", 2);
    let taken = stack.hoist(&["backup", "--json"]);
    assert_eq!(taken.code, 0, "{taken:?}");
    let backup = PathBuf::from(taken.summary()["backup"].as_str().unwrap());
    post_issue(&stack, "written after the backup");
    let untouched = Untouched::of(&stack);
    let scratch = tempfile::tempdir().unwrap();
    let restore = |dir: &Path| {
        let run = stack.hoist(&["restore", dir.to_str().unwrap(), "--yes"]);
        run.assert_no_panic();
        run
    };
    let refused = |run: &Run, code: i32, words: &[&str]| {
        assert_eq!(run.code, code, "{run:?}");
        for w in words {
            assert!(run.stderr.contains(w), "{w:?} not said: {run:?}");
        }
        assert!(run.stderr.contains("Nothing was changed"), "{run:?}");
        untouched.assert_same(&stack, words[0]);
    };

    // Not a backup at all: bad input.
    refused(
        &restore(&scratch.path().join("none")),
        2,
        &["does not exist"],
    );
    refused(&restore(scratch.path()), 2, &["holds no manifest.json"]);

    // Another project's backup.
    let other = scratch.path().join("other");
    copy_with(&backup, &other, |m| m["project"] = "someone-else".into());
    refused(
        &restore(&other),
        3,
        &["a backup of the project someone-else, not of"],
    );

    // A manifest that is not JSON.
    let garbage = scratch.path().join("garbage");
    copy_with(&backup, &garbage, |_| {});
    std::fs::write(garbage.join("manifest.json"), "{ not json").unwrap();
    refused(&restore(&garbage), 3, &["not valid JSON", "RESTORE.md"]);

    // No database dump, taken at another version than the one pinned now.
    let no_dump = scratch.path().join("no-dump");
    copy_with(&backup, &no_dump, |m| {
        m["files"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f["kind"] != "dump");
        m["database"] = serde_json::Value::Null;
        m["pinned"] = "0.1.9".into();
    });
    refused(
        &restore(&no_dump),
        3,
        &["holds no database dump", "may not run on"],
    );

    // A damaged archive: the files are checked against the manifest before anything.
    let archive = named(&backup, "data-")[0].clone();
    let original = std::fs::read(&archive).unwrap();
    let mut damaged = original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::write(&archive, &damaged).unwrap();
    refused(
        &restore(&backup),
        3,
        &["the restore cannot start", "sha256", "RESTORE.md"],
    );
    std::fs::write(&archive, &original).unwrap();

    // A manifest changed since the journal recorded it.
    let manifest = backup.join("manifest.json");
    let text = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, [text.as_slice(), b"\n"].concat()).unwrap();
    refused(&restore(&backup), 3, &["not the manifest hoist wrote"]);
    std::fs::write(&manifest, &text).unwrap();

    // Docker away: nothing restored.
    let run = stack.hoist_with(
        &["restore", backup.to_str().unwrap(), "--yes"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    run.assert_no_panic();
    refused(&run, 3, &["Docker is not reachable"]);

    // The journal keeps the refused runs that got as far as the backup's check.
    let history = stack.hoist(&["history", "--json"]).summary();
    let runs = history["runs"].as_array().unwrap();
    assert!(
        runs.iter()
            .any(|r| r["kind"] == "restore" && r["outcome"] == "refused"),
        "{history:#}"
    );
}

/// The archive at `path` rewritten to hold every entry it had and then two that cannot both be
/// extracted (a file, then a file "inside" it), so that an extraction fails half way; the
/// manifest is made to vouch for it, as a backup damaged before it was written would be.
fn break_archive_half_way(backup: &Path, name: &str) {
    use std::io::Read;
    let path = backup.join(name);
    let mut original = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut original)
        .unwrap();
    let mut out = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut input = tar::Archive::new(&original[..]);
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        out.append(&header, &body[..]).unwrap();
    }
    for entry in ["zz-conflict", "zz-conflict/inside"] {
        let mut header = tar::Header::new_gnu();
        header.set_path(entry).unwrap();
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        out.append(&header, &b"x"[..]).unwrap();
    }
    let bytes = out.into_inner().unwrap().finish().unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let sha = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(&bytes))
    };
    let manifest_path = backup.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["name"] == name {
            f["sha256"] = serde_json::json!(sha);
            f["size_bytes"] = serde_json::json!(bytes.len());
        }
    }
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_restore_whose_extraction_fails_half_way_puts_the_data_back_as_it_was() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("restore-half", "0.1.9", 1);
    let data = stack.dir.join("specivo-data");
    let taken = stack.hoist(&["backup", "--json"]);
    assert_eq!(taken.code, 0, "{taken:?}");
    let backup = PathBuf::from(taken.summary()["backup"].as_str().unwrap());
    // Written after the backup: what a restore would take away, and what must survive its failure.
    post_issue(&stack, "written after the backup");
    std::fs::write(data.join("after-the-backup.txt"), "newer").unwrap();
    let files_now = user_files(&data);
    let rows_now = db_state(&stack);
    // A copy the journal does not know (its manifest alone vouches for it), its data archive
    // broken half way.
    let copy = backup.with_extension("broken");
    copy_with(&backup, &copy, |_| {});
    let archive = std::fs::read_dir(&copy)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("data-") && n.ends_with(".tar.gz"))
        .unwrap();
    break_archive_half_way(&copy, &archive);

    let run = stack.hoist(&["restore", copy.to_str().unwrap(), "--yes"]);
    run.assert_no_panic();
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("The data was put back as it was"),
        "{run:?}"
    );
    // The app's data is what it was, whole; nothing half extracted, nothing left aside.
    assert_eq!(user_files(&data), files_now);
    assert!(!data.join("zz-conflict").exists());
    assert!(
        named(&stack.dir, "before-rollback").is_empty(),
        "{:?}",
        named(&stack.dir, "before-rollback")
    );
    // The database was not touched (the data comes first), and status says what to do.
    assert_eq!(db_state(&stack), rows_now);
    let status = stack.hoist(&["status", "--json"]).summary();
    assert_eq!(status["attention"]["state"], "restore_failed", "{status:#}");
    // The intact backup then restores, from the start.
    let again = stack.hoist(&["restore", backup.to_str().unwrap(), "--yes"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(!data.join("after-the-backup.txt").exists());
    assert!(stack.hoist(&["status", "--json"]).summary()["attention"].is_null());
}
