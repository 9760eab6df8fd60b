//! Test support: a throw-away cluster of three network namespaces joined by a bridge in a
//! hub namespace, with addresses in 10.77.x.0/24 that exist only inside them, and helpers
//! that open sockets inside a namespace (setns in a dedicated thread).
//!
//! Everything is deleted in `Drop`, also when a test fails.

#![allow(dead_code)]

use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use faultline_nemesis::{Node, NodeFuture};

/// Runs a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True when the command succeeds.
pub fn sh_ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Decides whether a test that needs `what` may run: it runs when `ok`; otherwise it fails
/// with `how` under CI=true and is skipped with a printed notice elsewhere.
pub fn require(ok: bool, what: &str, how: &str) -> bool {
    if ok {
        return true;
    }
    let msg = format!("this test needs {what} ({how})");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED (CI unset): {msg}");
    false
}

/// Root with ip, nft, iptables and nsenter.
pub fn require_netns_tools() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    require(root, "root", "run the tests as root")
        && require(sh_ok(&["ip", "-V"]), "ip", "apt-get install iproute2")
        && require(
            sh_ok(&["nft", "--version"]),
            "nft",
            "apt-get install nftables",
        )
        && require(
            sh_ok(&["iptables", "--version"]),
            "iptables",
            "apt-get install iptables",
        )
        && require(
            sh_ok(&["nsenter", "--version"]),
            "nsenter",
            "apt-get install util-linux",
        )
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` in a new thread that has joined the network namespace at `path`.
pub fn in_netns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    std::thread::spawn(move || {
        // SAFETY: setns on a valid namespace fd; it only changes this thread's namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap_or_else(|_| panic!("thread in {} panicked", path.display()))
}

/// A node of the test cluster: a named network namespace. Kill and start stand in for a
/// container runtime: kill deletes our rules (as a container restart discards its
/// namespace) and hides the namespace until start.
pub struct NsNode {
    pub name: String,
    pub ns: String,
    pub ip: IpAddr,
    pub clock_dir: PathBuf,
    pub down: AtomicBool,
    pub calls: Mutex<Vec<String>>,
}

impl NsNode {
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.ns))
    }
}

impl Node for NsNode {
    fn name(&self) -> &str {
        &self.name
    }
    fn ip(&self) -> IpAddr {
        self.ip
    }
    fn netns_path(&self) -> Option<PathBuf> {
        (!self.down.load(Ordering::SeqCst)).then(|| self.path())
    }
    fn pid(&self) -> Option<u32> {
        None
    }
    fn clock_dir(&self) -> PathBuf {
        self.clock_dir.clone()
    }
    fn start(&self) -> NodeFuture<'_> {
        Box::pin(async move {
            self.down.store(false, Ordering::SeqCst);
            self.calls
                .lock()
                .map_err(|e| e.to_string())?
                .push("start".into());
            Ok(())
        })
    }
    fn kill(&self) -> NodeFuture<'_> {
        Box::pin(async move {
            self.down.store(true, Ordering::SeqCst);
            let path = format!("--net={}", self.path().display());
            let _ = Command::new("nsenter")
                .args([path.as_str(), "nft", "delete", "table", "inet", "faultline"])
                .output();
            self.calls
                .lock()
                .map_err(|e| e.to_string())?
                .push("kill".into());
            Ok(())
        })
    }
    fn pause(&self) -> NodeFuture<'_> {
        Box::pin(async { Err("the test cluster cannot pause".into()) })
    }
    fn resume(&self) -> NodeFuture<'_> {
        Box::pin(async { Err("the test cluster cannot resume".into()) })
    }
}

/// Three namespaces on one bridge.
pub struct TestNet {
    pub hub: String,
    pub nodes: Vec<Arc<NsNode>>,
    pub dir: PathBuf,
    created: Vec<String>,
}

impl TestNet {
    pub fn new() -> TestNet {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let id = format!(
            "{:x}{:x}",
            std::process::id() % 0xfff,
            (nanos ^ COUNTER.fetch_add(1, Ordering::SeqCst) as u32) % 0xffff
        );
        let third = 100 + COUNTER.load(Ordering::SeqCst) % 100;
        let dir = std::env::temp_dir().join(format!("fl-t-{id}"));
        let mut net = TestNet {
            hub: format!("fl-t-{id}-hub"),
            nodes: Vec::new(),
            dir,
            created: Vec::new(),
        };
        sh(&["ip", "netns", "add", &net.hub]);
        net.created.push(net.hub.clone());
        let hub = net.hub.clone();
        sh(&["ip", "-n", &hub, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &hub, "link", "set", "br0", "up"]);
        for i in 1..=3 {
            let ns = format!("fl-t-{id}-n{i}");
            sh(&["ip", "netns", "add", &ns]);
            net.created.push(ns.clone());
            let peer = format!("v{i}");
            sh(&[
                "ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &peer,
                "netns", &hub,
            ]);
            let ip = format!("10.77.{third}.{}", 10 + i);
            sh(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", &hub, "link", "set", &peer, "master", "br0"]);
            sh(&["ip", "-n", &hub, "link", "set", &peer, "up"]);
            let clock_dir = net.dir.join(format!("n{i}"));
            faultline_nemesis::clock::init_clock_dir(&clock_dir).expect("clock dir");
            net.nodes.push(Arc::new(NsNode {
                name: format!("n{i}"),
                ns,
                ip: ip.parse().expect("ip"),
                clock_dir,
                down: AtomicBool::new(false),
                calls: Mutex::new(Vec::new()),
            }));
        }
        net
    }

    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    pub fn dyn_nodes(&self) -> Vec<Arc<dyn Node>> {
        self.nodes
            .iter()
            .map(|n| n.clone() as Arc<dyn Node>)
            .collect()
    }

    pub fn node(&self, name: &str) -> &Arc<NsNode> {
        self.nodes.iter().find(|n| n.name == name).expect("node")
    }

    /// Runs a command inside a node's namespace.
    pub fn exec(&self, node: &str, args: &[&str]) -> String {
        let path = format!("--net={}", self.node(node).path().display());
        let mut full = vec!["nsenter", path.as_str()];
        full.extend_from_slice(args);
        sh(&full)
    }

    pub fn exec_ok(&self, node: &str, args: &[&str]) -> bool {
        let path = format!("--net={}", self.node(node).path().display());
        let mut full = vec!["nsenter", path.as_str()];
        full.extend_from_slice(args);
        sh_ok(&full)
    }

    /// Starts a TCP listener on port 7070 in every node; returns a guard that stops them.
    pub fn listen(&self) -> Listeners {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for node in &self.nodes {
            let listener = in_netns(&node.path(), || {
                TcpListener::bind("0.0.0.0:7070").expect("bind 7070")
            });
            listener.set_nonblocking(true).expect("nonblocking");
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok(_) => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }));
        }
        Listeners { stop, threads }
    }

    /// Whether a TCP connect from `from` to `to`:7070 succeeds within 600 ms, for every
    /// ordered pair, checked in parallel. Keys are "a->b".
    pub fn tcp_matrix(&self) -> std::collections::BTreeMap<String, bool> {
        let mut handles = Vec::new();
        for a in &self.nodes {
            for b in &self.nodes {
                if a.name == b.name {
                    continue;
                }
                let (path, addr, key) = (
                    a.path(),
                    SocketAddr::new(b.ip, 7070),
                    format!("{}->{}", a.name, b.name),
                );
                handles.push(std::thread::spawn(move || {
                    let ok = in_netns(&path, move || {
                        TcpStream::connect_timeout(&addr, Duration::from_millis(600)).is_ok()
                    });
                    (key, ok)
                }));
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("connect thread"))
            .collect()
    }

    /// Sends `count` UDP datagrams from `from` to `to` and returns how many arrived.
    pub fn udp_delivered(&self, from: &str, to: &str, count: usize) -> usize {
        let dst = self.node(to);
        let port = 7100 + COUNTER.fetch_add(1, Ordering::SeqCst) as u16 % 500;
        let rx = in_netns(&dst.path(), move || {
            UdpSocket::bind(("0.0.0.0", port)).expect("bind udp")
        });
        rx.set_read_timeout(Some(Duration::from_millis(400)))
            .expect("timeout");
        let receiver = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut got = 0;
            while rx.recv(&mut buf).is_ok() {
                got += 1;
            }
            got
        });
        let addr = SocketAddr::new(dst.ip, port);
        in_netns(&self.node(from).path(), move || {
            let tx = UdpSocket::bind("0.0.0.0:0").expect("bind tx");
            for i in 0..count {
                tx.send_to(&(i as u32).to_be_bytes(), addr).expect("send");
                if i % 20 == 19 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        receiver.join().expect("receiver")
    }
}

impl TestNet {
    /// Milliseconds each of `samples` TCP connects from `from` to `to`:7070 takes (one round
    /// trip: SYN, SYN-ACK), sorted. Needs the listeners of [`TestNet::listen`].
    pub fn connect_ms(&self, from: &str, to: &str, samples: usize) -> Vec<f64> {
        let addr = SocketAddr::new(self.node(to).ip, 7070);
        let mut times = in_netns(&self.node(from).path(), move || {
            (0..samples)
                .map(|_| {
                    let started = std::time::Instant::now();
                    TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
                    started.elapsed().as_secs_f64() * 1000.0
                })
                .collect::<Vec<f64>>()
        });
        times.sort_by(f64::total_cmp);
        times
    }

    /// The lines of `iptables -S` (all chains of the filter table) in a node's namespace
    /// that mention our delay chain.
    pub fn delay_rules(&self, node: &str) -> Vec<String> {
        self.exec(node, &["iptables", "-w", "-S"])
            .lines()
            .filter(|l| l.contains("FAULTLINE-DELAY"))
            .map(str::to_string)
            .collect()
    }
}

/// The median of sorted samples.
pub fn median(sorted: &[f64]) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[sorted.len() / 2]
}

impl TestNet {
    /// Seconds to move `bytes` over TCP from `from` to `to`, measured until the receiver
    /// has read them all.
    pub fn tcp_transfer_secs(&self, from: &str, to: &str, bytes: usize) -> f64 {
        use std::io::{Read, Write};
        let dst = self.node(to);
        let port = 7700 + COUNTER.fetch_add(1, Ordering::SeqCst) as u16 % 200;
        let listener = in_netns(&dst.path(), move || {
            TcpListener::bind(("0.0.0.0", port)).expect("bind")
        });
        let reader = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let started = std::time::Instant::now();
            let mut buf = vec![0u8; 8192];
            let mut total = 0;
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
            (total, started.elapsed().as_secs_f64())
        });
        let addr = SocketAddr::new(dst.ip, port);
        in_netns(&self.node(from).path(), move || {
            let mut conn =
                TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
            conn.write_all(&vec![7u8; bytes]).expect("write");
        });
        let (total, secs) = reader.join().expect("reader");
        assert_eq!(total, bytes, "bytes received");
        secs
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops the listeners when dropped.
pub struct Listeners {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// What the tests can observe of the host's own packet filter: its table list, and whether
/// any of our marks (the `faultline` table, the `FAULTLINE` chain) appear in its ruleset.
///
/// The whole ruleset is not compared: on a shared machine a Docker daemon adds and removes
/// its own chains and rules at any moment; the list of tables is stable.
#[derive(Debug, PartialEq, Eq)]
pub struct HostFilter {
    pub tables: String,
    pub ours: Vec<String>,
}

/// The host's filter before a test, checked to hold none of our marks (a test compares
/// it with the filter after).
pub fn clean_host_ruleset() -> HostFilter {
    let before = host_ruleset();
    assert!(
        before.ours.is_empty(),
        "our rules on the host before the test: {before:?}"
    );
    before
}

pub fn host_ruleset() -> HostFilter {
    let ruleset = sh(&["nft", "list", "ruleset"]);
    let ours = ruleset
        .lines()
        .filter(|l| l.to_lowercase().contains("faultline"))
        .map(str::to_string)
        .collect();
    HostFilter {
        tables: sh(&["nft", "list", "tables"]),
        ours,
    }
}
