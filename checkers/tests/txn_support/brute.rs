//! A brute-force reference for transactional models on tiny histories: every choice of
//! which `info` transactions committed, every commit order, and (snapshot isolation, read
//! committed) every snapshot each transaction or read could have taken.

/// A micro-operation of the reference: the same for both workloads (a register's value is
/// the last element of its list of writes).
#[derive(Debug, Clone, PartialEq)]
pub enum BM {
    /// Append (or write) `v` to `k`.
    Write(u32, u32),
    /// Read `k`: the whole list (list-append) or its last element (rw-register, `None` =
    /// the initial value); `None` outside `ok` transactions.
    Read(u32, Option<Vec<u32>>),
}

/// A transaction of the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct BT {
    /// `ok`, `info` or `fail`.
    pub outcome: &'static str,
    pub mops: Vec<BM>,
    /// Event positions of the invoke and the completion (`usize::MAX`: never completes).
    pub invoke: usize,
    pub complete: usize,
}

/// The models the reference decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefModel {
    StrictSerializable,
    Serializable,
    SnapshotIsolation,
    ReadCommitted,
}

type State = Vec<Vec<u32>>;

fn apply(state: &mut State, t: &BT) {
    for m in &t.mops {
        if let BM::Write(k, v) = m {
            state[*k as usize].push(*v);
        }
    }
}

/// Whether a read result matches a key's list `base` followed by own writes `own`.
fn matches(register: bool, base: &[u32], own: &[u32], seen: &[u32]) -> bool {
    if register {
        let last = own.last().or(base.last());
        last.copied() == seen.first().copied() && seen.len() <= 1
    } else {
        seen.len() == base.len() + own.len() && seen.starts_with(base) && seen.ends_with(own)
    }
}

/// Whether every read of `t` is explained by reading `pick(read index)` state plus its
/// own earlier writes.
fn reads_ok<'a>(register: bool, t: &BT, keys: usize, pick: impl Fn(usize) -> &'a State) -> bool {
    let mut own: Vec<Vec<u32>> = vec![Vec::new(); keys];
    for (i, m) in t.mops.iter().enumerate() {
        match m {
            BM::Write(k, v) => own[*k as usize].push(*v),
            BM::Read(k, Some(seen)) => {
                let base = &pick(i)[*k as usize];
                if !matches(register, base, &own[*k as usize], seen) {
                    return false;
                }
            }
            BM::Read(_, None) => {}
        }
    }
    true
}

fn order_holds(h: &[BT], order: &[usize], keys: usize, register: bool, m: RefModel) -> bool {
    let mut states: Vec<State> = Vec::with_capacity(order.len() + 1);
    let mut s: State = vec![Vec::new(); keys];
    states.push(s.clone());
    for &t in order {
        apply(&mut s, &h[t]);
        states.push(s.clone());
    }
    for (i, &t) in order.iter().enumerate() {
        let tx = &h[t];
        if tx.outcome != "ok" {
            continue;
        }
        let ok = match m {
            RefModel::Serializable | RefModel::StrictSerializable => {
                reads_ok(register, tx, keys, |_| &states[i])
            }
            RefModel::SnapshotIsolation => {
                let writes = |x: &BT| -> Vec<u32> {
                    x.mops
                        .iter()
                        .filter_map(|m| match m {
                            BM::Write(k, _) => Some(*k),
                            _ => None,
                        })
                        .collect()
                };
                let mine = writes(tx);
                let lower = (0..i)
                    .filter(|&j| writes(&h[order[j]]).iter().any(|k| mine.contains(k)))
                    .map(|j| j + 1)
                    .max()
                    .unwrap_or(0);
                (lower..=i).any(|snap| reads_ok(register, tx, keys, |_| &states[snap]))
            }
            RefModel::ReadCommitted => {
                // Each read on its own: some committed state before the transaction.
                tx.mops.iter().enumerate().all(|(r, mop)| {
                    if !matches!(mop, BM::Read(_, Some(_))) {
                        return true;
                    }
                    (0..=i).any(|snap| {
                        let only = BT {
                            outcome: "ok",
                            mops: tx.mops[..=r]
                                .iter()
                                .enumerate()
                                .filter(|(j, m)| *j == r || matches!(m, BM::Write(..)))
                                .map(|(_, m)| m.clone())
                                .collect(),
                            invoke: 0,
                            complete: 0,
                        };
                        reads_ok(register, &only, keys, |_| &states[snap])
                    })
                })
            }
        };
        if !ok {
            return false;
        }
    }
    // Snapshot isolation also needs the transactions not in `order`'s writes
    // conflict-free, which the loop above covers for every committed pair.
    true
}

fn permute(
    h: &[BT],
    pool: &mut Vec<usize>,
    order: &mut Vec<usize>,
    keys: usize,
    register: bool,
    m: RefModel,
) -> bool {
    if pool.is_empty() {
        return order_holds(h, order, keys, register, m);
    }
    for i in 0..pool.len() {
        let t = pool[i];
        if m == RefModel::StrictSerializable
            && pool.iter().any(|&u| u != t && h[u].complete < h[t].invoke)
        {
            continue;
        }
        pool.remove(i);
        order.push(t);
        let found = permute(h, pool, order, keys, register, m);
        order.pop();
        pool.insert(i, t);
        if found {
            return true;
        }
    }
    false
}

/// Whether the history satisfies the model.
pub fn holds(h: &[BT], keys: usize, register: bool, m: RefModel) -> bool {
    let info: Vec<usize> = (0..h.len()).filter(|&i| h[i].outcome == "info").collect();
    for mask in 0..(1u32 << info.len()) {
        let mut pool: Vec<usize> = (0..h.len())
            .filter(|&i| match h[i].outcome {
                "ok" => true,
                "info" => mask & (1 << info.iter().position(|&x| x == i).unwrap_or(0)) != 0,
                _ => false,
            })
            .collect();
        if permute(h, &mut pool, &mut Vec::new(), keys, register, m) {
            return true;
        }
    }
    false
}
