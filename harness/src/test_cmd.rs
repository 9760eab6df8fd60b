//! `faultline test`: run one campaign and exit with its verdict.

use crate::args::{concurrency, duration, number, whole, Concurrency};
use crate::campaign::checking::Status;
use crate::campaign::plan::{limits, load_plan, resolve, Plan, Resolved};
use crate::campaign::runner::{run_campaign, CampaignResult, Refused};
use crate::campaign::Workload;
use crate::exit;
use anyhow::Result;
use clap::Args;
use faultline_checkers::Verdict;
use faultline_results::text::{shown_witness, visible};
use faultline_targets::find_target;
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
    /// The system under test: a built-in (raft-register, quorum-kv, etcd, nats, zookeeper; see `faultline
    /// targets`) or a target file (a path ending in .toml). [default: raft-register]
    #[arg(long)]
    pub target: Option<String>,
    /// Number of nodes. [default: 5]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(limits::NODES.0, limits::NODES.1))]
    pub nodes: Option<usize>,
    /// register, cas-register, kv, or the transactional list-append and rw-register
    /// (checked with isolation models). [default: kv]
    #[arg(long)]
    pub workload: Option<Workload>,
    /// Number of keys of the kv workload; of keys in use at once for list-append and
    /// rw-register (a key retires after --max-writes-per-key writes and a fresh one takes
    /// its place). [default: 5]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(limits::KEYS.0, limits::KEYS.1))]
    pub keys: Option<usize>,
    /// Fewest micro-operations per transaction (list-append, rw-register). [default: 1]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(limits::TXN_LENGTH.0, limits::TXN_LENGTH.1))]
    pub min_txn_length: Option<usize>,
    /// Most micro-operations per transaction (list-append, rw-register). [default: 4]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<usize>(limits::TXN_LENGTH.0, limits::TXN_LENGTH.1))]
    pub max_txn_length: Option<usize>,
    /// Share of micro-operations that read, from 0 to 1; the others append (list-append)
    /// or write (rw-register). [default: 0.5]
    #[arg(long, allow_negative_numbers = true, value_parser = number(0.0, 1.0, "a fraction", None))]
    pub read_fraction: Option<f64>,
    /// How micro-operations pick among the keys in use: uniform, or exponential (each
    /// key half as likely as the one before: a few hot keys). [default: uniform]
    #[arg(long, value_enum)]
    pub key_dist: Option<crate::campaign::generator::KeyDist>,
    /// Writes after which a key retires and a fresh key takes its place (Elle's key
    /// rotation; list-append, rw-register). [default: 32]
    #[arg(long, allow_negative_numbers = true, value_parser = whole::<u64>(limits::MAX_WRITES_PER_KEY.0, limits::MAX_WRITES_PER_KEY.1))]
    pub max_writes_per_key: Option<u64>,
    /// Client processes at once: a number, or a multiple of the node count (3n). [default: 10]
    #[arg(long, allow_negative_numbers = true, value_parser = concurrency(limits::CONCURRENCY.0, limits::CONCURRENCY.1))]
    pub concurrency: Option<Concurrency>,
    /// Operations per second over all processes, 0 = unlimited. [default: 200]
    #[arg(long, allow_negative_numbers = true, value_parser = number(limits::RATE.0, limits::RATE.1, "operations per second", Some("0 (unlimited)")))]
    pub rate: Option<f64>,
    /// Length of the main phase (with faults): seconds, or 30s, 2m, 1h. [default: 60]
    #[arg(long, allow_negative_numbers = true, value_parser = duration(limits::TIME_LIMIT.0, limits::TIME_LIMIT.1))]
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
    /// no-fsync, lease-reads, and with list-append or rw-register txn-stale-reads,
    /// txn-split, txn-lost-update (raft-register); r1, w1, no-read-repair (quorum-kv).
    /// Without --nemesis, the nemesis uses the families that expose the fault.
    #[arg(long)]
    pub fault: Vec<String>,
    /// Models to check: claimed, all, or names (linearizable, sequential, ccv, cm, cc,
    /// pram, ryw, mr, mw, wfr; for list-append and rw-register isolation models:
    /// strict-serializable, serializable, snapshot-isolation, read-committed... see
    /// `faultline check --help`). With a target that claims no isolation, claimed checks
    /// every isolation model and reports which held. [default: claimed]
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
    /// Do not check the history while the campaign runs (the full check at the end
    /// still runs).
    #[arg(long)]
    pub no_live_check: bool,
    /// End the main phase at the first violation found while the campaign runs, then
    /// heal, read and check as usual (`verify` does this by default).
    #[arg(long, conflicts_with = "no_live_check")]
    pub stop_on_violation: bool,
    /// Run up to N campaigns, each with a fresh seed, stopping at the first that is not
    /// valid (the exit code is that run's). [default: 1]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole::<usize>(1, 10_000))]
    pub test_count: Option<usize>,
    /// Print the summary as one JSON object per campaign on stdout (instead of text).
    #[arg(long)]
    pub json: bool,
    /// Where faults come from: agent (a node agent in each node, no root needed) or host
    /// (nsenter from the host, as root). [default: agent]
    #[arg(long, value_enum)]
    pub faults: Option<crate::campaign::plan::FaultPath>,
    /// Where the nodes run: docker (this machine's engine) or kubernetes. [default: docker]
    #[arg(long)]
    pub runtime: Option<faultline_targets::runtime::RuntimeKind>,
    /// On Kubernetes: an API URL that needs no credentials, such as kubectl proxy's
    /// http://127.0.0.1:8001. [default: the plan's kube_api, else FAULTLINE_KUBE_API,
    /// else the cluster and credentials of KUBECONFIG (or ~/.kube/config), else the
    /// in-cluster service account]
    #[arg(long, value_name = "URL")]
    pub kube_api: Option<String>,
    /// On Kubernetes: the namespace of the run's objects. [default: the plan's
    /// k8s_namespace, else FAULTLINE_NAMESPACE, else the kubeconfig context's, else
    /// default]
    #[arg(long, value_name = "NS")]
    pub k8s_namespace: Option<String>,
    /// On Kubernetes: the image holding /usr/local/bin/faultline that each node Pod
    /// copies the agent from. [default: the plan's k8s_agent_image]
    #[arg(long, value_name = "IMAGE")]
    pub k8s_agent_image: Option<String>,
    /// On Kubernetes: put each node on its own host (Pod anti-affinity).
    #[arg(long)]
    pub k8s_anti_affinity: bool,
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
        min_txn_length,
        max_txn_length,
        read_fraction,
        key_dist,
        max_writes_per_key,
        rate,
        time_limit,
        nemesis_interval,
        store,
        recovery,
        request_timeout,
        check_time_limit
    );
    if let Some(c) = args.concurrency {
        p.concurrency = c.processes(p.nodes);
    }
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
    if args.no_live_check {
        p.live_check = false;
    }
    if args.stop_on_violation {
        p.stop_on_violation = true;
    }
    if p.stop_on_violation && !p.live_check {
        return Err(
            "stop_on_violation needs the live check: remove live_check = false from the plan or drop --stop-on-violation".into(),
        );
    }
    if let Some(f) = args.faults {
        p.faults = f;
    }
    if let Some(k) = args.runtime {
        p.runtime = k;
    }
    if let Some(url) = &args.kube_api {
        p.kube_api = Some(url.clone());
    }
    if let Some(ns) = &args.k8s_namespace {
        p.k8s_namespace = Some(ns.clone());
    }
    if let Some(image) = &args.k8s_agent_image {
        p.k8s_agent_image = Some(image.clone());
    }
    if args.k8s_anti_affinity {
        p.k8s_anti_affinity = true;
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

/// The model names a target file's claims may use.
pub fn model_names() -> Vec<&'static str> {
    faultline_checkers::lattice::ModelName::ALL
        .iter()
        .map(|m| m.as_str())
        .collect()
}

/// Whether the plan file at `path` sets `field` (it was read once already; an unreadable
/// file sets nothing).
fn plan_file_sets(path: Option<&Path>, field: &str) -> bool {
    path.and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key(field))
}

/// Validates the arguments into a runnable plan; `Err` is the message for exit 254.
pub fn resolve_args(
    args: &TestArgs,
) -> Result<(Resolved, Arc<dyn faultline_targets::Target>), String> {
    let mut plan = build_plan(args)?;
    let target = find_target(&plan.target, &model_names()).map_err(|e| e.to_string())?;
    if args.nodes.is_none() && !plan_file_sets(args.plan.as_deref(), "nodes") {
        plan.nodes = target.default_nodes();
    }
    // `--concurrency 3n` is a multiple of the node count the target settled on.
    if let Some(c) = args.concurrency {
        plan.concurrency = c.processes(plan.nodes);
    }
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
/// removed by `faultline clean`). SIGTERM counts as a press (what Kubernetes sends the
/// harness Job's Pod when it is deleted).
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        if interrupted(&mut term).await {
            errln!("\ninterrupted: stopping the workers, healing, tearing down, then checking what was recorded (Ctrl-C again to quit at once)");
            f.store(true, Ordering::Relaxed);
        }
        if interrupted(&mut term).await {
            errln!("\ninterrupted twice: quitting now; `faultline clean` removes any leftover containers");
            std::process::exit(i32::from(exit::HARNESS_FAILURE));
        }
    });
    flag
}

/// Waits for one interruption: Ctrl-C, or SIGTERM when its handler could be installed.
async fn interrupted(term: &mut Option<tokio::signal::unix::Signal>) -> bool {
    match term.as_mut() {
        Some(t) => tokio::select! {
            c = tokio::signal::ctrl_c() => c.is_ok(),
            t = t.recv() => t.is_some(),
        },
        None => tokio::signal::ctrl_c().await.is_ok(),
    }
}

/// Maps a campaign error to an exit code, printing it.
pub fn error_code(e: &anyhow::Error) -> u8 {
    errln!("error: {e:#}");
    let setup = e.chain().any(|c| {
        c.downcast_ref::<faultline_targets::runtime::RuntimeError>()
            .is_some_and(|r| r.is_setup_error())
    });
    if e.downcast_ref::<Refused>().is_some() || setup {
        exit::BAD_INPUT
    } else {
        exit::HARNESS_FAILURE
    }
}

/// Runs `faultline test`: one campaign, or up to `--test-count` campaigns with fresh
/// seeds, stopping at the first that is not valid.
pub fn run(args: TestArgs) -> Result<u8> {
    let count = args.test_count.unwrap_or(1);
    let first_seed = args.seed;
    // Validate once up front: a bad plan exits 254 before any campaign.
    let mut resolved_first = match resolve_args(&args)
        .and_then(|(r, t)| check_store(&r.plan.store, t.name()).map(|()| (r, t)))
    {
        Ok(r) => Some(r),
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let interrupt = rt.block_on(async { ctrl_c_flag() });
    let mut code = exit::VALID;
    for i in 0..count {
        let (resolved, target) = match resolved_first.take() {
            Some(r) => r,
            None => {
                let mut a = args.clone();
                // Fresh seeds: the given seed plus the run's number, else a new one.
                a.seed = Some(match first_seed {
                    Some(s) => s.wrapping_add(i as u64),
                    None => fresh_seed().wrapping_add(i as u64),
                });
                match resolve_args(&a) {
                    Ok(r) => r,
                    Err(e) => {
                        errln!("error: {e}");
                        return Ok(exit::BAD_INPUT);
                    }
                }
            }
        };
        if count > 1 {
            errln!("test {}/{count}: seed {}", i + 1, resolved.seed);
        }
        let outcome = rt.block_on(async {
            print_plan(&resolved);
            run_campaign(&resolved, target, interrupt.clone()).await
        });
        code = match outcome {
            Ok(result) => {
                if args.json {
                    outln!("{}", summary_json(&resolved, &result));
                } else {
                    print_summary(&resolved, &result);
                }
                result.code
            }
            Err(e) => error_code(&e),
        };
        if code != exit::VALID || interrupt.load(Ordering::Relaxed) {
            if count > 1 && code != exit::VALID {
                errln!("stopped after test {} of {count}: exit {code}", i + 1);
            }
            break;
        }
    }
    Ok(code)
}

/// The end-of-run summary as one JSON object (for `--json`).
pub fn summary_json(r: &Resolved, res: &CampaignResult) -> serde_json::Value {
    let models: Vec<serde_json::Value> = res
        .checked
        .rows()
        .iter()
        .map(|row| {
            let (result, detail) = match &row.status {
                Status::Valid => ("valid", None),
                Status::Invalid => ("invalid", None),
                Status::Unknown { reason } => ("unknown", Some(reason.clone())),
                Status::Implied { by } => ("implied", Some(by.clone())),
                Status::RuledOut { by } => ("ruled-out", Some(by.clone())),
                Status::NotChecked => ("not-checked", None),
            };
            let mut m = serde_json::json!({
                "model": row.model.as_str(),
                "result": result,
                "claimed": r.claims.models.iter().any(|c| c == row.model.as_str()),
                "decides_exit": row.decides,
            });
            if let Some(d) = detail {
                m[if result == "unknown" { "reason" } else { "by" }] = serde_json::json!(d);
            }
            if let Some(Verdict::Invalid { witness }) = &row.verdict {
                m["witness"] = serde_json::json!(witness.summary);
            }
            m
        })
        .collect();
    let o = &res.ops;
    serde_json::json!({
        "run": res.run_dir.display().to_string(),
        "target": r.plan.target,
        "seed": r.seed,
        "exit_code": res.code,
        "exit_meaning": exit_line(res),
        "interrupted": res.interrupted,
        "ops": {"total": o.total, "ok": o.ok, "fail": o.fail, "info": o.info},
        "main_phase_s": res.main_phase.as_secs_f64(),
        "final_reads": {"ok": res.final_reads.0, "of": res.final_reads.1},
        "faults_applied": fault_tally(&res.actions).0,
        "claims": r.claims.models,
        "models": models,
        "strongest": res.checked.strongest().iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "anomalies": res.checked.txn.as_ref().map(|t| t.anomalies.clone()),
        "live_check": res.live,
        "reproduce": res.command,
    })
}

fn print_plan(r: &Resolved) {
    let p = &r.plan;
    errln!(
        "campaign: {} x{} | workload {}{} | {} processes at {} | {} s | nemesis {} every ~{} s{}{} | seed {}",
        p.target,
        p.nodes,
        p.workload,
        match p.workload {
            Workload::Kv => format!(" ({} keys)", p.keys),
            w if w.is_txn() => format!(
                " ({} active keys, {}-{} micro-ops, {:.0}% reads, {} keys, retired after {} writes)",
                p.keys,
                p.min_txn_length,
                p.max_txn_length,
                p.read_fraction * 100.0,
                p.key_dist,
                p.max_writes_per_key
            ),
            _ => String::new(),
        },
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
    let (applied, kinds, undone) = fault_tally(&res.actions);
    outln!(
        "faults applied: {applied} [{}]{}",
        kinds.join(", "),
        if undone.is_empty() {
            String::new()
        } else {
            format!("; undone by {}", undone.join(", "))
        }
    );
    for a in res.actions.iter().filter(|a| a.error.is_some()) {
        outln!(
            "  fault {} at {} ms failed: {}",
            visible(&a.fault),
            a.at_ms,
            visible(a.error.as_deref().unwrap_or(""))
        );
    }
    if let Some(t) = &res.checked.txn {
        outln!(
            "transactions checked as {}; anomalies found: {}",
            t.workload.as_deref().unwrap_or("(not recognised)"),
            if t.anomalies.is_empty() {
                "none".to_string()
            } else {
                t.anomalies.join(", ")
            }
        );
    }
    for row in res.checked.rows() {
        if !row.checked && !matches!(row.status, Status::RuledOut { .. }) {
            continue;
        }
        // Deciding models are the claimed ones, or the ones the user named in --check.
        let claimed = if !row.decides {
            ""
        } else if r.claims.models.iter().any(|m| m == row.model.as_str()) {
            " (claimed)"
        } else {
            " (asked for; decides the exit code)"
        };
        let label = match &row.status {
            Status::Valid => "valid".to_string(),
            Status::Invalid => "INVALID".to_string(),
            Status::Unknown { reason } => format!("unknown: {reason}"),
            Status::Implied { by } => format!("valid (implied by {by})"),
            Status::RuledOut { by } => format!("INVALID (ruled out by {by})"),
            Status::NotChecked => "not checked".to_string(),
        };
        outln!("{}{claimed}: {label}", row.model);
        if let Some(Verdict::Invalid { witness }) = &row.verdict {
            for line in shown_witness(witness).render_text().lines() {
                outln!("    {line}");
            }
        }
    }
    let strongest = res.checked.strongest();
    if !strongest.is_empty() {
        let s: Vec<&str> = strongest.iter().map(|m| m.as_str()).collect();
        outln!("strongest models held: {}", s.join(", "));
    }
    if let Some(live) = &res.live {
        for line in live.lines() {
            outln!("found while running: {}", visible(&line));
        }
        if live.stopped_early {
            outln!(
                "the main phase stopped at the first violation (--stop-on-violation) after {:.1} s",
                res.main_phase.as_secs_f64()
            );
        }
        if let Some(e) = &live.error {
            outln!("the live check stopped early: {}", visible(e));
        }
    }
    if res.interrupted {
        outln!("interrupted: the run was cut short; a valid verdict on part of the plan is reported as unknown (exit 2)");
    }
    outln!("run: {}", res.run_dir.display());
    outln!("reproduce: {}", res.command);
    outln!("exit {}: {}", res.code, exit_line(res));
}

/// The faults applied, counted as the report counts them (each fault started; heals,
/// starts, resumes and resets undo a fault and are listed apart): the total, each kind
/// with its count and mechanism, and the undoing actions with their counts.
pub fn fault_tally(
    actions: &[crate::campaign::driver::ActionRecord],
) -> (usize, Vec<String>, Vec<String>) {
    let mut applied = 0;
    let mut by_kind: BTreeMap<&str, (usize, Option<&str>)> = BTreeMap::new();
    let mut undo: BTreeMap<&str, usize> = BTreeMap::new();
    for a in actions.iter().filter(|a| a.error.is_none()) {
        let kind = a.fault.trim().to_ascii_lowercase().replace('-', "_");
        if faultline_results::faults::start_family(&kind).is_none() {
            *undo.entry(a.fault.as_str()).or_default() += 1;
            continue;
        }
        applied += 1;
        let e = by_kind.entry(a.fault.as_str()).or_insert((0, None));
        e.0 += 1;
        if a.mechanism.as_deref() != Some("none") {
            e.1 = a.mechanism.as_deref().or(e.1);
        }
    }
    let kinds = by_kind
        .iter()
        .map(|(k, (n, m))| {
            format!(
                "{} x{n}{}",
                visible(k),
                m.map(|m| format!(" ({})", visible(m))).unwrap_or_default()
            )
        })
        .collect();
    let undone = undo
        .iter()
        .map(|(k, n)| format!("{} x{n}", visible(k)))
        .collect();
    (applied, kinds, undone)
}

/// The meaning of the exit code; when the target claims nothing under the plan, the exit
/// code says so rather than "every claimed model valid".
fn exit_line(res: &CampaignResult) -> String {
    if res.checked.deciding().is_empty() && res.code == crate::exit::VALID {
        let found = res.checked.any_violation();
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

    #[test]
    fn concurrency_per_node_follows_the_node_count_and_json_summaries_parse() {
        let args = TestArgs {
            nodes: Some(3),
            concurrency: Some(Concurrency::PerNode(3)),
            time_limit: Some(120.0),
            ..TestArgs::default()
        };
        let (r, _) = resolve_args(&args).expect("valid");
        assert_eq!((r.plan.concurrency, r.plan.time_limit), (9, 120.0));
        // The JSON summary of a run, from the checks of a small history.
        use faultline_history::{Event, EventType, History};
        let ev = |i, p, k, v: serde_json::Value| Event::client(i, p, k, "write", v);
        let paired = History::from_events(vec![
            ev(0, 0, EventType::Invoke, serde_json::json!(1)),
            ev(1, 0, EventType::Ok, serde_json::json!(1)),
        ])
        .pair("t")
        .expect("pairs");
        let checked =
            crate::campaign::checking::check(&paired, &r.check, std::time::Duration::from_secs(5));
        let res = CampaignResult {
            run_dir: PathBuf::from("store/raft-register/20261205T000000"),
            code: checked.code,
            checked,
            ops: faultline_results::OpCounts::of(&paired.ops),
            actions: Vec::new(),
            command: "faultline test --seed 1".into(),
            interrupted: false,
            main_phase: std::time::Duration::from_secs(2),
            final_reads: (3, 3),
            live: Some(faultline_results::LiveCheck {
                rounds: 4,
                ..Default::default()
            }),
        };
        let j = summary_json(&r, &res);
        assert_eq!(j["live_check"]["rounds"], 4);
        assert_eq!(j["exit_code"], 0);
        assert_eq!(j["ops"]["total"], 1);
        assert_eq!(j["models"][0]["model"], "linearizable");
        assert_eq!(j["models"][0]["result"], "valid");
        assert_eq!(j["models"][0]["claimed"], true);
        let text = j.to_string();
        let back: serde_json::Value = serde_json::from_str(&text).expect("one JSON object");
        assert_eq!(back, j);
    }

    #[test]
    fn a_machine_not_set_up_for_the_run_is_a_refusal_not_a_harness_failure() {
        use faultline_targets::runtime::RuntimeError;
        let denied = anyhow::Error::new(RuntimeError::EngineSocketDenied {
            socket: "/var/run/docker.sock".into(),
            uid: 1000,
        })
        .context("cannot reach Docker");
        assert_eq!(error_code(&denied), exit::BAD_INPUT);
        let root = anyhow::Error::new(RuntimeError::NotRoot { uid: 1000 });
        assert_eq!(error_code(&root), exit::BAD_INPUT);
        let other = anyhow::anyhow!("the node vanished");
        assert_eq!(error_code(&other), exit::HARNESS_FAILURE);
    }

    #[test]
    fn faults_applied_count_what_the_report_counts() {
        use crate::campaign::driver::ActionRecord;
        let a = |fault: &str, error: Option<&str>| ActionRecord {
            at_ms: 0,
            fault: fault.into(),
            mechanism: Some("nft".into()),
            error: error.map(str::to_string),
            requested_unix_ns: None,
            confirmed_unix_ns: None,
        };
        let actions = vec![
            a("partition", None),
            a("heal", None),
            a("partition", None),
            a("heal", None),
            a("kill", None),
            a("start", None),
            a("pause", Some("refused")),
            a("clock_bump", None),
            a("clock_reset", None),
        ];
        let (n, kinds, undone) = fault_tally(&actions);
        assert_eq!(n, 4);
        assert_eq!(
            kinds,
            ["clock_bump x1 (nft)", "kill x1 (nft)", "partition x2 (nft)"]
        );
        assert_eq!(undone, ["clock_reset x1", "heal x2", "start x1"]);
    }

    #[test]
    fn a_target_file_is_found_by_path_and_gives_the_default_node_count() {
        let dir = std::env::temp_dir().join(format!("fl-tfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("mydb.toml");
        std::fs::write(
            &file,
            "name = \"mydb\"\n[program]\nbinary = \"/bin/sh\"\n[node]\ncommand = [\"{peers}\"]\nport = 9\ndefault_nodes = 4\n\
             [readiness]\ntcp = 9\n[client]\ntype = \"http-kv\"\ncas = false\n[[claims]]\nmodels = [\"ryw\"]\nreason = \"r\"\n",
        )
        .expect("write");
        let args = TestArgs {
            target: Some(file.display().to_string()),
            nemesis: Some("partition".into()),
            ..TestArgs::default()
        };
        let (r, t) = resolve_args(&args).expect("valid");
        assert_eq!((t.name(), r.plan.nodes), ("mydb", 4));
        // A multiple of the node count follows the file's default.
        let (r, _) = resolve_args(&TestArgs {
            concurrency: Some(Concurrency::PerNode(2)),
            ..args.clone()
        })
        .expect("valid");
        assert_eq!(r.plan.concurrency, 8);
        assert_eq!(r.claims.models, vec!["ryw".to_string()]);
        let (r, _) = resolve_args(&TestArgs {
            nodes: Some(3),
            ..args.clone()
        })
        .expect("valid");
        assert_eq!(r.plan.nodes, 3);
        // No cas: the cas-register workload is refused; an unknown fault names the file's.
        assert!(resolve_args(&TestArgs {
            workload: Some(Workload::CasRegister),
            ..args.clone()
        })
        .is_err_and(|e| e.contains("compare-and-set")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
