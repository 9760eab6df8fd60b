//! The entry points the CLI calls: write every report of a run, and re-render the
//! reports of a stored run.

use crate::html::render_html;
use crate::junit::render_junit;
use crate::markdown::render_markdown;
use crate::run::{RunInfo, RUN_SCHEMA};
use crate::stats::Analysis;
use crate::store::{HISTORY_JSONL, JUNIT_XML, REPORT_HTML, REPORT_MD, RUN_JSON, VERDICT_JSON};
use crate::text::json_visible;
use crate::verdicts::{VerdictDoc, VERDICT_SCHEMA};
use crate::ResultsError;
use faultline_history::{write_history, History, JsonlReader};
use std::fs;
use std::io::{BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};

/// Everything the reports are made from.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// The run's facts (empty but for `source` for an imported history).
    pub run: &'a RunInfo,
    /// The history checked.
    pub history: &'a History,
    /// The verdicts.
    pub verdicts: &'a VerdictDoc,
    /// Where `report.md` says the HTML report is (a CI artifact URL, say); by default the
    /// path of the written `report.html`.
    pub html_location: Option<&'a str>,
}

/// The files written for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    /// The run folder.
    pub dir: PathBuf,
    /// `run.json`.
    pub run_json: PathBuf,
    /// `history.jsonl`.
    pub history: PathBuf,
    /// `verdict.json`.
    pub verdict_json: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `junit.xml`.
    pub junit: PathBuf,
}

impl ReportPaths {
    /// The paths of the files of the run folder `dir`.
    pub fn in_dir(dir: &Path) -> ReportPaths {
        ReportPaths {
            dir: dir.to_path_buf(),
            run_json: dir.join(RUN_JSON),
            history: dir.join(HISTORY_JSONL),
            verdict_json: dir.join(VERDICT_JSON),
            html: dir.join(REPORT_HTML),
            markdown: dir.join(REPORT_MD),
            junit: dir.join(JUNIT_XML),
        }
    }
}

/// Writes `path` whole: to a temporary name first, then renamed, so a reader never sees
/// half a report.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(|e| ResultsError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        ResultsError::io("write", path, e)
    })
}

/// Pretty JSON; control and bidi characters are written as JSON escapes
/// ([`json_visible`]), so that `cat verdict.json` shows them and a reader gets the same
/// strings.
fn json_bytes<T: serde::Serialize>(path: &Path, v: &T) -> Result<Vec<u8>, ResultsError> {
    let text = serde_json::to_string_pretty(v).map_err(|source| ResultsError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let mut bytes = json_visible(&text).into_owned().into_bytes();
    bytes.push(b'\n');
    Ok(bytes)
}

/// Renders the three human reports of a digested history.
fn render_all(
    paths: &ReportPaths,
    run: &RunInfo,
    verdicts: &VerdictDoc,
    history: &History,
    analysis: &Analysis,
    html_location: Option<&str>,
) -> Result<(), ResultsError> {
    let html = render_html(run, verdicts, analysis, history.truncated_tail)?;
    write_atomic(&paths.html, html.as_bytes())?;
    let location = html_location
        .map(str::to_string)
        .unwrap_or_else(|| paths.html.display().to_string());
    let md = render_markdown(run, verdicts, analysis, &location);
    write_atomic(&paths.markdown, md.as_bytes())?;
    write_atomic(&paths.junit, render_junit(run, verdicts).as_bytes())
}

/// Writes `run.json`, `verdict.json`, `report.html`, `report.md` and `junit.xml` into
/// `dir` (which must exist), and `history.jsonl` when the folder has none yet (the
/// recorder writes it during a run; a checked import gets its copy here).
///
/// `verdict.json` gets the history's operation counts (`history_ops`) when the verdicts
/// do not carry them yet.
pub fn write_reports(dir: &Path, input: &ReportInput<'_>) -> Result<ReportPaths, ResultsError> {
    let paths = ReportPaths::in_dir(dir);
    let analysis = Analysis::of(input.history)?;
    let mut verdicts = input.verdicts.clone().clipped();
    if verdicts.history_ops.is_none() {
        verdicts.history_ops = Some(analysis.counts);
    }
    let mut run = input.run.clone();
    if run.schema.is_empty() {
        run.schema = RUN_SCHEMA.to_string();
    }
    write_atomic(&paths.run_json, &json_bytes(&paths.run_json, &run)?)?;
    write_atomic(
        &paths.verdict_json,
        &json_bytes(&paths.verdict_json, &verdicts)?,
    )?;
    if !paths.history.exists() {
        let tmp = paths.history.with_extension("jsonl.tmp");
        let file = fs::File::create(&tmp).map_err(|e| ResultsError::io("write", &tmp, e))?;
        let mut out = BufWriter::new(file);
        write_history(&mut out, input.history)
            .and_then(|_| out.flush())
            .map_err(|e| ResultsError::io("write", &tmp, e))?;
        fs::rename(&tmp, &paths.history)
            .map_err(|e| ResultsError::io("write", &paths.history, e))?;
    }
    render_all(
        &paths,
        &run,
        &verdicts,
        input.history,
        &analysis,
        input.html_location,
    )?;
    Ok(paths)
}

/// Reads `verdict.json` (checking its schema).
pub fn read_verdicts(path: &Path) -> Result<VerdictDoc, ResultsError> {
    let text = fs::read(path).map_err(|e| ResultsError::io("read", path, e))?;
    let raw: serde_json::Value =
        serde_json::from_slice(&text).map_err(|source| ResultsError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    let schema = raw.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if schema != VERDICT_SCHEMA {
        return Err(ResultsError::Schema {
            path: path.to_path_buf(),
            found: schema.to_string(),
            expected: VERDICT_SCHEMA,
        });
    }
    serde_json::from_value(raw).map_err(|source| ResultsError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `run.json`; a missing file gives empty run facts.
pub fn read_run(path: &Path) -> Result<RunInfo, ResultsError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ResultsError::Json {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunInfo {
            schema: RUN_SCHEMA.to_string(),
            ..RunInfo::default()
        }),
        Err(e) => Err(ResultsError::io("read", path, e)),
    }
}

/// Re-reads `history.jsonl`, `run.json` and `verdict.json` of a stored run and renders
/// `report.html`, `report.md` and `junit.xml` again (for `faultline report RUN_DIR`).
/// `run_dir` may be anything [`crate::store::find_run`] accepts.
pub fn regenerate(
    run_dir: &Path,
    html_location: Option<&str>,
) -> Result<ReportPaths, ResultsError> {
    let dir = crate::store::find_run(run_dir)?;
    let paths = ReportPaths::in_dir(&dir);
    let verdicts = read_verdicts(&paths.verdict_json)?.clipped();
    let run = read_run(&paths.run_json)?;
    let file =
        fs::File::open(&paths.history).map_err(|e| ResultsError::io("read", &paths.history, e))?;
    let name = paths.history.display().to_string();
    let history = JsonlReader::new(BufReader::new(file), &name).read_all()?;
    let analysis = Analysis::of(&history)?;
    render_all(&paths, &run, &verdicts, &history, &analysis, html_location)?;
    Ok(paths)
}
