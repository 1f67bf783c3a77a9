//! Rooms, the realtime room server of runbook 002 (testbed/images/rooms), upgraded by hoist
//! with the checks that speak its protocol: a WebSocket hello, its operator's replay command,
//! and rules on its metrics. Each broken release answers plain HTTP perfectly well; only the
//! check that speaks its language sees the fault, and the upgrade is rolled back.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::{TestStack, docker_available, free_port, ready_version};

/// The stack as a self-hoster writes it for Rooms: one service, its data in ./data, no
/// database, the checks of runbook 002 in `x-hoist`.
fn rooms_stack(tag: &str, version: &str) -> TestStack {
    rooms_stack_with(tag, version, "replay hashes match")
}

fn rooms_stack_with(tag: &str, version: &str, replay_line: &str) -> TestStack {
    rooms_stack_observed(tag, version, replay_line, "")
}

/// `observe`: an `observe:` line for x-hoist, or "".
fn rooms_stack_observed(tag: &str, version: &str, replay_line: &str, observe: &str) -> TestStack {
    let port = free_port();
    let compose = format!(
        r#"services:
  rooms:
    image: 127.0.0.1:5000/rooms/rooms:${{ROOMS_VERSION}}
    ports:
      - "127.0.0.1:${{ROOMS_PORT}}:8080"
    volumes:
      - ./data:/data
    restart: unless-stopped

x-hoist:
  database: none
{observe}
  checks:
    - websocket: ws://127.0.0.1:${{ROOMS_PORT}}/ws/lobby
      send: hello
      expect: '"type": "welcome"'
    - exec: [roomctl, verify-replay, --all]
      service: rooms
      expect_output: "{replay_line}"
    - metrics: http://127.0.0.1:${{ROOMS_PORT}}/metrics
      window: 4s
      rules:
        - counter: 'rooms_close_total{{code="1011"}}'
          max_increase: 2
        - counter: 'rooms_close_total{{code="4002"}}'
          max_increase: 0
        - gauge: rooms_stored
          min: 1
"#
    );
    let env = format!("ROOMS_VERSION={version}\nROOMS_PORT={port}\n");
    let mut stack = TestStack::custom(tag, &[("compose.yaml", &compose), (".env", &env)]);
    stack.port = port;
    stack
}

#[test]
fn a_good_release_passes_every_protocol_check_and_status_and_check_show_them() {
    if !docker_available() {
        return;
    }
    let stack = rooms_stack("rooms-good", "1.0.0");
    assert_eq!(ready_version(&stack), "1.0.0");

    let status = stack.hoist(&["status"]);
    assert_eq!(status.code, 0, "{status:?}");
    let ws = format!(
        r#"Check     WebSocket ws://127.0.0.1:{}/ws/lobby: send "hello", expect a message matching /"type": "welcome"/ within 5 s"#,
        stack.port
    );
    assert!(status.stdout.contains(&ws), "{status:?}");
    assert!(
        status.stdout.contains("Check     `roomctl verify-replay --all` in rooms exits 0, printing a line matching /replay hashes match/"),
        "{status:?}"
    );
    assert!(
        status.stdout.contains(r#"rooms_close_total{code="1011"} rises by at most 2; rooms_close_total{code="4002"} rises by at most 0; rooms_stored at least 1"#),
        "{status:?}"
    );
    // /health/ready is the app's own readiness: found on its port and held to 200.
    let check = stack.hoist(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check.stdout.contains("ok    `roomctl verify-replay --all` in rooms: exit 0: verified 1 rooms: replay hashes match"),
        "{check:?}"
    );
    assert!(
        check.stdout.contains(&format!(
            "ok    WebSocket ws://127.0.0.1:{}/ws/lobby: {{\"type\": \"welcome\"",
            stack.port
        )),
        "{check:?}"
    );

    let up = stack.hoist(&["upgrade", "--to", "1.1.0", "--yes"]);
    up.assert_no_panic();
    assert_eq!(up.code, 0, "{up:?}");
    assert_eq!(ready_version(&stack), "1.1.0");
    let all = format!("{}{}", up.stdout, up.stderr);
    assert!(
        all.contains(&format!(
            "http://127.0.0.1:{}/health/ready answers 200 before the upgrade",
            stack.port
        )),
        "{up:?}"
    );
    for line in [
        // The configuration it ran with, kept in the backup and said as a diff.
        "configuration since the backup (2 changes; the backup's config.json holds it as it was):",
        r#"  rooms: ROOMS_RELEASE "1.0.0" -> "1.1.0""#,
        r#"  rooms: label org.opencontainers.image.version "1.0.0" -> "1.1.0""#,
        "running the app's 3 checks once before the upgrade",
        // The watch waits for the app's own word that it is ready.
        "/health/ready answers 200: the app says it is ready",
        "`roomctl verify-replay --all` in rooms before the upgrade: exit 0: verified 1 rooms: replay hashes match",
        r#"rooms_close_total{code="1011"} rose by 0 in 4 s"#,
    ] {
        assert!(all.contains(line), "{line}\n{up:?}");
    }
    // The storage-impacting release rewrote the rooms: what a rollback would have to undo.
    let lobby = std::fs::read_to_string(stack.dir.join("data/rooms/lobby.json")).unwrap();
    assert!(lobby.contains("\"format\": 2"), "{lobby}");

    // Going back: no database to compare, so 1.0.0 is tried on the rooms as 1.1.0 left them;
    // it refuses format 2, and the data backup is restored (asked for with --yes).
    let back = stack.hoist(&["rollback", "--yes", "--json"]);
    back.assert_no_panic();
    assert_eq!(back.code, 0, "{back:?}");
    let s = back.summary();
    assert_eq!(s["decision"], "restore", "{s:#}");
    assert!(
        s["reason"].as_str().unwrap().starts_with("No database (the app keeps its state in its data files): 1.0.0 did not come up on the data as the newer version left it")
            && s["reason"].as_str().unwrap().contains("the backup holds the app's data and no database dump"),
        "{s:#}"
    );
    let failed = s["keep"]["failed"].as_str().unwrap();
    assert!(
        failed.starts_with("1.0.0 did not come up on the data as the newer version left it"),
        "{failed}"
    );
    assert_eq!(ready_version(&stack), "1.0.0");
    let lobby = std::fs::read_to_string(stack.dir.join("data/rooms/lobby.json")).unwrap();
    assert!(lobby.contains("\"format\": 1"), "{lobby}");
    // The checks held the old release too.
    assert_eq!(s["checks"].as_array().map(Vec::len), Some(3), "{s:#}");
}

/// A broken release, its failed upgrade, and the rollback: back on 1.0.0, the failure named.
/// Each broken release keeps 1.1.0's storage format, so the rollback restores the rooms.
fn rolled_back(tag: &str, to: &str, path: &str, because: &[&str]) {
    if !docker_available() {
        return;
    }
    let stack = rooms_stack(tag, "1.0.0");
    let up = stack.hoist(&["upgrade", "--to", to, "--path", path, "--yes"]);
    up.assert_no_panic();
    assert_eq!(up.code, 4, "{up:?}");
    let all = format!("{}{}", up.stdout, up.stderr);
    for words in because {
        assert!(all.contains(words), "{words}\n{up:?}");
    }
    assert_eq!(ready_version(&stack), "1.0.0", "{up:?}");
    assert!(
        all.contains("did not come up on the data as the newer version left it"),
        "{up:?}"
    );
    let lobby = std::fs::read_to_string(stack.dir.join("data/rooms/lobby.json")).unwrap();
    assert!(lobby.contains("\"format\": 1"), "{lobby}");
    let env = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    assert!(env.contains("ROOMS_VERSION=1.0.0\n"), "{env}");
    // The rollback held the old release to the same checks, and it passed them.
    let status = stack.hoist(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let check = stack.hoist(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
}

#[test]
fn a_release_that_refuses_every_client_is_caught_by_the_websocket_check_and_rolled_back() {
    // Through 1.1.0 (it passes), then 1.2.0.
    rolled_back(
        "rooms-hello",
        "1.2.0",
        "steps",
        &[
            r#"answered {"type": "error", "reason": "unsupported client"} then closed with code 4002 (unsupported client); expected a message matching /"type": "welcome"/"#,
            r#"rooms_close_total{code="4002"} rose by 1 in 4 s (at most 0 allowed)"#,
        ],
    );
}

#[test]
fn a_release_whose_sessions_crash_is_caught_by_the_metrics_rule_and_rolled_back() {
    rolled_back(
        "rooms-1011",
        "1.3.0",
        "direct",
        &[
            r#"rooms_close_total{code="1011"} rose by "#,
            "(at most 2 allowed)",
        ],
    );
}

#[test]
fn a_release_that_replays_rooms_wrong_is_caught_by_the_operator_command_and_rolled_back() {
    rolled_back(
        "rooms-replay",
        "1.4.0",
        "direct",
        &[
            "`roomctl verify-replay --all` in rooms: exited 1, expected 0: 1 of 1 rooms failed replay verification",
        ],
    );
}

#[test]
fn a_check_that_fails_before_the_upgrade_refuses_it_with_nothing_changed() {
    if !docker_available() {
        return;
    }
    let stack = rooms_stack_with("rooms-baseline", "1.0.0", "all rooms converged");
    let env_before = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    let check = stack.hoist(&["check"]);
    assert_eq!(check.code, 3, "{check:?}");
    assert!(
        check.stdout.contains("FAIL  `roomctl verify-replay --all` in rooms fails now: exited 0 but printed no line matching /all rooms converged/: verified 1 rooms: replay hashes match; an upgrade would be refused"),
        "{check:?}"
    );
    let up = stack.hoist(&["upgrade", "--to", "1.1.0", "--yes"]);
    up.assert_no_panic();
    assert_eq!(up.code, 3, "{up:?}");
    assert!(
        up.stderr.contains("the app's own check already fails before the upgrade (`roomctl verify-replay --all` in rooms: exited 0 but printed no line matching /all rooms converged/"),
        "{up:?}"
    );
    assert!(up.stderr.contains("Nothing was changed"), "{up:?}");
    assert_eq!(
        std::fs::read_to_string(stack.dir.join(".env")).unwrap(),
        env_before
    );
    assert_eq!(ready_version(&stack), "1.0.0");
}

/// hoist on the files in `dir` (no stack started), with a state dir inside it.
fn hoist_in(dir: &std::path::Path, args: &[&str]) -> common::Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("-C")
        .arg(dir)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .output()
        .unwrap();
    common::Run::of(out)
}

#[test]
fn bad_checks_are_refused_naming_the_key_before_anything() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  rooms:\n    image: 127.0.0.1:5000/rooms/rooms:1.0.0\nx-hoist:\n  database: none\n  checks:\n    - exec: roomctl verify-replay --all\n      service: rooms\n",
    )
    .unwrap();
    let run = hoist_in(dir.path(), &["upgrade", "--to", "1.1.0", "--yes"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("setting `x-hoist.checks[0].exec`: expected a command as a list, such as [roomctl, verify-replay, --all] (it is run as written, without a shell), found \"roomctl verify-replay --all\""),
        "{run:?}"
    );
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  rooms:\n    image: 127.0.0.1:5000/rooms/rooms:1.0.0\nx-hoist:\n  checks:\n    - exec: [roomctl]\n      service: roms\n",
    )
    .unwrap();
    let run = hoist_in(dir.path(), &["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("`x-hoist.checks (exec: roomctl).service`: expected the name of a service of the compose file (rooms), found \"roms\""), "{run:?}");
    // hoist.yaml (the settings without the `x-hoist:` line) interpolates `${VAR}` from .env,
    // and names a variable set nowhere instead of sending it as text.
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  rooms:\n    image: 127.0.0.1:5000/rooms/rooms:1.0.0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("hoist.yaml"),
        "database: none\nchecks:\n  - http: http://127.0.0.1:${ROOMS_PORT}/health/ready\n    headers: { Authorization: \"Bearer ${STATUS_TOKEN}\" }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".env"), "ROOMS_PORT=18999\n").unwrap();
    let run = hoist_in(dir.path(), &["status", "--json"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("hoist.yaml: ${STATUS_TOKEN} is set neither in the environment nor in .env. Set it in .env (or the environment), or give a default as ${NAME:-value}; a $ meant for a shell in a command is written $$ (as in the compose file). Nothing was changed."),
        "{run:?}"
    );
    std::fs::write(
        dir.path().join(".env"),
        "ROOMS_PORT=18999\nSTATUS_TOKEN=s3cr3t-t0ken-value\n",
    )
    .unwrap();
    let run = hoist_in(dir.path(), &["status", "--json"]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("http://127.0.0.1:18999/health/ready"),
        "{run:?}"
    );
    assert!(!all.contains("s3cr3t-t0ken-value"), "{run:?}");
}

#[test]
fn a_release_that_breaks_after_its_checks_is_caught_by_the_observation_window_and_rolled_back() {
    if !docker_available() {
        return;
    }
    let stack = rooms_stack_observed(
        "rooms-late",
        "1.0.0",
        "replay hashes match",
        "  observe: 40s",
    );
    let status = stack.hoist(&["status"]);
    assert!(
        status
            .stdout
            .contains("Observe   0:40 after an upgrade verified, before it is called done"),
        "{status:?}"
    );
    let up = stack.hoist(&["upgrade", "--to", "1.5.0", "--path", "direct", "--yes"]);
    up.assert_no_panic();
    assert_eq!(up.code, 4, "{up:?}");
    let all = format!("{}{}", up.stdout, up.stderr);
    for words in [
        // Its checks pass: the crashes start later.
        "watching the app for 0:40 before calling the upgrade done: its containers and its metrics rules",
        "then watched for 0:40 before the upgrade is called done (containers and metrics rules)",
        "the upgrade to 1.5.0 did not hold: during the observation window, after 0:",
        r#"rooms_close_total{code="1011"} rose by "#,
        "did not come up on the data as the newer version left it",
    ] {
        assert!(all.contains(words), "{words}\n{up:?}");
    }
    assert!(
        all.contains("    watched 0:00 of 0:40, stable so far"),
        "{up:?}"
    );
    assert_eq!(ready_version(&stack), "1.0.0", "{up:?}");
}
