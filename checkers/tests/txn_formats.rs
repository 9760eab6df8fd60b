//! Transactional histories in every format: the fast path from JSONL bytes agrees with
//! the general path (same anomalies, same verdicts, same witnesses) and steps aside on
//! shapes it does not read; Jepsen EDN and JSONL are detected by content and import to
//! the same transactions.

use faultline_checkers::txn::fast::parse_jsonl;
use faultline_checkers::txn::gen::{generate, Isolation, TxnGenConfig};
use faultline_checkers::txn::{
    analyse, analyse_fast, is_txn_history, verdict_of, verdict_with, TxnModel, TxnOptions, Workload,
};
use faultline_history::{detect, pair, parse_str, write_history, Format, History};

fn jsonl(cfg: &TxnGenConfig) -> Vec<u8> {
    let mut out = Vec::new();
    write_history(&mut out, &History::from_events(generate(cfg))).expect("in memory");
    out
}

#[test]
fn the_fast_path_agrees_with_the_general_path() {
    let mut compared = 0;
    for (i, iso) in [
        Isolation::Serial,
        Isolation::SnapshotIsolation,
        Isolation::ReadCommitted,
        Isolation::ReadUncommitted,
    ]
    .into_iter()
    .enumerate()
    {
        for workload in [Workload::ListAppend, Workload::RwRegister] {
            for seed in 0..4 {
                let cfg = TxnGenConfig {
                    txns: 300,
                    processes: 5,
                    keys: 3,
                    max_writes_per_key: 6,
                    workload,
                    isolation: iso,
                    info_rate: 0.05,
                    abort_rate: 0.05,
                    seed: seed + 10 * i as u64,
                    ..TxnGenConfig::default()
                };
                let bytes = jsonl(&cfg);
                let fast = parse_jsonl(&bytes).expect("generated histories have the common shape");
                let text = std::str::from_utf8(&bytes).expect("utf-8");
                let h = parse_str(text, "gen", Format::Auto).expect("parses");
                let paired = pair(&h.events, "gen").expect("pairs");
                let opts = TxnOptions::default();
                let a = analyse_fast(&fast, &TxnModel::ALL, &opts).expect("txn");
                let b = analyse(&paired, &TxnModel::ALL, &opts).expect("txn");
                assert_eq!(a, b, "{iso:?} {workload} seed {seed}");
                for m in TxnModel::ALL {
                    let va = verdict_with(&|t| fast.operation(&bytes, t), &a, m);
                    let vb = verdict_of(&paired, &b, m);
                    assert_eq!(va, vb, "{iso:?} {workload} seed {seed} {m}");
                }
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 32);
}

#[test]
fn the_fast_path_steps_aside_on_other_shapes() {
    let header = "{\"format\":\"faultline-history\",\"version\":1}\n";
    let ok = format!(
        "{header}{}\n{}\n",
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","value":[["append",1,2]]}"#,
        r#"{"index":1,"time":5,"process":0,"type":"ok","f":"txn","value":[["append",1,2]],"node":"n1"}"#
    );
    assert!(parse_jsonl(ok.as_bytes()).is_some());
    for other in [
        // a register operation
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"read","value":null}"#,
        // an escape in a string
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","value":[["append","a\n",2]]}"#,
        // a decimal
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","value":[["append",1,2.5]]}"#,
        // a nemesis event
        r#"{"index":0,"time":0,"process":"nemesis","type":"info","f":"txn","value":null}"#,
        // a field it does not read
        r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"txn","key":"k","value":[]}"#,
    ] {
        let text = format!("{header}{other}\n");
        assert!(parse_jsonl(text.as_bytes()).is_none(), "{other}");
    }
    // A last line without its newline: the general path decides.
    assert!(parse_jsonl(ok.trim_end().as_bytes()).is_none());
}

#[test]
fn edn_and_jsonl_transactions_import_alike() {
    let edn = "{:type :invoke, :f :txn, :value [[:append 3 2] [:r 3 nil]], :process 0, :time 1}\n\
               {:type :ok, :f :txn, :value [[:append 3 2] [:r 3 [1 2]]], :process 0, :time 2}\n\
               {:type :invoke, :f :txn, :value [[:append 3 1]], :process 1, :time 3}\n\
               {:type :ok, :f :txn, :value [[:append 3 1]], :process 1, :time 4}\n";
    let json = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",3,2],[\"r\",3,null]]}\n\
                {\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",3,2],[\"r\",3,[1,2]]]}\n\
                {\"index\":2,\"time\":3,\"process\":1,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",3,1]]}\n\
                {\"index\":3,\"time\":4,\"process\":1,\"type\":\"ok\",\"f\":\"txn\",\"value\":[[\"append\",3,1]]}\n";
    assert_eq!(detect(edn.as_bytes()), Format::Edn);
    assert_eq!(detect(json.as_bytes()), Format::Jsonl);
    let a = pair(
        &parse_str(edn, "h.edn", Format::Auto).expect("edn").events,
        "h.edn",
    )
    .expect("pairs");
    let b = pair(
        &parse_str(json, "h.jsonl", Format::Auto)
            .expect("jsonl")
            .events,
        "h",
    )
    .expect("pairs");
    assert!(is_txn_history(&a) && is_txn_history(&b));
    let opts = TxnOptions::default();
    let ra = analyse(&a, &TxnModel::ALL, &opts).expect("edn txns");
    let rb = analyse(&b, &TxnModel::ALL, &opts).expect("jsonl txns");
    assert_eq!(ra.workload, Workload::ListAppend);
    let names = |r: &faultline_checkers::txn::TxnReport| {
        r.findings.iter().map(|f| f.anomaly).collect::<Vec<_>>()
    };
    // T0 read T1's append although T1 began after T0 ended: its own append then follows
    // T1's (ww) while T0 precedes T1 in real time: G0-realtime, in both formats.
    assert_eq!(
        names(&ra),
        vec![faultline_checkers::txn::Anomaly::G0Realtime]
    );
    assert_eq!(names(&ra), names(&rb));
    for m in TxnModel::ALL {
        assert_eq!(
            verdict_of(&a, &ra, m).label(),
            verdict_of(&b, &rb, m).label(),
            "{m}"
        );
    }
    // Keywords show without their colon in witnesses.
    let op = a.ops[0].describe();
    assert!(op.contains("[append 3 2; r 3 → [1,2]]"), "{op}");
}
