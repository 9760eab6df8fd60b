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
/// Lines are read as bytes: invalid UTF-8 is a parse error naming its line.
pub struct JsonlReader<R> {
    input: R,
    st: LineState,
}

/// Everything of the reader but its input, so a line can be parsed while it is still
/// borrowed from the input's buffer.
struct LineState {
    name: String,
    line_no: usize,
    buf: Vec<u8>,
    header: Option<Map<String, Value>>,
    seen_event: bool,
    last_index: Option<u64>,
    truncated_tail: bool,
}

/// What one line gave.
enum Step {
    /// Blank line or header: read on.
    Skip,
    /// An event.
    Event(Event),
    /// The cut-short last line: stop.
    End,
    /// A bad line.
    Error(HistoryError),
}

impl<R: BufRead> JsonlReader<R> {
    /// A reader of `input`; `name` is used in error messages.
    pub fn new(input: R, name: &str) -> Self {
        JsonlReader {
            input,
            st: LineState {
                name: name.to_string(),
                line_no: 0,
                buf: Vec::new(),
                header: None,
                seen_event: false,
                last_index: None,
                truncated_tail: false,
            },
        }
    }

    /// The header's metadata, once the first line has been read.
    pub fn header(&self) -> Option<&Map<String, Value>> {
        self.st.header.as_ref()
    }

    /// Whether an incomplete last line was skipped.
    pub fn truncated_tail(&self) -> bool {
        self.st.truncated_tail
    }

    /// Reads everything into a [`History`].
    pub fn read_all(mut self) -> Result<History, HistoryError> {
        let mut events = Vec::new();
        for ev in self.by_ref() {
            events.push(ev?);
        }
        Ok(History {
            meta: self.st.header.take().unwrap_or_default(),
            events,
            truncated_tail: self.st.truncated_tail,
        })
    }

    fn io_error(&self, source: std::io::Error) -> HistoryError {
        HistoryError::Io {
            file: self.st.name.clone(),
            source,
        }
    }

    /// Reads and handles the next line; `None` at the end of the input.
    fn step(&mut self) -> Option<Step> {
        let avail = match self.input.fill_buf() {
            Ok(avail) => avail,
            Err(e) => return Some(Step::Error(self.io_error(e))),
        };
        if avail.is_empty() {
            return None;
        }
        if let Some(nl) = memchr::memchr(b'\n', avail) {
            // The whole line is in the input's buffer: parse it in place.
            let step = self.st.handle(&avail[..nl], true);
            self.input.consume(nl + 1);
            return Some(step);
        }
        // The line goes on past the buffer (or is the last, unterminated one).
        let mut buf = std::mem::take(&mut self.st.buf);
        buf.clear();
        if let Err(e) = self.input.read_until(b'\n', &mut buf) {
            return Some(Step::Error(self.io_error(e)));
        }
        let complete = buf.last() == Some(&b'\n');
        let line = if complete {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };
        let step = self.st.handle(line, complete);
        self.st.buf = buf;
        Some(step)
    }
}

impl LineState {
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

    /// One line without its newline; `complete` when the newline was there.
    fn handle(&mut self, line: &[u8], complete: bool) -> Step {
        self.line_no += 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            return Step::Skip;
        }
        if !self.seen_event && self.header.is_none() && contains(line, b"\"format\"") {
            if let Ok(map) = serde_json::from_slice::<Map<String, Value>>(line) {
                if map.get("format").and_then(Value::as_str) == Some(FORMAT_NAME) {
                    return match self.read_header(map) {
                        Ok(()) => Step::Skip,
                        Err(e) => Step::Error(e),
                    };
                }
            }
        }
        let parsed = match crate::import::fast_jsonl::parse_event(line) {
            Some(ev) => Ok(ev),
            None => serde_json::from_slice::<Event>(line),
        };
        let ev = match parsed {
            Ok(ev) => ev,
            Err(_) if !complete => {
                // The writer was stopped mid-line: keep everything before it.
                self.truncated_tail = true;
                return Step::End;
            }
            Err(e) => {
                return Step::Error(self.parse_error(format!(
                    "not a faultline-history event ({e}); expected an object with index, time, process, type, f, value"
                )))
            }
        };
        if let Some(last) = self.last_index {
            if ev.index <= last {
                return Step::Error(self.parse_error(format!(
                    "index {} does not increase (previous event had index {last})",
                    ev.index
                )));
            }
        }
        self.last_index = Some(ev.index);
        self.seen_event = true;
        Step::Event(ev)
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<Event, HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.step()? {
                Step::Skip => continue,
                Step::Event(ev) => return Some(Ok(ev)),
                Step::End => return None,
                Step::Error(e) => return Some(Err(e)),
            }
        }
    }
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
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

    /// A reference to the underlying writer (e.g. to fsync a file).
    pub fn get_ref(&self) -> &W {
        &self.out
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
