//! The nemesis on real containers: partitions block exactly the grudge's paths, in both
//! directions, between `faultline-testnode` containers (each node asked to reach the others
//! through its `/peer/<ip>/<port>` route), the host still reaches every node, heal restores
//! every path, a restarted node gets its rules back in its new namespace, and a delay holds
//! a node's packets (netem or NFQUEUE, whichever this machine has).
//!
//! Needs Docker (skipped with a notice when it is unreachable, fails under CI=true) and,
//! for the nemesis, root with nsenter and nft or iptables.
//! Every cluster is removed at the end, and by the cluster's `Drop` when a test fails.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use faultline_nemesis::grudge;
use faultline_nemesis::{Capabilities, Family, Fault, Grudge, Mechanism, Nemesis, Node};
use faultline_targets::runtime::{http_get, Cluster};
use faultline_targets::NemesisNode;
use futures_util::future::join_all;

const READY: Duration = Duration::from_secs(20);

/// The probe's capabilities if the nemesis can apply `families` here; otherwise `None`
/// (the test fails under CI=true, and is skipped with a notice elsewhere).
async fn caps_or_skip(test: &str, families: &[Family]) -> Option<Capabilities> {
    let caps = Capabilities::probe().await;
    match caps.check(families) {
        Ok(()) => Some(caps),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("{test}: {e}"),
        Err(e) => {
            eprintln!("NOTICE: skipping {test}: {e}; set CI=true to make this fail");
            None
        }
    }
}

/// A nemesis over the cluster's nodes, through the runtime adapter.
async fn nemesis(cluster: &Cluster, caps: Capabilities) -> Nemesis {
    let mut nodes: Vec<Arc<dyn Node>> = Vec::new();
    for node in cluster.nodes() {
        nodes.push(Arc::new(
            NemesisNode::new(node.clone()).await.expect("node status"),
        ));
    }
    Nemesis::new(nodes, caps).expect("nemesis")
}

fn addr(cluster: &Cluster, node: &str) -> SocketAddr {
    cluster
        .node(node)
        .expect("node")
        .ready_addr()
        .expect("probe address")
}

/// Whether `from` reaches `to`: `from` itself connects to `to` and asks for `/health`
/// (1 s timeouts). Panics when the host cannot talk to `from` at all.
async fn reaches(cluster: &Cluster, from: &str, to: &str) -> bool {
    let to_ip = cluster.node(to).expect("node").ip();
    let answer = http_get(
        addr(cluster, from),
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

/// `reaches` for every ordered pair, in parallel; keys are "a->b".
async fn matrix(cluster: &Cluster) -> BTreeMap<String, bool> {
    let names: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| n.name().to_string())
        .collect();
    let mut pairs = Vec::new();
    for a in &names {
        for b in names.iter().filter(|b| *b != a) {
            pairs.push((a.clone(), b.clone()));
        }
    }
    let results = join_all(pairs.iter().map(|(a, b)| reaches(cluster, a, b))).await;
    pairs
        .into_iter()
        .zip(results)
        .map(|((a, b), ok)| (format!("{a}->{b}"), ok))
        .collect()
}

/// Asserts that exactly the pairs the grudge disconnects are blocked, both ways.
async fn expect_grudge(cluster: &Cluster, grudge: &Grudge, when: &str) {
    let m = matrix(cluster).await;
    for (pair, ok) in &m {
        let (a, b) = pair.split_once("->").expect("pair");
        assert_eq!(
            *ok,
            grudge.connected(a, b),
            "{when}: {pair} reached={ok}; grudge {grudge:?}; matrix {m:?}"
        );
    }
}

/// Asserts that the host gets `200 ok` from every node's `/health`.
async fn host_reaches_all(cluster: &Cluster, when: &str) {
    for node in cluster.nodes() {
        let addr = node.ready_addr().expect("probe");
        assert_eq!(
            get(addr, "/health").await,
            Some((200, "ok".to_string())),
            "{when}: the host cannot reach {}",
            node.name()
        );
    }
}

/// Runs `nsenter --net=NETNS args...` and returns its standard output (empty on failure).
fn in_netns(netns: &Path, args: &[&str]) -> String {
    std::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

async fn finish(rt: &DockerRuntimeRef, cluster: Cluster) {
    let run = cluster.run().clone();
    cluster.teardown().await.expect("teardown");
    assert_eq!(labelled(rt, Some(&run)).await, (vec![], vec![]));
    let _ = std::fs::remove_dir_all(&cluster.spec().run_dir);
}

type DockerRuntimeRef = faultline_targets::runtime::DockerRuntime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_block_both_ways_and_heal_restores() {
    let test = "partitions_block_both_ways_and_heal_restores";
    let Some(rt) = runtime_or_skip(test).await else {
        return;
    };
    let Some(caps) = caps_or_skip(test, &[Family::Partition]).await else {
        return;
    };
    let image = image(&rt).await;
    let cluster = start(&rt, spec(&rt, "tpart", 3, &image).await, &image).await;
    let mut nem = nemesis(&cluster, caps).await;
    let names: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
    let none = Grudge::default();

    let t = Instant::now();
    expect_grudge(&cluster, &none, "baseline").await;
    eprintln!("baseline matrix in {:?}", t.elapsed());

    // Isolate n1: n1 reaches nobody, nobody reaches n1, n2 and n3 still talk.
    let isolate_n1 = grudge::isolate(&names, "n1").expect("grudge");
    let done = nem
        .apply(&Fault::Partition(isolate_n1.clone()))
        .await
        .expect("partition");
    assert!(
        matches!(done.mechanism, Mechanism::Nft | Mechanism::Iptables),
        "{done:?}"
    );
    assert_eq!(done.nodes, names);
    let m = matrix(&cluster).await;
    for blocked in ["n1->n2", "n1->n3", "n2->n1", "n3->n1"] {
        assert!(!m[blocked], "{blocked} must be blocked: {m:?}");
    }
    assert!(m["n2->n3"] && m["n3->n2"], "the majority must talk: {m:?}");
    host_reaches_all(&cluster, "n1 isolated").await;

    nem.apply(&Fault::Heal).await.expect("heal");
    expect_grudge(&cluster, &none, "after heal").await;

    // Halves, cut so that n3 is the smaller half.
    let halves = grudge::halves(&["n3", "n1", "n2"].map(String::from)).expect("halves");
    assert!(!halves.connected("n3", "n1") && halves.connected("n1", "n2"));
    nem.apply(&Fault::Partition(halves.clone()))
        .await
        .expect("halves");
    expect_grudge(&cluster, &halves, "halves").await;
    host_reaches_all(&cluster, "halves").await;

    // A one-way grudge built by hand: n1 drops from n3 only. TCP needs packets both ways,
    // so n1 <-> n3 is cut both ways while n2 (a bridge) still talks to both.
    let mut one_way = BTreeMap::new();
    one_way.insert(
        "n1".to_string(),
        std::collections::BTreeSet::from(["n3".to_string()]),
    );
    let one_way = Grudge(one_way);
    nem.apply(&Fault::Partition(one_way.clone()))
        .await
        .expect("one-way");
    let m = matrix(&cluster).await;
    assert!(!m["n1->n3"] && !m["n3->n1"], "{m:?}");
    assert!(
        m["n1->n2"] && m["n2->n1"] && m["n2->n3"] && m["n3->n2"],
        "{m:?}"
    );

    nem.heal_all().await.expect("heal all");
    expect_grudge(&cluster, &none, "after heal_all").await;
    host_reaches_all(&cluster, "after heal_all").await;
    for node in cluster.nodes() {
        let netns = node.status().await.expect("status").netns_path.expect("ns");
        let table = in_netns(&netns, &["nft", "list", "tables"]);
        assert!(!table.contains("faultline"), "{}: {table}", node.name());
    }
    drop(nem);
    finish(&rt, cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_gets_its_grudge_back() {
    let test = "a_restarted_node_gets_its_grudge_back";
    let Some(rt) = runtime_or_skip(test).await else {
        return;
    };
    let Some(caps) = caps_or_skip(test, &[Family::Partition]).await else {
        return;
    };
    let image = image(&rt).await;
    let cluster = start(&rt, spec(&rt, "tregrudge", 3, &image).await, &image).await;
    let mut nem = nemesis(&cluster, caps).await;
    let names: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
    let n2 = cluster.node("n2").expect("n2");

    // Isolate n1, then kill and start n2 while the grudge is in force.
    let isolate_n1 = grudge::isolate(&names, "n1").expect("grudge");
    nem.apply(&Fault::Partition(isolate_n1.clone()))
        .await
        .expect("partition");
    let old_netns = n2.status().await.expect("status").netns_path.expect("ns");
    nem.apply(&Fault::Kill(vec!["n2".into()]))
        .await
        .expect("kill");
    let done = nem
        .apply(&Fault::Start(vec!["n2".into()]))
        .await
        .expect("start");
    assert!(done.deferred.is_empty(), "{done:?}");
    let new_netns = n2.status().await.expect("status").netns_path.expect("ns");
    assert_ne!(
        old_netns, new_netns,
        "a restarted container has a new namespace"
    );
    n2.wait_ready(READY).await.expect("n2 ready");
    let table = in_netns(&new_netns, &["nft", "list", "table", "inet", "faultline"]);
    let n1_ip = cluster.node("n1").expect("n1").ip().to_string();
    assert!(
        table.contains(&n1_ip),
        "n2's new namespace lacks the rule against n1: {table:?}"
    );
    expect_grudge(&cluster, &isolate_n1, "after n2 restarted").await;

    // A one-way grudge held by n2 alone: only n2's rules can block n1 <-> n2, so this
    // fails unless the restart re-applied them (TCP needs packets both ways).
    let mut one_way = BTreeMap::new();
    one_way.insert(
        "n2".to_string(),
        std::collections::BTreeSet::from(["n1".to_string()]),
    );
    let one_way = Grudge(one_way);
    nem.apply(&Fault::Partition(one_way.clone()))
        .await
        .expect("one-way");
    nem.apply(&Fault::Kill(vec!["n2".into()]))
        .await
        .expect("kill again");
    // Applied while n2 is down: kept, and applied when it starts.
    nem.apply(&Fault::Start(vec!["n2".into()]))
        .await
        .expect("start again");
    n2.wait_ready(READY).await.expect("n2 ready again");
    expect_grudge(&cluster, &one_way, "one-way grudge after a restart").await;
    host_reaches_all(&cluster, "one-way grudge").await;

    nem.apply(&Fault::Heal).await.expect("heal");
    expect_grudge(&cluster, &Grudge::default(), "after heal").await;
    drop(nem);
    finish(&rt, cluster).await;
}

/// Milliseconds the host waits for `from`'s `/peer` request to `to` (the node's own TCP
/// connect plus one request and answer: two round trips between them), `samples` times,
/// sorted.
async fn peer_ms(cluster: &Cluster, from: &str, to: &str, samples: usize) -> Vec<f64> {
    let mut times = Vec::new();
    for _ in 0..samples {
        let started = Instant::now();
        assert!(reaches(cluster, from, to).await, "{from} -> {to}");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    times
}

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

fn delay_rules(netns: &Path) -> Vec<String> {
    in_netns(netns, &["iptables", "-w", "-S"])
        .lines()
        .filter(|l| l.contains("FAULTLINE-DELAY"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_holds_a_containers_packets_across_a_restart() {
    let test = "delay_holds_a_containers_packets_across_a_restart";
    let Some(rt) = runtime_or_skip(test).await else {
        return;
    };
    let Some(caps) = caps_or_skip(test, &[Family::Delay]).await else {
        return;
    };
    let image = image(&rt).await;
    let cluster = start(&rt, spec(&rt, "tdelay", 3, &image).await, &image).await;
    let mut nem = nemesis(&cluster, caps.clone()).await;
    let n1 = cluster.node("n1").expect("n1");
    let delay = Fault::Delay {
        nodes: vec!["n1".into()],
        ms: 100,
    };

    let base = peer_ms(&cluster, "n2", "n1", 5).await;
    let done = nem.apply(&delay).await.expect("delay");
    eprintln!("delay mechanism: {:?}", done.mechanism);
    assert!(
        matches!(done.mechanism, Mechanism::Netem | Mechanism::Nfqueue),
        "{done:?}"
    );
    // Both round trips of n2's request wait for one of n1's packets (SYN-ACK, answer).
    let delayed = peer_ms(&cluster, "n2", "n1", 10).await;
    let other = peer_ms(&cluster, "n2", "n3", 10).await;
    eprintln!("n2 /peer n1: before {base:.1?} ms, with 100 ms on n1 {delayed:.1?} ms");
    eprintln!("n2 /peer n3 with 100 ms on n1: {other:.1?} ms");
    assert!(delayed[0] >= 200.0, "{delayed:?}");
    assert!(median(&delayed) < 600.0, "{delayed:?}");
    assert!(median(&other) < 100.0, "n2 -> n3 is not delayed: {other:?}");

    // Kill and start n1: the delay moves into its new namespace (netem: a new qdisc;
    // NFQUEUE: a new rule and a new delayer thread there).
    nem.apply(&Fault::Kill(vec!["n1".into()]))
        .await
        .expect("kill");
    let done = nem
        .apply(&Fault::Start(vec!["n1".into()]))
        .await
        .expect("start");
    assert!(done.deferred.is_empty(), "{done:?}");
    n1.wait_ready(READY).await.expect("n1 ready");
    let netns = n1.status().await.expect("status").netns_path.expect("ns");
    if done.mechanism == Mechanism::Nfqueue {
        assert_eq!(delay_rules(&netns).len(), 3, "{:?}", delay_rules(&netns));
    }
    let restarted = peer_ms(&cluster, "n2", "n1", 10).await;
    eprintln!("n2 /peer n1 after n1 restarted: {restarted:.1?} ms");
    assert!(restarted[0] >= 200.0, "{restarted:?}");

    nem.apply(&Fault::PacketHeal(vec!["n1".into()]))
        .await
        .expect("packet heal");
    let healed = peer_ms(&cluster, "n2", "n1", 10).await;
    eprintln!("n2 /peer n1 after packet heal: {healed:.1?} ms");
    assert!(median(&healed) < 100.0, "{healed:?}");
    assert!(delay_rules(&netns).is_empty(), "{:?}", delay_rules(&netns));
    nem.heal_all().await.expect("heal all");
    drop(nem);
    finish(&rt, cluster).await;
}
