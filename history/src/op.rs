//! Operations: invokes paired with their completions.

use crate::error::HistoryError;
use crate::event::{Event, EventType, Key, Process, Value};
use crate::value::{escape_text, show};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect; the result is known.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Unknown: may take effect at any time after its invoke, or never.
    Info,
}

/// One client operation: an invoke paired with its completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Position among the history's client operations, in invoke order.
    pub id: usize,
    /// The client process.
    pub process: u64,
    /// The function (`read`, `write`, `cas`, `append`, ...).
    pub f: String,
    /// The key, absent for a single register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// The invoke's value (the argument).
    pub argument: Value,
    /// The completion's value (a read's result for `ok`).
    pub result: Value,
    /// How it ended.
    pub outcome: Outcome,
    /// `index` of the invoke.
    pub invoke_index: u64,
    /// `time` of the invoke (ns).
    pub invoke_time: u64,
    /// `index` of the completion; `None` if the history ends before it completed.
    pub complete_index: Option<u64>,
    /// `time` of the completion (ns).
    pub complete_time: Option<u64>,
    /// Which node served it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why it failed or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Operation {
    /// The operation in plain words, e.g. `process 3 read 4 from x`.
    pub fn describe(&self) -> String {
        let key = self
            .key
            .as_ref()
            .map(|k| format!(" {}", escape_text(&k.0)))
            .unwrap_or_default();
        let on = |prep: &str| {
            self.key
                .as_ref()
                .map(|k| format!(" {prep} {}", escape_text(&k.0)))
                .unwrap_or_default()
        };
        let what = match (self.f.as_str(), self.outcome) {
            ("read", Outcome::Ok) => format!("read {}{}", show(&self.result), on("from")),
            ("read", _) => format!("read{key}"),
            ("write", _) => format!("wrote {}{}", show(&self.argument), on("to")),
            ("append", _) => format!("appended {}{}", show(&self.argument), on("to")),
            ("cas", _) => match self.argument.as_array().map(Vec::as_slice) {
                Some([from, to]) => {
                    format!("compare-and-set{key} from {} to {}", show(from), show(to))
                }
                _ => format!("cas{key} {}", show(&self.argument)),
            },
            ("txn", Outcome::Ok) if !self.result.is_null() => {
                format!("txn {}", crate::value::show_txn(&self.result, true))
            }
            ("txn", _) => format!("txn {}", crate::value::show_txn(&self.argument, false)),
            (f, _) => format!("{}{key} {}", escape_text(f), show(&self.argument)),
        };
        let tail = match self.outcome {
            Outcome::Ok => String::new(),
            Outcome::Fail => match &self.error {
                Some(e) => format!(" (failed: {})", escape_text(e)),
                None => " (failed)".into(),
            },
            Outcome::Info => match &self.error {
                Some(e) => format!(" (outcome unknown: {})", escape_text(e)),
                None => " (outcome unknown)".into(),
            },
        };
        format!("process {} {what}{tail}", self.process)
    }
}

/// Seconds with millisecond precision, for explanations: `1.204 s`.
pub fn seconds(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A history split into client operations and nemesis events.
#[derive(Debug, Clone, Default)]
pub struct Paired {
    /// Client operations in invoke order.
    pub ops: Vec<Operation>,
    /// Nemesis events, as recorded.
    pub faults: Vec<Event>,
}

/// An operation in flight, as the pairing rules see it.
pub(crate) struct InFlight<'a> {
    pub(crate) f: &'a str,
    pub(crate) key: Option<&'a Key>,
    pub(crate) time: u64,
    /// The `index` of its invoke.
    pub(crate) index: u64,
    /// The line of its invoke, for a reader that knows lines.
    pub(crate) line: Option<usize>,
}

impl InFlight<'_> {
    /// Where its invoke is: `event 4`, or `event 4 on line 6`.
    fn at(&self) -> String {
        match self.line {
            Some(line) => format!("event {} on line {line}", self.index),
            None => format!("event {}", self.index),
        }
    }
}

/// An operation of [`pair`] as the rules see it.
fn view(op: &Operation, line: Option<usize>) -> InFlight<'_> {
    InFlight {
        f: &op.f,
        key: op.key.as_ref(),
        time: op.invoke_time,
        index: op.invoke_index,
        line,
    }
}

/// Why the invoke `ev` of process `p` breaks the rules while `open` is in flight.
pub(crate) fn second_invoke(p: u64, ev: &Event, open: &InFlight<'_>) -> String {
    format!(
        "process {p} invokes {} while its {} (invoked at {}) has not completed; a process runs one operation at a time",
        ev.f, open.f, open.at()
    )
}

/// Why the completion `ev` of process `p`, which has nothing in flight, breaks the rules.
pub(crate) fn orphan_completion(p: u64, ev: &Event) -> String {
    format!(
        "{:?} completion of {} by process {p} with no operation in flight",
        ev.kind, ev.f
    )
    .to_lowercase()
}

/// Why the completion `ev` of process `p` does not complete `open`, if it does not: its
/// `f` differs, it names another key, or its `time` is earlier.
pub(crate) fn completion_mismatch(p: u64, ev: &Event, open: &InFlight<'_>) -> Option<String> {
    if open.f != ev.f {
        return Some(format!(
            "process {p} completes {} but its operation in flight (invoked at {}) is {}",
            ev.f,
            open.at(),
            open.f
        ));
    }
    if let Some(key) = ev.key.as_ref().filter(|&k| open.key != Some(k)) {
        let theirs = match open.key {
            Some(k) => format!("is on key {k}"),
            None => "has no key".to_string(),
        };
        return Some(format!(
            "process {p} completes {} on key {key} but its operation in flight (invoked at {}) {theirs}; a completion may omit the key, but not change it",
            ev.f, open.at()
        ));
    }
    if ev.time < open.time {
        return Some(format!(
            "process {p} completes {} at time {} ns, before its invoke ({}) at time {} ns; a completion cannot precede its invoke",
            ev.f, ev.time, open.at(), open.time
        ));
    }
    None
}

/// Pairs each client invoke with the next completion of the same process.
///
/// Rules (DESIGN §4): indexes strictly increase; a process never has two operations in
/// flight; a completion must follow an invoke of the same process and `f`, on the same
/// key if it names one (it may omit it), at a `time` no earlier than the invoke's; an
/// invoke with no completion counts as `info`. `file` is used in error messages.
pub fn pair(events: &[Event], file: &str) -> Result<Paired, HistoryError> {
    let mut pairer = Pairer::with_capacity(events.len() / 2 + 1);
    for ev in events {
        pairer.push(ev.clone(), file)?;
    }
    Ok(pairer.finish())
}

/// Like [`pair`], consuming the events: their values move into the operations instead
/// of being copied (for a caller that needs only the operations).
pub fn pair_owned(events: Vec<Event>, file: &str) -> Result<Paired, HistoryError> {
    let mut pairer = Pairer::with_capacity(events.len() / 2 + 1);
    for ev in events {
        pairer.push(ev, file)?;
    }
    Ok(pairer.finish())
}

/// Pairs events into operations one at a time, under the rules of [`pair`].
#[derive(Debug, Default)]
pub struct Pairer {
    ops: Vec<Operation>,
    faults: Vec<Event>,
    /// Each process's operation in flight (index into `ops`) and the line of its invoke
    /// when the reader said.
    in_flight: HashMap<u64, (usize, Option<usize>)>,
    last_index: Option<u64>,
}

impl Pairer {
    /// A pairer with room for `ops` operations.
    pub fn with_capacity(ops: usize) -> Pairer {
        Pairer {
            ops: Vec::with_capacity(ops),
            ..Pairer::default()
        }
    }

    /// Adds the next event of the history; `file` names it in an error.
    pub fn push(&mut self, ev: Event, file: &str) -> Result<(), HistoryError> {
        self.push_line(ev, file, None)
    }

    /// [`Pairer::push`] for a reader that knows the event's `line`: an error then names
    /// the line (a [`HistoryError::Parse`]), and the line of the invoke it concerns.
    pub fn push_line(
        &mut self,
        ev: Event,
        file: &str,
        line: Option<usize>,
    ) -> Result<(), HistoryError> {
        let structure = |ev: &Event, message: String| match line {
            Some(line) => HistoryError::Parse {
                file: file.to_string(),
                line,
                message,
            },
            None => HistoryError::Structure {
                file: file.to_string(),
                index: ev.index,
                message,
            },
        };
        if let Some(last) = self.last_index.filter(|&last| ev.index <= last) {
            return Err(structure(
                &ev,
                format!(
                    "index {} does not increase (previous event had index {last}); the index is the real-time order of the history",
                    ev.index
                ),
            ));
        }
        self.last_index = Some(ev.index);
        let p = match ev.process {
            Process::Nemesis => {
                self.faults.push(ev);
                return Ok(());
            }
            Process::Client(p) => p,
        };
        let ops = &mut self.ops;
        match ev.kind {
            EventType::Invoke => {
                if let Some(&(open, at)) = self.in_flight.get(&p) {
                    let message = second_invoke(p, &ev, &view(&ops[open], at));
                    return Err(structure(&ev, message));
                }
                self.in_flight.insert(p, (ops.len(), line));
                ops.push(Operation {
                    id: ops.len(),
                    process: p,
                    f: ev.f,
                    key: ev.key,
                    argument: ev.value,
                    result: Value::Null,
                    outcome: Outcome::Info,
                    invoke_index: ev.index,
                    invoke_time: ev.time,
                    complete_index: None,
                    complete_time: None,
                    node: ev.node,
                    error: None,
                });
            }
            kind => {
                let Some((open, at)) = self.in_flight.remove(&p) else {
                    return Err(structure(&ev, orphan_completion(p, &ev)));
                };
                let op = &mut ops[open];
                if let Some(message) = completion_mismatch(p, &ev, &view(op, at)) {
                    return Err(structure(&ev, message));
                }
                op.outcome = match kind {
                    EventType::Ok => Outcome::Ok,
                    EventType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                op.result = ev.value;
                op.complete_index = Some(ev.index);
                op.complete_time = Some(ev.time);
                if ev.node.is_some() {
                    op.node = ev.node;
                }
                op.error = ev.error;
            }
        }
        Ok(())
    }

    /// The client operations paired so far, in invoke order; one still in flight is
    /// `info` with no completion (what a history cut at this point would say of it).
    pub fn ops(&self) -> &[Operation] {
        &self.ops
    }

    /// The operations and nemesis events paired so far (an invoke with no completion
    /// counts as `info`).
    pub fn finish(self) -> Paired {
        Paired {
            ops: self.ops,
            faults: self.faults,
        }
    }
}
