//! The evidence of a failure: a service's last log lines, shown by the preflight and by an
//! upgrade that failed.
use super::facts;

/// How many of a failing container's last log lines are shown.
pub const LOG_LINES: usize = 12;

/// The last log lines of a service's (most troubled) container, or why there are none.
pub async fn last_lines(docker: &facts::Running, service: &str) -> Vec<String> {
    let Some(c) = docker
        .of_service(service)
        .into_iter()
        .max_by_key(|c| !c.is_running())
    else {
        return vec!["(no container)".into()];
    };
    match crate::docker::last_log_lines(&docker.engine, &c.id, LOG_LINES).await {
        Ok(lines) if lines.is_empty() => vec!["(the container logged nothing)".into()],
        Ok(lines) => lines,
        Err(e) => vec![format!("(its logs could not be read: {e})")],
    }
}
