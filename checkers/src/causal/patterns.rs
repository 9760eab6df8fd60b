//! The CC and CCv bad patterns over vector clocks.
//!
//! For each read `r` of key `x`, and each session `s`, only the last write of `x` by `s`
//! in `r`'s causal past matters: earlier writes of `s` precede it in session order, so if
//! any of them is causally after `r`'s write, so is the last one; and the conflict edges
//! from earlier writes follow from the last one's by session order. Cost
//! `O(n · k · log n)` for `n` operations and `k` sessions.

use super::explain::Explainer;
use super::graph::Graph;
use super::order::{base_edges, Clocks};
use super::{base, unless_mismatches, Analysis};
use crate::verdict::{Minimality, Verdict};
use rayon::prelude::*;
use std::collections::HashMap;

/// A CC bad pattern found at a read.
#[derive(Debug, Clone, Copy)]
enum Found {
    /// `w` is in the causal past of `r`, which read the initial value.
    InitRead { w: u32, r: u32 },
    /// `w1 <co w2 <co r` and `r` read `w1`.
    CoRead { w1: u32, w2: u32, r: u32 },
}

/// What a scan of all reads found.
pub(crate) struct Scan {
    found: Option<Found>,
    /// Every read at which a CC pattern was found (in no particular order).
    bad: Vec<u32>,
    /// Conflict edges `(w2, w1, r)`: `r` read `w1` with `w2` in its causal past.
    conflicts: Vec<(u32, u32, u32)>,
}

impl Scan {
    /// Whether the scan found no CC pattern.
    pub fn cc_holds(&self) -> bool {
        self.found.is_none()
    }

    /// The read at which a CC pattern was found, if any.
    pub fn violating_read(&self) -> Option<u32> {
        self.found.map(|f| match f {
            Found::InitRead { r, .. } | Found::CoRead { r, .. } => r,
        })
    }

    /// Every read at which a CC pattern was found. A read that violates a session
    /// guarantee is one of them (see `crate::session`).
    pub fn bad_reads(&self) -> &[u32] {
        &self.bad
    }

    /// The conflict edges as `(w2, w1, r)`: `w2` must precede `w1`, because `r` read
    /// `w1` with `w2` in its causal past.
    pub fn conflict_edges(&self) -> Vec<(u32, u32, u32)> {
        self.conflicts.clone()
    }

    /// The conflict edges as pairs `(w2, w1)`: `w2` must precede `w1`.
    pub fn conflict_pairs(&self) -> Vec<(u32, u32)> {
        self.conflicts.iter().map(|&(w2, w1, _)| (w2, w1)).collect()
    }
}

/// Whether `CO ∪ CF` is acyclic (`Ok`), with the clocks of that order (CM's joint
/// relation starts from them), or a short cycle of it (`Err`). Same graph, same cycle as
/// [`ccv_scanned`] builds.
pub(crate) fn conflict_order(a: &Analysis, s: &Scan) -> Result<Clocks, Vec<u32>> {
    Clocks::compute(a.p, &s.conflict_pairs())
}

/// Scans every read for the CC patterns, collecting conflict edges if asked.
pub(crate) fn scan(a: &Analysis, clocks: &Clocks, want_conflicts: bool) -> Scan {
    let p = a.p;
    let per_chain: Vec<Scan> = (0..p.chains.len() as u32)
        .into_par_iter()
        .map(|chain| {
            let mut out = Scan {
                found: None,
                bad: Vec::new(),
                conflicts: Vec::new(),
            };
            clocks.walk(p, chain, |r, vc| {
                let o = &p.ops[r as usize];
                if !p.is_read(r) {
                    return;
                }
                let lo = o.rf.and_then(|w1| clocks.vc(w1));
                let mut bad = false;
                for w2 in a.writes.latest_in_past(o.key, vc, lo, r) {
                    match o.rf {
                        None => {
                            out.found.get_or_insert(Found::InitRead { w: w2, r });
                            bad = true;
                            break;
                        }
                        Some(w1) if w1 == w2 => {}
                        Some(w1) => {
                            if clocks.co(p, w1, w2) {
                                out.found.get_or_insert(Found::CoRead { w1, w2, r });
                                bad = true;
                            } else if want_conflicts && !clocks.co(p, w2, w1) {
                                out.conflicts.push((w2, w1, r));
                            }
                        }
                    }
                }
                if bad {
                    out.bad.push(r);
                }
            });
            out
        })
        .collect();
    let src = |f: &Found| match *f {
        Found::InitRead { r, .. } | Found::CoRead { r, .. } => p.ops[r as usize].src,
    };
    let found = per_chain
        .iter()
        .filter_map(|s| s.found)
        .min_by_key(|f| src(f));
    let bad = per_chain
        .iter()
        .flat_map(|s| s.bad.iter().copied())
        .collect();
    let conflicts = per_chain.into_iter().flat_map(|s| s.conflicts).collect();
    Scan {
        found,
        bad,
        conflicts,
    }
}

fn explain_found(a: &Analysis, model: &str, f: Found) -> Verdict {
    let mut ex = Explainer::new(a.p, a.paired);
    let key = a.p.key_name(match f {
        Found::InitRead { r, .. } | Found::CoRead { r, .. } => a.p.ops[r as usize].key,
    });
    let (kind, summary) = match f {
        Found::InitRead { w, r } => {
            let (lw, lr) = (ex.label(w), ex.label(r));
            let x = ex.key_words(r);
            ex.causal(w, r);
            ex.say(format!(
                "So {lw} is in the causal past of {lr}, yet {lr} read the initial value of {x}: a contradiction."
            ));
            (
                "write-co-init-read",
                format!("{lr} read the initial value of {x} although {lw}, a write of {x}, causally precedes it"),
            )
        }
        Found::CoRead { w1, w2, r } => {
            let (l1, l2, lr) = (ex.label(w1), ex.label(w2), ex.label(r));
            let x = ex.key_words(r);
            ex.reads_from(w1, r);
            ex.causal(w1, w2);
            ex.causal(w2, r);
            ex.say(format!(
                "So {l1} causally precedes {l2}, which causally precedes {lr}: {l2} overwrote {l1} in {lr}'s causal past, yet {lr} read {l1}'s value: a contradiction."
            ));
            (
                "write-co-read",
                format!("{lr} read {x} from {l1} although {l2} overwrote it in {lr}'s causal past"),
            )
        }
    };
    let w = ex.finish(
        model,
        kind,
        key,
        format!("{model} violated: {summary}"),
        Minimality::ByConstruction,
    );
    Verdict::Invalid {
        witness: Box::new(w),
    }
}

/// Weak causal consistency (CC).
pub(crate) fn cc(a: &Analysis, model: &str) -> Verdict {
    match base(a, model) {
        Ok(clocks) => cc_scanned(a, &scan(a, clocks, false), model),
        Err(v) => v,
    }
}

/// CC from a scan of the same analysis.
pub(crate) fn cc_scanned(a: &Analysis, s: &Scan, model: &str) -> Verdict {
    if let Err(v) = base(a, model) {
        return v;
    }
    let v = match s.found {
        Some(f) => explain_found(a, model, f),
        None => Verdict::Valid,
    };
    unless_mismatches(a.p, model, v)
}

/// Causal convergence (CCv).
pub(crate) fn ccv(a: &Analysis, model: &str) -> Verdict {
    match base(a, model) {
        Ok(clocks) => ccv_scanned(a, &scan(a, clocks, true), model),
        Err(v) => v,
    }
}

/// CCv from a scan (with conflicts) of the same analysis.
pub(crate) fn ccv_scanned(a: &Analysis, s: &Scan, model: &str) -> Verdict {
    ccv_decided(a, s, model, None)
}

/// CCv from a scan (with conflicts) of the same analysis and, when already known,
/// whether `CO ∪ CF` is acyclic (`Ok`) or a cycle of it (`Err`), from
/// [`conflict_order`].
pub(crate) fn ccv_decided(
    a: &Analysis,
    s: &Scan,
    model: &str,
    cf: Option<Result<(), &[u32]>>,
) -> Verdict {
    if let Err(v) = base(a, model) {
        return v;
    }
    if let Some(f) = s.found {
        return explain_found(a, model, f);
    }
    let cycle = match cf {
        Some(Ok(())) => None,
        Some(Err(cycle)) => Some(cycle.to_vec()),
        None => {
            let mut edges = base_edges(a.p);
            edges.extend(s.conflicts.iter().map(|&(w2, w1, _)| (w2, w1)));
            let g = Graph::new(a.p.ops.len(), &edges);
            drop(edges);
            match g.topo() {
                Ok(_) => None,
                Err(stuck) => Some(g.shortest_cycle(&stuck)),
            }
        }
    };
    let v = match cycle {
        None => Verdict::Valid,
        Some(cycle) => {
            let reasons: HashMap<(u32, u32), u32> = s
                .conflicts
                .iter()
                .map(|&(w2, w1, r)| ((w2, w1), r))
                .collect();
            explain_cf_cycle(a, model, &cycle, &reasons)
        }
    };
    unless_mismatches(a.p, model, v)
}

fn explain_cf_cycle(
    a: &Analysis,
    model: &str,
    cycle: &[u32],
    reasons: &HashMap<(u32, u32), u32>,
) -> Verdict {
    let p = a.p;
    let mut ex = Explainer::new(p, a.paired);
    let n = cycle.len();
    let mut i = 0;
    while i < n {
        let (x, y) = (cycle[i], cycle[(i + 1) % n]);
        match reasons.get(&(x, y)) {
            Some(&r) if p.po_pred(y) != Some(x) && p.ops[y as usize].rf != Some(x) => {
                let (lx, ly, lr) = (ex.label(x), ex.label(y), ex.label(r));
                ex.reads_from(y, r);
                ex.causal(x, r);
                let text = format!(
                    "{lr} read {ly}'s value although {lx}, another write of the same key, is in its causal past; so every arbitration order that explains {lr} puts {lx} before {ly}."
                );
                ex.steps
                    .push(crate::verdict::Step::relation("conflict", &lx, &ly, text));
                i += 1;
            }
            _ => {
                // A run of session-order / reads-from hops up to the next conflict edge.
                let mut j = i + 1;
                while j < n && !reasons.contains_key(&(cycle[j], cycle[(j + 1) % n])) {
                    j += 1;
                }
                let path: Vec<u32> = (i..=j).map(|t| cycle[t % n]).collect();
                ex.hops(&path);
                i = j;
            }
        }
    }
    let first = cycle.first().map(|&o| ex.label(o)).unwrap_or_default();
    ex.say(format!(
        "So {first} must be ordered before itself: no single order of the writes (arbitration) explains every read: a contradiction."
    ));
    let key = cycle
        .iter()
        .find(|&&o| p.ops[o as usize].write.is_some())
        .and_then(|&o| p.key_name(p.ops[o as usize].key));
    let w = ex.finish(
        model,
        "cyclic-cf",
        key,
        format!(
            "{model} violated: reads force a cyclic order of writes ({} operations in the cycle)",
            n
        ),
        Minimality::NotMinimised,
    );
    Verdict::Invalid {
        witness: Box::new(w),
    }
}
