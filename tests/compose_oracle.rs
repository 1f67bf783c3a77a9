//! The real tool is the oracle: for every case under `tests/oracle/`, hoist's `.env` reading and
//! Compose interpolation must give exactly what `docker compose config --format json` prints.
//! Cases named `fail-*` must be rejected by both. Needs the Compose CLI, not a Docker engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use hoist::stack::compose::ComposeFile;
use hoist::stack::envfile::EnvFile;
use indexmap::IndexMap;
use serde_json::Value;

fn compose_available() -> bool {
    let ok = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let why = "`docker compose` is not installed; run `sudo testbed/up.sh`";
        if std::env::var("HOIST_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("HOIST_REQUIRE_DOCKER=1 but {why}");
        }
        eprintln!("SKIPPED: {why}");
    }
    ok
}

/// Service name -> (image, environment), as resolved.
type Resolved = IndexMap<String, (Option<String>, IndexMap<String, String>)>;

fn shell_env(case: &Path) -> IndexMap<String, String> {
    let Ok(text) = std::fs::read_to_string(case.join("shell.env")) else {
        return IndexMap::new();
    };
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What the real Compose resolves: service -> (image, environment), or its error.
fn oracle(case: &Path) -> Result<Resolved, String> {
    let out = Command::new("docker")
        .args(["compose", "--project-directory"])
        .arg(case)
        .arg("-f")
        .arg(case.join("compose.yaml"))
        .arg("--env-file")
        .arg(case.join(".env"))
        .args(["config", "--format", "json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", std::env::var("HOME").unwrap())
        .envs(shell_env(case))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    // `config` writes a literal `$` as `$$` so its output can be read back: undo that.
    let unescape = |v: &Value| v.as_str().map(|s| s.replace("$$", "$"));
    let mut services = IndexMap::new();
    for (name, svc) in json["services"].as_object().unwrap() {
        let env = svc["environment"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), unescape(v).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        services.insert(name.clone(), (unescape(&svc["image"]), env));
    }
    Ok(services)
}

/// What hoist resolves from the same files and environment.
fn ours(case: &Path) -> Result<Resolved, String> {
    let shell = shell_env(case);
    let os_env = |k: &str| shell.get(k).cloned();
    let text = std::fs::read_to_string(case.join(".env")).unwrap();
    let env = EnvFile::parse(&text).map_err(|e| e.to_string())?;
    assert_eq!(
        env.render(),
        text,
        "the .env document must round-trip byte for byte"
    );
    let values = env.resolve(&os_env).map_err(|e| e.to_string())?;
    let lookup = |k: &str| os_env(k).or_else(|| values.get(k).cloned());
    let path = case.join("compose.yaml");
    let compose = ComposeFile::parse(
        &path,
        &std::fs::read_to_string(&path).unwrap(),
        case,
        &lookup,
    )
    .map_err(|e| e.to_string())?;
    Ok(compose
        .services
        .into_iter()
        .map(|(name, svc)| {
            let env = svc
                .environment
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect();
            (name, (svc.image, env))
        })
        .collect())
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

#[test]
fn resolved_values_equal_what_docker_compose_config_prints() {
    if !compose_available() {
        return;
    }
    let cases = cases();
    assert!(cases.len() >= 12, "the corpus shrank: {cases:?}");
    let mut checked = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let expected = oracle(case);
        let got = ours(case);
        if name.starts_with("fail-") {
            assert!(
                expected.is_err(),
                "{name}: Compose accepted a case meant to fail: {expected:?}"
            );
            assert!(
                got.is_err(),
                "{name}: Compose rejects this ({}), hoist accepted it: {got:?}",
                expected.unwrap_err()
            );
        } else {
            let expected =
                expected.unwrap_or_else(|e| panic!("{name}: Compose rejected the case: {e}"));
            let got =
                got.unwrap_or_else(|e| panic!("{name}: hoist rejected what Compose accepts: {e}"));
            assert_eq!(got, expected, "{name}: hoist and Compose disagree");
        }
        checked += 1;
    }
    assert_eq!(checked, cases.len());
}
