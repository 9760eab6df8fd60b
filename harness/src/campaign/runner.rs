//! The campaign runner: wires a validated plan to the machine. Probe, start the cluster,
//! run the main phase (workers and nemesis), heal, recover, read every key through every
//! node, tear down, check, and write the run folder. Every path after the cluster started
//! tears it down; Ctrl-C stops the workers and skips to the healing and the checks.

use crate::campaign::checking::{self, Checked};
use crate::campaign::driver::{self, ActionRecord};
use crate::campaign::generator::{Generator, GeneratorSpec};
use crate::campaign::live::LiveChecker;
use crate::campaign::plan::{reproduce_command, FaultPath, Resolved};
use crate::campaign::progress::Progress;
use crate::campaign::recorder::Recorder;
use crate::campaign::worker::{Stats, Workers};
use crate::{exit, reporting};
use anyhow::{Context, Result};
use faultline_history::{History, Value};
use faultline_nemesis::{schedule, Capabilities, Nemesis, ScheduleConfig};
use faultline_results::{
    create_run_dir, update_latest, LiveCheck, OpCounts, RunInfo, Utc, RUN_SCHEMA,
};
use faultline_targets::agent::{new_token, AgentClient, Faketime, AGENT_PORT};
use faultline_targets::runtime::{
    default_faketime_env, AddressPlan, AgentSpec, CleanScope, Cluster, ClusterSpec, ImageSpec,
    NodeName, NodeSpec, RunId, RuntimeOptions, DATA_MOUNT,
};
use faultline_targets::{
    cluster_token, node_name, ClientContext, DeployContext, NemesisNode, Program, Target,
};
use serde_json::{json, Map};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Why a transactional campaign has no live check (printed, and kept in run.json as
/// `live_check_skipped`).
pub const TXN_LIVE_NOTE: &str = "the live check follows single-key histories only: this transactional history is checked once, at the end of the run (--stop-on-violation has no effect)";

/// An error that maps to an exit code other than 255 (a plan the machine cannot run).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// What is wrong and how to fix it.
    pub message: String,
}

/// What a campaign produced.
#[derive(Debug)]
pub struct CampaignResult {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The exit code.
    pub code: u8,
    /// The verdicts.
    pub checked: Checked,
    /// Operation counts from the history.
    pub ops: OpCounts,
    /// The nemesis actions.
    pub actions: Vec<ActionRecord>,
    /// The command that reproduces the run.
    pub command: String,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// Length of the main phase as run.
    pub main_phase: Duration,
    /// Ok final reads, out of how many were sent (keys, or final transactions, x nodes;
    /// 0 when the run was interrupted before them).
    pub final_reads: (u64, u64),
    /// What the live check found, if it ran.
    pub live: Option<LiveCheck>,
}

/// Where the node program is: the plan's path (`--node-binary`), else what the target
/// says: a host program at its path, or one of faultline's own next to the `faultline`
/// executable (or one folder up, for test executables in `deps/`). An image target has no
/// host program: `Ok(None)`.
pub fn find_binary(explicit: Option<&Path>, target: &dyn Target) -> Result<Option<PathBuf>> {
    let program = target.program();
    if let Program::Image { reference } = &program {
        if explicit.is_some() {
            return Err(Refused {
                message: format!(
                    "{} runs the image {reference}: --node-binary does not apply",
                    target.name()
                ),
            }
            .into());
        }
        return Ok(None);
    }
    if let Program::HostTree {
        program,
        trees,
        hint,
    } = &program
    {
        if explicit.is_some() {
            return Err(Refused {
                message: format!(
                    "{} runs {} from the trees it carries into its image: --node-binary does not apply",
                    target.name(),
                    program.display()
                ),
            }
            .into());
        }
        if let Some(missing) = std::iter::once(program).chain(trees).find(|p| !p.exists()) {
            return Err(Refused {
                message: format!(
                    "{} needs {}, which is not there: {hint}",
                    target.name(),
                    missing.display()
                ),
            }
            .into());
        }
        return Ok(Some(program.clone()));
    }
    let hint = match &program {
        Program::Bundled { build_hint, .. } => build_hint.clone(),
        Program::HostBinary { hint, .. } | Program::HostTree { hint, .. } => hint.clone(),
        Program::Image { .. } => String::new(),
    };
    if let Some(p) = explicit {
        if !p.is_file() {
            return Err(Refused {
                message: format!(
                    "node binary {} not found (build it with `{hint}`)",
                    p.display()
                ),
            }
            .into());
        }
        return p
            .canonicalize()
            .map(Some)
            .with_context(|| format!("cannot resolve {}", p.display()));
    }
    let file_name = match program {
        Program::HostBinary { path, .. } => {
            if !path.is_file() {
                return Err(Refused {
                    message: format!(
                        "{} needs {}, which is not there: {hint} (or pass --node-binary PATH)",
                        target.name(),
                        path.display()
                    ),
                }
                .into());
            }
            return Ok(Some(path));
        }
        Program::Bundled { file_name, .. } => file_name,
        Program::Image { .. } | Program::HostTree { .. } => return Ok(None),
    };
    let exe = std::env::current_exe().context("cannot find the faultline executable")?;
    let mut dirs = Vec::new();
    if let Some(d) = exe.parent() {
        dirs.push(d.to_path_buf());
        if let Some(up) = d.parent() {
            dirs.push(up.to_path_buf());
            dirs.push(up.join("release"));
        }
    }
    for d in &dirs {
        let p = d.join(&file_name);
        if p.is_file() {
            return Ok(Some(p));
        }
    }
    anyhow::bail!(
        "{file_name} not found next to {}: build it with `{hint}` (same target dir), or pass --node-binary PATH",
        exe.display(),
    )
}

/// Runs one campaign. `interrupt` is set by the caller's Ctrl-C handler.
pub async fn run_campaign(
    r: &Resolved,
    target: Arc<dyn Target>,
    interrupt: Arc<AtomicBool>,
) -> Result<CampaignResult> {
    let plan = &r.plan;
    // `None`: the target runs an image that holds its program.
    let binary = find_binary(plan.node_binary.as_deref(), target.as_ref())?;
    // An image that holds its own program runs without an agent (its entry point is the
    // image's), unless the runtime puts the agent into any image: its faults then come
    // from the host.
    let agents =
        plan.faults == FaultPath::Agent && (binary.is_some() || plan.runtime.agent_in_any_image());
    // Probe first: refuse a plan this machine cannot run before starting anything. With
    // node agents the nodes are probed once they run (through the agent); the host only
    // has to hold libfaketime, which goes into the image.
    let host_caps = if agents {
        let host = Capabilities {
            libfaketime: faultline_nemesis::clock::find_libfaketime(),
            agent: true,
            ..Capabilities::default()
        };
        let clock = [faultline_nemesis::Family::Clock];
        // Where the agent image delivers libfaketime (Kubernetes), this machine's does
        // not matter: each node's agent confirms the library once the program runs.
        if r.families.contains(&faultline_nemesis::Family::Clock)
            && !plan.runtime.agent_in_any_image()
        {
            host.check(&clock).map_err(|e| Refused {
                message: format!("the plan needs what this machine lacks: {e}"),
            })?;
        }
        None
    } else {
        let caps = Capabilities::probe().await;
        caps.check(&r.families).map_err(|e| Refused {
            message: format!("the plan needs what this machine lacks: {e}"),
        })?;
        Some(caps)
    };
    let (runtime, engine) = faultline_targets::runtime::connect(&RuntimeOptions {
        kind: plan.runtime,
        require_root: !agents,
        kube_api: plan.kube_api.clone(),
        namespace: plan.k8s_namespace.clone(),
        agent_image: plan.k8s_agent_image.clone(),
        anti_affinity: plan.k8s_anti_affinity,
    })
    .await
    .with_context(|| format!("cannot use the {} runtime", plan.runtime))?;
    let agent = if agents {
        let exe = std::env::current_exe().context("cannot find the faultline executable")?;
        Some(AgentSpec {
            binary: exe,
            token: new_token(),
            port: AGENT_PORT,
            child_user: child_user(),
        })
    } else {
        None
    };
    let image =
        match (&binary, target.program()) {
            (Some(binary), program) => {
                let mut image_spec = ImageSpec::new(binary);
                image_spec.agent = agent.as_ref().map(|a| a.binary.clone());
                if let Program::HostTree { trees, .. } = program {
                    image_spec.trees = trees;
                }
                runtime
                    .prepare_image(&image_spec)
                    .await
                    .context("cannot prepare the node image")?
            }
            (None, Program::Image { reference }) => runtime
                .existing_image(&reference)
                .await
                .map_err(|e| Refused {
                    message: format!("{}: {e}", target.name()),
                })?,
            (None, other) => anyhow::bail!("no program for {}: {other:?}", target.name()),
        };
    let clock = r.families.contains(&faultline_nemesis::Family::Clock);
    if clock && image.capabilities.clock_by_runtime {
        errln!(
            "clock faults: moved by the {} runtime itself (held offsets, no strobes)",
            runtime.kind()
        );
    }
    if let Some(message) = clock
        .then(|| {
            clock_refusal(
                target.clock_faults().err(),
                &image.capabilities,
                runtime.kind(),
            )
        })
        .flatten()
    {
        return Err(Refused { message }.into());
    }

    let started = SystemTime::now();
    let started_at = Utc::from_system_time(started);
    // The node folders under the run folder are bind-mounted, which needs an absolute
    // path; `--store` is relative by default.
    let store = std::path::absolute(&plan.store)
        .with_context(|| format!("the store folder {}", plan.store.display()))?;
    let run_dir = create_run_dir(&store, target.name(), started)?;
    let run = RunId::generate();
    // libfaketime's settings through the environment, unless the runtime moves the
    // clocks itself or the agent preloads the library itself.
    let env = if image.capabilities.clock_faults
        && !image.capabilities.clock_by_runtime
        && !image.capabilities.clock_preloaded_by_agent
    {
        default_faketime_env()
    } else {
        Vec::new()
    };
    errln!(
        "starting {} nodes of {} (run {run}) ...",
        plan.nodes,
        target.name()
    );
    // The runtime says how the nodes will reach each other; when those addresses are
    // taken (another run holds Docker's subnet), it plans again.
    let names = (0..plan.nodes)
        .map(|i| NodeName::new(&node_name(i)))
        .collect::<Result<Vec<_>, _>>()
        .context("node name")?;
    let mut attempt = 0u32;
    let cluster = loop {
        let addresses = runtime
            .plan_addresses(&run, &names, attempt)
            .context("cannot plan the node addresses")?;
        let mut spec = cluster_spec(
            r,
            target.as_ref(),
            &run,
            &run_dir,
            binary.as_deref(),
            addresses,
            &env,
        )?;
        spec.agent = agent.clone();
        match Cluster::start(runtime.clone(), spec, &image).await {
            Ok(c) => break c,
            Err(e) if e.is_address_conflict() && attempt < 32 => {
                tracing::info!("{e}; trying other addresses");
                attempt += 1;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("cannot start the cluster")),
        }
    };
    // What `faultline analyze` needs if this process dies before the end: the plan and
    // the claims (the final run.json replaces this one). Written once the cluster runs,
    // so a cluster that cannot start leaves an empty folder, as before.
    write_early_run_json(r, target.name(), &run_dir, &started_at);
    // Clock faults the agents must confirm: every node's running program has to have
    // libfaketime mapped, else the campaign is refused (first, as its reason is the
    // most precise one).
    let confirmed = match agent.as_ref() {
        Some(agent) if clock && image.capabilities.clock_confirm_by_agent => {
            confirm_faketime(&cluster, agent).await
        }
        _ => Ok(()),
    };
    let probed = match (confirmed, &host_caps) {
        (Err(e), _) => Err(e),
        (Ok(()), Some(caps)) => Ok(caps.clone()),
        (Ok(()), None) => {
            agent_capabilities(
                r,
                &cluster,
                agent.as_ref(),
                image.capabilities.clock_by_runtime,
            )
            .await
        }
    };
    let caps = match probed {
        Ok(caps) => caps,
        Err(e) => {
            if let Err(t) = cluster.teardown().await {
                tracing::warn!("tearing the cluster down: {t}");
            }
            if let Err(t) = cluster.remove_node_dirs() {
                tracing::warn!("removing node folders: {t}");
            }
            return Err(e);
        }
    };
    let phases = run_phases(
        r,
        target.as_ref(),
        &cluster,
        caps.clone(),
        FaultRoutes {
            agent: agent.as_ref(),
            clock_by_runtime: image.capabilities.clock_by_runtime,
        },
        &run_dir,
        interrupt,
    )
    .await;
    // Whatever happened: logs, then teardown.
    match cluster.collect_logs(&run_dir.join("logs")).await {
        Ok(files) => strip_log_colours(&files),
        Err(e) => tracing::warn!("collecting node logs: {e}"),
    }
    let teardown = cluster.teardown().await;
    if let Err(e) = cluster.remove_node_dirs() {
        tracing::warn!("removing node folders: {e}");
    }
    let phases = phases?;
    teardown.context("tearing the cluster down")?;

    errln!("checking {} ...", r.check_summary());
    let history = History::from_events(phases.recorder.events());
    let paired = history
        .pair("history.jsonl")
        .context("the recorded history does not pair")?;
    let ops = OpCounts::of(&paired.ops);
    // `faultline serve` shows the run as running while it is checked.
    let checking_note = {
        let dir = run_dir.clone();
        let doc = faultline_results::index::Progress {
            phase: "checking".into(),
            limit_s: r.time_limit.as_secs_f64(),
            elapsed_s: phases.wall.as_secs_f64(),
            ops: ops.total,
            ok: ops.ok,
            fail: ops.fail,
            info: ops.info,
            ..Default::default()
        };
        tokio::spawn(async move {
            loop {
                let _ = faultline_results::index::write_progress(&dir, &doc);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let checked = checking::check(&paired, &r.check, r.check_time_limit);
    checking_note.abort();
    let _ = checking_note.await;
    let mut code = checked.code;
    if phases.interrupted && code == exit::VALID {
        code = exit::UNKNOWN;
    }
    let command = reproduce_command(r);
    let mut mechanisms = BTreeMap::new();
    for a in &phases.actions {
        if let Some(m) = &a.mechanism {
            if m != "none" {
                mechanisms.insert(a.fault.clone(), m.clone());
            }
        }
    }
    let mut extra = Map::new();
    extra.insert("claims".into(), json!(r.claims));
    extra.insert(
        "nemesis".into(),
        json!(r.families.iter().map(|f| f.name()).collect::<Vec<_>>()),
    );
    extra.insert("capabilities".into(), json!(caps));
    extra.insert(
        "clock_faults".into(),
        json!(image.capabilities.clock_faults),
    );
    // Which mechanism moves the clocks: the runtime's own (Chaos Mesh) or libfaketime.
    if image.capabilities.clock_faults {
        extra.insert(
            "clock_mechanism".into(),
            json!(if image.capabilities.clock_by_runtime {
                "runtime"
            } else {
                "libfaketime"
            }),
        );
    }
    extra.insert("faults".into(), json!(plan.faults.to_string()));
    if let Some((median, max, n)) = driver::timing_summary(&phases.actions) {
        extra.insert(
            "fault_timing".into(),
            json!({ "median_ms": median, "max_ms": max, "actions": n, "path": plan.faults.to_string() }),
        );
    }
    extra.insert("actions".into(), json!(phases.actions));
    extra.insert("interrupted".into(), json!(phases.interrupted));
    if let Some(live) = &phases.live {
        extra.insert("live_check".into(), json!(live));
    } else if plan.live_check && plan.workload.is_txn() {
        extra.insert("live_check_skipped".into(), json!(TXN_LIVE_NOTE));
    }
    extra.insert(
        "phases".into(),
        json!(phases
            .marks
            .iter()
            .map(|(name, at)| json!({ "name": name, "at_ns": at }))
            .collect::<Vec<_>>()),
    );
    extra.insert("run_id".into(), json!(run.to_string()));
    if let Some(series) = &r.series {
        extra.insert("verify".into(), series.clone());
    }
    extra.insert(
        "final_reads".into(),
        json!({ "ok": phases.final_reads.0, "of": phases.final_reads.1 }),
    );
    let versions = BTreeMap::from([
        (
            "faultline".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "engine".to_string(),
            format!(
                "{} {} (API {})",
                engine.runtime, engine.version, engine.api_version
            ),
        ),
        ("image".to_string(), image.reference.clone()),
        (
            "node_binary".to_string(),
            binary
                .as_ref()
                .map(|b| b.display().to_string())
                .unwrap_or_else(|| format!("(in the image {})", image.reference)),
        ),
    ]);
    let run_info = RunInfo {
        schema: RUN_SCHEMA.to_string(),
        target: Some(target.name().to_string()),
        nodes: (1..=plan.nodes).map(|i| format!("n{i}")).collect(),
        plan: Some(serde_json::to_value(plan).unwrap_or(Value::Null)),
        seed: Some(r.seed),
        started_at: Some(started_at.rfc3339()),
        duration_ms: Some(phases.wall.as_millis() as u64),
        versions,
        mechanisms,
        command: Some(command.clone()),
        ops: Some(ops),
        source: None,
        extra,
    };
    // The campaign decides the exit code (claimed models only; an interrupted run that
    // found nothing is unknown): the document says the same.
    let doc = checking::campaign_doc(&checked, code);
    let _ = std::fs::remove_file(run_dir.join(faultline_results::index::PROGRESS_JSON));
    reporting::write_all(&run_dir, &run_info, &history, &doc)?;
    if let Err(e) = update_latest(&store, &run_dir) {
        tracing::warn!("store/latest: {e}");
    }
    if let Err(e) = faultline_results::index::write_index(&store) {
        tracing::warn!("store/index.html: {e}");
    }
    Ok(CampaignResult {
        run_dir,
        code,
        checked,
        ops,
        actions: phases.actions,
        command,
        interrupted: phases.interrupted,
        main_phase: phases.main,
        final_reads: phases.final_reads,
        live: phases.live,
    })
}

/// Rewrites the node logs without ANSI colour codes (they are read as plain text).
fn strip_log_colours(files: &[PathBuf]) {
    for f in files {
        let stripped = std::fs::read(f)
            .map(|b| faultline_results::text::strip_ansi(&b))
            .and_then(|b| std::fs::write(f, b));
        if let Err(e) = stripped {
            tracing::warn!("{}: {e}", f.display());
        }
    }
}

/// Writes a first `run.json` (plan, seed, claims, `"in_progress": true`) into a new run
/// folder, so that a run whose harness is killed can still be analysed; a failure is
/// only logged (the final run.json is written at the end anyway).
fn write_early_run_json(r: &Resolved, target: &str, run_dir: &Path, started_at: &Utc) {
    let mut extra = Map::new();
    extra.insert("claims".into(), json!(r.claims));
    extra.insert(
        "nemesis".into(),
        json!(r.families.iter().map(|f| f.name()).collect::<Vec<_>>()),
    );
    extra.insert("in_progress".into(), json!(true));
    if let Some(series) = &r.series {
        extra.insert("verify".into(), series.clone());
    }
    let info = RunInfo {
        schema: RUN_SCHEMA.to_string(),
        target: Some(target.to_string()),
        nodes: (1..=r.plan.nodes).map(|i| format!("n{i}")).collect(),
        plan: Some(serde_json::to_value(&r.plan).unwrap_or(Value::Null)),
        seed: Some(r.seed),
        started_at: Some(started_at.rfc3339()),
        command: Some(reproduce_command(r)),
        extra,
        ..RunInfo::default()
    };
    let path = run_dir.join(faultline_results::store::RUN_JSON);
    let written = serde_json::to_vec_pretty(&info)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&path, bytes));
    if let Err(e) = written {
        tracing::warn!("writing {}: {e}", path.display());
    }
}

/// The cluster of `r` with the runtime's addresses: one node per plan node, with the
/// target's command line.
fn cluster_spec(
    r: &Resolved,
    target: &dyn Target,
    run: &RunId,
    run_dir: &Path,
    binary: Option<&Path>,
    addresses: AddressPlan,
    env: &[(String, String)],
) -> Result<ClusterSpec> {
    let plan = &r.plan;
    let mut spec = ClusterSpec::new(run.clone(), run_dir, binary.unwrap_or(Path::new("/")));
    spec.image_program = binary.is_none();
    spec.binary_in_image = matches!(target.program(), Program::HostTree { .. });
    spec.ready_timeout = target.ready_timeout();
    spec.subnet = addresses.subnet;
    // Only this run's objects: other runs on the machine are left alone (`faultline clean`
    // removes leftovers of every run).
    spec.leftovers = CleanScope::Run(run.clone());
    let hosts = addresses.hosts;
    anyhow::ensure!(
        hosts.len() == plan.nodes,
        "the runtime planned {} addresses for {} nodes",
        hosts.len(),
        plan.nodes
    );
    let request_timeout_ms = (r.request_timeout.as_millis() as u64).max(100);
    // One secret per cluster (the bundled node's peer token, `{token}` in a target file).
    let token = cluster_token();
    for (i, host) in hosts.iter().enumerate() {
        let ctx = DeployContext {
            index: i,
            hosts: &hosts,
            data_dir: DATA_MOUNT,
            faults: &plan.fault,
            options: &plan.target_options,
            request_timeout_ms,
            token: &token,
        };
        let mut node_env = target.node_env(&ctx);
        node_env.extend(env.iter().cloned());
        spec.nodes.push(NodeSpec {
            name: NodeName::new(&node_name(i)).context("node name")?,
            host: host.clone(),
            args: target.node_args(&ctx),
            env: node_env,
            ready: Some(target.ready_probe(&ctx)),
            files: target.node_files(&ctx),
        });
    }
    Ok(spec)
}

struct Phases {
    /// When each phase after the main one began (ns from the start, as in the history).
    marks: Vec<(String, u64)>,
    recorder: Arc<Recorder>,
    actions: Vec<ActionRecord>,
    /// What the live check found, if it ran.
    live: Option<LiveCheck>,
    interrupted: bool,
    main: Duration,
    wall: Duration,
    final_reads: (u64, u64),
}

/// The uid and gid the nodes' programs run as under an agent: the harness's own when it
/// is not root (so that the files they write in the run folder stay this user's).
fn child_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    (uid != 0).then_some((uid, gid))
}

/// Why clock faults cannot run, if they cannot: the runtime moves no clocks itself and
/// libfaketime cannot reach the program (`unreachable`, the target's reason: the plan
/// kept clock faults for a runtime that may move clocks) or is not in the image. Pure.
fn clock_refusal(
    unreachable: Option<String>,
    caps: &faultline_targets::runtime::Capabilities,
    runtime: &str,
) -> Option<String> {
    if caps.clock_by_runtime {
        return None;
    }
    let unavailable = caps.clock_faults_unavailable.clone().unwrap_or_default();
    if let Some(why) = unreachable {
        return Some(format!(
            "clock faults cannot reach the program: {why}; and the {runtime} runtime cannot \
             move its clock itself here (on Kubernetes that needs Chaos Mesh); drop clock \
             from --nemesis"
        ));
    }
    (!caps.clock_faults).then(|| {
        format!("clock faults requested but unavailable: {unavailable} (drop clock from --nemesis)")
    })
}

/// How long the runner asks the agents before it takes a node's "not loaded" as final
/// (the program may still be mapping its libraries right after it became ready).
const FAKETIME_CONFIRM_TIME: Duration = Duration::from_secs(2);

/// Asks every node's agent whether its running program has libfaketime mapped; refuses
/// the campaign (exit 254) naming each node that has not, and why.
async fn confirm_faketime(cluster: &Cluster, agent: &AgentSpec) -> Result<()> {
    let mut nodes = Vec::new();
    for node in cluster.nodes() {
        let addr = std::net::SocketAddr::from((node.ip(), agent.port));
        nodes.push((
            node.name().to_string(),
            AgentClient::new(addr, &agent.token)?,
        ));
    }
    confirm_faketime_on(&nodes, FAKETIME_CONFIRM_TIME).await?;
    errln!(
        "clock faults confirmed: libfaketime is loaded in the program of {}",
        nodes
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// [`confirm_faketime`] over `(node name, its agent)`, asking again for up to `patience`
/// while some node is not confirmed.
async fn confirm_faketime_on(nodes: &[(String, AgentClient)], patience: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let mut answers = Vec::new();
        for (name, client) in nodes {
            let answer = match client.wait_up(Duration::from_secs(10)).await {
                Ok(()) => client.status().await.map(|s| s.faketime),
                Err(e) => Err(e),
            };
            answers.push((name.clone(), answer.map_err(|e| e.to_string())));
        }
        match faketime_refusal(&answers) {
            None => return Ok(()),
            Some(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Some(message) => return Err(Refused { message }.into()),
        }
    }
}

/// The refusal of clock faults when some node's program has not loaded libfaketime (or
/// its agent cannot tell, or cannot be asked): unknown is never confirmed. Pure.
fn faketime_refusal(answers: &[(String, Result<Faketime, String>)]) -> Option<String> {
    let failures: Vec<String> = answers
        .iter()
        .filter_map(|(node, answer)| match answer {
            Ok(f) if f.is_loaded() => None,
            Ok(Faketime::NotLoaded { detail, .. }) => {
                Some(format!("{node}: libfaketime not loaded: {detail}"))
            }
            Ok(Faketime::Unknown { detail }) => {
                Some(format!("{node}: cannot confirm libfaketime: {detail}"))
            }
            Ok(Faketime::Loaded { .. }) => None,
            Err(e) => Some(format!("{node}: cannot ask its agent: {e}")),
        })
        .collect();
    (!failures.is_empty()).then(|| {
        format!(
            "clock faults requested but they would not reach the program ({}); drop clock \
             from --nemesis, or run a dynamically linked glibc program with libfaketime in \
             the image",
            failures.join("; ")
        )
    })
}

/// The capabilities of the nodes, probed by the first node's agent, checked against the
/// plan's fault families (a refusal is exit 254).
async fn agent_capabilities(
    r: &Resolved,
    cluster: &Cluster,
    agent: Option<&AgentSpec>,
    clock_by_runtime: bool,
) -> Result<Capabilities> {
    let (Some(agent), Some(first)) = (agent, cluster.nodes().first()) else {
        anyhow::bail!("no node agent to ask");
    };
    let client = AgentClient::new(
        std::net::SocketAddr::from((first.ip(), agent.port)),
        &agent.token,
    )?;
    client
        .wait_up(Duration::from_secs(10))
        .await
        .context("the node agent does not answer")?;
    let caps = client
        .capabilities()
        .await
        .context("asking the node agent what the node can do")?;
    // Clocks the runtime moves itself need nothing of the node.
    let needed: Vec<faultline_nemesis::Family> = r
        .families
        .iter()
        .copied()
        .filter(|f| !(clock_by_runtime && *f == faultline_nemesis::Family::Clock))
        .collect();
    caps.check(&needed).map_err(|e| Refused {
        message: format!(
            "the plan needs what the nodes lack (the image copies nft, iptables and tc from this \
             machine: apt-get install nftables iptables iproute2): {e}"
        ),
    })?;
    Ok(caps)
}

/// How the nemesis reaches the nodes' faults.
struct FaultRoutes<'a> {
    /// The nodes' agents, when faults go through them.
    agent: Option<&'a AgentSpec>,
    /// The runtime moves the clocks itself (`Capabilities::clock_by_runtime`).
    clock_by_runtime: bool,
}

async fn run_phases(
    r: &Resolved,
    target: &dyn Target,
    cluster: &Cluster,
    caps: Capabilities,
    routes: FaultRoutes<'_>,
    run_dir: &Path,
    interrupt: Arc<AtomicBool>,
) -> Result<Phases> {
    let FaultRoutes {
        agent,
        clock_by_runtime,
    } = routes;
    let plan = &r.plan;
    let mut nodes: Vec<Arc<dyn faultline_nemesis::Node>> = Vec::new();
    let mut names = Vec::new();
    let mut clients = Vec::new();
    for node in cluster.nodes() {
        let mut nemesis_node = NemesisNode::new(node.clone())
            .await
            .context("node status")?;
        if let Some(agent) = agent {
            let addr = std::net::SocketAddr::from((node.ip(), agent.port));
            nemesis_node = nemesis_node.with_agent(AgentClient::new(addr, &agent.token)?);
            if clock_by_runtime {
                nemesis_node = nemesis_node.with_runtime_clock();
            }
        }
        nodes.push(Arc::new(nemesis_node));
        names.push(node.name().to_string());
        let addr = std::net::SocketAddr::from((node.ip(), target.port()));
        clients.push(target.client(&ClientContext {
            node: node.name().as_str(),
            addr,
            timeout: r.request_timeout,
            options: &plan.target_options,
            log_dir: &run_dir.join("logs"),
            nodes: cluster.nodes().len(),
        })?);
    }
    let mut nemesis = Nemesis::new(nodes, caps)?;
    nemesis
        .heal_all()
        .await
        .context("clearing faults before the run")?;
    let time_limit_ms = r.time_limit.as_millis() as u64;
    let sched = if r.families.is_empty() {
        Vec::new()
    } else {
        let mut cfg = ScheduleConfig::new(
            r.families.clone(),
            names.clone(),
            r.interval.as_millis() as u64,
            time_limit_ms,
        );
        cfg.max_down = plan.max_down;
        // The runtime's clock mechanism holds an offset; it cannot strobe.
        cfg.clock_strobes = !clock_by_runtime;
        schedule(&cfg, r.seed)?.actions
    };

    let gen = Generator::new(
        GeneratorSpec::new(plan.workload, plan.keys, target.offers_cas()).with_txn(plan.txn_spec()),
        r.seed,
    );
    let mut meta = Map::new();
    meta.insert("target".into(), json!(target.name()));
    meta.insert("seed".into(), json!(r.seed));
    meta.insert("workload".into(), json!(plan.workload.to_string()));
    meta.insert("nodes".into(), json!(names));
    let start = Instant::now();
    let recorder = Recorder::create(&run_dir.join("history.jsonl"), &meta, start)
        .context("cannot create history.jsonl")?;
    let stats = Arc::new(Stats::default());
    stats.set_in_force("none".into());
    let stop = Arc::new(AtomicBool::new(false));
    let period = if plan.rate > 0.0 {
        Duration::from_secs_f64(plan.concurrency as f64 / plan.rate)
    } else {
        Duration::ZERO
    };
    let leader_clients: Vec<(String, Arc<dyn faultline_targets::Client>)> =
        names.iter().cloned().zip(clients.iter().cloned()).collect();
    let workers = Arc::new(Workers {
        recorder: recorder.clone(),
        generator: Mutex::new(gen),
        clients,
        concurrency: plan.concurrency,
        period,
        stats: stats.clone(),
        stop: stop.clone(),
        max_process: AtomicU64::new(0),
    });
    // Ctrl-C: the caller sets `interrupt`; pass it on to the workers and the driver.
    let watcher = {
        let (interrupt, stop) = (interrupt.clone(), stop.clone());
        tokio::spawn(async move {
            while !interrupt.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    let progress = Progress::start(stats.clone(), r.time_limit, start);
    if plan.live_check && plan.workload.is_txn() {
        errln!("note: {TXN_LIVE_NOTE}");
    }
    let live = if plan.live_check && !plan.workload.is_txn() {
        Some(
            LiveChecker::start(
                recorder.clone(),
                &r.check,
                stats.clone(),
                stop.clone(),
                plan.stop_on_violation,
                progress.bar(),
            )
            .context("cannot start the live check")?,
        )
    } else {
        None
    };
    let progress = Progress::start_with_file(
        stats.clone(),
        r.time_limit,
        start,
        Some(run_dir.to_path_buf()),
    );
    let deadline = start + r.time_limit;
    let tasks: Vec<_> = (0..plan.concurrency)
        .map(|slot| tokio::spawn(workers.clone().run_slot(slot, deadline)))
        .collect();
    let mut actions = driver::drive(
        &mut nemesis,
        &sched,
        time_limit_ms,
        &recorder,
        start,
        &stats,
        &stop,
        &leader_clients,
    )
    .await;
    for t in tasks {
        if let Err(e) = t.await {
            tracing::warn!("a worker ended abnormally: {e}");
        }
    }
    let main = start.elapsed();
    let _ = recorder.sync();
    // A node whose container is gone (removed by another run's clean-up, or by hand) makes
    // the rest of the run meaningless: stop here, as a harness failure.
    for node in cluster.nodes() {
        if let Err(e) = node.status().await {
            watcher.abort();
            progress.finish();
            anyhow::bail!(
                "node {} vanished during the run ({e}); did `faultline clean` or another run's clean-up remove it? The partial history is in {}",
                node.name(),
                run_dir.join("history.jsonl").display()
            );
        }
    }

    let mut marks: Vec<(String, u64)> = Vec::new();
    let mut mark = |name: &str| {
        progress.phase(name);
        marks.push((name.to_string(), start.elapsed().as_nanos() as u64));
    };
    mark("final heal");
    let at = start.elapsed().as_millis() as u64;
    actions
        .extend(driver::final_heal(&mut nemesis, &recorder, &r.families, &names, at, &stats).await);
    let interrupted = interrupt.load(Ordering::Relaxed);
    let mut final_reads = (0, 0);
    if !interrupted {
        mark("recovery");
        if let Err(e) = cluster.wait_ready(Duration::from_secs(30)).await {
            tracing::warn!("after the final heal: {e}");
        }
        let until = Instant::now() + r.recovery;
        while Instant::now() < until && !interrupt.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !interrupt.load(Ordering::Relaxed) {
            mark("final reads");
            final_reads = workers.clone().final_reads().await;
        }
    }
    let interrupted = interrupt.load(Ordering::Relaxed);
    watcher.abort();
    progress.phase("checking the last events");
    let live = live.map(LiveChecker::finish);
    progress.finish();
    recorder.sync().context("cannot sync history.jsonl")?;
    if let Some(e) = recorder.write_error() {
        tracing::warn!("history.jsonl: {e} (the checks use the history kept in memory)");
    }
    Ok(Phases {
        marks,
        recorder,
        actions,
        live,
        interrupted,
        main,
        wall: start.elapsed(),
        final_reads,
    })
}

impl Resolved {
    /// `linearizable (kv), ryw` — what is checked, for messages.
    pub fn check_summary(&self) -> String {
        let mut v: Vec<String> = Vec::new();
        if let Some(dm) = self.check.linearizable {
            v.push(format!("linearizable ({dm})"));
        }
        v.extend(self.check.others.iter().map(|m| m.to_string()));
        v.extend(self.check.txn.iter().map(|m| m.to_string()));
        if v.is_empty() {
            "no model (the target claims none; use --check all to see what holds)".into()
        } else {
            v.join(", ")
        }
    }
}

#[cfg(test)]
mod clock_refusal_tests {
    use super::clock_refusal;
    use faultline_targets::runtime::Capabilities;

    fn caps(clock_faults: bool, clock_by_runtime: bool, why: Option<&str>) -> Capabilities {
        Capabilities {
            clock_faults,
            clock_faults_unavailable: why.map(str::to_string),
            clock_by_runtime,
            ..Capabilities::default()
        }
    }

    #[test]
    fn clock_faults_run_when_some_mechanism_reaches_the_program() {
        let go = Some("etcd is a Go program".to_string());
        // The runtime moves the clock itself: any program, whatever libfaketime can do.
        assert_eq!(
            clock_refusal(go.clone(), &caps(true, true, None), "kubernetes"),
            None
        );
        // libfaketime in the image, and it reaches the program.
        assert_eq!(
            clock_refusal(None, &caps(true, false, None), "docker"),
            None
        );
        // libfaketime cannot reach it and the runtime does not move clocks: refused,
        // with the target's reason.
        let m = clock_refusal(go, &caps(true, false, None), "kubernetes").expect("refused");
        assert!(m.contains("etcd is a Go program"), "{m}");
        assert!(m.contains("Chaos Mesh"), "{m}");
        assert!(m.contains("drop clock from --nemesis"), "{m}");
        // No libfaketime in the image: refused with the image's reason.
        let m = clock_refusal(
            None,
            &caps(false, false, Some("statically linked")),
            "docker",
        )
        .expect("refused");
        assert!(m.contains("statically linked"), "{m}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use faultline_targets::agent::{ChildStatus, NotLoadedReason};
    use std::sync::atomic::AtomicUsize;

    /// A fake agent whose status answers the `i`-th time with `answers[min(i, last)]`
    /// (raw JSON, as an agent of any version would send it).
    async fn fake_agent(answers: Vec<serde_json::Value>) -> AgentClient {
        let asked = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/v1/status",
            get(move || {
                let i = asked.fetch_add(1, Ordering::SeqCst).min(answers.len() - 1);
                let answer = answers[i].clone();
                async move { axum::Json(answer) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        AgentClient::new(addr, "0123456789abcdef").expect("client")
    }

    fn status(faketime: Faketime) -> serde_json::Value {
        serde_json::to_value(ChildStatus {
            state: "running".into(),
            pid: Some(7),
            last_exit: None,
            faketime,
        })
        .expect("json")
    }

    fn loaded() -> serde_json::Value {
        status(Faketime::Loaded {
            path: "/faultline/libfaketime.so.1".into(),
        })
    }

    fn refusal(result: Result<()>) -> String {
        let err = result.expect_err("refused");
        err.downcast_ref::<Refused>()
            .unwrap_or_else(|| panic!("not a refusal (exit 254): {err:#}"))
            .message
            .clone()
    }

    #[tokio::test]
    async fn a_node_whose_program_did_not_load_libfaketime_refuses_the_campaign() {
        let not_loaded = status(Faketime::NotLoaded {
            reason: NotLoadedReason::ProgramDidNotLoad,
            detail: "a static or musl binary".into(),
        });
        let nodes = vec![
            ("n1".to_string(), fake_agent(vec![loaded()]).await),
            ("n2".to_string(), fake_agent(vec![not_loaded]).await),
        ];
        let message = refusal(confirm_faketime_on(&nodes, Duration::ZERO).await);
        assert!(
            message.contains("n2: libfaketime not loaded: a static or musl binary"),
            "{message}"
        );
        assert!(!message.contains("n1"), "{message}");
        assert!(message.contains("drop clock from --nemesis"), "{message}");
    }

    #[tokio::test]
    async fn an_agent_that_cannot_tell_is_not_a_confirmation() {
        // An agent older than the faketime field, and one whose program is not running.
        let old = serde_json::json!({"state": "running", "pid": 7, "last_exit": null});
        let stopped = status(Faketime::Unknown {
            detail: "the program is not running".into(),
        });
        let nodes = vec![
            ("n1".to_string(), fake_agent(vec![old]).await),
            ("n2".to_string(), fake_agent(vec![stopped]).await),
        ];
        let message = refusal(confirm_faketime_on(&nodes, Duration::ZERO).await);
        assert!(message.contains("n1: cannot confirm libfaketime: the agent did not say"));
        assert!(message.contains("n2: cannot confirm libfaketime: the program is not running"));
    }

    #[tokio::test]
    async fn every_node_loaded_confirms_even_when_one_was_late() {
        let early = status(Faketime::NotLoaded {
            reason: NotLoadedReason::NotPreloaded,
            detail: "still starting".into(),
        });
        let nodes = vec![
            ("n1".to_string(), fake_agent(vec![loaded()]).await),
            ("n2".to_string(), fake_agent(vec![early, loaded()]).await),
        ];
        confirm_faketime_on(&nodes, Duration::from_secs(5))
            .await
            .expect("confirmed");
    }
}
