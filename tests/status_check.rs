//! `hoist status` and `hoist check` against real stacks on the test bed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{TestStack, docker_available};

#[test]
fn version_names_the_release_and_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "hoist {} (commit {})",
            env!("CARGO_PKG_VERSION"),
            common::head_commit()
        )
    );
}

#[test]
fn healthy_stack_at_0_1_9_is_reported_and_ready() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("healthy", "0.1.9");

    let run = stack.hoist(&["status", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["project"], stack.project.as_str());
    assert_eq!(
        s["compose_file"],
        stack.dir.join("compose.yaml").to_str().unwrap()
    );
    assert_eq!(s["version_variable"], "SPECIVO_VERSION");
    assert_eq!(s["pinned"], "0.1.9");
    // A bug report pasted from `status --json` says which hoist it was.
    assert_eq!(s["hoist"]["version"], env!("CARGO_PKG_VERSION"), "{s:#}");
    assert_eq!(
        s["hoist"]["commit"],
        common::head_commit().as_str(),
        "{s:#}"
    );
    let services = s["services"].as_array().unwrap();
    let names: Vec<&str> = services
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "beat", "db", "redis", "worker"], "{s:#}");
    for svc in services {
        assert_eq!(svc["state"], "running", "{svc}");
        if ["api", "worker", "beat"].contains(&svc["name"].as_str().unwrap()) {
            assert_eq!(svc["image"], "127.0.0.1:5000/specivo/specivo:0.1.9");
            assert_eq!(svc["version"], "0.1.9");
            assert_eq!(svc["upgraded"], true);
        } else {
            assert_eq!(svc["upgraded"], false);
        }
    }
    let api = services.iter().find(|v| v["name"] == "api").unwrap();
    assert_eq!(api["health"], "healthy");
    let worker = services.iter().find(|v| v["name"] == "worker").unwrap();
    assert!(
        worker["health"].is_null(),
        "worker has no healthcheck: {worker}"
    );
    let db = &s["database"];
    assert_eq!(db["kind"], "postgres");
    assert_eq!(db["service"], "db");
    assert_eq!(db["migrations"], "alembic");
    assert_eq!(db["revision"], "0020");
    let tables = db["tables"].as_array().unwrap();
    let count = |name: &str| {
        tables.iter().find(|t| t["name"] == name).unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count("issues"), 40);
    assert_eq!(count("comments"), 120);
    assert!(
        !run.stdout.contains("db-"),
        "the database password leaked: {}",
        run.stdout
    );

    let human = stack.hoist(&["status"]);
    assert_eq!(human.code, 0, "{human:?}");
    assert!(human.stdout.contains("SPECIVO_VERSION"), "{}", human.stdout);
    assert!(human.stdout.contains("0.1.9"), "{}", human.stdout);
    assert!(human.stdout.contains("0020"), "{}", human.stdout);

    let check = stack.hoist(&["check", "--json"]);
    check.assert_no_panic();
    assert_eq!(check.code, 0, "{check:?}");
    let c = check.summary();
    assert_eq!(c["ready"], true, "{}", check.stdout);
    let names: Vec<String> = check
        .json_lines()
        .iter()
        .filter(|l| l["type"] == "check")
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "docker",
        "compose",
        "service api",
        "service db",
        "database",
        "version",
        "backup dir",
        "disk",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "no {want} check in {names:?}"
        );
    }
    let disk = check
        .json_lines()
        .into_iter()
        .find(|l| l["name"] == "disk")
        .unwrap();
    // ~100 MB of uploads plus the database: the estimate must see the data dir.
    assert!(
        disk["estimate_bytes"].as_u64().unwrap() > 100_000_000,
        "{disk}"
    );
    assert!(disk["available_bytes"].as_u64().unwrap() > 0, "{disk}");

    let human = stack.hoist(&["check"]);
    assert_eq!(human.code, 0, "{human:?}");
    assert!(
        human.stdout.contains("Ready to upgrade"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_stopped_service_makes_check_refuse_and_shows_its_logs() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("stopped", "0.1.9");
    stack.compose(&["stop", "worker"]);

    let check = stack.hoist(&["check", "--json"]);
    check.assert_no_panic();
    assert_eq!(check.code, 3, "{check:?}");
    assert_eq!(check.summary()["ready"], false);
    let worker = check
        .json_lines()
        .into_iter()
        .find(|l| l["name"] == "service worker")
        .unwrap();
    assert_eq!(worker["status"], "fail", "{worker}");
    assert!(
        worker["message"].as_str().unwrap().contains("exited"),
        "{worker}"
    );
    let logs = worker["details"].as_array().unwrap();
    assert!(
        logs.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("Task specivo.tasks.index_issues")),
        "{worker}"
    );

    let human = stack.hoist(&["check"]);
    assert_eq!(human.code, 3);
    assert!(human.stdout.contains("worker"), "{}", human.stdout);
    assert!(human.stdout.contains("Not ready"), "{}", human.stdout);

    let status = stack.hoist(&["status", "--json"]);
    let s = status.summary();
    let worker = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "worker")
        .unwrap()
        .clone();
    assert_eq!(worker["state"], "exited", "{worker}");
}

#[test]
fn an_unhealthy_service_makes_check_refuse() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("unhealthy", "0.1.9");
    // Freeze the api's server process: it stays "running" but stops answering its healthcheck.
    // Sent from outside: inside its PID namespace, PID 1 ignores signals it has no handler for.
    let out = Command::new("docker")
        .args(["kill", "--signal", "SIGSTOP", &stack.container("api")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    stack.wait_inspect("api", "{{.State.Health.Status}}", "unhealthy", 150);

    let check = stack.hoist(&["check", "--json"]);
    check.assert_no_panic();
    assert_eq!(check.code, 3, "{check:?}");
    let api = check
        .json_lines()
        .into_iter()
        .find(|l| l["name"] == "service api")
        .unwrap();
    assert_eq!(api["status"], "fail", "{api}");
    assert!(
        api["message"].as_str().unwrap().contains("unhealthy"),
        "{api}"
    );

    let status = stack.hoist(&["status", "--json"]);
    let s = status.summary();
    let api = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api["state"], "running");
    assert_eq!(api["health"], "unhealthy");
    // Let teardown stop it promptly.
    let _ = Command::new("docker")
        .args(["kill", &stack.container("api")])
        .output();
}

#[test]
fn latest_pinned_warns_and_shows_what_actually_runs() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("latest", "latest");

    let status = stack.hoist(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let s = status.summary();
    assert_eq!(s["pinned"], "latest");
    let api = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api["version"], "0.1.12", "{api}");
    assert_eq!(s["database"]["revision"], "0022");

    let check = stack.hoist(&["check", "--json"]);
    assert_eq!(check.code, 0, "a warning does not block: {check:?}");
    let version = check
        .json_lines()
        .into_iter()
        .find(|l| l["name"] == "version")
        .unwrap();
    assert_eq!(version["status"], "warn", "{version}");
    let message = version["message"].as_str().unwrap();
    assert!(
        message.contains("latest") && message.contains("0.1.12"),
        "{message}"
    );
    assert!(
        check.summary()["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "version")
    );
}

#[test]
fn a_missing_docker_socket_is_a_clear_sentence() {
    // Needs no engine: hoist must say Docker is not there, whatever the machine has.
    let stack = TestStack::files_only("nosocket", "0.1.9");
    for cmd in ["status", "check"] {
        let run = stack.hoist_with(
            &[cmd],
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        );
        run.assert_no_panic();
        assert!(run.code == 2 || run.code == 3, "{cmd}: {run:?}");
        assert!(
            run.stderr
                .contains("no Docker socket at /nonexistent/docker.sock")
                || run
                    .stdout
                    .contains("no Docker socket at /nonexistent/docker.sock"),
            "{cmd}: {run:?}"
        );
        let json = stack.hoist_with(
            &[cmd, "--json"],
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        );
        json.assert_no_panic();
        assert_eq!(json.code, run.code);
        let summary = json.summary();
        let said = match cmd {
            "status" => summary["error"].as_str().unwrap_or("").to_string(),
            _ => {
                assert_eq!(summary["ready"], false, "{summary}");
                assert!(
                    summary["failed"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f == "docker"),
                    "{summary}"
                );
                let docker = json
                    .json_lines()
                    .into_iter()
                    .find(|l| l["name"] == "docker")
                    .unwrap();
                assert_eq!(docker["status"], "fail");
                docker["message"].as_str().unwrap().to_string()
            }
        };
        assert!(
            said.contains("no Docker socket at /nonexistent/docker.sock"),
            "{cmd}: {summary}"
        );
    }
}

#[test]
fn a_daemon_that_does_not_answer_times_out_with_a_sentence() {
    let stack = TestStack::files_only("silent", "0.1.9");
    let sock = stack.dir.join("silent.sock");
    // Accepts connections (the kernel's backlog) but never answers.
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let host = format!("unix://{}", sock.display());
    let started = std::time::Instant::now();
    let run = stack.hoist_with(
        &["status"],
        &[
            ("DOCKER_HOST", host.as_str()),
            ("HOIST_DOCKER_TIMEOUT_SECS", "2"),
        ],
    );
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("did not answer within 2 s"), "{run:?}");
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn permission_denied_on_the_socket_says_how_to_fix_it() {
    if !docker_available() {
        return;
    }
    if !common::is_root() {
        eprintln!("SKIPPED: needs root to run hoist as another user");
        return;
    }
    let stack = TestStack::files_only("perm", "0.1.9");
    common::set_mode(&stack.dir, 0o755);
    common::set_mode(&stack.dir.join(".env"), 0o644);
    let state = tempfile::tempdir().unwrap();
    common::set_mode(state.path(), 0o777);
    // A copy of the binary that `nobody` may run wherever the checkout lives.
    let bin = state.path().join("hoist");
    std::fs::copy(env!("CARGO_BIN_EXE_hoist"), &bin).unwrap();
    common::set_mode(&bin, 0o755);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .arg("-C")
        .arg(&stack.dir)
        .arg("--state-dir")
        .arg(state.path())
        .arg("status")
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .output()
        .unwrap();
    let run = common::Run::of(out);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("permission denied"), "{run:?}");
    assert!(run.stderr.contains("docker group"), "{run:?}");
}

#[test]
fn a_stack_started_under_another_project_name_is_followed() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("renamed", "0.1.9");
    stack.compose(&["down"]);
    let other = format!("{}-p", stack.project);
    stack.compose(&["-p", &other, "up", "-d", "--wait"]);

    let run = stack.hoist(&["status", "--json"]);
    // Tear down the renamed project whatever happens below (the stack's own drop uses its name).
    let cleanup = || {
        let _ = Command::new("docker")
            .args(["compose", "--project-directory"])
            .arg(&stack.dir)
            .args(["-p", &other, "down", "-v", "-t", "5"])
            .output();
    };
    let s = run.summary();
    let ok = run.code == 0
        && s["project"] == other.as_str()
        && s["notes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n.as_str().unwrap_or("").contains(&other)))
        && s["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["state"] == "running");
    cleanup();
    assert!(ok, "{run:?}");
}
