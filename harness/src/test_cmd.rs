//! `faultline test`: run one campaign and exit with its verdict.

use crate::args::{number, whole};
use crate::campaign::plan::{limits, load_plan, resolve, Plan, Resolved};
use crate::campaign::runner::{run_campaign, CampaignResult, Refused};
use crate::campaign::Workload;
use crate::exit;
use anyhow::Result;
use clap::Args;
use faultline_checkers::lattice::RowStatus;
use faultline_checkers::Verdict;
use faultline_results::text::{shown_witness, visible};
use faultline_targets::target_by_name;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Arguments of `faultline test`. Every setting may also come from `--plan FILE`; flags
/// given here win over the file.
#[derive(Debug, Clone, Default, Args)]
pub struct TestArgs {
    /// A TOML plan file with the same settings (field names as in run.json's plan).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The system under test: raft-register, quorum-kv or etcd. [default: raft-register]
    #[arg(long)]
    pub target: Option<String>,
    /// Number of nodes. [default: 5]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(limits::NODES.0, limits::NODES.1))]
    pub nodes: Option<usize>,
    /// register, cas-register or kv. [default: kv]
    #[arg(long)]
    pub workload: Option<Workload>,
    /// Number of keys of the kv workload. [default: 5]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(limits::KEYS.0, limits::KEYS.1))]
    pub keys: Option<usize>,
    /// Client processes at once. [default: 10]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(limits::CONCURRENCY.0, limits::CONCURRENCY.1))]
    pub concurrency: Option<usize>,
    /// Operations per second over all processes, 0 = unlimited. [default: 200]
    #[arg(long, allow_negative_numbers = true, value_parser = number(limits::RATE.0, limits::RATE.1, "operations per second", Some("0 (unlimited)")))]
    pub rate: Option<f64>,
    /// Seconds of the main phase (with faults). [default: 60]
    #[arg(long, allow_negative_numbers = true, value_parser = number(limits::TIME_LIMIT.0, limits::TIME_LIMIT.1, "a number of seconds", None))]
    pub time_limit: Option<f64>,
    /// Fault families, comma-separated (partition, kill, pause, clock, loss, delay, rate),
    /// `all` or `none`. [default: partition,kill,pause,clock]
    #[arg(long)]
    pub nemesis: Option<String>,
    /// Mean seconds between nemesis actions. [default: 5]
    #[arg(long, allow_negative_numbers = true, value_parser = number(limits::NEMESIS_INTERVAL.0, limits::NEMESIS_INTERVAL.1, "a number of seconds", None))]
    pub nemesis_interval: Option<f64>,
    /// How many nodes may be killed or paused at once. [default: a minority]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(1, limits::NODES.1))]
    pub max_down: Option<usize>,
    /// A planted fault of the target to switch on (repeatable): stale-reads, early-ack,
    /// no-fsync, lease-reads (raft-register); r1, w1, no-read-repair (quorum-kv). Without
    /// --nemesis, the nemesis uses the families that expose the fault.
    #[arg(long)]
    pub fault: Vec<String>,
    /// Models to check: claimed, all, or names (linearizable, sequential, ccv, cm, cc,
    /// pram, ryw, mr, mw, wfr). [default: claimed]
    #[arg(long)]
    pub check: Option<String>,
    /// Seed of the workload and the nemesis schedule. [default: random]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<u64>(0, u64::MAX))]
    pub seed: Option<u64>,
    /// Folder of the result store. [default: store]
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Seconds of recovery after the final heal. [default: 5]
    #[arg(long, allow_negative_numbers = true, value_parser = number(limits::RECOVERY.0, limits::RECOVERY.1, "a number of seconds", None))]
    pub recovery: Option<f64>,
    /// Seconds before a client request is given up as unknown. [default: 1.5]
    #[arg(long, allow_negative_numbers = true, value_parser = number(limits::REQUEST_TIMEOUT.0, limits::REQUEST_TIMEOUT.1, "a number of seconds", None))]
    pub request_timeout: Option<f64>,
    /// Seconds each checker may take before its verdict is unknown. [default: 120]
    #[arg(long, allow_negative_numbers = true, value_parser = number(limits::CHECK_TIME_LIMIT.0, limits::CHECK_TIME_LIMIT.1, "a number of seconds", None))]
    pub check_time_limit: Option<f64>,
    /// A target option KEY=VALUE (repeatable), e.g. r=1 for quorum-kv.
    #[arg(long = "target-opt")]
    pub target_opt: Vec<String>,
    /// The node program (default: faultline-node next to this executable).
    #[arg(long)]
    pub node_binary: Option<PathBuf>,
    /// Where faults come from: agent (a node agent in each node, no root needed) or host
    /// (nsenter from the host, as root). [default: agent]
    #[arg(long, value_enum)]
    pub faults: Option<crate::campaign::plan::FaultPath>,
}

/// Builds the plan: defaults, then the file, then the flags.
pub fn build_plan(args: &TestArgs) -> Result<Plan, String> {
    let mut p = match &args.plan {
        Some(path) => load_plan(path).map_err(|e| e.to_string())?,
        None => Plan::default(),
    };
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = &args.$f { p.$f = v.clone(); } )* };
    }
    set!(
        target,
        nodes,
        workload,
        keys,
        concurrency,
        rate,
        time_limit,
        nemesis_interval,
        store,
        recovery,
        request_timeout,
        check_time_limit
    );
    if let Some(n) = &args.nemesis {
        p.nemesis = vec![n.clone()];
    }
    if let Some(c) = &args.check {
        p.check = vec![c.clone()];
    }
    if args.seed.is_some() {
        p.seed = args.seed;
    }
    if args.max_down.is_some() {
        p.max_down = args.max_down;
    }
    if args.node_binary.is_some() {
        p.node_binary = args.node_binary.clone();
    }
    if let Some(f) = args.faults {
        p.faults = f;
    }
    if !args.fault.is_empty() {
        p.fault = args.fault.clone();
        if args.nemesis.is_none() && args.plan.is_none() {
            // Let the fault pick the families that expose it.
            p.nemesis = Vec::new();
        }
    }
    let mut opts = BTreeMap::new();
    for kv in &args.target_opt {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--target-opt {kv}: expected KEY=VALUE"))?;
        opts.insert(k.trim().to_string(), v.trim().to_string());
    }
    p.target_options.extend(opts);
    Ok(p)
}

/// A seed from the clock and the pid, for runs without `--seed`.
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (t ^ (u64::from(std::process::id()) << 32)) % 1_000_000_000
}

/// Validates the arguments into a runnable plan; `Err` is the message for exit 254.
pub fn resolve_args(
    args: &TestArgs,
) -> Result<(Resolved, Arc<dyn faultline_targets::Target>), String> {
    let plan = build_plan(args)?;
    let target = target_by_name(&plan.target).map_err(|e| e.to_string())?;
    let resolved = resolve(&plan, target.as_ref(), fresh_seed()).map_err(|e| e.to_string())?;
    Ok((resolved, target))
}

/// Refuses a store that cannot be written (exit 254) before anything starts: creates the
/// store's folder for `target` and writes and removes a file in it.
pub fn check_store(store: &Path, target: &str) -> Result<(), String> {
    crate::reporting::check_writable(&store.join(target), "--store")
        .map_err(|e| format!("{e} (--store DIR)"))
}

/// Installs the Ctrl-C handler: the first press asks the campaign to stop, heal, tear down
/// and check what was recorded; a second press exits at once (leftovers, if any, are
/// removed by `faultline clean`).
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            errln!("\ninterrupted: stopping the workers, healing, tearing down, then checking what was recorded (Ctrl-C again to quit at once)");
            f.store(true, Ordering::Relaxed);
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            errln!("\ninterrupted twice: quitting now; `faultline clean` removes any leftover containers");
            std::process::exit(i32::from(exit::HARNESS_FAILURE));
        }
    });
    flag
}

/// Maps a campaign error to an exit code, printing it.
pub fn error_code(e: &anyhow::Error) -> u8 {
    errln!("error: {e:#}");
    if e.downcast_ref::<Refused>().is_some() {
        exit::BAD_INPUT
    } else {
        exit::HARNESS_FAILURE
    }
}

/// Runs `faultline test`.
pub fn run(args: TestArgs) -> Result<u8> {
    let (resolved, target) = match resolve_args(&args)
        .and_then(|(r, t)| check_store(&r.plan.store, t.name()).map(|()| (r, t)))
    {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        let interrupt = ctrl_c_flag();
        print_plan(&resolved);
        run_campaign(&resolved, target, interrupt).await
    });
    match outcome {
        Ok(result) => {
            print_summary(&resolved, &result);
            Ok(result.code)
        }
        Err(e) => Ok(error_code(&e)),
    }
}

fn print_plan(r: &Resolved) {
    let p = &r.plan;
    errln!(
        "campaign: {} x{} | workload {}{} | {} processes at {} | {} s | nemesis {} every ~{} s{}{} | seed {}",
        p.target,
        p.nodes,
        p.workload,
        if p.workload == Workload::Kv { format!(" ({} keys)", p.keys) } else { String::new() },
        p.concurrency,
        if p.rate > 0.0 { format!("{} ops/s", p.rate) } else { "full speed".into() },
        p.time_limit,
        if r.families.is_empty() { "none".to_string() } else { r.families.iter().map(|f| f.name()).collect::<Vec<_>>().join(",") },
        p.nemesis_interval,
        if p.fault.is_empty() { String::new() } else { format!(" | planted fault {}", p.fault.join(",")) },
        if r.families_from_fault { " (chosen for the fault)" } else { "" },
        r.seed
    );
    for d in &r.families_dropped {
        errln!("nemesis: left out of the default list: {d}");
    }
    errln!(
        "claims: {} — {}",
        if r.claims.models.is_empty() {
            "none".to_string()
        } else {
            r.claims.models.join(", ")
        },
        r.claims.reason
    );
}

/// Prints the end-of-run summary to stdout.
pub fn print_summary(r: &Resolved, res: &CampaignResult) {
    let o = &res.ops;
    let secs = res.main_phase.as_secs_f64().max(0.001);
    outln!(
        "operations: {} (ok {}, fail {}, info {}), {:.0} ops/s over the main phase of {:.1} s; final reads ok {}/{}",
        o.total, o.ok, o.fail, o.info, o.total as f64 / secs, secs, res.final_reads.0, res.final_reads.1
    );
    let applied = res.actions.iter().filter(|a| a.error.is_none()).count();
    let mut by_kind: BTreeMap<&str, (usize, Option<&str>)> = BTreeMap::new();
    for a in res.actions.iter().filter(|a| a.error.is_none()) {
        let e = by_kind.entry(a.fault.as_str()).or_insert((0, None));
        e.0 += 1;
        if a.mechanism.as_deref() != Some("none") {
            e.1 = a.mechanism.as_deref().or(e.1);
        }
    }
    let kinds: Vec<String> = by_kind
        .iter()
        .map(|(k, (n, m))| {
            format!(
                "{k} x{n}{}",
                m.map(|m| format!(" ({m})")).unwrap_or_default()
            )
        })
        .collect();
    outln!("faults applied: {applied} [{}]", kinds.join(", "));
    for a in res.actions.iter().filter(|a| a.error.is_some()) {
        outln!(
            "  fault {} at {} ms failed: {}",
            visible(&a.fault),
            a.at_ms,
            visible(a.error.as_deref().unwrap_or(""))
        );
    }
    for row in &res.checked.table.rows {
        let checked = res.checked.verdicts.iter().any(|(m, _, _)| *m == row.model);
        if !checked && !matches!(row.status, RowStatus::RuledOut { .. }) {
            continue;
        }
        // Deciding models are the claimed ones, or the ones the user named in --check.
        let claimed = if !res.checked.decisive.contains(&row.model) {
            ""
        } else if r.claims.models.iter().any(|m| m == row.model.as_str()) {
            " (claimed)"
        } else {
            " (asked for; decides the exit code)"
        };
        let label = match &row.status {
            RowStatus::Valid => "valid".to_string(),
            RowStatus::Invalid => "INVALID".to_string(),
            RowStatus::Unknown { reason } => format!("unknown: {reason}"),
            RowStatus::Implied { by } => format!("valid (implied by {by})"),
            RowStatus::RuledOut { by } => format!("INVALID (ruled out by {by})"),
            RowStatus::NotChecked => "not checked".to_string(),
        };
        outln!("{}{claimed}: {label}", row.model);
        if let Some(Verdict::Invalid { witness }) = &row.verdict {
            for line in shown_witness(witness).render_text().lines() {
                outln!("    {line}");
            }
        }
    }
    if !res.checked.table.strongest.is_empty() {
        let s: Vec<&str> = res
            .checked
            .table
            .strongest
            .iter()
            .map(|m| m.as_str())
            .collect();
        outln!("strongest models held: {}", s.join(", "));
    }
    if res.interrupted {
        outln!("interrupted: the run was cut short; a valid verdict on part of the plan is reported as unknown (exit 2)");
    }
    outln!("run: {}", res.run_dir.display());
    outln!("reproduce: {}", res.command);
    outln!("exit {}: {}", res.code, exit_line(res));
}

/// The meaning of the exit code; when the target claims nothing under the plan, the exit
/// code says so rather than "every claimed model valid".
fn exit_line(res: &CampaignResult) -> String {
    if res.checked.decisive.is_empty() && res.code == crate::exit::VALID {
        let found = res
            .checked
            .verdicts
            .iter()
            .any(|(_, v, _)| matches!(v, Verdict::Invalid { .. }));
        format!(
            "the target claims no model under this plan, so no verdict decides the exit code{}",
            if found {
                " (the violations above are of models it does not claim here)"
            } else {
                ""
            }
        )
    } else {
        faultline_results::exit_meaning(res.code).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_plan_file() {
        let dir = std::env::temp_dir().join(format!("fl-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("plan.toml");
        std::fs::write(
            &file,
            "nodes = 3\ntime_limit = 20\nseed = 5\nnemesis = [\"kill\"]\n",
        )
        .expect("write");
        let args = TestArgs {
            plan: Some(file),
            time_limit: Some(7.0),
            target_opt: vec!["r=1".into()],
            ..TestArgs::default()
        };
        let p = build_plan(&args).expect("builds");
        assert_eq!((p.nodes, p.time_limit, p.seed), (3, 7.0, Some(5)));
        assert_eq!(p.nemesis, vec!["kill".to_string()]);
        assert_eq!(p.target_options.get("r").map(String::as_str), Some("1"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_fault_alone_lets_the_target_choose_the_nemesis() {
        let args = TestArgs {
            fault: vec!["no-fsync".into()],
            ..TestArgs::default()
        };
        let (r, _) = resolve_args(&args).expect("valid");
        assert_eq!(r.families, vec![faultline_nemesis::Family::Kill]);
        let args = TestArgs {
            target_opt: vec!["r".into()],
            ..TestArgs::default()
        };
        assert!(resolve_args(&args).is_err_and(|e| e.contains("KEY=VALUE")));
    }
}
