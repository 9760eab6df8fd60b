//! `faultline report`: re-render the reports of a stored run from its files.

use anyhow::{Context, Result};
use clap::Args;
use faultline_results::{find_run, read_verdicts, regenerate};
use std::path::PathBuf;

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
    let paths = regenerate(&dir, args.html_location.as_deref())
        .with_context(|| format!("regenerate the reports of {}", dir.display()))?;
    let doc = read_verdicts(&paths.verdict_json)
        .with_context(|| format!("read {}", paths.verdict_json.display()))?;
    outln!("{}", paths.html.display());
    outln!("{}", paths.markdown.display());
    outln!("{}", paths.junit.display());
    Ok(doc.exit_code)
}
