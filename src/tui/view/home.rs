//! The home: what runs now (and a run that needs the user first), then where the user can go —
//! the versions to upgrade to and the entries (roll back, back up, history, restore) — and,
//! pinned above the key bar, what the item under the cursor would do, or its question. Its
//! pages: the history, and the backups to restore from.
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::wrap::Rows;
use super::{Theme, dock};
use crate::tui::home::{Available, Entry, Item, Page, Start};
use crate::tui::state::State;
use crate::units::human_bytes;

pub fn render(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    match state.start.page {
        Page::Home => home(state, theme, frame, area),
        Page::History => history(state, theme, frame, area),
        Page::Backups => backups(state, theme, frame, area),
    }
}

/// The question the wizard asks itself (a re-pin rollback, a restore), for the dock.
fn question(state: &State, theme: Theme, width: u16) -> Option<(Rows, Rows)> {
    let p = state.prompt.as_ref()?;
    let (mut about, mut ask) = (Rows::new(width), Rows::new(width));
    about.blank();
    about.line(p.question.text());
    ask.line(Line::from(Span::styled(
        match p.question.word() {
            Some(word) => format!(
                "Type {word} and press Enter to go on; Esc changes nothing: {}_",
                p.typed
            ),
            None => "Go on? [y/n]".to_string(),
        },
        theme.bold(),
    )));
    if let Some(line) = p.refused_line() {
        ask.line(Line::from(Span::styled(line, theme.fg(Color::Yellow))));
    }
    Some((about, ask))
}

fn home(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let st = &state.start;
    let width = area.width;
    let (about, ask) = question(state, theme, width)
        .unwrap_or_else(|| (detail(state, theme, width), Rows::new(width)));
    let above = dock::draw(frame, area, &about.rows, &ask.rows);
    let (menu, cursor) = menu(state, theme, width);
    let head_height = header(st, theme, width).height();
    let menu_height = menu.height().min(above.height);
    // Under the header when both fit; else the menu keeps its rows and the header gives way.
    // What happened, step by step, is read alone: the menu gives way to it until h hides it.
    let reading_steps = st.show_steps && st.attention.is_some();
    let [top, bottom] = if reading_steps {
        [
            above,
            Rect::new(above.x, above.y + above.height, above.width, 0),
        ]
    } else if head_height.saturating_add(menu_height) <= above.height {
        Layout::vertical([Constraint::Length(head_height), Constraint::Min(0)]).areas(above)
    } else {
        Layout::vertical([Constraint::Min(0), Constraint::Length(menu_height)]).areas(above)
    };
    // The menu keeps the cursor's row in sight, however many versions there are.
    let skip = (cursor + 1).saturating_sub(usize::from(menu_height));
    frame.render_widget(
        Paragraph::new(menu.rows.into_iter().skip(skip).collect::<Vec<_>>()),
        bottom,
    );
    let (first, rest) = header_parts(st, theme, width);
    let room = usize::from(top.height);
    let mut head = first.rows;
    let mut rest = rest.rows;
    // What a run needing the user asks (its c/r/h keys) stays; the services give way first.
    if head.len() + rest.len() > room && room > 0 {
        // Blank rows go before words do.
        head.retain(|l| l.width() > 0);
        if head.len() < room {
            rest.truncate(room - 1 - head.len());
        } else {
            head.truncate(room - 1);
            rest.clear();
        }
        rest.push(Line::from("… (`hoist status` shows all of it)"));
    }
    head.extend(rest);
    frame.render_widget(Paragraph::new(head), top);
}

/// What runs now, and a run the journal says needs the user.
fn header(st: &Start, theme: Theme, width: u16) -> Rows {
    let (mut first, rest) = header_parts(st, theme, width);
    first.lines(rest.rows);
    first
}

/// The header in two: what runs and what needs the user (kept whole where it can be), then
/// the notes and services (cut first when the screen is short).
fn header_parts(st: &Start, theme: Theme, width: u16) -> (Rows, Rows) {
    let mut first = Rows::new(width);
    first.line(format!(
        "Pinned {}, running {}.",
        st.pinned.as_deref().unwrap_or("(not set)"),
        st.running.as_deref().unwrap_or("(unknown)")
    ));
    if let Some(a) = &st.attention {
        first.blank();
        first.lines(attention(a, st.show_steps, theme));
    }
    let mut rest = Rows::new(width);
    rest.lines(st.about.iter().map(|a| Line::from(a.clone())));
    for (service, version, health) in &st.services {
        rest.line(format!("  {service:10} {version:10} {health}"));
    }
    (first, rest)
}

/// A run the journal says needs the user, and the ways on (keys).
fn attention(a: &crate::resume::Attention, show_steps: bool, theme: Theme) -> Vec<Line<'static>> {
    use crate::resume::Choice;
    let mut lines = vec![Line::from(Span::styled(
        "Needs your attention",
        theme.fg(Color::Yellow).patch(theme.bold()),
    ))];
    // The keys before the sentence: on a short screen the sentence is what is cut.
    let sentence = Line::from(a.sentence.clone());
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
    lines.push(sentence);
    if show_steps {
        for step in &a.steps {
            lines.push(Line::from(format!("     {step}")));
        }
    }
    lines.push(Line::from(""));
    lines
}

/// One row, cut with "…" when wider than `width` (the dock says it all).
fn row(text: String, width: u16, style: Style) -> Line<'static> {
    let width = usize::from(width);
    let text = if text.chars().count() > width {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        text
    };
    Line::from(Span::styled(text, style))
}

/// The versions to upgrade to and the entries, one row each; and the cursor's row.
fn menu(state: &State, theme: Theme, width: u16) -> (Rows, usize) {
    let st = &state.start;
    let mut rows = Rows::new(width);
    let mut cursor = 0;
    rows.blank();
    rows.line(Line::from(Span::styled("Upgrade to", theme.bold())));
    if st.choices.is_empty() {
        rows.line(format!(
            "  {}",
            st.note
                .clone()
                .unwrap_or_else(|| "No newer version in the registry.".to_string())
        ));
    }
    let selected = st.item();
    let chosen = |item: Item| st.typed.is_empty() && selected == Some(item);
    let style = |on: bool| {
        if on {
            theme.bold().patch(theme.fg(Color::Cyan))
        } else {
            Style::default()
        }
    };
    for (i, v) in st.choices.iter().enumerate() {
        let on = chosen(Item::Version(i));
        let mut text = format!("{} {v}", if on { ">" } else { " " });
        if let Some((_, words)) = st.failed.iter().find(|(f, _)| f == v) {
            // Not recommended without saying so: it failed on this very stack.
            text.push_str(&format!("   {words}"));
        } else if Some(v) == st.next.as_ref() {
            text.push_str("   next step (recommended)");
        } else if i == 0 && st.choices.len() > 1 {
            text.push_str("   newest: hoist goes there one release at a time");
        }
        if on {
            cursor = rows.rows.len();
        }
        rows.rows.push(row(text, width, style(on)));
    }
    rows.blank();
    rows.line(Line::from(Span::styled("Or", theme.bold())));
    for entry in Entry::ALL {
        let on = chosen(Item::Entry(entry));
        let why_not = st.why_not(entry);
        let words = match &why_not {
            Some(why) => why.clone(),
            None => entry_words(st, entry),
        };
        let text = format!(
            "{} {:27} {words}",
            if on { ">" } else { " " },
            entry.label()
        );
        if on {
            cursor = rows.rows.len();
        }
        let style = if why_not.is_some() && !on {
            theme.fg(Color::DarkGray)
        } else {
            style(on)
        };
        rows.rows.push(row(text, width, style));
    }
    (rows, cursor)
}

/// An entry's words on its row, when it can be chosen.
fn entry_words(st: &Start, entry: Entry) -> String {
    match entry {
        Entry::Rollback => match st.last_upgrade.ready() {
            Some(l) => format!(
                "{} -> {} ({}){}",
                l.now,
                l.back_to,
                l.ago,
                if l.restore { ", with a restore" } else { "" }
            ),
            None => String::new(),
        },
        Entry::Backup => format!(
            "into {}",
            st.backup_root.as_deref().unwrap_or("the backup dir")
        ),
        Entry::History => st
            .journal
            .clone()
            .unwrap_or_else(|| "looking at the journal…".to_string()),
        Entry::Restore => {
            let n = st
                .backups
                .ready()
                .map_or(0, |l| l.iter().filter(|b| b.verified).count());
            format!("{n} verified backup{}", if n == 1 { "" } else { "s" })
        }
    }
}

/// What the item under the cursor would do, for the dock.
fn detail(state: &State, theme: Theme, width: u16) -> Rows {
    let st = &state.start;
    let mut rows = Rows::new(width);
    rows.blank();
    if !st.typed.is_empty() {
        rows.line(Line::from(Span::styled(
            format!("Version: {}_   Enter starts, Esc clears.", st.typed),
            theme.bold(),
        )));
        return rows;
    }
    let enter = |rows: &mut Rows, what: &str| {
        rows.line(Line::from(Span::styled(
            format!("Enter: {what}"),
            theme.bold(),
        )));
    };
    match st.item() {
        Some(Item::Version(i)) => {
            let v = &st.choices[i];
            // Pinned and running can differ (an upgrade cut short): the version that runs is
            // where the upgrade starts from, in words.
            let from = match (st.pinned.as_deref(), st.running.as_deref()) {
                (Some(p), Some(r)) if p != r => format!("{r} (pinned {p})"),
                (Some(p), _) => p.to_string(),
                (None, _) => state.from.clone(),
            };
            rows.line(format!(
                "Upgrade {} from {from} to {v}{}. hoist shows the plan and asks before anything changes; a verified backup comes first.",
                state.project,
                if st.next.as_ref() == Some(v) {
                    ", the next step"
                } else {
                    ", one release at a time"
                }
            ));
            enter(&mut rows, "see the plan. Or type a version.");
        }
        Some(Item::Entry(entry)) => {
            if let Some(why) = st.why_not(entry) {
                rows.line(format!("{}: not now, {why}.", entry.label()));
                return rows;
            }
            match entry {
                Entry::Rollback => {
                    if let Some(l) = st.last_upgrade.ready() {
                        rows.line(format!(
                            "The upgrade {} -> {} of {} ({}).",
                            l.back_to, l.now, l.when, l.ago
                        ));
                        if l.restore {
                            rows.line(format!(
                                "Going back restores the backup taken before it, then pins {}: {}.",
                                l.back_to, l.reason
                            ));
                            rows.line(Line::from(Span::styled(
                                format!(
                                    "A restore takes away {} (kept aside, not deleted).",
                                    l.loss
                                ),
                                theme.fg(Color::Yellow),
                            )));
                            enter(&mut rows, "roll back (you type restore first).");
                        } else {
                            rows.line(format!(
                                "Going back pins {} again, no restore: {}.",
                                l.back_to, l.reason
                            ));
                            enter(&mut rows, "roll back (you are asked first).");
                        }
                    }
                }
                Entry::Backup => {
                    rows.line(format!(
                        "Back up {} now, as `hoist backup` does: the database dump and the app's files, checked, into {}. The app keeps running.",
                        state.project,
                        st.backup_root.as_deref().unwrap_or("the backup dir")
                    ));
                    enter(&mut rows, "back up now.");
                }
                Entry::History => {
                    rows.line(
                        "The journal's runs and backups, newest first, as `hoist history` shows them.",
                    );
                    enter(&mut rows, "show them.");
                }
                Entry::Restore => {
                    rows.line(format!(
                        "Choose a backup in {} to restore, by its version, date and size.",
                        st.backup_root.as_deref().unwrap_or("the backup dir")
                    ));
                    enter(&mut rows, "choose.");
                }
            }
        }
        None => {}
    }
    rows
}

fn history(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let st = &state.start;
    let mut rows = Rows::new(area.width);
    rows.line(Line::from(Span::styled(
        format!("History of {}", state.project),
        theme.bold(),
    )));
    rows.blank();
    if st.history.is_empty() {
        rows.line("Reading the journal…");
    }
    for l in &st.history {
        rows.line(l.clone());
    }
    let skip = st
        .page_scroll
        .min(rows.rows.len().saturating_sub(usize::from(area.height)));
    frame.render_widget(
        Paragraph::new(rows.rows.into_iter().skip(skip).collect::<Vec<_>>()),
        area,
    );
}

fn backups(state: &State, theme: Theme, frame: &mut Frame, area: Rect) {
    let st = &state.start;
    let width = area.width;
    let mut rows = Rows::new(width);
    rows.line(Line::from(Span::styled(
        format!("Restore a backup of {}", state.project),
        theme.bold(),
    )));
    let list = match &st.backups {
        Available::Ready(list) => list.as_slice(),
        Available::Looking => {
            rows.line("Looking for backups…");
            &[]
        }
        Available::Not(why) => {
            rows.line(format!("No backup can be listed: {why}."));
            &[]
        }
    };
    if !list.is_empty() {
        rows.line(format!(
            "In {}, newest first; only a verified one can be restored:",
            st.backup_root.as_deref().unwrap_or("the backup dir")
        ));
        rows.blank();
    }
    let mut cursor = 0;
    for (i, b) in list.iter().enumerate() {
        let on = i == st.backup_selected;
        if on {
            cursor = rows.rows.len();
        }
        let text = format!(
            "{} {:10} {:17} {:>9}  {}",
            if on { ">" } else { " " },
            b.version.as_deref().unwrap_or("?"),
            b.date,
            human_bytes(b.bytes),
            if b.verified {
                "verified".to_string()
            } else {
                format!("not verified: {}", b.note.as_deref().unwrap_or("unknown"))
            }
        );
        let style = match (on, b.verified) {
            (true, _) => theme.bold().patch(theme.fg(Color::Cyan)),
            (false, false) => theme.fg(Color::DarkGray),
            (false, true) => Style::default(),
        };
        rows.rows.push(row(text, width, style));
    }
    // The chosen backup's directory, whole, and what Enter does; or the restore's question.
    let (about, ask) = question(state, theme, width).unwrap_or_else(|| {
        let mut about = Rows::new(width);
        if let Some(b) = list.get(st.backup_selected) {
            about.blank();
            about.whole(&b.path, Style::default());
            if let Some(note) = &b.note {
                about.line(note.clone());
            }
            about.line(Line::from(Span::styled(
                if b.verified {
                    "Enter: restore it (you type restore first)."
                } else {
                    "This backup is not verified, so it cannot be restored from here."
                },
                theme.bold(),
            )));
        }
        (about, Rows::new(width))
    });
    let above = dock::draw(frame, area, &about.rows, &ask.rows);
    let skip = (cursor + 1).saturating_sub(usize::from(above.height));
    frame.render_widget(
        Paragraph::new(rows.rows.into_iter().skip(skip).collect::<Vec<_>>()),
        above,
    );
}
