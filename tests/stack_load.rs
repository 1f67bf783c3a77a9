#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `stack::load` over the stacks under `tests/stack/`: what detection makes of a realistic
//! Specivo-like stack, how settings override it, and how bad input is reported (the file, and
//! the line or key, every time).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist::db::DbKind;
use hoist::stack::compose::{ComposeError, MountKind};
use hoist::stack::detect::Readiness;
use hoist::stack::detect::Site;
use hoist::stack::{self, Stack, StackError, StackPaths};

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/stack")
        .join(case)
}

/// Loads a case with only `env` as the process environment, so the tests do not depend on the
/// machine's own variables.
fn load_with(case: &str, env: &[(&str, &str)]) -> Result<Stack, StackError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let os_env = move |k: &str| env.get(k).cloned();
    stack::load(
        &StackPaths {
            project_dir: case_dir(case),
            compose_files: Vec::new(),
            env_file: None,
        },
        &os_env,
    )
}

fn load(case: &str) -> Result<Stack, StackError> {
    load_with(case, &[])
}

fn error_of(case: &str) -> (StackError, String) {
    let e = load(case).err().unwrap_or_else(|| panic!("{case} loaded"));
    let text = e.to_string();
    assert_eq!(e.exit_code(), 2, "{text}");
    (e, text)
}

fn path_in(case: &str, file: &str) -> String {
    case_dir(case).join(file).display().to_string()
}

#[test]
fn specivo_stack_is_detected_field_by_field() {
    let s = load("specivo").unwrap();
    let dir = case_dir("specivo");
    assert_eq!(s.project_dir, dir);
    assert_eq!(s.compose_path, dir.join("compose.yaml"));
    assert_eq!(s.env_path, dir.join(".env"));
    assert_eq!(s.project_name, "specivo");
    assert_eq!(s.settings_path, None);
    assert_eq!(s.env_values["SPECIVO_VERSION"], "0.1.9");
    // In Compose's own order (it sorts them).
    assert_eq!(
        s.compose.services.keys().collect::<Vec<_>>(),
        ["api", "beat", "db", "redis", "worker"]
    );
    assert_eq!(s.compose_files, [dir.join("compose.yaml")]);
    assert!(s.inactive.is_empty());
    // The anchor's block reached every app service, interpolated; the raw image is kept.
    for name in ["api", "worker", "beat"] {
        let svc = &s.compose.services[name];
        assert_eq!(
            svc.image.as_deref(),
            Some("127.0.0.1:5000/specivo/specivo:0.1.9")
        );
        assert_eq!(
            svc.raw_image.as_deref(),
            Some("127.0.0.1:5000/specivo/specivo:${SPECIVO_VERSION:-latest}")
        );
        assert_eq!(svc.depends_on, ["db", "redis"]);
        assert_eq!(svc.depends_on_condition["db"], "service_healthy");
        assert_eq!(
            svc.environment["DATABASE_URL"].as_deref(),
            Some("postgresql://specivo:s3cret-pw@db:5432/specivo")
        );
    }

    let d = &s.detection;
    assert_eq!(d.version.variable, "SPECIVO_VERSION");
    assert_eq!(d.version.value.as_deref(), Some("0.1.9"));
    assert_eq!(d.version.source, ".env line 2");
    assert_eq!(d.version.env_line, Some(2));
    assert_eq!(d.upgraded, ["api", "beat", "worker"]);

    let db = d.database.as_ref().unwrap();
    assert_eq!(db.service, "db");
    assert_eq!(db.kind, DbKind::Postgres);
    assert_eq!(db.user, "specivo");
    assert_eq!(db.name, "specivo");
    assert_eq!(db.port, 5432);
    assert_eq!(db.password.expose(), "s3cret-pw");
    assert_eq!(db.published, None);
    assert_eq!(db.path, None);
    assert_eq!(db.note, None);

    // One entry for the data dir api and worker share; the named volume of worker; not the
    // anonymous /cache, the tmpfs, the docker socket, nor the database's or redis's own volumes.
    assert_eq!(d.data.len(), 2, "{:?}", d.data);
    assert_eq!(d.data[0].kind, MountKind::Bind);
    assert_eq!(
        d.data[0].source,
        dir.join("specivo-data").display().to_string()
    );
    assert_eq!(d.data[0].target, "/data");
    assert!(!d.data[0].read_only);
    assert_eq!(d.data[0].services, ["api", "worker"]);
    assert_eq!(d.data[1].kind, MountKind::Volume);
    assert_eq!(d.data[1].source, "uploads");
    assert_eq!(d.data[1].target, "/uploads");
    assert_eq!(d.data[1].services, ["worker"]);

    assert_eq!(d.smoke.len(), 1);
    assert_eq!(d.smoke[0].url, "http://127.0.0.1:9933/");
    assert_eq!(d.smoke[0].method, "GET");
    assert_eq!(d.smoke[0].expect, "<400");
    assert_eq!(d.smoke[0].expect_body, None);
    assert!(!d.smoke[0].configured);

    assert_eq!(d.with_healthcheck, ["api", "db", "redis"]);
    assert_eq!(
        d.readiness,
        [
            Readiness {
                service: "api".into(),
                healthcheck: true
            },
            Readiness {
                service: "beat".into(),
                healthcheck: false
            },
            Readiness {
                service: "worker".into(),
                healthcheck: false
            },
        ]
    );
}

#[test]
fn the_password_never_shows() {
    let s = load("specivo").unwrap();
    let json = serde_json::to_string(&s.detection).unwrap();
    assert!(!json.contains("s3cret-pw"), "{json}");
    assert!(json.contains("\"variable\":\"SPECIVO_VERSION\""), "{json}");
    let debug = format!("{:?}", s.detection);
    assert!(!debug.contains("s3cret-pw"), "{debug}");
    assert!(debug.contains("***"), "{debug}");
}

#[test]
fn the_environment_overrides_env_and_the_default_applies_when_unset() {
    let s = load_with(
        "specivo",
        &[
            ("SPECIVO_VERSION", "0.2.0"),
            ("SPECIVO_PORT", "8443"),
            ("SPECIVO_DATA_DIR", "/srv/specivo"),
        ],
    )
    .unwrap();
    let d = &s.detection;
    assert_eq!(d.version.value.as_deref(), Some("0.2.0"));
    assert!(d.version.source.contains("environment"), "{:?}", d.version);
    assert_eq!(d.version.env_line, None);
    assert_eq!(d.smoke[0].url, "http://127.0.0.1:8443/");
    assert_eq!(d.data[0].source, "/srv/specivo");

    // Without .env the default in the image reference is what Compose would run.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("My Specivo");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        case_dir("specivo").join("compose.yaml"),
        dir.join("compose.yaml"),
    )
    .unwrap();
    let os_env = |k: &str| (k == "POSTGRES_PASSWORD").then(|| "pw".to_string());
    let s = stack::load(
        &StackPaths {
            project_dir: dir.clone(),
            compose_files: Vec::new(),
            env_file: None,
        },
        &os_env,
    )
    .unwrap();
    assert_eq!(s.detection.version.value.as_deref(), Some("latest"));
    assert!(s.detection.version.source.contains("default"));
    assert!(s.env.keys().is_empty());
    // The directory's name, normalized as Compose does.
    assert_eq!(s.project_name, "myspecivo");
}

#[test]
fn project_name_follows_compose_precedence() {
    let s = load_with("specivo", &[("COMPOSE_PROJECT_NAME", "prod-specivo")]).unwrap();
    assert_eq!(s.project_name, "prod-specivo");
    let e = load_with("specivo", &[("COMPOSE_PROJECT_NAME", "Prod Specivo")])
        .err()
        .unwrap();
    assert!(matches!(e, StackError::BadProjectName { .. }), "{e}");
    assert!(e.to_string().contains("\"Prod Specivo\""), "{e}");
    assert!(e.to_string().contains("environment"), "{e}");
}

#[test]
fn settings_override_detection_and_hoist_yaml_wins() {
    let s = load("with-settings").unwrap();
    let dir = case_dir("with-settings");
    assert_eq!(s.settings_path, Some(dir.join("hoist.yaml")));
    let st = &s.settings;
    // Both set `timeouts.ready`: hoist.yaml wins; x-hoist's `timeouts.stop` stands.
    assert_eq!(st.timeout_ready, Some(Duration::from_secs(90)));
    assert_eq!(st.timeout_stop, Some(Duration::from_secs(30)));
    assert_eq!(st.backup_keep, Some(3));
    assert_eq!(st.ready_after, Some(Duration::from_secs(15)));
    assert!(st.log_ready.as_ref().unwrap().is_match("Listening on :80"));
    assert_eq!(st.log_failure.len(), 2);

    let d = &s.detection;
    // Two tag variables; x-hoist names the app's.
    assert_eq!(d.version.variable, "APP_VERSION");
    assert_eq!(d.version.value.as_deref(), Some("1.4.2"));
    assert_eq!(d.upgraded, ["app"]);
    let db = d.database.as_ref().unwrap();
    assert_eq!(
        (
            db.service.as_str(),
            db.kind,
            db.user.as_str(),
            db.name.as_str()
        ),
        // x-hoist names service and user; hoist.yaml's `database.name` wins over x-hoist's.
        ("db", DbKind::Postgres, "app_owner", "app_prod")
    );
    assert_eq!(db.password.expose(), "pw");
    // `data: [./media]` replaces the detected mounts (./static is left out).
    assert_eq!(d.data.len(), 1);
    assert_eq!(d.data[0].source, dir.join("media").display().to_string());
    assert_eq!(d.data[0].services, ["app"]);
    assert_eq!(d.data[0].target, "/media");
    // Configured smoke checks replace the detected one on port 8080.
    assert_eq!(d.smoke.len(), 1);
    assert_eq!(d.smoke[0].url, "http://127.0.0.1:8080/health");
    assert_eq!(d.smoke[0].expect, "200");
    assert_eq!(d.smoke[0].expect_body.as_deref(), Some("ok"));
    assert!(d.smoke[0].configured);
}

#[test]
fn database_credentials_from_env_file_and_file_variants_are_noted() {
    let s = load("db-env-file").unwrap();
    let db = s.detection.database.as_ref().unwrap();
    // The service the app depends on, not the first database image in the file.
    assert_eq!(db.service, "maria");
    assert_eq!(db.kind, DbKind::Mysql);
    assert_eq!(db.user, "web");
    assert_eq!(db.name, "web");
    assert_eq!(db.port, 3306);
    assert_eq!(db.published, Some(("127.0.0.1".to_string(), 3307)));
    assert!(db.password.is_empty());
    let note = db.note.as_deref().unwrap();
    assert!(note.contains("MARIADB_PASSWORD_FILE"), "{note}");
    assert!(note.contains("does not read"), "{note}");
}

#[test]
fn no_compose_file_names_the_dir_and_the_names_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let e = stack::load(
        &StackPaths {
            project_dir: tmp.path().to_path_buf(),
            compose_files: Vec::new(),
            env_file: None,
        },
        &|_| None,
    )
    .err()
    .unwrap();
    let text = e.to_string();
    assert!(matches!(e, StackError::NoComposeFile { .. }), "{text}");
    assert!(text.contains(&tmp.path().display().to_string()), "{text}");
    assert!(
        text.contains("compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml"),
        "{text}"
    );
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn a_named_env_file_that_is_missing_is_an_error() {
    let missing = case_dir("specivo").join("prod.env");
    let e = stack::load(
        &StackPaths {
            project_dir: case_dir("specivo"),
            compose_files: Vec::new(),
            env_file: Some(missing.clone()),
        },
        &|_| None,
    )
    .err()
    .unwrap();
    assert!(matches!(e, StackError::Unreadable { .. }), "{e}");
    assert!(
        e.to_string().contains(&missing.display().to_string()),
        "{e}"
    );
}

#[test]
fn yaml_syntax_error_names_file_line_and_column() {
    let (e, text) = error_of("bad-yaml");
    let StackError::Compose(ComposeError::Syntax { path, line, .. }) = &e else {
        panic!("not a syntax error: {text}");
    };
    assert_eq!(path, &path_in("bad-yaml", "compose.yaml"));
    // The unterminated quote opens on line 5; the parser notices it there or at the end.
    assert!((5..=7).contains(line), "{text}");
    assert!(
        text.starts_with(&format!("{}:{line}:", path_in("bad-yaml", "compose.yaml"))),
        "{text}"
    );
}

#[test]
fn bad_env_line_names_file_and_line() {
    let (e, text) = error_of("bad-env");
    assert!(matches!(e, StackError::Env { .. }), "{text}");
    assert!(text.contains(&path_in("bad-env", ".env")), "{text}");
    assert!(text.contains("line 3"), "{text}");
}

#[test]
fn missing_required_variable_names_file_and_key() {
    let (e, text) = error_of("required-missing");
    assert!(
        matches!(e, StackError::Compose(ComposeError::Interpolation { .. })),
        "{text}"
    );
    assert!(
        text.contains(&path_in("required-missing", "compose.yaml")),
        "{text}"
    );
    assert!(
        text.contains("services.db.environment.POSTGRES_PASSWORD"),
        "{text}"
    );
    assert!(text.contains("set DB_PASSWORD in .env"), "{text}");
}

#[test]
fn unknown_x_hoist_key_names_file_key_and_the_known_ones() {
    let (e, text) = error_of("bad-x-hoist-key");
    assert!(matches!(e, StackError::Setting(_)), "{text}");
    assert!(
        text.contains(&path_in("bad-x-hoist-key", "compose.yaml")),
        "{text}"
    );
    assert!(text.contains("`x-hoist.versoin_variable`"), "{text}");
    assert!(text.contains("version_variable"), "{text}");
}

#[test]
fn bad_duration_names_hoist_yaml_key_and_expectation() {
    let (_, text) = error_of("bad-duration");
    assert_eq!(
        text,
        format!(
            "{}: setting `timeouts.ready`: expected a duration like \"90s\" or \"2m\" (at most a week), found \"soon\"",
            path_in("bad-duration", "hoist.yaml")
        )
    );
}

#[test]
fn bad_regex_names_hoist_yaml_and_key() {
    let (_, text) = error_of("bad-regex");
    assert!(text.contains(&path_in("bad-regex", "hoist.yaml")), "{text}");
    assert!(text.contains("`logs.failure[1]`"), "{text}");
    assert!(text.contains("valid regular expression"), "{text}");
}

#[test]
fn unknown_service_in_settings_names_file_key_and_service() {
    let (e, text) = error_of("unknown-service");
    assert!(matches!(e, StackError::Setting(_)), "{text}");
    assert!(
        text.contains(&path_in("unknown-service", "compose.yaml")),
        "{text}"
    );
    assert!(text.contains("`x-hoist.services[1]`"), "{text}");
    assert!(text.contains("\"apii\""), "{text}");
    assert!(text.contains("(api, db)"), "{text}");
}

#[test]
fn wrong_shape_names_file_and_key_path() {
    let (e, text) = error_of("bad-ports");
    assert!(
        matches!(e, StackError::Compose(ComposeError::Shape { .. })),
        "{text}"
    );
    assert!(
        text.contains(&path_in("bad-ports", "compose.yaml")),
        "{text}"
    );
    assert!(
        text.contains("services.api.ports: expected a list of ports"),
        "{text}"
    );
}

#[test]
fn a_literal_tag_is_the_pin_on_its_line() {
    let s = load("no-version-variable").unwrap();
    let v = &s.detection.version;
    assert_eq!(
        v.site,
        Site::Tags {
            file: case_dir("no-version-variable").join("compose.yaml"),
            lines: vec![3],
            image: "example/app:1.4.2".into(),
            repositories: vec!["example/app".into()],
        }
    );
    assert_eq!(v.value.as_deref(), Some("1.4.2"));
    assert!(!v.moving);
    // The database's `${PG_MAJOR}` is not the app's version.
    assert_eq!(s.detection.upgraded, ["app"]);
}

#[test]
fn two_candidate_version_variables_are_said_not_refused() {
    let s = load("ambiguous-version").unwrap();
    let Site::Unknown { reason } = &s.detection.version.site else {
        panic!("{:?}", s.detection.version.site);
    };
    assert!(reason.contains("API_VERSION in api"), "{reason}");
    assert!(reason.contains("WEB_VERSION in web"), "{reason}");
    // A variable of the registry part is not a candidate.
    assert!(!reason.contains("REGISTRY"), "{reason}");
    assert!(reason.contains("x-hoist"), "{reason}");
    assert!(s.detection.upgraded.is_empty());

    // Setting one of them in the environment does not settle it; .env does.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        case_dir("ambiguous-version").join("compose.yaml"),
        tmp.path().join("compose.yaml"),
    )
    .unwrap();
    std::fs::write(tmp.path().join(".env"), "WEB_VERSION=3.1\n").unwrap();
    let s = stack::load(
        &StackPaths {
            project_dir: tmp.path().to_path_buf(),
            compose_files: Vec::new(),
            env_file: None,
        },
        &|_| None,
    )
    .unwrap();
    assert_eq!(s.detection.version.variable, "WEB_VERSION");
    assert_eq!(s.detection.version.source, ".env line 1");
    assert_eq!(s.detection.upgraded, ["web"]);
}

#[test]
fn a_data_setting_that_no_service_mounts_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  app:\n    image: example/app:${V:-1}\n    volumes: [\"./media:/media\"]\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("hoist.yaml"), "data: [./media, ./meida]\n").unwrap();
    let e = stack::load(
        &StackPaths {
            project_dir: tmp.path().to_path_buf(),
            compose_files: Vec::new(),
            env_file: None,
        },
        &|_| None,
    )
    .err()
    .unwrap();
    let text = e.to_string();
    assert!(text.contains("`data[1]`"), "{text}");
    assert!(text.contains("\"./meida\""), "{text}");
    assert!(
        text.contains(&tmp.path().join("meida").display().to_string()),
        "{text}"
    );
}

#[test]
fn an_image_on_the_line_after_its_key_is_not_pinned_half() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("compose.yaml"),
        "services:\n  server:\n    image: example/app:1.2.3\n  runner:\n    image: >-\n      example/app:1.2.3\n",
    )
    .unwrap();
    let s = stack::load(
        &StackPaths {
            project_dir: tmp.path().to_path_buf(),
            compose_files: Vec::new(),
            env_file: None,
        },
        &|_| None,
    )
    .unwrap();
    let Site::Unknown { reason } = &s.detection.version.site else {
        panic!("{:?}", s.detection.version.site);
    };
    assert!(reason.contains("line 5"), "{reason}");
    assert!(reason.contains("on one line"), "{reason}");
}
