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
