//! Witnesses for invalid keys: shrink the failing operations with the same checker, verify
//! the result fails again, then explain it.

use super::explain::{time_of, untimed, Facts};
use super::prepare::{KeyHistory, ThinAir};
use super::search::{search, SearchResult};
use super::zones::check_zones;
use super::{decide, Algorithm, Budget, Decided, LinOptions};
use crate::model::Action;
use crate::shrink::shrink;
use crate::verdict::{Minimality, Step, Witness, WitnessOp};
use faultline_history::{show, Key, Operation};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Shrinking stops after this long when the check has no time limit.
const SHRINK_CAP: Duration = Duration::from_secs(10);

/// The witness of a read (or successful compare) of a value nothing wrote.
pub(crate) fn thin_air(ops: &[Operation], key: Option<&Key>, t: &ThinAir) -> Witness {
    let mut wops = Vec::new();
    let mut steps = Vec::new();
    let v = show(&t.value);
    if let Some(r) = ops.get(t.reader) {
        wops.push(WitnessOp {
            label: "A".into(),
            op: r.clone(),
        });
        steps.push(Step::say(format!(
            "A completed at {} having observed {v}.",
            time_of(r, true, untimed([r]))
        )));
    }
    let kind = match t.failed_writer.and_then(|i| ops.get(i)) {
        Some(w) => {
            wops.push(WitnessOp {
                label: "B".into(),
                op: w.clone(),
            });
            steps.push(Step::relation(
                "reads-from",
                "B",
                "A",
                format!("B tried to write {v} but failed, so it did not take effect; no other operation writes {v}."),
            ));
            "aborted-read"
        }
        None => {
            steps.push(Step::say(format!(
                "No operation on this key writes {v}, and it is not the initial value."
            )));
            "thin-air-read"
        }
    };
    let keyword = key.map(|k| format!("key {k}: ")).unwrap_or_default();
    let summary = match ops.get(t.reader) {
        Some(r) => format!(
            "Not linearizable: {keyword}{}, a value no operation wrote.",
            r.describe()
        ),
        None => format!("Not linearizable: {keyword}a read of {v}, a value no operation wrote."),
    };
    Witness {
        model: "linearizable".into(),
        kind: kind.into(),
        key: key.map(|k| k.0.clone()),
        summary,
        ops: wops,
        steps,
        minimality: Minimality::ByConstruction,
    }
}

/// Removes from `cand` (indices into `h.ops`, ascending) every operation left without
/// support: a read or compare of a value no remaining operation invoked before it
/// completed writes, a failed compare that no such value could have failed against, a read
/// of a string containing the piece of an append (or put) no longer there. Shrinking
/// therefore never turns a real violation into a read of a value nobody wrote.
struct Closure<'a> {
    h: &'a KeyHistory,
    /// For reads of an append key: the appends and puts whose string the read contains.
    needs: Vec<Vec<usize>>,
}

impl<'a> Closure<'a> {
    fn new(h: &'a KeyHistory) -> Closure<'a> {
        let mut needs = vec![Vec::new(); h.ops.len()];
        if h.has_append() {
            let pieces: Vec<(usize, String)> = h
                .ops
                .iter()
                .enumerate()
                .filter_map(|(i, op)| match op.action {
                    Action::Append(p) | Action::Write(p) => {
                        h.model.values.value(p).as_str().map(|s| (i, s.to_string()))
                    }
                    _ => None,
                })
                .collect();
            for (i, op) in h.ops.iter().enumerate() {
                if let Action::Read(v) = op.action {
                    if let Some(s) = h.model.values.value(v).as_str() {
                        needs[i] = pieces
                            .iter()
                            .filter(|(_, p)| !p.is_empty() && s.contains(p.as_str()))
                            .map(|&(j, _)| j)
                            .collect();
                    }
                }
            }
        }
        Closure { h, needs }
    }

    fn close(&self, mut cand: Vec<usize>) -> Vec<usize> {
        let ops = &self.h.ops;
        loop {
            let present: HashSet<usize> = cand.iter().copied().collect();
            // Each value that can exist, with the earliest time it can: the initial value,
            // written values, then (well-founded, so cas operations cannot support each other
            // in a circle) the new values of cas operations whose expected value can exist
            // before they complete.
            let mut written: HashMap<u32, u64> = HashMap::new();
            written.insert(self.h.initial, 0);
            for &i in &cand {
                if let Action::Write(v) = ops[i].action {
                    let t = written.entry(v).or_insert(u64::MAX);
                    *t = (*t).min(ops[i].invoke);
                }
            }
            loop {
                let mut changed = false;
                for &i in &cand {
                    let Action::Cas { expect, new } = ops[i].action else {
                        continue;
                    };
                    let Some(&te) = written.get(&expect) else {
                        continue;
                    };
                    if te >= ops[i].complete {
                        continue;
                    }
                    let t = te.max(ops[i].invoke);
                    let cur = written.entry(new).or_insert(u64::MAX);
                    if t < *cur {
                        *cur = t;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
            let appends = self.h.has_append();
            let before = cand.len();
            cand.retain(|&i| {
                let done = ops[i].complete;
                match ops[i].action {
                    Action::Read(_) if appends => self.needs[i].iter().all(|j| present.contains(j)),
                    Action::Read(v) | Action::Cas { expect: v, .. } => {
                        written.get(&v).is_some_and(|&t| t < done)
                    }
                    Action::CasMismatch(x) => written.iter().any(|(&w, &t)| w != x && t < done),
                    _ => true,
                }
            });
            if cand.len() == before {
                return cand;
            }
        }
    }
}

/// Builds the witness of an invalid key decided as `d`.
pub(crate) fn build(
    ops: &[Operation],
    key: Option<&Key>,
    h: &KeyHistory,
    d: &Decided,
    opts: &LinOptions,
    budget: &Budget,
    checks: &mut usize,
) -> Witness {
    let all: Vec<usize> = (0..h.ops.len()).collect();
    let mut cand: Vec<usize> = match d {
        Decided::Zones(v) => v.ops(),
        Decided::Search { fail_op, .. } => {
            let end = h.ops.get(*fail_op).map_or(u64::MAX, |o| o.complete);
            all.iter()
                .copied()
                .filter(|&i| h.ops[i].invoke < end)
                .collect()
        }
        _ => all.clone(),
    };
    let now = Instant::now();
    let cap = now + SHRINK_CAP;
    let deadline = Some(budget.deadline.map_or(cap, |d| d.min(cap)));
    let sb = Budget::new(deadline, budget.limit);
    let fails = |c: &[usize], algo: Algorithm| decide(&h.subset(c), algo, &sb).0;
    let closure = Closure::new(h);
    *checks += 1;
    if !fails(&cand, opts.algorithm).invalid() {
        cand = all;
    } else if matches!(d, Decided::Search { .. }) {
        // Violations are local: the last few operations before the stuck one usually
        // suffice. Try growing windows (with their support) before shrinking in earnest.
        let mut w = 8;
        while w < cand.len() && !sb.expired() {
            let window = closure.close(cand[cand.len() - w..].to_vec());
            *checks += 1;
            if !window.is_empty() && fails(&window, opts.algorithm).invalid() {
                cand = window;
                break;
            }
            w *= 4;
        }
    }
    let mut minimality = Minimality::NotMinimised;
    if opts.shrink {
        let mut unsure = false;
        let r = shrink(
            cand.clone(),
            |c| closure.close(c),
            |c| {
                let d = fails(c, opts.algorithm);
                unsure |= matches!(d, Decided::Unknown(_));
                d.invalid()
            },
            deadline,
        );
        *checks += r.checks;
        // Verify with the general search, independently of the zones.
        *checks += 1;
        let again = decide(&h.subset(&r.items), Algorithm::Search, &sb).0;
        if again.invalid() {
            cand = r.items;
            if r.one_minimal && !unsure {
                minimality = Minimality::OneMinimal;
            }
        }
    }
    let sub = h.subset(&cand);
    let stuck = match search(&sub, &sb, u64::MAX).0 {
        SearchResult::Invalid { fail_op, states } => Some((fail_op, states)),
        _ => None,
    };
    let zone = if sub.zones_apply() {
        check_zones(&sub).err().map(|b| *b)
    } else {
        None
    };
    Facts {
        ops,
        key,
        sub: &sub,
        stuck,
        zone,
        minimality,
        untimed: untimed(sub.ops.iter().filter_map(|o| ops.get(o.orig))),
    }
    .witness()
}
