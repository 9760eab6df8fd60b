//! A fast path for reading one faultline-history/1 event line, and the check that a
//! last line which does not parse is a line cut short ([`cut_event_prefix`]).
//!
//! Most lines a harness writes are flat objects of known fields with plain strings
//! (no escapes) and integers. [`parse_event`] reads those directly and answers `None`
//! for anything else (escapes, unknown or duplicate fields, numbers it does not read
//! exactly like serde_json, bad syntax); the caller then parses the line with
//! serde_json, which gives the same event or the proper error. Nested `value`s are
//! handed to serde_json in place. The differential test `jsonl_fast_path` checks that
//! both paths agree.

use crate::event::{Event, EventType, Key, Process, Value};

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        if self.peek()? == c {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    /// A string with no escapes and no control characters, as valid UTF-8.
    fn plain_str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.plain_bytes()?).ok()
    }

    /// The bytes of a string with no escapes and no control characters.
    fn plain_bytes(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.pos;
        loop {
            match *self.b.get(self.pos)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
        let s = &self.b[start..self.pos];
        self.pos += 1;
        Some(s)
    }

    /// A non-negative integer as serde_json reads it into a `u64`.
    fn uint(&mut self) -> Option<u64> {
        self.ws();
        let start = self.pos;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.pos += 1;
        }
        let len = self.pos - start;
        // No digits, a leading zero, or a fraction/exponent: leave it to serde_json.
        if len == 0 || (len > 1 && self.b[start] == b'0') {
            return None;
        }
        match self.peek() {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(n),
        }
    }

    fn null(&mut self) -> Option<()> {
        self.ws();
        if self.b.get(self.pos..self.pos + 4)? == b"null" {
            self.pos += 4;
            Some(())
        } else {
            None
        }
    }

    /// `null` or a plain string.
    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        self.ws();
        if self.peek()? == b'n' {
            self.null().map(|_| None)
        } else {
            self.plain_str().map(Some)
        }
    }

    /// Any JSON value: plain cases here, the rest through serde_json in place.
    fn value(&mut self) -> Option<Value> {
        self.ws();
        match self.peek()? {
            b'n' => self.null().map(|_| Value::Null),
            b'1'..=b'9' => {
                let save = self.pos;
                match self.uint() {
                    Some(n) => Some(Value::from(n)),
                    None => {
                        self.pos = save;
                        self.serde_value()
                    }
                }
            }
            b'"' => {
                let save = self.pos;
                match self.plain_str() {
                    Some(s) => Some(Value::String(s.to_string())),
                    None => {
                        self.pos = save;
                        self.serde_value()
                    }
                }
            }
            _ => self.serde_value(),
        }
    }

    fn serde_value(&mut self) -> Option<Value> {
        let rest = self.b.get(self.pos..)?;
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
        let v = stream.next()?.ok()?;
        self.pos += stream.byte_offset();
        Some(v)
    }
}

/// Reads a trimmed event line, or `None` when serde_json must decide.
pub(crate) fn parse_event(line: &[u8]) -> Option<Event> {
    let mut c = Cursor { b: line, pos: 0 };
    c.eat(b'{')?;
    let mut index = None;
    let mut time = None;
    let mut process = None;
    let mut kind = None;
    let mut f = None;
    let mut key: Option<Option<Key>> = None;
    let mut value = None;
    let mut node: Option<Option<String>> = None;
    let mut error: Option<Option<String>> = None;
    c.ws();
    if c.peek()? == b'}' {
        return None;
    }
    loop {
        let field = c.plain_bytes()?;
        c.eat(b':')?;
        // A field seen twice is an error: serde_json reports it.
        match field {
            b"index" if index.is_none() => index = Some(c.uint()?),
            b"time" if time.is_none() => time = Some(c.uint()?),
            b"process" if process.is_none() => {
                c.ws();
                process = Some(if c.peek()? == b'"' {
                    match c.plain_str()? {
                        "nemesis" => Process::Nemesis,
                        _ => return None,
                    }
                } else {
                    Process::Client(c.uint()?)
                });
            }
            b"type" if kind.is_none() => {
                kind = Some(match c.plain_str()? {
                    "invoke" => EventType::Invoke,
                    "ok" => EventType::Ok,
                    "fail" => EventType::Fail,
                    "info" => EventType::Info,
                    _ => return None,
                })
            }
            b"f" if f.is_none() => f = Some(c.plain_str()?.to_string()),
            b"key" if key.is_none() => {
                c.ws();
                key = Some(match c.peek()? {
                    b'"' => Some(Key(c.plain_str()?.to_string())),
                    b'n' => {
                        c.null()?;
                        None
                    }
                    _ => Some(Key(c.uint()?.to_string())),
                })
            }
            b"value" if value.is_none() => value = Some(c.value()?),
            b"node" if node.is_none() => node = Some(c.opt_str()?.map(str::to_string)),
            b"error" if error.is_none() => error = Some(c.opt_str()?.map(str::to_string)),
            _ => return None,
        }
        c.ws();
        match c.peek()? {
            b',' => c.pos += 1,
            b'}' => {
                c.pos += 1;
                break;
            }
            _ => return None,
        }
    }
    c.ws();
    if c.pos != line.len() {
        return None;
    }
    Some(Event {
        index: index?,
        time: time.unwrap_or(0),
        process: process?,
        kind: kind?,
        f: f?,
        key: key.flatten(),
        value: value.unwrap_or(Value::Null),
        node: node.flatten(),
        error: error.flatten(),
    })
}

/// Whether `tail`, a trimmed last line with no newline that did not parse as an event,
/// is the beginning of a valid event line: what a writer stopped mid-line leaves.
/// `Err` says why not. The rule (ARCHITECTURE.md, History format):
///
/// 1. it is UTF-8, but for an incomplete character at its very end;
/// 2. it is an incomplete JSON object: `{`, then input that a JSON parser runs out of
///    before the object closes (no syntax error on the way);
/// 3. what is there could still become a valid event after `last_index`: each complete
///    field is a known one, given once, with a valid value (a larger `index`); a field
///    name cut short begins a known field not yet given; and a value cut short (the last
///    one, which may go on) begins a valid value for its field.
///
/// `Ok(false)` means `tail` is a complete JSON value (so not cut short: the event
/// parser's error stands).
pub(crate) fn cut_event_prefix(tail: &[u8], last_index: Option<u64>) -> Result<bool, String> {
    if let Err(e) = std::str::from_utf8(tail) {
        if e.error_len().is_some() {
            return Err(format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1));
        }
    }
    match serde_json::from_slice::<Value>(tail) {
        Err(e) if e.is_eof() => {}
        Err(e) => return Err(format!("not JSON: {}", crate::jsonl::serde_message(&e))),
        Ok(_) => return Ok(false),
    }
    let mut c = Cursor { b: tail, pos: 0 };
    if c.eat(b'{').is_none() {
        return Err("an event line is a JSON object, starting with {".into());
    }
    let mut given: Vec<&'static str> = Vec::new();
    loop {
        c.ws();
        let Some(rest) = tail.get(c.pos..).filter(|r| !r.is_empty()) else {
            return Ok(true);
        };
        // The field name.
        let (name, complete) = partial_string(rest)
            .ok_or_else(|| format!("expected a field name, found {}", quote(rest)))?;
        let fits = |f: &&&str| {
            let named = if complete {
                **f == name
            } else {
                f.starts_with(&name)
            };
            named && !given.contains(*f)
        };
        let field = match crate::jsonl::EVENT_FIELDS.iter().find(fits) {
            Some(f) if complete => *f,
            Some(_) => return Ok(true),
            None if given.iter().any(|f| *f == name) => {
                return Err(format!("field {} is given twice", quote(name.as_bytes())))
            }
            None if complete => {
                let guess = crate::jsonl::nearest_field(&name)
                    .map(|f| format!("; did you mean \"{f}\"?"))
                    .unwrap_or_default();
                return Err(format!("unknown field {}{guess}", quote(name.as_bytes())));
            }
            None => {
                return Err(format!(
                    "no known field not yet given begins with {}",
                    quote(name.as_bytes())
                ))
            }
        };
        given.push(field);
        c.pos += string_len(rest);
        c.ws();
        if c.peek().is_none() {
            return Ok(true);
        }
        c.eat(b':').ok_or("expected : after a field name")?;
        c.ws();
        let start = c.pos;
        if start == tail.len() {
            return Ok(true);
        }
        let mut values = serde_json::Deserializer::from_slice(&tail[start..]).into_iter::<Value>();
        let end = match values.next() {
            Some(Ok(_)) => start + values.byte_offset(),
            // The whole line is a JSON prefix, so this is the last value, cut short.
            _ => return partial_value(field, &tail[start..], last_index).map(|()| true),
        };
        c.pos = end;
        c.ws();
        if c.peek().is_none() {
            // A number may go on: the last value is checked as a beginning.
            return partial_value(field, &tail[start..end], last_index).map(|()| true);
        }
        complete_value(field, &tail[start..end], last_index)?;
        c.eat(b',').ok_or("expected , between fields")?;
    }
}

/// `bytes` quoted for a message, cut to 40 bytes.
fn quote(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
    let more = if bytes.len() > 40 { "..." } else { "" };
    format!("{shown:?}{more}")
}

/// Checks a complete value of `field` as the event parser does.
fn complete_value(field: &str, raw: &[u8], last_index: Option<u64>) -> Result<(), String> {
    use serde_json::from_slice as parse;
    let checked = match field {
        "index" => match parse::<u64>(raw) {
            Ok(i) if last_index.is_some_and(|last| i <= last) => {
                return Err(format!(
                    "index {i} does not increase (previous event had index {})",
                    last_index.unwrap_or_default()
                ))
            }
            other => other.map(drop),
        },
        "time" => parse::<u64>(raw).map(drop),
        "process" => parse::<Process>(raw).map(drop),
        "type" => parse::<EventType>(raw).map(drop),
        "f" => parse::<String>(raw).map(drop),
        "key" => parse::<Option<Key>>(raw).map(drop),
        "node" | "error" => parse::<Option<String>>(raw).map(drop),
        _ => Ok(()),
    };
    checked.map_err(|e| {
        let text = e.to_string();
        let message = text.split(" at line ").next().unwrap_or_default();
        format!("bad {field}: {message}")
    })
}

/// Checks that `raw`, the cut-short last value of `field`, begins a valid value.
fn partial_value(field: &str, raw: &[u8], last_index: Option<u64>) -> Result<(), String> {
    let bad = || Err(format!("{} cannot begin a valid {field}", quote(raw)));
    let string_among = |options: &[&str]| match partial_string(raw) {
        Some((s, true)) if options.contains(&s.as_str()) => Ok(()),
        Some((s, false)) if options.iter().any(|o| o.starts_with(&s)) => Ok(()),
        _ => bad(),
    };
    let is_string = raw.first() == Some(&b'"');
    let null_prefix = b"null".starts_with(raw);
    let fits = match field {
        "index" => match last_index {
            Some(u64::MAX) => false,
            last => digits_can_reach(raw, last.map_or(0, |l| l + 1)),
        },
        "time" => digits_can_reach(raw, 0),
        "process" if is_string => return string_among(&["nemesis"]),
        "process" => digits_can_reach(raw, 0),
        "type" => return string_among(&["invoke", "ok", "fail", "info"]),
        "f" => is_string,
        "key" if is_string || null_prefix => true,
        "key" => {
            let digits = raw.strip_prefix(b"-").unwrap_or(raw);
            digits.is_empty() || digits_can_reach(digits, 0)
        }
        "node" | "error" => is_string || null_prefix,
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        bad()
    }
}

/// Whether the ASCII digits `raw` begin a JSON integer of at least `min` that fits a
/// `u64` (more digits may follow; a leading zero may not).
fn digits_can_reach(raw: &[u8], min: u64) -> bool {
    if raw.is_empty() || !raw.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut n: u64 = 0;
    for &d in raw {
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
        {
            Some(next) => n = next,
            None => return false,
        }
    }
    if raw[0] == b'0' {
        return raw.len() == 1 && min == 0;
    }
    // Append digits (9s, the largest) while the number fits.
    loop {
        if n >= min {
            return true;
        }
        match n.checked_mul(10).and_then(|n| n.checked_add(9)) {
            Some(next) => n = next,
            None => return false,
        }
    }
}

/// The length of the JSON string at the start of `raw`, or all of `raw` if it is cut
/// short.
fn string_len(raw: &[u8]) -> usize {
    let mut strings = serde_json::Deserializer::from_slice(raw).into_iter::<String>();
    match strings.next() {
        Some(Ok(_)) => strings.byte_offset(),
        _ => raw.len(),
    }
}

/// The JSON string at the start of `raw`, decoded, and whether it is complete; when it
/// is cut short, what it holds so far (an escape or character cut in the middle is
/// dropped). `None` if `raw` does not start with a string.
fn partial_string(raw: &[u8]) -> Option<(String, bool)> {
    if raw.first() != Some(&b'"') {
        return None;
    }
    let mut strings = serde_json::Deserializer::from_slice(raw).into_iter::<String>();
    match strings.next() {
        Some(Ok(s)) => return Some((s, true)),
        Some(Err(e)) if e.is_eof() => {}
        _ => return None,
    }
    // Keep the body up to the last escape or character that is whole.
    let body = &raw[1..];
    let mut keep = 0;
    let mut i = 0;
    while i < body.len() {
        let step = match body[i] {
            b'\\' => match body.get(i + 1) {
                Some(b'u') => 6,
                Some(_) => 2,
                None => break,
            },
            _ => 1,
        };
        if i + step > body.len() {
            break;
        }
        i += step;
        keep = i;
    }
    let mut closed = Vec::with_capacity(keep + 2);
    closed.push(b'"');
    closed.extend_from_slice(&body[..keep]);
    // A character cut in the middle, or a surrogate escape without its pair, is dropped
    // (the rest of the string is well formed: the whole line is a JSON prefix).
    for _ in 0..8 {
        if closed.is_empty() {
            break;
        }
        closed.push(b'"');
        if let Ok(s) = serde_json::from_slice::<String>(&closed) {
            return Some((s, false));
        }
        closed.pop();
        closed.pop();
    }
    None
}
