//! `report.html`: one self-contained file, rendered through minijinja with HTML
//! auto-escaping, so every value from a history or a node is escaped on output; before
//! that, the formatter shows control and bidi characters as escapes
//! ([`crate::text::visible_lines`]): HTML escaping leaves a U+202E in place, and it would
//! reorder what the page shows. The
//! template (`templates/report.html`) is compiled into the crate; its only script is a
//! static one that marks the page as interactive.

use crate::chart::{format_ms, format_share, Tick, TimeAxis};
use crate::faults::{family_class, FaultWindow};
use crate::plots::{
    latency_chart, throughput_chart, witness_chart, LineChart, WitnessChart, CHART_WIDTH,
    PLOT_LEFT, PLOT_RIGHT,
};
use crate::run::RunInfo;
use crate::stats::Analysis;
use crate::text::{clip_text, value_text, visible_lines, NAME_LIMIT, VALUE_LIMIT};
use crate::timeline::{timeline, Timeline};
use crate::verdicts::{ModelEntry, VerdictDoc};
use crate::ResultsError;
use faultline_checkers::Minimality;
use faultline_history::{seconds, Operation};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

const TEMPLATE: &str = include_str!("../templates/report.html");

/// Fault windows listed in the table at most (all are drawn).
const MAX_FAULT_ROWS: usize = 300;

#[derive(Serialize)]
struct ModelView {
    model: String,
    result: &'static str,
    claimed: bool,
    detail: String,
    ops: Option<u64>,
    check_ms: Option<u64>,
    witness_anchor: Option<String>,
}

#[derive(Serialize)]
struct StepView {
    relation: Option<String>,
    from: Option<String>,
    to: Option<String>,
    text: String,
}

#[derive(Serialize)]
struct WitnessView {
    anchor: String,
    model: String,
    kind: String,
    key: Option<String>,
    summary: String,
    steps: Vec<StepView>,
    minimality: &'static str,
    chart: WitnessChart,
}

#[derive(Serialize)]
struct FaultRow {
    kind: String,
    class: &'static str,
    nodes: String,
    start: String,
    end: String,
    undone_by: String,
    mechanism: String,
    detail: String,
}

#[derive(Serialize)]
struct AvailRow {
    kind: String,
    windows: usize,
    covered: String,
    inside_ops: u64,
    inside_ok: String,
    outside_ops: u64,
    outside_ok: String,
}

#[derive(Serialize)]
struct View {
    title: String,
    overall: &'static str,
    overall_text: &'static str,
    strongest_text: String,
    exit_code: u8,
    exit_meaning: String,
    strongest: Vec<String>,
    models: Vec<ModelView>,
    facts: Vec<(&'static str, String)>,
    versions: Vec<(String, String)>,
    plan: Option<String>,
    command: Option<String>,
    ok: u64,
    fail: u64,
    info: u64,
    total: u64,
    faults: Vec<FaultRow>,
    faults_hidden: usize,
    other_faults: Vec<String>,
    availability: Vec<AvailRow>,
    failures: Vec<crate::stats::FailureRow>,
    glossary: Vec<(&'static str, &'static str)>,
    results_glossary: Vec<(&'static str, &'static str)>,
    timeline: Timeline,
    phases: Vec<crate::timeline::PhaseMark>,
    time_ticks: Vec<Tick>,
    latency: LineChart,
    throughput: LineChart,
    witnesses: Vec<WitnessView>,
    width: i64,
    plot_left: i64,
    plot_right: i64,
    truncated_tail: bool,
    generator: String,
}

/// The phases `run.json` records (`[{"name": "final reads", "at_ns": 9000000000}]`).
fn run_phases(run: &RunInfo) -> Vec<(String, u64)> {
    run.extra
        .get("phases")
        .and_then(|p| p.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|p| {
                    let name = p.get("name")?.as_str()?;
                    let at = p.get("at_ns")?.as_u64()?;
                    Some((clip_text(name, NAME_LIMIT).into_owned(), at))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn minimality(m: Minimality) -> &'static str {
    match m {
        Minimality::ByConstruction => "minimal by construction",
        Minimality::OneMinimal => "1-minimal: removing any operation makes it pass",
        Minimality::NotMinimised => "not minimised",
        Minimality::EachMinimal => "one example per anomaly, each minimal by construction",
    }
}

fn facts(run: &RunInfo, a: &Analysis) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    if let Some(t) = &run.target {
        f.push(("target", t.clone()));
    }
    if let Some(s) = &run.source {
        f.push(("history from", s.clone()));
    }
    if !run.nodes.is_empty() {
        f.push(("nodes", run.nodes.join(", ")));
    }
    if let Some(s) = run.seed {
        f.push(("seed", s.to_string()));
    }
    if let Some(s) = &run.started_at {
        f.push(("started", s.clone()));
    }
    match run.duration_ms {
        Some(ms) => f.push(("duration", format_ms(ms as f64))),
        None => f.push(("history spans", seconds(a.end))),
    }
    let faults: Vec<String> = a
        .fault_counts()
        .into_iter()
        .map(|(k, n)| {
            let fam = a
                .faults
                .windows
                .iter()
                .find(|w| w.kind == k)
                .map_or("", |w| w.family);
            match run.mechanism_of(&k, fam) {
                Some(m) => format!("{k} ×{n} (via {m})"),
                None => format!("{k} ×{n}"),
            }
        })
        .collect();
    f.push((
        "faults applied",
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(", ")
        },
    ));
    if let Some(live) = run.live_check() {
        let mut text = if live.findings.is_empty() {
            format!("nothing in {} checks of the growing history", live.rounds)
        } else {
            live.lines().join("; ")
        };
        if live.stopped_early {
            text.push_str(" (the campaign stopped at the first finding)");
        }
        f.push(("found while running", text));
    }
    f
}

fn fault_row(run: &RunInfo, w: &FaultWindow) -> FaultRow {
    FaultRow {
        kind: w.kind.clone(),
        class: family_class(w.family),
        nodes: clip_text(&w.nodes.join(", "), NAME_LIMIT).into_owned(),
        start: seconds(w.start),
        end: w.end.map_or_else(|| "until the end".into(), seconds),
        undone_by: w.undone_by.clone().unwrap_or_default(),
        mechanism: Analysis::mechanism(run, w).unwrap_or_else(|| "not recorded".into()),
        detail: crate::chart::clip(&w.detail, 200),
    }
}

/// The anchor of a model's witness in the HTML report.
fn anchor(i: usize) -> String {
    format!("witness-{}", i + 1)
}

fn model_view(m: &ModelEntry, witness_index: Option<usize>) -> ModelView {
    ModelView {
        model: m.model.clone(),
        result: m.result.as_str(),
        claimed: m.claimed,
        detail: m.detail(),
        ops: m.ops,
        check_ms: m.check_ms,
        witness_anchor: witness_index.map(anchor),
    }
}

/// Renders `report.html`.
pub fn render_html(
    run: &RunInfo,
    verdicts: &VerdictDoc,
    a: &Analysis,
    truncated_tail: bool,
) -> Result<String, ResultsError> {
    let mech = |w: &FaultWindow| Analysis::mechanism(run, w);
    let mut witness_ix = 0usize;
    let models = verdicts
        .models
        .iter()
        .map(|m| {
            let ix = m.witness.as_ref().map(|_| {
                witness_ix += 1;
                witness_ix - 1
            });
            model_view(m, ix)
        })
        .collect();
    let mut labelled: Vec<(String, &Operation)> = Vec::new();
    let witnesses = verdicts
        .witnesses()
        .enumerate()
        .map(|(i, (m, w))| {
            for o in &w.ops {
                labelled.push((format!("{}:{}", i + 1, o.label), &o.op));
            }
            WitnessView {
                anchor: anchor(i),
                model: m.model.clone(),
                kind: w.kind.clone(),
                key: w.key.clone(),
                summary: w.summary.clone(),
                steps: w
                    .steps
                    .iter()
                    .map(|s| StepView {
                        relation: s.relation.clone(),
                        from: s.from.clone(),
                        to: s.to.clone(),
                        text: s.text.clone(),
                    })
                    .collect(),
                minimality: minimality(w.minimality),
                chart: witness_chart(w, &a.faults.windows, a.end, &mech),
            }
        })
        .collect();
    let title = match (&run.target, &run.source) {
        (Some(t), _) => format!("faultline report: {t}"),
        (None, Some(s)) => format!("faultline report: {s}"),
        _ => "faultline report".to_string(),
    };
    let view = View {
        title,
        overall: verdicts.headline().0,
        overall_text: verdicts.headline().1,
        strongest_text: verdicts.strongest_text(),
        exit_code: verdicts.exit_code,
        exit_meaning: verdicts.exit_meaning.clone(),
        strongest: verdicts.strongest.clone(),
        models,
        facts: facts(run, a),
        versions: run
            .versions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        plan: run
            .plan
            .as_ref()
            .map(|p| serde_json::to_string_pretty(p).unwrap_or_else(|_| p.to_string())),
        command: run.command.clone(),
        ok: a.counts.ok,
        fail: a.counts.fail,
        info: a.counts.info,
        total: a.counts.total,
        faults: a
            .faults
            .windows
            .iter()
            .take(MAX_FAULT_ROWS)
            .map(|w| fault_row(run, w))
            .collect(),
        faults_hidden: a.faults.windows.len().saturating_sub(MAX_FAULT_ROWS),
        other_faults: a
            .faults
            .other
            .iter()
            .take(50)
            .map(|o| {
                format!(
                    "{} at {}: {}",
                    clip_text(&o.f, NAME_LIMIT),
                    seconds(o.start),
                    value_text(&o.value, VALUE_LIMIT)
                )
            })
            .collect(),
        availability: a
            .availability
            .iter()
            .map(|av| AvailRow {
                kind: av.kind.clone(),
                windows: av.windows,
                covered: seconds(av.covered_ns),
                inside_ops: av.inside.total,
                inside_ok: format_share(av.inside_share()),
                outside_ops: av.outside.total,
                outside_ok: format_share(av.outside_share()),
            })
            .collect(),
        failures: a.failures.iter().take(50).cloned().collect(),
        glossary: crate::glossary::MODELS.to_vec(),
        results_glossary: crate::glossary::RESULTS.to_vec(),
        timeline: timeline(&a.ops, &a.faults.windows, &labelled, a.end, &mech),
        phases: crate::timeline::phase_marks(&run_phases(run), a.end),
        time_ticks: TimeAxis::full(a.end).ticks(10),
        latency: latency_chart(&a.series, &a.faults.windows, a.end, &mech),
        throughput: throughput_chart(&a.series, &a.faults.windows, a.end, &mech),
        witnesses,
        width: CHART_WIDTH,
        plot_left: PLOT_LEFT,
        plot_right: PLOT_RIGHT,
        truncated_tail,
        generator: format!("faultline-results {}", env!("CARGO_PKG_VERSION")),
    };
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_formatter(|out, state, value| {
        // Markup the template built (macro output) is already made of escaped parts.
        match value.as_str() {
            Some(s) if !value.is_safe() => {
                let shown = minijinja::Value::from(visible_lines(s).as_ref());
                minijinja::escape_formatter(out, state, &shown)
            }
            _ => minijinja::escape_formatter(out, state, value),
        }
    });
    env.add_template("report.html", TEMPLATE)
        .map_err(|source| ResultsError::Template {
            what: "report.html",
            source,
        })?;
    let tmpl = env
        .get_template("report.html")
        .map_err(|source| ResultsError::Template {
            what: "report.html",
            source,
        })?;
    tmpl.render(&view).map_err(|source| ResultsError::Template {
        what: "report.html",
        source,
    })
}
