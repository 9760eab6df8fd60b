//! End to end: transactional workloads (list-append) in campaigns against real clusters.
//! raft-register under partitions and kills is strict serializable; each of its planted
//! txn faults is caught with the anomaly it should produce; quorum-kv, which claims no
//! isolation, reports which models held; etcd's revision-guarded transactions are strict
//! serializable under partitions. Plans a target cannot run exit 254 before any Docker
//! work.
//!
//! The campaigns need Docker and root (and `/usr/bin/etcd` for the etcd one: a missing
//! etcd is a failure saying how to install it, never a skip). Outside CI a machine
//! without Docker skips them, saying so; under `CI=true` they always run.

use std::path::Path;
use std::process::Output;

mod common;
use common::{assert_refused, campaign_slot, faultline, scratch, stored_history};

/// Runs `faultline test` with `args` into `store`.
fn campaign(args: &[&str], store: &Path) -> Output {
    faultline()
        .arg("test")
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .expect("faultline runs")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The stored `verdict.json` of the newest run.
fn verdict(store: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(store.join("latest").join("verdict.json")).expect("verdict.json"),
    )
    .expect("json")
}

/// The row of `model` in a verdict document.
fn row(verdict: &serde_json::Value, model: &str) -> serde_json::Value {
    verdict["models"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["model"] == model))
        .cloned()
        .unwrap_or_else(|| panic!("no row for {model}: {verdict:#}"))
}

/// Checks that the newest run holds transactions only, enough of them ok.
fn assert_transactions(store: &Path, min_ok: usize) {
    let history = stored_history(store);
    assert_eq!(
        history.meta.get("workload"),
        Some(&serde_json::json!("list-append"))
    );
    let paired = history.pair("history.jsonl").expect("pairs");
    assert!(paired.ops.iter().all(|o| o.f == "txn" && o.key.is_none()));
    let ok = paired
        .ops
        .iter()
        .filter(|o| o.outcome == faultline_history::Outcome::Ok)
        .count();
    assert!(ok >= min_ok, "only {ok} ok transactions");
}

#[test]
fn transactional_plans_a_target_cannot_run_exit_254() {
    let dir = scratch("txn-", "bad");
    let adapter =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/targets/etcd-adapter.toml");
    let adapter = adapter.to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--target", &adapter, "--workload", "list-append"],
            "does not run transactional workloads",
        ),
        (
            vec!["--fault", "txn-split"],
            "--workload list-append or rw-register",
        ),
        (
            vec!["--workload", "list-append", "--check", "linearizable"],
            "isolation models",
        ),
        (
            vec![
                "--workload",
                "rw-register",
                "--min-txn-length",
                "5",
                "--max-txn-length",
                "2",
            ],
            "--min-txn-length",
        ),
        (
            vec!["--workload", "list-append", "--max-txn-length", "65"],
            "1 to 64",
        ),
        (
            vec!["--workload", "list-append", "--read-fraction", "2"],
            "fraction",
        ),
    ];
    for (args, needle) in cases {
        assert_refused(&args, needle, &dir);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn raft_register_list_append_under_partitions_and_kills_is_strict_serializable() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    let work = scratch("txn-", "raft");
    let store = work.join("store");
    let out = campaign(
        &[
            "--target",
            "raft-register",
            "--nodes",
            "3",
            "--workload",
            "list-append",
            "--time-limit",
            "12",
            "--nemesis",
            "partition,kill",
            "--nemesis-interval",
            "2",
            "--recovery",
            "2",
            "--seed",
            "3",
        ],
        &store,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = verdict(&store);
    let ss = row(&v, "strict-serializable");
    assert_eq!(
        (ss["result"].as_str(), ss["claimed"].as_bool()),
        (Some("valid"), Some(true)),
        "{v:#}"
    );
    assert_eq!(v["strongest"], serde_json::json!(["strict-serializable"]));
    assert_transactions(&store, 200);
    let run: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.join("latest").join("run.json")).expect("run.json"),
    )
    .expect("json");
    assert!(
        run["live_check_skipped"]
            .as_str()
            .is_some_and(|s| s.contains("checked once")),
        "{run:#}"
    );
    assert_eq!(
        run["claims"]["models"],
        serde_json::json!(["strict-serializable"])
    );
    std::fs::remove_dir_all(&work).ok();
}

#[test]
fn each_planted_txn_fault_is_caught_with_its_anomaly() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    // The anomaly classes each fault produces (one of them must be named).
    let faults: [(&str, &[&str]); 3] = [
        ("txn-lost-update", &["lost-update"]),
        ("txn-split", &["G1c", "G-single", "G1b"]),
        ("txn-stale-reads", &["G-single", "G2-item"]),
    ];
    for (fault, expected) in faults {
        let work = scratch("txn-", fault);
        let store = work.join("store");
        // Up to three short campaigns, stopping at the first violation.
        let out = campaign(
            &[
                "--target",
                "raft-register",
                "--nodes",
                "3",
                "--workload",
                "list-append",
                "--fault",
                fault,
                "--time-limit",
                "12",
                "--recovery",
                "1",
                "--seed",
                "1",
                "--test-count",
                "3",
            ],
            &store,
        );
        assert_eq!(out.status.code(), Some(1), "{fault}: {}", text(&out));
        let v = verdict(&store);
        assert_eq!(v["overall"], "invalid", "{fault}");
        let ss = row(&v, "strict-serializable");
        assert_eq!(ss["result"], "invalid", "{fault}: {v:#}");
        let explanation = ss["explanation"].as_str().unwrap_or_default();
        assert!(
            expected.iter().any(|a| explanation.contains(a)),
            "{fault}: none of {expected:?} named in {explanation}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("anomalies found:"), "{stdout}");
        std::fs::remove_dir_all(&work).ok();
    }
}

#[test]
fn quorum_kv_list_append_reports_which_isolation_models_held() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    let work = scratch("txn-", "quorum");
    let store = work.join("store");
    let out = campaign(
        &[
            "--target",
            "quorum-kv",
            "--nodes",
            "3",
            "--workload",
            "list-append",
            "--time-limit",
            "8",
            "--nemesis",
            "partition",
            "--recovery",
            "1",
            "--seed",
            "2",
        ],
        &store,
    );
    // It claims no isolation: no verdict decides the exit code.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = verdict(&store);
    assert!(
        v["exit_meaning"]
            .as_str()
            .is_some_and(|s| s.contains("claims no model")),
        "{v:#}"
    );
    let rows = v["models"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 17, "every isolation model has a row");
    assert!(rows.iter().all(|r| r["claimed"] == false));
    assert!(rows
        .iter()
        .all(|r| ["valid", "invalid", "unknown", "implied", "ruled-out"]
            .contains(&r["result"].as_str().unwrap_or(""))));
    assert!(v["strongest"].is_array());
    assert_transactions(&store, 100);
    std::fs::remove_dir_all(&work).ok();
}

#[test]
fn etcd_list_append_under_partitions_is_strict_serializable() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    assert!(
        Path::new("/usr/bin/etcd").is_file(),
        "/usr/bin/etcd is missing: install Debian's etcd-server: sudo apt-get install etcd-server \
         (CI installs it from .ci/run)"
    );
    let work = scratch("txn-", "etcd");
    let store = work.join("store");
    let out = campaign(
        &[
            "--target",
            "etcd",
            "--nodes",
            "3",
            "--workload",
            "list-append",
            "--time-limit",
            "12",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "2",
            "--recovery",
            "2",
            "--seed",
            "4",
        ],
        &store,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = verdict(&store);
    let ss = row(&v, "strict-serializable");
    assert_eq!(
        (ss["result"].as_str(), ss["claimed"].as_bool()),
        (Some("valid"), Some(true)),
        "{v:#}"
    );
    assert_transactions(&store, 200);
    // Conflicting transactions abort (fail, "conflict") rather than apply half.
    let history = stored_history(&store);
    let paired = history.pair("history.jsonl").expect("pairs");
    assert!(
        paired
            .ops
            .iter()
            .filter(|o| o.outcome == faultline_history::Outcome::Fail)
            .all(|o| o.error.as_deref().is_some_and(|e| !e.is_empty())),
        "every failed transaction says why"
    );
    std::fs::remove_dir_all(&work).ok();
}
