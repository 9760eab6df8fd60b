//! Linearizability checker benchmarks (criterion):
//! - `etcd-102`: the 102 labelled Porcupine etcd logs, cas-register, checked one after
//!   another (witnesses included);
//! - `kv-c50-ok`: Porcupine's `kv/c50-ok.txt`, kv model, initial `""`;
//! - `kv-c50-bad`: Porcupine's `kv/c50-bad.txt` (not linearizable), decided and its
//!   witness shrunk and explained (the first run prints both times and the witness size);
//! - `kv-1m-check`: a generated 1,000,000-operation kv history (1,000 keys, 50 processes,
//!   0.2 % info), already paired, checked (the first run prints the time and the
//!   process's peak RSS so far);
//! - `kv-1m-parse-check`: the same history parsed from JSON Lines in memory, paired and
//!   checked;
//! - `single-10k-invalid-*`: a generated single-key 10,000-operation register history
//!   with 50 info operations and one stale read (not linearizable), decided and shrunk to
//!   its witness, by the default procedure (zones) and by the search alone.
//!
//! Run with `cargo bench -p faultline-checkers --bench lin`. The command-line path on the
//! same size, with peak RSS: `bash checkers/benches/cli_1m.sh`.

use criterion::{criterion_group, criterion_main, Criterion};
use faultline_checkers::synth::{generate, SynthConfig, Violation};
use faultline_checkers::{check_linearizable, Algorithm, DataModel, LinOptions, Verdict};
use faultline_history::import::{load, parse_bytes, Format, ImportOptions};
use faultline_history::{write_history, History, Paired, META_INITIAL};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/")).join(rel)
}

fn load_paired(rel: &str) -> (Paired, LinOptions) {
    let h = load(&testdata(rel), Format::Auto).expect("testdata loads");
    let opts = LinOptions {
        initial: h.meta.get(META_INITIAL).cloned().unwrap_or_default(),
        nil_reads_unknown: h.nil_reads_unknown(),
        ..LinOptions::default()
    };
    (h.pair(rel).expect("pairs"), opts)
}

fn etcd() -> Vec<(Paired, LinOptions)> {
    let tsv = std::fs::read_to_string(testdata("porcupine/expected.tsv")).expect("tsv");
    tsv.lines()
        .filter_map(|l| l.split('\t').next())
        .filter(|f| f.starts_with("jepsen/"))
        .map(|f| load_paired(&format!("porcupine/{f}")))
        .collect()
}

fn single_10k() -> Paired {
    let cfg = SynthConfig {
        ops: 10_000,
        keys: 1,
        processes: 10,
        info_rate: 0.005,
        violation: Some(Violation::StaleRead),
        seed: 42,
        ..SynthConfig::default()
    };
    let ev = generate(&cfg).expect("generates");
    faultline_history::pair(&ev, "single-10k").expect("pairs")
}

fn kv_1m_jsonl() -> Vec<u8> {
    let cfg = SynthConfig {
        ops: 1_000_000,
        keys: 1000,
        processes: 50,
        info_rate: 0.002,
        seed: 1,
        ..SynthConfig::default()
    };
    let h = History::from_events(generate(&cfg).expect("generates"));
    let mut buf = Vec::new();
    write_history(&mut buf, &h).expect("writes");
    buf
}

fn parse_check(bytes: &[u8], verbose: bool) -> Verdict {
    let t = Instant::now();
    let h = parse_bytes(bytes, "kv-1m", Format::Jsonl, &ImportOptions::default()).expect("parses");
    let parsed = t.elapsed();
    let paired = h.pair("kv-1m").expect("pairs");
    drop(h);
    let paired_at = t.elapsed();
    let r = check_linearizable(&paired, DataModel::Kv, &LinOptions::default());
    if verbose {
        eprintln!(
            "kv-1m: parse {parsed:?}, pair {:?}, check {:?} ({} keys by zones, {} info pruned of {})",
            paired_at - parsed,
            t.elapsed() - paired_at,
            r.zone_keys,
            r.pruned_info,
            r.info_ops
        );
    }
    r.verdict
}

/// The process's peak resident set size (Linux: `VmHWM` in /proc/self/status), 0 elsewhere.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn once<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    eprintln!("{label}: {:?}", t.elapsed());
    r
}

fn benches(c: &mut Criterion) {
    let etcd = etcd();
    let run_etcd = || {
        etcd.iter()
            .map(|(p, o)| check_linearizable(p, DataModel::CasRegister, o).verdict)
            .filter(|v| matches!(v, Verdict::Valid))
            .count()
    };
    assert_eq!(
        once("etcd-102 (first run)", run_etcd),
        23,
        "23 etcd logs are linearizable"
    );
    c.bench_function("etcd-102", |b| b.iter(run_etcd));

    let (c50, c50_opts) = load_paired("porcupine/kv/c50-ok.txt");
    let v = check_linearizable(&c50, DataModel::Kv, &c50_opts).verdict;
    assert_eq!(v, Verdict::Valid);
    c.bench_function("kv-c50-ok", |b| {
        b.iter(|| check_linearizable(&c50, DataModel::Kv, &c50_opts))
    });

    let (bad, bad_opts) = load_paired("porcupine/kv/c50-bad.txt");
    let r = once("kv-c50-bad (first run)", || {
        check_linearizable(&bad, DataModel::Kv, &bad_opts)
    });
    let w = r.verdict.witness().expect("c50-bad is not linearizable");
    eprintln!(
        "kv-c50-bad: decided in {:?}, witness of {} operations in {:?} ({} checks)",
        r.check_time,
        w.ops.len(),
        r.shrink_time,
        r.shrink_checks
    );
    c.bench_function("kv-c50-bad", |b| {
        b.iter(|| check_linearizable(&bad, DataModel::Kv, &bad_opts))
    });

    let single = single_10k();
    for (name, algorithm) in [
        ("single-10k-invalid-auto", Algorithm::Auto),
        ("single-10k-invalid-search", Algorithm::Search),
    ] {
        let opts = LinOptions {
            algorithm,
            time_limit: Some(Duration::from_secs(60)),
            ..LinOptions::default()
        };
        let r = once(name, || {
            check_linearizable(&single, DataModel::Register, &opts)
        });
        assert!(
            matches!(r.verdict, Verdict::Invalid { .. }),
            "{name}: {:?}",
            r.verdict
        );
        eprintln!(
            "{name}: {} info ops ({} pruned), decided in {:?}, witness in {:?}",
            r.info_ops, r.pruned_info, r.check_time, r.shrink_time
        );
        c.bench_function(name, |b| {
            b.iter(|| check_linearizable(&single, DataModel::Register, &opts))
        });
    }

    let bytes = once("generate 1M kv", kv_1m_jsonl);
    eprintln!(
        "1M kv history: {} MB of JSON Lines",
        bytes.len() / 1_000_000
    );
    assert_eq!(
        once("kv-1m parse+check (first run)", || parse_check(
            &bytes, true
        )),
        Verdict::Valid
    );
    let mut g = c.benchmark_group("kv-1m");
    g.sample_size(10);
    let paired = parse_bytes(&bytes, "kv-1m", Format::Jsonl, &ImportOptions::default())
        .expect("parses")
        .pair("kv-1m")
        .expect("pairs");
    let r = once("kv-1m-check (first run)", || {
        check_linearizable(&paired, DataModel::Kv, &LinOptions::default())
    });
    assert_eq!(r.verdict, Verdict::Valid);
    eprintln!("kv-1m-check: peak RSS so far {} MiB", peak_rss_mib());
    g.bench_function("kv-1m-check", |b| {
        b.iter(|| check_linearizable(&paired, DataModel::Kv, &LinOptions::default()))
    });
    drop(paired);
    g.bench_function("kv-1m-parse-check", |b| {
        b.iter(|| parse_check(&bytes, false))
    });
    g.finish();
}

criterion_group!(lin, benches);
criterion_main!(lin);
