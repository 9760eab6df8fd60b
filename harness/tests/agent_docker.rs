//! Faults through node agents on real containers: every node runs `faultline agent`
//! with `faultline-testnode` as its child, and the nemesis reaches it only over the
//! network. Partitions block exactly the grudge's paths (each node asked to reach the
//! others through its `/peer` route) while the harness still reaches every agent and node;
//! 100 % loss never cuts the control channel; a delay holds a node's packets; a rate limit
//! goes on and off; a clock bump moves the node's `/time`; kill, start,
//! pause and resume act on the child; and the host's own nft and iptables rules are the
//! same during the faults as before them (nothing is installed on the host).
//!
//! Needs Docker (skipped with a notice when it is unreachable; fails under CI=true); no
//! root is needed for the faults themselves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline_nemesis::{grudge, Family, Fault, Grudge, Mechanism, Nemesis, Node};
use faultline_targets::agent::{new_token, AgentClient, AGENT_PORT};
use faultline_targets::runtime::{
    default_faketime_env, http_get, AgentSpec, CleanScope, Cluster, ClusterSpec, DockerConfig,
    DockerRuntime, ImageSpec, NodeName, NodeSpec, ReadyProbe, RunId, Runtime, Subnet,
};
use faultline_targets::NemesisNode;

const PORT: u16 = 7001;

fn profile_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
        .parent()
        .map(Path::to_path_buf)
        .expect("the faultline binary has a folder")
}

/// Builds faultline-testnode into the same target dir (a no-op when it is fresh).
fn testnode() -> PathBuf {
    let profile = profile_dir();
    let target_dir = profile.parent().expect("target dir").to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-p",
            "faultline-targets",
            "--bin",
            "faultline-testnode",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build of faultline-testnode failed");
    let bin = profile.join("faultline-testnode");
    assert!(bin.is_file(), "{} missing after the build", bin.display());
    bin
}

async fn runtime_or_skip(test: &str) -> Option<Arc<DockerRuntime>> {
    let config = DockerConfig {
        require_root: false,
        ..DockerConfig::default()
    };
    let why = match DockerRuntime::connect(config).await {
        Ok(rt) => match rt.check().await {
            Ok(_) => return Some(Arc::new(rt)),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: Docker is required under CI=true but unavailable: {why}");
    }
    eprintln!("NOTICE: skipping {test}: Docker unavailable ({why})");
    None
}

/// A free /24 in 10.246.0.0/16 (none of the engine's networks overlaps it).
async fn free_subnet(rt: &DockerRuntime) -> Subnet {
    let networks = rt
        .client()
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await
        .expect("list networks");
    let used: Vec<(String, Vec<String>)> = networks
        .iter()
        .map(|n| {
            let subnets = n
                .ipam
                .as_ref()
                .and_then(|i| i.config.as_ref())
                .map(|cs| cs.iter().filter_map(|c| c.subnet.clone()).collect())
                .unwrap_or_default();
            (n.name.clone().unwrap_or_default(), subnets)
        })
        .collect();
    let first = std::process::id() % 256;
    for i in 0..256 {
        let c = ((first + i * 7) % 256) as u8;
        let s = Subnet::new(std::net::Ipv4Addr::new(10, 246, c, 0), 24).expect("subnet");
        if faultline_targets::runtime::find_overlap(&s, &used).is_none() {
            return s;
        }
    }
    panic!("no free /24 in 10.246.0.0/16");
}

/// The host's own packet rules (nft ruleset, iptables-save, ip6tables-save), as text
/// without counters and without the per-network rules Docker adds for its bridges
/// (`br-...`: another run on the engine may create or remove a network meanwhile).
fn host_rules() -> String {
    let mut all = String::new();
    for (prog, args) in [
        ("nft", vec!["list", "ruleset"]),
        ("iptables-save", vec![]),
        ("ip6tables-save", vec![]),
    ] {
        let Ok(out) = Command::new(prog).args(&args).output() else {
            continue;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.starts_with('#') || line.contains("br-") {
                continue;
            }
            let mut kept = Vec::new();
            let mut words = line.split_whitespace().peekable();
            while let Some(w) = words.next() {
                // nft "counter packets N bytes M", iptables-save ":CHAIN POLICY [N:M]"
                if w == "packets" || w == "bytes" {
                    words.next();
                    continue;
                }
                if w.starts_with('[') && w.ends_with(']') {
                    continue;
                }
                kept.push(w);
            }
            all.push_str(&kept.join(" "));
            all.push('\n');
        }
    }
    all
}

/// Whether `rules` mention anything of ours: our table or chains, NFQUEUE, a random
/// drop, or one of the node addresses.
fn mentions_ours(rules: &str, node_ips: &[String]) -> Option<String> {
    rules
        .lines()
        .find(|l| {
            l.contains("faultline")
                || l.contains("FAULTLINE")
                || l.contains("NFQUEUE")
                || l.contains("numgen")
                || node_ips.iter().any(|ip| {
                    l.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                        .any(|w| w == ip)
                })
        })
        .map(str::to_string)
}

async fn reaches(cluster: &Cluster, from: &str, to: &str) -> bool {
    let to_ip = cluster.node(to).expect("node").ip();
    let from_addr = cluster
        .node(from)
        .expect("node")
        .ready_addr()
        .expect("addr");
    let answer = http_get(
        from_addr,
        &format!("/peer/{to_ip}/{PORT}"),
        Duration::from_secs(4),
    )
    .await
    .unwrap_or_else(|e| panic!("the host cannot ask {from}: {e}"));
    match answer.status {
        200 => true,
        502 => false,
        other => panic!("{from} -> {to}: unexpected {other} {}", answer.body),
    }
}

async fn expect_grudge(cluster: &Cluster, grudge: &Grudge, when: &str) {
    let names = ["n1", "n2", "n3"];
    for a in names {
        for b in names.iter().filter(|b| **b != a) {
            let ok = reaches(cluster, a, b).await;
            assert_eq!(ok, grudge.connected(a, b), "{when}: {a}->{b} reached={ok}");
        }
    }
}

async fn healthy(addr: SocketAddr) -> bool {
    http_get(addr, "/health", Duration::from_millis(800))
        .await
        .is_ok_and(|r| r.status == 200)
}

async fn node_time(addr: SocketAddr) -> f64 {
    let r = http_get(addr, "/time", Duration::from_secs(2))
        .await
        .expect("time");
    r.body.trim().parse().expect("seconds")
}

fn host_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn peer_ms(cluster: &Cluster, from: &str, to: &str, samples: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        assert!(reaches(cluster, from, to).await, "{from} -> {to}");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times
}

/// Applies `fault` and returns the gap from request to confirmation, in ms.
async fn timed(nem: &mut Nemesis, fault: Fault) -> (f64, Mechanism) {
    let requested = faultline_nemesis::unix_ns_now();
    let done = nem.apply(&fault).await.expect("fault");
    let confirmed = done.confirmed_unix_ns.expect("confirmed");
    (
        confirmed.saturating_sub(requested) as f64 / 1e6,
        done.mechanism,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_family_works_through_the_agents_and_the_host_is_untouched() {
    let test = "every_fault_family_works_through_the_agents_and_the_host_is_untouched";
    let Some(rt) = runtime_or_skip(test).await else {
        return;
    };
    let binary = testnode();
    let agent_bin = PathBuf::from(env!("CARGO_BIN_EXE_faultline"));
    let mut image_spec = ImageSpec::new(&binary);
    image_spec.agent = Some(agent_bin.clone());
    let image = rt.prepare_image(&image_spec).await.expect("image");

    let run = RunId::new(&format!("tagent-{}", std::process::id())).expect("run id");
    let run_dir = std::env::temp_dir().join(format!("faultline-agent-test-{run}"));
    std::fs::create_dir_all(&run_dir).expect("run dir");
    let mut spec = ClusterSpec::new(run.clone(), &run_dir, &binary);
    let subnet = free_subnet(&rt).await;
    spec.subnet = Some(subnet);
    spec.leftovers = CleanScope::Run(run.clone());
    let token = new_token();
    spec.agent = Some(AgentSpec {
        binary: agent_bin,
        token: token.clone(),
        port: AGENT_PORT,
        child_user: None,
    });
    let env = if image.capabilities.clock_faults {
        default_faketime_env()
    } else {
        Vec::new()
    };
    spec.nodes = subnet
        .node_ips(3)
        .expect("ips")
        .into_iter()
        .enumerate()
        .map(|(i, ip)| NodeSpec {
            name: NodeName::new(&format!("n{}", i + 1)).expect("name"),
            host: ip.to_string(),
            args: vec!["--listen".into(), format!("0.0.0.0:{PORT}")],
            env: env.clone(),
            ready: Some(ReadyProbe::health(PORT)),
            files: Vec::new(),
        })
        .collect();
    let runtime: Arc<dyn Runtime> = rt.clone();
    let cluster = Cluster::start(runtime, spec, &image)
        .await
        .expect("cluster");

    let mut nodes: Vec<Arc<dyn Node>> = Vec::new();
    let mut agents = Vec::new();
    for node in cluster.nodes() {
        let client =
            AgentClient::new(SocketAddr::from((node.ip(), AGENT_PORT)), &token).expect("client");
        client
            .wait_up(Duration::from_secs(10))
            .await
            .expect("agent up");
        agents.push(client.clone());
        nodes.push(Arc::new(
            NemesisNode::new(node.clone())
                .await
                .expect("status")
                .with_agent(client),
        ));
    }
    // A wrong token is refused.
    let intruder = AgentClient::new(agents[0].addr(), &new_token()).expect("client");
    let refused = intruder.capabilities().await.expect_err("wrong token");
    assert!(refused.to_string().contains("401"), "{refused}");

    let caps = agents[0].capabilities().await.expect("caps");
    eprintln!("node capabilities (probed by the agent): {caps:?}");
    caps.check(&[Family::Partition, Family::Kill, Family::Pause])
        .expect("partitions, kills and pauses through the agent");
    let mut nem = Nemesis::new(nodes, caps.clone()).expect("nemesis");
    let before = host_rules();
    let mut gaps = Vec::new();

    // Partitions.
    let names: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
    let isolate = grudge::isolate(&names, "n1").expect("grudge");
    let (gap, mech) = timed(&mut nem, Fault::Partition(isolate.clone())).await;
    gaps.push(gap);
    assert!(
        matches!(mech, Mechanism::Nft | Mechanism::Iptables),
        "{mech:?}"
    );
    expect_grudge(&cluster, &isolate, "n1 isolated").await;
    for (node, agent) in cluster.nodes().iter().zip(&agents) {
        assert!(
            healthy(node.ready_addr().expect("addr")).await,
            "{}",
            node.name()
        );
        agent
            .status()
            .await
            .expect("the control channel is never cut");
    }
    // Loss on n2 (100 %) with the partition: the agent still answers.
    let (gap, _) = timed(
        &mut nem,
        Fault::Loss {
            nodes: vec!["n2".into()],
            percent: 100,
        },
    )
    .await;
    gaps.push(gap);
    agents[1]
        .status()
        .await
        .expect("n2's agent answers through 100 % loss");
    assert!(!healthy(cluster.node("n2").expect("n2").ready_addr().expect("a")).await);
    // Delay n3 (netem or NFQUEUE, whichever the node has).
    if caps.check(&[Family::Delay]).is_ok() {
        let (gap, mech) = timed(
            &mut nem,
            Fault::Delay {
                nodes: vec!["n3".into()],
                ms: 100,
            },
        )
        .await;
        gaps.push(gap);
        assert!(
            matches!(mech, Mechanism::Netem | Mechanism::Nfqueue),
            "{mech:?}"
        );
        agents[2]
            .status()
            .await
            .expect("n3's agent answers undelayed");
    }
    // The host's rules did not change while all of this was in force, and nothing in
    // them is ours.
    let during = host_rules();
    assert_eq!(before, during, "the host's packet rules changed");
    let ips: Vec<String> = cluster.nodes().iter().map(|n| n.ip().to_string()).collect();
    assert_eq!(
        mentions_ours(&during, &ips),
        None,
        "a rule of ours on the host"
    );
    let (gap, _) = timed(&mut nem, Fault::PacketHeal(names.clone())).await;
    gaps.push(gap);
    let (gap, _) = timed(&mut nem, Fault::Heal).await;
    gaps.push(gap);
    expect_grudge(&cluster, &Grudge::default(), "after heal").await;

    // Delay measured without the partition: n2 -> n3 waits for n3's packets.
    if caps.check(&[Family::Delay]).is_ok() {
        let base = peer_ms(&cluster, "n2", "n3", 3).await;
        timed(
            &mut nem,
            Fault::Delay {
                nodes: vec!["n3".into()],
                ms: 100,
            },
        )
        .await;
        let delayed = peer_ms(&cluster, "n2", "n3", 5).await;
        let other = peer_ms(&cluster, "n2", "n1", 5).await;
        eprintln!("n2 -> n3: {base:.1?} ms before, {delayed:.1?} ms with 100 ms on n3; n2 -> n1 {other:.1?}");
        assert!(delayed[0] >= 200.0, "{delayed:?}");
        assert!(other[other.len() / 2] < 100.0, "{other:?}");
        let (gap, _) = timed(&mut nem, Fault::PacketHeal(vec!["n3".into()])).await;
        gaps.push(gap);
        let healed = peer_ms(&cluster, "n2", "n3", 5).await;
        assert!(healed[healed.len() / 2] < 100.0, "{healed:?}");
    }

    // Rate: tbf on n3's interface, then lifted; the agent still answers meanwhile.
    if caps.check(&[Family::Rate]).is_ok() {
        let (gap, mech) = timed(
            &mut nem,
            Fault::Rate {
                nodes: vec!["n3".into()],
                kbit: 400,
            },
        )
        .await;
        gaps.push(gap);
        assert_eq!(mech, Mechanism::Tbf);
        agents[2]
            .status()
            .await
            .expect("n3's agent under a rate limit");
        assert!(
            reaches(&cluster, "n2", "n3").await,
            "a rate limit is no partition"
        );
        let (gap, _) = timed(&mut nem, Fault::PacketHeal(vec!["n3".into()])).await;
        gaps.push(gap);
    }

    // Clock: +1 h on n1, seen within a few seconds, then reset.
    if image.capabilities.clock_faults {
        let n1 = cluster.node("n1").expect("n1").ready_addr().expect("a");
        let (gap, mech) = timed(
            &mut nem,
            Fault::ClockBump(BTreeMap::from([("n1".to_string(), 3_600_000)])),
        )
        .await;
        gaps.push(gap);
        assert_eq!(mech, Mechanism::Faketime);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut skew = 0.0;
        while Instant::now() < deadline {
            skew = node_time(n1).await - host_now();
            if skew > 3500.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!((3500.0..3700.0).contains(&skew), "n1 is {skew} s ahead");
        let (gap, _) = timed(&mut nem, Fault::ClockReset(vec!["n1".into()])).await;
        gaps.push(gap);
    }

    // Kill, start, pause, resume: the agent's child.
    let n2 = cluster.node("n2").expect("n2");
    let n2_addr = n2.ready_addr().expect("a");
    let (gap, mech) = timed(&mut nem, Fault::Kill(vec!["n2".into()])).await;
    gaps.push(gap);
    assert_eq!(mech, Mechanism::Process);
    assert!(!healthy(n2_addr).await, "n2 answers after a kill");
    assert_eq!(agents[1].status().await.expect("status").state, "stopped");
    let (gap, _) = timed(&mut nem, Fault::Start(vec!["n2".into()])).await;
    gaps.push(gap);
    n2.wait_ready(Duration::from_secs(10))
        .await
        .expect("n2 back");
    let (gap, _) = timed(&mut nem, Fault::Pause(vec!["n2".into()])).await;
    gaps.push(gap);
    assert!(!healthy(n2_addr).await, "a paused n2 answers");
    assert_eq!(agents[1].status().await.expect("status").state, "paused");
    let (gap, _) = timed(&mut nem, Fault::Resume(vec!["n2".into()])).await;
    gaps.push(gap);
    assert!(healthy(n2_addr).await, "n2 after resume");

    nem.heal_all().await.expect("heal all");
    gaps.sort_by(f64::total_cmp);
    eprintln!(
        "request -> confirmed through the agents: median {:.1} ms, max {:.1} ms over {} faults",
        gaps[gaps.len() / 2],
        gaps[gaps.len() - 1],
        gaps.len()
    );
    drop(nem);
    cluster.teardown().await.expect("teardown");
    let _ = std::fs::remove_dir_all(&run_dir);
}
