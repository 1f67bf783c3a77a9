//! The test bed as the integration tests see it: a fresh copy of the fixture stack per test,
//! torn down (containers, volumes, networks, files) when the test ends, pass or fail.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod pty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A TCP port nothing listens on now, for a test's own server or published port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the tests run as root (needed to run hoist as another Unix user).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// Whether the test bed can run. When it cannot: with HOIST_REQUIRE_DOCKER=1 (CI) the test fails,
/// otherwise it prints why it skips. Call as `if !common::docker_available() { return; }`.
pub fn docker_available() -> bool {
    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let registry = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5000".parse().unwrap(),
        Duration::from_secs(2),
    )
    .is_ok();
    if engine && registry {
        return true;
    }
    let why = format!(
        "the test bed is not up (engine: {engine}, registry on 127.0.0.1:5000: {registry}); run `sudo testbed/up.sh`"
    );
    if std::env::var("HOIST_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("HOIST_REQUIRE_DOCKER=1 but {why}");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// Longer than any hoist run of the tests takes on a loaded 2-core machine; a hoist that runs
/// past it hangs, and the test fails saying so instead of holding the whole run until CI's limit.
pub const HOIST_LIMIT: Duration = Duration::from_secs(600);

/// `cmd.output()`, killed and failed when it runs past `limit`, with what it printed so far.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    use std::io::Read;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read on threads, so that a full pipe never stalls the child; a child killed for hanging
    // may have left children holding its pipes, so those reads are waited for a little only.
    let reader = |mut pipe: Box<dyn Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            let _ = tx.send(text);
        });
        rx
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
                let bytes = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            };
            panic!(
                "{cmd:?} did not end within {} s and was killed: it hangs.\nstdout: {}\nstderr: {}",
                limit.as_secs(),
                text(stdout),
                text(stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.recv().unwrap_or_default(),
        stderr: stderr.recv().unwrap_or_default(),
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique, Compose-valid project name for this test.
fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "hoist-{tag}-{}-{n}-{:x}",
        std::process::id(),
        nanos % 0xfffff
    )
}

/// Tests run on parallel threads, and test binaries side by side (scripts/test.sh), all on one
/// engine's images. A test that removes an image to see it pulled again must not have another
/// stack (or hoist) pull that image back in between: it holds this lock exclusively, every other
/// started stack shares it. A lock file, so that it holds across test processes; a turnstile in
/// front, so that a test waiting to hold it alone is not starved by stacks that keep starting.
const IMAGE_LOCK: &str = "/tmp/hoist-tests-images.lock";
const IMAGE_TURNSTILE: &str = "/tmp/hoist-tests-images.turnstile";

thread_local! {
    /// Shared holds this thread has: a test that starts a second stack while it holds one must
    /// not queue behind a waiting exclusive holder that waits for it.
    static SHARED_HELD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn lock_file(path: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap()
}

enum ImageUse {
    Shared(#[allow(dead_code)] std::fs::File),
    Exclusive(#[allow(dead_code)] std::fs::File),
}

impl ImageUse {
    fn shared() -> ImageUse {
        let file = lock_file(IMAGE_LOCK);
        if SHARED_HELD.get() > 0 {
            file.lock_shared().unwrap();
        } else {
            let turnstile = lock_file(IMAGE_TURNSTILE);
            turnstile.lock().unwrap();
            file.lock_shared().unwrap();
        }
        SHARED_HELD.set(SHARED_HELD.get() + 1);
        ImageUse::Shared(file)
    }
    fn exclusive() -> ImageUse {
        let turnstile = lock_file(IMAGE_TURNSTILE);
        turnstile.lock().unwrap();
        let file = lock_file(IMAGE_LOCK);
        file.lock().unwrap();
        ImageUse::Exclusive(file)
    }
}

/// Held by a test that tags or pulls images outside a started stack (a stack holds it itself),
/// so that a test removing images does not find them back under another name.
pub struct ImagesInUse(#[allow(dead_code)] ImageUse);

pub fn images_in_use() -> ImagesInUse {
    ImagesInUse(ImageUse::shared())
}

impl Drop for ImageUse {
    fn drop(&mut self) {
        if let ImageUse::Shared(_) = self {
            SHARED_HELD.set(SHARED_HELD.get().saturating_sub(1));
        }
    }
}

pub struct TestStack {
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    pub port: u16,
    pub project: String,
    started: bool,
    // Dropped after the stack is brought down (fields drop after `Drop::drop`).
    _images: Option<ImageUse>,
    _root: tempfile::TempDir,
}

impl TestStack {
    /// An empty project directory in a fresh temporary root (with a state dir beside it).
    /// `started` says whether teardown must bring containers down.
    fn empty(tag: &str, started: bool) -> TestStack {
        TestStack::empty_using(tag, started, started.then(ImageUse::shared))
    }

    fn empty_using(tag: &str, started: bool, images: Option<ImageUse>) -> TestStack {
        let root = tempfile::Builder::new()
            .prefix("hoist-it-")
            .tempdir()
            .unwrap();
        // Readable by other users too: one test runs hoist as `nobody`.
        set_mode(root.path(), 0o755);
        let project = unique_name(tag);
        TestStack {
            dir: root.path().join(&project),
            state_dir: root.path().join("state"),
            port: 0,
            project,
            started,
            _images: images,
            _root: root,
        }
    }

    /// The stack's files at `version`, not started (for tests of file handling and of a missing engine).
    pub fn files_only(tag: &str, version: &str) -> TestStack {
        let mut stack = TestStack::empty(tag, false);
        std::fs::create_dir_all(&stack.dir).unwrap();
        std::fs::copy(
            repo_root().join("testbed/stack/compose.yaml"),
            stack.dir.join("compose.yaml"),
        )
        .unwrap();
        let env = fixture_env(version, 9933, "files-only");
        std::fs::write(stack.dir.join(".env"), env).unwrap();
        stack.port = 9933;
        stack
    }

    /// A running, healthy copy of the fixture stack at `version`.
    pub fn start(tag: &str, version: &str) -> TestStack {
        TestStack::new_stack(tag, version, None, ImageUse::shared())
    }

    /// Like `start`, for a test that removes images from the engine: it waits until no other
    /// stack of this test binary lives, and none starts until this one is dropped.
    pub fn start_removing_images(tag: &str, version: &str) -> TestStack {
        TestStack::new_stack(tag, version, None, ImageUse::exclusive())
    }

    /// A fresh fixture stack from testbed/new-stack.sh, with its uploads' size when given.
    fn new_stack(tag: &str, version: &str, upload_mb: Option<u32>, images: ImageUse) -> TestStack {
        let mut stack = TestStack::empty_using(tag, true, Some(images));
        let mut cmd = Command::new(repo_root().join("testbed/new-stack.sh"));
        cmd.arg(&stack.dir).arg(version);
        if let Some(mb) = upload_mb {
            cmd.env("HOIST_FIXTURE_UPLOAD_MB", mb.to_string());
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "new-stack.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        stack.port = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        stack
    }

    /// A stack of the test's own files (compose.yaml, .env, ...), started and healthy.
    pub fn custom(tag: &str, files: &[(&str, &str)]) -> TestStack {
        let stack = TestStack::empty(tag, true);
        std::fs::create_dir_all(&stack.dir).unwrap();
        for (name, text) in files {
            let path = stack.dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        stack.compose(&["up", "-d", "--wait", "--quiet-pull"]);
        stack
    }

    /// The version the app's `/health` reports ("" when it does not answer).
    pub fn health_version(&self) -> String {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{}/health", self.port)])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["version"].as_str().unwrap_or("").to_string()
    }

    /// Runs hoist on this stack with its own state dir.
    pub fn hoist(&self, args: &[&str]) -> Run {
        self.hoist_with(args, &[])
    }

    /// `hoist -C <stack> --state-dir <state> ARGS`: hoist with another journal than the
    /// stack's (a second admin, a lost state dir).
    pub fn hoist_with_state(&self, state: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.arg("-C")
            .arg(&self.dir)
            .arg("--state-dir")
            .arg(state)
            .args(args);
        Run::of(output_within(cmd, HOIST_LIMIT))
    }

    pub fn hoist_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.arg("-C")
            .arg(&self.dir)
            .arg("--state-dir")
            .arg(&self.state_dir);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::of(output_within(cmd, HOIST_LIMIT))
    }

    /// `docker compose` on this stack, whatever its exit status.
    pub fn compose_output(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("compose")
            .arg("--project-directory")
            .arg(&self.dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// `docker compose` on this stack, which must succeed.
    pub fn compose(&self, args: &[&str]) -> Output {
        let out = self.compose_output(args);
        assert!(
            out.status.success(),
            "docker compose {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.project)
    }

    /// Polls `docker inspect` until the format string prints `want` (or panics after `secs`).
    pub fn wait_inspect(&self, service: &str, format: &str, want: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = Command::new("docker")
                .args(["inspect", "--format", format, &self.container(service)])
                .output()
                .unwrap();
            last = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if last == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("{service}: {format} is {last:?}, not {want:?}, after {secs} s");
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new(repo_root().join("testbed/down-stack.sh"))
                .arg(&self.dir)
                .output();
        }
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// One hoist run: exit code and both streams.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The last JSON line of stdout (the summary), with every line checked to be JSON.
    pub fn summary(&self) -> serde_json::Value {
        let lines: Vec<serde_json::Value> = self
            .stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{self:?}"))
            })
            .collect();
        let last = lines
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("no JSON output: {self:?}"));
        assert_eq!(
            last["type"], "summary",
            "last line is not the summary: {self:?}"
        );
        last
    }

    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// No Rust panic or backtrace leaked to the user.
    pub fn assert_no_panic(&self) {
        for text in [&self.stdout, &self.stderr] {
            assert!(!text.contains("panicked"), "hoist panicked: {self:?}");
            assert!(
                !text.to_lowercase().contains("backtrace"),
                "a backtrace leaked: {self:?}"
            );
        }
    }
}

/// A throwaway database container from the test bed's images, removed on drop.
pub struct DbContainer {
    pub name: String,
    pub ip: String,
}

impl DbContainer {
    /// Starts `image` with `env` and waits until `ready` (a command run inside) succeeds.
    pub fn start(tag: &str, image: &str, env: &[(&str, &str)], ready: &[&str]) -> DbContainer {
        let name = unique_name(tag);
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--name", &name]);
        for (k, v) in env {
            cmd.arg("-e").arg(format!("{k}={v}"));
        }
        let out = cmd.arg(image).output().unwrap();
        assert!(
            out.status.success(),
            "docker run {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut container = DbContainer {
            name,
            ip: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new("docker")
                .arg("exec")
                .arg(&container.name)
                .args(ready)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{image} did not become ready in 60 s"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        let out = Command::new("docker")
            .args([
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &container.name,
            ])
            .output()
            .unwrap();
        container.ip = String::from_utf8_lossy(&out.stdout).trim().to_string();
        container
    }
}

impl Drop for DbContainer {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

impl TestStack {
    /// Like `start`, with the fixture's user uploads `upload_mb` MB in all (new-stack.sh's
    /// HOIST_FIXTURE_UPLOAD_MB): a smaller stack for tests that upgrade or back up many times.
    pub fn start_sized(tag: &str, version: &str, upload_mb: u32) -> TestStack {
        TestStack::new_stack(tag, version, Some(upload_mb), ImageUse::shared())
    }

    /// The value of `key` in the stack's `.env` (quotes removed).
    pub fn env_value(&self, key: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(".env")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
            .unwrap_or_else(|| panic!("{key} is not in .env"))
    }

    /// A hoist command on this stack, not started (for tests that kill it or read it as it runs).
    pub fn hoist_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.arg("-C")
            .arg(&self.dir)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(args);
        cmd
    }
}

/// `docker inspect --format FORMAT CONTAINER`, trimmed ("" when it fails).
pub fn inspect(container: &str, format: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "--format", format, container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker exec CONTAINER ARGS...`, which must succeed; its stdout, trimmed.
pub fn docker_exec(container: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("exec")
        .arg(container)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "docker exec {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `sql` in the fixture's PostgreSQL (user and database `specivo`) as the app would;
/// psql's output, trimmed.
pub fn fixture_sql(stack: &TestStack, sql: &str) -> String {
    docker_exec(
        &stack.container("db"),
        &["psql", "-U", "specivo", "-d", "specivo", "-tAc", sql],
    )
}

/// The password of the app's user in `mariadb_stack`'s database `app`.
pub const MARIADB_APP_PASSWORD: &str = "app-Pw-2";

/// A running stack of the bed's MariaDB (database `app`, user `app`) and the app's `beat`
/// service at 0.1.10, which does not use it: a MariaDB stack hoist upgrades and reads.
pub fn mariadb_stack(tag: &str) -> TestStack {
    TestStack::custom(
        tag,
        &[
            (
                "compose.yaml",
                "services:\n  db:\n    image: 127.0.0.1:5000/mariadb:10.11\n    environment:\n      MARIADB_ROOT_PASSWORD: ${ROOT_PW}\n      MARIADB_DATABASE: app\n      MARIADB_USER: app\n      MARIADB_PASSWORD: ${APP_PW}\n    healthcheck:\n      test: [\"CMD-SHELL\", \"mariadb -uapp -p$$MARIADB_PASSWORD -h127.0.0.1 app -e 'SELECT 1'\"]\n      interval: 1s\n      retries: 60\n  app:\n    image: 127.0.0.1:5000/specivo/specivo:${APP_VERSION:-latest}\n    command: [\"beat\"]\n    depends_on:\n      db:\n        condition: service_healthy\n",
            ),
            (
                ".env",
                &format!("APP_VERSION=0.1.10\nROOT_PW=root-Pw-1\nAPP_PW={MARIADB_APP_PASSWORD}\n"),
            ),
        ],
    )
}

/// The fixture's `.env` at `version` on `port`, its secrets named after `tag`.
pub fn fixture_env(version: &str, port: u16, tag: &str) -> String {
    std::fs::read_to_string(repo_root().join("testbed/stack/env.template"))
        .unwrap()
        .replace("@VERSION@", version)
        .replace("@PORT@", &port.to_string())
        .replace("@DBPASS@", &format!("db-{tag}-secret"))
        .replace("@SECRET@", &format!("sk-{tag}-secret"))
}

/// Removes `reference` from the engine so that the next use pulls it again; `-f` untags it even
/// where a stopped container of another stack still refers to it. Fails the test if it stays.
pub fn remove_image(reference: &str) {
    let id = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let rmi = Command::new("docker")
        .args(["rmi", "-f", reference])
        .output()
        .unwrap();
    assert!(rmi.status.success(), "docker rmi -f {reference}: {rmi:?}");
    let inspect = Command::new("docker")
        .args(["image", "inspect", reference])
        .output()
        .unwrap();
    assert!(!inspect.status.success(), "{reference} is still here");
    // Another tag of the same image keeps its layers here, and a download count would see
    // none to fetch: a test that tags images must do so holding `images_in_use()`.
    if !id.is_empty() {
        let repository = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
        let others = Command::new("docker")
            .args([
                "images",
                "--no-trunc",
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}}",
                "--filter",
                &format!("reference={repository}:*"),
            ])
            .output()
            .unwrap();
        let others: Vec<String> = String::from_utf8_lossy(&others.stdout)
            .lines()
            .filter(|l| l.ends_with(&id))
            .map(str::to_string)
            .collect();
        assert!(
            others.is_empty(),
            "{reference} was removed but the same image is still here as {others:?}"
        );
    }
}

/// Every regular file under `root` (symlinks not followed), sorted.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The database as `hoist status` reads it: its schema revision and table -> rows.
pub fn db_state(stack: &TestStack) -> (String, std::collections::BTreeMap<String, u64>) {
    let s = stack.hoist(&["status", "--json"]).summary();
    let db = &s["database"];
    let tables = db["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    (db["revision"].as_str().unwrap_or("").to_string(), tables)
}

/// A new issue in the fixture app, as a user writes one.
pub fn post_issue(stack: &TestStack, title: &str) {
    let out = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "--data",
            title,
            &format!("http://127.0.0.1:{}/api/issues", stack.port),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "POST /api/issues failed");
}

/// The user's files under a data directory with their content: every file but those the
/// fixture's worker rewrites by itself (its heartbeat ticks).
pub fn user_files(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|p| (p.strip_prefix(dir).unwrap().to_path_buf(), p))
        .filter(|(rel, _)| !rel.starts_with("worker"))
        .map(|(rel, p)| (rel, std::fs::read(p).unwrap()))
        .collect()
}

/// The release the stack's `/health/ready` reports when it answers 200 ("" otherwise).
pub fn ready_version(stack: &TestStack) -> String {
    let out = Command::new("curl")
        .args([
            "-sf",
            &format!("http://127.0.0.1:{}/health/ready", stack.port),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["version"].as_str().unwrap_or("").to_string()
}

/// The commit this checkout is at, as build.rs names it in `hoist --version`.
pub fn head_commit() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
