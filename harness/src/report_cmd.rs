//! `faultline report`: re-render the reports of a stored run from its files.

use anyhow::{Context, Result};
use clap::Args;
use faultline_results::{find_run, read_verdicts, regenerate, ResultsError};
use std::path::{Path, PathBuf};

/// Arguments of `faultline report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run folder, a file inside one, `store/latest`, a target folder or the store
    /// (the newest run is taken).
    #[arg(default_value = "store/latest")]
    run: PathBuf,
    /// Where report.md says the HTML report is (e.g. a CI artifact URL).
    #[arg(long)]
    html_location: Option<String>,
}

/// Runs `faultline report`; returns the exit code the run's verdict stands for.
pub fn run(args: ReportArgs) -> Result<u8> {
    let dir = match find_run(&args.run) {
        Ok(dir) => dir,
        Err(e) => {
            errln!("error: {e}");
            return Ok(crate::exit::BAD_INPUT);
        }
    };
    let paths = match regenerate(&dir, args.html_location.as_deref()) {
        Ok(paths) => paths,
        Err(e) if e.is_user_error() => {
            errln!("error: {e}");
            errln!("  {}", hint(&e, &dir));
            return Ok(crate::exit::BAD_INPUT);
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("regenerate the reports of {}", dir.display())))
        }
    };
    let doc = read_verdicts(&paths.verdict_json)
        .with_context(|| format!("read {}", paths.verdict_json.display()))?;
    outln!("{}", paths.html.display());
    outln!("{}", paths.markdown.display());
    outln!("{}", paths.junit.display());
    Ok(doc.exit_code)
}

/// What to do about a run folder whose reports cannot be rendered again.
fn hint(e: &ResultsError, dir: &Path) -> String {
    match e {
        ResultsError::Io { action, .. } if action.starts_with("write") => format!(
            "faultline report writes report.html, report.md and junit.xml into {}: make it writable, or copy the run folder somewhere you can write and give that",
            dir.display()
        ),
        _ if !dir.join("history.jsonl").is_file() => format!(
            "{} has no readable history.jsonl, so its reports cannot be rendered again",
            dir.display()
        ),
        ResultsError::Io { path, .. }
            if path.ends_with("verdict.json") && dir.join("history.jsonl").is_file() =>
        {
            format!(
                "{} has a history but no verdict (its harness stopped before checking): faultline analyze {} checks it with the run's claims and writes verdict.json and every report",
                dir.display(),
                dir.display()
            )
        }
        ResultsError::History(_) => format!(
            "the run's history.jsonl cannot be read, so nothing can be rendered from it; the reports already in {} are left as they were",
            dir.display()
        ),
        _ => format!(
            "to write verdict.json and every report again from the recorded history: faultline check {} --report {}",
            dir.join("history.jsonl").display(),
            dir.display()
        ),
    }
}
