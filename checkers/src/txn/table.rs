//! The table of transactional models a history satisfies: the lattice of
//! [`TxnModel::implies`] applied to the verdicts of the models checked, as
//! `crate::lattice::model_table` does for the register models.

use super::models::TxnModel;
use crate::verdict::Verdict;
use serde::Serialize;
use std::fmt::Write as _;

/// The status of one model in a [`TxnModelTable`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum TxnRowStatus {
    /// Checked and valid.
    Valid,
    /// Checked and violated; the witness is in the row's verdict.
    Invalid,
    /// The checker could not decide.
    Unknown {
        /// Why.
        reason: String,
    },
    /// Valid because a stronger model holds.
    Implied {
        /// The stronger model that held.
        by: TxnModel,
    },
    /// Violated because a weaker model is violated.
    RuledOut {
        /// The weaker model whose witness rules this one out.
        by: TxnModel,
    },
    /// Neither checked nor decided by the lattice.
    NotChecked,
}

/// One row of a [`TxnModelTable`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxnRow {
    /// The model.
    pub model: TxnModel,
    /// What is known about it.
    #[serde(flatten)]
    pub status: TxnRowStatus,
    /// The checker's own verdict, if it was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

/// What a transactional history satisfies, model by model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxnModelTable {
    /// One row per model, strongest first.
    pub rows: Vec<TxnRow>,
    /// The strongest models that held (valid or implied).
    pub strongest: Vec<TxnModel>,
}

/// Builds the table of every transactional model from the verdicts of those checked.
pub fn txn_model_table(verdicts: Vec<(TxnModel, Verdict)>) -> TxnModelTable {
    let own = |m: TxnModel| verdicts.iter().find(|(n, _)| *n == m).map(|(_, v)| v);
    let rows: Vec<TxnRow> = TxnModel::ALL
        .into_iter()
        .map(|m| {
            let v = own(m);
            let weaker_invalid = TxnModel::ALL
                .into_iter()
                .find(|&w| m.stronger_than(w) && matches!(own(w), Some(Verdict::Invalid { .. })));
            let stronger_valid = TxnModel::ALL
                .into_iter()
                .find(|&s| s.stronger_than(m) && matches!(own(s), Some(Verdict::Valid)));
            let status = match (v, weaker_invalid, stronger_valid) {
                (Some(Verdict::Invalid { .. }), _, _) => TxnRowStatus::Invalid,
                (_, Some(w), _) => TxnRowStatus::RuledOut { by: w },
                (Some(Verdict::Valid), _, _) => TxnRowStatus::Valid,
                (_, _, Some(s)) => TxnRowStatus::Implied { by: s },
                (Some(Verdict::Unknown { reason, .. }), _, _) => TxnRowStatus::Unknown {
                    reason: reason.clone(),
                },
                (None, _, _) => TxnRowStatus::NotChecked,
            };
            TxnRow {
                model: m,
                status,
                verdict: v.cloned(),
            }
        })
        .collect();
    let held = |m: TxnModel| {
        rows.iter().any(|r| {
            r.model == m && matches!(r.status, TxnRowStatus::Valid | TxnRowStatus::Implied { .. })
        })
    };
    let strongest = TxnModel::ALL
        .into_iter()
        .filter(|&m| {
            held(m)
                && !TxnModel::ALL
                    .into_iter()
                    .any(|s| s.stronger_than(m) && held(s))
        })
        .collect();
    TxnModelTable { rows, strongest }
}

impl TxnModelTable {
    /// The table as plain text, followed by the witness of each violated model whose
    /// witness differs from the one printed before it.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        for r in &self.rows {
            let what = match &r.status {
                TxnRowStatus::Valid => "valid".to_string(),
                TxnRowStatus::Invalid => match r.verdict.as_ref().and_then(Verdict::witness) {
                    Some(w) => format!("invalid: {}", w.summary),
                    None => "invalid".to_string(),
                },
                TxnRowStatus::Unknown { reason } => format!("unknown: {reason}"),
                TxnRowStatus::Implied { by } => format!("valid (implied: {by} holds)"),
                TxnRowStatus::RuledOut { by } => format!("invalid (ruled out: {by} is violated)"),
                TxnRowStatus::NotChecked => "not checked".to_string(),
            };
            let _ = writeln!(s, "  {:<34} {what}", r.model.as_str());
        }
        let strongest: Vec<&str> = self.strongest.iter().map(|m| m.as_str()).collect();
        let _ = writeln!(
            s,
            "Strongest models that held: {}",
            if strongest.is_empty() {
                "none".to_string()
            } else {
                strongest.join(", ")
            }
        );
        let mut shown: Vec<String> = Vec::new();
        for r in &self.rows {
            if let (TxnRowStatus::Invalid, Some(w)) =
                (&r.status, r.verdict.as_ref().and_then(Verdict::witness))
            {
                let text = w.render_text();
                if shown.contains(&text) {
                    let _ = writeln!(s, "\n[{}] the same witness as above", r.model);
                    continue;
                }
                let _ = writeln!(s, "\n[{}] {}", r.model, text.trim_end());
                shown.push(text);
            }
        }
        s
    }
}
