//! The command line through the real binary, without Docker: the exit code over several
//! files, one report folder per file, closed pipes, user mistakes (exit 254, never a
//! panic or 255), huge values and control characters in what is printed and written.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

mod common;
use common::{closed_pipe, faultline, scratch};

/// One event of a faultline-history/1 file.
fn event(index: u64, process: u64, kind: &str, f: &str, key: Option<&str>, value: Value) -> Value {
    let mut e = json!({
        "index": index, "time": index * 1_000_000, "process": process,
        "type": kind, "f": f, "value": value,
    });
    if let Some(k) = key {
        e["key"] = json!(k);
    }
    e
}

/// A history file's text from its events.
fn lines(events: &[Value]) -> String {
    let mut s = String::from("{\"format\":\"faultline-history\",\"version\":1}\n");
    for e in events {
        s.push_str(&e.to_string());
        s.push('\n');
    }
    s
}

/// `old` is written, then `new` overwrites it, then a read returns `old`: not linearizable
/// (a stale read), with all three operations in the witness.
fn stale(key: Option<&str>, old: Value, new: Value) -> String {
    lines(&[
        event(0, 0, "invoke", "write", key, old.clone()),
        event(1, 0, "ok", "write", key, old.clone()),
        event(2, 1, "invoke", "write", key, new.clone()),
        event(3, 1, "ok", "write", key, new),
        event(4, 2, "invoke", "read", key, Value::Null),
        event(5, 2, "ok", "read", key, old),
    ])
}

/// A write and a read of its value: linearizable.
fn good(value: Value) -> String {
    lines(&[
        event(0, 0, "invoke", "write", None, value.clone()),
        event(1, 0, "ok", "write", None, value.clone()),
        event(2, 1, "invoke", "read", None, Value::Null),
        event(3, 1, "ok", "read", None, value),
    ])
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write");
    p
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    faultline()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("faultline runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

#[test]
fn a_violation_in_one_file_is_not_hidden_by_bad_input_in_another() {
    let dir = scratch("cli-", "precedence");
    write(&dir, "garbage.jsonl", "this is not a history\n");
    write(&dir, "stale.jsonl", &stale(None, json!(1), json!(2)));
    write(&dir, "good.jsonl", &good(json!(1)));
    for (files, code) in [
        (vec!["garbage.jsonl", "stale.jsonl"], 1),
        (vec!["stale.jsonl", "garbage.jsonl"], 1),
        (vec!["missing.jsonl", "stale.jsonl", "good.jsonl"], 1),
        (vec!["good.jsonl", "garbage.jsonl"], 254),
        (vec!["good.jsonl"], 0),
    ] {
        let mut args = vec!["check"];
        args.extend(&files);
        let out = run_in(&dir, &args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{files:?}: {}",
            describe(&out)
        );
        let mut json_args = args.clone();
        json_args.push("--json");
        let out = run_in(&dir, &json_args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{files:?} --json: {}",
            describe(&out)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn several_files_get_one_report_folder_each() {
    let dir = scratch("cli-", "folders");
    write(&dir, "a/h.jsonl", &stale(None, json!(1), json!(2)));
    write(&dir, "b/h.jsonl", &good(json!(1)));
    write(&dir, "a_h.jsonl", &good(json!(3)));
    let out = run_in(
        &dir,
        &[
            "check",
            "a/h.jsonl",
            "./b/h.jsonl",
            "a_h.jsonl",
            "--report",
            "out",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let verdict = |sub: &str| -> Value {
        let p = dir.join("out").join(sub).join("verdict.json");
        let t = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", p.display(), describe(&out)));
        serde_json::from_str(&t).expect("json")
    };
    assert_eq!(verdict("a%2Fh.jsonl")["overall"], "invalid");
    assert_eq!(verdict("b%2Fh.jsonl")["overall"], "valid");
    assert_eq!(verdict("a_h.jsonl")["overall"], "valid");
    for sub in ["a%2Fh.jsonl", "b%2Fh.jsonl", "a_h.jsonl"] {
        for f in [
            "report.html",
            "report.md",
            "junit.xml",
            "run.json",
            "history.jsonl",
        ] {
            assert!(dir.join("out").join(sub).join(f).is_file(), "{sub}/{f}");
        }
    }
    let stdout = text(&out.stdout);
    assert!(stdout.contains("out/a%2Fh.jsonl/report.html"), "{stdout}");
    // One file: the reports go into the folder itself, as before.
    let out = run_in(&dir, &["check", "a/h.jsonl", "--report", "one"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(dir.join("one/verdict.json").is_file());
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `faultline ARGS` in `dir` with stdout and stderr closed (a broken pipe at the first
/// write); returns the exit code, after checking nothing panicked.
fn with_closed_output(dir: &Path, args: &[&str]) -> Option<i32> {
    let status = faultline()
        .args(args)
        .current_dir(dir)
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .status()
        .expect("faultline runs");
    // With only stdout closed, stderr must stay free of panics.
    let out = faultline()
        .args(args)
        .current_dir(dir)
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .expect("faultline runs");
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{args:?}: {stderr}"
    );
    assert_eq!(out.status.code(), status.code(), "{args:?}: {stderr}");
    status.code()
}

#[test]
fn a_closed_stdout_ends_check_gen_and_report_quietly_with_their_codes() {
    let dir = scratch("cli-", "pipe");
    write(&dir, "stale.jsonl", &stale(None, json!(1), json!(2)));
    write(&dir, "good.jsonl", &good(json!(1)));
    assert_eq!(with_closed_output(&dir, &["check", "stale.jsonl"]), Some(1));
    assert_eq!(with_closed_output(&dir, &["check", "good.jsonl"]), Some(0));
    assert_eq!(
        with_closed_output(&dir, &["check", "good.jsonl", "stale.jsonl", "--json"]),
        Some(1)
    );
    // Still checks every file and writes every report.
    assert_eq!(
        with_closed_output(
            &dir,
            &["check", "stale.jsonl", "good.jsonl", "--report", "out"]
        ),
        Some(1)
    );
    assert!(dir.join("out/good.jsonl/report.html").is_file());
    assert!(dir.join("out/stale.jsonl/report.html").is_file());
    assert_eq!(
        with_closed_output(&dir, &["gen", "--ops", "20000", "-o", "-"]),
        Some(0)
    );
    assert_eq!(
        with_closed_output(&dir, &["report", "out/stale.jsonl"]),
        Some(1)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn user_mistakes_exit_254_with_a_message_never_255_or_a_panic() {
    let dir = scratch("cli-", "mistakes");
    write(&dir, "good.jsonl", &good(json!(1)));
    write(&dir, "a-file", "x");
    std::fs::create_dir_all(dir.join("a-dir")).expect("mkdir");
    write(&dir, "corrupt/verdict.json", "{ not json");
    write(&dir, "corrupt/history.jsonl", &good(json!(1)));
    write(
        &dir,
        "schema/verdict.json",
        "{\"schema\":\"faultline-verdict/9\"}",
    );
    write(&dir, "schema/history.jsonl", &good(json!(1)));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["gen", "--ops", "18446744073709551615"], "10000000"),
        (vec!["gen", "--ops", "-1"], "10000000"),
        (vec!["gen", "--processes", "0"], "--processes"),
        (vec!["gen", "--processes", "99999999999"], "--processes"),
        (vec!["gen", "--keys", "99999999999"], "--keys"),
        (vec!["gen", "--info-rate", "2"], "0 to 1"),
        (vec!["gen", "--read-rate", "-0.5"], "0 to 1"),
        (vec!["gen", "--seed", "-1"], "--seed"),
        (vec!["gen", "-o", "no/such/dir/h.jsonl"], "no/such/dir"),
        (vec!["gen", "-o", "a-dir"], "a-dir"),
        (vec!["test", "--rate", "-1"], "0 (unlimited)"),
        (vec!["test", "--nodes", "-1"], "1 to 9"),
        (vec!["test", "--nodes", "99999999999999999999"], "1 to 9"),
        (vec!["test", "--concurrency", "0"], "1 to 1024"),
        (vec!["test", "--keys", "0"], "1 to 10000"),
        (vec!["test", "--time-limit", "-5"], "--time-limit"),
        (vec!["test", "--time-limit", "nan"], "--time-limit"),
        (
            vec!["test", "--nemesis-interval", "0"],
            "--nemesis-interval",
        ),
        (vec!["test", "--max-down", "-1"], "--max-down"),
        (vec!["test", "--recovery", "-1"], "--recovery"),
        (
            vec!["test", "--request-timeout", "1e9"],
            "--request-timeout",
        ),
        (
            vec!["test", "--check-time-limit", "-1"],
            "--check-time-limit",
        ),
        (vec!["test", "--seed", "-3"], "--seed"),
        // (A short campaign, should the refusal ever be lost.)
        (
            vec!["test", "--nemesis", "all,none", "--time-limit", "1"],
            "cannot be combined",
        ),
        (
            vec!["test", "--nemesis", "none,partition", "--time-limit", "1"],
            "cannot be combined",
        ),
        (
            vec!["test", "--nemesis", ",", "--time-limit", "1"],
            "names no fault family",
        ),
        (vec!["test", "--store", "a-file"], "--store"),
        (vec!["test", "--store", "/proc/faultline"], "--store"),
        (vec!["test", "--plan", "a-dir"], "a-dir"),
        (vec!["test", "--plan", "missing.toml"], "missing.toml"),
        (vec!["verify", "--campaigns", "0"], "--campaigns"),
        (vec!["verify", "--campaigns", "-2"], "--campaigns"),
        (vec!["verify", "--rate", "-1"], "0 (unlimited)"),
        (
            vec!["test", "--runtime", "k8s"],
            "expected docker or kubernetes",
        ),
        (
            vec!["clean", "--runtime", "podman"],
            "expected docker or kubernetes",
        ),
        // No Kubernetes API at the URL (port 1 refuses): what to run.
        (
            vec![
                "clean",
                "--runtime",
                "kubernetes",
                "--kube-api",
                "http://127.0.0.1:1",
            ],
            "kubectl proxy",
        ),
        (
            vec![
                "test",
                "--runtime",
                "kubernetes",
                "--kube-api",
                "http://127.0.0.1:1",
                "--k8s-namespace",
                "jepsen",
                "--k8s-agent-image",
                "registry.example/faultline:0.1",
                "--k8s-anti-affinity",
                "--time-limit",
                "1",
            ],
            "kubectl proxy",
        ),
        (
            vec!["check", "good.jsonl", "--time-limit", "-1"],
            "--time-limit",
        ),
        (
            vec!["check", "good.jsonl", "--time-limit", "1e300"],
            "--time-limit",
        ),
        (vec!["check", "a-dir"], "a-dir"),
        (vec!["check", "good.jsonl", "--report", "a-file"], "a-file"),
        (
            vec!["check", "good.jsonl", "--report", "/proc/faultline"],
            "/proc/faultline",
        ),
        (vec!["report", "missing"], "missing"),
        (vec!["report", "a-dir"], "a-dir"),
        (vec!["report", "corrupt"], "faultline check"),
        (vec!["report", "schema"], "faultline-verdict/9"),
    ];
    let mut failures = Vec::new();
    for (args, needle) in &cases {
        let out = run_in(&dir, args);
        let stderr = text(&out.stderr);
        if out.status.code() != Some(254) || !stderr.contains(needle) || stderr.contains("panicked")
        {
            failures.push(format!(
                "{args:?}: expected 254 naming {needle:?}, got {}",
                describe(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_huge_value_gives_reports_and_output_of_bounded_size() {
    let dir = scratch("cli-", "huge");
    let big = json!("a".repeat(20_000_000));
    write(
        &dir,
        "stale.jsonl",
        &stale(Some("k"), big.clone(), json!(2)),
    );
    write(&dir, "good.jsonl", &good(big));
    for (file, code) in [("stale.jsonl", 1), ("good.jsonl", 0)] {
        let out_dir = format!("out-{file}");
        for extra in [vec![], vec!["--json"], vec!["--model", "all"]] {
            let mut args = vec!["check", file, "--report", out_dir.as_str()];
            args.extend(extra.iter());
            let out = run_in(&dir, &args);
            assert_eq!(out.status.code(), Some(code), "{args:?}");
            assert!(
                out.stdout.len() < 100_000,
                "{args:?}: {} bytes of output",
                out.stdout.len()
            );
            for report in [
                "report.html",
                "report.md",
                "junit.xml",
                "verdict.json",
                "run.json",
            ] {
                let len = std::fs::metadata(dir.join(&out_dir).join(report))
                    .expect(report)
                    .len();
                assert!(len < 1_000_000, "{args:?}: {report} is {len} bytes");
            }
            let kept = std::fs::metadata(dir.join(&out_dir).join("history.jsonl"))
                .expect("history")
                .len();
            assert!(kept > 20_000_000, "history.jsonl keeps the full value");
        }
        let verdict =
            std::fs::read_to_string(dir.join(&out_dir).join("verdict.json")).expect("verdict");
        if code == 1 {
            assert!(verdict.contains("(20,000,000 bytes, clipped)"), "{verdict}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Control characters: ESC starting a colour, a bidi override, and an OSC title sequence.
const KEY: &str = "k\u{1b}[31mRED\u{202e}evil";
const NODE: &str = "n1\u{1b}]0;owned\u{7}";
const ERROR: &str = "timeout\u{1b}[2K\r::error::fake CI line\u{2066}";

fn assert_no_raw_controls(what: &str, s: &str) {
    for c in ['\u{1b}', '\u{202e}', '\u{2066}', '\u{7}', '\r'] {
        assert!(
            !s.contains(c),
            "{what} holds a raw {:?}:\n{}",
            c,
            s.escape_debug()
        );
    }
}

#[test]
fn control_and_bidi_characters_are_shown_escaped_everywhere() {
    let dir = scratch("cli-", "controls");
    let mut events: Vec<Value> = serde_json::from_str::<Vec<Value>>(&format!(
        "[{}]",
        stale(Some(KEY), json!(1), json!(2))
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join(",")
    ))
    .expect("events");
    for e in events.iter_mut() {
        if e["type"] != "invoke" {
            e["node"] = json!(NODE);
        }
    }
    let n = events.len() as u64;
    events.push(event(n, 7, "invoke", "write", Some(KEY), json!(9)));
    let mut info = event(n + 1, 7, "info", "write", Some(KEY), json!(9));
    info["error"] = json!(ERROR);
    events.push(info);
    write(&dir, "h.jsonl", &lines(&events));
    write(
        &dir,
        "bad.jsonl",
        &format!("{{\"index\":0,\"time\":0,\"process\":0,\"type\":\"{KEY}\",\"f\":\"read\"}}\n"),
    );

    let out = run_in(&dir, &["check", "h.jsonl", "bad.jsonl", "--report", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert_no_raw_controls("stdout", &stdout);
    assert_no_raw_controls("stderr", &text(&out.stderr));
    assert!(stdout.contains("k\\u{1b}[31mRED\\u{202e}evil"), "{stdout}");

    let out = run_in(&dir, &["check", "h.jsonl", "bad.jsonl", "--json"]);
    let stdout = text(&out.stdout);
    assert_no_raw_controls("--json stdout", &stdout);
    assert_no_raw_controls("--json stderr", &text(&out.stderr));
    // The JSON escapes keep the exact key.
    let first: Value = serde_json::from_str(stdout.lines().next().expect("a line")).expect("json");
    assert_eq!(first["witness"]["key"], json!(KEY), "{stdout}");

    let out = run_in(&dir, &["check", "h.jsonl", "--model", "all"]);
    assert_no_raw_controls("--model all stdout", &text(&out.stdout));

    for f in ["report.md", "junit.xml", "report.html", "verdict.json"] {
        let s = std::fs::read_to_string(dir.join("out/h.jsonl").join(f)).expect(f);
        assert_no_raw_controls(f, &s);
    }
    let md = std::fs::read_to_string(dir.join("out/h.jsonl/report.md")).expect("md");
    assert!(md.contains("u\\{202e\\}") || md.contains("u{202e}"), "{md}");
    let html = std::fs::read_to_string(dir.join("out/h.jsonl/report.html")).expect("html");
    assert!(
        html.contains("\\u{202e}"),
        "the key shows escaped in the HTML"
    );
    let verdict: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/h.jsonl/verdict.json")).expect("verdict"),
    )
    .expect("json");
    assert_eq!(verdict["models"][0]["witness"]["key"], json!(KEY));

    let out = run_in(&dir, &["report", "out/h.jsonl"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    for f in ["report.md", "junit.xml", "report.html"] {
        let s = std::fs::read_to_string(dir.join("out/h.jsonl").join(f)).expect(f);
        assert_no_raw_controls(&format!("re-rendered {f}"), &s);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// An example history of the repository.
fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/histories")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn transactional_histories_are_checked_against_isolation_models() {
    let dir = scratch("txn", "-models");
    let run = |args: &[&str]| {
        let out = run_in(&dir, args);
        (out.status.code(), text(&out.stdout), describe(&out))
    };
    let skew = example("txn-read-skew.jsonl");
    let (code, out, all) = run(&["check", &skew, "--model", "serializable"]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        out.contains("G-single") && out.contains("(rw): T1 read key 2 empty"),
        "{all}"
    );
    let write_skew = example("txn-write-skew.jsonl");
    let (code, _, all) = run(&["check", &write_skew, "--model", "snapshot-isolation"]);
    assert_eq!(code, Some(0), "{all}");
    let (code, out, all) = run(&["check", &write_skew, "--model", "all"]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        out.contains("Strongest models that held: strong-snapshot-isolation"),
        "{all}"
    );
    // linearizable, the default, means strict serializability for transactions.
    let stale = example("txn-stale-read.jsonl");
    let (code, out, all) = run(&["check", &stale]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        out.contains("strict-serializable") && out.contains("G-single-realtime"),
        "{all}"
    );
    let (code, _, all) = run(&["check", &stale, "--model", "serializable"]);
    assert_eq!(code, Some(0), "{all}");
    // Jepsen EDN: keywords as micro-operation names.
    let edn = example("txn-lost-update.edn");
    let (code, out, all) = run(&["check", &edn, "--model", "cursor-stability", "--json"]);
    assert_eq!(code, Some(1), "{all}");
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["workload"], json!("list-append"), "{all}");
    assert!(
        v["anomalies"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("lost-update"))),
        "{all}"
    );
    // A register model on transactions, a transactional model on registers: 254.
    let (code, _, all) = run(&["check", &skew, "--model", "cc"]);
    assert_eq!(code, Some(254), "{all}");
    let reg = write(&dir, "reg.jsonl", &good(json!(1)));
    let (code, _, all) = run(&[
        "check",
        &reg.display().to_string(),
        "--model",
        "serializable",
    ]);
    assert_eq!(code, Some(254), "{all}");
    // Reports.
    let (code, _, all) = run(&["check", &skew, "--model", "all", "--report", "rep"]);
    assert_eq!(code, Some(1), "{all}");
    let verdict: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("rep/verdict.json")).expect("verdict.json"),
    )
    .expect("JSON");
    assert_eq!(verdict["models"][2]["model"], json!("serializable"));
    assert_eq!(verdict["models"][2]["witness"]["kind"], json!("G-single"));
    let md = std::fs::read_to_string(dir.join("rep/report.md")).expect("report.md");
    assert!(md.contains("T0 < T1 (wr)"), "{md}");
    // A generated list-append history from a serial database: every model holds.
    let (code, _, all) = run(&[
        "gen",
        "--workload",
        "list-append",
        "--ops",
        "500",
        "-o",
        "la.jsonl",
    ]);
    assert_eq!(code, Some(0), "{all}");
    let (code, out, all) = run(&["check", "la.jsonl", "--model", "all"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        out.contains("Strongest models that held: strict-serializable"),
        "{all}"
    );
    let (code, _, all) = run(&["gen", "--workload", "list-append", "--isolation", "bogus"]);
    assert_eq!(code, Some(254), "{all}");
}

#[test]
fn without_libfaketime_an_explicit_clock_nemesis_is_refused_with_the_install_command() {
    let dir = scratch("cli-", "nofaketime");
    let out = faultline()
        .current_dir(&dir)
        .env("FAULTLINE_LIBFAKETIME", "none")
        .args(["test", "--nemesis", "clock", "--time-limit", "1"])
        .args(["--node-binary", "/bin/true", "--store", "store"])
        .output()
        .expect("faultline runs");
    assert_eq!(out.status.code(), Some(254), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("apt-get install libfaketime faketime"),
        "{}",
        describe(&out)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn agent_install_copies_itself_and_the_images_libfaketime() {
    let dir = scratch("cli-", "agent-install");
    let out = faultline()
        .arg("agent-install")
        .arg(&dir)
        .env_remove("FAULTLINE_LIBFAKETIME")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let said = text(&out.stdout);
    let agent = std::fs::read(dir.join("faultline")).expect("the agent was copied");
    assert_eq!(
        agent,
        std::fs::read(env!("CARGO_BIN_EXE_faultline")).expect("the binary")
    );
    // This machine holds libfaketime (the clock tests need it), as an agent image does.
    let lib = std::fs::read(dir.join("libfaketime.so.1")).unwrap_or_else(|e| {
        panic!("libfaketime was not copied ({e}); apt-get install libfaketime: {said}")
    });
    assert!(lib.starts_with(b"\x7fELF"));
    assert!(said.contains("libfaketime.so.1"), "{said}");
    // The agent it copied runs.
    let version = std::process::Command::new(dir.join("faultline"))
        .arg("--version")
        .output()
        .expect("the copy runs");
    assert!(version.status.success());

    // An image without libfaketime: only the agent, and it says so.
    let bare = scratch("cli-", "agent-install-bare");
    let out = faultline()
        .arg("agent-install")
        .arg(&bare)
        .env("FAULTLINE_LIBFAKETIME", "none")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(bare.join("faultline").is_file());
    assert!(!bare.join("libfaketime.so.1").exists());
    let said = text(&out.stdout);
    assert!(
        said.contains("no libfaketime") && said.contains("clock faults will be unavailable"),
        "{said}"
    );
    // A folder that does not exist: a failure naming it.
    let out = faultline()
        .arg("agent-install")
        .arg(bare.join("missing"))
        .output()
        .expect("runs");
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("missing"), "{}", describe(&out));
    for d in [dir, bare] {
        std::fs::remove_dir_all(d).ok();
    }
}
