//! Node states, the facts a runtime reports about a node, and the decision
//! of what a lifecycle action does in each state. Pure.

use std::net::IpAddr;
use std::path::PathBuf;

use super::names::NodeName;

/// Whether a node's process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// The process runs.
    Running,
    /// The process exists but is frozen (engine pause: cgroup freezer).
    Paused,
    /// No process: never started, exited or killed.
    Stopped,
}

impl NodeState {
    /// Maps the engine's container status text (`running`, `paused`,
    /// `restarting`, `created`, `exited`, `dead`, `removing`, ...).
    pub fn from_engine_status(status: &str) -> Self {
        match status {
            "running" | "restarting" => NodeState::Running,
            "paused" => NodeState::Paused,
            _ => NodeState::Stopped,
        }
    }
}

/// What the runtime knows about a node's process right now. The pid and the
/// netns path change whenever the node is started again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// Running, paused or stopped.
    pub state: NodeState,
    /// Host pid of the node's main process (`None` when stopped).
    pub pid: Option<u32>,
    /// Host path of the node's network namespace, for `nsenter --net=`
    /// (`/proc/<pid>/ns/net` with Docker; `None` when stopped).
    pub netns_path: Option<PathBuf>,
}

impl NodeStatus {
    /// The status of a node whose main process has host pid `pid` (0 or
    /// negative means none, as the engine reports it for a stopped container).
    pub fn from_pid(state: NodeState, pid: i64) -> Self {
        let pid = u32::try_from(pid).ok().filter(|p| *p > 0);
        NodeStatus {
            state: if pid.is_none() {
                NodeState::Stopped
            } else {
                state
            },
            pid,
            netns_path: pid.map(|p| PathBuf::from(format!("/proc/{p}/ns/net"))),
        }
    }
}

/// Everything about one node: the fixed facts and the current status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// The node's name (also its hostname).
    pub name: NodeName,
    /// The container's name.
    pub container: String,
    /// The node's address, at which the harness reaches it.
    pub ip: IpAddr,
    /// Host folder mounted at `/data`.
    pub data_dir: PathBuf,
    /// Host folder mounted at `/faketime` (holds libfaketime's `rc`).
    pub clock_dir: PathBuf,
    /// The current status.
    pub status: NodeStatus,
}

/// A lifecycle action asked of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Make it run (start when stopped, resume when paused).
    Start,
    /// SIGKILL its process.
    Kill,
    /// Freeze it.
    Pause,
    /// Thaw it.
    Resume,
}

/// What to do for an action in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Already where the action leads.
    Nothing,
    /// Start the stopped process.
    Start,
    /// Thaw the paused process.
    Unpause,
    /// SIGKILL the process.
    Kill,
    /// Freeze the process.
    Pause,
    /// The action makes no sense in this state.
    Refuse,
}

/// Decides the step for `action` in `state`. Actions are idempotent (killing a
/// stopped node or resuming a running one does nothing); `Start` on a paused
/// node thaws it; killing a paused node kills it; pausing or resuming a
/// stopped node is refused.
pub fn plan_step(state: NodeState, action: Action) -> Step {
    use NodeState::*;
    match (action, state) {
        (Action::Start, Running) => Step::Nothing,
        (Action::Start, Paused) => Step::Unpause,
        (Action::Start, Stopped) => Step::Start,
        (Action::Kill, Running | Paused) => Step::Kill,
        (Action::Kill, Stopped) => Step::Nothing,
        (Action::Pause, Running) => Step::Pause,
        (Action::Pause, Paused) => Step::Nothing,
        (Action::Pause, Stopped) => Step::Refuse,
        (Action::Resume, Paused) => Step::Unpause,
        (Action::Resume, Running) => Step::Nothing,
        (Action::Resume, Stopped) => Step::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_status_mapping() {
        assert_eq!(NodeState::from_engine_status("running"), NodeState::Running);
        assert_eq!(
            NodeState::from_engine_status("restarting"),
            NodeState::Running
        );
        assert_eq!(NodeState::from_engine_status("paused"), NodeState::Paused);
        for s in ["created", "exited", "dead", "removing", ""] {
            assert_eq!(NodeState::from_engine_status(s), NodeState::Stopped, "{s}");
        }
    }

    #[test]
    fn status_from_pid() {
        let s = NodeStatus::from_pid(NodeState::Running, 4242);
        assert_eq!(s.pid, Some(4242));
        assert_eq!(s.netns_path, Some(PathBuf::from("/proc/4242/ns/net")));
        assert_eq!(s.state, NodeState::Running);
        let s = NodeStatus::from_pid(NodeState::Running, 0);
        assert_eq!(
            (s.state, s.pid, s.netns_path),
            (NodeState::Stopped, None, None)
        );
        assert_eq!(NodeStatus::from_pid(NodeState::Paused, -1).pid, None);
    }

    #[test]
    fn every_step() {
        use NodeState::*;
        let table = [
            (Running, Action::Start, Step::Nothing),
            (Paused, Action::Start, Step::Unpause),
            (Stopped, Action::Start, Step::Start),
            (Running, Action::Kill, Step::Kill),
            (Paused, Action::Kill, Step::Kill),
            (Stopped, Action::Kill, Step::Nothing),
            (Running, Action::Pause, Step::Pause),
            (Paused, Action::Pause, Step::Nothing),
            (Stopped, Action::Pause, Step::Refuse),
            (Running, Action::Resume, Step::Nothing),
            (Paused, Action::Resume, Step::Unpause),
            (Stopped, Action::Resume, Step::Refuse),
        ];
        for (state, action, step) in table {
            assert_eq!(plan_step(state, action), step, "{state:?} {action:?}");
        }
    }
}
