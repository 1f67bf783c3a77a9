//! `hoist backup` on the test bed: the backup is real (its dump restores into a scratch database
//! with the same row counts, its archive extracts to the same files, its checksums match), it is
//! private, it is journaled, and a failure leaves nothing that looks like a backup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{DbContainer, TestStack, docker_available};
use sha2::{Digest, Sha256};

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Relative path -> sha256 of every regular file under `root`.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    sha256(&path),
                );
            }
        }
    }
    out
}

fn backups_under(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_restores_to_the_same_rows_and_files() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("backup", "0.1.9");
    // A row and a file written the way a user would.
    let out = Command::new("curl")
        .args(["-sf", "-XPOST", "-d", "written before the backup"])
        .arg(format!("http://127.0.0.1:{}/api/issues", stack.port))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let backup_root = stack.dir.parent().unwrap().join("backups");

    let run = stack.hoist(&[
        "backup",
        "--json",
        "--backup-dir",
        backup_root.to_str().unwrap(),
    ]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let summary = run.summary();
    assert_eq!(summary["outcome"], "succeeded");
    let dir = PathBuf::from(summary["backup"].as_str().unwrap());
    assert_eq!(
        backups_under(&backup_root),
        std::slice::from_ref(&dir),
        "exactly one backup dir, no partial left"
    );

    // Private: the dump holds every secret of the app.
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            path.display()
        );
    }

    // The manifest's checksums are the files'.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "database.sql.gz",
            "data-specivo-data.tar.gz",
            "env",
            "compose.yaml",
            "config.json"
        ]
    );
    // The configuration the app ran with: each upgraded service's environment and labels.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["api"]["env"]["SPECIVO_RELEASE"], "0.1.9",
        "{config:#}"
    );
    assert_eq!(
        config["worker"]["labels"]["org.opencontainers.image.version"], "0.1.9",
        "{config:#}"
    );
    for f in files {
        let path = dir.join(f["name"].as_str().unwrap());
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            sha256(&path),
            "{}",
            path.display()
        );
        assert_eq!(
            f["size_bytes"].as_u64().unwrap(),
            std::fs::metadata(&path).unwrap().len()
        );
    }
    assert!(dir.join("RESTORE.md").is_file());
    assert_eq!(manifest["database"]["revision"], "0020");
    assert_eq!(manifest["running_version"], "0.1.9");
    assert_eq!(
        std::fs::read(dir.join("env")).unwrap(),
        std::fs::read(stack.dir.join(".env")).unwrap()
    );

    // The archive extracts to the same files as the data dir.
    let extracted = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("xzf")
        .arg(dir.join("data-specivo-data.tar.gz"))
        .arg("-C")
        .arg(extracted.path())
        .status()
        .unwrap();
    assert!(status.success());
    // The worker rewrites its heartbeat every 5 s while the stack runs, as live apps do: the
    // archive holds the value of its moment. Every other file must be identical.
    let live = |mut t: BTreeMap<PathBuf, String>| {
        assert!(t.remove(Path::new("worker/heartbeat")).is_some());
        t
    };
    let original = live(tree(&stack.dir.join("specivo-data")));
    assert!(original.len() > 20, "the fixture has uploads: {original:?}");
    assert_eq!(live(tree(extracted.path())), original);

    // The dump restores, in one transaction that stops at the first error, into a scratch
    // database, with the row counts the manifest recorded.
    let scratch = DbContainer::start(
        "scratch",
        "127.0.0.1:5000/postgres:15",
        &[
            ("POSTGRES_USER", "specivo"),
            ("POSTGRES_PASSWORD", "scratch-pw"),
            ("POSTGRES_DB", "specivo"),
        ],
        &["pg_isready", "-h", "127.0.0.1", "-U", "specivo"],
    );
    let mut gunzip = Command::new("gunzip")
        .arg("-c")
        .arg(dir.join("database.sql.gz"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let restore = Command::new("docker")
        .args([
            "exec",
            "-i",
            &scratch.name,
            "psql",
            "-q",
            "-U",
            "specivo",
            "-d",
            "specivo",
            "--single-transaction",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .stdin(gunzip.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(gunzip.wait().unwrap().success());
    assert!(
        restore.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let probe = hoist::db::probe(
        &hoist::db::DbTarget {
            kind: hoist::db::DbKind::Postgres,
            host: scratch.ip.clone(),
            port: 5432,
            user: "specivo".into(),
            password: hoist::secret::Secret::new("scratch-pw"),
            database: "specivo".into(),
            sqlite_path: None,
        },
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    let restored: Vec<(String, u64)> = probe
        .tables
        .iter()
        .map(|t| (t.name.clone(), t.rows))
        .collect();
    let recorded: Vec<(String, u64)> = manifest["database"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(restored, recorded);
    assert!(
        recorded.iter().any(|(t, n)| t == "issues" && *n == 41),
        "the row written before the backup is in it: {recorded:?}"
    );
    assert_eq!(
        probe.fingerprint,
        manifest["database"]["fingerprint"].as_str().unwrap()
    );

    // The journal has the run and the backup.
    let history = stack.hoist(&["history", "--json"]);
    assert_eq!(history.code, 0, "{history:?}");
    let h = history.summary();
    assert_eq!(h["runs"][0]["kind"], "backup");
    assert_eq!(h["runs"][0]["outcome"], "succeeded");
    assert_eq!(h["runs"][0]["steps"][0]["name"], "backup");
    assert_eq!(h["backups"][0]["path"], dir.to_str().unwrap());
    assert_eq!(h["backups"][0]["schema_revision"], "0020");
}

#[test]
fn a_backup_is_refused_when_the_database_cannot_be_read() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("backup-nodb", "0.1.9");
    stack.compose(&["stop", "db"]);
    let backup_root = stack.dir.parent().unwrap().join("backups");
    let run = stack.hoist(&["backup", "--backup-dir", backup_root.to_str().unwrap()]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("cannot be backed up"), "{}", run.stderr);
    assert!(
        backups_under(&backup_root).is_empty(),
        "nothing may look like a backup"
    );
}

#[test]
fn a_full_disk_leaves_no_partial_backup() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("backup-full", "0.1.9");
    let small = stack.dir.parent().unwrap().join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a small tmpfs needs root");
    let run = stack.hoist(&[
        "backup",
        "--backup-dir",
        small.join("backups").to_str().unwrap(),
    ]);
    let left = backups_under(&small.join("backups"));
    let _ = Command::new("umount").arg(&small).status();
    run.assert_no_panic();
    // The pre-flight estimate refuses (3) or the write fails cleanly (1); either way nothing is left.
    assert!(run.code == 3 || run.code == 1, "{run:?}");
    assert!(run.stderr.contains("disk"), "{}", run.stderr);
    assert!(left.is_empty(), "left behind: {left:?}");
}
