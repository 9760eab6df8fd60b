//! Causal order by vector clocks over sessions.
//!
//! `CO = (PO ∪ RF)+` (optionally with extra edges, for the happens-before relations of
//! causal memory). A vector clock has one entry per chain (session): entry `c` of the
//! clock of `o` is the number of operations of chain `c` in the causal past of `o`,
//! `o` included. So `a` precedes `b` in causal order iff `a ≠ b` and
//! `vc(b)[chain(a)] > pos(a)`. Clocks are stored only for writes and fork parents; the
//! clock of any other operation is recomputed by walking its chain.

use super::graph::Graph;
use crate::prepare::Prepared;

/// Vector clocks of the writes (and fork parents) of a prepared history.
#[derive(Debug, Clone)]
pub(crate) struct Clocks {
    /// Number of chains (the clock width).
    pub k: usize,
    slot: Vec<u32>,
    /// Number of stored clocks.
    n_slots: usize,
    vcs: Vec<u32>,
    /// Extra predecessors of each op (targets of extra edges), CSR.
    extra: Graph,
}

const NONE: u32 = u32::MAX;

/// Session-order and reads-from edges (predecessor → op).
pub(crate) fn base_edges(p: &Prepared) -> Vec<(u32, u32)> {
    let mut edges = Vec::with_capacity(p.ops.len() * 2);
    for (i, o) in p.ops.iter().enumerate() {
        if let Some(a) = p.po_pred(i as u32) {
            edges.push((a, i as u32));
        }
        if let Some(w) = o.rf {
            edges.push((w, i as u32));
        }
    }
    edges
}

impl Clocks {
    /// Computes clocks of `CO = (PO ∪ RF ∪ extra)+`. On a cycle, returns the nodes of a
    /// short cycle instead.
    pub fn compute(p: &Prepared, extra: &[(u32, u32)]) -> Result<Clocks, Vec<u32>> {
        let n = p.ops.len();
        let mut edges = base_edges(p);
        edges.extend_from_slice(extra);
        let g = Graph::new(n, &edges);
        let order = match g.topo() {
            Ok(o) => o,
            Err(stuck) => return Err(g.shortest_cycle(&stuck)),
        };
        drop(g);
        let k = p.chains.len();
        let mut slot = vec![NONE; n];
        let mut n_slots = 0u32;
        for (i, o) in p.ops.iter().enumerate() {
            if o.write.is_some() {
                slot[i] = n_slots;
                n_slots += 1;
            }
        }
        for c in &p.chains {
            if let Some(par) = c.parent {
                if slot[par as usize] == NONE {
                    slot[par as usize] = n_slots;
                    n_slots += 1;
                }
            }
        }
        let rev: Vec<(u32, u32)> = extra.iter().map(|&(a, b)| (b, a)).collect();
        let mut clocks = Clocks {
            k,
            slot,
            n_slots: n_slots as usize,
            vcs: vec![0u32; n_slots as usize * k],
            extra: Graph::new(n, &rev),
        };
        // Running clock of each chain, allocated when the chain starts and freed at its end.
        let mut cur: Vec<Vec<u32>> = vec![Vec::new(); k];
        for &o in &order {
            let op = &p.ops[o as usize];
            let c = op.chain as usize;
            let mut vc = std::mem::take(&mut cur[c]);
            if op.pos == 0 {
                vc = vec![0u32; k];
                clocks.start(p, op.chain, &mut vc);
            }
            clocks.step(p, o, &mut vc);
            if let Some(s) = clocks.slot_of(o) {
                clocks.vcs[s * k..(s + 1) * k].copy_from_slice(&vc);
            }
            if (op.pos as usize) + 1 < p.chains[c].ops.len() {
                cur[c] = vc;
            }
        }
        Ok(clocks)
    }

    /// The index of the stored clock of `op` (a write or fork parent), if it has one.
    pub fn slot_of(&self, op: u32) -> Option<usize> {
        match self.slot[op as usize] {
            NONE => None,
            s => Some(s as usize),
        }
    }

    /// Number of stored clocks (slots are `0..slots()`).
    pub fn slots(&self) -> usize {
        self.n_slots
    }

    /// The stored clock of a write or fork parent.
    pub fn vc(&self, op: u32) -> Option<&[u32]> {
        self.slot_of(op)
            .map(|s| &self.vcs[s * self.k..(s + 1) * self.k])
    }

    /// The stored clock of a write or fork parent, to change it (the relation it
    /// describes is then the caller's to keep transitive).
    pub fn vc_mut(&mut self, op: u32) -> Option<&mut [u32]> {
        let k = self.k;
        self.slot_of(op).map(|s| &mut self.vcs[s * k..(s + 1) * k])
    }

    /// Walks chain `chain` like [`Clocks::walk`], but takes the stored clock of each op
    /// that has one instead of recomputing it from its predecessors, so that changes
    /// made through [`Clocks::vc_mut`] count.
    pub fn walk_stored(&self, p: &Prepared, chain: u32, mut f: impl FnMut(u32, &[u32])) {
        let mut vc = vec![0u32; self.k];
        self.start(p, chain, &mut vc);
        for &o in &p.chains[chain as usize].ops {
            self.step_stored(p, o, &mut vc);
            f(o, &vc);
        }
    }

    /// Advances a running clock `vc` to `o`: the stored clock of `o` if it has one,
    /// else `vc` joined with the clocks of the op's predecessors.
    pub fn step_stored(&self, p: &Prepared, o: u32, vc: &mut [u32]) {
        match self.vc(o) {
            Some(own) => vc.copy_from_slice(own),
            None => self.step(p, o, vc),
        }
    }

    /// Initial clock of a chain: its fork parent's clock, or zero.
    pub fn start(&self, p: &Prepared, chain: u32, vc: &mut [u32]) {
        vc.iter_mut().for_each(|x| *x = 0);
        if let Some(par) = p.chains[chain as usize].parent {
            if let Some(pv) = self.vc(par) {
                vc.copy_from_slice(pv);
            }
        }
    }

    /// Advances a running clock `vc` (of the op's session predecessor) to `o`.
    fn step(&self, p: &Prepared, o: u32, vc: &mut [u32]) {
        let op = &p.ops[o as usize];
        if let Some(w) = op.rf {
            if let Some(wv) = self.vc(w) {
                join(vc, wv);
            }
        }
        for &a in self.extra.succ(o) {
            if let Some(av) = self.vc(a) {
                join(vc, av);
            }
        }
        vc[op.chain as usize] = op.pos + 1;
    }

    /// Walks chain `chain` in session order, calling `f(op, clock of op)`.
    pub fn walk(&self, p: &Prepared, chain: u32, mut f: impl FnMut(u32, &[u32])) {
        let mut vc = vec![0u32; self.k];
        self.start(p, chain, &mut vc);
        for &o in &p.chains[chain as usize].ops {
            self.step(p, o, &mut vc);
            f(o, &vc);
        }
    }

    /// Whether `a` precedes the op whose clock is `vc_b` (`a` ≠ that op).
    pub fn before(p: &Prepared, a: u32, vc_b: &[u32]) -> bool {
        let o = &p.ops[a as usize];
        vc_b[o.chain as usize] > o.pos
    }

    /// Whether write (or fork parent) `b`'s past holds `a`; false for `a == b`.
    pub fn co(&self, p: &Prepared, a: u32, b: u32) -> bool {
        a != b && self.vc(b).is_some_and(|v| Clocks::before(p, a, v))
    }
}

fn join(a: &mut [u32], b: &[u32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x = (*x).max(*y);
    }
}

/// The writes of each key, grouped by chain, in session order.
#[derive(Debug, Clone)]
pub(crate) struct WriteIndex {
    /// Per key: (chain, start, end) ranges into `writes`.
    by_key: Vec<Vec<(u32, u32, u32)>>,
    /// (pos, op), sorted by key, chain, pos.
    writes: Vec<(u32, u32)>,
}

impl WriteIndex {
    /// Indexes the writes of `p`.
    pub fn new(p: &Prepared) -> WriteIndex {
        let mut all: Vec<(u32, u32, u32, u32)> = p
            .ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.write.is_some())
            .map(|(i, o)| (o.key, o.chain, o.pos, i as u32))
            .collect();
        all.sort_unstable();
        let n_keys = p.keys.len();
        let mut by_key: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); n_keys];
        let mut writes = Vec::with_capacity(all.len());
        for (i, &(key, chain, pos, op)) in all.iter().enumerate() {
            let list = &mut by_key[key as usize];
            match list.last_mut() {
                Some(last) if last.0 == chain => last.2 = i as u32 + 1,
                _ => list.push((chain, i as u32, i as u32 + 1)),
            }
            writes.push((pos, op));
        }
        WriteIndex { by_key, writes }
    }

    /// For key `key`, the last write of each chain among the ops counted by `vc`
    /// (positions below `vc[chain]`), skipping `exclude` (the reading op itself). With
    /// `lo`, only writes at positions `lo[chain]` or above are returned (the rest are in
    /// the causal past whose clock `lo` is, so they cannot follow it).
    pub fn latest_in_past<'a>(
        &'a self,
        key: u32,
        vc: &'a [u32],
        lo: Option<&'a [u32]>,
        exclude: u32,
    ) -> impl Iterator<Item = u32> + 'a {
        self.by_key
            .get(key as usize)
            .into_iter()
            .flatten()
            .filter_map(move |&(chain, s, e)| {
                let limit = vc[chain as usize];
                let floor = lo.map_or(0, |l| l[chain as usize]);
                if limit <= floor {
                    return None;
                }
                let slice = &self.writes[s as usize..e as usize];
                let mut n = slice.partition_point(|&(pos, _)| pos < limit);
                while n > 0 && slice[n - 1].0 >= floor {
                    let op = slice[n - 1].1;
                    if op != exclude {
                        return Some(op);
                    }
                    n -= 1;
                }
                None
            })
    }

    /// Like [`WriteIndex::latest_in_past`] for one chain: the last write of `key` by
    /// `chain` at a position in `[floor, limit)`, skipping `exclude`.
    pub fn latest_in_chain(
        &self,
        key: u32,
        chain: u32,
        limit: u32,
        floor: u32,
        exclude: u32,
    ) -> Option<u32> {
        let list = self.by_key.get(key as usize)?;
        let i = list.binary_search_by_key(&chain, |&(c, _, _)| c).ok()?;
        let (_, s, e) = list[i];
        let slice = &self.writes[s as usize..e as usize];
        let mut n = slice.partition_point(|&(pos, _)| pos < limit);
        while n > 0 && slice[n - 1].0 >= floor {
            if slice[n - 1].1 != exclude {
                return Some(slice[n - 1].1);
            }
            n -= 1;
        }
        None
    }
}
