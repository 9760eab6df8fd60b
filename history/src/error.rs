//! Errors of reading, importing and pairing histories.

use std::io;
use thiserror::Error;

/// Everything that can go wrong with a history. Every variant names where.
#[derive(Debug, Error)]
pub enum HistoryError {
    /// A line (or EDN form) could not be understood.
    #[error("{file}:{line}: {message}")]
    Parse {
        /// The file (or other source) name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The events parse but do not form a valid history.
    #[error("{file}: event {index}: {message}")]
    Structure {
        /// The file (or other source) name.
        file: String,
        /// The `index` of the offending event.
        index: u64,
        /// What rule it breaks.
        message: String,
    },
    /// The input holds no client operation. Nothing to check is not "valid": an empty
    /// file, a header alone or nemesis events alone are refused.
    #[error("{file}:{line}: no operations: {found}; a history to check needs at least one client invoke (is this the file you meant, and did the run record any operation?)")]
    NoOperations {
        /// The file (or other source) name.
        file: String,
        /// The last line of the input (1 for an empty input).
        line: usize,
        /// What the input holds instead, e.g. `only a header line`.
        found: String,
    },
    /// The source could not be read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file name.
        file: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl HistoryError {
    /// A parse error at `line` of `file`.
    pub fn parse(file: &str, line: usize, message: impl Into<String>) -> Self {
        HistoryError::Parse {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}
