//! Text laid out in rows here, not by the `Paragraph`: the rows a text takes are then known
//! exactly (a question pinned above the key bar gets all the rows it needs), and a command or a
//! path is never broken inside (copied from a terminal, a broken command is a wrong one).
use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// Rows of text, each no wider than the width it was made for.
pub struct Rows {
    width: usize,
    pub rows: Vec<Line<'static>>,
}

impl Rows {
    pub fn new(width: u16) -> Rows {
        Rows {
            width: usize::from(width.max(1)),
            rows: Vec::new(),
        }
    }

    /// A line of prose, wrapped at spaces (a word wider than a row is cut: prose only).
    pub fn line(&mut self, line: impl Into<Line<'static>>) {
        let line = line.into();
        self.rows.extend(wrap(&line, self.width));
    }

    pub fn lines(&mut self, lines: impl IntoIterator<Item = Line<'static>>) {
        for line in lines {
            self.line(line);
        }
    }

    pub fn blank(&mut self) {
        self.rows.push(Line::from(""));
    }

    /// A command or a path: on one row, never broken, never indented. Wider than the rows, it
    /// is cut into full rows that hold nothing else (the wizard also prints it whole when it
    /// ends, where the terminal can wrap it as it likes).
    pub fn whole(&mut self, text: &str, style: Style) {
        let chars: Vec<(char, Style)> = text.chars().map(|c| (c, style)).collect();
        if chars.is_empty() {
            self.blank();
            return;
        }
        let mut row = Vec::new();
        let mut used = 0;
        for (c, s) in chars {
            let w = char_width(c);
            if used + w > self.width && !row.is_empty() {
                self.rows.push(spans(std::mem::take(&mut row)));
                used = 0;
            }
            row.push((c, s));
            used += w;
        }
        self.rows.push(spans(row));
    }

    /// Whether `text` fits on one row.
    pub fn fits(&self, text: &str) -> bool {
        text.chars().map(char_width).sum::<usize>() <= self.width
    }

    /// How many rows.
    pub fn height(&self) -> u16 {
        u16::try_from(self.rows.len()).unwrap_or(u16::MAX)
    }
}

fn char_width(c: char) -> usize {
    if c.is_ascii() {
        usize::from(!c.is_ascii_control())
    } else {
        let mut buf = [0u8; 4];
        Span::raw(&*c.encode_utf8(&mut buf)).width()
    }
}

/// A run of spaces or of other characters, with its width.
struct Token {
    space: bool,
    chars: Vec<(char, Style)>,
    width: usize,
}

/// Runs of spaces and of words; a command quoted in backticks (`hoist rollback`) is one word.
fn tokens(line: &Line) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut quoted = false;
    for span in &line.spans {
        let style = line.style.patch(span.style);
        for c in span.content.chars() {
            if c == '`' {
                quoted = !quoted;
            }
            let space = c == ' ' && !quoted;
            let w = char_width(c);
            match out.last_mut() {
                Some(t) if t.space == space => {
                    t.chars.push((c, style));
                    t.width += w;
                }
                _ => out.push(Token {
                    space,
                    chars: vec![(c, style)],
                    width: w,
                }),
            }
        }
    }
    out
}

/// Consecutive characters of one style as one span.
fn spans(chars: Vec<(char, Style)>) -> Line<'static> {
    let mut out: Vec<Span<'static>> = Vec::new();
    let mut text = String::new();
    let mut current: Option<Style> = None;
    for (c, s) in chars {
        if current.is_some_and(|cur| cur != s) {
            out.push(Span::styled(
                std::mem::take(&mut text),
                current.unwrap_or_default(),
            ));
        }
        current = Some(s);
        text.push(c);
    }
    if let Some(s) = current {
        out.push(Span::styled(text, s));
    }
    Line::from(out)
}

/// One line in rows of at most `width` columns, broken at spaces; rows after the first are
/// indented as the line is (a list item's words stay under its first word).
fn wrap(line: &Line, width: usize) -> Vec<Line<'static>> {
    let tokens = tokens(line);
    if tokens.is_empty() {
        return vec![Line::from("")];
    }
    let indent: Vec<(char, Style)> = match tokens.first() {
        Some(t) if t.space && t.width < width / 2 => t.chars.clone(),
        _ => Vec::new(),
    };
    // A quoted command wider than a row cannot stay whole: it breaks between its words, never
    // inside one (`--yes` cut after `--` would be another command).
    let room = width.saturating_sub(indent.len());
    let tokens: Vec<Token> = tokens
        .into_iter()
        .flat_map(|t| {
            if t.space || t.width <= room || !t.chars.iter().any(|(c, _)| *c == ' ') {
                return vec![t];
            }
            let mut parts: Vec<Token> = Vec::new();
            for (c, s) in t.chars {
                let space = c == ' ';
                match parts.last_mut() {
                    Some(p) if p.space == space => {
                        p.chars.push((c, s));
                        p.width += char_width(c);
                    }
                    _ => parts.push(Token {
                        space,
                        chars: vec![(c, s)],
                        width: char_width(c),
                    }),
                }
            }
            parts
        })
        .collect();
    let mut rows = Vec::new();
    let mut row: Vec<(char, Style)> = Vec::new();
    let mut used = 0;
    // Spaces wait until the word after them is placed on the same row.
    let mut pending: Option<&Token> = None;
    for token in &tokens {
        if token.space {
            pending = Some(token);
            continue;
        }
        let gap = pending.map_or(0, |p| p.width);
        if used > 0 && used + gap + token.width > width {
            rows.push(spans(std::mem::take(&mut row)));
            row.extend(indent.iter().copied());
            used = indent.len();
        } else if let Some(p) = pending {
            row.extend(p.chars.iter().copied());
            used += gap;
        }
        pending = None;
        // A word wider than the row is cut where the row ends.
        for &(c, s) in &token.chars {
            let w = char_width(c);
            if used + w > width && used > indent.len() {
                rows.push(spans(std::mem::take(&mut row)));
                row.extend(indent.iter().copied());
                used = indent.len();
            }
            row.push((c, s));
            used += w;
        }
    }
    // A line of spaces only (or a first token that is the indentation) still takes its row.
    if row.is_empty()
        && let Some(p) = pending.filter(|_| rows.is_empty())
    {
        row.extend(p.chars.iter().take(width).copied());
    }
    rows.push(spans(row));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rows: &Rows) -> Vec<String> {
        rows.rows
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn prose_wraps_at_spaces_and_keeps_its_indent() {
        let mut r = Rows::new(20);
        r.line("  Why: the schema is as it was at the backup");
        assert_eq!(
            text(&r),
            ["  Why: the schema is", "  as it was at the", "  backup"]
        );
        // Columns of a table keep their spaces.
        let mut r = Rows::new(40);
        r.line("  api        0.1.9      running");
        assert_eq!(text(&r), ["  api        0.1.9      running"]);
    }

    #[test]
    fn a_path_moves_to_the_next_row_whole_and_a_command_is_never_broken() {
        let mut r = Rows::new(30);
        r.line("the backup is in /srv/backups/specivo-1");
        assert_eq!(text(&r), ["the backup is in", "/srv/backups/specivo-1"]);
        let mut r = Rows::new(30);
        r.whole("scp -r root@host:/srv/b .", Style::default());
        assert_eq!(text(&r), ["scp -r root@host:/srv/b ."]);
        let mut r = Rows::new(10);
        r.whole("scp -r root@h:/x .", Style::default());
        assert_eq!(text(&r), ["scp -r roo", "t@h:/x ."]);
        // A command quoted in prose keeps its words together.
        let mut r = Rows::new(24);
        r.line("To go back: `hoist rollback --yes`.");
        assert_eq!(text(&r), ["To go back:", "`hoist rollback --yes`."]);
    }

    #[test]
    fn a_command_wider_than_the_row_breaks_between_its_words() {
        let mut rows = Rows::new(30);
        rows.line("To upgrade now: `hoist -C /srv/app --state-dir /var/x upgrade --to 1.2 --yes` (a new backup).");
        let text = text(&rows);
        assert!(text.iter().all(|r| r.chars().count() <= 30), "{text:?}");
        // Every option stays whole on its row.
        assert!(text.iter().any(|r| r.contains("--yes`")), "{text:?}");
        assert!(text.iter().any(|r| r.contains("--state-dir")), "{text:?}");
        assert!(!text.iter().any(|r| r.ends_with("--")), "{text:?}");
    }

    #[test]
    fn empty_lines_take_a_row_and_styles_survive() {
        let mut r = Rows::new(10);
        r.line(Line::from(vec![
            Span::styled("ab", Style::default().bold()),
            Span::raw(" cd"),
        ]));
        r.blank();
        r.line("");
        assert_eq!(r.height(), 3);
        assert_eq!(r.rows[0].spans[0].content, "ab");
        assert_eq!(r.rows[0].spans[0].style, Style::default().bold());
    }
}
