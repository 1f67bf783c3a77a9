//! What a rehearsal leaves, removed: its own at its end, and what a hoist killed outright
//! during one left, at the project's next upgrade. Rehearsals are named so that whose they are
//! can be read back (`hoist-rehearsal-<random>-<project>`).
use std::path::Path;

use super::Rehearsal;
use crate::context::Context;

/// Removes what earlier rehearsals of this project left in Docker (a hoist killed outright
/// during one) and in the state dir. Returns what to tell the user.
pub(in crate::upgrade) async fn clear_left_behind(
    ctx: &Context,
    engine: &crate::docker::Engine,
    project: &str,
) -> Vec<String> {
    let mut said = Vec::new();
    match crate::docker::rehearsals::of_project(engine, project).await {
        Ok(left) => {
            for (name, _) in left {
                match crate::docker::rehearsals::remove(engine, &name).await {
                    Ok(()) => said.push(format!(
                        "removed the rehearsal {name} an earlier hoist left behind"
                    )),
                    Err(e) => said.push(e),
                }
            }
        }
        Err(e) => said.push(format!(
            "hoist could not look for rehearsals left behind: {e}"
        )),
    }
    if let Ok(entries) = std::fs::read_dir(ctx.state_dir.join("rehearsals")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if rehearsal_of(&name) == Some(project) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    said
}

/// The rehearsal's Compose project name: not a name the user's projects take
/// (`hoist-rehearsal-` and a random part first), the real project's name last.
pub(super) fn rehearsal_name(project: &str) -> String {
    // Whole: the next upgrade finds this project's leftovers by the name's end.
    format!("hoist-rehearsal-{:06x}-{project}", rand_part())
}

/// The project a rehearsal's name was made for (`rehearsal_name`).
pub(super) fn rehearsal_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("hoist-rehearsal-")?;
    let (random, project) = rest.split_once('-')?;
    (random.len() == 6 && random.bytes().all(|b| b.is_ascii_hexdigit())).then_some(project)
}

/// A few random hex digits (the clock's nanoseconds and the pid: enough not to meet another).
pub(super) fn rand_part() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().rotate_left(12)) & 0xff_ffff
}

/// Removes the rehearsal's containers, networks, volumes and files.
pub(super) async fn teardown(r: &Rehearsal<'_>, name: &str, dir: &Path) -> Result<(), String> {
    let removed = match &r.facts.docker {
        Ok(d) => crate::docker::rehearsals::remove(&d.engine, name).await,
        Err(e) => Err(e.to_string()),
    };
    let files = std::fs::remove_dir_all(dir);
    match (removed, files) {
        (Ok(()), Ok(())) => Ok(()),
        (Ok(()), Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        (Err(e), _) => Err(format!(
            "{e}; the next `hoist upgrade` removes it, or remove it by hand"
        )),
        (Ok(()), Err(e)) => Err(format!(
            "the rehearsal's files in {} could not be removed: {e}",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rehearsals_name_says_whose_it_is_and_no_other_project_matches() {
        let name = rehearsal_name("b-rh");
        assert!(name.starts_with("hoist-rehearsal-"), "{name}");
        assert_eq!(rehearsal_of(&name), Some("b-rh"));
        assert_ne!(rehearsal_of(&name), Some("rh"));
        assert_eq!(rehearsal_of("hoist-rehearsal-xyz-rh"), None);
        assert_eq!(rehearsal_of("rh"), None);
    }
}
