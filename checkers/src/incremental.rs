//! Checking a history while it is being recorded.
//!
//! A campaign's history grows one event at a time. [`Incremental`] takes the events in
//! index order and, when asked, checks the history **cut at that point**: every operation
//! invoked so far, those still in flight counted as `info` (they may take effect later, or
//! never). A violation of such a cut is a violation of every history that extends it, so
//! the campaign can show it (and stop) the moment it is found; the full check at the end
//! still decides the verdict.
//!
//! Why a cut's violation stands, model by model:
//!
//! - **Linearizability.** Take a linearization of the whole history. Every operation that
//!   completed before the cut precedes, in real time, every operation invoked after it, so
//!   it comes before all of them in the linearization. Cut the linearization before the
//!   first operation invoked after the cut: what is left holds every operation completed
//!   before the cut, in the same order with the same states, plus some operations still in
//!   flight at the cut, which the cut history allows to take effect (as `info`) with any
//!   result. So the cut history is linearizable too. (Linearizability is also checked per
//!   key, so only the keys that changed since the last check are checked again.)
//! - **The session, causal and sequential models.** An operation invoked after the cut
//!   follows, in its process, every operation of that process in the cut, and is in the
//!   causal past of an operation of the cut only if such an operation read its write.
//!   These models ignore real time, so a read may be explained by a write invoked after
//!   it; they are checked on a cut only when the caller guarantees that no value is ever
//!   written twice to a key ([`IncrementalSpec::unique_values`]) and every value read in
//!   the cut is written by an operation of the cut. Then each read's writer is in the
//!   cut, no later operation is in the causal past of the cut, and dropping the later
//!   operations from an order that explains the whole history leaves an order that
//!   explains the cut (an operation of the cut that completed later as `fail` or `info`
//!   is `info` in the cut, free to have happened or not). Other cuts are left to the
//!   check at the end. Linearizability needs neither rule: a read that completed before
//!   its only writer was invoked has no linearization in any extension.
//!
//! The checks of a cut are the offline checkers themselves ([`check_linearizable`],
//! [`check_models`]) on the cut: nothing here decides anything on its own.

use crate::lattice::{check_models, ConsistencyOptions, ModelName};
use crate::lin::{check_linearizable, LinOptions};
use crate::model::DataModel;
use crate::verdict::Witness;
use faultline_history::{Event, HistoryError, Key, Operation, Outcome, Paired, Pairer, ValueKey};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use std::time::{Duration, Instant};

/// What to check while the history grows.
#[derive(Debug, Clone)]
pub struct IncrementalSpec {
    /// Linearizability with this data model, per key.
    pub linearizable: Option<DataModel>,
    /// Other models, checked on the whole cut, and only when `unique_values` holds.
    pub others: Vec<ModelName>,
    /// The caller guarantees that no value is written twice to one key over the whole
    /// history, the operations still to come included (a campaign's generator writes
    /// fresh values). The other models need it: with a repeated value, a read in the cut
    /// may be explained by a write still to come. Each cut is also checked for it, and a
    /// cut that repeats a value is not checked for the other models.
    pub unique_values: bool,
    /// Time allowed to one check of one cut (per model family); a check that runs out
    /// finds nothing this time.
    pub time_limit: Duration,
    /// The value of every key before any write (`null`: never written).
    pub initial: Value,
    /// Knossos's semantics: an `ok` read of `null` observed nothing.
    pub nil_reads_unknown: bool,
}

impl IncrementalSpec {
    /// Linearizability with `model` and `others`, for a history whose keys start
    /// unwritten, with a time limit of 10 s a check.
    pub fn new(
        linearizable: Option<DataModel>,
        others: Vec<ModelName>,
        unique_values: bool,
    ) -> Self {
        IncrementalSpec {
            linearizable,
            others,
            unique_values,
            time_limit: Duration::from_secs(10),
            initial: Value::Null,
            nil_reads_unknown: false,
        }
    }
}

/// A violation found on a cut of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyViolation {
    /// The model violated.
    pub model: ModelName,
    /// The witness, as the offline checker gives it on the cut.
    pub witness: Witness,
    /// When the violation became visible: the latest completion (or, for an operation
    /// still in flight, invoke) time among the witness's operations, in ns from the
    /// history's origin.
    pub visible_at: u64,
    /// The caller's clock when the check that found it was asked for (ns from the same
    /// origin).
    pub detected_at: u64,
    /// Client operations in the cut that was checked.
    pub cut_ops: usize,
}

impl EarlyViolation {
    /// How long after it became visible the violation was found.
    pub fn delay(&self) -> Duration {
        Duration::from_nanos(self.detected_at.saturating_sub(self.visible_at))
    }
}

/// Counters of an incremental checker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncrementalStats {
    /// Calls of [`Incremental::check`] that checked something.
    pub rounds: u64,
    /// Key checks of linearizability, over all rounds.
    pub key_checks: u64,
    /// Rounds that skipped the other models: the values are not known to be unique, or
    /// the cut read a value it does not write.
    pub deferred: u64,
    /// Time spent checking, over all rounds.
    pub busy: Duration,
}

/// Checks a history as it is recorded; see the module documentation.
#[derive(Debug)]
pub struct Incremental {
    spec: IncrementalSpec,
    pairer: Pairer,
    /// Operation positions (in the pairer) of each key.
    by_key: FxHashMap<Option<Key>, Vec<usize>>,
    /// Keys with an operation invoked or completed since their last check.
    dirty: FxHashSet<Option<Key>>,
    /// Whether anything changed since the last check of the other models.
    others_dirty: bool,
    /// Models already found violated (not checked again).
    found: Vec<ModelName>,
    violations: Vec<EarlyViolation>,
    stats: IncrementalStats,
    file: String,
}

impl Incremental {
    /// A checker of `spec`; `file` names the history in errors.
    pub fn new(spec: IncrementalSpec, file: &str) -> Incremental {
        Incremental {
            spec,
            pairer: Pairer::default(),
            by_key: FxHashMap::default(),
            dirty: FxHashSet::default(),
            others_dirty: false,
            found: Vec::new(),
            violations: Vec::new(),
            stats: IncrementalStats::default(),
            file: file.to_string(),
        }
    }

    /// Adds the next event (in index order). An event that breaks the pairing rules is an
    /// error, as it is for the offline reader.
    pub fn push(&mut self, ev: Event) -> Result<(), HistoryError> {
        let before = self.pairer.ops().len();
        let client = !matches!(ev.process, faultline_history::Process::Nemesis);
        let key = ev.key.clone();
        self.pairer.push(ev, &self.file)?;
        if !client {
            return Ok(());
        }
        let ops = self.pairer.ops();
        if ops.len() > before {
            self.by_key.entry(key.clone()).or_default().push(before);
        }
        self.dirty.insert(key);
        self.others_dirty = true;
        Ok(())
    }

    /// Client operations so far.
    pub fn ops(&self) -> usize {
        self.pairer.ops().len()
    }

    /// Checks the history cut at this point and returns the violations found now (each
    /// model at most once over the checker's life). `now` is the caller's clock in ns from
    /// the history's origin, recorded as the detection time.
    pub fn check(&mut self, now: u64) -> Vec<EarlyViolation> {
        let started = Instant::now();
        let mut new = Vec::new();
        let mut worked = false;
        if let Some(dm) = self.spec.linearizable {
            if !self.found.contains(&ModelName::Linearizable) && !self.dirty.is_empty() {
                worked = true;
                if let Some(v) = self.check_lin(dm, now) {
                    self.found.push(ModelName::Linearizable);
                    new.push(v);
                }
            }
        }
        self.dirty.clear();
        let others: Vec<ModelName> = self
            .spec
            .others
            .iter()
            .copied()
            .filter(|m| *m != ModelName::Linearizable && !self.found.contains(m))
            .collect();
        if !others.is_empty() && self.others_dirty {
            worked = true;
            new.extend(self.check_others(&others, now));
        }
        self.others_dirty = false;
        if worked {
            self.stats.rounds += 1;
            self.stats.busy += started.elapsed();
        }
        self.violations.extend(new.iter().cloned());
        new
    }

    /// Every violation found so far, in the order found.
    pub fn violations(&self) -> &[EarlyViolation] {
        &self.violations
    }

    /// Counters.
    pub fn stats(&self) -> &IncrementalStats {
        &self.stats
    }

    fn check_lin(&mut self, dm: DataModel, now: u64) -> Option<EarlyViolation> {
        let opts = LinOptions {
            time_limit: Some(self.spec.time_limit),
            threads: Some(1),
            initial: self.spec.initial.clone(),
            nil_reads_unknown: self.spec.nil_reads_unknown,
            ..LinOptions::default()
        };
        // Keys in name order, as the offline checker reports the first invalid key.
        let mut keys: Vec<&Option<Key>> = self.dirty.iter().collect();
        keys.sort_unstable();
        let ops = self.pairer.ops();
        for key in keys {
            let Some(positions) = self.by_key.get(key) else {
                continue;
            };
            self.stats.key_checks += 1;
            let cut = Paired {
                ops: positions.iter().map(|&i| ops[i].clone()).collect(),
                faults: Vec::new(),
            };
            let report = check_linearizable(&cut, dm, &opts);
            if let Some(w) = report.verdict.witness() {
                return Some(EarlyViolation {
                    model: ModelName::Linearizable,
                    visible_at: visible_at(w),
                    witness: w.clone(),
                    detected_at: now,
                    cut_ops: ops.len(),
                });
            }
        }
        None
    }

    fn check_others(&mut self, models: &[ModelName], now: u64) -> Vec<EarlyViolation> {
        let ops = self.pairer.ops();
        if !self.spec.unique_values || !explained_by_unique_writes(ops, &self.spec.initial) {
            self.stats.deferred += 1;
            return Vec::new();
        }
        let cut = Paired {
            ops: ops.to_vec(),
            faults: Vec::new(),
        };
        let opts = ConsistencyOptions {
            time_limit: Some(self.spec.time_limit),
            initial: self.spec.initial.clone(),
            nil_reads_unknown: self.spec.nil_reads_unknown,
            ..ConsistencyOptions::default()
        };
        let mut new = Vec::new();
        for (model, verdict) in check_models(&cut, models, &opts) {
            if let Some(w) = verdict.witness() {
                self.found.push(model);
                new.push(EarlyViolation {
                    model,
                    visible_at: visible_at(w),
                    witness: w.clone(),
                    detected_at: now,
                    cut_ops: cut.ops.len(),
                });
            }
        }
        new
    }
}

/// When a witness became visible: its latest completion, or invoke for an operation
/// still in flight.
fn visible_at(w: &Witness) -> u64 {
    w.ops
        .iter()
        .map(|o| o.op.complete_time.unwrap_or(o.op.invoke_time))
        .max()
        .unwrap_or(0)
}

/// Whether every value written to a key is written once, and every value an `ok` read
/// or `ok` cas observed (other than `null` and `initial`, the initial state) is written
/// by another operation of `ops`.
fn explained_by_unique_writes(ops: &[Operation], initial: &Value) -> bool {
    let initial = ValueKey::of(initial);
    let mut writer: FxHashMap<(Option<&Key>, ValueKey), usize> = FxHashMap::default();
    for op in ops {
        let value = match op.f.as_str() {
            "write" => Some(&op.argument),
            "cas" => cas_part(&op.argument, 1),
            _ => None,
        };
        if let Some(v) = value {
            if writer
                .insert((op.key.as_ref(), ValueKey::of(v)), op.id)
                .is_some()
            {
                return false;
            }
        }
    }
    ops.iter().all(|op| {
        let seen = match (op.f.as_str(), op.outcome) {
            ("read", Outcome::Ok) => Some(&op.result),
            ("cas", Outcome::Ok) => cas_part(&op.argument, 0),
            _ => None,
        };
        seen.is_none_or(|v| {
            v.is_null()
                || ValueKey::of(v) == initial
                || writer
                    .get(&(op.key.as_ref(), ValueKey::of(v)))
                    .is_some_and(|&w| w != op.id)
        })
    })
}

fn cas_part(argument: &Value, i: usize) -> Option<&Value> {
    match argument {
        Value::Array(a) if a.len() == 2 => a.get(i),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
