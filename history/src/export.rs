//! Writers of other tools' formats, so that Knossos, Elle and Porcupine can read a
//! faultline history: Jepsen EDN (one operation map per line) and Porcupine's Jepsen etcd
//! log lines. Each is the inverse of its importer ([`crate::import`]): exporting then
//! importing gives the same events (the Porcupine log keeps no index or time: events are
//! numbered by position again).
//!
//! Values are written one-to-one: numbers exactly as their text (integers of any size,
//! decimals as written), strings with EDN escapes, arrays as vectors, objects as maps
//! (a key `":k"` as the keyword `:k`, any other as a string), and the tagged values of
//! [`crate::value`] as the EDN forms they came from (`{"#keyword":"a"}` is `:a`,
//! `{"#set":[…]}` is `#{…}`, `{"#number":"1.5M"}` is `1.5M`). What EDN cannot say so that
//! it reads back the same (an object key starting with `#`, a keyword that is not a
//! valid EDN name) is refused with the event's index, never written approximately.

use crate::event::{Event, EventType, Process, Value};
use crate::value::{tagged, TAG_CHAR, TAG_KEYWORD, TAG_MAP, TAG_NUMBER, TAG_SET, TAG_SYMBOL};
use crate::History;
use std::fmt::Write as _;
use std::io::Write;
use thiserror::Error;

/// Why a history could not be exported.
#[derive(Debug, Error)]
pub enum ExportError {
    /// Writing failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    /// An event the format cannot represent so that it reads back the same.
    #[error("event {index}: {reason}")]
    Unrepresentable {
        /// The event's index.
        index: u64,
        /// What cannot be written, and why.
        reason: String,
    },
}

/// How keyed client operations are written in EDN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyStyle {
    /// `jepsen.independent` tuples (`:value [k v]`) when every client event has a key,
    /// else a `:key` field: what Knossos's and Elle's independent checkers read.
    #[default]
    Auto,
    /// Always `[k v]` tuples (every client event must have a key).
    Tuples,
    /// Always a `:key` field.
    Field,
}

/// Writes `history` as Jepsen EDN, one operation map per line.
pub fn write_edn<W: Write>(
    mut out: W,
    history: &History,
    keys: KeyStyle,
) -> Result<(), ExportError> {
    let client = |e: &&Event| matches!(e.process, Process::Client(_));
    let all_keyed = history
        .events
        .iter()
        .filter(client)
        .all(|e| e.key.is_some())
        && history
            .events
            .iter()
            .any(|e| matches!(e.process, Process::Client(_)));
    let tuples = match keys {
        KeyStyle::Auto => all_keyed,
        KeyStyle::Tuples => true,
        KeyStyle::Field => false,
    };
    let mut line = String::new();
    for ev in &history.events {
        line.clear();
        edn_event(ev, tuples, &mut line).map_err(|reason| ExportError::Unrepresentable {
            index: ev.index,
            reason,
        })?;
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

fn edn_event(ev: &Event, tuples: bool, out: &mut String) -> Result<(), String> {
    let _ = write!(
        out,
        "{{:index {}, :time {}, :type {}, :process ",
        ev.index,
        ev.time,
        type_keyword(ev.kind)
    );
    match ev.process {
        Process::Client(p) => {
            let _ = write!(out, "{p}");
        }
        Process::Nemesis => out.push_str(":nemesis"),
    }
    out.push_str(", :f ");
    name_or_string(&ev.f, out);
    let client = matches!(ev.process, Process::Client(_));
    out.push_str(", :value ");
    match (&ev.key, tuples && client) {
        (Some(k), true) => {
            out.push('[');
            key_form(&k.0, out);
            out.push(' ');
            edn_value(&ev.value, out)?;
            out.push(']');
        }
        (None, true) => {
            return Err(
                "a client operation without a key, in a history exported as [key value] tuples"
                    .into(),
            )
        }
        (key, false) => {
            edn_value(&ev.value, out)?;
            if let Some(k) = key {
                out.push_str(", :key ");
                key_form(&k.0, out);
            }
        }
    }
    if let Some(n) = &ev.node {
        out.push_str(", :node ");
        edn_string(n, out);
    }
    if let Some(e) = &ev.error {
        out.push_str(", :error ");
        name_or_string(e, out);
    }
    out.push('}');
    Ok(())
}

fn type_keyword(kind: EventType) -> &'static str {
    match kind {
        EventType::Invoke => ":invoke",
        EventType::Ok => ":ok",
        EventType::Fail => ":fail",
        EventType::Info => ":info",
    }
}

/// Whether `s` can be written as the EDN keyword `:s` (or symbol `s`) and read back as
/// the same name.
pub fn is_edn_name(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let special = |c: char| matches!(c, '*' | '!' | '_' | '?' | '<' | '>' | '=');
    (first.is_ascii_alphabetic() || special(first))
        && chars
            .all(|c| c.is_ascii_alphanumeric() || special(c) || matches!(c, '+' | '-' | '.' | '/'))
}

/// A keyword when `s` is a plain name (`:read`, `:timed-out`), else a string.
fn name_or_string(s: &str, out: &mut String) {
    if is_edn_name(s) {
        out.push(':');
        out.push_str(s);
    } else {
        edn_string(s, out);
    }
}

/// A key: an integer when it is one's canonical decimal text, the keyword `:k` for a
/// key `":k"` (what the importer makes of a keyword), else a string.
fn key_form(k: &str, out: &mut String) {
    let digits = k.strip_prefix('-').unwrap_or(k);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && k != "-0"
        && k.parse::<i64>().is_ok();
    if canonical {
        out.push_str(k);
    } else if let Some(name) = k.strip_prefix(':').filter(|n| is_edn_name(n)) {
        out.push(':');
        out.push_str(name);
    } else {
        edn_string(k, out);
    }
}

/// `s` as an EDN string literal.
fn edn_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value as the EDN form the importer reads back as the same value.
pub fn edn_value(v: &Value, out: &mut String) -> Result<(), String> {
    if let Some((tag, inner)) = tagged(v) {
        return edn_tagged(tag, inner, out);
    }
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => edn_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                edn_value(x, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, x)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match k.strip_prefix(':') {
                    Some(name) if is_edn_name(name) => {
                        out.push(':');
                        out.push_str(name);
                    }
                    Some(_) => {
                        return Err(format!(
                            "the map key {k:?} is not a valid EDN keyword, and a string key starting with ':' reads back as another value"
                        ))
                    }
                    None if k.starts_with('#') => {
                        return Err(format!(
                            "the map key {k:?} starts with '#': EDN has no map that reads back as this value"
                        ))
                    }
                    None => edn_string(k, out),
                }
                out.push(' ');
                edn_value(x, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn edn_tagged(tag: &str, inner: &Value, out: &mut String) -> Result<(), String> {
    let text = || {
        inner
            .as_str()
            .ok_or_else(|| format!("a {tag} value whose content is not a string"))
    };
    match tag {
        TAG_KEYWORD | TAG_SYMBOL => {
            let name = text()?;
            if !is_edn_name(name) {
                return Err(format!("{name:?} is not a name EDN can write as a {tag}"));
            }
            if tag == TAG_KEYWORD {
                out.push(':');
            }
            out.push_str(name);
        }
        TAG_NUMBER => out.push_str(text()?),
        TAG_CHAR => {
            let s = text()?;
            let mut chars = s.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(format!("a character value holding {s:?}"));
            };
            match c {
                '\n' => out.push_str("\\newline"),
                ' ' => out.push_str("\\space"),
                '\t' => out.push_str("\\tab"),
                '\r' => out.push_str("\\return"),
                '\u{c}' => out.push_str("\\formfeed"),
                '\u{8}' => out.push_str("\\backspace"),
                c if c.is_ascii_graphic() => {
                    out.push('\\');
                    out.push(c);
                }
                c if (c as u32) <= 0xFFFF => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    return Err(format!(
                        "the character U+{:X} is outside what an EDN character literal can write",
                        c as u32
                    ))
                }
            }
        }
        TAG_SET => {
            out.push_str("#{");
            for (i, x) in inner.as_array().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                edn_value(x, out)?;
            }
            out.push('}');
        }
        TAG_MAP => {
            out.push('{');
            for (i, e) in inner.as_array().into_iter().flatten().enumerate() {
                let Some([k, x]) = e.as_array().map(Vec::as_slice) else {
                    return Err("a #map entry that is not a [key value] pair".into());
                };
                if i > 0 {
                    out.push_str(", ");
                }
                edn_value(k, out)?;
                out.push(' ');
                edn_value(x, out)?;
            }
            out.push('}');
        }
        other => return Err(format!("unknown tag {other}")),
    }
    Ok(())
}

/// Writes `history` as Porcupine's Jepsen etcd log
/// (`INFO  jepsen.util - 0 :invoke :read nil`), one line per event. Only a single
/// register (no keys) can be written; index and time are not kept (events are numbered
/// by position when read back). A `fail` cas reads back as a mismatch, so one with
/// another error, or none, is refused, as is an error that is not a plain name.
pub fn write_porcupine<W: Write>(mut out: W, history: &History) -> Result<(), ExportError> {
    let mut line = String::new();
    for ev in &history.events {
        line.clear();
        porcupine_line(ev, &mut line).map_err(|reason| ExportError::Unrepresentable {
            index: ev.index,
            reason,
        })?;
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

fn porcupine_line(ev: &Event, out: &mut String) -> Result<(), String> {
    if let Some(k) = &ev.key {
        return Err(format!(
            "key {:?}: Porcupine's etcd log has one register and no keys (export as edn instead)",
            k.0
        ));
    }
    if !is_edn_name(&ev.f) {
        return Err(format!("the function {:?} is not a keyword name", ev.f));
    }
    out.push_str("INFO  jepsen.util - ");
    match ev.process {
        Process::Client(p) => {
            let _ = write!(out, "{p}");
        }
        Process::Nemesis => out.push_str(":nemesis"),
    }
    let _ = write!(out, "\t{}\t:{}\t", type_keyword(ev.kind), ev.f);
    let completion_err = matches!(ev.kind, EventType::Fail | EventType::Info);
    let is_keyword = tagged(&ev.value).is_some_and(|(t, _)| t == TAG_KEYWORD);
    let failed_cas = ev.kind == EventType::Fail && ev.f == "cas";
    match (&ev.error, ev.kind) {
        (Some(_), EventType::Invoke) => return Err("an invoke with an error".into()),
        (Some(e), _) if !is_edn_name(e) => {
            return Err(format!("the error {e:?} is not a keyword name"))
        }
        (Some(e), _) if failed_cas && e != "mismatch" => {
            return Err(format!(
            "a failed cas with error {e:?}: Porcupine's log reads every failed cas as a mismatch"
        ))
        }
        (None, _) if failed_cas => {
            return Err(
                "a failed cas without error: Porcupine's log reads every failed cas as a mismatch"
                    .into(),
            )
        }
        (None, _) if completion_err && is_keyword => {
            return Err("a keyword value of a fail or info reads back as its error".into())
        }
        _ => {}
    }
    match (&ev.error, &ev.value) {
        (Some(e), Value::Null) if completion_err && !failed_cas => {
            out.push(':');
            out.push_str(e);
        }
        (Some(e), v) => {
            edn_value(v, out)?;
            out.push_str(" :");
            out.push_str(e);
        }
        (None, v) => edn_value(v, out)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edn(v: Value) -> String {
        let mut s = String::new();
        edn_value(&v, &mut s).expect("writable");
        s
    }

    #[test]
    fn values_are_written_as_their_edn_forms() {
        let cases = [
            (json!(null), "nil"),
            (json!([1, "a\"b\n", true]), "[1 \"a\\\"b\\n\" true]"),
            (json!({":k": 1, "s": null}), "{:k 1, \"s\" nil}"),
            (json!({"#keyword": "timed-out"}), ":timed-out"),
            (json!({"#set": [1, 2]}), "#{1 2}"),
            (json!({"#number": "1.5M"}), "1.5M"),
            (json!({"#char": " "}), "\\space"),
            (json!({"#map": [[[1], 2]]}), "{[1] 2}"),
        ];
        for (v, want) in cases {
            assert_eq!(edn(v.clone()), want, "{v}");
        }
        let big: Value = serde_json::from_str("18446744073709551617").expect("parses");
        assert_eq!(edn(big), "18446744073709551617");
        let mut s = String::new();
        assert!(edn_value(&json!({"#x": 1, "y": 2}), &mut s).is_err());
        assert!(edn_value(&json!({"#keyword": "a b"}), &mut s).is_err());
    }

    #[test]
    fn names_and_keys() {
        assert!(is_edn_name("timed-out") && is_edn_name("a/b") && is_edn_name("cas"));
        assert!(!is_edn_name("") && !is_edn_name("1a") && !is_edn_name("a b"));
        let key = |k: &str| {
            let mut s = String::new();
            key_form(k, &mut s);
            s
        };
        assert_eq!(key("5"), "5");
        assert_eq!(key("05"), "\"05\"");
        assert_eq!(key("-0"), "\"-0\"");
        assert_eq!(key(":x"), ":x");
        assert_eq!(key("k1"), "\"k1\"");
        assert_eq!(key("99999999999999999999"), "\"99999999999999999999\"");
    }
}
