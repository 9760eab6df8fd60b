//! Text from a history, a node or a checker, made fit to show.
//!
//! - **Escaping.** [`visible`] is the one place that decides how a character that would
//!   act on a terminal or a reader instead of being seen is shown: C0 and C1 control
//!   characters (ESC starts the ANSI sequences that colour, move the cursor or fake a CI
//!   log line), DEL, the bidirectional formatting characters (U+202A–U+202E,
//!   U+2066–U+2069, U+200E, U+200F, U+061C: they reorder what is shown, and HTML
//!   escaping leaves them be), the line and paragraph separators, U+FEFF and the
//!   noncharacters U+FFFE and U+FFFF. Each is written as its escape, `\u{1b}`, `\u{202e}`
//!   (`\n`, `\r`, `\t` for those three), as Rust's `{:?}` writes them. Every output edge
//!   uses it: the terminal (the harness's `out` module), `report.md`, `junit.xml` and
//!   `report.html`; [`visible_lines`] keeps line breaks, [`json_visible`] writes the same
//!   characters as JSON escapes (`\u202e`), which keeps the JSON's meaning.
//! - **Clipping.** Long values are clipped to a prefix and their full size, so that a 20 MB
//!   value makes neither a 120 MB report nor a 100 MB terminal line. `history.jsonl` keeps
//!   every value whole; `verdict.json`, the reports and the terminal show the clipped form
//!   (`VERDICT_SCHEMA.md`, "Long values").
//!
//! Clipped text reads `<prefix>… (20,000,000 bytes, clipped)`; a clipped value is the
//! string `<prefix>… (20,000,000 bytes, clipped)` (a string's prefix) or
//! `<prefix>… (20,000,000 bytes of JSON, clipped)` (the prefix of another value's compact
//! JSON). Clipping is idempotent: a clipped text or value is short enough to stay as it is.

use faultline_checkers::{Step, Verdict, Witness, WitnessOp};
pub use faultline_history::value::group_digits;
use faultline_history::value::json_len;
use faultline_history::{Key, Operation, Value};
use std::borrow::Cow;

/// Values longer than this many bytes (a string's UTF-8, another value's compact JSON) are
/// clipped in `verdict.json` and the reports.
pub const VALUE_LIMIT: usize = 1_024;
/// Values longer than this are clipped in hover texts (one per operation of a timeline).
pub const TITLE_VALUE_LIMIT: usize = 128;
/// Characters of a clipped value that are kept.
pub const VALUE_PREFIX: usize = 64;
/// Bytes kept of one line of text: a summary, a step, a reason, an error, a line of an
/// explanation.
pub const LINE_LIMIT: usize = 2_000;
/// Bytes kept of a name: a key, a node.
pub const NAME_LIMIT: usize = 256;

/// Whether `c` is shown escaped by [`visible`].
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}'
    )
}

/// `s` with every character [`is_hidden`] says would act instead of being seen written as
/// its escape (`\u{1b}`, `\u{202e}`, `\n`, `\r`, `\t`). Other text is left as it is
/// (a backslash too: the escapes are meant for a human reader, and text already escaped
/// by Rust's `{:?}` is not escaped twice).
pub fn visible(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// [`visible`] for text of several lines: line breaks (`\n`) are kept, everything else is
/// escaped (a `\r` too, which could rewrite the line it ends).
pub fn visible_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let shown = |c: char| !is_hidden(c) || (keep_newlines && c == '\n');
    if s.chars().all(shown) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            c if shown(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

/// JSON text with the characters [`visible`] escapes written as JSON escapes (`\u202e`),
/// so that printing it hides nothing and it still parses to the same values. `json` must
/// be serde_json's output: raw control characters appear there only as whitespace between
/// tokens (`\n`, `\r`, `\t`), which is kept.
pub fn json_visible(json: &str) -> Cow<'_, str> {
    let shown = |c: char| !is_hidden(c) || matches!(c, '\n' | '\r' | '\t');
    if json.chars().all(shown) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if shown(c) {
            out.push(c);
        } else {
            // Every hidden character is in the Basic Multilingual Plane.
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

/// The witness as shown to a reader: every name (key, node, error, function, label) in
/// its [`visible`] form, in the operations and wherever the checker's sentences (summary,
/// steps) quote it, so that a key holding a line break cannot start a line of its own;
/// the sentences' other characters through [`visible_lines`]. Values need nothing: the
/// checkers show them with Rust's `{:?}`. For display only: `verdict.json` keeps the
/// witness as it was (its JSON escapes hide nothing, [`json_visible`]).
pub fn shown_witness(w: &Witness) -> Witness {
    let mut names: Vec<&str> = w
        .key
        .as_deref()
        .into_iter()
        .chain(w.ops.iter().flat_map(|o| {
            [
                o.op.key.as_ref().map(|k| k.0.as_str()),
                o.op.error.as_deref(),
                o.op.node.as_deref(),
                Some(o.op.f.as_str()),
            ]
            .into_iter()
            .flatten()
        }))
        .filter(|s| s.chars().any(is_hidden))
        .collect();
    // Longest first, so that a name inside a longer one is not replaced in part.
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names.dedup();
    let sentence = |s: &str| -> String {
        let mut s = s.to_string();
        for n in &names {
            if s.contains(n) {
                s = s.replace(n, &visible(n));
            }
        }
        visible_lines(&s).into_owned()
    };
    let name = |s: &str| visible(s).into_owned();
    Witness {
        model: name(&w.model),
        kind: name(&w.kind),
        key: w.key.as_deref().map(name),
        summary: sentence(&w.summary),
        ops: w
            .ops
            .iter()
            .map(|o| WitnessOp {
                label: name(&o.label),
                op: Operation {
                    f: name(&o.op.f),
                    key: o.op.key.as_ref().map(|k| Key(name(&k.0))),
                    node: o.op.node.as_deref().map(name),
                    error: o.op.error.as_deref().map(name),
                    ..o.op.clone()
                },
            })
            .collect(),
        steps: w
            .steps
            .iter()
            .map(|s| Step {
                relation: s.relation.as_deref().map(name),
                from: s.from.as_deref().map(name),
                to: s.to.as_deref().map(name),
                text: sentence(&s.text),
            })
            .collect(),
        minimality: w.minimality,
    }
}

/// The verdict as shown to a reader: [`shown_witness`], or the reason's lines and the
/// undecided keys through [`visible`].
pub fn shown_verdict(v: &Verdict) -> Verdict {
    match v {
        Verdict::Valid => Verdict::Valid,
        Verdict::Invalid { witness } => Verdict::Invalid {
            witness: Box::new(shown_witness(witness)),
        },
        Verdict::Unknown { reason, undecided } => Verdict::Unknown {
            reason: visible_lines(reason).into_owned(),
            undecided: undecided.iter().map(|k| visible(k).into_owned()).collect(),
        },
    }
}

/// The longest prefix of `s` of at most `bytes` bytes that ends on a character boundary.
fn prefix_bytes(s: &str, bytes: usize) -> &str {
    let mut end = bytes.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The first `chars` characters of `s`.
fn prefix_chars(s: &str, chars: usize) -> &str {
    match s.char_indices().nth(chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `s` whole when at most `max` bytes, else its first `max` bytes, `…` and its size.
pub fn clip_text(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!(
            "{}… ({} bytes, clipped)",
            prefix_bytes(s, max),
            group_digits(s.len())
        ))
    }
}

/// Every line of `s` through [`clip_text`].
pub fn clip_lines(s: &str, max: usize) -> Cow<'_, str> {
    if s.lines().all(|l| l.len() <= max) {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&clip_text(line, max));
    }
    Cow::Owned(out)
}

/// `v` whole when its size is at most `max` bytes, else a string holding its first
/// [`VALUE_PREFIX`] characters and its size (see the module documentation).
pub fn clip_value(v: &Value, max: usize) -> Cow<'_, Value> {
    match v {
        Value::String(s) if s.len() <= max => Cow::Borrowed(v),
        Value::String(s) => Cow::Owned(Value::String(format!(
            "{}… ({} bytes, clipped)",
            prefix_chars(s, VALUE_PREFIX),
            group_digits(s.len())
        ))),
        Value::Null | Value::Bool(_) => Cow::Borrowed(v),
        _ => {
            let size = json_len(v);
            if size <= max {
                return Cow::Borrowed(v);
            }
            // Only the prefix is rendered: serialise into a bounded buffer.
            let mut text = Vec::with_capacity(VALUE_PREFIX * 4);
            let _ = serde_json::to_writer(Bounded(&mut text, VALUE_PREFIX * 4), v);
            let text = String::from_utf8_lossy(&text);
            Cow::Owned(Value::String(format!(
                "{}… ({} bytes of JSON, clipped)",
                prefix_chars(&text, VALUE_PREFIX),
                group_digits(size)
            )))
        }
    }
}

/// `v` as compact JSON when that is at most `max` bytes, else the text of its clipped
/// form (without the quotes of a JSON string).
pub fn value_text(v: &Value, max: usize) -> String {
    match clip_value(v, max) {
        Cow::Borrowed(v) => v.to_string(),
        Cow::Owned(Value::String(s)) => s,
        Cow::Owned(other) => other.to_string(),
    }
}

/// Keeps the first `.1` bytes written, then refuses more (which ends serialisation).
struct Bounded<'a>(&'a mut Vec<u8>, usize);

impl std::io::Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.1.saturating_sub(self.0.len());
        if room == 0 {
            return Err(std::io::Error::other("enough"));
        }
        let n = room.min(buf.len());
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `op` with its values clipped at `value_limit` bytes, its key and node at
/// [`NAME_LIMIT`] and its error at [`LINE_LIMIT`].
pub fn clip_op(op: &Operation, value_limit: usize) -> Cow<'_, Operation> {
    let argument = clip_value(&op.argument, value_limit);
    let result = clip_value(&op.result, value_limit);
    let key = op.key.as_ref().map(|k| clip_text(&k.0, NAME_LIMIT));
    let node = op.node.as_deref().map(|n| clip_text(n, NAME_LIMIT));
    let error = op.error.as_deref().map(|e| clip_text(e, LINE_LIMIT));
    let owned = |c: &Option<Cow<'_, str>>| matches!(c, Some(Cow::Owned(_)));
    if matches!(argument, Cow::Borrowed(_))
        && matches!(result, Cow::Borrowed(_))
        && !owned(&key)
        && !owned(&node)
        && !owned(&error)
    {
        return Cow::Borrowed(op);
    }
    Cow::Owned(Operation {
        argument: argument.into_owned(),
        result: result.into_owned(),
        key: key.map(|k| Key(k.into_owned())),
        node: node.map(Cow::into_owned),
        error: error.map(Cow::into_owned),
        ..op.clone()
    })
}

/// `w` with every value, name and line clipped.
pub fn clip_witness(w: &Witness) -> Witness {
    Witness {
        model: w.model.clone(),
        kind: clip_text(&w.kind, NAME_LIMIT).into_owned(),
        key: w
            .key
            .as_deref()
            .map(|k| clip_text(k, NAME_LIMIT).into_owned()),
        summary: clip_lines(&w.summary, LINE_LIMIT).into_owned(),
        ops: w
            .ops
            .iter()
            .map(|o| WitnessOp {
                label: clip_text(&o.label, NAME_LIMIT).into_owned(),
                op: clip_op(&o.op, VALUE_LIMIT).into_owned(),
            })
            .collect(),
        steps: w
            .steps
            .iter()
            .map(|s| Step {
                relation: s.relation.clone(),
                from: s.from.clone(),
                to: s.to.clone(),
                text: clip_lines(&s.text, LINE_LIMIT).into_owned(),
            })
            .collect(),
        minimality: w.minimality,
    }
}

/// `v` with its witness or its reason and undecided keys clipped.
pub fn clip_verdict(v: &Verdict) -> Verdict {
    match v {
        Verdict::Valid => Verdict::Valid,
        Verdict::Invalid { witness } => Verdict::Invalid {
            witness: Box::new(clip_witness(witness)),
        },
        Verdict::Unknown { reason, undecided } => Verdict::Unknown {
            reason: clip_lines(reason, LINE_LIMIT).into_owned(),
            undecided: undecided
                .iter()
                .map(|k| clip_text(k, NAME_LIMIT).into_owned())
                .collect(),
        },
    }
}

/// `bytes` without ANSI terminal escape sequences (colours, cursor moves, window
/// titles): CSI `ESC [ … final`, OSC `ESC ] … BEL` or `ESC ] … ESC \`, and any other
/// two-byte `ESC x`. A sequence cut short at the end is dropped. Everything else is kept
/// byte for byte (node logs are stored this way, so they read as plain text).
pub fn strip_ansi(bytes: &[u8]) -> Vec<u8> {
    const ESC: u8 = 0x1b;
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != ESC {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'[') => {
                // Parameters and intermediates, then one final byte in 0x40..=0x7e.
                let mut j = i + 2;
                while j < bytes.len() && !(0x40..=0x7e).contains(&bytes[j]) {
                    j += 1;
                }
                i = j + 1;
            }
            Some(b']') => {
                let mut j = i + 2;
                loop {
                    match bytes.get(j) {
                        None => break,
                        Some(0x07) => {
                            j += 1;
                            break;
                        }
                        Some(&ESC) if bytes.get(j + 1) == Some(&b'\\') => {
                            j += 2;
                            break;
                        }
                        Some(_) => j += 1,
                    }
                }
                i = j;
            }
            Some(_) => i += 2,
            None => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn controls_and_bidi_characters_are_shown_as_escapes() {
        assert_eq!(visible("plain é ✓"), "plain é ✓");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
        assert_eq!(visible("k\u{1b}[31mred"), "k\\u{1b}[31mred");
        assert_eq!(visible("a\u{202e}b\u{2066}c"), "a\\u{202e}b\\u{2066}c");
        assert_eq!(
            visible("a\nb\r\tc\u{7f}\u{85}"),
            "a\\nb\\r\\tc\\u{7f}\\u{85}"
        );
        assert_eq!(visible_lines("a\nb\rc"), "a\nb\\rc");
        // The same escapes as Rust's {:?}, so the two agree on a value.
        for c in [
            '\u{1b}', '\u{202e}', '\u{200f}', '\u{61c}', '\u{2028}', '\u{feff}',
        ] {
            let s = c.to_string();
            assert_eq!(format!("\"{}\"", visible(&s)), format!("{s:?}"), "{c:?}");
        }
        let json =
            serde_json::to_string(&json!({"k": "a\u{202e}\u{1b}\u{7f}\n"})).unwrap_or_default();
        let shown = json_visible(&json);
        assert!(!shown.chars().any(is_hidden), "{shown}");
        assert_eq!(
            serde_json::from_str::<Value>(&shown).ok(),
            serde_json::from_str::<Value>(&json).ok()
        );
    }

    #[test]
    fn a_shown_witness_escapes_names_even_inside_the_checkers_sentences() {
        let key = "k\n::error::x\u{1b}[31m";
        let op = Operation {
            id: 0,
            process: 1,
            f: "read".into(),
            key: Some(Key(key.into())),
            argument: Value::Null,
            result: json!("v\u{202e}"),
            outcome: faultline_history::Outcome::Ok,
            invoke_index: 0,
            invoke_time: 0,
            complete_index: Some(1),
            complete_time: Some(1),
            node: Some("n\u{7}".into()),
            error: None,
        };
        let w = Witness {
            model: "linearizable".into(),
            kind: "stale-read".into(),
            key: Some(key.into()),
            summary: format!("A read from {key}\nwhich is stale"),
            ops: vec![WitnessOp {
                label: "A".into(),
                op,
            }],
            steps: vec![Step {
                relation: None,
                from: None,
                to: None,
                text: format!("key {key} \u{2066}"),
            }],
            minimality: faultline_checkers::Minimality::ByConstruction,
        };
        let text = shown_witness(&w).render_text();
        assert!(!text.chars().any(|c| is_hidden(c) && c != '\n'), "{text:?}");
        assert!(
            text.lines().all(|l| !l.starts_with("::error::")),
            "a key cannot start a line: {text}"
        );
        assert!(
            text.contains("A read from k\\n::error::x\\u{1b}[31m\nwhich is stale"),
            "{text}"
        );
        assert!(text.contains("\"v\\u{202e}\""), "{text}");
    }

    #[test]
    fn sizes_are_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_000), "1,000");
        assert_eq!(group_digits(20_000_000), "20,000,000");
    }

    #[test]
    fn long_text_keeps_a_prefix_and_its_size() {
        assert_eq!(clip_text("short", 10), "short");
        assert_eq!(clip_text("abcdefghij", 4), "abcd… (10 bytes, clipped)");
        // Never cuts a character in two.
        assert_eq!(clip_text("ééé", 3), "é… (6 bytes, clipped)");
        let lines = clip_lines("ok\nxxxxxxxx\nok", 4);
        assert_eq!(lines, "ok\nxxxx… (8 bytes, clipped)\nok");
        let once = clip_text(&"a".repeat(5_000), 100).into_owned();
        assert_eq!(once.len(), 126);
        assert_eq!(clip_text(&once, 200), once, "idempotent");
    }

    #[test]
    fn long_values_become_a_prefix_and_their_size() {
        let big = json!("a".repeat(20_000_000));
        let c = clip_value(&big, VALUE_LIMIT).into_owned();
        assert_eq!(
            c,
            json!(format!("{}… (20,000,000 bytes, clipped)", "a".repeat(64)))
        );
        assert_eq!(clip_value(&c, VALUE_LIMIT).into_owned(), c, "idempotent");
        let list = Value::Array((0..10_000).map(|i| json!(i)).collect());
        let c = clip_value(&list, VALUE_LIMIT).into_owned();
        let s = c.as_str().unwrap_or_default();
        assert!(s.starts_with("[0,1,2,3,"), "{s}");
        assert!(s.ends_with("… (48,891 bytes of JSON, clipped)"), "{s}");
        for small in [
            json!(7),
            json!("x"),
            json!(null),
            json!([1, 2]),
            json!({"a": 1}),
        ] {
            assert!(matches!(clip_value(&small, VALUE_LIMIT), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn operations_keep_their_shape_with_values_clipped() {
        let op = Operation {
            id: 3,
            process: 1,
            f: "write".into(),
            key: Some(Key("k".repeat(1_000))),
            argument: json!("v".repeat(5_000)),
            result: json!("v".repeat(5_000)),
            outcome: faultline_history::Outcome::Ok,
            invoke_index: 6,
            invoke_time: 10,
            complete_index: Some(7),
            complete_time: Some(20),
            node: Some("n1".into()),
            error: None,
        };
        let c = clip_op(&op, VALUE_LIMIT);
        assert!(c.describe().len() < 1_000, "{}", c.describe());
        assert_eq!((c.id, c.process, c.complete_time), (3, 1, Some(20)));
        assert!(c
            .key
            .as_ref()
            .is_some_and(|k| k.0.ends_with("(1,000 bytes, clipped)")));
        let small = Operation {
            key: None,
            argument: json!(1),
            result: json!(1),
            ..op
        };
        assert!(matches!(clip_op(&small, VALUE_LIMIT), Cow::Borrowed(_)));
    }

    #[test]
    fn ansi_sequences_are_stripped_from_logs() {
        let cases: [(&[u8], &[u8]); 7] = [
            (
                b"\x1b[2m2026-12-05T00:00:00Z\x1b[0m \x1b[32m INFO\x1b[0m raft: ready",
                b"2026-12-05T00:00:00Z  INFO raft: ready",
            ),
            (b"plain text\n", b"plain text\n"),
            (b"\x1b[1;31mred\x1b[m", b"red"),
            (b"\x1b]0;title\x07after", b"after"),
            (b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", b"link"),
            (b"cut \x1b[3", b"cut "),
            (b"\x1bMx\xffy", b"x\xffy"),
        ];
        for (input, want) in cases {
            assert_eq!(
                strip_ansi(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
