//! raft-register: a map of linearizable registers replicated with Raft (raft-rs).
//!
//! Writes and cas go through the Raft log; reads go through ReadIndex on the leader. A node
//! that does not lead forwards client requests to the leader it knows (or answers
//! `fail not-leader` with the leader's address if the request was already forwarded once,
//! and `fail no-leader` when it knows none). Answers: see [`crate::api`].

pub mod node;
pub mod state;
pub mod storage;
pub mod transport;
pub mod validate;

use std::collections::HashMap;
use std::sync::mpsc::Sender as LoopSender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use clap::Args;
use tokio::sync::oneshot;

use crate::api::{bad_request, Answer, MopKind, Op, Outcome, Txn};
use crate::config::{Fault, NodeArgs};
use crate::http::{client_routes, forward, forward_txn, json_answers, Backend};
use node::{Input, LoopFaults, Published, RaftLoop, Reply};
use raft::eraftpb::Message;
use serde_json::Value;
use state::TxnApplied;

/// Arguments of `faultline-node raft-register`.
#[derive(Debug, Clone, Args)]
pub struct RaftArgs {
    /// Arguments common to both modes.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Take a snapshot and compact the log every this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Most bytes the replicated state may hold, as JSON text (what a snapshot carries; at
    /// least 1 MiB). A write that would pass it fails with `state-full`. The body limit of
    /// `/raft/messages` follows from it.
    #[arg(long, default_value_t = state::MAX_STATE_BYTES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1024 * 1024..))]
    pub max_state_bytes: usize,
}

#[derive(Clone)]
struct RaftBackend {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    id: u64,
    peers: HashMap<u64, String>,
    tx: LoopSender<Input>,
    published: Arc<Mutex<Published>>,
    client: reqwest::Client,
    timeout: Duration,
    faults: Vec<&'static str>,
    txn_faults: TxnFaults,
    check: validate::PeerCheck,
}

/// The planted transaction faults in force (see [`crate::config::Fault`]).
#[derive(Debug, Clone, Copy, Default)]
struct TxnFaults {
    stale_reads: bool,
    split: bool,
    lost_update: bool,
}

/// Starts a raft-register node and serves until the process is killed.
pub async fn run(args: RaftArgs) -> anyhow::Result<()> {
    let node = &args.node;
    if let Some(f) = node.faults.iter().find(|f| !f.is_raft()) {
        anyhow::bail!("fault {} belongs to quorum-kv", f.name());
    }
    if !node.peers.0.contains_key(&node.id) {
        anyhow::bail!("--peers must include this node's id {}", node.id);
    }
    let token = node.token()?;
    let peers: HashMap<u64, String> = node.peers.0.clone().into_iter().collect();
    let voters: Vec<u64> = node.peers.0.keys().copied().collect();
    let store = storage::DiskStorage::open(&node.data_dir, &voters, !node.has(Fault::NoFsync))
        .with_context(|| format!("opening {}", node.data_dir.display()))?;
    let applied = store.snapshot_ref().get_metadata().index;
    let config = raft::Config {
        id: node.id,
        election_tick: 20,
        heartbeat_tick: 2,
        applied,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    };
    let logger = slog::Logger::root(TracingDrain, slog::o!());
    let raw = raft::RawNode::new(&config, store, &logger).context("starting raft")?;

    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(500))
        .pool_max_idle_per_host(64)
        .build()
        .context("building the HTTP client")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let senders =
        transport::spawn_senders(&peers, node.id, tx.clone(), client.clone(), token.clone());
    let published = Arc::new(Mutex::new(Published::default()));
    let faults = LoopFaults {
        stale_reads: node.has(Fault::StaleReads),
        early_ack: node.has(Fault::EarlyAck),
        lease_reads: node.has(Fault::LeaseReads),
    };
    let raft_loop = RaftLoop::new(
        raw,
        node.name(),
        faults,
        senders,
        published.clone(),
        args.snapshot_every,
        args.max_state_bytes,
    )?;
    let loop_thread = std::thread::Builder::new()
        .name("raft".to_owned())
        .spawn(move || raft_loop.run(rx))
        .context("spawning the raft thread")?;

    let backend = RaftBackend {
        inner: Arc::new(Inner {
            name: node.name(),
            id: node.id,
            peers,
            tx,
            published,
            client,
            timeout: Duration::from_millis(node.request_timeout_ms),
            faults: node.faults.iter().map(|f| f.name()).collect(),
            txn_faults: TxnFaults {
                stale_reads: node.has(Fault::TxnStaleReads),
                split: node.has(Fault::TxnSplit),
                lost_update: node.has(Fault::TxnLostUpdate),
            },
            check: validate::PeerCheck::new(node.id, &voters, args.max_state_bytes),
        }),
    };
    let guard = crate::peer::Guard {
        token,
        node: node.name().into(),
    };
    let limit = transport::body_limit(args.max_state_bytes);
    let app = Router::new()
        .route(
            "/raft/messages",
            post(raft_messages).layer(DefaultBodyLimit::max(limit)),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            (guard.node.clone(), limit),
            crate::http::refuse_declared_over,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            guard,
            crate::peer::require_token,
        ))
        .with_state(backend.clone())
        .merge(client_routes(backend));
    let app = json_answers(app, &node.name());
    let listener = tokio::net::TcpListener::bind(&node.listen)
        .await
        .with_context(|| format!("binding {}", node.listen))?;
    tracing::info!(node = %node.name(), listen = %node.listen, faults = ?node.faults, "raft-register serving");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    // The node stops when the Raft loop stops (a disk error) or the server fails.
    let watcher = tokio::task::spawn_blocking(move || loop_thread.join());
    tokio::select! {
        r = server => { r.context("server task")?.context("serving HTTP")?; }
        r = watcher => {
            match r.context("raft watcher")? {
                Ok(Ok(())) => anyhow::bail!("raft loop stopped"),
                Ok(Err(e)) => return Err(e).context("raft loop failed"),
                Err(_) => anyhow::bail!("raft loop panicked"),
            }
        }
    }
    Ok(())
}

/// Decodes a batch and checks every message; `Err` describes the first that is refused.
fn decode_and_check(check: &validate::PeerCheck, body: &[u8]) -> Result<Vec<Message>, String> {
    transport::decode(body, |m| check.check(m))
}

/// Bodies above this size (snapshots) are decoded and checked off the async threads.
const CHECK_INLINE_BYTES: usize = 256 * 1024;

async fn raft_messages(State(b): State<RaftBackend>, body: Bytes) -> Response {
    let me = &b.inner.name;
    let checked = if body.len() <= CHECK_INLINE_BYTES {
        decode_and_check(&b.inner.check, &body)
    } else {
        let check = b.inner.check.clone();
        tokio::task::spawn_blocking(move || decode_and_check(&check, &body))
            .await
            .unwrap_or_else(|e| Err(format!("checking the batch failed: {e}")))
    };
    match checked {
        Ok(msgs) => {
            for m in msgs {
                if b.inner.tx.send(Input::Raft(Box::new(m))).is_err() {
                    return Answer::fail(me, "shutting-down").into_response();
                }
            }
            Answer::ack(me).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "peer batch refused");
            bad_request(me, &e)
        }
    }
}

impl RaftBackend {
    fn published(&self) -> Published {
        self.inner
            .published
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    async fn ask_loop(&self, key: String, op: Op) -> Result<Reply, Answer> {
        let (reply, rx) = oneshot::channel();
        let me = &self.inner.name;
        if self
            .inner
            .tx
            .send(Input::Client { key, op, reply })
            .is_err()
        {
            return Err(Answer::fail(me, "shutting-down"));
        }
        match tokio::time::timeout(self.inner.timeout, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(Answer::unknown(me, "dropped-internally")),
            Err(_) => Err(Answer::unknown(me, "timeout")),
        }
    }
}

/// The values a transaction's `ok` answer read, one per micro-operation (`null` for the
/// writes and appends); `None` if the answer is not such an answer for `n` of them.
fn reads_of(a: &Answer, n: usize) -> Option<Vec<Value>> {
    if a.outcome != Outcome::Ok {
        return None;
    }
    let mops = a.txn.as_ref()?.as_array()?;
    if mops.len() != n {
        return None;
    }
    mops.iter()
        .map(|m| m.as_array().and_then(|m| m.get(2)).cloned())
        .collect()
}

impl RaftBackend {
    /// Sends `input` (made with a reply sender) to the loop and waits for the reply.
    async fn ask<T>(&self, input: Input, rx: oneshot::Receiver<T>) -> Result<T, Answer> {
        let me = &self.inner.name;
        if self.inner.tx.send(input).is_err() {
            return Err(Answer::fail(me, "shutting-down"));
        }
        match tokio::time::timeout(self.inner.timeout, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(Answer::unknown(me, "dropped-internally")),
            Err(_) => Err(Answer::unknown(me, "timeout")),
        }
    }

    /// Runs `txn` as one log entry: proposed here if this node leads, otherwise forwarded
    /// to the leader (once).
    async fn txn_entry(&self, txn: &Txn, forwarded: bool) -> Answer {
        let me = self.inner.name.clone();
        let (reply, rx) = oneshot::channel();
        let input = Input::Txn {
            mops: txn.mops.clone(),
            reply,
        };
        match self.ask(input, rx).await {
            Ok(Reply::Txn(TxnApplied::Ok(reads))) => txn.ok(&me, &reads),
            Ok(Reply::Txn(TxnApplied::NotAList(i))) => txn.not_a_list(&me, i),
            Ok(Reply::Txn(TxnApplied::Full)) => Answer::fail(&me, "state-full"),
            Ok(Reply::Answer(a)) => *a,
            Err(a) => a,
            Ok(Reply::NotLeader(leader)) => {
                let addr = leader
                    .filter(|l| *l != self.inner.id)
                    .and_then(|l| self.inner.peers.get(&l));
                match addr {
                    Some(addr) if !forwarded => {
                        forward_txn(
                            &self.inner.client,
                            &me,
                            addr,
                            txn,
                            self.inner.timeout,
                            "leader-unreachable",
                        )
                        .await
                    }
                    Some(addr) => {
                        let mut a = Answer::fail(&me, "not-leader");
                        a.leader = Some(addr.clone());
                        a
                    }
                    None => Answer::fail(&me, "no-leader"),
                }
            }
        }
    }

    /// Runs `txn` through the log: one entry, or under `txn-split` one entry per
    /// micro-operation, each proposed once the previous one is applied.
    async fn txn_entries(&self, txn: &Txn, forwarded: bool) -> Answer {
        if !self.inner.txn_faults.split || txn.mops.len() == 1 {
            return self.txn_entry(txn, forwarded).await;
        }
        let me = &self.inner.name;
        let mut reads = vec![Value::Null; txn.mops.len()];
        let mut wrote = false;
        for (i, read) in reads.iter_mut().enumerate() {
            let a = self.txn_entry(&txn.select(&[i]), forwarded).await;
            match reads_of(&a, 1) {
                Some(mut r) => *read = r.pop().unwrap_or(Value::Null),
                None if !wrote => return remap(a, &[i]),
                None => {
                    return Answer::unknown(me, "partial").with_detail(format!(
                        "micro-operation {i} ended {:?} {} after earlier ones were applied",
                        a.outcome,
                        a.error.as_deref().unwrap_or("")
                    ))
                }
            }
            wrote |= txn.mops.get(i).is_some_and(|m| m.kind() != MopKind::Read);
        }
        txn.ok(me, &reads)
    }

    /// Evaluates `txn` on this node's applied state, proposing nothing.
    async fn evaluate_here(&self, txn: &Txn) -> Result<Result<Vec<Value>, usize>, Answer> {
        let (reply, rx) = oneshot::channel();
        let input = Input::Evaluate {
            mops: txn.mops.clone(),
            reply,
        };
        self.ask(input, rx).await
    }
}

/// `a`, an answer about a sub-transaction made of the micro-operations at `positions`,
/// with its `index` turned into a position in the whole transaction.
fn remap(mut a: Answer, positions: &[usize]) -> Answer {
    a.index = a.index.and_then(|i| positions.get(i).copied());
    a
}

impl Backend for RaftBackend {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn execute(&self, key: String, op: Op, forwarded: bool) -> Response {
        let me = self.inner.name.clone();
        match self.ask_loop(key.clone(), op.clone()).await {
            Ok(Reply::Answer(a)) => (*a).into_response(),
            Err(a) => a.into_response(),
            // The loop answers a single-key operation with Answer or NotLeader only.
            Ok(Reply::Txn(_)) => Answer::unknown(&me, "dropped-internally").into_response(),
            Ok(Reply::NotLeader(leader)) => {
                let addr = leader
                    .filter(|l| *l != self.inner.id)
                    .and_then(|l| self.inner.peers.get(&l));
                match addr {
                    Some(addr) if !forwarded => {
                        forward(
                            &self.inner.client,
                            &me,
                            addr,
                            &key,
                            &op,
                            self.inner.timeout,
                            "leader-unreachable",
                        )
                        .await
                    }
                    Some(addr) => {
                        let mut a = Answer::fail(&me, "not-leader");
                        a.leader = Some(addr.clone());
                        a.into_response()
                    }
                    None => Answer::fail(&me, "no-leader").into_response(),
                }
            }
        }
    }

    async fn execute_txn(&self, txn: Txn, forwarded: bool) -> Response {
        let me = self.inner.name.clone();
        let faults = self.inner.txn_faults;
        let orig = txn.clone();
        let mut txn = txn;
        if faults.lost_update && txn.mops.iter().any(|m| m.kind() == MopKind::Append) {
            // The planted bug: every append becomes a write of the list this node holds
            // now (with the transaction's own earlier effects) plus the value.
            let mut rewritten = txn.clone();
            for i in 0..txn.mops.len() {
                if txn.mops[i].kind() != MopKind::Append {
                    continue;
                }
                let upto = txn.select(&(0..=i).collect::<Vec<_>>());
                let mut probe = upto.clone();
                probe.mops.push(crate::api::Mop(
                    MopKind::Read,
                    txn.mops[i].key().to_owned(),
                    Value::Null,
                ));
                match self.evaluate_here(&probe).await {
                    Ok(Ok(mut r)) => {
                        let list = r.pop().unwrap_or(Value::Null);
                        rewritten.mops[i] =
                            crate::api::Mop(MopKind::Write, txn.mops[i].key().to_owned(), list);
                    }
                    Ok(Err(j)) => return txn.not_a_list(&me, j).into_response(),
                    Err(a) => return a.into_response(),
                }
            }
            txn = rewritten;
        }
        if !faults.stale_reads {
            let a = self.txn_entries(&txn, forwarded).await;
            // Answer with the request as sent (appends stay appends).
            return match reads_of(&a, txn.mops.len()) {
                // The node that served it (the leader, for a forwarded one) answers.
                Some(reads) => orig.ok(&a.node, &reads).into_response(),
                None => a.into_response(),
            };
        }
        // The planted bug: reads from this node's applied state as it is now; only the
        // writes and appends go through the log.
        let local = match self.evaluate_here(&txn).await {
            Ok(Ok(r)) => r,
            Ok(Err(j)) => return txn.not_a_list(&me, j).into_response(),
            Err(a) => return a.into_response(),
        };
        let writes: Vec<usize> = (0..txn.mops.len())
            .filter(|i| txn.mops[*i].kind() != MopKind::Read)
            .collect();
        if !writes.is_empty() {
            let a = self.txn_entries(&txn.select(&writes), forwarded).await;
            if a.outcome != Outcome::Ok {
                return remap(a, &writes).into_response();
            }
        }
        orig.ok(&me, &local).into_response()
    }

    async fn health(&self) -> Response {
        let p = self.published();
        let ready = p.leader != 0 && p.applied >= p.commit;
        let (code, outcome) = if ready {
            (StatusCode::OK, serde_json::json!({"outcome": "ok"}))
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"outcome": "fail", "error": "not-ready"}),
            )
        };
        let mut body = outcome;
        body["node"] = self.inner.name.clone().into();
        body["ready"] = ready.into();
        body["leader"] = p.leader.into();
        (code, axum::Json(body)).into_response()
    }

    async fn status(&self) -> Response {
        let p = self.published();
        let leader_addr = self.inner.peers.get(&p.leader).cloned();
        axum::Json(serde_json::json!({
            "outcome": "ok",
            "node": self.inner.name,
            "mode": "raft-register",
            "role": p.role,
            "term": p.term,
            "leader": if p.leader == 0 { None } else { Some(format!("n{}", p.leader)) },
            "leader_addr": leader_addr,
            "commit": p.commit,
            "applied": p.applied,
            "snapshot_index": p.snapshot_index,
            "state_bytes": p.state_bytes,
            "wall_clock_ns": crate::api::wall_clock_nanos(),
            "faults": self.inner.faults,
        }))
        .into_response()
    }
}

/// Forwards raft-rs's `slog` records to `tracing`, so all logs go to stderr in one format.
struct TracingDrain;

struct Fields(String);

impl slog::Serializer for Fields {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments) -> slog::Result {
        self.0.push_str(&format!(" {key}={val}"));
        Ok(())
    }
}

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        use slog::KV;
        let mut fields = Fields(String::new());
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let msg = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{msg}{}", fields.0)
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{msg}{}", fields.0),
            slog::Level::Info => tracing::info!(target: "raft", "{msg}{}", fields.0),
            slog::Level::Debug | slog::Level::Trace => {
                tracing::debug!(target: "raft", "{msg}{}", fields.0)
            }
        }
        Ok(())
    }
}
