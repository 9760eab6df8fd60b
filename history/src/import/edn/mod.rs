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
    /// A floating-point number (also `##Inf`, `##-Inf`, `##NaN`).
    Float(f64),
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// A character literal such as `\a` or `\newline`.
    Char(char),
    /// A keyword, without its leading colon: `:invoke` is `Keyword("invoke")`.
    Keyword(&'a str),
    /// A symbol (also a ratio such as `1/2`, kept as text).
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
            Edn::Float(f) => format!("the number {f}"),
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

    /// The form as JSON: keywords and symbols become strings without the colon, sets and
    /// lists become arrays, map keys that are not strings are written out as text,
    /// integers too large for 64 bits become decimal strings, infinities and NaN strings.
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::from(*i),
            Edn::BigInt(s) => match s.parse::<u64>() {
                Ok(u) => Value::from(u),
                Err(_) => Value::String((*s).to_string()),
            },
            Edn::Float(f) => match Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                None => Value::String(float_name(*f).into()),
            },
            Edn::Str(s) => Value::String(s.to_string()),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::Keyword(s) | Edn::Symbol(s) => Value::String((*s).to_string()),
            Edn::List(v) | Edn::Vector(v) | Edn::Set(v) => {
                Value::Array(v.iter().map(Edn::to_json).collect())
            }
            Edn::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k.key_text(), v.to_json());
                }
                Value::Object(map)
            }
        }
    }

    /// The text of a form used as a JSON object key.
    pub(crate) fn key_text(&self) -> String {
        match self {
            Edn::Keyword(s) | Edn::Symbol(s) | Edn::BigInt(s) => (*s).to_string(),
            Edn::Str(s) => s.to_string(),
            Edn::Int(i) => i.to_string(),
            Edn::Nil => "nil".into(),
            other => other.to_json().to_string(),
        }
    }
}

fn float_name(f: f64) -> &'static str {
    if f.is_nan() {
        "##NaN"
    } else if f > 0.0 {
        "##Inf"
    } else {
        "##-Inf"
    }
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
