//! How a run ended, as the object `--json` prints last and the journal keeps. An upgrade's is
//! typed (`UpgradeSummary`): the engine and the front ends decide on its fields, not on words
//! looked up in JSON. A rollback's is still JSON.
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{StepStatus, UpgradePlan};
use crate::journal::Outcome;

/// A summary's `"type"`: always `"summary"` (the last line of JSON Lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryTag {
    #[default]
    Summary,
}

/// An upgrade summary's `"command"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeCommand {
    #[default]
    Upgrade,
}

/// One step as the summary lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSummary {
    pub name: String,
    pub status: StepStatus,
    pub ms: u64,
    /// The hop's version, in a multi-hop upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop: Option<String>,
}

/// Some(None) is written as `null`, None not at all: a few keys are present-and-null once the
/// run got that far (e.g. no database, so no schema revision).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How an upgrade ended. Absent keys stay absent in JSON (`skip_serializing_if`), so the
/// object is the one `--json` has always printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradeSummary {
    #[serde(rename = "type")]
    pub tag: SummaryTag,
    pub command: UpgradeCommand,
    /// Absent when refused before the running version was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    pub outcome: Outcome,
    pub exit_code: u8,
    /// The schema revision before (null without a database); absent when refused.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub schema_before: Option<Option<String>>,
    /// A dry run's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Box<UpgradePlan>>,
    /// The backup taken before the change (or kept, when an interrupted run is continued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    /// A pin was written: the stack is no longer as it was.
    #[serde(default, skip_serializing_if = "is_false")]
    pub changed: bool,
    /// The version `.env` pins now, once it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_now: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub schema_after: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub fingerprint_before: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub fingerprint_after: Option<Option<String>>,
    /// The smoke checks' results (`steps::smoke::SmokeResult`s); read by people, not by hoist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<Value>,
    /// What changed in the upgraded services' environment and labels since the backup (secret
    /// values masked), when the backup kept a snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_changes: Option<Vec<String>>,
    /// The checks beyond HTTP (`steps::checks::Outcome`s), when the stack has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Value>,
    /// The rehearsal on a throwaway copy (`--rehearse`): whether it passed, its migrations and
    /// their time, the schema it reached, what differed from the real app, its cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<Value>,
    /// The app's downtime over all hops (null when one restart's could not be measured).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub downtime_ms: Option<Option<u64>>,
    /// Why it failed after the change, in a few words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The failing containers' last log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<BTreeMap<String, Vec<String>>>,
    /// The Docker engine went away: the release is not to blame.
    #[serde(default, skip_serializing_if = "is_false")]
    pub engine_gone: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops_done: Option<Vec<String>>,
    /// The interrupted run this one continued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<String>,
    /// Unhealthy services gone past (at the user's word, or expected when continuing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overridden: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default)]
    pub steps: Vec<StepSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The run's closing sentence when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why no rollback could be offered after a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_error: Option<String>,
    /// The summary of the rollback that followed a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Value>,
    /// Left for a person's decision: the app's services hoist stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_services: Option<Vec<String>>,
}

impl UpgradeSummary {
    pub fn new(to: &str, outcome: Outcome, exit_code: u8) -> UpgradeSummary {
        UpgradeSummary {
            tag: SummaryTag::Summary,
            command: UpgradeCommand::Upgrade,
            from: None,
            to: to.to_string(),
            outcome,
            exit_code,
            schema_before: None,
            plan: None,
            backup: None,
            changed: false,
            pinned_now: None,
            schema_after: None,
            fingerprint_before: None,
            fingerprint_after: None,
            smoke: None,
            checks: None,
            rehearsal: None,
            config_changes: None,
            downtime_ms: None,
            failure: None,
            evidence: None,
            engine_gone: false,
            hops_done: None,
            resumed_from: None,
            overridden: Vec::new(),
            run_id: None,
            steps: Vec::new(),
            duration_ms: None,
            error: None,
            rollback_error: None,
            rollback: None,
            stopped_services: None,
        }
    }
}

/// What `--json` prints last and the journal keeps: an upgrade's (typed) or a rollback's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Summary {
    Upgrade(Box<UpgradeSummary>),
    Rollback(Value),
}

impl From<UpgradeSummary> for Summary {
    fn from(s: UpgradeSummary) -> Summary {
        Summary::Upgrade(Box::new(s))
    }
}

impl From<Value> for Summary {
    fn from(v: Value) -> Summary {
        Summary::Rollback(v)
    }
}

/// What the recorder needs of any summary: how the run ended, and where its error goes.
pub trait RunSummary: Serialize {
    fn outcome(&self) -> Outcome;
    fn set_error(&mut self, sentence: &str);
}

impl RunSummary for UpgradeSummary {
    fn outcome(&self) -> Outcome {
        self.outcome.clone()
    }

    fn set_error(&mut self, sentence: &str) {
        self.error = Some(sentence.to_string());
    }
}

impl RunSummary for Value {
    fn outcome(&self) -> Outcome {
        Outcome::parse(self["outcome"].as_str().unwrap_or("failed"))
    }

    fn set_error(&mut self, sentence: &str) {
        self["error"] = Value::from(sentence);
    }
}

impl RunSummary for Summary {
    fn outcome(&self) -> Outcome {
        match self {
            Summary::Upgrade(s) => s.outcome(),
            Summary::Rollback(v) => v.outcome(),
        }
    }

    fn set_error(&mut self, sentence: &str) {
        match self {
            Summary::Upgrade(s) => s.set_error(sentence),
            Summary::Rollback(v) => v.set_error(sentence),
        }
    }
}

impl Summary {
    pub fn downtime_ms(&self) -> Option<u64> {
        match self {
            Summary::Upgrade(s) => s.downtime_ms.flatten(),
            Summary::Rollback(v) => v["downtime_ms"].as_u64(),
        }
    }

    pub fn run_id(&self) -> Option<&str> {
        match self {
            Summary::Upgrade(s) => s.run_id.as_deref(),
            Summary::Rollback(v) => v["run_id"].as_str(),
        }
    }

    /// The failing containers' last log lines, when the run saw them.
    pub fn evidence(&self) -> BTreeMap<String, Vec<String>> {
        match self {
            Summary::Upgrade(s) => s.evidence.clone().unwrap_or_default(),
            Summary::Rollback(v) => {
                serde_json::from_value(v["evidence"].clone()).unwrap_or_default()
            }
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_string(self) {
            Ok(text) => f.write_str(&text),
            Err(_) => f.write_str("{}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_refusal_prints_the_keys_it_always_printed() {
        let s = UpgradeSummary {
            error: Some("no".into()),
            ..UpgradeSummary::new("0.1.10", Outcome::Refused, 3)
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"type": "summary", "command": "upgrade", "to": "0.1.10", "outcome": "refused",
                   "exit_code": 3, "error": "no", "steps": []})
        );
    }

    #[test]
    fn keys_absent_stay_absent_and_nulls_stay_null_both_ways() {
        let mut s = UpgradeSummary {
            from: Some("0.1.9".into()),
            schema_before: Some(None),
            backup: Some("/b/1".into()),
            downtime_ms: Some(None),
            steps: vec![StepSummary {
                name: "pin".into(),
                status: StepStatus::Done,
                ms: 3,
                hop: Some("0.1.10".into()),
            }],
            ..UpgradeSummary::new("0.1.10", Outcome::Failed, 1)
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["schema_before"], Value::Null);
        assert!(v.get("schema_before").is_some() && v.get("downtime_ms").is_some());
        for absent in [
            "changed",
            "engine_gone",
            "overridden",
            "resumed_from",
            "schema_after",
        ] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
        assert_eq!(
            v["steps"],
            json!([{"name": "pin", "status": "done", "ms": 3, "hop": "0.1.10"}])
        );
        let back: UpgradeSummary = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        s.changed = true;
        s.engine_gone = true;
        s.overridden = vec!["worker".into()];
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            (&v["changed"], &v["engine_gone"]),
            (&json!(true), &json!(true))
        );
        assert_eq!(serde_json::from_value::<UpgradeSummary>(v).unwrap(), s);
    }

    #[test]
    fn front_ends_read_either_summary_alike() {
        let mut up = UpgradeSummary::new("2", Outcome::Succeeded, 0);
        up.downtime_ms = Some(Some(1200));
        up.run_id = Some("r1".into());
        up.evidence = Some(BTreeMap::from([("api".into(), vec!["boom".into()])]));
        let up = Summary::from(up);
        let rb = Summary::from(
            json!({"outcome": "succeeded", "downtime_ms": 1200, "run_id": "r1",
                                      "evidence": {"api": ["boom"]}}),
        );
        for s in [&up, &rb] {
            assert_eq!(s.outcome(), Outcome::Succeeded);
            assert_eq!(s.downtime_ms(), Some(1200));
            assert_eq!(s.run_id(), Some("r1"));
            assert_eq!(s.evidence()["api"], vec!["boom".to_string()]);
        }
        // Printed as the object itself, not wrapped in a variant.
        assert!(
            up.to_string()
                .starts_with(r#"{"type":"summary","command":"upgrade""#)
        );
        let mut failed = Summary::from(json!({"outcome": "failed"}));
        failed.set_error("it broke");
        assert_eq!(
            failed.to_string(),
            r#"{"outcome":"failed","error":"it broke"}"#
        );
    }
}
