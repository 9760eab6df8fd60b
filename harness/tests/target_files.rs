//! Target files end to end: `faultline targets`, `faultline target check`, and short
//! campaigns of the two example target files in Docker:
//!
//! - `examples/targets/faultline-node.toml` (the bundled raft-register described as a
//!   foreign http-kv system): valid; with its planted stale-reads fault switched on through
//!   the node's command line (`--fault stale-reads`), caught (exit 1);
//! - `examples/targets/etcd-adapter.toml` (etcd through the Python adapter): valid under
//!   partitions and kills; with `reads=serializable` and linearizability asked for, caught
//!   (exit 1);
//! - a target given as a local image (built here from a rootfs tar with `docker import`).
//!
//! The campaigns need Docker, root, `/usr/bin/etcd` and `python3`. Outside CI a machine
//! without Docker skips them, saying so; under `CI=true` they always run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{assert_linearizable_verdict, campaign_slot, faultline, scratch};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/targets")
}

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

/// The faultline-node example with its program pointed at the node built here (the file
/// names the release build, which the tests do not make). Everything else is the file as
/// shipped.
fn node_example(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(examples().join("faultline-node.toml")).expect("example");
    let binary = node_binary();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("binary =") {
                format!("binary = {:?}", binary.display().to_string())
            } else {
                l.to_string()
            }
        })
        .collect();
    let file = dir.join("faultline-node.toml");
    std::fs::write(&file, text.join("\n")).expect("write");
    file
}

fn campaign(target: &Path, args: &[&str], store: &Path) -> Output {
    faultline()
        .arg("test")
        .arg("--target")
        .arg(target)
        .args(["--nodes", "3", "--recovery", "2", "--nemesis-interval", "2"])
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .expect("runs")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn targets_lists_the_builtins_with_their_claims() {
    let out = faultline().arg("targets").output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for needle in [
        "raft-register:",
        "quorum-kv:",
        "etcd:",
        "nats:",
        "claims (default settings): linearizable",
        "claims (default settings): ryw",
        "stale-reads",
        "transactions (list-append, rw-register): yes, claims strict-serializable",
        "transactions (list-append, rw-register): yes, claims no isolation model",
        "txn-lost-update",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
}

#[test]
fn target_check_accepts_the_examples_and_refuses_a_bad_file_with_its_line() {
    let dir = scratch("targets-", "check");
    let node = node_example(&dir);
    for file in [node, examples().join("etcd-adapter.toml")] {
        let out = faultline()
            .args(["target", "check"])
            .arg(&file)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("valid target file"));
    }
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\n[program]\nbinary = \"/bin/sh\"\n[node]\ncommand = [\"{hostname}\"]\nport = 1\n\
         [readiness]\ntcp = 1\n[client]\ntype = \"http-kv\"\n[[claims]]\nmodels = []\nreason = \"none\"\n",
    )
    .expect("write");
    for cmd in [vec!["target", "check"], vec!["test", "--target"]] {
        let out = faultline().args(&cmd).arg(&bad).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{cmd:?}: {}", show(&out));
        assert!(
            stderr.contains("bad.toml:5:12: node.command: unknown placeholder {hostname}"),
            "{cmd:?}: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_faultline_node_example_is_valid_and_its_stale_reads_are_caught() {
    let Some(_slot) = campaign_slot() else { return };
    let dir = scratch("targets-", "node");
    let file = node_example(&dir);
    let store = dir.join("store");
    let out = campaign(
        &file,
        &[
            "--time-limit",
            "5",
            "--rate",
            "100",
            "--nemesis",
            "partition,kill",
            "--seed",
            "1",
        ],
        &store,
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_linearizable_verdict(&store);
    let out = campaign(
        &file,
        &[
            "--time-limit",
            "10",
            "--rate",
            "200",
            "--nemesis",
            "partition",
            "--fault",
            "stale-reads",
            "--seed",
            "3",
        ],
        &store,
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("linearizable (claimed): INVALID"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_etcd_adapter_example_is_valid_and_its_serializable_reads_are_caught() {
    let Some(_slot) = campaign_slot() else { return };
    assert!(
        Path::new("/usr/bin/etcd").is_file(),
        "/usr/bin/etcd is missing: sudo apt-get install etcd-server"
    );
    let dir = scratch("targets-", "etcd");
    let file = examples().join("etcd-adapter.toml");
    let store = dir.join("store");
    let out = campaign(
        &file,
        &[
            "--time-limit",
            "6",
            "--rate",
            "100",
            "--nemesis",
            "partition,kill",
            "--seed",
            "1",
        ],
        &store,
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_linearizable_verdict(&store);
    let logs = store.join("latest").join("logs");
    assert!(
        logs.join("adapter-n1.stderr").is_file(),
        "the adapters' stderr is kept with the run"
    );
    // Stale serializable reads need a partition to fall at the right moment: caught
    // within three short campaigns (each stops at its first violation), as a user of
    // `verify` would see it; a 10 s campaign of seed 1 alone once passed.
    let mut outs = Vec::new();
    let mut caught = false;
    for seed in ["1", "2", "3"] {
        let out = campaign(
            &file,
            &[
                "--time-limit",
                "15",
                "--rate",
                "200",
                "--nemesis",
                "partition",
                "--target-opt",
                "reads=serializable",
                "--check",
                "linearizable",
                "--stop-on-violation",
                "--seed",
                seed,
            ],
            &store,
        );
        outs.push(show(&out));
        if out.status.code() == Some(1) {
            assert!(String::from_utf8_lossy(&out.stdout).contains("INVALID"));
            caught = true;
            break;
        }
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    }
    assert!(
        caught,
        "serializable reads were never caught in 3 campaigns:\n{}",
        outs.join("\n")
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Builds a local image holding faultline-node and its libraries (a rootfs tar imported
/// with `docker import`, entrypoint the node), tagged `reference`.
fn build_node_image(reference: &str, dir: &Path) {
    let binary = node_binary();
    let script = format!(
        "set -e; r={root}; rm -rf $r; mkdir -p $r/usr/local/bin $r/tmp; cp {bin} $r/usr/local/bin/faultline-node; \
         for lib in $(ldd {bin} | grep -o '/[^ ]*'); do cp --parents -L $lib $r/; done; \
         tar -C $r -c . | docker import -c 'ENTRYPOINT [\"/usr/local/bin/faultline-node\"]' - {reference} >/dev/null",
        root = dir.join("rootfs").display(),
        bin = binary.display(),
    );
    let status = Command::new("sh")
        .args(["-c", &script])
        .status()
        .expect("sh runs");
    assert!(status.success(), "building the image {reference} failed");
}

#[test]
fn a_target_given_as_a_local_image_runs_end_to_end() {
    let Some(_slot) = campaign_slot() else { return };
    let dir = scratch("targets-", "image");
    let reference = format!("faultline-it-image:{}", std::process::id());
    build_node_image(&reference, &dir);
    let text = std::fs::read_to_string(examples().join("faultline-node.toml")).expect("example");
    let text: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("[clock]") && !l.starts_with("faults = true"))
        .map(|l| {
            if l.starts_with("binary =") {
                format!("image = {reference:?}")
            } else if l.starts_with("name =") {
                "name = \"faultline-node-image\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    let file = dir.join("image.toml");
    std::fs::write(&file, text.join("\n")).expect("write");
    let store = dir.join("store");
    let out = campaign(
        &file,
        &[
            "--time-limit",
            "5",
            "--rate",
            "100",
            "--nemesis",
            "partition,kill",
            "--seed",
            "2",
        ],
        &store,
    );
    let _ = Command::new("docker").args(["rmi", &reference]).output();
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // An image target runs its own entry point, without a node agent, so its faults
        // come from the host, which needs root: a non-root user gets that said, exit 254.
        eprintln!(
            "NOTE: not root: the image target's host-path faults are refused (checked); run the suite as root to run the campaign itself"
        );
        assert_eq!(out.status.code(), Some(254), "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("needs root"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_linearizable_verdict(&store);
    let run: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(store.join("latest").join("run.json")).expect("run.json"),
    )
    .expect("json");
    assert_eq!(run["versions"]["image"], reference.as_str(), "{run:#}");
    let _ = std::fs::remove_dir_all(dir);
}
