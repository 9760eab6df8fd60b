//! The Raft loop: one OS thread owns the raft-rs `RawNode`, the durable storage and the
//! state machine. It ticks the clock, steps messages from peers, proposes client commands,
//! serves reads through ReadIndex, persists each Ready with one fsync, sends messages and
//! applies committed entries, answering the waiting clients.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use raft::eraftpb::{EntryType, Message, Snapshot};
use raft::{RawNode, ReadState, StateRole};
use serde_json::Value;
use tokio::sync::oneshot;

use super::state::{Applied, Command, Entry, Registers, TxnApplied, TxnCommand};
use super::storage::{DiskError, DiskStorage};
use crate::api::{Answer, Mop, Op};

/// Length of one Raft tick.
pub const TICK: Duration = Duration::from_millis(50);
/// How long a `lease-reads` lease lasts after a quorum confirmed leadership, measured with
/// the wall clock. Shorter than the minimum election timeout (20 ticks = 1 s).
pub const LEASE: Duration = Duration::from_millis(800);

/// What the HTTP side and the transport hand to the loop.
pub enum Input {
    /// A client operation on a key.
    Client {
        /// The key.
        key: String,
        /// The operation.
        op: Op,
        /// Where the outcome goes.
        reply: oneshot::Sender<Reply>,
    },
    /// A transaction, proposed as one log entry (leader only).
    Txn {
        /// Its micro-operations.
        mops: Vec<Mop>,
        /// Where the outcome goes ([`Reply::Txn`] once applied).
        reply: oneshot::Sender<Reply>,
    },
    /// Evaluates a transaction on this node's applied state without proposing anything
    /// (the `txn-stale-reads` and `txn-lost-update` faults).
    Evaluate {
        /// Its micro-operations.
        mops: Vec<Mop>,
        /// What [`Registers::evaluate`] says.
        reply: oneshot::Sender<Result<Vec<Value>, usize>>,
    },
    /// A Raft message from a peer.
    Raft(Box<Message>),
    /// A peer could not be reached.
    Unreachable(u64),
    /// A snapshot message to `to` was delivered (`ok`) or not.
    SnapshotSent {
        /// The peer.
        to: u64,
        /// Whether delivery succeeded.
        ok: bool,
    },
}

/// The loop's answer to a client operation.
#[derive(Debug)]
pub enum Reply {
    /// The outcome (boxed: an answer is much larger than the other variants).
    Answer(Box<Answer>),
    /// What applying a transaction did.
    Txn(TxnApplied),
    /// This node does not lead; the leader's id if known.
    NotLeader(Option<u64>),
}

impl Reply {
    /// [`Reply::Answer`] with `a`.
    pub fn answer(a: Answer) -> Self {
        Reply::Answer(Box::new(a))
    }
}

/// The node's state as published for `/status` and `/health`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Published {
    /// `leader`, `follower`, `candidate` or `pre-candidate`.
    pub role: String,
    /// Current term.
    pub term: u64,
    /// Id of the leader known (0 = none).
    pub leader: u64,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Index of the latest snapshot.
    pub snapshot_index: u64,
    /// Size of the state as JSON text (what a snapshot carries).
    pub state_bytes: usize,
}

/// Which planted bugs the loop honours.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopFaults {
    /// Serve reads from local state on any node.
    pub stale_reads: bool,
    /// Acknowledge writes once appended locally.
    pub early_ack: bool,
    /// Serve reads on the leader during a wall-clock lease.
    pub lease_reads: bool,
}

struct Pending {
    id: u64,
    term: u64,
    reply: oneshot::Sender<Reply>,
    early_value: Option<Value>,
}

type Waiter = (String, oneshot::Sender<Reply>);

/// The Raft loop's state; see the module docs.
pub struct RaftLoop {
    raw: RawNode<DiskStorage>,
    name: String,
    sm: Registers,
    applied: u64,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    read_batch: Vec<Waiter>,
    reads_in_flight: HashMap<Vec<u8>, (SystemTime, Vec<Waiter>)>,
    reads_ready: Vec<(u64, Waiter)>,
    next_ctx: u64,
    lease_until: Option<SystemTime>,
    faults: LoopFaults,
    senders: HashMap<u64, tokio::sync::mpsc::Sender<Message>>,
    unreachable: Vec<u64>,
    published: Arc<Mutex<Published>>,
    snapshot_every: u64,
    max_state_bytes: usize,
    was_leader: bool,
}

impl RaftLoop {
    /// Builds the loop around an opened `RawNode` whose state machine is restored from the
    /// storage's snapshot.
    pub fn new(
        raw: RawNode<DiskStorage>,
        name: String,
        faults: LoopFaults,
        senders: HashMap<u64, tokio::sync::mpsc::Sender<Message>>,
        published: Arc<Mutex<Published>>,
        snapshot_every: u64,
        max_state_bytes: usize,
    ) -> Result<Self, DiskError> {
        let snap = raw.store().snapshot_ref();
        let applied = snap.get_metadata().index;
        let sm = Registers::from_bytes(snap.get_data(), max_state_bytes).map_err(|e| {
            DiskError::Corrupt {
                path: "snapshot.bin".into(),
                detail: e.to_string(),
            }
        })?;
        let id = raw.raft.id;
        Ok(Self {
            raw,
            name,
            sm,
            applied,
            pending: HashMap::new(),
            next_id: (id << 48) | (crate::api::wall_clock_nanos() >> 16 & 0xffff_ffff),
            read_batch: Vec::new(),
            reads_in_flight: HashMap::new(),
            reads_ready: Vec::new(),
            next_ctx: 1,
            lease_until: None,
            faults,
            senders,
            unreachable: Vec::new(),
            published,
            snapshot_every: snapshot_every.max(1),
            max_state_bytes,
            was_leader: false,
        })
    }

    /// Runs until every input sender is gone or the disk fails.
    pub fn run(mut self, rx: Receiver<Input>) -> Result<(), DiskError> {
        let mut next_tick = Instant::now() + TICK;
        loop {
            match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok(input) => self.handle(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            for _ in 0..4096 {
                match rx.try_recv() {
                    Ok(input) => self.handle(input),
                    Err(_) => break,
                }
            }
            if Instant::now() >= next_tick {
                self.raw.tick();
                // A process paused for a while ticks once on resumption, not a burst.
                next_tick = Instant::now() + TICK;
                self.on_tick();
            }
            self.issue_reads();
            self.on_ready()?;
            self.track_leadership();
            self.publish();
        }
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    fn leader(&self) -> Option<u64> {
        let l = self.raw.raft.leader_id;
        (l != raft::INVALID_ID).then_some(l)
    }

    fn lease_valid(&self) -> bool {
        self.lease_until
            .is_some_and(|until| SystemTime::now() < until)
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Client { key, op, reply } => self.on_client(key, op, reply),
            Input::Txn { mops, reply } => {
                if self.is_leader() {
                    self.next_id += 1;
                    let id = self.next_id;
                    self.propose(Entry::Txn(TxnCommand { id, txn: mops }), reply, None);
                } else {
                    let _ = reply.send(Reply::NotLeader(self.leader()));
                }
            }
            Input::Evaluate { mops, reply } => {
                let _ = reply.send(self.sm.evaluate(&mops));
            }
            Input::Raft(mut m) => {
                let last = self.raw.raft.raft_log.last_index();
                if let Err(e) = super::validate::make_harmless(&mut m, last, self.is_leader()) {
                    tracing::warn!(error = %e, "peer message dropped");
                    return;
                }
                if let Err(e) = self.raw.step(*m) {
                    tracing::debug!(error = %e, "step failed");
                }
            }
            Input::Unreachable(id) => self.raw.report_unreachable(id),
            Input::SnapshotSent { to, ok } => {
                let status = if ok {
                    raft::SnapshotStatus::Finish
                } else {
                    raft::SnapshotStatus::Failure
                };
                self.raw.report_snapshot(to, status);
            }
        }
    }

    fn on_client(&mut self, key: String, op: Op, reply: oneshot::Sender<Reply>) {
        if op == Op::Read {
            // A lease read also needs everything known committed to be applied here.
            let lease = self.faults.lease_reads
                && self.is_leader()
                && self.applied >= self.raw.raft.raft_log.committed
                && self.lease_valid();
            if self.faults.stale_reads || lease {
                let _ = reply.send(Reply::answer(Answer::ok(&self.name, self.sm.read(&key))));
            } else if self.is_leader() {
                self.read_batch.push((key, reply));
            } else {
                let _ = reply.send(Reply::NotLeader(self.leader()));
            }
            return;
        }
        if !self.is_leader() {
            let _ = reply.send(Reply::NotLeader(self.leader()));
            return;
        }
        self.next_id += 1;
        let id = self.next_id;
        let early_value = match (&op, self.faults.early_ack) {
            (Op::Write { value }, true) => Some(value.clone()),
            _ => None,
        };
        let cmd = Command { id, key, op };
        self.propose(Entry::Kv(cmd), reply, early_value);
    }

    /// Proposes `entry` (made by this leader) and remembers who waits for it.
    fn propose(&mut self, entry: Entry, reply: oneshot::Sender<Reply>, early_value: Option<Value>) {
        let id = entry.id();
        let data = match serde_json::to_vec(&entry) {
            Ok(d) => d,
            Err(_) => {
                let _ = reply.send(Reply::answer(Answer::fail(&self.name, "bad-request")));
                return;
            }
        };
        match self.raw.propose(Vec::new(), data) {
            Ok(()) => {
                let index = self.raw.raft.raft_log.last_index();
                let term = self.raw.raft.term;
                self.pending.insert(
                    index,
                    Pending {
                        id,
                        term,
                        reply,
                        early_value,
                    },
                );
            }
            Err(e) => {
                tracing::debug!(error = %e, "proposal dropped");
                let _ = reply.send(Reply::answer(Answer::fail(&self.name, "dropped")));
            }
        }
    }

    fn on_tick(&mut self) {
        if self.faults.lease_reads && self.is_leader() && self.reads_in_flight.is_empty() {
            self.issue_read_index(Vec::new());
        }
        self.pending.retain(|_, p| !p.reply.is_closed());
        self.read_batch.retain(|(_, r)| !r.is_closed());
        self.reads_in_flight.retain(|ctx, (_, waiters)| {
            waiters.retain(|(_, r)| !r.is_closed());
            !waiters.is_empty() || ctx.first() == Some(&0)
        });
    }

    fn issue_reads(&mut self) {
        if self.read_batch.is_empty() {
            return;
        }
        if !self.is_leader() {
            let leader = self.leader();
            for (_, r) in self.read_batch.drain(..) {
                let _ = r.send(Reply::NotLeader(leader));
            }
            return;
        }
        let batch = std::mem::take(&mut self.read_batch);
        self.issue_read_index(batch);
    }

    /// Asks raft for a read index; waits for a leader that has committed in its term.
    fn issue_read_index(&mut self, batch: Vec<Waiter>) {
        if !self.raw.raft.commit_to_current_term() {
            self.read_batch.extend(batch);
            return;
        }
        self.next_ctx += 1;
        let mut ctx = Vec::with_capacity(9);
        // Lease renewals carry a 0 marker byte so they survive the closed-waiter sweep.
        ctx.push(u8::from(!batch.is_empty()));
        ctx.extend_from_slice(&self.next_ctx.to_be_bytes());
        self.reads_in_flight
            .insert(ctx.clone(), (SystemTime::now(), batch));
        self.raw.read_index(ctx);
    }

    fn on_read_states(&mut self, states: Vec<ReadState>) {
        for rs in states {
            if let Some((issued, waiters)) = self.reads_in_flight.remove(&rs.request_ctx) {
                if self.faults.lease_reads {
                    let until = issued + LEASE;
                    let extend = match self.lease_until {
                        Some(u) => u < until,
                        None => true,
                    };
                    if extend {
                        self.lease_until = Some(until);
                    }
                }
                for w in waiters {
                    self.reads_ready.push((rs.index, w));
                }
            }
        }
    }

    fn serve_ready_reads(&mut self) {
        let applied = self.applied;
        let (now, later): (Vec<_>, Vec<_>) =
            self.reads_ready.drain(..).partition(|(i, _)| *i <= applied);
        self.reads_ready = later;
        for (_, (key, reply)) in now {
            let _ = reply.send(Reply::answer(Answer::ok(&self.name, self.sm.read(&key))));
        }
    }

    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            let to = m.to;
            match self.senders.get(&to) {
                Some(tx) => {
                    if tx.try_send(m).is_err() {
                        self.unreachable.push(to);
                    }
                }
                None => tracing::warn!(to, "message for an unknown peer"),
            }
        }
    }

    fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), DiskError> {
        self.raw.mut_store().apply_snapshot(snap)?;
        let index = snap.get_metadata().index;
        match Registers::from_bytes(snap.get_data(), self.max_state_bytes) {
            Ok(sm) => self.sm = sm,
            Err(e) => {
                return Err(DiskError::Corrupt {
                    path: "snapshot from leader".into(),
                    detail: e.to_string(),
                })
            }
        }
        self.applied = index;
        let name = self.name.clone();
        self.pending.retain(|i, p| {
            if *i <= index {
                let reply = std::mem::replace(&mut p.reply, oneshot::channel().0);
                let _ = reply.send(Reply::answer(Answer::unknown(&name, "superseded")));
                false
            } else {
                true
            }
        });
        Ok(())
    }

    fn apply(&mut self, entries: Vec<raft::eraftpb::Entry>) {
        for e in entries {
            if e.index <= self.applied {
                continue;
            }
            self.applied = e.index;
            let pending = self.pending.remove(&e.index);
            if e.get_entry_type() != EntryType::EntryNormal || e.get_data().is_empty() {
                if let Some(p) = pending {
                    let _ = p
                        .reply
                        .send(Reply::answer(Answer::fail(&self.name, "dropped")));
                }
                continue;
            }
            let entry: Entry = match serde_json::from_slice(e.get_data()) {
                Ok(c) => c,
                Err(err) => {
                    tracing::error!(index = e.index, error = %err, "undecodable log entry skipped");
                    continue;
                }
            };
            let reply = match &entry {
                Entry::Kv(cmd) => Reply::answer(match self.sm.apply(cmd) {
                    Applied::Ok(v) => Answer::ok(&self.name, v),
                    Applied::Mismatch(cur) => Answer::mismatch(&self.name, cur),
                    Applied::Full => Answer::fail(&self.name, "state-full"),
                }),
                Entry::Txn(t) => Reply::Txn(self.sm.apply_txn(&t.txn)),
            };
            if let Some(p) = pending {
                // A leader makes at most one entry per index in its term, so the entry at
                // our index is ours exactly when its term and request id match.
                let reply = if p.id != entry.id() || p.term != e.term {
                    Reply::answer(Answer::fail(&self.name, "dropped"))
                } else {
                    reply
                };
                let _ = p.reply.send(reply);
            }
        }
    }

    fn early_acks(&mut self) {
        let name = &self.name;
        self.pending.retain(|_, p| match p.early_value.take() {
            Some(v) => {
                let reply = std::mem::replace(&mut p.reply, oneshot::channel().0);
                let _ = reply.send(Reply::answer(Answer::ok(name, v)));
                false
            }
            None => true,
        });
    }

    fn on_ready(&mut self) -> Result<(), DiskError> {
        if !self.raw.has_ready() {
            self.serve_ready_reads();
            return Ok(());
        }
        let mut rd = self.raw.ready();
        self.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            let snap = rd.snapshot().clone();
            self.install_snapshot(&snap)?;
        }
        self.on_read_states(rd.take_read_states());
        self.apply(rd.take_committed_entries());
        self.raw.mut_store().append(rd.entries())?;
        if let Some(hs) = rd.hs() {
            self.raw.mut_store().set_hard_state(hs)?;
        }
        self.raw.mut_store().persist()?;
        if self.faults.early_ack {
            self.early_acks();
        }
        self.send(rd.take_persisted_messages());
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit)?;
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries());
        self.raw.advance_apply();
        for id in std::mem::take(&mut self.unreachable) {
            self.raw.report_unreachable(id);
        }
        self.maybe_snapshot()?;
        self.serve_ready_reads();
        Ok(())
    }

    fn maybe_snapshot(&mut self) -> Result<(), DiskError> {
        let last = self.raw.store().snapshot_ref().get_metadata().index;
        if self.applied >= last + self.snapshot_every {
            let data = self.sm.to_bytes();
            self.raw
                .mut_store()
                .compact_to_snapshot(self.applied, data)?;
            tracing::info!(
                index = self.applied,
                keys = self.sm.len(),
                "snapshot taken, log compacted"
            );
        }
        Ok(())
    }

    /// When leadership is lost, reads still waiting for a read index are told to go to the
    /// new leader (they observed nothing) and the lease ends. Reads whose index a quorum
    /// already confirmed stay and are served once applied.
    fn track_leadership(&mut self) {
        let leader = self.is_leader();
        if self.was_leader && !leader {
            self.lease_until = None;
            let to = self.leader();
            for (_, (_, waiters)) in self.reads_in_flight.drain() {
                for (_, r) in waiters {
                    let _ = r.send(Reply::NotLeader(to));
                }
            }
        }
        self.was_leader = leader;
    }

    fn publish(&self) {
        let role = match self.raw.raft.state {
            StateRole::Leader => "leader",
            StateRole::Follower => "follower",
            StateRole::Candidate => "candidate",
            StateRole::PreCandidate => "pre-candidate",
        };
        if let Ok(mut p) = self.published.lock() {
            p.role = role.to_owned();
            p.term = self.raw.raft.term;
            p.leader = self.raw.raft.leader_id;
            p.commit = self.raw.raft.raft_log.committed;
            p.applied = self.applied;
            p.snapshot_index = self.raw.store().snapshot_ref().get_metadata().index;
            p.state_bytes = self.sm.size();
        }
    }
}
