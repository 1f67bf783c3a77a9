//! Drawing the wizard: a pure function of `State`. The stepper down the side, the current step
//! in the middle with what it does and why, key hints at the bottom; help and quit overlays.
mod body;
mod logs;
mod overlay;
mod sections;
mod stepper;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::state::{Overlay, Phase, State};

/// Colors only when the user has not asked for none (`NO_COLOR`): meaning never rests on color
/// alone, every status also has its symbol and word.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn bold(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

pub fn render(state: &State, theme: Theme, frame: &mut Frame) {
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let title = Line::from(vec![
        Span::styled(" hoist ", theme.bold()),
        Span::raw(if state.to.is_empty() {
            format!(" {}  at {}", state.project, state.from)
        } else {
            format!(
                " upgrading {}  {} -> {}",
                state.project, state.from, state.to
            )
        }),
    ]);
    frame.render_widget(Paragraph::new(title), top);
    let side = if middle.width >= 100 { 22 } else { 18 };
    let [left, right] =
        Layout::horizontal([Constraint::Length(side), Constraint::Min(0)]).areas(middle);
    stepper::render(state, theme, frame, left);
    body::render(state, theme, frame, right);
    frame.render_widget(Paragraph::new(hints(state)), bottom);
    match state.overlay {
        Some(Overlay::Help) => overlay::help(theme, frame),
        Some(Overlay::Quit) => overlay::quit(state, theme, frame),
        None => {}
    }
}

/// The keys that do something now.
fn hints(state: &State) -> Line<'static> {
    let question = state.prompt.as_ref().map(|p| &p.question);
    let text = match (question, &state.phase) {
        (Some(crate::run::Question::Override { .. }), _) => {
            " type the word, Enter go on  Esc stop here, nothing changed  ? help"
        }
        (Some(q), _) if q.word().is_some() => {
            " type the word, Enter confirm  Esc keep as is  ? help"
        }
        (Some(_), _) => " y/Enter yes  n/Esc no  ? help",
        (_, Phase::Finished { .. }) => " q quit  ↑/↓ scroll logs  ? help",
        (_, Phase::Idle) if state.start.attention.is_some() => {
            " c/r/h as above  ↑/↓ choose  Enter start  ? help  q quit"
        }
        (_, Phase::Idle) => " ↑/↓ choose  Enter start  ? help  q quit",
        _ if state.stop_requested => " stopping at the next safe point  ↑/↓ scroll logs  ? help",
        _ => " ↑/↓ PgUp/PgDn scroll logs  ? help  q quit",
    };
    Line::from(text)
}

#[cfg(test)]
mod tests;
