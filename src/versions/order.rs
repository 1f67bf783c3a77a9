//! Image tags as versions: `v` prefixes, two- to four-part versions, pre-releases and variant
//! suffixes (`1.2.3-alpine` stays with `-alpine`), ordered; and the upgrade path between two
//! versions, one release at a time for 0.x, one minor at a time from 1.0 on.
use std::cmp::Ordering;

/// A tag read as a version. Tags that are not versions (`latest`, `stable`, `main`) are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub tag: String,
    pub v_prefix: bool,
    /// `16.4` is [16, 4]; `1.2.3` is [1, 2, 3].
    pub parts: Vec<u64>,
    /// `rc.1` in `1.2.3-rc.1`: dot- and digit-separated identifiers.
    pub pre: Vec<PreId>,
    /// `alpine` in `1.2.3-alpine`; empty when there is none.
    pub variant: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PreId {
    // Numeric identifiers sort before alphanumeric ones, as in SemVer.
    Num(u64),
    Alpha(String),
}

/// Words that make a suffix a pre-release rather than a variant.
const PRE_WORDS: &[&str] = &[
    "alpha", "beta", "rc", "pre", "preview", "dev", "snapshot", "a", "b",
];

fn is_pre(word: &str) -> bool {
    let letters: String = word
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_lowercase();
    PRE_WORDS.contains(&letters.as_str())
        && word[letters.len()..]
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
}

fn pre_ids(s: &str) -> Vec<PreId> {
    let mut out = Vec::new();
    for piece in s.split('.') {
        // "beta2" is beta, 2.
        let letters: String = piece.chars().take_while(|c| !c.is_ascii_digit()).collect();
        let digits = &piece[letters.len()..];
        if !letters.is_empty() {
            out.push(PreId::Alpha(letters.to_ascii_lowercase()));
        }
        if !digits.is_empty() {
            match digits.parse() {
                Ok(n) => out.push(PreId::Num(n)),
                Err(_) => out.push(PreId::Alpha(digits.to_string())),
            }
        }
    }
    out
}

impl Version {
    pub fn parse(tag: &str) -> Option<Version> {
        let (v_prefix, rest) = match tag.strip_prefix(['v', 'V']) {
            Some(r) => (true, r),
            None => (false, tag),
        };
        let (core, suffix) = match rest.split_once('-') {
            Some((c, s)) => (c, Some(s)),
            None => (rest, None),
        };
        // A pre-release may also follow the core directly: 1.2.3rc1.
        let digits_end = core
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(core.len());
        let (numbers, glued) = core.split_at(digits_end);
        if numbers.is_empty() || numbers.starts_with('.') || numbers.ends_with('.') {
            return None;
        }
        let parts: Vec<u64> = numbers
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if parts.len() > 4 {
            return None;
        }
        let mut pre = Vec::new();
        if !glued.is_empty() {
            if !is_pre(glued) {
                return None;
            }
            pre = pre_ids(glued);
        }
        let mut variant = String::new();
        if let Some(suffix) = suffix {
            let mut words = suffix.split('-').peekable();
            if pre.is_empty()
                && let Some(first) = words.peek()
                && is_pre(first)
            {
                pre = pre_ids(first);
                words.next();
            }
            variant = words.collect::<Vec<_>>().join("-");
        }
        // One part alone ("2024") is a version only without a variant or pre-release... and
        // even then it is more often a date or a build number: accept it, it orders fine.
        Some(Version {
            tag: tag.to_string(),
            v_prefix,
            parts,
            pre,
            variant,
        })
    }

    pub fn is_pre_release(&self) -> bool {
        !self.pre.is_empty()
    }

    fn part(&self, i: usize) -> u64 {
        self.parts.get(i).copied().unwrap_or(0)
    }

    /// The same kind of tag: same variant, same number of parts, same `v` style.
    pub fn same_family(&self, other: &Version) -> bool {
        self.variant == other.variant
            && self.parts.len() == other.parts.len()
            && self.v_prefix == other.v_prefix
    }

    /// The step size of the upgrade path: each release before 1.0, each minor from 1.0 on.
    fn step_key(&self) -> (u64, u64, u64) {
        if self.part(0) == 0 {
            (0, self.part(1), self.part(2))
        } else {
            (self.part(0), self.part(1), 0)
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        for i in 0..n {
            match self.part(i).cmp(&other.part(i)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        // A release sorts after its pre-releases.
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        self.pre
            .cmp(&other.pre)
            .then_with(|| self.parts.len().cmp(&other.parts.len()))
            .then_with(|| self.tag.cmp(&other.tag))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The tags newer than `current` that an upgrade could go to, oldest first: versions of the
/// same family; pre-releases only when `current` is one.
pub fn newer<'a>(current: &Version, tags: impl IntoIterator<Item = &'a str>) -> Vec<Version> {
    let mut out: Vec<Version> = tags
        .into_iter()
        .filter_map(Version::parse)
        .filter(|v| v.same_family(current))
        .filter(|v| current.is_pre_release() || !v.is_pre_release())
        .filter(|v| v > current)
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.tag == b.tag);
    out
}

/// The hops from `current` to `target` through `available` (the newer versions, any order):
/// every release on the way for 0.x, the newest patch of every minor on the way from 1.0 on;
/// the last hop is `target`.
pub fn path(current: &Version, target: &Version, available: &[Version]) -> Vec<Version> {
    let mut between: Vec<&Version> = available
        .iter()
        .filter(|v| *v > current && *v < target && !v.is_pre_release())
        .collect();
    between.sort();
    let mut hops: Vec<Version> = Vec::new();
    for v in between {
        if v.step_key() == current.step_key() || v.step_key() == target.step_key() {
            continue;
        }
        // The newest of each step: a later patch of the same minor replaces the earlier one.
        match hops.last_mut() {
            Some(last) if last.step_key() == v.step_key() => *last = v.clone(),
            _ => hops.push(v.clone()),
        }
    }
    hops.push(target.clone());
    hops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(tag: &str) -> Version {
        Version::parse(tag).unwrap()
    }

    fn tags(vs: &[Version]) -> Vec<&str> {
        vs.iter().map(|v| v.tag.as_str()).collect()
    }

    #[test]
    fn parses_prefixes_parts_pre_releases_and_variants() {
        let x = v("v1.2.3-rc.1-alpine");
        assert!(x.v_prefix);
        assert_eq!(x.parts, [1, 2, 3]);
        assert_eq!(x.pre, [PreId::Alpha("rc".into()), PreId::Num(1)]);
        assert_eq!(x.variant, "alpine");
        assert_eq!(v("16.4-bookworm").variant, "bookworm");
        assert_eq!(v("16.4-bookworm").parts, [16, 4]);
        assert!(v("2.0.0beta2").is_pre_release());
        assert!(!v("1.2.3-alpine").is_pre_release());
        for not_a_version in [
            "latest",
            "stable",
            "main",
            "sha-1a2b3c",
            "1..2",
            ".1",
            "1.2.3.4.5",
        ] {
            assert_eq!(Version::parse(not_a_version), None, "{not_a_version}");
        }
    }

    #[test]
    fn orders_numerically_with_pre_releases_before_their_release() {
        let mut all: Vec<Version> = [
            "0.1.10",
            "0.1.9",
            "0.2.0",
            "0.1.10-rc.2",
            "0.1.10-rc.10",
            "0.1.10-beta",
            "1.0.0",
        ]
        .iter()
        .map(|t| v(t))
        .collect();
        all.sort();
        assert_eq!(
            tags(&all),
            [
                "0.1.9",
                "0.1.10-beta",
                "0.1.10-rc.2",
                "0.1.10-rc.10",
                "0.1.10",
                "0.2.0",
                "1.0.0"
            ]
        );
        assert!(v("16.10") > v("16.9"));
    }

    #[test]
    fn newer_keeps_the_running_variant_and_skips_pre_releases() {
        let current = v("1.2.3-alpine");
        let list = [
            "1.2.4-alpine",
            "1.2.4",
            "1.3.0-alpine",
            "1.3.0-rc.1-alpine",
            "1.2.2-alpine",
            "latest",
            "1.3-alpine",
        ];
        assert_eq!(
            tags(&newer(&current, list)),
            ["1.2.4-alpine", "1.3.0-alpine"]
        );
        let pre = v("2.0.0-rc.1");
        assert_eq!(
            tags(&newer(&pre, ["2.0.0-rc.2", "2.0.0", "1.9.0"])),
            ["2.0.0-rc.2", "2.0.0"]
        );
    }

    #[test]
    fn the_path_takes_each_release_before_1_0_and_each_minor_after() {
        let avail: Vec<Version> = ["0.1.10", "0.1.11", "0.1.12", "0.1.13", "0.1.14"]
            .iter()
            .map(|t| v(t))
            .collect();
        assert_eq!(
            tags(&path(&v("0.1.9"), &v("0.1.12"), &avail)),
            ["0.1.10", "0.1.11", "0.1.12"]
        );
        let avail: Vec<Version> = [
            "1.2.4", "1.3.0", "1.3.2", "1.4.0", "1.4.1", "2.0.0", "2.1.0",
        ]
        .iter()
        .map(|t| v(t))
        .collect();
        // 1.2.x patches are skipped (same minor), 1.3 by its newest patch, 2.0 on the way.
        assert_eq!(
            tags(&path(&v("1.2.3"), &v("2.1.0"), &avail)),
            ["1.3.2", "1.4.1", "2.0.0", "2.1.0"]
        );
        assert_eq!(tags(&path(&v("1.2.3"), &v("1.2.4"), &avail)), ["1.2.4"]);
    }
}
