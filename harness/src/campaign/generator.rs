//! The workload generator: pure and seeded.
//!
//! It decides what each process does next (read, write or compare-and-set, on which key,
//! with which value; or a transaction of micro-operations); the workers only carry it
//! out. Written values are unique per key (a counter per key), so the fast checkers
//! (zones, causal bad patterns) apply, and a transactional history's reads name the
//! write they saw (list-append: each appended value once per key; rw-register: each
//! written value once per key).
//!
//! Transactions (list-append, rw-register) follow Elle's generator: a pool of
//! `active_keys` keys; each micro-operation picks a key of the pool (uniformly, or
//! exponentially: pool slot `i` is half as likely as slot `i - 1`) and reads it with
//! probability `read_fraction`, else appends to it (writes it, rw-register); a
//! transaction has between `min_length` and `max_length` micro-operations. A key retires
//! once it has been written `max_writes_per_key` times, and a fresh key (never used
//! before) takes its slot, so lists stay short and each key's history small.

use faultline_targets::Mop;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The operations a client issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// One register: read and write.
    Register,
    /// One register: read, write and compare-and-set.
    CasRegister,
    /// Several independent keys, each a cas-register (cas only where the target offers it).
    Kv,
    /// Transactions of reads and appends to lists (Elle's list-append).
    ListAppend,
    /// Transactions of reads and writes of registers (Elle's rw-register).
    RwRegister,
}

impl Workload {
    /// Whether the workload issues transactions (f = txn) rather than single operations.
    pub fn is_txn(self) -> bool {
        matches!(self, Workload::ListAppend | Workload::RwRegister)
    }
}

/// How a transaction's micro-operations choose their keys among the active ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KeyDist {
    /// Every active key equally likely.
    #[default]
    Uniform,
    /// Active slot `i` half as likely as slot `i - 1` (a few hot keys, more conflicts).
    Exponential,
}

impl fmt::Display for KeyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyDist::Uniform => "uniform",
            KeyDist::Exponential => "exponential",
        })
    }
}

/// The shape of a transactional workload's transactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnSpec {
    /// Keys in use at once (the pool).
    pub active_keys: usize,
    /// Fewest micro-operations per transaction (at least 1).
    pub min_length: usize,
    /// Most micro-operations per transaction (at most 64).
    pub max_length: usize,
    /// Probability that a micro-operation reads (else it appends or writes), 0 to 1.
    pub read_fraction: f64,
    /// How keys are chosen among the active ones.
    pub key_dist: KeyDist,
    /// Writes after which a key retires and a fresh key takes its slot.
    pub max_writes_per_key: u64,
}

impl Default for TxnSpec {
    fn default() -> Self {
        TxnSpec {
            active_keys: 5,
            min_length: 1,
            max_length: 4,
            read_fraction: 0.5,
            key_dist: KeyDist::Uniform,
            max_writes_per_key: 32,
        }
    }
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "register" => Ok(Workload::Register),
            "cas-register" => Ok(Workload::CasRegister),
            "kv" => Ok(Workload::Kv),
            "list-append" => Ok(Workload::ListAppend),
            "rw-register" => Ok(Workload::RwRegister),
            other => Err(format!(
                "unknown workload {other:?}: expected register, cas-register, kv, list-append or rw-register"
            )),
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Register => "register",
            Workload::CasRegister => "cas-register",
            Workload::Kv => "kv",
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
        })
    }
}

/// One operation to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpRequest {
    /// Read `key`.
    Read {
        /// The key (`None` for a single register).
        key: Option<String>,
    },
    /// Write `value` to `key`.
    Write {
        /// The key.
        key: Option<String>,
        /// A value never written to this key before.
        value: u64,
    },
    /// Set `key` to `new` if it holds `expected`.
    Cas {
        /// The key.
        key: Option<String>,
        /// The value it must hold.
        expected: u64,
        /// A value never written to this key before.
        new: u64,
    },
    /// A transaction (the history records no key; each micro-operation names its own).
    Txn {
        /// Its micro-operations, in order.
        mops: Vec<Mop>,
    },
}

impl OpRequest {
    /// The history's `f` of this operation.
    pub fn f(&self) -> &'static str {
        match self {
            OpRequest::Read { .. } => "read",
            OpRequest::Write { .. } => "write",
            OpRequest::Cas { .. } => "cas",
            OpRequest::Txn { .. } => "txn",
        }
    }

    /// The key (`None` for a single register and for a transaction).
    pub fn key(&self) -> Option<&str> {
        match self {
            OpRequest::Read { key } | OpRequest::Write { key, .. } | OpRequest::Cas { key, .. } => {
                key.as_deref()
            }
            OpRequest::Txn { .. } => None,
        }
    }

    /// The invoke's value in the history (`null`, the value, `[expected, new]`, or the
    /// micro-operations with `null` reads).
    pub fn argument(&self) -> serde_json::Value {
        match self {
            OpRequest::Read { .. } => serde_json::Value::Null,
            OpRequest::Write { value, .. } => serde_json::json!(value),
            OpRequest::Cas { expected, new, .. } => serde_json::json!([expected, new]),
            OpRequest::Txn { mops } => faultline_targets::mops_json(mops),
        }
    }
}

/// What the generator may produce.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratorSpec {
    /// The workload.
    pub workload: Workload,
    /// Number of keys (kv only; registers have one).
    pub keys: usize,
    /// Whether the target offers compare-and-set.
    pub cas: bool,
    /// Relative weights of read, write and cas.
    pub mix: [u32; 3],
    /// The transactions' shape (list-append and rw-register only).
    pub txn: TxnSpec,
}

impl GeneratorSpec {
    /// The default mix: half reads, a quarter writes, a quarter cas (when offered).
    pub fn new(workload: Workload, keys: usize, cas: bool) -> Self {
        GeneratorSpec {
            workload,
            keys: keys.max(1),
            cas,
            mix: [2, 1, 1],
            txn: TxnSpec::default(),
        }
    }

    /// The same spec with this transaction shape.
    pub fn with_txn(mut self, txn: TxnSpec) -> Self {
        self.txn = txn;
        self
    }
}

/// Keys read by one final transaction (the longest transaction a plan may ask for).
pub const FINAL_READS_PER_TXN: usize = 64;

/// The state of a transactional workload: the pool of active keys and each key's
/// write count (which is also its last written value: values count up from 1).
#[derive(Debug, Clone)]
struct TxnState {
    /// The active keys, by slot.
    active: Vec<u64>,
    /// The next fresh key.
    next_key: u64,
    /// Writes so far of each active key.
    writes: std::collections::HashMap<u64, u64>,
    /// Cumulative weights of the slots (for the key distribution).
    cumulative: Vec<f64>,
}

impl TxnState {
    fn new(spec: &TxnSpec) -> Self {
        let n = spec.active_keys.max(1);
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|i| {
                total += match spec.key_dist {
                    KeyDist::Uniform => 1.0,
                    KeyDist::Exponential => 0.5f64.powi(i.min(1000) as i32),
                };
                total
            })
            .collect();
        TxnState {
            active: (0..n as u64).collect(),
            next_key: n as u64,
            writes: std::collections::HashMap::new(),
            cumulative,
        }
    }

    fn slot(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.gen_range(0.0..total);
        self.cumulative
            .iter()
            .position(|&c| x < c)
            .unwrap_or(self.cumulative.len() - 1)
    }

    /// A fresh value for the key in `slot`; retires the key after its last allowed write.
    fn write(&mut self, slot: usize, max_writes: u64) -> (u64, u64) {
        let key = self.active[slot];
        let n = self.writes.entry(key).or_insert(0);
        *n += 1;
        let value = *n;
        if value >= max_writes.max(1) {
            self.writes.remove(&key);
            self.active[slot] = self.next_key;
            self.next_key += 1;
        }
        (key, value)
    }
}

/// Seeded generator of operations.
#[derive(Debug, Clone)]
pub struct Generator {
    spec: GeneratorSpec,
    rng: ChaCha8Rng,
    /// Per key: the last value generated (values count up from 1).
    last: Vec<u64>,
    /// The transactional workloads' key pool.
    txn: Option<TxnState>,
}

impl Generator {
    /// A generator with this seed.
    pub fn new(spec: GeneratorSpec, seed: u64) -> Self {
        let keys = match spec.workload {
            Workload::Kv => spec.keys,
            _ => 1,
        };
        let txn = spec.workload.is_txn().then(|| TxnState::new(&spec.txn));
        Generator {
            spec,
            rng: ChaCha8Rng::seed_from_u64(seed),
            last: vec![0; keys],
            txn,
        }
    }

    /// The names of the keys read at the end of a campaign (`None` for a single
    /// register); none for a transactional workload, whose history holds transactions
    /// only.
    pub fn key_names(&self) -> Vec<Option<String>> {
        match self.spec.workload {
            Workload::Kv => (0..self.last.len()).map(|k| Some(key_name(k))).collect(),
            Workload::ListAppend | Workload::RwRegister => Vec::new(),
            _ => vec![None],
        }
    }

    /// The operations read at the end of a campaign, through every node: a read of each
    /// key (of the single register), or for a transactional workload transactions that
    /// read every key used so far (retired ones included: an acknowledged append or
    /// write that no later read saw is visible only to such a read), at most
    /// [`FINAL_READS_PER_TXN`] keys each.
    pub fn final_reads(&self) -> Vec<OpRequest> {
        match &self.txn {
            Some(state) => (0..state.next_key)
                .collect::<Vec<u64>>()
                .chunks(FINAL_READS_PER_TXN)
                .map(|keys| OpRequest::Txn {
                    mops: keys.iter().map(|k| Mop::Read(*k)).collect(),
                })
                .collect(),
            None => self
                .key_names()
                .into_iter()
                .map(|key| OpRequest::Read { key })
                .collect(),
        }
    }

    /// The next transaction.
    fn next_txn(&mut self) -> OpRequest {
        let t = &self.spec.txn;
        let (min, max) = (t.min_length.max(1), t.max_length.max(t.min_length.max(1)));
        let (read_fraction, max_writes) = (t.read_fraction, t.max_writes_per_key);
        let append = self.spec.workload == Workload::ListAppend;
        let len = self.rng.gen_range(min..=max);
        let Some(state) = self.txn.as_mut() else {
            return OpRequest::Txn { mops: Vec::new() };
        };
        let mut mops = Vec::with_capacity(len);
        for _ in 0..len {
            let slot = state.slot(&mut self.rng);
            if self.rng.gen_bool(read_fraction.clamp(0.0, 1.0)) {
                mops.push(Mop::Read(state.active[slot]));
            } else {
                let (key, value) = state.write(slot, max_writes);
                mops.push(if append {
                    Mop::Append(key, value)
                } else {
                    Mop::Write(key, value)
                });
            }
        }
        OpRequest::Txn { mops }
    }

    fn fresh(&mut self, k: usize) -> u64 {
        self.last[k] += 1;
        self.last[k]
    }

    /// The next operation.
    pub fn next_op(&mut self) -> OpRequest {
        if self.spec.workload.is_txn() {
            return self.next_txn();
        }
        let k = self.rng.gen_range(0..self.last.len());
        let key = match self.spec.workload {
            Workload::Kv => Some(key_name(k)),
            _ => None,
        };
        let cas_allowed = self.spec.cas && self.spec.workload != Workload::Register;
        let [r, w, c] = self.spec.mix;
        let c = if cas_allowed { c } else { 0 };
        let total = (r + w + c).max(1);
        let pick = self.rng.gen_range(0..total);
        if pick < r {
            OpRequest::Read { key }
        } else if pick < r + w || self.last[k] == 0 {
            let value = self.fresh(k);
            OpRequest::Write { key, value }
        } else {
            // Expect one of the few most recent values, so that a good share succeed.
            let last = self.last[k];
            let back = self.rng.gen_range(0..3u64).min(last - 1);
            let expected = last - back;
            let new = self.fresh(k);
            OpRequest::Cas { key, expected, new }
        }
    }
}

/// The name of key number `k`.
pub fn key_name(k: usize) -> String {
    format!("k{k}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn values(op: &OpRequest) -> Vec<u64> {
        match op {
            OpRequest::Read { .. } => vec![],
            OpRequest::Write { value, .. } => vec![*value],
            OpRequest::Cas { new, .. } => vec![*new],
            OpRequest::Txn { .. } => vec![],
        }
    }

    fn txn_spec(workload: Workload, txn: TxnSpec) -> GeneratorSpec {
        GeneratorSpec::new(workload, 1, true).with_txn(txn)
    }

    fn mops(op: OpRequest) -> Vec<Mop> {
        match op {
            OpRequest::Txn { mops } => mops,
            other => panic!("not a transaction: {other:?}"),
        }
    }

    #[test]
    fn final_reads_cover_every_key_used() {
        // A register workload reads its keys; a kv workload each of its keys.
        let kv = Generator::new(GeneratorSpec::new(Workload::Kv, 3, true), 1);
        assert_eq!(
            kv.final_reads(),
            (0..3)
                .map(|k| OpRequest::Read {
                    key: Some(key_name(k))
                })
                .collect::<Vec<_>>()
        );
        // A transactional workload reads every key it used, retired ones included, in
        // transactions of at most FINAL_READS_PER_TXN reads.
        let mut g = Generator::new(
            txn_spec(
                Workload::ListAppend,
                TxnSpec {
                    active_keys: 4,
                    max_writes_per_key: 2,
                    ..TxnSpec::default()
                },
            ),
            9,
        );
        let mut used = HashSet::new();
        for _ in 0..400 {
            used.extend(mops(g.next_op()).iter().map(Mop::key));
        }
        let finals = g.final_reads();
        let read: Vec<u64> = finals
            .iter()
            .flat_map(|op| {
                let m = mops(op.clone());
                assert!(
                    !m.is_empty() && m.len() <= FINAL_READS_PER_TXN,
                    "{}",
                    m.len()
                );
                m
            })
            .map(|m| match m {
                Mop::Read(k) => k,
                other => panic!("a final transaction only reads: {other:?}"),
            })
            .collect();
        assert!(
            finals.len() > 1,
            "hundreds of keys take several transactions"
        );
        assert!(
            used.iter().all(|k| read.contains(k)),
            "every key used is read"
        );
        let distinct: HashSet<u64> = read.iter().copied().collect();
        assert_eq!(distinct.len(), read.len(), "each key once");
    }

    #[test]
    fn transactions_are_seeded_and_within_the_length_bounds() {
        let spec = txn_spec(
            Workload::ListAppend,
            TxnSpec {
                min_length: 2,
                max_length: 5,
                ..TxnSpec::default()
            },
        );
        let run = |seed| {
            let mut g = Generator::new(spec.clone(), seed);
            (0..300).map(|_| g.next_op()).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
        let mut lengths = HashSet::new();
        for op in run(9) {
            assert_eq!((op.f(), op.key()), ("txn", None));
            let n = mops(op).len();
            assert!((2..=5).contains(&n), "{n}");
            lengths.insert(n);
        }
        assert_eq!(lengths.len(), 4, "every length from 2 to 5 occurs");
    }

    #[test]
    fn appended_and_written_values_are_unique_per_key_and_keys_retire() {
        for workload in [Workload::ListAppend, Workload::RwRegister] {
            let spec = txn_spec(
                workload,
                TxnSpec {
                    active_keys: 3,
                    max_writes_per_key: 4,
                    ..TxnSpec::default()
                },
            );
            let mut g = Generator::new(spec, 5);
            let mut seen = HashSet::new();
            let mut writes: std::collections::HashMap<u64, u64> = Default::default();
            let mut retired = HashSet::new();
            let mut active_max = 0;
            for _ in 0..2000 {
                let mut written_here = Vec::new();
                for m in mops(g.next_op()) {
                    match m {
                        Mop::Append(k, v) | Mop::Write(k, v) => {
                            assert_eq!(
                                matches!(m, Mop::Append(..)),
                                workload == Workload::ListAppend
                            );
                            assert!(seen.insert((k, v)), "value {v} written twice to key {k}");
                            assert!(!retired.contains(&k), "key {k} written after it retired");
                            let n = writes.entry(k).or_insert(0);
                            *n += 1;
                            assert!(*n <= 4, "key {k} written more than 4 times");
                            written_here.push(k);
                        }
                        Mop::Read(k) => {
                            assert!(!retired.contains(&k), "key {k} read after it retired");
                        }
                    }
                    active_max = active_max.max(m.key());
                }
                for k in written_here {
                    if writes[&k] == 4 {
                        retired.insert(k);
                    }
                }
            }
            assert!(
                retired.len() > 100,
                "keys retire and fresh ones replace them"
            );
            assert!(
                active_max as usize >= retired.len(),
                "fresh keys are new numbers"
            );
        }
    }

    #[test]
    fn the_read_fraction_and_the_key_distribution_shape_the_transactions() {
        let count = |txn: TxnSpec| {
            let mut g = Generator::new(txn_spec(Workload::RwRegister, txn), 11);
            let (mut reads, mut total) = (0usize, 0usize);
            let mut first_slot = 0usize;
            for _ in 0..4000 {
                for m in mops(g.next_op()) {
                    total += 1;
                    reads += usize::from(matches!(m, Mop::Read(_)));
                    // With no writes the pool never changes: key k is slot k.
                    first_slot += usize::from(m.key() == 0);
                }
            }
            (
                reads as f64 / total as f64,
                first_slot as f64 / total as f64,
            )
        };
        let all_reads = TxnSpec {
            read_fraction: 1.0,
            active_keys: 8,
            ..TxnSpec::default()
        };
        let (r, uniform_first) = count(all_reads.clone());
        assert_eq!(r, 1.0);
        assert!((uniform_first - 1.0 / 8.0).abs() < 0.03, "{uniform_first}");
        let (_, exp_first) = count(TxnSpec {
            key_dist: KeyDist::Exponential,
            ..all_reads
        });
        // Slot 0 holds 128/255 of the weight of 8 slots.
        assert!((exp_first - 128.0 / 255.0).abs() < 0.03, "{exp_first}");
        let (r, _) = count(TxnSpec {
            read_fraction: 0.25,
            ..TxnSpec::default()
        });
        assert!((r - 0.25).abs() < 0.03, "{r}");
        let (r, _) = count(TxnSpec {
            read_fraction: 0.0,
            ..TxnSpec::default()
        });
        assert_eq!(r, 0.0);
    }

    #[test]
    fn transactional_workloads_read_no_keys_at_the_end() {
        let g = Generator::new(txn_spec(Workload::ListAppend, TxnSpec::default()), 1);
        assert!(g.key_names().is_empty());
    }

    #[test]
    fn same_seed_same_operations() {
        let spec = GeneratorSpec::new(Workload::Kv, 5, true);
        let a: Vec<_> = {
            let mut g = Generator::new(spec.clone(), 42);
            (0..500).map(|_| g.next_op()).collect()
        };
        let mut g = Generator::new(spec.clone(), 42);
        let b: Vec<_> = (0..500).map(|_| g.next_op()).collect();
        assert_eq!(a, b);
        let mut g = Generator::new(spec, 43);
        let c: Vec<_> = (0..500).map(|_| g.next_op()).collect();
        assert_ne!(a, c, "a different seed should give a different run");
    }

    #[test]
    fn written_values_are_unique_per_key() {
        let mut g = Generator::new(GeneratorSpec::new(Workload::Kv, 3, true), 7);
        let mut seen = HashSet::new();
        for _ in 0..5000 {
            let op = g.next_op();
            for v in values(&op) {
                assert!(
                    seen.insert((op.key().map(str::to_string), v)),
                    "value {v} written twice to {:?}",
                    op.key()
                );
            }
        }
    }

    #[test]
    fn register_workload_never_issues_cas_and_has_no_key() {
        let mut g = Generator::new(GeneratorSpec::new(Workload::Register, 9, true), 1);
        for _ in 0..1000 {
            let op = g.next_op();
            assert_ne!(op.f(), "cas");
            assert_eq!(op.key(), None);
        }
    }

    #[test]
    fn mix_produces_every_kind_and_cas_expects_a_written_value() {
        let mut g = Generator::new(GeneratorSpec::new(Workload::CasRegister, 1, true), 3);
        let mut kinds = HashSet::new();
        for _ in 0..1000 {
            let op = g.next_op();
            if let OpRequest::Cas { expected, new, .. } = op {
                assert!(expected >= 1 && expected < new);
            }
            kinds.insert(op.f());
        }
        assert_eq!(kinds.len(), 3);
    }

    #[test]
    fn no_cas_when_the_target_does_not_offer_it() {
        let mut g = Generator::new(GeneratorSpec::new(Workload::Kv, 4, false), 5);
        assert!((0..1000).all(|_| g.next_op().f() != "cas"));
    }
}
