//! hoist: upgrade a self-hosted Docker Compose app, and roll it back when the upgrade goes wrong.
//!
//! The library holds everything that is not the command line, so the integration tests and the
//! binary share one engine. Only the wizard (`tui`) draws on the terminal; the engine reports
//! through `run::Event`s. docs/ARCHITECTURE.md has the layers.

pub mod backup;
pub mod build_info;
pub mod context;
pub mod db;
pub mod docker;
pub mod fsutil;
pub mod journal;
pub mod lock;
pub mod logging;
pub mod preflight;
pub mod probe;
pub mod recovery;
pub mod redact;
pub mod report;
pub mod resume;
pub mod rollback;
pub mod rollback_plan;
pub mod run;
pub mod secret;
pub mod signals;
pub mod stack;
pub mod steps;
pub mod tui;
pub mod units;
pub mod upgrade;
pub mod versions;
