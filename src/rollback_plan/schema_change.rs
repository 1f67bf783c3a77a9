//! The schema change since the backup, column by column: what was added (an older version
//! ignores tables and columns it does not know, and keeps working), and what the older version
//! cannot live with — a table or column dropped or renamed, a column retyped or made NOT
//! NULL, a NOT NULL column added without a default (the older version's inserts would fail).
use std::collections::BTreeSet;

use serde::Serialize;

use crate::db::SchemaColumn;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaChange {
    /// "table saved_searches", "column issues.metadata".
    pub added: Vec<String>,
    /// What makes going back without a restore unsafe, each with why.
    pub breaking: Vec<String>,
}

impl SchemaChange {
    pub fn is_additive(&self) -> bool {
        self.breaking.is_empty()
    }

    /// "added: column issues.metadata, table saved_searches" / "column issues.legacy_priority
    /// dropped (or renamed), and 1 more change", for a reason sentence.
    pub fn words(&self) -> String {
        let list = |items: &[String]| match items {
            [] => String::new(),
            [one] => one.clone(),
            [first, second] => format!("{first}; {second}"),
            [first, second, rest @ ..] => {
                format!("{first}; {second}; and {} more", rest.len())
            }
        };
        if self.breaking.is_empty() {
            format!("only additions ({})", list(&self.added))
        } else {
            list(&self.breaking)
        }
    }
}

/// Compares the columns at the backup with the columns now.
pub fn classify(before: &[SchemaColumn], now: &[SchemaColumn]) -> SchemaChange {
    let tables = |cols: &[SchemaColumn]| -> BTreeSet<String> {
        cols.iter().map(|c| c.table.clone()).collect()
    };
    let (tables_before, tables_now) = (tables(before), tables(now));
    let mut change = SchemaChange::default();
    for t in tables_now.difference(&tables_before) {
        change.added.push(format!("table {t}"));
    }
    for t in tables_before.difference(&tables_now) {
        change
            .breaking
            .push(format!("table {t} was dropped (or renamed)"));
    }
    let find = |cols: &'_ [SchemaColumn], c: &SchemaColumn| {
        cols.iter()
            .find(|o| o.table == c.table && o.name == c.name)
            .cloned()
    };
    for c in now.iter().filter(|c| tables_before.contains(&c.table)) {
        let name = format!("{}.{}", c.table, c.name);
        match find(before, c) {
            None if c.nullable || c.has_default => change.added.push(format!("column {name}")),
            None => change.breaking.push(format!(
                "column {name} was added NOT NULL without a default (the previous version's inserts into {} would fail)",
                c.table
            )),
            Some(b) if b.data_type != c.data_type => change.breaking.push(format!(
                "column {name} was retyped from {} to {}",
                b.data_type, c.data_type
            )),
            Some(b) if b.nullable && !c.nullable && !c.has_default => change
                .breaking
                .push(format!("column {name} became NOT NULL")),
            Some(b) if !b.nullable && c.nullable => change.breaking.push(format!(
                "column {name} now allows NULL (the previous version may not expect it)"
            )),
            Some(_) => {}
        }
    }
    for c in before.iter().filter(|c| tables_now.contains(&c.table)) {
        if find(now, c).is_none() {
            change.breaking.push(format!(
                "column {}.{} was dropped (or renamed)",
                c.table, c.name
            ));
        }
    }
    change
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(
        table: &str,
        name: &str,
        data_type: &str,
        nullable: bool,
        default: bool,
    ) -> SchemaColumn {
        SchemaColumn {
            table: table.into(),
            name: name.into(),
            data_type: data_type.into(),
            nullable,
            has_default: default,
        }
    }

    fn base() -> Vec<SchemaColumn> {
        vec![
            col("issues", "id", "integer", false, true),
            col("issues", "legacy_priority", "integer", true, false),
            col("issues", "title", "text", false, false),
        ]
    }

    #[test]
    fn new_tables_and_columns_that_inserts_can_leave_out_are_additive() {
        // Specivo 0021: a jsonb NOT NULL DEFAULT column and a new table.
        let mut now = base();
        now.push(col("issues", "metadata", "jsonb", false, true));
        now.push(col("saved_searches", "id", "integer", false, true));
        now.push(col("saved_searches", "query", "text", false, false));
        let change = classify(&base(), &now);
        assert!(change.is_additive(), "{change:?}");
        assert_eq!(
            change.added,
            ["table saved_searches", "column issues.metadata"]
        );
        assert_eq!(
            change.words(),
            "only additions (table saved_searches; column issues.metadata)"
        );
        assert!(classify(&base(), &base()).is_additive());
    }

    #[test]
    fn a_drop_a_retype_or_a_column_old_inserts_cannot_fill_is_breaking() {
        // Specivo 0022: a dropped column.
        let dropped: Vec<SchemaColumn> = base()
            .into_iter()
            .filter(|c| c.name != "legacy_priority")
            .collect();
        let change = classify(&base(), &dropped);
        assert_eq!(
            change.breaking,
            ["column issues.legacy_priority was dropped (or renamed)"]
        );
        let mut retyped = base();
        retyped[2].data_type = "character varying(50)".into();
        assert!(classify(&base(), &retyped).breaking[0].contains("retyped from text"));
        let mut required = base();
        required.push(col("issues", "owner", "integer", false, false));
        assert!(classify(&base(), &required).breaking[0].contains("inserts into issues"));
        let gone = vec![col("comments", "id", "integer", false, true)];
        let change = classify(&base(), &gone);
        assert!(
            change
                .breaking
                .contains(&"table issues was dropped (or renamed)".to_string()),
            "{change:?}"
        );
    }
}
