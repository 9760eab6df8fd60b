//! Format names, content detection for every testdata file, and `load` errors.

use faultline_history::import::{detect, parse_bytes, parse_str, Format, ImportOptions};
use faultline_history::{load, write_history, Event, EventType, History, HistoryError};
use serde_json::json;
use std::path::{Path, PathBuf};

const PORCUPINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/porcupine");
const CAUSAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/causal");

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn format_names_parse_and_print() {
    for (name, f) in [
        ("auto", Format::Auto),
        ("jsonl", Format::Jsonl),
        ("edn", Format::Edn),
        ("porcupine", Format::Porcupine),
        ("EDN", Format::Edn),
    ] {
        assert_eq!(name.parse::<Format>(), Ok(f));
        assert_eq!(f.to_string(), name.to_ascii_lowercase());
    }
    let err = "csv".parse::<Format>().err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("unknown format \"csv\"; expected one of auto|jsonl|edn|porcupine")
    );
    assert_eq!(Format::default(), Format::Auto);
}

#[test]
fn detection_on_literal_heads() {
    let cases: [(&[u8], Format); 14] = [
        (b"", Format::Jsonl),
        (b"   \n\n", Format::Jsonl),
        (
            b"{\"format\":\"faultline-history\",\"version\":1}\n",
            Format::Jsonl,
        ),
        (b"\xEF\xBB\xBF{\"index\":0}", Format::Jsonl),
        (b"{ \"index\": 0 }", Format::Jsonl),
        (b"{:process 0 :type :invoke}", Format::Edn),
        (b"{\n  :process 0}", Format::Edn),
        (b"[{:process 0}]", Format::Edn),
        (b"; comment\n{:a 1}", Format::Edn),
        (b"#jepsen.history.Op{:index 0}", Format::Edn),
        (b"(\n{:a 1})", Format::Edn),
        (
            b"INFO  jepsen.util - 0\t:invoke\t:read\tnil",
            Format::Porcupine,
        ),
        (
            b"\n\nINFO\tjepsen.util - 0 :invoke :read nil",
            Format::Porcupine,
        ),
        (b"INFORMATION", Format::Jsonl),
    ];
    for (head, expected) in cases {
        assert_eq!(
            detect(head),
            expected,
            "{:?}",
            String::from_utf8_lossy(head)
        );
    }
}

#[test]
fn detection_picks_the_right_format_for_every_testdata_file() {
    let etcd = files(&format!("{PORCUPINE}/jepsen"), "log");
    assert_eq!(etcd.len(), 103);
    for path in etcd {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let expected = if bytes.is_empty() {
            Format::Jsonl
        } else {
            Format::Porcupine
        };
        assert_eq!(detect(&bytes), expected, "{}", path.display());
    }
    let kv = files(&format!("{PORCUPINE}/kv"), "txt");
    assert_eq!(kv.len(), 6);
    for path in kv {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert_eq!(detect(&bytes), Format::Edn, "{}", path.display());
    }
    let causal = Path::new(CAUSAL).join("jepsen-causal-reverse/causal_reverse_examples.edn");
    let bytes = std::fs::read(&causal).unwrap_or_default();
    assert_eq!(detect(&bytes), Format::Edn);
}

#[test]
fn the_causal_reverse_examples_read_as_generic_edn() {
    // Not a history (a vector of test cases), but the generic reader reads it whole.
    let path = Path::new(CAUSAL).join("jepsen-causal-reverse/causal_reverse_examples.edn");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let forms = faultline_history::import::edn::parse_all(&text, "causal")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(forms.len(), 1);
    let cases = forms[0].to_json();
    let cases = cases.as_array().map(Vec::as_slice).unwrap_or_default();
    assert_eq!(cases.len(), 7);
    assert_eq!(cases[0][":name"], json!("valid"));
    assert_eq!(cases[2][":expected-valid?"], json!(false));
    assert_eq!(cases[0][":history"][5][":value"], json!([1, 2]));
    // As a history it is an error naming line 5, where the first map lacks :process.
    match parse_str(&text, "c.edn", Format::Auto) {
        Err(HistoryError::Parse {
            line: 5, message, ..
        }) => assert!(message.contains(":process"), "{message}"),
        other => panic!("expected an error at line 5, got {other:?}"),
    }
}

#[test]
fn load_reads_each_format_from_disk_and_reports_missing_files() {
    let dir = std::env::temp_dir().join(format!("faultline-detect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let mut h = History::from_events(vec![
        Event::client(0, 0, EventType::Invoke, "write", json!(1)),
        Event::client(1, 0, EventType::Ok, "write", json!(1)),
    ]);
    h.meta.insert("seed".into(), json!(42));
    let jsonl = dir.join("h.jsonl");
    let mut buf = Vec::new();
    write_history(&mut buf, &h).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&jsonl, &buf).unwrap_or_else(|e| panic!("{e}"));
    let back = load(&jsonl, Format::Auto).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.events, h.events);
    assert_eq!(back.meta.get("seed"), Some(&json!(42)));

    let edn = dir.join("h.edn");
    std::fs::write(&edn, "{:process 0 :type :invoke :f :write :value 1}\n{:process 0 :type :ok :f :write :value 1}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        load(&edn, Format::Auto).map(|h| h.events).ok(),
        Some(h.events.clone())
    );

    // Forcing the wrong format is a parse error, not a panic or a silent empty history.
    match load(&edn, Format::Jsonl) {
        Err(HistoryError::Parse { line: 1, .. }) => {}
        other => panic!("expected a JSONL parse error at line 1, got {other:?}"),
    }
    match load(&jsonl, Format::Porcupine) {
        Err(HistoryError::Parse { line: 1, .. }) => {}
        other => panic!("expected a log parse error at line 1, got {other:?}"),
    }
    let missing = dir.join("nope.jsonl");
    match load(&missing, Format::Auto) {
        Err(HistoryError::Io { file, .. }) => assert!(file.ends_with("nope.jsonl"), "{file}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_utf8_is_a_parse_error_naming_the_line_in_every_format() {
    let jsonl: &[u8] = b"{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{\"index\":1,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":\"\xc3\x28\"}\n";
    let edn: &[u8] =
        b"{:process 0 :type :ok :f :read}\n\n{:process 0 :type :ok :f :read :value \"\xff\"}";
    let log: &[u8] =
        b"INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t\xfe\n";
    for (bytes, format, line) in [
        (jsonl, Format::Jsonl, 2),
        (edn, Format::Edn, 3),
        (log, Format::Porcupine, 2),
    ] {
        for f in [format, Format::Auto] {
            match parse_bytes(bytes, "u", f, &ImportOptions::default()) {
                Err(HistoryError::Parse { line: n, .. }) => assert_eq!(n, line, "{f}"),
                other => panic!("{f}: expected a parse error, got {other:?}"),
            }
        }
    }
}
