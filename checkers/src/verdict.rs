//! Verdicts and witnesses, built as data first and rendered to text afterwards.

use faultline_history::Operation;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The outcome of checking one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// The history satisfies the model.
    Valid,
    /// The history violates the model; the witness shows how.
    Invalid {
        /// The smallest set of operations found that still violates the model.
        witness: Box<Witness>,
    },
    /// The checker could not decide; never reported as valid.
    Unknown {
        /// Why (budget exhausted, values not unique, ...).
        reason: String,
        /// Keys (or other parts) left undecided, if the check is per key.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        undecided: Vec<String>,
    },
}

impl Verdict {
    /// `valid`, `invalid` or `unknown`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid { .. } => "invalid",
            Verdict::Unknown { .. } => "unknown",
        }
    }

    /// Whether the model holds: `Some(true)` valid, `Some(false)` invalid, `None` unknown.
    pub fn holds(&self) -> Option<bool> {
        match self {
            Verdict::Valid => Some(true),
            Verdict::Invalid { .. } => Some(false),
            Verdict::Unknown { .. } => None,
        }
    }

    /// Merges two verdicts: invalid beats unknown beats valid (DESIGN §3).
    pub fn merge(self, other: Verdict) -> Verdict {
        match (self, other) {
            (v @ Verdict::Invalid { .. }, _) | (_, v @ Verdict::Invalid { .. }) => v,
            (
                Verdict::Unknown {
                    reason: r1,
                    undecided: mut u1,
                },
                Verdict::Unknown {
                    reason: r2,
                    undecided: u2,
                },
            ) => {
                u1.extend(u2);
                let reason = if r1 == r2 { r1 } else { format!("{r1}; {r2}") };
                Verdict::Unknown {
                    reason,
                    undecided: u1,
                }
            }
            (v @ Verdict::Unknown { .. }, _) | (_, v @ Verdict::Unknown { .. }) => v,
            _ => Verdict::Valid,
        }
    }

    /// The witness, if invalid.
    pub fn witness(&self) -> Option<&Witness> {
        match self {
            Verdict::Invalid { witness } => Some(witness),
            _ => None,
        }
    }
}

/// How minimal a witness is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Minimality {
    /// No operation can be removed: minimal by the checker's construction.
    ByConstruction,
    /// Removing any single operation (or cluster) makes it pass: shrunk and re-checked.
    OneMinimal,
    /// Not shrunk.
    NotMinimised,
    /// Several anomalies, one example each, each minimal by construction (a shortest
    /// cycle, or the few transactions a non-cycle anomaly names).
    EachMinimal,
}

/// One operation of a witness with the short label the explanation uses (`A`, `W1`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WitnessOp {
    /// Label used in the steps.
    pub label: String,
    /// The operation as recorded.
    pub op: Operation,
}

/// One step of an explanation: a relation between two operations and why it holds, or a
/// concluding statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Relation name (`session-order`, `reads-from`, `real-time`, `write-order`, ...),
    /// absent for a concluding statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// Label of the operation the relation starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Label of the operation the relation goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The step in plain words.
    pub text: String,
}

impl Step {
    /// A relation step `from -rel-> to` with its reason in words.
    pub fn relation(rel: &str, from: &str, to: &str, text: impl Into<String>) -> Step {
        Step {
            relation: Some(rel.into()),
            from: Some(from.into()),
            to: Some(to.into()),
            text: text.into(),
        }
    }

    /// A plain statement (usually the final contradiction).
    pub fn say(text: impl Into<String>) -> Step {
        Step {
            relation: None,
            from: None,
            to: None,
            text: text.into(),
        }
    }
}

/// Evidence that a history violates a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Witness {
    /// The model violated (`linearizable`, `cc`, `ryw`, ...).
    pub model: String,
    /// The anomaly (`no-linearization`, `write-co-read`, `cyclic-co`, ...).
    pub kind: String,
    /// The key, when the violation is confined to one key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// One sentence summary.
    pub summary: String,
    /// The operations involved, labelled.
    pub ops: Vec<WitnessOp>,
    /// The explanation, step by step.
    pub steps: Vec<Step>,
    /// How minimal `ops` is.
    pub minimality: Minimality,
}

impl Witness {
    /// Renders the witness as plain text (Elle style: Let ..., Then ...).
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.summary);
        if !self.ops.is_empty() {
            let _ = writeln!(s, "Let:");
            for w in &self.ops {
                let _ = writeln!(s, "  {} = {}", w.label, w.op.describe());
            }
        }
        if !self.steps.is_empty() {
            let _ = writeln!(s, "Then:");
            for st in &self.steps {
                let _ = writeln!(s, "  - {}", st.text);
            }
        }
        let m = match self.minimality {
            Minimality::ByConstruction => "minimal by construction",
            Minimality::OneMinimal => "1-minimal: removing any operation makes it pass",
            Minimality::NotMinimised => "not minimised",
            Minimality::EachMinimal => "one example per anomaly, each minimal by construction",
        };
        let _ = writeln!(s, "({} operations, {m})", self.ops.len());
        s
    }
}
