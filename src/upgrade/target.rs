//! The target: which releases lie on the way (one hop each, as the runbooks ask; or a direct
//! jump), the images each hop runs, and every one of them present in its registry, before
//! anything is touched.
use std::collections::BTreeMap;

use super::Finished;
use super::{PathMode, refused};
use crate::docker::images::{self, TagStatus};
use crate::preflight::{self as checks, Level};
use crate::probe::facts::{self, Facts};
use crate::run::{Run, Step};
use crate::stack::Stack;
use crate::stack::targets::target_images;

pub(super) struct Targets {
    /// The releases on the way, the target last.
    pub(super) hop_versions: Vec<String>,
    /// Each hop with the image each upgraded service runs there.
    pub(super) hops: Vec<(String, BTreeMap<String, String>)>,
    /// Every image of every hop, once.
    pub(super) references: Vec<String>,
}

pub(super) async fn check_target(
    run: &mut Run<'_>,
    stack: &Stack,
    docker: &facts::Running,
    path: PathMode,
    from: &str,
    to: &str,
    continuing: bool,
) -> Result<Targets, Finished> {
    // The target exists for every upgraded image, before anything is touched.
    let step = run
        .start(
            Step::Target,
            &format!("checking {to} exists in the registry"),
        )
        .await;
    let targets = match target_images(stack, to) {
        Ok(t) => t,
        Err(e) => {
            run.finish(Step::Target, step, false, Some(e.clone())).await;
            return Err(refused(2, e, to));
        }
    };
    // The releases on the way, each a hop (the runbooks' "one minor version at a time").
    // A resumed run goes on from the release .env pins now: that hop first (its restart is
    // what was interrupted), then the rest of the way.
    let pinned_now = stack.detection.version.value.clone().unwrap_or_default();
    let path_from = if continuing {
        pinned_now.clone()
    } else {
        from.to_string()
    };
    let hop_versions = match path {
        _ if path_from == to => vec![to.to_string()],
        PathMode::Direct => vec![to.to_string()],
        PathMode::Steps => match targets.values().next() {
            Some(image) => match crate::versions::path_to(image, &path_from, to).await {
                Ok(mut p) => {
                    if continuing {
                        p.insert(0, pinned_now.clone());
                    }
                    p
                }
                Err(e) => {
                    // A registry that cannot be reached cannot give the images either: jumping
                    // past the releases between would not help, and would skip their migrations.
                    let way_on = if matches!(
                        e,
                        crate::versions::registry::RegistryError::Unreachable { .. }
                    ) {
                        "Run it again once the registry answers".to_string()
                    } else {
                        format!("To jump straight to {to}, run with --path direct")
                    };
                    let sentence = format!(
                        "{e}, so hoist cannot tell which releases lie between {from} and {to}. Nothing was changed. {way_on}."
                    );
                    run.finish(Step::Target, step, false, Some(sentence.clone()))
                        .await;
                    return Err(refused(3, sentence, to));
                }
            },
            None => vec![to.to_string()],
        },
    };
    if hop_versions.len() > 1 {
        run.progress(
            Step::Target,
            format!(
                "{from} -> {to} goes through each release on the way: {}",
                hop_versions.join(" -> ")
            ),
        );
    }
    let mut hops: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for hop in &hop_versions {
        match target_images(stack, hop) {
            Ok(t) => hops.push((hop.clone(), t)),
            Err(e) => {
                run.finish(Step::Target, step, false, Some(e.clone())).await;
                return Err(refused(2, e, to));
            }
        }
    }
    let mut references: Vec<String> = hops.iter().flat_map(|(_, t)| t.values().cloned()).collect();
    references.sort();
    references.dedup();
    for reference in &references {
        match images::tag_status(&docker.engine, reference).await {
            Ok(TagStatus::Exists { digest }) => {
                run.progress(Step::Target, format!("{reference} exists ({digest})"))
            }
            Ok(TagStatus::Missing) => {
                let sentence = format!(
                    "{reference} does not exist in its registry: check the version tag (`hoist versions` lists those the registry has; a leading `v` is part of a tag). Nothing was changed."
                );
                run.finish(Step::Target, step, false, Some(sentence.clone()))
                    .await;
                return Err(refused(3, sentence, to));
            }
            Err(e) => {
                let sentence = format!("{e}. Nothing was changed.");
                run.finish(Step::Target, step, false, Some(sentence.clone()))
                    .await;
                return Err(refused(3, sentence, to));
            }
        }
    }
    run.finish(Step::Target, step, true, None).await;
    Ok(Targets {
        hop_versions,
        hops,
        references,
    })
}

/// The images to download (those not here yet) and their compressed size, refused when the
/// download would not fit beside the backup.
pub(super) async fn downloads(
    docker: &facts::Running,
    facts: &Facts,
    references: &[String],
    to: &str,
    estimate_bytes: u64,
) -> Result<(Vec<String>, u64), Finished> {
    let mut to_pull = Vec::new();
    for reference in references {
        match images::is_local(&docker.engine, reference).await {
            Ok(true) => {}
            Ok(false) => to_pull.push(reference.clone()),
            Err(e) => return Err(refused(3, e.to_string(), to)),
        }
    }
    // The download must fit too (with the backup, when Docker keeps images on the same disk).
    let mut download_bytes = 0u64;
    if !to_pull.is_empty() {
        match checks::measure_download(facts, to, &to_pull).await {
            Ok(d) => {
                download_bytes = d.bytes;
                let f = checks::download_finding(facts, &d, estimate_bytes);
                if f.status == Level::Fail {
                    return Err(refused(
                        3,
                        format!("{}. Nothing was changed.", f.message),
                        to,
                    ));
                }
            }
            // The size is an estimate: not knowing it is not a reason to refuse.
            Err(e) => tracing::warn!("download size unknown: {e}"),
        }
    }
    Ok((to_pull, download_bytes))
}
