//! Values from a history, a node or a witness render as text in every report.

mod common;

use common::hostile::{hostile, ERROR, KEY, MODEL, NODE, SUMMARY};
use faultline_results::{write_reports, ReportInput};
use std::fs;

#[test]
fn hostile_values_render_as_text_everywhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (h, doc, run) = hostile();
    let paths = write_reports(
        tmp.path(),
        &ReportInput {
            run: &run,
            history: &h,
            verdicts: &doc,
            html_location: None,
        },
    )
    .expect("written");

    let html = fs::read_to_string(&paths.html).expect("html");
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the report's own script"
    );
    for raw in [
        "<img",
        "<svg onload",
        "<b>bold",
        "<i>x</i>",
        "<u>",
        "</ol><script",
    ] {
        assert!(!html.contains(raw), "{raw} leaked into the HTML");
    }
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "the key shows as text"
    );
    assert!(html.contains(
        "C read | pipes | and `backticks` &lt;b&gt;bold&lt;&#x2f;b&gt; from k&quot;&#x27;q"
    ));
    assert!(html.contains("n1&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));

    let md = fs::read_to_string(&paths.markdown).expect("md");
    // Inside fenced code blocks text is verbatim (and shown as such); outside, nothing
    // may be markup.
    let outside = outside_fences(&md);
    for raw in ["<script", "<img", "<b>", "<i>", "<svg", "</"] {
        assert!(
            !outside.contains(raw),
            "{raw} leaked into the Markdown:\n{outside}"
        );
    }
    assert!(
        md.contains("<0> = process"),
        "the explanation is verbatim in its fence"
    );
    for line in md.lines().filter(|l| l.starts_with("| ")) {
        let unescaped = line.replace("\\|", "").matches('|').count();
        assert_eq!(unescaped, 4, "a table row must keep 3 cells: {line}");
    }
    assert!(
        md.contains("C read \\| pipes \\| and \\`backticks\\` &lt;b&gt;bold&lt;/b&gt;"),
        "{md}"
    );
    // The explanation sits in a fence longer than its own ``` run.
    assert!(md.contains("````text\n"), "{md}");

    let junit = fs::read_to_string(&paths.junit).expect("junit");
    let xml = roxmltree::Document::parse(&junit).expect("well-formed");
    assert_eq!(
        xml.descendants()
            .filter(|n| n.has_tag_name("script"))
            .count(),
        0
    );
    let failure = xml
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("failure");
    assert_eq!(failure.attribute("message"), Some(SUMMARY));
    assert!(
        failure
            .text()
            .unwrap_or("")
            .contains("</ol><script>alert(5)</script>"),
        "text round-trips exactly"
    );
    let case = failure.parent().expect("testcase");
    assert_eq!(
        case.attribute("name"),
        Some(format!("{MODEL} (claimed)").as_str())
    );
    let error = xml
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .expect("error");
    assert!(error
        .attribute("message")
        .unwrap_or("")
        .contains("reason <script>alert(6)</script> & more"));
    let command = xml
        .descendants()
        .find(|n| n.attribute("name") == Some("command"))
        .and_then(|n| n.attribute("value"));
    assert_eq!(command, run.command.as_deref());
}

/// The Markdown with fenced code blocks (and their fences) removed.
fn outside_fences(md: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in md.lines() {
        let ticks: String = line.chars().take_while(|&c| c == '`').collect();
        match &fence {
            None if ticks.len() >= 3 => fence = Some(ticks),
            None => {
                out.push_str(line);
                out.push('\n');
            }
            Some(f) if line.trim_end() == f => fence = None,
            Some(_) => {}
        }
    }
    assert!(fence.is_none(), "an unclosed fence");
    out
}

/// Controls: ESC starting a colour, a bidi override, a bell ending an OSC title sequence.
const CONTROL_KEY: &str = "k\u{1b}[31mRED\u{202e}evil";
const CONTROL_NODE: &str = "n1\u{1b}]0;owned\u{7}";
const CONTROL_ERROR: &str = "timeout\u{1b}[2K\r::error::fake\u{2066}";

fn assert_no_raw_controls(what: &str, s: &str) {
    let raw: Vec<char> = s
        .chars()
        .filter(|c| ['\u{1b}', '\u{202e}', '\u{2066}', '\u{7}', '\r'].contains(c))
        .collect();
    assert!(raw.is_empty(), "{what} holds {raw:?}");
}

#[test]
fn control_and_bidi_characters_show_as_escapes_in_every_report() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (h, doc, mut run) = hostile();
    // The hostile values again, with control characters in the key, a node and the errors.
    let swap = |text: String| {
        text.replace(&json_str(KEY), &json_str(CONTROL_KEY))
            .replace(&json_str(NODE), &json_str(CONTROL_NODE))
            .replace(&json_str(ERROR), &json_str(CONTROL_ERROR))
    };
    let mut h2 = h.clone();
    h2.events = serde_json::from_str(&swap(serde_json::to_string(&h.events).expect("json")))
        .expect("events");
    let doc: faultline_results::VerdictDoc =
        serde_json::from_str(&swap(serde_json::to_string(&doc).expect("json"))).expect("doc");
    run.nodes = vec![CONTROL_NODE.into()];
    let paths = write_reports(
        tmp.path(),
        &ReportInput {
            run: &run,
            history: &h2,
            verdicts: &doc,
            html_location: None,
        },
    )
    .expect("written");
    let read = |p: &std::path::Path| fs::read_to_string(p).expect("report");
    let (md, junit, html, verdict) = (
        read(&paths.markdown),
        read(&paths.junit),
        read(&paths.html),
        read(&paths.verdict_json),
    );
    for (what, text) in [
        ("report.md", &md),
        ("junit.xml", &junit),
        ("report.html", &html),
        ("verdict.json", &verdict),
    ] {
        assert_no_raw_controls(what, text);
    }
    assert!(
        html.contains("k\\u{1b}[31mRED\\u{202e}evil"),
        "the key shows escaped"
    );
    assert!(
        html.contains("n1\\u{1b}]0;owned\\u{7}"),
        "the node shows escaped"
    );
    assert!(
        md.contains("k\\\\u\\{1b\\}\\[31mRED\\\\u\\{202e\\}evil"),
        "{md}"
    );
    let xml = roxmltree::Document::parse(&junit).expect("well-formed");
    assert!(xml.descendants().any(|n| n
        .text()
        .is_some_and(|t| t.contains("k\\u{1b}[31mRED\\u{202e}evil"))));
    // verdict.json keeps the exact key, written with JSON escapes.
    let back: serde_json::Value = serde_json::from_str(&verdict).expect("json");
    assert_eq!(back["models"][0]["witness"]["key"], CONTROL_KEY);
    assert!(verdict.contains("\\u202e"));
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("json")
}
