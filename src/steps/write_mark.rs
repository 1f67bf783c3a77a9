//! The database's write tally written to the journal around each restart of an upgrade:
//! before `up -d`, and once the new version started (or failed to). A later rollback counts
//! the app's own writes outside these windows as what a restore takes away; the migrations'
//! writes inside them are the upgrade's (`rollback_plan::losses`).
use crate::db::DbProbe;
use crate::rollback_plan::Moment;
use crate::run::Run;

/// Records the tally of `db` (a probe of the database, as `facts` reads it) at `moment` of the
/// start of `hop`. A stack without a database records nothing; a database that would not say
/// is recorded as such, so the rollback says it cannot count rather than "nothing".
pub(crate) async fn record(
    run: &Run<'_>,
    moment: Moment,
    hop: &str,
    db: Option<&Result<DbProbe, String>>,
) {
    let (Some(journal), Some(run_id), Some(db)) = (run.journal, run.run_id.as_deref(), db) else {
        return;
    };
    let writes = db
        .as_ref()
        .ok()
        .and_then(|p| p.writes.as_ref().ok())
        .and_then(|w| serde_json::to_string(w).ok());
    if let Err(e) = journal
        .record_write_mark(run_id, moment.as_str(), hop, writes.as_deref())
        .await
    {
        // Without the mark a rollback counts the migration's writes as the app's: it says more
        // is lost, never less.
        tracing::warn!("{e}");
    }
}
