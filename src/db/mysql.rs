//! MySQL and MariaDB: the connected database's tables and columns from `information_schema`,
//! their data and index size, exact row counts.
use super::conn::Conn;
use super::postgres::column;
use super::{Catalog, DbError, Table, parse_u64};

pub(super) async fn catalog(conn: &mut Conn) -> Result<Catalog, DbError> {
    let server_version = conn
        .scalar("SELECT CAST(version() AS CHAR)")
        .await?
        .unwrap_or_default();
    let size_bytes = parse_u64(
        conn.scalar(
            "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS CHAR) \
             FROM information_schema.tables WHERE table_schema = DATABASE()",
        )
        .await?,
    );
    let mut tables: Vec<Table> = conn
        .rows(
            "SELECT CAST(table_schema AS CHAR), CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema = DATABASE() ORDER BY 1, 2",
        )
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
    // column_type keeps lengths and signedness (`varchar(200)`, `int(10) unsigned`).
    let columns = conn
        .rows(
            "SELECT CAST(c.table_schema AS CHAR), CAST(c.table_name AS CHAR), CAST(c.column_name AS CHAR), \
             CAST(c.column_type AS CHAR), CAST(c.is_nullable AS CHAR), \
             CASE WHEN c.column_default IS NOT NULL OR c.extra LIKE '%auto_increment%' THEN 'YES' ELSE 'NO' END \
             FROM information_schema.columns c JOIN information_schema.tables t \
             ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = DATABASE() AND t.table_type = 'BASE TABLE'",
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
        "SELECT CAST(count(*) AS CHAR) FROM {}",
        conn.table(&table.schema, &table.name)
    );
    Ok(parse_u64(conn.scalar(&sql).await?))
}
