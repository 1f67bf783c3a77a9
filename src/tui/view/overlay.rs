//! Boxes drawn over the screen: the help, and what quitting during a change would mean.
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::Theme;
use crate::tui::state::{Action, Phase, Stage, State};

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

pub fn help(theme: Theme, frame: &mut Frame) {
    let area = centered(frame.area(), 76, 18);
    let text = vec![
        Line::from("hoist upgrades your app one careful step at a time:"),
        Line::from("a verified backup comes first, and a way back is offered at each step."),
        Line::from(""),
        Line::from("  ↑ ↓ Enter       choose, on the home screen"),
        Line::from("  ↑ ↓ PgUp PgDn   scroll the log, the evidence"),
        Line::from("  y / n           answer a question"),
        Line::from("  t               at the plan: try the upgrade on a throwaway copy first"),
        Line::from("  a / r           while watching after an upgrade: accept / roll back"),
        Line::from("  c / r / h       a run that needs you: continue / roll back / show it"),
        Line::from("  q, Ctrl-C       quit (during a change: explained first)"),
        Line::from("  ?               this help"),
        Line::from(""),
        Line::from("If something fails, hoist shows why and offers the way back."),
        Line::from(""),
        Line::from("Press any key to close."),
    ];
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(" Help ")
                .border_style(theme.fg(Color::Cyan)),
        ),
        area,
    );
}

pub fn quit(state: &State, theme: Theme, frame: &mut Frame) {
    let area = centered(frame.area(), 68, 12);
    let mut text = vec![
        Line::from(format!("A change is under way: {}.", state.title())),
        Line::from(""),
    ];
    if state.action == Action::Backup {
        text.push(Line::from(
            "The backup ends by itself (a cut one would be removed).",
        ));
        text.push(Line::from("Wait for it to end, then q quits."));
        text.push(Line::from(""));
    } else if state.current == Stage::Rehearse && state.phase == Phase::Running {
        // Nothing of the real app changed yet: only the copy must not be left behind.
        text.push(Line::from(
            "Nothing of the real app has changed: this is the copy.",
        ));
        text.push(Line::from(
            "Leaving now would leave the copy running, so hoist does not.",
        ));
        text.push(Line::from(""));
        if state.stop_requested {
            text.push(Line::from("It stops at the next safe point, as you asked,"));
            text.push(Line::from("and removes the copy."));
        } else {
            text.push(Line::from(
                "  s    stop the rehearsal at its next safe point, remove the copy",
            ));
        }
        text.push(Line::from(""));
    } else {
        text.push(Line::from(
            "Leaving now would leave the app half changed, so hoist does not.",
        ));
        if state.phase == Phase::RollingBack || state.action != Action::Upgrade {
            text.push(Line::from(
                "Going back is finished, not stopped: then q quits.",
            ));
            text.push(Line::from(""));
        } else if state.stop_requested {
            text.push(Line::from("It stops at the next safe point, as you asked."));
            text.push(Line::from(""));
        } else {
            text.push(Line::from(
                "It can stop at the next safe point: before the first change,",
            ));
            text.push(Line::from(
                "or once the running restart is checked (the app is healthy).",
            ));
            text.push(Line::from(""));
            text.push(Line::from("  s    stop at the next safe point"));
        }
    }
    text.push(Line::from("  any other key: go back, it goes on"));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(" Not yet ")
                .border_style(theme.fg(Color::Yellow)),
        ),
        area,
    );
}
