//! faultline-results: the store layout, run metadata and reports of faultline.
//!
//! A run lives in `store/<target>/<YYYYMMDDTHHMMSS>/` ([`store`]) with `run.json`
//! ([`RunInfo`]), `history.jsonl`, `verdict.json` ([`VerdictDoc`], schema in
//! `VERDICT_SCHEMA.md`), `report.html` (self-contained), `report.md` (for a pull request
//! or a CI step summary) and `junit.xml`; `store/latest` points at the newest run.
//!
//! Reports are built as data first ([`stats::Analysis`], fault windows, series,
//! timeline geometry) and rendered afterwards. HTML goes through a template engine with
//! auto-escaping; Markdown and XML through escaping functions of their own. Before any of
//! them, control and bidi characters are shown as escapes by [`text::visible`], and long
//! values are clipped ([`text`]).
//!
//! The CLI calls [`write_reports`] at the end of a run or a check, [`regenerate`] for
//! `faultline report RUN_DIR`, and [`append_step_summary`] when `$GITHUB_STEP_SUMMARY`
//! is set.

#![warn(missing_docs)]

pub mod chart;
pub mod describe;
pub mod faults;
pub mod glossary;
mod html;
pub mod index;
mod junit;
mod markdown;
pub mod plots;
mod run;
pub mod stats;
pub mod store;
pub mod text;
pub mod timeline;
mod verdicts;
mod write;

pub use html::render_html;
pub use junit::{render_junit, xml_escape, xml_text};
pub use markdown::{append_step_summary, md_code_block, md_text, render_markdown};
pub use run::{LiveCheck, LiveFinding, OpCounts, RunInfo, RUN_SCHEMA};
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
    /// Whether the user can fix this by pointing at another file or folder, or by
    /// re-creating a damaged one: a path that does not exist or cannot be written, a file
    /// where a folder is expected (or the reverse), a stored file that does not parse or is
    /// of another schema, a path that leads to no run. Everything else (a full disk, a
    /// failing device, a template that does not render) is a failure of the harness or of
    /// the machine.
    pub fn is_user_error(&self) -> bool {
        match self {
            ResultsError::Io { source, .. } => io_is_user_error(source),
            ResultsError::History(faultline_history::HistoryError::Io { source, .. }) => {
                io_is_user_error(source)
            }
            ResultsError::Json { .. }
            | ResultsError::History(_)
            | ResultsError::NoRun { .. }
            | ResultsError::BadTarget(_)
            | ResultsError::Schema { .. } => true,
            ResultsError::Template { .. } => false,
        }
    }

    /// An I/O error while doing `action` on `path`.
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ResultsError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Whether an I/O error is about the path the user gave (missing, not writable, a file
/// where a folder is expected or the reverse, damaged content) rather than the machine
/// (full disk, device error, out of memory).
pub fn io_is_user_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::NotFound
            | K::PermissionDenied
            | K::AlreadyExists
            | K::InvalidInput
            | K::InvalidData
            | K::UnexpectedEof
    ) {
        return true;
    }
    // Not a directory, is a directory, read-only file system (same numbers on Linux and
    // the BSDs), file name too long (Linux): their ErrorKinds are newer than the minimum
    // Rust of this workspace.
    match e.raw_os_error() {
        Some(20 | 21 | 30) if cfg!(unix) => true,
        Some(36) if cfg!(target_os = "linux") => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn paths_and_damaged_files_are_the_users_to_fix_full_disks_are_not() {
        let io = |e: Error| ResultsError::io("write", std::path::Path::new("x"), e);
        assert!(io(Error::from(ErrorKind::PermissionDenied)).is_user_error());
        assert!(io(Error::from(ErrorKind::NotFound)).is_user_error());
        assert!(io(Error::from_raw_os_error(20)).is_user_error(), "ENOTDIR");
        assert!(io(Error::from_raw_os_error(30)).is_user_error(), "EROFS");
        assert!(!io(Error::from_raw_os_error(28)).is_user_error(), "ENOSPC");
        assert!(!io(Error::from_raw_os_error(5)).is_user_error(), "EIO");
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert!(ResultsError::Json {
            path: "verdict.json".into(),
            source: json
        }
        .is_user_error());
        assert!(ResultsError::Schema {
            path: "verdict.json".into(),
            found: "x".into(),
            expected: VERDICT_SCHEMA
        }
        .is_user_error());
    }
}
