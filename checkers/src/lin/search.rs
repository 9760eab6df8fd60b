//! A just-in-time linearization search (after Lowe's JIT graph search, as in Knossos'
//! `linear`), with the reductions that make it fast on recorded histories.
//!
//! The history is scanned once, event by event. A *configuration* is the model state plus
//! the set of pending operations already linearized. Every configuration reachable at the
//! current point is kept (deduplicated). When an `ok` operation `o` returns, each
//! configuration either has `o` linearized already (it is simply retired) or is extended by
//! linearizing any sequence of pending state-changing operations and then `o`. If no
//! configuration survives, the history is not linearizable and `o` is the first operation
//! that no order can explain. `info` operations never return: they stay pending forever and
//! may be linearized before any later `ok` operation, or never.
//!
//! Reductions, each a dominance argument (the kept configuration can do everything the
//! dropped one can):
//! - observations (reads, failed compares) change nothing, so one is linearized as soon as
//!   the state allows it (`(L ∪ {r}, s)` dominates `(L, s)`); the search never branches on
//!   them;
//! - an `info` operation can always be left out: `(L, s)` dominates `(L ∪ {i}, s)`;
//! - configurations are deduplicated by `(linearized pending set, state)`.

use super::bits::{Bits, FxSet, Wide};
use super::prepare::KeyHistory;
use super::reduce::{apply, can_reach, reduce, Junk, Sym, Work, JUNK};
use super::Budget;
use crate::model::{Action, KeyModel};

/// What the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SearchResult {
    /// Some order respects real time and the model.
    Valid,
    /// No order explains operation `fail_op` (index into the key's ops) when it returned.
    Invalid {
        /// The first `ok` operation no configuration could linearize.
        fail_op: usize,
        /// The values in which it was tried (every state reachable just before it returned).
        states: Vec<faultline_history::Value>,
        /// Whether it failed at the end of the history (an overdue write that no
        /// configuration could linearize) rather than when `fail_op` returned.
        at_end: bool,
    },
    /// Budget exhausted.
    Unknown(String),
    /// More configurations than the caller's cap were expanded.
    Capped,
}

/// Counters of one search.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SearchStats {
    /// Configurations expanded.
    pub explored: u64,
    /// Largest set of configurations kept between two events.
    pub max_frontier: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Config<B> {
    /// Linearized operations, by slot.
    pub(crate) bits: B,
    /// The model state.
    pub(crate) state: u32,
}

/// Runs the search on one key.
///
/// Stops with [`SearchResult::Capped`] after expanding `cap` configurations.
pub(crate) fn search(h: &KeyHistory, budget: &Budget, cap: u64) -> (SearchResult, SearchStats) {
    search_with(h, budget, cap, true)
}

/// [`search`], optionally without merging unobservable append states into one (so that
/// [`SearchResult::Invalid`] names every string the key could hold, for explanations).
pub(crate) fn search_with(
    h: &KeyHistory,
    budget: &Budget,
    cap: u64,
    merge_junk: bool,
) -> (SearchResult, SearchStats) {
    let events = schedule(h);
    for width in [128usize, 1024, 16384] {
        let mut model = h.model.clone();
        let r = if width == 128 {
            run::<u128>(h, &mut model, &events, width, budget, cap, merge_junk)
        } else {
            run::<Wide>(h, &mut model, &events, width, budget, cap, merge_junk)
        };
        if let Some(r) = r {
            return r;
        }
    }
    (
        SearchResult::Unknown("more than 16384 operations open at once on one key".into()),
        SearchStats::default(),
    )
}

/// Events in index order: `(op, is_return)`; `info` operations never return.
fn schedule(h: &KeyHistory) -> Vec<(usize, bool)> {
    let mut ev: Vec<(u64, usize, bool)> = Vec::with_capacity(h.ops.len() * 2);
    for (i, op) in h.ops.iter().enumerate() {
        ev.push((op.invoke, i, false));
        if !op.info {
            ev.push((op.complete, i, true));
        }
    }
    ev.sort_unstable_by_key(|e| e.0);
    ev.into_iter().map(|(_, i, r)| (i, r)).collect()
}

/// Approximate bytes per stored configuration (value, hash table slot and control byte).
fn entry_bytes<B>(width: usize) -> usize {
    std::mem::size_of::<Config<B>>() + 24 + if width > 128 { width / 8 } else { 0 }
}

/// Whether an action is blind: always applies and its result tells nothing, so once it
/// returns its linearization can be deferred until something observes the state.
fn blind(a: Action) -> bool {
    matches!(a, Action::Write(_) | Action::Append(_))
}

/// Slot bookkeeping: which operation occupies each slot, and the real-time constraints.
pub(crate) struct Slots<B> {
    pub(crate) op: Vec<usize>,
    pub(crate) free: Vec<usize>,
    pub(crate) used: usize,
    /// Slots of operations still open.
    pub(crate) open: B,
    /// Of them, observations (never branched on).
    pub(crate) obs: B,
    /// Of them, `info` operations.
    pub(crate) info: B,
    /// Of them, blind operations that returned but are not linearized in every configuration.
    pub(crate) overdue: B,
    /// Per slot: the overdue operations that must be linearized before this one.
    pub(crate) before: Vec<B>,
}

impl<B: Bits> Slots<B> {
    /// Bitsets of `width` slots, of which at most `slots` are used (no more operations
    /// than the key has can be open at once).
    fn new(width: usize, slots: usize) -> Self {
        let slots = slots.clamp(1, width);
        Slots {
            op: vec![usize::MAX; slots],
            free: Vec::new(),
            used: 0,
            open: B::empty(width),
            obs: B::empty(width),
            info: B::empty(width),
            overdue: B::empty(width),
            before: vec![B::empty(width); slots],
        }
    }

    /// A slot for operation `i`, or `None` when the width is exhausted.
    fn alloc(&mut self, i: usize) -> Option<usize> {
        let s = match self.free.iter().enumerate().min_by_key(|(_, &s)| s) {
            Some((pos, _)) => self.free.swap_remove(pos),
            None if self.used < self.op.len() => {
                self.used += 1;
                self.used - 1
            }
            None => return None,
        };
        self.op[s] = i;
        self.open.set(s);
        self.before[s] = self.overdue.clone();
        Some(s)
    }

    fn release(&mut self, s: usize) {
        self.open.clear(s);
        self.obs.clear(s);
        self.info.clear(s);
        self.overdue.clear(s);
        self.op[s] = usize::MAX;
        let open = self.open.clone();
        open.for_each(|t| self.before[t].clear(s));
        self.free.push(s);
    }
}

/// Runs the search with bitsets of `width` slots; `None` if that is too narrow.
#[allow(clippy::too_many_arguments)]
fn run<B: Bits>(
    h: &KeyHistory,
    model: &mut KeyModel,
    events: &[(usize, bool)],
    width: usize,
    budget: &Budget,
    cap: u64,
    merge_junk: bool,
) -> Option<(SearchResult, SearchStats)> {
    let mut stats = SearchStats::default();
    let mut sl: Slots<B> = Slots::new(width, h.ops.len());
    let mut slot_of: Vec<usize> = vec![usize::MAX; h.ops.len()];
    // Pending observations (slot, action).
    let mut observers: Vec<(usize, Action)> = Vec::new();
    let mut frontier: Vec<Config<B>> = vec![Config {
        bits: B::empty(width),
        state: h.initial,
    }];
    let mut next: FxSet<Config<B>> = FxSet::default();
    let mut work: Work<B> = Work::default();
    let mut reserved = 0usize;
    let per = entry_bytes::<B>(width);
    let mut result = SearchResult::Valid;
    let appends = h.has_append();

    'events: for &(i, ret) in events {
        let op = &h.ops[i];
        if !ret {
            let slot = sl.alloc(i)?;
            slot_of[i] = slot;
            if op.info {
                sl.info.set(slot);
            }
            if op.action.is_observation() {
                sl.obs.set(slot);
                observers.push((slot, op.action));
                let before = &sl.before[slot];
                for c in frontier.iter_mut() {
                    if before.subset_of(&c.bits) && apply(model, c.state, op.action).is_some() {
                        c.bits.set(slot);
                    }
                }
            }
            continue;
        }
        let slot = slot_of[i];
        if blind(op.action) {
            sl.overdue.set(slot);
            retire(&mut sl, &mut frontier);
            continue;
        }
        // The return of an ok operation that observes the state.
        let sym = Sym::of(h, &sl);
        if !sym.classes.is_empty() {
            sym.canonical(&mut frontier);
        }
        next.clear();
        work.clear();
        for c in frontier.drain(..) {
            if c.bits.get(slot) {
                let mut c = c;
                c.bits.clear(slot);
                next.insert(c);
            } else {
                work.push(c, &sl.info, &sl.obs);
            }
        }
        let mut tried_states: Vec<u32> = Vec::new();
        let target = match op.action {
            Action::Read(v) if appends => model.values.value(v).as_str().map(str::to_owned),
            _ => None,
        };
        let junk = target
            .as_ref()
            .filter(|_| merge_junk)
            .map(|t| Junk::new(model, h, &sl, t));
        while let Some(x) = work.pop() {
            stats.explored += 1;
            if stats.explored > cap {
                result = SearchResult::Capped;
                break 'events;
            }
            if stats.explored & 2047 == 0 {
                let now = (work.stored + next.capacity()) * per;
                if let Err(why) = budget.charge(&mut reserved, now) {
                    result = SearchResult::Unknown(why);
                    break 'events;
                }
            }
            let ready = sl.before[slot].subset_of(&x.bits);
            if ready && x.state != JUNK && !tried_states.contains(&x.state) {
                tried_states.push(x.state);
            }
            if let Some(t) = &target {
                if !can_reach(model, h, &sl, &x, t) {
                    continue;
                }
            }
            if ready {
                if let Some(s2) = apply(model, x.state, op.action) {
                    let mut bits = x.bits.clone();
                    close(model, &observers, &sl.before, &mut bits, s2, slot);
                    bits.clear(slot);
                    next.insert(Config { bits, state: s2 });
                }
            }
            expand(
                model,
                h,
                &sl,
                &sym,
                &observers,
                &x,
                slot,
                junk.as_ref(),
                &mut |y| {
                    work.push(y, &sl.info, &sl.obs);
                },
            );
        }
        stats.max_frontier = stats.max_frontier.max(next.len());
        if next.is_empty() {
            result = invalid(model, i, tried_states, false);
            break;
        }
        observers.retain(|&(s, _)| s != slot);
        sl.release(slot);
        frontier.extend(next.drain());
        retire(&mut sl, &mut frontier);
        if frontier.len() > 1 {
            reduce(&mut frontier, &sl.info, &sl.obs);
        }
    }
    if result == SearchResult::Valid {
        result = finish(model, h, &sl, &observers, &frontier, &mut stats, budget);
    }
    budget.release(reserved);
    Some((result, stats))
}

fn invalid(model: &KeyModel, op: usize, mut states: Vec<u32>, at_end: bool) -> SearchResult {
    states.sort_unstable();
    SearchResult::Invalid {
        at_end,
        fail_op: op,
        states: states
            .iter()
            .map(|&s| model.values.value(s).clone())
            .collect(),
    }
}

/// Calls `out` with every configuration one linearization step away from `x`: a pending or
/// overdue state-changing operation other than `skip`, whose real-time predecessors are
/// linearized.
#[allow(clippy::too_many_arguments)]
fn expand<B: Bits>(
    model: &mut KeyModel,
    h: &KeyHistory,
    sl: &Slots<B>,
    sym: &Sym,
    observers: &[(usize, Action)],
    x: &Config<B>,
    skip: usize,
    junk: Option<&Junk>,
    out: &mut impl FnMut(Config<B>),
) {
    let candidates = sl.open.and_not(&sl.obs).and_not(&x.bits);
    let mut found: Vec<Config<B>> = Vec::new();
    candidates.for_each(|p| {
        if p == skip || !sl.before[p].subset_of(&x.bits) {
            return;
        }
        // Of interchangeable info operations, only the first unused one is tried.
        let q = sym.prev.get(p).copied().unwrap_or(usize::MAX);
        if q != usize::MAX && !x.bits.get(q) {
            return;
        }
        let a = h.ops[sl.op[p]].action;
        if let Some(s2) = apply(model, x.state, a) {
            let mut bits = x.bits.clone();
            bits.set(p);
            close(model, observers, &sl.before, &mut bits, s2, skip);
            let state = match junk {
                Some(j) if j.junk(model, s2) => JUNK,
                _ => s2,
            };
            found.push(Config { bits, state });
        }
    });
    for y in found {
        out(y);
    }
}

/// Overdue blind operations linearized in every configuration are done: forget them.
fn retire<B: Bits>(sl: &mut Slots<B>, frontier: &mut Vec<Config<B>>) {
    let mut done = sl.overdue.clone();
    for c in frontier.iter() {
        done = done.and(&c.bits);
    }
    let mut any = false;
    done.for_each(|s| {
        any = true;
        for c in frontier.iter_mut() {
            c.bits.clear(s);
        }
    });
    if !any {
        return;
    }
    let mut gone = Vec::new();
    done.for_each(|s| gone.push(s));
    for s in gone {
        sl.release(s);
    }
    let mut set: FxSet<Config<B>> = FxSet::default();
    frontier.retain(|c| set.insert(c.clone()));
}

/// At the end of the history, some configuration must be able to linearize every overdue
/// operation.
fn finish<B: Bits>(
    model: &mut KeyModel,
    h: &KeyHistory,
    sl: &Slots<B>,
    observers: &[(usize, Action)],
    frontier: &[Config<B>],
    stats: &mut SearchStats,
    budget: &Budget,
) -> SearchResult {
    let mut start: Vec<Config<B>> = frontier.to_vec();
    let mut states = Vec::new();
    let sym = Sym::of(h, sl);
    if !sym.classes.is_empty() {
        sym.canonical(&mut start);
    }
    let mut work: Work<B> = Work::default();
    for c in start {
        work.push(c, &sl.info, &sl.obs);
    }
    while let Some(x) = work.pop() {
        stats.explored += 1;
        if stats.explored & 2047 == 0 && budget.expired() {
            return SearchResult::Unknown("time limit reached".into());
        }
        if sl.overdue.subset_of(&x.bits) {
            return SearchResult::Valid;
        }
        if !states.contains(&x.state) {
            states.push(x.state);
        }
        expand(
            model,
            h,
            sl,
            &sym,
            observers,
            &x,
            usize::MAX,
            None,
            &mut |y| {
                work.push(y, &sl.info, &sl.obs);
            },
        );
    }
    let mut first = usize::MAX;
    sl.overdue.for_each(|s| first = first.min(sl.op[s]));
    invalid(model, first, states, true)
}

/// Linearizes every pending observation the state `s` allows (never `skip`, the op being
/// returned, which is handled by the caller).
#[inline]
fn close<B: Bits>(
    model: &mut KeyModel,
    observers: &[(usize, Action)],
    before: &[B],
    bits: &mut B,
    s: u32,
    skip: usize,
) {
    for &(slot, a) in observers {
        if slot != skip
            && !bits.get(slot)
            && before[slot].subset_of(bits)
            && apply(model, s, a).is_some()
        {
            bits.set(slot);
        }
    }
}
