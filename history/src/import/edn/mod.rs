//! A small reader of EDN (extensible data notation), the text format of Jepsen histories.
//!
//! It reads nil, booleans, integers (of any size), floats, strings, characters,
//! keywords, symbols, lists, vectors, sets and maps. Commas are whitespace, `;` starts a
//! comment, `#_` discards the next form, and a tagged literal such as
//! `#jepsen.history.Op{...}` or `#inst "..."` is read as its form (the tag is transparent).
//! Nesting is bounded by [`MAX_DEPTH`], so no input can exhaust the stack; the reader never
//! panics on any input.

mod atoms;
mod reader;

pub use reader::Reader;

use crate::error::HistoryError;
use crate::value;
use serde_json::{Map, Number, Value};
use std::borrow::Cow;

/// The deepest nesting of collections the reader accepts.
pub const MAX_DEPTH: usize = 128;

/// One EDN form. Text is borrowed from the source where it needs no unescaping.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn<'a> {
    /// `nil`
    Nil,
    /// `true` or `false`
    Bool(bool),
    /// An integer that fits in 64 bits (signed).
    Int(i64),
    /// A larger integer, as its decimal text (sign kept, `N` suffix dropped).
    BigInt(&'a str),
    /// Any other number, as written: a decimal (`1.5`, `1e10`), a BigDecimal (`1.5M`), a
    /// ratio (`1/2`), or `##Inf`, `##-Inf`, `##NaN`.
    Float(&'a str),
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// A character literal such as `\a` or `\newline`.
    Char(char),
    /// A keyword, without its leading colon: `:invoke` is `Keyword("invoke")`.
    Keyword(&'a str),
    /// A symbol.
    Symbol(&'a str),
    /// `( ... )`
    List(Vec<Edn<'a>>),
    /// `[ ... ]`
    Vector(Vec<Edn<'a>>),
    /// `#{ ... }`
    Set(Vec<Edn<'a>>),
    /// `{ ... }`, entries in source order.
    Map(Vec<(Edn<'a>, Edn<'a>)>),
}

impl<'a> Edn<'a> {
    /// The name of a keyword, string or symbol (`:ok`, `"ok"` and `ok` all give `ok`).
    pub fn as_name(&self) -> Option<&str> {
        match self {
            Edn::Keyword(s) | Edn::Symbol(s) => Some(s),
            Edn::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The elements of a vector or list.
    pub fn as_seq(&self) -> Option<&[Edn<'a>]> {
        match self {
            Edn::Vector(v) | Edn::List(v) => Some(v),
            _ => None,
        }
    }

    /// A short description for error messages: `a keyword :foo`, `a vector`, ...
    pub fn describe(&self) -> String {
        match self {
            Edn::Nil => "nil".into(),
            Edn::Bool(b) => b.to_string(),
            Edn::Int(i) => format!("the integer {i}"),
            Edn::BigInt(s) => format!("the integer {s}"),
            Edn::Float(f) => format!("the number {}", truncate(f)),
            Edn::Str(s) => format!("the string {:?}", truncate(s)),
            Edn::Char(c) => format!("the character {c:?}"),
            Edn::Keyword(k) => format!("the keyword :{}", truncate(k)),
            Edn::Symbol(s) => format!("the symbol {}", truncate(s)),
            Edn::List(_) => "a list".into(),
            Edn::Vector(_) => "a vector".into(),
            Edn::Set(_) => "a set".into(),
            Edn::Map(_) => "a map".into(),
        }
    }

    /// The form as JSON, one-to-one: forms JSON has words for map to them (integers of
    /// any size and decimals exactly as written, strings, vectors and lists as arrays,
    /// maps whose keys are all keywords or strings as objects: `:k` becomes the key
    /// `":k"`); the others become tagged values (see [`crate::value`]): keywords,
    /// symbols, characters, sets (elements in canonical order), other maps, and numbers
    /// JSON cannot write. So two forms that Clojure calls equal give the same value, and
    /// two it calls different give different values (but a list and a vector with the
    /// same elements are the same, as in Clojure).
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::from(*i),
            Edn::BigInt(s) => big_integer(s),
            Edn::Float(f) => decimal(f),
            Edn::Str(s) => Value::String(s.to_string()),
            Edn::Char(c) => value::tag(value::TAG_CHAR, Value::String(c.to_string())),
            Edn::Keyword(s) => value::tag(value::TAG_KEYWORD, Value::String((*s).to_string())),
            Edn::Symbol(s) => value::tag(value::TAG_SYMBOL, Value::String((*s).to_string())),
            Edn::List(v) | Edn::Vector(v) => Value::Array(v.iter().map(Edn::to_json).collect()),
            Edn::Set(v) => set_value(v.iter().map(Edn::to_json).collect()),
            Edn::Map(entries) => map_value(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// An integer too large for 64 bits, from its decimal text (sign kept, no `N`).
fn big_integer(s: &str) -> Value {
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", s.strip_prefix('+').unwrap_or(s)),
    };
    let digits = digits.trim_start_matches('0');
    let text = if digits.is_empty() {
        "0".to_string()
    } else {
        format!("{sign}{digits}")
    };
    match serde_json::from_str::<Number>(&text) {
        Ok(n) => Value::Number(n),
        Err(_) => value::tag(value::TAG_NUMBER, Value::String(s.to_string())),
    }
}

/// A decimal literal as a JSON number with its exact text; what JSON cannot write (a
/// BigDecimal, a ratio, an infinity, NaN) as a tagged number.
fn decimal(text: &str) -> Value {
    let plain = text.strip_prefix('+').unwrap_or(text);
    // EDN allows `1.` and `1.e5`; JSON wants a digit after the point.
    let json = if plain.ends_with('.') {
        format!("{plain}0")
    } else {
        plain.replace(".e", ".0e").replace(".E", ".0E")
    };
    if json
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        if let Ok(n) = serde_json::from_str::<Number>(&json) {
            return Value::Number(n);
        }
    }
    value::tag(value::TAG_NUMBER, Value::String(text.to_string()))
}

/// A set: its elements in canonical order, each once.
pub(crate) fn set_value(items: Vec<Value>) -> Value {
    let mut keyed: Vec<(String, Value)> = items
        .into_iter()
        .map(|v| (value::canonical_text(&v), v))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    value::tag(
        value::TAG_SET,
        Value::Array(keyed.into_iter().map(|(_, v)| v).collect()),
    )
}

/// A map: a JSON object when every key is a keyword (written `":name"`) or a string
/// that does not start with `:` or `#`; otherwise a tagged list of entries in the
/// canonical order of their keys. A repeated key keeps its last value.
pub(crate) fn map_value(entries: Vec<(Edn<'_>, Value)>) -> Value {
    let object_key = |k: &Edn<'_>| match k {
        Edn::Keyword(name) => Some(format!(":{name}")),
        Edn::Str(s) if !s.starts_with([':', '#']) => Some(s.to_string()),
        _ => None,
    };
    if entries.iter().all(|(k, _)| object_key(k).is_some()) {
        let mut map = Map::new();
        for (k, v) in entries {
            if let Some(name) = object_key(&k) {
                map.insert(name, v);
            }
        }
        return Value::Object(map);
    }
    let mut keyed: Vec<(String, Value)> = entries
        .into_iter()
        .map(|(k, v)| {
            let k = k.to_json();
            (value::canonical_text(&k), Value::Array(vec![k, v]))
        })
        .collect();
    // Stable: a repeated key keeps its last value.
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(String, Value)> = Vec::with_capacity(keyed.len());
    for (k, e) in keyed {
        match out.last_mut() {
            Some(last) if last.0 == k => last.1 = e,
            _ => out.push((k, e)),
        }
    }
    value::tag(
        value::TAG_MAP,
        Value::Array(out.into_iter().map(|(_, e)| e).collect()),
    )
}

/// At most the first 40 characters of `s`, for error messages.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Reads every form of `src` (a convenience over [`Reader`]).
pub fn parse_all<'a>(src: &'a str, name: &'a str) -> Result<Vec<Edn<'a>>, HistoryError> {
    Reader::new(src, name).read_all()
}
