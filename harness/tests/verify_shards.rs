//! Sharded verification: `faultline verify --shard K/N` runs share K of a series and
//! `faultline verify --merge DIR...` combines the shards. Two shards run in parallel
//! against Docker and their merge equals the unsharded series of the same seeds (same
//! campaign seeds and fault mixes, same per-campaign verdicts, same exit code); merging
//! refuses shards of different plans, missing and duplicate shards (exit 254).
//!
//! The shards run with the commands docs/kubernetes.md shows (the test fails when the
//! guide no longer shows them). The Docker test needs Docker and the faultline-node binary (built here with cargo, in
//! the same target dir). Outside CI a machine without Docker skips it, saying so; under
//! `CI=true` it always runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{campaign_slot, faultline, scratch};

/// Builds faultline-node into the same target dir (a no-op when it is fresh).
fn node_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FAULTLINE_NODE_BINARY") {
        return PathBuf::from(p);
    }
    let profile = PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
        .parent()
        .map(Path::to_path_buf)
        .expect("the faultline binary has a folder");
    let target_dir = profile.parent().expect("target dir").to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "faultline-node"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p faultline-node failed");
    profile.join("faultline-node")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The one series folder (`verify-*`) of `target` in `store`.
fn series_dir(store: &Path, target: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(store.join(target))
        .expect("the target folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("verify-"))
        })
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "one series folder in {}: {dirs:?}",
        store.display()
    );
    dirs[0].clone()
}

/// What must agree between two runs of a series: per campaign its number, seed, fault
/// mix, exit code and every model's outcome.
fn campaigns_of(doc: &serde_json::Value) -> Vec<serde_json::Value> {
    doc["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            serde_json::json!({
                "campaign": r["campaign"],
                "seed": r["seed"],
                "nemesis": r["nemesis"],
                "exit_code": r["exit_code"],
                "models": r["models"],
            })
        })
        .collect()
}

/// The guide's shard command for shard `k` (docs/kubernetes.md shows both).
fn shard_command(k: usize) -> String {
    let store = ["store-a", "store-b"][k];
    format!("faultline verify --campaigns 4 --seed 40 --nodes 3 --time-limit 5 --shard {k}/2 --store {store}")
}

fn guide() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/kubernetes.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn two_shards_in_parallel_merge_into_the_unsharded_series() {
    let Some(_slot) = campaign_slot() else {
        return;
    };
    // faultline finds faultline-node next to itself, as a user's build does.
    node_binary();
    let work = scratch("", "verify-shards");
    let guide = guide();
    // The two shards at once, each with its own store (as on two machines), exactly as
    // the guide runs them.
    let shards: Vec<_> = (0..2)
        .map(|k| {
            let command = shard_command(k);
            assert!(
                guide.contains(&format!("{command} &")),
                "docs/kubernetes.md no longer shows `{command}`"
            );
            let child = faultline()
                .args(command.split_whitespace().skip(1))
                .current_dir(&work)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("faultline runs");
            (work.join(["store-a", "store-b"][k]), child)
        })
        .collect();
    let mut shard_dirs = Vec::new();
    for (k, (store, child)) in shards.into_iter().enumerate() {
        let out = child.wait_with_output().expect("shard ends");
        assert_eq!(out.status.code(), Some(0), "shard {k}: {}", show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("shard {k}/2 done")), "{stdout}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let share = ["campaigns 1, 3 of 4", "campaigns 2, 4 of 4"][k];
        assert!(
            stderr.contains(&format!("shard {k}/2: {share} (numbered from 1)")),
            "{stderr}"
        );
        let dir = series_dir(&store, "raft-register");
        assert!(dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(&format!("-shard-{k}-of-2"))));
        let doc = read_json(&dir.join("verify.json"));
        assert_eq!(doc["shard"], serde_json::json!({"index": k, "of": 2}));
        let ran: Vec<u64> = doc["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r["campaign"].as_u64().expect("number"))
            .collect();
        assert_eq!(
            ran,
            vec![k as u64, k as u64 + 2],
            "shard {k} runs its share"
        );
        // Each run records its place in the series.
        for r in doc["runs"].as_array().expect("runs") {
            let run = read_json(&Path::new(r["run"].as_str().expect("run")).join("run.json"));
            assert_eq!(run["verify"]["shard"], doc["shard"]);
            assert_eq!(run["verify"]["campaign"], r["campaign"]);
            assert_eq!(run["seed"], r["seed"]);
        }
        shard_dirs.push(dir);
    }
    // The whole series in one go.
    let whole = faultline()
        .args(
            shard_command(0)
                .split_whitespace()
                .skip(1)
                .take_while(|w| *w != "--shard"),
        )
        .args(["--store", "store-whole"])
        .current_dir(&work)
        .output()
        .expect("faultline runs");
    assert_eq!(whole.status.code(), Some(0), "{}", show(&whole));
    let whole_doc =
        read_json(&series_dir(&work.join("store-whole"), "raft-register").join("verify.json"));
    // Merged as the guide does (into the default store), the shards in either order:
    // the campaigns come out in series order.
    assert!(guide.contains("faultline verify --merge store-a/raft-register/verify-*-shard-0-of-2 store-b/raft-register/verify-*-shard-1-of-2"));
    let merged = faultline()
        .args(["verify", "--merge"])
        .arg(&shard_dirs[1])
        .arg(&shard_dirs[0])
        .current_dir(&work)
        .output()
        .expect("faultline runs");
    assert_eq!(merged.status.code(), Some(0), "{}", show(&merged));
    let merged_text = String::from_utf8_lossy(&merged.stdout);
    assert!(
        merged_text
            .contains("over 4 campaign(s) of raft-register (merged from 2 shards), first seed 40:"),
        "{merged_text}"
    );
    let merged_dir = series_dir(&work.join("store"), "raft-register");
    let merged_doc = read_json(&merged_dir.join("verify.json"));
    assert!(merged_dir.join("report.md").is_file());
    let seeds: Vec<u64> = merged_doc["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["seed"].as_u64().expect("seed"))
        .collect();
    assert_eq!(seeds, vec![40, 41, 42, 43]);
    assert_eq!(campaigns_of(&merged_doc), campaigns_of(&whole_doc));
    assert_eq!(merged_doc["exit_code"], whole_doc["exit_code"]);
    assert_eq!(merged_doc["merged_from"].as_array().map(Vec::len), Some(2));
    // The same tally, word for word, but for the header and the folders' paths.
    let tally = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("  ") || l.starts_with("strongest") || l.starts_with("exit "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        tally(&merged_text),
        tally(&String::from_utf8_lossy(&whole.stdout))
    );
    // A shard given twice is refused.
    let dup = faultline()
        .args(["verify", "--merge"])
        .arg(&shard_dirs[0])
        .arg(&shard_dirs[0])
        .current_dir(&work)
        .output()
        .expect("faultline runs");
    assert_eq!(dup.status.code(), Some(254), "{}", show(&dup));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("shard 0/2 is given twice"));
    std::fs::remove_dir_all(&work).ok();
}

/// A shard document as `verify --shard K/N` writes it, with one held campaign.
fn shard_doc(k: usize, n: usize, nodes: u64) -> serde_json::Value {
    serde_json::json!({
        "format": "faultline-verify",
        "version": 1,
        "target": "raft-register",
        "plan": {"target": "raft-register", "nodes": nodes, "store": format!("store{k}")},
        "first_seed": 40,
        "campaigns": n,
        "rotating_mix": true,
        "claim": ["linearizable"],
        "shard": {"index": k, "of": n},
        "assigned": [k],
        "runs": [{
            "campaign": k,
            "seed": 40 + k,
            "nemesis": "partition",
            "run": format!("store{k}/raft-register/20260101T000000"),
            "exit_code": 0,
            "ops": {"total": 10, "ok": 10, "fail": 0, "info": 0},
            "first_violation_seen_s": null,
            "models": {"linearizable": {"result": "held"}}
        }],
        "interrupted": false,
        "failed": null,
        "exit_code": 0
    })
}

#[test]
fn merging_refuses_mismatched_missing_and_duplicate_shards() {
    let work = scratch("", "verify-merge-refusals");
    let write = |name: &str, doc: serde_json::Value| -> PathBuf {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("verify.json"), doc.to_string()).expect("write");
        dir
    };
    let s0 = write("s0", shard_doc(0, 3, 3));
    let s1 = write("s1", shard_doc(1, 3, 3));
    let s2 = write("s2", shard_doc(2, 3, 3));
    let s1_other = write("s1-other", shard_doc(1, 3, 5));
    let store = work.join("store");
    let merge = |dirs: &[&PathBuf]| -> Output {
        faultline()
            .args(["verify", "--merge"])
            .args(dirs.iter().map(|d| d.as_os_str()))
            .arg("--store")
            .arg(&store)
            .output()
            .expect("faultline runs")
    };
    for (dirs, needle) in [
        (vec![&s0, &s2], "shard(s) 1 of 3 missing".to_string()),
        (
            vec![&s0, &s1, &s1, &s2],
            "shard 1/3 is given twice".to_string(),
        ),
        (
            vec![&s0, &s1_other, &s2],
            format!(
                "{} and {} are shards of different series: their plans differ",
                s0.display(),
                s1_other.display()
            ),
        ),
        (vec![&s0, &store], "give the series folders".to_string()),
    ] {
        let out = merge(&dirs);
        assert_eq!(out.status.code(), Some(254), "{dirs:?}: {}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&needle),
            "{dirs:?}: {}",
            show(&out)
        );
    }
    // All three: merged, valid, written to a new series folder of the store.
    let out = merge(&[&s2, &s0, &s1]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("campaign 1: 10 ops"), "{stdout}");
    assert!(
        stdout.contains("linearizable (claimed): held in all"),
        "{stdout}"
    );
    let doc = read_json(&series_dir(&store, "raft-register").join("verify.json"));
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["shard"], serde_json::Value::Null);
    // A shard needs a seed that every shard shares.
    let out = faultline()
        .args(["verify", "--shard", "0/2", "--store"])
        .arg(&store)
        .output()
        .expect("faultline runs");
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard needs --seed"));
    let out = faultline()
        .args(["verify", "--shard", "2/2", "--seed", "1"])
        .output()
        .expect("faultline runs");
    assert_eq!(out.status.code(), Some(254), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("numbered from 0 to 1"));
    std::fs::remove_dir_all(&work).ok();
}
