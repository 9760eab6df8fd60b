//! raft-register's peer endpoint, `POST /raft/messages`, under messages no correct peer
//! sends: each one would make raft-rs panic (or make the node stop) if it reached it. The
//! node refuses them with a JSON answer, or makes them harmless, and keeps serving.

mod common;

use std::time::Duration;

use common::{Cluster, Spec};
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot};
use serde_json::{json, Value};

/// A batch as the transport frames it: each message prefixed by its length (u32 LE).
fn batch(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        let bytes = m.write_to_bytes().expect("encode");
        out.extend_from_slice(&u32::try_from(bytes.len()).expect("len").to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

fn msg(t: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    m.from = from;
    m.to = to;
    m.term = term;
    m
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

fn snapshot_msg(from: u64, to: u64, term: u64, index: u64, snap_term: u64, data: &[u8]) -> Message {
    let mut m = msg(MessageType::MsgSnapshot, from, to, term);
    let mut s = Snapshot::default();
    s.set_data(data.to_vec().into());
    s.mut_metadata().index = index;
    s.mut_metadata().term = snap_term;
    let mut cs = ConfState::default();
    cs.set_voters(vec![1, 2, 3]);
    s.mut_metadata().set_conf_state(cs);
    m.set_snapshot(s);
    m
}

async fn term_of(c: &Cluster, i: usize) -> u64 {
    c.status(i).await["term"].as_u64().unwrap_or(0)
}

/// What a case expects of the answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Refused with 400 `bad-request`: the message never reaches raft-rs.
    Refused,
    /// Accepted (200) but made harmless before raft-rs sees it.
    Harmless,
}

/// Restarts every node that exited (afresh if it cannot start on its data), noting it.
async fn recover(c: &mut Cluster, case: &str, wrong: &mut Vec<String>) {
    for i in 0..c.spec.nodes {
        let Some((status, log)) = c.exited(i) else {
            continue;
        };
        let last: Vec<&str> = log.lines().rev().take(3).collect();
        wrong.push(format!("{case}: n{} exited ({status}): {last:?}", i + 1));
        c.start_node(i);
        if let Some((_, log)) = c.wait_exit(i, Duration::from_secs(2)).await {
            let last = log.lines().last().unwrap_or_default().to_owned();
            wrong.push(format!("{case}: then n{} could not restart: {last}", i + 1));
            let _ = std::fs::remove_dir_all(c.dir.join(format!("data-n{}", i + 1)));
            c.start_node(i);
        }
    }
}

/// Waits for a leader all nodes agree on, restarting nodes that crash meanwhile.
async fn settle(c: &mut Cluster, case: &str, wrong: &mut Vec<String>) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        recover(c, case, wrong).await;
        let mut seen = Vec::new();
        for i in 0..c.spec.nodes {
            seen.push(c.status(i).await["leader"].as_str().map(str::to_owned));
        }
        if let Some(Some(l)) = seen.first() {
            if seen.iter().all(|s| s.as_deref() == Some(l.as_str())) {
                if let Some(n) = l.strip_prefix('n').and_then(|n| n.parse::<usize>().ok()) {
                    return n - 1;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no leader after {case}: {seen:?}\n{}",
            wrong.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends each case to node `to`; collects every case that did not go as expected (a node
/// exited, or the answer was another), restarting crashed nodes so that the next case is
/// tried too.
async fn run_cases(c: &mut Cluster, to: usize, cases: Vec<(&str, Vec<Message>, Expect)>) {
    let mut wrong = Vec::new();
    for (name, msgs, expect) in cases {
        let (code, body) = c.post_raft(to, batch(&msgs)).await;
        // A panic in the Raft thread ends the process soon after the message is stepped.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let before = wrong.len();
        settle(c, name, &mut wrong).await;
        if wrong.len() > before {
            continue;
        }
        let ok = match expect {
            Expect::Refused => {
                code == 400 && body["outcome"] == "fail" && body["error"] == "bad-request"
            }
            Expect::Harmless => code == 200 && body["outcome"] == "ok",
        };
        if !ok {
            wrong.push(format!("{name}: expected {expect:?}, got {code} {body}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_raft_rs_would_panic_on_are_refused_and_the_node_keeps_serving() {
    let mut c = Cluster::start(Spec::new("raft-register", 3)).await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    for k in 0..5 {
        c.write_ok(k % 3, &format!("k{k}"), json!(k)).await;
    }
    let f = (leader + 1) % 3;
    let (l_id, f_id) = (leader as u64 + 1, f as u64 + 1);
    let term = term_of(&c, f).await;
    let heartbeat = |term: u64, commit: u64| {
        let mut m = msg(MessageType::MsgHeartbeat, l_id, f_id, term);
        m.commit = commit;
        m
    };
    let mut append_far = msg(MessageType::MsgAppend, l_id, f_id, term);
    append_far.index = 1_000_000;
    append_far.commit = 1_000_000;
    let mut append_conflict = msg(MessageType::MsgAppend, l_id, f_id, term);
    append_conflict.index = 1_000;
    append_conflict.set_entries(vec![entry(1, term + 5)].into());
    let mut append_bad_terms = msg(MessageType::MsgAppend, l_id, f_id, term);
    append_bad_terms.set_entries(vec![entry(1, 0)].into());
    let mut resp_max = msg(MessageType::MsgAppendResponse, f_id, l_id, term);
    resp_max.index = u64::MAX;
    let mut resp_far = msg(MessageType::MsgAppendResponse, f_id, l_id, term);
    resp_far.index = 1_000_000;
    let mut vote_zero = msg(MessageType::MsgRequestVote, l_id, f_id, 0);
    vote_zero.index = 1_000_000;
    vote_zero.log_term = 1_000;
    let mut propose = msg(MessageType::MsgPropose, f_id, l_id, 0);
    propose.set_entries(vec![entry(0, 0)].into());
    let mut learner_overlap = snapshot_msg(l_id, f_id, term, 1_000_000, term, b"{}");
    learner_overlap
        .mut_snapshot()
        .mut_metadata()
        .mut_conf_state()
        .set_learners(vec![2]);
    let mut not_me = heartbeat(term, 0);
    not_me.to = 9;
    let mut stranger = heartbeat(term, 0);
    stranger.from = 9;
    let mut huge_term = heartbeat(u64::MAX, 0);
    huge_term.commit = 0;

    let to_follower = vec![
        // A heartbeat whose commit the follower's log does not reach: raft-rs panics
        // "to_commit ... out of range"; the node lowers it to its last index.
        (
            "heartbeat commit 1e6",
            vec![heartbeat(term, 1_000_000)],
            Expect::Harmless,
        ),
        (
            "heartbeat term 0 commit 1e6",
            vec![heartbeat(0, 1_000_000)],
            Expect::Refused,
        ),
        (
            "append far past the log, log_term 0",
            vec![append_far],
            Expect::Refused,
        ),
        (
            "append conflicting a committed entry",
            vec![append_conflict],
            Expect::Refused,
        ),
        (
            "append entry of term 0",
            vec![append_bad_terms],
            Expect::Refused,
        ),
        ("vote request at term 0", vec![vote_zero], Expect::Refused),
        (
            "snapshot of term 0 far ahead",
            vec![snapshot_msg(l_id, f_id, term, 1_000_000, 0, b"{}")],
            Expect::Refused,
        ),
        (
            "snapshot whose data is not a state",
            vec![snapshot_msg(l_id, f_id, term, 1_000_000, term, b"garbage")],
            Expect::Refused,
        ),
        (
            "snapshot with a voter also a learner",
            vec![learner_overlap],
            Expect::Refused,
        ),
        ("message for another node", vec![not_me], Expect::Refused),
        ("message from a stranger", vec![stranger], Expect::Refused),
        ("term 2^64-1", vec![huge_term], Expect::Refused),
        (
            "local message type (MsgHup)",
            vec![msg(MessageType::MsgHup, l_id, f_id, term)],
            Expect::Refused,
        ),
        (
            "a good heartbeat batched with a bad one",
            vec![heartbeat(term, 0), heartbeat(0, 1_000_000)],
            Expect::Refused,
        ),
    ];
    run_cases(&mut c, f, to_follower).await;

    let leader = c.wait_leader(&[0, 1, 2]).await;
    let (l_id, f) = (leader as u64 + 1, (leader + 1) % 3);
    let f_id = f as u64 + 1;
    let term = term_of(&c, leader).await;
    let mut resp_max_now = resp_max;
    resp_max_now.from = f_id;
    resp_max_now.to = l_id;
    resp_max_now.term = term;
    let mut resp_far_now = resp_far;
    resp_far_now.from = f_id;
    resp_far_now.to = l_id;
    resp_far_now.term = term;
    let mut propose_now = propose;
    propose_now.from = f_id;
    propose_now.to = l_id;
    let to_leader = vec![
        // next_idx = index + 1 overflows.
        (
            "append response index 2^64-1",
            vec![resp_max_now],
            Expect::Refused,
        ),
        // The leader would believe the follower holds entries it never sent.
        (
            "append response past the log",
            vec![resp_far_now],
            Expect::Harmless,
        ),
        // A peer never forwards proposals here: it would append any entry it likes.
        ("forwarded proposal", vec![propose_now], Expect::Refused),
    ];
    run_cases(&mut c, leader, to_leader).await;

    // Still one cluster, serving through every node.
    c.wait_leader(&[0, 1, 2]).await;
    for i in 0..3 {
        c.write_ok(i, "after", json!(i)).await;
        assert_eq!(c.read_ok((i + 1) % 3, "after").await, json!(i));
    }
    for k in 0..5 {
        assert_eq!(c.read_ok(k % 3, &format!("k{k}")).await, json!(k));
    }
    c.assert_running();
}

/// A node that has never heard of a leader is at term 0: a vote request of term 0, or a
/// pre-vote with a negative priority, makes raft-rs answer with term 0 and panic ("term
/// should be set when sending").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_node_at_term_zero_survives_vote_requests_no_peer_sends() {
    let mut c = Cluster::start(Spec::new("raft-register", 3).only(&[0])).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(term_of(&c, 0).await, 0);
    let vote = msg(MessageType::MsgRequestVote, 2, 1, 0);
    let mut pre_vote = msg(MessageType::MsgRequestPreVote, 2, 1, 1);
    pre_vote.priority = -1;
    let mut wrong = Vec::new();
    for (name, m) in [
        ("vote at term 0", vote),
        ("pre-vote, priority -1", pre_vote),
    ] {
        let (code, body) = c.post_raft(0, batch(&[m])).await;
        if let Some((status, _)) = c.wait_exit(0, Duration::from_millis(700)).await {
            wrong.push(format!("{name}: node exited ({status})"));
            c.start_node(0);
            tokio::time::sleep(Duration::from_millis(300)).await;
        } else if code != 400 || body["error"] != "bad-request" {
            wrong.push(format!("{name}: {code} {body}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The lone node then joins its peers normally.
    c.start_node(1);
    c.start_node(2);
    c.wait_leader(&[0, 1, 2]).await;
    c.write_ok(0, "x", json!(1)).await;
    assert_eq!(c.read_ok(0, "x").await, json!(1));
    let (code, body) = c.get(0, "/status").await;
    assert_eq!((code, body["outcome"].clone()), (200, Value::from("ok")));
}

/// Bodies over the peer limit are refused with 413 before they are decoded: the limit of
/// `/raft/messages` is max(4 MiB, state limit) + 64 KiB (64 MiB + 64 KiB by default), that
/// of a replica write 1 MiB + 4 KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_bodies_over_the_limit_get_413() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    c.wait_leader(&[0, 1, 2]).await;
    let limit = 64 * 1024 * 1024 + 64 * 1024;
    let (code, body) = c
        .announce_body(0, "POST", "/raft/messages", limit + 1, 1 << 20, true)
        .await;
    assert_eq!(
        (code, body["outcome"].clone(), body["error"].clone()),
        (413, json!("fail"), json!("too-large")),
        "{body}"
    );
    // Exactly at the limit the body is read (and refused for what it holds).
    let (code, body) = c.post_raft(0, vec![0u8; limit]).await;
    assert_eq!((code, body["error"].clone()), (400, json!("bad-request")));
    c.write_ok(0, "after", json!(1)).await;
    drop(c);

    let c = Cluster::start(Spec::new("quorum-kv", 3)).await;
    c.wait_healthy(0).await;
    let (code, v) = c
        .announce_body(
            0,
            "PUT",
            "/internal/kv/big",
            1024 * 1024 + 4096 + 1,
            4096,
            true,
        )
        .await;
    assert_eq!((code, v["error"].clone()), (413, json!("too-large")), "{v}");
    // What a coordinator sends for the largest client write passes.
    let value = "v".repeat(1024 * 1024 - 100);
    let (code, body) = c.write(1, "big", json!(value)).await;
    assert_eq!(code, 200, "{body}");
    // Every replica gets it (W = 2 answered; the third may come a little later).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for i in 0..3 {
        while c.get(i, "/internal/kv/big").await.1["value"] != json!(value) {
            assert!(
                std::time::Instant::now() < deadline,
                "n{} never got it",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The largest messages a correct node sends pass the limit: appends of the largest
/// entries (a write of a value just under the 1 MiB client limit), queued for a paused
/// follower and sent in batches, and a snapshot of a state near its limit (set to 8 MiB
/// here), sent to a follower that missed the log. A write that would take the state past
/// its limit fails with `state-full` on every replica alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_legitimate_peer_messages_pass_and_the_state_is_bounded() {
    let mut c = Cluster::start(
        Spec::new("raft-register", 3)
            .arg("--max-state-bytes")
            .arg("8388608")
            .arg("--snapshot-every")
            .arg("6"),
    )
    .await;
    let leader = c.wait_leader(&[0, 1, 2]).await;
    let paused = (leader + 1) % 3;
    let killed = (leader + 2) % 3;
    let big = |i: usize| json!(format!("{i}{}", "b".repeat(1024 * 1024 - 100)));
    c.kill(killed);
    c.pause(paused);
    // A majority is the leader alone with the paused node: writes wait for it.
    let writes: Vec<_> = (0..3)
        .map(|i| {
            let (http, url) = (c.http.clone(), c.url(leader, &format!("/kv/big{i}")));
            let body = json!({ "value": big(i) });
            tokio::spawn(async move { http.put(url).json(&body).send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.resume(paused);
    for w in writes {
        let r = w.await.expect("task").expect("send");
        assert_eq!(r.status().as_u16(), 200);
    }
    let mut full = None;
    for i in 3..12 {
        let (code, body) = c.write(leader, &format!("big{i}"), big(i)).await;
        if code != 200 {
            full = Some((i, code, body));
            break;
        }
    }
    let Some((stop, code, body)) = full else {
        panic!("12 values of 1 MiB fit in an 8 MiB state");
    };
    assert_eq!(
        (code, body["outcome"].clone(), body["error"].clone()),
        (507, json!("fail"), json!("state-full")),
        "{body}"
    );
    assert!(stop >= 7, "full after {stop} values of 1 MiB");
    // Overwriting with a small value frees room.
    c.write_ok(leader, "big0", json!(0)).await;
    c.write_ok(leader, &format!("big{stop}"), big(stop)).await;
    // The killed node missed everything: it catches up from a snapshot of ~8 MiB.
    c.start_node(killed);
    c.wait_healthy(killed).await;
    let commit = c.status(leader).await["commit"].as_u64().unwrap_or(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.status(killed).await;
        if s["applied"].as_u64().unwrap_or(0) >= commit {
            assert!(s["snapshot_index"].as_u64().unwrap_or(0) >= 6, "{s}");
            assert!(s["state_bytes"].as_u64().unwrap_or(0) > 7 << 20, "{s}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never caught up: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for node in [killed, paused] {
        assert_eq!(c.read_ok(node, "big0").await, json!(0));
        assert_eq!(c.read_ok(node, "big1").await, big(1));
        let k = format!("big{stop}");
        assert_eq!(c.read_ok(node, &k).await, big(stop));
    }
    c.assert_running();
}

/// A message made of unknown fields nested as groups 500,000 deep, the shape of input
/// RUSTSEC-2024-0437 describes (uncontrolled recursion in the protobuf crate): the node
/// must refuse it with a JSON answer and keep serving. protobuf 2.28's generated code (the
/// codec raft-rs is built with here) refuses a nested group as an unexpected wire type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_unknown_groups_are_refused_without_a_crash() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    c.wait_leader(&[0, 1, 2]).await;
    // Field 100, wire type 3 (start group): tag (100 << 3) | 3 = 803, varint a3 06.
    let payload: Vec<u8> = [0xa3u8, 0x06].repeat(500_000);
    let mut body = u32::try_from(payload.len())
        .expect("len")
        .to_le_bytes()
        .to_vec();
    body.extend_from_slice(&payload);
    let (code, answer) = c.post_raft(0, body).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    if let Some((status, log)) = c.exited(0) {
        let last: Vec<&str> = log.lines().rev().take(3).collect();
        panic!("the node died ({status}): {last:?}");
    }
    assert_eq!(
        (code, answer["error"].clone()),
        (400, json!("bad-request")),
        "{answer}"
    );
    c.write_ok(0, "after", json!(1)).await;
}
