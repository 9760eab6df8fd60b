//! The EDN reader: whitespace, collections, dispatch (`#`) and tokens.

use super::{truncate, Edn, MAX_DEPTH};
use crate::error::HistoryError;
use serde_json::Value;

/// Bytes that end a token (number, keyword, symbol).
const DELIMITERS: [bool; 256] = {
    let mut t = [false; 256];
    let ds = b" \t\n\r,\x0c()[]{}\";";
    let mut i = 0;
    while i < ds.len() {
        t[ds[i] as usize] = true;
        i += 1;
    }
    t
};

/// Bytes that may start whitespace, a comment or a discarded form.
const SKIPPABLE: [bool; 256] = {
    let mut t = [false; 256];
    let ds = b" \t\n\r,\x0c;#";
    let mut i = 0;
    while i < ds.len() {
        t[ds[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether `b` ends a token.
pub(super) fn is_delimiter(b: u8) -> bool {
    DELIMITERS[b as usize]
}

/// Reads EDN forms one after another from a string, tracking line numbers.
pub struct Reader<'a> {
    pub(super) src: &'a str,
    pub(super) pos: usize,
    pub(super) line: usize,
    name: &'a str,
}

impl<'a> Reader<'a> {
    /// A reader of `src`; `name` (a file name) is used in error messages.
    pub fn new(src: &'a str, name: &'a str) -> Self {
        Reader {
            src,
            pos: 0,
            line: 1,
            name,
        }
    }

    /// The 1-based line of the reader's position.
    pub fn line(&self) -> usize {
        self.line
    }

    /// A parse error at the current line.
    pub fn error(&self, message: impl Into<String>) -> HistoryError {
        HistoryError::parse(self.name, self.line, message)
    }

    pub(super) fn error_at(&self, line: usize, message: impl Into<String>) -> HistoryError {
        HistoryError::parse(self.name, line, message)
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    /// Skips whitespace, commas, comments and `#_` discarded forms. Returns the next
    /// byte, if any, without consuming it.
    pub fn skip_ws(&mut self) -> Result<Option<u8>, HistoryError> {
        self.skip(0)
    }

    /// [`Reader::skip_ws`] inside `depth` levels of nesting (a discarded form nests).
    #[inline]
    fn skip(&mut self, depth: usize) -> Result<Option<u8>, HistoryError> {
        let bytes = self.src.as_bytes();
        // The usual separators (`, ` between map entries) without a call.
        while let Some(b' ' | b',') = bytes.get(self.pos) {
            self.pos += 1;
        }
        match bytes.get(self.pos) {
            Some(&b) if !SKIPPABLE[b as usize] => Ok(Some(b)),
            _ => self.skip_slow(depth),
        }
    }

    fn skip_slow(&mut self, depth: usize) -> Result<Option<u8>, HistoryError> {
        let bytes = self.src.as_bytes();
        loop {
            match bytes.get(self.pos) {
                Some(b'\n') => {
                    self.line += 1;
                    self.pos += 1;
                }
                Some(b' ' | b'\t' | b'\r' | b',' | b'\x0c') => self.pos += 1,
                Some(b';') => {
                    while let Some(&b) = bytes.get(self.pos) {
                        if b == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                Some(b'#') if bytes.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.read_nested(depth + 1)?;
                }
                other => return Ok(other.copied()),
            }
        }
    }

    /// Consumes one byte (after [`Reader::skip_ws`] returned it).
    pub fn bump(&mut self) {
        if self.pos < self.src.len() {
            if self.src.as_bytes()[self.pos] == b'\n' {
                self.line += 1;
            }
            self.pos += 1;
        }
    }

    /// Reads the next form, or `None` at the end of the input.
    pub fn next_form(&mut self) -> Result<Option<Edn<'a>>, HistoryError> {
        match self.skip_ws()? {
            None => Ok(None),
            Some(_) => self.read_nested(0).map(Some),
        }
    }

    /// Reads every remaining form.
    pub fn read_all(&mut self) -> Result<Vec<Edn<'a>>, HistoryError> {
        let mut forms = Vec::new();
        while let Some(f) = self.next_form()? {
            forms.push(f);
        }
        Ok(forms)
    }

    /// Reads one form at nesting `depth`.
    pub(super) fn read_nested(&mut self, depth: usize) -> Result<Edn<'a>, HistoryError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!(
                "forms nested deeper than {MAX_DEPTH} levels are not supported"
            )));
        }
        let Some(b) = self.skip(depth)? else {
            return Err(self.error("expected a form, found the end of the input"));
        };
        match b {
            b'(' => {
                self.pos += 1;
                self.read_seq(b')', "list", depth, Self::read_nested)
                    .map(Edn::List)
            }
            b'[' => {
                self.pos += 1;
                self.read_seq(b']', "vector", depth, Self::read_nested)
                    .map(Edn::Vector)
            }
            b'{' => {
                self.pos += 1;
                self.read_map(depth)
            }
            b')' | b']' | b'}' => Err(self.error(format!(
                "unexpected '{}' with no open collection to close",
                b as char
            ))),
            b'"' => {
                self.pos += 1;
                self.read_string().map(Edn::Str)
            }
            b'\\' => {
                self.pos += 1;
                self.read_char()
            }
            b'#' => {
                self.pos += 1;
                self.read_dispatch(depth)
            }
            _ => self.read_token(),
        }
    }

    /// After an opening bracket: items read by `item` up to `close`.
    fn read_seq<T>(
        &mut self,
        close: u8,
        what: &str,
        depth: usize,
        item: fn(&mut Self, usize) -> Result<T, HistoryError>,
    ) -> Result<Vec<T>, HistoryError> {
        let open_line = self.line;
        let mut items = Vec::new();
        loop {
            match self.skip(depth)? {
                None => {
                    return Err(self.error_at(
                        open_line,
                        format!(
                            "{what} opened here is never closed (the input ends at line {})",
                            self.line
                        ),
                    ))
                }
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => items.push(item(self, depth + 1)?),
            }
        }
    }

    /// After `{`: reads each key and calls `visit` with it, which must read the value
    /// (at the depth it is given), up to the closing `}`.
    fn entries(
        &mut self,
        depth: usize,
        mut visit: impl FnMut(&mut Self, Edn<'a>, usize) -> Result<(), HistoryError>,
    ) -> Result<(), HistoryError> {
        let open_line = self.line;
        loop {
            match self.skip(depth)? {
                None => {
                    return Err(self.error_at(
                        open_line,
                        format!(
                            "map opened here is never closed (the input ends at line {})",
                            self.line
                        ),
                    ))
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(_) => {
                    let key = match self.keyword() {
                        Some(k) => Edn::Keyword(k),
                        None => self.read_nested(depth + 1)?,
                    };
                    if self.skip(depth)? == Some(b'}') {
                        return Err(self.error(format!(
                            "map has a key ({}) with no value; a map needs an even number of forms",
                            key.describe()
                        )));
                    }
                    visit(self, key, depth + 1)?;
                }
            }
        }
    }

    fn read_map(&mut self, depth: usize) -> Result<Edn<'a>, HistoryError> {
        let mut entries = Vec::with_capacity(8);
        self.entries(depth, |r, key, d| {
            let value = r.read_nested(d)?;
            entries.push((key, value));
            Ok(())
        })?;
        Ok(Edn::Map(entries))
    }

    /// Reads a map, possibly tagged (`#jepsen.history.Op{...}`), entry by entry: `visit`
    /// gets each key and must read its value with [`Reader::read_form_at`] or
    /// [`Reader::read_json_at`] at the depth it is given. When the next form is not a
    /// map, nothing is consumed and the answer is `false`.
    pub fn read_map_with(
        &mut self,
        visit: impl FnMut(&mut Self, Edn<'a>, usize) -> Result<(), HistoryError>,
    ) -> Result<bool, HistoryError> {
        let (pos, line) = (self.pos, self.line);
        match self.skip(0)? {
            Some(b'{') => {}
            Some(b'#')
                if self
                    .src
                    .as_bytes()
                    .get(self.pos + 1)
                    .is_some_and(|&b| !is_delimiter(b) && !b"#_:\"".contains(&b)) =>
            {
                self.pos += 1;
                let _tag = self.token();
                if self.skip(0)? != Some(b'{') {
                    (self.pos, self.line) = (pos, line);
                    return Ok(false);
                }
            }
            _ => {
                (self.pos, self.line) = (pos, line);
                return Ok(false);
            }
        }
        self.pos += 1;
        self.entries(1, visit)?;
        Ok(true)
    }

    /// Reads one form nested `depth` levels deep (see [`Reader::read_map_with`]).
    pub fn read_form_at(&mut self, depth: usize) -> Result<Edn<'a>, HistoryError> {
        self.read_nested(depth)
    }

    /// Reads one form nested `depth` levels deep straight into JSON, as
    /// [`Edn::to_json`] would convert it.
    pub fn read_json_at(&mut self, depth: usize) -> Result<Value, HistoryError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!(
                "forms nested deeper than {MAX_DEPTH} levels are not supported"
            )));
        }
        match self.skip(depth)? {
            Some(b'[') => {
                self.pos += 1;
                self.read_seq(b']', "vector", depth, Self::read_json_at)
                    .map(Value::Array)
            }
            Some(b'(') => {
                self.pos += 1;
                self.read_seq(b')', "list", depth, Self::read_json_at)
                    .map(Value::Array)
            }
            Some(b'#') if self.src.as_bytes().get(self.pos + 1) == Some(&b'{') => {
                self.pos += 2;
                self.read_seq(b'}', "set", depth, Self::read_json_at)
                    .map(super::set_value)
            }
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                self.entries(depth, |r, key, d| {
                    let value = r.read_json_at(d)?;
                    entries.push((key, value));
                    Ok(())
                })?;
                Ok(super::map_value(entries))
            }
            _ => self.read_nested(depth).map(|e| e.to_json()),
        }
    }

    /// After `#`: sets, symbolic values, tagged literals.
    fn read_dispatch(&mut self, depth: usize) -> Result<Edn<'a>, HistoryError> {
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                self.read_seq(b'}', "set", depth, Self::read_nested)
                    .map(Edn::Set)
            }
            Some(b'#') => {
                self.pos += 1;
                let tok = self.token();
                match tok {
                    "Inf" => Ok(Edn::Float("##Inf")),
                    "-Inf" => Ok(Edn::Float("##-Inf")),
                    "NaN" => Ok(Edn::Float("##NaN")),
                    _ => Err(self.error(format!(
                        "unknown symbolic value ##{}; expected ##Inf, ##-Inf or ##NaN",
                        truncate(tok)
                    ))),
                }
            }
            Some(b'"') => {
                // A regular expression (Clojure, not EDN): kept as its text.
                self.pos += 1;
                self.read_string().map(Edn::Str)
            }
            Some(b':') => {
                // A namespaced map #:ns{...}: the namespace is dropped.
                self.pos += 1;
                let _ns = self.token();
                if self.peek() != Some(b'{') {
                    return Err(self.error("expected '{' after a #:namespace map prefix"));
                }
                self.pos += 1;
                self.read_map(depth)
            }
            Some(b) if !is_delimiter(b) && b != b'#' => {
                let tag = self.token();
                if tag.is_empty() {
                    return Err(self.error("expected a tag after '#'"));
                }
                // The tag is transparent: the tagged form stands for itself.
                if self.skip(depth)?.is_none() {
                    return Err(self.error(format!(
                        "tag #{} is followed by nothing; expected a form",
                        truncate(tag)
                    )));
                }
                self.read_nested(depth + 1)
            }
            _ => {
                Err(self
                    .error("expected a set #{...}, a tagged literal #tag form, or #_ after '#'"))
            }
        }
    }

    /// The maximal run of non-delimiter bytes at the position (possibly empty).
    pub(super) fn token(&mut self) -> &'a str {
        let bytes = self.src.as_bytes();
        let start = self.pos;
        while let Some(&b) = bytes.get(self.pos) {
            if is_delimiter(b) {
                break;
            }
            self.pos += 1;
        }
        // Delimiters are ASCII, so both ends are on character boundaries.
        self.src.get(start..self.pos).unwrap_or("")
    }

    /// A plain keyword at the position (the common map key), or `None` without moving.
    #[inline]
    fn keyword(&mut self) -> Option<&'a str> {
        let bytes = self.src.as_bytes();
        match (bytes.get(self.pos), bytes.get(self.pos + 1)) {
            (Some(b':'), Some(&b)) if b != b':' && !is_delimiter(b) => {}
            _ => return None,
        }
        self.pos += 1;
        Some(self.token())
    }

    fn read_token(&mut self) -> Result<Edn<'a>, HistoryError> {
        let tok = self.token();
        self.classify(tok)
    }

    /// Skips whitespace at `depth`; when the next form is a token (a number, keyword,
    /// symbol, `nil`, `true` or `false`) consumes and gives its text, else `None`
    /// (nothing else consumed). [`Reader::classify`] makes the text a form.
    pub fn token_at(&mut self, depth: usize) -> Result<Option<&'a str>, HistoryError> {
        match self.skip(depth)? {
            Some(b) if !is_delimiter(b) && b != b'#' && b != b'\\' => Ok(Some(self.token())),
            _ => Ok(None),
        }
    }

    /// The form a token's text stands for.
    pub fn classify(&self, tok: &'a str) -> Result<Edn<'a>, HistoryError> {
        let bytes = tok.as_bytes();
        match bytes.first() {
            None => Err(self.error("expected a form")),
            Some(b':') => {
                let name = tok.trim_start_matches(':');
                if name.is_empty() {
                    Err(self.error("a keyword needs a name after ':'"))
                } else {
                    Ok(Edn::Keyword(name))
                }
            }
            Some(b'0'..=b'9') => self.number(tok),
            Some(b'+' | b'-') if matches!(bytes.get(1), Some(b'0'..=b'9')) => self.number(tok),
            _ => Ok(match tok {
                "nil" => Edn::Nil,
                "true" => Edn::Bool(true),
                "false" => Edn::Bool(false),
                _ => Edn::Symbol(tok),
            }),
        }
    }
}
