//! The steps down the side: pending, running, done, failed or skipped, each with a symbol (so
//! the meaning survives NO_COLOR) and a color.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::Theme;
use crate::tui::state::{State, Status};

pub fn render(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = state
        .stages
        .iter()
        .map(|(stage, status)| {
            let (symbol, color) = match status {
                Status::Pending => ("  ", Color::DarkGray),
                Status::Running => ("> ", Color::Yellow),
                Status::Done => ("ok", Color::Green),
                Status::Failed => ("!!", Color::Red),
                Status::Skipped => ("--", Color::DarkGray),
            };
            let mut style = theme.fg(color);
            if *stage == state.current {
                style = style.patch(theme.bold());
            }
            Line::from(vec![
                Span::styled(format!("{symbol} "), theme.fg(color)),
                Span::styled(stage.title(), style),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::RIGHT)),
        area,
    );
}
