//! EDN atoms: numbers, strings (with escapes) and character literals.

use super::{truncate, Edn, Reader};
use crate::error::HistoryError;
use std::borrow::Cow;

impl<'a> Reader<'a> {
    pub(super) fn number(&self, tok: &'a str) -> Result<Edn<'a>, HistoryError> {
        if tok.len() <= 18 && tok.bytes().all(|b| b.is_ascii_digit()) {
            let n = tok.bytes().fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
            return Ok(Edn::Int(n));
        }
        let bad = || {
            self.error(format!(
                "malformed number {:?}; expected an integer or a decimal number",
                truncate(tok)
            ))
        };
        if tok.contains('/') {
            // A ratio (Clojure): kept as written.
            let ok = tok
                .trim_start_matches(['+', '-'])
                .split('/')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            return if ok { Ok(Edn::Float(tok)) } else { Err(bad()) };
        }
        if let Some(dec) = tok.strip_suffix('M') {
            return dec
                .parse::<f64>()
                .map(|_| Edn::Float(tok))
                .map_err(|_| bad());
        }
        if tok.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            if !tok
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
            {
                return Err(bad());
            }
            return tok
                .parse::<f64>()
                .map(|_| Edn::Float(tok))
                .map_err(|_| bad());
        }
        let int = tok.strip_suffix('N').unwrap_or(tok);
        let digits = int.trim_start_matches(['+', '-']);
        if digits.is_empty()
            || int.len() - digits.len() > 1
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        match int.parse::<i64>() {
            Ok(i) => Ok(Edn::Int(i)),
            Err(_) => Ok(Edn::BigInt(int.strip_prefix('+').unwrap_or(int))),
        }
    }

    /// After the opening quote.
    pub(super) fn read_string(&mut self) -> Result<Cow<'a, str>, HistoryError> {
        let open_line = self.line;
        let bytes = self.src.as_bytes();
        let start = self.pos;
        // Fast path: no escapes.
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'"' => {
                    let s = self.src.get(start..self.pos).unwrap_or("");
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                b'\\' => break,
                b'\n' => self.line += 1,
                _ => {}
            }
            self.pos += 1;
        }
        let mut out = String::from(self.src.get(start..self.pos).unwrap_or(""));
        loop {
            let rest = self.src.get(self.pos..).unwrap_or("");
            let mut chars = rest.chars();
            let Some(c) = chars.next() else {
                return Err(self.error_at(
                    open_line,
                    format!(
                        "string opened here is never closed (the input ends at line {})",
                        self.line
                    ),
                ));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(Cow::Owned(out)),
                '\n' => {
                    self.line += 1;
                    out.push('\n');
                }
                '\\' => {
                    let Some(e) = self.src.get(self.pos..).and_then(|r| r.chars().next()) else {
                        continue;
                    };
                    self.pos += e.len_utf8();
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '\'' => out.push('\''),
                        'u' => {
                            let c = self.unicode_escape()?;
                            out.push(c);
                        }
                        other => {
                            return Err(self.error(format!(
                                "unknown escape \\{other} in a string; expected \\n, \\t, \\r, \\\", \\\\ or \\uXXXX"
                            )))
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.src.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(h, 16).ok()?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        Some(v)
    }

    /// After `\u`: four hex digits, combining a UTF-16 surrogate pair when one follows.
    fn unicode_escape(&mut self) -> Result<char, HistoryError> {
        let Some(hi) = self.hex4() else {
            return Err(self.error("\\u must be followed by four hex digits"));
        };
        if (0xD800..0xDC00).contains(&hi) && self.src.get(self.pos..self.pos + 2) == Some("\\u") {
            let save = self.pos;
            self.pos += 2;
            if let Some(lo) = self.hex4() {
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return Ok(char::from_u32(c).unwrap_or('\u{FFFD}'));
                }
            }
            self.pos = save;
        }
        Ok(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }

    /// After a backslash outside a string: a character literal.
    pub(super) fn read_char(&mut self) -> Result<Edn<'a>, HistoryError> {
        let rest = self.src.get(self.pos..).unwrap_or("");
        let Some(first) = rest.chars().next() else {
            return Err(self.error("expected a character after '\\'"));
        };
        self.pos += first.len_utf8();
        let more = self.token();
        if more.is_empty() {
            return Ok(Edn::Char(first));
        }
        let name = self
            .src
            .get(self.pos - more.len() - first.len_utf8()..self.pos)
            .unwrap_or("");
        let c = match name {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "formfeed" => '\u{c}',
            "backspace" => '\u{8}',
            _ if first == 'u' && more.len() == 4 => u32::from_str_radix(more, 16)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}'),
            _ => return Err(self.error(format!("unknown character literal \\{}", truncate(name)))),
        };
        Ok(Edn::Char(c))
    }
}
