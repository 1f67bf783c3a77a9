//! The engine's questions. Each is typed (what it asks, and what a yes needs) and travels to
//! the front end as `Event::Ask`, with the channel its answer comes back on: nothing blocks a
//! runtime thread while a person thinks.
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::Event;

/// The word a person types to allow a restore: a slip of a key is not consent.
pub const RESTORE_WORD: &str = "restore";

/// The word a person types to upgrade although a service is unhealthy.
pub const OVERRIDE_WORD: &str = "override";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Question {
    /// Whether to start the upgrade whose plan was just sent; `rehearsal`: trying it first on
    /// a throwaway copy is offered (`Answer::RehearseFirst`), with its cost.
    Upgrade {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        rehearsal: Option<RehearsalOffer>,
    },
    /// Whether to upgrade although these services are unhealthy. Only a person looking at
    /// them can say yes: `--yes` does not cover it.
    Override { problems: Vec<String> },
    /// Whether to roll back; `restore`: the rollback restores a backup.
    Rollback { text: String, restore: bool },
}

/// A rehearsal offered with the upgrade's question: why, and what it costs, said up front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RehearsalOffer {
    /// Why it is offered ("0.1.12 has not run here before").
    pub why: String,
    /// Free space the copy needs on Docker's disk while it runs (the data, the database, a
    /// margin).
    pub disk_bytes: u64,
    /// A rough guess of how long it takes, in seconds.
    pub about_secs: u64,
}

impl RehearsalOffer {
    /// "about 2 min and 1.3 GB of free space on Docker's disk while it runs".
    pub fn cost_words(&self) -> String {
        let time = if self.about_secs < 90 {
            format!("{} s", self.about_secs.div_ceil(10).max(1) * 10)
        } else {
            format!("{} min", self.about_secs.div_ceil(60))
        };
        format!(
            "about {time} and {} of free space on Docker's disk while it runs",
            crate::units::human_bytes(self.disk_bytes)
        )
    }
}

/// A front end's answer to a question. Only the upgrade's question, when it offers a
/// rehearsal, can be answered `RehearseFirst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// Yes, but try it on a throwaway copy first (and ask again once it passed).
    RehearseFirst,
}

impl Answer {
    pub fn yes(self) -> bool {
        self != Answer::No
    }
}

impl From<bool> for Answer {
    fn from(yes: bool) -> Answer {
        if yes { Answer::Yes } else { Answer::No }
    }
}

impl Question {
    pub fn text(&self) -> String {
        match self {
            Question::Upgrade { text, .. } | Question::Rollback { text, .. } => text.clone(),
            Question::Override { problems } => format!("Upgrade although {}?", problems.join("; ")),
        }
    }

    /// The rehearsal offered with the upgrade's question, if any.
    pub fn rehearsal(&self) -> Option<&RehearsalOffer> {
        match self {
            Question::Upgrade { rehearsal, .. } => rehearsal.as_ref(),
            _ => None,
        }
    }

    /// The word a yes needs typed out; `None`: one key says yes.
    pub fn word(&self) -> Option<&'static str> {
        match self {
            Question::Override { .. } => Some(OVERRIDE_WORD),
            Question::Rollback { restore: true, .. } => Some(RESTORE_WORD),
            Question::Upgrade { .. } | Question::Rollback { restore: false, .. } => None,
        }
    }
}

/// Headless: yes to what `--yes` covers when it was given, else every question is a refusal.
#[derive(Debug, Clone, Copy)]
pub struct Headless(pub bool);

impl Headless {
    pub fn answer(&self, question: &Question) -> bool {
        match question {
            Question::Override { .. } => false,
            Question::Upgrade { .. } | Question::Rollback { .. } => self.0,
        }
    }
}

/// Where the answer to an `Event::Ask` goes. Cloned with its event (front ends take events by
/// value and may clone them); the first answer counts, and a reply dropped unanswered is a no.
#[derive(Clone)]
pub struct Reply(Arc<Mutex<Option<oneshot::Sender<Answer>>>>);

impl Reply {
    pub fn channel() -> (Reply, oneshot::Receiver<Answer>) {
        let (tx, rx) = oneshot::channel();
        (Reply(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    pub fn send(&self, yes: bool) {
        self.answer(Answer::from(yes));
    }

    pub fn answer(&self, answer: Answer) {
        let sender = match self.0.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(tx) = sender {
            // The engine gave up waiting (it ended): nothing left to tell.
            let _ = tx.send(answer);
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

/// Asks the front end and waits for its answer. A front end gone, or one that drops the
/// question, is a no: nothing is done that nobody agreed to.
pub(crate) async fn ask(events: &UnboundedSender<Event>, question: Question) -> Answer {
    let (reply, answer) = Reply::channel();
    if events.send(Event::Ask { question, reply }).is_err() {
        return Answer::No;
    }
    answer.await.unwrap_or(Answer::No)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_is_part_of_the_question() {
        let restore = Question::Rollback {
            text: "Roll back?".into(),
            restore: true,
        };
        assert_eq!(restore.word(), Some(RESTORE_WORD));
        let repin = Question::Rollback {
            text: "Roll back?".into(),
            restore: false,
        };
        assert_eq!(repin.word(), None);
        let over = Question::Override {
            problems: vec!["api is unhealthy".into(), "db is down".into()],
        };
        assert_eq!(over.word(), Some(OVERRIDE_WORD));
        assert_eq!(
            over.text(),
            "Upgrade although api is unhealthy; db is down?"
        );
    }

    #[test]
    fn yes_covers_all_but_an_override() {
        let upgrade = Question::Upgrade {
            text: "Go?".into(),
            rehearsal: None,
        };
        let over = Question::Override { problems: vec![] };
        assert!(Headless(true).answer(&upgrade));
        assert!(!Headless(false).answer(&upgrade));
        assert!(!Headless(true).answer(&over));
    }

    #[tokio::test]
    async fn an_answer_comes_back_and_silence_is_a_no() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let front = tokio::spawn(async move {
            let mut answers = vec![true, false].into_iter();
            while let Some(event) = rx.recv().await {
                if let Event::Ask { reply, .. } = event {
                    match answers.next() {
                        Some(yes) => reply.send(yes),
                        // Dropped unanswered.
                        None => drop(reply),
                    }
                }
            }
        });
        let q = || Question::Upgrade {
            text: "Go?".into(),
            rehearsal: None,
        };
        assert_eq!(ask(&tx, q()).await, Answer::Yes);
        assert_eq!(ask(&tx, q()).await, Answer::No);
        assert_eq!(ask(&tx, q()).await, Answer::No);
        drop(tx);
        front.await.ok();
        let (gone, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        drop(rx);
        assert_eq!(ask(&gone, q()).await, Answer::No);
    }
}
