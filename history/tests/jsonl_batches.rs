//! Long JSONL inputs are parsed in batches of lines in parallel: errors still name their
//! own line (parse errors, pairing errors, bad indexes, wherever they fall in a batch),
//! blank lines and a header keep the numbering, and a history paired as it streams in
//! (`load_paired`) is the history `load` then `pair` give.

use std::io::Write;

use faultline_history::import::{
    load_paired, parse_bytes, read_from, Format, ImportOptions, Limits,
};
use faultline_history::{load, HistoryError};

const HEADER: &str = "{\"format\":\"faultline-history\",\"version\":1,\"initial\":0}\n";

/// `ops` operations of 5 processes on 7 keys, with a blank line every 37 lines and some
/// info and fail completions; one line per event, event `i` on line `2 + i` plus the
/// blank lines before it.
fn history(ops: usize) -> (String, Vec<usize>) {
    let mut text = String::from(HEADER);
    let mut line_of = Vec::new();
    let mut line = 1;
    let mut index = 0;
    let mut push = |text: &mut String, ev: String, line_of: &mut Vec<usize>| {
        line += 1;
        if line % 37 == 0 {
            text.push('\n');
            line += 1;
        }
        text.push_str(&ev);
        text.push('\n');
        line_of.push(line);
    };
    for op in 0..ops {
        let p = op % 5;
        let key = op % 7;
        let (f, value) = if op % 3 == 0 {
            ("read", "null".to_string())
        } else {
            ("write", op.to_string())
        };
        let inv = format!(
            "{{\"index\":{index},\"time\":{index},\"process\":{p},\"type\":\"invoke\",\"f\":\"{f}\",\"key\":\"k{key}\",\"value\":{value}}}"
        );
        index += 1;
        push(&mut text, inv, &mut line_of);
        let kind = match op % 11 {
            0 => "info",
            1 => "fail",
            _ => "ok",
        };
        let result = if f == "read" && kind == "ok" {
            "7".to_string()
        } else {
            value
        };
        let done = format!(
            "{{\"index\":{index},\"time\":{index},\"process\":{p},\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"k{key}\",\"value\":{result}}}"
        );
        index += 1;
        push(&mut text, done, &mut line_of);
    }
    (text, line_of)
}

fn parse(text: &str) -> Result<faultline_history::History, HistoryError> {
    parse_bytes(
        text.as_bytes(),
        "b.jsonl",
        Format::Auto,
        &ImportOptions::default(),
    )
}

fn streamed(text: &str) -> Result<faultline_history::History, HistoryError> {
    read_from(
        text.as_bytes(),
        "b.jsonl",
        Format::Auto,
        &ImportOptions::default(),
        &Limits::default(),
    )
}

fn error_line(r: Result<faultline_history::History, HistoryError>) -> (usize, String) {
    match r {
        Err(HistoryError::Parse { line, message, .. }) => (line, message),
        other => panic!(
            "expected a parse error, got {:?}",
            other.map(|h| h.events.len())
        ),
    }
}

#[test]
fn a_long_history_reads_the_same_in_batches_and_line_by_line() {
    let (text, line_of) = history(20_000);
    let whole = parse(&text).unwrap();
    let stream = streamed(&text).unwrap();
    assert_eq!(whole.events.len(), 40_000);
    assert_eq!(whole.events, stream.events);
    assert_eq!(whole.meta, stream.meta);
    assert_eq!(line_of.len(), 40_000);
    // Line by line: each line on its own, so no batch forms.
    let mut one_by_one = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let h = parse(&format!("{line}\n"));
        // A lone completion does not pair; parse the event alone through serde instead.
        let ev: faultline_history::Event = serde_json::from_str(line).unwrap();
        if let Ok(h) = h {
            assert_eq!(h.events, vec![ev.clone()]);
        }
        one_by_one.push(ev);
    }
    assert_eq!(whole.events, one_by_one);
}

#[test]
fn errors_name_their_own_line_wherever_they_fall_in_a_batch() {
    let (text, line_of) = history(5_000);
    let lines: Vec<&str> = text.lines().collect();
    for &event in &[0usize, 63, 64, 65, 700, 4095, 4096, 4097, 9_999] {
        let target = line_of[event];
        // 1. Garbage on the line.
        let mut broken = lines.clone();
        broken[target - 1] = "{\"index\": oops}";
        let (line, message) = error_line(parse(&(broken.join("\n") + "\n")));
        assert_eq!(line, target, "garbage at event {event}: {message}");
        let (line, _) = error_line(streamed(&(broken.join("\n") + "\n")));
        assert_eq!(line, target, "garbage at event {event}, streamed");
        // 2. An index that does not increase.
        let mut broken = lines.clone();
        let replaced =
            broken[target - 1].replacen(&format!("\"index\":{event},"), "\"index\":0,", 1);
        if event > 0 {
            broken[target - 1] = &replaced;
            let (line, message) = error_line(parse(&(broken.join("\n") + "\n")));
            assert_eq!(line, target, "index at event {event}: {message}");
            assert!(message.contains("does not increase"), "{message}");
        }
    }
}

#[test]
fn pairing_errors_name_their_line_in_a_batch_and_when_paired_while_streaming() {
    let (text, line_of) = history(5_000);
    let lines: Vec<&str> = text.lines().collect();
    // Event 2 * 3000 + 1 completes operation 3000, a write of k4 (3000 % 7 = 4).
    let event = 6_001;
    let target = line_of[event];
    assert!(
        lines[target - 1].contains("\"key\":\"k4\""),
        "{}",
        lines[target - 1]
    );
    let mut broken = lines.clone();
    let replaced = broken[target - 1].replace("\"key\":\"k4\"", "\"key\":\"k5\"");
    broken[target - 1] = &replaced;
    let bad = broken.join("\n") + "\n";
    let (line, message) = error_line(parse(&bad));
    assert_eq!(line, target, "{message}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, &bad).unwrap();
    match load_paired(&path, Format::Auto) {
        Err(HistoryError::Parse { line, message, .. }) => {
            assert_eq!(line, target, "{message}")
        }
        other => panic!(
            "expected a parse error, got {:?}",
            other.map(|p| p.paired.ops.len())
        ),
    }
}

#[test]
fn a_history_paired_while_streaming_is_the_one_load_then_pair_gives() {
    let (text, _) = history(12_345);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    // A nemesis event and a cut-short last line too.
    writeln!(
        f,
        "{{\"index\":99999999,\"time\":1,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start-partition\",\"value\":null}}"
    )
    .unwrap();
    write!(f, "{{\"index\":100000000,\"ti").unwrap();
    drop(f);
    let loaded = load(&path, Format::Auto).unwrap();
    let paired = loaded.pair("h.jsonl").unwrap();
    let streamed = load_paired(&path, Format::Auto).unwrap();
    assert_eq!(streamed.paired.ops, paired.ops);
    assert_eq!(streamed.paired.faults, paired.faults);
    assert_eq!(streamed.meta, loaded.meta);
    assert!(streamed.truncated_tail && loaded.truncated_tail);
    assert_eq!(paired.ops.len(), 12_345);
}

#[test]
fn a_file_of_nemesis_events_alone_is_refused_by_the_streaming_pairer_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.jsonl");
    let mut text = String::from(HEADER);
    for i in 0..200 {
        text.push_str(&format!(
            "{{\"index\":{i},\"time\":1,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"value\":null}}\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    let a = load(&path, Format::Auto).unwrap_err().to_string();
    let b = load_paired(&path, Format::Auto).unwrap_err().to_string();
    assert_eq!(a, b);
    assert!(a.contains("only 200 nemesis events"), "{a}");
}

#[test]
fn the_streaming_pairer_refuses_every_pairing_error_in_the_words_and_line_of_load() {
    let (text, line_of) = history(3_000);
    let lines: Vec<&str> = text.lines().collect();
    // Operation 2000: process 0, k5 (2000 % 7), a write; its invoke is event 4000.
    let invoke = line_of[4_000];
    let done = line_of[4_001];
    assert!(lines[invoke - 1].contains("\"process\":0,\"type\":\"invoke\""));
    let cases: Vec<(&str, usize, String)> = vec![
        (
            "a completion with another key",
            done,
            lines[done - 1].replace("\"key\":\"k5\"", "\"key\":\"k6\""),
        ),
        (
            "a completion with another f",
            done,
            lines[done - 1].replace("\"f\":\"write\"", "\"f\":\"cas\""),
        ),
        (
            "a second invoke",
            done,
            lines[done - 1].replace("\"type\":\"ok\"", "\"type\":\"invoke\""),
        ),
        (
            "a completion before its invoke's time",
            done,
            lines[done - 1].replace("\"time\":4001", "\"time\":1"),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (what, line, replacement) in cases {
        assert_ne!(replacement, lines[line - 1], "{what}: the case changes its line");
        let mut broken = lines.clone();
        broken[line - 1] = &replacement;
        let path = dir.path().join("p.jsonl");
        std::fs::write(&path, broken.join("\n") + "\n").unwrap();
        let a = load(&path, Format::Auto).unwrap_err();
        let b = load_paired(&path, Format::Auto).unwrap_err();
        assert_eq!(a.to_string(), b.to_string(), "{what}");
        match b {
            HistoryError::Parse { line: at, .. } => assert_eq!(at, line, "{what}"),
            other => panic!("{what}: {other}"),
        }
    }
    // A completion whose process has nothing in flight (remove the invoke).
    let mut broken = lines.clone();
    broken.remove(invoke - 1);
    let path = dir.path().join("o.jsonl");
    std::fs::write(&path, broken.join("\n") + "\n").unwrap();
    let a = load(&path, Format::Auto).unwrap_err().to_string();
    let b = load_paired(&path, Format::Auto).unwrap_err().to_string();
    assert_eq!(a, b);
    assert!(a.contains(&format!(":{}:", done - 1)), "{a}");
}
