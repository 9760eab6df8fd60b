//! Fault windows: nemesis events paired into spans of time during which a fault was in
//! force, from the action that started it (partition, kill, pause, clock bump or strobe,
//! loss, delay, rate) to the action that undid it (heal, start, resume, clock reset,
//! packet heal).
//!
//! Pairing rules:
//! - A nemesis `invoke` followed by a completion of the same `f` is one action, lasting from
//!   the invoke to the completion; a lone completion (faultline records only `info`) is an
//!   instantaneous action. A `fail` completion means the action did not happen: it opens and
//!   closes nothing.
//! - A window runs from its starting action's beginning to its undoing action's end, so
//!   it covers every moment the fault may have been in force.
//! - An undo closes the open windows of its families whose nodes overlap the undo's
//!   nodes, or all of them when the undo names no nodes (a heal). A new partition replaces
//!   the previous one, so it closes any partition window still open.
//! - A window never undone lasts until the end of the history (`end` is `None`).
//! - Fault names are compared with `-` read as `_`, so Jepsen's `clock-bump` works too.
//! - Jepsen's generic nemesis records `start` and `stop`: in a history that has `stop`
//!   events and no `kill`, a `start` opens a window (kind `start`) and `stop` closes it.

use crate::text::{value_text, VALUE_LIMIT};
use faultline_history::{Event, EventType, Value};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// One nemesis action, an invoke and its completion merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultAction {
    /// The fault name as recorded.
    pub f: String,
    /// Its details (the completion's value, else the invoke's).
    pub value: Value,
    /// When the action began (ns).
    pub start: u64,
    /// When it completed (ns).
    pub end: u64,
    /// The error recorded with it, if any.
    pub error: Option<String>,
    /// Whether it was recorded as `fail` (did not happen).
    pub failed: bool,
}

/// A span of time during which one fault was in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultWindow {
    /// The starting action's name, normalised (`partition`, `kill`, `clock_bump`, ...).
    pub kind: String,
    /// The family that undoes it (`partition`, `kill`, `pause`, `clock`, `loss`, ...).
    pub family: &'static str,
    /// The nodes it touched (empty when the value names none).
    pub nodes: Vec<String>,
    /// The starting action's details, compact JSON (clipped when long, `crate::text`).
    pub detail: String,
    /// Start (ns).
    pub start: u64,
    /// End (ns); `None` when never undone in the history.
    pub end: Option<u64>,
    /// The undoing action's name, if any.
    pub undone_by: Option<String>,
    /// The error recorded with the starting action, if any.
    pub error: Option<String>,
}

impl FaultWindow {
    /// The end, or `history_end` when never undone.
    pub fn end_or(&self, history_end: u64) -> u64 {
        self.end.unwrap_or(history_end).max(self.start)
    }

    /// Whether `t` falls inside the window.
    pub fn contains(&self, t: u64, history_end: u64) -> bool {
        t >= self.start && t <= self.end_or(history_end)
    }
}

/// The nemesis side of a history.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultSummary {
    /// Every action, in order.
    pub actions: Vec<FaultAction>,
    /// The windows, by start.
    pub windows: Vec<FaultWindow>,
    /// Actions that are neither a known fault nor its undo (shown as marks).
    pub other: Vec<FaultAction>,
}

impl FaultSummary {
    /// The distinct window kinds, in first-seen order.
    pub fn kinds(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for w in &self.windows {
            if !seen.contains(&w.kind) {
                seen.push(w.kind.clone());
            }
        }
        seen
    }
}

/// The family a starting action belongs to, or `None` for anything else.
pub fn start_family(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "partition" | "start_partition" | "partition_start" => "partition",
        "kill" => "kill",
        "pause" => "pause",
        "clock_bump" | "clock_strobe" | "bump_clock" | "strobe_clock" => "clock",
        "loss" => "loss",
        "delay" => "delay",
        "rate" => "rate",
        _ => return None,
    })
}

/// The families an undoing action closes, or `None` if it undoes nothing.
pub fn undo_families(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "heal" | "stop_partition" | "partition_stop" => &["partition"],
        "start" | "restart" => &["kill"],
        "resume" => &["pause"],
        "clock_reset" | "reset_clock" => &["clock"],
        "packet_heal" => &["loss", "delay", "rate"],
        _ => return None,
    })
}

/// The CSS class used to draw a family (a closed set, safe to put in markup).
pub fn family_class(family: &str) -> &'static str {
    match family {
        "partition" => "f-partition",
        "kill" => "f-kill",
        "pause" => "f-pause",
        "clock" => "f-clock",
        "loss" | "delay" | "rate" => "f-packet",
        _ => "f-other",
    }
}

/// The nodes a fault value names: a list of nodes, an object keyed by node (partition,
/// clock), or `{"nodes": [...]}` (loss, delay, rate).
pub fn value_nodes(v: &Value) -> Vec<String> {
    let mut out = BTreeSet::new();
    match v {
        Value::Array(items) => {
            for it in items {
                if let Some(s) = it.as_str() {
                    out.insert(s.to_string());
                }
            }
        }
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get("nodes") {
                for it in items {
                    if let Some(s) = it.as_str() {
                        out.insert(s.to_string());
                    }
                }
            } else {
                for (k, v) in map {
                    // A grudge entry with an empty set drops nothing: that node is untouched.
                    let empty = v.as_array().is_some_and(Vec::is_empty);
                    if !empty {
                        out.insert(k.clone());
                    }
                }
            }
        }
        Value::String(s) => {
            out.insert(s.clone());
        }
        _ => {}
    }
    out.into_iter().collect()
}

fn normalise(f: &str) -> String {
    f.trim().to_ascii_lowercase().replace('-', "_")
}

/// Merges nemesis invokes with their completions into actions.
pub fn actions(faults: &[Event]) -> Vec<FaultAction> {
    let mut out: Vec<FaultAction> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for ev in faults {
        let f = normalise(&ev.f);
        match ev.kind {
            EventType::Invoke => {
                open.insert(f, out.len());
                out.push(FaultAction {
                    f: ev.f.clone(),
                    value: ev.value.clone(),
                    start: ev.time,
                    end: ev.time,
                    error: ev.error.clone(),
                    failed: false,
                });
            }
            kind => {
                let failed = kind == EventType::Fail;
                match open.remove(&f) {
                    Some(i) => {
                        let a = &mut out[i];
                        a.end = ev.time.max(a.start);
                        if !ev.value.is_null() {
                            a.value = ev.value.clone();
                        }
                        if ev.error.is_some() {
                            a.error = ev.error.clone();
                        }
                        a.failed = failed;
                    }
                    None => out.push(FaultAction {
                        f: ev.f.clone(),
                        value: ev.value.clone(),
                        start: ev.time,
                        end: ev.time,
                        error: ev.error.clone(),
                        failed,
                    }),
                }
            }
        }
    }
    out
}

/// Pairs the nemesis events of a history (as `Paired::faults` gives them) into windows.
pub fn fault_windows(faults: &[Event]) -> FaultSummary {
    let actions = actions(faults);
    let has = |name: &str| actions.iter().any(|a| normalise(&a.f) == name);
    let jepsen_start_stop = has("stop") && !has("kill");
    let mut windows: Vec<FaultWindow> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut other = Vec::new();
    for a in &actions {
        if a.failed {
            continue;
        }
        let kind = normalise(&a.f);
        let nodes = value_nodes(&a.value);
        let jepsen = jepsen_start_stop && (kind == "start" || kind == "stop");
        if jepsen && kind == "start" {
            open.push(windows.len());
            windows.push(FaultWindow {
                kind,
                family: "nemesis",
                nodes,
                detail: value_text(&a.value, VALUE_LIMIT),
                start: a.start,
                end: None,
                undone_by: None,
                error: a.error.clone(),
            });
        } else if jepsen {
            close(&mut windows, &mut open, &["nemesis"], &[], a.end, &kind);
        } else if let Some(family) = start_family(&kind) {
            if family == "partition" {
                close(&mut windows, &mut open, &["partition"], &[], a.start, &kind);
            }
            open.push(windows.len());
            windows.push(FaultWindow {
                detail: crate::describe::describe_fault(&kind, &a.value)
                    .map(|d| crate::text::clip_text(&d, VALUE_LIMIT).into_owned())
                    .unwrap_or_else(|| value_text(&a.value, VALUE_LIMIT)),
                kind,
                family,
                nodes,
                start: a.start,
                end: None,
                undone_by: None,
                error: a.error.clone(),
            });
        } else if let Some(families) = undo_families(&kind) {
            close(&mut windows, &mut open, families, &nodes, a.end, &kind);
        } else {
            other.push(a.clone());
        }
    }
    windows.sort_by_key(|w| w.start);
    FaultSummary {
        actions,
        windows,
        other,
    }
}

fn close(
    windows: &mut [FaultWindow],
    open: &mut Vec<usize>,
    families: &[&str],
    nodes: &[String],
    at: u64,
    by: &str,
) {
    open.retain(|&i| {
        let w = &mut windows[i];
        let family_match = families.contains(&w.family);
        let node_match =
            nodes.is_empty() || w.nodes.is_empty() || w.nodes.iter().any(|n| nodes.contains(n));
        if family_match && node_match {
            w.end = Some(at.max(w.start));
            w.undone_by = Some(by.to_string());
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::Process;
    use serde_json::json;

    fn nem(time: u64, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index: time,
            time,
            process: Process::Nemesis,
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn pairs_faults_with_their_undo_by_family_and_node() {
        let evs = vec![
            nem(
                10,
                EventType::Info,
                "partition",
                json!({"n1": ["n2"], "n2": ["n1"], "n3": []}),
            ),
            nem(20, EventType::Info, "kill", json!(["n3"])),
            nem(25, EventType::Info, "kill", json!(["n1"])),
            nem(30, EventType::Info, "start", json!(["n1"])),
            nem(40, EventType::Info, "heal", Value::Null),
            nem(50, EventType::Invoke, "clock-bump", json!({"n2": 1500})),
            nem(55, EventType::Info, "clock-bump", Value::Null),
            nem(
                60,
                EventType::Info,
                "loss",
                json!({"nodes": ["n1"], "percent": 20}),
            ),
            nem(70, EventType::Info, "packet_heal", json!(["n1"])),
            nem(80, EventType::Info, "bounce", json!("n9")),
        ];
        let s = fault_windows(&evs);
        let got: Vec<(&str, u64, Option<u64>, Vec<String>)> = s
            .windows
            .iter()
            .map(|w| (w.kind.as_str(), w.start, w.end, w.nodes.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "partition",
                    10,
                    Some(40),
                    vec!["n1".to_string(), "n2".to_string()]
                ),
                ("kill", 20, None, vec!["n3".to_string()]),
                ("kill", 25, Some(30), vec!["n1".to_string()]),
                ("clock_bump", 50, None, vec!["n2".to_string()]),
                ("loss", 60, Some(70), vec!["n1".to_string()]),
            ]
        );
        assert_eq!(s.windows[3].detail, "clock moved: n2 +1.500 s");
        assert_eq!(
            s.windows[0].detail,
            "bridge through n3: {n1} | {n2}, each side reaching the other only through it"
        );
        assert_eq!(s.other.len(), 1);
        assert_eq!(s.other[0].f, "bounce");
        assert!(s.windows[1].contains(1_000, 1_000));
        assert_eq!(s.kinds(), vec!["partition", "kill", "clock_bump", "loss"]);
    }

    #[test]
    fn jepsen_start_stop_pairs_when_there_is_no_kill() {
        let evs = vec![
            nem(1, EventType::Invoke, "start", Value::Null),
            nem(2, EventType::Info, "start", json!("Cut off {:n1 #{:n2}}")),
            nem(8, EventType::Invoke, "stop", Value::Null),
            nem(9, EventType::Info, "stop", json!("fully connected")),
        ];
        let s = fault_windows(&evs);
        assert_eq!(s.windows.len(), 1);
        let w = &s.windows[0];
        assert_eq!(
            (w.kind.as_str(), w.family, w.start, w.end),
            ("start", "nemesis", 1, Some(9))
        );
        assert!(s.other.is_empty());
        // With kills around, `start` keeps its faultline meaning: it undoes a kill.
        let evs = vec![
            nem(1, EventType::Info, "kill", json!(["n1"])),
            nem(2, EventType::Info, "start", json!(["n1"])),
            nem(3, EventType::Info, "stop", Value::Null),
        ];
        let s = fault_windows(&evs);
        assert_eq!(s.windows.len(), 1);
        assert_eq!(s.windows[0].end, Some(2));
    }

    #[test]
    fn a_new_partition_replaces_the_old_and_failed_actions_do_nothing() {
        let evs = vec![
            nem(1, EventType::Info, "partition", json!({"n1": ["n2"]})),
            nem(5, EventType::Info, "partition", json!({"n3": ["n1"]})),
            nem(6, EventType::Invoke, "pause", json!(["n2"])),
            nem(7, EventType::Fail, "pause", json!(["n2"])),
            nem(9, EventType::Info, "heal", Value::Null),
        ];
        let s = fault_windows(&evs);
        assert_eq!(s.windows.len(), 2);
        assert_eq!((s.windows[0].start, s.windows[0].end), (1, Some(5)));
        assert_eq!((s.windows[1].start, s.windows[1].end), (5, Some(9)));
        assert_eq!(s.actions.len(), 4);
        assert!(s.actions[2].failed);
    }
}
