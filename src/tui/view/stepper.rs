//! The steps down the side: pending, running, done, failed or skipped, each with a symbol (so
//! the meaning survives NO_COLOR) and a color.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::Theme;
use crate::tui::state::{Phase, State, Status};

pub fn render(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    // Which release runs, in an upgrade through several: "2 of 3" over "0.1.10 -> 0.1.11".
    let mut lines: Vec<Line> = Vec::new();
    if let Some(hop) = state.hop.as_ref().filter(|_| state.phase == Phase::Running) {
        lines.push(Line::from(Span::styled(
            format!("release {} of {}", hop.number, hop.of),
            theme.bold(),
        )));
        lines.push(Line::from(format!("{} -> {}", hop.from, hop.to)));
        lines.push(Line::from(""));
    }
    lines.extend(state.stages.iter().map(|(stage, status)| {
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
    }));
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::RIGHT)),
        area,
    );
}
