//! What hoist works out from the files alone (README, Detection): the version variable
//! and the services it upgrades, the database and its credentials, the data to archive, the
//! smoke checks and readiness. Settings override it field by field.
use indexmap::IndexMap;
use serde::Serialize;

use super::compose::{ComposeFile, MountKind};
use super::envfile::EnvFile;
use super::locate;
pub use super::locate::{Site, VersionPin};
use super::sense::{self, Seen, Sensed};
use super::settings::{Settings, SmokeCheck, StatusExpectation};
pub use crate::db::DbKind;
/// The password's type: its `Debug` prints `***`, and `Database` never serializes it.
pub use crate::secret::Secret;

#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub version: VersionPin,
    /// The services an upgrade recreates (they run the app's image).
    pub upgraded: Vec<String>,
    pub database: Option<Database>,
    /// A database hoist recognised and cannot dump (e.g. MongoDB): an upgrade refuses to run
    /// past it unless `x-hoist: {database: none}` says the app has none worth a dump.
    pub unsupported_database: Option<SeenDatabase>,
    pub data: Vec<DataMount>,
    /// Services beside the app (not upgraded, not its database) that keep data in a mount:
    /// an upgrade leaves them running and does not back them up, and says so.
    pub beside: Vec<Beside>,
    /// Services that run once and exit (an init or migration job): done when they exit 0.
    pub one_shot: Vec<String>,
    pub smoke: Vec<Smoke>,
    /// Checks beyond HTTP from `x-hoist: checks:` (a WebSocket exchange, a command in a
    /// service, metrics rules).
    pub app_checks: Vec<crate::stack::checks::AppCheck>,
    /// Every service (upgraded or not) with an enabled healthcheck, sorted.
    pub with_healthcheck: Vec<String>,
    /// How each upgraded service is judged ready, in `upgraded` order.
    pub readiness: Vec<Readiness>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub service: String,
    /// It has a healthcheck (not disabled): ready when Docker says healthy. Otherwise: ready
    /// after running for `ready_after` without a restart.
    pub healthcheck: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Database {
    pub service: String,
    pub kind: DbKind,
    pub user: String,
    #[serde(skip)]
    pub password: Secret,
    pub name: String,
    /// The port the server listens on inside its container.
    pub port: u16,
    /// SQLite: the file inside the service's container.
    pub path: Option<String>,
    /// Host address and port where the compose file publishes the database, if it does.
    pub published: Option<(String, u16)>,
    /// Something detection could not do (e.g. a `*_FILE` password), said for the user.
    pub note: Option<String>,
    /// How hoist knows this is the database, in words ("its image name", "the app's DATABASE_URL").
    pub how: String,
    /// `kind: command`: the commands that dump, restore and read its revision. Not shown (an
    /// argv may carry a password).
    #[serde(skip)]
    pub commands: Option<DbCommands>,
    /// SurrealDB: the namespace that holds `name` (the database).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// SurrealDB: the settings' SurrealQL query that returns the schema's revision.
    #[serde(skip)]
    pub revision_query: Option<String>,
}

impl Database {
    /// SurrealDB's HTTP API at `ip` (the container's address), as this database is reached.
    pub fn surreal_at(&self, ip: &str) -> crate::db::surreal::SurrealTarget {
        crate::db::surreal::SurrealTarget {
            base: format!("http://{ip}:{}", self.port),
            user: self.user.clone(),
            password: self.password.clone(),
            namespace: self.namespace.clone(),
            database: self.name.clone(),
            revision_query: self.revision_query.clone(),
        }
    }
}

/// A database of a kind hoist does not know, as the settings describe it: each an argv run in
/// the database service's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbCommands {
    /// Writes the whole database to stdout.
    pub dump: Vec<String>,
    /// Reads what `dump` wrote on stdin and replaces the database with it.
    pub restore: Vec<String>,
    /// Prints the schema's revision.
    pub revision: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeenDatabase {
    pub service: String,
    /// In words: "MongoDB".
    pub kind: String,
    /// The evidence, in words: "its MONGO_INITDB_* variables".
    pub how: String,
    /// A kind hoist speaks, refused only for want of something the files do not say (which
    /// SurrealDB namespace and database): what to set, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Beside {
    pub service: String,
    /// What it looks like ("Redis", "ClickHouse"), when that can be told.
    pub kind: Option<String>,
    /// The volumes and host paths it writes to.
    pub mounts: Vec<String>,
    /// Where those are mounted in its container, in `mounts` order; empty when the image
    /// declares the volume (the running container says where).
    pub targets: Vec<String>,
    pub copy: BesideCopy,
}

/// How the backup takes a copy of a service's data beside the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BesideCopy {
    /// Redis: `SAVE` writes its snapshot file whole (by a rename), so the files can be copied
    /// while it runs; stopped for the copy when `SAVE` is refused.
    SaveThenCopy,
    /// Stopped for the copy, then started again: a running service's files are not a
    /// consistent copy.
    StopForCopy,
    /// `x-hoist: {leave_out: [...]}` says its data is not to be backed up.
    LeftOut,
}

impl Beside {
    /// "broker (Redis) keeps data in redisdata".
    pub fn words(&self) -> String {
        format!(
            "{}{} keeps data in {}",
            self.service,
            self.kind
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default(),
            self.mounts.join(", ")
        )
    }

    /// What the backup does with it, in words.
    pub fn copy_words(&self) -> String {
        match self.copy {
            BesideCopy::SaveThenCopy => {
                "archived after a SAVE (stopped for the copy if SAVE is refused)".to_string()
            }
            BesideCopy::StopForCopy => format!(
                "archived with {} stopped for the copy, then started again",
                self.service
            ),
            BesideCopy::LeftOut => "left out of the backup, as x-hoist leave_out says".to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DataMount {
    pub kind: MountKind,
    /// Absolute host path (bind) or volume name as the compose file says it.
    pub source: String,
    /// Path inside the containers.
    pub target: String,
    pub read_only: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Smoke {
    pub url: String,
    pub method: String,
    /// e.g. "<400", "200", "200-299".
    pub expect: String,
    pub expect_body: Option<String>,
    /// Detected from a published port, or configured.
    pub configured: bool,
    /// https:// only: the certificate is not verified, so a self-signed one, or one for
    /// another host name, is accepted.
    pub allow_self_signed: bool,
    /// Request headers (name, value). Their values may be secrets: what is written (a
    /// backup's manifest, `status --json`) says `***`, and a rollback takes them from the
    /// settings again.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "masked_headers"
    )]
    pub headers: Vec<(String, String)>,
}

fn masked_headers<S: serde::Serializer>(
    headers: &[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(headers.len()))?;
    for (name, _) in headers {
        seq.serialize_element(&(name, crate::redact::MASK))?;
    }
    seq.end()
}

impl Smoke {
    /// For people: "GET http://127.0.0.1:9933/ expecting <400", and for an https check whose
    /// certificate is not verified "GET https://127.0.0.1:8443/ expecting <400, any certificate
    /// accepted".
    pub fn words(&self) -> String {
        let trust = if self.allow_self_signed && self.url.starts_with("https://") {
            ", any certificate accepted"
        } else {
            ""
        };
        format!(
            "{} {} expecting {}{trust}",
            self.method, self.url, self.expect
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error(
        "{file}: the version variable {variable} set in x-hoist/hoist.yaml is not used in any service's `image:`."
    )]
    UnusedVariable { file: String, variable: String },
    #[error(
        "{file}: setting `{key}` names service {service:?}, which the compose file does not define (it has: {known})."
    )]
    UnknownService {
        file: String,
        key: String,
        service: String,
        known: String,
    },
    #[error(
        "setting `{key}` (x-hoist or hoist.yaml): {entry:?} ({resolved}) is not mounted by any service of {file}; name a host path or volume that a service's `volumes:` uses."
    )]
    UnmountedData {
        key: String,
        entry: String,
        resolved: String,
        file: String,
    },
    #[error(
        "{file}: the env_file {path} of service {service} cannot be read: {reason}. Create it, or fix the path in `env_file:`."
    )]
    EnvFile {
        file: String,
        service: String,
        path: String,
        reason: String,
    },
    #[error(
        "{file}: setting `leave_out` names {service}, {what}. `leave_out` is for services beside the app (a cache, a search index){hint}."
    )]
    LeaveOut {
        file: String,
        service: String,
        what: &'static str,
        hint: &'static str,
    },
}

pub struct Inputs<'a> {
    pub compose: &'a ComposeFile,
    pub env: &'a EnvFile,
    pub os_env: &'a dyn Fn(&str) -> Option<String>,
    /// Compose's lookup: the environment first, then `.env`.
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub settings: &'a Settings,
    pub env_path: &'a std::path::Path,
    /// Relative paths in settings resolve against it, as the compose file's do.
    pub project_dir: &'a std::path::Path,
    /// Services Compose does not start (inactive profile, zero replicas), with why.
    pub inactive: &'a [(String, String)],
    /// The compose files, in Compose's order (where a literal tag is looked for).
    pub files: &'a [std::path::PathBuf],
}

pub fn detect(inp: &Inputs<'_>) -> Result<Detection, DetectError> {
    let compose = inp.compose;
    let file = compose.path.display().to_string();
    let known = || {
        compose
            .services
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    let check_service = |key: &str, service: &str| -> Result<(), DetectError> {
        if compose.services.contains_key(service) {
            Ok(())
        } else {
            Err(DetectError::UnknownService {
                file: file.clone(),
                key: key.to_string(),
                service: service.to_string(),
                known: known(),
            })
        }
    };
    let (version, upgraded) = locate::locate(inp, &check_service)?;
    let census = census(inp, &upgraded)?;
    let DatabaseChoice {
        database,
        unsupported: unsupported_database,
        others: other_databases,
    } = database(inp, &upgraded, &census, &check_service)?;
    let data = data_mounts(inp, &upgraded, database.as_ref())?;
    let smoke = smoke_checks(inp, &upgraded);
    let mut with_healthcheck: Vec<String> = compose
        .services
        .iter()
        .filter(|(_, s)| {
            s.healthcheck
                .as_ref()
                .is_some_and(|h| !h.disabled && !h.test.is_empty())
        })
        .map(|(n, _)| n.clone())
        .collect();
    with_healthcheck.sort();
    let readiness = upgraded
        .iter()
        .map(|name| Readiness {
            service: name.clone(),
            healthcheck: with_healthcheck.contains(name),
        })
        .collect();
    let db_service = database
        .as_ref()
        .map(|d| d.service.clone())
        .or_else(|| unsupported_database.as_ref().map(|d| d.service.clone()));
    leave_out_allowed(inp, &upgraded, db_service.as_deref())?;
    let beside = compose
        .services
        .iter()
        // Without knowing the app, every service would look "beside" it: say nothing then.
        .filter(|_| !upgraded.is_empty())
        .filter(|(n, _)| {
            !upgraded.contains(n)
                && Some(n.as_str()) != db_service.as_deref()
                && !inp.inactive.iter().any(|(i, _)| &i == n)
        })
        .filter_map(|(n, svc)| {
            let (mounts, targets): (Vec<String>, Vec<String>) = svc
                .volumes
                .iter()
                .filter(|m| sense::holds_data(m))
                .filter_map(|m| Some((m.source.clone()?, m.target.clone())))
                .unzip();
            let seen = census.sensed.get(n).map(|s| s.kind);
            (!mounts.is_empty()).then(|| Beside {
                service: n.clone(),
                kind: seen.map(|k| k.name().to_string()),
                mounts,
                targets,
                copy: beside_copy(inp.settings, n, seen),
            })
        })
        .collect();
    // Another database beside the app's is named even without a mount in the compose file
    // (its image keeps the data in an anonymous volume).
    let mut beside: Vec<Beside> = beside;
    for o in other_databases {
        if !beside.iter().any(|b| b.service == o.service) {
            beside.push(Beside {
                service: o.service.clone(),
                kind: Some(o.kind.clone()),
                mounts: vec!["a volume its image declares".to_string()],
                targets: Vec::new(),
                copy: beside_copy(inp.settings, &o.service, None),
            });
        }
    }
    let one_shot = one_shot(compose, inp.inactive);
    Ok(Detection {
        version,
        upgraded,
        database,
        unsupported_database,
        data,
        beside,
        one_shot,
        smoke,
        app_checks: inp.settings.app_checks.clone().unwrap_or_default(),
        with_healthcheck,
        readiness,
    })
}

/// `leave_out` may not name the app or its database: their backup is what a rollback needs.
fn leave_out_allowed(
    inp: &Inputs<'_>,
    upgraded: &[String],
    db_service: Option<&str>,
) -> Result<(), DetectError> {
    for service in inp.settings.leave_out.iter().flatten() {
        let (what, hint) = if Some(service.as_str()) == db_service {
            (
                "the app's database, which every backup dumps",
                "; to upgrade with no database dump, say `database: none`",
            )
        } else if upgraded.contains(service) {
            (
                "a service of the app itself, whose data every backup archives",
                "",
            )
        } else {
            continue;
        };
        return Err(DetectError::LeaveOut {
            file: inp.compose.path.display().to_string(),
            service: service.clone(),
            what,
            hint,
        });
    }
    Ok(())
}

/// How the backup copies the data of `service`, a service beside the app.
fn beside_copy(settings: &Settings, service: &str, seen: Option<sense::Seen>) -> BesideCopy {
    if settings
        .leave_out
        .iter()
        .flatten()
        .any(|s| s.as_str() == service)
    {
        BesideCopy::LeftOut
    } else if seen == Some(sense::Seen::Redis) {
        BesideCopy::SaveThenCopy
    } else {
        BesideCopy::StopForCopy
    }
}

/// Services that run once: another waits for them with `service_completed_successfully`, or
/// they say `restart: "no"` outright.
fn one_shot(compose: &ComposeFile, inactive: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = compose
        .services
        .iter()
        .filter(|(name, _)| !inactive.iter().any(|(i, _)| i == *name))
        .filter(|(name, svc)| {
            svc.restart.as_deref() == Some("no")
                || (svc
                    .restart
                    .as_deref()
                    .is_some_and(|r| r.starts_with("on-failure"))
                    && [
                        "init",
                        "migrat",
                        "setup",
                        "seed",
                        "install",
                        "bootstrap",
                        "createbucket",
                    ]
                    .iter()
                    .any(|w| name.contains(w)))
                || compose.services.values().any(|other| {
                    other.depends_on_condition.get(*name).map(String::as_str)
                        == Some("service_completed_successfully")
                })
        })
        .map(|(n, _)| n.clone())
        .collect();
    out.sort();
    out
}

/// A service's container environment as Compose gives it: `env_file:` entries first,
/// `environment:` over them, interpolated.
pub(super) fn service_env(
    inp: &Inputs<'_>,
    service: &str,
) -> Result<IndexMap<String, String>, DetectError> {
    let compose = inp.compose;
    let Some(svc) = compose.services.get(service) else {
        return Ok(IndexMap::new());
    };
    let mut env: IndexMap<String, String> = IndexMap::new();
    for ef in &svc.env_files {
        let text = match std::fs::read_to_string(&ef.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ef.required => continue,
            Err(e) => {
                return Err(DetectError::EnvFile {
                    file: compose.path.display().to_string(),
                    service: service.to_string(),
                    path: ef.path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let parsed = EnvFile::parse(&text)
            .and_then(|f| f.resolve(inp.lookup))
            .map_err(|e| DetectError::EnvFile {
                file: compose.path.display().to_string(),
                service: service.to_string(),
                path: ef.path.display().to_string(),
                reason: e.to_string(),
            })?;
        env.extend(parsed);
    }
    for (k, v) in &svc.environment {
        match v {
            Some(v) => env.insert(k.clone(), v.clone()),
            None => match (inp.lookup)(k) {
                Some(v) => env.insert(k.clone(), v),
                None => None,
            },
        };
    }
    Ok(env)
}

/// What each service that an upgrade leaves alone is, by what it does (`sense`), and which
/// of them the app names in its connection settings.
struct Census {
    sensed: IndexMap<String, Sensed>,
    named: Vec<(String, Option<Seen>, String)>,
}

fn census(inp: &Inputs<'_>, upgraded: &[String]) -> Result<Census, DetectError> {
    let mut sensed = IndexMap::new();
    let mut app_env = IndexMap::new();
    for (name, svc) in &inp.compose.services {
        if inp.inactive.iter().any(|(n, _)| n == name) {
            continue;
        }
        let env = service_env(inp, name)?;
        if upgraded.contains(name) {
            app_env.extend(env);
        } else if let Some(s) = sense::sense(svc, &env) {
            sensed.insert(name.clone(), s);
        }
    }
    let named = sense::named_by_app(inp.compose, &app_env)
        .into_iter()
        .filter(|(n, _, _)| !upgraded.contains(n))
        .collect();
    Ok(Census { sensed, named })
}

/// The services that are databases (by what they do, or as the app's connection settings name
/// them), the app's own first: the one the app names, then one hoist can dump, then the one
/// the app depends on. A service the app names in a database setting (`DATABASE_URL`,
/// `DB_HOST`) whose kind nothing tells is one too, of no known kind: said, never passed over.
fn ranked_databases(
    compose: &ComposeFile,
    census: &Census,
    upgraded: &[String],
) -> Vec<(String, Option<Seen>, String)> {
    let mut candidates: Vec<(String, Option<Seen>, String)> = census
        .sensed
        .iter()
        .filter(|(_, s)| s.kind.is_database())
        .map(|(n, s)| (n.clone(), Some(s.kind), s.how.clone()))
        .collect();
    for (n, kind, how) in &census.named {
        if candidates.iter().any(|(c, _, _)| c == n) {
            continue;
        }
        match kind.or_else(|| census.sensed.get(n).map(|s| s.kind)) {
            Some(kind) if kind.is_database() => {
                candidates.push((n.clone(), Some(kind), how.clone()))
            }
            Some(_) => {}
            None if sense::names_a_database(how) => candidates.push((n.clone(), None, how.clone())),
            None => {}
        }
    }
    candidates.sort_by_key(|(n, kind, _)| {
        let named = census.named.iter().any(|(m, _, _)| m == n);
        let dumpable = matches!(kind, Some(Seen::Postgres | Seen::Mysql | Seen::Surrealdb));
        let depended = upgraded.iter().any(|u| {
            compose
                .services
                .get(u)
                .is_some_and(|s| s.depends_on.contains(n))
        });
        (!named, !dumpable, !depended)
    });
    candidates
}

/// Who hoist connects as, from the database container's own variables (the official images'
/// names), and what it could not find, said for the user.
struct Credentials {
    user: String,
    password: Secret,
    name: String,
    port: u16,
    note: Option<String>,
}

fn credentials(
    kind: DbKind,
    env: &IndexMap<String, String>,
    setting: &super::settings::DatabaseSetting,
    service: &str,
) -> Credentials {
    let get = |k: &str| env.get(k).cloned().filter(|v| !v.is_empty());
    let mut note = None;
    let (user, password_var, name, port) = match kind {
        DbKind::Postgres => {
            let user = get("POSTGRES_USER").unwrap_or_else(|| "postgres".into());
            let name = get("POSTGRES_DB").unwrap_or_else(|| user.clone());
            (user, "POSTGRES_PASSWORD".to_string(), name, 5432)
        }
        DbKind::Mysql => {
            let pick = |suffix: &str| {
                get(&format!("MARIADB_{suffix}")).or_else(|| get(&format!("MYSQL_{suffix}")))
            };
            let name = pick("DATABASE").unwrap_or_default();
            // The variable that is set, directly or as `_FILE`, so a note can name the right one.
            let password_var = |suffix: &str| {
                let mariadb = format!("MARIADB_{suffix}");
                if get(&mariadb).is_some() || get(&format!("{mariadb}_FILE")).is_some() {
                    mariadb
                } else {
                    format!("MYSQL_{suffix}")
                }
            };
            match pick("USER") {
                Some(u) => (u, password_var("PASSWORD"), name, 3306),
                None => (
                    "root".to_string(),
                    password_var("ROOT_PASSWORD"),
                    name,
                    3306,
                ),
            }
        }
        DbKind::Sqlite => (String::new(), String::new(), String::new(), 0),
        // Named after its service in what hoist says ("database db restored").
        DbKind::Command => (String::new(), String::new(), service.to_string(), 0),
        // Read by `surreal::reach` instead.
        DbKind::Surrealdb => (String::new(), String::new(), String::new(), 8000),
    };
    let password_var = setting.password_variable.clone().unwrap_or(password_var);
    let password = get(&password_var).map(Secret::new).unwrap_or_default();
    if password.is_empty() && !matches!(kind, DbKind::Sqlite | DbKind::Command | DbKind::Surrealdb)
    {
        note = Some(if get(&format!("{password_var}_FILE")).is_some() {
            format!(
                "{password_var}_FILE points to a password file inside the container, which hoist does not read yet; give service {service} {password_var} in its environment (e.g. from .env), or name the variable that holds it with x-hoist.database.password_variable"
            )
        } else {
            format!(
                "no {password_var} is set for service {service}; hoist will try without a password"
            )
        });
    }
    Credentials {
        user,
        password,
        name,
        port,
        note,
    }
}

#[derive(Default)]
struct DatabaseChoice {
    database: Option<Database>,
    /// A database hoist recognised but cannot dump.
    unsupported: Option<SeenDatabase>,
    /// Other databases beside the app's (not backed up).
    others: Vec<SeenDatabase>,
}

fn database(
    inp: &Inputs<'_>,
    upgraded: &[String],
    census: &Census,
    check_service: &dyn Fn(&str, &str) -> Result<(), DetectError>,
) -> Result<DatabaseChoice, DetectError> {
    let compose = inp.compose;
    let setting = inp.settings.database.clone().unwrap_or_default();
    if setting.none {
        return Ok(DatabaseChoice::default());
    }
    let candidates = ranked_databases(compose, census, upgraded);
    let (service, seen, how) = match &setting.service {
        Some(s) => {
            check_service("database.service", s)?;
            let found = candidates.iter().find(|(c, _, _)| c == s).cloned();
            let (seen, how) = match found {
                Some((_, k, h)) => (k, h),
                None => (None, "x-hoist.database.service".to_string()),
            };
            (s.clone(), seen, how)
        }
        None => match candidates.first() {
            Some((n, k, h)) => (n.clone(), *k, h.clone()),
            None => return Ok(DatabaseChoice::default()),
        },
    };
    // Another database beside the app's is named as left out, never hidden.
    let others: Vec<SeenDatabase> = candidates
        .iter()
        .filter(|(n, _, _)| n != &service)
        .map(|(n, k, h)| SeenDatabase {
            service: n.clone(),
            kind: k.map_or("an unknown kind", Seen::name).to_string(),
            how: h.clone(),
            missing: None,
        })
        .collect();
    let svc = &compose.services[&service];
    let kind = match setting.kind.as_deref() {
        Some("postgres") => DbKind::Postgres,
        Some("mysql" | "mariadb") => DbKind::Mysql,
        Some("sqlite") => DbKind::Sqlite,
        Some("command") => DbKind::Command,
        Some("surrealdb") => DbKind::Surrealdb,
        _ => match seen {
            Some(Seen::Postgres) => DbKind::Postgres,
            Some(Seen::Mysql) => DbKind::Mysql,
            Some(Seen::Surrealdb) => DbKind::Surrealdb,
            Some(other) => {
                return Ok(DatabaseChoice {
                    database: None,
                    unsupported: Some(SeenDatabase {
                        service,
                        kind: other.name().to_string(),
                        how,
                        missing: None,
                    }),
                    others,
                });
            }
            None => {
                return Ok(DatabaseChoice {
                    database: None,
                    unsupported: Some(SeenDatabase {
                        service,
                        kind: "an unknown kind".to_string(),
                        how,
                        missing: None,
                    }),
                    others,
                });
            }
        },
    };
    let env = service_env(inp, &service)?;
    let Credentials {
        user,
        password,
        name,
        port,
        note,
    } = credentials(kind, &env, &setting, &service);
    let mut namespace = String::new();
    let (user, password, name, port, note) = if kind == DbKind::Surrealdb {
        let apps = upgraded
            .iter()
            .map(|u| service_env(inp, u))
            .collect::<Result<Vec<_>, _>>()?;
        let reach = super::surreal::reach(svc, &env, &apps, &setting);
        match (reach.namespace, reach.database) {
            (Some(ns), Some(db)) => {
                namespace = ns;
                (reach.user, reach.password, db, reach.port, reach.note)
            }
            (ns, db) => {
                let lacking: Vec<&str> = [(ns.is_none(), "namespace"), (db.is_none(), "name")]
                    .iter()
                    .filter(|(l, _)| *l)
                    .map(|(_, k)| *k)
                    .collect();
                return Ok(DatabaseChoice {
                    database: None,
                    unsupported: Some(SeenDatabase {
                        service,
                        kind: Seen::Surrealdb.name().to_string(),
                        how,
                        missing: Some(format!(
                            "which {} the app keeps its data in: the app's settings name no {} (e.g. SURREAL_NS, SURREAL_DB). Set x-hoist.database.{}",
                            if lacking.len() == 2 {
                                "namespace and database"
                            } else if ns.is_none() {
                                "namespace"
                            } else {
                                "database"
                            },
                            if lacking.len() == 2 {
                                "namespace or database"
                            } else if ns.is_none() {
                                "namespace"
                            } else {
                                "database"
                            },
                            lacking.join(" and x-hoist.database.")
                        )),
                    }),
                    others,
                });
            }
        }
    } else {
        (user, password, name, port, note)
    };
    let published = svc.ports.iter().find_map(|p| {
        let target: u16 = p.target.parse().ok()?;
        let published: u16 = p.published.as_deref()?.parse().ok()?;
        let host = match p.host_ip.as_deref() {
            None | Some("0.0.0.0") | Some("::") => "127.0.0.1".to_string(),
            Some(ip) => ip.to_string(),
        };
        (target == port).then_some((host, published))
    });
    Ok(DatabaseChoice {
        database: Some(Database {
            published,
            how: match kind {
                DbKind::Command => "the settings (database.kind: command)".to_string(),
                _ => how,
            },
            service,
            kind,
            user: setting.user.clone().unwrap_or(user),
            password,
            name: if kind == DbKind::Surrealdb {
                name
            } else {
                setting.name.clone().unwrap_or(name)
            },
            port,
            path: setting.path.clone(),
            note,
            namespace,
            revision_query: setting.revision_query.clone(),
            commands: match (&setting.dump, &setting.restore, &setting.revision) {
                (Some(dump), Some(restore), Some(revision)) if kind == DbKind::Command => {
                    Some(DbCommands {
                        dump: dump.clone(),
                        restore: restore.clone(),
                        revision: revision.clone(),
                    })
                }
                _ => None,
            },
        }),
        unsupported: None,
        others,
    })
}

/// The mounts whose files the backup archives: the upgraded services' (a database server's
/// own are left to its dump), and an SQLite database's, whose file is backed up with them.
fn data_mounts(
    inp: &Inputs<'_>,
    upgraded: &[String],
    database: Option<&Database>,
) -> Result<Vec<DataMount>, DetectError> {
    let sqlite = database.filter(|d| d.kind == DbKind::Sqlite);
    let db_service = database
        .filter(|d| d.kind != DbKind::Sqlite)
        .map(|d| d.service.as_str());
    let compose = inp.compose;
    if let Some(list) = &inp.settings.data {
        return list
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let is_path =
                    entry.starts_with('/') || entry.starts_with('.') || entry.starts_with('~');
                // Resolved as the compose file's own bind sources are, so the two compare equal.
                let (kind, source) = if is_path {
                    let p = super::compose::absolute(inp.project_dir, entry);
                    (MountKind::Bind, p.display().to_string())
                } else {
                    (MountKind::Volume, entry.clone())
                };
                // Which services mount it, and where.
                let mut services = Vec::new();
                let mut target = String::new();
                let mut read_only = true;
                for (name, svc) in &compose.services {
                    if let Some(m) = svc
                        .volumes
                        .iter()
                        .find(|m| m.kind == kind && m.source.as_deref() == Some(source.as_str()))
                    {
                        services.push(name.clone());
                        target = m.target.clone();
                        read_only &= m.read_only;
                    }
                }
                if services.is_empty() {
                    // Archiving what no container uses is almost surely a typo.
                    return Err(DetectError::UnmountedData {
                        key: format!("data[{i}]"),
                        entry: entry.clone(),
                        resolved: source,
                        file: compose.path.display().to_string(),
                    });
                }
                Ok(DataMount {
                    kind,
                    source,
                    target,
                    read_only,
                    services,
                })
            })
            .collect();
    }
    let mut out: Vec<DataMount> = Vec::new();
    let sqlite_service = sqlite
        .map(|d| d.service.clone())
        .filter(|s| !upgraded.contains(s));
    for name in upgraded.iter().chain(sqlite_service.iter()) {
        if Some(name.as_str()) == db_service {
            continue;
        }
        let Some(svc) = compose.services.get(name) else {
            continue;
        };
        for m in &svc.volumes {
            let Some(source) = &m.source else { continue };
            // What the app cannot change (read-only), host devices and host config, the
            // Docker socket and single config files are not the app's data.
            if !sense::holds_data(m) {
                continue;
            }
            match out
                .iter_mut()
                .find(|d| d.kind == m.kind && &d.source == source)
            {
                Some(existing) => {
                    if !existing.services.contains(name) {
                        existing.services.push(name.clone());
                    }
                    existing.read_only &= m.read_only;
                }
                None => out.push(DataMount {
                    kind: m.kind,
                    source: source.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                    services: vec![name.clone()],
                }),
            }
        }
    }
    Ok(out)
}

/// What a container port speaks, by the well-known numbers. Before an upgrade the baseline
/// (`steps::smoke::baseline`) tries the other scheme where the number was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    Http,
    Tls,
    Other,
}

pub fn port_speaks(target: &str) -> Speaks {
    let port: u16 = target
        .split('-')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    match port {
        443 | 8443 | 9443 | 4443 | 10443 => Speaks::Tls,
        // ssh, smtp(s), dns, pop3, imap(s), ldap(s), mqtt, databases, caches, turn, xmpp
        22 | 25 | 53 | 110 | 143 | 389 | 465 | 587 | 636 | 993 | 995 | 1883 | 3306 | 3478
        | 2222 | 5222 | 5269 | 5349 | 5432 | 6379 | 8883 | 11211 | 27017 => Speaks::Other,
        _ => Speaks::Http,
    }
}

fn smoke_checks(inp: &Inputs<'_>, upgraded: &[String]) -> Vec<Smoke> {
    if let Some(configured) = &inp.settings.smoke {
        return configured
            .iter()
            .map(|c: &SmokeCheck| Smoke {
                url: c.url.clone(),
                method: c.method.clone(),
                expect: match c.expect_status {
                    StatusExpectation::Exactly(s) => s.to_string(),
                    StatusExpectation::Below(s) => format!("<{s}"),
                    StatusExpectation::Range(a, b) => format!("{a}-{b}"),
                },
                expect_body: c.expect_body.clone(),
                configured: true,
                allow_self_signed: c.allow_self_signed,
                headers: c.headers.clone(),
            })
            .collect();
    }
    let mut out = Vec::new();
    for name in upgraded {
        let Some(svc) = inp.compose.services.get(name) else {
            continue;
        };
        for p in svc.ports.iter().filter(|p| p.protocol == "tcp") {
            let Some(published) = &p.published else {
                continue;
            };
            // SSH, mail and database ports would fail a good upgrade (and roll it back). A TLS
            // port's certificate is not verified: a self-hoster's own is usually self-signed,
            // or names a host other than the loopback address checked here.
            let scheme = match port_speaks(&p.target) {
                Speaks::Http => "http",
                Speaks::Tls => "https",
                Speaks::Other => continue,
            };
            let port = published.split('-').next().unwrap_or(published);
            let host = match p.host_ip.as_deref() {
                None | Some("0.0.0.0") | Some("::") | Some("") => "127.0.0.1".to_string(),
                Some(ip) if ip.contains(':') => format!("[{ip}]"),
                Some(ip) => ip.to_string(),
            };
            out.push(Smoke {
                url: format!("{scheme}://{host}:{port}/"),
                method: "GET".into(),
                expect: "<400".into(),
                expect_body: None,
                configured: false,
                allow_self_signed: scheme == "https",
                headers: Vec::new(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn detect_in(compose: &str, env: &str) -> Result<Detection, DetectError> {
        detect_with(compose, env, &Settings::default())
    }

    fn detect_with(
        compose: &str,
        env: &str,
        settings: &Settings,
    ) -> Result<Detection, DetectError> {
        let env = EnvFile::parse(env).unwrap();
        let values = env.resolve(&|_| None).unwrap();
        let lookup = |k: &str| values.get(k).cloned();
        let compose = ComposeFile::parse(
            Path::new("/app/compose.yaml"),
            compose,
            Path::new("/app"),
            &lookup,
        )
        .unwrap();
        detect(&Inputs {
            compose: &compose,
            env: &env,
            os_env: &|_| None,
            lookup: &lookup,
            settings,
            env_path: Path::new("/app/.env"),
            project_dir: Path::new("/app"),
            inactive: &[],
            files: &[],
        })
    }

    #[test]
    fn leave_out_names_services_beside_the_app_only() {
        let stack = "services:\n  app:\n    image: app:${V}\n    environment: {DATABASE_URL: 'postgresql://u:p@pg:5432/app'}\n    volumes: [\"./data:/data\"]\n  pg:\n    image: postgres:16\n  search:\n    image: getmeili/meilisearch:v1.7\n    volumes: [\"meili:/meili_data\"]\n";
        let leave = |names: &[&str]| Settings {
            leave_out: Some(names.iter().map(|s| s.to_string()).collect()),
            ..Settings::default()
        };
        let d = detect_with(stack, "V=1\n", &leave(&["search"])).unwrap();
        assert_eq!(d.beside[0].copy, BesideCopy::LeftOut);
        let e = detect_with(stack, "V=1\n", &leave(&["pg"])).unwrap_err();
        assert!(e.to_string().contains("`database: none`"), "{e}");
        let e = detect_with(stack, "V=1\n", &leave(&["app"])).unwrap_err();
        assert!(e.to_string().contains("a service of the app itself"), "{e}");
        // Not left out: stopped for its copy.
        let d = detect_in(stack, "V=1\n").unwrap();
        assert_eq!(d.beside[0].copy, BesideCopy::StopForCopy);
    }

    #[test]
    fn only_tag_variables_count() {
        let c = ComposeFile::parse(
            Path::new("/c.yaml"),
            "services:\n  a:\n    image: ${REGISTRY:-r}:5000/app:${V:-latest}\n  b:\n    image: ${REGISTRY}/b:1\n",
            Path::new("/"),
            &|_| None,
        )
        .unwrap();
        let cands = locate::version_candidates(&c);
        assert_eq!(cands.keys().collect::<Vec<_>>(), ["V"]);
        let c = ComposeFile::parse(
            Path::new("/c.yaml"),
            "services:\n  a:\n    image: app:${V:-1}\n  db:\n    image: postgres:${PG:-16}-alpine\n  m:\n    image: mariadb:${M:-11}\n",
            Path::new("/"),
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            locate::version_candidates(&c).keys().collect::<Vec<_>>(),
            ["V"]
        );
    }

    #[test]
    fn specivo_like_stack() {
        let d = detect_in(
            "x-app: &app\n  image: reg/specivo:${SPECIVO_VERSION:-latest}\n  depends_on: [db]\nservices:\n  db:\n    image: reg/postgres:15\n    environment:\n      POSTGRES_USER: specivo\n      POSTGRES_PASSWORD: ${PW}\n  api:\n    <<: *app\n    ports: [\"127.0.0.1:9933:8000\"]\n    volumes: [\"./data:/data\", \"/var/run/docker.sock:/var/run/docker.sock\"]\n    healthcheck: {test: [\"CMD\", \"true\"]}\n  worker:\n    <<: *app\n    volumes: [\"./data:/data\"]\n",
            "SPECIVO_VERSION=0.1.9\nPW=secret\n",
        )
        .unwrap();
        assert_eq!(d.version.variable, "SPECIVO_VERSION");
        assert_eq!(d.version.value.as_deref(), Some("0.1.9"));
        assert_eq!(d.version.source, ".env line 1");
        assert_eq!(d.upgraded, ["api", "worker"]);
        let db = d.database.unwrap();
        assert_eq!(
            (
                db.service.as_str(),
                db.kind,
                db.user.as_str(),
                db.name.as_str(),
                db.port
            ),
            ("db", DbKind::Postgres, "specivo", "specivo", 5432)
        );
        assert_eq!(db.password.expose(), "secret");
        assert_eq!(d.data.len(), 1);
        assert_eq!(d.data[0].source, "/app/data");
        assert_eq!(d.data[0].services, ["api", "worker"]);
        assert_eq!(d.smoke[0].url, "http://127.0.0.1:9933/");
        assert_eq!(d.with_healthcheck, ["api"]);
    }

    #[test]
    fn version_variable_problems_are_explained() {
        // A literal tag not on any file hoist was given to edit: said, not an error.
        let d = detect_in("services:\n  a:\n    image: app:1.0\n", "").unwrap();
        assert!(
            matches!(&d.version.site, Site::Unknown { reason } if reason.contains("not written")),
            "{:?}",
            d.version.site
        );
        assert_eq!(d.upgraded, ["a"]);
        let d = detect_in(
            "services:\n  a:\n    image: app:${A}\n  b:\n    image: b:${B}\n",
            "",
        )
        .unwrap();
        assert!(
            matches!(&d.version.site, Site::Unknown { reason } if reason.contains("several variables")),
            "{:?}",
            d.version.site
        );
        let d = detect_in(
            "services:\n  a:\n    image: app:${A}\n  b:\n    image: b:${B}\n",
            "B=2\n",
        )
        .unwrap();
        assert_eq!(d.version.variable, "B");
        let d = detect_in("services:\n  a:\n    image: app:${A:-7}\n", "").unwrap();
        assert_eq!(d.version.value.as_deref(), Some("7"));
        assert!(d.version.source.contains("default"));
    }

    #[test]
    fn the_database_the_app_names_is_dumped_and_another_beside_it_is_named() {
        let d = detect_in(
            "services:\n  app:\n    image: app:${V}\n    environment: {DATABASE_URL: 'postgresql://u:p@pg:5432/app'}\n  pg:\n    image: local/store:15\n    environment: {POSTGRES_PASSWORD: p}\n  mongodb:\n    image: mongo:7\n    environment: {MONGO_INITDB_ROOT_USERNAME: root}\n",
            "V=1\n",
        )
        .unwrap();
        let db = d.database.unwrap();
        assert_eq!((db.service.as_str(), db.kind), ("pg", DbKind::Postgres));
        assert!(d.unsupported_database.is_none());
        assert_eq!(d.beside.len(), 1);
        assert_eq!(d.beside[0].service, "mongodb");
        assert_eq!(d.beside[0].kind.as_deref(), Some("MongoDB"));
        // Alone, the database hoist cannot dump refuses the upgrade (unsupported).
        let d = detect_in(
            "services:\n  app:\n    image: app:${V}\n  mongodb:\n    image: mongo:7\n",
            "V=1\n",
        )
        .unwrap();
        assert_eq!(d.unsupported_database.unwrap().service, "mongodb");
    }

    #[test]
    fn a_service_the_app_names_as_its_database_is_never_passed_over_for_want_of_a_kind() {
        // The app reaches it over ws://, its image and command say nothing: a database of no
        // known kind, refused, not "a service beside the app".
        let d = detect_in(
            "services:\n  app:\n    image: app:${V}\n    environment: {DB_URL: 'ws://store:8000/rpc'}\n  store:\n    image: acme/store:3\n    volumes: ['data:/data']\nvolumes: {data: {}}\n",
            "V=1\n",
        )
        .unwrap();
        let seen = d.unsupported_database.unwrap();
        assert_eq!(
            (seen.service.as_str(), seen.kind.as_str(), seen.how.as_str()),
            ("store", "an unknown kind", "the app's DB_URL")
        );
        // Another setting naming a service (an API the app calls) does not make it one.
        let d = detect_in(
            "services:\n  app:\n    image: app:${V}\n    environment: {SEARCH_API: 'http://search:7700'}\n  search:\n    image: acme/search:1\n    volumes: ['idx:/idx']\nvolumes: {idx: {}}\n",
            "V=1\n",
        )
        .unwrap();
        assert!(d.unsupported_database.is_none());
    }

    #[test]
    fn a_tls_port_is_checked_as_https_and_ssh_not_at_all() {
        let d = detect_in(
            "services:\n  app:\n    image: app:${V}\n    ports: ['8080:80', '8443:9443', '2222:22', '127.0.0.1:4443:443']\n",
            "V=1\n",
        )
        .unwrap();
        let checks: Vec<(&str, bool)> = d
            .smoke
            .iter()
            .map(|s| (s.url.as_str(), s.allow_self_signed))
            .collect();
        assert_eq!(
            checks,
            [
                ("http://127.0.0.1:8080/", false),
                ("https://127.0.0.1:8443/", true),
                ("https://127.0.0.1:4443/", true),
            ]
        );
        assert_eq!(
            d.smoke[0].words(),
            "GET http://127.0.0.1:8080/ expecting <400"
        );
        assert_eq!(
            d.smoke[1].words(),
            "GET https://127.0.0.1:8443/ expecting <400, any certificate accepted"
        );
    }

    #[test]
    fn mariadb_credentials() {
        let d = detect_in(
            "services:\n  app:\n    image: app:${V}\n  db:\n    image: mariadb:10.11\n    environment: [MARIADB_DATABASE=app, MARIADB_ROOT_PASSWORD=rootpw]\n",
            "V=1\n",
        )
        .unwrap();
        let db = d.database.unwrap();
        assert_eq!(
            (db.kind, db.user.as_str(), db.name.as_str(), db.port),
            (DbKind::Mysql, "root", "app", 3306)
        );
        assert_eq!(db.password.expose(), "rootpw");
    }
}
