//! The bundled raft-register target: `faultline-node raft-register`, keys replicated
//! through Raft, reads through ReadIndex. Claims linearizability.

use std::sync::{Arc, LazyLock};

use crate::bundled;
use crate::client::NodeClient;
use crate::runtime::ReadyProbe;
use crate::target::{
    ClaimContext, Claims, Client, ClientContext, DeployContext, Exposure, Program, SwitchableFault,
    Target, TargetError, TxnSupport,
};

/// The raft-register target.
#[derive(Debug, Clone, Copy, Default)]
pub struct RaftRegister;

static FAULTS: LazyLock<Vec<SwitchableFault>> = LazyLock::new(|| {
    vec![
        SwitchableFault::new(
            "stale-reads",
            "every node answers reads from its own applied state (no ReadIndex, no forwarding): a deposed leader or a cut-off follower serves stale values",
            &["partition"],
        ),
        SwitchableFault::new(
            "early-ack",
            "the leader acknowledges a write once it is in its own log, before a majority has it: a leader cut off from the majority acks writes that are later lost",
            &["leader"],
        )
        .exposed_with(Exposure {
            interval_ms: Some(3_000),
            ..Exposure::default()
        }),
        SwitchableFault::new(
            "no-fsync",
            "log records are never flushed nor fsynced: a kill loses acknowledged writes and votes",
            &["kill"],
        )
        .exposed_with(Exposure {
            interval_ms: Some(2_000),
            all_down: true,
            ..Exposure::default()
        }),
        SwitchableFault::new(
            "lease-reads",
            "the leader serves reads from local state while a lease measured with the wall clock holds: a leader whose clock was moved back keeps its lease past a pause or a partition, while the others elect a new leader and accept writes",
            &["leader", "clock"],
        )
        .exposed_with(Exposure {
            interval_ms: Some(3_000),
            concurrency: Some(30),
            ..Exposure::default()
        }),
        SwitchableFault::new(
            "txn-stale-reads",
            "the node that receives a transaction evaluates its reads on its own applied state when the request arrives (no ReadIndex, no forwarding); only its writes and appends go through the log, as one entry: a deposed leader or a lagging follower reads a stale state, and reads and writes no longer happen at one point (list-append, rw-register)",
            &["partition", "leader"],
        )
        .exposed_with(Exposure {
            interval_ms: Some(3_000),
            concurrency: Some(20),
            ..Exposure::default()
        })
        .for_transactions(),
        SwitchableFault::new(
            "txn-split",
            "each micro-operation of a transaction is its own log entry, proposed once the previous one is applied, so other transactions interleave with it (list-append, rw-register)",
            &["partition"],
        )
        .exposed_with(Exposure {
            interval_ms: Some(3_000),
            concurrency: Some(20),
            ..Exposure::default()
        })
        .for_transactions(),
        SwitchableFault::new(
            "txn-lost-update",
            "an append is carried out as read-modify-write: the receiving node reads the key's list from its own applied state and proposes a plain write of the list with the value added, so concurrent appends overwrite each other (list-append)",
            &["partition", "leader"],
        )
        .exposed_with(Exposure {
            interval_ms: Some(3_000),
            concurrency: Some(20),
            ..Exposure::default()
        })
        .for_transactions(),
    ]
});

impl Target for RaftRegister {
    fn name(&self) -> &str {
        "raft-register"
    }
    fn description(&self) -> &str {
        "faultline-node raft-register: registers replicated with Raft (raft-rs), reads through ReadIndex"
    }
    fn program(&self) -> Program {
        bundled::program()
    }
    fn port(&self) -> u16 {
        bundled::NODE_PORT
    }
    fn ready_probe(&self, _ctx: &DeployContext<'_>) -> ReadyProbe {
        bundled::ready_probe()
    }
    fn node_args(&self, ctx: &DeployContext<'_>) -> Vec<String> {
        bundled::node_args("raft-register", ctx)
    }
    fn offers_cas(&self) -> bool {
        true
    }
    fn has_leader(&self) -> bool {
        true
    }
    fn faults(&self) -> &[SwitchableFault] {
        &FAULTS
    }
    fn claims(&self, _ctx: &ClaimContext<'_>) -> Claims {
        Claims {
            models: vec!["linearizable".to_string()],
            reason: "every write and cas is committed through the Raft log by a majority before it is acknowledged, and every read goes through ReadIndex on the leader, so each operation takes effect at one point between its invoke and its completion whatever the faults (partitions, kills, pauses, clock jumps: nothing depends on the wall clock)".to_string(),
        }
    }
    fn txn_support(&self, _ctx: &ClaimContext<'_>) -> Option<TxnSupport> {
        Some(TxnSupport {
            models: vec!["strict-serializable".to_string()],
            reason: "a transaction (read-only ones too) is one entry of the Raft log, applied whole on every node in log order once a majority holds it, its reads evaluated when it is applied, so every transaction takes effect at one point between its invoke and its completion".to_string(),
        })
    }
    fn client(&self, ctx: &ClientContext<'_>) -> Result<Arc<dyn Client>, TargetError> {
        Ok(Arc::new(NodeClient::new(ctx.node, ctx.addr, ctx.timeout)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn node_command_lines_name_every_peer_the_token_and_the_fault() {
        let hosts = [
            "10.9.0.11".to_string(),
            "10.9.0.12".to_string(),
            "10.9.0.13".to_string(),
        ];
        let faults = vec!["stale-reads".to_string()];
        let options = BTreeMap::new();
        let ctx = DeployContext {
            index: 1,
            hosts: &hosts,
            data_dir: "/data",
            faults: &faults,
            options: &options,
            request_timeout_ms: 1500,
            token: "secret-token-0123456789",
        };
        assert_eq!(
            RaftRegister.node_args(&ctx).join(" "),
            "raft-register --id 2 --listen 0.0.0.0:7001 --peers 1=10.9.0.11:7001,2=10.9.0.12:7001,3=10.9.0.13:7001 --data-dir /data --request-timeout-ms 1500 --peer-token secret-token-0123456789 --fault stale-reads"
        );
    }

    #[test]
    fn cluster_tokens_are_fresh_random_hex() {
        let (a, b) = (
            crate::target::cluster_token(),
            crate::target::cluster_token(),
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
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

    #[test]
    fn unknown_faults_are_refused_with_the_known_list() {
        assert!(RaftRegister.check_fault("stale-reads").is_ok());
        let err = RaftRegister
            .check_fault("r1")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("stale-reads") && err.contains("early-ack"),
            "{err}"
        );
    }
}
