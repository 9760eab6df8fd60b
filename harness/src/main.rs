//! The `faultline` command line: a thin layer over the library crates.

use clap::{CommandFactory, Parser, Subcommand};
use faultline::{
    agent_cmd, analyze_cmd, check, clean_cmd, docs_cmd, errln, exit, export_cmd, gen_cmd, k8s_cmd,
    report_cmd, serve, targets_cmd, test_cmd, verify_cmd,
};
use std::process::ExitCode;

/// mimalloc: checking a large history allocates millions of small values from several
/// threads at once, which glibc's allocator serves markedly slower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// faultline: a Jepsen-style consistency testing harness.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about, long_about = None,
          after_long_help = faultline_results::glossary::help_text())]
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
    /// List the built-in targets and what each claims.
    Targets,
    /// Target files: `faultline target check FILE` validates one without running it.
    Target(targets_cmd::TargetArgs),
    /// Remove the containers, networks and node folders of runs whose harness is gone.
    Clean(clean_cmd::CleanArgs),
    /// Run as a node's entry point: supervise its program and carry out its faults.
    Agent(agent_cmd::AgentArgs),
    /// Copy this executable (and the image's libfaketime, if any) into DIR: a Kubernetes
    /// node Pod's init container runs it in the agent image.
    AgentInstall(agent_cmd::AgentInstallArgs),
    /// Re-render the reports (HTML, Markdown, JUnit) of a stored run.
    Report(report_cmd::ReportArgs),
    /// Check a stored run again with its target's claims; rewrite its verdict and reports.
    Analyze(analyze_cmd::AnalyzeArgs),
    /// Write a run's history as Jepsen EDN or a Porcupine log (Knossos, Elle, Porcupine).
    Export(export_cmd::ExportArgs),
    /// Browse the store over HTTP (index of runs, live campaigns, reports); loopback only
    /// unless --bind says otherwise.
    Serve(serve::ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs_cmd::CompletionsArgs),
    /// Print the man page (or write every page with --out-dir).
    Man(docs_cmd::ManArgs),
    /// Write a seeded synthetic history (for benchmarks and experiments).
    Gen(gen_cmd::GenArgs),
    /// Kubernetes: `faultline k8s manifest` prints the Job that runs the harness in a
    /// cluster.
    K8s(k8s_cmd::K8sArgs),
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
                // A client library's own warnings (zookeeper-client reports every failed
                // connection attempt) are the history's business: the operation records
                // them as fail or info. They show from -vv on.
                .unwrap_or_else(|_| {
                    let quiet = if cli.verbose >= 2 { level } else { "error" };
                    tracing_subscriber::EnvFilter::new(format!("{level},zookeeper_client={quiet}"))
                }),
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
        Command::Targets => targets_cmd::run_list(),
        Command::Target(args) => targets_cmd::run(args),
        Command::Clean(args) => clean_cmd::run(args),
        Command::Agent(args) => agent_cmd::run(args),
        Command::AgentInstall(args) => agent_cmd::run_install(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Gen(args) => gen_cmd::run(args),
        Command::K8s(args) => k8s_cmd::run(args),
        Command::Analyze(args) => analyze_cmd::run(args),
        Command::Export(args) => export_cmd::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Completions(args) => docs_cmd::completions(args, Cli::command()),
        Command::Man(args) => docs_cmd::man(args, Cli::command()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(exit::HARNESS_FAILURE)
        }
    }
}
