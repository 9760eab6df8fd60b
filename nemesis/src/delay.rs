//! Packet delay without netem: an NFQUEUE delayer.
//!
//! A kernel without `sch_netem` cannot hold packets in a qdisc, but it can hand them to user
//! space: an iptables rule with the `NFQUEUE` target in the node's network namespace queues
//! every packet the node sends, and a [`Delayer`] bound to that queue holds each packet for
//! the delay, then lets it go (an accept verdict).
//!
//! - The delayer is a thread of the harness, not a process. Network namespaces are per
//!   thread in Linux: the thread enters the node's namespace (`setns`) and opens its netlink
//!   socket there, and the socket stays bound to that namespace.
//! - Held packets form a FIFO of (deadline, packet) with deadline = arrival + delay: packets
//!   arrive in order and share one delay, so the front always expires first. The socket is
//!   non-blocking and the thread wakes every millisecond while packets flow, so a packet is
//!   held between D and about D + 2 ms. After 50 ms without a packet arriving or leaving,
//!   it wakes less often (every D / 20, 1 to 5 ms): the first packet after such a pause may
//!   be held up to 5 % (at most 5 ms) longer, and a stop is seen within that tick.
//! - Only packet metadata is copied to user space (copy range 0): a held packet costs a page
//!   of memory. The kernel queue holds at most [`QUEUE_MAX_LEN`] packets; with fail-open, a
//!   packet that finds it (or the socket) full passes undelayed instead of being dropped.
//! - The rule uses `--queue-bypass`: while no delayer is bound to the queue (not started yet,
//!   stopped, crashed), packets pass undelayed, so a failed delayer never becomes a partition.
//! - [`NodeDelay`] ties one node's rule and thread together: [`NodeDelay::install`] starts the
//!   thread, then adds the rule; [`NodeDelay::remove`] (and `Drop`) removes the rule, then
//!   stops the thread, which releases the packets it still holds at once (accepted).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nfq::{Message, Queue, Verdict};

use crate::exec::{run_in_netns, run_in_netns_blocking};
use crate::rules::{self, DELAY_CHAIN};
use crate::NemesisError;

/// The most packets the kernel keeps in one delayer's queue (beyond that they pass
/// undelayed).
pub const QUEUE_MAX_LEN: u32 = 8192;

/// The longest the delayer sleeps between two looks at its socket while packets flow.
const TICK: Duration = Duration::from_millis(1);

/// After this long without a packet the delayer looks less often ([`idle_tick`]).
const IDLE_AFTER: Duration = Duration::from_millis(50);

/// The longest sleep of an idle delayer, whatever the delay.
const MAX_IDLE_TICK: Duration = Duration::from_millis(5);

/// How often an idle delayer looks at its socket: a twentieth of the delay, between
/// [`TICK`] and [`MAX_IDLE_TICK`]. The first packet after a pause is then held at most
/// about 5 % (and 1 ms) longer than asked, and an idle delayer costs a fraction of the
/// CPU of one that wakes every millisecond.
fn idle_tick(delay: Duration) -> Duration {
    (delay / 20).clamp(TICK, MAX_IDLE_TICK)
}

/// How long [`Delayer::start`] waits for the thread to report that it is bound.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The built-in chain our delay chain is jumped to from.
const HOOK: &str = "OUTPUT";

/// What can go wrong starting or stopping a [`Delayer`].
#[derive(Debug, thiserror::Error)]
pub enum DelayError {
    /// The namespace file could not be opened (the node is gone, or the path is wrong).
    #[error("cannot open the network namespace {}: {source}", .path.display())]
    OpenNetns {
        /// The namespace path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `setns` into the namespace failed (not root?).
    #[error("cannot enter the network namespace {}: {source}", .path.display())]
    EnterNetns {
        /// The namespace path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Opening or configuring the NFQUEUE netlink socket failed.
    #[error(
        "cannot bind NFQUEUE queue {queue} in {}: {source} (the kernel needs nfnetlink_queue, \
         and the queue must not be bound already)",
        .path.display()
    )]
    Bind {
        /// The queue number.
        queue: u16,
        /// The namespace path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The thread could not be created.
    #[error("cannot start a delayer thread: {0}")]
    Spawn(#[source] io::Error),
    /// The thread did not report within the start timeout.
    #[error("the delayer of NFQUEUE queue {queue} did not start within {} s", START_TIMEOUT.as_secs())]
    NoStart {
        /// The queue number.
        queue: u16,
    },
    /// The thread panicked.
    #[error("the delayer thread of NFQUEUE queue {queue} panicked")]
    Panicked {
        /// The queue number.
        queue: u16,
    },
    /// The function given to [`in_netns`] panicked.
    #[error("a thread in the network namespace {} panicked", .path.display())]
    NetnsThreadPanicked {
        /// The namespace path.
        path: PathBuf,
    },
}

/// What a delayer did, returned when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DelayStats {
    /// Packets held and released.
    pub packets: u64,
    /// The most packets held at once.
    pub most_held: usize,
    /// Receive or verdict errors (logged; the packet passes or is handled by the kernel).
    pub errors: u64,
}

/// A thread bound to one NFQUEUE queue in one network namespace that holds each queued
/// packet for a fixed delay, then accepts it. Stopped by [`Delayer::stop`] or on drop; the
/// packets still held are then accepted at once.
///
/// It only serves the queue: the rule that sends packets to it is [`NodeDelay`]'s.
#[derive(Debug)]
pub struct Delayer {
    queue: u16,
    delay: Duration,
    netns: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<DelayStats>>,
}

impl Delayer {
    /// Starts a delayer thread in the network namespace at `netns` (`/proc/<pid>/ns/net`,
    /// `/run/netns/<name>`), bound to `queue`, holding packets for `delay`. Returns once the
    /// queue is bound, or with the reason it could not be.
    pub fn start(netns: &Path, queue: u16, delay: Duration) -> Result<Delayer, DelayError> {
        let file = File::open(netns).map_err(|source| DelayError::OpenNetns {
            path: netns.to_path_buf(),
            source,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = mpsc::sync_channel(1);
        let path = netns.to_path_buf();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fl-delay-{queue}"))
            .spawn(move || {
                let q = match enter_and_bind(&file, &path, queue) {
                    Ok(q) => q,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return DelayStats::default();
                    }
                };
                drop(file);
                let _ = started_tx.send(Ok(()));
                hold(q, queue, delay, &thread_stop)
            })
            .map_err(DelayError::Spawn)?;
        let mut delayer = Delayer {
            queue,
            delay,
            netns: netns.to_path_buf(),
            stop,
            thread: Some(thread),
        };
        match started_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(delayer),
            Ok(Err(e)) => {
                let _ = delayer.finish();
                Err(e)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The thread ended without a word: it panicked.
                delayer.finish()?;
                Err(DelayError::Panicked { queue })
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Do not wait for a thread that hangs: tell it to stop and let it go.
                delayer.stop.store(true, Ordering::Release);
                delayer.thread = None;
                Err(DelayError::NoStart { queue })
            }
        }
    }

    /// The queue number served.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// How long each packet is held.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The namespace the thread serves.
    pub fn netns(&self) -> &Path {
        &self.netns
    }

    /// True while the thread runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the thread: it accepts every packet it still holds, unbinds the queue and
    /// ends. Returns what it did. Takes at most one tick (1 to 5 ms) plus the releases.
    pub fn stop(mut self) -> Result<DelayStats, DelayError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<DelayStats, DelayError> {
        self.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| DelayError::Panicked { queue: self.queue }),
            None => Ok(DelayStats::default()),
        }
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            tracing::warn!("stopping the delayer of {}: {e}", self.netns.display());
        }
    }
}

/// Enters the namespace (this thread only) and binds the queue there.
fn enter_and_bind(netns: &File, path: &Path, queue: u16) -> Result<Queue, DelayError> {
    // Our own namespace (a node agent): nothing to enter, and no CAP_SYS_ADMIN needed.
    // SAFETY: `netns` is an open namespace file for the duration of the call; setns only
    // changes the network namespace of the calling thread.
    let rc = if crate::exec::is_own_netns(path) {
        0
    } else {
        unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) }
    };
    if rc != 0 {
        return Err(DelayError::EnterNetns {
            path: path.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    let bind = |source| DelayError::Bind {
        queue,
        path: path.to_path_buf(),
        source,
    };
    let mut q = Queue::open().map_err(bind)?;
    q.bind(queue).map_err(bind)?;
    // Metadata only: the verdict needs the packet id, not the payload.
    q.set_copy_range(queue, 0).map_err(bind)?;
    q.set_fail_open(queue, true).map_err(bind)?;
    q.set_queue_max_len(queue, QUEUE_MAX_LEN).map_err(bind)?;
    q.set_nonblocking(true);
    Ok(q)
}

/// The delayer's loop: take what arrived, release what is due, sleep until the next
/// deadline or a tick; on stop, release everything and unbind.
fn hold(mut q: Queue, queue: u16, delay: Duration, stop: &AtomicBool) -> DelayStats {
    let mut held: VecDeque<(Instant, Message)> = VecDeque::new();
    let mut stats = DelayStats::default();
    let idle = idle_tick(delay);
    // The last arrival or release: traffic through a delayed node is often a request
    // answered after the delay, so the quiet time counts from either.
    let mut last_activity = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let before = stats.packets;
        receive(&mut q, queue, &mut held, delay, &mut stats);
        let now = Instant::now();
        if stats.packets != before || held.front().is_some_and(|(due, _)| *due <= now) {
            last_activity = now;
        }
        while held.front().is_some_and(|(due, _)| stopping || *due <= now) {
            if let Some((_, msg)) = held.pop_front() {
                if let Err(e) = q.verdict(msg) {
                    note_error(&mut stats, queue, "verdict", &e);
                }
            }
        }
        if stopping {
            break;
        }
        let nap = match held.front() {
            Some((due, _)) => due.saturating_duration_since(now).min(TICK),
            None if now.duration_since(last_activity) >= IDLE_AFTER => idle,
            None => TICK,
        };
        if !nap.is_zero() {
            std::thread::sleep(nap);
        }
    }
    if let Err(e) = q.unbind(queue) {
        tracing::debug!("unbinding NFQUEUE queue {queue}: {e}");
    }
    stats
}

/// Takes every packet waiting on the socket, stamping each with its deadline.
fn receive(
    q: &mut Queue,
    queue: u16,
    held: &mut VecDeque<(Instant, Message)>,
    delay: Duration,
    stats: &mut DelayStats,
) {
    loop {
        match q.recv() {
            Ok(mut msg) => {
                msg.set_verdict(Verdict::Accept);
                held.push_back((Instant::now() + delay, msg));
                stats.packets += 1;
                stats.most_held = stats.most_held.max(held.len());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                note_error(stats, queue, "receive", &e);
                return;
            }
        }
    }
}

fn note_error(stats: &mut DelayStats, queue: u16, what: &str, e: &io::Error) {
    stats.errors += 1;
    if stats.errors <= 3 {
        tracing::warn!("NFQUEUE delayer (queue {queue}): {what} failed: {e}");
    }
}

/// Runs `f` in a new thread that has entered the network namespace at `netns`, and returns
/// its result (for sockets that must be created inside a namespace).
pub fn in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DelayError> {
    let file = File::open(netns).map_err(|source| DelayError::OpenNetns {
        path: netns.to_path_buf(),
        source,
    })?;
    let path = netns.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("fl-netns".to_string())
        .spawn(move || {
            // SAFETY: as in `enter_and_bind`: a valid namespace fd, this thread only.
            let rc = if crate::exec::is_own_netns(&path) {
                0
            } else {
                unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }
            };
            if rc != 0 {
                return Err(DelayError::EnterNetns {
                    path,
                    source: io::Error::last_os_error(),
                });
            }
            Ok(f())
        })
        .map_err(DelayError::Spawn)?;
    thread.join().map_err(|_| DelayError::NetnsThreadPanicked {
        path: netns.to_path_buf(),
    })?
}

/// One node's NFQUEUE delay: the rule in its namespace (our chain [`DELAY_CHAIN`], jumped to
/// from OUTPUT, queueing every packet the node sends from its address, loopback excepted) and
/// the [`Delayer`] serving the queue.
///
/// Remove it with [`NodeDelay::remove`]; dropping it does the same with blocking commands.
#[derive(Debug)]
pub struct NodeDelay {
    netns: PathBuf,
    queue: u16,
    delayer: Option<Delayer>,
}

impl NodeDelay {
    /// Starts a delayer for `queue` in the namespace at `netns`, then adds the rule that
    /// queues the packets sent from `src`. IPv4 only (the rule is an iptables rule). On
    /// failure nothing is left behind.
    pub async fn install(
        netns: &Path,
        src: IpAddr,
        queue: u16,
        delay: Duration,
        timeout: Duration,
    ) -> Result<NodeDelay, NemesisError> {
        NodeDelay::install_exempt(netns, src, queue, delay, timeout, None).await
    }

    /// [`NodeDelay::install`], leaving the TCP packets sent from `exempt_sport` undelayed
    /// (a node agent's control port).
    pub async fn install_exempt(
        netns: &Path,
        src: IpAddr,
        queue: u16,
        delay: Duration,
        timeout: Duration,
        exempt_sport: Option<u16>,
    ) -> Result<NodeDelay, NemesisError> {
        let IpAddr::V4(src) = src else {
            return Err(NemesisError::Unsupported {
                fault: "delay",
                reason: format!(
                    "the NFQUEUE delay uses iptables, which handles IPv4 only, and {src} is \
                     IPv6 (run on a kernel with sch_netem)"
                ),
            });
        };
        let delayer =
            Delayer::start(netns, queue, delay).map_err(|e| NemesisError::Unsupported {
                fault: "delay",
                reason: e.to_string(),
            })?;
        let installed = NodeDelay {
            netns: netns.to_path_buf(),
            queue,
            delayer: Some(delayer),
        };
        if let Err(e) = add_rules(netns, src, queue, timeout, exempt_sport).await {
            if let Err(stop) = installed.remove(timeout).await {
                tracing::warn!("{stop}");
            }
            return Err(e);
        }
        Ok(installed)
    }

    /// The namespace the rule and the delayer are in.
    pub fn netns(&self) -> &Path {
        &self.netns
    }

    /// The NFQUEUE queue number.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// True while the delayer thread runs.
    pub fn is_running(&self) -> bool {
        self.delayer.as_ref().is_some_and(Delayer::is_running)
    }

    /// Removes the rule (when the namespace still exists: a container's old namespace goes
    /// away with its rules once the delayer leaves it), then stops the delayer, which
    /// releases what it holds. Rule removal is best effort, as for the partition chain.
    pub async fn remove(mut self, timeout: Duration) -> Result<DelayStats, DelayError> {
        if self.netns.exists() {
            remove_rules(&self.netns, timeout).await;
        }
        match self.delayer.take() {
            Some(delayer) => delayer.stop(),
            None => Ok(DelayStats::default()),
        }
    }
}

impl Drop for NodeDelay {
    fn drop(&mut self) {
        let Some(delayer) = self.delayer.take() else {
            return;
        };
        if self.netns.exists() {
            let t = Duration::from_secs(5);
            let mut jumps = 0;
            while jumps < 8
                && run_in_netns_blocking(&self.netns, "iptables", &jump_args("-D"), t).is_ok()
            {
                jumps += 1;
            }
            for op in ["-F", "-X"] {
                let args = vec!["-w".to_string(), op.to_string(), DELAY_CHAIN.to_string()];
                let _ = run_in_netns_blocking(&self.netns, "iptables", &args, t);
            }
        }
        drop(delayer);
    }
}

fn jump_args(op: &str) -> Vec<String> {
    rules::chain_jump_args(op, HOOK, DELAY_CHAIN)
}

/// Fills our chain (replacing what it held) and makes sure OUTPUT jumps to it once.
async fn add_rules(
    netns: &Path,
    src: std::net::Ipv4Addr,
    queue: u16,
    t: Duration,
    exempt_sport: Option<u16>,
) -> Result<(), NemesisError> {
    let script = rules::delay_restore_script_exempt(src, queue, exempt_sport);
    let restore = vec!["-w".to_string(), "--noflush".to_string()];
    run_in_netns(netns, "iptables-restore", &restore, Some(&script), t).await?;
    if run_in_netns(netns, "iptables", &jump_args("-C"), None, t)
        .await
        .is_err()
    {
        run_in_netns(netns, "iptables", &jump_args("-I"), None, t).await?;
    }
    Ok(())
}

/// Unhooks and deletes our chain; each step may find nothing to do.
async fn remove_rules(netns: &Path, t: Duration) {
    for _ in 0..8 {
        if run_in_netns(netns, "iptables", &jump_args("-D"), None, t)
            .await
            .is_err()
        {
            break;
        }
    }
    for op in ["-F", "-X"] {
        let args = vec!["-w".to_string(), op.to_string(), DELAY_CHAIN.to_string()];
        let _ = run_in_netns(netns, "iptables", &args, None, t).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_ticks_scale_with_the_delay() {
        let ms = Duration::from_millis;
        assert_eq!(idle_tick(ms(0)), ms(1));
        assert_eq!(idle_tick(ms(10)), ms(1));
        assert_eq!(idle_tick(ms(60)), ms(3));
        assert_eq!(idle_tick(ms(100)), ms(5));
        assert_eq!(idle_tick(ms(20_000)), ms(5));
    }

    #[test]
    fn a_missing_namespace_is_named() {
        let path = Path::new("/proc/self/ns/faultline-no-such-namespace");
        let err = Delayer::start(path, 64000, Duration::from_millis(10)).unwrap_err();
        assert!(matches!(err, DelayError::OpenNetns { .. }), "{err}");
        assert!(
            err.to_string().contains("faultline-no-such-namespace"),
            "{err}"
        );
        assert!(matches!(
            in_netns(path, || ()),
            Err(DelayError::OpenNetns { .. })
        ));
    }

    #[test]
    fn bind_errors_name_the_queue_and_the_fix() {
        let err = DelayError::Bind {
            queue: 64002,
            path: PathBuf::from("/proc/42/ns/net"),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        };
        let text = err.to_string();
        assert!(text.contains("queue 64002 in /proc/42/ns/net"), "{text}");
        assert!(text.contains("nfnetlink_queue"), "{text}");
    }
}
