//! Where a rollback says the newer data went. After an attempt that was killed or failed half
//! way, several copies lie aside for one directory or database. The first taken after the
//! upgrade is the user's newer data as it was before going back; a later one holds what an
//! interrupted attempt had put back, or the newer data again when an attempt failed and put it
//! back (or when another rollback ran since). Sorted by the time in their names; the later ones
//! are listed with what they may hold, and nobody is told to remove one unseen.
use serde::Serialize;

use crate::probe::kept_aside::KeptAside;

/// The kept-aside places, sorted into what they hold.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Sorted {
    /// The newer data, as it was before the first attempt to go back: one per source.
    pub newer_data: Vec<KeptAside>,
    /// What interrupted attempts had put back, moved aside again: the backup's data, not the
    /// user's.
    pub attempt_copies: Vec<KeptAside>,
    /// Left by rollbacks of earlier upgrades, still there.
    pub older: Vec<KeptAside>,
}

/// The `YYYYMMDDTHHMMSSZ` in a kept-aside name (`…before-rollback-STAMP…`,
/// `…_before_rollback_STAMP`).
fn stamp(place: &str) -> Option<&str> {
    let at = place.rfind("rollback")? + "rollback".len() + 1;
    let s = place.get(at..at + 16)?;
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    (digits(0..8) && b[8] == b'T' && digits(9..15) && b[15] == b'Z').then_some(s)
}

/// Sorts `all` (everything kept aside for the stack, this run's included) by the upgrade that
/// was undone, which started at `since` (its run id's stamp; None: all are the newer data or
/// older, as far as hoist can tell).
pub fn sort(all: Vec<KeptAside>, since: Option<&str>) -> Sorted {
    let mut sorted = Sorted::default();
    let mut after: Vec<(String, KeptAside)> = Vec::new();
    for k in all {
        match (stamp(&k.place), since) {
            (Some(s), Some(since)) if s >= since => after.push((s.to_string(), k)),
            (_, Some(_)) => sorted.older.push(k),
            (_, None) => sorted.newer_data.push(k),
        }
    }
    after.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, k) in after {
        if sorted.newer_data.iter().any(|n| n.of == k.of) {
            sorted.attempt_copies.push(k);
        } else {
            sorted.newer_data.push(k);
        }
    }
    sorted
}

/// The clause for the rollback's last sentence.
pub fn words(sorted: &Sorted) -> String {
    let list = |v: &[KeptAside]| {
        v.iter()
            .map(KeptAside::words)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut out = String::new();
    if !sorted.newer_data.is_empty() {
        out.push_str(&format!(
            "; the newer data, as it was before going back, is kept aside: {}",
            list(&sorted.newer_data)
        ));
    }
    if !sorted.attempt_copies.is_empty() {
        // Which of them holds what cannot be told from names alone: an interrupted attempt's
        // copy holds the backup's data it had put back, but one made after an attempt that
        // failed and put the newer data back holds the newer data again, as may a copy of
        // another rollback since that upgrade. Nobody is told to remove one unseen.
        out.push_str(&format!(
            "; also kept aside since then, by later attempts or other rollbacks: {} — each holds either what an interrupted attempt had put back (the backup's data) or the newer data again (after an attempt that failed and put it back): look at what each holds before you remove any",
            list(&sorted.attempt_copies)
        ));
    }
    if !sorted.older.is_empty() {
        out.push_str(&format!(
            "; kept aside by rollbacks of earlier upgrades and still there: {}",
            list(&sorted.older)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(place: &str) -> KeptAside {
        KeptAside {
            kind: "files",
            place: place.into(),
            of: "/srv/uploads".into(),
        }
    }

    #[test]
    fn stamps_are_read_from_every_kind_of_name() {
        assert_eq!(
            stamp("/srv/uploads.before-rollback-20261202T204614Z"),
            Some("20261202T204614Z")
        );
        assert_eq!(
            stamp("app_before_rollback_20261202T204614Z"),
            Some("20261202T204614Z")
        );
        assert_eq!(
            stamp("/b/app-before-rollback-20261202T204614Z.sql.gz"),
            Some("20261202T204614Z")
        );
        assert_eq!(stamp("/srv/uploads.before-rollback-x"), None);
    }

    #[test]
    fn after_a_killed_attempt_the_first_copy_is_the_newer_data() {
        let killed = files("/srv/uploads.before-rollback-20261202T204614Z");
        let this_run = files("/srv/uploads.before-rollback-20261202T204627Z");
        let old = files("/srv/uploads.before-rollback-20261101T000000Z");
        let db = KeptAside {
            kind: "database",
            place: "app_before_rollback_20261202T204627Z".into(),
            of: "database app".into(),
        };
        let sorted = sort(
            vec![this_run.clone(), old.clone(), killed.clone(), db.clone()],
            Some("20261202T204600Z"),
        );
        assert_eq!(sorted.newer_data, vec![killed, db]);
        assert_eq!(sorted.attempt_copies, vec![this_run]);
        assert_eq!(sorted.older, vec![old]);
        let w = words(&sorted);
        assert!(
            w.contains("newer data, as it was before going back, is kept aside: files of /srv/uploads in /srv/uploads.before-rollback-20261202T204614Z"),
            "{w}"
        );
        assert!(
            w.contains("look at what each holds before you remove any"),
            "{w}"
        );
    }

    #[test]
    fn one_rollback_keeps_one_copy_and_calls_it_the_newer_data() {
        let this_run = files("/srv/uploads.before-rollback-20261202T204627Z");
        let sorted = sort(vec![this_run.clone()], Some("20261202T204600Z"));
        assert_eq!(sorted.newer_data, vec![this_run]);
        assert!(sorted.attempt_copies.is_empty() && sorted.older.is_empty());
        assert_eq!(words(&Sorted::default()), "");
    }
}
