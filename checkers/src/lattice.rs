//! The lattice of consistency models, checking a model by name, and the table of models
//! a history satisfies.
//!
//! ```text
//! linearizable ⇒ sequential ⇒ ccv ⇒ cc
//!                sequential ⇒ cm  ⇒ cc ⇒ pram ⇒ ryw, mr, mw
//!                                   cc ⇒ wfr
//! ```
//!
//! A valid verdict for a model implies every weaker one; a violation of a model rules out
//! every stronger one. `cc` is the weak causal consistency of Bouajjani et al. (POPL
//! 2017); `ccv` adds one write order for all sessions; `cm` (causal memory) serialises each
//! session's causal past. The session guarantees are defined in `crate::session` so
//! that CC implies each of them.

use crate::causal::{cm, patterns, precheck, Analysis};
use crate::lin::{check_linearizable, LinOptions, LinReport};
use crate::model::DataModel;
use crate::prepare::prepare;
use crate::session::{self, Guarantee};
use crate::verdict::Verdict;
use faultline_history::{Paired, Value};
use serde::Serialize;
use std::cell::OnceCell;
use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// A consistency model of the lattice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelName {
    /// Linearizability (decided by the linearizability checker).
    Linearizable,
    /// Sequential consistency.
    Sequential,
    /// Causal convergence.
    Ccv,
    /// Causal memory.
    Cm,
    /// Weak causal consistency.
    Cc,
    /// Pipelined RAM: read-your-writes, monotonic reads and monotonic writes together.
    Pram,
    /// Read-your-writes.
    Ryw,
    /// Monotonic reads.
    Mr,
    /// Monotonic writes.
    Mw,
    /// Writes-follow-reads.
    Wfr,
}

impl ModelName {
    /// Every model, strongest first.
    pub const ALL: [ModelName; 10] = [
        ModelName::Linearizable,
        ModelName::Sequential,
        ModelName::Ccv,
        ModelName::Cm,
        ModelName::Cc,
        ModelName::Pram,
        ModelName::Ryw,
        ModelName::Mr,
        ModelName::Mw,
        ModelName::Wfr,
    ];

    /// The models this one implies directly.
    pub fn implies(self) -> &'static [ModelName] {
        use ModelName::*;
        match self {
            Linearizable => &[Sequential],
            Sequential => &[Ccv, Cm],
            Ccv | Cm => &[Cc],
            Cc => &[Pram, Wfr],
            Pram => &[Ryw, Mr, Mw],
            Ryw | Mr | Mw | Wfr => &[],
        }
    }

    /// Whether `self` implies `other` (through any chain of the lattice; not itself).
    pub fn stronger_than(self, other: ModelName) -> bool {
        self.implies()
            .iter()
            .any(|&m| m == other || m.stronger_than(other))
    }

    /// The model's name as used on the command line.
    pub fn as_str(self) -> &'static str {
        use ModelName::*;
        match self {
            Linearizable => "linearizable",
            Sequential => "sequential",
            Ccv => "ccv",
            Cm => "cm",
            Cc => "cc",
            Pram => "pram",
            Ryw => "ryw",
            Mr => "mr",
            Mw => "mw",
            Wfr => "wfr",
        }
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown model name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consistency model `{0}` (expected one of linearizable, sequential, ccv, cm, cc, causal, pram, ryw, mr, mw, wfr)")]
pub struct UnknownModel(pub String);

impl FromStr for ModelName {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<ModelName, UnknownModel> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "causal" {
            return Ok(ModelName::Cc);
        }
        ModelName::ALL
            .into_iter()
            .find(|m| m.as_str() == lower)
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

/// Options of the causal, session and sequential checkers.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsistencyOptions {
    /// Time allowed to each model's check; `None` = no limit (the sequential search is
    /// still bounded by a state budget).
    pub time_limit: Option<Duration>,
    /// An `ok` read of `null` observed nothing (Knossos's semantics for imports).
    pub nil_reads_unknown: bool,
    /// The initial value of every key (`null` = never written); reads of it read no write.
    pub initial: Value,
    /// First try to prove sequential consistency with a guessed order of each key's writes
    /// (replayed to check it; see `sequential::witness`). When that order explains the
    /// history, every model this module checks holds and their own checkers are not run.
    /// `false` always runs each model's own checker (for measuring and testing them).
    pub sequential_witness: bool,
    /// What the caller already knows from the linearizability checker, run on the same
    /// history with the same initial value and null-read semantics: `Some(true)` proves
    /// every model (when `sequential_witness` is on), and with either value it is not run
    /// again here. `None`: these checkers run it when they need it (at most once).
    pub linearizable: Option<bool>,
}

impl Default for ConsistencyOptions {
    fn default() -> Self {
        ConsistencyOptions {
            time_limit: None,
            nil_reads_unknown: false,
            initial: Value::Null,
            sequential_witness: true,
            linearizable: None,
        }
    }
}

/// Checks one model (every model except [`ModelName::Linearizable`], which the
/// linearizability checker decides; asking for it here gives unknown).
pub fn check_model(paired: &Paired, model: ModelName, opts: &ConsistencyOptions) -> Verdict {
    check_models(paired, &[model], opts)
        .pop()
        .map(|(_, v)| v)
        .unwrap_or(Verdict::Unknown {
            reason: format!("{model}: not checked"),
            undecided: Vec::new(),
        })
}

/// Checks `models` the way the command line and the campaigns do: linearizability first
/// when it is asked for (with `data_model`, or the data model the history's operations
/// imply), then the other models given its verdict. When linearizability holds,
/// sequential consistency and causal memory are not checked (their search and fixpoint
/// would only confirm it): [`model_table`] marks them implied.
pub fn check_all(
    paired: &Paired,
    models: &[ModelName],
    data_model: Option<DataModel>,
    opts: &ConsistencyOptions,
) -> Vec<(ModelName, Verdict)> {
    check_all_reported(paired, models, data_model, opts).0
}

/// [`check_all`], with the linearizability checker's report (counters, the time to decide
/// and to build the witness, the witness's size) when linearizability was checked.
pub fn check_all_reported(
    paired: &Paired,
    models: &[ModelName],
    data_model: Option<DataModel>,
    opts: &ConsistencyOptions,
) -> (Vec<(ModelName, Verdict)>, Option<LinReport>) {
    let mut verdicts = Vec::with_capacity(models.len());
    let mut linearizable = opts.linearizable;
    let mut report = None;
    if models.contains(&ModelName::Linearizable) {
        let lin = LinOptions {
            initial: opts.initial.clone(),
            nil_reads_unknown: opts.nil_reads_unknown,
            time_limit: opts.time_limit,
            ..LinOptions::default()
        };
        let dm = data_model.unwrap_or_else(|| DataModel::infer(paired));
        let r = check_linearizable(paired, dm, &lin);
        linearizable = r.verdict.holds();
        verdicts.push((ModelName::Linearizable, r.verdict.clone()));
        report = Some(r);
    }
    let lin_valid = linearizable == Some(true);
    let others: Vec<ModelName> = models
        .iter()
        .copied()
        .filter(|&m| m != ModelName::Linearizable)
        .filter(|m| !(lin_valid && matches!(m, ModelName::Sequential | ModelName::Cm)))
        .collect();
    if !others.is_empty() {
        let opts = ConsistencyOptions {
            linearizable,
            ..opts.clone()
        };
        verdicts.extend(check_models(paired, &others, &opts));
    }
    (verdicts, report)
}

/// The verdict `check_models` gives linearizability, which it does not decide.
fn not_by_check_model() -> Verdict {
    Verdict::Unknown {
        reason: "linearizable: decided by the linearizability checker, not by check_model".into(),
        undecided: Vec::new(),
    }
}

/// Checks several models, preparing the history and its causal order once.
pub fn check_models(
    paired: &Paired,
    models: &[ModelName],
    opts: &ConsistencyOptions,
) -> Vec<(ModelName, Verdict)> {
    // Nothing to prepare for: the causal analysis below (vector clocks per operation) is
    // the largest structure a check builds, and a call asking only for linearizability, or
    // for nothing, must not pay for it (it once made `check --model kv` on a million
    // operations take 4.9 GB and 9 s).
    if models.iter().all(|&m| m == ModelName::Linearizable) {
        return models.iter().map(|&m| (m, not_by_check_model())).collect();
    }
    let p = prepare(paired, &opts.initial, opts.nil_reads_unknown);
    // A sequential order that replays proves every model checked here (the lattice: the
    // sequential model implies the others), and then no causal order is needed. With cas,
    // whose atomicity CM does not model (a pass would be unknown) and which the witness's
    // guess often misses, a linearizable history is proved too.
    let deadline = opts.time_limit.map(|d| Instant::now() + d);
    let known = OnceCell::new();
    let linearizable = || {
        *known.get_or_init(|| {
            opts.linearizable
                .unwrap_or_else(|| crate::sequential::linearizable(paired, opts, deadline))
        })
    };
    let proved = opts.sequential_witness
        && models.iter().any(|&m| m != ModelName::Linearizable)
        && (opts.linearizable == Some(true)
            || crate::sequential::witness(&p, paired).is_some()
            || ((p.has_cas || p.mismatches > 0) && p.unsupported.is_none() && linearizable()));
    let analysis =
        (!proved && p.not_unique.is_none() && p.unsupported.is_none() && p.structural.is_none())
            .then(|| Analysis::new(&p, paired));
    let mut scanned = None;
    let mut patterns_scan = None;
    // CCv's conflict edges are also the first round of CM's joint relation; when both
    // are checked, the clocks of the causal order with those edges serve both.
    let want_conflicts = models.contains(&ModelName::Ccv) || models.contains(&ModelName::Cm);
    let share_cf = models.contains(&ModelName::Ccv) && models.contains(&ModelName::Cm);
    let mut cf: Option<cm::SharedConflicts> = None;
    let mut out = Vec::with_capacity(models.len());
    for &m in models {
        let name = m.as_str();
        let deadline = opts.time_limit.map(|d| Instant::now() + d);
        let v = match (m, &analysis) {
            (ModelName::Linearizable, _) => not_by_check_model(),
            _ if proved => Verdict::Valid,
            (ModelName::Sequential, a) => crate::sequential::check(
                &p,
                paired,
                a.as_ref(),
                name,
                deadline,
                opts,
                &linearizable,
            ),
            (_, None) => precheck(&p, paired, name, true).unwrap_or(Verdict::Unknown {
                reason: format!("{name}: not checked"),
                undecided: Vec::new(),
            }),
            (ModelName::Cc | ModelName::Ccv, Some(a)) => match &a.clocks {
                Ok(clocks) => {
                    let s = patterns_scan
                        .get_or_insert_with(|| patterns::scan(a, clocks, want_conflicts));
                    if m == ModelName::Cc {
                        patterns::cc_scanned(a, s, name)
                    } else if share_cf && s.cc_holds() {
                        let shared = cf.get_or_insert_with(|| cm::SharedConflicts::new(a, s));
                        patterns::ccv_decided(a, s, name, Some(shared.acyclic()))
                    } else {
                        patterns::ccv_scanned(a, s, name)
                    }
                }
                Err(_) if m == ModelName::Cc => patterns::cc(a, name),
                Err(_) => patterns::ccv(a, name),
            },
            (ModelName::Cm, Some(a)) => match &a.clocks {
                Ok(clocks) => {
                    let s = patterns_scan
                        .get_or_insert_with(|| patterns::scan(a, clocks, want_conflicts));
                    let shared = match (share_cf && s.cc_holds(), &mut cf) {
                        (true, Some(shared)) => Some(shared),
                        (true, slot) => Some(slot.insert(cm::SharedConflicts::new(a, s))),
                        (false, _) => None,
                    };
                    let first = cm::First::from_scan(a, s, shared);
                    cm::cm_with(a, name, deadline, Some(first))
                }
                Err(_) => cm::cm(a, name, deadline),
            },
            (g, Some(a)) => {
                let guarantee = match g {
                    ModelName::Ryw => Some(Guarantee::Ryw),
                    ModelName::Mr => Some(Guarantee::Mr),
                    ModelName::Mw => Some(Guarantee::Mw),
                    ModelName::Wfr => Some(Guarantee::Wfr),
                    _ => None,
                };
                match &a.clocks {
                    Ok(clocks) => {
                        let cc = patterns_scan
                            .get_or_insert_with(|| patterns::scan(a, clocks, want_conflicts));
                        let first = scanned
                            .get_or_insert_with(|| session::scan(a, clocks, Some(cc.bad_reads())));
                        session::check_scanned(a, clocks, first, guarantee, name)
                    }
                    Err(_) => session::check(a, guarantee, name),
                }
            }
        };
        out.push((m, v));
    }
    out
}

/// The status of one model in a [`ModelTable`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum RowStatus {
    /// Checked and valid.
    Valid,
    /// Checked and violated; the witness is in the row's verdict.
    Invalid,
    /// The checker could not decide.
    Unknown {
        /// Why.
        reason: String,
    },
    /// Valid because a stronger model holds.
    Implied {
        /// The stronger model that held.
        by: ModelName,
    },
    /// Violated because a weaker model is violated.
    RuledOut {
        /// The weaker model whose witness rules this one out.
        by: ModelName,
    },
    /// Neither checked nor decided by the lattice.
    NotChecked,
}

/// One row of a [`ModelTable`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRow {
    /// The model.
    pub model: ModelName,
    /// What is known about it.
    #[serde(flatten)]
    pub status: RowStatus,
    /// The checker's own verdict, if it was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

/// What a history satisfies, model by model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelTable {
    /// One row per model, strongest first.
    pub rows: Vec<ModelRow>,
    /// The strongest models that held (valid or implied).
    pub strongest: Vec<ModelName>,
}

/// Builds the table of all models from the verdicts of the models that were checked.
pub fn model_table(verdicts: Vec<(ModelName, Verdict)>) -> ModelTable {
    let own = |m: ModelName| verdicts.iter().find(|(n, _)| *n == m).map(|(_, v)| v);
    let rows: Vec<ModelRow> = ModelName::ALL
        .into_iter()
        .map(|m| {
            let v = own(m);
            let weaker_invalid = ModelName::ALL
                .into_iter()
                .find(|&w| m.stronger_than(w) && matches!(own(w), Some(Verdict::Invalid { .. })));
            let stronger_valid = ModelName::ALL
                .into_iter()
                .find(|&s| s.stronger_than(m) && matches!(own(s), Some(Verdict::Valid)));
            let status = match (v, weaker_invalid, stronger_valid) {
                (Some(Verdict::Invalid { .. }), _, _) => RowStatus::Invalid,
                (_, Some(w), _) => RowStatus::RuledOut { by: w },
                (Some(Verdict::Valid), _, _) => RowStatus::Valid,
                (_, _, Some(s)) => RowStatus::Implied { by: s },
                (Some(Verdict::Unknown { reason, .. }), _, _) => RowStatus::Unknown {
                    reason: reason.clone(),
                },
                (None, _, _) => RowStatus::NotChecked,
            };
            ModelRow {
                model: m,
                status,
                verdict: v.cloned(),
            }
        })
        .collect();
    let held = |m: ModelName| {
        rows.iter().any(|r| {
            r.model == m && matches!(r.status, RowStatus::Valid | RowStatus::Implied { .. })
        })
    };
    let strongest = ModelName::ALL
        .into_iter()
        .filter(|&m| {
            held(m)
                && !ModelName::ALL
                    .into_iter()
                    .any(|s| s.stronger_than(m) && held(s))
        })
        .collect();
    ModelTable { rows, strongest }
}

impl ModelTable {
    /// The table as plain text, followed by the witness of each violated model.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        for r in &self.rows {
            let what = match &r.status {
                RowStatus::Valid => "valid".to_string(),
                RowStatus::Invalid => match r.verdict.as_ref().and_then(Verdict::witness) {
                    Some(w) => format!("invalid: {}", w.summary),
                    None => "invalid".to_string(),
                },
                RowStatus::Unknown { reason } => format!("unknown: {reason}"),
                RowStatus::Implied { by } => format!("valid (implied: {by} holds)"),
                RowStatus::RuledOut { by } => format!("invalid (ruled out: {by} is violated)"),
                RowStatus::NotChecked => "not checked".to_string(),
            };
            let _ = writeln!(s, "  {:<13} {what}", r.model.as_str());
        }
        let strongest: Vec<&str> = self.strongest.iter().map(|m| m.as_str()).collect();
        let _ = writeln!(
            s,
            "Strongest models that held: {}",
            if strongest.is_empty() {
                "none".to_string()
            } else {
                strongest.join(", ")
            }
        );
        for r in &self.rows {
            if let (RowStatus::Invalid, Some(w)) =
                (&r.status, r.verdict.as_ref().and_then(Verdict::witness))
            {
                let _ = writeln!(s, "\n[{}] {}", r.model, w.render_text().trim_end());
            }
        }
        s
    }
}
