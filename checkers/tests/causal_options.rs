//! Options and operation kinds of the causal, session and sequential checkers:
//! `nil_reads_unknown`, the initial value, compare-and-set (ok, info, mismatch), the
//! time limit, and unsupported operations.

mod causal_support;

use causal_support::{cas, check, events, history, r, w};
use faultline_checkers::{check_model, ConsistencyOptions, ModelName, Verdict};
use faultline_history::{pair, Event, EventType};
use serde_json::json;
use std::time::Duration;

#[test]
fn nil_reads_unknown_makes_a_null_read_observe_nothing() {
    // Process 0 read 1 then null. As "never written" this breaks monotonic reads; as
    // Knossos's "observed nothing" it is fine.
    let p = history(&[vec![r("x", Some(1)), r("x", None)], vec![w("x", 1)]]);
    assert_eq!(check(&p, ModelName::Mr).label(), "invalid");
    let opts = ConsistencyOptions {
        nil_reads_unknown: true,
        ..ConsistencyOptions::default()
    };
    for m in [ModelName::Mr, ModelName::Cc, ModelName::Sequential] {
        assert_eq!(check_model(&p, m, &opts).label(), "valid", "{m}");
    }
}

#[test]
fn the_initial_value_option_decides_what_reads_of_zero_mean() {
    // With initial value 0, reading 0 after writing 1 reads the initial value.
    let p = history(&[vec![w("x", 1), r("x", Some(0))]]);
    let zero = ConsistencyOptions {
        initial: json!(0),
        ..ConsistencyOptions::default()
    };
    let v = check_model(&p, ModelName::Ryw, &zero);
    assert_eq!(
        v.witness().map(|w| w.kind.as_str()),
        Some("read-your-writes")
    );
    // With the default (null), nobody wrote 0: a thin-air read.
    let v = check(&p, ModelName::Ryw);
    assert_eq!(v.witness().map(|w| w.kind.as_str()), Some("thin-air-read"));
    // Writing the initial value makes reads of it ambiguous: unknown, never a guess.
    let p = history(&[vec![w("x", 0), r("x", Some(0))]]);
    assert_eq!(check_model(&p, ModelName::Cc, &zero).label(), "unknown");
}

#[test]
fn two_successful_cas_from_the_initial_value_are_causal_but_not_sequential() {
    // Both compare-and-sets saw the initial value and succeeded. Each is explained by its
    // own causal past (CC, CCv), but no single order runs both atomically.
    let p = history(&[vec![cas("x", None, 1)], vec![cas("x", None, 2)]]);
    assert_eq!(check(&p, ModelName::Cc).label(), "valid");
    assert_eq!(check(&p, ModelName::Ccv).label(), "valid");
    // CM passes but does not model cas atomicity: unknown, not valid.
    assert_eq!(check(&p, ModelName::Cm).label(), "unknown");
    assert_eq!(check(&p, ModelName::Sequential).label(), "invalid");
}

#[test]
fn a_cas_chain_is_sequential() {
    let p = history(&[
        vec![w("x", 1), cas("x", Some(2), 3), r("x", Some(3))],
        vec![cas("x", Some(1), 2)],
    ]);
    for m in [
        ModelName::Sequential,
        ModelName::Cc,
        ModelName::Ccv,
        ModelName::Pram,
    ] {
        assert_eq!(check(&p, m).label(), "valid", "{m}");
    }
}

#[test]
fn cm_of_a_linearizable_cas_history_is_proved_by_default() {
    // CM's own checker does not model cas atomicity, so it can only say unknown; by
    // default a replayed sequential order (or, failing that, linearizability) proves the
    // history, and CM with it. Generated histories are linearizable by construction; with
    // 20 processes racing cas on 3 keys the witness's guessed write order often misses,
    // and the linearizability checker decides.
    for seed in 0..4 {
        let cfg = faultline_checkers::synth::SynthConfig {
            ops: 2000,
            keys: 3,
            processes: 20,
            cas: true,
            seed,
            ..Default::default()
        };
        let events = faultline_checkers::synth::generate(&cfg).expect("generates");
        let p = pair(&events, "synth").expect("pairs");
        let own = ConsistencyOptions {
            sequential_witness: false,
            ..ConsistencyOptions::default()
        };
        assert_eq!(check_model(&p, ModelName::Cm, &own).label(), "unknown");
        let models = [
            ModelName::Cm,
            ModelName::Cc,
            ModelName::Pram,
            ModelName::Sequential,
        ];
        for (m, v) in faultline_checkers::check_models(&p, &models, &ConsistencyOptions::default())
        {
            assert_eq!(v.label(), "valid", "seed {seed} {m}: {v:?}");
        }
    }
}

#[test]
fn a_cas_that_read_a_value_nobody_wrote_is_thin_air() {
    let p = history(&[vec![cas("x", Some(7), 8)]]);
    let v = check(&p, ModelName::Cc);
    assert_eq!(v.witness().map(|w| w.kind.as_str()), Some("thin-air-read"));
}

#[test]
fn an_info_cas_counts_only_if_its_value_was_read() {
    // The cas timed out; nobody read 8, so it may not have happened (or failed its
    // compare): its expected value 7, never written, is no thin-air read.
    let p = history(&[vec![cas("x", Some(7), 8).info()]]);
    for m in [ModelName::Sequential, ModelName::Cc] {
        assert_eq!(check(&p, m).label(), "valid", "{m}");
    }
    // Somebody read 8: the cas happened, so it read 7, which nobody wrote.
    let p = history(&[vec![cas("x", Some(7), 8).info()], vec![r("x", Some(8))]]);
    assert_eq!(check(&p, ModelName::Cc).label(), "invalid");
}

#[test]
fn a_mismatched_cas_is_decided_by_the_sequential_search_only() {
    // Process 0 wrote 1 then its cas from 1 failed on mismatch: the value it saw differed
    // from 1 although nobody else wrote x. No sequential order explains it.
    let p = history(&[vec![w("x", 1), cas("x", Some(1), 2).fail_with("mismatch")]]);
    assert_eq!(check(&p, ModelName::Sequential).label(), "invalid");
    // The causal and session checkers do not model the mismatch: unknown, not valid.
    assert_eq!(check(&p, ModelName::Cc).label(), "unknown");
    // With another writer the mismatch is explained.
    let p = history(&[
        vec![w("x", 1), cas("x", Some(1), 2).fail_with("mismatch")],
        vec![w("x", 5)],
    ]);
    assert_eq!(check(&p, ModelName::Sequential).label(), "valid");
    // A cas refused for another reason observed nothing.
    let p = history(&[vec![
        w("x", 1),
        cas("x", Some(1), 2).fail_with("not leader"),
    ]]);
    assert_eq!(check(&p, ModelName::Cc).label(), "valid");
}

#[test]
fn sequential_with_values_written_twice_is_still_decided() {
    // Store buffering on one value: both processes wrote 1 to their key, then read the
    // other key's initial value. Values repeat across keys only, so causal checks run too.
    let sb = history(&[vec![w("x", 1), r("y", None)], vec![w("y", 1), r("x", None)]]);
    assert_eq!(check(&sb, ModelName::Sequential).label(), "invalid");
    assert_eq!(check(&sb, ModelName::Cc).label(), "valid");
    // Values repeat within a key: causal models are unknown, the search still decides.
    let p = history(&[
        vec![w("x", 1), r("x", Some(2)), r("x", Some(1))],
        vec![w("x", 2), w("x", 1)],
    ]);
    assert_eq!(check(&p, ModelName::Cc).label(), "unknown");
    assert_eq!(check(&p, ModelName::Sequential).label(), "valid");
    let p = history(&[
        vec![w("x", 1), r("x", Some(2)), r("x", Some(1)), r("x", Some(2))],
        vec![w("x", 2)],
    ]);
    assert_eq!(check(&p, ModelName::Sequential).label(), "invalid");
}

#[test]
fn a_value_written_by_a_cas_is_not_confused_with_an_initial_value() {
    // The search numbered each key's initial value after the largest value it saw read
    // or written, but took only the compare of a cas, not its write: here the initial
    // value of x shared a number with 6 (written by a cas to y), so writing x looked as
    // if it overwrote a value still to be read. An order exists: p2's mismatched cas
    // (x is not 2), p2's cas of y, p0's write of y and read of x, p1's writes and
    // mismatched cas (y is 1, not initial), p3's write of x.
    let sessions = vec![
        vec![w("y", 1), r("x", None)],
        vec![w("x", 2), cas("y", None, 5).fail_with("mismatch")],
        vec![
            cas("x", Some(2), 3).fail_with("mismatch"),
            cas("y", None, 6),
        ],
        vec![w("x", 4)],
    ];
    let p = pair(&events(&sessions, &[0, 1, 2, 3, 1, 0, 2]), "t").expect("pairs");
    assert_eq!(check(&p, ModelName::Sequential).label(), "valid");
}

#[test]
fn a_zero_time_limit_gives_unknown_never_valid() {
    // A causal-memory history that holds; with no time at all the fixpoint cannot run.
    let p = history(&[
        vec![w("x", 1), r("y", Some(1))],
        vec![w("y", 1), r("x", Some(1))],
    ]);
    assert_eq!(check(&p, ModelName::Cm).label(), "valid");
    // A sequential order replayed proves it whatever the time limit (the order
    // `w(x,1) w(y,1) r(y) r(x)`): that is a proof, not the fixpoint.
    let proved = ConsistencyOptions {
        time_limit: Some(Duration::ZERO),
        ..ConsistencyOptions::default()
    };
    assert_eq!(check_model(&p, ModelName::Cm, &proved).label(), "valid");
    let opts = ConsistencyOptions {
        time_limit: Some(Duration::ZERO),
        sequential_witness: false,
        ..ConsistencyOptions::default()
    };
    let v = check_model(&p, ModelName::Cm, &opts);
    let Verdict::Unknown { reason, undecided } = &v else {
        panic!("{v:?}")
    };
    assert!(reason.contains("time limit"), "{reason}");
    assert!(!undecided.is_empty());
    // The sequential search may finish before its first clock check, but it never says
    // invalid for a sequential history.
    assert_ne!(
        check_model(&p, ModelName::Sequential, &opts).label(),
        "invalid"
    );
}

#[test]
fn unsupported_operations_give_unknown() {
    let evs = vec![
        Event::client(0, 0, EventType::Invoke, "append", json!(1)).with_key("x"),
        Event::client(1, 0, EventType::Ok, "append", json!(1)).with_key("x"),
    ];
    let p = pair(&evs, "t").expect("pairs");
    for m in [ModelName::Cc, ModelName::Sequential, ModelName::Ryw] {
        let v = check(&p, m);
        let Verdict::Unknown { reason, .. } = &v else {
            panic!("{m}: {v:?}")
        };
        assert!(reason.contains("append"), "{reason}");
    }
    assert_eq!(check(&p, ModelName::Linearizable).label(), "unknown");
}
