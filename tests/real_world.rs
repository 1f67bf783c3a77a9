//! Stacks shaped like the ones self-hosters run, not like the fixture, upgraded and rolled back
//! on the test bed: a literal tag pinned in the compose file with an override file beside it,
//! a one-shot init job on the app's image, a database image whose name does not say postgres,
//! and a second port that does not speak HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{TestStack, docker_available, free_port, inspect};

const REGISTRY: &str = "127.0.0.1:5000";

/// The test bed's PostgreSQL under a name that does not say what it is, as a locally built
/// database image would be.
fn store_image() -> String {
    let name = "hoist-test/store:15".to_string();
    let out = Command::new("docker")
        .args(["tag", &format!("{REGISTRY}/postgres:15"), &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker tag: {out:?}");
    name
}

fn version_on(port: u16) -> String {
    let out = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}/health")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["version"].as_str().unwrap_or("").to_string()
}

#[test]
fn a_literal_tag_with_an_override_file_a_one_shot_init_and_an_unnamed_database_upgrades_and_rolls_back()
 {
    if !docker_available() {
        return;
    }
    let (port, ssh_port, other_port) = (free_port(), free_port(), free_port());
    let store = store_image();
    let app = format!("{REGISTRY}/specivo/specivo");
    // The base file as an install guide writes it: literal tags, no port (the override adds it).
    let compose = format!(
        r#"services:
  db:
    image: {store}
    restart: unless-stopped
    environment:
      POSTGRES_USER: specivo
      POSTGRES_PASSWORD: ${{DB_PASSWORD}}
      POSTGRES_DB: specivo
    volumes:
      - db:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U specivo -d specivo"]
      interval: 2s
      retries: 15
  redis:
    image: {REGISTRY}/redis:7
    restart: unless-stopped
  init:
    image: "{app}:0.1.11"   # one-shot: prepares the data dir
    entrypoint: ["python3", "-c", "print('init done')"]
    restart: "no"
  api:
    image: "{app}:0.1.11"
    restart: unless-stopped
    command: ["serve"]
    environment:
      DATABASE_URL: postgresql://specivo:${{DB_PASSWORD}}@db:5432/specivo
      REDIS_URL: redis://redis:6379/0
    volumes:
      - ./data:/data
    depends_on:
      init: {{condition: service_completed_successfully}}
      db: {{condition: service_healthy}}
      redis: {{condition: service_started}}
  worker:
    image: {app}:0.1.11
    restart: unless-stopped
    command: ["worker"]
    environment:
      DATABASE_URL: postgresql://specivo:${{DB_PASSWORD}}@db:5432/specivo
      REDIS_URL: redis://redis:6379/0
    volumes:
      - ./data:/data
    depends_on:
      db: {{condition: service_healthy}}
volumes:
  db:
"#
    );
    // The user's own override: the published ports, one of them the app's SSH (not HTTP).
    let override_file = format!(
        "services:\n  api:\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n      - \"127.0.0.1:{ssh_port}:22\"\n      - \"127.0.0.1:{other_port}:7000\"\n"
    );
    let stack = TestStack::custom(
        "literal",
        &[
            ("compose.yaml", &compose),
            ("compose.override.yaml", &override_file),
            (".env", "DB_PASSWORD=literal-secret\n"),
        ],
    );
    // `up --wait` returns when the containers run; the app answers a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while version_on(port).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(version_on(port), "0.1.11");

    let status = stack.hoist(&["status", "--json"]).summary();
    assert_eq!(status["database"]["service"], "db", "{status:#}");
    // Known by its variables, and confirmed by asking the server binary in its container.
    let how = status["database"]["how"].as_str().unwrap();
    assert!(
        how.starts_with("its POSTGRES_* variables, confirmed: it runs postgres (PostgreSQL) 15"),
        "{how}"
    );
    assert_eq!(status["pinned"], "0.1.11");
    let lines: Vec<String> = compose
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(":0.1.11"))
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        status["pin_place"],
        format!("the image tag in compose.yaml lines {}", lines.join(", ")),
        "{status:#}"
    );

    let run = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    // Pinned where it is written, every other byte of the file kept; the override untouched.
    let now = std::fs::read_to_string(stack.dir.join("compose.yaml")).unwrap();
    assert_eq!(now, compose.replace(":0.1.11", ":0.1.12"));
    assert_eq!(
        std::fs::read_to_string(stack.dir.join("compose.override.yaml")).unwrap(),
        override_file
    );
    // The app answers on the override's port, at the new version; the init job ran again on
    // the new image and finished.
    assert_eq!(version_on(port), "0.1.12");
    let init = stack.container("init");
    assert_eq!(inspect(&init, "{{.Config.Image}}"), format!("{app}:0.1.12"));
    assert_eq!(
        inspect(&init, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    // The database was dumped although its image does not say postgres.
    let s = run.summary();
    let backup = std::path::PathBuf::from(s["backup"].as_str().unwrap());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["database"]["kind"], "postgres", "{manifest:#}");
    // Both compose files are in the backup, and RESTORE.md puts the tag back with them.
    assert!(backup.join("compose-2-compose.override.yaml").is_file());
    let restore = std::fs::read_to_string(backup.join("RESTORE.md")).unwrap();
    assert!(
        restore.contains(&format!(
            "cp BACKUP_DIR/compose.yaml {}",
            stack.dir.join("compose.yaml").display()
        )),
        "{restore}"
    );
    // Only the HTTP port was smoke-checked.
    let checks: Vec<String> = run
        .json_lines()
        .iter()
        .filter(|e| e["type"] == "check")
        .map(|e| e["what"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        checks.iter().any(|c| c.contains(&format!(":{port}/"))),
        "{checks:?}"
    );
    assert!(
        !checks.iter().any(|c| c.contains(&format!(":{ssh_port}"))),
        "{checks:?}"
    );
    // A port whose number says nothing (nothing speaks HTTP on it) is tried before the
    // upgrade, found silent, and left out, in words.
    assert!(
        !checks.iter().any(|c| c.contains(&format!(":{other_port}"))),
        "{checks:?}"
    );
    assert!(
        run.json_lines().iter().any(|e| e["type"] == "progress"
            && e["message"].as_str().unwrap_or("").contains(&format!(
                ":{other_port}/ gives no HTTP answer before the upgrade"
            ))),
        "the silent port is said"
    );

    // 0.1.12's migration dropped a column: going back restores the database and the data.
    let back = stack.hoist(&["rollback", "--yes", "--json"]);
    back.assert_no_panic();
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(back.summary()["decision"], "restore");
    assert_eq!(
        std::fs::read_to_string(stack.dir.join("compose.yaml")).unwrap(),
        compose
    );
    assert_eq!(version_on(port), "0.1.11");
}

/// Every file under `dir` with its bytes, mode and owner (a volume's directory on the host).
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, (Vec<u8>, u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            // The worker's heartbeat changes by itself; it is not the user's data.
            if rel.starts_with("worker") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                todo.push(p);
            } else {
                out.insert(
                    rel,
                    (
                        std::fs::read(&p).unwrap(),
                        meta.mode(),
                        meta.uid(),
                        meta.gid(),
                    ),
                );
            }
        }
    }
    out
}

fn volume_dir(name: &str) -> std::path::PathBuf {
    let out = Command::new("docker")
        .args(["volume", "inspect", "--format", "{{.Mountpoint}}", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "no volume {name}: {out:?}");
    std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn data_in_a_named_volume_is_restored_and_the_newer_content_kept_in_another_volume() {
    if !docker_available() {
        return;
    }
    let port = free_port();
    let compose = std::fs::read_to_string(common::repo_root().join("testbed/stack/compose.yaml"))
        .unwrap()
        .replace("${SPECIVO_DATA_DIR:-./specivo-data}:/data", "uploads:/data")
        .replace(
            "volumes:\n  db-data:\n",
            "volumes:\n  db-data:\n  uploads:\n",
        );
    let env = common::fixture_env("0.1.11", port, "volume");
    let stack = TestStack::custom("volume", &[("compose.yaml", &compose), (".env", &env)]);
    assert_eq!(version_on(port), "0.1.11");
    let volume = format!("{}_uploads", stack.project);
    let dir = volume_dir(&volume);
    // An SQLite database in the app's data, which nothing in the compose file names.
    let mut db = b"SQLite format 3\0".to_vec();
    db.extend([0u8; 4080]);
    std::fs::create_dir_all(dir.join("db")).unwrap();
    std::fs::write(dir.join("db/app.sqlite3"), &db).unwrap();
    let sqlite = stack
        .hoist(&["check", "--json"])
        .json_lines()
        .into_iter()
        .find(|f| f["type"] == "check" && f["name"] == "sqlite")
        .expect("check names the SQLite file");
    // Said, with how the backup copies it: the services that write it stopped meanwhile.
    assert_eq!(sqlite["status"], "ok");
    assert!(
        sqlite["message"]
            .as_str()
            .unwrap()
            .contains("The backup stops api, worker while it copies them"),
        "{sqlite:#}"
    );
    assert!(
        sqlite["message"]
            .as_str()
            .unwrap()
            .contains("/data/db/app.sqlite3"),
        "{sqlite:#}"
    );
    let before = tree(&dir);
    assert!(!before.is_empty(), "the app wrote nothing to its volume");

    let run = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    // The services that write the SQLite file are stopped while it is copied.
    assert!(
        run.stdout
            .contains("stopping api, worker while the data is copied"),
        "{}",
        run.stdout
    );
    let newer = tree(&dir);
    assert_ne!(newer, before, "0.1.12 rewrites the data format");

    let back = stack.hoist(&["rollback", "--yes", "--json"]);
    back.assert_no_panic();
    assert_eq!(back.code, 0, "{back:?}");
    let s = back.summary();
    assert_eq!(s["decision"], "restore", "{s:#}");
    assert_eq!(version_on(port), "0.1.11");
    // Byte-exact, modes kept; the newer content is in the volume the report names.
    assert_eq!(tree(&dir), before);
    let aside = s["kept_aside"]["data"][0].as_str().unwrap().to_string();
    let aside = aside.strip_prefix("volume ").unwrap();
    assert!(
        aside.starts_with(&format!("{volume}-before-rollback-")),
        "{aside}"
    );
    assert_eq!(tree(&volume_dir(aside)), newer);
    let _ = Command::new("docker")
        .args(["volume", "rm", aside])
        .output();
}

fn retag_and_push(from: &str, to: &str) {
    for args in [vec!["tag", from, to], vec!["push", "-q", to]] {
        let out = Command::new("docker").args(&args).output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {out:?}");
    }
}

#[test]
fn a_moving_tag_is_said_refused_as_a_target_and_gone_back_to_by_its_digest() {
    if !docker_available() {
        return;
    }
    let app = format!("{REGISTRY}/specivo/specivo");
    let moving = format!("edge-{}", std::process::id());
    // The tag is 0.1.10's image under another name: held for the test, so that a test which
    // removes 0.1.10 to count its download does not find its layers here.
    let _images = common::images_in_use();
    retag_and_push(&format!("{app}:0.1.10"), &format!("{app}:{moving}"));
    let stack = TestStack::start("moving", &moving);
    assert_eq!(stack.health_version(), "0.1.10");

    let version = stack
        .hoist(&["check", "--json"])
        .json_lines()
        .into_iter()
        .find(|f| f["type"] == "check" && f["name"] == "version")
        .unwrap();
    assert_eq!(version["status"], "warn", "{version:#}");
    assert!(
        version["message"].as_str().unwrap().contains("moving tag"),
        "{version:#}"
    );

    // A moving target is refused with the exact version it stands for now.
    let refused = stack.hoist(&["upgrade", "--to", "latest", "--yes"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("is a moving tag"), "{refused:?}");
    assert!(refused.stderr.contains("It is 0.1."), "{refused:?}");

    let run = stack.hoist(&["upgrade", "--to", "0.1.11", "--yes", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(stack.health_version(), "0.1.11");

    // The project publishes: the tag moves on. Going back must land on the bits that ran.
    retag_and_push(&format!("{app}:0.1.12"), &format!("{app}:{moving}"));
    let back = stack.hoist(&["rollback", "--yes", "--json"]);
    back.assert_no_panic();
    assert_eq!(back.code, 0, "{back:?}");
    assert_eq!(stack.health_version(), "0.1.10");
    let pinned = stack.env_value("SPECIVO_VERSION");
    assert!(pinned.starts_with(&format!("{moving}@sha256:")), "{pinned}");
    drop(stack);
    let _ = Command::new("docker")
        .args(["rmi", &format!("{app}:{moving}")])
        .output();
}

/// An app whose database hoist is told not to dump (`database: none`) migrates during the
/// upgrade: the run says, once, that the backup holds no dump to undo it with.
#[test]
fn a_migration_with_no_dump_in_the_backup_is_said() {
    if !docker_available() {
        return;
    }
    let port = free_port();
    let compose =
        std::fs::read_to_string(common::repo_root().join("testbed/stack/compose.yaml")).unwrap();
    let compose = format!("x-hoist:\n  database: none\n{compose}");
    let env = common::fixture_env("0.1.10", port, "nodump");
    let stack = TestStack::custom("nodump", &[("compose.yaml", &compose), (".env", &env)]);
    let run = stack.hoist(&["upgrade", "--to", "0.1.11", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let warnings: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("the backup holds no dump of it"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stdout);
    assert!(warnings[0].contains("0020 -> 0021"), "{}", warnings[0]);
}
