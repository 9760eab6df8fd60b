//! raft-register end to end: 3- and 5-node clusters of real processes on loopback.

mod common;

use common::{Cluster, Spec};
use serde_json::{json, Value};

fn names(c: &Cluster) -> Vec<String> {
    (0..c.spec.nodes).map(|i| format!("n{}", i + 1)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_write_cas_and_read_through_every_node() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let leader_name = format!("n{}", leader + 1);
    for i in 0..3 {
        c.write_ok(i, &format!("k{i}"), json!({"from": i})).await;
    }
    for i in 0..3 {
        for k in 0..3 {
            let (code, body) = c.read(i, &format!("k{k}")).await;
            assert_eq!(code, 200, "{body}");
            assert_eq!(body["outcome"], "ok");
            assert_eq!(body["value"], json!({"from": k}));
            // Reads are forwarded to, and served by, the leader.
            assert_eq!(body["node"], leader_name.as_str());
        }
    }
    let (code, body) = c.read(1, "never-written").await;
    assert_eq!((code, body["value"].clone()), (200, Value::Null));

    let follower = (leader + 1) % 3;
    let (code, body) = c.cas(follower, "k0", json!(1), json!(2)).await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"], "mismatch");
    assert_eq!(body["current"], json!({"from": 0}));
    let (code, body) = c
        .cas(follower, "k0", json!({"from": 0}), json!("next"))
        .await;
    assert_eq!(
        (code, body["value"].clone()),
        (200, json!("next")),
        "{body}"
    );
    let (code, body) = c.cas(leader, "fresh", Value::Null, json!(1)).await;
    assert_eq!(
        (code, body["outcome"].clone()),
        (200, json!("ok")),
        "{body}"
    );
    assert_eq!(c.read_ok((leader + 2) % 3, "k0").await, json!("next"));

    let statuses: Vec<Value> = futures_all(&c).await;
    for (s, n) in statuses.iter().zip(names(&c)) {
        assert_eq!(s["node"], n.as_str());
        assert_eq!(s["leader"], leader_name.as_str());
        assert!(s["wall_clock_ns"].as_u64().unwrap_or(0) > 1_600_000_000_000_000_000);
        assert!(s["term"].as_u64().unwrap_or(0) >= 1);
    }
}

async fn futures_all(c: &Cluster) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..c.spec.nodes {
        out.push(c.status(i).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_is_replaced_and_every_acknowledged_write_survives() {
    let mut c = Cluster::start(Spec::new("raft-register", 3)).await;
    let first = c.wait_leader(&[0, 1, 2]).await;
    for v in 0..20 {
        c.write_ok(v % 3, &format!("key{}", v % 5), json!(v)).await;
    }
    c.kill(first);
    let rest: Vec<usize> = (0..3).filter(|i| *i != first).collect();
    let second = c.wait_leader(&rest).await;
    assert_ne!(second, first);
    // Progress resumes with a majority.
    for v in 20..30 {
        c.write_ok(rest[v % 2], &format!("key{}", v % 5), json!(v))
            .await;
    }
    c.start_node(first);
    c.wait_healthy(first).await;
    for k in 0..5 {
        assert_eq!(c.read_ok(first, &format!("key{k}")).await, json!(25 + k));
    }
    // Every node killed at once, then restarted: acknowledged writes are all on disk.
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.start_node(i);
    }
    c.wait_leader(&[0, 1, 2]).await;
    for k in 0..5 {
        assert_eq!(c.read_ok(k % 3, &format!("key{k}")).await, json!(25 + k));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_make_progress_with_two_down() {
    let mut c = Cluster::start(Spec::new("raft-register", 5)).await;
    let leader = c.wait_leader(&[0, 1, 2, 3, 4]).await;
    c.write_ok(0, "x", json!("before")).await;
    let other = (leader + 1) % 5;
    c.kill(leader);
    c.kill(other);
    let alive: Vec<usize> = (0..5).filter(|i| *i != leader && *i != other).collect();
    let new_leader = c.wait_leader(&alive).await;
    assert!(alive.contains(&new_leader));
    for (n, &i) in alive.iter().enumerate() {
        c.write_ok(i, "x", json!(n)).await;
    }
    let (code, body) = c.cas(alive[0], "x", json!(2), json!("after")).await;
    assert_eq!(
        (code, body["value"].clone()),
        (200, json!("after")),
        "{body}"
    );
    c.start_node(leader);
    c.start_node(other);
    c.wait_healthy(leader).await;
    c.wait_healthy(other).await;
    for i in 0..5 {
        assert_eq!(c.read_ok(i, "x").await, json!("after"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_compact_the_log_and_catch_up_a_lagging_node() {
    let mut c = Cluster::start(
        Spec::new("raft-register", 3)
            .arg("--snapshot-every")
            .arg("40"),
    )
    .await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let lagging = (leader + 1) % 3;
    c.kill(lagging);
    let up = (leader + 2) % 3;
    for v in 0..150 {
        c.write_ok(
            if v % 2 == 0 { leader } else { up },
            &format!("s{}", v % 7),
            json!(v),
        )
        .await;
    }
    let s = c.status(leader).await;
    assert!(s["snapshot_index"].as_u64().unwrap_or(0) >= 120, "{s}");
    c.start_node(lagging);
    c.wait_healthy(lagging).await;
    let commit = c.status(leader).await["commit"].as_u64().unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let s = c.status(lagging).await;
        if s["applied"].as_u64().unwrap_or(0) >= commit {
            assert!(
                s["snapshot_index"].as_u64().unwrap_or(0) >= 120,
                "caught up without a snapshot: {s}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lagging node never caught up: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let wal = std::fs::metadata(c.dir.join(format!("data-n{}/wal.log", lagging + 1)))
        .map(|m| m.len())
        .ok();
    assert!(
        wal.unwrap_or(u64::MAX) < 64 * 1024,
        "log not compacted: {wal:?}"
    );
    // The lagging node, now holding only the snapshot and the tail, serves the latest values
    // after a restart of the whole cluster.
    for i in 0..3 {
        c.kill(i);
        c.start_node(i);
    }
    c.wait_leader(&[0, 1, 2]).await;
    for k in 0..7u64 {
        let last = (0..150u64).filter(|v| v % 7 == k).max().unwrap_or(0);
        assert_eq!(c.read_ok(lagging, &format!("s{k}")).await, json!(last));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_and_the_node_keeps_serving() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    c.wait_leader(&[0, 1, 2]).await;
    let url = c.url(0, "/kv/good");
    let r = c
        .http
        .put(&url)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (body["outcome"].clone(), body["error"].clone()),
        (json!("fail"), json!("bad-request"))
    );
    let r = c
        .http
        .put(&url)
        .body(r#"{"valeu": 1}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let r = c
        .http
        .post(c.url(0, "/kv/good/cas"))
        .body(r#"{"expected": 1}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let (code, _) = c
        .announce_body(0, "PUT", "/kv/good", 2 * 1024 * 1024, 4096, false)
        .await;
    assert_eq!(code, 413);
    let r = c
        .http
        .get(c.url(0, "/kv/bad%20key"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let r = c
        .http
        .get(c.url(0, "/kv/a/b/c"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 404);
    let r = c
        .http
        .post(c.url(0, "/raft/messages"))
        .body(vec![9u8, 0, 0, 0, 1])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    // Still alive and correct.
    c.write_ok(0, "good", json!(1)).await;
    assert_eq!(c.read_ok(1, "good").await, json!(1));
    let big_ok = json!("y".repeat(512 * 1024));
    c.write_ok(2, "big", big_ok.clone()).await;
    assert_eq!(c.read_ok(0, "big").await, big_ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_request_is_not_forwarded_again() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let follower = (leader + 1) % 3;
    let r = c
        .http
        .put(c.url(follower, "/kv/f"))
        .header("x-faultline-forwarded", "n9")
        .json(&json!({"value": 1}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (body["outcome"].clone(), body["error"].clone()),
        (json!("fail"), json!("not-leader"))
    );
    let leader_addr = c.status(leader).await["leader_addr"].clone();
    assert!(leader_addr.is_string());
    assert_eq!(body["node"], format!("n{}", follower + 1));
    // The follower names the leader's address as it knows it (through its own proxy).
    assert!(
        body["leader"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{body}"
    );
    assert_eq!(c.read(follower, "f").await.1["value"], Value::Null);
}

/// Clients increment one counter with cas through every node while the leader is killed
/// and restarted: no acknowledged increment is lost and none is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_increments_survive_a_leader_kill() {
    use std::sync::Arc;
    let c = Arc::new(tokio::sync::Mutex::new(
        Cluster::start(Spec::new("raft-register", 3)).await,
    ));
    let leader = c.lock().await.wait_leader(&[0, 1, 2]).await;
    c.lock().await.write_ok(0, "ctr", json!(0)).await;
    let (http, urls): (reqwest::Client, Vec<String>) = {
        let g = c.lock().await;
        (
            g.http.clone(),
            (0..3).map(|i| g.url(i, "/kv/ctr")).collect(),
        )
    };
    let mut tasks = Vec::new();
    for client in 0..6usize {
        let (http, urls) = (http.clone(), urls.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut unknown) = (0u64, 0u64);
            let mut attempt = client;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
            while ok + unknown < 15 && std::time::Instant::now() < deadline {
                attempt += 1;
                let url = &urls[attempt % 3];
                let Ok(r) = http.get(url).send().await else {
                    continue;
                };
                let Ok(cur) = r.json::<Value>().await else {
                    continue;
                };
                if cur["outcome"] != "ok" {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
                let n = cur["value"].as_u64().unwrap_or(0);
                let body = json!({"expected": n, "new": n + 1});
                match http.post(format!("{url}/cas")).json(&body).send().await {
                    Ok(r) => match r.json::<Value>().await.map(|v| v["outcome"].clone()) {
                        Ok(o) if o == "ok" => ok += 1,
                        Ok(o) if o == "fail" => {}
                        _ => unknown += 1,
                    },
                    Err(_) => unknown += 1,
                }
            }
            (ok, unknown)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    c.lock().await.kill(leader);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    c.lock().await.start_node(leader);
    let (mut ok, mut unknown) = (0, 0);
    for t in tasks {
        let (o, u) = t.await.expect("client");
        ok += o;
        unknown += u;
    }
    let g = c.lock().await;
    let end = g.read_ok(leader, "ctr").await.as_u64().unwrap_or(u64::MAX);
    eprintln!("counter {end}: {ok} acknowledged, {unknown} unknown");
    assert!(ok >= 1, "no increment acknowledged");
    assert!(
        end >= ok && end <= ok + unknown,
        "final {end}, acknowledged {ok}, unknown {unknown}"
    );
}

/// SIGSTOP the leader, let the others elect a new one and write, SIGCONT it: the old leader
/// steps down and never serves the old value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_resumes_as_a_follower_without_stale_reads() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    let old = c.wait_leader(&[0, 1, 2]).await;
    c.write_ok(old, "p", json!("before")).await;
    c.pause(old);
    let rest: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    let new = c.wait_leader(&rest).await;
    c.write_ok(new, "p", json!("after")).await;
    c.resume(old);
    // Whatever the old leader answers right after resuming, it is never the old value.
    for _ in 0..20 {
        let (code, body) = c.read(old, "p").await;
        assert_ne!(
            body["value"],
            json!("before"),
            "stale read from a deposed leader: {code} {body}"
        );
        if code == 200 {
            assert_eq!(body["value"], json!("after"));
        }
    }
    c.wait_leader(&[0, 1, 2]).await;
    assert_eq!(c.read_ok(old, "p").await, json!("after"));
}
