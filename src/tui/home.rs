//! The wizard's home, before anything runs: what runs now, and where the user can go from
//! here — upgrade to a newer version, roll back the last upgrade, back up now, read the
//! history, restore a backup chosen from a list. Entries that make no sense now are shown
//! with why. Plain data and key handling, like `state.rs`, which it is part of.
use std::collections::BTreeMap;

use super::state::{Action, Command, Failure, Key, Overlay, Prompt, Stage, State};
use crate::run::Question;

/// Something the home looks up after it is on screen (the journal, the rollback's planner,
/// which checks the backup's files): not known yet, known, or not possible and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Available<T> {
    #[default]
    Looking,
    Ready(T),
    /// Why not, in words ("nothing to roll back: no upgrade in the journal").
    Not(String),
}

impl<T> Available<T> {
    pub fn ready(&self) -> Option<&T> {
        match self {
            Available::Ready(t) => Some(t),
            _ => None,
        }
    }
}

/// The last upgrade and how it would be rolled back, as `hoist rollback`'s planner says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUpgrade {
    pub run: String,
    /// The version it went to (pinned now) and the one it came from (to go back to).
    pub now: String,
    pub back_to: String,
    /// When it ran, and how long ago in words ("2 h ago").
    pub when: String,
    pub ago: String,
    /// The backup is restored first (a migration ran), or the old version only pinned again.
    pub restore: bool,
    pub reason: String,
    /// What a restore takes away, in words (empty for a re-pin).
    pub loss: String,
}

/// A backup in the backup dir, as the restore list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEntry {
    /// The app's version it was taken of.
    pub version: Option<String>,
    pub date: String,
    pub bytes: u64,
    pub path: String,
    /// Checked against its manifest; one that is not cannot be chosen.
    pub verified: bool,
    /// Why it is not verified, or anything else to know about it.
    pub note: Option<String>,
}

/// The home's entries after the versions to upgrade to, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Rollback,
    Backup,
    History,
    Restore,
}

impl Entry {
    pub const ALL: [Entry; 4] = [
        Entry::Rollback,
        Entry::Backup,
        Entry::History,
        Entry::Restore,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Entry::Rollback => "Roll back the last upgrade",
            Entry::Backup => "Back up now",
            Entry::History => "History",
            Entry::Restore => "Restore a backup",
        }
    }
}

/// What the cursor is on: a version to upgrade to, or an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Version(usize),
    Entry(Entry),
}

/// Which page of the home is on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Page {
    #[default]
    Home,
    /// The journal's runs and backups, as `hoist history` says them.
    History,
    /// The backups to choose one to restore from.
    Backups,
}

/// What the home shows before anything happens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Start {
    pub pinned: Option<String>,
    /// What hoist read of the stack that a person should know first: where the version is
    /// written (or why hoist cannot tell), a moving tag, the database and how it was known,
    /// data left out of the backup.
    pub about: Vec<String>,
    pub running: Option<String>,
    /// (service, version, state and health in words).
    pub services: Vec<(String, String, String)>,
    /// Newer versions, newest first.
    pub choices: Vec<String>,
    pub next: Option<String>,
    /// The cursor, over the versions and then the entries (see `items`).
    pub selected: usize,
    /// Why there is no list (the registry could not be read), when there is none.
    pub note: Option<String>,
    /// A version typed instead of chosen.
    pub typed: String,
    /// A run the journal says still needs the user (interrupted, stopped, undecided).
    pub attention: Option<crate::resume::Attention>,
    /// The attention's steps are on screen (`h`).
    pub show_steps: bool,
    pub last_upgrade: Available<LastUpgrade>,
    /// Where a backup taken now goes.
    pub backup_root: Option<String>,
    /// How many runs and backups the journal holds, in words ("4 runs, 2 backups").
    pub journal: Option<String>,
    /// Versions an upgrade to failed here: (version, "failed here 5 min ago, rolled back").
    pub failed: Vec<(String, String)>,
    pub backups: Available<Vec<BackupEntry>>,
    pub page: Page,
    /// The history page's lines, once read.
    pub history: Vec<String>,
    /// The history page's scroll (rows from its top), the backups page's cursor.
    pub page_scroll: usize,
    pub backup_selected: usize,
}

impl Start {
    /// Everything the cursor can be on, in screen order.
    pub fn items(&self) -> Vec<Item> {
        (0..self.choices.len())
            .map(Item::Version)
            .chain(Entry::ALL.into_iter().map(Item::Entry))
            .collect()
    }

    pub fn item(&self) -> Option<Item> {
        self.items().get(self.selected).copied()
    }

    /// Why an entry cannot be chosen now; None when it can.
    pub fn why_not(&self, entry: Entry) -> Option<String> {
        fn of<T>(a: &Available<T>) -> Option<String> {
            match a {
                Available::Looking => Some("looking at the journal…".to_string()),
                Available::Not(why) => Some(why.clone()),
                Available::Ready(_) => None,
            }
        }
        match entry {
            Entry::Rollback => of(&self.last_upgrade),
            Entry::Restore => match &self.backups {
                Available::Ready(list) if !list.iter().any(|b| b.verified) => Some(format!(
                    "no verified backup in {}",
                    self.backup_root.as_deref().unwrap_or("the backup dir")
                )),
                other => of(other),
            },
            Entry::Backup | Entry::History => None,
        }
    }

    /// Where the cursor starts: the next version, else the first entry that can be chosen.
    pub fn preselect(&mut self) {
        let items = self.items();
        // A run left needing the user that offers a rollback: Enter should not back up or
        // upgrade a broken app by default.
        if self
            .attention
            .as_ref()
            .is_some_and(|a| a.choices.contains(&crate::resume::Choice::Rollback))
            && let Some(i) = items
                .iter()
                .position(|i| matches!(i, Item::Entry(Entry::Rollback)))
        {
            self.selected = i;
            return;
        }
        self.selected = self
            .next
            .as_ref()
            .and_then(|n| self.choices.iter().position(|v| v == n))
            .or_else(|| (!self.choices.is_empty()).then_some(0))
            .or_else(|| {
                items
                    .iter()
                    .position(|i| matches!(i, Item::Entry(e) if self.why_not(*e).is_none()))
            })
            .unwrap_or(0);
    }
}

/// A key on the home (or one of its pages).
pub(super) fn on_key(state: &mut State, key: Key) -> Vec<Command> {
    match state.start.page {
        Page::Home => on_home_key(state, key),
        Page::History => {
            let start = &mut state.start;
            match key {
                Key::Up => start.page_scroll = start.page_scroll.saturating_sub(1),
                Key::PageUp => start.page_scroll = start.page_scroll.saturating_sub(10),
                Key::Down => start.page_scroll = (start.page_scroll + 1).min(start.history.len()),
                Key::PageDown => {
                    start.page_scroll = (start.page_scroll + 10).min(start.history.len())
                }
                Key::Char('q') | Key::Esc | Key::Backspace | Key::Enter => back_home(state),
                Key::Char('?') => state.overlay = Some(Overlay::Help),
                _ => {}
            }
            Vec::new()
        }
        Page::Backups => on_backups_key(state, key),
    }
}

fn back_home(state: &mut State) {
    state.start.page = Page::Home;
    state.start.page_scroll = 0;
}

/// The home: choose a newer version (the next step preselected) or type one, or an entry;
/// or, when the journal says a run needs the user, go on with it: continue, roll back, show.
fn on_home_key(state: &mut State, key: Key) -> Vec<Command> {
    if let Some(a) = state.start.attention.clone()
        && state.start.typed.is_empty()
    {
        use crate::resume::Choice;
        match key {
            Key::Char('c') if a.choices.contains(&Choice::Continue) => {
                let to = a.to.clone().unwrap_or_default();
                state.to = to.clone();
                if a.state == "interrupted" && a.changed {
                    state.from = a.from.clone().unwrap_or_default();
                    return vec![Command::Resume { run: a.run_id, to }];
                }
                return vec![Command::Upgrade(to)];
            }
            Key::Char('r') if a.choices.contains(&Choice::Rollback) => {
                // The screens of a rollback speak of going back from what .env pins to `from`.
                state.from = a.from.clone().unwrap_or_default();
                state.to = a.pinned.clone().unwrap_or_default();
                state.action = Action::Rollback;
                state.failure = Some(Failure {
                    stage: Stage::HealthCheck,
                    sentence: a.sentence.clone(),
                    evidence: BTreeMap::new(),
                });
                return vec![Command::Rollback];
            }
            Key::Char('h') => {
                state.start.show_steps = !state.start.show_steps;
                return Vec::new();
            }
            _ => {}
        }
    }
    let start = &mut state.start;
    let last = start.items().len().saturating_sub(1);
    match key {
        Key::Up => start.selected = start.selected.saturating_sub(1),
        Key::Down => start.selected = (start.selected + 1).min(last),
        Key::PageUp => start.selected = 0,
        Key::PageDown => start.selected = last,
        Key::Char('?') => state.overlay = Some(Overlay::Help),
        // Esc is "back" everywhere else: on the home there is nowhere back to, so it only
        // clears what was typed; quitting takes q (or Ctrl-C).
        Key::Char('q') | Key::CtrlC if start.typed.is_empty() => {
            return vec![Command::Quit];
        }
        Key::Esc => start.typed.clear(),
        Key::Backspace => {
            start.typed.pop();
        }
        Key::Char(c) if c.is_ascii_alphanumeric() || ".-_+".contains(c) => start.typed.push(c),
        Key::Enter if !start.typed.is_empty() => {
            let target = start.typed.trim().to_string();
            state.to = target.clone();
            return vec![Command::Upgrade(target)];
        }
        Key::Enter => return choose(state),
        _ => {}
    }
    Vec::new()
}

/// Enter on the item under the cursor.
fn choose(state: &mut State) -> Vec<Command> {
    let Some(item) = state.start.item() else {
        return Vec::new();
    };
    match item {
        Item::Version(i) => match state.start.choices.get(i).cloned() {
            Some(target) => {
                state.to = target.clone();
                vec![Command::Upgrade(target)]
            }
            None => Vec::new(),
        },
        Item::Entry(entry) if state.start.why_not(entry).is_some() => Vec::new(),
        Item::Entry(Entry::Rollback) => {
            let Some(last) = state.start.last_upgrade.ready().cloned() else {
                return Vec::new();
            };
            if last.restore {
                // The engine asks for the word itself, with what a restore takes away now.
                begin(state, &Command::Rollback);
                return vec![Command::Rollback];
            }
            state.prompt = Some(Prompt {
                question: Question::Rollback {
                    text: format!(
                        "Roll back {} from {} to {} (pin {} again, no restore)?",
                        state.project, last.now, last.back_to, last.back_to
                    ),
                    restore: false,
                },
                typed: String::new(),
                then: Some(Command::Rollback),
                refused: None,
            });
            Vec::new()
        }
        Item::Entry(Entry::Backup) => {
            begin(state, &Command::Backup);
            vec![Command::Backup]
        }
        Item::Entry(Entry::History) => {
            state.start.page = Page::History;
            state.start.page_scroll = 0;
            vec![Command::History]
        }
        Item::Entry(Entry::Restore) => {
            state.start.page = Page::Backups;
            let first = state
                .start
                .backups
                .ready()
                .and_then(|l| l.iter().position(|b| b.verified));
            state.start.backup_selected = first.unwrap_or(0);
            Vec::new()
        }
    }
}

/// The backups' list: choose one and say yes; the restore then asks for its word, with what it
/// takes away.
fn on_backups_key(state: &mut State, key: Key) -> Vec<Command> {
    let count = state.start.backups.ready().map_or(0, Vec::len);
    let start = &mut state.start;
    match key {
        Key::Up => start.backup_selected = start.backup_selected.saturating_sub(1),
        Key::Down => {
            start.backup_selected = (start.backup_selected + 1).min(count.saturating_sub(1))
        }
        Key::Char('q') | Key::Esc | Key::Backspace => back_home(state),
        Key::Char('?') => state.overlay = Some(Overlay::Help),
        Key::Enter => {
            let chosen = start
                .backups
                .ready()
                .and_then(|l| l.get(start.backup_selected))
                .filter(|b| b.verified)
                .cloned();
            if let Some(b) = chosen {
                state.prompt = Some(Prompt {
                    // A yes here starts the restore; it then asks for the word itself, with
                    // what it takes away counted at that moment.
                    question: Question::Rollback {
                        text: restore_question(&state.project, &b),
                        restore: false,
                    },
                    typed: String::new(),
                    then: Some(Command::Restore(b.path)),
                    refused: None,
                });
            }
        }
        _ => {}
    }
    Vec::new()
}

/// What the screens need to know once `command` starts an action: which, and the versions
/// they speak of (a going back speaks of going from what .env pins, `to`, to `from`).
pub(super) fn begin(state: &mut State, command: &Command) {
    match command {
        Command::Rollback => {
            state.action = Action::Rollback;
            if let Some(last) = state.start.last_upgrade.ready() {
                state.from = last.back_to.clone();
                state.to = last.now.clone();
            }
        }
        Command::Restore(path) => {
            state.action = Action::Restore;
            let version = state
                .start
                .backups
                .ready()
                .and_then(|l| l.iter().find(|b| &b.path == path))
                .and_then(|b| b.version.clone());
            state.to = state
                .start
                .pinned
                .clone()
                .unwrap_or_else(|| state.from.clone());
            state.from = version.unwrap_or_default();
        }
        Command::Backup => {
            state.action = Action::Backup;
            // Only the backup runs: the upgrade's other steps would be pending for ever.
            state.stages = vec![
                (Stage::Backup, super::state::Status::Pending),
                (Stage::Done, super::state::Status::Pending),
            ];
        }
        Command::Upgrade(to) | Command::Resume { to, .. } => {
            state.action = Action::Upgrade;
            state.to = to.clone();
        }
        _ => {}
    }
}

/// The question a restore of `b` asks: what comes back, and what leaves the app.
pub fn restore_question(project: &str, b: &BackupEntry) -> String {
    format!(
        "Restore {project} from the backup of {} ({}, {})? The app goes back to {} with its data as it was then; everything written since leaves the app (kept aside, not deleted). hoist checks the backup and counts what a restore takes away, then asks you to confirm.",
        b.date,
        b.version.as_deref().unwrap_or("version unknown"),
        crate::units::human_bytes(b.bytes),
        b.version
            .as_deref()
            .unwrap_or("the version it was taken of"),
    )
}

/// "just now", "5 min ago", "3 h ago", "2 days ago".
pub fn ago(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => "just now".to_string(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 48 * 3600 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::state::{Msg, update};

    fn home() -> State {
        let mut s = State::new("specivo", "0.1.11", "");
        s.start.choices = vec!["0.1.13".into(), "0.1.12".into()];
        s.start.next = Some("0.1.12".into());
        s.start.last_upgrade = Available::Ready(LastUpgrade {
            run: "20261128T101500Z-3f9a".into(),
            now: "0.1.11".into(),
            back_to: "0.1.10".into(),
            when: "2026-11-28 10:15".into(),
            ago: "2 h ago".into(),
            restore: false,
            reason: "the schema is as it was".into(),
            loss: String::new(),
        });
        s.start.backups = Available::Ready(vec![BackupEntry {
            version: Some("0.1.10".into()),
            date: "2026-11-28 10:15".into(),
            bytes: 1_000_000,
            path: "/srv/b/specivo-20261128-101500-0.1.10".into(),
            verified: true,
            note: None,
        }]);
        s.start.preselect();
        s
    }

    fn key(s: &mut State, k: Key) -> Vec<Command> {
        update(s, Msg::Key(k))
    }

    #[test]
    fn the_cursor_starts_on_the_next_version_and_walks_into_the_entries() {
        let mut s = home();
        assert_eq!(s.start.item(), Some(Item::Version(1)));
        key(&mut s, Key::Down);
        assert_eq!(s.start.item(), Some(Item::Entry(Entry::Rollback)));
        key(&mut s, Key::PageDown);
        assert_eq!(s.start.item(), Some(Item::Entry(Entry::Restore)));
        // Nothing to upgrade to: the first entry that can be chosen.
        let mut s = home();
        s.start.choices.clear();
        s.start.next = None;
        s.start.last_upgrade = Available::Not("nothing to roll back".into());
        s.start.preselect();
        assert_eq!(s.start.item(), Some(Item::Entry(Entry::Backup)));
    }

    #[test]
    fn a_re_pin_rollback_is_asked_here_and_a_restore_by_the_engine() {
        let mut s = home();
        key(&mut s, Key::Down);
        assert!(key(&mut s, Key::Enter).is_empty());
        assert_eq!(key(&mut s, Key::Char('y')), [Command::Rollback]);
        assert_eq!(s.prompt, None);
        assert_eq!(s.action, Action::Rollback);
        assert_eq!((s.from.as_str(), s.to.as_str()), ("0.1.10", "0.1.11"));
        let mut s = home();
        if let Available::Ready(l) = &mut s.start.last_upgrade {
            l.restore = true;
        }
        key(&mut s, Key::Down);
        assert_eq!(key(&mut s, Key::Enter), [Command::Rollback]);
        // A no to the question here changes nothing and stays home.
        let mut s = home();
        key(&mut s, Key::Down);
        key(&mut s, Key::Enter);
        assert_eq!(key(&mut s, Key::Char('n')), []);
        assert_eq!(s.prompt, None);
    }

    #[test]
    fn a_disabled_entry_does_nothing() {
        let mut s = home();
        s.start.last_upgrade = Available::Not("nothing to roll back".into());
        key(&mut s, Key::Down);
        assert_eq!(key(&mut s, Key::Enter), []);
        assert_eq!(s.prompt, None);
    }

    #[test]
    fn a_chosen_backup_is_restored_after_a_yes_and_the_engine_asks_for_the_word() {
        let mut s = home();
        key(&mut s, Key::PageDown);
        assert_eq!(key(&mut s, Key::Enter), []);
        assert_eq!(s.start.page, Page::Backups);
        assert_eq!(key(&mut s, Key::Enter), []);
        assert_eq!(s.prompt.as_ref().map(|p| p.question.word()), Some(None));
        assert_eq!(
            key(&mut s, Key::Char('y')),
            [Command::Restore(
                "/srv/b/specivo-20261128-101500-0.1.10".into()
            )]
        );
        assert_eq!(s.action, Action::Restore);
    }

    #[test]
    fn history_and_backup_now() {
        let mut s = home();
        key(&mut s, Key::Down);
        key(&mut s, Key::Down);
        assert_eq!(key(&mut s, Key::Enter), [Command::Backup]);
        let mut s = home();
        for _ in 0..3 {
            key(&mut s, Key::Down);
        }
        assert_eq!(key(&mut s, Key::Enter), [Command::History]);
        assert_eq!(s.start.page, Page::History);
        key(&mut s, Key::Esc);
        assert_eq!(s.start.page, Page::Home);
        // Esc on the home itself goes nowhere: it does not quit.
        assert!(key(&mut s, Key::Esc).is_empty());
        assert_eq!(key(&mut s, Key::Char('q')), [Command::Quit]);
    }

    #[test]
    fn how_long_ago_in_words() {
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(600), "10 min ago");
        assert_eq!(ago(7300), "2 h ago");
        assert_eq!(ago(3 * 86_400), "3 days ago");
    }
}
