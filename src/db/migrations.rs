//! Which migration framework keeps the schema's history, and the revision it says the schema is at.
use serde::Serialize;

use super::conn::Conn;
use super::{DbError, TableRows};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationFramework {
    Alembic,
    Sqlx,
    Django,
    Rails,
    GolangMigrate,
    Flyway,
    Prisma,
    Knex,
    Diesel,
}

impl MigrationFramework {
    pub fn name(&self) -> &'static str {
        match self {
            MigrationFramework::Alembic => "alembic",
            MigrationFramework::Sqlx => "sqlx",
            MigrationFramework::Django => "django",
            MigrationFramework::Rails => "rails",
            MigrationFramework::GolangMigrate => "golang-migrate",
            MigrationFramework::Flyway => "flyway",
            MigrationFramework::Prisma => "prisma",
            MigrationFramework::Knex => "knex",
            MigrationFramework::Diesel => "diesel",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Migrations {
    pub framework: MigrationFramework,
    /// alembic: the head(s), comma-separated; sqlx, rails, golang-migrate, diesel: the highest
    /// applied version; django: `app.name` of the last one; flyway: the last successful version;
    /// prisma, knex: the last migration's name.
    pub revision: String,
    /// How many migrations the table records as applied (alembic records only its heads).
    pub applied: u64,
    /// A migration started and did not finish (golang-migrate's `dirty`, a failed sqlx, flyway
    /// or prisma row): the schema may be half-changed.
    pub dirty: bool,
}

/// Reads the first framework whose table exists (in the order of how specific its table is).
pub async fn read(conn: &mut Conn, tables: &[TableRows]) -> Result<Option<Migrations>, DbError> {
    let table = |name: &str| -> Option<String> {
        tables
            .iter()
            .find(|t| t.name == name || t.name.ends_with(&format!(".{name}")))
            .map(|t| t.name.clone())
    };
    let t = |c: &Conn, e: &str| c.text(e);
    if let Some(tbl) = table("alembic_version") {
        let q = format!(
            "SELECT {} FROM {} ORDER BY 1",
            t(conn, "version_num"),
            conn.ident(&tbl)
        );
        let heads: Vec<String> = conn
            .rows(q)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        return Ok(Some(Migrations {
            framework: MigrationFramework::Alembic,
            applied: heads.len() as u64,
            revision: heads.join(","),
            dirty: false,
        }));
    }
    if let Some(tbl) = table("_sqlx_migrations") {
        let q = format!(
            "SELECT {}, {}, {} FROM {}",
            t(conn, "max(CASE WHEN success THEN version END)"),
            t(conn, "sum(CASE WHEN success THEN 1 ELSE 0 END)"),
            t(conn, "sum(CASE WHEN success THEN 0 ELSE 1 END)"),
            conn.ident(&tbl)
        );
        let row = first_row(conn, q).await?;
        return Ok(Some(Migrations {
            framework: MigrationFramework::Sqlx,
            revision: row.first().cloned().flatten().unwrap_or_default(),
            applied: number(&row, 1),
            dirty: number(&row, 2) > 0,
        }));
    }
    if let Some(tbl) = table("django_migrations") {
        let last = format!(
            "SELECT {}, {} FROM {} ORDER BY id DESC LIMIT 1",
            t(conn, "app"),
            t(conn, "name"),
            conn.ident(&tbl)
        );
        let row = first_row(conn, last).await?;
        let count = first_row(
            conn,
            format!("SELECT {} FROM {}", t(conn, "count(*)"), conn.ident(&tbl)),
        )
        .await?;
        let revision = match (
            row.first().cloned().flatten(),
            row.get(1).cloned().flatten(),
        ) {
            (Some(app), Some(name)) => format!("{app}.{name}"),
            _ => String::new(),
        };
        return Ok(Some(Migrations {
            framework: MigrationFramework::Django,
            revision,
            applied: number(&count, 0),
            dirty: false,
        }));
    }
    if let Some(tbl) = table("flyway_schema_history") {
        let ident = conn.ident(&tbl);
        let last = format!(
            "SELECT {} FROM {ident} WHERE success AND version IS NOT NULL ORDER BY installed_rank DESC LIMIT 1",
            t(conn, "version")
        );
        let row = first_row(conn, last).await?;
        let counts = format!(
            "SELECT {}, {} FROM {ident}",
            t(conn, "sum(CASE WHEN success THEN 1 ELSE 0 END)"),
            t(conn, "sum(CASE WHEN success THEN 0 ELSE 1 END)")
        );
        let counts = first_row(conn, counts).await?;
        return Ok(Some(Migrations {
            framework: MigrationFramework::Flyway,
            revision: row.first().cloned().flatten().unwrap_or_default(),
            applied: number(&counts, 0),
            dirty: number(&counts, 1) > 0,
        }));
    }
    if let Some(tbl) = table("schema_migrations") {
        let ident = conn.ident(&tbl);
        // golang-migrate keeps one row with a `dirty` flag; Rails one row per migration.
        let golang = format!(
            "SELECT {}, {} FROM {ident} LIMIT 1",
            t(conn, "version"),
            t(conn, "dirty")
        );
        if let Ok(row) = first_row(conn, golang).await {
            let dirty = matches!(
                row.get(1).cloned().flatten().as_deref(),
                Some("true" | "1" | "t")
            );
            let version = row.first().cloned().flatten().unwrap_or_default();
            return Ok(Some(Migrations {
                framework: MigrationFramework::GolangMigrate,
                applied: u64::from(!version.is_empty()),
                revision: version,
                dirty,
            }));
        }
        let rails = format!(
            "SELECT {}, {} FROM {ident}",
            t(conn, "max(version)"),
            t(conn, "count(*)")
        );
        let row = first_row(conn, rails).await?;
        return Ok(Some(Migrations {
            framework: MigrationFramework::Rails,
            revision: row.first().cloned().flatten().unwrap_or_default(),
            applied: number(&row, 1),
            dirty: false,
        }));
    }
    if let Some(tbl) = table("_prisma_migrations") {
        let ident = conn.ident(&tbl);
        let last = format!(
            "SELECT {} FROM {ident} WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY finished_at DESC LIMIT 1",
            t(conn, "migration_name")
        );
        let row = first_row(conn, last).await?;
        let counts = format!(
            "SELECT {}, {} FROM {ident} WHERE rolled_back_at IS NULL",
            t(
                conn,
                "sum(CASE WHEN finished_at IS NOT NULL THEN 1 ELSE 0 END)"
            ),
            t(conn, "sum(CASE WHEN finished_at IS NULL THEN 1 ELSE 0 END)")
        );
        let counts = first_row(conn, counts).await?;
        return Ok(Some(Migrations {
            framework: MigrationFramework::Prisma,
            revision: row.first().cloned().flatten().unwrap_or_default(),
            applied: number(&counts, 0),
            dirty: number(&counts, 1) > 0,
        }));
    }
    for (name, framework, last) in [
        ("knex_migrations", MigrationFramework::Knex, "name"),
        (
            "__diesel_schema_migrations",
            MigrationFramework::Diesel,
            "version",
        ),
    ] {
        if let Some(tbl) = table(name) {
            let order = if framework == MigrationFramework::Knex {
                "id"
            } else {
                "version"
            };
            let q = format!(
                "SELECT {}, (SELECT {} FROM {ident}) FROM {ident} ORDER BY {order} DESC LIMIT 1",
                t(conn, last),
                t(conn, "count(*)"),
                ident = conn.ident(&tbl)
            );
            let row = first_row(conn, q).await?;
            return Ok(Some(Migrations {
                framework,
                revision: row.first().cloned().flatten().unwrap_or_default(),
                applied: number(&row, 1),
                dirty: false,
            }));
        }
    }
    Ok(None)
}

async fn first_row(conn: &mut Conn, sql: String) -> Result<Vec<Option<String>>, DbError> {
    Ok(conn.rows(sql).await?.into_iter().next().unwrap_or_default())
}

fn number(row: &[Option<String>], i: usize) -> u64 {
    row.get(i)
        .cloned()
        .flatten()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
