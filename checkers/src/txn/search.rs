//! Cycle search inside strongly connected components, one search per anomaly class.
//!
//! Every search starts from one edge `a → b` of a given kind and looks, breadth first,
//! for the shortest way back from `b` to `a` through allowed edges, in a product of the
//! graph with a small state: whether the last edge was an anti-dependency (to keep
//! anti-dependencies apart, for G-nonadjacent) and whether the cycle has used a process
//! or real-time edge yet (for the `-process` and `-realtime` variants). The closed walk
//! found is split into simple cycles, each classified by its edges
//! ([`classify`]). A search tries every candidate start edge of a component until one
//! succeeds, then a bounded number more to find a shorter one; so "not found" is exact
//! unless the work budget ran out, which [`Cycles::complete`] reports.
//!
//! Splitting keeps what the search looked for: a closed walk whose anti-dependencies
//! are never adjacent splits into two closed walks at a repeated node, and if both had
//! adjacent anti-dependencies, the two edges at the junction would be adjacent in the
//! walk too; so one part keeps them apart, and induction gives a simple cycle.

use super::graph::{Graph, DATA, PROC, RT, RW, WR, WW};
use super::models::Anomaly;
use super::parse::NONE;
use std::time::Instant;

/// A simple cycle: edge indices into `Graph::edges`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cycle {
    pub class: Anomaly,
    pub edges: Vec<u32>,
}

/// What the searches found.
pub(crate) struct Cycles {
    /// The shortest cycle found of each class.
    pub found: Vec<Cycle>,
    /// How many components showed each class.
    pub components: Vec<(Anomaly, usize)>,
    /// Whether every search ran to its end (no budget or deadline cut one short).
    pub complete: bool,
}

/// Which variants to search: dependency edges alone, with process order, with real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Variants {
    pub process: bool,
    pub realtime: bool,
}

#[derive(Clone, Copy)]
enum RwRule {
    /// No anti-dependency after the start edge.
    Forbidden,
    /// Anti-dependencies never adjacent (cyclically).
    Apart,
    /// Anything.
    Any,
}

#[derive(Clone, Copy)]
struct Spec {
    start: u8,
    path: u8,
    rw: RwRule,
    /// The cycle must use an edge of this kind (0: no requirement).
    mark: u8,
}

const PREV_RW: u8 = 1;
const MARKED: u8 = 2;
const STATES: usize = 4;

/// Classifies a simple cycle by its edges' kinds.
pub(crate) fn classify(kinds: &[u8]) -> Anomaly {
    use Anomaly::*;
    let rt = kinds.iter().any(|k| k & RT != 0);
    let proc = kinds.iter().any(|k| k & PROC != 0);
    let rws = kinds.iter().filter(|k| **k & RW != 0).count();
    let wrs = kinds.iter().filter(|k| **k & WR != 0).count();
    let n = kinds.len();
    let adjacent = (0..n).any(|i| kinds[i] & RW != 0 && kinds[(i + 1) % n] & RW != 0);
    let pick = |plain, p, r| {
        if rt {
            r
        } else if proc {
            p
        } else {
            plain
        }
    };
    match (rws, wrs) {
        (0, 0) => pick(G0, G0Process, G0Realtime),
        (0, _) => pick(G1c, G1cProcess, G1cRealtime),
        (1, _) => pick(GSingle, GSingleProcess, GSingleRealtime),
        _ if !adjacent => pick(GNonadjacent, GNonadjacentProcess, GNonadjacentRealtime),
        _ => pick(G2Item, G2ItemProcess, G2ItemRealtime),
    }
}

struct Bfs {
    stamp: Vec<u32>,
    parent: Vec<(u32, u32)>,
    generation: u32,
    queue: Vec<(u32, u8)>,
    work: u64,
}

impl Bfs {
    fn new(n: usize) -> Bfs {
        Bfs {
            stamp: vec![0; n * STATES],
            parent: vec![(NONE, NONE); n * STATES],
            generation: 0,
            queue: Vec::new(),
            work: 0,
        }
    }

    /// The shortest closed walk starting with edge `start` (a → b) under `spec`, at most
    /// `limit` edges long, staying inside component `comp`.
    fn run(
        &mut self,
        g: &Graph,
        comp: &[u32],
        start: u32,
        spec: Spec,
        limit: usize,
    ) -> Option<Vec<u32>> {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        let gen = self.generation;
        let e = g.edges[start as usize];
        let (a, b) = (e.from, e.to);
        let c = comp[a as usize];
        let mut s0 = 0u8;
        if e.kind & RW != 0 {
            s0 |= PREV_RW;
        }
        if e.kind & spec.mark != 0 {
            s0 |= MARKED;
        }
        let closes = |state: u8| {
            (spec.mark == 0 || state & MARKED != 0)
                && !(matches!(spec.rw, RwRule::Apart) && state & PREV_RW != 0 && e.kind & RW != 0)
        };
        self.queue.clear();
        let slot = |v: u32, s: u8| v as usize * STATES + s as usize;
        self.stamp[slot(b, s0)] = gen;
        self.parent[slot(b, s0)] = (NONE, start);
        self.queue.push((b, s0));
        let mut head = 0;
        let mut depth_end = 1;
        let mut depth = 1usize;
        let mut found = None;
        if b == a && closes(s0) {
            found = Some((b, s0));
        }
        while found.is_none() && head < self.queue.len() {
            if head == depth_end {
                depth += 1;
                depth_end = self.queue.len();
                if depth + 1 >= limit {
                    return None;
                }
            }
            let (v, s) = self.queue[head];
            head += 1;
            for o in g.out(v) {
                self.work += 1;
                if o.kind & spec.path == 0 || comp[o.to as usize] != c {
                    continue;
                }
                let is_rw = o.kind & RW != 0;
                if is_rw {
                    match spec.rw {
                        RwRule::Forbidden => continue,
                        RwRule::Apart if s & PREV_RW != 0 => continue,
                        _ => {}
                    }
                }
                let mut ns = s & MARKED;
                if is_rw {
                    ns |= PREV_RW;
                }
                if o.kind & spec.mark != 0 {
                    ns |= MARKED;
                }
                let sl = slot(o.to, ns);
                if self.stamp[sl] == gen {
                    continue;
                }
                self.stamp[sl] = gen;
                self.parent[sl] = (slot(v, s) as u32, o.edge);
                if o.to == a && closes(ns) {
                    found = Some((o.to, ns));
                    break;
                }
                self.queue.push((o.to, ns));
            }
        }
        let (v, s) = found?;
        let mut path = Vec::new();
        let mut at = slot(v, s) as u32;
        loop {
            let (prev, edge) = self.parent[at as usize];
            path.push(edge);
            if prev == NONE {
                break;
            }
            at = prev;
        }
        path.reverse();
        Some(path)
    }
}

/// Whether a path `from ⇝ to` exists through edges of `mask` with no two
/// anti-dependencies in a row; returns one (edge indices) if so.
pub(crate) fn apart_path(g: &Graph, from: u32, to: u32, mask: u8) -> Option<Vec<u32>> {
    let slot = |v: u32, s: u8| v as usize * 2 + s as usize;
    let mut parent: rustc_hash::FxHashMap<usize, (usize, u32)> = Default::default();
    let mut queue = std::collections::VecDeque::new();
    parent.insert(slot(from, 0), (usize::MAX, NONE));
    queue.push_back((from, 0u8));
    while let Some((v, s)) = queue.pop_front() {
        for o in g.out(v) {
            if o.kind & mask == 0 {
                continue;
            }
            let rw = o.kind & RW != 0;
            if rw && s == 1 {
                continue;
            }
            let ns = u8::from(rw);
            let sl = slot(o.to, ns);
            if parent.contains_key(&sl) {
                continue;
            }
            parent.insert(sl, (slot(v, s), o.edge));
            if o.to == to {
                let mut path = Vec::new();
                let mut at = sl;
                while let Some(&(prev, e)) = parent.get(&at) {
                    if prev == usize::MAX {
                        break;
                    }
                    path.push(e);
                    at = prev;
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back((o.to, ns));
        }
    }
    None
}

/// Splits a closed walk (edge indices, each edge's `to` the next one's `from`) into
/// simple cycles.
pub(crate) fn simple_cycles(g: &Graph, walk: &[u32]) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let mut todo = vec![walk.to_vec()];
    while let Some(w) = todo.pop() {
        let nodes: Vec<u32> = w.iter().map(|&e| g.edges[e as usize].from).collect();
        let mut seen: rustc_hash::FxHashMap<u32, usize> = Default::default();
        let mut split = None;
        for (j, &v) in nodes.iter().enumerate() {
            if let Some(&i) = seen.get(&v) {
                split = Some((i, j));
                break;
            }
            seen.insert(v, j);
        }
        match split {
            None => out.push(w),
            Some((i, j)) => {
                let inner = w[i..j].to_vec();
                let mut outer = w[..i].to_vec();
                outer.extend_from_slice(&w[j..]);
                todo.push(inner);
                if !outer.is_empty() {
                    todo.push(outer);
                }
            }
        }
    }
    out
}

/// Searches every component for cycles of every class the variants call for.
pub(crate) fn search(
    g: &Graph,
    variants: Variants,
    budget: u64,
    deadline: Option<Instant>,
) -> Cycles {
    let mut mask = DATA;
    let mut marks: Vec<(u8, u8)> = vec![(0, 0)];
    if variants.process {
        mask |= PROC;
        marks.push((PROC, PROC));
    }
    if variants.realtime {
        mask |= PROC | RT;
        marks.push((PROC | RT, RT));
    }
    let (comp, big) = g.sccs(mask);
    let mut cycles = Cycles {
        found: Vec::new(),
        components: Vec::new(),
        complete: true,
    };
    if big.is_empty() {
        return cycles;
    }
    let mut bfs = Bfs::new(g.n);
    let mut specs = Vec::new();
    for &(extra, mark) in &marks {
        let first = |plain: u8| if mark == 0 { plain } else { mark };
        specs.push(Spec {
            start: first(WW),
            path: WW | extra,
            rw: RwRule::Forbidden,
            mark,
        });
        specs.push(Spec {
            start: first(WR),
            path: WW | WR | extra,
            rw: RwRule::Forbidden,
            mark,
        });
        for rw in [RwRule::Forbidden, RwRule::Apart, RwRule::Any] {
            specs.push(Spec {
                start: RW,
                path: DATA | extra,
                rw,
                mark,
            });
        }
    }
    for members in &big {
        let mut in_comp: Vec<Anomaly> = Vec::new();
        for spec in &specs {
            let mut best: Option<Vec<u32>> = None;
            let mut extra_tries = 0;
            'starts: for &v in members {
                for o in g.out(v) {
                    if o.kind & spec.start == 0 || comp[o.to as usize] != comp[v as usize] {
                        continue;
                    }
                    if bfs.work > budget || deadline.is_some_and(|d| Instant::now() > d) {
                        cycles.complete = false;
                        break 'starts;
                    }
                    let limit = best.as_ref().map_or(usize::MAX, Vec::len);
                    if let Some(w) = bfs.run(g, &comp, o.edge, *spec, limit) {
                        best = Some(w);
                    }
                    if best.is_some() {
                        extra_tries += 1;
                        if extra_tries > 64 || best.as_ref().is_some_and(|b| b.len() <= 2) {
                            break 'starts;
                        }
                    }
                }
            }
            let Some(walk) = best else { continue };
            for cyc in simple_cycles(g, &walk) {
                let kinds: Vec<u8> = cyc.iter().map(|&e| g.edges[e as usize].kind).collect();
                let class = classify(&kinds);
                if !in_comp.contains(&class) {
                    in_comp.push(class);
                }
                match cycles.found.iter_mut().find(|c| c.class == class) {
                    Some(c) if c.edges.len() <= cyc.len() => {}
                    Some(c) => c.edges = cyc,
                    None => cycles.found.push(Cycle { class, edges: cyc }),
                }
            }
        }
        for class in in_comp {
            match cycles.components.iter_mut().find(|(c, _)| *c == class) {
                Some((_, n)) => *n += 1,
                None => cycles.components.push((class, 1)),
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::graph::Edge;

    fn g(edges: &[(u32, u32, u8)]) -> Graph {
        let n = edges.iter().map(|e| e.0.max(e.1)).max().unwrap_or(0) as usize + 1;
        Graph::new(
            n,
            edges
                .iter()
                .map(|&(a, b, k)| Edge::data(a, b, k, 0, 0, 0))
                .collect(),
        )
    }

    fn classes(edges: &[(u32, u32, u8)], v: Variants) -> Vec<Anomaly> {
        let mut c: Vec<Anomaly> = search(&g(edges), v, u64::MAX, None)
            .found
            .into_iter()
            .map(|c| c.class)
            .collect();
        c.sort();
        c
    }

    const PLAIN: Variants = Variants {
        process: false,
        realtime: false,
    };

    #[test]
    fn classes_of_small_cycles() {
        use Anomaly::*;
        assert_eq!(classes(&[(0, 1, WW), (1, 0, WW)], PLAIN), vec![G0]);
        assert_eq!(classes(&[(0, 1, WW), (1, 0, WR)], PLAIN), vec![G1c]);
        assert_eq!(classes(&[(0, 1, RW), (1, 0, WR)], PLAIN), vec![GSingle]);
        assert_eq!(classes(&[(0, 1, RW), (1, 0, RW)], PLAIN), vec![G2Item]);
        assert_eq!(
            classes(&[(0, 1, RW), (1, 2, WR), (2, 3, RW), (3, 0, WW)], PLAIN),
            vec![GNonadjacent]
        );
        assert!(classes(&[(0, 1, RW), (1, 0, PROC)], PLAIN).is_empty());
        assert_eq!(
            classes(
                &[(0, 1, RW), (1, 0, PROC)],
                Variants {
                    process: true,
                    realtime: false
                }
            ),
            vec![GSingleProcess]
        );
        assert_eq!(
            classes(
                &[(0, 1, WR), (1, 0, RT)],
                Variants {
                    process: true,
                    realtime: true
                }
            ),
            vec![G1cRealtime]
        );
    }

    #[test]
    fn walks_split_into_simple_cycles() {
        // 0 -rw-> 1 -ww-> 0 -wr-> 2 -ww-> 0: one walk, two cycles.
        let graph = g(&[(0, 1, RW), (1, 0, WW), (0, 2, WR), (2, 0, WW)]);
        let idx = |a: u32, b: u32| {
            graph
                .edges
                .iter()
                .position(|e| e.from == a && e.to == b)
                .unwrap() as u32
        };
        let walk = vec![idx(0, 1), idx(1, 0), idx(0, 2), idx(2, 0)];
        let mut parts = simple_cycles(&graph, &walk);
        parts.sort();
        assert_eq!(parts.len(), 2);
    }
}
