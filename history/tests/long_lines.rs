//! A JSONL line longer than the reader's limit (64 MiB) is an error naming its line and
//! the limit, on every path (in memory, streamed from a file, through a small buffer);
//! a line just under it, a legitimately large value, is read.

use faultline_history::import::{parse_bytes, Format, ImportOptions};
use faultline_history::{load, HistoryError, JsonlReader};
use std::io::BufReader;

const MIB: usize = 1 << 20;
const HEADER: &str = "{\"format\":\"faultline-history\",\"version\":1}\n";
const INVOKE: &str =
    "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n";

/// The beginning of the long line, up to its string value.
const START: &[u8] =
    b"{\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":\"";

/// A history whose third line is an `ok` write whose line is `len` bytes long (newline
/// not counted), followed by one more event line.
fn history_with_a_line_of(len: usize) -> Vec<u8> {
    let start = START;
    let end = b"\"}\n";
    let mut bytes = Vec::with_capacity(len + 200);
    bytes.extend_from_slice(HEADER.as_bytes());
    bytes.extend_from_slice(INVOKE.as_bytes());
    bytes.extend_from_slice(start);
    bytes.resize(bytes.len() + len - start.len() - (end.len() - 1), b'x');
    bytes.extend_from_slice(end);
    bytes.extend_from_slice(
        b"{\"index\":2,\"time\":3,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n",
    );
    bytes
}

fn expect_too_long(result: Result<faultline_history::History, HistoryError>, path: &str) {
    match result {
        Err(HistoryError::Parse { line, message, .. }) => {
            assert_eq!(line, 3, "{path}: {message}");
            assert!(message.contains("64 MiB"), "{path}: {message}");
            assert!(message.contains("line 3"), "{path}: {message}");
        }
        other => panic!(
            "{path}: expected a too-long line error, got {:?}",
            other.map(|h| h.events.len())
        ),
    }
}

#[test]
fn a_line_over_64_mib_is_an_error_naming_it_on_every_path() {
    let bytes = history_with_a_line_of(64 * MIB + 1);
    expect_too_long(
        parse_bytes(&bytes, "big.jsonl", Format::Auto, &ImportOptions::default()),
        "in memory",
    );
    expect_too_long(
        JsonlReader::new(BufReader::with_capacity(4096, &bytes[..]), "big.jsonl").read_all(),
        "small buffer",
    );
    let dir = std::env::temp_dir().join(format!("faultline-long-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("big.jsonl");
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
    expect_too_long(load(&path, Format::Auto), "file");
    // Cut inside the long line, without a newline: still too long, not "cut short".
    let bytes = history_with_a_line_of(64 * MIB + 1000);
    std::fs::write(&path, &bytes[..bytes.len() - 200]).unwrap_or_else(|e| panic!("{e}"));
    expect_too_long(load(&path, Format::Jsonl), "file cut short");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_line_of_exactly_64_mib_is_read() {
    let bytes = history_with_a_line_of(64 * MIB);
    let h = parse_bytes(&bytes, "big.jsonl", Format::Auto, &ImportOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.events.len(), 3);
    let h = JsonlReader::new(BufReader::with_capacity(4096, &bytes[..]), "big.jsonl")
        .read_all()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        h.events[1].value.as_str().map(str::len),
        Some(64 * MIB - START.len() - 2)
    );
}
