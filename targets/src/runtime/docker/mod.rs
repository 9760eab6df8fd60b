//! The Docker runtime: the Engine API through `bollard` (version negotiated,
//! so engines from API 1.41 on work).
//!
//! Choices: kill is `SIGKILL` through the engine; pause is the engine's pause
//! (cgroup freezer: every process of the container stops and the engine
//! reports `paused`), not SIGSTOP; restart is the engine's restart with a
//! grace period. Node binaries are bind-mounted read-only; the image only
//! holds libraries.

mod clean;
mod create;
mod image;
mod node;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use async_trait::async_trait;
use bollard::{Docker, API_DEFAULT_VERSION};

use super::names::{CleanScope, NodeName, NodeRef, RunId};
use super::net::{Subnet, DEFAULT_SUBNET};
use super::spec::{AddressPlan, ClusterSpec, ImageSpec, PreparedImage};
use super::state::NodeStatus;
use super::{CleanReport, EngineInfo, Runtime, RuntimeError};

/// The engine's usual socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// Path of the engine's unix socket.
    pub socket: String,
    /// Timeout of one engine call, in seconds.
    pub timeout_secs: u64,
    /// Refuse to run unless the effective uid is 0 (the nemesis needs root
    /// for nsenter; turn off only for tools that just inspect or clean).
    pub require_root: bool,
}

impl Default for DockerConfig {
    /// The socket from `DOCKER_HOST` when it is `unix://...`, else
    /// `/var/run/docker.sock`; 120 s per call; root required.
    fn default() -> Self {
        let from_env = std::env::var("DOCKER_HOST").ok();
        DockerConfig {
            socket: socket_from_docker_host(from_env.as_deref()),
            timeout_secs: 120,
            require_root: true,
        }
    }
}

/// The socket path for a `DOCKER_HOST` value: the path of a `unix://` URL,
/// the default socket when unset, and the value itself otherwise (a TCP or
/// SSH engine is not supported and will be reported as a missing socket).
pub fn socket_from_docker_host(docker_host: Option<&str>) -> String {
    match docker_host.map(str::trim) {
        None | Some("") => DEFAULT_SOCKET.to_string(),
        Some(v) => v.strip_prefix("unix://").unwrap_or(v).to_string(),
    }
}

/// The effective uid from the text of `/proc/self/status` (second field of
/// the `Uid:` line).
pub fn effective_uid(proc_status: &str) -> Option<u32> {
    proc_status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The runtime on a local Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    config: DockerConfig,
}

impl DockerRuntime {
    /// Checks the host (root, socket) and connects, negotiating the API
    /// version. Each failure says what is missing and how to get it.
    pub async fn connect(config: DockerConfig) -> Result<Self, RuntimeError> {
        if config.require_root {
            let status = std::fs::read_to_string("/proc/self/status")
                .map_err(|e| RuntimeError::io("/proc/self/status", e))?;
            match effective_uid(&status) {
                Some(0) => {}
                Some(uid) => return Err(RuntimeError::NotRoot { uid }),
                None => {
                    return Err(RuntimeError::io(
                        "/proc/self/status",
                        std::io::Error::new(std::io::ErrorKind::InvalidData, "no Uid line"),
                    ))
                }
            }
        }
        let docker = connect_socket(&config).await?;
        Ok(DockerRuntime { docker, config })
    }

    /// The engine client, for callers that need a call this runtime does
    /// not wrap.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The configuration in use.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }
}

async fn connect_socket(config: &DockerConfig) -> Result<Docker, RuntimeError> {
    if !std::path::Path::new(&config.socket).exists() {
        return Err(RuntimeError::EngineSocketMissing {
            socket: config.socket.clone(),
        });
    }
    if let Err(e) = std::os::unix::net::UnixStream::connect(&config.socket) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            let uid = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| effective_uid(&s))
                .unwrap_or(u32::MAX);
            return Err(RuntimeError::EngineSocketDenied {
                socket: config.socket.clone(),
                uid,
            });
        }
    }
    let unreachable = |e: bollard::errors::Error| RuntimeError::EngineUnreachable {
        socket: config.socket.clone(),
        source: Box::new(e),
    };
    let docker =
        Docker::connect_with_unix(&config.socket, config.timeout_secs, API_DEFAULT_VERSION)
            .map_err(unreachable)?;
    // Bound the first exchange: a dead engine must not hang the harness.
    match tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version()).await {
        Ok(result) => result.map_err(unreachable),
        Err(_) => Err(RuntimeError::EngineUnreachable {
            socket: config.socket.clone(),
            source: "no answer within 10 s".into(),
        }),
    }
}

/// The subnet of the `attempt`-th try: [`DEFAULT_SUBNET`] with its third octet moved on
/// by `attempt` (another run, or another network, may hold the previous one).
fn shifted_subnet(attempt: u32) -> Result<Subnet, RuntimeError> {
    let base = DEFAULT_SUBNET.base().octets();
    // The third octet wraps: 256 tries come back to the start.
    let third = base[2].wrapping_add((attempt % 256) as u8);
    Ok(Subnet::new(
        Ipv4Addr::new(base[0], base[1], third, 0),
        DEFAULT_SUBNET.prefix(),
    )?)
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn kind(&self) -> &'static str {
        "docker"
    }

    async fn check(&self) -> Result<EngineInfo, RuntimeError> {
        let unreachable = |e: bollard::errors::Error| RuntimeError::EngineUnreachable {
            socket: self.config.socket.clone(),
            source: Box::new(e),
        };
        self.docker.ping().await.map_err(unreachable)?;
        let version = self.docker.version().await.map_err(unreachable)?;
        Ok(EngineInfo {
            runtime: "docker",
            version: version.version.unwrap_or_default(),
            api_version: self.docker.client_version().to_string(),
        })
    }

    async fn prepare_image(&self, spec: &ImageSpec) -> Result<PreparedImage, RuntimeError> {
        image::prepare_image(&self.docker, spec).await
    }

    async fn existing_image(&self, reference: &str) -> Result<PreparedImage, RuntimeError> {
        image::existing_image(&self.docker, reference).await
    }

    fn plan_addresses(
        &self,
        _run: &RunId,
        names: &[NodeName],
        attempt: u32,
    ) -> Result<AddressPlan, RuntimeError> {
        let subnet = shifted_subnet(attempt)?;
        let hosts = subnet
            .node_ips(names.len())?
            .into_iter()
            .map(|ip| ip.to_string())
            .collect();
        Ok(AddressPlan {
            subnet: Some(subnet),
            hosts,
        })
    }

    async fn create_cluster(
        &self,
        spec: &ClusterSpec,
        image: &PreparedImage,
    ) -> Result<Vec<IpAddr>, RuntimeError> {
        create::create_cluster(&self.docker, spec, image).await
    }

    async fn status(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        node::status(&self.docker, node).await
    }

    async fn start(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        node::act(&self.docker, node, super::state::Action::Start).await
    }

    async fn kill(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        node::act(&self.docker, node, super::state::Action::Kill).await
    }

    async fn pause(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        node::act(&self.docker, node, super::state::Action::Pause).await
    }

    async fn resume(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        node::act(&self.docker, node, super::state::Action::Resume).await
    }

    async fn restart(&self, node: &NodeRef, grace: Duration) -> Result<NodeStatus, RuntimeError> {
        node::restart(&self.docker, node, grace).await
    }

    async fn logs(&self, node: &NodeRef, tail: Option<usize>) -> Result<Vec<u8>, RuntimeError> {
        node::logs(&self.docker, node, tail).await
    }

    async fn clean(
        &self,
        scope: &CleanScope,
        remove_dirs: bool,
    ) -> Result<CleanReport, RuntimeError> {
        clean::clean(&self.docker, scope, remove_dirs).await
    }

    fn clean_blocking(&self, run: &RunId) {
        clean::clean_blocking(&self.config, run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths() {
        assert_eq!(socket_from_docker_host(None), "/var/run/docker.sock");
        assert_eq!(socket_from_docker_host(Some("")), "/var/run/docker.sock");
        assert_eq!(
            socket_from_docker_host(Some("unix:///run/user/1000/docker.sock")),
            "/run/user/1000/docker.sock"
        );
        assert_eq!(
            socket_from_docker_host(Some("tcp://10.0.0.2:2375")),
            "tcp://10.0.0.2:2375"
        );
    }

    #[test]
    fn uid_from_proc_status() {
        let text = "Name:\tcargo\nUmask:\t0022\nState:\tR (running)\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(text), Some(0));
        assert_eq!(effective_uid("Uid:\t0\t1000\t1000\t1000\n"), Some(1000));
        assert_eq!(effective_uid("Name:\tx\n"), None);
    }

    #[tokio::test]
    async fn missing_socket_is_explained() {
        let config = DockerConfig {
            socket: "/nonexistent/faultline-test.sock".into(),
            timeout_secs: 5,
            require_root: false,
        };
        let err = DockerRuntime::connect(config).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, RuntimeError::EngineSocketMissing { .. }));
        assert!(text.contains("/nonexistent/faultline-test.sock"), "{text}");
        assert!(text.contains("install docker.io"), "{text}");
        assert!(text.contains("systemctl start docker"), "{text}");
    }

    #[tokio::test]
    async fn dead_engine_is_explained() {
        // A socket file nobody listens on: connections are refused.
        let path = std::env::temp_dir().join(format!("faultline-dead-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let config = DockerConfig {
            socket: path.display().to_string(),
            timeout_secs: 5,
            require_root: false,
        };
        let err = DockerRuntime::connect(config).await.unwrap_err();
        let text = err.to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(
            matches!(err, RuntimeError::EngineUnreachable { .. }),
            "{text}"
        );
        assert!(
            text.starts_with(&format!(
                "Docker engine not reachable at {}",
                path.display()
            )),
            "{text}"
        );
        assert!(text.contains("systemctl start docker"), "{text}");
    }
}
