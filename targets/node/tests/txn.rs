//! `POST /txn` on loopback clusters: the answers of both modes, the raft-register state
//! machine's lists through snapshots and restarts, the size limit, and each planted
//! transaction fault against the same scenario without it (the control).

mod common;

use std::time::Duration;

use common::{Cluster, Spec};
use serde_json::{json, Value};

fn others(n: usize, but: usize) -> Vec<usize> {
    (0..n).filter(|i| *i != but).collect()
}

/// The value a transaction's answer read at position `i`.
fn read_at(txn: &Value, i: usize) -> Value {
    txn[i][2].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_register_transactions_answer_as_documented() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let follower = (leader + 1) % 3;
    c.txn_ok(leader, json!([["r", "warm", null]])).await;

    // Reads see the transaction's own earlier effects; integer and string keys are one key;
    // keys are echoed as sent; a key never written reads null.
    let (code, body) = c
        .txn(
            follower,
            json!([
                ["r", 3, null],
                ["append", 3, 1],
                ["append", "3", 2],
                ["r", 3, null],
                ["w", "k", {"a": [1]}],
                ["r", "k", null],
                ["r", "never", null]
            ]),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["outcome"], "ok");
    assert_eq!(
        body["txn"],
        json!([
            ["r", 3, null],
            ["append", 3, 1],
            ["append", "3", 2],
            ["r", 3, [1, 2]],
            ["w", "k", {"a": [1]}],
            ["r", "k", {"a": [1]}],
            ["r", "never", null]
        ])
    );
    // The forwarded transaction was served by the leader.
    assert_eq!(body["node"], format!("n{}", leader + 1), "{body}");
    // The same keys as /kv.
    assert_eq!(c.read_ok(follower, "3").await, json!([1, 2]));
    c.write_ok(leader, "plain", json!(7)).await;
    let t = c.txn_ok(follower, json!([["r", "plain", null]])).await;
    assert_eq!(read_at(&t, 0), json!(7));

    // An append to a value that is not a list aborts everything, on the leader and when
    // forwarded.
    for node in [leader, follower] {
        let (code, body) = c
            .txn(
                node,
                json!([["append", 3, 9], ["w", "z", 1], ["append", "plain", 1]]),
            )
            .await;
        assert_eq!(code, 409, "{body}");
        assert_eq!(
            (
                &body["outcome"],
                &body["error"],
                &body["key"],
                &body["index"]
            ),
            (
                &json!("fail"),
                &json!("not-a-list"),
                &json!("plain"),
                &json!(2)
            ),
            "{body}"
        );
    }
    let t = c
        .txn_ok(leader, json!([["r", 3, null], ["r", "z", null]]))
        .await;
    assert_eq!(t, json!([["r", 3, [1, 2]], ["r", "z", null]]));
    // Values keep their exact numbers inside lists.
    let big = "18446744073709551617";
    let t = c
        .txn_ok(
            follower,
            serde_json::from_str(&format!(
                r#"[["append","n",{big}],["append","n",1e400],["r","n",null]]"#
            ))
            .unwrap_or_default(),
        )
        .await;
    assert_eq!(t[2][2].to_string(), format!("[{big},1e+400]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transaction_bodies_are_refused() {
    let c = Cluster::start(Spec::new("raft-register", 1)).await;
    c.wait_leader(&[0]).await;
    let many: Vec<Value> = (0..65).map(|i| json!(["r", i, null])).collect();
    let most: Vec<Value> = (0..64).map(|i| json!(["append", i, i])).collect();
    let refused = [
        json!({"txn": []}),
        json!({"txn": many}),
        json!({}),
        json!({"txn": [["r", 1, null]], "extra": 1}),
        json!({"txn": "r"}),
        json!({"txn": [["read", 1, null]]}),
        json!({"txn": [["r", 1]]}),
        json!({"txn": [["r", 1, null, 2]]}),
        json!({"txn": [{"f": "r", "key": 1}]}),
        json!({"txn": [["r", "a/b", null]]}),
        json!({"txn": [["r", "", null]]}),
        json!({"txn": [["r", -1, null]]}),
        json!({"txn": [["r", 1.5, null]]}),
        json!({"txn": [["r", null, null]]}),
        json!({"txn": [["r", 1, 5]]}),
        json!({"txn": [["w", "x".repeat(300), 5]]}),
    ];
    for body in refused {
        let (code, answer) = c.post_json(0, "/txn", body.clone()).await;
        assert_eq!(code, 400, "{body} -> {answer}");
        assert_eq!(
            (&answer["outcome"], &answer["error"]),
            (&json!("fail"), &json!("bad-request")),
            "{answer}"
        );
        assert!(answer["detail"].is_string(), "{answer}");
    }
    // The nothing-applied check: none of the refused bodies wrote.
    let t = c.txn_ok(0, json!([["r", 1, null]])).await;
    assert_eq!(read_at(&t, 0), Value::Null);
    // 64 micro-operations are fine; so is a value just under the 1 MiB body limit.
    let t = c.txn_ok(0, Value::Array(most)).await;
    assert_eq!(t.as_array().map(Vec::len), Some(64));
    let huge = "h".repeat(1024 * 1024 - 200);
    let t = c
        .txn_ok(0, json!([["append", "huge", huge], ["r", "huge", null]]))
        .await;
    assert_eq!(t[1][2][0].as_str().map(str::len), Some(huge.len()));
    let over = "h".repeat(1024 * 1024);
    let (code, answer) = c.txn(0, json!([["w", "over", over]])).await;
    assert_eq!(
        (code, &answer["error"]),
        (413, &json!("too-large")),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_survive_snapshots_and_restarts() {
    let mut c = Cluster::start(
        Spec::new("raft-register", 3)
            .arg("--snapshot-every")
            .arg("10"),
    )
    .await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let lagging = (leader + 1) % 3;
    c.kill(lagging);
    let up = (leader + 2) % 3;
    for v in 0..40 {
        c.txn_ok(
            if v % 2 == 0 { leader } else { up },
            json!([["append", v % 3, v], ["w", "last", v]]),
        )
        .await;
    }
    let want = |k: i64| -> Value { (0..40).filter(|v| v % 3 == k).collect::<Vec<i64>>().into() };
    let s = c.status(leader).await;
    assert!(s["snapshot_index"].as_u64().unwrap_or(0) >= 30, "{s}");
    // The lagging node catches up through a snapshot holding lists.
    c.start_node(lagging);
    c.wait_healthy(lagging).await;
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.start_node(i);
    }
    c.wait_leader(&[0, 1, 2]).await;
    for i in 0..3 {
        let t = c
            .txn_ok(
                i,
                json!([
                    ["r", 0, null],
                    ["r", 1, null],
                    ["r", 2, null],
                    ["r", "last", null]
                ]),
            )
            .await;
        assert_eq!(
            t,
            json!([
                ["r", 0, want(0)],
                ["r", 1, want(1)],
                ["r", 2, want(2)],
                ["r", "last", 39]
            ])
        );
    }
    // Appends go on after the restart.
    let t = c
        .txn_ok(lagging, json!([["append", 0, 100], ["r", 0, null]]))
        .await;
    let mut more = want(0).as_array().cloned().unwrap_or_default();
    more.push(json!(100));
    assert_eq!(read_at(&t, 1), Value::Array(more));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_past_the_state_limit_fails_whole_on_every_replica() {
    let c = Cluster::start(
        Spec::new("raft-register", 3)
            .arg("--max-state-bytes")
            .arg("1048576"),
    )
    .await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let chunk = "c".repeat(400 * 1024);
    c.txn_ok(leader, json!([["append", "a", chunk], ["w", "b", 1]]))
        .await;
    // Each transaction alone fits the body limit; the state cannot hold a second chunk
    // plus a third.
    let (code, body) = c
        .txn(
            leader,
            json!([
                ["append", "a", chunk],
                ["w", "b", 2],
                ["append", "c", chunk]
            ]),
        )
        .await;
    assert_eq!(
        (code, &body["outcome"], &body["error"]),
        (507, &json!("fail"), &json!("state-full")),
        "{body}"
    );
    for i in 0..3 {
        let t = c
            .txn_ok(
                i,
                json!([["r", "b", null], ["r", "c", null], ["r", "a", null]]),
            )
            .await;
        assert_eq!(read_at(&t, 0), json!(1), "node {i}");
        assert_eq!(read_at(&t, 1), Value::Null, "node {i}");
        assert_eq!(t[2][2].as_array().map(Vec::len), Some(1), "node {i}");
    }
    // A smaller one still fits.
    c.txn_ok(leader, json!([["append", "a", 1], ["w", "b", 3]]))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_kv_runs_micro_operations_one_by_one() {
    let c = Cluster::start(Spec::new("quorum-kv", 3)).await;
    for i in 0..3 {
        c.wait_healthy(i).await;
    }
    let t = c
        .txn_ok(
            0,
            json!([
                ["r", 5, null],
                ["append", 5, 1],
                ["append", "5", 2],
                ["r", 5, null],
                ["w", "k", 3],
                ["r", "k", null]
            ]),
        )
        .await;
    assert_eq!(
        t,
        json!([
            ["r", 5, null],
            ["append", 5, 1],
            ["append", "5", 2],
            ["r", 5, [1, 2]],
            ["w", "k", 3],
            ["r", "k", 3]
        ])
    );
    assert_eq!(c.read_ok(1, "5").await, json!([1, 2]));
    // Not a list before anything was written: fail, nothing applied.
    let (code, body) = c
        .txn(
            1,
            json!([["r", "k", null], ["append", "k", 4], ["w", "q", 1]]),
        )
        .await;
    assert_eq!(
        (code, &body["error"], &body["key"]),
        (409, &json!("not-a-list"), &json!("k")),
        "{body}"
    );
    assert_eq!(c.read_ok(2, "q").await, Value::Null);
    // Not a list after a write: the write stays, the answer says it may be partial.
    let (code, body) = c.txn(2, json!([["w", "q", 1], ["append", "k", 4]])).await;
    assert_eq!(
        (code, &body["outcome"], &body["error"]),
        (504, &json!("unknown"), &json!("partial")),
        "{body}"
    );
    assert_eq!(c.read_ok(0, "q").await, json!(1));
    // A list is a value like any other: replicas take it up to the body limit.
    let chunk = "c".repeat(600 * 1024);
    c.txn_ok(0, json!([["append", "big", chunk]])).await;
    let (code, body) = c.txn(1, json!([["append", "big", chunk]])).await;
    assert_eq!(
        (code, &body["outcome"], &body["error"]),
        (413, &json!("fail"), &json!("too-large")),
        "{body}"
    );
    let t = c.txn_ok(2, json!([["r", "big", null]])).await;
    assert_eq!(t[0][2].as_array().map(Vec::len), Some(1));
}

/// Sends one single-append transaction per value to `key`, all at once, spread over the
/// nodes; returns how many were acknowledged and the list the key holds after.
async fn concurrent_appends(c: &Cluster, key: &str, n: usize) -> (usize, Vec<Value>) {
    let tasks: Vec<_> = (0..n)
        .map(|v| {
            let (http, url) = (c.http.clone(), c.url(v % 3, "/txn"));
            let body = json!({"txn": [["append", key, v]]});
            tokio::spawn(async move { http.post(url).json(&body).send().await })
        })
        .collect();
    let mut acked = 0;
    for t in tasks {
        if let Ok(Ok(r)) = t.await {
            if r.status().as_u16() == 200 {
                acked += 1;
            }
        }
    }
    let t = c.txn_ok(0, json!([["r", key, null]])).await;
    (
        acked,
        read_at(&t, 0).as_array().cloned().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_lost_update_loses_concurrent_appends() {
    let c = Cluster::start(Spec::new("raft-register", 3).fault("txn-lost-update")).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    for i in others(3, leader) {
        c.wait_healthy(i).await;
    }
    let (acked, list) = concurrent_appends(&c, "x", 30).await;
    assert_eq!(acked, 30);
    assert!(
        list.len() < acked,
        "acknowledged appends were lost: {} of {acked} held",
        list.len()
    );
    // Sequential appends are still fine: the bug needs concurrency.
    let before = list.len();
    c.txn_ok(1, json!([["append", "x", "s"]])).await;
    let t = c.txn_ok(2, json!([["r", "x", null]])).await;
    assert_eq!(t[0][2].as_array().map(Vec::len), Some(before + 1));

    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    c.wait_leader(&[0, 1, 2]).await;
    let (acked, mut list) = concurrent_appends(&c, "x", 30).await;
    assert_eq!(acked, 30);
    list.sort_by_key(|v| v.as_u64());
    assert_eq!(list, (0..30).map(Value::from).collect::<Vec<_>>());
}

/// A transaction whose second micro-operation aborts: `[w a 1, append plain 2]` where
/// `plain` holds a number. Returns the answer and what `a` holds after.
async fn abort_after_a_write(spec: Spec) -> ((u16, Value), Value) {
    let c = Cluster::start(spec).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    c.write_ok(leader, "plain", json!(0)).await;
    let answer = c
        .txn(leader, json!([["w", "a", 1], ["append", "plain", 2]]))
        .await;
    let t = c.txn_ok(leader, json!([["r", "a", null]])).await;
    (answer, read_at(&t, 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_split_leaves_a_transaction_half_applied() {
    let ((code, body), a) =
        abort_after_a_write(Spec::new("raft-register", 3).fault("txn-split")).await;
    assert_eq!(
        (code, &body["outcome"], &body["error"]),
        (504, &json!("unknown"), &json!("partial")),
        "{body}"
    );
    assert_eq!(a, json!(1), "the first half was applied");

    let ((code, body), a) = abort_after_a_write(Spec::new("raft-register", 3)).await;
    assert_eq!(
        (code, &body["error"]),
        (409, &json!("not-a-list")),
        "{body}"
    );
    assert_eq!(a, Value::Null, "control: nothing applied");
}

/// Writers set `x` and `y` to the same value in one transaction while readers read both
/// in one; returns how many reads saw them differ.
async fn fractured_reads(c: &Cluster, rounds: usize) -> usize {
    let mut torn = 0;
    for round in 0..rounds {
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let (http, url) = (c.http.clone(), c.url(w, "/txn"));
                let v = round * 3 + w;
                let body = json!({"txn": [["w", "x", v], ["w", "y", v]]});
                tokio::spawn(async move { http.post(url).json(&body).send().await })
            })
            .collect();
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let (http, url) = (c.http.clone(), c.url(r, "/txn"));
                let body = json!({"txn": [["r", "x", null], ["r", "y", null]]});
                tokio::spawn(async move {
                    let resp = http.post(url).json(&body).send().await.ok()?;
                    resp.json::<Value>().await.ok()
                })
            })
            .collect();
        for w in writers {
            let _ = w.await;
        }
        for r in readers {
            if let Ok(Some(a)) = r.await {
                if a["outcome"] == "ok" && a["txn"][0][2] != a["txn"][1][2] {
                    torn += 1;
                }
            }
        }
    }
    torn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_split_lets_readers_see_half_of_a_transaction() {
    let c = Cluster::start(Spec::new("raft-register", 3).fault("txn-split")).await;
    c.wait_leader(&[0, 1, 2]).await;
    c.txn_ok(0, json!([["w", "x", -1], ["w", "y", -1]])).await;
    let mut torn = 0;
    for _ in 0..10 {
        torn += fractured_reads(&c, 20).await;
        if torn > 0 {
            break;
        }
    }
    assert!(torn > 0, "no reader saw x and y differ in 200 rounds");

    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    c.wait_leader(&[0, 1, 2]).await;
    c.txn_ok(0, json!([["w", "x", -1], ["w", "y", -1]])).await;
    assert_eq!(fractured_reads(&c, 60).await, 0, "control: atomic");
}

/// Writes x = 1 by transaction, cuts a follower off, writes x = 2 through the majority,
/// then reads x and appends to a list by transaction on the cut-off follower.
async fn txn_on_a_partitioned_follower(spec: Spec) -> (u16, Value) {
    let c = Cluster::start(spec).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let cut = (leader + 1) % 3;
    c.txn_ok(leader, json!([["w", "x", 1]])).await;
    // The follower has applied x = 1 before it is cut off.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while c.status(cut).await["applied"] != c.status(leader).await["applied"] {
        assert!(
            std::time::Instant::now() < deadline,
            "follower never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.isolate(cut);
    c.txn_ok(leader, json!([["w", "x", 2]])).await;
    let answer = c.txn(cut, json!([["r", "x", null]])).await;
    c.heal();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_stale_reads_serves_an_old_value_from_a_cut_off_follower() {
    let (code, body) =
        txn_on_a_partitioned_follower(Spec::new("raft-register", 3).fault("txn-stale-reads")).await;
    assert_eq!(
        (code, &body["txn"]),
        (200, &json!([["r", "x", 1]])),
        "{body}"
    );

    let (code, body) = txn_on_a_partitioned_follower(Spec::new("raft-register", 3)).await;
    assert_ne!(body["outcome"], "ok", "control: {code} {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_stale_reads_still_sends_writes_through_the_log() {
    let c = Cluster::start(Spec::new("raft-register", 3).fault("txn-stale-reads")).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let follower = (leader + 1) % 3;
    c.wait_healthy(follower).await;
    let t = c
        .txn_ok(
            follower,
            json!([
                ["append", "l", 1],
                ["r", "l", null],
                ["w", "w", 2],
                ["r", "w", null]
            ]),
        )
        .await;
    // Own writes are still visible to the transaction's reads, the writes reach the leader.
    assert_eq!(
        t,
        json!([
            ["append", "l", 1],
            ["r", "l", [1]],
            ["w", "w", 2],
            ["r", "w", 2]
        ])
    );
    assert_eq!(c.read_ok(leader, "l").await, json!([1]));
    assert_eq!(c.read_ok(leader, "w").await, json!(2));
}
