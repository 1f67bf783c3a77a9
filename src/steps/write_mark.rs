//! The database's write tally written to the journal around each restart of an upgrade:
//! before `up -d`, and once the new version started (or failed to). A later rollback counts
//! the app's own writes outside these windows as what a restore takes away; the migrations'
//! writes inside them are the upgrade's (`rollback_plan::losses`).
use std::time::{Duration, Instant};

use crate::db::{DbKind, DbProbe, Writes};
use crate::probe::facts::{self, Facts};
use crate::rollback_plan::Moment;
use crate::run::Run;
use crate::steps::stop::Grace;

/// Records the tally of `db` (a probe of the database, as `facts` reads it) at `moment` of the
/// start of `hop`. A stack without a database records nothing; a database that would not say
/// is recorded as such, so the rollback says it cannot count rather than "nothing".
pub(crate) async fn record(
    run: &Run<'_>,
    moment: Moment,
    hop: &str,
    db: Option<&Result<DbProbe, String>>,
) {
    let writes = db.map(|d| d.clone().and_then(|p| p.writes));
    record_writes(run, moment, hop, writes).await;
}

/// Before `up -d` of `hop`. PostgreSQL publishes a connection's counts when it closes, or up to
/// ten seconds after it goes idle: a write made just before the restart would be counted only
/// after the mark, as the migration's. So with PostgreSQL the app's services are stopped first
/// (their connections close; `up -d` would stop them next anyway) and the tally read until two
/// readings agree. MySQL's and SQLite's digests read the rows themselves, with no delay.
/// Returns how long the app was stopped before the restart (part of the downtime).
pub(crate) async fn before_restart(
    run: &Run<'_>,
    facts: &Facts,
    stop_timeout: Option<Duration>,
    hop: &str,
) -> u64 {
    let Some(db) = &facts.view.database else {
        return 0;
    };
    if db.kind != DbKind::Postgres {
        let writes = facts::database_writes(facts).await;
        record_writes(run, Moment::BeforeRestart, hop, writes).await;
        return 0;
    }
    let started = Instant::now();
    if let Some(running) = facts::running_again(facts).await {
        tracing::info!(
            "stopping the app's services so that every write before the restart is counted"
        );
        // Said as Docker's events during the restart are (the restart's follow starts later).
        let stopped = |name: &str| {
            if let Some(c) = running.containers.iter().find(|c| c.name == name) {
                run.emit(crate::run::Event::Container {
                    service: c.service.clone(),
                    container: c.name.clone(),
                    action: "stop".to_string(),
                    exit_code: None,
                });
            }
        };
        // As long as `up -d` would give them, no longer: this stop is the one it would do.
        let grace = stop_timeout.map_or(Grace::AsCompose, Grace::Fixed);
        crate::steps::stop::stop_services(&running, &facts.view.upgraded, grace, &stopped).await;
    }
    let last = settled_writes(facts).await;
    record_writes(run, Moment::BeforeRestart, hop, last).await;
    started.elapsed().as_millis() as u64
}

/// The database's write tally once the app's services stopped: read until two readings 50 ms
/// apart agree (2 s at most), as the stopped connections' backends publish their counts as
/// they exit, within milliseconds.
pub(crate) async fn settled_writes(facts: &Facts) -> Option<Result<Writes, String>> {
    let mut last = facts::database_writes(facts).await;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let again = facts::database_writes(facts).await;
        let settled = matches!((&last, &again), (Some(Ok(a)), Some(Ok(b))) if a == b);
        last = again;
        if settled {
            break;
        }
    }
    last
}

/// Before a Swarm's update: the tally as it reads now. Swarm replaces a task itself and would
/// start again one hoist stopped, so nothing is stopped first: a write made in the last seconds
/// before the update may be counted after the mark.
pub(crate) async fn before_swarm_update(run: &Run<'_>, facts: &Facts, hop: &str) {
    if facts.view.database.is_none() {
        return;
    }
    let writes = facts::database_writes(facts).await;
    record_writes(run, Moment::BeforeRestart, hop, writes).await;
}

async fn record_writes(
    run: &Run<'_>,
    moment: Moment,
    hop: &str,
    writes: Option<Result<Writes, String>>,
) {
    let (Some(journal), Some(run_id), Some(writes)) = (run.journal, run.run_id.as_deref(), writes)
    else {
        return;
    };
    let json = writes.ok().and_then(|w| serde_json::to_string(&w).ok());
    let result = journal
        .record_write_mark(run_id, moment.as_str(), hop, json.as_deref())
        .await;
    // Without the mark a rollback counts the migration's writes as the app's: it says more is
    // lost, never less; the run's record is incomplete all the same.
    run.journaled(result, "record the database's writes");
}
