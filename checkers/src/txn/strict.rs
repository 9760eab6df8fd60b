//! A proof of strict serializability for rw-register histories by search.
//!
//! rw-register reads reveal only part of each key's version order, so the dependency
//! graph alone rarely orders every transaction; [`super::serial_proof`]'s topological
//! orders then miss the serialization a correct database had. This module looks for one
//! the way a linearizability checker does (Wing and Gong's search, with Lowe's memo of
//! visited configurations): the history is one object whose state is every register,
//! each committed transaction an operation on it that takes effect at one point between
//! its invoke and its completion. At each step the candidates are the transactions not
//! yet placed that were invoked before every unplaced one completed; one whose reads
//! the registers explain is placed, and on a dead end the search backs up. A
//! configuration (transactions placed, register values) seen before is not searched
//! again.
//!
//! The caller replays the order found and checks its real-time order before trusting it
//! ([`verified`]), so a hash collision in the memo or a bug here can make the search miss
//! an order (unknown), never prove a history that has none.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::parse::{Mop, Obs, Status, Txn, TxnHistory, INIT};

/// A 64-bit mix (SplitMix64's finaliser), for the memo's incremental hashes.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn reg_hash(key: u32, val: u32) -> u64 {
    mix((u64::from(key) << 32) | u64::from(val))
}

/// The reads a transaction makes of what precedes it (not of its own writes), or
/// `None` when a read of its own write does not give the value it wrote.
fn outside_reads(tx: &Txn) -> Option<Vec<(u32, u32)>> {
    let mut own: Vec<(u32, u32)> = Vec::new();
    let mut reads = Vec::new();
    for m in &tx.mops {
        match m {
            Mop::Write { key, val } => own.push((*key, *val)),
            Mop::Read {
                key,
                obs: Obs::Value(v),
            } => match own.iter().rev().find(|(k, _)| k == key) {
                Some(&(_, w)) if w != *v => return None,
                Some(_) => {}
                None => reads.push((*key, *v)),
            },
            _ => {}
        }
    }
    Some(reads)
}

/// One level of the search: the candidates to try there, the next one to try, and what
/// placing the current one changed (to undo it).
struct Frame {
    candidates: Vec<usize>,
    next: usize,
    placed: Option<(usize, Vec<(u32, u32)>)>,
}

/// A strictly serializable order of the `included` transactions of `h` (indexes into
/// `h.txns`), found within `budget` placements and before `deadline`; `None` when none
/// was found.
pub(crate) fn strict_order(
    h: &TxnHistory,
    included: &[bool],
    budget: u64,
    deadline: Option<std::time::Instant>,
) -> Option<Vec<u32>> {
    let mut ops: Vec<usize> = (0..h.txns.len()).filter(|&t| included[t]).collect();
    ops.sort_by_key(|&t| (h.txns[t].invoke, t));
    let complete = |t: usize| h.txns[t].complete.unwrap_or(u64::MAX);
    let mut reads = Vec::with_capacity(ops.len());
    for &t in &ops {
        let tx = &h.txns[t];
        reads.push(if tx.status == Status::Ok {
            outside_reads(tx)?
        } else {
            Vec::new()
        });
    }
    let n = ops.len();
    let mut done = vec![false; n];
    let mut pending: BTreeMap<(u64, usize), ()> =
        (0..n).map(|i| ((complete(ops[i]), i), ())).collect();
    let mut regs = vec![INIT; h.key_count];
    let zob: Vec<u64> = (0..n)
        .map(|i| mix(0xfa17_0000_0000_0000 ^ i as u64))
        .collect();
    let mut hash: u64 = 0;
    let mut seen: HashSet<u64> = HashSet::new();
    let mut budget = budget;
    let mut first = 0; // the first unplaced op in invoke order
    let mut order: Vec<usize> = Vec::with_capacity(n);

    // How many unplaced transactions read each (key, value) from before them.
    let mut wanted: HashMap<(u32, u32), u32> = HashMap::new();
    for r in reads.iter().flatten() {
        *wanted.entry(*r).or_default() += 1;
    }
    // The candidates, those that overwrite no value another unplaced transaction still
    // reads first, each group by completion. (The order only guides the search.)
    let candidates = |done: &[bool],
                      first: usize,
                      pending: &BTreeMap<(u64, usize), ()>,
                      regs: &[u32],
                      wanted: &HashMap<(u32, u32), u32>| {
        let bound = pending.keys().next().map_or(u64::MAX, |k| k.0);
        let mut c: Vec<usize> = (first..n)
            .take_while(|&i| h.txns[ops[i]].invoke < bound)
            .filter(|&i| !done[i])
            .collect();
        let clobbers = |i: usize| {
            h.txns[ops[i]].mops.iter().any(|m| match m {
                Mop::Write { key, val } => {
                    let now = regs[*key as usize];
                    let own = reads[i].iter().filter(|r| **r == (*key, now)).count() as u32;
                    now != *val && wanted.get(&(*key, now)).copied().unwrap_or(0) > own
                }
                _ => false,
            })
        };
        c.sort_by_key(|&i| (clobbers(i), complete(ops[i]), i));
        c
    };
    let mut stack = vec![Frame {
        candidates: candidates(&done, first, &pending, &regs, &wanted),
        next: 0,
        placed: None,
    }];
    while let Some(top) = stack.last_mut() {
        if order.len() == n {
            return Some(order.iter().map(|&i| ops[i] as u32).collect());
        }
        let mut chosen = None;
        while top.next < top.candidates.len() {
            let i = top.candidates[top.next];
            top.next += 1;
            if reads[i].iter().all(|&(k, v)| regs[k as usize] == v) {
                chosen = Some(i);
                break;
            }
        }
        if let Some(i) = chosen {
            for &(k, v) in &reads[i] {
                if let Some(c) = wanted.get_mut(&(k, v)) {
                    *c -= 1;
                }
            }
        }
        let Some(i) = chosen else {
            // Dead end: undo what led here.
            let frame = stack.pop().expect("non-empty");
            if let Some((j, undo)) = frame.placed {
                for &(k, v) in &reads[j] {
                    *wanted.entry((k, v)).or_default() += 1;
                }
                for (k, old) in undo.into_iter().rev() {
                    hash ^= reg_hash(k, regs[k as usize]) ^ reg_hash(k, old);
                    regs[k as usize] = old;
                }
                done[j] = false;
                hash ^= zob[j];
                pending.insert((complete(ops[j]), j), ());
                order.pop();
                first = first.min(j);
            }
            continue;
        };
        if budget == 0
            || (budget.is_multiple_of(4096)
                && deadline.is_some_and(|d| std::time::Instant::now() >= d))
        {
            return None;
        }
        budget -= 1;
        // Place `i`.
        let mut undo = Vec::new();
        for m in &h.txns[ops[i]].mops {
            if let Mop::Write { key, val } = m {
                let old = regs[*key as usize];
                undo.push((*key, old));
                hash ^= reg_hash(*key, old) ^ reg_hash(*key, *val);
                regs[*key as usize] = *val;
            }
        }
        done[i] = true;
        hash ^= zob[i];
        pending.remove(&(complete(ops[i]), i));
        order.push(i);
        let old_first = first;
        while first < n && done[first] {
            first += 1;
        }
        if !seen.insert(hash) {
            // Searched from here before: undo at once.
            for &(k, v) in &reads[i] {
                *wanted.entry((k, v)).or_default() += 1;
            }
            for (k, old) in undo.into_iter().rev() {
                hash ^= reg_hash(k, regs[k as usize]) ^ reg_hash(k, old);
                regs[k as usize] = old;
            }
            done[i] = false;
            hash ^= zob[i];
            pending.insert((complete(ops[i]), i), ());
            order.pop();
            first = old_first;
            continue;
        }
        let next = candidates(&done, first, &pending, &regs, &wanted);
        stack.push(Frame {
            candidates: next,
            next: 0,
            placed: Some((i, undo)),
        });
    }
    None
}

/// Whether `order` (indexes into `h.txns`) is a strict serialization of `h`: every
/// transaction `included` and only those, in an order that keeps real time (one that
/// completed before another was invoked comes first), and replayed against the
/// registers every `ok` read gets its value.
pub(crate) fn verified(h: &TxnHistory, included: &[bool], order: &[u32]) -> bool {
    let mut count = vec![0u32; h.txns.len()];
    for &t in order {
        match count.get_mut(t as usize) {
            Some(c) => *c += 1,
            None => return false,
        }
    }
    if (0..h.txns.len()).any(|t| count[t] != u32::from(included[t])) {
        return false;
    }
    // Real time: no transaction is placed after one that was invoked after it completed.
    let mut min_complete_after = u64::MAX;
    for &t in order.iter().rev() {
        let tx = &h.txns[t as usize];
        if min_complete_after < tx.invoke {
            return false;
        }
        min_complete_after = min_complete_after.min(tx.complete.unwrap_or(u64::MAX));
    }
    let mut regs = vec![INIT; h.key_count];
    for &t in order {
        let tx = &h.txns[t as usize];
        for m in &tx.mops {
            match m {
                Mop::Write { key, val } => regs[*key as usize] = *val,
                Mop::Read {
                    key,
                    obs: Obs::Value(v),
                } if tx.status == Status::Ok && regs[*key as usize] != *v => return false,
                _ => {}
            }
        }
    }
    true
}
