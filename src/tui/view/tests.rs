//! Snapshots of every screen at 80x24 and at a wide 160x48, drawn from states built the way the
//! engine's events build them.
use std::collections::BTreeMap;

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{Theme, render};
use crate::rollback::plan::{Decision, Loss};
use crate::run::{Event, Question, Step};
use crate::tui::state::{Command, Key, Msg, State, update};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn draw(state: &State, (w, h): (u16, u16)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal
        .draw(|f| render(state, Theme { color: false }, f))
        .unwrap();
    terminal.backend().to_string()
}

fn snap(name: &str, state: &State) {
    for size in SIZES {
        insta::assert_snapshot!(format!("{name}_{}x{}", size.0, size.1), draw(state, size));
    }
}

fn engine(state: &mut State, e: Event) {
    update(state, Msg::Engine(e));
}

/// The engine asks (the reply is the loop's, not the state's).
fn ask(state: &mut State, question: Question) {
    let (reply, _) = crate::run::Reply::channel();
    engine(state, Event::Ask { question, reply });
}

fn step(state: &mut State, step: Step, what: &str, ok: Option<bool>) {
    engine(
        state,
        Event::StepStarted {
            step,
            what: what.into(),
        },
    );
    if let Some(ok) = ok {
        engine(
            state,
            Event::StepFinished {
                step,
                status: if ok {
                    crate::run::StepStatus::Done
                } else {
                    crate::run::StepStatus::Failed
                },
                ms: 1200,
                message: if ok {
                    (step == Step::Backup)
                        .then(|| "/srv/specivo-backups/specivo-20261128-101500-0.1.11".into())
                } else {
                    Some("the app did not come up on 0.1.12: api is crash-looping (restarted 2 times, last exit code 3)".into())
                },
            },
        );
    }
}

fn upgrading() -> State {
    let mut s = State::new("specivo", "0.1.11", "0.1.12");
    step(
        &mut s,
        Step::Preflight,
        "checking the stack is healthy and ready",
        Some(true),
    );
    step(
        &mut s,
        Step::Target,
        "checking 0.1.12 exists in the registry",
        Some(true),
    );
    s
}

fn log(s: &mut State, service: &str, line: &str) {
    engine(
        s,
        Event::Log {
            service: service.into(),
            line: line.into(),
        },
    );
}

fn watching() -> State {
    let mut s = upgrading();
    step(
        &mut s,
        Step::Backup,
        "database dump and data archives",
        Some(true),
    );
    step(&mut s, Step::Pull, "1 image(s) to download", Some(true));
    step(
        &mut s,
        Step::Pin,
        "SPECIVO_VERSION=0.1.11 -> SPECIVO_VERSION=0.1.12",
        Some(true),
    );
    step(&mut s, Step::Restart, "docker compose up -d", Some(true));
    step(
        &mut s,
        Step::Watch,
        "following the logs until the app is ready",
        None,
    );
    log(&mut s, "api", "Running database migrations...");
    log(
        &mut s,
        "api",
        "INFO  [alembic.runtime.migration] Running upgrade 0021 -> 0022, drop issues.legacy_priority",
    );
    engine(
        &mut s,
        Event::Migration {
            service: "api".into(),
            from: "0021".into(),
            to: "0022".into(),
        },
    );
    log(
        &mut s,
        "worker",
        "\x1b[32mworker: ready\x1b[0m (specivo 0.1.12)",
    );
    log(&mut s, "api", "INFO:     Application startup complete.");
    s
}

#[test]
fn start_screen() {
    let mut s = State::new("specivo", "0.1.9", "");
    s.start.pinned = Some("0.1.9".into());
    s.start.running = Some("0.1.9".into());
    s.start.services = vec![
        ("api".into(), "0.1.9".into(), "running, healthy".into()),
        ("db".into(), "15".into(), "running, healthy".into()),
        ("worker".into(), "0.1.9".into(), "running".into()),
    ];
    s.start.choices = vec!["0.1.12".into(), "0.1.11".into(), "0.1.10".into()];
    s.start.next = Some("0.1.10".into());
    s.start.selected = 2;
    snap("start", &s);
}

#[test]
fn start_screen_of_a_literal_moving_tag_with_data_left_out() {
    let mut s = State::new("paperless", "latest", "");
    s.start.pinned = Some("latest".into());
    s.start.running = Some("2.14.7".into());
    s.start.about = vec![
        "Version in the image tag in compose.yaml line 12 (a moving tag, not a pin: hoist pins an exact version).".into(),
        "Database postgres (service db), known by its POSTGRES_* variables.".into(),
        "Not backed up: the data of broker.".into(),
    ];
    s.start.services = vec![
        ("broker".into(), "7".into(), "running".into()),
        ("db".into(), "16".into(), "running, healthy".into()),
        (
            "init".into(),
            "2.14.7".into(),
            "one-shot job, exited 0".into(),
        ),
        (
            "webserver".into(),
            "2.14.7".into(),
            "running, healthy".into(),
        ),
    ];
    s.start.choices = vec!["2.15.1".into(), "2.15.0".into()];
    s.start.next = Some("2.15.0".into());
    s.start.selected = 1;
    snap("start_literal_moving", &s);
}

#[test]
fn start_screen_with_an_interrupted_upgrade() {
    let mut s = State::new("specivo", "0.1.10", "");
    s.start.pinned = Some("0.1.10".into());
    s.start.running = Some("0.1.9".into());
    s.start.services = vec![
        ("api".into(), "0.1.9".into(), "exited".into()),
        ("db".into(), "15".into(), "running, healthy".into()),
    ];
    s.start.choices = vec!["0.1.10".into()];
    s.start.next = Some("0.1.10".into());
    s.start.attention = Some(crate::resume::Attention {
        run_id: "20261128T101500Z-3f9a".into(),
        state: "interrupted".into(),
        from: Some("0.1.9".into()),
        to: Some("0.1.10".into()),
        pinned: Some("0.1.10".into()),
        changed: true,
        last_step: Some("restart".into()),
        sentence: "the upgrade 0.1.9 -> 0.1.10 (run 20261128T101500Z-3f9a) was interrupted during restart, after .env was changed: the app may be half upgraded. Continue it (the backup taken before is kept for a rollback), or roll back to 0.1.9.".into(),
        choices: vec![
            crate::resume::Choice::Continue,
            crate::resume::Choice::Rollback,
            crate::resume::Choice::Show,
        ],
        steps: vec![
            "preflight done (0.3 s)".into(),
            "backup done (1.6 s): /srv/specivo-backups/specivo-20261128-101500-0.1.9".into(),
            "pin done (0.0 s)".into(),
            "restart running".into(),
        ],
    });
    snap("start_attention", &s);
    assert_eq!(update(&mut s, Msg::Key(Key::Char('h'))), []);
    snap("start_attention_steps", &s);
    assert_eq!(
        update(&mut s, Msg::Key(Key::Char('c'))),
        [crate::tui::state::Command::Resume {
            run: "20261128T101500Z-3f9a".into(),
            to: "0.1.10".into()
        }]
    );
}

fn home_of_an_upgraded_stack(restore: bool) -> State {
    use crate::tui::state::{Available, BackupEntry, LastUpgrade};
    let mut s = State::new("specivo", "0.1.11", "");
    s.start.pinned = Some("0.1.11".into());
    s.start.running = Some("0.1.11".into());
    s.start.about = vec![
        "Version in .env line 3 (SPECIVO_VERSION).".into(),
        "Database postgres (service db), known by its image.".into(),
    ];
    s.start.services = vec![
        ("api".into(), "0.1.11".into(), "running, healthy".into()),
        ("beat".into(), "0.1.11".into(), "running".into()),
        ("db".into(), "15".into(), "running, healthy".into()),
        ("worker".into(), "0.1.11".into(), "running".into()),
    ];
    s.start.choices = vec!["0.1.14".into(), "0.1.13".into(), "0.1.12".into()];
    s.start.next = Some("0.1.12".into());
    s.start.backup_root = Some("/srv/specivo-backups".into());
    s.start.preselect();
    update(
        &mut s,
        Msg::Home {
            last_upgrade: Available::Ready(LastUpgrade {
                run: "20261128T101500Z-3f9a".into(),
                now: "0.1.11".into(),
                back_to: "0.1.10".into(),
                when: "2026-11-28 10:15 UTC".into(),
                ago: "20 h ago".into(),
                restore,
                reason: if restore {
                    "the schema revision went from 0020 to 0021: a migration ran, and the previous version cannot run on the newer schema".into()
                } else {
                    "the schema is as it was at the backup (revision 0020, same tables and columns)"
                        .into()
                },
                loss: if restore {
                    "what was written since the backup: 3 rows in issues".into()
                } else {
                    String::new()
                },
            }),
            journal: Some("3 runs, 2 backups".into()),
            backups: Available::Ready(vec![
                BackupEntry {
                    version: Some("0.1.10".into()),
                    date: "2026-11-28 10:15".into(),
                    bytes: 106_111_760,
                    path: "/srv/specivo-backups/specivo-20261128-101500-0.1.10".into(),
                    verified: true,
                    note: None,
                },
                BackupEntry {
                    version: Some("0.1.9".into()),
                    date: "2026-11-20 08:02".into(),
                    bytes: 98_000_000,
                    path: "/srv/specivo-backups/specivo-20261120-080200-0.1.9".into(),
                    verified: false,
                    note: Some("data-specivo-data.tar.gz does not match its sha256".into()),
                },
            ]),
            failed: vec![("0.1.13".into(), "failed here 2 h ago, rolled back".into())],
        },
    );
    s
}

/// The home of a stack upgraded yesterday: the versions, and the way back with what it does.
#[test]
fn home_with_the_last_upgrade_to_roll_back() {
    let mut s = home_of_an_upgraded_stack(true);
    snap("home", &s);
    // A release that failed here is not offered without saying so.
    let screen = draw(&s, (80, 24));
    assert!(
        screen.contains("0.1.13   failed here 2 h ago, rolled back"),
        "{screen}"
    );
    update(&mut s, Msg::Key(Key::Down));
    snap("home_rollback_restore", &s);
    assert_eq!(
        update(&mut s, Msg::Key(Key::Enter)),
        [crate::tui::state::Command::Rollback]
    );
    // Going back: the screens speak of the versions of the rollback.
    assert_eq!((s.from.as_str(), s.to.as_str()), ("0.1.10", "0.1.11"));
}

/// A re-pin is asked on the home itself (the engine would not ask: it loses nothing).
#[test]
fn home_asks_before_a_re_pin_rollback() {
    let mut s = home_of_an_upgraded_stack(false);
    update(&mut s, Msg::Key(Key::Down));
    assert!(update(&mut s, Msg::Key(Key::Enter)).is_empty());
    snap("home_rollback_question", &s);
    let screen = draw(&s, (80, 24));
    assert!(
        screen.contains("Roll back specivo from 0.1.11 to 0.1.10"),
        "{screen}"
    );
    assert!(screen.contains("Go on? [y/n]"), "{screen}");
}

/// Nothing to roll back, nothing newer: the entries say why not, the cursor is on one that
/// can be chosen.
#[test]
fn home_with_nothing_to_roll_back() {
    use crate::tui::state::Available;
    let mut s = State::new("specivo", "0.1.14", "");
    s.start.pinned = Some("0.1.14".into());
    s.start.running = Some("0.1.14".into());
    s.start.services = vec![("api".into(), "0.1.14".into(), "running, healthy".into())];
    s.start.backup_root = Some("/srv/specivo-backups".into());
    update(
        &mut s,
        Msg::Home {
            last_upgrade: Available::Not("nothing to roll back: no upgrade in the journal".into()),
            journal: Some("0 runs, 0 backups".into()),
            backups: Available::Not("no backup in /srv/specivo-backups".into()),
            failed: Vec::new(),
        },
    );
    snap("home_nothing_to_roll_back", &s);
    let screen = draw(&s, (80, 24));
    assert!(
        screen.contains("nothing to roll back: no upgrade in the journal"),
        "{screen}"
    );
    assert!(screen.contains("> Back up now"), "{screen}");
}

/// Back up now, from the home: only the backup down the side, then where it is and how to
/// copy it off the server.
#[test]
fn backup_now_from_the_home() {
    let mut s = home_of_an_upgraded_stack(false);
    update(&mut s, Msg::Key(Key::Down));
    update(&mut s, Msg::Key(Key::Down));
    assert_eq!(
        update(&mut s, Msg::Key(Key::Enter)),
        [crate::tui::state::Command::Backup]
    );
    step(
        &mut s,
        Step::Backup,
        "database dump and data archives, then checked",
        None,
    );
    engine(
        &mut s,
        Event::Progress {
            step: Step::Backup,
            message: "writing database.sql.gz".into(),
        },
    );
    snap("backup_now_running", &s);
    backed_up(&mut s);
    step(&mut s, Step::Backup, "", Some(true));
    s.copy_command = Some(
        "scp -r root@203.0.113.7:/srv/specivo-backups/specivo-20261128-101500-0.1.11 .".into(),
    );
    update(
        &mut s,
        Msg::Finished {
            exit_code: 0,
            sentence: "the backup is taken and checked: /srv/specivo-backups/specivo-20261128-101500-0.1.11".into(),
            evidence: BTreeMap::new(),
        },
    );
    snap("backup_now_done", &s);
}

#[test]
fn history_page() {
    let mut s = home_of_an_upgraded_stack(false);
    for _ in 0..3 {
        update(&mut s, Msg::Key(Key::Down));
    }
    assert_eq!(
        update(&mut s, Msg::Key(Key::Enter)),
        [crate::tui::state::Command::History]
    );
    update(
        &mut s,
        Msg::History(
            "Runs of project specivo (newest first):
  2026-11-28T10:15:00.000Z  upgrade  succeeded  0.1.10 -> 0.1.11  [20261128T101500Z-3f9a]
  2026-11-27T09:00:00.000Z  backup   succeeded  at 0.1.10  [20261127T090000Z-11aa]
  2026-11-20T08:02:00.000Z  upgrade  rolled_back 0.1.9 -> 0.1.10  [20261120T080200Z-22bb]
      the upgrade to 0.1.10 failed (api is crash-looping), and hoist rolled it back

Backups:
  2026-11-28T10:15:00.000Z     106 MB  version 0.1.10, schema 0020  /srv/specivo-backups/specivo-20261128-101500-0.1.10"
                .lines()
                .map(str::to_string)
                .collect(),
        ),
    );
    snap("history_page", &s);
}

/// The backups to restore from, and the restore's question with its word.
#[test]
fn backups_page_and_the_restore_question() {
    let mut s = home_of_an_upgraded_stack(false);
    update(&mut s, Msg::Key(Key::PageDown));
    update(&mut s, Msg::Key(Key::Enter));
    snap("backups_page", &s);
    update(&mut s, Msg::Key(Key::Enter));
    snap("backups_restore_question", &s);
    let screen = draw(&s, (80, 24));
    // A yes starts the restore, which then asks for its word with what it takes away.
    assert!(screen.contains("Go on? [y/n]"), "{screen}");
    assert!(screen.contains("then asks you to confirm"), "{screen}");
    assert!(
        screen.contains("Restore specivo from the backup of 2026-11-28"),
        "{screen}"
    );
}

/// A rollback from the home whose restore the engine asks about: the offer and the word.
#[test]
fn home_rollback_restore_asked_by_the_engine() {
    let mut s = home_of_an_upgraded_stack(true);
    update(&mut s, Msg::Key(Key::Down));
    update(&mut s, Msg::Key(Key::Enter));
    step(
        &mut s,
        Step::CheckBackup,
        "checking the backup's files against its manifest",
        Some(true),
    );
    engine(
        &mut s,
        Event::Rollback {
            decision: Decision::Restore,
            reason: "the schema revision went from 0020 to 0021: a migration ran, and the previous version cannot run on the newer schema".into(),
            losses: vec![Loss {
                table: "issues".into(),
                rows_in_backup: 40,
                rows_now: 43,
                ..Loss::default()
            }],
            unknown_loss: None,
            keep_first: false,
        },
    );
    ask(
        &mut s,
        Question::Rollback {
            text: "Restore the backup of specivo and go back to 0.1.10?".into(),
            restore: true,
        },
    );
    snap("home_rollback_engine_asks", &s);
    let screen = draw(&s, (80, 24));
    assert!(screen.contains("Rolling back the last upgrade"), "{screen}");
    assert!(
        screen.contains("Type restore and press Enter to restore"),
        "{screen}"
    );
}

#[test]
fn the_plan_and_its_question() {
    let mut s = upgrading();
    engine(
        &mut s,
        Event::Plan {
            plan: Box::new(plan(
                &["127.0.0.1:5000/specivo/specivo:0.1.12"],
                &["api", "beat", "worker"],
            )),
        },
    );
    ask(
        &mut s,
        Question::Upgrade {
            text: "Upgrade specivo from 0.1.11 to 0.1.12?".into(),
            rehearsal: None,
        },
    );
    snap("plan_question", &s);
}

/// The plan's question with a rehearsal offered, and its cost said before anything runs.
fn offered() -> State {
    offered_after(upgrading())
}

/// `s` (the health check under way) then the plan and its question with a rehearsal offered.
fn offered_after(mut s: State) -> State {
    engine(
        &mut s,
        Event::Plan {
            plan: Box::new(plan(
                &["127.0.0.1:5000/specivo/specivo:0.1.12"],
                &["api", "beat", "worker"],
            )),
        },
    );
    ask(
        &mut s,
        Question::Upgrade {
            text: "Upgrade specivo from 0.1.11 to 0.1.12?".into(),
            rehearsal: Some(crate::run::RehearsalOffer {
                why: "0.1.12 has not run here before".into(),
                disk_bytes: 1_450_000_000,
                about_secs: 42,
            }),
        },
    );
    s
}

/// The plan's question over a health table taller than what the dock leaves at 80x24: what is
/// out of sight is said, and ↑ brings it.
#[test]
fn a_plan_taller_than_the_screen_says_so_and_scrolls() {
    let mut s = upgrading();
    engine(
        &mut s,
        Event::Health {
            services: ["api", "worker", "beat", "db", "redis", "search", "proxy"]
                .iter()
                .map(|n| service(n, "0.1.11", "running", Some("healthy")))
                .collect(),
            problems: Vec::new(),
            evidence: BTreeMap::new(),
        },
    );
    let mut s = offered_after(s);
    let screen = draw(&s, (80, 24));
    assert!(screen.contains("more rows above (↑/PgUp)"), "{screen}");
    for _ in 0..30 {
        update(&mut s, Msg::Key(Key::Up));
    }
    let screen = draw(&s, (80, 24));
    assert!(screen.contains("api "), "{screen}");
    assert!(screen.contains("more rows below (↓/PgDn)"), "{screen}");
    // The question stays whole, whatever is scrolled.
    assert!(screen.contains("t: try it on a copy first"), "{screen}");
}

#[test]
fn the_plan_offers_a_rehearsal_with_its_cost() {
    let mut s = offered();
    snap("plan_question_rehearsal_offered", &s);
    for size in SIZES {
        let screen = draw(&s, size);
        assert!(screen.contains("t: try it on a copy first"), "{screen}");
        assert!(screen.contains("1.4 GB"), "{screen}");
    }
    assert_eq!(
        update(&mut s, Msg::Key(Key::Char('t'))),
        [Command::RehearseFirst]
    );
    // The rehearsal joins the steps, after the pull.
    let titles: Vec<_> = s.stages.iter().map(|(st, _)| st.title()).collect();
    assert_eq!(titles[3..6], ["Pull", "Rehearse", "Restart"]);
}

/// The upgrade rehearsed: backup and pull done, the copy watched.
fn rehearsing() -> State {
    let mut s = offered();
    update(&mut s, Msg::Key(Key::Char('t')));
    step(
        &mut s,
        Step::Backup,
        "database dump and data archives",
        Some(true),
    );
    step(&mut s, Step::Pull, "downloading 1 image", Some(true));
    step(
        &mut s,
        Step::Rehearse,
        "trying the upgrade on a throwaway copy (hoist-rehearsal-3fa9c1-specivo)",
        None,
    );
    for line in [
        "copying the app's data",
        "copied specivo_uploads (412 MB) in 3.1 s",
        "restore: the dump loaded into the copy's database",
        "on the copy: volume redis-data (redis) starts empty in the copy (not a data mount hoist backs up)",
        "restart: up -d with 0.1.12",
        "migration 0011 -> 0012 (api)",
    ] {
        engine(
            &mut s,
            Event::Progress {
                step: Step::Rehearse,
                message: line.into(),
            },
        );
    }
    for line in ["Running migration 0012_split_names", "Listening on :8000"] {
        engine(
            &mut s,
            Event::Log {
                service: "api (copy)".into(),
                line: line.into(),
            },
        );
    }
    s
}

#[test]
fn a_rehearsal_running_then_its_question() {
    let mut s = rehearsing();
    snap("rehearsal_running", &s);
    for (what, detail) in [
        (
            "rehearsal: containers",
            "run the new image, healthy, no restart",
        ),
        ("rehearsal: schema", "0011 -> 0012"),
        (
            "rehearsal: GET http://172.30.0.4:8000/health on the copy (the app's http://localhost:8080/health)",
            "200 in 12 ms",
        ),
    ] {
        engine(
            &mut s,
            Event::Check {
                what: what.into(),
                ok: true,
                detail: detail.into(),
            },
        );
    }
    engine(
        &mut s,
        Event::StepFinished {
            step: Step::Rehearse,
            status: crate::run::StepStatus::Done,
            ms: 41_000,
            message: None,
        },
    );
    engine(
        &mut s,
        Event::Progress {
            step: Step::Rehearse,
            message: "the rehearsal passed: on a copy of the app, 0.1.12 came up and verified (1 migration applied; 8.9 s from `up -d` to ready: a rough guide to the real app's downtime, which is usually shorter, as the copy runs at a lower CPU priority)".into(),
        },
    );
    ask(
        &mut s,
        Question::Upgrade {
            text: "The rehearsal passed. Upgrade specivo from 0.1.11 to 0.1.12 now?".into(),
            rehearsal: None,
        },
    );
    snap("rehearsal_passed_question", &s);
    // The copy's checks are not the real app's checklist.
    assert!(s.checks.is_empty());
    assert_eq!(s.rehearsal_checks.len(), 3);
    assert_eq!(s.rehearsal_checks[1].what, "schema");
}

#[test]
fn a_failed_rehearsal_says_the_real_app_is_untouched() {
    let mut s = rehearsing();
    engine(
        &mut s,
        Event::StepFinished {
            step: Step::Rehearse,
            status: crate::run::StepStatus::Failed,
            ms: 30_000,
            message: Some("the rehearsal failed: the app did not come up on 0.1.13: api is crash-looping (restarted 2 times, last exit code 3)".into()),
        },
    );
    update(
        &mut s,
        Msg::Finished {
            exit_code: 1,
            sentence: "the rehearsal failed: the app did not come up on 0.1.12: api is crash-looping (restarted 2 times, last exit code 3). Nothing of the real app was changed: specivo still runs 0.1.11, .env is as it was; the backup just taken is in /srv/specivo-backups/specivo-20261128-101500-0.1.11. The copy was removed; hoist shows its last log lines. Report them to the project, and wait for a release that fixes this.".into(),
            evidence: BTreeMap::from([(
                "api".to_string(),
                vec![
                    "Traceback (most recent call last):".to_string(),
                    "RuntimeError: settings.SECRET missing".to_string(),
                ],
            )]),
        },
    );
    snap("rehearsal_failed", &s);
    let screen = draw(&s, (80, 24));
    assert!(
        screen.contains("Nothing of the real app was changed"),
        "{screen}"
    );
    assert!(screen.contains("RuntimeError"), "{screen}");
}

#[test]
fn backup_in_progress() {
    let mut s = upgrading();
    step(
        &mut s,
        Step::Backup,
        "database dump and data archives",
        None,
    );
    engine(
        &mut s,
        Event::Progress {
            step: Step::Backup,
            message: "database.sql.gz done (1.2 MB)".into(),
        },
    );
    engine(
        &mut s,
        Event::Progress {
            step: Step::Backup,
            message: "writing data-specivo-data.tar.gz".into(),
        },
    );
    engine(
        &mut s,
        Event::BackupProgress {
            part: "data-specivo-data.tar.gz".into(),
            bytes: 48_000_000,
            elapsed_ms: 1600,
        },
    );
    step(&mut s, Step::Pull, "1 image(s) to download", None);
    pull(&mut s, 3, 5, 21_000_000, 63_000_000, false);
    snap("backup_in_progress", &s);
}

fn pull(
    s: &mut State,
    layers_done: usize,
    layers: usize,
    bytes_done: u64,
    bytes_total: u64,
    done: bool,
) {
    engine(
        s,
        Event::Pull {
            image: "127.0.0.1:5000/specivo/specivo:0.1.12".into(),
            progress: crate::docker::pull_tally::PullSnapshot {
                layers_done,
                layers,
                bytes_done,
                bytes_total,
            },
            done,
        },
    );
}

fn file(name: &str, kind: &str, size_bytes: u64, sha: char) -> crate::backup::ManifestFile {
    crate::backup::ManifestFile {
        name: name.into(),
        kind: kind.into(),
        size_bytes,
        sha256: sha.to_string().repeat(64),
        source: None,
        target: None,
        files: None,
        content_bytes: None,
        service: None,
    }
}

fn backed_up(s: &mut State) {
    engine(
        s,
        Event::BackupDone {
            dir: "/srv/specivo-backups/specivo-20261128-101500-0.1.11".into(),
            files: vec![
                file("database.sql.gz", "dump", 1_210_000, 'a'),
                file("data-specivo-data.tar.gz", "archive", 104_900_000, 'b'),
                file("env", "env", 310, 'c'),
                file("compose.yaml", "compose", 1_450, 'd'),
            ],
            total_bytes: 106_111_760,
        },
    );
}

#[test]
fn backup_done_while_the_pull_goes_on() {
    let mut s = upgrading();
    step(
        &mut s,
        Step::Backup,
        "database dump and data archives",
        None,
    );
    step(&mut s, Step::Pull, "1 image(s) to download", None);
    pull(&mut s, 4, 5, 50_000_000, 63_000_000, false);
    backed_up(&mut s);
    step(&mut s, Step::Backup, "", Some(true));
    snap("backup_done_pull_going_on", &s);
}

#[test]
fn pin_shows_the_env_diff() {
    let mut s = upgrading();
    engine(
        &mut s,
        Event::Plan {
            plan: Box::new(plan(&[], &["api"])),
        },
    );
    step(
        &mut s,
        Step::Backup,
        "database dump and data archives",
        Some(true),
    );
    step(&mut s, Step::Pull, "0 image(s) to download", Some(true));
    step(
        &mut s,
        Step::Pin,
        "SPECIVO_VERSION=0.1.11 -> SPECIVO_VERSION=0.1.12",
        None,
    );
    snap("pin_env_diff", &s);
}

fn unhealthy() -> State {
    let mut s = State::new("specivo", "0.1.11", "0.1.12");
    engine(
        &mut s,
        Event::StepStarted {
            step: Step::Preflight,
            what: "checking the stack is healthy and ready".into(),
        },
    );
    engine(
        &mut s,
        Event::Health {
            services: vec![
                service("api", "0.1.11", "running", Some("unhealthy")),
                service("db", "15", "running", Some("healthy")),
                service("worker", "0.1.11", "running", None),
            ],
            problems: vec!["api is running but unhealthy: its healthcheck fails; fix it before upgrading (its last log lines are below)".into()],
            evidence: BTreeMap::from([(
                "api".to_string(),
                vec![
                    "INFO:     Application startup complete.".to_string(),
                    "ERROR:    search index /data/index is locked by another process".to_string(),
                    "INFO:     127.0.0.1 - \"GET /healthz HTTP/1.1\" 503".to_string(),
                ],
            )]),
        },
    );
    s
}

#[test]
fn an_unhealthy_stack_asks_for_an_override() {
    let mut s = unhealthy();
    ask(
        &mut s,
        Question::Override {
            problems: vec!["api is running but unhealthy".into()],
        },
    );
    for c in "overr".chars() {
        update(&mut s, Msg::Key(Key::Char(c)));
    }
    snap("health_override", &s);
}

#[test]
fn an_unhealthy_stack_refused() {
    let mut s = unhealthy();
    ask(
        &mut s,
        Question::Override {
            problems: vec!["api is running but unhealthy".into()],
        },
    );
    update(&mut s, Msg::Key(Key::Esc));
    step(&mut s, Step::Preflight, "", Some(false));
    update(
        &mut s,
        Msg::Finished {
            exit_code: 3,
            sentence: "the stack is not ready to upgrade: api is running but unhealthy: its healthcheck fails; fix it before upgrading (its last log lines are below). Nothing was changed; `hoist check` shows the details.".into(),
            evidence: BTreeMap::new(),
        },
    );
    snap("health_refused", &s);
}

fn checks(s: &mut State) {
    for (what, ok, detail) in [
        (
            "containers",
            true,
            "api, beat, worker run the new image, healthy, no restart",
        ),
        ("schema", true, "0021 -> 0022"),
        ("rows", true, "6 tables, 171 rows before, none lost"),
        ("GET http://127.0.0.1:9933/", true, "302 in 4 ms"),
    ] {
        engine(
            s,
            Event::Check {
                what: what.into(),
                ok,
                detail: detail.into(),
            },
        );
    }
}

#[test]
fn smoke_tests_checklist() {
    let mut s = watching();
    step(&mut s, Step::Watch, "", Some(true));
    step(
        &mut s,
        Step::Verify,
        "checking images, health, data and the app's answers",
        None,
    );
    checks(&mut s);
    snap("smoke_tests", &s);
}

/// The observation window after the checks passed: its countdown and keys in the key bar;
/// `a` accepts now, `r` rolls back, and the window's end takes them away.
#[test]
fn the_observation_window_counts_down_with_its_keys() {
    let mut s = watching();
    step(&mut s, Step::Watch, "", Some(true));
    step(&mut s, Step::Verify, "", Some(true));
    step(
        &mut s,
        Step::Verify,
        "watching the app for 10:00 before calling the upgrade done: its containers and its metrics rules",
        None,
    );
    engine(
        &mut s,
        Event::Observe {
            elapsed_s: 95,
            total_s: 600,
        },
    );
    snap("observing", &s);
    let mut accept = s.clone();
    assert_eq!(
        update(&mut accept, Msg::Key(Key::Char('a'))),
        [Command::AcceptNow]
    );
    let mut reject = s.clone();
    assert_eq!(
        update(&mut reject, Msg::Key(Key::Char('r'))),
        [Command::RollBackNow]
    );
    step(&mut s, Step::Verify, "", Some(true));
    assert_eq!(s.observing, None);
    assert!(update(&mut s, Msg::Key(Key::Char('a'))).is_empty());
}

#[test]
fn watching_the_logs_with_a_migration() {
    let mut s = watching();
    update(&mut s, Msg::Tick(83));
    snap("watching_logs", &s);
}

#[test]
fn failure_offering_a_re_pin() {
    let mut s = watching();
    log(&mut s, "api", "Traceback (most recent call last):");
    step(&mut s, Step::Watch, "", Some(false));
    engine(
        &mut s,
        Event::Rollback {
            decision: Decision::Repin,
            reason: "the schema is as it was at the backup (revision 0022, same tables and columns): going back needs no restore, only the previous version".into(),
            losses: Vec::new(),
            unknown_loss: None,
            keep_first: false,
        },
    );
    if let Some(f) = s.failure.as_mut() {
        f.evidence = BTreeMap::from([(
            "api".to_string(),
            vec![
                "Traceback (most recent call last):".to_string(),
                "  File \"/app/specivo/main.py\", line 41, in <module>".to_string(),
                "ImportError: cannot import name 'SearchIndex' from 'specivo.search'".to_string(),
            ],
        )]);
    }
    ask(
        &mut s,
        Question::Rollback {
            text: "Roll back?".into(),
            restore: false,
        },
    );
    snap("failure_re_pin", &s);
}

#[test]
fn failure_offering_a_restore_with_the_loss() {
    let mut s = watching();
    step(&mut s, Step::Watch, "", Some(false));
    engine(
        &mut s,
        Event::Rollback {
            decision: Decision::Restore,
            reason: "the schema revision went from 0021 to 0023: a migration ran, and the previous version cannot run on the newer schema".into(),
            losses: vec![Loss {
                table: "issues".into(),
                rows_in_backup: 40,
                rows_now: 42,
                ..Loss::default()
            }],
            unknown_loss: None,
            keep_first: false,
        },
    );
    ask(
        &mut s,
        Question::Rollback {
            text: "Roll back?".into(),
            restore: true,
        },
    );
    for c in "rest".chars() {
        update(&mut s, Msg::Key(Key::Char(c)));
    }
    snap("failure_restore", &s);
}

/// A real failure's evidence is long, and comes from every service the watch followed: only
/// the failed service's is shown, it scrolls, and the offer and its question stay in sight.
#[test]
fn failure_with_long_evidence_keeps_the_question_in_sight() {
    let mut s = watching();
    step(&mut s, Step::Watch, "", None);
    let tail = |name: &str, n: usize| -> Vec<String> {
        (0..n)
            .map(|i| format!("{name} line {i}: INFO something happened at /app/specivo/{name}.py"))
            .collect()
    };
    let mut api = tail("api", 22);
    api.push("ImportError: cannot import name 'SearchIndex' from 'specivo.search'".into());
    engine(
        &mut s,
        Event::Failure {
            reason: "the app did not come up on 0.1.12: api is crash-looping (restarted 2 times, last exit code 3)".into(),
            evidence: BTreeMap::from([
                ("api".to_string(), api),
                ("beat".to_string(), tail("beat", 25)),
                ("worker".to_string(), tail("worker", 25)),
            ]),
        },
    );
    step(&mut s, Step::Watch, "", Some(false));
    engine(
        &mut s,
        Event::Rollback {
            decision: Decision::Restore,
            reason: "the schema revision went from 0021 to 0022: a migration ran, and the previous version cannot run on the newer schema".into(),
            losses: vec![Loss {
                table: "issues".into(),
                rows_in_backup: 40,
                rows_now: 42,
                ..Loss::default()
            }],
            unknown_loss: None,
            keep_first: false,
        },
    );
    ask(
        &mut s,
        Question::Rollback {
            text: "The upgrade to 0.1.12 failed. Roll back?".into(),
            restore: true,
        },
    );
    let failure = s.failure.as_ref().unwrap();
    assert_eq!(failure.evidence.keys().collect::<Vec<_>>(), ["api"]);
    snap("failure_long_evidence", &s);
    let screen = draw(&s, (80, 24));
    assert!(screen.contains("ImportError"), "{screen}");
    assert!(screen.contains("Type restore and press Enter"), "{screen}");
    // Scrolled up, the evidence moves; the question stays.
    for _ in 0..3 {
        update(&mut s, Msg::Key(Key::PageUp));
    }
    let screen = draw(&s, (80, 24));
    assert!(screen.contains("api line 0:"), "{screen}");
    assert!(screen.contains("Type restore and press Enter"), "{screen}");
}

/// A multi-release upgrade says which release runs, in the heading and down the side.
#[test]
fn a_multi_release_upgrade_names_the_hop() {
    let mut s = State::new("specivo", "0.1.9", "0.1.12");
    step(&mut s, Step::Preflight, "", Some(true));
    step(&mut s, Step::Backup, "", Some(true));
    engine(
        &mut s,
        Event::Hop {
            number: 1,
            of: 3,
            from: "0.1.9".into(),
            to: "0.1.10".into(),
        },
    );
    step(&mut s, Step::Pin, "", Some(true));
    step(&mut s, Step::Restart, "", Some(true));
    step(&mut s, Step::Watch, "", Some(true));
    step(&mut s, Step::Verify, "", Some(true));
    engine(
        &mut s,
        Event::Hop {
            number: 2,
            of: 3,
            from: "0.1.10".into(),
            to: "0.1.11".into(),
        },
    );
    step(&mut s, Step::Pin, "", Some(true));
    step(&mut s, Step::Restart, "docker compose up -d", None);
    snap("multi_release_hop", &s);
    assert!(draw(&s, (80, 24)).contains("release 2 of 3: 0.1.10 -> 0.1.11"));
}

/// The heading names the step that runs: the backup while the pull (with nothing to
/// download) waits beside it; the pull once the backup is done.
#[test]
fn the_heading_names_the_step_that_runs() {
    let mut s = upgrading();
    step(
        &mut s,
        Step::Backup,
        "database dump and data archives",
        None,
    );
    step(&mut s, Step::Pull, "0 image(s) to download", None);
    assert_eq!(s.title(), "Backup");
    pull(&mut s, 1, 5, 1_000, 63_000_000, false);
    assert_eq!(s.title(), "Backup and Pull");
    step(&mut s, Step::Backup, "", Some(true));
    assert_eq!(s.title(), "Pull");
    // A rollback's restore steps say what they do.
    let mut r = State::new("specivo", "0.1.11", "0.1.12");
    r.action = crate::tui::state::Action::Rollback;
    step(
        &mut r,
        Step::RestoreDatabase,
        "loading the backup's dump",
        None,
    );
    assert_eq!(r.title(), "Restore the database");
    snap("rollback_restoring_the_database", &r);
}

/// A copy command wider than the screen is cut into full rows holding nothing else, never
/// wrapped at a space inside; the wizard prints it whole when it ends.
#[test]
fn a_long_copy_command_is_never_broken_at_a_space() {
    let mut s = watching();
    step(&mut s, Step::Watch, "", Some(true));
    step(&mut s, Step::Verify, "", Some(true));
    s.backup_dir = Some(
        "/var/lib/selfhosted/backups/specivo-production/specivo-production-20261128-101500-0.1.11"
            .into(),
    );
    s.copy_command = Some(
        "scp -r administrator@203.0.113.7:/var/lib/selfhosted/backups/specivo-production/specivo-production-20261128-101500-0.1.11 .".into(),
    );
    update(
        &mut s,
        Msg::Finished {
            exit_code: 0,
            sentence: "specivo upgraded from 0.1.11 to 0.1.12".into(),
            evidence: BTreeMap::new(),
        },
    );
    snap("done_long_copy_command", &s);
    let screen = draw(&s, (80, 24));
    // Its rows hold nothing else: the first starts with it, the last ends with it.
    assert!(
        screen.contains(
            "\" scp -r administrator@203.0.113.7:/var/lib/selfhosted/backups/specivo-production\""
        ),
        "{screen}"
    );
    assert!(screen.contains("it is printed whole when you"), "{screen}");
}

#[test]
fn done() {
    let mut s = watching();
    step(&mut s, Step::Watch, "", Some(true));
    step(
        &mut s,
        Step::Verify,
        "checking images, health, data and the app's answers",
        None,
    );
    checks(&mut s);
    step(&mut s, Step::Verify, "", Some(true));
    backed_up(&mut s);
    s.downtime_ms = Some(1830);
    s.record = Some(
        "Record:   `hoist history` (run 01KB2X3Y4Z); log /root/.local/state/hoist/hoist.log".into(),
    );
    s.copy_command = Some(
        "scp -r root@203.0.113.7:/srv/specivo-backups/specivo-20261128-101500-0.1.11 .".into(),
    );
    update(
        &mut s,
        Msg::Finished {
            exit_code: 0,
            sentence: "specivo upgraded from 0.1.11 to 0.1.12; the backup taken before is in /srv/specivo-backups/specivo-20261128-101500-0.1.11".into(),
            evidence: BTreeMap::new(),
        },
    );
    snap("done", &s);
}

#[test]
fn help_and_quit_overlays() {
    let mut s = watching();
    update(&mut s, Msg::Key(Key::Char('?')));
    snap("help", &s);
    update(&mut s, Msg::Key(Key::Char('x')));
    update(&mut s, Msg::Key(Key::Char('q')));
    assert_eq!(s.overlay, Some(crate::tui::state::Overlay::Quit));
    snap("quit_during_a_change", &s);
    assert_eq!(
        update(&mut s, Msg::Key(Key::Char('s'))),
        [crate::tui::state::Command::Stop]
    );
    snap("stopping_at_a_safe_point", &s);
}

#[test]
fn stopped_before_any_change() {
    let mut s = upgrading();
    step(
        &mut s,
        Step::Backup,
        "database dump and data archives",
        None,
    );
    update(&mut s, Msg::Key(Key::Char('q')));
    update(&mut s, Msg::Key(Key::Char('s')));
    backed_up(&mut s);
    step(&mut s, Step::Backup, "", Some(true));
    update(
        &mut s,
        Msg::Finished {
            exit_code: 3,
            sentence: "stopped at your request before any change: the stack still runs 0.1.11, .env is as it was; the backup is in /srv/specivo-backups/specivo-20261128-101500-0.1.11. Run the upgrade again when you are ready.".into(),
            evidence: BTreeMap::new(),
        },
    );
    snap("stopped_before_any_change", &s);
}

/// The app's own colors reach the screen; a migration line is highlighted in ours.
#[test]
fn log_colors_are_kept() {
    let mut s = watching();
    log(&mut s, "api", "\x1b[31mERROR\x1b[0m disk almost full");
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|f| render(&s, Theme { color: true }, f))
        .unwrap();
    let buffer = terminal.backend().buffer();
    let row = (0..24)
        .find(|y| {
            (0..80)
                .map(|x| buffer[(x, *y)].symbol())
                .collect::<String>()
                .contains("ERROR disk almost full")
        })
        .expect("the coloured line is on screen");
    let x = (0..80).find(|x| buffer[(*x, row)].symbol() == "E").unwrap();
    assert_eq!(buffer[(x, row)].fg, ratatui::style::Color::Red);
    // And no escape character reaches the terminal as text.
    assert!(!draw(&s, (80, 24)).contains('\x1b'));
}

/// Frame render time, for the closing note: `cargo test --release --lib frame_render_time --
/// --ignored --nocapture`. Not a pass/fail test: machines differ.
#[test]
#[ignore]
fn frame_render_time() {
    let mut s = watching();
    for i in 0..crate::tui::state::LOG_LINES {
        log(
            &mut s,
            "api",
            &format!("INFO:     172.18.0.1 - \"GET /api/issues/{i} HTTP/1.1\" 200"),
        );
    }
    for size in SIZES {
        let mut terminal = Terminal::new(TestBackend::new(size.0, size.1)).unwrap();
        let n = 2000u32;
        let start = std::time::Instant::now();
        for _ in 0..n {
            terminal
                .draw(|f| render(&s, Theme { color: true }, f))
                .unwrap();
        }
        let per = start.elapsed() / n;
        println!(
            "frame render time at {}x{} with a full log pane: {per:?}",
            size.0, size.1
        );
    }
}

/// The plan of an upgrade of specivo from 0.1.11 to 0.1.12.
fn plan(pull: &[&str], recreate: &[&str]) -> crate::run::UpgradePlan {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    crate::run::UpgradePlan {
        project: "specivo".into(),
        from: "0.1.11".into(),
        to: "0.1.12".into(),
        backup: crate::run::PlannedBackup {
            dir: "/srv/specivo-backups".into(),
            database: Some("postgres dump of specivo (service db)".into()),
            data: Vec::new(),
        },
        path: vec!["0.1.12".into()],
        pull: strings(pull),
        download_bytes: 0,
        recreate: strings(recreate),
        env_diff: crate::run::EnvDiff {
            file: "/srv/specivo/.env".into(),
            line: Some(3),
            before: Some("SPECIVO_VERSION=0.1.11".into()),
            after: "SPECIVO_VERSION=0.1.12".into(),
            also_lines: Vec::new(),
        },
        overridden: Vec::new(),
        checks: Vec::new(),
        left_out: Vec::new(),
        swarm_stack: None,
    }
}

/// A service as the health check reports it.
fn service(
    name: &str,
    version: &str,
    state: &str,
    health: Option<&str>,
) -> crate::probe::services::ServiceStatus {
    crate::probe::services::ServiceStatus {
        name: name.into(),
        upgraded: name != "db",
        image: None,
        version: Some(version.into()),
        digest: None,
        state: state.into(),
        health: health.map(str::to_string),
        exit_code: None,
        restart_count: 0,
        containers: 1,
        lifecycle: None,
    }
}
