//! How hoist reaches a SurrealDB server, from what the compose file says: the server's own
//! command line (`start --user root --pass … --bind 0.0.0.0:8000 rocksdb:…`) and variables
//! (`SURREAL_USER`, `SURREAL_PASS`, `SURREAL_BIND`), and the app's settings for the namespace and
//! database it keeps its data in (`SURREAL_NS`, `SURREAL_DB`, and their longer spellings).
use indexmap::IndexMap;
use regex::Regex;

use super::compose::Service;
use super::settings::DatabaseSetting;
use crate::secret::Secret;

/// What detection found; `missing` names what it could not, for the user.
#[derive(Debug, Default)]
pub(super) struct Reach {
    pub user: String,
    pub password: Secret,
    pub port: u16,
    pub namespace: Option<String>,
    pub database: Option<String>,
    /// What the user should know (the settings disagree with the app; a memory store).
    pub note: Option<String>,
}

/// The server's command line, as words.
fn words(svc: &Service) -> Vec<String> {
    match &svc.command {
        Some(super::compose::Command::String(s)) => {
            s.split_whitespace().map(str::to_string).collect()
        }
        Some(super::compose::Command::List(l)) => l.clone(),
        None => Vec::new(),
    }
}

/// A flag's value on the command line: `--pass x`, `--pass=x`, or the short `-p x`.
fn flag(words: &[String], names: &[&str]) -> Option<String> {
    for (i, w) in words.iter().enumerate() {
        for name in names {
            if w == name {
                return words.get(i + 1).cloned();
            }
            if let Some(v) = w.strip_prefix(&format!("{name}=")) {
                return Some(v.to_string());
            }
        }
    }
    None
}

/// The first of the app's settings whose name matches `pattern`, in service order.
fn app_setting(apps: &[IndexMap<String, String>], pattern: &Regex) -> Option<String> {
    apps.iter().find_map(|env| {
        env.iter()
            .find(|(k, v)| pattern.is_match(&k.to_ascii_uppercase()) && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
    })
}

pub(super) fn reach(
    svc: &Service,
    server_env: &IndexMap<String, String>,
    apps: &[IndexMap<String, String>],
    setting: &DatabaseSetting,
) -> Reach {
    let words = words(svc);
    let get = |k: &str| server_env.get(k).cloned().filter(|v| !v.is_empty());
    let pattern = |p: &str| Regex::new(p).ok();
    let from_apps = |p: &str| pattern(p).and_then(|re| app_setting(apps, &re));
    let user = setting
        .user
        .clone()
        .or_else(|| flag(&words, &["--user", "--username", "-u"]))
        .or_else(|| get("SURREAL_USER"))
        .or_else(|| from_apps(r"^(.*_)?SURREAL(DB)?_(USER|USERNAME)$"))
        .unwrap_or_else(|| "root".to_string());
    let password = match &setting.password_variable {
        Some(var) => get(var).or_else(|| {
            apps.iter()
                .find_map(|env| env.get(var).cloned().filter(|v| !v.is_empty()))
        }),
        None => flag(&words, &["--pass", "--password", "-p"])
            .or_else(|| get("SURREAL_PASS"))
            .or_else(|| get("SURREAL_PASSWORD"))
            .or_else(|| from_apps(r"^(.*_)?SURREAL(DB)?_(PASS|PASSWORD)$")),
    };
    let port = flag(&words, &["--bind", "-b"])
        .or_else(|| get("SURREAL_BIND"))
        .and_then(|b| b.rsplit(':').next().and_then(|p| p.parse().ok()))
        .unwrap_or(8000);
    let app_namespace = from_apps(r"^(.*_)?SURREAL(DB)?_(NS|NAMESPACE)$");
    let app_database = from_apps(r"^(.*_)?SURREAL(DB)?_(DB|DATABASE)$");
    let mut notes = Vec::new();
    // The settings win, but a disagreement with what the app uses is said: one of them is wrong.
    for (key, set, app) in [
        ("namespace", &setting.namespace, &app_namespace),
        ("name", &setting.name, &app_database),
    ] {
        if let (Some(set), Some(app)) = (set, app)
            && set != app
        {
            notes.push(format!(
                "x-hoist.database.{key} says {set:?} but the app's settings say {app:?}: hoist backs up {set:?}, so make sure that is where the app keeps its data"
            ));
        }
    }
    // `start memory` (or `mem://`): nothing is on disk.
    if words
        .iter()
        .any(|w| w == "memory" || w.starts_with("mem://"))
    {
        notes.push("SurrealDB runs with its memory store: its data is gone whenever the container is restarted or recreated, and only hoist's backups hold it".to_string());
    }
    let namespace = setting.namespace.clone().or(app_namespace);
    let database = setting.name.clone().or(app_database);
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    Reach {
        user,
        password: password.map(Secret::new).unwrap_or_default(),
        port,
        namespace,
        database,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(command: &str) -> Service {
        let yaml = format!("services:\n  db:\n    image: x\n    command: {command}\n");
        let c = super::super::compose::ComposeFile::parse(
            std::path::Path::new("/app/compose.yaml"),
            &yaml,
            std::path::Path::new("/app"),
            &|_| None,
        )
        .unwrap();
        c.services["db"].clone()
    }

    fn env(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_start_command_gives_user_password_and_port() {
        let s = svc(
            "start --log info --user admin --pass s3cret --bind 0.0.0.0:8001 rocksdb:/data/x.db",
        );
        let apps = [env(&[("SURREAL_NS", "app"), ("SURREAL_DB", "main")])];
        let r = reach(&s, &IndexMap::new(), &apps, &DatabaseSetting::default());
        assert_eq!(r.user, "admin");
        assert_eq!(r.password.expose(), "s3cret");
        assert_eq!(r.port, 8001);
        assert_eq!(r.namespace.as_deref(), Some("app"));
        assert_eq!(r.database.as_deref(), Some("main"));
        assert!(r.note.is_none());
    }

    #[test]
    fn variables_and_long_setting_names_are_read_and_settings_win() {
        let s = svc("[start, 'rocksdb:/data/x.db']");
        let server = env(&[("SURREAL_USER", "root"), ("SURREAL_PASS", "pw")]);
        let apps = [env(&[
            ("APP_SURREALDB_NAMESPACE", "prod"),
            ("APP_SURREALDB_DATABASE", "core"),
        ])];
        let r = reach(&s, &server, &apps, &DatabaseSetting::default());
        assert_eq!((r.user.as_str(), r.password.expose()), ("root", "pw"));
        assert_eq!(r.port, 8000);
        assert_eq!(r.namespace.as_deref(), Some("prod"));
        assert_eq!(r.database.as_deref(), Some("core"));
        let setting = DatabaseSetting {
            namespace: Some("other".into()),
            name: Some("db2".into()),
            ..DatabaseSetting::default()
        };
        let r = reach(&s, &server, &apps, &setting);
        assert_eq!(r.namespace.as_deref(), Some("other"));
        assert_eq!(r.database.as_deref(), Some("db2"));
        let note = r.note.unwrap();
        assert!(
            note.contains(
                r#"x-hoist.database.namespace says "other" but the app's settings say "prod""#
            ),
            "{note}"
        );
    }

    #[test]
    fn nothing_found_is_said() {
        let s = svc("[start, 'memory']");
        let r = reach(&s, &IndexMap::new(), &[], &DatabaseSetting::default());
        assert_eq!(r.user, "root");
        assert!(r.password.is_empty());
        assert!(r.namespace.is_none() && r.database.is_none());
        assert!(r.note.as_deref().unwrap().contains("memory store"));
    }
}
