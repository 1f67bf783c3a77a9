//! PostgreSQL: user tables and columns from `pg_catalog` (every schema but the system ones),
//! the database's size, exact row counts.
use super::conn::Conn;
use super::{Catalog, Column, DbError, Table, parse_u64};

/// `pg_catalog`, `pg_toast`, temporary schemas (`pg_temp_N`) and `information_schema`.
const USER_SCHEMAS: &str = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'";

/// Ordinary and partitioned tables; partitions are counted through their parent, and new
/// partitions are not a schema change.
const USER_TABLES: &str = "c.relkind IN ('r', 'p') AND NOT c.relispartition";

pub(super) async fn catalog(conn: &mut Conn) -> Result<Catalog, DbError> {
    let server_version = conn
        .scalar("SHOW server_version")
        .await?
        .unwrap_or_default();
    let size_bytes = parse_u64(
        conn.scalar("SELECT CAST(pg_database_size(current_database()) AS text)")
            .await?,
    );
    let tables_sql = format!(
        "SELECT CAST(n.nspname AS text), CAST(c.relname AS text) \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE {USER_TABLES} AND {USER_SCHEMAS} ORDER BY 1, 2"
    );
    let mut tables: Vec<Table> = conn
        .rows(&tables_sql)
        .await?
        .into_iter()
        .map(|r| {
            let mut r = r.into_iter().map(Option::unwrap_or_default);
            Table {
                schema: r.next().unwrap_or_default(),
                name: r.next().unwrap_or_default(),
            }
        })
        .collect();
    tables.sort();
    // format_type keeps lengths and precisions (`character varying(200)`), which
    // information_schema's data_type drops: a widened column is a schema change too.
    let columns_sql = format!(
        "SELECT CAST(n.nspname AS text), CAST(c.relname AS text), CAST(a.attname AS text), \
         pg_catalog.format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END, \
         CASE WHEN a.atthasdef OR a.attidentity <> '' THEN 'YES' ELSE 'NO' END \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND {USER_TABLES} AND {USER_SCHEMAS}"
    );
    let columns = conn
        .rows(&columns_sql)
        .await?
        .into_iter()
        .map(column)
        .collect();
    Ok(Catalog {
        server_version,
        size_bytes,
        tables,
        columns,
    })
}

pub(super) async fn count(conn: &mut Conn, table: &Table) -> Result<u64, DbError> {
    let sql = format!(
        "SELECT CAST(count(*) AS text) FROM {}",
        conn.table(&table.schema, &table.name)
    );
    Ok(parse_u64(conn.scalar(&sql).await?))
}

/// A (schema, table, column, type, 'YES'/'NO' nullable, 'YES'/'NO' has a default) row, as
/// every kind's query returns it.
pub(super) fn column(row: Vec<Option<String>>) -> Column {
    let mut r = row.into_iter().map(Option::unwrap_or_default);
    Column {
        schema: r.next().unwrap_or_default(),
        table: r.next().unwrap_or_default(),
        name: r.next().unwrap_or_default(),
        data_type: r.next().unwrap_or_default(),
        nullable: r.next().is_some_and(|n| n.eq_ignore_ascii_case("YES")),
        has_default: r.next().is_some_and(|n| n.eq_ignore_ascii_case("YES")),
    }
}

/// The databases a rollback of this one renamed aside (`restore_postgres` names them
/// `<first 30 characters>_before_rollback_<stamp>`).
pub(super) async fn kept_aside(conn: &mut Conn) -> Result<Vec<String>, DbError> {
    let rows = conn
        .rows(
            "SELECT CAST(datname AS text) FROM pg_catalog.pg_database \
             WHERE starts_with(datname, left(current_database(), 30) || '_before_rollback_') \
             ORDER BY 1",
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}
