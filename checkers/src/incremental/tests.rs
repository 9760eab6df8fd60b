use super::*;
use faultline_history::EventType::{Fail, Info, Invoke, Ok as OkT};
use serde_json::json;

fn ev(i: u64, p: u64, kind: faultline_history::EventType, f: &str, v: Value) -> Event {
    Event::client(i, p, kind, f, v).with_key("x")
}

fn spec(lin: bool, others: &[ModelName]) -> IncrementalSpec {
    IncrementalSpec::new(lin.then_some(DataModel::CasRegister), others.to_vec(), true)
}

/// p0 writes 1 then 2; p1 then reads 1: stale, not linearizable, and (the read is by
/// another process, which saw nothing of p0's) still every session guarantee.
fn stale_read() -> Vec<Event> {
    vec![
        ev(0, 0, Invoke, "write", json!(1)),
        ev(1, 0, OkT, "write", json!(1)),
        ev(2, 0, Invoke, "write", json!(2)),
        ev(3, 0, OkT, "write", json!(2)),
        ev(4, 1, Invoke, "read", Value::Null),
        ev(5, 1, OkT, "read", json!(1)),
    ]
}

#[test]
fn a_stale_read_is_found_at_the_cut_where_it_completes_and_not_before() {
    let mut inc = Incremental::new(spec(true, &[]), "h");
    let events = stale_read();
    for (i, e) in events.into_iter().enumerate() {
        inc.push(e).unwrap();
        let found = inc.check(1000 + i as u64);
        if i < 5 {
            assert!(found.is_empty(), "nothing to find at event {i}: {found:?}");
        } else {
            assert_eq!(found.len(), 1);
            let v = &found[0];
            assert_eq!(v.model, ModelName::Linearizable);
            assert_eq!(v.witness.key.as_deref(), Some("x"));
            // Event::client puts time = index: the read completed at 5, found at 1005.
            assert_eq!(v.visible_at, 5);
            assert_eq!(v.detected_at, 1005);
            assert_eq!(v.delay(), Duration::from_nanos(1000));
            assert_eq!(v.cut_ops, 3);
        }
    }
    // Found once: later checks do not repeat it, and nothing else is checked.
    inc.push(ev(6, 1, Invoke, "read", Value::Null)).unwrap();
    assert!(inc.check(2000).is_empty());
    assert_eq!(inc.violations().len(), 1);
}

#[test]
fn an_operation_in_flight_at_the_cut_may_still_take_effect() {
    // p0's write of 1 has not completed when p1 reads 1: the cut must count the write as
    // possibly done (info), so the read is fine, and so is every later cut.
    let events = vec![
        ev(0, 0, Invoke, "write", json!(1)),
        ev(1, 1, Invoke, "read", Value::Null),
        ev(2, 1, OkT, "read", json!(1)),
        ev(3, 0, OkT, "write", json!(1)),
    ];
    let mut inc = Incremental::new(spec(true, &ModelName::ALL[1..]), "h");
    for e in events {
        inc.push(e).unwrap();
        assert_eq!(inc.check(0), Vec::new());
    }
    assert_eq!(inc.stats().deferred, 0);
}

#[test]
fn a_read_of_a_value_no_operation_of_the_cut_writes_defers_the_other_models() {
    // p1 reads 7 and nobody has invoked a write of 7 yet: linearizability is violated
    // whatever comes later, the other models are left to the final check.
    let events = vec![
        ev(0, 1, Invoke, "read", Value::Null),
        ev(1, 1, OkT, "read", json!(7)),
    ];
    let mut inc = Incremental::new(spec(true, &[ModelName::Sequential, ModelName::Ryw]), "h");
    for e in events {
        inc.push(e).unwrap();
    }
    let found = inc.check(0);
    assert_eq!(
        found.iter().map(|v| v.model).collect::<Vec<_>>(),
        vec![ModelName::Linearizable]
    );
    assert_eq!(inc.stats().deferred, 1);
    // Once some operation writes 7, the read is explained and the cut can be judged.
    inc.push(ev(2, 0, Invoke, "write", json!(7))).unwrap();
    inc.push(ev(3, 0, OkT, "write", json!(7))).unwrap();
    assert!(inc.check(1).is_empty());
    assert_eq!(inc.stats().deferred, 1);
    // A value written twice ends the other models' checks for good.
    inc.push(ev(4, 0, Invoke, "write", json!(7))).unwrap();
    inc.push(ev(5, 0, OkT, "write", json!(7))).unwrap();
    inc.push(ev(6, 0, Invoke, "read", Value::Null)).unwrap();
    inc.push(ev(7, 0, OkT, "read", Value::Null)).unwrap();
    assert!(inc.check(2).is_empty(), "ryw is broken, but values repeat");
    assert_eq!(inc.stats().deferred, 2);
}

#[test]
fn without_unique_values_only_linearizability_is_checked() {
    let mut s = spec(true, &[ModelName::Ryw]);
    s.unique_values = false;
    let mut inc = Incremental::new(s, "h");
    for e in [
        ev(0, 0, Invoke, "write", json!(1)),
        ev(1, 0, OkT, "write", json!(1)),
        ev(2, 0, Invoke, "read", Value::Null),
        ev(3, 0, OkT, "read", Value::Null),
    ] {
        inc.push(e).unwrap();
    }
    let found: Vec<ModelName> = inc.check(0).iter().map(|v| v.model).collect();
    assert_eq!(found, vec![ModelName::Linearizable]);
    assert_eq!(inc.stats().deferred, 1);
}

#[test]
fn a_session_violation_is_found_on_the_cut() {
    // p0 writes 1 then reads null: not read-your-writes.
    let events = vec![
        ev(0, 0, Invoke, "write", json!(1)),
        ev(1, 0, OkT, "write", json!(1)),
        ev(2, 0, Invoke, "read", Value::Null),
        ev(3, 0, OkT, "read", Value::Null),
    ];
    let mut inc = Incremental::new(spec(false, &[ModelName::Ryw, ModelName::Mr]), "h");
    for e in events {
        inc.push(e).unwrap();
    }
    let found = inc.check(10);
    assert_eq!(
        found.iter().map(|v| v.model).collect::<Vec<_>>(),
        vec![ModelName::Ryw]
    );
    assert_eq!(found[0].visible_at, 3);
}

#[test]
fn failed_and_info_operations_and_mismatches_are_not_violations() {
    let events = vec![
        ev(0, 0, Invoke, "write", json!(1)),
        ev(1, 0, Fail, "write", json!(1)),
        ev(2, 1, Invoke, "cas", json!([5, 6])),
        ev(3, 1, Fail, "cas", json!([5, 6])).with_error("mismatch"),
        ev(4, 2, Invoke, "write", json!(3)),
        ev(5, 2, Info, "write", json!(3)),
        ev(6, 1, Invoke, "read", Value::Null),
        ev(7, 1, OkT, "read", json!(3)),
    ];
    let mut inc = Incremental::new(spec(true, &ModelName::ALL[1..]), "h");
    for e in events {
        inc.push(e).unwrap();
        assert_eq!(inc.check(0), Vec::new());
    }
}

#[test]
fn an_event_that_breaks_the_pairing_rules_is_an_error() {
    let mut inc = Incremental::new(spec(true, &[]), "live");
    let e = inc.push(ev(0, 0, OkT, "read", json!(1))).unwrap_err();
    assert!(e.to_string().contains("live"), "{e}");
}

#[test]
fn nothing_new_means_no_round() {
    let mut inc = Incremental::new(spec(true, &[ModelName::Ryw]), "h");
    assert!(inc.check(0).is_empty());
    assert_eq!(inc.stats().rounds, 0);
    inc.push(ev(0, 0, Invoke, "write", json!(1))).unwrap();
    inc.check(0);
    inc.check(0);
    assert_eq!(inc.stats().rounds, 1);
}
