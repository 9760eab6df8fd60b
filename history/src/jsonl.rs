//! The faultline-history/1 JSON Lines format: a streaming reader and a writer.

use crate::error::HistoryError;
use crate::event::Event;
use crate::History;
use serde_json::{Map, Value};
use std::io::{BufRead, Write};

/// The `format` field of a header line.
pub const FORMAT_NAME: &str = "faultline-history";
/// The version this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Streams events out of a faultline-history/1 source, one line at a time.
///
/// An optional header on the first non-empty line is kept in [`JsonlReader::header`].
/// A last line that is cut short (no newline, does not parse) is what a harness killed
/// mid-write leaves behind: it is skipped and [`JsonlReader::truncated_tail`] says so.
pub struct JsonlReader<R> {
    input: R,
    name: String,
    line_no: usize,
    buf: String,
    header: Option<Map<String, Value>>,
    seen_event: bool,
    last_index: Option<u64>,
    truncated_tail: bool,
}

impl<R: BufRead> JsonlReader<R> {
    /// A reader of `input`; `name` is used in error messages.
    pub fn new(input: R, name: &str) -> Self {
        JsonlReader {
            input,
            name: name.to_string(),
            line_no: 0,
            buf: String::with_capacity(256),
            header: None,
            seen_event: false,
            last_index: None,
            truncated_tail: false,
        }
    }

    /// The header's metadata, once the first line has been read.
    pub fn header(&self) -> Option<&Map<String, Value>> {
        self.header.as_ref()
    }

    /// Whether an incomplete last line was skipped.
    pub fn truncated_tail(&self) -> bool {
        self.truncated_tail
    }

    /// Reads everything into a [`History`].
    pub fn read_all(mut self) -> Result<History, HistoryError> {
        let mut events = Vec::new();
        for ev in self.by_ref() {
            events.push(ev?);
        }
        Ok(History {
            meta: self.header.take().unwrap_or_default(),
            events,
            truncated_tail: self.truncated_tail,
        })
    }

    fn parse_error(&self, message: String) -> HistoryError {
        HistoryError::parse(&self.name, self.line_no, message)
    }

    fn read_header(&mut self, map: Map<String, Value>) -> Result<(), HistoryError> {
        match map.get("version").and_then(Value::as_u64) {
            Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(self.parse_error(format!(
                    "unsupported faultline-history version {v}; this build reads version {FORMAT_VERSION}"
                )))
            }
            None => {
                return Err(self.parse_error(
                    "header line needs a \"version\" number (expected {\"format\":\"faultline-history\",\"version\":1})"
                        .into(),
                ))
            }
        }
        self.header = Some(map);
        Ok(())
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<Event, HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            let n = match self.input.read_line(&mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    return Some(Err(HistoryError::Io {
                        file: self.name.clone(),
                        source: e,
                    }))
                }
            };
            if n == 0 {
                return None;
            }
            self.line_no += 1;
            let complete_line = self.buf.ends_with('\n');
            let line = self.buf.trim();
            if line.is_empty() {
                continue;
            }
            if !self.seen_event && self.header.is_none() && line.contains("\"format\"") {
                if let Ok(map) = serde_json::from_str::<Map<String, Value>>(line) {
                    if map.get("format").and_then(Value::as_str) == Some(FORMAT_NAME) {
                        if let Err(e) = self.read_header(map) {
                            return Some(Err(e));
                        }
                        continue;
                    }
                }
            }
            let ev = match serde_json::from_str::<Event>(line) {
                Ok(ev) => ev,
                Err(e) => {
                    if !complete_line {
                        // The writer was stopped mid-line: keep everything before it.
                        self.truncated_tail = true;
                        return None;
                    }
                    return Some(Err(self.parse_error(format!(
                        "not a faultline-history event ({e}); expected an object with index, time, process, type, f, value"
                    ))));
                }
            };
            if let Some(last) = self.last_index {
                if ev.index <= last {
                    return Some(Err(self.parse_error(format!(
                        "index {} does not increase (previous event had index {last})",
                        ev.index
                    ))));
                }
            }
            self.last_index = Some(ev.index);
            self.seen_event = true;
            return Some(Ok(ev));
        }
    }
}

/// Writes faultline-history/1 lines.
pub struct JsonlWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer to `out`. Wrap files in a `BufWriter`.
    pub fn new(out: W) -> Self {
        JsonlWriter {
            out,
            buf: Vec::with_capacity(256),
        }
    }

    /// Writes the header line with extra metadata (`format` and `version` are set here).
    pub fn write_header(&mut self, meta: &Map<String, Value>) -> std::io::Result<()> {
        let mut map = Map::new();
        map.insert("format".into(), Value::from(FORMAT_NAME));
        map.insert("version".into(), Value::from(FORMAT_VERSION));
        for (k, v) in meta {
            if k != "format" && k != "version" {
                map.insert(k.clone(), v.clone());
            }
        }
        serde_json::to_writer(&mut self.out, &map)?;
        self.out.write_all(b"\n")
    }

    /// Writes one event as one line.
    pub fn write_event(&mut self, ev: &Event) -> std::io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, ev)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a whole history (header, then events).
pub fn write_history<W: Write>(out: W, history: &History) -> std::io::Result<()> {
    let mut w = JsonlWriter::new(out);
    w.write_header(&history.meta)?;
    for ev in &history.events {
        w.write_event(ev)?;
    }
    w.flush()
}
