//! The incremental checker against the offline checkers, on every cut of many small
//! random histories and of larger synthetic ones.
//!
//! Two properties: a violation found on a cut is a violation of the whole history (the
//! offline checker never calls that model valid on it), and once every event is in, the
//! incremental checker has found exactly the models the offline checkers find invalid
//! (the other models only when the last round was not deferred by a read of a value the
//! history never writes).
//!
//! `FAULTLINE_INCREMENTAL_CASES` sets the number of random histories (default 3,000).

use faultline_checkers::lattice::{check_models, ConsistencyOptions, ModelName};
use faultline_checkers::synth::{generate, SynthConfig, Violation};
use faultline_checkers::{
    check_linearizable, DataModel, Incremental, IncrementalSpec, LinOptions, Verdict,
};
use faultline_history::{pair, Event, EventType, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Every model but linearizability, strongest first.
const OTHERS: &[ModelName] = ModelName::ALL.split_at(1).1;

/// A random history of up to `n` operations by 3 processes on 2 keys: reads, writes and
/// cas; ok, fail (with and without mismatch) and info completions; results drawn at
/// random (so most histories break some model); some operations never complete. Values
/// are 1..=3, or with `unique` fresh for every write and cas (what a campaign writes),
/// reads and compares then drawn among the values written so far and one never written.
fn random_history(rng: &mut ChaCha8Rng, n: usize, unique: bool) -> Vec<Event> {
    let mut events = Vec::new();
    let mut fresh = 0i64;
    let mut value = |rng: &mut ChaCha8Rng, new: bool| -> i64 {
        if !unique {
            rng.gen_range(1..=3)
        } else if new {
            fresh += 1;
            fresh
        } else {
            rng.gen_range(1..=fresh + 1)
        }
    };
    let mut open: [Option<(String, String, Value)>; 3] = [None, None, None];
    let mut next_process = [0u64, 1, 2];
    let mut invoked = 0;
    while invoked < n || open.iter().any(Option::is_some) {
        let slot = rng.gen_range(0..3);
        let index = events.len() as u64;
        let p = next_process[slot];
        match open[slot].take() {
            None if invoked < n => {
                invoked += 1;
                let key = format!("k{}", rng.gen_range(0..2));
                let (f, v) = match rng.gen_range(0..3) {
                    0 => ("read", Value::Null),
                    1 => ("write", json!(value(rng, true))),
                    _ => {
                        let expected = value(rng, false);
                        ("cas", json!([expected, value(rng, true)]))
                    }
                };
                events
                    .push(Event::client(index, p, EventType::Invoke, f, v.clone()).with_key(&key));
                open[slot] = Some((f.to_string(), key, v));
            }
            None => {}
            Some((f, key, v)) => {
                // Leave the last few operations in flight now and then.
                if invoked >= n && rng.gen_bool(0.3) {
                    continue;
                }
                let roll = rng.gen_range(0..10);
                let (kind, value, error) = match (f.as_str(), roll) {
                    (_, 0) => (EventType::Info, v.clone(), Some("timeout")),
                    ("cas", 1) => (EventType::Fail, v.clone(), Some("mismatch")),
                    (_, 2) => (EventType::Fail, v.clone(), None),
                    ("read", _) => {
                        let r = value(rng, false) * i64::from(rng.gen_bool(0.8));
                        (
                            EventType::Ok,
                            if r == 0 { Value::Null } else { json!(r) },
                            None,
                        )
                    }
                    _ => (EventType::Ok, v.clone(), None),
                };
                let mut e = Event::client(index, p, kind, &f, value).with_key(&key);
                if let Some(err) = error {
                    e = e.with_error(err);
                }
                events.push(e);
                if kind == EventType::Info {
                    // A process whose operation is unknown goes on as a new process.
                    next_process[slot] += 3;
                }
            }
        }
    }
    events
}

/// The offline checkers' verdict on the whole history, per model: `Some(holds)`, or
/// `None` for unknown.
fn offline(events: &[Event], dm: DataModel) -> BTreeMap<ModelName, Option<bool>> {
    let paired = pair(events, "h").expect("generated histories pair");
    let lin = check_linearizable(&paired, dm, &LinOptions::default());
    assert!(
        !matches!(lin.verdict, Verdict::Unknown { .. }),
        "a history this small is always decided"
    );
    let mut all = BTreeMap::from([(ModelName::Linearizable, lin.verdict.holds())]);
    for (m, v) in check_models(&paired, OTHERS, &ConsistencyOptions::default()) {
        all.insert(m, v.holds());
    }
    all
}

/// Feeds `events` one at a time, checking after every `every` events and at the end;
/// checks both properties; returns (models found early, of them other than
/// linearizability, models found in all).
fn run(events: &[Event], dm: DataModel, every: usize, unique: bool) -> (usize, usize, usize) {
    let offline = offline(events, dm);
    let mut inc = Incremental::new(IncrementalSpec::new(Some(dm), OTHERS.to_vec(), unique), "h");
    let (mut early, mut early_others) = (0, 0);
    for (i, e) in events.iter().enumerate() {
        inc.push(e.clone()).expect("pairs");
        if (i + 1) % every == 0 && i + 1 < events.len() {
            for v in inc.check(i as u64) {
                early += 1;
                early_others += usize::from(v.model != ModelName::Linearizable);
                assert_ne!(
                    offline[&v.model],
                    Some(true),
                    "{} found on the cut at event {i} but the whole history holds it\n{}\nhistory: {events:#?}",
                    v.model,
                    v.witness.render_text()
                );
            }
        }
    }
    let deferred_before = inc.stats().deferred;
    for v in inc.check(u64::MAX) {
        assert_ne!(
            offline[&v.model],
            Some(true),
            "{} on the whole history",
            v.model
        );
    }
    let deferred_last = inc.stats().deferred > deferred_before;
    let found: BTreeSet<ModelName> = inc.violations().iter().map(|v| v.model).collect();
    for (m, _) in offline.iter().filter(|(_, holds)| **holds == Some(false)) {
        let must = *m == ModelName::Linearizable || !deferred_last;
        assert!(
            !must || found.contains(m),
            "{m} is invalid offline but the incremental checker missed it; history: {events:#?}"
        );
    }
    (early, early_others, found.len())
}

#[test]
fn every_cut_of_small_random_histories_agrees_with_the_offline_checkers() {
    let cases: usize = std::env::var("FAULTLINE_INCREMENTAL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    let mut rng = ChaCha8Rng::seed_from_u64(20261204);
    let (mut early, mut others, mut found, mut events) = (0, 0, 0, 0);
    for case in 0..cases {
        let n = rng.gen_range(1..=8);
        let unique = case % 2 == 0;
        let h = random_history(&mut rng, n, unique);
        events += h.len();
        let (e, o, f) = run(&h, DataModel::CasRegister, 1 + case % 3, unique);
        early += e;
        others += o;
        found += f;
    }
    println!(
        "{cases} histories, {events} events: {early} violations found before the last event ({others} of models other than linearizability), {found} in all"
    );
    assert!(
        early > cases / 10,
        "the random histories should break models early"
    );
    assert!(others > cases / 20, "and not only linearizability");
}

#[test]
fn synthetic_histories_with_and_without_a_stale_read() {
    for seed in 0..20 {
        for (violation, cas, unique) in [
            (None, false, true),
            (Some(Violation::StaleRead), false, true),
            (None, true, true),
            (None, true, false),
        ] {
            let cfg = SynthConfig {
                ops: 300,
                keys: 3,
                processes: 5,
                info_rate: 0.05,
                cas,
                unique_values: unique,
                violation,
                seed,
                ..SynthConfig::default()
            };
            let events = generate(&cfg).expect("synth");
            let dm = if cas {
                DataModel::CasRegister
            } else {
                DataModel::Register
            };
            run(&events, dm, 25, unique);
            if violation.is_some() {
                let found = {
                    let mut inc =
                        Incremental::new(IncrementalSpec::new(Some(dm), Vec::new(), unique), "h");
                    for e in &events {
                        inc.push(e.clone()).unwrap();
                    }
                    inc.check(0)
                };
                assert_eq!(found.len(), 1, "seed {seed}: the stale read is found");
            }
        }
    }
}
