//! Preparation of a paired history for the causal, session and sequential checkers.
//!
//! This turns client operations into a compact form: sessions (chains of operations),
//! interned keys and values, and, when written values are unique per key, the write each
//! read reads from.
//!
//! Semantics (documented here once, used by every checker in this family):
//!
//! * `read` ok: reads its result. A result equal to the initial value, or `null`
//!   ("never written"), reads the initial value. With `nil_reads_unknown`, an ok read of
//!   `null` observed nothing and is dropped. `info`/`fail` reads observed nothing.
//! * `write` ok: happened. `fail`: did not happen (a read of its value is an aborted read).
//!   `info`: may or may not have happened. An `info` write whose value somebody read did
//!   happen; one nobody read is dropped (placing it last, or leaving it out, explains
//!   every outcome in which it took effect but stayed unobserved), except for a failed
//!   cas's mismatch, which such a write may be the only explanation of: the sequential
//!   search then prepares again keeping them as optional ops ([`prepare_with`]).
//! * `cas [e, n]` ok: a read of `e` followed by a write of `n` at the same point (one
//!   operation that both reads and writes). `info` cas: like an `info` write of `n`; when
//!   `n` was read, the cas happened, so it also read `e`. `fail` cas with error
//!   `mismatch` observed only that the value differed from `e` (kept for the sequential
//!   search, counted as an unchecked observation by the others); any other `fail` is
//!   dropped.
//! * Sessions: one per client process, in invoke order. An `info` operation may take
//!   effect at any time after its invoke, so it does not precede the process's later
//!   operations: it is placed on a branch of its own (a *fork*) whose only predecessor is
//!   the process's previous operation. In faultline's own histories a process never goes
//!   on after an `info` (it takes a fresh id), so forks only appear in imported histories.

use faultline_history::{Operation, Outcome, Paired, Value, ValueKey};
use rustc_hash::FxHashMap as HashMap;

/// Value id of the initial value of every key.
pub(crate) const INIT: u32 = 0;

/// What a kept operation observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observe {
    /// Nothing (a plain write).
    Nothing,
    /// The key held this value (a read, or the compare of a successful cas).
    Equal(u32),
    /// The key held a value other than this one (a cas that failed on `mismatch`).
    NotEqual(u32),
}

impl Observe {
    /// Whether this observation holds while the key holds the value `cur`.
    pub fn holds_at(self, cur: u32) -> bool {
        match self {
            Observe::Nothing => true,
            Observe::Equal(v) => cur == v,
            Observe::NotEqual(v) => cur != v,
        }
    }
}

/// One kept operation.
#[derive(Debug, Clone)]
pub(crate) struct POp {
    /// Index into `Paired::ops`.
    pub src: usize,
    /// Chain (session) and position in it.
    pub chain: u32,
    pub pos: u32,
    /// Interned key.
    pub key: u32,
    /// What it observed.
    pub observe: Observe,
    /// Value written, if it writes.
    pub write: Option<u32>,
    /// Whether it may not have happened (an `info` op kept only for the sequential search
    /// of a history whose values are not unique).
    pub optional: bool,
    /// With unique values: the op it read from (`None` = the initial value), when it
    /// observed `Equal`.
    pub rf: Option<u32>,
}

/// A session: a chain of operations in session order.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    /// The client process it belongs to.
    pub process: u64,
    /// Operation indices (into `Prepared::ops`).
    pub ops: Vec<u32>,
    /// For a fork: the operation of the process that precedes it.
    pub parent: Option<u32>,
}

/// A read the history cannot explain under any model: nothing wrote its value.
#[derive(Debug, Clone)]
pub(crate) struct Structural {
    /// Paired index of the read.
    pub read: usize,
    /// Paired index of a failed write of the same value, if any (aborted read).
    pub failed_write: Option<usize>,
}

/// Why a history cannot be checked by the models that need unique values.
#[derive(Debug, Clone)]
pub(crate) struct NotUnique {
    /// The key and value written twice (or the initial value written).
    pub key: String,
    pub value: String,
    /// Whether it was written twice (rather than being the initial value).
    pub twice: bool,
}

/// A history prepared for checking.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub ops: Vec<POp>,
    pub chains: Vec<Chain>,
    /// Key names (for explanations).
    pub keys: Vec<Option<String>>,
    /// `None` if written values are unique per key.
    pub not_unique: Option<NotUnique>,
    /// Reads of values nobody wrote.
    pub structural: Option<Structural>,
    /// Failed cas ops that observed `NotEqual` (only the sequential search uses them).
    pub mismatches: usize,
    /// Whether some kept operation is a cas (reads and writes at once).
    pub has_cas: bool,
    /// An operation the checkers do not understand (`append`, ...).
    pub unsupported: Option<String>,
    /// How many `info` operations nobody observed were left out (with unique values).
    pub dropped_info: usize,
}

/// A classified operation before sessions are built.
struct Raw {
    src: usize,
    key: u32,
    observe: Observe,
    write: Option<u32>,
    info: bool,
}

/// Interns keys and values.
struct Interner<'a> {
    keys: HashMap<Option<&'a str>, u32>,
    key_names: Vec<Option<String>>,
    values: HashMap<(u32, ValueKey), u32>,
    init: Option<ValueKey>,
}

impl<'a> Interner<'a> {
    fn key(&mut self, op: &'a Operation) -> u32 {
        let name = op.key.as_ref().map(|k| k.0.as_str());
        let next = self.keys.len() as u32;
        *self.keys.entry(name).or_insert_with(|| {
            self.key_names.push(name.map(str::to_string));
            next
        })
    }

    fn value(&mut self, key: u32, v: &'a Value) -> u32 {
        if v.is_null() {
            return INIT;
        }
        let k = ValueKey::of(v);
        if self.init.as_ref() == Some(&k) {
            return INIT;
        }
        let next = self.values.len() as u32 + 1;
        *self.values.entry((key, k)).or_insert(next)
    }
}

fn cas_args(op: &Operation) -> Option<(&Value, &Value)> {
    match op.argument.as_array().map(Vec::as_slice) {
        Some([e, n]) => Some((e, n)),
        _ => None,
    }
}

/// Prepares `paired` (see the module documentation for the semantics).
pub(crate) fn prepare(paired: &Paired, initial: &Value, nil_reads_unknown: bool) -> Prepared {
    prepare_with(paired, initial, nil_reads_unknown, false)
}

/// Like [`prepare`]; with `keep_unobserved_info`, the `info` writes nobody read are kept
/// as optional operations instead of being dropped, even with unique values. A failed
/// cas that observed a mismatch may be explained only by such a write having taken
/// effect, so the sequential search needs them when the history has mismatches; the
/// causal checkers must not see them (they would count them as writes that happened).
pub(crate) fn prepare_with(
    paired: &Paired,
    initial: &Value,
    nil_reads_unknown: bool,
    keep_unobserved_info: bool,
) -> Prepared {
    let init_key = if initial.is_null() {
        None
    } else {
        Some(ValueKey::of(initial))
    };
    let mut int = Interner {
        keys: HashMap::default(),
        key_names: Vec::new(),
        values: HashMap::default(),
        init: init_key,
    };
    let mut raws: Vec<Raw> = Vec::with_capacity(paired.ops.len());
    let mut failed: Vec<(u32, u32, usize)> = Vec::new();
    let mut mismatches = 0;
    let mut unsupported = None;
    for (src, op) in paired.ops.iter().enumerate() {
        let key = int.key(op);
        let info = op.outcome == Outcome::Info;
        let raw = |observe, write| Raw {
            src,
            key,
            observe,
            write,
            info,
        };
        match (op.f.as_str(), op.outcome) {
            ("read", Outcome::Ok) => {
                if nil_reads_unknown && op.result.is_null() {
                    continue;
                }
                let v = int.value(key, &op.result);
                raws.push(raw(Observe::Equal(v), None));
            }
            ("read", _) => {}
            ("write", Outcome::Fail) => {
                let v = int.value(key, &op.argument);
                failed.push((key, v, src));
            }
            ("write", _) => {
                let v = int.value(key, &op.argument);
                raws.push(raw(Observe::Nothing, Some(v)));
            }
            ("cas", outcome) => {
                let Some((e, n)) = cas_args(op) else {
                    unsupported.get_or_insert_with(|| {
                        format!(
                            "a cas whose argument is not [expected, new]: {}",
                            op.describe()
                        )
                    });
                    continue;
                };
                let (e, n) = (int.value(key, e), int.value(key, n));
                match outcome {
                    Outcome::Ok | Outcome::Info => raws.push(raw(Observe::Equal(e), Some(n))),
                    Outcome::Fail if op.error.as_deref() == Some("mismatch") => {
                        mismatches += 1;
                        raws.push(raw(Observe::NotEqual(e), None));
                    }
                    Outcome::Fail => failed.push((key, n, src)),
                }
            }
            (f, _) => {
                unsupported.get_or_insert_with(|| {
                    format!("operation `{f}` is not a register read, write or cas")
                });
            }
        }
    }
    let n_values = int.values.len() + 1;
    let key_names = int.key_names;
    finish(
        raws,
        failed,
        paired,
        Tables {
            keys: key_names,
            n_values,
            mismatches,
            unsupported,
            keep_unobserved_info,
        },
    )
}

/// What [`finish`] needs besides the operations.
struct Tables {
    keys: Vec<Option<String>>,
    n_values: usize,
    mismatches: usize,
    unsupported: Option<String>,
    keep_unobserved_info: bool,
}

fn finish(raws: Vec<Raw>, failed: Vec<(u32, u32, usize)>, paired: &Paired, t: Tables) -> Prepared {
    let Tables {
        keys,
        n_values,
        mismatches,
        unsupported,
        keep_unobserved_info,
    } = t;
    // Writers of each value (value ids are global, so one table serves all keys).
    let mut writer: Vec<u32> = vec![u32::MAX; n_values];
    let mut not_unique = None;
    for (i, r) in raws.iter().enumerate() {
        let Some(v) = r.write else { continue };
        let dup = if v == INIT {
            Some(None)
        } else if writer[v as usize] != u32::MAX {
            Some(Some(raws[writer[v as usize] as usize].src))
        } else {
            writer[v as usize] = i as u32;
            None
        };
        if let (Some(other), None) = (dup, &not_unique) {
            let op = &paired.ops[r.src];
            let value = match op.f.as_str() {
                "cas" => cas_args(op).map(|(_, n)| n.clone()).unwrap_or_default(),
                _ => op.argument.clone(),
            };
            not_unique = Some(NotUnique {
                key: keys[r.key as usize].clone().unwrap_or_default(),
                value: faultline_history::show(&value),
                twice: other.is_some(),
            });
        }
    }
    let mut failed_writer: HashMap<u32, usize> = HashMap::default();
    for (_, v, src) in &failed {
        failed_writer.entry(*v).or_insert(*src);
    }
    // Thin-air and aborted reads: a value observed equal that no op writes. With unique
    // values, an info op whose write somebody read happened (it is the only writer), so
    // its own observation counts too, and so on. With repeated values a read may read
    // any writer of its value, so only ops that surely happened count, and only a value
    // that no op at all writes is a violation (the first writer of a value is not
    // necessarily the one read: the sequential search decides the rest).
    let unique = not_unique.is_none();
    let mut structural = None;
    let mut read_flag = vec![false; raws.len()];
    let mut work: Vec<usize> = (0..raws.len()).filter(|&i| !raws[i].info).collect();
    while let Some(i) = work.pop() {
        let r = &raws[i];
        let Observe::Equal(v) = r.observe else {
            continue;
        };
        if v == INIT {
            continue;
        }
        let w = writer[v as usize];
        if w == u32::MAX {
            structural.get_or_insert(Structural {
                read: r.src,
                failed_write: failed_writer.get(&v).copied(),
            });
        } else if unique && !read_flag[w as usize] {
            read_flag[w as usize] = true;
            if raws[w as usize].info {
                work.push(w as usize);
            }
        }
    }
    // Keep: everything but info ops nobody read (with unique values, unless asked to
    // keep them); info ops that may not have happened become optional.
    let keep: Vec<bool> = raws
        .iter()
        .enumerate()
        .map(|(i, r)| !r.info || !unique || read_flag[i] || keep_unobserved_info)
        .collect();
    let dropped_info = keep.iter().filter(|&&k| !k).count();
    // An info op that stays in a history with unique values happened.
    let mut has_cas = false;
    let mut new_index = vec![u32::MAX; raws.len()];
    let mut ops: Vec<POp> = Vec::new();
    let mut chains: Vec<Chain> = Vec::new();
    let mut main_of: HashMap<u64, u32> = HashMap::default();
    let mut last_kept_of: HashMap<u64, usize> = HashMap::default();
    for (i, r) in raws.iter().enumerate() {
        if keep[i] {
            last_kept_of.insert(paired.ops[r.src].process, i);
        }
    }
    for (i, r) in raws.iter().enumerate() {
        if !keep[i] {
            continue;
        }
        let process = paired.ops[r.src].process;
        let fork = r.info && last_kept_of.get(&process) != Some(&i);
        let main = *main_of.entry(process).or_insert_with(|| {
            chains.push(Chain {
                process,
                ops: Vec::new(),
                parent: None,
            });
            chains.len() as u32 - 1
        });
        let chain = if fork {
            let parent = chains[main as usize]
                .ops
                .last()
                .copied()
                .or(chains[main as usize].parent);
            chains.push(Chain {
                process,
                ops: Vec::new(),
                parent,
            });
            chains.len() as u32 - 1
        } else {
            main
        };
        let idx = ops.len() as u32;
        new_index[i] = idx;
        let pos = chains[chain as usize].ops.len() as u32;
        chains[chain as usize].ops.push(idx);
        has_cas |= r.write.is_some() && r.observe != Observe::Nothing;
        ops.push(POp {
            src: r.src,
            chain,
            pos,
            key: r.key,
            observe: r.observe,
            write: r.write,
            optional: r.info && (!unique || !read_flag[i]),
            rf: None,
        });
    }
    if unique {
        for op in &mut ops {
            if let Observe::Equal(v) = op.observe {
                if v != INIT {
                    let w = writer[v as usize];
                    if w != u32::MAX && new_index[w as usize] != u32::MAX {
                        op.rf = Some(new_index[w as usize]);
                    }
                }
            }
        }
    }
    Prepared {
        ops,
        chains,
        keys,
        not_unique,
        structural,
        mismatches,
        has_cas,
        unsupported,
        dropped_info,
    }
}

impl Prepared {
    /// The session-order predecessor of `op`: the previous op of its chain, or the fork
    /// parent for the first op of a fork.
    pub fn po_pred(&self, op: u32) -> Option<u32> {
        let o = &self.ops[op as usize];
        let chain = &self.chains[o.chain as usize];
        if o.pos > 0 {
            Some(chain.ops[o.pos as usize - 1])
        } else {
            chain.parent
        }
    }

    /// Display name of a key.
    pub fn key_name(&self, key: u32) -> Option<String> {
        self.keys.get(key as usize).cloned().flatten()
    }

    /// Whether `op` reads (observes an equal value).
    pub fn is_read(&self, op: u32) -> bool {
        matches!(self.ops[op as usize].observe, Observe::Equal(_))
    }
}
