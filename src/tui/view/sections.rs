//! What each step shows under its heading, as lines: the services' health, the backup and the
//! downloads with their bytes and rates, the `.env` diff, the verification's checklist.
use ratatui::style::Color;
use ratatui::text::{Line, Span};

use super::Theme;
use crate::tui::state::{Check, State};
use crate::units::human_bytes;

/// The services' table, the problems (unless a sentence above says them), and the failing
/// containers' last lines.
pub fn health<'a>(state: &State, theme: Theme, problems: bool) -> Vec<Line<'a>> {
    let Some(h) = &state.health else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for (service, version, words, fine) in &h.services {
        let (symbol, color) = if *fine {
            ("ok", Color::Green)
        } else {
            ("!!", Color::Red)
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  {symbol} "), theme.fg(color)),
            Span::raw(format!("{service:12} {version:10} {words}")),
        ]));
    }
    if h.problems.is_empty() {
        return lines;
    }
    lines.push(Line::from(""));
    if problems {
        for p in &h.problems {
            lines.push(Line::from(Span::styled(
                format!("  {p}"),
                theme.fg(Color::Red),
            )));
        }
    }
    for (service, tail) in &h.evidence {
        lines.push(Line::from(Span::styled(
            format!("  Last lines of {service}:"),
            theme.bold(),
        )));
        for l in tail.iter().rev().take(5).rev() {
            lines.push(Line::from(format!("    {l}")));
        }
    }
    lines
}

/// What going on past an unhealthy service means (its question and word are the dock's).
pub fn override_prompt() -> Vec<Line<'static>> {
    vec![Line::from(
        "Upgrading an unhealthy app hides what the upgrade itself breaks. Go on only if you know why (e.g. the new version fixes it); Esc stops here, nothing changed.",
    )]
}

/// `[=====>    ]` for a fraction, `width` characters inside the brackets.
fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((done.min(total) as u128 * width as u128) / total as u128) as usize
    };
    let mut s = String::with_capacity(width + 2);
    s.push('[');
    for i in 0..width {
        s.push(if i < filled {
            '='
        } else if i == filled && filled > 0 {
            '>'
        } else {
            ' '
        });
    }
    s.push(']');
    s
}

/// The backup (the part being read, its bytes and rate; then the files with size and sha256)
/// and the downloads (a bar per image: layers and bytes). They run at the same time.
pub fn backup_and_pull<'a>(state: &State, theme: Theme, width: u16) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    lines.push(Line::from(Span::styled("Backup", theme.bold())));
    if let Some(r) = &state.backup_read {
        let rate = r.bytes * 1000 / r.elapsed_ms.max(1);
        lines.push(Line::from(format!(
            "  {}  {} read, {}/s",
            r.part,
            human_bytes(r.bytes),
            human_bytes(rate)
        )));
    }
    if state.backup_files.is_empty() {
        // Nothing read yet, and no progress line below to say what happens.
        if state.backup_read.is_none() && state.progress.is_empty() {
            lines.push(Line::from("  starting"));
        }
    } else {
        lines.extend(backup_files(state, theme, width));
    }
    if !state.pulls.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled("Download", theme.bold())));
    }
    let bar_width = if width >= 100 { 40 } else { 20 };
    for p in &state.pulls {
        let s = &p.progress;
        let status = if p.done {
            format!("done, {} layers, {}", s.layers, human_bytes(s.bytes_done))
        } else {
            format!(
                "{}/{} layers, {} of {}",
                s.layers_done,
                s.layers,
                human_bytes(s.bytes_done),
                human_bytes(s.bytes_total)
            )
        };
        let (done, total) = if p.done {
            (1, 1)
        } else {
            (s.bytes_done, s.bytes_total)
        };
        lines.push(Line::from(format!("  {}", p.image)));
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {} ", bar(done, total, bar_width)),
                theme.fg(Color::Cyan),
            ),
            Span::raw(status),
        ]));
    }
    lines
}

/// The finished backup's files: name, size, sha256 (shortened on a narrow screen).
pub fn backup_files<'a>(state: &State, theme: Theme, width: u16) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    if let Some(dir) = &state.backup_dir {
        lines.push(Line::from(vec![
            Span::styled("  ok ", theme.fg(Color::Green)),
            Span::raw(format!(
                "{dir} ({}, checked)",
                human_bytes(state.backup_total.unwrap_or(0))
            )),
        ]));
    }
    let wide = width >= 120;
    let name_width = state
        .backup_files
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(0);
    for f in &state.backup_files {
        let sha = if wide {
            f.sha256.clone()
        } else {
            format!("{}…", f.sha256.chars().take(12).collect::<String>())
        };
        lines.push(Line::from(format!(
            "     {:name_width$} {:>8}  sha256 {sha}",
            f.name,
            human_bytes(f.bytes)
        )));
    }
    lines
}

/// The one line of `.env` that changes.
pub fn env_diff<'a>(state: &State, theme: Theme) -> Vec<Line<'a>> {
    let Some(d) = &state.env_diff else {
        return Vec::new();
    };
    let mut lines = vec![Line::from(match d.line {
        Some(_) => format!("  {}, {}:", d.file.display(), d.lines_words()),
        None => format!("  {}:", d.file.display()),
    })];
    if let Some(before) = &d.before {
        lines.push(Line::from(Span::styled(
            format!("  - {before}"),
            theme.fg(Color::Red),
        )));
    }
    lines.push(Line::from(Span::styled(
        format!("  + {}", d.after),
        theme.fg(Color::Green),
    )));
    lines
}

/// The verification as a checklist: containers, schema before -> after, rows, each smoke check
/// with its status code and latency.
pub fn checks<'a>(checks: &[Check], theme: Theme) -> Vec<Line<'a>> {
    checks
        .iter()
        .map(|c| {
            let (symbol, color) = if c.ok {
                ("ok", Color::Green)
            } else {
                ("!!", Color::Red)
            };
            Line::from(vec![
                Span::styled(format!("  {symbol} "), theme.fg(color)),
                Span::styled(format!("{}: ", c.what), theme.bold()),
                Span::raw(c.detail.clone()),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::bar;

    #[test]
    fn a_bar_fills_with_its_fraction() {
        assert_eq!(bar(0, 100, 10), "[          ]");
        assert_eq!(bar(50, 100, 10), "[=====>    ]");
        assert_eq!(bar(100, 100, 10), "[==========]");
        assert_eq!(bar(5, 0, 4), "[    ]");
    }
}
