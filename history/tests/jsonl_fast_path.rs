//! Differential test: the JSONL reader (with its fast path for plain lines) reads every
//! line exactly as serde_json's derived `Event` deserializer does, accepting the same
//! lines and giving the same events, except that it refuses fields outside
//! `EVENT_FIELDS` (which the derived deserializer ignores).

use faultline_history::jsonl::EVENT_FIELDS;
use faultline_history::{Event, JsonlReader};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Pieces of a field value, some plain, some the fast path must hand over.
fn value_text(rng: &mut ChaCha8Rng, field: &str) -> String {
    // The first three options are valid; the others are chosen one time in twelve.
    let pick = |rng: &mut ChaCha8Rng, options: &[&str]| {
        let i = if rng.gen_bool(1.0 / 12.0) {
            rng.gen_range(0..options.len())
        } else {
            rng.gen_range(0..3)
        };
        options[i].to_string()
    };
    match field {
        "index" | "time" => pick(
            rng,
            &[
                "0",
                "7",
                "1200345",
                "18446744073709551615",
                "18446744073709551616",
                "007",
                "-1",
                "1.0",
                "1e3",
                "null",
                "\"3\"",
                " 42 ",
            ],
        ),
        "process" => pick(
            rng,
            &[
                "0",
                "3",
                "\"nemesis\"",
                "\"nemo\"",
                "-2",
                "2.5",
                "null",
                "99999999999",
            ],
        ),
        "type" => pick(
            rng,
            &[
                "\"invoke\"",
                "\"ok\"",
                "\"info\"",
                "\"fail\"",
                "\"OK\"",
                "\"o\\u006b\"",
                "1",
            ],
        ),
        "f" => pick(
            rng,
            &[
                "\"read\"",
                "\"write\"",
                "\"cas\"",
                "\"a\\\"b\"",
                "\"é😀\"",
                "\"\"",
                "null",
                "3",
            ],
        ),
        "key" => pick(
            rng,
            &[
                "\"k3\"",
                "12",
                "-4",
                "null",
                "\"\\n\"",
                "1.5",
                "[1]",
                "\"ключ\"",
            ],
        ),
        "value" => pick(
            rng,
            &[
                "null",
                "7",
                "[7,9]",
                "0",
                "-3",
                "-0",
                "2.5",
                "1e400",
                "18446744073709551616",
                "[ 1 , [2, 3] ]",
                "{\"n1\":[\"n2\"]}",
                "\"x\"",
                "\"a\\tb\"",
                "true",
                "\"\u{1F600}\"",
                "[",
                "{\"a\" 1}",
                "nul",
            ],
        ),
        "node" | "error" => pick(rng, &["\"n1\"", "null", "\"time\\\"out\"", "5", "\"\""]),
        _ => pick(rng, &["1", "\"x\"", "[1,{\"y\":null}]", "null"]),
    }
}

fn random_line(rng: &mut ChaCha8Rng) -> String {
    let mut fields = vec![
        "index", "time", "process", "type", "f", "key", "value", "node", "error",
    ];
    fields.retain(|_| rng.gen_bool(0.97));
    if rng.gen_bool(0.1) {
        fields.push("extra");
    }
    if rng.gen_bool(0.05) {
        let dup = fields.first().copied().unwrap_or("index");
        fields.push(dup);
    }
    fields.shuffle(rng);
    let sep = |rng: &mut ChaCha8Rng| [" ", "", "", "", "\t", "  "][rng.gen_range(0..6)];
    let mut line = String::from("{");
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let s1 = sep(rng);
        let s2 = sep(rng);
        let v = value_text(rng, f);
        line.push_str(&format!("{s1}\"{f}\"{s2}:{v}"));
    }
    line.push_str(sep(rng));
    line.push('}');
    match rng.gen_range(0..20) {
        0 => line.push_str(" x"),
        1 => line.push(','),
        2 => {
            let cut = rng.gen_range(0..line.len());
            if !line.is_char_boundary(cut) {
                return line;
            }
            line.truncate(cut);
        }
        _ => {}
    }
    line
}

fn reader_result(line: &str) -> Result<Event, String> {
    let text = format!("{line}\n");
    let mut reader = JsonlReader::new(text.as_bytes(), "d");
    match reader.next() {
        Some(Ok(ev)) => Ok(ev),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no event".into()),
    }
}

/// The first field of the object `line` outside `EVENT_FIELDS`, if any.
fn unknown_field(line: &str) -> Option<String> {
    let map = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line).ok()?;
    map.keys()
        .find(|k| !EVENT_FIELDS.contains(&k.as_str()))
        .cloned()
}

#[test]
fn reader_agrees_with_serde_on_seeded_random_lines() {
    let mut accepted = 0;
    for seed in 0..40u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for i in 0..500 {
            let line = random_line(&mut rng);
            if line.trim().is_empty() {
                continue;
            }
            let serde = serde_json::from_str::<Event>(line.trim())
                .map_err(|e| e.to_string())
                .and_then(|ev| match unknown_field(line.trim()) {
                    Some(field) => Err(format!("unknown field \"{field}\"")),
                    None => Ok(ev),
                });
            let ours = reader_result(&line);
            match (&serde, &ours) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "seed {seed} line {i}: {line}");
                    accepted += 1;
                }
                (Err(a), Err(b)) => assert!(
                    !a.starts_with("unknown field") || b.contains(a.as_str()),
                    "seed {seed} line {i}: {a} but reader {b} for {line}"
                ),
                _ => panic!("seed {seed} line {i}: serde {serde:?} but reader {ours:?} for {line}"),
            }
        }
    }
    assert!(
        accepted > 500,
        "too few valid lines generated to compare: {accepted}"
    );
}

#[test]
fn plain_and_escaped_lines_give_the_same_event() {
    let plain = r#"{"index":3,"time":10,"process":2,"type":"ok","f":"read","key":"k","value":[1,2],"node":"n1","error":"e"}"#;
    let escaped = r#"{"index":3,"time":10,"process":2,"type":"o\u006b","f":"re\u0061d","key":"\u006b","value":[1,2],"node":"n\u0031","error":"\u0065"}"#;
    let a = reader_result(plain);
    let b = reader_result(escaped);
    assert!(a.is_ok(), "{a:?}");
    assert_eq!(a, b);
}
