//! Parsing speed of each history format, in events per second.
//!
//! Generates 200,000 register events (seeded) in memory in each format and parses them.
//! Run with `cargo bench -p faultline-history --bench parse`.
//!
//! Dropping the parsed histories is not timed. Group `parse` measures wall-clock time. Group `parse_cpu` measures the CPU time of
//! the benchmarking thread (Linux `/proc/thread-self/schedstat`), which stays meaningful
//! on a machine shared with other work; elsewhere it falls back to wall-clock time.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use faultline_history::import::{parse_bytes, Format, ImportOptions};
use faultline_history::{write_history, Event, EventType, History, Key, Process};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::fmt::Write;
use std::time::{Duration, Instant};

const EVENTS: usize = 200_000;
const SEED: u64 = 0x5eed;

/// A plausible register history: 10 processes, invokes followed by completions.
fn history() -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut events = Vec::with_capacity(EVENTS);
    let mut open: Vec<Option<(String, Value)>> = vec![None; 10];
    let mut time = 0u64;
    while events.len() < EVENTS {
        let p = rng.gen_range(0..10usize);
        time += rng.gen_range(1_000..200_000);
        let index = events.len() as u64;
        let key = Some(Key(rng.gen_range(0..8u32).to_string()));
        let ev = match open[p].take() {
            None => {
                let (f, value) = match rng.gen_range(0..3) {
                    0 => ("read", Value::Null),
                    1 => ("write", json!(rng.gen_range(0..100))),
                    _ => ("cas", json!([rng.gen_range(0..100), rng.gen_range(0..100)])),
                };
                open[p] = Some((f.to_string(), value.clone()));
                Event {
                    time,
                    key,
                    ..Event::client(index, p as u64, EventType::Invoke, f, value)
                }
            }
            Some((f, value)) => {
                let kind = [
                    EventType::Ok,
                    EventType::Ok,
                    EventType::Fail,
                    EventType::Info,
                ][rng.gen_range(0..4)];
                let value = if f == "read" && kind == EventType::Ok {
                    json!(rng.gen_range(0..100))
                } else {
                    value
                };
                Event {
                    time,
                    key,
                    ..Event::client(index, p as u64, kind, &f, value)
                }
            }
        };
        events.push(ev);
    }
    History::from_events(events)
}

fn jsonl(h: &History) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = write_history(&mut out, h) {
        panic!("seed {SEED}: {e}");
    }
    out
}

fn edn_value(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(edn_value).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

/// Jepsen's own line format: one map per line.
fn edn(h: &History) -> Vec<u8> {
    let mut out = String::new();
    for e in &h.events {
        let Process::Client(p) = e.process else {
            continue;
        };
        let kind = match e.kind {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        };
        let _ = writeln!(
            out,
            "{{:index {}, :time {}, :type :{kind}, :process {p}, :f :{}, :key {}, :value {}}}",
            e.index,
            e.time,
            e.f,
            e.key.as_ref().map_or("nil".to_string(), |k| k.0.clone()),
            edn_value(&e.value)
        );
    }
    out.into_bytes()
}

/// Porcupine's etcd log lines.
fn log(h: &History) -> Vec<u8> {
    let mut out = String::new();
    for e in &h.events {
        let Process::Client(p) = e.process else {
            continue;
        };
        let kind = match e.kind {
            EventType::Invoke => ":invoke",
            EventType::Ok => ":ok",
            EventType::Fail => ":fail",
            EventType::Info => ":info",
        };
        let value = if e.kind == EventType::Info {
            ":timed-out".into()
        } else {
            edn_value(&e.value)
        };
        let _ = writeln!(out, "INFO  jepsen.util - {p}\t{kind}\t:{}\t{value}", e.f);
    }
    out.into_bytes()
}

/// CPU time this thread has run, in ns, if the kernel tells.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn bench(c: &mut Criterion) {
    let h = history();
    let inputs = [
        ("jsonl", Format::Jsonl, jsonl(&h)),
        ("edn", Format::Edn, edn(&h)),
        ("porcupine", Format::Porcupine, log(&h)),
    ];
    let mut group = c.benchmark_group("parse_cpu");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(20);
    for (name, format, bytes) in &inputs {
        let opts = ImportOptions::default();
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                // Freeing the histories is not parsing: they are dropped after timing.
                let mut kept = Vec::with_capacity(iters as usize);
                let (cpu, wall) = (thread_cpu_ns(), Instant::now());
                for _ in 0..iters {
                    kept.push(parse_bytes(black_box(bytes), name, *format, &opts).ok());
                }
                let spent = match (cpu, thread_cpu_ns()) {
                    (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
                    _ => wall.elapsed(),
                };
                drop(kept);
                spent
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(20);
    for (name, format, bytes) in inputs {
        let opts = ImportOptions::default();
        let check = parse_bytes(&bytes, name, format, &opts).map(|h| h.events.len());
        assert_eq!(
            check.ok(),
            Some(EVENTS),
            "seed {SEED}: {name} must parse every event"
        );
        group.bench_function(name, |b| {
            b.iter_with_large_drop(|| parse_bytes(black_box(&bytes), name, format, &opts).ok())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
