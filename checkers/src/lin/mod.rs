//! The linearizability checker.
//!
//! Pipeline (notes §1.6): split the history per key (linearizability is local), preprocess
//! each key (drop what cannot matter, catch reads of values nobody wrote), then decide each
//! key in parallel: the O(n log n) Gibbons–Korach zones check for read/write registers with
//! unique values, otherwise a just-in-time linearization search. For the first key found
//! invalid, the failing operations are shrunk (re-checked with the same checker) to a small
//! witness, explained step by step.
//!
//! A time or memory budget that runs out gives `unknown`, naming the undecided keys; it
//! never crashes the run and unknown is never reported as valid.

pub(crate) mod bits;
mod explain;
mod prepare;
mod reduce;
mod search;
mod wgl;
mod witness;
mod zones;

use crate::model::DataModel;
use crate::verdict::Verdict;
use faultline_history::{Operation, Paired, Value};
use prepare::{prepare, KeyHistory, PrepStats, Prepared, RawOp, ThinAir};
use rayon::prelude::*;
use search::{search, SearchResult, SearchStats};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use zones::{check_zones, ZoneViolation};

/// Which decision procedure to use per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// Zones where they apply (read/write, unique values), the search elsewhere.
    #[default]
    Auto,
    /// The search everywhere (slower; used to cross-check the zones).
    Search,
}

/// Options of [`check_linearizable`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinOptions {
    /// The value of every key before any write (`null` = never written; Porcupine's kv
    /// logs use `""`, which their importer records in `meta["initial"]`).
    pub initial: Value,
    /// Knossos's semantics: an `ok` read of `null` observed nothing and is dropped.
    pub nil_reads_unknown: bool,
    /// Wall-clock budget for the whole check, shrinking included; `None` = unlimited.
    pub time_limit: Option<Duration>,
    /// Budget in bytes for the search's configuration sets, over all keys.
    pub memory_limit: usize,
    /// Whether to shrink the witness of an invalid key.
    pub shrink: bool,
    /// Worker threads for checking keys in parallel; `None` = rayon's default.
    pub threads: Option<usize>,
    /// Decision procedure per key.
    pub algorithm: Algorithm,
}

impl Default for LinOptions {
    fn default() -> Self {
        LinOptions {
            initial: Value::Null,
            nil_reads_unknown: false,
            time_limit: None,
            memory_limit: 1 << 30,
            shrink: true,
            threads: None,
            algorithm: Algorithm::Auto,
        }
    }
}

/// What [`check_linearizable`] found, with counters.
#[derive(Debug, Clone, PartialEq)]
pub struct LinReport {
    /// Valid, invalid with a witness (for the first invalid key), or unknown.
    pub verdict: Verdict,
    /// Keys checked (a history without keys is one key).
    pub keys: usize,
    /// Client operations considered.
    pub ops: usize,
    /// Of them, `info` (including never completed).
    pub info_ops: usize,
    /// `info` operations dropped because they cannot change the verdict.
    pub pruned_info: usize,
    /// `fail` operations dropped (they observe nothing).
    pub dropped_fail: usize,
    /// `ok` reads of `null` dropped under Knossos's semantics.
    pub dropped_nil_reads: usize,
    /// Keys decided by the zones check.
    pub zone_keys: usize,
    /// Keys decided by the search.
    pub search_keys: usize,
    /// The invalid keys found, sorted (`""` for a history without keys). Checking stops at
    /// the first invalid key in name order: keys after it may be skipped (see
    /// [`LinReport::skipped_keys`]), so this is not every invalid key.
    pub invalid_keys: Vec<String>,
    /// Search configurations expanded, over all keys.
    pub explored: u64,
    /// Largest set of configurations kept at once on one key.
    pub max_frontier: usize,
    /// Time spent deciding the keys.
    pub check_time: Duration,
    /// Time spent shrinking and explaining the witness.
    pub shrink_time: Duration,
    /// Candidates re-checked while shrinking.
    pub shrink_checks: usize,
    /// Operations left by the window cut, before delta debugging (0 without a witness).
    pub shrink_window: usize,
    /// Operations of the witness (0 without one).
    pub witness_ops: usize,
    /// Keys not checked because a key before them (in name order) was found invalid.
    pub skipped_keys: usize,
}

/// Time and memory shared by all keys of one check.
#[derive(Debug)]
pub(crate) struct Budget {
    deadline: Option<Instant>,
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    fn new(deadline: Option<Instant>, limit: usize) -> Budget {
        Budget {
            deadline,
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Updates this caller's reservation to `now` bytes; `Err` when over budget.
    pub(crate) fn charge(&self, reserved: &mut usize, now: usize) -> Result<(), String> {
        if now >= *reserved {
            self.used.fetch_add(now - *reserved, Ordering::Relaxed);
        } else {
            self.used.fetch_sub(*reserved - now, Ordering::Relaxed);
        }
        *reserved = now;
        if self.used.load(Ordering::Relaxed) > self.limit {
            return Err(format!(
                "memory limit of {} MiB reached",
                self.limit / (1 << 20)
            ));
        }
        if self.expired() {
            return Err("time limit reached".into());
        }
        Ok(())
    }

    /// Gives back a reservation.
    pub(crate) fn release(&self, reserved: usize) {
        self.used.fetch_sub(reserved, Ordering::Relaxed);
    }

    /// Whether the deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Histories with fewer operations are checked on the calling thread: waking the thread
/// pool costs more than it saves (it was most of the time of a 100-operation check).
const PARALLEL_FROM: usize = 4096;

/// How a key was decided.
#[derive(Debug, Clone)]
pub(crate) enum Decided {
    Valid,
    Zones(Box<ZoneViolation>),
    Search {
        /// The first operation no configuration could linearize.
        fail_op: usize,
        /// Whether the search failed at the end of the history rather than when
        /// `fail_op` returned.
        at_end: bool,
    },
    Unknown(String),
}

impl Decided {
    fn invalid(&self) -> bool {
        matches!(self, Decided::Zones(_) | Decided::Search { .. })
    }
}

/// Decides one key: zones where they apply (unless told otherwise), the search elsewhere.
pub(crate) fn decide(
    h: &KeyHistory,
    algorithm: Algorithm,
    budget: &Budget,
) -> (Decided, bool, SearchStats) {
    if h.ops.is_empty() {
        return (Decided::Valid, false, SearchStats::default());
    }
    if algorithm == Algorithm::Auto && h.zones_apply() {
        let d = match check_zones(h) {
            Ok(()) => Decided::Valid,
            Err(v) => Decided::Zones(v),
        };
        return (d, true, SearchStats::default());
    }
    // The exact search first, capped; if it has to keep very many configurations, a
    // depth-first attempt often finds a linearization at once (only its "found" is
    // trusted); otherwise the exact search runs to the end.
    let cap = 200_000 + 50 * h.ops.len() as u64;
    let (mut r, mut stats) = search(h, budget, cap);
    if r == SearchResult::Capped {
        let (found, steps) = wgl::find_linearization(h, 2 * cap, budget);
        if found == wgl::Wgl::Found {
            stats.explored += steps;
            return (Decided::Valid, false, stats);
        }
        let (r2, s2) = search(h, budget, u64::MAX);
        r = r2;
        stats.explored += steps + s2.explored;
        stats.max_frontier = stats.max_frontier.max(s2.max_frontier);
    }
    let d = match r {
        SearchResult::Valid => Decided::Valid,
        SearchResult::Invalid {
            fail_op, at_end, ..
        } => Decided::Search { fail_op, at_end },
        SearchResult::Unknown(why) => Decided::Unknown(why),
        SearchResult::Capped => Decided::Unknown("search capped".into()),
    };
    (d, false, stats)
}

enum KeyResult {
    Valid,
    Unknown(String),
    ThinAir(ThinAir),
    Invalid(Box<KeyHistory>, Decided),
}

struct KeyOutcome {
    name: String,
    first_op: usize,
    prep: PrepStats,
    zones: bool,
    stats: SearchStats,
    result: KeyResult,
}

fn check_key(
    paired: &Paired,
    name: String,
    raw: &[RawOp],
    model: DataModel,
    opts: &LinOptions,
    budget: &Budget,
) -> KeyOutcome {
    let (prepared, prep) = prepare(
        raw,
        &paired.ops,
        model,
        &opts.initial,
        opts.nil_reads_unknown,
    );
    let mut out = KeyOutcome {
        name,
        first_op: raw.first().map_or(0, |r| r.orig),
        prep,
        zones: false,
        stats: SearchStats::default(),
        result: KeyResult::Valid,
    };
    out.result = match prepared {
        Prepared::Unsupported(why) => KeyResult::Unknown(why),
        Prepared::ThinAir(t) => KeyResult::ThinAir(t),
        Prepared::Ready(h) => {
            let (d, zones, stats) = decide(&h, opts.algorithm, budget);
            out.zones = zones;
            out.stats = stats;
            match d {
                Decided::Valid => KeyResult::Valid,
                Decided::Unknown(why) => KeyResult::Unknown(why),
                d => KeyResult::Invalid(Box::new(h), d),
            }
        }
    };
    out
}

/// The compact operations grouped by key (each group in invoke order), with the key
/// names, sorted by name (`None`, shown as `""`, first).
fn by_key(ops: &[Operation]) -> (Vec<RawOp<'_>>, Vec<(String, std::ops::Range<usize>)>) {
    let raw: Vec<RawOp> = if ops.len() >= PARALLEL_FROM {
        ops.par_iter()
            .enumerate()
            .map(|(i, op)| RawOp::of(i, op))
            .collect()
    } else {
        ops.iter()
            .enumerate()
            .map(|(i, op)| RawOp::of(i, op))
            .collect()
    };
    let mut ids: bits::FxMap<Option<&str>, u32> = bits::FxMap::default();
    let key_of: Vec<u32> = ops
        .iter()
        .map(|op| {
            let next = ids.len() as u32;
            *ids.entry(op.key.as_ref().map(|k| k.0.as_str()))
                .or_insert(next)
        })
        .collect();
    let mut starts = vec![0usize; ids.len() + 1];
    for &k in &key_of {
        starts[k as usize + 1] += 1;
    }
    for k in 1..starts.len() {
        starts[k] += starts[k - 1];
    }
    // A counting sort: stable, so each group stays in invoke order.
    let mut at = starts.clone();
    let mut grouped = raw.clone();
    for r in raw {
        let k = key_of[r.orig] as usize;
        grouped[at[k]] = r;
        at[k] += 1;
    }
    let mut names: Vec<(Option<&str>, u32)> = ids.into_iter().collect();
    names.sort_unstable();
    let groups = names
        .into_iter()
        .map(|(name, k)| {
            let k = k as usize;
            (name.unwrap_or("").to_string(), starts[k]..starts[k + 1])
        })
        .collect();
    (grouped, groups)
}

/// Checks that the client operations of `paired` are linearizable with respect to `model`,
/// each key independently.
///
/// Never panics on input data: an operation the model does not know, or a budget that runs
/// out, makes the verdict `unknown` with the reason and the undecided keys.
pub fn check_linearizable(paired: &Paired, model: DataModel, opts: &LinOptions) -> LinReport {
    let start = Instant::now();
    let budget = Budget::new(opts.time_limit.map(|d| start + d), opts.memory_limit);
    // Keys are checked in parallel; once a key is found invalid, the keys after it (in name
    // order) are skipped: the witness is the first invalid key's, whichever thread finds
    // which key first, so the verdict does not depend on scheduling.
    let first_bad = AtomicUsize::new(usize::MAX);
    let run = || -> Vec<Option<KeyOutcome>> {
        let (raw, groups) = by_key(&paired.ops);
        let one = |(k, (name, range)): (usize, &(String, std::ops::Range<usize>))| {
            if k > first_bad.load(Ordering::Relaxed) {
                return None;
            }
            let o = check_key(
                paired,
                name.clone(),
                &raw[range.clone()],
                model,
                opts,
                &budget,
            );
            if matches!(o.result, KeyResult::Invalid(..) | KeyResult::ThinAir(_)) {
                first_bad.fetch_min(k, Ordering::Relaxed);
            }
            Some(o)
        };
        if paired.ops.len() >= PARALLEL_FROM {
            groups.par_iter().enumerate().map(one).collect()
        } else {
            groups.iter().enumerate().map(one).collect()
        }
    };
    let outcomes = match opts
        .threads
        .and_then(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build().ok())
    {
        Some(pool) => pool.install(run),
        None => run(),
    };
    let keys = outcomes.len();
    let outcomes: Vec<KeyOutcome> = outcomes.into_iter().flatten().collect();
    let check_time = start.elapsed();
    let mut report = LinReport {
        verdict: Verdict::Valid,
        keys,
        ops: paired.ops.len(),
        info_ops: 0,
        pruned_info: 0,
        dropped_fail: 0,
        dropped_nil_reads: 0,
        zone_keys: 0,
        search_keys: 0,
        invalid_keys: Vec::new(),
        explored: 0,
        max_frontier: 0,
        check_time,
        shrink_time: Duration::ZERO,
        shrink_checks: 0,
        shrink_window: 0,
        witness_ops: 0,
        skipped_keys: keys - outcomes.len(),
    };
    let mut unknown: Vec<(String, String)> = Vec::new();
    let mut first_invalid: Option<&KeyOutcome> = None;
    for o in &outcomes {
        report.info_ops += o.prep.info_ops;
        report.pruned_info += o.prep.pruned_info;
        report.dropped_fail += o.prep.dropped_fail;
        report.dropped_nil_reads += o.prep.dropped_nil_reads;
        report.explored += o.stats.explored;
        report.max_frontier = report.max_frontier.max(o.stats.max_frontier);
        match &o.result {
            KeyResult::Valid | KeyResult::Invalid(..) if o.zones => report.zone_keys += 1,
            KeyResult::Valid | KeyResult::Invalid(..) => report.search_keys += 1,
            _ => {}
        }
        match &o.result {
            KeyResult::Valid => {}
            KeyResult::Unknown(why) => unknown.push((o.name.clone(), why.clone())),
            KeyResult::ThinAir(_) | KeyResult::Invalid(..) => {
                report.invalid_keys.push(o.name.clone());
                first_invalid.get_or_insert(o);
            }
        }
    }
    if let Some(o) = first_invalid {
        let t = Instant::now();
        let key = paired.ops.get(o.first_op).and_then(|op| op.key.clone());
        let built = match &o.result {
            KeyResult::ThinAir(ta) => Some(witness::thin_air(&paired.ops, key.as_ref(), ta)),
            KeyResult::Invalid(h, d) => {
                let mut stats = witness::ShrinkStats::default();
                let w = witness::build(&paired.ops, key.as_ref(), h, d, opts, &budget, &mut stats);
                report.shrink_checks = stats.checks;
                report.shrink_window = stats.window;
                Some(w)
            }
            _ => None,
        };
        if let Some(w) = built {
            report.witness_ops = w.ops.len();
            report.verdict = Verdict::Invalid {
                witness: Box::new(w),
            };
        }
        report.shrink_time = t.elapsed();
    } else if !unknown.is_empty() {
        let mut reasons: Vec<&str> = unknown.iter().map(|(_, r)| r.as_str()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        let shown: Vec<&str> = reasons.iter().take(3).copied().collect();
        let more = reasons.len().saturating_sub(3);
        let mut reason = format!(
            "{} of {} keys undecided: {}",
            unknown.len(),
            report.keys,
            shown.join("; ")
        );
        if more > 0 {
            reason.push_str(&format!(" (and {more} other reasons)"));
        }
        report.verdict = Verdict::Unknown {
            reason,
            undecided: unknown.into_iter().map(|(k, _)| k).collect(),
        };
    }
    report
}
