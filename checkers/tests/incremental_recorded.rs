//! The incremental checker replays recorded runs: Porcupine's 102 labelled Jepsen etcd
//! logs and its six labelled kv logs. Checked every 20 events as the history grows, it
//! must never report a violation in a history labelled linearizable, and must have found
//! one by the end of every history labelled not linearizable (the same verdicts as the
//! offline checker, which `lin_porcupine` holds to the labels).

mod lin_common;

use faultline_checkers::{DataModel, Incremental, IncrementalSpec};
use faultline_history::import::{load, Format};
use faultline_history::META_INITIAL;
use lin_common::testdata;

fn labelled() -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(testdata("porcupine/expected.tsv")).expect("expected.tsv");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (file, verdict) = l.split_once('\t')?;
            Some((file.to_string(), verdict.trim() == "linearizable"))
        })
        .collect()
}

#[test]
fn recorded_runs_replayed_event_by_event_agree_with_their_labels() {
    let cases = labelled();
    assert_eq!(cases.len(), 108, "102 etcd logs and 6 kv logs are labelled");
    let (mut bad, mut found_before_end, mut fraction_sum) = (0, 0, 0.0);
    for (file, linearizable) in &cases {
        let h = load(&testdata(&format!("porcupine/{file}")), Format::Auto)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let model = if file.starts_with("kv/") {
            DataModel::Kv
        } else {
            DataModel::CasRegister
        };
        let mut spec = IncrementalSpec::new(Some(model), Vec::new(), false);
        spec.initial = h.meta.get(META_INITIAL).cloned().unwrap_or_default();
        spec.nil_reads_unknown = h.nil_reads_unknown();
        let mut inc = Incremental::new(spec, file);
        let n = h.events.len();
        let mut first = None;
        for (i, ev) in h.events.into_iter().enumerate() {
            inc.push(ev).unwrap_or_else(|e| panic!("{file}: {e}"));
            if (i + 1) % 20 == 0 || i + 1 == n {
                let found = inc.check(i as u64);
                assert!(
                    found.is_empty() || !linearizable,
                    "{file} is labelled linearizable, but a cut of its first {} events is not:\n{}",
                    i + 1,
                    found[0].witness.render_text()
                );
                if !found.is_empty() && first.is_none() {
                    first = Some(i + 1);
                }
            }
        }
        if !linearizable {
            bad += 1;
            let at = first.unwrap_or_else(|| panic!("{file}: the violation was never found"));
            if at < n {
                found_before_end += 1;
            }
            fraction_sum += at as f64 / n as f64;
        }
    }
    println!(
        "{} recorded runs replayed; {bad} not linearizable, {found_before_end} of them found before their last event, on average after {:.0}% of the events",
        cases.len(),
        100.0 * fraction_sum / bad.max(1) as f64
    );
    assert!(bad > 0);
}
