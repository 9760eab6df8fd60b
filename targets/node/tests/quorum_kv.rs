//! quorum-kv end to end, with its faults: real processes on loopback, partitions made by
//! the test's own proxies.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Cluster, Spec, LIBFAKETIME};
use serde_json::{json, Value};

async fn replica_value(c: &Cluster, i: usize, key: &str) -> Value {
    c.get(i, &format!("/internal/kv/{key}")).await.1["value"].clone()
}

async fn wait_all_healthy(c: &Cluster) {
    for i in 0..c.spec.nodes {
        c.wait_healthy(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_reads_through_every_node_and_cas_is_unsupported() {
    let c = Cluster::start(Spec::new("quorum-kv", 3)).await;
    wait_all_healthy(&c).await;
    for i in 0..3 {
        let (code, body) = c.write(i, &format!("q{i}"), json!([i, "x"])).await;
        assert_eq!(
            (code, body["outcome"].clone()),
            (200, json!("ok")),
            "{body}"
        );
        assert_eq!(body["node"], format!("n{}", i + 1));
    }
    for i in 0..3 {
        for k in 0..3 {
            let (code, body) = c.read(i, &format!("q{k}")).await;
            assert_eq!(
                (code, body["value"].clone()),
                (200, json!([k, "x"])),
                "{body}"
            );
            assert_eq!(body["node"], format!("n{}", i + 1));
        }
    }
    assert_eq!(
        c.read(2, "nothing").await,
        (200, json!({"outcome": "ok", "value": null, "node": "n3"}))
    );
    let (code, body) = c.cas(0, "q0", json!([0, "x"]), json!(1)).await;
    assert_eq!(
        (code, body["outcome"].clone(), body["error"].clone()),
        (501, json!("fail"), json!("unsupported"))
    );
    let s = c.status(1).await;
    assert_eq!(
        (s["n"].clone(), s["r"].clone(), s["w"].clone()),
        (json!(3), json!(2), json!(2)),
        "{s}"
    );
    let (code, _) = c.read(0, "bad%20key").await;
    assert_eq!(code, 400);
    let (code, _) = c
        .announce_body(0, "PUT", "/kv/h", 1024 * 1024 + 10, 4096, false)
        .await;
    assert_eq!(code, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_majority_serves_while_one_node_is_down_and_data_survives_kills() {
    let mut c = Cluster::start(Spec::new("quorum-kv", 3)).await;
    wait_all_healthy(&c).await;
    c.write_ok(0, "a", json!(1)).await;
    c.kill(2);
    let (code, body) = c.write(1, "a", json!(2)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(c.read_ok(0, "a").await, json!(2));
    c.start_node(2);
    wait_all_healthy(&c).await;
    // The restarted node still has the old value on disk, but a quorum read answers the newest.
    assert_eq!(replica_value(&c, 2, "a").await, json!(1));
    assert_eq!(c.read_ok(2, "a").await, json!(2));
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.start_node(i);
    }
    wait_all_healthy(&c).await;
    assert_eq!(c.read_ok(1, "a").await, json!(2));
    let five = Cluster::start(Spec::new("quorum-kv", 5)).await;
    wait_all_healthy(&five).await;
    five.write_ok(4, "f", json!("five")).await;
    assert_eq!(five.read_ok(0, "f").await, json!("five"));
    assert_eq!(five.status(0).await["w"], json!(3));
}

/// Kills node 2, writes 2 through node 0, restarts node 2, reads through node 0 a few times
/// and returns what node 2's own replica then holds.
async fn stale_replica_after_reads(spec: Spec) -> Value {
    let mut c = Cluster::start(spec).await;
    wait_all_healthy(&c).await;
    c.write_ok(0, "rr", json!(1)).await;
    // The write is acknowledged by a majority; node 2's copy may still be on its way (on
    // a loaded machine it was not there yet when the node was killed).
    let deadline = Instant::now() + Duration::from_secs(10);
    while replica_value(&c, 2, "rr").await != json!(1) {
        assert!(
            Instant::now() < deadline,
            "node 2 never got the first write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.kill(2);
    c.write_ok(0, "rr", json!(2)).await;
    c.start_node(2);
    wait_all_healthy(&c).await;
    assert_eq!(replica_value(&c, 2, "rr").await, json!(1));
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(c.read_ok(0, "rr").await, json!(2));
        if replica_value(&c, 2, "rr").await == json!(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    replica_value(&c, 2, "rr").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_repair_fixes_stale_replicas_unless_switched_off() {
    assert_eq!(
        stale_replica_after_reads(Spec::new("quorum-kv", 3)).await,
        json!(2)
    );
    assert_eq!(
        stale_replica_after_reads(Spec::new("quorum-kv", 3).fault("no-read-repair")).await,
        json!(1)
    );
}

/// Writes 1, cuts node 0 off, writes 2 through node 0, then reads through node 1.
async fn write_in_minority(spec: Spec) -> ((u16, Value), Value) {
    let c = Cluster::start(spec).await;
    wait_all_healthy(&c).await;
    c.write_ok(1, "w", json!(1)).await;
    c.isolate(0);
    let answer = c.write(0, "w", json!(2)).await;
    let seen = c.read_ok(1, "w").await;
    c.heal();
    (answer, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w1_acknowledges_writes_that_a_majority_never_sees() {
    let ((code, body), seen) = write_in_minority(Spec::new("quorum-kv", 3).fault("w1")).await;
    assert_eq!(
        (code, body["outcome"].clone()),
        (200, json!("ok")),
        "{body}"
    );
    assert_eq!(
        seen,
        json!(1),
        "the acknowledged write 2 is invisible to a majority read"
    );

    let ((code, body), seen) = write_in_minority(Spec::new("quorum-kv", 3)).await;
    assert_ne!(body["outcome"], "ok", "control: {code} {body}");
    assert_eq!(seen, json!(1));
}

/// Writes 1, cuts node 0 off, writes 2 through node 1, then reads through node 0.
async fn read_in_minority(spec: Spec) -> (u16, Value) {
    let c = Cluster::start(spec).await;
    wait_all_healthy(&c).await;
    c.write_ok(1, "r", json!(1)).await;
    c.isolate(0);
    c.write_ok(1, "r", json!(2)).await;
    let answer = c.read(0, "r").await;
    c.heal();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_reads_a_stale_local_value() {
    let (code, body) = read_in_minority(Spec::new("quorum-kv", 3).fault("r1")).await;
    assert_eq!((code, body["value"].clone()), (200, json!(1)), "{body}");
    let (code, body) = read_in_minority(Spec::new("quorum-kv", 3)).await;
    assert_ne!(body["outcome"], "ok", "control: {code} {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_behind_makes_a_later_write_lose() {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "needs Debian's libfaketime ({LIBFAKETIME})"
    );
    let mut spec = Spec::new("quorum-kv", 3);
    spec.faketime = true;
    let c = Cluster::start(spec).await;
    c.set_clock(0, "-10m");
    wait_all_healthy(&c).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let theirs = c.status(0).await["wall_clock_ns"]
            .as_u64()
            .unwrap_or(u64::MAX);
        if theirs.saturating_add(300_000_000_000) < now_ns() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "libfaketime did not move node 1's clock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.write_ok(1, "t", json!("first")).await;
    let (code, body) = c.write(0, "t", json!("second")).await;
    assert_eq!(code, 200, "{body}");
    // Last writer wins by wall clock: node 0's later write carries an older timestamp.
    assert_eq!(c.read_ok(2, "t").await, json!("first"));
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
