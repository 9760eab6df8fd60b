//! Session guarantees: read-your-writes (RYW), monotonic reads (MR), monotonic writes
//! (MW), writes-follow-reads (WFR) and PRAM, in a client-observable form.
//!
//! Source: Terry, Demers, Petersen, Spreitzer, Theimer, Welch, "Session Guarantees for
//! Weakly Consistent Replicated Data" (PDIS 1994), which states each guarantee as a set
//! of writes that must be in the database a session's operation is served from; and the
//! decomposition PRAM = RYW ∧ MR ∧ MW (Brzeziński, Sobaniec, Wawrzyniak 2004; Viotti and
//! Vukolić, ACM CSUR 2016).
//!
//! Exact definitions checked here. Values are unique per key, so each read `r` of key `x`
//! reads from one write `rf(r)` or the initial value. `CO = (PO ∪ RF)+` is the causal
//! order (PO: session order, RF: reads-from). Each guarantee names the writes of `x`
//! that must be *visible* to `r`:
//!
//! * **RYW**: the writes of `x` that precede `r` in its session.
//! * **MR**: the writes read by reads of `x` that precede `r` in its session.
//! * **MW**: for every write `w` read by an operation that precedes `r` in its session,
//!   the writes of `x` that precede `w` in `w`'s session (whoever has seen `w` has seen
//!   the writes issued before it).
//! * **WFR**: for every write `w` read by an operation that precedes `r` in its
//!   session, the writes read by reads of `x` that precede `w` in `w`'s session
//!   (whoever has seen `w` has seen what its writer had read).
//! * **PRAM**: the union of the RYW, MR and MW sets.
//!
//! `r` violates the guarantee iff some visible write `w2` makes `r`'s value stale: `r`
//! read the initial value, or `r` read `w1 ≠ w2` with `w1 <co w2` (the value read was
//! causally overwritten by a write the session must have seen). Every path used above is
//! a causal-order path into `r`, so each violation is a WriteCOInitRead or WriteCORead
//! pattern of causal consistency: CC implies every guarantee. Like CC, and unlike
//! Terry's replicas with one global write order, no single order of the writes is
//! required across sessions (that is what CCv adds), so concurrent writes may be seen in
//! different orders by different sessions. Reads of values nobody wrote, aborted reads and
//! cyclic causal order violate every guarantee.

use crate::causal::explain::Explainer;
use crate::causal::order::{Clocks, WriteIndex};
use crate::causal::{base, unless_mismatches, Analysis};
use crate::prepare::Prepared;
use crate::verdict::{Minimality, Verdict};
use rayon::prelude::*;

/// One of the session guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Guarantee {
    /// Read-your-writes.
    Ryw,
    /// Monotonic reads.
    Mr,
    /// Monotonic writes.
    Mw,
    /// Writes-follow-reads.
    Wfr,
}

const ALL: [Guarantee; 4] = [Guarantee::Ryw, Guarantee::Mr, Guarantee::Mw, Guarantee::Wfr];

impl Guarantee {
    fn index(self) -> usize {
        self as usize
    }
}

/// The first read (by position in the history) violating each guarantee.
pub(crate) type FirstViolations = [Option<u32>; 4];

/// For each key and chain, the reads of the key that read a write, in session order,
/// with the running maximum of the strict clocks (causal past without the write itself)
/// of the writes read so far.
struct ReadIndex {
    k: usize,
    /// Per key: (chain, start, end) ranges into `pos`, sorted by chain.
    by_key: Vec<Vec<(u32, u32, u32)>>,
    pos: Vec<u32>,
    /// `k` entries per read.
    max: Vec<u32>,
}

impl ReadIndex {
    fn new(p: &Prepared, clocks: &Clocks) -> ReadIndex {
        let k = p.chains.len();
        let mut all: Vec<(u32, u32, u32, u32)> = p
            .ops
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match (p.is_read(i as u32), o.rf) {
                (true, Some(w)) => Some((o.key, o.chain, o.pos, w)),
                _ => None,
            })
            .collect();
        all.sort_unstable();
        let mut by_key: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); p.keys.len()];
        let mut pos = Vec::with_capacity(all.len());
        let mut max = vec![0u32; all.len() * k];
        for (i, &(key, chain, at, w)) in all.iter().enumerate() {
            let list = &mut by_key[key as usize];
            let continues = matches!(list.last(), Some(last) if last.0 == chain);
            if continues {
                if let Some(last) = list.last_mut() {
                    last.2 = i as u32 + 1;
                }
                max.copy_within((i - 1) * k..i * k, i * k);
            } else {
                list.push((chain, i as u32, i as u32 + 1));
            }
            join_strict(p, clocks, &mut max[i * k..(i + 1) * k], w);
            pos.push(at);
        }
        ReadIndex {
            k,
            by_key,
            pos,
            max,
        }
    }

    /// Whether the writes read by the reads of `key` in `chain` below position `limit`
    /// make a read of `w1` stale (see [`stale`]).
    fn stale_range(
        &self,
        p: &Prepared,
        range: (u32, u32, u32),
        limit: u32,
        w1: Option<u32>,
    ) -> bool {
        let (_, s, e) = range;
        let n = self.pos[s as usize..e as usize].partition_point(|&x| x < limit);
        if n == 0 {
            return false;
        }
        let i = s as usize + n - 1;
        stale(p, w1, &self.max[i * self.k..(i + 1) * self.k])
    }

    /// Reads of `key` by `chain` below `limit`, above the part inside `lo`.
    fn stale_chain(
        &self,
        p: &Prepared,
        key: u32,
        chain: u32,
        limit: u32,
        w1: Option<u32>,
        lo: Option<&[u32]>,
    ) -> bool {
        let list = &self.by_key[key as usize];
        match list.binary_search_by_key(&chain, |&(c, _, _)| c) {
            Ok(i) => {
                limit > lo.map_or(0, |l| l[chain as usize])
                    && self.stale_range(p, list[i], limit, w1)
            }
            Err(_) => false,
        }
    }

    /// Over every chain, reads below `limit[chain]`; chains whose part below the limit
    /// lies within `lo` (the causal past of `w1`) cannot hold a write after `w1`.
    fn stale_any(
        &self,
        p: &Prepared,
        key: u32,
        limit: &[u32],
        w1: Option<u32>,
        lo: Option<&[u32]>,
    ) -> bool {
        self.by_key[key as usize].iter().any(|&r| {
            let c = r.0 as usize;
            limit[c] > lo.map_or(0, |l| l[c]) && self.stale_range(p, r, limit[c], w1)
        })
    }
}

/// Per-session state while walking a session.
struct Walk<'a> {
    p: &'a Prepared,
    clocks: &'a Clocks,
    writes: &'a WriteIndex,
    reads: &'a ReadIndex,
    /// Observed prefix of each chain: ops with pos below this precede an observed write.
    obs: Vec<u32>,
    /// Own prefix: ops with pos below this precede the current op in session order.
    own: Vec<u32>,
}

/// Joins the strict clock of write `w` (its causal past without itself) into `m`.
fn join_strict(p: &Prepared, clocks: &Clocks, m: &mut [u32], w: u32) {
    let Some(vc) = clocks.vc(w) else { return };
    let o = &p.ops[w as usize];
    let c = o.chain as usize;
    let keep = m[c];
    for (x, y) in m.iter_mut().zip(vc) {
        *x = (*x).max(*y);
    }
    m[c] = keep.max(o.pos);
}

/// Whether a read of `w1` (or of the initial value) is stale given the max strict clock
/// `m` of a non-empty visible set: it read the initial value, or some visible write has
/// `w1` in its strict causal past.
fn stale(p: &Prepared, w1: Option<u32>, m: &[u32]) -> bool {
    match w1 {
        None => true,
        Some(w1) => {
            let o = &p.ops[w1 as usize];
            m[o.chain as usize] > o.pos
        }
    }
}

impl<'a> Walk<'a> {
    fn new(a: &'a Analysis, clocks: &'a Clocks, reads: &'a ReadIndex) -> Walk<'a> {
        let k = a.p.chains.len();
        Walk {
            p: a.p,
            clocks,
            writes: &a.writes,
            reads,
            obs: vec![0; k],
            own: vec![0; k],
        }
    }

    /// Raises the observed prefix of `chain` to `upto` (exclusive); follows fork parents.
    fn observe_prefix(&mut self, chain: u32, upto: u32) {
        let p = self.p;
        let c = chain as usize;
        if let Some(par) = p.chains[c].parent {
            let po = &p.ops[par as usize];
            self.observe_prefix(po.chain, po.pos + 1);
        }
        self.obs[c] = self.obs[c].max(upto);
    }

    /// Processes op `o` of the walked session; `check` tells whether to test it.
    fn op(&mut self, o: u32, check: bool, out: &mut FirstViolations) {
        let p = self.p;
        let op = &p.ops[o as usize];
        if check && p.is_read(o) {
            let w1 = op.rf;
            let overwrites = |w2: u32| match w1 {
                None => true,
                Some(w1) => self.clocks.co(p, w1, w2),
            };
            let lo = w1.and_then(|w| self.clocks.vc(w));
            // The session's own chain, and its fork parent's prefix if any.
            let mut mine = [(op.chain, op.pos), (u32::MAX, 0)];
            if let Some(par) = p.chains[op.chain as usize].parent {
                let po = &p.ops[par as usize];
                mine[1] = (po.chain, po.pos + 1);
            }
            let floor = |c: u32| lo.map_or(0, |l| l[c as usize]);
            let mine = mine.into_iter().filter(|&(c, l)| c != u32::MAX && l > 0);
            let ryw = mine.clone().any(|(c, l)| {
                self.writes
                    .latest_in_chain(op.key, c, l, floor(c), o)
                    .is_some_and(overwrites)
            });
            let mw = self
                .writes
                .latest_in_past(op.key, &self.obs, lo, o)
                .any(overwrites);
            let mr = mine
                .into_iter()
                .any(|(c, l)| self.reads.stale_chain(p, op.key, c, l, w1, lo));
            let wfr = self.reads.stale_any(p, op.key, &self.obs, w1, lo);
            for (g, bad) in ALL.iter().zip([ryw, mr, mw, wfr]) {
                if bad && out[g.index()].is_none() {
                    out[g.index()] = Some(o);
                }
            }
        }
        // What `o` adds for later operations of the session.
        self.own[op.chain as usize] = op.pos + 1;
        if let (true, Some(w)) = (p.is_read(o), op.rf) {
            let ow = &p.ops[w as usize];
            self.observe_prefix(ow.chain, ow.pos);
        }
    }
}

/// The first violating read of each guarantee, testing only `candidates` (`None`: every
/// read). A read can only violate a guarantee if CC's scan found a pattern at it (every
/// write a guarantee makes visible is in the read's causal past, see the module
/// documentation), so the checkers pass CC's bad reads: on a history that is CC nothing
/// is walked. Only the sessions holding a candidate are walked, up to their last one.
pub(crate) fn scan(a: &Analysis, clocks: &Clocks, candidates: Option<&[u32]>) -> FirstViolations {
    let p = a.p;
    // Per chain: how far to walk (the position after its last candidate); per op:
    // whether to test it (`None`: every op).
    let mut upto = vec![0u32; p.chains.len()];
    let test: Option<Vec<bool>> = match candidates {
        None => {
            for (c, chain) in p.chains.iter().enumerate() {
                upto[c] = chain.ops.len() as u32;
            }
            None
        }
        Some(list) => {
            let mut test = vec![false; p.ops.len()];
            for &r in list {
                let o = &p.ops[r as usize];
                test[r as usize] = true;
                upto[o.chain as usize] = upto[o.chain as usize].max(o.pos + 1);
            }
            Some(test)
        }
    };
    let walked: Vec<usize> = (0..p.chains.len()).filter(|&c| upto[c] > 0).collect();
    if walked.is_empty() {
        return [None; 4];
    }
    let reads = ReadIndex::new(p, clocks);
    let per_chain: Vec<FirstViolations> = walked
        .into_par_iter()
        .map(|c| {
            let mut out: FirstViolations = [None; 4];
            let mut walk = Walk::new(a, clocks, &reads);
            let chain = &p.chains[c];
            if let Some(par) = chain.parent {
                let po = &p.ops[par as usize];
                for &o in &p.chains[po.chain as usize].ops[..=po.pos as usize] {
                    walk.op(o, false, &mut out);
                }
            }
            for &o in &chain.ops[..upto[c] as usize] {
                let check = test.as_ref().is_none_or(|t| t[o as usize]);
                walk.op(o, check, &mut out);
            }
            out
        })
        .collect();
    let mut first: FirstViolations = [None; 4];
    for v in per_chain {
        for g in 0..4 {
            if let Some(o) = v[g] {
                let better = match first[g] {
                    None => true,
                    Some(f) => p.ops[o as usize].src < p.ops[f as usize].src,
                };
                if better {
                    first[g] = Some(o);
                }
            }
        }
    }
    first
}

/// Operations preceding `o` in session order, latest first (fork parents followed).
fn po_past(p: &Prepared, o: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut cur = p.po_pred(o);
    while let Some(x) = cur {
        out.push(x);
        cur = p.po_pred(x);
    }
    out
}

/// A concrete reason for a violation found by [`scan`]: the visible write `w2` and how
/// it became visible (`via`: the earlier read `b` of the session, the write `w` it read,
/// and for WFR the read `b2` of `w`'s session that read `w2`).
struct Reason {
    w2: u32,
    via: Option<(u32, u32, Option<u32>)>,
}

fn find_reason(a: &Analysis, clocks: &Clocks, g: Guarantee, r: u32) -> Option<Reason> {
    let p = a.p;
    let ro = &p.ops[r as usize];
    let key = ro.key;
    let overwrites = |w2: u32| match ro.rf {
        None => true,
        Some(w1) => clocks.co(p, w1, w2),
    };
    let is_x_write = |w: u32| p.ops[w as usize].write.is_some() && p.ops[w as usize].key == key;
    let past = po_past(p, r);
    match g {
        Guarantee::Ryw => past
            .iter()
            .find(|&&w| is_x_write(w) && overwrites(w))
            .map(|&w2| Reason { w2, via: None }),
        Guarantee::Mr => past.iter().find_map(|&b| {
            let w2 = p.ops[b as usize].rf?;
            (p.is_read(b) && p.ops[b as usize].key == key && overwrites(w2)).then_some(Reason {
                w2,
                via: Some((b, w2, None)),
            })
        }),
        Guarantee::Mw | Guarantee::Wfr => past.iter().find_map(|&b| {
            if !p.is_read(b) {
                return None;
            }
            let w = p.ops[b as usize].rf?;
            po_past(p, w).into_iter().find_map(|x| {
                let xo = &p.ops[x as usize];
                if g == Guarantee::Mw {
                    (is_x_write(x) && overwrites(x)).then_some(Reason {
                        w2: x,
                        via: Some((b, w, None)),
                    })
                } else {
                    let w2 = xo.rf?;
                    (p.is_read(x) && xo.key == key && overwrites(w2)).then_some(Reason {
                        w2,
                        via: Some((b, w, Some(x))),
                    })
                }
            })
        }),
    }
}

fn explain(a: &Analysis, clocks: &Clocks, g: Guarantee, model: &str, r: u32) -> Verdict {
    let p = a.p;
    let Some(reason) = find_reason(a, clocks, g, r) else {
        return Verdict::Unknown {
            reason: format!(
                "{model}: a violation was detected but could not be explained (internal error)"
            ),
            undecided: Vec::new(),
        };
    };
    let mut ex = Explainer::new(p, a.paired);
    let lr = ex.label(r);
    let x = ex.key_words(r);
    let w2 = reason.w2;
    let l2 = ex.label(w2);
    let (kind, why) = match (g, reason.via) {
        (Guarantee::Ryw, _) | (_, None) => {
            ex.session_order(w2, r);
            (
                "read-your-writes",
                format!("{l2} is the session's own earlier write of {x}"),
            )
        }
        (Guarantee::Mr, Some((b, _, _))) => {
            ex.reads_from(w2, b);
            ex.session_order(b, r);
            (
                "monotonic-reads",
                format!("the session already read {l2}'s value of {x}"),
            )
        }
        (Guarantee::Mw, Some((b, w, _))) => {
            ex.reads_from(w, b);
            ex.session_order(b, r);
            ex.session_order(w2, w);
            let lw = ex.label(w);
            ("monotonic-writes", format!("the session saw {lw}, and {l2} was written before {lw} in its writer's session"))
        }
        (Guarantee::Wfr, Some((b, w, b2))) => {
            ex.reads_from(w, b);
            ex.session_order(b, r);
            if let Some(b2) = b2 {
                ex.reads_from(w2, b2);
                ex.session_order(b2, w);
            }
            let lw = ex.label(w);
            (
                "writes-follow-reads",
                format!(
                    "the session saw {lw}, whose writer had read {l2}'s value before writing it"
                ),
            )
        }
    };
    let summary = match p.ops[r as usize].rf {
        None => {
            ex.say(format!(
                "So {l2} must be visible to {lr} ({why}), yet {lr} read the initial value of {x}: a contradiction."
            ));
            format!("{lr} read the initial value of {x} although {l2} must be visible to it")
        }
        Some(w1) => {
            let l1 = ex.label(w1);
            ex.reads_from(w1, r);
            ex.causal(w1, w2);
            ex.say(format!(
                "So {l2} must be visible to {lr} ({why}), and {l2} overwrote {l1} ({l1} causally precedes it), yet {lr} read {l1}'s value: a stale read."
            ));
            format!("{lr} read {x} from {l1}, which {l2} had overwritten, although {l2} must be visible to it")
        }
    };
    let w = ex.finish(
        model,
        kind,
        p.key_name(p.ops[r as usize].key),
        format!("{model} violated: {summary}"),
        Minimality::ByConstruction,
    );
    Verdict::Invalid {
        witness: Box::new(w),
    }
}

/// Checks one guarantee, or PRAM (RYW ∧ MR ∧ MW) when `g` is `None`.
pub(crate) fn check(a: &Analysis, g: Option<Guarantee>, model: &str) -> Verdict {
    let clocks = match base(a, model) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let cc = crate::causal::patterns::scan(a, clocks, false);
    check_scanned(a, clocks, &scan(a, clocks, Some(cc.bad_reads())), g, model)
}

/// Like [`check`], reusing a scan.
pub(crate) fn check_scanned(
    a: &Analysis,
    clocks: &Clocks,
    first: &FirstViolations,
    g: Option<Guarantee>,
    model: &str,
) -> Verdict {
    let p = a.p;
    let pick = match g {
        Some(g) => first[g.index()].map(|r| (g, r)),
        None => [Guarantee::Ryw, Guarantee::Mr, Guarantee::Mw]
            .into_iter()
            .filter_map(|g| first[g.index()].map(|r| (g, r)))
            .min_by_key(|&(_, r)| p.ops[r as usize].src),
    };
    let v = match pick {
        Some((g, r)) => explain(a, clocks, g, model, r),
        None => Verdict::Valid,
    };
    unless_mismatches(p, model, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causal::cm::tests::for_random_analyses;
    use crate::causal::patterns;

    #[test]
    fn testing_only_the_reads_cc_flags_finds_the_same_violations() {
        // Sequential executions with stale reads and causal replicas with out-of-order
        // deliveries, some with forks: the scan of CC's bad reads must name the same
        // first violating read of every guarantee as the scan of every read.
        let mut violated = [0usize; 4];
        let cases = for_random_analyses(0x5e55, 4000, |case, ops, a, clocks| {
            let cc = patterns::scan(a, clocks, false);
            let all = scan(a, clocks, None);
            let some = scan(a, clocks, Some(cc.bad_reads()));
            assert_eq!(all, some, "case {case}: {ops:?}");
            for (g, v) in all.iter().enumerate() {
                violated[g] += usize::from(v.is_some());
            }
        });
        assert!(cases > 3000, "{cases} cases checked");
        for (g, n) in violated.iter().enumerate() {
            assert!(*n > 50, "guarantee {g} violated in only {n} cases");
        }
    }
}
