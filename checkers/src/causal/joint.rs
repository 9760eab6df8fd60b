//! The joint happens-before relation of causal memory: one fixpoint for all sessions at
//! once, which decides CM when it holds (see [`joint`]); the sessions' own fixpoints
//! (module `cm`) decide otherwise.

use super::cm::{Succ, NONE};
use super::order::Clocks;
use super::patterns::{self, Scan};
use super::Analysis;
use crate::prepare::Prepared;
use rayon::prelude::*;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

/// How the joint relation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Joint {
    /// Acyclic, and no write happens before a read of the initial value: CM holds.
    Holds,
    /// A cycle or a write before an initial read: undecided, the sessions are checked.
    Fails {
        /// Chains of the reads found taking part (the read where it was detected, or the
        /// reads that forced the edges of the cycle); a first guess at which sessions
        /// to leave out of the next try (see `cm`).
        culprits: Vec<u32>,
    },
    /// The time limit came first.
    OutOfTime,
}

/// The first round of the joint relation, made by the caller from CC's scan of the
/// reads against the causal order.
pub(crate) struct First {
    /// Whether `G` already fails: the scan found a CC pattern, or the causal order with
    /// the conflict edges is cyclic.
    fails: bool,
    /// The edges `(w1, w2, r2)`: `r2`, a read of `w2`, has `w1`, another write of the
    /// key, in its causal past, and neither is causally before the other (CCv's
    /// conflict edges; all of them, also when `G` already fails).
    edges: Vec<(u32, u32, u32)>,
    /// The clocks of the causal order with those edges, if already computed.
    clocks: Option<Clocks>,
    /// The chain of a read with a CC pattern, if the scan found one. Its session is CM
    /// violated: a write causally before a read of the initial value happens before it,
    /// and a read of `w1` with `w1 <co w2 <co r` forces `w2` before `w1`, a cycle.
    pub hint: Option<u32>,
    /// When `G` already fails: the chains of the reads involved (every read with a CC
    /// pattern, or the reads that forced the conflict edges of the cycle).
    culprits: Vec<u32>,
}

impl First {
    /// The first round from CC's scan (made with conflicts) and, when CCv shares it,
    /// the conflict order (whose clocks CM takes).
    pub fn from_scan(a: &Analysis, s: &Scan, shared: Option<&mut SharedConflicts>) -> First {
        let chain = |r: u32| a.p.ops[r as usize].chain;
        let hint = s.violating_read().map(chain);
        let edges = s.conflict_edges();
        if hint.is_some() {
            // Every read with a CC pattern: left out, the other reads are CC-clean.
            return First {
                fails: true,
                culprits: s.bad_reads().iter().map(|&r| chain(r)).collect(),
                edges,
                clocks: None,
                hint,
            };
        }
        if let Some(cycle) = shared.as_ref().and_then(|sh| sh.cycle.as_ref()) {
            return First {
                fails: true,
                culprits: reasons(cycle, &edges).into_iter().map(chain).collect(),
                edges,
                clocks: None,
                hint,
            };
        }
        First {
            fails: false,
            edges,
            clocks: shared.and_then(|sh| sh.clocks.take()),
            hint: None,
            culprits: Vec::new(),
        }
    }

    /// The conflict edges of CC's scan (all of them, also when `G` already fails).
    pub fn conflicts(&self) -> &[Forced] {
        &self.edges
    }

    /// The first round over the reads of the chains `include` allows, from the
    /// `conflicts` of a [`First`], when no read of theirs has a CC pattern: the conflict
    /// edges those reads forced.
    pub fn restricted(a: &Analysis, conflicts: &[Forced], include: &[bool]) -> First {
        let chain = |r: u32| a.p.ops[r as usize].chain as usize;
        First {
            fails: false,
            edges: conflicts
                .iter()
                .copied()
                .filter(|&(_, _, r)| include[chain(r)])
                .collect(),
            clocks: None,
            hint: None,
            culprits: Vec::new(),
        }
    }
}

/// The conflict order `CO ∪ CF` of CCv, computed once when CCv and CM are both checked:
/// CCv needs to know whether it is acyclic, CM starts its joint relation from its
/// clocks.
pub(crate) struct SharedConflicts {
    /// A cycle of it, if it has one.
    cycle: Option<Vec<u32>>,
    /// Its clocks, until CM takes them.
    clocks: Option<Clocks>,
}

impl SharedConflicts {
    /// Computes the conflict order of a scan made with conflicts that found no CC
    /// pattern.
    pub fn new(a: &Analysis, s: &Scan) -> SharedConflicts {
        match patterns::conflict_order(a, s) {
            Ok(c) => SharedConflicts {
                cycle: None,
                clocks: Some(c),
            },
            Err(cycle) => SharedConflicts {
                cycle: Some(cycle),
                clocks: None,
            },
        }
    }

    /// `Ok` if the conflict order is acyclic, else one of its cycles.
    pub fn acyclic(&self) -> Result<(), &[u32]> {
        match &self.cycle {
            None => Ok(()),
            Some(c) => Err(c),
        }
    }
}

/// The joint relation `G`: the least transitive relation that contains the causal order
/// and orders `w1` before `w2` whenever any read of `w2`, in any session, has `w1`
/// before it in `G`. It satisfies the closure rules of every `HB_o` (they are the same
/// rules restricted to fewer reads and a smaller past), so it contains every `HB_o`: if
/// `G` is acyclic and orders no write before a read of the key's initial value, no
/// `HB_o` has a cycle or such a pair, and CM holds. A sequentially consistent history
/// always passes: by induction every edge of `G` is in its sequential order (a read of
/// `w2` with `w1` before it has `w1` before `w2`, the last write of the key).
///
/// Computed in rounds, each scanning reads against the clocks of `G` so far, until a
/// round finds no new edge. The first scans every read against the causal order
/// (`first`, when the caller has made it), and the clocks are recomputed with the (many)
/// edges found; the second scans every read again. A round with many new edges (one per
/// 64 operations or more) recomputes the clocks and scans every read again; one with
/// few adds them one by one, pushing each clock change forward (after checking the edge
/// against the exact clocks: `w2` before `w1` is a cycle), and scans again only the reads
/// whose clocks grew.
pub(crate) fn joint(
    a: &Analysis,
    clocks: &Clocks,
    succ: &Succ,
    first: Option<First>,
    deadline: Option<Instant>,
    include: Option<&[bool]>,
) -> Joint {
    let p = a.p;
    let late = || deadline.is_some_and(|d| Instant::now() > d);
    let fails = |reads: &[u32]| Joint::Fails {
        culprits: reads.iter().map(|&r| p.ops[r as usize].chain).collect(),
    };
    if late() {
        return Joint::OutOfTime;
    }
    // Edges `(w1, w2, r2)`: `r2`, a read of `w2`, forced `w1` before `w2`.
    let (mut edges, given) = match first {
        Some(f) if f.fails => {
            return Joint::Fails {
                culprits: f.culprits,
            }
        }
        // Given, the first round was made over the reads `include` allows.
        Some(f) => (f.edges, f.clocks),
        None => match scan(a, clocks, succ, Reads::All, include) {
            Ok(e) => (e, None),
            Err(r) => return fails(&[r]),
        },
    };
    if edges.is_empty() {
        return Joint::Holds;
    }
    if late() {
        return Joint::OutOfTime;
    }
    let mut g = match given {
        Some(g) => g,
        None => match Clocks::compute(p, &pairs(&edges)) {
            Ok(c) => c,
            Err(cycle) => return fails(&reasons(&cycle, &edges)),
        },
    };
    if late() {
        return Joint::OutOfTime;
    }
    let mut new = match scan(a, &g, succ, Reads::All, include) {
        Ok(e) => e,
        Err(r) => return fails(&[r]),
    };
    // Forced successors of each write, built when the first edge is pushed.
    let mut forced: Option<HashMap<u32, Vec<u32>>> = None;
    let mut push = Push {
        queued: vec![false; g.slots()],
        grown: vec![false; g.slots()],
        grown_list: Vec::new(),
        heap: BinaryHeap::new(),
        starts: Vec::new(),
        tmp: Vec::with_capacity(g.k),
    };
    loop {
        new.sort_unstable();
        new.dedup_by_key(|e| (e.0, e.1));
        if new.is_empty() {
            return Joint::Holds;
        }
        if late() {
            return Joint::OutOfTime;
        }
        if new.len().saturating_mul(64) >= p.ops.len() {
            // Many edges move most clocks: recomputing them and scanning every read
            // again costs less than pushing the edges one by one.
            edges.extend_from_slice(&new);
            g = match Clocks::compute(p, &pairs(&edges)) {
                Ok(c) => c,
                Err(cycle) => return fails(&reasons(&cycle, &edges)),
            };
            if let Some(f) = &mut forced {
                for &(w1, w2, _) in &new {
                    f.entry(w1).or_default().push(w2);
                }
            }
            match scan(a, &g, succ, Reads::All, include) {
                Ok(next) => new = next,
                Err(r) => return fails(&[r]),
            }
            continue;
        }
        let forced = forced.get_or_insert_with(|| {
            let mut f: HashMap<u32, Vec<u32>> = HashMap::new();
            for &(w1, w2, _) in &edges {
                f.entry(w1).or_default().push(w2);
            }
            f
        });
        push.clear();
        for (w1, w2, r2) in new {
            if g.co(p, w2, w1) {
                return fails(&[r2]);
            }
            if g.co(p, w1, w2) {
                continue;
            }
            edges.push((w1, w2, r2));
            forced.entry(w1).or_default().push(w2);
            push.edge(p, &mut g, succ, forced, w1, w2);
        }
        push.starts.sort_unstable();
        push.starts.dedup();
        let reads = Reads::Grown {
            starts: &push.starts,
            grown: &push.grown,
        };
        match scan(a, &g, succ, reads, include) {
            Ok(next) => new = next,
            Err(r) => return fails(&[r]),
        }
    }
}

/// The pairs `(w1, w2)` of edges with their reasons.
fn pairs(edges: &[(u32, u32, u32)]) -> Vec<(u32, u32)> {
    edges.iter().map(|&(w1, w2, _)| (w1, w2)).collect()
}

/// The reads that forced the edges of `cycle` (nodes in order), as far as `edges` holds
/// them (the other hops are session order and reads-from).
pub(crate) fn reasons(cycle: &[u32], edges: &[(u32, u32, u32)]) -> Vec<u32> {
    let why: HashMap<(u32, u32), u32> = edges.iter().map(|&(x, y, r)| ((x, y), r)).collect();
    (0..cycle.len())
        .filter_map(|i| why.get(&(cycle[i], cycle[(i + 1) % cycle.len()])).copied())
        .collect()
}

/// A forced edge `(w1, w2, r2)`: `r2`, a read of `w2`, orders `w1` before `w2`.
pub(crate) type Forced = (u32, u32, u32);

/// Which reads a scan of the joint relation visits.
enum Reads<'r> {
    /// Every read.
    All,
    /// The reads whose clocks may have grown: from each `(chain, position)` of `starts`
    /// (sorted) on, up to the next op whose stored clock did not grow (per slot,
    /// `grown`).
    Grown {
        starts: &'r [(u32, u32)],
        grown: &'r [bool],
    },
}

/// Checks a read `r2` whose clock in `g` is `vc`: `Err` if a write of its key comes
/// before it although it read the initial value, or comes after the write it read while
/// being before the read (a cycle); else adds to `out` the edges `(w1, w2)` it forces
/// that `g` lacks. Only the last write of the key of each session in the read's past
/// and not in its write's past matters: earlier ones precede it in session order.
fn check_read(
    a: &Analysis,
    g: &Clocks,
    r2: u32,
    vc: &[u32],
    out: &mut Vec<(u32, u32, u32)>,
) -> Result<(), u32> {
    let p = a.p;
    let o = &p.ops[r2 as usize];
    let lo = o.rf.and_then(|w2| g.vc(w2));
    for w1 in a.writes.latest_in_past(o.key, vc, lo, r2) {
        match o.rf {
            None => return Err(r2),
            Some(w2) if w2 == w1 => {}
            Some(w2) if g.co(p, w2, w1) => return Err(r2),
            Some(w2) => {
                if !g.co(p, w1, w2) {
                    out.push((w1, w2, r2));
                }
            }
        }
    }
    Ok(())
}

/// Scans `reads` (of the chains `include` allows) against the relation whose clocks are
/// `g`: `Err` with the read at a violation (see [`check_read`]), else the edges the
/// reads force that `g` lacks, with the reads that force them.
fn scan(
    a: &Analysis,
    g: &Clocks,
    succ: &Succ,
    reads: Reads,
    include: Option<&[bool]>,
) -> Result<Vec<Forced>, u32> {
    let p = a.p;
    let wanted = |c: u32| include.is_none_or(|inc| inc[c as usize]);
    let per_chain: Vec<Result<Vec<Forced>, u32>> = match reads {
        Reads::All => (0..p.chains.len() as u32)
            .into_par_iter()
            .filter(|&c| wanted(c))
            .map(|chain| {
                let mut new = Vec::new();
                let mut bad = None;
                g.walk_stored(p, chain, |r2, vc| {
                    if bad.is_none() && p.is_read(r2) {
                        bad = check_read(a, g, r2, vc, &mut new).err();
                    }
                });
                match bad {
                    Some(r) => Err(r),
                    None => Ok(new),
                }
            })
            .collect(),
        Reads::Grown { starts, grown } => {
            let runs: Vec<&[(u32, u32)]> = starts
                .chunk_by(|x, y| x.0 == y.0)
                .filter(|run| run.first().is_some_and(|s| wanted(s.0)))
                .collect();
            runs.par_iter()
                .map(|run| grown_reads(a, g, succ, run, grown))
                .collect()
        }
    };
    let mut out = Vec::new();
    for c in per_chain {
        out.extend(c?);
    }
    Ok(out)
}

/// [`scan`] of the grown reads of one chain (`run`: its starts, sorted by position).
fn grown_reads(
    a: &Analysis,
    g: &Clocks,
    succ: &Succ,
    run: &[(u32, u32)],
    grown: &[bool],
) -> Result<Vec<Forced>, u32> {
    let p = a.p;
    let mut new = Vec::new();
    let Some(&(chain, _)) = run.first() else {
        return Ok(new);
    };
    let ops = &p.chains[chain as usize].ops;
    let mut vc = vec![0u32; g.k];
    let mut next = 0;
    while let Some(&(_, d)) = run.get(next) {
        // Resume from the last stored clock at or before `d`.
        let mut q = match succ.prev_stored[ops[d as usize] as usize] {
            NONE => {
                g.start(p, chain, &mut vc);
                0
            }
            s => p.ops[s as usize].pos,
        };
        let mut dirty = false;
        while let Some(&o) = ops.get(q as usize) {
            g.step_stored(p, o, &mut vc);
            let mut start = false;
            while next < run.len() && run[next].1 <= q {
                start |= run[next].1 == q;
                next += 1;
            }
            // A stored clock that did not grow resets the running clock to an old one.
            dirty = match g.slot_of(o) {
                Some(s) => grown[s] || start,
                None => dirty || start,
            };
            if q >= d && !dirty {
                break;
            }
            if dirty && p.is_read(o) {
                check_read(a, g, o, &vc, &mut new)?;
            }
            q += 1;
        }
    }
    Ok(new)
}

/// Adds edges to the joint relation one at a time, pushing clock changes forward.
struct Push {
    /// Per slot: whether the op waits in `heap`.
    queued: Vec<bool>,
    /// Per slot: whether its clock grew in this round.
    grown: Vec<bool>,
    grown_list: Vec<u32>,
    /// Ops whose clocks grew and were not pushed forward yet, earliest first.
    heap: BinaryHeap<Reverse<u32>>,
    /// `(chain, position)` of the ops from which running clocks may have grown.
    starts: Vec<(u32, u32)>,
    tmp: Vec<u32>,
}

impl Push {
    fn clear(&mut self) {
        for &s in &self.grown_list {
            self.grown[s as usize] = false;
        }
        self.grown_list.clear();
        self.starts.clear();
    }

    /// Adds the edge `w1 → w2` (already in `forced`) to `g` and makes `g` transitive
    /// again, noting what grew.
    fn edge(
        &mut self,
        p: &Prepared,
        g: &mut Clocks,
        succ: &Succ,
        forced: &HashMap<u32, Vec<u32>>,
        w1: u32,
        w2: u32,
    ) {
        self.tmp.clear();
        if let Some(c) = g.vc(w1) {
            self.tmp.extend_from_slice(c);
        }
        if self.join(p, g, succ, w2) {
            self.enqueue(g, w2);
        }
        let mut next = Vec::new();
        while let Some(Reverse(y)) = self.heap.pop() {
            if let Some(s) = g.slot_of(y) {
                self.queued[s] = false;
            }
            self.tmp.clear();
            match g.vc(y) {
                Some(c) => self.tmp.extend_from_slice(c),
                None => continue,
            }
            next.clear();
            succ.each(p, y, |z| next.push(z));
            if let Some(f) = forced.get(&y) {
                next.extend_from_slice(f);
            }
            for &z in &next {
                if self.join(p, g, succ, z) {
                    self.enqueue(g, z);
                }
            }
        }
    }

    fn enqueue(&mut self, g: &Clocks, op: u32) {
        if let Some(s) = g.slot_of(op) {
            if !self.queued[s] {
                self.queued[s] = true;
                self.heap.push(Reverse(op));
            }
        }
    }

    /// Joins `tmp` into the clock of `z`; if it grew, notes where running clocks grow.
    fn join(&mut self, p: &Prepared, g: &mut Clocks, succ: &Succ, z: u32) -> bool {
        let Some(s) = g.slot_of(z) else {
            return false;
        };
        let Some(c) = g.vc_mut(z) else {
            return false;
        };
        let mut grew = false;
        for (x, &y) in c.iter_mut().zip(&self.tmp) {
            if y > *x {
                *x = y;
                grew = true;
            }
        }
        if grew && !self.grown[s] {
            self.grown[s] = true;
            self.grown_list.push(s as u32);
            let at = |op: u32| (p.ops[op as usize].chain, p.ops[op as usize].pos);
            self.starts.push(at(z));
            self.starts
                .extend(succ.readers.succ(z).iter().map(|&r| at(r)));
            self.starts
                .extend(succ.forks.succ(z).iter().map(|&f| at(f)));
        }
        grew
    }
}
