//! faultline-results: the store layout, run metadata and reports of faultline.
//!
//! A run lives in `store/<target>/<YYYYMMDDTHHMMSS>/` ([`store`]) with `run.json`
//! ([`RunInfo`]), `history.jsonl`, `verdict.json` ([`VerdictDoc`], schema in
//! `VERDICT_SCHEMA.md`), `report.html` (self-contained), `report.md` (for a pull request
//! or a CI step summary) and `junit.xml`; `store/latest` points at the newest run.
//!
//! Reports are built as data first ([`stats::Analysis`], fault windows, series,
//! timeline geometry) and rendered afterwards. HTML goes through a template engine with
//! auto-escaping; Markdown and XML through escaping functions of their own.
//!
//! The CLI calls [`write_reports`] at the end of a run or a check, [`regenerate`] for
//! `faultline report RUN_DIR`, and [`append_step_summary`] when `$GITHUB_STEP_SUMMARY`
//! is set.

#![warn(missing_docs)]

pub mod chart;
pub mod faults;
mod html;
mod junit;
mod markdown;
pub mod plots;
mod run;
pub mod stats;
pub mod store;
pub mod timeline;
mod verdicts;
mod write;

pub use html::render_html;
pub use junit::{render_junit, xml_escape};
pub use markdown::{append_step_summary, md_code_block, md_text, render_markdown};
pub use run::{OpCounts, RunInfo, RUN_SCHEMA};
pub use store::{create_run_dir, find_run, update_latest, LatestKind, Utc};
pub use verdicts::{
    exit_meaning, ModelEntry, ResultKind, VerdictDoc, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID,
    VERDICT_SCHEMA,
};
pub use write::{read_run, read_verdicts, regenerate, write_reports, ReportInput, ReportPaths};

use std::path::PathBuf;

/// Everything that can go wrong while storing a run or writing its reports.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A file or folder could not be read, written or created.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`create run folder`, `write`, ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file (`run.json`, `verdict.json`) could not be parsed or written.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The stored history could not be read.
    #[error(transparent)]
    History(#[from] faultline_history::HistoryError),
    /// A path given to find a run does not lead to one.
    #[error("no faultline run at {}: {reason}", path.display())]
    NoRun {
        /// The path given.
        path: PathBuf,
        /// Why it is not a run.
        reason: String,
    },
    /// A target name that cannot be used as a folder name.
    #[error(
        "target name {0:?} cannot name a folder of the store (use letters, digits, '.', '-', '_')"
    )]
    BadTarget(String),
    /// `verdict.json` declares a schema this version does not read.
    #[error("{}: schema {found:?} is not supported (expected {expected:?})", path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// The schema found.
        found: String,
        /// The schema this crate reads.
        expected: &'static str,
    },
    /// The HTML template failed to render (a bug in this crate, reported rather than hidden).
    #[error("rendering {what}: {source}")]
    Template {
        /// Which report.
        what: &'static str,
        /// The template engine's error.
        #[source]
        source: minijinja::Error,
    },
}

impl ResultsError {
    /// An I/O error while doing `action` on `path`.
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ResultsError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}
