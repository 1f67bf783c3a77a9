//! The engine driven as the wizard drives it, on the test bed: a person's override of an
//! unhealthy service, and a stop at the next safe point (before the first change, between two
//! hops). Real stack, real registry, real database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{TestStack, docker_available};
use hoist::context::Context;
use hoist::run::{Event, Finished, Question, Stop};
use hoist::upgrade::{PathMode, Request};

/// Answers as a person in the wizard would have: yes to the plan, and the override as told.
struct Person {
    override_unhealthy: bool,
}

impl Person {
    fn answer(&self, question: &Question) -> bool {
        match question {
            Question::Override { .. } => self.override_unhealthy,
            Question::Upgrade { .. } | Question::Rollback { .. } => true,
        }
    }
}

fn context(stack: &TestStack) -> Context {
    Context::from_args(
        Some(stack.dir.clone()),
        Vec::new(),
        None,
        None,
        Some(stack.state_dir.clone()),
    )
    .unwrap()
}

/// Runs the engine to `to`; `on_event` sees each event as it comes (and may ask to stop).
fn upgrade(
    stack: &TestStack,
    to: &str,
    path: PathMode,
    person: Person,
    stop: Stop,
    on_event: impl Fn(&Event, &Stop) + Send + 'static,
) -> (Finished, Vec<Event>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ctx = context(stack);
    runtime.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let watcher_stop = stop.clone();
        let collector = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(e) = rx.recv().await {
                on_event(&e, &watcher_stop);
                if let Event::Ask { question, reply } = &e {
                    reply.send(person.answer(question));
                }
                seen.push(e);
            }
            seen
        });
        let request = Request {
            to: to.into(),
            dry_run: false,
            path,
            stop,
            resume: None,
            rehearse: false,
            offer_rehearsal: false,
        };
        let finished = hoist::recovery::upgrade(&ctx, &request, &tx).await;
        drop(tx);
        (finished, collector.await.unwrap())
    })
}

/// The summary as `--json` prints it.
fn summary(finished: &Finished) -> serde_json::Value {
    serde_json::to_value(&finished.summary).unwrap()
}

fn env_text(stack: &TestStack) -> String {
    std::fs::read_to_string(stack.dir.join(".env")).unwrap()
}

#[test]
fn an_unhealthy_stack_is_upgraded_only_past_an_explicit_override() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("override", "0.1.9");
    stack.compose(&["stop", "worker"]);
    let env_before = env_text(&stack);

    // Without the person's override: refused, nothing changed, the table and why shown.
    let (finished, seen) = upgrade(
        &stack,
        "0.1.10",
        PathMode::Steps,
        Person {
            override_unhealthy: false,
        },
        Stop::default(),
        |_, _| {},
    );
    assert_eq!(finished.exit_code, 3, "{}", finished.sentence);
    assert!(
        finished.sentence.contains("worker") && finished.sentence.contains("Nothing was changed"),
        "{}",
        finished.sentence
    );
    let health = seen
        .iter()
        .find_map(|e| match e {
            Event::Health {
                services,
                problems,
                evidence,
            } => Some((services.clone(), problems.clone(), evidence.clone())),
            _ => None,
        })
        .expect("the preflight reports the services' health");
    assert!(
        health
            .0
            .iter()
            .any(|s| s.name == "worker" && s.state == "exited")
    );
    assert!(
        health.1.iter().any(|p| p.contains("worker")),
        "{:?}",
        health.1
    );
    assert!(
        health.2.get("worker").is_some_and(|l| !l.is_empty()),
        "the stopped worker's last log lines: {:?}",
        health.2
    );
    assert_eq!(env_text(&stack), env_before);
    assert_eq!(stack.health_version(), "0.1.9");

    // With it: the upgrade goes on, says so, and brings every service up on 0.1.10.
    let (finished, _) = upgrade(
        &stack,
        "0.1.10",
        PathMode::Steps,
        Person {
            override_unhealthy: true,
        },
        Stop::default(),
        |_, _| {},
    );
    assert_eq!(finished.exit_code, 0, "{}", finished.sentence);
    let overridden = summary(&finished)["overridden"].as_array().unwrap().clone();
    assert!(
        overridden
            .iter()
            .any(|p| p.as_str().unwrap().contains("worker")),
        "{overridden:?}"
    );
    assert_eq!(stack.health_version(), "0.1.10");
    stack.wait_inspect("worker", "{{.State.Status}}", "running", 30);
}

#[test]
fn a_stop_before_the_first_change_keeps_the_backup_and_changes_nothing() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("stopearly", "0.1.9");
    let env_before = env_text(&stack);
    let api_before = stack.container("api");
    // Asked while the backup runs, as a person pressing q, s in the wizard would.
    let (finished, seen) = upgrade(
        &stack,
        "0.1.10",
        PathMode::Steps,
        Person {
            override_unhealthy: false,
        },
        Stop::default(),
        |e, stop| {
            if let Event::StepStarted {
                step: hoist::run::Step::Backup,
                ..
            } = e
            {
                stop.request();
            }
        },
    );
    assert_eq!(finished.exit_code, 3, "{}", finished.sentence);
    assert_eq!(summary(&finished)["outcome"], "stopped");
    assert!(
        finished.sentence.contains("before any change"),
        "{}",
        finished.sentence
    );
    // The backup was finished and kept, whole; nothing else happened.
    let dir = std::path::PathBuf::from(summary(&finished)["backup"].as_str().unwrap());
    hoist::backup::check(&dir).expect("the kept backup matches its manifest");
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::BackupDone { files, .. } if !files.is_empty()))
    );
    assert!(!seen.iter().any(|e| matches!(
        e,
        Event::StepStarted {
            step: hoist::run::Step::Pin,
            ..
        }
    )));
    assert_eq!(env_text(&stack), env_before);
    assert_eq!(stack.container("api"), api_before);
    assert_eq!(stack.health_version(), "0.1.9");
}

#[test]
fn a_stop_between_hops_ends_on_a_checked_release_without_a_rollback() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("stophop", "0.1.9");
    // 0.1.9 -> 0.1.11 goes through 0.1.10; the stop is asked during the first hop.
    let (finished, seen) = upgrade(
        &stack,
        "0.1.11",
        PathMode::Steps,
        Person {
            override_unhealthy: false,
        },
        Stop::default(),
        |e, stop| {
            if let Event::Hop { number: 1, .. } = e {
                stop.request();
            }
        },
    );
    assert_eq!(finished.exit_code, 1, "{}", finished.sentence);
    assert_eq!(summary(&finished)["outcome"], "stopped");
    assert_eq!(
        summary(&finished)["hops_done"],
        serde_json::json!(["0.1.10"])
    );
    assert!(summary(&finished).get("rollback").is_none());
    assert!(
        finished.sentence.contains("hoist upgrade --to 0.1.11")
            && finished.sentence.contains("hoist rollback"),
        "{}",
        finished.sentence
    );
    // The first hop ran to its end, verified; the second never began.
    let verified = seen
        .iter()
        .filter(|e| {
            matches!(e, Event::StepFinished { step: hoist::run::Step::Verify, status, .. } if *status == hoist::run::StepStatus::Done)
        })
        .count();
    assert_eq!(verified, 1);
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Hop { number: 2, .. }))
    );
    assert!(env_text(&stack).contains("SPECIVO_VERSION=0.1.10\n"));
    assert_eq!(stack.health_version(), "0.1.10");
}

/// Docker's state of each of the stack's services.
fn states(stack: &TestStack) -> std::collections::BTreeMap<String, String> {
    let out = stack.compose(&["ps", "-a", "--format", "{{.Service}} {{.State}}"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect()
}

#[test]
fn a_failure_with_nobody_attached_is_rolled_back_alone_when_that_loses_nothing() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("alone", "0.1.12");
    // The terminal goes away once the restart begins; 0.1.13 then crashes at start.
    let (finished, _) = upgrade(
        &stack,
        "0.1.13",
        PathMode::Steps,
        Person {
            override_unhealthy: false,
        },
        Stop::default(),
        |e, stop| {
            if let Event::StepStarted {
                step: hoist::run::Step::Restart,
                ..
            } = e
            {
                stop.detach();
            }
        },
    );
    assert_eq!(finished.exit_code, 4, "{}", finished.sentence);
    assert_eq!(summary(&finished)["rollback"]["decision"], "repin");
    assert_eq!(stack.health_version(), "0.1.12");
    let status = stack.hoist(&["status", "--json"]).summary();
    assert!(status.get("attention").is_none(), "{status:#}");
}

#[test]
fn a_failure_with_nobody_attached_that_a_rollback_would_lose_rows_to_waits_for_a_decision() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("undecided", "0.1.11");
    let db = stack.container("db");
    // The terminal goes away once the restart begins; 0.1.14 migrates (0023) and fails in its
    // next migration; a new issue is written meanwhile. (Written once the failure is seen: the
    // upgrade stops the app just before its restart, so a write through the app while hoist
    // runs would race that stop.)
    let (finished, _) = upgrade(
        &stack,
        "0.1.14",
        PathMode::Direct,
        Person {
            override_unhealthy: false,
        },
        Stop::default(),
        move |e, stop| match e {
            Event::Failure { .. } => {
                common::docker_exec(
                    &db,
                    &[
                        "psql",
                        "-U",
                        "specivo",
                        "-d",
                        "specivo",
                        "-c",
                        "INSERT INTO issues (project_id, title) VALUES (1, 'written after the backup')",
                    ],
                );
            }
            Event::StepStarted {
                step: hoist::run::Step::Restart,
                ..
            } => stop.detach(),
            _ => {}
        },
    );
    assert_eq!(finished.exit_code, 1, "{}", finished.sentence);
    assert_eq!(summary(&finished)["outcome"], "needs_decision");
    assert!(summary(&finished).get("rollback").is_none());
    for words in [
        "nobody was attached",
        "issues",
        "hoist rollback",
        "stopped the app's services",
    ] {
        assert!(
            finished.sentence.contains(words),
            "{words}: {}",
            finished.sentence
        );
    }
    // The app is stopped (nothing more written or migrated), the database still runs.
    let states = states(&stack);
    for service in ["api", "worker", "beat"] {
        assert_eq!(states[service], "exited", "{states:?}");
    }
    assert_eq!(states["db"], "running", "{states:?}");
    // The next hoist says so, and offers the rollback, which then restores.
    let status = stack.hoist(&["status", "--json"]).summary();
    assert_eq!(status["attention"]["state"], "needs_decision", "{status:#}");
    assert_eq!(
        status["attention"]["choices"],
        serde_json::json!(["rollback", "show"])
    );
    let human = stack.hoist(&["status"]);
    assert!(human.stdout.starts_with("Attention "), "{human:?}");
    let rollback = stack.hoist(&["rollback", "--yes", "--json"]);
    assert_eq!(rollback.code, 0, "{rollback:?}");
    assert_eq!(rollback.summary()["decision"], "restore");
    assert_eq!(stack.health_version(), "0.1.11");
    let status = stack.hoist(&["status", "--json"]).summary();
    assert!(status.get("attention").is_none(), "{status:#}");
}

#[test]
fn an_unattended_rollback_that_must_leave_the_restore_to_a_person_stops_the_app_first() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("keep-failed", "0.1.10");
    let db = stack.container("db");
    let worker = stack.container("worker");
    let once = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // 0.1.11 migrates (0021) and comes up; then its worker dies in the window, a row is
    // written, and the terminal goes away. Alone, hoist tries 0.1.10 on the newer schema
    // (it loses nothing), which crash-loops; the restore would lose the row, so it waits.
    let (finished, _) = upgrade(
        &stack,
        "0.1.11",
        PathMode::Direct,
        Person {
            override_unhealthy: false,
        },
        Stop::default(),
        move |e, stop| {
            if let Event::StepFinished {
                step: hoist::run::Step::Watch,
                ..
            } = e
                && !once.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                let _ = Command::new("docker").args(["kill", &worker]).output();
                common::docker_exec(
                    &db,
                    &[
                        "psql",
                        "-U",
                        "specivo",
                        "-d",
                        "specivo",
                        "-c",
                        "INSERT INTO issues (project_id, title) VALUES (1, 'written after the backup')",
                    ],
                );
                stop.detach();
            }
        },
    );
    assert_ne!(finished.exit_code, 0, "{}", finished.sentence);
    for words in [
        "nobody was attached",
        "nothing more is written",
        "hoist rollback",
    ] {
        assert!(
            finished.sentence.contains(words),
            "{words}: {}",
            finished.sentence
        );
    }
    // 0.1.10's services, started on the newer schema by the attempt, are stopped again: none
    // writes while nobody decides. The database runs.
    let states = states(&stack);
    for service in ["api", "worker", "beat"] {
        assert_eq!(states[service], "exited", "{states:?}");
    }
    assert_eq!(states["db"], "running", "{states:?}");
}

#[test]
fn an_edit_that_no_row_count_shows_stops_an_unattended_restore() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start_sized("unattended-edit", "0.1.11", 1);
    let db = stack.container("db");
    // The terminal goes away once the restart begins; 0.1.14 migrates (0023) and fails in its
    // next migration; a user edits an issue meanwhile (no count changes). (Edited once the
    // failure is seen, so that the edit is surely after the new version's start: one made
    // while it starts would be taken for its migration's own.)
    let (finished, _) = upgrade(
        &stack,
        "0.1.14",
        PathMode::Direct,
        Person {
            override_unhealthy: false,
        },
        Stop::default(),
        move |e, stop| match e {
            Event::Failure { .. } => {
                common::docker_exec(
                    &db,
                    &[
                        "psql",
                        "-U",
                        "specivo",
                        "-d",
                        "specivo",
                        "-c",
                        "UPDATE issues SET title = 'edited after the backup' WHERE id = 2",
                    ],
                );
            }
            Event::StepStarted {
                step: hoist::run::Step::Restart,
                ..
            } => stop.detach(),
            _ => {}
        },
    );
    assert_eq!(finished.exit_code, 1, "{}", finished.sentence);
    assert_eq!(summary(&finished)["outcome"], "needs_decision");
    assert!(
        finished.sentence.contains("1 updated row in issues"),
        "{}",
        finished.sentence
    );
    assert_eq!(states(&stack)["api"], "exited");
}
