//! The command line (a stable interface: tests and scripts depend on it; the README documents it).
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hoist",
    version = hoist::build_info::LONG,
    about = "Upgrade a self-hosted Docker Compose app safely, and roll it back when the upgrade goes wrong.",
    long_about = None,
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The app's directory (where its compose file and .env are) [default: current directory]
    #[arg(short = 'C', long = "project-dir", value_name = "DIR", global = true)]
    pub project_dir: Option<PathBuf>,
    /// Compose file; give it again for each file, as with `docker compose -f` [default: the files `docker compose` reads in the project dir: COMPOSE_FILE, or compose.yaml (or compose.yml, docker-compose.yml, docker-compose.yaml) and its override file]
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true, action = clap::ArgAction::Append)]
    pub file: Vec<PathBuf>,
    /// The .env file [default: <project dir>/.env]
    #[arg(long = "env-file", value_name = "FILE", global = true)]
    pub env_file: Option<PathBuf>,
    /// Where backups go [default: x-hoist backup.dir, else <parent of project dir>/<project>-backups]
    #[arg(long = "backup-dir", value_name = "DIR", global = true)]
    pub backup_dir: Option<PathBuf>,
    /// hoist's own state: journal, lock, log file [default: $XDG_STATE_HOME/hoist or ~/.local/state/hoist]
    #[arg(long = "state-dir", value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Machine-readable output: JSON Lines on stdout, the last line a summary
    #[arg(long, global = true)]
    pub json: bool,
    /// Answer yes to every confirmation
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Stack, pinned and running versions, health, schema revision
    Status,
    /// Preflight checks only; exit 0 when ready to upgrade, 3 when not
    Check,
    /// Versions of the app's image in its registry: current, newer, the next step, the path
    Versions,
    /// Take a backup now: database dump, data archives, .env and compose file, checked
    Backup,
    /// Past runs and backups of this project
    History,
    /// The whole upgrade without the wizard: check, backup, pin, pull, restart, watch, verify
    Upgrade {
        /// The version to upgrade to (the image tag)
        #[arg(long, value_name = "VERSION")]
        to: String,
        /// Show the plan (what is backed up, pulled, recreated, the .env change); change nothing
        #[arg(long)]
        dry_run: bool,
        /// `steps`: through each release on the way (each minor from 1.0 on), one backup, a full
        /// verify after each; `direct`: jump straight to the version
        #[arg(long, value_enum, default_value_t = UpgradePath::Steps)]
        path: UpgradePath,
        /// First try the upgrade on a throwaway copy of the app (its database loaded from the
        /// new backup, its data copied, no ports, no way out of its network), removed after;
        /// the real upgrade follows only if the copy verified, and with --yes or a confirmation
        #[arg(long, conflicts_with = "dry_run")]
        rehearse: bool,
    },
    /// Roll back the last (or a given) upgrade: re-pin, or restore the backup first when the
    /// schema changed (a restore needs --yes or a confirmation)
    Rollback {
        /// The upgrade run to roll back (`hoist history` lists them); default: the last succeeded
        #[arg(long, value_name = "ID")]
        run: Option<String>,
    },
    /// Put a backup back: its database and data (the current ones kept aside) and the version
    /// it was taken at (needs --yes or a confirmation)
    Restore {
        /// The backup's directory (`hoist history` lists them), taken by an upgrade or by
        /// `hoist backup`
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

/// How `upgrade` gets to its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpgradePath {
    Steps,
    Direct,
}
