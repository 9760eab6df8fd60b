//! Transactions from a paired history: micro-operations with interned keys and values.
//!
//! An operation with `f: "txn"` carries a list of micro-operations: `["append", k, v]`,
//! `["r", k, v]` and `["w", k, v]` (the names may also be EDN keywords, imported as
//! `{"#keyword":"append"}`, or `"read"` / `"write"`). The invoke gives the arguments
//! (reads `null`); an `ok` completion gives the same list with each read's result. A
//! `fail` transaction did not commit and observed nothing; an `info` one may or may not
//! have committed and its reads are unknown.

use faultline_history::value::{tagged, TAG_KEYWORD};
use faultline_history::{Operation, Outcome, Paired, Value, ValueKey};
use rustc_hash::FxHashMap;
use std::fmt;

/// The id of a value that stands for the key's initial state (a register read of `null`).
pub(crate) const INIT: u32 = u32::MAX;
/// No value, no transaction, no position.
pub(crate) const NONE: u32 = u32::MAX;

/// Why a history cannot be checked as transactions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnInputError {
    /// A transaction's value is not a list of micro-operations.
    #[error("operation {op} (process {process}, invoked at event {index}): {message}")]
    Malformed {
        /// The operation's id.
        op: usize,
        /// Its process.
        process: u64,
        /// Its invoke's index.
        index: u64,
        /// What is wrong.
        message: String,
    },
    /// The history mixes appends and register writes.
    #[error("the history mixes list appends and register writes; check one workload at a time")]
    Mixed,
    /// The history has client operations other than transactions.
    #[error("operation {op} has f = {f:?}; a transactional history has only f = \"txn\"")]
    NotTxn {
        /// The operation's id.
        op: usize,
        /// Its function.
        f: String,
    },
    /// A value is appended (or written) more than once to a key, so reads cannot be
    /// attributed to one writer.
    #[error("{what} {value} to key {key} more than once (operations {first} and {second}); the checker needs every written value unique per key")]
    NotUnique {
        /// `appended` or `wrote`.
        what: &'static str,
        /// The key, shown.
        key: String,
        /// The value, shown.
        value: String,
        /// The first operation.
        first: usize,
        /// The second operation.
        second: usize,
    },
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Committed.
    Ok,
    /// Maybe committed.
    Info,
    /// Aborted.
    Fail,
}

/// What a read observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Obs {
    /// Not known (an `info` or `fail` transaction, or an invoke).
    Unknown,
    /// A list (list-append); `null` reads as the empty list.
    List(Box<[u32]>),
    /// A register's value; [`INIT`] for `null`, the initial state.
    Value(u32),
}

/// One micro-operation, keys and values interned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mop {
    /// Append `val` to the list at `key`.
    Append { key: u32, val: u32 },
    /// Write `val` to the register `key`.
    Write { key: u32, val: u32 },
    /// Read `key`.
    Read { key: u32, obs: Obs },
}

/// One transaction.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    /// Index of the operation in `Paired::ops`.
    pub op: usize,
    pub process: u64,
    pub status: Status,
    pub invoke: u64,
    /// Completion index; `None` for an `info` transaction (it may take effect at any
    /// time after its invoke).
    pub complete: Option<u64>,
    pub mops: Vec<Mop>,
}

/// The workload a history belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Appends to lists and reads of whole lists.
    ListAppend,
    /// Writes and reads of registers.
    RwRegister,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
        })
    }
}

/// Interns values by their canonical form ([`ValueKey`]), small integers fast.
#[derive(Default)]
pub(crate) struct Interner {
    /// Ids of the integers 0..SMALL (+1; 0 = none yet).
    small: Vec<u32>,
    ints: FxHashMap<i64, u32>,
    others: FxHashMap<ValueKey, u32>,
    shown: Vec<Value>,
}

impl Interner {
    pub(crate) fn id(&mut self, v: &Value) -> u32 {
        if let Value::Number(n) = v {
            if let Some(i) = n.as_i64() {
                return self.id_int(i);
            }
        }
        let next = self.shown.len() as u32;
        let id = *self.others.entry(ValueKey::of(v)).or_insert(next);
        if id == next {
            self.shown.push(v.clone());
        }
        id
    }

    /// The id of an integer.
    #[inline]
    pub(crate) fn id_int(&mut self, i: i64) -> u32 {
        const SMALL: i64 = 1 << 16;
        if (0..SMALL).contains(&i) {
            let i = i as usize;
            if i >= self.small.len() {
                self.small.resize((i + 1).next_power_of_two(), 0);
            }
            if self.small[i] == 0 {
                let id = self.id_int_slow(i as i64);
                self.small[i] = id + 1;
            }
            return self.small[i] - 1;
        }
        self.id_int_slow(i)
    }

    fn id_int_slow(&mut self, i: i64) -> u32 {
        let next = self.shown.len() as u32;
        let id = *self.ints.entry(i).or_insert(next);
        if id == next {
            self.shown.push(Value::from(i));
        }
        id
    }

    /// The id of a string.
    pub(crate) fn id_str(&mut self, s: &str) -> u32 {
        let next = self.shown.len() as u32;
        let id = *self.others.entry(ValueKey::Str(s.into())).or_insert(next);
        if id == next {
            self.shown.push(Value::from(s));
        }
        id
    }

    /// How many distinct values.
    pub(crate) fn len(&self) -> usize {
        self.shown.len()
    }

    /// The value of an id, as first seen.
    pub(crate) fn value(&self, id: u32) -> &Value {
        static NULL: Value = Value::Null;
        self.shown.get(id as usize).unwrap_or(&NULL)
    }
}

/// A transactional history ready for analysis.
pub(crate) struct TxnHistory {
    pub workload: Workload,
    pub txns: Vec<Txn>,
    pub keys: Interner,
    pub values: Interner,
    pub key_count: usize,
}

impl TxnHistory {
    /// A key as text.
    pub(crate) fn key_text(&self, k: u32) -> String {
        faultline_history::show(self.keys.value(k))
    }
    /// A value as text (`nothing` for the initial state).
    pub(crate) fn val_text(&self, v: u32) -> String {
        if v == INIT {
            return "the initial value".into();
        }
        faultline_history::show(self.values.value(v))
    }
}

/// Whether `paired` is a transactional history: it has client operations and every one
/// has `f = "txn"`.
pub fn is_txn_history(paired: &Paired) -> bool {
    !paired.ops.is_empty() && paired.ops.iter().all(|o| o.f == "txn")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Append,
    Read,
    Write,
}

fn kind_of(f: &Value) -> Option<Kind> {
    let name = match f {
        Value::String(s) => s.as_str(),
        other => match tagged(other) {
            Some((TAG_KEYWORD, Value::String(s))) => s.as_str(),
            _ => return None,
        },
    };
    match name {
        "append" => Some(Kind::Append),
        "r" | "read" => Some(Kind::Read),
        "w" | "write" => Some(Kind::Write),
        _ => None,
    }
}

fn mops_of(v: &Value) -> Option<&[Value]> {
    v.as_array().map(Vec::as_slice)
}

/// Splits one micro-operation `[f, k, v]` (or `[f, k]` for a read).
fn split(m: &Value) -> Result<(Kind, &Value, &Value), String> {
    static NULL: Value = Value::Null;
    let parts = m.as_array().ok_or_else(|| {
        format!(
            "expected a micro-operation [f, key, value], found {}",
            faultline_history::show(m)
        )
    })?;
    let (f, k, v) = match parts.as_slice() {
        [f, k, v] => (f, k, v),
        [f, k] => (f, k, &NULL),
        _ => {
            return Err(format!(
                "expected a micro-operation [f, key, value], found {}",
                faultline_history::show(m)
            ))
        }
    };
    let kind = kind_of(f).ok_or_else(|| {
        format!(
            "unknown micro-operation {} (expected append, r or w)",
            faultline_history::show(f)
        )
    })?;
    Ok((kind, k, v))
}

/// Parses every transaction of `paired`.
pub(crate) fn parse(paired: &Paired) -> Result<TxnHistory, TxnInputError> {
    let malformed = |op: &Operation, message: String| TxnInputError::Malformed {
        op: op.id,
        process: op.process,
        index: op.invoke_index,
        message,
    };
    // The workload first: appends or writes anywhere, else the shape of the reads.
    let (mut appends, mut writes, mut list_reads) = (false, false, false);
    for op in &paired.ops {
        if op.f != "txn" {
            return Err(TxnInputError::NotTxn {
                op: op.id,
                f: op.f.clone(),
            });
        }
        for v in [&op.argument, &op.result] {
            for m in mops_of(v).unwrap_or(&[]) {
                if let Ok((kind, _, val)) = split(m) {
                    match kind {
                        Kind::Append => appends = true,
                        Kind::Write => writes = true,
                        Kind::Read => list_reads |= val.is_array(),
                    }
                }
            }
        }
    }
    if appends && writes {
        return Err(TxnInputError::Mixed);
    }
    let workload = if appends || (!writes && list_reads) {
        Workload::ListAppend
    } else {
        Workload::RwRegister
    };
    let mut keys = Interner::default();
    let mut values = Interner::default();
    let mut txns = Vec::with_capacity(paired.ops.len());
    for op in &paired.ops {
        let status = match op.outcome {
            Outcome::Ok => Status::Ok,
            Outcome::Info => Status::Info,
            Outcome::Fail => Status::Fail,
        };
        let invoked = mops_of(&op.argument).ok_or_else(|| {
            malformed(
                op,
                format!(
                    "expected a list of micro-operations as the invoke's value, found {}",
                    faultline_history::show(&op.argument)
                ),
            )
        })?;
        let completed = match (status, &op.result) {
            (Status::Ok, Value::Array(items)) => {
                if items.len() != invoked.len() {
                    return Err(malformed(
                        op,
                        format!(
                            "the completion has {} micro-operations, the invoke {}",
                            items.len(),
                            invoked.len()
                        ),
                    ));
                }
                Some(items.as_slice())
            }
            (Status::Ok, Value::Null) => None,
            (Status::Ok, other) => {
                return Err(malformed(
                    op,
                    format!(
                        "expected a list of micro-operations as the completion's value, found {}",
                        faultline_history::show(other)
                    ),
                ))
            }
            _ => None,
        };
        let mut mops = Vec::with_capacity(invoked.len());
        for (i, m) in invoked.iter().enumerate() {
            let (kind, k, v) = split(m).map_err(|e| malformed(op, e))?;
            let done = match completed {
                Some(c) => {
                    let (ck, ckey, cv) = split(&c[i]).map_err(|e| malformed(op, e))?;
                    if ck != kind || ValueKey::of(ckey) != ValueKey::of(k) {
                        return Err(malformed(
                            op,
                            format!(
                                "micro-operation {} of the completion ({}) differs from the invoke's ({})",
                                i + 1,
                                faultline_history::show(&c[i]),
                                faultline_history::show(m)
                            ),
                        ));
                    }
                    Some(cv)
                }
                None => None,
            };
            let key = keys.id(k);
            let mop = match kind {
                Kind::Append => Mop::Append {
                    key,
                    val: values.id(v),
                },
                Kind::Write => Mop::Write {
                    key,
                    val: values.id(v),
                },
                Kind::Read => {
                    let obs = match (done, workload) {
                        (None, _) => Obs::Unknown,
                        (Some(Value::Null), Workload::ListAppend) => Obs::List(Box::new([])),
                        (Some(Value::Array(items)), Workload::ListAppend) => {
                            Obs::List(items.iter().map(|x| values.id(x)).collect())
                        }
                        (Some(other), Workload::ListAppend) => {
                            return Err(malformed(
                                op,
                                format!(
                                    "a list-append read must return a list, found {}",
                                    faultline_history::show(other)
                                ),
                            ))
                        }
                        (Some(Value::Null), Workload::RwRegister) => Obs::Value(INIT),
                        (Some(x), Workload::RwRegister) => Obs::Value(values.id(x)),
                    };
                    Mop::Read { key, obs }
                }
            };
            mops.push(mop);
        }
        txns.push(Txn {
            op: op.id,
            process: op.process,
            status,
            invoke: op.invoke_index,
            complete: if status == Status::Ok {
                op.complete_index
            } else {
                None
            },
            mops,
        });
    }
    let key_count = keys.shown.len();
    Ok(TxnHistory {
        workload,
        txns,
        keys,
        values,
        key_count,
    })
}
