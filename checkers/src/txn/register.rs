//! rw-register: what reads reveal of each key's version order, the non-cycle anomalies,
//! dependency edges.
//!
//! Written values are unique per key, so every read names its writer. A read reveals
//! much less than in list-append: that the version read precedes every version written
//! by a transaction that read it first (a transaction that read `v` and then wrote `w`
//! installed `w` after `v`), and that the initial value precedes every write. From these
//! precedences `v ≺ w`: `ww` from `v`'s writer to `w`'s, and `rw` from each reader of
//! `v` to `w`'s writer. Every read gives `wr` from its writer.

use super::explain::{label, Finding};
use super::graph::{Edge, RW, WR, WW};
use super::models::Anomaly;
use super::parse::{Mop, Obs, Status, TxnHistory, TxnInputError, INIT, NONE};
use crate::verdict::Step;
use rustc_hash::FxHashMap;

/// What the rw-register analysis found.
pub(crate) struct Facts {
    pub edges: Vec<Edge>,
    pub findings: Vec<Finding>,
}

fn one(
    anomaly: Anomaly,
    key: String,
    txns: &[u32],
    summary: String,
    steps: Vec<String>,
) -> Finding {
    Finding {
        anomaly,
        key: Some(key),
        txns: txns.iter().map(|&t| t as usize).collect(),
        summary,
        steps: steps.into_iter().map(Step::say).collect(),
        assumes_commit: false,
    }
}

/// A read of a committed transaction not preceded by its own write to the key: it
/// observed some installed version.
struct ExtRead {
    txn: u32,
    key: u32,
    val: u32,
    /// The value the transaction then wrote to the key, if any.
    then_wrote: u32,
}

/// Analyses an rw-register history.
pub(crate) fn analyse(h: &TxnHistory) -> Result<Facts, TxnInputError> {
    let mut writers: FxHashMap<(u32, u32), u32> = FxHashMap::default();
    let mut writes_by_key: Vec<Vec<u32>> = vec![Vec::new(); h.key_count];
    for (i, t) in h.txns.iter().enumerate() {
        for m in &t.mops {
            if let Mop::Write { key, val } = *m {
                if let Some(prev) = writers.insert((key, val), i as u32) {
                    if prev != i as u32 {
                        return Err(TxnInputError::NotUnique {
                            what: "wrote",
                            key: h.key_text(key),
                            value: h.val_text(val),
                            first: h.txns[prev as usize].op,
                            second: t.op,
                        });
                    }
                }
                if writes_by_key[key as usize].last() != Some(&(i as u32)) {
                    writes_by_key[key as usize].push(i as u32);
                }
            }
        }
    }
    let observed = |t: u32, ext: &[ExtRead]| {
        ext.iter()
            .any(|r| r.val != INIT && writers.get(&(r.key, r.val)) == Some(&t))
    };
    let mut findings = Vec::new();
    let mut ext: Vec<ExtRead> = Vec::new();
    for (i, t) in h.txns.iter().enumerate() {
        if t.status != Status::Ok {
            continue;
        }
        let tl = label(i as u32);
        // Per key: the value the transaction last read or wrote, and whether it wrote.
        let mut state: Vec<(u32, u32, bool)> = Vec::new();
        for (j, m) in t.mops.iter().enumerate() {
            match *m {
                Mop::Write { key, val } => match state.iter_mut().find(|s| s.0 == key) {
                    Some(s) => {
                        s.1 = val;
                        s.2 = true;
                    }
                    None => state.push((key, val, true)),
                },
                Mop::Read {
                    key,
                    obs: Obs::Value(v),
                } => {
                    let kt = h.key_text(key);
                    let later_own = t.mops[j + 1..]
                        .iter()
                        .any(|m| matches!(*m, Mop::Write { key: k, val } if k == key && val == v));
                    if later_own && v != INIT {
                        findings.push(one(
                            Anomaly::FutureRead,
                            kt.clone(),
                            &[i as u32],
                            format!(
                                "{tl} read {} from key {kt} before writing it",
                                h.val_text(v)
                            ),
                            vec![format!(
                                "{tl} read {} from key {kt} and wrote that value only afterwards",
                                h.val_text(v)
                            )],
                        ));
                    }
                    let slot = state.iter().position(|s| s.0 == key);
                    if let Some(p) = slot {
                        if state[p].1 != v {
                            findings.push(one(
                                Anomaly::Internal,
                                kt.clone(),
                                &[i as u32],
                                format!("{tl} read key {kt} inconsistently with its own earlier operations"),
                                vec![format!(
                                    "{tl} read {} from key {kt}, but it had just read or written {} there",
                                    h.val_text(v),
                                    h.val_text(state[p].1)
                                )],
                            ));
                        }
                    }
                    // A read not preceded by an own write observed some installed version.
                    if slot.is_none_or(|p| !state[p].2) {
                        let then_wrote = t.mops[j + 1..]
                            .iter()
                            .find_map(|m| match *m {
                                Mop::Write { key: k, val } if k == key => Some(val),
                                _ => None,
                            })
                            .unwrap_or(NONE);
                        ext.push(ExtRead {
                            txn: i as u32,
                            key,
                            val: v,
                            then_wrote,
                        });
                    }
                    match slot {
                        Some(p) => state[p].1 = v,
                        None => state.push((key, v, false)),
                    }
                }
                _ => {}
            }
        }
    }
    let committed = |t: u32| match h.txns[t as usize].status {
        Status::Ok => true,
        Status::Fail => false,
        Status::Info => observed(t, &ext),
    };
    let mut edges = Vec::new();
    // Readers of each (key, value), and the precedences v ≺ w.
    let mut readers: FxHashMap<(u32, u32), Vec<u32>> = FxHashMap::default();
    let mut reported = [false; 3];
    let mut lost: FxHashMap<(u32, u32), u32> = FxHashMap::default();
    let mut lost_reported = false;
    for r in &ext {
        readers.entry((r.key, r.val)).or_default().push(r.txn);
        let kt = || h.key_text(r.key);
        let rl = label(r.txn);
        if r.val != INIT {
            match writers.get(&(r.key, r.val)) {
                None if !reported[0] => {
                    reported[0] = true;
                    findings.push(one(
                        Anomaly::GarbageRead,
                        kt(),
                        &[r.txn],
                        format!(
                            "{rl} read {} from key {}, which no transaction wrote",
                            h.val_text(r.val),
                            kt()
                        ),
                        vec![format!(
                            "{rl} read {} from key {}; no transaction wrote it",
                            h.val_text(r.val),
                            kt()
                        )],
                    ));
                }
                Some(&w) if h.txns[w as usize].status == Status::Fail && !reported[1] => {
                    reported[1] = true;
                    let wl = label(w);
                    findings.push(one(
                        Anomaly::G1a,
                        kt(),
                        &[w, r.txn],
                        format!(
                            "{rl} read {} from key {}, written by {wl}, which aborted",
                            h.val_text(r.val),
                            kt()
                        ),
                        vec![
                            format!(
                                "{wl} wrote {} to key {} and failed (it did not commit)",
                                h.val_text(r.val),
                                kt()
                            ),
                            format!("{rl} committed and read it"),
                        ],
                    ));
                }
                Some(&w) if h.txns[w as usize].status == Status::Fail => {}
                Some(&w) if w != r.txn => {
                    edges.push(Edge::data(w, r.txn, WR, r.key, r.val, NONE));
                    let last = h.txns[w as usize].mops.iter().rev().find_map(|m| match *m {
                        Mop::Write { key, val } if key == r.key => Some(val),
                        _ => None,
                    });
                    if last != Some(r.val) && !reported[2] {
                        reported[2] = true;
                        let wl = label(w);
                        findings.push(one(
                            Anomaly::G1b,
                            kt(),
                            &[w, r.txn],
                            format!(
                                "{rl} read {} from key {}, an intermediate version of {wl}",
                                h.val_text(r.val),
                                kt()
                            ),
                            vec![
                                format!(
                                    "{wl} wrote {} to key {}, then {}",
                                    h.val_text(r.val),
                                    kt(),
                                    h.val_text(last.unwrap_or(NONE))
                                ),
                                format!("{rl} read {}", h.val_text(r.val)),
                            ],
                        ));
                    }
                }
                _ => {}
            }
        }
        if r.then_wrote != NONE && !lost_reported {
            if let Some(other) = lost.insert((r.key, r.val), r.txn).filter(|&o| o != r.txn) {
                lost_reported = true;
                let ol = label(other);
                findings.push(one(Anomaly::LostUpdate, kt(), &[other, r.txn], format!("{ol} and {rl} both read {} from key {} and both wrote it", h.val_text(r.val), kt()), vec![format!("{ol} and {rl} both read {} from key {} and then wrote to it", h.val_text(r.val), kt()), "Whichever committed second overwrote the other's write without seeing it: one update was lost".to_string()]));
            }
        }
    }
    // Precedences: initial value before every committed write; v before w when w's
    // writer read v first.
    for r in &ext {
        if r.then_wrote == NONE {
            continue;
        }
        let before = writers.get(&(r.key, r.val)).copied();
        if let Some(w) = before {
            if w != r.txn && h.txns[w as usize].status != Status::Fail {
                edges.push(Edge::data(w, r.txn, WW, r.key, r.val, r.then_wrote));
            }
        }
        if r.val != INIT {
            for &o in readers.get(&(r.key, r.val)).map_or(&[][..], Vec::as_slice) {
                if o != r.txn {
                    edges.push(Edge::data(o, r.txn, RW, r.key, r.val, r.then_wrote));
                }
            }
        }
    }
    for (k, ws) in writes_by_key.iter().enumerate() {
        let Some(rs) = readers.get(&(k as u32, INIT)) else {
            continue;
        };
        for &w in ws {
            if !committed(w) {
                continue;
            }
            let val = h.txns[w as usize].mops.iter().rev().find_map(|m| match *m {
                Mop::Write { key, val } if key == k as u32 => Some(val),
                _ => None,
            });
            for &r in rs {
                if r != w {
                    edges.push(Edge::data(r, w, RW, k as u32, INIT, val.unwrap_or(NONE)));
                }
            }
        }
    }
    Ok(Facts { edges, findings })
}
