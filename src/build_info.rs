//! Which hoist this is: its version and the commit it was built from (`build.rs`), said by
//! `--version` and `status --json` so that a bug report names it.

/// The package version, as `Cargo.toml` has it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit (12 hex digits), or `unknown` for a build from outside a clone.
pub const COMMIT: &str = env!("HOIST_COMMIT");
/// What `hoist --version` prints after the name.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HOIST_COMMIT"),
    ")"
);

/// The same for a JSON report.
pub fn json() -> serde_json::Value {
    serde_json::json!({ "version": VERSION, "commit": COMMIT })
}
