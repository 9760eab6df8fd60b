//! End to end: `faultline test` runs a short campaign against a 3-node raft-register in
//! Docker and stores a valid verdict; bad plans exit 254 before touching Docker.
//!
//! The campaign needs Docker, root and the faultline-node binary (built here with cargo,
//! in the same target dir). Outside CI a machine without Docker skips it, saying so;
//! under `CI=true` it always runs.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{
    assert_linearizable_verdict, assert_refused, assert_valid_run, campaign_slot, closed_pipe,
    faultline, scratch, stored_history,
};

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

#[test]
fn bad_plans_exit_254_with_a_clear_message() {
    let dir = scratch("", "bad");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--nodes", "0"], "--nodes"),
        (vec!["--workload", "queue"], "queue"),
        (vec!["--nemesis", "earthquake"], "earthquake"),
        (vec!["--fault", "r1"], "stale-reads"),
        (vec!["--target", "cassandra"], "raft-register"),
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
        assert_refused(&args, needle, &dir);
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
    let Some(_slot) = campaign_slot() else {
        return;
    };
    let node = node_binary();
    let work = scratch("", "store");
    let store = work.join("store");
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
        // A relative store, as the README's default `--store store` is.
        .args(["--store", "store"])
        .current_dir(&work)
        .arg("--node-binary")
        .arg(&node)
        .output()
        .expect("faultline runs");
    assert_valid_run(&out, "faultline test", 7);

    let run = store.join("latest");
    assert_linearizable_verdict(&store);

    let history = stored_history(&store);
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
    // The live check ran all along and found nothing in a valid run.
    let live = &run_json["live_check"];
    assert_eq!(live["findings"], serde_json::json!([]), "{live:#}");
    assert!(live["rounds"].as_u64().unwrap_or(0) >= 5, "{live:#}");
    assert_eq!(live["stopped_early"], false);
    assert!(run_json["mechanisms"]["heal"].is_string(), "{run_json:#}");
    for n in ["n1", "n2", "n3"] {
        assert!(
            run.join("logs").join(format!("{n}.log")).is_file(),
            "log of {n}"
        );
    }
    for report in ["report.html", "report.md", "junit.xml"] {
        let text = std::fs::read_to_string(run.join(report)).expect(report);
        assert!(text.contains("linearizable"), "{report} names the model");
    }
    std::fs::remove_dir_all(&work).ok();
}

/// A planted fault (stale reads served by followers) is found while the campaign runs,
/// and `--stop-on-violation` ends the main phase there: the full check at the end agrees
/// (exit 1), and run.json and the reports say when it was found.
#[test]
fn a_planted_stale_read_is_found_while_running_and_stops_the_campaign() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    let node = node_binary();
    let work = scratch("", "live");
    let store = work.join("store");
    let out = faultline()
        .args([
            "test",
            "--nodes",
            "3",
            "--time-limit",
            "60",
            "--fault",
            "stale-reads",
        ])
        .args(["--stop-on-violation", "--seed", "3", "--recovery", "1"])
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
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("found while running: linearizable on key"),
        "{stdout}"
    );
    assert!(
        stdout.contains("the main phase stopped at the first violation"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--stop-on-violation"),
        "the reproduce line keeps it: {stdout}"
    );
    assert!(
        stderr.contains("violation found while running: linearizable"),
        "{stderr}"
    );
    let run = store.join("latest");
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json"))
            .expect("json");
    let live = &run_json["live_check"];
    assert_eq!(live["stopped_early"], true, "{live:#}");
    let first = &live["findings"][0];
    assert_eq!(first["model"], "linearizable", "{live:#}");
    let visible = first["visible_at_ms"].as_f64().expect("visible_at_ms");
    let detected = first["detected_at_ms"].as_f64().expect("detected_at_ms");
    assert!(detected >= visible, "{live:#}");
    // Found within a few rounds of the check, and the campaign did not run its minute.
    assert!(detected - visible < 5_000.0, "{live:#}");
    let main_ms = run_json["duration_ms"].as_f64().expect("duration_ms");
    assert!(main_ms < 55_000.0, "the run went on for {main_ms} ms");
    let md = std::fs::read_to_string(run.join("report.md")).expect("report.md");
    assert!(md.contains("Found while the campaign ran"), "{md}");
    std::fs::remove_dir_all(&work).ok();
}

/// Starts a 3-node campaign at 100 ops/s in the background with its output piped:
/// `[time limit, nemesis, nemesis interval, seed]`.
fn spawn_campaign(
    store: &Path,
    node: &Path,
    [limit, nemesis, interval, seed]: [&str; 4],
) -> std::process::Child {
    faultline()
        .args([
            "test",
            "--nodes",
            "3",
            "--time-limit",
            limit,
            "--rate",
            "100",
        ])
        .args(["--nemesis", nemesis, "--nemesis-interval", interval])
        .args(["--seed", seed, "--store"])
        .arg(store)
        .arg("--node-binary")
        .arg(node)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("faultline starts")
}

/// Waits (at most 90 s) until the campaign of `child` has recorded `lines` lines under
/// `store`; fails if it ends first.
fn wait_recording(store: &Path, lines: usize, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while recorded_lines(store) < lines {
        assert!(
            std::time::Instant::now() < deadline,
            "the campaign never started recording"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("faultline ended early: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Lines of the newest run's history under `store`, if a run has started.
fn recorded_lines(store: &Path) -> usize {
    let Ok(targets) = std::fs::read_dir(store.join("raft-register")) else {
        return 0;
    };
    targets
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("history.jsonl")).ok())
        .map(|t| t.lines().count())
        .max()
        .unwrap_or(0)
}

/// Ids of objects of the engine carrying `label`, listed with the docker CLI.
fn labelled(kind: &str, label: &str) -> Vec<String> {
    let all: &[&str] = if kind == "container" { &["-a"] } else { &[] };
    let out = Command::new("docker")
        .args([kind, "ls", "-q", "--filter", &format!("label={label}")])
        .args(all)
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn an_interrupted_campaign_is_checked_stored_and_leaves_nothing_behind() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    let node = node_binary();
    let store = scratch("", "sigint");
    let mut child = spawn_campaign(&store, &node, ["120", "partition,pause", "2", "11"]);
    // Wait until operations are being recorded, then press Ctrl-C.
    wait_recording(&store, 200, &mut child);
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let out = child.wait_with_output().expect("faultline ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // What was recorded is valid, but only part of the plan ran: unknown, never valid.
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let run = store.join("latest");
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json"))
            .expect("json");
    assert_eq!(run_json["interrupted"], true, "{run_json:#}");
    let verdict: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("verdict.json")).expect("verdict.json"),
    )
    .expect("json");
    assert_eq!(verdict["exit_code"], 2, "{verdict:#}");
    let text = std::fs::read_to_string(run.join("history.jsonl")).expect("history.jsonl");
    let history = faultline_history::JsonlReader::new(text.as_bytes(), "history.jsonl")
        .read_all()
        .expect("the interrupted history parses");
    assert!(history.pair("history.jsonl").is_ok());
    // Nothing of this run is left in the engine.
    let run_id = run_json["run_id"].as_str().expect("run id").to_string();
    let label = format!("faultline.run={run_id}");
    assert_eq!(labelled("container", &label), Vec::<String>::new());
    assert_eq!(labelled("network", &label), Vec::<String>::new());
    std::fs::remove_dir_all(&store).ok();
}

/// The files of a complete run folder.
const RUN_FILES: [&str; 6] = [
    "run.json",
    "history.jsonl",
    "verdict.json",
    "report.html",
    "report.md",
    "junit.xml",
];

#[test]
fn campaigns_whose_output_is_closed_still_store_their_run_and_exit_with_the_verdict() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    let node = node_binary();
    let work = scratch("", "closed-output");
    // `faultline test … 2>&1 | head -3`: stdout and stderr both closed from the start.
    for cmd in [vec!["test"], vec!["verify", "--campaigns", "1"]] {
        let store = work.join(cmd[0]);
        let status = faultline()
            .args(&cmd)
            .args(["--nodes", "3", "--time-limit", "6", "--rate", "100"])
            .args(["--nemesis", "partition,pause", "--nemesis-interval", "2"])
            .args(["--recovery", "2", "--seed", "5", "--store"])
            .arg(&store)
            .arg("--node-binary")
            .arg(&node)
            .stdout(closed_pipe())
            .stderr(closed_pipe())
            .status()
            .expect("faultline runs");
        assert_eq!(status.code(), Some(0), "{cmd:?}");
        let run = store.join("latest");
        for f in RUN_FILES {
            assert!(run.join(f).is_file(), "{cmd:?}: {f} missing");
        }
        let verdict: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run.join("verdict.json")).expect("verdict.json"),
        )
        .expect("json");
        assert_eq!(verdict["exit_code"], 0, "{cmd:?}: {verdict:#}");
        let run_json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json"))
                .expect("json");
        let label = format!(
            "faultline.run={}",
            run_json["run_id"].as_str().expect("run id")
        );
        assert_eq!(
            labelled("container", &label),
            Vec::<String>::new(),
            "{cmd:?}"
        );
        assert_eq!(labelled("network", &label), Vec::<String>::new(), "{cmd:?}");
    }
    std::fs::remove_dir_all(&work).ok();
}

#[test]
fn a_live_campaign_survives_faultline_clean() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    let node = node_binary();
    let store = scratch("", "clean-live");
    let mut child = spawn_campaign(&store, &node, ["20", "partition,kill", "3", "21"]);
    wait_recording(&store, 100, &mut child);
    // `faultline clean` while it runs: its harness is alive, so its run stays.
    let clean = faultline().arg("clean").output().expect("clean runs");
    let cleaned = String::from_utf8_lossy(&clean.stdout).to_string();
    assert_eq!(clean.status.code(), Some(0), "{cleaned}");
    let out = child.wait_with_output().expect("faultline ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "clean said:\n{cleaned}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let run_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.join("latest").join("run.json")).expect("run.json"),
    )
    .expect("json");
    let run_id = run_json["run_id"].as_str().expect("run id");
    assert!(
        !cleaned.contains(run_id),
        "clean removed the live run: {cleaned}"
    );
    assert_eq!(run_json["final_reads"]["ok"], run_json["final_reads"]["of"]);
    std::fs::remove_dir_all(&store).ok();
}

/// The harness's containers still on the engine: those whose harness label names `pid`.
fn containers_of(pid: u32) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let docker = bollard::Docker::connect_with_socket_defaults().expect("docker client");
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .build();
        docker
            .list_containers(Some(options))
            .await
            .expect("list containers")
            .into_iter()
            .filter(|c| {
                c.labels
                    .as_ref()
                    .and_then(|l| l.get("faultline.harness"))
                    .is_some_and(|h| h.split('/').nth(1) == Some(pid.to_string().as_str()))
            })
            .flat_map(|c| c.names.unwrap_or_default())
            .collect()
    })
}

/// SIGTERM (what Kubernetes sends the harness Job's Pod when it is deleted) is handled like
/// Ctrl-C: the workers stop, the cluster is healed and torn down, what was recorded is
/// checked, and the process exits on its own with nothing left on the engine.
#[test]
fn sigterm_stops_the_campaign_and_tears_the_cluster_down() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    let node = node_binary();
    let work = scratch("", "sigterm");
    let child = faultline()
        .args(["test", "--nodes", "3", "--time-limit", "120", "--seed", "3"])
        .args(["--nemesis", "none", "--store", "store"])
        .arg("--node-binary")
        .arg(&node)
        .current_dir(&work)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("faultline runs");
    let pid = child.id();
    // The early run.json appears once the cluster runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let running = loop {
        let found = std::fs::read_dir(work.join("store").join("raft-register"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("run.json").is_file());
        if found || std::time::Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(running, "the campaign never started");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(!containers_of(pid).is_empty(), "the cluster runs");
    // SAFETY: kill sends a signal to our own child; it touches no memory.
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
    let out = child.wait_with_output().expect("faultline ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some(),
        "ended by the signal instead of exiting: {stderr}"
    );
    assert!(
        stderr.contains("interrupted: stopping the workers"),
        "{stderr}"
    );
    assert_eq!(containers_of(pid), Vec::<String>::new(), "{stderr}");
    std::fs::remove_dir_all(&work).ok();
}
