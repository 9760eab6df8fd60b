//! From checker verdicts to the stored reports of `faultline-results`.
//!
//! Both `faultline check --report` and a campaign end here, so the verdict document is
//! built one way only.

use anyhow::{Context, Result};
use faultline_checkers::txn::{txn_model_table, TxnModel, TxnRowStatus};
use faultline_checkers::{model_table, ModelName, RowStatus, Verdict};
use faultline_history::History;
use faultline_results::{
    append_step_summary, io_is_user_error, write_reports, ModelEntry, ReportInput, ReportPaths,
    ResultsError, RunInfo, VerdictDoc,
};
use std::path::Path;

/// How a row of a model table reads, whichever table it comes from.
enum RowKind {
    RuledOut(String),
    Implied(String),
    Other,
}

/// One entry of the verdict document: a row's model, what the table says of it and the
/// checker's own verdict, with the figures only for a model that was checked.
fn entry(
    name: String,
    kind: RowKind,
    verdict: Option<&Verdict>,
    claimed: bool,
    ops: u64,
    check_ms: u64,
) -> ModelEntry {
    let entry = match (kind, verdict) {
        (RowKind::RuledOut(by), _) => ModelEntry::ruled_out(&name, &by),
        // A stronger model held: the row holds whatever the model's own checker could
        // decide (unknown with failed cas, say), as the console and `verify` say.
        (RowKind::Implied(by), None | Some(Verdict::Unknown { .. })) => {
            ModelEntry::implied(&name, &by)
        }
        (_, Some(v)) => ModelEntry::checked(&name, v),
        _ => ModelEntry::not_checked(&name),
    };
    let figures = verdict.is_some();
    entry
        .claimed(claimed)
        .with_figures(figures.then_some(ops), figures.then_some(check_ms))
}

/// The verdict document of the models checked. `claims` are the models the target claims
/// (empty for an imported history: then every checked model counts).
pub fn verdict_doc(
    verdicts: &[(ModelName, Verdict)],
    claims: &[ModelName],
    ops: u64,
    check_ms: u64,
) -> VerdictDoc {
    let table = model_table(verdicts.to_vec());
    let entries = table
        .rows
        .iter()
        .map(|row| {
            let kind = match &row.status {
                RowStatus::RuledOut { by } => RowKind::RuledOut(by.to_string()),
                RowStatus::Implied { by } => RowKind::Implied(by.to_string()),
                _ => RowKind::Other,
            };
            let claimed = claims.contains(&row.model);
            entry(
                row.model.to_string(),
                kind,
                row.verdict.as_ref(),
                claimed,
                ops,
                check_ms,
            )
        })
        .collect();
    VerdictDoc::new(
        entries,
        table.strongest.iter().map(ToString::to_string).collect(),
    )
}

/// The verdict document of the transactional models checked. `claims` are the isolation
/// models the target claims (empty for an imported history: then every checked model
/// counts).
pub fn txn_verdict_doc(
    verdicts: &[(TxnModel, Verdict)],
    claims: &[TxnModel],
    ops: u64,
    check_ms: u64,
) -> VerdictDoc {
    let table = txn_model_table(verdicts.to_vec());
    let entries = table
        .rows
        .iter()
        .map(|row| {
            let kind = match &row.status {
                TxnRowStatus::RuledOut { by } => RowKind::RuledOut(by.to_string()),
                TxnRowStatus::Implied { by } => RowKind::Implied(by.to_string()),
                _ => RowKind::Other,
            };
            entry(
                row.model.to_string(),
                kind,
                row.verdict.as_ref(),
                claims.contains(&row.model),
                ops,
                check_ms,
            )
        })
        .collect();
    VerdictDoc::new(
        entries,
        table.strongest.iter().map(ToString::to_string).collect(),
    )
}

/// Writes every report into `dir` and, when `$GITHUB_STEP_SUMMARY` is set, appends the
/// Markdown summary there.
pub fn write_all(
    dir: &Path,
    run: &RunInfo,
    history: &History,
    doc: &VerdictDoc,
) -> Result<ReportPaths> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let input = ReportInput {
        run,
        history,
        verdicts: doc,
        html_location: None,
    };
    let paths = write_reports(dir, &input)
        .with_context(|| format!("write reports into {}", dir.display()))?;
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let md = std::fs::read_to_string(&paths.markdown)
            .with_context(|| format!("read {}", paths.markdown.display()))?;
        append_step_summary(Path::new(&summary), &md).context("append to $GITHUB_STEP_SUMMARY")?;
    }
    Ok(paths)
}

/// The exit code an error of writing or reading reports stands for: 254 when the user can
/// fix it (a folder that cannot be written, a file where a folder should be, a damaged
/// stored file), 255 otherwise (a full disk, a device error, a bug).
pub fn error_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(r) = cause.downcast_ref::<ResultsError>() {
            return user_or_harness(r.is_user_error());
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return user_or_harness(io_is_user_error(io));
        }
    }
    crate::exit::HARNESS_FAILURE
}

fn user_or_harness(user: bool) -> u8 {
    if user {
        crate::exit::BAD_INPUT
    } else {
        crate::exit::HARNESS_FAILURE
    }
}

/// Refuses a report folder that cannot be written before any work (exit 254): creates it
/// and writes and removes a file in it. `flag` names the option (`--report`).
pub fn check_writable(dir: &Path, flag: &str) -> std::result::Result<(), String> {
    let probe = dir.join(format!(".faultline-probe-{}", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            format!(
                "{flag} {}: cannot write into it ({e}); choose a folder you can write to",
                dir.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_implied_by_a_valid_stronger_one_is_recorded_as_held_even_when_its_own_check_was_undecided(
    ) {
        let unknown = Verdict::Unknown {
            reason: "failed cas not modelled".into(),
            undecided: Vec::new(),
        };
        let doc = verdict_doc(
            &[
                (ModelName::Sequential, Verdict::Valid),
                (ModelName::Ryw, unknown.clone()),
                (ModelName::Mr, Verdict::Valid),
            ],
            &[ModelName::Sequential],
            10,
            1,
        );
        let result = |m: &str| {
            doc.models
                .iter()
                .find(|e| e.model == m)
                .map(|e| e.result.as_str().to_string())
        };
        assert_eq!(result("sequential").as_deref(), Some("valid"));
        assert_eq!(result("ryw").as_deref(), Some("implied"));
        assert_eq!(result("mr").as_deref(), Some("valid"));
        assert_eq!(result("wfr").as_deref(), Some("implied"));
        assert_eq!(result("linearizable").as_deref(), Some("not-checked"));
        // Without the stronger model, the undecided check stays unknown.
        let alone = verdict_doc(&[(ModelName::Ryw, unknown)], &[], 10, 1);
        assert_eq!(
            alone
                .models
                .iter()
                .find(|e| e.model == "ryw")
                .map(|e| e.result.as_str()),
            Some("unknown")
        );
    }
}
