//! Shell completions, the man page and the glossary in `--help`, through the binary.

mod common;
use common::faultline;

fn stdout_of(args: &[&str]) -> String {
    let out = faultline().args(args).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line() {
    let bash = stdout_of(&["completions", "bash"]);
    assert!(
        bash.contains("_faultline()") && bash.contains("analyze"),
        "{bash}"
    );
    let zsh = stdout_of(&["completions", "zsh"]);
    assert!(zsh.contains("#compdef faultline"), "{zsh}");
    let fish = stdout_of(&["completions", "fish"]);
    assert!(fish.contains("complete -c faultline"), "{fish}");
    let man = stdout_of(&["man"]);
    assert!(
        man.contains(".TH faultline 1") && man.contains("analyze"),
        "{man}"
    );
    let dir = std::env::temp_dir().join(format!("faultline-man-{}", std::process::id()));
    stdout_of(&["man", "--out-dir", dir.to_str().expect("utf-8")]);
    assert!(dir.join("faultline.1").is_file());
    assert!(dir.join("faultline-test.1").is_file());
    let _ = std::fs::remove_dir_all(&dir);
    let bad = faultline()
        .args(["completions", "tcsh"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(254));
}

#[test]
fn help_explains_the_model_names() {
    let help = stdout_of(&["--help"]);
    for m in ["ccv", "cm", "cc", "pram", "ryw", "mr", "mw", "wfr"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{m} "))),
            "{m} missing from --help:\n{help}"
        );
    }
    assert!(help.contains("not checked"), "{help}");
}

#[test]
fn test_flags_take_durations_and_per_node_concurrency() {
    // Refused before anything starts (no Docker needed).
    for (flag, value) in [
        ("--time-limit", "2x"),
        ("--time-limit", "0s"),
        ("--concurrency", "0n"),
        ("--test-count", "0"),
    ] {
        let out = faultline()
            .args(["test", flag, value])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(254), "{flag} {value}: {out:?}");
    }
    let out = faultline()
        .args([
            "verify",
            "--test-count",
            "2",
            "--store",
            "/nonexistent/store",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--campaigns"));
}

#[test]
fn the_examples_readme_says_what_the_checker_finds() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/histories/kv-stale-read.jsonl"
    );
    let out = faultline()
        .args(["check", file, "--model", "all", "--json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["models"]["strongest"], serde_json::json!(["cc"]), "{v}");
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/histories/README.md"
    ))
    .expect("README");
    assert!(readme.contains("causal consistency (`cc`), PRAM and every session guarantee hold"));
}
