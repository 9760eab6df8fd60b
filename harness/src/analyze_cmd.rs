//! `faultline analyze`: check a stored run again (Jepsen's `analyze`). The checkers run on
//! the run's `history.jsonl` with the claims recorded in its `run.json`; `verdict.json`
//! and the reports are rewritten in place and the exit code follows the claimed models.
//! A run folder left by a killed harness (a history, an early `run.json`, no verdict)
//! is analysed the same way; a valid verdict on such a cut-short run is unknown (exit 2),
//! as for a campaign interrupted with Ctrl-C.

use crate::args::number;
use crate::campaign::checking::{self, Checked, Status};
use crate::campaign::plan::{limits, parse_check, resolve, Plan};
use crate::campaign::Workload;
use crate::exit;
use anyhow::Result;
use clap::Args;
use faultline_checkers::Verdict;
use faultline_history::{load, Format, History};
use faultline_results::store::{HISTORY_JSONL, RUN_JSON};
use faultline_results::text::{shown_witness, visible};
use faultline_results::{find_run, read_run, OpCounts, RunInfo};
use faultline_targets::find_target;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `faultline analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A run folder, a file inside one, `store/latest`, a target folder (its newest run)
    /// or the store.
    #[arg(default_value = "store/latest")]
    pub run: PathBuf,
    /// Models to check: claimed, all, or names (linearizable, sequential, ccv, cm, cc,
    /// pram, ryw, mr, mw, wfr). [default: what the run's plan asked for]
    #[arg(long)]
    pub check: Option<String>,
    /// Seconds each checker may take before its verdict is unknown.
    #[arg(long, default_value_t = 120.0, allow_negative_numbers = true,
          value_parser = number(limits::CHECK_TIME_LIMIT.0, limits::CHECK_TIME_LIMIT.1, "a number of seconds", None))]
    pub check_time_limit: f64,
}

/// What `analyze` knows about a stored run before checking it.
#[derive(Debug, Clone)]
pub struct StoredRun {
    /// The run folder.
    pub dir: PathBuf,
    /// `run.json` as stored (empty when missing).
    pub info: RunInfo,
    /// The plan the run was made with.
    pub plan: Plan,
    /// The models the target claimed.
    pub claims: Vec<String>,
    /// Whether the run was cut short (Ctrl-C, or a harness that died before the end).
    pub cut_short: bool,
    /// Notes for the user (what had to be guessed).
    pub notes: Vec<String>,
}

/// The plan of a stored run: `run.json`'s, else rebuilt from the history's header
/// (target, workload, nodes, seed; everything else as by default).
pub fn stored_plan(info: &RunInfo, history: &History) -> Result<(Plan, Vec<String>), String> {
    if let Some(plan) = &info.plan {
        return serde_json::from_value::<Plan>(plan.clone())
            .map(|p| (p, Vec::new()))
            .map_err(|e| format!("run.json: its plan cannot be read ({e})"));
    }
    let meta = &history.meta;
    let target = meta
        .get("target")
        .and_then(Value::as_str)
        .or(info.target.as_deref())
        .ok_or_else(|| {
            "neither run.json nor the history's header names the target, so there are no claims to check: use `faultline check HISTORY --model ...` instead".to_string()
        })?;
    let mut plan = Plan {
        target: target.to_string(),
        ..Plan::default()
    };
    if let Some(w) = meta.get("workload").and_then(Value::as_str) {
        plan.workload = w
            .parse::<Workload>()
            .map_err(|e| format!("the history's header: workload {w:?}: {e}"))?;
    }
    if let Some(n) = meta.get("nodes").and_then(Value::as_array) {
        plan.nodes = n.len();
    }
    plan.seed = meta.get("seed").and_then(Value::as_u64).or(info.seed);
    Ok((
        plan,
        vec!["run.json has no plan: the claims were worked out from the history's header (target, workload, nodes) with the other settings as by default".into()],
    ))
}

/// Reads a stored run: its folder, history and what it claimed.
fn open(args: &AnalyzeArgs) -> Result<(StoredRun, History), String> {
    let dir = find_run(&args.run).map_err(|e| e.to_string())?;
    let history_path = dir.join(HISTORY_JSONL);
    if !history_path.is_file() {
        return Err(format!(
            "{} has no history.jsonl: nothing to analyse",
            dir.display()
        ));
    }
    let history = load(&history_path, Format::Jsonl).map_err(|e| e.to_string())?;
    let info = read_run(&dir.join(RUN_JSON)).map_err(|e| e.to_string())?;
    let (plan, mut notes) = stored_plan(&info, &history)?;
    let target =
        find_target(&plan.target, &crate::test_cmd::model_names()).map_err(|e| e.to_string())?;
    let resolved = resolve(&plan, target.as_ref(), plan.seed.unwrap_or(0))
        .map_err(|e| format!("the run's plan: {e}"))?;
    let claims = match info
        .extra
        .get("claims")
        .and_then(|c| c.get("models"))
        .and_then(Value::as_array)
    {
        Some(models) => models
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        None => {
            notes.push(format!(
                "run.json records no claims: {}'s claims under this plan were used",
                plan.target
            ));
            resolved.claims.models.clone()
        }
    };
    let flag = |k: &str| info.extra.get(k).and_then(Value::as_bool) == Some(true);
    let cut_short = flag("interrupted") || flag("in_progress") || info.duration_ms.is_none();
    if history.truncated_tail {
        notes.push("the last line of history.jsonl was cut short (the recorder stopped mid-write); it was skipped".into());
    }
    Ok((
        StoredRun {
            dir,
            info,
            plan: resolved.plan,
            claims,
            cut_short,
            notes,
        },
        history,
    ))
}

/// Runs `faultline analyze`.
pub fn run(args: AnalyzeArgs) -> Result<u8> {
    let (stored, history) = match open(&args) {
        Ok(x) => x,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    for n in &stored.notes {
        errln!("note: {n}");
    }
    let check = match &args.check {
        Some(c) => vec![c.clone()],
        None => stored.plan.check.clone(),
    };
    let parsed = if stored.plan.workload.is_txn() {
        crate::campaign::plan::parse_txn_check(&check, &stored.claims)
    } else {
        parse_check(&check, stored.plan.workload, &stored.claims)
    };
    let request = match parsed {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let paired = match history.pair(HISTORY_JSONL) {
        Ok(p) => p,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let limit = Duration::from_secs_f64(args.check_time_limit);
    let checked = checking::check(&paired, &request, limit);
    let mut code = checked.code;
    if stored.cut_short && code == exit::VALID && !checked.deciding().is_empty() {
        code = exit::UNKNOWN;
    }
    let doc = checking::campaign_doc(&checked, code);
    let ops = OpCounts::of(&paired.ops);
    let info = analysed_info(&stored, ops);
    // A progress file left by a harness that died is stale.
    let _ = std::fs::remove_file(stored.dir.join(faultline_results::index::PROGRESS_JSON));
    let paths = match crate::reporting::write_all(&stored.dir, &info, &history, &doc) {
        Ok(p) => p,
        Err(e) => {
            let code = crate::reporting::error_code(&e);
            errln!("error: {e:#}");
            return Ok(code);
        }
    };
    if let Some(store) = store_of(&stored.dir) {
        if let Err(e) = faultline_results::index::write_index(&store) {
            tracing::warn!("{}: {e}", store.join("index.html").display());
        }
    }
    print_rows(&checked, &stored.claims);
    outln!(
        "operations: {} (ok {}, fail {}, info {})",
        ops.total,
        ops.ok,
        ops.fail,
        ops.info
    );
    if stored.cut_short {
        outln!("cut short: the run did not finish, so a valid verdict on part of it is reported as unknown (exit 2)");
    }
    outln!("report: {}", paths.html.display());
    outln!("exit {code}: {}", doc.exit_meaning);
    Ok(code)
}

/// `run.json` after an analysis: what was stored, with the operation counts and, for a
/// run left by a harness that died, `interrupted` instead of `in_progress`.
fn analysed_info(stored: &StoredRun, ops: OpCounts) -> RunInfo {
    let mut info = stored.info.clone();
    if info.extra.remove("in_progress").is_some() || stored.cut_short {
        info.extra.insert("interrupted".into(), json!(true));
    }
    if info.plan.is_none() {
        info.plan = serde_json::to_value(&stored.plan).ok();
    }
    info.target
        .get_or_insert_with(|| stored.plan.target.clone());
    if info.seed.is_none() {
        info.seed = stored.plan.seed;
    }
    if info.nodes.is_empty() {
        info.nodes = (1..=stored.plan.nodes).map(|i| format!("n{i}")).collect();
    }
    info.extra
        .entry("claims")
        .or_insert_with(|| json!({ "models": stored.claims }));
    info.ops = Some(ops);
    info
}

/// The store a run folder `store/<target>/<YYYYMMDDTHHMMSS>` belongs to (`None` for a
/// folder not laid out so: no index is written next to an arbitrary folder).
pub fn store_of(run_dir: &Path) -> Option<PathBuf> {
    let name = run_dir.file_name()?.to_str()?;
    let stamp = name.split('-').next()?;
    let stamp_like = stamp.len() == 15
        && stamp
            .char_indices()
            .all(|(i, c)| if i == 8 { c == 'T' } else { c.is_ascii_digit() });
    let target_dir = run_dir.parent()?;
    let target = target_dir.file_name()?.to_str()?;
    faultline_results::store::check_target(target).ok()?;
    let store = target_dir.parent()?;
    (stamp_like && store.is_dir()).then(|| store.to_path_buf())
}

fn print_rows(checked: &Checked, claims: &[String]) {
    if let Some(t) = &checked.txn {
        outln!(
            "anomalies found: {}",
            if t.anomalies.is_empty() {
                "none".to_string()
            } else {
                t.anomalies.join(", ")
            }
        );
    }
    let rows = checked.rows();
    for row in &rows {
        if !row.checked && !matches!(row.status, Status::RuledOut { .. }) {
            continue;
        }
        let tag = if claims.iter().any(|c| c == row.model.as_str()) {
            " (claimed)"
        } else {
            ""
        };
        let label = match &row.status {
            Status::Valid => "valid".to_string(),
            Status::Invalid => "INVALID".to_string(),
            Status::Unknown { reason } => format!("unknown: {}", visible(reason)),
            Status::Implied { by } => format!("valid (implied by {by})"),
            Status::RuledOut { by } => format!("INVALID (ruled out by {by})"),
            Status::NotChecked => "not checked".to_string(),
        };
        outln!("{}{tag}: {label}", row.model);
        if let Some(Verdict::Invalid { witness }) = &row.verdict {
            for line in shown_witness(witness).render_text().lines() {
                outln!("    {line}");
            }
        }
    }
    if !rows.iter().any(|r| r.checked) {
        outln!("no model checked: the target claims none under this plan (use --check all to see what holds)");
    }
}
