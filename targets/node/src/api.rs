//! The client-facing HTTP/JSON contract shared by both modes.
//!
//! Every answer is a JSON object with an explicit `outcome` so that a client maps it onto
//! the history without guessing, and names the node that served it:
//!
//! | outcome   | meaning                                                | HTTP status |
//! |-----------|--------------------------------------------------------|-------------|
//! | `ok`      | applied; `value` is the value read (reads) or written  | 200         |
//! | `fail`    | `error: "mismatch"`: cas compare failed, not applied   | 409         |
//! | `fail`    | `not-leader`, `no-leader`, `leader-unreachable`, `no-quorum`, `dropped`: definitely not applied | 503 |
//! | `fail`    | `unsupported` (cas on quorum-kv)                       | 501         |
//! | `fail`    | `bad-request` (bad key or path, body that does not parse) | 400      |
//! | `fail`    | `unauthorized` / `forbidden` (peer routes: token missing / wrong) | 401 / 403 |
//! | `fail`    | `not-found` (no such route)                            | 404         |
//! | `fail`    | `method-not-allowed` (the route exists, not with this method) | 405  |
//! | `fail`    | `too-large` (body over the route's limit)              | 413         |
//! | `fail`    | `state-full` (raft-register: the state would pass its size limit) | 507 |
//! | `unknown` | `timeout`, `forward-failed`, `superseded`, `quorum-not-reached`: may or may not have been applied | 504 |
//!
//! `null` as a value means "never written".

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest request body a node accepts (1 MiB); larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// Header set on a request that one node forwarded to another, so it is never forwarded twice.
pub const FORWARDED_HEADER: &str = "x-faultline-forwarded";

/// The three outcomes of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Applied; the result is known.
    Ok,
    /// Definitely not applied.
    Fail,
    /// May or may not have been applied.
    Unknown,
}

/// One answer to a client request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// What happened.
    pub outcome: Outcome,
    /// For `ok`: the value read, or the value written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// For `fail` and `unknown`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a cas `mismatch`: the value found instead of the expected one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Value>,
    /// For `not-leader`: the address of the node believed to lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// For refused requests (`bad-request`, ...): a human-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The node that served the request (`n1`, `n2`, ...).
    pub node: String,
}

impl Answer {
    /// An `ok` answer carrying `value`.
    pub fn ok(node: &str, value: Value) -> Self {
        Self::new(Outcome::Ok, node, Some(value), None)
    }

    /// An `ok` answer that carries no value (peer routes, `/health`).
    pub fn ack(node: &str) -> Self {
        Self::new(Outcome::Ok, node, None, None)
    }

    /// A `fail` answer: definitely not applied.
    pub fn fail(node: &str, error: &str) -> Self {
        Self::new(Outcome::Fail, node, None, Some(error))
    }

    /// A cas whose compare failed; `current` is the value found.
    pub fn mismatch(node: &str, current: Value) -> Self {
        let mut a = Self::fail(node, "mismatch");
        a.current = Some(current);
        a
    }

    /// An `unknown` answer: the operation may have been applied.
    pub fn unknown(node: &str, error: &str) -> Self {
        Self::new(Outcome::Unknown, node, None, Some(error))
    }

    fn new(outcome: Outcome, node: &str, value: Option<Value>, error: Option<&str>) -> Self {
        Self {
            outcome,
            value,
            error: error.map(str::to_owned),
            current: None,
            leader: None,
            detail: None,
            node: node.to_owned(),
        }
    }

    /// The same answer with a human-readable reason in `detail`.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The HTTP status code that goes with this answer (see the module docs).
    pub fn status(&self) -> StatusCode {
        match self.outcome {
            Outcome::Ok => StatusCode::OK,
            Outcome::Unknown => StatusCode::GATEWAY_TIMEOUT,
            Outcome::Fail => match self.error.as_deref() {
                Some("mismatch") => StatusCode::CONFLICT,
                Some("unsupported") => StatusCode::NOT_IMPLEMENTED,
                Some("bad-request") => StatusCode::BAD_REQUEST,
                Some("unauthorized") => StatusCode::UNAUTHORIZED,
                Some("forbidden") => StatusCode::FORBIDDEN,
                Some("not-found") => StatusCode::NOT_FOUND,
                Some("method-not-allowed") => StatusCode::METHOD_NOT_ALLOWED,
                Some("too-large") => StatusCode::PAYLOAD_TOO_LARGE,
                Some("state-full") => StatusCode::INSUFFICIENT_STORAGE,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self)).into_response()
    }
}

/// Body of `PUT /kv/{key}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBody {
    /// The value to store (any JSON).
    pub value: Value,
}

/// Body of `POST /kv/{key}/cas`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasBody {
    /// The value the key must hold (`null` = never written).
    pub expected: Value,
    /// The value to store if it does.
    pub new: Value,
}

/// A client operation on one key, after the request has been validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Read the key.
    Read,
    /// Overwrite the key.
    Write {
        /// The new value.
        value: Value,
    },
    /// Compare-and-set.
    Cas {
        /// The value required.
        expected: Value,
        /// The value set when the compare holds.
        new: Value,
    },
}

/// Checks a key: 1 to [`MAX_KEY_BYTES`] bytes of ASCII letters, digits, `-`, `_`, `.`, `:`.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("key must be 1 to {MAX_KEY_BYTES} bytes"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err("key may hold only ASCII letters, digits and - _ . :".to_owned());
    }
    Ok(())
}

/// Parses the body of a write or cas request into an [`Op`]; `Err` carries a message for a 400.
pub fn parse_op(is_cas: bool, body: &[u8]) -> Result<Op, String> {
    if is_cas {
        let b: CasBody = serde_json::from_slice(body)
            .map_err(|e| format!("cas body must be {{\"expected\":E,\"new\":N}}: {e}"))?;
        Ok(Op::Cas {
            expected: b.expected,
            new: b.new,
        })
    } else {
        let b: WriteBody = serde_json::from_slice(body)
            .map_err(|e| format!("write body must be {{\"value\":V}}: {e}"))?;
        Ok(Op::Write { value: b.value })
    }
}

/// A `400 bad-request` answer with a human-readable reason in `detail`.
pub fn bad_request(node: &str, detail: &str) -> Response {
    Answer::fail(node, "bad-request")
        .with_detail(detail)
        .into_response()
}

/// The wall-clock time as this process sees it, in nanoseconds since the Unix epoch
/// (0 if the clock is before the epoch). Read through `std` so libfaketime can shift it.
pub fn wall_clock_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_outcome() {
        assert_eq!(Answer::ok("n1", Value::Null).status(), StatusCode::OK);
        assert_eq!(
            Answer::mismatch("n1", Value::from(3)).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            Answer::fail("n1", "not-leader").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            Answer::fail("n1", "unsupported").status(),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            Answer::unknown("n1", "timeout").status(),
            StatusCode::GATEWAY_TIMEOUT
        );
    }

    #[test]
    fn null_value_is_kept_in_json() {
        let s = serde_json::to_string(&Answer::ok("n2", Value::Null)).unwrap_or_default();
        assert_eq!(s, r#"{"outcome":"ok","value":null,"node":"n2"}"#);
        let m = serde_json::to_string(&Answer::mismatch("n2", Value::Null)).unwrap_or_default();
        assert_eq!(
            m,
            r#"{"outcome":"fail","error":"mismatch","current":null,"node":"n2"}"#
        );
    }

    #[test]
    fn keys_and_bodies_are_validated() {
        assert!(validate_key("k1").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("a/b").is_err());
        assert!(validate_key(&"x".repeat(300)).is_err());
        assert_eq!(
            parse_op(false, br#"{"value":[1,2]}"#),
            Ok(Op::Write {
                value: serde_json::json!([1, 2])
            })
        );
        assert!(parse_op(false, b"{").is_err());
        assert!(parse_op(false, br#"{"val":1}"#).is_err());
        assert_eq!(
            parse_op(true, br#"{"expected":null,"new":5}"#),
            Ok(Op::Cas {
                expected: Value::Null,
                new: Value::from(5)
            })
        );
        assert!(parse_op(true, br#"{"expected":1}"#).is_err());
    }
}
