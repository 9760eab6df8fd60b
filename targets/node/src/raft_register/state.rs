//! The replicated state machine of raft-register: a map from key to JSON value, and the
//! commands that the Raft log carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::Op;

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
}
