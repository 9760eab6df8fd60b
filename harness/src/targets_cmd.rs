//! `faultline targets` (the built-in targets and what each claims) and `faultline target
//! check FILE` (validates a target file without running anything: exit 0, or 254 with
//! the file, line and field of the mistake).

use crate::exit;
use crate::test_cmd::model_names;
use anyhow::Result;
use clap::{Args, Subcommand};
use faultline_targets::{builtin_targets, ClaimContext, Program, Target, TargetFile};
use std::path::PathBuf;

/// Arguments of `faultline target`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// What to do with a target file.
    #[command(subcommand)]
    pub command: TargetCommand,
}

/// `faultline target` subcommands.
#[derive(Debug, Subcommand)]
pub enum TargetCommand {
    /// Validate a target file without running anything (exit 0 when valid, 254 otherwise).
    Check {
        /// The target file (TOML).
        file: PathBuf,
    },
}

/// What a target claims under its default settings, in one line.
fn claims_line(t: &dyn Target) -> String {
    let c = t.claims(&ClaimContext {
        nodes: t.default_nodes(),
        options: None,
        clock_faults: false,
    });
    if c.models.is_empty() {
        "none".to_string()
    } else {
        c.models.join(", ")
    }
}

/// Whether a target runs transactional workloads and the isolation it then claims.
fn txn_line(t: &dyn Target) -> String {
    match t.txn_support(&ClaimContext {
        nodes: t.default_nodes(),
        options: None,
        clock_faults: false,
    }) {
        None => "no".to_string(),
        Some(s) if s.models.is_empty() => "yes, claims no isolation model".to_string(),
        Some(s) => format!("yes, claims {}", s.models.join(", ")),
    }
}

/// Runs `faultline targets`.
pub fn run_list() -> Result<u8> {
    for t in builtin_targets() {
        outln!("{}: {}", t.name(), t.description());
        outln!("  claims (default settings): {}", claims_line(t.as_ref()));
        outln!(
            "  transactions (list-append, rw-register): {}",
            txn_line(t.as_ref())
        );
        let faults: Vec<&str> = t.faults().iter().map(|f| f.name.as_str()).collect();
        if !faults.is_empty() {
            outln!("  planted faults: {}", faults.join(", "));
        }
        outln!(
            "  cas: {}; leader: {}; clock faults: {}",
            if t.offers_cas() { "yes" } else { "no" },
            if t.has_leader() { "yes" } else { "no" },
            match t.clock_faults() {
                Ok(()) => "yes".to_string(),
                Err(why) => format!("no ({why})"),
            }
        );
    }
    outln!("\nYour own system: faultline test --target ./mydb.toml (see docs/target-file.md); faultline target check FILE validates one.");
    Ok(exit::VALID)
}

/// Runs `faultline target ...`.
pub fn run(args: TargetArgs) -> Result<u8> {
    match args.command {
        TargetCommand::Check { file } => check(&file),
    }
}

fn check(file: &std::path::Path) -> Result<u8> {
    let t = match TargetFile::load(file, &model_names()) {
        Ok(t) => t,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    outln!("{}: valid target file", file.display());
    outln!("  name: {} ({})", t.name(), t.description());
    outln!(
        "  program: {}",
        match t.program() {
            Program::HostBinary { path, .. } => format!("host binary {}", path.display()),
            Program::Image { reference } => format!("image {reference}"),
            Program::Bundled { file_name, .. } => format!("bundled {file_name}"),
            Program::HostTree { program, .. } => {
                format!("{} with the trees it needs", program.display())
            }
        }
    );
    outln!(
        "  nodes: at least {}, {} by default; client port {}",
        t.min_nodes(),
        t.default_nodes(),
        t.port()
    );
    for o in t.option_lines() {
        outln!("  option {o}");
    }
    for (when, models) in t.claim_lines() {
        outln!(
            "  claims{}: {}",
            if when.is_empty() {
                String::new()
            } else {
                format!(" with {when}")
            },
            if models.is_empty() {
                "none".to_string()
            } else {
                models.join(", ")
            }
        );
    }
    let faults: Vec<&str> = t.faults().iter().map(|f| f.name.as_str()).collect();
    if !faults.is_empty() {
        outln!("  planted faults: {}", faults.join(", "));
    }
    outln!(
        "  cas: {}; leader: {}; clock faults: {}",
        if t.offers_cas() { "yes" } else { "no" },
        if t.has_leader() { "yes" } else { "no" },
        match t.clock_faults() {
            Ok(()) => "yes".to_string(),
            Err(why) => format!("no ({why})"),
        }
    );
    Ok(exit::VALID)
}
