//! The log pane: the newest lines that fit, `log_scroll` lines up from the bottom, the app's
//! own colors kept (ANSI SGR codes), migration lines highlighted. Only the visible lines are
//! parsed, so a flood costs the same per frame as a quiet log.
use ansi_to_tui::IntoText;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::Theme;
use crate::tui::state::State;

pub fn render(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
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
            let mut spans = vec![Span::styled(
                format!("{:width$} | ", l.service),
                theme.fg(Color::Cyan),
            )];
            if l.migration {
                let plain: String = styled(&l.text).into_iter().map(|s| s.content).collect();
                spans.push(Span::styled(
                    plain,
                    theme.fg(Color::Magenta).patch(theme.bold()),
                ));
            } else if theme.color {
                spans.extend(styled(&l.text));
            } else {
                spans.extend(styled(&l.text).into_iter().map(|s| Span::raw(s.content)));
            }
            Line::from(spans)
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

/// A log line's text as styled spans: SGR colors kept, every other escape sequence and control
/// character dropped (a cursor move or a carriage return in an app's log must not move ours),
/// tabs as spaces.
fn styled(text: &str) -> Vec<Span<'static>> {
    let clean: String = text
        .chars()
        .flat_map(|c| match c {
            '\t' => vec![' '; 4],
            '\x1b' => vec![c],
            c if c.is_control() => Vec::new(),
            c => vec![c],
        })
        .collect();
    match clean.as_bytes().into_text() {
        Ok(parsed) => parsed
            .lines
            .into_iter()
            .flat_map(|line| line.spans)
            .map(|s| Span::styled(s.content.into_owned(), s.style))
            .collect(),
        // Not parseable: the text without its escapes, rather than nothing.
        Err(_) => vec![Span::styled(clean.replace('\x1b', ""), Style::default())],
    }
}

#[cfg(test)]
mod tests {
    use super::styled;
    use ratatui::style::Color;

    #[test]
    fn colors_are_kept_and_other_escapes_dropped() {
        let spans = styled("\x1b[31mERROR\x1b[0m disk\tfull\r\x1b[2K");
        let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "ERROR disk    full");
        assert_eq!(spans[0].style.fg, Some(Color::Red));
    }
}
