//! https:// smoke checks against a real TLS server (the test bed's `docker-registry`, serving a
//! self-signed certificate): answered when the check allows a self-signed certificate, refused
//! with the reason when it does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;

/// The server and the directory of its certificate, kept until the test ends.
struct Server(std::process::Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tls_server(port: u16) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the TLS server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server(child, dir)
}

#[tokio::test]
async fn an_https_check_answers_with_a_self_signed_certificate_only_when_allowed() {
    let port = free_port();
    let _server = tls_server(port);
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
