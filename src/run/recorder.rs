//! The record of a run as it goes: each step sent to the front ends, written to the journal
//! and the log file, and how the run ended.
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::{Event, RunSummary, Step, StepStatus, StepSummary, Summary};
use crate::journal::Journal;

/// How a run ended: the exit code (README, Exit codes), one sentence, and the summary object.
/// Inside an engine `S` is its own summary type; front ends get the `Summary` of either.
pub struct Finished<S = Summary> {
    pub exit_code: u8,
    pub sentence: String,
    pub summary: S,
}

impl<S: Into<Summary>> Finished<S> {
    /// As front ends take it, whichever engine ended.
    pub fn erased(self) -> Finished {
        Finished {
            exit_code: self.exit_code,
            sentence: self.sentence,
            summary: self.summary.into(),
        }
    }
}

pub(crate) struct Run<'a> {
    pub(crate) events: &'a UnboundedSender<Event>,
    pub(crate) journal: Option<&'a Journal>,
    pub(crate) run_id: Option<String>,
    pub(crate) steps: Vec<StepSummary>,
    /// The version of the hop under way, in a multi-hop upgrade.
    pub(crate) hop: Option<String>,
    /// The first journal write that failed: the run's record is incomplete from there on,
    /// which must stop it before its first change, and be said loudly after.
    journal_lost: std::sync::Mutex<Option<String>>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(events: &'a UnboundedSender<Event>) -> Run<'a> {
        Run {
            events,
            journal: None,
            run_id: None,
            steps: Vec::new(),
            hop: None,
            journal_lost: std::sync::Mutex::new(None),
        }
    }

    /// A journal write's result: a failure is logged and remembered (the first one).
    pub(crate) fn journaled<T>(
        &self,
        result: Result<T, crate::journal::JournalError>,
        what: &str,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!("the journal could not {what}: {e}");
                if let Ok(mut lost) = self.journal_lost.lock()
                    && lost.is_none()
                {
                    *lost = Some(format!("it could not {what}: {e}"));
                }
                None
            }
        }
    }

    /// Why the run's record is incomplete, when a journal write failed.
    pub(crate) fn journal_lost(&self) -> Option<String> {
        self.journal_lost.lock().ok().and_then(|l| l.clone())
    }

    /// From now on each step is written to the journal as it starts and ends.
    pub(crate) fn attach_journal(&mut self, journal: &'a Journal, run_id: &str) {
        self.journal = Some(journal);
        self.run_id = Some(run_id.to_string());
    }

    /// The steps so far: name, status, ms.
    pub(crate) fn steps(&self) -> &[StepSummary] {
        &self.steps
    }

    pub(crate) fn emit(&self, e: Event) {
        // A front end that went away does not stop the upgrade: it carries on to a safe end.
        let _ = self.events.send(e);
    }

    /// Asks the front end, and waits for its answer (a front end gone is a no).
    pub(crate) async fn ask(&self, question: super::Question) -> bool {
        super::ask(self.events, question).await.yes()
    }

    /// The question's answer as given (the upgrade's can be "yes, rehearse first").
    pub(crate) async fn answer(&self, question: super::Question) -> super::Answer {
        super::ask(self.events, question).await
    }

    pub(crate) fn progress(&self, step: Step, message: impl Into<String>) {
        self.emit(Event::Progress {
            step,
            message: message.into(),
        });
    }

    pub(crate) async fn start(&mut self, step: Step, what: &str) -> (Instant, Option<i64>) {
        // The log file tells what happened when nobody watched (a hung-up terminal).
        tracing::info!(step = step.name(), "{what}");
        self.emit(Event::StepStarted {
            step,
            what: what.to_string(),
        });
        let id = match (self.journal, &self.run_id) {
            (Some(j), Some(run)) => {
                let result = j.step_started(run, step.name()).await;
                self.journaled(result, "record a step's start")
            }
            _ => None,
        };
        (Instant::now(), id)
    }

    /// A step failed after the run began: record it, and end with exit 1 and the sentence.
    pub(crate) async fn fail<S: RunSummary>(
        &mut self,
        step: Step,
        started: (Instant, Option<i64>),
        sentence: String,
        mut summary: S,
    ) -> Finished<S> {
        self.finish(step, started, false, Some(sentence.clone()))
            .await;
        summary.set_error(&sentence);
        Finished {
            exit_code: 1,
            sentence,
            summary,
        }
    }

    pub(crate) async fn finish(
        &mut self,
        step: Step,
        started: (Instant, Option<i64>),
        ok: bool,
        message: Option<String>,
    ) {
        let ms = started.0.elapsed().as_millis() as u64;
        let status = if ok {
            StepStatus::Done
        } else {
            StepStatus::Failed
        };
        tracing::info!(
            step = step.name(),
            status = status.name(),
            ms,
            message = message.as_deref().unwrap_or(""),
            "step finished"
        );
        if let (Some(j), Some(id)) = (self.journal, started.1) {
            let result = j
                .step_finished(id, status.name(), ms, message.as_deref())
                .await;
            self.journaled(result, "record a step's end");
        }
        self.steps.push(StepSummary {
            name: step.name().to_string(),
            status,
            ms,
            hop: self.hop.clone(),
        });
        self.emit(Event::StepFinished {
            step,
            status,
            ms,
            message,
        });
    }
}

/// Sends an event outside a `Run` (a front end that went away does not stop the engine).
pub(crate) fn run_event(events: &UnboundedSender<Event>, e: Event) {
    let _ = events.send(e);
}

/// Writes how the run ended into the journal (again, when a rollback followed). Err: why it
/// could not (logged too), for the caller to say.
pub(crate) async fn record_finish<S: RunSummary>(
    journal: &Journal,
    run_id: &str,
    finished: &Finished<S>,
) -> Result<(), String> {
    let outcome = finished.summary.outcome();
    journal
        .finish_run(
            run_id,
            &outcome,
            i32::from(finished.exit_code),
            &finished.sentence,
            &serde_json::to_string(&finished.summary).unwrap_or_default(),
        )
        .await
        .map_err(|e| {
            tracing::error!("the journal could not record how the run ended: {e}");
            format!("it could not record how the run ended: {e}")
        })
}

/// Says, in the run's last sentence and its exit code (1: it needs attention), that hoist's
/// journal could not record all of it: `status`, `rollback` and the wizard read the journal.
pub(crate) fn say_incomplete_record<S: RunSummary>(finished: &mut Finished<S>, why: &str) {
    if finished.sentence.contains("hoist's journal could not") {
        return;
    }
    finished.sentence = format!(
        "{} WARNING: hoist's journal could not record all of this run ({why}), so `hoist status`, `hoist rollback` and the wizard may not know what it did; the log file says what happened. Make room in (or fix) the state dir, then check with `hoist status` and `hoist history`.",
        finished.sentence.trim_end()
    );
    if finished.exit_code == 0 {
        finished.exit_code = 1;
    }
    finished.summary.set_error(&finished.sentence);
}

/// A `say` for progress lines of `step` that a task can own.
pub(crate) fn progress_to(
    events: &UnboundedSender<Event>,
    step: Step,
) -> impl Fn(String) + Sync + use<> {
    let events = events.clone();
    move |message: String| {
        let _ = events.send(Event::Progress { step, message });
    }
}
