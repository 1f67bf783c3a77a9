//! The bottom of the middle of the screen, just above the key bar: a question with what it is
//! about (the plan, the rollback's offer), or the command to copy the backup off the server.
//! It gets the rows it needs first; what is above it (a step's progress, a failure's evidence)
//! gets the rest, and scrolls. So a question is never below the bottom of the screen.
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

/// Rows kept for what is above the dock when the dock would take them all (its title).
const ABOVE: u16 = 2;

/// Draws `about` then `ask` (rows already fitted to `area`'s width) at the bottom of `area`,
/// and gives back the area left above them. `ask` is always whole (the question itself, the
/// word being typed); `about` gives way first on a very small screen, from its end, said with
/// a "…" row.
pub fn draw(frame: &mut Frame, area: Rect, about: &[Line<'static>], ask: &[Line<'static>]) -> Rect {
    let rows = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    let ask_h = rows(ask.len()).min(area.height);
    let room = area.height.saturating_sub(ask_h).saturating_sub(ABOVE);
    let about_h = rows(about.len()).min(room);
    let mut shown: Vec<Line<'static>> = about.iter().take(usize::from(about_h)).cloned().collect();
    if usize::from(about_h) < about.len()
        && let Some(last) = shown.last_mut()
    {
        *last = Line::from("… (a taller terminal shows all of it)");
    }
    shown.extend(ask.iter().take(usize::from(ask_h)).cloned());
    let height = about_h + ask_h;
    let dock = Rect {
        y: area.y + area.height - height,
        height,
        ..area
    };
    frame.render_widget(Paragraph::new(shown), dock);
    Rect {
        height: area.height - height,
        ..area
    }
}

/// Draws `rows` in `area`, `up` rows up from their end (the newest lines of a log stay in
/// sight); gives back how far up it could go, for the key bar to say.
pub fn bottom_anchored(frame: &mut Frame, area: Rect, rows: &[Line<'static>], up: usize) -> usize {
    let height = usize::from(area.height);
    let max_up = rows.len().saturating_sub(height);
    let up = up.min(max_up);
    let end = rows.len() - up;
    let start = end.saturating_sub(height);
    let mut shown = rows[start..end].to_vec();
    // Rows out of sight are said, with the keys that bring them.
    if start > 0
        && let Some(first) = shown.first_mut()
    {
        *first = Line::from(format!("↑ {} more rows above (↑/PgUp)", start + 1));
    }
    if up > 0
        && shown.len() > 1
        && let Some(last) = shown.last_mut()
    {
        *last = Line::from(format!("↓ {} more rows below (↓/PgDn)", up + 1));
    }
    frame.render_widget(Paragraph::new(shown), area);
    max_up
}
