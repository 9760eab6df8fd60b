//! etcd as a third-party target: Debian's `etcd-server` (`/usr/bin/etcd`, etcd 3.4),
//! one member per node, statically bootstrapped, driven through the v3 JSON gateway
//! (`POST /v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`) on the client port 2379.
//!
//! # Deployment
//!
//! Member `n{i}` listens on `0.0.0.0:2379` (clients) and `0.0.0.0:2380` (peers), advertises
//! its node IP, and bootstraps with the whole `--initial-cluster` list (`--initial-cluster-
//! state new`, token `faultline`). Its data dir is `/data/etcd`, on the node's bind-mounted
//! data folder: a member killed and started again finds its WAL there, ignores the
//! bootstrap flags and rejoins as itself. Heartbeat 100 ms and election timeout 1 s keep
//! fail-overs short. The readiness probe is `GET /health`, which etcd 3.4 answers `200
//! {"health":"true"}` only with a leader and a working quorum read, `503
//! {"health":"false"}` otherwise (and not at all before the member has joined its
//! cluster). At least 3 members (or 5) make sense: with 1 a partition has nothing to cut.
//!
//! # Option `reads`
//!
//! - `reads=linearizable` (default): ranges are linearizable; etcd serves them after a
//!   ReadIndex round: the serving member learns the leader's commit index, which the
//!   leader confirms with a quorum heartbeat, and applies up to it before reading.
//! - `reads=serializable`: ranges carry `"serializable": true`; etcd serves them from the
//!   member's own applied state, without asking anyone: possibly stale.
//!
//! Writes (`put`) and compare-and-set (`txn`: compare the value, put on success) always go
//! through the Raft log.
//!
//! # What it claims, and why
//!
//! - Default reads: **linearizable**. etcd documents strict serializability for its KV API
//!   (linearizable puts, txns and default ranges): a put or txn is acknowledged once it is
//!   committed by a quorum and applied, a default range goes through ReadIndex. Nothing
//!   rests on the wall clock (leases, which do, are not used).
//! - Serializable reads: **sequential**, nothing stronger. etcd documents these reads as
//!   served locally and possibly stale, so not linearizable. What still holds: each
//!   member applies the one committed log in order, so its state only moves forward (a
//!   restarted member answers clients only after it has re-joined and applied its own
//!   publish entry, which comes after everything it had applied before); a put or txn is
//!   answered by the member it was sent to only after that member applied it; and a
//!   faultline process talks to one node all its life (`node_of(process)`; after an
//!   `info` the slot continues as a new process). Then every process's operations sit at
//!   non-decreasing log positions in its own order (a read at its member's applied index,
//!   a write at its log index, which is beyond everything the process read before), and
//!   ordering all operations by log position explains every read: sequential consistency
//!   (and so CCv, CM, CC, PRAM and the session guarantees), with stale reads across
//!   processes allowed. etcd's own 3.2 and 3.3 API guarantees state sequential
//!   consistency for all API calls. Not linearizable: a member cut off from the majority
//!   keeps serving its old state.
//!
//! # Clock faults
//!
//! They do not reach etcd ([`Target::clock_faults`] says why): Go reads the wall clock
//! and the monotonic clock through the vDSO, not through libc, so libfaketime's
//! `LD_PRELOAD` is loaded but never consulted. Measured here on etcd 3.4.23 with
//! `FAKETIME=-2d`: libfaketime was mapped into the process, and etcd's log timestamps
//! (Go's `time.Now`) showed the real time, while `date` under the same variables was two
//! days behind.
//!
//! # Answers
//!
//! See [`map_answer`] and [`map_grpc_error`]: only what proves an operation did not take
//! effect is `fail` (a txn whose compare failed: `"mismatch"`; a refusal etcd returns
//! before proposing; any error answer to a range, which changes nothing; a connection
//! refused before sending). Timeouts and errors after the proposal are `info`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::client::{complete, http_client};
use crate::runtime::ReadyProbe;
use crate::target::{
    ClaimContext, Claims, Client, ClientContext, ClientOp, Completion, CompletionKind,
    DeployContext, Mop, Program, Role, SwitchableFault, Target, TargetError, TxnSupport,
};

/// etcd's client port (the v3 gRPC API and its JSON gateway).
pub const ETCD_CLIENT_PORT: u16 = 2379;

/// etcd's peer port (Raft between members).
pub const ETCD_PEER_PORT: u16 = 2380;

/// Where Debian's `etcd-server` installs the program.
pub const ETCD_SYSTEM_BINARY: &str = "/usr/bin/etcd";

/// How to get it.
pub const ETCD_INSTALL_HINT: &str =
    "install Debian's etcd-server: sudo apt-get install etcd-server";

/// Why the nemesis's clock faults cannot reach etcd (measured, see the module docs).
pub const ETCD_CLOCK_REASON: &str = "etcd is a Go program: Go reads the clock through the vDSO, not through libc, so libfaketime's LD_PRELOAD never sees a call (measured with etcd 3.4.23 and FAKETIME=-2d: libfaketime was loaded, etcd still logged the real time)";

/// How a range is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// Through ReadIndex (etcd's default): linearizable.
    #[default]
    Linearizable,
    /// From the member's own applied state: possibly stale.
    Serializable,
}

impl ReadMode {
    /// The option's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Linearizable => "linearizable",
            ReadMode::Serializable => "serializable",
        }
    }

    /// The read mode the target options ask for (`reads`); `Err` says what is wrong.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<ReadMode, String> {
        let choices = ["linearizable", "serializable"];
        match crate::target::choice_option("etcd", options, "reads", &choices)? {
            "serializable" => Ok(ReadMode::Serializable),
            _ => Ok(ReadMode::Linearizable),
        }
    }
}

/// The etcd target. Its clients read in the mode the plan's options ask for (`reads`), and
/// its claims follow the same options.
#[derive(Debug, Default, Clone, Copy)]
pub struct Etcd;

impl Target for Etcd {
    fn name(&self) -> &str {
        "etcd"
    }
    fn description(&self) -> &str {
        "etcd 3.4 from Debian's etcd-server (/usr/bin/etcd), through its v3 JSON gateway"
    }
    fn program(&self) -> Program {
        Program::HostBinary {
            path: PathBuf::from(ETCD_SYSTEM_BINARY),
            hint: ETCD_INSTALL_HINT.to_string(),
        }
    }
    fn clock_faults(&self) -> Result<(), String> {
        Err(ETCD_CLOCK_REASON.to_string())
    }
    fn has_leader(&self) -> bool {
        true
    }
    fn port(&self) -> u16 {
        ETCD_CLIENT_PORT
    }
    fn ready_probe(&self, _ctx: &DeployContext<'_>) -> ReadyProbe {
        ReadyProbe::health(ETCD_CLIENT_PORT)
    }
    fn node_args(&self, ctx: &DeployContext<'_>) -> Vec<String> {
        let ip = ctx.host();
        let cluster: Vec<String> = ctx
            .hosts
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("n{}=http://{ip}:{ETCD_PEER_PORT}", i + 1))
            .collect();
        let data_dir = format!("{}/etcd", ctx.data_dir.trim_end_matches('/'));
        [
            ("--name", format!("n{}", ctx.index + 1)),
            ("--data-dir", data_dir),
            (
                "--listen-client-urls",
                format!("http://0.0.0.0:{ETCD_CLIENT_PORT}"),
            ),
            (
                "--advertise-client-urls",
                format!("http://{ip}:{ETCD_CLIENT_PORT}"),
            ),
            (
                "--listen-peer-urls",
                format!("http://0.0.0.0:{ETCD_PEER_PORT}"),
            ),
            (
                "--initial-advertise-peer-urls",
                format!("http://{ip}:{ETCD_PEER_PORT}"),
            ),
            ("--initial-cluster", cluster.join(",")),
            ("--initial-cluster-state", "new".to_string()),
            ("--initial-cluster-token", "faultline".to_string()),
            ("--heartbeat-interval", "100".to_string()),
            ("--election-timeout", "1000".to_string()),
            ("--logger", "zap".to_string()),
            ("--log-outputs", "stderr".to_string()),
            ("--log-level", "info".to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
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
        _nodes: usize,
    ) -> Result<(), TargetError> {
        ReadMode::from_options(options).map_err(|message| TargetError::BadOption {
            target: self.name().to_string(),
            message,
        })?;
        Ok(())
    }
    fn claims(&self, ctx: &ClaimContext<'_>) -> Claims {
        let mode = ctx
            .options
            .map(ReadMode::from_options)
            .unwrap_or(Ok(ReadMode::Linearizable));
        match mode {
            Ok(ReadMode::Linearizable) => Claims {
                models: vec!["linearizable".to_string()],
                reason: "etcd documents strict serializability for its KV API: every put and txn is committed through the Raft log by a quorum (and fsynced) before it is acknowledged, and a default (linearizable) range is served after a ReadIndex round in which the leader confirms its commit index with a quorum; nothing depends on the wall clock".to_string(),
            },
            Ok(ReadMode::Serializable) => Claims {
                models: vec!["sequential".to_string()],
                reason: "reads=serializable: etcd serves a range from the member's own applied state, possibly stale (documented), so not linearizable: a member cut off from the majority keeps answering its old state. Sequential consistency still holds because each member applies the one committed log in order and only moves forward (also across a restart), a put or txn is answered only after the member it was sent to applied it, and a faultline process talks to one node all its life: ordering operations by log position respects every process's order (etcd 3.2/3.3 documented sequential consistency for all API calls)".to_string(),
            },
            Err(e) => Claims {
                models: Vec::new(),
                reason: format!("invalid options: {e}"),
            },
        }
    }
    fn txn_support(&self, _ctx: &ClaimContext<'_>) -> Option<TxnSupport> {
        Some(TxnSupport {
            models: vec!["strict-serializable".to_string()],
            reason: "a transaction reads every key it touches in one linearizable read-only txn (one revision), then commits its writes in one txn whose compares require every touched key's mod_revision to be unchanged: it takes effect at the commit's revision with what it read, or not at all (etcd documents strict serializability for its KV API; Jepsen's 2020 analysis of etcd 3.4.3 found its key-value transactions strict serializable)".to_string(),
        })
    }
    fn client(&self, ctx: &ClientContext<'_>) -> Result<Arc<dyn Client>, TargetError> {
        let reads =
            ReadMode::from_options(ctx.options).map_err(|message| TargetError::BadOption {
                target: self.name().to_string(),
                message,
            })?;
        Ok(Arc::new(EtcdClient::new(
            ctx.node,
            ctx.addr,
            ctx.timeout,
            reads,
        )?))
    }
}

/// A client of one etcd member, over its v3 JSON gateway.
#[derive(Debug, Clone)]
pub struct EtcdClient {
    http: reqwest::Client,
    base: String,
    node: String,
    reads: ReadMode,
}

impl EtcdClient {
    /// A client for member `node` at `addr`, reading in `reads`; every request is bounded
    /// by `timeout`, opening a connection by at most half of it.
    pub fn new(
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
        reads: ReadMode,
    ) -> Result<Self, TargetError> {
        Ok(EtcdClient {
            http: http_client(node, timeout)?,
            base: format!("http://{addr}"),
            node: node.to_string(),
            reads,
        })
    }
}

/// The gateway path and JSON body of `op` on `key`.
pub fn request_body(key: &str, op: &ClientOp, reads: ReadMode) -> (&'static str, Value) {
    let k = b64_encode(key.as_bytes());
    let v = |n: u64| b64_encode(n.to_string().as_bytes());
    match op {
        ClientOp::Read => {
            let mut body = json!({ "key": k });
            if reads == ReadMode::Serializable {
                body["serializable"] = json!(true);
            }
            ("/v3/kv/range", body)
        }
        ClientOp::Write(n) => ("/v3/kv/put", json!({ "key": k, "value": v(*n) })),
        ClientOp::Cas { expected, new } => (
            "/v3/kv/txn",
            json!({
                "compare": [{
                    "key": k,
                    "target": "VALUE",
                    "result": "EQUAL",
                    "value": v(*expected),
                }],
                "success": [{ "request_put": { "key": k, "value": v(*new) } }],
            }),
        ),
        // Carried out in two requests by `EtcdClient::transaction`: this is its first.
        ClientOp::Txn(mops) => (
            "/v3/kv/txn",
            crate::etcd_txn::read_body(&crate::etcd_txn::touched(mops)),
        ),
    }
}

fn ok(value: Value) -> Completion {
    Completion {
        kind: CompletionKind::Ok,
        value,
        error: None,
        node: None,
    }
}

/// Maps a gateway answer (HTTP status and body) to a completion of `op`.
///
/// - An error document (`{"error": ..., "code": ...}`, gRPC's status in JSON): see
///   [`map_grpc_error`].
/// - A 200 answer with a `header`: a range's value is the first kv's value (base64 of a
///   decimal) or `null` without kvs (never written); a put is ok; a txn is ok when
///   `succeeded` is true and `fail` with `mismatch` when it is false or absent (the gateway
///   leaves false out): the compare was evaluated in the log and the put not applied.
/// - Anything else (not JSON, no header, a value that is not a number): info.
pub fn map_answer(status: u16, body: &[u8], op: &ClientOp) -> Completion {
    let doc: Value = match serde_json::from_slice(body) {
        Ok(d) => d,
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            return Completion::info(format!("unreadable answer (HTTP {status}): {text}"));
        }
    };
    if let Some(message) = doc
        .get("error")
        .or_else(|| doc.get("message"))
        .and_then(Value::as_str)
    {
        return map_grpc_error(op, doc.get("code").and_then(Value::as_i64), message);
    }
    if status != 200 || !doc.get("header").is_some_and(Value::is_object) {
        return Completion::info(format!("unexpected answer (HTTP {status})"));
    }
    match op {
        ClientOp::Read => {
            let first = doc
                .get("kvs")
                .and_then(Value::as_array)
                .and_then(|kvs| kvs.first());
            let Some(kv) = first else {
                return ok(Value::Null);
            };
            match kv.get("value").and_then(Value::as_str).and_then(decode_u64) {
                Some(n) => ok(Value::from(n)),
                None => Completion::info("ok range with a value that is not a number"),
            }
        }
        ClientOp::Write(_) => ok(op.argument()),
        ClientOp::Cas { .. } => match doc.get("succeeded") {
            Some(Value::Bool(true)) => ok(op.argument()),
            None | Some(Value::Bool(false)) => Completion::fail("mismatch"),
            Some(other) => Completion::info(format!("unexpected succeeded: {other}")),
        },
        ClientOp::Txn(_) => Completion::info("a transaction is answered in two steps"),
    }
}

/// Errors etcd returns before it proposes anything: the operation definitely did not take
/// effect.
const REFUSED_BEFORE_PROPOSING: &[&str] = &[
    // The gRPC interceptor or the leader wait, before the request is handled.
    "etcdserver: no leader",
    // processInternalRaftRequestOnce, when apply lags commit by more than 5000 entries.
    "etcdserver: too many requests",
    // processInternalRaftRequestOnce, before proposing.
    "etcdserver: request is too large",
    // Raft refused to append the proposal (no leader known, leadership transfer).
    "raft proposal dropped",
];

/// Maps a gRPC error (`code`, `message`) the gateway returned for `op`.
///
/// - A range changes nothing: every error answer to it is `fail`.
/// - `InvalidArgument` (code 3, a request refused while it is checked) and the refusals
///   etcd returns before proposing (no leader, too many requests, request too large,
///   proposal dropped by Raft): `fail`.
/// - Everything else for a put or txn is `info`: "request timed out" (with or without
///   "possibly due to previous leader failure / connection lost"), "leader changed",
///   "server stopped", "context deadline exceeded", a closing transport, unknown errors:
///   the proposal may be in the log and be applied later.
pub fn map_grpc_error(op: &ClientOp, code: Option<i64>, message: &str) -> Completion {
    let definite = matches!(op, ClientOp::Read)
        || code == Some(3)
        || REFUSED_BEFORE_PROPOSING.contains(&message);
    if definite {
        Completion::fail(message)
    } else {
        Completion::info(message)
    }
}

/// The role an etcd member states in its `/v3/maintenance/status` answer: it leads when
/// `leader` equals its `header.member_id` (uint64s, which the gateway writes as strings),
/// in `raftTerm`; no or another leader: follower; an unreadable answer: unknown.
pub fn role_of_status(status: &Value) -> Role {
    let id = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    let Some(me) = id(status.get("header").and_then(|h| h.get("member_id"))) else {
        return Role::Unknown;
    };
    match id(status.get("leader")) {
        Some(leader) if leader == me && leader != 0 => Role::Leader {
            term: id(status.get("raftTerm"))
                .or_else(|| id(status.get("header").and_then(|h| h.get("raft_term"))))
                .unwrap_or(0),
        },
        _ => Role::Follower,
    }
}

impl EtcdClient {
    /// A transaction, guarded by revisions (see [`crate::etcd_txn`]).
    async fn transaction(&self, op: &ClientOp, mops: &[Mop]) -> Completion {
        use crate::etcd_txn as t;
        let keys = t::touched(mops);
        let url = format!("{}/v3/kv/txn", self.base);
        let sent = self.http.post(&url).json(&t::read_body(&keys)).send().await;
        // The read step changes nothing: whatever happens there, the transaction did not.
        let snapshot = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(body) => t::parse_read_answer(status, &body, &keys),
                    Err(e) => Err(Completion::fail(format!("read step: {e}"))),
                }
            }
            Err(e) => Err(Completion::fail(format!("read step: {e}"))),
        };
        let snapshot = match snapshot {
            Ok(s) => s,
            Err(c) => return c,
        };
        let planned = match t::plan(mops, &keys, &snapshot) {
            Ok(p) => p,
            Err(c) => return c,
        };
        if planned.writes.is_empty() {
            return t::read_only(mops, &keys, &snapshot);
        }
        let body = t::commit_body(&keys, &snapshot, &planned.writes);
        let sent = self.http.post(&url).json(&body).send().await;
        let completed = planned.completed;
        complete(sent, op, |status, body, op| {
            t::map_commit_answer(status, body, op, &completed)
        })
        .await
    }
}

#[async_trait]
impl Client for EtcdClient {
    async fn invoke(&self, key: &str, op: &ClientOp) -> Completion {
        if let ClientOp::Txn(mops) = op {
            let mut c = self.transaction(op, mops).await;
            c.node = Some(self.node.clone());
            return c;
        }
        let (path, body) = request_body(key, op, self.reads);
        let sent = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await;
        let mut c = complete(sent, op, map_answer).await;
        // The member this client is bound to served it (the gateway talks to its own
        // member; the member forwards proposals to the leader itself).
        c.node = Some(self.node.clone());
        c
    }

    async fn role(&self) -> Role {
        let sent = self
            .http
            .post(format!("{}/v3/maintenance/status", self.base))
            .json(&json!({}))
            .send()
            .await;
        let Ok(resp) = sent else {
            return Role::Unknown;
        };
        match resp.json::<Value>().await {
            Ok(v) => role_of_status(&v),
            Err(_) => Role::Unknown,
        }
    }
}

/// Standard base64 with padding (the gateway's encoding of `bytes` fields).
pub fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64 (padding optional); `None` on any other character.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// A value as the history writes it: base64 of a decimal `u64`.
fn decode_u64(b64: &str) -> Option<u64> {
    let bytes = b64_decode(b64)?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
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
    fn base64_round_trips_and_matches_the_gateway() {
        assert_eq!(b64_encode(b"k0"), "azA=");
        assert_eq!(b64_encode(b"5"), "NQ==");
        assert_eq!(b64_encode(b"123"), "MTIz");
        assert_eq!(b64_encode(b""), "");
        for s in ["", "r", "k0", "k10", "18446744073709551615", "abcd"] {
            assert_eq!(
                b64_decode(&b64_encode(s.as_bytes())).as_deref(),
                Some(s.as_bytes())
            );
        }
        assert_eq!(b64_decode("NQ"), Some(b"5".to_vec()));
        assert_eq!(b64_decode("N!=="), None);
        assert_eq!(b64_decode("NQ==A"), None);
    }

    #[test]
    fn node_command_lines_bootstrap_the_whole_cluster() {
        let hosts = [
            "10.9.0.11".to_string(),
            "10.9.0.12".to_string(),
            "10.9.0.13".to_string(),
        ];
        let options = BTreeMap::new();
        let ctx = DeployContext {
            index: 1,
            hosts: &hosts,
            data_dir: "/data",
            faults: &[],
            options: &options,
            request_timeout_ms: 1500,
            token: "unused-by-etcd",
        };
        assert_eq!(
            Etcd.node_args(&ctx).join(" "),
            "--name n2 --data-dir /data/etcd \
             --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://10.9.0.12:2379 \
             --listen-peer-urls http://0.0.0.0:2380 --initial-advertise-peer-urls http://10.9.0.12:2380 \
             --initial-cluster n1=http://10.9.0.11:2380,n2=http://10.9.0.12:2380,n3=http://10.9.0.13:2380 \
             --initial-cluster-state new --initial-cluster-token faultline \
             --heartbeat-interval 100 --election-timeout 1000 \
             --logger zap --log-outputs stderr --log-level info"
        );
    }

    #[test]
    fn the_target_describes_etcd() {
        let t = Etcd;
        assert_eq!(t.name(), "etcd");
        let Program::HostBinary { path, hint } = t.program() else {
            panic!("etcd is a host binary");
        };
        assert_eq!(path, PathBuf::from("/usr/bin/etcd"));
        assert!(hint.contains("apt-get install etcd-server"));
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
            (2379, ReadyProbe::health(2379))
        );
        assert!(t.offers_cas() && t.has_leader() && t.faults().is_empty());
        let why = t.clock_faults().err().unwrap_or_default();
        assert!(why.contains("vDSO"), "{why}");
    }

    #[test]
    fn options_are_checked_and_give_the_read_mode() {
        let t = Etcd;
        assert!(t.check_options(&BTreeMap::new(), 3).is_ok());
        assert_eq!(
            ReadMode::from_options(&BTreeMap::new()),
            Ok(ReadMode::Linearizable)
        );
        assert!(t
            .check_options(&opts(&[("reads", "linearizable")]), 3)
            .is_ok());
        assert_eq!(
            ReadMode::from_options(&opts(&[("reads", "serializable")])),
            Ok(ReadMode::Serializable)
        );
        let bad = |o: BTreeMap<String, String>| {
            t.check_options(&o, 3)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let e = bad(opts(&[("reads", "stale")]));
        assert!(
            e.contains("reads=stale") && e.contains("serializable"),
            "{e}"
        );
        let e = bad(opts(&[("r", "1")]));
        assert!(e.contains("\"r\"") && e.contains("reads="), "{e}");
        // A client is refused options the target would not accept.
        let serializable = opts(&[("reads", "serializable")]);
        let stale = opts(&[("reads", "stale")]);
        let ctx = |options| ClientContext {
            node: "n1",
            addr: ([127, 0, 0, 1], 2379).into(),
            timeout: Duration::from_secs(1),
            options,
            log_dir: std::path::Path::new("/tmp"),
            nodes: 3,
        };
        assert!(t.client(&ctx(&serializable)).is_ok());
        assert!(t.client(&ctx(&stale)).is_err());
    }

    #[test]
    fn claims_follow_the_read_mode() {
        let t = Etcd;
        let claims = |o: &BTreeMap<String, String>| {
            t.claims(&ClaimContext {
                nodes: 5,
                options: Some(o),
                clock_faults: false,
            })
        };
        assert_eq!(claims(&BTreeMap::new()).models, vec!["linearizable"]);
        assert_eq!(
            claims(&opts(&[("reads", "linearizable")])).models,
            vec!["linearizable"]
        );
        let c = claims(&opts(&[("reads", "serializable")]));
        assert_eq!(c.models, vec!["sequential"]);
        assert!(c.reason.contains("stale"), "{}", c.reason);
        assert_eq!(
            t.claims(&ClaimContext::default()).models,
            vec!["linearizable"]
        );
    }

    #[test]
    fn requests_encode_keys_values_and_the_read_mode() {
        let (path, body) = request_body("k0", &ClientOp::Read, ReadMode::Linearizable);
        assert_eq!((path, body), ("/v3/kv/range", json!({"key": "azA="})));
        let (_, body) = request_body("k0", &ClientOp::Read, ReadMode::Serializable);
        assert_eq!(body, json!({"key": "azA=", "serializable": true}));
        let (path, body) = request_body("k0", &ClientOp::Write(5), ReadMode::Linearizable);
        assert_eq!(
            (path, body),
            ("/v3/kv/put", json!({"key": "azA=", "value": "NQ=="}))
        );
        let (path, body) = request_body("k0", &CAS, ReadMode::Serializable);
        assert_eq!(path, "/v3/kv/txn");
        assert_eq!(
            body,
            json!({
                "compare": [{"key": "azA=", "target": "VALUE", "result": "EQUAL", "value": "NQ=="}],
                "success": [{"request_put": {"key": "azA=", "value": "Ng=="}}],
            })
        );
    }

    const HEADER: &str = r#""header":{"cluster_id":"9911148161193216146","member_id":"10228260893687292357","revision":"3","raft_term":"2"}"#;

    fn answer(rest: &str) -> Vec<u8> {
        if rest.is_empty() {
            format!("{{{HEADER}}}").into_bytes()
        } else {
            format!("{{{HEADER},{rest}}}").into_bytes()
        }
    }

    #[test]
    fn ranges_read_the_value_and_no_kvs_is_never_written() {
        let body = answer(
            r#""kvs":[{"key":"azA=","create_revision":"2","mod_revision":"2","version":"1","value":"NQ=="}],"count":"1""#,
        );
        let c = map_answer(200, &body, &ClientOp::Read);
        assert_eq!((c.kind, c.value), (CompletionKind::Ok, json!(5)));
        let c = map_answer(200, &answer(""), &ClientOp::Read);
        assert_eq!((c.kind, c.value), (CompletionKind::Ok, Value::Null));
        // An empty value (proto3 leaves it out) is nothing faultline wrote: not trusted.
        let body = answer(r#""kvs":[{"key":"azA=","mod_revision":"2"}],"count":"1""#);
        assert_eq!(
            map_answer(200, &body, &ClientOp::Read).kind,
            CompletionKind::Info
        );
        let body = answer(r#""kvs":[{"key":"azA=","value":"eHl6"}],"count":"1""#);
        assert_eq!(
            map_answer(200, &body, &ClientOp::Read).kind,
            CompletionKind::Info,
            "xyz is not a number"
        );
    }

    #[test]
    fn puts_and_successful_txns_record_their_argument() {
        let c = map_answer(200, &answer(""), &ClientOp::Write(5));
        assert_eq!((c.kind, c.value), (CompletionKind::Ok, json!(5)));
        let body = answer(
            r#""succeeded":true,"responses":[{"response_put":{"header":{"revision":"3"}}}]"#,
        );
        let c = map_answer(200, &body, &CAS);
        assert_eq!((c.kind, c.value), (CompletionKind::Ok, json!([5, 6])));
    }

    #[test]
    fn a_txn_whose_compare_failed_is_a_mismatch() {
        // The gateway leaves `"succeeded": false` out.
        let c = map_answer(200, &answer(""), &CAS);
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (CompletionKind::Fail, Some("mismatch"))
        );
        let c = map_answer(200, &answer(r#""succeeded":false"#), &CAS);
        assert_eq!(c.kind, CompletionKind::Fail);
        assert_eq!(
            map_answer(200, &answer(r#""succeeded":"maybe""#), &CAS).kind,
            CompletionKind::Info
        );
    }

    #[test]
    fn errors_after_proposing_are_info_and_refusals_before_are_fail() {
        let timed_out = br#"{"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14}"#;
        let deadline = br#"{"error":"context deadline exceeded","message":"context deadline exceeded","code":2}"#;
        let leader_fail = br#"{"error":"etcdserver: request timed out, possibly due to previous leader failure","code":14}"#;
        let stopped = br#"{"error":"etcdserver: server stopped","code":14}"#;
        for body in [&timed_out[..], deadline, leader_fail, stopped] {
            for op in [ClientOp::Write(1), CAS] {
                let c = map_answer(503, body, &op);
                assert_eq!(c.kind, CompletionKind::Info, "{op:?} {c:?}");
                assert!(c.error.is_some_and(|e| !e.is_empty()));
            }
            // A range has no effect: an error answer to it is a definite fail.
            let c = map_answer(503, body, &ClientOp::Read);
            assert_eq!(c.kind, CompletionKind::Fail, "{c:?}");
        }
        let no_leader =
            br#"{"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14}"#;
        let busy = br#"{"error":"etcdserver: too many requests","code":14}"#;
        let dropped = br#"{"error":"raft proposal dropped","code":2}"#;
        let invalid = br#"{"error":"invalid character 'b' looking for beginning of object key string","message":"invalid character 'b' looking for beginning of object key string","code":3}"#;
        for body in [&no_leader[..], busy, dropped, invalid] {
            let c = map_answer(503, body, &CAS);
            assert_eq!(c.kind, CompletionKind::Fail, "{c:?}");
        }
        let c = map_answer(503, no_leader, &ClientOp::Write(1));
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (CompletionKind::Fail, Some("etcdserver: no leader"))
        );
        let changed = br#"{"error":"etcdserver: leader changed","code":14}"#;
        assert_eq!(
            map_answer(503, changed, &ClientOp::Write(1)).kind,
            CompletionKind::Info
        );
        assert_eq!(
            map_answer(503, changed, &ClientOp::Read).kind,
            CompletionKind::Fail
        );
    }

    #[test]
    fn garbage_and_unexpected_answers_are_info() {
        for op in [ClientOp::Read, ClientOp::Write(1), CAS] {
            assert_eq!(
                map_answer(502, b"Bad Gateway", &op).kind,
                CompletionKind::Info
            );
            assert_eq!(
                map_answer(404, b"404 page not found\n", &op).kind,
                CompletionKind::Info
            );
            assert_eq!(
                map_answer(500, &answer(""), &op).kind,
                CompletionKind::Info,
                "a header with HTTP 500"
            );
            assert_eq!(
                map_answer(200, b"{}", &op).kind,
                CompletionKind::Info,
                "no header"
            );
        }
    }

    #[test]
    fn the_leader_is_the_member_named_in_its_own_status() {
        let leader: Value = serde_json::from_str(
            r#"{"header":{"cluster_id":"9911148161193216146","member_id":"8914861914811135175","revision":"1","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"8914861914811135175","raftIndex":"11","raftTerm":"2","raftAppliedIndex":"11","dbSizeInUse":"16384"}"#,
        )
        .unwrap_or_default();
        assert_eq!(role_of_status(&leader), Role::Leader { term: 2 });
        let follower: Value = serde_json::from_str(
            r#"{"header":{"cluster_id":"9911148161193216146","member_id":"10228260893687292357","revision":"1","raft_term":"2"},"version":"3.4.23","leader":"8914861914811135175","raftTerm":"2"}"#,
        )
        .unwrap_or_default();
        assert_eq!(role_of_status(&follower), Role::Follower);
        let no_leader: Value = serde_json::from_str(
            r#"{"header":{"member_id":"10228260893687292357","raft_term":"2"},"raftIndex":"15","raftTerm":"2","errors":["etcdserver: no leader"]}"#,
        )
        .unwrap_or_default();
        assert_eq!(role_of_status(&no_leader), Role::Follower);
        assert_eq!(
            role_of_status(&json!({"error": "unavailable"})),
            Role::Unknown
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_fail_and_a_silent_member_is_info() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed = l.local_addr().expect("addr");
        drop(l);
        let c = EtcdClient::new(
            "n1",
            closed,
            Duration::from_millis(500),
            ReadMode::Linearizable,
        )
        .expect("client");
        let done = c.invoke("k0", &ClientOp::Write(1)).await;
        assert_eq!(
            (done.kind, done.node.as_deref()),
            (CompletionKind::Fail, Some("n1"))
        );
        assert_eq!(c.role().await, Role::Unknown);

        // A member that accepts and never answers (paused, or not yet joined).
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = silent.local_addr().expect("addr");
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let c = EtcdClient::new(
            "n2",
            addr,
            Duration::from_millis(300),
            ReadMode::Serializable,
        )
        .expect("client");
        let done = c.invoke("k0", &CAS).await;
        assert_eq!(
            (done.kind, done.error.as_deref(), done.node.as_deref()),
            (CompletionKind::Info, Some("timeout"), Some("n2"))
        );
        keep.abort();
    }
}
