//! Loading histories in any supported format: faultline JSONL, Jepsen EDN (including
//! Porcupine's kv lines) and Porcupine's Jepsen etcd logs, with detection by content.
//!
//! Each importer keeps the meaning its source gives to events (DESIGN §4):
//!
//! * faultline JSONL: as written; a `null` read means never written.
//! * Jepsen EDN ([`jepsen`]): failed operations stay as `fail` (not `"mismatch"`), and
//!   `meta["nil_reads"] = "unknown"` by default (Knossos: an `:ok` read of `nil`
//!   observed nothing). Porcupine's kv lines are recognised and get
//!   `meta["initial"] = ""`. Independent `[k v]` tuples are split into key and value.
//! * Porcupine etcd logs ([`porcupine`]): the register starts absent (`null`), a failed
//!   cas is `fail` with error `"mismatch"`, timed-out operations carry error
//!   `"timed-out"`.
//!
//! Every importer sets `meta["imported_from"]` ([`META_IMPORTED_FROM`]). Parse errors
//! name the file and the 1-based line; no input makes a parser panic. Input with no
//! client event is refused in every format ([`HistoryError::NoOperations`]). Reading
//! from a file or stream ([`load`], [`read_from`]) holds a bounded amount of it in
//! memory ([`Limits`]): endless input such as `/dev/zero` is an error, not a hang.
//!
//! ```
//! use faultline_history::import::{parse_str, Format};
//! let h = parse_str("{:process 0, :type :invoke, :f :read, :value nil}\n", "x.edn", Format::Auto)
//!     .unwrap();
//! assert_eq!(h.events.len(), 1);
//! assert!(h.nil_reads_unknown());
//! ```

pub mod edn;
pub(crate) mod fast_jsonl;
pub mod jepsen;
pub mod porcupine;

use crate::error::HistoryError;
use crate::event::{Event, EventType, Key, Process, Value};
use crate::jsonl::{show_bytes, JsonlReader, MAX_LINE_BYTES};
use crate::op::{completion_mismatch, orphan_completion, second_invoke, InFlight, Paired, Pairer};
use crate::History;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;
use thiserror::Error;

/// Metadata key set by every importer: where the history came from
/// (`"jepsen-edn"`, `"porcupine-kv"` or `"porcupine-etcd"`).
pub const META_IMPORTED_FROM: &str = "imported_from";

/// Metadata key set to `true` when the EDN importer split `[k v]` independent tuples.
pub const META_INDEPENDENT: &str = "independent";

/// How many bytes [`detect`] looks at (it needs far fewer; this bounds the copy).
pub const DETECT_BYTES: usize = 4096;

/// A history format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Decide by content (see [`detect`]).
    #[default]
    Auto,
    /// faultline-history/1 JSON Lines.
    Jsonl,
    /// Jepsen EDN (one map per line or a vector of maps), also Porcupine's kv lines.
    Edn,
    /// Porcupine's Jepsen etcd logs (`INFO  jepsen.util - 0 :invoke :read nil`).
    Porcupine,
}

impl Format {
    /// The name used on the command line: `auto`, `jsonl`, `edn` or `porcupine`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::Porcupine => "porcupine",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a format or option value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {what} {given:?}; expected one of {expected}")]
pub struct UnknownName {
    /// What was being named (`format`, `independent setting`).
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The accepted names, separated by `|`.
    pub expected: &'static str,
}

impl FromStr for Format {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Format::Auto),
            "jsonl" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            "porcupine" => Ok(Format::Porcupine),
            _ => Err(UnknownName {
                what: "format",
                given: s.to_string(),
                expected: "auto|jsonl|edn|porcupine",
            }),
        }
    }
}

/// Whether the EDN importer splits `[k v]` values into key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Independent {
    /// Split when the history follows the independent-keys rule (see [`jepsen`]: every
    /// client invoke and `ok` value is `[k v]`, and every cas's `v` is `[old new]`).
    #[default]
    Auto,
    /// Always split; an invoke or `ok` value that is not a `[k v]` tuple is an error.
    On,
    /// Never split.
    Off,
}

impl FromStr for Independent {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Independent::Auto),
            "on" | "yes" | "true" => Ok(Independent::On),
            "off" | "no" | "false" => Ok(Independent::Off),
            _ => Err(UnknownName {
                what: "independent setting",
                given: s.to_string(),
                expected: "auto|on|off",
            }),
        }
    }
}

/// Choices of the importers beyond the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImportOptions {
    /// Jepsen EDN: whether to split independent `[k v]` tuples.
    pub independent: Independent,
    /// Jepsen EDN: whether to set `meta["nil_reads"] = "unknown"` (Knossos's semantics,
    /// the default). Off, an `:ok` read of `nil` means the register was never written.
    pub nil_reads_unknown: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            independent: Independent::Auto,
            nil_reads_unknown: true,
        }
    }
}

/// Guesses the format of a history from its first bytes.
///
/// After a UTF-8 byte order mark and whitespace: a line starting with a log level word
/// (`INFO`, `WARN`, `DEBUG`, `ERROR`, `TRACE`) followed by whitespace is
/// [`Format::Porcupine`]; `{` followed by `"` (after whitespace) is [`Format::Jsonl`];
/// `{` followed by anything else, `[`, `(`, `;` or `#` is [`Format::Edn`]. Anything
/// else, and empty input, is [`Format::Jsonl`], faultline's own format, whose reader
/// gives the most helpful error. Never returns [`Format::Auto`].
pub fn detect(head: &[u8]) -> Format {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let rest = &head[start..];
    let level = |word: &[u8]| {
        rest.starts_with(word)
            && rest
                .get(word.len())
                .is_some_and(|b| b.is_ascii_whitespace())
    };
    if [&b"INFO"[..], b"WARN", b"DEBUG", b"ERROR", b"TRACE"]
        .iter()
        .any(|w| level(w))
    {
        return Format::Porcupine;
    }
    match rest.first() {
        Some(b'{') => {
            let next = rest[1..].iter().find(|b| !b.is_ascii_whitespace());
            match next {
                Some(b'"') | Some(b'}') | None => Format::Jsonl,
                Some(_) => Format::Edn,
            }
        }
        Some(b'[' | b'(' | b';' | b'#') => Format::Edn,
        _ => Format::Jsonl,
    }
}

/// Reads a history file in `format` with default options and limits (see [`read_from`]).
pub fn load(path: &Path, format: Format) -> Result<History, HistoryError> {
    load_with(path, format, &ImportOptions::default())
}

/// Reads a history file in `format` with `options` and the default [`Limits`].
pub fn load_with(
    path: &Path,
    format: Format,
    options: &ImportOptions,
) -> Result<History, HistoryError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| HistoryError::Io {
        file: name.clone(),
        source,
    })?;
    // Room for the events up front (a line holds about 100 bytes; room never used is
    // never touched), so the vector is not copied as it grows.
    let expected = file
        .metadata()
        .map_or(0, |m| (m.len() / 100).min(50_000_000) as usize);
    read_sized(file, &name, format, options, &Limits::default(), expected)
}

/// The most bytes of a Jepsen EDN history or Porcupine log read (they are read whole):
/// 1 GiB: room for very large Jepsen histories while bounding memory;
/// an endless source such as `/dev/zero` is refused after this much.
pub const MAX_WHOLE_FILE_BYTES: usize = 1 << 30;

/// Bounds on how much of a source the readers hold in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The longest JSONL line, newline not counted ([`MAX_LINE_BYTES`] by default).
    pub max_line_bytes: usize,
    /// The largest Jepsen EDN history or Porcupine log ([`MAX_WHOLE_FILE_BYTES`] by
    /// default).
    pub max_whole_file_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: MAX_LINE_BYTES,
            max_whole_file_bytes: MAX_WHOLE_FILE_BYTES,
        }
    }
}

/// Reads a history from any source (a file, a pipe, standard input) in `format`;
/// `name` is used in errors. Memory stays bounded whatever the source: detection reads
/// at most [`DETECT_BYTES`], faultline JSONL is streamed line by line (each line at most
/// [`Limits::max_line_bytes`]), and the whole-file formats are read up to
/// [`Limits::max_whole_file_bytes`]. Past a limit the error names the line reached.
pub fn read_from<R: Read>(
    input: R,
    name: &str,
    format: Format,
    options: &ImportOptions,
    limits: &Limits,
) -> Result<History, HistoryError> {
    read_sized(input, name, format, options, limits, 0)
}

/// [`read_from`] with room for `expected` events reserved up front.
fn read_sized<R: Read>(
    input: R,
    name: &str,
    format: Format,
    options: &ImportOptions,
    limits: &Limits,
    expected: usize,
) -> Result<History, HistoryError> {
    match open_source(input, name, format, limits)? {
        Source::Jsonl(reader) => {
            let mut events = Vec::with_capacity(expected);
            let (history, lines) = collect_jsonl(*reader, name, true, &mut |ev, _| {
                events.push(ev);
                Ok(())
            })?;
            let history = History { events, ..history };
            let blank = history.meta.is_empty() && !history.truncated_tail;
            require_operations(history, name, lines, true, blank)
        }
        Source::Whole(format, bytes) => parse_bytes(&bytes, name, format, options),
    }
}

/// A history read straight into operations ([`load_paired`]): its header's metadata,
/// the paired operations and nemesis events, and whether a cut-short last line was
/// skipped.
#[derive(Debug, Clone)]
pub struct PairedHistory {
    /// Free metadata of the header line (or set by an importer).
    pub meta: serde_json::Map<String, Value>,
    /// The operations and nemesis events.
    pub paired: Paired,
    /// True when a cut-short last line was skipped.
    pub truncated_tail: bool,
}

/// Reads a history file and pairs it, without keeping its events: faultline JSONL is
/// paired line by line as it streams in, so the events are never all held at once (for
/// a checker that needs only the operations; [`load`] then [`crate::pair`] keeps both).
/// Errors are those of [`load`] and [`crate::pair`]; the other formats are read whole
/// and paired afterwards.
pub fn load_paired(path: &Path, format: Format) -> Result<PairedHistory, HistoryError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| HistoryError::Io {
        file: name.clone(),
        source,
    })?;
    let expected = file
        .metadata()
        .map_or(0, |m| (m.len() / 200).min(25_000_000) as usize);
    let options = ImportOptions::default();
    match open_source(file, &name, format, &Limits::default())? {
        Source::Jsonl(reader) => {
            let mut pairer = Pairer::with_capacity(expected);
            let mut clients = false;
            let mut nemesis = 0;
            // The pairer checks the pairing rules itself, naming the lines.
            let (history, lines) = collect_jsonl(*reader, &name, false, &mut |ev, line| {
                match ev.process {
                    Process::Client(_) => clients = true,
                    Process::Nemesis => nemesis += 1,
                }
                pairer.push_line(ev, &name, Some(line))
            })?;
            if !clients {
                let blank = history.meta.is_empty() && !history.truncated_tail;
                // The nemesis events alone make the message: count them, not keep them.
                let history = History {
                    events: Vec::new(),
                    ..history
                };
                return Err(no_operations(&history, nemesis, &name, lines, true, blank));
            }
            Ok(PairedHistory {
                meta: history.meta,
                paired: pairer.finish(),
                truncated_tail: history.truncated_tail,
            })
        }
        Source::Whole(format, bytes) => {
            let history = parse_bytes(&bytes, &name, format, &options)?;
            let paired = crate::pair_owned(history.events, &name)?;
            Ok(PairedHistory {
                meta: history.meta,
                paired,
                truncated_tail: history.truncated_tail,
            })
        }
    }
}

/// A source whose head, read for detection, is put back in front of the rest.
type Headed<R> = BufReader<std::io::Chain<std::io::Cursor<Vec<u8>>, R>>;

/// A source once its format is known: JSONL to stream, or the bytes of a whole-file
/// format.
enum Source<R> {
    Jsonl(Box<JsonlReader<Headed<R>>>),
    Whole(Format, Vec<u8>),
}

/// Detects the format of `input` (unless given) from its head, and opens it: a JSONL
/// reader, or the whole input read up to [`Limits::max_whole_file_bytes`].
fn open_source<R: Read>(
    mut input: R,
    name: &str,
    format: Format,
    limits: &Limits,
) -> Result<Source<R>, HistoryError> {
    let io = |source| HistoryError::Io {
        file: name.to_string(),
        source,
    };
    // The head parse_bytes detects on: DETECT_BYTES after a byte order mark.
    let mut head = Vec::with_capacity(DETECT_BYTES + 3);
    (&mut input)
        .take(DETECT_BYTES as u64 + 3)
        .read_to_end(&mut head)
        .map_err(io)?;
    let bom = if head.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let format = match format {
        Format::Auto => detect(&head[bom..head.len().min(bom + DETECT_BYTES)]),
        f => f,
    };
    let mut rest = std::io::Cursor::new(head);
    if format == Format::Jsonl {
        // parse_bytes strips the byte order mark of the whole-file formats.
        rest.set_position(bom as u64);
    }
    let rest = rest.chain(input);
    if format == Format::Jsonl {
        let input = BufReader::with_capacity(1 << 20, rest);
        let reader = JsonlReader::new(input, name).max_line_bytes(limits.max_line_bytes);
        return Ok(Source::Jsonl(Box::new(reader)));
    }
    let cap = limits.max_whole_file_bytes;
    let mut bytes = Vec::new();
    rest.take(cap.saturating_add(1) as u64)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > cap {
        let line = 1 + memchr::memchr_iter(b'\n', &bytes[..cap]).count();
        return Err(HistoryError::parse(
            name,
            line,
            format!(
                "the input goes on past {} (reached on line {line}), the most this build reads of a {}, which is read whole; is this the right file? (faultline-history/1 JSONL is streamed and has no such limit)",
                show_bytes(cap),
                if format == Format::Porcupine { "Porcupine log" } else { "Jepsen EDN history" },
            ),
        ));
    }
    Ok(Source::Whole(format, bytes))
}

/// Parses a history held in a string with default options; `name` is used in errors.
pub fn parse_str(text: &str, name: &str, format: Format) -> Result<History, HistoryError> {
    parse_bytes(text.as_bytes(), name, format, &ImportOptions::default())
}

/// Parses a history held in memory. Bytes that are not UTF-8 are a parse error naming
/// their line; `name` is used in errors. JSONL lines are limited to [`MAX_LINE_BYTES`];
/// the input is already in memory, so no whole-file limit applies (see [`read_from`]
/// for sources of unknown size).
pub fn parse_bytes(
    bytes: &[u8],
    name: &str,
    format: Format,
    options: &ImportOptions,
) -> Result<History, HistoryError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let format = match format {
        Format::Auto => detect(&bytes[..bytes.len().min(DETECT_BYTES)]),
        f => f,
    };
    let history = if format == Format::Jsonl {
        read_jsonl(bytes, name)?
    } else {
        let text = utf8(bytes, name)?;
        match format {
            Format::Porcupine => porcupine::import(text, name)?,
            _ => jepsen::import(text, name, options)?,
        }
    };
    let lines = memchr::memchr_iter(b'\n', bytes).count()
        + usize::from(bytes.last().is_some_and(|&b| b != b'\n'));
    let blank = bytes.iter().all(u8::is_ascii_whitespace);
    require_operations(history, name, lines, format == Format::Jsonl, blank)
}

/// Refuses a history without a single client event: nothing to check is not "valid".
/// (Client completions with no invoke are left to [`crate::pair`], which names them.)
/// `lines` is how many lines the input has; `native` says whether a header line is the
/// faultline one; `blank` whether the input is only whitespace.
fn require_operations(
    history: History,
    name: &str,
    lines: usize,
    native: bool,
    blank: bool,
) -> Result<History, HistoryError> {
    if history
        .events
        .iter()
        .any(|e| matches!(e.process, Process::Client(_)))
    {
        return Ok(history);
    }
    let nemesis = history.events.len();
    Err(no_operations(&history, nemesis, name, lines, native, blank))
}

/// The error for a history with no client event and `nemesis` nemesis events.
fn no_operations(
    history: &History,
    nemesis: usize,
    name: &str,
    lines: usize,
    native: bool,
    blank: bool,
) -> HistoryError {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut found = if nemesis > 0 {
        format!("only {}", plural(nemesis, "nemesis event"))
    } else if lines == 0 {
        "the file is empty".to_string()
    } else if native && !history.meta.is_empty() {
        "only a header line".to_string()
    } else if blank {
        "only blank lines".to_string()
    } else {
        "no events".to_string()
    };
    if history.truncated_tail {
        found.push_str(", and a last line cut short mid-write (skipped)");
    }
    HistoryError::NoOperations {
        file: name.to_string(),
        line: lines.max(1),
        found,
    }
}

/// Reads JSONL with the event vector sized up front (one event per line; no event
/// line is shorter than 40 bytes, so blank lines cannot make it huge).
fn read_jsonl(bytes: &[u8], name: &str) -> Result<History, HistoryError> {
    let lines = memchr::memchr_iter(b'\n', bytes).count() + 1;
    let capacity = lines.min(bytes.len() / 40 + 1);
    let mut events = Vec::with_capacity(capacity);
    let (history, _) = collect_jsonl(JsonlReader::new(bytes, name), name, true, &mut |ev, _| {
        events.push(ev);
        Ok(())
    })?;
    Ok(History { events, ..history })
}

/// Hands every event of `reader` and its line to `sink`, checking the pairing rules of
/// [`crate::pair`] as the lines come when `check_pairs` (a sink that pairs checks them
/// itself), so that a completion that does not match its invoke is an error naming its
/// line. Answers the history's header and tail flag (with no events: they went to
/// `sink`) and how many lines were read.
fn collect_jsonl<R: BufRead>(
    mut reader: JsonlReader<R>,
    name: &str,
    check_pairs: bool,
    sink: &mut dyn FnMut(Event, usize) -> Result<(), HistoryError>,
) -> Result<(History, usize), HistoryError> {
    let mut open: HashMap<u64, Open> = HashMap::new();
    while let Some(ev) = reader.next() {
        let ev = ev?;
        let line = reader.lines_read();
        if check_pairs {
            check_pairing(&mut open, &ev, line)
                .map_err(|message| HistoryError::parse(name, line, message))?;
        }
        sink(ev, line)?;
    }
    let history = History {
        meta: reader.header().cloned().unwrap_or_default(),
        events: Vec::new(),
        truncated_tail: reader.truncated_tail(),
    };
    Ok((history, reader.lines_read()))
}

/// An invoke waiting for its completion, and the line it is on.
struct Open {
    f: String,
    key: Option<Key>,
    time: u64,
    index: u64,
    line: usize,
}

impl Open {
    fn view(&self) -> InFlight<'_> {
        InFlight {
            f: &self.f,
            key: self.key.as_ref(),
            time: self.time,
            index: self.index,
            line: Some(self.line),
        }
    }
}

/// The pairing rules for `ev` on `line`, given each process's invoke in flight.
fn check_pairing(open: &mut HashMap<u64, Open>, ev: &Event, line: usize) -> Result<(), String> {
    let Process::Client(p) = ev.process else {
        return Ok(());
    };
    if ev.kind == EventType::Invoke {
        if let Some(o) = open.get(&p) {
            return Err(second_invoke(p, ev, &o.view()));
        }
        let o = Open {
            f: ev.f.clone(),
            key: ev.key.clone(),
            time: ev.time,
            index: ev.index,
            line,
        };
        open.insert(p, o);
        return Ok(());
    }
    match open.remove(&p) {
        None => Err(orphan_completion(p, ev)),
        Some(o) => completion_mismatch(p, ev, &o.view()).map_or(Ok(()), Err),
    }
}

/// `bytes` as text, or a parse error naming the line of the first invalid byte.
fn utf8<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, HistoryError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        let col = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        HistoryError::parse(
            name,
            line,
            format!("invalid UTF-8 at byte {} of the line (byte offset {at}); histories must be UTF-8 text", col + 1),
        )
    })
}
