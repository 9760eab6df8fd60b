//! The bundled raft-register target: `faultline-node raft-register`, keys replicated
//! through Raft, reads through ReadIndex. Claims linearizability.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
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

/// The command line of a bundled node: mode, id, listen address, peers, data dir,
/// request timeout and the planted faults.
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
        let args = RaftRegister.node_args(&ctx).join(" ");
        assert_eq!(
            args,
            "raft-register --id 2 --listen 0.0.0.0:7001 --peers 1=10.9.0.11:7001,2=10.9.0.12:7001,3=10.9.0.13:7001 --data-dir /data --request-timeout-ms 1500 --fault stale-reads"
        );
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
