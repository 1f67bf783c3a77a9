//! The project as `docker compose` sees it from its directory: which files it reads (Compose's
//! own rules: `COMPOSE_FILE`, the default names and their override file) and the model it
//! resolves from them (`docker compose config`: overrides merged, `include:` and `extends:`
//! followed, profiles applied). hoist asks Compose itself rather than re-implementing its
//! merge rules, so what hoist reads is what `docker compose up` will run.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Compose's file names, in the order Compose tries them (checked against Compose 2.40).
pub const FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// The override file Compose adds beside a default-named file: the first that exists.
pub const OVERRIDE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// The files Compose reads for a project, in order. `given` are the `-f` files (they win);
/// else `COMPOSE_FILE` (environment first, then `.env`; relative to the project directory,
/// split on `COMPOSE_PATH_SEPARATOR` or `:`); else the first default name found in the project
/// directory or, as Compose does, in a parent directory, with its override file.
pub fn files(
    project_dir: &Path,
    given: &[PathBuf],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<PathBuf>> {
    if !given.is_empty() {
        return Some(given.to_vec());
    }
    if let Some(list) = lookup("COMPOSE_FILE").filter(|v| !v.trim().is_empty()) {
        let sep = lookup("COMPOSE_PATH_SEPARATOR")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| ":".into());
        return Some(
            list.split(sep.as_str())
                .filter(|p| !p.is_empty())
                .map(|p| super::compose::absolute(project_dir, p))
                .collect(),
        );
    }
    let mut dir = Some(project_dir);
    while let Some(d) = dir {
        if let Some(base) = FILE_NAMES.iter().map(|n| d.join(n)).find(|p| p.is_file()) {
            let mut out = vec![base];
            if let Some(o) = OVERRIDE_NAMES
                .iter()
                .map(|n| d.join(n))
                .find(|p| p.is_file())
            {
                out.push(o);
            }
            return Some(out);
        }
        dir = d.parent();
    }
    None
}

/// Files in `project_dir` that look like an override file (`*override*.yml`/`.yaml`) and that
/// Compose does not read with `files`: a misspelled name, or one left out by `COMPOSE_FILE`
/// or `-f`. Compose ignores them without a word; hoist says so, once per file.
pub fn unread_overrides(project_dir: &Path, files: &[PathBuf]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(project_dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .filter(|e| !files.iter().any(|f| f == &e.path()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            let lower = n.to_ascii_lowercase();
            (lower.contains("override") || lower.contains("overide"))
                && (lower.ends_with(".yml") || lower.ends_with(".yaml"))
        })
        .collect();
    names.sort();
    let read: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names
        .into_iter()
        .map(|n| {
            format!(
                "{n} is not read: Compose reads {} in this directory, so its settings do not apply (nor does hoist use them). If they should, rename it to the override name Compose looks for (compose.override.yaml beside compose.yaml, docker-compose.override.yml beside docker-compose.yml) or add it to COMPOSE_FILE",
                read.join(" and ")
            )
        })
        .collect()
}

/// The compose files and every file they pull in with `include:` or `extends: {file:}`,
/// each once, in the order met (the compose files' own order first).
pub fn all_files(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut queue: Vec<PathBuf> = files.to_vec();
    queue.reverse();
    while let Some(f) = queue.pop() {
        if out.contains(&f) {
            continue;
        }
        let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
        let refs = std::fs::read_to_string(&f)
            .ok()
            .and_then(|t| serde_saphyr::from_str::<serde_json::Value>(&t).ok())
            .map(|v| referenced(&v))
            .unwrap_or_default();
        out.push(f);
        for r in refs.into_iter().rev() {
            queue.push(super::compose::absolute(&dir, &r));
        }
    }
    out
}

/// The files a compose file names in `include:` and `extends: {file:}`.
fn referenced(v: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let mut out = Vec::new();
    let mut add = |p: &Value| match p {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => out.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
        _ => {}
    };
    if let Some(Value::Array(items)) = v.get("include") {
        for item in items {
            match item {
                Value::String(_) => add(item),
                Value::Object(m) => {
                    if let Some(p) = m.get("path") {
                        add(p);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Value::Object(services)) = v.get("services") {
        for def in services.values() {
            if let Some(f) = def.get("extends").and_then(|e| e.get("file")) {
                add(f);
            }
        }
    }
    out
}

/// Why Compose's view could not be had.
#[derive(Debug)]
pub enum ResolveError {
    /// No Compose v2 on this machine: hoist reads the first file alone.
    NoCompose,
    /// Compose refused the files; its own words.
    Refused(String),
}

/// The project's model as `docker compose config --no-interpolate` merges it, with every
/// profile, as JSON text: overrides merged, `include:` and `extends:` followed, anchors
/// resolved, `$` left as written. hoist interpolates it itself (its interpolation is checked
/// against Compose's), so each `image:` still shows which variable sets the tag.
pub fn resolve(
    project_dir: &Path,
    given: &[PathBuf],
    env_file: Option<&Path>,
) -> Result<String, ResolveError> {
    config(
        project_dir,
        given,
        env_file,
        &[
            "--profile",
            "*",
            "config",
            "--no-interpolate",
            "--format",
            "json",
        ],
    )
}

fn config(
    project_dir: &Path,
    given: &[PathBuf],
    env_file: Option<&Path>,
    args: &[&str],
) -> Result<String, ResolveError> {
    let mut cmd = Command::new("docker");
    cmd.arg("compose")
        .arg("--project-directory")
        .arg(project_dir);
    for f in given {
        cmd.arg("--file").arg(f);
    }
    if let Some(e) = env_file {
        cmd.arg("--env-file").arg(e);
    }
    cmd.args(args)
        .current_dir(project_dir)
        .stdin(Stdio::null())
        // Compose's own progress and warnings are not wanted in hoist's output.
        .env("COMPOSE_ANSI", "never");
    let out = match output_within(&mut cmd, CONFIG_TIMEOUT) {
        Ok(Some(out)) => out,
        Ok(None) => {
            return Err(ResolveError::Refused(format!(
                "`docker compose config` did not answer within {} s",
                CONFIG_TIMEOUT.as_secs()
            )));
        }
        Err(_) => return Err(ResolveError::NoCompose),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // The docker CLI without its Compose plugin (or unable to find it, e.g. a HOME whose
        // ~/.docker cannot be read) answers with its own usage, not Compose's words.
        if stderr.contains("is not a docker command")
            || stderr.contains("unknown command")
            || stderr.contains("unknown flag")
            || stderr.contains("Usage:  docker [OPTIONS]")
        {
            return Err(ResolveError::NoCompose);
        }
        return Err(ResolveError::Refused(compose_words(&stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `docker compose config` reads files only; a minute means something is wrong (a hung plugin).
const CONFIG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `cmd` to its end, reading its output as it comes (a large model would fill a pipe),
/// and kills it after `timeout`: Ok(None).
fn output_within(
    cmd: &mut Command,
    timeout: std::time::Duration,
) -> std::io::Result<Option<std::process::Output>> {
    use std::io::Read;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Ok(Some(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }))
}

/// Compose's error without its log-line decoration.
fn compose_words(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("level=warning"))
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_file_compose_does_not_read_is_named() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "compose.yaml",
            "compose.overide.yaml",
            "compose-override.yml",
            "notes.yaml",
        ] {
            std::fs::write(dir.path().join(n), "services: {}\n").unwrap();
        }
        let read = files(dir.path(), &[], &|_| None).unwrap();
        let said = unread_overrides(dir.path(), &read);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].starts_with("compose-override.yml is not read: Compose reads compose.yaml in")
        );
        assert!(said[1].starts_with("compose.overide.yaml is not read"));
        // A file Compose reads is not named.
        std::fs::rename(
            dir.path().join("compose.overide.yaml"),
            dir.path().join("compose.override.yaml"),
        )
        .unwrap();
        let read = files(dir.path(), &[], &|_| None).unwrap();
        assert_eq!(unread_overrides(dir.path(), &read).len(), 1);
    }

    #[test]
    fn compose_file_setting_and_default_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(files(d, &[], &|_| None), None);
        std::fs::write(d.join("docker-compose.yml"), "services: {}\n").unwrap();
        std::fs::write(d.join("compose.override.yaml"), "services: {}\n").unwrap();
        assert_eq!(
            files(d, &[], &|_| None).unwrap(),
            [
                d.join("docker-compose.yml"),
                d.join("compose.override.yaml")
            ]
        );
        let sub = d.join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(files(&sub, &[], &|_| None).unwrap().len(), 2);
        let env = |k: &str| match k {
            "COMPOSE_FILE" => Some("a.yaml;/abs/b.yaml".to_string()),
            "COMPOSE_PATH_SEPARATOR" => Some(";".to_string()),
            _ => None,
        };
        assert_eq!(
            files(d, &[], &env).unwrap(),
            [d.join("a.yaml"), PathBuf::from("/abs/b.yaml")]
        );
        let given = [d.join("x.yaml")];
        assert_eq!(files(d, &given, &env).unwrap(), given);
    }
}
