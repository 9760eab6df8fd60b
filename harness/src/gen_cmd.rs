//! `faultline gen`: write a synthetic history, so that every benchmark input can be
//! reproduced by anyone from its seed.

use crate::args::{number, whole};
use crate::exit;
use anyhow::Result;
use clap::Args;
use faultline_checkers::synth::{generate, SynthConfig, Violation};
use faultline_checkers::txn::gen::{self as txn_gen, Isolation, TxnGenConfig};
use faultline_checkers::txn::Workload;
use faultline_history::JsonlWriter;
use serde_json::{json, Map};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// The most operations `faultline gen` writes.
pub const MAX_OPS: u64 = 10_000_000;

/// Arguments of `faultline gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Where to write the history (faultline-history/1 JSONL); `-` for standard output.
    #[arg(short, long, default_value = "-")]
    out: PathBuf,
    /// Client operations in total (at most 10,000,000: the history is built in memory,
    /// about 0.7 GB per million operations).
    #[arg(long, default_value_t = 10_000, allow_negative_numbers = true, value_parser = whole::<usize>(0, MAX_OPS))]
    ops: usize,
    /// Keys (1 = a single register, events carry no key). For a transactional workload:
    /// the keys active at once (default 10).
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(1, 1_000_000))]
    keys: Option<usize>,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true, value_parser = whole::<usize>(1, 100_000))]
    processes: usize,
    /// Fraction of operations whose outcome is unknown (info).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = number(0.0, 1.0, "a fraction", None))]
    info_rate: f64,
    /// Fraction of operations that are reads.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true, value_parser = number(0.0, 1.0, "a fraction", None))]
    read_rate: f64,
    /// Issue compare-and-set operations too.
    #[arg(long)]
    cas: bool,
    /// Let values repeat (values 0..5) instead of unique values per key.
    #[arg(long)]
    repeat_values: bool,
    /// Inject a violation: `stale-read`.
    #[arg(long)]
    violation: Option<String>,
    /// Seed of all randomness.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = whole::<u64>(0, u64::MAX))]
    seed: u64,
    /// Workload: register (read, write, cas; kv with --keys > 1), or transactions:
    /// list-append or rw-register (then --ops counts transactions).
    #[arg(long, default_value = "register")]
    workload: String,
    /// Transactions: the database simulated: serial (strict serializable),
    /// snapshot-isolation, read-committed or read-uncommitted.
    #[arg(long, default_value = "serial")]
    isolation: String,
    /// Transactions: micro-operations per transaction, at most (at least 1).
    #[arg(long, default_value_t = 4, allow_negative_numbers = true, value_parser = whole::<usize>(1, 1_000))]
    max_txn_len: usize,
    /// Transactions: writes a key receives before a fresh key replaces it.
    #[arg(long, default_value_t = 32, allow_negative_numbers = true, value_parser = whole::<usize>(1, 1_000_000))]
    max_writes_per_key: usize,
    /// Transactions: fraction the database aborts on its own.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = number(0.0, 1.0, "a fraction", None))]
    abort_rate: f64,
}

/// Runs `faultline gen`; returns the exit code.
pub fn run(args: GenArgs) -> Result<u8> {
    let workload = match args.workload.as_str() {
        "register" | "kv" => None,
        "list-append" => Some(Workload::ListAppend),
        "rw-register" => Some(Workload::RwRegister),
        other => {
            errln!("error: --workload {other}: expected register, list-append or rw-register");
            return Ok(exit::BAD_INPUT);
        }
    };
    if let Some(w) = workload {
        return run_txn(&args, w);
    }
    let violation = match args.violation.as_deref() {
        None => None,
        Some("stale-read") => Some(Violation::StaleRead),
        Some(other) => {
            errln!("error: --violation {other}: expected stale-read");
            return Ok(exit::BAD_INPUT);
        }
    };
    let config = SynthConfig {
        ops: args.ops,
        keys: args.keys.unwrap_or(1),
        processes: args.processes,
        info_rate: args.info_rate,
        read_rate: args.read_rate,
        cas: args.cas,
        unique_values: !args.repeat_values,
        violation,
        seed: args.seed,
    };
    // The output first: a wrong -o is refused before any work.
    let to_stdout = args.out.as_os_str() == "-";
    let out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        match File::create(&args.out) {
            Ok(f) => Box::new(f),
            Err(e) => {
                errln!(
                    "error: -o {}: cannot create it ({e}); give a file in an existing folder you can write to, or - for standard output",
                    args.out.display()
                );
                return Ok(exit::BAD_INPUT);
            }
        }
    };
    let events = match generate(&config) {
        Ok(events) => events,
        Err(e) => {
            errln!("error: {e}");
            drop(out);
            if !to_stdout {
                let _ = std::fs::remove_file(&args.out);
            }
            return Ok(exit::BAD_INPUT);
        }
    };
    let mut meta = Map::new();
    meta.insert(
        "generator".into(),
        json!({
            "command": "faultline gen",
            "ops": args.ops, "keys": args.keys.unwrap_or(1), "processes": args.processes,
            "info_rate": args.info_rate, "read_rate": args.read_rate, "cas": args.cas,
            "unique_values": !args.repeat_values, "violation": args.violation, "seed": args.seed,
        }),
    );
    write_out(&args, out, &meta, &events, to_stdout)
}

/// Writes the header and the events; the exit code.
fn write_out(
    args: &GenArgs,
    out: Box<dyn Write>,
    meta: &Map<String, serde_json::Value>,
    events: &[faultline_history::Event],
    to_stdout: bool,
) -> Result<u8> {
    let mut w = JsonlWriter::new(BufWriter::with_capacity(1 << 16, out));
    let written = w
        .write_header(meta)
        .and_then(|()| events.iter().try_for_each(|ev| w.write_event(ev)))
        .and_then(|()| w.flush());
    match written {
        Ok(()) => {}
        // The reader went away (`faultline gen | head`): it has what it wanted.
        Err(e) if to_stdout && e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(exit::VALID)
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("write {}", args.out.display())))
        }
    }
    if !to_stdout {
        errln!(
            "wrote {} events to {} (seed {})",
            events.len(),
            args.out.display(),
            args.seed
        );
    }
    Ok(exit::VALID)
}

/// `faultline gen --workload list-append|rw-register`: a history from a simulated database
/// (`txn::gen`).
fn run_txn(args: &GenArgs, workload: Workload) -> Result<u8> {
    let isolation = match args.isolation.parse::<Isolation>() {
        Ok(i) => i,
        Err(e) => {
            errln!("error: --isolation: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    if args.cas || args.repeat_values || args.violation.is_some() {
        errln!("error: --cas, --repeat-values and --violation apply to the register workload; a transactional history gets its anomalies from --isolation");
        return Ok(exit::BAD_INPUT);
    }
    let to_stdout = args.out.as_os_str() == "-";
    let out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        match File::create(&args.out) {
            Ok(f) => Box::new(f),
            Err(e) => {
                errln!(
                    "error: -o {}: cannot create it ({e}); give a file in an existing folder you can write to, or - for standard output",
                    args.out.display()
                );
                return Ok(exit::BAD_INPUT);
            }
        }
    };
    let config = TxnGenConfig {
        txns: args.ops,
        processes: args.processes,
        keys: args.keys.unwrap_or(10),
        min_len: 1,
        max_len: args.max_txn_len,
        read_rate: args.read_rate,
        max_writes_per_key: args.max_writes_per_key,
        workload,
        isolation,
        info_rate: args.info_rate,
        abort_rate: args.abort_rate,
        seed: args.seed,
    };
    let events = txn_gen::generate(&config);
    let mut meta = Map::new();
    meta.insert(
        "generator".into(),
        json!({
            "command": "faultline gen",
            "workload": args.workload, "isolation": args.isolation,
            "txns": args.ops, "keys": config.keys, "processes": args.processes,
            "max_txn_len": args.max_txn_len, "max_writes_per_key": args.max_writes_per_key,
            "read_rate": args.read_rate, "info_rate": args.info_rate,
            "abort_rate": args.abort_rate, "seed": args.seed,
        }),
    );
    write_out(args, out, &meta, &events, to_stdout)
}
