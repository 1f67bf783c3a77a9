//! The middle of the screen: the current step's name, what it does and why, and its content —
//! progress, the log pane, the failure with its evidence and the offered rollback, or the end.
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Theme, sections};
use crate::rollback::plan::{Decision, loss_sentence};
use crate::run::{Question, RESTORE_WORD};
use crate::tui::state::{Phase, Stage, State};

pub fn render(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let area = Rect {
        x: area.x + 1,
        width: area.width.saturating_sub(1),
        ..area
    };
    match &state.phase {
        Phase::Idle => start(state, theme, frame, area),
        Phase::Failed => failure(state, theme, frame, area),
        Phase::Finished { ok, sentence } => finished(state, *ok, sentence, theme, frame, area),
        _ => step(state, theme, frame, area),
    }
}

fn heading<'a>(state: &State, theme: Theme) -> Vec<Line<'a>> {
    let mut title = if state.phase == Phase::RollingBack {
        format!("Rolling back: {}", state.current.title())
    } else {
        state.current.title().to_string()
    };
    // The timer: a long migration is less frightening when the wizard is seen to be counting.
    if let Some(secs) = state.elapsed_s.filter(|_| state.changing()) {
        title.push_str(&format!("  ({})", clock(secs)));
    }
    vec![
        Line::from(Span::styled(title, theme.bold())),
        Line::from(state.current.purpose()),
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

fn step(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let logs = !state.logs.is_empty()
        && matches!(
            state.current,
            Stage::Restart | Stage::WatchLogs | Stage::SmokeTests
        );
    let mut lines = heading(state, theme);
    if state.stop_requested {
        lines.push(Line::from(Span::styled(
            "Stopping at the next safe point, as you asked: before the first change, or once the running restart is checked.",
            theme.fg(Color::Yellow),
        )));
        lines.push(Line::from(""));
    }
    match state.current {
        Stage::HealthCheck => lines.extend(sections::health(state, theme, true)),
        Stage::Backup | Stage::Pull => {
            lines.extend(sections::backup_and_pull(state, theme, area.width));
            lines.push(Line::from(""));
        }
        Stage::PinVersion => lines.extend(sections::env_diff(state, theme)),
        Stage::SmokeTests => lines.extend(sections::checks(state, theme)),
        _ => {}
    }
    // Beside the checklist or the diff, the progress lines would say the same again.
    let said = state.current == Stage::SmokeTests
        || (state.current == Stage::PinVersion && state.env_diff.is_some());
    if !said {
        for p in &state.progress {
            lines.push(Line::from(format!("  {p}")));
        }
    }
    if state.current == Stage::SmokeTests || !state.migrations.is_empty() {
        for (from, to) in &state.migrations {
            let from = if from.is_empty() { "(base)" } else { from };
            lines.push(Line::from(Span::styled(
                format!("  migration {from} -> {to}"),
                theme.fg(Color::Magenta),
            )));
        }
    }
    // A question (and the override's explanation) is kept at the bottom, always in sight.
    let mut prompt: Vec<Line> = Vec::new();
    let question = state.prompt.as_ref().map(|p| &p.question);
    if let Some(Question::Override { .. }) = question {
        prompt.extend(sections::override_prompt(state, theme));
    } else if let Some(q) = question {
        prompt.push(Line::from(""));
        for p in &state.plan {
            prompt.push(Line::from(format!("  {p}")));
        }
        prompt.push(Line::from(""));
        prompt.push(Line::from(Span::styled(
            format!("{} [y/n]", q.text()),
            theme.bold(),
        )));
    }
    let prompt_height = wrapped_height(&prompt, area.width).min(area.height / 2);
    let [area, prompt_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(prompt_height)]).areas(area);
    frame.render_widget(
        Paragraph::new(prompt).wrap(Wrap { trim: false }),
        prompt_area,
    );
    // What the step shows above the logs: all of it, up to half the screen (two thirds for
    // the checklist, which matters more than the log by then).
    let cap = if state.current == Stage::SmokeTests {
        area.height * 2 / 3
    } else {
        area.height / 2
    };
    let top_height = if logs {
        wrapped_height(&lines, area.width).min(cap).max(4)
    } else {
        area.height
    };
    let [top, rest] =
        Layout::vertical([Constraint::Length(top_height), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), top);
    if logs {
        super::logs::render(state, theme, frame, rest);
    }
}

/// How many rows `lines` take, wrapped at `width`.
fn wrapped_height(lines: &[Line], width: u16) -> u16 {
    let width = usize::from(width.max(1));
    lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(width))
        .sum::<usize>()
        .try_into()
        .unwrap_or(u16::MAX)
}

/// Before anything happens: what runs, how healthy it is, and where it can go.
fn start(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let st = &state.start;
    let mut lines = vec![
        Line::from(Span::styled(
            format!("Upgrade {}", state.project),
            theme.bold(),
        )),
        Line::from(format!(
            "Pinned {}, running {}.",
            st.pinned.as_deref().unwrap_or("(not set)"),
            st.running.as_deref().unwrap_or("(unknown)")
        )),
    ];
    lines.extend(st.about.iter().map(|a| Line::from(a.clone())));
    lines.push(Line::from(""));
    if let Some(a) = &st.attention {
        lines.extend(attention(a, st.show_steps, theme));
    }
    for (service, version, health) in &st.services {
        lines.push(Line::from(format!("  {service:10} {version:10} {health}")));
    }
    lines.push(Line::from(""));
    if st.choices.is_empty() {
        lines.push(Line::from(st.note.clone().unwrap_or_else(|| {
            "No newer version in the registry.".to_string()
        })));
    } else {
        lines.push(Line::from(Span::styled(
            "Choose the version to upgrade to:",
            theme.bold(),
        )));
        for (i, v) in st.choices.iter().enumerate() {
            let mut text = format!("{} {v}", if i == st.selected { ">" } else { " " });
            if Some(v) == st.next.as_ref() {
                text.push_str("   next step (recommended)");
            } else if i == 0 && st.choices.len() > 1 {
                text.push_str("   newest: hoist goes there one release at a time");
            }
            let style = if i == st.selected {
                theme.bold().patch(theme.fg(Color::Cyan))
            } else {
                ratatui::style::Style::default()
            };
            lines.push(Line::from(Span::styled(text, style)));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(if st.typed.is_empty() {
        "Enter starts. Or type a version.".to_string()
    } else {
        format!("Version: {}_   Enter starts, Esc clears.", st.typed)
    }));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// A run the journal says needs the user, and the ways on (keys).
fn attention<'a>(a: &crate::resume::Attention, show_steps: bool, theme: Theme) -> Vec<Line<'a>> {
    use crate::resume::Choice;
    let mut lines = vec![
        Line::from(Span::styled(
            "Needs your attention",
            theme.fg(Color::Yellow).patch(theme.bold()),
        )),
        Line::from(a.sentence.clone()),
    ];
    for c in &a.choices {
        lines.push(Line::from(match c {
            Choice::Continue => format!(
                "  c  continue to {}",
                a.to.as_deref().unwrap_or("the version it was going to")
            ),
            Choice::Rollback => format!(
                "  r  roll back to {}",
                a.from.as_deref().unwrap_or("the version before")
            ),
            Choice::Show if show_steps => "  h  hide what happened".to_string(),
            Choice::Show => "  h  show what happened, step by step".to_string(),
        }));
    }
    if show_steps {
        for step in &a.steps {
            lines.push(Line::from(format!("     {step}")));
        }
    }
    lines.push(Line::from(""));
    lines
}

fn failure(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    // A rollback chosen on the start screen is not the failure of a step.
    let title = if state.start.attention.is_some() {
        "Rolling back the last upgrade".to_string()
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
    let mut lines = vec![Line::from(Span::styled(
        title,
        theme.fg(Color::Red).patch(theme.bold()),
    ))];
    if let Some(f) = &state.failure {
        lines.push(Line::from(f.sentence.clone()));
        for (service, tail) in &f.evidence {
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                format!("Last lines of {service}:"),
                theme.bold(),
            )));
            for l in tail.iter().rev().take(8).rev() {
                lines.push(Line::from(format!("  {l}")));
            }
        }
    }
    lines.push(Line::from(""));
    match &state.rollback {
        Some(offer) => {
            let what = match offer.decision {
                Decision::Repin => format!(
                    "Go back to {} by pinning it again. No data needs restoring.",
                    state.from
                ),
                Decision::Restore => format!(
                    "Go back to {} by restoring the backup first, then pinning it.",
                    state.from
                ),
            };
            lines.push(Line::from(Span::styled(what, theme.bold())));
            lines.push(Line::from(format!("Why: {}.", offer.reason)));
            if offer.decision == Decision::Restore {
                let loss = if let Some(unknown) = &offer.unknown_loss {
                    format!("{unknown}. The current data is kept aside, not deleted.")
                } else if offer.losses.is_empty() {
                    "Nothing was written since the backup, so no data is lost.".to_string()
                } else {
                    format!(
                        "A restore takes away what was {}. The current data is kept aside, not deleted.",
                        loss_sentence(&offer.losses)
                    )
                };
                lines.push(Line::from(Span::styled(loss, theme.fg(Color::Yellow))));
                lines.push(Line::from(""));
                lines.push(Line::from(format!(
                    "Type {RESTORE_WORD} and press Enter to restore: {}",
                    state.typed()
                )));
            } else {
                lines.push(Line::from(""));
                lines.push(Line::from("Roll back now? [y/n]"));
            }
        }
        None => lines.push(Line::from(
            "hoist has no rollback to offer: the message above says what state the app is in.",
        )),
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

fn finished(state: &State, ok: bool, sentence: &str, theme: Theme, frame: &mut Frame, area: Rect) {
    let (title, color) = match (ok, state.rollback.is_some()) {
        (true, false) => (
            format!("{} runs {} now", state.project, state.to),
            Color::Green,
        ),
        (true, true) => (
            format!("Rolled back: {} runs {} again", state.project, state.from),
            Color::Yellow,
        ),
        (false, _) if state.stop_requested => ("Stopped, as you asked".to_string(), Color::Yellow),
        (false, _) if state.declined => ("Not upgraded, as you chose".to_string(), Color::Yellow),
        (false, _) => ("Stopped: this needs your attention".to_string(), Color::Red),
    };
    let mut lines = vec![
        Line::from(Span::styled(title, theme.fg(color).patch(theme.bold()))),
        Line::from(""),
        Line::from(sentence.to_string()),
        Line::from(""),
    ];
    if state.backup_files.is_empty() {
        if let Some(dir) = &state.backup_dir {
            lines.push(Line::from(format!("Backup:   {dir}")));
        }
    } else if area.height < 30 {
        // A small terminal: the copy command below matters more than the checksums (they are
        // in the backup's manifest.json, and were on the backup's screen).
        lines.push(Line::from(format!(
            "Backup:   {} ({} files, {}, checked)",
            state.backup_dir.as_deref().unwrap_or(""),
            state.backup_files.len(),
            crate::units::human_bytes(state.backup_total.unwrap_or(0))
        )));
    } else {
        lines.push(Line::from("Backup:"));
        lines.extend(sections::backup_files(state, theme, area.width));
    }

    if let Some(ms) = state.downtime_ms {
        lines.push(Line::from(""));
        lines.push(Line::from(format!("Downtime: {:.1} s", ms as f64 / 1000.0)));
    }
    if let Some(record) = &state.record {
        lines.push(Line::from(record.clone()));
    }
    if ok && state.rollback.is_none() {
        lines.push(Line::from(
            "To go back later: hoist rollback (it restores the backup if a migration ran).",
        ));
    }
    if let Some(copy) = &state.copy_command {
        lines.push(Line::from(""));
        lines.push(Line::from(
            "A backup on this server is lost with it. Copy it to your own computer (run this there):",
        ));
        lines.push(Line::from(Span::styled(copy.clone(), theme.bold())));
    }
    // Refused at the health check: its table and the failing containers' last lines.
    if !ok
        && state.current == Stage::HealthCheck
        && state
            .health
            .as_ref()
            .is_some_and(|h| !h.problems.is_empty())
    {
        lines.push(Line::from(""));
        lines.extend(sections::health(state, theme, false));
    }
    if let Some(f) = state.failure.as_ref().filter(|_| !ok) {
        for (service, tail) in &f.evidence {
            lines.push(Line::from(""));
            lines.push(Line::from(format!("Last lines of {service}:")));
            for l in tail.iter().rev().take(8).rev() {
                lines.push(Line::from(format!("  {l}")));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}
