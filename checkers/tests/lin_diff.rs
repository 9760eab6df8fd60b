//! Differential tests: the checker against a brute-force checker on thousands of small
//! random histories (<= 8 operations, 3 processes, info and fail operations, cas,
//! duplicate values), with both decision procedures; and the zones against the search.
//!
//! The brute force enumerates every order of the operations that respects real time,
//! where each `info` operation may be placed anywhere after its invoke or left out, and
//! replays it on the model. It shares no code with the checker.

mod lin_common;

use faultline_checkers::{check_linearizable, Algorithm, DataModel, LinOptions, Verdict};
use faultline_history::{pair, Event, EventType, Operation, Outcome, Paired};
use lin_common::assert_witness_fails;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// What one operation requires and does, for the brute force.
#[derive(Debug, Clone)]
enum Eff {
    Read(Value),
    Write(Value),
    Cas(Value, Value),
    NotEqual(Value),
    Append(String),
}

struct BOp {
    eff: Eff,
    info: bool,
    invoke: u64,
    complete: u64,
}

fn brute_ops(ops: &[Operation]) -> Vec<BOp> {
    let mut out = Vec::new();
    for op in ops {
        let info = op.outcome == Outcome::Info;
        let eff = match (op.f.as_str(), op.outcome) {
            ("read", Outcome::Ok) => Eff::Read(op.result.clone()),
            ("read", _) => continue,
            ("cas", Outcome::Fail) if op.error.as_deref() == Some("mismatch") => {
                Eff::NotEqual(op.argument[0].clone())
            }
            (_, Outcome::Fail) => continue,
            ("write", _) => Eff::Write(op.argument.clone()),
            ("cas", _) => Eff::Cas(op.argument[0].clone(), op.argument[1].clone()),
            ("append", _) => Eff::Append(op.argument.as_str().unwrap_or_default().to_string()),
            (f, _) => panic!("brute force does not know {f}"),
        };
        out.push(BOp {
            eff,
            info,
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

fn apply(state: &Value, eff: &Eff) -> Option<Value> {
    match eff {
        Eff::Read(v) => (state == v).then(|| state.clone()),
        Eff::Write(v) => Some(v.clone()),
        Eff::Cas(e, n) => (state == e).then(|| n.clone()),
        Eff::NotEqual(e) => (state != e).then(|| state.clone()),
        Eff::Append(s) => match state {
            Value::Null => Some(json!(s)),
            Value::String(cur) => Some(json!(format!("{cur}{s}"))),
            _ => None,
        },
    }
}

fn brute_linearizable(ops: &[BOp], initial: &Value) -> bool {
    fn go(ops: &[BOp], placed: &mut Vec<bool>, state: &Value) -> bool {
        if ops.iter().zip(placed.iter()).all(|(o, &p)| p || o.info) {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            // Every unplaced op that completed before i was invoked must come first.
            let blocked =
                (0..ops.len()).any(|j| !placed[j] && j != i && ops[j].complete < ops[i].invoke);
            if blocked {
                continue;
            }
            if let Some(s2) = apply(state, &ops[i].eff) {
                placed[i] = true;
                let ok = go(ops, placed, &s2);
                placed[i] = false;
                if ok {
                    return true;
                }
            }
        }
        false
    }
    let mut placed = vec![false; ops.len()];
    go(ops, &mut placed, initial)
}

/// Knobs of the random histories.
#[derive(Clone, Copy)]
struct Gen {
    cas: bool,
    append: bool,
    unique: bool,
}

/// A random history of at most 8 operations by 3 processes (results random, so both
/// linearizable and not).
fn random_history(rng: &mut ChaCha8Rng, g: Gen) -> Vec<Event> {
    let n_ops = rng.gen_range(1..=8);
    let mut events = Vec::new();
    let mut busy: Vec<Option<(String, Value)>> = vec![None; 3];
    let mut pids: Vec<u64> = vec![0, 1, 2];
    let mut next_pid = 3;
    let mut started = 0;
    let mut next_val = 1;
    let strs = ["a", "b", "c"];
    let reads: Vec<Value> = if g.append {
        ["", "a", "b", "ab", "ba", "abc", "ca"]
            .iter()
            .map(|s| json!(s))
            .collect()
    } else {
        vec![Value::Null, json!(1), json!(2), json!(3)]
    };
    while started < n_ops || busy.iter().any(Option::is_some) {
        let p = rng.gen_range(0..3);
        let idx = events.len() as u64;
        match busy[p].take() {
            None if started < n_ops => {
                started += 1;
                let r: f64 = rng.gen();
                let (f, arg) = if r < 0.4 {
                    ("read", Value::Null)
                } else if g.append && r < 0.8 {
                    ("append", json!(strs[rng.gen_range(0..3)]))
                } else if g.cas && r < 0.7 {
                    let e = reads[rng.gen_range(0..reads.len())].clone();
                    let n = if g.unique {
                        next_val += 1;
                        json!(next_val)
                    } else {
                        json!(rng.gen_range(1..4))
                    };
                    ("cas", json!([e, n]))
                } else {
                    let v = if g.unique {
                        next_val += 1;
                        json!(next_val)
                    } else {
                        json!(rng.gen_range(1..4))
                    };
                    ("write", v)
                };
                events.push(Event::client(
                    idx,
                    pids[p],
                    EventType::Invoke,
                    f,
                    arg.clone(),
                ));
                busy[p] = Some((f.to_string(), arg));
            }
            None => {}
            Some((f, arg)) => {
                let r: f64 = rng.gen();
                let (kind, value, error) = if r < 0.12 {
                    (EventType::Info, arg.clone(), Some("timeout"))
                } else if r < 0.2 {
                    (
                        EventType::Fail,
                        arg.clone(),
                        Some(if f == "cas" { "mismatch" } else { "refused" }),
                    )
                } else if f == "read" {
                    let v = if g.unique && !g.append && rng.gen_bool(0.5) {
                        json!(rng.gen_range(1..next_val + 1))
                    } else {
                        reads[rng.gen_range(0..reads.len())].clone()
                    };
                    (EventType::Ok, v, None)
                } else {
                    (EventType::Ok, arg.clone(), None)
                };
                let mut ev = Event::client(idx, pids[p], kind, &f, value);
                if let Some(e) = error {
                    ev = ev.with_error(e);
                }
                events.push(ev);
                if kind == EventType::Info {
                    pids[p] = next_pid;
                    next_pid += 1;
                }
            }
        }
        // Leave some operations never completed.
        if started == n_ops && rng.gen_bool(0.05) {
            break;
        }
    }
    events
}

fn show(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_diff(
    base_seed: u64,
    cases: u64,
    g: Gen,
    model: DataModel,
    initial: Value,
) -> (usize, usize) {
    let mut counts = (0, 0);
    for i in 0..cases {
        let seed = base_seed + i;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let events = random_history(&mut rng, g);
        let paired: Paired = pair(&events, "random").expect("random histories pair");
        let expect = brute_linearizable(&brute_ops(&paired.ops), &initial);
        for algorithm in [Algorithm::Auto, Algorithm::Search] {
            let opts = LinOptions {
                initial: initial.clone(),
                algorithm,
                ..LinOptions::default()
            };
            let r = check_linearizable(&paired, model, &opts);
            let got = match &r.verdict {
                Verdict::Valid => true,
                Verdict::Invalid { witness } => {
                    assert_witness_fails(&paired, model, &opts, witness, &format!("seed {seed}"));
                    false
                }
                v => panic!("seed {seed}: unknown verdict {v:?} on\n{}", show(&events)),
            };
            assert_eq!(
                got,
                expect,
                "seed {seed} ({algorithm:?}): checker says {}, brute force says {}, on\n{}",
                r.verdict.label(),
                if expect { "valid" } else { "invalid" },
                show(&events)
            );
        }
        if expect {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    counts
}

/// The random-history generator's switches.
const fn gen(cas: bool, append: bool, unique: bool) -> Gen {
    Gen {
        cas,
        append,
        unique,
    }
}

/// Runs [`run_diff`] and checks that both outcomes were exercised at least `min` times.
fn diff_both_ways(
    base_seed: u64,
    cases: u64,
    g: Gen,
    model: DataModel,
    initial: Value,
    min: usize,
) {
    let (valid, invalid) = run_diff(base_seed, cases, g, model, initial);
    assert!(
        valid > min && invalid > min,
        "both outcomes exercised: {valid} valid, {invalid} invalid"
    );
}

#[test]
fn register_with_duplicate_values_matches_brute_force() {
    diff_both_ways(
        1_000,
        2500,
        gen(false, false, false),
        DataModel::Register,
        Value::Null,
        200,
    );
}

#[test]
fn register_with_unique_values_matches_brute_force_and_zones() {
    // Unique values: the default procedure uses the zones, Search the search.
    diff_both_ways(
        10_000,
        2500,
        gen(false, false, true),
        DataModel::Register,
        Value::Null,
        200,
    );
}

#[test]
fn cas_register_matches_brute_force() {
    diff_both_ways(
        20_000,
        2500,
        gen(true, false, false),
        DataModel::CasRegister,
        Value::Null,
        200,
    );
}

#[test]
fn cas_register_with_unique_values_matches_brute_force() {
    diff_both_ways(
        30_000,
        1500,
        gen(true, false, true),
        DataModel::CasRegister,
        Value::Null,
        100,
    );
}

#[test]
fn kv_append_matches_brute_force() {
    diff_both_ways(
        40_000,
        2000,
        gen(false, true, false),
        DataModel::Kv,
        json!(""),
        100,
    );
}
