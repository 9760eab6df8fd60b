//! A depth-first linearization search (Wing & Gong with Lowe's memoisation, in Horn &
//! Kroening's linked-list form, as Porcupine implements it), used only to find a
//! linearization quickly.
//!
//! The history's call and return entries form a doubly linked list in event order. The
//! search repeatedly takes the first call it can apply to the model, lifts it (and its
//! return) out of the list, and restarts from the head; reaching the return of an operation
//! not yet linearized means some earlier choice was wrong, so it backtracks. `info`
//! operations have no return entry: they may be linearized or left out. Once every `ok`
//! operation is linearized, the order found is a linearization.
//!
//! Visited configurations `(linearized set, state)` are remembered by a 64-bit Zobrist hash
//! only. A collision can only prune a branch, never invent a linearization, so a `Found`
//! answer is always right; anything else is handed to the exact search in `search.rs`.

use super::bits::FxSet;
use super::prepare::KeyHistory;
use super::Budget;
use crate::model::KeyModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the depth-first search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wgl {
    /// A linearization exists.
    Found,
    /// No linearization was found within the budget (or at all: not trusted either way).
    GaveUp,
}

const NIL: usize = usize::MAX;

/// Tries to find a linearization of `h` in at most `budget` steps (and before the
/// deadline of `time`).
pub(crate) fn find_linearization(h: &KeyHistory, budget: u64, time: &Budget) -> (Wgl, u64) {
    let n = h.ops.len();
    // Entries: (event index, op, is_return).
    let mut entries: Vec<(u64, usize, bool)> = Vec::with_capacity(2 * n);
    for (i, op) in h.ops.iter().enumerate() {
        entries.push((op.invoke, i, false));
        if !op.info {
            entries.push((op.complete, i, true));
        }
    }
    entries.sort_unstable_by_key(|e| e.0);
    let m = entries.len();
    if m == 0 {
        return (Wgl::Found, 0);
    }
    // Node 0 is the head sentinel; entry k is node k + 1.
    let mut next: Vec<usize> = (0..=m).map(|k| if k < m { k + 1 } else { NIL }).collect();
    let mut prev: Vec<usize> = (0..=m).map(|k| if k > 0 { k - 1 } else { NIL }).collect();
    let mut ret_node = vec![NIL; n];
    for (k, &(_, i, r)) in entries.iter().enumerate() {
        if r {
            ret_node[i] = k + 1;
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let zob: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
    let state_mix = |s: u32| {
        u64::from(s)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(17)
    };

    let mut model: KeyModel = h.model.clone();
    let mut state = h.initial;
    let mut hash = 0u64;
    let mut ok_left = h.ops.iter().filter(|o| !o.info).count();
    let mut memo: FxSet<u64> = FxSet::default();
    // (call node, state before, hash before)
    let mut calls: Vec<(usize, u32, u64)> = Vec::new();
    let mut steps = 0u64;
    let mut e = next[0];

    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        let (p, nx) = (prev[node], next[node]);
        next[p] = nx;
        if nx != NIL {
            prev[nx] = p;
        }
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        let (p, nx) = (prev[node], next[node]);
        next[p] = node;
        if nx != NIL {
            prev[nx] = node;
        }
    };

    while ok_left > 0 {
        steps += 1;
        if steps > budget || (steps & 4095 == 0 && time.expired()) {
            return (Wgl::GaveUp, steps);
        }
        let is_call = e != NIL && !entries[e - 1].2;
        if is_call {
            let i = entries[e - 1].1;
            if let Some(s2) = model.step(state, h.ops[i].action) {
                let h2 = hash ^ zob[i];
                if memo.insert(h2 ^ state_mix(s2)) {
                    calls.push((e, state, hash));
                    state = s2;
                    hash = h2;
                    lift(&mut next, &mut prev, e);
                    let r = ret_node[i];
                    if r != NIL {
                        lift(&mut next, &mut prev, r);
                        ok_left -= 1;
                    }
                    e = next[0];
                    continue;
                }
            }
            e = next[e];
        } else {
            // A return of an operation not linearized (or the end): backtrack.
            let Some((c, s, hs)) = calls.pop() else {
                return (Wgl::GaveUp, steps);
            };
            let i = entries[c - 1].1;
            let r = ret_node[i];
            if r != NIL {
                unlift(&mut next, &mut prev, r);
                ok_left += 1;
            }
            unlift(&mut next, &mut prev, c);
            state = s;
            hash = hs;
            e = next[c];
        }
    }
    (Wgl::Found, steps)
}
