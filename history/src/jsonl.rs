//! The faultline-history/1 JSON Lines format: a streaming reader and a writer.
//!
//! Event lines carry only the fields of [`EVENT_FIELDS`]: any other field (a typo such
//! as `"vaule"`, which would otherwise read as a write of `null`) is an error naming
//! it, its line and the nearest known field. Free metadata belongs in the header line.

use crate::error::HistoryError;
use crate::event::Event;
use crate::History;
use rayon::prelude::*;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, Read, Write};

/// The `format` field of a header line.
pub const FORMAT_NAME: &str = "faultline-history";
/// The version this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;
/// The longest line [`JsonlReader`] reads by default, newline not counted: 64 MiB.
/// Events the recorder writes take a few hundred bytes; this leaves room for very large
/// values while bounding the memory one line can take (a stream with no newline, such
/// as `/dev/zero`, is refused after this many bytes).
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The fields an event line may carry; any other field is an error.
pub const EVENT_FIELDS: [&str; 9] = [
    "index", "time", "process", "type", "f", "key", "value", "node", "error",
];

/// Streams events out of a faultline-history/1 source, one line at a time.
///
/// An optional header on the first non-empty line is kept in [`JsonlReader::header`].
/// A last line that is cut short is what a harness killed mid-write leaves behind: it is
/// skipped and [`JsonlReader::truncated_tail`] says so. Cut short means: no newline, and
/// the beginning of a valid event (an incomplete JSON object whose fields so far are
/// valid; see ARCHITECTURE.md). Any other last line that does not parse, complete or
/// not, is an error naming its line.
/// Lines are read as bytes: invalid UTF-8 is a parse error naming its line. A line
/// longer than [`MAX_LINE_BYTES`] (or [`JsonlReader::max_line_bytes`]) is an error, after
/// which the reader ends: memory stays bounded whatever the input.
pub struct JsonlReader<R> {
    input: R,
    st: LineState,
    max_line: usize,
    done: bool,
    /// What the lines of the last batch gave, in order, not yet returned, each with its
    /// line number.
    ready: VecDeque<(Step, usize)>,
    /// The line of the last step returned (or, at the end, of the last line read).
    returned_line: usize,
}

/// The most lines parsed together in one batch (their events wait in
/// [`JsonlReader::ready`] until they are returned).
const BATCH_LINES: usize = 4096;

/// The fewest complete lines in the input's buffer for which a batch is parsed in
/// parallel (below it, thread hand-offs cost more than they save).
const BATCH_MIN_LINES: usize = 64;

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
            max_line: MAX_LINE_BYTES,
            done: false,
            ready: VecDeque::new(),
            returned_line: 0,
        }
    }

    /// The same reader with another bound on the length of a line (newline not counted).
    pub fn max_line_bytes(mut self, max: usize) -> Self {
        self.max_line = max;
        self
    }

    /// How many lines have been read so far: the line of the event (or error) last
    /// returned, and at the end every line of the input.
    pub fn lines_read(&self) -> usize {
        self.returned_line
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
        if self.done {
            return None;
        }
        let avail = match self.input.fill_buf() {
            Ok(avail) => avail,
            Err(e) => return Some(Step::Error(self.io_error(e))),
        };
        if avail.is_empty() {
            return None;
        }
        if let Some(nl) = memchr::memchr(b'\n', avail) {
            if nl > self.max_line {
                return Some(self.too_long());
            }
            if let Some(used) = self.st.handle_batch(avail, self.max_line, &mut self.ready) {
                self.input.consume(used);
                return Some(Step::Skip);
            }
            // The whole line is in the input's buffer: parse it in place.
            let step = self.st.handle(&avail[..nl], true);
            self.input.consume(nl + 1);
            return Some(step);
        }
        // The line goes on past the buffer (or is the last, unterminated one): read at
        // most the longest line and its newline.
        let mut buf = std::mem::take(&mut self.st.buf);
        buf.clear();
        let most = self.max_line.saturating_add(1) as u64;
        if let Err(e) = (&mut self.input).take(most).read_until(b'\n', &mut buf) {
            return Some(Step::Error(self.io_error(e)));
        }
        let complete = buf.last() == Some(&b'\n');
        let line = if complete {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };
        if line.len() > self.max_line {
            self.st.buf = Vec::new();
            return Some(self.too_long());
        }
        let step = self.st.handle(line, complete);
        // Keep the buffer for the next long line, unless it grew large.
        if buf.capacity() <= 1 << 20 {
            self.st.buf = buf;
        }
        Some(step)
    }

    /// The error of a line longer than the limit; the reader ends there.
    fn too_long(&mut self) -> Step {
        self.done = true;
        self.st.line_no += 1;
        let line = self.st.line_no;
        Step::Error(self.st.parse_error(format!(
            "line {line} is longer than {}, the longest line this reader accepts (events take a few hundred bytes); is this a faultline-history file?",
            show_bytes(self.max_line)
        )))
    }
}

/// A byte count in words: `1 GiB`, `64 MiB`, `512 KiB`, `100 bytes`.
pub(crate) fn show_bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
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

    /// Why `field` is refused, with the nearest known field when one is close.
    fn unknown_field_message(&self, field: &str) -> String {
        let header = format!("{{\"format\":\"{FORMAT_NAME}\",\"version\":{FORMAT_VERSION},...}}");
        if field == "format" {
            let where_ = if self.seen_event || self.header.is_some() {
                "a header line is only read as the first line of the file"
            } else {
                "this line is not a faultline-history header"
            };
            return format!(
                "unknown field \"format\" in an event line; {where_} (expected {header})"
            );
        }
        let guess = match nearest_field(field) {
            Some(f) => format!("did you mean \"{f}\"? An"),
            None => "an".to_string(),
        };
        format!(
            "unknown field \"{}\"; {guess} event line carries only {}; free metadata belongs in the header line ({header}, the first line)",
            shorten(field),
            EVENT_FIELDS.join(", ")
        )
    }

    /// The complete lines at the start of `avail` (at most [`BATCH_LINES`], each at most
    /// `max_line` bytes), when there are at least [`BATCH_MIN_LINES`]: their events are
    /// parsed in parallel by the fast path (pure), then each line is handled in order as
    /// [`LineState::handle`] would, its steps queued on `ready`. Answers how many bytes
    /// of `avail` that used, or `None` (nothing done) when there are too few lines.
    fn handle_batch(
        &mut self,
        avail: &[u8],
        max_line: usize,
        ready: &mut VecDeque<(Step, usize)>,
    ) -> Option<usize> {
        let mut lines = Vec::new();
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', avail) {
            if nl - start > max_line || lines.len() == BATCH_LINES {
                break;
            }
            lines.push(&avail[start..nl]);
            start = nl + 1;
        }
        if lines.len() < BATCH_MIN_LINES {
            return None;
        }
        let parsed: Vec<Option<Event>> = lines
            .par_iter()
            .map(|line| crate::import::fast_jsonl::parse_event(line.trim_ascii()))
            .collect();
        for (line, pre) in lines.iter().zip(parsed) {
            let step = self.handle_parsed(line, true, Some(pre));
            let stop = matches!(step, Step::End);
            if !matches!(step, Step::Skip) {
                ready.push_back((step, self.line_no));
            }
            if stop {
                break;
            }
        }
        Some(start)
    }

    /// One line without its newline; `complete` when the newline was there.
    fn handle(&mut self, line: &[u8], complete: bool) -> Step {
        self.handle_parsed(line, complete, None)
    }

    /// [`LineState::handle`], given what the fast path made of the line already when
    /// `pre` is `Some`.
    fn handle_parsed(&mut self, line: &[u8], complete: bool, pre: Option<Option<Event>>) -> Step {
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
        let fast = pre.unwrap_or_else(|| crate::import::fast_jsonl::parse_event(line));
        let parsed = match fast {
            Some(ev) => Ok(ev),
            None => {
                // The derived deserializer ignores unknown fields: look for them first.
                if let Some(field) = unknown_field(line) {
                    return Step::Error(self.parse_error(self.unknown_field_message(&field)));
                }
                serde_json::from_slice::<Event>(line)
            }
        };
        let ev = match parsed {
            Ok(ev) => ev,
            Err(e) => {
                let cut = if complete {
                    Ok(false)
                } else {
                    crate::import::fast_jsonl::cut_event_prefix(line, self.last_index)
                };
                return match cut {
                    // The writer was stopped mid-line: keep everything before it.
                    Ok(true) => {
                        self.truncated_tail = true;
                        Step::End
                    }
                    Ok(false) => Step::Error(self.parse_error(format!(
                        "not a faultline-history event ({}); expected an object with index, time, process, type, f, value",
                        serde_message(&e)
                    ))),
                    Err(why) => Step::Error(self.parse_error(format!(
                        "the last line has no newline but is not the beginning of a valid event either ({why}), so it is not a line cut short by a stopped writer; fix or remove it"
                    ))),
                };
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
            let (step, line) = match self.ready.pop_front() {
                Some(queued) => queued,
                None => match self.step() {
                    Some(step) => (step, self.st.line_no),
                    None => {
                        self.returned_line = self.st.line_no;
                        return None;
                    }
                },
            };
            self.returned_line = line;
            match step {
                Step::Skip => continue,
                Step::Event(ev) => return Some(Ok(ev)),
                Step::End => return None,
                Step::Error(e) => return Some(Err(e)),
            }
        }
    }
}

/// The first field of the JSON object `line` that is not in [`EVENT_FIELDS`], if `line`
/// is an object (anything else is left to the event parser's error).
fn unknown_field(line: &[u8]) -> Option<String> {
    struct FirstUnknown(Option<String>);
    impl<'de> Deserialize<'de> for FirstUnknown {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = FirstUnknown;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<FirstUnknown, A::Error> {
                    let mut unknown = None;
                    while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                        map.next_value::<IgnoredAny>()?;
                        if unknown.is_none() && !EVENT_FIELDS.contains(&name.as_ref()) {
                            unknown = Some(name.into_owned());
                        }
                    }
                    Ok(FirstUnknown(unknown))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<FirstUnknown>(line).ok()?.0
}

/// A serde_json error with its position as a column of the line (its own line number
/// counts within the line, not the file).
pub(crate) fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&at) {
        Some(message) if e.line() == 1 => format!("{message} at column {}", e.column()),
        _ => text,
    }
}

/// The known field nearest to `field`: equal but for case, or at most two edits away
/// (insertions, deletions, substitutions, swaps of neighbours), fewer than its length.
pub(crate) fn nearest_field(field: &str) -> Option<&'static str> {
    if field.len() > 16 {
        return None;
    }
    let lower = field.to_lowercase();
    EVENT_FIELDS
        .iter()
        .map(|&known| (edit_distance(lower.as_bytes(), known.as_bytes()), known))
        .filter(|&(d, _)| d <= 2 && d < field.chars().count())
        .min_by_key(|&(d, _)| d)
        .map(|(_, known)| known)
}

/// `text` cut to its first 40 characters (with `...`), to quote it in a message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// Optimal string alignment distance (Levenshtein plus swaps of neighbours).
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
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
