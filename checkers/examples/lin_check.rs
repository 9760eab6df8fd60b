//! Loads a history (any supported format), checks it for linearizability and prints the
//! verdict with the checker's counters. Used to measure time and peak memory:
//!
//! ```text
//! cargo run --release -p faultline-checkers --example lin_check -- FILE [MODEL [search]]
//! cargo run --release -p faultline-checkers --example lin_check -- --gen OUT OPS KEYS PROCS INFO_RATE [stale]
//! ```

use faultline_checkers::synth::{generate, SynthConfig};
use faultline_checkers::{check_linearizable, DataModel, LinOptions};
use faultline_history::import::{load, Format};
use faultline_history::{write_history, History, META_INITIAL};
use std::io::BufWriter;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// CPU time (user + system) of this process so far, from /proc (Linux), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(254)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    if args.first().map(String::as_str) == Some("--gen") {
        let num = |i: usize| -> Result<f64, String> {
            args.get(i)
                .ok_or("missing argument")?
                .parse::<f64>()
                .map_err(|e| e.to_string())
        };
        let out = args.get(1).ok_or("missing OUT")?;
        let cfg = SynthConfig {
            ops: num(2)? as usize,
            keys: num(3)? as usize,
            processes: num(4)? as usize,
            info_rate: num(5)?,
            violation: (args.get(6).map(String::as_str) == Some("stale"))
                .then_some(faultline_checkers::synth::Violation::StaleRead),
            seed: 1,
            ..SynthConfig::default()
        };
        let events = generate(&cfg).map_err(|e| e.to_string())?;
        let file = std::fs::File::create(out).map_err(|e| e.to_string())?;
        let h = History::from_events(events);
        write_history(&mut BufWriter::new(file), &h).map_err(|e| e.to_string())?;
        return Ok(ExitCode::SUCCESS);
    }
    let file = args
        .first()
        .ok_or("usage: lin_check FILE [MODEL [search]]")?;
    let model: DataModel = args
        .get(1)
        .map(|m| m.parse())
        .transpose()
        .map_err(|e| format!("{e}"))?
        .unwrap_or(DataModel::CasRegister);
    let t0 = Instant::now();
    let c0 = cpu_seconds();
    let h = load(Path::new(file), Format::Auto).map_err(|e| e.to_string())?;
    let paired = h.pair(file).map_err(|e| e.to_string())?;
    let initial = h.meta.get(META_INITIAL).cloned().unwrap_or_default();
    let nil_reads_unknown = h.nil_reads_unknown();
    // The events are not needed once paired.
    drop(h);
    let parsed = t0.elapsed();
    let c1 = cpu_seconds();
    let opts = LinOptions {
        initial,
        nil_reads_unknown,
        algorithm: if args.get(2).map(String::as_str) == Some("search") {
            faultline_checkers::Algorithm::Search
        } else {
            faultline_checkers::Algorithm::Auto
        },
        ..LinOptions::default()
    };
    let t1 = Instant::now();
    let r = check_linearizable(&paired, model, &opts);
    let checked = t1.elapsed();
    let c2 = cpu_seconds();
    println!(
        "{}: {} ({} ops, {} keys, {} info, {} info pruned, zones {} / search {} keys, explored {}, max frontier {})",
        file,
        r.verdict.label(),
        r.ops,
        r.keys,
        r.info_ops,
        r.pruned_info,
        r.zone_keys,
        r.search_keys,
        r.explored,
        r.max_frontier
    );
    println!(
        "parse+pair {:?}, check {:?} (decide {:?}, witness {:?}, {} shrink checks), total {:?}",
        parsed,
        checked,
        r.check_time,
        r.shrink_time,
        r.shrink_checks,
        t0.elapsed()
    );
    println!("cpu: parse+pair {:.2} s, check {:.2} s", c1 - c0, c2 - c1);
    if let Some(w) = r.verdict.witness() {
        print!("{}", w.render_text());
    }
    if let faultline_checkers::Verdict::Unknown { reason, .. } = &r.verdict {
        println!("unknown: {reason}");
    }
    Ok(match r.verdict.label() {
        "valid" => ExitCode::SUCCESS,
        "invalid" => ExitCode::from(1),
        _ => ExitCode::from(2),
    })
}
