//! The HTML report in a real browser: headless Chromium loads it, and the rendered DOM
//! is checked (verdict, timeline, witness, no script error). Also measures a report of a
//! 100,000-operation history: its size and how long Chromium takes to load it.
//!
//! Needs Debian's `chromium` (set `FAULTLINE_CHROMIUM` to use another binary). Without it
//! the tests print a notice and pass, except under `CI=true`, where they fail.

mod common;

use common::hostile::hostile;
use common::{run_info, stale_read_witness, verdicts_with, Synth};
use faultline_results::{write_reports, ReportInput, ReportPaths};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FAULTLINE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The browser, or `None` (after a notice) when it is missing outside CI.
fn chromium() -> Option<PathBuf> {
    match find_chromium() {
        Some(p) => Some(p),
        None if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "chromium is needed for the browser tests in CI: apt-get install -y chromium \
             (or set FAULTLINE_CHROMIUM to a Chromium binary)"
        ),
        None => {
            eprintln!("notice: chromium not found, skipping the browser test (apt-get install -y chromium)");
            None
        }
    }
}

/// A folder for artifacts that outlive the test (screenshots, the big report).
fn artifacts(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-artifacts")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artifact folder");
    dir
}

fn headless(chrome: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chrome);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stdin(Stdio::null());
    c
}

/// Loads the page and returns the DOM Chromium serialises once it has loaded, and how
/// long the browser ran.
fn dump_dom(chrome: &Path, page: &Path) -> (String, Duration) {
    let profile = tempfile::tempdir().expect("profile");
    let start = Instant::now();
    let out = headless(chrome, profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stderr(Stdio::null())
        .output()
        .expect("chromium runs");
    let took = start.elapsed();
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    (String::from_utf8_lossy(&out.stdout).into_owned(), took)
}

fn screenshot(chrome: &Path, page: &Path, png: &Path, height: u32) {
    let profile = tempfile::tempdir().expect("profile");
    let status = headless(chrome, profile.path())
        .arg(format!("--window-size=1300,{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("chromium runs");
    assert!(status.success());
    let size = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "screenshot of {} is only {size} bytes",
        page.display()
    );
}

fn assert_script_ran(dom: &str) {
    // Attributes and text the script writes (its own source quotes them differently).
    assert!(
        dom.contains(r#"data-script="ok""#),
        "the page's script did not run"
    );
    assert!(
        !dom.contains(r#"data-script-error=""#),
        "a script error occurred"
    );
    assert!(
        dom.contains(r#"<span id="script-status">interactive page, "#),
        "the script did not write its marker"
    );
}

fn violation_report(dir: &Path, ops: usize) -> ReportPaths {
    let mut h = Synth::new(7, ops).with_standard_faults(0.6).history();
    let w = stale_read_witness(&mut h, "k1");
    let verdicts = verdicts_with(Some(w));
    let run = run_info(7);
    write_reports(
        dir,
        &ReportInput {
            run: &run,
            history: &h,
            verdicts: &verdicts,
            html_location: None,
        },
    )
    .expect("reports")
}

#[test]
fn the_violation_report_renders_in_chromium() {
    let Some(chrome) = chromium() else { return };
    let dir = artifacts("violation");
    let paths = violation_report(&dir, 800);
    let (dom, _) = dump_dom(&chrome, &paths.html);
    assert_script_ran(&dom);
    assert!(
        dom.contains(r#"<span class="res r-invalid" id="overall">invalid</span>"#),
        "verdict shown"
    );
    assert!(dom.contains(r#"<tr data-model="linearizable" data-result="invalid">"#));
    assert!(dom.contains(r#"id="timeline-svg""#), "timeline shown");
    assert!(
        dom.matches(r#"<rect class="ok""#).count() > 500,
        "operations drawn"
    );
    assert!(
        dom.contains(r#"<rect class="wit""#),
        "witness operations marked on the timeline"
    );
    assert!(
        dom.contains(r#"<article class="witness" id="witness-1">"#),
        "witness shown"
    );
    assert!(
        dom.contains("B completed before C was invoked."),
        "witness explained"
    );
    assert!(dom.contains(r#"class="witness-svg""#), "witness drawn");
    let png = dir.join("report-violation.png");
    screenshot(&chrome, &paths.html, &png, 2600);
    eprintln!("screenshot of a violation report: {}", png.display());
}

#[test]
fn hostile_values_stay_text_in_chromium() {
    let Some(chrome) = chromium() else { return };
    let dir = artifacts("hostile");
    let (h, doc, run) = hostile();
    let paths = write_reports(
        &dir,
        &ReportInput {
            run: &run,
            history: &h,
            verdicts: &doc,
            html_location: None,
        },
    )
    .expect("reports");
    let (dom, _) = dump_dom(&chrome, &paths.html);
    assert_script_ran(&dom);
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the report's own script element"
    );
    assert!(!dom.contains("<img"), "no element injected");
    assert!(!dom.contains("<b>bold"), "no element injected");
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the key shows as text"
    );
}

#[test]
fn a_report_of_100k_operations_is_small_and_loads_fast() {
    let Some(chrome) = chromium() else { return };
    let dir = artifacts("100k");
    let mut synth = Synth::new(42, 100_000).with_standard_faults(15.0);
    synth.workers = 20;
    let mut h = synth.history();
    let w = stale_read_witness(&mut h, "k2");
    let verdicts = verdicts_with(Some(w));
    let run = run_info(42);
    let start = Instant::now();
    let paths = write_reports(
        &dir,
        &ReportInput {
            run: &run,
            history: &h,
            verdicts: &verdicts,
            html_location: None,
        },
    )
    .expect("reports");
    let write_ms = start.elapsed().as_millis();
    let size = std::fs::metadata(&paths.html).expect("html").len();
    let (dom, took) = dump_dom(&chrome, &paths.html);
    assert_script_ran(&dom);
    let load_ms: u64 = dom
        .split("data-load-ms=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .expect("the page recorded its load time");
    eprintln!(
        "100k-operation report: {size} bytes of HTML, written in {write_ms} ms ({} build); \
         loaded by Chromium in {load_ms} ms (page load event), browser ran {} ms in all",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        took.as_millis()
    );
    assert!(dom.contains("100000 in all"), "all operations counted");
    assert!(
        dom.contains("grouped into time cells"),
        "aggregated timeline"
    );
    assert!(dom.contains(r#"<article class="witness" id="witness-1">"#));
    assert!(size < 10_000_000, "report weighs {size} bytes");
    assert!(load_ms < 3_000, "report took {load_ms} ms to load");
    screenshot(&chrome, &paths.html, &dir.join("report-100k.png"), 2600);
}
