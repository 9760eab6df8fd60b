//! `faultline-node`: the bundled systems under test of faultline.
//!
//! ```text
//! faultline-node raft-register --id 1 --listen 0.0.0.0:7001 \
//!     --peers 1=HOST:7001,2=HOST:7002,3=HOST:7003 --data-dir DIR [--fault F]...
//! faultline-node quorum-kv --id 1 --listen ... --peers ... --data-dir DIR [--r N --w N] [--fault F]...
//! faultline-node bench --mode raft-register|quorum-kv --nodes 3 --clients 16 --seconds 10
//! ```
//!
//! A node in a container binds `0.0.0.0:PORT` and lists its peers by container IP with the
//! same port; a node on loopback binds `127.0.0.1:PORT` and its peers differ by port. The
//! `--peers` list is the same on every node and includes the node itself. Every node of a
//! cluster needs the cluster's peer token (`FAULTLINE_PEER_TOKEN`, `--peer-token` or
//! `--peer-token-file`): node-to-node routes answer only requests that carry it.
//!
//! Logs go to stderr through `tracing` (`RUST_LOG` filters them, default `info`). The HTTP
//! API is described in `API.md` and in [`api`].
//!
//! Exit status: a node serves until it is killed; it exits 1 with a message on stderr when
//! it cannot start (no valid peer token, data dir unreadable or damaged beyond what a crash
//! leaves, address in use, fault of the other mode) or when its disk fails, and clap exits 2 on bad arguments. `bench` exits 0 after printing its
//! figures, 1 if the cluster cannot be started.
//!
//! Modules:
//! - [`api`]: the answer shapes and HTTP status codes shared by both modes;
//! - [`http`]: the client routes over a per-mode backend, forwarding, JSON for every answer
//!   and the early body-size check;
//! - [`config`]: shared arguments, the peer list and the switchable faults;
//! - [`peer`]: the cluster's peer token and the check on node-to-node routes;
//! - [`durable`]: framed append-only logs and atomically replaced files;
//! - [`raft_register`]: Raft (raft-rs) loop, storage, transport, state machine;
//! - [`quorum`]: the leaderless store and its replica storage;
//! - [`value`]: how values compare (cas): by exact value;
//! - [`bench`]: the load generator.

mod api;
mod bench;
mod config;
mod durable;
mod http;
mod peer;
mod quorum;
mod raft_register;
mod value;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "faultline-node",
    version,
    about = "faultline's bundled systems under test"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// A Raft-replicated map of linearizable registers (reads through ReadIndex).
    RaftRegister(raft_register::RaftArgs),
    /// A leaderless Dynamo-style store: R/W quorums, last writer wins, read repair; no cas.
    QuorumKv(quorum::QuorumArgs),
    /// Start a local cluster on loopback, load it, print throughput and latency quantiles.
    Bench(bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("faultline-node: cannot start the runtime: {e}");
            return std::process::ExitCode::from(255);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::RaftRegister(args) => raft_register::run(args).await,
            Command::QuorumKv(args) => quorum::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultline-node: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
