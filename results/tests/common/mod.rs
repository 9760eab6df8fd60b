//! Seeded synthetic histories and hand-made witnesses for the tests.
#![allow(dead_code)]

use faultline_checkers::{Minimality, Step, Verdict, Witness, WitnessOp};
use faultline_history::{Event, EventType, History, Operation, Outcome, Process, Value};
use faultline_results::{ModelEntry, RunInfo, VerdictDoc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// What to generate.
pub struct Synth {
    pub seed: u64,
    pub ops: usize,
    pub workers: u64,
    pub keys: Vec<String>,
    /// Nemesis windows: (start f, undo f, start value, start s, end s).
    pub faults: Vec<(&'static str, &'static str, Value, f64, f64)>,
}

impl Synth {
    pub fn new(seed: u64, ops: usize) -> Synth {
        Synth {
            seed,
            ops,
            workers: 10,
            keys: vec!["k1".into(), "k2".into(), "k3".into()],
            faults: vec![],
        }
    }

    /// A few standard fault windows spread over a history of `secs` seconds.
    pub fn with_standard_faults(mut self, secs: f64) -> Synth {
        self.faults = vec![
            (
                "partition",
                "heal",
                json!({"n1": ["n3"], "n3": ["n1"], "n2": []}),
                0.10 * secs,
                0.25 * secs,
            ),
            ("kill", "start", json!(["n2"]), 0.35 * secs, 0.45 * secs),
            ("pause", "resume", json!(["n3"]), 0.55 * secs, 0.62 * secs),
            (
                "clock_bump",
                "clock_reset",
                json!({"n1": 30000}),
                0.70 * secs,
                0.80 * secs,
            ),
            (
                "loss",
                "packet_heal",
                json!({"nodes": ["n1", "n2"], "percent": 30}),
                0.90 * secs,
                f64::NAN,
            ),
        ];
        self
    }

    /// Generates the history: `workers` sequential workers issuing reads, writes and cas
    /// on the keys; slower and failing more often inside fault windows; a fresh process
    /// after every info.
    pub fn history(&self) -> History {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let per_worker = self.ops / self.workers as usize;
        // Raw events: (time, process, type, f, key, value, node, error).
        let mut raw: Vec<Event> = Vec::with_capacity(self.ops * 2 + 20);
        let in_fault = |t: u64| {
            self.faults.iter().any(|(_, _, _, a, b)| {
                let s = t as f64 / 1e9;
                s >= *a && (b.is_nan() || s <= *b)
            })
        };
        let mut next_value = 1u64;
        for w in 0..self.workers {
            let mut process = w;
            let mut t: u64 = rng.gen_range(0..2_000_000);
            for _ in 0..per_worker {
                let key = self.keys[rng.gen_range(0..self.keys.len())].clone();
                let node = format!("n{}", rng.gen_range(1..=3));
                let faulty = in_fault(t);
                let (f, arg) = match rng.gen_range(0..10) {
                    0..=4 => ("read", Value::Null),
                    5..=7 => {
                        next_value += 1;
                        ("write", json!(next_value))
                    }
                    _ => ("cas", json!([next_value, next_value + 1])),
                };
                let base: u64 = rng.gen_range(300_000..3_000_000);
                let latency = if faulty {
                    base * rng.gen_range(2..20)
                } else {
                    base
                };
                let roll = rng.gen_range(0..100);
                let (kind, err) = if faulty && roll < 15 {
                    (EventType::Info, Some("timeout"))
                } else if faulty && roll < 35 || roll < 2 {
                    (EventType::Fail, Some("unavailable"))
                } else {
                    (EventType::Ok, None)
                };
                let result = match (f, kind) {
                    ("read", EventType::Ok) => json!(rng.gen_range(0..next_value)),
                    _ => arg.clone(),
                };
                let mut inv =
                    Event::client(0, process, EventType::Invoke, f, arg).with_key(key.clone());
                inv.time = t;
                let mut done = Event::client(0, process, kind, f, result).with_key(key);
                done.time = t + latency;
                done.node = Some(node);
                done.error = err.map(str::to_string);
                raw.push(inv);
                raw.push(done);
                t += latency + rng.gen_range(50_000..400_000);
                if kind == EventType::Info {
                    process += self.workers;
                }
            }
        }
        for (start, undo, value, a, b) in &self.faults {
            raw.push(nemesis((a * 1e9) as u64, start, value.clone()));
            if !b.is_nan() {
                raw.push(nemesis((b * 1e9) as u64, undo, Value::Null));
            }
        }
        raw.sort_by_key(|e| e.time);
        for (i, e) in raw.iter_mut().enumerate() {
            e.index = i as u64;
        }
        History::from_events(raw)
    }
}

fn nemesis(time: u64, f: &str, value: Value) -> Event {
    Event {
        index: 0,
        time,
        process: Process::Nemesis,
        kind: EventType::Info,
        f: f.into(),
        key: None,
        value,
        node: None,
        error: None,
    }
}

/// Makes a stale read in `h` and returns a witness of it: A writes v to `key`, B then
/// writes another value and completes, C reads v after B completed; plus an info write
/// D of the same key, if one exists, shown as a possible culprit.
pub fn stale_read_witness(h: &mut History, key: &str) -> Witness {
    let ops = h.pair("synthetic").expect("synthetic history pairs").ops;
    let on_key = |o: &&Operation| o.key.as_ref().map(|k| k.0.as_str()) == Some(key);
    let writes: Vec<&Operation> = ops
        .iter()
        .filter(on_key)
        .filter(|o| o.f == "write" && o.outcome == Outcome::Ok)
        .collect();
    let a = writes[writes.len() / 3].clone();
    let b = writes
        .iter()
        .find(|o| o.invoke_time > a.complete_time.unwrap_or(0))
        .map(|o| (*o).clone())
        .expect("a later write");
    let b_done = b.complete_time.unwrap_or(0);
    let c = ops
        .iter()
        .filter(on_key)
        .find(|o| o.f == "read" && o.outcome == Outcome::Ok && o.invoke_time > b_done)
        .cloned()
        .expect("a later read");
    // Make C read A's value: edit its completion event.
    let ci = c.complete_index.expect("completed");
    h.events[ci as usize].value = a.argument.clone();
    let ops = h.pair("synthetic").expect("pairs").ops;
    let c = ops[c.id].clone();
    let mut wops = vec![
        WitnessOp {
            label: "A".into(),
            op: a.clone(),
        },
        WitnessOp {
            label: "B".into(),
            op: b.clone(),
        },
        WitnessOp {
            label: "C".into(),
            op: c.clone(),
        },
    ];
    if let Some(d) = ops.iter().filter(on_key).find(|o| {
        o.outcome == Outcome::Info && o.invoke_time > a.invoke_time && o.invoke_time < c.invoke_time
    }) {
        wops.push(WitnessOp {
            label: "D".into(),
            op: d.clone(),
        });
    }
    Witness {
        model: "linearizable".into(),
        kind: "stale-read".into(),
        key: Some(key.into()),
        summary: format!("C read {} from {key} after B had overwritten it", a.argument),
        ops: wops,
        steps: vec![
            Step::relation("real-time", "A", "B", "A completed before B was invoked."),
            Step::relation("real-time", "B", "C", "B completed before C was invoked."),
            Step::relation("reads-from", "A", "C", format!("C read {}, which only A wrote.", a.argument)),
            Step::say("So C must take effect before B, yet B completed before C began: no order satisfies both."),
        ],
        minimality: Minimality::OneMinimal,
    }
}

/// A verdict document: linearizable (claimed) violated by `w`, the lattice below it
/// partly decided, one model unknown.
pub fn verdicts_with(w: Option<Witness>) -> VerdictDoc {
    let lin = match w {
        Some(w) => ModelEntry::checked(
            "linearizable",
            &Verdict::Invalid {
                witness: Box::new(w),
            },
        ),
        None => ModelEntry::checked("linearizable", &Verdict::Valid),
    };
    let violated = lin.result.violated();
    let mut models = vec![
        lin.claimed(true).with_figures(Some(1234), Some(87)),
        ModelEntry::checked("sequential", &Verdict::Valid).with_figures(Some(1234), Some(40)),
        ModelEntry::implied("cc", "sequential"),
        ModelEntry::checked(
            "ccv",
            &Verdict::Unknown {
                reason: "search budget of 10 s spent".into(),
                undecided: vec!["k2".into()],
            },
        ),
        ModelEntry::not_checked("wfr"),
    ];
    if !violated {
        models.retain(|m| m.model != "ccv");
    }
    VerdictDoc::new(models, vec!["sequential".into()])
}

/// Run facts for a synthetic campaign.
pub fn run_info(seed: u64) -> RunInfo {
    let mut r = RunInfo {
        schema: faultline_results::RUN_SCHEMA.into(),
        target: Some("raft-register".into()),
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        plan: Some(
            json!({"workload": "register", "nemesis": ["partition", "kill", "pause", "clock", "loss"], "rate": 200}),
        ),
        seed: Some(seed),
        started_at: Some("2026-11-27T17:00:00Z".into()),
        duration_ms: Some(60_000),
        ..RunInfo::default()
    };
    r.versions.insert("faultline".into(), "0.1.0".into());
    r.mechanisms
        .insert("partition".into(), "nft table inet faultline".into());
    r.mechanisms.insert("clock".into(), "libfaketime".into());
    r.mechanisms.insert("kill".into(), "SIGKILL".into());
    r.mechanisms.insert("loss".into(), "nft numgen".into());
    r.command = Some(format!(
        "faultline test --target raft-register --seed {seed} --time-limit 60"
    ));
    r
}

/// A history and verdicts full of hostile values (markup, quotes, pipes, backticks).
pub mod hostile {
    use super::{run_info, Synth};
    use faultline_checkers::{Minimality, Step, Verdict, Witness, WitnessOp};
    use faultline_history::{History, Key, Value};
    use faultline_results::{ModelEntry, VerdictDoc};
    use serde_json::json;

    pub const KEY: &str = "<script>alert(1)</script>";
    pub const NODE: &str = "n1\"><img src=x onerror=alert(2)>";
    pub const ERROR: &str = "</title><script>alert(3)</script>";
    pub const SUMMARY: &str = "C read | pipes | and `backticks` <b>bold</b> from k\"'q";
    pub const MODEL: &str = "lin|\"<i>x</i>";

    /// A history and verdicts full of hostile values.
    pub fn hostile() -> (History, VerdictDoc, faultline_results::RunInfo) {
        let mut h = Synth::new(11, 300).with_standard_faults(0.2).history();
        for e in h.events.iter_mut() {
            if e.key.as_ref().is_some_and(|k| k.0 == "k1") {
                e.key = Some(Key(KEY.into()));
            }
            if e.node.as_deref() == Some("n2") {
                e.node = Some(NODE.into());
            }
            if e.error.is_some() {
                e.error = Some(ERROR.into());
            }
            if e.f == "partition" {
                e.value = json!({"n1": ["<svg onload=alert(4)>"], "<svg onload=alert(4)>": ["n1"]});
            }
            if e.value == json!(5) {
                e.value = Value::String("\"'<&>`|".into());
            }
        }
        let ops = h.pair("hostile").expect("pairs").ops;
        let pick: Vec<_> = ops
            .iter()
            .filter(|o| o.key.as_ref().is_some_and(|k| k.0 == KEY))
            .take(2)
            .cloned()
            .collect();
        let w = Witness {
            model: MODEL.into(),
            kind: "kind<u>".into(),
            key: Some(KEY.into()),
            summary: SUMMARY.into(),
            ops: pick
                .into_iter()
                .enumerate()
                .map(|(i, op)| WitnessOp {
                    label: format!("<{i}>"),
                    op,
                })
                .collect(),
            steps: vec![Step::relation(
                "real-time",
                "<0>",
                "<1>",
                "step with </ol><script>alert(5)</script> and ```fences```",
            )],
            minimality: Minimality::NotMinimised,
        };
        let doc = VerdictDoc::new(
            vec![
                ModelEntry::checked(
                    MODEL,
                    &Verdict::Invalid {
                        witness: Box::new(w),
                    },
                )
                .claimed(true),
                ModelEntry::checked(
                    "cc",
                    &Verdict::Unknown {
                        reason: "reason <script>alert(6)</script> & more".into(),
                        undecided: vec![KEY.into()],
                    },
                ),
            ],
            vec![],
        );
        let mut run = run_info(11);
        run.command = Some(
            "faultline test --target '<x>' && echo \"$(id)\" </code></pre><script>alert(7)</script>"
                .into(),
        );
        run.source = Some("file|with|pipes`".into());
        run.nodes = vec![NODE.into()];
        run.versions
            .insert("<sut>".into(), "1.0 <script>alert(8)</script>".into());
        (h, doc, run)
    }
}
