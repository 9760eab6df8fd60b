//! Reductions of the search's configurations: dominance between configurations,
//! interchangeable `info` operations, and (for append keys) states no one can observe.
//! Each keeps, of two configurations, one that can do everything the other can.

use super::bits::{Bits, FxMap, FxSet};
use super::prepare::KeyHistory;
use super::search::{Config, Slots};
use crate::model::{Action, KeyModel};
use faultline_history::Value;

/// A state no operation can observe any more (see [`Junk`]).
pub(crate) const JUNK: u32 = u32::MAX;

/// A model step that knows [`JUNK`]: appends keep it junk, a write replaces it, nothing can
/// read it or compare it equal, and every failed compare holds there.
#[inline]
pub(crate) fn apply(model: &mut KeyModel, s: u32, a: Action) -> Option<u32> {
    if s != JUNK {
        return model.step(s, a);
    }
    match a {
        Action::Append(_) | Action::CasMismatch(_) => Some(JUNK),
        Action::Write(v) => Some(v),
        Action::Read(_) | Action::Cas { .. } => None,
    }
}

/// While searching for the read of string `target` on an append key: a string state that
/// is not a prefix of `target`, and that no open operation could observe (no open read,
/// compare or failed compare has a value starting with it), can only be overwritten before
/// the read. Its exact content no longer matters, so every such state is merged into
/// [`JUNK`]: the orders of appends absorbed by a later write then collapse into one.
pub(crate) struct Junk {
    target: String,
    watched: Vec<String>,
}

impl Junk {
    pub(crate) fn new<B: Bits>(
        model: &KeyModel,
        h: &KeyHistory,
        sl: &Slots<B>,
        target: &str,
    ) -> Junk {
        let mut watched = Vec::new();
        sl.open.for_each(|p| {
            let v = match h.ops[sl.op[p]].action {
                Action::Read(v) | Action::CasMismatch(v) | Action::Cas { expect: v, .. } => v,
                _ => return,
            };
            match model.values.value(v) {
                Value::String(s) => watched.push(s.clone()),
                Value::Null => watched.push(String::new()),
                _ => {}
            }
        });
        Junk {
            target: target.to_string(),
            watched,
        }
    }

    pub(crate) fn junk(&self, model: &KeyModel, s: u32) -> bool {
        let Value::String(cur) = model.values.value(s) else {
            return false;
        };
        !self.target.starts_with(cur.as_str())
            && !self.watched.iter().any(|w| w.starts_with(cur.as_str()))
    }
}

/// Whether configuration `x` can still reach the string `target` (for a read of an append
/// key): its state is a prefix of `target`, or some operation left could replace the state.
pub(crate) fn can_reach<B: Bits>(
    model: &KeyModel,
    h: &KeyHistory,
    sl: &Slots<B>,
    x: &Config<B>,
    target: &str,
) -> bool {
    let prefix = |v: u32| match model.values.value(v) {
        Value::Null => true,
        Value::String(s) => target.starts_with(s.as_str()),
        _ => false,
    };
    if x.state != JUNK && prefix(x.state) {
        return true;
    }
    let mut reset = false;
    sl.open.and_not(&sl.obs).and_not(&x.bits).for_each(|p| {
        reset |= match h.ops[sl.op[p]].action {
            Action::Write(v) => prefix(v),
            Action::Cas { .. } => true,
            _ => false,
        };
    });
    reset
}

/// The configurations left to expand during one return, explored with the fewest `info`
/// operations used first, and those already reached. A configuration is skipped when one
/// reached before dominates it: same state and core, a subset of its `info` operations
/// used, a superset of its observations done.
///
/// The configurations reached with one core and state are a linked list in one pooled
/// vector (`seen` maps to the newest), so pushing allocates nothing once warm.
pub(crate) struct Work<B> {
    buckets: Vec<Vec<Config<B>>>,
    lowest: usize,
    seen: FxMap<(B, u32), u32>,
    /// `(info used, observations done, previous entry of the same core and state)`.
    pool: Vec<(B, B, u32)>,
    /// How many configurations `seen` holds (for the memory budget).
    pub(crate) stored: usize,
}

const NONE: u32 = u32::MAX;

impl<B> Default for Work<B> {
    fn default() -> Self {
        Work {
            buckets: Vec::new(),
            lowest: 0,
            seen: FxMap::default(),
            pool: Vec::new(),
            stored: 0,
        }
    }
}

impl<B: Bits> Work<B> {
    pub(crate) fn clear(&mut self) {
        self.buckets.iter_mut().for_each(Vec::clear);
        self.lowest = 0;
        self.seen.clear();
        self.pool.clear();
        self.stored = 0;
    }

    pub(crate) fn push(&mut self, c: Config<B>, info: &B, obs: &B) {
        let i = c.bits.and(info);
        let o = c.bits.and(obs);
        let core = c.bits.and_not(info).and_not(obs);
        let head = self.seen.entry((core, c.state)).or_insert(NONE);
        let mut at = *head;
        while at != NONE {
            let (si, so, prev) = &self.pool[at as usize];
            if si.subset_of(&i) && o.subset_of(so) {
                return;
            }
            at = *prev;
        }
        let used = i.count() as usize;
        self.pool.push((i, o, *head));
        *head = (self.pool.len() - 1) as u32;
        self.stored += 1;
        if self.buckets.len() <= used {
            self.buckets.resize_with(used + 1, Vec::new);
        }
        self.buckets[used].push(c);
        self.lowest = self.lowest.min(used);
    }

    pub(crate) fn pop(&mut self) -> Option<Config<B>> {
        while self.lowest < self.buckets.len() {
            if let Some(c) = self.buckets[self.lowest].pop() {
                return Some(c);
            }
            self.lowest += 1;
        }
        None
    }
}

/// Interchangeable `info` operations: same action, same real-time predecessors. Swapping
/// two of them in any linearization gives a linearization, so a configuration only needs
/// to say how many of each class are used; canonically, the lowest slots of the class.
pub(crate) struct Sym {
    /// Per slot: the previous slot of its class, or `usize::MAX` (empty: none has one).
    pub(crate) prev: Vec<usize>,
    /// Classes of two or more slots, ascending.
    pub(crate) classes: Vec<Vec<usize>>,
}

impl Sym {
    pub(crate) fn of<B: Bits>(h: &KeyHistory, sl: &Slots<B>) -> Sym {
        if sl.info.count() < 2 {
            return Sym {
                prev: Vec::new(),
                classes: Vec::new(),
            };
        }
        let mut prev = vec![usize::MAX; sl.op.len()];
        let mut groups: FxMap<(Action, &B), Vec<usize>> = FxMap::default();
        sl.info.for_each(|p| {
            groups
                .entry((h.ops[sl.op[p]].action, &sl.before[p]))
                .or_default()
                .push(p);
        });
        let mut classes = Vec::new();
        for (_, members) in groups {
            if members.len() < 2 {
                continue;
            }
            for w in members.windows(2) {
                prev[w[1]] = w[0];
            }
            classes.push(members);
        }
        Sym { prev, classes }
    }

    /// Rewrites each configuration into its canonical form and drops duplicates.
    pub(crate) fn canonical<B: Bits>(&self, configs: &mut Vec<Config<B>>) {
        for c in configs.iter_mut() {
            for class in &self.classes {
                let used = class.iter().filter(|&&p| c.bits.get(p)).count();
                for (k, &p) in class.iter().enumerate() {
                    if k < used {
                        c.bits.set(p);
                    } else {
                        c.bits.clear(p);
                    }
                }
            }
        }
        let mut set: FxSet<Config<B>> = FxSet::default();
        configs.retain(|c| set.insert(c.clone()));
    }
}

/// Drops dominated configurations: same state and same linearized non-`info`,
/// non-observation operations, at most the `info` operations and at least the observations
/// of another.
pub(crate) fn reduce<B: Bits>(frontier: &mut Vec<Config<B>>, info: &B, obs: &B) {
    let mut groups: FxMap<(B, u32), Vec<usize>> = FxMap::default();
    let mut any_multi = false;
    for (i, c) in frontier.iter().enumerate() {
        let core = c.bits.and_not(info).and_not(obs);
        let g = groups.entry((core, c.state)).or_default();
        g.push(i);
        any_multi |= g.len() > 1;
    }
    if !any_multi {
        return;
    }
    let mut dead = vec![false; frontier.len()];
    for members in groups.values_mut() {
        if members.len() < 2 {
            continue;
        }
        // A dominator uses fewer info operations, or as many and more observations: sorted
        // so, every dominator comes before what it dominates.
        let parts: Vec<(B, B)> = members
            .iter()
            .map(|&m| (frontier[m].bits.and(info), frontier[m].bits.and(obs)))
            .collect();
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&k| (parts[k].0.count(), std::cmp::Reverse(parts[k].1.count())));
        let mut kept: Vec<usize> = Vec::new();
        for k in order {
            let (bi, bo) = &parts[k];
            let dominated = kept
                .iter()
                .any(|&a| parts[a].0.subset_of(bi) && bo.subset_of(&parts[a].1));
            if dominated {
                dead[members[k]] = true;
            } else {
                kept.push(k);
            }
        }
    }
    let mut k = 0;
    frontier.retain(|_| {
        k += 1;
        !dead[k - 1]
    });
}
