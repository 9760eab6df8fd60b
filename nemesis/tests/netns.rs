//! Real mechanism tests: three network namespaces on a bridge, partitions and loss applied
//! by the nemesis from the host, observed with TCP connects and UDP datagrams from inside
//! the namespaces. Needs root, ip, nft, iptables and nsenter (fails with CI=true when
//! missing; skipped with a notice otherwise).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{clean_host_ruleset, host_ruleset, median, require_netns_tools, TestNet};
use faultline_nemesis::grudge::{isolate, majorities_ring};
use faultline_nemesis::{
    Capabilities, DelayBackend, Fault, Grudge, Mechanism, Nemesis, NetBackend,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn all_connected(m: &BTreeMap<String, bool>) -> bool {
    m.values().all(|ok| *ok)
}

fn expect(m: &BTreeMap<String, bool>, blocked: &[&str]) {
    let blocked: BTreeSet<&str> = blocked.iter().copied().collect();
    for (pair, ok) in m {
        assert_eq!(
            *ok,
            !blocked.contains(pair.as_str()),
            "{pair}: connected={ok}; matrix {m:?}"
        );
    }
}

async fn partition_round_trip(backend: NetBackend) {
    if !require_netns_tools() {
        return;
    }
    let before = clean_host_ruleset();
    let net = TestNet::new();
    // Stand-ins for Docker's own rules in a container namespace: they must survive.
    net.exec("n1", &["nft", "add", "table", "ip", "keepme"]);
    net.exec(
        "n1",
        &[
            "iptables",
            "-w",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-d",
            "127.0.0.11",
            "-j",
            "ACCEPT",
        ],
    );
    let _listeners = net.listen();
    let caps = Capabilities::probe().await;
    let mut nem = Nemesis::new(net.dyn_nodes(), caps)
        .expect("nemesis")
        .with_backend(backend);
    let mechanism = match backend {
        NetBackend::Nft => Mechanism::Nft,
        NetBackend::Iptables => Mechanism::Iptables,
    };

    assert!(all_connected(&net.tcp_matrix()), "baseline");

    // Isolate n1: it is cut both ways, the majority n2-n3 still talks.
    let g = isolate(&net.names(), "n1").expect("grudge");
    let done = nem.apply(&Fault::Partition(g)).await.expect("partition");
    assert_eq!(done.mechanism, mechanism);
    assert_eq!(done.nodes, net.names());
    expect(&net.tcp_matrix(), &["n1->n2", "n1->n3", "n2->n1", "n3->n1"]);

    // A one-way grudge: n2 drops from n3 only. TCP fails both ways (the handshake needs
    // both), but n3 still receives n2's datagrams while n2 receives none of n3's.
    let mut one_way = BTreeMap::new();
    one_way.insert("n2".to_string(), BTreeSet::from(["n3".to_string()]));
    nem.apply(&Fault::Partition(Grudge(one_way)))
        .await
        .expect("one-way");
    expect(&net.tcp_matrix(), &["n2->n3", "n3->n2"]);
    assert_eq!(net.udp_delivered("n2", "n3", 50), 50);
    assert_eq!(net.udp_delivered("n3", "n2", 50), 0);

    // Heal: everything talks again, our rules are gone, the others are intact.
    let done = nem.apply(&Fault::Heal).await.expect("heal");
    assert_eq!(done.mechanism, mechanism);
    assert!(all_connected(&net.tcp_matrix()), "after heal");
    for n in net.names() {
        assert!(
            !net.exec_ok(&n, &["nft", "list", "table", "inet", "faultline"]),
            "{n} keeps our table"
        );
        let rules = net.exec(&n, &["iptables", "-w", "-S"]);
        assert!(!rules.contains("FAULTLINE"), "{n} keeps our chain: {rules}");
    }
    assert!(
        net.exec_ok("n1", &["nft", "list", "table", "ip", "keepme"]),
        "foreign table removed"
    );
    let nat = net.exec("n1", &["iptables", "-w", "-t", "nat", "-S", "OUTPUT"]);
    assert!(
        nat.contains("127.0.0.11"),
        "foreign nat rule removed: {nat}"
    );
    drop(net);
    assert_eq!(host_ruleset(), before, "the host's ruleset changed");
}

#[tokio::test]
async fn nft_partition_blocks_exactly_the_grudge_and_heals() {
    partition_round_trip(NetBackend::Nft).await;
}

#[tokio::test]
async fn iptables_fallback_blocks_exactly_the_grudge_and_heals() {
    partition_round_trip(NetBackend::Iptables).await;
}

#[tokio::test]
async fn majorities_ring_of_three_as_applied() {
    if !require_netns_tools() {
        return;
    }
    let net = TestNet::new();
    let _listeners = net.listen();
    let mut nem = Nemesis::new(net.dyn_nodes(), Capabilities::probe().await).expect("nemesis");
    let seed = 11;
    let g = majorities_ring(&net.names(), &mut ChaCha8Rng::seed_from_u64(seed)).expect("ring");
    nem.apply(&Fault::Partition(g.clone()))
        .await
        .expect("partition");
    // Each node drops from one other: over UDP each node is heard by exactly one.
    for (dst, srcs) in &g.0 {
        for src in net.names().iter().filter(|s| *s != dst) {
            let got = net.udp_delivered(src, dst, 20);
            let want = if srcs.contains(src) { 0 } else { 20 };
            assert_eq!(got, want, "{src}->{dst} (seed {seed}, grudge {g:?})");
        }
    }
    nem.heal_all().await.expect("heal");
    assert!(all_connected(&net.tcp_matrix()));
}

#[tokio::test]
async fn loss_drops_about_the_requested_fraction() {
    if !require_netns_tools() {
        return;
    }
    let before = clean_host_ruleset();
    let net = TestNet::new();
    let mut nem = Nemesis::new(net.dyn_nodes(), Capabilities::probe().await).expect("nemesis");
    let done = nem
        .apply(&Fault::Loss {
            nodes: vec!["n1".into()],
            percent: 50,
        })
        .await
        .expect("loss");
    assert_eq!(done.mechanism, Mechanism::Nft);
    let sent = 600;
    let got = net.udp_delivered("n2", "n1", sent);
    // Binomial(600, 0.5): sd ~12; the bounds are about 7 sd wide.
    assert!(
        (210..=390).contains(&got),
        "{got}/{sent} arrived at 50 % loss"
    );
    eprintln!("50 % loss: {got}/{sent} datagrams arrived");
    // n1 only drops what it receives: n3 hears all of n1.
    assert_eq!(net.udp_delivered("n1", "n3", 200), 200);
    nem.apply(&Fault::PacketHeal(vec!["n1".into()]))
        .await
        .expect("packet heal");
    assert_eq!(net.udp_delivered("n2", "n1", 200), 200);
    assert!(!net.exec_ok("n1", &["nft", "list", "table", "inet", "faultline"]));
    drop(net);
    assert_eq!(host_ruleset(), before);
}

#[tokio::test]
async fn loss_and_partition_share_the_table_and_survive_a_restart() {
    if !require_netns_tools() {
        return;
    }
    let net = TestNet::new();
    let _listeners = net.listen();
    let mut nem = Nemesis::new(net.dyn_nodes(), Capabilities::probe().await).expect("nemesis");
    nem.apply(&Fault::Partition(
        isolate(&net.names(), "n3").expect("grudge"),
    ))
    .await
    .expect("partition");
    nem.apply(&Fault::Loss {
        nodes: vec!["n1".into()],
        percent: 100,
    })
    .await
    .expect("loss");
    let table = net.exec("n1", &["nft", "list", "table", "inet", "faultline"]);
    assert!(table.contains("ip saddr"), "{table}");
    assert!(table.contains("iifname != \"lo\" drop"), "{table}");
    assert_eq!(net.udp_delivered("n2", "n1", 30), 0);

    // The runtime discards n1's rules on kill (as a container restart does); start re-applies.
    nem.apply(&Fault::Kill(vec!["n1".into()]))
        .await
        .expect("kill");
    assert!(!net.exec_ok("n1", &["nft", "list", "table", "inet", "faultline"]));
    let done = nem
        .apply(&Fault::Start(vec!["n1".into()]))
        .await
        .expect("start");
    assert!(done.deferred.is_empty(), "{done:?}");
    let again = net.exec("n1", &["nft", "list", "table", "inet", "faultline"]);
    assert_eq!(again, table, "re-applied rules differ");
    assert_eq!(
        *net.node("n1").calls.lock().expect("calls"),
        vec!["kill", "start"]
    );

    // A partition applied while a node is down is applied when it starts.
    nem.apply(&Fault::PacketHeal(vec!["n1".into()]))
        .await
        .expect("packet heal");
    nem.apply(&Fault::Kill(vec!["n2".into()]))
        .await
        .expect("kill n2");
    let done = nem
        .apply(&Fault::Partition(isolate(&net.names(), "n2").expect("g")))
        .await
        .expect("p");
    assert_eq!(done.deferred, vec!["n2".to_string()]);
    nem.apply(&Fault::Start(vec!["n2".into()]))
        .await
        .expect("start n2");
    let m = net.tcp_matrix();
    assert!(
        !m["n1->n2"] && !m["n2->n1"] && m["n1->n3"] && m["n3->n1"],
        "{m:?}"
    );
    nem.heal_all().await.expect("heal all");
    assert!(all_connected(&net.tcp_matrix()));
}

#[tokio::test]
async fn the_probe_matches_the_delay_mechanism() {
    if !require_netns_tools() {
        return;
    }
    let caps = Capabilities::probe().await;
    assert!(
        caps.root && caps.nft && caps.iptables && caps.nsenter && caps.ip,
        "{caps:?}"
    );
    assert_eq!(caps.net_backend(), Some(NetBackend::Nft));
    let net = TestNet::new();
    let mut nem = Nemesis::new(net.dyn_nodes(), caps.clone()).expect("nemesis");
    let result = nem
        .apply(&Fault::Delay {
            nodes: vec!["n1".into()],
            ms: 30,
        })
        .await;
    eprintln!(
        "probe: netem={} nfqueue={} -> delay backend {:?}",
        caps.netem,
        caps.nfqueue,
        caps.delay_backend()
    );
    match caps.delay_backend() {
        Some(DelayBackend::Netem) => {
            let done = result.expect("delay with netem");
            assert_eq!(done.mechanism, Mechanism::Netem);
            let qdisc = net.exec("n1", &["tc", "qdisc", "show", "dev", "eth0"]);
            assert!(qdisc.contains("netem") && qdisc.contains("30ms"), "{qdisc}");
            nem.apply(&Fault::PacketHeal(vec!["n1".into()]))
                .await
                .expect("heal delay");
            let qdisc = net.exec("n1", &["tc", "qdisc", "show", "dev", "eth0"]);
            assert!(!qdisc.contains("netem"), "{qdisc}");
        }
        Some(DelayBackend::Nfqueue) => {
            let done = result.expect("delay with NFQUEUE");
            assert_eq!(done.mechanism, Mechanism::Nfqueue);
            assert_eq!(
                serde_json::to_value(done.mechanism).expect("json"),
                serde_json::json!("nfqueue")
            );
            assert_eq!(
                net.delay_rules("n1").len(),
                3,
                "{:?}",
                net.delay_rules("n1")
            );
            nem.apply(&Fault::PacketHeal(vec!["n1".into()]))
                .await
                .expect("heal delay");
            assert!(net.delay_rules("n1").is_empty());
        }
        None => {
            let err = result
                .expect_err("delay without netem or NFQUEUE must be refused")
                .to_string();
            assert!(err.contains("netem") && err.contains("NFQUEUE"), "{err}");
            let err = caps
                .check(&[faultline_nemesis::Family::Delay])
                .expect_err("refused")
                .to_string();
            assert!(err.contains("netem") && err.contains("NFQUEUE"), "{err}");
        }
    }
    // The probe leaves no namespace behind (other tests of this binary may be probing at
    // the same moment, so a leak is what is still there after a few seconds).
    let mut left = String::new();
    for _ in 0..30 {
        left = common::sh(&["ip", "netns", "list"]);
        if !left.contains("fl-probe-") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!left.contains("fl-probe-"), "{left}");
}

#[tokio::test]
async fn rate_limits_with_tbf_and_heals() {
    if !require_netns_tools() {
        return;
    }
    let caps = Capabilities::probe().await;
    if !common::require(
        caps.tbf,
        "a kernel with sch_tbf",
        "run on a kernel that has tbf",
    ) {
        return;
    }
    let net = TestNet::new();
    let mut nem = Nemesis::new(net.dyn_nodes(), caps).expect("nemesis");
    let bytes = 64 * 1024;
    let free = net.tcp_transfer_secs("n1", "n2", bytes);
    assert!(free < 0.5, "unshaped transfer took {free:.3} s");
    let done = nem
        .apply(&Fault::Rate {
            nodes: vec!["n1".into()],
            kbit: 400,
        })
        .await
        .expect("rate");
    assert_eq!(done.mechanism, Mechanism::Tbf);
    let qdisc = net.exec("n1", &["tc", "qdisc", "show", "dev", "eth0"]);
    assert!(
        qdisc.contains("tbf") && qdisc.contains("400Kbit"),
        "{qdisc}"
    );
    // 64 KiB at 400 kbit/s (50 kB/s) takes about 1.3 s.
    let shaped = net.tcp_transfer_secs("n1", "n2", bytes);
    assert!(shaped > 0.8, "shaped transfer took only {shaped:.3} s");
    // Only n1's outgoing packets are shaped.
    let other = net.tcp_transfer_secs("n2", "n3", bytes);
    assert!(other < 0.5, "n2->n3 took {other:.3} s");
    nem.apply(&Fault::PacketHeal(vec!["n1".into()]))
        .await
        .expect("packet heal");
    let qdisc = net.exec("n1", &["tc", "qdisc", "show", "dev", "eth0"]);
    assert!(!qdisc.contains("tbf"), "{qdisc}");
    let healed = net.tcp_transfer_secs("n1", "n2", bytes);
    eprintln!("64 KiB n1->n2: free {free:.3} s, at 400 kbit/s {shaped:.3} s, healed {healed:.3} s");
    assert!(healed < 0.5, "healed transfer took {healed:.3} s");
}

/// The probe's capabilities with netem hidden, so that delay takes the NFQUEUE path on any
/// machine; `None` (test skipped, or failed under CI=true) when NFQUEUE does not work here.
async fn nfqueue_caps() -> Option<Capabilities> {
    if !require_netns_tools() {
        return None;
    }
    let caps = Capabilities::probe().await;
    if !common::require(
        caps.nfqueue,
        "NFQUEUE (nfnetlink_queue and iptables' NFQUEUE target)",
        "run on a kernel with nfnetlink_queue and apt-get install iptables",
    ) {
        return None;
    }
    Some(Capabilities {
        netem: false,
        ..caps
    })
}

fn summary(times: &[f64]) -> String {
    format!(
        "min {:.2} median {:.2} max {:.2} ms (n={})",
        times.first().copied().unwrap_or(f64::NAN),
        median(times),
        times.last().copied().unwrap_or(f64::NAN),
        times.len()
    )
}

#[tokio::test]
async fn nfqueue_delay_holds_one_nodes_packets_and_heals() {
    let Some(caps) = nfqueue_caps().await else {
        return;
    };
    let before = clean_host_ruleset();
    let net = TestNet::new();
    let _listeners = net.listen();
    let mut nem = Nemesis::new(net.dyn_nodes(), caps).expect("nemesis");
    let base = net.connect_ms("n2", "n1", 10);

    let done = nem
        .apply(&Fault::Delay {
            nodes: vec!["n1".into()],
            ms: 100,
        })
        .await
        .expect("delay");
    assert_eq!(done.mechanism, Mechanism::Nfqueue);
    assert_eq!(done.nodes, vec!["n1".to_string()]);
    let ip = net.node("n1").ip;
    assert_eq!(
        net.delay_rules("n1"),
        vec![
            "-N FAULTLINE-DELAY".to_string(),
            "-A OUTPUT -j FAULTLINE-DELAY".to_string(),
            format!(
                "-A FAULTLINE-DELAY -s {ip}/32 ! -o lo -j NFQUEUE --queue-num 64000 --queue-bypass"
            ),
        ]
    );
    assert!(net.delay_rules("n2").is_empty() && net.delay_rules("n3").is_empty());

    // n1's SYN-ACK (n2 -> n1) and n1's SYN (n1 -> n2) are held 100 ms; n2 -> n3 is not.
    let to_n1 = net.connect_ms("n2", "n1", 20);
    let from_n1 = net.connect_ms("n1", "n2", 20);
    let other = net.connect_ms("n2", "n3", 20);
    eprintln!("TCP connect before delay n2->n1: {}", summary(&base));
    eprintln!(
        "TCP connect, 100 ms delay on n1, n2->n1: {}",
        summary(&to_n1)
    );
    eprintln!(
        "TCP connect, 100 ms delay on n1, n1->n2: {}",
        summary(&from_n1)
    );
    eprintln!(
        "TCP connect, 100 ms delay on n1, n2->n3: {}",
        summary(&other)
    );
    for t in to_n1.iter().chain(&from_n1) {
        assert!(
            (100.0..300.0).contains(t),
            "a delayed round trip took {t:.2} ms: {to_n1:?} {from_n1:?}"
        );
    }
    assert!(median(&to_n1) < 150.0, "{to_n1:?}");
    assert!(median(&other) < 20.0, "unaffected pair: {other:?}");

    // Packet heal: the delay is gone and so is every rule of ours.
    nem.apply(&Fault::PacketHeal(vec!["n1".into()]))
        .await
        .expect("packet heal");
    let healed = net.connect_ms("n2", "n1", 20);
    eprintln!("TCP connect after packet heal n2->n1: {}", summary(&healed));
    assert!(median(&healed) < 20.0, "after heal: {healed:?}");
    for n in net.names() {
        assert!(
            net.delay_rules(&n).is_empty(),
            "{n}: {:?}",
            net.delay_rules(&n)
        );
    }
    drop(net);
    assert_eq!(host_ruleset(), before, "the host's ruleset changed");
    let host = common::sh(&["iptables", "-w", "-S"]);
    assert!(!host.contains("FAULTLINE-DELAY"), "{host}");
}

#[tokio::test]
async fn nfqueue_delay_follows_restarts_and_heal_releases_held_packets() {
    let Some(caps) = nfqueue_caps().await else {
        return;
    };
    let net = TestNet::new();
    let _listeners = net.listen();
    let mut nem = Nemesis::new(net.dyn_nodes(), caps).expect("nemesis");
    let delay = |nodes: &[&str], ms| Fault::Delay {
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        ms,
    };

    // Kill + start while delayed: start moves the delay into the node's namespace again.
    nem.apply(&delay(&["n1", "n3"], 100)).await.expect("delay");
    nem.apply(&Fault::Kill(vec!["n1".into()]))
        .await
        .expect("kill");
    let done = nem
        .apply(&Fault::Start(vec!["n1".into()]))
        .await
        .expect("start");
    assert!(done.deferred.is_empty(), "{done:?}");
    assert_eq!(
        net.delay_rules("n1").len(),
        3,
        "{:?}",
        net.delay_rules("n1")
    );
    let after_restart = net.connect_ms("n2", "n1", 10);
    eprintln!(
        "TCP connect n2->n1 after a restart of n1: {}",
        summary(&after_restart)
    );
    assert!(after_restart[0] >= 100.0, "{after_restart:?}");
    // Each node has its own queue.
    let n3_rules = net.delay_rules("n3");
    assert!(
        n3_rules.iter().any(|r| r.contains("--queue-num 64002")),
        "{n3_rules:?}"
    );

    // A delay applied while the node is down waits for its start.
    nem.apply(&Fault::PacketHeal(vec!["n1".into(), "n3".into()]))
        .await
        .expect("packet heal");
    nem.apply(&Fault::Kill(vec!["n2".into()]))
        .await
        .expect("kill n2");
    let done = nem.apply(&delay(&["n2"], 100)).await.expect("delay n2");
    assert_eq!(done.deferred, vec!["n2".to_string()]);
    assert!(net.delay_rules("n2").is_empty());
    nem.apply(&Fault::Start(vec!["n2".into()]))
        .await
        .expect("start n2");
    assert_eq!(net.delay_rules("n2").len(), 3);
    let to_n2 = net.connect_ms("n1", "n2", 10);
    assert!(to_n2[0] >= 100.0, "{to_n2:?}");

    // A long delay: datagrams are held, and a heal releases them at once (not dropped).
    nem.apply(&delay(&["n2"], 20_000))
        .await
        .expect("long delay");
    let port = 7990;
    let n3 = net.node("n3").path();
    let rx = common::in_netns(&n3, move || {
        std::net::UdpSocket::bind(("0.0.0.0", port)).expect("bind")
    });
    rx.set_nonblocking(true).expect("nonblocking");
    let dst = std::net::SocketAddr::new(net.node("n3").ip, port);
    common::in_netns(&net.node("n2").path(), move || {
        let tx = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind tx");
        for i in 0..5u8 {
            tx.send_to(&[i], dst).expect("send");
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut buf = [0u8; 8];
    assert!(rx.recv(&mut buf).is_err(), "a datagram passed a 20 s delay");
    let started = std::time::Instant::now();
    nem.heal_all().await.expect("heal all");
    let healed_in = started.elapsed();
    rx.set_nonblocking(false).expect("blocking");
    rx.set_read_timeout(Some(std::time::Duration::from_secs(1)))
        .expect("timeout");
    let mut got = Vec::new();
    while let Ok(n) = rx.recv(&mut buf) {
        got.extend_from_slice(&buf[..n]);
        if got.len() == 5 {
            break;
        }
    }
    eprintln!(
        "heal_all with 5 datagrams held took {healed_in:?}; released {} in order {got:?}",
        got.len()
    );
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
    assert!(
        healed_in < std::time::Duration::from_secs(2),
        "{healed_in:?}"
    );
    for n in net.names() {
        assert!(
            net.delay_rules(&n).is_empty(),
            "{n}: {:?}",
            net.delay_rules(&n)
        );
    }
}
