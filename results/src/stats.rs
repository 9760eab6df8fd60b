//! Figures of a history as data: latency and throughput over time, and availability
//! (share of `ok`) inside and outside each kind of fault.
//!
//! Operations are attributed to the time bucket, and to the fault windows, of their
//! invoke. Latency is measured on `ok` operations only (a `fail` is often fast, an `info`
//! is often a timeout: both would hide how long real work took).
//!
//! [`Analysis`] computes all of them once for a history; every renderer shares it.

use crate::faults::{fault_windows, FaultSummary, FaultWindow};
use crate::run::{OpCounts, RunInfo};
use crate::ResultsError;
use faultline_history::{History, Operation, Outcome};
use serde::Serialize;

/// Time buckets of the latency and throughput charts.
pub const SERIES_BUCKETS: usize = 200;

/// A history digested for the reports.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Client operations.
    pub ops: Vec<Operation>,
    /// Operations by outcome.
    pub counts: OpCounts,
    /// Nemesis actions and fault windows.
    pub faults: FaultSummary,
    /// The last time of the history (ns).
    pub end: u64,
    /// Latency and throughput per bucket.
    pub series: Series,
    /// Availability per fault kind.
    pub availability: Vec<Availability>,
    /// The operations that did not complete ok, by function, outcome and error.
    pub failures: Vec<FailureRow>,
}

impl Analysis {
    /// Pairs and digests a history.
    pub fn of(history: &History) -> Result<Analysis, ResultsError> {
        let paired = history.pair("history")?;
        let end = history.events.iter().map(|e| e.time).max().unwrap_or(0);
        let faults = fault_windows(&paired.faults);
        let kinds = faults.kinds();
        let availability = availability(&paired.ops, &faults.windows, &kinds, end);
        let series = series(&paired.ops, end, SERIES_BUCKETS);
        let failures = failures(&paired.ops);
        Ok(Analysis {
            failures,
            counts: OpCounts::of(&paired.ops),
            ops: paired.ops,
            faults,
            end,
            series,
            availability,
        })
    }

    /// The mechanism the run recorded for a window's fault, if any.
    pub fn mechanism(run: &RunInfo, w: &FaultWindow) -> Option<String> {
        run.mechanism_of(&w.kind, w.family).map(str::to_string)
    }

    /// Fault windows per kind, as `(kind, count)`, in first-seen order.
    pub fn fault_counts(&self) -> Vec<(String, usize)> {
        self.faults
            .kinds()
            .into_iter()
            .map(|k| {
                let n = self.faults.windows.iter().filter(|w| w.kind == k).count();
                (k, n)
            })
            .collect()
    }
}

/// Whether `op` is a cas that failed on a mismatch: the compare was made and the value
/// differed, a normal answer rather than unavailability.
pub fn is_mismatch(op: &Operation) -> bool {
    op.outcome == Outcome::Fail && op.f == "cas" && op.error.as_deref() == Some("mismatch")
}

/// Whether the system answered `op`: it completed ok, or it is a cas mismatch.
pub fn answered(op: &Operation) -> bool {
    op.outcome == Outcome::Ok || is_mismatch(op)
}

/// How many operations ended one way that is not `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureRow {
    /// The function (`read`, `write`, `cas`, ...).
    pub f: String,
    /// `fail` or `info`.
    pub outcome: &'static str,
    /// The error recorded (`none` when none was).
    pub error: String,
    /// How many.
    pub count: u64,
    /// What it means, in words.
    pub meaning: &'static str,
}

/// The operations that did not complete ok, grouped by function, outcome and error,
/// most frequent first.
pub fn failures(ops: &[Operation]) -> Vec<FailureRow> {
    let mut groups: std::collections::BTreeMap<(String, &'static str, String), u64> =
        std::collections::BTreeMap::new();
    for op in ops {
        let outcome = match op.outcome {
            Outcome::Ok => continue,
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        };
        let error = op.error.clone().unwrap_or_else(|| "none".into());
        *groups.entry((op.f.clone(), outcome, error)).or_default() += 1;
    }
    let mut rows: Vec<FailureRow> = groups
        .into_iter()
        .map(|((f, outcome, error), count)| {
            let meaning = match (outcome, f.as_str(), error.as_str()) {
                ("fail", "cas", "mismatch") => {
                    "answered: the value differed from the expected one (not unavailability)"
                }
                ("fail", _, _) => "refused: definitely did not take effect",
                _ => "unknown outcome: may or may not have taken effect",
            };
            FailureRow {
                f,
                outcome,
                error,
                count,
                meaning,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.f.cmp(&b.f)));
    rows
}

/// Latency of the `ok` operations invoked in one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyBucket {
    /// Median, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// Maximum, ms.
    pub max: f64,
    /// How many operations.
    pub n: u64,
}

/// Per-bucket figures over the whole history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Bucket width (ns).
    pub bucket_ns: u64,
    /// Latency per bucket (`None` where no `ok` operation was invoked).
    pub latency: Vec<Option<LatencyBucket>>,
    /// Operations invoked per bucket, by outcome.
    pub counts: Vec<OpCounts>,
}

impl Series {
    /// Throughput of one bucket in operations per second, by outcome `(ok, fail, info)`.
    pub fn rate(&self, i: usize) -> (f64, f64, f64) {
        let secs = self.bucket_ns as f64 / 1e9;
        let c = self.counts.get(i).copied().unwrap_or_default();
        (
            c.ok as f64 / secs,
            c.fail as f64 / secs,
            c.info as f64 / secs,
        )
    }
}

/// The bucket of time `t` among `n` buckets over `[0, end]`.
pub fn bucket_of(t: u64, end: u64, n: usize) -> usize {
    if n == 0 || end == 0 {
        return 0;
    }
    let i = (t as u128 * n as u128 / (end as u128 + 1)) as usize;
    i.min(n - 1)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Latency and counts in `n` buckets over `[0, end]` ns.
pub fn series(ops: &[Operation], end: u64, n: usize) -> Series {
    let n = n.max(1);
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut counts = vec![OpCounts::default(); n];
    for op in ops {
        let b = bucket_of(op.invoke_time, end, n);
        counts[b].add(op.outcome);
        if let (Outcome::Ok, Some(done)) = (op.outcome, op.complete_time) {
            lat[b].push(done.saturating_sub(op.invoke_time) as f64 / 1e6);
        }
    }
    let latency = lat
        .into_iter()
        .map(|mut v| {
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            Some(LatencyBucket {
                p50: percentile(&v, 0.5),
                p95: percentile(&v, 0.95),
                max: v[v.len() - 1],
                n: v.len() as u64,
            })
        })
        .collect();
    Series {
        bucket_ns: (end / n as u64).max(1),
        latency,
        counts,
    }
}

/// Availability inside and outside one kind of fault.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Availability {
    /// The fault kind (`partition`, `kill`, ...), or `any fault`.
    pub kind: String,
    /// How many windows of this kind.
    pub windows: usize,
    /// Total time those windows cover (ns, overlaps counted once).
    pub covered_ns: u64,
    /// Operations invoked inside a window of this kind.
    pub inside: OpCounts,
    /// Operations invoked outside every window of this kind.
    pub outside: OpCounts,
    /// Of the operations inside, those answered (ok, or a cas mismatch).
    pub inside_answered: u64,
    /// Of the operations outside, those answered.
    pub outside_answered: u64,
}

impl Availability {
    /// Share of the operations inside that were answered (`None` when none).
    pub fn inside_share(&self) -> Option<f64> {
        share(self.inside_answered, self.inside.total)
    }

    /// Share of the operations outside that were answered (`None` when none).
    pub fn outside_share(&self) -> Option<f64> {
        share(self.outside_answered, self.outside.total)
    }
}

fn share(part: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| part as f64 / total as f64)
}

/// Sorted, merged `[start, end]` intervals of some windows.
fn merged(windows: &[&FaultWindow], end: u64) -> Vec<(u64, u64)> {
    let mut iv: Vec<(u64, u64)> = windows.iter().map(|w| (w.start, w.end_or(end))).collect();
    iv.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(iv.len());
    for (a, b) in iv {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn inside(iv: &[(u64, u64)], t: u64) -> bool {
    let i = iv.partition_point(|&(a, _)| a <= t);
    i > 0 && t <= iv[i - 1].1
}

/// Availability per fault kind (in `kinds` order), then for any fault at all.
pub fn availability(
    ops: &[Operation],
    windows: &[FaultWindow],
    kinds: &[String],
    end: u64,
) -> Vec<Availability> {
    let mut groups: Vec<(String, Vec<&FaultWindow>)> = kinds
        .iter()
        .map(|k| (k.clone(), windows.iter().filter(|w| &w.kind == k).collect()))
        .collect();
    if !windows.is_empty() {
        groups.push(("any fault".to_string(), windows.iter().collect()));
    }
    groups
        .into_iter()
        .map(|(kind, ws)| {
            let iv = merged(&ws, end);
            let mut a = Availability {
                kind,
                windows: ws.len(),
                covered_ns: iv.iter().map(|(s, e)| e - s).sum(),
                inside: OpCounts::default(),
                outside: OpCounts::default(),
                inside_answered: 0,
                outside_answered: 0,
            };
            for op in ops {
                let yes = u64::from(answered(op));
                if inside(&iv, op.invoke_time) {
                    a.inside.add(op.outcome);
                    a.inside_answered += yes;
                } else {
                    a.outside.add(op.outcome);
                    a.outside_answered += yes;
                }
            }
            a
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::Value;

    fn op(id: usize, invoke: u64, done: Option<u64>, outcome: Outcome) -> Operation {
        Operation {
            id,
            process: 0,
            f: "read".into(),
            key: None,
            argument: Value::Null,
            result: Value::Null,
            outcome,
            invoke_index: id as u64 * 2,
            invoke_time: invoke,
            complete_index: done.map(|_| id as u64 * 2 + 1),
            complete_time: done,
            node: None,
            error: None,
        }
    }

    fn window(kind: &str, start: u64, end: Option<u64>) -> FaultWindow {
        FaultWindow {
            kind: kind.into(),
            family: "partition",
            nodes: vec![],
            detail: String::new(),
            start,
            end,
            undone_by: None,
            error: None,
        }
    }

    #[test]
    fn latency_percentiles_per_bucket() {
        let ops: Vec<Operation> = (0..10)
            .map(|i| op(i, 100, Some(100 + (i as u64 + 1) * 1_000_000), Outcome::Ok))
            .chain([op(10, 900, Some(5_000_000_000), Outcome::Info)])
            .collect();
        let s = series(&ops, 1_000, 2);
        let b = s.latency[0].unwrap_or(LatencyBucket {
            p50: 0.0,
            p95: 0.0,
            max: 0.0,
            n: 0,
        });
        assert_eq!(b.n, 10);
        assert_eq!(b.max, 10.0);
        assert_eq!(b.p95, 10.0);
        assert!((b.p50 - 6.0).abs() < 1e-9 || (b.p50 - 5.0).abs() < 1e-9);
        assert!(s.latency[1].is_none(), "info ops carry no latency");
        assert_eq!(s.counts[1].info, 1);
        assert_eq!(s.counts[0].ok, 10);
    }

    #[test]
    fn availability_inside_and_outside() {
        let ops = vec![
            op(0, 5, Some(6), Outcome::Ok),
            op(1, 15, Some(16), Outcome::Fail),
            op(2, 16, Some(17), Outcome::Info),
            op(3, 25, Some(26), Outcome::Ok),
            op(4, 45, None, Outcome::Info),
        ];
        let ws = vec![window("partition", 10, Some(20)), window("kill", 40, None)];
        let kinds = vec!["partition".to_string(), "kill".to_string()];
        let a = availability(&ops, &ws, &kinds, 50);
        assert_eq!(a.len(), 3);
        assert_eq!((a[0].inside.total, a[0].inside.ok), (2, 0));
        assert_eq!((a[0].outside.total, a[0].outside.ok), (3, 2));
        assert_eq!(a[1].covered_ns, 10);
        assert_eq!(a[1].inside.info, 1);
        assert_eq!(a[2].kind, "any fault");
        assert_eq!(a[2].inside.total, 3);
        assert_eq!(a[2].outside.ok_share(), Some(1.0));
    }

    #[test]
    fn a_cas_mismatch_is_an_answer_not_a_failure() {
        let mut m = op(0, 5, Some(6), Outcome::Fail);
        m.f = "cas".into();
        m.error = Some("mismatch".into());
        let mut refused = op(1, 7, Some(8), Outcome::Fail);
        refused.f = "cas".into();
        refused.error = Some("not leader".into());
        let mut timeout = op(2, 9, Some(10), Outcome::Info);
        timeout.f = "write".into();
        timeout.error = Some("timeout".into());
        let mut m2 = m.clone();
        m2.id = 3;
        let ops = vec![m, refused, timeout, m2, op(4, 11, Some(12), Outcome::Ok)];
        let rows = failures(&ops);
        let got: Vec<(&str, &str, &str, u64)> = rows
            .iter()
            .map(|r| (r.f.as_str(), r.outcome, r.error.as_str(), r.count))
            .collect();
        assert_eq!(
            got,
            [
                ("cas", "fail", "mismatch", 2),
                ("cas", "fail", "not leader", 1),
                ("write", "info", "timeout", 1)
            ]
        );
        assert!(rows[0].meaning.starts_with("answered"));
        assert!(rows[1].meaning.starts_with("refused"));
        assert!(rows[2].meaning.starts_with("unknown"));
        let a = availability(&ops, &[window("kill", 0, Some(8))], &["kill".into()], 20);
        // Inside: two mismatches (answered) and a refusal; outside: a timeout and an ok.
        assert_eq!((a[0].inside.total, a[0].inside_answered), (3, 2));
        assert_eq!((a[0].outside.total, a[0].outside_answered), (2, 1));
        assert_eq!(a[0].outside_share(), Some(0.5));
    }
}
