//! Going back to the previous version's files and images: re-pin it in `.env` (only that
//! value changes), then make sure its images are here, pulling them again when they were
//! removed.
use std::collections::BTreeMap;

use serde_json::Value;

use super::Finished;
use super::{Target, state_words};
use crate::docker::{Engine, images};
use crate::run::{Run, Step};
use crate::stack::{Stack, pin};
use crate::steps::engine_loss::EngineLoss;

/// The version to go back to, exactly: a moving tag (`latest`, `release`, `16`, or a tag like
/// `v2.0` whose image says it is 2.0.3) gets the digest of the image that ran before the
/// upgrade (from the backup's manifest), so going back lands on the same bits even after the
/// tag moved. Left as it is when the manifest cannot be read or the app's services ran images
/// of different digests (one tag cannot carry two).
pub fn exact_previous(previous: &str, backup_dir: &std::path::Path) -> String {
    let Some(manifest) = std::fs::read(backup_dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return previous.to_string();
    };
    let services: Vec<&str> = manifest["services"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let app_images: Vec<&Value> = manifest["images"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|i| i["service"].as_str().is_some_and(|s| services.contains(&s)))
                .collect()
        })
        .unwrap_or_default();
    // Only the registry knows `v2.0` moves; the image's own version label says so too.
    let bare = |v: &str| v.trim_start_matches(['v', 'V']).to_string();
    let label_differs = app_images
        .iter()
        .filter_map(|i| i["version"].as_str())
        .any(|label| bare(label) != bare(previous));
    if !crate::stack::locate::is_moving(previous) && !label_differs {
        return previous.to_string();
    }
    let mut digests: Vec<&str> = app_images
        .iter()
        .filter_map(|i| i["digest"].as_str())
        .collect();
    digests.sort_unstable();
    digests.dedup();
    match digests.as_slice() {
        [digest] if digest.starts_with("sha256:") => format!("{previous}@{digest}"),
        _ => previous.to_string(),
    }
}

/// Re-pins the previous version and brings its images; returns the image of each upgraded
/// service there. Err: the run ends there, the state said.
pub(super) async fn repin_and_pull(
    run: &mut Run<'_>,
    stack: &Stack,
    engine: &Engine,
    engine_loss: &EngineLoss,
    target: &Target,
    summary: &mut Value,
) -> Result<BTreeMap<String, String>, Finished> {
    let (previous, current) = (target.previous.as_str(), target.current.as_str());
    let version = &stack.detection.version;
    let file = version.file_label();
    // Re-pin the previous version (only that value changes).
    let step = run
        .start(Step::Pin, &format!("{current} -> {previous}"))
        .await;
    match pin::plan_at(&version.site, &stack.env_path, previous) {
        Ok(change) if change.before.as_deref() == Some(change.after.as_str()) => {
            run.progress(Step::Pin, format!("{file} already pins {previous}"));
        }
        Ok(change) => {
            if let Err(e) = pin::write_atomic(&change.path, &change.new_text) {
                let sentence = format!(
                    "writing {file} failed: {e}. {}",
                    state_words(target, &format!("{file} still pins {current}"))
                );
                return Err(run.fail(Step::Pin, step, sentence, summary.clone()).await);
            }
        }
        Err(e) => {
            let sentence = format!(
                "{e}. {}",
                state_words(target, &format!("{file} still pins {current}"))
            );
            return Err(run.fail(Step::Pin, step, sentence, summary.clone()).await);
        }
    }
    run.finish(Step::Pin, step, true, None).await;

    // The previous images: still here, or pulled again.
    let step = run
        .start(Step::Pull, "making sure the previous images are here")
        .await;
    let targets = match crate::stack::targets::target_images(stack, previous) {
        Ok(t) => t,
        Err(e) => {
            let sentence = format!(
                "{e}. {}",
                state_words(target, &format!("{file} pins {previous}"))
            );
            return Err(run.fail(Step::Pull, step, sentence, summary.clone()).await);
        }
    };
    let mut references: Vec<String> = targets.values().cloned().collect();
    references.sort();
    references.dedup();
    let mut missing = Vec::new();
    for reference in references {
        match images::is_local(engine, &reference).await {
            Ok(true) => run.progress(Step::Pull, format!("{reference} is still here")),
            Ok(false) => {
                run.progress(Step::Pull, format!("{reference} is gone: pulling it again"));
                missing.push(reference);
            }
            Err(e) => {
                let sentence = format!(
                    "{e}. {}",
                    state_words(target, &format!("{file} pins {previous}"))
                );
                return Err(run.fail(Step::Pull, step, sentence, summary.clone()).await);
            }
        }
    }
    if !missing.is_empty() {
        let say = crate::run::progress_to(run.events, Step::Pull);
        if let Err(e) = crate::steps::pull::pull_images(
            engine,
            &missing,
            engine_loss,
            stack.settings.timeout_pull,
            run.events,
            &say,
        )
        .await
        {
            let sentence = format!(
                "the previous image could not be pulled again: {e}. {}",
                state_words(
                    target,
                    &format!("{file} pins {previous}, the app still runs {current} or is stopped")
                )
            );
            return Err(run.fail(Step::Pull, step, sentence, summary.clone()).await);
        }
        for reference in &missing {
            run.progress(Step::Pull, format!("{reference} pulled"));
        }
    }
    run.finish(Step::Pull, step, true, None).await;
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::exact_previous;

    #[test]
    fn a_moving_previous_tag_goes_back_by_the_digest_that_ran() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = serde_json::json!({
            "services": ["api", "worker"],
            "images": [
                {"service": "api", "image": "r/app:latest", "digest": "sha256:aa"},
                {"service": "worker", "image": "r/app:latest", "digest": "sha256:aa"},
                {"service": "db", "image": "postgres:16", "digest": "sha256:bb"}
            ]
        });
        std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
        assert_eq!(exact_previous("latest", dir.path()), "latest@sha256:aa");
        assert_eq!(exact_previous("1.2.3", dir.path()), "1.2.3");
        assert_eq!(exact_previous("latest", &dir.path().join("none")), "latest");
    }

    #[test]
    fn a_tag_less_specific_than_the_version_its_image_says_goes_back_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = serde_json::json!({
            "services": ["app"],
            "images": [
                {"service": "app", "image": "r/app:v2.0", "digest": "sha256:cc", "version": "2.0.3"}
            ]
        });
        std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
        // Only the registry (or the image's label) tells that `v2.0` moves.
        assert_eq!(exact_previous("v2.0", dir.path()), "v2.0@sha256:cc");
        assert_eq!(exact_previous("v2.0.3", dir.path()), "v2.0.3");
        assert_eq!(exact_previous("2.0.3", dir.path()), "2.0.3");
    }
}
