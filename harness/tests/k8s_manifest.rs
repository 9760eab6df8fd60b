//! `faultline k8s manifest` through the binary, with the commands of docs/kubernetes.md:
//! each command this machine can run is written in the guide exactly as run here (the
//! test fails when the two drift apart), and its output is checked.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{faultline, scratch};

fn guide() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/kubernetes.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `command` (a line of the guide, `faultline ...`, without shell syntax) in `dir`
/// after checking that the guide holds it verbatim.
fn run_guide_command(command: &str, dir: &Path) -> Output {
    assert!(
        guide().contains(command),
        "docs/kubernetes.md no longer shows `{command}`: keep the guide and this test together"
    );
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[0], "faultline");
    faultline()
        .args(&words[1..])
        .current_dir(dir)
        .output()
        .expect("faultline runs")
}

fn list(out: &Output) -> Vec<serde_json::Value> {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["kind"], "List");
    v["items"].as_array().expect("items").clone()
}

fn kinds(items: &[serde_json::Value]) -> Vec<&str> {
    items
        .iter()
        .map(|i| i["kind"].as_str().expect("kind"))
        .collect()
}

fn args_of(job: &serde_json::Value) -> Vec<String> {
    job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("text").to_string())
        .collect()
}

/// The plan file of the guide's examples.
const PLAN: &str = "target = \"raft-register\"\nnodes = 5\ntime_limit = 60.0\nk8s_agent_image = \"registry.example/faultline:0.1\"\n";

#[test]
fn the_guides_manifests_are_what_the_command_prints() {
    let dir = scratch("", "k8s-manifest");
    assert!(
        guide().contains(PLAN),
        "the guide's plan.toml differs from this test's"
    );
    std::fs::write(dir.join("plan.toml"), PLAN).expect("plan written");
    // One campaign of 5 nodes.
    let items = list(&run_guide_command(
        "faultline k8s manifest --plan plan.toml --namespace jepsen --seed 7",
        &dir,
    ));
    assert_eq!(
        kinds(&items),
        vec!["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Job"]
    );
    assert_eq!(
        items[3]["data"]["plan.toml"], PLAN,
        "the plan goes in as written"
    );
    for item in &items {
        assert_eq!(item["metadata"]["namespace"], "jepsen");
    }
    let job = &items[4];
    assert!(job["spec"].get("completionMode").is_none());
    assert_eq!(
        args_of(job),
        [
            "test",
            "--seed",
            "7",
            "--plan",
            "/etc/faultline/plan.toml",
            "--runtime",
            "kubernetes",
            "--k8s-agent-image",
            "registry.example/faultline:0.1",
            "--store",
            "/store"
        ]
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/faultline:0.1"
    );
    // 50 campaigns in 10 shards at once, their store on a shared claim.
    let items = list(&run_guide_command(
        "faultline k8s manifest --plan plan.toml --namespace jepsen --campaigns 50 --shards 10 --seed 7 --store-claim faultline-store",
        &dir,
    ));
    let job = &items[4];
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 10);
    assert_eq!(job["spec"]["parallelism"], 10);
    let args = args_of(job);
    assert_eq!(
        &args[..5],
        ["verify", "--campaigns", "50", "--seed", "7"].map(String::from)
    );
    assert_eq!(
        &args[args.len() - 2..],
        ["--shard", "$(FAULTLINE_SHARD)/10"].map(String::from)
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"],
        "faultline-store"
    );
    // The printed List is the same with the same flags (the seed is given).
    let again = list(&run_guide_command(
        "faultline k8s manifest --plan plan.toml --namespace jepsen --campaigns 50 --shards 10 --seed 7 --store-claim faultline-store",
        &dir,
    ));
    assert_eq!(again, items);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn manifests_of_plans_the_harness_would_refuse_are_refused() {
    let dir = scratch("", "k8s-manifest-refusals");
    std::fs::write(dir.join("plan.toml"), PLAN).expect("plan written");
    std::fs::write(dir.join("bad.toml"), "nodez = 3\n").expect("plan written");
    for (args, needle) in [
        (vec!["--seed", "1"], "--k8s-agent-image IMAGE is needed"),
        (
            vec!["--plan", "bad.toml", "--k8s-agent-image", "x"],
            "nodez",
        ),
        (
            vec!["--plan", "plan.toml", "--namespace", "Jepsen"],
            "DNS label",
        ),
        (vec!["--plan", "plan.toml", "--shards", "0"], "--shards"),
        (
            vec!["--plan", "plan.toml", "--shards", "6", "--campaigns", "5"],
            "some shards would run nothing",
        ),
    ] {
        let out = faultline()
            .args(["k8s", "manifest"])
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("faultline runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing printed");
    }
    std::fs::remove_dir_all(&dir).ok();
}
