//! The data of services beside the app (a Redis with a volume, a second PostgreSQL, a service
//! hoist does not know) goes into the backup, each copy consistent: Redis after a SAVE while it
//! runs, the others stopped for the copy and started again. A hoist killed while a service is
//! stopped for its copy leaves a journal record: `status` names the service, and the next
//! backup starts it again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestStack, docker_available, docker_exec as exec, free_port, inspect};

fn fixture(extra_services: &str, extra_volumes: &str, port: u16, tag: &str) -> TestStack {
    let compose = std::fs::read_to_string(common::repo_root().join("testbed/stack/compose.yaml"))
        .unwrap()
        .replace("services:\n", &format!("services:\n{extra_services}"))
        .replace(
            "volumes:\n  db-data:\n",
            &format!("volumes:\n  db-data:\n{extra_volumes}"),
        );
    let env = common::fixture_env("0.1.11", port, "beside");
    TestStack::custom(tag, &[("compose.yaml", &compose), (".env", &env)])
}

fn archive_names(path: &std::path::Path) -> Vec<String> {
    let out = Command::new("tar").arg("tzf").arg(path).output().unwrap();
    assert!(out.status.success(), "tar tzf {}: {out:?}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect()
}

#[test]
fn a_redis_and_a_second_database_beside_the_app_are_backed_up_each_consistently() {
    if !docker_available() {
        return;
    }
    let port = free_port();
    // The bed's Redis is started as the published image is: its snapshot in /data.
    let services = "  cache:\n    image: 127.0.0.1:5000/redis:7\n    command: [\"--dir\", \"/data\"]\n    restart: unless-stopped\n    volumes:\n      - cachedata:/data\n  analytics:\n    image: 127.0.0.1:5000/postgres:15\n    restart: unless-stopped\n    environment:\n      POSTGRES_PASSWORD: analytics-secret\n    volumes:\n      - analytics-data:/var/lib/postgresql/data\n    healthcheck:\n      test: [\"CMD\", \"pg_isready\", \"-U\", \"postgres\"]\n      interval: 2s\n      retries: 15\n";
    let stack = fixture(
        services,
        "  cachedata:\n  analytics-data:\n",
        port,
        "beside",
    );
    let (cache, analytics) = (stack.container("cache"), stack.container("analytics"));
    exec(&cache, &["redis-cli", "SET", "visits", "41"]);
    exec(
        &analytics,
        &[
            "psql",
            "-U",
            "postgres",
            "-c",
            "CREATE TABLE hits (n int); INSERT INTO hits VALUES (7);",
        ],
    );
    let cache_started = inspect(&cache, "{{.State.StartedAt}}");
    let analytics_started = inspect(&analytics, "{{.State.StartedAt}}");

    // check and status say what the backup does with each.
    let check = stack.hoist(&["check", "--json"]).json_lines();
    let finding = |name: &str| {
        check
            .iter()
            .find(|f| f["type"] == "check" && f["name"] == name)
            .unwrap_or_else(|| panic!("no finding {name}: {check:#?}"))
            .clone()
    };
    assert_eq!(finding("data of cache")["status"], "ok");
    assert!(
        finding("data of cache")["message"]
            .as_str()
            .unwrap()
            .contains("after a SAVE")
    );
    assert!(
        finding("data of analytics")["message"]
            .as_str()
            .unwrap()
            .contains("stopped for the copy")
    );

    let run = stack.hoist(&["backup", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("cache saved its snapshot; copying it while it runs"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("not on any of its volumes"));
    let s = run.summary();
    let dir = std::path::PathBuf::from(s["backup"].as_str().unwrap());
    let files = s["files"].as_array().unwrap();
    let beside = |service: &str| {
        files
            .iter()
            .find(|f| f["kind"] == "beside" && f["service"] == service)
            .unwrap_or_else(|| panic!("no archive of {service}: {files:#?}"))
            .clone()
    };
    let cache_file = beside("cache");
    assert_eq!(cache_file["target"], "/data");
    let names = archive_names(&dir.join(cache_file["name"].as_str().unwrap()));
    assert!(names.iter().any(|n| n == "dump.rdb"), "{names:?}");
    let analytics_file = beside("analytics");
    assert!(
        archive_names(&dir.join(analytics_file["name"].as_str().unwrap()))
            .iter()
            .any(|n| n == "PG_VERSION")
    );
    // Redis saved and was copied running; the second database was stopped and runs again.
    assert_eq!(inspect(&cache, "{{.State.StartedAt}}"), cache_started);
    assert_ne!(
        inspect(&analytics, "{{.State.StartedAt}}"),
        analytics_started
    );
    stack.wait_inspect("analytics", "{{.State.Health.Status}}", "healthy", 60);
    assert_eq!(
        exec(
            &analytics,
            &["psql", "-U", "postgres", "-tAc", "SELECT n FROM hits"]
        ),
        "7"
    );
    // Not restored by a rollback, and RESTORE.md says how to by hand.
    let restore = std::fs::read_to_string(dir.join("RESTORE.md")).unwrap();
    assert!(
        restore.contains("## Data of services beside the app"),
        "{restore}"
    );
    assert!(restore.contains("Service `analytics`"), "{restore}");
    // The journal's record of the stop is closed: nothing is said to be left stopped.
    let status = stack.hoist(&["status"]);
    assert!(
        !status.stdout.contains("may be stopped"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("Beside"), "{}", status.stdout);
}

/// Waits until Docker has sent `container` its stop signal (a `kill` event since `since`).
fn wait_for_stop_signal(container: &str, since: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let out = Command::new("docker")
            .args([
                "events",
                "--since",
                &since.to_string(),
                "--until",
                &now.to_string(),
                "--filter",
                &format!("container={container}"),
                "--filter",
                "event=kill",
            ])
            .output()
            .unwrap();
        if !out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{container} was never told to stop");
}

#[test]
fn a_service_left_stopped_by_a_killed_backup_is_named_and_started_again() {
    if !docker_available() {
        return;
    }
    let port = free_port();
    // `sleep` as PID 1 ignores SIGTERM: Docker stops it only after the stop timeout, which
    // gives the test a window in which hoist has it stopping. Its image says Redis but no
    // Redis runs: SAVE fails, and it is stopped for the copy instead.
    let services = "  index:\n    image: 127.0.0.1:5000/redis:7\n    entrypoint: [\"sleep\", \"infinity\"]\n    restart: unless-stopped\n    volumes:\n      - index-data:/data\n";
    let stack = fixture(services, "  index-data:\n", port, "killed-hold");
    let compose = stack.dir.join("compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(
        &compose,
        format!("x-hoist:\n  timeouts:\n    stop: 15s\n{text}"),
    )
    .unwrap();
    let index = stack.container("index");
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let mut child = stack
        .hoist_command(&["backup", "--json"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_stop_signal(&index, since, 60);
    child.kill().unwrap();
    let _ = child.wait();
    // Docker finishes the stop on its own.
    stack.wait_inspect("index", "{{.State.Status}}", "exited", 40);

    // check does not send the user to start it by hand as if it had crashed.
    let check = stack.hoist(&["check", "--json"]).json_lines();
    let index_finding = check
        .iter()
        .find(|f| f["type"] == "check" && f["name"] == "service index")
        .unwrap_or_else(|| panic!("{check:#?}"));
    assert_eq!(index_finding["status"], "warn", "{index_finding:#}");
    assert!(
        index_finding["message"]
            .as_str()
            .unwrap()
            .contains("did not start it again"),
        "{index_finding:#}"
    );
    // A dry run changes nothing, not even that.
    let dry = stack.hoist(&["upgrade", "--to", "0.1.12", "--dry-run"]);
    assert!(!dry.stdout.contains("started"), "{}", dry.stdout);
    assert_eq!(inspect(&index, "{{.State.Status}}"), "exited");

    let status = stack.hoist(&["status"]);
    assert!(
        status.stdout.contains("index may be stopped"),
        "{}",
        status.stdout
    );
    let status_json = stack.hoist(&["status", "--json"]).summary();
    assert!(
        status_json["left_stopped"][0]
            .as_str()
            .unwrap()
            .contains("docker compose start index"),
        "{status_json:#}"
    );

    let again = stack.hoist(&["backup", "--json"]);
    again.assert_no_panic();
    assert_eq!(again.code, 0, "{again:?}");
    // It ignores SIGTERM: Docker kills it after the stop timeout, and hoist says so.
    assert!(
        again
            .stdout
            .contains("index-1 (after 15 s) did not stop when asked and Docker killed it"),
        "{}",
        again.stdout
    );
    assert_eq!(inspect(&index, "{{.State.Status}}"), "running");
    let status = stack.hoist(&["status"]);
    assert!(
        !status.stdout.contains("may be stopped"),
        "{}",
        status.stdout
    );
}
