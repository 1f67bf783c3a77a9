//! Reading `smoke:` and `checks:` settings: an HTTP check (a `SmokeCheck`), a WebSocket
//! exchange, a command in a service, metrics rules (`AppCheck`s). A bad entry names its key and
//! what was expected, as every setting does.
use std::time::Duration;

use serde_json::{Map, Value};

use super::checks::{AppCheck, ExecCheck, MetricRule, MetricsCheck, Selector, WsCheck};
use super::settings::{SettingError, SmokeCheck, StatusExpectation, found, parse_status};

/// Where the settings being read come from, for their errors.
pub(super) struct Say<'a> {
    pub file: String,
    pub prefix: &'a str,
}

impl Say<'_> {
    pub fn bad(&self, key: &str, expected: &str, v: &Value) -> SettingError {
        SettingError {
            file: self.file.clone(),
            key: format!("{}{key}", self.prefix),
            expected: expected.to_string(),
            found: found(v),
        }
    }

    fn unknown(&self, key: &str, known: &[&str], name: &str) -> SettingError {
        self.bad(
            key,
            &format!("one of the known settings ({})", known.join(", ")),
            &Value::String(name.to_string()),
        )
    }

    fn string(&self, key: &str, v: &Value) -> Result<String, SettingError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.bad(key, "a string", v))
    }

    fn map<'v>(&self, key: &str, v: &'v Value) -> Result<&'v Map<String, Value>, SettingError> {
        v.as_object().ok_or_else(|| self.bad(key, "a mapping", v))
    }

    fn duration(&self, key: &str, v: &Value) -> Result<Duration, SettingError> {
        super::settings::parse_duration(v)
            .ok_or_else(|| self.bad(key, "a duration like \"90s\" or \"2m\" (at most a week)", v))
    }

    fn regex(&self, key: &str, v: &Value) -> Result<String, SettingError> {
        let s = self.string(key, v)?;
        regex::Regex::new(&s).map_err(|e| {
            let why = e.to_string();
            let why = why.lines().last().unwrap_or(&why).trim().to_string();
            self.bad(key, &format!("a valid regular expression ({why})"), v)
        })?;
        Ok(s)
    }

    fn number(&self, key: &str, v: &Value) -> Result<f64, SettingError> {
        v.as_f64()
            .filter(|n| n.is_finite())
            .ok_or_else(|| self.bad(key, "a number", v))
    }

    fn url(&self, key: &str, v: &Value, schemes: &[&str]) -> Result<String, SettingError> {
        let s = self.string(key, v)?;
        let ok = schemes
            .iter()
            .any(|p| s.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
        if !ok {
            let list: Vec<String> = schemes.iter().map(|s| format!("{s}…")).collect();
            return Err(self.bad(key, &format!("a URL ({})", list.join(" or ")), v));
        }
        Ok(s)
    }
}

/// One HTTP check: `url_key` holds its URL (`url` in `smoke:`, `http` in `checks:`).
pub(super) fn http(
    at: &str,
    m: &Map<String, Value>,
    url_key: &str,
    say: &Say<'_>,
) -> Result<SmokeCheck, SettingError> {
    let mut check = SmokeCheck {
        url: String::new(),
        method: "GET".into(),
        expect_status: StatusExpectation::Below(400),
        expect_body: None,
        allow_self_signed: false,
        headers: Vec::new(),
    };
    let mut url = None;
    let known = [
        url_key,
        "method",
        "expect_status",
        "expect_body",
        "headers",
        "allow_self_signed",
    ];
    for (k, v) in m {
        let full = format!("{at}.{k}");
        match k.as_str() {
            k if k == url_key => url = Some(say.url(&full, v, &["http://", "https://"])?),
            "method" => {
                let s = say.string(&full, v)?.to_uppercase();
                if !["GET", "HEAD", "POST", "PUT", "OPTIONS"].contains(&s.as_str()) {
                    return Err(say.bad(&full, "GET, HEAD, POST, PUT or OPTIONS", v));
                }
                check.method = s;
            }
            "expect_status" => {
                check.expect_status = parse_status(v).ok_or_else(|| {
                    say.bad(&full, "a status such as 200, \"<400\" or \"200-299\"", v)
                })?
            }
            "expect_body" => check.expect_body = Some(say.string(&full, v)?),
            "allow_self_signed" => {
                check.allow_self_signed = v
                    .as_bool()
                    .ok_or_else(|| say.bad(&full, "true or false", v))?
            }
            "headers" => {
                for (name, value) in say.map(&full, v)? {
                    let key = format!("{full}.{name}");
                    let valid = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                    if !valid {
                        return Err(say.bad(&key, "a header name (letters, digits, - and _)", v));
                    }
                    let value = say.string(&key, value)?;
                    if value.contains(['\r', '\n']) {
                        return Err(say.bad(&key, "a header value on one line", v));
                    }
                    check.headers.push((name.clone(), value));
                }
            }
            other => return Err(say.unknown(&full, &known, other)),
        }
    }
    check.url =
        url.ok_or_else(|| say.bad(&format!("{at}.{url_key}"), "a URL to check", &Value::Null))?;
    Ok(check)
}

/// `checks:`: HTTP checks (kept with the smoke checks) and the others.
pub(super) fn checks(
    key: &str,
    v: &Value,
    say: &Say<'_>,
) -> Result<(Vec<SmokeCheck>, Vec<AppCheck>), SettingError> {
    let Value::Array(items) = v else {
        return Err(say.bad(
            key,
            "a list of checks, each with one of http:, websocket:, exec: or metrics:",
            v,
        ));
    };
    let mut http_checks = Vec::new();
    let mut app = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{key}[{i}]");
        let m = say.map(&at, item)?;
        let kinds: Vec<&str> = ["http", "websocket", "exec", "metrics"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        match kinds.as_slice() {
            ["http"] => http_checks.push(http(&at, m, "http", say)?),
            ["websocket"] => app.push(AppCheck::Websocket(websocket(&at, m, say)?)),
            ["exec"] => app.push(AppCheck::Exec(exec(&at, m, say)?)),
            ["metrics"] => app.push(AppCheck::Metrics(metrics(&at, m, say)?)),
            _ => {
                return Err(say.bad(
                    &at,
                    "a check with exactly one of http:, websocket:, exec: or metrics:",
                    item,
                ));
            }
        }
    }
    Ok((http_checks, app))
}

fn websocket(at: &str, m: &Map<String, Value>, say: &Say<'_>) -> Result<WsCheck, SettingError> {
    let mut check = WsCheck {
        url: String::new(),
        send: None,
        expect: String::new(),
        timeout_ms: 5_000,
    };
    let mut expect = None;
    for (k, v) in m {
        let full = format!("{at}.{k}");
        match k.as_str() {
            "websocket" => {
                if say.string(&full, v)?.starts_with("wss://") {
                    return Err(say.bad(
                        &full,
                        "a ws:// URL (wss:// is not checked yet: give the app's own plain port, as it is published on this host)",
                        v,
                    ));
                }
                check.url = say.url(&full, v, &["ws://"])?;
            }
            "send" => check.send = Some(say.string(&full, v)?),
            "expect" => expect = Some(say.regex(&full, v)?),
            "timeout" => check.timeout_ms = millis(say.duration(&full, v)?),
            other => {
                return Err(say.unknown(&full, &["websocket", "send", "expect", "timeout"], other));
            }
        }
    }
    check.expect = expect.ok_or_else(|| {
        say.bad(
            &format!("{at}.expect"),
            "the pattern a reply must match",
            &Value::Null,
        )
    })?;
    Ok(check)
}

fn exec(at: &str, m: &Map<String, Value>, say: &Say<'_>) -> Result<ExecCheck, SettingError> {
    let mut check = ExecCheck {
        service: String::new(),
        command: Vec::new(),
        expect_exit: 0,
        expect_output: None,
        timeout_ms: 60_000,
    };
    let mut service = None;
    for (k, v) in m {
        let full = format!("{at}.{k}");
        match k.as_str() {
            "exec" => {
                let argv = "a command as a list, such as [roomctl, verify-replay, --all] (it is run as written, without a shell)";
                let Value::Array(items) = v else {
                    return Err(say.bad(&full, argv, v));
                };
                check.command = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| say.string(&format!("{full}[{i}]"), item))
                    .collect::<Result<_, _>>()?;
                if check.command.first().is_none_or(|c| c.is_empty()) {
                    return Err(say.bad(&full, argv, v));
                }
            }
            "service" => service = Some(say.string(&full, v)?),
            "expect_exit" => {
                check.expect_exit = v
                    .as_i64()
                    .filter(|n| (0..=255).contains(n))
                    .ok_or_else(|| say.bad(&full, "an exit code from 0 to 255", v))?
            }
            "expect_output" => check.expect_output = Some(say.regex(&full, v)?),
            "timeout" => check.timeout_ms = millis(say.duration(&full, v)?),
            other => {
                return Err(say.unknown(
                    &full,
                    &["exec", "service", "expect_exit", "expect_output", "timeout"],
                    other,
                ));
            }
        }
    }
    check.service = service.ok_or_else(|| {
        say.bad(
            &format!("{at}.service"),
            "the service to run the command in",
            &Value::Null,
        )
    })?;
    Ok(check)
}

fn metrics(at: &str, m: &Map<String, Value>, say: &Say<'_>) -> Result<MetricsCheck, SettingError> {
    let mut check = MetricsCheck {
        url: String::new(),
        rules: Vec::new(),
        window_ms: 10_000,
    };
    for (k, v) in m {
        let full = format!("{at}.{k}");
        match k.as_str() {
            "metrics" => check.url = say.url(&full, v, &["http://", "https://"])?,
            "window" => {
                let d = say.duration(&full, v)?;
                if d < Duration::from_secs(1) {
                    return Err(say.bad(&full, "a window of at least 1s", v));
                }
                check.window_ms = millis(d);
            }
            "rules" => {
                let Value::Array(items) = v else {
                    return Err(say.bad(&full, "a list of rules, each a counter: or a gauge:", v));
                };
                for (i, item) in items.iter().enumerate() {
                    check.rules.push(rule(&format!("{full}[{i}]"), item, say)?);
                }
            }
            other => return Err(say.unknown(&full, &["metrics", "rules", "window"], other)),
        }
    }
    if check.rules.is_empty() {
        return Err(say.bad(
            &format!("{at}.rules"),
            "at least one rule (a counter: with max_increase:, or a gauge: with min: or max:)",
            m.get("rules").unwrap_or(&Value::Null),
        ));
    }
    Ok(check)
}

fn rule(at: &str, item: &Value, say: &Say<'_>) -> Result<MetricRule, SettingError> {
    let m = say.map(at, item)?;
    let selector = |key: &str| -> Result<Option<Selector>, SettingError> {
        let Some(v) = m.get(key) else {
            return Ok(None);
        };
        let full = format!("{at}.{key}");
        Selector::parse(&say.string(&full, v)?)
            .map(Some)
            .ok_or_else(|| {
                say.bad(
                    &full,
                    "a metric name, such as rooms_close_total{code=\"1011\"}",
                    v,
                )
            })
    };
    let known = ["counter", "max_increase", "gauge", "min", "max"];
    for k in m.keys() {
        if !known.contains(&k.as_str()) {
            return Err(say.unknown(&format!("{at}.{k}"), &known, k));
        }
    }
    let num = |key: &str| -> Result<Option<f64>, SettingError> {
        m.get(key)
            .map(|v| say.number(&format!("{at}.{key}"), v))
            .transpose()
    };
    match (selector("counter")?, selector("gauge")?) {
        (Some(series), None) => {
            if m.contains_key("min") || m.contains_key("max") {
                return Err(say.bad(
                    at,
                    "a counter: with max_increase: (min: and max: are for a gauge:)",
                    item,
                ));
            }
            let max_increase = num("max_increase")?.filter(|n| *n >= 0.0).ok_or_else(|| {
                say.bad(
                    &format!("{at}.max_increase"),
                    "how much the counter may rise over the window (0 or more)",
                    m.get("max_increase").unwrap_or(&Value::Null),
                )
            })?;
            Ok(MetricRule::Counter {
                series,
                max_increase,
            })
        }
        (None, Some(series)) => {
            if m.contains_key("max_increase") {
                return Err(say.bad(
                    at,
                    "a gauge: with min: or max: (max_increase: is for a counter:)",
                    item,
                ));
            }
            let (min, max) = (num("min")?, num("max")?);
            if min.is_none() && max.is_none() {
                return Err(say.bad(at, "a gauge: with min:, max: or both", item));
            }
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err(say.bad(&format!("{at}.max"), "a max not below min", &m["max"]));
            }
            Ok(MetricRule::Gauge { series, min, max })
        }
        _ => Err(say.bad(at, "a rule with either counter: or gauge:", item)),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn say() -> Say<'static> {
        Say {
            file: "compose.yaml".into(),
            prefix: "x-hoist.",
        }
    }

    #[test]
    fn every_kind_of_check() {
        let (http, app) = checks(
            "checks",
            &json!([
                {"http": "http://127.0.0.1:8080/health/ready", "expect_status": 200,
                 "headers": {"Authorization": "Bearer abc"}},
                {"websocket": "ws://127.0.0.1:8080/ws/lobby", "send": "hello", "expect": "\"welcome\"", "timeout": "3s"},
                {"exec": ["roomctl", "verify-replay", "--all"], "service": "rooms", "expect_output": "match"},
                {"metrics": "http://127.0.0.1:8080/metrics", "window": "20s", "rules": [
                    {"counter": "rooms_close_total{code=\"1011\"}", "max_increase": 5},
                    {"gauge": "rooms_stored", "min": 1}
                ]}
            ]),
            &say(),
        )
        .unwrap();
        assert_eq!(http.len(), 1);
        assert_eq!(
            http[0].headers,
            [("Authorization".into(), "Bearer abc".into())]
        );
        assert_eq!(http[0].expect_status, StatusExpectation::Exactly(200));
        assert_eq!(app.len(), 3);
        let AppCheck::Websocket(ws) = &app[0] else {
            panic!()
        };
        assert_eq!(ws.timeout_ms, 3000);
        let AppCheck::Exec(e) = &app[1] else { panic!() };
        assert_eq!((e.expect_exit, e.timeout_ms), (0, 60_000));
        let AppCheck::Metrics(m) = &app[2] else {
            panic!()
        };
        assert_eq!((m.window_ms, m.rules.len()), (20_000, 2));
    }

    #[test]
    fn bad_checks_name_their_key() {
        let err = |v: Value| checks("checks", &v, &say()).unwrap_err().to_string();
        assert_eq!(
            err(json!([{"websocket": "wss://x/ws", "expect": "a"}])),
            "compose.yaml: setting `x-hoist.checks[0].websocket`: expected a ws:// URL (wss:// is not checked yet: give the app's own plain port, as it is published on this host), found \"wss://x/ws\""
        );
        assert!(
            err(json!([{"exec": "roomctl verify", "service": "a"}])).contains("without a shell")
        );
        assert!(err(json!([{"exec": ["a"]}])).contains("`x-hoist.checks[0].service`"));
        assert!(
            err(json!([{"websocket": "ws://x/", "expect": "("}]))
                .contains("a valid regular expression")
        );
        assert!(err(json!([{"http": "http://x/", "exec": ["a"]}])).contains("exactly one of"));
        // A misspelt kind is named; an empty command is said as empty.
        assert!(
            err(json!([{"websockt": "ws://x/", "expect": "a"}]))
                .contains("found a mapping with keys websockt, expect"),
            "{}",
            err(json!([{"websockt": "ws://x/", "expect": "a"}]))
        );
        assert!(err(json!([{"exec": [], "service": "a"}])).contains("found an empty list"));
        assert!(err(json!([{"metrics": "http://x/m", "rules": []}])).contains("at least one rule"));
        assert!(
            err(json!([{"metrics": "http://x/m", "rules": [{"counter": "a"}]}]))
                .contains("`x-hoist.checks[0].rules[0].max_increase`")
        );
        assert!(
            err(
                json!([{"metrics": "http://x/m", "rules": [{"counter": "a", "max_increase": -1}]}])
            )
            .contains("(0 or more), found -1")
        );
        assert!(
            err(json!([{"metrics": "http://x/m", "rules": [{"gauge": "a", "min": 5, "max": 1}]}]))
                .contains("a max not below min")
        );
        assert!(
            err(json!([{"metrics": "http://x/m", "rules": [{"gauge": "a b", "min": 1}]}]))
                .contains("a metric name")
        );
        assert!(
            err(json!([{"http": "http://x/", "headers": {"X-A": "a\nb"}}])).contains("on one line")
        );
        assert!(
            err(json!([{"exec": ["a"], "service": "s", "expect_exit": 300}])).contains("0 to 255")
        );
        assert!(err(json!({"http": "x"})).contains("a list of checks"));
    }
}
