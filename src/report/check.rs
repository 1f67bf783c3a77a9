//! `hoist check`: the preflight of an upgrade, shown. Changes nothing; exit 0 when ready, 3 when
//! not.
use serde_json::{Value, json};

use super::Output;
use crate::context::Context;
use crate::preflight::{Finding, Level};
use crate::probe::facts::{self, Facts};

pub async fn run(ctx: &Context) -> Output {
    let (stack, view) = match facts::load_stack(ctx) {
        Ok(loaded) => loaded,
        Err(err) => return Output::failed("check", 2, err.to_string()),
    };
    let facts = facts::gather(ctx, view).await;
    let mut findings = crate::preflight::findings(&stack, &facts).await;
    findings.extend(http_checks_finding(&facts).await);
    findings.extend(app_check_findings(&stack, &facts).await);
    findings.push(crate::preflight::state_dir_finding(&ctx.state_dir));
    render(&facts, findings)
}

/// The app's HTTP checks as it answers them now: the ports found in the compose file, each
/// settled to the scheme it speaks, and the app's own readiness page (`/health/ready`) where it
/// has one. What `check` shows is then what an upgrade will hold the app to.
async fn http_checks_finding(facts: &Facts) -> Option<Finding> {
    if facts.docker.is_err() || facts.view.smoke.is_empty() {
        return None;
    }
    let mut checks = facts.view.smoke.clone();
    let said = crate::steps::smoke::baseline(&mut checks).await;
    let (status, message) = if checks.is_empty() {
        (
            Level::Warn,
            "no port of the app gives an HTTP answer now, so an upgrade has no smoke check: add one in `x-hoist: {smoke: [...]}`".to_string(),
        )
    } else {
        let words: Vec<String> = checks.iter().map(|c| c.words()).collect();
        (
            Level::Ok,
            format!("an upgrade holds the app to {}", words.join("; ")),
        )
    };
    Some(Finding {
        name: "app_answers".into(),
        status,
        message,
        details: said,
        extra: serde_json::Map::new(),
    })
}

/// The app's own checks (`x-hoist: checks:`), run now as the upgrade's preflight runs them:
/// one that fails here would refuse the upgrade.
async fn app_check_findings(stack: &crate::stack::Stack, facts: &Facts) -> Vec<Finding> {
    let outcomes = crate::steps::checks::configured_now(
        &stack.detection.smoke,
        &stack.detection.app_checks,
        facts.docker.as_ref().ok(),
    )
    .await;
    outcomes
        .into_iter()
        .map(|o| Finding {
            name: "app_check".into(),
            status: if o.ok { Level::Ok } else { Level::Fail },
            message: if o.ok {
                format!("{}: {}", o.what, o.detail)
            } else {
                format!(
                    "{} fails now: {}; an upgrade would be refused, as it could not tell a broken upgrade from a good one",
                    o.what, o.detail
                )
            },
            details: Vec::new(),
            extra: serde_json::Map::new(),
        })
        .collect()
}

fn render(facts: &Facts, findings: Vec<Finding>) -> Output {
    let failed: Vec<&str> = findings
        .iter()
        .filter(|f| f.status == Level::Fail)
        .map(|f| f.name.as_str())
        .collect();
    let warnings: Vec<&str> = findings
        .iter()
        .filter(|f| f.status == Level::Warn)
        .map(|f| f.name.as_str())
        .collect();
    let ready = failed.is_empty();
    let mut events: Vec<Value> = findings
        .iter()
        .map(|f| {
            let mut v = json!(f);
            v["type"] = json!("check");
            v
        })
        .collect();
    events.push(json!({
        "type": "summary",
        "command": "check",
        "outcome": if ready { "ready" } else { "not_ready" },
        "ready": ready,
        "project": facts.view.project,
        "failed": failed,
        "warnings": warnings,
        "notes": facts.notes,
        "exit_code": if ready { 0 } else { 3 },
    }));
    let mut text = String::new();
    for note in &facts.notes {
        text.push_str(&format!("note  {note}\n"));
    }
    for f in &findings {
        let mark = match f.status {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        text.push_str(&format!("{mark}  {}\n", f.message));
        for line in &f.details {
            text.push_str(&format!("        | {line}\n"));
        }
    }
    text.push('\n');
    if ready {
        text.push_str(&format!(
            "Ready to upgrade{}.\n",
            if warnings.is_empty() {
                String::new()
            } else {
                format!(" (read the {} warning(s) above)", warnings.len())
            }
        ));
    } else {
        text.push_str(&format!(
            "Not ready to upgrade: {} problem(s) above ({}). Nothing was changed. Fix them and run `hoist check` again.\n",
            failed.len(),
            failed.join(", ")
        ));
    }
    let errors = match &facts.docker {
        Err(e) => format!("hoist: {e}\n"),
        Ok(_) => String::new(),
    };
    Output {
        exit_code: if ready { 0 } else { 3 },
        text,
        errors,
        events,
    }
}
