//! SyncTV, the app of runbook 003 (testbed/images/synctv): embedded SQLx migrations on
//! PostgreSQL (`_sqlx_migrations`), `/health/ready` as the app's own readiness, and one release
//! per row of the runbook's rollback table. hoist's rollback must say each case in the table's
//! terms and do what its row says: re-pin for a binary-only change; the previous version on the
//! newer schema for an additive migration; the database backup for an irreversible one; and a
//! secret rotated wrongly named (never shown) as the configuration that changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::{TestStack, docker_available, free_port, ready_version as ready};

const GOOD_SECRET: &str = "jwt-secret-0123456789abcdef-0123456789";

/// The stack as SyncTV's Compose guide lays it out: the app and PostgreSQL with a healthcheck,
/// the secret in `.env`. Readiness is waited for 20 s (its broken releases never become ready).
fn synctv_stack(tag: &str, version: &str) -> TestStack {
    let port = free_port();
    let compose = r#"services:
  synctv:
    image: 127.0.0.1:5000/synctv/synctv:${SYNCTV_VERSION}
    environment:
      DATABASE_URL: postgres://synctv:${POSTGRES_PASSWORD}@postgres:5432/synctv
      SYNCTV_JWT_SECRET: ${SYNCTV_JWT_SECRET}
    ports:
      - "127.0.0.1:${SYNCTV_PORT}:8080"
    depends_on:
      postgres:
        condition: service_healthy
    restart: unless-stopped
  postgres:
    image: 127.0.0.1:5000/postgres:15
    environment:
      POSTGRES_USER: synctv
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}
      POSTGRES_DB: synctv
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U synctv -d synctv"]
      interval: 2s
      retries: 30
    restart: unless-stopped
volumes:
  pgdata:
x-hoist:
  timeouts: {ready: 20s}
"#;
    let env = format!(
        "SYNCTV_VERSION={version}\nSYNCTV_PORT={port}\nPOSTGRES_PASSWORD=pg-synctv-3321\nSYNCTV_JWT_SECRET={GOOD_SECRET}\n"
    );
    let mut stack = TestStack::custom(tag, &[("compose.yaml", compose), (".env", &env)]);
    stack.port = port;
    for _ in 0..120 {
        if ready(&stack) == version {
            return stack;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("SyncTV {version} did not become ready");
}

fn sql(stack: &TestStack, query: &str) -> String {
    common::docker_exec(
        &stack.container("postgres"),
        &["psql", "-U", "synctv", "-d", "synctv", "-tAc", query],
    )
    .trim()
    .to_string()
}

const USERS: &str = "SELECT string_agg(username || ':' || legacy_role, ',' ORDER BY id) FROM users";

#[test]
fn runbook_003_each_row_of_the_rollback_table_is_said_and_done() {
    if !docker_available() {
        return;
    }
    let stack = synctv_stack("synctv", "1.0.0");
    sql(
        &stack,
        "INSERT INTO users (username, legacy_role) VALUES ('alice', 1), ('bob', 2)",
    );
    // /health/ready is found and held to 200 by check.
    let check = stack.hoist(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check.stdout.contains("/health/ready expecting 200"),
        "{check:?}"
    );

    // Binary or image only, no new migration: the previous version again, nothing restored.
    let run = stack.hoist(&["upgrade", "--to", "1.0.1", "--yes", "--json"]);
    run.assert_no_panic();
    let s = run.summary();
    assert_eq!(run.code, 4, "{s:#}\n{}", run.stderr);
    assert!(
        run.stderr
            .contains(r#"/health/ready did not answer 200 (answered 503, expected 200: {"status": "not ready""#),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("provider registry"), "{}", run.stderr);
    assert_eq!(s["rollback"]["decision"], "repin", "{s:#}");
    assert!(
        s["rollback"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Binary-only rollback (only the image changed, no migration ran)"),
        "{s:#}"
    );
    assert_eq!(ready(&stack), "1.0.0");

    // Automatic migrations the old version supports: the old image on the newer schema, and
    // what was written since kept.
    let run = stack.hoist(&["upgrade", "--to", "1.1.0", "--yes", "--json"]);
    run.assert_no_panic();
    let s = run.summary();
    assert_eq!(run.code, 4, "{s:#}\n{}", run.stderr);
    let reason = s["rollback"]["reason"].as_str().unwrap();
    assert!(
        reason
            .starts_with("Additive schema (migrations ran that the previous version may support)"),
        "{reason}"
    );
    assert!(reason.contains("table room_settings"), "{reason}");
    assert_eq!(ready(&stack), "1.0.0");
    assert_eq!(
        sql(&stack, "SELECT max(version) FROM _sqlx_migrations"),
        "20240601000004"
    );

    // An irreversible migration: the database backup is restored, the dropped column back.
    let run = stack.hoist(&[
        "upgrade", "--to", "1.2.0", "--path", "direct", "--yes", "--json",
    ]);
    run.assert_no_panic();
    let s = run.summary();
    assert_eq!(run.code, 4, "{s:#}\n{}", run.stderr);
    let rb = &s["rollback"];
    assert_eq!(rb["decision"], "restore", "{rb:#}");
    let reason = rb["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "Destructive schema (a migration ran that the previous version cannot run on)"
        ),
        "{reason}"
    );
    assert!(reason.contains("column users.legacy_role"), "{reason}");
    assert_eq!(rb["outcome"], "succeeded", "{rb:#}");
    assert_eq!(ready(&stack), "1.0.0");
    assert_eq!(sql(&stack, USERS), "alice:1,bob:2");
    assert_eq!(
        sql(&stack, "SELECT max(version) FROM _sqlx_migrations"),
        "20240601000004"
    );
}

#[test]
fn runbook_003_a_secret_rotated_wrongly_is_named_before_and_after_never_shown() {
    if !docker_available() {
        return;
    }
    let stack = synctv_stack("synctv-secret", "1.0.0");
    // Rotated in .env to one too short for every release; the container runs with the old one.
    let env = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
    let bad = "rotated-but-too-short";
    std::fs::write(stack.dir.join(".env"), env.replace(GOOD_SECRET, bad)).unwrap();

    let check = stack.hoist(&["check"]);
    check.assert_no_panic();
    assert_eq!(check.code, 0, "a warning, not a refusal: {check:?}");
    assert!(
        check.stdout.contains(
            "WARN  the files give synctv: SYNCTV_JWT_SECRET (a secret) another value than the running container has"
        ),
        "{check:?}"
    );

    let run = stack.hoist(&["upgrade", "--to", "1.3.0", "--yes", "--json"]);
    run.assert_no_panic();
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains(bad), "{all}");
    assert!(!all.contains(GOOD_SECRET), "{all}");
    assert!(
        all.contains("the files give synctv: SYNCTV_JWT_SECRET (a secret) another value"),
        "{all}"
    );
    // Every release refuses the secret: the rollback's plan names it as the change, and the
    // previous version cannot come up with it either; said, not hidden.
    assert_ne!(run.code, 0, "{all}");
    let s = run.summary();
    let reason = s["rollback"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("Config rollback (no migration ran; the configuration changed too)"),
        "{s:#}"
    );
    assert!(
        reason.contains("the environment (synctv: SYNCTV_JWT_SECRET (a secret); the backup's config.json holds what ran before)"),
        "{reason}"
    );

    // Put back as the runbook says (the old secret, a restart): 1.0.0 is ready again.
    std::fs::write(stack.dir.join(".env"), {
        let now = std::fs::read_to_string(stack.dir.join(".env")).unwrap();
        now.replace(bad, GOOD_SECRET)
    })
    .unwrap();
    stack.compose(&["up", "-d", "--wait"]);
    for _ in 0..60 {
        if ready(&stack) == "1.0.0" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("1.0.0 did not come back with the old secret");
}
