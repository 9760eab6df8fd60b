//! Any JSON value goes through the node exactly: numbers beyond 64 bits or f64, with many
//! digits or huge exponents, come back with the same exact value through writes, reads,
//! cas, forwarding to the leader, the WAL, snapshots (raft-register) and the store file
//! (quorum-kv). cas compares values by exact value: numbers by exact decimal value (1, 1.0
//! and 1e0 are the same), objects whatever their key order.

mod common;

use std::time::Duration;

use common::{Cluster, Spec};
use serde_json::{json, Value};

/// Values whose numbers an f64 (or a u64) would change.
const TEXTS: &[&str] = &[
    "18446744073709551617",
    "-99999999999999999999",
    "1e400",
    "123456789012345678901234567890.5",
    "0.1000000000000000055511151231257827",
    "-0",
    "1.50",
    "2E-400",
    "[1e-400, 340282366920938463463374607431768211457, -1.0e+99999999999999999999]",
    r#"{"b": 1.0, "a": [true, null, "x", 9007199254740993]}"#,
    r#""a string""#,
];

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The same value, number text included (serde_json writes an exponent with its sign:
/// 1e400 as 1e+400, the same number).
fn exactly(got: &Value, want: &Value) -> bool {
    got == want && format!("{got}") == format!("{want}")
}

async fn wait_applied(c: &Cluster, nodes: &[usize]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut commit = 0;
        for &i in nodes {
            commit = commit.max(c.status(i).await["commit"].as_u64().unwrap_or(0));
        }
        let mut behind = false;
        for &i in nodes {
            behind |= c.status(i).await["applied"].as_u64().unwrap_or(0) < commit;
        }
        if !behind && commit > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nodes never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads every value from node i's own state (`stale-reads` serves reads locally).
async fn check_local(c: &Cluster, i: usize, what: &str) {
    for (k, text) in TEXTS.iter().enumerate() {
        let got = c.read_ok(i, &format!("v{k}")).await;
        assert!(
            exactly(&got, &parse(text)),
            "{what}: n{} holds {got} for {text}",
            i + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_register_keeps_every_value_exactly() {
    // stale-reads: each node answers reads from its own state, which is what is checked.
    let mut c = Cluster::start(
        Spec::new("raft-register", 3)
            .fault("stale-reads")
            .arg("--snapshot-every")
            .arg("5"),
    )
    .await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let lagging = (leader + 1) % 3;
    let follower = (leader + 2) % 3;
    c.kill(lagging);
    for (k, text) in TEXTS.iter().enumerate() {
        // Through a follower, which forwards to the leader, and through the leader.
        for via in [follower, leader] {
            let (code, body) = c.write(via, &format!("v{k}"), parse(text)).await;
            assert_eq!(code, 200, "{body}");
            assert!(exactly(&body["value"], &parse(text)), "{text}: {body}");
        }
    }
    wait_applied(&c, &[leader, follower]).await;
    check_local(&c, leader, "leader").await;
    check_local(&c, follower, "follower").await;
    // The lagging node gets them in a snapshot.
    c.start_node(lagging);
    c.wait_healthy(lagging).await;
    wait_applied(&c, &[0, 1, 2]).await;
    let s = c.status(lagging).await;
    assert!(s["snapshot_index"].as_u64().unwrap_or(0) > 0, "{s}");
    check_local(&c, lagging, "from a snapshot").await;
    // Every node restarted: from its snapshot and its WAL.
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.start_node(i);
    }
    c.wait_leader(&[0, 1, 2]).await;
    wait_applied(&c, &[0, 1, 2]).await;
    for i in 0..3 {
        check_local(&c, i, "after a restart").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_register_cas_compares_by_exact_value() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let via = (leader + 1) % 3;
    // (stored, expected, whether they are the same value)
    let cases = [
        ("18446744073709551617", "18446744073709551617.0", true),
        ("18446744073709551617", "1.8446744073709551617e19", true),
        ("18446744073709551617", "18446744073709551616", false),
        ("1", "1.0", true),
        ("100", "1e2", true),
        ("100", "1E+2", true),
        ("0.5", "5e-1", true),
        ("0", "-0", true),
        ("0", "0.000e-99999999999999999999999", true),
        ("1e400", "10e399", true),
        ("1e400", "1e401", false),
        ("1e99999999999999999999", "0.1e100000000000000000000", true),
        ("1e99999999999999999999", "1e99999999999999999998", false),
        ("0.1", "0.1000000000000000055511151231257827", false),
        ("-99999999999999999999", "-9.9999999999999999999e19", true),
        ("-99999999999999999999", "99999999999999999999", false),
        ("1", "\"1\"", false),
        ("1", "true", false),
        ("null", "0", false),
        (
            r#"{"a": 1, "b": [2.0, {"c": 3}]}"#,
            r#"{"b": [2, {"c": 3.00}], "a": 1e0}"#,
            true,
        ),
        (r#"{"a": 1}"#, r#"{"a": 1, "b": null}"#, false),
        ("[1, 2]", "[2, 1]", false),
        (r#""é""#, r#""\u00e9""#, true),
    ];
    for (n, (stored, expected, same)) in cases.iter().enumerate() {
        let key = format!("c{n}");
        if *stored != "null" {
            c.write_ok(via, &key, parse(stored)).await;
        }
        let new = json!(format!("new-{n}"));
        let (code, body) = c.cas(via, &key, parse(expected), new.clone()).await;
        if *same {
            assert_eq!(
                (code, body["value"].clone()),
                (200, new.clone()),
                "{stored} held, cas expecting {expected}: {body}"
            );
            assert_eq!(c.read_ok(via, &key).await, new);
        } else {
            assert_eq!(code, 409, "{stored} held, cas expecting {expected}: {body}");
            assert!(
                exactly(&body["current"], &parse(stored)),
                "mismatch reports {} for {stored}",
                body["current"]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_kv_keeps_every_value_exactly() {
    let mut c = Cluster::start(Spec::new("quorum-kv", 3)).await;
    for i in 0..3 {
        c.wait_healthy(i).await;
    }
    for (k, text) in TEXTS.iter().enumerate() {
        let (code, body) = c.write(k % 3, &format!("v{k}"), parse(text)).await;
        assert_eq!(code, 200, "{body}");
        assert!(exactly(&body["value"], &parse(text)), "{text}: {body}");
    }
    check_kv(&c, "written").await;
    // Every node restarted: values come back from kv.log.
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.start_node(i);
    }
    for i in 0..3 {
        c.wait_healthy(i).await;
    }
    check_kv(&c, "after a restart").await;
}

/// Reads every value through every node, and from every replica's own store.
async fn check_kv(c: &Cluster, what: &str) {
    for (k, text) in TEXTS.iter().enumerate() {
        let want = parse(text);
        for i in 0..3 {
            let got = c.read_ok(i, &format!("v{k}")).await;
            assert!(
                exactly(&got, &want),
                "{what}: n{} read {got} for {text}",
                i + 1
            );
        }
        // Every replica holds it (the third may get it a little later).
        for i in 0..3 {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let (_, r) = c.get(i, &format!("/internal/kv/v{k}")).await;
                if exactly(&r["value"], &want) {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{what}: replica n{} holds {} for {text}",
                    i + 1,
                    r["value"]
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
