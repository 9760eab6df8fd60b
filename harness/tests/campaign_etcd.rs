//! End to end against a real third-party system: `faultline test --target etcd` runs a
//! short campaign against a 3-member etcd cluster (Debian's `etcd-server`, `/usr/bin/etcd`)
//! in Docker, with partitions, kills and pauses, and stores a valid linearizability
//! verdict; bad etcd plans exit 254 before touching Docker.
//!
//! The campaign needs Docker, root and `/usr/bin/etcd` (CI installs `etcd-server` in
//! `.ci/run`). Outside CI a machine without Docker skips it, saying so; under `CI=true` it
//! always runs. A missing `/usr/bin/etcd` is a failure that says how to install it, never a
//! skip.

use std::path::Path;

mod common;
use common::{
    assert_linearizable_verdict, assert_refused, assert_valid_run, campaign_slot, faultline,
    scratch, stored_history,
};

const ETCD: &str = "/usr/bin/etcd";

/// Fails (never skips) when etcd is not installed.
fn require_etcd() {
    assert!(
        Path::new(ETCD).is_file(),
        "{ETCD} is missing: install Debian's etcd-server: sudo apt-get install etcd-server \
         (CI installs it from .ci/run)"
    );
}

#[test]
fn bad_etcd_plans_exit_254_with_a_clear_message() {
    let dir = scratch("etcd-", "bad");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--target", "etcd", "--target-opt", "reads=stale"],
            "reads=stale: must be linearizable (the default) or serializable",
        ),
        (
            vec!["--target", "etcd", "--target-opt", "r=1"],
            "reads=linearizable or reads=serializable",
        ),
        (
            vec!["--target", "etcd", "--nemesis", "partition,clock"],
            "vDSO",
        ),
        (vec!["--target", "etcd", "--fault", "stale-reads"], "etcd"),
        (
            vec!["--target", "etcd", "--node-binary", "/nonexistent/etcd"],
            "sudo apt-get install etcd-server",
        ),
    ];
    for (args, needle) in cases {
        assert_refused(&args, needle, &dir);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_short_campaign_against_etcd_is_linearizable_and_stored() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    require_etcd();
    let work = scratch("etcd-", "store");
    let store = work.join("store");
    let out = faultline()
        .args(["test", "--target", "etcd", "--nodes", "3"])
        .args(["--time-limit", "15", "--concurrency", "6", "--rate", "150"])
        .args(["--keys", "3", "--nemesis", "partition,kill,pause"])
        .args(["--nemesis-interval", "2", "--recovery", "3", "--seed", "7"])
        .arg("--store")
        .arg(&store)
        .output()
        .expect("faultline runs");
    assert_valid_run(&out, "faultline test --target etcd", 7);

    let run = store.join("latest");
    assert_linearizable_verdict(&store);

    let history = stored_history(&store);
    assert_eq!(history.meta.get("target"), Some(&serde_json::json!("etcd")));
    let paired = history.pair("history.jsonl").expect("pairs");
    let ok = |f: &str| {
        paired
            .ops
            .iter()
            .filter(|o| o.outcome == faultline_history::Outcome::Ok && o.f == f)
            .count()
    };
    assert!(
        paired.ops.len() > 300,
        "only {} operations in 15 s at 150/s",
        paired.ops.len()
    );
    assert!(
        ok("read") > 50 && ok("write") > 20 && ok("cas") > 5,
        "too few ok operations: {} reads, {} writes, {} cas of {}",
        ok("read"),
        ok("write"),
        ok("cas"),
        paired.ops.len()
    );
    let nemesis_fs: Vec<&str> = history
        .events
        .iter()
        .filter(|e| e.process == faultline_history::Process::Nemesis)
        .map(|e| e.f.as_str())
        .collect();
    for f in ["kill", "start", "heal"] {
        assert!(nemesis_fs.contains(&f), "no {f} in {nemesis_fs:?}");
    }
    // The final reads: every key through every member after the final heal, so a killed
    // member has restarted from its data dir and rejoined.
    let last_fault = history
        .events
        .iter()
        .rposition(|e| e.process == faultline_history::Process::Nemesis)
        .expect("faults");
    let final_reads: std::collections::BTreeSet<String> = history.events[last_fault..]
        .iter()
        .filter(|e| e.f == "read" && e.kind == faultline_history::EventType::Ok)
        .filter_map(|e| e.node.clone())
        .collect();
    assert_eq!(
        final_reads.into_iter().collect::<Vec<_>>(),
        vec!["n1", "n2", "n3"],
        "every member answers the final reads"
    );

    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json"))
            .expect("json");
    assert_eq!(run_json["target"], "etcd");
    assert_eq!(run_json["versions"]["node_binary"], ETCD);
    assert_eq!(
        run_json["claims"]["models"],
        serde_json::json!(["linearizable"])
    );
    for n in ["n1", "n2", "n3"] {
        let log =
            std::fs::read_to_string(run.join("logs").join(format!("{n}.log"))).unwrap_or_default();
        assert!(log.contains("etcd-version"), "log of {n} is etcd's");
    }
    std::fs::remove_dir_all(&work).ok();
}
