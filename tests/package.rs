//! The release files of scripts/package.sh, installed where a user would: the .deb with apt in a
//! fresh Debian 12, the static binary in a Debian 11 (older than the machine that built it),
//! each reading a real stack through the host's Docker socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{TestStack, docker_available, output_within, repo_root};

/// Two release builds from nothing on 2 cores, with fat LTO.
const PACKAGE_LIMIT: Duration = Duration::from_secs(40 * 60);

/// scripts/package.sh run once for this test binary: its output directory.
fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let out = repo_root().join("target/package-test");
        let _ = std::fs::remove_dir_all(&out);
        let mut cmd = Command::new(repo_root().join("scripts/package.sh"));
        cmd.args(["--arch", "all", "--out"]).arg(&out);
        let run = output_within(cmd, PACKAGE_LIMIT);
        assert!(
            run.status.success(),
            "scripts/package.sh failed:\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        out
    })
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The docker CLI and the Compose plugin of the host, to mount into a container as a server
/// with Docker installed has them.
fn host_docker_cli() -> (PathBuf, PathBuf) {
    let docker = Command::new("sh")
        .args(["-c", "command -v docker"])
        .output()
        .unwrap();
    let docker = PathBuf::from(String::from_utf8(docker.stdout).unwrap().trim());
    let info = Command::new("docker")
        .args(["info", "--format", "{{json .ClientInfo.Plugins}}"])
        .output()
        .unwrap();
    let plugins: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let compose = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["Name"] == "compose")
        .map(|p| PathBuf::from(p["Path"].as_str().unwrap()))
        .expect("the host has the Compose plugin");
    (docker, compose)
}

/// `script` run by sh in a fresh container of `image` on the host's network, with the Docker
/// socket, the stack's directory and dist/ mounted, plus `extra` mounts.
fn in_container(image: &str, stack: &TestStack, extra: &[String], script: &str) -> (i32, String) {
    let mut cmd = Command::new("docker");
    cmd.args(["run", "--rm", "--network", "host"])
        .args(["-v", "/var/run/docker.sock:/var/run/docker.sock"])
        .arg("-v")
        .arg(format!("{}:/dist:ro", dist().display()))
        .arg("-v")
        .arg(format!("{0}:{0}", stack.dir.parent().unwrap().display()))
        .args(extra)
        .args([image, "sh", "-ec", script]);
    let out = output_within(cmd, Duration::from_secs(300));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The summary line of a `--json` run printed among other output.
fn summary_in(text: &str) -> serde_json::Value {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|v| v["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary line in:\n{text}"))
}

#[test]
fn the_deb_installs_with_apt_on_a_fresh_debian_and_reads_a_stack() {
    if !docker_available() {
        return;
    }
    let debs: Vec<_> = std::fs::read_dir(dist())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".deb"))
        .collect();
    let amd64 = format!("hoist_{}-1_amd64.deb", version());
    assert!(debs.contains(&amd64), "{debs:?}");
    assert!(
        debs.contains(&format!("hoist_{}-1_arm64.deb", version())),
        "{debs:?}"
    );
    let stack = TestStack::start("deb", "0.1.9");
    let (docker, compose) = host_docker_cli();
    let mounts = [
        "-v".to_string(),
        format!("{}:/usr/local/bin/docker:ro", docker.display()),
        "-v".to_string(),
        format!(
            "{}:/usr/local/lib/docker/cli-plugins/docker-compose:ro",
            compose.display()
        ),
    ];
    let script = format!(
        r#"
        apt-get install -y -q /dist/{amd64} >/dev/null
        echo "version: $(hoist --version)"
        man -P cat hoist | sed 's/.\x08//g' | head -8
        for f in /usr/share/bash-completion/completions/hoist /usr/share/zsh/vendor-completions/_hoist \
                 /usr/share/fish/vendor_completions.d/hoist.fish /usr/share/doc/hoist/copyright; do
          test -s "$f" && echo "present: $f"
        done
        grep -q 'MIT License' /usr/share/doc/hoist/copyright && echo "license: MIT"
        hoist -C {dir} --state-dir /tmp/state status --json
        apt-get remove -y -q hoist >/dev/null
        test -e /usr/bin/hoist || test -e /usr/share/man/man1/hoist.1.gz || echo "removed"
        "#,
        dir = stack.dir.display()
    );
    let (code, out) = in_container("hoist-testbed/clean:bookworm", &stack, &mounts, &script);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "version: hoist {} (commit {})",
            version(),
            common::head_commit()
        )),
        "{out}"
    );
    // The man page rendered by man-db (its bold overstrikes taken out): NAME names the command.
    assert!(out.contains("NAME"), "{out}");
    // (Justified: words apart by one space or more.)
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("NAME hoist - Upgrade a self-hosted"),
        "{out}"
    );
    for f in [
        "bash-completion/completions/hoist",
        "zsh/vendor-completions/_hoist",
        "fish/vendor_completions.d/hoist.fish",
        "doc/hoist/copyright",
    ] {
        assert!(
            out.contains(&format!("present: /usr/share/{f}")),
            "{f}: {out}"
        );
    }
    assert!(out.contains("license: MIT"), "{out}");
    let s = summary_in(&out);
    assert_eq!(s["pinned"], "0.1.9", "{s:#}");
    assert_eq!(s["running_version"], "0.1.9", "{s:#}");
    assert_eq!(
        s["hoist"]["commit"],
        common::head_commit().as_str(),
        "{s:#}"
    );
    assert!(out.contains("removed"), "{out}");
}

#[test]
fn the_static_binary_runs_on_an_older_debian_as_it_is() {
    if !docker_available() {
        return;
    }
    let binary = format!("hoist-{}-x86_64-linux", version());
    let stack = TestStack::start("static", "0.1.9");
    let script = format!(
        r#"
        echo "glibc: $(ldd --version | head -1)"
        ldd /dist/{binary} || true
        echo "version: $(/dist/{binary} --version)"
        /dist/{binary} -C {dir} --state-dir /tmp/state status --json
        "#,
        dir = stack.dir.display()
    );
    let (code, out) = in_container("hoist-testbed/clean:bullseye", &stack, &[], &script);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("GLIBC 2.31"), "{out}");
    // No shared library, so no libc version to match.
    assert!(
        out.contains("not a dynamic executable") || out.contains("statically linked"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "version: hoist {} (commit {})",
            version(),
            common::head_commit()
        )),
        "{out}"
    );
    let s = summary_in(&out);
    assert_eq!(s["pinned"], "0.1.9", "{s:#}");
    assert_eq!(s["running_version"], "0.1.9", "{s:#}");
}

#[test]
fn the_files_match_their_checksums_and_are_stripped_static_binaries() {
    if !docker_available() {
        return;
    }
    let dir = dist();
    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let listed = String::from_utf8_lossy(&check.stdout);
    for arch in ["x86_64", "aarch64"] {
        let name = format!("hoist-{}-{arch}-linux", version());
        assert!(listed.contains(&format!("{name}: OK")), "{listed}");
        let file = Command::new("file")
            .arg("-b")
            .arg(dir.join(&name))
            .output()
            .unwrap();
        let what = String::from_utf8_lossy(&file.stdout);
        let machine = if arch == "x86_64" {
            "x86-64"
        } else {
            "ARM aarch64"
        };
        assert!(what.contains(machine), "{name}: {what}");
        assert!(what.contains("static"), "{name}: {what}");
        assert!(
            what.contains("stripped") && !what.contains("not stripped"),
            "{name}: {what}"
        );
    }
    // The ARM one runs too (under qemu's user-mode emulation), and says which hoist it is.
    let arm = Command::new("qemu-aarch64-static")
        .arg(dir.join(format!("hoist-{}-aarch64-linux", version())))
        .arg("--version")
        .output()
        .unwrap();
    assert!(arm.status.success(), "{arm:?}");
    assert_eq!(
        String::from_utf8_lossy(&arm.stdout).trim(),
        format!("hoist {} (commit {})", version(), common::head_commit())
    );
}
