//! Whether the nemesis's clock faults reach a Java program (the zookeeper target's JVM):
//! the JVM's own `keytool` makes a self-signed certificate, whose "Valid from" date is the
//! JVM's wall clock, once with the real clock and once under libfaketime set up exactly as
//! the harness sets up a node (`faketime_env` with a timestamp file holding an offset of
//! -3650 days). The faked certificate must start about ten years earlier.
//!
//! Needs Debian's Java runtime and libfaketime (`apt-get install default-jre-headless
//! libfaketime`; CI installs both). Outside CI a machine without them skips, saying so;
//! under `CI=true` a missing one is a failure with the install command.

use std::path::{Path, PathBuf};
use std::process::Command;

use faultline_nemesis::clock::{faketime_env, find_libfaketime, CacheMode};
use faultline_targets::runtime::write_offset;
use faultline_targets::zookeeper::java_home;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The year of the "Valid from" date of a fresh certificate made by `keytool` in `dir`,
/// with `env` added to its environment.
fn certificate_year(keytool: &Path, dir: &Path, name: &str, env: &[(String, String)]) -> i32 {
    let store = dir.join(format!("{name}.p12"));
    let _ = std::fs::remove_file(&store);
    let made = Command::new(keytool)
        .args([
            "-genkeypair",
            "-keyalg",
            "EC",
            "-alias",
            "a",
            "-validity",
            "2",
        ])
        .args(["-dname", "CN=faultline", "-storepass", "faultline"])
        .arg("-keystore")
        .arg(&store)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("keytool runs");
    assert!(
        made.status.success(),
        "keytool -genkeypair failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let listed = Command::new(keytool)
        .args(["-list", "-v", "-storepass", "faultline", "-keystore"])
        .arg(&store)
        .output()
        .expect("keytool runs");
    let text = String::from_utf8_lossy(&listed.stdout);
    // "Valid from: Sat Feb 03 04:05:10 UTC 2001 until: Mon Feb 05 04:05:10 UTC 2001"
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Valid from:"))
        .unwrap_or_else(|| panic!("no validity in keytool's listing:\n{text}"));
    let from = line.split(" until:").next().unwrap_or(line);
    from.split_whitespace()
        .last()
        .and_then(|y| y.parse().ok())
        .unwrap_or_else(|| panic!("no year in {line:?}"))
}

#[test]
fn libfaketime_moves_the_jvm_wall_clock() {
    let keytool = java_home().join("bin/keytool");
    let lib = find_libfaketime();
    let missing: Vec<&str> = [
        (!keytool.is_file()).then_some("default-jre-headless"),
        lib.is_none().then_some("libfaketime"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let msg = format!(
            "needs {}: sudo apt-get install {}",
            missing.join(" and "),
            missing.join(" ")
        );
        assert!(!in_ci(), "{msg}");
        eprintln!("skipped: {msg} (this test always runs under CI=true)");
        return;
    }
    let lib: PathBuf = lib.expect("checked above");
    let dir = std::env::temp_dir().join(format!("fl-jvm-clock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    write_offset(&dir, "-3650d").expect("offset");
    let env = faketime_env(&lib, &dir.join("rc"), CacheMode::OneSecond);

    let real = certificate_year(&keytool, &dir, "real", &[]);
    let faked = certificate_year(&keytool, &dir, "faked", &env);
    assert!(
        (9..=10).contains(&(real - faked)),
        "under an offset of -3650 days the JVM's certificate starts in {faked}, the real one in {real}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
