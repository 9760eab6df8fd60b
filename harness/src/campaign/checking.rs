//! Checking a campaign's history: linearizability with the workload's data model, the
//! other models through the lattice, the table of every model, the exit code from the
//! models that decide it, which `reporting::verdict_doc` turns into `verdict.json`.

use crate::campaign::plan::CheckRequest;
use crate::exit;
use faultline_checkers::lattice::{
    check_models, model_table, ConsistencyOptions, ModelName, ModelTable, RowStatus,
};
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
}

/// Runs the checkers asked for on `paired`.
pub fn check(paired: &Paired, request: &CheckRequest, time_limit: Duration) -> Checked {
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
    }
}

/// `verdict.json` of a campaign's verdicts, with the exit code the campaign ends with
/// (`code`: the verdicts' own, or unknown for a run cut short that found nothing). When
/// the target claims nothing under the plan, the overall result still says what the
/// checked models found and the exit meaning says why it does not decide.
pub fn campaign_doc(checked: &Checked, code: u8) -> faultline_results::VerdictDoc {
    use faultline_results::{exit_meaning, ResultKind};
    let verdicts: Vec<_> = checked
        .verdicts
        .iter()
        .map(|(m, v, _)| (*m, v.clone()))
        .collect();
    let check_ms = checked.verdicts.iter().map(|(_, _, ms)| ms).sum();
    let mut doc =
        crate::reporting::verdict_doc(&verdicts, &checked.decisive, checked.ops as u64, check_ms);
    doc.exit_code = code;
    if checked.decisive.is_empty() {
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
}
