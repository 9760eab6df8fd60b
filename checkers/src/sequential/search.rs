//! Exact search for a sequential order: depth-first over session frontiers, memoised.
//!
//! A state is the position reached in every session plus the current value of every key;
//! it determines which completions remain, so each state is explored at most once
//! (states are remembered by a 128-bit Zobrist hash). A pure read that is legal now is
//! scheduled at once (it changes no value, so scheduling it earlier never hurts), so the
//! search branches only on writes and on optional operations (an `info` op of a history
//! whose values are not unique: applied or left out). When values are unique, a write of
//! `x` is only tried once no unplaced operation still has to observe the current value
//! of `x`: that value never comes back, so such an operation could never be placed.

use crate::prepare::{Observe, Prepared, INIT};
use faultline_history::{Outcome, Paired};
use std::collections::HashSet;
use std::time::Instant;

/// How the search ended.
pub(crate) enum Search {
    /// A sequential order exists.
    Found,
    /// None exists; the deepest state reached (session positions and key values).
    Impossible(Deepest),
    /// The time or state budget ran out.
    OutOfBudget { states: usize, why: &'static str },
}

/// The state where the most operations had been placed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deepest {
    pub placed: usize,
    pub front: Vec<u32>,
    pub values: Vec<u32>,
    pub states: usize,
}

#[derive(Clone, Copy)]
enum Undo {
    Front(u32),
    Value(u32, u32),
}

#[derive(Clone, Copy)]
struct Move {
    chain: u32,
    skip: bool,
}

struct Frame {
    moves: Vec<Move>,
    next: usize,
    mark: usize,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn zob(kind: u64, a: u32, b: u32) -> u128 {
    let x = (kind << 62) ^ ((a as u64) << 31) ^ b as u64;
    ((mix(x) as u128) << 64) | mix(x ^ 0x5555_5555_5555_5555) as u128
}

struct State<'a> {
    p: &'a Prepared,
    front: Vec<u32>,
    values: Vec<u32>,
    log: Vec<Undo>,
    hash: u128,
    placed: usize,
    /// With unique values: how many unplaced operations must observe each value (the
    /// initial value of key `k` has slot `n + k`).
    readers: Option<Vec<u32>>,
    /// Number of value slots before the per-key initial values.
    n: usize,
    /// Branching priority of each op: the earliest completion (history index) among the
    /// op and, with unique values, the reads of its value.
    prio: Vec<u64>,
}

fn slot(n: usize, key: u32, v: u32) -> usize {
    if v == INIT {
        n + key as usize
    } else {
        v as usize
    }
}

impl<'a> State<'a> {
    fn new(p: &'a Prepared, paired: &Paired) -> State<'a> {
        let front = vec![0; p.chains.len()];
        let values = vec![INIT; p.keys.len()];
        let mut hash = 0u128;
        for c in 0..front.len() {
            hash ^= zob(0, c as u32, 0);
        }
        for k in 0..values.len() {
            hash ^= zob(1, k as u32, INIT);
        }
        let n = 1 + p
            .ops
            .iter()
            .filter_map(|o| match o.observe {
                Observe::Equal(v) => Some(v),
                _ => o.write,
            })
            .max()
            .unwrap_or(0) as usize;
        let readers = p.not_unique.is_none().then(|| {
            let mut r = vec![0u32; n + p.keys.len()];
            for o in &p.ops {
                if let Observe::Equal(v) = o.observe {
                    r[slot(n, o.key, v)] += 1;
                }
            }
            r
        });
        State {
            p,
            front,
            values,
            log: Vec::new(),
            hash,
            placed: 0,
            readers,
            n,
            prio: priorities(p, paired),
        }
    }

    /// The next op of `chain`, if the chain may go on (its fork parent is placed).
    fn next(&self, chain: u32) -> Option<u32> {
        let c = &self.p.chains[chain as usize];
        let pos = self.front[chain as usize];
        if pos == 0 {
            if let Some(par) = c.parent {
                let po = &self.p.ops[par as usize];
                if self.front[po.chain as usize] <= po.pos {
                    return None;
                }
            }
        }
        c.ops.get(pos as usize).copied()
    }

    fn legal(&self, o: u32) -> bool {
        let op = &self.p.ops[o as usize];
        let cur = self.values[op.key as usize];
        let observed = match op.observe {
            Observe::Nothing => true,
            Observe::Equal(v) => cur == v,
            Observe::NotEqual(v) => cur != v,
        };
        observed && (op.write.is_none() || self.may_overwrite(o))
    }

    /// Whether writing now keeps every future observer of the current value placeable.
    fn may_overwrite(&self, o: u32) -> bool {
        let op = &self.p.ops[o as usize];
        let cur = self.values[op.key as usize];
        let Some(readers) = &self.readers else {
            return true;
        };
        let own = u32::from(op.observe == Observe::Equal(cur));
        readers.get(slot(self.n, op.key, cur)).copied().unwrap_or(0) <= own
    }

    fn count_reader(&mut self, chain: u32, pos: u32, delta: i32) {
        let o = &self.p.ops[self.p.chains[chain as usize].ops[pos as usize] as usize];
        if let (Some(r), Observe::Equal(v)) = (&mut self.readers, o.observe) {
            let c = &mut r[slot(self.n, o.key, v)];
            *c = c.saturating_add_signed(delta);
        }
    }

    fn advance(&mut self, chain: u32) {
        let pos = self.front[chain as usize];
        self.hash ^= zob(0, chain, pos) ^ zob(0, chain, pos + 1);
        self.front[chain as usize] = pos + 1;
        self.placed += 1;
        self.count_reader(chain, pos, -1);
        self.log.push(Undo::Front(chain));
    }

    fn set(&mut self, key: u32, v: u32) {
        let old = self.values[key as usize];
        self.hash ^= zob(1, key, old) ^ zob(1, key, v);
        self.values[key as usize] = v;
        self.log.push(Undo::Value(key, old));
    }

    fn apply(&mut self, m: Move) {
        if let Some(o) = self.next(m.chain) {
            let op = &self.p.ops[o as usize];
            if !m.skip {
                if let Some(v) = op.write {
                    self.set(op.key, v);
                }
            }
            self.advance(m.chain);
        }
    }

    fn undo_to(&mut self, mark: usize) {
        while self.log.len() > mark {
            match self.log.pop() {
                Some(Undo::Front(c)) => {
                    let pos = self.front[c as usize];
                    self.hash ^= zob(0, c, pos) ^ zob(0, c, pos - 1);
                    self.front[c as usize] = pos - 1;
                    self.placed -= 1;
                    self.count_reader(c, pos - 1, 1);
                }
                Some(Undo::Value(k, old)) => {
                    let v = self.values[k as usize];
                    self.hash ^= zob(1, k, v) ^ zob(1, k, old);
                    self.values[k as usize] = old;
                }
                None => break,
            }
        }
    }

    /// Places every legal pure read at a chain front, until none is left.
    fn eager(&mut self) {
        loop {
            let mut moved = false;
            for c in 0..self.front.len() as u32 {
                while let Some(o) = self.next(c) {
                    let op = &self.p.ops[o as usize];
                    if op.write.is_some() || op.optional || !self.legal(o) {
                        break;
                    }
                    self.advance(c);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// The branching moves: writes (and optional ops) at the session fronts, by
    /// priority: a write must take effect before it and its readers complete in a real
    /// execution, so this finds an order quickly when one exists.
    fn moves(&self) -> Vec<Move> {
        let mut moves: Vec<(u64, Move)> = Vec::new();
        for c in 0..self.front.len() as u32 {
            let Some(o) = self.next(c) else { continue };
            let op = &self.p.ops[o as usize];
            if (op.write.is_some() || op.optional) && self.legal(o) {
                moves.push((
                    self.prio[o as usize],
                    Move {
                        chain: c,
                        skip: false,
                    },
                ));
            }
            if op.optional {
                moves.push((
                    u64::MAX,
                    Move {
                        chain: c,
                        skip: true,
                    },
                ));
            }
        }
        moves.sort_by_key(|&(src, _)| src);
        moves.into_iter().map(|(_, m)| m).collect()
    }
}

/// Branching priorities (see `State::prio`).
fn priorities(p: &Prepared, paired: &Paired) -> Vec<u64> {
    let done = |o: &crate::prepare::POp| match paired.ops[o.src].outcome {
        Outcome::Info => u64::MAX,
        _ => paired.ops[o.src].complete_index.unwrap_or(u64::MAX),
    };
    let mut prio: Vec<u64> = p.ops.iter().map(done).collect();
    for o in &p.ops {
        if let Some(w) = o.rf {
            let d = done(o);
            if d < prio[w as usize] {
                prio[w as usize] = d;
            }
        }
    }
    prio
}

/// Searches for a sequential order of `p` within `deadline` and `max_states`.
pub(crate) fn search(
    p: &Prepared,
    paired: &Paired,
    deadline: Option<Instant>,
    max_states: usize,
) -> Search {
    let total = p.ops.len();
    let mut st = State::new(p, paired);
    let mut visited: HashSet<u128> = HashSet::new();
    let mut deepest = Deepest::default();
    st.eager();
    if st.placed == total {
        return Search::Found;
    }
    visited.insert(st.hash);
    let mut frames = vec![Frame {
        moves: st.moves(),
        next: 0,
        mark: 0,
    }];
    let mut steps = 0u64;
    while let Some(top) = frames.last_mut() {
        if st.placed > deepest.placed || deepest.front.is_empty() {
            deepest.placed = st.placed;
            deepest.front = st.front.clone();
            deepest.values = st.values.clone();
        }
        if top.next == top.moves.len() {
            let mark = top.mark;
            frames.pop();
            st.undo_to(mark);
            continue;
        }
        let m = top.moves[top.next];
        top.next += 1;
        steps += 1;
        if steps & 1023 == 0 && deadline.is_some_and(|d| Instant::now() > d) {
            return Search::OutOfBudget {
                states: visited.len(),
                why: "time limit",
            };
        }
        let mark = st.log.len();
        st.apply(m);
        st.eager();
        if st.placed == total {
            return Search::Found;
        }
        if !visited.insert(st.hash) {
            st.undo_to(mark);
            continue;
        }
        if visited.len() > max_states {
            return Search::OutOfBudget {
                states: visited.len(),
                why: "state budget",
            };
        }
        let moves = st.moves();
        frames.push(Frame {
            moves,
            next: 0,
            mark,
        });
    }
    deepest.states = visited.len();
    Search::Impossible(deepest)
}
