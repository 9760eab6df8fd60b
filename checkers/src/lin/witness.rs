//! Witnesses for invalid keys: shrink the failing operations with the same checker, verify
//! the result fails again, then explain it.

use super::bits::{FxMap, FxSet};
use super::explain::{time_of, untimed, Facts};
use super::prepare::{KeyHistory, ThinAir};
use super::search::{search_with, SearchResult};
use super::zones::check_zones;
use super::{decide, Algorithm, Budget, Decided, LinOptions};
use crate::model::Action;
use crate::shrink::shrink;
use crate::verdict::{Minimality, Step, Witness, WitnessOp};
use faultline_history::{show, Key, Operation};
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
/// of a string containing a piece (of an append or put) that no remaining operation
/// provides. Shrinking therefore never turns a real violation into a read of a value nobody
/// wrote.
struct Closure<'a> {
    h: &'a KeyHistory,
    /// For reads of an append key: per distinct piece the read contains, the appends and
    /// puts providing it (any one of them suffices).
    needs: Vec<Vec<Vec<usize>>>,
}

impl<'a> Closure<'a> {
    fn new(h: &'a KeyHistory) -> Closure<'a> {
        let mut needs = vec![Vec::new(); h.ops.len()];
        if h.has_append() {
            // Distinct pieces, each with every operation that provides it.
            let mut providers: FxMap<&str, Vec<usize>> = FxMap::default();
            for (i, op) in h.ops.iter().enumerate() {
                if let Action::Append(p) | Action::Write(p) = op.action {
                    if let Some(s) = h.model.values.value(p).as_str() {
                        if !s.is_empty() {
                            providers.entry(s).or_default().push(i);
                        }
                    }
                }
            }
            let mut pieces: Vec<(&str, Vec<usize>)> = providers.into_iter().collect();
            pieces.sort_unstable();
            for (i, op) in h.ops.iter().enumerate() {
                if let Action::Read(v) = op.action {
                    if let Some(s) = h.model.values.value(v).as_str() {
                        needs[i] = pieces
                            .iter()
                            .filter(|(p, _)| s.contains(p))
                            .map(|(_, who)| who.clone())
                            .collect();
                    }
                }
            }
        }
        Closure { h, needs }
    }

    fn close(&self, mut cand: Vec<usize>) -> Vec<usize> {
        let ops = &self.h.ops;
        let appends = self.h.has_append();
        loop {
            let present: FxSet<usize> = cand.iter().copied().collect();
            // Each value that can exist, with the earliest time it can: the initial value,
            // written values, then (well-founded, so cas operations cannot support each other
            // in a circle) the new values of cas operations whose expected value can exist
            // before they complete.
            let mut written: FxMap<u32, u64> = FxMap::default();
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
            let before = cand.len();
            cand.retain(|&i| {
                let done = ops[i].complete;
                match ops[i].action {
                    Action::Read(_) if appends => self.needs[i]
                        .iter()
                        .all(|who| who.iter().any(|j| present.contains(j))),
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

/// Failing cuts longer than this are first cut to their shortest failing suffix.
const WINDOW_FROM: usize = 16;

/// A witness of at most this many operations is not searched for a smaller one elsewhere.
const SMALL_ENOUGH: usize = 4;

/// Candidates with more observations than this have them shrunk first.
const OBS_FIRST_FROM: usize = 8;

/// Time and size of one witness's construction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ShrinkStats {
    /// Candidates re-checked.
    pub checks: usize,
    /// Operations left by the window cut whose witness was kept (before delta debugging).
    pub window: usize,
}

/// Re-checks candidates (indices into the key's operations) with the same checker.
struct Shrinker<'a> {
    h: &'a KeyHistory,
    closure: Closure<'a>,
    /// Whether candidates are closed (see [`Closure`]); not when the violation itself is a
    /// read the closure would drop.
    supported: bool,
    budget: Budget,
    algorithm: Algorithm,
    checks: usize,
    /// Whether some check ran out of budget (then no minimality is claimed).
    unsure: bool,
    /// Checks allowed in all (past it, candidates count as passing and `unsure` is set).
    limit: usize,
}

impl Shrinker<'_> {
    fn close(&self, c: Vec<usize>) -> Vec<usize> {
        if self.supported {
            self.closure.close(c)
        } else {
            c
        }
    }

    fn fails_with(&mut self, c: &[usize], algorithm: Algorithm) -> bool {
        if c.is_empty() {
            return false;
        }
        if self.checks >= self.limit {
            self.unsure = true;
            return false;
        }
        self.checks += 1;
        let d = decide(&self.h.subset(c), algorithm, &self.budget).0;
        self.unsure |= matches!(d, Decided::Unknown(_));
        d.invalid()
    }

    fn fails(&mut self, c: &[usize]) -> bool {
        self.fails_with(c, self.algorithm)
    }

    /// A short suffix of `cand` (which fails) that fails with its support, within a quarter
    /// of the shortest, found by doubling and then bisection: violations are local in time,
    /// so this costs a few checks of about the witness's own size, whatever the key's size.
    fn window(&mut self, cand: Vec<usize>) -> Vec<usize> {
        let n = cand.len();
        if n <= WINDOW_FROM {
            return cand;
        }
        // `good` fails, `bad` (a shorter suffix) does not.
        let mut good = n;
        let mut bad = 0usize;
        let mut w = 8usize;
        while w < good && !self.budget.expired() {
            let window = self.close(cand[n - w..].to_vec());
            if self.fails(&window) {
                good = w;
                break;
            }
            bad = w;
            w *= 2;
        }
        // Bisection to within a quarter: delta debugging does the rest.
        while good - bad > (good / 4).max(2) && !self.budget.expired() {
            let mid = bad + (good - bad) / 2;
            let window = self.close(cand[n - mid..].to_vec());
            if self.fails(&window) {
                good = mid;
            } else {
                bad = mid;
            }
        }
        if good < n {
            self.close(cand[n - good..].to_vec())
        } else {
            cand
        }
    }

    /// Shrinks `cand` (closed, failing) to a 1-minimal set before `deadline`: when it holds
    /// more than [`OBS_FIRST_FROM`] observations, those first (they support nothing, so
    /// removing them never cascades, and most go in a few bisections), then everything, one
    /// cluster at a time. Returns the set and whether it is 1-minimal.
    fn minimise(&mut self, cand: Vec<usize>, deadline: Option<Instant>) -> (Vec<usize>, bool) {
        let h = self.h;
        let (obs, fixed): (Vec<usize>, Vec<usize>) = cand
            .iter()
            .partition(|&&i| h.ops[i].action.is_observation());
        let merged = |c: &[usize]| {
            let mut m: Vec<usize> = fixed.iter().chain(c).copied().collect();
            m.sort_unstable();
            m
        };
        let mut cand = cand.clone();
        if obs.len() > OBS_FIRST_FROM {
            let r = shrink(
                obs,
                |c| c,
                |c| {
                    let m = self.close(merged(c));
                    self.fails(&m)
                },
                deadline,
            );
            cand = self.close(merged(&r.items));
        }
        let this = std::cell::RefCell::new(self);
        let r = shrink(
            cand,
            |c| this.borrow().close(c),
            |c| this.borrow_mut().fails(c),
            deadline,
        );
        (r.items, r.one_minimal)
    }
}

/// Builds the witness of an invalid key decided as `d`.
///
/// The failing operations are first cut down cheaply, then shrunk one cluster at a time:
/// 1. the first cut: for the search, the operations invoked before the stuck operation
///    returned (when the search failed at that return, they fail by construction); for
///    the zones, the operations of the violating zones;
/// 2. the window cut: a short failing suffix of that cut (see [`Shrinker::window`]);
/// 3. delta debugging with the closure (see [`crate::shrink`]) down to a 1-minimal set.
///
/// For the search, the same is also tried from the whole key (the violation nearest its
/// end, which is often a smaller one), with at most about as many checks as the first
/// took, and the smaller witness kept.
pub(crate) fn build(
    ops: &[Operation],
    key: Option<&Key>,
    h: &KeyHistory,
    d: &Decided,
    opts: &LinOptions,
    budget: &Budget,
    stats: &mut ShrinkStats,
) -> Witness {
    let all: Vec<usize> = (0..h.ops.len()).collect();
    let first: Vec<usize> = match d {
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
    let started = Instant::now();
    let cap = started + SHRINK_CAP;
    let deadline = Some(budget.deadline.map_or(cap, |d| d.min(cap)));
    let mut s = Shrinker {
        h,
        closure: Closure::new(h),
        supported: true,
        budget: Budget::new(deadline, budget.limit),
        algorithm: opts.algorithm,
        checks: 0,
        unsure: false,
        limit: usize::MAX,
    };
    // The first cut, with its support; without support (a read of a piece nobody
    // provides, which the closure would drop) the shrinking does without closure.
    let search = matches!(d, Decided::Search { .. });
    let mut cand = s.close(first.clone());
    let mut whole_tried = false;
    // The operations invoked before the stuck one returned fail by construction when the
    // search failed at that return (it had seen nothing else by then), unless the closure
    // took some of them; not when it failed at the history's end. Otherwise a shorter
    // failing window, checked on its own, makes checking the whole cut unnecessary.
    let known = matches!(d, Decided::Search { at_end: false, .. }) && cand.len() == first.len();
    let mut windowed = false;
    let mut verified = known;
    if search && !known {
        // Shorter: it failed a check. As long: no shorter suffix fails (no need to try
        // again), and the cut itself is still to be checked.
        let n = cand.len();
        cand = s.window(cand);
        windowed = true;
        verified = cand.len() < n;
    }
    if !verified && !s.fails(&cand) {
        windowed = false;
        cand = s.close(all.clone());
        whole_tried = true;
        if !s.fails(&cand) {
            s.supported = false;
            cand = first.clone();
            if !s.fails(&cand) {
                cand = all.clone();
            }
        }
    }
    let mut best = if search && !windowed {
        s.window(cand)
    } else {
        cand
    };
    stats.window = best.len();
    let mut minimality = Minimality::NotMinimised;
    if opts.shrink {
        let cut = best.clone();
        let (items, one_minimal) = s.minimise(best.clone(), deadline);
        let mut best_minimal = one_minimal && !s.unsure;
        best = items;
        // The violation nearest the key's end, with about as many checks as the first
        // took (a count, not a time, so the witness does not depend on the machine's load).
        if search
            && !whole_tried
            && s.supported
            && first.len() < all.len()
            && best.len() > SMALL_ENOUGH
        {
            let unsure_before = s.unsure;
            s.unsure = false;
            s.limit = 2 * s.checks + 64;
            let whole = s.close(all.clone());
            if s.fails(&whole) {
                let window = s.window(whole);
                let window_len = window.len();
                let (items, one_minimal) = s.minimise(window, deadline);
                // Every set the shrinking keeps failed a check, even one cut short.
                if items.len() < best.len() {
                    best = items;
                    best_minimal = one_minimal && !s.unsure;
                    stats.window = window_len;
                }
            }
            s.unsure = unsure_before;
            s.limit = usize::MAX;
        }
        // Verify with the general search, independently of the zones.
        if s.fails_with(&best, Algorithm::Search) {
            if best_minimal {
                minimality = Minimality::OneMinimal;
            }
        } else {
            // Cannot happen with a sound checker; keep the unshrunk cut.
            best = cut;
        }
    }
    stats.checks = s.checks;
    let sub = h.subset(&best);
    // Without merging unobservable append states, so the explanation can name them.
    let stuck = match search_with(&sub, &s.budget, u64::MAX, false).0 {
        SearchResult::Invalid {
            fail_op, states, ..
        } => Some((fail_op, states)),
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
