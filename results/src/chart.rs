//! Plot geometry shared by the charts: a time axis in integer SVG units, nice ticks and
//! number formats. Plots are hand-written SVG: the report needs a handful of rectangles and
//! polylines with exact control over size (100,000 operations must stay under 10 MB) and
//! no external script; a plotting library would bring a runtime script or a rendering
//! stack for far less than it costs.

use serde::Serialize;

/// Width of every full-width chart, in SVG units.
pub const WIDTH: i64 = 1200;
/// Left margin (labels), in SVG units.
pub const LEFT: i64 = 120;
/// Right margin, in SVG units.
pub const RIGHT: i64 = 12;

/// A rectangle to draw, with a CSS class from a closed set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rect {
    /// Left.
    pub x: i64,
    /// Top.
    pub y: i64,
    /// Width (at least 1).
    pub w: i64,
    /// Height.
    pub h: i64,
    /// CSS class (`ok`, `fail`, `info`, `f-partition`, ...), never from input.
    pub class: &'static str,
}

/// A tick of an axis: its position and its label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tick {
    /// Position along the axis, in SVG units.
    pub at: i64,
    /// Label.
    pub label: String,
}

/// Maps history time (ns) onto x, from `left` to `left + width`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeAxis {
    /// First time shown (ns).
    pub t0: u64,
    /// Last time shown (ns), greater than `t0`.
    pub t1: u64,
    /// x of `t0`.
    pub left: i64,
    /// Width of the plot.
    pub width: i64,
}

impl TimeAxis {
    /// An axis over `[t0, t1]` (widened to at least 1 µs) drawn from `left`, `width` wide.
    pub fn new(t0: u64, t1: u64, left: i64, width: i64) -> TimeAxis {
        TimeAxis {
            t0,
            t1: t1.max(t0 + 1_000),
            left,
            width: width.max(1),
        }
    }

    /// The full-width axis of the report for a history ending at `end` (ns).
    pub fn full(end: u64) -> TimeAxis {
        TimeAxis::new(0, end, LEFT, WIDTH - LEFT - RIGHT)
    }

    /// x of time `t` (clamped to the axis).
    pub fn x(&self, t: u64) -> i64 {
        let t = t.clamp(self.t0, self.t1);
        let frac = (t - self.t0) as f64 / (self.t1 - self.t0) as f64;
        self.left + (frac * self.width as f64).round() as i64
    }

    /// A rectangle from `a` to `b` (at least 1 unit wide).
    pub fn span(&self, a: u64, b: u64, y: i64, h: i64, class: &'static str) -> Rect {
        let x = self.x(a);
        Rect {
            x,
            y,
            w: (self.x(b) - x).max(1),
            h,
            class,
        }
    }

    /// About `n` ticks at round seconds (or milliseconds), labelled.
    pub fn ticks(&self, n: usize) -> Vec<Tick> {
        let span_s = (self.t1 - self.t0) as f64 / 1e9;
        let step = nice_step(span_s / n.max(1) as f64);
        let first = (self.t0 as f64 / 1e9 / step).ceil() * step;
        let mut out = Vec::new();
        let mut s = first;
        while s <= self.t1 as f64 / 1e9 + step * 1e-9 && out.len() < 50 {
            let t = (s * 1e9).round().max(0.0) as u64;
            out.push(Tick {
                at: self.x(t),
                label: format_seconds(s, step),
            });
            s += step;
        }
        out
    }
}

/// The round step (1, 2 or 5 times a power of ten) nearest above `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let unit = raw / mag;
    let m = if unit <= 1.0 {
        1.0
    } else if unit <= 2.0 {
        2.0
    } else if unit <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Seconds with as many decimals as the step needs: `12 s`, `1.5 s`, `0.25 s`.
pub fn format_seconds(s: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{s:.decimals$} s")
}

/// A latency in a short human form: `850 µs`, `12.3 ms`, `4.20 s`.
pub fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// A share as a percentage with one decimal, or `–` when undefined.
pub fn format_share(share: Option<f64>) -> String {
    match share {
        Some(s) => format!("{:.1} %", s * 100.0),
        None => "–".into(),
    }
}

/// Shortens `s` to at most `max` characters, ending with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maps_ends_and_clamps() {
        let a = TimeAxis::new(0, 10_000_000_000, 100, 1000);
        assert_eq!(a.x(0), 100);
        assert_eq!(a.x(5_000_000_000), 600);
        assert_eq!(a.x(20_000_000_000), 1100);
        let r = a.span(1_000_000_000, 1_000_000_001, 3, 4, "ok");
        assert_eq!((r.x, r.w), (200, 1));
    }

    #[test]
    fn ticks_are_round() {
        let a = TimeAxis::new(0, 60_000_000_000, 0, 600);
        let labels: Vec<String> = a.ticks(6).into_iter().map(|t| t.label).collect();
        assert_eq!(
            labels,
            ["0 s", "10 s", "20 s", "30 s", "40 s", "50 s", "60 s"]
        );
        let b = TimeAxis::new(0, 1_500_000_000, 0, 600);
        assert_eq!(b.ticks(6)[1].label, "0.5 s");
        assert_eq!(nice_step(0.03), 0.05);
        assert_eq!(nice_step(7.0), 10.0);
    }

    #[test]
    fn formats() {
        assert_eq!(format_ms(0.25), "250 µs");
        assert_eq!(format_ms(12.34), "12.3 ms");
        assert_eq!(format_ms(4200.0), "4.20 s");
        assert_eq!(format_share(Some(0.5)), "50.0 %");
        assert_eq!(format_share(None), "–");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
