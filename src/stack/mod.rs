//! The deployed stack as its files describe it: the compose file, `.env`, settings, and what
//! detection makes of them. Nothing here talks to Docker.
pub mod check_settings;
pub mod checks;
pub mod compose;
pub mod detect;
pub mod envfile;
pub mod interpolate;
pub mod locate;
pub mod pin;
pub mod project;
pub mod sense;
pub mod settings;
mod surreal;
pub mod targets;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use compose::ComposeFile;
use detect::Detection;
use envfile::EnvFile;
use settings::Settings;

/// Where the stack's files are, from `-C`, `-f` (any number) and `--env-file`.
#[derive(Debug, Clone)]
pub struct StackPaths {
    pub project_dir: PathBuf,
    /// The `-f` files; empty: the files Compose itself would read (`project::files`).
    pub compose_files: Vec<PathBuf>,
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub project_dir: PathBuf,
    /// The first compose file (the one Compose's paths are relative to).
    pub compose_path: PathBuf,
    /// Every compose file Compose reads for the project, in order (the first is `compose_path`);
    /// `include:`d and `extends:` files are not listed.
    pub compose_files: Vec<PathBuf>,
    /// The `-f` files the user gave, passed on to every Compose call (empty: none, and Compose
    /// finds the same files as the user's own `docker compose`).
    pub given_files: Vec<PathBuf>,
    /// A service Compose does not start, and why: an inactive profile, or scaled to zero.
    pub inactive: Vec<(String, String)>,
    /// Something about how the files were read that the user should know.
    pub reading_note: Option<String>,
    /// Override-looking files in the project directory that Compose does not read.
    pub unread_files: Vec<String>,
    /// The `.env` path (it may not exist: then `env` is empty).
    pub env_path: PathBuf,
    pub env: EnvFile,
    /// `.env` values as Compose resolves them.
    pub env_values: IndexMap<String, String>,
    pub compose: ComposeFile,
    pub settings: Settings,
    /// `hoist.yaml`, when there is one.
    pub settings_path: Option<PathBuf>,
    pub project_name: String,
    pub detection: Detection,
}

/// Why the stack's files could not be used. Each is bad input: exit 2, nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "no compose file in {dir} (looked for {tried}). Run hoist in the app's directory, or give it with -C DIR or -f FILE."
    )]
    NoComposeFile { dir: String, tried: String },
    #[error("cannot read {path}: {reason}. Check the path and that your user may read it.")]
    Unreadable { path: String, reason: String },
    #[error(
        "{path}: line {line} is not UTF-8 text, which hoist will not edit (it could not keep the rest of the file byte for byte). Save that line as UTF-8, then try again."
    )]
    NotText { path: String, line: usize },
    #[error("{path}: {source}. Fix that line (Compose reads this file too), then try again.")]
    Env {
        path: String,
        source: envfile::EnvFileError,
    },
    #[error("{0}")]
    Compose(#[from] compose::ComposeError),
    #[error(
        "Docker Compose cannot read the project ({files}): {words}. Fix that (run `docker compose config` in {dir} to see it), then try again."
    )]
    ComposeRefused {
        files: String,
        dir: String,
        words: String,
    },
    #[error("{0}")]
    Setting(#[from] settings::SettingError),
    #[error(
        "{path}:{line}: the YAML is malformed (line {line}): {message}. Fix that line, then try again."
    )]
    SettingsSyntax {
        path: String,
        line: u64,
        message: String,
    },
    #[error(
        "{path}: {message}. Set it in .env (or the environment), or give a default as ${{NAME:-value}}; a $ meant for a shell in a command is written $$ (as in the compose file). Nothing was changed."
    )]
    SettingsVariable { path: String, message: String },
    #[error("{0}")]
    Detect(#[from] detect::DetectError),
    #[error(
        "COMPOSE_PROJECT_NAME={value:?} ({from}) is not a valid Compose project name: use only lowercase letters, digits, '-' and '_', starting with a letter or digit."
    )]
    BadProjectName { value: String, from: String },
    #[error(
        "{dir}: the directory's name gives no Compose project name (it needs a letter or digit). Set `name:` in {compose}, or COMPOSE_PROJECT_NAME in .env."
    )]
    NoProjectName { dir: String, compose: String },
}

impl StackError {
    pub fn exit_code(&self) -> i32 {
        2
    }
}

fn read(path: &Path) -> Result<String, StackError> {
    let bytes = std::fs::read(path).map_err(|e| StackError::Unreadable {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        StackError::NotText {
            path: path.display().to_string(),
            line,
        }
    })
}

/// The project name Compose uses, by Compose's precedence (the `-p` flag aside, which hoist does
/// not take): `COMPOSE_PROJECT_NAME` (environment, then `.env`), else the top-level `name:`,
/// normalized, else the project directory's base name, normalized.
fn project_name(
    compose: &ComposeFile,
    project_dir: &Path,
    os_env: &dyn Fn(&str) -> Option<String>,
    env: &EnvFile,
    env_path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, StackError> {
    const VAR: &str = "COMPOSE_PROJECT_NAME";
    if let Some(value) = lookup(VAR).filter(|n| !n.is_empty()) {
        // Compose refuses a name that normalization would change, rather than fixing it.
        if compose::normalize_project_name(&value) != value {
            let from = match (os_env(VAR), env.line_of(VAR)) {
                (Some(_), _) => "from the environment".to_string(),
                (None, Some(line)) => format!("{} line {line}", env_path.display()),
                (None, None) => format!("from {}", env_path.display()),
            };
            return Err(StackError::BadProjectName { value, from });
        }
        return Ok(value);
    }
    if let Some(name) = compose
        .name
        .as_deref()
        .map(compose::normalize_project_name)
        .filter(|n| !n.is_empty())
    {
        return Ok(name);
    }
    // Like Compose's filepath.Abs: `.` and `..` resolved lexically, symlinks kept.
    let absolute = std::path::absolute(project_dir).map_err(|e| StackError::Unreadable {
        path: project_dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let base = compose::normalize(&absolute)
        .file_name()
        .map(|n| compose::normalize_project_name(&n.to_string_lossy()))
        .unwrap_or_default();
    if base.is_empty() {
        return Err(StackError::NoProjectName {
            dir: project_dir.display().to_string(),
            compose: compose.path.display().to_string(),
        });
    }
    Ok(base)
}

/// The merged model Compose sees, interpolated by hoist. Where Compose refuses the files,
/// hoist's own reading of each file names the line when it can; where there is no Compose v2,
/// the first file is read alone and the note says so.
fn read_model(
    paths: &StackPaths,
    files: &[PathBuf],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(ComposeFile, Option<String>), StackError> {
    let project_dir = &paths.project_dir;
    let main = &files[0];
    match project::resolve(project_dir, &paths.compose_files, paths.env_file.as_deref()) {
        Ok(merged) => Ok((
            ComposeFile::parse(main, &merged, project_dir, lookup).map_err(|e| {
                // The merged model has no lines of its own: blame the files.
                match e {
                    compose::ComposeError::Syntax { .. }
                    | compose::ComposeError::SyntaxNoLocation { .. } => {
                        StackError::ComposeRefused {
                            files: shown(files),
                            dir: project_dir.display().to_string(),
                            words: e.to_string(),
                        }
                    }
                    other => StackError::Compose(other),
                }
            })?,
            None,
        )),
        Err(project::ResolveError::Refused(words)) => {
            for f in files {
                ComposeFile::parse(f, &read(f)?, project_dir, lookup)?;
            }
            Err(StackError::ComposeRefused {
                files: shown(files),
                dir: project_dir.display().to_string(),
                words,
            })
        }
        Err(project::ResolveError::NoCompose) => {
            let compose = ComposeFile::parse(main, &read(main)?, project_dir, lookup)?;
            let note = (files.len() > 1 || !compose.services.is_empty()).then(|| {
                format!(
                    "Docker Compose v2 is not installed, so hoist read {} alone: override files, `include:` and `extends:` were not merged",
                    main.display()
                )
            });
            Ok((compose, note))
        }
    }
}

fn shown(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Services Compose does not start: every profile they are in is inactive
/// (`COMPOSE_PROFILES`), or they are scaled to zero.
fn inactive(
    compose: &ComposeFile,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let active: Vec<String> = lookup("COMPOSE_PROFILES")
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let all = active.iter().any(|p| p == "*");
    let mut out = Vec::new();
    for (name, svc) in &compose.services {
        if !svc.profiles.is_empty() && !all && !svc.profiles.iter().any(|p| active.contains(p)) {
            out.push((
                name.clone(),
                format!(
                    "profile {} is not active in COMPOSE_PROFILES",
                    svc.profiles.join(", ")
                ),
            ));
        } else if svc.replicas == Some(0) {
            out.push((name.clone(), "scaled to 0 replicas".to_string()));
        }
    }
    out
}

/// Every string in hoist.yaml's settings with its `${VAR}`s substituted as Compose does; a
/// variable without a value or default is named.
fn interpolate_settings(
    value: &mut serde_json::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    match value {
        serde_json::Value::String(s) => {
            for r in interpolate::references(s) {
                if r.default.is_none() && lookup(&r.name).is_none() {
                    return Err(format!(
                        "${{{}}} is set neither in the environment nor in .env",
                        r.name
                    ));
                }
            }
            *s = interpolate::interpolate(s, lookup).map_err(|e| e.to_string())?;
        }
        serde_json::Value::Array(items) => {
            for v in items {
                interpolate_settings(v, lookup)?;
            }
        }
        serde_json::Value::Object(map) => {
            for v in map.values_mut() {
                interpolate_settings(v, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The settings: the compose file's `x-hoist:` block, then `hoist.yaml` beside it, field by
/// field over it.
fn read_settings(
    compose: &ComposeFile,
    compose_path: &Path,
    project_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Settings, Option<PathBuf>), StackError> {
    let known: Vec<&str> = compose.services.keys().map(String::as_str).collect();
    // Each block is read alone first, so an unknown service is blamed on the file that names it.
    let apply = |settings: Settings,
                 block: &serde_json::Value,
                 source: &settings::Source<'_>|
     -> Result<Settings, StackError> {
        Settings::default()
            .apply(block, source)?
            .check_services(&known, source)?;
        Ok(settings.apply(block, source)?)
    };
    let mut settings = Settings::default();
    if let Some(block) = compose.extensions.get("x-hoist") {
        settings = apply(
            settings,
            block,
            &settings::Source {
                file: compose_path,
                prefix: "x-hoist.",
            },
        )?;
    }
    let hoist_yaml = compose_path
        .parent()
        .unwrap_or(project_dir)
        .join("hoist.yaml");
    let settings_path = hoist_yaml.is_file().then_some(hoist_yaml);
    if let Some(path) = &settings_path {
        let text = read(path)?;
        let mut value: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| StackError::SettingsSyntax {
                path: path.display().to_string(),
                line: e.location().map_or(0, |l| l.line()),
                message: e.to_string().lines().next().unwrap_or_default().to_string(),
            })?;
        // `${VAR}` as in the compose file's x-hoist block (Compose interpolates that one), from
        // the environment and .env; a variable set nowhere is an error, not an empty string.
        interpolate_settings(&mut value, lookup).map_err(|message| {
            StackError::SettingsVariable {
                path: path.display().to_string(),
                message,
            }
        })?;
        settings = apply(
            settings,
            &value,
            &settings::Source {
                file: path,
                prefix: "",
            },
        )?;
    }
    // The database's settings are whole only once every file has said its part.
    let last = match &settings_path {
        Some(path) => settings::Source {
            file: path,
            prefix: "",
        },
        None => settings::Source {
            file: compose_path,
            prefix: "x-hoist.",
        },
    };
    settings.check_database(&last)?;
    // A password written into a command (`--pass hunter2`) is a secret wherever it is repeated.
    if let Some(db) = &settings.database {
        for argv in [&db.dump, &db.restore, &db.revision].into_iter().flatten() {
            crate::redact::learn_from_command(argv);
        }
    }

    Ok((settings, settings_path))
}

/// Reads and understands the stack's files. `os_env` is the process environment (it overrides
/// `.env`, as in Compose).
pub fn load(
    paths: &StackPaths,
    os_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Stack, StackError> {
    let project_dir = paths.project_dir.clone();
    let env_path = paths
        .env_file
        .clone()
        .unwrap_or_else(|| project_dir.join(".env"));
    // No .env is fine unless the user named one.
    let env_text = if paths.env_file.is_none() && !env_path.exists() {
        String::new()
    } else {
        read(&env_path)?
    };
    let env_err = |source| StackError::Env {
        path: env_path.display().to_string(),
        source,
    };
    let env = EnvFile::parse(&env_text).map_err(env_err)?;
    let env_values = env.resolve(os_env).map_err(env_err)?;
    // A secret that lives only in .env is masked wherever an app's output repeats it.
    for (key, value) in &env_values {
        for secret in crate::redact::secrets_in(key, value) {
            crate::redact::learn(&secret);
        }
    }
    let lookup = |k: &str| os_env(k).or_else(|| env_values.get(k).cloned());
    let compose_files =
        project::files(&project_dir, &paths.compose_files, &lookup).ok_or_else(|| {
            StackError::NoComposeFile {
                dir: project_dir.display().to_string(),
                tried: project::FILE_NAMES.join(", "),
            }
        })?;
    for f in &compose_files {
        if !f.is_file() {
            return Err(StackError::Unreadable {
                path: f.display().to_string(),
                reason: "no such file".into(),
            });
        }
    }
    let compose_path = compose_files[0].clone();
    let (compose, reading_note) = read_model(paths, &compose_files, &lookup)?;
    let unread_files = project::unread_overrides(&project_dir, &compose_files);
    let inactive = inactive(&compose, &lookup);

    let (settings, settings_path) = read_settings(&compose, &compose_path, &project_dir, &lookup)?;
    let project_name = project_name(&compose, &project_dir, os_env, &env, &env_path, &lookup)?;
    let detection = detect::detect(&detect::Inputs {
        compose: &compose,
        env: &env,
        os_env,
        lookup: &lookup,
        settings: &settings,
        env_path: &env_path,
        project_dir: &project_dir,
        inactive: &inactive,
        files: &compose_files,
    })?;
    Ok(Stack {
        project_dir,
        compose_path,
        compose_files,
        given_files: paths.compose_files.clone(),
        inactive,
        reading_note,
        unread_files,
        env_path,
        env,
        env_values,
        compose,
        settings,
        settings_path,
        project_name,
        detection,
    })
}
