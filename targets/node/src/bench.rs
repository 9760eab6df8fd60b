//! `faultline-node bench`: starts a local cluster of this binary on loopback, drives it with
//! concurrent clients for a fixed time and prints throughput and latency quantiles.
//!
//! Each client is a closed loop (one request in flight) bound to one node (client c talks to
//! node c mod N; raft-register followers forward to the leader). Keys are drawn uniformly
//! from `--keys`; `--read-percent` of the operations are reads, the rest writes. With
//! `--txn N` every request is a transaction (`POST /txn`) of N micro-operations, each a read
//! (`--read-percent` of them) or an append to its key.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};

/// Which system the bench starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Raft-replicated registers.
    RaftRegister,
    /// Leaderless quorum store.
    QuorumKv,
}

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::RaftRegister => "raft-register",
            Mode::QuorumKv => "quorum-kv",
        }
    }
}

/// Arguments of `faultline-node bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The system to start.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Measured duration.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100)]
    pub keys: u64,
    /// Share of reads, 0 to 100.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_percent: u8,
    /// Send transactions of this many micro-operations (1 to 64) instead of single-key
    /// requests: reads (`--read-percent`) and appends.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub txn: Option<u8>,
    /// Where the nodes keep their data (default: a fresh directory under the temp dir,
    /// removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Default)]
struct Tally {
    ok_reads: u64,
    ok_writes: u64,
    fail: u64,
    unknown: u64,
    latencies_us: Vec<u64>,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr().context("local address")?.port())
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.nodes >= 1 && args.clients >= 1 && args.keys >= 1,
        "nodes, clients and keys must be >= 1"
    );
    let owned_dir = args.data_dir.is_none();
    let dir = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("faultline-bench-{}", std::process::id()))
    });
    if owned_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ports = (0..args.nodes)
        .map(|_| free_port())
        .collect::<anyhow::Result<Vec<u16>>>()?;
    let peers = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let exe = std::env::current_exe().context("locating this binary")?;
    let token = crate::peer::random_token().context("drawing a peer token")?;
    let mut children = Children(Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let log = std::fs::File::create(dir.join(format!("n{}.log", i + 1)))
            .context("creating a node log")?;
        let child = Command::new(&exe)
            .arg(args.mode.arg())
            .args([
                "--id",
                &(i + 1).to_string(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--peers",
                &peers,
            ])
            .arg("--data-dir")
            .arg(dir.join(format!("n{}", i + 1)))
            .env("RUST_LOG", "warn")
            .env("FAULTLINE_PEER_TOKEN", &token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting a node")?;
        children.0.push(child);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(args.clients)
        .build()
        .context("building the HTTP client")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    for port in &ports {
        loop {
            let r = http
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await;
            if matches!(&r, Ok(r) if r.status().is_success()) {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "node on port {port} never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let start = Instant::now();
    let stop = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let base = format!("http://127.0.0.1:{}", ports[c % ports.len()]);
        let http = http.clone();
        let (keys, read_percent) = (args.keys, u64::from(args.read_percent));
        let txn = args.txn;
        tasks.push(tokio::spawn(async move {
            client(c as u64, base, http, keys, read_percent, txn, stop).await
        }));
    }
    let mut total = Tally::default();
    for t in tasks {
        let t = t.await.context("client task")?;
        total.ok_reads += t.ok_reads;
        total.ok_writes += t.ok_writes;
        total.fail += t.fail;
        total.unknown += t.unknown;
        total.latencies_us.extend(t.latencies_us);
    }
    let secs = start.elapsed().as_secs_f64();
    drop(children);
    if owned_dir {
        let _ = std::fs::remove_dir_all(&dir);
    }
    print_report(&args, &mut total, secs);
    Ok(())
}

async fn client(
    seed: u64,
    base: String,
    http: reqwest::Client,
    keys: u64,
    read_percent: u64,
    txn: Option<u8>,
    stop: Instant,
) -> Tally {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut t = Tally::default();
    let mut counter = 0u64;
    while Instant::now() < stop {
        counter += 1;
        let began = Instant::now();
        let (req, is_read) = match txn {
            Some(n) => {
                // Appended values are unique: (client, request, position).
                let mops: Vec<serde_json::Value> = (0..u64::from(n))
                    .map(|i| {
                        let key = format!("b{}", next() % keys);
                        if next() % 100 < read_percent {
                            serde_json::json!(["r", key, null])
                        } else {
                            serde_json::json!(["append", key, [seed, counter, i]])
                        }
                    })
                    .collect();
                let read_only = mops.iter().all(|m| m[0] == "r");
                let body = serde_json::json!({ "txn": mops });
                (http.post(format!("{base}/txn")).json(&body), read_only)
            }
            None => {
                let key = next() % keys;
                let is_read = next() % 100 < read_percent;
                let url = format!("{base}/kv/b{key}");
                let req = if is_read {
                    http.get(&url)
                } else {
                    http.put(&url)
                        .json(&serde_json::json!({ "value": [seed, counter] }))
                };
                (req, is_read)
            }
        };
        let outcome = match req.send().await {
            Ok(r) => r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["outcome"].as_str().map(str::to_owned)),
            Err(_) => None,
        };
        let us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome.as_deref() {
            Some("ok") => {
                if is_read {
                    t.ok_reads += 1;
                } else {
                    t.ok_writes += 1;
                }
                t.latencies_us.push(us);
            }
            Some("fail") => t.fail += 1,
            _ => t.unknown += 1,
        }
    }
    t
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

fn print_report(args: &BenchArgs, t: &mut Tally, secs: f64) {
    t.latencies_us.sort_unstable();
    let ok = t.ok_reads + t.ok_writes;
    let l = &t.latencies_us;
    println!(
        "mode={} nodes={} clients={} seconds={:.1} keys={} read_percent={} txn={}",
        args.mode.arg(),
        args.nodes,
        args.clients,
        secs,
        args.keys,
        args.read_percent,
        args.txn.map_or("off".to_owned(), |n| n.to_string())
    );
    if let Some(n) = args.txn {
        println!(
            "ok txns={} (with appends={} read-only={}) fail={} unknown={}",
            ok, t.ok_writes, t.ok_reads, t.fail, t.unknown
        );
        println!(
            "throughput: {:.0} ok txns/s, {:.0} micro-operations/s",
            ok as f64 / secs,
            (ok * u64::from(n)) as f64 / secs
        );
        println!(
            "latency of ok txns (ms): p50={:.2} p95={:.2} p99={:.2} max={:.2}",
            quantile(l, 0.50),
            quantile(l, 0.95),
            quantile(l, 0.99),
            quantile(l, 1.0)
        );
        return;
    }
    println!(
        "ok={} (writes={} reads={}) fail={} unknown={}",
        ok, t.ok_writes, t.ok_reads, t.fail, t.unknown
    );
    println!(
        "throughput: {:.0} ok ops/s, {:.0} acknowledged writes/s",
        ok as f64 / secs,
        t.ok_writes as f64 / secs
    );
    println!(
        "latency of ok ops (ms): p50={:.2} p95={:.2} p99={:.2} max={:.2}",
        quantile(l, 0.50),
        quantile(l, 0.95),
        quantile(l, 0.99),
        quantile(l, 1.0)
    );
}
