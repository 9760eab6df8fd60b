//! Partition topologies: pure, seeded functions from node names to a [`Grudge`].
//!
//! Every grudge built here has an entry for every node of the cluster (possibly empty),
//! never makes a node drop from itself, and names only nodes of the cluster.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Grudge, NemesisError};

/// A way to split the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// The node list cut in two at `n / 2`, in the given order (smaller half first).
    Halves,
    /// The node list shuffled, then cut in two.
    RandomHalves,
    /// One random node cut off from all others.
    IsolateOne,
    /// Each node sees a majority (itself included), no two nodes the same one (n >= 4).
    MajoritiesRing,
    /// Two halves that both see one bridge node.
    Bridge,
    /// The given node (e.g. the leader) cut off from all others.
    Isolate(String),
}

impl Topology {
    /// The topologies a schedule draws from by default (all but [`Topology::Isolate`],
    /// which needs a node chosen by the caller).
    pub fn defaults() -> Vec<Topology> {
        vec![
            Topology::Halves,
            Topology::RandomHalves,
            Topology::IsolateOne,
            Topology::MajoritiesRing,
            Topology::Bridge,
        ]
    }

    /// The smallest cluster the topology works on.
    pub fn min_nodes(&self) -> usize {
        match self {
            Topology::Halves | Topology::RandomHalves | Topology::IsolateOne => 2,
            Topology::Isolate(_) => 2,
            Topology::MajoritiesRing | Topology::Bridge => 3,
        }
    }
}

/// Builds the grudge of `topology` over `nodes`, drawing randomness from `rng`.
pub fn grudge<R: Rng + ?Sized>(
    topology: &Topology,
    nodes: &[String],
    rng: &mut R,
) -> Result<Grudge, NemesisError> {
    match topology {
        Topology::Halves => halves(nodes),
        Topology::RandomHalves => random_halves(nodes, rng),
        Topology::IsolateOne => isolate_one(nodes, rng),
        Topology::MajoritiesRing => majorities_ring(nodes, rng),
        Topology::Bridge => bridge(nodes, rng),
        Topology::Isolate(node) => isolate(nodes, node),
    }
}

fn check(nodes: &[String], what: &'static str, needed: usize) -> Result<(), NemesisError> {
    if nodes.len() < needed {
        return Err(NemesisError::TooFewNodes {
            what,
            needed,
            got: nodes.len(),
        });
    }
    let mut seen = BTreeSet::new();
    for n in nodes {
        if !seen.insert(n) {
            return Err(NemesisError::DuplicateNode(n.clone()));
        }
    }
    Ok(())
}

/// The grudge in which each node drops packets from every node outside its component.
///
/// Nodes that appear in no component are not part of the result.
pub fn complete(components: &[Vec<String>]) -> Grudge {
    let universe: BTreeSet<&String> = components.iter().flatten().collect();
    let mut map = BTreeMap::new();
    for component in components {
        let own: BTreeSet<&String> = component.iter().collect();
        let others: BTreeSet<String> = universe
            .iter()
            .filter(|n| !own.contains(*n))
            .map(|n| (*n).clone())
            .collect();
        for node in component {
            map.insert(node.clone(), others.clone());
        }
    }
    Grudge(map)
}

fn bisect(nodes: &[String]) -> Vec<Vec<String>> {
    let (a, b) = nodes.split_at(nodes.len() / 2);
    vec![a.to_vec(), b.to_vec()]
}

fn shuffled<R: Rng + ?Sized>(nodes: &[String], rng: &mut R) -> Vec<String> {
    let mut v = nodes.to_vec();
    v.shuffle(rng);
    v
}

/// Cuts the node list in two at `n / 2` (smaller half first), in the given order.
pub fn halves(nodes: &[String]) -> Result<Grudge, NemesisError> {
    check(nodes, "halves", 2)?;
    Ok(complete(&bisect(nodes)))
}

/// Shuffles the nodes, then cuts them in two.
pub fn random_halves<R: Rng + ?Sized>(
    nodes: &[String],
    rng: &mut R,
) -> Result<Grudge, NemesisError> {
    check(nodes, "random halves", 2)?;
    Ok(complete(&bisect(&shuffled(nodes, rng))))
}

/// Cuts one random node off from all the others.
pub fn isolate_one<R: Rng + ?Sized>(nodes: &[String], rng: &mut R) -> Result<Grudge, NemesisError> {
    check(nodes, "isolate one", 2)?;
    let i = rng.gen_range(0..nodes.len());
    isolate(nodes, &nodes[i])
}

/// Cuts `node` (for example the current leader) off from all the others.
pub fn isolate(nodes: &[String], node: &str) -> Result<Grudge, NemesisError> {
    check(nodes, "isolate", 2)?;
    if !nodes.iter().any(|n| n == node) {
        return Err(NemesisError::UnknownNode(node.to_string()));
    }
    let rest: Vec<String> = nodes.iter().filter(|n| *n != node).cloned().collect();
    Ok(complete(&[vec![node.to_string()], rest]))
}

/// Two halves that both see one bridge node: the shuffled nodes cut at `n / 2`, and the
/// first node of the second half left out of every drop.
pub fn bridge<R: Rng + ?Sized>(nodes: &[String], rng: &mut R) -> Result<Grudge, NemesisError> {
    check(nodes, "bridge", 3)?;
    let order = shuffled(nodes, rng);
    let halves = bisect(&order);
    let bridge_node = halves[1][0].clone();
    let mut grudge = complete(&halves);
    for (node, srcs) in grudge.0.iter_mut() {
        if *node == bridge_node {
            srcs.clear();
        } else {
            srcs.remove(&bridge_node);
        }
    }
    Ok(grudge)
}

/// Each node sees a majority (itself included), and no two nodes see the same set.
///
/// The nodes are shuffled onto a ring. With four or more nodes each node keeps the `k`
/// nearest nodes on either side (`k = m / 2` for a majority `m = n / 2 + 1`) and drops from
/// the rest; the grudge is symmetric, each node sees `2k + 1 >= m` nodes, and the views are
/// distinct because `2k + 1 < n`. Three nodes cannot each see a distinct majority with
/// symmetric drops; there each node keeps only its successor on the ring (one-way drops,
/// as in Jepsen's ring). Over TCP that cuts every pair, since one side drops the other.
pub fn majorities_ring<R: Rng + ?Sized>(
    nodes: &[String],
    rng: &mut R,
) -> Result<Grudge, NemesisError> {
    check(nodes, "majorities ring", 3)?;
    let ring = shuffled(nodes, rng);
    let n = ring.len();
    let mut map = BTreeMap::new();
    if n == 3 {
        for i in 0..n {
            let dropped = ring[(i + 2) % n].clone();
            map.insert(ring[i].clone(), BTreeSet::from([dropped]));
        }
        return Ok(Grudge(map));
    }
    let majority = n / 2 + 1;
    let k = majority / 2;
    for i in 0..n {
        let srcs: BTreeSet<String> = (0..n)
            .filter(|&j| {
                let d = (j + n - i) % n;
                d.min(n - d) > k
            })
            .map(|j| ring[j].clone())
            .collect();
        map.insert(ring[i].clone(), srcs);
    }
    Ok(Grudge(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// For each node, the nodes it can talk to both ways (itself included).
    fn views(g: &Grudge, nodes: &[String]) -> BTreeMap<String, BTreeSet<String>> {
        nodes
            .iter()
            .map(|a| {
                let seen = nodes
                    .iter()
                    .filter(|b| g.connected(a, b))
                    .cloned()
                    .collect();
                (a.clone(), seen)
            })
            .collect()
    }

    fn assert_well_formed(g: &Grudge, nodes: &[String], ctx: &str) {
        let keys: BTreeSet<&String> = g.0.keys().collect();
        let all: BTreeSet<&String> = nodes.iter().collect();
        assert_eq!(keys, all, "coverage: {ctx}");
        for (dst, srcs) in &g.0 {
            assert!(!srcs.contains(dst), "{dst} drops from itself: {ctx}");
            assert!(srcs.iter().all(|s| all.contains(s)), "stranger in {ctx}");
        }
    }

    #[test]
    fn halves_golden() {
        let g = halves(&names(5)).unwrap();
        let text = serde_json::to_string(&g).unwrap();
        assert_eq!(
            text,
            r#"{"n1":["n3","n4","n5"],"n2":["n3","n4","n5"],"n3":["n1","n2"],"n4":["n1","n2"],"n5":["n1","n2"]}"#
        );
    }

    #[test]
    fn halves_properties() {
        for n in 2..=9 {
            let nodes = names(n);
            for seed in 0..40u64 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let ctx = format!("n={n} seed={seed}");
                for g in [
                    halves(&nodes).unwrap(),
                    random_halves(&nodes, &mut rng).unwrap(),
                ] {
                    assert_well_formed(&g, &nodes, &ctx);
                    assert!(g.is_symmetric(), "{ctx}");
                    let v = views(&g, &nodes);
                    let mut sizes: Vec<usize> = v.values().map(BTreeSet::len).collect();
                    sizes.sort_unstable();
                    assert_eq!(sizes[0], n / 2, "{ctx}");
                    assert_eq!(sizes[n - 1], n - n / 2, "{ctx}");
                    // Views are equivalence classes: exactly two distinct components.
                    let comps: BTreeSet<&BTreeSet<String>> = v.values().collect();
                    assert_eq!(comps.len(), 2, "{ctx}");
                    for (a, seen) in &v {
                        for b in seen {
                            assert_eq!(&v[b], seen, "{a} and {b} disagree: {ctx}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn random_halves_depend_on_the_seed_only() {
        let nodes = names(7);
        let run = |seed| random_halves(&nodes, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        assert_eq!(run(42), run(42));
        let distinct: BTreeSet<String> = (0..20u64)
            .map(|s| serde_json::to_string(&run(s)).unwrap())
            .collect();
        assert!(
            distinct.len() > 5,
            "only {} distinct splits",
            distinct.len()
        );
    }

    #[test]
    fn isolate_properties() {
        for n in 2..=9 {
            let nodes = names(n);
            for seed in 0..40u64 {
                let ctx = format!("n={n} seed={seed}");
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let chosen = &nodes[seed as usize % n];
                for (g, lone) in [
                    (isolate(&nodes, chosen).unwrap(), Some(chosen)),
                    (isolate_one(&nodes, &mut rng).unwrap(), None),
                ] {
                    assert_well_formed(&g, &nodes, &ctx);
                    assert!(g.is_symmetric(), "{ctx}");
                    let v = views(&g, &nodes);
                    let alone: Vec<&String> = v
                        .iter()
                        .filter(|(_, s)| s.len() == 1)
                        .map(|(k, _)| k)
                        .collect();
                    assert_eq!(alone.len(), if n == 2 { 2 } else { 1 }, "{ctx}");
                    if let Some(lone) = lone {
                        assert!(alone.contains(&lone), "{ctx}");
                        for other in nodes.iter().filter(|o| *o != lone) {
                            assert_eq!(v[other].len(), n - 1, "{ctx}");
                        }
                    }
                }
            }
        }
        assert!(matches!(
            isolate(&names(3), "n9"),
            Err(NemesisError::UnknownNode(n)) if n == "n9"
        ));
    }

    #[test]
    fn bridge_properties() {
        for n in 3..=9 {
            let nodes = names(n);
            for seed in 0..40u64 {
                let ctx = format!("n={n} seed={seed}");
                let g = bridge(&nodes, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
                assert_well_formed(&g, &nodes, &ctx);
                assert!(g.is_symmetric(), "{ctx}");
                let v = views(&g, &nodes);
                let bridges: Vec<&String> = v
                    .iter()
                    .filter(|(_, s)| s.len() == n)
                    .map(|(k, _)| k)
                    .collect();
                assert_eq!(bridges.len(), 1, "one bridge node: {ctx}");
                let b = bridges[0];
                assert!(g.drops_from(b).is_empty(), "{ctx}");
                // Without the bridge, the rest splits into two sides that cannot talk.
                let sides: BTreeSet<BTreeSet<String>> = v
                    .iter()
                    .filter(|(k, _)| *k != b)
                    .map(|(_, s)| s.iter().filter(|x| *x != b).cloned().collect())
                    .collect();
                assert_eq!(sides.len(), 2, "{ctx}");
                let sizes: BTreeSet<usize> = sides.iter().map(BTreeSet::len).collect();
                let expected: BTreeSet<usize> = [n / 2, n - n / 2 - 1].into();
                assert_eq!(sizes, expected, "{ctx}");
            }
        }
        assert!(matches!(
            bridge(&names(2), &mut ChaCha8Rng::seed_from_u64(0)),
            Err(NemesisError::TooFewNodes { needed: 3, .. })
        ));
    }

    #[test]
    fn majorities_ring_properties() {
        for n in 4..=11 {
            let nodes = names(n);
            let majority = n / 2 + 1;
            for seed in 0..40u64 {
                let ctx = format!("n={n} seed={seed}");
                let g = majorities_ring(&nodes, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
                assert_well_formed(&g, &nodes, &ctx);
                assert!(g.is_symmetric(), "{ctx}");
                assert!(!g.is_empty(), "{ctx}");
                let v = views(&g, &nodes);
                for (node, seen) in &v {
                    assert!(seen.len() >= majority, "{node} sees {seen:?}: {ctx}");
                    assert!(seen.len() < n, "{node} sees everyone: {ctx}");
                }
                let distinct: BTreeSet<&BTreeSet<String>> = v.values().collect();
                assert_eq!(distinct.len(), n, "views not distinct: {ctx}");
            }
        }
    }

    #[test]
    fn majorities_ring_of_three_keeps_one_way_successors() {
        let nodes = names(3);
        for seed in 0..20u64 {
            let g = majorities_ring(&nodes, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
            assert_well_formed(&g, &nodes, &format!("seed={seed}"));
            // Each node drops exactly one, a different one each: a directed cycle.
            let dropped: BTreeSet<String> =
                g.0.values()
                    .map(|s| s.iter().next().cloned().unwrap_or_default())
                    .collect();
            assert!(g.0.values().all(|s| s.len() == 1), "seed={seed}");
            assert_eq!(dropped.len(), 3, "seed={seed}");
            assert!(!g.is_symmetric(), "seed={seed}");
        }
    }

    #[test]
    fn rejects_duplicates_and_tiny_clusters() {
        let dup = vec!["a".to_string(), "b".to_string(), "a".to_string()];
        assert!(matches!(halves(&dup), Err(NemesisError::DuplicateNode(n)) if n == "a"));
        let one = names(1);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for t in Topology::defaults() {
            assert!(grudge(&t, &one, &mut rng).is_err(), "{t:?}");
        }
    }
}
