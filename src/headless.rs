//! The non-TUI front end of the upgrade engine: human lines, or JSON Lines with `--json` (the
//! last line the summary). It only prints what the engine's events say.
use std::io::Write;

use hoist::rollback_plan::{Decision, loss_words};
use hoist::run::{Event, Finished, Headless, StepStatus, UpgradePlan};

/// Runs an engine (`upgrade` or `rollback`) on `runtime`, printing its events as they come and
/// its end; the exit code is the run's. `answers` answers its questions; without `--yes`, in a
/// terminal, the person there is asked.
/// A hangup, SIGTERM or Ctrl-C asks `stop` for the next safe point instead of ending hoist.
pub fn run_engine<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    json: bool,
    answers: Headless,
    name: &str,
    stop: hoist::run::Stop,
    engine: F,
) -> std::process::ExitCode
where
    F: FnOnce(tokio::sync::mpsc::UnboundedSender<Event>) -> Fut,
    Fut: std::future::Future<Output = Finished>,
{
    let finished = runtime.block_on(async {
        let signals = hoist::signals::stop_on_signals(stop);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let printer = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                match event {
                    // Answered in order, after the plan or the offer it asks about is printed.
                    Event::Ask { question, reply } => {
                        let answer = if !answers.0 && !json && at_a_terminal() {
                            ask_at_the_terminal(&question).await
                        } else {
                            answers.answer(&question).into()
                        };
                        reply.answer(answer)
                    }
                    event => print_event(&event, json),
                }
            }
        });
        // The engine owns the sender: when it ends, the printer drains and ends too.
        let finished = engine(tx).await;
        let _ = printer.await;
        signals.abort();
        finished
    });
    print_finished(&finished, json);
    tracing::info!(
        exit_code = finished.exit_code,
        "{name} finished: {}",
        finished.sentence
    );
    std::process::ExitCode::from(finished.exit_code)
}

/// A person can answer here: stdin and stderr are a terminal.
pub fn at_a_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Without `--yes`, in a terminal: the question asked on stderr and answered on stdin, y/N (or
/// the word a restore or an override needs). End of input (a hangup) is a no. The line is read
/// on a thread of its own, so that an unanswered question never holds hoist's exit.
async fn ask_at_the_terminal(question: &hoist::run::Question) -> hoist::run::Answer {
    use hoist::run::Answer;
    let offer = question.rehearsal();
    let prompt = match (question.word(), offer) {
        (Some(word), _) => format!(
            "{} Type {word} to go on, anything else to stop: ",
            question.text()
        ),
        (None, Some(offer)) => format!(
            "Try it first? {}. `t` rehearses this upgrade on a throwaway copy of the app (the database loaded from the new backup, the data copied, no ports, its own network), then asks again; it takes {}, and your app keeps running.\n{} [y/N/t] ",
            offer.why,
            offer.cost_words(),
            question.text()
        ),
        (None, None) => format!("{} [y/N] ", question.text()),
    };
    let word = question.word();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{prompt}");
        let _ = err.flush();
        drop(err);
        let mut line = String::new();
        let answer = match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => String::new(),
            Ok(_) => line.trim().to_string(),
        };
        let _ = tx.send(answer);
    });
    let answer = rx.await.unwrap_or_default();
    match word {
        Some(word) => Answer::from(answer == word),
        None if offer.is_some() && answer.eq_ignore_ascii_case("t") => Answer::RehearseFirst,
        None => Answer::from(matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes")),
    }
}

/// The rollback plan last printed (see `Event::Rollback` below).
static LAST_PLAN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Prints one event as it arrives.
pub fn print_event(event: &Event, json: bool) {
    let mut out = std::io::stdout().lock();
    // A question is answered, not printed: what it asks about was.
    if matches!(event, Event::Ask { .. }) {
        return;
    }
    // The observation window ticks each second for the wizard's countdown; a log needs less.
    if let Event::Observe { elapsed_s, .. } = event
        && elapsed_s % 30 != 0
    {
        return;
    }
    if json {
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(out, "{line}");
        }
        return;
    }
    let _ = match event {
        Event::StepStarted { step, what } => writeln!(out, "==> {}: {what}", step.name()),
        Event::Observe { elapsed_s, total_s } => writeln!(
            out,
            "    watched {} of {}, stable so far",
            hoist::units::clock(*elapsed_s),
            hoist::units::clock(*total_s)
        ),
        Event::StepFinished {
            step,
            status,
            ms,
            message,
        } => match message {
            Some(m) if *status != StepStatus::Done => writeln!(
                out,
                "    {} {status} after {:.1} s: {m}",
                step.name(),
                *ms as f64 / 1000.0
            ),
            _ => writeln!(
                out,
                "    {} {status} ({:.1} s)",
                step.name(),
                *ms as f64 / 1000.0
            ),
        },
        Event::Progress { message, .. } => writeln!(out, "    {message}"),
        Event::Log { service, line } => writeln!(out, "    {service} | {line}"),
        Event::Migration { service, from, to } => writeln!(
            out,
            "    {service}: migration {} -> {to}",
            if from.is_empty() { "(base)" } else { from }
        ),
        Event::Container {
            container,
            action,
            exit_code,
            ..
        } => writeln!(
            out,
            "    {container} {}{}",
            action_words(action),
            exit_code
                .map(|c| format!(" (exit code {c})"))
                .unwrap_or_default()
        ),
        Event::Plan { plan } => writeln!(out, "{}", plan_text(plan)),
        // The same reason and evidence come in the step's end and the summary.
        Event::Failure { .. } => Ok(()),
        Event::Hop {
            number,
            of,
            from,
            to,
        } => writeln!(out, "==> hop {number} of {of}: {from} -> {to}"),
        Event::Rollback {
            decision,
            reason,
            losses,
            unknown_loss,
            keep_first,
        } => {
            let what = match decision {
                Decision::Repin => "re-pin the previous version, no restore",
                Decision::Restore if *keep_first => {
                    "the previous version on the database and data as they are now, keeping what was written since; if it does not come up, restore the backup"
                }
                Decision::Restore => "restore the backup, then the previous version",
            };
            let loss = match decision {
                Decision::Restore if losses.is_empty() && unknown_loss.is_none() => {
                    "\n    no rows were written since the backup".to_string()
                }
                Decision::Restore => format!(
                    "\n    a restore takes away (and keeps aside) {}",
                    loss_words(losses, unknown_loss.as_deref())
                ),
                Decision::Repin => String::new(),
            };
            let text = format!("==> rollback plan: {what}\n    why: {reason}{loss}");
            // The offer after a failed upgrade shows the plan, and the rollback it starts
            // announces it again: one paragraph is enough.
            let mut last = LAST_PLAN.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_deref() == Some(text.as_str()) {
                return;
            }
            *last = Some(text.clone());
            writeln!(out, "{text}")
        }
        // The problems come in the preflight's end; the last lines are worth seeing here.
        Event::Health { evidence, .. } => {
            let mut text = String::new();
            for (service, lines) in evidence {
                text.push_str(&format!("    last lines of {service}:\n"));
                for l in lines {
                    text.push_str(&format!("      {l}\n"));
                }
            }
            write!(out, "{text}")
        }
        // Byte counts are for a screen that redraws; lines would scroll by.
        Event::BackupProgress { .. } => Ok(()),
        Event::BackupDone {
            dir,
            files,
            total_bytes,
        } => {
            let mut text = format!(
                "    backup in {} ({}):\n",
                dir.display(),
                hoist::units::human_bytes(*total_bytes)
            );
            for f in files {
                text.push_str(&format!(
                    "      {:24} {:>9}  sha256 {}\n",
                    f.name,
                    hoist::units::human_bytes(f.size_bytes),
                    f.sha256
                ));
            }
            write!(out, "{text}")
        }
        Event::Pull {
            image,
            progress,
            done,
        } => {
            if *done {
                writeln!(
                    out,
                    "    pulled {image} ({} layers, {} downloaded)",
                    progress.layers,
                    hoist::units::human_bytes(progress.bytes_done)
                )
            } else {
                Ok(())
            }
        }
        Event::Check { what, ok, detail } => writeln!(
            out,
            "    {} {what}: {detail}",
            if *ok { "ok    " } else { "FAILED" }
        ),
        Event::Ask { .. } => Ok(()),
    };
}

/// Docker's container actions in words.
fn action_words(action: &str) -> &str {
    match action {
        "kill" => "signalled to stop",
        "die" => "exited",
        "stop" => "stopped",
        "destroy" => "removed",
        "create" => "created",
        "start" => "started",
        other => other,
    }
}

/// The closing words: the summary line under --json, else a sentence (stderr when it failed).
pub fn print_finished(finished: &Finished, json: bool) {
    if json {
        let _ = writeln!(std::io::stdout().lock(), "{}", finished.summary);
        if finished.exit_code != 0 {
            let _ = writeln!(std::io::stderr().lock(), "hoist: {}", finished.sentence);
        }
    } else if finished.exit_code == 0 {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "\nDone: {}.", finished.sentence.trim_end_matches('.'));
        if let Some(ms) = finished.summary.downtime_ms() {
            // A rollback's figure starts at its own stop, not when the failed release broke.
            let whose = match finished.summary {
                hoist::run::Summary::Rollback(_) => {
                    " of the rollback's restart (not counting the time the failed release was down)"
                }
                _ => "",
            };
            let _ = writeln!(out, "Downtime{whose}: {:.1} s.", ms as f64 / 1000.0);
        }
    } else {
        let _ = writeln!(std::io::stderr().lock(), "hoist: {}", finished.sentence);
    }
}

/// The plan in words: what will be backed up, pulled, recreated, and the `.env` change.
fn plan_text(plan: &UpgradePlan) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            "nothing".to_string()
        } else {
            items.join(", ")
        }
    };
    let b = &plan.backup;
    let env = &plan.env_diff;
    format!(
        "Plan: upgrade {} from {} to {}\n  back up:  {}{} into {}\n  pull:     {}\n  {} {}\n  {:9} {}: {} -> {}",
        plan.project,
        plan.from,
        plan.to,
        match (&b.database, b.data.is_empty()) {
            (Some(db), _) => db.as_str(),
            (None, false) => "no database",
            (None, true) => "the files only (no database, no data)",
        },
        if b.data.is_empty() {
            String::new()
        } else {
            format!("; data {}", list(&b.data))
        },
        b.dir.display(),
        if plan.pull.is_empty() {
            "nothing (the images are already here)".to_string()
        } else if plan.download_bytes > 0 {
            format!(
                "{} ({} to download)",
                list(&plan.pull),
                hoist::units::human_bytes(plan.download_bytes)
            )
        } else {
            list(&plan.pull)
        },
        if plan.swarm_stack.is_some() {
            "update:  "
        } else {
            "recreate:"
        },
        match &plan.swarm_stack {
            Some(stack) => format!(
                "{} (Swarm stack {stack}: `docker service update`, as each service's update_config says)",
                list(&plan.recreate)
            ),
            None => list(&plan.recreate),
        },
        format!("{}:", env.label()),
        env.lines_words(),
        env.before.as_deref().unwrap_or("(absent)"),
        env.after,
    ) + &if plan.is_multi_hop() {
        format!(
            " (last hop)\n  path:     {} — one hop at a time, each restarted and verified; one backup first",
            plan.path.join(" -> ")
        )
    } else {
        String::new()
    } + &plan
        .left_out
        .iter()
        .map(|l| format!("\n  left out: {l}"))
        .collect::<String>()
        + &if plan.checks.is_empty() {
            String::new()
        } else {
            format!("\n  checks:   {}", plan.checks.join("; "))
        }
}
