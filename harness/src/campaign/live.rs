//! Checking the history while the campaign runs: a thread takes the events the recorder
//! has added since its last look, feeds them to the incremental checker
//! ([`faultline_checkers::Incremental`]) and checks the history cut at that point. A
//! violation shows on the progress bar and on stderr the moment it is found, and with
//! `--stop-on-violation` a violation of a model that decides the exit code (any model
//! when none does) ends the main phase (the final heal, reads and the full check still
//! run: the full check decides the verdict).
//!
//! The checks take at most about a tenth of one core: after a round that took `t`, the
//! next waits at least `9 t` (and at least [`PERIOD`]).

use crate::campaign::plan::CheckRequest;
use crate::campaign::recorder::Recorder;
use crate::campaign::worker::Stats;
use faultline_checkers::{EarlyViolation, Incremental, IncrementalSpec, ModelName};
use faultline_results::{LiveCheck, LiveFinding};
use indicatif::ProgressBar;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The shortest wait between two rounds.
pub const PERIOD: Duration = Duration::from_millis(250);

/// A running live check; [`LiveChecker::finish`] stops it and returns what it found
/// (dropping it stops it too, without waiting).
pub struct LiveChecker {
    done: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<LiveCheck>>,
}

impl Drop for LiveChecker {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// One line for the terminal about a finding.
pub fn finding_line(v: &EarlyViolation) -> String {
    let key = v
        .witness
        .key
        .as_ref()
        .map(|k| format!(" on key {k}"))
        .unwrap_or_default();
    format!(
        "violation found while running: {}{key} ({}), visible at {:.2} s, found {:.2} s later",
        v.model,
        v.witness.kind,
        v.visible_at as f64 / 1e9,
        v.delay().as_secs_f64()
    )
}

fn finding(v: &EarlyViolation) -> LiveFinding {
    LiveFinding {
        model: v.model.to_string(),
        key: v.witness.key.clone(),
        visible_at_ms: v.visible_at as f64 / 1e6,
        detected_at_ms: v.detected_at as f64 / 1e6,
        ops: v.cut_ops,
    }
}

impl LiveChecker {
    /// Starts checking what `recorder` records against `request`. On a finding: the
    /// progress bar's status shows it (through `stats`), a line goes to stderr (above
    /// `bar` when it is drawn), and with
    /// `stop_on_violation`, for a decisive model (any when none is), the flag `stop` is
    /// set.
    pub fn start(
        recorder: Arc<Recorder>,
        request: &CheckRequest,
        stats: Arc<Stats>,
        stop: Arc<AtomicBool>,
        stop_on_violation: bool,
        bar: ProgressBar,
    ) -> std::io::Result<LiveChecker> {
        // The campaign's generator writes a fresh value for every write and cas.
        let spec = IncrementalSpec::new(request.linearizable, request.others.clone(), true);
        let stops: Vec<ModelName> = if !stop_on_violation {
            Vec::new()
        } else if request.decisive.is_empty() {
            ModelName::ALL.to_vec()
        } else {
            request.decisive.clone()
        };
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let handle = thread::Builder::new()
            .name("live-check".into())
            .spawn(move || run(recorder, spec, stats, stop, stops, d, bar))?;
        Ok(LiveChecker {
            done,
            handle: Some(handle),
        })
    }

    /// Runs one last round on everything recorded, stops, and returns what was found.
    pub fn finish(mut self) -> LiveCheck {
        self.done.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_else(|| LiveCheck {
                error: Some("the live check panicked".into()),
                ..LiveCheck::default()
            })
    }
}

fn run(
    recorder: Arc<Recorder>,
    spec: IncrementalSpec,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    stops: Vec<ModelName>,
    done: Arc<AtomicBool>,
    bar: ProgressBar,
) -> LiveCheck {
    let mut inc = Incremental::new(spec, "history.jsonl");
    let mut seen = 0usize;
    let mut out = LiveCheck::default();
    let mut wait = PERIOD;
    loop {
        // Sleep in short steps so that `finish` is not held up.
        let until = Instant::now() + wait;
        while Instant::now() < until && !done.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(20).min(wait));
        }
        let last = done.load(Ordering::Relaxed);
        let new = recorder.events_from(seen);
        seen += new.len();
        for ev in new {
            if let Err(e) = inc.push(ev) {
                // The offline check will say the same, with the line.
                out.error = Some(e.to_string());
                return summary(out, &inc);
            }
        }
        let started = Instant::now();
        for v in inc.check(recorder.elapsed_ns()) {
            let line = finding_line(&v);
            if bar.is_hidden() {
                errln!("{line}");
            } else {
                bar.println(line);
            }
            stats.set_violation(format!("{} violated", v.model));
            out.findings.push(finding(&v));
            if stops.contains(&v.model) && !stop.swap(true, Ordering::Relaxed) {
                out.stopped_early = true;
            }
        }
        wait = PERIOD.max(started.elapsed() * 9);
        if last {
            return summary(out, &inc);
        }
    }
}

fn summary(mut out: LiveCheck, inc: &Incremental) -> LiveCheck {
    let s = inc.stats();
    out.rounds = s.rounds;
    out.busy_ms = s.busy.as_secs_f64() * 1e3;
    out
}
