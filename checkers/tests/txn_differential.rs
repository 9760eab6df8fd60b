//! The transactional checker against a brute-force reference on thousands of tiny random
//! histories: strict serializability, serializability, snapshot isolation and read
//! committed. List-append must agree exactly; rw-register, whose reads reveal only part
//! of the version orders, must never contradict the reference (it may say unknown).

mod txn_support;

use faultline_checkers::txn::{check_txn, TxnModel, TxnOptions};
use faultline_checkers::Verdict;
use faultline_history::{pair, Event, EventType, Value};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use txn_support::brute::{holds, RefModel, BM, BT};

const MODELS: [(TxnModel, RefModel); 4] = [
    (TxnModel::StrictSerializable, RefModel::StrictSerializable),
    (TxnModel::Serializable, RefModel::Serializable),
    (TxnModel::SnapshotIsolation, RefModel::SnapshotIsolation),
    (TxnModel::ReadCommitted, RefModel::ReadCommitted),
];

/// A random tiny history: a random intended commit order whose reads mostly see a
/// plausible state, sometimes another prefix, sometimes garbage.
fn random_history(rng: &mut ChaCha8Rng, register: bool) -> (Vec<BT>, usize) {
    let n = rng.gen_range(1..=5);
    let keys = rng.gen_range(1..=3usize);
    let mut counters = vec![0u32; keys];
    let mut txns: Vec<BT> = (0..n)
        .map(|_| {
            let outcome = match rng.gen_range(0..20) {
                0..=12 => "ok",
                13..=16 => "info",
                _ => "fail",
            };
            let len = rng.gen_range(1..=3);
            let mops = (0..len)
                .map(|_| {
                    let k = rng.gen_range(0..keys) as u32;
                    if rng.gen_bool(0.5) {
                        counters[k as usize] += 1;
                        BM::Write(k, counters[k as usize])
                    } else {
                        BM::Read(k, None)
                    }
                })
                .collect();
            BT {
                outcome,
                mops,
                invoke: 0,
                complete: 0,
            }
        })
        .collect();
    // Intervals: a random interleaving of invokes and completions.
    let mut slots: Vec<(usize, bool)> = (0..n).flat_map(|i| [(i, false), (i, true)]).collect();
    slots.shuffle(rng);
    let mut seen_invoke = vec![false; n];
    let mut fixed = Vec::new();
    for (i, done) in slots {
        if done && !seen_invoke[i] {
            seen_invoke[i] = true;
            fixed.push((i, false));
            fixed.push((i, true));
        } else if !done && seen_invoke[i] {
            continue;
        } else {
            if !done {
                seen_invoke[i] = true;
            }
            fixed.push((i, done));
        }
    }
    for (pos, &(i, done)) in fixed.iter().enumerate() {
        if done {
            txns[i].complete = pos;
        } else {
            txns[i].invoke = pos;
        }
    }
    for t in txns.iter_mut() {
        if t.outcome == "info" {
            t.complete = usize::MAX;
        }
    }
    // Reads: a state of an intended order.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let committed: Vec<bool> = txns
        .iter()
        .map(|t| t.outcome == "ok" || (t.outcome == "info" && rng.gen_bool(0.5)))
        .collect();
    let state_at = |upto: usize, with_failed: bool, txns: &[BT]| -> Vec<Vec<u32>> {
        let mut s = vec![Vec::new(); keys];
        for &t in &order[..upto] {
            if committed[t] || with_failed {
                for m in &txns[t].mops {
                    if let BM::Write(k, v) = m {
                        s[*k as usize].push(*v);
                    }
                }
            }
        }
        s
    };
    for ti in 0..n {
        if txns[ti].outcome != "ok" {
            continue;
        }
        let pos = order.iter().position(|&x| x == ti).unwrap_or(0);
        let mine: Vec<(u32, u32)> = txns[ti]
            .mops
            .iter()
            .filter_map(|m| match m {
                BM::Write(k, v) => Some((*k, *v)),
                _ => None,
            })
            .collect();
        let mut own: Vec<Vec<u32>> = vec![Vec::new(); keys];
        for j in 0..txns[ti].mops.len() {
            match txns[ti].mops[j].clone() {
                BM::Write(k, v) => own[k as usize].push(v),
                BM::Read(k, _) => {
                    let roll = rng.gen_range(0..20);
                    let upto = match roll {
                        0..=11 => pos,
                        12..=15 => rng.gen_range(0..=pos),
                        _ => rng.gen_range(0..=n),
                    };
                    let mut base = state_at(upto, roll == 19, &txns)[k as usize].clone();
                    base.retain(|v| !mine.contains(&(k, *v)));
                    if roll == 18 && !base.is_empty() {
                        let j = rng.gen_range(0..base.len());
                        base.swap(0, j);
                        if rng.gen_bool(0.3) {
                            base.push(99);
                        }
                    }
                    let mut seen = base;
                    seen.extend(own[k as usize].iter().copied());
                    if register {
                        seen = seen.last().map(|v| vec![*v]).unwrap_or_default();
                    }
                    txns[ti].mops[j] = BM::Read(k, Some(seen));
                }
            }
        }
    }
    (txns, keys)
}

fn events_of(h: &[BT], register: bool) -> Vec<Event> {
    let mop = |m: &BM, completed: bool| match m {
        BM::Write(k, v) if register => json!(["w", k, v]),
        BM::Write(k, v) => json!(["append", k, v]),
        BM::Read(k, Some(seen)) if completed && register => json!(["r", k, seen.first()]),
        BM::Read(k, Some(seen)) if completed => json!(["r", k, seen]),
        BM::Read(k, _) => json!(["r", k, null]),
    };
    let mut slots: Vec<(usize, usize, bool)> = Vec::new();
    for (i, t) in h.iter().enumerate() {
        slots.push((t.invoke, i, false));
        if t.outcome != "info" {
            slots.push((t.complete, i, true));
        }
    }
    slots.sort();
    slots
        .iter()
        .enumerate()
        .map(|(index, &(_, i, done))| {
            let t = &h[i];
            let kind = match (done, t.outcome) {
                (false, _) => EventType::Invoke,
                (true, "ok") => EventType::Ok,
                _ => EventType::Fail,
            };
            let value = Value::Array(t.mops.iter().map(|m| mop(m, done)).collect());
            Event::client(index as u64, i as u64, kind, "txn", value)
        })
        .collect()
}

fn differential(register: bool, histories: usize, seed: u64) {
    // TXN_DIFF_SEED and TXN_DIFF_CASES explore further without editing the test.
    let seed = std::env::var("TXN_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(seed);
    let histories = std::env::var("TXN_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(histories);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let models: Vec<TxnModel> = MODELS.iter().map(|m| m.0).collect();
    let mut outcomes = [[0usize; 3]; 4];
    for case in 0..histories {
        let (h, keys) = random_history(&mut rng, register);
        let events = events_of(&h, register);
        let paired = pair(&events, "random").expect("well-formed");
        let verdicts = check_txn(&paired, &models, &TxnOptions::default());
        for (i, ((model, reference), (_, v))) in MODELS.iter().zip(&verdicts).enumerate() {
            let expected = holds(&h, keys, register, *reference);
            let got = v.holds();
            let slot = match got {
                Some(true) => 0,
                Some(false) => 1,
                None => 2,
            };
            outcomes[i][slot] += 1;
            // Unknown is never wrong; it is counted (and bounded for list-append) below.
            let agrees = got.is_none_or(|g| g == expected);
            if !agrees {
                let why = match v {
                    Verdict::Invalid { witness } => witness.render_text(),
                    Verdict::Unknown { reason, .. } => reason.clone(),
                    Verdict::Valid => "valid".into(),
                };
                panic!(
                    "case {case}: {model} says {} but the reference says {}\nhistory: {h:#?}\nevents: {}\n{why}",
                    v.label(),
                    if expected { "valid" } else { "invalid" },
                    events
                        .iter()
                        .map(|e| format!("{} {:?} {}", e.process, e.kind, e.value))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
    }
    for (i, (m, _)) in MODELS.iter().enumerate() {
        let [v, inv, unk] = outcomes[i];
        eprintln!("{m}: {v} valid, {inv} invalid, {unk} unknown");
        assert!(
            v > histories / 100 && inv > histories / 100,
            "{m}: both outcomes exercised"
        );
        if !register {
            assert!(unk <= histories / 50, "{m}: too many unknown verdicts");
        }
    }
}

#[test]
fn list_append_agrees_with_brute_force() {
    differential(false, 10_000, 1);
}

#[test]
fn rw_register_never_contradicts_brute_force() {
    differential(true, 5_000, 2);
}
