//! List-append: version orders from reads, the non-cycle anomalies, dependency edges.
//!
//! Every value is appended at most once per key, and a read returns the whole list, so a
//! committed read reveals a prefix of the key's version order. The order of a key is its
//! longest committed read (a transaction's own appends cut off first); every other read
//! must be a prefix of it, else the key shows `incompatible-order` and no edge is drawn
//! from it. An append that no other transaction read, by a transaction known to have committed (`ok`,
//! or `info` with another append seen), came after every element read: reads show the
//! whole list.
//!
//! Edges: `ww` between the writers of consecutive elements (and from the last element's
//! writer to each unseen committed append), `wr` from the writer of a read's last element
//! to the reader, `rw` from a reader to the writer of the element after what it read (or
//! to each unseen committed append, when it read the whole known list).

use super::explain::{label, list_text, read_text, Finding, KeyOrder};
use super::graph::{Edge, RW, WR, WW};
use super::models::Anomaly;
use super::parse::{Mop, Obs, Status, TxnHistory, TxnInputError, NONE};
use crate::verdict::Step;
use rustc_hash::FxHashMap;

/// What the list-append analysis found.
pub(crate) struct Facts {
    pub edges: Vec<Edge>,
    pub findings: Vec<Finding>,
    /// Why some cycles could not be searched (keys without a version order).
    pub incomplete: Vec<String>,
    pub orders: Vec<KeyOrder>,
    /// Keys with two or more committed appends no other transaction read, and their writers (with
    /// one value each): their order is free, and snapshot isolation may depend on it.
    pub unseen: Vec<(u32, Vec<(u32, u32)>)>,
}

/// One committed read, its transaction's own elements cut off.
#[derive(Clone, Copy)]
struct ReadRec {
    txn: u32,
    mop: u32,
    len: u32,
}

/// The writer of each appended (key, value) and the value's position in the key's order.
#[derive(Clone, Copy)]
struct Appended {
    txn: u32,
    pos: u32,
}

fn seen<'a>(h: &'a TxnHistory, r: &ReadRec) -> &'a [u32] {
    match &h.txns[r.txn as usize].mops[r.mop as usize] {
        Mop::Read {
            obs: Obs::List(l), ..
        } => &l[..r.len as usize],
        _ => &[],
    }
}

/// The values `t` appends to `key`, in order.
fn appends_of(h: &TxnHistory, t: u32, key: u32) -> impl Iterator<Item = u32> + '_ {
    h.txns[t as usize].mops.iter().filter_map(move |m| match m {
        Mop::Append { key: k, val } if *k == key => Some(*val),
        _ => None,
    })
}

fn finding(
    anomaly: Anomaly,
    key: Option<String>,
    txns: &[u32],
    summary: String,
    steps: Vec<Step>,
) -> Finding {
    Finding {
        anomaly,
        key,
        txns: txns.iter().map(|&t| t as usize).collect(),
        summary,
        steps,
        assumes_commit: false,
    }
}

/// Analyses a list-append history.
pub(crate) fn analyse(h: &TxnHistory) -> Result<Facts, TxnInputError> {
    let nk = h.key_count;
    let mut writers: FxHashMap<(u32, u32), Appended> = FxHashMap::default();
    writers.reserve(h.txns.len() * 2);
    let mut appends_by_key: Vec<Vec<(u32, u32)>> = vec![Vec::new(); nk];
    for (i, t) in h.txns.iter().enumerate() {
        for m in &t.mops {
            if let Mop::Append { key, val } = *m {
                let a = Appended {
                    txn: i as u32,
                    pos: NONE,
                };
                if let Some(prev) = writers.insert((key, val), a) {
                    return Err(TxnInputError::NotUnique {
                        what: "appended",
                        key: h.key_text(key),
                        value: h.val_text(val),
                        first: h.txns[prev.txn as usize].op,
                        second: t.op,
                    });
                }
                appends_by_key[key as usize].push((val, i as u32));
            }
        }
    }
    let mut findings = Vec::new();
    let mut reads: Vec<Vec<ReadRec>> = vec![Vec::new(); nk];
    for (i, t) in h.txns.iter().enumerate() {
        if t.status == Status::Ok {
            scan_txn(h, i as u32, &mut reads, &mut findings);
        }
    }
    // Version orders.
    let mut orders: Vec<KeyOrder> = vec![KeyOrder::default(); nk];
    let mut incomplete = Vec::new();
    let failed = |writers: &FxHashMap<(u32, u32), Appended>, k: usize, v: u32| {
        writers
            .get(&(k as u32, v))
            .is_some_and(|a| h.txns[a.txn as usize].status == Status::Fail)
    };
    for k in 0..nk {
        let Some(longest) = reads[k]
            .iter()
            .max_by_key(|r| (r.len, std::cmp::Reverse(r.txn)))
            .copied()
        else {
            orders[k].usable = true;
            continue;
        };
        let mut list: Vec<u32> = seen(h, &longest).to_vec();
        let kt = h.key_text(k as u32);
        if let Some(bad) = reads[k]
            .iter()
            .find(|r| !list.starts_with(seen(h, r)))
            .copied()
        {
            // Reads that disagree only through aborted elements (a database that rolled
            // an append back after others read it) still agree on the committed order.
            let filtered: Vec<Vec<u32>> = reads[k]
                .iter()
                .map(|r| {
                    seen(h, r)
                        .iter()
                        .copied()
                        .filter(|&v| !failed(&writers, k, v))
                        .collect()
                })
                .collect();
            let longest_f = filtered
                .iter()
                .max_by_key(|l| l.len())
                .cloned()
                .unwrap_or_default();
            let agree = filtered.iter().all(|l| longest_f.starts_with(l));
            let (a, b) = (label(longest.txn), label(bad.txn));
            findings.push(finding(
                Anomaly::IncompatibleOrder,
                Some(kt.clone()),
                &[longest.txn, bad.txn],
                format!("{a} and {b} read key {kt} in orders no single list explains"),
                vec![
                    Step::say(format!(
                        "{a} read key {kt} as {}",
                        list_text(h, &list, list.len())
                    )),
                    Step::say(format!(
                        "{b} read key {kt} as {}, which is not a prefix of it",
                        read_text(h, bad.txn, bad.mop as usize)
                    )),
                ],
            ));
            if agree {
                let dirty = reads[k]
                    .iter()
                    .zip(&filtered)
                    .find(|(r, l)| l.len() < r.len as usize)
                    .map(|(r, _)| *r);
                if let Some(r) = dirty {
                    let v = seen(h, &r)
                        .iter()
                        .copied()
                        .find(|&v| failed(&writers, k, v))
                        .unwrap_or(NONE);
                    let w = writers.get(&(k as u32, v)).map_or(NONE, |a| a.txn);
                    let (wl, rl) = (label(w), label(r.txn));
                    findings.push(finding(
                        Anomaly::G1a,
                        Some(kt.clone()),
                        &[w, r.txn],
                        format!(
                            "{rl} read {}, appended to key {kt} by {wl}, which aborted",
                            h.val_text(v)
                        ),
                        vec![
                            Step::say(format!(
                                "{wl} appended {} to key {kt} and failed (it did not commit)",
                                h.val_text(v)
                            )),
                            Step::say(format!(
                                "{rl} committed and read key {kt} as {}",
                                read_text(h, r.txn, r.mop as usize)
                            )),
                        ],
                    ));
                }
                for (r, l) in reads[k].iter_mut().zip(&filtered) {
                    r.len = l.len() as u32;
                }
                list = longest_f;
            } else {
                incomplete.push(format!("key {kt}: its reads disagree, so no version order was inferred and cycles through it were not searched"));
                continue;
            }
        }
        // Each transaction's appends must show in the order it made them.
        let mut rank: FxHashMap<u32, (usize, u32)> = FxHashMap::default();
        let mut swapped = None;
        for &v in &list {
            let Some(a) = writers.get(&(k as u32, v)) else {
                continue;
            };
            let Some(r) = appends_of(h, a.txn, k as u32).position(|x| x == v) else {
                continue;
            };
            if let Some(&(prev, pv)) = rank.get(&a.txn) {
                if r < prev {
                    swapped = Some((a.txn, pv, v));
                    break;
                }
            }
            rank.insert(a.txn, (r, v));
        }
        if let Some((w, first, second)) = swapped {
            let (wl, sl) = (label(w), label(longest.txn));
            findings.push(finding(
                Anomaly::IncompatibleOrder,
                Some(kt.clone()),
                &[w, longest.txn],
                format!("{sl} read key {kt} with {wl}'s appends out of the order {wl} made them"),
                vec![
                    Step::say(format!(
                        "{wl} appended {} to key {kt} before {}",
                        h.val_text(second),
                        h.val_text(first)
                    )),
                    Step::say(format!(
                        "{sl} read key {kt} as {}, with {} first",
                        list_text(h, &list, list.len()),
                        h.val_text(first)
                    )),
                ],
            ));
            incomplete.push(format!("key {kt}: a read shows a transaction's appends out of order, so no version order was inferred and cycles through it were not searched"));
            continue;
        }
        let mut dup = None;
        let mut list_writers = Vec::with_capacity(list.len());
        for (i, &v) in list.iter().enumerate() {
            match writers.get_mut(&(k as u32, v)) {
                Some(a) if a.pos != NONE => {
                    dup = Some(i);
                    break;
                }
                Some(a) => {
                    a.pos = i as u32;
                    list_writers.push(a.txn);
                }
                None => list_writers.push(NONE),
            }
        }
        if let Some(i) = dup {
            let a = label(longest.txn);
            findings.push(finding(
                Anomaly::DuplicateElements,
                Some(kt.clone()),
                &[longest.txn],
                format!("{a} read key {kt} with {} twice", h.val_text(list[i])),
                vec![Step::say(format!(
                    "{a} read key {kt} as {}: {} appears twice, but it was appended once",
                    list_text(h, &list, list.len()),
                    h.val_text(list[i])
                ))],
            ));
            for &v in &list {
                if let Some(a) = writers.get_mut(&(k as u32, v)) {
                    a.pos = NONE;
                }
            }
            incomplete.push(format!("key {kt}: a read shows an element twice, so no version order was inferred and cycles through it were not searched"));
            continue;
        }
        orders[k] = KeyOrder {
            list,
            writers: list_writers,
            source: longest.txn,
            usable: true,
        };
    }
    // Which info transactions committed: those with an append seen.
    let committed = |t: u32, writers: &FxHashMap<(u32, u32), Appended>| -> bool {
        let tx = &h.txns[t as usize];
        match tx.status {
            Status::Ok => true,
            Status::Fail => false,
            Status::Info => tx.mops.iter().any(|m| match m {
                Mop::Append { key, val } => {
                    writers.get(&(*key, *val)).is_some_and(|a| a.pos != NONE)
                }
                _ => false,
            }),
        }
    };
    let mut edges = Vec::with_capacity(h.txns.len() * 4);
    let mut unseen = Vec::new();
    for k in 0..nk {
        let order = &orders[k];
        if !order.usable {
            continue;
        }
        let key = k as u32;
        let kt = || h.key_text(key);
        let list = &order.list;
        let lw = &order.writers;
        let at = |i: usize| Some(lw[i]).filter(|&w| w != NONE);
        let status = |t: u32| h.txns[t as usize].status;
        // Garbage, aborted and dirty elements; ww between consecutive committed writers.
        let mut prev: Option<(u32, u32)> = None;
        let mut failed_at: Option<(usize, u32)> = None;
        let mut reported = (false, false, false);
        for (i, &v) in list.iter().enumerate() {
            match at(i) {
                None => {
                    if !reported.0 {
                        reported.0 = true;
                        let s = label(order.source);
                        findings.push(finding(
                            Anomaly::GarbageRead,
                            Some(kt()),
                            &[order.source],
                            format!(
                                "{s} read {} in key {}, which no transaction appended",
                                h.val_text(v),
                                kt()
                            ),
                            vec![Step::say(format!(
                                "{s} read key {} as {}; no transaction appended {}",
                                kt(),
                                list_text(h, list, i + 1),
                                h.val_text(v)
                            ))],
                        ));
                    }
                }
                Some(w) if status(w) == Status::Fail => {
                    if !reported.1 {
                        reported.1 = true;
                        let r = reads[k]
                            .iter()
                            .filter(|r| r.len as usize > i)
                            .min_by_key(|r| r.len)
                            .map_or(order.source, |r| r.txn);
                        let (wl, rl) = (label(w), label(r));
                        findings.push(finding(
                            Anomaly::G1a,
                            Some(kt()),
                            &[w, r],
                            format!(
                                "{rl} read {}, appended to key {} by {wl}, which aborted",
                                h.val_text(v),
                                kt()
                            ),
                            vec![
                                Step::say(format!(
                                    "{wl} appended {} to key {} and failed (it did not commit)",
                                    h.val_text(v),
                                    kt()
                                )),
                                Step::say(format!(
                                    "{rl} committed and read key {} with {} in it",
                                    kt(),
                                    h.val_text(v)
                                )),
                            ],
                        ));
                    }
                    failed_at.get_or_insert((i, w));
                }
                Some(w) => {
                    if let (Some((fi, fw)), false) = (failed_at, reported.2) {
                        reported.2 = true;
                        let (fl, wl) = (label(fw), label(w));
                        findings.push(finding(
                            Anomaly::DirtyUpdate,
                            Some(kt()),
                            &[fw, w, order.source],
                            format!("{wl} appended {} to key {} on top of {fl}'s aborted append of {}", h.val_text(v), kt(), h.val_text(list[fi])),
                            vec![
                                Step::say(format!("{fl} appended {} to key {} and failed (it did not commit)", h.val_text(list[fi]), kt())),
                                Step::say(format!(
                                    "{} read key {} as {}: {wl}'s append of {} follows the aborted one",
                                    label(order.source),
                                    kt(),
                                    list_text(h, list, i + 1),
                                    h.val_text(v)
                                )),
                            ],
                        ));
                    }
                    if let Some((pw, pv)) = prev {
                        if pw != w {
                            edges.push(Edge::data(pw, w, WW, key, pv, v));
                        }
                    }
                    prev = Some((w, v));
                }
            }
        }
        let last_writer = prev;
        // Reads: wr, rw, intermediate reads, lost updates.
        let mut full_readers: Vec<u32> = Vec::new();
        let mut full_then_append: Vec<u32> = Vec::new();
        let mut g1b_reported = false;
        let mut lost_reported = false;
        for r in &reads[k] {
            let p = r.len as usize;
            let rt = r.txn;
            let last = if p > 0 { list[p - 1] } else { NONE };
            if p > 0 {
                if let Some(w) = at(p - 1) {
                    if w != rt && status(w) != Status::Fail {
                        edges.push(Edge::data(w, rt, WR, key, last, NONE));
                        if !g1b_reported && appends_of(h, w, key).last() != Some(last) {
                            g1b_reported = true;
                            let (wl, rl) = (label(w), label(rt));
                            let later = appends_of(h, w, key)
                                .skip_while(|&x| x != last)
                                .nth(1)
                                .unwrap_or(NONE);
                            findings.push(finding(
                                Anomaly::G1b,
                                Some(kt()),
                                &[w, rt],
                                format!("{rl} read key {} ending with {}, an intermediate state of {wl}", kt(), h.val_text(last)),
                                vec![
                                    Step::say(format!("{wl} appended {} to key {}, then {}", h.val_text(last), kt(), h.val_text(later))),
                                    Step::say(format!(
                                        "{rl} read key {} as {}: it saw {wl}'s first append but not its last",
                                        kt(),
                                        read_text(h, rt, r.mop as usize)
                                    )),
                                ],
                            ));
                        }
                    }
                }
            }
            // The next committed element's writer.
            let next = (p..list.len()).find_map(|i| {
                at(i)
                    .filter(|&w| status(w) != Status::Fail)
                    .map(|w| (w, list[i]))
            });
            match next {
                Some((w, v)) if w != rt => edges.push(Edge::data(rt, w, RW, key, last, v)),
                Some(_) => {}
                None => full_readers.push(rt),
            }
            // Lost update (G-cursor on one key): elements of others between what this
            // transaction read and its own first append to the key.
            if !lost_reported {
                if let Some(mv) = appends_of(h, rt, key).next() {
                    let q = writers.get(&(key, mv)).map_or(NONE, |a| a.pos);
                    let end = if q == NONE { list.len() } else { q as usize };
                    let between = (p.min(end)..end).find_map(|i| {
                        at(i)
                            .filter(|&w| w != rt && status(w) != Status::Fail)
                            .map(|w| (w, list[i]))
                    });
                    if let Some((w, v)) = between {
                        lost_reported = true;
                        let (rl, wl) = (label(rt), label(w));
                        let placed = if q == NONE {
                            format!(
                                "{rl}'s append of {} shows in no read, so it came after {}",
                                h.val_text(mv),
                                h.val_text(v)
                            )
                        } else {
                            format!(
                                "{} read key {} as {}",
                                label(order.source),
                                kt(),
                                list_text(h, list, q as usize + 1)
                            )
                        };
                        findings.push(finding(
                            Anomaly::LostUpdate,
                            Some(kt()),
                            &[rt, w, order.source],
                            format!("{wl} appended {} to key {} between {rl}'s read and {rl}'s own append", h.val_text(v), kt()),
                            vec![
                                Step::say(format!("{rl} read key {} as {} and appended {}", kt(), read_text(h, rt, r.mop as usize), h.val_text(mv))),
                                Step::say(format!("{wl} appended {} in between: {placed}", h.val_text(v))),
                            ],
                        ));
                    } else if q == NONE && p == list.len() && !full_then_append.contains(&rt) {
                        full_then_append.push(rt);
                    }
                }
            }
        }
        if full_then_append.len() >= 2 && !lost_reported {
            let (a, b) = (full_then_append[0], full_then_append[1]);
            let (al, bl) = (label(a), label(b));
            findings.push(finding(
                Anomaly::LostUpdate,
                Some(kt()),
                &[a, b],
                format!("{al} and {bl} read the same state of key {} and both appended to it", kt()),
                vec![
                    Step::say(format!("{al} and {bl} both read key {} as {} and appended to it; neither append shows in any read", kt(), list_text(h, list, list.len()))),
                    Step::say("Whichever committed second did not see the other's append: one update was lost".to_string()),
                ],
            ));
        }
        // Committed appends nobody read came after every element read.
        let mut unseen_writers: Vec<(u32, u32)> = Vec::new();
        for &(v, u) in &appends_by_key[k] {
            if writers.get(&(key, v)).is_some_and(|a| a.pos != NONE) || !committed(u, &writers) {
                continue;
            }
            if !unseen_writers.iter().any(|w| w.0 == u) {
                unseen_writers.push((u, v));
            }
            if let Some((lw, lv)) = last_writer {
                if lw != u {
                    edges.push(Edge::data(lw, u, WW, key, lv, v));
                }
            }
            for &r in &full_readers {
                if r != u {
                    let last = list.last().copied().unwrap_or(NONE);
                    edges.push(Edge::data(r, u, RW, key, last, v));
                }
            }
        }
        if unseen_writers.len() >= 2 {
            unseen.push((key, unseen_writers));
        }
    }
    Ok(Facts {
        edges,
        findings,
        incomplete,
        orders,
        unseen,
    })
}

/// Reads of one committed transaction: internal consistency, future reads, and the
/// read records (own elements cut off). Allocates nothing unless it reports.
fn scan_txn(h: &TxnHistory, t: u32, reads: &mut [Vec<ReadRec>], findings: &mut Vec<Finding>) {
    let tx = &h.txns[t as usize];
    let appends_in = |range: std::ops::Range<usize>, key: u32| {
        tx.mops[range].iter().filter_map(move |m| match m {
            Mop::Append { key: k, val } if *k == key => Some(*val),
            _ => None,
        })
    };
    for (i, m) in tx.mops.iter().enumerate() {
        let Mop::Read {
            key,
            obs: Obs::List(list),
        } = m
        else {
            continue;
        };
        let key = *key;
        let n = tx.mops.len();
        let appends_before = appends_in(0..i, key).next().is_some();
        let appends_later = appends_in(i + 1..n, key).next().is_some();
        let tl = || label(t);
        let kt = || h.key_text(key);
        // Future read: an element this transaction appends only later.
        if appends_later {
            if let Some(v) = list
                .iter()
                .copied()
                .find(|&v| appends_in(i + 1..n, key).any(|x| x == v))
            {
                let (tl, kt) = (tl(), kt());
                findings.push(finding(
                    Anomaly::FutureRead,
                    Some(kt.clone()),
                    &[t],
                    format!(
                        "{tl} read {} in key {kt} before appending it",
                        h.val_text(v)
                    ),
                    vec![Step::say(format!(
                        "{tl} read key {kt} as {}, which holds {}, and appended {} only afterwards",
                        list_text(h, list, list.len()),
                        h.val_text(v),
                        h.val_text(v)
                    ))],
                ));
            }
        }
        // Internal consistency: the last read of the key and the appends since, or
        // without an earlier read, the appends so far at the end.
        let last_read = tx.mops[..i]
            .iter()
            .rposition(|m| matches!(m, Mop::Read { key: k, .. } if *k == key));
        let from = last_read.map_or(0, |j| j + 1);
        let since_len = appends_in(from..i, key).count();
        let tail_ok = list.len() >= since_len
            && appends_in(from..i, key)
                .zip(&list[list.len() - since_len..])
                .all(|(a, b)| a == *b);
        let consistent = tail_ok
            && match last_read.map(|j| &tx.mops[j]) {
                Some(Mop::Read {
                    obs: Obs::List(prev),
                    ..
                }) => list.len() == prev.len() + since_len && list.starts_with(prev),
                _ => true,
            };
        if !consistent {
            let (tl, kt) = (tl(), kt());
            let since: Vec<u32> = appends_in(from..i, key).collect();
            let expected = match last_read {
                Some(j) => format!(
                    "{} and then its own appends {}",
                    read_text(h, t, j),
                    list_text(h, &since, since.len())
                ),
                None => format!(
                    "a list ending with its own appends {}",
                    list_text(h, &since, since.len())
                ),
            };
            findings.push(finding(
                Anomaly::Internal,
                Some(kt.clone()),
                &[t],
                format!("{tl} read key {kt} inconsistently with its own earlier operations"),
                vec![Step::say(format!(
                    "{tl} read key {kt} as {}, but its own earlier operations say it holds {expected}",
                    list_text(h, list, list.len())
                ))],
            ));
        }
        // The read as evidence: cut at the first own element.
        let cut = if !appends_before && !appends_later {
            list.len()
        } else {
            list.iter()
                .position(|&v| appends_in(0..n, key).any(|x| x == v))
                .unwrap_or(list.len())
        };
        reads[key as usize].push(ReadRec {
            txn: t,
            mop: i as u32,
            len: cut as u32,
        });
    }
}
