//! Witness construction for the causal, session and sequential checkers: labels for the
//! operations involved, and each causal-order edge expanded into a shortest path of
//! session-order and reads-from hops, stated in plain words.

use crate::prepare::{Observe, Prepared};
use crate::verdict::{Minimality, Step, Witness, WitnessOp};
use faultline_history::{show, Paired};
use std::collections::{HashMap, VecDeque};

/// Builds one witness.
pub(crate) struct Explainer<'a> {
    p: &'a Prepared,
    paired: &'a Paired,
    ops: Vec<WitnessOp>,
    labels: HashMap<u32, String>,
    /// Extra labels for operations of the paired history that are not kept (failed writes).
    raw_labels: HashMap<usize, String>,
    counts: [usize; 3],
    /// The explanation so far.
    pub steps: Vec<Step>,
}

impl<'a> Explainer<'a> {
    /// A new, empty explanation.
    pub fn new(p: &'a Prepared, paired: &'a Paired) -> Explainer<'a> {
        Explainer {
            p,
            paired,
            ops: Vec::new(),
            labels: HashMap::new(),
            raw_labels: HashMap::new(),
            counts: [0; 3],
            steps: Vec::new(),
        }
    }

    fn next_label(&mut self, writes: bool, reads: bool) -> String {
        let (i, prefix) = match (writes, reads) {
            (true, false) => (0, "W"),
            (false, _) => (1, "R"),
            (true, true) => (2, "C"),
        };
        self.counts[i] += 1;
        format!("{prefix}{}", self.counts[i])
    }

    /// The label of a kept operation, adding it to the witness on first use.
    pub fn label(&mut self, op: u32) -> String {
        if let Some(l) = self.labels.get(&op) {
            return l.clone();
        }
        let o = &self.p.ops[op as usize];
        let l = self.next_label(o.write.is_some(), o.observe != Observe::Nothing);
        self.labels.insert(op, l.clone());
        self.ops.push(WitnessOp {
            label: l.clone(),
            op: self.paired.ops[o.src].clone(),
        });
        l
    }

    /// The label of an operation of the paired history by its index (for operations the
    /// preparation dropped, such as failed writes).
    pub fn label_raw(&mut self, src: usize) -> String {
        if let Some(l) = self.raw_labels.get(&src) {
            return l.clone();
        }
        let op = &self.paired.ops[src];
        let l = self.next_label(op.f != "read", op.f != "write");
        self.raw_labels.insert(src, l.clone());
        self.ops.push(WitnessOp {
            label: l.clone(),
            op: op.clone(),
        });
        l
    }

    /// Adds a plain statement.
    pub fn say(&mut self, text: impl Into<String>) {
        self.steps.push(Step::say(text));
    }

    /// The value `op` read, in words.
    pub fn read_value(&self, op: u32) -> String {
        let o = &self.p.ops[op as usize];
        let src = &self.paired.ops[o.src];
        match src.f.as_str() {
            "cas" => src
                .argument
                .as_array()
                .and_then(|a| a.first())
                .map(show)
                .unwrap_or_default(),
            _ => show(&src.result),
        }
    }

    /// The key of `op`, in words (`x`, or `the register`).
    pub fn key_words(&self, op: u32) -> String {
        match self.p.key_name(self.p.ops[op as usize].key) {
            Some(k) => k,
            None => "the register".into(),
        }
    }

    /// `W -> R`: R read W's value.
    pub fn reads_from(&mut self, w: u32, r: u32) {
        let (lw, lr) = (self.label(w), self.label(r));
        let text = format!(
            "{lr} read {} from {}, which only {lw} wrote, so {lw} is visible to {lr}.",
            self.read_value(r),
            self.key_words(r)
        );
        self.steps
            .push(Step::relation("reads-from", &lw, &lr, text));
    }

    /// `A -> B` in session order.
    pub fn session_order(&mut self, a: u32, b: u32) {
        let (la, lb) = (self.label(a), self.label(b));
        let (oa, ob) = (&self.p.ops[a as usize], &self.p.ops[b as usize]);
        let process = self.p.chains[ob.chain as usize].process;
        let text = if oa.chain == ob.chain {
            format!("{la} precedes {lb} in the session of process {process}.")
        } else {
            format!(
                "{lb} was invoked by process {process} after {la} completed, so {la} precedes it in session order."
            )
        };
        self.steps
            .push(Step::relation("session-order", &la, &lb, text));
    }

    /// A shortest path of session-order and reads-from hops from `a` to `b`, or `None`
    /// if `a` does not precede `b` (`extra` adds edges `(from, to)` to the search).
    pub fn path(&self, a: u32, b: u32) -> Option<Vec<u32>> {
        let mut next: HashMap<u32, u32> = HashMap::new();
        let mut queue = VecDeque::from([b]);
        while let Some(x) = queue.pop_front() {
            let preds = [self.p.po_pred(x), self.p.ops[x as usize].rf];
            for y in preds.into_iter().flatten() {
                if next.contains_key(&y) || y == b {
                    continue;
                }
                next.insert(y, x);
                if y == a {
                    let mut path = vec![a];
                    let mut cur = a;
                    while cur != b {
                        cur = next[&cur];
                        path.push(cur);
                    }
                    return Some(path);
                }
                queue.push_back(y);
            }
        }
        None
    }

    /// Explains `a <co b` step by step (shortest path; runs of session order merged).
    /// Returns false if no path exists.
    pub fn causal(&mut self, a: u32, b: u32) -> bool {
        let Some(path) = self.path(a, b) else {
            return false;
        };
        self.hops(&path);
        true
    }

    /// States each hop of a path of session-order and reads-from edges.
    pub fn hops(&mut self, path: &[u32]) {
        let mut i = 0;
        while i + 1 < path.len() {
            let (x, y) = (path[i], path[i + 1]);
            if self.p.ops[y as usize].rf == Some(x) && self.p.po_pred(y) != Some(x) {
                self.reads_from(x, y);
                i += 1;
            } else {
                // Merge a run of session-order hops within one chain.
                let mut j = i + 1;
                while j + 1 < path.len()
                    && self.p.po_pred(path[j + 1]) == Some(path[j])
                    && self.p.ops[path[j + 1] as usize].chain == self.p.ops[x as usize].chain
                    && self.p.ops[path[j + 1] as usize].rf != Some(path[j])
                {
                    j += 1;
                }
                self.session_order(x, path[j]);
                i = j;
            }
        }
    }

    /// Finishes the witness.
    pub fn finish(
        self,
        model: &str,
        kind: &str,
        key: Option<String>,
        summary: String,
        minimality: Minimality,
    ) -> Witness {
        Witness {
            model: model.to_string(),
            kind: kind.to_string(),
            key,
            summary,
            ops: self.ops,
            steps: self.steps,
            minimality,
        }
    }
}
