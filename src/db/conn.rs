//! One read-only connection to the app's database, whatever its kind, with the few queries the
//! probes need. Every value comes back as text (cast in SQL), so the probes stay kind-agnostic.
use std::time::Duration;

use sqlx::{Connection, Row};

use super::{DbError, DbKind, DbTarget};

pub enum Conn {
    Pg(sqlx::PgConnection),
    My(sqlx::MySqlConnection),
    Lite(sqlx::SqliteConnection),
}

impl Conn {
    pub async fn open(target: &DbTarget, timeout: Duration) -> Result<Conn, DbError> {
        let addr = target.address();
        let connect = async {
            match target.kind {
                DbKind::Postgres => {
                    let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
                        .host(&target.host)
                        .port(target.port)
                        .username(&target.user)
                        .password(target.password.expose())
                        .database(&target.database)
                        .ssl_mode(sqlx::postgres::PgSslMode::Disable)
                        .application_name("hoist")
                        // A probe must never hang an upgrade, nor hold locks.
                        .options([
                            ("statement_timeout", "15s"),
                            ("default_transaction_read_only", "on"),
                        ]);
                    sqlx::PgConnection::connect_with(&options)
                        .await
                        .map(Conn::Pg)
                }
                DbKind::Mysql => {
                    let options = sqlx::mysql::MySqlConnectOptions::new()
                        .host(&target.host)
                        .port(target.port)
                        .username(&target.user)
                        .password(target.password.expose())
                        .database(&target.database)
                        .ssl_mode(sqlx::mysql::MySqlSslMode::Disabled);
                    sqlx::MySqlConnection::connect_with(&options)
                        .await
                        .map(Conn::My)
                }
                DbKind::Sqlite => {
                    let path = target.sqlite_path.clone().unwrap_or_default();
                    let options = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .read_only(true);
                    sqlx::SqliteConnection::connect_with(&options)
                        .await
                        .map(Conn::Lite)
                }
            }
        };
        match tokio::time::timeout(timeout, connect).await {
            Err(_) => Err(DbError::Timeout {
                addr,
                secs: timeout.as_secs(),
            }),
            Ok(Err(e)) => Err(DbError::classify_connect(target, e)),
            Ok(Ok(conn)) => Ok(conn),
        }
    }

    pub fn kind(&self) -> DbKind {
        match self {
            Conn::Pg(_) => DbKind::Postgres,
            Conn::My(_) => DbKind::Mysql,
            Conn::Lite(_) => DbKind::Sqlite,
        }
    }

    /// `expr` as text in this dialect.
    pub fn text(&self, expr: &str) -> String {
        match self {
            Conn::Pg(_) => format!("CAST({expr} AS text)"),
            Conn::My(_) => format!("CAST({expr} AS CHAR)"),
            Conn::Lite(_) => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// A quoted identifier (`schema.table` is quoted part by part).
    pub fn ident(&self, name: &str) -> String {
        let q = match self {
            Conn::My(_) => '`',
            _ => '"',
        };
        name.split('.')
            .map(|part| {
                let escaped = part.replace(q, &format!("{q}{q}"));
                format!("{q}{escaped}{q}")
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Runs a query whose columns are all text (or NULL).
    pub async fn rows(&mut self, sql: String) -> Result<Vec<Vec<Option<String>>>, DbError> {
        let what = sql.clone();
        let fail = |e: sqlx::Error| DbError::Query {
            what: what.clone(),
            reason: e.to_string(),
        };
        macro_rules! collect {
            ($conn:expr) => {{
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all($conn)
                    .await
                    .map_err(fail)?;
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| r.try_get::<Option<String>, _>(i))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(fail)?
            }};
        }
        Ok(match self {
            Conn::Pg(c) => collect!(&mut *c),
            Conn::My(c) => collect!(&mut *c),
            Conn::Lite(c) => collect!(&mut *c),
        })
    }

    /// The first column of the first row, as text.
    pub async fn scalar(&mut self, sql: String) -> Result<Option<String>, DbError> {
        Ok(self
            .rows(sql)
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .flatten())
    }

    pub async fn close(self) {
        // Closing politely is courtesy; a failure here changes nothing for the user.
        let _ = match self {
            Conn::Pg(c) => c.close().await,
            Conn::My(c) => c.close().await,
            Conn::Lite(c) => c.close().await,
        };
    }
}
