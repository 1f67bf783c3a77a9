//! The app's HTTP checks as it answers them now: the ports found in the compose file, each
//! settled to the scheme it speaks, and the app's own readiness page (`/health/ready`) where it
//! has one. What `check` shows is then what an upgrade will hold the app to.
use super::{Finding, Level};
use crate::probe::facts::Facts;

pub async fn finding(facts: &Facts) -> Option<Finding> {
    if facts.docker.is_err() || facts.view.smoke.is_empty() {
        return None;
    }
    let mut checks = facts.view.smoke.clone();
    let said = crate::steps::smoke::baseline(&mut checks).await;
    if checks.is_empty() {
        return Some(
            Finding::new(
                "app_answers",
                Level::Warn,
                "no port of the app gives an HTTP answer now, so an upgrade has no smoke check: add one in `x-hoist: {smoke: [...]}`",
            )
            .details(said),
        );
    }
    let words: Vec<String> = checks.iter().map(|c| c.words()).collect();
    Some(
        Finding::new(
            "app_answers",
            Level::Ok,
            format!("an upgrade holds the app to {}", words.join("; ")),
        )
        .details(said),
    )
}
