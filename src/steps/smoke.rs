//! Smoke checks: an HTTP request to the app as a user's browser would make it, with its status
//! and latency. Plain HTTP to the published port (the checks hoist detects are loopback) is
//! spoken by hand; an https:// check (configured) goes through reqwest with rustls, a
//! self-signed certificate accepted only where the check allows it.
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Serialize)]
pub struct SmokeResult {
    pub url: String,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub ok: bool,
    pub error: Option<String>,
}

/// `http://host:port/path` split into (host, port, path).
fn split_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h.trim_matches(['[', ']']).to_string(), p.parse().ok()?)
        }
        _ => (authority.to_string(), 80),
    };
    Some((host, port, path.to_string()))
}

/// One https:// request: the status code and the start of the body, or why there was none.
/// Redirects are not followed (a redirect's status is the answer, as for plain HTTP).
async fn request_tls(
    method: &str,
    url: &str,
    timeout: Duration,
    allow_self_signed: bool,
) -> Result<(u16, String), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(allow_self_signed)
        .user_agent("hoist")
        .build()
        .map_err(|e| e.to_string())?;
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let answer = client.request(method, url).send().await.map_err(|e| {
        // reqwest's top line says little ("error sending request"): its cause says why.
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
    if url.starts_with("https://") {
        return request_tls(method, url, timeout, allow_self_signed).await;
    }
    let (host, port, path) = split_url(url)
        .ok_or_else(|| format!("{url} is not an http:// or https:// URL hoist can check"))?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: hoist\r\nConnection: close\r\n\r\n"
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
pub async fn check(smoke: &crate::stack::detect::Smoke) -> SmokeResult {
    let started = Instant::now();
    let result = request_with(
        &smoke.method,
        &smoke.url,
        Duration::from_secs(5),
        smoke.allow_self_signed,
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
/// what it answered before: a port with no HTTP answer (an SSH or TLS port the numbers did not
/// tell) is dropped, and a page that answers 401 or 403 (a login wall) is expected to answer
/// the same again rather than below 400. Configured checks are kept as written. Returns what
/// changed, in words.
pub async fn baseline(checks: &mut Vec<crate::stack::detect::Smoke>) -> Vec<String> {
    let mut said = Vec::new();
    let mut kept = Vec::new();
    for mut s in std::mem::take(checks) {
        if s.configured {
            kept.push(s);
            continue;
        }
        let before = check(&s).await;
        match before.status {
            Some(code) if (400..500).contains(&code) => {
                said.push(format!(
                    "{} answers {code} before the upgrade; the same answer is expected after it",
                    s.url
                ));
                s.expect = code.to_string();
                kept.push(s);
            }
            Some(_) => kept.push(s),
            None => said.push(format!(
                "{} gives no HTTP answer before the upgrade ({}), so it is not smoke-checked",
                s.url,
                before.error.as_deref().unwrap_or("no answer")
            )),
        }
    }
    *checks = kept;
    said
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
    }
}
