//! Masking known secret values in text hoist repeats but did not write: an app's log lines (shown
//! in the terminal and kept in the journal as evidence), a tool's error output. The values are
//! learned from every `Secret` hoist holds and from the containers' environment (variables
//! named like secrets, and the password of a URL such as `DATABASE_URL`).
use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is replaced with (as `Secret`'s `Debug` shows it).
pub const MASK: &str = "***";

/// Shorter values are not masked: "1", "on" or "yes" would mangle every line, and a secret that
/// short protects nothing.
pub const MIN_LEN: usize = 4;

/// Every secret value learned so far in this process, longest first (so a secret that contains
/// another is masked whole).
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `value` as a secret to mask from now on.
pub fn learn(value: &str) {
    if value.chars().count() < MIN_LEN {
        return;
    }
    let Ok(mut known) = KNOWN.write() else {
        return;
    };
    if known.iter().any(|k| k == value) {
        return;
    }
    known.push(value.to_string());
    known.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
}

/// Remembers the secrets in one `KEY=value` entry of a container's environment.
pub fn learn_env_entry(entry: &str) {
    if let Some((key, value)) = entry.split_once('=') {
        for secret in secrets_in(key, value) {
            learn(&secret);
        }
    }
}

/// Remembers the secrets written into a command, in its words or inside a `sh -c` script:
/// the value after `--pass`/`--password`, `--password=…`, `PGPASSWORD=…` and other secret
/// names, and a URL's password.
pub fn learn_from_command(argv: &[String]) {
    let words: Vec<&str> = argv
        .iter()
        .flat_map(|w| w.split_whitespace())
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"' || c == ';'))
        .collect();
    const FLAGS: [&str; 5] = ["--pass", "--password", "--passwd", "--pwd", "--token"];
    for (i, word) in words.iter().enumerate() {
        if FLAGS.contains(word) {
            if let Some(next) = words.get(i + 1).filter(|n| !n.starts_with('$')) {
                learn(next);
            }
            continue;
        }
        if let Some((key, value)) = word.split_once('=') {
            let flag = FLAGS.contains(&key);
            let name = key.trim_start_matches('-');
            if (flag || is_secret_name(name)) && !value.starts_with('$') {
                learn(value);
            }
            continue;
        }
        if word.contains("://") {
            for secret in secrets_in("URL", word) {
                learn(&secret);
            }
        }
    }
}

/// A command (argv) as people are shown it: one shell line, each word quoted unless plainly
/// safe, secrets masked (a password given on a command line is still a password).
pub fn command_line(argv: &[String]) -> String {
    let line = argv
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    mask(&line).into_owned()
}

/// `text` with every secret learned so far replaced by `***`.
pub fn mask(text: &str) -> Cow<'_, str> {
    match KNOWN.read() {
        Ok(known) => match mask_with(text, &known) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(s) => Cow::Owned(s),
        },
        // A poisoned lock means a panic elsewhere; showing nothing is safer than a secret.
        Err(_) => Cow::Owned(MASK.to_string()),
    }
}

/// A secret this short is masked only where it stands alone: inside a longer word, a name or a
/// path (`hoist-test-1` for the password `test`) it is more likely a coincidence than a leak,
/// and masking it there garbles what people need to read.
pub const STANDALONE_BELOW: usize = 12;

/// `text` with each of `secrets` (longest first) replaced by `***`.
pub fn mask_with<'a>(text: &'a str, secrets: &[String]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for s in secrets {
        let n = s.chars().count();
        if n < MIN_LEN || !out.contains(s.as_str()) {
            continue;
        }
        if n >= STANDALONE_BELOW {
            out = Cow::Owned(out.replace(s.as_str(), MASK));
        } else if let Some(masked) = mask_standalone(&out, s) {
            out = Cow::Owned(masked);
        }
    }
    out
}

/// `text` with each standalone occurrence of `secret` masked (not next to a letter, digit,
/// `-`, `_`, `.` or `/`), or None when there is none.
fn mask_standalone(text: &str, secret: &str) -> Option<String> {
    let joins = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "-_./".contains(c));
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut changed = false;
    for (at, _) in text.match_indices(secret) {
        if at < rest {
            continue;
        }
        // `-pSECRET` (a MySQL client's password option) ends at the option's letter.
        let option = text[..at].ends_with("-p");
        let before = text[..at].chars().next_back().filter(|_| !option);
        let mut tail = text[at + secret.len()..].chars();
        let after = tail.next();
        // A full stop ends a sentence unless a name goes on after it (`test.db`).
        let after = match after {
            Some('.') if !tail.next().is_some_and(char::is_alphanumeric) => None,
            other => other,
        };
        if joins(before) || joins(after) {
            continue;
        }
        out.push_str(&text[rest..at]);
        out.push_str(MASK);
        rest = at + secret.len();
        changed = true;
    }
    changed.then(|| {
        out.push_str(&text[rest..]);
        out
    })
}

/// Whether an environment variable's name says it holds a secret: a word (between `_`) such as
/// PASSWORD, SECRET, TOKEN, KEY; not where a secret is kept (FILE, PATH) nor a setting about
/// one (TOKEN_TTL, KEY_LENGTH), whose value would then be masked in every line.
pub fn is_secret_name(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    let words: Vec<&str> = upper.split(['_', '-', '.']).collect();
    let about_a_secret = |w: &str| {
        matches!(
            w,
            "FILE"
                | "PATH"
                | "DIR"
                | "TTL"
                | "EXPIRY"
                | "EXPIRES"
                | "LIFETIME"
                | "LENGTH"
                | "SIZE"
                | "TIMEOUT"
                | "PREFIX"
                | "ENABLED"
                | "DISABLED"
                | "ALGORITHM"
                | "TYPE"
                | "HEADER"
                | "NAME"
        )
    };
    if words.iter().any(|w| about_a_secret(w)) || upper == "PWD" || upper == "OLDPWD" {
        return false;
    }
    words.iter().any(|w| {
        matches!(
            *w,
            "PASSWORD"
                | "PASSWD"
                | "PASS"
                | "PWD"
                | "SECRET"
                | "TOKEN"
                | "KEY"
                | "APIKEY"
                | "PRIVATE"
                | "CREDENTIAL"
                | "CREDENTIALS"
                | "SALT"
                | "DSN"
        ) || ["PASSWORD", "SECRET", "TOKEN", "APIKEY"]
            .iter()
            .any(|s| w.ends_with(s))
    })
}

/// The secrets in one environment variable: its whole value when the name says it is secret,
/// and the password of every URL in it (`postgresql://user:PASSWORD@host/db`).
pub fn secrets_in(key: &str, value: &str) -> Vec<String> {
    let mut out = Vec::new();
    // A switch is not a secret, and masking "true" would mangle every line.
    let switch = [
        "true", "false", "yes", "no", "none", "null", "enabled", "disabled",
    ]
    .iter()
    .any(|w| value.trim().eq_ignore_ascii_case(w));
    if is_secret_name(key) && !switch && value.chars().count() >= MIN_LEN {
        out.push(value.to_string());
    }
    for password in url_passwords(value) {
        if password.chars().count() >= MIN_LEN && !out.contains(&password) {
            out.push(password);
        }
    }
    out
}

/// The passwords of the URLs in `text`: what lies between `scheme://user:` and the last `@`
/// before the host, as written (and percent-decoded, when that differs).
fn url_passwords(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .unwrap_or(after.len());
        let authority = &after[..end];
        if let Some((userinfo, _host)) = authority.rsplit_once('@')
            && let Some((_user, password)) = userinfo.split_once(':')
            && !password.is_empty()
        {
            out.push(password.to_string());
            let decoded = percent_decode(password);
            if decoded != password {
                out.push(decoded);
            }
        }
        rest = &after[end..];
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_command_is_one_shell_line_with_its_secrets_masked() {
        learn("cmd-line-secret-5521");
        let argv = [
            "sh",
            "-c",
            "PGPASSWORD=cmd-line-secret-5521 psql -U app",
            "it's",
        ]
        .map(String::from);
        assert_eq!(
            command_line(&argv),
            "sh -c 'PGPASSWORD=*** psql -U app' 'it'\\''s'"
        );
    }

    use super::*;

    #[test]
    fn names_that_hold_secrets() {
        for key in [
            "POSTGRES_PASSWORD",
            "MYSQL_ROOT_PASSWORD",
            "SECRET_KEY",
            "SPECIVO_SECRET_KEY",
            "API_TOKEN",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "MYSQL_PWD",
            "SMTP_PASS",
            "DBPASSWORD",
            "SENTRY_DSN",
            "STRIPE_APIKEY",
            "jwt_secret",
        ] {
            assert!(is_secret_name(key), "{key}");
        }
        for key in [
            "POSTGRES_USER",
            "POSTGRES_DB",
            "PWD",
            "PATH",
            "POSTGRES_PASSWORD_FILE",
            "SSL_KEY_PATH",
            "SPECIVO_VERSION",
            "REDIS_URL",
            "MONKEY",
            "HOSTNAME",
            "JWT_TOKEN_TTL",
            "SECRET_KEY_LENGTH",
        ] {
            assert!(!is_secret_name(key), "{key}");
        }
    }

    #[test]
    fn url_passwords_are_secrets_whatever_the_name() {
        assert_eq!(
            secrets_in("DATABASE_URL", "postgresql://app:s3cret-pw@db:5432/app"),
            ["s3cret-pw"]
        );
        assert_eq!(
            secrets_in(
                "BROKER",
                "amqp://u:p%40ss%3Aword@mq/ and redis://:r3dis-pw@cache:6379/0"
            ),
            ["p%40ss%3Aword", "p@ss:word", "r3dis-pw"]
        );
        assert!(secrets_in("REDIS_URL", "redis://redis:6379/0").is_empty());
        assert!(secrets_in("HOME_PAGE", "https://user@example.com/").is_empty());
        assert_eq!(secrets_in("API_TOKEN", "tok-123"), ["tok-123"]);
        // Too short to be worth masking (and masking it would mangle every line).
        assert!(secrets_in("DEBUG_PASS", "on").is_empty());
        assert!(secrets_in("REQUIRE_TOKEN", "false").is_empty());
    }

    #[test]
    fn a_short_secret_is_masked_only_where_it_stands_alone() {
        let secrets = vec!["test".to_string(), "a-much-longer-secret".to_string()];
        assert_eq!(
            mask_with(
                "project hoist-test-1 in /tmp/test/x: password test rejected; key=test.",
                &secrets
            ),
            "project hoist-test-1 in /tmp/test/x: password *** rejected; key=***."
        );
        assert_eq!(
            mask_with("postgres://u:test@db/app", &secrets),
            "postgres://u:***@db/app"
        );
        assert_eq!(mask_with("mysql -ptest app", &secrets), "mysql -p*** app");
        // A long secret is masked wherever it appears, even inside a word.
        assert_eq!(mask_with("xa-much-longer-secretx", &secrets), "x***x");
    }

    #[test]
    fn masking_replaces_every_occurrence_longest_first() {
        let secrets = vec!["hunter2-long".to_string(), "hunter2".to_string()];
        assert_eq!(
            mask_with(
                "db=postgresql://u:hunter2@db pw=hunter2 other=hunter2-long",
                &secrets
            ),
            "db=postgresql://u:***@db pw=*** other=***"
        );
        let clean = "INFO: Application startup complete.";
        assert!(matches!(mask_with(clean, &secrets), Cow::Borrowed(_)));
        assert_eq!(mask_with("x=abc", &["abc".to_string()]), "x=abc");
    }

    #[test]
    fn learned_values_are_masked_process_wide() {
        learn_env_entry("UNIT_TEST_SECRET_KEY=unit-test-sk-8d1f2a");
        learn_env_entry("UNIT_TEST_URL=postgres://u:unit-test-pw-4c9e@db/x");
        learn_env_entry("UNIT_TEST_USER=unit-test-user");
        learn("ab");
        assert_eq!(
            mask("key unit-test-sk-8d1f2a, pw unit-test-pw-4c9e, user unit-test-user, ab"),
            "key ***, pw ***, user unit-test-user, ab"
        );
    }

    #[test]
    fn a_password_written_into_a_command_is_learned_as_a_secret() {
        let argv: Vec<String> = [
            "sh",
            "-c",
            "echo 'INFO FOR DB' | surreal sql --user root --pass inlineSecret9913 --ns a --db b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        learn_from_command(&argv);
        let argv2: Vec<String> = ["mysqldump", "--password=eqSecret44871", "app"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        learn_from_command(&argv2);
        let shown = command_line(&argv);
        assert!(!shown.contains("inlineSecret9913"), "{shown}");
        assert!(shown.contains("--pass ***"), "{shown}");
        assert_eq!(command_line(&argv2), "mysqldump --password=*** app");
        // A variable's name is not a secret; `--ns a` is not either.
        assert!(shown.contains("--ns a --db b"), "{shown}");
    }
}
