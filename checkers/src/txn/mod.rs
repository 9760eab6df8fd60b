//! Transactional isolation checking: list-append and rw-register histories, after Adya
//! (2000) and Elle (Kingsbury & Alvaro, VLDB 2020).
//!
//! A transactional history has only `f: "txn"` operations whose values are lists of
//! micro-operations (`parse`). The checker infers what it can of each key's version order
//! (`append`, `register`), finds the non-cycle anomalies on the way, builds the
//! dependency graph (ww, wr, rw edges, plus process and real-time edges when a model
//! needs them; `graph`), and searches each strongly connected component for the shortest
//! cycle of every anomaly class (`search`). Each model is then invalid when an anomaly it
//! forbids was found ([`models`]), valid when none was and the checks are complete for it,
//! and unknown otherwise (never valid on a guess).

mod append;
mod explain;
pub mod fast;
pub mod gen;
mod graph;
pub mod models;
mod parse;
mod register;
mod search;
mod strict;
mod table;

pub use explain::Finding;
pub use models::{Anomaly, TxnModel, UnknownTxnModel};
pub use parse::{is_txn_history, TxnInputError, Workload};
pub use table::{txn_model_table, TxnModelTable, TxnRow, TxnRowStatus};

use crate::verdict::Verdict;
use explain::{cycle_finding, model_witness, KeyOrder};
use faultline_history::{Operation, Paired};
use graph::{Graph, DATA, PROC, RT};
use parse::{Mop, Obs, Status, TxnHistory, INIT};
use search::Variants;
use std::time::{Duration, Instant};

/// Options of the transactional checker.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnOptions {
    /// Time allowed to the cycle search; past it the searches stop and models they
    /// would decide are unknown. `None`: no limit.
    pub time_limit: Option<Duration>,
    /// Edges the cycle search may visit in all before it stops (the same effect).
    pub search_budget: u64,
}

impl Default for TxnOptions {
    fn default() -> Self {
        TxnOptions {
            time_limit: None,
            search_budget: 500_000_000,
        }
    }
}

/// Everything the checker found in a transactional history.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnReport {
    /// The workload recognised.
    pub workload: Workload,
    /// Transactions checked.
    pub txns: usize,
    /// Every anomaly found: one example per anomaly type, most severe first.
    pub findings: Vec<Finding>,
    /// Why some parts could not be checked (keys with no version order, a search cut
    /// short); models not violated are then unknown.
    pub incomplete: Vec<String>,
    /// Whether the cycle search over the dependency edges alone ran to its end.
    pub searched: bool,
    /// rw-register only: the strongest order-respecting serialization found that
    /// explains every read (`serializable`, `strong-session-serializable` or
    /// `strict-serializable`), which proves that model and every weaker one.
    pub proof: Option<TxnModel>,
    /// list-append only: why the snapshot-isolation models are left undecided when no
    /// anomaly they forbid was found (see `unseen_orders`).
    pub si_open: Option<String>,
    /// When `si_open`: the cycle classes found once the unseen appends are ordered by
    /// completion (a guess); a model that forbids none of them holds.
    pub si_guess: Option<Vec<Anomaly>>,
}

/// Which process and real-time edges `models` need.
fn variants_for(models: &[TxnModel]) -> Variants {
    let mut v = Variants {
        process: false,
        realtime: false,
    };
    for m in models {
        let (p, r) = m.needs();
        v.process |= p;
        v.realtime |= r;
    }
    v
}

/// Analyses a transactional history, searching the cycles `models` need (process and
/// real-time edges only when one of them uses them).
pub fn analyse(
    paired: &Paired,
    models: &[TxnModel],
    opts: &TxnOptions,
) -> Result<TxnReport, TxnInputError> {
    analyse_history(&parse::parse(paired)?, models, opts)
}

/// Analyses transactions read by the fast path ([`fast::parse_jsonl`]).
pub fn analyse_fast(
    txns: &fast::FastTxns,
    models: &[TxnModel],
    opts: &TxnOptions,
) -> Result<TxnReport, TxnInputError> {
    analyse_history(&txns.history, models, opts)
}

fn analyse_history(
    h: &TxnHistory,
    models: &[TxnModel],
    opts: &TxnOptions,
) -> Result<TxnReport, TxnInputError> {
    let deadline = opts.time_limit.map(|d| Instant::now() + d);
    let variants = variants_for(models);
    let (mut edges, mut findings, mut incomplete, orders, unseen) = match h.workload {
        Workload::ListAppend => {
            let f = append::analyse(h)?;
            (f.edges, f.findings, f.incomplete, f.orders, f.unseen)
        }
        Workload::RwRegister => {
            let f = register::analyse(h)?;
            (
                f.edges,
                f.findings,
                Vec::new(),
                Vec::<KeyOrder>::new(),
                Vec::new(),
            )
        }
    };
    if variants.process || variants.realtime {
        graph::process_edges(h, &mut edges);
    }
    if variants.realtime {
        graph::realtime_edges(h, &mut edges);
    }
    let g = Graph::new(h.txns.len(), edges);
    let cycles = search::search(&g, variants, opts.search_budget, deadline);
    if !cycles.complete {
        incomplete.push(
            "the cycle search ran out of its time or work budget before it searched every component"
                .into(),
        );
    }
    for c in &cycles.found {
        let n = cycles
            .components
            .iter()
            .find(|(a, _)| *a == c.class)
            .map_or(1, |x| x.1);
        findings.push(cycle_finding(h, &g, &orders, c.class, &c.edges, n));
    }
    let si_open = unseen_orders(h, &g, &orders, &unseen, &mut findings);
    // With open pairs, guess an order of the unseen appends (by completion) and search
    // again: if that version order shows no cycle a model forbids, the model holds.
    let si_guess = si_open.as_ref().and_then(|_| {
        let mut edges = g.edges.clone();
        for (key, ws) in &unseen {
            let mut ws = ws.clone();
            ws.sort_by_key(|&(t, _)| {
                let tx = &h.txns[t as usize];
                (tx.complete.unwrap_or(u64::MAX), tx.invoke)
            });
            for pair in ws.windows(2) {
                edges.push(graph::Edge::data(
                    pair[0].0,
                    pair[1].0,
                    graph::WW,
                    *key,
                    pair[0].1,
                    pair[1].1,
                ));
            }
        }
        let guessed = Graph::new(h.txns.len(), edges);
        let c = search::search(&guessed, variants, opts.search_budget, deadline);
        c.complete
            .then(|| c.found.iter().map(|x| x.class).collect::<Vec<_>>())
    });
    // One example per anomaly type, most severe first.
    let rank = |a: Anomaly| {
        Anomaly::ALL
            .iter()
            .position(|&x| x == a)
            .unwrap_or(usize::MAX)
    };
    findings.sort_by_key(|f| rank(f.anomaly));
    findings.dedup_by_key(|f| f.anomaly);
    let proof = if h.workload == Workload::RwRegister {
        serial_proof(h, &g, variants, deadline)
    } else {
        None
    };
    Ok(TxnReport {
        workload: h.workload,
        txns: h.txns.len(),
        findings,
        incomplete,
        searched: cycles.complete,
        proof,
        si_open,
        si_guess,
    })
}

/// Snapshot isolation and unseen appends. Two committed appends to one key that no
/// read shows are ordered one way or the other; either order puts a write-write edge
/// between their transactions, which may close a cycle without adjacent
/// anti-dependencies. When both orders would (a path without adjacent anti-dependencies
/// leads each way), no version order satisfies snapshot isolation: that is reported as
/// a lost update. When neither or only one would, the pair alone is fine; with two or
/// more such open pairs in one component the choices could interact, which the checker
/// does not explore: the snapshot-isolation models are then unknown (`si_open`).
fn unseen_orders(
    h: &TxnHistory,
    g: &Graph,
    orders: &[KeyOrder],
    unseen: &[(u32, Vec<(u32, u32)>)],
    findings: &mut Vec<Finding>,
) -> Option<String> {
    if unseen.is_empty() {
        return None;
    }
    let (comp, _) = g.sccs(DATA);
    let mut open = 0usize;
    let mut first_open = None;
    let mut reported = false;
    for (key, ws) in unseen {
        for (i, &(a, va)) in ws.iter().enumerate() {
            for &(b, vb) in &ws[i + 1..] {
                if comp[a as usize] != comp[b as usize] {
                    continue;
                }
                let ab = search::apart_path(g, a, b, DATA);
                let ba = search::apart_path(g, b, a, DATA);
                match (ab, ba) {
                    (Some(p), Some(q)) if !reported => {
                        reported = true;
                        findings.push(explain::unseen_pair(
                            h,
                            g,
                            orders,
                            *key,
                            (a, va),
                            (b, vb),
                            &p,
                            &q,
                        ));
                    }
                    (Some(_), Some(_)) => {}
                    _ => {
                        open += 1;
                        first_open.get_or_insert((*key, a, b));
                    }
                }
            }
        }
    }
    match (open, first_open) {
        (2.., Some((k, a, b))) => Some(format!(
            "{open} pairs of committed appends no other transaction read (such as {} and {} on key {}) can be ordered either way, and the checker does not explore their combinations",
            explain::label(a),
            explain::label(b),
            h.key_text(k)
        )),
        _ => None,
    }
}

/// Tries to serialize an rw-register history: a topological order of the graph (with
/// process and real-time edges for the stronger proofs), ties broken by invoke order,
/// replayed against one register per key; `info` transactions count as committed when
/// a read saw one of their writes and are left out otherwise.
fn serial_proof(
    h: &TxnHistory,
    g: &Graph,
    v: Variants,
    deadline: Option<Instant>,
) -> Option<TxnModel> {
    let tries = [
        (v.realtime, DATA | PROC | RT, TxnModel::StrictSerializable),
        (v.process, DATA | PROC, TxnModel::StrongSessionSerializable),
        (true, DATA, TxnModel::Serializable),
    ];
    let seen: std::collections::HashSet<(u32, u32)> = h
        .txns
        .iter()
        .filter(|t| t.status == Status::Ok)
        .flat_map(|t| t.mops.iter())
        .filter_map(|m| match m {
            Mop::Read {
                key,
                obs: Obs::Value(v),
            } if *v != INIT => Some((*key, *v)),
            _ => None,
        })
        .collect();
    let included: Vec<bool> = h
        .txns
        .iter()
        .map(|t| match t.status {
            Status::Ok => true,
            Status::Fail => false,
            Status::Info => t
                .mops
                .iter()
                .any(|m| matches!(m, Mop::Write { key, val } if seen.contains(&(*key, *val)))),
        })
        .collect();
    for (wanted, mask, model) in tries {
        if !wanted {
            continue;
        }
        let Some(order) = topological(g, mask, h, &included) else {
            continue;
        };
        if replay(h, &order) {
            return Some(model);
        }
    }
    // The graph leaves too much unordered: search for a strict serialization, and trust
    // it only once replayed and checked against real time.
    let budget = (h.txns.len() as u64).saturating_mul(STRICT_SEARCH_PER_TXN) + 100_000;
    strict::strict_order(h, &included, budget, deadline)
        .filter(|order| strict::verified(h, &included, order))
        .map(|_| TxnModel::StrictSerializable)
}

/// How many placements the strict-serialization search may make per transaction.
const STRICT_SEARCH_PER_TXN: u64 = 400;

fn topological(g: &Graph, mask: u8, h: &TxnHistory, included: &[bool]) -> Option<Vec<u32>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let n = g.n;
    let mut indeg = vec![0u32; n];
    for e in &g.edges {
        if e.kind & mask != 0 {
            indeg[e.to as usize] += 1;
        }
    }
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = (0..n as u32)
        .filter(|&v| indeg[v as usize] == 0)
        .map(|v| Reverse((h.txns[v as usize].invoke, v)))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse((_, v))) = heap.pop() {
        order.push(v);
        for o in g.out(v) {
            if o.kind & mask == 0 {
                continue;
            }
            indeg[o.to as usize] -= 1;
            if indeg[o.to as usize] == 0 {
                heap.push(Reverse((h.txns[o.to as usize].invoke, o.to)));
            }
        }
    }
    if order.len() < n {
        return None;
    }
    order.retain(|&t| included[t as usize]);
    Some(order)
}

fn replay(h: &TxnHistory, order: &[u32]) -> bool {
    let mut state = vec![INIT; h.key_count];
    for &t in order {
        let tx = &h.txns[t as usize];
        for m in &tx.mops {
            match m {
                Mop::Write { key, val } => state[*key as usize] = *val,
                Mop::Read {
                    key,
                    obs: Obs::Value(v),
                } if tx.status == Status::Ok && state[*key as usize] != *v => return false,
                _ => {}
            }
        }
    }
    true
}

/// The verdict of `model` from a report made by [`analyse`] with `model` among its
/// models (the process and real-time cycles are searched only for the models given).
pub fn verdict_of(paired: &Paired, report: &TxnReport, model: TxnModel) -> Verdict {
    verdict_with(&|t| paired.ops.get(t).cloned(), report, model)
}

/// [`verdict_of`] with the operations of the witness given by `op_of` (the operation of
/// a transaction, by its index).
pub fn verdict_with(
    op_of: &dyn Fn(usize) -> Option<Operation>,
    report: &TxnReport,
    model: TxnModel,
) -> Verdict {
    // An info transaction seen in a read counts as committed only where aborted reads
    // are forbidden (under read uncommitted that read may have seen a rolled-back write).
    let trusted = |f: &Finding| !f.assumes_commit || model.forbids(Anomaly::G1a);
    let forbidden: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| model.forbids(f.anomaly) && trusted(f))
        .collect();
    if !forbidden.is_empty() {
        return Verdict::Invalid {
            witness: Box::new(model_witness(model.as_str(), op_of, &forbidden)),
        };
    }
    let unknown = |reason: String| Verdict::Unknown {
        reason: format!("{model}: {reason}"),
        undecided: Vec::new(),
    };
    if let Some(f) = report
        .findings
        .iter()
        .find(|f| model.forbids(f.anomaly) && !trusted(f))
    {
        return unknown(format!(
            "{} ({}) passes through an info transaction that a read saw, but under this model that read may have seen a write later rolled back",
            f.anomaly, f.summary
        ));
    }
    if !report.incomplete.is_empty() {
        return unknown(format!(
            "no anomaly it forbids was found, but {}",
            report.incomplete.join("; ")
        ));
    }
    // A stronger model that holds proves this one.
    let si_like = |m: TxnModel| m.forbids(Anomaly::GNonadjacent) && !m.forbids(Anomaly::G2Item);
    let holds_exactly = |m: TxnModel| {
        !report.findings.iter().any(|f| m.forbids(f.anomaly))
            && match report.workload {
                Workload::ListAppend => {
                    m.complete_for_list_append()
                        && (!si_like(m)
                            || report.si_open.is_none()
                            || report
                                .si_guess
                                .as_ref()
                                .is_some_and(|found| !found.iter().any(|&a| m.forbids(a))))
                }
                Workload::RwRegister => {
                    m.complete_for_register()
                        || report.proof.is_some_and(|p| p == m || p.stronger_than(m))
                }
            }
    };
    if holds_exactly(model) {
        return Verdict::Valid;
    }
    if TxnModel::ALL
        .into_iter()
        .any(|s| s.stronger_than(model) && s.needs() == (false, false) && holds_exactly(s))
    {
        return Verdict::Valid;
    }
    match report.workload {
        Workload::ListAppend if si_like(model) && report.si_open.is_some() => unknown(format!(
            "no anomaly it forbids was found, but {}; ordering them by completion did not avoid every cycle it forbids",
            report.si_open.as_deref().unwrap_or("")
        )),
        Workload::ListAppend => unknown(
            "no anomaly Elle names for this model was found, but those checks do not cover every violation (fractured reads, causality through chains) and snapshot isolation, which would imply it, does not hold".into(),
        ),
        Workload::RwRegister => unknown(
            "no anomaly it forbids was found, but rw-register reads reveal only part of each key's version order, and no serialization that explains every read was found to prove it".into(),
        ),
    }
}

/// Each of `models`' verdicts from the result of [`analyse`], the witnesses' operations
/// given by `op_of`: a history that could not be analysed is unknown for every model.
pub fn verdicts_with(
    report: &Result<TxnReport, TxnInputError>,
    models: &[TxnModel],
    op_of: &dyn Fn(usize) -> Option<Operation>,
) -> Vec<(TxnModel, Verdict)> {
    models
        .iter()
        .map(|&m| {
            let v = match report {
                Ok(report) => verdict_with(op_of, report, m),
                Err(e) => Verdict::Unknown {
                    reason: format!("{m}: cannot check this history: {e}"),
                    undecided: Vec::new(),
                },
            };
            (m, v)
        })
        .collect()
}

/// Checks `models` on a transactional history: one analysis, a verdict per model. A
/// history that is not transactional, or malformed, is unknown for every model.
pub fn check_txn(
    paired: &Paired,
    models: &[TxnModel],
    opts: &TxnOptions,
) -> Vec<(TxnModel, Verdict)> {
    let report = analyse(paired, models, opts);
    verdicts_with(&report, models, &|t| paired.ops.get(t).cloned())
}
