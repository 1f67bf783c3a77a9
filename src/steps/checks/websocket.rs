//! A WebSocket check: connect, send a message, and wait for a reply matching a pattern. What
//! came instead (another message, a close code and its reason) is what the failure says.
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::stack::checks::{WsCheck, seconds};

/// Ok: the matching message (its start) and how long it took. Err: what happened instead.
pub async fn exchange(check: &WsCheck) -> Result<(String, u64), String> {
    let started = Instant::now();
    let pattern = regex::Regex::new(&check.expect).map_err(|e| e.to_string())?;
    let timeout = Duration::from_millis(check.timeout_ms);
    let mut seen: Vec<String> = Vec::new();
    let talk = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(check.url.as_str())
            .await
            .map_err(|e| format!("the connection failed: {e}"))?;
        if let Some(text) = &check.send {
            ws.send(Message::text(text.as_str()))
                .await
                .map_err(|e| format!("sending {text:?} failed: {e}"))?;
        }
        while let Some(message) = ws.next().await {
            match message.map_err(|e| format!("the connection broke: {e}"))? {
                Message::Text(t) => {
                    let t = t.as_str().to_string();
                    if pattern.is_match(&t) {
                        // Said goodbye properly; the app's close counters stay honest.
                        let _ = ws.close(None).await;
                        return Ok(t);
                    }
                    seen.push(t);
                }
                Message::Close(frame) => {
                    let how = frame.map_or_else(
                        || "closed without a code".to_string(),
                        |f| {
                            let code = u16::from(f.code);
                            if f.reason.as_str().is_empty() {
                                format!("closed with code {code}")
                            } else {
                                format!("closed with code {code} ({})", f.reason.as_str())
                            }
                        },
                    );
                    return Err(how);
                }
                _ => {}
            }
        }
        Err("the connection ended".to_string())
    };
    let outcome = tokio::time::timeout(timeout, talk).await;
    let ms = started.elapsed().as_millis() as u64;
    let answered = |seen: &[String]| match seen.last() {
        Some(last) => format!("answered {} then ", super::short(last, 120)),
        None => String::new(),
    };
    match outcome {
        Ok(Ok(matched)) => Ok((super::short(&matched, 120), ms)),
        Ok(Err(why)) => Err(format!(
            "{}{why}; expected a message matching /{}/",
            answered(&seen),
            check.expect
        )),
        Err(_) => Err(format!(
            "{}no message matching /{}/ within {}",
            answered(&seen),
            check.expect,
            seconds(check.timeout_ms)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    /// A real WebSocket server on a free port: it answers `hello` with `reply`, then closes
    /// with `close` when given; anything else it echoes.
    async fn server(reply: &'static str, close: Option<u16>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
                    while let Some(Ok(Message::Text(t))) = ws.next().await {
                        if t.as_str() == "hello" {
                            if !reply.is_empty() {
                                ws.send(Message::text(reply)).await.unwrap();
                            }
                            if let Some(code) = close {
                                let _ = ws
                                    .close(Some(CloseFrame {
                                        code: CloseCode::from(code),
                                        reason: "unsupported client".into(),
                                    }))
                                    .await;
                            }
                        } else {
                            ws.send(Message::text(t)).await.unwrap();
                        }
                    }
                });
            }
        });
        port
    }

    fn check(port: u16, timeout_ms: u64) -> WsCheck {
        WsCheck {
            url: format!("ws://127.0.0.1:{port}/ws/lobby"),
            send: Some("hello".into()),
            expect: r#""type": ?"welcome""#.into(),
            timeout_ms,
        }
    }

    #[tokio::test]
    async fn a_welcome_passes() {
        let port = server(r#"{"type": "welcome", "caps": ["pack"]}"#, None).await;
        let (said, _) = exchange(&check(port, 5000)).await.unwrap();
        assert_eq!(said, r#"{"type": "welcome", "caps": ["pack"]}"#);
    }

    #[tokio::test]
    async fn a_refusal_says_what_came_and_the_close_code() {
        let port = server(
            r#"{"type":"error","reason":"unsupported client"}"#,
            Some(4002),
        )
        .await;
        let err = exchange(&check(port, 5000)).await.unwrap_err();
        assert_eq!(
            err,
            r#"answered {"type":"error","reason":"unsupported client"} then closed with code 4002 (unsupported client); expected a message matching /"type": ?"welcome"/"#
        );
    }

    #[tokio::test]
    async fn silence_is_a_timeout_and_no_server_a_failed_connection() {
        let port = server("", None).await;
        let err = exchange(&check(port, 300)).await.unwrap_err();
        assert_eq!(
            err,
            r#"no message matching /"type": ?"welcome"/ within 300 ms"#
        );
        let err = exchange(&check(9, 2000)).await.unwrap_err();
        assert!(err.starts_with("the connection failed: "), "{err}");
    }
}
