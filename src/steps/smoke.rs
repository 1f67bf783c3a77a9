//! Smoke checks: an HTTP request to the app as a user's browser would make it, with its status
//! and latency. Plain HTTP to the published port (the checks hoist detects are loopback) is
//! spoken by hand; an https:// check (configured, or detected on a TLS port) goes through
//! reqwest with rustls, its certificate unverified only where the check allows it.
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stack::detect::Smoke;

#[derive(Debug, Clone, Serialize)]
pub struct SmokeResult {
    pub url: String,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub ok: bool,
    pub error: Option<String>,
}

/// `http://host:port/path` or `https://...` split into (tls, host, port, path); without a port,
/// the scheme's own.
fn parse_url(url: &str) -> Option<(bool, String, u16, String)> {
    let (tls, rest) = match url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("http://")?),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        // The last colon of a bare `[::1]` is inside the brackets: no port follows it.
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let host = host.trim_matches(['[', ']']).to_string();
    Some((tls, host, port, path.to_string()))
}

/// `http://host:port/path` split into (host, port, path).
fn split_url(url: &str) -> Option<(String, u16, String)> {
    match parse_url(url)? {
        (false, host, port, path) => Some((host, port, path)),
        (true, ..) => None,
    }
}

/// One https:// request: the status code and the start of the body, or why there was none.
/// Redirects are not followed (a redirect's status is the answer, as for plain HTTP).
async fn request_tls(
    method: &str,
    url: &str,
    timeout: Duration,
    allow_self_signed: bool,
    headers: &[(String, String)],
) -> Result<(u16, String), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(allow_self_signed)
        .user_agent("hoist")
        .build()
        .map_err(|e| e.to_string())?;
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = client.request(method, url);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let answer = request.send().await.map_err(|e| {
        // reqwest's top line says little ("error sending request"): its cause says why. The
        // URL is said beside the error already.
        let e = e.without_url();
        let mut words = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            words = format!("{words}: {s}");
            source = s.source();
        }
        words
    })?;
    let status = answer.status().as_u16();
    let body = answer.text().await.unwrap_or_default();
    Ok((status, body.chars().take(64 * 1024).collect()))
}

/// One request, plain or TLS: the status code and the start of the body, or why there was none.
pub async fn request_with(
    method: &str,
    url: &str,
    timeout: Duration,
    allow_self_signed: bool,
) -> Result<(u16, String), String> {
    request_headers(method, url, timeout, allow_self_signed, &[]).await
}

/// `request_with`, sending `headers` too.
pub async fn request_headers(
    method: &str,
    url: &str,
    timeout: Duration,
    allow_self_signed: bool,
    headers: &[(String, String)],
) -> Result<(u16, String), String> {
    if url.starts_with("https://") {
        return request_tls(method, url, timeout, allow_self_signed, headers).await;
    }
    let (host, port, path) = split_url(url)
        .ok_or_else(|| format!("{url} is not an http:// or https:// URL hoist can check"))?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        let extra: String = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: hoist\r\n{extra}Connection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        // Status line and a little of the body are all a smoke check needs.
        let mut chunk = [0u8; 8192];
        while buf.len() < 64 * 1024 {
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        if buf.is_empty() {
            return Err("the connection closed without an answer".to_string());
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| "the answer is not HTTP".to_string())?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

/// Runs one check against its expectation.
pub async fn check(smoke: &Smoke) -> SmokeResult {
    let started = Instant::now();
    let result = request_headers(
        &smoke.method,
        &smoke.url,
        Duration::from_secs(5),
        smoke.allow_self_signed,
        &smoke.headers,
    )
    .await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok((status, body)) => {
            let status_ok = expect_accepts(&smoke.expect, status);
            let body_ok = smoke
                .expect_body
                .as_ref()
                .is_none_or(|b| body.contains(b.as_str()));
            let error = match (status_ok, body_ok) {
                (true, true) => None,
                // What the page said is often the reason (`{"status": "not ready", "reason": …}`).
                (false, _) if !body.trim().is_empty() => Some(format!(
                    "answered {status}, expected {}: {}",
                    smoke.expect,
                    super::checks::short(body.trim(), 160)
                )),
                (false, _) => Some(format!("answered {status}, expected {}", smoke.expect)),
                (true, false) => Some(format!(
                    "the page does not contain {:?}",
                    smoke.expect_body.as_deref().unwrap_or("")
                )),
            };
            SmokeResult {
                url: smoke.url.clone(),
                status: Some(status),
                latency_ms,
                ok: error.is_none(),
                error,
            }
        }
        Err(e) => SmokeResult {
            url: smoke.url.clone(),
            status: None,
            latency_ms,
            ok: false,
            error: Some(e),
        },
    }
}

/// Takes each detected check once before the upgrade, so that after it the app is held to
/// what it answered before: a port that speaks the other scheme than its number said is
/// checked with that one, a port with no HTTP answer either way (an SSH or media port the
/// numbers did not tell) is dropped, and a page that answers 401 or 403 (a login wall) is
/// expected to answer the same again rather than below 400. Configured checks are kept as
/// written. Returns what changed, in words.
pub async fn baseline(checks: &mut Vec<Smoke>) -> Vec<String> {
    let mut said = Vec::new();
    let mut kept = Vec::new();
    for s in std::mem::take(checks) {
        if s.configured {
            kept.push(s);
            continue;
        }
        let (settled, words) = settle(s).await;
        said.extend(words);
        if let Some(s) = settled {
            if let Some((ready, words)) = ready_endpoint(&s).await {
                kept.push(s);
                kept.push(ready);
                said.push(words);
            } else {
                kept.push(s);
            }
        }
    }
    *checks = kept;
    said
}

/// One detected check as its port answers it, and what is said about it; `None` when the port
/// answers neither scheme. The other scheme is tried when the first gets no answer, or when
/// plain HTTP gets a 400: what nginx and Go servers answer plain HTTP on a TLS port.
async fn settle(s: Smoke) -> (Option<Smoke>, Vec<String>) {
    let first = check(&s).await;
    let tls_refusal = first.status == Some(400) && !s.url.starts_with("https://");
    let mut second = None;
    if (first.status.is_none() || tls_refusal)
        && let Some(other) = other_scheme(&s)
    {
        let answer = check(&other).await;
        if let Some(code) = answer.status {
            let port = port_words(&s.url);
            let switched = if other.allow_self_signed {
                format!("{port} speaks TLS: checked as https, any certificate accepted")
            } else {
                format!("{port} answers plain HTTP, not TLS: checked as http")
            };
            let (other, held) = hold(other, code);
            return (Some(other), std::iter::once(switched).chain(held).collect());
        }
        second = Some(answer);
    }
    let Some(code) = first.status else {
        let why = |r: &SmokeResult| r.error.clone().unwrap_or_else(|| "no answer".into());
        let nor = second.map_or_else(String::new, |r| {
            format!(", nor does {} ({})", r.url, why(&r))
        });
        let words = format!(
            "{} gives no HTTP answer before the upgrade ({}){nor}, so {} is not smoke-checked",
            s.url,
            why(&first),
            port_words(&s.url)
        );
        return (None, vec![words]);
    };
    let (s, held) = hold(s, code);
    (Some(s), held.into_iter().collect())
}

/// Where an app defines `/health/ready` (SyncTV and many others do) and it answers 200 before
/// the upgrade, it is held to answering 200 after it too: the app's own word that it is ready,
/// which a login page's answer is not.
async fn ready_endpoint(s: &Smoke) -> Option<(Smoke, String)> {
    const PATH: &str = "/health/ready";
    let (tls, host, port, _) = parse_url(&s.url)?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let ready = Smoke {
        url: format!(
            "{}://{host}:{port}{PATH}",
            if tls { "https" } else { "http" }
        ),
        expect: "200".into(),
        expect_body: None,
        ..s.clone()
    };
    let answer = check(&ready).await;
    (answer.status == Some(200)).then(|| {
        let words = format!(
            "{} answers 200 before the upgrade: the app says it is ready there, so it must after the upgrade too",
            ready.url
        );
        (ready, words)
    })
}

/// The check held to the status its page answered before the upgrade, when that is a 4xx
/// (a login wall), with the sentence that says so.
fn hold(mut s: Smoke, code: u16) -> (Smoke, Option<String>) {
    if !(400..500).contains(&code) {
        return (s, None);
    }
    let words = format!(
        "{} answers {code} before the upgrade; the same answer is expected after it",
        s.url
    );
    s.expect = code.to_string();
    (s, Some(words))
}

/// The same check with the other scheme. An https one does not verify the certificate: a
/// detected check goes to the address the port is published on, which a self-hoster's
/// certificate seldom names (when it is not self-signed outright).
fn other_scheme(s: &Smoke) -> Option<Smoke> {
    let (url, tls) = match s.url.strip_prefix("https://") {
        Some(rest) => (format!("http://{rest}"), false),
        None => (format!("https://{}", s.url.strip_prefix("http://")?), true),
    };
    Some(Smoke {
        url,
        allow_self_signed: tls,
        ..s.clone()
    })
}

/// "port 8443", or the URL where it names no port hoist can read.
fn port_words(url: &str) -> String {
    parse_url(url).map_or_else(|| url.to_string(), |(_, _, port, _)| format!("port {port}"))
}

/// "<400", "302", "200-299".
pub fn expect_accepts(expect: &str, status: u16) -> bool {
    if let Some(below) = expect.strip_prefix('<') {
        return below.parse::<u16>().is_ok_and(|b| status < b);
    }
    if let Some((a, b)) = expect.split_once('-') {
        return matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&status));
    }
    expect.parse::<u16>().is_ok_and(|s| s == status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_expectations() {
        assert_eq!(
            split_url("http://127.0.0.1:9933/"),
            Some(("127.0.0.1".into(), 9933, "/".into()))
        );
        assert_eq!(
            split_url("http://[::1]:80/health"),
            Some(("::1".into(), 80, "/health".into()))
        );
        assert_eq!(
            split_url("http://example.test"),
            Some(("example.test".into(), 80, "/".into()))
        );
        assert!(split_url("https://x/").is_none());
        assert!(expect_accepts("<400", 302) && !expect_accepts("<400", 500));
        assert!(expect_accepts("200-299", 204) && !expect_accepts("200-299", 302));
        assert!(expect_accepts("302", 302));
        assert_eq!(
            parse_url("https://[::1]/x"),
            Some((true, "::1".into(), 443, "/x".into()))
        );
        assert_eq!(port_words("https://127.0.0.1:8443/"), "port 8443");
    }

    /// A detected check on `port` (of 127.0.0.1), plain or TLS by `scheme`.
    fn detected(scheme: &str, port: u16) -> Smoke {
        Smoke {
            url: format!("{scheme}://127.0.0.1:{port}/"),
            method: "GET".into(),
            expect: "<400".into(),
            expect_body: None,
            configured: false,
            allow_self_signed: scheme == "https",
            headers: Vec::new(),
        }
    }

    /// A server on a free port of 127.0.0.1 that answers every connection with `answer` once
    /// it has read what came (a whole HTTP request, or a TLS hello), then closes it. Closing
    /// with unread bytes would reset the connection rather than end it. It has no
    /// `/health/ready` (404).
    async fn serving(answer: &'static str) -> u16 {
        serving_ready(
            answer,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        )
        .await
    }

    /// `serving`, answering `ready` to `GET /health/ready`.
    async fn serving_ready(answer: &'static str, ready: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut came = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    came.extend_from_slice(&buf[..n]);
                    if !came[0].is_ascii_alphabetic() || came.ends_with(b"\r\n\r\n") {
                        break;
                    }
                }
                let answer = if came.starts_with(b"GET /health/ready ") {
                    ready
                } else {
                    answer
                };
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn a_tls_numbered_port_that_answers_plain_http_is_checked_as_http() {
        let port = serving("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let mut checks = vec![detected("https", port)];
        let said = baseline(&mut checks).await;
        assert_eq!(
            said,
            [format!(
                "port {port} answers plain HTTP, not TLS: checked as http"
            )]
        );
        assert_eq!(checks, [detected("http", port)]);
        assert!(check(&checks[0]).await.ok);
    }

    #[tokio::test]
    async fn an_app_that_serves_health_ready_is_held_to_it() {
        let port = serving_ready(
            "HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )
        .await;
        let mut checks = vec![detected("http", port)];
        let said = baseline(&mut checks).await;
        let ready = format!("http://127.0.0.1:{port}/health/ready");
        assert_eq!(
            said,
            [format!(
                "{ready} answers 200 before the upgrade: the app says it is ready there, so it must after the upgrade too"
            )]
        );
        assert_eq!(checks.len(), 2, "{checks:?}");
        assert_eq!(
            (checks[1].url.as_str(), checks[1].expect.as_str()),
            (ready.as_str(), "200")
        );
        assert!(check(&checks[1]).await.ok);
    }

    #[tokio::test]
    async fn a_login_wall_is_held_to_its_answer_and_not_taken_for_tls() {
        let port = serving("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n").await;
        let mut checks = vec![detected("http", port)];
        let said = baseline(&mut checks).await;
        assert_eq!(
            said,
            [format!(
                "http://127.0.0.1:{port}/ answers 401 before the upgrade; the same answer is expected after it"
            )]
        );
        assert_eq!(checks[0].url, format!("http://127.0.0.1:{port}/"));
        assert_eq!(checks[0].expect, "401");
    }

    #[tokio::test]
    async fn a_port_that_answers_neither_scheme_is_dropped_naming_both() {
        // It reads what came and closes without a word, as an SSH or media port may.
        let port = serving("").await;
        let mut checks = vec![detected("http", port)];
        let said = baseline(&mut checks).await;
        assert!(checks.is_empty(), "{checks:?}");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with(&format!(
                "http://127.0.0.1:{port}/ gives no HTTP answer before the upgrade (the connection closed without an answer), nor does https://127.0.0.1:{port}/ ("
            )) && said[0].ends_with(&format!(", so port {port} is not smoke-checked")),
            "{said:?}"
        );
    }

    #[tokio::test]
    async fn a_configured_check_is_kept_untried() {
        let mut configured = detected("http", 9);
        configured.configured = true;
        let mut checks = vec![configured.clone()];
        assert!(baseline(&mut checks).await.is_empty());
        assert_eq!(checks, [configured]);
    }
}
