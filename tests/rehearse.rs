//! `hoist upgrade --rehearse` on the test bed: the upgrade tried first on a throwaway copy (the
//! database loaded from the new backup, the data copied, no ports, its own internal network).
//! A broken release and a migration that fails half way stop before anything of the real app
//! changed; a good one proceeds; a hoist killed outright during a rehearsal leaves nothing the
//! next one does not remove.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestStack, db_state, docker_available};

/// Everything in Docker labelled as a rehearsal of `project`: containers, volumes, networks.
fn rehearsal_things(project: &str) -> Vec<String> {
    let filter = format!("label=io.hoist.rehearsal-of={project}");
    let mut out = Vec::new();
    for args in [
        vec!["ps", "-aq", "--filter", &filter],
        vec!["volume", "ls", "-q", "--filter", &filter],
        vec!["network", "ls", "-q", "--filter", &filter],
    ] {
        let o = Command::new("docker").args(&args).output().unwrap();
        assert!(o.status.success(), "docker {args:?}: {o:?}");
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| format!("{} {l}", args[0])),
        );
    }
    out
}

/// The real app as it is: its containers' ids, `.env`, and the database's revision and rows.
fn real_app(stack: &TestStack) -> (Vec<String>, String, String, Vec<(String, u64)>) {
    let ids = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={}", stack.project),
        ])
        .output()
        .unwrap();
    let mut ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    let env = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    let (revision, rows) = db_state(stack);
    (ids, env, revision, rows.into_iter().collect())
}

#[test]
fn a_good_release_rehearses_then_upgrades_on_the_go_and_leaves_no_copy() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("rehgood", "0.1.11");
    let before = real_app(&stack);

    // Without --yes: the rehearsal runs, then the real upgrade waits for a go.
    let asked = stack.hoist(&["upgrade", "--to", "0.1.12", "--rehearse", "--json"]);
    asked.assert_no_panic();
    assert_eq!(asked.code, 3, "{asked:?}");
    let s = asked.summary();
    assert_eq!(s["rehearsal"]["passed"], true, "{s:#}");
    assert!(
        s["error"].as_str().unwrap().contains("was not confirmed"),
        "{s:#}"
    );
    // 0.1.12's migrations ran on the copy, reached 0022, and were seen.
    assert_eq!(s["rehearsal"]["hops"][0]["schema_after"], "0022", "{s:#}");
    assert!(
        !s["rehearsal"]["migrations"].as_array().unwrap().is_empty(),
        "{s:#}"
    );
    assert_eq!(s["rehearsal"]["removed"], true, "{s:#}");
    assert_eq!(real_app(&stack), before, "the real app changed");
    assert_eq!(rehearsal_things(&stack.project), Vec::<String>::new());

    // With --yes: rehearsal, then the real upgrade.
    let run = stack.hoist(&["upgrade", "--to", "0.1.12", "--rehearse", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    let s = run.summary();
    assert_eq!(s["rehearsal"]["passed"], true, "{s:#}");
    assert_eq!(stack.health_version(), "0.1.12");
    // The rehearsal came before the pin: nothing of the real app moved until it passed.
    let steps: Vec<String> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["name"].as_str().unwrap().to_string())
        .collect();
    let at = |name: &str| steps.iter().position(|s| s == name).unwrap();
    assert!(
        at("backup") < at("rehearse") && at("rehearse") < at("pin"),
        "{steps:?}"
    );
    assert_eq!(rehearsal_things(&stack.project), Vec::<String>::new());
    // No port of the copy was ever published, and the real app kept its own.
    assert_eq!(db_state(&stack).0, "0022");
}

/// A release that fails on the copy stops the run with the real app as it was.
fn fails_on_the_copy(tag: &str, to: &str, words: &str) {
    let stack = TestStack::start(tag, "0.1.9");
    let before = real_app(&stack);
    let run = stack.hoist(&[
        "upgrade",
        "--to",
        to,
        "--path",
        "direct",
        "--rehearse",
        "--yes",
        "--json",
    ]);
    run.assert_no_panic();
    assert_eq!(run.code, 1, "{run:?}");
    let s = run.summary();
    assert_eq!(s["rehearsal"]["passed"], false, "{s:#}");
    assert_eq!(s["rehearsal"]["by_the_release"], true, "{s:#}");
    // The migrations it ran on the copy are the evidence of how far it got.
    let migrations = s["rehearsal"]["migrations"].as_array().unwrap();
    assert!(
        migrations.iter().any(|m| m["to"] == "0022"),
        "{migrations:?}"
    );
    assert_eq!(s["changed"], serde_json::Value::Null, "{s:#}");
    let sentence = s["error"].as_str().unwrap();
    assert!(sentence.contains(words), "{sentence}");
    assert!(
        sentence.contains("Nothing of the real app was changed"),
        "{sentence}"
    );
    // Same containers, same .env, same schema and rows; no pin, restart or rollback ran.
    assert_eq!(real_app(&stack), before, "the real app changed");
    assert_eq!(stack.health_version(), "0.1.9");
    for step in s["steps"].as_array().unwrap() {
        assert!(
            !["pin", "restart", "stop", "restore_data"].contains(&step["name"].as_str().unwrap()),
            "{step}"
        );
    }
    assert_eq!(rehearsal_things(&stack.project), Vec::<String>::new());
}

#[test]
fn a_release_that_crash_loops_fails_on_the_copy_and_the_real_app_is_untouched() {
    if !docker_available() {
        return;
    }
    fails_on_the_copy("rehbroken", "0.1.13", "crash-looping");
}

#[test]
fn a_migration_that_fails_half_way_fails_on_the_copy_and_the_real_app_is_untouched() {
    if !docker_available() {
        return;
    }
    fails_on_the_copy("rehhalf", "0.1.14", "the app did not come up on 0.1.14");
}

/// Starts `upgrade --to 0.1.10 --rehearse --yes --json` and kills it (SIGKILL) as soon as
/// `ready` says so, polled every 100 ms (lines stop while the data is copied).
fn kill_during_the_rehearsal(stack: &TestStack, ready: &dyn Fn() -> bool) {
    let mut child = stack
        .hoist_command(&["upgrade", "--to", "0.1.10", "--rehearse", "--yes", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let drain = std::thread::spawn(move || BufReader::new(stdout).lines().count());
    let deadline = Instant::now() + Duration::from_secs(180);
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "hoist ended before the moment of the kill"
        );
        assert!(
            Instant::now() < deadline,
            "the moment of the kill never came"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drain.join().unwrap();
    assert!(
        !rehearsal_things(&stack.project).is_empty(),
        "the kill came too late: nothing of the rehearsal was there"
    );
}

/// Whether a container labelled `label` and as a rehearsal of `project` exists (running with
/// `running`).
fn labelled(project: &str, label: &str, running: bool) -> bool {
    let of = format!("label=io.hoist.rehearsal-of={project}");
    let label = format!("label={label}");
    let mut args = vec!["ps", "-q", "--filter", &of, "--filter", &label];
    if !running {
        args.insert(1, "-a");
    }
    let out = Command::new("docker").args(&args).output().unwrap();
    !out.stdout.is_empty()
}

/// What a killed rehearsal left is named by status and removed by the next upgrade, helper
/// containers and copies of the data included.
fn next_upgrade_removes_it(stack: &TestStack) {
    let status = stack.hoist(&["status", "--json"]);
    let rehearsals = status.summary()["rehearsals"].clone();
    assert_eq!(rehearsals.as_array().unwrap().len(), 1, "{rehearsals}");
    let human = stack.hoist(&["status"]);
    assert!(
        human
            .stdout
            .contains("a rehearsal of this project is in Docker"),
        "{human:?}"
    );
    // Going on must rehearse again, not skip it.
    if human.stdout.contains("continue: hoist upgrade") {
        assert!(human.stdout.contains("--rehearse"), "{human:?}");
    }
    // The real app was never touched.
    assert_eq!(stack.health_version(), "0.1.9");
    assert_eq!(stack.env_value("SPECIVO_VERSION"), "0.1.9");

    let run = stack.hoist(&["upgrade", "--to", "0.1.10", "--yes"]);
    run.assert_no_panic();
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("an earlier hoist left behind")
            || run.stderr.contains("an earlier hoist left behind"),
        "{run:?}"
    );
    assert!(
        !run.stdout.contains("could not be removed")
            && !run.stderr.contains("could not be removed"),
        "{run:?}"
    );
    assert_eq!(rehearsal_things(&stack.project), Vec::<String>::new());
    let left = std::fs::read_dir(stack.state_dir.join("rehearsals"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "the rehearsal's files were left in the state dir");
}

#[test]
fn a_rehearsal_killed_outright_is_named_by_status_and_removed_by_the_next_upgrade() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("rehkill", "0.1.9");
    kill_during_the_rehearsal(&stack, &|| {
        labelled(&stack.project, "com.docker.compose.project", true)
    });
    next_upgrade_removes_it(&stack);
}

#[test]
fn a_rehearsal_killed_while_it_copies_the_data_leaves_nothing_the_next_upgrade_keeps() {
    if !docker_available() {
        return;
    }
    // Uploads big enough that the copy is still running at the kill.
    let stack = TestStack::start_sized("rehcopy", "0.1.9", 400);
    // The copy's helper container exists: it holds the half-made copy of the data.
    kill_during_the_rehearsal(&stack, &|| {
        labelled(&stack.project, "io.hoist.helper=rehearsal-copy", false)
    });
    next_upgrade_removes_it(&stack);
}

#[test]
fn a_stack_that_cannot_be_rehearsed_is_refused_before_the_backup() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("rehnone", "0.1.9");
    let compose = stack.dir.join("compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    std::fs::write(&compose, format!("x-hoist:\n  database: none\n{text}")).unwrap();
    let db_started = common::inspect(&stack.container("db"), "{{.State.StartedAt}}");
    let run = stack.hoist(&["upgrade", "--to", "0.1.10", "--rehearse", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{run:?}");
    let s = run.summary();
    let error = s["error"].as_str().unwrap();
    assert!(error.contains("the rehearsal cannot be made"), "{error}");
    assert!(error.contains("database: none"), "{error}");
    // Nothing was stopped for a backup, and none was taken.
    assert_eq!(
        common::inspect(&stack.container("db"), "{{.State.StartedAt}}"),
        db_started
    );
    assert!(s.get("backup").is_none(), "{s:#}");
    assert_eq!(stack.env_value("SPECIVO_VERSION"), "0.1.9");
}

/// In the wizard at 80x24: the plan offers the rehearsal with its cost (0.1.12 never ran here),
/// `t` takes it, the copy passes, the second question comes with the copy's checks in sight,
/// and `y` upgrades the real app. The real app is untouched until that `y`.
#[test]
fn in_the_wizard_the_plan_offers_a_rehearsal_and_t_takes_it() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("rehwiz", "0.1.11");
    let before = real_app(&stack);
    let mut w = common::pty::Wizard::start(&stack, 24, 80);
    w.wait_for("next step (recommended)", 30);
    w.keys("\r");
    w.wait_for("t try on a copy first", 60);
    let plan = w.contents();
    assert!(plan.contains("0.1.12 has not run here before"), "{plan}");
    assert!(plan.contains("MB of free space on"), "{plan}");
    w.keys("t");
    w.wait_for("The rehearsal passed. Upgrade", 300);
    let asked = w.contents();
    assert!(asked.contains("Checked on the copy:"), "{asked}");
    assert!(asked.contains("ok containers"), "{asked}");
    assert_eq!(
        real_app(&stack),
        before,
        "the real app changed before the go"
    );
    assert_eq!(rehearsal_things(&stack.project), Vec::<String>::new());
    w.keys("y");
    w.wait_for("runs 0.1.12 now", 300);
    assert_eq!(stack.health_version(), "0.1.12");
    w.keys("q");
    assert_eq!(w.exit_code(10), 0);
}

/// In the wizard: a release that crash-loops fails on the copy; the end says the real app was
/// not upgraded, with the copy's last lines, and no rollback is offered (nothing to undo).
#[test]
fn in_the_wizard_a_release_caught_on_the_copy_leaves_the_app_as_it_was() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("rehwizfail", "0.1.12");
    let before = real_app(&stack);
    let mut w = common::pty::Wizard::start(&stack, 24, 80);
    w.wait_for("next step (recommended)", 30);
    w.keys("\r");
    w.wait_for("t try on a copy first", 60);
    w.keys("t");
    w.wait_for("Not upgraded: 0.1.13 failed on a throwaway copy", 300);
    w.wait_for("Enter home", 10);
    let end = w.contents();
    assert!(end.contains("Nothing of the real app was changed"), "{end}");
    assert!(!end.contains("Roll back now?"), "{end}");
    assert_eq!(real_app(&stack), before, "the real app changed");
    assert_eq!(rehearsal_things(&stack.project), Vec::<String>::new());
    w.keys("q");
    assert_eq!(w.exit_code(10), 1);
}

/// The app's own checks (`checks:` in hoist.yaml) run on the copy: a command in `api` runs in
/// the copy's container (it holds the app to 0.1.11, so it passes on the real app before the
/// upgrade and fails on the copy's 0.1.12: the rehearsal fails, the real app is untouched).
/// A metrics rule is not run on the copy, and that is said.
#[test]
fn the_apps_own_checks_run_on_the_copy() {
    if !docker_available() {
        return;
    }
    let stack = TestStack::start("rehchecks", "0.1.11");
    std::fs::write(
        stack.dir.join("hoist.yaml"),
        "checks:\n  - exec: [sh, -c, 'echo release $$SPECIVO_RELEASE']\n    service: api\n    expect_output: '^release 0\\.1\\.11$'\n",
    )
    .unwrap();
    let before = real_app(&stack);
    let run = stack.hoist(&["upgrade", "--to", "0.1.12", "--rehearse", "--yes", "--json"]);
    run.assert_no_panic();
    assert_eq!(run.code, 1, "{run:?}");
    let s = run.summary();
    assert_eq!(s["rehearsal"]["by_the_release"], true, "{s:#}");
    let failure = s["rehearsal"]["failure"].as_str().unwrap();
    assert!(failure.contains("did not verify on the copy"), "{failure}");
    assert!(failure.contains("echo release"), "{failure}");
    let checks: Vec<serde_json::Value> = run
        .json_lines()
        .into_iter()
        .filter(|l| l["type"] == "check")
        .collect();
    assert!(
        checks.iter().any(|c| c["what"]
            .as_str()
            .is_some_and(|w| w.starts_with("rehearsal: ") && w.ends_with(" on the copy"))
            && c["ok"] == false),
        "{checks:#?}"
    );
    assert_eq!(real_app(&stack), before, "the real app changed");
    assert_eq!(rehearsal_things(&stack.project), Vec::<String>::new());
}
