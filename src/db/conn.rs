//! One read-only connection to the app's database, whatever its kind, with the few queries the
//! probes need. Every value comes back as text (cast in SQL), so the probes stay kind-agnostic.
use std::future::Future;
use std::time::Duration;

use sqlx::{Connection, Row};

use super::{DbError, DbKind, DbTarget};

enum Inner {
    Pg(sqlx::PgConnection),
    My(sqlx::MySqlConnection),
    Lite(sqlx::SqliteConnection),
}

pub struct Conn {
    inner: Inner,
    /// For messages: `host:port` or the SQLite path.
    addr: String,
    /// Each statement's bound.
    timeout: Duration,
}

impl Conn {
    pub async fn open(target: &DbTarget, timeout: Duration) -> Result<Conn, DbError> {
        let addr = target.address();
        if target.kind == DbKind::Sqlite {
            check_sqlite_file(target, &addr)?;
        }
        let connect = async {
            match target.kind {
                DbKind::Postgres => {
                    // The server enforces these too, so a count(*) stuck behind a migration's
                    // lock ends server-side rather than lingering after we give up.
                    let ms = timeout.as_millis().max(1).to_string();
                    let options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
                        .host(&target.host)
                        .port(target.port)
                        .username(&target.user)
                        .password(target.password.expose())
                        .database(&target.database)
                        // No TLS backend is built in; the database is on this host's Docker network.
                        .ssl_mode(sqlx::postgres::PgSslMode::Disable)
                        .application_name("hoist")
                        .options([
                            ("statement_timeout", ms.as_str()),
                            ("lock_timeout", ms.as_str()),
                            ("default_transaction_read_only", "on"),
                        ]);
                    sqlx::PgConnection::connect_with(&options)
                        .await
                        .map(Inner::Pg)
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
                        .map(Inner::My)
                }
                // Reached only through its commands (`db::probe` refuses it before this).
                DbKind::Command | DbKind::Surrealdb => Err(sqlx::Error::Protocol(
                    "a database of kind command or surrealdb has no SQL connection".into(),
                )),
                DbKind::Sqlite => {
                    let path = target.sqlite_path.clone().unwrap_or_default();
                    // Read-only: the app may be running; a writer's lock waits up to the timeout.
                    let options = sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(path)
                        .read_only(true)
                        .create_if_missing(false)
                        .busy_timeout(timeout);
                    sqlx::SqliteConnection::connect_with(&options)
                        .await
                        .map(Inner::Lite)
                }
            }
        };
        let inner = match tokio::time::timeout(timeout, connect).await {
            Err(_) => {
                return Err(DbError::Timeout {
                    addr,
                    after: timeout,
                    what: "connecting".to_string(),
                });
            }
            Ok(Err(e)) => return Err(classify_connect(target, &addr, e)),
            Ok(Ok(inner)) => inner,
        };
        let mut conn = Conn {
            inner,
            addr,
            timeout,
        };
        if target.kind == DbKind::Mysql {
            conn.mysql_session().await?;
        }
        Ok(conn)
    }

    /// Read-only session and a server-side statement bound. MariaDB and MySQL name the bound
    /// differently (and old servers lack it), so a refused bound is not an error: the
    /// client-side timeout still holds.
    async fn mysql_session(&mut self) -> Result<(), DbError> {
        self.execute("SET SESSION TRANSACTION READ ONLY").await?;
        let secs = self.timeout.as_secs().max(1);
        let ms = self.timeout.as_millis().max(1);
        let _ = self
            .execute(&format!("SET SESSION max_statement_time = {secs}"))
            .await;
        let _ = self
            .execute(&format!("SET SESSION max_execution_time = {ms}"))
            .await;
        let _ = self
            .execute(&format!("SET SESSION lock_wait_timeout = {secs}"))
            .await;
        Ok(())
    }

    async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        // A macro, not a closure: each arm's query is for another database type.
        macro_rules! q {
            () => {
                sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            };
        }
        let timeout = self.timeout;
        let result = match &mut self.inner {
            Inner::Pg(c) => bounded(timeout, q!().execute(c)).await.map(drop),
            Inner::My(c) => bounded(timeout, q!().execute(c)).await.map(drop),
            Inner::Lite(c) => bounded(timeout, q!().execute(c)).await.map(drop),
        };
        result.map_err(|e| self.error(sql, e))
    }

    /// `expr` as text in this dialect.
    pub fn text(&self, expr: &str) -> String {
        match self.inner {
            Inner::Pg(_) => format!("CAST({expr} AS text)"),
            Inner::My(_) => format!("CAST({expr} AS CHAR)"),
            Inner::Lite(_) => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// One identifier quoted for this dialect, whatever characters it holds.
    pub fn ident(&self, name: &str) -> String {
        let q = match self.inner {
            Inner::My(_) => '`',
            _ => '"',
        };
        let escaped = name.replace(q, &format!("{q}{q}"));
        format!("{q}{escaped}{q}")
    }

    /// `schema.table`, each part quoted; MySQL and SQLite tables are named alone, since the
    /// connection is to their one database.
    pub fn table(&self, schema: &str, table: &str) -> String {
        match self.inner {
            Inner::Pg(_) => format!("{}.{}", self.ident(schema), self.ident(table)),
            Inner::My(_) | Inner::Lite(_) => self.ident(table),
        }
    }

    /// Runs a query whose columns are all text (or NULL).
    pub async fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, DbError> {
        let timeout = self.timeout;
        macro_rules! collect {
            ($conn:expr) => {
                match bounded(
                    timeout,
                    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_all($conn),
                )
                .await
                {
                    Ok(rows) => rows
                        .iter()
                        .map(|r| {
                            (0..r.len())
                                .map(|i| r.try_get::<Option<String>, _>(i))
                                .collect::<Result<Vec<_>, _>>()
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(Failure::Sql),
                    Err(e) => Err(e),
                }
            };
        }
        let result = match &mut self.inner {
            Inner::Pg(c) => collect!(&mut *c),
            Inner::My(c) => collect!(&mut *c),
            Inner::Lite(c) => collect!(&mut *c),
        };
        result.map_err(|e| self.error(sql, e))
    }

    /// Runs a query of one text column and hands each row to `each` as it arrives, so a
    /// table of any size is read in constant memory. The whole read is bounded by the timeout.
    pub async fn each_text(
        &mut self,
        sql: &str,
        mut each: impl FnMut(Option<&str>),
    ) -> Result<(), DbError> {
        use futures_util::TryStreamExt;
        let timeout = self.timeout;
        macro_rules! stream {
            ($conn:expr) => {
                bounded(timeout, async {
                    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch($conn);
                    while let Some(row) = rows.try_next().await? {
                        let value: Option<String> = row.try_get(0)?;
                        each(value.as_deref());
                    }
                    Ok(())
                })
                .await
            };
        }
        let result = match &mut self.inner {
            Inner::Pg(c) => stream!(&mut *c),
            Inner::My(c) => stream!(&mut *c),
            Inner::Lite(c) => stream!(&mut *c),
        };
        result.map_err(|e| self.error(sql, e))
    }

    /// The first row (empty when there is none).
    pub async fn first_row(&mut self, sql: &str) -> Result<Vec<Option<String>>, DbError> {
        Ok(self.rows(sql).await?.into_iter().next().unwrap_or_default())
    }

    /// The first column of the first row, as text.
    pub async fn scalar(&mut self, sql: &str) -> Result<Option<String>, DbError> {
        Ok(self.first_row(sql).await?.into_iter().next().flatten())
    }

    fn error(&self, sql: &str, failure: Failure) -> DbError {
        let what = short(sql);
        match failure {
            Failure::Timeout => DbError::Timeout {
                addr: self.addr.clone(),
                after: self.timeout,
                what,
            },
            // The server's own bound, or its lock wait, gave up first: the same timeout.
            Failure::Sql(e) if server_timed_out(&e) => DbError::Timeout {
                addr: self.addr.clone(),
                after: self.timeout,
                what,
            },
            Failure::Sql(e) => DbError::Query {
                addr: self.addr.clone(),
                what,
                reason: e.to_string(),
            },
        }
    }

    pub async fn close(self) {
        // Closing politely is courtesy; a failure or a hung server changes nothing for the user.
        let timeout = self.timeout;
        let _ = match self.inner {
            Inner::Pg(c) => tokio::time::timeout(timeout, c.close()).await,
            Inner::My(c) => tokio::time::timeout(timeout, c.close()).await,
            Inner::Lite(c) => tokio::time::timeout(timeout, c.close()).await,
        };
    }
}

enum Failure {
    Timeout,
    Sql(sqlx::Error),
}

async fn bounded<T>(
    timeout: Duration,
    fut: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(Failure::Timeout),
        Ok(r) => r.map_err(Failure::Sql),
    }
}

/// PostgreSQL 57014 (statement_timeout) and 55P03 (lock_timeout); MariaDB's
/// max_statement_time, MySQL's max_execution_time, and both's lock wait timeout.
fn server_timed_out(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    let code = db.code().map(|c| c.to_string()).unwrap_or_default();
    let message = db.message();
    code == "57014"
        || code == "55P03"
        || message.contains("max_statement_time")
        || message.contains("maximum statement execution time")
        || message.contains("Lock wait timeout")
}

/// The start of a statement, enough to tell which one failed.
fn short(sql: &str) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// A missing SQLite file is a missing database, not a connection problem; and an empty path
/// would open a fresh temporary database, which would say nothing true.
fn check_sqlite_file(target: &DbTarget, addr: &str) -> Result<(), DbError> {
    match &target.sqlite_path {
        None => Err(DbError::NoDatabase {
            addr: "this host".to_string(),
            name: addr.to_string(),
        }),
        Some(p) if p.as_os_str().is_empty() || !p.is_file() => Err(DbError::NoDatabase {
            addr: "this host".to_string(),
            name: p.display().to_string(),
        }),
        Some(_) => Ok(()),
    }
}

fn classify_connect(target: &DbTarget, addr: &str, e: sqlx::Error) -> DbError {
    let addr = addr.to_string();
    if let sqlx::Error::Database(db) = &e {
        let code = db.code().map(|c| c.to_string()).unwrap_or_default();
        let message = db.message();
        // PostgreSQL 28P01/28000; MySQL 1045 carries SQLSTATE 28000 ("Access denied ...").
        if code == "28P01" || code == "28000" || message.contains("Access denied") {
            return DbError::Auth {
                addr,
                user: target.user.clone(),
            };
        }
        // PostgreSQL 3D000; MySQL 1049 "Unknown database" (SQLSTATE 42000).
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
