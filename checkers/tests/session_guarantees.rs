//! Hand-written histories for every session guarantee, both ways, each with why.
//! Processes are numbered by their position in the session list.

mod causal_support;

use causal_support::{check, history, r, w, Spec};
use faultline_checkers::{check_models, ConsistencyOptions, ModelName, Verdict};

/// Labels of (ryw, mr, mw, wfr, pram, cc) for a history.
fn labels(s: &[Vec<Spec>]) -> [&'static str; 6] {
    let p = history(s);
    let models = [
        ModelName::Ryw,
        ModelName::Mr,
        ModelName::Mw,
        ModelName::Wfr,
        ModelName::Pram,
        ModelName::Cc,
    ];
    // Each guarantee's own checker; the default (sequential witness first) must agree.
    let own = ConsistencyOptions {
        sequential_witness: false,
        ..ConsistencyOptions::default()
    };
    let v = check_models(&p, &models, &own);
    let fast = check_models(&p, &models, &ConsistencyOptions::default());
    for (a, b) in v.iter().zip(&fast) {
        assert_eq!(a.1.label(), b.1.label(), "{}", a.0);
    }
    [0, 1, 2, 3, 4, 5].map(|i| v[i].1.label())
}

const V: &str = "valid";
const X: &str = "invalid";

#[test]
fn ryw_initial_read_after_own_write() {
    // Process 0 wrote x then read x and got nothing: its own write is not visible.
    let s = vec![vec![w("x", 1), r("x", None)]];
    assert_eq!(labels(&s), [X, V, V, V, X, X]);
    let v = check(&history(&s), ModelName::Ryw);
    let wit = v.witness().expect("invalid");
    assert_eq!(wit.kind, "read-your-writes");
    assert!(
        wit.render_text().contains("initial value of x"),
        "{}",
        wit.render_text()
    );
}

#[test]
fn ryw_holds_when_the_own_write_is_read() {
    let s = vec![vec![w("x", 1), r("x", Some(1))]];
    assert_eq!(labels(&s), [V, V, V, V, V, V]);
}

#[test]
fn ryw_stale_own_write() {
    // Process 0 wrote 1 then 2 to x and read 1: its later write 2 overwrote 1 in session
    // order, so reading 1 is stale.
    let s = vec![vec![w("x", 1), w("x", 2), r("x", Some(1))]];
    assert_eq!(labels(&s)[0], X);
}

#[test]
fn ryw_holds_for_a_concurrent_foreign_write() {
    // Process 0 wrote 1 and read 3, written by process 1 concurrently: 3 may be newer.
    let s = vec![vec![w("x", 1), r("x", Some(3))], vec![w("x", 3)]];
    assert_eq!(labels(&s), [V, V, V, V, V, V]);
}

#[test]
fn ryw_ignores_an_info_write_that_may_not_have_happened() {
    // The write timed out; nobody read 1, so it may never have taken effect.
    let s = vec![vec![w("x", 1).info(), r("x", None)]];
    assert_eq!(labels(&s), [V, V, V, V, V, V]);
    // Process 1 read it, so it happened, but it may have taken effect after process 0's
    // later read (an info op does not precede the process's later operations).
    let s = vec![vec![w("x", 1).info(), r("x", None)], vec![r("x", Some(1))]];
    assert_eq!(labels(&s), [V, V, V, V, V, V]);
}

#[test]
fn mr_going_back_to_an_older_value() {
    // Process 1 wrote 1 then 2; process 0 read 2 then 1: after seeing 2, which causally
    // follows 1, it went back to 1. Monotonic writes is not at stake: 1 itself is what
    // the writer wrote before 2.
    let s = vec![
        vec![r("x", Some(2)), r("x", Some(1))],
        vec![w("x", 1), w("x", 2)],
    ];
    assert_eq!(labels(&s), [V, X, V, V, X, X]);
    let v = check(&history(&s), ModelName::Mr);
    assert_eq!(
        v.witness().map(|w| w.kind.as_str()),
        Some("monotonic-reads")
    );
}

#[test]
fn mr_holds_for_concurrent_writes_in_either_order() {
    // 1 and 2 come from different processes with no causal link: either may be newer.
    let s = vec![
        vec![r("x", Some(2)), r("x", Some(1))],
        vec![w("x", 1)],
        vec![w("x", 2)],
    ];
    assert_eq!(labels(&s), [V, V, V, V, V, V]);
}

#[test]
fn mr_initial_value_after_a_value() {
    // Process 0 read 1, then nothing: the write it saw disappeared.
    let s = vec![vec![r("x", Some(1)), r("x", None)], vec![w("x", 1)]];
    assert_eq!(labels(&s), [V, X, V, V, X, X]);
}

#[test]
fn mw_write_seen_without_the_earlier_write() {
    // Process 1 wrote x then y. Process 0 saw y's value, then read x and got nothing:
    // it has seen the second write without the first.
    let s = vec![
        vec![r("y", Some(1)), r("x", None)],
        vec![w("x", 1), w("y", 1)],
    ];
    assert_eq!(labels(&s), [V, V, X, V, X, X]);
    let v = check(&history(&s), ModelName::Mw);
    let wit = v.witness().expect("invalid");
    assert_eq!(wit.kind, "monotonic-writes");
    assert_eq!(wit.key.as_deref(), Some("x"));
}

#[test]
fn mw_holds_when_both_writes_are_seen() {
    let s = vec![
        vec![r("y", Some(1)), r("x", Some(1))],
        vec![w("x", 1), w("y", 1)],
    ];
    assert_eq!(labels(&s), [V, V, V, V, V, V]);
}

#[test]
fn wfr_write_seen_without_what_its_writer_had_read() {
    // Process 2 read x=1 and then wrote y=1. Process 0 saw y=1, then read x and got
    // nothing: it saw a write without the value its writer had read before writing.
    // PRAM holds: no single session's own order is broken.
    let s = vec![
        vec![r("y", Some(1)), r("x", None)],
        vec![w("x", 1)],
        vec![r("x", Some(1)), w("y", 1)],
    ];
    assert_eq!(labels(&s), [V, V, V, X, V, X]);
    let v = check(&history(&s), ModelName::Wfr);
    let wit = v.witness().expect("invalid");
    assert_eq!(wit.kind, "writes-follow-reads");
    let text = wit.render_text();
    assert!(text.contains("read 1 from x"), "{text}");
}

#[test]
fn wfr_holds_when_the_read_value_is_seen() {
    let s = vec![
        vec![r("y", Some(1)), r("x", Some(1))],
        vec![w("x", 1)],
        vec![r("x", Some(1)), w("y", 1)],
    ];
    assert_eq!(labels(&s), [V, V, V, V, V, V]);
}

#[test]
fn pram_is_the_union_of_ryw_mr_and_mw() {
    // Only MR breaks: PRAM breaks with it, and its witness is the MR one.
    let s = vec![
        vec![r("x", Some(2)), r("x", Some(1))],
        vec![w("x", 1), w("x", 2)],
    ];
    let v = check(&history(&s), ModelName::Pram);
    let wit = v.witness().expect("invalid");
    assert_eq!(wit.model, "pram");
    assert_eq!(wit.kind, "monotonic-reads");
}

#[test]
fn a_thin_air_read_breaks_every_guarantee() {
    let s = vec![vec![r("x", Some(5))]];
    assert_eq!(labels(&s), [X, X, X, X, X, X]);
    let v = check(&history(&s), ModelName::Ryw);
    assert_eq!(v.witness().map(|w| w.kind.as_str()), Some("thin-air-read"));
}

#[test]
fn an_aborted_read_breaks_every_guarantee() {
    let s = vec![vec![w("x", 1).fail()], vec![r("x", Some(1))]];
    assert_eq!(labels(&s), [X, X, X, X, X, X]);
    let v = check(&history(&s), ModelName::Mr);
    assert_eq!(v.witness().map(|w| w.kind.as_str()), Some("aborted-read"));
}

#[test]
fn values_written_twice_make_every_guarantee_unknown() {
    let s = vec![vec![w("x", 1), r("x", Some(1))], vec![w("x", 1)]];
    let p = history(&s);
    for m in [
        ModelName::Ryw,
        ModelName::Mr,
        ModelName::Mw,
        ModelName::Wfr,
        ModelName::Pram,
        ModelName::Cc,
    ] {
        let v = check(&p, m);
        let Verdict::Unknown { reason, .. } = &v else {
            panic!("{m}: {v:?}")
        };
        assert!(reason.contains("unique"), "{reason}");
    }
}
