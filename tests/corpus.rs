//! hoist's reading of the compose corpus (`tests/corpus/`, real-world-shaped projects) against
//! each case's `expected.yaml`, field by field, from the files alone (no containers).
//!
//! Every difference must be listed in `tests/corpus/known-gaps.txt` with its reason, and every
//! listed gap must still be a difference: the test fails on a new misreading and on a gap that
//! was fixed but not struck off. The score is printed (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hoist::stack::{self, Stack, StackPaths, detect::Site};
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.yaml").is_file())
        .collect();
    out.sort();
    out
}

fn load(dir: &Path) -> Result<Stack, String> {
    stack::load(
        &StackPaths {
            project_dir: dir.to_path_buf(),
            compose_files: Vec::new(),
            env_file: None,
        },
        &|_| None,
    )
    .map_err(|e| e.to_string())
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// A path as the corpus writes it: relative to the case directory, `./` for binds.
fn relative(dir: &Path, p: &str) -> String {
    match Path::new(p).strip_prefix(dir) {
        Ok(rest) => format!("./{}", rest.display()),
        Err(_) => p.to_string(),
    }
}

/// The env file hoist writes: a symlink's target (the link stays).
fn env_name(dir: &Path, env: &Path) -> String {
    let real = std::fs::canonicalize(env).unwrap_or_else(|_| env.to_path_buf());
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    relative(&dir, &real.display().to_string())
        .trim_start_matches("./")
        .to_string()
}

/// hoist's reading of one case, in the corpus's terms: field -> value.
fn reading(dir: &Path, s: &Stack) -> BTreeMap<&'static str, String> {
    let d = &s.detection;
    let mut r = BTreeMap::new();
    let names = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v.join(",")
    };
    r.insert(
        "compose_files",
        s.compose_files
            .iter()
            .map(|f| {
                relative(dir, &f.display().to_string())
                    .trim_start_matches("./")
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(","),
    );
    let apps: Vec<String> = d
        .upgraded
        .iter()
        .filter(|n| !d.one_shot.contains(n))
        .cloned()
        .collect();
    r.insert("app_services", names(&apps));
    r.insert("one_shot", names(&d.one_shot));
    let inactive: Vec<String> = s.inactive.iter().map(|(n, _)| n.clone()).collect();
    r.insert("inactive", names(&inactive));
    let (kind, file, line) = match &d.version.site {
        Site::Env { .. } | Site::Image { .. } => {
            let kind = "variable";
            match d.version.env_line {
                Some(l) => (kind, env_name(dir, &s.env_path), l.to_string()),
                // Only a default in the compose file: hoist adds the variable to .env.
                None => (kind, env_name(dir, &s.env_path), "null".to_string()),
            }
        }
        Site::Tags {
            file, lines, image, ..
        } => (
            if image.contains('@') {
                "digest"
            } else {
                "literal"
            },
            relative(dir, &file.display().to_string())
                .trim_start_matches("./")
                .to_string(),
            lines.first().map_or("-".into(), usize::to_string),
        ),
        Site::Unknown { reason } => ("unknown", reason.clone(), "-".into()),
    };
    r.insert("version.kind", kind.to_string());
    r.insert("version.file", file);
    r.insert("version.line", line);
    r.insert("version.variable", d.version.variable.clone());
    r.insert(
        "version.current",
        d.version.value.clone().unwrap_or_else(|| "null".into()),
    );
    r.insert("moving", d.version.moving.to_string());
    let (db_service, db_kind) = match (&d.database, &d.unsupported_database) {
        (Some(db), _) => (db.service.clone(), db.kind.name().to_string()),
        (None, Some(seen)) => (
            seen.service.clone(),
            match seen.kind.as_str() {
                k if k.starts_with("an ") => "unknown".to_string(),
                k => k.to_lowercase(),
            },
        ),
        (None, None) => ("null".into(), "null".into()),
    };
    r.insert("database.service", db_service);
    r.insert("database.kind", db_kind);
    let beside: Vec<String> = d.beside.iter().map(|b| b.service.clone()).collect();
    r.insert("stateful_beside", names(&beside));
    let mut data: Vec<String> = d
        .data
        .iter()
        .map(|m| {
            let kind = serde_json::to_value(m.kind).unwrap();
            format!(
                "{} {} {}",
                scalar(&kind),
                relative(dir, &m.source),
                m.target.trim_end_matches('/')
            )
        })
        .collect();
    data.sort();
    r.insert("data", data.join("; "));
    let mut smoke: Vec<String> = d
        .smoke
        .iter()
        .filter_map(|s| {
            let scheme = s.url.split("://").next()?;
            let port = s.url.rsplit(':').next()?.trim_end_matches('/');
            Some(format!("{scheme}:{port}"))
        })
        .collect();
    smoke.sort();
    r.insert("smoke_ports", smoke.join(","));
    r
}

/// The same fields from `expected.yaml`.
fn expected(e: &Value) -> BTreeMap<&'static str, String> {
    let mut r = BTreeMap::new();
    r.insert(
        "compose_files",
        e["compose_files"]
            .as_array()
            .map(|a| a.iter().map(scalar).collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
    );
    r.insert("app_services", strings(&e["app_services"]).join(","));
    r.insert("one_shot", strings(&e["one_shot"]).join(","));
    r.insert("inactive", strings(&e["inactive"]).join(","));
    let v = &e["version"];
    let kind = scalar(&v["kind"]);
    // hoist keeps a variable that holds the whole image as a variable pin.
    let kind = if kind == "image_variable" {
        "variable".into()
    } else {
        kind
    };
    r.insert("version.kind", kind);
    r.insert("version.file", scalar(&v["file"]));
    r.insert("version.line", scalar(&v["line"]));
    r.insert(
        "version.variable",
        v.get("variable").map(scalar).unwrap_or_default(),
    );
    r.insert("version.current", scalar(&v["current"]));
    r.insert("moving", scalar(&e["moving"]));
    let db = &e["database"];
    r.insert(
        "database.service",
        db.get("service").map_or("null".into(), scalar),
    );
    r.insert(
        "database.kind",
        db.get("kind").map_or("null".into(), scalar),
    );
    let beside: Vec<String> = e["stateful_beside"]
        .as_array()
        .map(|a| a.iter().map(|b| scalar(&b["service"])).collect())
        .unwrap_or_default();
    let mut beside = beside;
    beside.sort();
    r.insert("stateful_beside", beside.join(","));
    let mut data: Vec<String> = e["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| {
                    format!(
                        "{} {} {}",
                        scalar(&m["kind"]),
                        scalar(&m["source"]).trim_end_matches('/'),
                        scalar(&m["target"]).trim_end_matches('/')
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    data.sort();
    r.insert("data", data.join("; "));
    let mut smoke: Vec<String> = e["ports"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| ["http", "https"].contains(&scalar(&p["protocol"]).as_str()))
                .map(|p| format!("{}:{}", scalar(&p["protocol"]), scalar(&p["published"])))
                .collect()
        })
        .unwrap_or_default();
    smoke.sort();
    smoke.dedup();
    r.insert("smoke_ports", smoke.join(","));
    r
}

fn known_gaps() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(corpus().join("known-gaps.txt")).unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn hoist_reads_the_corpus_as_expected() {
    let cases = cases();
    assert!(cases.len() >= 25, "the corpus has {} cases", cases.len());
    let gaps = known_gaps();
    let mut differences: BTreeSet<(String, String)> = BTreeSet::new();
    let mut report = Vec::new();
    let mut per_field: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut whole = 0;
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(dir.join("expected.yaml")).unwrap();
        let e: Value = serde_saphyr::from_str(&text).unwrap();
        let want = expected(&e);
        let got = match load(dir) {
            Ok(s) => reading(dir, &s),
            Err(err) => {
                differences.insert((name.clone(), "load".into()));
                report.push(format!("{name}: load: {err}"));
                continue;
            }
        };
        let mut all = true;
        for (field, w) in &want {
            let g = got.get(field).cloned().unwrap_or_default();
            let entry = per_field.entry(field).or_default();
            entry.1 += 1;
            if &g == w {
                entry.0 += 1;
            } else {
                all = false;
                differences.insert((name.clone(), field.to_string()));
                report.push(format!("{name}: {field}: expected {w:?}, hoist read {g:?}"));
            }
        }
        whole += usize::from(all);
    }
    println!(
        "corpus: {} cases, {whole} read right in every field",
        cases.len()
    );
    for (field, (ok, n)) in &per_field {
        println!("  {field:18} {ok}/{n}");
    }
    let new: Vec<&String> = report
        .iter()
        .filter(|line| {
            let mut p = line.splitn(3, ": ");
            let case = p.next().unwrap_or("").to_string();
            let field = p.next().unwrap_or("").to_string();
            !gaps.contains(&(case, field))
        })
        .collect();
    let fixed: Vec<&(String, String)> = gaps.difference(&differences).collect();
    for line in &report {
        println!("  {line}");
    }
    assert!(
        new.is_empty() && fixed.is_empty(),
        "misreadings not in tests/corpus/known-gaps.txt:\n{}\nknown gaps that now read right (strike them off):\n{:?}",
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        fixed
    );
}

/// Every file of a case with its bytes, to prove a command changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.insert(p, bytes);
            }
        }
    }
    out
}

/// `status`, `check` and `upgrade --dry-run` on every case with no container running (the
/// engine is up): status shows the stack and exits 0, check and the upgrade refuse with a
/// sentence (exit 3), nothing panics, nothing is written, and no case is "bad input" (exit 2).
#[test]
fn status_check_and_dry_run_read_every_case_without_containers() {
    if !common_engine() {
        return;
    }
    let hoist = env!("CARGO_BIN_EXE_hoist");
    let state = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let before = snapshot(&dir);
        let run = |args: &[&str]| {
            let out = std::process::Command::new(hoist)
                .args(args)
                .arg("-C")
                .arg(&dir)
                .arg("--state-dir")
                .arg(state.path().join(&name))
                .arg("--backup-dir")
                .arg(state.path().join(format!("{name}-backups")))
                .env_remove("COMPOSE_FILE")
                .env_remove("COMPOSE_PROFILES")
                .output()
                .unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (code, out, err) = run(&["status"]);
        if code != 0 || !out.contains("\nVersion ") {
            failures.push(format!("{name}: status exit {code}: {out}{err}"));
        }
        let (code, out, err) = run(&["check"]);
        if code != 3 || err.contains("panicked") {
            failures.push(format!("{name}: check exit {code}: {out}{err}"));
        }
        let (code, _, err) = run(&["upgrade", "--to", "99.0.0", "--dry-run", "--yes"]);
        if code != 3 || !err.contains("Nothing was changed") {
            failures.push(format!("{name}: upgrade --dry-run exit {code}: {err}"));
        }
        if snapshot(&dir) != before {
            failures.push(format!("{name}: a file of the case changed"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The engine must answer (CI sets HOIST_REQUIRE_DOCKER=1: then its absence fails the test).
fn common_engine() -> bool {
    let up = std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !up && std::env::var("HOIST_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("HOIST_REQUIRE_DOCKER=1 but the Docker engine does not answer");
    }
    if !up {
        eprintln!("SKIPPED: the Docker engine does not answer");
    }
    up
}
