//! https:// smoke checks against a real TLS server (the test bed's `docker-registry`, serving a
//! self-signed certificate): answered when the check allows a self-signed certificate, refused
//! with the reason when it does not. Before an upgrade, a detected http:// check on a port that
//! speaks TLS becomes an https check, and one on a port that speaks neither is dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use hoist::stack::detect::Smoke;
use hoist::steps::smoke::{baseline, check};

/// The server and the directory of its certificate, kept until the test ends.
struct Server(std::process::Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory with `cert.pem`, a self-signed certificate for `name`, and its `key.pem`.
fn certificate(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    dir
}

/// The server once it listens on `port`.
fn listening(child: std::process::Child, dir: tempfile::TempDir, port: u16) -> Server {
    let server = Server(child, dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the TLS server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// A TLS server on `port` of 127.0.0.1, its self-signed certificate for `name`. Like nginx, it
/// answers plain HTTP with a 400 (Go's "Client sent an HTTP request to an HTTPS server").
fn tls_server(port: u16, name: &str) -> Server {
    let dir = certificate(name);
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{ level: error }}\nstorage: {{ filesystem: {{ rootdirectory: {store} }} }}\nhttp:\n  addr: 127.0.0.1:{port}\n  tls: {{ certificate: {d}/cert.pem, key: {d}/key.pem }}\n",
            store = dir.path().join("store").display(),
            d = dir.path().display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (installed by testbed/up.sh)");
    listening(child, dir, port)
}

/// A TLS server on `port` of 127.0.0.1 that gives plain HTTP no answer at all (OpenSSL's test
/// server; `GET /` over TLS answers 200).
fn quiet_tls_server(port: u16) -> Server {
    let dir = certificate("app.example.test");
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.path().join("cert.pem"))
        .arg("-key")
        .arg(dir.path().join("key.pem"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl (installed with ca-certificates)");
    listening(child, dir, port)
}

#[tokio::test]
async fn an_https_check_answers_with_a_self_signed_certificate_only_when_allowed() {
    let port = free_port();
    let _server = tls_server(port, "127.0.0.1");
    let url = format!("https://127.0.0.1:{port}/v2/");
    let (status, _) = hoist::steps::smoke::request_with("GET", &url, Duration::from_secs(5), true)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let refused = hoist::steps::smoke::request_with("GET", &url, Duration::from_secs(5), false)
        .await
        .unwrap_err();
    assert!(
        refused.to_lowercase().contains("certificate"),
        "the reason names the certificate: {refused}"
    );
}

/// A check as hoist detects it from a published port.
fn detected(url: String) -> Smoke {
    Smoke {
        url,
        method: "GET".into(),
        expect: "<400".into(),
        expect_body: None,
        configured: false,
        allow_self_signed: false,
        headers: Vec::new(),
    }
}

/// A detected `http://` check on `port`, tried before an upgrade, becomes an https check that
/// passes.
async fn becomes_https(port: u16) {
    let mut checks = vec![detected(format!("http://127.0.0.1:{port}/"))];
    let said = baseline(&mut checks).await;
    assert_eq!(
        said[0],
        format!("port {port} speaks TLS: checked as https, any certificate accepted")
    );
    // A server that answers every path 200 answers /health/ready too, and is held to it.
    assert!(
        said[1..]
            .iter()
            .all(|s| s.contains("/health/ready answers 200 before the upgrade")),
        "{said:?}"
    );
    assert_eq!(checks.len(), said.len());
    assert_eq!(checks[0].url, format!("https://127.0.0.1:{port}/"));
    assert!(checks[0].allow_self_signed);
    assert_eq!(checks[0].expect, "<400");
    let after = check(&checks[0]).await;
    assert!(after.ok, "{after:?}");
    assert_eq!(after.status, Some(200));
}

#[tokio::test]
async fn a_detected_http_check_on_a_port_that_speaks_tls_becomes_an_https_check_that_passes() {
    // The certificate names the self-hoster's domain, not the address checked.
    let port = free_port();
    let _server = tls_server(port, "app.example.test");
    becomes_https(port).await;
}

#[tokio::test]
async fn a_detected_http_check_on_a_tls_port_silent_to_plain_http_becomes_https() {
    let port = free_port();
    let _server = quiet_tls_server(port);
    becomes_https(port).await;
}

#[tokio::test]
async fn a_detected_check_on_a_port_that_speaks_neither_http_nor_tls_is_dropped() {
    // It takes each connection and closes it unanswered.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let mut checks = vec![detected(format!("http://127.0.0.1:{port}/"))];
    let said = baseline(&mut checks).await;
    assert!(checks.is_empty(), "{checks:?}");
    assert_eq!(said.len(), 1, "{said:?}");
    let words = &said[0];
    assert!(
        words.starts_with(&format!(
            "http://127.0.0.1:{port}/ gives no HTTP answer before the upgrade ("
        )),
        "{words}"
    );
    assert!(
        words.contains(&format!("nor does https://127.0.0.1:{port}/ (")),
        "{words}"
    );
    assert!(
        words.ends_with(&format!("so port {port} is not smoke-checked")),
        "{words}"
    );
}
