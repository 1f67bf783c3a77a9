//! A command check: an operator command run in a service's running container through the
//! Docker API (an argv, no shell), held to its exit code and, when asked, a line it prints.
use std::time::{Duration, Instant};

use crate::probe::facts::Running;
use crate::stack::checks::{ExecCheck, seconds};

/// Ok: the line that answered (the matching one, else the last) and how long it took.
/// Err: what happened instead.
pub async fn run(check: &ExecCheck, running: &Running) -> Result<(String, u64), String> {
    let started = Instant::now();
    let Some(container) = running
        .of_service(&check.service)
        .into_iter()
        .find(|c| c.is_running())
    else {
        return Err(format!(
            "{} has no running container to run it in",
            check.service
        ));
    };
    let argv: Vec<&str> = check.command.iter().map(String::as_str).collect();
    let ran = tokio::time::timeout(
        Duration::from_millis(check.timeout_ms),
        crate::docker::exec::exec_output(&running.engine, &container.id, &argv, &[], 256 * 1024),
    )
    .await;
    let ms = started.elapsed().as_millis() as u64;
    let (outcome, stdout) = match ran {
        Err(_) => {
            return Err(format!(
                "it did not finish within {} (it may still run in the container)",
                seconds(check.timeout_ms)
            ));
        }
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(done)) => done,
    };
    let stdout = crate::redact::mask(&stdout).into_owned();
    let lines: Vec<&str> = stdout
        .lines()
        .chain(outcome.stderr.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pattern = check
        .expect_output
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    let matching = pattern
        .as_ref()
        .and_then(|p| lines.iter().find(|l| p.is_match(l)));
    let last = lines
        .last()
        .map(|l| super::short(l, 160))
        .unwrap_or_default();
    let said = |line: &str| {
        if line.is_empty() {
            String::new()
        } else {
            format!(": {line}")
        }
    };
    // 126 and 127 are the runtime's own: the command could not be run at all.
    if outcome.exit_code == 126 || outcome.exit_code == 127 {
        return Err(format!(
            "{} could not be run in {} (exit {}{})",
            check.command[0],
            check.service,
            outcome.exit_code,
            said(&last)
        ));
    }
    if outcome.exit_code != check.expect_exit {
        return Err(format!(
            "exited {}, expected {}{}",
            outcome.exit_code,
            check.expect_exit,
            said(&last)
        ));
    }
    match (&pattern, matching) {
        (Some(p), None) => Err(format!(
            "exited {} but printed no line matching /{}/{}",
            outcome.exit_code,
            p.as_str(),
            said(&last)
        )),
        (_, Some(line)) => Ok((
            format!("exit {}: {}", outcome.exit_code, super::short(line, 160)),
            ms,
        )),
        (None, None) => Ok((format!("exit {}{}", outcome.exit_code, said(&last)), ms)),
    }
}
