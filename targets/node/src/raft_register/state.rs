//! The replicated state machine of raft-register: a map from key to JSON value, and the
//! commands that the Raft log carries (a write or cas on one key, or a transaction).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{Mop, MopKind, Op};

/// Default of the most bytes the state machine may hold, measured as the JSON text of the
/// whole map (what a snapshot carries): 64 MiB (`--max-state-bytes`).
pub const MAX_STATE_BYTES: usize = 64 * 1024 * 1024;

/// One log entry's payload: a write or cas on one key, tagged with a request id unique to
/// the proposing node so the proposer can tell its own entry from another at that index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Unique id of the proposal (node id in the top 16 bits, a counter below).
    pub id: u64,
    /// The key operated on.
    pub key: String,
    /// The operation (never [`Op::Read`]).
    pub op: Op,
}

/// One log entry's payload for a transaction: its micro-operations, applied atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnCommand {
    /// Unique id of the proposal, as [`Command::id`].
    pub id: u64,
    /// The micro-operations, in order (keys in their text form).
    pub txn: Vec<Mop>,
}

/// What a log entry carries: a single-key command or a transaction. Entries written before
/// transactions existed are [`Command`]s, which still decode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Entry {
    /// A write or cas on one key.
    Kv(Command),
    /// A transaction.
    Txn(TxnCommand),
}

impl Entry {
    /// The proposal's id.
    pub fn id(&self) -> u64 {
        match self {
            Entry::Kv(c) => c.id,
            Entry::Txn(t) => t.id,
        }
    }
}

/// What applying a transaction did (nothing at all unless [`TxnApplied::Ok`]).
#[derive(Debug, Clone, PartialEq)]
pub enum TxnApplied {
    /// Applied; one value per micro-operation: what a read read, `null` for the others.
    Ok(Vec<Value>),
    /// The append at this position met a value that is not a list: nothing applied.
    NotAList(usize),
    /// The transaction would have taken the state past its size limit: nothing applied.
    Full,
}

/// How to undo one micro-operation of a transaction being applied.
enum Undo {
    /// Put back what the key held before (`None`: absent).
    Restore(String, Option<Value>),
    /// Remove the element appended last to the key's list.
    Pop(String),
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The command took effect; the value is now this.
    Ok(Value),
    /// A cas whose compare failed; the value found.
    Mismatch(Value),
    /// The command would have taken the state past its size limit: not applied.
    Full,
}

/// The map of registers. A key never written reads as `null`.
///
/// The state's size is the length of its JSON text (what [`to_bytes`](Self::to_bytes)
/// returns and a snapshot carries); a write that would take it past the limit is not
/// applied ([`Applied::Full`]). Every replica applies the same commands to the same state,
/// so they all refuse the same ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Registers {
    map: BTreeMap<String, Value>,
    /// Sum over the keys of `len(json(key)) + len(json(value)) + 2` (the colon and a comma
    /// or a brace).
    entries_bytes: usize,
    limit: usize,
}

/// The length of `v`'s JSON text.
fn json_len<T: Serialize + ?Sized>(v: &T) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX / 4, |b| b.len())
}

fn entry_len(key: &str, value: &Value) -> usize {
    json_len(key)
        .saturating_add(json_len(value))
        .saturating_add(2)
}

impl Registers {
    /// An empty state that holds at most `limit` bytes of JSON.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            map: BTreeMap::new(),
            entries_bytes: 0,
            limit,
        }
    }

    /// The length of the state's JSON text.
    pub fn size(&self) -> usize {
        // `{}` when empty; otherwise `{` plus every entry with its `,` or `}`.
        if self.map.is_empty() {
            2
        } else {
            self.entries_bytes.saturating_add(1)
        }
    }

    /// The value of `key` (`null` if never written).
    pub fn read(&self, key: &str) -> Value {
        self.map.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Sets `key` to `value` if the state stays within its limit.
    fn set(&mut self, key: &str, value: &Value) -> bool {
        let old = self.map.get(key).map_or(0, |v| entry_len(key, v));
        let entries = self.entries_bytes - old + entry_len(key, value);
        if entries.saturating_add(1) > self.limit {
            return false;
        }
        self.entries_bytes = entries;
        self.map.insert(key.to_owned(), value.clone());
        true
    }

    /// Applies one committed command. A cas compares with [`crate::value::same`] (exact
    /// value: `1` and `1.0` are the same) and stores `new` as it is.
    pub fn apply(&mut self, cmd: &Command) -> Applied {
        match &cmd.op {
            Op::Read => Applied::Ok(self.read(&cmd.key)),
            Op::Write { value } => {
                if !self.set(&cmd.key, value) {
                    return Applied::Full;
                }
                Applied::Ok(value.clone())
            }
            Op::Cas { expected, new } => {
                let current = self.read(&cmd.key);
                if !crate::value::same(&current, expected) {
                    return Applied::Mismatch(current);
                }
                if !self.set(&cmd.key, new) {
                    return Applied::Full;
                }
                Applied::Ok(new.clone())
            }
        }
    }

    /// Applies a committed transaction atomically: every micro-operation in order, reads
    /// seeing the earlier ones; if an append meets a value that is not an array (`null`
    /// is the empty list), or the state would end past its size limit, nothing is applied.
    pub fn apply_txn(&mut self, mops: &[Mop]) -> TxnApplied {
        let start_bytes = self.entries_bytes;
        let mut undo: Vec<Undo> = Vec::new();
        let mut results = Vec::with_capacity(mops.len());
        let mut abort = None;
        for (i, m) in mops.iter().enumerate() {
            let key = m.key();
            match m.kind() {
                MopKind::Read => {
                    results.push(self.read(key));
                    continue;
                }
                MopKind::Write => {
                    let old_len = self.map.get(key).map_or(0, |v| entry_len(key, v));
                    let old = self.map.insert(key.to_owned(), m.value().clone());
                    self.entries_bytes = self.entries_bytes - old_len + entry_len(key, m.value());
                    undo.push(Undo::Restore(key.to_owned(), old));
                }
                MopKind::Append => match self.map.get_mut(key) {
                    Some(Value::Array(list)) => {
                        // `[a]` -> `[a,v]`: the value and a comma; `[]` -> `[v]`: the value.
                        let extra = json_len(m.value()) + usize::from(!list.is_empty());
                        list.push(m.value().clone());
                        self.entries_bytes = self.entries_bytes.saturating_add(extra);
                        undo.push(Undo::Pop(key.to_owned()));
                    }
                    Some(Value::Null) | None => {
                        let list = Value::Array(vec![m.value().clone()]);
                        let old_len = self.map.get(key).map_or(0, |v| entry_len(key, v));
                        self.entries_bytes = self.entries_bytes - old_len + entry_len(key, &list);
                        let old = self.map.insert(key.to_owned(), list);
                        undo.push(Undo::Restore(key.to_owned(), old));
                    }
                    Some(_) => {
                        abort = Some(TxnApplied::NotAList(i));
                        break;
                    }
                },
            }
            results.push(Value::Null);
        }
        if abort.is_none() && self.size_of(self.entries_bytes) > self.limit {
            abort = Some(TxnApplied::Full);
        }
        match abort {
            None => TxnApplied::Ok(results),
            Some(a) => {
                for u in undo.into_iter().rev() {
                    match u {
                        Undo::Restore(key, Some(v)) => {
                            self.map.insert(key, v);
                        }
                        Undo::Restore(key, None) => {
                            self.map.remove(&key);
                        }
                        Undo::Pop(key) => {
                            if let Some(Value::Array(list)) = self.map.get_mut(&key) {
                                list.pop();
                            }
                        }
                    }
                }
                self.entries_bytes = start_bytes;
                a
            }
        }
    }

    /// What the transaction would do if it were applied now, without applying it: one
    /// value per micro-operation (what a read would read, `null` for the others), or the
    /// position of the append that meets a value that is not a list. The planted faults
    /// `txn-stale-reads` and `txn-lost-update` use it on a node's own applied state.
    pub fn evaluate(&self, mops: &[Mop]) -> Result<Vec<Value>, usize> {
        let mut overlay: BTreeMap<&str, Value> = BTreeMap::new();
        let mut results = Vec::with_capacity(mops.len());
        for (i, m) in mops.iter().enumerate() {
            let key = m.key();
            let current = overlay.get(key).cloned().unwrap_or_else(|| self.read(key));
            match m.kind() {
                MopKind::Read => {
                    results.push(current);
                    continue;
                }
                MopKind::Write => {
                    overlay.insert(key, m.value().clone());
                }
                MopKind::Append => {
                    let mut list = match current {
                        Value::Array(list) => list,
                        Value::Null => Vec::new(),
                        _ => return Err(i),
                    };
                    list.push(m.value().clone());
                    overlay.insert(key, Value::Array(list));
                }
            }
            results.push(Value::Null);
        }
        Ok(results)
    }

    /// The size of the state's JSON text when its entries take `entries_bytes`.
    fn size_of(&self, entries_bytes: usize) -> usize {
        if self.map.is_empty() {
            2
        } else {
            entries_bytes.saturating_add(1)
        }
    }

    /// Serialises the whole map for a snapshot.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.map).unwrap_or_default()
    }

    /// Restores the map from snapshot data (empty data is an empty map); the state then
    /// holds at most `limit` bytes.
    pub fn from_bytes(data: &[u8], limit: usize) -> Result<Self, serde_json::Error> {
        let mut r = Self::with_limit(limit);
        if data.is_empty() {
            return Ok(r);
        }
        r.map = serde_json::from_slice(data)?;
        r.entries_bytes = r.map.iter().map(|(k, v)| entry_len(k, v)).sum();
        Ok(r)
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmd(key: &str, op: Op) -> Command {
        Command {
            id: 1,
            key: key.to_owned(),
            op,
        }
    }

    #[test]
    fn writes_and_cas_follow_register_semantics() {
        let mut r = Registers::with_limit(MAX_STATE_BYTES);
        assert_eq!(r.read("a"), Value::Null);
        assert_eq!(
            r.apply(&cmd(
                "a",
                Op::Cas {
                    expected: json!(1),
                    new: json!(2)
                }
            )),
            Applied::Mismatch(Value::Null)
        );
        assert_eq!(
            r.apply(&cmd(
                "a",
                Op::Cas {
                    expected: Value::Null,
                    new: json!(2)
                }
            )),
            Applied::Ok(json!(2))
        );
        assert_eq!(
            r.apply(&cmd(
                "a",
                Op::Write {
                    value: json!({"x": [1]})
                }
            )),
            Applied::Ok(json!({"x": [1]}))
        );
        assert_eq!(r.read("a"), json!({"x": [1]}));
        assert_eq!(
            r.apply(&cmd(
                "a",
                Op::Cas {
                    expected: json!(2),
                    new: json!(3)
                }
            )),
            Applied::Mismatch(json!({"x": [1]}))
        );
    }

    #[test]
    fn commands_and_snapshots_keep_numbers_exactly() {
        let texts = [
            "18446744073709551617",
            "-99999999999999999999",
            "1e400",
            "123456789012345678901234567890.5",
            r#"{"x":[1.50,-0,2E-400]}"#,
        ];
        let mut r = Registers::with_limit(MAX_STATE_BYTES);
        for (i, t) in texts.iter().enumerate() {
            let value: Value = serde_json::from_str(t).unwrap_or_default();
            let c = cmd(
                &format!("k{i}"),
                Op::Write {
                    value: value.clone(),
                },
            );
            let back: Command = serde_json::from_slice(&serde_json::to_vec(&c).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(back, c);
            r.apply(&back);
        }
        let back =
            Registers::from_bytes(&r.to_bytes(), MAX_STATE_BYTES).unwrap_or_else(|e| panic!("{e}"));
        for (i, t) in texts.iter().enumerate() {
            let want: Value = serde_json::from_str(t).unwrap_or_default();
            assert_eq!(back.read(&format!("k{i}")).to_string(), want.to_string());
        }
        // cas by exact value; the value stored is `new` as given.
        let cas = Op::Cas {
            expected: serde_json::from_str("1.8446744073709551617e19").unwrap_or_default(),
            new: serde_json::from_str("1.0").unwrap_or_default(),
        };
        let mut r = back;
        assert_eq!(r.apply(&cmd("k0", cas)).clone(), Applied::Ok(json!(1.0)));
        assert_eq!(r.read("k0").to_string(), "1.0");
    }

    #[test]
    fn snapshot_round_trips() {
        let mut r = Registers::with_limit(MAX_STATE_BYTES);
        r.apply(&cmd("k1", Op::Write { value: json!(7) }));
        r.apply(&cmd("k2", Op::Write { value: json!("s") }));
        let back = Registers::from_bytes(&r.to_bytes(), MAX_STATE_BYTES)
            .unwrap_or_else(|_| Registers::with_limit(0));
        assert_eq!(back, r);
        assert_eq!(back.len(), 2);
        assert_eq!(back.size(), r.to_bytes().len());
        assert!(Registers::from_bytes(b"{not json", MAX_STATE_BYTES).is_err());
        assert_eq!(
            Registers::from_bytes(b"", MAX_STATE_BYTES)
                .map(|r| r.len())
                .ok(),
            Some(0)
        );
    }

    #[test]
    fn the_size_is_the_json_length_and_the_limit_holds() {
        let mut r = Registers::with_limit(40);
        assert_eq!(r.size(), r.to_bytes().len());
        let w = |v: Value| Op::Write { value: v };
        assert_eq!(
            r.apply(&cmd("a", w(json!("0123456789")))),
            Applied::Ok(json!("0123456789"))
        );
        assert_eq!(r.size(), r.to_bytes().len());
        assert_eq!(
            r.apply(&cmd("b", w(json!([1, 2, {"x": null}])))),
            Applied::Ok(json!([1, 2, {"x": null}]))
        );
        assert_eq!(r.size(), r.to_bytes().len());
        // {"a":"0123456789","b":[1,2,{"x":null}]} is 39 bytes: 41 do not fit.
        assert_eq!(
            r.apply(&cmd("b", w(json!([1, 2, {"x": 123456}])))),
            Applied::Full
        );
        assert_eq!(r.apply(&cmd("c", w(json!(1)))), Applied::Full);
        let cas = Op::Cas {
            expected: json!("0123456789"),
            new: json!("0123456789ab"),
        };
        assert_eq!(r.apply(&cmd("a", cas)), Applied::Full);
        assert_eq!(r.read("a"), json!("0123456789"));
        // Overwriting with something smaller frees room.
        assert_eq!(r.apply(&cmd("a", w(json!(0)))), Applied::Ok(json!(0)));
        assert_eq!(r.apply(&cmd("c", w(json!(1)))), Applied::Ok(json!(1)));
        assert_eq!(r.size(), r.to_bytes().len());
        assert!(r.size() <= 40);
    }

    fn mop(kind: MopKind, key: &str, value: Value) -> Mop {
        Mop(kind, key.to_owned(), value)
    }

    fn r(key: &str) -> Mop {
        mop(MopKind::Read, key, Value::Null)
    }

    fn w(key: &str, v: Value) -> Mop {
        mop(MopKind::Write, key, v)
    }

    fn ap(key: &str, v: Value) -> Mop {
        mop(MopKind::Append, key, v)
    }

    #[test]
    fn transactions_append_read_their_own_writes_and_read_null_for_never_written() {
        let mut s = Registers::with_limit(MAX_STATE_BYTES);
        let txn = [
            r("l"),
            ap("l", json!(1)),
            ap("l", json!(2)),
            r("l"),
            w("k", json!(5)),
            r("k"),
            r("never"),
        ];
        assert_eq!(
            s.evaluate(&txn),
            Ok(vec![
                Value::Null,
                Value::Null,
                Value::Null,
                json!([1, 2]),
                Value::Null,
                json!(5),
                Value::Null
            ])
        );
        // Evaluating applies nothing.
        assert_eq!(s.len(), 0);
        assert_eq!(
            s.apply_txn(&txn),
            TxnApplied::Ok(vec![
                Value::Null,
                Value::Null,
                Value::Null,
                json!([1, 2]),
                Value::Null,
                json!(5),
                Value::Null
            ])
        );
        assert_eq!(s.read("l"), json!([1, 2]));
        assert_eq!(s.size(), s.to_bytes().len());
        // An empty list written with `w` takes appends; so does a key written `null`.
        assert_eq!(
            s.apply_txn(&[
                w("e", json!([])),
                ap("e", json!(3)),
                w("n", Value::Null),
                ap("n", json!(4))
            ]),
            TxnApplied::Ok(vec![Value::Null; 4])
        );
        assert_eq!((s.read("e"), s.read("n")), (json!([3]), json!([4])));
        assert_eq!(s.size(), s.to_bytes().len());
        // A single-key write and a transaction's read see the same map.
        s.apply(&cmd("k", Op::Write { value: json!("x") }));
        assert_eq!(s.apply_txn(&[r("k")]), TxnApplied::Ok(vec![json!("x")]));
    }

    #[test]
    fn an_append_to_a_value_that_is_not_a_list_aborts_everything() {
        let mut s = Registers::with_limit(MAX_STATE_BYTES);
        s.apply_txn(&[ap("l", json!(1)), w("k", json!({"a": 1}))]);
        let before = s.clone();
        for bad in [json!({"a": 1}), json!(5), json!("s"), json!(true)] {
            s.apply_txn(&[w("k", bad.clone())]);
            let before_k = s.clone();
            let txn = [
                ap("l", json!(2)),
                w("fresh", json!(1)),
                w("l", json!([9])),
                ap("l", json!(3)),
                ap("k", json!(4)),
                ap("l", json!(5)),
            ];
            assert_eq!(s.evaluate(&txn), Err(4));
            assert_eq!(s.apply_txn(&txn), TxnApplied::NotAList(4));
            assert_eq!(s, before_k, "nothing applied for {bad}");
        }
        // A write inside the transaction makes a later append fail too.
        let mut s = before;
        let snapshot = s.clone();
        assert_eq!(
            s.apply_txn(&[ap("l", json!(2)), w("l", json!(0)), ap("l", json!(3))]),
            TxnApplied::NotAList(2)
        );
        assert_eq!(s, snapshot);
    }

    #[test]
    fn a_transaction_past_the_limit_is_not_applied_at_all() {
        // {"a":[1]} is 9 bytes.
        let mut s = Registers::with_limit(20);
        assert_eq!(
            s.apply_txn(&[ap("a", json!(1))]),
            TxnApplied::Ok(vec![Value::Null])
        );
        assert_eq!(s.size(), 9);
        let before = s.clone();
        // {"a":[1,2],"b":123456} is 22 bytes.
        assert_eq!(
            s.apply_txn(&[ap("a", json!(2)), w("b", json!(123456)), r("a")]),
            TxnApplied::Full
        );
        assert_eq!(s, before);
        // Shrinking first makes room: {"a":0,"b":[123456]} is 20 bytes.
        assert_eq!(
            s.apply_txn(&[w("a", json!(0)), ap("b", json!(123456))]),
            TxnApplied::Ok(vec![Value::Null; 2])
        );
        assert_eq!(s.size(), 20);
        assert_eq!(s.size(), s.to_bytes().len());
    }

    #[test]
    fn log_entries_decode_old_commands_and_transactions_exactly() {
        let old = br#"{"id":7,"key":"k","op":{"op":"write","value":18446744073709551617}}"#;
        let e: Entry = serde_json::from_slice(old).unwrap_or_else(|e| panic!("{e}"));
        let Entry::Kv(c) = &e else { panic!("{e:?}") };
        assert_eq!(c.id, 7);
        let txn = Entry::Txn(TxnCommand {
            id: 9,
            txn: vec![
                ap("3", serde_json::from_str("1e400").unwrap_or_default()),
                r("3"),
                w(
                    "k",
                    serde_json::from_str("[18446744073709551617,-0.0]").unwrap_or_default(),
                ),
            ],
        });
        let text = serde_json::to_string(&txn).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"id":9,"txn":[["append","3",1e+400],["r","3",null],["w","k",[18446744073709551617,-0.0]]]}"#
        );
        let back: Entry = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, txn);
        assert_eq!(back.id(), 9);
        // Lists keep their numbers through a snapshot.
        let mut s = Registers::with_limit(MAX_STATE_BYTES);
        if let Entry::Txn(t) = &back {
            s.apply_txn(&t.txn);
        }
        let restored =
            Registers::from_bytes(&s.to_bytes(), MAX_STATE_BYTES).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(restored.read("3").to_string(), "[1e+400]");
        assert_eq!(restored, s);
    }
}
