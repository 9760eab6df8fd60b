//! The last line of a JSONL history is skipped as "cut short" only when it is the
//! beginning of a valid event (what a writer stopped mid-line leaves); any other last
//! line that does not parse is an error naming its line.

use faultline_history::{
    write_history, Event, EventType, History, HistoryError, JsonlReader, Key, Process,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

const HEAD: &str = "{\"format\":\"faultline-history\",\"version\":1}\n\
                    {\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
                    {\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n";

fn read(bytes: &[u8]) -> Result<History, HistoryError> {
    JsonlReader::new(bytes, "t.jsonl").read_all()
}

#[test]
fn a_last_line_that_is_not_the_beginning_of_an_event_is_an_error() {
    let tails: [&[u8]; 22] = [
        // Complete lines without a newline: parsed like any other line.
        b"{\"index\":2,\"time\":3,\"process\":0,\"type\":\"OK\",\"f\":\"write\",\"value\":1}",
        b"{\"index\":2,\"time\":3,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"vaule\":1}",
        b"{\"index\":2}",
        b"[1,2",
        b"hello world",
        b"\"index\"",
        b"garbage{\"index\":2",
        // Incomplete, but a field so far is wrong.
        b"{\"index\":2,\"time\":3,\"process\":0,\"type\":\"OK\",\"f\":\"wr",
        b"{\"index\":2,\"type\":\"OK",
        b"{\"index\":2,\"type\":\"okay",
        b"{\"index\":2,\"vaule\":1,\"process\":0",
        b"{\"index\":2,\"xy",
        b"{\"index\":2,\"index\":3,",
        b"{\"index\":1,\"time\":5,",
        b"{\"index\":0",
        b"{\"index\":-",
        b"{\"index\":2,\"process\":\"nemo",
        b"{\"index\":2,\"process\":-1",
        b"{\"index\":2,\"f\":3",
        b"{\"index\":2,\"f\":\"\xff\xfe\"",
        // Not JSON on the way.
        b"{\"index\":2,,",
        b"{\"index\" 2",
    ];
    for tail in tails {
        let mut bytes = HEAD.as_bytes().to_vec();
        bytes.extend_from_slice(tail);
        match read(&bytes) {
            Err(HistoryError::Parse { file, line, .. }) => {
                assert_eq!(
                    (file.as_str(), line),
                    ("t.jsonl", 4),
                    "{}",
                    String::from_utf8_lossy(tail)
                );
            }
            other => panic!(
                "{}: expected an error on line 4, got {other:?}",
                String::from_utf8_lossy(tail)
            ),
        }
    }
}

#[test]
fn a_huge_last_line_of_garbage_is_an_error() {
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend(vec![b'x'; 4 << 20]);
    assert!(matches!(
        read(&bytes),
        Err(HistoryError::Parse { line: 4, .. })
    ));
}

#[test]
fn beginnings_of_valid_events_are_skipped() {
    let tails = [
        "{",
        "{\"",
        "{\"ind",
        "{\"index\"",
        "{\"index\":",
        "{\"index\":1",
        "{\"index\":2,\"time\":3,\"process\":\"nem",
        "{\"index\":2,\"type\":\"o",
        "{\"index\":2,\"type\":\"ok\"",
        "{\"index\":2,\"type\":\"ok\",\"key\":-",
        "{\"index\":2,\"type\":\"i",
        "{\"index\":2,\"value\":{\"a\":[1,{\"b\":\"\\u00",
        "{\"index\":2,\"f\":\"\\",
        "{\"index\":2,\"error\":nu",
        "{ \"index\" : 2 , \"ty",
        "{\"\\u0069nd",
        "{\"index\":2,\"type\":\"\\u006",
    ];
    for tail in tails {
        let h = read(format!("{HEAD}{tail}").as_bytes()).unwrap_or_else(|e| panic!("{tail}: {e}"));
        assert!(h.truncated_tail, "{tail}");
        assert_eq!(h.events.len(), 2, "{tail}");
    }
}

/// Events of every shape the writer produces, with escapes and multi-byte characters.
fn random_events(rng: &mut ChaCha8Rng) -> Vec<Event> {
    let mut index = 0u64;
    let mut events = Vec::new();
    for _ in 0..rng.gen_range(1..30) {
        index += rng.gen_range(1..1000);
        let kind = [
            EventType::Invoke,
            EventType::Ok,
            EventType::Fail,
            EventType::Info,
        ][rng.gen_range(0..4)];
        let value = match rng.gen_range(0..6) {
            0 => json!(null),
            1 => json!(rng.gen::<i64>()),
            2 => json!([rng.gen::<u32>(), [rng.gen::<u8>(), null]]),
            3 => json!(format!("é\"\\\n\t😀{}", rng.gen::<u16>())),
            4 => json!({"n1": ["n2", "\u{1}"], "x": 2.5}),
            _ => json!(1e300),
        };
        let mut ev = Event::client(index, rng.gen_range(0..1000), kind, "wr\"ite", value);
        ev.time = rng.gen();
        if rng.gen_bool(0.5) {
            ev.key = Some(Key(["k", "ключ", "12"][rng.gen_range(0..3)].into()));
        }
        if rng.gen_bool(0.2) {
            ev.process = Process::Nemesis;
        }
        if rng.gen_bool(0.3) {
            ev.node = Some("n😀".into());
        }
        if rng.gen_bool(0.3) {
            ev.error = Some("time\"out".into());
        }
        events.push(ev);
    }
    events
}

#[test]
fn every_cut_of_every_written_line_is_skipped_as_cut_short() {
    for seed in 0..40u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut events = vec![Event::client(0, 0, EventType::Invoke, "read", json!(null))];
        events.extend(random_events(&mut rng));
        let mut bytes = Vec::new();
        write_history(&mut bytes, &History::from_events(events.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        let last_start = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        for cut in last_start + 1..bytes.len() - 1 {
            let h = read(&bytes[..cut]).unwrap_or_else(|e| panic!("seed {seed} cut {cut}: {e}"));
            assert!(h.truncated_tail, "seed {seed} cut {cut}");
            assert_eq!(
                h.events,
                events[..events.len() - 1],
                "seed {seed} cut {cut}"
            );
        }
    }
}
