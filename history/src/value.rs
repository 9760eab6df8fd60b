//! Values: how they compare and how they are shown.
//!
//! A history's values are JSON ([`Value`]), parsed with their numbers' exact text kept
//! (serde_json's `arbitrary_precision`), so nothing is rounded on the way in. Two values
//! are **the same** when their canonical forms are equal ([`ValueKey`]):
//!
//! * an integer (a number written without fraction or exponent) is the same as another
//!   integer of the same value, whatever its size: `18446744073709551616` and
//!   `18446744073709551617` differ, `-0` and `0` are the same;
//! * any other number is a decimal, the same as another decimal of the same exact value
//!   (`1.50` and `1.5e0` are the same), never the same as an integer (`1.0` is not `1`,
//!   as in Clojure, where Jepsen's histories come from);
//! * strings by their characters; arrays element by element; objects by their entries,
//!   in any order; `null`, `true` and `false` only as themselves.
//!
//! The Jepsen EDN importer maps the EDN forms JSON has no word for to one-entry objects
//! whose key starts with `#` ([`TAG_KEYWORD`] and the other `TAG_` constants): a
//! keyword `:a` is `{"#keyword":"a"}`, never the string `"a"`; a set is
//! `{"#set":[...]}` with its elements in canonical order, so `#{1 2}` and `#{2 1}` are
//! the same. [`show`] prints those back in EDN's words.

use crate::event::Value;
use serde_json::Number;
use std::fmt::Write as _;

/// Tag of an EDN keyword: `{"#keyword": "name"}` (`:name`; a namespace stays in the name).
pub const TAG_KEYWORD: &str = "#keyword";
/// Tag of an EDN symbol: `{"#symbol": "name"}`.
pub const TAG_SYMBOL: &str = "#symbol";
/// Tag of an EDN character: `{"#char": "a"}`.
pub const TAG_CHAR: &str = "#char";
/// Tag of an EDN set: `{"#set": [elements in canonical order, without repeats]}`.
pub const TAG_SET: &str = "#set";
/// Tag of an EDN map that is not a plain JSON object (a key other than a string or a
/// keyword, or a string key starting with `:` or `#`): `{"#map": [[key, value], ...]}`
/// with the entries in the canonical order of their keys.
pub const TAG_MAP: &str = "#map";
/// Tag of a number JSON cannot write: `{"#number": "##Inf"}` (also `##-Inf`, `##NaN`),
/// a Clojure ratio `{"#number": "1/2"}` or a BigDecimal `{"#number": "1.5M"}`.
pub const TAG_NUMBER: &str = "#number";

/// The tags above, for recognising a tagged value.
const TAGS: [&str; 6] = [
    TAG_KEYWORD,
    TAG_SYMBOL,
    TAG_CHAR,
    TAG_SET,
    TAG_MAP,
    TAG_NUMBER,
];

/// A tagged value's tag and content, if `v` is one.
pub fn tagged(v: &Value) -> Option<(&'static str, &Value)> {
    let Value::Object(map) = v else { return None };
    if map.len() != 1 {
        return None;
    }
    let (k, inner) = map.iter().next()?;
    TAGS.iter().find(|t| **t == k).map(|t| (*t, inner))
}

/// A one-entry tagged value.
pub fn tag(tag: &str, inner: Value) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(tag.to_string(), inner);
    Value::Object(map)
}

/// A value's identity: two values are the same iff their keys are equal (see the module
/// documentation). Small integers, the common case, need no allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueKey {
    /// `null`.
    Null,
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A string.
    Str(Box<str>),
    /// Anything else, as its canonical text.
    Other(Box<str>),
}

impl ValueKey {
    /// The key of `v`.
    pub fn of(v: &Value) -> ValueKey {
        match v {
            Value::Null => ValueKey::Null,
            Value::Number(n) => match int_of(n) {
                Some(i) => ValueKey::Int(i),
                None => ValueKey::Other(canonical_text(v).into_boxed_str()),
            },
            Value::String(s) => ValueKey::Str(s.as_str().into()),
            other => ValueKey::Other(canonical_text(other).into_boxed_str()),
        }
    }
}

/// The number as a 64-bit integer, if it is an integer literal in range (a literal with
/// a fraction or an exponent never is: it does not parse as one).
fn int_of(n: &Number) -> Option<i64> {
    n.as_i64()
}

/// Whether `a` and `b` are the same value (see the module documentation).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(_), Value::Number(_)) | (Value::Array(_), Value::Array(_)) => {
            ValueKey::of(a) == ValueKey::of(b)
        }
        (Value::Object(_), Value::Object(_)) => ValueKey::of(a) == ValueKey::of(b),
        _ => false,
    }
}

/// The canonical text of `v`: JSON with every number in canonical form and object
/// entries in key order. Equal texts mean the same value.
pub fn canonical_text(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => canonical_number(&n.to_string(), out),
        Value::String(s) => write_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                write_canonical(x, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        // Serialising a string cannot fail; keep the text distinct from other kinds.
        Err(_) => {
            let _ = write!(out, "{s:?}");
        }
    }
}

/// Canonical text of a JSON number literal. An integer becomes its decimal digits with
/// a `-` when negative and not zero; any other number becomes `[-]DIGITSeEXP`, the
/// digits without leading or trailing zeros (`0e0` for zero), which always holds an
/// `e` and so never equals an integer's text.
fn canonical_number(text: &str, out: &mut String) {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let well_formed = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !well_formed(int_part) || !frac_part.is_none_or(well_formed) {
        // Not a number serde_json would produce; keep it distinct and as written.
        out.push('~');
        out.push_str(text);
        return;
    }
    if exponent.is_none() && frac_part.is_none() {
        let digits = int_part.trim_start_matches('0');
        if digits.is_empty() {
            out.push('0');
        } else {
            if negative {
                out.push('-');
            }
            out.push_str(digits);
        }
        return;
    }
    // value = DIGITS × 10^(exp - len(frac)).
    let frac = frac_part.unwrap_or("");
    let mut digits: String = format!("{int_part}{frac}");
    let mut exp: i128 = match exponent {
        None => 0,
        Some(e) => {
            let (sign, mag) = match e.strip_prefix('-') {
                Some(m) => (-1, m),
                None => (1, e.strip_prefix('+').unwrap_or(e)),
            };
            if mag.is_empty() || !well_formed(mag) {
                out.push('~');
                out.push_str(text);
                return;
            }
            let mag = mag.trim_start_matches('0');
            if mag.len() > 30 {
                // Beyond i128; no history has such a number. Kept distinct, as written.
                out.push('~');
                out.push_str(text);
                return;
            }
            sign * mag.parse::<i128>().unwrap_or(0)
        }
    };
    exp -= frac.len() as i128;
    let trimmed = digits.trim_start_matches('0').to_string();
    digits = trimmed;
    let significant = digits.trim_end_matches('0').len();
    exp += (digits.len() - significant) as i128;
    digits.truncate(significant);
    if digits.is_empty() {
        out.push_str("0e0");
        return;
    }
    if negative {
        out.push('-');
    }
    let _ = write!(out, "{digits}e{exp}");
}

/// The longest text [`show`] gives a value before clipping it.
pub const SHOWN_MAX: usize = 160;

/// A value in plain words for explanations and terminals: `null` reads as "nothing",
/// strings are quoted with every control, format (bidi) and other invisible character
/// escaped (`"\u{1b}[31m"`), EDN's tagged forms print as EDN (`:a`, `#{1 2}`), and a value
/// whose text would be longer than [`SHOWN_MAX`] characters is clipped, with its full
/// size in bytes (the whole value stays in the history).
pub fn show(v: &Value) -> String {
    if v.is_null() {
        return "nothing".into();
    }
    let mut out = String::new();
    let complete = render(v, &mut out, SHOWN_MAX);
    if complete {
        return out;
    }
    let size = json_len(v);
    let mut cut = SHOWN_MAX.min(out.len());
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    format!("{out}… ({} bytes, clipped)", group_digits(size))
}

/// A transaction's micro-operations in plain words: `[r 5 → [1 2]; append 5 3]`. Reads
/// show their result when `completed` (`?` otherwise); names given as EDN keywords
/// (`:append`) lose their colon. A value that is not a list of micro-operations is shown
/// as [`show`] shows it.
pub fn show_txn(v: &Value, completed: bool) -> String {
    let Some(mops) = v.as_array() else {
        return show(v);
    };
    let mut parts = Vec::with_capacity(mops.len());
    for m in mops {
        let Some(items) = m.as_array() else {
            return show(v);
        };
        let name = |f: &Value| match f {
            Value::String(s) => Some(escape_text(s).into_owned()),
            other => match tagged(other) {
                Some((TAG_KEYWORD, Value::String(s))) => Some(escape_text(s).into_owned()),
                _ => None,
            },
        };
        let part = match items.as_slice() {
            [f, k, x] => match name(f) {
                Some(f) if f == "r" || f == "read" => {
                    let seen = if completed { show_read(x) } else { "?".into() };
                    format!("{f} {} → {seen}", show(k))
                }
                Some(f) => format!("{f} {} {}", show(k), show(x)),
                None => show(m),
            },
            _ => show(m),
        };
        parts.push(part);
    }
    let text = format!("[{}]", parts.join("; "));
    if text.chars().count() > 4 * SHOWN_MAX {
        return show(v);
    }
    text
}

/// A read's result: `null` is the initial state (an empty list, or no value).
fn show_read(x: &Value) -> String {
    if x.is_null() {
        "nil".into()
    } else {
        show(x)
    }
}

/// `1234567` as `1,234,567`.
pub fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The length of `v`'s compact JSON text in bytes, without building it.
pub fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => 0,
    }
}

/// Renders `v` into `out`, stopping once `out` is longer than `limit`; whether it
/// finished.
fn render(v: &Value, out: &mut String, limit: usize) -> bool {
    if out.len() > limit {
        return false;
    }
    if let Some((t, inner)) = tagged(v) {
        return render_tagged(t, inner, out, limit);
    }
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => quote(s, out, limit),
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !render(x, out, limit) {
                    return false;
                }
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, x)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quote(k, out, limit);
                out.push(':');
                if !render(x, out, limit) {
                    return false;
                }
            }
            out.push('}');
        }
    }
    out.len() <= limit
}

fn render_tagged(t: &str, inner: &Value, out: &mut String, limit: usize) -> bool {
    let name = |out: &mut String, prefix: &str| {
        out.push_str(prefix);
        match inner.as_str() {
            Some(s) => escape_into(s, out, limit),
            None => out.push('?'),
        }
    };
    match t {
        TAG_KEYWORD => name(out, ":"),
        TAG_SYMBOL | TAG_NUMBER => name(out, ""),
        TAG_CHAR => name(out, "\\"),
        TAG_SET => {
            out.push_str("#{");
            for (i, x) in inner.as_array().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if !render(x, out, limit) {
                    return false;
                }
            }
            out.push('}');
        }
        _ => {
            out.push('{');
            for (i, e) in inner.as_array().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let (k, x) = match e.as_array().map(Vec::as_slice) {
                    Some([k, x]) => (k, x),
                    _ => (e, &Value::Null),
                };
                if !render(k, out, limit) {
                    return false;
                }
                out.push(' ');
                if !render(x, out, limit) {
                    return false;
                }
            }
            out.push('}');
        }
    }
    out.len() <= limit
}

/// `s` in double quotes with invisible characters escaped.
fn quote(s: &str, out: &mut String, limit: usize) {
    out.push('"');
    escape_into(s, out, limit);
    out.push('"');
}

/// `s` with every control, format (bidi) and other unprintable character written as a
/// Rust escape (`\u{1b}`, `\u{202e}`), quotes and backslashes escaped; stops a little
/// after `limit` bytes of output.
fn escape_into(s: &str, out: &mut String, limit: usize) {
    for c in s.chars() {
        if out.len() > limit {
            return;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => {
                let _ = write!(out, "{}", c.escape_debug());
            }
        }
    }
}

/// `s` with every control, format (bidi) and unprintable character escaped (`\u{1b}`),
/// for printing text that comes from a history (a key, a node name, an error) where a
/// terminal or a document would otherwise act on it. Printable text is unchanged.
pub fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| {
        let mut e = c.escape_debug();
        e.next() == Some(c) && e.next().is_none() || c == '"' || c == '\'' || c == '\\'
    };
    if s.chars().all(plain) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if plain(c) {
            out.push(c);
        } else {
            let _ = write!(out, "{}", c.escape_debug());
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).expect("json")
    }

    #[test]
    fn integers_compare_exactly_at_any_size() {
        let cases = [
            ("18446744073709551616", "18446744073709551617", false),
            ("18446744073709551616", "18446744073709551616", true),
            ("-9223372036854775809", "-9223372036854775808", false),
            ("-99999999999999999999", "-99999999999999999999", true),
            ("-0", "0", true),
            ("1", "1.0", false),
            ("1.0", "1.00", true),
            ("1.5", "15e-1", true),
            ("1e23", "100000000000000000000000", false),
            ("1e23", "1.0000000000000001e23", false),
            ("1E+2", "100.0", true),
            ("0.0", "-0.0", true),
            (
                "123456789012345678901234567890.5",
                "123456789012345678901234567890.50",
                true,
            ),
            (
                "123456789012345678901234567890.5",
                "123456789012345678901234567890.6",
                false,
            ),
            ("1e400", "1e400", true),
            ("1e400", "1e401", false),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_value(&parse(a), &parse(b)), same, "{a} vs {b}");
            assert_eq!(
                ValueKey::of(&parse(a)) == ValueKey::of(&parse(b)),
                same,
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn big_numbers_inside_arrays_and_objects_compare_exactly() {
        let a = parse(r#"[1, {"k": 18446744073709551616, "j": 2}]"#);
        let b = parse(r#"[1, {"j": 2, "k": 18446744073709551617}]"#);
        let c = parse(r#"[1, {"j": 2, "k": 18446744073709551616}]"#);
        assert!(!same_value(&a, &b));
        assert!(same_value(&a, &c), "objects compare in any key order");
    }

    #[test]
    fn kinds_never_mix() {
        let pairs = [
            (json!("1"), json!(1)),
            (json!("a"), tag(TAG_KEYWORD, json!("a"))),
            (json!("a"), tag(TAG_SYMBOL, json!("a"))),
            (json!([1, 2]), tag(TAG_SET, json!([1, 2]))),
            (json!(null), json!("null")),
            (json!(true), json!("true")),
        ];
        for (a, b) in pairs {
            assert!(!same_value(&a, &b), "{a} vs {b}");
            assert_ne!(ValueKey::of(&a), ValueKey::of(&b));
        }
    }

    #[test]
    fn show_speaks_edn_escapes_and_clips() {
        assert_eq!(show(&Value::Null), "nothing");
        assert_eq!(show(&tag(TAG_KEYWORD, json!("a"))), ":a");
        assert_eq!(show(&tag(TAG_SET, json!([1, 2]))), "#{1 2}");
        assert_eq!(show(&parse("18446744073709551617")), "18446744073709551617");
        assert_eq!(show(&json!("\u{1b}[31mred")), "\"\\u{1b}[31mred\"");
        assert_eq!(show(&json!(["\u{202e}x"])), "[\"\\u{202e}x\"]");
        let big = json!("a".repeat(20_000_000));
        let shown = show(&big);
        assert!(shown.len() < SHOWN_MAX + 60, "{}", shown.len());
        assert!(shown.ends_with("(20,000,002 bytes, clipped)"), "{shown}");
    }

    #[test]
    fn escape_text_leaves_plain_text_alone() {
        assert!(matches!(
            escape_text("n1 é 😀"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(escape_text("k\u{1b}[2J\u{202e}"), "k\\u{1b}[2J\\u{202e}");
    }

    #[test]
    fn transactions_are_shown_as_micro_operations() {
        let v = json!([["append", 3, 2], ["r", 3, [1, 2]]]);
        assert_eq!(show_txn(&v, true), "[append 3 2; r 3 → [1,2]]");
        assert_eq!(show_txn(&v, false), "[append 3 2; r 3 → ?]");
        let edn = json!([[tag(TAG_KEYWORD, json!("r")), 1, null]]);
        assert_eq!(show_txn(&edn, true), "[r 1 → nil]");
        assert_eq!(show_txn(&json!(5), true), "5");
    }
}
