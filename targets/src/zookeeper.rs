//! Apache ZooKeeper as a third-party target: Debian's `zookeeper` (3.8.x) on Debian's
//! Java runtime, one server per node in an ensemble, driven with the `zookeeper-client`
//! crate, one ZooKeeper session per faultline process.
//!
//! # Deployment
//!
//! ZooKeeper is a Java program, so the node image carries what it runs on
//! ([`Program::HostTree`]): the Java runtime (`bin`, `conf` and `lib` of the JVM that
//! `/usr/lib/jvm/default-java` points to) and `/usr/share/java`, where Debian keeps
//! `zookeeper.jar` and every jar its manifest's `Class-Path` names. Each node runs
//! `java … org.apache.zookeeper.server.quorum.QuorumPeerMain /data/zoo.cfg` with a small
//! heap, logging through `slf4j-simple` to standard error (the node's log).
//!
//! Its configuration is written into the node's data folder before it first starts
//! ([`Target::node_files`]): `zoo.cfg` (tick 500 ms, `initLimit` 20 ticks, `syncLimit` 4
//! ticks, data in `/data/zk`, client port 2181, `server.N=<ip>:2888:3888` for every
//! node, quorum ports on all interfaces, the `srvr` four-letter word allowed, the admin
//! server off, local sessions: a new session is created by its server alone, not by a
//! quorum commit, as every process's session stays on one server) and `zk/myid`. The transaction log is fsynced before a write is
//! acknowledged (ZooKeeper's default, `forceSync=yes`).
//!
//! Readiness is the four-letter word `srvr` on the client port: its answer carries
//! `Mode: leader` or `Mode: follower` only once the server has joined a quorum and
//! serves ("This ZooKeeper instance is not currently serving requests" before).
//!
//! # Option `reads`
//!
//! - `reads=plain` (default): a read is `getData`, answered by the server the session is
//!   connected to from its own state, which may lag the leader.
//! - `reads=sync`: a read is `sync` then `getData`: the server first catches up with the
//!   leader as of the sync.
//!
//! A write is `setData` (or `create` when the key's znode does not exist yet); a cas is a
//! read as above (with `reads=sync`, after a sync) and, when the value is the expected
//! one, a `setData` conditioned on the version read, which the leader refuses
//! (`BadVersion`) if the znode changed in between. A cas whose read was stale and saw
//! another value fails without writing: with plain reads that is what sequential
//! consistency allows.
//!
//! # What it claims, and why
//!
//! ZooKeeper's documentation (Programmer's Guide, "ZooKeeper consistency guarantees";
//! Overview, "Guarantees") promises sequential consistency (updates from a client are
//! applied in the order sent), atomicity, a single system image (a client sees the same
//! view whichever server it connects to, never an older one), and that writes are
//! linearizable while reads are served locally and may be stale; a client that needs an
//! up-to-date read calls `sync` first. So:
//!
//! - `reads=plain` claims **sequential** consistency (and with it every session
//!   guarantee: ryw, mr, mw, wfr), not linearizability: a read may return a value
//!   that a later-started write on another server already replaced.
//! - `reads=sync` claims the same. `sync` makes the next read reflect every write
//!   committed before the sync, but it is not a quorum operation: a deposed leader that
//!   does not yet know it can answer it (ZOOKEEPER-1675, ZOOKEEPER-2136), so ZooKeeper
//!   does not promise linearizable reads even then. Linearizability is checked and
//!   reported as an unclaimed model; `--check linearizable` makes it decide the exit code.
//!
//! # Sessions and processes
//!
//! Each faultline process gets its own ZooKeeper session, opened on its first
//! operation against its node only (the client is given that one server, so it never
//! moves to another). ZooKeeper's FIFO order and read-your-writes are guarantees per
//! session, which is what the session checkers take a process to be. When a session
//! dies (expired, closed), the operation in flight is `info`, so the worker continues as
//! a fresh process, with a fresh session.
//!
//! # Clock faults
//!
//! The JVM reads the wall clock through glibc (`clock_gettime`), which libfaketime
//! intercepts, so clock faults are allowed; ZooKeeper's timeouts use the monotonic clock
//! (`System.nanoTime`), which the harness's libfaketime settings leave alone.
//!
//! # Answers
//!
//! See [`map_error`]: a read changes nothing, so an error on it is `fail`; a write or
//! cas is `fail` only when it provably did not take effect (no session, so never sent;
//! `BadVersion` or a different value: refused), and `info` when it was sent and the
//! answer did not come (connection loss, timeout) or the session died.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use zookeeper_client as zk;

use crate::runtime::{tcp_exchange, NodeFile, ReadyProbe};
use crate::target::{
    ClaimContext, Claims, Client, ClientContext, ClientOp, Completion, CompletionKind,
    DeployContext, Program, Role, SwitchableFault, Target, TargetError,
};

/// ZooKeeper's client port.
pub const ZK_CLIENT_PORT: u16 = 2181;

/// The port followers connect to the leader on.
pub const ZK_QUORUM_PORT: u16 = 2888;

/// The leader-election port.
pub const ZK_ELECTION_PORT: u16 = 3888;

/// Where Debian keeps ZooKeeper's jar and the jars it needs.
pub const JAVA_LIBRARIES: &str = "/usr/share/java";

/// ZooKeeper's jar (its manifest's `Class-Path` names its dependencies).
pub const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

/// The slf4j binding that logs to standard error.
pub const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";

/// Debian's link to the default Java runtime.
pub const DEFAULT_JAVA_HOME: &str = "/usr/lib/jvm/default-java";

/// How to get what the target needs.
pub const ZK_INSTALL_HINT: &str =
    "install Debian's ZooKeeper and Java runtime: sudo apt-get install zookeeper default-jre-headless";

/// The server's tick, in milliseconds (the unit of its timeouts).
pub const TICK_MS: u64 = 500;

/// The session timeout the clients ask for (the server grants 2 to 20 ticks).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

/// The server's main class.
pub const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// How a read is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// `getData` from the connected server's own state.
    #[default]
    Plain,
    /// `sync`, then `getData`.
    Sync,
}

impl ReadMode {
    /// The option's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Plain => "plain",
            ReadMode::Sync => "sync",
        }
    }

    /// The read mode the target options ask for (`reads`); `Err` says what is wrong.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<ReadMode, String> {
        match crate::target::choice_option("zookeeper", options, "reads", &["plain", "sync"])? {
            "sync" => Ok(ReadMode::Sync),
            _ => Ok(ReadMode::Plain),
        }
    }
}

/// The ZooKeeper target.
#[derive(Debug, Default, Clone, Copy)]
pub struct ZooKeeper;

/// The Java runtime's home: where [`DEFAULT_JAVA_HOME`] leads, else the first
/// `/usr/lib/jvm/java-*` folder holding `bin/java`, else the default path itself (which
/// then fails the program check with the install hint).
pub fn java_home() -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(DEFAULT_JAVA_HOME) {
        if real.join("bin/java").is_file() {
            return real;
        }
    }
    let mut homes: Vec<PathBuf> = std::fs::read_dir("/usr/lib/jvm")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("java-"))
                        && p.join("bin/java").is_file()
                })
                .collect()
        })
        .unwrap_or_default();
    homes.sort();
    homes
        .into_iter()
        .next()
        .and_then(|p| std::fs::canonicalize(p).ok())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_JAVA_HOME))
}

/// What the nodes run: `java` of `home`, carrying its `bin`, `conf` and `lib` and
/// [`JAVA_LIBRARIES`].
pub fn program_in(home: &Path) -> Program {
    Program::HostTree {
        program: home.join("bin/java"),
        trees: vec![
            home.join("bin"),
            home.join("conf"),
            home.join("lib"),
            PathBuf::from(JAVA_LIBRARIES),
            // Within the folder above; named so that a missing ZooKeeper is refused with
            // the install hint before anything starts.
            PathBuf::from(ZK_JAR),
            PathBuf::from(SLF4J_SIMPLE_JAR),
        ],
        hint: ZK_INSTALL_HINT.to_string(),
    }
}

/// The node's `zoo.cfg`: the ensemble of `hosts` (server ids from 1, in node order), data
/// under `data_dir`.
pub fn zoo_cfg(hosts: &[String], data_dir: &str) -> String {
    let data = data_dir.trim_end_matches('/');
    let mut cfg = format!(
        "tickTime={TICK_MS}\n\
         initLimit=20\n\
         syncLimit=4\n\
         dataDir={data}/zk\n\
         clientPort={ZK_CLIENT_PORT}\n\
         clientPortAddress=0.0.0.0\n\
         quorumListenOnAllIPs=true\n\
         maxClientCnxns=0\n\
         localSessionsEnabled=true\n\
         localSessionsUpgradingEnabled=true\n\
         4lw.commands.whitelist=srvr,ruok\n\
         admin.enableServer=false\n\
         preAllocSize=4096\n\
         autopurge.purgeInterval=0\n\
         standaloneEnabled=false\n\
         reconfigEnabled=false\n"
    );
    for (i, host) in hosts.iter().enumerate() {
        cfg.push_str(&format!(
            "server.{}={host}:{ZK_QUORUM_PORT}:{ZK_ELECTION_PORT}\n",
            i + 1
        ));
    }
    cfg
}

/// The znode of a key: `/faultline-<key>` (a `/` in the key is escaped, so that every
/// key is one znode under the root).
pub fn key_path(key: &str) -> String {
    format!("/faultline-{}", key.replace('%', "%25").replace('/', "%2F"))
}

/// A value read: the decimal text faultline wrote, `None` otherwise.
pub fn parse_value(data: &[u8]) -> Option<u64> {
    std::str::from_utf8(data).ok()?.parse().ok()
}

/// The role in an answer to `srvr`: `Mode: leader` with the epoch of its `Zxid` (the
/// high 32 bits) as the term, `Mode: follower` (or observer), or unknown (not serving,
/// standalone, unreadable).
pub fn parse_srvr(answer: &str) -> Role {
    let field = |name: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
    };
    match field("Mode:") {
        Some("leader") => {
            let epoch = field("Zxid:")
                .and_then(|z| u64::from_str_radix(z.trim_start_matches("0x"), 16).ok())
                .map(|z| z >> 32)
                .unwrap_or(0);
            Role::Leader { term: epoch }
        }
        Some("follower") | Some("observer") => Role::Follower,
        _ => Role::Unknown,
    }
}

impl Target for ZooKeeper {
    fn name(&self) -> &str {
        "zookeeper"
    }
    fn description(&self) -> &str {
        "Apache ZooKeeper from Debian's zookeeper 3.8 on its Java runtime, through zookeeper-client"
    }
    fn program(&self) -> Program {
        program_in(&java_home())
    }
    fn has_leader(&self) -> bool {
        true
    }
    fn port(&self) -> u16 {
        ZK_CLIENT_PORT
    }
    fn ready_probe(&self, _ctx: &DeployContext<'_>) -> ReadyProbe {
        ReadyProbe::TcpExchange {
            port: ZK_CLIENT_PORT,
            send: "srvr".to_string(),
            expect: "Mode: ".to_string(),
        }
    }
    fn ready_timeout(&self) -> Duration {
        // Each server starts a JVM, then the ensemble elects a leader and the followers
        // synchronise with it: on a loaded 2-core machine this took over 20 s.
        Duration::from_secs(90)
    }
    fn min_nodes(&self) -> usize {
        3
    }
    fn default_nodes(&self) -> usize {
        3
    }
    fn node_args(&self, ctx: &DeployContext<'_>) -> Vec<String> {
        let data = ctx.data_dir.trim_end_matches('/');
        [
            "-Xms32m",
            "-Xmx192m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            // Several servers share a few cores: one compiler thread, one GC thread, and
            // thread pools sized for one processor.
            "-XX:ActiveProcessorCount=1",
            "-XX:-UsePerfData",
            "-Djava.net.preferIPv4Stack=true",
            "-Dzookeeper.admin.enableServer=false",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
        ]
        .into_iter()
        .map(str::to_string)
        .chain([
            format!("-Djava.io.tmpdir={data}"),
            "-cp".to_string(),
            format!("{ZK_JAR}:{SLF4J_SIMPLE_JAR}"),
            MAIN_CLASS.to_string(),
            format!("{data}/zoo.cfg"),
        ])
        .collect()
    }
    fn node_files(&self, ctx: &DeployContext<'_>) -> Vec<NodeFile> {
        vec![
            NodeFile::new("zoo.cfg", zoo_cfg(ctx.hosts, ctx.data_dir)),
            NodeFile::new("zk/myid", format!("{}\n", ctx.index + 1)),
        ]
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
        ReadMode::from_options(options)
            .map(|_| ())
            .map_err(|message| TargetError::BadOption {
                target: self.name().to_string(),
                message,
            })
    }
    fn claims(&self, ctx: &ClaimContext<'_>) -> Claims {
        let mode = ctx
            .options
            .map(ReadMode::from_options)
            .unwrap_or(Ok(ReadMode::Plain));
        match mode {
            Ok(ReadMode::Plain) => Claims {
                models: vec!["sequential".to_string()],
                reason: "ZooKeeper documents sequential consistency, atomic updates and a single system image (Programmer's Guide, consistency guarantees): writes are linearizable, but a read is answered by the client's own server from its state, which may lag the leader, so reads are not linearizable; sequential consistency implies every session guarantee (ryw, mr, mw, wfr), each per ZooKeeper session, which is one faultline process".to_string(),
            },
            Ok(ReadMode::Sync) => Claims {
                models: vec!["sequential".to_string()],
                reason: "reads=sync: every read is sync then getData, so it reflects the writes committed before the sync; ZooKeeper still promises only sequential consistency, because sync is not a quorum operation and a deposed leader can answer it (ZOOKEEPER-1675, ZOOKEEPER-2136); linearizability is checked and reported, and decides the exit code only with --check linearizable".to_string(),
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
        Ok(Arc::new(ZkClient::new(
            ctx.node,
            ctx.addr,
            ctx.timeout,
            reads,
        )))
    }
}

/// Why an operation did not complete `ok`, in the terms that decide fail or info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No session could be opened: nothing was sent.
    NoSession(String),
    /// A cas whose read saw another value (or no znode): nothing was written.
    ValueMismatch,
    /// The leader refused a conditional write: the znode's version moved.
    BadVersion,
    /// The value read is not one faultline wrote (not a decimal u64).
    BadValue(String),
    /// The session died (expired, closed, moved): the operation may or may not have
    /// been applied, and the process must not go on with another session.
    SessionLost(String),
    /// The request was sent and no answer came (connection lost, timed out).
    Unanswered(String),
    /// The server answered with an error that rules the change out.
    Refused(String),
}

/// The [`Failure`] a ZooKeeper error stands for, for a request that was sent.
pub fn failure_of(err: &zk::Error) -> Failure {
    match err {
        zk::Error::BadVersion => Failure::BadVersion,
        zk::Error::SessionExpired
        | zk::Error::ClientClosed
        | zk::Error::SessionMoved
        | zk::Error::AuthFailed => Failure::SessionLost(err.to_string()),
        zk::Error::ConnectionLoss | zk::Error::Timeout => Failure::Unanswered(err.to_string()),
        zk::Error::NoNode
        | zk::Error::NodeExists
        | zk::Error::NoAuth
        | zk::Error::BadArguments(_)
        | zk::Error::InvalidAcl
        | zk::Error::NotReadOnly
        | zk::Error::QuotaExceeded
        | zk::Error::Throttled
        | zk::Error::Unimplemented => Failure::Refused(err.to_string()),
        // Anything else (a marshalling error, an unexpected code, a runtime fault): the
        // request may have been applied.
        _ => Failure::Unanswered(err.to_string()),
    }
}

/// Maps a [`Failure`] of `op` to its completion.
///
/// - A lost session: `info` for every operation, so that the process ends with it.
/// - Anything else on a read: `fail` (a read changes nothing).
/// - No session, a refusal, a cas whose value or version differs: `fail`.
/// - A write or cas sent without an answer, or an unreadable value: `info`.
pub fn map_error(op: &ClientOp, failure: &Failure) -> Completion {
    let text = match failure {
        Failure::NoSession(e) => format!("no session: {e}"),
        Failure::ValueMismatch | Failure::BadVersion => "mismatch".to_string(),
        Failure::BadValue(v) => format!("value {v:?} is not a number"),
        Failure::SessionLost(e) => format!("session lost: {e}"),
        Failure::Unanswered(e) => format!("no answer: {e}"),
        Failure::Refused(e) => e.clone(),
    };
    let definite = match failure {
        Failure::SessionLost(_) | Failure::BadValue(_) => false,
        Failure::NoSession(_)
        | Failure::ValueMismatch
        | Failure::BadVersion
        | Failure::Refused(_) => true,
        Failure::Unanswered(_) => matches!(op, ClientOp::Read),
    };
    if definite {
        Completion::fail(text)
    } else {
        Completion::info(text)
    }
}

/// A client of one ZooKeeper server: one session per faultline process, each connected
/// to this server only.
#[derive(Debug)]
pub struct ZkClient {
    node: String,
    addr: SocketAddr,
    timeout: Duration,
    reads: ReadMode,
    sessions: tokio::sync::Mutex<HashMap<u64, zk::Client>>,
    /// When the server last refused a session: the next attempt waits until
    /// [`SESSION_RETRY_PAUSE`] has passed, so that processes of a server that does not
    /// serve (no quorum) do not hammer it with connections.
    refused_at: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// How long after a refused session the next attempt on the same server waits.
pub const SESSION_RETRY_PAUSE: Duration = Duration::from_millis(500);

impl ZkClient {
    /// A client for server `node` at `addr`, reading in `reads`; every operation is
    /// bounded by `timeout`.
    pub fn new(node: &str, addr: SocketAddr, timeout: Duration, reads: ReadMode) -> Self {
        ZkClient {
            node: node.to_string(),
            addr,
            timeout,
            reads,
            sessions: tokio::sync::Mutex::new(HashMap::new()),
            refused_at: std::sync::Mutex::new(None),
        }
    }

    /// The session of `process`, opened on first use.
    async fn session(&self, process: u64) -> Result<zk::Client, Failure> {
        if let Some(s) = self.sessions.lock().await.get(&process) {
            return Ok(s.clone());
        }
        let refused = *self.refused_at.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = refused {
            tokio::time::sleep_until(at + SESSION_RETRY_PAUSE).await;
        }
        let session = zk::Client::connector()
            .with_session_timeout(SESSION_TIMEOUT)
            .with_fail_eagerly()
            .connect(&self.addr.to_string())
            .await
            .map_err(|e| {
                *self.refused_at.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(tokio::time::Instant::now());
                Failure::NoSession(e.to_string())
            })?;
        *self.refused_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.sessions.lock().await.insert(process, session.clone());
        Ok(session)
    }

    /// Ends the session of `process` (it is dropped; the server closes it).
    async fn forget(&self, process: u64) {
        self.sessions.lock().await.remove(&process);
    }

    async fn read(&self, s: &zk::Client, path: &str) -> Result<Option<(u64, i32)>, Failure> {
        if self.reads == ReadMode::Sync {
            s.sync(path).await.map_err(|e| failure_of(&e))?;
        }
        match s.get_data(path).await {
            Ok((data, stat)) => match parse_value(&data) {
                Some(v) => Ok(Some((v, stat.version))),
                None => Err(Failure::BadValue(
                    String::from_utf8_lossy(&data[..data.len().min(40)]).into_owned(),
                )),
            },
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(failure_of(&e)),
        }
    }

    async fn write(&self, s: &zk::Client, path: &str, value: u64) -> Result<(), Failure> {
        let data = value.to_string().into_bytes();
        match s.set_data(path, &data, None).await {
            Ok(_) => return Ok(()),
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(failure_of(&e)),
        }
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        match s.create(path, &data, &options).await {
            Ok(_) => Ok(()),
            // Another process created it in between: overwrite it.
            Err(zk::Error::NodeExists) => s
                .set_data(path, &data, None)
                .await
                .map(|_| ())
                .map_err(|e| failure_of(&e)),
            Err(e) => Err(failure_of(&e)),
        }
    }

    async fn run(&self, s: &zk::Client, key: &str, op: &ClientOp) -> Result<Value, Failure> {
        let path = key_path(key);
        match op {
            ClientOp::Read => Ok(self
                .read(s, &path)
                .await?
                .map(|(v, _)| Value::from(v))
                .unwrap_or(Value::Null)),
            ClientOp::Write(v) => {
                self.write(s, &path, *v).await?;
                Ok(op.argument())
            }
            ClientOp::Cas { expected, new } => {
                // The read is made as reads are (after a sync with reads=sync): a stale
                // read here would make the cas fail on a value the key no longer holds.
                let version = match self.read(s, &path).await {
                    Ok(Some((v, version))) if v == *expected => version,
                    Ok(_) => return Err(Failure::ValueMismatch),
                    // The read changed nothing and nothing was written.
                    Err(f @ (Failure::SessionLost(_) | Failure::BadValue(_))) => return Err(f),
                    Err(other) => return Err(Failure::Refused(format!("{other:?}"))),
                };
                s.set_data(&path, new.to_string().as_bytes(), Some(version))
                    .await
                    .map_err(|e| failure_of(&e))?;
                Ok(op.argument())
            }
            // The zookeeper target offers no transactional workload: a plan never gets
            // here.
            ClientOp::Txn(_) => Err(Failure::Refused(
                "the zookeeper target runs no transactions".to_string(),
            )),
        }
    }

    async fn invoke_for(&self, process: u64, key: &str, op: &ClientOp) -> Completion {
        let work = async {
            let s = self.session(process).await?;
            self.run(&s, key, op).await
        };
        let mut c = match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(value)) => Completion {
                kind: CompletionKind::Ok,
                value,
                error: None,
                node: None,
            },
            Ok(Err(f)) => map_error(op, &f),
            // Still opening the session: nothing was sent. Otherwise unknown.
            Err(_) if !self.sessions.lock().await.contains_key(&process) => {
                map_error(op, &Failure::NoSession("timeout".to_string()))
            }
            Err(_) => map_error(op, &Failure::Unanswered("timeout".to_string())),
        };
        if c.kind == CompletionKind::Info {
            // The worker goes on as a fresh process: its session goes with this one.
            self.forget(process).await;
        }
        c.node = Some(self.node.clone());
        c
    }
}

#[async_trait]
impl Client for ZkClient {
    async fn invoke(&self, key: &str, op: &ClientOp) -> Completion {
        self.invoke_for(0, key, op).await
    }

    async fn invoke_as(&self, process: u64, key: &str, op: &ClientOp) -> Completion {
        self.invoke_for(process, key, op).await
    }

    async fn role(&self) -> Role {
        match tokio::time::timeout(self.timeout, tcp_exchange(self.addr, "srvr")).await {
            Ok(Ok(answer)) => parse_srvr(&answer),
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

    fn ctx<'a>(hosts: &'a [String], options: &'a BTreeMap<String, String>) -> DeployContext<'a> {
        DeployContext {
            index: 1,
            hosts,
            data_dir: "/data/",
            faults: &[],
            options,
            request_timeout_ms: 1500,
            token: "unused-by-zookeeper",
        }
    }

    #[test]
    fn every_node_gets_the_ensemble_and_its_own_id() {
        let hosts = [
            "10.9.0.11".to_string(),
            "10.9.0.12".to_string(),
            "10.9.0.13".to_string(),
        ];
        let options = BTreeMap::new();
        let files = ZooKeeper.node_files(&ctx(&hosts, &options));
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, PathBuf::from("zoo.cfg"));
        let cfg = &files[0].contents;
        for line in [
            "tickTime=500",
            "dataDir=/data/zk",
            "clientPort=2181",
            "quorumListenOnAllIPs=true",
            "4lw.commands.whitelist=srvr,ruok",
            "server.1=10.9.0.11:2888:3888",
            "server.2=10.9.0.12:2888:3888",
            "server.3=10.9.0.13:2888:3888",
        ] {
            assert!(cfg.lines().any(|l| l == line), "{line} missing:\n{cfg}");
        }
        assert!(!cfg.contains("server.4"));
        assert_eq!(files[1], NodeFile::new("zk/myid", "2\n"));
        assert!(files.iter().all(NodeFile::is_contained));
        let args = ZooKeeper.node_args(&ctx(&hosts, &options));
        assert_eq!(
            args[args.len() - 4..],
            [
                "-cp".to_string(),
                "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar".to_string(),
                MAIN_CLASS.to_string(),
                "/data/zoo.cfg".to_string(),
            ]
        );
        assert!(args.contains(&"-Xmx192m".to_string()));
    }

    #[test]
    fn the_program_is_java_carried_with_its_runtime_and_the_jars() {
        let Program::HostTree {
            program,
            trees,
            hint,
        } = program_in(Path::new("/usr/lib/jvm/java-17-openjdk-amd64"))
        else {
            panic!("zookeeper carries its trees");
        };
        assert_eq!(
            program,
            PathBuf::from("/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
        );
        assert!(trees.iter().any(|t| program.starts_with(t)));
        assert!(trees.contains(&PathBuf::from("/usr/share/java")));
        assert!(trees.contains(&PathBuf::from("/usr/lib/jvm/java-17-openjdk-amd64/lib")));
        assert!(hint.contains("apt-get install zookeeper default-jre-headless"));
    }

    #[test]
    fn readiness_asks_srvr_for_a_mode() {
        let hosts = ["10.9.0.11".to_string()];
        let options = BTreeMap::new();
        assert_eq!(
            ZooKeeper.ready_probe(&ctx(&hosts, &options)),
            ReadyProbe::TcpExchange {
                port: 2181,
                send: "srvr".into(),
                expect: "Mode: ".into()
            }
        );
    }

    #[test]
    fn srvr_answers_give_the_role() {
        let leader = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\nConnections: 1\nOutstanding: 0\nZxid: 0x300000002\nMode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n";
        assert_eq!(parse_srvr(leader), Role::Leader { term: 3 });
        let follower = leader.replace("Mode: leader", "Mode: follower");
        assert_eq!(parse_srvr(&follower), Role::Follower);
        assert_eq!(
            parse_srvr("This ZooKeeper instance is not currently serving requests\n"),
            Role::Unknown
        );
        assert_eq!(
            parse_srvr(&leader.replace("Mode: leader", "Mode: standalone")),
            Role::Unknown
        );
        assert_eq!(parse_srvr(""), Role::Unknown);
    }

    #[test]
    fn read_modes_and_their_claims() {
        assert_eq!(ReadMode::from_options(&opts(&[])), Ok(ReadMode::Plain));
        assert_eq!(
            ReadMode::from_options(&opts(&[("reads", "sync")])),
            Ok(ReadMode::Sync)
        );
        let err = ReadMode::from_options(&opts(&[("reads", "quorum")])).unwrap_err();
        assert!(err.contains("plain") && err.contains("sync"), "{err}");
        let err = ReadMode::from_options(&opts(&[("fsync", "off")])).unwrap_err();
        assert!(err.contains("fsync"), "{err}");
        for o in [opts(&[]), opts(&[("reads", "sync")])] {
            let claims = ZooKeeper.claims(&ClaimContext {
                nodes: 3,
                options: Some(&o),
                clock_faults: false,
            });
            assert_eq!(claims.models, vec!["sequential".to_string()]);
            assert!(claims.reason.contains("sequential consistency"));
        }
        assert!(ZooKeeper
            .check_options(&opts(&[("reads", "x")]), 3)
            .is_err());
        assert!(ZooKeeper
            .check_options(&opts(&[("reads", "sync")]), 5)
            .is_ok());
    }

    #[test]
    fn keys_are_single_znodes_and_values_decimal() {
        assert_eq!(key_path("3"), "/faultline-3");
        assert_eq!(key_path("a/b%"), "/faultline-a%2Fb%25");
        assert_eq!(parse_value(b"42"), Some(42));
        assert_eq!(parse_value(b""), None);
        assert_eq!(parse_value(b"x"), None);
    }

    #[test]
    fn errors_map_to_fail_only_when_nothing_took_effect() {
        let write = ClientOp::Write(3);
        let read = ClientOp::Read;
        let kind = |op: &ClientOp, f: Failure| map_error(op, &f).kind;
        // Never sent, or refused: fail for everything.
        for op in [&read, &write, &CAS] {
            assert_eq!(
                kind(op, Failure::NoSession("refused".into())),
                CompletionKind::Fail
            );
            assert_eq!(
                kind(op, Failure::Refused("NoAuth".into())),
                CompletionKind::Fail
            );
            // A dead session ends the process: info even for a read.
            assert_eq!(
                kind(op, Failure::SessionLost("expired".into())),
                CompletionKind::Info
            );
        }
        assert_eq!(kind(&CAS, Failure::BadVersion), CompletionKind::Fail);
        assert_eq!(kind(&CAS, Failure::ValueMismatch), CompletionKind::Fail);
        assert_eq!(
            map_error(&CAS, &Failure::BadVersion).error.as_deref(),
            Some("mismatch")
        );
        // Sent without an answer: unknown for a write or cas, nothing for a read.
        assert_eq!(
            kind(&write, Failure::Unanswered("loss".into())),
            CompletionKind::Info
        );
        assert_eq!(
            kind(&CAS, Failure::Unanswered("loss".into())),
            CompletionKind::Info
        );
        assert_eq!(
            kind(&read, Failure::Unanswered("loss".into())),
            CompletionKind::Fail
        );
        // ZooKeeper's errors.
        assert_eq!(failure_of(&zk::Error::BadVersion), Failure::BadVersion);
        assert!(matches!(
            failure_of(&zk::Error::SessionExpired),
            Failure::SessionLost(_)
        ));
        assert!(matches!(
            failure_of(&zk::Error::ConnectionLoss),
            Failure::Unanswered(_)
        ));
        assert!(matches!(
            failure_of(&zk::Error::Timeout),
            Failure::Unanswered(_)
        ));
        assert!(matches!(
            failure_of(&zk::Error::NoAuth),
            Failure::Refused(_)
        ));
        assert!(matches!(
            failure_of(&zk::Error::UnexpectedErrorCode(-999)),
            Failure::Unanswered(_)
        ));
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_gives_fail_and_no_role() {
        // A port on loopback nobody listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let c = ZkClient::new("n1", addr, Duration::from_millis(800), ReadMode::Plain);
        let done = c.invoke_as(7, "1", &ClientOp::Write(1)).await;
        assert_eq!(done.kind, CompletionKind::Fail, "{done:?}");
        assert_eq!(done.node.as_deref(), Some("n1"));
        assert_eq!(c.role().await, Role::Unknown);
    }
}
