//! SurrealDB, spoken to by hoist itself over the server's HTTP API (`/sql`, `/export`,
//! `/import`): the official image holds the server and nothing else (no shell, no client), so
//! nothing is run inside the container. The namespace and database go in the `Surreal-NS` and
//! `Surreal-DB` headers, the user in basic auth.
//!
//! What a probe reads: `INFO FOR DB` and each table's `INFO FOR TABLE` (the fingerprint: table,
//! field, index and event definitions), each table's record count, and the revision: the
//! settings' query, or else the migrations table an app keeps (`migration`, `migrations`, …).
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{DbProbe, MigrationFramework, Migrations, SchemaColumn, Secret, TableRows};

/// One request longer than this is stuck, not slow (an export or import is not bounded: it
/// takes as long as the data does, and is watched by its progress instead).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Tables in which apps record the migrations they applied, by the names they give them.
const MIGRATION_TABLES: [&str; 7] = [
    "migration",
    "migrations",
    "_migrations",
    "__migrations",
    "schema_migrations",
    "_migration",
    "schema_migration",
];

/// Why no write is counted, said where a rollback would say "nothing was written".
pub const NO_TALLY: &str = "SurrealDB keeps no write counters that hoist can read, so it cannot count what was written to it";

/// Which of the namespace and database a request names. A server may define a namespace or
/// database on first use, so the checks that they exist name neither, or only the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Namespace,
    Database,
}

/// Where a SurrealDB server is and what hoist reads in it.
#[derive(Debug, Clone)]
pub struct SurrealTarget {
    /// `http://ip:port`.
    pub base: String,
    pub user: String,
    pub password: Secret,
    pub namespace: String,
    pub database: String,
    /// The settings' SurrealQL query that returns the schema's revision.
    pub revision_query: Option<String>,
}

impl SurrealTarget {
    fn client(&self) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("hoist could not make an HTTP client: {e}"))
    }

    fn request(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        level: Level,
    ) -> reqwest::RequestBuilder {
        let mut r = client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(self.password.expose()))
            .header("Accept", "application/json");
        if level != Level::Root {
            r = r.header("Surreal-NS", &self.namespace);
        }
        if level == Level::Database {
            r = r.header("Surreal-DB", &self.database);
        }
        r
    }

    /// What the server said when it refused, as one sentence.
    fn refused(&self, what: &str, status: reqwest::StatusCode, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let said: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let detail = ["information", "details", "description"]
            .iter()
            .find_map(|k| said.get(k).and_then(Value::as_str))
            .map(str::to_string)
            .unwrap_or_else(|| text.chars().take(200).collect());
        let detail = crate::redact::mask(detail.trim()).into_owned();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            format!(
                "SurrealDB at {} refused user {} ({what}: HTTP {}{}): the user and password hoist read are not the server's. Give them with x-hoist.database.user and password_variable",
                self.base,
                self.user,
                status.as_u16(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(", {detail}")
                }
            )
        } else {
            format!(
                "SurrealDB at {} answered {what} with HTTP {}{}",
                self.base,
                status.as_u16(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            )
        }
    }

    fn unreachable(&self, what: &str, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            format!(
                "SurrealDB at {} did not answer {what} within {}s",
                self.base,
                TIMEOUT.as_secs()
            )
        } else {
            format!(
                "hoist could not reach SurrealDB at {} ({what}): {e}",
                self.base
            )
        }
    }

    /// Runs SurrealQL; one result per statement. A statement the server refused is an error,
    /// with the server's words.
    pub async fn sql(&self, text: &str) -> Result<Vec<Value>, String> {
        self.sql_in(text, Level::Database).await
    }

    async fn sql_in(&self, text: &str, level: Level) -> Result<Vec<Value>, String> {
        let client = self.client()?;
        let resp = self
            .request(&client, reqwest::Method::POST, "/sql", level)
            .body(text.to_string())
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable("a query", &e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.unreachable("a query", &e))?;
        if !status.is_success() {
            return Err(self.refused("a query", status, &body));
        }
        let results: Vec<Value> = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "SurrealDB at {} answered a query with something other than its JSON results ({e})",
                self.base
            )
        })?;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            if r.get("status").and_then(Value::as_str) != Some("OK") {
                let why = r.get("result").map(value_text).unwrap_or_default();
                return Err(format!(
                    "SurrealDB refused {:?} in {}/{}: {}",
                    text.chars().take(120).collect::<String>(),
                    self.namespace,
                    self.database,
                    crate::redact::mask(&why)
                ));
            }
            out.push(r.get("result").cloned().unwrap_or(Value::Null));
        }
        Ok(out)
    }

    /// The server's version (`/version`), "" when it does not say.
    async fn version(&self) -> String {
        let Ok(client) = self.client() else {
            return String::new();
        };
        let answer = client
            .get(format!("{}/version", self.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default().trim().into(),
            _ => String::new(),
        }
    }

    /// Streams the database's export (`GET /export`) into `sink`; returns its size.
    pub async fn export(
        &self,
        sink: &mut (dyn FnMut(Bytes) -> std::io::Result<()> + Send),
    ) -> Result<u64, String> {
        let client = self.client()?;
        let resp = self
            .request(&client, reqwest::Method::GET, "/export", Level::Database)
            .send()
            .await
            .map_err(|e| self.unreachable("the export", &e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(self.refused("the export", status, &body));
        }
        let mut stream = resp.bytes_stream();
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                format!(
                    "the export from SurrealDB at {} broke off after {total} bytes: {e}",
                    self.base
                )
            })?;
            total += chunk.len() as u64;
            sink(chunk).map_err(|e| format!("the export could not be written: {e}"))?;
        }
        Ok(total)
    }

    /// Replaces the database with `body` (an export): removed, defined again empty, imported.
    /// An import into a database that is not empty keeps what is there and exits well, so the
    /// removal comes first; the caller has kept the database as an export before this.
    pub async fn replace(&self, body: reqwest::Body) -> Result<(), String> {
        let db = ident(&self.database);
        self.sql_in(
            &format!("REMOVE DATABASE IF EXISTS {db}; DEFINE DATABASE {db};"),
            Level::Namespace,
        )
        .await?;
        let client = self.client()?;
        let resp = self
            .request(&client, reqwest::Method::POST, "/import", Level::Database)
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable("the import", &e))?;
        let status = resp.status();
        let answer = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            return Err(self.refused("the import", status, &answer));
        }
        // Some servers answer 200 with a statement's error inside.
        if let Ok(Value::Array(results)) = serde_json::from_slice::<Value>(&answer)
            && let Some(bad) = results
                .iter()
                .find(|r| r.get("status").and_then(Value::as_str) == Some("ERR"))
        {
            return Err(format!(
                "SurrealDB at {} did not take the import: {}",
                self.base,
                crate::redact::mask(&bad.get("result").map(value_text).unwrap_or_default())
            ));
        }
        Ok(())
    }
}

/// An identifier as SurrealQL quotes it.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A result as one line of text: a string as it is, anything else as compact JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The keys of an `INFO FOR …` section, sorted, with their definitions.
fn section(info: &Value, key: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = info
        .get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), value_text(v))).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// The names an `INFO FOR …` answer lists under `key`, sorted.
fn names(info: &[Value], key: &str) -> Option<Vec<String>> {
    let map = info.first()?.get(key)?.as_object()?;
    let mut names: Vec<String> = map.keys().cloned().collect();
    names.sort();
    Some(names)
}

/// The namespace and database exist on the server. SurrealDB answers queries in a namespace or
/// database that does not exist as if it were empty, so a misnamed one would be backed up as
/// nothing, and every revision read as "no migrations table".
async fn check_exists(t: &SurrealTarget) -> Result<(), String> {
    let listed = |all: &[String]| {
        if all.is_empty() {
            "none".to_string()
        } else {
            all.join(", ")
        }
    };
    // Only a root user may list the namespaces; a namespace's own user is taken at its word.
    if let Ok(root) = t.sql_in("INFO FOR ROOT", Level::Root).await
        && let Some(all) = names(&root, "namespaces")
        && !all.contains(&t.namespace)
    {
        return Err(format!(
            "SurrealDB at {} has no namespace {:?} (it has: {}): hoist would back up nothing. Name the one the app uses with x-hoist.database.namespace (or the app's SURREAL_NS)",
            t.base,
            t.namespace,
            listed(&all)
        ));
    }
    let ns = t.sql_in("INFO FOR NS", Level::Namespace).await?;
    if let Some(all) = names(&ns, "databases")
        && !all.contains(&t.database)
    {
        return Err(format!(
            "SurrealDB at {} has no database {:?} in namespace {:?} (it has: {}): hoist would back up nothing. Name the one the app uses with x-hoist.database.name (or the app's SURREAL_DB)",
            t.base,
            t.database,
            t.namespace,
            listed(&all)
        ));
    }
    Ok(())
}

/// The database's revision alone (see `revision`), as `probe` reads it but without counting
/// every table's records: what a restore checks before and after it loads.
pub async fn current_revision(t: &SurrealTarget) -> Result<Option<Migrations>, String> {
    check_exists(t).await?;
    let info = t.sql("INFO FOR DB").await?;
    let tables = section(info.first().unwrap_or(&Value::Null), "tables");
    let names: Vec<&str> = tables.iter().map(|(n, _)| n.as_str()).collect();
    revision(t, &names).await
}

/// Reads the database: its schema's fingerprint, tables and record counts, and revision.
pub async fn probe(t: &SurrealTarget) -> Result<DbProbe, String> {
    check_exists(t).await?;
    let info = t.sql("INFO FOR DB").await?;
    let info = info.first().cloned().unwrap_or(Value::Null);
    let tables = section(&info, "tables");
    let mut hasher = Sha256::new();
    for key in ["tables", "functions", "params", "analyzers"] {
        for (name, definition) in section(&info, key) {
            hasher.update(format!("{key}\0{name}\0{definition}\n").as_bytes());
        }
    }
    let mut rows = Vec::with_capacity(tables.len());
    let mut columns = Vec::new();
    if !tables.is_empty() {
        // One request: each table's definitions and count.
        let text: String = tables
            .iter()
            .map(|(name, _)| {
                let t = ident(name);
                format!("INFO FOR TABLE {t}; SELECT count() AS n FROM {t} GROUP ALL;")
            })
            .collect();
        let results = t.sql(&text).await?;
        for (i, (name, _)) in tables.iter().enumerate() {
            let table_info = results.get(2 * i).cloned().unwrap_or(Value::Null);
            for key in ["fields", "indexes", "events"] {
                for (item, definition) in section(&table_info, key) {
                    hasher.update(format!("{name}\0{key}\0{item}\0{definition}\n").as_bytes());
                }
            }
            // Every record has its id: a table with no defined field is still seen as there.
            columns.push(SchemaColumn {
                table: name.clone(),
                name: "id".to_string(),
                data_type: "record".to_string(),
                nullable: false,
                has_default: true,
            });
            columns.extend(
                section(&table_info, "fields")
                    .iter()
                    .map(|(field, definition)| column(name, field, definition)),
            );
            let n = results
                .get(2 * i + 1)
                .and_then(|r| r.get(0))
                .and_then(|r| r.get("n"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            rows.push(TableRows {
                name: name.clone(),
                rows: n,
            });
        }
    }
    let names: Vec<&str> = tables.iter().map(|(n, _)| n.as_str()).collect();
    let migrations = revision(t, &names).await?;
    Ok(DbProbe {
        migrations,
        fingerprint: hex::encode(hasher.finalize()),
        tables: rows,
        size_bytes: 0,
        server_version: t.version().await,
        writes: Err(NO_TALLY.to_string()),
        columns: {
            columns.sort();
            columns
        },
        kept_aside: Vec::new(),
    })
}

/// A defined field as a column, from its definition (`DEFINE FIELD body ON document TYPE
/// option<string> DEFAULT '' …`), so that a rollback tells a removed or retyped field from an
/// added one as it does for SQL. A schemaless table's undefined fields are not seen.
fn column(table: &str, field: &str, definition: &str) -> SchemaColumn {
    let words: Vec<&str> = definition.split_whitespace().collect();
    let data_type = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("TYPE"))
        .and_then(|i| words.get(i + 1))
        .map_or("any", |t| *t)
        .to_string();
    let has_default = words
        .iter()
        .any(|w| w.eq_ignore_ascii_case("DEFAULT") || w.eq_ignore_ascii_case("VALUE"));
    SchemaColumn {
        table: table.to_string(),
        name: field.to_string(),
        nullable: data_type.starts_with("option<") || data_type == "any",
        data_type,
        has_default,
    }
}

/// The schema's revision: what the settings' query returns, or else the highest `version`
/// (or `name`) in the app's migrations table, or else how many records it holds. None when
/// there is neither a query nor such a table.
pub async fn revision(t: &SurrealTarget, tables: &[&str]) -> Result<Option<Migrations>, String> {
    if let Some(query) = &t.revision_query {
        let first = query_revision(t, query).await?;
        let again = query_revision(t, query).await?;
        if again != first {
            return Err(format!(
                "the revision query ({query}) returned {first:?}, then {again:?}: it returns something new each time, so hoist could never tell whether the database is as a backup has it. Give a query that returns the schema's revision (e.g. the last applied migration)"
            ));
        }
        return Ok(Some(Migrations {
            framework: MigrationFramework::Query,
            revision: first,
            applied: 0,
            dirty: false,
        }));
    }
    let Some(table) = MIGRATION_TABLES.iter().find(|m| tables.contains(m)) else {
        return Ok(None);
    };
    table_revision(t, table).await.map(Some)
}

/// What the settings' revision query returns: one value, as text.
async fn query_revision(t: &SurrealTarget, query: &str) -> Result<String, String> {
    let results = t.sql(query).await?;
    let mut last = results.last().cloned().unwrap_or(Value::Null);
    // `SELECT VALUE x … LIMIT 1` returns a list of one.
    while let Value::Array(items) = &last
        && items.len() == 1
    {
        last = items[0].clone();
    }
    if let Value::Array(items) = &last
        && items.len() > 1
    {
        return Err(format!(
            "the revision query ({query}) returned {} values in {}/{}: it must return one, the schema's revision (two at once can be a restore that loaded over a newer database); end it with LIMIT 1",
            items.len(),
            t.namespace,
            t.database
        ));
    }
    let text = match &last {
        Value::Array(a) if a.is_empty() => String::new(),
        other => value_text(other),
    };
    if text.trim().is_empty() {
        return Err(format!(
            "the revision query ({query}) returned nothing in {}/{}: it must return the schema's revision (e.g. the last applied migration)",
            t.namespace, t.database
        ));
    }
    Ok(text.trim().to_string())
}

/// The revision an app's migrations table holds.
async fn table_revision(t: &SurrealTarget, table: &str) -> Result<Migrations, String> {
    let records = t.sql(&format!("SELECT * FROM {}", ident(table))).await?;
    let records: Vec<Value> = records
        .first()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let applied = records.len() as u64;
    let revision = ["version", "name"]
        .iter()
        .find_map(|field| highest(&records, field))
        .unwrap_or_else(|| format!("{applied} applied"));
    Ok(Migrations {
        framework: MigrationFramework::Table,
        revision: format!("{table} {revision}"),
        applied,
        dirty: false,
    })
}

/// The highest value of `field` over records that all have it: numbers as numbers, anything
/// else as text.
fn highest(records: &[Value], field: &str) -> Option<String> {
    let values: Vec<&Value> = records
        .iter()
        .map(|r| r.get(field))
        .collect::<Option<_>>()?;
    if values.is_empty() {
        return None;
    }
    if let Some(numbers) = values
        .iter()
        .map(|v| v.as_f64())
        .collect::<Option<Vec<f64>>>()
    {
        return numbers
            .into_iter()
            .fold(None, |m: Option<f64>, n| Some(m.map_or(n, |m| m.max(n))))
            .map(|n| {
                if n.fract() == 0.0 {
                    format!("{}", n as i64)
                } else {
                    n.to_string()
                }
            });
    }
    values.iter().map(|v| value_text(v)).max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("main"), "`main`");
        assert_eq!(ident("a`b"), "`a\\`b`");
    }

    #[test]
    fn the_highest_version_is_the_revision() {
        let recs = vec![
            json!({"version": 2, "name": "b"}),
            json!({"version": 10, "name": "a"}),
        ];
        assert_eq!(highest(&recs, "version").as_deref(), Some("10"));
        assert_eq!(highest(&recs, "name").as_deref(), Some("b"));
        let partial = vec![json!({"version": 1}), json!({"name": "x"})];
        assert_eq!(highest(&partial, "version"), None);
        assert_eq!(highest(&[], "version"), None);
    }

    #[test]
    fn a_field_definition_is_read_as_a_column() {
        let c = column(
            "document",
            "body",
            "DEFINE FIELD body ON document TYPE string PERMISSIONS FULL",
        );
        assert_eq!(
            (c.data_type.as_str(), c.nullable, c.has_default),
            ("string", false, false)
        );
        let c = column(
            "document",
            "tags",
            "DEFINE FIELD tags ON document TYPE option<array<string>> DEFAULT [] PERMISSIONS FULL",
        );
        assert_eq!(
            (c.data_type.as_str(), c.nullable, c.has_default),
            ("option<array<string>>", true, true)
        );
        assert_eq!(column("t", "f", "DEFINE FIELD f ON t").data_type, "any");
    }

    #[test]
    fn sections_are_sorted() {
        let info = json!({"tables": {"b": "DEFINE TABLE b", "a": "DEFINE TABLE a"}});
        assert_eq!(
            section(&info, "tables"),
            vec![
                ("a".to_string(), "DEFINE TABLE a".to_string()),
                ("b".to_string(), "DEFINE TABLE b".to_string())
            ]
        );
        assert!(section(&info, "fields").is_empty());
    }
}
