//! Choosing the runtime that hosts a run's nodes: [`RuntimeKind`] (a plan's `runtime`,
//! `--runtime`) and [`connect`], the one place that turns it into a [`Runtime`], so that
//! the harness never names an implementation.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::docker::{DockerConfig, DockerRuntime};
use super::error::RuntimeError;
use super::kube::{KubeConfig, KubeRuntime};
use super::{EngineInfo, Runtime};

/// Which runtime hosts the nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Containers on this machine's Docker engine (the default).
    #[default]
    Docker,
    /// Pods on a Kubernetes cluster (see docs/kubernetes.md).
    Kubernetes,
}

impl RuntimeKind {
    /// Every kind, in the order `--help` lists them.
    pub const ALL: [RuntimeKind; 2] = [RuntimeKind::Docker, RuntimeKind::Kubernetes];

    /// Whether every node runs under the node agent, whatever its image: Kubernetes
    /// copies the agent into each Pod by an init container; Docker mounts it only next
    /// to a host binary (an image's own program runs as the image says).
    pub fn agent_in_any_image(self) -> bool {
        match self {
            RuntimeKind::Docker => false,
            RuntimeKind::Kubernetes => true,
        }
    }

    /// Whether the runtime may move the nodes' clocks itself, for programs libfaketime
    /// cannot reach (Go programs such as etcd): Kubernetes, when Chaos Mesh's TimeChaos
    /// is installed (known once connected: [`super::Capabilities::clock_by_runtime`]).
    pub fn may_move_clocks(self) -> bool {
        match self {
            RuntimeKind::Docker => false,
            RuntimeKind::Kubernetes => true,
        }
    }

    /// The name used in plans, flags and run.json.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "docker",
            RuntimeKind::Kubernetes => "kubernetes",
        }
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        RuntimeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| format!("unknown runtime {s:?}: expected docker or kubernetes"))
    }
}

/// How to reach the runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Which runtime.
    pub kind: RuntimeKind,
    /// Whether the harness must be root (faults from the host enter the nodes'
    /// namespaces); refused with [`RuntimeError::NotRoot`] otherwise. (Docker only: on
    /// Kubernetes faults always go through the agents.)
    pub require_root: bool,
    /// Kubernetes: an API URL that needs no credentials (`--kube-api`, e.g. `kubectl
    /// proxy`'s); `None`: `FAULTLINE_KUBE_API`, else the kubeconfig (`KUBECONFIG`,
    /// `~/.kube/config`) or the in-cluster service account.
    pub kube_api: Option<String>,
    /// Kubernetes: the namespace of the run's objects; `None`: `FAULTLINE_NAMESPACE`, else
    /// the kubeconfig context's, else `default`.
    pub namespace: Option<String>,
    /// Kubernetes: the image the node Pods copy the agent from (`k8s_agent_image`).
    pub agent_image: Option<String>,
    /// Kubernetes: one node per host (required Pod anti-affinity).
    pub anti_affinity: bool,
}

/// Connects to the runtime `options` names and checks that it is usable: the runtime
/// and the facts of its engine. The error says what is missing and how to get it.
pub async fn connect(
    options: &RuntimeOptions,
) -> Result<(Arc<dyn Runtime>, EngineInfo), RuntimeError> {
    match options.kind {
        RuntimeKind::Docker => {
            let docker = DockerRuntime::connect(DockerConfig {
                require_root: options.require_root,
                ..DockerConfig::default()
            })
            .await?;
            let engine = docker.check().await?;
            Ok((Arc::new(docker), engine))
        }
        RuntimeKind::Kubernetes => {
            let mut config = KubeConfig::new(options.kube_api.as_deref());
            if let Some(ns) = &options.namespace {
                config.namespace = Some(ns.clone());
            }
            config.agent_image = options.agent_image.clone();
            config.anti_affinity = options.anti_affinity;
            let kube = KubeRuntime::connect(config).await?;
            let engine = kube.check().await?;
            Ok((Arc::new(kube), engine))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_and_print_by_name() {
        for k in RuntimeKind::ALL {
            assert_eq!(k.as_str().parse::<RuntimeKind>(), Ok(k));
            assert_eq!(
                serde_json::to_value(k).expect("json"),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(RuntimeKind::default(), RuntimeKind::Docker);
        assert_eq!(
            "k8s".parse::<RuntimeKind>(),
            Err("unknown runtime \"k8s\": expected docker or kubernetes".into())
        );
    }

    #[tokio::test]
    async fn an_unreachable_kubernetes_api_is_a_setup_error_saying_what_to_run() {
        // A port nothing listens on: bind one, then let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let err = connect(&RuntimeOptions {
            kind: RuntimeKind::Kubernetes,
            kube_api: Some(format!("http://127.0.0.1:{port}")),
            ..RuntimeOptions::default()
        })
        .await
        .expect_err("refused");
        assert!(err.is_setup_error());
        let text = err.to_string();
        assert!(text.contains("kubectl proxy"), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    }
}
