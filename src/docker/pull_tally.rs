//! Sums a pull's per-layer reports into one line per image: layers done of all, bytes
//! downloaded of the bytes known so far. The engine reports each layer separately ("Pulling fs
//! layer", "Downloading" with current/total, "Download complete", "Extracting", "Pull
//! complete", or "Already exists" for a layer that is here already).
use std::collections::BTreeMap;

use serde::Serialize;

use super::images::PullProgress;

/// How far one image's pull is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PullSnapshot {
    pub layers_done: usize,
    pub layers: usize,
    pub bytes_done: u64,
    /// The sum of the sizes the registry announced so far (a layer's size is known once its
    /// download starts), so it can grow during the pull.
    pub bytes_total: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Layer {
    done: bool,
    current: u64,
    total: Option<u64>,
    downloaded: bool,
}

#[derive(Debug, Default)]
pub struct PullTally {
    layers: BTreeMap<String, Layer>,
}

impl PullTally {
    /// Takes one report; true when a layer changed state (worth showing at once), false for a
    /// byte count only.
    pub fn see(&mut self, p: &PullProgress) -> bool {
        let Some(id) = p.layer.as_deref() else {
            return false;
        };
        // "Pulling from REPO" carries the tag as its id; "Digest:" and "Status:" carry none.
        if p.status.starts_with("Pulling from") {
            return false;
        }
        let layer = self.layers.entry(id.to_string()).or_default();
        match p.status.as_str() {
            "Downloading" => {
                layer.current = p.current.unwrap_or(layer.current);
                if p.total.is_some() {
                    layer.total = p.total;
                }
                false
            }
            "Download complete" | "Verifying Checksum" => {
                let changed = !layer.downloaded;
                layer.downloaded = true;
                changed
            }
            "Pull complete" | "Already exists" => {
                let changed = !layer.done;
                layer.done = true;
                layer.downloaded = true;
                changed
            }
            _ => false,
        }
    }

    pub fn snapshot(&self) -> PullSnapshot {
        let mut s = PullSnapshot {
            layers: self.layers.len(),
            ..PullSnapshot::default()
        };
        for l in self.layers.values() {
            if l.done {
                s.layers_done += 1;
            }
            if let Some(total) = l.total {
                s.bytes_total += total;
                s.bytes_done += if l.downloaded {
                    total
                } else {
                    l.current.min(total)
                };
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(layer: &str, status: &str, current: Option<u64>, total: Option<u64>) -> PullProgress {
        PullProgress {
            reference: "r:1".into(),
            layer: Some(layer.into()),
            status: status.into(),
            current,
            total,
        }
    }

    #[test]
    fn layers_and_bytes_add_up_over_a_pull() {
        let mut t = PullTally::default();
        assert!(!t.see(&report("1", "Pulling from specivo/specivo", None, None)));
        t.see(&report("aaa", "Already exists", None, None));
        t.see(&report("bbb", "Pulling fs layer", None, None));
        t.see(&report("ccc", "Pulling fs layer", None, None));
        assert!(!t.see(&report("bbb", "Downloading", Some(100), Some(1000))));
        assert_eq!(
            t.snapshot(),
            PullSnapshot {
                layers_done: 1,
                layers: 3,
                bytes_done: 100,
                bytes_total: 1000
            }
        );
        t.see(&report("ccc", "Downloading", Some(50), Some(500)));
        assert!(t.see(&report("bbb", "Download complete", None, None)));
        assert_eq!(t.snapshot().bytes_done, 1050);
        assert!(t.see(&report("bbb", "Pull complete", None, None)));
        t.see(&report("ccc", "Download complete", None, None));
        t.see(&report("ccc", "Extracting", Some(10), Some(900)));
        t.see(&report("ccc", "Pull complete", None, None));
        assert_eq!(
            t.snapshot(),
            PullSnapshot {
                layers_done: 3,
                layers: 3,
                bytes_done: 1500,
                bytes_total: 1500
            }
        );
    }
}
