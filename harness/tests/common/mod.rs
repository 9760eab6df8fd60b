//! Helpers shared by the campaign integration tests: the binary under test, whether Docker
//! is here, scratch folders, and reading what a campaign stored.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

/// The `faultline` binary of this build.
pub fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

/// A pipe whose reading end is already closed, for a child's stdout or stderr: every
/// write gets a broken pipe at once, as a command piped into `head` sees once `head` has
/// read its lines and exited. (The reading end belongs to a `true` that has exited.)
pub fn closed_pipe() -> Stdio {
    let mut reader = Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .expect("true runs");
    let write_end = reader.stdin.take().expect("a pipe to true");
    reader.wait().expect("true exits");
    Stdio::from(write_end)
}

/// Whether a Docker socket is here.
pub fn docker_available() -> bool {
    Path::new("/var/run/docker.sock").exists()
}

/// Whether the tests run under CI (where Docker tests never skip).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The campaigns of one test file run one at a time: two clusters on two busy cores
/// would measure the machine, not the target.
static ONE_CAMPAIGN_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Waits for this file's campaign slot. `None` (the test is skipped, saying so) when
/// there is no Docker socket outside CI; under CI a campaign test always runs.
pub fn campaign_slot() -> Option<MutexGuard<'static, ()>> {
    let slot = ONE_CAMPAIGN_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if !docker_available() && !in_ci() {
        eprintln!("skipped: no Docker socket here (this test always runs under CI=true)");
        return None;
    }
    Some(slot)
}

/// A fresh scratch folder for test `name` of file `tag`.
pub fn scratch(tag: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-it-{tag}{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Asserts that `faultline test ARGS --store DIR` is refused as a bad plan (exit 254) with
/// a message containing `needle`.
pub fn assert_refused(args: &[&str], needle: &str, dir: &Path) {
    let out = faultline()
        .arg("test")
        .args(args)
        .arg("--store")
        .arg(dir)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: message should name {needle:?}: {stderr}"
    );
}

/// Asserts that a campaign exited 0 and printed the command that reproduces it with `seed`;
/// returns its stdout.
pub fn assert_valid_run(out: &Output, target_words: &str, seed: u64) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("reproduce: {target_words}"))
            && stdout.contains(&format!("--seed {seed}")),
        "{stdout}"
    );
    stdout
}

/// The stored `verdict.json` of the newest run in `store`, checked to say valid with
/// linearizability claimed and valid; returns the document.
pub fn assert_linearizable_verdict(store: &Path) -> serde_json::Value {
    let run = store.join("latest");
    assert!(run.is_dir(), "store/latest should point at the run");
    let verdict: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("verdict.json")).expect("verdict.json"),
    )
    .expect("json");
    assert_eq!(verdict["schema"], "faultline-verdict/1");
    assert_eq!(verdict["overall"], "valid", "{verdict:#}");
    assert_eq!(verdict["exit_code"], 0);
    let lin = verdict["models"]
        .as_array()
        .and_then(|m| m.iter().find(|e| e["model"] == "linearizable"))
        .cloned()
        .expect("row");
    assert_eq!(
        (lin["result"].as_str(), lin["claimed"].as_bool()),
        (Some("valid"), Some(true)),
        "{verdict:#}"
    );
    verdict
}

/// The stored `history.jsonl` of the newest run in `store`, parsed.
pub fn stored_history(store: &Path) -> faultline_history::History {
    let text =
        std::fs::read_to_string(store.join("latest").join("history.jsonl")).expect("history.jsonl");
    faultline_history::JsonlReader::new(text.as_bytes(), "history.jsonl")
        .read_all()
        .expect("parses")
}
