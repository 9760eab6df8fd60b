//! `faultline check` on transactional histories: verdicts of the isolation models and
//! what is printed.

use super::{round3, valid_json, CheckArgs, Request};
use faultline_checkers::txn::{self, TxnModel, TxnOptions};
use faultline_checkers::Verdict;
use faultline_history::Paired;
use faultline_results::text::{clip_verdict, json_visible, shown_verdict, visible};
use serde_json::json;
use std::time::{Duration, Instant};

pub(super) struct TxnFileResult {
    pub(super) workload: Option<txn::Workload>,
    pub(super) anomalies: Vec<String>,
    pub(super) txns: usize,
    pub(super) verdicts: Vec<(TxnModel, Verdict)>,
    pub(super) check_ms: f64,
}

pub(super) fn txn_misnamed(name: &str, model: &str) -> String {
    format!("{name}: {model} is a model of register histories, and this history holds transactions (f = txn); use a transactional model such as strict-serializable, serializable or snapshot-isolation, or all")
}

pub(super) fn check_txn_file(
    request: &Request,
    paired: &Paired,
    time_limit: Option<Duration>,
) -> TxnFileResult {
    let started = Instant::now();
    let opts = TxnOptions {
        time_limit,
        ..TxnOptions::default()
    };
    let report = txn::analyse(paired, &request.txn, &opts);
    txn_result(
        request,
        report,
        &|t| paired.ops.get(t).cloned(),
        paired.ops.len(),
        started,
    )
}

/// Verdicts from an analysis (unknown for every model when the history is malformed).
pub(super) fn txn_result(
    request: &Request,
    report: Result<txn::TxnReport, txn::TxnInputError>,
    op_of: &dyn Fn(usize) -> Option<faultline_history::Operation>,
    txns: usize,
    started: Instant,
) -> TxnFileResult {
    let verdicts = txn::verdicts_with(&report, &request.txn, op_of);
    let (workload, anomalies) = match &report {
        Ok(report) => (
            Some(report.workload),
            report
                .findings
                .iter()
                .map(|f| f.anomaly.to_string())
                .collect(),
        ),
        Err(_) => (None, Vec::new()),
    };
    TxnFileResult {
        workload,
        anomalies,
        txns,
        verdicts: verdicts
            .iter()
            .map(|(m, v)| (*m, clip_verdict(v)))
            .collect(),
        check_ms: started.elapsed().as_secs_f64() * 1e3,
    }
}

pub(super) fn print_txn_result(
    args: &CheckArgs,
    request: &Request,
    name: &str,
    r: &TxnFileResult,
    parse_ms: f64,
) {
    let merged = r
        .verdicts
        .iter()
        .map(|(_, v)| v.clone())
        .fold(Verdict::Valid, Verdict::merge);
    if args.json {
        let mut obj = json!({
            "file": name,
            "model": if request.table { "all".to_string() } else { r.verdicts[0].0.to_string() },
            "valid": valid_json(&merged),
            "txns": r.txns,
            "anomalies": r.anomalies,
            "parse_ms": round3(parse_ms),
            "check_ms": round3(r.check_ms),
        });
        if let Some(w) = r.workload {
            obj["workload"] = json!(w.to_string());
        }
        if request.table {
            let table = txn::txn_model_table(r.verdicts.clone());
            obj["models"] = serde_json::to_value(&table).unwrap_or(serde_json::Value::Null);
        } else {
            match &r.verdicts[0].1 {
                Verdict::Invalid { witness } => {
                    obj["witness"] = serde_json::to_value(witness).unwrap_or_default();
                    obj["explanation"] = json!(witness.render_text());
                }
                Verdict::Unknown { reason, .. } => obj["reason"] = json!(reason),
                Verdict::Valid => {}
            }
        }
        outln!("{}", json_visible(&obj.to_string()));
        return;
    }
    let shown: Vec<(TxnModel, Verdict)> = r
        .verdicts
        .iter()
        .map(|(m, v)| (*m, shown_verdict(v)))
        .collect();
    let name = visible(name);
    let workload = r.workload.map(|w| format!(" ({w})")).unwrap_or_default();
    let found = if r.anomalies.is_empty() {
        String::new()
    } else {
        format!("; anomalies found: {}", r.anomalies.join(", "))
    };
    if request.table {
        outln!(
            "{name}: {} transactions{workload}, checked in {:.1} ms{found}",
            r.txns,
            r.check_ms
        );
        crate::out::print(&txn::txn_model_table(shown).render_text());
        return;
    }
    let (model, verdict) = &shown[0];
    outln!(
        "{name}: {model}{workload}: {} ({} transactions, {:.1} ms{found})",
        verdict.label(),
        r.txns,
        r.check_ms
    );
    match verdict {
        Verdict::Invalid { witness } => {
            for line in witness.render_text().lines() {
                outln!("    {line}");
            }
        }
        Verdict::Unknown { reason, .. } => outln!("    {reason}"),
        Verdict::Valid => {}
    }
}
