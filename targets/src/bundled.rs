//! The facts both bundled targets (raft-register and quorum-kv) share about their one
//! program, `faultline-node`: its file name, how to build it, the port it listens on, its
//! readiness path and the command line every node gets. Both targets import these from
//! here; neither imports the other.

use crate::runtime::ReadyProbe;
use crate::target::{DeployContext, Program};

/// The port both bundled modes listen on in their containers.
pub const NODE_PORT: u16 = 7001;

/// The program of the bundled targets.
pub const NODE_BINARY: &str = "faultline-node";

/// How to build it.
pub const NODE_BUILD_HINT: &str = "cargo build --release -p faultline-node";

/// The path that answers 200 once a node serves (see `targets/node/API.md`).
pub const NODE_READY_PATH: &str = "/health";

/// The bundled program, found next to the `faultline` executable.
pub fn program() -> Program {
    Program::Bundled {
        file_name: NODE_BINARY.to_string(),
        build_hint: NODE_BUILD_HINT.to_string(),
    }
}

/// The readiness probe of a bundled node.
pub fn ready_probe() -> ReadyProbe {
    ReadyProbe::health(NODE_PORT)
}

/// The command line of a bundled node in `mode`: mode, id, listen address, peers, data
/// dir, request timeout, the cluster's peer token and the planted faults.
///
/// The token is on the command line because a target gives only arguments; inside the
/// node's container only the container's own processes (and the host's root) see it.
pub fn node_args(mode: &str, ctx: &DeployContext<'_>) -> Vec<String> {
    let peers: Vec<String> = ctx
        .hosts
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
        ctx.token.to_string(),
    ];
    for f in ctx.faults {
        args.push("--fault".to_string());
        args.push(f.clone());
    }
    args
}
