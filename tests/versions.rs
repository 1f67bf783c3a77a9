//! `hoist versions` against the test bed's registry: tags listed and ordered, `latest`
//! resolved, the next step and the path; a registry that cannot be reached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{TestStack, docker_available};

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn newer_versions_are_ordered_with_the_next_step_and_the_path() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::files_only("versions", "0.1.9");
    let run = stack.hoist(&["versions", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["repository"], "127.0.0.1:5000/specivo/specivo");
    assert_eq!(s["current"], "0.1.9");
    // 0.1.10 sorts after 0.1.9 (numbers, not text); `latest` is not a version.
    assert_eq!(
        strings(&s["available"]),
        ["0.1.14", "0.1.13", "0.1.12", "0.1.11", "0.1.10"]
    );
    assert_eq!(s["next"], "0.1.10");
    assert_eq!(s["newest"], "0.1.14");
    assert_eq!(
        strings(&s["path"]),
        ["0.1.10", "0.1.11", "0.1.12", "0.1.13", "0.1.14"]
    );

    // What is new: from the next image's OCI labels, release notes from its GitHub source.
    assert_eq!(
        s["about_next"]["release_notes"],
        "https://github.com/specivo/specivo/releases/tag/0.1.10"
    );
    let human = stack.hoist(&["versions"]);
    assert_eq!(human.code, 0, "{human:?}");
    assert!(human.stdout.contains("What is new in 0.1.10"), "{human:?}");
    assert!(human.stdout.contains("0.1.10   <- next step"), "{human:?}");
    assert!(human.stdout.contains("0.1.14   <- newest"), "{human:?}");
}

#[test]
fn latest_is_resolved_to_the_version_it_is() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::files_only("latest", "latest");
    let run = stack.hoist(&["versions", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["pinned"], "latest");
    assert_eq!(s["resolved"]["version"], "0.1.12", "{s}");
    assert_eq!(s["resolved"]["how"], "label");
    assert_eq!(s["current"], "0.1.12");
    assert_eq!(strings(&s["available"]), ["0.1.14", "0.1.13"]);
    let human = stack.hoist(&["versions"]);
    assert!(
        human.stdout.contains("set SPECIVO_VERSION=0.1.12 in .env"),
        "{human:?}"
    );
}

/// Pushes `from` to the bed's registry as `to`.
fn push_as(from: &str, to: &str) {
    for args in [vec!["tag", from, to], vec!["push", "-q", to]] {
        let out = Command::new("docker").args(&args).output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {out:?}");
    }
}

#[test]
fn a_tag_whose_label_is_no_tag_is_resolved_by_its_digest() {
    if !docker_available() {
        return;
    }
    // Labels say "7" and "15": neither is a tag of this repository, so only digests can tell.
    let repo = format!("127.0.0.1:5000/hoist-test/cache-{}", std::process::id());
    push_as("127.0.0.1:5000/postgres:15", &format!("{repo}:7.2.3"));
    push_as("127.0.0.1:5000/redis:7", &format!("{repo}:7.2.4"));
    push_as("127.0.0.1:5000/redis:7", &format!("{repo}:stable"));
    let stack = TestStack::files_only("digest", "0.1.9");
    std::fs::write(
        stack.dir.join("compose.yaml"),
        format!("services:\n  cache:\n    image: {repo}:${{CACHE_VERSION}}\n"),
    )
    .unwrap();
    std::fs::write(stack.dir.join(".env"), "CACHE_VERSION=stable\n").unwrap();
    let run = stack.hoist(&["versions", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["resolved"]["version"], "7.2.4", "{s}");
    assert_eq!(s["resolved"]["how"], "digest");
    assert_eq!(s["current"], "7.2.4");
    assert_eq!(strings(&s["available"]), Vec::<String>::new());
}

#[test]
fn an_unreachable_registry_is_a_clear_refusal() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::files_only("noregistry", "0.1.9");
    let compose = stack.dir.join("compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(
        &compose,
        text.replace("127.0.0.1:5000/specivo/", "127.0.0.1:5999/specivo/"),
    )
    .unwrap();
    let run = stack.hoist(&["versions"]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("the registry 127.0.0.1:5999 could not be reached"),
        "{run:?}"
    );
}

#[test]
fn a_registry_that_never_answers_is_a_refusal_in_time_not_a_hang() {
    let stack = TestStack::files_only("silentregistry", "0.1.9");
    // Accepts connections (the kernel's backlog) and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let compose = stack.dir.join("compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(
        &compose,
        text.replace(
            "127.0.0.1:5000/specivo/",
            &format!("127.0.0.1:{port}/specivo/"),
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    // (An upgrade asks Docker first; `versions` asks the registry alone.)
    {
        let args = ["versions"];
        let run = stack.hoist_with(&args, &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
        run.assert_no_panic();
        assert_eq!(run.code, 3, "{run:?}");
        assert!(
            run.stderr.contains(&format!(
                "the registry 127.0.0.1:{port} could not be reached: it did not answer within 20 s"
            )),
            "{args:?}: {run:?}"
        );
    }
    assert!(
        started.elapsed().as_secs() < 120,
        "took {:?}",
        started.elapsed()
    );
    drop(listener);
}

#[test]
fn check_and_the_plan_count_the_real_download() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_removing_images("download", "0.1.9");
    // 0.1.10 not here: its own layers (a ~63 MB asset, the app) must come down; the base
    // layers it shares with the running 0.1.9 need not.
    common::remove_image("127.0.0.1:5000/specivo/specivo:0.1.10");
    let run = stack.hoist(&["check", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.json_lines();
    let download = lines
        .iter()
        .find(|e| e["type"] == "check" && e["name"] == "download")
        .unwrap_or_else(|| panic!("no download finding: {lines:?}"));
    assert_eq!(download["status"], "ok", "{download}");
    let bytes = download["download_bytes"].as_u64().unwrap();
    assert!(
        (60_000_000..150_000_000).contains(&bytes),
        "download {bytes} bytes: {download}"
    );
    assert!(
        download["message"].as_str().unwrap().contains("for 0.1.10"),
        "{download}"
    );

    let dry = stack.hoist(&["upgrade", "--to", "0.1.10", "--dry-run", "--json"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert_eq!(
        dry.summary()["plan"]["download_bytes"].as_u64(),
        Some(bytes)
    );
}
