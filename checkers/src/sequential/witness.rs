//! A fast sufficient check for sequential consistency: guess one order of each key's
//! writes, derive a total order of every operation from it, and replay that order.
//!
//! With unique values, fixing the order of each key's writes (a *version order*) turns
//! sequential consistency into an acyclicity question (Adya's serialization graph, with
//! session order instead of transactions): order every operation after its session
//! predecessor and after the write it read (reads-from), every write after the previous
//! write of its key, and every operation that observed a write before the write that
//! follows it in the version order (an anti-dependency; a read of the initial value goes
//! before the key's first write). Any topological order of that graph explains every
//! read. The version order is only guessed: a write is estimated to take effect no later
//! than its own completion and the completion of every operation that read it, and the
//! writes of a key are ordered by that estimate (then by invocation). For a linearizable
//! history the guess is usually right; when it is not, the graph has a cycle and the
//! caller goes on with the exact checkers.
//!
//! Whatever the guess, the order found is checked by replaying it against one register
//! per key: it must hold every kept operation once, respect session order (and forks),
//! and give every read (and every compare of a cas, successful or failed on a mismatch)
//! what it observed. Only an order that passes is returned, so a `Some` is a proof that
//! the history is sequentially consistent, hence (the lattice) CCv, CM, CC and every
//! session guarantee.

use crate::causal::graph::Graph;
use crate::prepare::{Observe, Prepared, INIT};
use faultline_history::Paired;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A total order of the operations of `p` that is a sequential execution, if the guessed
/// version order gives one. Only for histories with unique values and no optional
/// operation (`None` otherwise).
pub(crate) fn witness(p: &Prepared, paired: &Paired) -> Option<Vec<u32>> {
    if p.not_unique.is_some()
        || p.structural.is_some()
        || p.unsupported.is_some()
        || p.ops.iter().any(|o| o.optional)
    {
        return None;
    }
    let n = p.ops.len();
    let times: Vec<(u64, u64)> = p
        .ops
        .iter()
        .map(|o| {
            let op = &paired.ops[o.src];
            (op.invoke_index, op.complete_index.unwrap_or(u64::MAX))
        })
        .collect();
    let invoked = |o: usize| times[o].0;
    let completed = |o: usize| times[o].1;
    // The zone of each write's cluster (the write and the operations that observed it):
    // its earliest completion and its latest invocation.
    let mut first_done = vec![u64::MAX; n];
    let mut last_start = vec![0u64; n];
    for (i, o) in p.ops.iter().enumerate() {
        if o.write.is_some() {
            first_done[i] = first_done[i].min(completed(i));
            last_start[i] = last_start[i].max(invoked(i));
        }
        if let Some(w) = o.rf {
            first_done[w as usize] = first_done[w as usize].min(completed(i));
            last_start[w as usize] = last_start[w as usize].max(invoked(i));
        }
    }
    // A forward zone (some op of the cluster completed before another was invoked) is
    // placed at its earliest completion, a backward one at its latest invocation: the
    // order of clusters in a linearization (Gibbons and Korach 1997).
    let place = |w: usize| match (first_done[w], last_start[w]) {
        (done, start) if done < start => done,
        (_, start) => start,
    };
    const NONE: u32 = u32::MAX;
    // A successful cas must directly follow the write it read (or be its key's first
    // write, if it read the initial value): writes are ordered in segments, each a
    // write followed by the chain of cas operations that read one another.
    let mut cas_after = vec![NONE; n];
    let mut cas_first = vec![NONE; p.keys.len()];
    let mut in_segment = vec![false; n];
    for (i, o) in p.ops.iter().enumerate() {
        if o.write.is_none() || !matches!(o.observe, Observe::Equal(_)) {
            continue;
        }
        let slot = match o.rf {
            Some(w) => &mut cas_after[w as usize],
            None => &mut cas_first[o.key as usize],
        };
        if *slot != NONE {
            // Two cas operations read the same value: no order explains both.
            return None;
        }
        *slot = i as u32;
        in_segment[i] = true;
    }
    // Segment heads by key, then the segment of a cas that read the initial value
    // (rank 0) before every other (rank 1), then by place and invocation.
    let mut heads: Vec<(u32, u8, u64, u64, u32)> = p
        .ops
        .iter()
        .enumerate()
        .filter(|&(i, o)| o.write.is_some() && !in_segment[i])
        .map(|(i, o)| (o.key, 1, place(i), invoked(i), i as u32))
        .collect();
    for (key, &c) in cas_first.iter().enumerate() {
        if c != NONE {
            heads.push((key as u32, 0, 0, 0, c));
        }
    }
    heads.sort_unstable();
    let mut next_write = vec![NONE; n];
    let mut first_write = vec![NONE; p.keys.len()];
    let mut placed = 0usize;
    let mut last: Option<(u32, u32)> = None;
    for &(key, _, _, _, head) in &heads {
        let mut w = head;
        loop {
            match last {
                Some((k, prev)) if k == key => next_write[prev as usize] = w,
                _ => first_write[key as usize] = w,
            }
            last = Some((key, w));
            placed += 1;
            match cas_after[w as usize] {
                NONE => break,
                c => w = c,
            }
            if placed > n {
                return None;
            }
        }
    }
    if placed != p.ops.iter().filter(|o| o.write.is_some()).count() {
        // A cycle of cas operations reading one another: no order explains it.
        return None;
    }
    // The writer of each value (value ids are unique across keys).
    let n_values = p
        .ops
        .iter()
        .filter_map(|o| o.write)
        .max()
        .map_or(1, |v| v as usize + 1);
    let mut writer = vec![NONE; n_values];
    for (i, o) in p.ops.iter().enumerate() {
        if let Some(v) = o.write {
            writer[v as usize] = i as u32;
        }
    }
    let mut edges: Vec<(u32, u32)> = Vec::with_capacity(n * 3);
    for (i, o) in p.ops.iter().enumerate() {
        let me = i as u32;
        if let Some(a) = p.po_pred(me) {
            edges.push((a, me));
        }
        if o.write.is_some() && next_write[i] != NONE {
            edges.push((me, next_write[i]));
        }
        if let Observe::Equal(v) = o.observe {
            let (after, next) = match (o.rf, v) {
                (Some(w), _) => (Some(w), next_write[w as usize]),
                (None, INIT) => (None, first_write[o.key as usize]),
                // A read of a value without a kept writer: no order explains it.
                (None, _) => return None,
            };
            if let Some(w) = after {
                edges.push((w, me));
            }
            if next != NONE && next != me {
                edges.push((me, next));
            }
        }
        if let Observe::NotEqual(v) = o.observe {
            // A cas that failed on a mismatch goes where the key did not hold `v`:
            // before `v` was written if it was invoked before that write's place,
            // else after the write that replaced `v`.
            let w = match v {
                INIT => NONE,
                v => writer.get(v as usize).copied().unwrap_or(NONE),
            };
            let first = first_write[o.key as usize];
            match (w, v) {
                (NONE, INIT) if first != NONE => edges.push((first, me)),
                (NONE, _) => {}
                (w, _) => match next_write[w as usize] {
                    next if next != NONE
                        && (invoked(i) > completed(w as usize)
                            || completed(i) > place(next as usize)) =>
                    {
                        edges.push((next, me))
                    }
                    _ => edges.push((me, w)),
                },
            }
        }
    }
    let g = Graph::new(n, &edges);
    let order = priority_order(&g, |o| invoked(o as usize))?;
    replay(p, &order).then_some(order)
}

/// A topological order of `g` that takes, among the ready nodes, the one with the
/// smallest `key` first; `None` if `g` has a cycle.
fn priority_order(g: &Graph, key: impl Fn(u32) -> u64) -> Option<Vec<u32>> {
    let n = g.len();
    let mut indeg = vec![0u32; n];
    for a in 0..n as u32 {
        for &b in g.succ(a) {
            indeg[b as usize] += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<(u64, u32)>> = (0..n as u32)
        .filter(|&a| indeg[a as usize] == 0)
        .map(|a| Reverse((key(a), a)))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse((_, a))) = ready.pop() {
        order.push(a);
        for &b in g.succ(a) {
            indeg[b as usize] -= 1;
            if indeg[b as usize] == 0 {
                ready.push(Reverse((key(b), b)));
            }
        }
    }
    (order.len() == n).then_some(order)
}

/// Whether `order` holds every operation of `p` once, respects session order, and
/// explains every observation when replayed against one register per key.
pub(crate) fn replay(p: &Prepared, order: &[u32]) -> bool {
    let n = p.ops.len();
    if order.len() != n {
        return false;
    }
    let mut at = vec![u32::MAX; n];
    for (i, &o) in order.iter().enumerate() {
        match at.get_mut(o as usize) {
            Some(slot) if *slot == u32::MAX => *slot = i as u32,
            _ => return false,
        }
    }
    let mut value = vec![INIT; p.keys.len()];
    for (i, &o) in order.iter().enumerate() {
        if p.po_pred(o).is_some_and(|a| at[a as usize] > i as u32) {
            return false;
        }
        let op = &p.ops[o as usize];
        if !op.observe.holds_at(value[op.key as usize]) {
            return false;
        }
        if let Some(w) = op.write {
            value[op.key as usize] = w;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepare::prepare;
    use faultline_history::{pair, Event, EventType, Value};
    use serde_json::json;

    /// Events `(index, process, kind, f, key, value)`.
    fn history(evs: &[(u64, u64, EventType, &str, &str, Value)]) -> Paired {
        let evs: Vec<Event> = evs
            .iter()
            .map(|(i, p, t, f, k, v)| Event::client(*i, *p, *t, f, v.clone()).with_key(*k))
            .collect();
        pair(&evs, "witness-test").expect("well-formed")
    }

    use EventType::{Invoke as I, Ok as K};

    #[test]
    fn overlapping_writes_are_ordered_by_their_zones() {
        // p0 writes 1 over a long interval, p1 writes 2 inside it and p2 reads 2 after
        // both. The zone of 1 is backward (placed at its invocation, 0); that of 2 is
        // forward (its write completed at 2 before its read was invoked at 5, placed
        // at 2): 1 goes first, as the read of 2 requires.
        let p = history(&[
            (0, 0, I, "write", "x", json!(1)),
            (1, 1, I, "write", "x", json!(2)),
            (2, 1, K, "write", "x", json!(2)),
            (3, 0, K, "write", "x", json!(1)),
            (5, 2, I, "read", "x", Value::Null),
            (6, 2, K, "read", "x", json!(2)),
        ]);
        let prep = prepare(&p, &Value::Null, false);
        let order = witness(&prep, &p).expect("a sequential order");
        let srcs: Vec<usize> = order.iter().map(|&o| prep.ops[o as usize].src).collect();
        assert_eq!(srcs, vec![0, 1, 2]);
    }

    #[test]
    fn a_history_that_is_not_sequential_has_no_witness() {
        // p0: w(x,1) r(y) = init; p1: w(y,1) r(x) = init. No order explains both.
        let p = history(&[
            (0, 0, I, "write", "x", json!(1)),
            (1, 1, I, "write", "y", json!(1)),
            (2, 0, K, "write", "x", json!(1)),
            (3, 1, K, "write", "y", json!(1)),
            (4, 0, I, "read", "y", Value::Null),
            (5, 1, I, "read", "x", Value::Null),
            (6, 0, K, "read", "y", Value::Null),
            (7, 1, K, "read", "x", Value::Null),
        ]);
        let prep = prepare(&p, &Value::Null, false);
        assert!(witness(&prep, &p).is_none());
    }

    #[test]
    fn two_cas_reading_one_value_have_no_witness() {
        let p = history(&[
            (0, 0, I, "write", "x", json!(1)),
            (1, 0, K, "write", "x", json!(1)),
            (2, 1, I, "cas", "x", json!([1, 2])),
            (3, 2, I, "cas", "x", json!([1, 3])),
            (4, 1, K, "cas", "x", json!([1, 2])),
            (5, 2, K, "cas", "x", json!([1, 3])),
        ]);
        let prep = prepare(&p, &Value::Null, false);
        assert!(witness(&prep, &p).is_none());
    }

    #[test]
    fn a_cas_from_the_initial_value_goes_first_among_its_keys_writes() {
        // p0's write of 1 (invoked first, nobody reads it: placed at its invocation, 0)
        // and p1's cas from the initial value to 2, which p2 reads. The cas must come
        // first although the write sorts first by place and invocation.
        let p = history(&[
            (0, 0, I, "write", "x", json!(1)),
            (1, 1, I, "cas", "x", json!([null, 2])),
            (2, 1, K, "cas", "x", json!([null, 2])),
            (3, 2, I, "read", "x", Value::Null),
            (4, 2, K, "read", "x", json!(2)),
            (5, 0, K, "write", "x", json!(1)),
        ]);
        let prep = prepare(&p, &Value::Null, false);
        let order = witness(&prep, &p).expect("a sequential order");
        let fs: Vec<&str> = order
            .iter()
            .map(|&o| p.ops[prep.ops[o as usize].src].f.as_str())
            .collect();
        assert_eq!(fs, vec!["cas", "read", "write"]);
    }

    #[test]
    fn replay_checks_every_observation_and_session_order() {
        // p0: w(x,1) r(x)=1; p1: cas(x, 1 -> 2).
        let p = history(&[
            (0, 0, I, "write", "x", json!(1)),
            (1, 0, K, "write", "x", json!(1)),
            (2, 0, I, "read", "x", Value::Null),
            (3, 0, K, "read", "x", json!(1)),
            (4, 1, I, "cas", "x", json!([1, 2])),
            (5, 1, K, "cas", "x", json!([1, 2])),
        ]);
        let prep = prepare(&p, &Value::Null, false);
        assert!(replay(&prep, &[0, 1, 2]));
        // The read after the cas sees 2, not 1.
        assert!(!replay(&prep, &[0, 2, 1]));
        // The read before its session's write.
        assert!(!replay(&prep, &[1, 0, 2]));
        // An op twice, or missing.
        assert!(!replay(&prep, &[0, 0, 2]));
        assert!(!replay(&prep, &[0, 1]));
        assert_eq!(witness(&prep, &p), Some(vec![0, 1, 2]));
    }
}
