//! Explanations of linearizability witnesses, built as data (`Step`s) in plain words.
//!
//! The steps name each operation's interval in seconds, the real-time order facts between
//! the witness operations (a transitive reduction: only the facts not implied by others),
//! the zone facts when the key is a register with unique values, and finally the values the
//! register could hold when the stuck operation had to take effect.

use super::prepare::KeyHistory;
use super::zones::{Zone, ZoneViolation};
use crate::model::Action;
use crate::verdict::{Minimality, Step, Witness, WitnessOp};
use faultline_history::{seconds, show, Key, Operation, Outcome, Value};

/// The label of the `i`-th witness operation: `A`..`Z`, then `O27`, `O28`, ...
pub(crate) fn label(i: usize) -> String {
    match u8::try_from(i) {
        Ok(b) if b < 26 => char::from(b'A' + b).to_string(),
        _ => format!("O{}", i + 1),
    }
}

/// Everything an explanation is built from.
pub(crate) struct Facts<'a> {
    /// All operations of the history (witness ops index into it through `orig`).
    pub ops: &'a [Operation],
    /// The key, if operations carry keys.
    pub key: Option<&'a Key>,
    /// The witness operations as the checker sees them.
    pub sub: &'a KeyHistory,
    /// The first operation no order explains (index into `sub.ops`), with the values the
    /// register could hold when it had to take effect.
    pub stuck: Option<(usize, Vec<Value>)>,
    /// The zone violation, when the zones check applies to the witness.
    pub zone: Option<ZoneViolation>,
    /// How minimal the witness is.
    pub minimality: Minimality,
    /// Name events by number rather than time (see [`untimed`]).
    pub untimed: bool,
}

/// Whether a history's times are too coarse to explain anything (imports without times
/// number events instead): every time below one millisecond.
pub(crate) fn untimed<'a>(ops: impl IntoIterator<Item = &'a Operation>) -> bool {
    ops.into_iter()
        .all(|o| o.invoke_time < 1_000_000 && o.complete_time.unwrap_or(0) < 1_000_000)
}

/// When the operation was invoked or completed: seconds, or the event number when the
/// history carries no usable times.
pub(crate) fn time_of(op: &Operation, complete: bool, untimed: bool) -> String {
    match (complete, untimed) {
        (false, false) => seconds(op.invoke_time),
        (false, true) => format!("event {}", op.invoke_index),
        (true, false) => op
            .complete_time
            .map(seconds)
            .unwrap_or_else(|| "never".into()),
        (true, true) => op
            .complete_index
            .map(|i| format!("event {i}"))
            .unwrap_or_else(|| "never".into()),
    }
}

fn values_in_words(vals: &[Value]) -> String {
    let shown: Vec<String> = vals.iter().map(show).collect();
    match shown.len() {
        0 => "nothing at all".into(),
        1 => shown[0].clone(),
        n => format!("{} or {}", shown[..n - 1].join(", "), shown[n - 1]),
    }
}

impl Facts<'_> {
    fn op(&self, i: usize) -> Option<&Operation> {
        self.sub.ops.get(i).and_then(|s| self.ops.get(s.orig))
    }

    fn value(&self, id: u32) -> String {
        show(self.sub.model.values.value(id))
    }

    fn interval_step(&self, i: usize, op: &Operation) -> Step {
        let l = label(i);
        let inv = time_of(op, false, self.untimed);
        let text = match (op.outcome, self.sub.ops[i].action) {
            (Outcome::Info, _) => format!(
                "{l} was invoked at {inv} and its outcome is unknown: it may have taken effect at any later time, or not at all."
            ),
            (Outcome::Fail, Action::CasMismatch(x)) => format!(
                "{l} was invoked at {inv} and failed at {}: the value differed from {} when it was compared.",
                time_of(op, true, self.untimed),
                self.value(x)
            ),
            _ => format!(
                "{l} was invoked at {inv} and completed at {}.",
                time_of(op, true, self.untimed)
            ),
        };
        Step::say(text)
    }

    fn real_time_steps(&self) -> Vec<Step> {
        let ops = &self.sub.ops;
        let before = |a: usize, b: usize| !ops[a].info && ops[a].complete < ops[b].invoke;
        let mut steps = Vec::new();
        for a in 0..ops.len() {
            for b in 0..ops.len() {
                if a == b || !before(a, b) {
                    continue;
                }
                let implied =
                    (0..ops.len()).any(|c| c != a && c != b && before(a, c) && before(c, b));
                if implied {
                    continue;
                }
                let (Some(oa), Some(ob)) = (self.op(a), self.op(b)) else {
                    continue;
                };
                let (la, lb) = (label(a), label(b));
                steps.push(Step::relation(
                    "real-time",
                    &la,
                    &lb,
                    format!(
                        "{la} completed at {} before {lb} was invoked at {}, so {la} takes effect before {lb}.",
                        time_of(oa, true, self.untimed),
                        time_of(ob, false, self.untimed)
                    ),
                ));
            }
        }
        steps
    }

    fn zone_words(&self, z: &Zone) -> String {
        let from = match z.f_op {
            Some(i) => format!(
                "{} ({} completed)",
                self.op(i)
                    .map(|o| time_of(o, true, self.untimed))
                    .unwrap_or_default(),
                label(i)
            ),
            None => "the start".into(),
        };
        let to = match z.s_op {
            Some(i) => format!(
                "{} ({} was invoked)",
                self.op(i)
                    .map(|o| time_of(o, false, self.untimed))
                    .unwrap_or_default(),
                label(i)
            ),
            None => "the start".into(),
        };
        format!("from {from} until {to}")
    }

    fn zone_steps(&self, v: &ZoneViolation) -> Vec<Step> {
        match v {
            ZoneViolation::ReadBeforeWrite { read, write } => {
                let (r, w) = (label(*read), label(*write));
                vec![Step::relation(
                    "real-time",
                    &r,
                    &w,
                    format!("{r} returned a value that only {w} writes, yet {r} completed before {w} was invoked."),
                )]
            }
            ZoneViolation::ForwardOverlap(a, b) => vec![
                Step::say(format!(
                    "Value {} had to be the current value {}: it was written by then and still read afterwards.",
                    self.value(a.value),
                    self.zone_words(a)
                )),
                Step::say(format!(
                    "Value {} had to be the current value {}.",
                    self.value(b.value),
                    self.zone_words(b)
                )),
                Step::say("These intervals overlap, and a register holds one value at a time."),
            ],
            ZoneViolation::BackwardInsideForward { inner, outer } => vec![
                Step::say(format!(
                    "Value {} had to be the current value {}.",
                    self.value(outer.value),
                    self.zone_words(outer)
                )),
                Step::say(format!(
                    "Value {} had to become current at some point inside that interval: its write and every read of it overlap only there.",
                    self.value(inner.value)
                )),
            ],
        }
    }

    fn stuck_step(&self, i: usize, states: &[Value]) -> Step {
        let l = label(i);
        let could = values_in_words(states);
        let Some(stuck) = self.sub.ops.get(i) else {
            return Step::say("No linearization exists.");
        };
        let need = match stuck.action {
            Action::Read(v) => format!("{l} read {}", self.value(v)),
            Action::Cas { expect, .. } => {
                format!("{l} found {} and replaced it", self.value(expect))
            }
            Action::CasMismatch(x) => format!("{l} found a value other than {}", self.value(x)),
            Action::Append(_) => format!("{l} appended to a value that is not a string"),
            Action::Write(_) => format!("{l} wrote"),
        };
        Step::say(format!(
            "Under every order of these operations that respects real time, the value could only be {could} when {l} took effect; but {need}. No linearization exists: a contradiction."
        ))
    }

    /// The witness.
    pub fn witness(&self) -> Witness {
        let mut ops = Vec::new();
        let mut steps = Vec::new();
        for i in 0..self.sub.ops.len() {
            if let Some(op) = self.op(i) {
                ops.push(WitnessOp {
                    label: label(i),
                    op: op.clone(),
                });
                steps.push(self.interval_step(i, op));
            }
        }
        steps.extend(self.real_time_steps());
        if let Some(z) = &self.zone {
            steps.extend(self.zone_steps(z));
        }
        if let Some((i, states)) = &self.stuck {
            steps.push(self.stuck_step(*i, states));
        }
        let keyword = self.key.map(|k| format!("key {k}: ")).unwrap_or_default();
        let summary = match &self.stuck {
            Some((i, _)) => match self.op(*i) {
                Some(o) => format!(
                    "Not linearizable: {keyword}{} ({}, completed at {}), but no order of these {} operations that respects real time allows it.",
                    o.describe(),
                    label(*i),
                    time_of(o, true, self.untimed),
                    self.sub.ops.len()
                ),
                None => format!("Not linearizable: {keyword}no order of these operations works."),
            },
            None => format!(
                "Not linearizable: {keyword}no order of these {} operations that respects real time is legal.",
                self.sub.ops.len()
            ),
        };
        let kind = self
            .zone
            .as_ref()
            .map(ZoneViolation::kind)
            .unwrap_or("no-linearization");
        Witness {
            model: "linearizable".into(),
            kind: kind.into(),
            key: self.key.map(|k| k.0.clone()),
            summary,
            ops,
            steps,
            minimality: self.minimality,
        }
    }
}
