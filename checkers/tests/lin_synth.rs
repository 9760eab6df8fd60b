//! Synthetic histories: linearizable by construction must check valid; an injected stale
//! read must be found (with a witness containing it); zones and search agree on perturbed
//! unique-value histories.

mod lin_common;

use faultline_checkers::synth::{generate, SynthConfig, Violation};
use faultline_checkers::{check_linearizable, Algorithm, DataModel, LinOptions, Verdict};
use faultline_history::{pair, EventType, Paired};
use lin_common::assert_witness_fails;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::time::Duration;

fn opts(algorithm: Algorithm) -> LinOptions {
    LinOptions {
        algorithm,
        time_limit: Some(Duration::from_secs(120)),
        ..LinOptions::default()
    }
}

fn model_for(cfg: &SynthConfig) -> DataModel {
    match (cfg.cas, cfg.keys > 1) {
        (_, true) => DataModel::Kv,
        (true, false) => DataModel::CasRegister,
        (false, false) => DataModel::Register,
    }
}

fn configs() -> Vec<SynthConfig> {
    let mut v = Vec::new();
    for (seed, (keys, processes, info_rate, cas, unique)) in [
        (1, 5, 0.0, false, true),
        (1, 5, 0.05, false, true),
        (1, 8, 0.05, true, true),
        (1, 5, 0.03, false, false),
        (1, 5, 0.03, true, false),
        (20, 30, 0.02, true, true),
        (20, 30, 0.02, false, false),
        (4, 6, 0.05, false, true),
    ]
    .into_iter()
    .enumerate()
    {
        v.push(SynthConfig {
            ops: 1500,
            keys,
            processes,
            info_rate,
            cas,
            unique_values: unique,
            violation: None,
            seed: 100 + seed as u64,
            ..SynthConfig::default()
        });
    }
    v
}

#[test]
fn generated_histories_are_linearizable() {
    for cfg in configs() {
        let ev = generate(&cfg).expect("generates");
        let paired = pair(&ev, "synth").expect("pairs");
        for algorithm in [Algorithm::Auto, Algorithm::Search] {
            let r = check_linearizable(&paired, model_for(&cfg), &opts(algorithm));
            assert_eq!(
                r.verdict,
                Verdict::Valid,
                "seed {} {cfg:?} ({algorithm:?})",
                cfg.seed
            );
        }
    }
}

#[test]
fn injected_stale_reads_are_found() {
    for cfg in configs().into_iter().filter(|c| c.unique_values) {
        let cfg = SynthConfig {
            violation: Some(Violation::StaleRead),
            ..cfg
        };
        let ev = generate(&cfg).expect("a stale read can be injected");
        let clean = generate(&SynthConfig {
            violation: None,
            ..cfg.clone()
        })
        .expect("generates");
        let changed: Vec<_> = ev
            .iter()
            .zip(&clean)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.clone())
            .collect();
        assert_eq!(
            changed.len(),
            1,
            "one read result changed (seed {})",
            cfg.seed
        );
        assert_eq!(changed[0].kind, EventType::Ok);
        let paired = pair(&ev, "synth").expect("pairs");
        for algorithm in [Algorithm::Auto, Algorithm::Search] {
            let o = opts(algorithm);
            let r = check_linearizable(&paired, model_for(&cfg), &o);
            let w = r
                .verdict
                .witness()
                .unwrap_or_else(|| panic!("seed {} ({algorithm:?}): {:?}", cfg.seed, r.verdict));
            assert_witness_fails(
                &paired,
                model_for(&cfg),
                &o,
                w,
                &format!("seed {}", cfg.seed),
            );
            assert!(
                w.ops.len() <= 8,
                "seed {}: a stale read needs few operations:\n{}",
                cfg.seed,
                w.render_text()
            );
            let stale = w
                .ops
                .iter()
                .any(|o| o.op.complete_index == Some(changed[0].index));
            assert!(
                stale,
                "seed {}: the witness contains the stale read:\n{}",
                cfg.seed,
                w.render_text()
            );
        }
    }
}

/// Replaces some read results by other values of the same key.
fn perturb(paired: &Paired, rng: &mut ChaCha8Rng, n: usize) -> Paired {
    let mut p = paired.clone();
    let written: Vec<i64> = p
        .ops
        .iter()
        .filter(|o| o.f == "write")
        .filter_map(|o| o.argument.as_i64())
        .collect();
    for _ in 0..n {
        let i = rng.gen_range(0..p.ops.len());
        if p.ops[i].f == "read" && !written.is_empty() {
            p.ops[i].result = json!(written[rng.gen_range(0..written.len())]);
        }
    }
    p
}

#[test]
fn zones_agree_with_the_search() {
    let mut seen = (0, 0);
    for seed in 0..300u64 {
        let cfg = SynthConfig {
            ops: 40,
            processes: 4,
            info_rate: 0.1,
            seed,
            ..SynthConfig::default()
        };
        let ev = generate(&cfg).expect("generates");
        let base = pair(&ev, "synth").expect("pairs");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let paired = perturb(&base, &mut rng, (seed % 3) as usize);
        let zones = check_linearizable(&paired, DataModel::Register, &opts(Algorithm::Auto));
        let search = check_linearizable(&paired, DataModel::Register, &opts(Algorithm::Search));
        assert!(
            zones.zone_keys == 1 || zones.invalid_keys.len() == 1,
            "seed {seed}: zones used"
        );
        assert_eq!(zones.verdict.label(), search.verdict.label(), "seed {seed}");
        if zones.verdict == Verdict::Valid {
            seen.0 += 1;
        } else {
            seen.1 += 1;
        }
    }
    assert!(
        seen.0 > 50 && seen.1 > 50,
        "both outcomes exercised: {seen:?}"
    );
}

#[test]
fn single_key_10k_with_50_info_is_decided_by_the_search() {
    let cfg = SynthConfig {
        ops: 10_000,
        processes: 10,
        info_rate: 0.005,
        violation: Some(Violation::StaleRead),
        seed: 42,
        ..SynthConfig::default()
    };
    let ev = generate(&cfg).expect("generates");
    let paired = pair(&ev, "synth").expect("pairs");
    let r = check_linearizable(&paired, DataModel::Register, &opts(Algorithm::Search));
    assert_eq!(r.info_ops, 50);
    assert!(r.verdict.witness().is_some(), "seed 42: {:?}", r.verdict);
    eprintln!(
        "10k single key, search: decided in {:?}, witness in {:?}",
        r.check_time, r.shrink_time
    );
}
