//! Gibbons–Korach zones: an O(n log n) check of read/write registers whose written values
//! are unique (notes §1.5).
//!
//! The cluster of a value is its write plus every read returning it (the initial value has
//! a virtual write at -inf). With `f` the earliest completion and `s` the latest invocation
//! in a cluster, the cluster has a *forward zone* `[f, s]` when `f < s` (the value must be
//! current throughout) and a *backward zone* `[s, f]` otherwise. The history is
//! linearizable iff no read precedes its write, no two forward zones overlap and no backward
//! zone lies inside a forward zone. Times are event indices (all distinct); `info` writes
//! complete at +inf. Cross-checked against the search in the tests.

use super::bits::FxMap;
use super::prepare::KeyHistory;
use crate::model::Action;

const NEG_INF: i128 = -1;
const POS_INF: i128 = i128::MAX;

/// One cluster's zone: `f` (earliest completion) and `s` (latest invocation), with the
/// operations (indices into the key's ops; `None` = the virtual initial write) that set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Zone {
    /// The value (interned id).
    pub value: u32,
    /// Earliest completion in the cluster.
    pub f: i128,
    /// The operation completing at `f`.
    pub f_op: Option<usize>,
    /// Latest invocation in the cluster.
    pub s: i128,
    /// The operation invoked at `s`.
    pub s_op: Option<usize>,
    /// The write of the value.
    pub write: Option<usize>,
}

impl Zone {
    /// Whether this is a forward zone (the value must be current during `[f, s]`).
    pub fn forward(&self) -> bool {
        self.f < self.s
    }
}

/// A violation found by the zones check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ZoneViolation {
    /// Read `read` completed before `write` (of the value it read) was invoked.
    ReadBeforeWrite {
        /// The read.
        read: usize,
        /// The write of its value.
        write: usize,
    },
    /// Two values had to be current at the same time.
    ForwardOverlap(Zone, Zone),
    /// A cluster fits only inside the time another value had to be current.
    BackwardInsideForward {
        /// The backward zone.
        inner: Zone,
        /// The forward zone containing it.
        outer: Zone,
    },
}

impl ZoneViolation {
    /// The anomaly's name.
    pub fn kind(&self) -> &'static str {
        match self {
            ZoneViolation::ReadBeforeWrite { .. } => "read-before-write",
            ZoneViolation::ForwardOverlap(..) => "forward-zones-overlap",
            ZoneViolation::BackwardInsideForward { .. } => "backward-zone-in-forward-zone",
        }
    }

    /// The operations involved (indices into the key's ops), ascending, deduplicated.
    pub fn ops(&self) -> Vec<usize> {
        let mut v: Vec<usize> = match self {
            ZoneViolation::ReadBeforeWrite { read, write } => vec![*read, *write],
            ZoneViolation::ForwardOverlap(a, b)
            | ZoneViolation::BackwardInsideForward { inner: a, outer: b } => [a, b]
                .iter()
                .flat_map(|z| [z.f_op, z.s_op, z.write])
                .flatten()
                .collect(),
        };
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Checks a key for which [`KeyHistory::zones_apply`] holds.
pub(crate) fn check_zones(h: &KeyHistory) -> Result<(), Box<ZoneViolation>> {
    let mut zones: Vec<Zone> = Vec::new();
    let mut of_value: FxMap<u32, usize> = FxMap::default();
    zones.push(Zone {
        value: h.initial,
        f: NEG_INF,
        f_op: None,
        s: NEG_INF,
        s_op: None,
        write: None,
    });
    of_value.insert(h.initial, 0);
    // Writes first: each value has exactly one (zones_apply guarantees it).
    for (i, op) in h.ops.iter().enumerate() {
        if let Action::Write(v) = op.action {
            of_value.insert(v, zones.len());
            let f = if op.info {
                POS_INF
            } else {
                i128::from(op.complete)
            };
            zones.push(Zone {
                value: v,
                f,
                f_op: Some(i),
                s: i128::from(op.invoke),
                s_op: Some(i),
                write: Some(i),
            });
        }
    }
    for (i, op) in h.ops.iter().enumerate() {
        let Action::Read(v) = op.action else { continue };
        // A read of a value never written is caught before (thin air); skip defensively.
        let Some(&z) = of_value.get(&v) else { continue };
        let zone = &mut zones[z];
        if let Some(w) = zone.write {
            if op.complete < h.ops[w].invoke {
                return Err(Box::new(ZoneViolation::ReadBeforeWrite {
                    read: i,
                    write: w,
                }));
            }
        }
        let c = i128::from(op.complete);
        if c < zone.f {
            zone.f = c;
            zone.f_op = Some(i);
        }
        let s = i128::from(op.invoke);
        if s > zone.s {
            zone.s = s;
            zone.s_op = Some(i);
        }
    }
    let mut forward: Vec<Zone> = zones.iter().filter(|z| z.forward()).copied().collect();
    forward.sort_unstable_by_key(|z| z.f);
    for pair in forward.windows(2) {
        if pair[1].f < pair[0].s {
            return Err(Box::new(ZoneViolation::ForwardOverlap(pair[0], pair[1])));
        }
    }
    for z in zones.iter().filter(|z| !z.forward()) {
        // The forward zone with the greatest f below s(z) is the only candidate container.
        let pos = forward.partition_point(|a| a.f < z.s);
        if pos == 0 {
            continue;
        }
        let outer = forward[pos - 1];
        if z.f < outer.s {
            return Err(Box::new(ZoneViolation::BackwardInsideForward {
                inner: *z,
                outer,
            }));
        }
    }
    Ok(())
}
