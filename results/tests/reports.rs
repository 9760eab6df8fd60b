//! Writing and re-rendering the reports of a run.

mod common;

use common::{run_info, stale_read_witness, verdicts_with, Synth};
use faultline_results::{
    append_step_summary, read_verdicts, regenerate, write_reports, ReportInput, ResultKind,
    RunInfo, VERDICT_SCHEMA,
};
use std::fs;

fn violation_run(dir: &std::path::Path) -> faultline_results::ReportPaths {
    let mut h = Synth::new(7, 600).with_standard_faults(0.6).history();
    let w = stale_read_witness(&mut h, "k1");
    let verdicts = verdicts_with(Some(w));
    let run = run_info(7);
    write_reports(
        dir,
        &ReportInput {
            run: &run,
            history: &h,
            verdicts: &verdicts,
            html_location: None,
        },
    )
    .expect("reports written")
}

#[test]
fn a_violation_is_reported_in_every_format() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = violation_run(tmp.path());

    let doc = read_verdicts(&paths.verdict_json).expect("verdict.json reads back");
    assert_eq!(doc.schema, VERDICT_SCHEMA);
    assert_eq!((doc.overall, doc.exit_code), (ResultKind::Invalid, 1));
    let counts = doc.history_ops.expect("history counts filled in");
    assert_eq!(counts.total, 600);
    assert_eq!(counts.ok + counts.fail + counts.info, 600);
    let lin = &doc.models[0];
    assert_eq!(lin.result, ResultKind::Invalid);
    let w = lin.witness.as_ref().expect("witness kept");
    assert_eq!(w.ops[2].label, "C");
    assert!(lin.explanation.as_deref().unwrap_or("").contains("Then:"));

    let html = fs::read_to_string(&paths.html).expect("html");
    assert!(html.contains(r#"<span class="res r-invalid" id="overall">invalid</span>"#));
    assert!(html.contains(r#"<tr data-model="linearizable" data-result="invalid">"#));
    assert!(html.contains(r#"<tr data-model="ccv" data-result="unknown">"#));
    assert!(html.contains("undecided: search budget of 10 s spent"));
    assert!(html.contains(r#"<article class="witness" id="witness-1">"#));
    assert!(html.contains("B completed before C was invoked."));
    assert!(html.contains("faultline test --target raft-register --seed 7 --time-limit 60"));
    // Fault windows are shaded and labelled in the timeline, with their mechanism.
    assert!(html.contains(r#"class="shade f-partition""#));
    assert!(html.contains("mechanism: nft table inet faultline"));
    assert!(
        html.contains("loss n1,n2"),
        "an unmatched loss window is drawn"
    );
    assert!(html.contains("never undone: in force until the end"));
    assert!(html.contains("partition ×1 (via nft table inet faultline)"));
    // Exact mode for a small history: one bar per operation, each with its description.
    assert_eq!(html.matches("<g><title>#").count(), 600);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );

    let md = fs::read_to_string(&paths.markdown).expect("md");
    assert!(
        md.starts_with("## ❌ faultline raft-register: invalid (exit 1: a violation found)"),
        "{md}"
    );
    assert!(md.contains("| linearizable (claimed) | ❌ invalid |"));
    assert!(md.contains("| ccv | ⚠️ unknown | undecided: search budget of 10 s spent |"));
    assert!(md.contains("### Witness 1: linearizable violated (stale-read) on key k1"));
    assert!(
        md.contains("  C = process"),
        "explanation lists the operations: {md}"
    );
    assert!(md.contains(&paths.html.display().to_string()));

    let junit = fs::read_to_string(&paths.junit).expect("junit");
    let xml = roxmltree::Document::parse(&junit).expect("well-formed junit");
    let failure = xml
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure");
    assert_eq!(failure.attribute("type"), Some("stale-read"));
    assert!(failure
        .text()
        .unwrap_or("")
        .contains("no order satisfies both"));
    let error = xml
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .expect("unknown as error");
    assert!(error
        .attribute("message")
        .unwrap_or("")
        .starts_with("unknown, not a pass"));

    let run: RunInfo =
        serde_json::from_slice(&fs::read(&paths.run_json).expect("run.json")).expect("parses");
    assert_eq!(run.seed, Some(7));
    assert!(paths.history.exists());
}

#[test]
fn regenerate_renders_the_same_reports_from_the_stored_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = violation_run(tmp.path());
    let html = fs::read_to_string(&paths.html).expect("html");
    let md = fs::read_to_string(&paths.markdown).expect("md");
    let junit = fs::read_to_string(&paths.junit).expect("junit");
    fs::remove_file(&paths.html).expect("rm");
    fs::write(&paths.markdown, "stale").expect("overwrite");
    let again = regenerate(&paths.markdown, None).expect("regenerated");
    assert_eq!(again.dir, tmp.path());
    assert_eq!(fs::read_to_string(&again.html).expect("html"), html);
    assert_eq!(fs::read_to_string(&again.markdown).expect("md"), md);
    assert_eq!(fs::read_to_string(&again.junit).expect("junit"), junit);
}

#[test]
fn an_imported_history_without_run_facts_reports_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = Synth::new(3, 200).history();
    let verdicts = verdicts_with(None);
    let run = RunInfo::imported("etcd-001.log");
    let paths = write_reports(
        tmp.path(),
        &ReportInput {
            run: &run,
            history: &h,
            verdicts: &verdicts,
            html_location: Some("https://ci.example/artifacts/report.html"),
        },
    )
    .expect("written");
    let html = fs::read_to_string(&paths.html).expect("html");
    assert!(html.contains("faultline report: etcd-001.log"));
    assert!(html.contains("No fault was applied."));
    assert!(html.contains("No violation was found, so there is no witness."));
    assert!(html.contains(r#"id="overall">valid</span>"#));
    let md = fs::read_to_string(&paths.markdown).expect("md");
    assert!(
        md.starts_with("## ✅ faultline etcd-001.log: valid (exit 0"),
        "{md}"
    );
    assert!(md.contains("faults: none"));
    assert!(md.contains("https://ci.example/artifacts/report.html"));
    assert!(!md.contains("Reproduce"));
    let summary = tmp.path().join("summary.md");
    fs::write(&summary, "# earlier step\n").expect("write");
    append_step_summary(&summary, &md).expect("appended");
    let all = fs::read_to_string(&summary).expect("read");
    assert!(all.starts_with("# earlier step\n## ✅ faultline"));
}

#[test]
fn a_verdict_file_of_another_schema_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("verdict.json");
    fs::write(&p, r#"{"schema":"faultline-verdict/99","models":[]}"#).expect("write");
    let err = read_verdicts(&p).expect_err("refused");
    assert!(err.to_string().contains("faultline-verdict/99"), "{err}");
}

#[test]
fn an_empty_history_with_no_verdict_is_unknown_and_still_renders() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = faultline_history::History {
        truncated_tail: true,
        ..Default::default()
    };
    let verdicts = faultline_results::VerdictDoc::new(vec![], vec![]);
    let run = RunInfo::imported("empty.jsonl");
    let paths = write_reports(
        tmp.path(),
        &ReportInput {
            run: &run,
            history: &h,
            verdicts: &verdicts,
            html_location: None,
        },
    )
    .expect("written");
    let html = fs::read_to_string(&paths.html).expect("html");
    assert!(html.contains(r#"id="overall">unknown</span>"#));
    assert!(html.contains("last line was cut short"));
    assert!(html.contains("0 in all"));
    let md = fs::read_to_string(&paths.markdown).expect("md");
    assert!(
        md.contains("unknown (exit 2: some claimed model undecided, none violated)"),
        "{md}"
    );
}

#[test]
fn what_the_checks_during_the_run_found_is_in_both_reports() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Synth::new(3, 200).history();
    let w = stale_read_witness(&mut h, "k1");
    let verdicts = verdicts_with(Some(w));
    let mut run = run_info(3);
    run.extra.insert(
        "live_check".into(),
        serde_json::json!({
            "findings": [{"model": "linearizable", "key": "k1\u{1b}[31m", "visible_at_ms": 12340.0,
                          "detected_at_ms": 12750.0, "ops": 1500}],
            "rounds": 40, "busy_ms": 35.5, "stopped_early": true
        }),
    );
    let paths = write_reports(
        tmp.path(),
        &ReportInput {
            run: &run,
            history: &h,
            verdicts: &verdicts,
            html_location: None,
        },
    )
    .expect("reports written");
    let md = fs::read_to_string(&paths.markdown).expect("md");
    assert!(
        md.contains("Found while the campaign ran (the campaign stopped at the first):"),
        "{md}"
    );
    assert!(
        md.contains(r"- linearizable on key k1\\u\{1b\}\[31m: visible at 12.34 s, found 0.41 s later \(history of 1500 operations\)"),
        "{md}"
    );
    let html = fs::read_to_string(&paths.html).expect("html");
    assert!(html.contains("<dt>found while running</dt>"));
    assert!(html.contains("visible at 12.34 s, found 0.41 s later"));
    assert!(!html.contains('\u{1b}'), "control characters are escaped");

    // A run whose checks found nothing says so in the HTML facts only.
    run.extra.insert(
        "live_check".into(),
        serde_json::json!({"findings": [], "rounds": 7, "busy_ms": 1.0, "stopped_early": false}),
    );
    let paths = write_reports(
        tmp.path(),
        &ReportInput {
            run: &run,
            history: &h,
            verdicts: &verdicts,
            html_location: None,
        },
    )
    .expect("reports written");
    let md = fs::read_to_string(&paths.markdown).expect("md");
    assert!(!md.contains("Found while"));
    let html = fs::read_to_string(&paths.html).expect("html");
    assert!(html.contains("nothing in 7 checks of the growing history"));
}
