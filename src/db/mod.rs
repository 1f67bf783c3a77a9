//! Read-only probes of the app's database (sqlx, no compile-time queries): the migration
//! framework and revision, a schema fingerprint that tells a schema change even without a
//! migrations table, per-table row counts, the database's size. PostgreSQL, MySQL/MariaDB, SQLite;
//! SurrealDB through its HTTP API (`surreal`).
//!
//! Layout: this file holds the types and [`probe`]; `conn` the one connection; `postgres`,
//! `mysql` and `sqlite` each kind's catalog queries and row counts; `fingerprint` the schema hash;
//! `migrations` the frameworks' history tables.
mod conn;
mod fingerprint;
pub mod migrations;
mod mysql;
mod postgres;
mod sqlite;
pub mod surreal;
#[cfg(test)]
mod test_fixtures;
#[cfg(test)]
mod tests;
pub mod writes;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use crate::secret::Secret;
use conn::Conn;
pub use migrations::{MigrationFramework, Migrations};
pub use writes::Writes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    Sqlite,
    /// A kind hoist does not know, reached only through the commands the settings give
    /// (`x-hoist.database.kind: command`): no connection, no catalog, no write tally.
    Command,
    /// SurrealDB, reached over its HTTP API (`surreal`): no SQL connection, no write tally.
    Surrealdb,
}

impl DbKind {
    pub fn name(&self) -> &'static str {
        match self {
            DbKind::Postgres => "postgres",
            DbKind::Mysql => "mysql",
            DbKind::Sqlite => "sqlite",
            DbKind::Command => "command",
            DbKind::Surrealdb => "surrealdb",
        }
    }

    /// Reached without a SQL connection: by the settings' commands, or SurrealDB's HTTP API.
    /// Such a database is dumped and restored whole, with no catalog and no write tally.
    pub fn without_sql(&self) -> bool {
        matches!(self, DbKind::Command | DbKind::Surrealdb)
    }
}

/// Where and how to connect. The password is a `Secret`: it never reaches Debug output or errors.
/// For SQLite only `sqlite_path` counts.
#[derive(Debug, Clone)]
pub struct DbTarget {
    pub kind: DbKind,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub database: String,
    pub sqlite_path: Option<PathBuf>,
}

impl DbTarget {
    /// Where the database is, for messages: `host:port`, or the SQLite file's path.
    fn address(&self) -> String {
        match self.kind {
            DbKind::Sqlite => self
                .sqlite_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(no SQLite path)".to_string()),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TableRows {
    /// Schema-qualified unless in the default schema (PostgreSQL `public`; MySQL lists only the
    /// connected database; SQLite `main`).
    pub name: String,
    /// Exact: `count(*)`.
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DbProbe {
    /// None when no known framework's table is there.
    pub migrations: Option<Migrations>,
    /// Hex sha256 over the sorted (schema, table, column, type, nullability) of user tables:
    /// changes with the schema, not with the rows.
    pub fingerprint: String,
    /// Sorted by name.
    pub tables: Vec<TableRows>,
    /// PostgreSQL `pg_database_size`; MySQL data + index length of the database's tables;
    /// SQLite the file's size.
    pub size_bytes: u64,
    pub server_version: String,
    /// Every table's write tally (`writes`): Err says why it could not be read, which a
    /// rollback then says instead of "nothing was written".
    #[serde(skip)]
    pub writes: Result<Writes, String>,
    /// Every column of the user tables, sorted (what the fingerprint hashes, and defaults).
    #[serde(skip)]
    pub columns: Vec<SchemaColumn>,
    /// PostgreSQL: the databases a rollback renamed aside (`<name>_before_rollback_<stamp>`),
    /// still on the server, sorted.
    #[serde(skip)]
    pub kept_aside: Vec<String>,
}

#[cfg(test)]
impl DbProbe {
    /// An alembic database at `revision` with `fingerprint` and (table, rows), for tests.
    pub(crate) fn alembic(revision: &str, fingerprint: &str, tables: &[(&str, u64)]) -> DbProbe {
        DbProbe {
            migrations: Some(Migrations {
                framework: MigrationFramework::Alembic,
                revision: revision.into(),
                applied: 1,
                dirty: false,
            }),
            fingerprint: fingerprint.into(),
            tables: tables
                .iter()
                .map(|(n, r)| TableRows {
                    name: n.to_string(),
                    rows: *r,
                })
                .collect(),
            size_bytes: 0,
            server_version: "15".into(),
            writes: Err("not read".into()),
            columns: Vec::new(),
            kept_aside: Vec::new(),
        }
    }
}

/// What went wrong, one sentence each, never with the password in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot connect to the database at {addr} ({reason}); check that the database container is running and reachable from this host."
    )]
    Connect { addr: String, reason: String },
    #[error(
        "the database at {addr} refused user {user:?} (wrong user or password): hoist takes them from the database service's environment in the compose file (POSTGRES_USER / POSTGRES_PASSWORD, MYSQL_USER / MYSQL_PASSWORD or MARIADB_*), so check they match what the database was created with, or set x-hoist.database."
    )]
    Auth { addr: String, user: String },
    #[error(
        "there is no database {name:?} at {addr}: check the name (POSTGRES_DB, MYSQL_DATABASE or MARIADB_DATABASE in the compose file, or x-hoist.database.name; for SQLite x-hoist.database.path)."
    )]
    NoDatabase { addr: String, name: String },
    #[error(
        "the database at {addr} did not answer within {after:?} ({what}); check that its container is healthy and not overloaded (docker compose ps, docker compose logs) and that no migration is holding a lock, then try again."
    )]
    Timeout {
        addr: String,
        after: Duration,
        what: String,
    },
    #[error(
        "a read-only query on the database at {addr} failed ({what}: {reason}); check that the user may read every table of the database (hoist changed nothing)."
    )]
    Query {
        addr: String,
        what: String,
        reason: String,
    },
}

/// A user table, as the catalog names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Table {
    schema: String,
    name: String,
}

/// A column of a user table, as the fingerprint hashes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    schema: String,
    table: String,
    name: String,
    data_type: String,
    nullable: bool,
    /// A default, an identity or auto-increment: an insert that leaves it out still works.
    has_default: bool,
}

/// A column of a user table as a rollback compares schemas: named as the row counts name its
/// table (schema-qualified unless in the default schema).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct SchemaColumn {
    pub table: String,
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    pub has_default: bool,
}

/// What a kind's catalog says about the database, before counting rows.
struct Catalog {
    server_version: String,
    size_bytes: u64,
    /// Sorted.
    tables: Vec<Table>,
    columns: Vec<Column>,
}

/// Probes the database read-only, over one connection closed at the end. `timeout` bounds the
/// connection and, separately, each statement (server-side where the server allows it, and here).
pub async fn probe(target: &DbTarget, timeout: Duration) -> Result<DbProbe, DbError> {
    no_connection(target)?;
    let mut conn = Conn::open(target, timeout).await?;
    let result = probe_with(&mut conn, target).await;
    conn.close().await;
    result
}

async fn probe_with(conn: &mut Conn, target: &DbTarget) -> Result<DbProbe, DbError> {
    let catalog = match target.kind {
        DbKind::Postgres => postgres::catalog(conn).await?,
        DbKind::Mysql => mysql::catalog(conn).await?,
        DbKind::Sqlite => sqlite::catalog(conn, target.sqlite_path.as_deref()).await?,
        DbKind::Command | DbKind::Surrealdb => return Err(commands_only(target)),
    };
    let default_schema = match target.kind {
        DbKind::Postgres => Some("public"),
        // MySQL lists only the connected database, so its name never qualifies a table.
        DbKind::Mysql | DbKind::Command | DbKind::Surrealdb => None,
        DbKind::Sqlite => Some("main"),
    };
    let mut tables = Vec::with_capacity(catalog.tables.len());
    for table in &catalog.tables {
        let rows = match target.kind {
            DbKind::Postgres => postgres::count(conn, table).await?,
            DbKind::Mysql => mysql::count(conn, table).await?,
            DbKind::Sqlite => sqlite::count(conn, table).await?,
            DbKind::Command | DbKind::Surrealdb => return Err(commands_only(target)),
        };
        let name = match default_schema {
            Some(d) if d != table.schema => format!("{}.{}", table.schema, table.name),
            _ => table.name.clone(),
        };
        tables.push(TableRows { name, rows });
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let migrations =
        migrations::read(conn, &catalog.tables, &catalog.columns, default_schema).await?;
    let writes = writes::read(
        conn,
        target.kind,
        &catalog.tables,
        &catalog.columns,
        default_schema,
    )
    .await
    .map_err(|e| e.to_string());
    let mut columns: Vec<SchemaColumn> = catalog
        .columns
        .iter()
        .map(|c| SchemaColumn {
            table: match default_schema {
                Some(d) if d != c.schema => format!("{}.{}", c.schema, c.table),
                _ => c.table.clone(),
            },
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            nullable: c.nullable,
            has_default: c.has_default,
        })
        .collect();
    columns.sort();
    let kept_aside = match target.kind {
        DbKind::Postgres => postgres::kept_aside(conn).await.unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(DbProbe {
        writes,
        columns,
        kept_aside,
        migrations,
        fingerprint: fingerprint::of(&catalog.columns),
        tables,
        size_bytes: catalog.size_bytes,
        server_version: catalog.server_version,
    })
}

/// Reads only every table's write tally (no row counts): quick enough to take while the app
/// is stopped for its restart.
pub async fn read_writes(target: &DbTarget, timeout: Duration) -> Result<Writes, DbError> {
    no_connection(target)?;
    let mut conn = Conn::open(target, timeout).await?;
    let result = async {
        let catalog = match target.kind {
            DbKind::Postgres => postgres::catalog(&mut conn).await?,
            DbKind::Mysql => mysql::catalog(&mut conn).await?,
            DbKind::Sqlite => sqlite::catalog(&mut conn, target.sqlite_path.as_deref()).await?,
            DbKind::Command | DbKind::Surrealdb => return Err(commands_only(target)),
        };
        let default_schema = match target.kind {
            DbKind::Postgres => Some("public"),
            DbKind::Mysql | DbKind::Command | DbKind::Surrealdb => None,
            DbKind::Sqlite => Some("main"),
        };
        writes::read(
            &mut conn,
            target.kind,
            &catalog.tables,
            &catalog.columns,
            default_schema,
        )
        .await
    }
    .await;
    conn.close().await;
    result
}

/// A `command` database is reached through its commands (`probe::db_command`), never here.
fn no_connection(target: &DbTarget) -> Result<(), DbError> {
    match target.kind {
        DbKind::Command | DbKind::Surrealdb => Err(commands_only(target)),
        _ => Ok(()),
    }
}

fn commands_only(target: &DbTarget) -> DbError {
    DbError::Query {
        addr: target.address(),
        what: "a connection".into(),
        reason: format!(
            "hoist reaches a database of kind {} without SQL (its commands, or its HTTP API)",
            target.kind.name()
        ),
    }
}

/// A count or size that the database returned as text.
fn parse_u64(text: Option<String>) -> u64 {
    text.and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0)
}
