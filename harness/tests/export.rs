//! `faultline export` through the binary: a run folder exported as EDN and as a Porcupine
//! log checks to the same verdict as the original, exact big numbers included.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;

mod common;
use common::{faultline, scratch};

fn ev(index: u64, process: u64, kind: &str, f: &str, value: Value, error: Option<&str>) -> String {
    let mut e = json!({"index": index, "time": index * 1_000, "process": process,
                       "type": kind, "f": f, "value": value});
    if let Some(err) = error {
        e["error"] = json!(err);
    }
    e.to_string()
}

fn big() -> Value {
    serde_json::from_str("123456789012345678901234567890").expect("number")
}

/// A cas register with a huge value, a stale read, a mismatch and unknown outcomes.
fn history(stale: bool) -> String {
    let read = if stale { json!(1) } else { big() };
    let lines = [
        ev(0, 0, "invoke", "write", json!(1), None),
        ev(1, 0, "ok", "write", json!(1), None),
        ev(2, 1, "invoke", "cas", json!([1, big()]), None),
        ev(3, 1, "ok", "cas", json!([1, big()]), None),
        ev(4, 2, "invoke", "cas", json!([7, 8]), None),
        ev(5, 2, "fail", "cas", json!([7, 8]), Some("mismatch")),
        ev(6, 3, "invoke", "write", json!(9), None),
        ev(7, 3, "info", "write", json!(9), Some("timed-out")),
        ev(8, 4, "invoke", "read", Value::Null, None),
        ev(9, 4, "ok", "read", read, None),
        ev(10, 5, "invoke", "read", Value::Null, None),
        ev(11, 5, "fail", "read", Value::Null, Some("timed-out")),
    ];
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn run(dir: &Path, args: &[&str]) -> Output {
    faultline()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs")
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn exports_check_to_the_same_verdict() {
    let tmp = scratch("export", "verdicts");
    for (stale, code) in [(false, 0), (true, 1)] {
        let run_dir = tmp.join(format!(
            "store/raft-register/2026120{}T000000",
            u8::from(stale)
        ));
        std::fs::create_dir_all(&run_dir).expect("mkdir");
        std::fs::write(run_dir.join("history.jsonl"), history(stale)).expect("write");
        let d = run_dir.to_str().expect("utf-8");
        let model = ["--model", "cas-register"];
        let orig = run(&tmp, &[&["check", d][..], &model].concat());
        assert_eq!(orig.status.code(), Some(code), "{}", describe(&orig));
        for (format, extra) in [
            ("edn", vec!["--nil-means-unwritten"]),
            ("porcupine", vec![]),
        ] {
            let out = tmp.join(format!("h{}.{format}", u8::from(stale)));
            let o = out.to_str().expect("utf-8");
            let e = run(&tmp, &["export", d, "--format", format, "-o", o]);
            assert_eq!(e.status.code(), Some(0), "{}", describe(&e));
            let text = std::fs::read_to_string(&out).expect("exported");
            assert!(text.contains("123456789012345678901234567890"), "{text}");
            let args = [&["check", o][..], &model, &extra].concat();
            let back = run(&tmp, &args);
            assert_eq!(
                back.status.code(),
                Some(code),
                "{format}: {}",
                describe(&back)
            );
        }
    }
    // Stdout by default; a keyed history cannot be a Porcupine log (exit 254).
    let keyed = tmp.join("keyed.jsonl");
    std::fs::write(
        &keyed,
        format!(
            "{}\n{}\n",
            json!({"index":0,"time":0,"process":0,"type":"invoke","f":"write","key":"k","value":1}),
            json!({"index":1,"time":1,"process":0,"type":"ok","f":"write","key":"k","value":1})
        ),
    )
    .expect("write");
    let k = keyed.to_str().expect("utf-8");
    let e = run(&tmp, &["export", k, "--format", "edn"]);
    assert_eq!(e.status.code(), Some(0), "{}", describe(&e));
    assert!(
        String::from_utf8_lossy(&e.stdout).contains(":value [\"k\" 1]"),
        "{}",
        describe(&e)
    );
    let e = run(&tmp, &["export", k, "--format", "porcupine"]);
    assert_eq!(e.status.code(), Some(254), "{}", describe(&e));
    let _ = std::fs::remove_dir_all(&tmp);
}
