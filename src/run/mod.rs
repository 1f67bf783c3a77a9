//! The vocabulary every run shares (an upgrade, a rollback): its steps and events, the questions
//! it asks and the stop it obeys, and the recorder that sends, journals and logs each step.
//! Front ends consume `Event`s; nothing here knows a terminal.
mod event;
mod plan;
mod question;
mod recorder;
mod stop;
mod summary;

pub use event::{Event, Step, StepStatus};
pub use plan::{EnvDiff, PlannedBackup, UpgradePlan};
pub(crate) use question::ask;
pub use question::{
    Answer, Headless, OVERRIDE_WORD, Question, RESTORE_WORD, RehearsalOffer, Reply,
};
pub use recorder::Finished;
pub(crate) use recorder::{Run, progress_to, record_finish, run_event, say_incomplete_record};
pub use stop::Stop;
pub use summary::{RunSummary, StepSummary, Summary, SummaryTag, UpgradeCommand, UpgradeSummary};

/// How often byte counts are sent at most: a front end on a slow link needs no more.
pub(crate) const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
