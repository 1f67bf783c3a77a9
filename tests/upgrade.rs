//! `hoist upgrade` on the test bed: real upgrades, and the refusals that must change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use common::{Run, TestStack, docker_available};

/// service -> container id, for "was it recreated?".
fn container_ids(stack: &TestStack) -> BTreeMap<String, String> {
    let out = stack.compose(&["ps", "-a", "--format", "{{.Service}} {{.ID}}"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(s, id)| (s.to_string(), id.to_string()))
        })
        .collect()
}

fn events(run: &Run, kind: &str) -> Vec<serde_json::Value> {
    run.json_lines()
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

#[test]
fn upgrades_0_1_9_to_0_1_10_then_0_1_11_with_its_migration() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_removing_images("upgrade", "0.1.9");
    let env_before = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    let ids_before = container_ids(&stack);

    let run = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["outcome"], "succeeded", "{s:#}");
    assert_eq!(
        (s["from"].as_str(), s["to"].as_str()),
        (Some("0.1.9"), Some("0.1.10"))
    );
    assert_eq!(s["schema_before"], "0020");
    assert_eq!(s["schema_after"], "0020");
    assert!(
        std::path::Path::new(s["backup"].as_str().unwrap())
            .join("manifest.json")
            .is_file()
    );
    assert!(s["downtime_ms"].as_u64().is_some(), "{s}");
    let steps: Vec<&str> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "target",
            "backup",
            "pull",
            "pin",
            "restart",
            "watch",
            "verify"
        ]
    );
    assert!(
        events(&run, "migration").is_empty(),
        "0.1.10 has no migration"
    );

    // .env: only the pinned value changed, mode kept.
    let env_after = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    assert_eq!(
        env_after,
        env_before.replace("SPECIVO_VERSION=0.1.9", "SPECIVO_VERSION=0.1.10")
    );
    assert_eq!(
        std::fs::metadata(stack.dir.join(".env"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // db and redis were not recreated; the app was.
    let ids_after = container_ids(&stack);
    assert_eq!(ids_after["db"], ids_before["db"]);
    assert_eq!(ids_after["redis"], ids_before["redis"]);
    assert_ne!(ids_after["api"], ids_before["api"]);
    assert_eq!(stack.health_version(), "0.1.10");
    // Docker's events showed each app container stopped and its successor started, and
    // nothing happening to db or redis.
    let containers = events(&run, "container");
    for service in ["api", "worker", "beat"] {
        for action in ["stop", "destroy", "create", "start"] {
            assert!(
                containers
                    .iter()
                    .any(|e| e["service"] == service && e["action"] == action),
                "no {action} event for {service}: {containers:?}"
            );
        }
    }
    assert!(
        containers
            .iter()
            .all(|e| e["service"] != "db" && e["service"] != "redis"),
        "{containers:?}"
    );

    // 0.1.10 -> 0.1.11 with the image not yet here: it is pulled, and migration 0021 is seen
    // in the logs as it runs and in the database after.
    common::remove_image("127.0.0.1:5000/specivo/specivo:0.1.11");
    let run = stack.hoist(&["upgrade", "--to", "0.1.11", "--yes", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["schema_before"], "0020");
    assert_eq!(s["schema_after"], "0021");
    let migrations = events(&run, "migration");
    assert!(
        migrations
            .iter()
            .any(|m| m["from"] == "0020" && m["to"] == "0021" && m["service"] == "api"),
        "{migrations:?}"
    );
    // The pull reported layers and bytes, ending with every layer here.
    let pulls = events(&run, "pull");
    let last = pulls.last().expect("the pull reports its progress");
    assert_eq!(last["done"], true, "{pulls:?}");
    let p = &last["progress"];
    assert!(p["layers"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(p["layers_done"], p["layers"], "{p}");
    assert!(p["bytes_done"].as_u64().unwrap() > 1_000_000, "{p}");
    assert!(
        pulls.iter().any(|e| e["done"] == false),
        "progress came before the end: {pulls:?}"
    );
    // The backup's files as the front end sees them are the manifest's, sha256 included.
    let done = &events(&run, "backup_done")[0];
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(s["backup"].as_str().unwrap()).join("manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(done["files"], manifest["files"]);
    assert!(!events(&run, "backup_progress").is_empty());
    // The verification's checklist: all passed, the schema's step named.
    let checks = events(&run, "check");
    assert!(checks.iter().all(|c| c["ok"] == true), "{checks:?}");
    for (what, detail) in [("schema", "0020 -> 0021"), ("rows", "none lost")] {
        assert!(
            checks
                .iter()
                .any(|c| c["what"] == what && c["detail"].as_str().unwrap().contains(detail)),
            "{what}: {checks:?}"
        );
    }
    assert!(
        checks.iter().any(|c| c["what"]
            .as_str()
            .unwrap()
            .starts_with("GET http://127.0.0.1:")),
        "{checks:?}"
    );
    assert_eq!(stack.health_version(), "0.1.11");

    let history = stack.hoist(&["history", "--json"]).summary();
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r["kind"] == "upgrade" && r["outcome"] == "succeeded")
    );
    assert_eq!(runs[0]["to_version"], "0.1.11");
}

/// Runs an upgrade that must be refused, and checks nothing changed.
fn assert_refused_unchanged(stack: &TestStack, args: &[&str], code: i32, says: &str) {
    let env_before = std::fs::read(stack.dir.join(".env")).unwrap();
    let ids_before = container_ids(stack);
    let run = stack.hoist(args);
    run.assert_no_panic();
    assert_eq!(run.code, code, "{run:?}");
    assert!(
        run.stderr.contains(says),
        "expected {says:?}: {}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(stack.dir.join(".env")).unwrap(),
        env_before,
        ".env changed"
    );
    assert_eq!(container_ids(stack), ids_before, "containers changed");
    let backups = stack
        .dir
        .parent()
        .unwrap()
        .join(format!("{}-backups", stack.project));
    assert!(
        !backups.exists() || std::fs::read_dir(&backups).unwrap().next().is_none(),
        "a backup was taken"
    );
}

#[test]
fn refusals_change_nothing() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("refuse", "0.1.9");
    // A tag that does not exist.
    assert_refused_unchanged(
        &stack,
        &["upgrade", "--to", "9.9.9", "--yes"],
        3,
        "does not exist in its registry",
    );
    // No confirmation.
    assert_refused_unchanged(
        &stack,
        &["upgrade", "--to", "0.1.10"],
        3,
        "was not confirmed",
    );
    // The dry run.
    let env_before = std::fs::read(stack.dir.join(".env")).unwrap();
    let ids_before = container_ids(&stack);
    let dry = stack.hoist(&["upgrade", "--to", "0.1.10", "--dry-run", "--json"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    let s = dry.summary();
    assert_eq!(s["outcome"], "dry_run");
    assert_eq!(s["plan"]["env_diff"]["after"], "SPECIVO_VERSION=0.1.10");
    assert_eq!(
        s["plan"]["recreate"],
        serde_json::json!(["api", "beat", "worker"])
    );
    assert_eq!(std::fs::read(stack.dir.join(".env")).unwrap(), env_before);
    assert_eq!(container_ids(&stack), ids_before);
    // An unreachable registry (the compose file now names one that is not there).
    let compose = stack.dir.join("compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(
        &compose,
        text.replace("127.0.0.1:5000/specivo/", "127.0.0.1:5999/specivo/"),
    )
    .unwrap();
    assert_refused_unchanged(
        &stack,
        &["upgrade", "--to", "0.1.10", "--yes"],
        3,
        "registry",
    );
    std::fs::write(&compose, text).unwrap();
    // An unhealthy stack.
    stack.compose(&["stop", "worker"]);
    assert_refused_unchanged(
        &stack,
        &["upgrade", "--to", "0.1.10", "--yes"],
        3,
        "not ready to upgrade",
    );
}

#[test]
fn a_configured_ready_line_ends_the_wait_for_services_without_healthcheck() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("readyline", "0.1.9");
    // worker and beat have no healthcheck: without the ready line they would need to run ten
    // minutes without a restart, longer than the 2-minute ready timeout.
    std::fs::write(
        stack.dir.join("hoist.yaml"),
        "ready_after: 10m\ntimeouts:\n  ready: 2m\nlogs:\n  ready: 'ready \\(specivo 0\\.1\\.10\\)'\n",
    )
    .unwrap();
    let run = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    let watch = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["name"] == "watch")
        .unwrap()
        .clone();
    assert!(watch["ms"].as_u64().unwrap() < 60_000, "{watch}");
    assert_eq!(stack.health_version(), "0.1.10");
}

#[test]
fn several_releases_at_once_go_one_hop_at_a_time_with_one_backup() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("hops", "0.1.9");
    let dry = stack.hoist(&["upgrade", "--to", "0.1.12", "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains("path:     0.1.10 -> 0.1.11 -> 0.1.12"),
        "{dry:?}"
    );

    let run = stack.hoist(&["upgrade", "--to", "0.1.12", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    let hops: Vec<(String, String)> = events(&run, "hop")
        .iter()
        .map(|h| {
            (
                h["from"].as_str().unwrap().to_string(),
                h["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            ("0.1.9", "0.1.10"),
            ("0.1.10", "0.1.11"),
            ("0.1.11", "0.1.12")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(
        s["hops_done"],
        serde_json::json!(["0.1.10", "0.1.11", "0.1.12"])
    );
    // One backup; each hop pinned, restarted, watched and verified.
    let steps = s["steps"].as_array().unwrap();
    let count = |name: &str| steps.iter().filter(|st| st["name"] == name).count();
    assert_eq!(count("backup"), 1);
    for name in ["pin", "restart", "watch", "verify"] {
        assert_eq!(count(name), 3, "{name}: {steps:?}");
    }
    assert!(
        steps
            .iter()
            .any(|st| st["name"] == "verify" && st["hop"] == "0.1.11")
    );
    // Both migrations seen on the way; the schema at 0.1.12's head.
    let migrations = events(&run, "migration");
    for to in ["0021", "0022"] {
        assert!(migrations.iter().any(|m| m["to"] == to), "{migrations:?}");
    }
    assert_eq!(s["schema_after"], "0022");
    assert_eq!(stack.health_version(), "0.1.12");
    let backups = stack.hoist(&["history", "--json"]).summary()["backups"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(backups, 1);
}

#[test]
fn a_worker_that_dies_once_the_app_is_up_fails_the_upgrade_in_its_window() {
    if !docker_available() {
        return;
    }
    // worker has no healthcheck; on 0.1.10 it dies 8 s after it starts, after the api is
    // healthy, within the 12 s it must run without a restart.
    let compose = std::fs::read_to_string(common::repo_root().join("testbed/stack/compose.yaml"))
        .unwrap()
        .replace(
            "    command: [\"worker\"]\n",
            "    entrypoint: [\"sh\", \"-c\", \"if [ \\\"$$SPECIVO_RELEASE\\\" = 0.1.10 ]; then sleep 8; exit 4; fi; exec python3 /app/specivo.py worker\"]\n",
        );
    assert!(compose.contains("sleep 8"));
    let port = common::free_port();
    let env = common::fixture_env("0.1.9", port, "window");
    let mut stack = TestStack::custom(
        "window",
        &[
            ("compose.yaml", &compose),
            (".env", &env),
            ("hoist.yaml", "ready_after: 12s\n"),
        ],
    );
    stack.port = port;
    let run = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 4, "{run:?}");
    let s = run.summary();
    let failure = s["failure"].as_str().unwrap();
    assert!(
        failure.contains("did not stay up on 0.1.10")
            && failure.contains("worker is crash-looping")
            && failure.contains("last exit code 4"),
        "{failure}"
    );
    // The watch ended when the app was up; the checks ran within the window, before the
    // worker died.
    let lines = run.json_lines();
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| lines.iter().position(pred);
    let watch_done = at(&|e| e["type"] == "step_finished" && e["step"] == "watch").unwrap();
    let smoke =
        at(&|e| e["type"] == "check" && e["what"].as_str().unwrap_or("").starts_with("GET http"))
            .unwrap();
    assert_eq!(lines[smoke]["ok"], true, "{:#}", lines[smoke]);
    let failed = at(&|e| e["type"] == "failure").unwrap();
    assert!(watch_done < smoke && smoke < failed, "{lines:#?}");
    assert_eq!(s["rollback"]["outcome"], "succeeded", "{s:#}");
    assert_eq!(stack.health_version(), "0.1.9");
}
