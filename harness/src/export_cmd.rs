//! `faultline export`: write a stored run's history (or any history file) as Jepsen EDN
//! or as Porcupine's etcd log, for Knossos, Elle and Porcupine.

use crate::exit;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use faultline_history::export::{write_edn, write_porcupine, ExportError, KeyStyle};
use faultline_history::{load, Format};
use std::io::Write;
use std::path::PathBuf;

/// The formats `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Jepsen EDN, one operation map per line (Knossos, Elle).
    Edn,
    /// Porcupine's Jepsen etcd log lines (a single register, no keys).
    Porcupine,
}

/// How keyed operations are written in EDN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Keys {
    /// `[k v]` tuples (jepsen.independent) when every client operation has a key.
    Auto,
    /// Always `[k v]` tuples.
    Tuples,
    /// A `:key` field.
    Field,
}

/// Arguments of `faultline export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run folder (`store/latest`, `store/<target>/<stamp>`) or a history file.
    #[arg(default_value = "store/latest")]
    pub run: PathBuf,
    /// The format to write.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Where to write (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// EDN: how keyed operations are written.
    #[arg(long, value_enum, default_value = "auto")]
    pub keys: Keys,
}

/// Runs `faultline export`.
pub fn run(args: ExportArgs) -> Result<u8> {
    let file = crate::check::run_history(&args.run);
    let history = match load(&file, Format::Auto) {
        Ok(h) => h,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    if history.truncated_tail {
        errln!(
            "warning: {}: the last line was cut short; it was skipped",
            file.display()
        );
    }
    let mut bytes = Vec::new();
    let written = match args.format {
        ExportFormat::Edn => {
            let keys = match args.keys {
                Keys::Auto => KeyStyle::Auto,
                Keys::Tuples => KeyStyle::Tuples,
                Keys::Field => KeyStyle::Field,
            };
            write_edn(&mut bytes, &history, keys)
        }
        ExportFormat::Porcupine => write_porcupine(&mut bytes, &history),
    };
    match written {
        Ok(()) => {}
        Err(e @ ExportError::Unrepresentable { .. }) => {
            errln!("error: {}: {e}", file.display());
            return Ok(exit::BAD_INPUT);
        }
        Err(e) => return Err(e.into()),
    }
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &bytes) {
                errln!("error: cannot write {}: {e}", path.display());
                return Ok(if faultline_results::io_is_user_error(&e) {
                    exit::BAD_INPUT
                } else {
                    exit::HARNESS_FAILURE
                });
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&bytes).and_then(|()| out.flush()) {
                Ok(()) => {}
                // `faultline export … | head`: the reader has what it wanted.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(e).context("write to standard output"),
            }
        }
    }
    if args.format == ExportFormat::Edn && history.meta.get("nil_reads").is_none() {
        errln!(
            "note: in this history a read of null means \"never written\"; Jepsen's tools read nil as observing nothing (check the EDN with `faultline check --nil-means-unwritten` for the same verdict)"
        );
    }
    Ok(exit::VALID)
}
