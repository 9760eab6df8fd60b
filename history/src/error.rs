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
