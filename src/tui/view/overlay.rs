//! Boxes drawn over the screen: the help, and what quitting during a change would mean.
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::Theme;
use crate::tui::state::State;

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
    let area = centered(frame.area(), 64, 14);
    let text = vec![
        Line::from("hoist upgrades your app one careful step at a time:"),
        Line::from("a verified backup comes first, so nothing can be lost."),
        Line::from(""),
        Line::from("  ↑ ↓ PgUp PgDn   scroll the log"),
        Line::from("  y / n           answer a question"),
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
    let area = centered(frame.area(), 64, 9);
    let text = vec![
        Line::from(format!("A change is under way: {}.", state.current.title())),
        Line::from(""),
        Line::from("Leaving now would leave the app half upgraded. hoist carries on"),
        Line::from("to the end of the upgrade (or its rollback); then q quits."),
        Line::from(""),
        Line::from("Press any key to go back."),
    ];
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
