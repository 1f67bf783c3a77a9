//! The wizard's state and how it changes: `update(&mut State, Msg)` is plain data in, plain data
//! out (the Elm architecture), so every transition is tested without a terminal or a daemon.
use std::collections::{BTreeMap, VecDeque};

pub use super::home::{Available, BackupEntry, LastUpgrade, Page, Start};
use crate::docker::pull_tally::PullSnapshot;
use crate::rollback::plan::{Decision, Loss};
use crate::run::{Event, Question, Step};

/// The steps down the side, in the order a user lives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    HealthCheck,
    Backup,
    PinVersion,
    Pull,
    /// The upgrade tried on a throwaway copy first: in the list only once it is chosen.
    Rehearse,
    Restart,
    WatchLogs,
    SmokeTests,
    Done,
}

impl Stage {
    /// The steps every upgrade lives (`Rehearse` joins them when a rehearsal is chosen).
    pub const ALL: [Stage; 8] = [
        Stage::HealthCheck,
        Stage::Backup,
        Stage::PinVersion,
        Stage::Pull,
        Stage::Restart,
        Stage::WatchLogs,
        Stage::SmokeTests,
        Stage::Done,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Stage::HealthCheck => "Health check",
            Stage::Backup => "Backup",
            Stage::PinVersion => "Pin version",
            Stage::Pull => "Pull",
            Stage::Rehearse => "Rehearse",
            Stage::Restart => "Restart",
            Stage::WatchLogs => "Watch logs",
            Stage::SmokeTests => "Smoke tests",
            Stage::Done => "Done",
        }
    }

    /// What the step does and why, in one plain sentence.
    pub fn purpose(self) -> &'static str {
        match self {
            Stage::HealthCheck => {
                "Checking that every service runs and is healthy, and that there is room for a backup: an upgrade should start from a working app."
            }
            Stage::Backup => {
                "Copying the database and the app's files, then checking the copy, so that nothing can be lost whatever happens next."
            }
            Stage::PinVersion => {
                "Writing the new version into .env (only that value), so the app's exact version is always written down."
            }
            Stage::Pull => "Downloading the new version's images while the app keeps running.",
            Stage::Rehearse => {
                "Trying the upgrade on a throwaway copy of the app: the database loaded from the backup, the data copied, its own network, no ports. Your app keeps running; nothing of it changes here."
            }
            Stage::Restart => {
                "Replacing the app's containers with the new version. The app is briefly unavailable."
            }
            Stage::WatchLogs => {
                "Following the app's logs while it starts and migrates its database, until it is ready."
            }
            Stage::SmokeTests => {
                "Checking that the app answers, runs the new images, and that no data went missing."
            }
            Stage::Done => "The upgrade is finished.",
        }
    }

    /// The stage an engine step belongs to.
    pub fn of(step: Step) -> Stage {
        match step {
            Step::Preflight | Step::Target | Step::CheckBackup => Stage::HealthCheck,
            Step::Backup => Stage::Backup,
            Step::Pin => Stage::PinVersion,
            Step::Pull => Stage::Pull,
            Step::Rehearse => Stage::Rehearse,
            Step::Restart | Step::Stop | Step::RestoreData | Step::RestoreDatabase => {
                Stage::Restart
            }
            Step::Watch => Stage::WatchLogs,
            Step::Verify => Stage::SmokeTests,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Running,
    Done,
    Failed,
    Skipped,
}

/// One line of a container's log, as shown in the log pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub service: String,
    pub text: String,
    /// A migration step was reported on this line.
    pub migration: bool,
}

/// The log pane keeps this many lines: a log flood cannot grow memory without bound.
pub const LOG_LINES: usize = 2000;

/// What failed, why, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    pub sentence: String,
    /// service -> its last log lines.
    pub evidence: BTreeMap<String, Vec<String>>,
}

/// The rollback the planner chose, waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackOffer {
    pub decision: Decision,
    pub reason: String,
    pub losses: Vec<Loss>,
    /// What a restore takes away that cannot be counted in rows.
    pub unknown_loss: Option<String>,
    /// The previous version is tried on the newer schema first (an additive change).
    pub keep_first: bool,
}

/// The preflight's findings: the services' table, the problems, the failing ones' last lines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// (service, version, state and health in words, fine).
    pub services: Vec<(String, String, String, bool)>,
    pub problems: Vec<String>,
    pub evidence: BTreeMap<String, Vec<String>>,
}

/// A backup part being read: bytes so far and since when (for a rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRead {
    pub part: String,
    pub bytes: u64,
    pub elapsed_ms: u64,
}

/// A file of the finished backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// One image's download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullBar {
    pub image: String,
    pub progress: PullSnapshot,
    pub done: bool,
}

/// One check of the verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// The engine's question on screen, and what the user has typed towards its word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub question: Question,
    pub typed: String,
    /// The wizard's own question (before an engine runs): a yes gives this command, not an
    /// answer to the engine.
    pub then: Option<Command>,
    /// What was typed when Enter was pressed on a word that is not the one asked for, said
    /// under the question until the next key.
    pub refused: Option<String>,
}

impl Prompt {
    /// The line said under a question after a wrong word, if any.
    pub fn refused_line(&self) -> Option<String> {
        let word = self.question.word()?;
        self.refused
            .as_ref()
            .map(|typed| format!("{typed:?} is not {word}: type {word} exactly, or Esc"))
    }
}

/// A box drawn over the screen; the next key closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    /// `q` pressed while a change runs: why hoist does not leave now, and how to stop.
    Quit,
}

/// What the wizard is doing (or last did): the screens' titles and the stepper follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Upgrade,
    /// Going back from the last upgrade (the home's entry, a failed or interrupted run's).
    Rollback,
    /// A backup taken now, as `hoist backup` takes it.
    Backup,
    /// A backup chosen from the list, restored.
    Restore,
}

/// Which release of a multi-release upgrade runs: `number` of `of`, `from` -> `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub number: usize,
    pub of: usize,
    pub from: String,
    pub to: String,
}

impl Hop {
    /// "2 of 3: 0.1.10 -> 0.1.11".
    pub fn words(&self) -> String {
        format!(
            "{} of {}: {} -> {}",
            self.number, self.of, self.from, self.to
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Before anything changed: quitting is free.
    Idle,
    /// The engine is changing things.
    Running,
    /// A failure: the rollback offer is on screen.
    Failed,
    /// The rollback runs.
    RollingBack,
    /// Finished (upgraded, or rolled back).
    Finished { ok: bool, sentence: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub project: String,
    pub from: String,
    pub to: String,
    pub phase: Phase,
    pub action: Action,
    pub stages: Vec<(Stage, Status)>,
    /// The stage in the middle of the screen.
    pub current: Stage,
    /// The engine's step that runs now (a stage can hold several: restart's stop and restores).
    pub step: Option<Step>,
    /// The release that runs, in an upgrade through several.
    pub hop: Option<Hop>,
    /// The last progress lines of the current stage (backup parts, pull layers, containers).
    pub progress: VecDeque<String>,
    pub logs: VecDeque<LogLine>,
    /// Lines dropped from the top of `logs` so far (shown, so a flood is visible).
    pub logs_dropped: u64,
    /// How many lines up from the bottom the log pane is scrolled.
    pub log_scroll: usize,
    pub migrations: Vec<(String, String)>,
    pub checks: Vec<Check>,
    /// The checks of the throwaway copy, when the upgrade was rehearsed first.
    pub rehearsal_checks: Vec<Check>,
    /// How the copy differs from the real app (a volume that starts empty, a check not run).
    pub rehearsal_notes: Vec<String>,
    pub health: Option<Health>,
    /// The backup part being read now, and the finished backup's files and total.
    pub backup_read: Option<BackupRead>,
    pub backup_files: Vec<BackupFile>,
    pub backup_total: Option<u64>,
    pub pulls: Vec<PullBar>,
    pub env_diff: Option<crate::run::EnvDiff>,
    /// The user asked to stop at the next safe point.
    pub stop_requested: bool,
    /// The observation window after the upgrade verified: (seconds watched, of how many).
    pub observing: Option<(u64, u64)>,
    /// How the observation window ended when it did not end well, as the failure's title: the
    /// app broke while watched, or the user chose to roll back (neither is a smoke test).
    pub observation_break: Option<&'static str>,
    /// The user answered no to the upgrade's question: nothing was meant to change.
    pub declined: bool,
    /// `hoist` with the options this wizard was started with (`-C DIR`, `--state-dir`…): the
    /// start of every command it suggests.
    pub hoist: String,
    pub backup_dir: Option<String>,
    pub downtime_ms: Option<u64>,
    pub failure: Option<Failure>,
    pub rollback: Option<RollbackOffer>,
    pub overlay: Option<Overlay>,
    /// The engine's question waiting for the user's answer.
    pub prompt: Option<Prompt>,
    /// The start screen: what runs now and where the user can go.
    pub start: Start,
    /// The engine's plan, in lines, shown with its confirmation question.
    pub plan: Vec<String>,
    /// How to copy the backup to the user's own computer (set by the front end, which knows
    /// the SSH session).
    pub copy_command: Option<String>,
    /// Where the run's record and hoist's log are (set by the front end at the end).
    pub record: Option<String>,
    /// How long the current step has run, in seconds (the front end's clock ticks it).
    pub elapsed_s: Option<u64>,
}

/// What happened: an engine event, a key, or the end of a run.
#[derive(Debug, Clone)]
pub enum Msg {
    Engine(Event),
    Key(Key),
    /// The current step has run this many seconds.
    Tick(u64),
    /// The home's facts that take a moment (the journal, the rollback's planner).
    Home {
        last_upgrade: Available<LastUpgrade>,
        journal: Option<String>,
        backups: Available<Vec<BackupEntry>>,
        /// Versions an upgrade to failed here: (version, words).
        failed: Vec<(String, String)>,
    },
    /// The history page's lines, as `hoist history` says them.
    History(Vec<String>),
    /// The run ended with this exit code and sentence.
    Finished {
        exit_code: u8,
        sentence: String,
        evidence: BTreeMap<String, Vec<String>>,
    },
}

/// The keys the wizard knows, from whatever terminal library delivers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    Esc,
    Up,
    Down,
    PageUp,
    PageDown,
    CtrlC,
}

/// What the front end must do after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Leave the wizard now (nothing is running).
    Quit,
    /// Start the upgrade to this version.
    Upgrade(String),
    /// Answer the engine's pending question.
    Answer(bool),
    /// Answer the upgrade's question "yes, but try it on a throwaway copy first".
    RehearseFirst,
    /// Ask the engine to stop at its next safe point.
    Stop,
    /// End the observation window now, the upgrade accepted.
    AcceptNow,
    /// End the observation window now, the upgrade rolled back.
    RollBackNow,
    /// Continue the interrupted run with this id, to this version (its backup kept).
    Resume { run: String, to: String },
    /// Roll back the last upgrade (`hoist rollback`).
    Rollback,
    /// Take a backup now (`hoist backup`).
    Backup,
    /// Read the journal for the history page.
    History,
    /// Restore the backup in this directory (the word was typed).
    Restore(String),
    /// Back to the home, its facts read again.
    Home,
}

const PROGRESS_LINES: usize = 6;

impl State {
    pub fn new(project: &str, from: &str, to: &str) -> State {
        State {
            project: project.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            phase: Phase::Idle,
            action: Action::Upgrade,
            stages: Stage::ALL.iter().map(|s| (*s, Status::Pending)).collect(),
            current: Stage::HealthCheck,
            step: None,
            hop: None,
            progress: VecDeque::new(),
            logs: VecDeque::new(),
            logs_dropped: 0,
            log_scroll: 0,
            migrations: Vec::new(),
            checks: Vec::new(),
            rehearsal_checks: Vec::new(),
            rehearsal_notes: Vec::new(),
            health: None,
            backup_read: None,
            backup_files: Vec::new(),
            backup_total: None,
            pulls: Vec::new(),
            env_diff: None,
            stop_requested: false,
            observing: None,
            observation_break: None,
            declined: false,
            hoist: "hoist".to_string(),
            backup_dir: None,
            downtime_ms: None,
            failure: None,
            rollback: None,
            overlay: None,
            prompt: None,
            start: Start::default(),
            plan: Vec::new(),
            copy_command: None,
            record: None,
            elapsed_s: None,
        }
    }

    pub fn status(&self, stage: Stage) -> Status {
        self.stages
            .iter()
            .find(|(s, _)| *s == stage)
            .map_or(Status::Pending, |(_, st)| *st)
    }

    fn set(&mut self, stage: Stage, status: Status) {
        if stage == Stage::Rehearse {
            self.with_rehearsal();
        }
        if let Some(entry) = self.stages.iter_mut().find(|(s, _)| *s == stage) {
            // A stage with several engine steps (restart's stop/restore) fails once for all.
            if entry.1 != Status::Failed {
                entry.1 = status;
            }
        }
    }

    /// The rehearsal joins the steps down the side, after the pull, once it is chosen.
    fn with_rehearsal(&mut self) {
        if self.stages.iter().any(|(s, _)| *s == Stage::Rehearse) {
            return;
        }
        let at = self
            .stages
            .iter()
            .position(|(s, _)| *s == Stage::Pull)
            .map_or(self.stages.len(), |i| i + 1);
        self.stages.insert(at, (Stage::Rehearse, Status::Pending));
    }

    fn push_progress(&mut self, line: String) {
        self.progress.push_back(line);
        while self.progress.len() > PROGRESS_LINES {
            self.progress.pop_front();
        }
    }

    fn push_log(&mut self, service: String, text: String, migration: bool) {
        self.logs.push_back(LogLine {
            service,
            text,
            migration,
        });
        while self.logs.len() > LOG_LINES {
            self.logs.pop_front();
            self.logs_dropped += 1;
        }
    }

    /// What the user has typed towards the question's word ("" when nothing is asked).
    pub fn typed(&self) -> &str {
        self.prompt.as_ref().map_or("", |p| p.typed.as_str())
    }

    /// The middle of the screen's heading: the step that runs now, by its own name.
    pub fn title(&self) -> String {
        let title = match self.step {
            Some(Step::CheckBackup) => "Check the backup",
            Some(Step::Stop) => "Stop the app",
            Some(Step::RestoreData) => "Restore the data",
            Some(Step::RestoreDatabase) => "Restore the database",
            _ => self.current.title(),
        };
        // The pull runs beside the backup: named too while it still downloads.
        let downloading = self.current == Stage::Backup
            && self.status(Stage::Pull) == Status::Running
            && self.pulls.iter().any(|p| !p.done);
        if downloading {
            format!("{title} and Pull")
        } else {
            title.to_string()
        }
    }

    /// What the step that runs does and why, in one plain sentence.
    pub fn purpose(&self) -> &'static str {
        let going_back = matches!(self.action, Action::Rollback | Action::Restore)
            || self.phase == Phase::RollingBack;
        match (self.step, self.current) {
            (Some(Step::CheckBackup), _) => {
                "Checking the backup's files against its manifest: going back must not start with a backup that cannot be restored."
            }
            (Some(Step::Stop), _) => {
                "Stopping the app's services so that nothing is written while the backup is put back. The database keeps running."
            }
            (Some(Step::RestoreData), _) => {
                "Putting the backup's data back. The current data is moved aside, not deleted."
            }
            (Some(Step::RestoreDatabase), _) => {
                "Loading the backup's dump into the database. The current database is kept aside under another name."
            }
            (_, Stage::PinVersion) if going_back => {
                "Writing the previous version into .env (only that value), so the app's exact version is always written down."
            }
            (_, Stage::Pull) if going_back => {
                "Making sure the previous version's images are here, downloading them again if they are gone."
            }
            (_, Stage::Restart) if going_back => {
                "Replacing the app's containers with the previous version. The app is briefly unavailable."
            }
            (_, Stage::SmokeTests) if going_back => {
                "Checking that the app answers, runs the previous images, and that its data is as the backup says."
            }
            (_, Stage::Backup) if self.action == Action::Backup => {
                "Copying the database and the app's files, then checking the copy. The app keeps running (a service whose files need a still copy is stopped for it)."
            }
            (_, stage) => stage.purpose(),
        }
    }

    /// How far up a screen's scrolling part can go (the view stops at its real top).
    fn scroll_limit(&self) -> usize {
        match self.phase {
            // The log pane, or the step's own lines when they are taller than the screen.
            Phase::Running | Phase::RollingBack => {
                let rows = self.progress.len()
                    + self.plan.len()
                    + self.rehearsal_checks.len()
                    + self.rehearsal_notes.len()
                    + self.health.as_ref().map_or(0, |h| {
                        h.services.len()
                            + h.problems.len()
                            + h.evidence.values().map(|t| t.len() + 2).sum::<usize>()
                    });
                self.logs.len().max(2 * rows + 10)
            }
            // About the rows the failure's evidence and the end's details take (wrapped long
            // lines take more; the view stops at the real top).
            _ => {
                let tails = |e: &BTreeMap<String, Vec<String>>| -> usize {
                    e.values().map(|t| t.len() + 2).sum()
                };
                let failure = self.failure.as_ref().map_or(0, |f| tails(&f.evidence));
                let health = self.health.as_ref().map_or(0, |h| {
                    tails(&h.evidence) + h.services.len() + h.problems.len()
                });
                2 * (failure + health + self.backup_files.len() + self.checks.len())
            }
        }
    }

    /// ↑/↓ PgUp/PgDn: the log pane, or a failure's evidence, or the end's details.
    fn scroll(&mut self, key: Key) -> bool {
        let by = match key {
            Key::Up => 1,
            Key::PageUp => 10,
            Key::Down => {
                self.log_scroll = self.log_scroll.saturating_sub(1);
                return true;
            }
            Key::PageDown => {
                self.log_scroll = self.log_scroll.saturating_sub(10);
                return true;
            }
            _ => return false,
        };
        self.log_scroll = (self.log_scroll + by).min(self.scroll_limit());
        true
    }

    /// Whether a change is under way, so quitting must wait for a safe point.
    pub fn changing(&self) -> bool {
        matches!(self.phase, Phase::Running | Phase::RollingBack)
    }
}

/// The one place the state changes.
pub fn update(state: &mut State, msg: Msg) -> Vec<Command> {
    match msg {
        Msg::Engine(event) => {
            on_event(state, event);
            Vec::new()
        }
        Msg::Key(key) => on_key(state, key),
        Msg::Home {
            last_upgrade,
            journal,
            backups,
            failed,
        } => {
            let start = &mut state.start;
            let before = start.item();
            start.last_upgrade = last_upgrade;
            start.journal = journal;
            start.backups = backups;
            start.failed = failed;
            // Nothing to upgrade to: the cursor goes to the first entry that can be chosen
            // now that it is known, unless the user moved it.
            if start.choices.is_empty() && start.selected == 0 && start.typed.is_empty() {
                start.preselect();
            } else if let Some(item) = before {
                start.selected = start.items().iter().position(|i| *i == item).unwrap_or(0);
            }
            Vec::new()
        }
        Msg::History(lines) => {
            state.start.history = lines;
            Vec::new()
        }
        Msg::Tick(secs) => {
            if state.changing() {
                state.elapsed_s = Some(secs);
            }
            Vec::new()
        }
        Msg::Finished {
            exit_code,
            sentence,
            evidence,
        } => {
            let ok = exit_code == 0 || exit_code == 4;
            if exit_code == 0 {
                state.set(Stage::Done, Status::Done);
                state.current = Stage::Done;
            } else if state.failure.is_none() && exit_code != 4 {
                state.failure = Some(Failure {
                    stage: state.current,
                    evidence: failed_only(evidence, &sentence),
                    sentence: sentence.clone(),
                });
            } else if let Some(f) = state.failure.as_mut().filter(|f| f.evidence.is_empty()) {
                // The step's end named the failure; the run's end brings its evidence (a
                // rehearsal's: the copy's last lines).
                f.evidence = failed_only(evidence, &sentence);
            }
            state.phase = Phase::Finished { ok, sentence };
            Vec::new()
        }
    }
}

/// The evidence of the services `sentence` names (the ones that failed); all of it when it
/// names none ("not ready after 300 s"): a healthy worker's log says nothing about a crash.
fn failed_only(
    evidence: BTreeMap<String, Vec<String>>,
    sentence: &str,
) -> BTreeMap<String, Vec<String>> {
    let named = |service: &str| {
        sentence.match_indices(service).any(|(i, _)| {
            let part = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
            let before = sentence[..i].chars().next_back();
            let after = sentence[i + service.len()..].chars().next();
            !before.is_some_and(part) && !after.is_some_and(part)
        })
    };
    if evidence.keys().any(|s| named(s)) {
        evidence.into_iter().filter(|(s, _)| named(s)).collect()
    } else {
        evidence
    }
}

/// The engine asks; it waits for `Command::Answer` (the loop keeps the reply).
fn on_ask(state: &mut State, question: Question) {
    // A rollback is offered after a failure: the failure's screen asks it.
    if matches!(question, Question::Rollback { .. }) {
        state.phase = Phase::Failed;
    }
    state.prompt = Some(Prompt {
        question,
        typed: String::new(),
        then: None,
        refused: None,
    });
    state.log_scroll = 0;
}

fn on_event(state: &mut State, event: Event) {
    match event {
        Event::Ask { question, .. } => on_ask(state, question),
        Event::StepStarted { step, what } => {
            if state.phase == Phase::Idle {
                state.phase = Phase::Running;
            }
            let stage = Stage::of(step);
            state.set(stage, Status::Running);
            // The copy's log lines belong to the rehearsal: the real upgrade's pane starts
            // with the real app's.
            if stage != Stage::Rehearse {
                state.logs.retain(|l| !l.service.ends_with(" (copy)"));
            }
            // The pull starts with the backup and runs beside it: the screen stays on the
            // backup (whose view shows the download too) until the backup ends.
            let beside_backup =
                stage == Stage::Pull && state.status(Stage::Backup) == Status::Running;
            if !beside_backup {
                if stage != state.current {
                    state.progress.clear();
                    // A new screen starts at its bottom, not where the last one was scrolled.
                    state.log_scroll = 0;
                }
                state.current = stage;
                state.step = Some(step);
                state.elapsed_s = Some(0);
            }
            state.push_progress(what);
        }
        Event::StepFinished {
            step,
            status,
            message,
            ..
        } => {
            state.observing = None;
            let stage = Stage::of(step);
            let ok = status == crate::run::StepStatus::Done;
            state.set(stage, if ok { Status::Done } else { Status::Failed });
            // The backup is done and the pull goes on: the screen names the pull now.
            if step == Step::Backup && state.status(Stage::Pull) == Status::Running {
                state.current = Stage::Pull;
                state.step = Some(Step::Pull);
            }
            if step == Step::Backup && ok {
                state.backup_dir = message;
            } else if !ok
                && let Some(m) = message
                && state.failure.as_ref().is_none_or(|f| f.stage != stage)
            {
                // An earlier Failure event for this stage said it better (without the state
                // text meant for a reader with no rollback on offer).
                state.failure = Some(Failure {
                    stage,
                    sentence: m,
                    evidence: BTreeMap::new(),
                });
            }
        }
        Event::Progress { message, .. } => {
            if state.current == Stage::Rehearse
                && let Some(note) = message.strip_prefix("on the copy: ")
                && !state.rehearsal_notes.iter().any(|n| n == note)
            {
                state.rehearsal_notes.push(note.to_string());
            }
            state.push_progress(message)
        }
        // The copy's checks are its own list: the real upgrade's checklist stays the real app's.
        Event::Check { what, ok, detail } if state.current == Stage::Rehearse => {
            let what = what
                .strip_prefix("rehearsal: ")
                .map_or(what.clone(), str::to_string);
            state.rehearsal_checks.push(Check { what, ok, detail })
        }
        Event::Check { what, ok, detail } => state.checks.push(Check { what, ok, detail }),
        Event::Health {
            services,
            problems,
            evidence,
        } => {
            state.health = Some(Health {
                services: services
                    .into_iter()
                    .map(|s| {
                        let fine = s.is_fine();
                        let words = s.state_words();
                        (s.name, s.version.unwrap_or_default(), words, fine)
                    })
                    .collect(),
                problems,
                evidence,
            })
        }
        Event::BackupProgress {
            part,
            bytes,
            elapsed_ms,
        } => {
            state.backup_read = Some(BackupRead {
                part,
                bytes,
                elapsed_ms,
            })
        }
        Event::BackupDone {
            dir,
            files,
            total_bytes,
        } => {
            state.backup_read = None;
            state.backup_dir = Some(dir.display().to_string());
            state.backup_total = Some(total_bytes);
            state.backup_files = files
                .into_iter()
                .map(|f| BackupFile {
                    name: f.name,
                    bytes: f.size_bytes,
                    sha256: f.sha256,
                })
                .collect();
        }
        Event::Pull {
            image,
            progress,
            done,
        } => match state.pulls.iter_mut().find(|p| p.image == image) {
            Some(bar) => {
                bar.progress = progress;
                bar.done = done;
            }
            None => state.pulls.push(PullBar {
                image,
                progress,
                done,
            }),
        },
        Event::Log { service, line } => state.push_log(service, line, false),
        Event::Migration { service, from, to } => {
            state.migrations.push((from.clone(), to.clone()));
            // The line itself came as a Log event just before: mark it.
            if let Some(last) = state.logs.iter_mut().rev().find(|l| l.service == service) {
                last.migration = true;
            }
        }
        Event::Container {
            container, action, ..
        } => state.push_progress(format!("{container} {action}")),
        Event::Hop {
            number,
            of,
            from,
            to,
        } => {
            state.hop = Some(Hop {
                number,
                of,
                from: from.clone(),
                to: to.clone(),
            });
            // Each hop lives the stages again.
            for stage in [
                Stage::PinVersion,
                Stage::Restart,
                Stage::WatchLogs,
                Stage::SmokeTests,
            ] {
                if let Some(entry) = state.stages.iter_mut().find(|(s, _)| *s == stage) {
                    entry.1 = Status::Pending;
                }
            }
            state.push_progress(format!("hop {number} of {of}: {from} -> {to}"));
        }
        Event::Observe { elapsed_s, total_s } => {
            state.observing = Some((elapsed_s, total_s));
        }
        Event::Rollback {
            decision,
            reason,
            losses,
            unknown_loss,
            keep_first,
        } => {
            state.rollback = Some(RollbackOffer {
                decision,
                reason,
                losses,
                unknown_loss,
                keep_first,
            });
        }
        Event::Failure { reason, evidence } => {
            if state.observing.is_some() && state.observation_break.is_none() {
                state.observation_break = Some("The app failed while it was watched");
            }
            state.failure = Some(Failure {
                stage: state.current,
                evidence: failed_only(evidence, &reason),
                sentence: reason,
            });
        }
        Event::Plan { plan } => {
            let list = |items: &[String]| items.join(", ");
            // Paths start their own lines: wrapped, they stay whole.
            let mut lines = vec![format!(
                "Back up:  {}{}",
                plan.backup.database.as_deref().unwrap_or("no database"),
                if plan.backup.data.is_empty() {
                    String::new()
                } else {
                    format!("; data {}", list(&plan.backup.data))
                },
            )];
            lines.push(format!("Into:     {}", plan.backup.dir.display()));
            lines.push(format!(
                "Download: {}",
                if plan.pull.is_empty() {
                    "nothing (the images are here)".to_string()
                } else {
                    list(&plan.pull)
                }
            ));
            lines.push(match &plan.swarm_stack {
                Some(stack) => format!("Update (Swarm stack {stack}): {}", list(&plan.recreate)),
                None => format!("Recreate: {}", list(&plan.recreate)),
            });
            lines.push(format!(
                "{:9} {} -> {}",
                format!("{}:", plan.env_diff.label()),
                plan.env_diff.before.as_deref().unwrap_or("(absent)").trim(),
                plan.env_diff.after.trim()
            ));
            for l in &plan.left_out {
                lines.push(format!("Left out: {l}"));
            }
            for c in &plan.checks {
                lines.push(format!("Check:    {c}"));
            }
            if plan.is_multi_hop() {
                lines.push(format!(
                    "Path:     {} (one release at a time)",
                    plan.path.join(" -> ")
                ));
            }
            state.env_diff = Some(plan.env_diff.clone());
            state.plan = lines;
        }
    }
}

fn on_key(state: &mut State, key: Key) -> Vec<Command> {
    match state.overlay.take() {
        Some(Overlay::Quit) => {
            // `s` asks the engine to stop at its next safe point; any other key goes back.
            if key == Key::Char('s')
                && state.phase == Phase::Running
                && state.action == Action::Upgrade
                && !state.stop_requested
            {
                state.stop_requested = true;
                return vec![Command::Stop];
            }
            return Vec::new();
        }
        Some(Overlay::Help) => return Vec::new(),
        None => {}
    }
    if state.prompt.is_some() {
        return on_prompt_key(state, key);
    }
    if state.phase == Phase::Idle {
        return super::home::on_key(state, key);
    }
    // The end: Enter goes back to the home.
    if matches!(state.phase, Phase::Finished { .. }) && key == Key::Enter {
        return vec![Command::Home];
    }
    if state.scroll(key) {
        return Vec::new();
    }
    match key {
        Key::Char('?') => state.overlay = Some(Overlay::Help),
        Key::Char('a') if state.observing.is_some() => {
            state.observing = None;
            return vec![Command::AcceptNow];
        }
        Key::Char('r') if state.observing.is_some() => {
            state.observing = None;
            state.observation_break = Some("Rolling back, as you asked during the watch");
            return vec![Command::RollBackNow];
        }
        Key::Char('q') | Key::CtrlC => {
            if state.changing() {
                state.overlay = Some(Overlay::Quit);
            } else {
                return vec![Command::Quit];
            }
        }
        _ => {}
    }
    Vec::new()
}

/// A key while the engine's question waits: a restore, and going on past unhealthy services,
/// need the question's word typed out; anything else is one key.
fn on_prompt_key(state: &mut State, key: Key) -> Vec<Command> {
    // What the question is about scrolls above it (a failure's evidence, a step's log).
    if state.scroll(key) {
        return Vec::new();
    }
    let Some(prompt) = state.prompt.as_mut() else {
        return Vec::new();
    };
    let word = prompt.question.word();
    prompt.refused = None;
    let yes = match key {
        Key::Char(c) if word.is_some() && !c.is_control() => {
            prompt.typed.push(c);
            return Vec::new();
        }
        Key::Backspace if word.is_some() => {
            prompt.typed.pop();
            return Vec::new();
        }
        Key::Enter if word.is_some_and(|w| prompt.typed.trim() == w) => true,
        Key::Enter if word.is_some() => {
            prompt.refused = Some(std::mem::take(&mut prompt.typed));
            return Vec::new();
        }
        // Ctrl-C is "quit" everywhere: here, during a change, what quitting means is explained.
        Key::CtrlC => {
            if state.changing() {
                state.overlay = Some(Overlay::Quit);
                return Vec::new();
            }
            return vec![Command::Quit];
        }
        Key::Char('y') | Key::Enter if word.is_none() => true,
        Key::Char('t') if prompt.question.rehearsal().is_some() => {
            state.prompt = None;
            state.log_scroll = 0;
            state.with_rehearsal();
            return vec![Command::RehearseFirst];
        }
        Key::Char('n') | Key::Esc => false,
        Key::Char('?') => {
            state.overlay = Some(Overlay::Help);
            return Vec::new();
        }
        _ => return Vec::new(),
    };
    // The wizard's own question: a yes starts what it asked about, a no changes nothing.
    if let Some(then) = prompt.then.clone() {
        state.prompt = None;
        if !yes {
            return Vec::new();
        }
        super::home::begin(state, &then);
        return vec![then];
    }
    // A no to the upgrade, or to a rollback or restore asked from the home, changes nothing
    // by the user's choice (a no to the offer after a failed upgrade still needs attention).
    if !yes
        && (matches!(prompt.question, crate::run::Question::Upgrade { .. })
            || (matches!(prompt.question, crate::run::Question::Rollback { .. })
                && state.phase != Phase::Failed))
    {
        state.declined = true;
    }
    state.prompt = None;
    state.log_scroll = 0;
    if yes && state.phase == Phase::Failed {
        state.phase = Phase::RollingBack;
    }
    vec![Command::Answer(yes)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{OVERRIDE_WORD, RESTORE_WORD};

    /// The engine's question as the loop passes it on (the reply is the loop's).
    pub(crate) fn asked(question: Question) -> Msg {
        let (reply, _) = crate::run::Reply::channel();
        Msg::Engine(Event::Ask { question, reply })
    }

    fn roll_back(restore: bool) -> Msg {
        asked(Question::Rollback {
            text: "Roll back?".into(),
            restore,
        })
    }

    fn unhealthy() -> Msg {
        asked(Question::Override {
            problems: vec!["api is unhealthy".into()],
        })
    }

    fn started(step: Step) -> Msg {
        Msg::Engine(Event::StepStarted {
            step,
            what: format!("{} starts", step.name()),
        })
    }

    fn finished(step: Step, ok: bool) -> Msg {
        Msg::Engine(Event::StepFinished {
            step,
            status: if ok {
                crate::run::StepStatus::Done
            } else {
                crate::run::StepStatus::Failed
            },
            ms: 10,
            message: (!ok).then(|| format!("{} failed", step.name())),
        })
    }

    #[test]
    fn engine_steps_move_the_stepper() {
        let mut s = State::new("specivo", "0.1.9", "0.1.10");
        update(&mut s, started(Step::Preflight));
        assert_eq!(s.phase, Phase::Running);
        assert_eq!(s.status(Stage::HealthCheck), Status::Running);
        update(&mut s, finished(Step::Preflight, true));
        update(&mut s, started(Step::Backup));
        assert_eq!(s.current, Stage::Backup);
        assert_eq!(s.status(Stage::HealthCheck), Status::Done);
        update(&mut s, finished(Step::Watch, false));
        assert_eq!(s.status(Stage::WatchLogs), Status::Failed);
        assert_eq!(s.failure.as_ref().unwrap().stage, Stage::WatchLogs);
    }

    #[test]
    fn a_log_flood_keeps_a_bounded_pane() {
        let mut s = State::new("p", "1", "2");
        for i in 0..(LOG_LINES + 500) {
            update(
                &mut s,
                Msg::Engine(Event::Log {
                    service: "api".into(),
                    line: format!("line {i}"),
                }),
            );
        }
        assert_eq!(s.logs.len(), LOG_LINES);
        assert_eq!(s.logs_dropped, 500);
        assert_eq!(
            s.logs.back().unwrap().text,
            format!("line {}", LOG_LINES + 499)
        );
    }

    #[test]
    fn the_start_screen_preselects_the_next_step_or_takes_a_typed_version() {
        let mut s = State::new("p", "0.1.9", "");
        s.start.choices = vec!["0.1.12".into(), "0.1.11".into(), "0.1.10".into()];
        s.start.selected = 2;
        update(&mut s, Msg::Key(Key::Up));
        assert_eq!(
            update(&mut s, Msg::Key(Key::Enter)),
            [Command::Upgrade("0.1.11".into())]
        );
        let mut s = State::new("p", "0.1.9", "");
        for c in "0.1.13".chars() {
            update(&mut s, Msg::Key(Key::Char(c)));
        }
        // A typed version wins over the list.
        assert_eq!(
            update(&mut s, Msg::Key(Key::Enter)),
            [Command::Upgrade("0.1.13".into())]
        );
    }

    #[test]
    fn quitting_is_free_before_a_change_and_explained_during_one() {
        let mut s = State::new("p", "1", "2");
        assert_eq!(update(&mut s, Msg::Key(Key::Char('q'))), [Command::Quit]);
        update(&mut s, started(Step::Restart));
        assert!(update(&mut s, Msg::Key(Key::CtrlC)).is_empty());
        assert_eq!(s.overlay, Some(Overlay::Quit));
    }

    #[test]
    fn a_restore_needs_the_word_typed_out() {
        let mut s = State::new("p", "1", "2");
        update(&mut s, finished(Step::Watch, false));
        update(
            &mut s,
            Msg::Engine(Event::Rollback {
                decision: Decision::Restore,
                reason: "a migration ran".into(),
                losses: Vec::new(),
                unknown_loss: None,
                keep_first: false,
            }),
        );
        update(&mut s, roll_back(true));
        assert_eq!(s.phase, Phase::Failed);
        // `y` is just a letter here.
        assert!(update(&mut s, Msg::Key(Key::Char('y'))).is_empty());
        assert!(update(&mut s, Msg::Key(Key::Enter)).is_empty());
        // A wrong word is said, not swallowed.
        assert_eq!(
            s.prompt.as_ref().and_then(Prompt::refused_line).as_deref(),
            Some("\"y\" is not restore: type restore exactly, or Esc")
        );
        // Ctrl-C quits as q does elsewhere (after a failure nothing runs: the question stays
        // unanswered, which the engine takes as no).
        assert!(!s.changing());
        assert_eq!(update(&mut s, Msg::Key(Key::CtrlC)), [Command::Quit]);
        update(&mut s, Msg::Key(Key::Backspace));
        for c in RESTORE_WORD.chars() {
            update(&mut s, Msg::Key(Key::Char(c)));
        }
        assert_eq!(
            update(&mut s, Msg::Key(Key::Enter)),
            [Command::Answer(true)]
        );
        assert_eq!(s.phase, Phase::RollingBack);
    }

    #[test]
    fn a_break_in_the_observation_window_is_not_called_a_failed_smoke_test() {
        let observe = || {
            Msg::Engine(Event::Observe {
                elapsed_s: 5,
                total_s: 60,
            })
        };
        let mut s = State::new("p", "1", "2");
        update(&mut s, started(Step::Verify));
        update(&mut s, observe());
        update(
            &mut s,
            Msg::Engine(Event::Failure {
                reason: "api restarted".into(),
                evidence: BTreeMap::new(),
            }),
        );
        assert_eq!(
            s.observation_break,
            Some("The app failed while it was watched")
        );
        let mut s = State::new("p", "1", "2");
        update(&mut s, started(Step::Verify));
        update(&mut s, observe());
        assert_eq!(
            update(&mut s, Msg::Key(Key::Char('r'))),
            [Command::RollBackNow]
        );
        assert_eq!(
            s.observation_break,
            Some("Rolling back, as you asked during the watch")
        );
        // A failure outside the window keeps its step's title.
        let mut s = State::new("p", "1", "2");
        update(
            &mut s,
            Msg::Engine(Event::Failure {
                reason: "x".into(),
                evidence: BTreeMap::new(),
            }),
        );
        assert_eq!(s.observation_break, None);
    }

    #[test]
    fn going_on_past_an_unhealthy_service_needs_its_word_and_esc_refuses() {
        let mut s = State::new("p", "1", "2");
        update(&mut s, started(Step::Preflight));
        update(&mut s, unhealthy());
        assert!(update(&mut s, Msg::Key(Key::Char('y'))).is_empty());
        assert!(update(&mut s, Msg::Key(Key::Enter)).is_empty());
        if let Some(p) = s.prompt.as_mut() {
            p.typed.clear();
        }
        for c in OVERRIDE_WORD.chars() {
            update(&mut s, Msg::Key(Key::Char(c)));
        }
        assert_eq!(
            update(&mut s, Msg::Key(Key::Enter)),
            [Command::Answer(true)]
        );
        assert_eq!(s.prompt, None);
        update(&mut s, unhealthy());
        assert_eq!(update(&mut s, Msg::Key(Key::Esc)), [Command::Answer(false)]);
        // Declining the override is not declining the upgrade.
        assert!(!s.declined);
    }

    #[test]
    fn a_no_to_the_upgrade_is_remembered_as_the_users_choice() {
        let mut s = State::new("p", "1", "2");
        update(
            &mut s,
            asked(Question::Upgrade {
                text: "Upgrade p from 1 to 2?".into(),
                rehearsal: None,
            }),
        );
        assert_eq!(
            update(&mut s, Msg::Key(Key::Char('n'))),
            [Command::Answer(false)]
        );
        assert!(s.declined);
    }

    #[test]
    fn t_rehearses_only_where_a_rehearsal_is_offered() {
        let mut s = State::new("p", "1", "2");
        update(
            &mut s,
            asked(Question::Upgrade {
                text: "Upgrade p from 1 to 2?".into(),
                rehearsal: None,
            }),
        );
        assert!(update(&mut s, Msg::Key(Key::Char('t'))).is_empty());
        assert!(s.prompt.is_some());
        assert!(!s.stages.iter().any(|(st, _)| *st == Stage::Rehearse));
        let mut s = State::new("p", "1", "2");
        update(
            &mut s,
            asked(Question::Upgrade {
                text: "Upgrade p from 1 to 2?".into(),
                rehearsal: Some(crate::run::RehearsalOffer {
                    why: "2 has not run here before".into(),
                    disk_bytes: 1,
                    about_secs: 1,
                }),
            }),
        );
        assert_eq!(
            update(&mut s, Msg::Key(Key::Char('t'))),
            [Command::RehearseFirst]
        );
        assert_eq!(s.prompt, None);
        assert!(!s.declined);
        // A rehearsal started headless (`--rehearse`) joins the steps when it begins.
        let mut s = State::new("p", "1", "2");
        update(&mut s, started(Step::Rehearse));
        assert_eq!(s.current, Stage::Rehearse);
        assert_eq!(s.status(Stage::Rehearse), Status::Running);
    }

    #[test]
    fn s_in_the_quit_explanation_asks_for_a_stop_once() {
        let mut s = State::new("p", "1", "2");
        update(&mut s, started(Step::Backup));
        update(&mut s, Msg::Key(Key::Char('q')));
        assert_eq!(update(&mut s, Msg::Key(Key::Char('s'))), [Command::Stop]);
        assert!(s.stop_requested);
        update(&mut s, Msg::Key(Key::Char('q')));
        assert!(update(&mut s, Msg::Key(Key::Char('s'))).is_empty());
    }

    #[test]
    fn only_the_failed_services_evidence_is_kept() {
        let tails = || {
            BTreeMap::from([
                ("api".to_string(), vec!["Traceback".to_string()]),
                ("api-worker".to_string(), vec!["ready".to_string()]),
                ("beat".to_string(), vec!["tick".to_string()]),
            ])
        };
        let kept = failed_only(
            tails(),
            "the app did not come up on 2: api is crash-looping",
        );
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["api"]);
        let kept = failed_only(tails(), "api-worker exited with code 1; beat's log says so");
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["api-worker", "beat"]);
        // A sentence that names no service keeps everything.
        assert_eq!(failed_only(tails(), "not ready after 300 s").len(), 3);
    }

    #[test]
    fn a_re_pin_rollback_is_one_key() {
        let mut s = State::new("p", "1", "2");
        update(&mut s, finished(Step::Watch, false));
        update(
            &mut s,
            Msg::Engine(Event::Rollback {
                decision: Decision::Repin,
                reason: "same schema".into(),
                losses: Vec::new(),
                unknown_loss: None,
                keep_first: false,
            }),
        );
        update(&mut s, roll_back(false));
        assert_eq!(
            update(&mut s, Msg::Key(Key::Char('y'))),
            [Command::Answer(true)]
        );
    }
}
