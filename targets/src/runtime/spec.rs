//! What the caller asks for: the image, the cluster and each node; and the
//! host folder layout derived from it. Validation is pure.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use super::names::{CleanScope, HarnessId, NodeName, RunId};
use super::net::{Subnet, DEFAULT_SUBNET};
use super::rootfs::{BINARY_DIR, FAKETIME_LIB};

/// Default repository of the node base image.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "faultline-base";
/// Default time a node has to answer its readiness probe.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How to build the node base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The node binary whose libraries go into the image (the binary itself
    /// does not: it is bind-mounted).
    pub binary: PathBuf,
    /// libfaketime on the host; `None` or a missing file builds an image
    /// without clock faults.
    pub faketime_lib: Option<PathBuf>,
    /// Repository of the image; the tag is the content hash.
    pub repository: String,
    /// The node agent (the `faultline` binary): its libraries and the fault tools
    /// ([`super::rootfs::AGENT_TOOLS`], the iptables extensions) go into the image.
    pub agent: Option<PathBuf>,
    /// Host directories (or files) carried whole into the image at the same paths,
    /// symlinks followed, with the libraries of every ELF file in them (a JVM and its
    /// class libraries). When [`ImageSpec::binary`] lies inside one of them, the image
    /// holds the program itself.
    pub trees: Vec<PathBuf>,
}

impl ImageSpec {
    /// The default spec for `binary`: Debian's libfaketime path and the
    /// `faultline-base` repository.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        ImageSpec {
            binary: binary.into(),
            faketime_lib: Some(PathBuf::from(FAKETIME_LIB)),
            repository: DEFAULT_IMAGE_REPOSITORY.to_string(),
            agent: None,
            trees: Vec::new(),
        }
    }
}

/// What a prepared image can do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Whether clock faults work: libfaketime is in the image, or the runtime moves
    /// clocks itself ([`Capabilities::clock_by_runtime`]); with libfaketime, subject to
    /// `clock_confirm_by_agent`.
    pub clock_faults: bool,
    /// Why clock faults are unavailable, when they are.
    pub clock_faults_unavailable: Option<String>,
    /// Whether the runtime moves the nodes' clocks itself ([`super::Runtime::set_clock`]:
    /// Kubernetes with Chaos Mesh's TimeChaos), for every program whatever its libc or
    /// language, in place of libfaketime: the nodes get no libfaketime settings, and a
    /// clock offset is held, not strobed.
    pub clock_by_runtime: bool,
    /// Clock faults through libfaketime are available only once each node's agent
    /// confirms that its running program has the library mapped
    /// ([`crate::agent::Faketime`]): the runner asks every node after the cluster is ready
    /// and refuses the campaign otherwise.
    pub clock_confirm_by_agent: bool,
    /// The node agent preloads libfaketime into the program itself (`--faketime-lib`),
    /// so the runner gives the nodes no faketime environment of its own.
    pub clock_preloaded_by_agent: bool,
}

impl Capabilities {
    /// Clock faults through libfaketime that the node agent preloads (`--faketime-lib`)
    /// from what `faultline agent-install` copied out of the agent image, to be
    /// confirmed by each node's agent once the program runs: the Kubernetes runtime's
    /// without Chaos Mesh.
    pub fn preloaded_by_agent() -> Capabilities {
        Capabilities {
            clock_faults: true,
            clock_faults_unavailable: None,
            clock_by_runtime: false,
            clock_confirm_by_agent: true,
            clock_preloaded_by_agent: true,
        }
    }
}

/// A node base image ready in the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImage {
    /// `repository:tag`, the tag being the content hash.
    pub reference: String,
    /// Whether an existing image with that tag was reused.
    pub reused: bool,
    /// The libraries put in the image.
    pub libraries: Vec<PathBuf>,
    /// What the image supports.
    pub capabilities: Capabilities,
}

impl PreparedImage {
    /// An image the runtime takes as it is (a user's own, `Program::Image`): nothing was
    /// built, no library list, and no clock faults (faultline does not add libfaketime
    /// to it).
    pub fn as_is(reference: &str) -> Self {
        PreparedImage {
            reference: reference.to_string(),
            reused: true,
            libraries: Vec::new(),
            capabilities: Capabilities {
                clock_faults: false,
                clock_faults_unavailable: Some(format!(
                    "{reference} is used as it is: faultline does not add libfaketime to it"
                )),
                ..Capabilities::default()
            },
        }
    }
}

/// How to tell that a node is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyProbe {
    /// `GET http://<ip>:<port><path>` answers 200.
    Http {
        /// The TCP port.
        port: u16,
        /// The path, for example `/health`.
        path: String,
    },
    /// A TCP connection to `<ip>:<port>` opens.
    Tcp {
        /// The TCP port.
        port: u16,
    },
    /// A TCP connection to `<ip>:<port>` opens, `send` is written, and what the node
    /// answers (read until it closes, at most 64 KiB) contains `expect`: a line protocol's
    /// health word (ZooKeeper's `srvr`, whose answer has `Mode:` only while the server
    /// serves).
    TcpExchange {
        /// The TCP port.
        port: u16,
        /// The bytes written once connected.
        send: String,
        /// The text the answer must contain.
        expect: String,
    },
    /// A command run on the host exits 0 (its arguments already name the node).
    Command {
        /// The program and its arguments.
        argv: Vec<String>,
    },
}

impl ReadyProbe {
    /// `GET /health` on `port`.
    pub fn health(port: u16) -> Self {
        ReadyProbe::Http {
            port,
            path: "/health".to_string(),
        }
    }

    /// The port the probe connects to, if it connects to the node.
    pub fn port(&self) -> Option<u16> {
        match self {
            ReadyProbe::Http { port, .. }
            | ReadyProbe::Tcp { port }
            | ReadyProbe::TcpExchange { port, .. } => Some(*port),
            ReadyProbe::Command { .. } => None,
        }
    }
}

/// How the nodes of a cluster will reach each other, decided by the runtime before they
/// exist ([`super::Runtime::plan_addresses`]): the harness builds every node's command
/// line (its peer list) from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPlan {
    /// The subnet of the network the runtime creates with a fixed address per node
    /// (Docker's bridge); `None` when the platform gives the nodes their addresses
    /// (Kubernetes Pods, reached by DNS name).
    pub subnet: Option<Subnet>,
    /// Per node, in order: the host (an IP address or a DNS name) by which the other
    /// nodes, and the node itself, reach it.
    pub hosts: Vec<String>,
}

/// One node: generic, the runtime knows nothing about the system under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Name and hostname.
    pub name: NodeName,
    /// How the other nodes reach this one: from the runtime's [`AddressPlan`] (with a
    /// subnet, the node's fixed IP in it; else a name the platform resolves).
    pub host: String,
    /// Arguments given to the node binary.
    pub args: Vec<String>,
    /// Environment (for example [`super::clock::default_faketime_env`]).
    pub env: Vec<(String, String)>,
    /// Readiness probe; `None` means ready once started.
    pub ready: Option<ReadyProbe>,
    /// Files written into the node's data folder before it first starts (a
    /// configuration file the program reads at start).
    pub files: Vec<NodeFile>,
}

/// A file a node's program finds in its data folder when it first starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    /// Its path relative to the data folder (`zoo.cfg`, `zk/myid`); no `..`, not
    /// absolute.
    pub path: PathBuf,
    /// Its contents.
    pub contents: String,
}

impl NodeFile {
    /// A file at `path` (relative to the data folder) holding `contents`.
    pub fn new(path: impl Into<PathBuf>, contents: impl Into<String>) -> Self {
        NodeFile {
            path: path.into(),
            contents: contents.into(),
        }
    }

    /// Whether the path stays inside the data folder: relative, made of plain names.
    pub fn is_contained(&self) -> bool {
        !self.path.as_os_str().is_empty()
            && self
                .path
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
    }
}

impl NodeSpec {
    /// The node's fixed IP: its host read as an IPv4 address (what a runtime with a
    /// subnet needs).
    pub fn fixed_ip(&self) -> Result<Ipv4Addr, SpecError> {
        self.host.parse().map_err(|_| SpecError::NotAnIp {
            node: self.name.to_string(),
            host: self.host.clone(),
        })
    }
}

/// How the nodes of a cluster run under a node agent (`faultline agent`), which
/// supervises each node's program and carries out its faults from inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// The `faultline` binary on the host, bind-mounted read-only at
    /// [`super::rootfs::AGENT_MOUNT`] as every node's entry point.
    pub binary: PathBuf,
    /// The run's token: every control request must carry it.
    pub token: String,
    /// The port the agents listen on.
    pub port: u16,
    /// The uid and gid the node's program runs as (the harness's user, so that the
    /// files it writes in the run folder stay that user's); `None`: root.
    pub child_user: Option<(u32, u32)>,
}

/// The whole cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The run these nodes belong to.
    pub run: RunId,
    /// Host folder of the run; node dirs go to `<run_dir>/nodes/<name>/`.
    pub run_dir: PathBuf,
    /// The subnet of the network the runtime creates, with each node's fixed IP in it
    /// ([`AddressPlan::subnet`]); `None` when the platform addresses the nodes.
    pub subnet: Option<Subnet>,
    /// Whether the network is internal (no route to the outside world; the
    /// host still reaches the nodes through the bridge).
    pub internal: bool,
    /// The node binary, bind-mounted read-only at `/usr/local/bin/<file name>`
    /// and run with each node's arguments. Unused when [`ClusterSpec::image_program`].
    pub binary: PathBuf,
    /// The image holds the program: nothing is bind-mounted but the data and clock
    /// folders, and each node's arguments are the container's command (after the image's
    /// entrypoint, if it has one).
    pub image_program: bool,
    /// The binary is in the base image already, at its own path (carried with a tree,
    /// [`ImageSpec::trees`]): it is run there and nothing is bind-mounted for it.
    pub binary_in_image: bool,
    /// The nodes.
    pub nodes: Vec<NodeSpec>,
    /// How long every node has to become ready.
    pub ready_timeout: Duration,
    /// Which leftovers to remove before starting.
    pub leftovers: CleanScope,
    /// The harness process that owns the run (recorded in every label, so that
    /// `faultline clean` leaves a live run alone).
    pub harness: HarnessId,
    /// Run every node under a node agent; `None`: the node's program is the entry point
    /// and faults come from the host.
    pub agent: Option<AgentSpec>,
}

impl ClusterSpec {
    /// A spec with the defaults: subnet [`DEFAULT_SUBNET`], internal network,
    /// 20 s readiness timeout, the leftovers of runs whose harness is gone removed
    /// first, owned by this process.
    pub fn new(run: RunId, run_dir: impl Into<PathBuf>, binary: impl Into<PathBuf>) -> Self {
        ClusterSpec {
            run,
            run_dir: run_dir.into(),
            subnet: Some(DEFAULT_SUBNET),
            internal: true,
            binary: binary.into(),
            image_program: false,
            binary_in_image: false,
            nodes: Vec::new(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            leftovers: CleanScope::orphans(),
            harness: HarnessId::current(),
            agent: None,
        }
    }

    /// Where the binary appears inside a node: `/usr/local/bin/<file name>`, or its own
    /// path when the image holds it ([`ClusterSpec::binary_in_image`]).
    pub fn binary_mount(&self) -> Result<String, SpecError> {
        if self.binary_in_image {
            return self
                .binary
                .to_str()
                .map(str::to_string)
                .ok_or_else(|| SpecError::Binary(self.binary.clone()));
        }
        let name = self
            .binary
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| SpecError::Binary(self.binary.clone()))?;
        Ok(format!("{BINARY_DIR}/{name}"))
    }

    /// Folder holding every node's dirs: `<run_dir>/nodes`.
    pub fn nodes_dir(&self) -> PathBuf {
        self.run_dir.join(NODES_DIR)
    }

    /// The host dirs of node `name`.
    pub fn node_dirs(&self, name: &NodeName) -> NodeDirs {
        node_dirs(&self.run_dir, name)
    }

    /// Checks the spec: absolute paths, at least one node, unique names, unique hosts
    /// (with a subnet: IPs that are node addresses of it).
    pub fn validate(&self) -> Result<(), SpecError> {
        if !self.run_dir.is_absolute() {
            return Err(SpecError::RelativePath(self.run_dir.clone()));
        }
        if !self.image_program && !self.binary.is_absolute() {
            return Err(SpecError::RelativePath(self.binary.clone()));
        }
        let mounted: &[&PathBuf] = if self.image_program {
            &[&self.run_dir]
        } else {
            &[&self.run_dir, &self.binary]
        };
        for path in mounted {
            if path.to_string_lossy().contains(':') {
                return Err(SpecError::ColonInPath(path.to_path_buf()));
            }
        }
        if !self.image_program {
            self.binary_mount()?;
        }
        if self.nodes.is_empty() {
            return Err(SpecError::NoNodes);
        }
        let mut names = HashSet::new();
        let mut hosts = HashSet::new();
        for node in &self.nodes {
            if !names.insert(&node.name) {
                return Err(SpecError::DuplicateName(node.name.to_string()));
            }
            if node.host.is_empty() {
                return Err(SpecError::NoHost(node.name.to_string()));
            }
            if !hosts.insert(&node.host) {
                return Err(SpecError::DuplicateHost(node.host.clone()));
            }
            if let Some(f) = node.files.iter().find(|f| !f.is_contained()) {
                return Err(SpecError::NodeFileOutside {
                    node: node.name.to_string(),
                    path: f.path.clone(),
                });
            }
            if let Some(subnet) = &self.subnet {
                let ip = node.fixed_ip()?;
                if !subnet.is_node_address(ip) {
                    return Err(SpecError::IpOutsideSubnet {
                        node: node.name.to_string(),
                        ip,
                        subnet: subnet.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Name of the folder under the run dir that holds the node dirs.
pub const NODES_DIR: &str = "nodes";
/// Marker file written into `<run_dir>/nodes`; `clean` only deletes a nodes
/// folder that holds it.
pub const NODES_MARKER: &str = ".faultline-nodes";

/// A node's host folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDirs {
    /// Mounted read-write at `/data`.
    pub data: PathBuf,
    /// Mounted read-only at `/faketime`; holds `rc`.
    pub clock: PathBuf,
}

/// The host folders of node `name` in `run_dir`:
/// `<run_dir>/nodes/<name>/data` and `<run_dir>/nodes/<name>/faketime`.
pub fn node_dirs(run_dir: &Path, name: &NodeName) -> NodeDirs {
    let base = run_dir.join(NODES_DIR).join(name.as_str());
    NodeDirs {
        data: base.join("data"),
        clock: base.join("faketime"),
    }
}

/// An inconsistent cluster spec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    /// A path that must be absolute is not.
    #[error("{0} must be an absolute path")]
    RelativePath(PathBuf),
    /// A bind-mounted path holds `:`, which the engine's bind syntax cannot
    /// express.
    #[error("{0} contains ':', which cannot be bind-mounted")]
    ColonInPath(PathBuf),
    /// The binary path has no usable file name.
    #[error("node binary {0} has no file name")]
    Binary(PathBuf),
    /// No nodes.
    #[error("a cluster needs at least one node")]
    NoNodes,
    /// Two nodes share a name.
    #[error("two nodes are named {0}")]
    DuplicateName(String),
    /// Two nodes share a host.
    #[error("two nodes have the host {0}")]
    DuplicateHost(String),
    /// A node has no host.
    #[error("node {0} has no host")]
    NoHost(String),
    /// A node's host is not an IPv4 address where a fixed address is needed.
    #[error("node {node}: {host:?} is not an IPv4 address (the cluster has a subnet)")]
    NotAnIp {
        /// The node.
        node: String,
        /// Its host.
        host: String,
    },
    /// The runtime needs a subnet (fixed node addresses) and the spec has none.
    #[error("this runtime gives each node a fixed IP in a subnet: the cluster spec needs one")]
    NoSubnet,
    /// A node file's path leaves the node's data folder.
    #[error("node {node}: file {path} must be a relative path inside the data folder")]
    NodeFileOutside {
        /// The node.
        node: String,
        /// The file's path.
        path: PathBuf,
    },
    /// A node's IP is not a node address of the subnet.
    #[error(
        "node {node}: {ip} is not a usable address of {subnet} (not network, gateway or broadcast)"
    )]
    IpOutsideSubnet {
        /// The node.
        node: String,
        /// Its IP.
        ip: Ipv4Addr,
        /// The subnet.
        subnet: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ip: [u8; 4]) -> NodeSpec {
        NodeSpec {
            name: NodeName::new(name).unwrap(),
            host: Ipv4Addr::from(ip).to_string(),
            args: vec![],
            env: vec![],
            ready: Some(ReadyProbe::health(7001)),
            files: Vec::new(),
        }
    }

    fn spec() -> ClusterSpec {
        let mut s = ClusterSpec::new(
            RunId::new("t1").unwrap(),
            "/runs/t1",
            "/build/faultline-node",
        );
        s.nodes = vec![node("n1", [10, 217, 93, 11]), node("n2", [10, 217, 93, 12])];
        s
    }

    #[test]
    fn defaults_and_layout() {
        let s = spec();
        assert_eq!(s.subnet, Some("10.217.93.0/24".parse().unwrap()));
        assert!(s.internal);
        assert_eq!(s.leftovers, CleanScope::orphans());
        assert_eq!(s.harness, HarnessId::current());
        assert_eq!(
            s.binary_mount(),
            Ok("/usr/local/bin/faultline-node".to_string())
        );
        assert_eq!(s.nodes_dir(), PathBuf::from("/runs/t1/nodes"));
        let dirs = s.node_dirs(&NodeName::new("n2").unwrap());
        assert_eq!(dirs.data, PathBuf::from("/runs/t1/nodes/n2/data"));
        assert_eq!(dirs.clock, PathBuf::from("/runs/t1/nodes/n2/faketime"));
        assert_eq!(s.nodes[0].fixed_ip(), Ok(Ipv4Addr::new(10, 217, 93, 11)));
        assert_eq!(s.validate(), Ok(()));
        let image = ImageSpec::new("/b/x");
        assert_eq!(image.repository, "faultline-base");
        assert_eq!(image.faketime_lib, Some(PathBuf::from(FAKETIME_LIB)));
    }

    #[test]
    fn validation_errors() {
        let mut s = spec();
        s.nodes[1].name = NodeName::new("n1").unwrap();
        assert_eq!(s.validate(), Err(SpecError::DuplicateName("n1".into())));

        let mut s = spec();
        s.nodes[1].host = s.nodes[0].host.clone();
        assert_eq!(
            s.validate(),
            Err(SpecError::DuplicateHost("10.217.93.11".into()))
        );

        let mut s = spec();
        s.nodes[1].host = "10.217.93.1".into();
        assert!(matches!(
            s.validate(),
            Err(SpecError::IpOutsideSubnet { .. })
        ));
        s.nodes[1].host = "10.9.9.9".into();
        assert!(matches!(
            s.validate(),
            Err(SpecError::IpOutsideSubnet { .. })
        ));
        s.nodes[1].host = "n2.faultline-t1.default.svc".into();
        assert_eq!(
            s.validate(),
            Err(SpecError::NotAnIp {
                node: "n2".into(),
                host: "n2.faultline-t1.default.svc".into()
            })
        );
        // Without a subnet (addresses from the platform) a DNS name is a host.
        s.subnet = None;
        assert_eq!(s.validate(), Ok(()));
        s.nodes[1].host = String::new();
        assert_eq!(s.validate(), Err(SpecError::NoHost("n2".into())));

        let mut s = spec();
        s.nodes.clear();
        assert_eq!(s.validate(), Err(SpecError::NoNodes));

        let mut s = spec();
        s.run_dir = PathBuf::from("runs");
        assert_eq!(s.validate(), Err(SpecError::RelativePath("runs".into())));

        let mut s = spec();
        s.run_dir = PathBuf::from("/runs/a:b");
        assert_eq!(
            s.validate(),
            Err(SpecError::ColonInPath("/runs/a:b".into()))
        );

        let mut s = spec();
        s.binary = PathBuf::from("/");
        assert_eq!(s.validate(), Err(SpecError::Binary("/".into())));
    }

    #[test]
    fn node_files_stay_inside_the_data_folder() {
        assert!(NodeFile::new("zoo.cfg", "").is_contained());
        assert!(NodeFile::new("zk/myid", "1").is_contained());
        for bad in ["", "/etc/passwd", "../x", "zk/../../x", "./zoo.cfg"] {
            assert!(!NodeFile::new(bad, "").is_contained(), "{bad:?}");
        }
        let mut spec = spec();
        spec.nodes[0].files = vec![NodeFile::new("../escape", "x")];
        assert!(matches!(
            spec.validate(),
            Err(SpecError::NodeFileOutside { .. })
        ));
        spec.nodes[0].files = vec![NodeFile::new("zk/myid", "1\n")];
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn a_binary_in_the_image_runs_at_its_own_path() {
        let mut spec = ClusterSpec::new(
            RunId::new("r1").unwrap(),
            "/tmp/run",
            "/usr/lib/jvm/j/bin/java",
        );
        assert_eq!(spec.binary_mount().unwrap(), "/usr/local/bin/java");
        spec.binary_in_image = true;
        assert_eq!(spec.binary_mount().unwrap(), "/usr/lib/jvm/j/bin/java");
    }
}
