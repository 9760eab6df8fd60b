//! The nemesis driver: applies the seeded schedule at its times through the [`Nemesis`],
//! recording each action as a `nemesis` invoke then `info` (both with the fault's details
//! as `value`; the `info` carries the error when it failed) in the history, and keeps the
//! fault in force for the progress bar. The mechanism of each action goes to `run.json`
//! (`mechanisms`), since an event has no field for it.

use crate::campaign::recorder::{Entry, Recorder};
use crate::campaign::worker::Stats;
use faultline_history::{EventType, Process};
use faultline_nemesis::{Family, Fault, LeaderAim, LeaderFault, Nemesis, TimedAction};
use faultline_targets::{Client, Role};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What happened to one scheduled action.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    /// Milliseconds from the start of the main phase.
    pub at_ms: u64,
    /// The fault's name.
    pub fault: String,
    /// The mechanism, if applied.
    pub mechanism: Option<String>,
    /// The error, if it failed.
    pub error: Option<String>,
    /// When the harness asked for the fault (Unix time, ns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_unix_ns: Option<u64>,
    /// When the fault was confirmed in force on every node it touched (Unix time, ns): as
    /// a node agent reported it, or when the host's command returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_unix_ns: Option<u64>,
}

impl ActionRecord {
    /// Milliseconds from the request to the confirmation, when both are known.
    pub fn gap_ms(&self) -> Option<f64> {
        let (r, c) = (self.requested_unix_ns?, self.confirmed_unix_ns?);
        Some(c.saturating_sub(r) as f64 / 1e6)
    }
}

/// Median and maximum of the request-to-confirmation gaps of `records`, in ms, and how
/// many there were; `None` when no action was confirmed.
pub fn timing_summary(records: &[ActionRecord]) -> Option<(f64, f64, usize)> {
    let mut gaps: Vec<f64> = records.iter().filter_map(ActionRecord::gap_ms).collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_by(f64::total_cmp);
    let n = gaps.len();
    let median = if n % 2 == 1 {
        gaps[n / 2]
    } else {
        (gaps[n / 2 - 1] + gaps[n / 2]) / 2.0
    };
    Some((median, gaps[n - 1], n))
}

/// The mechanism's name as written in run.json (`nft`, `faketime`, `runtime`...).
pub fn mechanism_name(m: faultline_nemesis::Mechanism) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{m:?}").to_lowercase())
}

/// Short text of the faults in force, for the progress bar.
fn describe(active: &BTreeMap<&'static str, String>) -> String {
    if active.is_empty() {
        "none".into()
    } else {
        active.values().cloned().collect::<Vec<_>>().join(" + ")
    }
}

fn track(active: &mut BTreeMap<&'static str, String>, fault: &Fault) {
    let nodes = |v: &[String]| v.join(",");
    match fault {
        Fault::Partition(g) => {
            let cut: Vec<&String> =
                g.0.iter()
                    .filter(|(_, s)| !s.is_empty())
                    .map(|(n, _)| n)
                    .collect();
            active.insert("partition", format!("partition({} nodes cut)", cut.len()));
        }
        Fault::Heal => {
            active.remove("partition");
        }
        Fault::Kill(v) => {
            active.insert("kill", format!("kill {}", nodes(v)));
        }
        Fault::Start(_) => {
            active.remove("kill");
        }
        Fault::Pause(v) => {
            active.insert("pause", format!("pause {}", nodes(v)));
        }
        Fault::Resume(_) => {
            active.remove("pause");
        }
        Fault::ClockBump(_) | Fault::ClockStrobe(_) => {
            active.insert("clock", fault.name().to_string());
        }
        Fault::ClockReset(_) => {
            active.remove("clock");
        }
        Fault::Loss { .. } | Fault::Delay { .. } | Fault::Rate { .. } => {
            active.insert("packet", fault.name().to_string());
        }
        Fault::PacketHeal(_) => {
            active.remove("packet");
        }
        // Aimed faults are tracked through the concrete faults they resolve to.
        Fault::Leader(_) => {}
    }
}

/// How long the nodes have to say who leads before an aimed fault is skipped.
const ROLE_TIMEOUT: Duration = Duration::from_secs(1);

/// The node that leads now, as the nodes say: among those that claim to lead, the one
/// with the highest term (an old leader that has not heard of the new term may still
/// claim). `None` when no node claims within [`ROLE_TIMEOUT`].
pub async fn find_leader(nodes: &[(String, Arc<dyn Client>)]) -> Option<String> {
    let asks = nodes.iter().map(|(name, client)| {
        let (name, client) = (name.clone(), client.clone());
        tokio::spawn(async move {
            let role = tokio::time::timeout(ROLE_TIMEOUT, client.role())
                .await
                .unwrap_or(Role::Unknown);
            (name, role)
        })
    });
    let mut roles = Vec::new();
    for ask in asks.collect::<Vec<_>>() {
        if let Ok(r) = ask.await {
            roles.push(r);
        }
    }
    pick_leader(&roles)
}

/// The claimant with the highest term; the first of them on a tie.
pub fn pick_leader(roles: &[(String, Role)]) -> Option<String> {
    let mut best: Option<(&String, u64)> = None;
    for (name, role) in roles {
        if let Role::Leader { term } = role {
            if best.is_none_or(|(_, t)| *term > t) {
                best = Some((name, *term));
            }
        }
    }
    best.map(|(n, _)| n.clone())
}

/// Records an action that could not be carried out as a `nemesis` invoke / info pair with
/// the reason, and returns its record.
fn record_skipped(recorder: &Recorder, fault: &Fault, at_ms: u64, why: String) -> ActionRecord {
    record_nemesis(recorder, EventType::Invoke, fault, None);
    record_nemesis(recorder, EventType::Info, fault, Some(why.clone()));
    tracing::warn!("nemesis {} skipped: {why}", fault.name());
    ActionRecord {
        at_ms,
        fault: fault.name().to_string(),
        mechanism: None,
        error: Some(why),
        requested_unix_ns: None,
        confirmed_unix_ns: None,
    }
}

/// Records one `nemesis` event of `fault` (its details as `value`; `error` on the `info`).
fn record_nemesis(recorder: &Recorder, kind: EventType, fault: &Fault, error: Option<String>) {
    recorder.record(Entry {
        process: Process::Nemesis,
        kind,
        f: fault.name().to_string(),
        key: None,
        value: fault.value(),
        node: None,
        error,
    });
}

/// Applies one fault now and records it; returns the record.
pub async fn apply_recorded(
    nemesis: &mut Nemesis,
    recorder: &Recorder,
    fault: &Fault,
    at_ms: u64,
) -> ActionRecord {
    record_nemesis(recorder, EventType::Invoke, fault, None);
    let requested = faultline_nemesis::unix_ns_now();
    let result = nemesis.apply(fault).await;
    let (mechanism, error, confirmed) = match &result {
        Ok(a) => (Some(mechanism_name(a.mechanism)), None, a.confirmed_unix_ns),
        Err(e) => (None, Some(e.to_string()), None),
    };
    if let Some(e) = &error {
        tracing::warn!("nemesis {} failed: {e}", fault.name());
    }
    record_nemesis(recorder, EventType::Info, fault, error.clone());
    ActionRecord {
        at_ms,
        fault: fault.name().to_string(),
        mechanism,
        error,
        requested_unix_ns: Some(requested),
        confirmed_unix_ns: confirmed,
    }
}

/// Runs the main-phase actions (those before `time_limit_ms`) at their times, from
/// `start`, until done or stopped. Faults aimed at the leader are resolved when due: the
/// nodes (`clients`, by name) are asked who leads, and the concrete faults are applied and
/// recorded one by one. The final healing actions are left to [`final_heal`].
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    nemesis: &mut Nemesis,
    actions: &[TimedAction],
    time_limit_ms: u64,
    recorder: &Recorder,
    start: Instant,
    stats: &Stats,
    stop: &AtomicBool,
    clients: &[(String, Arc<dyn Client>)],
) -> Vec<ActionRecord> {
    let mut records = Vec::new();
    let mut active = BTreeMap::new();
    let mut aim = LeaderAim::new();
    let names: Vec<String> = clients.iter().map(|(n, _)| n.clone()).collect();
    for action in actions.iter().filter(|a| a.at_ms < time_limit_ms) {
        let when = start + Duration::from_millis(action.at_ms);
        while Instant::now() < when {
            if stop.load(Ordering::Relaxed) {
                return records;
            }
            let left = when.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_millis(100))).await;
        }
        if stop.load(Ordering::Relaxed) {
            return records;
        }
        let concrete = match &action.fault {
            Fault::Leader(aimed) => {
                let leader = match aimed {
                    LeaderFault::Undo => None,
                    _ => find_leader(clients).await,
                };
                match aim.resolve(aimed, leader.as_deref(), &names) {
                    Ok(faults) => {
                        if let Some(l) = &leader {
                            tracing::info!("{} aimed at {l}", action.fault.name());
                        }
                        faults
                    }
                    Err(e) => {
                        let why = e.to_string();
                        records.push(record_skipped(recorder, &action.fault, action.at_ms, why));
                        continue;
                    }
                }
            }
            other => vec![other.clone()],
        };
        for (i, fault) in concrete.iter().enumerate() {
            // An aimed fault moves the clock first: let the node see the new time before
            // pausing or cutting it off, and let it run on the moved clock for a moment
            // after the resume or heal before resetting it.
            let after_clock = i > 0 && matches!(concrete[i - 1], Fault::ClockBump(_));
            if after_clock || (i > 0 && matches!(fault, Fault::ClockReset(_))) {
                let until = Instant::now() + faultline_nemesis::clock::SETTLE;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let rec = apply_recorded(nemesis, recorder, fault, action.at_ms).await;
            if rec.error.is_none() {
                track(&mut active, fault);
                stats.faults.fetch_add(1, Ordering::Relaxed);
            }
            stats.set_in_force(describe(&active));
            records.push(rec);
        }
    }
    records
}

/// The faults of the final phase for the families in use: start killed nodes (each
/// `Start` re-applies the packet state; starting a paused node thaws it, so a node that
/// was paused and then killed comes back too), resume paused ones, heal partitions and
/// packet faults, reset clocks. The runtime's calls are idempotent, so every node is
/// named; start comes first because resuming a stopped node is refused.
pub fn final_faults(families: &[Family], nodes: &[String]) -> Vec<Fault> {
    let all = nodes.to_vec();
    let mut out = Vec::new();
    let leader = families.contains(&Family::Leader);
    if families.contains(&Family::Kill) {
        out.push(Fault::Start(all.clone()));
    }
    if families.contains(&Family::Pause) || leader {
        out.push(Fault::Resume(all.clone()));
    }
    if families.contains(&Family::Partition) || leader {
        out.push(Fault::Heal);
    }
    if families
        .iter()
        .any(|f| matches!(f, Family::Loss | Family::Delay | Family::Rate))
    {
        out.push(Fault::PacketHeal(all.clone()));
    }
    if families.contains(&Family::Clock) {
        out.push(Fault::ClockReset(all));
    }
    out
}

/// Runs the final phase ([`final_faults`]), recorded, then [`Nemesis::heal_all`] as a
/// safety net (not recorded: it only repeats what was recorded).
pub async fn final_heal(
    nemesis: &mut Nemesis,
    recorder: &Recorder,
    families: &[Family],
    nodes: &[String],
    at_ms: u64,
    stats: &Stats,
) -> Vec<ActionRecord> {
    let mut records = Vec::new();
    for fault in final_faults(families, nodes) {
        records.push(apply_recorded(nemesis, recorder, &fault, at_ms).await);
    }
    if let Err(e) = nemesis.heal_all().await {
        tracing::warn!("final heal: {e}");
    }
    stats.set_in_force("healed".into());
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_nemesis::Grudge;

    #[test]
    fn the_fault_in_force_follows_start_and_undo() {
        let mut active = BTreeMap::new();
        let mut g = Grudge::default();
        g.0.insert("n1".into(), ["n2".to_string()].into_iter().collect());
        g.0.insert("n2".into(), Default::default());
        track(&mut active, &Fault::Partition(g));
        track(&mut active, &Fault::Kill(vec!["n3".into()]));
        assert_eq!(describe(&active), "kill n3 + partition(1 nodes cut)");
        track(&mut active, &Fault::Heal);
        track(&mut active, &Fault::Start(vec!["n3".into()]));
        assert_eq!(describe(&active), "none");
    }

    #[test]
    fn the_final_phase_undoes_only_the_families_in_use() {
        let nodes = vec!["n1".to_string(), "n2".to_string()];
        assert!(final_faults(&[], &nodes).is_empty());
        let names: Vec<&str> = final_faults(
            &[
                Family::Clock,
                Family::Kill,
                Family::Pause,
                Family::Partition,
            ],
            &nodes,
        )
        .iter()
        .map(|f| f.name())
        .collect();
        assert_eq!(names, vec!["start", "resume", "heal", "clock_reset"]);
        assert_eq!(
            final_faults(&[Family::Leader], &nodes),
            vec![Fault::Resume(nodes.clone()), Fault::Heal]
        );
        assert_eq!(
            final_faults(&[Family::Loss], &nodes),
            vec![Fault::PacketHeal(nodes.clone())]
        );
    }

    #[test]
    fn the_leader_is_the_claimant_with_the_highest_term() {
        let roles = vec![
            ("n1".to_string(), Role::Leader { term: 3 }),
            ("n2".to_string(), Role::Follower),
            ("n3".to_string(), Role::Leader { term: 4 }),
            ("n4".to_string(), Role::Unknown),
        ];
        assert_eq!(pick_leader(&roles).as_deref(), Some("n3"));
        assert_eq!(pick_leader(&roles[..2]).as_deref(), Some("n1"));
        assert_eq!(pick_leader(&roles[1..2]), None);
        assert_eq!(pick_leader(&[]), None);
    }

    #[test]
    fn mechanisms_are_named_as_in_run_json() {
        assert_eq!(mechanism_name(faultline_nemesis::Mechanism::Nft), "nft");
        assert_eq!(
            mechanism_name(faultline_nemesis::Mechanism::Faketime),
            "faketime"
        );
    }
}
