//! The database's kind confirmed from inside its container: the server binary's own
//! `--version`. Detection reads names, variables and settings; this asks the program that
//! runs, so a wrong guess is said as such (with the setting that fixes it) instead of as a
//! failed connection.
use crate::db::DbKind;
use crate::docker::{Engine, exec};

/// What the container's server binaries say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The kind detection said, with the server's version line.
    Confirmed(String),
    /// Another kind runs there: its name for people, its `x-hoist` kind, its version line.
    Other {
        name: &'static str,
        setting: &'static str,
        version: String,
    },
    /// No server binary answered (a slim image, a remote database): nothing learnt.
    Unknown,
}

/// The server binaries to ask, per kind: (binary, kind, name, x-hoist kind).
const SERVERS: [(&str, DbKind, &str, &str); 3] = [
    ("postgres", DbKind::Postgres, "PostgreSQL", "postgres"),
    ("mariadbd", DbKind::Mysql, "MariaDB", "mariadb"),
    ("mysqld", DbKind::Mysql, "MySQL", "mysql"),
];

/// The first line `binary --version` prints in `container`, when it runs there.
async fn version_of(engine: &Engine, container: &str, binary: &str) -> Option<String> {
    let cmd = [binary, "--version"];
    let (outcome, out) = exec::exec_output(engine, container, &cmd, &[], 4096)
        .await
        .ok()?;
    let line = out.lines().next()?.trim().to_string();
    (outcome.exit_code == 0 && !line.is_empty()).then_some(line)
}

/// Asks the container which server it runs, the detected `kind`'s binaries first.
pub async fn confirm(engine: &Engine, container: &str, kind: DbKind) -> Confirmation {
    // A file, or a kind the settings describe by its commands: nothing to confirm.
    if matches!(kind, DbKind::Sqlite | DbKind::Command | DbKind::Surrealdb) {
        return Confirmation::Unknown;
    }
    let (same, other): (Vec<_>, Vec<_>) = SERVERS.iter().partition(|(_, k, _, _)| *k == kind);
    for (binary, _, _, _) in &same {
        if let Some(v) = version_of(engine, container, binary).await {
            return Confirmation::Confirmed(v);
        }
    }
    for (binary, _, name, setting) in &other {
        if let Some(version) = version_of(engine, container, binary).await {
            return Confirmation::Other {
                name,
                setting,
                version,
            };
        }
    }
    Confirmation::Unknown
}
