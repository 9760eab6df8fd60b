//! Each raft-register fault, switched on, changes behaviour in the way its docs say; the
//! same scenario without the fault is the control. Partitions are made by the test's own
//! proxies between nodes (see `common`), never by the host firewall.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Cluster, Spec, LIBFAKETIME};
use serde_json::{json, Value};

fn others(n: usize, but: usize) -> Vec<usize> {
    (0..n).filter(|i| *i != but).collect()
}

/// Writes 1, cuts the leader off, lets the majority elect a new leader and write 2, then
/// reads from the old leader.
async fn read_from_partitioned_leader(spec: Spec) -> (u16, Value) {
    let c = Cluster::start(spec).await;
    let old = c.wait_leader(&[0, 1, 2]).await;
    c.write_ok(old, "r", json!(1)).await;
    c.isolate(old);
    let rest = others(3, old);
    let new = c.wait_leader(&rest).await;
    c.write_ok(new, "r", json!(2)).await;
    let answer = c.read(old, "r").await;
    c.heal();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_reads_lets_a_partitioned_leader_serve_an_old_value() {
    let (code, body) =
        read_from_partitioned_leader(Spec::new("raft-register", 3).fault("stale-reads")).await;
    assert_eq!(
        (code, body["outcome"].clone(), body["value"].clone()),
        (200, json!("ok"), json!(1)),
        "{body}"
    );

    let (code, body) = read_from_partitioned_leader(Spec::new("raft-register", 3)).await;
    assert_ne!(
        body["outcome"], "ok",
        "control read must not succeed in a minority: {code} {body}"
    );
    assert!(code == 503 || code == 504, "{code} {body}");
}

/// Cuts the leader off and writes 2 to it at once; returns that answer and, after healing
/// and a new election, the value the cluster holds.
async fn write_to_partitioned_leader(spec: Spec) -> ((u16, Value), Value) {
    let c = Cluster::start(spec).await;
    let old = c.wait_leader(&[0, 1, 2]).await;
    c.write_ok(old, "e", json!(1)).await;
    c.isolate(old);
    let answer = c.write(old, "e", json!(2)).await;
    let new = c.wait_leader(&others(3, old)).await;
    assert_ne!(new, old);
    c.heal();
    let held = c.read_ok(old, "e").await;
    (answer, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_ack_acknowledges_a_write_that_is_then_lost() {
    let ((code, body), held) =
        write_to_partitioned_leader(Spec::new("raft-register", 3).fault("early-ack")).await;
    assert_eq!(
        (code, body["outcome"].clone()),
        (200, json!("ok")),
        "{body}"
    );
    assert_eq!(held, json!(1), "the acknowledged write 2 was lost");

    let ((code, body), held) = write_to_partitioned_leader(Spec::new("raft-register", 3)).await;
    assert_eq!(
        body["outcome"], "unknown",
        "control: a minority leader cannot ack: {code} {body}"
    );
    assert_eq!(code, 504);
    assert_eq!(held, json!(1));
}

/// Writes several values, SIGKILLs every node, restarts them and reads one back.
async fn kill_all_and_read(spec: Spec) -> Value {
    let mut c = Cluster::start(spec).await;
    c.wait_leader(&[0, 1, 2]).await;
    for v in 0..10 {
        c.write_ok(v % 3, "d", json!(v)).await;
    }
    assert_eq!(c.read_ok(1, "d").await, json!(9));
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.start_node(i);
    }
    c.wait_leader(&[0, 1, 2]).await;
    c.read_ok(0, "d").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fsync_loses_acknowledged_writes_when_every_node_is_killed() {
    assert_eq!(
        kill_all_and_read(Spec::new("raft-register", 3).fault("no-fsync")).await,
        Value::Null
    );
    assert_eq!(
        kill_all_and_read(Spec::new("raft-register", 3)).await,
        json!(9)
    );
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// With lease reads on, optionally jumps the leader's clock back 10 minutes, then pauses and
/// cuts off the leader, writes 2 through a new leader, resumes the old one and reads from it.
async fn lease_read_after_deposition(jump_clock: bool) -> (u16, Value) {
    let mut spec = Spec::new("raft-register", 3).fault("lease-reads");
    spec.faketime = true;
    let c = Cluster::start(spec).await;
    let old = c.wait_leader(&[0, 1, 2]).await;
    c.write_ok(old, "l", json!(1)).await;
    assert_eq!(c.read_ok(old, "l").await, json!(1));
    if jump_clock {
        c.set_clock(old, "-10m");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let theirs = c.status(old).await["wall_clock_ns"]
                .as_u64()
                .unwrap_or(u64::MAX);
            if theirs + 300_000_000_000 < now_ns() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "libfaketime did not move the node's clock"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    c.isolate(old);
    c.pause(old);
    let new = c.wait_leader(&others(3, old)).await;
    c.write_ok(new, "l", json!(2)).await;
    c.resume(old);
    let answer = c.read(old, "l").await;
    c.heal();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_reads_serve_stale_values_after_a_clock_jump() {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "this test needs Debian's libfaketime package ({LIBFAKETIME})"
    );
    let (code, body) = lease_read_after_deposition(true).await;
    assert_eq!(
        (code, body["outcome"].clone(), body["value"].clone()),
        (200, json!("ok"), json!(1)),
        "{body}"
    );

    // Control: the same lease with an honest clock has expired by then.
    let (code, body) = lease_read_after_deposition(false).await;
    assert_ne!(body["outcome"], "ok", "{code} {body}");
}
