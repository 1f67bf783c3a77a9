//! What an upgrade will do, shown before it asks to go on: built once by the engine, shown by
//! every front end, and printed as `"plan"` in JSON.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradePlan {
    pub project: String,
    pub from: String,
    pub to: String,
    pub backup: PlannedBackup,
    /// The releases on the way, the target last.
    pub path: Vec<String>,
    /// The images to download (the ones already here left out).
    pub pull: Vec<String>,
    /// Their compressed size, when the registry said (0 when unknown or nothing to pull).
    pub download_bytes: u64,
    /// The services recreated.
    pub recreate: Vec<String>,
    pub env_diff: EnvDiff,
    /// Unhealthy services the user chose to upgrade past.
    pub overridden: Vec<String>,
    /// The smoke checks after each restart ("GET http://127.0.0.1:9933/ expecting <400").
    #[serde(default)]
    pub checks: Vec<String>,
    /// Data the backup leaves out, each with why.
    #[serde(default)]
    pub left_out: Vec<String>,
    /// The Docker Swarm stack the app runs as: its services are updated through Swarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_stack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedBackup {
    pub dir: PathBuf,
    /// "postgres dump of NAME (service S)", or None without a database.
    pub database: Option<String>,
    /// The data directories and volumes archived.
    pub data: Vec<String>,
}

/// The line the first pin changes: in `.env`, or the compose file holding a literal tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvDiff {
    pub file: PathBuf,
    /// 1-based; None when the variable is new.
    pub line: Option<usize>,
    pub before: Option<String>,
    pub after: String,
    /// Other lines the same pin changes (a literal tag written on several `image:` lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_lines: Vec<usize>,
}

impl EnvDiff {
    /// "line 6", "lines 6 and 18", "(new)".
    pub fn lines_words(&self) -> String {
        let Some(first) = self.line else {
            return "(new)".to_string();
        };
        if self.also_lines.is_empty() {
            return format!("line {first}");
        }
        let mut all: Vec<String> = std::iter::once(first)
            .chain(self.also_lines.iter().copied())
            .map(|n| n.to_string())
            .collect();
        let last = all.pop().unwrap_or_default();
        format!("lines {} and {last}", all.join(", "))
    }

    /// The changed file's name, as the plan labels it (".env", "compose.yaml").
    pub fn label(&self) -> String {
        self.file
            .file_name()
            .map_or_else(|| ".env".to_string(), |n| n.to_string_lossy().into_owned())
    }
}

impl UpgradePlan {
    /// Whether the upgrade goes through more than one release.
    pub fn is_multi_hop(&self) -> bool {
        self.path.len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_a_pin_changes_is_named() {
        let mut d = plan().env_diff;
        assert_eq!(d.lines_words(), "line 2");
        d.also_lines = vec![18];
        assert_eq!(d.lines_words(), "lines 2 and 18");
        d.also_lines = vec![18, 30];
        assert_eq!(d.lines_words(), "lines 2, 18 and 30");
        d.line = None;
        assert_eq!(d.lines_words(), "(new)");
    }

    fn plan() -> UpgradePlan {
        UpgradePlan {
            project: "specivo".into(),
            from: "0.1.9".into(),
            to: "0.1.11".into(),
            backup: PlannedBackup {
                dir: "/srv/backups".into(),
                database: Some("postgres dump of specivo (service db)".into()),
                data: vec!["/srv/specivo/data".into()],
            },
            path: vec!["0.1.10".into(), "0.1.11".into()],
            pull: vec![],
            download_bytes: 0,
            recreate: vec!["api".into()],
            env_diff: EnvDiff {
                file: "/srv/specivo/.env".into(),
                line: Some(2),
                before: Some("V=0.1.9".into()),
                after: "V=0.1.10".into(),
                also_lines: Vec::new(),
            },
            overridden: vec![],
            checks: vec![],
            left_out: vec![],
            swarm_stack: None,
        }
    }

    #[test]
    fn the_json_keeps_the_keys_scripts_read() {
        let v = serde_json::to_value(plan()).unwrap();
        assert_eq!(v["backup"]["dir"], "/srv/backups");
        assert_eq!(v["env_diff"]["line"], 2);
        assert_eq!(v["path"], serde_json::json!(["0.1.10", "0.1.11"]));
        assert_eq!(v["download_bytes"], 0);
        assert!(plan().is_multi_hop());
    }
}
