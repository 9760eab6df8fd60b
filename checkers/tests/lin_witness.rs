//! Witnesses of the labelled Porcupine histories that are not linearizable: each fails on
//! its own, and a witness claimed 1-minimal really is: without any one of its reads (which
//! support nothing, so their removal takes nothing else with it) it passes.
//!
//! (A closure that required every provider of an appended piece, rather than one, once
//! made shrinking reject every removal and call an 84-operation witness 1-minimal; the
//! same history has a 4-operation one.)

mod lin_common;

use faultline_checkers::{check_linearizable, DataModel, LinOptions, Minimality, Verdict};
use faultline_history::import::{load, Format};
use faultline_history::{Paired, META_INITIAL};
use lin_common::{assert_witness_fails, testdata};
use std::time::Duration;

fn bad_files() -> Vec<(String, DataModel)> {
    let text = std::fs::read_to_string(testdata("porcupine/expected.tsv")).expect("expected.tsv");
    text.lines()
        .filter(|l| l.contains("not-linearizable"))
        .filter_map(|l| l.split('\t').next())
        .map(|f| {
            let model = if f.starts_with("kv/") {
                DataModel::Kv
            } else {
                DataModel::CasRegister
            };
            (f.to_string(), model)
        })
        .collect()
}

#[test]
fn witnesses_fail_alone_and_one_minimal_ones_lose_the_violation_without_any_read() {
    let files = bad_files();
    assert!(files.len() > 40, "{} labelled violations", files.len());
    for (file, model) in files {
        let h = load(&testdata(&format!("porcupine/{file}")), Format::Auto)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let paired = h.pair(&file).expect("pairs");
        let opts = LinOptions {
            initial: h.meta.get(META_INITIAL).cloned().unwrap_or_default(),
            time_limit: Some(Duration::from_secs(60)),
            ..LinOptions::default()
        };
        let report = check_linearizable(&paired, model, &opts);
        let Verdict::Invalid { witness } = &report.verdict else {
            panic!("{file}: {:?}", report.verdict);
        };
        assert_witness_fails(&paired, model, &opts, witness, &file);
        assert_eq!(report.witness_ops, witness.ops.len(), "{file}");
        if witness.minimality != Minimality::OneMinimal {
            continue;
        }
        let unchecked = LinOptions {
            shrink: false,
            ..opts.clone()
        };
        for (k, w) in witness.ops.iter().enumerate() {
            let read = matches!(w.op.f.as_str(), "read" | "get")
                && w.op.outcome == faultline_history::Outcome::Ok;
            if !read {
                continue;
            }
            let rest = Paired {
                ops: witness
                    .ops
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != k)
                    .map(|(_, w)| w.op.clone())
                    .collect(),
                faults: Vec::new(),
            };
            let v = check_linearizable(&rest, model, &unchecked).verdict;
            assert_eq!(
                v,
                Verdict::Valid,
                "{file}: the witness without {} still fails, so it is not 1-minimal:\n{}",
                w.label,
                witness.render_text()
            );
        }
    }
}

#[test]
fn the_c50_append_violation_shrinks_to_a_handful_of_operations() {
    let file = "kv/c50-bad.txt";
    let h = load(&testdata(&format!("porcupine/{file}")), Format::Auto).expect("loads");
    let paired = h.pair(file).expect("pairs");
    let opts = LinOptions {
        initial: h.meta.get(META_INITIAL).cloned().unwrap_or_default(),
        ..LinOptions::default()
    };
    let report = check_linearizable(&paired, DataModel::Kv, &opts);
    let w = report.verdict.witness().expect("invalid");
    assert!(
        w.ops.len() <= 8,
        "{} operations:\n{}",
        w.ops.len(),
        w.render_text()
    );
    assert_eq!(w.minimality, Minimality::OneMinimal);
    // Every key of this history is invalid; the witness is the first key's, however the
    // keys were spread over threads.
    assert_eq!(w.key.as_deref(), Some("0"));
    assert_eq!(report.invalid_keys.first().map(String::as_str), Some("0"));
    assert_eq!(report.keys, 10);
    // On one thread the keys go in name order: checking stops after the first.
    let one = check_linearizable(
        &paired,
        DataModel::Kv,
        &LinOptions {
            threads: Some(1),
            ..opts.clone()
        },
    );
    assert_eq!(one.invalid_keys, vec!["0".to_string()]);
    assert_eq!(one.skipped_keys, 9);
    assert_eq!(one.verdict, report.verdict);
}
