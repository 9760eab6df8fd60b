//! The model table: implied and ruled-out rows, the strongest models, text and JSON.

mod causal_support;

use causal_support::{history, r, w, CHECKED};
use faultline_checkers::{
    check_models, model_table, ConsistencyOptions, ModelName, RowStatus, Verdict,
};

fn unknown() -> Verdict {
    Verdict::Unknown {
        reason: "budget".into(),
        undecided: Vec::new(),
    }
}

fn row(t: &faultline_checkers::ModelTable, m: ModelName) -> RowStatus {
    t.rows
        .iter()
        .find(|r| r.model == m)
        .map(|r| r.status.clone())
        .unwrap_or(RowStatus::NotChecked)
}

#[test]
fn a_valid_strong_model_implies_the_weaker_ones() {
    let t = model_table(vec![
        (ModelName::Linearizable, Verdict::Valid),
        (ModelName::Cm, unknown()),
    ]);
    assert_eq!(row(&t, ModelName::Linearizable), RowStatus::Valid);
    assert_eq!(
        row(&t, ModelName::Cm),
        RowStatus::Implied {
            by: ModelName::Linearizable
        }
    );
    assert_eq!(
        row(&t, ModelName::Wfr),
        RowStatus::Implied {
            by: ModelName::Linearizable
        }
    );
    assert_eq!(t.strongest, vec![ModelName::Linearizable]);
}

#[test]
fn a_weak_violation_rules_out_the_stronger_models() {
    let p = history(&[vec![w("x", 1), r("x", None)]]);
    let v = check_models(
        &p,
        &[ModelName::Ryw, ModelName::Mr],
        &ConsistencyOptions::default(),
    );
    let t = model_table(v);
    assert_eq!(row(&t, ModelName::Ryw), RowStatus::Invalid);
    assert_eq!(row(&t, ModelName::Mr), RowStatus::Valid);
    for m in [
        ModelName::Pram,
        ModelName::Cc,
        ModelName::Cm,
        ModelName::Ccv,
        ModelName::Sequential,
        ModelName::Linearizable,
    ] {
        assert_eq!(
            row(&t, m),
            RowStatus::RuledOut { by: ModelName::Ryw },
            "{m}"
        );
    }
    // Neither implied nor ruled out by what was checked.
    assert_eq!(row(&t, ModelName::Mw), RowStatus::NotChecked);
    assert_eq!(t.strongest, vec![ModelName::Mr]);
    let text = t.render_text();
    assert!(text.contains("ruled out: ryw is violated"), "{text}");
    assert!(text.contains("[ryw] ryw violated"), "{text}");
}

#[test]
fn unknown_stays_unknown_and_is_never_counted_as_held() {
    let t = model_table(vec![
        (ModelName::Sequential, unknown()),
        (ModelName::Cc, Verdict::Valid),
    ]);
    assert_eq!(
        row(&t, ModelName::Sequential),
        RowStatus::Unknown {
            reason: "budget".into()
        }
    );
    assert_eq!(row(&t, ModelName::Ccv), RowStatus::NotChecked);
    assert_eq!(t.strongest, vec![ModelName::Cc]);
}

#[test]
fn concurrent_strongest_models_are_all_listed_and_json_has_every_row() {
    // CCv and CM both hold while sequential is violated: both are the strongest.
    let t = model_table(vec![
        (
            ModelName::Sequential,
            Verdict::Invalid {
                witness: Box::new(dummy_witness()),
            },
        ),
        (ModelName::Ccv, Verdict::Valid),
        (ModelName::Cm, Verdict::Valid),
    ]);
    assert_eq!(t.strongest, vec![ModelName::Ccv, ModelName::Cm]);
    assert_eq!(
        row(&t, ModelName::Linearizable),
        RowStatus::RuledOut {
            by: ModelName::Sequential
        }
    );
    let json = serde_json::to_value(&t).expect("serialises");
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(10));
    assert_eq!(json["rows"][0]["model"], "linearizable");
    assert_eq!(json["rows"][0]["status"], "ruled-out");
    assert_eq!(json["rows"][0]["by"], "sequential");
    assert_eq!(json["strongest"], serde_json::json!(["ccv", "cm"]));
}

#[test]
fn checking_every_model_of_a_sequential_history_gives_sequential_as_strongest() {
    let p = history(&[
        vec![w("x", 1), r("y", None), r("x", Some(1))],
        vec![r("x", Some(1)), w("y", 2)],
    ]);
    let t = model_table(check_models(&p, &CHECKED, &ConsistencyOptions::default()));
    assert_eq!(t.strongest, vec![ModelName::Sequential]);
    assert_eq!(row(&t, ModelName::Linearizable), RowStatus::NotChecked);
}

fn dummy_witness() -> faultline_checkers::Witness {
    faultline_checkers::Witness {
        model: "sequential".into(),
        kind: "no-sequential-order".into(),
        key: None,
        summary: "sequential violated".into(),
        ops: Vec::new(),
        steps: Vec::new(),
        minimality: faultline_checkers::Minimality::NotMinimised,
    }
}
