//! NATS JetStream key-value as a third-party target: Debian's `nats-server`
//! (`/usr/sbin/nats-server`, 2.9.x), one server per node, clustered over routes, with one
//! KV bucket replicated on every node, driven with the `async-nats` client.
//!
//! # Deployment
//!
//! Server `n{i}` listens for clients on port 4222, for routes on 6222 and serves its
//! monitoring endpoints on 8222; it names itself `n{i}` (`--server_name`, which JetStream's
//! Raft groups need), joins cluster `faultline` and solicits routes to every node's fixed
//! IP (its own included: the server recognises and drops the route to itself). JetStream
//! is on, with file storage in `/data/nats` on the node's bind-mounted data folder: a
//! server killed and started again finds its streams and Raft logs there. Servers do not
//! advertise each other to clients (`--no_advertise`), so a client stays with its node.
//!
//! Readiness is `GET /healthz` on 8222: nats-server 2.9 answers 503 `{"status":
//! "unavailable","error":"JetStream has not established contact with a meta leader"}`
//! until the meta group has a leader (and, once streams exist, until they are current),
//! then 200 `{"status":"ok"}` (checked by hand on 2.9.10).
//!
//! The bucket `faultline` (stream `KV_faultline`, subjects `$KV.faultline.>`, history 1,
//! file storage, discard new, rollup allowed, deletes denied: the KV conventions) is
//! created by the clients, with as many replicas as nodes (R3, R5), on their first
//! operation: every client asks to create the same stream, which the server accepts again
//! when the configuration is identical. JetStream replicates a stream on at most 5
//! servers, so the target takes 3 to 5 nodes.
//!
//! # Option `reads`
//!
//! - `reads=leader` (default): the stream is created with `allow_direct: false`, and a
//!   get is the JetStream API's `STREAM.MSG.GET` (last message for the key's subject),
//!   which only the stream leader answers.
//! - `reads=direct`: the stream is created with `allow_direct: true`, and a get is a
//!   direct get (`$JS.API.DIRECT.GET.KV_faultline`), answered by any replica, the one on
//!   the client's own server first.
//!
//! Writes (`put`: a publish to `$KV.faultline.<key>`) always go to the stream leader and
//! are acknowledged once the Raft group has stored them. A cas is a get followed, when the
//! value is the expected one, by a publish with `Nats-Expected-Last-Subject-Sequence` set
//! to the revision read: the leader refuses it ("wrong last sequence") if the key moved.
//!
//! # What it claims, and why
//!
//! - Leader reads: **linearizable**. NATS documents JetStream's formal consistency model
//!   as linearizable (docs.nats.io, JetStream), the KV store as "immediately (as opposed to
//!   eventually) consistent", and says that more consistent results than direct gets come
//!   from sending gets to the stream leader (docs.nats.io, "Key/Value Store").
//! - Direct reads: **mr** and **mw** only. The same page guarantees monotonic writes and
//!   monotonic reads, and says read-your-writes is *not* guaranteed because direct gets
//!   may be served by followers or mirrors.
//!
//! Measured on 2.9.10 (ARCHITECTURE.md, NATS section, has the witnesses and the commands
//! that reproduce them), neither claim holds: a cas racing a write on the same key is
//! accepted against a superseded revision (linearizability fails with no fault at all), a
//! paused stream leader answers gets from its stale state after it resumes, and direct
//! gets of one process can go back in time during a partition (monotonic reads fail).
//!
//! # Clock faults
//!
//! They do not reach nats-server ([`Target::clock_faults`] says why): it is a Go program
//! (dynamically linked against libc only, like etcd) and Go reads the clock through the
//! vDSO, not through libc, so libfaketime's `LD_PRELOAD` is never consulted.
//!
//! # Answers
//!
//! See [`map_failure`]: a read changes nothing, so any error on it is `fail`; a write or
//! cas is `fail` only when it provably did not take effect (not connected, so never sent;
//! no responders, so no stream took it; wrong last sequence: the leader refused it before
//! storing), and `info` when it was published and the answer did not come or was an error
//! the leader may have given after proposing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::kv::Store;
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, StorageType};
use async_nats::jetstream::Context;
use async_trait::async_trait;
use serde_json::Value;

use crate::runtime::ReadyProbe;
use crate::target::{
    ClaimContext, Claims, Client, ClientContext, ClientOp, Completion, CompletionKind,
    DeployContext, Program, Role, SwitchableFault, Target, TargetError,
};

/// nats-server's client port.
pub const NATS_CLIENT_PORT: u16 = 4222;

/// nats-server's cluster (route) port.
pub const NATS_CLUSTER_PORT: u16 = 6222;

/// nats-server's HTTP monitoring port (`/healthz`).
pub const NATS_MONITOR_PORT: u16 = 8222;

/// Where Debian's `nats-server` installs the program.
pub const NATS_SYSTEM_BINARY: &str = "/usr/sbin/nats-server";

/// How to get it.
pub const NATS_INSTALL_HINT: &str =
    "install Debian's nats-server: sudo apt-get install nats-server";

/// Why the nemesis's clock faults cannot reach nats-server.
pub const NATS_CLOCK_REASON: &str = "nats-server is a Go program: Go reads the clock through the vDSO, not through libc, so libfaketime's LD_PRELOAD never sees a call (as measured for etcd, another Go program)";

/// The KV bucket the clients create and use.
pub const BUCKET: &str = "faultline";

/// JetStream keeps at most this many replicas of a stream.
pub const MAX_REPLICAS: usize = 5;

/// How a get is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Through the stream leader (`STREAM.MSG.GET`, `allow_direct: false`).
    #[default]
    Leader,
    /// By any replica (`DIRECT.GET`, `allow_direct: true`).
    Direct,
}

impl ReadMode {
    /// The option's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Leader => "leader",
            ReadMode::Direct => "direct",
        }
    }

    /// The read mode the target options ask for (`reads`); `Err` says what is wrong.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<ReadMode, String> {
        match crate::target::choice_option("nats", options, "reads", &["leader", "direct"])? {
            "direct" => Ok(ReadMode::Direct),
            _ => Ok(ReadMode::Leader),
        }
    }
}

/// The NATS JetStream KV target.
#[derive(Debug, Default, Clone, Copy)]
pub struct Nats;

/// The stream behind the bucket, as the KV conventions define it, with `replicas` copies
/// and direct gets allowed only in [`ReadMode::Direct`].
pub fn bucket_stream(replicas: usize, reads: ReadMode) -> StreamConfig {
    StreamConfig {
        name: format!("KV_{BUCKET}"),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        discard: DiscardPolicy::New,
        storage: StorageType::File,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: reads == ReadMode::Direct,
        duplicate_window: Duration::from_secs(120),
        max_age: Duration::ZERO,
        ..Default::default()
    }
}

/// The subject a put of `key` is published on.
pub fn key_subject(key: &str) -> String {
    format!("$KV.{BUCKET}.{key}")
}

impl Target for Nats {
    fn name(&self) -> &str {
        "nats"
    }
    fn description(&self) -> &str {
        "NATS JetStream KV from Debian's nats-server 2.9 (/usr/sbin/nats-server), through async-nats"
    }
    fn program(&self) -> Program {
        Program::HostBinary {
            path: PathBuf::from(NATS_SYSTEM_BINARY),
            hint: NATS_INSTALL_HINT.to_string(),
        }
    }
    fn clock_faults(&self) -> Result<(), String> {
        Err(NATS_CLOCK_REASON.to_string())
    }
    fn has_leader(&self) -> bool {
        true
    }
    fn port(&self) -> u16 {
        NATS_CLIENT_PORT
    }
    fn ready_probe(&self, _ctx: &DeployContext<'_>) -> ReadyProbe {
        ReadyProbe::Http {
            port: NATS_MONITOR_PORT,
            path: "/healthz".to_string(),
        }
    }
    fn min_nodes(&self) -> usize {
        3
    }
    fn node_args(&self, ctx: &DeployContext<'_>) -> Vec<String> {
        let routes: Vec<String> = ctx
            .hosts
            .iter()
            .map(|ip| format!("nats://{ip}:{NATS_CLUSTER_PORT}"))
            .collect();
        let store = format!("{}/nats", ctx.data_dir.trim_end_matches('/'));
        [
            ("--server_name", ctx.name()),
            ("--addr", "0.0.0.0".to_string()),
            ("--port", NATS_CLIENT_PORT.to_string()),
            ("--http_port", NATS_MONITOR_PORT.to_string()),
            ("--jetstream", String::new()),
            ("--store_dir", store),
            ("--cluster_name", "faultline".to_string()),
            ("--cluster", format!("nats://0.0.0.0:{NATS_CLUSTER_PORT}")),
            (
                "--cluster_advertise",
                format!("{}:{NATS_CLUSTER_PORT}", ctx.host()),
            ),
            ("--routes", routes.join(",")),
            ("--no_advertise", String::new()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| {
            if value.is_empty() {
                vec![flag.to_string()]
            } else {
                vec![flag.to_string(), value]
            }
        })
        .collect()
    }
    fn offers_cas(&self) -> bool {
        true
    }
    fn faults(&self) -> &[SwitchableFault] {
        &[]
    }
    fn check_options(
        &self,
        options: &BTreeMap<String, String>,
        nodes: usize,
    ) -> Result<(), TargetError> {
        let bad = |message: String| TargetError::BadOption {
            target: self.name().to_string(),
            message,
        };
        ReadMode::from_options(options).map_err(bad)?;
        if nodes > MAX_REPLICAS {
            return Err(bad(format!(
                "{nodes} nodes: the bucket is replicated on every node and JetStream keeps at most {MAX_REPLICAS} replicas (use --nodes 3 or 5)"
            )));
        }
        Ok(())
    }
    fn claims(&self, ctx: &ClaimContext<'_>) -> Claims {
        let mode = ctx
            .options
            .map(ReadMode::from_options)
            .unwrap_or(Ok(ReadMode::Leader));
        match mode {
            Ok(ReadMode::Leader) => Claims {
                models: vec!["linearizable".to_string()],
                reason: "NATS documents JetStream's formal consistency model as linearizable and the KV store as immediately consistent (docs.nats.io: JetStream; Key/Value Store): a put is acknowledged after the stream's Raft group stored it, a cas is a put the leader refuses when the key's last sequence moved, and with reads=leader every get is answered by the stream leader (STREAM.MSG.GET), the read path the KV page names as the consistent one".to_string(),
            },
            Ok(ReadMode::Direct) => Claims {
                models: vec!["mr".to_string(), "mw".to_string()],
                reason: "reads=direct: gets are direct gets any replica may answer; the KV page (docs.nats.io, Key/Value Store) guarantees monotonic writes and monotonic reads and says read-your-writes is not guaranteed because direct gets may be served by followers or mirrors, so nothing stronger is claimed".to_string(),
            },
            Err(e) => Claims {
                models: Vec::new(),
                reason: format!("invalid options: {e}"),
            },
        }
    }
    fn client(&self, ctx: &ClientContext<'_>) -> Result<Arc<dyn Client>, TargetError> {
        let reads =
            ReadMode::from_options(ctx.options).map_err(|message| TargetError::BadOption {
                target: self.name().to_string(),
                message,
            })?;
        Ok(Arc::new(NatsClient::new(
            ctx.node,
            ctx.addr,
            ctx.timeout,
            reads,
            ctx.nodes.clamp(1, MAX_REPLICAS),
        )))
    }
}

/// Why an operation did not complete `ok`, in the terms that decide fail or info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection to the server: nothing was sent.
    NotConnected(String),
    /// The client refused the request before handing it to the connection.
    NotSent(String),
    /// The bucket could not be created or opened: the operation was not sent.
    Setup(String),
    /// The get failed (any reason): a read changes nothing.
    Read(String),
    /// The value read is not one faultline wrote (not a decimal u64).
    BadValue(String),
    /// A cas whose get saw another value than the expected one: nothing was published.
    ValueMismatch,
    /// The publish met no responders: no stream took the message.
    NoResponders,
    /// The stream leader refused a cas: the key's last sequence moved.
    WrongLastSequence,
    /// The publish was sent and no acknowledgement came in time.
    TimedOut,
    /// The publish was sent and the connection or its reply inbox went away.
    ConnectionLost(String),
    /// The publish was sent and JetStream answered with an error.
    Refused(String),
}

/// Maps a [`Failure`] of `op` to its completion.
///
/// - Anything on a read: `fail` (a get changes nothing).
/// - Not connected, not sent, setup failed, no responders: `fail` (never stored).
/// - A cas whose value differs, or whose revision moved: `fail` `mismatch`.
/// - A timeout, a lost connection or an error answer after publishing: `info` (the
///   leader may have stored it).
pub fn map_failure(op: &ClientOp, failure: &Failure) -> Completion {
    let text = match failure {
        Failure::NotConnected(e) => format!("not connected: {e}"),
        Failure::NotSent(e) => format!("not sent: {e}"),
        Failure::Setup(e) => format!("bucket unavailable: {e}"),
        Failure::Read(e) => e.clone(),
        Failure::BadValue(v) => format!("value {v:?} is not a number"),
        Failure::ValueMismatch | Failure::WrongLastSequence => "mismatch".to_string(),
        Failure::NoResponders => "no responders".to_string(),
        Failure::TimedOut => "timeout".to_string(),
        Failure::ConnectionLost(e) => format!("connection lost: {e}"),
        Failure::Refused(e) => e.clone(),
    };
    let definite = match failure {
        Failure::BadValue(_) => false,
        Failure::NotConnected(_)
        | Failure::NotSent(_)
        | Failure::Setup(_)
        | Failure::Read(_)
        | Failure::ValueMismatch
        | Failure::NoResponders
        | Failure::WrongLastSequence => true,
        Failure::TimedOut | Failure::ConnectionLost(_) | Failure::Refused(_) => {
            matches!(op, ClientOp::Read)
        }
    };
    if definite {
        Completion::fail(text)
    } else {
        Completion::info(text)
    }
}

/// The [`Failure`] of a publish whose acknowledgement failed (the message was sent).
pub fn ack_failure(err: &PublishError) -> Failure {
    match err.kind() {
        PublishErrorKind::WrongLastSequence => Failure::WrongLastSequence,
        PublishErrorKind::StreamNotFound => Failure::NoResponders,
        PublishErrorKind::TimedOut => Failure::TimedOut,
        PublishErrorKind::BrokenPipe => Failure::ConnectionLost(err.to_string()),
        PublishErrorKind::WrongLastMessageId | PublishErrorKind::Other => {
            Failure::Refused(err.to_string())
        }
    }
}

/// A value read: the decimal text faultline wrote, `None` otherwise.
pub fn parse_value(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload).ok()?.parse().ok()
}

/// The role a server has for the bucket's stream, given the stream leader's name.
pub fn role_of_leader(node: &str, leader: Option<&str>) -> Role {
    match leader {
        Some(l) if l == node => Role::Leader { term: 0 },
        Some(_) => Role::Follower,
        None => Role::Unknown,
    }
}

#[derive(Debug, Clone)]
struct Conn {
    client: async_nats::Client,
    js: Context,
    kv: Store,
}

/// A client of one nats-server, holding one NATS connection that all processes bound to
/// the node share.
#[derive(Debug)]
pub struct NatsClient {
    node: String,
    addr: SocketAddr,
    timeout: Duration,
    reads: ReadMode,
    replicas: usize,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl NatsClient {
    /// A client for server `node` at `addr`, reading in `reads`, creating the bucket with
    /// `replicas` copies; every operation is bounded by `timeout`.
    pub fn new(
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
        reads: ReadMode,
        replicas: usize,
    ) -> Self {
        NatsClient {
            node: node.to_string(),
            addr,
            timeout,
            reads,
            replicas,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// The connection, opened (and the bucket created) on first use.
    async fn conn(&self) -> Result<Conn, Failure> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(self.timeout / 2)
            .request_timeout(Some(self.timeout))
            .ignore_discovered_servers()
            .retain_servers_order()
            .connect(format!("nats://{}", self.addr))
            .await
            .map_err(|e| Failure::NotConnected(e.to_string()))?;
        let mut js = async_nats::jetstream::new(client.clone());
        js.set_timeout(self.timeout);
        js.get_or_create_stream(bucket_stream(self.replicas, self.reads))
            .await
            .map_err(|e| Failure::Setup(e.to_string()))?;
        let kv = js
            .get_key_value(BUCKET)
            .await
            .map_err(|e| Failure::Setup(e.to_string()))?;
        let c = Conn { client, js, kv };
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn publish(
        &self,
        c: &Conn,
        key: &str,
        value: u64,
        revision: Option<u64>,
        sent: &AtomicBool,
    ) -> Result<(), Failure> {
        if c.client.connection_state() != State::Connected {
            return Err(Failure::NotConnected(format!("{}", self.addr)));
        }
        let mut headers = async_nats::HeaderMap::new();
        if let Some(rev) = revision {
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                rev.to_string().as_str(),
            );
        }
        sent.store(true, Ordering::SeqCst);
        let ack =
            c.js.publish_with_headers(key_subject(key), headers, value.to_string().into())
                .await
                .map_err(|e| Failure::NotSent(e.to_string()))?;
        ack.await.map(|_| ()).map_err(|e| ack_failure(&e))
    }

    async fn get(&self, c: &Conn, key: &str) -> Result<Option<(u64, u64)>, Failure> {
        match c.kv.entry(key).await {
            Ok(None) => Ok(None),
            Ok(Some(e)) => match parse_value(&e.value) {
                Some(v) => Ok(Some((v, e.revision))),
                None => Err(Failure::BadValue(
                    String::from_utf8_lossy(&e.value[..e.value.len().min(40)]).into_owned(),
                )),
            },
            Err(e) => Err(Failure::Read(e.to_string())),
        }
    }

    async fn run(&self, key: &str, op: &ClientOp, sent: &AtomicBool) -> Result<Value, Failure> {
        let c = self.conn().await?;
        match op {
            ClientOp::Read => Ok(self
                .get(&c, key)
                .await?
                .map(|(v, _)| Value::from(v))
                .unwrap_or(Value::Null)),
            ClientOp::Write(v) => {
                self.publish(&c, key, *v, None, sent).await?;
                Ok(op.argument())
            }
            ClientOp::Cas { expected, new } => {
                let revision = match self.get(&c, key).await {
                    Ok(Some((v, rev))) if v == *expected => rev,
                    Ok(_) => return Err(Failure::ValueMismatch),
                    // The get changed nothing and nothing was published.
                    Err(Failure::Read(e)) => return Err(Failure::NotSent(e)),
                    Err(e) => return Err(e),
                };
                self.publish(&c, key, *new, Some(revision), sent).await?;
                Ok(op.argument())
            }
            // The nats target offers no transactional workload: a plan never gets here.
            ClientOp::Txn(_) => Err(Failure::NotSent(
                "the nats target runs no transactions".to_string(),
            )),
        }
    }
}

#[async_trait]
impl Client for NatsClient {
    async fn invoke(&self, key: &str, op: &ClientOp) -> Completion {
        let sent = AtomicBool::new(false);
        let outcome = tokio::time::timeout(self.timeout, self.run(key, op, &sent)).await;
        let mut c = match outcome {
            Ok(Ok(value)) => Completion {
                kind: CompletionKind::Ok,
                value,
                error: None,
                node: None,
            },
            Ok(Err(f)) => map_failure(op, &f),
            Err(_) if sent.load(Ordering::SeqCst) => map_failure(op, &Failure::TimedOut),
            Err(_) => map_failure(op, &Failure::NotSent("timeout before sending".to_string())),
        };
        c.node = Some(self.node.clone());
        c
    }

    async fn role(&self) -> Role {
        let work = async {
            let c = self.conn().await.ok()?;
            let mut stream = c.js.get_stream(format!("KV_{BUCKET}")).await.ok()?;
            let info = stream.info().await.ok()?;
            Some(info.cluster.as_ref().and_then(|cl| cl.leader.clone()))
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Some(leader)) => role_of_leader(&self.node, leader.as_deref()),
            _ => Role::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const CAS: ClientOp = ClientOp::Cas {
        expected: 5,
        new: 6,
    };

    #[test]
    fn node_command_lines_route_to_every_node() {
        let hosts = [
            "10.9.0.11".to_string(),
            "10.9.0.12".to_string(),
            "10.9.0.13".to_string(),
        ];
        let options = BTreeMap::new();
        let ctx = DeployContext {
            index: 2,
            hosts: &hosts,
            data_dir: "/data/",
            faults: &[],
            options: &options,
            request_timeout_ms: 1500,
            token: "unused-by-nats",
        };
        assert_eq!(
            Nats.node_args(&ctx).join(" "),
            "--server_name n3 --addr 0.0.0.0 --port 4222 --http_port 8222 \
             --jetstream --store_dir /data/nats \
             --cluster_name faultline --cluster nats://0.0.0.0:6222 \
             --cluster_advertise 10.9.0.13:6222 \
             --routes nats://10.9.0.11:6222,nats://10.9.0.12:6222,nats://10.9.0.13:6222 \
             --no_advertise"
        );
    }

    #[test]
    fn the_bucket_stream_follows_the_kv_conventions_and_the_read_mode() {
        let s = bucket_stream(5, ReadMode::Leader);
        assert_eq!(s.name, "KV_faultline");
        assert_eq!(s.subjects, vec!["$KV.faultline.>"]);
        assert_eq!(
            (s.max_messages_per_subject, s.num_replicas),
            (1, 5),
            "history 1, R5"
        );
        assert_eq!(s.storage, StorageType::File);
        assert_eq!(s.discard, DiscardPolicy::New);
        assert!(s.allow_rollup && s.deny_delete && !s.allow_direct);
        let d = bucket_stream(3, ReadMode::Direct);
        assert!(d.allow_direct && d.num_replicas == 3);
        assert_eq!(key_subject("k7"), "$KV.faultline.k7");
    }

    #[test]
    fn the_target_describes_nats() {
        let t = Nats;
        assert_eq!(t.name(), "nats");
        let Program::HostBinary { path, hint } = t.program() else {
            panic!("nats is a host binary");
        };
        assert_eq!(path, PathBuf::from("/usr/sbin/nats-server"));
        assert!(hint.contains("apt-get install nats-server"));
        let hosts = ["10.9.0.11".to_string()];
        let options = BTreeMap::new();
        let ctx = DeployContext {
            index: 0,
            hosts: &hosts,
            data_dir: "/data",
            faults: &[],
            options: &options,
            request_timeout_ms: 1500,
            token: "unused",
        };
        assert_eq!(
            (t.port(), t.ready_probe(&ctx)),
            (
                4222,
                ReadyProbe::Http {
                    port: 8222,
                    path: "/healthz".to_string()
                }
            )
        );
        assert!(t.offers_cas() && t.has_leader() && t.faults().is_empty());
        assert_eq!(t.min_nodes(), 3);
        let why = t.clock_faults().err().unwrap_or_default();
        assert!(why.contains("vDSO"), "{why}");
    }

    #[test]
    fn options_are_checked_and_give_the_read_mode() {
        let t = Nats;
        assert!(t.check_options(&BTreeMap::new(), 3).is_ok());
        assert!(t.check_options(&opts(&[("reads", "direct")]), 5).is_ok());
        assert_eq!(
            ReadMode::from_options(&BTreeMap::new()),
            Ok(ReadMode::Leader)
        );
        assert_eq!(
            ReadMode::from_options(&opts(&[("reads", "direct")])),
            Ok(ReadMode::Direct)
        );
        let bad = |o: BTreeMap<String, String>, n: usize| {
            t.check_options(&o, n)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let e = bad(opts(&[("reads", "stale")]), 3);
        assert!(e.contains("reads=stale") && e.contains("direct"), "{e}");
        let e = bad(opts(&[("r", "1")]), 3);
        assert!(e.contains("\"r\"") && e.contains("reads=leader"), "{e}");
        let e = bad(BTreeMap::new(), 7);
        assert!(e.contains("at most 5 replicas"), "{e}");
        let direct = opts(&[("reads", "direct")]);
        let stale = opts(&[("reads", "stale")]);
        let ctx = |options| ClientContext {
            node: "n1",
            addr: ([127, 0, 0, 1], 4222).into(),
            timeout: Duration::from_secs(1),
            options,
            log_dir: std::path::Path::new("/tmp"),
            nodes: 3,
        };
        assert!(t.client(&ctx(&direct)).is_ok());
        assert!(t.client(&ctx(&stale)).is_err());
    }

    #[test]
    fn claims_follow_the_read_mode() {
        let claims = |o: &BTreeMap<String, String>| {
            Nats.claims(&ClaimContext {
                nodes: 3,
                options: Some(o),
                clock_faults: false,
            })
        };
        assert_eq!(claims(&BTreeMap::new()).models, vec!["linearizable"]);
        let c = claims(&opts(&[("reads", "direct")]));
        assert_eq!(c.models, vec!["mr", "mw"]);
        assert!(c.reason.contains("read-your-writes"), "{}", c.reason);
        assert!(claims(&opts(&[("reads", "x")])).models.is_empty());
        assert_eq!(
            Nats.claims(&ClaimContext::default()).models,
            vec!["linearizable"]
        );
    }

    fn kind(op: &ClientOp, f: Failure) -> (CompletionKind, String) {
        let c = map_failure(op, &f);
        (c.kind, c.error.unwrap_or_default())
    }

    #[test]
    fn reads_fail_on_any_error() {
        for f in [
            Failure::NotConnected("refused".into()),
            Failure::Read("timed out".into()),
            Failure::TimedOut,
            Failure::ConnectionLost("closed".into()),
            Failure::Refused("jetstream error".into()),
            Failure::Setup("no meta leader".into()),
        ] {
            assert_eq!(kind(&ClientOp::Read, f).0, CompletionKind::Fail);
        }
        assert_eq!(
            kind(&ClientOp::Read, Failure::BadValue("xyz".into())).0,
            CompletionKind::Info
        );
    }

    #[test]
    fn writes_are_fail_only_when_never_stored() {
        for op in [ClientOp::Write(1), CAS] {
            for f in [
                Failure::NotConnected("refused".into()),
                Failure::NotSent("closed channel".into()),
                Failure::Setup("timed out".into()),
                Failure::NoResponders,
            ] {
                assert_eq!(kind(&op, f.clone()).0, CompletionKind::Fail, "{op:?} {f:?}");
            }
            for f in [
                Failure::TimedOut,
                Failure::ConnectionLost("broken pipe".into()),
                Failure::Refused("jetstream error code 503".into()),
            ] {
                assert_eq!(kind(&op, f.clone()).0, CompletionKind::Info, "{op:?} {f:?}");
            }
        }
        assert_eq!(
            kind(&CAS, Failure::ValueMismatch),
            (CompletionKind::Fail, "mismatch".to_string())
        );
        assert_eq!(
            kind(&CAS, Failure::WrongLastSequence),
            (CompletionKind::Fail, "mismatch".to_string())
        );
        assert_eq!(
            kind(&ClientOp::Write(1), Failure::TimedOut),
            (CompletionKind::Info, "timeout".to_string())
        );
    }

    #[test]
    fn publish_errors_of_the_crate_map_to_failures() {
        let e = |k| ack_failure(&PublishError::from(k));
        assert_eq!(
            e(PublishErrorKind::WrongLastSequence),
            Failure::WrongLastSequence
        );
        assert_eq!(e(PublishErrorKind::StreamNotFound), Failure::NoResponders);
        assert_eq!(e(PublishErrorKind::TimedOut), Failure::TimedOut);
        assert!(matches!(
            e(PublishErrorKind::BrokenPipe),
            Failure::ConnectionLost(_)
        ));
        assert!(matches!(e(PublishErrorKind::Other), Failure::Refused(_)));
        // Through to the completion: a cas refused for its revision is a mismatch.
        let c = map_failure(
            &CAS,
            &ack_failure(&PublishError::from(PublishErrorKind::WrongLastSequence)),
        );
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (CompletionKind::Fail, Some("mismatch"))
        );
    }

    #[test]
    fn values_and_roles_are_read_from_literal_answers() {
        assert_eq!(parse_value(b"42"), Some(42));
        assert_eq!(parse_value(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_value(b""), None);
        assert_eq!(parse_value(b"x1"), None);
        assert_eq!(role_of_leader("n2", Some("n2")), Role::Leader { term: 0 });
        assert_eq!(role_of_leader("n2", Some("n1")), Role::Follower);
        assert_eq!(role_of_leader("n2", None), Role::Unknown);
    }

    #[tokio::test]
    async fn a_closed_port_is_fail() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed = l.local_addr().expect("addr");
        drop(l);
        let c = NatsClient::new(
            "n1",
            closed,
            Duration::from_millis(500),
            ReadMode::Leader,
            3,
        );
        for op in [ClientOp::Write(1), CAS, ClientOp::Read] {
            let done = c.invoke("k0", &op).await;
            assert_eq!(
                (done.kind, done.node.as_deref()),
                (CompletionKind::Fail, Some("n1")),
                "{op:?} {done:?}"
            );
        }
        assert_eq!(c.role().await, Role::Unknown);
    }
}
