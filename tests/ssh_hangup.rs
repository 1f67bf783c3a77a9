//! A dropped SSH session through a real sshd on the test bed. The user's terminal (a PTY here)
//! runs `ssh`; sshd gives hoist's wizard a terminal of its own on the server. The client is then
//! killed outright, as when a laptop sleeps or the network goes: the connection ends, sshd
//! closes hoist's terminal and the kernel hangs it up. hoist must carry the run to its safe point
//! on its own, as `tests/hangup.rs` checks with the terminal closed directly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pty::Wizard;
use common::{TestStack, docker_available};
use portable_pty::CommandBuilder;

/// An sshd of the test's own on 127.0.0.1, with a fresh host key and one client key for root.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Sshd {
    fn start() -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("hoist-sshd-")
            .tempdir()
            .unwrap();
        let path = |name: &str| dir.path().join(name);
        for key in ["host_key", "client_key"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(path(key))
                .output()
                .unwrap();
            assert!(out.status.success(), "ssh-keygen: {out:?}");
        }
        std::fs::copy(path("client_key.pub"), path("authorized_keys")).unwrap();
        // sshd's privilege separation directory (a package install makes it at boot).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
            path("host_key").display(),
            path("authorized_keys").display(),
            path("sshd.pid").display(),
        );
        std::fs::write(path("sshd_config"), config).unwrap();
        // sshd insists on an absolute path (it re-executes itself per connection).
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path("sshd.log")).unwrap())
            .spawn()
            .expect("sshd (openssh-server; testbed/up.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                std::fs::read_to_string(path("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Sshd { dir, port, child }
    }

    /// `ssh -tt root@127.0.0.1 REMOTE`'s arguments.
    fn args(&self, remote: &str) -> Vec<String> {
        let mut args: Vec<String> = vec!["-tt".into(), "-i".into()];
        args.push(self.dir.path().join("client_key").display().to_string());
        args.extend(["-p".into(), self.port.to_string()]);
        for option in [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "LogLevel=ERROR",
        ] {
            args.extend(["-o".into(), option.into()]);
        }
        args.extend(["root@127.0.0.1".into(), remote.into()]);
        args
    }

    /// The ssh client, to run in the user's terminal.
    fn client(&self, remote: &str) -> CommandBuilder {
        let mut cmd = CommandBuilder::new("ssh");
        cmd.args(self.args(remote));
        cmd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The remote command that starts the wizard on `stack`.
fn remote_wizard(stack: &TestStack) -> String {
    let hoist = PathBuf::from(env!("CARGO_BIN_EXE_hoist"));
    format!(
        "exec env NO_COLOR=1 {} -C {} --state-dir {}",
        hoist.display(),
        stack.dir.display(),
        stack.state_dir.display()
    )
}

/// The wizard on `stack`, on the server's side of an SSH session; the next version chosen and
/// the plan confirmed as a user would.
fn wizard_over_ssh(sshd: &Sshd, stack: &TestStack, next: &str) -> Wizard {
    let mut w = Wizard::start_command(sshd.client(&remote_wizard(stack)), 30, 100);
    w.upgrade_to_next(next, 60);
    w
}

/// Kills the ssh client outright: the connection ends with no word to the server.
fn drop_connection(w: &mut Wizard) {
    let status = Command::new("kill")
        .args(["-KILL", &w.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    w.hang_up();
}

/// The remote wizard's exit code, from its log, once no hoist runs on the stack any more.
fn remote_exit(stack: &TestStack, secs: u64) -> i64 {
    let log = || std::fs::read_to_string(stack.state_dir.join("hoist.log")).unwrap_or_default();
    let state = stack.state_dir.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let running = Command::new("pgrep")
            .args(["-f", &format!("--state-dir {state}")])
            .output()
            .unwrap();
        let finished = log().lines().rev().find_map(|l| {
            l.split("wizard finished exit_code=")
                .nth(1)
                .map(str::to_string)
        });
        if let (false, Some(code)) = (running.status.success(), finished) {
            return code.trim().parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the wizard did not end after its session dropped; its log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn attention(stack: &TestStack) -> serde_json::Value {
    stack.hoist(&["status", "--json"]).summary()["attention"].clone()
}

#[test]
fn a_dropped_ssh_session_during_the_backup_stops_before_any_change() {
    if !docker_available() {
        return;
    }
    let sshd = Sshd::start();
    let stack = TestStack::start("sshbackup", "0.1.9");
    let env_before = std::fs::read(stack.dir.join(".env")).unwrap();
    let mut w = wizard_over_ssh(&sshd, &stack, "0.1.10");
    w.wait_for("writing", 60);
    drop_connection(&mut w);
    assert_eq!(remote_exit(&stack, 180), 3);
    assert_eq!(std::fs::read(stack.dir.join(".env")).unwrap(), env_before);
    assert_eq!(stack.health_version(), "0.1.9");
    let a = attention(&stack);
    assert_eq!(a["state"], "stopped", "{a:#}");
    assert_eq!(a["choices"], serde_json::json!(["continue", "show"]));
    let log = std::fs::read_to_string(stack.state_dir.join("hoist.log")).unwrap();
    assert!(log.contains("the wizard lost its terminal"), "{log}");
}

#[test]
fn a_dropped_ssh_session_during_the_restart_lets_the_upgrade_finish() {
    if !docker_available() {
        return;
    }
    let sshd = Sshd::start();
    let stack = TestStack::start("sshrestart", "0.1.9");
    let mut w = wizard_over_ssh(&sshd, &stack, "0.1.10");
    w.wait_for("Replacing the app's containers", 120);
    drop_connection(&mut w);
    assert_eq!(remote_exit(&stack, 300), 0);
    assert_eq!(stack.health_version(), "0.1.10");
    let history = stack.hoist(&["history", "--json"]).summary();
    assert_eq!(history["runs"][0]["outcome"], "succeeded", "{history:#}");
    assert!(attention(&stack).is_null());
}

#[test]
fn a_terminal_of_no_size_is_refused_with_what_to_use_instead() {
    // `ssh -tt` fed from a pipe: sshd makes a terminal, with no size (0x0). The wizard would
    // take keys while showing nothing.
    let sshd = Sshd::start();
    let stack = TestStack::files_only("sshsize", "0.1.9");
    let out = Command::new("ssh")
        .args(sshd.args(&remote_wizard(&stack)))
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text.contains("reports no size (0x0)") && text.contains("hoist upgrade --to VERSION --yes"),
        "{text}"
    );
    // Refused before anything: no lock, no journal, no log of a run.
    assert!(!stack.state_dir.join("journal.sqlite3").exists());
}
