//! `junit.xml`: one test case per model decided, so CI systems show a violation as a
//! failing test.
//!
//! - valid, implied: passing test case (implied ones say which model implied them);
//! - invalid: `<failure>` with the witness's explanation;
//! - ruled out: `<failure>` naming the weaker model whose witness rules it out;
//! - unknown: `<error type="unknown">` with the reason, so that an undecided model never
//!   looks like a pass (a `<skipped>` is shown as harmless by many CI systems);
//! - not checked: left out when not claimed (it was not checked), `<error
//!   type="not-checked">` when claimed.
//!
//! Every text and attribute is escaped: control and bidi characters (which XML 1.0 forbids
//! or a CI page would render) are shown as escapes first ([`crate::text::visible`]), then
//! XML's markup characters become entities.

use crate::run::RunInfo;
use crate::text::{shown_witness, visible, visible_lines};
use crate::verdicts::{ModelEntry, ResultKind, VerdictDoc};
use std::fmt::Write as _;

/// Escapes text for a double-quoted attribute or one line of content: control and bidi
/// characters as visible escapes ([`visible`]: a line break too), markup as entities.
pub fn xml_escape(s: &str) -> String {
    markup(&visible(s))
}

/// Escapes text of several lines for element content: as [`xml_escape`], but line breaks
/// are kept.
pub fn xml_text(s: &str) -> String {
    markup(&visible_lines(s))
}

fn markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// What one test case says, as data.
#[derive(Debug, Clone, PartialEq)]
enum CaseBody {
    Pass(Option<String>),
    Failure {
        message: String,
        kind: String,
        text: String,
    },
    Error {
        message: String,
        kind: String,
        text: String,
    },
}

fn case_body(m: &ModelEntry) -> Option<CaseBody> {
    Some(match m.result {
        ResultKind::Valid => CaseBody::Pass(None),
        ResultKind::Implied => CaseBody::Pass(Some(m.detail())),
        ResultKind::Invalid => match &m.witness {
            Some(w) => CaseBody::Failure {
                message: w.summary.clone(),
                kind: w.kind.clone(),
                // Rendered from the witness as shown (names escaped inside sentences too).
                text: shown_witness(w).render_text(),
            },
            None => CaseBody::Failure {
                message: m.detail(),
                kind: "invalid".into(),
                text: m.detail(),
            },
        },
        ResultKind::RuledOut => CaseBody::Failure {
            message: m.detail(),
            kind: "ruled-out".into(),
            text: format!(
                "{}: see the witness of {}.",
                m.detail(),
                m.by.as_deref().unwrap_or("the weaker model")
            ),
        },
        ResultKind::Unknown => {
            let mut text = m.detail();
            if !m.undecided.is_empty() {
                let keys: Vec<_> = m.undecided.iter().map(|k| visible(k)).collect();
                let _ = write!(text, "\nundecided keys: {}", keys.join(", "));
            }
            CaseBody::Error {
                message: format!("unknown, not a pass: {}", m.detail()),
                kind: "unknown".into(),
                text,
            }
        }
        ResultKind::NotChecked if m.claimed => CaseBody::Error {
            message: "claimed but not checked, not a pass".into(),
            kind: "not-checked".into(),
            text: "The target claims this model but no checker decided it.".into(),
        },
        ResultKind::NotChecked => return None,
    })
}

/// Renders `junit.xml`.
pub fn render_junit(run: &RunInfo, verdicts: &VerdictDoc) -> String {
    let suite = format!(
        "faultline.{}",
        run.target
            .as_deref()
            .or(run.source.as_deref())
            .unwrap_or("history")
    );
    let cases: Vec<(&ModelEntry, CaseBody)> = verdicts
        .models
        .iter()
        .filter_map(|m| case_body(m).map(|b| (m, b)))
        .collect();
    let count = |f: fn(&CaseBody) -> bool| cases.iter().filter(|(_, b)| f(b)).count();
    let failures = count(|b| matches!(b, CaseBody::Failure { .. }));
    let errors = count(|b| matches!(b, CaseBody::Error { .. }));
    let skipped = 0;
    let secs: f64 = cases
        .iter()
        .filter_map(|(m, _)| m.check_ms)
        .map(|ms| ms as f64 / 1000.0)
        .sum();
    let head = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{secs:.3}\"",
        cases.len()
    );
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<testsuites name=\"faultline\" {head}>");
    let _ = writeln!(x, "  <testsuite name=\"{}\" {head}>", xml_escape(&suite));
    let mut props: Vec<(String, String)> = vec![
        ("overall".into(), verdicts.overall.as_str().into()),
        ("exit_code".into(), verdicts.exit_code.to_string()),
        ("strongest".into(), verdicts.strongest.join(", ")),
    ];
    if let Some(seed) = run.seed {
        props.push(("seed".into(), seed.to_string()));
    }
    if let Some(cmd) = &run.command {
        props.push(("command".into(), cmd.clone()));
    }
    x.push_str("    <properties>\n");
    for (k, v) in props {
        let _ = writeln!(
            x,
            "      <property name=\"{}\" value=\"{}\"/>",
            xml_escape(&k),
            xml_escape(&v)
        );
    }
    x.push_str("    </properties>\n");
    for (m, body) in &cases {
        let time = m.check_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        let claimed = if m.claimed { " (claimed)" } else { "" };
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}{claimed}\" time=\"{time:.3}\"",
            xml_escape(&suite),
            xml_escape(&m.model)
        );
        match body {
            CaseBody::Pass(None) => x.push_str("/>\n"),
            CaseBody::Pass(Some(note)) => {
                let _ = writeln!(
                    x,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml_text(note)
                );
            }
            CaseBody::Failure {
                message,
                kind,
                text,
            }
            | CaseBody::Error {
                message,
                kind,
                text,
            } => {
                let tag = if matches!(body, CaseBody::Failure { .. }) {
                    "failure"
                } else {
                    "error"
                };
                let _ = writeln!(
                    x,
                    ">\n      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>\n    </testcase>",
                    xml_escape(message),
                    xml_escape(kind),
                    xml_text(text)
                );
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checkers::Verdict;

    #[test]
    fn escapes_markup_and_forbidden_characters() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(xml_escape("bell\u{7}"), "bell\\u{7}");
        assert_eq!(xml_escape("tab\tok\u{202e}"), "tab\\tok\\u{202e}");
        assert_eq!(xml_escape("two\nlines"), "two\\nlines");
        assert_eq!(xml_text("two\nlines\r\u{ffff}"), "two\nlines\\r\\u{ffff}");
    }

    #[test]
    fn unknown_is_an_error_and_unclaimed_unchecked_is_left_out() {
        let doc = VerdictDoc::new(
            vec![
                ModelEntry::checked(
                    "linearizable",
                    &Verdict::Unknown {
                        reason: "budget of 10 s".into(),
                        undecided: vec!["k1".into()],
                    },
                )
                .claimed(true),
                ModelEntry::implied("cc", "sequential"),
                ModelEntry::not_checked("wfr"),
                ModelEntry::not_checked("ryw").claimed(true),
            ],
            vec!["cc".into()],
        );
        let x = render_junit(&RunInfo::default(), &doc);
        assert!(
            x.contains("tests=\"3\" failures=\"0\" errors=\"2\" skipped=\"0\""),
            "{x}"
        );
        assert!(x.contains("<error message=\"unknown, not a pass: undecided: budget of 10 s\" type=\"unknown\">"), "{x}");
        assert!(x.contains("undecided keys: k1"));
        assert!(x.contains("<system-out>holds because sequential holds</system-out>"));
        assert!(!x.contains("name=\"wfr"));
        assert!(x.contains("type=\"not-checked\""));
    }
}
