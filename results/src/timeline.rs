//! The timeline of operations per process, as geometry.
//!
//! Processes are packed into lanes: a worker takes a fresh process id after an `info`, and
//! its processes never overlap in time, so packing processes whose spans do not overlap
//! into the same lane gives one lane per worker. Up to [`EXACT_LIMIT`] operations, every
//! operation is drawn as its own bar. Above that, each lane is cut into time buckets and
//! each bucket drawn as a cell split by outcome (ok / fail / info), so the drawing stays
//! small for 100,000+ operations; the operations of each witness are always drawn exactly
//! on top.

use crate::chart::{clip, Rect, TimeAxis};
use crate::faults::{family_class, FaultWindow};
use crate::text::{clip_op, clip_text, LINE_LIMIT, NAME_LIMIT, TITLE_VALUE_LIMIT};
use faultline_history::{seconds, Operation, Outcome};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Operations drawn one by one up to this many; aggregated above.
pub const EXACT_LIMIT: usize = 3_000;
/// At most this many lanes; more are folded together.
pub const MAX_LANES: usize = 48;
/// Time buckets per lane when aggregating.
pub const BUCKETS: usize = 240;
/// Height of one lane.
const LANE_H: i64 = 14;
/// Height of one row of fault labels.
const LABEL_H: i64 = 14;

/// Processes packed into lanes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lanes {
    /// The lane of each process.
    pub lane_of: HashMap<u64, usize>,
    /// The processes of each lane, in time order.
    pub members: Vec<Vec<u64>>,
}

/// Packs processes into lanes (at most `max` lanes; the rest folded in round robin).
pub fn assign_lanes(ops: &[Operation], end: u64, max: usize) -> Lanes {
    let mut span: HashMap<u64, (u64, u64)> = HashMap::new();
    for op in ops {
        let done = op.complete_time.unwrap_or(end).max(op.invoke_time);
        let e = span.entry(op.process).or_insert((op.invoke_time, done));
        e.0 = e.0.min(op.invoke_time);
        e.1 = e.1.max(done);
    }
    let mut procs: Vec<(u64, u64, u64)> = span.into_iter().map(|(p, (a, b))| (a, b, p)).collect();
    procs.sort_unstable();
    let mut busy: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut free: BinaryHeap<Reverse<usize>> = BinaryHeap::new();
    let mut lanes = Lanes::default();
    let max = max.max(1);
    for (start, stop, p) in procs {
        while let Some(&Reverse((busy_until, lane))) = busy.peek() {
            if busy_until >= start {
                break;
            }
            busy.pop();
            free.push(Reverse(lane));
        }
        let lane = match free.pop() {
            Some(Reverse(l)) => l,
            None => {
                lanes.members.push(Vec::new());
                lanes.members.len() - 1
            }
        };
        busy.push(Reverse((stop, lane)));
        lanes.lane_of.insert(p, lane);
        lanes.members[lane].push(p);
    }
    if lanes.members.len() > max {
        let mut folded = vec![Vec::new(); max];
        for (i, m) in lanes.members.iter().enumerate() {
            folded[i % max].extend(m.iter().copied());
        }
        for (i, m) in folded.iter().enumerate() {
            for p in m {
                lanes.lane_of.insert(*p, i);
            }
        }
        lanes.members = folded;
    }
    lanes
}

/// A lane's label: its processes, shortened when many.
pub fn lane_label(members: &[u64]) -> String {
    match members {
        [] => "(empty)".into(),
        [p] => format!("p{p}"),
        [a, b] => format!("p{a}, p{b}"),
        [a, .., z] => format!("p{a}…p{z} ({})", members.len()),
    }
}

/// Something drawn with a hover text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    /// Shown on hover (SVG `<title>`).
    pub title: String,
    /// The shapes.
    pub rects: Vec<Rect>,
}

/// A labelled band of a fault window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shade {
    /// The shading rectangle (class from the fault family).
    pub rect: Rect,
    /// A thin bar under the label spanning the window, visible even where operations
    /// cover the shading.
    pub band: Rect,
    /// Where the label goes.
    pub label_x: i64,
    /// Baseline of the label.
    pub label_y: i64,
    /// The label (`partition n1,n2`).
    pub label: String,
    /// Hover text: details, times, mechanism.
    pub title: String,
}

/// A witness operation's exact bar on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WitnessMark {
    /// The bar.
    pub rect: Rect,
    /// Its label (`A`, `W1`).
    pub label: String,
    /// Hover text.
    pub title: String,
}

/// The whole timeline, ready to draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// SVG height.
    pub height: i64,
    /// Top of the lanes.
    pub top: i64,
    /// Whether operations were aggregated into buckets.
    pub aggregated: bool,
    /// Lane labels and their baselines.
    pub lanes: Vec<(String, i64)>,
    /// Operations (exact) or buckets (aggregated).
    pub marks: Vec<Mark>,
    /// Fault windows.
    pub shades: Vec<Shade>,
    /// Witness operations, exact.
    pub witness_marks: Vec<WitnessMark>,
}

/// A phase of the run (final heal, recovery, final reads) marked on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseMark {
    /// The phase's name.
    pub name: String,
    /// x of its start.
    pub x: i64,
    /// Label row (0 at the bottom), so that the names of phases close together do not
    /// overlap.
    pub row: i64,
    /// Hover text: the name and when it began.
    pub title: String,
}

/// The marks of `phases` (name, start in ns) on a timeline of a history ending at `end`;
/// phases after the end are left out.
pub fn phase_marks(phases: &[(String, u64)], end: u64) -> Vec<PhaseMark> {
    let axis = TimeAxis::full(end);
    let mut out: Vec<PhaseMark> = Vec::new();
    for (name, at) in phases.iter().filter(|(_, at)| *at <= end) {
        let x = axis.x(*at);
        let row = match out.last() {
            Some(prev) if x - prev.x < 8 * prev.name.chars().count() as i64 => (prev.row + 1) % 3,
            _ => 0,
        };
        out.push(PhaseMark {
            name: name.clone(),
            x,
            row,
            title: format!("{name} from {}", seconds(*at)),
        });
    }
    out
}

/// Hover text of one operation: what it did and when (values clipped at
/// [`TITLE_VALUE_LIMIT`] bytes).
pub fn op_title(op: &Operation) -> String {
    let op = &*clip_op(op, TITLE_VALUE_LIMIT);
    let when = match op.complete_time {
        Some(done) => format!(
            "invoked {}, completed {} ({:.1} ms)",
            seconds(op.invoke_time),
            seconds(done),
            done.saturating_sub(op.invoke_time) as f64 / 1e6
        ),
        None => format!("invoked {}, never completed", seconds(op.invoke_time)),
    };
    let node = op
        .node
        .as_ref()
        .map(|n| format!(" on {n}"))
        .unwrap_or_default();
    format!("#{} {}{node} · {when}", op.id, op.describe())
}

/// The class of an outcome.
pub fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

/// Shades for fault windows over lanes spanning `top..bottom`, labels in rows above `top`.
pub fn shades(
    windows: &[FaultWindow],
    axis: &TimeAxis,
    end: u64,
    top: i64,
    bottom: i64,
    mechanism: &dyn Fn(&FaultWindow) -> Option<String>,
) -> Vec<Shade> {
    let rows = label_rows(windows, axis);
    windows
        .iter()
        .zip(rows)
        .map(|(w, row)| {
            let until = w.end_or(end);
            let nodes = if w.nodes.is_empty() {
                String::new()
            } else {
                format!(" {}", clip_text(&w.nodes.join(","), NAME_LIMIT))
            };
            let undo = match (&w.undone_by, w.end) {
                (Some(by), Some(e)) => format!("undone by {by} at {}", seconds(e)),
                _ => "never undone: in force until the end".into(),
            };
            let mech = mechanism(w)
                .map(|m| format!(" · mechanism: {m}"))
                .unwrap_or_default();
            let err = w
                .error
                .as_ref()
                .map(|e| format!(" · error: {}", clip_text(e, LINE_LIMIT)))
                .unwrap_or_default();
            let label = window_label(w);
            let right = axis.left + axis.width - 6 * label.chars().count() as i64;
            Shade {
                rect: axis.span(w.start, until, top, bottom - top, family_class(w.family)),
                band: axis.span(
                    w.start,
                    until,
                    row * LABEL_H + 12,
                    2,
                    family_class(w.family),
                ),
                label_x: (axis.x(w.start) + 2).min(right).max(axis.left),
                label_y: row * LABEL_H + 11,
                label,
                title: format!(
                    "{}{nodes} from {}; {undo}{mech}{err} · {}",
                    w.kind,
                    seconds(w.start),
                    clip(&w.detail, 300)
                ),
            }
        })
        .collect()
}

/// The label of a window: its kind and nodes, shortened.
fn window_label(w: &FaultWindow) -> String {
    if w.nodes.is_empty() {
        clip(&w.kind, 28)
    } else {
        clip(&format!("{} {}", w.kind, w.nodes.join(",")), 28)
    }
}

/// Label rows so that labels of overlapping windows do not overlap: the first row free at
/// the label's start, else a new row (at most 4), else the row that frees up first.
fn label_rows(windows: &[FaultWindow], axis: &TimeAxis) -> Vec<i64> {
    const MAX_ROWS: usize = 4;
    let mut row_ends: Vec<i64> = Vec::new();
    windows
        .iter()
        .map(|w| {
            let x = axis.x(w.start);
            let width = 6 * window_label(w).chars().count() as i64 + 8;
            let row = match row_ends.iter().position(|&e| e < x) {
                Some(r) => r,
                None if row_ends.len() < MAX_ROWS => {
                    row_ends.push(i64::MIN);
                    row_ends.len() - 1
                }
                None => (0..row_ends.len())
                    .min_by_key(|&r| row_ends[r])
                    .unwrap_or(0),
            };
            row_ends[row] = x + width;
            row as i64
        })
        .collect()
}

/// How many label rows the windows need.
pub fn label_row_count(windows: &[FaultWindow], axis: &TimeAxis) -> i64 {
    label_rows(windows, axis)
        .into_iter()
        .max()
        .map_or(0, |r| r + 1)
}

/// Builds the timeline.
pub fn timeline(
    ops: &[Operation],
    windows: &[FaultWindow],
    witness_ops: &[(String, &Operation)],
    end: u64,
    mechanism: &dyn Fn(&FaultWindow) -> Option<String>,
) -> Timeline {
    let axis = TimeAxis::full(end);
    let lanes = assign_lanes(ops, end, MAX_LANES);
    let top = label_row_count(windows, &axis).max(1) * LABEL_H + 4;
    let lane_y = |lane: usize| top + lane as i64 * LANE_H;
    let bottom = lane_y(lanes.members.len().max(1));
    let aggregated = ops.len() > EXACT_LIMIT;
    let marks = if aggregated {
        aggregate(ops, &lanes, end, &axis, &lane_y)
    } else {
        ops.iter()
            .filter_map(|op| {
                let lane = *lanes.lane_of.get(&op.process)?;
                let done = op.complete_time.unwrap_or(end);
                Some(Mark {
                    title: op_title(op),
                    rects: vec![axis.span(
                        op.invoke_time,
                        done,
                        lane_y(lane) + 2,
                        LANE_H - 4,
                        outcome_class(op.outcome),
                    )],
                })
            })
            .collect()
    };
    let witness_marks = witness_ops
        .iter()
        .filter_map(|(label, op)| {
            let lane = *lanes.lane_of.get(&op.process)?;
            let done = match op.outcome {
                Outcome::Info => end,
                _ => op.complete_time.unwrap_or(end),
            };
            Some(WitnessMark {
                rect: axis.span(op.invoke_time, done, lane_y(lane) + 1, LANE_H - 2, "wit"),
                label: label.clone(),
                title: format!("witness {label}: {}", op_title(op)),
            })
        })
        .collect();
    Timeline {
        height: bottom + 22,
        top,
        aggregated,
        lanes: lanes
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (lane_label(m), lane_y(i) + LANE_H - 3))
            .collect(),
        marks,
        shades: shades(windows, &axis, end, top, bottom, mechanism),
        witness_marks,
    }
}

fn aggregate(
    ops: &[Operation],
    lanes: &Lanes,
    end: u64,
    axis: &TimeAxis,
    lane_y: &dyn Fn(usize) -> i64,
) -> Vec<Mark> {
    let n_lanes = lanes.members.len();
    let mut cells = vec![[0u32; 3]; n_lanes * BUCKETS];
    for op in ops {
        let Some(&lane) = lanes.lane_of.get(&op.process) else {
            continue;
        };
        let b = crate::stats::bucket_of(op.invoke_time, end, BUCKETS);
        let slot = match op.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
        };
        cells[lane * BUCKETS + b][slot] += 1;
    }
    let bucket_ns = (end / BUCKETS as u64).max(1);
    let mut marks = Vec::new();
    for lane in 0..n_lanes {
        for b in 0..BUCKETS {
            let [ok, fail, info] = cells[lane * BUCKETS + b];
            let total = ok + fail + info;
            if total == 0 {
                continue;
            }
            let t0 = b as u64 * bucket_ns;
            let t1 = t0 + bucket_ns;
            let x = axis.x(t0);
            let w = (axis.x(t1) - x).max(1);
            let inner = LANE_H - 2;
            let mut y = lane_y(lane) + 1;
            let mut rects = Vec::new();
            // Fail and info get at least 2 units so that one of them among many is seen.
            let hf = if fail > 0 {
                (inner * fail as i64 / total as i64).max(2)
            } else {
                0
            };
            let hi = if info > 0 {
                (inner * info as i64 / total as i64).max(2)
            } else {
                0
            };
            let ho = (inner - hf - hi).max(0);
            for (h, class) in [(hi, "info"), (hf, "fail"), (ho, "ok")] {
                if h > 0 {
                    rects.push(Rect { x, y, w, h, class });
                    y += h;
                }
            }
            marks.push(Mark {
                title: format!(
                    "{}: {:.2}–{:.2} s · {ok} ok, {fail} fail, {info} info",
                    lane_label(&lanes.members[lane]),
                    t0 as f64 / 1e9,
                    t1 as f64 / 1e9
                ),
                rects,
            });
        }
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_history::Value;

    fn op(id: usize, process: u64, invoke: u64, done: Option<u64>, outcome: Outcome) -> Operation {
        Operation {
            id,
            process,
            f: "write".into(),
            key: None,
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
    fn processes_that_follow_each_other_share_a_lane() {
        // Worker A: process 0 ends in info at 30, process 5 takes over at 40.
        // Worker B: process 1 runs throughout.
        let ops = vec![
            op(0, 0, 0, Some(30), Outcome::Info),
            op(1, 1, 5, Some(100), Outcome::Ok),
            op(2, 5, 40, Some(60), Outcome::Ok),
        ];
        let lanes = assign_lanes(&ops, 100, 10);
        assert_eq!(lanes.members, vec![vec![0, 5], vec![1]]);
        assert_eq!(lane_label(&lanes.members[0]), "p0, p5");
        let folded = assign_lanes(&ops, 100, 1);
        assert_eq!(folded.members.len(), 1);
        assert_eq!(folded.lane_of.get(&1), Some(&0));
    }

    #[test]
    fn aggregated_cells_count_outcomes() {
        let mut ops = Vec::new();
        for i in 0..(EXACT_LIMIT + 10) {
            let t = i as u64 * 1_000;
            let outcome = if i == 7 { Outcome::Fail } else { Outcome::Ok };
            ops.push(op(i, 0, t, Some(t + 500), outcome));
        }
        let end = ops.len() as u64 * 1_000;
        let tl = timeline(&ops, &[], &[("A".into(), &ops[7])], end, &|_| None);
        assert!(tl.aggregated);
        assert!(tl.marks.len() <= BUCKETS);
        let first = &tl.marks[0];
        assert!(first.title.contains("1 fail"), "{}", first.title);
        assert!(first.rects.iter().any(|r| r.class == "fail"));
        assert_eq!(tl.witness_marks.len(), 1);
        assert!(tl.witness_marks[0].title.contains("failed"));
    }

    #[test]
    fn overlapping_fault_labels_take_separate_rows_up_to_four() {
        let w = |start: u64| FaultWindow {
            kind: "partition".into(),
            family: "partition",
            nodes: vec!["n1".into()],
            detail: "{}".into(),
            start,
            end: Some(start + 10),
            undone_by: Some("heal".into()),
            error: None,
        };
        let axis = TimeAxis::full(1_000_000_000);
        let same: Vec<FaultWindow> = (0..6).map(|_| w(0)).collect();
        assert_eq!(label_rows(&same, &axis), [0, 1, 2, 3, 0, 0]);
        assert_eq!(label_row_count(&same, &axis), 4);
        let apart = vec![w(0), w(500_000_000)];
        assert_eq!(label_rows(&apart, &axis), [0, 0]);
        let sh = shades(&apart, &axis, 1_000_000_000, 20, 60, &|_| None);
        assert_eq!(sh[1].label, "partition n1");
        assert!(sh[0].title.contains("undone by heal"));
    }

    #[test]
    fn phases_are_marked_where_they_begin() {
        let end = 10_000_000_000;
        let marks = phase_marks(
            &[
                ("final heal".into(), 5_000_000_000),
                ("final reads".into(), 9_000_000_000),
                ("after".into(), 11_000_000_000),
            ],
            end,
        );
        assert_eq!(marks.len(), 2);
        assert_eq!((marks[0].row, marks[1].row), (0, 0), "far apart");
        let close = phase_marks(&[("final heal".into(), 10), ("recovery".into(), 20)], end);
        assert_eq!((close[0].row, close[1].row), (0, 1), "close together");
        assert_eq!(marks[0].x, TimeAxis::full(end).x(5_000_000_000));
        assert!(
            marks[1].title.starts_with("final reads from"),
            "{}",
            marks[1].title
        );
    }
}
