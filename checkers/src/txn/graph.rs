//! The dependency graph of transactions: edges with their kind and reason, in compressed
//! rows; strongly connected components (Tarjan, iterative); process and real-time edges.

use super::parse::{Status, TxnHistory, NONE};

/// Write-write: the source installed the version right before the target's.
pub(crate) const WW: u8 = 1;
/// Write-read: the target read the source's version.
pub(crate) const WR: u8 = 2;
/// Read-write (anti-dependency): the source read a version the target overwrote.
pub(crate) const RW: u8 = 4;
/// Process order: the same process ran the source, then the target.
pub(crate) const PROC: u8 = 8;
/// Real time: the source completed before the target was invoked.
pub(crate) const RT: u8 = 16;
/// The dependency edges.
pub(crate) const DATA: u8 = WW | WR | RW;

/// One edge with what it was inferred from: the key and the two values involved
/// (their meaning depends on the kind and the workload; [`NONE`] when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    pub from: u32,
    pub to: u32,
    pub kind: u8,
    pub key: u32,
    pub a: u32,
    pub b: u32,
}

impl Edge {
    pub(crate) fn data(from: u32, to: u32, kind: u8, key: u32, a: u32, b: u32) -> Edge {
        Edge {
            from,
            to,
            kind,
            key,
            a,
            b,
        }
    }
}

/// One entry of a node's out-edges.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub to: u32,
    pub kind: u8,
    pub edge: u32,
}

/// Transactions as nodes (their index in the history), edges in compressed rows.
pub(crate) struct Graph {
    pub n: usize,
    pub edges: Vec<Edge>,
    offsets: Vec<u32>,
    outs: Vec<Out>,
}

impl Graph {
    /// Builds the graph over `n` nodes; exact duplicate edges are dropped.
    pub(crate) fn new(n: usize, mut edges: Vec<Edge>) -> Graph {
        edges.retain(|e| e.from != e.to);
        edges.sort_unstable_by_key(|e| (e.from, e.to, e.kind));
        edges.dedup_by_key(|e| (e.from, e.to, e.kind));
        let mut offsets = vec![0u32; n + 1];
        for e in &edges {
            offsets[e.from as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let outs = edges
            .iter()
            .enumerate()
            .map(|(i, e)| Out {
                to: e.to,
                kind: e.kind,
                edge: i as u32,
            })
            .collect();
        Graph {
            n,
            edges,
            offsets,
            outs,
        }
    }

    /// The out-edges of `v`.
    #[inline]
    pub(crate) fn out(&self, v: u32) -> &[Out] {
        let (s, e) = (
            self.offsets[v as usize] as usize,
            self.offsets[v as usize + 1] as usize,
        );
        &self.outs[s..e]
    }

    /// Strongly connected components over the edges whose kind is in `mask`: the
    /// component of every node and the components of two or more nodes.
    pub(crate) fn sccs(&self, mask: u8) -> (Vec<u32>, Vec<Vec<u32>>) {
        let n = self.n;
        let mut index = vec![NONE; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut comp = vec![NONE; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut big: Vec<Vec<u32>> = Vec::new();
        let mut next_index = 0u32;
        let mut next_comp = 0u32;
        // (node, position in its out-edges)
        let mut call: Vec<(u32, usize)> = Vec::new();
        for root in 0..n as u32 {
            if index[root as usize] != NONE {
                continue;
            }
            call.push((root, 0));
            index[root as usize] = next_index;
            low[root as usize] = next_index;
            next_index += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            while let Some(&mut (v, ref mut pos)) = call.last_mut() {
                let outs = self.out(v);
                let mut descended = false;
                while *pos < outs.len() {
                    let o = outs[*pos];
                    *pos += 1;
                    if o.kind & mask == 0 {
                        continue;
                    }
                    let w = o.to as usize;
                    if index[w] == NONE {
                        index[w] = next_index;
                        low[w] = next_index;
                        next_index += 1;
                        stack.push(o.to);
                        on_stack[w] = true;
                        call.push((o.to, 0));
                        descended = true;
                        break;
                    } else if on_stack[w] {
                        low[v as usize] = low[v as usize].min(index[w]);
                    }
                }
                if descended {
                    continue;
                }
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent as usize] = low[parent as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let mut members = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        comp[w as usize] = next_comp;
                        members.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if members.len() > 1 {
                        big.push(members);
                    }
                    next_comp += 1;
                }
            }
        }
        (comp, big)
    }
}

/// Process-order edges: from each committed (`ok`) transaction to the process's next
/// transaction that is not aborted. Aborted transactions are not in the graph, and an
/// `info` one may take effect after its process moved on, so neither starts an edge (the
/// order stays transitive through the `ok` ones).
pub(crate) fn process_edges(h: &TxnHistory, out: &mut Vec<Edge>) {
    let mut last: rustc_hash::FxHashMap<u64, u32> = rustc_hash::FxHashMap::default();
    for (i, t) in h.txns.iter().enumerate() {
        if t.status == Status::Fail {
            continue;
        }
        if let Some(&prev) = last.get(&t.process) {
            out.push(Edge::data(prev, i as u32, PROC, NONE, NONE, NONE));
        }
        if t.status == Status::Ok {
            last.insert(t.process, i as u32);
        }
    }
}

/// Real-time edges, transitively reduced: `a → b` when `a` completed (ok) before `b`
/// was invoked and no transaction completed in between that `a` precedes too. An `info`
/// transaction never completes: it precedes nothing. Aborted ones are left out.
pub(crate) fn realtime_edges(h: &TxnHistory, out: &mut Vec<Edge>) {
    // Events in index order: (index, txn, is_completion).
    let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(h.txns.len() * 2);
    for (i, t) in h.txns.iter().enumerate() {
        if t.status == Status::Fail {
            continue;
        }
        events.push((t.invoke, i as u32, false));
        if let Some(c) = t.complete {
            events.push((c, i as u32, true));
        }
    }
    events.sort_unstable();
    // The frontier: completed transactions not known to precede a later completed one.
    let mut frontier: Vec<u32> = Vec::new();
    // What the frontier was when each transaction in flight was invoked.
    let mut seen_at_invoke: rustc_hash::FxHashMap<u32, Vec<u32>> = Default::default();
    for (_, t, done) in events {
        if done {
            if let Some(before) = seen_at_invoke.remove(&t) {
                frontier.retain(|f| !before.contains(f));
            }
            frontier.push(t);
        } else {
            for &f in &frontier {
                out.push(Edge::data(f, t, RT, NONE, NONE, NONE));
            }
            if h.txns[t as usize].complete.is_some() {
                seen_at_invoke.insert(t, frontier.clone());
            }
        }
    }
}
