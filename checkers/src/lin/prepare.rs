//! Turning one key's operations into what the search and the zones check consume.
//!
//! Preprocessing (notes §1.4), all sound and complete for the models here:
//! - a `fail` observes nothing and is dropped, except a failed cas whose error is
//!   `"mismatch"`: it becomes an observation that the value differed from `expected`;
//! - `info` reads are dropped (they observe nothing), and so are `ok` reads of `null` when
//!   the caller asked for Knossos's semantics;
//! - an `info` write (or `info` cas) whose new value nobody observes is dropped, when no
//!   failed compare could be linearized after it: append it at the very end of any
//!   linearization of the rest; conversely, in a linearization containing it nothing between
//!   it and the next write looks at its value, so removing it keeps every operation legal;
//! - `info` operations stay pending forever (complete at +inf);
//! - `null` (as read, written or expected) denotes the key's initial state, whatever the
//!   initial value is called (`--initial`): it is interned as that value.

use super::bits::FxSet;
use crate::model::{Action, DataModel, Func, KeyModel, Values};
use faultline_history::{same_value, show, Operation, Outcome, Value};

/// An operation as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SOp {
    /// What it does.
    pub action: Action,
    /// Whether its outcome is unknown (it never returns).
    pub info: bool,
    /// Event index of the invoke.
    pub invoke: u64,
    /// Event index of the completion; `u64::MAX` for `info`.
    pub complete: u64,
    /// Index into the caller's operations.
    pub orig: usize,
}

/// One key's operations, ready to check.
#[derive(Debug, Clone)]
pub(crate) struct KeyHistory {
    /// Operations in invoke order.
    pub ops: Vec<SOp>,
    /// The model with the key's values interned.
    pub model: KeyModel,
    /// The initial state.
    pub initial: u32,
}

impl KeyHistory {
    /// The same key restricted to some of its operations (indices into `ops`, ascending).
    pub fn subset(&self, keep: &[usize]) -> KeyHistory {
        KeyHistory {
            ops: keep
                .iter()
                .filter_map(|&i| self.ops.get(i).copied())
                .collect(),
            model: self.model.clone(),
            initial: self.initial,
        }
    }

    /// Whether the Gibbons–Korach zones check applies: only reads and writes, every written
    /// value distinct and different from the initial value.
    pub fn zones_apply(&self) -> bool {
        let mut written: FxSet<u32> = FxSet::default();
        written.insert(self.initial);
        self.ops.iter().all(|op| match op.action {
            Action::Read(_) => true,
            Action::Write(v) => written.insert(v),
            _ => false,
        })
    }

    /// Whether any operation appends.
    pub fn has_append(&self) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op.action, Action::Append(_)))
    }
}

/// Counts from preprocessing one key.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PrepStats {
    /// Of them, `info` (including never completed).
    pub info_ops: usize,
    /// `info` operations dropped because they cannot matter.
    pub pruned_info: usize,
    /// `fail` operations dropped.
    pub dropped_fail: usize,
    /// `ok` reads of `null` dropped (Knossos's semantics).
    pub dropped_nil_reads: usize,
}

/// A read of a value no operation wrote, found before any search.
#[derive(Debug, Clone)]
pub(crate) struct ThinAir {
    /// The reading (or comparing) operation, index into the caller's operations.
    pub reader: usize,
    /// A failed write of that value, if one exists (an aborted read).
    pub failed_writer: Option<usize>,
    /// The value.
    pub value: Value,
}

/// The result of preprocessing one key.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// Ready to check.
    Ready(KeyHistory),
    /// A structural violation found directly.
    ThinAir(ThinAir),
    /// The model cannot interpret an operation.
    Unsupported(String),
}

/// A value as it sits in an operation, without copying it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Raw<'a> {
    /// `null`.
    Null,
    /// An integer (the common case).
    Int(i64),
    /// Anything else.
    Other(&'a Value),
}

impl<'a> Raw<'a> {
    fn of(v: &'a Value) -> Raw<'a> {
        match v {
            Value::Null => Raw::Null,
            Value::Number(n) => n.as_i64().map_or(Raw::Other(v), Raw::Int),
            other => Raw::Other(other),
        }
    }

    fn to_value(self) -> Value {
        match self {
            Raw::Null => Value::Null,
            Raw::Int(i) => Value::from(i),
            Raw::Other(v) => v.clone(),
        }
    }

    /// The value's id; `null` denotes the key's initial state, whose id is `init`.
    fn intern(self, values: &mut Values, init: u32) -> u32 {
        match self {
            Raw::Null => init,
            Raw::Int(i) => values.intern_int(i),
            Raw::Other(v) => values.intern(v),
        }
    }
}

/// What the checker needs of one operation, compact and copied out of the history in one
/// sequential pass (the per-key passes then never touch the large `Operation`s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawOp<'a> {
    /// Index into the history's operations.
    pub orig: usize,
    /// The function, if a model knows it.
    pub func: Option<Func>,
    /// How it ended.
    pub outcome: Outcome,
    /// A `fail` with error `"mismatch"`.
    pub mismatch: bool,
    /// Event index of the invoke.
    pub invoke: u64,
    /// Event index of the completion; `u64::MAX` for `info`.
    pub complete: u64,
    /// Read: the result; write, append: the argument; cas: the expected value.
    pub a: Raw<'a>,
    /// Cas: the new value; `None` when the cas argument is not a pair.
    pub b: Option<Raw<'a>>,
}

impl<'a> RawOp<'a> {
    /// The compact form of `ops[orig]`.
    pub fn of(orig: usize, op: &'a Operation) -> RawOp<'a> {
        let func = Func::parse(&op.f);
        let (a, b) = match func {
            Some(Func::Read) => (Raw::of(&op.result), None),
            Some(Func::Cas) => match op.argument.as_array().map(Vec::as_slice) {
                Some([e, n]) => (Raw::of(e), Some(Raw::of(n))),
                _ => (Raw::Null, None),
            },
            _ => (Raw::of(&op.argument), None),
        };
        RawOp {
            orig,
            func,
            outcome: op.outcome,
            mismatch: op.outcome == Outcome::Fail && op.error.as_deref() == Some("mismatch"),
            invoke: op.invoke_index,
            complete: match op.outcome {
                Outcome::Info => u64::MAX,
                _ => op.complete_index.unwrap_or(u64::MAX),
            },
            a,
            b,
        }
    }
}

/// Preprocesses the operations of one key (in invoke order); `ops` is the whole history,
/// for messages.
pub(crate) fn prepare(
    raw: &[RawOp],
    ops: &[Operation],
    model: DataModel,
    initial: &Value,
    nil_reads_unknown: bool,
) -> (Prepared, PrepStats) {
    let mut stats = PrepStats::default();
    let mut values = Values::new();
    let init = values.intern(initial);
    let mut out: Vec<SOp> = Vec::with_capacity(raw.len());
    let mut failed_writes: Vec<(Value, usize)> = Vec::new();
    let describe = |i: usize| {
        ops.get(i)
            .map(|o| format!("operation {}: {}", o.id, o.describe()))
            .unwrap_or_default()
    };
    for r in raw {
        if r.outcome == Outcome::Info {
            stats.info_ops += 1;
        }
        let func = match r.func {
            Some(f) if model.allows(f) => f,
            _ => {
                let f = ops.get(r.orig).map(|o| o.f.as_str()).unwrap_or_default();
                return (
                    Prepared::Unsupported(format!(
                        "the {model} model has no operation \"{f}\" ({})",
                        describe(r.orig)
                    )),
                    stats,
                );
            }
        };
        let action = match (func, r.outcome) {
            (Func::Read, Outcome::Ok) => {
                if matches!(r.a, Raw::Null) && nil_reads_unknown {
                    stats.dropped_nil_reads += 1;
                    continue;
                }
                Action::Read(r.a.intern(&mut values, init))
            }
            (Func::Read, Outcome::Info) => {
                stats.pruned_info += 1;
                continue;
            }
            (Func::Cas, outcome) => {
                let Some(new) = r.b else {
                    let arg = ops
                        .get(r.orig)
                        .map(|o| show(&o.argument))
                        .unwrap_or_default();
                    return (
                        Prepared::Unsupported(format!(
                            "cas argument must be [expected, new], got {arg} ({})",
                            describe(r.orig)
                        )),
                        stats,
                    );
                };
                match outcome {
                    Outcome::Fail if r.mismatch => {
                        Action::CasMismatch(r.a.intern(&mut values, init))
                    }
                    Outcome::Fail => {
                        stats.dropped_fail += 1;
                        continue;
                    }
                    _ => Action::Cas {
                        expect: r.a.intern(&mut values, init),
                        new: new.intern(&mut values, init),
                    },
                }
            }
            (_, Outcome::Fail) => {
                stats.dropped_fail += 1;
                if func == Func::Write {
                    failed_writes.push((r.a.to_value(), r.orig));
                }
                continue;
            }
            (Func::Write, _) => Action::Write(r.a.intern(&mut values, init)),
            (Func::Append, _) => {
                if !matches!(r.a, Raw::Other(Value::String(_))) {
                    return (
                        Prepared::Unsupported(format!(
                            "append argument must be a string ({})",
                            describe(r.orig)
                        )),
                        stats,
                    );
                }
                Action::Append(r.a.intern(&mut values, init))
            }
        };
        out.push(SOp {
            action,
            info: r.outcome == Outcome::Info,
            invoke: r.invoke,
            complete: r.complete,
            orig: r.orig,
        });
    }
    let appends = out.iter().any(|o| matches!(o.action, Action::Append(_)));
    if !appends {
        if let Some(t) = thin_air(&out, init, &values, &failed_writes) {
            return (Prepared::ThinAir(t), stats);
        }
        let before = out.len();
        prune_unobserved_info(&mut out);
        stats.pruned_info += before - out.len();
    }
    let h = KeyHistory {
        ops: out,
        model: KeyModel::new(values),
        initial: init,
    };
    (Prepared::Ready(h), stats)
}

/// The first `ok` read (or compare) of a value that nothing writes.
fn thin_air(
    ops: &[SOp],
    init: u32,
    values: &Values,
    failed_writes: &[(Value, usize)],
) -> Option<ThinAir> {
    let mut written: FxSet<u32> = FxSet::default();
    written.insert(init);
    for op in ops {
        match op.action {
            Action::Write(v) | Action::Cas { new: v, .. } => {
                written.insert(v);
            }
            _ => {}
        }
    }
    ops.iter().find_map(|op| {
        let v = match op.action {
            Action::Read(v) => v,
            Action::Cas { expect, .. } if !op.info => expect,
            _ => return None,
        };
        if written.contains(&v) {
            return None;
        }
        let value = values.value(v).clone();
        let failed_writer = failed_writes
            .iter()
            .find(|(fv, _)| same_value(fv, &value))
            .map(|&(_, i)| i);
        Some(ThinAir {
            reader: op.orig,
            failed_writer,
            value,
        })
    })
}

/// Drops `info` writes and cas whose new value is never observed (see the module docs).
fn prune_unobserved_info(ops: &mut Vec<SOp>) {
    let mut observed: FxSet<u32> = FxSet::default();
    let mut last_mismatch_complete: Option<u64> = None;
    for op in ops.iter() {
        match op.action {
            Action::Read(v) | Action::Cas { expect: v, .. } => {
                observed.insert(v);
            }
            Action::CasMismatch(_) => {
                last_mismatch_complete = last_mismatch_complete.max(Some(op.complete));
            }
            _ => {}
        }
    }
    ops.retain(|op| {
        if !op.info {
            return true;
        }
        let v = match op.action {
            Action::Write(v) | Action::Cas { new: v, .. } => v,
            _ => return true,
        };
        let mismatch_after = last_mismatch_complete.is_some_and(|c| c > op.invoke);
        observed.contains(&v) || mismatch_after
    });
}
