//! `verdict.json`: the verdict of every model, the strongest models held and the exit code,
//! in a stable schema (documented in `VERDICT_SCHEMA.md`).

use crate::run::OpCounts;
use crate::text::{clip_lines, clip_text, clip_verdict, clip_witness, LINE_LIMIT, NAME_LIMIT};
use faultline_checkers::{Verdict, Witness};
use serde::{Deserialize, Serialize};

/// The schema name and version written in `verdict.json`.
pub const VERDICT_SCHEMA: &str = "faultline-verdict/1";

/// Exit code: every claimed model valid.
pub const EXIT_VALID: u8 = 0;
/// Exit code: a violation was found.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: some model could not be decided, none was violated.
pub const EXIT_UNKNOWN: u8 = 2;

/// What is known about one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultKind {
    /// Checked and valid.
    Valid,
    /// Checked and violated: `witness` shows how.
    Invalid,
    /// Checked, but the checker could not decide: `reason` says why.
    Unknown,
    /// Not checked itself, valid because the stronger model `by` is valid.
    Implied,
    /// Not checked itself (or checked later), violated because the weaker model `by` is.
    RuledOut,
    /// Neither checked nor decided by the lattice.
    NotChecked,
}

impl ResultKind {
    /// The name used in `verdict.json` and the reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultKind::Valid => "valid",
            ResultKind::Invalid => "invalid",
            ResultKind::Unknown => "unknown",
            ResultKind::Implied => "implied",
            ResultKind::RuledOut => "ruled-out",
            ResultKind::NotChecked => "not-checked",
        }
    }

    /// Whether this result means the model holds.
    pub fn holds(self) -> bool {
        matches!(self, ResultKind::Valid | ResultKind::Implied)
    }

    /// Whether this result means the model is violated.
    pub fn violated(self) -> bool {
        matches!(self, ResultKind::Invalid | ResultKind::RuledOut)
    }
}

/// One model's row of `verdict.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The model (`linearizable`, `sequential`, `cc`, `ryw`, ...).
    pub model: String,
    /// What is known about it.
    pub result: ResultKind,
    /// Whether the target claims this model (claimed models decide the exit code).
    #[serde(default)]
    pub claimed: bool,
    /// Whether a checker ran for this model.
    #[serde(default)]
    pub checked: bool,
    /// For `implied` and `ruled-out`: the model that decided this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// For `unknown`: why the checker could not decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `unknown`: the keys (or parts) left undecided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undecided: Vec<String>,
    /// For `invalid`: the witness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
    /// For `invalid`: the witness explained in plain text (`Witness::render_text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// How many operations the checker was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<u64>,
    /// How long the check took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_ms: Option<u64>,
}

impl ModelEntry {
    fn bare(model: &str, result: ResultKind) -> ModelEntry {
        ModelEntry {
            model: model.to_string(),
            result,
            claimed: false,
            checked: false,
            by: None,
            reason: None,
            undecided: Vec::new(),
            witness: None,
            explanation: None,
            ops: None,
            check_ms: None,
        }
    }

    /// A model a checker decided, with the checker's verdict (long values, names and
    /// lines clipped, [`crate::text`]).
    pub fn checked(model: &str, verdict: &Verdict) -> ModelEntry {
        let verdict = &clip_verdict(verdict);
        let mut e = match verdict {
            Verdict::Valid => ModelEntry::bare(model, ResultKind::Valid),
            Verdict::Invalid { witness } => {
                let mut e = ModelEntry::bare(model, ResultKind::Invalid);
                e.explanation = Some(clip_lines(&witness.render_text(), LINE_LIMIT).into_owned());
                e.witness = Some(witness.as_ref().clone());
                e
            }
            Verdict::Unknown { reason, undecided } => {
                let mut e = ModelEntry::bare(model, ResultKind::Unknown);
                e.reason = Some(reason.clone());
                e.undecided = undecided.clone();
                e
            }
        };
        e.checked = true;
        e
    }

    /// A model that holds because the stronger model `by` holds.
    pub fn implied(model: &str, by: &str) -> ModelEntry {
        let mut e = ModelEntry::bare(model, ResultKind::Implied);
        e.by = Some(by.to_string());
        e
    }

    /// A model that is violated because the weaker model `by` is.
    pub fn ruled_out(model: &str, by: &str) -> ModelEntry {
        let mut e = ModelEntry::bare(model, ResultKind::RuledOut);
        e.by = Some(by.to_string());
        e
    }

    /// A model neither checked nor decided.
    pub fn not_checked(model: &str) -> ModelEntry {
        ModelEntry::bare(model, ResultKind::NotChecked)
    }

    /// The same entry with every text from a history or a checker clipped as
    /// [`ModelEntry::checked`] clips it (for entries read from a file).
    pub fn clipped(mut self) -> ModelEntry {
        if let Some(w) = &self.witness {
            let w = clip_witness(w);
            if let Some(x) = &self.explanation {
                self.explanation = Some(clip_lines(x, LINE_LIMIT).into_owned());
            }
            self.witness = Some(w);
        }
        if let Some(r) = &self.reason {
            self.reason = Some(clip_lines(r, LINE_LIMIT).into_owned());
        }
        for k in &mut self.undecided {
            *k = clip_text(k, NAME_LIMIT).into_owned();
        }
        self.model = clip_text(&self.model, NAME_LIMIT).into_owned();
        if let Some(by) = &self.by {
            self.by = Some(clip_text(by, NAME_LIMIT).into_owned());
        }
        self
    }

    /// The same entry, marked as claimed by the target (or asked for by the user).
    pub fn claimed(mut self, claimed: bool) -> ModelEntry {
        self.claimed = claimed;
        self
    }

    /// The same entry with the checker's figures.
    pub fn with_figures(mut self, ops: Option<u64>, check_ms: Option<u64>) -> ModelEntry {
        self.ops = ops;
        self.check_ms = check_ms;
        self
    }

    /// One line of detail: the witness summary, the reason, or which model decided it.
    pub fn detail(&self) -> String {
        match self.result {
            ResultKind::Valid => "checked: no violation found".into(),
            ResultKind::Invalid => match &self.witness {
                Some(w) => w.summary.clone(),
                None => "violated (no witness recorded)".into(),
            },
            ResultKind::Unknown => match &self.reason {
                Some(r) => format!("undecided: {r}"),
                None => "undecided (no reason recorded)".into(),
            },
            ResultKind::Implied => match &self.by {
                Some(by) => format!("holds because {by} holds"),
                None => "holds because a stronger model holds".into(),
            },
            ResultKind::RuledOut => match &self.by {
                Some(by) => format!("violated because {by} is violated"),
                None => "violated because a weaker model is violated".into(),
            },
            ResultKind::NotChecked => "not checked".into(),
        }
    }
}

/// What the exit code means, in words.
pub fn exit_meaning(code: u8) -> &'static str {
    match code {
        EXIT_VALID => "every claimed model valid",
        EXIT_INVALID => "a violation found",
        EXIT_UNKNOWN => "some claimed model undecided, none violated",
        254 => "bad arguments or plan",
        255 => "harness failure",
        _ => "unexpected exit code",
    }
}

/// The whole `verdict.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictDoc {
    /// Always [`VERDICT_SCHEMA`].
    pub schema: String,
    /// `valid`, `invalid` or `unknown`: the merge of the deciding models' results
    /// (invalid beats unknown beats valid).
    pub overall: ResultKind,
    /// The exit code the run ends with: 0 valid, 1 invalid, 2 unknown.
    pub exit_code: u8,
    /// The exit code in words.
    pub exit_meaning: String,
    /// The strongest models that held (valid or implied), strongest first.
    pub strongest: Vec<String>,
    /// One entry per model, strongest first.
    pub models: Vec<ModelEntry>,
    /// Client operations of the history by outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_ops: Option<OpCounts>,
}

impl VerdictDoc {
    /// Builds the document and decides the overall result and exit code.
    ///
    /// The deciding models are the claimed ones, or every checked one when none is
    /// claimed. Any of them violated (invalid or ruled out) gives 1; else any of them
    /// unknown or not checked gives 2; else 0. With no deciding model at all the result is
    /// unknown (2): nothing was shown to hold.
    pub fn new(models: Vec<ModelEntry>, strongest: Vec<String>) -> VerdictDoc {
        let any_claimed = models.iter().any(|m| m.claimed);
        let deciding: Vec<&ModelEntry> = models
            .iter()
            .filter(|m| if any_claimed { m.claimed } else { m.checked })
            .collect();
        let overall = if deciding.iter().any(|m| m.result.violated()) {
            ResultKind::Invalid
        } else if deciding.is_empty() || deciding.iter().any(|m| !m.result.holds()) {
            ResultKind::Unknown
        } else {
            ResultKind::Valid
        };
        let exit_code = match overall {
            ResultKind::Invalid => EXIT_INVALID,
            ResultKind::Valid => EXIT_VALID,
            _ => EXIT_UNKNOWN,
        };
        VerdictDoc {
            schema: VERDICT_SCHEMA.to_string(),
            overall,
            exit_code,
            exit_meaning: exit_meaning(exit_code).to_string(),
            strongest,
            models,
            history_ops: None,
        }
    }

    /// The same document with every text from a history or a checker clipped
    /// ([`ModelEntry::clipped`]), for a document read from a file or built by hand.
    pub fn clipped(mut self) -> VerdictDoc {
        self.models = self.models.into_iter().map(ModelEntry::clipped).collect();
        self.strongest = self
            .strongest
            .iter()
            .map(|s| clip_text(s, NAME_LIMIT).into_owned())
            .collect();
        self.exit_meaning = clip_text(&self.exit_meaning, LINE_LIMIT).into_owned();
        self
    }

    /// The same document with the history's operation counts.
    pub fn with_history_ops(mut self, ops: OpCounts) -> VerdictDoc {
        self.history_ops = Some(ops);
        self
    }

    /// The headline of a report: the CSS class and the word. A run whose target claims
    /// nothing and that exits 0 is headlined `no claim`, never a red `invalid` next to
    /// exit 0 (what held and what did not is in the table below it).
    pub fn headline(&self) -> (&'static str, &'static str) {
        let claimed = self.models.iter().any(|m| m.claimed);
        if !claimed && self.exit_code == EXIT_VALID && self.overall != ResultKind::Valid {
            ("unclaimed", "no claim decided")
        } else {
            (self.overall.as_str(), self.overall.as_str())
        }
    }

    /// The strongest models that held, in words; when none did, which models did not hold
    /// and which were not checked (not checked is not "did not hold").
    pub fn strongest_text(&self) -> String {
        if !self.strongest.is_empty() {
            return self.strongest.join(", ");
        }
        let names = |f: fn(ResultKind) -> bool| -> Vec<&str> {
            self.models
                .iter()
                .filter(|m| f(m.result))
                .map(|m| m.model.as_str())
                .collect()
        };
        let failed = names(|r| r.violated());
        let undecided = names(|r| r == ResultKind::Unknown);
        let unchecked = names(|r| r == ResultKind::NotChecked);
        if failed.is_empty() && undecided.is_empty() {
            return "none: no model was checked".into();
        }
        let mut parts = Vec::new();
        if !failed.is_empty() {
            parts.push(format!("did not hold: {}", failed.join(", ")));
        }
        if !undecided.is_empty() {
            parts.push(format!("undecided: {}", undecided.join(", ")));
        }
        if !unchecked.is_empty() {
            parts.push(format!("not checked: {}", unchecked.join(", ")));
        }
        format!("none of the models checked held ({})", parts.join("; "))
    }

    /// The entries that carry a witness, in order.
    pub fn witnesses(&self) -> impl Iterator<Item = (&ModelEntry, &Witness)> {
        self.models
            .iter()
            .filter_map(|m| m.witness.as_ref().map(|w| (m, w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown() -> Verdict {
        Verdict::Unknown {
            reason: "budget".into(),
            undecided: vec!["k1".into()],
        }
    }

    #[test]
    fn exit_code_follows_claimed_models() {
        let doc = VerdictDoc::new(
            vec![
                ModelEntry::checked("linearizable", &unknown()).claimed(true),
                ModelEntry::checked("cc", &Verdict::Valid),
            ],
            vec!["cc".into()],
        );
        assert_eq!((doc.overall, doc.exit_code), (ResultKind::Unknown, 2));

        let doc = VerdictDoc::new(
            vec![
                ModelEntry::ruled_out("linearizable", "cc").claimed(true),
                ModelEntry::checked("ryw", &Verdict::Valid).claimed(true),
            ],
            vec!["ryw".into()],
        );
        assert_eq!((doc.overall, doc.exit_code), (ResultKind::Invalid, 1));

        let doc = VerdictDoc::new(
            vec![
                ModelEntry::checked("sequential", &Verdict::Valid),
                ModelEntry::implied("cc", "sequential").claimed(true),
            ],
            vec!["sequential".into()],
        );
        assert_eq!((doc.overall, doc.exit_code), (ResultKind::Valid, 0));
        assert_eq!(doc.exit_meaning, "every claimed model valid");
    }

    #[test]
    fn nothing_decided_is_unknown_not_valid() {
        let doc = VerdictDoc::new(vec![ModelEntry::not_checked("cc")], vec![]);
        assert_eq!(doc.exit_code, EXIT_UNKNOWN);
        let claimed_unchecked = VerdictDoc::new(
            vec![
                ModelEntry::not_checked("ryw").claimed(true),
                ModelEntry::checked("cc", &Verdict::Valid),
            ],
            vec![],
        );
        assert_eq!(claimed_unchecked.overall, ResultKind::Unknown);
    }

    #[test]
    fn headlines_and_strongest_in_words() {
        let lin_failed = VerdictDoc::new(
            vec![
                ModelEntry::ruled_out("sequential", "cc").claimed(false),
                ModelEntry::checked("linearizable", &unknown()),
                ModelEntry::not_checked("ryw"),
            ],
            vec![],
        );
        assert_eq!(
            lin_failed.strongest_text(),
            "none of the models checked held (did not hold: sequential; undecided: linearizable; not checked: ryw)"
        );
        let nothing = VerdictDoc::new(vec![ModelEntry::not_checked("ryw")], vec![]);
        assert_eq!(nothing.strongest_text(), "none: no model was checked");
        let held = VerdictDoc::new(
            vec![ModelEntry::checked("cc", &Verdict::Valid)],
            vec!["cc".into()],
        );
        assert_eq!(held.strongest_text(), "cc");
        assert_eq!(held.headline(), ("valid", "valid"));
        // Nothing claimed, a violation found, exit 0 (a campaign's document).
        let mut unclaimed =
            VerdictDoc::new(vec![ModelEntry::ruled_out("linearizable", "cc")], vec![]);
        assert_eq!(
            unclaimed.headline(),
            ("unknown", "unknown"),
            "exit 2 as built"
        );
        unclaimed.exit_code = EXIT_VALID;
        assert_eq!(unclaimed.headline(), ("unclaimed", "no claim decided"));
    }

    #[test]
    fn entries_serialise_with_kebab_case_results() {
        let e = ModelEntry::checked("ccv", &unknown()).with_figures(Some(10), Some(3));
        let v = serde_json::to_value(&e).unwrap_or_default();
        assert_eq!(v["result"], "unknown");
        assert_eq!(v["reason"], "budget");
        assert_eq!(v["undecided"][0], "k1");
        assert_eq!(v["check_ms"], 3);
        let r =
            serde_json::to_value(ModelEntry::ruled_out("linearizable", "cc")).unwrap_or_default();
        assert_eq!(r["result"], "ruled-out");
        assert_eq!(r["by"], "cc");
    }
}
