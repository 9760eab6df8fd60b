//! faultline-history/1 JSONL: writer/reader round trip, truncated tails, errors.

use faultline_history::{
    write_history, Event, EventType, History, HistoryError, JsonlReader, JsonlWriter, Key, Process,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

fn sample() -> History {
    let mut meta = Map::new();
    meta.insert("seed".into(), json!(7));
    meta.insert("target".into(), json!("raft-register"));
    meta.insert("note".into(), json!("ünïcödé ✓ 日本 😀"));
    let events = vec![
        Event::client(0, 0, EventType::Invoke, "write", json!(7)).with_key("k3"),
        Event {
            node: Some("n2".into()),
            ..Event::client(1, 0, EventType::Ok, "write", json!(7)).with_key("k3")
        },
        Event::client(2, 1, EventType::Invoke, "cas", json!([7, 9])).with_key("k3"),
        Event::client(3, 1, EventType::Info, "cas", json!([7, 9]))
            .with_key("k3")
            .with_error("timeout"),
        Event {
            time: 2_400_000,
            process: Process::Nemesis,
            ..Event::client(
                4,
                0,
                EventType::Info,
                "partition",
                json!({"n1": ["n3", "n4"]}),
            )
        },
        Event::client(5, 2, EventType::Invoke, "append", json!("é\"\\\n\t😀")).with_key("ключ"),
        Event::client(6, 2, EventType::Fail, "append", json!(null))
            .with_key("ключ")
            .with_error("not-leader"),
        Event {
            time: u64::MAX,
            ..Event::client(u64::MAX, u64::MAX, EventType::Invoke, "read", json!(null))
        },
    ];
    History {
        meta,
        events,
        truncated_tail: false,
    }
}

fn write(h: &History) -> Vec<u8> {
    let mut out = Vec::new();
    write_history(&mut out, h).unwrap_or_else(|e| panic!("{e}"));
    out
}

fn read(bytes: &[u8]) -> Result<History, HistoryError> {
    JsonlReader::new(bytes, "h.jsonl").read_all()
}

#[test]
fn round_trip_keeps_everything() {
    let h = sample();
    let bytes = write(&h);
    let text = String::from_utf8(bytes.clone()).unwrap_or_default();
    assert!(
        text.starts_with("{\"format\":\"faultline-history\""),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1 + h.events.len());
    let back = read(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.events, h.events);
    assert!(!back.truncated_tail);
    for (k, v) in &h.meta {
        assert_eq!(back.meta.get(k), Some(v), "meta {k}");
    }
    assert_eq!(back.meta.get("version"), Some(&json!(1)));
    // Writing what was read gives the same bytes.
    assert_eq!(write(&back), bytes);
}

#[test]
fn seeded_random_histories_round_trip() {
    for seed in 0..20u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut events = Vec::new();
        let mut index = 0u64;
        for _ in 0..rng.gen_range(0..200) {
            index += rng.gen_range(1..5);
            let kind = [
                EventType::Invoke,
                EventType::Ok,
                EventType::Fail,
                EventType::Info,
            ][rng.gen_range(0..4)];
            let value = match rng.gen_range(0..5) {
                0 => Value::Null,
                1 => json!(rng.gen::<i64>()),
                2 => json!([rng.gen::<u32>(), rng.gen::<u32>()]),
                3 => json!(format!("s{}\u{1F600}", rng.gen::<u16>())),
                _ => json!({"n": [rng.gen::<u8>()]}),
            };
            let mut ev = Event::client(index, rng.gen_range(0..10), kind, "write", value);
            ev.time = rng.gen();
            if rng.gen_bool(0.5) {
                ev.key = Some(Key(rng.gen::<u16>().to_string()));
            }
            if rng.gen_bool(0.1) {
                ev.process = Process::Nemesis;
            }
            if rng.gen_bool(0.2) {
                ev.error = Some("timeout".into());
            }
            events.push(ev);
        }
        let h = History::from_events(events);
        let back = read(&write(&h)).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(back.events, h.events, "seed {seed}");
    }
}

#[test]
fn a_cut_last_line_is_skipped_and_reported() {
    let bytes = write(&sample());
    let full = read(&bytes).unwrap_or_else(|e| panic!("{e}"));
    // Cut inside the last line at every position, including inside multi-byte characters.
    let last_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    for cut in last_start + 1..bytes.len() - 1 {
        let h = read(&bytes[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert!(h.truncated_tail, "cut at {cut}");
        assert_eq!(
            h.events,
            full.events[..full.events.len() - 1],
            "cut at {cut}"
        );
    }
    // A complete last line without its newline is not truncated.
    let h = read(&bytes[..bytes.len() - 1]).unwrap_or_else(|e| panic!("{e}"));
    assert!(!h.truncated_tail);
    assert_eq!(h.events, full.events);
    // A cut inside a multi-byte character of the second-to-last line's successor.
    let text = "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"append\",\"value\":null}\n{\"index\":1,\"process\":0,\"type\":\"ok\",\"f\":\"append\",\"value\":\"日本";
    let bytes = text.as_bytes();
    let h = read(&bytes[..bytes.len() - 1]).unwrap_or_else(|e| panic!("{e}"));
    assert!(h.truncated_tail);
    assert_eq!(h.events.len(), 1);
}

#[test]
fn a_bad_line_in_the_middle_is_an_error_naming_it() {
    let text = "{\"format\":\"faultline-history\",\"version\":1}\n\
                {\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
                \n\
                {\"index\":1,\"process\":0,\"type\":\"finished\",\"f\":\"read\",\"value\":null}\n\
                {\"index\":2,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":null}\n";
    match read(text.as_bytes()) {
        Err(HistoryError::Parse {
            file,
            line,
            message,
        }) => {
            assert_eq!((file.as_str(), line), ("h.jsonl", 4));
            assert!(message.contains("finished"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let cases = [
        ("{\"index\":3,\"process\":0,\"type\":\"ok\",\"f\":\"r\"}\n{\"index\":3,\"process\":0,\"type\":\"ok\",\"f\":\"r\"}\n", 2, "does not increase"),
        ("{\"index\":0,\"process\":-1,\"type\":\"ok\",\"f\":\"r\"}\n", 1, "negative"),
        ("{\"index\":0,\"process\":\"nemo\",\"type\":\"ok\",\"f\":\"r\"}\n", 1, "nemesis"),
        ("{\"format\":\"faultline-history\",\"version\":2}\n", 1, "version 2"),
        ("{\"format\":\"faultline-history\"}\n", 1, "version"),
    ];
    for (text, line, expected) in cases {
        match read(text.as_bytes()) {
            Err(HistoryError::Parse {
                line: n, message, ..
            }) => {
                assert_eq!(n, line, "{text}: {message}");
                assert!(
                    message.contains(expected),
                    "{text}: {message:?} lacks {expected:?}"
                );
            }
            other => panic!("{text}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn the_writer_streams_events_line_by_line() {
    let mut w = JsonlWriter::new(Vec::new());
    w.write_header(&Map::new())
        .unwrap_or_else(|e| panic!("{e}"));
    for ev in &sample().events {
        w.write_event(ev).unwrap_or_else(|e| panic!("{e}"));
    }
    w.flush().unwrap_or_else(|e| panic!("{e}"));
    let bytes = w.into_inner();
    let reader = JsonlReader::new(&bytes[..], "w");
    let mut n = 0;
    for ev in reader {
        let ev = ev.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ev, sample().events[n]);
        n += 1;
    }
    assert_eq!(n, sample().events.len());
}

#[test]
fn lines_longer_than_the_input_buffer_read_the_same() {
    let bytes = write(&sample());
    let whole = read(&bytes).unwrap_or_else(|e| panic!("{e}"));
    for capacity in [1, 2, 7, 64] {
        let input = std::io::BufReader::with_capacity(capacity, &bytes[..]);
        let h = JsonlReader::new(input, "small")
            .read_all()
            .unwrap_or_else(|e| panic!("capacity {capacity}: {e}"));
        assert_eq!(h, whole, "capacity {capacity}");
        // Cut inside the last line, through a small buffer too.
        let cut = &bytes[..bytes.len() - 5];
        let input = std::io::BufReader::with_capacity(capacity, cut);
        let h = JsonlReader::new(input, "small")
            .read_all()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(h.truncated_tail, "capacity {capacity}");
        assert_eq!(
            h.events.len(),
            whole.events.len() - 1,
            "capacity {capacity}"
        );
    }
}
