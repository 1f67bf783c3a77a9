//! Secrets never leave `.env`, the containers and the backup's private copies: a realistic
//! sequence of every command on a fixture stack whose app logs its own connection URL and
//! secret key at start (as many apps do), then a search for each secret value over everything
//! hoist wrote: its output, its log file, its journal, its lock file and its backups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{Run, TestStack, docker_available, files_under};
use sqlx::{Connection, Row};

/// The app logs its configuration, secrets included, before it starts (`$$` is Compose's `$`).
const LOGS_ITS_SECRETS: &str = r#"  entrypoint: ["sh", "-c", "echo \"INFO  [specivo.config] database $$DATABASE_URL, secret key $$SECRET_KEY\"; exec python3 /app/specivo.py \"$$@\"", "specivo"]
"#;

/// Every text value of every table of the SQLite journal, one line per row.
fn journal_text(path: &Path) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert!(tables.iter().any(|t| t == "runs"), "{tables:?}");
        let mut text = String::new();
        for table in tables {
            let columns: Vec<String> =
                // Names from sqlite_master of hoist's own journal, not user input.
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT name FROM pragma_table_info('{table}')"
                )))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            // Every column as text (blobs as their bytes), whatever its type.
            let select = columns
                .iter()
                .map(|c| format!("CAST(\"{c}\" AS TEXT)"))
                .collect::<Vec<_>>()
                .join(", ");
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {select} FROM \"{table}\""
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            for row in rows {
                text.push_str(&table);
                for i in 0..columns.len() {
                    let value: Option<Vec<u8>> = row.try_get(i).unwrap();
                    text.push('\t');
                    text.push_str(&String::from_utf8_lossy(&value.unwrap_or_default()));
                }
                text.push('\n');
            }
        }
        text
    })
}

/// A file's text, gunzipped when it is gzip (the data archives).
fn readable(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        return String::from_utf8_lossy(&out).into_owned();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn no_secret_of_the_stack_reaches_output_log_journal_lock_or_reports() {
    if !docker_available() {
        return;
    }
    let began = Instant::now();
    let stack = TestStack::start_sized("secrets", "0.1.9", 5);
    let compose = stack.dir.join("compose.yaml");
    let text = std::fs::read_to_string(&compose).unwrap();
    let anchor = "  image: 127.0.0.1:5000/specivo/specivo:${SPECIVO_VERSION:-latest}\n";
    assert!(text.contains(anchor));
    std::fs::write(
        &compose,
        text.replace(anchor, &format!("{anchor}{LOGS_ITS_SECRETS}")),
    )
    .unwrap();
    stack.compose(&["up", "-d", "--wait", "--quiet-pull"]);

    let password = stack.env_value("POSTGRES_PASSWORD");
    let secret_key = stack.env_value("SPECIVO_SECRET_KEY");
    let secrets = [password.as_str(), secret_key.as_str()];
    assert!(password.starts_with("db-") && secret_key.starts_with("sk-"));
    // The app really logs them: what hoist repeats of its logs must be masked.
    let logged = std::process::Command::new("docker")
        .args(["logs", &stack.container("api")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&logged.stdout).contains(&secret_key),
        "the fixture app should log its secret key"
    );

    let backups = stack.dir.parent().unwrap().join("backups");
    let bdir = backups.to_str().unwrap();
    let mut runs: Vec<(String, Run)> = Vec::new();
    let mut hoist = |args: &[&str], code: i32| {
        let mut all = vec!["--backup-dir", bdir];
        all.extend_from_slice(args);
        let run = stack.hoist(&all);
        run.assert_no_panic();
        assert_eq!(run.code, code, "hoist {args:?}: {run:?}");
        if args.contains(&"--json") {
            run.summary();
        }
        runs.push((args.join(" "), run));
    };
    for json in [&[][..], &["--json"][..]] {
        for command in [
            &["status"][..],
            &["check"],
            &["versions"],
            &["backup"],
            &["upgrade", "--to", "0.1.10", "--dry-run"],
        ] {
            hoist(&[command, json].concat(), 0);
        }
    }
    // A good upgrade and its rollback, each way.
    hoist(&["upgrade", "--to", "0.1.10", "--yes"], 0);
    hoist(&["rollback", "--yes", "--json"], 0);
    hoist(&["upgrade", "--to", "0.1.10", "--yes", "--json"], 0);
    hoist(&["rollback", "--yes"], 0);
    // A broken release: its migrations run, the app crashes, hoist restores the backup (exit 4).
    hoist(
        &[
            "upgrade", "--to", "0.1.13", "--path", "direct", "--yes", "--json",
        ],
        4,
    );
    hoist(&["status"], 0);
    hoist(&["history"], 0);
    hoist(&["history", "--json"], 0);

    // What hoist printed.
    let mut places: Vec<(String, String)> = Vec::new();
    for (label, run) in &runs {
        places.push((format!("stdout of hoist {label}"), run.stdout.clone()));
        places.push((format!("stderr of hoist {label}"), run.stderr.clone()));
    }
    // Everything in the state dir (log file, lock file, journal) as bytes, and the journal's
    // every text value (a long value spans pages of the file).
    let state_files = files_under(&stack.state_dir);
    assert!(state_files.iter().any(|p| p.ends_with("hoist.log")));
    assert!(
        state_files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "lock")),
        "{state_files:?}"
    );
    for path in &state_files {
        places.push((
            path.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned(),
        ));
    }
    let journal = journal_text(&stack.state_dir.join("journal.sqlite3"));
    assert!(
        journal.contains("rolled_back"),
        "the journal holds the runs"
    );
    places.push(("the journal's rows".into(), journal));
    // Every backup: all but the dump and the copy of .env, which hold the secrets by design
    // and are private.
    let backup_dirs: Vec<PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(backup_dirs.len() >= 5, "{backup_dirs:?}");
    for dir in &backup_dirs {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        for path in files_under(dir) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // The dump, the copy of .env and the configuration the app ran with hold the
            // secrets on purpose, private to their owner.
            if name == "database.sql.gz" || name == "env" || name == "config.json" {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                continue;
            }
            places.push((path.display().to_string(), readable(&path)));
        }
        assert!(dir.join("manifest.json").is_file() && dir.join("RESTORE.md").is_file());
        // The search would find them: the private copy of .env holds both.
        let env = std::fs::read_to_string(dir.join("env")).unwrap();
        assert!(secrets.iter().all(|s| env.contains(s)));
    }

    let mut leaks = Vec::new();
    for (place, text) in &places {
        for secret in secrets {
            if let Some(at) = text.find(secret) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(80)
                    .map_or(0, |(i, _)| i);
                leaks.push(format!("{place}: ...{}", &text[from..at + secret.len()]));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    let shown: String = runs.iter().map(|(_, r)| r.stdout.as_str()).collect();
    assert!(
        shown.contains("secret key ***") && shown.contains("specivo:***@db"),
        "hoist shows the app's log line, masked"
    );
    eprintln!(
        "searched {} places for {} secrets in {:.0} s",
        places.len(),
        secrets.len(),
        began.elapsed().as_secs_f64()
    );
}
