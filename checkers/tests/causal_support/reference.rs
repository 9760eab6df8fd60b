//! Brute-force reference checkers, straight from the definitions, for tiny histories
//! (at most about 8 operations). Independent of the library: no vector clocks, no bad
//! patterns, no dropping of unread `info` writes (every inclusion is enumerated).
//!
//! Session semantics (the library's documented ones): a process's operations are in
//! session order, except that an `info` operation precedes none of the process's later
//! operations. `fail` operations and `info` reads are dropped; an `info` write either
//! happened (kept) or not (dropped), and the history satisfies a model iff some choice does.

use super::Spec;
use faultline_checkers::ModelName;
use faultline_history::EventType;

#[derive(Debug, Clone)]
struct ROp {
    key: String,
    /// Value written.
    write: Option<i64>,
    /// Value read (`Some(None)` = the initial value).
    read: Option<Option<i64>>,
    info: bool,
}

/// A concrete history for one choice of info writes.
struct Concrete {
    ops: Vec<ROp>,
    /// po[a][b]: a precedes b in session order.
    po: Vec<Vec<bool>>,
    /// writer of each read (None = initial value).
    rf: Vec<Option<usize>>,
    /// Transitive closure of po ∪ rf.
    co: Vec<Vec<bool>>,
}

fn concretes(sessions: &[Vec<Spec>]) -> Vec<Option<Concrete>> {
    // Ops per process after dropping failed ops and info reads.
    let mut all: Vec<(usize, ROp)> = Vec::new();
    for (p, s) in sessions.iter().enumerate() {
        for spec in s {
            let info = spec.outcome == EventType::Info;
            match (spec.f, spec.outcome) {
                (_, EventType::Fail) | ("read", EventType::Info) => {}
                ("read", _) => all.push((
                    p,
                    ROp {
                        key: spec.key.clone(),
                        write: None,
                        read: Some(spec.result.as_i64()),
                        info,
                    },
                )),
                ("write", _) => all.push((
                    p,
                    ROp {
                        key: spec.key.clone(),
                        write: spec.argument.as_i64(),
                        read: None,
                        info,
                    },
                )),
                _ => panic!("reference handles read and write only"),
            }
        }
    }
    let infos: Vec<usize> = (0..all.len()).filter(|&i| all[i].1.info).collect();
    let mut out = Vec::new();
    for mask in 0u32..(1 << infos.len()) {
        let kept: Vec<usize> = (0..all.len())
            .filter(|i| match infos.iter().position(|j| j == i) {
                Some(b) => mask & (1 << b) != 0,
                None => true,
            })
            .collect();
        let ops: Vec<ROp> = kept.iter().map(|&i| all[i].1.clone()).collect();
        let procs: Vec<usize> = kept.iter().map(|&i| all[i].0).collect();
        let n = ops.len();
        let mut po = vec![vec![false; n]; n];
        for a in 0..n {
            for b in a + 1..n {
                po[a][b] = procs[a] == procs[b] && !ops[a].info;
            }
        }
        let mut rf = vec![None; n];
        let mut ok = true;
        for b in 0..n {
            if let Some(Some(v)) = ops[b].read {
                match (0..n).find(|&a| ops[a].key == ops[b].key && ops[a].write == Some(v)) {
                    Some(a) => rf[b] = Some(a),
                    None => ok = false,
                }
            }
        }
        if !ok {
            out.push(None);
            continue;
        }
        let mut co = po.clone();
        for b in 0..n {
            if let Some(a) = rf[b] {
                co[a][b] = true;
            }
        }
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    if co[i][k] && co[k][j] {
                        co[i][j] = true;
                    }
                }
            }
        }
        if (0..n).any(|i| co[i][i]) {
            out.push(None);
            continue;
        }
        out.push(Some(Concrete { ops, po, rf, co }));
    }
    out
}

/// Calls `f` on every linear extension of `before` over `nodes` until it returns true.
fn extensions(
    nodes: &[usize],
    before: &dyn Fn(usize, usize) -> bool,
    f: &mut dyn FnMut(&[usize]) -> bool,
) -> bool {
    fn go(
        rest: &mut Vec<usize>,
        acc: &mut Vec<usize>,
        before: &dyn Fn(usize, usize) -> bool,
        f: &mut dyn FnMut(&[usize]) -> bool,
    ) -> bool {
        if rest.is_empty() {
            return f(acc);
        }
        for i in 0..rest.len() {
            let x = rest[i];
            if rest.iter().any(|&y| y != x && before(y, x)) {
                continue;
            }
            rest.remove(i);
            acc.push(x);
            let found = go(rest, acc, before, f);
            acc.pop();
            rest.insert(i, x);
            if found {
                return true;
            }
        }
        false
    }
    go(&mut nodes.to_vec(), &mut Vec::new(), before, f)
}

impl Concrete {
    fn n(&self) -> usize {
        self.ops.len()
    }

    /// Whether read `r` is legal when the ops before it are `prefix` (in order): it
    /// returns the last value written to its key there, or the initial value if none.
    fn legal(&self, prefix: &[usize], r: usize) -> bool {
        let last = prefix
            .iter()
            .rev()
            .find(|&&a| self.ops[a].write.is_some() && self.ops[a].key == self.ops[r].key)
            .map(|&a| self.ops[a].write);
        match self.ops[r].read {
            None => true,
            Some(None) => last.is_none(),
            Some(Some(v)) => last == Some(Some(v)),
        }
    }

    fn cc(&self) -> bool {
        (0..self.n())
            .filter(|&o| self.ops[o].read.is_some())
            .all(|o| {
                let past: Vec<usize> = (0..self.n()).filter(|&a| self.co[a][o]).collect();
                extensions(&past, &|a, b| self.co[a][b], &mut |l| self.legal(l, o))
            })
    }

    fn ccv(&self) -> bool {
        let all: Vec<usize> = (0..self.n()).collect();
        extensions(&all, &|a, b| self.co[a][b], &mut |arb| {
            (0..self.n())
                .filter(|&o| self.ops[o].read.is_some())
                .all(|o| {
                    let past: Vec<usize> = arb.iter().copied().filter(|&a| self.co[a][o]).collect();
                    self.legal(&past, o)
                })
        })
    }

    fn cm(&self) -> bool {
        (0..self.n()).all(|o| {
            let nodes: Vec<usize> = (0..self.n()).filter(|&a| self.co[a][o] || a == o).collect();
            extensions(&nodes, &|a, b| self.co[a][b], &mut |l| {
                l.iter().enumerate().all(|(i, &x)| {
                    !(x == o || self.po[x][o])
                        || self.ops[x].read.is_none()
                        || self.legal(&l[..i], x)
                })
            })
        })
    }

    fn sequential(&self) -> bool {
        let all: Vec<usize> = (0..self.n()).collect();
        extensions(&all, &|a, b| self.po[a][b], &mut |l| {
            l.iter()
                .enumerate()
                .all(|(i, &x)| self.ops[x].read.is_none() || self.legal(&l[..i], x))
        })
    }

    /// The library's session-guarantee definitions, by explicit sets.
    fn guarantee(&self, ryw: bool, mr: bool, mw: bool, wfr: bool) -> bool {
        let n = self.n();
        let is_read = |a: usize| self.ops[a].read.is_some();
        let is_write = |a: usize| self.ops[a].write.is_some();
        (0..n).filter(|&r| is_read(r)).all(|r| {
            let x = &self.ops[r].key;
            let mut view: Vec<usize> = Vec::new();
            for a in (0..n).filter(|&a| self.po[a][r]) {
                if ryw && is_write(a) && &self.ops[a].key == x {
                    view.push(a);
                }
                if !is_read(a) {
                    continue;
                }
                let Some(w) = self.rf[a] else { continue };
                if mr && &self.ops[a].key == x {
                    view.push(w);
                }
                for b in (0..n).filter(|&b| self.po[b][w]) {
                    if mw && is_write(b) && &self.ops[b].key == x {
                        view.push(b);
                    }
                    if wfr && is_read(b) && &self.ops[b].key == x {
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
            ModelName::Sequential => self.sequential(),
            ModelName::Ccv => self.ccv(),
            ModelName::Cm => self.cm(),
            ModelName::Cc => self.cc(),
            ModelName::Pram => self.guarantee(true, true, true, false),
            ModelName::Ryw => self.guarantee(true, false, false, false),
            ModelName::Mr => self.guarantee(false, true, false, false),
            ModelName::Mw => self.guarantee(false, false, true, false),
            ModelName::Wfr => self.guarantee(false, false, false, true),
            ModelName::Linearizable => panic!("not a reference model"),
        }
    }
}

/// Whether the history of `sessions` satisfies `m`, by brute force.
pub fn holds(sessions: &[Vec<Spec>], m: ModelName) -> bool {
    concretes(sessions).iter().flatten().any(|c| c.holds(m))
}

/// One operation for the value-based sequential reference.
#[derive(Debug, Clone)]
struct VOp {
    proc: usize,
    key: String,
    /// Must equal (Some(Some)) / must differ (`differ`) from this value before.
    expect: Option<Option<i64>>,
    differ: bool,
    write: Option<i64>,
    optional: bool,
}

/// Sequential consistency by brute force on values (values may repeat; cas is atomic; a
/// cas failed on `mismatch` observed a different value; every `info` write or cas is
/// either applied or left out). Reads of `null` read the initial (never written) value.
pub fn sequential_by_values(sessions: &[Vec<Spec>]) -> bool {
    let mut ops: Vec<VOp> = Vec::new();
    for (p, s) in sessions.iter().enumerate() {
        for spec in s {
            let info = spec.outcome == EventType::Info;
            let fail = spec.outcome == EventType::Fail;
            let key = spec.key.clone();
            let op = match spec.f {
                "read" if !info && !fail => Some(VOp {
                    proc: p,
                    key,
                    expect: Some(spec.result.as_i64()),
                    differ: false,
                    write: None,
                    optional: false,
                }),
                "write" if !fail => Some(VOp {
                    proc: p,
                    key,
                    expect: None,
                    differ: false,
                    write: spec.argument.as_i64(),
                    optional: info,
                }),
                "cas" => {
                    let e = spec.argument[0].as_i64();
                    let n = spec.argument[1].as_i64();
                    if fail && spec.error.as_deref() == Some("mismatch") {
                        Some(VOp {
                            proc: p,
                            key,
                            expect: Some(e),
                            differ: true,
                            write: None,
                            optional: false,
                        })
                    } else if fail {
                        None
                    } else {
                        Some(VOp {
                            proc: p,
                            key,
                            expect: Some(e),
                            differ: false,
                            write: n,
                            optional: info,
                        })
                    }
                }
                _ => None,
            };
            ops.extend(op);
        }
    }
    let n = ops.len();
    let optional: Vec<usize> = (0..n).filter(|&i| ops[i].optional).collect();
    for mask in 0u32..(1 << optional.len()) {
        let kept: Vec<usize> = (0..n)
            .filter(|i| match optional.iter().position(|j| j == i) {
                Some(b) => mask & (1 << b) != 0,
                None => true,
            })
            .collect();
        let before = |a: usize, b: usize| a < b && ops[a].proc == ops[b].proc && !ops[a].optional;
        let found = extensions(&kept, &before, &mut |l| {
            let mut state: std::collections::HashMap<&str, Option<i64>> = Default::default();
            l.iter().all(|&i| {
                let o = &ops[i];
                let cur = state.get(o.key.as_str()).copied().flatten();
                let ok = match o.expect {
                    None => true,
                    Some(e) => (cur == e) != o.differ,
                };
                if ok {
                    if let Some(v) = o.write {
                        state.insert(o.key.as_str(), Some(v));
                    }
                }
                ok
            })
        });
        if found {
            return true;
        }
    }
    false
}
