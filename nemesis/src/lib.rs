//! faultline-nemesis: faults as data, seeded schedules, and the mechanisms that apply them.
//!
//! The crate is split between what decides and what does:
//!
//! - **Pure**: [`Fault`] and [`Grudge`] (faults as serialisable data, recorded as `nemesis`
//!   events in the history), [`grudge`] (partition topologies), [`schedule`] (seeded timed
//!   fault lists), [`rules`] (the text fed to `nft`, `iptables`, `tc` and libfaketime) and
//!   [`Capabilities::check`].
//! - **Effects**: [`Nemesis`] applies faults to [`Node`]s, either through the node's
//!   [`NodeAgent`] (a program inside the node that applies them with [`local::LocalNode`],
//!   in its own namespace: no host privilege) or from the host. Partitions and packet loss
//!   go into one nft table of our own (`inet faultline`) in each node's network namespace
//!   (from the host: entered with `nsenter --net=PATH`); iptables with a chain of our own
//!   is the fallback. Delay uses netem where the kernel has it, else an NFQUEUE delayer
//!   ([`delay`]: an iptables rule queues the node's packets to a thread of ours in its
//!   namespace that holds each one for the delay), and is refused when neither works.
//!   Clocks are moved through each node's libfaketime timestamp file ([`clock`]). Kill,
//!   start, pause and resume are delegated to the runtime through the [`Node`] trait.
//!
//! The crate never learns which system under test runs on a node, and does not depend on
//! any container runtime: a runtime implements [`Node`] (Docker containers, or plain
//! network namespaces with processes).
//!
//! # What a runtime must do
//!
//! - Implement [`Node`]. `netns_path` is `/proc/<pid>/ns/net` of the node's current main
//!   process for a container (`None` while it is stopped), `/run/netns/<name>` for a named
//!   namespace. `kill`, `start`, `pause` and `resume` are the runtime's own operations.
//! - Clocks: before a node first starts, call [`clock::init_clock_dir`] on its clock
//!   directory; bind-mount that *directory* (not the file: the nemesis replaces the file by
//!   renaming) into the node, say at `/faketime`; put `libfaketime.so.1`
//!   ([`Capabilities::libfaketime`] is the host's copy) in the node's file system; and start
//!   the system under test with the variables of [`clock::faketime_env`] (the library's
//!   and the timestamp file's paths as the node sees them). The system under test must be
//!   dynamically linked against glibc and read the wall clock through libc.
//! - Packet rules live in the node's network namespace. A container that restarts gets a
//!   new namespace without them: [`Fault::Start`] re-applies them by itself; a runtime that
//!   restarts a node on its own calls [`Nemesis::reapply`] afterwards.
//!
//! # What the campaign runner does
//!
//! - Probe with [`Capabilities::probe`] (and record the result in `run.json`), then refuse
//!   a plan the machine cannot run with [`Capabilities::check`].
//! - Draw the plan with [`schedule()`] from the seed, apply each action at its time with
//!   [`Nemesis::apply`], and record it as a `nemesis` event: `f` = [`Fault::name`],
//!   `value` = [`Fault::value`]; [`Applied::mechanism`] says which mechanism was used.
//! - Call [`Nemesis::heal_all`] before the first fault (to clear debris of a crashed run)
//!   and on every exit path.
//!
//! A typical run:
//!
//! ```no_run
//! # async fn demo(nodes: Vec<std::sync::Arc<dyn faultline_nemesis::Node>>) -> Result<(), faultline_nemesis::NemesisError> {
//! use faultline_nemesis::{schedule, Capabilities, Family, Nemesis, ScheduleConfig};
//! let caps = Capabilities::probe().await;
//! let families = vec![Family::Partition, Family::Kill, Family::Clock];
//! caps.check(&families)?; // refuse early, naming what is missing
//! let names = nodes.iter().map(|n| n.name().to_string()).collect();
//! let plan = schedule(&ScheduleConfig::new(families, names, 10_000, 60_000), 42)?;
//! let mut nemesis = Nemesis::new(nodes, caps)?;
//! for action in &plan.actions {
//!     // sleep until action.at_ms, record {"f": action.fault.name(), "value": action.fault.value()}
//!     let applied = nemesis.apply(&action.fault).await?;
//!     println!("{} via {:?}", applied.fault, applied.mechanism);
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod caps;
pub mod clock;
pub mod delay;
mod error;
pub mod exec;
mod fault;
pub mod grudge;
pub mod local;
mod nemesis;
mod node;
pub mod rules;
mod schedule;

pub use caps::{Capabilities, DelayBackend, NetBackend};
pub use error::{Missing, NemesisError, NodeError};
pub use fault::{Family, Fault, Grudge, LeaderAim, LeaderFault, Strobe};
pub use grudge::Topology;
pub use nemesis::{Applied, Mechanism, Nemesis};
pub use node::{unix_ns_now, ConfirmFuture, Confirmed, Node, NodeAgent, NodeFuture};
pub use schedule::{schedule, Schedule, ScheduleConfig, TimedAction};
