//! Witnesses of transactional anomalies: built as data (labelled transactions and steps),
//! one sentence per dependency edge saying which transaction must precede which and why.
//!
//! Transactions are labelled `T` followed by their operation id (`T17` is operation 17 of
//! the history), so labels agree across every anomaly of one history.

use super::graph::{Edge, Graph, PROC, RT, RW, WR, WW};
use super::models::Anomaly;
use super::parse::{Mop, Obs, TxnHistory, Workload, INIT, NONE};
use crate::verdict::{Minimality, Step, Witness, WitnessOp};
use faultline_history::Operation;

/// One anomaly found, explained.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The anomaly.
    pub anomaly: Anomaly,
    /// The key, when it concerns one key.
    pub key: Option<String>,
    /// The transactions involved (indices of `Paired::ops`), in the order they are named.
    pub txns: Vec<usize>,
    /// One sentence.
    pub summary: String,
    /// The explanation.
    pub steps: Vec<Step>,
    /// Whether it holds only if an `info` transaction committed, which the checker
    /// inferred from a read of its writes: true under every model that forbids aborted
    /// reads, not under read uncommitted, where that read may have seen a write later
    /// rolled back.
    pub assumes_commit: bool,
}

/// The label of transaction `t`.
pub(crate) fn label(t: u32) -> String {
    format!("T{t}")
}

/// A list as `[1 2 3]`, or its last `keep` elements before `end` as `[… 7 8 9]`.
pub(crate) fn list_text(h: &TxnHistory, list: &[u32], end: usize) -> String {
    let end = end.min(list.len());
    const KEEP: usize = 6;
    let start = end.saturating_sub(KEEP);
    let mut s = String::from("[");
    if start > 0 {
        s.push_str("… ");
    }
    let shown: Vec<String> = list[start..end].iter().map(|&v| h.val_text(v)).collect();
    s.push_str(&shown.join(" "));
    if end < list.len() {
        s.push_str(if shown.is_empty() { "…" } else { " …" });
    }
    s.push(']');
    s
}

/// What the read at `mop` of `t` returned, as text.
pub(crate) fn read_text(h: &TxnHistory, t: u32, mop: usize) -> String {
    match h.txns[t as usize].mops.get(mop) {
        Some(Mop::Read {
            obs: Obs::List(l), ..
        }) => list_text(h, l, l.len()),
        Some(Mop::Read {
            obs: Obs::Value(v), ..
        }) => h.val_text(*v),
        _ => "?".into(),
    }
}

/// The version order of one list-append key and the read it was taken from.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyOrder {
    pub list: Vec<u32>,
    /// The writer of each element (`NONE`: nobody appended it).
    pub writers: Vec<u32>,
    pub source: u32,
    pub usable: bool,
}

impl KeyOrder {
    fn position(&self, v: u32) -> Option<usize> {
        self.list.iter().position(|&x| x == v)
    }
}

/// One edge in words.
pub(crate) fn describe_edge(h: &TxnHistory, orders: &[KeyOrder], e: &Edge) -> String {
    let (f, t) = (label(e.from), label(e.to));
    let of = |x: u32| &h.txns[x as usize];
    match e.kind {
        PROC => format!(
            "{f} < {t} (process order): process {} ran {f}, then {t}",
            of(e.from).process
        ),
        RT => format!(
            "{f} < {t} (real time): {f} completed (event {}) before {t} was invoked (event {})",
            of(e.from).complete.unwrap_or(0),
            of(e.to).invoke
        ),
        _ => match h.workload {
            Workload::ListAppend => append_edge(h, orders, e, &f, &t),
            Workload::RwRegister => register_edge(h, e, &f, &t),
        },
    }
}

fn append_edge(h: &TxnHistory, orders: &[KeyOrder], e: &Edge, f: &str, t: &str) -> String {
    let k = h.key_text(e.key);
    let order = &orders[e.key as usize];
    let src = label(order.source);
    let pos_b = order.position(e.b);
    let evidence = |end: usize| format!("{src} read key {k} as {}", list_text(h, &order.list, end));
    match e.kind {
        WW => match (order.position(e.a), pos_b) {
            (Some(_), Some(pb)) => format!(
                "{f} < {t} (ww): {f} appended {} to key {k} before {t} appended {}, because {}",
                h.val_text(e.a),
                h.val_text(e.b),
                evidence(pb + 1)
            ),
            _ => format!(
                "{f} < {t} (ww): {t} committed an append of {} to key {k} that no other transaction read, so it came after every element read, the last of which, {}, {f} appended ({})",
                h.val_text(e.b),
                h.val_text(e.a),
                evidence(order.list.len())
            ),
        },
        WR => format!(
            "{f} < {t} (wr): {t} read key {k} ending with {}, which {f} appended",
            h.val_text(e.a)
        ),
        RW => {
            let seen = if e.a == NONE {
                "empty".to_string()
            } else {
                format!("ending with {}", h.val_text(e.a))
            };
            match pos_b {
                Some(pb) => format!(
                    "{f} < {t} (rw): {f} read key {k} {seen}, so it did not see {t}'s append of {}, the next element ({})",
                    h.val_text(e.b),
                    evidence(pb + 1)
                ),
                None => format!(
                    "{f} < {t} (rw): {f} read key {k} {seen}, the longest list any read shows, and {t} committed an append of {} to it that no other transaction read, so it came after",
                    h.val_text(e.b)
                ),
            }
        }
        _ => format!("{f} < {t}"),
    }
}

fn register_edge(h: &TxnHistory, e: &Edge, f: &str, t: &str) -> String {
    let k = h.key_text(e.key);
    let why = |a: u32, writer: &str| {
        if a == INIT {
            "every write follows the initial value".to_string()
        } else {
            format!("{writer} read {} before writing", h.val_text(a))
        }
    };
    match e.kind {
        WW => format!(
            "{f} < {t} (ww): {f} wrote {} to key {k} and {t} wrote {} after it, because {}",
            h.val_text(e.a),
            h.val_text(e.b),
            why(e.a, t)
        ),
        WR => format!(
            "{f} < {t} (wr): {t} read {} from key {k}, which {f} wrote",
            h.val_text(e.a)
        ),
        RW => format!(
            "{f} < {t} (rw): {f} read {} from key {k}, and {t} wrote {}, a later version, because {}",
            h.val_text(e.a),
            h.val_text(e.b),
            why(e.a, t)
        ),
        _ => format!("{f} < {t}"),
    }
}

/// The finding of one cycle.
pub(crate) fn cycle_finding(
    h: &TxnHistory,
    g: &Graph,
    orders: &[KeyOrder],
    class: Anomaly,
    cycle: &[u32],
    components: usize,
) -> Finding {
    let edges: Vec<&Edge> = cycle.iter().map(|&i| &g.edges[i as usize]).collect();
    let txns: Vec<usize> = edges.iter().map(|e| e.from as usize).collect();
    let mut path: Vec<String> = txns.iter().map(|&t| label(t as u32)).collect();
    if let Some(first) = path.first().cloned() {
        path.push(first);
    }
    let mut steps = Vec::with_capacity(edges.len() + 1);
    for e in &edges {
        let rel = match e.kind {
            WW => "ww",
            WR => "wr",
            RW => "rw",
            PROC => "process",
            _ => "realtime",
        };
        steps.push(Step::relation(
            rel,
            &label(e.from),
            &label(e.to),
            describe_edge(h, orders, e),
        ));
    }
    let more = if components > 1 {
        format!(" (found in {components} components; this is the shortest)")
    } else {
        String::new()
    };
    steps.push(Step::say(format!(
        "So {} must precede itself: {}{more}.",
        path[0],
        class.meaning()
    )));
    let assumes_commit = txns
        .iter()
        .any(|&t| h.txns[t].status == super::parse::Status::Info);
    // The reads the explanation cites as evidence of a key's order, after the cycle.
    let mut txns = txns;
    if h.workload == Workload::ListAppend {
        for e in &edges {
            if e.kind & (WW | RW) != 0 {
                if let Some(o) = orders.get(e.key as usize) {
                    if o.usable && !o.list.is_empty() && !txns.contains(&(o.source as usize)) {
                        txns.push(o.source as usize);
                    }
                }
            }
        }
    }
    Finding {
        anomaly: class,
        key: None,
        txns,
        summary: path.join(" < "),
        steps,
        assumes_commit,
    }
}

/// The witness of a model's violation: every anomaly found that the model forbids, the
/// first (the most severe) in full.
pub(crate) fn model_witness(
    model: &str,
    op_of: &dyn Fn(usize) -> Option<Operation>,
    findings: &[&Finding],
) -> Witness {
    let mut ops: Vec<WitnessOp> = Vec::new();
    let mut steps = Vec::new();
    let names: Vec<&str> = findings.iter().map(|f| f.anomaly.as_str()).collect();
    for f in findings {
        if findings.len() > 1 {
            steps.push(Step {
                relation: Some("anomaly".into()),
                from: None,
                to: None,
                text: format!("{} ({}): {}", f.anomaly, f.anomaly.meaning(), f.summary),
            });
        }
        steps.extend(f.steps.iter().cloned());
        for &t in &f.txns {
            let l = label(t as u32);
            if !ops.iter().any(|o| o.label == l) {
                if let Some(op) = op_of(t) {
                    ops.push(WitnessOp { label: l, op });
                }
            }
        }
    }
    let first = findings[0];
    let summary = if findings.len() == 1 {
        format!(
            "{} ({}): {}",
            first.anomaly,
            first.anomaly.meaning(),
            first.summary
        )
    } else {
        format!("{} anomaly types: {}", findings.len(), names.join(", "))
    };
    Witness {
        model: model.to_string(),
        kind: first.anomaly.as_str().to_string(),
        key: if findings.len() == 1 {
            first.key.clone()
        } else {
            None
        },
        summary,
        ops,
        steps,
        minimality: if findings.len() == 1 {
            Minimality::ByConstruction
        } else {
            Minimality::EachMinimal
        },
    }
}

/// Two committed appends to `key` that no other transaction read, where either order closes a cycle
/// without adjacent anti-dependencies (`ab`: a path from `a` to `b`, `ba` back).
#[allow(clippy::too_many_arguments)]
pub(crate) fn unseen_pair(
    h: &TxnHistory,
    g: &Graph,
    orders: &[KeyOrder],
    key: u32,
    (a, va): (u32, u32),
    (b, vb): (u32, u32),
    ab: &[u32],
    ba: &[u32],
) -> Finding {
    let (al, bl, kt) = (label(a), label(b), h.key_text(key));
    let mut txns = vec![a as usize, b as usize];
    let mut steps = vec![Step::say(format!(
        "{al} appended {} and {bl} appended {} to key {kt}; no other transaction read either, so one of them was installed first",
        h.val_text(va),
        h.val_text(vb)
    ))];
    for (first, second, path) in [(&al, &bl, ba), (&bl, &al, ab)] {
        steps.push(Step::say(format!(
            "If {first}'s append came first ({first} < {second}, ww), this closes a cycle whose anti-dependencies are never adjacent:"
        )));
        for &e in path {
            let edge = &g.edges[e as usize];
            for t in [edge.from as usize, edge.to as usize] {
                if !txns.contains(&t) {
                    txns.push(t);
                }
            }
            let rel = match edge.kind {
                WW => "ww",
                WR => "wr",
                RW => "rw",
                PROC => "process",
                _ => "realtime",
            };
            let text = if h.workload == Workload::ListAppend && edge.kind & (WW | RW) != 0 {
                unseen_edge_text(h, edge)
            } else {
                describe_edge(h, orders, edge)
            };
            steps.push(Step::relation(
                rel,
                &label(edge.from),
                &label(edge.to),
                text,
            ));
        }
    }
    steps.push(Step::say(
        "Either order breaks snapshot isolation: the two transactions wrote the same key concurrently, and one update was lost",
    ));
    let assumes_commit = txns
        .iter()
        .any(|&t| h.txns[t].status == super::parse::Status::Info);
    Finding {
        anomaly: Anomaly::LostUpdate,
        key: Some(kt.clone()),
        txns,
        summary: format!("{al} and {bl} appended to key {kt} without either seeing the other"),
        steps,
        assumes_commit,
    }
}

/// An edge of a path in [`unseen_pair`], worded without the key's full order.
fn unseen_edge_text(h: &TxnHistory, e: &Edge) -> String {
    let (f, t, k) = (label(e.from), label(e.to), h.key_text(e.key));
    if e.kind == WW {
        format!(
            "{f} < {t} (ww): {f}'s append of {} to key {k} precedes {t}'s append of {}",
            h.val_text(e.a),
            h.val_text(e.b)
        )
    } else {
        format!(
            "{f} < {t} (rw): {f} read key {k} without {t}'s append of {}",
            h.val_text(e.b)
        )
    }
}
