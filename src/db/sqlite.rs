//! SQLite: the main database's tables and columns from `pragma_table_list` and
//! `pragma_table_info`, the file's size, exact row counts.
use std::path::Path;

use super::conn::Conn;
use super::postgres::column;
use super::{Catalog, DbError, Table, parse_u64};

pub(super) async fn catalog(conn: &mut Conn, path: Option<&Path>) -> Result<Catalog, DbError> {
    let server_version = conn
        .scalar("SELECT sqlite_version()")
        .await?
        .unwrap_or_default();
    // The file as it lies on disk (a WAL beside it is not yet part of it).
    let size_bytes = path
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .unwrap_or(0);
    // type 'table' leaves out views, virtual tables (whose module may be missing here) and
    // their shadow tables; `sqlite_%` are SQLite's own.
    let mut tables: Vec<Table> = conn
        .rows(
            "SELECT name FROM pragma_table_list \
             WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             ORDER BY name",
        )
        .await?
        .into_iter()
        .map(|r| Table {
            schema: "main".to_string(),
            name: r.into_iter().next().flatten().unwrap_or_default(),
        })
        .collect();
    tables.sort();
    let columns = conn
        .rows(
            "SELECT 'main', t.name, c.name, c.type, CASE WHEN c.\"notnull\" THEN 'NO' ELSE 'YES' END, \
             CASE WHEN c.dflt_value IS NOT NULL OR c.pk > 0 THEN 'YES' ELSE 'NO' END \
             FROM pragma_table_list t JOIN pragma_table_info(t.name) c \
             WHERE t.schema = 'main' AND t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )
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
        "SELECT CAST(count(*) AS TEXT) FROM {}",
        conn.table(&table.schema, &table.name)
    );
    Ok(parse_u64(conn.scalar(&sql).await?))
}
