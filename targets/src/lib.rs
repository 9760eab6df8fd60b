//! faultline-targets: the systems under test and where they run.
//!
//! [`runtime`] starts a cluster of nodes (Docker containers today) from a
//! node binary, with a fixed IP, a data dir and a clock dir per node, and
//! gives the campaign runner and the nemesis handles to start, kill, pause,
//! resume and inspect each node.
//!
//! # Targets
//!
//! A [`Target`] (module [`target`]) is a system under test as the campaign runner sees
//! it: the node command line for given cluster addresses, the readiness path, a
//! [`Client`] per node that maps every answer and transport error to ok / fail / info
//! ([`client`]: only a refused connection or an explicit `fail` answer is `fail`), whether
//! it offers compare-and-set, its planted faults, and the models it claims under given
//! settings. The bundled ones are [`raft_register::RaftRegister`] (linearizable) and
//! [`quorum_kv::QuorumKv`] (read-your-writes with R + W > N and unfaulted clocks; see its
//! module docs for why nothing stronger); what they share about their one program lives
//! in [`bundled`]. A third-party system is one more implementation ([`etcd::Etcd`]), or a
//! target file ([`file::TargetFile`], TOML, no Rust) whose client speaks faultline's HTTP
//! protocol or runs an adapter program ([`adapter_client`]). [`registry`] lists the
//! built-ins and finds a plan's target by name or path; the harness has no per-target
//! code.
//!
//! [`NemesisNode`] (module [`adapter`]) lets the nemesis act on a runtime node.
//!
//! # Starting a cluster
//!
//! The runner checks the engine first (the error says what is missing and
//! how to install it), prepares the image from the node binary, describes
//! each node, and keeps the [`runtime::Cluster`] as the clean-up guard:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use faultline_targets::runtime::{
//!     default_faketime_env, Cluster, ClusterSpec, DockerConfig, DockerRuntime, ImageSpec,
//!     NodeName, NodeSpec, ReadyProbe, RunId, Runtime, RuntimeError,
//! };
//!
//! async fn campaign() -> Result<(), RuntimeError> {
//!     let docker = DockerRuntime::connect(DockerConfig::default()).await?;
//!     docker.check().await?;
//!     let runtime: Arc<dyn Runtime> = Arc::new(docker);
//!
//!     let binary = "/work/main/target/release/faultline-node";
//!     let image = runtime.prepare_image(&ImageSpec::new(binary)).await?;
//!     let clock_env = if image.capabilities.clock_faults {
//!         default_faketime_env()
//!     } else {
//!         Vec::new() // clock faults unavailable: the nemesis must skip them
//!     };
//!
//!     let run = RunId::generate();
//!     let names = ["n1", "n2", "n3"].map(|n| NodeName::new(n)).into_iter();
//!     let names = names.collect::<Result<Vec<_>, _>>()?;
//!     // How the nodes will reach each other: fixed IPs on Docker.
//!     let plan = runtime.plan_addresses(&run, &names, 0)?;
//!     let mut spec = ClusterSpec::new(run, "/var/tmp/faultline/run-1", binary);
//!     spec.subnet = plan.subnet;
//!     let peers: Vec<String> = plan
//!         .hosts
//!         .iter()
//!         .enumerate()
//!         .map(|(i, host)| format!("{}={host}:7001", i + 1))
//!         .collect();
//!     for (i, (name, host)) in names.into_iter().zip(&plan.hosts).enumerate() {
//!         spec.nodes.push(NodeSpec {
//!             name,
//!             host: host.clone(),
//!             args: vec![
//!                 "raft-register".into(),
//!                 "--id".into(),
//!                 (i + 1).to_string(),
//!                 "--listen".into(),
//!                 "0.0.0.0:7001".into(),
//!                 "--peers".into(),
//!                 peers.join(","),
//!                 "--data-dir".into(),
//!                 "/data".into(),
//!             ],
//!             env: clock_env.clone(),
//!             ready: Some(ReadyProbe::health(7001)),
//!             files: Vec::new(),
//!         });
//!     }
//!
//!     let cluster = Cluster::start(runtime, spec, &image).await?;
//!     let n2 = cluster.node("n2")?;
//!     let status = n2.kill().await?; // SIGKILL, waits until gone
//!     assert!(status.pid.is_none());
//!     let status = n2.start().await?; // new pid, new netns: re-apply grudges
//!     println!("n2 netns now {:?}", status.netns_path);
//!     n2.wait_ready(Duration::from_secs(10)).await?;
//!     n2.set_clock_offset("+30s")?; // seen by n2 within ~1.5 s
//!
//!     cluster.collect_logs("/var/tmp/faultline/run-1/logs".as_ref()).await?;
//!     cluster.teardown().await?;
//!     Ok(())
//! }
//! ```
//!
//! # Host requirements
//!
//! A local Docker engine (API 1.41 or newer) on its unix socket (`docker.io`)
//! that this user may use (root or the `docker` group); `ldd` (`libc-bin`);
//! for clock faults Debian's `libfaketime` package; for node agents
//! (`runtime::AgentSpec`, [`agent`]) the host's `nft`, `iptables` and `tc`,
//! which go into the image; for the nemesis from the host instead, root and
//! `nsenter` (`util-linux`). Nothing is pulled from a registry: the image is
//! imported from a tar built here.
//!
//! # Where things are
//!
//! Decisions are pure and tested with literal data; the engine calls are
//! thin and live under `runtime/docker/`:
//!
//! - names, labels and clean-up filters: `runtime/names.rs`;
//! - subnet, gateway, node IPs, overlap check: `runtime/net.rs`;
//! - `ldd` parsing, rootfs file list, content tag, tar: `runtime/ldd.rs`,
//!   `runtime/rootfs.rs`;
//! - libfaketime environment and offsets: `runtime/clock.rs`;
//! - node states and what each action does in each: `runtime/state.rs`;
//! - the cluster guard and node handles (any runtime): `runtime/cluster.rs`.
//!
//! # Caveat for callers
//!
//! Never send traffic to a node IP after [`runtime::Cluster::teardown`]:
//! without the cluster's bridge, the host routes that private address to its
//! default gateway.

#![warn(missing_docs)]

pub mod adapter;
pub mod adapter_client;
pub mod agent;
pub mod bundled;
pub mod client;
pub mod etcd;
pub mod etcd_txn;
pub mod file;
pub mod nats;
pub mod quorum_kv;
pub mod raft_register;
pub mod registry;
pub mod runtime;
pub mod target;
pub mod zookeeper;

pub use adapter::NemesisNode;
pub use file::{FileError, TargetFile};
pub use registry::{builtin_targets, find_target, is_target_file, target_by_name, FindError};
pub use target::{
    check_txn_answer, cluster_token, mops_json, node_name, ClaimContext, Claims, Client,
    ClientContext, ClientOp, Completion, CompletionKind, DeployContext, Exposure, Mop, Program,
    Role, SwitchableFault, Target, TargetError, TxnSupport,
};
