//! `faultline verify`: several campaigns with different seeds and fault mixes against one
//! target; for every model, whether it held in all of them, which run violated it, or
//! whether it stayed undecided; and the strongest models that held throughout.

use crate::args::whole;
use crate::campaign::checking::{AnyModel, Status};
use crate::campaign::runner::run_campaign;
use crate::exit;
use crate::series::{
    campaigns_to_run, merge, summarize, CampaignRecord, ModelOutcome, SeriesDoc, Shard, Summary,
    SERIES_FORMAT, SERIES_JSON, SERIES_VERSION,
};
pub use crate::series::{fold, verdict_code, Tally};
use crate::test_cmd::{
    build_plan, check_store, ctrl_c_flag, error_code, fresh_seed, resolve_args, TestArgs,
};
use anyhow::{Context, Result};
use clap::Args;
use faultline_results::exit_meaning;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Arguments of `faultline verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The model to verify (default: the models the target claims).
    #[arg(long)]
    pub claim: Option<String>,
    /// Number of campaigns.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true, value_parser = whole::<usize>(1, 1_000))]
    pub campaigns: usize,
    /// Run only share K of N of the campaigns (K from 0; campaign i belongs to shard
    /// i mod N), for running a series on N machines or pods at once; needs --seed. The
    /// shards' series folders are combined with --merge.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Combine the series folders of all shards of one series
    /// (store/<target>/verify-…-shard-K-of-N) into one verdict, report and exit code,
    /// written to a new series folder in --store; runs no campaign.
    #[arg(long, value_name = "DIR", num_args = 1.., conflicts_with = "shard")]
    pub merge: Vec<PathBuf>,
    /// The settings of each campaign (seed: the first campaign's; --nemesis: fixed mix).
    #[command(flatten)]
    pub base: TestArgs,
}

/// The fault mix of campaign `i` for `target`: one family at a time, then all together.
/// Clock faults only where they reach the target's program; faults aimed at the leader
/// (with its clock moved back, where clocks can be moved) only where the target has one.
pub fn fault_mix(i: usize, target: &dyn faultline_targets::Target) -> String {
    let clock = target.clock_faults().is_ok();
    let mut mixes: Vec<String> = vec!["partition".into(), "kill".into(), "pause".into()];
    if clock {
        mixes.push("clock".into());
    }
    if target.has_leader() {
        mixes.push(if clock { "leader,clock" } else { "leader" }.into());
    }
    mixes.push(if clock {
        "partition,kill,pause,clock".into()
    } else {
        "partition,kill,pause".into()
    });
    mixes[i % mixes.len()].clone()
}

/// Runs `faultline verify`: the whole series, the share `--shard K/N` of it, or the merge
/// of shard folders (`--merge`).
pub fn run(args: VerifyArgs) -> Result<u8> {
    if !args.merge.is_empty() {
        return run_merge(&args);
    }
    if args.base.test_count.is_some() {
        errln!("error: --test-count is for faultline test; verify runs --campaigns N");
        return Ok(exit::BAD_INPUT);
    }
    let json = args.base.json;
    // Every shard must draw the same campaigns: the seed is given, never drawn.
    let plan_seed = build_plan(&args.base).ok().and_then(|p| p.seed);
    let first_seed = match (args.base.seed.or(plan_seed), args.shard) {
        (Some(s), _) => s,
        (None, Some(_)) => {
            errln!("error: --shard needs --seed (or seed in the plan): every shard of a series must draw the same campaigns");
            return Ok(exit::BAD_INPUT);
        }
        (None, None) => fresh_seed(),
    };
    let mut base = args.base.clone();
    base.check = Some("all".into());
    // A campaign that has shown a violation of the claim has said what it can: stop it
    // there and spend the time on the next seed.
    if !base.no_live_check {
        base.stop_on_violation = true;
    }
    if base.time_limit.is_none() {
        base.time_limit = Some(30.0);
    }
    // Validate once up front, so a bad plan exits 254 before any campaign.
    let (first, first_target) = match resolve_args(&TestArgs {
        seed: Some(first_seed),
        ..base.clone()
    })
    .and_then(|(r, t)| check_store(&r.plan.store, t.name()).map(|()| (r, t)))
    {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let decisive: Vec<AnyModel> = match &args.claim {
        Some(c) if first.plan.workload.is_txn() => {
            match c.parse::<faultline_checkers::txn::TxnModel>() {
                Ok(m) => vec![AnyModel::Txn(m)],
                Err(e) => {
                    errln!("error: --claim: {e}");
                    return Ok(exit::BAD_INPUT);
                }
            }
        }
        Some(c) => match c.parse::<faultline_checkers::lattice::ModelName>() {
            Ok(m) => vec![AnyModel::Register(m)],
            Err(e) => {
                errln!("error: --claim: {e}");
                return Ok(exit::BAD_INPUT);
            }
        },
        None if first.plan.workload.is_txn() => first
            .check
            .txn_decisive
            .iter()
            .map(|m| AnyModel::Txn(*m))
            .collect(),
        None => first
            .check
            .decisive
            .iter()
            .map(|m| AnyModel::Register(*m))
            .collect(),
    };
    let rotating_mix = args.base.nemesis.is_none() && args.base.fault.is_empty();
    let store = match std::path::absolute(&first.plan.store) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: --store {}: {e}", first.plan.store.display());
            return Ok(exit::BAD_INPUT);
        }
    };
    let series_dir = match create_series_dir(&store, first_target.name(), args.shard) {
        Ok(d) => d,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let mut doc = SeriesDoc {
        format: SERIES_FORMAT.into(),
        version: SERIES_VERSION,
        target: first.plan.target.clone(),
        plan: serde_json::to_value(&first.plan)?,
        first_seed,
        campaigns: args.campaigns,
        rotating_mix,
        claim: decisive.iter().map(|m| m.as_str().to_string()).collect(),
        shard: args.shard,
        assigned: campaigns_to_run(args.shard, args.campaigns),
        runs: Vec::new(),
        interrupted: false,
        failed: None,
        exit_code: None,
        merged_from: Vec::new(),
    };
    if let Some(s) = args.shard {
        errln!(
            "shard {s}: campaigns {} of {} (numbered from 1)",
            list_numbers(&doc.assigned),
            args.campaigns
        );
    }
    write_series(&series_dir, &doc, None)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let interrupt = rt.block_on(async { ctrl_c_flag() });
    for i in doc.assigned.clone() {
        if interrupt.load(Ordering::Relaxed) {
            doc.interrupted = true;
            break;
        }
        let mut a = base.clone();
        a.seed = Some(first_seed.wrapping_add(i as u64));
        if rotating_mix {
            a.nemesis = Some(fault_mix(i, first_target.as_ref()));
        }
        let (mut resolved, target) = match resolve_args(&a) {
            Ok(r) => r,
            Err(e) => {
                errln!("error: {e}");
                doc.failed = Some(exit::BAD_INPUT);
                break;
            }
        };
        // `--claim M`: M decides each campaign (its exit code, where it stops, the
        // detection line), every model still being checked and reported; the reproduce
        // command checks M, which decides the same way.
        if args.claim.is_some() {
            claim_decides(&mut resolved, &decisive);
        }
        resolved.series = Some(serde_json::json!({
            "series": series_dir.display().to_string(),
            "campaign": i,
            "campaigns": args.campaigns,
            "shard": args.shard,
        }));
        let nemesis = if resolved.families.is_empty() {
            "none".to_string()
        } else {
            resolved
                .families
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        errln!(
            "campaign {}/{}: nemesis {nemesis}, seed {}",
            i + 1,
            args.campaigns,
            resolved.seed
        );
        let result = rt.block_on(run_campaign(&resolved, target, interrupt.clone()));
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                doc.failed = Some(error_code(&e));
                break;
            }
        };
        if result.interrupted {
            doc.interrupted = true;
        }
        let record = record_of(i, resolved.seed, nemesis, &result);
        let line = campaign_line(&record);
        if json {
            errln!("{line}");
        } else {
            outln!("{line}");
            if let Some(anomalies) = record.anomalies.as_ref().filter(|a| !a.is_empty()) {
                outln!(
                    "  anomalies: {}{}",
                    anomalies.join(", "),
                    record
                        .first_violation_cut_s
                        .map(|s| format!("; first violated by the history up to {s:.0} s"))
                        .unwrap_or_default()
                );
            }
        }
        doc.runs.push(record);
        write_series(&series_dir, &doc, None)?;
    }
    if interrupt.load(Ordering::Relaxed) {
        doc.interrupted = true;
    }
    finish(&series_dir, doc, json)
}

/// Merges shard folders (`verify --merge DIR...`) into one series folder and verdict.
fn run_merge(args: &VerifyArgs) -> Result<u8> {
    let json = args.base.json;
    let mut shards = Vec::new();
    for dir in &args.merge {
        match read_series(dir) {
            Ok(doc) => shards.push((dir.clone(), doc)),
            Err(e) => {
                errln!("error: {e}");
                return Ok(exit::BAD_INPUT);
            }
        }
    }
    let doc = match merge(&shards) {
        Ok(d) => d,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let store = match build_plan(&args.base) {
        Ok(p) => p.store,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    let series_dir = match check_store(&store, &doc.target)
        .and_then(|()| std::path::absolute(&store).map_err(|e| format!("--store: {e}")))
        .and_then(|s| create_series_dir(&s, &doc.target, None))
    {
        Ok(d) => d,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    if !json {
        for r in &doc.runs {
            outln!("{}", campaign_line(r));
        }
    }
    finish(&series_dir, doc, json)
}

/// Decides, prints and stores the verdict of a series document.
fn finish(series_dir: &Path, mut doc: SeriesDoc, json: bool) -> Result<u8> {
    let summary = match summarize(&doc) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit::BAD_INPUT);
        }
    };
    doc.exit_code = Some(summary.code);
    let text = render_text(&doc, &summary, series_dir);
    write_series(series_dir, &doc, Some(&text))?;
    if json {
        outln!("{}", verify_json(&doc, &summary, series_dir));
    } else {
        crate::out::print(&text);
    }
    Ok(summary.code)
}

/// `1, 3, 5`: campaign numbers counted from 1.
/// Makes `decisive` (the `--claim` model) the models that decide campaign `r`, instead
/// of the target's claims; `r` still checks every model. The plan's `check` (run.json,
/// the reproduce command) names the deciding models.
fn claim_decides(r: &mut crate::campaign::plan::Resolved, decisive: &[AnyModel]) {
    let register: Vec<_> = decisive
        .iter()
        .filter_map(|m| match m {
            AnyModel::Register(m) => Some(*m),
            AnyModel::Txn(_) => None,
        })
        .collect();
    let txn: Vec<_> = decisive
        .iter()
        .filter_map(|m| match m {
            AnyModel::Txn(m) => Some(*m),
            AnyModel::Register(_) => None,
        })
        .collect();
    if r.plan.workload.is_txn() {
        r.check.txn_decisive = txn;
    } else {
        r.check.decisive = register;
    }
    r.plan.check = decisive.iter().map(|m| m.as_str().to_string()).collect();
}

fn list_numbers(campaigns: &[usize]) -> String {
    if campaigns.is_empty() {
        return "none".into();
    }
    campaigns
        .iter()
        .map(|i| (i + 1).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The record of campaign `i` from its result.
fn record_of(
    i: usize,
    seed: u64,
    nemesis: String,
    result: &crate::campaign::runner::CampaignResult,
) -> CampaignRecord {
    let models = result
        .checked
        .rows()
        .into_iter()
        .map(|row| {
            let outcome = match &row.status {
                Status::Valid | Status::Implied { .. } => ModelOutcome::Held,
                Status::Invalid | Status::RuledOut { .. } => ModelOutcome::Violated,
                Status::Unknown { reason } => ModelOutcome::Unknown {
                    reason: reason.clone(),
                },
                Status::NotChecked => ModelOutcome::Unknown {
                    reason: "not checked".into(),
                },
            };
            (row.model.as_str().to_string(), outcome)
        })
        .collect();
    CampaignRecord {
        campaign: i,
        seed,
        nemesis,
        run: result.run_dir.clone(),
        exit_code: result.checked.code,
        ops: result.ops,
        first_violation_seen_s: result
            .live
            .as_ref()
            .and_then(|l| l.findings.first())
            .map(|f| f.visible_at_ms / 1000.0),
        first_violation_cut_s: result.checked.first_violation_s(),
        anomalies: result.checked.txn.as_ref().map(|t| t.anomalies.clone()),
        models,
    }
}

/// `campaign 3: 812 ops (ok 790, fail 2, info 20), exit 0 -> store/...`.
fn campaign_line(r: &CampaignRecord) -> String {
    format!(
        "campaign {}: {} ops (ok {}, fail {}, info {}), exit {} -> {}",
        r.campaign + 1,
        r.ops.total,
        r.ops.ok,
        r.ops.fail,
        r.ops.info,
        r.exit_code,
        r.run.display()
    )
}

/// Creates a new series folder `store/<target>/verify-<stamp>` (`-shard-K-of-N` for a
/// shard; `-2`, `-3`, ... when the name is taken). Run folders are named by their stamp
/// alone, so the store's listings never take a series folder for a run.
pub fn create_series_dir(
    store: &Path,
    target: &str,
    shard: Option<Shard>,
) -> Result<PathBuf, String> {
    faultline_results::store::check_target(target).map_err(|e| e.to_string())?;
    let parent = store.join(target);
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let stamp = faultline_results::Utc::from_system_time(std::time::SystemTime::now()).stamp();
    let base = match shard {
        Some(s) => format!("verify-{stamp}-shard-{}-of-{}", s.index, s.of),
        None => format!("verify-{stamp}"),
    };
    for n in 1..10_000u32 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
    }
    Err(format!("{}: 10,000 series in one second", parent.display()))
}

/// Writes `verify.json` (and, once decided, `report.md`) into the series folder.
fn write_series(dir: &Path, doc: &SeriesDoc, text: Option<&str>) -> Result<()> {
    let path = dir.join(SERIES_JSON);
    let tmp = dir.join(format!(".{SERIES_JSON}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(doc)?)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))?;
    if let Some(text) = text {
        let md = format!(
            "# faultline verify: {}\n\n{}\n",
            doc.target,
            faultline_results::md_code_block(text, "text")
        );
        let report = dir.join("report.md");
        std::fs::write(&report, md).with_context(|| format!("writing {}", report.display()))?;
    }
    Ok(())
}

/// Reads the series document of a series folder (or the `verify.json` given itself).
pub fn read_series(path: &Path) -> Result<SeriesDoc, String> {
    let file = if path.is_dir() {
        path.join(SERIES_JSON)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!(
            "{}: {e} (give the series folders verify --shard K/N wrote, store/<target>/verify-…-shard-K-of-N)",
            file.display()
        )
    })?;
    let doc: SeriesDoc = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a series document: {e}", file.display()))?;
    if doc.format != SERIES_FORMAT || doc.version != SERIES_VERSION {
        return Err(format!(
            "{}: {} version {}, this build reads {SERIES_FORMAT} version {SERIES_VERSION}",
            file.display(),
            doc.format,
            doc.version
        ));
    }
    Ok(doc)
}

/// What one campaign of a series found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// A deciding model was violated (exit 1).
    pub violated: bool,
    /// When the live check first saw a violation, seconds into the run.
    pub first_seen_s: Option<f64>,
    /// A run checked only at its end (transactions): the first whole second at which
    /// the history cut there already violated a deciding model.
    pub first_violation_cut_s: Option<f64>,
}

/// `violated in 4 of 5 campaigns; first violation after 3.2 s (median), 11.0 s (max)`.
pub fn detection_line(runs: &[Detection]) -> String {
    let hits = runs.iter().filter(|d| d.violated).count();
    let mut times: Vec<f64> = runs
        .iter()
        .filter(|d| d.violated)
        .filter_map(|d| d.first_seen_s)
        .collect();
    times.sort_by(f64::total_cmp);
    let mut line = format!(
        "detection: a deciding model was violated in {hits} of {} campaign(s)",
        runs.len()
    );
    if let (Some(max), false) = (times.last(), times.is_empty()) {
        let n = times.len();
        let median = if n % 2 == 1 {
            times[n / 2]
        } else {
            (times[n / 2 - 1] + times[n / 2]) / 2.0
        };
        line.push_str(&format!(
            "; first seen while running after {median:.1} s (median), {max:.1} s (max)"
        ));
        if n < hits {
            line.push_str(&format!("; {} found only by the final check", hits - n));
        }
    }
    let mut witness: Vec<f64> = runs
        .iter()
        .filter(|d| d.violated && d.first_seen_s.is_none())
        .filter_map(|d| d.first_violation_cut_s)
        .collect();
    witness.sort_by(f64::total_cmp);
    if let Some(max) = witness.last() {
        let n = witness.len();
        let median = if n % 2 == 1 {
            witness[n / 2]
        } else {
            (witness[n / 2 - 1] + witness[n / 2]) / 2.0
        };
        line.push_str(&format!(
            "; checked at the end: first violated by the history up to {median:.1} s (median), {max:.1} s (max)"
        ));
    }
    line
}

/// The verdict of a series in words: its share, the tally (one line per model), the
/// strongest models held, detection, what did not run, the exit code.
pub fn render_text(doc: &SeriesDoc, s: &Summary, series_dir: &Path) -> String {
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    let share = match (doc.shard, doc.merged_from.len()) {
        (Some(sh), _) => format!(" (shard {sh} of {} campaign(s))", doc.campaigns),
        (None, n) if n > 0 => format!(" (merged from {n} shards)"),
        _ => String::new(),
    };
    line(format!(
        "\nover {} campaign(s) of {}{share}, first seed {}:",
        doc.runs.len(),
        doc.target,
        doc.first_seed
    ));
    for (m, t) in &s.tally {
        let claimed = if s.decisive.contains(m) {
            " (claimed)"
        } else {
            ""
        };
        line(match t {
            Tally::Held => format!("  {m}{claimed}: held in all"),
            Tally::Violated(run) => format!("  {m}{claimed}: VIOLATED (see {})", run.display()),
            Tally::Unknown(reason) => format!("  {m}{claimed}: unknown ({reason})"),
        });
    }
    line(format!(
        "strongest models held throughout: {}",
        if s.strongest.is_empty() {
            "none".to_string()
        } else {
            s.strongest.join(", ")
        }
    ));
    let caught: Vec<Detection> = doc
        .runs
        .iter()
        .map(|r| Detection {
            violated: r.exit_code == exit::INVALID,
            first_seen_s: r.first_violation_seen_s,
            first_violation_cut_s: r.first_violation_cut_s,
        })
        .collect();
    line(detection_line(&caught));
    if !s.not_run.is_empty() {
        line(format!(
            "campaign(s) {} of {} did not run{}",
            list_numbers(&s.not_run),
            doc.campaigns,
            if doc.failed.is_some() {
                " (see the error above)"
            } else {
                ""
            }
        ));
    }
    line(format!("series: {}", series_dir.display()));
    if let Some(sh) = doc.shard {
        line(format!(
            "shard {sh} done: merge the {} shard folders with `faultline verify --merge DIR...`",
            sh.of
        ));
    }
    line(format!("exit {}: {}", s.code, exit_meaning(s.code)));
    out
}

/// The summary of `verify --json`: every campaign, every model's tally, the exit code.
pub fn verify_json(doc: &SeriesDoc, s: &Summary, series_dir: &Path) -> serde_json::Value {
    let models: Vec<serde_json::Value> = s
        .tally
        .iter()
        .map(|(m, t)| {
            let mut v = serde_json::json!({"model": m.as_str(), "claimed": s.decisive.contains(m)});
            match t {
                Tally::Held => v["result"] = "held".into(),
                Tally::Violated(run) => {
                    v["result"] = "violated".into();
                    v["run"] = run.display().to_string().into();
                }
                Tally::Unknown(reason) => {
                    v["result"] = "unknown".into();
                    v["reason"] = reason.clone().into();
                }
            }
            v
        })
        .collect();
    let campaigns: Vec<serde_json::Value> = doc
        .runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "campaign": r.campaign + 1,
                "seed": r.seed,
                "nemesis": r.nemesis,
                "run": r.run.display().to_string(),
                "exit_code": r.exit_code,
                "first_violation_seen_s": r.first_violation_seen_s,
                "first_violation_cut_s": r.first_violation_cut_s,
                "anomalies": r.anomalies,
                "ops": {"total": r.ops.total, "ok": r.ops.ok, "fail": r.ops.fail, "info": r.ops.info},
            })
        })
        .collect();
    serde_json::json!({
        "target": doc.target,
        "series": series_dir.display().to_string(),
        "shard": doc.shard,
        "campaigns": campaigns,
        "not_run": s.not_run.iter().map(|i| i + 1).collect::<Vec<_>>(),
        "models": models,
        "strongest": s.strongest,
        "exit_code": s.code,
        "exit_meaning": exit_meaning(s.code),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_claim_decides_each_campaign_while_every_model_is_checked() {
        let args = TestArgs {
            target: Some("zookeeper".into()),
            seed: Some(3),
            check: Some("all".into()),
            ..TestArgs::default()
        };
        let (mut r, _) = resolve_args(&args).expect("a valid plan");
        assert_eq!(
            r.check.decisive,
            vec![faultline_checkers::ModelName::Sequential],
            "the target's claim decides by default"
        );
        let checked_before = (r.check.linearizable, r.check.others.clone());
        claim_decides(
            &mut r,
            &[AnyModel::Register(
                faultline_checkers::ModelName::Linearizable,
            )],
        );
        assert_eq!(
            r.check.decisive,
            vec![faultline_checkers::ModelName::Linearizable]
        );
        assert_eq!(
            (r.check.linearizable, r.check.others.clone()),
            checked_before
        );
        assert!(crate::campaign::plan::reproduce_command(&r).contains("--check linearizable "));
    }

    #[test]
    fn violations_beat_unknowns_beat_holds() {
        let a = Path::new("store/a");
        let b = Path::new("store/b");
        let t = fold(None, &ModelOutcome::Held, a);
        assert_eq!(t, Tally::Held);
        let t = fold(
            Some(t),
            &ModelOutcome::Unknown {
                reason: "budget".into(),
            },
            a,
        );
        assert_eq!(t, Tally::Unknown("budget".into()));
        let t = fold(Some(t), &ModelOutcome::Violated, b);
        assert_eq!(t, Tally::Violated(b.to_path_buf()));
        let t = fold(Some(t), &ModelOutcome::Held, a);
        assert_eq!(
            t,
            Tally::Violated(b.to_path_buf()),
            "the first violating run is kept"
        );
    }

    #[test]
    fn the_detection_line_counts_hits_and_times_the_first_sighting() {
        let d = |violated, t| Detection {
            violated,
            first_seen_s: t,
            first_violation_cut_s: None,
        };
        assert_eq!(
            detection_line(&[d(false, None), d(false, None)]),
            "detection: a deciding model was violated in 0 of 2 campaign(s)"
        );
        assert_eq!(
            detection_line(&[d(true, Some(9.0)), d(false, Some(1.0)), d(true, Some(2.0)), d(true, None), d(true, Some(4.0))]),
            "detection: a deciding model was violated in 4 of 5 campaign(s); first seen while running after 4.0 s (median), 9.0 s (max); 1 found only by the final check"
        );
        assert_eq!(
            detection_line(&[d(true, Some(3.0)), d(true, Some(1.0))]),
            "detection: a deciding model was violated in 2 of 2 campaign(s); first seen while running after 2.0 s (median), 3.0 s (max)"
        );
        let w = |violated, t| Detection {
            violated,
            first_seen_s: None,
            first_violation_cut_s: t,
        };
        assert_eq!(
            detection_line(&[w(true, Some(12.0)), w(false, None), w(true, Some(4.0))]),
            "detection: a deciding model was violated in 2 of 3 campaign(s); checked at the end: first violated by the history up to 8.0 s (median), 12.0 s (max)"
        );
    }

    #[test]
    fn mixes_rotate_through_each_family_then_all() {
        let raft = faultline_targets::target_by_name("raft-register").expect("known");
        let mixes: Vec<String> = (0..7).map(|i| fault_mix(i, raft.as_ref())).collect();
        assert_eq!(
            mixes,
            vec![
                "partition",
                "kill",
                "pause",
                "clock",
                "leader,clock",
                "partition,kill,pause,clock",
                "partition"
            ]
        );
        let qkv = faultline_targets::target_by_name("quorum-kv").expect("known");
        assert_eq!(fault_mix(4, qkv.as_ref()), "partition,kill,pause,clock");
    }

    #[test]
    fn the_json_summary_and_the_text_name_each_tally() {
        let rec = |campaign: usize, models: &[(&str, ModelOutcome)], code| CampaignRecord {
            campaign,
            seed: 7 + campaign as u64,
            nemesis: "partition".into(),
            run: PathBuf::from(format!("store/{}", ["a", "b"][campaign])),
            exit_code: code,
            ops: faultline_results::OpCounts {
                total: 10,
                ok: 8,
                fail: 1,
                info: 1,
            },
            first_violation_seen_s: (code == 1).then_some(2.5),
            first_violation_cut_s: None,
            anomalies: None,
            models: models
                .iter()
                .map(|(m, o)| (m.to_string(), o.clone()))
                .collect(),
        };
        let doc = SeriesDoc {
            format: SERIES_FORMAT.into(),
            version: SERIES_VERSION,
            target: "raft-register".into(),
            plan: serde_json::json!({}),
            first_seed: 7,
            campaigns: 3,
            rotating_mix: true,
            claim: vec!["linearizable".into()],
            shard: None,
            assigned: vec![0, 1, 2],
            runs: vec![
                rec(
                    0,
                    &[
                        ("linearizable", ModelOutcome::Held),
                        ("cc", ModelOutcome::Held),
                        (
                            "ryw",
                            ModelOutcome::Unknown {
                                reason: "budget".into(),
                            },
                        ),
                    ],
                    0,
                ),
                rec(
                    1,
                    &[
                        ("linearizable", ModelOutcome::Violated),
                        ("cc", ModelOutcome::Held),
                    ],
                    1,
                ),
            ],
            interrupted: false,
            failed: None,
            exit_code: None,
            merged_from: Vec::new(),
        };
        let s = summarize(&doc).expect("summary");
        let v = verify_json(&doc, &s, Path::new("store/raft-register/verify-x"));
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["models"][0]["model"], "linearizable");
        assert_eq!(v["models"][0]["result"], "violated");
        assert_eq!(v["models"][0]["run"], "store/b");
        assert_eq!(v["models"][0]["claimed"], true);
        assert_eq!(v["models"][1]["result"], "held");
        assert_eq!(v["models"][2]["reason"], "budget");
        assert_eq!(v["strongest"], serde_json::json!(["cc"]));
        assert_eq!(v["not_run"], serde_json::json!([3]));
        assert_eq!(v["campaigns"][1]["seed"], 8);
        let text = render_text(&doc, &s, Path::new("store/raft-register/verify-x"));
        assert_eq!(
            text,
            "\nover 2 campaign(s) of raft-register, first seed 7:\n  linearizable (claimed): VIOLATED (see store/b)\n  cc: held in all\n  ryw: unknown (budget)\nstrongest models held throughout: cc\ndetection: a deciding model was violated in 1 of 2 campaign(s); first seen while running after 2.5 s (median), 2.5 s (max)\ncampaign(s) 3 of 3 did not run\nseries: store/raft-register/verify-x\nexit 1: a violation found\n"
        );
    }
}
