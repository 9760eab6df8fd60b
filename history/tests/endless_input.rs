//! Endless or huge input (`/dev/zero`, a stream that never ends) is refused after a
//! bounded read in every format, with an error naming the source, the line and the
//! limit: detection reads a bounded head, JSONL is streamed with a longest line, and
//! the whole-file formats (Jepsen EDN, Porcupine logs) are read up to a size limit.

use faultline_history::import::{
    read_from, Format, ImportOptions, Limits, DETECT_BYTES, MAX_WHOLE_FILE_BYTES,
};
use faultline_history::jsonl::MAX_LINE_BYTES;
use faultline_history::{load, HistoryError};
use std::cell::Cell;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

/// Endlessly repeats `pattern`, counting the bytes handed out.
struct Endless {
    pattern: &'static [u8],
    at: usize,
    given: Rc<Cell<u64>>,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        for b in buf.iter_mut() {
            *b = self.pattern[self.at];
            self.at = (self.at + 1) % self.pattern.len();
        }
        self.given.set(self.given.get() + buf.len() as u64);
        Ok(buf.len())
    }
}

/// Reads `pattern` forever as `format` and expects an error at `line` naming `limit`,
/// after reading not much more than `bound` bytes.
fn expect_refused(
    pattern: &'static [u8],
    format: Format,
    limits: &Limits,
    line: usize,
    limit: &str,
) {
    let given = Rc::new(Cell::new(0));
    let source = Endless {
        pattern,
        at: 0,
        given: given.clone(),
    };
    let what = format!("{format} {:?}", String::from_utf8_lossy(pattern));
    match read_from(source, "endless", format, &ImportOptions::default(), limits) {
        Err(e @ HistoryError::Parse { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("endless:{line}: ")),
                "{what}: {msg}"
            );
            assert!(msg.contains(limit), "{what}: {msg} lacks {limit}");
        }
        other => panic!(
            "{what}: expected a parse error, got {:?}",
            other.map(|h| h.events.len())
        ),
    }
    let bound = limits.max_line_bytes.max(limits.max_whole_file_bytes) + DETECT_BYTES + (1 << 20);
    assert!(
        given.get() <= bound as u64,
        "{what}: read {} bytes, more than {bound}",
        given.get()
    );
}

#[test]
fn the_default_limits_are_64_mib_per_line_and_1_gib_per_whole_file() {
    let limits = Limits::default();
    assert_eq!(limits.max_line_bytes, 64 << 20);
    assert_eq!(limits.max_line_bytes, MAX_LINE_BYTES);
    assert_eq!(limits.max_whole_file_bytes, 1 << 30);
    assert_eq!(limits.max_whole_file_bytes, MAX_WHOLE_FILE_BYTES);
}

#[test]
fn an_endless_line_is_refused_as_jsonl_with_the_default_limits() {
    let limits = Limits::default();
    // Zeros (as /dev/zero gives), letters, spaces: detected (or forced) as JSONL.
    expect_refused(b"\0", Format::Auto, &limits, 1, "64 MiB");
    expect_refused(b"x", Format::Jsonl, &limits, 1, "64 MiB");
    expect_refused(b" ", Format::Auto, &limits, 1, "64 MiB");
    expect_refused(b"{\"index\":", Format::Auto, &limits, 1, "64 MiB");
}

#[test]
fn endless_input_in_a_whole_file_format_is_refused_at_the_size_limit() {
    let limits = Limits {
        max_whole_file_bytes: 4 << 20,
        ..Limits::default()
    };
    // `{{` and `[` are detected as EDN; `INFO ` as a Porcupine log.
    expect_refused(b"{", Format::Auto, &limits, 1, "4 MiB");
    expect_refused(b"[", Format::Edn, &limits, 1, "4 MiB");
    expect_refused(b"\0", Format::Edn, &limits, 1, "4 MiB");
    expect_refused(b"\0", Format::Porcupine, &limits, 1, "4 MiB");
    // Lines that would parse: the error names the line the limit was reached on.
    let log: &'static [u8] = b"INFO  jepsen.util - 0\t:invoke\t:read\tnil\n";
    let line = (4 << 20) / log.len() + 1;
    expect_refused(log, Format::Auto, &limits, line, "4 MiB");
    let edn: &'static [u8] = b"{:process 0 :type :invoke :f :read :value nil}\n";
    let line = (4 << 20) / edn.len() + 1;
    expect_refused(edn, Format::Edn, &limits, line, "4 MiB");
}

#[test]
fn dev_zero_is_refused() {
    let zero = Path::new("/dev/zero");
    if !zero.exists() {
        return;
    }
    for format in [Format::Auto, Format::Jsonl] {
        match load(zero, format) {
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("/dev/zero:1: line 1 is longer than 64 MiB"),
                    "{msg}"
                );
            }
            Ok(h) => panic!("{format}: expected an error, got {} events", h.events.len()),
        }
    }
}

#[test]
fn streaming_and_in_memory_reads_detect_alike_after_a_byte_order_mark() {
    // The deciding byte sits at the end of the detection window, after a BOM.
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.resize(3 + DETECT_BYTES - 2, b' ');
    bytes.extend_from_slice(b"{:process 0 :type :invoke :f :read :value nil}\n");
    let opts = ImportOptions::default();
    let in_memory = faultline_history::parse_bytes(&bytes, "b", Format::Auto, &opts);
    let streamed = read_from(&bytes[..], "b", Format::Auto, &opts, &Limits::default());
    assert!(in_memory.is_ok(), "{in_memory:?}");
    assert_eq!(
        streamed.map_err(|e| e.to_string()),
        in_memory.map_err(|e| e.to_string())
    );
    // One byte order mark is skipped, not two.
    let twice = b"\xEF\xBB\xBF\xEF\xBB\xBF{:process 0 :type :invoke :f :read :value nil}\n";
    for format in [Format::Auto, Format::Jsonl, Format::Edn, Format::Porcupine] {
        let in_memory = faultline_history::parse_bytes(twice, "b", format, &opts);
        let streamed = read_from(&twice[..], "b", format, &opts, &Limits::default());
        assert!(in_memory.is_err(), "{format}");
        assert_eq!(
            streamed.map_err(|e| e.to_string()),
            in_memory.map_err(|e| e.to_string()),
            "{format}"
        );
    }
}
