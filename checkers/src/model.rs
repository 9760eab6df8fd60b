//! Sequential models of the linearizability checker: `register`, `cas-register` and `kv`.
//!
//! A model here is a pure step function over a small integer state. Values are interned per
//! key ([`Values`]) so that a state is one `u32`, cheap to hash and compare: for a register
//! the state is the id of the value it holds; for `append` it is the id of the whole string.
//!
//! Semantics (DESIGN §4):
//! - `read` returns the current value (an `ok` read of `null` means never written, unless the
//!   caller asked for Knossos's semantics and dropped such reads beforehand);
//! - `write v` sets the value;
//! - `cas [expected, new]` sets `new` if the value equals `expected`; a `fail` cas whose
//!   error is `"mismatch"` observes that the value differed from `expected`;
//! - `append s` (kv only, Porcupine's kv logs) concatenates strings; a read must return the
//!   exact string.

use faultline_history::{Value, ValueKey};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// The sequential specification a history is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataModel {
    /// A read/write register (one per key when operations carry keys).
    Register,
    /// A register with compare-and-set.
    CasRegister,
    /// Independent keys, each a cas-register that also supports `append` of strings.
    Kv,
}

impl DataModel {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            DataModel::Register => "register",
            DataModel::CasRegister => "cas-register",
            DataModel::Kv => "kv",
        }
    }

    /// The data model a history's operations call for: `kv` when they carry keys (or
    /// append), `cas-register` with cas, else `register`.
    pub fn infer(paired: &faultline_history::Paired) -> DataModel {
        if paired.ops.iter().any(|o| o.key.is_some()) {
            DataModel::Kv
        } else if paired.ops.iter().any(|o| o.f == "cas") {
            DataModel::CasRegister
        } else if paired.ops.iter().any(|o| o.f == "append") {
            DataModel::Kv
        } else {
            DataModel::Register
        }
    }

    /// Whether the model knows this function.
    pub fn allows(self, func: Func) -> bool {
        match self {
            DataModel::Register => matches!(func, Func::Read | Func::Write),
            DataModel::CasRegister => !matches!(func, Func::Append),
            DataModel::Kv => true,
        }
    }
}

impl fmt::Display for DataModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model name that is not `register`, `cas-register` or `kv`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("unknown data model \"{0}\"; expected register, cas-register or kv")]
pub struct UnknownModel(pub String);

impl FromStr for DataModel {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "register" => Ok(DataModel::Register),
            "cas-register" | "cas" => Ok(DataModel::CasRegister),
            "kv" => Ok(DataModel::Kv),
            other => Err(UnknownModel(other.to_string())),
        }
    }
}

/// The functions the models know, after aliasing (`get` = read, `put` = write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// `read` or `get`.
    Read,
    /// `write` or `put`.
    Write,
    /// `cas`: compare-and-set.
    Cas,
    /// `append` of a string.
    Append,
}

impl Func {
    /// The function an operation's `f` names, if any model knows it.
    pub fn parse(f: &str) -> Option<Func> {
        match f {
            "read" | "get" => Some(Func::Read),
            "write" | "put" => Some(Func::Write),
            "cas" => Some(Func::Cas),
            "append" => Some(Func::Append),
            _ => None,
        }
    }
}

/// What one operation does, with values interned into the key's [`Values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Observes that the state is this value.
    Read(u32),
    /// Sets the state.
    Write(u32),
    /// Sets `new` if the state is `expect`; illegal otherwise.
    Cas {
        /// The value compared.
        expect: u32,
        /// The value set.
        new: u32,
    },
    /// A failed compare: observes that the state is not this value.
    CasMismatch(u32),
    /// Appends this string (a value id) to the state.
    Append(u32),
}

impl Action {
    /// Whether the action only observes the state (never changes it).
    pub fn is_observation(self) -> bool {
        matches!(self, Action::Read(_) | Action::CasMismatch(_))
    }
}

/// The values of one key, interned into small integers.
///
/// Cloning is cheap once [`Values::freeze`] has run (the values interned so far are shared
/// between clones; later ones, such as the strings appends build, are each clone's own):
/// the witness's shrinking clones a key's model for every candidate it checks.
#[derive(Debug, Clone, Default)]
pub struct Values {
    shared: std::sync::Arc<Table>,
    own: Table,
}

#[derive(Debug, Clone, Default)]
struct Table {
    ids: crate::lin::bits::FxMap<ValueKey, u32>,
    vals: Vec<Value>,
}

impl Values {
    /// An empty table.
    pub fn new() -> Values {
        Values::default()
    }

    fn find(&self, k: &ValueKey) -> Option<u32> {
        self.shared
            .ids
            .get(k)
            .or_else(|| self.own.ids.get(k))
            .copied()
    }

    fn add(&mut self, k: ValueKey, v: Value) -> u32 {
        let id = self.len() as u32;
        self.own.ids.insert(k, id);
        self.own.vals.push(v);
        id
    }

    /// The id of `v`, adding it if new.
    pub fn intern(&mut self, v: &Value) -> u32 {
        let k = ValueKey::of(v);
        match self.find(&k) {
            Some(id) => id,
            None => self.add(k, v.clone()),
        }
    }

    /// The id of the integer `i`, adding it if new (no `Value` needed to look it up).
    pub fn intern_int(&mut self, i: i64) -> u32 {
        match self.find(&ValueKey::Int(i)) {
            Some(id) => id,
            None => self.add(ValueKey::Int(i), Value::from(i)),
        }
    }

    /// The id of `v` if it was interned.
    pub fn get(&self, v: &Value) -> Option<u32> {
        self.find(&ValueKey::of(v))
    }

    /// The value of an id (`null` for an id never handed out).
    pub fn value(&self, id: u32) -> &Value {
        let i = id as usize;
        let n = self.shared.vals.len();
        if i < n {
            &self.shared.vals[i]
        } else {
            self.own.vals.get(i - n).unwrap_or(&Value::Null)
        }
    }

    /// How many values are interned.
    pub fn len(&self) -> usize {
        self.shared.vals.len() + self.own.vals.len()
    }

    /// Whether no value is interned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the values interned so far shared by every later clone.
    pub fn freeze(&mut self) {
        if self.own.vals.is_empty() {
            return;
        }
        let own = std::mem::take(&mut self.own);
        match std::sync::Arc::get_mut(&mut self.shared) {
            Some(t) if t.vals.is_empty() => *t = own,
            Some(t) => {
                t.ids.extend(own.ids);
                t.vals.extend(own.vals);
            }
            None => {
                let mut t = (*self.shared).clone();
                t.ids.extend(own.ids);
                t.vals.extend(own.vals);
                self.shared = std::sync::Arc::new(t);
            }
        }
    }
}

/// The sequential model of one key: its interned values and the step function.
#[derive(Debug, Clone, Default)]
pub struct KeyModel {
    /// The key's values (and, with `append`, every string state reached).
    pub values: Values,
    appended: crate::lin::bits::FxMap<(u32, u32), Option<u32>>,
}

impl KeyModel {
    /// A model with these interned values (frozen: clones of the model share them).
    pub fn new(mut values: Values) -> KeyModel {
        values.freeze();
        KeyModel {
            values,
            appended: Default::default(),
        }
    }

    /// The state after `action` in `state`, or `None` if the action is illegal there.
    #[inline]
    pub fn step(&mut self, state: u32, action: Action) -> Option<u32> {
        match action {
            Action::Read(v) => (state == v).then_some(state),
            Action::Write(v) => Some(v),
            Action::Cas { expect, new } => (state == expect).then_some(new),
            Action::CasMismatch(v) => (state != v).then_some(state),
            Action::Append(piece) => self.append(state, piece),
        }
    }

    fn append(&mut self, state: u32, piece: u32) -> Option<u32> {
        if let Some(&r) = self.appended.get(&(state, piece)) {
            return r;
        }
        let base = match self.values.value(state) {
            Value::Null => Some(""),
            Value::String(s) => Some(s.as_str()),
            _ => None,
        };
        let r = match (base, self.values.value(piece)) {
            (Some(b), Value::String(p)) => {
                let joined = Value::String(format!("{b}{p}"));
                Some(self.values.intern(&joined))
            }
            _ => None,
        };
        self.appended.insert((state, piece), r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn register_steps() {
        let mut vals = Values::new();
        let null = vals.intern(&Value::Null);
        let one = vals.intern(&json!(1));
        let two = vals.intern(&json!(2));
        assert_eq!(vals.intern(&json!(1)), one, "interning is stable");
        let mut m = KeyModel::new(vals);
        assert_eq!(m.step(null, Action::Read(null)), Some(null));
        assert_eq!(m.step(null, Action::Read(one)), None);
        assert_eq!(m.step(null, Action::Write(two)), Some(two));
        assert_eq!(
            m.step(
                one,
                Action::Cas {
                    expect: one,
                    new: two
                }
            ),
            Some(two)
        );
        assert_eq!(
            m.step(
                two,
                Action::Cas {
                    expect: one,
                    new: two
                }
            ),
            None
        );
        assert_eq!(m.step(two, Action::CasMismatch(one)), Some(two));
        assert_eq!(m.step(one, Action::CasMismatch(one)), None);
    }

    #[test]
    fn append_concatenates_and_interns() {
        let mut vals = Values::new();
        let empty = vals.intern(&json!(""));
        let x = vals.intern(&json!("x"));
        let xy = vals.intern(&json!("xy"));
        let y = vals.intern(&json!("y"));
        let mut m = KeyModel::new(vals);
        let s1 = m.step(empty, Action::Append(x));
        assert_eq!(s1, Some(x), "\"\" + \"x\" is the interned \"x\"");
        assert_eq!(m.step(x, Action::Append(y)), Some(xy));
        let num = m.values.intern(&json!(3));
        assert_eq!(m.step(num, Action::Append(y)), None, "cannot append to 3");
    }

    #[test]
    fn model_names_round_trip() {
        for m in [DataModel::Register, DataModel::CasRegister, DataModel::Kv] {
            assert_eq!(m.name().parse::<DataModel>(), Ok(m));
        }
        assert!("queue".parse::<DataModel>().is_err());
        assert!(!DataModel::Register.allows(Func::Cas));
        assert!(DataModel::Kv.allows(Func::Append));
        assert_eq!(Func::parse("get"), Some(Func::Read));
    }
}
