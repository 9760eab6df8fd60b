//! Helpers for the transactional tests: literal histories in a compact form.
#![allow(dead_code)]

use faultline_checkers::txn::{analyse, check_txn, Anomaly, TxnModel, TxnOptions, TxnReport};
use faultline_checkers::Verdict;
use faultline_history::{pair, Event, EventType, Paired, Value};

pub mod brute;

/// One transaction of a literal history: its process, outcome (`ok`, `fail`, `info`) and
/// micro-operations as they complete (reads with their results).
pub struct T {
    pub process: u64,
    pub outcome: &'static str,
    pub mops: Value,
}

/// A transaction by `process` that ends `outcome` with micro-operations `mops`.
pub fn t(process: u64, outcome: &'static str, mops: Value) -> T {
    T {
        process,
        outcome,
        mops,
    }
}

/// The invoke's form of a transaction: reads carry null.
pub fn invoke_form(mops: &Value) -> Value {
    Value::Array(
        mops.as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| match m.as_array().map(Vec::as_slice) {
                        Some([f, k, _]) if f == "r" => {
                            Value::Array(vec![f.clone(), k.clone(), Value::Null])
                        }
                        _ => m.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// Events of transactions run one after another (each completes before the next is
/// invoked), in the order given.
pub fn sequential(txns: &[T]) -> Vec<Event> {
    let mut events = Vec::new();
    for tx in txns {
        push_invoke(&mut events, tx);
        push_completion(&mut events, tx);
    }
    events
}

/// Events of transactions all invoked first, then all completed (all concurrent).
pub fn concurrent(txns: &[T]) -> Vec<Event> {
    let mut events = Vec::new();
    for tx in txns {
        push_invoke(&mut events, tx);
    }
    for tx in txns {
        push_completion(&mut events, tx);
    }
    events
}

fn push_invoke(events: &mut Vec<Event>, tx: &T) {
    let i = events.len() as u64;
    events.push(Event::client(
        i,
        tx.process,
        EventType::Invoke,
        "txn",
        invoke_form(&tx.mops),
    ));
}

fn push_completion(events: &mut Vec<Event>, tx: &T) {
    let i = events.len() as u64;
    let (kind, value) = match tx.outcome {
        "ok" => (EventType::Ok, tx.mops.clone()),
        "fail" => (EventType::Fail, invoke_form(&tx.mops)),
        _ => (EventType::Info, invoke_form(&tx.mops)),
    };
    events.push(Event::client(i, tx.process, kind, "txn", value));
}

/// Pairs events.
pub fn paired(events: &[Event]) -> Paired {
    pair(events, "test").expect("a well-formed literal history")
}

/// The report with every model's cycles searched.
pub fn report(p: &Paired) -> TxnReport {
    analyse(p, &TxnModel::ALL, &TxnOptions::default()).expect("a transactional history")
}

/// The anomaly types found.
pub fn anomalies(p: &Paired) -> Vec<Anomaly> {
    report(p).findings.iter().map(|f| f.anomaly).collect()
}

/// The verdict of one model.
pub fn verdict(p: &Paired, m: TxnModel) -> Verdict {
    check_txn(p, &TxnModel::ALL, &TxnOptions::default())
        .into_iter()
        .find(|(x, _)| *x == m)
        .map(|(_, v)| v)
        .expect("every model checked")
}

/// `valid`, `invalid` or `unknown` for a model.
pub fn label(p: &Paired, m: TxnModel) -> &'static str {
    verdict(p, m).label()
}
