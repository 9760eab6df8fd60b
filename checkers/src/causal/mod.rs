//! Causal consistency in the three variants of Bouajjani, Enea, Guerraoui and Hamza,
//! "On Verifying Causal Consistency" (POPL 2017, arXiv 1611.00580): weak causal
//! consistency (CC), causal memory (CM) and causal convergence (CCv).
//!
//! For histories whose written values are unique per key (differentiated histories), the
//! paper characterises each variant by bad patterns over the causal order
//! `CO = (PO ∪ RF)+` (PO: session order; RF: the write a read read from):
//!
//! * CC holds iff there is no CyclicCO (`PO ∪ RF` cyclic), WriteCOInitRead (a read of the
//!   initial value of `x` with a write of `x` in its causal past), ThinAirRead (a value
//!   nobody wrote) or WriteCORead (a read of `w1` with `w1 <co w2 <co r` for another
//!   write `w2` of the key).
//! * CCv holds iff CC holds and `CO ∪ CF` is acyclic (CyclicCF), where `w2 -CF-> w1` when
//!   some read of `w1` has `w2`, another write of the key, in its causal past.
//! * CM holds iff CC holds and, for every operation `o`, the relation `HB_o` has no
//!   cycle (CyclicHB) and orders no write before a read of the initial value in `o`'s
//!   session past (WriteHBInitRead); see [`cm`].
//!
//! The causal order is represented by vector clocks over sessions (module `order`), never
//! by a materialised transitive closure. Operations and their semantics (info, fail,
//! cas, sessions) are those of the preparation (`crate::prepare`). A successful cas is a
//! read and a write at one point; this is exact for CC and CCv, whose axioms only ask
//! each operation's own return value to be explained by its causal past. For CM a
//! violation is sound, but a pass on a history with cas is reported as unknown, because
//! CM serialises whole session pasts and the atomicity of cas is not modelled there.

pub(crate) mod cm;
pub(crate) mod explain;
pub(crate) mod graph;
pub(crate) mod joint;
pub(crate) mod order;
pub(crate) mod patterns;

use crate::prepare::Prepared;
use crate::verdict::{Minimality, Verdict};
use explain::Explainer;
use faultline_history::{show, Paired};
use order::{Clocks, WriteIndex};

/// What every checker of this family needs: the prepared history, the clocks of its
/// causal order (or a cycle of it) and its writes by key and session.
pub(crate) struct Analysis<'a> {
    pub p: &'a Prepared,
    pub paired: &'a Paired,
    pub clocks: Result<Clocks, Vec<u32>>,
    pub writes: WriteIndex,
}

impl<'a> Analysis<'a> {
    /// Computes the causal order of a prepared history with unique values.
    pub fn new(p: &'a Prepared, paired: &'a Paired) -> Analysis<'a> {
        Analysis {
            p,
            paired,
            clocks: Clocks::compute(p, &[]),
            writes: WriteIndex::new(p),
        }
    }
}

/// Verdicts every model of this family shares: unsupported operations and values that
/// are not unique (unknown), reads of values nobody wrote (invalid). `None` when the
/// history can be checked.
pub(crate) fn precheck(
    p: &Prepared,
    paired: &Paired,
    model: &str,
    needs_unique: bool,
) -> Option<Verdict> {
    if let Some(u) = &p.unsupported {
        return Some(Verdict::Unknown {
            reason: format!(
                "{model}: the history has an {u}; only read, write and cas are checked"
            ),
            undecided: Vec::new(),
        });
    }
    if let Some(s) = &p.structural {
        let mut ex = Explainer::new(p, paired);
        let r = ex.label_raw(s.read);
        let op = &paired.ops[s.read];
        let value = match op.f.as_str() {
            "cas" => op.argument.as_array().and_then(|a| a.first()).map(show),
            _ => Some(show(&op.result)),
        }
        .unwrap_or_default();
        let (kind, summary) = match s.failed_write {
            Some(w) => {
                let lw = ex.label_raw(w);
                ex.say(format!(
                    "{r} observed {value}, but the only write of {value} is {lw}, which failed: it did not take effect, so {r} read a value that was never written (an aborted read)."
                ));
                (
                    "aborted-read",
                    format!("{r} read {value}, written only by a failed write"),
                )
            }
            None => {
                ex.say(format!(
                    "{r} observed {value}, but no operation wrote {value} to that key: it came out of thin air."
                ));
                (
                    "thin-air-read",
                    format!("{r} read {value}, which nobody wrote"),
                )
            }
        };
        let key = op.key.as_ref().map(|k| k.0.clone());
        let w = ex.finish(
            model,
            kind,
            key,
            format!("{model} violated: {summary}"),
            Minimality::ByConstruction,
        );
        return Some(Verdict::Invalid {
            witness: Box::new(w),
        });
    }
    if needs_unique {
        if let Some(n) = &p.not_unique {
            let what = match n.twice {
                true => format!("{} is written more than once to key {:?}", n.value, n.key),
                false => format!(
                    "{} (the initial value) is written to key {:?}",
                    n.value, n.key
                ),
            };
            return Some(Verdict::Unknown {
                reason: format!(
                    "{model} is only decided for histories whose written values are unique per key, and {what}"
                ),
                undecided: vec![n.key.clone()],
            });
        }
    }
    None
}

/// The witness of a cycle in session order and reads-from (CyclicCO).
pub(crate) fn cyclic_co(a: &Analysis, model: &str, cycle: &[u32]) -> Verdict {
    let mut ex = Explainer::new(a.p, a.paired);
    let mut path = cycle.to_vec();
    if let Some(&first) = cycle.first() {
        path.push(first);
    }
    ex.hops(&path);
    let first = cycle.first().map(|&o| ex.label(o)).unwrap_or_default();
    ex.say(format!(
        "So {first} causally precedes itself: some read observed a write that was issued only after it (causal order must be acyclic)."
    ));
    let w = ex.finish(
        model,
        "cyclic-co",
        None,
        format!(
            "{model} violated: session order and reads-from form a cycle of {} operations",
            cycle.len()
        ),
        Minimality::NotMinimised,
    );
    Verdict::Invalid {
        witness: Box::new(w),
    }
}

/// The precheck, then the cyclic-causal-order check; `Ok` carries the clocks.
pub(crate) fn base<'b>(a: &'b Analysis, model: &str) -> Result<&'b Clocks, Verdict> {
    if let Some(v) = precheck(a.p, a.paired, model, true) {
        return Err(v);
    }
    match &a.clocks {
        Ok(c) => Ok(c),
        Err(cycle) => Err(cyclic_co(a, model, cycle)),
    }
}

/// Turns a pass into unknown when failed cas operations observed a mismatch that these
/// checkers do not model.
pub(crate) fn unless_mismatches(p: &Prepared, model: &str, v: Verdict) -> Verdict {
    if matches!(v, Verdict::Valid) && p.mismatches > 0 {
        return Verdict::Unknown {
            reason: format!(
                "{model}: no violation found, but {} failed compare-and-set operations observed only that the value differed, which this checker does not model",
                p.mismatches
            ),
            undecided: Vec::new(),
        };
    }
    v
}
