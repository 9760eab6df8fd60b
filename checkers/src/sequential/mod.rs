//! Sequential consistency (Lamport 1979): some total order of all operations respects
//! every session's order and explains every read. No real-time constraint.
//!
//! Checking it is NP-complete (Gibbons and Korach 1997) and it is not local: the check is
//! never split per key. Before this module's `check` runs, the lattice tries the
//! `witness`: a guessed order of each key's writes turned into a total order and
//! replayed; when it replays, every model holds. Otherwise the checker runs the cheap
//! necessary conditions (with unique values: the CC, CCv and CM bad patterns; any of them
//! is a small witness, since a sequentially consistent history is CCv and CM; they share
//! one scan of the reads), then the linearizability checker (a linearizable history is
//! sequentially consistent), then the exact memoised search of `search` (given the
//! causal order's clocks, to prune with) under the time limit, returning unknown with
//! the reason when it runs out.
//!
//! Semantics of operations are those of the preparation: a successful cas is atomic here
//! (its compare and its write are one step); a cas that failed on `mismatch` observed a
//! value other than its expected one; `info` operations of a history with unique values
//! happened iff their value was read; with values that are not unique, each `info`
//! operation may be applied or left out.

mod search;
mod witness;

pub(crate) use witness::witness;

use crate::causal::explain::Explainer;
use crate::causal::{cm, patterns, precheck, Analysis};
use crate::lattice::ConsistencyOptions;
use crate::lin::{check_linearizable, LinOptions};
use crate::model::DataModel;
use crate::prepare::{prepare_with, Observe, Prepared, INIT};
use crate::verdict::{Minimality, Verdict};
use faultline_history::Paired;
use search::{Deepest, Search};
use std::time::{Duration, Instant};

/// At most this many search states are remembered before giving up (about 0.5 GiB).
const MAX_STATES: usize = 12_000_000;

/// Checks sequential consistency; `analysis` is the causal analysis of the same history
/// when its values are unique (used for the necessary checks).
pub(crate) fn check(
    p: &Prepared,
    paired: &Paired,
    analysis: Option<&Analysis>,
    model: &str,
    deadline: Option<Instant>,
    opts: &ConsistencyOptions,
    linearizable: &dyn Fn() -> bool,
) -> Verdict {
    if let Some(v) = precheck(p, paired, model, false) {
        return v;
    }
    if let Some(a) = analysis {
        if p.not_unique.is_none() {
            if let Some(v) = necessary(a, model, deadline) {
                return v;
            }
        }
    }
    // A linearizable history is sequentially consistent (see [`linearizable`]).
    if linearizable() {
        return Verdict::Valid;
    }
    let clocks = analysis.and_then(|a| a.clocks.as_ref().ok());
    let mut outcome = search::search(p, paired, clocks, deadline, MAX_STATES);
    // With unique values, `info` writes nobody read were left out, which is exact for
    // every observation but a failed cas's mismatch: that may be explained only by such
    // a write having taken effect. So before calling the history impossible, search
    // again with those writes as optional operations (without the causal clocks, which
    // do not count them, and without the pruning that needs every op to happen).
    let with_unobserved;
    let p = match outcome {
        Search::Impossible(_)
            if p.not_unique.is_none() && p.mismatches > 0 && p.dropped_info > 0 =>
        {
            with_unobserved = prepare_with(paired, &opts.initial, opts.nil_reads_unknown, true);
            outcome = search::search(&with_unobserved, paired, None, deadline, MAX_STATES);
            &with_unobserved
        }
        _ => p,
    };
    match outcome {
        Search::Found => Verdict::Valid,
        Search::OutOfBudget { states, why } => Verdict::Unknown {
            reason: format!(
                "{model}: {why} reached after exploring {states} states of the search for a sequential order ({} operations in {} sessions)",
                p.ops.len(),
                p.chains.len()
            ),
            undecided: Vec::new(),
        },
        Search::Impossible(d) => explain(p, paired, model, &d),
    }
}

/// Whether the linearizability checker finds the history linearizable, which proves it
/// sequentially consistent (a linearization is a sequential order). Checked per key in
/// real time, it often decides what the search finds hard, such as many processes
/// racing cas on a few keys. It gets half the time left (10 s without a limit); any
/// other outcome leaves the question to the search.
pub(crate) fn linearizable(
    paired: &Paired,
    opts: &ConsistencyOptions,
    deadline: Option<Instant>,
) -> bool {
    let limit = match deadline {
        Some(d) => d.saturating_duration_since(Instant::now()) / 2,
        None => Duration::from_secs(10),
    };
    let lin = LinOptions {
        initial: opts.initial.clone(),
        nil_reads_unknown: opts.nil_reads_unknown,
        time_limit: Some(limit),
        shrink: false,
        ..LinOptions::default()
    };
    matches!(
        check_linearizable(paired, DataModel::infer(paired), &lin).verdict,
        Verdict::Valid
    )
}

/// The first violated necessary condition (the CC, CCv and CM patterns), sharing one
/// scan of the reads and one conflict order among them.
fn necessary(a: &Analysis, model: &str, deadline: Option<Instant>) -> Option<Verdict> {
    let invalid = |v: Verdict| matches!(v, Verdict::Invalid { .. }).then_some(v);
    let Ok(clocks) = &a.clocks else {
        return invalid(patterns::cc(a, model));
    };
    let s = patterns::scan(a, clocks, true);
    if let Some(v) = invalid(patterns::cc_scanned(a, &s, model)) {
        return Some(v);
    }
    let mut shared = cm::SharedConflicts::new(a, &s);
    if let Some(v) = invalid(patterns::ccv_decided(a, &s, model, Some(shared.acyclic()))) {
        return Some(v);
    }
    let first = cm::First::from_scan(a, &s, Some(&mut shared));
    invalid(cm::cm_with(a, model, deadline, Some(first)))
}

fn explain(p: &Prepared, paired: &Paired, model: &str, d: &Deepest) -> Verdict {
    let mut ex = Explainer::new(p, paired);
    ex.say(format!(
        "The search explored {} states; at most {} of the {} operations could be placed in one order that respects every session and explains every read.",
        d.states,
        d.placed,
        p.ops.len()
    ));
    for (c, &pos) in d.front.iter().enumerate() {
        let chain = &p.chains[c];
        let Some(&o) = chain.ops.get(pos as usize) else {
            continue;
        };
        let op = &p.ops[o as usize];
        let cur = d.values.get(op.key as usize).copied().unwrap_or(INIT);
        let holder = if cur == INIT {
            "the initial value".to_string()
        } else {
            match p
                .ops
                .iter()
                .position(|w| w.key == op.key && w.write == Some(cur))
            {
                Some(w) => format!("the value written by {}", ex.label(w as u32)),
                None => "another value".to_string(),
            }
        };
        let l = ex.label(o);
        let x = ex.key_words(o);
        let text = match op.observe {
            Observe::Equal(_) => format!(
                "Next in process {}'s session, {l} needs {x} to hold {}, but at that point {x} held {holder}.",
                chain.process,
                ex.read_value(o)
            ),
            Observe::NotEqual(_) => format!(
                "Next in process {}'s session, {l} needs {x} to differ from {}, but at that point {x} held {holder}.",
                chain.process,
                ex.read_value(o)
            ),
            Observe::Nothing => format!(
                "Next in process {}'s session is {l}, a write; every way of placing it (and the other writes) leaves some read unexplained.",
                chain.process
            ),
        };
        ex.say(text);
        if ex.steps.len() > 12 {
            break;
        }
    }
    ex.say("So no total order of the operations respects every session and explains every read.");
    let w = ex.finish(
        model,
        "no-sequential-order",
        None,
        format!(
            "{model} violated: no order of the {} operations respects every session's order and explains every read",
            p.ops.len()
        ),
        Minimality::NotMinimised,
    );
    Verdict::Invalid {
        witness: Box::new(w),
    }
}
