//! A fast path for reading one faultline-history/1 event line.
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
