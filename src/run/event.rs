//! What a run tells its front ends: the steps, and the events each step sends on the way.
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Preflight,
    Target,
    Backup,
    Pull,
    /// The upgrade tried first on a throwaway copy of the app (`--rehearse`).
    Rehearse,
    Pin,
    Restart,
    Watch,
    Verify,
    /// Rollback: the backup's files against its manifest.
    CheckBackup,
    /// Rollback: the app's services stopped before a restore.
    Stop,
    RestoreData,
    RestoreDatabase,
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Target => "target",
            Step::Backup => "backup",
            Step::Pull => "pull",
            Step::Rehearse => "rehearse",
            Step::Pin => "pin",
            Step::Restart => "restart",
            Step::Watch => "watch",
            Step::Verify => "verify",
            Step::CheckBackup => "check_backup",
            Step::Stop => "stop",
            Step::RestoreData => "restore_data",
            Step::RestoreDatabase => "restore_database",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Done,
    Failed,
}

impl StepStatus {
    pub fn name(&self) -> &'static str {
        match self {
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    StepStarted {
        step: Step,
        what: String,
    },
    StepFinished {
        step: Step,
        status: StepStatus,
        ms: u64,
        message: Option<String>,
    },
    Progress {
        step: Step,
        message: String,
    },
    Log {
        service: String,
        line: String,
    },
    Migration {
        service: String,
        from: String,
        to: String,
    },
    /// A container of the project stopped, was removed, created or started (Docker's events).
    Container {
        service: String,
        container: String,
        action: String,
        exit_code: Option<i64>,
    },
    /// Boxed: the plan is large, and sent once.
    Plan {
        plan: Box<super::UpgradePlan>,
    },
    /// The observation window after the upgrade verified: `elapsed_s` of `total_s` seconds
    /// watched so far, the app stable. Sent once a second.
    Observe {
        elapsed_s: u64,
        total_s: u64,
    },
    /// A multi-hop upgrade begins its `number`th hop of `of`.
    Hop {
        number: usize,
        of: usize,
        from: String,
        to: String,
    },
    /// Why the upgrade failed after it changed the stack, with the failing containers' last
    /// log lines (sent before the rollback is offered).
    Failure {
        reason: String,
        evidence: BTreeMap<String, Vec<String>>,
    },
    /// The preflight's view of the services, the problems it found, and the failing
    /// containers' last log lines.
    Health {
        services: Vec<crate::probe::services::ServiceStatus>,
        problems: Vec<String>,
        evidence: BTreeMap<String, Vec<String>>,
    },
    /// Bytes of a backup part read from Docker so far, and since when (for a rate).
    BackupProgress {
        part: String,
        bytes: u64,
        elapsed_ms: u64,
    },
    /// The backup is complete and checked: where it is, each file's size and sha256.
    BackupDone {
        dir: PathBuf,
        files: Vec<crate::backup::ManifestFile>,
        total_bytes: u64,
    },
    /// How far one image's pull is (at most a few times a second, and at each layer done).
    Pull {
        image: String,
        progress: crate::docker::pull_tally::PullSnapshot,
        /// The image is here: the last report of its pull.
        done: bool,
    },
    /// One check of the verification: what, whether it passed, and what was seen.
    Check {
        what: String,
        ok: bool,
        detail: String,
    },
    /// The rollback planner's decision, why, and what a restore would lose.
    Rollback {
        decision: crate::rollback_plan::Decision,
        reason: String,
        losses: Vec<crate::rollback_plan::Loss>,
        /// What a restore takes away that cannot be counted in rows (an SQLite file written
        /// since the backup), said instead of "nothing".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unknown_loss: Option<String>,
        /// The schema change only added things: the previous version is tried first on the
        /// newer schema, keeping what was written since; the restore follows if it fails.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_first: bool,
    },
    /// The run waits for the answer to this question, sent on `reply` (never printed: the
    /// plan or the offer it asks about came before it).
    Ask {
        question: super::Question,
        #[serde(skip)]
        reply: super::Reply,
    },
}
