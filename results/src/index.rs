//! The index of a store: one row per stored run (target, workload, nemesis, date,
//! duration, operations, the verdict of each claimed or checked model, exit code, whether
//! it is still running), read from each run folder's `run.json`, `verdict.json` and
//! `progress.json`, and rendered as `store/index.html`, a static page with links to each
//! run's report (sortable and filterable where scripts run). `faultline serve` serves the
//! same page, which then also polls the rows as JSON to show running campaigns live.

use crate::store::{is_run_dir, run_order, REPORT_HTML, RUN_JSON, VERDICT_JSON};
use crate::text::{clip_text, visible, NAME_LIMIT};
use crate::write::{read_run, read_verdicts};
use crate::ResultsError;
use minijinja::{AutoEscape, Environment};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The file name of the index in the store.
pub const INDEX_HTML: &str = "index.html";
/// The progress file a running campaign keeps in its run folder.
pub const PROGRESS_JSON: &str = "progress.json";
/// A progress file older than this belongs to a campaign that is no longer running.
pub const STALE_AFTER: Duration = Duration::from_secs(15);

const TEMPLATE: &str = include_str!("../templates/index.html");

/// What a running campaign reports about itself in `progress.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The phase (`main`, `final heal`, `recovery`, `final reads`, `checking`).
    #[serde(default)]
    pub phase: String,
    /// Seconds since the main phase started.
    #[serde(default)]
    pub elapsed_s: f64,
    /// Seconds the main phase lasts.
    #[serde(default)]
    pub limit_s: f64,
    /// Completed operations so far.
    #[serde(default)]
    pub ops: u64,
    /// Of which ok, fail, info.
    #[serde(default)]
    pub ok: u64,
    /// Definitely not applied.
    #[serde(default)]
    pub fail: u64,
    /// Unknown outcome.
    #[serde(default)]
    pub info: u64,
    /// Operations per second over the run so far.
    #[serde(default)]
    pub ops_per_s: f64,
    /// Faults applied so far.
    #[serde(default)]
    pub faults: u64,
    /// The faults in force, in words.
    #[serde(default)]
    pub in_force: String,
}

/// One model's result in a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCell {
    /// The model.
    pub model: String,
    /// `valid`, `invalid`, `unknown`, `implied`, `ruled-out`.
    pub result: String,
    /// Whether the target claims it.
    pub claimed: bool,
}

/// One stored run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// The run folder relative to the store (`raft-register/20261204T101010`).
    pub path: String,
    /// The target (from the folder name).
    pub target: String,
    /// The folder's time stamp.
    pub stamp: String,
    /// The workload, from the plan.
    pub workload: String,
    /// The fault families, comma-separated (`none` when none).
    pub nemesis: String,
    /// When it started (RFC 3339), else the stamp.
    pub started: String,
    /// How long it took, in seconds.
    pub duration_s: Option<f64>,
    /// Client operations.
    pub ops: Option<u64>,
    /// The claimed models, then the other checked ones, with their results.
    pub models: Vec<ModelCell>,
    /// The exit code, once checked.
    pub exit_code: Option<u8>,
    /// `finished`, `running`, `cut short` (interrupted, or a harness that stopped before
    /// its verdict).
    pub status: String,
    /// The progress of a running campaign.
    pub progress: Option<Progress>,
    /// How long it took, in words (`1 m 05 s`).
    pub duration: String,
    /// The files of the run folder worth opening, in this order: report.html, report.md,
    /// verdict.json, run.json, history.jsonl, junit.xml.
    pub files: Vec<String>,
}

/// The row of the run folder `dir` (named `rel` in the store), at time `now`.
pub fn run_row(dir: &Path, rel: &str, now: SystemTime) -> RunRow {
    let (target, stamp) = rel.split_once('/').unwrap_or(("", rel));
    let info = read_run(&dir.join(RUN_JSON)).unwrap_or_default();
    let verdict = read_verdicts(&dir.join(VERDICT_JSON)).ok();
    let plan = info.plan.as_ref();
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .map(|s| clip_text(&visible(s), NAME_LIMIT).into_owned())
    };
    let workload = text(plan.and_then(|p| p.get("workload"))).unwrap_or_default();
    let nemesis = match info.extra.get("nemesis").and_then(|n| n.as_array()) {
        Some(list) if list.is_empty() => "none".to_string(),
        Some(list) => list
            .iter()
            .filter_map(|f| f.as_str())
            .map(|f| visible(f).into_owned())
            .collect::<Vec<_>>()
            .join(","),
        None => String::new(),
    };
    let claims: Vec<String> = info
        .extra
        .get("claims")
        .and_then(|c| c.get("models"))
        .and_then(|m| m.as_array())
        .map(|m| {
            m.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut models: Vec<ModelCell> = Vec::new();
    if let Some(doc) = &verdict {
        for claimed in [true, false] {
            for e in &doc.models {
                let is_claimed = e.claimed || claims.contains(&e.model);
                if is_claimed == claimed && (is_claimed || e.checked) {
                    models.push(ModelCell {
                        model: clip_text(&visible(&e.model), NAME_LIMIT).into_owned(),
                        result: e.result.as_str().to_string(),
                        claimed: is_claimed,
                    });
                }
            }
        }
    }
    let progress = std::fs::read(dir.join(PROGRESS_JSON))
        .ok()
        .and_then(|b| serde_json::from_slice::<Progress>(&b).ok());
    let fresh = std::fs::metadata(dir.join(PROGRESS_JSON))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| now.duration_since(t).ok().or(Some(Duration::ZERO)))
        .is_some_and(|age| age <= STALE_AFTER);
    let in_progress = info.extra.get("in_progress").and_then(|v| v.as_bool()) == Some(true);
    let interrupted = info.extra.get("interrupted").and_then(|v| v.as_bool()) == Some(true);
    let status = if verdict.is_some() && !in_progress && interrupted {
        "cut short"
    } else if verdict.is_some() && !in_progress {
        "finished"
    } else if in_progress && fresh {
        "running"
    } else {
        "cut short"
    };
    RunRow {
        path: rel.to_string(),
        target: target.to_string(),
        stamp: stamp.to_string(),
        workload,
        nemesis,
        started: info
            .started_at
            .as_deref()
            .map(|s| visible(s).into_owned())
            .unwrap_or_else(|| stamp.to_string()),
        duration_s: info.duration_ms.map(|ms| ms as f64 / 1e3),
        ops: info.ops.map(|o| o.total).or_else(|| {
            verdict
                .as_ref()
                .and_then(|d| d.history_ops.map(|o| o.total))
        }),
        models,
        exit_code: verdict.as_ref().map(|d| d.exit_code),
        status: status.to_string(),
        progress: if status == "running" { progress } else { None },
        duration: info
            .duration_ms
            .map(|ms| format_duration(ms as f64 / 1e3))
            .unwrap_or_default(),
        files: FILES
            .iter()
            .filter(|f| dir.join(f).is_file())
            .map(|f| f.to_string())
            .collect(),
    }
}

/// The files of a run folder an index links to, when present.
const FILES: [&str; 6] = [
    REPORT_HTML,
    crate::store::REPORT_MD,
    VERDICT_JSON,
    RUN_JSON,
    crate::store::HISTORY_JSONL,
    crate::store::JUNIT_XML,
];

/// Every run of the store, newest first.
pub fn scan_store(store: &Path) -> Vec<RunRow> {
    let now = SystemTime::now();
    let mut found: Vec<((String, u32), String, PathBuf)> = Vec::new();
    let Ok(targets) = std::fs::read_dir(store) else {
        return Vec::new();
    };
    for t in targets.filter_map(Result::ok) {
        let Some(target) = t.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if crate::store::check_target(&target).is_err() || !t.path().is_dir() {
            continue;
        }
        let Ok(runs) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for r in runs.filter_map(Result::ok) {
            let Some(name) = r.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some(order) = run_order(&name) else {
                continue;
            };
            if is_run_dir(&r.path()) {
                found.push((order, format!("{target}/{name}"), r.path()));
            }
        }
    }
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found
        .iter()
        .map(|(_, rel, dir)| run_row(dir, rel, now))
        .collect()
}

/// The index page of `rows`. `live`: the page polls `api/runs` (for `faultline serve`).
pub fn render_index(rows: &[RunRow], live: bool) -> Result<String, ResultsError> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("index.html", TEMPLATE)
        .map_err(|source| ResultsError::Template {
            what: "index.html",
            source,
        })?;
    let tmpl = env
        .get_template("index.html")
        .map_err(|source| ResultsError::Template {
            what: "index.html",
            source,
        })?;
    let glossary: Vec<(&str, &str)> = crate::glossary::MODELS.to_vec();
    tmpl.render(minijinja::context! {
        rows => rows,
        live => live,
        glossary => glossary,
    })
    .map_err(|source| ResultsError::Template {
        what: "index.html",
        source,
    })
}

/// Writes `store/index.html` (atomically) and returns its path.
pub fn write_index(store: &Path) -> Result<PathBuf, ResultsError> {
    let rows = scan_store(store);
    let html = render_index(&rows, false)?;
    let path = store.join(INDEX_HTML);
    let tmp = store.join(format!(".index.html.{}.tmp", std::process::id()));
    std::fs::write(&tmp, html).map_err(|e| ResultsError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ResultsError::io("write", &path, e)
    })?;
    Ok(path)
}

/// Writes `progress.json` into a run folder (atomically).
pub fn write_progress(run_dir: &Path, p: &Progress) -> std::io::Result<()> {
    let path = run_dir.join(PROGRESS_JSON);
    let tmp = run_dir.join(".progress.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(p).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, &path)
}

/// Formats seconds as `1 m 05 s` / `12.3 s`.
pub fn format_duration(secs: f64) -> String {
    if secs >= 60.0 {
        let s = secs.round() as u64;
        format!("{} m {:02} s", s / 60, s % 60)
    } else {
        format!("{secs:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &Path, name: &str, v: &serde_json::Value) {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join(name), v.to_string()).expect("write");
    }

    fn verdict(exit: u8, lin: &str) -> serde_json::Value {
        json!({"schema": "faultline-verdict/1", "overall": lin, "exit_code": exit,
               "exit_meaning": "x", "strongest": [],
               "models": [{"model": "linearizable", "result": lin, "claimed": true, "checked": true},
                          {"model": "cc", "result": "valid", "checked": true},
                          {"model": "ryw", "result": "not-checked"}]})
    }

    #[test]
    fn rows_come_from_the_run_folders_newest_first() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = tmp.path();
        let a = store.join("raft-register/20261204T100000");
        write(
            &a,
            "run.json",
            &json!({"plan": {"workload": "kv"}, "nemesis": ["partition", "kill"],
                    "duration_ms": 65_000, "ops": {"total": 10, "ok": 9, "fail": 1, "info": 0},
                    "claims": {"models": ["linearizable"]}}),
        );
        write(&a, "verdict.json", &verdict(1, "invalid"));
        let b = store.join("quorum-kv/20261204T110000");
        write(
            &b,
            "run.json",
            &json!({"plan": {"workload": "register"}, "nemesis": [], "in_progress": true}),
        );
        write(
            &b,
            "progress.json",
            &json!({"phase": "main", "elapsed_s": 3.0, "limit_s": 60.0, "ops": 42}),
        );
        let c = store.join("quorum-kv/20261204T090000");
        write(&c, "run.json", &json!({"in_progress": true}));
        std::fs::create_dir_all(store.join("quorum-kv/not-a-run")).expect("mkdir");
        let rows = scan_store(store);
        let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "quorum-kv/20261204T110000",
                "raft-register/20261204T100000",
                "quorum-kv/20261204T090000"
            ]
        );
        assert_eq!(rows[0].status, "running");
        assert_eq!(rows[0].progress.as_ref().map(|p| p.ops), Some(42));
        assert_eq!(rows[0].nemesis, "none");
        assert_eq!(rows[1].status, "finished");
        assert_eq!(rows[1].exit_code, Some(1));
        assert_eq!(rows[1].nemesis, "partition,kill");
        assert_eq!(
            rows[1]
                .models
                .iter()
                .map(|m| (m.model.as_str(), m.result.as_str(), m.claimed))
                .collect::<Vec<_>>(),
            [("linearizable", "invalid", true), ("cc", "valid", false)]
        );
        assert_eq!(rows[2].status, "cut short");
        // A stale progress file is not a running campaign.
        let later = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(
            run_row(&b, "quorum-kv/20261204T110000", later).status,
            "cut short"
        );
        let page = render_index(&rows, false).expect("renders");
        // minijinja escapes `/` as `&#x2f;`, which a browser reads as `/`.
        assert!(
            page.contains("href=\"raft-register&#x2f;20261204T100000/verdict.json\""),
            "{page}"
        );
        assert!(page.contains("1 m 05 s"), "{page}");
        let path = write_index(store).expect("writes");
        assert!(path.ends_with("index.html"));
    }

    #[test]
    fn durations_read_in_minutes_or_seconds() {
        assert_eq!(format_duration(65.0), "1 m 05 s");
        assert_eq!(format_duration(12.34), "12.3 s");
    }

    #[test]
    fn names_from_run_folders_are_escaped() {
        let row = RunRow {
            path: "t/20261204T100000".into(),
            target: "t".into(),
            stamp: "20261204T100000".into(),
            workload: "<script>alert(1)</script>".into(),
            nemesis: String::new(),
            started: String::new(),
            duration_s: None,
            ops: None,
            models: Vec::new(),
            exit_code: None,
            status: "cut short".into(),
            progress: None,
            duration: String::new(),
            files: Vec::new(),
        };
        let page = render_index(&[row], true).expect("renders");
        assert!(!page.contains("<script>alert(1)"), "{page}");
    }
}
