//! A node's files after a crash or a disk fault. Only what a crash mid-append leaves, a
//! last record cut short, may be dropped; any other damage (a flipped byte before the end,
//! a bad length, garbage after a snapshot) makes the node refuse to start, naming the file
//! and the byte offset, since coming up without records it had acknowledged (a vote, a
//! committed entry) could make it vote twice or lose writes.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Cluster, Spec};
use serde_json::json;

fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset] ^= 0xff;
    std::fs::write(path, bytes).expect("write");
}

fn data_file(c: &Cluster, i: usize, name: &str) -> PathBuf {
    c.dir.join(format!("data-n{}", i + 1)).join(name)
}

/// Starts node i and expects it to refuse: exit status 1, a message naming `file` and a
/// byte offset.
async fn expect_refusal(c: &mut Cluster, i: usize, file: &str) -> String {
    c.start_node(i);
    let Some((status, log)) = c.wait_exit(i, Duration::from_secs(10)).await else {
        panic!("n{} started on a damaged {file}", i + 1);
    };
    assert_eq!(status.code(), Some(1), "{log}");
    let last = log.lines().last().unwrap_or_default().to_owned();
    assert!(
        last.contains(file) && last.contains("offset"),
        "the refusal names neither {file} nor an offset: {last}"
    );
    last
}

/// A 3-node cluster with 30 writes acknowledged; node `victim` (a follower) is killed.
async fn cluster_with_history(spec: Spec) -> (Cluster, usize) {
    let mut c = Cluster::start(spec).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    for v in 0..30 {
        c.write_ok(v % 3, &format!("w{}", v % 7), json!(v)).await;
    }
    let victim = (leader + 1) % 3;
    // Let the victim apply everything, then kill it.
    let commit = c.status(leader).await["commit"].as_u64().unwrap_or(0);
    while c.status(victim).await["applied"].as_u64().unwrap_or(0) < commit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.kill(victim);
    (c, victim)
}

async fn serves_the_history(c: &Cluster, i: usize) {
    c.wait_healthy(i).await;
    for k in 0..7u64 {
        let last = (0..30u64).filter(|v| v % 7 == k).max().unwrap_or(0);
        assert_eq!(c.read_ok(i, &format!("w{k}")).await, json!(last));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_the_middle_of_the_wal_stops_the_node() {
    let (mut c, victim) = cluster_with_history(Spec::new("raft-register", 3)).await;
    let wal = data_file(&c, victim, "wal.log");
    let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) as usize;
    assert!(len > 1000, "wal.log holds {len} bytes");
    let original = std::fs::read(&wal).expect("read");
    for offset in [len / 2, len / 3, 2] {
        flip(&wal, offset);
        let msg = expect_refusal(&mut c, victim, "wal.log").await;
        eprintln!("byte {offset} flipped: {msg}");
        std::fs::write(&wal, &original).expect("restore");
    }
    // The file intact, the node comes back.
    c.start_node(victim);
    serves_the_history(&c, victim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_record_cut_short_is_dropped_and_the_node_serves() {
    let (mut c, victim) = cluster_with_history(Spec::new("raft-register", 3)).await;
    let wal = data_file(&c, victim, "wal.log");
    let len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    // What a crash in the middle of the last append leaves.
    let f = std::fs::OpenOptions::new().write(true).open(&wal);
    assert!(f.and_then(|f| f.set_len(len - 3)).is_ok());
    c.start_node(victim);
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.assert_running();
    serves_the_history(&c, victim).await;
    c.write_ok(victim, "after", json!("cut")).await;
    assert_eq!(c.read_ok(victim, "after").await, json!("cut"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_stops_the_node() {
    let spec = Spec::new("raft-register", 3)
        .arg("--snapshot-every")
        .arg("10");
    let (mut c, victim) = cluster_with_history(spec).await;
    let snap = data_file(&c, victim, "snapshot.bin");
    let original = std::fs::read(&snap).expect("a snapshot was taken");
    flip(&snap, original.len() / 2);
    expect_refusal(&mut c, victim, "snapshot.bin").await;
    // Bytes after the snapshot's one record: it is written whole and renamed into place,
    // so anything else is damage.
    let mut longer = original.clone();
    longer.extend_from_slice(b"trailing");
    std::fs::write(&snap, &longer).expect("write");
    expect_refusal(&mut c, victim, "snapshot.bin").await;
    // Cut short, too.
    std::fs::write(&snap, &original[..original.len() - 1]).expect("write");
    expect_refusal(&mut c, victim, "snapshot.bin").await;
    std::fs::write(&snap, &original).expect("restore");
    c.start_node(victim);
    serves_the_history(&c, victim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_the_middle_of_the_kv_log_stops_the_node() {
    let mut c = Cluster::start(Spec::new("quorum-kv", 3)).await;
    for i in 0..3 {
        c.wait_healthy(i).await;
    }
    for v in 0..30 {
        c.write_ok(v % 3, &format!("q{}", v % 7), json!(v)).await;
    }
    c.kill(2);
    let log = data_file(&c, 2, "kv.log");
    let original = std::fs::read(&log).expect("read");
    flip(&log, original.len() / 2);
    expect_refusal(&mut c, 2, "kv.log").await;
    // A last record cut short is what a crash leaves: dropped.
    std::fs::write(&log, &original[..original.len() - 2]).expect("write");
    c.start_node(2);
    c.wait_healthy(2).await;
    c.assert_running();
}
