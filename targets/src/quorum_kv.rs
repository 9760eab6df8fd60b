//! The bundled quorum-kv target: `faultline-node quorum-kv`, a leaderless Dynamo-style
//! store (N replicas = every node, R and W quorums, last writer wins by the coordinator's
//! wall clock, read repair after answering). No compare-and-set.
//!
//! # What it claims, and why
//!
//! - **Never linearizable** (nor sequential): read repair runs *after* the client is
//!   answered, so a read that saw a write still in progress (on fewer than W replicas)
//!   can be followed by a read from another quorum that misses it (a new value, then an
//!   old one); a write that timed out (unknown) on fewer than W replicas behaves the same.
//! - **Read-your-writes** when R + W > N and the clocks are not faulted: a process talks
//!   to one coordinator; its acknowledged write is on W replicas, and any later read asks
//!   R replicas, so at least one of them has the write, and last-writer-wins returns it
//!   or a value with a later timestamp. With synchronised clocks (containers share the
//!   host's clock) a later timestamp means a write that was not over before ours began.
//!   Clock faults break that: a coordinator whose clock runs ahead stamps an old write
//!   with a later time than ours, and our read returns it.
//! - **Not monotonic reads / writes**: the asynchronous read repair again: a process can
//!   see a half-applied write, then a quorum without it.
//! - With R + W <= N: nothing (no quorum intersection).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use crate::bundled;
use crate::client::NodeClient;
use crate::runtime::ReadyProbe;
use crate::target::{
    ClaimContext, Claims, Client, ClientContext, DeployContext, Program, SwitchableFault, Target,
    TargetError, TxnSupport,
};

/// The quorum-kv target.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuorumKv;

static FAULTS: LazyLock<Vec<SwitchableFault>> = LazyLock::new(|| {
    vec![
        SwitchableFault::new(
            "r1",
            "read quorum forced to 1: reads may miss the latest acknowledged write",
            &["partition", "kill"],
        ),
        SwitchableFault::new(
            "w1",
            "write quorum forced to 1: a write is acknowledged by its coordinator alone",
            &["partition", "kill"],
        ),
        SwitchableFault::new(
            "no-read-repair",
            "quorum reads never repair stale replicas",
            &["partition", "kill"],
        ),
    ]
});

/// The R and W quorums: the options if given, else a majority each.
pub fn quorums(options: Option<&BTreeMap<String, String>>, nodes: usize) -> (usize, usize) {
    let majority = nodes / 2 + 1;
    let get = |k: &str| {
        options
            .and_then(|o| o.get(k))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(majority)
    };
    (get("r"), get("w"))
}

impl Target for QuorumKv {
    fn name(&self) -> &str {
        "quorum-kv"
    }
    fn description(&self) -> &str {
        "faultline-node quorum-kv: leaderless Dynamo-style store, R/W quorums, last writer wins, no cas"
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
        let mut args = bundled::node_args("quorum-kv", ctx);
        for k in ["r", "w"] {
            if let Some(v) = ctx.options.get(k) {
                args.push(format!("--{k}"));
                args.push(v.clone());
            }
        }
        args
    }
    fn offers_cas(&self) -> bool {
        false
    }
    fn faults(&self) -> &[SwitchableFault] {
        &FAULTS
    }
    fn check_options(
        &self,
        options: &BTreeMap<String, String>,
        nodes: usize,
    ) -> Result<(), TargetError> {
        for (k, v) in options {
            let bad = |message: String| TargetError::BadOption {
                target: self.name().to_string(),
                message,
            };
            if k != "r" && k != "w" {
                return Err(bad(format!(
                    "unknown option {k:?} (quorum-kv takes r and w)"
                )));
            }
            match v.parse::<usize>() {
                Ok(n) if (1..=nodes).contains(&n) => {}
                _ => {
                    return Err(bad(format!(
                        "{k}={v}: must be a number from 1 to the node count {nodes}"
                    )))
                }
            }
        }
        Ok(())
    }
    fn claims(&self, ctx: &ClaimContext<'_>) -> Claims {
        let (r, w) = quorums(ctx.options, ctx.nodes);
        let n = ctx.nodes;
        if r + w <= n {
            return Claims {
                models: Vec::new(),
                reason: format!("R={r} + W={w} <= N={n}: a read quorum need not meet the last write's quorum, so no session guarantee holds"),
            };
        }
        if ctx.clock_faults {
            return Claims {
                models: Vec::new(),
                reason: format!("R={r} + W={w} > N={n}, but last-writer-wins orders writes by the coordinators' wall clocks and the nemesis moves them: a write stamped by a clock running ahead overrides later ones, so not even read-your-writes holds"),
            };
        }
        Claims {
            models: vec!["ryw".to_string()],
            reason: format!("R={r} + W={w} > N={n} and synchronised clocks: a process's read meets the quorum of its acknowledged write, and last-writer-wins returns it or a later write (read-your-writes); read repair runs after the answer, so a half-applied write can be seen and then missed: neither monotonic reads nor linearizability"),
        }
    }
    fn txn_support(&self, _ctx: &ClaimContext<'_>) -> Option<TxnSupport> {
        Some(TxnSupport {
            models: Vec::new(),
            reason: "the coordinator runs a transaction's micro-operations one by one, each a quorum read or write of its own, with no isolation between transactions: it claims no isolation model, and a campaign reports which ones held".to_string(),
        })
    }
    fn client(&self, ctx: &ClientContext<'_>) -> Result<Arc<dyn Client>, TargetError> {
        Ok(Arc::new(NodeClient::new(ctx.node, ctx.addr, ctx.timeout)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn claims_follow_the_quorums_and_the_clocks() {
        let none = BTreeMap::new();
        let ctx = |o, clock| ClaimContext {
            nodes: 5,
            options: Some(o),
            clock_faults: clock,
        };
        assert_eq!(QuorumKv.claims(&ctx(&none, false)).models, vec!["ryw"]);
        assert!(QuorumKv.claims(&ctx(&none, true)).models.is_empty());
        let weak = opts(&[("r", "1"), ("w", "2")]);
        let c = QuorumKv.claims(&ctx(&weak, false));
        assert!(
            c.models.is_empty() && c.reason.contains("R=1 + W=2 <= N=5"),
            "{c:?}"
        );
        let strong = opts(&[("r", "1"), ("w", "5")]);
        assert_eq!(QuorumKv.claims(&ctx(&strong, false)).models, vec!["ryw"]);
    }

    #[test]
    fn options_are_checked_and_passed_on() {
        assert!(QuorumKv.check_options(&opts(&[("r", "2")]), 3).is_ok());
        assert!(QuorumKv.check_options(&opts(&[("r", "4")]), 3).is_err());
        assert!(QuorumKv.check_options(&opts(&[("x", "1")]), 3).is_err());
        let o = opts(&[("w", "3")]);
        let hosts = ["10.0.0.11".to_string()];
        let ctx = DeployContext {
            index: 0,
            hosts: &hosts,
            data_dir: "/data",
            faults: &[],
            options: &o,
            request_timeout_ms: 1000,
            token: "t0123456789abcdef",
        };
        let args = QuorumKv.node_args(&ctx);
        assert_eq!(args.first().map(String::as_str), Some("quorum-kv"));
        assert!(args.join(" ").ends_with("--w 3"));
        assert!(!QuorumKv.offers_cas());
    }
}
