//! Porcupine's Jepsen etcd logs (`test_data/jepsen/etcd_*.log`) as faultline events.
//!
//! Each non-blank line is a Jepsen log line
//! `INFO  jepsen.util - <process> <type> <f> <value> [<error>]`, fields separated by tabs
//! or runs of spaces, where `<process>` is an integer or `:nemesis`, `<type>` and `<f>`
//! are keywords and the rest is one or two EDN forms. Shapes met in the 103 logs:
//!
//! | line | event |
//! |---|---|
//! | `:invoke :read nil`, `:invoke :write 3`, `:invoke :cas [1 2]` | invoke with that value |
//! | `:ok :read nil` / `:ok :read 3` | ok read of nothing (the register starts absent) / of 3 |
//! | `:ok :write 3`, `:ok :cas [1 2]` | ok |
//! | `:fail :cas [1 2]` | fail, error `"mismatch"` (the compare was made and failed) |
//! | `:fail :read :timed-out` | fail with error `"timed-out"`, observing nothing |
//! | `:info :write :timed-out`, `:info :cas :timed-out` | info with error `"timed-out"` |
//!
//! A keyword in place of the value of a `fail` or `info` is its error (the value is then
//! `null`); a keyword after the value is the error too. Index and time are the event's
//! position. A register that was never written reads as `null`, faultline's own meaning,
//! so `meta["nil_reads"]` is not set. Any other line shape is an error naming the line.

use super::edn::{Edn, Reader};
use super::META_IMPORTED_FROM;
use crate::error::HistoryError;
use crate::event::{Event, EventType, Process, Value};
use crate::History;

/// Imports a Porcupine etcd log from `text`.
pub(crate) fn import(text: &str, name: &str) -> Result<History, HistoryError> {
    let mut history = History::default();
    history
        .meta
        .insert(META_IMPORTED_FROM.into(), "porcupine-etcd".into());
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let position = history.events.len() as u64;
        let ev = parse_line(line, position).map_err(|m| HistoryError::parse(name, line_no, m))?;
        history.events.push(ev);
    }
    Ok(history)
}

/// Splits off the next whitespace-separated field.
fn field(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

fn expect_word<'a>(s: &'a str, word: &str, what: &str) -> Result<&'a str, String> {
    match field(s) {
        Some((w, rest)) if w == word => Ok(rest),
        Some((w, _)) => Err(format!("expected {what}, found {w:?}")),
        None => Err(format!("expected {what}, found the end of the line")),
    }
}

fn parse_line(line: &str, position: u64) -> Result<Event, String> {
    const SHAPE: &str = "a Jepsen log line `INFO jepsen.util - <process> <type> <f> <value>`";
    let rest = expect_word(line, "INFO", SHAPE)?;
    let rest = expect_word(rest, "jepsen.util", "`jepsen.util` after INFO")?;
    let rest = expect_word(rest, "-", "`-` after jepsen.util")?;
    let (proc_text, rest) = field(rest).ok_or("expected a process after `-`")?;
    let process = match proc_text {
        ":nemesis" => Process::Nemesis,
        p => p.parse::<u64>().map(Process::Client).map_err(|_| {
            format!("expected the process to be a non-negative integer or :nemesis, found {p:?}")
        })?,
    };
    let (type_text, rest) = field(rest).ok_or("expected a type (:invoke, :ok, :fail, :info)")?;
    let kind = match type_text {
        ":invoke" => EventType::Invoke,
        ":ok" => EventType::Ok,
        ":fail" => EventType::Fail,
        ":info" => EventType::Info,
        t => {
            return Err(format!(
                "expected the type to be :invoke, :ok, :fail or :info, found {t:?}"
            ))
        }
    };
    let (f_text, rest) = field(rest).ok_or("expected a function such as :read after the type")?;
    let f = f_text
        .strip_prefix(':')
        .filter(|f| !f.is_empty())
        .ok_or_else(|| {
            format!("expected the function to be a keyword such as :read, found {f_text:?}")
        })?;
    let forms = Reader::new(rest, "")
        .read_all()
        .map_err(|e| format!("cannot read the value: {}", strip_location(&e)))?;
    let completion_error = |e: &Edn<'_>| match (kind, e) {
        (EventType::Fail | EventType::Info, Edn::Keyword(k)) => Some(k.to_string()),
        _ => None,
    };
    let (value, mut error) = match forms.as_slice() {
        [] => return Err("expected a value after the function (nil for none)".into()),
        [only] => match completion_error(only) {
            Some(e) => (Value::Null, Some(e)),
            None => (only.to_json(), None),
        },
        [v, Edn::Keyword(e)] if kind != EventType::Invoke => (v.to_json(), Some(e.to_string())),
        [_, other, ..] => {
            return Err(format!(
                "expected one value (and at most an error keyword) after the function, found {} after it",
                other.describe()
            ))
        }
    };
    if kind == EventType::Fail && f == "cas" && error.is_none() {
        error = Some("mismatch".into());
    }
    Ok(Event {
        index: position,
        time: position,
        process,
        kind,
        f: f.to_string(),
        key: None,
        value,
        node: None,
        error,
    })
}

/// The message of a parse error without its `file:line:` prefix.
fn strip_location(e: &HistoryError) -> String {
    match e {
        HistoryError::Parse { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
