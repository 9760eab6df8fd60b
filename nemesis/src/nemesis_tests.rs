//! Unit tests of the nemesis with recording nodes: delegation, clock state, refusals and
//! deferred packet state. The real packet mechanisms are tested in `tests/netns.rs`.

use super::*;
use crate::clock::TIMESTAMP_FILE;
use crate::node::fake::FakeNode;
use crate::Strobe;
use std::collections::BTreeSet;
use std::path::PathBuf;

struct Setup {
    nodes: Vec<Arc<FakeNode>>,
    dir: PathBuf,
}

impl Setup {
    fn new(tag: &str, fail: Option<(&str, &'static str)>) -> Setup {
        let dir =
            std::env::temp_dir().join(format!("faultline-nemesis-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let nodes = (1..=3u8)
            .map(|i| {
                let name = format!("n{i}");
                let clock = dir.join(&name);
                crate::clock::init_clock_dir(&clock).unwrap();
                let mut node = FakeNode::new(&name, 10 + i, clock);
                if let Some((who, op)) = fail {
                    if who == name {
                        node.fail_on = Some(op);
                    }
                }
                Arc::new(node)
            })
            .collect();
        Setup { nodes, dir }
    }

    fn nemesis(&self, caps: Capabilities) -> Nemesis {
        let nodes: Vec<Arc<dyn Node>> = self
            .nodes
            .iter()
            .map(|n| n.clone() as Arc<dyn Node>)
            .collect();
        Nemesis::new(nodes, caps).unwrap()
    }

    fn clock(&self, node: &str) -> String {
        std::fs::read_to_string(self.dir.join(node).join(TIMESTAMP_FILE)).unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn v(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn process_faults_are_delegated_to_the_runtime() {
    let s = Setup::new("delegate", None);
    let mut nem = s.nemesis(Capabilities::default());
    for fault in [
        Fault::Kill(v(&["n1", "n3"])),
        Fault::Start(v(&["n1", "n3"])),
        Fault::Pause(v(&["n2"])),
        Fault::Resume(v(&["n2"])),
    ] {
        let done = nem.apply(&fault).await.unwrap();
        assert_eq!(done.mechanism, Mechanism::Runtime);
        assert_eq!(done.fault, fault.name());
    }
    assert_eq!(s.nodes[0].calls(), v(&["kill n1", "start n1"]));
    assert_eq!(s.nodes[1].calls(), v(&["pause n2", "resume n2"]));
    assert_eq!(s.nodes[2].calls(), v(&["kill n3", "start n3"]));
}

#[tokio::test]
async fn runtime_failures_name_the_node_and_operation() {
    let s = Setup::new("fail", Some(("n2", "pause")));
    let mut nem = s.nemesis(Capabilities::default());
    let err = nem
        .apply(&Fault::Pause(v(&["n1", "n2"])))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NemesisError::Node { node, op: "pause", .. } if node == "n2"),
        "{err}"
    );
    assert!(
        err.to_string().contains("refused by the fake runtime"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_nodes_are_refused_before_any_effect() {
    let s = Setup::new("unknown", None);
    let mut nem = s.nemesis(Capabilities::default());
    let err = nem.apply(&Fault::Kill(v(&["n1", "n9"]))).await.unwrap_err();
    assert!(
        matches!(err, NemesisError::UnknownNode(ref n) if n == "n9"),
        "{err}"
    );
    assert!(s.nodes[0].calls().is_empty());
    let grudge = crate::grudge::isolate(&v(&["n1", "n9"]), "n9").unwrap();
    let err = nem.apply(&Fault::Partition(grudge)).await.unwrap_err();
    assert!(matches!(err, NemesisError::UnknownNode(_)), "{err}");
    assert!(nem.grudge().is_empty());
}

#[tokio::test]
async fn clock_bumps_accumulate_and_reset_restores_zero() {
    let s = Setup::new("clock", None);
    let mut nem = s.nemesis(Capabilities::default());
    let bump = |pairs: &[(&str, i64)]| {
        Fault::ClockBump(pairs.iter().map(|(n, d)| (n.to_string(), *d)).collect())
    };
    let done = nem
        .apply(&bump(&[("n1", 1000), ("n2", -250)]))
        .await
        .unwrap();
    assert_eq!(done.mechanism, Mechanism::Faketime);
    assert_eq!(done.nodes, v(&["n1", "n2"]));
    nem.apply(&bump(&[("n1", -3000)])).await.unwrap();
    assert_eq!(s.clock("n1"), "-2s\n");
    assert_eq!(s.clock("n2"), "-0.25s\n");
    assert_eq!(s.clock("n3"), "+0s\n");
    assert_eq!(nem.clock_offsets().get("n1"), Some(&-2000));
    nem.apply(&Fault::ClockReset(v(&["n1", "n2", "n3"])))
        .await
        .unwrap();
    for n in ["n1", "n2", "n3"] {
        assert_eq!(s.clock(n), "+0s\n", "{n}");
    }
    assert!(nem.clock_offsets().is_empty());
}

#[tokio::test]
async fn strobe_runs_until_reset() {
    let s = Setup::new("strobe", None);
    let mut nem = s.nemesis(Capabilities::default());
    let mut strobes = BTreeMap::new();
    strobes.insert(
        "n3".to_string(),
        Strobe {
            delta_ms: 4000,
            period_ms: 15,
            duration_ms: 60_000,
        },
    );
    nem.apply(&Fault::ClockStrobe(strobes)).await.unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        seen.insert(s.clock("n3"));
    }
    assert_eq!(
        seen,
        BTreeSet::from(["+0s\n".to_string(), "+4s\n".to_string()])
    );
    nem.heal_all().await.unwrap();
    assert_eq!(s.clock("n3"), "+0s\n");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(s.clock("n3"), "+0s\n", "strobe still running after reset");
}

#[tokio::test]
async fn delay_is_refused_without_netem() {
    let s = Setup::new("delay", None);
    let mut nem = s.nemesis(Capabilities::default());
    let err = nem
        .apply(&Fault::Delay {
            nodes: v(&["n1"]),
            ms: 50,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot apply delay"), "{err}");
    assert!(err.contains("netem"), "{err}");
    let err = nem
        .apply(&Fault::Rate {
            nodes: v(&["n1"]),
            kbit: 100,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot apply rate"), "{err}");
    assert!(err.contains("tbf"), "{err}");
}

#[tokio::test]
async fn loss_outside_1_to_100_is_refused() {
    let s = Setup::new("loss", None);
    let mut nem = s
        .nemesis(Capabilities::default())
        .with_backend(NetBackend::Nft);
    for percent in [0, 101] {
        let err = nem
            .apply(&Fault::Loss {
                nodes: v(&["n1"]),
                percent,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, NemesisError::InvalidConfig(_)),
            "{percent}: {err}"
        );
    }
}

#[tokio::test]
async fn packet_state_of_down_nodes_is_kept_for_later() {
    let s = Setup::new("deferred", None);
    let mut nem = s
        .nemesis(Capabilities::default())
        .with_backend(NetBackend::Nft);
    let grudge = crate::grudge::isolate(&v(&["n1", "n2", "n3"]), "n2").unwrap();
    let done = nem.apply(&Fault::Partition(grudge.clone())).await.unwrap();
    assert_eq!(done.mechanism, Mechanism::Nft);
    assert!(done.nodes.is_empty());
    assert_eq!(done.deferred, v(&["n1", "n2", "n3"]));
    assert_eq!(nem.grudge(), &grudge);
    let rules = nem.net_rules("n2").unwrap();
    let expected: BTreeSet<IpAddr> = [
        IpAddr::from([10, 77, 250, 11]),
        IpAddr::from([10, 77, 250, 13]),
    ]
    .into();
    assert_eq!(rules.drop_from, expected);
    // Starting the node re-applies its state; still without a namespace, it stays deferred.
    let done = nem.apply(&Fault::Start(v(&["n2"]))).await.unwrap();
    assert_eq!(done.deferred, v(&["n2"]));
    nem.apply(&Fault::Heal).await.unwrap();
    assert!(nem.grudge().is_empty());
    assert!(nem.net_rules("n2").unwrap().is_empty());
}

#[tokio::test]
async fn no_backend_means_partitions_are_refused_but_starts_work() {
    let s = Setup::new("nobackend", None);
    let mut nem = s.nemesis(Capabilities::default());
    assert_eq!(nem.backend(), None);
    let done = nem.apply(&Fault::Start(v(&["n1"]))).await.unwrap();
    assert_eq!(done.mechanism, Mechanism::Runtime);
    // Nothing can be in force, so healing has nothing to do...
    let done = nem.apply(&Fault::Heal).await.unwrap();
    assert_eq!(done.mechanism, Mechanism::None);
    // ...but a partition or loss is refused, naming the fix, and leaves no state behind.
    let grudge = crate::grudge::isolate(&v(&["n1", "n2", "n3"]), "n1").unwrap();
    let err = nem
        .apply(&Fault::Partition(grudge))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("apt-get install nftables"), "{err}");
    let err = nem
        .apply(&Fault::Loss {
            nodes: v(&["n2"]),
            percent: 20,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("neither nft nor iptables"), "{err}");
    assert!(nem.grudge().is_empty());
    assert!(nem.net_rules("n2").unwrap().is_empty());
}

#[test]
fn duplicate_node_names_are_refused() {
    let s = Setup::new("dup", None);
    let nodes: Vec<Arc<dyn Node>> = vec![s.nodes[0].clone(), s.nodes[0].clone()];
    let err = Nemesis::new(nodes, Capabilities::default()).unwrap_err();
    assert!(
        matches!(err, NemesisError::DuplicateNode(ref n) if n == "n1"),
        "{err}"
    );
}
