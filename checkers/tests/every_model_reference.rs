//! Every model of `--model all`, through the path the command line takes
//! ([`check_all`] then [`model_table`]), against the brute-force reference of
//! `brute/` on many small random histories of every shape: repeated values, values equal
//! to the initial one, info writes and cas (completed as info or never completed), failed
//! cas with and without `mismatch`, failed writes, info reads, reads of the initial value
//! and of values nobody wrote, a non-null initial value, Knossos's nil reads, and
//! processes that go on after an info operation.
//!
//! Each row of the table must agree with the reference: valid or implied only if the
//! model holds, invalid or ruled out only if it does not. Unknown is allowed only where
//! the library documents it (the causal and session models on histories whose values
//! are not unique per key, or with a cas that failed on a mismatch; causal memory with
//! a cas); linearizability and sequential consistency are always decided on histories
//! this small. The reference itself must respect the lattice.
//!
//! `FAULTLINE_REFERENCE_CASES` sets the number of histories (default 100,000, spread over
//! a few seeds); the test prints what the histories covered.

mod brute;

use brute::{Semantics, Shape};
use faultline_checkers::{check_all, model_table, ConsistencyOptions, ModelName, RowStatus};
use faultline_history::{pair, Event, EventType, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// One random history's knobs.
#[derive(Debug, Clone, Copy)]
struct Knobs {
    procs: u64,
    ops: usize,
    keys: usize,
    /// Values written are 1..=max (and 0 when the initial value is 0), or with
    /// `fresh`, 1, 2, 3, ... in order, repeating an earlier one now and then.
    max_value: i64,
    fresh: bool,
    /// Read results and cas outcomes come from a register that the operations update
    /// as they complete (reads now and then stale), instead of being drawn at random.
    simulate: bool,
    initial_zero: bool,
    nil_reads_unknown: bool,
    /// A process may invoke again after an info operation (imported histories do).
    go_on_after_info: bool,
    /// Start from a causal chain across three sessions and two keys (p0 writes x, p1
    /// reads x and writes y, p2 reads y and then x), which tells CC from PRAM.
    chain: bool,
}

#[derive(Debug, Clone)]
struct Planned {
    f: &'static str,
    key: usize,
    invoke_value: Value,
    complete_value: Value,
    kind: EventType,
    error: Option<&'static str>,
    /// An info operation that never completes (only a process's last).
    open: bool,
}

fn knobs(rng: &mut ChaCha8Rng) -> Knobs {
    let procs = [1, 2, 2, 3, 3, 3][rng.gen_range(0..6)];
    Knobs {
        procs,
        // Three sessions need more operations to pass causality along a chain.
        ops: if procs == 3 {
            rng.gen_range(4..=9)
        } else {
            rng.gen_range(1..=8)
        },
        keys: if rng.gen_bool(0.5) { 1 } else { 2 },
        max_value: rng.gen_range(1..=3),
        fresh: rng.gen_bool(0.5),
        simulate: rng.gen_bool(0.5),
        initial_zero: rng.gen_bool(0.2),
        nil_reads_unknown: rng.gen_bool(0.1),
        go_on_after_info: rng.gen_bool(0.3),
        chain: procs == 3 && rng.gen_bool(0.15),
    }
}

/// Draws written values and observed ones.
struct Values {
    next: i64,
    written: Vec<i64>,
}

impl Values {
    fn write(&mut self, rng: &mut ChaCha8Rng, k: &Knobs) -> Value {
        let v = if !k.fresh {
            let low = if k.initial_zero { 0 } else { 1 };
            rng.gen_range(low..=k.max_value)
        } else if !self.written.is_empty() && rng.gen_range(0..8) == 0 {
            self.written[rng.gen_range(0..self.written.len())]
        } else {
            self.next += 1;
            self.next
        };
        self.written.push(v);
        json!(v)
    }

    /// What a read or a cas expects: the initial value (as null, or as 0 when that is
    /// the initial value), a value written so far, or rarely a value nobody writes.
    fn observed(&mut self, rng: &mut ChaCha8Rng, k: &Knobs) -> Value {
        match rng.gen_range(0..10) {
            0..=1 => Value::Null,
            2 if k.initial_zero => json!(0),
            3 => json!(99),
            _ if !self.written.is_empty() => {
                json!(self.written[rng.gen_range(0..self.written.len())])
            }
            _ => self.write(rng, k),
        }
    }
}

fn plan(rng: &mut ChaCha8Rng, k: &Knobs, vals: &mut Values) -> Planned {
    let key = rng.gen_range(0..k.keys);
    let roll = rng.gen_range(0..100);
    match rng.gen_range(0..3) {
        0 => {
            let v = vals.write(rng, k);
            let (kind, error) = match roll {
                0..=64 => (EventType::Ok, None),
                65..=89 => (EventType::Info, Some("timeout")),
                _ => (EventType::Fail, Some("unavailable")),
            };
            Planned {
                f: "write",
                key,
                invoke_value: v.clone(),
                complete_value: v,
                kind,
                error,
                open: false,
            }
        }
        1 => {
            let (kind, error, result) = match roll {
                0..=79 => (EventType::Ok, None, vals.observed(rng, k)),
                80..=89 => (EventType::Info, Some("timeout"), Value::Null),
                _ => (EventType::Fail, Some("unavailable"), Value::Null),
            };
            Planned {
                f: "read",
                key,
                invoke_value: Value::Null,
                complete_value: result,
                kind,
                error,
                open: false,
            }
        }
        _ => {
            let expected = vals.observed(rng, k);
            let arg = json!([expected, vals.write(rng, k)]);
            let (kind, error) = match roll {
                0..=44 => (EventType::Ok, None),
                45..=64 => (EventType::Info, Some("timeout")),
                65..=89 => (EventType::Fail, Some("mismatch")),
                _ => (EventType::Fail, Some("unavailable")),
            };
            Planned {
                f: "cas",
                key,
                invoke_value: arg.clone(),
                complete_value: arg,
                kind,
                error,
                open: false,
            }
        }
    }
}

/// A register per key that simulated operations update.
struct Sim {
    state: [Value; 2],
    /// Every value each key held, for stale reads.
    past: [Vec<Value>; 2],
}

impl Sim {
    fn holds(&self, k: &Knobs, key: usize, v: &Value) -> bool {
        let init = |v: &Value| v.is_null() || (k.initial_zero && *v == json!(0));
        match (init(&self.state[key]), init(v)) {
            (true, true) => true,
            (false, false) => self.state[key] == *v,
            _ => false,
        }
    }

    fn set(&mut self, key: usize, v: Value) {
        self.state[key] = v.clone();
        self.past[key].push(v);
    }

    /// A cas usually expects what the key holds now.
    fn invoke(&mut self, rng: &mut ChaCha8Rng, k: &Knobs, op: &mut Planned) {
        if op.f == "cas" && rng.gen_bool(0.6) {
            op.invoke_value[0] = self.state[op.key].clone();
            op.complete_value = op.invoke_value.clone();
        }
        if op.open && rng.gen_bool(0.5) {
            self.apply(k, op);
        }
    }

    /// The effect of an operation that took effect, if it has one.
    fn apply(&mut self, k: &Knobs, op: &Planned) {
        match op.f {
            "write" => self.set(op.key, op.invoke_value.clone()),
            "cas" if self.holds(k, op.key, &op.invoke_value[0]) => {
                self.set(op.key, op.invoke_value[1].clone())
            }
            _ => {}
        }
    }

    fn complete(&mut self, rng: &mut ChaCha8Rng, k: &Knobs, op: &mut Planned) {
        match (op.f, op.kind, op.error) {
            ("read", EventType::Ok, _) => {
                op.complete_value = if rng.gen_bool(0.75) {
                    self.state[op.key].clone()
                } else {
                    let past = &self.past[op.key];
                    past[rng.gen_range(0..past.len())].clone()
                };
            }
            ("write", EventType::Ok, _) => self.apply(k, op),
            ("cas", EventType::Ok, _) | ("cas", EventType::Fail, Some("mismatch")) => {
                if self.holds(k, op.key, &op.invoke_value[0]) {
                    op.kind = EventType::Ok;
                    op.error = None;
                    self.apply(k, op);
                } else {
                    op.kind = EventType::Fail;
                    op.error = Some("mismatch");
                }
            }
            (_, EventType::Info, _) if rng.gen_bool(0.5) => self.apply(k, op),
            _ => {}
        }
    }
}

/// A random history and the semantics to read it with.
fn random_history(rng: &mut ChaCha8Rng) -> (Vec<Event>, Knobs) {
    let k = knobs(rng);
    let mut sessions: Vec<Vec<Planned>> = vec![Vec::new(); k.procs as usize];
    let mut vals = Values {
        next: 0,
        written: Vec::new(),
    };
    if k.chain {
        let a = vals.write(rng, &k);
        let b = vals.write(rng, &k);
        let read = |key: usize, v: &Value, rng: &mut ChaCha8Rng| Planned {
            f: "read",
            key,
            invoke_value: Value::Null,
            complete_value: if rng.gen_bool(0.6) {
                v.clone()
            } else {
                Value::Null
            },
            kind: EventType::Ok,
            error: None,
            open: false,
        };
        let write = |key: usize, v: &Value| Planned {
            f: "write",
            key,
            invoke_value: v.clone(),
            complete_value: v.clone(),
            kind: EventType::Ok,
            error: None,
            open: false,
        };
        sessions[0].push(write(0, &a));
        sessions[1].push(read(0, &a, rng));
        sessions[1].push(write(1, &b));
        sessions[2].push(read(1, &b, rng));
        sessions[2].push(read(0, &a, rng));
    }
    let planned = if k.chain {
        k.ops.saturating_sub(5)
    } else {
        k.ops
    };
    for _ in 0..planned {
        let p = rng.gen_range(0..k.procs) as usize;
        sessions[p].push(plan(rng, &k, &mut vals));
    }
    for s in &mut sessions {
        if !k.go_on_after_info {
            if let Some(i) = s.iter().position(|o| o.kind == EventType::Info) {
                s.truncate(i + 1);
            }
        }
        if let Some(last) = s.last_mut() {
            if last.kind == EventType::Info && rng.gen_bool(0.4) {
                last.open = true;
            }
        }
    }
    // Interleave invokes and completions at random.
    let mut next = vec![0usize; sessions.len()];
    let mut in_flight = vec![false; sessions.len()];
    let mut events = Vec::new();
    let mut sim = Sim {
        state: [Value::Null, Value::Null],
        past: [vec![Value::Null], vec![Value::Null]],
    };
    loop {
        let ready: Vec<usize> = (0..sessions.len())
            .filter(|&p| {
                let op = sessions[p].get(next[p]);
                op.is_some_and(|o| !(in_flight[p] && o.open))
            })
            .collect();
        let Some(&p) = ready.get(rng.gen_range(0..ready.len().max(1))) else {
            break;
        };
        let index = events.len() as u64;
        let op = &mut sessions[p][next[p]];
        let key = ["x", "y"][op.key];
        if in_flight[p] {
            if k.simulate {
                sim.complete(rng, &k, op);
            }
            let mut e = Event::client(index, p as u64, op.kind, op.f, op.complete_value.clone())
                .with_key(key);
            e.error = op.error.map(str::to_string);
            events.push(e);
            in_flight[p] = false;
            next[p] += 1;
        } else {
            if k.simulate {
                sim.invoke(rng, &k, op);
            }
            events.push(
                Event::client(
                    index,
                    p as u64,
                    EventType::Invoke,
                    op.f,
                    op.invoke_value.clone(),
                )
                .with_key(key),
            );
            in_flight[p] = true;
            if op.open {
                next[p] += 1;
            }
        }
    }
    (events, k)
}

fn semantics(k: &Knobs) -> Semantics {
    Semantics {
        initial: if k.initial_zero {
            json!(0)
        } else {
            Value::Null
        },
        nil_reads_unknown: k.nil_reads_unknown,
    }
}

fn describe(events: &[Event], k: &Knobs) -> String {
    let mut s = format!(
        "initial {}, nil reads unknown: {}\n",
        semantics(k).initial,
        k.nil_reads_unknown
    );
    for e in events {
        s.push_str(&serde_json::to_string(e).expect("events serialise"));
        s.push('\n');
    }
    s
}

/// Counts of what the histories covered.
#[derive(Debug, Default)]
struct Coverage {
    histories: usize,
    repeated: usize,
    info_write: usize,
    info_cas: usize,
    ok_cas: usize,
    mismatch: usize,
    init_read: usize,
    initial_zero: usize,
    nil_reads_unknown: usize,
    go_on_after_info: usize,
    /// Per model: reference holds, reference fails, library decided, library unknown.
    per_model: [[usize; 4]; 10],
    /// Repeated-value histories per model where the library decided.
    repeated_decided: [usize; 10],
    /// Per pair (m, w) with m implying w directly: histories where w holds and m fails.
    separated: Vec<(ModelName, ModelName, usize)>,
}

impl Coverage {
    fn add(&mut self, s: &Shape, k: &Knobs) {
        self.histories += 1;
        self.repeated += usize::from(s.repeated);
        self.info_write += usize::from(s.info_write);
        self.info_cas += usize::from(s.info_cas);
        self.ok_cas += usize::from(s.ok_cas);
        self.mismatch += usize::from(s.mismatch);
        self.init_read += usize::from(s.init_read);
        self.initial_zero += usize::from(k.initial_zero);
        self.nil_reads_unknown += usize::from(k.nil_reads_unknown);
        self.go_on_after_info += usize::from(k.go_on_after_info);
    }

    fn print(&self) {
        println!(
            "{} histories: {} with repeated values, {} with info writes, {} with info cas, {} with ok cas, {} with a mismatch, {} reading the initial value, {} with initial 0, {} with nil reads unknown, {} going on after info",
            self.histories,
            self.repeated,
            self.info_write,
            self.info_cas,
            self.ok_cas,
            self.mismatch,
            self.init_read,
            self.initial_zero,
            self.nil_reads_unknown,
            self.go_on_after_info
        );
        let pairs: Vec<String> = self
            .separated
            .iter()
            .map(|(m, w, c)| format!("{w} but not {m}: {c}"))
            .collect();
        println!("held apart by the reference: {}", pairs.join(", "));
        println!("model         holds  fails  decided unknown  decided-with-repeats");
        for (i, m) in ModelName::ALL.iter().enumerate() {
            let [h, f, d, u] = self.per_model[i];
            println!(
                "{:<13} {h:>6} {f:>6} {d:>8} {u:>7} {:>8}",
                m.as_str(),
                self.repeated_decided[i]
            );
        }
    }
}

fn check_against_reference(seed: u64, n: usize, cov: &mut Coverage) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for case in 0..n {
        let (events, k) = random_history(&mut rng);
        let paired = pair(&events, "random").expect("generated histories pair");
        if paired.ops.is_empty() {
            continue;
        }
        let sem = semantics(&k);
        let shape = brute::shape(&paired, &sem);
        cov.add(&shape, &k);
        let rows = brute::compare(&paired, &sem)
            .unwrap_or_else(|e| panic!("{e}; seed {seed} case {case}:\n{}", describe(&events, &k)));
        for (i, row) in rows.iter().enumerate() {
            let holds = row.holds;
            cov.per_model[i][usize::from(!holds)] += 1;
            match row.said {
                Some(_) => {
                    cov.per_model[i][2] += 1;
                    cov.repeated_decided[i] += usize::from(shape.repeated);
                }
                None => cov.per_model[i][3] += 1,
            }
            for &w in row.model.implies() {
                let weaker = rows.iter().find(|r| r.model == w).map(|r| r.holds);
                if weaker == Some(true) && !holds {
                    match cov
                        .separated
                        .iter_mut()
                        .find(|(a, b, _)| (*a, *b) == (row.model, w))
                    {
                        Some(entry) => entry.2 += 1,
                        None => cov.separated.push((row.model, w, 1)),
                    }
                }
            }
        }
    }
}

fn cases() -> usize {
    std::env::var("FAULTLINE_REFERENCE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

#[test]
fn every_model_agrees_with_the_reference_on_repeated_values() {
    let n = cases();
    let mut cov = Coverage::default();
    let seeds = [0x7e57_0001_u64, 0x7e57_0002, 0x7e57_0003, 0x7e57_0004];
    for (i, &seed) in seeds.iter().enumerate() {
        let share = n / seeds.len() + usize::from(i < n % seeds.len());
        check_against_reference(seed, share, &mut cov);
    }
    cov.print();
    // The shapes the test is about must be there in numbers.
    let at_least = |count: usize, what: &str| {
        assert!(
            count * 20 >= cov.histories,
            "only {count} of {} histories {what}",
            cov.histories
        )
    };
    at_least(cov.repeated, "repeat a value");
    at_least(cov.info_write, "have an info write");
    at_least(cov.info_cas, "have an info cas");
    at_least(cov.mismatch, "have a failed cas with mismatch");
    at_least(cov.init_read, "read the initial value");
    for (i, m) in ModelName::ALL.iter().enumerate() {
        let [holds, fails, decided, _] = cov.per_model[i];
        assert!(
            holds * 50 >= cov.histories && fails * 50 >= cov.histories,
            "{m}: the reference held on {holds} and failed on {fails} of {} histories",
            cov.histories
        );
        assert!(decided > 0, "{m} was never decided");
    }
    // Every step of the lattice is exercised by histories that tell its two models apart.
    for m in ModelName::ALL {
        for &w in m.implies() {
            let count = cov
                .separated
                .iter()
                .find(|(a, b, _)| (*a, *b) == (m, w))
                .map_or(0, |e| e.2);
            assert!(
                count * 10_000 >= cov.histories,
                "only {count} histories hold {w} but not {m}"
            );
        }
    }
}

/// The history of the report that found the false violations: an info cas is the first
/// writer of a value that a read returns, and another write of the same value explains
/// the read. Sequentially consistent (and so every weaker model holds); not linearizable.
#[test]
fn a_read_of_a_repeated_value_is_not_pinned_to_its_first_writer() {
    let events: Vec<Event> = [
        r#"{"index":0,"time":0,"process":1,"type":"invoke","f":"cas","value":[1,2]}"#,
        r#"{"index":1,"time":10,"process":1,"type":"info","f":"cas","value":[1,2]}"#,
        r#"{"index":2,"time":20,"process":2,"type":"invoke","f":"read","value":null}"#,
        r#"{"index":3,"time":30,"process":2,"type":"ok","f":"read","value":2}"#,
        r#"{"index":4,"time":40,"process":0,"type":"invoke","f":"write","value":2}"#,
        r#"{"index":5,"time":50,"process":0,"type":"ok","f":"write","value":2}"#,
    ]
    .iter()
    .map(|l| serde_json::from_str(l).expect("event"))
    .collect();
    let paired = pair(&events, "report").expect("pairs");
    let sem = Semantics {
        initial: Value::Null,
        nil_reads_unknown: false,
    };
    let truth = brute::truth(&paired, &sem);
    assert!(!truth.holds(ModelName::Linearizable));
    assert!(truth.holds(ModelName::Sequential));
    let table = model_table(check_all(
        &paired,
        &ModelName::ALL,
        None,
        &ConsistencyOptions::default(),
    ));
    for row in &table.rows {
        let expect_holds = row.model != ModelName::Linearizable;
        match &row.status {
            RowStatus::Valid | RowStatus::Implied { .. } => assert!(expect_holds, "{row:?}"),
            RowStatus::Invalid | RowStatus::RuledOut { .. } => {
                assert!(!expect_holds, "{}: {:?}", row.model, row.verdict)
            }
            RowStatus::Unknown { .. } | RowStatus::NotChecked => {
                assert!(expect_holds, "linearizability must be decided")
            }
        }
    }
    assert_eq!(
        table
            .rows
            .iter()
            .find(|r| r.model == ModelName::Sequential)
            .map(|r| &r.status),
        Some(&RowStatus::Valid)
    );
}

/// The byte decoder of the `check_all` fuzz target gives well-formed histories on which
/// the library agrees with the reference (random byte strings, seeded).
#[test]
fn histories_decoded_from_bytes_agree_with_the_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xb7e5);
    let mut decided = 0;
    for case in 0..20_000 {
        let len = rng.gen_range(0..40);
        let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let (events, sem) = brute::bytes::history(&bytes);
        let paired = pair(&events, "bytes").unwrap_or_else(|e| panic!("case {case}: {e}"));
        if paired.ops.is_empty() {
            continue;
        }
        let rows = brute::compare(&paired, &sem)
            .unwrap_or_else(|e| panic!("case {case}: {e}; bytes {bytes:?}"));
        decided += rows.iter().filter(|r| r.said.is_some()).count();
    }
    assert!(decided > 100_000, "only {decided} decided rows");
}
