//! The errors of the nemesis crate.

use std::path::PathBuf;

/// The error a node operation (start, kill, pause, resume) returns: whatever the runtime
/// that implements [`crate::Node`] reports, boxed.
pub type NodeError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when planning or applying faults.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// A grudge or schedule needs more nodes than it was given.
    #[error("{what} needs at least {needed} nodes, got {got}")]
    TooFewNodes {
        /// What was being built (a topology, a schedule).
        what: &'static str,
        /// The smallest number of nodes that works.
        needed: usize,
        /// The number of nodes given.
        got: usize,
    },
    /// A node name that is not part of the cluster.
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    /// The same node name appears twice in the node list.
    #[error("node {0:?} appears more than once")]
    DuplicateNode(String),
    /// A schedule or fault setting that makes no sense (zero interval, loss above 100 %...).
    #[error("invalid setting: {0}")]
    InvalidConfig(String),
    /// The machine lacks what a requested fault needs.
    #[error("{}", missing_message(.0))]
    Missing(Vec<Missing>),
    /// A fault kind that the current capabilities cannot apply (e.g. delay without netem).
    #[error("cannot apply {fault}: {reason}")]
    Unsupported {
        /// The fault's name (`delay`, `partition`...).
        fault: &'static str,
        /// Why, and how to fix it.
        reason: String,
    },
    /// A node operation implemented by the runtime failed.
    #[error("{op} on node {node} failed: {source}")]
    Node {
        /// The node.
        node: String,
        /// The operation (`start`, `kill`, `pause`, `resume`).
        op: &'static str,
        /// The runtime's error.
        #[source]
        source: NodeError,
    },
    /// An external command could not be started or did not finish in time.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The program (e.g. `nsenter`).
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An external command ran and failed.
    #[error("{command} exited with {status}: {stderr}")]
    Command {
        /// The command line, for the message.
        command: String,
        /// Its exit status, as text.
        status: String,
        /// What it printed on standard error.
        stderr: String,
    },
    /// Reading or writing a file (the clock's timestamp file) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// One thing the machine lacks, with the way to get it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Missing {
    /// The fault family that needs it (`partition`, `clock`...).
    pub needed_by: String,
    /// What is missing (`nft or iptables`, `root`...).
    pub what: String,
    /// How to get it (`apt-get install nftables`...).
    pub how: String,
}

fn missing_message(missing: &[Missing]) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|m| format!("{} needs {} ({})", m.needed_by, m.what, m.how))
        .collect();
    format!(
        "the requested faults cannot run on this machine: {}",
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_message_names_every_item_and_the_fix() {
        let err = NemesisError::Missing(vec![
            Missing {
                needed_by: "partition".into(),
                what: "nft or iptables".into(),
                how: "apt-get install nftables".into(),
            },
            Missing {
                needed_by: "clock".into(),
                what: "libfaketime.so.1".into(),
                how: "apt-get install libfaketime".into(),
            },
        ]);
        assert_eq!(
            err.to_string(),
            "the requested faults cannot run on this machine: partition needs nft or iptables \
             (apt-get install nftables); clock needs libfaketime.so.1 (apt-get install libfaketime)"
        );
    }
}
