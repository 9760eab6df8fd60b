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

use crate::NodeError;

/// The future a node operation returns.
pub type NodeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NodeError>> + Send + 'a>>;

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
