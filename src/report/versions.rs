//! `hoist versions`: the upgraded image's versions in its registry, what runs now (and what
//! `latest` really is), the suggested next step and the path to the newest.
use std::fmt::Write as _;

use serde_json::json;

use super::Output;
use crate::context::Context;
use crate::probe::facts;
use crate::versions;

pub async fn run(ctx: &Context) -> Output {
    let (stack, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return Output::failed("versions", 2, err.to_string()),
    };
    let variable = stack.detection.version.variable.clone();
    let pinned = stack.detection.version.value.clone();
    let images =
        match crate::stack::targets::target_images(&stack, pinned.as_deref().unwrap_or("latest")) {
            Ok(i) => i,
            Err(e) => return Output::failed("versions", 2, e),
        };
    let Some(image) = images.values().next().cloned() else {
        return Output::failed(
            "versions",
            2,
            format!("no service's image uses {variable}, so there is no version to look up"),
        );
    };
    // The running container's version label helps resolve `latest`; Docker being away is fine.
    let facts = facts::gather(ctx, view).await;
    let services = crate::probe::services::services(&facts);
    let running = crate::probe::services::running_version(&services);
    let o = match versions::overview(&image, pinned.as_deref(), running.as_deref()).await {
        Ok(o) => o,
        Err(e) => return Output::failed("versions", 3, e.to_string()),
    };

    let text = human(&o, &variable, &stack.detection.version);
    let summary = json!({
        "type": "summary",
        "command": "versions",
        "outcome": "ok",
        "exit_code": 0,
        "version_variable": variable,
        "repository": o.repository,
        "pinned": o.pinned,
        "current": o.current,
        "resolved": o.resolved,
        "running": running,
        "available": o.newer,
        "next": o.next,
        "newest": o.newest,
        "path": o.path,
        "tags": o.tags,
        "about_next": o.about_next,
    });
    Output {
        exit_code: 0,
        text,
        errors: String::new(),
        events: vec![summary],
    }
}

/// What a person reads: the pin, what runs, the newer versions with the next step and the path.
fn human(
    o: &versions::Overview,
    variable: &str,
    version: &crate::stack::detect::VersionPin,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "Image     {}", o.repository);
    let pinned = o.pinned.as_deref().unwrap_or("(not set)");
    let _ = if variable.is_empty() {
        writeln!(text, "Pinned    {pinned} ({})", version.site.place())
    } else {
        writeln!(text, "Pinned    {variable}={pinned}")
    };
    if let Some(r) = &o.resolved {
        let _ = writeln!(
            text,
            "          {} in the registry is {} (by its {})",
            r.tag, r.version, r.how
        );
    }
    if o.resolved.is_some()
        && let Some(c) = &o.current
    {
        let _ = writeln!(
            text,
            "          What runs here is {c}. Pin that exact version, so that it changes only when you upgrade: set {}",
            version.assignment(c)
        );
    }
    match &o.current {
        Some(c) => {
            let _ = writeln!(text, "Current   {c}");
        }
        None => {
            let _ = writeln!(
                text,
                "Current   unknown: {:?} is not a version and matches none",
                o.pinned.as_deref().unwrap_or("latest")
            );
        }
    }
    if o.newer.is_empty() {
        let _ = writeln!(text, "\nNo newer version in the registry.");
    } else {
        let _ = writeln!(text, "\nNewer versions (newest first):");
        for v in &o.newer {
            let mut marks = Vec::new();
            if Some(v) == o.newest.as_ref() {
                marks.push("newest");
            }
            if Some(v) == o.next.as_ref() {
                marks.push("next step");
            }
            let _ = writeln!(
                text,
                "  {v}{}",
                if marks.is_empty() {
                    String::new()
                } else {
                    format!("   <- {}", marks.join(", "))
                }
            );
        }
        if let (Some(next), Some(about)) = (&o.next, &o.about_next) {
            let lines: Vec<String> = [
                ("release notes", &about.release_notes),
                ("source", &about.source),
                ("revision", &about.revision),
                ("website", &about.url),
                ("documentation", &about.documentation),
            ]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("  {k:14} {v}")))
            .collect();
            if !lines.is_empty() {
                let _ = writeln!(text, "\nWhat is new in {next}:\n{}", lines.join("\n"));
            }
        }
        if o.path.len() > 1 {
            let _ = writeln!(
                text,
                "\nPath to {}: {} (one hop at a time: any release may carry migrations)",
                o.newest.as_deref().unwrap_or("?"),
                o.path.join(" -> ")
            );
        }
    }
    text
}
