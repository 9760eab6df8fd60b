//! The workload generator: pure and seeded.
//!
//! It decides what each process does next (read, write or compare-and-set, on which key,
//! with which value); the workers only carry it out. Written values are unique per key
//! (a counter per key), so the fast checkers (zones, causal bad patterns) apply.

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
}

impl FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "register" => Ok(Workload::Register),
            "cas-register" => Ok(Workload::CasRegister),
            "kv" => Ok(Workload::Kv),
            other => Err(format!(
                "unknown workload {other:?}: expected register, cas-register or kv"
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
}

impl OpRequest {
    /// The history's `f` of this operation.
    pub fn f(&self) -> &'static str {
        match self {
            OpRequest::Read { .. } => "read",
            OpRequest::Write { .. } => "write",
            OpRequest::Cas { .. } => "cas",
        }
    }

    /// The key.
    pub fn key(&self) -> Option<&str> {
        match self {
            OpRequest::Read { key } | OpRequest::Write { key, .. } | OpRequest::Cas { key, .. } => {
                key.as_deref()
            }
        }
    }

    /// The invoke's value in the history (`null`, the value, or `[expected, new]`).
    pub fn argument(&self) -> serde_json::Value {
        match self {
            OpRequest::Read { .. } => serde_json::Value::Null,
            OpRequest::Write { value, .. } => serde_json::json!(value),
            OpRequest::Cas { expected, new, .. } => serde_json::json!([expected, new]),
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
}

impl GeneratorSpec {
    /// The default mix: half reads, a quarter writes, a quarter cas (when offered).
    pub fn new(workload: Workload, keys: usize, cas: bool) -> Self {
        GeneratorSpec {
            workload,
            keys: keys.max(1),
            cas,
            mix: [2, 1, 1],
        }
    }
}

/// Seeded generator of operations.
#[derive(Debug, Clone)]
pub struct Generator {
    spec: GeneratorSpec,
    rng: ChaCha8Rng,
    /// Per key: the last value generated (values count up from 1).
    last: Vec<u64>,
}

impl Generator {
    /// A generator with this seed.
    pub fn new(spec: GeneratorSpec, seed: u64) -> Self {
        let keys = match spec.workload {
            Workload::Kv => spec.keys,
            _ => 1,
        };
        Generator {
            spec,
            rng: ChaCha8Rng::seed_from_u64(seed),
            last: vec![0; keys],
        }
    }

    /// The names of the keys (`None` for a single register).
    pub fn key_names(&self) -> Vec<Option<String>> {
        match self.spec.workload {
            Workload::Kv => (0..self.last.len()).map(|k| Some(key_name(k))).collect(),
            _ => vec![None],
        }
    }

    fn fresh(&mut self, k: usize) -> u64 {
        self.last[k] += 1;
        self.last[k]
    }

    /// The next operation.
    pub fn next_op(&mut self) -> OpRequest {
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
        }
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
