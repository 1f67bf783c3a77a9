//! Whether the upgrade's question offers a rehearsal, and what one would cost, said up front:
//! offered when the next release is not known to have run here and a copy of the stack can be
//! made at all.
use crate::context::Context;
use crate::journal::{Journal, RunKind};
use crate::run::RehearsalOffer;

/// What the copy needs beyond the data and the database (the same margin `data.rs` keeps).
const MARGIN_BYTES: u64 = 256 * 1000 * 1000;

/// Rates for the guess of its time. On the test bed (2 cores, a fast disk, the data still in
/// the page cache after the backup) `bench/rehearsal.sh` measured 12.2 s at 100 MB and 12.5 s
/// at 1 GB, 9 s of it the fixture's start and watch. A small VPS's disk copies at 100-200 MB/s
/// when the data is not cached, so the guess takes the slower figures: the data at 150 MB/s,
/// the database at 20 MB/s of its size, 15 s per release to start, watch and check. Said as
/// "about", never a promise.
const COPY_BYTES_PER_SEC: u64 = 150 * 1000 * 1000;
const LOAD_BYTES_PER_SEC: u64 = 20 * 1000 * 1000;
const START_SECS_PER_RELEASE: u64 = 15;
const SETUP_SECS: u64 = 5;

/// The offer for an upgrade whose first release is `next`, through `releases` releases, with
/// `data_bytes` of data and `database_bytes` of database; None when `next` ran here before or
/// no copy of this stack can be made.
pub(in crate::upgrade) async fn offer(
    ctx: &Context,
    facts: &crate::probe::facts::Facts,
    next: &str,
    releases: usize,
    (data_bytes, database_bytes): (u64, u64),
) -> Option<RehearsalOffer> {
    super::precheck(facts).await.ok()?;
    let view = &facts.view;
    let why = match history_of(&ctx.state_dir, &view.project, next).await {
        Here::Ran => return None,
        Here::Failed => format!("an upgrade to {next} failed here before"),
        Here::FailedOnCopy => format!("{next} failed a rehearsal here before"),
        Here::Unknown => format!("{next} has not run here before"),
    };
    Some(cost(why, releases, data_bytes, database_bytes))
}

/// The cost of a rehearsal, by the rates above.
fn cost(why: String, releases: usize, data_bytes: u64, database_bytes: u64) -> RehearsalOffer {
    let releases = u64::try_from(releases.max(1)).unwrap_or(u64::MAX);
    let about_secs = SETUP_SECS
        + data_bytes / COPY_BYTES_PER_SEC
        + database_bytes / LOAD_BYTES_PER_SEC
        + releases.saturating_mul(START_SECS_PER_RELEASE);
    RehearsalOffer {
        why,
        disk_bytes: data_bytes
            .saturating_add(database_bytes)
            .saturating_add(MARGIN_BYTES),
        about_secs,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Here {
    /// An upgrade reached it, or the app ran it before an upgrade from it.
    Ran,
    /// An upgrade to it failed, and none reached it since.
    Failed,
    /// Only a rehearsal of it failed (on a throwaway copy).
    FailedOnCopy,
    Unknown,
}

/// What the journal says of `version` here. A journal that cannot be read says nothing: the
/// rehearsal is offered.
async fn history_of(state_dir: &std::path::Path, project: &str, version: &str) -> Here {
    let Ok(journal) = Journal::open(state_dir).await else {
        return Here::Unknown;
    };
    let runs = journal.runs(project, 500).await.unwrap_or_default();
    journal.close().await;
    let (mut failed, mut on_copy) = (false, false);
    // Having run here once is enough, whatever failed before or after (a failure may have
    // been of its moment: a full disk, a worker killed).
    for r in &runs {
        if r.kind != RunKind::Upgrade {
            continue;
        }
        if r.from_version.as_deref() == Some(version) {
            return Here::Ran;
        }
        if r.to_version.as_deref() == Some(version) {
            match r.outcome.as_str() {
                "succeeded" => return Here::Ran,
                "failed" | "rolled_back" if r.failed_on_a_copy() => on_copy = true,
                "failed" | "rolled_back" => failed = true,
                _ => {}
            }
        }
    }
    match (failed, on_copy) {
        (true, _) => Here::Failed,
        (false, true) => Here::FailedOnCopy,
        _ => Here::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Outcome;

    #[tokio::test]
    async fn a_release_that_ran_here_is_not_offered_and_one_that_failed_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).await.unwrap();
        for (from, to, outcome) in [
            ("1.0", "1.1", Outcome::Succeeded),
            ("1.1", "1.2", Outcome::RolledBack),
            ("1.1", "1.3", Outcome::Failed),
            ("1.1", "1.3", Outcome::Succeeded),
        ] {
            let id = j
                .start_run(RunKind::Upgrade, "p", dir.path(), Some(from), Some(to))
                .await
                .unwrap();
            j.finish_run(&id, &outcome, 0, "", "{}").await.unwrap();
        }
        j.close().await;
        let here = |v: &'static str| history_of(dir.path(), "p", v);
        // Reached by an upgrade, or the version an upgrade started from.
        assert_eq!(here("1.1").await, Here::Ran);
        assert_eq!(here("1.0").await, Here::Ran);
        // Failed and never reached since; reached after its failure.
        assert_eq!(here("1.2").await, Here::Failed);
        assert_eq!(here("1.3").await, Here::Ran);
        assert_eq!(here("2.0").await, Here::Unknown);
        // Another project's history says nothing of this one.
        assert_eq!(history_of(dir.path(), "q", "1.1").await, Here::Unknown);
    }

    #[test]
    fn the_cost_grows_with_the_data_the_database_and_the_releases() {
        let small = cost("x".into(), 1, 0, 0);
        assert_eq!(small.disk_bytes, MARGIN_BYTES);
        assert_eq!(small.about_secs, SETUP_SECS + START_SECS_PER_RELEASE);
        let big = cost("x".into(), 3, 1_500_000_000, 200_000_000);
        assert_eq!(big.disk_bytes, 1_700_000_000 + MARGIN_BYTES);
        assert_eq!(
            big.about_secs,
            SETUP_SECS + 10 + 10 + 3 * START_SECS_PER_RELEASE
        );
        assert_eq!(
            big.cost_words(),
            "about 70 s and 2.0 GB of free space on Docker's disk while it runs"
        );
    }
}
