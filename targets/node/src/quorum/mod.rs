//! quorum-kv: a leaderless Dynamo-style key-value store.
//!
//! Every key lives on all N nodes. Any node coordinates a client request:
//! - a write tags the value with `(wall-clock nanoseconds, node id)` and sends it to every
//!   replica (itself included); it is acknowledged `ok` once W replicas have it on disk;
//! - a read asks every replica and answers `ok` with the newest value among the first R
//!   answers (last writer wins), then repairs replicas that answered an older value
//!   (read repair), including those that answer after the client was served.
//!
//! With R + W > N and synchronised clocks a read sees the latest acknowledged write; a
//! clock that runs behind makes its node's writes lose to older ones. **cas is not offered**:
//! it answers `{"outcome":"fail","error":"unsupported"}` with HTTP 501.

pub mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most requests in flight from this coordinator to one peer.
const PEER_IN_FLIGHT: usize = 256;

/// Largest body of a replica write: the largest value a client can send (its body is at
/// most [`MAX_BODY_BYTES`], and a value's JSON is never longer than the body it came in)
/// with its tag, plus room to spare.
pub const REPLICA_BODY_BYTES: usize = MAX_BODY_BYTES + 4 * 1024;

use crate::api::{
    bad_request, validate_key, wall_clock_nanos, Answer, MopKind, Op, Outcome, Txn, MAX_BODY_BYTES,
};
use crate::config::{Fault, NodeArgs};
use crate::http::{client_routes, json_answers, Backend};
use store::{Store, Versioned};

/// Arguments of `faultline-node quorum-kv`.
#[derive(Debug, Clone, Args)]
pub struct QuorumArgs {
    /// Arguments common to both modes.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Read quorum (default: a majority of the nodes).
    #[arg(long)]
    pub r: Option<usize>,
    /// Write quorum (default: a majority of the nodes).
    #[arg(long)]
    pub w: Option<usize>,
}

#[derive(Clone)]
struct KvBackend {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    id: u64,
    /// Peers other than this node: id -> address.
    peers: HashMap<u64, String>,
    /// Requests in flight per peer are capped, so a paused peer cannot pile up sockets;
    /// a request over the cap is not sent at all.
    in_flight: HashMap<u64, Arc<Semaphore>>,
    n: usize,
    r: usize,
    w: usize,
    read_repair: bool,
    store: Store,
    client: reqwest::Client,
    timeout: Duration,
    last_ts: AtomicU64,
    faults: Vec<&'static str>,
}

/// The quorums in force: `(r, w)` after defaults and the `r1`/`w1` faults; `Err` if out of range.
pub fn quorums(
    n: usize,
    r: Option<usize>,
    w: Option<usize>,
    faults: &[Fault],
) -> Result<(usize, usize), String> {
    let majority = n / 2 + 1;
    let mut r = r.unwrap_or(majority);
    let mut w = w.unwrap_or(majority);
    if r == 0 || r > n || w == 0 || w > n {
        return Err(format!("--r and --w must be between 1 and {n}"));
    }
    if faults.contains(&Fault::R1) {
        r = 1;
    }
    if faults.contains(&Fault::W1) {
        w = 1;
    }
    Ok((r, w))
}

/// Starts a quorum-kv node and serves until the process is killed.
pub async fn run(args: QuorumArgs) -> anyhow::Result<()> {
    let node = &args.node;
    if let Some(f) = node.faults.iter().find(|f| f.is_raft()) {
        anyhow::bail!("fault {} belongs to raft-register", f.name());
    }
    if !node.peers.0.contains_key(&node.id) {
        anyhow::bail!("--peers must include this node's id {}", node.id);
    }
    let token = node.token()?;
    let n = node.peers.0.len();
    let (r, w) = quorums(n, args.r, args.w, &node.faults).map_err(anyhow::Error::msg)?;
    let store = Store::open(&node.data_dir)
        .with_context(|| format!("opening {}", node.data_dir.display()))?;
    // Every request of this client goes to a peer route: it carries the token.
    let client = reqwest::Client::builder()
        .default_headers(token.headers())
        .connect_timeout(Duration::from_millis(500))
        .pool_max_idle_per_host(256)
        .build()
        .context("building the HTTP client")?;
    let peers: HashMap<u64, String> = node
        .peers
        .0
        .iter()
        .filter(|(id, _)| **id != node.id)
        .map(|(id, a)| (*id, a.clone()))
        .collect();
    let in_flight = peers
        .keys()
        .map(|id| (*id, Arc::new(Semaphore::new(PEER_IN_FLIGHT))))
        .collect();
    let backend = KvBackend {
        inner: Arc::new(Inner {
            name: node.name(),
            id: node.id,
            peers,
            in_flight,
            n,
            r,
            w,
            read_repair: !node.has(Fault::NoReadRepair),
            store,
            client,
            timeout: Duration::from_millis(node.request_timeout_ms),
            last_ts: AtomicU64::new(0),
            faults: node.faults.iter().map(|f| f.name()).collect(),
        }),
    };
    let app = Router::new()
        .route(
            "/internal/kv/{key}",
            get(replica_get)
                .put(replica_put)
                .layer(axum::extract::DefaultBodyLimit::max(REPLICA_BODY_BYTES)),
        )
        .route("/internal/ping", get(ping))
        .route_layer(axum::middleware::from_fn_with_state(
            (std::sync::Arc::<str>::from(node.name()), REPLICA_BODY_BYTES),
            crate::http::refuse_declared_over,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            crate::peer::Guard {
                token,
                node: node.name().into(),
            },
            crate::peer::require_token,
        ))
        .with_state(backend.clone())
        .merge(client_routes(backend));
    let app = json_answers(app, &node.name());
    let listener = tokio::net::TcpListener::bind(&node.listen)
        .await
        .with_context(|| format!("binding {}", node.listen))?;
    tracing::info!(node = %node.name(), listen = %node.listen, n, r, w, faults = ?node.faults, "quorum-kv serving");
    axum::serve(listener, app).await.context("serving HTTP")
}

/// A replica's answer to `GET /internal/kv/{key}`: the value it holds with its tag.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaRead {
    /// Always `ok`.
    pub outcome: Outcome,
    /// The replica that answered (`n1`).
    pub node: String,
    /// The value held (`null` if never written).
    pub value: serde_json::Value,
    /// Its timestamp (0 if never written).
    pub ts: u64,
    /// Id of the coordinator that wrote it (0 if never written).
    pub writer: u64,
}

async fn ping(State(b): State<KvBackend>) -> Response {
    Answer::ack(&b.inner.name).into_response()
}

async fn replica_get(State(b): State<KvBackend>, Path(key): Path<String>) -> Response {
    let me = &b.inner.name;
    if let Err(e) = validate_key(&key) {
        return bad_request(me, &e);
    }
    let v = b.inner.store.get(&key);
    Json(ReplicaRead {
        outcome: Outcome::Ok,
        node: me.clone(),
        value: v.value,
        ts: v.ts,
        writer: v.node,
    })
    .into_response()
}

async fn replica_put(
    State(b): State<KvBackend>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let me = &b.inner.name;
    if let Err(e) = validate_key(&key) {
        return bad_request(me, &e);
    }
    let v: Versioned = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return bad_request(
                me,
                &format!("replica body must be {{\"value\",\"ts\",\"node\"}}: {e}"),
            )
        }
    };
    match b.inner.store.put(key, v).await {
        Ok(newer) => {
            let mut body = serde_json::to_value(Answer::ack(me)).unwrap_or_default();
            body["applied"] = newer.into();
            Json(body).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(Answer::unknown(me, "store-failed").with_detail(e.to_string())),
        )
            .into_response(),
    }
}

impl Inner {
    fn permit(&self, peer: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.in_flight.get(&peer)?.clone().try_acquire_owned().ok()
    }
}

/// One replica's reply to the coordinator.
enum Ack<T> {
    /// It answered.
    Yes(T),
    /// It certainly did not act (connection refused, disk stopped before writing).
    Refused,
    /// It may or may not have acted.
    Unsure,
}

impl KvBackend {
    fn next_ts(&self) -> u64 {
        let now = wall_clock_nanos();
        let prev = self.inner.last_ts.fetch_max(now, Ordering::SeqCst);
        if prev >= now {
            // Two writes in the same nanosecond (or a clock step back): stay unique per node.
            self.inner.last_ts.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            now
        }
    }

    fn replica_put(
        &self,
        peer: Option<(u64, String)>,
        key: String,
        v: Versioned,
    ) -> tokio::task::JoinHandle<Ack<()>> {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            match peer {
                None => match inner.store.put(key, v).await {
                    Ok(_) => Ack::Yes(()),
                    Err(_) => Ack::Refused,
                },
                Some((id, addr)) => {
                    let Some(_permit) = inner.permit(id) else {
                        return Ack::Refused;
                    };
                    let url = format!("http://{addr}/internal/kv/{key}");
                    match inner
                        .client
                        .put(url)
                        .json(&v)
                        .timeout(inner.timeout)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => Ack::Yes(()),
                        Ok(_) => Ack::Unsure,
                        Err(e) if e.is_connect() => Ack::Refused,
                        Err(_) => Ack::Unsure,
                    }
                }
            }
        })
    }

    fn replica_get(
        &self,
        peer: Option<(u64, String)>,
        key: String,
    ) -> tokio::task::JoinHandle<Ack<Versioned>> {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            match peer {
                None => Ack::Yes(inner.store.get(&key)),
                Some((id, addr)) => {
                    let Some(_permit) = inner.permit(id) else {
                        return Ack::Unsure;
                    };
                    let url = format!("http://{addr}/internal/kv/{key}");
                    match inner.client.get(url).timeout(inner.timeout).send().await {
                        Ok(r) if r.status().is_success() => match r.json::<ReplicaRead>().await {
                            Ok(v) => Ack::Yes(Versioned {
                                value: v.value,
                                ts: v.ts,
                                node: v.writer,
                            }),
                            Err(_) => Ack::Unsure,
                        },
                        Ok(_) | Err(_) => Ack::Unsure,
                    }
                }
            }
        })
    }

    fn replicas(&self) -> Vec<Option<(u64, String)>> {
        let mut all = vec![None];
        all.extend(
            self.inner
                .peers
                .iter()
                .map(|(id, a)| Some((*id, a.clone()))),
        );
        all
    }

    async fn write(&self, key: String, value: serde_json::Value) -> Answer {
        let me = &self.inner.name;
        let v = Versioned {
            value: value.clone(),
            ts: self.next_ts(),
            node: self.inner.id,
        };
        let (tx, mut rx) = mpsc::channel(self.inner.n);
        for peer in self.replicas() {
            let handle = self.replica_put(peer, key.clone(), v.clone());
            let tx = tx.clone();
            tokio::spawn(async move {
                let ack = handle.await.unwrap_or(Ack::Unsure);
                let _ = tx.send(ack).await;
            });
        }
        drop(tx);
        let (mut acks, mut refused) = (0, 0);
        let deadline = tokio::time::sleep(self.inner.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                ack = rx.recv() => match ack {
                    Some(Ack::Yes(())) => {
                        acks += 1;
                        if acks >= self.inner.w {
                            return Answer::ok(me, value);
                        }
                    }
                    Some(Ack::Refused) => refused += 1,
                    Some(Ack::Unsure) => {}
                    None => break,
                },
                _ = &mut deadline => return Answer::unknown(me, "timeout"),
            }
        }
        if acks == 0 && refused == self.inner.n {
            Answer::fail(me, "no-quorum")
        } else {
            Answer::unknown(me, "quorum-not-reached")
        }
    }

    async fn read(&self, key: String) -> Answer {
        let me = self.inner.name.clone();
        let (answer_tx, answer_rx) = oneshot::channel();
        let this = self.clone();
        tokio::spawn(async move { this.read_and_repair(key, answer_tx).await });
        match tokio::time::timeout(self.inner.timeout, answer_rx).await {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => Answer::fail(&me, "no-quorum"),
            Err(_) => Answer::unknown(&me, "timeout"),
        }
    }

    /// Gathers replies; answers once R arrived; then repairs every stale replica that replied.
    async fn read_and_repair(&self, key: String, answer: oneshot::Sender<Answer>) {
        let (tx, mut rx) = mpsc::channel(self.inner.n);
        for peer in self.replicas() {
            let handle = self.replica_get(peer.clone(), key.clone());
            let tx = tx.clone();
            tokio::spawn(async move {
                let ack = handle.await.unwrap_or(Ack::Unsure);
                let _ = tx.send((peer, ack)).await;
            });
        }
        drop(tx);
        let mut answer = Some(answer);
        let mut replies: Vec<(Option<(u64, String)>, Versioned)> = Vec::new();
        let deadline = tokio::time::sleep(self.inner.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Some((peer, Ack::Yes(v))) => {
                        replies.push((peer, v));
                        if replies.len() >= self.inner.r {
                            if let Some(a) = answer.take() {
                                let newest = newest(&replies);
                                let _ = a.send(Answer::ok(&self.inner.name, newest.value));
                            }
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        // Dropping `answer` unsent tells the client there was no read quorum.
        drop(answer);
        if !self.inner.read_repair || replies.len() < self.inner.r {
            return;
        }
        let newest = newest(&replies);
        for (peer, v) in replies {
            if v.tag() < newest.tag() {
                // Fire and forget: the task runs on its own.
                drop(self.replica_put(peer, key.clone(), newest.clone()));
            }
        }
    }
}

fn newest(replies: &[(Option<(u64, String)>, Versioned)]) -> Versioned {
    replies
        .iter()
        .map(|(_, v)| v)
        .max_by_key(|v| v.tag())
        .cloned()
        .unwrap_or_else(Versioned::absent)
}

impl Backend for KvBackend {
    fn name(&self) -> &str {
        &self.inner.name
    }

    async fn execute(&self, key: String, op: Op, _forwarded: bool) -> Response {
        match op {
            Op::Read => self.read(key).await.into_response(),
            Op::Write { value } => self.write(key, value).await.into_response(),
            Op::Cas { .. } => Answer::fail(&self.inner.name, "unsupported").into_response(),
        }
    }

    /// Runs the micro-operations one by one through the quorum paths, without isolation
    /// (see API.md, "Transactions").
    async fn execute_txn(&self, txn: Txn, _forwarded: bool) -> Response {
        let me = &self.inner.name;
        let mut reads = vec![serde_json::Value::Null; txn.mops.len()];
        for (i, m) in txn.mops.iter().enumerate() {
            let key = m.key().to_owned();
            let a = match m.kind() {
                MopKind::Read => self.read(key).await,
                MopKind::Write => self.write(key, m.value().clone()).await,
                MopKind::Append => {
                    let current = self.read(key.clone()).await;
                    if current.outcome != Outcome::Ok {
                        current
                    } else {
                        let list = match current.value {
                            Some(serde_json::Value::Array(mut list)) => {
                                list.push(m.value().clone());
                                Some(list)
                            }
                            Some(serde_json::Value::Null) | None => Some(vec![m.value().clone()]),
                            Some(_) => None,
                        };
                        match list.map(serde_json::Value::Array) {
                            // Replicas take values up to the client body limit.
                            Some(list)
                                if serde_json::to_vec(&list).map_or(usize::MAX, |b| b.len())
                                    > MAX_BODY_BYTES =>
                            {
                                Answer::fail(me, "too-large").with_detail(format!(
                                    "the list of key {key} would pass {MAX_BODY_BYTES} bytes"
                                ))
                            }
                            Some(list) => self.write(key, list).await,
                            None => txn.not_a_list(me, i),
                        }
                    }
                }
            };
            if a.outcome == Outcome::Ok {
                if m.kind() == MopKind::Read {
                    reads[i] = a.value.unwrap_or(serde_json::Value::Null);
                }
                continue;
            }
            // Before any write or append of this transaction was sent, the failure is this
            // micro-operation's own, and its answer says exactly what it is.
            if txn.mops[..i].iter().all(|m| m.kind() == MopKind::Read) {
                return a.into_response();
            }
            return Answer::unknown(me, "partial")
                .with_detail(format!(
                    "micro-operation {i} ended {} {} after earlier writes were sent",
                    if a.outcome == Outcome::Fail {
                        "fail"
                    } else {
                        "unknown"
                    },
                    a.error.as_deref().unwrap_or("")
                ))
                .into_response();
        }
        txn.ok(me, &reads).into_response()
    }

    /// 200 once this node and enough peers to form both quorums answer.
    async fn health(&self) -> Response {
        let mut reachable = 1;
        for addr in self.inner.peers.values() {
            let url = format!("http://{addr}/internal/ping");
            let ok = self
                .inner
                .client
                .get(url)
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if matches!(ok, Ok(r) if r.status().is_success()) {
                reachable += 1;
            }
        }
        let ready = reachable >= self.inner.r.max(self.inner.w);
        let (code, mut body) = if ready {
            (StatusCode::OK, serde_json::json!({"outcome": "ok"}))
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"outcome": "fail", "error": "not-ready"}),
            )
        };
        body["node"] = self.inner.name.clone().into();
        body["ready"] = ready.into();
        body["reachable"] = reachable.into();
        (code, Json(body)).into_response()
    }

    async fn status(&self) -> Response {
        Json(serde_json::json!({
            "outcome": "ok",
            "node": self.inner.name,
            "mode": "quorum-kv",
            "n": self.inner.n,
            "r": self.inner.r,
            "w": self.inner.w,
            "read_repair": self.inner.read_repair,
            "keys": self.inner.store.len(),
            "wall_clock_ns": wall_clock_nanos(),
            "faults": self.inner.faults,
        }))
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorums_default_to_majority_and_faults_override() {
        assert_eq!(quorums(3, None, None, &[]), Ok((2, 2)));
        assert_eq!(quorums(5, None, None, &[]), Ok((3, 3)));
        assert_eq!(quorums(5, Some(1), Some(5), &[]), Ok((1, 5)));
        assert_eq!(quorums(3, None, None, &[Fault::R1]), Ok((1, 2)));
        assert_eq!(
            quorums(3, Some(3), None, &[Fault::W1, Fault::R1]),
            Ok((1, 1))
        );
        assert!(quorums(3, Some(0), None, &[]).is_err());
        assert!(quorums(3, None, Some(4), &[]).is_err());
    }

    #[test]
    fn newest_is_last_writer_wins() {
        let v = |ts, node| Versioned {
            value: serde_json::json!([ts, node]),
            ts,
            node,
        };
        let replies = vec![
            (None, v(5, 1)),
            (None, v(7, 1)),
            (None, v(7, 2)),
            (None, Versioned::absent()),
        ];
        assert_eq!(newest(&replies), v(7, 2));
        assert_eq!(newest(&[]), Versioned::absent());
    }
}
