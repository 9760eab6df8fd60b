//! Every labelled Porcupine history gives the verdict its origin asserts
//! (`testdata/porcupine/expected.tsv`), and every witness fails again on its own.

mod lin_common;

use faultline_checkers::{check_linearizable, DataModel, LinOptions, Verdict};
use faultline_history::import::{load, Format};
use faultline_history::{pair, Event, EventType, History, META_INITIAL};
use lin_common::{assert_witness_fails, testdata};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn options_for(h: &History) -> LinOptions {
    LinOptions {
        initial: h.meta.get(META_INITIAL).cloned().unwrap_or_default(),
        nil_reads_unknown: h.nil_reads_unknown(),
        time_limit: Some(Duration::from_secs(60)),
        ..LinOptions::default()
    }
}

fn expected() -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(testdata("porcupine/expected.tsv")).expect("expected.tsv");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.split('\t');
            let file = parts.next().unwrap_or_default().to_string();
            let verdict = parts.next().unwrap_or_default().trim();
            assert!(
                verdict == "linearizable" || verdict == "not-linearizable",
                "unexpected verdict {verdict:?} in expected.tsv"
            );
            (file, verdict == "linearizable")
        })
        .collect()
}

fn check_set(prefix: &str, model: DataModel, expect_count: usize) {
    let cases: Vec<(String, bool)> = expected()
        .into_iter()
        .filter(|(f, _)| f.starts_with(prefix))
        .collect();
    assert_eq!(cases.len(), expect_count, "labelled files under {prefix}");
    let mut total = Duration::ZERO;
    let mut wrong = Vec::new();
    for (file, linearizable) in &cases {
        let h = load(&testdata(&format!("porcupine/{file}")), Format::Auto)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let paired = h.pair(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let opts = options_for(&h);
        let t = Instant::now();
        let report = check_linearizable(&paired, model, &opts);
        total += t.elapsed();
        match (&report.verdict, linearizable) {
            (Verdict::Valid, true) => {}
            (Verdict::Invalid { witness }, false) => {
                assert_witness_fails(&paired, model, &opts, witness, file);
            }
            (v, _) => wrong.push(format!(
                "{file}: expected {}, got {v:?}",
                if *linearizable { "valid" } else { "invalid" }
            )),
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    eprintln!(
        "{prefix}: {} files checked (with witnesses) in {total:?}",
        cases.len()
    );
}

#[test]
fn etcd_logs_match_porcupine_verdicts() {
    check_set("jepsen/", DataModel::CasRegister, 102);
}

#[test]
fn kv_logs_match_porcupine_verdicts() {
    check_set("kv/", DataModel::Kv, 6);
}

#[test]
fn porcupine_register_examples() {
    let text = std::fs::read_to_string(testdata("registers/porcupine-register-examples.json"))
        .expect("file");
    let doc: Value = serde_json::from_str(&text).expect("json");
    let hs = doc["histories"].as_array().expect("histories");
    assert_eq!(hs.len(), 4);
    for h in hs {
        let name = h["name"].as_str().unwrap_or_default();
        // Call/return times, calls before returns on equal times (closed intervals).
        let mut ev: Vec<(u64, u8, u64, &str, Value)> = Vec::new();
        for o in h["ops"].as_array().expect("ops") {
            let c = o["client"].as_u64().expect("client");
            let (f, v) = if o["op"] == "put" {
                ("write", o["value"].clone())
            } else {
                ("read", o["value"].clone())
            };
            ev.push((
                o["call"].as_u64().expect("call"),
                0,
                c,
                f,
                if f == "write" { v.clone() } else { Value::Null },
            ));
            ev.push((o["return"].as_u64().expect("return"), 1, c, f, v));
        }
        ev.sort_by_key(|e| (e.0, e.1));
        let events: Vec<Event> = ev
            .into_iter()
            .enumerate()
            .map(|(i, (t, ret, c, f, v))| {
                let mut e = Event::client(
                    i as u64,
                    c,
                    if ret == 0 {
                        EventType::Invoke
                    } else {
                        EventType::Ok
                    },
                    f,
                    v,
                );
                e.time = t;
                e
            })
            .collect();
        let paired = pair(&events, name).expect("pairs");
        let opts = LinOptions {
            initial: json!(0),
            ..LinOptions::default()
        };
        let verdict = check_linearizable(&paired, DataModel::Register, &opts).verdict;
        let expected = h["expected_linearizable"].as_bool().expect("label");
        assert_eq!(
            matches!(verdict, Verdict::Valid),
            expected,
            "{name}: {verdict:?}"
        );
        if let Verdict::Invalid { witness } = &verdict {
            assert_witness_fails(&paired, DataModel::Register, &opts, witness, name);
        }
    }
}
