//! The transactional checker on generated list-append histories (a serial database, so
//! every model holds and nothing stops early): 10 processes, 10 active keys, 1–4
//! micro-operations per transaction, half reads, 32 appends per key before a fresh key
//! takes its place (Elle's defaults), seed 0, the history `faultline gen --workload
//! list-append --ops N` writes.
//!
//! Run: `cargo bench -p faultline-checkers --bench txn`. It first prints timed runs
//! (wall time, CPU time, peak memory added; Linux) of serializability from the file's
//! bytes (the fast path the CLI takes: parse, infer, search) and from a paired history
//! (the general path) at 100k and 1M transactions, and of `--model all` (process and
//! real-time edges too) at 100k; then criterion measures the 10k and 100k cases. A
//! filter that matches no benchmark (`-- none`) prints only the timed runs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use faultline_checkers::txn::fast::parse_jsonl;
use faultline_checkers::txn::gen::{generate, TxnGenConfig};
use faultline_checkers::txn::{analyse, analyse_fast, TxnModel, TxnOptions, TxnReport};
use faultline_history::{pair, write_history, Paired};
use std::time::{Duration, Instant};

fn bytes(txns: usize) -> Vec<u8> {
    let events = generate(&TxnGenConfig {
        txns,
        ..TxnGenConfig::default()
    });
    let mut out = Vec::with_capacity(txns * 300);
    write_history(&mut out, &faultline_history::History::from_events(events)).expect("in memory");
    out
}

fn paired(bytes: &[u8]) -> Paired {
    let h = faultline_history::parse_str(
        std::str::from_utf8(bytes).expect("utf-8"),
        "bench",
        faultline_history::Format::Jsonl,
    )
    .expect("parses");
    pair(&h.events, "bench").expect("pairs")
}

fn from_bytes(bytes: &[u8], models: &[TxnModel]) -> TxnReport {
    let txns = parse_jsonl(bytes).expect("the fast path reads generated histories");
    analyse_fast(&txns, models, &TxnOptions::default()).expect("transactions")
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
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (before, _) = memory_mib();
    let (cpu0, t) = (cpu_seconds(), Instant::now());
    let out = f();
    let (wall, cpu) = (t.elapsed(), cpu_seconds() - cpu0);
    let (_, peak) = memory_mib();
    eprintln!(
        "{what}: wall {wall:.2?}, cpu {cpu:.2} s, peak {:.0} MiB above the {before:.0} MiB already in use",
        peak - before
    );
    out
}

fn bench(c: &mut Criterion) {
    let ser = [TxnModel::Serializable];
    for n in [100_000usize, 1_000_000] {
        let b = bytes(n);
        eprintln!("{n} transactions, {} MB of JSONL", b.len() / 1_000_000);
        let r = timed(&format!("  serializable from bytes ({n})"), || {
            from_bytes(&b, &ser)
        });
        assert!(r.findings.is_empty());
        if n <= 100_000 {
            let r = timed(&format!("  all 17 models from bytes ({n})"), || {
                from_bytes(&b, &TxnModel::ALL)
            });
            assert!(r.findings.is_empty());
            let p = paired(&b);
            let r = timed(
                &format!("  serializable from a paired history ({n})"),
                || analyse(&p, &ser, &TxnOptions::default()).expect("transactions"),
            );
            assert!(r.findings.is_empty());
        }
    }
    let mut group = c.benchmark_group("txn-list-append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for n in [10_000usize, 100_000] {
        let b = bytes(n);
        group.bench_with_input(
            BenchmarkId::new("serializable-from-bytes", n),
            &b,
            |bch, b| bch.iter(|| from_bytes(b, &ser)),
        );
        group.bench_with_input(
            BenchmarkId::new("all-models-from-bytes", n),
            &b,
            |bch, b| bch.iter(|| from_bytes(b, &TxnModel::ALL)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
