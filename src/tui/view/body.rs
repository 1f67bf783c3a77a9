//! The middle of the screen: the current step's name, what it does and why, and its content —
//! progress, the log pane, the failure with its evidence and the offered rollback, or the end.
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::wrap::Rows;
use super::{Theme, dock, sections};
use crate::rollback::plan::{Decision, loss_words};
use crate::run::{Question, RESTORE_WORD};
use crate::tui::state::{Action, Phase, Stage, State, Status};

pub fn render(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let area = Rect {
        x: area.x + 1,
        width: area.width.saturating_sub(1),
        ..area
    };
    match &state.phase {
        Phase::Idle => super::home::render(state, theme, frame, area),
        Phase::Failed => failure(state, theme, frame, area),
        Phase::Finished { ok, sentence } => finished(state, *ok, sentence, theme, frame, area),
        _ => step(state, theme, frame, area),
    }
}

fn heading(state: &State, theme: Theme) -> Vec<Line<'static>> {
    let going_back =
        state.phase == Phase::RollingBack || (state.action == Action::Rollback && state.changing());
    let mut title = if going_back {
        format!("Rolling back: {}", state.title())
    } else {
        state.title()
    };
    // Which release runs, in an upgrade through several.
    if let Some(hop) = state.hop.as_ref().filter(|_| !going_back) {
        title.push_str(&format!(" · release {}", hop.words()));
    }
    // The timer: a long migration is less frightening when the wizard is seen to be counting.
    if let Some(secs) = state
        .elapsed_s
        .filter(|_| state.changing() && state.prompt.is_none())
    {
        title.push_str(&format!("  ({})", clock(secs)));
    }
    // The observation window says what it waits for, not the checks' purpose.
    let purpose = match state.observing {
        Some((watched, total)) => format!(
            "Watching the app before calling the upgrade done: {} of {} watched, stable so far. a accepts it now, r rolls it back.",
            clock(watched),
            clock(total)
        ),
        None => state.purpose().to_string(),
    };
    vec![
        Line::from(Span::styled(title, theme.bold())),
        Line::from(purpose),
        Line::from(""),
    ]
}

/// `42 s`, `3 min 05 s`.
fn clock(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min {:02} s", secs / 60, secs % 60)
    }
}

/// The engine's question while a step runs (the plan's go-ahead, going on past an unhealthy
/// service): what it is about, and the question itself, for the dock.
fn step_question(state: &State, theme: Theme, width: u16) -> (Rows, Rows) {
    let (mut about, mut ask) = (Rows::new(width), Rows::new(width));
    let Some(q) = state.prompt.as_ref().map(|p| &p.question) else {
        return (about, ask);
    };
    about.blank();
    match q {
        Question::Override { .. } => {
            about.lines(sections::override_prompt());
            ask.line(Line::from(Span::styled(q.text(), theme.bold())));
        }
        // The rehearsal's end: its checks are above; the plan is the one already agreed to.
        Question::Upgrade { .. } if state.current == Stage::Rehearse => {}
        _ => {
            for p in &state.plan {
                about.line(format!("  {p}"));
            }
            if !state.plan.is_empty() {
                about.blank();
            }
        }
    }
    if let Some(offer) = q.rehearsal() {
        about.line(Line::from(vec![
            Span::styled("Try it first? ", theme.bold()),
            Span::raw(format!(
                "{}: t rehearses it on a throwaway copy (the database from the new backup, the data copied, no ports, its own network), then asks again. It takes {}; your app keeps running.",
                offer.why,
                offer.cost_words()
            )),
        ]));
        about.blank();
    }
    ask.line(Line::from(Span::styled(
        match q.word() {
            Some(word) => {
                format!(
                    "Type {word} and press Enter to say yes; Esc says no: {}_",
                    state.typed()
                )
            }
            None if q.rehearsal().is_some() => {
                format!("{} [y/n, t: try it on a copy first]", q.text())
            }
            None => format!("{} [y/n]", q.text()),
        },
        theme.bold(),
    )));
    if let Some(line) = state.prompt.as_ref().and_then(|p| p.refused_line()) {
        ask.line(Line::from(Span::styled(line, theme.fg(Color::Yellow))));
    }
    (about, ask)
}

fn step(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    // The rehearsal's end asks about what the copy showed: its checks, not its log.
    let judged = state.current == Stage::Rehearse && state.prompt.is_some();
    let logs = !state.logs.is_empty()
        && !judged
        && matches!(
            state.current,
            Stage::Rehearse | Stage::Restart | Stage::WatchLogs | Stage::SmokeTests
        );
    let mut rows = Rows::new(area.width);
    rows.lines(heading(state, theme));
    if state.stop_requested {
        rows.line(Line::from(Span::styled(
            if state.current == Stage::Rehearse {
                "Stopping the rehearsal at its next safe point, as you asked (once the copy's step under way ends); the copy is then removed, and nothing of the real app changes."
            } else {
                "Stopping at the next safe point, as you asked: before the first change, or once the running restart is checked."
            },
            theme.fg(Color::Yellow),
        )));
        rows.blank();
    }
    match state.current {
        Stage::HealthCheck => rows.lines(sections::health(state, theme, true)),
        Stage::Backup | Stage::Pull => {
            rows.lines(sections::backup_and_pull(state, theme, area.width));
            rows.blank();
        }
        Stage::PinVersion => rows.lines(sections::env_diff(state, theme)),
        Stage::SmokeTests => rows.lines(sections::checks(&state.checks, theme)),
        _ => {}
    }
    // Beside the checklist or the diff, the progress lines would say the same again; at the
    // rehearsal's question, its verdict (the last line) is what counts.
    let said = state.current == Stage::SmokeTests
        || (state.current == Stage::PinVersion && state.env_diff.is_some());
    if judged {
        if let Some(p) = state.progress.back() {
            rows.line(format!("  {p}"));
        }
    } else if !said {
        for p in &state.progress {
            rows.line(format!("  {p}"));
        }
    }
    // The copy's checks and what it could not try: what the second question rests on.
    if state.current == Stage::Rehearse && !state.rehearsal_checks.is_empty() {
        rows.blank();
        rows.line(Line::from(Span::styled(
            "Checked on the copy:",
            theme.bold(),
        )));
        rows.lines(sections::checks(&state.rehearsal_checks, theme));
    }
    if judged && !state.rehearsal_notes.is_empty() {
        rows.blank();
        rows.line(Line::from(Span::styled(
            "How the copy differs from the real app:",
            theme.bold(),
        )));
        for n in &state.rehearsal_notes {
            rows.line(format!("  - {n}"));
        }
    }
    if state.current == Stage::SmokeTests || !state.migrations.is_empty() {
        for (from, to) in &state.migrations {
            let from = if from.is_empty() { "(base)" } else { from };
            rows.line(Line::from(Span::styled(
                format!("  migration {from} -> {to}"),
                theme.fg(Color::Magenta),
            )));
        }
    }
    // A question is pinned at the bottom, always whole; the step's lines take what is left.
    let (about, ask) = step_question(state, theme, area.width);
    let area = dock::draw(frame, area, &about.rows, &ask.rows);
    // What the step shows above the logs: all of it, up to half the screen (two thirds for
    // the checklist, which matters more than the log by then).
    let cap = if state.current == Stage::SmokeTests {
        area.height * 2 / 3
    } else {
        area.height / 2
    };
    let height = rows.height();
    let top_height = if logs {
        height.min(cap).max(4)
    } else {
        area.height
    };
    let [top, rest] =
        Layout::vertical([Constraint::Length(top_height), Constraint::Min(0)]).areas(area);
    if logs {
        frame.render_widget(Paragraph::new(rows.rows), top);
        super::logs::render(state, theme, frame, rest);
    } else {
        // Taller than the screen (a small terminal, a question's dock): what is out of sight
        // is said, and ↑/↓ bring it.
        dock::bottom_anchored(frame, top, &rows.rows, state.log_scroll);
    }
}

/// The failure's evidence: each failed service's last lines, under its name (`titled`: the
/// caller shows the one service's name above, where scrolling does not take it away).
fn evidence(state: &State, theme: Theme, width: u16, titled: bool) -> Rows {
    let mut rows = Rows::new(width);
    if let Some(f) = &state.failure {
        for (service, tail) in &f.evidence {
            if !titled {
                rows.blank();
                rows.line(Line::from(Span::styled(
                    format!("Last lines of {service}:"),
                    theme.bold(),
                )));
            }
            for l in tail {
                rows.line(format!("  {l}"));
            }
        }
    }
    rows
}

/// The one failed service whose lines are the evidence, when there is one.
fn one_service(state: &State) -> Option<&str> {
    let f = state.failure.as_ref()?;
    match f.evidence.keys().collect::<Vec<_>>().as_slice() {
        [only] => Some(only.as_str()),
        _ => None,
    }
}

/// The rollback on offer (what it does, why, what it takes away) and its question.
fn offer(state: &State, theme: Theme, width: u16) -> (Rows, Rows) {
    let (mut about, mut ask) = (Rows::new(width), Rows::new(width));
    about.blank();
    let Some(offer) = &state.rollback else {
        match state.prompt.as_ref() {
            Some(p) => about.line(p.question.text()),
            None => about.line(
                "hoist has no rollback to offer: the message above says what state the app is in.",
            ),
        }
        return (about, ask);
    };
    let what = match offer.decision {
        Decision::Repin => format!(
            "Go back to {} by pinning it again. No data needs restoring.",
            state.from
        ),
        Decision::Restore if offer.keep_first => format!(
            "Go back to {} on the database and data as they are now, keeping what was written since; if it does not come up, restore the backup first.",
            state.from
        ),
        Decision::Restore => format!(
            "Go back to {} by restoring the backup first, then pinning it.",
            state.from
        ),
    };
    about.line(Line::from(Span::styled(what, theme.bold())));
    about.line(format!("Why: {}.", offer.reason));
    if offer.decision == Decision::Restore {
        let loss = if offer.losses.is_empty() && offer.unknown_loss.is_none() {
            "Nothing was written since the backup, so a restore loses nothing.".to_string()
        } else {
            format!(
                "A restore takes away {}. The current data is kept aside, not deleted.",
                loss_words(&offer.losses, offer.unknown_loss.as_deref())
            )
        };
        about.line(Line::from(Span::styled(loss, theme.fg(Color::Yellow))));
    }
    about.blank();
    let text = match state.prompt.as_ref().map(|p| p.question.word()) {
        Some(Some(word)) => format!(
            "Type {word} and press Enter to {}: {}_",
            if word == RESTORE_WORD {
                "restore"
            } else {
                "go on"
            },
            state.typed()
        ),
        Some(None) => "Roll back now? [y/n]".to_string(),
        None => "Waiting for hoist's question…".to_string(),
    };
    ask.line(Line::from(Span::styled(text, theme.bold())));
    (about, ask)
}

fn failure(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    // A rollback chosen on the start screen is not the failure of a step.
    let title = if let Some(title) = state.observation_break {
        title.to_string()
    } else if state.action == Action::Rollback {
        "Rolling back the last upgrade".to_string()
    } else if state.action == Action::Restore {
        "Restoring a backup".to_string()
    } else {
        format!(
            "{} failed",
            state
                .failure
                .as_ref()
                .map_or(state.current, |f| f.stage)
                .title()
        )
    };
    let mut head = Rows::new(area.width);
    head.line(Line::from(Span::styled(
        title,
        theme.fg(Color::Red).patch(theme.bold()),
    )));
    if let Some(f) = &state.failure {
        head.line(f.sentence.clone());
    }
    let titled = one_service(state);
    if let Some(service) = titled {
        head.blank();
        head.line(Line::from(Span::styled(
            format!("Last lines of {service}:"),
            theme.bold(),
        )));
    }
    // The offer and its question first, pinned above the key bar; the evidence scrolls above.
    let (about, ask) = offer(state, theme, area.width);
    let above = dock::draw(frame, area, &about.rows, &ask.rows);
    let head_height = head.height().min(above.height);
    let [top, rest] =
        Layout::vertical([Constraint::Length(head_height), Constraint::Min(0)]).areas(above);
    frame.render_widget(Paragraph::new(head.rows), top);
    let rows = evidence(state, theme, rest.width, titled.is_some()).rows;
    dock::bottom_anchored(frame, rest, &rows, state.log_scroll);
}

fn finished(state: &State, ok: bool, sentence: &str, theme: Theme, frame: &mut Frame, area: Rect) {
    let (title, color) = match (
        ok,
        state.rollback.is_some() || state.action == Action::Rollback,
    ) {
        (true, false) if state.action == Action::Backup => {
            ("Backup taken".to_string(), Color::Green)
        }
        (true, _) if state.action == Action::Restore => (
            format!("Restored: {} runs {} again", state.project, state.from),
            Color::Yellow,
        ),
        (true, false) => (
            format!("{} runs {} now", state.project, state.to),
            Color::Green,
        ),
        (true, true) => (
            format!("Rolled back: {} runs {} again", state.project, state.from),
            Color::Yellow,
        ),
        (false, _) if state.stop_requested => ("Stopped, as you asked".to_string(), Color::Yellow),
        (false, _) if state.declined => (
            match state.action {
                Action::Rollback => "Not rolled back, as you chose",
                Action::Restore => "Not restored, as you chose",
                _ => "Not upgraded, as you chose",
            }
            .to_string(),
            Color::Yellow,
        ),
        // Caught on the copy: the real app never ran it (a copy that could not be made is
        // no verdict on the release).
        (false, _)
            if state.status(Stage::Rehearse) == Status::Failed
                && sentence.starts_with("the rehearsal failed") =>
        {
            (
                format!("Not upgraded: {} failed on a throwaway copy", state.to),
                Color::Yellow,
            )
        }
        (false, _) => ("Stopped: this needs your attention".to_string(), Color::Red),
    };
    let width = area.width;
    let mut head = Rows::new(width);
    head.line(Line::from(Span::styled(
        title,
        theme.fg(color).patch(theme.bold()),
    )));
    head.blank();
    head.line(sentence.to_string());
    let mut rows = Rows::new(width);
    rows.blank();
    if state.backup_files.is_empty() {
        if let Some(dir) = &state.backup_dir {
            rows.line(format!("Backup:   {dir}"));
        }
    } else if area.height < 30 {
        // A small terminal: the copy command below matters more than the checksums (they are
        // in the backup's manifest.json, and were on the backup's screen).
        rows.line(format!(
            "Backup:   {} ({} files backed up, {}, checked)",
            state.backup_dir.as_deref().unwrap_or(""),
            state.backup_files.len(),
            crate::units::human_bytes(state.backup_total.unwrap_or(0))
        ));
    } else {
        rows.line("Backup:");
        rows.lines(sections::backup_files(state, theme, width));
    }
    if let Some(ms) = state.downtime_ms {
        // A rollback's restart is measured from its own stop: the app was already down (or
        // broken) since the release that failed, which that figure does not count.
        if state.action == Action::Rollback || state.rollback.is_some() {
            rows.line(format!(
                "Downtime of the rollback's restart: {:.1} s (not counting the time the failed release was down)",
                ms as f64 / 1000.0
            ));
        } else {
            rows.line(format!("Downtime: {:.1} s", ms as f64 / 1000.0));
        }
    }
    if let Some(record) = &state.record {
        rows.line(record.clone());
    }
    if ok && state.rollback.is_none() && state.action == Action::Upgrade {
        rows.line(format!(
            "To go back later: `{} rollback` (it restores the backup if a migration ran).",
            state.hoist
        ));
    }
    // Refused at the health check: its table and the failing containers' last lines.
    if !ok
        && state.current == Stage::HealthCheck
        && state
            .health
            .as_ref()
            .is_some_and(|h| !h.problems.is_empty())
    {
        rows.blank();
        rows.lines(sections::health(state, theme, false));
    }
    if !ok {
        rows.rows.extend(evidence(state, theme, width, false).rows);
    }
    // The command to copy the backup off the server: pinned, on a row of its own, never
    // broken (it is printed again, whole, when the wizard ends).
    let (mut about, mut ask) = (Rows::new(width), Rows::new(width));
    if let Some(copy) = &state.copy_command {
        about.blank();
        about.line("A backup on this server is lost with it. Copy it to your own computer (run this there):");
        if !ask.fits(copy) {
            about.line("(wider than this terminal, so cut into rows here: it is printed whole when you quit)");
        }
        ask.whole(copy, theme.bold());
    }
    let above = dock::draw(frame, area, &about.rows, &ask.rows);
    let head_height = head.height().min(above.height);
    let [top, rest] =
        Layout::vertical([Constraint::Length(head_height), Constraint::Min(0)]).areas(above);
    frame.render_widget(Paragraph::new(head.rows), top);
    dock::bottom_anchored(frame, rest, &rows.rows, state.log_scroll);
}
