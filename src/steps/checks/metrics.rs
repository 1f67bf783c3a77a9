//! A metrics check: the app's Prometheus text scraped at the start and the end of a window,
//! each rule held (a counter's rise over the window, a gauge's bounds at every scrape).
use std::time::Duration;

use crate::stack::checks::{MetricRule, MetricsCheck, Selector, seconds};
use crate::units::number;

/// One sample line: its metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A scraped page: its samples, and the metric names it declares (`# TYPE`, `# HELP`), so a
/// counter not counted yet is told from a name that is not the app's at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub samples: Vec<Sample>,
    pub declared: std::collections::BTreeSet<String>,
}

/// The samples of Prometheus' text format, each line as written. (The prometheus-parse crate
/// regroups histogram and summary lines under their base name, so a rule on
/// `requests_count` would not find the series its author reads on the page.) A line that is
/// not a sample is skipped.
pub fn parse(text: &str) -> Page {
    let declared = text
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix('#')?.trim_start();
            let rest = rest
                .strip_prefix("TYPE ")
                .or_else(|| rest.strip_prefix("HELP "))?;
            rest.split_whitespace().next().map(str::to_string)
        })
        .collect();
    Page {
        samples: text.lines().filter_map(sample).collect(),
        declared,
    }
}

impl Page {
    /// Whether the page knows the metric `name` at all: a sample of it, or a declaration of it
    /// (or of the family it belongs to, for `_total`, `_count`, `_sum` and `_bucket` lines).
    pub fn knows(&self, name: &str) -> bool {
        let family = ["_total", "_count", "_sum", "_bucket"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        self.samples.iter().any(|s| s.name == name)
            || self.declared.contains(name)
            || self.declared.contains(family)
    }
}

fn sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    (!name.is_empty()).then(|| Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `a="b",c="d\"e"}` → the pairs and what follows the `}`.
fn label_set(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start().trim_start_matches(',').trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, rest) = s.split_once('=')?;
        let mut chars = rest.trim_start().strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key.trim().to_string(), value));
        s = &rest.trim_start()[1 + end + 1..];
    }
}

/// The sum of the series `selector` picks; None when no series matches.
pub fn sum(samples: &[Sample], selector: &Selector) -> Option<f64> {
    let mut found = None;
    for s in samples
        .iter()
        .filter(|s| selector.matches(&s.name, &s.labels))
    {
        *found.get_or_insert(0.0) += s.value;
    }
    found
}

/// The page at `url`, parsed.
pub async fn scrape(url: &str) -> Result<Page, String> {
    const LIMIT: usize = 16 * 1024 * 1024;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent("hoist")
        .build()
        .map_err(|e| e.to_string())?;
    let answer = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("no answer ({})", e.without_url()))?;
    let status = answer.status().as_u16();
    if status != 200 {
        return Err(format!("answered {status}, expected 200"));
    }
    let body = answer
        .bytes()
        .await
        .map_err(|e| format!("the page could not be read ({})", e.without_url()))?;
    if body.len() > LIMIT {
        return Err(format!("the page is larger than {} MiB", LIMIT >> 20));
    }
    let page = parse(&String::from_utf8_lossy(&body));
    if page.samples.is_empty() {
        return Err("the page holds no Prometheus samples".into());
    }
    Ok(page)
}

/// What the rules say of two scrapes `window_ms` apart (one, when `end` is None): the broken
/// rules, and a line on each rule that held.
pub fn judge(check: &MetricsCheck, start: &Page, end: Option<&Page>) -> (Vec<String>, Vec<String>) {
    let mut broken = Vec::new();
    let mut held = Vec::new();
    for rule in &check.rules {
        match rule {
            MetricRule::Counter {
                series,
                max_increase,
            } => {
                // A name the page does not know at all is a typo, not a counter at 0: a rule
                // on it could never fail.
                let last = end.unwrap_or(start);
                if !last.knows(&series.name) {
                    broken.push(format!(
                        "{} is not on the page (no sample and no # TYPE line of that name: is it spelt as the page spells it?)",
                        series.name
                    ));
                    continue;
                }
                let Some(end) = end else { continue };
                // A counter the app has not counted yet (those labels) is absent: it stands at 0.
                let (a, b) = (
                    sum(&start.samples, series).unwrap_or(0.0),
                    sum(&end.samples, series).unwrap_or(0.0),
                );
                // Lower at the end: the app restarted and counted again from 0.
                let rise = if b >= a { b - a } else { b };
                let words = format!(
                    "{series} rose by {} in {}",
                    number(rise),
                    seconds(check.window_ms)
                );
                if rise > *max_increase {
                    broken.push(format!(
                        "{words} (at most {} allowed)",
                        number(*max_increase)
                    ));
                } else {
                    held.push(words);
                }
            }
            MetricRule::Gauge { series, min, max } => {
                for page in std::iter::once(start).chain(end) {
                    let Some(v) = sum(&page.samples, series) else {
                        broken.push(format!("{series} is not on the page"));
                        break;
                    };
                    let low = min.is_some_and(|m| v < m);
                    let high = max.is_some_and(|m| v > m);
                    if low || high {
                        broken.push(format!("{series} is {} ({})", number(v), rule.words()));
                        break;
                    }
                    if end.is_none_or(|e| std::ptr::eq(e, page)) {
                        held.push(format!("{series} is {}", number(v)));
                    }
                }
            }
        }
    }
    (broken, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP rooms_close_total Closes by code.
# TYPE rooms_close_total counter
rooms_close_total{code="1000"} 3
rooms_close_total{code="1011",path="/ws/a,b"} 2 1700000000000
rooms_close_total{code="1011",path="/ws/\"x\""} 1
rooms_stored 4
http_request_duration_seconds_bucket{le="+Inf"} 10
weird_inf +Inf
"#;

    #[test]
    fn samples_as_written() {
        let page = parse(PAGE);
        assert!(page.knows("rooms_close_total") && page.knows("rooms_stored"));
        assert!(!page.knows("rooms_closed_total"));
        let samples = page.samples;
        assert_eq!(samples.len(), 6);
        assert_eq!(samples[2].labels[1], ("path".into(), "/ws/\"x\"".into()));
        assert_eq!(samples[1].labels[1], ("path".into(), "/ws/a,b".into()));
        assert_eq!(samples[1].value, 2.0);
        assert_eq!(samples[4].labels[0], ("le".into(), "+Inf".into()));
        assert_eq!(samples[5].value, f64::INFINITY);
        let s = |t: &str| Selector::parse(t).unwrap();
        assert_eq!(
            sum(&samples, &s(r#"rooms_close_total{code="1011"}"#)),
            Some(3.0)
        );
        assert_eq!(sum(&samples, &s("rooms_close_total")), Some(6.0));
        assert_eq!(sum(&samples, &s(r#"rooms_close_total{code="4001"}"#)), None);
    }

    fn check(rules: Vec<MetricRule>) -> MetricsCheck {
        MetricsCheck {
            url: "http://x/metrics".into(),
            rules,
            window_ms: 10_000,
        }
    }

    #[test]
    fn rules_over_a_window() {
        let s = |t: &str| Selector::parse(t).unwrap();
        let c = check(vec![
            MetricRule::Counter {
                series: s(r#"rooms_close_total{code="1011"}"#),
                max_increase: 5.0,
            },
            MetricRule::Counter {
                series: s(r#"rooms_close_total{code="4002"}"#),
                max_increase: 0.0,
            },
            MetricRule::Gauge {
                series: s("rooms_stored"),
                min: Some(1.0),
                max: Some(10.0),
            },
        ]);
        let start = parse("rooms_close_total{code=\"1011\"} 4\nrooms_stored 3\n");
        let calm = parse("rooms_close_total{code=\"1011\"} 6\nrooms_stored 3\n");
        let (broken, held) = judge(&c, &start, Some(&calm));
        assert!(broken.is_empty(), "{broken:?}");
        assert_eq!(
            held,
            [
                r#"rooms_close_total{code="1011"} rose by 2 in 10 s"#,
                r#"rooms_close_total{code="4002"} rose by 0 in 10 s"#,
                "rooms_stored is 3"
            ]
        );
        // A restart in between: counted from 0 again.
        let storm = parse(
            "rooms_close_total{code=\"1011\"} 20\nrooms_close_total{code=\"4002\"} 1\nrooms_stored 0\n",
        );
        let (broken, _) = judge(
            &c,
            &parse("rooms_close_total{code=\"1011\"} 30\nrooms_stored 3\n"),
            Some(&storm),
        );
        assert_eq!(
            broken,
            [
                r#"rooms_close_total{code="1011"} rose by 20 in 10 s (at most 5 allowed)"#,
                r#"rooms_close_total{code="4002"} rose by 1 in 10 s (at most 0 allowed)"#,
                "rooms_stored is 0 (rooms_stored between 1 and 10)"
            ]
        );
        // One scrape (before an upgrade's window): gauges, and names the page does not know.
        let (broken, held) = judge(&c, &parse("# TYPE rooms_close_total counter\nup 1\n"), None);
        assert_eq!(broken, ["rooms_stored is not on the page"]);
        assert!(held.is_empty());
        let (broken, _) = judge(&c, &parse("up 1\n"), None);
        assert_eq!(
            broken[0],
            "rooms_close_total is not on the page (no sample and no # TYPE line of that name: is it spelt as the page spells it?)"
        );
    }

    #[tokio::test]
    async fn a_page_that_is_not_metrics_is_said() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = "<html>login</html>";
                let _ = stream
                    .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
                    .await;
            }
        });
        let err = scrape(&format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap_err();
        assert_eq!(err, "the page holds no Prometheus samples");
        let refused = scrape("http://127.0.0.1:9/metrics").await.unwrap_err();
        assert!(refused.starts_with("no answer ("), "{refused}");
    }
}
