//! Real mechanism tests: three network namespaces on a bridge, partitions and loss applied
//! by the nemesis from the host, observed with TCP connects and UDP datagrams from inside
//! the namespaces. Needs root, ip, nft, iptables and nsenter (fails with CI=true when
//! missing; skipped with a notice otherwise).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{host_ruleset, require_netns_tools, TestNet};
use faultline_nemesis::grudge::{isolate, majorities_ring};
use faultline_nemesis::{Capabilities, Fault, Grudge, Mechanism, Nemesis, NetBackend};
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
    let before = host_ruleset();
    assert!(
        before.ours.is_empty(),
        "our rules on the host before the test: {before:?}"
    );
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
    let before = host_ruleset();
    assert!(
        before.ours.is_empty(),
        "our rules on the host before the test: {before:?}"
    );
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
    if caps.netem {
        let done = result.expect("delay with netem");
        assert_eq!(done.mechanism, Mechanism::Netem);
        let qdisc = net.exec("n1", &["tc", "qdisc", "show", "dev", "eth0"]);
        assert!(qdisc.contains("netem") && qdisc.contains("30ms"), "{qdisc}");
        nem.apply(&Fault::PacketHeal(vec!["n1".into()]))
            .await
            .expect("heal delay");
        let qdisc = net.exec("n1", &["tc", "qdisc", "show", "dev", "eth0"]);
        assert!(!qdisc.contains("netem"), "{qdisc}");
    } else {
        let err = result
            .expect_err("delay without netem must be refused")
            .to_string();
        assert!(err.contains("netem"), "{err}");
        assert!(caps.check(&[faultline_nemesis::Family::Delay]).is_err());
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
