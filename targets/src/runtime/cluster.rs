//! A running cluster and its node handles, on any [`Runtime`].
//!
//! [`Cluster`] is also the clean-up guard: call [`Cluster::teardown`] (also
//! after Ctrl-C); if it was not called, `Drop` removes the run's containers
//! and network, best effort and blocking.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::clock::{write_offset, NO_OFFSET};
use super::names::{CleanScope, NodeName, NodeRef, RunId};
use super::probe::{describe, wait_ready};
use super::spec::{ClusterSpec, NodeDirs, PreparedImage, ReadyProbe, NODES_MARKER};
use super::state::{NodeFacts, NodeStatus};
use super::{CleanReport, Runtime, RuntimeError};

/// How many log lines a readiness failure shows.
const LOG_TAIL_LINES: usize = 20;
/// Pause between two readiness probes of one node.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// A handle on one node; cheap to clone. Fixed facts are plain getters; the
/// lifecycle methods go to the runtime and return the status afterwards.
#[derive(Clone, Debug)]
pub struct Node {
    runtime: Arc<dyn Runtime>,
    node: NodeRef,
    ip: IpAddr,
    host: String,
    dirs: NodeDirs,
    ready: Option<ReadyProbe>,
}

impl Node {
    /// The node's name (also its hostname).
    pub fn name(&self) -> &NodeName {
        &self.node.name
    }

    /// Run id and name, as the runtime addresses the node.
    pub fn node_ref(&self) -> &NodeRef {
        &self.node
    }

    /// The container's name.
    pub fn container_name(&self) -> String {
        self.node.container_name()
    }

    /// The node's address as the runtime gave it once the node existed, at which the
    /// harness reaches it (clients, probes, agent): the fixed IP on Docker, the Pod's IP
    /// on Kubernetes.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// How the other nodes reach this one ([`super::AddressPlan::hosts`]): the fixed IP
    /// as text on Docker, the DNS name on Kubernetes.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Host folder mounted read-write at `/data`.
    pub fn data_dir(&self) -> &Path {
        &self.dirs.data
    }

    /// Host folder mounted read-only at `/faketime`; its file `rc` holds the
    /// node's clock offset.
    pub fn clock_dir(&self) -> &Path {
        &self.dirs.clock
    }

    /// Address of the readiness probe, if the node has one.
    pub fn ready_addr(&self) -> Option<SocketAddr> {
        self.ready
            .as_ref()
            .and_then(ReadyProbe::port)
            .map(|port| SocketAddr::from((self.ip, port)))
    }

    /// Current state, host pid and netns path (`/proc/<pid>/ns/net`).
    pub async fn status(&self) -> Result<NodeStatus, RuntimeError> {
        self.runtime.status(&self.node).await
    }

    /// Every fact about the node, with the current status.
    pub async fn facts(&self) -> Result<NodeFacts, RuntimeError> {
        Ok(NodeFacts {
            name: self.node.name.clone(),
            container: self.container_name(),
            ip: self.ip,
            data_dir: self.dirs.data.clone(),
            clock_dir: self.dirs.clock.clone(),
            status: self.status().await?,
        })
    }

    /// Starts the node if stopped (thaws it if paused). Does not wait for
    /// readiness: see [`Node::wait_ready`].
    pub async fn start(&self) -> Result<NodeStatus, RuntimeError> {
        self.runtime.start(&self.node).await
    }

    /// SIGKILLs the node's process; returns once it is gone.
    pub async fn kill(&self) -> Result<NodeStatus, RuntimeError> {
        self.runtime.kill(&self.node).await
    }

    /// Freezes the node (Docker: engine pause, the cgroup freezer; every
    /// process of the container stops, TCP handshakes still complete in the
    /// kernel but nothing is answered).
    pub async fn pause(&self) -> Result<NodeStatus, RuntimeError> {
        self.runtime.pause(&self.node).await
    }

    /// Thaws the node.
    pub async fn resume(&self) -> Result<NodeStatus, RuntimeError> {
        self.runtime.resume(&self.node).await
    }

    /// Stops the node with SIGTERM (SIGKILL after `grace`) and starts it again.
    pub async fn restart(&self, grace: Duration) -> Result<NodeStatus, RuntimeError> {
        self.runtime.restart(&self.node, grace).await
    }

    /// The node's output, the last `tail` lines or all of it.
    pub async fn logs(&self, tail: Option<usize>) -> Result<Vec<u8>, RuntimeError> {
        self.runtime.logs(&self.node, tail).await
    }

    /// Writes the node's clock offset (`+0`, `-30s`, `+1.5h`) atomically; the
    /// node sees it within about 1.5 s. Only meaningful when the image has
    /// clock faults ([`super::Capabilities::clock_faults`]).
    pub fn set_clock_offset(&self, offset: &str) -> Result<(), RuntimeError> {
        write_offset(&self.dirs.clock, offset).map_err(|e| RuntimeError::io(&self.dirs.clock, e))
    }

    /// Moves the node's clock to `offset_ms` from real time through the runtime's own
    /// mechanism ([`Runtime::set_clock`]); returns once the change is in force.
    pub async fn set_clock_by_runtime(&self, offset_ms: i64) -> Result<(), RuntimeError> {
        self.runtime.set_clock(&self.node, offset_ms).await
    }

    /// Waits until the readiness probe answers 200; returns how long it took.
    /// A node without probe is ready at once. On time-out the error names the
    /// node and shows its last log lines.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Duration, RuntimeError> {
        let Some(probe) = self.ready.as_ref() else {
            return Ok(Duration::ZERO);
        };
        match wait_ready(self.ip, probe, timeout, PROBE_INTERVAL).await {
            Ok(took) => Ok(took),
            Err(last_error) => {
                let log_tail = match self.logs(Some(LOG_TAIL_LINES)).await {
                    Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Err(e) => format!("(logs unavailable: {e})"),
                };
                let status = match self.status().await {
                    Ok(s) => format!("{:?}", s.state),
                    Err(e) => e.to_string(),
                };
                Err(RuntimeError::NotReady {
                    node: self.node.name.to_string(),
                    url: describe(self.ip, probe),
                    waited: timeout,
                    last_error: format!("{last_error}; node is {status}"),
                    log_tail,
                })
            }
        }
    }
}

/// A started cluster: its nodes and the clean-up guard of its run.
#[derive(Debug)]
pub struct Cluster {
    runtime: Arc<dyn Runtime>,
    spec: ClusterSpec,
    nodes: Vec<Node>,
    started_in: Duration,
    torn_down: AtomicBool,
}

impl Cluster {
    /// Validates `spec`, removes the leftovers it names, creates the node
    /// folders (with `rc` = `+0`), creates and starts every node and waits for
    /// all of them to be ready. On any failure the run's objects are removed
    /// before the error is returned.
    pub async fn start(
        runtime: Arc<dyn Runtime>,
        spec: ClusterSpec,
        image: &PreparedImage,
    ) -> Result<Cluster, RuntimeError> {
        spec.validate()?;
        let t0 = Instant::now();
        runtime.clean(&spec.leftovers, false).await?;
        prepare_dirs(&spec)?;
        let mut cluster = Cluster {
            runtime: runtime.clone(),
            spec,
            nodes: Vec::new(),
            started_in: Duration::ZERO,
            torn_down: AtomicBool::new(false),
        };
        // The nodes' addresses come from the runtime once they exist.
        let started = async {
            let addresses = runtime.create_cluster(&cluster.spec, image).await?;
            if addresses.len() != cluster.spec.nodes.len() {
                return Err(RuntimeError::AddressCount {
                    runtime: runtime.kind(),
                    nodes: cluster.spec.nodes.len(),
                    addresses: addresses.len(),
                });
            }
            cluster.nodes = cluster
                .spec
                .nodes
                .iter()
                .zip(addresses)
                .map(|(n, ip)| Node {
                    runtime: runtime.clone(),
                    node: NodeRef {
                        run: cluster.spec.run.clone(),
                        name: n.name.clone(),
                    },
                    ip,
                    host: n.host.clone(),
                    dirs: cluster.spec.node_dirs(&n.name),
                    ready: n.ready.clone(),
                })
                .collect();
            cluster.wait_ready(cluster.spec.ready_timeout).await
        }
        .await;
        if let Err(e) = started {
            if let Err(clean) = cluster.teardown().await {
                tracing::warn!("removing the failed cluster: {clean}");
            }
            return Err(e);
        }
        cluster.started_in = t0.elapsed();
        Ok(cluster)
    }

    /// The run id.
    pub fn run(&self) -> &RunId {
        &self.spec.run
    }

    /// The spec the cluster was started from.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The runtime hosting the cluster.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// The nodes, in spec order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Result<&Node, RuntimeError> {
        self.nodes
            .iter()
            .find(|n| n.name().as_str() == name)
            .ok_or_else(|| RuntimeError::UnknownNode(name.to_string()))
    }

    /// Time from the call of [`Cluster::start`] until every node was ready.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Waits for every node's readiness probe, all at once; the error names
    /// the first node (in spec order) that was not ready.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), RuntimeError> {
        let results = join_all(self.nodes.iter().map(|n| n.wait_ready(timeout))).await;
        let mut first = None;
        for (node, result) in self.nodes.iter().zip(results) {
            if let Err(e) = result {
                tracing::warn!("node {} not ready", node.name());
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Writes each node's log to `dir/<node>.log`; returns the files written.
    pub async fn collect_logs(&self, dir: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
        std::fs::create_dir_all(dir).map_err(|e| RuntimeError::io(dir, e))?;
        let mut written = Vec::new();
        for node in &self.nodes {
            let bytes = node.logs(None).await?;
            let path = dir.join(format!("{}.log", node.name()));
            std::fs::write(&path, bytes).map_err(|e| RuntimeError::io(&path, e))?;
            written.push(path);
        }
        Ok(written)
    }

    /// Removes the run's containers and network. The node folders stay in
    /// the run folder (see [`Cluster::remove_node_dirs`]). Safe to call more
    /// than once.
    pub async fn teardown(&self) -> Result<CleanReport, RuntimeError> {
        let report = self
            .runtime
            .clean(&CleanScope::Run(self.spec.run.clone()), false)
            .await?;
        self.torn_down.store(true, Ordering::SeqCst);
        Ok(report)
    }

    /// Deletes `<run_dir>/nodes` (data and clock dirs of every node).
    pub fn remove_node_dirs(&self) -> Result<(), RuntimeError> {
        let dir = self.spec.nodes_dir();
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RuntimeError::io(dir, e)),
            _ => Ok(()),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.torn_down.load(Ordering::SeqCst) {
            tracing::warn!(
                "cluster {} dropped without teardown; removing it now",
                self.spec.run
            );
            self.runtime.clean_blocking(&self.spec.run);
        }
    }
}

/// Creates `<run_dir>/nodes` with its marker, and each node's data and clock
/// dirs with `rc` = `+0` (libfaketime exits the node on an unparsable file), and
/// writes each node's files into its data dir.
fn prepare_dirs(spec: &ClusterSpec) -> Result<(), RuntimeError> {
    let nodes_dir = spec.nodes_dir();
    std::fs::create_dir_all(&nodes_dir).map_err(|e| RuntimeError::io(&nodes_dir, e))?;
    let marker = nodes_dir.join(NODES_MARKER);
    std::fs::write(&marker, format!("faultline run {}\n", spec.run))
        .map_err(|e| RuntimeError::io(&marker, e))?;
    for node in &spec.nodes {
        let dirs = spec.node_dirs(&node.name);
        for dir in [&dirs.data, &dirs.clock] {
            std::fs::create_dir_all(dir).map_err(|e| RuntimeError::io(dir, e))?;
        }
        write_offset(&dirs.clock, NO_OFFSET).map_err(|e| RuntimeError::io(&dirs.clock, e))?;
        for file in &node.files {
            let path = dirs.data.join(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| RuntimeError::io(parent, e))?;
            }
            std::fs::write(&path, &file.contents).map_err(|e| RuntimeError::io(&path, e))?;
        }
    }
    Ok(())
}
