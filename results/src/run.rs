//! Run metadata (`run.json`): the facts of a campaign, all optional so that the same
//! reports serve `faultline check` of an imported history, which has no run facts.

use faultline_history::{Operation, Outcome, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The schema name written in `run.json`.
pub const RUN_SCHEMA: &str = "faultline-run/1";

/// Counts of client operations by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// Every client operation.
    pub total: u64,
    /// Took effect, result known.
    pub ok: u64,
    /// Definitely did not take effect.
    pub fail: u64,
    /// Unknown outcome (including invokes that never completed).
    pub info: u64,
}

impl OpCounts {
    /// Counts `ops` by outcome.
    pub fn of(ops: &[Operation]) -> OpCounts {
        let mut c = OpCounts::default();
        for op in ops {
            c.add(op.outcome);
        }
        c
    }

    /// Adds one operation that ended with `outcome`.
    pub fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
        }
    }

    /// Share of `ok` among all operations, `None` when there are none.
    pub fn ok_share(&self) -> Option<f64> {
        (self.total > 0).then(|| self.ok as f64 / self.total as f64)
    }
}

/// The facts of one run, as stored in `run.json`.
///
/// Every field is optional (or may be empty): a report of an imported history has
/// none of them but `source`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Always [`RUN_SCHEMA`] when written by this crate.
    #[serde(default = "run_schema")]
    pub schema: String,
    /// The system under test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The nodes of the cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// The plan as given (free JSON: workload, nemesis, rates, time limit, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// The seed of the generator and the nemesis schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// When the run started, RFC 3339 UTC (see [`crate::store::Utc::rfc3339`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// How long the run took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Versions of the parts involved (`faultline`, the target's image or binary, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, String>,
    /// The mechanism used for each fault family (`partition` → `nft`, `clock` →
    /// `libfaketime`, `loss` → `iptables statistic`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mechanisms: BTreeMap<String, String>,
    /// The command that reproduces the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Operation counts as the harness saw them (the reports recount from the history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<OpCounts>,
    /// Where the history came from, for a checked (imported) history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Further facts of the run (claims, capabilities, nemesis actions, ...), kept as
    /// given at the top level of `run.json`.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

fn run_schema() -> String {
    RUN_SCHEMA.to_string()
}

/// A violation the checks during a campaign found (the verdict still comes from the
/// full check at the end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveFinding {
    /// The model violated.
    pub model: String,
    /// The key, when the violation is confined to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When the violation became visible (its last operation completed), ms from the
    /// run's start.
    pub visible_at_ms: f64,
    /// When the check found it, ms from the run's start.
    pub detected_at_ms: f64,
    /// Client operations in the history checked.
    pub ops: usize,
}

/// What the checks during a campaign did (`live_check` in `run.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveCheck {
    /// Violations found, in the order found.
    pub findings: Vec<LiveFinding>,
    /// Checks of the growing history.
    pub rounds: u64,
    /// Time the checks took in all, ms.
    pub busy_ms: f64,
    /// Whether the campaign stopped early because of a finding (`--stop-on-violation`).
    pub stopped_early: bool,
    /// Why the checks ended before the run did, if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl LiveCheck {
    /// One line per finding: `linearizable on key k3 at 12.34 s, found 0.41 s later`.
    pub fn lines(&self) -> Vec<String> {
        self.findings
            .iter()
            .map(|f| {
                let key = f
                    .key
                    .as_ref()
                    .map(|k| format!(" on key {k}"))
                    .unwrap_or_default();
                format!(
                    "{}{key}: visible at {:.2} s, found {:.2} s later (history of {} operations)",
                    f.model,
                    f.visible_at_ms / 1000.0,
                    (f.detected_at_ms - f.visible_at_ms).max(0.0) / 1000.0,
                    f.ops
                )
            })
            .collect()
    }
}

impl RunInfo {
    /// Empty run facts with the schema set, for a history checked outside a run.
    pub fn imported(source: impl Into<String>) -> RunInfo {
        RunInfo {
            schema: run_schema(),
            source: Some(source.into()),
            ..RunInfo::default()
        }
    }

    /// What the checks during the run found (`live_check` in `run.json`), if they ran.
    /// A record that does not parse is treated as absent.
    pub fn live_check(&self) -> Option<LiveCheck> {
        self.extra
            .get("live_check")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// The mechanism recorded for a fault kind: by its own name (`clock_bump`), else by
    /// its family (`clock`).
    pub fn mechanism_of(&self, kind: &str, family: &str) -> Option<&str> {
        self.mechanisms
            .get(kind)
            .or_else(|| self.mechanisms.get(family))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_run_round_trips_without_run_facts() {
        let r = RunInfo::imported("jepsen/history.edn");
        let text = serde_json::to_string(&r).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"schema":"faultline-run/1","source":"jepsen/history.edn"}"#
        );
        let back: RunInfo = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, r);
        let bare: RunInfo = serde_json::from_str("{}").unwrap_or_default();
        assert_eq!(bare.schema, RUN_SCHEMA);
    }

    #[test]
    fn mechanism_falls_back_to_family() {
        let mut r = RunInfo::default();
        r.mechanisms.insert("clock".into(), "libfaketime".into());
        r.mechanisms
            .insert("clock_strobe".into(), "libfaketime strobe".into());
        assert_eq!(r.mechanism_of("clock_bump", "clock"), Some("libfaketime"));
        assert_eq!(
            r.mechanism_of("clock_strobe", "clock"),
            Some("libfaketime strobe")
        );
        assert_eq!(r.mechanism_of("kill", "kill"), None);
    }
}
