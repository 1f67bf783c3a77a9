//! What changed in the configuration since the backup, besides the version: the backup's copies
//! of `.env` and the main compose file against the files now. A line that names the version
//! being left or the one gone back to is the pin, not a change of configuration. Values are
//! never said (they may be secrets): only the file and how many lines.
use std::collections::BTreeSet;
use std::path::Path;

use crate::probe::facts::StackView;

/// ".env (2 lines)", "compose.yaml (1 line)": each file whose other lines differ.
pub(super) fn changes(backup_dir: &Path, view: &StackView, versions: &[&str]) -> Vec<String> {
    let pairs = [
        (backup_dir.join("env"), view.env_file.as_path()),
        (backup_dir.join("compose.yaml"), view.compose_file.as_path()),
    ];
    let mut out = Vec::new();
    for (then, now) in pairs {
        // A file missing on either side (no .env then or now) says nothing hoist can weigh.
        let (Ok(then), Ok(now_text)) = (std::fs::read(&then), std::fs::read(now)) else {
            continue;
        };
        let n = differing_lines(&then, &now_text, versions);
        if n > 0 {
            let name = now.file_name().map_or_else(
                || now.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            out.push(format!(
                "{name} ({n} line{})",
                if n == 1 { "" } else { "s" }
            ));
        }
    }
    out
}

/// The variables the files now give the upgraded services otherwise than their containers ran
/// with at the backup (its `config.json`), in words, names only: a secret rotated in `.env`
/// before the upgrade shows here even when the backup's copy of `.env` already has it.
pub(super) async fn environment(
    backup_dir: &Path,
    facts: &crate::probe::facts::Facts,
) -> Option<String> {
    let then = crate::backup::config_snapshot::read(backup_dir)?;
    let changed = crate::preflight::environment_changed_from(facts, &then).await;
    (!changed.is_empty()).then(|| {
        format!(
            "the environment ({}; the backup's config.json holds what ran before)",
            changed.join(", ")
        )
    })
}

/// The lines in one file and not the other, blank lines, comments and pin lines left out.
fn differing_lines(then: &[u8], now: &[u8], versions: &[&str]) -> usize {
    let lines = |text: &[u8]| -> BTreeSet<String> {
        String::from_utf8_lossy(text)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter(|l| !versions.iter().any(|v| !v.is_empty() && l.contains(v)))
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (lines(then), lines(now));
    a.symmetric_difference(&b).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_is_not_a_change_of_configuration() {
        let then = b"APP_VERSION=1.0.0\nSECRET=a\n# note\n";
        let now = b"APP_VERSION=1.2.0\nSECRET=a\n\n# another note\n";
        assert_eq!(differing_lines(then, now, &["1.0.0", "1.2.0"]), 0);
        let now = b"APP_VERSION=1.2.0\nSECRET=b\nNEW_FLAG=on\n";
        // SECRET=a gone, SECRET=b and NEW_FLAG=on new.
        assert_eq!(differing_lines(then, now, &["1.0.0", "1.2.0"]), 3);
    }
}
