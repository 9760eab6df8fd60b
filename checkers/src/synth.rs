//! Seeded synthetic register and kv histories, linearizable by construction.
//!
//! The generator simulates `processes` clients against real registers (one per key). Each
//! client runs one operation at a time: it thinks for a random while, invokes an operation,
//! and completes it after a random duration. Every operation takes effect at a random point
//! strictly inside its interval; replaying the effects in that order on a real register
//! gives every read its result and every compare-and-set its outcome, so the effect order is
//! a linearization that respects real time. A failed compare is recorded as `fail` with
//! error `"mismatch"`.
//!
//! Chosen operations are `info` (error `"timeout"`): each takes effect with probability ½
//! (at its effect point) or never, and its client continues under a fresh process id, as a
//! Jepsen worker does. Exactly `round(info_rate × ops)` operations are `info`.
//!
//! Values are unique per key (a counter) or, with `unique_values: false`, drawn from 0..5.
//! [`Violation::StaleRead`] then makes one `ok` read return a value that was overwritten
//! before the read began (its write completed before an overwriting write was invoked,
//! which completed before the read was invoked); with unique values that is never
//! linearizable. Everything is determined by `seed` (ChaCha8).

use faultline_history::{Event, EventType, Key, Process, Value};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use thiserror::Error;

/// A violation to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// One `ok` read returns a value overwritten before it began.
    StaleRead,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Client operations in total.
    pub ops: usize,
    /// Keys; with 1 the history is a single register and events carry no key.
    pub keys: usize,
    /// Concurrent clients.
    pub processes: usize,
    /// Fraction of operations whose outcome is unknown (`info`).
    pub info_rate: f64,
    /// Fraction of operations that are reads.
    pub read_rate: f64,
    /// Whether to issue compare-and-set operations (a quarter of the non-reads).
    pub cas: bool,
    /// Unique written values per key (otherwise values 0..5).
    pub unique_values: bool,
    /// A violation to inject, if any.
    pub violation: Option<Violation>,
    /// Seed of all randomness.
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            ops: 1000,
            keys: 1,
            processes: 5,
            info_rate: 0.0,
            read_rate: 0.5,
            cas: false,
            unique_values: true,
            violation: None,
            seed: 0,
        }
    }
}

/// Why a history could not be generated.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SynthError {
    /// The configuration makes no sense.
    #[error("invalid synthetic history configuration: {0}")]
    Config(String),
    /// No read qualified for the requested violation.
    #[error(
        "no read in this history can be made stale (seed {0}); use more operations or fewer keys"
    )]
    NoViolationSite(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write(i64),
    Cas(i64, i64),
}

#[derive(Debug, Clone)]
struct SimOp {
    process: u64,
    key: usize,
    kind: Kind,
    invoke: u64,
    effect: u64,
    complete: u64,
    info: bool,
    takes_effect: bool,
    // Filled by the replay.
    read: Value,
    cas_ok: bool,
}

const THINK_NS: u64 = 2_000_000;
const MIN_NS: u64 = 500_000;
const MAX_NS: u64 = 5_000_000;

fn value(v: i64) -> Value {
    Value::from(v)
}

/// Generates a history (events in index order) as `cfg` says.
pub fn generate(cfg: &SynthConfig) -> Result<Vec<Event>, SynthError> {
    if cfg.processes == 0 || cfg.keys == 0 {
        return Err(SynthError::Config(
            "processes and keys must be at least 1".into(),
        ));
    }
    if !(0.0..=1.0).contains(&cfg.info_rate) || !(0.0..=1.0).contains(&cfg.read_rate) {
        return Err(SynthError::Config("rates must be between 0 and 1".into()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let n_info = ((cfg.info_rate * cfg.ops as f64).round() as usize).min(cfg.ops);
    let info_set: HashSet<usize> = sample(&mut rng, cfg.ops, n_info).into_iter().collect();
    let mut ops = schedule(cfg, &info_set, &mut rng);
    replay(&mut ops, cfg.keys);
    if cfg.violation == Some(Violation::StaleRead) {
        inject_stale_read(&mut ops, cfg)?;
    }
    Ok(events(&ops, cfg.keys))
}

/// Issues the operations: who, what, when.
fn schedule(cfg: &SynthConfig, info_set: &HashSet<usize>, rng: &mut ChaCha8Rng) -> Vec<SimOp> {
    let mut ops = Vec::with_capacity(cfg.ops);
    // (free at, client slot)
    let mut heap: BinaryHeap<Reverse<(u64, usize)>> = (0..cfg.processes)
        .map(|s| Reverse((rng.gen_range(0..THINK_NS), s)))
        .collect();
    let mut pid: Vec<u64> = (0..cfg.processes as u64).collect();
    let mut next_pid = cfg.processes as u64;
    let mut next_value = vec![0i64; cfg.keys];
    let mut last_value = vec![0i64; cfg.keys];
    while ops.len() < cfg.ops {
        let Some(Reverse((t, slot))) = heap.pop() else {
            break;
        };
        let key = rng.gen_range(0..cfg.keys);
        let mut fresh = |rng: &mut ChaCha8Rng| {
            if cfg.unique_values {
                next_value[key] += 1;
                next_value[key]
            } else {
                rng.gen_range(0..5)
            }
        };
        let r: f64 = rng.gen();
        let kind = if r < cfg.read_rate {
            Kind::Read
        } else if cfg.cas && rng.gen_bool(0.25) {
            let expect = if rng.gen_bool(0.7) {
                last_value[key]
            } else {
                rng.gen_range(0..5)
            };
            Kind::Cas(expect, fresh(rng))
        } else {
            Kind::Write(fresh(rng))
        };
        if let Kind::Write(v) | Kind::Cas(_, v) = kind {
            last_value[key] = v;
        }
        let dur = rng.gen_range(MIN_NS..MAX_NS);
        let effect = t + rng.gen_range(1..dur);
        let info = info_set.contains(&ops.len());
        let takes_effect = !info || rng.gen_bool(0.5);
        ops.push(SimOp {
            process: pid[slot],
            key,
            kind,
            invoke: t,
            effect,
            complete: t + dur,
            info,
            takes_effect,
            read: Value::Null,
            cas_ok: false,
        });
        if info {
            pid[slot] = next_pid;
            next_pid += 1;
        }
        heap.push(Reverse((t + dur + rng.gen_range(1..THINK_NS), slot)));
    }
    ops
}

/// Applies the effects in effect order to real registers (all start never written).
fn replay(ops: &mut [SimOp], keys: usize) {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_unstable_by_key(|&i| ops[i].effect);
    let mut state: Vec<Option<i64>> = vec![None; keys];
    for i in order {
        let op = &mut ops[i];
        if !op.takes_effect {
            continue;
        }
        let cur = &mut state[op.key];
        match op.kind {
            Kind::Read => op.read = cur.map(value).unwrap_or(Value::Null),
            Kind::Write(v) => *cur = Some(v),
            Kind::Cas(e, n) => {
                op.cas_ok = *cur == Some(e);
                if op.cas_ok {
                    *cur = Some(n);
                }
            }
        }
    }
}

/// Makes one `ok` read, near the middle, return an overwritten value.
fn inject_stale_read(ops: &mut [SimOp], cfg: &SynthConfig) -> Result<(), SynthError> {
    // Effective writes per key: (invoke, complete, value).
    let mut writes: Vec<Vec<(u64, u64, i64)>> = vec![Vec::new(); cfg.keys];
    for op in ops.iter() {
        match op.kind {
            Kind::Write(v) if !op.info => writes[op.key].push((op.invoke, op.complete, v)),
            Kind::Cas(_, v) if !op.info && op.cas_ok => {
                writes[op.key].push((op.invoke, op.complete, v))
            }
            _ => {}
        }
    }
    let mid = ops.len() / 2;
    let order = (mid..ops.len()).chain((0..mid).rev());
    for i in order {
        let r = &ops[i];
        if r.kind != Kind::Read || r.info {
            continue;
        }
        let ws = &writes[r.key];
        // w: the write completing last before the read began.
        let Some(w) = ws.iter().filter(|w| w.1 < r.invoke).max_by_key(|w| w.1) else {
            continue;
        };
        // w_old: a write completed before w began, of a value written only once.
        let old = ws
            .iter()
            .filter(|o| o.1 < w.0 && value(o.2) != r.read)
            .filter(|o| cfg.unique_values || ws.iter().filter(|x| x.2 == o.2).count() == 1)
            .max_by_key(|o| o.1);
        if let Some(o) = old {
            if !cfg.unique_values && ops.iter().any(|x| x.key == r.key && x.info) {
                // An info write of the same small value could explain it; keep looking.
                continue;
            }
            let v = o.2;
            ops[i].read = value(v);
            return Ok(());
        }
    }
    Err(SynthError::NoViolationSite(cfg.seed))
}

/// The events of the operations, in time order, indexed from 0.
fn events(ops: &[SimOp], keys: usize) -> Vec<Event> {
    // (time, tie-break: completions before invokes at equal times, op, is completion)
    let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        order.push((op.invoke, true, i));
        order.push((op.complete, false, i));
    }
    order.sort_unstable();
    let key = |k: usize| (keys > 1).then(|| Key(format!("k{k}")));
    let mut out = Vec::with_capacity(order.len());
    for (index, (time, is_invoke, i)) in order.into_iter().enumerate() {
        let op = &ops[i];
        let (f, arg) = match op.kind {
            Kind::Read => ("read", Value::Null),
            Kind::Write(v) => ("write", value(v)),
            Kind::Cas(e, n) => ("cas", Value::from(vec![e, n])),
        };
        let (kind, val, error) = if is_invoke {
            (EventType::Invoke, arg, None)
        } else if op.info {
            (EventType::Info, arg, Some("timeout".to_string()))
        } else {
            match op.kind {
                Kind::Read => (EventType::Ok, op.read.clone(), None),
                Kind::Cas(..) if !op.cas_ok => (EventType::Fail, arg, Some("mismatch".into())),
                _ => (EventType::Ok, arg, None),
            }
        };
        out.push(Event {
            index: index as u64,
            time,
            process: Process::Client(op.process),
            kind,
            f: f.to_string(),
            key: key(op.key),
            value: val,
            node: None,
            error,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let cfg = SynthConfig {
            ops: 200,
            keys: 3,
            info_rate: 0.05,
            cas: true,
            seed: 7,
            ..SynthConfig::default()
        };
        let a = generate(&cfg).expect("generates");
        let b = generate(&cfg).expect("generates");
        assert_eq!(a, b);
        assert_eq!(a.len(), 400);
        let infos = a.iter().filter(|e| e.kind == EventType::Info).count();
        assert_eq!(infos, 10, "exactly round(0.05 * 200) info ops");
        let c = generate(&SynthConfig { seed: 8, ..cfg }).expect("generates");
        assert_ne!(a, c);
    }

    #[test]
    fn pairs_cleanly() {
        let cfg = SynthConfig {
            ops: 500,
            processes: 7,
            info_rate: 0.1,
            seed: 3,
            ..SynthConfig::default()
        };
        let ev = generate(&cfg).expect("generates");
        let paired = faultline_history::pair(&ev, "synth").expect("pairs");
        assert_eq!(paired.ops.len(), 500);
    }
}
