//! Exact search for a sequential order: depth-first over session frontiers, memoised.
//!
//! A state is the position reached in every session plus the current value of every key;
//! it determines which completions remain, so each state is explored at most once
//! (states are remembered by a 128-bit Zobrist hash). A pure read that is legal now is
//! scheduled at once (it changes no value, so scheduling it earlier never hurts), so the
//! search branches only on writes and on optional operations (an `info` op of a history
//! whose values are not unique: applied or left out). When values are unique:
//!
//! * a write of `x` is only tried once no unplaced operation still has to observe the
//!   current value of `x`: that value never comes back, so such an operation could
//!   never be placed;
//! * a write is not tried either if one of the operations that must observe its value
//!   has, before it in its session or anywhere in its causal past (which every
//!   sequential order places before it), an unplaced operation that moves the key away
//!   from that value for good (writes another value, or does not write and needs
//!   another value or needs the key not to hold it): the value could not stay until
//!   that reader, nor come back. Such a write leads only to dead states, which the search would otherwise
//!   find dead one by one, across every interleaving of the other sessions;
//! * a blind write (nobody observes its value) is placed as soon as it is legal, like a
//!   read, when no failed cas observes a mismatch: moved to the front of any order
//!   that completes, it changes only what the ops before the next write of its key
//!   observe, which was the previous value, and that has no unplaced observer left.
//!
//! All three only remove states from which no order completes, or orders equivalent to
//! one kept, so found / impossible are exact as before.

use crate::causal::order::Clocks;
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
    /// With unique values: per value slot, the ops that must observe it.
    reader_ops: Vec<Vec<u32>>,
    /// With unique values: per op that observes a value, the position of the last op
    /// before it in its chain that moves its key away from that value for good (see
    /// [`State::strands_a_reader`]), or `NONE`.
    barrier: Vec<u32>,
    /// Per op: a plain write that nobody observes, placed as soon as it is legal (with
    /// unique values and no `NotEqual` observations).
    blind: Vec<bool>,
    /// With unique values: the clocks of the causal order, and the ops of each key by
    /// chain, to find barriers in a reader's causal past (not only in its session).
    causal: Option<(&'a Clocks, KeyOps)>,
}

/// The ops of each key, grouped by chain, in session order.
struct KeyOps {
    /// Per key: (chain, start, end) ranges into `ops`.
    by_key: Vec<Vec<(u32, u32, u32)>>,
    /// (position, op), sorted by key, chain, position.
    ops: Vec<(u32, u32)>,
}

impl KeyOps {
    fn new(p: &Prepared) -> KeyOps {
        let mut all: Vec<(u32, u32, u32, u32)> = p
            .ops
            .iter()
            .enumerate()
            .map(|(i, o)| (o.key, o.chain, o.pos, i as u32))
            .collect();
        all.sort_unstable();
        let mut by_key: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); p.keys.len()];
        let mut ops = Vec::with_capacity(all.len());
        for (i, &(key, chain, pos, op)) in all.iter().enumerate() {
            let list = &mut by_key[key as usize];
            match list.last_mut() {
                Some(last) if last.0 == chain => last.2 = i as u32 + 1,
                _ => list.push((chain, i as u32, i as u32 + 1)),
            }
            ops.push((pos, op));
        }
        KeyOps { by_key, ops }
    }
}

const NONE: u32 = u32::MAX;

fn slot(n: usize, key: u32, v: u32) -> usize {
    if v == INIT {
        n + key as usize
    } else {
        v as usize
    }
}

impl<'a> State<'a> {
    fn new(p: &'a Prepared, paired: &Paired, clocks: Option<&'a Clocks>) -> State<'a> {
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
            .flat_map(|o| {
                let seen = match o.observe {
                    Observe::Equal(v) | Observe::NotEqual(v) => Some(v),
                    Observe::Nothing => None,
                };
                seen.into_iter().chain(o.write)
            })
            .max()
            .unwrap_or(0) as usize;
        // The pruning below relies on unique values and on every kept operation having
        // happened; optional operations (which may be left out) switch it off.
        let unique = p.not_unique.is_none() && !p.ops.iter().any(|o| o.optional);
        let readers = unique.then(|| {
            let mut r = vec![0u32; n + p.keys.len()];
            for o in &p.ops {
                if let Observe::Equal(v) = o.observe {
                    r[slot(n, o.key, v)] += 1;
                }
            }
            r
        });
        let mut reader_ops: Vec<Vec<u32>> = Vec::new();
        let mut barrier = Vec::new();
        let mut blind = vec![false; p.ops.len()];
        if unique {
            reader_ops = vec![Vec::new(); n + p.keys.len()];
            for (i, o) in p.ops.iter().enumerate() {
                if let Observe::Equal(v) = o.observe {
                    reader_ops[slot(n, o.key, v)].push(i as u32);
                }
            }
            barrier = barriers(p);
            let mut negated = vec![false; n + p.keys.len()];
            for o in &p.ops {
                if let Observe::NotEqual(v) = o.observe {
                    negated[slot(n, o.key, v)] = true;
                }
            }
            if p.mismatches == 0 {
                for (i, o) in p.ops.iter().enumerate() {
                    if let (Observe::Nothing, Some(v), false) = (o.observe, o.write, o.optional) {
                        let sl = slot(n, o.key, v);
                        blind[i] = reader_ops[sl].is_empty() && !negated[sl];
                    }
                }
            }
        }
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
            reader_ops,
            barrier,
            blind,
            causal: clocks.filter(|_| unique).map(|c| (c, KeyOps::new(p))),
        }
    }

    /// Whether the write `o` (legal otherwise) would make its value current while one
    /// of the value's readers still has an unplaced barrier before it in its session or
    /// in its causal past: an op that writes another value of the key, or does not write
    /// and needs the key to hold another value (or not to hold this one). With unique
    /// values the value never comes back once changed, and the key cannot change while
    /// that reader waits for it, so no order would complete.
    fn strands_a_reader(&self, o: u32) -> bool {
        let op = &self.p.ops[o as usize];
        let Some(v) = op.write else { return false };
        let Some(readers) = self.reader_ops.get(slot(self.n, op.key, v)) else {
            return false;
        };
        readers.iter().any(|&r| {
            let ro = &self.p.ops[r as usize];
            let f = self.front[ro.chain as usize];
            let b = self.barrier[r as usize];
            f <= ro.pos && ((b != NONE && f <= b) || self.barrier_in_past(r, v))
        })
    }

    /// Whether an unplaced op in the causal past of the read `r` (which must come before
    /// it in any sequential order) moves the read's key away from `v` for good: it
    /// writes another value, or does not write and needs another value, or needs the
    /// key not to hold `v`.
    fn barrier_in_past(&self, r: u32, v: u32) -> bool {
        let Some((clocks, key_ops)) = &self.causal else {
            return false;
        };
        let p = self.p;
        let ro = &p.ops[r as usize];
        let chain = &p.chains[ro.chain as usize].ops;
        // The clock of `r`: from the last op at or before it with a stored clock.
        let mut vc = vec![0u32; clocks.k];
        let mut i = ro.pos as usize;
        while clocks.slot_of(chain[i]).is_none() && i > 0 {
            i -= 1;
        }
        if clocks.slot_of(chain[i]).is_none() {
            clocks.start(p, ro.chain, &mut vc);
        }
        for &o in &chain[i..=ro.pos as usize] {
            clocks.step_stored(p, o, &mut vc);
        }
        let moves_away = |b: &crate::prepare::POp| match (b.write, b.observe) {
            (Some(w), _) => w != v,
            (None, Observe::Equal(u)) => u != v,
            (None, Observe::NotEqual(u)) => u == v,
            (None, Observe::Nothing) => false,
        };
        key_ops.by_key[ro.key as usize].iter().any(|&(c, s, e)| {
            let (from, to) = (self.front[c as usize], vc[c as usize]);
            if from >= to {
                return false;
            }
            let ops = &key_ops.ops[s as usize..e as usize];
            let first = ops.partition_point(|&(pos, _)| pos < from);
            ops[first..]
                .iter()
                .take_while(|&&(pos, _)| pos < to)
                .any(|&(_, b)| b != r && moves_away(&p.ops[b as usize]))
        })
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
        let observed = op.observe.holds_at(self.values[op.key as usize]);
        observed && (op.write.is_none() || (self.may_overwrite(o) && !self.strands_a_reader(o)))
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

    /// Places every legal pure read and every legal blind write at a chain front, until
    /// none is left. Both are safe: a read changes no value, and a blind write (nobody
    /// observes its value) moved before the rest of an order changes only what ops
    /// before the next write of its key see, which was the previous value, and that
    /// value has no unplaced observer (otherwise the write would not be legal).
    fn eager(&mut self) {
        loop {
            let mut moved = false;
            for c in 0..self.front.len() as u32 {
                while let Some(o) = self.next(c) {
                    let op = &self.p.ops[o as usize];
                    let safe = match op.write {
                        None => !op.optional,
                        Some(_) => self.blind[o as usize],
                    };
                    if !safe || !self.legal(o) {
                        break;
                    }
                    if let Some(v) = op.write {
                        self.set(op.key, v);
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

/// Per op that observes a value equal: the position of the last op before it in its
/// chain with the same key that writes another value, or does not write and observes
/// another value or that the key differs from this value; `NONE` if there is none.
fn barriers(p: &Prepared) -> Vec<u32> {
    let mut out = vec![NONE; p.ops.len()];
    for c in &p.chains {
        // Per key: the ops of the key seen so far in this chain (position, op).
        let mut seen: std::collections::HashMap<u32, Vec<(u32, u32)>> = Default::default();
        for &o in &c.ops {
            let op = &p.ops[o as usize];
            if let Observe::Equal(v) = op.observe {
                // What the key holds after `b` decides: its write if it writes (it
                // observes before writing), else what it observed.
                let moves_away = |b: &crate::prepare::POp| match (b.write, b.observe) {
                    (Some(w), _) => w != v,
                    (None, Observe::Equal(u)) => u != v,
                    (None, Observe::NotEqual(u)) => u == v,
                    (None, Observe::Nothing) => false,
                };
                if let Some(list) = seen.get(&op.key) {
                    if let Some(&(pos, _)) = list
                        .iter()
                        .rev()
                        .find(|&&(_, b)| moves_away(&p.ops[b as usize]))
                    {
                        out[o as usize] = pos;
                    }
                }
            }
            seen.entry(op.key).or_default().push((op.pos, o));
        }
    }
    out
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
    clocks: Option<&Clocks>,
    deadline: Option<Instant>,
    max_states: usize,
) -> Search {
    let total = p.ops.len();
    let mut st = State::new(p, paired, clocks);
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

#[cfg(test)]
mod tests {
    //! The search, with and without the causal clocks, against an enumeration of every
    //! order of the prepared operations, on tiny random histories with unique values,
    //! compare-and-set (successful and failed on `mismatch`) and processes that go on
    //! after `info` writes (forks). The necessary checks that usually run first are
    //! skipped, so the search meets the histories they would reject too.

    use super::*;
    use crate::causal::Analysis;
    use crate::prepare::prepare;
    use faultline_history::{pair, Event, EventType, Value};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Whether some order of all ops respects every chain (and fork) and explains every
    /// observation.
    fn brute(p: &Prepared) -> bool {
        fn go(p: &Prepared, front: &mut Vec<u32>, values: &mut Vec<u32>, left: usize) -> bool {
            if left == 0 {
                return true;
            }
            for c in 0..front.len() {
                let chain = &p.chains[c];
                let pos = front[c];
                let Some(&o) = chain.ops.get(pos as usize) else {
                    continue;
                };
                if pos == 0 {
                    if let Some(par) = chain.parent {
                        let po = &p.ops[par as usize];
                        if front[po.chain as usize] <= po.pos {
                            continue;
                        }
                    }
                }
                let op = &p.ops[o as usize];
                let cur = values[op.key as usize];
                let ok = match op.observe {
                    Observe::Nothing => true,
                    Observe::Equal(v) => cur == v,
                    Observe::NotEqual(v) => cur != v,
                };
                if !ok {
                    continue;
                }
                if let Some(v) = op.write {
                    values[op.key as usize] = v;
                }
                front[c] += 1;
                let found = go(p, front, values, left - 1);
                front[c] -= 1;
                values[op.key as usize] = cur;
                if found {
                    return true;
                }
            }
            false
        }
        let mut front = vec![0; p.chains.len()];
        let mut values = vec![INIT; p.keys.len()];
        go(p, &mut front, &mut values, p.ops.len())
    }

    fn random_history(rng: &mut ChaCha8Rng) -> Vec<Event> {
        let procs = rng.gen_range(2..=4u64);
        let keys = rng.gen_range(1..=2usize);
        let n = rng.gen_range(3..=9);
        let mut written: Vec<Vec<i64>> = vec![Vec::new(); keys];
        let mut next = 1i64;
        let mut evs = Vec::new();
        for _ in 0..n {
            let p = rng.gen_range(0..procs);
            let k = rng.gen_range(0..keys);
            let key = format!("k{k}");
            let i = evs.len() as u64;
            let pick = |rng: &mut ChaCha8Rng, w: &[i64]| -> Value {
                match rng.gen_range(0..=w.len()) {
                    0 => Value::Null,
                    j => Value::from(w[j - 1]),
                }
            };
            let (f, arg, done, res, err) = match rng.gen_range(0..10) {
                0..=3 => {
                    let v = Value::from(next);
                    written[k].push(next);
                    next += 1;
                    let kind = if rng.gen_range(0..6) == 0 {
                        EventType::Info
                    } else {
                        EventType::Ok
                    };
                    ("write", v.clone(), kind, v, None)
                }
                4..=7 => {
                    let v = pick(rng, &written[k]);
                    ("read", Value::Null, EventType::Ok, v, None)
                }
                _ => {
                    let e = pick(rng, &written[k]);
                    let v = Value::from(vec![e, Value::from(next)]);
                    written[k].push(next);
                    next += 1;
                    match rng.gen_range(0..3) {
                        0 => ("cas", v.clone(), EventType::Fail, v, Some("mismatch")),
                        _ => ("cas", v.clone(), EventType::Ok, v, None),
                    }
                }
            };
            evs.push(Event::client(i, p, EventType::Invoke, f, arg).with_key(key.clone()));
            let mut c = Event::client(i + 1, p, done, f, res).with_key(key);
            c.error = err.map(str::to_string);
            evs.push(c);
        }
        evs
    }

    #[test]
    fn the_search_agrees_with_every_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5e9);
        let (mut valid, mut invalid) = (0, 0);
        for case in 0..20_000 {
            let evs = random_history(&mut rng);
            let paired = pair(&evs, "search-test").expect("well-formed");
            let p = prepare(&paired, &Value::Null, false);
            if p.structural.is_some() || p.unsupported.is_some() {
                continue;
            }
            let expected = brute(&p);
            let analysis = p.not_unique.is_none().then(|| Analysis::new(&p, &paired));
            let clocks = analysis.as_ref().and_then(|a| a.clocks.as_ref().ok());
            for c in [None, clocks] {
                let got = match search(&p, &paired, c, None, 100_000) {
                    Search::Found => true,
                    Search::Impossible(_) => false,
                    Search::OutOfBudget { .. } => panic!("case {case}: out of budget"),
                };
                assert_eq!(
                    got,
                    expected,
                    "case {case} (clocks: {}): {evs:?}",
                    c.is_some()
                );
            }
            if expected {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        assert!(
            valid > 2000 && invalid > 2000,
            "{valid} valid, {invalid} invalid"
        );
    }
}
