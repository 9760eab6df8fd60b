//! End to end: `faultline test` runs a short campaign against a 3-node raft-register in
//! Docker and stores a valid verdict; bad plans exit 254 before touching Docker.
//!
//! The campaign needs Docker, root and the faultline-node binary (built here with cargo,
//! in the same target dir). Outside CI a machine without Docker skips it, saying so;
//! under `CI=true` it always runs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

/// `<target dir>/debug`, where this test's binaries live.
fn profile_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
        .parent()
        .map(Path::to_path_buf)
        .expect("the faultline binary has a folder")
}

/// Builds faultline-node into the same target dir (a no-op when it is fresh).
fn node_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FAULTLINE_NODE_BINARY") {
        return PathBuf::from(p);
    }
    let profile = profile_dir();
    let target_dir = profile.parent().expect("target dir").to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "faultline-node"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p faultline-node failed");
    let bin = profile.join("faultline-node");
    assert!(bin.is_file(), "{} missing after the build", bin.display());
    bin
}

fn docker_available() -> bool {
    Path::new("/var/run/docker.sock").exists()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn bad_plans_exit_254_with_a_clear_message() {
    let dir = scratch("bad");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--nodes", "0"], "--nodes"),
        (vec!["--workload", "queue"], "queue"),
        (vec!["--nemesis", "earthquake"], "earthquake"),
        (vec!["--fault", "r1"], "stale-reads"),
        (vec!["--target", "etcd"], "raft-register"),
        (vec!["--check", "snapshot"], "snapshot"),
        (
            vec![
                "--target",
                "quorum-kv",
                "--target-opt",
                "r=9",
                "--nodes",
                "3",
            ],
            "r=9",
        ),
        (
            vec!["--node-binary", "/nonexistent/faultline-node"],
            "cargo build --release -p faultline-node",
        ),
    ];
    for (args, needle) in cases {
        let out = faultline()
            .arg("test")
            .args(&args)
            .arg("--store")
            .arg(&dir)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: message should name {needle:?}: {stderr}"
        );
    }
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, "nodes = 3\nworkloadd = \"kv\"\n").expect("write plan");
    let out = faultline()
        .arg("test")
        .arg("--plan")
        .arg(&plan)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(254));
    assert!(String::from_utf8_lossy(&out.stderr).contains("workloadd"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_short_campaign_against_raft_register_is_valid_and_stored() {
    if !docker_available() && !in_ci() {
        eprintln!("skipped: no Docker socket here (this test always runs under CI=true)");
        return;
    }
    let node = node_binary();
    let store = scratch("store");
    let out = faultline()
        .args([
            "test",
            "--nodes",
            "3",
            "--time-limit",
            "15",
            "--concurrency",
            "6",
            "--rate",
            "150",
            "--keys",
            "3",
        ])
        .args([
            "--nemesis",
            "partition,kill,pause,clock",
            "--nemesis-interval",
            "2",
            "--recovery",
            "3",
            "--seed",
            "7",
        ])
        .arg("--store")
        .arg(&store)
        .arg("--node-binary")
        .arg(&node)
        .output()
        .expect("faultline runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("reproduce: faultline test") && stdout.contains("--seed 7"),
        "{stdout}"
    );

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
        (Some("valid"), Some(true))
    );

    let text = std::fs::read_to_string(run.join("history.jsonl")).expect("history.jsonl");
    let history = faultline_history::JsonlReader::new(text.as_bytes(), "history.jsonl")
        .read_all()
        .expect("parses");
    assert_eq!(history.meta.get("seed"), Some(&serde_json::json!(7)));
    let paired = history.pair("history.jsonl").expect("pairs");
    let ok = paired
        .ops
        .iter()
        .filter(|o| o.outcome == faultline_history::Outcome::Ok)
        .count();
    assert!(
        paired.ops.len() > 300,
        "only {} operations in 15 s at 150/s",
        paired.ops.len()
    );
    assert!(
        ok * 2 > paired.ops.len(),
        "fewer than half the operations ok: {ok} of {}",
        paired.ops.len()
    );
    assert!(!paired.faults.is_empty(), "no nemesis events recorded");
    let nemesis_fs: Vec<&str> = history
        .events
        .iter()
        .filter(|e| e.process == faultline_history::Process::Nemesis)
        .map(|e| e.f.as_str())
        .collect();
    assert!(
        nemesis_fs.contains(&"heal"),
        "the final phase heals: {nemesis_fs:?}"
    );
    // The final reads: every key through every node, after the last fault.
    let last_fault = history
        .events
        .iter()
        .rposition(|e| e.process == faultline_history::Process::Nemesis)
        .expect("faults");
    let final_reads = history.events[last_fault..]
        .iter()
        .filter(|e| e.f == "read" && e.kind == faultline_history::EventType::Ok)
        .count();
    assert!(
        final_reads >= 9,
        "3 keys x 3 nodes final reads, got {final_reads}"
    );

    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json"))
            .expect("json");
    assert_eq!(run_json["seed"], 7);
    assert_eq!(run_json["target"], "raft-register");
    assert!(run_json["mechanisms"]["heal"].is_string(), "{run_json:#}");
    for n in ["n1", "n2", "n3"] {
        assert!(
            run.join("logs").join(format!("{n}.log")).is_file(),
            "log of {n}"
        );
    }
    std::fs::remove_dir_all(&store).ok();
}
