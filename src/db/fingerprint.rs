//! The schema fingerprint: sha256 over the sorted columns of the user's tables, so that adding,
//! dropping or retyping a column changes it and writing rows does not.
use sha2::{Digest, Sha256};

use super::Column;

/// Hex sha256 of the canonical column list. Each field is length-prefixed, so no name, however
/// odd its characters, can make two different schemas hash alike.
pub(super) fn of(columns: &[Column]) -> String {
    let mut lines: Vec<String> = columns
        .iter()
        .map(|c| {
            let nullable = if c.nullable { "YES" } else { "NO" };
            [c.schema.as_str(), &c.table, &c.name, &c.data_type, nullable]
                .iter()
                .map(|f| format!("{}:{f}", f.len()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    lines.sort();
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::super::Column;
    use super::of;

    fn col(table: &str, name: &str, data_type: &str, nullable: bool) -> Column {
        Column {
            schema: "public".into(),
            table: table.into(),
            name: name.into(),
            data_type: data_type.into(),
            nullable,
            has_default: false,
        }
    }

    #[test]
    fn order_does_not_matter_but_every_field_does() {
        let a = col("issues", "id", "integer", false);
        let b = col("issues", "title", "text", true);
        let base = of(&[a.clone(), b.clone()]);
        assert_eq!(base.len(), 64);
        assert_eq!(base, of(&[b.clone(), a.clone()]));
        assert_ne!(base, of(std::slice::from_ref(&a)), "dropped column");
        assert_ne!(
            base,
            of(&[a.clone(), col("issues", "title", "varchar", true)])
        );
        assert_ne!(
            base,
            of(&[a.clone(), col("issues", "title", "text", false)])
        );
        assert_ne!(
            base,
            of(&[a.clone(), col("tickets", "title", "text", true)])
        );
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        assert_ne!(
            of(&[col("a,b", "c", "t", true)]),
            of(&[col("a", "b,c", "t", true)])
        );
    }
}
