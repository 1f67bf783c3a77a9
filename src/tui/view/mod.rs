//! Drawing the wizard: a pure function of `State`. The stepper down the side, the current step
//! in the middle with what it does and why, key hints at the bottom; help and quit overlays.
mod body;
mod dock;
mod home;
mod logs;
mod overlay;
mod sections;
mod stepper;
mod wrap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::state::{Action, Overlay, Page, Phase, State};

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
    let words = match state.action {
        _ if state.phase == Phase::Idle => format!(" {}  at {}", state.project, state.from),
        Action::Upgrade => format!(
            " upgrading {}  {} -> {}",
            state.project, state.from, state.to
        ),
        // A rollback's screens speak of going back from what .env pins (`to`) to `from`.
        Action::Rollback => format!(
            " rolling back {}  {} -> {}",
            state.project, state.to, state.from
        ),
        Action::Backup => format!(" backing up {}  at {}", state.project, state.from),
        Action::Restore => format!(" restoring a backup of {}", state.project),
    };
    let title = Line::from(vec![
        Span::styled(" hoist ", theme.bold()),
        Span::raw(words),
    ]);
    frame.render_widget(Paragraph::new(title), top);
    if stepper_shown(state, middle.width) {
        let side = if middle.width >= 100 { 22 } else { 18 };
        let [left, right] =
            Layout::horizontal([Constraint::Length(side), Constraint::Min(0)]).areas(middle);
        stepper::render(state, theme, frame, left);
        body::render(state, theme, frame, right);
    } else {
        body::render(state, theme, frame, middle);
    }
    frame.render_widget(Paragraph::new(hints(state)), bottom);
    match state.overlay {
        Some(Overlay::Help) => overlay::help(theme, frame),
        Some(Overlay::Quit) => overlay::quit(state, theme, frame),
        None => {}
    }
}

/// The steps down the side, unless the screen is narrow and needs its width more: a question
/// with its plan or offer, a failure's evidence, the end with its commands (a command broken
/// across rows is copied broken). The heading names the step either way.
fn stepper_shown(state: &State, width: u16) -> bool {
    // The home is not an upgrade: it has no steps to show.
    if state.phase == Phase::Idle {
        return false;
    }
    let wants_width =
        state.prompt.is_some() || matches!(state.phase, Phase::Failed | Phase::Finished { .. });
    width >= 100 || !wants_width
}

/// The keys that do something now.
fn hints(state: &State) -> Line<'static> {
    let question = state.prompt.as_ref().map(|p| &p.question);
    if let (None, Some((watched, total))) = (question, state.observing) {
        use crate::units::clock;
        return Line::from(format!(
            " watching, {} of {} left  a accept now  r roll back  ? help",
            clock(total.saturating_sub(watched)),
            clock(total)
        ));
    }
    let text = match (question, &state.phase) {
        (Some(crate::run::Question::Override { .. }), _) => {
            " type the word, Enter go on  Esc stop here, nothing changed  ? help"
        }
        (Some(q), _) if q.word().is_some() => {
            " type the word, Enter confirm  Esc keep as is  ↑/↓ scroll  ? help"
        }
        (Some(q), _) if q.rehearsal().is_some() => {
            " y/Enter yes  t try on a copy first  n/Esc no  ↑/↓ scroll  ? help"
        }
        (Some(_), _) => " y/Enter yes  n/Esc no  ↑/↓ scroll  ? help",
        (_, Phase::Finished { .. }) => " Enter home  q quit  ↑/↓ scroll  ? help",
        (_, Phase::Idle) => match state.start.page {
            Page::History => " ↑/↓ PgUp/PgDn scroll  Esc back  ? help",
            Page::Backups => " ↑/↓ choose  Enter restore  Esc back  ? help",
            Page::Home if state.start.attention.is_some() && state.start.show_steps => {
                " c/r as above  h back to the menu  ? help  q quit"
            }
            Page::Home if state.start.attention.is_some() => {
                " c/r/h as above  ↑/↓ choose  Enter go  ? help  q quit"
            }
            Page::Home => " ↑/↓ choose  Enter go  or type a version  ? help  q quit",
        },
        _ if state.stop_requested => " stopping at the next safe point  ↑/↓ scroll logs  ? help",
        _ => " ↑/↓ PgUp/PgDn scroll logs  ? help  q quit",
    };
    Line::from(text)
}

#[cfg(test)]
mod tests;
