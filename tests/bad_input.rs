//! Bad input gets a clear error naming the file and the line or key, exit 2, nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestStack;

/// Every file of the project, byte for byte, to prove a failed run changed nothing.
fn snapshot(stack: &TestStack) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&stack.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

fn assert_bad_input(stack: &TestStack, must_name: &[&str]) {
    let before = snapshot(stack);
    for cmd in ["status", "check"] {
        let run = stack.hoist_with(
            &[cmd],
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        );
        run.assert_no_panic();
        assert_eq!(run.code, 2, "{cmd}: {run:?}");
        for word in must_name {
            assert!(
                run.stderr.contains(word),
                "{cmd}: the error does not name {word:?}: {}",
                run.stderr
            );
        }
        assert!(run.stdout.is_empty(), "{cmd}: {run:?}");
        let json = stack.hoist_with(
            &[cmd, "--json"],
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        );
        assert_eq!(json.code, 2);
        let summary = json.summary();
        assert_eq!(summary["outcome"], "error", "{summary}");
        assert_eq!(summary["exit_code"], 2, "{summary}");
    }
    assert_eq!(
        before,
        snapshot(stack),
        "a failed run changed the project's files"
    );
}

fn edit(stack: &TestStack, file: &str, from: &str, to: &str) {
    let path = stack.dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_malformed_env_line_is_named_by_file_and_line() {
    let stack = TestStack::files_only("badenv", "0.1.9");
    // Line 4 of the template is blank: make it a line Compose rejects too.
    edit(
        &stack,
        ".env",
        "\n\n# Secrets",
        "\n\nSPECIVO PORT=leaky-s3cret\n# Secrets",
    );
    let env = stack.dir.join(".env");
    assert_bad_input(&stack, &[env.to_str().unwrap(), "line 5"]);
    let run = stack.hoist(&["status"]);
    assert!(
        !run.stderr.contains("leaky-s3cret"),
        "the value leaked: {}",
        run.stderr
    );
    let log = std::fs::read_to_string(stack.state_dir.join("hoist.log")).unwrap();
    assert!(
        log.contains("line 5") && !log.contains("leaky-s3cret"),
        "{log}"
    );
}

#[test]
fn malformed_yaml_is_named_by_file_and_line() {
    let stack = TestStack::files_only("badyaml", "0.1.9");
    edit(
        &stack,
        "compose.yaml",
        "  redis:\n",
        "  redis:\n   image: [unclosed\n",
    );
    let compose = stack.dir.join("compose.yaml");
    let line = std::fs::read_to_string(&compose)
        .unwrap()
        .lines()
        .position(|l| l.contains("[unclosed"))
        .unwrap();
    // The parser may report the line of the bad token or the next one; either names the place.
    let run = stack.hoist(&["status"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(compose.to_str().unwrap()),
        "{}",
        run.stderr
    );
    let named = [line + 1, line + 2].iter().any(|n| {
        run.stderr.contains(&format!("line {n}")) || run.stderr.contains(&format!(":{n}:"))
    });
    assert!(
        named,
        "the error does not give line {}: {}",
        line + 1,
        run.stderr
    );
    assert_bad_input(&stack, &[compose.to_str().unwrap()]);
}

#[test]
fn a_missing_required_variable_is_named() {
    let stack = TestStack::files_only("required", "0.1.9");
    edit(&stack, ".env", "POSTGRES_PASSWORD=", "# POSTGRES_PASSWORD=");
    assert_bad_input(&stack, &["POSTGRES_PASSWORD", "compose.yaml"]);
}

#[test]
fn a_bad_setting_names_file_key_and_expectation() {
    let stack = TestStack::files_only("badsetting", "0.1.9");
    std::fs::write(stack.dir.join("hoist.yaml"), "timeouts:\n  ready: soon\n").unwrap();
    let hoist_yaml = stack.dir.join("hoist.yaml");
    assert_bad_input(
        &stack,
        &[hoist_yaml.to_str().unwrap(), "timeouts.ready", "soon"],
    );
}

#[test]
fn no_compose_file_says_what_was_looked_for() {
    let stack = TestStack::files_only("nocompose", "0.1.9");
    std::fs::remove_file(stack.dir.join("compose.yaml")).unwrap();
    assert_bad_input(&stack, &["compose.yaml", "docker-compose.yml"]);
}

#[test]
fn a_missing_project_dir_is_bad_input() {
    let run = common::Run::of(
        std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(["-C", "/nonexistent/app", "status"])
            .output()
            .unwrap(),
    );
    run.assert_no_panic();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("/nonexistent/app"), "{run:?}");
}

#[test]
fn a_setting_hoist_does_not_act_on_is_said_not_dropped() {
    let stack = TestStack::files_only("keep", "0.1.9");
    std::fs::write(stack.dir.join("hoist.yaml"), "backup:\n  keep: 2\n").unwrap();
    // Without an engine status still reads the files: the note is there either way.
    let run = stack.hoist_with(
        &["status", "--json"],
        &[("DOCKER_HOST", "unix:///nonexistent.sock")],
    );
    let notes = run.summary()["notes"].to_string();
    assert!(
        notes.contains("backup.keep is 2, but hoist does not remove old backups yet"),
        "{run:?}"
    );
    let human = stack.hoist_with(&["check"], &[("DOCKER_HOST", "unix:///nonexistent.sock")]);
    assert!(human.stdout.contains("note  backup.keep is 2"), "{human:?}");
}

#[test]
fn a_to_that_is_not_a_tag_is_refused_before_anything() {
    let stack = TestStack::files_only("badto", "0.1.9");
    let before = snapshot(&stack);
    // Each would be read as something else in `.env` (interpolated, a second reference part,
    // a path, a command) or is no tag at all.
    for to in [
        "",
        "   ",
        "0.1.10; rm -rf /",
        "$(reboot)",
        "`id`",
        "${SPECIVO_VERSION}",
        "$HOME",
        "a:b",
        "../0.1.10",
        "..",
        "-0.1.10",
        ".1",
        "0.1.10\nSPECIVO_PORT=1",
        "0.1.10 # comment",
        "'0.1.10'",
        "0.1.10@sha256:abc",
        &"9".repeat(129),
    ] {
        let run = stack.hoist_with(
            &["upgrade", &format!("--to={to}"), "--yes"],
            &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        );
        run.assert_no_panic();
        assert_eq!(run.code, 2, "{to:?}: {run:?}");
        assert!(
            run.stderr.contains("is not a version tag")
                && run.stderr.contains("nothing was changed"),
            "{to:?}: {}",
            run.stderr
        );
    }
    assert_eq!(
        before,
        snapshot(&stack),
        "a refused --to changed the project's files"
    );
}

#[test]
fn a_huge_line_in_env_is_read_not_choked_on() {
    let stack = TestStack::files_only("hugeenv", "0.1.9");
    let huge = "x".repeat(8 << 20);
    edit(
        &stack,
        ".env",
        "\n\n# Secrets",
        &format!("\n\nSPECIVO_NOTE={huge}\n# Secrets"),
    );
    let started = std::time::Instant::now();
    let run = stack.hoist_with(
        &["status", "--json"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    run.assert_no_panic();
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    // The pin is still found; only Docker is missing.
    assert!(
        run.stdout.contains("SPECIVO_VERSION") || run.stderr.contains("Docker"),
        "{run:?}"
    );
    assert!(!run.stderr.contains(&huge[..100]), "the value was echoed");
}

#[test]
fn an_upgrade_to_an_older_version_is_refused_with_the_way_back() {
    let stack = TestStack::files_only("downgrade", "0.1.9");
    let before = snapshot(&stack);
    let run = stack.hoist_with(
        &["upgrade", "--to", "0.1.8", "--yes"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    run.assert_no_panic();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("0.1.8 is older than 0.1.9")
            && run.stderr.contains("hoist rollback")
            && run.stderr.contains("hoist restore DIR"),
        "{run:?}"
    );
    assert_eq!(before, snapshot(&stack));
}

#[test]
fn an_env_line_that_is_not_utf8_is_named_by_file_and_line() {
    let stack = TestStack::files_only("latin1env", "0.1.9");
    let env = stack.dir.join(".env");
    let mut bytes = std::fs::read(&env).unwrap();
    bytes.extend_from_slice(b"SPECIVO_NOTE=caf\xe9\n");
    std::fs::write(&env, &bytes).unwrap();
    let line = bytes.iter().filter(|b| **b == b'\n').count();
    assert_bad_input(
        &stack,
        &[env.to_str().unwrap(), &format!("line {line} is not UTF-8")],
    );
}
