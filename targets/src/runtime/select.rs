//! Choosing the runtime that hosts a run's nodes: [`RuntimeKind`] (a plan's `runtime`,
//! `--runtime`) and [`connect`], the one place that turns it into a [`Runtime`], so that
//! the harness never names an implementation.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::docker::{DockerConfig, DockerRuntime};
use super::error::RuntimeError;
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
    /// namespaces); refused with [`RuntimeError::NotRoot`] otherwise.
    pub require_root: bool,
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
        RuntimeKind::Kubernetes => Err(RuntimeError::Unavailable {
            runtime: RuntimeKind::Kubernetes.as_str(),
            reason: "this build runs campaigns on Docker only; `faultline k8s manifest` \
                     prints the Kubernetes objects of a plan (see docs/kubernetes.md)"
                .into(),
        }),
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
    async fn kubernetes_is_refused_as_a_setup_error_naming_what_exists() {
        let err = connect(&RuntimeOptions {
            kind: RuntimeKind::Kubernetes,
            require_root: false,
        })
        .await
        .expect_err("refused");
        assert!(err.is_setup_error());
        assert!(err.to_string().contains("faultline k8s manifest"), "{err}");
    }
}
