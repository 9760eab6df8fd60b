//! The replicated state machine of raft-register: a map from key to JSON value, and the
//! commands that the Raft log carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::Op;

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
}

/// The map of registers. A key never written reads as `null`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Registers {
    map: BTreeMap<String, Value>,
}

impl Registers {
    /// The value of `key` (`null` if never written).
    pub fn read(&self, key: &str) -> Value {
        self.map.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Applies one committed command.
    pub fn apply(&mut self, cmd: &Command) -> Applied {
        match &cmd.op {
            Op::Read => Applied::Ok(self.read(&cmd.key)),
            Op::Write { value } => {
                self.map.insert(cmd.key.clone(), value.clone());
                Applied::Ok(value.clone())
            }
            Op::Cas { expected, new } => {
                let current = self.read(&cmd.key);
                if &current == expected {
                    self.map.insert(cmd.key.clone(), new.clone());
                    Applied::Ok(new.clone())
                } else {
                    Applied::Mismatch(current)
                }
            }
        }
    }

    /// Serialises the whole map for a snapshot.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.map).unwrap_or_default()
    }

    /// Restores the map from snapshot data; empty data is an empty map.
    pub fn from_bytes(data: &[u8]) -> Result<Self, serde_json::Error> {
        if data.is_empty() {
            return Ok(Self::default());
        }
        Ok(Self {
            map: serde_json::from_slice(data)?,
        })
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
        let mut r = Registers::default();
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
    fn snapshot_round_trips() {
        let mut r = Registers::default();
        r.apply(&cmd("k1", Op::Write { value: json!(7) }));
        r.apply(&cmd("k2", Op::Write { value: json!("s") }));
        let back = Registers::from_bytes(&r.to_bytes()).unwrap_or_default();
        assert_eq!(back, r);
        assert_eq!(back.len(), 2);
        assert!(Registers::from_bytes(b"{not json").is_err());
        assert_eq!(Registers::from_bytes(b"").map(|r| r.len()).ok(), Some(0));
    }
}
