//! Compose processes that change a project's containers and are still running: a `docker compose
//! up` left by a hoist that was killed outright (it runs on; see `ComposeInvocation::up`), or
//! one a person started by hand. A run waits for them before it looks at or changes the stack.
use std::time::{Duration, Instant};

/// Subcommands that create, stop, start or remove containers.
const CHANGING: &[&str] = &[
    "up", "down", "stop", "start", "restart", "rm", "kill", "create",
];

/// A running Compose process of the project: its pid and command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeProcess {
    pub pid: u32,
    pub command: String,
}

/// Whether `args` (a command line) is Compose changing the containers of `project`.
fn is_changing(args: &[String], project: &str) -> bool {
    let Some(at) = args.iter().position(|a| {
        a == "compose" || a.rsplit('/').next().is_some_and(|b| b == "docker-compose")
    }) else {
        return false;
    };
    let mut rest = &args[at + 1..];
    // The plugin is run as `docker-compose compose ...`.
    if rest.first().is_some_and(|a| a == "compose") {
        rest = &rest[1..];
    }
    let mut names_project = false;
    let mut i = 0;
    let mut subcommand = None;
    while i < rest.len() {
        let a = rest[i].as_str();
        match a {
            "-p" | "--project-name" => {
                names_project |= rest.get(i + 1).is_some_and(|p| p == project);
                i += 2;
                continue;
            }
            _ if a.strip_prefix("--project-name=") == Some(project) => names_project = true,
            // Options with a value, before the subcommand.
            "-f"
            | "--file"
            | "--project-directory"
            | "--env-file"
            | "--profile"
            | "--ansi"
            | "--progress"
            | "--parallel"
                if subcommand.is_none() =>
            {
                i += 2;
                continue;
            }
            _ if !a.starts_with('-') && subcommand.is_none() => subcommand = Some(a),
            _ => {}
        }
        i += 1;
    }
    names_project && subcommand.is_some_and(|s| CHANGING.contains(&s))
}

/// The Compose processes changing `project`'s containers now (this process's own children are
/// never among them while it waits: it waits before it starts any).
pub fn running(project: &str) -> Vec<ComposeProcess> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if is_changing(&args, project) {
            found.push(ComposeProcess {
                pid,
                command: args.join(" "),
            });
        }
    }
    found.sort_by_key(|p| p.pid);
    found
}

/// Waits until no Compose process changes `project`'s containers, at most `limit`; `say` is told
/// once what is waited for. Err names what still runs.
pub async fn wait_for_others(
    project: &str,
    limit: Duration,
    say: &(dyn Fn(String) + Sync),
) -> Result<(), Vec<ComposeProcess>> {
    let began = Instant::now();
    let mut said = false;
    loop {
        let others = running(project);
        if others.is_empty() {
            if said {
                say(format!(
                    "it finished after {:.1} s",
                    began.elapsed().as_secs_f64()
                ));
            }
            return Ok(());
        }
        if began.elapsed() >= limit {
            return Err(others);
        }
        if !said {
            said = true;
            let pids: Vec<String> = others.iter().map(|p| p.pid.to_string()).collect();
            say(format!(
                "a `docker compose` that changes this stack's containers is still running (pid {}; left by a hoist that was stopped, or started by hand); waiting up to {} s for it to finish before going on",
                pids.join(", "),
                limit.as_secs()
            ));
            tracing::warn!(?others, "waiting for a running docker compose");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn compose_changing_the_project_is_told_from_the_rest() {
        let hoists = "docker compose --project-directory /srv/app --project-name app --file /srv/app/compose.yaml --env-file /srv/app/.env up -d";
        assert!(is_changing(&args(hoists), "app"));
        assert!(!is_changing(&args(hoists), "other"));
        let plugin = "/root/.docker/cli-plugins/docker-compose compose --project-name app up -d";
        assert!(is_changing(&args(plugin), "app"));
        assert!(is_changing(&args("docker-compose -p app down"), "app"));
        assert!(is_changing(
            &args("docker compose --project-name=app stop"),
            "app"
        ));
        // Reading, not changing; or no project named.
        assert!(!is_changing(&args("docker compose -p app logs -f"), "app"));
        assert!(!is_changing(&args("docker compose -p app ps"), "app"));
        assert!(!is_changing(&args("docker compose up -d"), "app"));
        assert!(!is_changing(&args("vim compose.yaml -p app up"), "app"));
    }
}
