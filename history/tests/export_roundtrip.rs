//! Export then import gives the same history: Jepsen EDN (plain values, `[k v]` tuples or
//! a `:key` field, tagged EDN values from a real Jepsen file) and Porcupine's etcd log
//! (every log of the fixtures), with info and fail operations, failed cas mismatches,
//! integers past 64 bits, nulls and nemesis events.

use faultline_history::export::{write_edn, write_porcupine, ExportError, KeyStyle};
use faultline_history::{
    parse_bytes, same_value, Event, EventType, Format, History, ImportOptions, Independent,
};
use serde_json::{json, Value};
use std::path::Path;

fn num(text: &str) -> Value {
    serde_json::from_str(text).expect("a number")
}

fn ev(index: u64, process: u64, kind: EventType, f: &str, value: Value) -> Event {
    let mut e = Event::client(index, process, kind, f, value);
    e.time = index * 1_000 + 7;
    e
}

fn nemesis(index: u64, kind: EventType, f: &str, value: Value) -> Event {
    let mut e = ev(index, 0, kind, f, value);
    e.process = faultline_history::Process::Nemesis;
    e
}

/// A register history with everything an exporter can get wrong.
fn register_history() -> History {
    let big = num("18446744073709551617");
    let neg = num("-99999999999999999999999");
    History::from_events(vec![
        ev(0, 0, EventType::Invoke, "write", big.clone()),
        ev(1, 0, EventType::Ok, "write", big.clone()).with_node(),
        ev(2, 1, EventType::Invoke, "read", Value::Null),
        ev(3, 1, EventType::Ok, "read", Value::Null),
        nemesis(
            4,
            EventType::Invoke,
            "partition",
            json!({"n1": ["n2"], "n2": ["n1"]}),
        ),
        nemesis(
            5,
            EventType::Info,
            "partition",
            json!({"n1": ["n2"], "n2": ["n1"]}),
        ),
        ev(
            6,
            2,
            EventType::Invoke,
            "cas",
            json!([big.clone(), neg.clone()]),
        ),
        ev(
            7,
            2,
            EventType::Fail,
            "cas",
            json!([big.clone(), neg.clone()]),
        )
        .with_error("mismatch"),
        ev(8, 3, EventType::Invoke, "write", num("1.50")),
        ev(9, 3, EventType::Info, "write", num("1.50")).with_error("timed-out"),
        ev(10, 4, EventType::Invoke, "read", Value::Null),
        ev(11, 4, EventType::Fail, "read", Value::Null).with_error("timed-out"),
        ev(
            12,
            5,
            EventType::Invoke,
            "write",
            json!("a \"quoted\"\nline\u{1b}"),
        ),
        ev(
            13,
            5,
            EventType::Ok,
            "write",
            json!("a \"quoted\"\nline\u{1b}"),
        ),
        ev(
            14,
            6,
            EventType::Invoke,
            "write",
            json!({":k": [1, null, {"s": true}]}),
        ),
    ])
}

trait WithNode {
    fn with_node(self) -> Event;
}
impl WithNode for Event {
    fn with_node(mut self) -> Event {
        self.node = Some("n1".into());
        self
    }
}

fn no_nil_guess(independent: Independent) -> ImportOptions {
    ImportOptions {
        independent,
        nil_reads_unknown: false,
    }
}

fn assert_same(a: &History, b: &History, positions: bool) {
    assert_eq!(a.events.len(), b.events.len());
    for (x, y) in a.events.iter().zip(&b.events) {
        if positions {
            assert_eq!((x.index, x.time), (y.index, y.time), "{x:?} / {y:?}");
        }
        assert_eq!(
            (x.process, x.kind, &x.f, &x.key, &x.node, &x.error),
            (y.process, y.kind, &y.f, &y.key, &y.node, &y.error),
            "{x:?} / {y:?}"
        );
        assert!(same_value(&x.value, &y.value), "{x:?} / {y:?}");
        // Numbers keep their exact text.
        assert_eq!(x.value.to_string(), y.value.to_string());
    }
}

fn edn_of(h: &History, keys: KeyStyle) -> String {
    let mut out = Vec::new();
    write_edn(&mut out, h, keys).expect("exports");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn a_register_history_reads_back_from_edn() {
    let h = register_history();
    let text = edn_of(&h, KeyStyle::Auto);
    assert!(text.contains(":value 18446744073709551617"), "{text}");
    assert!(text.contains(":error :timed-out"), "{text}");
    let back = parse_bytes(
        text.as_bytes(),
        "x.edn",
        Format::Edn,
        &no_nil_guess(Independent::Auto),
    )
    .expect("imports");
    assert_same(&h, &back, true);
    // Detection by content picks EDN.
    let auto = parse_bytes(
        text.as_bytes(),
        "x",
        Format::Auto,
        &no_nil_guess(Independent::Auto),
    )
    .expect("imports");
    assert_same(&h, &auto, true);
}

fn keyed() -> History {
    let mut events = Vec::new();
    for (i, (k, v)) in [("k1", json!(1)), ("7", json!(2)), ("k 2", json!(null))]
        .into_iter()
        .enumerate()
    {
        let i = i as u64 * 4;
        events.push(ev(i, 0, EventType::Invoke, "write", v.clone()).with_key(k));
        events.push(ev(i + 1, 0, EventType::Ok, "write", v.clone()).with_key(k));
        events.push(ev(i + 2, 1, EventType::Invoke, "cas", json!([v.clone(), 9])).with_key(k));
        events.push(ev(i + 3, 1, EventType::Info, "cas", json!([v, 9])).with_key(k));
    }
    History::from_events(events)
}

#[test]
fn keyed_histories_read_back_as_tuples_or_key_fields() {
    let h = keyed();
    let tuples = edn_of(&h, KeyStyle::Auto);
    assert!(tuples.contains(":value [\"k1\" 1]"), "{tuples}");
    assert!(tuples.contains(":value [7 2]"), "{tuples}");
    let back = parse_bytes(
        tuples.as_bytes(),
        "t.edn",
        Format::Edn,
        &no_nil_guess(Independent::Auto),
    )
    .expect("imports");
    assert_same(&h, &back, true);
    let fields = edn_of(&h, KeyStyle::Field);
    assert!(fields.contains(":key \"k1\""), "{fields}");
    let back = parse_bytes(
        fields.as_bytes(),
        "f.edn",
        Format::Edn,
        &no_nil_guess(Independent::Auto),
    )
    .expect("imports");
    assert_same(&h, &back, true);
    // Tuples need a key on every client event.
    let mut partly = keyed();
    partly.events[0].key = None;
    partly.events[1].key = None;
    let mut out = Vec::new();
    let err = write_edn(&mut out, &partly, KeyStyle::Tuples).expect_err("refused");
    assert!(
        matches!(err, ExportError::Unrepresentable { index: 0, .. }),
        "{err}"
    );
}

fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(p).expect("fixture")
}

#[test]
fn edn_forms_json_has_no_word_for_read_back_the_same() {
    let text = r#"
{:index 3, :time 10, :type :invoke, :process 0, :f :write, :value #{1 :a "b"}}
{:index 4, :time 20, :type :ok, :process 0, :f :write, :value #{1 :a "b"}, :node :n2}
{:type :invoke, :process 1, :f :write, :value {:a 1.5M, [1 2] \x, "s" 1/2, sym \space}}
{:type :info, :process 1, :f :write, :value nil, :error :timed-out}
{:type :invoke, :process 2, :f :read, :value nil}
{:type :ok, :process 2, :f :read, :value (1 ##Inf 123456789012345678901234567890N -0.0)}
{:type :info, :process :nemesis, :f :start, :value [:isolated {"n1" #{"n2"}}]}
"#;
    let opts = no_nil_guess(Independent::Off);
    let h = parse_bytes(text.as_bytes(), "in.edn", Format::Edn, &opts).expect("imports");
    let out = edn_of(&h, KeyStyle::Auto);
    let back = parse_bytes(out.as_bytes(), "out.edn", Format::Edn, &opts).expect("reimports");
    assert_same(&h, &back, true);
    for name in ["c01-bad.txt", "c10-ok.txt"] {
        let text = fixture(&format!("testdata/porcupine/kv/{name}"));
        let h = parse_bytes(text.as_bytes(), name, Format::Edn, &opts).expect("imports");
        let out = edn_of(&h, KeyStyle::Field);
        let back = parse_bytes(out.as_bytes(), name, Format::Edn, &opts).expect("reimports");
        assert_same(&h, &back, true);
    }
}

#[test]
fn every_porcupine_log_reads_back_the_same() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/porcupine/jepsen");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let name = path.display().to_string();
        // Some logs of the fixtures are empty.
        let Ok(h) = parse_bytes(
            text.as_bytes(),
            &name,
            Format::Porcupine,
            &Default::default(),
        ) else {
            continue;
        };
        let mut out = Vec::new();
        write_porcupine(&mut out, &h).expect("exports");
        let back =
            parse_bytes(&out, &name, Format::Porcupine, &Default::default()).expect("reimports");
        assert_same(&h, &back, true);
        n += 1;
    }
    assert!(n > 90, "{n} logs");
}

#[test]
fn a_faultline_register_history_reads_back_from_a_porcupine_log() {
    let mut h = register_history();
    h.events.truncate(14);
    for e in &mut h.events {
        e.node = None;
    }
    let mut out = Vec::new();
    write_porcupine(&mut out, &h).expect("exports");
    let text = String::from_utf8(out.clone()).expect("utf-8");
    assert!(text.contains(":fail\t:read\t:timed-out"), "{text}");
    let back = parse_bytes(&out, "p.log", Format::Porcupine, &Default::default()).expect("imports");
    assert_same(&h, &back, false);
    // Keys, failed cas that are not mismatches and errors that are not names are refused.
    let mut out = Vec::new();
    assert!(write_porcupine(&mut out, &keyed()).is_err());
    let mut bad = register_history();
    bad.events[7].error = Some("not leader".into());
    assert!(write_porcupine(&mut out, &bad).is_err());
    bad.events[7].error = None;
    assert!(write_porcupine(&mut out, &bad).is_err());
}
