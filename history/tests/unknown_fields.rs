//! Event lines of faultline-history/1 carry only the known fields: an unknown field
//! (a typo such as `"vaule"`, which would otherwise make a write of null) is an error
//! naming it, its line and the nearest known field. Free metadata belongs in the header.

use faultline_history::import::{parse_bytes, Format, ImportOptions};
use faultline_history::{load, HistoryError, JsonlReader};
use std::path::Path;

const HEADER: &str = "{\"format\":\"faultline-history\",\"version\":1,\"anything\":{\"goes\":[1]},\"note\":\"free\"}\n";
const INVOKE: &str = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k\",\"value\":7}\n";

fn error_of(text: &str) -> (usize, String) {
    match JsonlReader::new(text.as_bytes(), "h.jsonl").read_all() {
        Err(HistoryError::Parse {
            file,
            line,
            message,
        }) => {
            assert_eq!(file, "h.jsonl");
            (line, message)
        }
        other => panic!("{text:?}: expected a parse error, got {other:?}"),
    }
}

#[test]
fn a_typo_in_a_field_name_is_an_error_suggesting_the_known_field() {
    let cases = [
        // (the bad line, the field named, the suggestion)
        ("{\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"k\",\"vaule\":7}", "vaule", Some("value")),
        ("{\"index\":1,\"time\":2,\"process\":0,\"Type\":\"ok\",\"type\":\"ok\",\"f\":\"write\"}", "Type", Some("type")),
        ("{\"index\":1,\"tme\":2,\"process\":0,\"type\":\"ok\",\"f\":\"write\"}", "tme", Some("time")),
        ("{\"index\":1,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"nodes\":\"n1\"}", "nodes", Some("node")),
        ("{\"index\":1,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"errror\":\"x\"}", "errror", Some("error")),
        // Escapes and spaces take serde_json's path: the same rule holds.
        ("{ \"index\" : 1, \"process\":0, \"type\":\"o\\u006b\", \"f\":\"write\", \"v\\u0061ule\":7 }", "vaule", Some("value")),
        // Far from every known field: no guess, the list of fields instead.
        ("{\"index\":1,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"latency_ms\":3}", "latency_ms", None),
    ];
    for (line, field, suggestion) in cases {
        let text = format!("{HEADER}{INVOKE}{line}\n");
        let (n, message) = error_of(&text);
        assert_eq!(n, 3, "{line}: {message}");
        assert!(
            message.starts_with(&format!("unknown field \"{field}\"")),
            "{line}: {message}"
        );
        match suggestion {
            Some(s) => assert!(
                message.contains(&format!("did you mean \"{s}\"?")),
                "{line}: {message}"
            ),
            None => {
                assert!(!message.contains("did you mean"), "{line}: {message}");
                assert!(
                    message.contains("index, time, process, type, f, key, value, node, error"),
                    "{line}: {message}"
                );
            }
        }
        assert!(message.contains("header line"), "{line}: {message}");
        // Through load and faultline check's path, with the file name and line.
        let err = parse_bytes(
            text.as_bytes(),
            "h.jsonl",
            Format::Auto,
            &ImportOptions::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.starts_with(&format!("h.jsonl:3: unknown field \"{field}\"")),
            "{err}"
        );
    }
}

#[test]
fn a_header_line_after_the_first_event_is_an_unknown_field() {
    let text = format!("{INVOKE}{HEADER}");
    let (n, message) = error_of(&text);
    assert_eq!(n, 2);
    assert!(message.contains("\"format\""), "{message}");
    assert!(message.contains("first line"), "{message}");
}

#[test]
fn the_header_keeps_free_metadata() {
    let text = format!("{HEADER}{INVOKE}");
    let h = JsonlReader::new(text.as_bytes(), "h.jsonl")
        .read_all()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.events.len(), 1);
    assert_eq!(h.meta.get("note").and_then(|v| v.as_str()), Some("free"));
}

#[test]
fn the_bundled_example_histories_carry_only_known_fields() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/histories");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_some_and(|x| x == "jsonl") {
            let h = load(&path, Format::Jsonl).unwrap_or_else(|e| panic!("{e}"));
            h.pair(&path.display().to_string())
                .unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 4, "examples found: {n}");
}
