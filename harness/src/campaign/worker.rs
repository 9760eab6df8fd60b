//! The workers: one tokio task per process slot. Each takes the next operation from the
//! shared seeded generator, records the invoke, calls its node's client, and records the
//! completion. After an `info` the slot continues as a fresh process (id + concurrency):
//! a process never has two operations in flight, and an unknown one stays open forever.

use crate::campaign::generator::{Generator, OpRequest};
use crate::campaign::recorder::{Entry, Recorder};
use faultline_history::{EventType, Process};
use faultline_targets::{Client, ClientOp, Completion, CompletionKind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The HTTP key a single-register workload uses (the history records no key).
pub const REGISTER_KEY: &str = "r";

/// Live counts, for the progress bar and the summary.
#[derive(Debug, Default)]
pub struct Stats {
    /// Completed ok.
    pub ok: AtomicU64,
    /// Completed fail.
    pub fail: AtomicU64,
    /// Completed info.
    pub info: AtomicU64,
    /// Nemesis actions applied.
    pub faults: AtomicU64,
    /// The fault in force, for the progress bar.
    pub in_force: Mutex<String>,
    /// What the live check found (empty: nothing yet), for the progress bar.
    pub violation: Mutex<String>,
}

impl Stats {
    /// ok + fail + info.
    pub fn completed(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
            + self.fail.load(Ordering::Relaxed)
            + self.info.load(Ordering::Relaxed)
    }

    fn count(&self, kind: CompletionKind) {
        let c = match kind {
            CompletionKind::Ok => &self.ok,
            CompletionKind::Fail => &self.fail,
            CompletionKind::Info => &self.info,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the fault in force.
    pub fn set_in_force(&self, text: String) {
        *self.in_force.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }

    /// Notes a violation the live check found (shown on the progress bar).
    pub fn set_violation(&self, text: String) {
        let mut v = self.violation.lock().unwrap_or_else(|p| p.into_inner());
        if v.is_empty() {
            *v = text;
        } else if !v.contains(&text) {
            v.push_str(", ");
            v.push_str(&text);
        }
    }

    /// What the live check found so far (empty: nothing).
    pub fn violation(&self) -> String {
        self.violation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The fault in force.
    pub fn in_force(&self) -> String {
        self.in_force
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What every worker shares.
pub struct Workers {
    /// The recorder.
    pub recorder: Arc<Recorder>,
    /// The seeded generator (shared, so values stay unique per key).
    pub generator: Mutex<Generator>,
    /// One client per node, in node order.
    pub clients: Vec<Arc<dyn Client>>,
    /// Number of process slots.
    pub concurrency: usize,
    /// Time between two operations of one slot (concurrency / rate); zero = no limit.
    pub period: Duration,
    /// Live counts.
    pub stats: Arc<Stats>,
    /// Set to stop the workers after their operation in flight.
    pub stop: Arc<AtomicBool>,
    /// Highest process id used so far.
    pub max_process: AtomicU64,
}

/// The client operation and HTTP key of a generated request (a transaction's key is not
/// used: each micro-operation names its own).
pub fn to_client_op(op: &OpRequest) -> (String, ClientOp) {
    let key = op.key().unwrap_or(REGISTER_KEY).to_string();
    let cop = match op {
        OpRequest::Read { .. } => ClientOp::Read,
        OpRequest::Write { value, .. } => ClientOp::Write(*value),
        OpRequest::Cas { expected, new, .. } => ClientOp::Cas {
            expected: *expected,
            new: *new,
        },
        OpRequest::Txn { mops } => ClientOp::Txn(mops.clone()),
    };
    (key, cop)
}

/// The node a process talks to: round-robin over process ids, so that a slot that
/// becomes a fresh process after an `info` moves to another node.
pub fn node_of(process: u64, nodes: usize) -> usize {
    (process % nodes.max(1) as u64) as usize
}

/// The history kind of a completion.
pub fn event_type(kind: CompletionKind) -> EventType {
    match kind {
        CompletionKind::Ok => EventType::Ok,
        CompletionKind::Fail => EventType::Fail,
        CompletionKind::Info => EventType::Info,
    }
}

/// Records the invoke, runs the operation, records the completion; returns how it completed.
pub async fn perform(
    recorder: &Recorder,
    client: &dyn Client,
    process: u64,
    history_key: Option<&str>,
    http_key: &str,
    op: &ClientOp,
) -> Completion {
    recorder.record(Entry {
        process: Process::Client(process),
        kind: EventType::Invoke,
        f: op.f().to_string(),
        key: history_key.map(str::to_string),
        value: op.argument(),
        node: None,
        error: None,
    });
    let done = client.invoke_as(process, http_key, op).await;
    recorder.record(Entry {
        process: Process::Client(process),
        kind: event_type(done.kind),
        f: op.f().to_string(),
        key: history_key.map(str::to_string),
        value: match done.kind {
            CompletionKind::Ok => done.value.clone(),
            _ => op.argument(),
        },
        node: done.node.clone(),
        error: done.error.clone(),
    });
    done
}

impl Workers {
    /// Runs slot `slot` until `deadline` or until stopped.
    pub async fn run_slot(self: Arc<Self>, slot: usize, deadline: Instant) {
        let mut process = slot as u64;
        self.max_process.fetch_max(process, Ordering::Relaxed);
        // Spread the slots' first operations over one period.
        let offset = self
            .period
            .mul_f64(slot as f64 / self.concurrency.max(1) as f64);
        let mut next = tokio::time::Instant::now() + offset;
        loop {
            if self.stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                break;
            }
            if !self.period.is_zero() {
                tokio::time::sleep_until(next).await;
                next = (next + self.period).max(tokio::time::Instant::now());
                if self.stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    break;
                }
            }
            let req = self
                .generator
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_op();
            let (http_key, op) = to_client_op(&req);
            let client = &self.clients[node_of(process, self.clients.len())];
            let done = perform(
                &self.recorder,
                client.as_ref(),
                process,
                req.key(),
                &http_key,
                &op,
            )
            .await;
            self.stats.count(done.kind);
            if done.kind == CompletionKind::Info {
                process += self.concurrency as u64;
                self.max_process.fetch_max(process, Ordering::Relaxed);
            }
        }
    }

    /// The final reads ([`Generator::final_reads`]: every key, or transactions reading
    /// every key used) through every node, each node by a fresh process of its own, all
    /// nodes at once. Returns how many completed ok, and how many there were.
    pub async fn final_reads(self: Arc<Self>) -> (u64, u64) {
        let ops = self
            .generator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .final_reads();
        let total = (ops.len() * self.clients.len()) as u64;
        let base = self.max_process.load(Ordering::Relaxed) + 1;
        let mut tasks = Vec::new();
        for (i, client) in self.clients.iter().enumerate() {
            let client = client.clone();
            let ops = ops.clone();
            let this = self.clone();
            let process = base + i as u64;
            tasks.push(tokio::spawn(async move {
                let mut ok = 0;
                let mut process = process;
                for req in &ops {
                    let (http_key, op) = to_client_op(req);
                    let done = perform(
                        &this.recorder,
                        client.as_ref(),
                        process,
                        req.key(),
                        &http_key,
                        &op,
                    )
                    .await;
                    this.stats.count(done.kind);
                    match done.kind {
                        CompletionKind::Ok => ok += 1,
                        CompletionKind::Info => process += this.clients.len() as u64,
                        CompletionKind::Fail => {}
                    }
                }
                ok
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += t.await.unwrap_or(0);
        }
        (ok, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::generator::{GeneratorSpec, Workload};
    use async_trait::async_trait;
    use faultline_history::{JsonlReader, Value};
    use faultline_targets::Mop;
    use serde_json::Map;
    use std::collections::HashMap;

    /// A linearizable in-memory register per key that answers `info` to every third write;
    /// transactions are applied atomically under one lock (lists and registers).
    #[derive(Debug, Default)]
    struct MemClient {
        state: Mutex<HashMap<String, u64>>,
        writes: AtomicU64,
        lists: Mutex<HashMap<u64, Vec<u64>>>,
    }

    #[async_trait]
    impl Client for MemClient {
        async fn invoke(&self, key: &str, op: &ClientOp) -> Completion {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let ok = |value: Value| Completion {
                kind: CompletionKind::Ok,
                value,
                error: None,
                node: Some("n1".into()),
            };
            match op {
                ClientOp::Read => ok(s.get(key).map(|v| Value::from(*v)).unwrap_or(Value::Null)),
                ClientOp::Write(v) => {
                    s.insert(key.to_string(), *v);
                    if self.writes.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
                        Completion::info("timeout")
                    } else {
                        ok(op.argument())
                    }
                }
                ClientOp::Cas { expected, new } => {
                    if s.get(key) == Some(expected) {
                        s.insert(key.to_string(), *new);
                        ok(op.argument())
                    } else {
                        Completion::fail("mismatch")
                    }
                }
                ClientOp::Txn(mops) => {
                    let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
                    let done: Vec<Value> = mops
                        .iter()
                        .map(|m| match m {
                            Mop::Read(k) => serde_json::json!(["r", k, lists.get(k)]),
                            Mop::Append(k, v) => {
                                lists.entry(*k).or_default().push(*v);
                                m.to_json()
                            }
                            Mop::Write(k, v) => {
                                lists.insert(*k, vec![*v]);
                                m.to_json()
                            }
                        })
                        .collect();
                    ok(Value::Array(done))
                }
            }
        }
    }

    /// Workers that ran `concurrency` slots of `generator` for 300 ms against two nodes of
    /// one in-memory store, with the history they recorded (in a scratch folder removed
    /// on drop).
    struct WorkerRun {
        workers: Arc<Workers>,
        dir: std::path::PathBuf,
        path: std::path::PathBuf,
    }

    impl WorkerRun {
        /// The recorded history, parsed.
        fn history(&self) -> faultline_history::History {
            self.workers.recorder.sync().expect("sync");
            JsonlReader::new(
                std::io::BufReader::new(std::fs::File::open(&self.path).expect("open")),
                "h",
            )
            .read_all()
            .expect("parses")
        }
    }

    impl Drop for WorkerRun {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }

    async fn run_workers(
        tag: &str,
        generator: Generator,
        concurrency: usize,
        period: Duration,
    ) -> WorkerRun {
        let dir = std::env::temp_dir().join(format!("fl-workers-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("history.jsonl");
        let recorder = Recorder::create(&path, &Map::new(), Instant::now()).expect("recorder");
        let client: Arc<dyn Client> = Arc::new(MemClient::default());
        let workers = Arc::new(Workers {
            recorder,
            generator: Mutex::new(generator),
            clients: vec![client.clone(), client],
            concurrency,
            period,
            stats: Arc::new(Stats::default()),
            stop: Arc::new(AtomicBool::new(false)),
            max_process: AtomicU64::new(0),
        });
        let deadline = Instant::now() + Duration::from_millis(300);
        let tasks: Vec<_> = (0..concurrency)
            .map(|s| tokio::spawn(workers.clone().run_slot(s, deadline)))
            .collect();
        for t in tasks {
            t.await.expect("worker");
        }
        WorkerRun { workers, dir, path }
    }

    #[tokio::test]
    async fn transactions_are_recorded_as_txn_and_an_atomic_store_is_strict_serializable() {
        use crate::campaign::checking;
        use crate::campaign::generator::TxnSpec;
        use crate::campaign::plan::parse_txn_check;
        let spec = GeneratorSpec::new(Workload::ListAppend, 1, false).with_txn(TxnSpec {
            active_keys: 3,
            max_writes_per_key: 8,
            ..TxnSpec::default()
        });
        let gen = Generator::new(spec, 3);
        assert!(gen.key_names().is_empty());
        let run = run_workers("txn", gen, 4, Duration::from_millis(1)).await;
        let used = run
            .workers
            .generator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .final_reads();
        assert!(!used.is_empty());
        let (ok, total) = run.workers.clone().final_reads().await;
        assert_eq!(
            (ok, total),
            (total, 2 * used.len() as u64),
            "every final txn ok"
        );
        let history = run.history();
        let paired = history.pair("h").expect("pairs");
        assert!(paired.ops.len() > 20, "only {} ops", paired.ops.len());
        assert!(paired.ops.iter().all(|o| o.f == "txn" && o.key.is_none()));
        // Invokes carry null reads; completions carry what was read.
        let first = &paired.ops[0];
        let list = first
            .argument
            .as_array()
            .expect("a list of micro-operations");
        assert!(
            list.iter().all(|m| m[0] != "r" || m[2].is_null()),
            "{list:?}"
        );
        let req = parse_txn_check(&["claimed".into()], &["strict-serializable".into()])
            .expect("resolves");
        let c = checking::check(&paired, &req, Duration::from_secs(20));
        let t = c.txn.as_ref().expect("checked as transactions");
        assert_eq!(t.workload.as_deref(), Some("list-append"));
        assert_eq!(c.code, crate::exit::VALID, "{:?}", t.verdicts);
        assert!(t.anomalies.is_empty(), "{:?}", t.anomalies);
    }

    #[test]
    fn nodes_rotate_with_the_process() {
        assert_eq!(node_of(0, 3), 0);
        assert_eq!(node_of(4, 3), 1);
        assert_eq!(node_of(7, 1), 0);
    }

    #[tokio::test]
    async fn workers_record_paired_operations_and_move_on_after_info() {
        let spec = GeneratorSpec::new(Workload::Kv, 2, true);
        let gen = Generator::new(spec, 5);
        let run = run_workers("kv", gen, 3, Duration::from_millis(2)).await;
        let w = run.workers.clone();
        let finals = w.clone().final_reads().await;
        assert_eq!(finals, (4, 4), "2 keys through 2 nodes");
        let history = run.history();
        let paired = history.pair("h").expect("pairs");
        assert!(paired.ops.len() > 20, "only {} ops", paired.ops.len());
        assert!(w.stats.info.load(Ordering::Relaxed) > 0);
        // After an info the slot's process id grows by the concurrency.
        assert!(w.max_process.load(Ordering::Relaxed) >= 3);
        assert_eq!(w.stats.completed() as usize, paired.ops.len());
    }
}
