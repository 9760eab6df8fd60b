//! The runtime's errors. Each message says what is wrong and, where the
//! remedy is on the host, how to fix it.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use super::ldd::RunLddError;
use super::names::NameError;
use super::net::PlanError;
use super::rootfs::TreeError;
use super::spec::SpecError;
use super::state::{Action, NodeState};

/// Boxed lower-level error (engine client, process spawn).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a runtime.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The engine's socket does not exist.
    #[error(
        "Docker engine socket not found at {socket}: install docker.io and start it \
         (apt-get install docker.io; systemctl start docker), or point DOCKER_HOST at \
         the engine's unix socket"
    )]
    EngineSocketMissing {
        /// The socket path that was tried.
        socket: String,
    },
    /// The socket exists but this user may not use it.
    #[error(
        "this user (uid {uid}) may not use the Docker engine socket {socket}: add it to the \
         docker group (sudo usermod -aG docker $USER, then log in again or run `newgrp docker`), \
         or run faultline as root"
    )]
    EngineSocketDenied {
        /// The socket path.
        socket: String,
        /// The effective uid.
        uid: u32,
    },
    /// The harness does not run as root, and the host fault path needs it.
    #[error(
        "faults from the host need root (running as uid {uid}): they enter node network \
         namespaces with nsenter; use the node agents instead (--faults agent, the default), \
         which need only the docker group, or run faultline with sudo"
    )]
    NotRoot {
        /// The effective uid found.
        uid: u32,
    },
    /// The socket exists but the engine does not answer.
    #[error(
        "Docker engine not reachable at {socket}: {source}; start it (systemctl start docker) \
         and check that this user may use the socket"
    )]
    EngineUnreachable {
        /// The socket path.
        socket: String,
        /// What failed.
        source: BoxError,
    },
    /// An engine call failed.
    #[error("Docker {op} failed: {source}")]
    Engine {
        /// The call, with its object (for example `start container faultline-r1-n1`).
        op: String,
        /// The engine client's error.
        source: BoxError,
    },
    /// A host file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Listing the node binary's libraries failed.
    #[error(transparent)]
    Ldd(#[from] RunLddError),
    /// The cluster description is inconsistent.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A directory tree the image must carry cannot be read.
    #[error("cannot carry the program's files into the node image: {0}")]
    Tree(#[from] TreeError),
    /// The address plan is unusable.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A name breaks the rules.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The cluster's subnet overlaps an existing network.
    #[error(
        "subnet {subnet} overlaps network {network:?} ({existing}); choose another subnet \
         for the cluster"
    )]
    SubnetInUse {
        /// The cluster's subnet.
        subnet: String,
        /// The network already using addresses in it.
        network: String,
        /// That network's subnet.
        existing: String,
    },
    /// A node did not answer its readiness probe in time.
    #[error(
        "node {node} never became ready: {url} did not pass within {waited:?} \
         (last: {last_error}); last log lines:\n{log_tail}"
    )]
    NotReady {
        /// The node.
        node: String,
        /// The probed URL.
        url: String,
        /// How long it was waited for.
        waited: Duration,
        /// The last probe failure.
        last_error: String,
        /// The node's last log lines.
        log_tail: String,
    },
    /// The action does not apply to the node's state.
    #[error("cannot {action:?} node {node}: it is {state:?}")]
    InvalidState {
        /// The node.
        node: String,
        /// The refused action.
        action: Action,
        /// Its state.
        state: NodeState,
    },
    /// No such node in the cluster.
    #[error("no node named {0:?} in this cluster")]
    UnknownNode(String),
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {op} failed{}: {message}", status.map(|s| format!(" ({s})")).unwrap_or_default())]
    Api {
        /// The call, with its object (for example `create Pod jepsen/faultline-r1-n1`).
        op: String,
        /// The HTTP status, when the API answered.
        status: Option<u16>,
        /// The API's message (its `Status.message`), or the transport's error.
        message: String,
    },
    /// A node's agent, through which a runtime acts on the node's program, failed.
    #[error("node {node}: {message}")]
    Agent {
        /// The node.
        node: String,
        /// The agent client's error.
        message: String,
    },
    /// A runtime answered a cluster's creation with the wrong number of node addresses
    /// (a defect of the runtime).
    #[error("the {runtime} runtime gave {addresses} addresses for {nodes} nodes")]
    AddressCount {
        /// The runtime's name.
        runtime: &'static str,
        /// How many nodes the spec has.
        nodes: usize,
        /// How many addresses came back.
        addresses: usize,
    },
    /// The chosen runtime cannot host a run here.
    #[error("{reason}")]
    Unavailable {
        /// The runtime's name.
        runtime: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
}

impl RuntimeError {
    /// Whether the machine is not set up for this run in a way the user can fix (no
    /// engine socket, a socket this user may not use, root needed for host faults): a
    /// refusal (exit 254), not a harness failure.
    pub fn is_setup_error(&self) -> bool {
        matches!(
            self,
            RuntimeError::EngineSocketMissing { .. }
                | RuntimeError::EngineSocketDenied { .. }
                | RuntimeError::NotRoot { .. }
                | RuntimeError::Unavailable { .. }
        )
    }

    /// Whether the planned node addresses are taken (Docker: the subnet overlaps another
    /// network): plan again with the next attempt ([`super::Runtime::plan_addresses`]).
    pub fn is_address_conflict(&self) -> bool {
        matches!(self, RuntimeError::SubnetInUse { .. })
    }

    /// An engine error for `op`.
    pub fn engine(op: impl Into<String>, source: impl Into<BoxError>) -> Self {
        RuntimeError::Engine {
            op: op.into(),
            source: source.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            path: path.into(),
            source,
        }
    }
}
