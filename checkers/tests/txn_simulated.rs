//! Histories from simulated databases (`txn::gen`): no false positive at the level each
//! implements, and the anomalies expected below it.

use faultline_checkers::txn::gen::{generate, Isolation, TxnGenConfig};
use faultline_checkers::txn::{analyse, verdict_of, Anomaly, TxnModel, TxnOptions, Workload};
use faultline_checkers::Verdict;
use faultline_history::pair;

/// For each seed: the verdict of `holds` (must not be invalid) and whether `breaks` was
/// found invalid; returns how many seeds broke it and the anomalies seen.
fn run(
    iso: Isolation,
    workload: Workload,
    holds: TxnModel,
    breaks: TxnModel,
) -> (usize, Vec<Anomaly>) {
    let mut broken = 0;
    let mut seen = Vec::new();
    for seed in 0..24 {
        let cfg = TxnGenConfig {
            txns: 400,
            processes: 6,
            keys: 3,
            max_writes_per_key: 8,
            workload,
            isolation: iso,
            info_rate: 0.05,
            abort_rate: 0.05,
            seed,
            ..TxnGenConfig::default()
        };
        let events = generate(&cfg);
        let paired = pair(&events, "sim").expect("well-formed");
        let report = analyse(&paired, &TxnModel::ALL, &TxnOptions::default()).expect("txn");
        let v = verdict_of(&paired, &report, holds);
        if let Verdict::Invalid { witness } = &v {
            panic!(
                "{iso:?} {workload}: {holds} violated (seed {seed}):\n{}",
                witness.render_text()
            );
        }
        if workload == Workload::ListAppend && holds != TxnModel::ReadUncommitted {
            assert!(
                v.holds() == Some(true) || holds == TxnModel::SnapshotIsolation,
                "{iso:?}: {holds} not proved (seed {seed}): {v:?}"
            );
        }
        if workload == Workload::RwRegister && iso == Isolation::Serial {
            // The strict-serialization search proves what reads alone cannot order.
            assert_eq!(
                v.holds(),
                Some(true),
                "serial rw-register: {holds} not proved (seed {seed}): {v:?}"
            );
        }
        if verdict_of(&paired, &report, breaks).holds() == Some(false) {
            broken += 1;
        }
        for f in &report.findings {
            if !seen.contains(&f.anomaly) {
                seen.push(f.anomaly);
            }
        }
    }
    (broken, seen)
}

#[test]
fn serial_execution_is_strict_serializable() {
    for w in [Workload::ListAppend, Workload::RwRegister] {
        let (_, seen) = run(
            Isolation::Serial,
            w,
            TxnModel::StrictSerializable,
            TxnModel::StrictSerializable,
        );
        assert!(seen.is_empty(), "{w}: {seen:?}");
    }
}

#[test]
fn snapshot_isolation_holds_and_serializability_breaks() {
    for w in [Workload::ListAppend, Workload::RwRegister] {
        let (broken, seen) = run(
            Isolation::SnapshotIsolation,
            w,
            TxnModel::StrongSnapshotIsolation,
            TxnModel::Serializable,
        );
        assert!(broken > 0, "{w}: write skew never found");
        assert!(
            seen.iter().any(|a| a.as_str().starts_with("G2-item")),
            "{w}: {seen:?}"
        );
    }
}

#[test]
fn read_committed_holds_and_snapshot_isolation_breaks() {
    for w in [Workload::ListAppend, Workload::RwRegister] {
        let (broken, seen) = run(
            Isolation::ReadCommitted,
            w,
            TxnModel::ReadCommitted,
            TxnModel::SnapshotIsolation,
        );
        assert!(broken > 0, "{w}: {seen:?}");
    }
}

#[test]
fn read_uncommitted_holds_and_read_committed_breaks() {
    for w in [Workload::ListAppend, Workload::RwRegister] {
        let (broken, seen) = run(
            Isolation::ReadUncommitted,
            w,
            TxnModel::ReadUncommitted,
            TxnModel::ReadCommitted,
        );
        assert!(broken > 0, "{w}: {seen:?}");
        assert!(
            seen.contains(&Anomaly::G1a) || seen.contains(&Anomaly::G1b),
            "{w}: {seen:?}"
        );
    }
}

#[test]
fn no_false_positive_on_larger_histories() {
    for (iso, model) in [
        (Isolation::Serial, TxnModel::StrictSerializable),
        (
            Isolation::SnapshotIsolation,
            TxnModel::StrongSnapshotIsolation,
        ),
        (Isolation::ReadCommitted, TxnModel::ReadCommitted),
        (Isolation::ReadUncommitted, TxnModel::ReadUncommitted),
    ] {
        for workload in [Workload::ListAppend, Workload::RwRegister] {
            let cfg = TxnGenConfig {
                txns: 20_000,
                workload,
                isolation: iso,
                info_rate: 0.01,
                abort_rate: 0.02,
                seed: 7,
                ..TxnGenConfig::default()
            };
            let paired = pair(&generate(&cfg), "sim").expect("well-formed");
            let report = analyse(&paired, &[model], &TxnOptions::default()).expect("txn");
            let v = verdict_of(&paired, &report, model);
            assert!(
                v.holds() != Some(false),
                "{iso:?} {workload}: {model}: {v:?}"
            );
            if iso == Isolation::Serial {
                assert_eq!(
                    v.holds(),
                    Some(true),
                    "{workload}: {model} not proved: {v:?}"
                );
            }
        }
    }
}
