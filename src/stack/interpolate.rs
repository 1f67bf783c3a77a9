//! Compose variable interpolation, as Docker Compose v2 does it (compose-go's `template`):
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
//! `${VAR:+alt}`, `${VAR+alt}`, nesting inside defaults, and `$$` for a literal `$`.
//! `tests/compose_oracle.rs` holds this against the real `docker compose config`.

/// One variable reference found in a string, for detection (e.g. which variable sets an image tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub name: String,
    /// The raw text after `:-` or `-`, when there is one.
    pub default: Option<String>,
    /// Byte range of the whole `${...}` or `$NAME` in the input.
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error("required variable {name} is missing a value{}", message_suffix(.message))]
    Required { name: String, message: String },
    // The text itself is not shown: it may be a password from `.env`.
    #[error("invalid interpolation format: {why} (write $$ for a literal $)")]
    Invalid { why: String },
}

fn message_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// The operator of a braced expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Plain,
    DefaultIfUnsetOrEmpty, // :-
    DefaultIfUnset,        // -
    RequiredNonEmpty,      // :?
    Required,              // ?
    AltIfNonEmpty,         // :+
    AltIfSet,              // +
}

/// A parsed `${...}`: name, operator, the raw argument, and where the expression ends.
struct Braced<'a> {
    name: &'a str,
    op: Op,
    arg: &'a str,
    end: usize,
}

/// Parses `${...}` starting at `start` (which points at `$`). Nested `${...}` in the argument
/// are balanced, so `${A:-${B}}` ends at the outer brace.
fn parse_braced(input: &str, start: usize) -> Result<Braced<'_>, InterpolateError> {
    let bytes = input.as_bytes();
    let invalid = |why: &str| InterpolateError::Invalid {
        why: why.to_string(),
    };
    let name_start = start + 2;
    let mut i = name_start;
    if i >= bytes.len() || !is_name_start(bytes[i]) {
        return Err(invalid("a variable name must follow ${"));
    }
    while i < bytes.len() && is_name_char(bytes[i]) {
        i += 1;
    }
    let name = &input[name_start..i];
    if i >= bytes.len() {
        return Err(invalid("missing closing }"));
    }
    let (op, arg_start) = match (bytes[i], bytes.get(i + 1)) {
        (b'}', _) => {
            return Ok(Braced {
                name,
                op: Op::Plain,
                arg: "",
                end: i + 1,
            });
        }
        (b':', Some(b'-')) => (Op::DefaultIfUnsetOrEmpty, i + 2),
        (b':', Some(b'?')) => (Op::RequiredNonEmpty, i + 2),
        (b':', Some(b'+')) => (Op::AltIfNonEmpty, i + 2),
        (b'-', _) => (Op::DefaultIfUnset, i + 1),
        (b'?', _) => (Op::Required, i + 1),
        (b'+', _) => (Op::AltIfSet, i + 1),
        _ => return Err(invalid("unexpected character after the variable name")),
    };
    // Find the matching close brace, skipping nested ${...} and $$.
    let mut depth = 0usize;
    let mut j = arg_start;
    while j < bytes.len() {
        match bytes[j] {
            b'$' if bytes.get(j + 1) == Some(&b'$') => j += 2,
            b'$' if bytes.get(j + 1) == Some(&b'{') => {
                depth += 1;
                j += 2;
            }
            b'}' if depth == 0 => {
                return Ok(Braced {
                    name,
                    op,
                    arg: &input[arg_start..j],
                    end: j + 1,
                });
            }
            b'}' => {
                depth -= 1;
                j += 1;
            }
            _ => j += 1,
        }
    }
    Err(invalid("missing closing }"))
}

/// Substitutes variables in `input`. `lookup` returns `None` for an unset variable and
/// `Some("")` for one set to the empty string (the `:` operators treat both alike).
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut literal_start = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&input[literal_start..i]);
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let braced = parse_braced(input, i)?;
                out.push_str(&evaluate(&braced, lookup)?);
                i = braced.end;
            }
            Some(&c) if is_name_start(c) => {
                let mut j = i + 1;
                while j < bytes.len() && is_name_char(bytes[j]) {
                    j += 1;
                }
                out.push_str(&lookup(&input[i + 1..j]).unwrap_or_default());
                i = j;
            }
            // `$5`, `$ `, a trailing `$`: Compose keeps the dollar as it is.
            _ => {
                out.push('$');
                i += 1;
            }
        }
        literal_start = i;
    }
    out.push_str(&input[literal_start..]);
    Ok(out)
}

fn evaluate(
    b: &Braced<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let value = lookup(b.name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let arg = || interpolate(b.arg, lookup);
    Ok(match b.op {
        Op::Plain => value.unwrap_or_default(),
        Op::DefaultIfUnsetOrEmpty if non_empty => value.unwrap_or_default(),
        Op::DefaultIfUnsetOrEmpty => arg()?,
        Op::DefaultIfUnset if set => value.unwrap_or_default(),
        Op::DefaultIfUnset => arg()?,
        Op::RequiredNonEmpty | Op::Required => {
            let ok = if b.op == Op::Required { set } else { non_empty };
            if !ok {
                return Err(InterpolateError::Required {
                    name: b.name.to_string(),
                    message: arg()?,
                });
            }
            value.unwrap_or_default()
        }
        Op::AltIfNonEmpty if non_empty => arg()?,
        Op::AltIfSet if set => arg()?,
        Op::AltIfNonEmpty | Op::AltIfSet => String::new(),
    })
}

/// The top-level variable references of a string, in order (`$$` is not a reference). Strings
/// that are not valid templates yield the references before the error.
pub fn references(input: &str) -> Vec<VarRef> {
    let bytes = input.as_bytes();
    let mut refs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => match parse_braced(input, i) {
                Ok(b) => {
                    let default = matches!(b.op, Op::DefaultIfUnset | Op::DefaultIfUnsetOrEmpty)
                        .then(|| b.arg.to_string());
                    refs.push(VarRef {
                        name: b.name.to_string(),
                        default,
                        start: i,
                        end: b.end,
                    });
                    i = b.end;
                }
                Err(_) => break,
            },
            Some(&c) if is_name_start(c) => {
                let mut j = i + 1;
                while j < bytes.len() && is_name_char(bytes[j]) {
                    j += 1;
                }
                refs.push(VarRef {
                    name: input[i + 1..j].to_string(),
                    default: None,
                    start: i,
                    end: j,
                });
                i = j;
            }
            _ => i += 1,
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn run(input: &str, pairs: &'static [(&'static str, &'static str)]) -> String {
        interpolate(input, &env(pairs)).unwrap()
    }

    #[test]
    fn plain_and_braced_references() {
        assert_eq!(run("a $X b ${X} c", &[("X", "1")]), "a 1 b 1 c");
        assert_eq!(run("$X-y", &[]), "-y");
        assert_eq!(run("${UNSET}", &[]), "");
        assert_eq!(run("$X_Y.z", &[("X_Y", "v")]), "v.z");
    }

    #[test]
    fn defaults_distinguish_unset_from_empty() {
        assert_eq!(run("${X:-d}", &[("X", "")]), "d");
        assert_eq!(run("${X-d}", &[("X", "")]), "");
        assert_eq!(run("${X-d}", &[]), "d");
        assert_eq!(run("${X:-d}", &[("X", "v")]), "v");
        assert_eq!(run("${X:-}", &[]), "");
    }

    #[test]
    fn alternatives() {
        assert_eq!(run("a${X:+alt}b", &[("X", "")]), "ab");
        assert_eq!(run("a${X+alt}b", &[("X", "")]), "aaltb");
        assert_eq!(run("a${X:+alt}b", &[("X", "v")]), "aaltb");
        assert_eq!(run("a${X+alt}b", &[]), "ab");
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        let err = interpolate("${X:?set X in .env}", &env(&[("X", "")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "required variable X is missing a value: set X in .env"
        );
        assert!(interpolate("${X?}", &env(&[("X", "")])).is_ok());
        let err = interpolate("${X?}", &env(&[])).unwrap_err();
        assert_eq!(err.to_string(), "required variable X is missing a value");
    }

    #[test]
    fn nesting_and_escapes() {
        assert_eq!(run("${X:-${Y:-z}}", &[]), "z");
        assert_eq!(run("${X:-${Y:-z}}", &[("Y", "y")]), "y");
        assert_eq!(run("${X:-a}b}", &[]), "ab}");
        assert_eq!(
            run("$$X $${X} cost $5 end$", &[("X", "1")]),
            "$X ${X} cost $5 end$"
        );
        assert_eq!(run("${X:-$$}", &[]), "$");
    }

    #[test]
    fn invalid_templates_are_errors() {
        for bad in ["${X", "${}", "${X Y}", "${X-a", "${X:=a}", "${1}"] {
            assert!(
                matches!(
                    interpolate(bad, &env(&[])),
                    Err(InterpolateError::Invalid { .. })
                ),
                "{bad} should be invalid"
            );
        }
    }

    #[test]
    fn references_with_defaults_and_positions() {
        let s = "127.0.0.1:5000/app:${APP_VERSION:-latest}";
        let refs = references(s);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].name, "APP_VERSION");
        assert_eq!(refs[0].default.as_deref(), Some("latest"));
        assert_eq!(&s[refs[0].start..refs[0].end], "${APP_VERSION:-latest}");
        let refs = references("$$A $B ${C:?x} ${D-${E}}");
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["B", "C", "D"]);
        assert_eq!(refs[2].default.as_deref(), Some("${E}"));
    }
}
