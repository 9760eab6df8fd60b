//! Faults as data: what the nemesis does, serialisable so that each one can be recorded
//! as a `nemesis` event in the history (`f` = [`Fault::name`], `value` = [`Fault::value`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A partition plan: for each node, the set of nodes it drops packets from.
///
/// A node drops packets *arriving from* the nodes in its set; nothing else. A grudge of A
/// dropping from B plus B dropping from A blocks both directions; A dropping from B alone
/// still breaks TCP both ways (the handshake needs packets in both directions) but lets
/// B receive A's UDP datagrams. The topologies in [`crate::grudge`] give every node of the
/// cluster an entry, possibly empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grudge(pub BTreeMap<String, BTreeSet<String>>);

impl Grudge {
    /// The nodes `node` drops packets from (empty if it has no entry).
    pub fn drops_from(&self, node: &str) -> BTreeSet<String> {
        self.0.get(node).cloned().unwrap_or_default()
    }

    /// True when `a` and `b` can exchange packets both ways: neither drops from the other.
    pub fn connected(&self, a: &str, b: &str) -> bool {
        let a_drops = self.0.get(a).is_some_and(|s| s.contains(b));
        let b_drops = self.0.get(b).is_some_and(|s| s.contains(a));
        !a_drops && !b_drops
    }

    /// True when every drop has its mirror (A drops from B exactly when B drops from A).
    pub fn is_symmetric(&self) -> bool {
        self.0.iter().all(|(dst, srcs)| {
            srcs.iter()
                .all(|src| self.0.get(src).is_some_and(|s| s.contains(dst)))
        })
    }

    /// True when no node drops packets from anyone.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }
}

/// One clock strobe: flip a node's clock between its current offset and that offset
/// plus `delta_ms`, every `period_ms`, for `duration_ms` (or until a reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strobe {
    /// How far the clock jumps on each flip, in milliseconds (either sign).
    pub delta_ms: i64,
    /// Time between flips, in milliseconds (at least 1).
    pub period_ms: u64,
    /// How long the strobe lasts, in milliseconds.
    pub duration_ms: u64,
}

/// One nemesis action.
///
/// Serialised adjacently tagged, the way the history records it:
/// `{"f":"partition","value":{"n1":["n3"],"n3":["n1"]}}`, `{"f":"kill","value":["n2"]}`,
/// `{"f":"heal","value":null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", content = "value", rename_all = "snake_case")]
pub enum Fault {
    /// Apply a grudge (replacing any earlier one).
    Partition(Grudge),
    /// Remove every partition rule on every node.
    Heal,
    /// Kill the nodes' processes (SIGKILL).
    Kill(Vec<String>),
    /// Start killed nodes again (the partition state is re-applied afterwards).
    Start(Vec<String>),
    /// Pause the nodes (SIGSTOP or the engine's freezer).
    Pause(Vec<String>),
    /// Resume paused nodes.
    Resume(Vec<String>),
    /// Move each node's clock by the given milliseconds (either sign), on top of its
    /// current offset.
    ClockBump(BTreeMap<String, i64>),
    /// Strobe each node's clock.
    ClockStrobe(BTreeMap<String, Strobe>),
    /// Stop any strobe and set the nodes' clock offsets back to zero.
    ClockReset(Vec<String>),
    /// The nodes drop this percentage of the packets they receive (loopback excepted).
    Loss {
        /// The nodes.
        nodes: Vec<String>,
        /// 1..=100.
        percent: u8,
    },
    /// The nodes delay every packet they send by this many milliseconds (netem, or the
    /// NFQUEUE delayer where the kernel has no netem).
    Delay {
        /// The nodes.
        nodes: Vec<String>,
        /// The delay.
        ms: u32,
    },
    /// The nodes send at most this many kilobits per second (tbf).
    Rate {
        /// The nodes.
        nodes: Vec<String>,
        /// The rate.
        kbit: u32,
    },
    /// Stop loss, delay and rate limits on the nodes.
    PacketHeal(Vec<String>),
    /// A fault aimed at whichever node leads when it is applied. The schedule cannot know
    /// the leader, so the caller asks the target and turns it into concrete faults with a
    /// [`LeaderAim`] before applying them; the history records those.
    Leader(LeaderFault),
}

/// A fault aimed at the current leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LeaderFault {
    /// Move the leader's clock by `clock_ms` (when set), then cut it off from all the others.
    Isolate {
        /// The clock jump applied first, in milliseconds (negative: back in time).
        clock_ms: Option<i64>,
    },
    /// Move the leader's clock by `clock_ms` (when set), then pause it.
    Pause {
        /// The clock jump applied first, in milliseconds (negative: back in time).
        clock_ms: Option<i64>,
    },
    /// Undo the leader fault in force: heal or resume the node, and reset its clock.
    Undo,
}

/// Turns [`LeaderFault`]s into concrete faults, remembering which node the fault in force
/// hit so that [`LeaderFault::Undo`] undoes exactly that. Pure: the caller finds the leader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderAim {
    in_force: Option<(String, LeaderFault)>,
}

impl LeaderAim {
    /// A tracker with no leader fault in force.
    pub fn new() -> Self {
        LeaderAim::default()
    }

    /// The node hit by the leader fault in force, if any.
    pub fn in_force(&self) -> Option<&str> {
        self.in_force.as_ref().map(|(n, _)| n.as_str())
    }

    /// The concrete faults for `fault`, given the node that leads now (`None`: nobody
    /// claims to lead) among `nodes`. An aimed fault needs a leader: without one this
    /// returns an error that says so, and nothing is in force. An undo with nothing in
    /// force gives no fault.
    pub fn resolve(
        &mut self,
        fault: &LeaderFault,
        leader: Option<&str>,
        nodes: &[String],
    ) -> Result<Vec<Fault>, crate::NemesisError> {
        let clock_first = |leader: &str, clock_ms: &Option<i64>| {
            clock_ms.map(|ms| Fault::ClockBump(BTreeMap::from([(leader.to_string(), ms)])))
        };
        match fault {
            LeaderFault::Undo => {
                let Some((node, done)) = self.in_force.take() else {
                    return Ok(Vec::new());
                };
                let (undo, clock) = match done {
                    LeaderFault::Isolate { clock_ms } => (Fault::Heal, clock_ms),
                    LeaderFault::Pause { clock_ms } => {
                        (Fault::Resume(vec![node.clone()]), clock_ms)
                    }
                    LeaderFault::Undo => return Ok(Vec::new()),
                };
                let mut out = vec![undo];
                if clock.is_some() {
                    out.push(Fault::ClockReset(vec![node]));
                }
                Ok(out)
            }
            LeaderFault::Isolate { clock_ms } | LeaderFault::Pause { clock_ms } => {
                let leader = leader.ok_or_else(|| {
                    crate::NemesisError::InvalidConfig(
                        "no node claims to lead, so there is no leader to aim at".into(),
                    )
                })?;
                if !nodes.iter().any(|n| n == leader) {
                    return Err(crate::NemesisError::UnknownNode(leader.to_string()));
                }
                let mut out: Vec<Fault> = clock_first(leader, clock_ms).into_iter().collect();
                out.push(match fault {
                    LeaderFault::Isolate { .. } => {
                        Fault::Partition(crate::grudge::isolate(nodes, leader)?)
                    }
                    _ => Fault::Pause(vec![leader.to_string()]),
                });
                self.in_force = Some((leader.to_string(), *fault));
                Ok(out)
            }
        }
    }
}

/// A fault family: faults that start, last, and are undone by their own kind of action.
///
/// Loss, delay and rate are all undone by [`Fault::PacketHeal`], so a schedule never has
/// two of them active at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// partition / heal
    Partition,
    /// kill / start
    Kill,
    /// pause / resume
    Pause,
    /// clock bump or strobe / clock reset
    Clock,
    /// loss / packet heal
    Loss,
    /// delay / packet heal
    Delay,
    /// rate / packet heal
    Rate,
    /// isolate or pause the current leader, after moving its clock back when clock faults
    /// are also requested / undo
    Leader,
}

impl Family {
    /// Every family, in the order the final healing phase undoes them.
    pub const ALL: [Family; 8] = [
        Family::Leader,
        Family::Partition,
        Family::Pause,
        Family::Kill,
        Family::Clock,
        Family::Loss,
        Family::Delay,
        Family::Rate,
    ];

    /// The family's name as written in plans and messages.
    pub fn name(self) -> &'static str {
        match self {
            Family::Partition => "partition",
            Family::Kill => "kill",
            Family::Pause => "pause",
            Family::Clock => "clock",
            Family::Loss => "loss",
            Family::Delay => "delay",
            Family::Rate => "rate",
            Family::Leader => "leader",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Family {
    type Err = crate::NemesisError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                crate::NemesisError::InvalidConfig(format!(
                    "unknown nemesis {s:?} (known: partition, kill, pause, clock, loss, delay, rate, leader)"
                ))
            })
    }
}

impl Fault {
    /// The history's `f` for this fault (`partition`, `clock_bump`, `packet_heal`...).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Partition(_) => "partition",
            Fault::Heal => "heal",
            Fault::Kill(_) => "kill",
            Fault::Start(_) => "start",
            Fault::Pause(_) => "pause",
            Fault::Resume(_) => "resume",
            Fault::ClockBump(_) => "clock_bump",
            Fault::ClockStrobe(_) => "clock_strobe",
            Fault::ClockReset(_) => "clock_reset",
            Fault::Loss { .. } => "loss",
            Fault::Delay { .. } => "delay",
            Fault::Rate { .. } => "rate",
            Fault::PacketHeal(_) => "packet_heal",
            Fault::Leader(LeaderFault::Isolate { .. }) => "leader_isolate",
            Fault::Leader(LeaderFault::Pause { .. }) => "leader_pause",
            Fault::Leader(LeaderFault::Undo) => "leader_undo",
        }
    }

    /// The history's `value` for this fault: its details as JSON (`null` for a heal).
    pub fn value(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => {
                map.remove("value").unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }

    /// True for the actions that undo a fault (heal, start, resume, clock reset, packet heal).
    pub fn is_undo(&self) -> bool {
        matches!(
            self,
            Fault::Heal
                | Fault::Start(_)
                | Fault::Resume(_)
                | Fault::ClockReset(_)
                | Fault::PacketHeal(_)
                | Fault::Leader(LeaderFault::Undo)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn partition_serialises_like_the_history_example() {
        let mut g = BTreeMap::new();
        g.insert("n1".to_string(), set(&["n3", "n4"]));
        g.insert("n2".to_string(), set(&["n3", "n4"]));
        let fault = Fault::Partition(Grudge(g));
        assert_eq!(
            serde_json::to_string(&fault).unwrap(),
            r#"{"f":"partition","value":{"n1":["n3","n4"],"n2":["n3","n4"]}}"#
        );
        assert_eq!(fault.name(), "partition");
        assert_eq!(
            fault.value().to_string(),
            r#"{"n1":["n3","n4"],"n2":["n3","n4"]}"#
        );
    }

    #[test]
    fn every_fault_round_trips_through_json() {
        let mut bumps = BTreeMap::new();
        bumps.insert("n1".to_string(), -1500);
        let mut strobes = BTreeMap::new();
        strobes.insert(
            "n2".to_string(),
            Strobe {
                delta_ms: 200,
                period_ms: 10,
                duration_ms: 5000,
            },
        );
        let faults = vec![
            Fault::Heal,
            Fault::Kill(vec!["n1".into()]),
            Fault::Start(vec!["n1".into()]),
            Fault::Pause(vec!["n2".into()]),
            Fault::Resume(vec!["n2".into()]),
            Fault::ClockBump(bumps),
            Fault::ClockStrobe(strobes),
            Fault::ClockReset(vec!["n1".into(), "n2".into()]),
            Fault::Loss {
                nodes: vec!["n3".into()],
                percent: 30,
            },
            Fault::Delay {
                nodes: vec!["n3".into()],
                ms: 50,
            },
            Fault::Rate {
                nodes: vec!["n1".into()],
                kbit: 800,
            },
            Fault::PacketHeal(vec!["n3".into()]),
        ];
        for fault in faults {
            let text = serde_json::to_string(&fault).unwrap();
            let back: Fault = serde_json::from_str(&text).unwrap();
            assert_eq!(back, fault, "{text}");
            assert!(
                text.contains(&format!(r#""f":"{}""#, fault.name())),
                "{text}"
            );
        }
        assert_eq!(
            serde_json::to_string(&Fault::Heal).unwrap(),
            r#"{"f":"heal"}"#
        );
        assert_eq!(Fault::Heal.value(), serde_json::Value::Null);
        assert_eq!(
            Fault::Loss {
                nodes: vec!["n3".into()],
                percent: 30
            }
            .value()
            .to_string(),
            r#"{"nodes":["n3"],"percent":30}"#
        );
    }

    #[test]
    fn grudge_connectivity_and_symmetry() {
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), set(&["b"]));
        g.insert("b".to_string(), set(&[]));
        g.insert("c".to_string(), set(&[]));
        let g = Grudge(g);
        assert!(!g.connected("a", "b"));
        assert!(!g.connected("b", "a"));
        assert!(g.connected("a", "c"));
        assert!(!g.is_symmetric());
        assert!(!g.is_empty());
        assert_eq!(g.drops_from("a"), set(&["b"]));
        assert_eq!(g.drops_from("zz"), set(&[]));
    }

    #[test]
    fn family_names_parse_back() {
        for f in Family::ALL {
            assert_eq!(f.name().parse::<Family>().unwrap(), f);
        }
        let err = "flood".parse::<Family>().unwrap_err().to_string();
        assert!(err.contains("flood"), "{err}");
    }
}
