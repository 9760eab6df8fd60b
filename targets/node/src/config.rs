//! Command-line arguments shared by both modes, the peer list and the switchable faults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Arguments every node takes, whichever mode it runs.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// This node's id (a positive integer; the node is called `n<ID>`).
    #[arg(long)]
    pub id: u64,
    /// Address the HTTP server binds, e.g. `0.0.0.0:7001` in a container or `127.0.0.1:7001`.
    #[arg(long)]
    pub listen: String,
    /// Every node of the cluster, this one included: `1=HOST:PORT,2=HOST:PORT,...`.
    /// Other nodes are reached at these addresses (container IPs with the same port, or
    /// loopback with distinct ports).
    #[arg(long, value_parser = parse_peers)]
    pub peers: Peers,
    /// Directory holding this node's persistent state (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Switch on a fault (repeatable). Off by default; see `--help` of each mode.
    #[arg(long = "fault", value_enum)]
    pub faults: Vec<Fault>,
    /// How long a client request may wait for its outcome before it is answered `unknown`.
    #[arg(long, default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// The cluster's peer token (16 to 1024 printable ASCII characters, the same on every
    /// node): node-to-node requests carry it and need it. Prefer the environment variable
    /// or a file, which do not show in `ps`.
    #[arg(long, env = "FAULTLINE_PEER_TOKEN", hide_env_values = true)]
    pub peer_token: Option<String>,
    /// A file whose first line is the cluster's peer token (instead of `--peer-token`).
    #[arg(long)]
    pub peer_token_file: Option<PathBuf>,
}

impl NodeArgs {
    /// The node's name as it appears in answers: `n<ID>`.
    pub fn name(&self) -> String {
        format!("n{}", self.id)
    }

    /// The cluster's peer token, from the flag, the environment or the file.
    pub fn token(&self) -> Result<crate::peer::PeerToken, crate::peer::TokenError> {
        crate::peer::PeerToken::load(self.peer_token.as_deref(), self.peer_token_file.as_deref())
    }

    /// Whether `fault` was switched on.
    pub fn has(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }
}

/// The cluster's members: id -> `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers(pub BTreeMap<u64, String>);

/// Parses `1=HOST:PORT,2=HOST:PORT`.
pub fn parse_peers(s: &str) -> Result<Peers, String> {
    let mut map = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("peer `{part}` is not ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("peer id `{id}` is not a number"))?;
        if id == 0 {
            return Err("peer ids start at 1".to_owned());
        }
        let addr = addr.trim();
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("peer address `{addr}` has no :PORT"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("peer address `{addr}` is not HOST:PORT"));
        }
        if map.insert(id, addr.to_owned()).is_some() {
            return Err(format!("peer id {id} appears twice"));
        }
    }
    if map.is_empty() {
        return Err("at least one peer is needed".to_owned());
    }
    Ok(Peers(map))
}

/// A deliberately planted bug, switched on with `--fault NAME`. Each one breaks a specific
/// guarantee so that a checker can be shown catching a real violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Fault {
    /// raft-register: every node answers reads from its own applied state, skipping
    /// ReadIndex and without forwarding to the leader. A deposed leader, a lagging or
    /// partitioned follower serve stale values. Breaks linearizability (the linearizable
    /// checker catches it).
    StaleReads,
    /// raft-register: the leader acknowledges a write as soon as it is appended to its own
    /// log, before a majority has it. A leader cut off from the majority acks writes that
    /// are later lost. Breaks linearizability (a read misses an acknowledged write).
    EarlyAck,
    /// raft-register: log records are never flushed nor fsynced; they stay in a process
    /// buffer (1 MiB) until it fills. A kill loses the tail, including acknowledged writes
    /// and votes. Breaks durability, seen by the linearizable checker after kill faults.
    NoFsync,
    /// raft-register: the leader serves reads from local state while a lease measured with
    /// the wall clock (`SystemTime`) holds. A clock jump backwards (libfaketime) extends the
    /// lease past a new leader's election, so stale values are read. Breaks linearizability
    /// under clock faults only.
    LeaseReads,
    /// raft-register: the node that receives a transaction evaluates its reads on its own
    /// applied state when the request arrives (no ReadIndex, no forwarding of the reads);
    /// only its writes and appends go through the log, as one entry. Breaks
    /// serializability (read skew, G-single; stale reads across real time).
    TxnStaleReads,
    /// raft-register: each micro-operation of a transaction is its own log entry, proposed
    /// once the previous one is applied, so other transactions interleave. Breaks atomicity
    /// (fractured reads, G-single).
    TxnSplit,
    /// raft-register: an append is carried out as a read of the key's list on the
    /// receiving node's applied state and a plain write of the list with the value added;
    /// concurrent appends overwrite each other (lost update).
    TxnLostUpdate,
    /// quorum-kv: read quorum forced to 1; reads may miss the latest write.
    /// Breaks read-your-writes / monotonic reads (session checkers) and linearizability.
    R1,
    /// quorum-kv: write quorum forced to 1; a write is acknowledged by the coordinator alone.
    /// With a kill or partition, reads miss acknowledged writes (session checkers, linearizable).
    W1,
    /// quorum-kv: quorum reads do not repair stale replicas, so later reads from other
    /// quorums can go back in time (monotonic reads, linearizability).
    NoReadRepair,
}

impl Fault {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::StaleReads => "stale-reads",
            Fault::EarlyAck => "early-ack",
            Fault::NoFsync => "no-fsync",
            Fault::LeaseReads => "lease-reads",
            Fault::TxnStaleReads => "txn-stale-reads",
            Fault::TxnSplit => "txn-split",
            Fault::TxnLostUpdate => "txn-lost-update",
            Fault::R1 => "r1",
            Fault::W1 => "w1",
            Fault::NoReadRepair => "no-read-repair",
        }
    }

    /// Whether the fault belongs to raft-register (otherwise quorum-kv).
    pub fn is_raft(self) -> bool {
        matches!(
            self,
            Fault::StaleReads
                | Fault::EarlyAck
                | Fault::NoFsync
                | Fault::LeaseReads
                | Fault::TxnStaleReads
                | Fault::TxnSplit
                | Fault::TxnLostUpdate
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_loopback_and_container_forms() {
        let p = parse_peers("1=127.0.0.1:7001,2=127.0.0.1:7002").unwrap_or(Peers(BTreeMap::new()));
        assert_eq!(p.0.get(&2).map(String::as_str), Some("127.0.0.1:7002"));
        let c = parse_peers("1=10.1.0.2:7000, 2=10.1.0.3:7000,3=n3:7000")
            .unwrap_or(Peers(BTreeMap::new()));
        assert_eq!(c.0.len(), 3);
        assert!(parse_peers("1=host").is_err());
        assert!(parse_peers("x=h:1").is_err());
        assert!(parse_peers("1=h:1,1=h:2").is_err());
        assert!(parse_peers("0=h:1").is_err());
        assert!(parse_peers("").is_err());
    }

    #[test]
    fn fault_names_match_clap() {
        for f in Fault::value_variants() {
            let pv = f.to_possible_value();
            assert_eq!(pv.as_ref().map(|p| p.get_name()), Some(f.name()));
        }
    }
}
