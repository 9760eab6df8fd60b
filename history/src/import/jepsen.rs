//! Jepsen EDN histories (and Porcupine's kv EDN lines) as faultline events.
//!
//! The input is a sequence of EDN maps, one per line, or one vector (or list) of maps,
//! possibly pretty-printed across lines; both may be mixed. Each map is one event:
//!
//! | field | meaning |
//! |---|---|
//! | `:type` | `:invoke`, `:ok`, `:fail` or `:info` (required) |
//! | `:f` | the function (required) |
//! | `:process` | a non-negative integer or `:nemesis` (required) |
//! | `:value` | any EDN, converted to JSON (default `nil`) |
//! | `:index` | optional; must increase; when absent the previous index + 1 |
//! | `:time` | optional nanoseconds; when absent the event's position |
//! | `:key`, `:node`, `:error` | optional |
//!
//! Other fields are ignored. Two flavours are recognised after reading all events:
//!
//! * **Porcupine kv**: every client event carries `:key` and every client `:f` is
//!   `get`, `put` or `append`. Then `get` becomes `read`, `put` becomes `write`, and
//!   `meta["initial"]` is `""` (each key starts as the empty string).
//! * **Independent keys** (`jepsen.independent`): no client event carries `:key`, and
//!   every client invoke and `ok` completion has a `[k v]` value whose `k` is an integer
//!   or a string (or keyword), where for a `cas` `v` is itself a two-element vector. A
//!   plain register history never passes this rule: its read invokes carry `nil`, its
//!   reads return scalars and its cas values `[old new]` have a scalar second element.
//!   Then each `[k v]` becomes `key = k`, `value = v`; `fail` and `info` completions
//!   whose value is not a tuple keep their value and take the key of their invoke.
//!   [`Independent::On`] and [`Independent::Off`] force the choice for events without
//!   `:key` (a kv-flavoured history is never split).
//!
//! Failed operations stay in the history as `fail` with the error they carry (never
//! `"mismatch"`: Jepsen does not say a compare was made). Unless
//! [`ImportOptions::nil_reads_unknown`] is off, `meta["nil_reads"]` is `"unknown"`
//! (Knossos's semantics: an `:ok` read of `nil` observed nothing); the kv flavour never
//! sets it, as its reads return strings.

use super::edn::{Edn, Reader};
use super::{ImportOptions, Independent, META_IMPORTED_FROM, META_INDEPENDENT};
use crate::error::HistoryError;
use crate::event::{Event, EventType, Key, Process, Value};
use crate::{History, META_INITIAL, META_NIL_READS};

/// Imports a Jepsen EDN history (or Porcupine kv lines) from `text`.
pub(crate) fn import(
    text: &str,
    name: &str,
    opts: &ImportOptions,
) -> Result<History, HistoryError> {
    let (mut events, lines) = read_events(text, name)?;
    let client = |e: &&Event| matches!(e.process, Process::Client(_));
    let kv = events
        .iter()
        .any(|e| matches!(e.process, Process::Client(_)))
        && events
            .iter()
            .filter(client)
            .all(|e| e.key.is_some() && matches!(e.f.as_str(), "get" | "put" | "append"));
    let keyed = events.iter().filter(client).any(|e| e.key.is_some());
    let independent = !kv
        && match opts.independent {
            Independent::On => true,
            Independent::Off => false,
            Independent::Auto => !keyed && looks_independent(&events),
        };

    let mut history = History::default();
    let from = if kv { "porcupine-kv" } else { "jepsen-edn" };
    history.meta.insert(META_IMPORTED_FROM.into(), from.into());
    if kv {
        history.meta.insert(META_INITIAL.into(), Value::from(""));
    } else if opts.nil_reads_unknown {
        history.meta.insert(META_NIL_READS.into(), "unknown".into());
    }
    if independent {
        history
            .meta
            .insert(META_INDEPENDENT.into(), Value::Bool(true));
    }
    for (ev, &line) in events.iter_mut().zip(&lines) {
        if !matches!(ev.process, Process::Client(_)) {
            continue;
        }
        if kv {
            match ev.f.as_str() {
                "get" => ev.f = "read".into(),
                "put" => ev.f = "write".into(),
                _ => {}
            }
        }
        if independent && ev.key.is_none() {
            match split_tuple(std::mem::take(&mut ev.value)) {
                Ok((k, v)) => {
                    ev.key = Some(k);
                    ev.value = v;
                }
                Err(v) if matches!(ev.kind, EventType::Fail | EventType::Info) => ev.value = v,
                Err(v) => {
                    return Err(HistoryError::parse(
                        name,
                        line,
                        format!(
                            "expected an independent [key value] tuple as the value of this {} {}, found {v}",
                            kind_name(ev.kind),
                            ev.f
                        ),
                    ))
                }
            }
        }
    }
    history.events = events;
    Ok(history)
}

fn kind_name(kind: EventType) -> &'static str {
    match kind {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

/// The independent-keys rule of the module documentation.
fn looks_independent(events: &[Event]) -> bool {
    let mut seen = false;
    for e in events {
        if !matches!(e.process, Process::Client(_))
            || !matches!(e.kind, EventType::Invoke | EventType::Ok)
        {
            continue;
        }
        seen = true;
        let Some([k, v]) = e.value.as_array().map(Vec::as_slice) else {
            return false;
        };
        if key_of(k).is_none() {
            return false;
        }
        if e.f == "cas" && v.as_array().map(Vec::len) != Some(2) {
            return false;
        }
    }
    seen
}

/// The key of an independent `[k v]` tuple: a string, an integer, or a keyword (written
/// `:name`, so that it differs from the string `"name"`).
fn key_of(k: &Value) -> Option<Key> {
    match k {
        Value::String(s) => Some(Key(s.clone())),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Key(n.to_string())),
        other => match crate::value::tagged(other) {
            Some((crate::value::TAG_KEYWORD, Value::String(name))) => Some(Key(format!(":{name}"))),
            _ => None,
        },
    }
}

/// `[k v]` as `(k, v)`; anything else is given back.
fn split_tuple(value: Value) -> Result<(Key, Value), Value> {
    match value {
        Value::Array(mut items) if items.len() == 2 => match key_of(&items[0]) {
            Some(k) => Ok((k, items.pop().unwrap_or(Value::Null))),
            None => Err(Value::Array(items)),
        },
        other => Err(other),
    }
}

/// Reads every top-level map, looking inside top-level vectors and lists so that each
/// map keeps its own line number. Gives the events and the line each started on.
fn read_events(text: &str, name: &str) -> Result<(Vec<Event>, Vec<usize>), HistoryError> {
    // One event per line, or a pretty-printed map over a few lines of 24+ bytes.
    let newlines = memchr::memchr_iter(b'\n', text.as_bytes()).count();
    let estimate = (newlines + 1).min(text.len() / 24 + 1);
    let mut events = Vec::with_capacity(estimate);
    let mut lines = Vec::with_capacity(estimate);
    let mut reader = Reader::new(text, name);
    let mut read_one = |reader: &mut Reader<'_>, events: &mut Vec<Event>| {
        let line = reader.line();
        let last = events.last().map(|e: &Event| e.index);
        let ev = read_event(reader, line, name, events.len() as u64, last)?;
        events.push(ev);
        lines.push(line);
        Ok::<(), HistoryError>(())
    };
    loop {
        match reader.skip_ws()? {
            None => break,
            Some(open @ (b'[' | b'(')) => {
                let open_line = reader.line();
                let close = if open == b'[' { b']' } else { b')' };
                reader.bump();
                loop {
                    match reader.skip_ws()? {
                        None => {
                            return Err(HistoryError::parse(
                                name,
                                open_line,
                                "the vector of operations opened here is never closed",
                            ))
                        }
                        Some(b) if b == close => {
                            reader.bump();
                            break;
                        }
                        Some(_) => read_one(&mut reader, &mut events)?,
                    }
                }
            }
            Some(_) => read_one(&mut reader, &mut events)?,
        }
    }
    Ok((events, lines))
}

/// The fields of one operation map, as read so far.
#[derive(Default)]
struct Fields {
    index: Option<u64>,
    time: Option<u64>,
    process: Option<Process>,
    kind: Option<EventType>,
    f: Option<String>,
    key: Option<Key>,
    value: Value,
    node: Option<String>,
    error: Option<String>,
}

impl Fields {
    /// Sets `field` straight from a plain token such as `12` or `:invoke`; `false` when
    /// the token needs the general path (which then decides, with the same result).
    fn fast(&mut self, field: &str, t: &str) -> bool {
        match field {
            "index" => plain_u64(t).map(|n| self.index = Some(n)).is_some(),
            "time" => plain_u64(t).map(|n| self.time = Some(n)).is_some(),
            "process" if t == ":nemesis" => {
                self.process = Some(Process::Nemesis);
                true
            }
            "process" => plain_u64(t)
                .map(|n| self.process = Some(Process::Client(n)))
                .is_some(),
            "type" => {
                self.kind = match t {
                    ":invoke" => Some(EventType::Invoke),
                    ":ok" => Some(EventType::Ok),
                    ":fail" => Some(EventType::Fail),
                    ":info" => Some(EventType::Info),
                    _ => return false,
                };
                true
            }
            "f" => match t.strip_prefix(':') {
                Some(name) if !name.is_empty() && !name.starts_with(':') => {
                    self.f = Some(name.to_string());
                    true
                }
                _ => false,
            },
            // Only digits without a leading zero read back as the same decimal text.
            "key" if plain_u64(t).is_some() && (t == "0" || !t.starts_with('0')) => {
                self.key = Some(Key(t.to_string()));
                true
            }
            _ => false,
        }
    }

    /// Sets `field` from a form.
    fn set(&mut self, field: &str, v: &Edn<'_>) -> Result<(), String> {
        match field {
            "index" => self.index = Some(natural(v, "index")?),
            "time" => self.time = Some(natural(v, "time")?),
            "process" => self.process = Some(process_of(v)?),
            "type" => self.kind = Some(type_of(v)?),
            "f" => match v.as_name() {
                Some(s) => self.f = Some(s.to_string()),
                None => {
                    return Err(format!(
                        "expected :f to be a keyword, found {}",
                        v.describe()
                    ))
                }
            },
            "key" => self.key = Some(edn_key(v)?),
            "node" => self.node = text_of(v),
            "error" => self.error = text_of(v),
            _ => {}
        }
        Ok(())
    }
}

/// Digits only (at most 19, so no overflow) as a number.
fn plain_u64(t: &str) -> Option<u64> {
    if t.is_empty() || t.len() > 19 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Reads one operation map into an event at `position` (its default index and time).
fn read_event(
    reader: &mut Reader<'_>,
    line: usize,
    name: &str,
    position: u64,
    last: Option<u64>,
) -> Result<Event, HistoryError> {
    let err = |message: String| HistoryError::parse(name, line, message);
    let mut fields = Fields::default();
    let is_map = reader.read_map_with(|r, k, depth| {
        let field = match &k {
            Edn::Keyword(s) => *s,
            Edn::Str(s) => s.as_ref(),
            _ => "",
        };
        if field == "value" {
            fields.value = r.read_json_at(depth)?;
            return Ok(());
        }
        let v = match r.token_at(depth)? {
            Some(t) if fields.fast(field, t) => return Ok(()),
            Some(t) => r.classify(t)?,
            None => r.read_form_at(depth)?,
        };
        fields.set(field, &v).map_err(err)
    })?;
    if !is_map {
        let found = match reader.next_form()? {
            Some(form) => form.describe(),
            None => "the end of the input".into(),
        };
        return Err(err(format!(
            "expected an operation map such as {{:process 0, :type :invoke, :f :read, :value nil}}, found {found}"
        )));
    }
    let index = match (fields.index, last) {
        (Some(i), Some(l)) if i <= l => {
            return Err(err(format!(
                "index {i} does not increase (previous event had index {l})"
            )))
        }
        (Some(i), _) => i,
        (None, Some(l)) => l
            .checked_add(1)
            .ok_or_else(|| err("index overflows after the previous event".into()))?,
        (None, None) => 0,
    };
    let missing = |what: &str| err(format!("operation map has no {what}"));
    Ok(Event {
        index,
        time: fields.time.unwrap_or(position),
        process: fields
            .process
            .ok_or_else(|| missing(":process (an integer or :nemesis)"))?,
        kind: fields
            .kind
            .ok_or_else(|| missing(":type (:invoke, :ok, :fail or :info)"))?,
        f: fields.f.ok_or_else(|| missing(":f"))?,
        key: fields.key,
        value: fields.value,
        node: fields.node,
        error: fields.error,
    })
}

fn natural(v: &Edn<'_>, field: &str) -> Result<u64, String> {
    let n = match v {
        Edn::Int(i) => u64::try_from(*i).ok(),
        Edn::BigInt(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        format!(
            "expected :{field} to be a non-negative 64-bit integer, found {}",
            v.describe()
        )
    })
}

fn process_of(v: &Edn<'_>) -> Result<Process, String> {
    match v {
        Edn::Keyword("nemesis") | Edn::Symbol("nemesis") => Ok(Process::Nemesis),
        Edn::Str(s) if s == "nemesis" => Ok(Process::Nemesis),
        _ => natural(v, "process").map(Process::Client).map_err(|_| {
            format!(
                "expected :process to be a non-negative integer or :nemesis, found {}",
                v.describe()
            )
        }),
    }
}

fn type_of(v: &Edn<'_>) -> Result<EventType, String> {
    match v.as_name() {
        Some("invoke") => Ok(EventType::Invoke),
        Some("ok") => Ok(EventType::Ok),
        Some("fail") => Ok(EventType::Fail),
        Some("info") => Ok(EventType::Info),
        _ => Err(format!(
            "expected :type to be :invoke, :ok, :fail or :info, found {}",
            v.describe()
        )),
    }
}

fn edn_key(v: &Edn<'_>) -> Result<Key, String> {
    match v {
        Edn::Int(i) => Ok(Key(i.to_string())),
        Edn::BigInt(s) => Ok(Key((*s).to_string())),
        Edn::Keyword(name) => Ok(Key(format!(":{name}"))),
        _ => v.as_name().map(|s| Key(s.to_string())).ok_or_else(|| {
            format!(
                "expected :key to be a string or an integer, found {}",
                v.describe()
            )
        }),
    }
}

/// A node name or error as text: keywords lose their colon, other forms become JSON text.
fn text_of(v: &Edn<'_>) -> Option<String> {
    match v {
        Edn::Nil => None,
        Edn::Int(i) => Some(i.to_string()),
        _ => Some(match v.as_name() {
            Some(s) => s.to_string(),
            None => v.to_json().to_string(),
        }),
    }
}
