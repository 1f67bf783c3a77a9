//! A stack deployed to Docker Swarm (`docker stack deploy`) on the test bed: a single-node Swarm
//! (`docker swarm init --advertise-addr 127.0.0.1`, left again at the end when this test made
//! it), the fixture deployed from `testbed/stack/swarm.yaml`. hoist names the stack as one
//! (status: services, replicas, update policy, tasks per node), reads its database through the
//! task's container, backs it up, upgrades it through Swarm's service update (never `docker
//! compose up -d`, which would start a second copy of the app beside it), and after a release
//! that Swarm rolled back by its failure action restores the database and data the migration
//! changed; a restore of an older backup works the same way. The same file deployed twice is
//! said to be ambiguous and refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{TestStack, docker_available, free_port, repo_root};

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The engine in a Swarm for the test's length: made a manager if it is in none, and taken out
/// again at the end (only then: a Swarm that was there before is left as it was).
struct Swarm {
    made: bool,
}

impl Swarm {
    fn join() -> Swarm {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        let made = state == "inactive";
        if made {
            docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        }
        assert_eq!(
            docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"]),
            "true",
            "this engine must be a Swarm manager for the test"
        );
        Swarm { made }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if self.made {
            let _ = Command::new("docker")
                .args(["swarm", "leave", "--force"])
                .output();
        }
    }
}

/// A stack deployed from the directory's files with .env's variables in the environment, as a
/// user does it; removed with its volume at the end.
struct Deployed {
    name: String,
}

impl Deployed {
    fn deploy(stack: &TestStack, name: &str) -> Deployed {
        let env = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
        let mut cmd = Command::new("docker");
        cmd.args(["stack", "deploy", "-c", "compose.yaml", name])
            .current_dir(&stack.dir);
        for line in env.lines() {
            if let Some((k, v)) = line.split_once('=')
                && !k.starts_with('#')
            {
                cmd.env(k.trim(), v.trim().trim_matches(|c| c == '"' || c == '\''));
            }
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "docker stack deploy: {out:?}");
        Deployed { name: name.into() }
    }

    /// Until the service runs `want` ("1/1") or `secs` pass.
    fn wait_for(&self, service: &str, want: &str, secs: u64) {
        let started = Instant::now();
        let full = format!("{}_{service}", self.name);
        loop {
            let replicas = docker(&[
                "service",
                "ls",
                "--filter",
                &format!("name={full}"),
                "--format",
                "{{.Replicas}}",
            ]);
            if replicas == want {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(secs),
                "{full} runs {replicas}, not {want}, after {secs} s: {}",
                docker(&["service", "ps", "--no-trunc", &full])
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Deployed {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["stack", "rm", &self.name])
            .output();
        // The tasks' containers go after the command returns; the volume only once they have.
        let filter = format!("label=com.docker.stack.namespace={}", self.name);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let left = Command::new("docker")
                .args(["ps", "-aq", "--filter", &filter])
                .output()
                .map(|o| o.stdout.is_empty())
                .unwrap_or(true);
            if left {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        // A container on its way out still holds the volume for a moment.
        let volume = format!("{}_db-data", self.name);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let removed = Command::new("docker")
                .args(["volume", "rm", &volume])
                .output()
                .map(|o| {
                    o.status.success()
                        || String::from_utf8_lossy(&o.stderr).contains("no such volume")
                })
                .unwrap_or(true);
            if removed {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The fixture's directory with the Swarm variant of its compose file, not started.
fn swarm_files() -> TestStack {
    let stack = TestStack::files_only("swarm", "0.1.9");
    std::fs::copy(
        repo_root().join("testbed/stack/swarm.yaml"),
        stack.dir.join("compose.yaml"),
    )
    .unwrap();
    let data = stack.dir.join("specivo-data");
    std::fs::create_dir_all(data.join("uploads")).unwrap();
    std::fs::create_dir_all(data.join("meta")).unwrap();
    std::fs::write(data.join("meta/format"), "1\n").unwrap();
    std::fs::write(data.join("uploads/index.json"), "[]\n").unwrap();
    let port = free_port();
    let env = common::fixture_env("0.1.9", port, "swarm")
        + &format!("SPECIVO_DATA_DIR={}\n", data.display());
    std::fs::write(stack.dir.join(".env"), env).unwrap();
    stack
}

fn service_field(name: &str, format: &str) -> String {
    docker(&["service", "inspect", "--format", format, name])
}

/// No Compose container beside the stack: hoist never ran `docker compose up -d` here.
fn no_compose_container(stack: &TestStack) {
    assert_eq!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", stack.project),
        ]),
        "",
        "a Compose container was started beside the Swarm stack"
    );
}

#[test]
fn a_swarm_stack_is_backed_up_upgraded_and_rolled_back_through_swarm() {
    if !docker_available() {
        return;
    }
    let _swarm = Swarm::join();
    let stack = swarm_files();
    // The app ran under Compose before it moved to Swarm: its backup from then is here.
    let up = stack.compose_output(&["up", "-d", "--wait", "--quiet-pull"]);
    assert!(up.status.success(), "{up:?}");
    let backup = stack.hoist(&["backup", "--json"]);
    assert_eq!(backup.code, 0, "{backup:?}");
    let compose_era_backup = backup.summary()["backup"].as_str().unwrap().to_string();
    let down = stack.compose_output(&["down", "-v"]);
    assert!(down.status.success(), "{down:?}");
    let name = format!("hs{}", std::process::id());
    let deployed = Deployed::deploy(&stack, &name);
    deployed.wait_for("api", "1/1", 180);
    let api = format!("{name}_api");
    let healthcheck = service_field(
        &api,
        "{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}",
    );
    assert!(healthcheck.contains("/health"), "{healthcheck}");

    // Status: the stack, its services with replicas, update policy and tasks on the node, and
    // the database read through its task's container.
    let status = stack.hoist(&["status"]);
    status.assert_no_panic();
    assert_eq!(status.code, 0, "{status:?}");
    assert!(
        status
            .stdout
            .contains(&format!("the files run as Swarm stack {name:?}")),
        "{status:?}"
    );
    assert!(status.stdout.contains("Services (Swarm)"), "{status:?}");
    assert!(status.stdout.contains("on failure rollback"), "{status:?}");
    assert!(
        !status
            .stdout
            .contains("no container of the app's services exists"),
        "{status:?}"
    );
    let s = stack.hoist(&["status", "--json"]).summary();
    assert_eq!(s["swarm"]["found"], "stack", "{s:#}");
    assert_eq!(s["swarm"]["name"], name.as_str(), "{s:#}");
    let services = s["swarm"]["services"].as_array().unwrap();
    assert_eq!(services.len(), 5, "{s:#}");
    let api_json = services.iter().find(|x| x["service"] == "api").unwrap();
    assert_eq!(
        (api_json["replicas"].as_u64(), api_json["running"].as_u64()),
        (Some(1), Some(1)),
        "{api_json:#}"
    );
    let task = &api_json["tasks"].as_array().unwrap()[0];
    assert!(!task["node"].as_str().unwrap().is_empty(), "{task:#}");
    assert_eq!(s["database"]["revision"], "0020", "{s:#}");

    // Another directory with the same files (another copy of the app, its own data path):
    // the stack holds its services too, but is not its stack, and nothing of it is touched.
    let other = swarm_files();
    let s = other.hoist(&["status", "--json"]).summary();
    assert_eq!(s["swarm"]["found"], "unclaimed", "{s:#}");
    let refused = other.hoist(&["upgrade", "--to", "0.1.10", "--yes"]);
    refused.assert_no_panic();
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(refused.stderr.contains("nothing ties"), "{refused:?}");
    assert!(
        service_field(&api, "{{.Spec.TaskTemplate.ContainerSpec.Image}}").contains("specivo:0.1.9")
    );

    // A service the user scaled to zero, and one removed from the stack: said in Swarm's
    // commands, never with `docker compose`, and the stack is still the files' stack.
    let worker = format!("{name}_worker");
    docker(&["service", "scale", "--detach", &format!("{worker}=0")]);
    let started = Instant::now();
    let check = loop {
        let check = stack.hoist(&["check"]);
        if check
            .stdout
            .contains(&format!("docker service scale {worker}=1"))
            || started.elapsed() > Duration::from_secs(60)
        {
            break check;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(check.code, 3, "{check:?}");
    assert!(
        check
            .stdout
            .contains(&format!("docker service scale {worker}=1")),
        "{check:?}"
    );
    assert!(!check.stdout.contains("(`docker compose up"), "{check:?}");
    docker(&["service", "rm", &worker]);
    let s = stack.hoist(&["status", "--json"]).summary();
    assert_eq!(s["swarm"]["found"], "stack", "{s:#}");
    let check = stack.hoist(&["check"]);
    assert!(
        check
            .stdout
            .contains(&format!("worker is not a service of Swarm stack {name}")),
        "{check:?}"
    );
    assert!(!check.stdout.contains("(`docker compose up"), "{check:?}");
    // Deployed again, as the sentence says: the worker is back (removed with the first).
    std::mem::forget(Deployed::deploy(&stack, &name));
    deployed.wait_for("worker", "1/1", 120);

    // Check passes, with the Swarm said and no advice to `docker compose up -d`.
    let check = stack.hoist(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains("Docker Swarm stack"), "{check:?}");
    assert!(!check.stdout.contains("start the stack"), "{check:?}");

    // A backup through the database task's container, with Swarm's commands in RESTORE.md.
    let b = stack.hoist(&["backup", "--json"]);
    assert_eq!(b.code, 0, "{b:?}");
    let dir = std::path::PathBuf::from(b.summary()["backup"].as_str().unwrap());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["swarm_stack"], name.as_str(), "{manifest:#}");
    assert!(dir.join("database.sql.gz").exists());
    let doc = std::fs::read_to_string(dir.join("RESTORE.md")).unwrap();
    assert!(
        doc.contains(&format!("docker service scale {name}_SERVICE=0")),
        "{doc}"
    );

    // A clean upgrade: Swarm updates the services; the spec keeps its healthcheck.
    let upgrade = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes", "--json"]);
    upgrade.assert_no_panic();
    assert_eq!(upgrade.code, 0, "{upgrade:?}");
    let image = service_field(&api, "{{.Spec.TaskTemplate.ContainerSpec.Image}}");
    assert!(image.contains("specivo:0.1.10"), "{image}");
    assert_eq!(
        service_field(
            &api,
            "{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}"
        ),
        healthcheck,
        "the update lost the service's healthcheck"
    );
    assert!(
        std::fs::read_to_string(stack.dir.join(".env"))
            .unwrap()
            .contains("SPECIVO_VERSION=0.1.10")
    );
    no_compose_container(&stack);

    // A release that migrates, then fails: Swarm rolls the api back by its failure action
    // (onto a schema its previous release cannot run on); hoist restores the database and the
    // data, and Swarm runs 0.1.10 again with its replicas.
    let failed = stack.hoist(&["upgrade", "--to", "0.1.13", "--yes", "--json"]);
    failed.assert_no_panic();
    assert_eq!(failed.code, 4, "{failed:?}");
    let f = failed.summary();
    assert_eq!(f["outcome"], "rolled_back", "{f:#}");
    assert!(
        f["failure"].as_str().unwrap().contains("Swarm rolled"),
        "{f:#}"
    );
    assert!(
        !f["error"]
            .as_str()
            .unwrap()
            .contains("docker compose up -d"),
        "{f:#}"
    );
    assert_eq!(f["rollback"]["decision"], "restore", "{f:#}");
    assert_eq!(f["rollback"]["schema_after"], "0020", "{f:#}");
    for service in ["api", "worker", "beat"] {
        let full = format!("{name}_{service}");
        assert!(
            service_field(&full, "{{.Spec.TaskTemplate.ContainerSpec.Image}}")
                .contains("specivo:0.1.10"),
            "{full}"
        );
        assert!(
            !service_field(&full, "{{json .Spec.Labels}}").contains("io.hoist"),
            "{full} kept hoist's label"
        );
        assert!(
            !service_field(&full, "{{json .Spec.TaskTemplate.Placement}}").contains("io.hoist"),
            "{full} kept hoist's placement constraint"
        );
    }
    for service in ["api", "worker"] {
        let full = format!("{name}_{service}");
        assert_eq!(
            service_field(&full, "{{.Spec.Mode.Replicated.Replicas}}"),
            "1"
        );
    }
    // The global beat was stopped for the restore and runs again, one task on the node.
    deployed.wait_for("beat", "1/1", 30);
    deployed.wait_for("api", "1/1", 30);
    let s = stack.hoist(&["status", "--json"]).summary();
    assert_eq!(s["database"]["revision"], "0020", "{s:#}");
    no_compose_container(&stack);

    // A restore of the backup taken under Compose, at 0.1.9: the same way through Swarm.
    let restore = stack.hoist(&["restore", &compose_era_backup, "--yes", "--json"]);
    restore.assert_no_panic();
    assert_eq!(restore.code, 0, "{restore:?}");
    assert!(
        service_field(&api, "{{.Spec.TaskTemplate.ContainerSpec.Image}}").contains("specivo:0.1.9")
    );
    deployed.wait_for("api", "1/1", 30);
    no_compose_container(&stack);

    // The wizard's home says it first, shows the services as Swarm runs them.
    let mut w = common::pty::Wizard::start(&stack, 24, 80);
    w.wait_for("Docker Swarm stack", 30);
    let home = w.contents();
    assert!(!home.contains("missing"), "{home}");
    w.keys("q");
    assert_eq!(w.exit_code(10), 0);

    // The same file deployed a second time: which stack is this directory's cannot be told.
    let twice = Deployed::deploy(&stack, &format!("{name}b"));
    // Its database's volume exists before it is removed again (or it would outlive the test).
    twice.wait_for("db", "1/1", 120);
    let s = stack.hoist(&["status", "--json"]).summary();
    assert_eq!(s["swarm"]["found"], "several", "{s:#}");
    let upgrade = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes"]);
    assert_eq!(upgrade.code, 3, "{upgrade:?}");
    assert!(
        upgrade.stderr.contains("several Docker Swarm stacks"),
        "{upgrade:?}"
    );
    let restore = stack.hoist(&["restore", &compose_era_backup, "--yes", "--json"]);
    assert_eq!(restore.code, 3, "{restore:?}");
    drop(twice);
    drop(deployed);
}
