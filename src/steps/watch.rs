//! Watching the restarted app: its logs as they are written (migrations reported as they run),
//! readiness (healthy, or running long enough without a restart) and failure (exit, restart
//! loop, unhealthy, a failure pattern, timeout); and the downtime as a user would see it.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::docker::{self, Engine, Health};
use crate::run::Event;
use crate::stack::detect::Smoke;

/// service -> the exit code of its container's last `die` (from Docker's events).
pub type ExitCodes = Arc<Mutex<BTreeMap<String, i64>>>;

/// Why the app did not come up, with its evidence.
pub struct Failure {
    pub reason: String,
    /// service -> its last log lines.
    pub evidence: BTreeMap<String, Vec<String>>,
}

/// The migration line formats of common frameworks: (from, to) when a line reports one step.
pub fn migration_step(line: &str) -> Option<(String, String)> {
    // alembic: "Running upgrade 0020 -> 0021, add labels"
    if let Some(rest) = line.split("Running upgrade ").nth(1) {
        let (from, rest) = rest.split_once(" -> ")?;
        let to = rest.split([',', ' ']).next()?.to_string();
        return Some((from.trim().to_string(), to));
    }
    // Django: "  Applying blog.0002_add_tags... OK"
    if let Some(rest) = line.trim_start().strip_prefix("Applying ") {
        let name = rest.split("...").next()?.trim();
        return (!name.is_empty()).then(|| (String::new(), name.to_string()));
    }
    // Rails: "== 20240301090000 AddTags: migrating ====="
    if let Some(rest) = line.strip_prefix("== ")
        && rest.contains(": migrating")
    {
        let version = rest.split_whitespace().next()?;
        return Some((String::new(), version.to_string()));
    }
    // sqlx-cli / golang-migrate: "Applied 20240101/migrate init (1.2ms)", "20240101/u init (12ms)"
    if let Some(rest) = line.strip_prefix("Applied ") {
        return Some((String::new(), rest.split_whitespace().next()?.to_string()));
    }
    if let Some((version, rest)) = line.split_once("/u ")
        && version.chars().all(|c| c.is_ascii_digit())
        && !rest.is_empty()
    {
        return Some((String::new(), version.to_string()));
    }
    None
}

const EVIDENCE_LINES: usize = 25;
/// How often the containers are looked at while the app starts.
const POLL: Duration = Duration::from_millis(250);

/// What a watch of the restarted app follows and how it judges it (owned: the watch runs as
/// its own task, on past the moment the app is up while the checks run).
pub struct Watch {
    pub events: UnboundedSender<Event>,
    pub engine: Engine,
    pub project: String,
    /// service -> the image it must run.
    pub targets: BTreeMap<String, String>,
    pub with_healthcheck: Vec<String>,
    pub one_shot: Vec<String>,
    /// Unix time the logs are followed from.
    pub since: i64,
    pub timeout: Duration,
    /// How long a service without a healthcheck must run without a restart.
    pub ready_after: Duration,
    pub ready_pattern: Option<regex::Regex>,
    pub failure_patterns: Vec<regex::Regex>,
    pub exit_codes: ExitCodes,
    pub no_dump: bool,
    pub ready_url: Option<Smoke>,
}

/// A watch under way: `up` when every service runs (healthy where it has a healthcheck),
/// `ready` when those without one have also run `ready_after` without a restart.
pub struct Watching {
    task: tokio::task::JoinHandle<Result<(), Failure>>,
    up: tokio::sync::oneshot::Receiver<()>,
}

/// The rest of a watch once the app is up: services without a healthcheck still have to run
/// their window out. Dropped, it stops watching.
pub struct Steady(tokio::task::JoinHandle<Result<(), Failure>>);

impl Steady {
    /// Until every service ran its window out without a restart (or failed).
    pub async fn held(mut self) -> Result<(), Failure> {
        joined((&mut self.0).await)
    }
}

impl Drop for Steady {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn joined(r: Result<Result<(), Failure>, tokio::task::JoinError>) -> Result<(), Failure> {
    r.unwrap_or_else(|e| {
        Err(Failure {
            reason: format!("the watch of the app stopped: {e}"),
            evidence: BTreeMap::new(),
        })
    })
}

impl Watch {
    pub fn start(self) -> Watching {
        let (tx, up) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            until_ready(
                &self.events,
                &self.engine,
                &self.project,
                &self.targets,
                &self.with_healthcheck,
                &self.one_shot,
                self.since,
                self.timeout,
                self.ready_after,
                self.ready_pattern.as_ref(),
                &self.failure_patterns,
                &self.exit_codes,
                self.no_dump,
                self.ready_url.as_ref(),
                Some(tx),
            )
            .await
        });
        Watching { task, up }
    }
}

impl Watching {
    /// Until the app is ready, window and all.
    pub async fn ready(self) -> Result<(), Failure> {
        joined(self.task.await)
    }

    /// Until the app is up; what is left of the watch, if anything.
    pub async fn up(self) -> Result<Option<Steady>, Failure> {
        let mut task = Steady(self.task);
        match self.up.await {
            Ok(()) => Ok(Some(task)),
            // The watch ended first: ready, or failed.
            Err(_) => joined((&mut task.0).await).map(|()| None),
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn until_ready(
    events: &UnboundedSender<Event>,
    engine: &Engine,
    project: &str,
    targets: &BTreeMap<String, String>,
    with_healthcheck: &[String],
    one_shot: &[String],
    since: i64,
    timeout: Duration,
    ready_after: Duration,
    ready_pattern: Option<&regex::Regex>,
    failure_patterns: &[regex::Regex],
    exit_codes: &ExitCodes,
    no_dump: bool,
    ready_url: Option<&Smoke>,
    mut up: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), Failure> {
    let heard = Heard {
        no_dump: no_dump.then(|| Arc::new(std::sync::atomic::AtomicBool::new(false))),
        ..Heard::default()
    };
    let mut followers: BTreeMap<String, tokio::task::JoinHandle<()>> = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    let evidence = |tails: &Arc<Mutex<BTreeMap<String, Vec<String>>>>| {
        tails.lock().map(|t| t.clone()).unwrap_or_default()
    };
    // The app's own readiness page (`/health/ready`), when it has one: the app is ready only
    // once it answers 200 too (each service still judged by its own rule: a worker beside it
    // says nothing on that page).
    let mut app_says_ready = false;
    let mut said_ready = false;
    // What the readiness page said last, for the failure's sentence.
    let mut last_ready_answer: Option<String> = None;
    let result = loop {
        if let Some(url) = ready_url.filter(|_| !app_says_ready) {
            let answer = super::smoke::check(url).await;
            app_says_ready = answer.ok;
            last_ready_answer = answer.error;
        }
        if let Some(url) = ready_url.filter(|_| app_says_ready && !said_ready) {
            said_ready = true;
            let _ = events.send(Event::Progress {
                step: crate::run::Step::Watch,
                message: format!("{} answers 200: the app says it is ready", url.url),
            });
        }
        let containers = match docker::stack_containers(engine, project).await {
            Ok(c) => c,
            Err(e) => break Err(format!("Docker stopped answering: {e}")),
        };
        let mut ready = 0;
        let mut running = 0;
        let mut failed: Option<String> = None;
        for (service, image) in targets {
            let mine: Vec<_> = containers
                .iter()
                .filter(|c| &c.service == service && &c.image == image)
                .collect();
            for c in &mine {
                // Follow each new container's log once, from the restart on; again from now
                // when its stream ended while it runs (the daemon restarted in between).
                let ended = followers.get(&c.id).map(|f| f.is_finished());
                if ended.is_none() || (ended == Some(true) && c.is_running()) {
                    let from = match ended {
                        None => since,
                        Some(_) => jiff::Timestamp::now().as_second(),
                    };
                    let follower = follow_log(
                        events,
                        engine,
                        &c.id,
                        service,
                        from,
                        &heard,
                        ready_pattern,
                        failure_patterns,
                    );
                    followers.insert(c.id.clone(), follower);
                }
            }
            let Some(c) = mine.first() else { continue };
            let started = judge(
                service,
                c,
                one_shot,
                with_healthcheck,
                exit_codes,
                Duration::ZERO,
                &heard.said_ready,
            );
            if matches!(started, Some(Ok(()))) {
                running += 1;
            }
            match judge(
                service,
                c,
                one_shot,
                with_healthcheck,
                exit_codes,
                ready_after,
                &heard.said_ready,
            ) {
                Some(Ok(())) => ready += 1,
                Some(Err(reason)) => failed = Some(reason),
                None => {}
            }
        }
        if let Some(hit) = heard.pattern_hit.lock().ok().and_then(|h| h.clone()) {
            break Err(hit);
        }
        if let Some(f) = failed {
            // Let the followers catch the last lines (the traceback) before reporting.
            tokio::time::sleep(Duration::from_millis(500)).await;
            break Err(f);
        }
        if ready == targets.len() && (ready_url.is_none() || app_says_ready) {
            break Ok(());
        }
        if running == targets.len()
            && (ready_url.is_none() || app_says_ready)
            && let Some(tx) = up.take()
        {
            let _ = tx.send(());
        }
        if Instant::now() >= deadline {
            let waiting = match ready_url {
                Some(url) if ready == targets.len() => match &last_ready_answer {
                    Some(said) => format!(": {} did not answer 200 ({said})", url.url),
                    None => format!(": {} did not answer 200", url.url),
                },
                _ => String::new(),
            };
            break Err(format!("not ready after {} s{waiting}", timeout.as_secs()));
        }
        tokio::time::sleep(POLL).await;
    };
    for (_, f) in followers {
        f.abort();
    }
    result.map_err(|reason| Failure {
        reason,
        evidence: evidence(&heard.tails),
    })
}

/// What the log followers heard, shared with the watch loop.
#[derive(Clone, Default)]
struct Heard {
    /// service -> its last log lines.
    tails: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    /// Services without a healthcheck whose log printed the configured ready line.
    said_ready: Arc<Mutex<BTreeSet<String>>>,
    /// The first line that matched a failure pattern, said.
    pattern_hit: Arc<Mutex<Option<String>>>,
    /// Set when the backup holds no database dump: whether a migration line was said so yet.
    no_dump: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// Follows container `id`'s log from `from` on: each line sent, migration steps reported, and
/// what `heard` keeps (the tail, the ready line, a failure pattern).
#[allow(clippy::too_many_arguments)]
fn follow_log(
    events: &UnboundedSender<Event>,
    engine: &Engine,
    id: &str,
    service: &str,
    from: i64,
    heard: &Heard,
    ready_pattern: Option<&regex::Regex>,
    failure_patterns: &[regex::Regex],
) -> tokio::task::JoinHandle<()> {
    let (events, engine, id, service) = (
        events.clone(),
        engine.clone(),
        id.to_string(),
        service.to_string(),
    );
    let (tails, pattern_hit, patterns) = (
        heard.tails.clone(),
        heard.pattern_hit.clone(),
        failure_patterns.to_vec(),
    );
    let (said_ready, ready_pattern) = (heard.said_ready.clone(), ready_pattern.cloned());
    let no_dump = heard.no_dump.clone();
    tokio::spawn(async move {
        let mut on_line = |line: String| {
            if let Some((from, to)) = migration_step(&line) {
                // Said once: a migration hoist has no dump to undo with.
                if no_dump
                    .as_ref()
                    .is_some_and(|said| !said.swap(true, std::sync::atomic::Ordering::SeqCst))
                {
                    let _ = events.send(Event::Progress {
                        step: crate::run::Step::Watch,
                        message: format!(
                            "warning: {service} is migrating a database ({from} -> {to}), and the backup holds no dump of it (hoist found no database it can dump): a rollback can put back the previous version and the data, not the database as it was"
                        ),
                    });
                }
                let _ = events.send(Event::Migration {
                    service: service.clone(),
                    from,
                    to,
                });
            }
            if ready_pattern.as_ref().is_some_and(|p| p.is_match(&line))
                && let Ok(mut ready) = said_ready.lock()
            {
                ready.insert(service.clone());
            }
            if let Some(p) = patterns.iter().find(|p| p.is_match(&line))
                && let Ok(mut hit) = pattern_hit.lock()
            {
                hit.get_or_insert(format!(
                    "{service} logged a line matching the failure pattern {:?}: {line}",
                    p.as_str()
                ));
            }
            if let Ok(mut t) = tails.lock() {
                let tail = t.entry(service.clone()).or_default();
                tail.push(line.clone());
                if tail.len() > EVIDENCE_LINES {
                    tail.remove(0);
                }
            }
            let _ = events.send(Event::Log {
                service: service.clone(),
                line,
            });
        };
        let _ = docker::logs::follow(&engine, &id, from, &mut on_line).await;
    })
}

/// One service's container judged: Some(Ok) ready, Some(Err) failed and why, None not yet.
fn judge(
    service: &str,
    c: &docker::ContainerInfo,
    one_shot: &[String],
    with_healthcheck: &[String],
    exit_codes: &ExitCodes,
    ready_after: Duration,
    said_ready: &Mutex<BTreeSet<String>>,
) -> Option<Result<(), String>> {
    let started = c
        .started_at
        .as_deref()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| jiff::Timestamp::now().duration_since(t).as_secs_f64())
        .unwrap_or(0.0);
    // A one-shot job on the app's image (an init or migration service) is done when it
    // exited 0, as Compose's `service_completed_successfully` judges it.
    if one_shot.iter().any(|s| s == service) && (c.state == "exited" || c.state == "dead") {
        if c.exit_code == 0 {
            Some(Ok(()))
        } else {
            Some(Err(format!(
                "{service} (a one-shot job) exited with code {}",
                c.exit_code
            )))
        }
    } else if c.state == "exited" || c.state == "dead" {
        Some(Err(format!("{service} exited with code {}", c.exit_code)))
    } else if c.state == "restarting" || c.restart_count > 0 {
        // A restarted container reports exit code 0 while it runs again: Docker's
        // `die` event kept the real one.
        let code = exit_codes
            .lock()
            .ok()
            .and_then(|m| m.get(service).copied())
            .unwrap_or(c.exit_code);
        Some(Err(format!(
            "{service} is crash-looping (restarted {} time{}, last exit code {code})",
            c.restart_count,
            if c.restart_count == 1 { "" } else { "s" },
        )))
    } else if c.health == Some(Health::Unhealthy) {
        Some(Err(format!("{service} is unhealthy")))
    } else if with_healthcheck.iter().any(|s| s == service) {
        (c.health == Some(Health::Healthy)).then_some(Ok(()))
    } else if c.is_running()
        && (started >= ready_after.as_secs_f64()
            || said_ready.lock().is_ok_and(|r| r.contains(service)))
    {
        Some(Ok(()))
    } else {
        None
    }
}

/// Downtime as a user sees it: from the first container stopped (or the first failed answer,
/// when that came first) to the first success after that, the first smoke URL polled every
/// 250 ms from the restart.
pub struct Downtime {
    task: Option<tokio::task::JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    window: Arc<Mutex<(Option<Instant>, Option<Instant>)>>,
    first_stop: Arc<Mutex<Option<Instant>>>,
}

impl Downtime {
    pub fn start(smoke: Option<Smoke>) -> Downtime {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let window: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
        let task = smoke.map(|s| {
            let (stop, window) = (stop.clone(), window.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let ok = super::smoke::request_headers(
                        &s.method,
                        &s.url,
                        Duration::from_millis(1000),
                        s.allow_self_signed,
                        &s.headers,
                    )
                    .await
                    .is_ok_and(|(status, _)| super::smoke::expect_accepts(&s.expect, status));
                    if let Ok(mut w) = window.lock() {
                        match (ok, w.0, w.1) {
                            (false, None, _) => w.0 = Some(Instant::now()),
                            (true, Some(_), None) => w.1 = Some(Instant::now()),
                            _ => {}
                        }
                        if w.1.is_some() {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        });
        Downtime {
            task,
            stop,
            window,
            first_stop: Arc::default(),
        }
    }

    /// A callback to call when a container of the app stops; the first call counts.
    pub fn stop_marker(&self) -> impl Fn() + Send + 'static {
        let first_stop = self.first_stop.clone();
        move || {
            if let Ok(mut s) = first_stop.lock() {
                s.get_or_insert_with(Instant::now);
            }
        }
    }

    /// Stops polling; the downtime in ms (0 when the app never stopped answering; `None` when
    /// there is no URL to poll or it had not answered again).
    pub async fn stop(self) -> Option<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let task = self.task?;
        let _ = task.await;
        let w = *self.window.lock().ok()?;
        let first_stop = *self.first_stop.lock().ok()?;
        match w {
            (None, _) => Some(0),
            (Some(failed), Some(up)) => {
                let down = first_stop.map_or(failed, |s| s.min(failed));
                Some(up.duration_since(down).as_millis() as u64)
            }
            (Some(_), None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::migration_step;

    #[test]
    fn migration_lines_of_common_frameworks() {
        assert_eq!(
            migration_step(
                "INFO  [alembic.runtime.migration] Running upgrade 0020 -> 0021, add issue metadata"
            ),
            Some(("0020".into(), "0021".into()))
        );
        assert_eq!(
            migration_step(
                "INFO  [alembic.runtime.migration] Running upgrade  -> 0001, create users"
            ),
            Some(("".into(), "0001".into()))
        );
        assert_eq!(
            migration_step("  Applying blog.0002_add_tags... OK"),
            Some(("".into(), "blog.0002_add_tags".into()))
        );
        assert_eq!(
            migration_step("== 20240301090000 AddTags: migrating ======"),
            Some(("".into(), "20240301090000".into()))
        );
        assert_eq!(
            migration_step("20240101120000/u create_users (12.3ms)"),
            Some(("".into(), "20240101120000".into()))
        );
        assert_eq!(
            migration_step("INFO:     Application startup complete."),
            None
        );
    }
}
