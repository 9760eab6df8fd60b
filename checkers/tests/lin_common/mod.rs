//! Helpers shared by the linearizability tests.
#![allow(dead_code)]

use faultline_checkers::{check_linearizable, DataModel, LinOptions, Verdict, Witness};
use faultline_history::{Event, EventType, Paired};
use serde_json::{json, Value};
use std::path::PathBuf;

/// A path under the project's `testdata/`.
pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/")).join(rel)
}

/// Checking only the witness's operations must be invalid again.
pub fn assert_witness_fails(
    paired: &Paired,
    model: DataModel,
    opts: &LinOptions,
    witness: &Witness,
    what: &str,
) {
    assert!(!witness.ops.is_empty(), "{what}: empty witness");
    assert!(
        !witness.steps.is_empty(),
        "{what}: witness without explanation"
    );
    let sub = Paired {
        ops: witness.ops.iter().map(|w| w.op.clone()).collect(),
        faults: Vec::new(),
    };
    let again = check_linearizable(
        &sub,
        model,
        &LinOptions {
            shrink: false,
            ..opts.clone()
        },
    );
    assert!(
        matches!(again.verdict, Verdict::Invalid { .. }),
        "{what}: the witness alone is {:?}, not invalid:\n{}",
        again.verdict,
        witness.render_text()
    );
    let _ = paired;
}

/// A tiny history builder: ops as (process, f, argument, result, invoke, complete, outcome),
/// times are event indices.
pub struct Spec<'a> {
    pub process: u64,
    pub f: &'a str,
    pub arg: Value,
    pub result: Value,
    pub invoke: u64,
    /// `None` = never completes.
    pub complete: Option<u64>,
    pub kind: EventType,
    pub error: Option<&'a str>,
    pub key: Option<&'a str>,
}

/// Events from specs, sorted by index.
pub fn events(specs: &[Spec]) -> Vec<Event> {
    let mut ev = Vec::new();
    for s in specs {
        let mut inv = Event::client(s.invoke, s.process, EventType::Invoke, s.f, s.arg.clone());
        if let Some(k) = s.key {
            inv = inv.with_key(k);
        }
        ev.push(inv);
        if let Some(c) = s.complete {
            let val = if s.f == "read" && s.kind == EventType::Ok {
                s.result.clone()
            } else {
                s.arg.clone()
            };
            let mut done = Event::client(c, s.process, s.kind, s.f, val);
            if let Some(k) = s.key {
                done = done.with_key(k);
            }
            if let Some(e) = s.error {
                done = done.with_error(e);
            }
            ev.push(done);
        }
    }
    ev.sort_by_key(|e| e.index);
    ev
}

/// (process, f, argument, read result, invoke, complete, kind)
pub fn op<'a>(
    p: u64,
    f: &'a str,
    arg: Value,
    result: Value,
    inv: u64,
    comp: Option<u64>,
    kind: EventType,
) -> Spec<'a> {
    Spec {
        process: p,
        f,
        arg,
        result,
        invoke: inv,
        complete: comp,
        kind,
        error: None,
        key: None,
    }
}

pub fn w(p: u64, v: i64, inv: u64, comp: u64) -> Spec<'static> {
    op(
        p,
        "write",
        json!(v),
        Value::Null,
        inv,
        Some(comp),
        EventType::Ok,
    )
}

pub fn r(p: u64, v: Value, inv: u64, comp: u64) -> Spec<'static> {
    op(p, "read", Value::Null, v, inv, Some(comp), EventType::Ok)
}

pub fn cas(
    p: u64,
    e: i64,
    n: i64,
    inv: u64,
    comp: u64,
    kind: EventType,
    error: Option<&'static str>,
) -> Spec<'static> {
    Spec {
        error,
        ..op(p, "cas", json!([e, n]), Value::Null, inv, Some(comp), kind)
    }
}
