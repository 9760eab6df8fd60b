//! The runtime that hosts a cluster of nodes: an abstract [`Runtime`] and its
//! Docker implementation [`DockerRuntime`].
//!
//! The flow for a caller (the campaign runner):
//!
//! 1. [`connect`] with the plan's [`RuntimeKind`] (Docker: `DockerRuntime::connect`
//!    then [`Runtime::check`]): fails first, with what is missing and how to get it
//!    (no engine, no socket, not root, a runtime this build cannot use).
//! 2. [`Runtime::prepare_image`] with an [`ImageSpec`] naming the node binary:
//!    builds (or reuses) a base image holding the binary's libraries and
//!    libfaketime; [`PreparedImage::capabilities`] says whether clock faults
//!    work.
//! 3. [`Cluster::start`] with a [`ClusterSpec`] of [`NodeSpec`]s: removes
//!    leftovers, creates the network and the node dirs, starts every node and
//!    waits for each readiness probe.
//! 4. Faults through the [`Node`] handles: [`Node::kill`], [`Node::start`],
//!    [`Node::pause`], [`Node::resume`], [`Node::restart`], and the facts
//!    [`Node::ip`], [`Node::clock_dir`], [`Node::status`] (pid, netns path).
//! 5. [`Cluster::collect_logs`] then [`Cluster::teardown`] (also after
//!    Ctrl-C); `Drop` removes what teardown did not, best effort.
//!
//! Node operations are addressed by [`NodeRef`] (run id + node name), so a
//! second runtime (plain network namespaces and processes) only has to
//! implement [`Runtime`]; [`Cluster`], [`Node`] and everything above them stay
//! the same.

mod clock;
mod cluster;
mod docker;
mod error;
pub mod kube;
mod ldd;
mod names;
mod net;
mod probe;
mod rootfs;
mod select;
mod spec;
mod state;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

pub use clock::{default_faketime_env, is_valid_offset, write_offset, NO_OFFSET, RC_FILE};
pub use cluster::{Cluster, Node};
pub use docker::{socket_from_docker_host, DockerConfig, DockerRuntime, DEFAULT_SOCKET};
pub use error::{BoxError, RuntimeError};
pub use ldd::{library_union, parse_ldd, run_ldd, LddError, LddReport, RunLddError};
pub use names::{
    container_labels, container_name, harness_alive, in_scope, in_scope_with, label_filters,
    live_runs, network_labels, network_name, parse_stat_start, process_start, this_host,
    CleanScope, HarnessId, NameError, NodeName, NodeRef, RunId, LABEL_FAULTLINE, LABEL_HARNESS,
    LABEL_NODE, LABEL_NODES_DIR, LABEL_RUN,
};
pub use net::{find_overlap, PlanError, Subnet, DEFAULT_SUBNET, FIRST_NODE_OFFSET};
pub use probe::{
    describe, http_get, probe_once, tcp_exchange, wait_http_ok, wait_ready, HttpResponse,
    ProbeError, TCP_EXCHANGE_LIMIT,
};
pub use rootfs::{
    content_tag, load_plan, rootfs_plan, rootfs_plan_carrying, rootfs_plan_with, walk_trees,
    write_tar, CarriedFile, LoadedEntry, RootfsEntry, TreeError, AGENT_MOUNT, AGENT_PATH,
    AGENT_TOOLS, BINARY_DIR, CLOCK_MOUNT, DATA_MOUNT, FAKETIME_LIB, XTABLES_DIR,
};
pub use select::{connect, RuntimeKind, RuntimeOptions};
pub use spec::{
    node_dirs, AddressPlan, AgentSpec, Capabilities, ClusterSpec, ImageSpec, NodeDirs, NodeFile,
    NodeSpec, PreparedImage, ReadyProbe, SpecError, DEFAULT_IMAGE_REPOSITORY,
    DEFAULT_READY_TIMEOUT, NODES_DIR, NODES_MARKER,
};
pub use state::{plan_step, Action, NodeFacts, NodeState, NodeStatus, Step};

/// Facts about the engine found by [`Runtime::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// Which runtime ("docker").
    pub runtime: &'static str,
    /// The engine's version, for example `20.10.24+dfsg1`.
    pub version: String,
    /// The API version in use after negotiation, for example `1.41`.
    pub api_version: String,
}

/// What a clean-up removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Names of the removed containers.
    pub containers: Vec<String>,
    /// Names of the removed networks.
    pub networks: Vec<String>,
    /// Names of the removed volumes.
    pub volumes: Vec<String>,
    /// Ids of the removed untagged base images (only with
    /// [`CleanScope::All`]).
    pub images: Vec<String>,
    /// Host node folders removed (only with [`Runtime::clean`] and
    /// `remove_dirs`).
    pub dirs: Vec<std::path::PathBuf>,
    /// Other objects removed, each as its runtime names it (on Kubernetes `Pod
    /// jepsen/faultline-r1-n1`, `Service jepsen/faultline-r1`, ...).
    pub objects: Vec<String>,
}

impl CleanReport {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.volumes.is_empty()
            && self.images.is_empty()
            && self.dirs.is_empty()
            && self.objects.is_empty()
    }
}

/// A place to run a cluster's nodes. Implementations: [`DockerRuntime`] and
/// [`kube::KubeRuntime`].
///
/// Lifecycle calls are idempotent (see [`plan_step`]): killing a stopped node
/// or resuming a running one does nothing; each returns the node's status
/// afterwards, whose pid and netns path the nemesis must use from then on
/// (a started node has a fresh network namespace, without the fault rules of
/// the old one).
#[async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug {
    /// The runtime's name, for example `"docker"`.
    fn kind(&self) -> &'static str;

    /// Checks that the runtime can work on this host; the error says what is
    /// missing and how to get it. Call before anything else.
    async fn check(&self) -> Result<EngineInfo, RuntimeError>;

    /// Builds the node base image for `spec`, or reuses the one with the same
    /// content.
    async fn prepare_image(&self, spec: &ImageSpec) -> Result<PreparedImage, RuntimeError>;

    /// An image the engine already has (`mydb:1.4`), used as it is for a cluster whose
    /// [`ClusterSpec::image_program`] is set. Nothing is pulled or built.
    async fn existing_image(&self, reference: &str) -> Result<PreparedImage, RuntimeError>;

    /// How the nodes `names` of `run` will reach each other, before they exist: Docker
    /// gives each a fixed IP in a subnet it creates (`attempt` > 0 after
    /// [`RuntimeError::is_address_conflict`] moves to another subnet); Kubernetes names
    /// each by its DNS name under the run's headless Service. The caller builds the
    /// nodes' command lines (their peer lists) from it and puts it into the
    /// [`ClusterSpec`].
    fn plan_addresses(
        &self,
        run: &RunId,
        names: &[NodeName],
        attempt: u32,
    ) -> Result<AddressPlan, RuntimeError>;

    /// Creates the network and the nodes of `spec` from `image` and starts
    /// them (no readiness wait; [`Cluster::start`] does that). The node dirs
    /// must exist already. Returns each node's address, in spec order, at which the
    /// harness reaches it (its clients, probes and agent): known only once the node
    /// exists on a runtime that assigns addresses.
    async fn create_cluster(
        &self,
        spec: &ClusterSpec,
        image: &PreparedImage,
    ) -> Result<Vec<IpAddr>, RuntimeError>;

    /// The node's current status.
    async fn status(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError>;

    /// Starts a stopped node (thaws a paused one).
    async fn start(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError>;

    /// Sends SIGKILL to the node's process and waits until it is gone.
    async fn kill(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError>;

    /// Freezes the node's processes.
    async fn pause(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError>;

    /// Thaws the node's processes.
    async fn resume(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError>;

    /// Stops the node gracefully (SIGTERM, SIGKILL after `grace`) and starts
    /// it again.
    async fn restart(&self, node: &NodeRef, grace: Duration) -> Result<NodeStatus, RuntimeError>;

    /// The node's output (stdout and stderr), the last `tail` lines or all.
    async fn logs(&self, node: &NodeRef, tail: Option<usize>) -> Result<Vec<u8>, RuntimeError>;

    /// Moves the node's wall clock to `offset_ms` from real time (0: back to real time)
    /// by the runtime's own mechanism, and returns once the change is in force. Only for
    /// runtimes whose prepared images say [`Capabilities::clock_by_runtime`] (Kubernetes
    /// with Chaos Mesh: a TimeChaos object); the default refuses.
    async fn set_clock(&self, node: &NodeRef, offset_ms: i64) -> Result<(), RuntimeError> {
        let _ = offset_ms;
        Err(RuntimeError::Unavailable {
            runtime: self.kind(),
            reason: format!(
                "the {} runtime has no clock mechanism of its own for node {}: clock faults \
                 go through libfaketime",
                self.kind(),
                node.name
            ),
        })
    }

    /// Removes the objects of `scope` (containers, networks, volumes; with
    /// [`CleanScope::All`] also untagged base images); with `remove_dirs`,
    /// also the host node folders recorded on the containers.
    async fn clean(
        &self,
        scope: &CleanScope,
        remove_dirs: bool,
    ) -> Result<CleanReport, RuntimeError>;

    /// Removes the objects of `run` from a non-async context (used by
    /// [`Cluster`]'s `Drop`); blocks the calling thread, never panics, logs
    /// what it could not remove.
    fn clean_blocking(&self, run: &RunId);
}
