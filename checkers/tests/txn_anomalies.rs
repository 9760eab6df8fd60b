//! Each anomaly class as a literal history, once violated and once holding.

mod txn_support;

use faultline_checkers::txn::{Anomaly, TxnModel};
use serde_json::json;
use txn_support::{anomalies, concurrent, label, paired, sequential, t, verdict};
use Anomaly::*;
use TxnModel::*;

fn has(p: &faultline_history::Paired, a: Anomaly) -> bool {
    anomalies(p).contains(&a)
}

#[test]
fn g0_write_cycle() {
    let h = |second: serde_json::Value| {
        paired(&concurrent(&[
            t(0, "ok", json!([["append", 1, 1], ["append", 2, 1]])),
            t(1, "ok", json!([["append", 1, 2], ["append", 2, 2]])),
            t(2, "ok", json!([["r", 1, [1, 2]], ["r", 2, second]])),
        ]))
    };
    let bad = h(json!([2, 1]));
    assert!(has(&bad, G0), "{:?}", anomalies(&bad));
    assert_eq!(label(&bad, ReadUncommitted), "invalid");
    let w = verdict(&bad, ReadUncommitted);
    let text = w.witness().unwrap().render_text();
    assert!(
        text.contains(
            "T0 < T1 (ww): T0 appended 1 to key 1 before T1 appended 2, because T2 read key 1 as [1 2]"
        ),
        "{text}"
    );
    let good = h(json!([1, 2]));
    assert!(anomalies(&good).is_empty(), "{:?}", anomalies(&good));
    assert_eq!(label(&good, Serializable), "valid");
    assert_eq!(label(&good, StrictSerializable), "valid");
}

#[test]
fn g1a_aborted_read() {
    let h = |outcome| {
        paired(&concurrent(&[
            t(0, outcome, json!([["append", 1, 1]])),
            t(1, "ok", json!([["r", 1, [1]]])),
        ]))
    };
    let bad = h("fail");
    assert!(has(&bad, G1a));
    assert_eq!(label(&bad, ReadCommitted), "invalid");
    assert_eq!(label(&bad, ReadUncommitted), "valid");
    let good = h("ok");
    assert!(!has(&good, G1a));
    assert_eq!(label(&good, ReadCommitted), "valid");
    // An info append that a read saw committed.
    let info = h("info");
    assert!(anomalies(&info).is_empty());
    assert_eq!(label(&info, StrictSerializable), "valid");
}

#[test]
fn g1b_intermediate_read() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[
            t(0, "ok", json!([["append", 1, 1], ["append", 1, 2]])),
            t(1, "ok", json!([["r", 1, seen]])),
        ]))
    };
    let bad = h(json!([1]));
    assert!(has(&bad, G1b));
    assert_eq!(label(&bad, ReadCommitted), "invalid");
    assert_eq!(label(&bad, ReadUncommitted), "valid");
    let good = h(json!([1, 2]));
    assert_eq!(label(&good, Serializable), "valid");
}

#[test]
fn g1c_circular_information_flow() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[
            t(0, "ok", json!([["append", 1, 1], ["r", 2, [1]]])),
            t(1, "ok", json!([["append", 2, 1], ["r", 1, seen]])),
        ]))
    };
    let bad = h(json!([1]));
    assert!(has(&bad, G1c), "{:?}", anomalies(&bad));
    assert_eq!(label(&bad, ReadCommitted), "invalid");
    assert_eq!(label(&bad, ReadUncommitted), "valid");
    let good = h(json!([]));
    assert!(anomalies(&good).is_empty(), "{:?}", anomalies(&good));
    assert_eq!(label(&good, Serializable), "valid");
}

#[test]
fn g_single_read_skew() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[
            t(0, "ok", json!([["append", 1, 1], ["append", 2, 1]])),
            t(1, "ok", json!([["r", 1, [1]], ["r", 2, seen]])),
        ]))
    };
    let bad = h(json!([]));
    assert_eq!(anomalies(&bad), vec![GSingle]);
    assert_eq!(label(&bad, SnapshotIsolation), "invalid");
    assert_eq!(label(&bad, RepeatableRead), "invalid");
    assert_eq!(label(&bad, ReadCommitted), "valid");
    let w = verdict(&bad, Serializable);
    let text = w.witness().unwrap().render_text();
    assert!(text.contains("(rw): T1 read key 2 empty"), "{text}");
    let good = h(json!([1]));
    assert_eq!(label(&good, Serializable), "valid");
}

#[test]
fn g2_item_write_skew() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[
            t(0, "ok", json!([["r", 1, []], ["append", 2, 1]])),
            t(1, "ok", json!([["r", 2, seen], ["append", 1, 1]])),
            t(2, "ok", json!([["r", 1, [1]], ["r", 2, [1]]])),
        ]))
    };
    let bad = h(json!([]));
    assert_eq!(anomalies(&bad), vec![G2Item]);
    assert_eq!(label(&bad, Serializable), "invalid");
    assert_eq!(label(&bad, RepeatableRead), "invalid");
    assert_eq!(label(&bad, SnapshotIsolation), "valid");
    let good = h(json!([1]));
    assert_eq!(label(&good, Serializable), "valid");
}

#[test]
fn g_nonadjacent() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[
            t(0, "ok", json!([["r", 1, []], ["r", 4, seen]])),
            t(1, "ok", json!([["append", 1, 1], ["append", 2, 1]])),
            t(2, "ok", json!([["r", 2, [1]], ["r", 3, []]])),
            t(3, "ok", json!([["append", 3, 1], ["append", 4, 1]])),
        ]))
    };
    let bad = h(json!([1]));
    assert_eq!(anomalies(&bad), vec![GNonadjacent]);
    assert_eq!(label(&bad, SnapshotIsolation), "invalid");
    assert_eq!(label(&bad, ReadCommitted), "valid");
    let good = h(json!([]));
    assert_eq!(label(&good, Serializable), "valid");
}

#[test]
fn internal_inconsistency() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[t(
            0,
            "ok",
            json!([["append", 1, 1], ["r", 1, seen]]),
        )]))
    };
    let bad = h(json!([]));
    assert_eq!(anomalies(&bad), vec![Internal]);
    assert_eq!(label(&bad, ReadAtomic), "invalid");
    assert_eq!(label(&bad, ReadCommitted), "valid");
    assert_eq!(label(&h(json!([1])), StrictSerializable), "valid");
}

#[test]
fn future_read() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[t(
            0,
            "ok",
            json!([["r", 1, seen], ["append", 1, 1]]),
        )]))
    };
    let bad = h(json!([1]));
    assert!(has(&bad, FutureRead));
    assert_eq!(label(&bad, ReadCommitted), "invalid");
    assert_eq!(label(&h(json!([])), StrictSerializable), "valid");
}

#[test]
fn dirty_update() {
    let h = |outcome| {
        paired(&concurrent(&[
            t(0, outcome, json!([["append", 1, 1]])),
            t(1, "ok", json!([["append", 1, 2]])),
            t(2, "ok", json!([["r", 1, [1, 2]]])),
        ]))
    };
    let bad = h("fail");
    assert!(
        has(&bad, DirtyUpdate) && has(&bad, G1a),
        "{:?}",
        anomalies(&bad)
    );
    assert_eq!(label(&bad, ReadCommitted), "invalid");
    assert_eq!(label(&h("ok"), Serializable), "valid");
}

#[test]
fn duplicate_elements() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[
            t(0, "ok", json!([["append", 1, 1]])),
            t(1, "ok", json!([["r", 1, seen]])),
        ]))
    };
    let bad = h(json!([1, 1]));
    assert!(has(&bad, DuplicateElements));
    assert_eq!(label(&bad, ReadUncommitted), "invalid");
    assert_eq!(label(&h(json!([1])), Serializable), "valid");
}

#[test]
fn incompatible_order() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[
            t(0, "ok", json!([["append", 1, 1]])),
            t(1, "ok", json!([["append", 1, 2]])),
            t(2, "ok", json!([["r", 1, [1, 2]]])),
            t(3, "ok", json!([["r", 1, seen]])),
        ]))
    };
    let bad = h(json!([2]));
    assert!(has(&bad, IncompatibleOrder));
    assert_eq!(label(&bad, ReadCommitted), "invalid");
    // Read uncommitted allows it, but the key's order is unknown: never valid.
    assert_eq!(label(&bad, ReadUncommitted), "unknown");
    assert_eq!(label(&h(json!([1])), Serializable), "valid");
}

#[test]
fn lost_update() {
    let h = |seen: serde_json::Value| {
        paired(&concurrent(&[
            t(0, "ok", json!([["r", 1, []], ["append", 1, 1]])),
            t(1, "ok", json!([["r", 1, seen], ["append", 1, 2]])),
            t(2, "ok", json!([["r", 1, [1, 2]]])),
        ]))
    };
    let bad = h(json!([]));
    assert!(has(&bad, LostUpdate), "{:?}", anomalies(&bad));
    assert_eq!(label(&bad, CursorStability), "invalid");
    assert_eq!(label(&bad, SnapshotIsolation), "invalid");
    assert_eq!(label(&bad, ReadCommitted), "valid");
    assert_eq!(label(&h(json!([1])), Serializable), "valid");
    // Both appends unseen: one of them was still lost.
    let unseen = paired(&concurrent(&[
        t(0, "ok", json!([["r", 1, []], ["append", 1, 1]])),
        t(1, "ok", json!([["r", 1, []], ["append", 1, 2]])),
    ]));
    assert!(has(&unseen, LostUpdate), "{:?}", anomalies(&unseen));
    assert_eq!(label(&unseen, SnapshotIsolation), "invalid");
}

#[test]
fn garbage_read() {
    let h = |seen: serde_json::Value| paired(&concurrent(&[t(0, "ok", json!([["r", 1, seen]]))]));
    let bad = h(json!([9]));
    assert_eq!(anomalies(&bad), vec![GarbageRead]);
    assert_eq!(label(&bad, ReadUncommitted), "invalid");
    assert_eq!(label(&h(json!(null)), StrictSerializable), "valid");
}

#[test]
fn process_variant() {
    // One process appends, then fails to see its own append.
    let h = |seen: serde_json::Value| {
        paired(&sequential(&[
            t(0, "ok", json!([["append", 1, 1]])),
            t(0, "ok", json!([["r", 1, seen]])),
        ]))
    };
    let bad = h(json!([]));
    assert!(has(&bad, GSingleProcess), "{:?}", anomalies(&bad));
    assert_eq!(label(&bad, Serializable), "valid");
    assert_eq!(label(&bad, StrongSessionSerializable), "invalid");
    assert_eq!(label(&bad, StrongSessionSnapshotIsolation), "invalid");
    assert_eq!(label(&h(json!([1])), StrictSerializable), "valid");
}

#[test]
fn realtime_variants() {
    // Another process, invoked after the append completed, does not see it.
    let h = |seen: serde_json::Value| {
        paired(&sequential(&[
            t(0, "ok", json!([["append", 1, 1]])),
            t(1, "ok", json!([["r", 1, seen]])),
        ]))
    };
    let bad = h(json!([]));
    assert!(has(&bad, GSingleRealtime), "{:?}", anomalies(&bad));
    assert_eq!(label(&bad, StrongSessionSerializable), "valid");
    assert_eq!(label(&bad, StrictSerializable), "invalid");
    assert_eq!(label(&bad, StrongSnapshotIsolation), "invalid");
    // G0-realtime: appends ordered against real time.
    let g0 = paired(&sequential(&[
        t(0, "ok", json!([["append", 1, 1]])),
        t(1, "ok", json!([["append", 1, 2]])),
        t(2, "ok", json!([["r", 1, [2, 1]]])),
    ]));
    assert!(has(&g0, G0Realtime), "{:?}", anomalies(&g0));
    assert_eq!(label(&g0, StrongReadUncommitted), "invalid");
    assert_eq!(label(&g0, Serializable), "valid");
}

#[test]
fn g1c_process() {
    let h = |seen: serde_json::Value| {
        paired(&sequential(&[
            t(0, "ok", json!([["r", 1, seen]])),
            t(0, "ok", json!([["append", 1, 1]])),
        ]))
    };
    let bad = h(json!([1]));
    assert!(has(&bad, G1cProcess), "{:?}", anomalies(&bad));
    assert_eq!(label(&bad, ReadCommitted), "valid");
    assert_eq!(label(&bad, StrongSessionReadCommitted), "invalid");
    assert_eq!(label(&h(json!([])), StrictSerializable), "valid");
}

#[test]
fn every_anomaly_is_reported_not_just_the_first() {
    let p = paired(&concurrent(&[
        t(0, "fail", json!([["append", 1, 1]])),
        t(1, "ok", json!([["r", 1, [1]]])),
        t(2, "ok", json!([["append", 2, 1], ["append", 3, 1]])),
        t(3, "ok", json!([["r", 2, [1]], ["r", 3, []]])),
    ]));
    let a = anomalies(&p);
    assert!(a.contains(&G1a) && a.contains(&GSingle), "{a:?}");
    let w = verdict(&p, Serializable);
    let w = w.witness().unwrap();
    assert!(
        w.summary.contains("G1a") && w.summary.contains("G-single"),
        "{}",
        w.summary
    );
}

#[test]
fn rw_register_anomalies() {
    let g1c = paired(&concurrent(&[
        t(0, "ok", json!([["w", 1, 1], ["r", 2, 1]])),
        t(1, "ok", json!([["w", 2, 1], ["r", 1, 1]])),
    ]));
    assert!(has(&g1c, G1c), "{:?}", anomalies(&g1c));
    assert_eq!(label(&g1c, ReadCommitted), "invalid");
    let lost = paired(&concurrent(&[
        t(0, "ok", json!([["r", 1, null], ["w", 1, 1]])),
        t(1, "ok", json!([["r", 1, null], ["w", 1, 2]])),
    ]));
    assert!(has(&lost, LostUpdate), "{:?}", anomalies(&lost));
    assert_eq!(label(&lost, SnapshotIsolation), "invalid");
    let skew = paired(&concurrent(&[
        t(0, "ok", json!([["w", 1, 1], ["w", 2, 1]])),
        t(1, "ok", json!([["r", 1, 1], ["r", 2, null]])),
    ]));
    assert!(has(&skew, GSingle), "{:?}", anomalies(&skew));
    let good = paired(&sequential(&[
        t(0, "ok", json!([["w", 1, 1], ["w", 2, 1]])),
        t(1, "ok", json!([["r", 1, 1], ["r", 2, 1]])),
    ]));
    assert!(anomalies(&good).is_empty());
    assert_eq!(label(&good, StrictSerializable), "valid");
    assert_eq!(label(&good, Causal), "valid");
    // Reads that reveal no order: read committed is decided, serializability proved by
    // a serialization that explains every read.
    let g1b = paired(&concurrent(&[
        t(0, "ok", json!([["w", 1, 1], ["w", 1, 2]])),
        t(1, "ok", json!([["r", 1, 1]])),
    ]));
    assert!(has(&g1b, G1b));
}
