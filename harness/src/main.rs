//! The `faultline` command line: a thin layer over the library crates.

use clap::{Parser, Subcommand};
use faultline::{
    agent_cmd, check, clean_cmd, errln, exit, gen_cmd, report_cmd, test_cmd, verify_cmd,
};
use std::process::ExitCode;

/// faultline: a Jepsen-style consistency testing harness.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about, long_about = None)]
struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check recorded histories against consistency models.
    Check(check::CheckArgs),
    /// Run a campaign against a local cluster: workload, faults, checks, stored run.
    Test(Box<test_cmd::TestArgs>),
    /// Run several campaigns and report which models held throughout.
    Verify(Box<verify_cmd::VerifyArgs>),
    /// Remove the containers, networks and node folders of runs whose harness is gone.
    Clean(clean_cmd::CleanArgs),
    /// Run as a node's entry point: supervise its program and carry out its faults.
    Agent(agent_cmd::AgentArgs),
    /// Re-render the reports (HTML, Markdown, JUnit) of a stored run.
    Report(report_cmd::ReportArgs),
    /// Write a seeded synthetic history (for benchmarks and experiments).
    Gen(gen_cmd::GenArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::BAD_INPUT } else { 0 });
        }
    };
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        // A closed stderr must not end the run (tracing would report the failed write
        // with eprintln!, which panics on a closed stderr).
        .log_internal_errors(false)
        .init();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Test(args) => test_cmd::run(*args),
        Command::Verify(args) => verify_cmd::run(*args),
        Command::Clean(args) => clean_cmd::run(args),
        Command::Agent(args) => agent_cmd::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Gen(args) => gen_cmd::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(exit::HARNESS_FAILURE)
        }
    }
}
