//! A local cluster of `faultline-node` processes on loopback for the integration tests.
//!
//! Every link between two nodes goes through a small TCP proxy owned by the test, so a test
//! can cut a node off from the others (a partition) without touching the host's firewall:
//! node i reaches node j at the port of proxy (i -> j). Clients talk to nodes directly.
//! Child processes are killed when the cluster is dropped.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Where Debian's libfaketime lives (package `libfaketime`).
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

static COUNTER: AtomicU64 = AtomicU64::new(0);

static NEXT_PORT: AtomicU64 = AtomicU64::new(0);

/// A port nobody listens on right now, taken below the kernel's ephemeral range (32768+)
/// so that no proxy or outgoing connection of this test process is handed it meanwhile.
pub fn free_port() -> u16 {
    let base = 20_000 + (u64::from(std::process::id()) % 400) * 30;
    for _ in 0..12_000 {
        let n = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        let port = 20_000 + (base - 20_000 + n) % 12_000;
        let port = u16::try_from(port).expect("port fits");
        if StdListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// A fresh random peer token (64 hex digits from the kernel's random source).
pub fn fresh_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("faultline-node-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// One proxied link; dropping connections and refusing new ones while blocked.
struct Link {
    blocked: watch::Sender<bool>,
    port: u16,
}

async fn serve_link(listener: TcpListener, target: SocketAddr, blocked: watch::Receiver<bool>) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if *blocked.borrow() {
            drop(inbound);
            continue;
        }
        let mut rx = blocked.clone();
        tokio::spawn(async move {
            let Ok(mut out) = TcpStream::connect(target).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                _ = async {
                    loop {
                        if rx.changed().await.is_err() || *rx.borrow() {
                            break;
                        }
                    }
                } => {}
            }
        });
    }
}

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `raft-register` or `quorum-kv`.
    pub mode: &'static str,
    /// Number of nodes.
    pub nodes: usize,
    /// Extra arguments for every node (faults, quorums, ...).
    pub args: Vec<String>,
    /// Start each node under libfaketime with its own clock file.
    pub faketime: bool,
    /// Start only these nodes (all when `None`); the others can be started later.
    pub only: Option<Vec<usize>>,
}

impl Spec {
    pub fn new(mode: &'static str, nodes: usize) -> Self {
        Self {
            mode,
            nodes,
            args: vec!["--request-timeout-ms".into(), "3000".into()],
            faketime: false,
            only: None,
        }
    }

    /// Starts only the nodes in `which` at first.
    pub fn only(mut self, which: &[usize]) -> Self {
        self.only = Some(which.to_vec());
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }

    pub fn fault(self, f: &str) -> Self {
        self.arg("--fault").arg(f)
    }
}

/// A running cluster.
pub struct Cluster {
    pub spec: Spec,
    pub dir: PathBuf,
    ports: Vec<u16>,
    links: HashMap<(usize, usize), Link>,
    children: Mutex<Vec<Option<Child>>>,
    starts: Vec<u32>,
    /// Sends the cluster's peer token with every request (client routes ignore it).
    pub http: reqwest::Client,
    /// Sends no token.
    pub anonymous: reqwest::Client,
    /// The cluster's peer token, given to every node in `FAULTLINE_PEER_TOKEN`.
    pub token: String,
}

impl Cluster {
    /// Starts every node of `spec` (indices 0..n; node i has id i+1).
    pub async fn start(spec: Spec) -> Cluster {
        let dir = scratch_dir(spec.mode);
        let ports: Vec<u16> = (0..spec.nodes).map(|_| free_port()).collect();
        let mut links = HashMap::new();
        for i in 0..spec.nodes {
            for (j, node_port) in ports.iter().enumerate() {
                if i == j {
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                let port = listener.local_addr().expect("proxy addr").port();
                let (tx, rx) = watch::channel(false);
                let target: SocketAddr = format!("127.0.0.1:{node_port}").parse().expect("addr");
                tokio::spawn(serve_link(listener, target, rx));
                links.insert((i, j), Link { blocked: tx, port });
            }
        }
        let token = fresh_token();
        let mut auth = reqwest::header::HeaderMap::new();
        auth.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(0)
            .default_headers(auth)
            .build()
            .expect("client");
        let anonymous = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let mut c = Cluster {
            children: Mutex::new((0..spec.nodes).map(|_| None).collect()),
            starts: vec![0; spec.nodes],
            spec,
            dir,
            ports,
            links,
            http,
            anonymous,
            token,
        };
        for i in 0..c.spec.nodes {
            if c.spec.faketime {
                c.set_clock(i, "+0");
            }
            if !matches!(&c.spec.only, Some(o) if !o.contains(&i)) {
                c.start_node(i);
            }
        }
        c
    }

    fn peers_for(&self, i: usize) -> String {
        (0..self.spec.nodes)
            .map(|j| {
                let port = if i == j {
                    self.ports[j]
                } else {
                    self.links[&(i, j)].port
                };
                format!("{}=127.0.0.1:{port}", j + 1)
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts (or restarts) node i with its data dir kept.
    pub fn start_node(&mut self, i: usize) {
        assert!(self.kids()[i].is_none(), "node {i} already running");
        self.starts[i] += 1;
        let log =
            std::fs::File::create(self.dir.join(format!("n{}-{}.log", i + 1, self.starts[i])))
                .expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline-node"));
        cmd.arg(self.spec.mode)
            .arg("--id")
            .arg((i + 1).to_string())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.ports[i]))
            .arg("--peers")
            .arg(self.peers_for(i))
            .arg("--data-dir")
            .arg(self.dir.join(format!("data-n{}", i + 1)))
            .args(&self.spec.args)
            .env("FAULTLINE_PEER_TOKEN", &self.token)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if self.spec.faketime {
            cmd.env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME_TIMESTAMP_FILE", self.clock_file(i))
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_CACHE_DURATION", "1");
        }
        self.kids()[i] = Some(cmd.spawn().expect("spawn faultline-node"));
    }

    fn clock_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("clock-n{}", i + 1))
    }

    /// Sets node i's libfaketime offset (e.g. `+0`, `-600s`), atomically.
    pub fn set_clock(&self, i: usize, offset: &str) {
        let tmp = self.dir.join(format!("clock-n{}.tmp", i + 1));
        std::fs::write(&tmp, format!("{offset}\n")).expect("write clock");
        std::fs::rename(&tmp, self.clock_file(i)).expect("rename clock");
    }

    fn signal(&self, i: usize, sig: i32) {
        let pid = self.kids()[i].as_ref().expect("node running").id();
        let pid = i32::try_from(pid).expect("pid");
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig})");
    }

    /// SIGKILLs node i and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.kids()[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kids(&self) -> std::sync::MutexGuard<'_, Vec<Option<Child>>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The exit status of node i if it has exited (it is then no longer running), with the
    /// text of its log.
    pub fn exited(&self, i: usize) -> Option<(std::process::ExitStatus, String)> {
        let mut kids = self.kids();
        let status = kids[i].as_mut()?.try_wait().ok()??;
        kids[i] = None;
        let log = self.dir.join(format!("n{}-{}.log", i + 1, self.starts[i]));
        Some((status, std::fs::read_to_string(log).unwrap_or_default()))
    }

    /// Waits up to `within` for node i to exit; its status and log text if it did.
    pub async fn wait_exit(
        &self,
        i: usize,
        within: Duration,
    ) -> Option<(std::process::ExitStatus, String)> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(e) = self.exited(i) {
                return Some(e);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Panics, with the tail of its log, if a node that should run has exited.
    pub fn assert_running(&self) {
        let mut kids = self.kids();
        for (i, kid) in kids.iter_mut().enumerate() {
            if let Some(child) = kid {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = self.dir.join(format!("n{}-{}.log", i + 1, self.starts[i]));
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    panic!("node {} exited ({status}): {tail:?}", i + 1);
                }
            }
        }
    }

    /// SIGSTOPs node i.
    pub fn pause(&self, i: usize) {
        self.signal(i, libc::SIGSTOP);
    }

    /// SIGCONTs node i.
    pub fn resume(&self, i: usize) {
        self.signal(i, libc::SIGCONT);
    }

    /// Cuts node i off from every other node (both directions).
    pub fn isolate(&self, i: usize) {
        for ((a, b), link) in &self.links {
            if *a == i || *b == i {
                let _ = link.blocked.send(true);
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        for link in self.links.values() {
            let _ = link.blocked.send(false);
        }
    }

    /// `POST /raft/messages` on node i with `body`; `(status, answer)`.
    pub async fn post_raft(&self, i: usize, body: Vec<u8>) -> (u16, Value) {
        answer(
            self.http
                .post(self.url(i, "/raft/messages"))
                .body(body)
                .send()
                .await,
        )
        .await
    }

    /// Sends node i a request whose head announces `len` body bytes (with the cluster's
    /// token when `token`), then at most `sent` of them, and reads the answer without
    /// sending the rest: `(status, JSON body)`. A node that refuses a body for its size
    /// answers at once; sending it whole through a client would race with the node closing
    /// the connection.
    pub async fn announce_body(
        &self,
        i: usize,
        method: &str,
        path: &str,
        len: usize,
        sent: usize,
        token: bool,
    ) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(("127.0.0.1", self.ports[i]))
            .await
            .expect("connect");
        let auth = if token {
            format!("authorization: Bearer {}\r\n", self.token)
        } else {
            String::new()
        };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{auth}content-length: {len}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.expect("write head");
        let _ = s.write_all(&vec![b'0'; sent.min(len)]).await;
        let mut buf = Vec::new();
        let read = async {
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let want = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(usize::MAX);
                    if buf.len() >= end + 4 + want {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, body)
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports[i])
    }

    /// `GET` on node i; `(status, body)`, or `(0, Null)` when the request itself failed.
    pub async fn get(&self, i: usize, path: &str) -> (u16, Value) {
        answer(self.http.get(self.url(i, path)).send().await).await
    }

    pub async fn read(&self, i: usize, key: &str) -> (u16, Value) {
        self.get(i, &format!("/kv/{key}")).await
    }

    pub async fn write(&self, i: usize, key: &str, value: Value) -> (u16, Value) {
        answer(
            self.http
                .put(self.url(i, &format!("/kv/{key}")))
                .json(&json!({ "value": value }))
                .send()
                .await,
        )
        .await
    }

    pub async fn cas(&self, i: usize, key: &str, expected: Value, new: Value) -> (u16, Value) {
        let body = json!({ "expected": expected, "new": new });
        answer(
            self.http
                .post(self.url(i, &format!("/kv/{key}/cas")))
                .json(&body)
                .send()
                .await,
        )
        .await
    }

    /// `POST /txn` with `{"txn": mops}` on node i.
    pub async fn txn(&self, i: usize, mops: Value) -> (u16, Value) {
        self.post_json(i, "/txn", json!({ "txn": mops })).await
    }

    /// `POST` of a JSON body on node i.
    pub async fn post_json(&self, i: usize, path: &str, body: Value) -> (u16, Value) {
        answer(self.http.post(self.url(i, path)).json(&body).send().await).await
    }

    /// Retries a transaction until it answers 200 (set-up steps during elections); returns
    /// the answer's `txn`.
    pub async fn txn_ok(&self, i: usize, mops: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = self.txn(i, mops.clone()).await;
            if code == 200 {
                return body["txn"].clone();
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "txn never acknowledged: {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn status(&self, i: usize) -> Value {
        self.get(i, "/status").await.1
    }

    /// Polls until every node in `among` reports the same leader, itself in `among`; returns
    /// that leader's index.
    pub async fn wait_leader(&self, among: &[usize]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut seen = Vec::new();
            for &i in among {
                let s = self.status(i).await;
                seen.push(s["leader"].as_str().map(str::to_owned));
            }
            if let Some(Some(l)) = seen.first() {
                if seen.iter().all(|s| s.as_deref() == Some(l.as_str())) {
                    if let Some(idx) = l.strip_prefix('n').and_then(|n| n.parse::<usize>().ok()) {
                        if among.contains(&(idx - 1)) {
                            return idx - 1;
                        }
                    }
                }
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {among:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until node i answers `/health` with 200.
    pub async fn wait_healthy(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.get(i, "/health").await.0 != 200 {
            self.assert_running();
            assert!(Instant::now() < deadline, "node {i} never healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Retries a write until it is acknowledged (200), for set-up steps during elections.
    pub async fn write_ok(&self, i: usize, key: &str, value: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = self.write(i, key, value.clone()).await;
            if code == 200 {
                return body;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "write never acknowledged: {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Retries a read until it answers 200; returns the value read.
    pub async fn read_ok(&self, i: usize, key: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = self.read(i, key).await;
            if code == 200 {
                return body["value"].clone();
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "read never answered: {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn answer(r: reqwest::Result<reqwest::Response>) -> (u16, Value) {
    match r {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let body = resp.json::<Value>().await.unwrap_or(Value::Null);
            (code, body)
        }
        Err(_) => (0, Value::Null),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for kid in self.kids().iter_mut() {
            if let Some(mut child) = kid.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
