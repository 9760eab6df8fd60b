//! Shared helpers of the causal, session and lattice tests: build histories from
//! per-process operation lists.
#![allow(dead_code)]

use faultline_checkers::{check_model, ConsistencyOptions, ModelName, Verdict};
use faultline_history::{pair, Event, EventType, Paired, Value};
use serde_json::json;

/// One operation of a hand-written session.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub f: &'static str,
    pub key: String,
    pub argument: Value,
    pub result: Value,
    pub outcome: EventType,
    pub error: Option<String>,
}

impl Spec {
    /// The same operation with an unknown outcome.
    pub fn info(mut self) -> Spec {
        self.outcome = EventType::Info;
        self.result = Value::Null;
        self
    }
    /// The same operation, failed.
    pub fn fail(mut self) -> Spec {
        self.outcome = EventType::Fail;
        self
    }
    /// The same operation, failed with an error.
    pub fn fail_with(mut self, e: &str) -> Spec {
        self.outcome = EventType::Fail;
        self.error = Some(e.into());
        self
    }
}

/// write v to key k.
pub fn w(k: &str, v: i64) -> Spec {
    Spec {
        f: "write",
        key: k.into(),
        argument: json!(v),
        result: json!(v),
        outcome: EventType::Ok,
        error: None,
    }
}

/// read key k, returning v (`None` = never written).
pub fn r(k: &str, v: Option<i64>) -> Spec {
    Spec {
        f: "read",
        key: k.into(),
        argument: Value::Null,
        result: v.map_or(Value::Null, |v| json!(v)),
        outcome: EventType::Ok,
        error: None,
    }
}

/// compare-and-set k from e to n (`e` = `None`: from the initial value).
pub fn cas(k: &str, e: Option<i64>, n: i64) -> Spec {
    let e = e.map_or(Value::Null, |e| json!(e));
    Spec {
        f: "cas",
        key: k.into(),
        argument: json!([e, n]),
        result: json!([e, n]),
        outcome: EventType::Ok,
        error: None,
    }
}

/// Events of sessions (process i runs sessions[i]); operations are interleaved in the
/// given `order` of process ids (each entry runs that process's next op to completion),
/// then the rest round-robin.
pub fn events(sessions: &[Vec<Spec>], order: &[usize]) -> Vec<Event> {
    let mut next = vec![0usize; sessions.len()];
    let mut evs = Vec::new();
    let emit = |p: usize, s: &Spec, evs: &mut Vec<Event>| {
        let i = evs.len() as u64;
        evs.push(
            Event::client(i, p as u64, EventType::Invoke, s.f, s.argument.clone())
                .with_key(s.key.clone()),
        );
        let mut c = Event::client(i + 1, p as u64, s.outcome, s.f, s.result.clone())
            .with_key(s.key.clone());
        c.error = s.error.clone();
        evs.push(c);
    };
    for &p in order {
        if let Some(s) = sessions[p].get(next[p]) {
            emit(p, s, &mut evs);
            next[p] += 1;
        }
    }
    loop {
        let mut any = false;
        for p in 0..sessions.len() {
            if let Some(s) = sessions[p].get(next[p]) {
                emit(p, s, &mut evs);
                next[p] += 1;
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    evs
}

/// The paired history of `sessions`, interleaved round-robin.
pub fn history(sessions: &[Vec<Spec>]) -> Paired {
    pair(&events(sessions, &[]), "test").expect("well-formed test history")
}

/// Checks one model with its own checker (no sequential witness), after checking that
/// the default options (which first try the witness) agree: the same label, or valid
/// where the own checker could not decide (a witness also covers failed cas).
pub fn check(p: &Paired, m: ModelName) -> Verdict {
    let own = check_model(
        p,
        m,
        &ConsistencyOptions {
            sequential_witness: false,
            ..ConsistencyOptions::default()
        },
    );
    let fast = check_model(p, m, &ConsistencyOptions::default());
    assert!(
        fast.label() == own.label() || (fast.label() == "valid" && own.label() == "unknown"),
        "{m}: {} with the sequential witness, {} without",
        fast.label(),
        own.label()
    );
    own
}

/// "valid", "invalid" or "unknown".
pub fn label(p: &Paired, m: ModelName) -> &'static str {
    check(p, m).label()
}

/// Every model this crate checks here (all but linearizable).
pub const CHECKED: [ModelName; 9] = [
    ModelName::Sequential,
    ModelName::Ccv,
    ModelName::Cm,
    ModelName::Cc,
    ModelName::Pram,
    ModelName::Ryw,
    ModelName::Mr,
    ModelName::Mw,
    ModelName::Wfr,
];
