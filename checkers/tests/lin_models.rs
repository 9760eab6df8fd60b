//! Table tests of the sequential models through the checker: literal histories, each with
//! the reason for its verdict; plus the four Porcupine register examples.

mod lin_common;

use faultline_checkers::{
    check_linearizable, Algorithm, DataModel, LinOptions, Minimality, Verdict,
};
use faultline_history::{pair, Event, EventType};
use lin_common::{assert_witness_fails, cas, events, op, r, w, Spec};
use serde_json::{json, Value};
use std::time::Duration;

use EventType::{Fail, Info, Ok as Okay};

fn check(specs: &[Spec], model: DataModel, opts: &LinOptions) -> Verdict {
    let ev: Vec<Event> = events(specs);
    let paired = pair(&ev, "table").expect("table histories pair");
    let report = check_linearizable(&paired, model, opts);
    if let Verdict::Invalid { witness } = &report.verdict {
        assert_witness_fails(&paired, model, opts, witness, "table");
    }
    report.verdict
}

fn valid(specs: &[Spec], model: DataModel) -> bool {
    let mut answers = Vec::new();
    for algorithm in [Algorithm::Auto, Algorithm::Search] {
        let opts = LinOptions {
            algorithm,
            ..LinOptions::default()
        };
        answers.push(match check(specs, model, &opts) {
            Verdict::Valid => true,
            Verdict::Invalid { .. } => false,
            v => panic!("unexpected {v:?}"),
        });
    }
    assert_eq!(answers[0], answers[1], "zones/auto and search disagree");
    answers[0]
}

#[test]
fn register_table() {
    let reg = DataModel::Register;
    // A read after a completed write sees it.
    assert!(valid(&[w(0, 1, 0, 1), r(1, json!(1), 2, 3)], reg));
    // A read that starts after the write completed cannot see "never written".
    assert!(!valid(&[w(0, 1, 0, 1), r(1, Value::Null, 2, 3)], reg));
    // A read concurrent with the write may see either.
    assert!(valid(&[w(0, 1, 0, 3), r(1, Value::Null, 1, 2)], reg));
    assert!(valid(&[w(0, 1, 0, 3), r(1, json!(1), 1, 2)], reg));
    // Stale read: 1 was overwritten by 2 before the read began.
    assert!(!valid(
        &[w(0, 1, 0, 1), w(0, 2, 2, 3), r(1, json!(1), 4, 5)],
        reg
    ));
    // Same with duplicate values: 1 written again concurrently with the read is fine.
    assert!(valid(
        &[
            w(0, 1, 0, 1),
            w(0, 2, 2, 3),
            w(2, 1, 4, 7),
            r(1, json!(1), 5, 6)
        ],
        reg
    ));
    // Two reads in real-time order cannot see the values in the opposite order of writes
    // that did not overlap each other.
    assert!(!valid(
        &[
            w(0, 1, 0, 1),
            w(0, 2, 2, 9),
            r(1, json!(2), 3, 4),
            r(1, json!(1), 5, 6)
        ],
        reg
    ));
    // An info write may take effect any time later: here it explains the read.
    assert!(valid(
        &[
            op(0, "write", json!(1), Value::Null, 0, Some(1), Info),
            r(1, json!(1), 2, 3)
        ],
        reg
    ));
    // ... or never: nothing reads it.
    assert!(valid(
        &[
            op(0, "write", json!(1), Value::Null, 0, Some(1), Info),
            r(1, Value::Null, 2, 3)
        ],
        reg
    ));
    // An invoke that never completes counts as info.
    assert!(valid(
        &[
            op(0, "write", json!(1), Value::Null, 0, None, Info),
            r(1, json!(1), 1, 2)
        ],
        reg
    ));
    // A failed write did not happen: reading its value is an aborted read.
    assert!(!valid(
        &[
            op(0, "write", json!(1), Value::Null, 0, Some(1), Fail),
            r(1, json!(1), 2, 3)
        ],
        reg
    ));
    // A failed read observed nothing.
    assert!(valid(
        &[
            w(0, 1, 0, 1),
            op(1, "read", Value::Null, json!(7), 2, Some(3), Fail)
        ],
        reg
    ));
}

#[test]
fn cas_register_table() {
    let m = DataModel::CasRegister;
    // cas from the current value succeeds, and the read sees the new value.
    assert!(valid(
        &[
            w(0, 1, 0, 1),
            cas(0, 1, 2, 2, 3, Okay, None),
            r(1, json!(2), 4, 5)
        ],
        m
    ));
    // An ok cas from a value the register cannot hold is impossible.
    assert!(!valid(&[w(0, 1, 0, 1), cas(0, 3, 2, 2, 3, Okay, None)], m));
    // A mismatch observes the value differed from expected: here it was surely 1.
    assert!(!valid(
        &[w(0, 1, 0, 1), cas(1, 1, 3, 2, 3, Fail, Some("mismatch"))],
        m
    ));
    // A mismatch concurrent with a write of another value is fine.
    assert!(valid(
        &[
            w(0, 1, 0, 1),
            w(0, 2, 2, 5),
            cas(1, 1, 3, 3, 4, Fail, Some("mismatch"))
        ],
        m
    ));
    // A cas refused before it was attempted observes nothing.
    assert!(valid(
        &[w(0, 1, 0, 1), cas(1, 1, 3, 2, 3, Fail, Some("not leader"))],
        m
    ));
    // An info cas may have taken effect: it explains reading 5.
    assert!(valid(
        &[
            w(0, 1, 0, 1),
            cas(1, 1, 5, 2, 3, Info, Some("timeout")),
            r(2, json!(5), 4, 5)
        ],
        m
    ));
    // ... but only if its compare could succeed.
    assert!(!valid(
        &[
            w(0, 1, 0, 1),
            cas(1, 4, 5, 2, 3, Info, Some("timeout")),
            r(2, json!(5), 4, 5)
        ],
        m
    ));
}

#[test]
fn register_model_does_not_know_cas() {
    let specs = [w(0, 1, 0, 1), cas(0, 1, 2, 2, 3, Okay, None)];
    match check(&specs, DataModel::Register, &LinOptions::default()) {
        Verdict::Unknown { reason, undecided } => {
            assert!(
                reason.contains("cas"),
                "reason names the operation: {reason}"
            );
            assert_eq!(undecided, vec![String::new()]);
        }
        v => panic!("expected unknown, got {v:?}"),
    }
}

#[test]
fn nil_reads_unknown_drops_reads_of_null() {
    let specs = [w(0, 1, 0, 1), r(1, Value::Null, 2, 3)];
    let knossos = LinOptions {
        nil_reads_unknown: true,
        ..LinOptions::default()
    };
    assert_eq!(check(&specs, DataModel::Register, &knossos), Verdict::Valid);
    assert!(matches!(
        check(&specs, DataModel::Register, &LinOptions::default()),
        Verdict::Invalid { .. }
    ));
}

fn keyed(s: Spec<'static>, k: &'static str) -> Spec<'static> {
    Spec { key: Some(k), ..s }
}

#[test]
fn kv_keys_are_independent_and_the_witness_names_the_key() {
    let specs = [
        keyed(w(0, 1, 0, 1), "a"),
        keyed(r(1, json!(1), 2, 3), "a"),
        keyed(w(2, 5, 4, 5), "b"),
        keyed(r(1, Value::Null, 6, 7), "b"),
    ];
    let ev = events(&specs);
    let paired = pair(&ev, "kv").expect("pairs");
    let report = check_linearizable(&paired, DataModel::Kv, &LinOptions::default());
    assert_eq!(report.keys, 2);
    assert_eq!(report.invalid_keys, vec!["b".to_string()]);
    let w = report.verdict.witness().expect("invalid");
    assert_eq!(w.key.as_deref(), Some("b"));
    assert_eq!(w.ops.len(), 2, "{}", w.render_text());
    assert_eq!(w.minimality, Minimality::OneMinimal);
}

#[test]
fn kv_append_concatenates_from_the_initial_value() {
    let kv = DataModel::Kv;
    let opts = LinOptions {
        initial: json!(""),
        ..LinOptions::default()
    };
    let ap = |p, s: &'static str, i, c| op(p, "append", json!(s), Value::Null, i, Some(c), Okay);
    // Appends in real-time order concatenate in that order.
    assert_eq!(
        check(
            &[ap(0, "x", 0, 1), ap(0, "y", 2, 3), r(1, json!("xy"), 4, 5)],
            kv,
            &opts
        ),
        Verdict::Valid
    );
    assert!(check(
        &[ap(0, "x", 0, 1), ap(0, "y", 2, 3), r(1, json!("yx"), 4, 5)],
        kv,
        &opts
    )
    .witness()
    .is_some());
    // Concurrent appends may land in either order.
    assert_eq!(
        check(
            &[ap(0, "x", 0, 3), ap(1, "y", 1, 2), r(2, json!("yx"), 4, 5)],
            kv,
            &opts
        ),
        Verdict::Valid
    );
    // Before any write the key holds the initial value "" (and not null).
    assert_eq!(check(&[r(1, json!(""), 0, 1)], kv, &opts), Verdict::Valid);
    assert!(check(&[r(1, json!(""), 0, 1)], kv, &LinOptions::default())
        .witness()
        .is_some());
    // A put replaces the string.
    let put = op(0, "put", json!("z"), Value::Null, 2, Some(3), Okay);
    assert_eq!(
        check(&[ap(0, "x", 0, 1), put, r(1, json!("z"), 4, 5)], kv, &opts),
        Verdict::Valid
    );
}

#[test]
fn stale_read_witness_is_explained_with_times() {
    let specs = [
        w(0, 1, 0, 1),
        w(0, 2, 2, 3),
        r(1, json!(1), 4, 5),
        r(2, json!(2), 6, 7),
    ];
    let v = check(&specs, DataModel::Register, &LinOptions::default());
    let w = v.witness().expect("invalid");
    let text = w.render_text();
    assert_eq!(w.ops.len(), 3, "the later read is not needed:\n{text}");
    assert_eq!(w.minimality, Minimality::OneMinimal);
    assert!(text.contains("read 1"), "{text}");
    assert!(text.contains("completed at"), "{text}");
    assert!(
        w.steps
            .iter()
            .any(|s| s.relation.as_deref() == Some("real-time")),
        "{text}"
    );
}

#[test]
fn exhausted_budgets_give_unknown_never_valid() {
    use faultline_checkers::synth::{generate, SynthConfig, Violation};
    let cfg = SynthConfig {
        ops: 4000,
        processes: 8,
        cas: true,
        info_rate: 0.01,
        violation: Some(Violation::StaleRead),
        seed: 5,
        ..SynthConfig::default()
    };
    let ev = generate(&cfg).expect("generates");
    let paired = pair(&ev, "synth").expect("pairs");
    for opts in [
        LinOptions {
            time_limit: Some(Duration::ZERO),
            ..LinOptions::default()
        },
        LinOptions {
            memory_limit: 0,
            ..LinOptions::default()
        },
    ] {
        let r = check_linearizable(&paired, DataModel::CasRegister, &opts);
        assert!(
            !matches!(r.verdict, Verdict::Valid),
            "a budget of nothing cannot prove validity (seed {}): {:?}",
            cfg.seed,
            r.verdict
        );
        if let Verdict::Unknown { reason, undecided } = &r.verdict {
            assert!(reason.contains("limit"), "{reason}");
            assert_eq!(undecided, &vec![String::new()]);
        }
    }
}

#[test]
fn more_than_128_operations_open_at_once() {
    // 140 info writes of 1 stay open forever, so the search needs wide bitsets; the
    // interchangeable ones collapse into one class.
    let infos = |from: u64| -> Vec<Spec<'static>> {
        (0..140)
            .map(|k| op(10 + k, "write", json!(1), Value::Null, from + k, None, Info))
            .collect()
    };
    let opts = LinOptions {
        algorithm: Algorithm::Search,
        ..LinOptions::default()
    };
    // One of them may land after the write of 2: reading 1 is fine.
    let mut ok = infos(0);
    ok.push(w(0, 2, 140, 141));
    ok.push(r(1, json!(1), 142, 143));
    assert_eq!(check(&ok, DataModel::Register, &opts), Verdict::Valid);
    // 3 was overwritten by 2 before the read; no info write produces 3.
    let mut bad = vec![w(0, 3, 0, 1), w(0, 2, 2, 3)];
    bad.extend(infos(4));
    bad.push(r(1, json!(3), 144, 145));
    let v = check(&bad, DataModel::Register, &opts);
    let wit = v.witness().expect("invalid");
    assert_eq!(wit.ops.len(), 3, "{}", wit.render_text());
}
