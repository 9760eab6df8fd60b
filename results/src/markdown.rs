//! `report.md`: a short report for a pull request comment or a CI step summary.
//!
//! Every value from a history, a node or a witness is escaped: control and bidi characters
//! are shown as escapes first ([`crate::text::visible`]), then inline text escapes the
//! Markdown punctuation that could start emphasis, links, code, tables or HTML (`<`, `>`
//! and `&` become entities, since GitHub renders inline HTML), and explanations go in
//! fenced code blocks whose fence is longer than any run of backticks inside. Every line
//! starts with fixed text, so input never starts a list, heading or quote.

use crate::chart::clip;
use crate::run::RunInfo;
use crate::stats::Analysis;
use crate::text::{shown_witness, visible, visible_lines};
use crate::verdicts::{ResultKind, VerdictDoc};
use crate::ResultsError;
use faultline_history::seconds;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// Witnesses explained in full in the Markdown report; the rest are counted.
pub const MD_WITNESSES: usize = 3;
/// Lines of one witness explanation kept in the Markdown report.
const MD_EXPLANATION_LINES: usize = 60;
/// Characters of one explanation line kept in the Markdown report.
const MD_LINE_CHARS: usize = 400;
/// GitHub caps a comment at 65,536 characters: witnesses stop being added past this.
const MD_MAX_CHARS: usize = 50_000;

/// Escapes text for inline Markdown (also safe in a table cell): control and bidi
/// characters become visible escapes (`\u{1b}`, a line break `\n`), then Markdown's
/// punctuation is escaped.
pub fn md_text(s: &str) -> String {
    let s = visible(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '|' | '~' | '!' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block holding `body` (the fence outgrows any backtick run): verbatim but
/// for control and bidi characters, shown as escapes ([`visible_lines`]).
pub fn md_code_block(body: &str, info: &str) -> String {
    let body = &*visible_lines(body);
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}{info}\n{}\n{fence}\n", body.trim_end_matches('\n'))
}

fn icon(kind: ResultKind) -> &'static str {
    match kind {
        ResultKind::Valid | ResultKind::Implied => "✅",
        ResultKind::Invalid | ResultKind::RuledOut => "❌",
        ResultKind::Unknown => "⚠️",
        ResultKind::NotChecked => "➖",
    }
}

/// Renders `report.md`. `html_location` says where the HTML report is (a path or a URL).
pub fn render_markdown(
    run: &RunInfo,
    verdicts: &VerdictDoc,
    a: &Analysis,
    html_location: &str,
) -> String {
    let mut s = String::new();
    let subject = run
        .target
        .as_deref()
        .or(run.source.as_deref())
        .map(|t| format!(" {}", md_text(t)))
        .unwrap_or_default();
    let (class, word) = verdicts.headline();
    let mark = if class == "unclaimed" {
        "➖"
    } else {
        icon(verdicts.overall)
    };
    let _ = writeln!(
        s,
        "## {mark} faultline{subject}: {word} (exit {}: {})\n",
        verdicts.exit_code,
        md_text(&verdicts.exit_meaning)
    );
    let strongest = if verdicts.strongest.is_empty() {
        md_text(&verdicts.strongest_text())
    } else {
        verdicts
            .strongest
            .iter()
            .map(|m| format!("**{}**", md_text(m)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "Strongest models held: {strongest}\n");
    let _ = writeln!(s, "| model | result | detail |\n|---|---|---|");
    for m in &verdicts.models {
        let claimed = if m.claimed { " (claimed)" } else { "" };
        let _ = writeln!(
            s,
            "| {}{claimed} | {} {} | {} |",
            md_text(&m.model),
            icon(m.result),
            m.result.as_str(),
            md_text(&m.detail())
        );
    }
    s.push('\n');
    let mut figures = Vec::new();
    if let Some(seed) = run.seed {
        figures.push(format!("seed {seed}"));
    }
    figures.push(match run.duration_ms {
        Some(ms) => format!("duration {}", seconds(ms * 1_000_000)),
        None => format!("history spans {}", seconds(a.end)),
    });
    figures.push(format!(
        "operations: {} ok, {} fail, {} info",
        a.counts.ok, a.counts.fail, a.counts.info
    ));
    let faults: Vec<String> = a
        .fault_counts()
        .into_iter()
        .map(|(k, n)| format!("{} ×{n}", md_text(&k)))
        .collect();
    figures.push(if faults.is_empty() {
        "faults: none".into()
    } else {
        format!("faults: {}", faults.join(", "))
    });
    if !run.nodes.is_empty() {
        figures.push(format!("nodes: {}", md_text(&run.nodes.join(", "))));
    }
    let _ = writeln!(s, "Key figures: {}\n", figures.join(" · "));
    if let Some(live) = run.live_check().filter(|l| !l.findings.is_empty()) {
        let stopped = if live.stopped_early {
            " (the campaign stopped at the first)"
        } else {
            ""
        };
        let _ = writeln!(s, "Found while the campaign ran{stopped}:\n");
        for line in live.lines() {
            let _ = writeln!(s, "- {}", md_text(&line));
        }
        s.push('\n');
    }
    let total = verdicts.witnesses().count();
    let mut shown = 0;
    for (i, (m, w)) in verdicts.witnesses().take(MD_WITNESSES).enumerate() {
        let key = w
            .key
            .as_ref()
            .map(|k| format!(" on key {}", md_text(k)))
            .unwrap_or_default();
        let mut block = format!(
            "### Witness {}: {} violated ({}){key}\n\n",
            i + 1,
            md_text(&m.model),
            md_text(&w.kind)
        );
        let text = shown_witness(w).render_text();
        let mut lines: Vec<String> = text
            .lines()
            .take(MD_EXPLANATION_LINES)
            .map(|l| clip(l, MD_LINE_CHARS))
            .collect();
        let cut = text.lines().count().saturating_sub(lines.len());
        if cut > 0 {
            lines.push(format!("… {cut} more lines in the HTML report"));
        }
        block.push_str(&md_code_block(&lines.join("\n"), "text"));
        block.push('\n');
        // Which node served each operation and the faults in force meanwhile.
        let mut ops: Vec<&faultline_checkers::WitnessOp> = w.ops.iter().take(12).collect();
        ops.sort_by_key(|o| (o.op.invoke_time, o.op.id));
        for o in ops {
            let done = o.op.complete_time.unwrap_or(a.end).max(o.op.invoke_time);
            let done = if o.op.outcome == faultline_history::Outcome::Info {
                a.end
            } else {
                done
            };
            let in_force =
                crate::plots::faults_in_force(o.op.invoke_time, done, &a.faults.windows, a.end);
            let _ = writeln!(
                block,
                "- {}: {}{}",
                md_text(&o.label),
                o.op.node
                    .as_deref()
                    .map(|n| format!("served by {}", md_text(n)))
                    .unwrap_or_else(|| "node not recorded".into()),
                if in_force.is_empty() {
                    "; no fault in force".to_string()
                } else {
                    format!("; in force: {}", md_text(&clip(&in_force, MD_LINE_CHARS)))
                }
            );
        }
        block.push('\n');
        if s.len() + block.len() > MD_MAX_CHARS {
            break;
        }
        s.push_str(&block);
        shown += 1;
    }
    if total > shown {
        let _ = writeln!(
            s,
            "And {} more witnesses in the HTML report.\n",
            total - shown
        );
    }
    if let Some(cmd) = &run.command {
        let _ = writeln!(
            s,
            "Reproduce:\n\n{}",
            md_code_block(&clip(cmd, MD_LINE_CHARS * 8), "sh")
        );
    }
    let _ = writeln!(
        s,
        "Full report (timeline, latency, faults, every witness drawn): {}",
        md_text(&clip(html_location, MD_LINE_CHARS))
    );
    s
}

/// Appends `markdown` to a GitHub Actions step summary file. The caller reads
/// `$GITHUB_STEP_SUMMARY` (and skips this when it is unset).
pub fn append_step_summary(summary_file: &Path, markdown: &str) -> Result<(), ResultsError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(summary_file)
        .map_err(|e| ResultsError::io("open step summary", summary_file, e))?;
    f.write_all(markdown.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .map_err(|e| ResultsError::io("append to step summary", summary_file, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_text_cannot_break_out() {
        assert_eq!(md_text("a|b"), "a\\|b");
        assert_eq!(md_text("<script>"), "&lt;script&gt;");
        assert_eq!(md_text("`x` *y* [l](u)"), "\\`x\\` \\*y\\* \\[l\\]\\(u\\)");
        assert_eq!(md_text("two\nlines"), "two\\\\nlines");
        assert_eq!(md_text("a\u{1b}[31m"), "a\\\\u\\{1b\\}\\[31m");
        assert_eq!(
            md_code_block("x\u{202e}\ny", ""),
            "```\nx\\u{202e}\ny\n```\n"
        );
    }

    #[test]
    fn code_fence_outgrows_backticks() {
        let b = md_code_block("a ```` b", "text");
        assert!(b.starts_with("`````text\n"), "{b}");
        assert!(b.ends_with("\n`````\n"));
        assert!(md_code_block("plain", "").starts_with("```\n"));
    }
}
