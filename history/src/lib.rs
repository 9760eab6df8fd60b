//! faultline-history: the shared vocabulary of faultline.
//!
//! Events and operations, the faultline-history/1 JSON Lines format (DESIGN §4), the
//! importers of Jepsen EDN and Porcupine logs, and pairing invokes with completions.
//! This crate does no I/O beyond reading and writing histories.

#![warn(missing_docs)]

mod error;
mod event;
pub mod export;
pub mod import;
pub mod jsonl;
mod op;
pub mod value;

pub use error::HistoryError;
pub use event::{Event, EventType, Key, Process, Value};
pub use import::{
    detect, load, load_paired, load_with, parse_bytes, parse_str, Format, ImportOptions,
    Independent, PairedHistory,
};
pub use jsonl::{write_history, JsonlReader, JsonlWriter};
pub use op::{pair, pair_owned, seconds, Operation, Outcome, Paired, Pairer};
pub use value::{same_value, show, ValueKey};

use serde_json::Map;

/// Metadata key: how an `ok` read of `null` is to be understood.
///
/// `"unknown"` (set by the Jepsen EDN importer, Knossos's semantics) means such a read
/// observed nothing; absent or `"unwritten"` means the key was never written.
pub const META_NIL_READS: &str = "nil_reads";

/// Metadata key: the value every key holds before its first write, when it is not
/// `null` (absent). The Porcupine kv importer sets it to `""`: each key starts as the
/// empty string and `append` concatenates.
pub const META_INITIAL: &str = "initial";

/// A whole history: header metadata and events in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Free metadata from the header line (or set by an importer).
    pub meta: Map<String, Value>,
    /// The events, in index order.
    pub events: Vec<Event>,
    /// Whether a cut-short last line was skipped while reading.
    pub truncated_tail: bool,
}

impl History {
    /// A history of these events with no metadata.
    pub fn from_events(events: Vec<Event>) -> History {
        History {
            meta: Map::new(),
            events,
            truncated_tail: false,
        }
    }

    /// Pairs the events into operations (see [`pair`]).
    pub fn pair(&self, file: &str) -> Result<Paired, HistoryError> {
        pair(&self.events, file)
    }

    /// Whether an `ok` read of `null` observed nothing (Knossos's semantics for imports).
    pub fn nil_reads_unknown(&self) -> bool {
        self.meta.get(META_NIL_READS).and_then(Value::as_str) == Some("unknown")
    }
}
