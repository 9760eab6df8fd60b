//! `faultline check` refuses bad input with exit 254 and a message naming the file and
//! the line, instead of checking it (the history readers' strict rules, through the
//! binary a user runs).

mod check_support;

use check_support::{check as run, faultline};
use std::process::Command;

/// Exit code and stderr of `faultline check` on `text`.
fn check(name: &str, text: &[u8], args: &[&str]) -> (i32, String) {
    let r = run(name, text, args);
    (r.code, r.stderr)
}

const WRITE: &str = r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":1}
{"index":1,"time":1,"process":0,"type":"ok","f":"write","value":1}
"#;

#[test]
fn bad_input_is_refused_with_its_line() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty.jsonl", String::new(), "no operations"),
        (
            "header.jsonl",
            "{\"format\":\"faultline-history\",\"version\":1}\n".into(),
            "no operations",
        ),
        ("empty.edn", "\n\n".into(), "no operations"),
        (
            "garbage-tail.jsonl",
            format!("{WRITE}this is not json"),
            ":3",
        ),
        (
            "bad-type-tail.jsonl",
            format!(
                "{WRITE}{}",
                r#"{"index":2,"time":2,"process":0,"type":"OK","f":"read","value":null}"#
            ),
            ":3",
        ),
        (
            "typo.jsonl",
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","vaule":1}"#.to_string()
                + "\n",
            "did you mean \"value\"",
        ),
        (
            "key.jsonl",
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","key":"x","value":1}
{"index":1,"time":1,"process":0,"type":"ok","f":"write","key":"y","value":1}
"#
            .into(),
            ":2",
        ),
        (
            "f.jsonl",
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","value":1}
{"index":1,"time":1,"process":0,"type":"ok","f":"read","value":1}
"#
            .into(),
            ":2",
        ),
        (
            "time.jsonl",
            r#"{"index":0,"time":50,"process":0,"type":"invoke","f":"write","value":1}
{"index":1,"time":10,"process":0,"type":"ok","f":"write","value":1}
"#
            .into(),
            ":2",
        ),
    ];
    for (name, text, needle) in cases {
        let (code, err) = check(name, text.as_bytes(), &["--model", "linearizable"]);
        assert_eq!(code, 254, "{name}: {err}");
        assert!(
            err.contains(name),
            "{name}: the message names the file: {err}"
        );
        assert!(err.contains(needle), "{name}: expected {needle:?} in {err}");
    }
}

#[test]
fn a_genuinely_cut_last_line_is_skipped_and_said() {
    let text = format!(
        "{WRITE}{}",
        r#"{"index":2,"time":2,"process":1,"type":"inv"#
    );
    let (code, err) = check("cut.jsonl", text.as_bytes(), &["--model", "linearizable"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("cut short"), "{err}");
}

#[test]
fn an_endless_stream_is_refused_in_bounded_memory() {
    for format in ["jsonl", "auto"] {
        let out = Command::new(faultline())
            .args(["check", "/dev/zero", "--format", format])
            .output()
            .expect("run faultline");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "--format {format}: {err}");
    }
}
