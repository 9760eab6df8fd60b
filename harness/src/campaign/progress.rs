//! The progress bar of a campaign (stderr; hidden when stderr is not a terminal):
//! elapsed / limit, ops/s, ok / fail / info counts and the fault in force.

use crate::campaign::worker::Stats;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running progress bar; stops when dropped or finished.
pub struct Progress {
    bar: ProgressBar,
    phase: Arc<Mutex<String>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The status line (pure, for tests).
pub fn status_line(stats: &Stats, elapsed: Duration, phase: &str) -> String {
    let done = stats.completed();
    let secs = elapsed.as_secs_f64().max(0.001);
    let violation = stats.violation();
    let found = if violation.is_empty() {
        String::new()
    } else {
        format!(" | FOUND: {violation}")
    };
    format!(
        "{phase} | {:.0} ops/s | ok {} fail {} info {} | faults {} | in force: {}{found}",
        done as f64 / secs,
        stats.ok.load(Ordering::Relaxed),
        stats.fail.load(Ordering::Relaxed),
        stats.info.load(Ordering::Relaxed),
        stats.faults.load(Ordering::Relaxed),
        stats.in_force(),
    )
}

/// What `progress.json` says (pure, for tests): the phase, time, counts, rate and the
/// faults in force.
pub fn progress_doc(
    stats: &Stats,
    elapsed: Duration,
    limit: Duration,
    phase: &str,
) -> faultline_results::index::Progress {
    let done = stats.completed();
    faultline_results::index::Progress {
        phase: phase.to_string(),
        elapsed_s: elapsed.as_secs_f64(),
        limit_s: limit.as_secs_f64(),
        ops: done,
        ok: stats.ok.load(Ordering::Relaxed),
        fail: stats.fail.load(Ordering::Relaxed),
        info: stats.info.load(Ordering::Relaxed),
        ops_per_s: done as f64 / elapsed.as_secs_f64().max(0.001),
        faults: stats.faults.load(Ordering::Relaxed),
        in_force: stats.in_force(),
    }
}

impl Progress {
    /// Starts a bar over `limit` seconds.
    pub fn start(stats: Arc<Stats>, limit: Duration, start: Instant) -> Progress {
        Progress::start_with_file(stats, limit, start, None)
    }

    /// Starts a bar over `limit` seconds and, with `run_dir`, keeps `progress.json` there
    /// (rewritten every second, for `faultline serve`).
    pub fn start_with_file(
        stats: Arc<Stats>,
        limit: Duration,
        start: Instant,
        run_dir: Option<std::path::PathBuf>,
    ) -> Progress {
        let bar = ProgressBar::new(limit.as_secs().max(1));
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len}s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let b = bar.clone();
        let phase = Arc::new(Mutex::new("main".to_string()));
        let p = phase.clone();
        let task = tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                let elapsed = start.elapsed();
                b.set_position(elapsed.as_secs().min(b.length().unwrap_or(u64::MAX)));
                let name = p.lock().map(|s| s.clone()).unwrap_or_default();
                b.set_message(status_line(&stats, elapsed, &name));
                if let Some(dir) = run_dir.as_deref().filter(|_| tick & 3 == 0) {
                    let doc = progress_doc(&stats, elapsed, limit, &name);
                    if let Err(e) = faultline_results::index::write_progress(dir, &doc) {
                        tracing::debug!("progress.json: {e}");
                    }
                }
                tick += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Progress {
            bar,
            phase,
            task: Some(task),
        }
    }

    /// The bar, to print lines above it (`println` on a hidden bar prints nothing).
    pub fn bar(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// Shows a phase name (final heal, recovery, final reads, checking).
    pub fn phase(&self, text: &str) {
        if let Ok(mut p) = self.phase.lock() {
            *p = text.to_string();
        }
    }

    /// Removes the bar.
    pub fn finish(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_shows_rates_counts_and_the_fault() {
        let s = Stats::default();
        s.ok.store(90, Ordering::Relaxed);
        s.fail.store(5, Ordering::Relaxed);
        s.info.store(5, Ordering::Relaxed);
        s.set_in_force("kill n2".into());
        let line = status_line(&s, Duration::from_secs(2), "main");
        assert_eq!(
            line,
            "main | 50 ops/s | ok 90 fail 5 info 5 | faults 0 | in force: kill n2"
        );
        let doc = progress_doc(&s, Duration::from_secs(2), Duration::from_secs(60), "main");
        assert_eq!((doc.ops, doc.ops_per_s, doc.limit_s), (100, 50.0, 60.0));
        assert_eq!(doc.in_force, "kill n2");
        s.set_violation("linearizable violated".into());
        s.set_violation("ryw violated".into());
        s.set_violation("ryw violated".into());
        assert_eq!(
            status_line(&s, Duration::from_secs(2), "main"),
            "main | 50 ops/s | ok 90 fail 5 info 5 | faults 0 | in force: kill n2 | FOUND: linearizable violated, ryw violated"
        );
    }
}
