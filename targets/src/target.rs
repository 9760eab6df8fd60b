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
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

/// What a target's deployment needs to know about one node of the cluster.
#[derive(Debug, Clone)]
pub struct DeployContext<'a> {
    /// The node's position in the cluster, from 0.
    pub index: usize,
    /// Every node's IP, in cluster order (this node's is `ips[index]`).
    pub ips: &'a [Ipv4Addr],
    /// The data directory as the node sees it (`/data` in a container).
    pub data_dir: &'a str,
    /// The planted faults to switch on (names from [`Target::faults`]).
    pub faults: &'a [String],
    /// Target-specific options (`r=1`, `w=3` for quorum-kv), already validated.
    pub options: &'a BTreeMap<String, String>,
    /// How long a node may hold a client request before answering "unknown", in ms.
    pub request_timeout_ms: u64,
}

/// One planted, switchable fault of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SwitchableFault {
    /// The name used with `--fault`.
    pub name: &'static str,
    /// What it breaks and how.
    pub description: &'static str,
    /// The nemesis families that expose it (the campaign adds them when the user did not
    /// choose any).
    pub exposed_by: &'static [&'static str],
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

/// An operation a client issues against one key.
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
}

impl ClientOp {
    /// The history's `f`.
    pub fn f(&self) -> &'static str {
        match self {
            ClientOp::Read => "read",
            ClientOp::Write(_) => "write",
            ClientOp::Cas { .. } => "cas",
        }
    }

    /// The history's `value` of the invoke (and of an `ok` write or cas).
    pub fn argument(&self) -> Value {
        match self {
            ClientOp::Read => Value::Null,
            ClientOp::Write(v) => Value::from(*v),
            ClientOp::Cas { expected, new } => Value::from(vec![*expected, *new]),
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

/// A system under test.
pub trait Target: Send + Sync + fmt::Debug {
    /// The target's name (`raft-register`).
    fn name(&self) -> &'static str;
    /// The file name of the program the nodes run (found by the harness; bind-mounted
    /// into each node).
    fn binary_name(&self) -> &'static str;
    /// Where the program is installed on the host when it is not one of faultline's own
    /// (`/usr/bin/etcd` from a distribution package); `None` (the default) means "next to
    /// the `faultline` executable".
    fn system_binary(&self) -> Option<&'static str> {
        None
    }
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
    /// How to build the program when it is missing, for the error message.
    fn build_hint(&self) -> &'static str;
    /// The port every node's client API listens on.
    fn port(&self) -> u16;
    /// The HTTP path that answers 200 once the node is ready.
    fn ready_path(&self) -> &'static str;
    /// The smallest cluster the target runs on.
    fn min_nodes(&self) -> usize {
        1
    }
    /// The node's command line (without the program).
    fn node_args(&self, ctx: &DeployContext<'_>) -> Vec<String>;
    /// Whether the target offers compare-and-set.
    fn offers_cas(&self) -> bool;
    /// Its planted faults.
    fn faults(&self) -> &'static [SwitchableFault];
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
    /// A client for the node called `node` at `addr`; `timeout` bounds every request;
    /// `options` are the plan's target options, already accepted by
    /// [`Target::check_options`] (etcd's `reads=serializable` changes how it reads).
    fn client(
        &self,
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
        options: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn Client>, TargetError>;

    /// Checks that `fault` is one of the target's planted faults.
    fn check_fault(&self, fault: &str) -> Result<&'static SwitchableFault, TargetError> {
        self.faults()
            .iter()
            .find(|f| f.name == fault)
            .ok_or_else(|| TargetError::UnknownFault {
                target: self.name().to_string(),
                fault: fault.to_string(),
                known: self
                    .faults()
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The targets this crate knows.
pub fn all_targets() -> Vec<Arc<dyn Target>> {
    vec![
        Arc::new(crate::raft_register::RaftRegister),
        Arc::new(crate::quorum_kv::QuorumKv),
        Arc::new(crate::etcd::Etcd),
    ]
}

/// The target called `name`.
pub fn target_by_name(name: &str) -> Result<Arc<dyn Target>, TargetError> {
    let all = all_targets();
    let known = all.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ");
    all.into_iter()
        .find(|t| t.name() == name)
        .ok_or(TargetError::Unknown {
            name: name.to_string(),
            known,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_found_by_name_and_unknown_ones_are_listed() {
        assert_eq!(
            target_by_name("raft-register").map(|t| t.name()).ok(),
            Some("raft-register")
        );
        assert_eq!(
            target_by_name("quorum-kv").map(|t| t.name()).ok(),
            Some("quorum-kv")
        );
        assert_eq!(target_by_name("etcd").map(|t| t.name()).ok(), Some("etcd"));
        let err = target_by_name("zookeeper")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("raft-register, quorum-kv, etcd"), "{err}");
    }

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
    fn unknown_faults_are_refused_with_the_known_list() {
        let t = target_by_name("raft-register").ok();
        let t = t.as_deref();
        assert!(t.is_some_and(|t| t.check_fault("stale-reads").is_ok()));
        let err = t
            .and_then(|t| t.check_fault("r1").err())
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("stale-reads") && err.contains("early-ack"),
            "{err}"
        );
    }
}
