//! Seeded schedules: from a nemesis list, an interval, a time limit and the node names to
//! a deterministic list of timed faults. Pure: the same config and seed give the same
//! schedule.
//!
//! About every `interval` (staggered between half and one and a half intervals) one of the
//! requested families is drawn. If a fault of that family is in force, it is undone (heal,
//! start, resume, clock reset, packet heal); otherwise a new one starts. So every fault
//! lasts until its family is drawn again, and is undone before the next of its family.
//! Loss, delay and rate share one slot (all are undone by a packet heal). Leader faults
//! ([`LeaderFault`]) are aimed when applied, since only then is the leader known; a paused
//! leader counts as one node down. At the time limit a final phase heals everything.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::grudge::{grudge, Topology};
use crate::{Family, Fault, LeaderFault, NemesisError, Strobe};

/// What to schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleConfig {
    /// The fault families to draw from.
    pub families: Vec<Family>,
    /// The cluster's node names.
    pub nodes: Vec<String>,
    /// Mean time between two nemesis actions, in milliseconds.
    pub interval_ms: u64,
    /// When the final healing phase happens, in milliseconds from the start.
    pub time_limit_ms: u64,
    /// How many nodes may be killed or paused at once; `None` = a minority, `(n - 1) / 2`.
    pub max_down: Option<usize>,
    /// The partition topologies to draw from.
    pub topologies: Vec<Topology>,
    /// Packet loss percentages are drawn from this inclusive range (within 1..=100).
    pub loss_percent: (u8, u8),
    /// Delays are drawn from this inclusive range, in milliseconds.
    pub delay_ms: (u32, u32),
    /// Rate limits are drawn from this inclusive range, in kilobits per second.
    pub rate_kbit: (u32, u32),
    /// Whether clock faults may strobe (flip a clock back and forth); `false` where the
    /// clock mechanism holds one offset at a time (Chaos Mesh's TimeChaos), so that every
    /// clock fault is a bump.
    #[serde(default = "strobes_by_default")]
    pub clock_strobes: bool,
}

/// What a configuration recorded before `clock_strobes` existed meant.
fn strobes_by_default() -> bool {
    true
}

impl ScheduleConfig {
    /// A config with the defaults: a minority down at most, every default topology, loss
    /// 10..=50 %, delay 20..=200 ms, rate 100..=10 000 kbit/s.
    pub fn new(
        families: Vec<Family>,
        nodes: Vec<String>,
        interval_ms: u64,
        time_limit_ms: u64,
    ) -> Self {
        ScheduleConfig {
            families,
            nodes,
            interval_ms,
            time_limit_ms,
            max_down: None,
            topologies: Topology::defaults(),
            loss_percent: (10, 50),
            delay_ms: (20, 200),
            rate_kbit: (100, 10_000),
            clock_strobes: true,
        }
    }

    fn max_down(&self) -> usize {
        self.max_down
            .unwrap_or((self.nodes.len().saturating_sub(1)) / 2)
            .min(self.nodes.len())
    }
}

/// One fault and when to apply it, in milliseconds from the start of the nemesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedAction {
    /// When.
    pub at_ms: u64,
    /// What.
    pub fault: Fault,
}

/// A deterministic list of timed faults, in time order, ending with the healing phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The seed it was drawn from.
    pub seed: u64,
    /// The actions, in time order (the final phase shares the time limit).
    pub actions: Vec<TimedAction>,
}

#[derive(Default)]
struct Active {
    partition: bool,
    killed: BTreeSet<String>,
    paused: BTreeSet<String>,
    clock: bool,
    packet: Vec<String>,
    /// A leader fault is in force; `Some(true)` when it paused the leader (one node down,
    /// which one is known only when it is applied).
    leader: Option<bool>,
}

fn validate(cfg: &ScheduleConfig) -> Result<Vec<Topology>, NemesisError> {
    if cfg.interval_ms == 0 {
        return Err(NemesisError::InvalidConfig(
            "interval must be above 0 ms".into(),
        ));
    }
    if cfg.nodes.is_empty() {
        return Err(NemesisError::TooFewNodes {
            what: "a schedule",
            needed: 1,
            got: 0,
        });
    }
    let mut seen = BTreeSet::new();
    for n in &cfg.nodes {
        if !seen.insert(n) {
            return Err(NemesisError::DuplicateNode(n.clone()));
        }
    }
    let (lo, hi) = cfg.loss_percent;
    if lo == 0 || hi > 100 || lo > hi {
        return Err(NemesisError::InvalidConfig(format!(
            "loss range must lie within 1..=100 %, got {lo}..={hi}"
        )));
    }
    if cfg.delay_ms.0 > cfg.delay_ms.1 || cfg.delay_ms.0 == 0 {
        return Err(NemesisError::InvalidConfig(format!(
            "delay range must be ascending and above 0 ms, got {}..={}",
            cfg.delay_ms.0, cfg.delay_ms.1
        )));
    }
    if cfg.rate_kbit.0 > cfg.rate_kbit.1 || cfg.rate_kbit.0 == 0 {
        return Err(NemesisError::InvalidConfig(format!(
            "rate range must be ascending and above 0 kbit/s, got {}..={}",
            cfg.rate_kbit.0, cfg.rate_kbit.1
        )));
    }
    for t in &cfg.topologies {
        if let Topology::Isolate(node) = t {
            if !seen.contains(node) {
                return Err(NemesisError::UnknownNode(node.clone()));
            }
        }
    }
    let usable: Vec<Topology> = cfg
        .topologies
        .iter()
        .filter(|t| t.min_nodes() <= cfg.nodes.len())
        .cloned()
        .collect();
    if cfg.families.contains(&Family::Partition) && usable.is_empty() {
        let needed = cfg
            .topologies
            .iter()
            .map(Topology::min_nodes)
            .min()
            .unwrap_or(2);
        return Err(NemesisError::TooFewNodes {
            what: "a partition",
            needed,
            got: cfg.nodes.len(),
        });
    }
    Ok(usable)
}

/// Draws the schedule for `cfg` from `seed`.
pub fn schedule(cfg: &ScheduleConfig, seed: u64) -> Result<Schedule, NemesisError> {
    let topologies = validate(cfg)?;
    let mut families = cfg.families.clone();
    families.sort();
    families.dedup();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut active = Active::default();
    let mut actions = Vec::new();
    let mut t = stagger(cfg.interval_ms, &mut rng);
    while t < cfg.time_limit_ms && !families.is_empty() {
        let family = families[rng.gen_range(0..families.len())];
        if let Some(fault) = next(cfg, &topologies, family, &mut active, &mut rng)? {
            actions.push(TimedAction { at_ms: t, fault });
        }
        t = t.saturating_add(stagger(cfg.interval_ms, &mut rng));
    }
    let end = cfg.time_limit_ms;
    let all = cfg.nodes.clone();
    let mut push = |fault| actions.push(TimedAction { at_ms: end, fault });
    if active.leader.is_some() {
        push(Fault::Leader(LeaderFault::Undo));
    }
    if families.contains(&Family::Partition) {
        push(Fault::Heal);
    }
    if !active.paused.is_empty() {
        push(Fault::Resume(active.paused.iter().cloned().collect()));
    }
    if !active.killed.is_empty() {
        push(Fault::Start(active.killed.iter().cloned().collect()));
    }
    if families.contains(&Family::Clock) {
        push(Fault::ClockReset(all.clone()));
    }
    let packet = [Family::Loss, Family::Delay, Family::Rate];
    if families.iter().any(|f| packet.contains(f)) {
        push(Fault::PacketHeal(all));
    }
    Ok(Schedule { seed, actions })
}

fn stagger(interval_ms: u64, rng: &mut ChaCha8Rng) -> u64 {
    let lo = (interval_ms / 2).max(1);
    let hi = interval_ms.saturating_add(interval_ms / 2).max(lo);
    rng.gen_range(lo..=hi)
}

fn pick(nodes: &[String], count: usize, rng: &mut ChaCha8Rng) -> Vec<String> {
    let mut v: Vec<String> = nodes.choose_multiple(rng, count).cloned().collect();
    v.sort();
    v
}

fn some_nodes(nodes: &[String], rng: &mut ChaCha8Rng) -> Vec<String> {
    let count = rng.gen_range(1..=nodes.len());
    pick(nodes, count, rng)
}

/// A clock jump of 1.5^(6..31) ms, either sign: about 11 ms to 5 minutes.
fn clock_delta(rng: &mut ChaCha8Rng) -> i64 {
    let exp = rng.gen_range(6..31);
    let magnitude = 1.5f64.powi(exp).round() as i64;
    if rng.gen_bool(0.5) {
        magnitude
    } else {
        -magnitude
    }
}

fn next(
    cfg: &ScheduleConfig,
    topologies: &[Topology],
    family: Family,
    active: &mut Active,
    rng: &mut ChaCha8Rng,
) -> Result<Option<Fault>, NemesisError> {
    let nodes = &cfg.nodes;
    let fault = match family {
        Family::Partition if active.partition => {
            active.partition = false;
            Fault::Heal
        }
        Family::Partition => {
            let topology = &topologies[rng.gen_range(0..topologies.len())];
            active.partition = true;
            Fault::Partition(grudge(topology, nodes, rng)?)
        }
        Family::Kill | Family::Pause => {
            let leader_down = usize::from(active.leader == Some(true));
            let (mine, other) = if family == Family::Kill {
                (&mut active.killed, &active.paused)
            } else {
                (&mut active.paused, &active.killed)
            };
            if !mine.is_empty() {
                let back: Vec<String> = std::mem::take(mine).into_iter().collect();
                return Ok(Some(if family == Family::Kill {
                    Fault::Start(back)
                } else {
                    Fault::Resume(back)
                }));
            }
            let room = cfg.max_down().saturating_sub(other.len() + leader_down);
            let up: Vec<String> = nodes
                .iter()
                .filter(|n| !other.contains(*n))
                .cloned()
                .collect();
            if room == 0 || up.is_empty() {
                return Ok(None);
            }
            let chosen = pick(&up, rng.gen_range(1..=room.min(up.len())), rng);
            mine.extend(chosen.iter().cloned());
            if family == Family::Kill {
                Fault::Kill(chosen)
            } else {
                Fault::Pause(chosen)
            }
        }
        Family::Clock if active.clock => {
            active.clock = false;
            Fault::ClockReset(nodes.clone())
        }
        Family::Clock => {
            active.clock = true;
            let chosen = some_nodes(nodes, rng);
            if rng.gen_bool(0.5) || !cfg.clock_strobes {
                let bumps: BTreeMap<String, i64> =
                    chosen.into_iter().map(|n| (n, clock_delta(rng))).collect();
                Fault::ClockBump(bumps)
            } else {
                let strobes: BTreeMap<String, Strobe> = chosen
                    .into_iter()
                    .map(|n| {
                        let strobe = Strobe {
                            delta_ms: clock_delta(rng),
                            period_ms: 1u64 << rng.gen_range(0..10),
                            duration_ms: rng.gen_range(1..=cfg.interval_ms),
                        };
                        (n, strobe)
                    })
                    .collect();
                Fault::ClockStrobe(strobes)
            }
        }
        Family::Leader if active.leader.is_some() => {
            active.leader = None;
            Fault::Leader(LeaderFault::Undo)
        }
        Family::Leader => {
            // With clock faults too, move the leader's clock back first, by more than the
            // fault is likely to last (it lasts until the family is drawn again, about one
            // interval per family): a leader that trusts a wall-clock lease then keeps
            // serving from it after the others have moved on.
            let clock_ms = cfg.families.contains(&Family::Clock).then(|| {
                let per = cfg
                    .interval_ms
                    .saturating_mul(cfg.families.len().max(1) as u64);
                let lo = per.saturating_mul(2).clamp(2_000, 300_000);
                let hi = per.saturating_mul(4).clamp(lo, 300_000);
                -(rng.gen_range(lo..=hi) as i64)
            });
            let down = active.killed.len() + active.paused.len();
            let pause = rng.gen_bool(0.5) && down < cfg.max_down();
            active.leader = Some(pause);
            Fault::Leader(if pause {
                LeaderFault::Pause { clock_ms }
            } else {
                LeaderFault::Isolate { clock_ms }
            })
        }
        Family::Loss | Family::Delay | Family::Rate if !active.packet.is_empty() => {
            Fault::PacketHeal(std::mem::take(&mut active.packet))
        }
        Family::Loss => {
            let chosen = some_nodes(nodes, rng);
            active.packet = chosen.clone();
            let percent = rng.gen_range(cfg.loss_percent.0..=cfg.loss_percent.1);
            Fault::Loss {
                nodes: chosen,
                percent,
            }
        }
        Family::Delay => {
            let chosen = some_nodes(nodes, rng);
            active.packet = chosen.clone();
            let ms = rng.gen_range(cfg.delay_ms.0..=cfg.delay_ms.1);
            Fault::Delay { nodes: chosen, ms }
        }
        Family::Rate => {
            let chosen = some_nodes(nodes, rng);
            active.packet = chosen.clone();
            let kbit = rng.gen_range(cfg.rate_kbit.0..=cfg.rate_kbit.1);
            Fault::Rate {
                nodes: chosen,
                kbit,
            }
        }
    };
    Ok(Some(fault))
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
