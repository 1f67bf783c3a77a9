//! The middle of the screen: the current step's name, what it does and why, and its content —
//! progress, the log pane, the failure with its evidence and the offered rollback, or the end.
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::Theme;
use crate::rollback::plan::{Decision, loss_sentence};
use crate::tui::state::{CONFIRM_WORD, Phase, Stage, State};

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
    let title = if state.phase == Phase::RollingBack {
        format!("Rolling back: {}", state.current.title())
    } else {
        state.current.title().to_string()
    };
    vec![
        Line::from(Span::styled(title, theme.bold())),
        Line::from(state.current.purpose()),
        Line::from(""),
    ]
}

fn step(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let logs = !state.logs.is_empty()
        && matches!(
            state.current,
            Stage::Restart | Stage::WatchLogs | Stage::SmokeTests
        );
    // The heading (name, purpose wrapped, a blank line), progress and migrations above the logs.
    let rows = state.progress.len() + state.migrations.len();
    let progress_height = (rows as u16 + 5).min(area.height / 2).max(4);
    let [top, rest] = Layout::vertical([
        Constraint::Length(if logs { progress_height } else { area.height }),
        Constraint::Min(0),
    ])
    .areas(area);
    let mut lines = heading(state, theme);
    for p in &state.progress {
        lines.push(Line::from(format!("  {p}")));
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
    if let Some(q) = &state.question {
        lines.push(Line::from(""));
        for p in &state.plan {
            lines.push(Line::from(format!("  {p}")));
        }
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(format!("{q} [y/n]"), theme.bold())));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), top);
    if logs {
        log_pane(state, theme, frame, rest);
    }
}

/// The newest lines that fit, `log_scroll` lines up from the bottom; migrations highlighted.
fn log_pane(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let inner = area.height.saturating_sub(1) as usize;
    let end = state.logs.len().saturating_sub(state.log_scroll);
    let start = end.saturating_sub(inner);
    let width = state
        .logs
        .iter()
        .map(|l| l.service.len())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = state
        .logs
        .range(start..end)
        .map(|l| {
            let text_style = if l.migration {
                theme.fg(Color::Magenta).patch(theme.bold())
            } else {
                ratatui::style::Style::default()
            };
            Line::from(vec![
                Span::styled(format!("{:width$} | ", l.service), theme.fg(Color::Cyan)),
                Span::styled(l.text.clone(), text_style),
            ])
        })
        .collect();
    let mut title = " logs ".to_string();
    if state.log_scroll > 0 {
        title = format!(" logs (scrolled up {} lines) ", state.log_scroll);
    }
    if state.logs_dropped > 0 {
        title.push_str(&format!("({} older lines not kept) ", state.logs_dropped));
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(title)),
        area,
    );
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
        Line::from(""),
    ];
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

fn failure(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{} failed",
            state
                .failure
                .as_ref()
                .map_or(state.current, |f| f.stage)
                .title()
        ),
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
                let loss = if offer.losses.is_empty() {
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
                    "Type {CONFIRM_WORD} and press Enter to restore: {}",
                    state.typed
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
        (false, _) => ("Stopped: this needs your attention".to_string(), Color::Red),
    };
    let mut lines = vec![
        Line::from(Span::styled(title, theme.fg(color).patch(theme.bold()))),
        Line::from(""),
        Line::from(sentence.to_string()),
        Line::from(""),
    ];
    if let Some(dir) = &state.backup_dir {
        lines.push(Line::from(format!("Backup:   {dir}")));
    }

    if let Some(ms) = state.downtime_ms {
        lines.push(Line::from(format!("Downtime: {:.1} s", ms as f64 / 1000.0)));
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
