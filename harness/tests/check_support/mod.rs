//! Runs `faultline check` on a literal history written to a fresh file.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The binary under test.
pub fn faultline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
}

/// What one run printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Writes `text` to a fresh file named `name` and runs `faultline check FILE ARGS...`.
pub fn check(name: &str, text: &[u8], args: &[&str]) -> Run {
    let dir = std::env::temp_dir().join(format!(
        "faultline-check-{}-{}",
        std::process::id(),
        name.replace('.', "-")
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write history");
    let out = Command::new(faultline())
        .arg("check")
        .arg(&path)
        .args(args)
        .output()
        .expect("run faultline");
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
