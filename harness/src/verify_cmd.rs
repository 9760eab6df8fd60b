//! `faultline verify`: several campaigns with different seeds and fault mixes against one
//! target; for every model, whether it held in all of them, which run violated it, or
//! whether it stayed undecided; and the strongest models that held throughout.

use crate::args::whole;
use crate::campaign::checking::{AnyModel, Status};
use crate::campaign::runner::run_campaign;
use crate::exit;
use crate::test_cmd::{check_store, ctrl_c_flag, error_code, fresh_seed, resolve_args, TestArgs};
use anyhow::Result;
use clap::Args;
use faultline_results::exit_meaning;
use std::collections::BTreeMap;
use std::path::PathBuf;
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

/// What all campaigns said about one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    /// Held in every campaign.
    Held,
    /// Violated; the run folder that shows it.
    Violated(PathBuf),
    /// Undecided in some campaign, violated in none.
    Unknown(String),
}

/// Folds one campaign's row into the tally so far (violated beats unknown beats held).
pub fn fold(prev: Option<Tally>, status: &Status, run: &std::path::Path) -> Tally {
    let now = match status {
        Status::Valid | Status::Implied { .. } => Tally::Held,
        Status::Invalid | Status::RuledOut { .. } => Tally::Violated(run.to_path_buf()),
        Status::Unknown { reason } => Tally::Unknown(reason.clone()),
        Status::NotChecked => Tally::Unknown("not checked".into()),
    };
    match (prev, now) {
        (Some(v @ Tally::Violated(_)), _) => v,
        (_, v @ Tally::Violated(_)) => v,
        (Some(u @ Tally::Unknown(_)), _) => u,
        (_, now) => now,
    }
}

/// The exit code from the claimed models' tallies.
pub fn verdict_code(tally: &BTreeMap<AnyModel, Tally>, decisive: &[AnyModel]) -> u8 {
    let of = |m: &AnyModel| tally.get(m);
    if decisive
        .iter()
        .any(|m| matches!(of(m), Some(Tally::Violated(_))))
    {
        exit::INVALID
    } else if decisive.iter().all(|m| matches!(of(m), Some(Tally::Held))) {
        exit::VALID
    } else {
        exit::UNKNOWN
    }
}

/// Runs `faultline verify`.
pub fn run(args: VerifyArgs) -> Result<u8> {
    if args.base.test_count.is_some() {
        errln!("error: --test-count is for faultline test; verify runs --campaigns N");
        return Ok(exit::BAD_INPUT);
    }
    let json = args.base.json;
    let first_seed = args.base.seed.unwrap_or_else(fresh_seed);
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let interrupt = rt.block_on(async { ctrl_c_flag() });
    let mut tally: BTreeMap<AnyModel, Tally> = BTreeMap::new();
    let mut runs = Vec::new();
    // A campaign that cannot run stops the series, but a violation found before it still
    // decides the exit code (exit::Outcome's precedence).
    let mut failed: Option<u8> = None;
    for i in 0..args.campaigns {
        if interrupt.load(Ordering::Relaxed) {
            break;
        }
        let mut a = base.clone();
        a.seed = Some(first_seed.wrapping_add(i as u64));
        if args.base.nemesis.is_none() && args.base.fault.is_empty() {
            a.nemesis = Some(fault_mix(i, first_target.as_ref()));
        }
        let (resolved, target) = match resolve_args(&a) {
            Ok(r) => r,
            Err(e) => {
                errln!("error: {e}");
                failed = Some(exit::BAD_INPUT);
                break;
            }
        };
        errln!(
            "campaign {}/{}: nemesis {}, seed {}",
            i + 1,
            args.campaigns,
            if resolved.families.is_empty() {
                "none".to_string()
            } else {
                resolved
                    .families
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(",")
            },
            resolved.seed
        );
        let result = rt.block_on(run_campaign(&resolved, target, interrupt.clone()));
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                failed = Some(error_code(&e));
                break;
            }
        };
        let line = format!(
            "campaign {}: {} ops (ok {}, fail {}, info {}), exit {} -> {}",
            i + 1,
            result.ops.total,
            result.ops.ok,
            result.ops.fail,
            result.ops.info,
            result.checked.code,
            result.run_dir.display()
        );
        if json {
            errln!("{line}");
        } else {
            outln!("{line}");
            if let Some(t) = &result.checked.txn {
                if !t.anomalies.is_empty() {
                    outln!(
                        "  anomalies: {}{}",
                        t.anomalies.join(", "),
                        result
                            .checked
                            .first_violation_s()
                            .map(|s| format!("; first violated by the history up to {s:.0} s"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        for row in result.checked.rows() {
            let prev = tally.remove(&row.model);
            tally.insert(row.model, fold(prev, &row.status, &result.run_dir));
        }
        runs.push(result);
    }
    if runs.is_empty() {
        return Ok(failed.unwrap_or(exit::UNKNOWN));
    }
    let caught: Vec<Detection> = runs
        .iter()
        .map(|r| Detection {
            violated: r.checked.code == exit::INVALID,
            first_seen_s: r
                .live
                .as_ref()
                .and_then(|l| l.findings.first())
                .map(|f| f.visible_at_ms / 1000.0),
            first_violation_cut_s: r.checked.first_violation_s(),
        })
        .collect();
    let held: Vec<AnyModel> = tally
        .iter()
        .filter(|(_, t)| **t == Tally::Held)
        .map(|(m, _)| *m)
        .collect();
    let strongest: Vec<&str> = held
        .iter()
        .filter(|m| !held.iter().any(|s| s.stronger_than(**m)))
        .map(|m| m.as_str())
        .collect();
    if !json {
        print_tally(
            &tally,
            &decisive,
            &strongest,
            runs.len(),
            &first.plan.target,
        );
        outln!("{}", detection_line(&caught));
    }
    let mut code = verdict_code(&tally, &decisive);
    if (interrupt.load(Ordering::Relaxed) || failed.is_some()) && code == exit::VALID {
        code = exit::UNKNOWN;
    }
    let mut outcome = exit::Outcome::default();
    outcome.add_code(code);
    if let Some(f) = failed {
        outcome.add_code(f);
        outln!(
            "campaign {} of {} could not run (see the error above)",
            runs.len() + 1,
            args.campaigns
        );
    }
    let code = outcome.code();
    if json {
        outln!(
            "{}",
            verify_json(
                &tally,
                &decisive,
                &strongest,
                &runs,
                code,
                &first.plan.target
            )
        );
    } else {
        outln!("exit {code}: {}", exit_meaning(code));
    }
    Ok(code)
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

/// The tally in words, one line per model.
fn print_tally(
    tally: &BTreeMap<AnyModel, Tally>,
    decisive: &[AnyModel],
    strongest: &[&str],
    runs: usize,
    target: &str,
) {
    outln!("\nover {runs} campaign(s) of {target}:");
    for (m, t) in tally {
        let claimed = if decisive.contains(m) {
            " (claimed)"
        } else {
            ""
        };
        match t {
            Tally::Held => outln!("  {m}{claimed}: held in all"),
            Tally::Violated(run) => outln!("  {m}{claimed}: VIOLATED (see {})", run.display()),
            Tally::Unknown(reason) => outln!("  {m}{claimed}: unknown ({reason})"),
        }
    }
    outln!(
        "strongest models held throughout: {}",
        if strongest.is_empty() {
            "none".to_string()
        } else {
            strongest.join(", ")
        }
    );
}

/// The summary of `verify --json`: every campaign, every model's tally, the exit code.
pub fn verify_json(
    tally: &BTreeMap<AnyModel, Tally>,
    decisive: &[AnyModel],
    strongest: &[&str],
    runs: &[crate::campaign::runner::CampaignResult],
    code: u8,
    target: &str,
) -> serde_json::Value {
    let models: Vec<serde_json::Value> = tally
        .iter()
        .map(|(m, t)| {
            let mut v = serde_json::json!({"model": m.as_str(), "claimed": decisive.contains(m)});
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
    let campaigns: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "run": r.run_dir.display().to_string(),
                "exit_code": r.checked.code,
                "first_violation_seen_s": r
                    .live
                    .as_ref()
                    .and_then(|l| l.findings.first())
                    .map(|f| f.visible_at_ms / 1000.0),
                "first_violation_cut_s": r.checked.first_violation_s(),
                "anomalies": r.checked.txn.as_ref().map(|t| t.anomalies.clone()),
                "ops": {"total": r.ops.total, "ok": r.ops.ok, "fail": r.ops.fail, "info": r.ops.info},
            })
        })
        .collect();
    serde_json::json!({
        "target": target,
        "campaigns": campaigns,
        "models": models,
        "strongest": strongest,
        "exit_code": code,
        "exit_meaning": exit_meaning(code),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn violations_beat_unknowns_beat_holds() {
        let a = Path::new("store/a");
        let b = Path::new("store/b");
        let t = fold(None, &Status::Valid, a);
        assert_eq!(t, Tally::Held);
        let t = fold(
            Some(t),
            &Status::Unknown {
                reason: "budget".into(),
            },
            a,
        );
        assert_eq!(t, Tally::Unknown("budget".into()));
        let t = fold(Some(t), &Status::Invalid, b);
        assert_eq!(t, Tally::Violated(b.to_path_buf()));
        let t = fold(Some(t), &Status::Valid, a);
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
    fn the_json_summary_names_each_tally() {
        let mut tally = BTreeMap::new();
        use faultline_checkers::lattice::ModelName;
        tally.insert(
            AnyModel::Register(ModelName::Linearizable),
            Tally::Violated("store/a".into()),
        );
        tally.insert(AnyModel::Register(ModelName::Cc), Tally::Held);
        tally.insert(
            AnyModel::Register(ModelName::Ryw),
            Tally::Unknown("budget".into()),
        );
        let v = verify_json(
            &tally,
            &[AnyModel::Register(ModelName::Linearizable)],
            &["cc"],
            &[],
            1,
            "raft-register",
        );
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["models"][0]["model"], "linearizable");
        assert_eq!(v["models"][0]["result"], "violated");
        assert_eq!(v["models"][0]["run"], "store/a");
        assert_eq!(v["models"][0]["claimed"], true);
        assert_eq!(v["models"][1]["result"], "held");
        assert_eq!(v["models"][2]["reason"], "budget");
        assert_eq!(v["strongest"], serde_json::json!(["cc"]));
    }
}
