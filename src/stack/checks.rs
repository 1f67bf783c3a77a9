//! The checks an app is held to beyond a plain HTTP answer, as `x-hoist: checks:` writes them:
//! a WebSocket exchange, a command run in a service, rules on the app's Prometheus metrics.
//! (HTTP checks are `Smoke`s, in `detect.rs`.) Each is run before the upgrade as a baseline and
//! after every restart (`steps::checks`); what they say is in `words()`.
use crate::units::number;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppCheck {
    Websocket(WsCheck),
    Exec(ExecCheck),
    Metrics(MetricsCheck),
}

/// Connect to `url`, send `send` (when given), and expect a text message matching `expect`
/// within `timeout_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WsCheck {
    pub url: String,
    pub send: Option<String>,
    /// A regular expression a message must match.
    pub expect: String,
    pub timeout_ms: u64,
}

/// Run `command` (an argv, never a shell string) in the first running container of `service`;
/// it must exit with `expect_exit`, and print a line matching `expect_output` when given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCheck {
    pub service: String,
    pub command: Vec<String>,
    pub expect_exit: i64,
    pub expect_output: Option<String>,
    pub timeout_ms: u64,
}

/// Scrape `url` (Prometheus text) at the start and the end of a window of `window_ms`, and
/// hold each rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsCheck {
    pub url: String,
    pub rules: Vec<MetricRule>,
    pub window_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetricRule {
    /// The series' sum may rise by at most `max_increase` over the window (a counter reset,
    /// when the app restarts, counts what it counted since).
    Counter { series: Selector, max_increase: f64 },
    /// The series' sum stays within the bounds at every scrape.
    Gauge {
        series: Selector,
        min: Option<f64>,
        max: Option<f64>,
    },
}

/// A metric name and label values every matching series must have: `name{label="value"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl Selector {
    /// `name`, or `name{a="b",c="d"}`; None when it is neither.
    pub fn parse(text: &str) -> Option<Selector> {
        let text = text.trim();
        let (name, rest) = match text.find('{') {
            Some(i) => (&text[..i], Some(&text[i..])),
            None => (text, None),
        };
        let name_ok = name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        });
        if name.is_empty() || !name_ok {
            return None;
        }
        let mut labels = Vec::new();
        if let Some(rest) = rest {
            let inner = rest.strip_prefix('{')?.strip_suffix('}')?;
            for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=')?;
                let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
                let k = k.trim();
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return None;
                }
                labels.push((k.to_string(), v.to_string()));
            }
        }
        Some(Selector {
            name: name.to_string(),
            labels,
        })
    }

    /// Whether a series of `name` with `labels` is one this selects.
    pub fn matches(&self, name: &str, labels: &[(String, String)]) -> bool {
        name == self.name && self.labels.iter().all(|want| labels.contains(want))
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let pairs: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            write!(f, "{{{}}}", pairs.join(","))?;
        }
        Ok(())
    }
}

/// "5 s", "1.5 s", "500 ms".
pub fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

impl MetricRule {
    pub fn series(&self) -> &Selector {
        match self {
            MetricRule::Counter { series, .. } | MetricRule::Gauge { series, .. } => series,
        }
    }

    /// "rooms_close_total{code="1011"} rises by at most 5", "rooms_stored between 1 and 100".
    pub fn words(&self) -> String {
        match self {
            MetricRule::Counter {
                series,
                max_increase,
            } => format!("{series} rises by at most {}", number(*max_increase)),
            MetricRule::Gauge { series, min, max } => match (min, max) {
                (Some(a), Some(b)) => format!("{series} between {} and {}", number(*a), number(*b)),
                (Some(a), None) => format!("{series} at least {}", number(*a)),
                (None, Some(b)) => format!("{series} at most {}", number(*b)),
                (None, None) => format!("{series} present"),
            },
        }
    }
}

impl AppCheck {
    /// What the check is, short, for a checklist line: "WebSocket ws://…/ws/lobby".
    pub fn what(&self) -> String {
        match self {
            AppCheck::Websocket(w) => format!("WebSocket {}", w.url),
            AppCheck::Exec(e) => format!("`{}` in {}", e.command.join(" "), e.service),
            AppCheck::Metrics(m) => format!("metrics {}", m.url),
        }
    }

    /// The whole check for people: what is done and what is expected.
    pub fn words(&self) -> String {
        match self {
            AppCheck::Websocket(w) => format!(
                "WebSocket {}: {}a message matching /{}/ within {}",
                w.url,
                w.send
                    .as_ref()
                    .map(|s| format!("send {s:?}, expect "))
                    .unwrap_or_else(|| "expect ".into()),
                w.expect,
                seconds(w.timeout_ms)
            ),
            AppCheck::Exec(e) => format!(
                "`{}` in {} exits {}{}",
                e.command.join(" "),
                e.service,
                e.expect_exit,
                e.expect_output
                    .as_ref()
                    .map(|p| format!(", printing a line matching /{p}/"))
                    .unwrap_or_default()
            ),
            AppCheck::Metrics(m) => format!(
                "metrics {} over {}: {}",
                m.url,
                seconds(m.window_ms),
                m.rules
                    .iter()
                    .map(MetricRule::words)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let s = Selector::parse(r#"rooms_close_total{code="1011", kind="ws"}"#).unwrap();
        assert_eq!(s.name, "rooms_close_total");
        assert_eq!(
            s.labels,
            [("code".into(), "1011".into()), ("kind".into(), "ws".into())]
        );
        assert_eq!(s.to_string(), r#"rooms_close_total{code="1011",kind="ws"}"#);
        assert!(s.matches(
            "rooms_close_total",
            &[
                ("code".into(), "1011".into()),
                ("kind".into(), "ws".into()),
                ("x".into(), "y".into())
            ]
        ));
        assert!(!s.matches("rooms_close_total", &[("code".into(), "1011".into())]));
        assert_eq!(Selector::parse("up").unwrap().to_string(), "up");
        for bad in ["", "1up", "a{b=c}", "a{b=\"c\"", "a b", "a{=\"c\"}"] {
            assert!(Selector::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn words() {
        let ws = AppCheck::Websocket(WsCheck {
            url: "ws://127.0.0.1:8080/ws/lobby".into(),
            send: Some("hello".into()),
            expect: "welcome".into(),
            timeout_ms: 5000,
        });
        assert_eq!(
            ws.words(),
            r#"WebSocket ws://127.0.0.1:8080/ws/lobby: send "hello", expect a message matching /welcome/ within 5 s"#
        );
        let m = AppCheck::Metrics(MetricsCheck {
            url: "http://127.0.0.1:8080/metrics".into(),
            rules: vec![
                MetricRule::Counter {
                    series: Selector::parse(r#"rooms_close_total{code="1011"}"#).unwrap(),
                    max_increase: 5.0,
                },
                MetricRule::Gauge {
                    series: Selector::parse("rooms_stored").unwrap(),
                    min: Some(1.0),
                    max: None,
                },
            ],
            window_ms: 10_000,
        });
        assert_eq!(
            m.words(),
            r#"metrics http://127.0.0.1:8080/metrics over 10 s: rooms_close_total{code="1011"} rises by at most 5; rooms_stored at least 1"#
        );
        let e = AppCheck::Exec(ExecCheck {
            service: "rooms".into(),
            command: vec!["roomctl".into(), "verify-replay".into(), "--all".into()],
            expect_exit: 0,
            expect_output: Some("match".into()),
            timeout_ms: 60_000,
        });
        assert_eq!(
            e.words(),
            "`roomctl verify-replay --all` in rooms exits 0, printing a line matching /match/"
        );
    }
}
