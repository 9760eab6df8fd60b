//! The node trait: what the nemesis needs from a runtime (Docker containers, or plain
//! network namespaces with processes) to apply faults to one node.
//!
//! The trait is asynchronous with boxed futures rather than `async fn`: runtimes are
//! async (bollard is), the nemesis drives several nodes from one tokio task, and boxed
//! futures keep the trait usable as `Arc<dyn Node>` so a cluster can mix node kinds and the
//! nemesis needs no generic parameter. The accessors are plain functions: they return what
//! the runtime already knows (the current pid changes only through `start`).

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::rules::NetRules;
use crate::{Mechanism, NodeError, Strobe};

/// The future a node operation returns.
pub type NodeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NodeError>> + Send + 'a>>;

/// The future a [`NodeAgent`] call returns: when the change was in force.
pub type ConfirmFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Confirmed, NodeError>> + Send + 'a>>;

/// What a node agent reports after carrying out a change: the mechanism and the moment
/// (Unix time in nanoseconds, the node's clock, never faked: [`unix_ns_now`]) at which it
/// was in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmed {
    /// The mechanism used.
    pub mechanism: Mechanism,
    /// When the change was in force (the rule committed, the file renamed, the signal
    /// delivered), in nanoseconds since the Unix epoch.
    pub in_force_unix_ns: u64,
}

/// Nanoseconds since the Unix epoch, now (0 before 1970): the wall clock as read at the
/// first call in this process, advanced by the monotonic clock since. A wall clock that
/// is shifted later in the process leaves it true: Chaos Mesh's TimeChaos shifts the
/// node agent's wall clock together with its child's, and the agent calls this once as it
/// starts, before any fault.
pub fn unix_ns_now() -> u64 {
    static ANCHOR: std::sync::OnceLock<(u128, std::time::Instant)> = std::sync::OnceLock::new();
    let (wall, at) = ANCHOR.get_or_init(|| {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        (wall, std::time::Instant::now())
    });
    u64::try_from(wall + at.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A program inside the node that carries out the node's own faults from within its
/// network namespace (see [`crate::local::LocalNode`], which implements every call). When
/// a [`Node`] has one, the nemesis sends it the node's whole state for each change instead
/// of entering the namespace from the host: no host privilege is needed.
pub trait NodeAgent: Send + Sync {
    /// The TCP port the agent listens on; the node's packet rules always accept it.
    fn control_port(&self) -> u16;

    /// Replaces the node's packet-filter rules (partition and loss) with `rules`.
    fn set_net(&self, rules: &NetRules) -> ConfirmFuture<'_>;

    /// Delays the node's outgoing packets by `ms` (netem, else NFQUEUE), or stops (`None`).
    fn set_delay(&self, ms: Option<u32>) -> ConfirmFuture<'_>;

    /// Limits the node's outgoing rate to `kbit` (tbf), or stops (`None`).
    fn set_rate(&self, kbit: Option<u32>) -> ConfirmFuture<'_>;

    /// Sets the node's clock offset to `offset_ms`, strobing around it when `strobe` is
    /// given (any running strobe stops first).
    fn set_clock(&self, offset_ms: i64, strobe: Option<Strobe>) -> ConfirmFuture<'_>;
}

/// One node of the cluster, as the nemesis sees it.
///
/// Implemented by the runtime; the nemesis only calls it. It never learns which system
/// under test runs on the node.
pub trait Node: Send + Sync {
    /// The node's name, as used in grudges and the history (`n1`).
    fn name(&self) -> &str;

    /// The address the other nodes reach this node at (the source of its packets).
    fn ip(&self) -> IpAddr;

    /// The path of the node's network namespace, entered with `nsenter --net=PATH`:
    /// `/proc/<pid>/ns/net` for a container, `/run/netns/<name>` for a named namespace.
    /// `None` while the node has no namespace (a killed container).
    fn netns_path(&self) -> Option<PathBuf>;

    /// The host pid of the node's main process, if it runs.
    fn pid(&self) -> Option<u32>;

    /// The directory on the host that holds the node's libfaketime timestamp file `rc`
    /// (bind-mounted into a container; see [`crate::clock::faketime_env`]).
    fn clock_dir(&self) -> PathBuf;

    /// Starts the node's process again after a kill.
    fn start(&self) -> NodeFuture<'_>;

    /// Kills the node's process (SIGKILL: no clean shutdown).
    fn kill(&self) -> NodeFuture<'_>;

    /// Pauses the node's process (SIGSTOP or the engine's freezer).
    fn pause(&self) -> NodeFuture<'_>;

    /// Resumes a paused node.
    fn resume(&self) -> NodeFuture<'_>;

    /// The node's agent, when faults are carried out from inside the node; `None` (the
    /// default): the nemesis enters the node's namespace from the host.
    fn agent(&self) -> Option<&dyn NodeAgent> {
        None
    }
}

/// A node double for the unit tests: records every operation, can be told to fail one,
/// and has no network namespace (it is "down" for the packet mechanisms).
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::sync::Mutex;

    /// A recording node.
    pub struct FakeNode {
        pub name: String,
        pub ip: IpAddr,
        pub clock_dir: PathBuf,
        pub netns: Option<PathBuf>,
        pub fail_on: Option<&'static str>,
        pub calls: Mutex<Vec<String>>,
    }

    impl FakeNode {
        pub fn new(name: &str, last_octet: u8, clock_dir: PathBuf) -> FakeNode {
            FakeNode {
                name: name.to_string(),
                ip: IpAddr::from([10, 77, 250, last_octet]),
                clock_dir,
                netns: None,
                fail_on: None,
                calls: Mutex::new(Vec::new()),
            }
        }

        pub fn calls(&self) -> Vec<String> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }

        fn record(&self, op: &'static str) -> NodeFuture<'_> {
            Box::pin(async move {
                if let Ok(mut calls) = self.calls.lock() {
                    calls.push(format!("{op} {}", self.name));
                }
                if self.fail_on == Some(op) {
                    return Err(format!("{op} refused by the fake runtime").into());
                }
                Ok(())
            })
        }
    }

    impl Node for FakeNode {
        fn name(&self) -> &str {
            &self.name
        }
        fn ip(&self) -> IpAddr {
            self.ip
        }
        fn netns_path(&self) -> Option<PathBuf> {
            self.netns.clone()
        }
        fn pid(&self) -> Option<u32> {
            None
        }
        fn clock_dir(&self) -> PathBuf {
            self.clock_dir.clone()
        }
        fn start(&self) -> NodeFuture<'_> {
            self.record("start")
        }
        fn kill(&self) -> NodeFuture<'_> {
            self.record("kill")
        }
        fn pause(&self) -> NodeFuture<'_> {
            self.record("pause")
        }
        fn resume(&self) -> NodeFuture<'_> {
            self.record("resume")
        }
    }
}

#[cfg(test)]
mod clock_tests {
    use super::unix_ns_now;

    #[test]
    fn unix_time_follows_the_wall_clock_and_never_goes_back() {
        let wall = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .unwrap_or(0)
        };
        let mut last = unix_ns_now();
        for _ in 0..1000 {
            let now = unix_ns_now();
            assert!(now >= last, "went back: {now} < {last}");
            last = now;
        }
        // Within 50 ms of the wall clock (no step happens during a test).
        let diff = last.abs_diff(wall());
        assert!(diff < 50_000_000, "{diff} ns from the wall clock");
    }
}
