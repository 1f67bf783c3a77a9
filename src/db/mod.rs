//! Read-only probes of the app's database (sqlx, no compile-time queries): the migration
//! framework and revision, a schema fingerprint that tells a schema change even without a
//! migrations table, per-table row counts, the database's size. PostgreSQL, MySQL/MariaDB, SQLite.
mod conn;
pub mod migrations;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use crate::secret::Secret;
use conn::Conn;
pub use migrations::{MigrationFramework, Migrations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    Sqlite,
}

impl DbKind {
    pub fn name(&self) -> &'static str {
        match self {
            DbKind::Postgres => "postgres",
            DbKind::Mysql => "mysql",
            DbKind::Sqlite => "sqlite",
        }
    }
}

/// Where and how to connect. The password is a `Secret`: it never reaches Debug output or errors.
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
    fn address(&self) -> String {
        match self.kind {
            DbKind::Sqlite => self
                .sqlite_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TableRows {
    /// Schema-qualified unless in the default schema (`public`, the database itself, `main`).
    pub name: String,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DbProbe {
    pub migrations: Option<Migrations>,
    /// Hex sha256 over the sorted (schema, table, column, type, nullability) of user tables.
    pub fingerprint: String,
    pub tables: Vec<TableRows>,
    pub size_bytes: u64,
    pub server_version: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error(
        "cannot connect to the database at {addr}: {reason}. Check that the database container is running and reachable from this host."
    )]
    Connect { addr: String, reason: String },
    #[error(
        "the database at {addr} refused user {user:?} (wrong user or password). hoist takes them from the database service's environment in the compose file (POSTGRES_USER / POSTGRES_PASSWORD, MYSQL_* or MARIADB_*); check they match the database, or set x-hoist.database."
    )]
    Auth { addr: String, user: String },
    #[error(
        "the database {name:?} does not exist at {addr}. Set x-hoist.database.name if the app uses another one."
    )]
    NoDatabase { addr: String, name: String },
    #[error("the database at {addr} did not answer within {secs} s.")]
    Timeout { addr: String, secs: u64 },
    #[error("a read-only query on the database failed ({what}): {reason}")]
    Query { what: String, reason: String },
}

impl DbError {
    fn classify_connect(target: &DbTarget, e: sqlx::Error) -> DbError {
        let addr = target.address();
        if let sqlx::Error::Database(db) = &e {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let message = db.message().to_string();
            // 28P01/28000: authentication (PostgreSQL; MySQL's 1045 carries SQLSTATE 28000).
            if code == "28P01" || code == "28000" || message.contains("Access denied") {
                return DbError::Auth {
                    addr,
                    user: target.user.clone(),
                };
            }
            if code == "3D000" || message.contains("Unknown database") {
                return DbError::NoDatabase {
                    addr,
                    name: target.database.clone(),
                };
            }
        }
        DbError::Connect {
            addr,
            reason: e.to_string(),
        }
    }
}

/// Probes the database read-only. `timeout` bounds the connection; each statement has its own.
pub async fn probe(target: &DbTarget, timeout: Duration) -> Result<DbProbe, DbError> {
    let mut conn = Conn::open(target, timeout).await?;
    let result = probe_with(&mut conn).await;
    conn.close().await;
    result
}

async fn probe_with(conn: &mut Conn) -> Result<DbProbe, DbError> {
    let (version_sql, size_sql, tables_sql, columns_sql) = match conn.kind() {
        DbKind::Postgres => (
            "SHOW server_version".to_string(),
            format!("SELECT {}", conn.text("pg_database_size(current_database())")),
            "SELECT CAST(table_schema AS text), CAST(table_name AS text) FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') \
             AND table_schema NOT LIKE 'pg_toast%' ORDER BY 1, 2"
                .to_string(),
            "SELECT CAST(table_schema AS text), CAST(table_name AS text), CAST(column_name AS text), \
             CAST(data_type AS text), CAST(is_nullable AS text) FROM information_schema.columns \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg_toast%'"
                .to_string(),
        ),
        DbKind::Mysql => (
            "SELECT CAST(version() AS CHAR)".to_string(),
            "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE()"
                .to_string(),
            "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema = DATABASE() ORDER BY 1, 2"
                .to_string(),
            "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR), CAST(column_name AS CHAR), \
             CAST(column_type AS CHAR), CAST(is_nullable AS CHAR) FROM information_schema.columns WHERE table_schema = DATABASE()"
                .to_string(),
        ),
        DbKind::Sqlite => (
            "SELECT sqlite_version()".to_string(),
            "SELECT CAST(page_count * page_size AS TEXT) FROM pragma_page_count(), pragma_page_size()".to_string(),
            "SELECT 'main', name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 2".to_string(),
            "SELECT 'main', m.name, p.name, p.type, CASE WHEN p.\"notnull\" THEN 'NO' ELSE 'YES' END \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
                .to_string(),
        ),
    };
    let server_version = conn.scalar(version_sql).await?.unwrap_or_default();
    let size_bytes = conn
        .scalar(size_sql)
        .await?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let default_schema = match conn.kind() {
        DbKind::Postgres => "public",
        DbKind::Mysql => "",
        DbKind::Sqlite => "main",
    };
    let mut tables = Vec::new();
    for row in conn.rows(tables_sql).await? {
        let schema = row.first().cloned().flatten().unwrap_or_default();
        let table = row.get(1).cloned().flatten().unwrap_or_default();
        let qualified = match conn.kind() {
            DbKind::Mysql | DbKind::Sqlite => conn.ident(&table),
            DbKind::Postgres => format!("{}.{}", conn.ident(&schema), conn.ident(&table)),
        };
        let rows = conn
            .scalar(format!("SELECT {} FROM {qualified}", conn.text("count(*)")))
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let name = if schema == default_schema || conn.kind() == DbKind::Mysql {
            table
        } else {
            format!("{schema}.{table}")
        };
        tables.push(TableRows { name, rows });
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let mut columns: Vec<String> = conn
        .rows(columns_sql)
        .await?
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<_>>()
                .join("\u{1f}")
        })
        .collect();
    columns.sort();
    let mut hasher = Sha256::new();
    for c in &columns {
        hasher.update(c.as_bytes());
        hasher.update(b"\n");
    }
    let fingerprint = hex::encode(hasher.finalize());
    let migrations = migrations::read(conn, &tables).await?;
    Ok(DbProbe {
        migrations,
        fingerprint,
        tables,
        size_bytes,
        server_version,
    })
}
