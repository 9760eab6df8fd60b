//! `faultline serve` in headless Chromium: the index of a literal store (two finished
//! runs analysed by `faultline analyze`, one campaign still running), filtered and sorted
//! by the page's script, a report opened through the server, and the running campaign
//! shown live (the page polls `/api/runs` and redraws its rows without a reload).
//!
//! Needs Debian's `chromium` (or `FAULTLINE_CHROMIUM`); without it the test prints a
//! notice and passes, except under `CI=true`, where it fails.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{faultline, scratch};

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FAULTLINE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

fn chromium() -> Option<PathBuf> {
    match find_chromium() {
        Some(p) => Some(p),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "chromium is needed for the serve browser test in CI: apt-get install -y chromium"
            )
        }
        None => {
            eprintln!("notice: chromium not found, skipping the serve browser test");
            None
        }
    }
}

/// The DOM after the page loaded and its timers ran for `ms` of virtual time.
fn dump_dom(chrome: &Path, url: &str, ms: u32) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let profile = std::env::temp_dir().join(format!(
        "faultline-serve-profile-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            &format!("--virtual-time-budget={ms}"),
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ev(index: u64, process: u64, kind: &str, f: &str, value: Value) -> String {
    json!({"index": index, "time": index * 1_000_000, "process": process,
           "type": kind, "f": f, "value": value})
    .to_string()
}

/// A finished run folder, analysed so that it has every report.
fn finished_run(store: &Path, target: &str, stamp: &str, stale: bool, claims: &[&str]) {
    let dir = store.join(target).join(stamp);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let read = if stale { 1 } else { 2 };
    let lines = [
        ev(0, 0, "invoke", "write", json!(1)),
        ev(1, 0, "ok", "write", json!(1)),
        ev(2, 1, "invoke", "write", json!(2)),
        ev(3, 1, "ok", "write", json!(2)),
        ev(4, 2, "invoke", "read", Value::Null),
        ev(5, 2, "ok", "read", json!(read)),
    ];
    std::fs::write(dir.join("history.jsonl"), lines.join("\n") + "\n").expect("history");
    std::fs::write(
        dir.join("run.json"),
        json!({"target": target, "started_at": "2026-12-04T10:00:00Z", "duration_ms": 61_000,
               "nemesis": ["partition"],
               "plan": {"target": target, "nodes": 3, "workload": "register",
                        "nemesis": ["partition"], "check": ["all"]},
               "claims": {"models": claims, "reason": "test"}})
        .to_string(),
    )
    .expect("run.json");
    let out = faultline()
        .arg("analyze")
        .arg(&dir)
        .output()
        .expect("analyze runs");
    assert!(out.status.code().is_some(), "{out:?}");
    assert!(dir.join("report.html").is_file(), "{out:?}");
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(store: &Path) -> Server {
    let mut child = faultline()
        .args(["serve", "--port", "0", "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, url }
}

/// A plain HTTP GET (the body), for what the browser is not needed for.
fn get(url: &str) -> (String, String) {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

/// The `<tr …>` start tag of the row of `path`.
fn row_tag<'a>(dom: &'a str, path: &str) -> &'a str {
    let at = dom
        .find(&format!("data-path=\"{path}\""))
        .unwrap_or_else(|| panic!("no row {path}:\n{dom}"));
    let start = dom[..at].rfind("<tr").expect("row start");
    let end = at + dom[at..].find('>').expect("tag end");
    &dom[start..=end]
}

fn attr(dom: &str, name: &str) -> String {
    let body = &dom[dom.find("<body").expect("body")..];
    let at = body
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("no {name}"));
    let v = &body[at + name.len() + 2..];
    v[..v.find('"').expect("quote")].to_string()
}

#[test]
fn the_index_filters_sorts_opens_reports_and_shows_a_running_campaign_live() {
    let Some(chrome) = chromium() else { return };
    let tmp = scratch("serve", "browser");
    let store = tmp.join("store");
    finished_run(
        &store,
        "raft-register",
        "20261204T100000",
        true,
        &["linearizable"],
    );
    finished_run(&store, "quorum-kv", "20261204T090000", true, &[]);
    // A campaign in progress: an early run.json and a progress file kept fresh.
    let live = store.join("quorum-kv/20261204T110000");
    std::fs::create_dir_all(&live).expect("mkdir");
    std::fs::write(
        live.join("run.json"),
        json!({"target": "quorum-kv", "in_progress": true, "nemesis": ["kill"],
               "plan": {"workload": "kv"}, "claims": {"models": ["ryw"]}})
        .to_string(),
    )
    .expect("run.json");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, live) = (stop.clone(), live.clone());
        std::thread::spawn(move || {
            let mut ops = 100u64;
            while !stop.load(Ordering::Relaxed) {
                let p = json!({"phase": "main", "elapsed_s": ops as f64 / 100.0, "limit_s": 60.0,
                               "ops": ops, "ok": ops, "ops_per_s": 100.0,
                               "in_force": "kill n2"});
                let tmp = live.join(".p.tmp");
                std::fs::write(&tmp, p.to_string()).expect("progress");
                std::fs::rename(&tmp, live.join("progress.json")).expect("rename");
                ops += 7;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let server = serve(&store);

    // The JSON endpoint.
    let (head, body) = get(&format!("{}api/runs", server.url));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let rows: Value = serde_json::from_str(&body).expect("JSON rows");
    assert_eq!(rows.as_array().map(Vec::len), Some(3), "{rows}");
    assert_eq!(rows[0]["status"], "running", "{rows}");

    // The index, after the script polled a few times.
    let dom = dump_dom(&chrome, &server.url, 7_000);
    assert_eq!(attr(&dom, "data-script"), "ok", "{dom}");
    assert_eq!(
        attr(&dom, "data-source"),
        "live",
        "the rows were redrawn from /api/runs: {dom}"
    );
    let polls: u32 = attr(&dom, "data-polls").parse().expect("a count");
    assert!(polls >= 2, "{polls} polls: {dom}");
    let running = row_tag(&dom, "quorum-kv/20261204T110000");
    assert!(running.contains("data-status=\"running\""), "{running}");
    assert!(dom.contains("in force: kill n2"), "{dom}");
    let raft = row_tag(&dom, "raft-register/20261204T100000");
    assert!(raft.contains("data-exit=\"1\""), "{raft}");
    assert!(dom.contains("linearizable: invalid"), "{dom}");
    assert!(
        dom.contains("raft-register/20261204T100000/report.html"),
        "{dom}"
    );
    // The run that claims nothing shows its findings uncoloured and exits 0.
    let qkv = row_tag(&dom, "quorum-kv/20261204T090000");
    assert!(qkv.contains("data-exit=\"0\""), "{qkv}");

    // Filtered from the address bar: only quorum-kv rows stay visible.
    let dom = dump_dom(&chrome, &format!("{}?q=quorum", server.url), 3_000);
    assert!(
        row_tag(&dom, "raft-register/20261204T100000").contains("hidden"),
        "{dom}"
    );
    assert!(
        !row_tag(&dom, "quorum-kv/20261204T090000").contains("hidden"),
        "{dom}"
    );
    assert!(dom.contains("2 of 3 run(s)"), "{dom}");

    // Sorted by exit code, ascending: the run that exits 0 comes first among finished ones.
    let dom = dump_dom(&chrome, &format!("{}?sort=exit", server.url), 3_000);
    let a = dom
        .find("data-path=\"quorum-kv/20261204T090000\"")
        .expect("row");
    let b = dom
        .find("data-path=\"raft-register/20261204T100000\"")
        .expect("row");
    assert!(a < b, "exit 0 sorts before exit 1");

    // A report through the server.
    let report = dump_dom(
        &chrome,
        &format!("{}raft-register/20261204T100000/report.html", server.url),
        2_000,
    );
    assert!(report.contains("id=\"overall\""), "{report}");
    assert!(report.contains("data-model=\"linearizable\""), "{report}");
    // Nothing outside the store.
    let (head, _) = get(&format!("{}../../etc/passwd", server.url));
    assert!(!head.starts_with("HTTP/1.1 200"), "{head}");

    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    drop(server);
    let _ = std::fs::remove_dir_all(&tmp);
}
