//! The built-in targets, and how a plan's `--target` finds its target: a built-in by name,
//! or a target file by path (see [`crate::file`]).

use std::path::Path;
use std::sync::Arc;

use crate::etcd::Etcd;
use crate::file::{FileError, TargetFile};
use crate::nats::Nats;
use crate::quorum_kv::QuorumKv;
use crate::raft_register::RaftRegister;
use crate::target::{Target, TargetError};
use crate::zookeeper::ZooKeeper;

/// The targets compiled into faultline.
pub fn builtin_targets() -> Vec<Arc<dyn Target>> {
    vec![
        Arc::new(RaftRegister),
        Arc::new(QuorumKv),
        Arc::new(Etcd),
        Arc::new(Nats),
        Arc::new(ZooKeeper),
    ]
}

/// The built-in target called `name`.
pub fn target_by_name(name: &str) -> Result<Arc<dyn Target>, TargetError> {
    let all = builtin_targets();
    let known = all
        .iter()
        .map(|t| t.name().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    all.into_iter()
        .find(|t| t.name() == name)
        .ok_or(TargetError::Unknown {
            name: name.to_string(),
            known,
        })
}

/// Whether a `--target` value names a file rather than a built-in: it ends in `.toml` or
/// holds a `/`.
pub fn is_target_file(spec: &str) -> bool {
    spec.ends_with(".toml") || spec.contains('/')
}

/// Why `--target` found nothing.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// No built-in has this name.
    #[error(transparent)]
    Unknown(#[from] TargetError),
    /// The target file is invalid.
    #[error(transparent)]
    File(#[from] FileError),
}

/// The target `spec` names: a target file when [`is_target_file`], else a built-in.
/// `known_models` are the model names a file's claims may use.
pub fn find_target(spec: &str, known_models: &[&str]) -> Result<Arc<dyn Target>, FindError> {
    if is_target_file(spec) {
        let t = TargetFile::load(Path::new(spec), known_models)?;
        Ok(Arc::new(t))
    } else {
        Ok(target_by_name(spec)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_found_by_name_and_unknown_ones_are_listed() {
        for name in ["raft-register", "quorum-kv", "etcd", "nats", "zookeeper"] {
            assert_eq!(
                target_by_name(name).map(|t| t.name().to_string()).ok(),
                Some(name.to_string())
            );
        }
        let err = target_by_name("cassandra")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("raft-register, quorum-kv, etcd, nats, zookeeper"),
            "{err}"
        );
        assert!(is_target_file("./x.toml") && is_target_file("dir/x"));
        assert!(!is_target_file("etcd"));
    }
}
