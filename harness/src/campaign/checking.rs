//! Checking a campaign's history: linearizability with the workload's data model, the
//! other models through the lattice, the table of every model, the exit code from the
//! models that decide it, which `reporting::verdict_doc` turns into `verdict.json`.
//! A transactional workload's history (f = txn) goes through the transactional checker
//! instead (the path of `faultline check`: `txn::analyse`, one verdict per isolation
//! model, `reporting::txn_verdict_doc`).

use crate::campaign::plan::CheckRequest;
use crate::exit;
use faultline_checkers::lattice::{
    check_models, model_table, ConsistencyOptions, ModelName, ModelTable, RowStatus,
};
use faultline_checkers::txn::{self, txn_model_table, TxnModel, TxnModelTable, TxnRowStatus};
use faultline_checkers::{check_linearizable, LinOptions, Verdict};
use faultline_history::{Paired, Value};
use faultline_results::text::clip_verdict;
use std::time::{Duration, Instant};

/// The verdicts of one campaign.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Each checked model's verdict and how long it took (ms).
    pub verdicts: Vec<(ModelName, Verdict, u64)>,
    /// Every model of the lattice.
    pub table: ModelTable,
    /// The models that decide the exit code.
    pub decisive: Vec<ModelName>,
    /// The exit code.
    pub code: u8,
    /// Operations given to the checkers.
    pub ops: usize,
    /// A transactional workload's verdicts (the register fields above are then empty).
    pub txn: Option<TxnChecked>,
}

/// The verdicts of a transactional campaign.
#[derive(Debug, Clone)]
pub struct TxnChecked {
    /// Each checked isolation model's verdict and how long the check took (ms).
    pub verdicts: Vec<(TxnModel, Verdict, u64)>,
    /// Every isolation model.
    pub table: TxnModelTable,
    /// The models that decide the exit code.
    pub decisive: Vec<TxnModel>,
    /// Every anomaly type found, most severe first (`G1c`, `lost-update`...).
    pub anomalies: Vec<String>,
    /// The workload the checker recognised (`list-append`, `rw-register`), if it could.
    pub workload: Option<String>,
    /// When a deciding model is violated: the end of the shortest prefix of the run, in
    /// whole seconds, whose history (operations invoked by then, those still in flight
    /// counted as `info`) already violates one ([`first_violation_s`]).
    pub first_violation_s: Option<f64>,
}

/// The history of the run cut at `t` ns: the operations invoked before `t`, those not
/// completed by then counted as `info` (their reads unknown).
pub fn cut_at(paired: &Paired, t: u64) -> Paired {
    let ops = paired
        .ops
        .iter()
        .take_while(|o| o.invoke_time < t)
        .map(|o| {
            let mut o = o.clone();
            if o.complete_time.is_none_or(|c| c >= t) {
                o.outcome = faultline_history::Outcome::Info;
                o.result = o.argument.clone();
                o.complete_time = None;
                o.complete_index = None;
                o.error = None;
            }
            o
        })
        .collect();
    Paired {
        ops,
        faults: Vec::new(),
    }
}

/// The first whole second `s` such that the history cut at `s` (see [`cut_at`])
/// violates one of `decisive`; `None` when no cut up to the end of the run does. A
/// violation of a cut holds for the whole history (its operations and what they read are
/// all there), so this is when the violation could first be seen.
pub fn first_violation_s(paired: &Paired, decisive: &[TxnModel], limit: Duration) -> Option<f64> {
    let end = paired
        .ops
        .iter()
        .map(|o| o.complete_time.unwrap_or(o.invoke_time))
        .max()?;
    let started = Instant::now();
    let second = 1_000_000_000u64;
    let mut t = second;
    while t <= end + second && started.elapsed() < limit {
        let cut = cut_at(paired, t);
        let opts = txn::TxnOptions {
            time_limit: Some(limit.saturating_sub(started.elapsed())),
            ..txn::TxnOptions::default()
        };
        if let Ok(report) = txn::analyse(&cut, decisive, &opts) {
            if decisive
                .iter()
                .any(|&m| txn::verdict_of(&cut, &report, m).holds() == Some(false))
            {
                return Some((t / second) as f64);
            }
        }
        t += second;
    }
    None
}

/// A model of either lattice (single-key operations, or transactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnyModel {
    /// A model of single-key histories.
    Register(ModelName),
    /// An isolation model of transactional histories.
    Txn(TxnModel),
}

impl AnyModel {
    /// The model's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnyModel::Register(m) => m.as_str(),
            AnyModel::Txn(m) => m.as_str(),
        }
    }

    /// Whether `self` implies `other` (models of different lattices never do).
    pub fn stronger_than(self, other: AnyModel) -> bool {
        match (self, other) {
            (AnyModel::Register(a), AnyModel::Register(b)) => a.stronger_than(b),
            (AnyModel::Txn(a), AnyModel::Txn(b)) => a.stronger_than(b),
            _ => false,
        }
    }
}

impl std::fmt::Display for AnyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known about one model, whichever lattice it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Checked and valid.
    Valid,
    /// Checked and violated.
    Invalid,
    /// Not decided, and why.
    Unknown {
        /// Why.
        reason: String,
    },
    /// Holds because this stronger model held.
    Implied {
        /// The stronger model.
        by: String,
    },
    /// Violated because this weaker model was.
    RuledOut {
        /// The weaker model.
        by: String,
    },
    /// Not checked.
    NotChecked,
}

/// One row of a campaign's model table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The model.
    pub model: AnyModel,
    /// What is known about it.
    pub status: Status,
    /// The checker's own verdict, when it was checked.
    pub verdict: Option<Verdict>,
    /// Whether its checker ran.
    pub checked: bool,
    /// Whether it decides the exit code.
    pub decides: bool,
}

impl Checked {
    /// Every model's row, strongest first (the isolation models for a transactional
    /// workload).
    pub fn rows(&self) -> Vec<Row> {
        if let Some(t) = &self.txn {
            return t
                .table
                .rows
                .iter()
                .map(|r| Row {
                    model: AnyModel::Txn(r.model),
                    status: match &r.status {
                        TxnRowStatus::Valid => Status::Valid,
                        TxnRowStatus::Invalid => Status::Invalid,
                        TxnRowStatus::Unknown { reason } => Status::Unknown {
                            reason: reason.clone(),
                        },
                        TxnRowStatus::Implied { by } => Status::Implied { by: by.to_string() },
                        TxnRowStatus::RuledOut { by } => Status::RuledOut { by: by.to_string() },
                        TxnRowStatus::NotChecked => Status::NotChecked,
                    },
                    verdict: r.verdict.clone(),
                    checked: t.verdicts.iter().any(|(m, _, _)| *m == r.model),
                    decides: t.decisive.contains(&r.model),
                })
                .collect();
        }
        self.table
            .rows
            .iter()
            .map(|r| Row {
                model: AnyModel::Register(r.model),
                status: match &r.status {
                    RowStatus::Valid => Status::Valid,
                    RowStatus::Invalid => Status::Invalid,
                    RowStatus::Unknown { reason } => Status::Unknown {
                        reason: reason.clone(),
                    },
                    RowStatus::Implied { by } => Status::Implied { by: by.to_string() },
                    RowStatus::RuledOut { by } => Status::RuledOut { by: by.to_string() },
                    RowStatus::NotChecked => Status::NotChecked,
                },
                verdict: r.verdict.clone(),
                checked: self.verdicts.iter().any(|(m, _, _)| *m == r.model),
                decides: self.decisive.contains(&r.model),
            })
            .collect()
    }

    /// The strongest models that held.
    pub fn strongest(&self) -> Vec<AnyModel> {
        match &self.txn {
            Some(t) => t
                .table
                .strongest
                .iter()
                .map(|m| AnyModel::Txn(*m))
                .collect(),
            None => self
                .table
                .strongest
                .iter()
                .map(|m| AnyModel::Register(*m))
                .collect(),
        }
    }

    /// The models that decide the exit code.
    pub fn deciding(&self) -> Vec<AnyModel> {
        match &self.txn {
            Some(t) => t.decisive.iter().map(|m| AnyModel::Txn(*m)).collect(),
            None => self
                .decisive
                .iter()
                .map(|m| AnyModel::Register(*m))
                .collect(),
        }
    }

    /// For a transactional run (checked only at its end): when a deciding model's
    /// violation could first be seen, in seconds into the run (see
    /// [`TxnChecked::first_violation_s`]).
    pub fn first_violation_s(&self) -> Option<f64> {
        self.txn.as_ref().and_then(|t| t.first_violation_s)
    }

    /// Whether some checked model was violated.
    pub fn any_violation(&self) -> bool {
        let invalid = |v: &Verdict| matches!(v, Verdict::Invalid { .. });
        match &self.txn {
            Some(t) => t.verdicts.iter().any(|(_, v, _)| invalid(v)),
            None => self.verdicts.iter().any(|(_, v, _)| invalid(v)),
        }
    }
}

/// Runs the transactional checker on a transactional campaign's history.
fn check_txn(paired: &Paired, request: &CheckRequest, time_limit: Duration) -> Checked {
    let started = Instant::now();
    let opts = txn::TxnOptions {
        time_limit: Some(time_limit),
        ..txn::TxnOptions::default()
    };
    let report = txn::analyse(paired, &request.txn, &opts);
    let verdicts = txn::verdicts_with(&report, &request.txn, &|t| paired.ops.get(t).cloned());
    let (workload, anomalies) = match &report {
        Ok(report) => (
            Some(report.workload.to_string()),
            report
                .findings
                .iter()
                .map(|f| f.anomaly.to_string())
                .collect(),
        ),
        Err(_) => (None, Vec::new()),
    };
    let ms = started.elapsed().as_millis() as u64;
    let verdicts: Vec<(TxnModel, Verdict)> = verdicts
        .iter()
        .map(|(m, v)| (*m, clip_verdict(v)))
        .collect();
    let table = txn_model_table(verdicts.clone());
    let code = txn_exit_code(&table, &request.txn_decisive);
    let first_violation_s = (code == exit::INVALID)
        .then(|| first_violation_s(paired, &request.txn_decisive, time_limit))
        .flatten();
    Checked {
        verdicts: Vec::new(),
        table: model_table(Vec::new()),
        decisive: Vec::new(),
        code,
        ops: paired.ops.len(),
        txn: Some(TxnChecked {
            verdicts: verdicts.into_iter().map(|(m, v)| (m, v, ms)).collect(),
            table,
            decisive: request.txn_decisive.clone(),
            anomalies,
            workload,
            first_violation_s,
        }),
    }
}

/// The exit code of a transactional campaign: from the deciding isolation models' rows
/// (as [`exit_code`] for registers).
pub fn txn_exit_code(table: &TxnModelTable, decisive: &[TxnModel]) -> u8 {
    let mut outcome = exit::Outcome::default();
    for row in table.rows.iter().filter(|r| decisive.contains(&r.model)) {
        let unknown = |reason: String| Verdict::Unknown {
            reason,
            undecided: Vec::new(),
        };
        let v = match &row.status {
            TxnRowStatus::Valid | TxnRowStatus::Implied { .. } => Verdict::Valid,
            TxnRowStatus::Invalid | TxnRowStatus::RuledOut { .. } => {
                match row.verdict.clone().or_else(|| {
                    table
                        .rows
                        .iter()
                        .filter(|r| row.model.stronger_than(r.model))
                        .find_map(|r| r.verdict.clone().filter(|v| v.holds() == Some(false)))
                }) {
                    Some(v @ Verdict::Invalid { .. }) => v,
                    _ => unknown("ruled out".into()),
                }
            }
            TxnRowStatus::Unknown { reason } => unknown(reason.clone()),
            TxnRowStatus::NotChecked => unknown("not checked".into()),
        };
        outcome.add(&v);
    }
    outcome.code()
}

/// Runs the checkers asked for on `paired`.
pub fn check(paired: &Paired, request: &CheckRequest, time_limit: Duration) -> Checked {
    if !request.txn.is_empty() {
        return check_txn(paired, request, time_limit);
    }
    let mut verdicts = Vec::new();
    if let Some(dm) = request.linearizable {
        let started = Instant::now();
        let opts = LinOptions {
            initial: Value::Null,
            time_limit: Some(time_limit),
            ..LinOptions::default()
        };
        let report = check_linearizable(paired, dm, &opts);
        verdicts.push((
            ModelName::Linearizable,
            report.verdict,
            started.elapsed().as_millis() as u64,
        ));
    }
    if !request.others.is_empty() {
        let started = Instant::now();
        let opts = ConsistencyOptions {
            time_limit: Some(time_limit),
            nil_reads_unknown: false,
            initial: Value::Null,
            linearizable: verdicts
                .first()
                .filter(|(m, _, _)| *m == ModelName::Linearizable)
                .and_then(|(_, v, _)| v.holds()),
            ..ConsistencyOptions::default()
        };
        let out = check_models(paired, &request.others, &opts);
        let each = started.elapsed().as_millis() as u64 / out.len().max(1) as u64;
        verdicts.extend(out.into_iter().map(|(m, v)| (m, v, each)));
    }
    // What is printed and written shows long values clipped (history.jsonl keeps them).
    let verdicts: Vec<(ModelName, Verdict, u64)> = verdicts
        .into_iter()
        .map(|(m, v, ms)| (m, clip_verdict(&v), ms))
        .collect();
    let table = model_table(verdicts.iter().map(|(m, v, _)| (*m, v.clone())).collect());
    let code = exit_code(&table, &request.decisive);
    Checked {
        verdicts,
        table,
        decisive: request.decisive.clone(),
        code,
        ops: paired.ops.len(),
        txn: None,
    }
}

/// `verdict.json` of a campaign's verdicts, with the exit code the campaign ends with
/// (`code`: the verdicts' own, or unknown for a run cut short that found nothing). When
/// the target claims nothing under the plan, the overall result still says what the
/// checked models found and the exit meaning says why it does not decide.
pub fn campaign_doc(checked: &Checked, code: u8) -> faultline_results::VerdictDoc {
    use faultline_results::{exit_meaning, ResultKind};
    let mut doc = match &checked.txn {
        Some(t) => {
            let verdicts: Vec<_> = t.verdicts.iter().map(|(m, v, _)| (*m, v.clone())).collect();
            let check_ms = t.verdicts.first().map(|(_, _, ms)| *ms).unwrap_or(0);
            crate::reporting::txn_verdict_doc(&verdicts, &t.decisive, checked.ops as u64, check_ms)
        }
        None => {
            let verdicts: Vec<_> = checked
                .verdicts
                .iter()
                .map(|(m, v, _)| (*m, v.clone()))
                .collect();
            let check_ms = checked.verdicts.iter().map(|(_, _, ms)| ms).sum();
            crate::reporting::verdict_doc(
                &verdicts,
                &checked.decisive,
                checked.ops as u64,
                check_ms,
            )
        }
    };
    doc.exit_code = code;
    if checked.deciding().is_empty() {
        doc.exit_meaning = NOTHING_CLAIMED.to_string();
    } else {
        doc.exit_meaning = exit_meaning(code).to_string();
        doc.overall = match code {
            exit::VALID => ResultKind::Valid,
            exit::INVALID => ResultKind::Invalid,
            _ => ResultKind::Unknown,
        };
    }
    doc
}

/// The exit meaning of a run whose target claims no model under its plan.
pub const NOTHING_CLAIMED: &str =
    "the target claims no model under this plan, so no verdict decides the exit code";

/// The exit code: from the decisive models' rows (a claimed model ruled out by a weaker
/// violated one is a violation; one not decided is unknown). No decisive model: 0.
pub fn exit_code(table: &ModelTable, decisive: &[ModelName]) -> u8 {
    let mut outcome = exit::Outcome::default();
    for row in table.rows.iter().filter(|r| decisive.contains(&r.model)) {
        let v = match &row.status {
            RowStatus::Valid | RowStatus::Implied { .. } => Verdict::Valid,
            RowStatus::Invalid | RowStatus::RuledOut { .. } => match &row.verdict {
                Some(v @ Verdict::Invalid { .. }) => v.clone(),
                _ => invalid_marker(table, row.model),
            },
            RowStatus::Unknown { reason } => Verdict::Unknown {
                reason: reason.clone(),
                undecided: Vec::new(),
            },
            RowStatus::NotChecked => Verdict::Unknown {
                reason: "not checked".into(),
                undecided: Vec::new(),
            },
        };
        outcome.add(&v);
    }
    outcome.code()
}

/// The verdict of the weaker violated model that rules `model` out.
fn invalid_marker(table: &ModelTable, model: ModelName) -> Verdict {
    table
        .rows
        .iter()
        .filter(|r| model.stronger_than(r.model))
        .find_map(|r| match &r.verdict {
            Some(v @ Verdict::Invalid { .. }) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or(Verdict::Unknown {
            reason: "ruled out".into(),
            undecided: Vec::new(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::plan::parse_check;
    use crate::campaign::Workload;
    use faultline_history::{Event, EventType, History};
    use serde_json::json;

    /// `verdict.json` of a campaign's verdicts, as the runner writes it.
    fn doc_of(c: &Checked) -> serde_json::Value {
        let verdicts: Vec<_> = c.verdicts.iter().map(|(m, v, _)| (*m, v.clone())).collect();
        let doc = crate::reporting::verdict_doc(&verdicts, &c.decisive, c.ops as u64, 0);
        serde_json::to_value(doc).expect("serialises")
    }

    fn ev(i: u64, p: u64, kind: EventType, f: &str, v: Value) -> Event {
        let mut e = Event::client(i, p, kind, f, v);
        e.time = i * 10;
        e
    }

    fn paired(events: Vec<Event>) -> Paired {
        History::from_events(events).pair("t").expect("pairs")
    }

    #[test]
    fn a_stale_read_is_a_violation_of_the_claim() {
        // write 1 completes, then a read returns null: not linearizable.
        let p = paired(vec![
            ev(0, 0, EventType::Invoke, "write", Value::from(1)),
            ev(1, 0, EventType::Ok, "write", Value::from(1)),
            ev(2, 1, EventType::Invoke, "read", Value::Null),
            ev(3, 1, EventType::Ok, "read", Value::Null),
        ]);
        let req = parse_check(
            &["claimed".into()],
            Workload::Register,
            &["linearizable".into()],
        )
        .expect("ok");
        let c = check(&p, &req, Duration::from_secs(10));
        assert_eq!(c.code, exit::INVALID);
        let doc = doc_of(&c);
        assert_eq!(doc["overall"], "invalid");
        assert_eq!(doc["models"][0]["model"], "linearizable");
        assert!(doc["models"][0]["explanation"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
    }

    #[test]
    fn a_good_history_is_valid_and_implies_the_weaker_models() {
        let p = paired(vec![
            ev(0, 0, EventType::Invoke, "write", Value::from(1)),
            ev(1, 0, EventType::Ok, "write", Value::from(1)),
            ev(2, 1, EventType::Invoke, "read", Value::Null),
            ev(3, 1, EventType::Ok, "read", Value::from(1)),
        ]);
        let req = parse_check(
            &["claimed".into()],
            Workload::Register,
            &["linearizable".into()],
        )
        .expect("ok");
        let c = check(&p, &req, Duration::from_secs(10));
        assert_eq!(c.code, exit::VALID);
        let doc = doc_of(&c);
        assert_eq!(doc["strongest"], json!(["linearizable"]));
        let ryw = doc["models"]
            .as_array()
            .and_then(|m| m.iter().find(|e| e["model"] == "ryw"))
            .cloned();
        assert_eq!(ryw.map(|e| e["result"].clone()), Some(json!("implied")));
    }

    #[test]
    fn nothing_claimed_exits_zero() {
        let p = paired(vec![
            ev(0, 0, EventType::Invoke, "read", Value::Null),
            ev(1, 0, EventType::Ok, "read", Value::from(9)),
        ]);
        let req = parse_check(&["claimed".into()], Workload::Register, &[]).expect("ok");
        assert_eq!(check(&p, &req, Duration::from_secs(5)).code, exit::VALID);
        let req = parse_check(&["linearizable".into()], Workload::Register, &[]).expect("ok");
        assert_eq!(
            check(&p, &req, Duration::from_secs(5)).code,
            exit::INVALID,
            "a read of a value never written"
        );
    }

    fn txn_history(lost_update: bool) -> Paired {
        use EventType::*;
        let second = if lost_update {
            json!([1])
        } else {
            json!([1, 2])
        };
        paired(vec![
            ev(0, 0, Invoke, "txn", json!([["append", 1, 1]])),
            ev(1, 0, Ok, "txn", json!([["append", 1, 1]])),
            ev(
                2,
                1,
                Invoke,
                "txn",
                json!([["r", 1, null], ["append", 1, 2]]),
            ),
            ev(
                3,
                2,
                Invoke,
                "txn",
                json!([["r", 1, null], ["append", 1, 3]]),
            ),
            ev(4, 1, Ok, "txn", json!([["r", 1, [1]], ["append", 1, 2]])),
            ev(5, 2, Ok, "txn", json!([["r", 1, second], ["append", 1, 3]])),
            ev(6, 0, Invoke, "txn", json!([["r", 1, null]])),
            ev(7, 0, Ok, "txn", json!([["r", 1, [1, 2, 3]]])),
        ])
    }

    #[test]
    fn a_transactional_history_is_checked_with_the_isolation_models() {
        use crate::campaign::plan::parse_txn_check;
        let claimed = ["strict-serializable".to_string()];
        let req = parse_txn_check(&["claimed".into()], &claimed).expect("ok");
        let good = check(&txn_history(false), &req, Duration::from_secs(10));
        assert_eq!(good.code, exit::VALID);
        assert_eq!(
            good.strongest(),
            vec![AnyModel::Txn(TxnModel::StrictSerializable)]
        );
        let bad = check(&txn_history(true), &req, Duration::from_secs(10));
        assert_eq!(bad.code, exit::INVALID);
        let t = bad.txn.as_ref().expect("transactional");
        // The events are 10 ns apart: the first one-second cut holds the whole history.
        assert_eq!(t.first_violation_s, Some(1.0));
        assert_eq!(good.txn.as_ref().and_then(|t| t.first_violation_s), None);
        assert!(
            t.anomalies.iter().any(|a| a == "lost-update"),
            "{:?}",
            t.anomalies
        );
        let doc = serde_json::to_value(campaign_doc(&bad, bad.code)).expect("serialises");
        assert_eq!(doc["overall"], "invalid");
        let ss = doc["models"]
            .as_array()
            .and_then(|m| m.iter().find(|e| e["model"] == "strict-serializable"))
            .cloned()
            .expect("a row for the claim");
        assert_eq!(
            (ss["result"].clone(), ss["claimed"].clone()),
            (json!("invalid"), json!(true))
        );
        assert!(
            ss["explanation"]
                .as_str()
                .is_some_and(|e| e.contains("lost-update")),
            "{ss}"
        );
        // A register model is not an isolation model.
        assert!(parse_txn_check(&["linearizable".into()], &claimed).is_err());
    }

    #[test]
    fn a_cut_keeps_what_was_invoked_and_counts_what_was_in_flight_as_info() {
        use faultline_history::Outcome;
        let p = txn_history(true);
        // At 45 ns: T1 (invoked 20, done 40) is ok; T2 (invoked 30, done 50) in flight.
        let cut = cut_at(&p, 45);
        assert_eq!(cut.ops.len(), 3);
        assert_eq!(cut.ops[1].outcome, Outcome::Ok);
        assert_eq!(cut.ops[2].outcome, Outcome::Info);
        assert_eq!(cut.ops[2].result, cut.ops[2].argument);
        assert_eq!(cut.ops[2].complete_time, None);
        // The lost update needs T2's read: not visible in that cut, visible in the whole.
        let req = crate::campaign::plan::parse_txn_check(
            &["claimed".into()],
            &["strict-serializable".to_string()],
        )
        .expect("ok");
        assert_eq!(check(&cut, &req, Duration::from_secs(5)).code, exit::VALID);
        assert_eq!(
            check(&cut_at(&p, 1_000), &req, Duration::from_secs(5)).code,
            exit::INVALID
        );
    }

    #[test]
    fn with_no_isolation_claimed_every_model_is_checked_and_none_decides() {
        use crate::campaign::plan::parse_txn_check;
        let req = parse_txn_check(&["claimed".into()], &[]).expect("ok");
        assert_eq!(req.txn.len(), TxnModel::ALL.len());
        assert!(req.txn_decisive.is_empty());
        let c = check(&txn_history(true), &req, Duration::from_secs(10));
        assert_eq!(c.code, exit::VALID, "nothing claimed decides the exit code");
        assert!(c.any_violation());
        let rows = c.rows();
        let row = |m| {
            rows.iter()
                .find(|r| r.model == AnyModel::Txn(m))
                .map(|r| r.status.clone())
        };
        assert_eq!(row(TxnModel::Serializable), Some(Status::Invalid));
        assert_eq!(row(TxnModel::ReadCommitted), Some(Status::Valid));
        let doc = serde_json::to_value(campaign_doc(&c, c.code)).expect("serialises");
        assert_eq!(doc["exit_meaning"], NOTHING_CLAIMED);
        assert!(doc["strongest"].as_array().is_some_and(|s| !s.is_empty()));
    }
}
