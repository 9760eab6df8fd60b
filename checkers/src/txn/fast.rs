//! A fast path from the bytes of a faultline-history/1 file straight to transactions,
//! without building JSON values: for large list-append and rw-register histories, where
//! parsing every element of every read into a `serde_json::Value` costs more than the
//! check itself.
//!
//! It reads the common shape only: a header line, then one flat event per line with
//! fields `index`, `time`, `process` (an integer), `type`, `f` (always `"txn"`), `value`,
//! and optionally `node` and `error`; keys and values plain integers or strings without
//! escapes. Anything else (another field or `f`, a nemesis event, an escape, a float, a
//! process with two transactions in flight, a cut-short line) makes [`parse_jsonl`]
//! answer `None`, and the caller takes the general path, which gives the same result
//! or the proper error. Operations are rebuilt from their lines, with serde_json, only
//! for the transactions a witness names.

use super::parse::{Interner, Mop, Obs, Status, Txn, TxnHistory, Workload, INIT};
use faultline_history::{Event, EventType, Operation, Outcome, Process};
use rustc_hash::FxHashMap;

/// Where a transaction's lines are in the file: the invoke's (start, end) and the
/// completion's, if any.
type Lines = (usize, usize, Option<(usize, usize)>);

/// One transaction as read: process, how it ended, micro-operations, invoke index,
/// completion index.
type RawTxn = (u64, EventType, Vec<RawMop>, u64, Option<u64>);

/// Transactions parsed from a file, with where each came from.
pub struct FastTxns {
    pub(crate) history: TxnHistory,
    bytes_lines: Vec<Lines>,
}

impl FastTxns {
    /// How many transactions.
    pub fn len(&self) -> usize {
        self.history.txns.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.history.txns.is_empty()
    }

    /// The operation of transaction `t`, rebuilt from its lines of `bytes` (the same
    /// bytes given to [`parse_jsonl`]).
    pub fn operation(&self, bytes: &[u8], t: usize) -> Option<Operation> {
        let &(s, e, done) = self.bytes_lines.get(t)?;
        let invoke: Event = serde_json::from_slice(bytes.get(s..e)?).ok()?;
        let completion: Option<Event> = match done {
            Some((s, e)) => Some(serde_json::from_slice(bytes.get(s..e)?).ok()?),
            None => None,
        };
        let process = match invoke.process {
            Process::Client(p) => p,
            Process::Nemesis => return None,
        };
        let outcome = match completion.as_ref().map(|c| c.kind) {
            Some(EventType::Ok) => Outcome::Ok,
            Some(EventType::Fail) => Outcome::Fail,
            _ => Outcome::Info,
        };
        Some(Operation {
            id: t,
            process,
            f: invoke.f.clone(),
            key: None,
            argument: invoke.value,
            result: completion
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default(),
            outcome,
            invoke_index: invoke.index,
            invoke_time: invoke.time,
            complete_index: completion.as_ref().map(|c| c.index),
            complete_time: completion.as_ref().map(|c| c.time),
            node: completion
                .as_ref()
                .and_then(|c| c.node.clone())
                .or(invoke.node),
            error: completion.and_then(|c| c.error),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Atom {
    Int(i64),
    Str(usize, usize),
}

#[derive(Clone, PartialEq, Eq)]
enum RawObs {
    Null,
    Atom(u32),
    List(Box<[u32]>),
}

#[derive(Clone, PartialEq, Eq)]
struct RawMop {
    kind: u8,
    key: u32,
    val: RawObs,
}

const APPEND: u8 = 0;
const READ: u8 = 1;
const WRITE: u8 = 2;

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }
    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }
    fn string(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let s = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        let e = self.i;
        self.i += 1;
        Some((s, e))
    }
    fn int(&mut self) -> Option<i64> {
        self.ws();
        let neg = self.b.get(self.i) == Some(&b'-');
        if neg {
            self.i += 1;
        }
        let s = self.i;
        let mut n: i64 = 0;
        while let Some(d @ b'0'..=b'9') = self.b.get(self.i).copied() {
            n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
            self.i += 1;
        }
        let len = self.i - s;
        if len == 0 || (len > 1 && self.b[s] == b'0') || (neg && n == 0) {
            return None;
        }
        match self.b.get(self.i) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(if neg { -n } else { n }),
        }
    }
    fn atom(&mut self) -> Option<Atom> {
        match self.peek()? {
            b'"' => self.string().map(|(s, e)| Atom::Str(s, e)),
            _ => self.int().map(Atom::Int),
        }
    }
    fn null(&mut self) -> Option<()> {
        self.ws();
        if self.b.get(self.i..self.i + 4) == Some(b"null") {
            self.i += 4;
            Some(())
        } else {
            None
        }
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    keys: Interner,
    values: Interner,
}

impl Parser<'_> {
    fn intern(&mut self, a: Atom, key: bool) -> Option<u32> {
        let table = if key {
            &mut self.keys
        } else {
            &mut self.values
        };
        Some(match a {
            Atom::Int(i) => table.id_int(i),
            Atom::Str(s, e) => table.id_str(std::str::from_utf8(&self.bytes[s..e]).ok()?),
        })
    }

    fn mops(&mut self, c: &mut Cur<'_>) -> Option<Vec<RawMop>> {
        c.eat(b'[')?;
        let mut out = Vec::with_capacity(4);
        if c.peek()? == b']' {
            c.i += 1;
            return Some(out);
        }
        loop {
            c.eat(b'[')?;
            let (s, e) = c.string()?;
            let kind = match &self.bytes[s..e] {
                b"append" => APPEND,
                b"r" | b"read" => READ,
                b"w" | b"write" => WRITE,
                _ => return None,
            };
            c.eat(b',')?;
            let key = c.atom()?;
            let key = self.intern(key, true)?;
            c.eat(b',')?;
            let val = match c.peek()? {
                b'n' => {
                    c.null()?;
                    RawObs::Null
                }
                b'[' => {
                    c.i += 1;
                    let mut items = Vec::new();
                    if c.peek()? == b']' {
                        c.i += 1;
                    } else {
                        loop {
                            let a = c.atom()?;
                            items.push(self.intern(a, false)?);
                            match c.peek()? {
                                b',' => c.i += 1,
                                b']' => {
                                    c.i += 1;
                                    break;
                                }
                                _ => return None,
                            }
                        }
                    }
                    RawObs::List(items.into_boxed_slice())
                }
                _ => {
                    let a = c.atom()?;
                    RawObs::Atom(self.intern(a, false)?)
                }
            };
            c.eat(b']')?;
            out.push(RawMop { kind, key, val });
            match c.peek()? {
                b',' => c.i += 1,
                b']' => {
                    c.i += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }
}

struct Line {
    index: u64,
    process: u64,
    kind: EventType,
    mops: Vec<RawMop>,
}

fn line(p: &mut Parser<'_>, s: usize, e: usize) -> Option<Line> {
    let mut c = Cur {
        b: &p.bytes[..e],
        i: s,
    };
    c.eat(b'{')?;
    let (mut index, mut process, mut kind, mut f, mut mops) = (None, None, None, false, None);
    loop {
        let (ks, ke) = c.string()?;
        c.eat(b':')?;
        // Field names told apart by length and first byte (no string compares).
        let field = &p.bytes[ks..ke];
        let name: &[u8] = match (field.len(), field.first()) {
            (5, Some(b'i')) => b"index",
            (4, Some(b't')) if field[1] == b'i' => b"time",
            (7, Some(b'p')) => b"process",
            (4, Some(b't')) => b"type",
            (1, Some(b'f')) => b"f",
            (5, Some(b'v')) => b"value",
            (4, Some(b'n')) => b"node",
            (5, Some(b'e')) => b"error",
            _ => return None,
        };
        if name != field {
            return None;
        }
        match name {
            b"index" => index = Some(u64::try_from(c.int()?).ok()?),
            b"time" => {
                u64::try_from(c.int()?).ok()?;
            }
            b"process" => process = Some(u64::try_from(c.int()?).ok()?),
            b"type" => {
                let (s, e) = c.string()?;
                kind = Some(match &p.bytes[s..e] {
                    b"invoke" => EventType::Invoke,
                    b"ok" => EventType::Ok,
                    b"fail" => EventType::Fail,
                    b"info" => EventType::Info,
                    _ => return None,
                });
            }
            b"f" => {
                let (s, e) = c.string()?;
                f = &p.bytes[s..e] == b"txn";
            }
            b"value" => mops = Some(p.mops(&mut c)?),
            b"node" | b"error" => {
                if c.peek()? == b'n' {
                    c.null()?;
                } else {
                    c.string()?;
                }
            }
            _ => return None,
        }
        match c.peek()? {
            b',' => c.i += 1,
            b'}' => {
                c.i += 1;
                break;
            }
            _ => return None,
        }
    }
    c.ws();
    if c.i != e || !f {
        return None;
    }
    Some(Line {
        index: index?,
        process: process?,
        kind: kind?,
        mops: mops?,
    })
}

/// Parses a faultline-history/1 file of transactions (see the module documentation), or
/// `None` when it is not of the shape this path reads.
pub fn parse_jsonl(bytes: &[u8]) -> Option<FastTxns> {
    // A byte order mark is left to the general path.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return None;
    }
    let mut p = Parser {
        bytes,
        keys: Interner::default(),
        values: Interner::default(),
    };
    let mut raw: Vec<RawTxn> = Vec::new();
    let mut lines_of: Vec<Lines> = Vec::new();
    let mut in_flight: FxHashMap<u64, usize> = FxHashMap::default();
    let mut last_index: Option<u64> = None;
    let mut start = 0usize;
    let mut first = true;
    while start < bytes.len() {
        let end = memchr_newline(bytes, start)?;
        let (s, e) = (start, end);
        start = end + 1;
        if bytes[s..e].iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if first {
            first = false;
            // A header line starts with {"format".
            let head = &bytes[s..e];
            let trimmed = head
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .map_or(head, |i| &head[i..]);
            if trimmed.starts_with(b"{\"format\"") {
                continue;
            }
        }
        let l = line(&mut p, s, e)?;
        if last_index.is_some_and(|x| l.index <= x) {
            return None;
        }
        last_index = Some(l.index);
        match l.kind {
            EventType::Invoke => {
                if in_flight.contains_key(&l.process) {
                    return None;
                }
                in_flight.insert(l.process, raw.len());
                raw.push((l.process, EventType::Info, l.mops, l.index, None));
                lines_of.push((s, e, None));
            }
            kind => {
                let t = in_flight.remove(&l.process)?;
                let entry = &mut raw[t];
                if kind == EventType::Ok {
                    // The completion must name the same micro-operations.
                    if l.mops.len() != entry.2.len()
                        || l.mops
                            .iter()
                            .zip(&entry.2)
                            .any(|(a, b)| a.kind != b.kind || a.key != b.key)
                    {
                        return None;
                    }
                    entry.2 = l.mops;
                }
                entry.1 = kind;
                entry.4 = Some(l.index);
                lines_of[t].2 = Some((s, e));
            }
        }
    }
    let appends = raw
        .iter()
        .flat_map(|r| r.2.iter())
        .any(|m| m.kind == APPEND);
    let writes = raw.iter().flat_map(|r| r.2.iter()).any(|m| m.kind == WRITE);
    let lists = raw
        .iter()
        .flat_map(|r| r.2.iter())
        .any(|m| m.kind == READ && matches!(m.val, RawObs::List(_)));
    if appends && writes || raw.is_empty() {
        return None;
    }
    let workload = if appends || (!writes && lists) {
        Workload::ListAppend
    } else {
        Workload::RwRegister
    };
    let mut txns = Vec::with_capacity(raw.len());
    for (i, (process, kind, mops, invoke, complete)) in raw.into_iter().enumerate() {
        let status = match kind {
            EventType::Ok => Status::Ok,
            EventType::Fail => Status::Fail,
            _ => Status::Info,
        };
        let mut out = Vec::with_capacity(mops.len());
        for m in mops {
            out.push(match (m.kind, m.val) {
                (APPEND, RawObs::Atom(v)) => Mop::Append { key: m.key, val: v },
                (WRITE, RawObs::Atom(v)) => Mop::Write { key: m.key, val: v },
                (READ, _) if status != Status::Ok => Mop::Read {
                    key: m.key,
                    obs: Obs::Unknown,
                },
                (READ, RawObs::Null) if workload == Workload::ListAppend => Mop::Read {
                    key: m.key,
                    obs: Obs::List(Box::new([])),
                },
                (READ, RawObs::List(l)) if workload == Workload::ListAppend => Mop::Read {
                    key: m.key,
                    obs: Obs::List(l),
                },
                (READ, RawObs::Null) => Mop::Read {
                    key: m.key,
                    obs: Obs::Value(INIT),
                },
                (READ, RawObs::Atom(v)) if workload == Workload::RwRegister => Mop::Read {
                    key: m.key,
                    obs: Obs::Value(v),
                },
                _ => return None,
            });
        }
        txns.push(Txn {
            op: i,
            process,
            status,
            invoke,
            complete: if status == Status::Ok { complete } else { None },
            mops: out,
        });
    }
    let key_count = p.keys.len();
    Some(FastTxns {
        history: TxnHistory {
            workload,
            txns,
            keys: p.keys,
            values: p.values,
            key_count,
        },
        bytes_lines: lines_of,
    })
}

/// The end of the line starting at `start`; `None` for a last line without a newline
/// (possibly cut short: the general path decides).
fn memchr_newline(bytes: &[u8], start: usize) -> Option<usize> {
    memchr::memchr(b'\n', &bytes[start..]).map(|i| start + i)
}
