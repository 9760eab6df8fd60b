//! The campaign plan: every setting of `faultline test`, from defaults, a TOML file and
//! command-line flags (flags win), and its validation. Pure: nothing here touches the
//! machine.

use crate::campaign::generator::{KeyDist, TxnSpec, Workload};
use faultline_checkers::lattice::ModelName;
use faultline_checkers::txn::TxnModel;
use faultline_checkers::DataModel;
use faultline_nemesis::Family;
use faultline_targets::{ClaimContext, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every setting of a campaign. The TOML plan file uses the same field names
/// (`time_limit`, `nemesis_interval`, ...); absent fields keep their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Plan {
    /// The system under test.
    pub target: String,
    /// Number of nodes.
    pub nodes: usize,
    /// register, cas-register, kv, list-append or rw-register.
    pub workload: Workload,
    /// Number of keys (kv), or of keys in use at once (list-append, rw-register).
    pub keys: usize,
    /// Fewest micro-operations per transaction (list-append, rw-register).
    pub min_txn_length: usize,
    /// Most micro-operations per transaction (list-append, rw-register).
    pub max_txn_length: usize,
    /// Share of micro-operations that read, 0 to 1 (list-append, rw-register).
    pub read_fraction: f64,
    /// How micro-operations pick keys: uniform or exponential.
    pub key_dist: KeyDist,
    /// Writes after which a key retires and a fresh one takes its place.
    pub max_writes_per_key: u64,
    /// Number of client processes running at once.
    pub concurrency: usize,
    /// Operations per second over all processes; 0 = as fast as the nodes answer.
    pub rate: f64,
    /// Length of the main phase (with the nemesis), in seconds.
    pub time_limit: f64,
    /// Fault families (partition, kill, pause, clock, loss, delay, rate); empty = none.
    pub nemesis: Vec<String>,
    /// Mean time between two nemesis actions, in seconds.
    pub nemesis_interval: f64,
    /// How many nodes may be killed or paused at once (default: a minority).
    pub max_down: Option<usize>,
    /// Planted faults of the target to switch on.
    pub fault: Vec<String>,
    /// Models to check: `claimed`, `all`, or a list of model names.
    pub check: Vec<String>,
    /// Seed of the generator and the nemesis schedule (`None`: drawn at start).
    pub seed: Option<u64>,
    /// Folder of the result store.
    pub store: PathBuf,
    /// Recovery time after the final heal, before the final reads, in seconds.
    pub recovery: f64,
    /// Time limit of one client request, in seconds.
    pub request_timeout: f64,
    /// Time budget of each checker, in seconds.
    pub check_time_limit: f64,
    /// Target-specific options (`r = "1"` for quorum-kv).
    pub target_options: BTreeMap<String, String>,
    /// The node binary (default: next to the `faultline` executable).
    pub node_binary: Option<PathBuf>,
    /// Check the history while the campaign runs (see `campaign::live`).
    pub live_check: bool,
    /// End the main phase at the first violation the live check finds.
    pub stop_on_violation: bool,
    /// Where faults are carried out from: `agent` (a node agent inside each node; no
    /// host root) or `host` (nsenter into each node's namespace; root).
    pub faults: FaultPath,
    /// Which runtime hosts the nodes: `docker` (default) or `kubernetes`.
    pub runtime: faultline_targets::runtime::RuntimeKind,
    /// On Kubernetes: the image holding `faultline` at /usr/local/bin/faultline, which
    /// runs the harness Job and which each node Pod's init container copies from
    /// (`faultline k8s manifest --k8s-agent-image`).
    pub k8s_agent_image: Option<String>,
    /// On Kubernetes: an API URL that needs no credentials, such as `kubectl proxy`'s
    /// http://127.0.0.1:8001 (default: `FAULTLINE_KUBE_API`, else the kubeconfig's
    /// cluster and credentials, else the in-cluster service account).
    pub kube_api: Option<String>,
    /// On Kubernetes: the namespace of the run's objects (default: `FAULTLINE_NAMESPACE`,
    /// else the kubeconfig context's, else `default`).
    pub k8s_namespace: Option<String>,
    /// On Kubernetes: put each node on its own host (required Pod anti-affinity).
    pub k8s_anti_affinity: bool,
}

/// Where faults are carried out from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FaultPath {
    /// A node agent (`faultline agent`) in each node, over the network.
    #[default]
    Agent,
    /// From the host: nsenter into each node's namespace (needs root).
    Host,
}

impl std::fmt::Display for FaultPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultPath::Agent => "agent",
            FaultPath::Host => "host",
        })
    }
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            target: "raft-register".into(),
            nodes: 5,
            workload: Workload::Kv,
            keys: 5,
            min_txn_length: TxnSpec::default().min_length,
            max_txn_length: TxnSpec::default().max_length,
            read_fraction: TxnSpec::default().read_fraction,
            key_dist: KeyDist::Uniform,
            max_writes_per_key: TxnSpec::default().max_writes_per_key,
            concurrency: 10,
            rate: 200.0,
            time_limit: 60.0,
            nemesis: ["partition", "kill", "pause", "clock"]
                .map(String::from)
                .to_vec(),
            nemesis_interval: 5.0,
            max_down: None,
            fault: Vec::new(),
            check: vec!["claimed".into()],
            seed: None,
            store: PathBuf::from("store"),
            recovery: 5.0,
            request_timeout: 1.5,
            check_time_limit: 120.0,
            target_options: BTreeMap::new(),
            node_binary: None,
            live_check: true,
            stop_on_violation: false,
            faults: FaultPath::default(),
            runtime: faultline_targets::runtime::RuntimeKind::default(),
            k8s_agent_image: None,
            kube_api: None,
            k8s_namespace: None,
            k8s_anti_affinity: false,
        }
    }
}

/// A plan that cannot run; exit 254.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plan file could not be read or parsed.
    #[error("plan {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A setting out of range or unknown.
    #[error("{0}")]
    Invalid(String),
}

/// Reads a TOML plan file.
pub fn load_plan(path: &Path) -> Result<Plan, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|e| PlanError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse_plan(&text).map_err(|message| PlanError::File {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses a TOML plan.
pub fn parse_plan(text: &str) -> Result<Plan, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// What the checkers are asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    /// Linearizability, with the workload's data model.
    pub linearizable: Option<DataModel>,
    /// The other models.
    pub others: Vec<ModelName>,
    /// The models whose verdicts decide the exit code.
    pub decisive: Vec<ModelName>,
    /// Transactional workloads: the isolation models to check (the fields above are
    /// then empty).
    pub txn: Vec<TxnModel>,
    /// The isolation models whose verdicts decide the exit code.
    pub txn_decisive: Vec<TxnModel>,
}

impl Plan {
    /// The transactions' shape from the plan's settings.
    pub fn txn_spec(&self) -> TxnSpec {
        TxnSpec {
            active_keys: self.keys,
            min_length: self.min_txn_length,
            max_length: self.max_txn_length,
            read_fraction: self.read_fraction,
            key_dist: self.key_dist,
            max_writes_per_key: self.max_writes_per_key,
        }
    }
}

/// A validated plan, with everything parsed.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The plan as given (with the seed filled in).
    pub plan: Plan,
    /// The seed.
    pub seed: u64,
    /// The nemesis families.
    pub families: Vec<Family>,
    /// Whether the families were chosen for the planted fault (the user gave none).
    pub families_from_fault: bool,
    /// Default families left out because the target cannot take them, with the reason
    /// (printed with the plan).
    pub families_dropped: Vec<String>,
    /// What to check.
    pub check: CheckRequest,
    /// The models the target claims under this plan, and why.
    pub claims: faultline_targets::Claims,
    /// Main phase.
    pub time_limit: Duration,
    /// Between nemesis actions.
    pub interval: Duration,
    /// Recovery.
    pub recovery: Duration,
    /// Client request timeout.
    pub request_timeout: Duration,
    /// Checker budget.
    pub check_time_limit: Duration,
    /// The `verify` series this campaign belongs to (its shard, campaign number and
    /// folder), recorded as `verify` in run.json; `None` for `faultline test`.
    pub series: Option<serde_json::Value>,
}

/// Bounds of the plan's numeric settings, shared by the flags' parsers
/// ([`crate::args`]) and [`resolve`] (which also checks a plan file's values).
pub mod limits {
    /// Nodes (a target may need more than the minimum).
    pub const NODES: (u64, u64) = (1, 9);
    /// Keys of the kv workload.
    pub const KEYS: (u64, u64) = (1, 10_000);
    /// Client processes at once.
    pub const CONCURRENCY: (u64, u64) = (1, 1024);
    /// Operations per second, 0 = unlimited.
    pub const RATE: (f64, f64) = (0.0, 1_000_000.0);
    /// Seconds of the main phase.
    pub const TIME_LIMIT: (f64, f64) = (1.0, 86_400.0);
    /// Mean seconds between nemesis actions.
    pub const NEMESIS_INTERVAL: (f64, f64) = (0.1, 3_600.0);
    /// Seconds of recovery.
    pub const RECOVERY: (f64, f64) = (0.0, 600.0);
    /// Seconds of one client request.
    pub const REQUEST_TIMEOUT: (f64, f64) = (0.05, 60.0);
    /// Seconds of each checker.
    pub const CHECK_TIME_LIMIT: (f64, f64) = (0.1, 86_400.0);
    /// Micro-operations of a transaction (the bundled node takes at most 64).
    pub const TXN_LENGTH: (u64, u64) = (1, 64);
    /// Writes of a key before it retires.
    pub const MAX_WRITES_PER_KEY: (u64, u64) = (1, 1_000_000);
}

fn secs(name: &str, v: f64, (min, max): (f64, f64)) -> Result<Duration, PlanError> {
    if !v.is_finite() || v < min || v > max {
        return Err(PlanError::Invalid(format!(
            "{name} must be between {min} and {max} seconds, got {v}"
        )));
    }
    Ok(Duration::from_secs_f64(v))
}

/// The data model linearizability is checked under, for a workload.
pub fn data_model(w: Workload) -> DataModel {
    match w {
        Workload::Register => DataModel::Register,
        Workload::CasRegister => DataModel::CasRegister,
        Workload::Kv | Workload::ListAppend | Workload::RwRegister => DataModel::Kv,
    }
}

/// Parses a nemesis list (`partition,kill`, `none`, `all`).
pub fn parse_nemesis(list: &[String]) -> Result<Vec<Family>, PlanError> {
    let items: Vec<&str> = list
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() && !list.is_empty() {
        return Err(PlanError::Invalid(
            "--nemesis names no fault family: give none for no faults, or families such as partition,kill".into(),
        ));
    }
    if items.contains(&"none") && items.len() > 1 {
        return Err(PlanError::Invalid(format!(
            "--nemesis {}: none cannot be combined with other fault families (give none alone, or the families)",
            items.join(",")
        )));
    }
    let mut out = Vec::new();
    for item in items {
        match item {
            "none" => {}
            "all" => out.extend([
                Family::Partition,
                Family::Kill,
                Family::Pause,
                Family::Clock,
            ]),
            other => out.push(
                other
                    .parse::<Family>()
                    .map_err(|e| PlanError::Invalid(format!("--nemesis: {e}")))?,
            ),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Resolves `check` against the target's claims.
pub fn parse_check(
    check: &[String],
    workload: Workload,
    claimed: &[String],
) -> Result<CheckRequest, PlanError> {
    let mut models: Vec<ModelName> = Vec::new();
    let mut decisive: Vec<ModelName> = Vec::new();
    let parse = |m: &str| {
        m.parse::<ModelName>()
            .map_err(|e| PlanError::Invalid(format!("--check: {e} (or claimed, all)")))
    };
    let claimed: Vec<ModelName> = claimed.iter().map(|m| parse(m)).collect::<Result<_, _>>()?;
    let items: Vec<&str> = check
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(PlanError::Invalid("--check names no model".into()));
    }
    for item in items {
        match item {
            "claimed" => {
                models.extend(&claimed);
                decisive.extend(&claimed);
            }
            "all" => {
                models.extend(ModelName::ALL);
                decisive.extend(&claimed);
            }
            m => {
                let m = parse(m)?;
                models.push(m);
                decisive.push(m);
            }
        }
    }
    models.sort();
    models.dedup();
    decisive.sort();
    decisive.dedup();
    Ok(CheckRequest {
        linearizable: models
            .contains(&ModelName::Linearizable)
            .then(|| data_model(workload)),
        others: models
            .into_iter()
            .filter(|m| *m != ModelName::Linearizable)
            .collect(),
        decisive,
        txn: Vec::new(),
        txn_decisive: Vec::new(),
    })
}

/// Resolves `check` for a transactional workload: `claimed` (the isolation models the
/// target claims), `all` (every isolation model, the claimed ones deciding) or isolation
/// model names (each deciding).
pub fn parse_txn_check(check: &[String], claimed: &[String]) -> Result<CheckRequest, PlanError> {
    let parse = |m: &str| {
        m.parse::<TxnModel>().map_err(|e| {
            let register = m.parse::<ModelName>().is_ok();
            PlanError::Invalid(if register {
                format!("--check {m}: a model of single-key operations; a transactional workload is checked with isolation models such as strict-serializable, serializable or snapshot-isolation (or claimed, all)")
            } else {
                format!("--check: {e} (or claimed, all)")
            })
        })
    };
    let claimed: Vec<TxnModel> = claimed.iter().map(|m| parse(m)).collect::<Result<_, _>>()?;
    let items: Vec<&str> = check
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(PlanError::Invalid("--check names no model".into()));
    }
    let (mut models, mut decisive) = (Vec::new(), Vec::new());
    for item in items {
        match item {
            "claimed" if claimed.is_empty() => {
                // Nothing claimed: say which models held.
                models.extend(TxnModel::ALL);
            }
            "claimed" => {
                models.extend(&claimed);
                decisive.extend(&claimed);
            }
            "all" => {
                models.extend(TxnModel::ALL);
                decisive.extend(&claimed);
            }
            m => {
                let m = parse(m)?;
                models.push(m);
                decisive.push(m);
            }
        }
    }
    models.sort();
    models.dedup();
    decisive.sort();
    decisive.dedup();
    Ok(CheckRequest {
        linearizable: None,
        others: Vec::new(),
        decisive: Vec::new(),
        txn: models,
        txn_decisive: decisive,
    })
}

/// Validates `plan` for `target`; fills in the seed with `fallback_seed` when absent.
/// Whether libfaketime is installed is looked up on this machine (see [`resolve_on`]).
pub fn resolve(
    plan: &Plan,
    target: &dyn Target,
    fallback_seed: u64,
) -> Result<Resolved, PlanError> {
    let libfaketime = faultline_nemesis::clock::find_libfaketime().is_some();
    resolve_on(plan, target, fallback_seed, libfaketime)
}

/// [`resolve`] on a machine that has (`libfaketime`) or lacks libfaketime: without it the
/// default nemesis list leaves clock faults out with a note, while an explicit `clock` is
/// kept so that the capability check refuses it with the install command (exit 254).
pub fn resolve_on(
    plan: &Plan,
    target: &dyn Target,
    fallback_seed: u64,
    libfaketime: bool,
) -> Result<Resolved, PlanError> {
    let bad = |m: String| Err(PlanError::Invalid(m));
    let within = |v: usize, (min, max): (u64, u64)| (min..=max).contains(&(v as u64));
    let min_nodes = (target.min_nodes() as u64).max(limits::NODES.0);
    if !within(plan.nodes, (min_nodes, limits::NODES.1)) {
        return bad(format!(
            "--nodes must be between {min_nodes} and {} for {}, got {}",
            limits::NODES.1,
            target.name(),
            plan.nodes
        ));
    }
    if !within(plan.concurrency, limits::CONCURRENCY) {
        return bad(format!(
            "--concurrency must be between {} and {}, got {}",
            limits::CONCURRENCY.0,
            limits::CONCURRENCY.1,
            plan.concurrency
        ));
    }
    if !within(plan.keys, limits::KEYS) {
        return bad(format!(
            "--keys must be between {} and {}, got {}",
            limits::KEYS.0,
            limits::KEYS.1,
            plan.keys
        ));
    }
    if !plan.rate.is_finite() || plan.rate < limits::RATE.0 || plan.rate > limits::RATE.1 {
        return bad(format!(
            "--rate must be 0 (unlimited) or positive up to {}, got {}",
            limits::RATE.1,
            plan.rate
        ));
    }
    if plan.workload.is_txn() {
        let (lmin, lmax) = limits::TXN_LENGTH;
        if !within(plan.min_txn_length, (lmin, lmax))
            || !within(plan.max_txn_length, (lmin, lmax))
            || plan.min_txn_length > plan.max_txn_length
        {
            return bad(format!(
                "--min-txn-length and --max-txn-length must be between {lmin} and {lmax}, the minimum no larger than the maximum, got {} and {}",
                plan.min_txn_length, plan.max_txn_length
            ));
        }
        if !(0.0..=1.0).contains(&plan.read_fraction) {
            return bad(format!(
                "--read-fraction must be between 0 and 1, got {}",
                plan.read_fraction
            ));
        }
        if !(limits::MAX_WRITES_PER_KEY.0..=limits::MAX_WRITES_PER_KEY.1)
            .contains(&plan.max_writes_per_key)
        {
            return bad(format!(
                "--max-writes-per-key must be between {} and {}, got {}",
                limits::MAX_WRITES_PER_KEY.0,
                limits::MAX_WRITES_PER_KEY.1,
                plan.max_writes_per_key
            ));
        }
    }
    if plan.workload == Workload::CasRegister && !target.offers_cas() {
        return bad(format!(
            "{} offers no compare-and-set: use --workload register or kv",
            target.name()
        ));
    }
    let time_limit = secs("--time-limit", plan.time_limit, limits::TIME_LIMIT)?;
    let interval = secs(
        "--nemesis-interval",
        plan.nemesis_interval,
        limits::NEMESIS_INTERVAL,
    )?;
    let recovery = secs("--recovery", plan.recovery, limits::RECOVERY)?;
    let request_timeout = secs(
        "--request-timeout",
        plan.request_timeout,
        limits::REQUEST_TIMEOUT,
    )?;
    let check_time_limit = secs(
        "--check-time-limit",
        plan.check_time_limit,
        limits::CHECK_TIME_LIMIT,
    )?;
    target
        .check_options(&plan.target_options, plan.nodes)
        .map_err(|e| PlanError::Invalid(e.to_string()))?;
    let mut families = parse_nemesis(&plan.nemesis)?;
    let mut families_from_fault = false;
    // When a planted fault chooses the nemesis, it also shapes the campaign that exposes
    // it, in the settings the user left at their defaults.
    let mut shaped = plan.clone();
    let mut interval = interval;
    let defaults = Plan::default();
    for f in &plan.fault {
        let sf = target
            .check_fault(f)
            .map_err(|e| PlanError::Invalid(e.to_string()))?;
        if sf.txn_only && !plan.workload.is_txn() {
            return bad(format!(
                "--fault {f} breaks transactions only, and the {} workload has none: add --workload list-append or rw-register",
                plan.workload
            ));
        }
        if plan.nemesis.is_empty() {
            for fam in &sf.exposed_by {
                families.push(
                    fam.parse::<Family>()
                        .map_err(|e| PlanError::Invalid(e.to_string()))?,
                );
                families_from_fault = true;
            }
            let e = sf.exposure;
            if let Some(ms) = e
                .interval_ms
                .filter(|_| plan.nemesis_interval == defaults.nemesis_interval)
            {
                shaped.nemesis_interval = ms as f64 / 1000.0;
                interval = Duration::from_millis(ms);
            }
            if let Some(c) = e
                .concurrency
                .filter(|_| plan.concurrency == defaults.concurrency)
            {
                shaped.concurrency = c;
            }
            if e.all_down && plan.max_down.is_none() {
                shaped.max_down = Some(plan.nodes);
            }
        }
    }
    families.sort();
    families.dedup();
    if families.contains(&Family::Leader) && !target.has_leader() {
        return bad(format!(
            "{} has no leader to aim at: drop leader from --nemesis (isolate one node with partition instead)",
            target.name()
        ));
    }
    let mut families_dropped = Vec::new();
    if families.contains(&Family::Clock) {
        if let Err(why) = target.clock_faults() {
            if plan.nemesis == Plan::default().nemesis {
                // The default list, not the user's choice: leave clock faults out and say so.
                families.retain(|f| *f != Family::Clock);
                families_dropped.push(format!("clock ({why})"));
            } else if plan.runtime.may_move_clocks() {
                // Asked for, on a runtime that may move the clock itself (Kubernetes with
                // Chaos Mesh): the runner decides once it is connected.
            } else {
                return bad(format!(
                    "clock faults cannot reach {}: {why}; drop clock from --nemesis",
                    target.name()
                ));
            }
        } else if !libfaketime && plan.nemesis == Plan::default().nemesis {
            families.retain(|f| *f != Family::Clock);
            families_dropped.push(
                "clock (libfaketime is not installed here: apt-get install libfaketime faketime)"
                    .to_string(),
            );
        }
    }
    if plan.max_down.is_some_and(|m| m == 0 || m > plan.nodes) {
        return bad(format!(
            "--max-down must be between 1 and the node count {}",
            plan.nodes
        ));
    }
    if families.contains(&Family::Partition) && plan.nodes < 2 {
        return bad("a partition needs at least 2 nodes".into());
    }
    let claims = target.claims(&ClaimContext {
        nodes: plan.nodes,
        options: Some(&plan.target_options),
        clock_faults: families.contains(&Family::Clock),
    });
    let (claims, check) = if plan.workload.is_txn() {
        let Some(support) = target.txn_support(&ClaimContext {
            nodes: plan.nodes,
            options: Some(&plan.target_options),
            clock_faults: families.contains(&Family::Clock),
        }) else {
            return bad(format!(
                "{} does not run transactional workloads: --workload {} needs a target that does (raft-register, quorum-kv, etcd); use register, cas-register or kv here",
                target.name(),
                plan.workload
            ));
        };
        let check = parse_txn_check(&plan.check, &support.models)?;
        (
            faultline_targets::Claims {
                models: support.models,
                reason: support.reason,
            },
            check,
        )
    } else {
        let check = parse_check(&plan.check, plan.workload, &claims.models)?;
        (claims, check)
    };
    let seed = plan.seed.unwrap_or(fallback_seed);
    let mut plan = shaped;
    plan.seed = Some(seed);
    Ok(Resolved {
        plan,
        seed,
        families,
        families_from_fault,
        families_dropped,
        check,
        claims,
        time_limit,
        interval,
        recovery,
        request_timeout,
        check_time_limit,
        series: None,
    })
}

/// The command line that runs this plan again (same seed, same settings).
pub fn reproduce_command(r: &Resolved) -> String {
    let p = &r.plan;
    let mut c = format!(
        "faultline test --target {} --nodes {} --workload {} --keys {}{} --concurrency {} --rate {} --time-limit {} --nemesis {} --nemesis-interval {}",
        p.target,
        p.nodes,
        p.workload,
        p.keys,
        if p.workload.is_txn() {
            format!(
                " --min-txn-length {} --max-txn-length {} --read-fraction {} --key-dist {} --max-writes-per-key {}",
                p.min_txn_length, p.max_txn_length, p.read_fraction, p.key_dist, p.max_writes_per_key
            )
        } else {
            String::new()
        },
        p.concurrency,
        p.rate,
        p.time_limit,
        if r.families.is_empty() { "none".to_string() } else { r.families.iter().map(|f| f.name()).collect::<Vec<_>>().join(",") },
        p.nemesis_interval,
    );
    let d = Plan::default();
    if p.recovery != d.recovery {
        c.push_str(&format!(" --recovery {}", p.recovery));
    }
    if p.request_timeout != d.request_timeout {
        c.push_str(&format!(" --request-timeout {}", p.request_timeout));
    }
    if let Some(m) = p.max_down {
        c.push_str(&format!(" --max-down {m}"));
    }
    for f in &p.fault {
        c.push_str(&format!(" --fault {f}"));
    }
    for (k, v) in &p.target_options {
        c.push_str(&format!(" --target-opt {k}={v}"));
    }
    if !p.live_check {
        c.push_str(" --no-live-check");
    }
    if p.stop_on_violation {
        c.push_str(" --stop-on-violation");
    }
    if p.runtime != d.runtime {
        c.push_str(&format!(" --runtime {}", p.runtime));
        if let Some(image) = &p.k8s_agent_image {
            c.push_str(&format!(" --k8s-agent-image {image}"));
        }
        if let Some(ns) = &p.k8s_namespace {
            c.push_str(&format!(" --k8s-namespace {ns}"));
        }
        if p.k8s_anti_affinity {
            c.push_str(" --k8s-anti-affinity");
        }
    }
    if p.faults != d.faults {
        c.push_str(&format!(" --faults {}", p.faults));
    }
    c.push_str(&format!(" --check {} --seed {}", p.check.join(","), r.seed));
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_targets::target_by_name;

    fn raft() -> std::sync::Arc<dyn Target> {
        target_by_name("raft-register").expect("known target")
    }

    #[test]
    fn the_default_plan_is_valid_and_checks_linearizability_of_a_kv() {
        let r = resolve_on(&Plan::default(), raft().as_ref(), 9, true).expect("valid");
        assert_eq!(r.seed, 9);
        assert_eq!(r.check.linearizable, Some(DataModel::Kv));
        assert!(r.check.others.is_empty());
        assert_eq!(
            r.families,
            vec![
                Family::Partition,
                Family::Kill,
                Family::Pause,
                Family::Clock
            ]
        );
        assert_eq!(r.time_limit, Duration::from_secs(60));
    }

    #[test]
    fn without_libfaketime_the_default_list_drops_clock_and_an_explicit_one_stays() {
        let r = resolve_on(&Plan::default(), raft().as_ref(), 9, false).expect("valid");
        assert!(!r.families.contains(&Family::Clock), "{:?}", r.families);
        assert_eq!(r.families_dropped.len(), 1);
        assert!(
            r.families_dropped[0].contains("apt-get install libfaketime faketime"),
            "{:?}",
            r.families_dropped
        );
        let p = Plan {
            nemesis: vec!["clock".to_string()],
            ..Plan::default()
        };
        let r = resolve_on(&p, raft().as_ref(), 9, false).expect("kept for the probe to refuse");
        assert_eq!(r.families, vec![Family::Clock]);
    }

    #[test]
    fn clock_faults_on_go_programs_wait_for_a_runtime_that_may_move_clocks() {
        let etcd = target_by_name("etcd").expect("known target");
        let clock = Plan {
            nemesis: vec!["clock".to_string()],
            ..Plan::default()
        };
        // Docker: libfaketime is the only mechanism, and it cannot reach etcd.
        let err = resolve_on(&clock, etcd.as_ref(), 9, true).expect_err("refused");
        assert!(
            err.to_string().contains("clock faults cannot reach etcd"),
            "{err}"
        );
        // Kubernetes: kept, for the runner to decide once it knows whether Chaos Mesh
        // is there.
        let on_kube = Plan {
            runtime: faultline_targets::runtime::RuntimeKind::Kubernetes,
            ..clock
        };
        let r = resolve_on(&on_kube, etcd.as_ref(), 9, true).expect("kept");
        assert_eq!(r.families, vec![Family::Clock]);
        // The default list still leaves clock out for etcd there, saying why.
        let default_kube = Plan {
            runtime: faultline_targets::runtime::RuntimeKind::Kubernetes,
            ..Plan::default()
        };
        let r = resolve_on(&default_kube, etcd.as_ref(), 9, true).expect("valid");
        assert!(!r.families.contains(&Family::Clock), "{:?}", r.families);
    }

    #[test]
    fn toml_plans_parse_and_reject_unknown_fields() {
        let p = parse_plan("nodes = 3\ntime_limit = 15\nnemesis = [\"partition\"]\nseed = 4\n")
            .expect("parses");
        assert_eq!((p.nodes, p.time_limit, p.seed), (3, 15.0, Some(4)));
        assert_eq!(p.concurrency, Plan::default().concurrency);
        let err = parse_plan("nodez = 3\n").expect_err("unknown field");
        assert!(err.contains("nodez"), "{err}");
        assert!(parse_plan("nodes = \"five\"\n").is_err());
    }

    #[test]
    fn the_example_plan_parses_and_resolves() {
        let p = parse_plan(include_str!("../../tests/plans/stale-reads.toml")).expect("parses");
        let r = resolve(&p, raft().as_ref(), 1).expect("valid");
        assert_eq!((r.seed, r.plan.nodes), (3, 3));
        assert_eq!(r.families, vec![Family::Partition]);
        assert_eq!(r.plan.fault, vec!["stale-reads".to_string()]);
    }

    #[test]
    fn bad_settings_are_refused_with_the_setting_named() {
        let t = raft();
        let msg = |p: Plan| {
            resolve(&p, t.as_ref(), 1)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(msg(Plan {
            nodes: 0,
            ..Plan::default()
        })
        .contains("--nodes"));
        assert!(msg(Plan {
            concurrency: 0,
            ..Plan::default()
        })
        .contains("--concurrency"));
        assert!(msg(Plan {
            time_limit: -1.0,
            ..Plan::default()
        })
        .contains("--time-limit"));
        assert!(msg(Plan {
            nemesis: vec!["earthquake".into()],
            ..Plan::default()
        })
        .contains("earthquake"));
        assert!(msg(Plan {
            nemesis: vec![",".into()],
            ..Plan::default()
        })
        .contains("names no fault family"));
        for contradictory in [vec!["all,none"], vec!["none", "partition"]] {
            assert!(msg(Plan {
                nemesis: contradictory.iter().map(|s| s.to_string()).collect(),
                ..Plan::default()
            })
            .contains("none cannot be combined"));
        }
        assert!(msg(Plan {
            rate: 1e300,
            ..Plan::default()
        })
        .contains("--rate"));
        assert!(msg(Plan {
            fault: vec!["r1".into()],
            ..Plan::default()
        })
        .contains("stale-reads"));
        assert!(msg(Plan {
            check: vec!["snapshot".into()],
            ..Plan::default()
        })
        .contains("snapshot"));
        let q = target_by_name("quorum-kv").expect("known");
        // A leaderless target has no leader to aim at.
        let e = resolve(
            &Plan {
                target: "quorum-kv".into(),
                nemesis: vec!["leader".into()],
                ..Plan::default()
            },
            q.as_ref(),
            1,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("no leader to aim at"), "{e}");
        let e = resolve(
            &Plan {
                target: "quorum-kv".into(),
                workload: Workload::CasRegister,
                ..Plan::default()
            },
            q.as_ref(),
            1,
        );
        assert!(e.is_err());
    }

    #[test]
    fn a_fault_without_a_nemesis_brings_the_families_that_expose_it() {
        let p = Plan {
            nemesis: Vec::new(),
            fault: vec!["lease-reads".into()],
            ..Plan::default()
        };
        let r = resolve(&p, raft().as_ref(), 1).expect("valid");
        assert_eq!(r.families, vec![Family::Clock, Family::Leader]);
        assert!(r.families_from_fault);
        // ... and the campaign shape that exposes it, where the user left the defaults.
        assert_eq!(
            (r.plan.concurrency, r.interval),
            (30, Duration::from_secs(3))
        );
        let p = Plan {
            nemesis: Vec::new(),
            fault: vec!["no-fsync".into()],
            nodes: 3,
            concurrency: 12,
            ..Plan::default()
        };
        let r = resolve(&p, raft().as_ref(), 1).expect("valid");
        assert_eq!(r.families, vec![Family::Kill]);
        assert_eq!(r.plan.max_down, Some(3), "every node may be down at once");
        assert_eq!(
            (r.plan.concurrency, r.interval),
            (12, Duration::from_secs(2))
        );
        assert!(reproduce_command(&r).contains("--max-down 3"));
        assert!(reproduce_command(&r).contains("--nemesis-interval 2"));
        // A nemesis the user chose keeps the user's shape.
        let p = Plan {
            nemesis: vec!["kill".into()],
            fault: vec!["no-fsync".into()],
            ..Plan::default()
        };
        let r = resolve(&p, raft().as_ref(), 1).expect("valid");
        assert_eq!(
            (r.plan.max_down, r.interval),
            (None, Duration::from_secs(5))
        );
        let p = Plan {
            nemesis: vec!["none".into()],
            fault: vec!["stale-reads".into()],
            ..Plan::default()
        };
        assert!(resolve(&p, raft().as_ref(), 1)
            .expect("valid")
            .families
            .is_empty());
    }

    #[test]
    fn check_lists_resolve_against_the_claims() {
        let all = parse_check(
            &["all".into()],
            Workload::Register,
            &["linearizable".into()],
        )
        .expect("ok");
        assert_eq!(all.linearizable, Some(DataModel::Register));
        assert_eq!(all.others.len(), ModelName::ALL.len() - 1);
        assert_eq!(all.decisive, vec![ModelName::Linearizable]);
        let some = parse_check(&["ryw,mr".into()], Workload::Kv, &[]).expect("ok");
        assert_eq!(some.linearizable, None);
        assert_eq!(some.decisive, vec![ModelName::Ryw, ModelName::Mr]);
        let none = parse_check(&["claimed".into()], Workload::Kv, &[]).expect("ok");
        assert!(none.decisive.is_empty() && none.others.is_empty());
    }

    #[test]
    fn the_reproduce_command_carries_the_seed_and_the_fault() {
        let p = Plan {
            fault: vec!["stale-reads".into()],
            nemesis: Vec::new(),
            seed: Some(77),
            ..Plan::default()
        };
        let r = resolve(&p, raft().as_ref(), 1).expect("valid");
        let c = reproduce_command(&r);
        assert!(
            c.contains("--seed 77")
                && c.contains("--fault stale-reads")
                && c.contains("--nemesis partition"),
            "{c}"
        );
    }

    #[test]
    fn the_runtime_comes_from_the_plan_file_and_is_reproduced() {
        use faultline_targets::runtime::RuntimeKind;
        assert_eq!(
            parse_plan("").expect("empty plan").runtime,
            RuntimeKind::Docker
        );
        let p = parse_plan("runtime = \"kubernetes\"").expect("plan");
        assert_eq!(p.runtime, RuntimeKind::Kubernetes);
        let err = parse_plan("runtime = \"podman\"").expect_err("refused");
        assert!(err.contains("podman"), "{err}");
        let target = faultline_targets::target_by_name("raft-register").expect("known");
        let r = resolve(&p, target.as_ref(), 1).expect("resolves");
        assert!(reproduce_command(&r).contains(" --runtime kubernetes"));
        let r = resolve(&Plan::default(), target.as_ref(), 1).expect("resolves");
        assert!(!reproduce_command(&r).contains("--runtime"));
        // The cluster's settings come from the plan too; all but the API's URL (where
        // this machine's proxy listens) are reproduced.
        let p = parse_plan(
            "runtime = \"kubernetes\"\nk8s_agent_image = \"reg/faultline:1\"\n\
             k8s_namespace = \"jepsen\"\nk8s_anti_affinity = true\n\
             kube_api = \"http://127.0.0.1:8001\"",
        )
        .expect("plan");
        assert_eq!(p.kube_api.as_deref(), Some("http://127.0.0.1:8001"));
        let r = resolve(&p, target.as_ref(), 1).expect("resolves");
        let c = reproduce_command(&r);
        assert!(
            c.contains(
                " --runtime kubernetes --k8s-agent-image reg/faultline:1 \
                 --k8s-namespace jepsen --k8s-anti-affinity"
            ),
            "{c}"
        );
        assert!(!c.contains("--kube-api"), "{c}");
    }

    #[test]
    fn transactional_plans_resolve_against_the_isolation_claims() {
        let txn = |target: &str, extra: Plan| {
            let t = target_by_name(target).expect("known");
            resolve_on(
                &Plan {
                    target: target.into(),
                    nodes: 3,
                    workload: Workload::ListAppend,
                    nemesis: vec!["partition".into()],
                    ..extra
                },
                t.as_ref(),
                1,
                true,
            )
        };
        let r = txn("raft-register", Plan::default()).expect("resolves");
        assert_eq!(r.claims.models, vec!["strict-serializable"]);
        assert_eq!(r.check.txn, vec![TxnModel::StrictSerializable]);
        assert_eq!(r.check.txn_decisive, vec![TxnModel::StrictSerializable]);
        assert!(r.check.linearizable.is_none() && r.check.others.is_empty());
        assert!(reproduce_command(&r).contains("--workload list-append --keys 5 --min-txn-length 1 --max-txn-length 4 --read-fraction 0.5 --key-dist uniform --max-writes-per-key 32"));
        let r = txn("quorum-kv", Plan::default()).expect("resolves");
        assert!(r.claims.models.is_empty());
        assert_eq!(r.check.txn.len(), TxnModel::ALL.len(), "reports which held");
        assert!(r.check.txn_decisive.is_empty());
        let r = txn(
            "etcd",
            Plan {
                check: vec!["serializable,read-committed".into()],
                ..Plan::default()
            },
        )
        .expect("resolves");
        assert_eq!(
            r.check.txn_decisive,
            vec![TxnModel::Serializable, TxnModel::ReadCommitted]
        );
        let err = |p: Plan| {
            txn("raft-register", p)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(Plan {
            check: vec!["linearizable".into()],
            ..Plan::default()
        })
        .contains("isolation models"));
        assert!(err(Plan {
            min_txn_length: 5,
            max_txn_length: 2,
            ..Plan::default()
        })
        .contains("--min-txn-length"));
        assert!(err(Plan {
            max_txn_length: 65,
            ..Plan::default()
        })
        .contains("--max-txn-length"));
        assert!(err(Plan {
            read_fraction: 1.5,
            ..Plan::default()
        })
        .contains("--read-fraction"));
        assert!(err(Plan {
            max_writes_per_key: 0,
            ..Plan::default()
        })
        .contains("--max-writes-per-key"));
    }

    #[test]
    fn a_txn_fault_needs_a_transactional_workload_and_brings_its_exposure() {
        let t = raft();
        let kv = resolve_on(
            &Plan {
                fault: vec!["txn-lost-update".into()],
                nemesis: Vec::new(),
                ..Plan::default()
            },
            t.as_ref(),
            1,
            true,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(kv.contains("--workload list-append or rw-register"), "{kv}");
        let r = resolve_on(
            &Plan {
                workload: Workload::ListAppend,
                fault: vec!["txn-lost-update".into()],
                nemesis: Vec::new(),
                ..Plan::default()
            },
            t.as_ref(),
            1,
            true,
        )
        .expect("resolves");
        assert!(r.families_from_fault);
        assert_eq!(r.families, vec![Family::Partition, Family::Leader]);
        assert_eq!(r.plan.concurrency, 20);
        assert_eq!(r.interval, Duration::from_secs(3));
    }

    #[test]
    fn a_target_without_transactions_is_refused_for_a_transactional_workload() {
        // A target file: neither of its client protocols has transactions.
        let dir = std::env::temp_dir().join(format!("fl-plan-txn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("plain.toml");
        std::fs::write(
            &file,
            "name = \"plain\"\n[program]\nimage = \"plain:1\"\n[node]\ncommand = [\"serve\"]\nport = 80\n[readiness]\ntcp = 80\n[client]\ntype = \"http-kv\"\n[[claims]]\nmodels = []\nreason = \"none\"\n",
        )
        .expect("write");
        let names: Vec<&str> = ModelName::ALL.iter().map(|m| m.as_str()).collect();
        let t = faultline_targets::TargetFile::load(&file, &names);
        std::fs::remove_dir_all(&dir).ok();
        let t = t.expect("the target file loads");
        let e = resolve_on(
            &Plan {
                target: file.display().to_string(),
                nodes: 3,
                workload: Workload::RwRegister,
                nemesis: vec!["partition".into()],
                ..Plan::default()
            },
            &t,
            1,
            true,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("does not run transactional workloads"), "{e}");
    }
}
