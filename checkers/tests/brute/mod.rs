//! A brute-force reference for every model of the lattice, straight from the definitions,
//! for tiny histories (up to about 8 operations) whose values may repeat.
//!
//! It shares no code with the library. It reads a paired history with integer (or null)
//! values and decides each model by enumeration:
//!
//! * Operations: an ok read observes its result; an ok write writes; an ok cas `[e, n]`
//!   observes `e` and writes `n` in one step; a cas that failed with error `mismatch`
//!   observes a value other than `e`; every other failed operation and every info read is
//!   left out; an info write or cas is optional (it happened or not: both are tried).
//!   `null` and the initial value denote the same state (the key as never written); with
//!   `nil_reads_unknown` an ok read of `null` is left out.
//! * Linearizable: some order of the operations that happened, respecting real time (an
//!   info operation's interval never ends), replays on one register per key.
//! * Sequential: some order respecting each session's order replays. A session is a
//!   process's operations in invoke order, except that an info operation precedes none of
//!   its process's later operations.
//! * The causal models and the session guarantees are defined for a reads-from relation:
//!   a history satisfies one when some choice of which operations happened and some
//!   reads-from (each observation reads from a write of a value it accepts, or from the
//!   initial state) gives an acyclic causal order CO = (session order ∪ reads-from)⁺ under
//!   which the definition holds (Bouajjani, Enea, Guerraoui, Hamza, POPL 2017, §3 for CC,
//!   CCv and CM; the session guarantees as the library documents them, after Terry et al.,
//!   PDIS 1994). An observation is legal after a sequence of operations when the last
//!   write to its key there (or the initial state) has a value it accepts.
#![allow(dead_code)]

pub mod bytes;

use faultline_checkers::{check_all, model_table, ConsistencyOptions, ModelName, RowStatus};
use faultline_history::{Outcome, Paired, Value};
use std::collections::{HashMap, HashSet};

/// How the history is read: the initial value of every key and Knossos's nil reads.
#[derive(Debug, Clone)]
pub struct Semantics {
    /// The value every key starts with (`null` or an integer).
    pub initial: Value,
    /// An ok read of `null` observed nothing.
    pub nil_reads_unknown: bool,
}

/// A value: the initial state or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Val {
    Init,
    V(i64),
}

/// What an operation observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Obs {
    Nothing,
    Equal(Val),
    Differ(Val),
}

impl Obs {
    fn accepts(self, v: Val) -> bool {
        match self {
            Obs::Nothing => true,
            Obs::Equal(e) => v == e,
            Obs::Differ(e) => v != e,
        }
    }
}

#[derive(Debug, Clone)]
struct BOp {
    process: u64,
    key: usize,
    obs: Obs,
    write: Option<Val>,
    optional: bool,
    invoke: u64,
    /// `u64::MAX` for an info operation.
    complete: u64,
}

/// The truth of each model, indexed like [`ModelName::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Truth(pub [bool; 10]);

impl Truth {
    /// Whether `m` holds.
    pub fn holds(&self, m: ModelName) -> bool {
        self.0[index(m)]
    }
}

fn index(m: ModelName) -> usize {
    ModelName::ALL
        .iter()
        .position(|&x| x == m)
        .expect("every model is in ALL")
}

fn ops_of(paired: &Paired, sem: &Semantics) -> Vec<BOp> {
    let val = |v: &Value| -> Val {
        if v.is_null() || *v == sem.initial {
            Val::Init
        } else {
            Val::V(v.as_i64().expect("the reference reads integer values only"))
        }
    };
    let mut keys: Vec<Option<String>> = Vec::new();
    let mut out = Vec::new();
    for op in &paired.ops {
        let name = op.key.as_ref().map(|k| k.0.clone());
        let key = match keys.iter().position(|k| *k == name) {
            Some(i) => i,
            None => {
                keys.push(name);
                keys.len() - 1
            }
        };
        let info = op.outcome == Outcome::Info;
        let (obs, write) = match (op.f.as_str(), op.outcome) {
            ("read", Outcome::Ok) => {
                if sem.nil_reads_unknown && op.result.is_null() {
                    continue;
                }
                (Obs::Equal(val(&op.result)), None)
            }
            ("read", _) => continue,
            ("write", Outcome::Fail) => continue,
            ("write", _) => (Obs::Nothing, Some(val(&op.argument))),
            ("cas", Outcome::Fail) if op.error.as_deref() == Some("mismatch") => {
                (Obs::Differ(val(&op.argument[0])), None)
            }
            ("cas", Outcome::Fail) => continue,
            ("cas", _) => (Obs::Equal(val(&op.argument[0])), Some(val(&op.argument[1]))),
            (f, _) => panic!("the reference knows read, write and cas, not {f}"),
        };
        out.push(BOp {
            process: op.process,
            key,
            obs,
            write,
            optional: info,
            invoke: op.invoke_index,
            complete: if info {
                u64::MAX
            } else {
                op.complete_index.unwrap_or(u64::MAX)
            },
        });
    }
    out
}

/// Decides every model of the lattice on `paired`.
pub fn truth(paired: &Paired, sem: &Semantics) -> Truth {
    let ops = ops_of(paired, sem);
    assert!(ops.len() <= 16, "the reference is for tiny histories");
    let n_keys = ops.iter().map(|o| o.key + 1).max().unwrap_or(0);
    let mut t = Truth::default();
    t.0[index(ModelName::Linearizable)] = linearizable(&ops, n_keys);
    let optional: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].optional).collect();
    let causal = [
        ModelName::Ccv,
        ModelName::Cm,
        ModelName::Cc,
        ModelName::Pram,
        ModelName::Ryw,
        ModelName::Mr,
        ModelName::Mw,
        ModelName::Wfr,
    ];
    for mask in 0u32..(1 << optional.len()) {
        let kept: Vec<usize> = (0..ops.len())
            .filter(|i| match optional.iter().position(|j| j == i) {
                Some(b) => mask & (1 << b) != 0,
                None => true,
            })
            .collect();
        let h = Kept::new(&ops, &kept, n_keys);
        if !t.holds(ModelName::Sequential) && h.sequential() {
            t.0[index(ModelName::Sequential)] = true;
        }
        if causal.iter().all(|&m| t.holds(m)) {
            continue;
        }
        h.each_reads_from(&mut |c| {
            for m in causal {
                if !t.holds(m) && c.holds(m) {
                    t.0[index(m)] = true;
                }
            }
            causal.iter().all(|&m| t.holds(m))
        });
    }
    t
}

/// Linearizability: a search over orders that respect real time, memoised on the set
/// placed and the values held.
fn linearizable(ops: &[BOp], n_keys: usize) -> bool {
    fn go(
        ops: &[BOp],
        placed: u32,
        vals: &mut Vec<Val>,
        failed: &mut HashSet<(u32, Vec<Val>)>,
    ) -> bool {
        if (0..ops.len()).all(|i| placed & (1 << i) != 0 || ops[i].optional) {
            return true;
        }
        if failed.contains(&(placed, vals.clone())) {
            return false;
        }
        for i in 0..ops.len() {
            if placed & (1 << i) != 0 {
                continue;
            }
            let blocked = (0..ops.len())
                .any(|j| j != i && placed & (1 << j) == 0 && ops[j].complete < ops[i].invoke);
            if blocked || !ops[i].obs.accepts(vals[ops[i].key]) {
                continue;
            }
            let before = vals[ops[i].key];
            if let Some(v) = ops[i].write {
                vals[ops[i].key] = v;
            }
            let ok = go(ops, placed | (1 << i), vals, failed);
            vals[ops[i].key] = before;
            if ok {
                return true;
            }
        }
        failed.insert((placed, vals.clone()));
        false
    }
    go(ops, 0, &mut vec![Val::Init; n_keys], &mut HashSet::new())
}

/// The operations of one choice of which optional operations happened.
struct Kept<'a> {
    ops: Vec<&'a BOp>,
    n_keys: usize,
    /// po[a][b]: a precedes b in session order.
    po: Vec<Vec<bool>>,
}

/// Whether some order of `nodes` (a bit set) that respects `pred` (the bit set of each
/// node's required predecessors) replays, checking the observation of every node in
/// `check` when it is placed. Memoised on the set placed and the values held.
fn serializable(ops: &[&BOp], n_keys: usize, nodes: u32, pred: &[u32], check: u32) -> bool {
    fn go(
        ops: &[&BOp],
        nodes: u32,
        pred: &[u32],
        check: u32,
        placed: u32,
        vals: &mut Vec<Val>,
        failed: &mut HashSet<(u32, Vec<Val>)>,
    ) -> bool {
        if placed == nodes {
            return true;
        }
        if failed.contains(&(placed, vals.clone())) {
            return false;
        }
        for x in 0..ops.len() {
            let bit = 1u32 << x;
            if nodes & bit == 0 || placed & bit != 0 || pred[x] & nodes & !placed != 0 {
                continue;
            }
            let o = ops[x];
            if check & bit != 0 && !o.obs.accepts(vals[o.key]) {
                continue;
            }
            let before = vals[o.key];
            if let Some(v) = o.write {
                vals[o.key] = v;
            }
            let ok = go(ops, nodes, pred, check, placed | bit, vals, failed);
            vals[o.key] = before;
            if ok {
                return true;
            }
        }
        failed.insert((placed, vals.clone()));
        false
    }
    go(
        ops,
        nodes,
        pred,
        check,
        0,
        &mut vec![Val::Init; n_keys],
        &mut HashSet::new(),
    )
}

impl<'a> Kept<'a> {
    fn new(all: &'a [BOp], kept: &[usize], n_keys: usize) -> Kept<'a> {
        let ops: Vec<&BOp> = kept.iter().map(|&i| &all[i]).collect();
        let n = ops.len();
        let mut po = vec![vec![false; n]; n];
        for a in 0..n {
            for b in a + 1..n {
                po[a][b] = ops[a].process == ops[b].process && !ops[a].optional;
            }
        }
        Kept { ops, n_keys, po }
    }

    fn n(&self) -> usize {
        self.ops.len()
    }

    fn sequential(&self) -> bool {
        let n = self.n();
        let pred: Vec<u32> = (0..n)
            .map(|b| (0..n).filter(|&a| self.po[a][b]).map(|a| 1 << a).sum())
            .collect();
        let all = (1u32 << n) - 1;
        serializable(&self.ops, self.n_keys, all, &pred, all)
    }

    /// Calls `f` with every reads-from choice whose causal order is acyclic, until it
    /// answers true.
    fn each_reads_from(&self, f: &mut dyn FnMut(&Causal) -> bool) {
        let n = self.n();
        let observers: Vec<usize> = (0..n)
            .filter(|&o| self.ops[o].obs != Obs::Nothing)
            .collect();
        // Sources of each observer: `None` = the initial state.
        let sources: Vec<Vec<Option<usize>>> = observers
            .iter()
            .map(|&o| {
                let op = self.ops[o];
                let mut s: Vec<Option<usize>> = Vec::new();
                if op.obs.accepts(Val::Init) {
                    s.push(None);
                }
                for w in 0..n {
                    let wr = self.ops[w];
                    if w != o && wr.key == op.key && wr.write.is_some_and(|v| op.obs.accepts(v)) {
                        s.push(Some(w));
                    }
                }
                s
            })
            .collect();
        if sources.iter().any(Vec::is_empty) {
            return;
        }
        // Backtrack over the choices, keeping what each operation reaches in session
        // order and the reads-from chosen so far, so that a choice closing a cycle is cut
        // at once instead of enumerating every completion of it.
        let mut reach: Vec<u32> = vec![0; n];
        for a in (0..n).rev() {
            for b in a + 1..n {
                if self.po[a][b] {
                    reach[a] |= (1 << b) | reach[b];
                }
            }
        }
        let mut rf = vec![None; n];
        self.choose(0, &observers, &sources, &mut reach, &mut rf, f);
    }

    /// Chooses the source of `observers[i..]`; true once `f` asked to stop.
    fn choose(
        &self,
        i: usize,
        observers: &[usize],
        sources: &[Vec<Option<usize>>],
        reach: &mut Vec<u32>,
        rf: &mut Vec<Option<usize>>,
        f: &mut dyn FnMut(&Causal) -> bool,
    ) -> bool {
        let Some(&o) = observers.get(i) else {
            return Causal::new(self, rf.clone()).is_some_and(|c| f(&c));
        };
        for &src in &sources[i] {
            rf[o] = src;
            let Some(w) = src else {
                if self.choose(i + 1, observers, sources, reach, rf, f) {
                    return true;
                }
                continue;
            };
            if reach[o] & (1 << w) != 0 {
                continue; // o already reaches w: w -> o closes a cycle
            }
            let saved = reach.clone();
            let gained = (1u32 << o) | reach[o];
            for (x, r) in reach.iter_mut().enumerate() {
                if x == w || *r & (1 << w) != 0 {
                    *r |= gained;
                }
            }
            let stop = self.choose(i + 1, observers, sources, reach, rf, f);
            *reach = saved;
            if stop {
                return true;
            }
        }
        rf[o] = None;
        false
    }
}

/// One choice of operations and reads-from, with its causal order.
struct Causal<'a, 'b> {
    h: &'b Kept<'a>,
    /// The write each observation reads from (`None`: the initial state or no observation).
    rf: Vec<Option<usize>>,
    /// co[a][b]: a precedes b in (po ∪ rf)⁺.
    co: Vec<Vec<bool>>,
}

impl<'a, 'b> Causal<'a, 'b> {
    fn new(h: &'b Kept<'a>, rf: Vec<Option<usize>>) -> Option<Causal<'a, 'b>> {
        let n = h.n();
        let mut co = h.po.clone();
        for b in 0..n {
            if let Some(a) = rf[b] {
                co[a][b] = true;
            }
        }
        // Warshall's transitive closure: row i gains row k when i reaches k.
        for k in 0..n {
            let through = co[k].clone();
            for row in co.iter_mut() {
                if row[k] {
                    for (cell, &t) in row.iter_mut().zip(&through) {
                        *cell |= t;
                    }
                }
            }
        }
        if (0..n).any(|i| co[i][i]) {
            return None;
        }
        Some(Causal { h, rf, co })
    }

    fn n(&self) -> usize {
        self.h.n()
    }

    fn observes(&self, o: usize) -> bool {
        self.h.ops[o].obs != Obs::Nothing
    }

    fn pred(&self, nodes: u32) -> Vec<u32> {
        let n = self.n();
        (0..n)
            .map(|b| {
                (0..n)
                    .filter(|&a| self.co[a][b] && nodes & (1 << a) != 0)
                    .map(|a| 1 << a)
                    .sum()
            })
            .collect()
    }

    fn past(&self, o: usize) -> u32 {
        (0..self.n())
            .filter(|&a| self.co[a][o])
            .map(|a| 1u32 << a)
            .sum()
    }

    /// CC: every observation is legal in some order of its causal past.
    fn cc(&self) -> bool {
        (0..self.n()).filter(|&o| self.observes(o)).all(|o| {
            let nodes = self.past(o) | (1 << o);
            let mut pred = self.pred(nodes);
            pred[o] = nodes & !(1 << o);
            serializable(&self.h.ops, self.h.n_keys, nodes, &pred, 1 << o)
        })
    }

    /// CCv: one total order extending CO in which every observation is legal when
    /// restricted to its causal past.
    fn ccv(&self) -> bool {
        fn go(c: &Causal, placed: &mut Vec<usize>, used: u32) -> bool {
            let n = c.n();
            if placed.len() == n {
                return true;
            }
            for x in 0..n {
                if used & (1 << x) != 0 || (0..n).any(|a| c.co[a][x] && used & (1 << a) == 0) {
                    continue;
                }
                let o = c.h.ops[x];
                if o.obs != Obs::Nothing {
                    let last = placed
                        .iter()
                        .rev()
                        .find(|&&a| {
                            c.co[a][x] && c.h.ops[a].key == o.key && c.h.ops[a].write.is_some()
                        })
                        .and_then(|&a| c.h.ops[a].write)
                        .unwrap_or(Val::Init);
                    if !o.obs.accepts(last) {
                        continue;
                    }
                }
                placed.push(x);
                let ok = go(c, placed, used | (1 << x));
                placed.pop();
                if ok {
                    return true;
                }
            }
            false
        }
        go(self, &mut Vec::new(), 0)
    }

    /// CM: for every operation o, some order of its causal past and o in which o and the
    /// observations of o's session before it are legal.
    fn cm(&self) -> bool {
        (0..self.n()).all(|o| {
            let nodes = self.past(o) | (1 << o);
            let pred = self.pred(nodes);
            let check: u32 = (0..self.n())
                .filter(|&x| (x == o || self.h.po[x][o]) && self.observes(x))
                .map(|x| 1u32 << x)
                .sum();
            serializable(&self.h.ops, self.h.n_keys, nodes, &pred, check)
        })
    }

    /// The session guarantees as the library defines them: for an observation r of key x,
    /// the writes that must be visible to it; r violates the guarantee when it reads the
    /// initial state while one exists, or reads a write that causally precedes one.
    fn guarantee(&self, ryw: bool, mr: bool, mw: bool, wfr: bool) -> bool {
        let n = self.n();
        let ops = &self.h.ops;
        let po = &self.h.po;
        let is_write = |a: usize| ops[a].write.is_some();
        (0..n).filter(|&r| self.observes(r)).all(|r| {
            let x = ops[r].key;
            let mut view: Vec<usize> = Vec::new();
            for a in (0..n).filter(|&a| po[a][r]) {
                if ryw && is_write(a) && ops[a].key == x {
                    view.push(a);
                }
                if !self.observes(a) {
                    continue;
                }
                let Some(w) = self.rf[a] else { continue };
                if mr && ops[a].key == x {
                    view.push(w);
                }
                for b in (0..n).filter(|&b| po[b][w]) {
                    if mw && is_write(b) && ops[b].key == x {
                        view.push(b);
                    }
                    if wfr && self.observes(b) && ops[b].key == x {
                        if let Some(w2) = self.rf[b] {
                            view.push(w2);
                        }
                    }
                }
            }
            view.iter().all(|&w2| match self.rf[r] {
                None => false,
                Some(w1) => w1 == w2 || !self.co[w1][w2],
            })
        })
    }

    fn holds(&self, m: ModelName) -> bool {
        match m {
            ModelName::Ccv => self.ccv(),
            ModelName::Cm => self.cm(),
            ModelName::Cc => self.cc(),
            ModelName::Pram => self.guarantee(true, true, true, false),
            ModelName::Ryw => self.guarantee(true, false, false, false),
            ModelName::Mr => self.guarantee(false, true, false, false),
            ModelName::Mw => self.guarantee(false, false, true, false),
            ModelName::Wfr => self.guarantee(false, false, false, true),
            ModelName::Linearizable | ModelName::Sequential => {
                panic!("decided without a reads-from relation")
            }
        }
    }
}

/// An upper bound of the cases [`truth`] enumerates: every choice of which optional
/// operations happened times every reads-from choice. The reference is exponential in
/// both; callers that feed it arbitrary histories (the fuzz target) skip those above a
/// budget rather than wait.
pub fn cost(paired: &Paired, sem: &Semantics) -> f64 {
    let ops = ops_of(paired, sem);
    let optional = ops.iter().filter(|o| o.optional).count();
    let mut total = 2f64.powi(optional as i32);
    for (i, o) in ops.iter().enumerate() {
        if o.obs == Obs::Nothing {
            continue;
        }
        let sources = usize::from(o.obs.accepts(Val::Init))
            + ops
                .iter()
                .enumerate()
                .filter(|(j, w)| {
                    *j != i && w.key == o.key && w.write.is_some_and(|v| o.obs.accepts(v))
                })
                .count();
        total *= sources.max(1) as f64;
    }
    total
}

/// A summary of a history's shape, for coverage counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    /// Some key has a value written twice, or written and also its initial value.
    pub repeated: bool,
    pub info_write: bool,
    pub info_cas: bool,
    pub mismatch: bool,
    pub ok_cas: bool,
    pub init_read: bool,
}

/// The shape of `paired` under `sem`.
pub fn shape(paired: &Paired, sem: &Semantics) -> Shape {
    let ops = ops_of(paired, sem);
    let mut s = Shape::default();
    let mut written: HashMap<(usize, Val), usize> = HashMap::new();
    for o in &ops {
        if let Some(v) = o.write {
            *written.entry((o.key, v)).or_default() += 1;
            if v == Val::Init {
                s.repeated = true;
            }
        }
        let cas = o.write.is_some() && o.obs != Obs::Nothing;
        s.info_write |= o.optional && o.write.is_some() && !cas;
        s.info_cas |= o.optional && cas;
        s.ok_cas |= !o.optional && cas;
        s.mismatch |= matches!(o.obs, Obs::Differ(_));
        s.init_read |= o.obs == Obs::Equal(Val::Init);
    }
    s.repeated |= written.values().any(|&c| c > 1);
    s
}

/// Written values unique per key and none equal to the initial value (the library's
/// precondition for deciding the causal and session models).
fn unique_values(paired: &Paired, sem: &Semantics) -> bool {
    let mut seen = HashSet::new();
    let ops = ops_of(paired, sem);
    ops.iter().all(|o| match o.write {
        None => true,
        Some(Val::Init) => false,
        Some(v) => seen.insert((o.key, v)),
    })
}

/// Whether the library may answer unknown for `m` (the cases its documentation names:
/// the causal and session models on histories without unique values or with a cas that
/// failed on a mismatch, and causal memory on a history with a cas).
fn unknown_allowed(m: ModelName, paired: &Paired, sem: &Semantics) -> bool {
    let has_cas = paired.ops.iter().any(|o| o.f == "cas");
    let mismatch = paired.ops.iter().any(|o| {
        o.f == "cas" && o.outcome == Outcome::Fail && o.error.as_deref() == Some("mismatch")
    });
    match m {
        ModelName::Linearizable | ModelName::Sequential => false,
        ModelName::Cm if has_cas => true,
        _ => !unique_values(paired, sem) || mismatch,
    }
}

/// One model's row: what the reference says and what the library said (`None`: unknown).
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub model: ModelName,
    pub holds: bool,
    pub said: Option<bool>,
}

/// Checks every model of `paired` as `faultline check --model all` does ([`check_all`]
/// and [`model_table`]) and compares each row with the reference: a decided row must
/// agree, an unknown one must be one the library documents; the reference itself must
/// respect the lattice. The rows, or what went wrong.
pub fn compare(paired: &Paired, sem: &Semantics) -> Result<Vec<Row>, String> {
    let truth = truth(paired, sem);
    for m in ModelName::ALL {
        for &w in m.implies() {
            if truth.holds(m) && !truth.holds(w) {
                return Err(format!("the reference says {m} holds but {w} does not"));
            }
        }
    }
    let opts = ConsistencyOptions {
        initial: sem.initial.clone(),
        nil_reads_unknown: sem.nil_reads_unknown,
        ..ConsistencyOptions::default()
    };
    let table = model_table(check_all(paired, &ModelName::ALL, None, &opts));
    let mut rows = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        let m = row.model;
        let holds = truth.holds(m);
        let said = match &row.status {
            RowStatus::Valid | RowStatus::Implied { .. } => Some(true),
            RowStatus::Invalid | RowStatus::RuledOut { .. } => Some(false),
            RowStatus::Unknown { .. } | RowStatus::NotChecked => None,
        };
        match said {
            Some(s) if s != holds => {
                return Err(format!(
                    "{m}: the library says {:?} ({:?}), the reference says it {}",
                    row.status,
                    row.verdict.as_ref().map(|v| v.label()),
                    if holds { "holds" } else { "fails" }
                ))
            }
            None if !unknown_allowed(m, paired, sem) => {
                return Err(format!(
                    "{m}: the library cannot decide ({:?}) where it must; the reference says it {}",
                    row.status,
                    if holds { "holds" } else { "fails" }
                ))
            }
            _ => {}
        }
        rows.push(Row {
            model: m,
            holds,
            said,
        });
    }
    Ok(rows)
}
