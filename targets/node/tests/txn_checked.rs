//! End to end, without Docker: concurrent list-append transactions against a loopback
//! raft-register cluster are recorded as a faultline-history/1 JSONL history and checked
//! with faultline's transactional checker. Each planted `txn-*` fault yields a history the
//! checker finds not serializable; the same workload without a fault is never found
//! invalid. Set `FAULTLINE_TXN_HISTORY_DIR` to keep the histories (then check them with
//! `faultline check --model serializable FILE`).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Cluster, Spec};
use faultline_checkers::{check_txn, TxnModel, TxnOptions, Verdict};
use serde_json::{json, Value};

/// Events recorded so far, as JSONL lines; index and time are taken under the lock.
struct Recorder {
    start: Instant,
    lines: Mutex<Vec<String>>,
}

impl Recorder {
    fn record(&self, mut event: Value) {
        let mut lines = self.lines.lock().expect("recorder lock");
        event["index"] = json!(lines.len());
        event["time"] = json!(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        lines.push(event.to_string());
    }

    fn jsonl(&self) -> String {
        let lines = self.lines.lock().expect("recorder lock");
        let mut text = String::from("{\"format\":\"faultline-history\",\"version\":1}\n");
        for l in lines.iter() {
            text.push_str(l);
            text.push('\n');
        }
        text
    }
}

/// A small xorshift generator: the workload is the same for a given seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs `txns` list-append transactions on each of `procs` processes (process p talks to
/// node p mod 3), over 4 keys, 1 to 4 micro-operations each, appended values unique.
async fn workload(c: &Cluster, rec: &Arc<Recorder>, first_proc: usize, procs: usize, txns: usize) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let tasks: Vec<_> = (first_proc..first_proc + procs)
        .map(|p| {
            let (http, url) = (c.http.clone(), c.url(p % 3, "/txn"));
            let rec = rec.clone();
            tokio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (p as u64 + 1));
                for _ in 0..txns {
                    let n = 1 + rng.below(4);
                    let mops: Vec<Value> = (0..n)
                        .map(|_| {
                            let k = rng.below(4);
                            if rng.below(2) == 0 {
                                json!(["r", k, null])
                            } else {
                                json!(["append", k, NEXT.fetch_add(1, Ordering::SeqCst)])
                            }
                        })
                        .collect();
                    rec.record(json!({"process": p, "type": "invoke", "f": "txn", "value": mops}));
                    let sent = http
                        .post(&url)
                        .timeout(Duration::from_secs(5))
                        .json(&json!({ "txn": mops }))
                        .send()
                        .await;
                    let answer = match sent {
                        Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                        Err(_) => Value::Null,
                    };
                    let done = match answer["outcome"].as_str() {
                        Some("ok") => json!({"process": p, "type": "ok", "f": "txn",
                                             "value": answer["txn"], "node": answer["node"]}),
                        Some("fail") => json!({"process": p, "type": "fail", "f": "txn",
                                               "value": mops, "error": answer["error"]}),
                        _ => json!({"process": p, "type": "info", "f": "txn", "value": mops}),
                    };
                    rec.record(done);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }
}

/// Checks the history recorded so far for serializability and strict serializability.
fn check(rec: &Recorder, label: &str) -> Vec<(TxnModel, Verdict)> {
    let text = rec.jsonl();
    if let Some(dir) = std::env::var_os("FAULTLINE_TXN_HISTORY_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{label}.jsonl"));
        std::fs::write(&path, &text).expect("write the history");
    }
    let history = faultline_history::parse_str(&text, label, faultline_history::Format::Jsonl)
        .expect("the recorded history parses");
    let paired = history.pair(label).expect("the recorded history pairs");
    check_txn(
        &paired,
        &[TxnModel::Serializable, TxnModel::StrictSerializable],
        &TxnOptions {
            time_limit: Some(Duration::from_secs(60)),
            ..TxnOptions::default()
        },
    )
}

fn invalid(verdicts: &[(TxnModel, Verdict)], model: TxnModel) -> bool {
    verdicts
        .iter()
        .any(|(m, v)| *m == model && matches!(v, Verdict::Invalid { .. }))
}

/// Runs rounds of the workload on a cluster of `spec` until the checker finds the history
/// not serializable (at most `rounds` rounds); returns the verdicts.
async fn caught(spec: Spec, label: &str, rounds: usize) -> Vec<(TxnModel, Verdict)> {
    let c = Cluster::start(spec).await;
    for i in 0..3 {
        c.wait_healthy(i).await;
    }
    let rec = Arc::new(Recorder {
        start: Instant::now(),
        lines: Mutex::new(Vec::new()),
    });
    let mut verdicts = Vec::new();
    for round in 0..rounds {
        workload(&c, &rec, round * 6, 6, 40).await;
        verdicts = check(&rec, label);
        if invalid(&verdicts, TxnModel::Serializable) {
            break;
        }
    }
    verdicts
}

async fn assert_caught(fault: &str) {
    let spec = Spec::new("raft-register", 3).fault(fault);
    let verdicts = caught(spec, fault, 5).await;
    assert!(
        invalid(&verdicts, TxnModel::Serializable),
        "{fault}: not found invalid: {verdicts:?}"
    );
    assert!(
        invalid(&verdicts, TxnModel::StrictSerializable),
        "{verdicts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_finds_txn_lost_update() {
    assert_caught("txn-lost-update").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_finds_txn_split() {
    assert_caught("txn-split").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_finds_txn_stale_reads() {
    assert_caught("txn-stale-reads").await;
}

/// quorum-kv offers no isolation, fault or not: the same workload is not serializable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_finds_quorum_kv_not_serializable() {
    let verdicts = caught(Spec::new("quorum-kv", 3), "quorum-kv", 5).await;
    assert!(
        invalid(&verdicts, TxnModel::Serializable),
        "quorum-kv: not found invalid: {verdicts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_workload_without_a_fault_is_strictly_serializable() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    c.wait_leader(&[0, 1, 2]).await;
    let rec = Arc::new(Recorder {
        start: Instant::now(),
        lines: Mutex::new(Vec::new()),
    });
    workload(&c, &rec, 0, 6, 80).await;
    let verdicts = check(&rec, "no-fault");
    for (m, v) in &verdicts {
        assert!(!matches!(v, Verdict::Invalid { .. }), "{m:?}: {v:?}");
    }
    // At least serializability is proven, not merely not refuted.
    assert!(
        verdicts
            .iter()
            .any(|(m, v)| *m == TxnModel::Serializable && matches!(v, Verdict::Valid)),
        "{verdicts:?}"
    );
}
