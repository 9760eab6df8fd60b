//! Causal memory (CM): the happens-before relations `HB_o`.
//!
//! `HB_o` is the smallest transitive relation that contains the causal order restricted
//! to the causal past of `o`, and orders `w1` before `w2` (two writes of one key)
//! whenever some read `r2` of `w2`'s value with `r2 = o` or `r2` before `o` in session
//! order has `w1` happening before it. CM fails iff some `HB_o` is cyclic (CyclicHB) or
//! orders a write of `x` before a read of `x`'s initial value in `o`'s session past
//! (WriteHBInitRead). `HB_o` only grows along session order, so it is enough to compute
//! it for the last operation of each session: a fixpoint of vector-clock passes, adding
//! the forced write-before-write edges until none is new.

use super::explain::Explainer;
use super::order::Clocks;
use super::{base, unless_mismatches, Analysis};
use crate::verdict::{Minimality, Step, Verdict};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

/// What the fixpoint of one session found.
enum Outcome {
    Holds,
    /// A write happens before a read of the initial value.
    InitRead {
        w: u32,
        r: u32,
        edges: Vec<(u32, u32, u32)>,
    },
    /// `HB_o` has a cycle (nodes in order).
    Cycle {
        cycle: Vec<u32>,
        edges: Vec<(u32, u32, u32)>,
    },
    OutOfTime,
}

/// The reads of the session past of the last operation of `chain`, with their clocks.
fn session_reads(a: &Analysis, clocks: &Clocks, chain: u32, mut f: impl FnMut(u32, &[u32])) {
    let p = a.p;
    let c = &p.chains[chain as usize];
    if let Some(par) = c.parent {
        let pc = p.ops[par as usize].chain;
        let limit = p.ops[par as usize].pos;
        clocks.walk(p, pc, |o, vc| {
            if p.ops[o as usize].pos <= limit && p.is_read(o) {
                f(o, vc)
            }
        });
    }
    clocks.walk(p, chain, |o, vc| {
        if p.is_read(o) {
            f(o, vc)
        }
    });
}

fn session(a: &Analysis, base_clocks: &Clocks, chain: u32, deadline: Option<Instant>) -> Outcome {
    let p = a.p;
    // Extra edges (w1, w2, r2): w1 happens before r2, which read w2.
    let mut edges: Vec<(u32, u32, u32)> = Vec::new();
    let mut have: HashSet<(u32, u32)> = HashSet::new();
    let mut owned: Option<Clocks> = None;
    loop {
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Outcome::OutOfTime;
        }
        let clocks = owned.as_ref().unwrap_or(base_clocks);
        let mut found: Option<Outcome> = None;
        let mut new_edges = Vec::new();
        session_reads(a, clocks, chain, |r2, vc| {
            if found.is_some() {
                return;
            }
            let o = &p.ops[r2 as usize];
            let lo = o.rf.and_then(|w2| clocks.vc(w2));
            for w1 in a.writes.latest_in_past(o.key, vc, lo, r2) {
                match o.rf {
                    None => {
                        found = Some(Outcome::InitRead {
                            w: w1,
                            r: r2,
                            edges: Vec::new(),
                        });
                        return;
                    }
                    Some(w2) if w2 == w1 => {}
                    Some(w2) => {
                        if clocks.co(p, w2, w1) {
                            found = Some(Outcome::Cycle {
                                cycle: vec![w1, w2],
                                edges: vec![(w1, w2, r2)],
                            });
                            return;
                        }
                        if !clocks.co(p, w1, w2) && have.insert((w1, w2)) {
                            new_edges.push((w1, w2, r2));
                        }
                    }
                }
            }
        });
        match found {
            Some(Outcome::InitRead { w, r, .. }) => return Outcome::InitRead { w, r, edges },
            Some(Outcome::Cycle { cycle, edges: e }) => {
                edges.extend(e);
                return Outcome::Cycle { cycle, edges };
            }
            _ => {}
        }
        if new_edges.is_empty() {
            return Outcome::Holds;
        }
        edges.extend(new_edges);
        let extra: Vec<(u32, u32)> = edges.iter().map(|&(w1, w2, _)| (w1, w2)).collect();
        match Clocks::compute(p, &extra) {
            Ok(c) => owned = Some(c),
            Err(cycle) => return Outcome::Cycle { cycle, edges },
        }
    }
}

/// Causal memory (CM). `deadline` bounds the fixpoints.
pub(crate) fn cm(a: &Analysis, model: &str, deadline: Option<Instant>) -> Verdict {
    let clocks = match base(a, model) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let p = a.p;
    let outcomes: Vec<(u32, Outcome)> = (0..p.chains.len() as u32)
        .into_par_iter()
        .map(|c| (c, session(a, clocks, c, deadline)))
        .collect();
    let mut late = Vec::new();
    for (chain, o) in outcomes {
        match o {
            Outcome::Holds => {}
            Outcome::OutOfTime => late.push(format!(
                "session of process {}",
                p.chains[chain as usize].process
            )),
            Outcome::InitRead { w, r, edges } => {
                return explain(a, model, chain, &edges, Some((w, r)), &[])
            }
            Outcome::Cycle { cycle, edges } => {
                return explain(a, model, chain, &edges, None, &cycle)
            }
        }
    }
    if !late.is_empty() {
        return Verdict::Unknown {
            reason: format!(
                "{model}: time limit reached before the happens-before fixpoint of {} sessions",
                late.len()
            ),
            undecided: late,
        };
    }
    if p.has_cas {
        return Verdict::Unknown {
            reason: format!(
                "{model}: no violation found, but the history has compare-and-set operations, whose atomicity this check does not model"
            ),
            undecided: Vec::new(),
        };
    }
    unless_mismatches(p, model, Verdict::Valid)
}

/// A shortest path from `a` to `b` over session order, reads-from and the extra edges.
fn hb_path(a: &Analysis, preds: &HashMap<u32, Vec<u32>>, from: u32, to: u32) -> Option<Vec<u32>> {
    let p = a.p;
    let mut next: HashMap<u32, u32> = HashMap::new();
    let mut queue = VecDeque::from([to]);
    while let Some(x) = queue.pop_front() {
        let extra = preds.get(&x).map(Vec::as_slice).unwrap_or(&[]);
        let base = [p.po_pred(x), p.ops[x as usize].rf];
        for y in base.into_iter().flatten().chain(extra.iter().copied()) {
            if y == to || next.contains_key(&y) {
                continue;
            }
            next.insert(y, x);
            if y == from {
                let mut path = vec![from];
                let mut cur = from;
                while cur != to {
                    cur = next[&cur];
                    path.push(cur);
                }
                return Some(path);
            }
            queue.push_back(y);
        }
    }
    None
}

/// States a path whose hops are session order, reads-from or forced write orders.
fn say_path(ex: &mut Explainer, path: &[u32], reasons: &HashMap<(u32, u32), u32>, process: u64) {
    let mut i = 0;
    while i + 1 < path.len() {
        let (x, y) = (path[i], path[i + 1]);
        if let Some(&r2) = reasons.get(&(x, y)) {
            let (lx, ly, lr) = (ex.label(x), ex.label(y), ex.label(r2));
            // Why x happens before r2: a causal path when there is one.
            ex.causal(x, r2);
            let text = format!(
                "{lr}, in the session of process {process}, read {ly}'s value while {lx}, another write of the same key, already happened before it; so in that session's view {lx} happens before {ly}."
            );
            ex.steps
                .push(Step::relation("happens-before", &lx, &ly, text));
            i += 1;
        } else {
            let mut j = i + 1;
            while j + 1 < path.len() && !reasons.contains_key(&(path[j], path[j + 1])) {
                j += 1;
            }
            ex.hops(&path[i..=j]);
            i = j;
        }
    }
}

fn explain(
    a: &Analysis,
    model: &str,
    chain: u32,
    edges: &[(u32, u32, u32)],
    init: Option<(u32, u32)>,
    cycle: &[u32],
) -> Verdict {
    let p = a.p;
    let process = p.chains[chain as usize].process;
    let mut preds: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut reasons: HashMap<(u32, u32), u32> = HashMap::new();
    for &(w1, w2, r2) in edges {
        preds.entry(w2).or_default().push(w1);
        reasons.insert((w1, w2), r2);
    }
    let mut ex = Explainer::new(p, a.paired);
    let (kind, summary, key) = if let Some((w, r)) = init {
        let (lw, lr) = (ex.label(w), ex.label(r));
        let x = ex.key_words(r);
        if let Some(path) = hb_path(a, &preds, w, r) {
            say_path(&mut ex, &path, &reasons, process);
        }
        ex.say(format!(
            "So {lw} happens before {lr} in the view of process {process}'s session, yet {lr} read the initial value of {x}: a contradiction."
        ));
        (
            "write-hb-init-read",
            format!("{lr} read the initial value of {x} although {lw} happens before it"),
            p.key_name(p.ops[r as usize].key),
        )
    } else {
        let mut path = cycle.to_vec();
        if let Some(&f) = cycle.first() {
            path.push(f);
        }
        // Each hop of the cycle is a direct edge; expand any hop that is a causal-order
        // shortcut (the two-node cycle found directly) into a shortest path.
        let mut full = vec![path[0]];
        for win in path.windows(2) {
            let (x, y) = (win[0], win[1]);
            let direct = reasons.contains_key(&(x, y))
                || p.po_pred(y) == Some(x)
                || p.ops[y as usize].rf == Some(x);
            match (direct, hb_path(a, &preds, x, y)) {
                (false, Some(sub)) => full.extend_from_slice(&sub[1..]),
                _ => full.push(y),
            }
        }
        say_path(&mut ex, &full, &reasons, process);
        let first = cycle.first().map(|&o| ex.label(o)).unwrap_or_default();
        ex.say(format!(
            "So {first} happens before itself in the view of process {process}'s session: no serialisation of its causal past explains its reads."
        ));
        let key = cycle
            .iter()
            .find(|&&o| p.ops[o as usize].write.is_some())
            .and_then(|&o| p.key_name(p.ops[o as usize].key));
        (
            "cyclic-hb",
            format!("the happens-before order of process {process}'s session is cyclic"),
            key,
        )
    };
    let w = ex.finish(
        model,
        kind,
        key,
        format!("{model} violated: {summary}"),
        Minimality::NotMinimised,
    );
    Verdict::Invalid {
        witness: Box::new(w),
    }
}
