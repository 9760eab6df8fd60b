//! The bundled raft-register target: `faultline-node raft-register`, keys replicated
//! through Raft, reads through ReadIndex. Claims linearizability.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::NodeClient;
use crate::target::{
    ClaimContext, Claims, Client, DeployContext, SwitchableFault, Target, TargetError,
};

/// The port both bundled modes listen on in their containers.
pub const NODE_PORT: u16 = 7001;

/// The program of the bundled targets.
pub const NODE_BINARY: &str = "faultline-node";

/// How to build it.
pub const NODE_BUILD_HINT: &str = "cargo build --release -p faultline-node";

/// The raft-register target.
#[derive(Debug, Clone, Copy, Default)]
pub struct RaftRegister;

const FAULTS: &[SwitchableFault] = &[
    SwitchableFault {
        name: "stale-reads",
        description: "every node answers reads from its own applied state (no ReadIndex, no forwarding): a deposed leader or a cut-off follower serves stale values",
        exposed_by: &["partition"],
    },
    SwitchableFault {
        name: "early-ack",
        description: "the leader acknowledges a write once it is in its own log, before a majority has it: a leader cut off from the majority acks writes that are later lost",
        exposed_by: &["partition", "kill"],
    },
    SwitchableFault {
        name: "no-fsync",
        description: "log records are never flushed nor fsynced: a kill loses acknowledged writes and votes",
        exposed_by: &["kill"],
    },
    SwitchableFault {
        name: "lease-reads",
        description: "the leader serves reads from local state while a lease measured with the wall clock holds: a leader whose clock was moved back keeps its lease past a pause or a partition, while the others elect a new leader and accept writes",
        exposed_by: &["leader", "clock"],
    },
];

/// How many clusters' tokens [`cluster_token`] remembers.
const TOKENS_KEPT: usize = 64;

/// A token per cluster: its addresses, the token, and which node indexes were given it.
type Tokens = Vec<(Vec<Ipv4Addr>, String, BTreeSet<usize>)>;

/// The peer token of the cluster at `ips`, for its node `index`: a fresh random one for
/// each cluster, the same for all of its nodes. The harness builds the command lines of a
/// cluster's nodes one after the other (each node's once; a restarted node keeps its
/// command line), so a node index asked for a second time at the same addresses means a
/// new cluster, and a new token is drawn.
fn cluster_token(ips: &[Ipv4Addr], index: usize) -> String {
    static TOKENS: Mutex<Tokens> = Mutex::new(Vec::new());
    let mut tokens = TOKENS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, token, given)) = tokens.iter_mut().find(|(a, _, _)| a.as_slice() == ips) {
        if !given.insert(index) {
            *token = random_token();
            *given = BTreeSet::from([index]);
        }
        return token.clone();
    }
    let fresh = random_token();
    if tokens.len() >= TOKENS_KEPT {
        tokens.remove(0);
    }
    tokens.push((ips.to_vec(), fresh.clone(), BTreeSet::from([index])));
    fresh
}

/// 32 random bytes as 64 hex digits: from the kernel's random source, or (should it be
/// unreadable) a SHA-256 of per-process random hasher keys, the time and a counter.
pub(crate) fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    let urandom = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if urandom.is_err() {
        use sha2::Digest;
        use std::hash::{BuildHasher, Hasher};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = sha2::Sha256::new();
        for _ in 0..4 {
            let mut s = std::collections::hash_map::RandomState::new().build_hasher();
            s.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            h.update(s.finish().to_le_bytes());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.update(now.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        bytes.copy_from_slice(&h.finalize());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The command line of a bundled node: mode, id, listen address, peers, data dir,
/// request timeout, the cluster's peer token and the planted faults.
///
/// The token is on the command line because a target gives only arguments; inside the
/// node's container only the container's own processes (and the host's root) see it.
pub(crate) fn bundled_args(mode: &str, ctx: &DeployContext<'_>) -> Vec<String> {
    let peers: Vec<String> = ctx
        .ips
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("{}={ip}:{NODE_PORT}", i + 1))
        .collect();
    let mut args = vec![
        mode.to_string(),
        "--id".to_string(),
        (ctx.index + 1).to_string(),
        "--listen".to_string(),
        format!("0.0.0.0:{NODE_PORT}"),
        "--peers".to_string(),
        peers.join(","),
        "--data-dir".to_string(),
        ctx.data_dir.to_string(),
        "--request-timeout-ms".to_string(),
        ctx.request_timeout_ms.to_string(),
        "--peer-token".to_string(),
        cluster_token(ctx.ips, ctx.index),
    ];
    for f in ctx.faults {
        args.push("--fault".to_string());
        args.push(f.clone());
    }
    args
}

impl Target for RaftRegister {
    fn name(&self) -> &'static str {
        "raft-register"
    }
    fn binary_name(&self) -> &'static str {
        NODE_BINARY
    }
    fn build_hint(&self) -> &'static str {
        NODE_BUILD_HINT
    }
    fn port(&self) -> u16 {
        NODE_PORT
    }
    fn ready_path(&self) -> &'static str {
        "/health"
    }
    fn node_args(&self, ctx: &DeployContext<'_>) -> Vec<String> {
        bundled_args("raft-register", ctx)
    }
    fn offers_cas(&self) -> bool {
        true
    }
    fn has_leader(&self) -> bool {
        true
    }
    fn faults(&self) -> &'static [SwitchableFault] {
        FAULTS
    }
    fn claims(&self, _ctx: &ClaimContext<'_>) -> Claims {
        Claims {
            models: vec!["linearizable".to_string()],
            reason: "every write and cas is committed through the Raft log by a majority before it is acknowledged, and every read goes through ReadIndex on the leader, so each operation takes effect at one point between its invoke and its completion whatever the faults (partitions, kills, pauses, clock jumps: nothing depends on the wall clock)".to_string(),
        }
    }
    fn client(
        &self,
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
        _options: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn Client>, TargetError> {
        Ok(Arc::new(NodeClient::new(node, addr, timeout)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn node_command_lines_name_every_peer_and_the_fault() {
        let ips = [
            Ipv4Addr::new(10, 9, 0, 11),
            Ipv4Addr::new(10, 9, 0, 12),
            Ipv4Addr::new(10, 9, 0, 13),
        ];
        let faults = vec!["stale-reads".to_string()];
        let options = BTreeMap::new();
        let ctx = DeployContext {
            index: 1,
            ips: &ips,
            data_dir: "/data",
            faults: &faults,
            options: &options,
            request_timeout_ms: 1500,
        };
        let args = RaftRegister.node_args(&ctx);
        let token = token_of(&args);
        let without_token: Vec<&str> = args
            .iter()
            .map(String::as_str)
            .filter(|a| *a != token)
            .collect();
        assert_eq!(
            without_token.join(" "),
            "raft-register --id 2 --listen 0.0.0.0:7001 --peers 1=10.9.0.11:7001,2=10.9.0.12:7001,3=10.9.0.13:7001 --data-dir /data --request-timeout-ms 1500 --peer-token --fault stale-reads"
        );
    }

    fn token_of(args: &[String]) -> String {
        let at = args.iter().position(|a| a == "--peer-token");
        at.and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn each_cluster_gets_a_fresh_token_shared_by_its_nodes() {
        let ips = [Ipv4Addr::new(10, 9, 7, 11), Ipv4Addr::new(10, 9, 7, 12)];
        let other = [Ipv4Addr::new(10, 9, 8, 11), Ipv4Addr::new(10, 9, 8, 12)];
        let options = BTreeMap::new();
        let ctx = |index, ips| DeployContext {
            index,
            ips,
            data_dir: "/data",
            faults: &[],
            options: &options,
            request_timeout_ms: 1000,
        };
        let first: Vec<String> = (0..2)
            .map(|i| token_of(&RaftRegister.node_args(&ctx(i, &ips))))
            .collect();
        assert_eq!(first[0], first[1]);
        assert_eq!(first[0].len(), 64);
        assert!(first[0].bytes().all(|b| b.is_ascii_hexdigit()));
        // Another cluster meanwhile, then the same addresses again: new tokens.
        let elsewhere = token_of(&RaftRegister.node_args(&ctx(0, &other)));
        let again: Vec<String> = (0..2)
            .map(|i| token_of(&crate::quorum_kv::QuorumKv.node_args(&ctx(i, &ips))))
            .collect();
        assert_eq!(again[0], again[1]);
        assert_ne!(again[0], first[0]);
        assert_ne!(elsewhere, first[0]);
        assert_ne!(elsewhere, again[0]);
    }

    #[test]
    fn claims_linearizability_and_takes_no_options() {
        assert_eq!(
            RaftRegister.claims(&ClaimContext::default()).models,
            vec!["linearizable"]
        );
        let mut o = BTreeMap::new();
        o.insert("r".to_string(), "1".to_string());
        assert!(RaftRegister.check_options(&o, 3).is_err());
        assert!(RaftRegister.check_options(&BTreeMap::new(), 3).is_ok());
    }
}
