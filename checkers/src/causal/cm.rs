//! Causal memory (CM): the happens-before relations `HB_o`.
//!
//! `HB_o` is the smallest transitive relation that contains the causal order restricted
//! to the causal past of `o`, and orders `w1` before `w2` (two writes of one key)
//! whenever some read `r2` of `w2`'s value with `r2 = o` or `r2` before `o` in session
//! order has `w1` happening before it. CM fails iff some `HB_o` is cyclic (CyclicHB) or
//! orders a write of `x` before a read of `x`'s initial value in `o`'s session past
//! (WriteHBInitRead). `HB_o` only grows along session order, so it is enough to compute
//! it for the last operation `o` of each session.
//!
//! Two stages, both exact in what they report:
//!
//! 1. The joint relation `G` (module `joint`): the same fixpoint with the forced edges
//!    of every session's reads at once. It contains every `HB_o`, so if it is acyclic
//!    and orders no write before a read of the initial value, CM holds. Every
//!    sequentially consistent history passes here, at the cost of a few scans of all
//!    reads.
//! 2. Otherwise, the processes whose reads took part in the failure are set aside and
//!    `G` is computed again over the reads of the other processes: if it holds, their
//!    sessions hold (see [`narrow`]) and only the sessions set aside go on to stage 3.
//!    One stale read in a 1M-operation history leaves 2 of 50 processes to check.
//! 3. The sessions left (a violation, or a history that is CM but whose sessions
//!    disagree) are each checked on their own `HB_o`, kept incrementally: the clocks of
//!    the causal order, shared by all sessions, plus a private overlay with the clocks
//!    that the session's forced edges changed. A pass walks the session's reads with
//!    their happens-before clocks; each forced edge `w1 → w2` it finds is checked
//!    against the current clocks (if `w2` already happens before `w1`, `HB_o` is
//!    cyclic; if `w1` already happens before `w2`, it adds nothing), then added, and the
//!    clock of `w1` is joined into `w2` and pushed forward along session order,
//!    reads-from, forks and forced edges, only as far as it makes clocks grow and only
//!    inside the causal past of `o`. Edges are only ever added to an acyclic relation
//!    whose clocks are exact, so the clocks stay the exact pasts of `HB_o`. Passes repeat
//!    until one adds no edge: that pass saw the final relation, so its checks are those
//!    of the fixpoint. Sessions run in parallel; once one is violated, the sessions after
//!    it (in chain order) stop, so the witness is that of the first violated session, as
//!    if all had run. When CC's scan found a pattern, the session of its read is violated
//!    and is checked alone first.

use super::explain::Explainer;
use super::graph::Graph;
use super::joint::{joint, Forced, Joint};
use super::order::Clocks;
use super::{base, unless_mismatches, Analysis};
use crate::prepare::Prepared;
use crate::verdict::{Minimality, Step, Verdict};
use rayon::prelude::*;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// No op, slot or position.
pub(crate) const NONE: u32 = u32::MAX;

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
    /// Stopped because a session checked earlier has a violation.
    Cancelled,
}

/// The successors, in the causal order, that carry a stored clock; shared by every
/// fixpoint.
pub(crate) struct Succ {
    /// Per op: the first op at or after it in its chain that has a stored clock.
    pub next_stored: Vec<u32>,
    /// Per op: the last op at or before it in its chain that has a stored clock.
    pub prev_stored: Vec<u32>,
    /// The readers of each write.
    pub readers: Graph,
    /// For each fork parent: the first op of each of its forks.
    pub forks: Graph,
}

impl Succ {
    /// The successors of the ops of `p` whose clocks `clocks` stores.
    pub fn new(p: &Prepared, clocks: &Clocks) -> Succ {
        let n = p.ops.len();
        let mut next_stored = vec![NONE; n];
        let mut prev_stored = vec![NONE; n];
        for c in &p.chains {
            let mut next = NONE;
            for &o in c.ops.iter().rev() {
                if clocks.slot_of(o).is_some() {
                    next = o;
                }
                next_stored[o as usize] = next;
            }
            let mut prev = NONE;
            for &o in &c.ops {
                if clocks.slot_of(o).is_some() {
                    prev = o;
                }
                prev_stored[o as usize] = prev;
            }
        }
        let rf: Vec<(u32, u32)> = p
            .ops
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.rf.map(|w| (w, i as u32)))
            .collect();
        let forks: Vec<(u32, u32)> = p
            .chains
            .iter()
            .filter_map(|c| Some((c.parent?, *c.ops.first()?)))
            .collect();
        Succ {
            next_stored,
            prev_stored,
            readers: Graph::new(n, &rf),
            forks: Graph::new(n, &forks),
        }
    }

    /// Calls `f` on each stored-clock successor of the stored op `y`: the next stored op
    /// of its chain, of each reader's chain from the reader on, and of each fork.
    pub fn each(&self, p: &Prepared, y: u32, mut f: impl FnMut(u32)) {
        let o = &p.ops[y as usize];
        let mut call = |op: u32| {
            let s = self.next_stored[op as usize];
            if s != NONE {
                f(s);
            }
        };
        if let Some(&next) = p.chains[o.chain as usize].ops.get(o.pos as usize + 1) {
            call(next);
        }
        for &r in self.readers.succ(y) {
            call(r);
        }
        for &first in self.forks.succ(y) {
            call(first);
        }
    }
}

fn join(a: &mut [u32], b: &[u32]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x = (*x).max(y);
    }
}

/// A session's private clocks and work lists; reused from one session to the next.
struct Scratch {
    k: usize,
    /// Per slot: the index of the session's own clock in `arena`, or `NONE` (the shared
    /// clock holds).
    over: Vec<u32>,
    /// Slots with an own clock.
    touched: Vec<u32>,
    arena: Vec<u32>,
    /// Per slot: whether the op waits in `heap`.
    queued: Vec<bool>,
    /// Ops whose clocks grew and have not been pushed forward yet, earliest first.
    heap: BinaryHeap<Reverse<u32>>,
    tmp: Vec<u32>,
    lo: Vec<u32>,
    vc: Vec<u32>,
    cands: Vec<u32>,
}

impl Scratch {
    fn new(k: usize, slots: usize) -> Scratch {
        Scratch {
            k,
            over: vec![NONE; slots],
            touched: Vec::new(),
            arena: Vec::new(),
            queued: vec![false; slots],
            heap: BinaryHeap::new(),
            tmp: Vec::with_capacity(k),
            lo: Vec::with_capacity(k),
            vc: Vec::with_capacity(k),
            cands: Vec::new(),
        }
    }

    /// Back to the shared clocks.
    fn reset(&mut self, clocks: &Clocks) {
        for &s in &self.touched {
            self.over[s as usize] = NONE;
        }
        self.touched.clear();
        self.arena.clear();
        while let Some(Reverse(o)) = self.heap.pop() {
            if let Some(s) = clocks.slot_of(o) {
                self.queued[s] = false;
            }
        }
    }

    /// The happens-before clock of a stored op.
    fn clock<'c>(&'c self, clocks: &'c Clocks, op: u32) -> Option<&'c [u32]> {
        let s = clocks.slot_of(op)?;
        match self.over[s] {
            NONE => clocks.vc(op),
            i => self
                .arena
                .get(i as usize * self.k..(i as usize + 1) * self.k),
        }
    }

    /// Joins `src` into the clock of the stored op `op`; whether it grew.
    fn join_into(&mut self, clocks: &Clocks, op: u32, src: &[u32]) -> bool {
        let Some(s) = clocks.slot_of(op) else {
            return false;
        };
        let k = self.k;
        let i = match self.over[s] {
            NONE => {
                let Some(shared) = clocks.vc(op) else {
                    return false;
                };
                if shared.iter().zip(src).all(|(x, y)| x >= y) {
                    return false;
                }
                let i = self.arena.len() / k.max(1);
                self.arena.extend_from_slice(shared);
                self.over[s] = i as u32;
                self.touched.push(s as u32);
                i
            }
            i => i as usize,
        };
        let mut grew = false;
        for (x, &y) in self.arena[i * k..(i + 1) * k].iter_mut().zip(src) {
            if y > *x {
                *x = y;
                grew = true;
            }
        }
        grew
    }
}

/// One session's happens-before relation `HB_o`, `o` the session's last op.
struct View<'v> {
    p: &'v Prepared,
    a: &'v Analysis<'v>,
    clocks: &'v Clocks,
    succ: &'v Succ,
    /// Causal-order clock of `o`: only ops in the causal past of `o` are in `HB_o`.
    top: Vec<u32>,
    /// Forced successors of each write.
    forced: HashMap<u32, Vec<u32>>,
    /// Forced edges `(w1, w2, r2)`: `w1` happens before `r2`, which read `w2`.
    edges: Vec<(u32, u32, u32)>,
    s: &'v mut Scratch,
}

impl View<'_> {
    /// Whether `a` happens before the stored op `b` (`a` ≠ `b`).
    fn hb(&self, a: u32, b: u32) -> bool {
        a != b
            && self
                .s
                .clock(self.clocks, b)
                .is_some_and(|v| Clocks::before(self.p, a, v))
    }

    fn in_past(&self, op: u32) -> bool {
        let o = &self.p.ops[op as usize];
        self.top[o.chain as usize] > o.pos
    }

    fn enqueue(&mut self, op: u32) {
        if let Some(s) = self.clocks.slot_of(op) {
            if !self.s.queued[s] {
                self.s.queued[s] = true;
                self.s.heap.push(Reverse(op));
            }
        }
    }

    /// Pushes grown clocks forward until every successor's clock holds its
    /// predecessors'.
    fn propagate(&mut self) {
        let mut tmp = std::mem::take(&mut self.s.tmp);
        let mut next: Vec<u32> = Vec::new();
        while let Some(Reverse(y)) = self.s.heap.pop() {
            if let Some(s) = self.clocks.slot_of(y) {
                self.s.queued[s] = false;
            }
            tmp.clear();
            match self.s.clock(self.clocks, y) {
                Some(c) => tmp.extend_from_slice(c),
                None => continue,
            }
            next.clear();
            self.succ.each(self.p, y, |z| next.push(z));
            if let Some(f) = self.forced.get(&y) {
                next.extend_from_slice(f);
            }
            for &z in &next {
                if self.in_past(z) && self.s.join_into(self.clocks, z, &tmp) {
                    self.enqueue(z);
                }
            }
        }
        self.s.tmp = tmp;
    }

    /// Adds the forced edge `w1 → w2` (from the read `r2`): `Err` on a cycle, else
    /// whether the edge was new.
    fn force(&mut self, w1: u32, w2: u32, r2: u32) -> Result<bool, Outcome> {
        if self.hb(w2, w1) {
            let mut edges = std::mem::take(&mut self.edges);
            edges.push((w1, w2, r2));
            return Err(Outcome::Cycle {
                cycle: vec![w1, w2],
                edges,
            });
        }
        if self.hb(w1, w2) {
            return Ok(false);
        }
        self.edges.push((w1, w2, r2));
        self.forced.entry(w1).or_default().push(w2);
        let mut tmp = std::mem::take(&mut self.s.tmp);
        tmp.clear();
        if let Some(c) = self.s.clock(self.clocks, w1) {
            tmp.extend_from_slice(c);
        }
        let grew = self.s.join_into(self.clocks, w2, &tmp);
        self.s.tmp = tmp;
        if grew {
            self.enqueue(w2);
            self.propagate();
        }
        Ok(true)
    }

    /// The checks at the read `r2` of the session, whose clock is `vc`: `Err` on a
    /// violation, else whether a new edge was forced.
    fn read(&mut self, r2: u32, vc: &[u32]) -> Result<bool, Outcome> {
        let p = self.p;
        let o = &p.ops[r2 as usize];
        let mut lo = std::mem::take(&mut self.s.lo);
        let mut cands = std::mem::take(&mut self.s.cands);
        lo.clear();
        if let Some(c) = o.rf.and_then(|w2| self.s.clock(self.clocks, w2)) {
            lo.extend_from_slice(c);
        }
        cands.clear();
        let floor = (!lo.is_empty()).then_some(lo.as_slice());
        cands.extend(self.a.writes.latest_in_past(o.key, vc, floor, r2));
        let mut out = Ok(false);
        match o.rf {
            None => {
                if let Some(&w) = cands.first() {
                    out = Err(Outcome::InitRead {
                        w,
                        r: r2,
                        edges: std::mem::take(&mut self.edges),
                    });
                }
            }
            Some(w2) => {
                for &w1 in cands.iter().filter(|&&w1| w1 != w2) {
                    match self.force(w1, w2, r2) {
                        Ok(new) => out = out.map(|any| any | new),
                        Err(e) => {
                            out = Err(e);
                            break;
                        }
                    }
                }
            }
        }
        self.s.lo = lo;
        self.s.cands = cands;
        out
    }

    /// One pass over the reads of the session past of `o`: `Err` on a violation, else
    /// whether a new edge was forced.
    fn pass(&mut self, chain: u32, stop: &dyn Fn() -> Option<Outcome>) -> Result<bool, Outcome> {
        let p = self.p;
        let c = &p.chains[chain as usize];
        let mut parts = Vec::with_capacity(2);
        if let Some(par) = c.parent {
            let po = &p.ops[par as usize];
            parts.push((po.chain, po.pos));
        }
        parts.push((chain, u32::MAX));
        let mut vc = std::mem::take(&mut self.s.vc);
        let mut added = false;
        let mut out = Ok(());
        'parts: for (ch, limit) in parts {
            let cc = &p.chains[ch as usize];
            vc.clear();
            vc.resize(self.s.k, 0);
            if let Some(par) = cc.parent {
                if let Some(pv) = self.s.clock(self.clocks, par) {
                    vc.copy_from_slice(pv);
                }
            }
            for (i, &o) in cc.ops.iter().enumerate() {
                if i as u32 > limit {
                    break;
                }
                if i % 4096 == 4095 {
                    if let Some(o) = stop() {
                        out = Err(o);
                        break 'parts;
                    }
                }
                let op = &p.ops[o as usize];
                match self.s.clock(self.clocks, o) {
                    Some(own) => vc.copy_from_slice(own),
                    None => {
                        if let Some(wv) = op.rf.and_then(|w| self.s.clock(self.clocks, w)) {
                            join(&mut vc, wv);
                        }
                        vc[ch as usize] = op.pos + 1;
                    }
                }
                if p.is_read(o) {
                    match self.read(o, &vc) {
                        Ok(new) => added |= new,
                        Err(e) => {
                            out = Err(e);
                            break 'parts;
                        }
                    }
                }
            }
        }
        self.s.vc = vc;
        out.map(|()| added)
    }
}

/// The happens-before fixpoint of the last op of `chain`.
fn session(
    a: &Analysis,
    clocks: &Clocks,
    succ: &Succ,
    chain: u32,
    stop: &dyn Fn() -> Option<Outcome>,
    s: &mut Scratch,
) -> Outcome {
    s.reset(clocks);
    let p = a.p;
    let mut top = vec![0u32; clocks.k];
    clocks.walk(p, chain, |_, vc| top.copy_from_slice(vc));
    let mut view = View {
        p,
        a,
        clocks,
        succ,
        top,
        forced: HashMap::new(),
        edges: Vec::new(),
        s,
    };
    loop {
        if let Some(o) = stop() {
            return o;
        }
        match view.pass(chain, stop) {
            Err(o) => return o,
            Ok(false) => return Outcome::Holds,
            Ok(true) => {}
        }
    }
}

/// Whether the session of `chain` needs its own fixpoint. A fork without reads of its
/// own has the reads of its parent's session up to the fork point, and its past is the
/// parent's plus itself (a sink), so its `HB_o` holds whenever the parent session's
/// (which is larger) does, and any violation shows there too.
fn needs_check(p: &Prepared, chain: u32) -> bool {
    let c = &p.chains[chain as usize];
    c.parent.is_none() || c.ops.iter().any(|&o| p.is_read(o))
}

pub(crate) use super::joint::{First, SharedConflicts};

/// Causal memory (CM). `deadline` bounds the fixpoints.
pub(crate) fn cm(a: &Analysis, model: &str, deadline: Option<Instant>) -> Verdict {
    cm_with(a, model, deadline, None)
}

/// Causal memory (CM), with the first round of the joint relation when the caller has
/// it (see [`First`]).
pub(crate) fn cm_with(
    a: &Analysis,
    model: &str,
    deadline: Option<Instant>,
    first: Option<First>,
) -> Verdict {
    let clocks = match base(a, model) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let p = a.p;
    let succ = Succ::new(p, clocks);
    let hint = first.as_ref().and_then(|f| f.hint);
    let late = || {
        let all = p
            .chains
            .iter()
            .map(|c| format!("session of process {}", c.process));
        out_of_time(model, p.chains.len(), all.collect())
    };
    // CC's scan holds for any subset of the reads: its conflict edges are kept for the
    // tries of `narrow`.
    let conflicts = first.as_ref().map(|f| f.conflicts().to_vec());
    let chains: Vec<u32> = match joint(a, clocks, &succ, first, deadline, None) {
        Joint::Holds => Vec::new(),
        Joint::OutOfTime => return late(),
        Joint::Fails { culprits } => {
            match narrow(a, clocks, &succ, &culprits, conflicts.as_deref(), deadline) {
                Some(chains) => chains,
                None => return late(),
            }
        }
    };
    if let Some(c) = hint {
        // The session of a read with a CC pattern is violated (see `First::hint`):
        // its witness alone decides, without the other sessions.
        let v = sessions(a, model, clocks, &succ, &[c], deadline);
        if matches!(v, Verdict::Invalid { .. }) {
            return v;
        }
    }
    sessions(a, model, clocks, &succ, &chains, deadline)
}

/// The sessions to check one by one after the joint relation failed (`None`: out of
/// time). The processes whose reads took part in the failure (`culprits`, chains) are
/// set aside and the joint relation is computed again over the reads of the other
/// processes only. If it holds, so does every session of theirs: a session's `HB_o`
/// uses its own reads (those of its process, forks included) and the causal order, so
/// it is contained in that relation. Then only the sessions set aside are checked. A
/// new failure sets aside its culprits too; after three tries, or once more than a
/// quarter of the processes would be set aside, every session is checked.
fn narrow(
    a: &Analysis,
    clocks: &Clocks,
    succ: &Succ,
    culprits: &[u32],
    conflicts: Option<&[Forced]>,
    deadline: Option<Instant>,
) -> Option<Vec<u32>> {
    let p = a.p;
    let process = |c: u32| p.chains[c as usize].process;
    let every: Vec<u32> = (0..p.chains.len() as u32)
        .filter(|&c| needs_check(p, c))
        .collect();
    let processes: HashSet<u64> = p.chains.iter().map(|c| c.process).collect();
    let mut aside: HashSet<u64> = culprits.iter().map(|&c| process(c)).collect();
    for _ in 0..3 {
        if aside.is_empty() || aside.len() * 4 > processes.len() {
            break;
        }
        let include: Vec<bool> = p
            .chains
            .iter()
            .map(|c| !aside.contains(&c.process))
            .collect();
        // The set-aside processes hold every read with a CC pattern (see
        // `First::from_scan`), so CC's scan restricted to the others is their first
        // round.
        let first = conflicts.map(|c| First::restricted(a, c, &include));
        match joint(a, clocks, succ, first, deadline, Some(&include)) {
            Joint::Holds => {
                return Some(
                    every
                        .into_iter()
                        .filter(|&c| !include[c as usize])
                        .collect(),
                )
            }
            Joint::OutOfTime => return None,
            Joint::Fails { culprits } => {
                let before = aside.len();
                aside.extend(culprits.iter().map(|&c| process(c)));
                if aside.len() == before {
                    break;
                }
            }
        }
    }
    Some(every)
}

fn out_of_time(model: &str, sessions: usize, undecided: Vec<String>) -> Verdict {
    Verdict::Unknown {
        reason: format!(
            "{model}: time limit reached before the happens-before fixpoint of {sessions} sessions"
        ),
        undecided,
    }
}

/// The verdict from the fixpoints of the sessions of `chains` (none: every one holds).
fn sessions(
    a: &Analysis,
    model: &str,
    clocks: &Clocks,
    succ: &Succ,
    chains: &[u32],
    deadline: Option<Instant>,
) -> Verdict {
    let p = a.p;
    // The first session (in `chains` order) found violated: later ones stop, earlier
    // ones go on, so the witness is the same as if all ran to the end.
    let first_bad = AtomicUsize::new(usize::MAX);
    let outcomes: Vec<(u32, Outcome)> = chains
        .par_iter()
        .enumerate()
        .map_init(
            || Scratch::new(clocks.k, clocks.slots()),
            |s, (i, &c)| {
                let stop = || {
                    if first_bad.load(Ordering::Relaxed) < i {
                        Some(Outcome::Cancelled)
                    } else if deadline.is_some_and(|d| Instant::now() > d) {
                        Some(Outcome::OutOfTime)
                    } else {
                        None
                    }
                };
                let o = session(a, clocks, succ, c, &stop, s);
                if matches!(o, Outcome::InitRead { .. } | Outcome::Cycle { .. }) {
                    first_bad.fetch_min(i, Ordering::Relaxed);
                }
                (c, o)
            },
        )
        .collect();
    let mut late = Vec::new();
    for (chain, o) in outcomes {
        match o {
            Outcome::Holds | Outcome::Cancelled => {}
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
        return out_of_time(model, late.len(), late);
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

#[cfg(test)]
pub(crate) mod tests {
    //! The fixpoints against the algorithm they replaced (per session, rounds that
    //! recompute the clocks of the whole history with every forced edge so far), on
    //! random histories: sequential executions with stale reads, causal replicas (CM
    //! but often not CCv, so the joint relation fails and the sessions decide) with some
    //! out-of-order deliveries, and processes that go on after `info` writes (forks).

    use super::*;
    use crate::prepare::prepare;
    use faultline_history::{pair, Event, EventType, Paired, Value};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashSet;

    /// The replaced algorithm: whether the session of `chain` holds.
    fn reference_session(a: &Analysis, base_clocks: &Clocks, chain: u32) -> bool {
        let p = a.p;
        let mut extra: Vec<(u32, u32)> = Vec::new();
        let mut have: HashSet<(u32, u32)> = HashSet::new();
        let mut owned: Option<Clocks> = None;
        loop {
            let clocks = owned.as_ref().unwrap_or(base_clocks);
            let mut bad = false;
            let mut new_edges = Vec::new();
            let mut visit = |r2: u32, vc: &[u32]| {
                let o = &p.ops[r2 as usize];
                let lo = o.rf.and_then(|w2| clocks.vc(w2));
                for w1 in a.writes.latest_in_past(o.key, vc, lo, r2) {
                    match o.rf {
                        None => bad = true,
                        Some(w2) if w2 == w1 => {}
                        Some(w2) if clocks.co(p, w2, w1) => bad = true,
                        Some(w2) => {
                            if !clocks.co(p, w1, w2) && have.insert((w1, w2)) {
                                new_edges.push((w1, w2));
                            }
                        }
                    }
                }
            };
            let c = &p.chains[chain as usize];
            if let Some(par) = c.parent {
                let po = &p.ops[par as usize];
                clocks.walk(p, po.chain, |o, vc| {
                    if p.ops[o as usize].pos <= po.pos && p.is_read(o) {
                        visit(o, vc)
                    }
                });
            }
            clocks.walk(p, chain, |o, vc| {
                if p.is_read(o) {
                    visit(o, vc)
                }
            });
            if bad {
                return false;
            }
            if new_edges.is_empty() {
                return true;
            }
            extra.extend(new_edges);
            match Clocks::compute(p, &extra) {
                Ok(c) => owned = Some(c),
                Err(_) => return false,
            }
        }
    }

    /// One operation: process, key, write (value) or read (value, `None` = initial),
    /// and whether it is `info`.
    pub(crate) type Op = (u64, usize, bool, Option<i64>, bool);

    fn paired(ops: &[Op]) -> Paired {
        let mut evs = Vec::new();
        for &(proc, key, write, v, info) in ops {
            let k = format!("k{key}");
            let val = v.map_or(Value::Null, Value::from);
            let f = if write { "write" } else { "read" };
            let i = evs.len() as u64;
            let arg = if write { val.clone() } else { Value::Null };
            evs.push(Event::client(i, proc, EventType::Invoke, f, arg).with_key(k.clone()));
            let kind = if info { EventType::Info } else { EventType::Ok };
            evs.push(Event::client(i + 1, proc, kind, f, val).with_key(k));
        }
        pair(&evs, "cm-test").expect("well-formed")
    }

    /// A sequential execution whose reads are sometimes stale; some writes are `info`
    /// (applied or not) and their process goes on.
    fn sequential(rng: &mut ChaCha8Rng, big: bool) -> Vec<Op> {
        let procs = rng.gen_range(2..=if big { 8 } else { 5u64 });
        let keys = rng.gen_range(1..=if big { 6 } else { 3usize });
        let n = rng.gen_range(6..=if big { 300 } else { 40 });
        let mut state: Vec<Vec<Option<i64>>> = vec![vec![None]; keys];
        let mut next = 1;
        let mut ops = Vec::new();
        for _ in 0..n {
            let p = rng.gen_range(0..procs);
            let k = rng.gen_range(0..keys);
            if rng.gen_bool(0.5) {
                let info = rng.gen_bool(0.1);
                if !info || rng.gen_bool(0.5) {
                    state[k].push(Some(next));
                }
                ops.push((p, k, true, Some(next), info));
                next += 1;
            } else {
                let hist = &state[k];
                let v = if rng.gen_bool(0.85) {
                    hist[hist.len() - 1]
                } else {
                    hist[rng.gen_range(hist.len().saturating_sub(4)..hist.len())]
                };
                ops.push((p, k, false, v, false));
            }
        }
        ops
    }

    /// Causal replicas: each process applies its own writes at once and the others'
    /// in causal order at random times (rarely out of order); reads are local.
    fn replicas(rng: &mut ChaCha8Rng, big: bool) -> Vec<Op> {
        let procs = rng.gen_range(2..=if big { 8 } else { 4usize });
        let keys = rng.gen_range(1..=if big { 6 } else { 3usize });
        let n = rng.gen_range(6..=if big { 300 } else { 40 });
        let mut store: Vec<Vec<Option<i64>>> = vec![vec![None; keys]; procs];
        // Delivered writes per process per origin, and the messages: (origin, seq,
        // deps, key, value).
        let mut seen: Vec<Vec<usize>> = vec![vec![0; procs]; procs];
        let mut msgs: Vec<(usize, usize, Vec<usize>, usize, i64)> = Vec::new();
        let mut next = 1;
        let mut ops = Vec::new();
        let mut steps = 0;
        while ops.len() < n && steps < 10 * n {
            steps += 1;
            let p = rng.gen_range(0..procs);
            if rng.gen_bool(0.4) {
                // Deliver one message to p.
                let ready: Vec<usize> = (0..msgs.len())
                    .filter(|&i| {
                        let (o, seq, deps, _, _) = &msgs[i];
                        *o != p
                            && seen[p][*o] == *seq
                            && (rng.gen_bool(0.03)
                                || deps
                                    .iter()
                                    .enumerate()
                                    .all(|(j, &d)| j == *o || seen[p][j] >= d))
                    })
                    .collect();
                if let Some(&i) = ready.first() {
                    let (o, _, _, k, v) = msgs[i];
                    seen[p][o] += 1;
                    store[p][k] = Some(v);
                }
                continue;
            }
            let k = rng.gen_range(0..keys);
            if rng.gen_bool(0.5) {
                store[p][k] = Some(next);
                msgs.push((p, seen[p][p], seen[p].clone(), k, next));
                seen[p][p] += 1;
                ops.push((p as u64, k, true, Some(next), false));
                next += 1;
            } else {
                ops.push((p as u64, k, false, store[p][k], false));
            }
        }
        ops
    }

    /// Calls `f(case, ops, analysis, clocks)` on `cases` random histories, sequential
    /// executions and causal replicas in turn (every tenth big), that have unique values
    /// and an acyclic causal order; returns how many it called `f` on.
    pub(crate) fn for_random_analyses(
        seed: u64,
        cases: usize,
        mut f: impl FnMut(usize, &[Op], &Analysis, &Clocks),
    ) -> usize {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut called = 0;
        for case in 0..cases {
            let big = case % 10 == 9;
            let ops = if case % 2 == 0 {
                sequential(&mut rng, big)
            } else {
                replicas(&mut rng, big)
            };
            let h = paired(&ops);
            let p = prepare(&h, &Value::Null, false);
            if p.structural.is_some() || p.not_unique.is_some() {
                continue;
            }
            let a = Analysis::new(&p, &h);
            let Ok(clocks) = &a.clocks else { continue };
            f(case, &ops, &a, clocks);
            called += 1;
        }
        called
    }

    #[test]
    fn the_fixpoints_agree_with_the_recomputing_algorithm() {
        let (mut valid, mut invalid, mut joint_failed_valid, mut narrowed) = (0, 0, 0, 0);
        for_random_analyses(0xc4, 6000, |case, ops, a, clocks| {
            let p = a.p;
            let expected = (0..p.chains.len() as u32).all(|c| reference_session(a, clocks, c));
            let succ = Succ::new(p, clocks);
            let all: Vec<u32> = (0..p.chains.len() as u32).collect();
            let exact = sessions(a, "cm", clocks, &succ, &all, None);
            assert_eq!(exact.label() == "valid", expected, "case {case}: {ops:?}");
            let j = joint(a, clocks, &succ, None, None, None);
            if j == Joint::Holds {
                assert!(expected, "case {case}: joint holds on {ops:?}");
            } else if expected {
                joint_failed_valid += 1;
            }
            if let Joint::Fails { culprits } = &j {
                // The sessions left after setting the culprits aside: every session
                // outside them holds (checked with the old algorithm).
                let left = narrow(a, clocks, &succ, culprits, None, None).unwrap_or_default();
                for c in 0..p.chains.len() as u32 {
                    if needs_check(p, c) && !left.contains(&c) {
                        assert!(
                            reference_session(a, clocks, c),
                            "case {case}: session {c} set free but violated: {ops:?}"
                        );
                    }
                }
                let checked = (0..p.chains.len() as u32)
                    .filter(|&c| needs_check(p, c))
                    .count();
                narrowed += usize::from(left.len() < checked);
            }
            let v = cm(a, "cm", None);
            assert_eq!(v.label() == "valid", expected, "case {case}: {ops:?}");
            assert_ne!(v.label(), "unknown", "case {case}");
            // As the lattice and the sequential checker call it: from CC's scan, with
            // CCv's conflict order shared (when CC holds) or not.
            let s = crate::causal::patterns::scan(a, clocks, true);
            let mut shared = s.cc_holds().then(|| SharedConflicts::new(a, &s));
            for share in [false, true] {
                let first = First::from_scan(a, &s, shared.as_mut().filter(|_| share));
                let v = cm_with(a, "cm", None, Some(first));
                assert_eq!(v.label() == "valid", expected, "case {case}: {ops:?}");
            }
            if expected {
                valid += 1;
            } else {
                invalid += 1;
            }
        });
        assert!(
            valid > 300 && invalid > 300,
            "{valid} valid, {invalid} invalid"
        );
        assert!(
            joint_failed_valid > 30,
            "{joint_failed_valid} decided by the sessions"
        );
        assert!(narrowed > 100, "{narrowed} narrowed to fewer sessions");
    }
}
