//! A lossless `.env` document: read as Docker Compose v2 reads it (compose-go's dotenv rules),
//! change one value, write back every other byte as it was (comments, blank lines, order,
//! `export`, quoting, inline comments, CRLF, a missing final newline).
//! `tests/compose_oracle.rs` holds the reading rules against the real `docker compose config`.
use indexmap::IndexMap;

use super::interpolate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EnvFileError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

#[derive(Debug, Clone)]
struct Var {
    key: String,
    line: usize,
    quote: Quote,
    /// Byte range of the value token in `text` (quotes included); empty for `KEY` alone.
    value: std::ops::Range<usize>,
    /// `KEY` with no `=`: the value is inherited from the environment.
    inherited: bool,
}

#[derive(Debug, Clone)]
pub struct EnvFile {
    text: String,
    vars: Vec<Var>,
}

fn err(line: usize, message: impl Into<String>) -> EnvFileError {
    EnvFileError {
        line,
        message: message.into(),
    }
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

impl EnvFile {
    pub fn parse(text: &str) -> Result<EnvFile, EnvFileError> {
        let b = text.as_bytes();
        let mut vars = Vec::new();
        let mut pos = 0;
        let mut line = 1;
        // Skip a UTF-8 byte order mark, as editors on Windows write one.
        if text.starts_with('\u{feff}') {
            pos = 3;
        }
        let line_end = |from: usize| {
            b[from..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| from + p)
        };
        while pos < b.len() {
            let mut i = pos;
            while i < b.len() && is_blank(b[i]) {
                i += 1;
            }
            let eol = line_end(i);
            if i >= b.len() || b[i] == b'\n' || b[i] == b'\r' || b[i] == b'#' {
                pos = eol + 1;
                line += 1;
                continue;
            }
            if text[i..].starts_with("export") && b.get(i + 6).is_some_and(|&c| is_blank(c)) {
                i += 6;
                while i < b.len() && is_blank(b[i]) {
                    i += 1;
                }
            }
            let key_start = i;
            while i < eol && !matches!(b[i], b'=' | b':' | b'\r') {
                let c = b[i];
                if !(c.is_ascii_alphanumeric()
                    || matches!(c, b'_' | b'.' | b'-' | b'[' | b']')
                    || is_blank(c))
                {
                    // Only the name: the rest of the line may be a secret.
                    let name_end = (i..eol)
                        .find(|&p| matches!(b[p], b'=' | b':'))
                        .unwrap_or(eol);
                    let shown = text[key_start..name_end].trim_end_matches(['\r', ' ', '\t']);
                    let ch = text[i..].chars().next().unwrap_or('?');
                    return Err(err(
                        line,
                        format!("unexpected character {ch:?} in variable name {shown:?}"),
                    ));
                }
                i += 1;
            }
            let key = text[key_start..i].trim_end_matches([' ', '\t']);
            if key.contains([' ', '\t']) {
                return Err(err(
                    line,
                    format!("{key:?} is not a valid variable name: a name cannot contain a space"),
                ));
            }
            if key.is_empty() {
                return Err(err(
                    line,
                    "a line starts with '=' but has no variable name before it",
                ));
            }
            if i >= eol || b[i] == b'\r' {
                vars.push(Var {
                    key: key.to_string(),
                    line,
                    quote: Quote::None,
                    value: i..i,
                    inherited: true,
                });
                pos = eol + 1;
                line += 1;
                continue;
            }
            i += 1; // '=' or ':'
            while i < eol && is_blank(b[i]) {
                i += 1;
            }
            let start_line = line;
            let (quote, value, next) = match b.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let quote = if q == b'"' {
                        Quote::Double
                    } else {
                        Quote::Single
                    };
                    let mut j = i + 1;
                    let close = loop {
                        match b.get(j) {
                            None => {
                                return Err(err(
                                    start_line,
                                    format!(
                                        "the value of {key} opens a {} quote that is never closed",
                                        if q == b'"' { "double" } else { "single" }
                                    ),
                                ));
                            }
                            Some(b'\\') if quote == Quote::Double => j += 2,
                            Some(&c) if c == q => break j,
                            Some(b'\n') => {
                                line += 1;
                                j += 1;
                            }
                            Some(_) => j += 1,
                        }
                    };
                    // Compose reads on right after the closing quote: a comment, or even another
                    // `KEY` (which then inherits from the environment).
                    (quote, i..close + 1, close + 1)
                }
                _ => {
                    let mut end = eol;
                    if end > i && b[end - 1] == b'\r' {
                        end -= 1;
                    }
                    // An inline comment starts at a '#' that follows a blank.
                    if let Some(p) = (i..end).find(|&p| b[p] == b'#' && p > i && is_blank(b[p - 1]))
                    {
                        end = p;
                    }
                    while end > i && is_blank(b[end - 1]) {
                        end -= 1;
                    }
                    (Quote::None, i..end, eol + 1)
                }
            };
            let quoted = quote != Quote::None;
            vars.push(Var {
                key: key.to_string(),
                line: start_line,
                quote,
                value,
                inherited: false,
            });
            pos = next;
            if !quoted {
                line += 1;
            }
        }
        Ok(EnvFile {
            text: text.to_string(),
            vars,
        })
    }

    /// Keys in file order, each once.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for v in &self.vars {
            if !keys.contains(&v.key.as_str()) {
                keys.push(&v.key);
            }
        }
        keys
    }

    /// The definition Compose uses: the last one.
    fn last(&self, key: &str) -> Option<&Var> {
        self.vars.iter().rev().find(|v| v.key == key)
    }

    /// The value as written, unquoted and unescaped, before interpolation (`None` for a key
    /// that is absent or only named, to be inherited from the environment).
    pub fn raw_value(&self, key: &str) -> Option<String> {
        let v = self.last(key).filter(|v| !v.inherited)?;
        Some(self.unquoted(v))
    }

    fn unquoted(&self, v: &Var) -> String {
        let token = &self.text[v.value.clone()];
        match v.quote {
            Quote::None => token.to_string(),
            Quote::Single => token[1..token.len() - 1].to_string(),
            Quote::Double => unescape(&token[1..token.len() - 1]),
        }
    }

    /// Line (1-based) where the key is defined (its last definition).
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.last(key).map(|v| v.line)
    }

    /// Every value as Compose resolves it: unquoted and double-quoted values are interpolated
    /// against the process environment first and the file's earlier keys second; single-quoted
    /// values are literal; a key alone takes its value from the environment.
    pub fn resolve(
        &self,
        os_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<IndexMap<String, String>, EnvFileError> {
        let mut out: IndexMap<String, String> = IndexMap::new();
        for v in &self.vars {
            let value = if v.inherited {
                match os_env(&v.key) {
                    Some(value) => value,
                    None => continue,
                }
            } else {
                let raw = self.unquoted(v);
                match v.quote {
                    Quote::Single => raw,
                    Quote::None | Quote::Double => {
                        let lookup = |k: &str| os_env(k).or_else(|| out.get(k).cloned());
                        // A double-quoted `\$` arrives here as `$$`, which interpolation makes a literal dollar.
                        interpolate::interpolate(&raw, &lookup)
                            .map_err(|e| err(v.line, format!("{}: {e}", v.key)))?
                    }
                }
            };
            out.shift_remove(&v.key);
            out.insert(v.key.clone(), value);
        }
        Ok(out)
    }

    /// Sets one key's value. Every other byte stays as it was; the line keeps its quoting style
    /// when that style can hold the value. An absent key is appended.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EnvFileError> {
        if key.is_empty()
            || !key
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        {
            return Err(err(0, format!("{key:?} is not a valid variable name")));
        }
        let Some(idx) = self.vars.iter().rposition(|v| v.key == key) else {
            let mut text = self.text.clone();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push_str(if text.ends_with('\r') {
                    "\n"
                } else {
                    line_ending(&self.text)
                });
            }
            text.push_str(&format!(
                "{key}={}{}",
                encode(value, Quote::None),
                line_ending(&self.text)
            ));
            *self = EnvFile::parse(&text)?;
            return Ok(());
        };
        let v = &self.vars[idx];
        let replacement = if v.inherited {
            format!("={}", encode(value, Quote::None))
        } else {
            encode(value, v.quote)
        };
        let mut text = String::with_capacity(self.text.len() + replacement.len());
        text.push_str(&self.text[..v.value.start]);
        text.push_str(&replacement);
        text.push_str(&self.text[v.value.end..]);
        *self = EnvFile::parse(&text)?;
        Ok(())
    }

    /// The document, byte for byte the input where nothing was set.
    pub fn render(&self) -> String {
        self.text.clone()
    }
}

fn line_ending(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// Go's escapes in double-quoted values (`\n`, `\t`, `\"`, `\\`, ...); `\$` is a literal dollar.
/// Unknown escapes stay as written, as compose-go leaves them.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\u{7}'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('$') => out.push_str("$$"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A value needs no quotes when Compose would read it back unchanged without them.
fn plain(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'_' | b'.' | b'-' | b'/' | b':' | b'@' | b'+' | b',' | b'%' | b'='
                )
        })
}

/// The value token for `value` in the preferred quote style (or the nearest that can hold it).
/// Values are written literally: a `$` in a new value is not a variable reference.
fn encode(value: &str, style: Quote) -> String {
    match style {
        Quote::None if plain(value) => value.to_string(),
        Quote::None | Quote::Single if !value.contains(['\'', '\n', '\r']) => format!("'{value}'"),
        _ => {
            let mut s = String::from("\"");
            for c in value.chars() {
                match c {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    '$' => s.push_str("\\$"),
                    '\n' => s.push_str("\\n"),
                    '\r' => s.push_str("\\r"),
                    c => s.push(c),
                }
            }
            s.push('"');
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRICKY: &str = "# Specivo\n\nexport APP_VERSION=0.1.9 # pinned\nPASS=\"p a$$ \\\"q\\\"\"\nLIT='s $A'\r\nA= 1\nURL=http://x/#frag\nEMPTY=\nINHERIT\nMULTI=\"one\ntwo\"\nAPP_VERSION=0.1.10\nLAST=1";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn round_trip_is_byte_identical() {
        let doc = EnvFile::parse(TRICKY).unwrap();
        assert_eq!(doc.render(), TRICKY);
    }

    /// Compose takes a NUL byte and an 8 MiB value (`docker compose config` prints them), so
    /// hoist reads them too, and a pin leaves them as they were.
    #[test]
    fn a_nul_byte_and_a_huge_line_are_kept_byte_for_byte() {
        let huge = "x".repeat(8 << 20);
        let text = format!("NOTE=a\0b\nBIG={huge}\nAPP_VERSION=0.1.9\n");
        let mut doc = EnvFile::parse(&text).unwrap();
        let v = doc.resolve(&no_env).unwrap();
        assert_eq!(v["NOTE"], "a\0b");
        assert_eq!(v["BIG"].len(), huge.len());
        doc.set("APP_VERSION", "0.1.10").unwrap();
        assert_eq!(
            doc.render(),
            text.replace("APP_VERSION=0.1.9", "APP_VERSION=0.1.10")
        );
    }

    #[test]
    fn reads_values_as_compose_does() {
        let doc = EnvFile::parse(TRICKY).unwrap();
        let v = doc.resolve(&no_env).unwrap();
        assert_eq!(v["APP_VERSION"], "0.1.10", "the last definition wins");
        assert_eq!(v["PASS"], "p a$ \"q\"");
        assert_eq!(v["LIT"], "s $A");
        assert_eq!(v["A"], "1");
        assert_eq!(v["URL"], "http://x/#frag");
        assert_eq!(v["EMPTY"], "");
        assert_eq!(v["MULTI"], "one\ntwo");
        assert!(!v.contains_key("INHERIT"));
        let with_env = doc
            .resolve(&|k| (k == "INHERIT").then(|| "from env".to_string()))
            .unwrap();
        assert_eq!(with_env["INHERIT"], "from env");
        assert_eq!(doc.line_of("APP_VERSION"), Some(12));
        assert_eq!(doc.line_of("MULTI"), Some(10));
    }

    #[test]
    fn interpolation_prefers_the_environment_then_earlier_keys() {
        let doc = EnvFile::parse("X=file\nY=$X\nZ=\"${X}-${NOPE:-d}\"\nW='$X'\n").unwrap();
        let v = doc.resolve(&no_env).unwrap();
        assert_eq!(
            (v["Y"].as_str(), v["Z"].as_str(), v["W"].as_str()),
            ("file", "file-d", "$X")
        );
        let v = doc
            .resolve(&|k| (k == "X").then(|| "os".to_string()))
            .unwrap();
        assert_eq!(v["Y"], "os");
    }

    #[test]
    fn set_changes_exactly_one_value() {
        let mut doc = EnvFile::parse(TRICKY).unwrap();
        doc.set("APP_VERSION", "0.1.11").unwrap();
        let after = doc.render();
        let changed: Vec<(&str, &str)> = TRICKY
            .split('\n')
            .zip(after.split('\n'))
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed, [("APP_VERSION=0.1.10", "APP_VERSION=0.1.11")]);
        assert_eq!(TRICKY.len(), after.len());
        assert_eq!(doc.resolve(&no_env).unwrap()["APP_VERSION"], "0.1.11");
    }

    #[test]
    fn set_keeps_quotes_comments_and_line_endings() {
        let mut doc = EnvFile::parse("A='1' # keep\r\nB=\"2\"\r\n").unwrap();
        doc.set("A", "x y").unwrap();
        doc.set("B", "say \"hi\" $HOME").unwrap();
        assert_eq!(
            doc.render(),
            "A='x y' # keep\r\nB=\"say \\\"hi\\\" \\$HOME\"\r\n"
        );
        let v = doc.resolve(&no_env).unwrap();
        assert_eq!(v["B"], "say \"hi\" $HOME");
    }

    #[test]
    fn set_quotes_a_value_that_needs_it_and_appends_absent_keys() {
        let mut doc = EnvFile::parse("A=1\nB=2").unwrap();
        doc.set("A", "has # hash").unwrap();
        doc.set("C", "3").unwrap();
        assert_eq!(doc.render(), "A='has # hash'\nB=2\nC=3\n");
        let mut doc = EnvFile::parse("ONLY\n").unwrap();
        doc.set("ONLY", "v").unwrap();
        assert_eq!(doc.render(), "ONLY=v\n");
        let mut doc = EnvFile::parse("").unwrap();
        doc.set("NEW", "it's").unwrap();
        assert_eq!(doc.render(), "NEW=\"it's\"\n");
        assert_eq!(doc.raw_value("NEW").as_deref(), Some("it's"));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = EnvFile::parse("A=1\nFOO BAR=1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("cannot contain a space"), "{e}");
        let e = EnvFile::parse("A=1\n\nB=\"open\nC=2\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("never closed"), "{e}");
        let e = EnvFile::parse("A&B=s3cret\n").unwrap_err();
        assert!(e.message.contains("unexpected character '&'"), "{e}");
        assert!(
            !e.message.contains("s3cret"),
            "an error must not show the value: {e}"
        );
        let e = EnvFile::parse("=1\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = EnvFile::parse("A=${B:?needed}\n")
            .unwrap()
            .resolve(&no_env)
            .unwrap_err();
        assert!(
            e.to_string().contains("line 1") && e.to_string().contains("needed"),
            "{e}"
        );
    }

    #[test]
    fn yaml_style_and_export() {
        let doc = EnvFile::parse("A: 1\nexport B=2\n  C=3\n").unwrap();
        let v = doc.resolve(&no_env).unwrap();
        assert_eq!(
            (v["A"].as_str(), v["B"].as_str(), v["C"].as_str()),
            ("1", "2", "3")
        );
    }
}
