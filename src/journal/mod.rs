//! The local journal (SQLite in the state dir, migrations embedded in the binary): every run,
//! its steps with timestamps and outcomes, and every backup with its files. Written as the run
//! goes, each write committed, so that a crash leaves an accurate record.
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "hoist's journal {path} cannot be opened: {reason}. Check that the state directory is writable (or pass --state-dir DIR)."
    )]
    Open { path: String, reason: String },
    #[error("hoist's journal {path} could not be updated ({what}): {reason}")]
    Write {
        path: String,
        what: String,
        reason: String,
    },
}

pub struct Journal {
    pool: SqlitePool,
    path: PathBuf,
}

/// Now, as RFC 3339 in UTC with milliseconds.
/// A journal write whose failure must not end the run, but must not pass unseen either: the
/// failure goes to the log file, and the value (if any) on.
pub trait Logged<T> {
    fn logged(self, what: &str) -> Option<T>;
}

impl<T> Logged<T> for Result<T, JournalError> {
    fn logged(self, what: &str) -> Option<T> {
        match self {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!("the journal could not {what}: {e}");
                None
            }
        }
    }
}

/// Whether process `pid` (a run's, as the journal records it) runs on this machine.
pub fn pid_alive(pid: i64) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A new run id: sortable by time, unique enough for one machine (`20261124T231500Z-3f9a`).
pub fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    let nanos = now.subsec_nanosecond().unsigned_abs();
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%dT%H%M%SZ"),
        (nanos ^ std::process::id()) & 0xffff
    )
}

mod records;

pub use records::{Outcome, RunKind, StepState};

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub kind: RunKind,
    pub project: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Outcome,
    pub exit_code: Option<i64>,
    pub message: Option<String>,
    /// The process that ran it: a run still "running" whose process is gone was interrupted.
    pub pid: i64,
    /// The run's summary object, once it finished (not repeated in `history`'s output).
    #[serde(skip)]
    pub summary: Option<serde_json::Value>,
    pub steps: Vec<StepRecord>,
    /// The backup this run goes back to, once known (journals before it was recorded: None).
    pub backup_dir: Option<PathBuf>,
}

impl RunRecord {
    /// An upgrade stopped by its rehearsal: the release failed on a throwaway copy, and the
    /// app itself never ran it.
    pub fn failed_on_a_copy(&self) -> bool {
        self.summary
            .as_ref()
            .is_some_and(|s| s["rehearsal"]["passed"] == false)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub name: String,
    pub status: StepState,
    pub started_at: String,
    pub duration_ms: Option<i64>,
    pub message: Option<String>,
}

/// Services a run stopped for the backup's copy and had not started again when it ended.
#[derive(Debug, Clone, Serialize)]
pub struct HoldRecord {
    pub step_id: i64,
    pub run_id: String,
    pub services: Vec<String>,
    pub pid: i64,
    /// The run ended (it failed to start them again) rather than being killed.
    pub run_ended: bool,
    /// When the stop began (RFC 3339).
    pub started_at: String,
}

#[derive(Debug, Clone)]
pub struct WriteMark {
    /// `before_restart` or `after_start`.
    pub moment: String,
    pub hop: String,
    pub taken_at: String,
    /// The tally as JSON; None when the database would not say.
    pub writes: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupRecord {
    pub id: String,
    pub run_id: String,
    pub path: String,
    pub created_at: String,
    pub size_bytes: i64,
    pub manifest_sha256: String,
    pub app_version: Option<String>,
    pub schema_revision: Option<String>,
}

/// A backup's file as the journal keeps it.
pub struct BackupFileRow<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub size_bytes: u64,
    pub sha256: &'a str,
}

pub struct NewBackup<'a> {
    pub id: &'a str,
    pub run_id: &'a str,
    pub project: &'a str,
    pub path: &'a Path,
    pub size_bytes: u64,
    pub manifest_sha256: &'a str,
    pub app_version: Option<&'a str>,
    pub schema_revision: Option<&'a str>,
    pub schema_fingerprint: Option<&'a str>,
    pub files: Vec<BackupFileRow<'a>>,
}

impl Journal {
    /// Opens (creating if needed) `<state dir>/journal.sqlite3` and brings its schema up to date.
    pub async fn open(state_dir: &Path) -> Result<Journal, JournalError> {
        let path = state_dir.join("journal.sqlite3");
        let open_err = |reason: String| JournalError::Open {
            path: path.display().to_string(),
            reason,
        };
        crate::fsutil::create_private_dir(state_dir).map_err(|e| open_err(e.to_string()))?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| open_err(e.to_string()))?
            .filename(&path)
            .create_if_missing(true)
            // WAL + full sync: each committed write survives a crash of hoist or of the machine.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| open_err(format!("its schema could not be brought up to date: {e}")))?;
        // The journal names paths and versions, never secrets; still, it is nobody else's business.
        // SQLite creates its -wal and -shm files with the umask's mode: made 0600 too.
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            crate::fsutil::make_private(Path::new(&file));
        }
        Ok(Journal { pool, path })
    }

    fn write_err(&self, what: &str, e: sqlx::Error) -> JournalError {
        JournalError::Write {
            path: self.path.display().to_string(),
            what: what.to_string(),
            reason: e.to_string(),
        }
    }

    pub async fn start_run(
        &self,
        kind: RunKind,
        project: &str,
        project_dir: &Path,
        from_version: Option<&str>,
        to_version: Option<&str>,
    ) -> Result<String, JournalError> {
        let id = new_run_id();
        sqlx::query(
            "INSERT INTO runs (id, kind, project, project_dir, from_version, to_version, started_at, outcome, pid) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
        )
        .bind(&id)
        .bind(kind.as_str())
        .bind(project)
        .bind(project_dir.display().to_string())
        .bind(from_version)
        .bind(to_version)
        .bind(now())
        .bind(i64::from(std::process::id()))
        .execute(&self.pool)
        .await
        .map_err(|e| self.write_err("start a run", e))?;
        Ok(id)
    }

    pub async fn step_started(&self, run_id: &str, name: &str) -> Result<i64, JournalError> {
        let row = sqlx::query("INSERT INTO steps (run_id, name, started_at, status) VALUES (?, ?, ?, 'running') RETURNING id")
            .bind(run_id)
            .bind(name)
            .bind(now())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.write_err("start a step", e))?;
        row.try_get(0)
            .map_err(|e| self.write_err("start a step", e))
    }

    pub async fn step_finished(
        &self,
        step_id: i64,
        status: &str,
        duration_ms: u64,
        message: Option<&str>,
    ) -> Result<(), JournalError> {
        sqlx::query("UPDATE steps SET finished_at = ?, status = ?, duration_ms = ?, message = ? WHERE id = ?")
            .bind(now())
            .bind(status)
            .bind(i64::try_from(duration_ms).unwrap_or(i64::MAX))
            .bind(message)
            .bind(step_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.write_err("finish a step", e))?;
        Ok(())
    }

    pub async fn finish_run(
        &self,
        run_id: &str,
        outcome: &Outcome,
        exit_code: i32,
        message: &str,
        summary: &str,
    ) -> Result<(), JournalError> {
        sqlx::query("UPDATE runs SET finished_at = ?, outcome = ?, exit_code = ?, message = ?, summary = ? WHERE id = ?")
            .bind(now())
            .bind(outcome.as_str())
            .bind(exit_code)
            .bind(message)
            .bind(summary)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.write_err("finish the run", e))?;
        Ok(())
    }

    pub async fn record_backup(&self, b: &NewBackup<'_>) -> Result<(), JournalError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.write_err("record a backup", e))?;
        sqlx::query(
            "INSERT INTO backups (id, run_id, project, path, created_at, size_bytes, manifest_sha256, app_version, schema_revision, schema_fingerprint) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(b.id)
        .bind(b.run_id)
        .bind(b.project)
        .bind(b.path.display().to_string())
        .bind(now())
        .bind(i64::try_from(b.size_bytes).unwrap_or(i64::MAX))
        .bind(b.manifest_sha256)
        .bind(b.app_version)
        .bind(b.schema_revision)
        .bind(b.schema_fingerprint)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.write_err("record a backup", e))?;
        for f in &b.files {
            sqlx::query("INSERT INTO backup_files (backup_id, name, kind, size_bytes, sha256) VALUES (?, ?, ?, ?, ?)")
                .bind(b.id)
                .bind(f.name)
                .bind(f.kind)
                .bind(i64::try_from(f.size_bytes).unwrap_or(i64::MAX))
                .bind(f.sha256)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.write_err("record a backup's files", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| self.write_err("record a backup", e))
    }

    /// A backup found at `to` after the user moved it from `from`: every record of it follows,
    /// so the next hoist (and the commands `status` suggests) find it without `--backup-dir`.
    pub async fn move_backup(&self, from: &Path, to: &Path) -> Result<(), JournalError> {
        let (from, to) = (from.to_string_lossy(), to.to_string_lossy());
        for sql in [
            "UPDATE backups SET path = ? WHERE path = ?",
            "UPDATE runs SET backup_dir = ? WHERE backup_dir = ?",
        ] {
            sqlx::query(sql)
                .bind(to.as_ref())
                .bind(from.as_ref())
                .execute(&self.pool)
                .await
                .map_err(|e| self.write_err("record where a moved backup is", e))?;
        }
        Ok(())
    }

    /// Records the backup `run_id` goes back to.
    pub async fn set_backup_dir(&self, run_id: &str, dir: &Path) -> Result<(), JournalError> {
        sqlx::query("UPDATE runs SET backup_dir = ? WHERE id = ?")
            .bind(dir.to_string_lossy().as_ref())
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.write_err("record the run's backup", e))?;
        Ok(())
    }

    /// The project's runs, newest first, each with its steps.
    /// Steps named `hold …` (services stopped for the backup's copy) that never finished, in
    /// the runs of `project`: a hoist killed while they were stopped.
    pub async fn unfinished_holds(&self, project: &str) -> Result<Vec<HoldRecord>, JournalError> {
        let rows = sqlx::query(
            "SELECT steps.id, steps.run_id, steps.name, runs.pid, runs.finished_at IS NOT NULL, steps.started_at FROM steps JOIN runs ON runs.id = steps.run_id \
             WHERE runs.project = ? AND steps.status = 'running' AND steps.name LIKE 'hold %' ORDER BY steps.id",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.write_err("read the held services", e))?;
        Ok(rows
            .into_iter()
            .map(|r| HoldRecord {
                step_id: r.try_get(0).unwrap_or_default(),
                run_id: r.try_get(1).unwrap_or_default(),
                services: r
                    .try_get::<String, _>(2)
                    .unwrap_or_default()
                    .split_whitespace()
                    .skip(1)
                    .map(str::to_string)
                    .collect(),
                pid: r.try_get(3).unwrap_or_default(),
                run_ended: r.try_get(4).unwrap_or_default(),
                started_at: r.try_get(5).unwrap_or_default(),
            })
            .collect())
    }

    pub async fn runs(&self, project: &str, limit: u32) -> Result<Vec<RunRecord>, JournalError> {
        let rows = sqlx::query(
            "SELECT id, kind, project, from_version, to_version, started_at, finished_at, outcome, exit_code, message, pid, summary, backup_dir \
             FROM runs WHERE project = ? ORDER BY started_at DESC, id DESC LIMIT ?",
        )
        .bind(project)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.write_err("read the runs", e))?;
        let mut runs = Vec::new();
        for r in rows {
            let get = |i: usize| r.try_get::<Option<String>, _>(i).ok().flatten();
            let id: String = get(0).unwrap_or_default();
            let steps = sqlx::query("SELECT name, status, started_at, duration_ms, message FROM steps WHERE run_id = ? ORDER BY id")
                .bind(&id)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.write_err("read the steps", e))?
                .into_iter()
                .map(|s| StepRecord {
                    name: s.try_get(0).unwrap_or_default(),
                    status: StepState::parse(&s.try_get::<String, _>(1).unwrap_or_default()),
                    started_at: s.try_get(2).unwrap_or_default(),
                    duration_ms: s.try_get(3).ok().flatten(),
                    message: s.try_get(4).ok().flatten(),
                })
                .collect();
            runs.push(RunRecord {
                id,
                kind: RunKind::parse(&get(1).unwrap_or_default()),
                project: get(2).unwrap_or_default(),
                from_version: get(3),
                to_version: get(4),
                started_at: get(5).unwrap_or_default(),
                finished_at: get(6),
                outcome: Outcome::parse(&get(7).unwrap_or_default()),
                exit_code: r.try_get(8).ok().flatten(),
                message: get(9),
                pid: r.try_get(10).unwrap_or_default(),
                backup_dir: get(12).map(PathBuf::from),
                summary: get(11).filter(|t| !t.is_empty()).and_then(|t| {
                    serde_json::from_str(&t)
                        .map_err(|e| {
                            tracing::warn!("the journal's summary of a run cannot be read: {e}")
                        })
                        .ok()
                }),
                steps,
            });
        }
        Ok(runs)
    }

    /// The project's backups, newest first.
    pub async fn backups(&self, project: &str) -> Result<Vec<BackupRecord>, JournalError> {
        let rows = sqlx::query(
            "SELECT id, run_id, path, created_at, size_bytes, manifest_sha256, app_version, schema_revision \
             FROM backups WHERE project = ? ORDER BY created_at DESC, id DESC",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.write_err("read the backups", e))?;
        Ok(rows
            .into_iter()
            .map(|r| BackupRecord {
                id: r.try_get(0).unwrap_or_default(),
                run_id: r.try_get(1).unwrap_or_default(),
                path: r.try_get(2).unwrap_or_default(),
                created_at: r.try_get(3).unwrap_or_default(),
                size_bytes: r.try_get(4).unwrap_or_default(),
                manifest_sha256: r.try_get(5).unwrap_or_default(),
                app_version: r.try_get(6).ok().flatten(),
                schema_revision: r.try_get(7).ok().flatten(),
            })
            .collect())
    }

    /// Records the database's write tally at `moment` of run `run_id` (JSON, or None when the
    /// database would not say).
    pub async fn record_write_mark(
        &self,
        run_id: &str,
        moment: &str,
        hop: &str,
        writes: Option<&str>,
    ) -> Result<(), JournalError> {
        sqlx::query(
            "INSERT INTO write_marks (run_id, moment, hop, taken_at, writes) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(run_id)
        .bind(moment)
        .bind(hop)
        .bind(now())
        .bind(writes)
        .execute(&self.pool)
        .await
        .map_err(|e| self.write_err("record the database's writes", e))?;
        Ok(())
    }

    /// The write marks of run `run_id`, oldest first.
    pub async fn write_marks(&self, run_id: &str) -> Result<Vec<WriteMark>, JournalError> {
        let rows = sqlx::query(
            "SELECT moment, hop, taken_at, writes FROM write_marks WHERE run_id = ? ORDER BY id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.write_err("read the database's writes", e))?;
        Ok(rows
            .into_iter()
            .map(|r| WriteMark {
                moment: r.try_get(0).unwrap_or_default(),
                hop: r.try_get(1).unwrap_or_default(),
                taken_at: r.try_get(2).unwrap_or_default(),
                writes: r.try_get(3).ok().flatten(),
            })
            .collect())
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_file_of_the_journal_is_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).await.unwrap();
        for name in [
            "journal.sqlite3",
            "journal.sqlite3-wal",
            "journal.sqlite3-shm",
        ] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
        }
        j.close().await;
    }

    #[tokio::test]
    async fn write_marks_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).await.unwrap();
        let run = j
            .start_run(RunKind::Upgrade, "p", Path::new("/p"), None, None)
            .await
            .unwrap();
        j.record_write_mark(&run, "before_restart", "1.1", Some("{}"))
            .await
            .unwrap();
        j.record_write_mark(&run, "after_start", "1.1", None)
            .await
            .unwrap();
        let marks = j.write_marks(&run).await.unwrap();
        let got: Vec<(&str, Option<&str>)> = marks
            .iter()
            .map(|m| (m.moment.as_str(), m.writes.as_deref()))
            .collect();
        assert_eq!(got, [("before_restart", Some("{}")), ("after_start", None)]);
        assert!(j.write_marks("other").await.unwrap().is_empty());
        j.close().await;
    }

    #[tokio::test]
    async fn a_run_with_steps_and_a_backup_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).await.unwrap();
        let run = j
            .start_run(
                RunKind::Backup,
                "specivo",
                Path::new("/opt/specivo"),
                Some("0.1.9"),
                None,
            )
            .await
            .unwrap();
        let step = j.step_started(&run, "backup").await.unwrap();
        j.step_finished(step, "done", 1234, None).await.unwrap();
        j.record_backup(&NewBackup {
            id: "specivo-x",
            run_id: &run,
            project: "specivo",
            path: Path::new("/b/specivo-x"),
            size_bytes: 10,
            manifest_sha256: "abc",
            app_version: Some("0.1.9"),
            schema_revision: Some("0020"),
            schema_fingerprint: None,
            files: vec![BackupFileRow {
                name: "db.sql.gz",
                kind: "dump",
                size_bytes: 10,
                sha256: "def",
            }],
        })
        .await
        .unwrap();
        j.finish_run(&run, &Outcome::Succeeded, 0, "done", "{}")
            .await
            .unwrap();
        j.close().await;

        // Reopening applies no migration twice and finds everything.
        let j = Journal::open(dir.path()).await.unwrap();
        let runs = j.runs("specivo", 10).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].outcome, Outcome::Succeeded);
        assert_eq!(runs[0].steps[0].name, "backup");
        assert_eq!(runs[0].steps[0].duration_ms, Some(1234));
        let backups = j.backups("specivo").await.unwrap();
        assert_eq!(backups[0].schema_revision.as_deref(), Some("0020"));
        assert!(j.runs("other", 10).await.unwrap().is_empty());
    }
}
