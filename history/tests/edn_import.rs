//! The Jepsen EDN importer: literal snippets to expected events, flavours, errors.

use faultline_history::import::{
    parse_bytes, parse_str, Format, ImportOptions, Independent, META_IMPORTED_FROM,
    META_INDEPENDENT,
};
use faultline_history::{
    load, Event, EventType, HistoryError, Key, Process, META_INITIAL, META_NIL_READS,
};
use serde_json::{json, Value};
use std::path::Path;

const KV_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/porcupine/kv");

fn edn(text: &str) -> faultline_history::History {
    edn_with(text, ImportOptions::default())
}

fn edn_with(text: &str, opts: ImportOptions) -> faultline_history::History {
    parse_bytes(text.as_bytes(), "t.edn", Format::Edn, &opts)
        .unwrap_or_else(|e| panic!("{text:?} did not import: {e}"))
}

fn ev(index: u64, time: u64, process: u64, kind: EventType, f: &str, value: Value) -> Event {
    Event {
        time,
        ..Event::client(index, process, kind, f, value)
    }
}

#[test]
fn single_maps_to_events() {
    let rows: Vec<(&str, Event)> = vec![
        (
            "{:process 0, :type :invoke, :f :read, :value nil}",
            ev(0, 0, 0, EventType::Invoke, "read", json!(null)),
        ),
        (
            "{:index 7 :time 1200 :type :ok :process 3 :f :write :value 4}",
            ev(7, 1200, 3, EventType::Ok, "write", json!(4)),
        ),
        (
            "{:type :fail, :f :cas, :value [1 2], :process 2, :error :not-leader}",
            ev(0, 0, 2, EventType::Fail, "cas", json!([1, 2])).with_error("not-leader"),
        ),
        (
            r#"{:type :info :f :write :value 5 :process 1 :error "timeout" :node "n3"}"#,
            Event {
                node: Some("n3".into()),
                ..ev(0, 0, 1, EventType::Info, "write", json!(5)).with_error("timeout")
            },
        ),
        (
            "#jepsen.history.Op{:index 4, :time 99, :type :invoke, :process 5, :f :cas, :value [3 4]}",
            ev(4, 99, 5, EventType::Invoke, "cas", json!([3, 4])),
        ),
        (
            // Extra fields are ignored; strings work as keys and as type/f.
            r#"{"type" "ok" "f" "read" "process" 1 "value" "x" :debug {:a 1}}"#,
            ev(0, 0, 1, EventType::Ok, "read", json!("x")),
        ),
        (
            // Values of every kind become JSON, one-to-one: keywords, sets, characters and
            // maps with a key JSON cannot hold are tagged; integers stay exact.
            r#"{:type :ok :f :txn :process 0 :value [[:append 1 #{2}] (3 4.5) {:a "é" 7 nil} \x 123456789012345678901234 18446744073709551615 -9 true]}"#,
            ev(0, 0, 0, EventType::Ok, "txn", json!([
                [{"#keyword": "append"}, 1, {"#set": [2]}],
                [3, serde_json::from_str::<Value>("4.5").expect("number")],
                {"#map": [[7, null], [{"#keyword": "a"}, "é"]]},
                {"#char": "x"},
                serde_json::from_str::<Value>("123456789012345678901234").expect("number"),
                18446744073709551615u64,
                -9,
                true
            ])),
        ),
    ];
    for (text, expected) in rows {
        let h = edn_with(
            text,
            ImportOptions {
                independent: Independent::Off,
                ..Default::default()
            },
        );
        assert_eq!(h.events, vec![expected], "{text}");
    }
}

#[test]
fn unusual_tokens_read_like_plain_ones() {
    let h = edn("{:index 007 :time 5N :process +3 :type :ok :f ::read :key 007 :value 1}\n\
                 {:index 9 :time 6 :process 3 :type ok :f \"write\" :key 0 :value 2}\n\
                 {:index 10 :time 7 :process :nemesis :type :info :f kill :key \"a\" :node n1 :error :boom}");
    let got: Vec<(u64, u64, Process, &str, Option<Key>)> = h
        .events
        .iter()
        .map(|e| (e.index, e.time, e.process, e.f.as_str(), e.key.clone()))
        .collect();
    let k = |s: &str| Some(Key(s.into()));
    assert_eq!(
        got,
        vec![
            (7, 5, Process::Client(3), "read", k("7")),
            (9, 6, Process::Client(3), "write", k("0")),
            (10, 7, Process::Nemesis, "kill", k("a")),
        ]
    );
    assert_eq!(h.events[1].kind, EventType::Ok);
    assert_eq!(
        (h.events[2].node.as_deref(), h.events[2].error.as_deref()),
        (Some("n1"), Some("boom"))
    );
}

#[test]
fn one_map_per_line_and_a_pretty_printed_vector_give_the_same_events() {
    let lines = "{:process 0, :type :invoke, :f :write, :value 1}\n\
                 {:process 0, :type :ok, :f :write, :value 1}\n\
                 {:process :nemesis, :type :info, :f :start, :value {:n1 #{:n2 :n3}}}\n";
    let vector = "; a comment\n[{:process 0,\n  :type :invoke,\n  :f :write,\n  :value 1}\n \
                  {:process 0 :type :ok :f :write :value 1} #_ {:ignored true}\n\
                  {:process :nemesis :type :info :f :start :value {:n1 #{:n2 :n3}}}]\n";
    let a = edn(lines);
    let b = edn(vector);
    assert_eq!(a.events, b.events);
    assert_eq!(a.events.len(), 3);
    assert_eq!(a.events[2].process, Process::Nemesis);
    let nodes = a.events[2].value[":n1"]["#set"].as_array().map(|v| v.len());
    assert_eq!(nodes, Some(2), "set of two nodes: {}", a.events[2].value);
    assert_eq!(a.meta.get(META_NIL_READS), Some(&json!("unknown")));
    assert_eq!(a.meta.get(META_IMPORTED_FROM), Some(&json!("jepsen-edn")));
    assert!(a.nil_reads_unknown());
    let idx: Vec<(u64, u64)> = a.events.iter().map(|e| (e.index, e.time)).collect();
    assert_eq!(idx, vec![(0, 0), (1, 1), (2, 2)]);
}

#[test]
fn nil_reads_option_and_failed_cas_are_not_mismatch() {
    let text = "{:process 0 :type :invoke :f :cas :value [1 2]}\n{:process 0 :type :fail :f :cas :value [1 2]}\n";
    let h = edn(text);
    assert_eq!(h.events[1].kind, EventType::Fail);
    assert_eq!(
        h.events[1].error, None,
        "Jepsen EDN fail is not marked mismatch"
    );
    let strict = edn_with(
        text,
        ImportOptions {
            nil_reads_unknown: false,
            ..Default::default()
        },
    );
    assert!(!strict.nil_reads_unknown());
    assert_eq!(strict.meta.get(META_NIL_READS), None);
}

const INDEPENDENT: &str = "\
{:process 0 :type :invoke :f :read :value [3 nil]}
{:process 1 :type :invoke :f :cas :value [\"k\" [1 2]]}
{:process 0 :type :ok :f :read :value [3 7]}
{:process 1 :type :info :f :cas :value :timed-out}
{:process 2 :type :invoke :f :write :value [3 8]}
{:process 2 :type :fail :f :write :value [3 8] :error :no-leader}
";

#[test]
fn independent_tuples_are_detected_and_split() {
    let h = edn(INDEPENDENT);
    assert_eq!(h.meta.get(META_INDEPENDENT), Some(&json!(true)));
    let got: Vec<(Option<Key>, Value)> = h
        .events
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    let k = |s: &str| Some(Key(s.into()));
    assert_eq!(
        got,
        vec![
            (k("3"), json!(null)),
            (k("k"), json!([1, 2])),
            (k("3"), json!(7)),
            (None, json!({"#keyword": "timed-out"})),
            (k("3"), json!(8)),
            (k("3"), json!(8)),
        ]
    );
    let paired = h.pair("t.edn").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        paired.ops[1].key,
        k("k"),
        "the info cas keeps its invoke's key"
    );
    assert_eq!(paired.ops[2].error.as_deref(), Some("no-leader"));
}

#[test]
fn plain_register_histories_are_not_independent() {
    let plain = [
        // cas values are [old new] with a scalar new value
        "{:process 0 :type :invoke :f :cas :value [1 2]}\n{:process 0 :type :ok :f :cas :value [1 2]}",
        // reads invoke with nil
        "{:process 0 :type :invoke :f :read :value nil}\n{:process 0 :type :ok :f :read :value [1 2]}",
        // writes of scalars
        "{:process 0 :type :invoke :f :write :value 3}",
    ];
    for text in plain {
        let h = edn(text);
        assert_eq!(h.meta.get(META_INDEPENDENT), None, "{text}");
        assert!(h.events.iter().all(|e| e.key.is_none()), "{text}");
    }
    // No client operations at all is refused, whatever the values look like.
    let nemesis = "{:process :nemesis :type :info :f :start :value [1 2]}";
    match parse_str(nemesis, "t.edn", Format::Edn) {
        Err(e) => assert!(e.to_string().contains("no operations"), "{e}"),
        Ok(h) => panic!("expected no operations, got {h:?}"),
    }
    // Forced on, a cas-only history of pairs is split.
    let text = "{:process 0 :type :invoke :f :write :value [1 2]}";
    let on = edn_with(
        text,
        ImportOptions {
            independent: Independent::On,
            ..Default::default()
        },
    );
    assert_eq!(
        (on.events[0].key.clone(), on.events[0].value.clone()),
        (Some(Key("1".into())), json!(2))
    );
    // Forced off, the independent history is kept whole.
    let off = edn_with(
        INDEPENDENT,
        ImportOptions {
            independent: Independent::Off,
            ..Default::default()
        },
    );
    assert_eq!(off.events[0].value, json!([3, null]));
    assert_eq!(off.events[0].key, None);
    // Forced on, an invoke that is not a tuple is an error naming its line.
    let bad = "{:process 0 :type :invoke :f :read :value [1 nil]}\n{:process 1 :type :invoke :f :read :value nil}";
    match parse_bytes(
        bad.as_bytes(),
        "i.edn",
        Format::Edn,
        &ImportOptions {
            independent: Independent::On,
            ..Default::default()
        },
    ) {
        Err(HistoryError::Parse {
            line: 2, message, ..
        }) => assert!(message.contains("tuple"), "{message}"),
        other => panic!("expected a parse error at line 2, got {other:?}"),
    }
}

#[test]
fn porcupine_kv_lines_are_recognised() {
    let text = "{:process 0, :type :invoke, :f :append, :key \"9\", :value \"x 0 2 y\"}\n\
                {:process 0, :type :ok, :f :append, :key \"9\", :value \"x 0 2 y\"}\n\
                {:process 1, :type :invoke, :f :get, :key 9, :value nil}\n\
                {:process 1, :type :ok, :f :get, :key \"9\", :value \"x 0 2 y\"}\n\
                {:process 2, :type :invoke, :f :put, :key \"4\", :value \"a\"}\n";
    let h = edn(text);
    let fs: Vec<&str> = h.events.iter().map(|e| e.f.as_str()).collect();
    assert_eq!(fs, ["append", "append", "read", "read", "write"]);
    assert!(
        h.events[..4].iter().all(|e| e.key == Some(Key("9".into()))),
        "integer keys become text"
    );
    assert_eq!(h.meta.get(META_INITIAL), Some(&json!("")));
    assert_eq!(h.meta.get(META_NIL_READS), None);
    assert_eq!(h.meta.get(META_IMPORTED_FROM), Some(&json!("porcupine-kv")));
    // A keyed history with other functions keeps its names and gets Jepsen semantics.
    let other = edn("{:process 0 :type :invoke :f :read :key 1 :value nil}");
    assert_eq!(
        (other.events[0].f.as_str(), other.events[0].key.clone()),
        ("read", Some(Key("1".into())))
    );
    assert_eq!(other.meta.get(META_INITIAL), None);
    assert!(other.nil_reads_unknown());
}

#[test]
fn every_kv_file_loads() {
    // (file, lines, gets, puts, appends) counted with grep.
    let files = [
        ("c01-bad.txt", 76, 36, 4, 36),
        ("c01-ok.txt", 116, 50, 4, 62),
        ("c10-bad.txt", 810, 386, 44, 380),
        ("c10-ok.txt", 674, 284, 38, 352),
        ("c50-bad.txt", 4048, 1788, 206, 2054),
        ("c50-ok.txt", 3424, 1586, 152, 1686),
    ];
    for (file, lines, gets, puts, appends) in files {
        let path = Path::new(KV_DIR).join(file);
        let h = load(&path, Format::Auto).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(h.events.len(), lines, "{file}");
        let count = |f: &str| h.events.iter().filter(|e| e.f == f).count();
        assert_eq!(
            (count("read"), count("write"), count("append")),
            (gets, puts, appends),
            "{file}"
        );
        assert!(h.events.iter().all(|e| e.key.is_some()), "{file}");
        assert_eq!(h.meta.get(META_INITIAL), Some(&json!("")), "{file}");
        let paired = h.pair(file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paired.ops.len(), lines / 2, "{file}");
    }
}

#[test]
fn errors_name_the_line_and_what_was_expected() {
    let cases = [
        (
            "{:process 0 :type :invoke :f :read}\n{:process 0 :type :begin :f :read}",
            2,
            ":type",
        ),
        (
            "{:process 0 :type :invoke :f :read}\n\n{:process -1 :type :ok :f :read}",
            3,
            ":process",
        ),
        (
            "{:process 0 :type :invoke :f :read}\n{:type :ok :f :read}",
            2,
            "no :process",
        ),
        ("{:process 0 :type :invoke}", 1, "no :f"),
        ("{:process 0 :f :read}", 1, "no :type"),
        (
            "{:process 0 :type :ok :f :read :index 3}\n{:process 0 :type :ok :f :read :index 3}",
            2,
            "does not increase",
        ),
        ("{:process 0 :type :ok :f :read :time -5}", 1, ":time"),
        ("{:process 0 :type :ok :f :read :key [1]}", 1, ":key"),
        ("{:process 0 :type :ok :f :read}\n[1 2]", 2, "operation map"),
        (
            "{:process 0 :type :ok :f :read}\n{:process 0\n :type :ok",
            2,
            "never closed",
        ),
        ("[{:process 0 :type :ok :f :read}\n", 1, "never closed"),
        ("{:process 0 :type :ok :f :read :value \"abc}", 1, "string"),
        (
            "{:process 0 :type :ok :f :read :value 12ab}",
            1,
            "malformed number",
        ),
        ("{:process 0 :type :ok :f :read :value}", 1, "no value"),
        ("\n\n)", 3, "no open collection"),
        (
            "{:a 1}\n{:process 0 :type :ok :f :read :value \"\\q\"}",
            1,
            ":process",
        ),
        (
            "{:process 0 :type :ok :f :read :value \"\\q\"}",
            1,
            "escape",
        ),
        ("#{1 2", 1, "never closed"),
        ("{:process 0 :type :ok :f :read :value ##Foo}", 1, "##Inf"),
    ];
    for (text, line, expected) in cases {
        match parse_str(text, "e.edn", Format::Edn) {
            Err(HistoryError::Parse {
                file,
                line: n,
                message,
            }) => {
                assert_eq!(file, "e.edn");
                assert_eq!(n, line, "{text:?}: {message}");
                assert!(
                    message.contains(expected),
                    "{text:?}: {message:?} lacks {expected:?}"
                );
            }
            other => panic!("{text:?} should be a parse error, got {other:?}"),
        }
    }
}

#[test]
fn deep_nesting_huge_numbers_and_bad_utf8_are_errors_not_panics() {
    let deep = format!(
        "{{:process 0 :type :ok :f :read :value {}1{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = parse_str(&deep, "d.edn", Format::Edn)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains("nested deeper")),
        "{err:?}"
    );
    let discards = format!("{}{{:process 0 :type :ok :f :read}}", "#_".repeat(100_000));
    assert!(parse_str(&discards, "d.edn", Format::Edn).is_err());
    let tags = format!("{}{{:process 0 :type :ok :f :read}}", "#a ".repeat(100_000));
    assert!(parse_str(&tags, "d.edn", Format::Edn).is_err());
    let huge = format!("{{:process {} :type :ok :f :read}}", "9".repeat(500));
    let err = parse_str(&huge, "h.edn", Format::Edn)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains(":process")),
        "{err:?}"
    );
    let bytes =
        b"{:process 0 :type :ok :f :read}\n{:process 0 :type :ok :f :read :value \"\xff\"}\n";
    match parse_bytes(bytes, "u.edn", Format::Auto, &ImportOptions::default()) {
        Err(HistoryError::Parse {
            line: 2, message, ..
        }) => assert!(message.contains("UTF-8"), "{message}"),
        other => panic!("expected a UTF-8 error at line 2, got {other:?}"),
    }
}

#[test]
fn strings_escapes_and_characters() {
    let text = r#"{:process 0 :type :ok :f :read :value ["a\"b\\c\n\u00e9\ud83d\ude00" \newline \space \u0041 \( "multi
line"]}
{:process 0 :type :ok :f :read :value 1}"#;
    let h = edn(text);
    let c = |s: &str| json!({ "#char": s });
    assert_eq!(
        h.events[0].value,
        json!([
            "a\"b\\c\né😀",
            c("\n"),
            c(" "),
            c("A"),
            c("("),
            "multi\nline"
        ])
    );
    assert_eq!(h.events.len(), 2);
    // The multi-line string is counted: an error after it names line 4.
    let after = format!("{text}\n{{:process 0 :type :bad :f :read}}");
    match parse_str(&after, "s.edn", Format::Edn) {
        Err(HistoryError::Parse { line, .. }) => assert_eq!(line, 4),
        other => panic!("expected a parse error, got {other:?}"),
    }
}
