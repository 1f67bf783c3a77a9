//! `hoist versions` against real registries (the bed's `docker-registry` binary) that require
//! credentials: HTTP basic auth with an htpasswd file, and bearer tokens from a token issuer
//! owned by this test (its own key pair and certificate, signing the JWTs the registry checks).
//! Credentials come from a Docker config (`DOCKER_CONFIG`), as the user's would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{TestStack, docker_available, free_port};

const USER: &str = "hoist-user";
const PASSWORD: &str = "s3cret-registry-password";

/// A registry process with its own storage; killed when dropped.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Starts `docker-registry serve` with `auth` (a YAML block) and `tags` of specivo/specivo.
    fn start(auth: &str, tags: &[String], dir: tempfile::TempDir) -> Registry {
        let port = free_port();
        let store = dir.path().join("store");
        // The registry lists a repository's tags from these directories.
        for tag in tags {
            std::fs::create_dir_all(store.join(format!(
                "docker/registry/v2/repositories/specivo/specivo/_manifests/tags/{tag}/current"
            )))
            .unwrap();
        }
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{ level: error }}\nstorage: {{ filesystem: {{ rootdirectory: {} }} }}\nhttp: {{ addr: 127.0.0.1:{port} }}\n{auth}",
                store.display()
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
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            port,
            _dir: dir,
        }
    }
}

/// A files-only fixture stack whose app image lives in the registry on `port`.
fn stack_on(port: u16, tag: &str) -> TestStack {
    let stack = TestStack::files_only(tag, "0.1.9");
    let compose = stack.dir.join("compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(
        &compose,
        text.replace(
            "127.0.0.1:5000/specivo/",
            &format!("127.0.0.1:{port}/specivo/"),
        ),
    )
    .unwrap();
    stack
}

/// A Docker config dir holding `user:password` for the registry on `port`.
fn docker_config(port: u16, user: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths": {{"127.0.0.1:{port}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    dir
}

fn tags(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("0.1.{}", 8 + i)).collect()
}

fn versions(stack: &TestStack, config: &Path) -> common::Run {
    let run = stack.hoist_with(
        &["versions", "--json"],
        &[("DOCKER_CONFIG", config.to_str().unwrap())],
    );
    run.assert_no_panic();
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "{run:?}"
    );
    run
}

#[test]
fn basic_auth_uses_the_docker_config_and_says_how_to_log_in() {
    if !docker_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash(PASSWORD, 5).unwrap();
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
    let registry = Registry::start(
        &format!(
            "auth: {{ htpasswd: {{ realm: hoist-test, path: {} }} }}\n",
            htpasswd.display()
        ),
        &tags(130),
        dir,
    );
    let stack = stack_on(registry.port, "basic");

    let ok = versions(&stack, docker_config(registry.port, USER, PASSWORD).path());
    assert_eq!(ok.code, 0, "{ok:?}");
    let s = ok.summary();
    // All 130 tags, whatever the registry's paging.
    assert_eq!(s["tags"], 130, "{s}");
    assert_eq!(s["newest"], "0.1.138");
    assert_eq!(s["next"], "0.1.10");

    for (config, what) in [
        (
            docker_config(registry.port, USER, "wrong"),
            "a wrong password",
        ),
        (tempfile::tempdir().unwrap(), "no credentials"),
    ] {
        let run = versions(&stack, config.path());
        assert_eq!(run.code, 3, "{what}: {run:?}");
        assert!(
            run.stderr.contains("refused access")
                && run
                    .stderr
                    .contains(&format!("docker login 127.0.0.1:{}", registry.port)),
            "{what}: {run:?}"
        );
    }
}

/// The token issuer: answers `GET /token?service=..&scope=..` for the right basic credentials
/// with a JWT signed by its own key, its certificate in the `x5c` header.
struct Issuer {
    port: u16,
    cert_pem: String,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Issuer {
    fn start(service: &'static str, issuer: &'static str) -> Issuer {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let rc_key = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
        let params = rcgen::CertificateParams::new(vec!["hoist-test-issuer".to_string()]).unwrap();
        let cert = params.self_signed(&rc_key).unwrap();
        let cert_der = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let mut authorized = false;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    let expected = base64::engine::general_purpose::STANDARD
                        .encode(format!("{USER}:{PASSWORD}"));
                    if line.to_ascii_lowercase().starts_with("authorization:")
                        && line.trim().ends_with(&expected)
                    {
                        authorized = true;
                    }
                }
                // scope=repository:specivo/specivo:pull
                let scope = request_line
                    .split(['?', '&', ' '])
                    .find_map(|p| p.strip_prefix("scope="))
                    .map(|s| s.replace("%3A", ":").replace("%2F", "/"))
                    .unwrap_or_default();
                let response = if authorized {
                    let mut parts = scope.splitn(3, ':');
                    let (kind, name, actions) = (
                        parts.next().unwrap_or(""),
                        parts.next().unwrap_or(""),
                        parts.next().unwrap_or(""),
                    );
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs();
                    let header =
                        serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [cert_der]});
                    let claims = serde_json::json!({
                        "iss": issuer, "sub": USER, "aud": service,
                        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{port}"),
                        "access": if kind.is_empty() { serde_json::json!([]) } else {
                            serde_json::json!([{"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}])
                        },
                    });
                    let signing_input = format!(
                        "{}.{}",
                        b64url(header.to_string().as_bytes()),
                        b64url(claims.to_string().as_bytes())
                    );
                    let signature = key.sign(&rng, signing_input.as_bytes()).unwrap();
                    let token = format!("{signing_input}.{}", b64url(signature.as_ref()));
                    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Issuer {
            port,
            cert_pem: cert.pem(),
        }
    }
}

#[test]
fn bearer_tokens_come_from_the_registry_s_token_issuer() {
    if !docker_available() {
        return;
    }
    let issuer = Issuer::start("hoist-test-registry", "hoist-test-issuer");
    let dir = tempfile::tempdir().unwrap();
    let bundle: PathBuf = dir.path().join("issuer.pem");
    std::fs::write(&bundle, &issuer.cert_pem).unwrap();
    let registry = Registry::start(
        &format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: hoist-test-registry\n    issuer: hoist-test-issuer\n    rootcertbundle: {}\n",
            issuer.port,
            bundle.display()
        ),
        &tags(6),
        dir,
    );
    let stack = stack_on(registry.port, "token");

    let ok = versions(&stack, docker_config(registry.port, USER, PASSWORD).path());
    assert_eq!(ok.code, 0, "{ok:?}");
    let s = ok.summary();
    assert_eq!(s["tags"], 6, "{s}");
    assert_eq!(s["newest"], "0.1.14");

    // The issuer refuses a wrong password: no token, a clear refusal.
    let denied = versions(&stack, docker_config(registry.port, USER, "wrong").path());
    assert_eq!(denied.code, 3, "{denied:?}");
    assert!(denied.stderr.contains("refused access"), "{denied:?}");
}
