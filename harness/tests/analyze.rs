//! `faultline analyze` and `faultline check RUN_DIR` on literal run folders, without Docker:
//! a finished run, a run whose harness was killed (an early run.json, a history whose last
//! line is cut short, no verdict), a run whose target claims nothing, a run without
//! run.json.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{faultline, scratch};

fn ev(index: u64, process: u64, kind: &str, f: &str, value: Value) -> String {
    json!({"index": index, "time": index * 1_000_000, "process": process,
           "type": kind, "f": f, "value": value})
    .to_string()
}

fn header() -> String {
    json!({"format": "faultline-history", "version": 1, "target": "raft-register",
           "workload": "register", "nodes": ["n1", "n2", "n3"], "seed": 7})
    .to_string()
}

/// write 1, write 2, then a read of 1: a stale read.
fn stale_lines() -> Vec<String> {
    vec![
        header(),
        ev(0, 0, "invoke", "write", json!(1)),
        ev(1, 0, "ok", "write", json!(1)),
        ev(2, 1, "invoke", "write", json!(2)),
        ev(3, 1, "ok", "write", json!(2)),
        ev(4, 2, "invoke", "read", Value::Null),
        json!({"index": 5, "time": 5_000_000, "process": 2, "type": "ok", "f": "read",
               "value": 1, "node": "n3"})
        .to_string(),
    ]
}

/// write 1, read 1, then an invoke the harness never saw complete.
fn good_lines() -> Vec<String> {
    vec![
        header(),
        ev(0, 0, "invoke", "write", json!(1)),
        ev(1, 0, "ok", "write", json!(1)),
        ev(2, 1, "invoke", "read", Value::Null),
        ev(3, 1, "ok", "read", json!(1)),
        ev(4, 0, "invoke", "write", json!(2)),
    ]
}

fn plan(target: &str) -> Value {
    json!({"target": target, "nodes": 3, "workload": "register", "nemesis": ["partition"],
           "seed": 7, "check": ["claimed"]})
}

fn run_dir(store: &Path, target: &str, stamp: &str) -> PathBuf {
    let dir = store.join(target).join(stamp);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn write_history(dir: &Path, lines: &[String], cut: Option<&str>) {
    let mut text = lines.join("\n");
    text.push('\n');
    if let Some(c) = cut {
        text.push_str(c);
    }
    std::fs::write(dir.join("history.jsonl"), text).expect("history");
}

fn analyze(dir: &Path, args: &[&str]) -> Output {
    faultline()
        .arg("analyze")
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

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")
}

#[test]
fn a_killed_run_is_analysed_and_its_reports_written() {
    let tmp = scratch("analyze", "killed");
    let dir = run_dir(&tmp.join("store"), "raft-register", "20261204T101010");
    std::fs::write(
        dir.join("run.json"),
        json!({"schema": "faultline-run/1", "target": "raft-register", "plan": plan("raft-register"),
               "seed": 7, "claims": {"models": ["linearizable"], "reason": "raft"},
               "in_progress": true})
        .to_string(),
    )
    .expect("run.json");
    // The recorder died in the middle of a line.
    write_history(&dir, &good_lines(), Some(r#"{"index":5,"time":50000"#));
    std::fs::write(dir.join("progress.json"), r#"{"phase":"main","ops":5}"#).expect("progress");
    // Before: nothing to re-render; the hint names analyze.
    let report = faultline()
        .args(["report"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert_eq!(report.status.code(), Some(254), "{}", describe(&report));
    assert!(
        describe(&report).contains("faultline analyze"),
        "{}",
        describe(&report)
    );

    let out = analyze(&tmp, &[dir.to_str().expect("utf-8")]);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("linearizable (claimed): valid"), "{text}");
    assert!(text.contains("cut short"), "{text}");
    assert!(
        text.contains("last line of history.jsonl was cut short"),
        "{text}"
    );
    let verdict = read_json(&dir.join("verdict.json"));
    assert_eq!(verdict["exit_code"], 2);
    assert_eq!(verdict["models"][0]["model"], "linearizable");
    assert_eq!(verdict["models"][0]["result"], "valid");
    for f in ["report.html", "report.md", "junit.xml"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let index = std::fs::read_to_string(tmp.join("store/index.html")).expect("index.html");
    assert!(index.contains("20261204T101010"), "{index}");
    assert!(index.contains("data-status=\"cut short\""), "{index}");
    assert!(
        !dir.join("progress.json").exists(),
        "a stale progress file is removed"
    );
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["interrupted"], true);
    assert!(run.get("in_progress").is_none(), "{run}");
    assert_eq!(
        run["ops"]["info"], 1,
        "the invoke without completion: {run}"
    );
    // The reports render again now, with the same exit code.
    let report = faultline()
        .args(["report"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert_eq!(report.status.code(), Some(2), "{}", describe(&report));
    // And analysing again gives the same answer.
    assert_eq!(
        analyze(&tmp, &[dir.to_str().expect("utf-8")]).status.code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_finished_run_with_a_stale_read_exits_1_and_latest_is_the_default() {
    let tmp = scratch("analyze", "stale");
    let store = tmp.join("store");
    let dir = run_dir(&store, "raft-register", "20261204T111111");
    std::fs::write(
        dir.join("run.json"),
        json!({"target": "raft-register", "plan": plan("raft-register"), "seed": 7,
               "duration_ms": 1000, "interrupted": false,
               "phases": [{"name": "final reads", "at_ns": 4_000_000}],
               "claims": {"models": ["linearizable"], "reason": "raft"}})
        .to_string(),
    )
    .expect("run.json");
    write_history(&dir, &stale_lines(), None);
    std::os::unix::fs::symlink("raft-register/20261204T111111", store.join("latest"))
        .expect("latest");
    let out = analyze(&tmp, &[]);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("linearizable (claimed): INVALID"), "{text}");
    let verdict = read_json(&dir.join("verdict.json"));
    assert_eq!(verdict["overall"], "invalid");
    assert_eq!(verdict["exit_code"], 1);
    // The witness says which node served the stale read, in both reports.
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("served by n3"), "{html}");
    assert!(
        html.contains("<g class=\"phase\"><title>final reads from"),
        "{html}"
    );
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(md.contains("served by n3; no fault in force"), "{md}");
    // `check` takes the run folder, and store/latest, for its history.
    for arg in [
        "store/latest",
        "store/raft-register/20261204T111111",
        "store",
    ] {
        let out = faultline()
            .args(["check", arg])
            .current_dir(&tmp)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{arg}: {}", describe(&out));
    }
    // Another model set on request: all of them, the claim still decides.
    let out = analyze(&tmp, &["--check", "all"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let verdict = read_json(&dir.join("verdict.json"));
    let checked = verdict["models"]
        .as_array()
        .map(|m| m.iter().filter(|e| e["checked"] == true).count())
        .unwrap_or(0);
    assert!(checked > 1, "{verdict}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_target_that_claims_nothing_exits_0_whatever_holds() {
    let tmp = scratch("analyze", "noclaim");
    let dir = run_dir(&tmp.join("store"), "quorum-kv", "20261204T121212");
    let mut p = plan("quorum-kv");
    p["check"] = json!(["all"]);
    std::fs::write(
        dir.join("run.json"),
        json!({"target": "quorum-kv", "plan": p, "duration_ms": 5,
               "claims": {"models": [], "reason": "R + W <= N"}})
        .to_string(),
    )
    .expect("run.json");
    write_history(&dir, &stale_lines(), None);
    let out = analyze(&tmp, &[dir.to_str().expect("utf-8")]);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("linearizable: INVALID"), "{text}");
    assert!(text.contains("claims no model"), "{text}");
    let verdict = read_json(&dir.join("verdict.json"));
    assert_eq!(verdict["exit_code"], 0);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn without_run_json_the_header_names_the_target() {
    let tmp = scratch("analyze", "norunjson");
    let dir = run_dir(&tmp.join("store"), "raft-register", "20261204T131313");
    write_history(&dir, &stale_lines(), None);
    let out = analyze(&tmp, &[dir.to_str().expect("utf-8")]);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("history's header"), "{text}");
    assert!(dir.join("verdict.json").is_file());
    // A folder with no history at all is the user's mistake.
    let empty = run_dir(&tmp.join("store"), "raft-register", "20261204T141414");
    std::fs::write(empty.join("run.json"), "{}").expect("run.json");
    let out = analyze(&tmp, &[empty.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(254), "{}", describe(&out));
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_transactional_run_is_analysed_with_the_isolation_models() {
    let tmp = scratch("analyze", "txn");
    let store = tmp.join("store");
    let dir = run_dir(&store, "raft-register", "20261204T121212");
    let mut plan = plan("raft-register");
    plan["workload"] = json!("list-append");
    std::fs::write(
        dir.join("run.json"),
        json!({"target": "raft-register", "plan": plan, "seed": 7, "duration_ms": 1000,
               "interrupted": false,
               "claims": {"models": ["strict-serializable"], "reason": "one log entry"}})
        .to_string(),
    )
    .expect("run.json");
    // T1 and T2 both read [1] and append: a lost update.
    let lines = vec![
        header(),
        ev(0, 0, "invoke", "txn", json!([["append", 1, 1]])),
        ev(1, 0, "ok", "txn", json!([["append", 1, 1]])),
        ev(
            2,
            1,
            "invoke",
            "txn",
            json!([["r", 1, null], ["append", 1, 2]]),
        ),
        ev(
            3,
            2,
            "invoke",
            "txn",
            json!([["r", 1, null], ["append", 1, 3]]),
        ),
        ev(4, 1, "ok", "txn", json!([["r", 1, [1]], ["append", 1, 2]])),
        ev(5, 2, "ok", "txn", json!([["r", 1, [1]], ["append", 1, 3]])),
        ev(6, 0, "invoke", "txn", json!([["r", 1, null]])),
        ev(7, 0, "ok", "txn", json!([["r", 1, [1, 2, 3]]])),
    ];
    write_history(&dir, &lines, None);
    let out = analyze(&dir, &[dir.to_str().expect("utf-8")]);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("anomalies found: ") && text.contains("lost-update"),
        "{text}"
    );
    assert!(
        text.contains("strict-serializable (claimed): INVALID"),
        "{text}"
    );
    let verdict = read_json(&dir.join("verdict.json"));
    assert_eq!(verdict["overall"], "invalid");
    let rows = verdict["models"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 17, "{verdict}");
    let _ = std::fs::remove_dir_all(&tmp);
}
