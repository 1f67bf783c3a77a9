//! Optional settings, for what detection cannot know: an `x-hoist:` block of the compose file,
//! or `hoist.yaml` beside it. Where both set the same setting, `hoist.yaml` wins (it is the file a
//! user edits for hoist alone), setting by setting: `timeouts.ready` in hoist.yaml leaves
//! x-hoist's `timeouts.stop` standing; a list (`services`, `data`, `smoke`, `logs.failure`) is
//! replaced whole. A bad setting names the file, the key and what was expected.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::check_settings;

#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub version_variable: Option<String>,
    /// The services an upgrade recreates.
    pub services: Option<Vec<String>>,
    pub database: Option<DatabaseSetting>,
    pub backup_dir: Option<PathBuf>,
    pub backup_keep: Option<u32>,
    /// Paths or volume names to archive, replacing the detected data mounts.
    pub data: Option<Vec<String>>,
    /// Services beside the app whose data the backup leaves out (an index that can be rebuilt).
    pub leave_out: Option<Vec<String>>,
    pub log_ready: Option<regex::Regex>,
    pub log_failure: Vec<regex::Regex>,
    pub smoke: Option<Vec<SmokeCheck>>,
    /// `checks:` beyond HTTP: a WebSocket exchange, a command in a service, metrics rules.
    pub app_checks: Option<Vec<crate::stack::checks::AppCheck>>,
    pub timeout_ready: Option<Duration>,
    pub timeout_stop: Option<Duration>,
    pub timeout_pull: Option<Duration>,
    /// How long a run waits for the Docker engine to answer again after it went away.
    pub timeout_engine: Option<Duration>,
    /// Without a healthcheck, a service is ready after running this long without a restart.
    pub ready_after: Option<Duration>,
    /// After the upgrade verified, how long the app is watched before it is called done.
    pub observe: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseSetting {
    pub service: Option<String>,
    /// postgres, mysql, mariadb, sqlite, surrealdb or command.
    pub kind: Option<String>,
    pub user: Option<String>,
    /// The variable (in the db service's environment) that holds the password.
    pub password_variable: Option<String>,
    pub name: Option<String>,
    /// SQLite: the database file's path inside the service's container.
    pub path: Option<String>,
    /// `database: none`: the app keeps nothing in a database worth a dump.
    pub none: bool,
    /// `kind: command`: the argv that writes the whole database to stdout, run in the service.
    pub dump: Option<Vec<String>>,
    /// `kind: command`: the argv that reads a dump on stdin and replaces the database with it.
    pub restore: Option<Vec<String>>,
    /// `kind: command`: the argv that prints the schema's revision (what changes when the app
    /// migrates).
    pub revision: Option<Vec<String>>,
    /// SurrealDB: the namespace that holds the database (`name`).
    pub namespace: Option<String>,
    /// SurrealDB: a SurrealQL query that returns the schema's revision.
    pub revision_query: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeCheck {
    pub url: String,
    pub method: String,
    pub expect_status: StatusExpectation,
    pub expect_body: Option<String>,
    /// https:// only: do not verify the certificate, so a self-signed one, or one for another
    /// host name, is accepted.
    pub allow_self_signed: bool,
    /// Request headers (name, value), e.g. a token the page needs.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusExpectation {
    Exactly(u16),
    Below(u16),
    Range(u16, u16),
}

impl StatusExpectation {
    pub fn accepts(&self, status: u16) -> bool {
        match *self {
            StatusExpectation::Exactly(s) => status == s,
            StatusExpectation::Below(s) => status < s,
            StatusExpectation::Range(a, b) => (a..=b).contains(&status),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: setting `{key}`: expected {expected}, found {found}")]
pub struct SettingError {
    pub file: String,
    pub key: String,
    pub expected: String,
    pub found: String,
}

/// Where a block of settings came from, for messages: `x-hoist` in the compose file or hoist.yaml.
pub struct Source<'a> {
    pub file: &'a Path,
    /// The key prefix as the user wrote it: `x-hoist.` in a compose file, empty in hoist.yaml.
    pub prefix: &'a str,
}

pub(super) fn found(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "nothing".into(),
        Value::Array(items) if items.is_empty() => "an empty list".into(),
        Value::Array(_) => "a list".into(),
        // The keys name a misspelt one (`websockt:`); a key is a name, never a secret.
        Value::Object(m) if m.is_empty() => "an empty mapping".into(),
        Value::Object(m) => {
            let keys: Vec<&str> = m.keys().map(String::as_str).take(6).collect();
            let more = if m.len() > keys.len() { ", …" } else { "" };
            format!("a mapping with keys {}{more}", keys.join(", "))
        }
        other => other.to_string(),
    }
}

impl Settings {
    /// Reads one block over `self`, which holds what an earlier block set (hoist.yaml applies
    /// over x-hoist).
    pub fn apply(mut self, block: &Value, source: &Source<'_>) -> Result<Settings, SettingError> {
        let bad = |key: &str, expected: &str, v: &Value| SettingError {
            file: source.file.display().to_string(),
            key: format!("{}{key}", source.prefix),
            expected: expected.to_string(),
            found: found(v),
        };
        let map = match block {
            Value::Null => return Ok(self),
            Value::Object(m) => m,
            other => return Err(bad("", "a mapping of settings", other).trim_key()),
        };
        let string = |key: &str, v: &Value| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(key, "a string", v))
        };
        let strings = |key: &str, v: &Value| -> Result<Vec<String>, SettingError> {
            match v {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| string(&format!("{key}[{i}]"), item))
                    .collect(),
                other => Err(bad(key, "a list of strings", other)),
            }
        };
        let duration = |key: &str, v: &Value| {
            parse_duration(v)
                .ok_or_else(|| bad(key, "a duration like \"90s\" or \"2m\" (at most a week)", v))
        };
        let regex = |key: &str, v: &Value| -> Result<regex::Regex, SettingError> {
            let s = string(key, v)?;
            regex::Regex::new(&s).map_err(|e| {
                bad(
                    key,
                    &format!(
                        "a valid regular expression ({})",
                        first_line(&e.to_string())
                    ),
                    v,
                )
            })
        };
        let sub = |key: &str, v: &Value| -> Result<serde_json::Map<String, Value>, SettingError> {
            match v {
                Value::Object(m) => Ok(m.clone()),
                other => Err(bad(key, "a mapping", other)),
            }
        };
        let unknown = |key: &str, known: &[&str], v: &Value| {
            bad(
                key,
                &format!("one of the known settings ({})", known.join(", ")),
                v,
            )
        };
        let say = check_settings::Say {
            file: source.file.display().to_string(),
            prefix: source.prefix,
        };
        // `smoke:` and the HTTP checks of `checks:` are one list: a block that gives either
        // replaces the detected checks (and an earlier block's) with both of its own.
        let mut block_smoke: Option<Vec<SmokeCheck>> = None;
        let mut block_checks_http: Option<Vec<SmokeCheck>> = None;
        for (key, v) in map {
            match key.as_str() {
                "version_variable" => self.version_variable = Some(string(key, v)?),
                "services" => self.services = Some(strings(key, v)?),
                "data" => self.data = Some(strings(key, v)?),
                "leave_out" => self.leave_out = Some(strings(key, v)?),
                "ready_after" => self.ready_after = Some(duration(key, v)?),
                "observe" => self.observe = Some(duration(key, v)?),
                "database" if v.as_str() == Some("none") => {
                    self.database = Some(DatabaseSetting {
                        none: true,
                        ..DatabaseSetting::default()
                    });
                }
                "database" => {
                    const KNOWN: [&str; 11] = [
                        "service",
                        "kind",
                        "user",
                        "password_variable",
                        "name",
                        "path",
                        "dump",
                        "restore",
                        "revision",
                        "namespace",
                        "revision_query",
                    ];
                    // Field by field over what an earlier block set.
                    let mut db = self.database.clone().unwrap_or_default();
                    for (k, v) in sub(key, v)? {
                        let full = format!("database.{k}");
                        // A misspelt key is named as one, whatever its value.
                        if !KNOWN.contains(&k.as_str()) {
                            return Err(unknown(&full, &KNOWN, &Value::String(k.clone())));
                        }
                        let argv = |v: &Value| -> Result<Vec<String>, SettingError> {
                            let list = strings(&full, v)?;
                            if list.is_empty() || list[0].trim().is_empty() {
                                return Err(bad(
                                    &full,
                                    "a command as a list of strings, program first (e.g. [\"sh\", \"-c\", \"...\"])",
                                    v,
                                ));
                            }
                            Ok(list)
                        };
                        match k.as_str() {
                            "dump" => {
                                db.dump = Some(argv(&v)?);
                                continue;
                            }
                            "restore" => {
                                db.restore = Some(argv(&v)?);
                                continue;
                            }
                            "revision" => {
                                db.revision = Some(argv(&v)?);
                                continue;
                            }
                            _ => {}
                        }
                        let s = string(&full, &v)?;
                        match k.as_str() {
                            "service" => db.service = Some(s),
                            "kind" => {
                                if ![
                                    "postgres",
                                    "mysql",
                                    "mariadb",
                                    "sqlite",
                                    "surrealdb",
                                    "command",
                                ]
                                .contains(&s.as_str())
                                {
                                    return Err(bad(
                                        &full,
                                        "postgres, mysql, mariadb, sqlite, surrealdb or command",
                                        &v,
                                    ));
                                }
                                db.kind = Some(s);
                            }
                            "user" => db.user = Some(s),
                            "password_variable" => db.password_variable = Some(s),
                            "name" => db.name = Some(s),
                            "path" => db.path = Some(s),
                            "namespace" => db.namespace = Some(s),
                            "revision_query" => db.revision_query = Some(s),
                            _ => return Err(unknown(&full, &KNOWN, &Value::String(k.clone()))),
                        }
                    }
                    self.database = Some(db);
                }
                "backup" => {
                    for (k, v) in sub(key, v)? {
                        let full = format!("backup.{k}");
                        match k.as_str() {
                            "dir" => {
                                let dir = PathBuf::from(string(&full, &v)?);
                                // Relative to the file that says it.
                                let base = source.file.parent().unwrap_or(Path::new("."));
                                self.backup_dir = Some(if dir.is_absolute() {
                                    dir
                                } else {
                                    base.join(dir)
                                });
                            }
                            "keep" => {
                                self.backup_keep = Some(
                                    v.as_u64()
                                        .filter(|n| *n >= 1 && *n <= 1000)
                                        .map(|n| n as u32)
                                        .ok_or_else(|| {
                                            bad(
                                                &full,
                                                "a whole number of backups to keep, at least 1",
                                                &v,
                                            )
                                        })?,
                                )
                            }
                            _ => {
                                return Err(unknown(
                                    &full,
                                    &["dir", "keep"],
                                    &Value::String(k.clone()),
                                ));
                            }
                        }
                    }
                }
                "logs" => {
                    for (k, v) in sub(key, v)? {
                        let full = format!("logs.{k}");
                        match k.as_str() {
                            "ready" => self.log_ready = Some(regex(&full, &v)?),
                            "failure" => {
                                let items = match &v {
                                    Value::String(_) => vec![v.clone()],
                                    Value::Array(items) => items.clone(),
                                    other => {
                                        return Err(bad(
                                            &full,
                                            "a regular expression or a list of them",
                                            other,
                                        ));
                                    }
                                };
                                self.log_failure = items
                                    .iter()
                                    .enumerate()
                                    .map(|(i, item)| regex(&format!("{full}[{i}]"), item))
                                    .collect::<Result<_, _>>()?;
                            }
                            _ => {
                                return Err(unknown(
                                    &full,
                                    &["ready", "failure"],
                                    &Value::String(k.clone()),
                                ));
                            }
                        }
                    }
                }
                "timeouts" => {
                    for (k, v) in sub(key, v)? {
                        let full = format!("timeouts.{k}");
                        let d = duration(&full, &v)?;
                        match k.as_str() {
                            "ready" => self.timeout_ready = Some(d),
                            "stop" => self.timeout_stop = Some(d),
                            "pull" => self.timeout_pull = Some(d),
                            "engine" => self.timeout_engine = Some(d),
                            _ => {
                                return Err(unknown(
                                    &full,
                                    &["ready", "stop", "pull", "engine"],
                                    &Value::String(k.clone()),
                                ));
                            }
                        }
                    }
                }
                "smoke" => {
                    let Value::Array(items) = v else {
                        return Err(bad(key, "a list of checks, each with a `url:`", v));
                    };
                    let mut checks = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let at = format!("smoke[{i}]");
                        checks.push(check_settings::http(&at, &sub(&at, item)?, "url", &say)?);
                    }
                    block_smoke = Some(checks);
                }
                "checks" => {
                    let (http, app) = check_settings::checks(key, v, &say)?;
                    // Only HTTP entries replace the detected HTTP checks.
                    block_checks_http = (!http.is_empty()).then_some(http);
                    self.app_checks = Some(app);
                }
                _ => {
                    return Err(unknown(
                        key,
                        &[
                            "version_variable",
                            "services",
                            "database",
                            "backup",
                            "data",
                            "leave_out",
                            "logs",
                            "smoke",
                            "checks",
                            "timeouts",
                            "ready_after",
                            "observe",
                        ],
                        &Value::String(key.clone()),
                    ));
                }
            }
        }
        if block_smoke.is_some() || block_checks_http.is_some() {
            self.smoke = Some(
                block_smoke
                    .into_iter()
                    .chain(block_checks_http)
                    .flatten()
                    .collect(),
            );
        }
        Ok(self)
    }
}

impl Settings {
    /// The services these settings name must exist in the compose file (`known`). Call it on
    /// the settings of one block, so the error names the file that says it.
    pub fn check_services(&self, known: &[&str], source: &Source<'_>) -> Result<(), SettingError> {
        let bad = |key: String, service: &str| SettingError {
            file: source.file.display().to_string(),
            key: format!("{}{key}", source.prefix),
            expected: format!(
                "the name of a service of the compose file ({})",
                known.join(", ")
            ),
            found: format!("{service:?}"),
        };
        for (i, service) in self.services.iter().flatten().enumerate() {
            if !known.contains(&service.as_str()) {
                return Err(bad(format!("services[{i}]"), service));
            }
        }
        for (i, service) in self.leave_out.iter().flatten().enumerate() {
            if !known.contains(&service.as_str()) {
                return Err(bad(format!("leave_out[{i}]"), service));
            }
        }
        for check in self.app_checks.iter().flatten() {
            if let crate::stack::checks::AppCheck::Exec(e) = check
                && !known.contains(&e.service.as_str())
            {
                let key = format!("checks (exec: {}).service", e.command.join(" "));
                return Err(bad(key, &e.service));
            }
        }
        if let Some(service) = self.database.as_ref().and_then(|d| d.service.as_deref())
            && !known.contains(&service)
        {
            return Err(bad("database.service".into(), service));
        }
        Ok(())
    }
}

impl Settings {
    /// `kind: command` takes its three commands and a service; the commands belong to that kind
    /// alone. Checked on the settings merged from every file (`source` the last that set them).
    pub fn check_database(&self, source: &Source<'_>) -> Result<(), SettingError> {
        let Some(db) = &self.database else {
            return Ok(());
        };
        let err = |key: &str, expected: &str, found: &str| SettingError {
            file: source.file.display().to_string(),
            key: format!("{}database.{key}", source.prefix),
            expected: expected.to_string(),
            found: found.to_string(),
        };
        let command = db.kind.as_deref() == Some("command");
        if command {
            let why = [
                (
                    "service",
                    db.service.is_some(),
                    "the service whose container runs the commands",
                ),
                (
                    "dump",
                    db.dump.is_some(),
                    "the command that writes the whole database to its standard output (e.g. [surreal, export, ...])",
                ),
                (
                    "restore",
                    db.restore.is_some(),
                    "the command that reads such a dump on its standard input and replaces the database with it",
                ),
                (
                    "revision",
                    db.revision.is_some(),
                    "a command that prints the schema's revision (e.g. the last applied migration), so that a rollback can tell whether the upgrade changed the database; one that prints something new every time makes every rollback restore",
                ),
            ];
            for (key, given, what) in why {
                if !given {
                    return Err(err(key, &format!("with kind: command, {what}"), "nothing"));
                }
            }
        } else {
            for (key, given) in [
                ("dump", db.dump.is_some()),
                ("restore", db.restore.is_some()),
                ("revision", db.revision.is_some()),
            ] {
                if given {
                    return Err(err(
                        key,
                        "only with kind: command (hoist dumps and restores the built-in kinds itself)",
                        &format!("kind {}", db.kind.as_deref().unwrap_or("unset")),
                    ));
                }
            }
        }
        // SurrealDB's keys, where the kind is SurrealDB or left to detection.
        if !matches!(db.kind.as_deref(), None | Some("surrealdb")) {
            for (key, given) in [
                ("namespace", db.namespace.is_some()),
                ("revision_query", db.revision_query.is_some()),
            ] {
                if given {
                    return Err(err(
                        key,
                        "only for SurrealDB (kind: surrealdb)",
                        &format!("kind {}", db.kind.as_deref().unwrap_or("unset")),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl SettingError {
    fn trim_key(mut self) -> Self {
        self.key = self.key.trim_end_matches('.').to_string();
        if self.key.is_empty() {
            self.key = "(top level)".into();
        }
        self
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

/// `90s`, `2m`, `1h`, `500ms`, `1m30s`, or a plain number of seconds.
pub fn parse_duration(v: &Value) -> Option<Duration> {
    let total = if let Some(n) = v.as_u64() {
        Duration::from_secs(n)
    } else {
        parse_duration_text(v.as_str()?.trim())?
    };
    // Longer than any wait hoist makes sense of; also keeps `Instant + timeout` from overflowing.
    (total <= MAX_DURATION).then_some(total)
}

/// The longest duration a setting may give: a week.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

fn parse_duration_text(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" | "" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
    }
    Some(total)
}

pub(super) fn parse_status(v: &Value) -> Option<StatusExpectation> {
    let in_range = |n: u64| (100..=599).contains(&n).then_some(n as u16);
    if let Some(n) = v.as_u64() {
        return in_range(n).map(StatusExpectation::Exactly);
    }
    let s = v.as_str()?.trim();
    if let Some(n) = s.strip_prefix('<') {
        return in_range(n.trim().parse().ok()?).map(StatusExpectation::Below);
    }
    if let Some((a, b)) = s.split_once('-') {
        let (a, b) = (
            in_range(a.trim().parse().ok()?)?,
            in_range(b.trim().parse().ok()?)?,
        );
        return (a <= b).then_some(StatusExpectation::Range(a, b));
    }
    in_range(s.parse().ok()?).map(StatusExpectation::Exactly)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(v: Value) -> Result<Settings, SettingError> {
        Settings::default().apply(
            &v,
            &Source {
                file: Path::new("/app/compose.yaml"),
                prefix: "x-hoist.",
            },
        )
    }

    #[test]
    fn reads_every_setting() {
        let s = apply(json!({
            "version_variable": "APP_VERSION",
            "services": ["api", "worker"],
            "database": {"service": "db", "kind": "postgres", "user": "app"},
            "backup": {"dir": "../backups", "keep": 3},
            "logs": {"ready": "startup complete", "failure": ["Traceback"]},
            "smoke": [{"url": "http://127.0.0.1:9933/health", "expect_status": 200, "expect_body": "ok"}],
            "timeouts": {"ready": "2m", "stop": "30s", "engine": "45s"},
            "ready_after": "1m30s",
        }))
        .unwrap();
        assert_eq!(s.version_variable.as_deref(), Some("APP_VERSION"));
        assert_eq!(s.backup_dir, Some(PathBuf::from("/app/../backups")));
        assert_eq!(s.timeout_ready, Some(Duration::from_secs(120)));
        assert_eq!(s.timeout_engine, Some(Duration::from_secs(45)));
        assert_eq!(s.ready_after, Some(Duration::from_secs(90)));
        let smoke = s.smoke.unwrap();
        assert!(smoke[0].expect_status.accepts(200) && !smoke[0].expect_status.accepts(302));
        assert!(s.log_failure[0].is_match("Traceback (most recent call last):"));
    }

    #[test]
    fn http_checks_replace_the_detected_ones_and_the_others_add_to_them() {
        let ws = json!({"websocket": "ws://127.0.0.1:1/ws", "expect": "welcome"});
        // Only a WebSocket check: the detected HTTP checks stay (no `smoke` set).
        let s = apply(json!({"checks": [ws.clone()]})).unwrap();
        assert!(s.smoke.is_none());
        assert_eq!(s.app_checks.map(|c| c.len()), Some(1));
        // `smoke:` and `http:` entries of one block are one list.
        let s = apply(json!({
            "smoke": [{"url": "http://127.0.0.1:1/a"}],
            "checks": [{"http": "http://127.0.0.1:1/b"}, ws]
        }))
        .unwrap();
        let urls: Vec<String> = s.smoke.unwrap().into_iter().map(|c| c.url).collect();
        assert_eq!(urls, ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]);
    }

    #[test]
    fn bad_settings_name_file_key_and_expectation() {
        let e = apply(json!({"timeouts": {"ready": "soon"}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/app/compose.yaml: setting `x-hoist.timeouts.ready`: expected a duration like \"90s\" or \"2m\" (at most a week), found \"soon\""
        );
        let e = apply(json!({"versoin_variable": "X"})).unwrap_err();
        assert_eq!(e.key, "x-hoist.versoin_variable");
        assert!(e.expected.contains("version_variable"), "{e}");
        let e = apply(json!({"logs": {"ready": "(unclosed"}})).unwrap_err();
        assert!(e.to_string().contains("valid regular expression"), "{e}");
        let e = apply(json!({"database": {"kind": "oracle"}})).unwrap_err();
        assert_eq!(e.key, "x-hoist.database.kind");
        let e = apply(json!({"smoke": [{"method": "GET"}]})).unwrap_err();
        assert_eq!(e.key, "x-hoist.smoke[0].url");
        // Refused here, not at every upgrade by the smoke runner.
        let e = apply(json!({"smoke": [{"url": "ftp://127.0.0.1/"}]})).unwrap_err();
        assert_eq!(e.key, "x-hoist.smoke[0].url");
        assert!(e.expected.contains("https://…"), "{e}");
        let ok =
            apply(json!({"smoke": [{"url": "https://127.0.0.1/", "allow_self_signed": true}]}))
                .unwrap();
        assert!(ok.smoke.unwrap()[0].allow_self_signed);
        let e = apply(json!("just a string")).unwrap_err();
        assert_eq!(e.key, "x-hoist");
    }

    #[test]
    fn a_command_database_takes_its_three_commands_and_no_other_kind_does() {
        let source = Source {
            file: Path::new("/app/hoist.yaml"),
            prefix: "",
        };
        let full = json!({"database": {"service": "db", "kind": "command",
            "dump": ["surreal", "export", "-"], "restore": ["surreal", "import", "-"],
            "revision": ["sh", "-c", "cat /data/rev"]}});
        let s = apply(full).unwrap();
        assert!(s.check_database(&source).is_ok());
        let db = s.database.unwrap();
        assert_eq!(db.dump.unwrap(), ["surreal", "export", "-"]);
        // Each missing one is named, with what it is for.
        let s = apply(json!({"database": {"service": "db", "kind": "command",
            "dump": ["d"], "restore": ["r"]}}))
        .unwrap();
        let e = s.check_database(&source).unwrap_err();
        assert_eq!(e.key, "database.revision");
        assert!(e.expected.contains("rollback can tell"), "{e}");
        let s = apply(json!({"database": {"kind": "command", "dump": ["d"]}})).unwrap();
        assert_eq!(
            s.check_database(&source).unwrap_err().key,
            "database.service"
        );
        // A command for a kind hoist dumps itself is a mistake, said as one.
        let s = apply(json!({"database": {"kind": "postgres", "dump": ["pg_dump"]}})).unwrap();
        let e = s.check_database(&source).unwrap_err();
        assert_eq!(e.key, "database.dump");
        assert!(e.expected.contains("only with kind: command"), "{e}");
        // A command is a non-empty list of strings.
        let e = apply(json!({"database": {"kind": "command", "restor": ["r"]}})).unwrap_err();
        assert_eq!(e.key, "x-hoist.database.restor");
        assert!(e.expected.contains("restore"), "{e}");
        for bad in [json!("pg_dump -U x"), json!([]), json!([""]), json!([1])] {
            let e = apply(json!({"database": {"kind": "command", "dump": bad}})).unwrap_err();
            assert!(e.key.starts_with("x-hoist.database.dump"), "{e}");
        }
    }

    #[test]
    fn named_services_must_exist() {
        let source = Source {
            file: Path::new("/app/hoist.yaml"),
            prefix: "",
        };
        let known = ["api", "db"];
        let s = Settings::default()
            .apply(&json!({"services": ["api", "apii"]}), &source)
            .unwrap();
        let e = s.check_services(&known, &source).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/app/hoist.yaml: setting `services[1]`: expected the name of a service of the compose file (api, db), found \"apii\""
        );
        let s = Settings::default()
            .apply(&json!({"database": {"service": "postgres"}}), &source)
            .unwrap();
        let e = s.check_services(&known, &source).unwrap_err();
        assert_eq!(e.key, "database.service");
        let s = Settings::default()
            .apply(
                &json!({"services": ["api"], "database": {"service": "db"}}),
                &source,
            )
            .unwrap();
        assert!(s.check_services(&known, &source).is_ok());
    }

    #[test]
    fn durations_and_statuses() {
        assert_eq!(
            parse_duration(&json!("500ms")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration(&json!(45)), Some(Duration::from_secs(45)));
        assert_eq!(
            parse_duration(&json!("1h")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(parse_duration(&json!("2 minutes")), None);
        // Overflowing or absurd durations are refused, never wrapped or panicking.
        assert_eq!(parse_duration(&json!("9999999999999999999h")), None);
        assert_eq!(parse_duration(&json!("18446744073709551615s1s")), None);
        assert_eq!(parse_duration(&json!(u64::MAX)), None);
        assert_eq!(parse_duration(&json!("8d")), None);
        assert_eq!(parse_duration(&json!("169h")), None);
        assert_eq!(
            parse_duration(&json!("168h")),
            Some(Duration::from_secs(7 * 24 * 3600))
        );
        assert_eq!(
            parse_status(&json!("<400")),
            Some(StatusExpectation::Below(400))
        );
        assert_eq!(
            parse_status(&json!("200-299")),
            Some(StatusExpectation::Range(200, 299))
        );
        assert_eq!(parse_status(&json!(999)), None);
    }
}
