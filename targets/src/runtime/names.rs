//! Names and labels: the rules for run ids and node names, the names of the
//! containers and networks derived from them, and the labels that mark every
//! object faultline creates so that it can be found and removed later.
//!
//! Everything here is pure.

use std::collections::HashMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// Label carried by every object faultline creates; its value is always `"1"`.
pub const LABEL_FAULTLINE: &str = "faultline";
/// Label holding the run id of the object.
pub const LABEL_RUN: &str = "faultline.run";
/// Label holding the node name of a container.
pub const LABEL_NODE: &str = "faultline.node";
/// Label holding the host folder with the node data and clock dirs of a run.
pub const LABEL_NODES_DIR: &str = "faultline.nodes-dir";
/// Label naming the harness process that created the object:
/// `<host>/<pid>/<start>` (see [`HarnessId`]), so that `faultline clean` can tell a
/// live run from the leftovers of one whose harness is gone.
pub const LABEL_HARNESS: &str = "faultline.harness";
/// Prefix of every container and network name.
pub const NAME_PREFIX: &str = "faultline";

/// Longest accepted run id.
pub const MAX_RUN_ID_LEN: usize = 24;
/// Longest accepted node name (it is also the node's hostname).
pub const MAX_NODE_NAME_LEN: usize = 32;

/// A name that breaks the naming rules.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The name is empty.
    #[error("{what} is empty")]
    Empty {
        /// What was being named ("run id", "node name").
        what: &'static str,
    },
    /// The name is longer than allowed.
    #[error("{what} {name:?} is longer than {max} characters")]
    TooLong {
        /// What was being named.
        what: &'static str,
        /// The rejected name.
        name: String,
        /// The limit.
        max: usize,
    },
    /// The name holds a character outside `a-z`, `0-9` and `-`, or starts or
    /// ends with `-`, or (node names) does not start with a letter.
    #[error(
        "{what} {name:?} must use only a-z, 0-9 and '-', start with {start} and not end with '-'"
    )]
    BadCharacters {
        /// What was being named.
        what: &'static str,
        /// The rejected name.
        name: String,
        /// What the first character must be.
        start: &'static str,
    },
}

fn check_name(
    what: &'static str,
    name: &str,
    max: usize,
    letter_first: bool,
) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            what,
            name: name.to_string(),
            max,
        });
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let first_ok = name.chars().next().is_some_and(|c| {
        if letter_first {
            c.is_ascii_lowercase()
        } else {
            c.is_ascii_lowercase() || c.is_ascii_digit()
        }
    });
    if !name.chars().all(allowed) || !first_ok || name.ends_with('-') {
        return Err(NameError::BadCharacters {
            what,
            name: name.to_string(),
            start: if letter_first {
                "a letter"
            } else {
                "a letter or digit"
            },
        });
    }
    Ok(())
}

/// The id of one run: names its containers and network and ties them together
/// through the [`LABEL_RUN`] label. At most 24 characters of `a-z0-9-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

impl RunId {
    /// Checks `id` against the rules and wraps it.
    pub fn new(id: &str) -> Result<Self, NameError> {
        check_name("run id", id, MAX_RUN_ID_LEN, false)?;
        Ok(RunId(id.to_string()))
    }

    /// A fresh id from the wall clock and the process id, for example
    /// `r1795799668-4211`: unique per process and second.
    pub fn generate() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        RunId(format!("r{secs}-{}", std::process::id()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of one node; also its hostname inside the cluster. At most 32
/// characters of `a-z0-9-`, starting with a letter (for example `n1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeName(String);

impl NodeName {
    /// Checks `name` against the rules and wraps it.
    pub fn new(name: &str) -> Result<Self, NameError> {
        check_name("node name", name, MAX_NODE_NAME_LEN, true)?;
        Ok(NodeName(name.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One node of one run: enough for a runtime to find its container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeRef {
    /// The run the node belongs to.
    pub run: RunId,
    /// The node's name.
    pub name: NodeName,
}

impl NodeRef {
    /// The container (or process group) name of this node.
    pub fn container_name(&self) -> String {
        container_name(&self.run, &self.name)
    }
}

/// Name of the container of `node` in `run`: `faultline-<run>-<node>`.
pub fn container_name(run: &RunId, node: &NodeName) -> String {
    format!("{NAME_PREFIX}-{run}-{node}")
}

/// Name of the network of `run`: `faultline-<run>`.
pub fn network_name(run: &RunId) -> String {
    format!("{NAME_PREFIX}-{run}")
}

/// The harness process that owns a run: the host it runs on, its pid, and its start
/// time in clock ticks after boot (field 22 of `/proc/<pid>/stat`), which tells a live
/// harness from a later process that reused its pid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HarnessId {
    /// The host name (`/proc/sys/kernel/hostname`).
    pub host: String,
    /// The harness's pid.
    pub pid: u32,
    /// The harness's start time, in clock ticks after boot (0 when unknown).
    pub start: u64,
}

impl HarnessId {
    /// This process.
    pub fn current() -> HarnessId {
        let pid = std::process::id();
        HarnessId {
            host: this_host(),
            pid,
            start: process_start(pid).unwrap_or(0),
        }
    }

    /// The label value: `<host>/<pid>/<start>`.
    pub fn label(&self) -> String {
        format!("{}/{}/{}", self.host, self.pid, self.start)
    }

    /// Parses a label value written by [`HarnessId::label`] (the host may hold `/`).
    pub fn parse(label: &str) -> Option<HarnessId> {
        let (rest, start) = label.rsplit_once('/')?;
        let (host, pid) = rest.rsplit_once('/')?;
        Some(HarnessId {
            host: host.to_string(),
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }
}

/// This machine's host name, as the kernel has it (empty when unreadable).
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The start time of process `pid` in clock ticks after boot, from `/proc/<pid>/stat`;
/// `None` when there is no such process.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start(&stat)
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and `)`, so fields are counted after the last `)`.
pub fn parse_stat_start(stat: &str) -> Option<u64> {
    let (_, after) = stat.rsplit_once(')')?;
    // After ")": field 3 (state) is the first; starttime is field 22.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the harness named by `id` still runs on this host (same pid, same start
/// time). A harness on another host cannot be checked and counts as alive.
pub fn harness_alive(id: &HarnessId, this_host: &str) -> bool {
    if id.host != this_host {
        return true;
    }
    match process_start(id.pid) {
        None => false,
        Some(start) => id.start == 0 || start == id.start,
    }
}

/// Labels of the network of `run`, created by the harness `harness`.
pub fn network_labels(run: &RunId, harness: &HarnessId) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_FAULTLINE.to_string(), "1".to_string()),
        (LABEL_RUN.to_string(), run.to_string()),
        (LABEL_HARNESS.to_string(), harness.label()),
    ])
}

/// Labels of the container of `node` in `run`; `nodes_dir` is the host folder
/// holding the run's node dirs (so that `clean` can find it later).
pub fn container_labels(
    run: &RunId,
    node: &NodeName,
    nodes_dir: &str,
    harness: &HarnessId,
) -> HashMap<String, String> {
    let mut labels = network_labels(run, harness);
    labels.insert(LABEL_NODE.to_string(), node.to_string());
    labels.insert(LABEL_NODES_DIR.to_string(), nodes_dir.to_string());
    labels
}

/// Which leftovers a clean-up removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanScope {
    /// Every object labelled `faultline=1`, whatever its run, even a live one.
    All,
    /// Only the objects of one run.
    Run(RunId),
    /// The objects of runs whose harness is gone: its process no longer runs on this
    /// host (`host`). A run made by an older faultline (no [`LABEL_HARNESS`]) counts as
    /// gone only when none of its containers runs ([`live_runs`]). Runs of live
    /// harnesses, and of harnesses on other hosts, stay.
    Orphans {
        /// This host's name ([`this_host`]).
        host: String,
    },
}

impl CleanScope {
    /// The runs whose harness is gone, on this host.
    pub fn orphans() -> CleanScope {
        CleanScope::Orphans { host: this_host() }
    }
}

/// The Engine API `filters` selecting the objects of `scope` by label.
pub fn label_filters(scope: &CleanScope) -> HashMap<String, Vec<String>> {
    let mut labels = vec![format!("{LABEL_FAULTLINE}=1")];
    if let CleanScope::Run(run) = scope {
        labels.push(format!("{LABEL_RUN}={run}"));
    }
    HashMap::from([("label".to_string(), labels)])
}

/// Whether an object with `labels` belongs to `scope`, given a test of whether a
/// harness is alive (`alive`; [`harness_alive`] in production). Checked again on every
/// object the engine returns before it is removed, so that a filter the engine ignored
/// can never make faultline remove somebody else's container.
pub fn in_scope_with(
    labels: &HashMap<String, String>,
    scope: &CleanScope,
    alive: impl Fn(&HarnessId) -> bool,
) -> bool {
    if labels.get(LABEL_FAULTLINE).map(String::as_str) != Some("1") {
        return false;
    }
    match scope {
        CleanScope::All => true,
        CleanScope::Run(run) => labels.get(LABEL_RUN).map(String::as_str) == Some(run.as_str()),
        CleanScope::Orphans { .. } => match labels.get(LABEL_HARNESS) {
            None => true,
            Some(label) => HarnessId::parse(label).is_none_or(|id| !alive(&id)),
        },
    }
}

/// The runs that must be kept by an orphan clean-up, given every faultline container as
/// (labels, whether it is running): a run with a container whose harness is `alive`, or
/// with a running container that names no harness (made by an older faultline, whose
/// harness cannot be checked).
pub fn live_runs(
    containers: &[(HashMap<String, String>, bool)],
    alive: impl Fn(&HarnessId) -> bool,
) -> std::collections::BTreeSet<String> {
    containers
        .iter()
        .filter(|(labels, running)| {
            match labels.get(LABEL_HARNESS).and_then(|l| HarnessId::parse(l)) {
                Some(id) => alive(&id),
                None => *running,
            }
        })
        .filter_map(|(labels, _)| labels.get(LABEL_RUN).cloned())
        .collect()
}

/// [`in_scope_with`] with the real liveness test on this host.
pub fn in_scope(labels: &HashMap<String, String>, scope: &CleanScope) -> bool {
    let host = match scope {
        CleanScope::Orphans { host } => host.clone(),
        _ => String::new(),
    };
    in_scope_with(labels, scope, |id| harness_alive(id, &host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_follow_the_rules() {
        assert_eq!(
            RunId::new("r42-a").map(|r| r.to_string()),
            Ok("r42-a".to_string())
        );
        assert_eq!(
            RunId::new("7abc").map(|r| r.to_string()),
            Ok("7abc".to_string())
        );
        assert_eq!(RunId::new(""), Err(NameError::Empty { what: "run id" }));
        assert!(matches!(
            RunId::new("Abc"),
            Err(NameError::BadCharacters { .. })
        ));
        assert!(matches!(
            RunId::new("a_b"),
            Err(NameError::BadCharacters { .. })
        ));
        assert!(matches!(
            RunId::new("-ab"),
            Err(NameError::BadCharacters { .. })
        ));
        assert!(matches!(
            RunId::new("ab-"),
            Err(NameError::BadCharacters { .. })
        ));
        assert!(matches!(
            RunId::new(&"a".repeat(25)),
            Err(NameError::TooLong { max: 24, .. })
        ));
        assert!(RunId::new(&"a".repeat(24)).is_ok());
    }

    #[test]
    fn generated_run_ids_are_valid() {
        let id = RunId::generate();
        assert!(id.as_str().starts_with('r'));
        assert_eq!(RunId::new(id.as_str()), Ok(id));
    }

    #[test]
    fn node_names_start_with_a_letter() {
        assert_eq!(
            NodeName::new("n1").map(|n| n.to_string()),
            Ok("n1".to_string())
        );
        assert!(matches!(
            NodeName::new("1n"),
            Err(NameError::BadCharacters { .. })
        ));
        assert!(matches!(
            NodeName::new("n.1"),
            Err(NameError::BadCharacters { .. })
        ));
        assert!(matches!(
            NodeName::new(&"n".repeat(33)),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn derived_names() {
        let run = RunId::new("t1").unwrap();
        let node = NodeName::new("n3").unwrap();
        assert_eq!(container_name(&run, &node), "faultline-t1-n3");
        assert_eq!(network_name(&run), "faultline-t1");
        let r = NodeRef { run, name: node };
        assert_eq!(r.container_name(), "faultline-t1-n3");
    }

    #[test]
    fn labels_and_filters() {
        let run = RunId::new("t1").unwrap();
        let node = NodeName::new("n2").unwrap();
        let h = HarnessId {
            host: "box".into(),
            pid: 7,
            start: 99,
        };
        let labels = container_labels(&run, &node, "/runs/x/nodes", &h);
        assert_eq!(
            labels.get("faultline.harness").map(String::as_str),
            Some("box/7/99")
        );
        assert_eq!(labels.get("faultline").map(String::as_str), Some("1"));
        assert_eq!(labels.get("faultline.run").map(String::as_str), Some("t1"));
        assert_eq!(labels.get("faultline.node").map(String::as_str), Some("n2"));
        assert_eq!(
            labels.get("faultline.nodes-dir").map(String::as_str),
            Some("/runs/x/nodes")
        );
        assert_eq!(network_labels(&run, &h).len(), 3);

        let all = label_filters(&CleanScope::All);
        assert_eq!(all.get("label"), Some(&vec!["faultline=1".to_string()]));
        let one = label_filters(&CleanScope::Run(run.clone()));
        assert_eq!(
            one.get("label"),
            Some(&vec![
                "faultline=1".to_string(),
                "faultline.run=t1".to_string()
            ])
        );
    }

    #[test]
    fn scope_check_rejects_foreign_objects() {
        let run = RunId::new("t1").unwrap();
        let other = RunId::new("t2").unwrap();
        let ours = network_labels(&run, &HarnessId::current());
        assert!(in_scope(&ours, &CleanScope::All));
        assert!(in_scope(&ours, &CleanScope::Run(run)));
        assert!(!in_scope(&ours, &CleanScope::Run(other)));
        let foreign = HashMap::from([("faultline.run".to_string(), "t1".to_string())]);
        assert!(!in_scope(&foreign, &CleanScope::All));
        let wrong_value = HashMap::from([("faultline".to_string(), "0".to_string())]);
        assert!(!in_scope(&wrong_value, &CleanScope::All));
        assert!(!in_scope(&HashMap::new(), &CleanScope::All));
    }

    #[test]
    fn harness_ids_round_trip_and_stat_is_parsed() {
        let id = HarnessId {
            host: "a/b".into(),
            pid: 12,
            start: 345,
        };
        assert_eq!(HarnessId::parse(&id.label()), Some(id));
        assert_eq!(HarnessId::parse("host/x/1"), None);
        assert_eq!(HarnessId::parse("nothing"), None);
        let stat = "4242 (tricky) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 \
                    987654 1000 100";
        assert_eq!(parse_stat_start(stat), Some(987654));
        assert_eq!(parse_stat_start("garbage"), None);
        let me = HarnessId::current();
        assert!(me.start > 0);
        assert!(harness_alive(&me, &me.host));
        let gone = HarnessId {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(!harness_alive(&gone, &me.host));
        assert!(harness_alive(&gone, "another-host"));
    }

    #[test]
    fn unlabelled_runs_are_kept_while_a_container_runs() {
        let old = |run: &str| {
            HashMap::from([
                ("faultline".to_string(), "1".to_string()),
                ("faultline.run".to_string(), run.to_string()),
            ])
        };
        let dead = HarnessId {
            host: "h".into(),
            pid: 2,
            start: 2,
        };
        let r = RunId::new("r3").unwrap();
        let containers = vec![
            (old("r1"), true),
            (old("r2"), false),
            (network_labels(&r, &dead), true),
        ];
        let live = live_runs(&containers, |id| id.pid == 1);
        assert_eq!(live.into_iter().collect::<Vec<_>>(), vec!["r1".to_string()]);
    }

    #[test]
    fn orphans_are_runs_whose_harness_is_gone() {
        let run = RunId::new("t1").unwrap();
        let live = HarnessId {
            host: "h".into(),
            pid: 1,
            start: 1,
        };
        let dead = HarnessId {
            host: "h".into(),
            pid: 2,
            start: 2,
        };
        let scope = CleanScope::Orphans { host: "h".into() };
        let alive = |id: &HarnessId| id.pid == 1;
        assert!(!in_scope_with(&network_labels(&run, &live), &scope, alive));
        assert!(in_scope_with(&network_labels(&run, &dead), &scope, alive));
        // Labelled by an older faultline: no harness label, an orphan.
        let old = HashMap::from([
            ("faultline".to_string(), "1".to_string()),
            ("faultline.run".to_string(), "t1".to_string()),
        ]);
        assert!(in_scope_with(&old, &scope, alive));
        assert!(!in_scope_with(&HashMap::new(), &scope, |_| false));
    }
}
