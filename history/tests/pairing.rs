//! Pairing invokes with completions (DESIGN §4 rules), on literal histories.

use faultline_history::import::{parse_str, Format};
use faultline_history::{pair, Event, EventType, HistoryError, Key, Outcome, Process};
use serde_json::json;

fn inv(i: u64, p: u64, f: &str, v: serde_json::Value) -> Event {
    Event::client(i, p, EventType::Invoke, f, v)
}

fn done(i: u64, p: u64, kind: EventType, f: &str, v: serde_json::Value) -> Event {
    Event::client(i, p, kind, f, v)
}

fn structure_error(events: &[Event]) -> (u64, String) {
    match pair(events, "p.jsonl") {
        Err(HistoryError::Structure {
            file,
            index,
            message,
        }) => {
            assert_eq!(file, "p.jsonl");
            (index, message)
        }
        other => panic!("expected a structure error, got {other:?}"),
    }
}

#[test]
fn a_complete_history_pairs_in_invoke_order() {
    let events = vec![
        inv(0, 0, "write", json!(1)).with_key("x"),
        inv(1, 1, "read", json!(null)),
        Event {
            process: Process::Nemesis,
            ..done(2, 0, EventType::Info, "partition", json!({"n1": ["n2"]}))
        },
        done(3, 1, EventType::Ok, "read", json!(1)),
        Event {
            node: Some("n1".into()),
            ..done(4, 0, EventType::Fail, "write", json!(1)).with_error("not-leader")
        },
        inv(5, 1, "cas", json!([1, 2])),
        done(6, 1, EventType::Info, "cas", json!([1, 2])).with_error("timeout"),
    ];
    let p = pair(&events, "p.jsonl").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.faults.len(), 1);
    assert_eq!(p.faults[0].index, 2);
    type Summary<'a> = (usize, u64, &'a str, Outcome, u64, Option<u64>);
    let summary: Vec<Summary> = p
        .ops
        .iter()
        .map(|o| {
            (
                o.id,
                o.process,
                o.f.as_str(),
                o.outcome,
                o.invoke_index,
                o.complete_index,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, 0, "write", Outcome::Fail, 0, Some(4)),
            (1, 1, "read", Outcome::Ok, 1, Some(3)),
            (2, 1, "cas", Outcome::Info, 5, Some(6)),
        ]
    );
    assert_eq!(p.ops[0].key, Some(Key("x".into())));
    assert_eq!(p.ops[0].node.as_deref(), Some("n1"));
    assert_eq!(p.ops[0].error.as_deref(), Some("not-leader"));
    assert_eq!(p.ops[1].result, json!(1));
    assert_eq!(
        p.ops[0].describe(),
        "process 0 wrote 1 to x (failed: not-leader)"
    );
    assert_eq!(p.ops[1].describe(), "process 1 read 1");
    assert_eq!(
        p.ops[2].describe(),
        "process 1 compare-and-set from 1 to 2 (outcome unknown: timeout)"
    );
}

#[test]
fn two_invokes_in_flight_name_the_second_invoke() {
    let events = vec![
        inv(0, 3, "write", json!(1)),
        inv(1, 4, "read", json!(null)),
        inv(7, 3, "read", json!(null)),
    ];
    let (index, message) = structure_error(&events);
    assert_eq!(index, 7);
    assert!(message.contains("process 3"), "{message}");
    assert!(message.contains("invoked at event 0"), "{message}");
}

#[test]
fn a_completion_without_invoke_is_an_error() {
    let events = vec![
        inv(0, 0, "write", json!(1)),
        done(5, 1, EventType::Ok, "read", json!(1)),
    ];
    let (index, message) = structure_error(&events);
    assert_eq!(index, 5);
    assert!(
        message.contains("process 1") && message.contains("no operation in flight"),
        "{message}"
    );
}

#[test]
fn a_completion_of_another_function_is_an_error() {
    let events = vec![
        inv(0, 0, "write", json!(1)),
        done(1, 0, EventType::Ok, "read", json!(1)),
    ];
    let (index, message) = structure_error(&events);
    assert_eq!(index, 1);
    assert!(
        message.contains("completes read") && message.contains("write"),
        "{message}"
    );
}

#[test]
fn an_invoke_with_no_completion_is_info() {
    let events = vec![
        inv(0, 0, "write", json!(1)),
        inv(1, 1, "write", json!(2)),
        done(2, 1, EventType::Ok, "write", json!(2)),
    ];
    let p = pair(&events, "p").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.ops[0].outcome, Outcome::Info);
    assert_eq!(p.ops[0].complete_index, None);
    assert_eq!(p.ops[0].complete_time, None);
    assert_eq!(p.ops[0].describe(), "process 0 wrote 1 (outcome unknown)");
    assert_eq!(p.ops[1].outcome, Outcome::Ok);
}

#[test]
fn a_process_may_run_again_after_completing() {
    let events = vec![
        inv(0, 0, "write", json!(1)),
        done(1, 0, EventType::Ok, "write", json!(1)),
        inv(2, 0, "read", json!(null)),
        done(3, 0, EventType::Ok, "read", json!(1)),
    ];
    let p = pair(&events, "p").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.ops.len(), 2);
    assert!(p.ops.iter().all(|o| o.outcome == Outcome::Ok));
}

#[test]
fn pairing_imported_edn_reports_the_assigned_index() {
    // Events without :index get their position; the error names the index of the event.
    let text = "{:process 0 :type :invoke :f :write :value 1}\n\
                {:process 1 :type :invoke :f :read :value nil}\n\
                {:process 0 :type :invoke :f :write :value 2}\n";
    let h = parse_str(text, "p.edn", Format::Auto).unwrap_or_else(|e| panic!("{e}"));
    match h.pair("p.edn") {
        Err(HistoryError::Structure { index: 2, file, .. }) => assert_eq!(file, "p.edn"),
        other => panic!("expected a structure error at event 2, got {other:?}"),
    }
}

#[test]
fn a_completion_of_another_key_is_an_error() {
    let events = vec![
        inv(0, 0, "write", json!(1)).with_key("x"),
        done(1, 0, EventType::Ok, "write", json!(1)).with_key("y"),
    ];
    let (index, message) = structure_error(&events);
    assert_eq!(index, 1);
    assert!(
        message.contains("key y") && message.contains("key x"),
        "{message}"
    );
    // A completion with a key, of an invoke without one, names a key the invoke did not.
    let events = vec![
        inv(0, 0, "write", json!(1)),
        done(1, 0, EventType::Ok, "write", json!(1)).with_key("y"),
    ];
    let (index, message) = structure_error(&events);
    assert_eq!(index, 1);
    assert!(message.contains("no key"), "{message}");
}

#[test]
fn a_completion_may_omit_the_key_of_its_invoke() {
    let events = vec![
        inv(0, 0, "write", json!(1)).with_key("x"),
        done(1, 0, EventType::Ok, "write", json!(1)),
        inv(2, 0, "read", json!(null)).with_key("x"),
        done(3, 0, EventType::Ok, "read", json!(1)).with_key("x"),
    ];
    let p = pair(&events, "p").unwrap_or_else(|e| panic!("{e}"));
    assert!(p.ops.iter().all(|o| o.key == Some(Key("x".into()))));
}

#[test]
fn a_completion_before_its_invoke_in_time_is_an_error() {
    let events = vec![
        Event {
            time: 500,
            ..inv(0, 0, "write", json!(1))
        },
        Event {
            time: 499,
            ..done(1, 0, EventType::Ok, "write", json!(1))
        },
    ];
    let (index, message) = structure_error(&events);
    assert_eq!(index, 1);
    assert!(
        message.contains("time 499") && message.contains("time 500"),
        "{message}"
    );
    // The same time is fine (a coarse clock).
    let mut same = events.clone();
    same[1].time = 500;
    assert!(pair(&same, "p").is_ok());
}

#[test]
fn indexes_that_do_not_increase_are_an_error() {
    for second in [0, 3] {
        let events = vec![
            inv(3, 0, "write", json!(1)),
            inv(second, 1, "read", json!(null)),
        ];
        let (index, message) = structure_error(&events);
        assert_eq!(index, second);
        assert!(message.contains("does not increase"), "{message}");
    }
    // Nemesis events count too: the index is the real-time order of everything.
    let events = vec![
        inv(3, 0, "write", json!(1)),
        Event {
            process: Process::Nemesis,
            ..done(2, 0, EventType::Info, "kill", json!(null))
        },
    ];
    assert_eq!(structure_error(&events).0, 2);
}
