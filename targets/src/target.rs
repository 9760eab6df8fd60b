//! The target abstraction: what the campaign runner needs to know about a system under
//! test, and nothing about how it is checked.
//!
//! A [`Target`] says how a node is deployed (the program and its command line, given the
//! cluster's addresses), where it answers readiness probes, how to talk to it (a
//! [`Client`] per node), whether it offers compare-and-set, which planted faults it can
//! switch on, and which consistency models it claims under given settings. The harness has
//! no special case for any target: a third-party system (etcd) is one more implementation.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::runtime::ReadyProbe;

/// What a target's deployment needs to know about one node of the cluster.
#[derive(Debug, Clone)]
pub struct DeployContext<'a> {
    /// The node's position in the cluster, from 0.
    pub index: usize,
    /// Every node's host, in cluster order (this node's is `hosts[index]`): how the
    /// nodes reach each other, from the runtime (an IP address on Docker, a DNS name on
    /// Kubernetes). Put it in peer lists and advertised addresses; listen on `0.0.0.0`.
    pub hosts: &'a [String],
    /// The data directory as the node sees it (`/data` in a container).
    pub data_dir: &'a str,
    /// The planted faults to switch on (names from [`Target::faults`]).
    pub faults: &'a [String],
    /// Target-specific options (`r=1`, `w=3` for quorum-kv), already validated.
    pub options: &'a BTreeMap<String, String>,
    /// How long a node may hold a client request before answering "unknown", in ms.
    pub request_timeout_ms: u64,
    /// A random secret drawn for this cluster, the same for all its nodes (the bundled
    /// node's peer token; `{token}` in a target file).
    pub token: &'a str,
}

impl DeployContext<'_> {
    /// The node's name: `n1` for index 0.
    pub fn name(&self) -> String {
        node_name(self.index)
    }

    /// The node's own host (`127.0.0.1` if the index is out of range, which the harness
    /// never asks for).
    pub fn host(&self) -> &str {
        self.hosts
            .get(self.index)
            .map(String::as_str)
            .unwrap_or("127.0.0.1")
    }
}

/// The name of the node at `index` (from 0): `n1`, `n2`, ...
pub fn node_name(index: usize) -> String {
    format!("n{}", index + 1)
}

/// A fresh random secret for one cluster: 32 bytes from the kernel's random source as 64
/// hex digits, or (should it be unreadable) a SHA-256 of per-process random hasher keys,
/// the time, the pid and a counter.
pub fn cluster_token() -> String {
    use std::io::Read;
    use std::sync::atomic::{AtomicU64, Ordering};
    let mut bytes = [0u8; 32];
    let urandom = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if urandom.is_err() {
        use sha2::Digest;
        use std::hash::{BuildHasher, Hasher};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = sha2::Sha256::new();
        for _ in 0..4 {
            let mut s = std::collections::hash_map::RandomState::new().build_hasher();
            s.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            h.update(s.finish().to_le_bytes());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.update(now.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        bytes.copy_from_slice(&h.finalize());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One planted, switchable fault of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchableFault {
    /// The name used with `--fault`.
    pub name: String,
    /// What it breaks and how.
    pub description: String,
    /// The nemesis families that expose it (the campaign adds them when the user did not
    /// choose any).
    pub exposed_by: Vec<String>,
    /// How the campaign is shaped when the fault chose the nemesis and the user left
    /// these settings at their defaults.
    pub exposure: Exposure,
    /// Whether it breaks transactions only (a plan with a register workload that switches
    /// it on is refused: it would change nothing).
    pub txn_only: bool,
}

/// The campaign shape that exposes a planted fault best (measured with
/// `harness/benches/bug_finding.sh`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Exposure {
    /// Mean time between nemesis actions, in milliseconds.
    pub interval_ms: Option<u64>,
    /// Client processes.
    pub concurrency: Option<usize>,
    /// Let kills and pauses take every node down at once (not only a minority).
    pub all_down: bool,
}

impl SwitchableFault {
    /// A fault from literal text (the built-in targets' tables).
    pub fn new(name: &str, description: &str, exposed_by: &[&str]) -> Self {
        SwitchableFault {
            name: name.to_string(),
            description: description.to_string(),
            exposed_by: exposed_by.iter().map(|s| s.to_string()).collect(),
            exposure: Exposure::default(),
            txn_only: false,
        }
    }

    /// The same fault, breaking transactions only.
    pub fn for_transactions(mut self) -> Self {
        self.txn_only = true;
        self
    }

    /// The same fault with the campaign shape that exposes it.
    pub fn exposed_with(mut self, exposure: Exposure) -> Self {
        self.exposure = exposure;
        self
    }
}

/// Where the program the nodes run comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// One of faultline's own programs, found next to the `faultline` executable (or given
    /// with `--node-binary`), bind-mounted into each node.
    Bundled {
        /// Its file name (`faultline-node`).
        file_name: String,
        /// How to build it, for the error message when it is missing.
        build_hint: String,
    },
    /// A program installed on the host at this absolute path (`/usr/bin/etcd`),
    /// bind-mounted into each node; its libraries go into the image (found with `ldd`).
    HostBinary {
        /// The path.
        path: PathBuf,
        /// How to get it, for the error message when it is missing.
        hint: String,
    },
    /// A program that needs whole directory trees of this host (a JVM and its class
    /// libraries): the trees go into the node image at the same paths (symlinks
    /// followed, with the libraries of every ELF file in them) and `program`, which lies
    /// in one of them, runs from there.
    HostTree {
        /// The program's absolute path (`/usr/lib/jvm/java-17-openjdk-amd64/bin/java`).
        program: PathBuf,
        /// The directories (or single files) carried into the image.
        trees: Vec<PathBuf>,
        /// How to get them, for the error message when one is missing.
        hint: String,
    },
    /// A container image the engine already has, used as it is (nothing is mounted but
    /// the data and clock folders; the node command is the container's command).
    Image {
        /// The image reference (`mydb:1.2`).
        reference: String,
    },
}

/// What a target's client needs to know to talk to one node.
#[derive(Debug, Clone)]
pub struct ClientContext<'a> {
    /// The node's name (`n1`).
    pub node: &'a str,
    /// The node's client address (its IP and the target's client port).
    pub addr: SocketAddr,
    /// Every request's time limit.
    pub timeout: Duration,
    /// The plan's target options, already accepted by [`Target::check_options`].
    pub options: &'a BTreeMap<String, String>,
    /// The run's log folder (a client that starts programs sends their stderr there).
    pub log_dir: &'a Path,
    /// How many nodes the cluster has (a client that creates replicated state at setup
    /// sizes it with this: the nats target's bucket has one replica per node).
    pub nodes: usize,
}

/// The settings a target's claims depend on.
#[derive(Debug, Clone, Default)]
pub struct ClaimContext<'a> {
    /// Number of nodes.
    pub nodes: usize,
    /// Target-specific options.
    pub options: Option<&'a BTreeMap<String, String>>,
    /// Whether the nemesis moves clocks.
    pub clock_faults: bool,
}

/// The models a target claims, with the reason for each choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Model names as the checkers spell them (`linearizable`, `ryw`...), strongest first.
    pub models: Vec<String>,
    /// Why these and not stronger ones, in plain words.
    pub reason: String,
}

/// How an operation completed, as the history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompletionKind {
    /// Took effect; the result is known.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Unknown: may have taken effect.
    Info,
}

/// One micro-operation of a transaction. Keys are non-negative integers (the bundled
/// node echoes them as sent; etcd stores key `k` under the name `k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mop {
    /// Read the key (`["r", key, null]`; the completion fills in what was read).
    Read(u64),
    /// Write a value (`["w", key, value]`, rw-register).
    Write(u64, u64),
    /// Append a value to the key's list (`["append", key, value]`, list-append).
    Append(u64, u64),
}

impl Mop {
    /// The key the micro-operation touches.
    pub fn key(&self) -> u64 {
        match self {
            Mop::Read(k) | Mop::Write(k, _) | Mop::Append(k, _) => *k,
        }
    }

    /// The history's form: `["r", k, null]`, `["w", k, v]` or `["append", k, v]`.
    pub fn to_json(&self) -> Value {
        match self {
            Mop::Read(k) => serde_json::json!(["r", k, null]),
            Mop::Write(k, v) => serde_json::json!(["w", k, v]),
            Mop::Append(k, v) => serde_json::json!(["append", k, v]),
        }
    }

    /// Whether `answer` is this micro-operation as a completed transaction returns it:
    /// the same function and key, the same value for a write or an append, and for a
    /// read `null` or (list-append) an array.
    pub fn matches(&self, answer: &Value) -> bool {
        let Some([f, k, v]) = answer.as_array().map(Vec::as_slice) else {
            return false;
        };
        let key_ok = k.as_u64() == Some(self.key());
        match self {
            Mop::Read(_) => f == "r" && key_ok && (v.is_null() || v.is_array() || v.is_u64()),
            Mop::Write(_, w) => f == "w" && key_ok && v.as_u64() == Some(*w),
            Mop::Append(_, w) => f == "append" && key_ok && v.as_u64() == Some(*w),
        }
    }
}

/// The history's value of a transaction's invoke: its micro-operations, reads `null`.
pub fn mops_json(mops: &[Mop]) -> Value {
    Value::Array(mops.iter().map(Mop::to_json).collect())
}

/// Checks a completed transaction's list against the request: the same length and every
/// micro-operation [`Mop::matches`]. `Err` says what differs.
pub fn check_txn_answer(mops: &[Mop], answer: &Value) -> Result<(), String> {
    let Some(list) = answer.as_array() else {
        return Err("the answer's txn is not a list".into());
    };
    if list.len() != mops.len() {
        return Err(format!(
            "the answer has {} micro-operations, the request {}",
            list.len(),
            mops.len()
        ));
    }
    match mops.iter().zip(list).position(|(m, a)| !m.matches(a)) {
        Some(i) => Err(format!(
            "micro-operation {i} of the answer ({}) is not the one sent ({})",
            list[i],
            mops[i].to_json()
        )),
        None => Ok(()),
    }
}

/// What a target offers for transactional workloads (list-append, rw-register).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxnSupport {
    /// The isolation models it claims (names as the transactional checker spells them:
    /// `strict-serializable`...), strongest first; empty: it claims none, and a campaign
    /// reports which models held.
    pub models: Vec<String>,
    /// Why, in plain words.
    pub reason: String,
}

/// An operation a client issues against one key (or, for a transaction, several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOp {
    /// Read the key.
    Read,
    /// Write a value.
    Write(u64),
    /// Compare-and-set.
    Cas {
        /// The value the key must hold.
        expected: u64,
        /// The value to store.
        new: u64,
    },
    /// A transaction of 1 to 64 micro-operations, applied atomically where the target
    /// offers isolation (the key the client is given is not used).
    Txn(Vec<Mop>),
}

impl ClientOp {
    /// The history's `f`.
    pub fn f(&self) -> &'static str {
        match self {
            ClientOp::Read => "read",
            ClientOp::Write(_) => "write",
            ClientOp::Cas { .. } => "cas",
            ClientOp::Txn(_) => "txn",
        }
    }

    /// The history's `value` of the invoke (and of an `ok` write or cas).
    pub fn argument(&self) -> Value {
        match self {
            ClientOp::Read => Value::Null,
            ClientOp::Write(v) => Value::from(*v),
            ClientOp::Cas { expected, new } => Value::from(vec![*expected, *new]),
            ClientOp::Txn(mops) => mops_json(mops),
        }
    }
}

/// The completion of one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// ok, fail or info.
    pub kind: CompletionKind,
    /// For `ok`: the value read, or the argument of a write or cas; `null` otherwise.
    pub value: Value,
    /// Why it failed or is unknown.
    pub error: Option<String>,
    /// The node that served it, when it said.
    pub node: Option<String>,
}

impl Completion {
    /// An `info` completion with this error.
    pub fn info(error: impl Into<String>) -> Self {
        Completion {
            kind: CompletionKind::Info,
            value: Value::Null,
            error: Some(error.into()),
            node: None,
        }
    }

    /// A `fail` completion with this error.
    pub fn fail(error: impl Into<String>) -> Self {
        Completion {
            kind: CompletionKind::Fail,
            value: Value::Null,
            error: Some(error.into()),
            node: None,
        }
    }
}

/// What a node says about its own part in leadership, as asked by the nemesis to aim a
/// fault at the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "role")]
pub enum Role {
    /// The node believes it leads, in this term (or epoch; 0 when the target has none).
    Leader {
        /// The term it believes it leads in; a higher term wins when two nodes claim.
        term: u64,
    },
    /// The node does not lead.
    Follower,
    /// The node did not answer, or the target has no leader.
    Unknown,
}

/// A client bound to one node. Never returns an error: what happened is data.
#[async_trait]
pub trait Client: Send + Sync + fmt::Debug {
    /// Carries out `op` on `key` and reports how it completed.
    async fn invoke(&self, key: &str, op: &ClientOp) -> Completion;

    /// Carries out `op` on `key` for client process `process`. Workers call this; the
    /// default ignores the process. A client that keeps state per process (the adapter
    /// client: one adapter program per process) overrides it.
    async fn invoke_as(&self, process: u64, key: &str, op: &ClientOp) -> Completion {
        let _ = process;
        self.invoke(key, op).await
    }

    /// Whether this node believes it leads. The default (for leaderless targets) is
    /// [`Role::Unknown`]; targets with a leader override it and say so with
    /// [`Target::has_leader`].
    async fn role(&self) -> Role {
        Role::Unknown
    }
}

/// Errors a target reports about its settings or its client.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// No target has this name.
    #[error("unknown target {name:?} (known: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names.
        known: String,
    },
    /// A planted fault the target does not have.
    #[error("target {target} has no fault {fault:?} (known: {known})")]
    UnknownFault {
        /// The target.
        target: String,
        /// The fault asked for.
        fault: String,
        /// The target's faults.
        known: String,
    },
    /// A target option that is unknown or out of range.
    #[error("target {target}: {message}")]
    BadOption {
        /// The target.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the client for {node}: {message}")]
    Client {
        /// The node.
        node: String,
        /// The underlying error.
        message: String,
    },
}

/// The value of a target's one option `key`, among `choices` (the first is the default,
/// taken when the option is absent): the shape of the third-party targets' `reads`
/// option. `Err` names an unknown option or a value out of `choices`, in the words the
/// user sees (`target` is the target's name).
pub fn choice_option<'c>(
    target: &str,
    options: &BTreeMap<String, String>,
    key: &str,
    choices: &[&'c str],
) -> Result<&'c str, String> {
    let listed = |sep: &str| {
        choices
            .iter()
            .map(|c| format!("{key}={c}"))
            .collect::<Vec<_>>()
            .join(sep)
    };
    if let Some(k) = options.keys().find(|k| k.as_str() != key) {
        return Err(format!(
            "unknown option {k:?} ({target} takes {})",
            listed(" or ")
        ));
    }
    let Some(default) = choices.first() else {
        return Err(format!("{target} takes no option {key:?}"));
    };
    match options.get(key).map(String::as_str) {
        None => Ok(default),
        Some(v) => choices.iter().find(|c| **c == v).copied().ok_or_else(|| {
            let rest: Vec<&str> = choices[1..].to_vec();
            format!(
                "{key}={v}: must be {default} (the default) or {}",
                rest.join(" or ")
            )
        }),
    }
}

/// A system under test.
pub trait Target: Send + Sync + fmt::Debug {
    /// The target's name (`raft-register`).
    fn name(&self) -> &str;
    /// What the target is, in one line (for `faultline targets`).
    fn description(&self) -> &str;
    /// The program the nodes run.
    fn program(&self) -> Program;
    /// Whether the nemesis's clock faults (libfaketime) reach the node's program: `Err`
    /// with the reason when they do not (a program that reads time through the vDSO
    /// instead of libc). The harness also checks that the binary is dynamically linked.
    fn clock_faults(&self) -> Result<(), String> {
        Ok(())
    }
    /// Whether one node leads the others and the client can tell which ([`Client::role`]);
    /// the nemesis's `leader` faults need it.
    fn has_leader(&self) -> bool {
        false
    }
    /// The port every node's client API listens on.
    fn port(&self) -> u16;
    /// How to tell that the node is ready to serve.
    fn ready_probe(&self, ctx: &DeployContext<'_>) -> ReadyProbe;
    /// How long every node has to pass its readiness probe after the cluster starts
    /// (a JVM that must also elect a leader needs longer than the default).
    fn ready_timeout(&self) -> Duration {
        crate::runtime::DEFAULT_READY_TIMEOUT
    }
    /// The smallest cluster the target runs on.
    fn min_nodes(&self) -> usize {
        1
    }
    /// The cluster size when the plan does not give one.
    fn default_nodes(&self) -> usize {
        5
    }
    /// The node's command line (without the program for a host binary; the container's
    /// whole command for an image).
    fn node_args(&self, ctx: &DeployContext<'_>) -> Vec<String>;
    /// Files the node's program finds in its data folder (`ctx.data_dir`) when it first
    /// starts, such as a configuration file it reads: paths relative to that folder.
    fn node_files(&self, ctx: &DeployContext<'_>) -> Vec<crate::runtime::NodeFile> {
        let _ = ctx;
        Vec::new()
    }
    /// The node's environment, besides the clock-fault variables the harness adds.
    fn node_env(&self, ctx: &DeployContext<'_>) -> Vec<(String, String)> {
        let _ = ctx;
        Vec::new()
    }
    /// Whether the target offers compare-and-set.
    fn offers_cas(&self) -> bool;
    /// Whether the target runs transactional workloads ([`ClientOp::Txn`]) under these
    /// settings, and which isolation it then claims; `None` (the default): it does not,
    /// and a plan with a transactional workload is refused.
    fn txn_support(&self, ctx: &ClaimContext<'_>) -> Option<TxnSupport> {
        let _ = ctx;
        None
    }
    /// Its planted faults.
    fn faults(&self) -> &[SwitchableFault];
    /// Checks target options (`--target-opt`); the default accepts none.
    fn check_options(
        &self,
        options: &BTreeMap<String, String>,
        nodes: usize,
    ) -> Result<(), TargetError> {
        let _ = nodes;
        match options.keys().next() {
            None => Ok(()),
            Some(k) => Err(TargetError::BadOption {
                target: self.name().to_string(),
                message: format!("unknown option {k:?} ({} takes none)", self.name()),
            }),
        }
    }
    /// The models the target claims under these settings.
    fn claims(&self, ctx: &ClaimContext<'_>) -> Claims;
    /// A client for one node (see [`ClientContext`]; etcd's `reads=serializable` option
    /// changes how it reads).
    fn client(&self, ctx: &ClientContext<'_>) -> Result<Arc<dyn Client>, TargetError>;

    /// Checks that `fault` is one of the target's planted faults.
    fn check_fault(&self, fault: &str) -> Result<&SwitchableFault, TargetError> {
        self.faults()
            .iter()
            .find(|f| f.name == fault)
            .ok_or_else(|| TargetError::UnknownFault {
                target: self.name().to_string(),
                fault: fault.to_string(),
                known: self
                    .faults()
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_arguments_follow_the_history_format() {
        assert_eq!(ClientOp::Read.argument(), Value::Null);
        assert_eq!(ClientOp::Write(4).argument(), serde_json::json!(4));
        assert_eq!(
            ClientOp::Cas {
                expected: 1,
                new: 2
            }
            .argument(),
            serde_json::json!([1, 2])
        );
        assert_eq!(
            ClientOp::Cas {
                expected: 1,
                new: 2
            }
            .f(),
            "cas"
        );
    }

    #[test]
    fn a_transaction_is_recorded_with_null_reads_and_its_answer_is_checked() {
        let op = ClientOp::Txn(vec![Mop::Append(3, 2), Mop::Read(3), Mop::Write(1, 9)]);
        assert_eq!(op.f(), "txn");
        assert_eq!(
            op.argument(),
            serde_json::json!([["append", 3, 2], ["r", 3, null], ["w", 1, 9]])
        );
        let ClientOp::Txn(mops) = &op else {
            unreachable!()
        };
        let good = serde_json::json!([["append", 3, 2], ["r", 3, [1, 2]], ["w", 1, 9]]);
        assert_eq!(check_txn_answer(mops, &good), Ok(()));
        for bad in [
            serde_json::json!([["append", 3, 2], ["r", 3, [1, 2]]]),
            serde_json::json!([["append", 3, 5], ["r", 3, [1, 2]], ["w", 1, 9]]),
            serde_json::json!([["append", 3, 2], ["r", 4, [1, 2]], ["w", 1, 9]]),
            serde_json::json!([["append", 3, 2], ["r", 3, "x"], ["w", 1, 9]]),
            serde_json::json!([["append", 3, 2], ["w", 3, null], ["w", 1, 9]]),
            serde_json::json!({"txn": []}),
        ] {
            assert!(check_txn_answer(mops, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_choice_option_takes_its_default_one_of_its_values_or_says_why_not() {
        let opts = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let choices = ["plain", "sync"];
        assert_eq!(
            choice_option("zk", &opts(&[]), "reads", &choices),
            Ok("plain")
        );
        assert_eq!(
            choice_option("zk", &opts(&[("reads", "sync")]), "reads", &choices),
            Ok("sync")
        );
        assert_eq!(
            choice_option("zk", &opts(&[("reads", "fast")]), "reads", &choices),
            Err("reads=fast: must be plain (the default) or sync".to_string())
        );
        assert_eq!(
            choice_option("zk", &opts(&[("read", "sync")]), "reads", &choices),
            Err("unknown option \"read\" (zk takes reads=plain or reads=sync)".to_string())
        );
        assert!(choice_option("zk", &opts(&[]), "reads", &[]).is_err());
    }
}
