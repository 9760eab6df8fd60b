//! Latency and throughput over time, and each witness's own small timeline, as geometry.

use crate::chart::{clip, format_ms, Rect, Tick, TimeAxis, LEFT, RIGHT, WIDTH};
use crate::faults::FaultWindow;
use crate::stats::Series;
use crate::timeline::{label_row_count, op_title, outcome_class, shades, Shade};
use faultline_checkers::Witness;
use faultline_history::Outcome;
use serde::Serialize;

/// Height of the plotting area of a line chart.
const PLOT_H: i64 = 150;

/// One line of a chart: polylines (broken where there is no data) and a legend name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// Legend name.
    pub name: &'static str,
    /// CSS class.
    pub class: &'static str,
    /// SVG `points` of each unbroken piece.
    pub pieces: Vec<String>,
}

/// A line chart over the report's time axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineChart {
    /// SVG height.
    pub height: i64,
    /// Top of the plot.
    pub top: i64,
    /// Bottom of the plot.
    pub bottom: i64,
    /// Time ticks.
    pub x_ticks: Vec<Tick>,
    /// Value ticks (`at` is y).
    pub y_ticks: Vec<Tick>,
    /// Lines.
    pub lines: Vec<Line>,
    /// Fault windows.
    pub shades: Vec<Shade>,
    /// Axis caption.
    pub y_caption: &'static str,
}

/// SVG `points` of each unbroken run of points; a lone point becomes a short dash so that
/// it is seen.
fn pieces(points: &[Option<(i64, i64)>]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Vec<(i64, i64)> = Vec::new();
    let flush = |cur: &mut Vec<(i64, i64)>, out: &mut Vec<String>| {
        if let [(x, y)] = cur.as_slice() {
            let (x, y) = (*x, *y);
            cur.clear();
            cur.extend([(x - 2, y), (x + 2, y)]);
        }
        if !cur.is_empty() {
            let text: Vec<String> = cur.iter().map(|(x, y)| format!("{x},{y}")).collect();
            out.push(text.join(" "));
            cur.clear();
        }
    };
    for p in points {
        match p {
            Some(xy) => cur.push(*xy),
            None => flush(&mut cur, &mut out),
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn bucket_x(axis: &TimeAxis, s: &Series, i: usize) -> i64 {
    axis.x(i as u64 * s.bucket_ns + s.bucket_ns / 2)
}

/// Latency of `ok` operations (p50, p95, max) on a log scale.
pub fn latency_chart(
    s: &Series,
    windows: &[FaultWindow],
    end: u64,
    mechanism: &dyn Fn(&FaultWindow) -> Option<String>,
) -> LineChart {
    let axis = TimeAxis::full(end);
    let top = label_row_count(windows, &axis).max(1) * 14 + 8;
    let bottom = top + PLOT_H;
    let vals = s.latency.iter().flatten();
    let lo = vals.clone().map(|b| b.p50).fold(f64::INFINITY, f64::min);
    let hi = vals.map(|b| b.max).fold(0.0, f64::max);
    let (lo_e, hi_e) = if lo.is_finite() && hi > 0.0 {
        let lo_e = lo.max(1e-3).log10().floor() as i32;
        (lo_e, (hi.max(1e-3).log10().ceil() as i32).max(lo_e + 1))
    } else {
        (0, 1)
    };
    let y = |ms: f64| -> i64 {
        let l = ms.max(1e-3).log10();
        let frac = (l - lo_e as f64) / (hi_e - lo_e) as f64;
        bottom - (frac * PLOT_H as f64).round() as i64
    };
    let y_ticks = (lo_e..=hi_e)
        .map(|e| {
            let ms = 10f64.powi(e);
            Tick {
                at: y(ms),
                label: format_ms(ms),
            }
        })
        .collect();
    type Pick = fn(&crate::stats::LatencyBucket) -> f64;
    let picks: [(&'static str, &'static str, Pick); 3] = [
        ("p50", "l-p50", |b| b.p50),
        ("p95", "l-p95", |b| b.p95),
        ("max", "l-max", |b| b.max),
    ];
    let lines = picks
        .iter()
        .map(|(name, class, pick)| Line {
            name,
            class,
            pieces: pieces(
                &s.latency
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b.as_ref().map(|b| (bucket_x(&axis, s, i), y(pick(b)))))
                    .collect::<Vec<_>>(),
            ),
        })
        .collect();
    LineChart {
        height: bottom + 22,
        top,
        bottom,
        x_ticks: axis.ticks(10),
        y_ticks,
        lines,
        shades: shades(windows, &axis, end, top, bottom, mechanism)
            .into_iter()
            .collect(),
        y_caption: "latency of ok operations (log scale)",
    }
}

/// Operations per second by outcome.
pub fn throughput_chart(
    s: &Series,
    windows: &[FaultWindow],
    end: u64,
    mechanism: &dyn Fn(&FaultWindow) -> Option<String>,
) -> LineChart {
    let axis = TimeAxis::full(end);
    let top = label_row_count(windows, &axis).max(1) * 14 + 8;
    let bottom = top + PLOT_H;
    let n = s.counts.len();
    let rates: Vec<(f64, f64, f64)> = (0..n).map(|i| s.rate(i)).collect();
    let max = rates
        .iter()
        .map(|r| r.0.max(r.1).max(r.2))
        .fold(0.0, f64::max)
        .max(1.0);
    let step = crate::chart::nice_step(max / 4.0);
    let y_max = (max / step).ceil() * step;
    let y = |v: f64| bottom - (v / y_max * PLOT_H as f64).round() as i64;
    let mut y_ticks = Vec::new();
    let mut v = 0.0;
    while v <= y_max + step * 1e-9 {
        y_ticks.push(Tick {
            at: y(v),
            label: format!("{v:.0}/s"),
        });
        v += step;
    }
    type Pick = fn(&(f64, f64, f64)) -> f64;
    let picks: [(&'static str, &'static str, Pick); 3] = [
        ("ok", "t-ok", |r| r.0),
        ("fail", "t-fail", |r| r.1),
        ("info", "t-info", |r| r.2),
    ];
    let lines = picks
        .iter()
        .map(|(name, class, pick)| Line {
            name,
            class,
            pieces: pieces(
                &rates
                    .iter()
                    .enumerate()
                    .map(|(i, r)| Some((bucket_x(&axis, s, i), y(pick(r)))))
                    .collect::<Vec<_>>(),
            ),
        })
        .collect();
    LineChart {
        height: bottom + 22,
        top,
        bottom,
        x_ticks: axis.ticks(10),
        y_ticks,
        lines,
        shades: shades(windows, &axis, end, top, bottom, mechanism)
            .into_iter()
            .collect(),
        y_caption: "operations per second, by outcome (time of invoke)",
    }
}

/// One row of a witness chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WitnessRow {
    /// The operation's label.
    pub label: String,
    /// Baseline of the label.
    pub y: i64,
    /// The bar, invoke to completion (to the right edge for an `info`).
    pub bar: Rect,
    /// Whether the bar runs on to the end (unknown outcome).
    pub open_ended: bool,
    /// The operation in words.
    pub text: String,
    /// The node that served it, when recorded.
    pub node: Option<String>,
    /// The faults in force at some moment of the operation, in words (empty: none).
    pub in_force: String,
    /// Hover text.
    pub title: String,
}

/// The faults in force at some moment of `[start, end]`, in words: each window's kind
/// and details (`partition {n1,n2} | {n3}; kill n3`), in order of start.
pub fn faults_in_force(start: u64, end: u64, windows: &[FaultWindow], history_end: u64) -> String {
    windows
        .iter()
        .filter(|w| w.start <= end && w.end_or(history_end) >= start)
        .map(|w| {
            if w.detail.is_empty() || w.detail == "null" {
                w.kind.clone()
            } else {
                format!("{} {}", w.kind, clip(&w.detail, 120))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A witness drawn as a small timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WitnessChart {
    /// SVG width.
    pub width: i64,
    /// SVG height.
    pub height: i64,
    /// Rows.
    pub rows: Vec<WitnessRow>,
    /// Time ticks.
    pub ticks: Vec<Tick>,
    /// Fault windows overlapping the witness.
    pub shades: Vec<Shade>,
    /// Top of the rows.
    pub top: i64,
    /// Bottom of the rows.
    pub bottom: i64,
}

/// Width of a witness chart.
pub const WITNESS_W: i64 = 560;

/// Draws a witness's operations from invoke to completion; `info` operations (and ones
/// that never completed) run on to the right edge.
pub fn witness_chart(
    w: &Witness,
    windows: &[FaultWindow],
    end: u64,
    mechanism: &dyn Fn(&FaultWindow) -> Option<String>,
) -> WitnessChart {
    let t0 = w.ops.iter().map(|o| o.op.invoke_time).min().unwrap_or(0);
    let t1 = w
        .ops
        .iter()
        .map(|o| {
            o.op.complete_time
                .unwrap_or(o.op.invoke_time)
                .max(o.op.invoke_time)
        })
        .max()
        .unwrap_or(t0);
    let pad = ((t1 - t0) / 10).max(500_000);
    let axis = TimeAxis::new(t0.saturating_sub(pad), t1 + pad, 40, WITNESS_W - 50);
    let row_h = 18;
    let near: Vec<FaultWindow> = windows
        .iter()
        .filter(|fw| fw.start <= axis.t1 && fw.end_or(end) >= axis.t0)
        .cloned()
        .collect();
    let top = label_row_count(&near, &axis).max(1) * 14 + 6;
    let mut ops: Vec<&faultline_checkers::WitnessOp> = w.ops.iter().collect();
    ops.sort_by_key(|o| (o.op.invoke_time, o.op.id));
    let rows: Vec<WitnessRow> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let y = top + i as i64 * row_h;
            let open_ended = o.op.outcome == Outcome::Info || o.op.complete_time.is_none();
            let done = if open_ended {
                axis.t1
            } else {
                o.op.complete_time.unwrap_or(axis.t1)
            };
            let in_force = faults_in_force(o.op.invoke_time, done, windows, end);
            let node = o.op.node.as_deref().map(|n| clip(n, 40));
            let mut title = format!("{}: {}", o.label, op_title(&o.op));
            if !in_force.is_empty() {
                title.push_str(&format!("\nin force: {in_force}"));
            }
            WitnessRow {
                node,
                in_force,
                label: clip(&o.label, 4),
                y: y + 12,
                bar: axis.span(
                    o.op.invoke_time,
                    done,
                    y + 3,
                    row_h - 6,
                    outcome_class(o.op.outcome),
                ),
                open_ended,
                text: o.op.describe(),
                title,
            }
        })
        .collect();
    let bottom = top + rows.len() as i64 * row_h;
    let shades = shades(&near, &axis, end, top, bottom, mechanism)
        .into_iter()
        .collect();
    WitnessChart {
        width: WITNESS_W,
        height: bottom + 20,
        rows,
        ticks: axis.ticks(6),
        shades,
        top,
        bottom,
    }
}

/// Full chart width (re-exported for the template).
pub const CHART_WIDTH: i64 = WIDTH;
/// Where plots start (re-exported for the template).
pub const PLOT_LEFT: i64 = LEFT;
/// Where plots end.
pub const PLOT_RIGHT: i64 = WIDTH - RIGHT;

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checkers::{Minimality, WitnessOp};
    use faultline_history::{Operation, Value};

    fn op(id: usize, invoke: u64, done: Option<u64>, outcome: Outcome) -> Operation {
        Operation {
            id,
            process: id as u64,
            f: "write".into(),
            key: Some("x".into()),
            argument: Value::from(id),
            result: Value::Null,
            outcome,
            invoke_index: 0,
            invoke_time: invoke,
            complete_index: None,
            complete_time: done,
            node: None,
            error: None,
        }
    }

    #[test]
    fn witness_bars_run_from_invoke_to_completion_and_info_to_the_edge() {
        let ms = 1_000_000;
        let w = Witness {
            model: "linearizable".into(),
            kind: "no-linearization".into(),
            key: Some("x".into()),
            summary: "s".into(),
            ops: vec![
                WitnessOp {
                    label: "B".into(),
                    op: op(1, 20 * ms, Some(30 * ms), Outcome::Ok),
                },
                WitnessOp {
                    label: "A".into(),
                    op: op(0, 10 * ms, Some(15 * ms), Outcome::Info),
                },
                WitnessOp {
                    label: "C".into(),
                    op: op(2, 40 * ms, Some(50 * ms), Outcome::Fail),
                },
            ],
            steps: vec![],
            minimality: Minimality::ByConstruction,
        };
        let window = FaultWindow {
            kind: "partition".into(),
            family: "partition",
            nodes: vec!["n1".into()],
            detail: "{}".into(),
            start: 25 * ms,
            end: Some(35 * ms),
            undone_by: Some("heal".into()),
            error: None,
        };
        let far = FaultWindow {
            start: 900 * ms,
            end: Some(950 * ms),
            ..window.clone()
        };
        let c = witness_chart(&w, &[window, far], 1_000 * ms, &|_| Some("nft".into()));
        let labels: Vec<&str> = c.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["A", "B", "C"], "rows in invoke order");
        let right = WITNESS_W - 10;
        let a = &c.rows[0];
        assert!(a.open_ended);
        assert_eq!(a.bar.x + a.bar.w, right, "info runs on to the right edge");
        assert_eq!(a.bar.class, "info");
        let b = &c.rows[1];
        assert!(!b.open_ended);
        assert!(
            b.bar.x + b.bar.w < c.rows[2].bar.x,
            "B ends before C starts"
        );
        assert_eq!(c.rows[2].bar.class, "fail");
        assert_eq!(c.shades.len(), 1, "only the window near the witness");
        assert!(c.shades[0].title.contains("mechanism: nft"));
    }

    #[test]
    fn line_pieces_break_where_data_is_missing() {
        let p = pieces(&[Some((1, 2)), Some((3, 4)), None, None, Some((5, 6))]);
        assert_eq!(p, ["1,2 3,4", "3,6 7,6"]);
    }

    #[test]
    fn faults_in_force_overlap_the_operation() {
        let w = |kind: &str, detail: &str, start, end| FaultWindow {
            kind: kind.into(),
            family: "partition",
            nodes: vec![],
            detail: detail.into(),
            start,
            end,
            undone_by: None,
            error: None,
        };
        let ws = vec![
            w("partition", "{n1} | {n2}", 10, Some(20)),
            w("kill", "n3", 15, None),
            w("pause", "n1", 40, Some(50)),
        ];
        assert_eq!(faults_in_force(0, 5, &ws, 100), "");
        assert_eq!(
            faults_in_force(12, 16, &ws, 100),
            "partition {n1} | {n2}; kill n3"
        );
        assert_eq!(faults_in_force(60, 70, &ws, 100), "kill n3");
    }
}
