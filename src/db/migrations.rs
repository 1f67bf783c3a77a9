//! Which migration framework keeps the schema's history, and the revision it says the schema is at.
//! Found by each framework's table (and, where two share a name, its columns).
use serde::Serialize;

use super::conn::Conn;
use super::{Column, DbError, Table, parse_u64};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationFramework {
    Alembic,
    Sqlx,
    Django,
    /// Rails' `schema_migrations`: one row per migration.
    Rails,
    /// golang-migrate's `schema_migrations`: one row, with `dirty`.
    GolangMigrate,
    Flyway,
    Prisma,
    Knex,
    Diesel,
    Laravel,
    /// `kind: command`: what the settings' revision command prints.
    Command,
    /// SurrealDB: the app's migrations table.
    Table,
    /// SurrealDB: what the settings' revision query returns.
    Query,
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
            MigrationFramework::Laravel => "laravel",
            MigrationFramework::Command => "revision command",
            MigrationFramework::Table => "migrations table",
            MigrationFramework::Query => "revision query",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Migrations {
    pub framework: MigrationFramework,
    /// alembic: the head(s), sorted, comma-separated; sqlx: the highest successful version;
    /// django: `app.name` of the last one applied; rails, diesel: the highest version;
    /// golang-migrate: the version, with ` (dirty)` when dirty; flyway: the version of the latest
    /// successful installed_rank; prisma, knex, laravel: the last migration's name.
    pub revision: String,
    /// How many migrations the table records as applied (alembic and golang-migrate record
    /// only where they are: their head(s), their one version).
    pub applied: u64,
    /// A migration started and did not finish (golang-migrate's `dirty`, a failed sqlx, flyway
    /// or prisma row): the schema may be half-changed.
    pub dirty: bool,
}

/// The catalog the frameworks are looked for in.
struct Tables<'a> {
    tables: &'a [Table],
    columns: &'a [Column],
    default_schema: Option<&'a str>,
}

impl Tables<'_> {
    /// The table of that name, in the default schema first, else in any.
    fn find(&self, name: &str) -> Option<&Table> {
        let mut named = self.tables.iter().filter(|t| t.name == name);
        let in_default = self
            .tables
            .iter()
            .find(|t| t.name == name && Some(t.schema.as_str()) == self.default_schema);
        in_default.or_else(|| named.next())
    }

    fn has_column(&self, table: &Table, column: &str) -> bool {
        self.columns
            .iter()
            .any(|c| c.schema == table.schema && c.table == table.name && c.name == column)
    }
}

/// Reads the first framework whose table exists, the most specific table names first.
pub(super) async fn read(
    conn: &mut Conn,
    tables: &[Table],
    columns: &[Column],
    default_schema: Option<&str>,
) -> Result<Option<Migrations>, DbError> {
    let cat = Tables {
        tables,
        columns,
        default_schema,
    };
    let found = |framework, revision, applied, dirty| {
        Ok(Some(Migrations {
            framework,
            revision,
            applied,
            dirty,
        }))
    };
    if let Some(t) = cat.find("alembic_version") {
        let sql = format!(
            "SELECT {} FROM {}",
            conn.text("version_num"),
            conn.table(&t.schema, &t.name)
        );
        let mut heads: Vec<String> = conn
            .rows(&sql)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        heads.sort();
        return found(
            MigrationFramework::Alembic,
            heads.join(","),
            heads.len() as u64,
            false,
        );
    }
    if let Some(t) = cat.find("_sqlx_migrations") {
        let sql = format!(
            "SELECT {}, {}, {} FROM {}",
            conn.text("max(CASE WHEN success THEN version END)"),
            conn.text("count(CASE WHEN success THEN 1 END)"),
            conn.text("count(CASE WHEN success THEN NULL ELSE 1 END)"),
            conn.table(&t.schema, &t.name)
        );
        let row = conn.first_row(&sql).await?;
        return found(
            MigrationFramework::Sqlx,
            field(&row, 0),
            number(&row, 1),
            number(&row, 2) > 0,
        );
    }
    if let Some(t) = cat.find("django_migrations") {
        let table = conn.table(&t.schema, &t.name);
        let last = format!(
            "SELECT {}, {} FROM {table} ORDER BY id DESC LIMIT 1",
            conn.text("app"),
            conn.text("name"),
        );
        let last = conn.first_row(&last).await?;
        let count = format!("SELECT {} FROM {table}", conn.text("count(*)"));
        let count = parse_u64(conn.scalar(&count).await?);
        let revision = if last.is_empty() {
            String::new()
        } else {
            format!("{}.{}", field(&last, 0), field(&last, 1))
        };
        return found(MigrationFramework::Django, revision, count, false);
    }
    if let Some(t) = cat.find("flyway_schema_history") {
        let table = conn.table(&t.schema, &t.name);
        let last = format!(
            "SELECT {} FROM {table} WHERE success AND version IS NOT NULL \
             ORDER BY installed_rank DESC LIMIT 1",
            conn.text("version")
        );
        let revision = conn.scalar(&last).await?.unwrap_or_default();
        let counts = format!(
            "SELECT {}, {} FROM {table}",
            conn.text("count(CASE WHEN success THEN 1 END)"),
            conn.text("count(CASE WHEN success THEN NULL ELSE 1 END)")
        );
        let counts = conn.first_row(&counts).await?;
        return found(
            MigrationFramework::Flyway,
            revision,
            number(&counts, 0),
            number(&counts, 1) > 0,
        );
    }
    if let Some(t) = cat.find("schema_migrations") {
        let table = conn.table(&t.schema, &t.name);
        // golang-migrate keeps one row with a `dirty` flag; Rails one row per migration.
        if cat.has_column(t, "dirty") {
            let sql = format!(
                "SELECT {}, {} FROM {table} LIMIT 1",
                conn.text("version"),
                conn.text("dirty")
            );
            let row = conn.first_row(&sql).await?;
            let dirty = matches!(
                field(&row, 1).to_ascii_lowercase().as_str(),
                "true" | "t" | "1"
            );
            let version = field(&row, 0);
            let applied = u64::from(!row.is_empty());
            let revision = if dirty {
                format!("{version} (dirty)")
            } else {
                version
            };
            return found(MigrationFramework::GolangMigrate, revision, applied, dirty);
        }
        let sql = format!("SELECT {} FROM {table}", conn.text("version"));
        let versions: Vec<String> = conn
            .rows(&sql)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        // Numerically: old Rails numbered migrations 1, 2, ... 10 before it used timestamps.
        let max = versions
            .iter()
            .map(|v| v.trim())
            .max_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
            .unwrap_or_default()
            .to_string();
        return found(MigrationFramework::Rails, max, versions.len() as u64, false);
    }
    if let Some(t) = cat.find("_prisma_migrations") {
        let table = conn.table(&t.schema, &t.name);
        let last = format!(
            "SELECT {} FROM {table} WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL \
             ORDER BY finished_at DESC LIMIT 1",
            conn.text("migration_name")
        );
        let revision = conn.scalar(&last).await?.unwrap_or_default();
        let counts = format!(
            "SELECT {}, {} FROM {table} WHERE rolled_back_at IS NULL",
            conn.text("count(finished_at)"),
            conn.text("count(CASE WHEN finished_at IS NULL THEN 1 END)")
        );
        let counts = conn.first_row(&counts).await?;
        return found(
            MigrationFramework::Prisma,
            revision,
            number(&counts, 0),
            number(&counts, 1) > 0,
        );
    }
    // (framework, table, the column naming a migration, the column ordering them)
    let simple = [
        (MigrationFramework::Knex, "knex_migrations", "name", "id"),
        (
            MigrationFramework::Diesel,
            "__diesel_schema_migrations",
            "version",
            "version",
        ),
        (MigrationFramework::Laravel, "migrations", "migration", "id"),
    ];
    for (framework, name, label, order) in simple {
        let Some(t) = cat.find(name) else { continue };
        // `migrations` is a common name: Laravel's has a `batch` column too.
        if !cat.has_column(t, label) || !cat.has_column(t, order) {
            continue;
        }
        if framework == MigrationFramework::Laravel && !cat.has_column(t, "batch") {
            continue;
        }
        let table = conn.table(&t.schema, &t.name);
        let last = format!(
            "SELECT {} FROM {table} ORDER BY {} DESC LIMIT 1",
            conn.text(&conn.ident(label)),
            conn.ident(order)
        );
        let revision = conn.scalar(&last).await?.unwrap_or_default();
        let count = format!("SELECT {} FROM {table}", conn.text("count(*)"));
        let count = parse_u64(conn.scalar(&count).await?);
        return found(framework, revision, count, false);
    }
    Ok(None)
}

fn field(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

fn number(row: &[Option<String>], i: usize) -> u64 {
    parse_u64(row.get(i).cloned().flatten())
}
