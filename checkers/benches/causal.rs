//! Causal and session checkers on generated kv histories (1,000 keys, 50 processes,
//! unique values, half reads) of 10k, 100k and 1M operations, from the seeded synthetic
//! generator (linearizable by construction, so every model holds and nothing stops early).
//!
//! Every model is checked two ways. By default the checkers first try to prove
//! sequential consistency with a guessed order of each key's writes, replayed to check
//! it (`sequential_witness`); on these histories that proof succeeds, and it decides
//! every model at once. With `sequential_witness: false` each model runs its own checker,
//! which is what a history that is not sequentially consistent (or whose order the guess
//! misses) costs.
//!
//! Run: `cargo bench -p faultline-checkers --bench causal`. For each size it prints timed
//! runs (wall time, CPU time and peak memory, Linux): all eight models with the witness;
//! then with their own checkers, the seven models whose cost is O(n · k · log n) checked
//! together (CC, CCv, PRAM, RYW, MR, MW, WFR; one preparation, as the CLI does), causal
//! memory (CM) alone, and all eight together; and all eight on a history of the same
//! shape with one stale read injected (seed 1), which is not sequentially consistent,
//! so the witness fails and every model runs its own checker. Then criterion measures them (each model
//! apart up to 100k). A filter that matches no benchmark (`cargo bench -p
//! faultline-checkers --bench causal -- none`) prints only the timed runs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use faultline_checkers::synth::{generate, SynthConfig, Violation};
use faultline_checkers::{check_model, check_models, ConsistencyOptions, ModelName, Verdict};
use faultline_history::{pair, Paired};
use std::time::{Duration, Instant};

/// The seven models whose cost is O(n · k · log n), without the happens-before fixpoint.
const FAST: [ModelName; 7] = [
    ModelName::Cc,
    ModelName::Ccv,
    ModelName::Pram,
    ModelName::Ryw,
    ModelName::Mr,
    ModelName::Mw,
    ModelName::Wfr,
];

/// Every causal and session model.
const ALL: [ModelName; 8] = [
    ModelName::Cc,
    ModelName::Ccv,
    ModelName::Cm,
    ModelName::Pram,
    ModelName::Ryw,
    ModelName::Mr,
    ModelName::Mw,
    ModelName::Wfr,
];

fn history(ops: usize) -> Paired {
    generated(ops, 42, None)
}

fn generated(ops: usize, seed: u64, violation: Option<Violation>) -> Paired {
    let cfg = SynthConfig {
        ops,
        keys: 1000,
        processes: 50,
        read_rate: 0.5,
        seed,
        violation,
        ..SynthConfig::default()
    };
    let events = generate(&cfg).expect("valid synthetic configuration");
    pair(&events, "synthetic").expect("synthetic history pairs")
}

/// User + system CPU seconds of this process (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// Resident and peak resident memory in MiB (Linux; 0 elsewhere).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs `f` once and prints wall time, CPU time and the memory it added at its peak.
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    // Reset the peak-resident counter so that VmHWM is this run's peak.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (before, _) = memory_mib();
    let (cpu0, t) = (cpu_seconds(), Instant::now());
    let out = f();
    let (wall, cpu) = (t.elapsed(), cpu_seconds() - cpu0);
    let (_, peak) = memory_mib();
    eprintln!(
        "{what}: wall {wall:.2?}, cpu {cpu:.2} s, peak {:.0} MiB above the {before:.0} MiB history",
        peak - before
    );
    out
}

fn labels(v: &[(ModelName, Verdict)]) -> String {
    v.iter()
        .map(|(m, v)| format!("{m}={}", v.label()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn bench(c: &mut Criterion) {
    let fast = ConsistencyOptions::default();
    let own = ConsistencyOptions {
        sequential_witness: false,
        ..ConsistencyOptions::default()
    };
    for ops in [10_000usize, 100_000, 1_000_000] {
        let p = history(ops);
        let v = timed(
            &format!("{ops} ops, all eight models, sequential witness"),
            || check_models(&p, &ALL, &fast),
        );
        eprintln!("  {}", labels(&v));
        let v = timed(&format!("{ops} ops, seven models, own checkers"), || {
            check_models(&p, &FAST, &own)
        });
        eprintln!("  {}", labels(&v));
        let v = timed(&format!("{ops} ops, cm, own checker"), || {
            check_model(&p, ModelName::Cm, &own)
        });
        eprintln!("  cm={}", v.label());
        let v = timed(
            &format!("{ops} ops, all eight models, own checkers"),
            || check_models(&p, &ALL, &own),
        );
        eprintln!("  {}", labels(&v));
        // One stale read (seed 1). At 1M operations the history is then no longer
        // sequentially consistent: CCv fails, CM holds, its joint relation fails and it
        // sets the processes of the culprit reads aside.
        let stale = generated(ops, 1, Some(Violation::StaleRead));
        let v = timed(
            &format!("{ops} ops with one stale read, all eight models"),
            || check_models(&stale, &ALL, &fast),
        );
        eprintln!("  {}", labels(&v));
        drop(stale);
        let mut g = c.benchmark_group(format!("causal-{ops}"));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(if ops >= 1_000_000 { 40 } else { 10 }));
        g.bench_function("all-models-witness", |b| {
            b.iter(|| check_models(&p, &ALL, &fast))
        });
        g.bench_function("seven-models", |b| b.iter(|| check_models(&p, &FAST, &own)));
        g.bench_function("all-models", |b| b.iter(|| check_models(&p, &ALL, &own)));
        let models: &[ModelName] = if ops <= 100_000 {
            &ALL
        } else {
            &[ModelName::Cm]
        };
        for &m in models {
            g.bench_with_input(BenchmarkId::new("model", m), &m, |b, &m| {
                b.iter(|| check_model(&p, m, &own))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
