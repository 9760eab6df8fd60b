//! Seeded transactional histories from simulated databases, each a textbook
//! implementation of one isolation level.
//!
//! `processes` clients each run one transaction at a time; a scheduler picks a random
//! client for every step, so transactions interleave. Keys are drawn from a pool of
//! `keys` active keys; a key that received `max_writes_per_key` writes is retired and a
//! fresh one takes its place (as Elle's generator does), so lists stay short. Values are
//! unique per key. The databases:
//!
//! * [`Isolation::Serial`]: each transaction runs atomically at one step between its
//!   invoke and its completion: strict serializable.
//! * [`Isolation::SnapshotIsolation`]: reads from the snapshot taken when the transaction
//!   began, writes buffered; at commit, first committer wins (a transaction aborts when a
//!   key it wrote was committed by another since its snapshot).
//! * [`Isolation::ReadCommitted`]: reads see the latest committed state (and the
//!   transaction's own writes), writes buffered and installed at commit.
//! * [`Isolation::ReadUncommitted`]: writes go straight into the shared state under
//!   write locks held to the end (no-wait: a transaction that finds a key locked
//!   aborts); reads take no lock and see uncommitted data; an abort rolls back.
//!
//! Some completions are recorded as `info` (`info_rate`): the database did what it did,
//! the client did not learn it; the process then continues under a fresh id.

use super::parse::Workload;
use faultline_history::{Event, EventType, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// A simulated database's isolation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Serial execution (strict serializable).
    Serial,
    /// Snapshot isolation with first-committer-wins.
    SnapshotIsolation,
    /// Read committed.
    ReadCommitted,
    /// Read uncommitted with long write locks.
    ReadUncommitted,
}

impl std::str::FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Isolation, String> {
        match s {
            "serial" | "serializable" | "strict-serializable" => Ok(Isolation::Serial),
            "si" | "snapshot-isolation" => Ok(Isolation::SnapshotIsolation),
            "rc" | "read-committed" => Ok(Isolation::ReadCommitted),
            "ru" | "read-uncommitted" => Ok(Isolation::ReadUncommitted),
            other => Err(format!(
                "unknown isolation {other:?} (expected serial, snapshot-isolation, read-committed or read-uncommitted)"
            )),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnGenConfig {
    /// Transactions in total.
    pub txns: usize,
    /// Concurrent clients.
    pub processes: usize,
    /// Active keys at any time.
    pub keys: usize,
    /// Micro-operations per transaction, at least.
    pub min_len: usize,
    /// Micro-operations per transaction, at most.
    pub max_len: usize,
    /// Fraction of micro-operations that are reads.
    pub read_rate: f64,
    /// Writes a key receives before it is retired.
    pub max_writes_per_key: usize,
    /// List-append or rw-register.
    pub workload: Workload,
    /// The database simulated.
    pub isolation: Isolation,
    /// Fraction of completions recorded as `info`.
    pub info_rate: f64,
    /// Fraction of transactions the database aborts on its own at commit.
    pub abort_rate: f64,
    /// Seed of all randomness.
    pub seed: u64,
}

impl Default for TxnGenConfig {
    fn default() -> Self {
        TxnGenConfig {
            txns: 1000,
            processes: 10,
            keys: 10,
            min_len: 1,
            max_len: 4,
            read_rate: 0.5,
            max_writes_per_key: 32,
            workload: Workload::ListAppend,
            isolation: Isolation::Serial,
            info_rate: 0.0,
            abort_rate: 0.0,
            seed: 0,
        }
    }
}

#[derive(Clone, Copy)]
enum Planned {
    Read(u64),
    Write(u64, u64),
}

struct Running {
    process: u64,
    plan: Vec<Planned>,
    step: usize,
    /// Results of the reads so far (per micro-operation).
    results: Vec<Option<Vec<u64>>>,
    /// Snapshot: commit stamp at begin.
    start: u64,
    /// Buffered writes (SI, RC), or keys locked (RU).
    buffer: Vec<(u64, u64)>,
    invoked: bool,
    executed: bool,
}

struct Db {
    /// Per key: (value, commit stamp) in order; for RU, uncommitted entries too.
    lists: rustc_hash::FxHashMap<u64, Vec<(u64, u64)>>,
    /// Per key: stamp of its last commit.
    last_commit: rustc_hash::FxHashMap<u64, u64>,
    /// RU: which client holds each key's write lock.
    locks: rustc_hash::FxHashMap<u64, usize>,
    stamp: u64,
}

impl Db {
    fn committed(&self, k: u64, at: u64) -> Vec<u64> {
        self.lists
            .get(&k)
            .map(|l| l.iter().filter(|e| e.1 <= at).map(|e| e.0).collect())
            .unwrap_or_default()
    }
}

/// Generates a history (events, index order) from a simulated database.
pub fn generate(cfg: &TxnGenConfig) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let processes = cfg.processes.max(1);
    let mut active: Vec<u64> = (0..cfg.keys.max(1) as u64).collect();
    let mut next_key = active.len() as u64;
    let mut writes: rustc_hash::FxHashMap<u64, u64> = Default::default();
    let mut db = Db {
        lists: Default::default(),
        last_commit: Default::default(),
        locks: Default::default(),
        stamp: 0,
    };
    let mut clients: Vec<Option<Running>> = (0..processes).map(|_| None).collect();
    let mut pids: Vec<u64> = (0..processes as u64).collect();
    let mut next_pid = processes as u64;
    let mut events: Vec<Event> = Vec::with_capacity(cfg.txns * 2);
    let mut started = 0usize;
    let mut done = 0usize;
    let uncommitted = u64::MAX;
    while done < cfg.txns {
        let c = rng.gen_range(0..processes);
        if clients[c].is_none() {
            if started == cfg.txns {
                continue;
            }
            started += 1;
            let len = rng.gen_range(cfg.min_len.max(1)..=cfg.max_len.max(cfg.min_len.max(1)));
            let mut plan = Vec::with_capacity(len);
            for _ in 0..len {
                let ki = rng.gen_range(0..active.len());
                let k = active[ki];
                if rng.gen_bool(cfg.read_rate.clamp(0.0, 1.0)) {
                    plan.push(Planned::Read(k));
                } else {
                    let n = writes.entry(k).or_insert(0);
                    *n += 1;
                    plan.push(Planned::Write(k, *n));
                    if *n as usize >= cfg.max_writes_per_key.max(1) {
                        active[ki] = next_key;
                        next_key += 1;
                    }
                }
            }
            clients[c] = Some(Running {
                process: pids[c],
                results: vec![None; plan.len()],
                plan,
                step: 0,
                start: 0,
                buffer: Vec::new(),
                invoked: false,
                executed: false,
            });
        }
        let Some(t) = clients[c].as_mut() else {
            continue;
        };
        if !t.invoked {
            t.invoked = true;
            t.start = db.stamp;
            let value = txn_value(cfg.workload, &t.plan, None);
            let index = events.len() as u64;
            events.push(Event::client(
                index,
                t.process,
                EventType::Invoke,
                "txn",
                value,
            ));
            continue;
        }
        // One step of execution, or the commit.
        let mut outcome: Option<bool> = None;
        match cfg.isolation {
            Isolation::Serial => {
                if !t.executed {
                    t.executed = true;
                    db.stamp += 1;
                    for (i, p) in t.plan.iter().enumerate() {
                        match *p {
                            Planned::Read(k) => t.results[i] = Some(db.committed(k, db.stamp)),
                            Planned::Write(k, v) => {
                                db.lists.entry(k).or_default().push((v, db.stamp))
                            }
                        }
                    }
                    continue;
                }
                outcome = Some(true);
            }
            Isolation::SnapshotIsolation | Isolation::ReadCommitted => {
                if t.step < t.plan.len() {
                    let at = if cfg.isolation == Isolation::SnapshotIsolation {
                        t.start
                    } else {
                        db.stamp
                    };
                    match t.plan[t.step] {
                        Planned::Read(k) => {
                            let mut l = db.committed(k, at);
                            l.extend(t.buffer.iter().filter(|b| b.0 == k).map(|b| b.1));
                            t.results[t.step] = Some(l);
                        }
                        Planned::Write(k, v) => t.buffer.push((k, v)),
                    }
                    t.step += 1;
                    continue;
                }
                let conflict = cfg.isolation == Isolation::SnapshotIsolation
                    && t.buffer
                        .iter()
                        .any(|b| db.last_commit.get(&b.0).is_some_and(|&s| s > t.start));
                if conflict || rng.gen_bool(cfg.abort_rate.clamp(0.0, 1.0)) {
                    outcome = Some(false);
                } else {
                    db.stamp += 1;
                    for &(k, v) in &t.buffer {
                        db.lists.entry(k).or_default().push((v, db.stamp));
                        db.last_commit.insert(k, db.stamp);
                    }
                    outcome = Some(true);
                }
            }
            Isolation::ReadUncommitted => {
                if t.step < t.plan.len() {
                    match t.plan[t.step] {
                        Planned::Read(k) => {
                            t.results[t.step] = Some(db.committed(k, uncommitted));
                        }
                        Planned::Write(k, v) => match db.locks.get(&k) {
                            Some(&holder) if holder != c => outcome = Some(false),
                            _ => {
                                db.locks.insert(k, c);
                                db.lists.entry(k).or_default().push((v, uncommitted - 1));
                                t.buffer.push((k, v));
                            }
                        },
                    }
                    if outcome.is_none() {
                        t.step += 1;
                        continue;
                    }
                }
                if outcome.is_none() {
                    outcome = Some(!rng.gen_bool(cfg.abort_rate.clamp(0.0, 1.0)));
                }
                // Commit stamps the entries; an abort removes them.
                let ok = outcome == Some(true);
                db.stamp += 1;
                for &(k, v) in &t.buffer {
                    if let Some(l) = db.lists.get_mut(&k) {
                        if ok {
                            for e in l.iter_mut().filter(|e| e.0 == v) {
                                e.1 = db.stamp;
                            }
                        } else {
                            l.retain(|e| e.0 != v);
                        }
                    }
                    db.locks.remove(&k);
                }
            }
        }
        let Some(ok) = outcome else { continue };
        let Some(t) = clients[c].take() else { continue };
        let info = rng.gen_bool(cfg.info_rate.clamp(0.0, 1.0));
        let index = events.len() as u64;
        let (kind, value) = match (info, ok) {
            (true, _) => (EventType::Info, txn_value(cfg.workload, &t.plan, None)),
            (false, true) => (
                EventType::Ok,
                txn_value(cfg.workload, &t.plan, Some(&t.results)),
            ),
            (false, false) => (EventType::Fail, txn_value(cfg.workload, &t.plan, None)),
        };
        let mut ev = Event::client(index, t.process, kind, "txn", value);
        if info {
            ev = ev.with_error("timeout");
            pids[c] = next_pid;
            next_pid += 1;
        } else if !ok {
            ev = ev.with_error("aborted");
        }
        events.push(ev);
        done += 1;
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.time = i as u64 * 1_000;
    }
    events
}

fn txn_value(w: Workload, plan: &[Planned], results: Option<&[Option<Vec<u64>>]>) -> Value {
    let mops: Vec<Value> = plan
        .iter()
        .enumerate()
        .map(|(i, p)| match *p {
            Planned::Write(k, v) => match w {
                Workload::ListAppend => json!(["append", k, v]),
                Workload::RwRegister => json!(["w", k, v]),
            },
            Planned::Read(k) => {
                let seen = results.and_then(|r| r[i].as_ref());
                match (w, seen) {
                    (_, None) => json!(["r", k, null]),
                    (Workload::ListAppend, Some(l)) => json!(["r", k, l]),
                    (Workload::RwRegister, Some(l)) => json!(["r", k, l.last()]),
                }
            }
        })
        .collect();
    Value::Array(mops)
}
