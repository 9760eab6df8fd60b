//! The client-facing HTTP/JSON contract shared by both modes.
//!
//! Every answer is a JSON object with an explicit `outcome` so that a client maps it onto
//! the history without guessing, and names the node that served it:
//!
//! | outcome   | meaning                                                | HTTP status |
//! |-----------|--------------------------------------------------------|-------------|
//! | `ok`      | applied; `value` is the value read (reads) or written  | 200         |
//! | `fail`    | `error: "mismatch"`: cas compare failed, not applied   | 409         |
//! | `fail`    | `not-a-list`: a txn's append met a value that is not a list, nothing applied | 409 |
//! | `fail`    | `not-leader`, `no-leader`, `leader-unreachable`, `no-quorum`, `dropped`: definitely not applied | 503 |
//! | `fail`    | `unsupported` (cas on quorum-kv)                       | 501         |
//! | `fail`    | `bad-request` (bad key or path, body that does not parse) | 400      |
//! | `fail`    | `unauthorized` / `forbidden` (peer routes: token missing / wrong) | 401 / 403 |
//! | `fail`    | `not-found` (no such route)                            | 404         |
//! | `fail`    | `method-not-allowed` (the route exists, not with this method) | 405  |
//! | `fail`    | `too-large` (body over the route's limit)              | 413         |
//! | `fail`    | `state-full` (raft-register: the state would pass its size limit) | 507 |
//! | `unknown` | `timeout`, `forward-failed`, `superseded`, `quorum-not-reached`, `partial` (a transaction failed part-way): may or may not have been applied | 504 |
//!
//! `null` as a value means "never written". A transaction's `ok` answer carries `txn` (the
//! request with what each read read) instead of `value`; see [`parse_txn`] and [`Txn`].

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
    /// For a transaction (`ok`): the request's micro-operations with what each read read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<Value>,
    /// For `not-a-list`: the key, as the request named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// For `not-a-list`: the position of the append that met a value that is not a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
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
            txn: None,
            key: None,
            index: None,
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
                Some("mismatch" | "not-a-list") => StatusCode::CONFLICT,
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

/// Most micro-operations in one transaction.
pub const MAX_TXN_MOPS: usize = 64;

/// What a micro-operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MopKind {
    /// Read the key.
    #[serde(rename = "r")]
    Read,
    /// Overwrite the key.
    #[serde(rename = "w")]
    Write,
    /// Append to the list the key holds.
    #[serde(rename = "append")]
    Append,
}

impl MopKind {
    /// The name used in requests and answers (`r`, `w`, `append`).
    pub fn name(self) -> &'static str {
        match self {
            MopKind::Read => "r",
            MopKind::Write => "w",
            MopKind::Append => "append",
        }
    }
}

/// One micro-operation of a transaction, on a validated key in its text form. It is
/// serialised as the array `[kind, key, value]` (the value is `null` for a read), as in
/// requests, which keeps a Raft log entry no longer than the request that made it (but
/// for the quotes around integer keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mop(pub MopKind, pub String, pub Value);

impl Mop {
    /// What it does.
    pub fn kind(&self) -> MopKind {
        self.0
    }

    /// The key (text form).
    pub fn key(&self) -> &str {
        &self.1
    }

    /// The value written or appended (`null` for a read).
    pub fn value(&self) -> &Value {
        &self.2
    }
}

/// A validated `POST /txn` request: the micro-operations and each key as the client sent
/// it (a string or an integer), to be echoed back.
#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    /// The micro-operations, in order.
    pub mops: Vec<Mop>,
    /// The key of each micro-operation exactly as sent.
    pub keys_sent: Vec<Value>,
}

impl Txn {
    /// The sub-transaction of the micro-operations at `positions`, keys as sent.
    pub fn select(&self, positions: &[usize]) -> Self {
        Self {
            mops: positions
                .iter()
                .filter_map(|i| self.mops.get(*i).cloned())
                .collect(),
            keys_sent: positions
                .iter()
                .filter_map(|i| self.keys_sent.get(*i).cloned())
                .collect(),
        }
    }

    /// The request body of this transaction (keys as sent), for forwarding.
    pub fn body(&self) -> Value {
        let mops: Vec<Value> = self
            .mops
            .iter()
            .zip(&self.keys_sent)
            .map(|(m, k)| Value::Array(vec![m.kind().name().into(), k.clone(), m.value().clone()]))
            .collect();
        serde_json::json!({ "txn": mops })
    }

    /// The `txn` of an `ok` answer: the request with every read's third element replaced
    /// by `reads[i]` (one entry per micro-operation; ignored for writes and appends).
    pub fn answered(&self, reads: &[Value]) -> Value {
        let mops: Vec<Value> = self
            .mops
            .iter()
            .zip(&self.keys_sent)
            .enumerate()
            .map(|(i, (m, k))| {
                let third = match m.kind() {
                    MopKind::Read => reads.get(i).cloned().unwrap_or(Value::Null),
                    _ => m.value().clone(),
                };
                Value::Array(vec![m.kind().name().into(), k.clone(), third])
            })
            .collect();
        Value::Array(mops)
    }

    /// The `ok` answer carrying `reads` (see [`answered`](Self::answered)).
    pub fn ok(&self, node: &str, reads: &[Value]) -> Answer {
        let mut a = Answer::ack(node);
        a.txn = Some(self.answered(reads));
        a
    }

    /// The `not-a-list` answer for the append at position `index`.
    pub fn not_a_list(&self, node: &str, index: usize) -> Answer {
        let mut a = Answer::fail(node, "not-a-list");
        a.key = self.keys_sent.get(index).cloned();
        a.index = Some(index);
        a
    }
}

/// Body of `POST /txn`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TxnBody {
    txn: Vec<Value>,
}

/// A key of a micro-operation: a valid key string, or a non-negative integer meaning the
/// key named by its decimal text.
fn txn_key(key: &Value) -> Result<String, String> {
    let text = match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            let t = n.to_string();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "an integer key must be a non-negative integer, not {t}"
                ));
            }
            t
        }
        other => return Err(format!("a key must be a string or an integer, not {other}")),
    };
    validate_key(&text)?;
    Ok(text)
}

/// Parses and validates the body of `POST /txn`; `Err` carries a message for a 400.
pub fn parse_txn(body: &[u8]) -> Result<Txn, String> {
    let b: TxnBody = serde_json::from_slice(body)
        .map_err(|e| format!("txn body must be {{\"txn\":[MOP,...]}}: {e}"))?;
    if b.txn.is_empty() || b.txn.len() > MAX_TXN_MOPS {
        return Err(format!(
            "a txn holds 1 to {MAX_TXN_MOPS} micro-operations, not {}",
            b.txn.len()
        ));
    }
    let mut mops = Vec::with_capacity(b.txn.len());
    let mut keys_sent = Vec::with_capacity(b.txn.len());
    for (i, mop) in b.txn.into_iter().enumerate() {
        let Value::Array(parts) = mop else {
            return Err(format!(
                "micro-operation {i} must be an array [f, key, value]"
            ));
        };
        let [f, key, value]: [Value; 3] = parts.try_into().map_err(|p: Vec<Value>| {
            format!(
                "micro-operation {i} must have 3 elements [f, key, value], not {}",
                p.len()
            )
        })?;
        let kind = match f.as_str() {
            Some("r") => MopKind::Read,
            Some("w") => MopKind::Write,
            Some("append") => MopKind::Append,
            _ => {
                return Err(format!(
                    "micro-operation {i}: f must be \"r\", \"w\" or \"append\", not {f}"
                ))
            }
        };
        let text = txn_key(&key).map_err(|e| format!("micro-operation {i}: {e}"))?;
        if kind == MopKind::Read && !value.is_null() {
            return Err(format!("micro-operation {i}: a read's value must be null"));
        }
        mops.push(Mop(kind, text, value));
        keys_sent.push(key);
    }
    Ok(Txn { mops, keys_sent })
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

    #[test]
    fn txn_bodies_are_validated_and_keys_normalised() {
        let t = parse_txn(
            br#"{"txn":[["r",3,null],["append","3",1],["w",18446744073709551617,{"a":1}]]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.mops,
            vec![
                Mop(MopKind::Read, "3".into(), Value::Null),
                Mop(MopKind::Append, "3".into(), Value::from(1)),
                Mop(
                    MopKind::Write,
                    "18446744073709551617".into(),
                    serde_json::json!({"a": 1})
                ),
            ]
        );
        // Keys echo as sent, reads are filled in, other values stay.
        let echoed = t.answered(&[serde_json::json!([1]), Value::Null, Value::Null]);
        assert_eq!(
            echoed.to_string(),
            r#"[["r",3,[1]],["append","3",1],["w",18446744073709551617,{"a":1}]]"#
        );
        assert_eq!(
            parse_txn(t.body().to_string().as_bytes()).map(|b| b.keys_sent),
            Ok(t.keys_sent.clone())
        );
        let sub = t.select(&[2, 0]);
        assert_eq!(sub.mops.len(), 2);
        assert_eq!(sub.keys_sent[1], Value::from(3));
        let a = t.not_a_list("n1", 1);
        assert_eq!(
            serde_json::to_string(&a).unwrap_or_default(),
            r#"{"outcome":"fail","error":"not-a-list","key":"3","index":1,"node":"n1"}"#
        );
        assert_eq!(a.status(), StatusCode::CONFLICT);

        let max: Vec<String> = (0..MAX_TXN_MOPS)
            .map(|i| format!(r#"["r",{i},null]"#))
            .collect();
        assert!(parse_txn(format!(r#"{{"txn":[{}]}}"#, max.join(",")).as_bytes()).is_ok());
        let over: Vec<String> = (0..=MAX_TXN_MOPS)
            .map(|i| format!(r#"["r",{i},null]"#))
            .collect();
        let refused = [
            r#"{"txn":[]}"#.to_owned(),
            format!(r#"{{"txn":[{}]}}"#, over.join(",")),
            r#"{"txn":[["x",1,null]]}"#.to_owned(),
            r#"{"txn":[["R",1,null]]}"#.to_owned(),
            r#"{"txn":[[1,1,null]]}"#.to_owned(),
            r#"{"txn":[["r",1]]}"#.to_owned(),
            r#"{"txn":[["w",1,2,3]]}"#.to_owned(),
            r#"{"txn":[{"f":"r"}]}"#.to_owned(),
            r#"{"txn":["r"]}"#.to_owned(),
            r#"{"txn":[["r",-1,null]]}"#.to_owned(),
            r#"{"txn":[["r",1.0,null]]}"#.to_owned(),
            r#"{"txn":[["r",1e3,null]]}"#.to_owned(),
            r#"{"txn":[["r",true,null]]}"#.to_owned(),
            r#"{"txn":[["r",[1],null]]}"#.to_owned(),
            r#"{"txn":[["r","a b",null]]}"#.to_owned(),
            r#"{"txn":[["r","",null]]}"#.to_owned(),
            r#"{"txn":[["r","k",1]]}"#.to_owned(),
            format!(r#"{{"txn":[["r","{}",null]]}}"#, "k".repeat(257)),
            r#"{"txn":[["r",1,null]],"x":1}"#.to_owned(),
            r#"{"mops":[]}"#.to_owned(),
            r#"[["r",1,null]]"#.to_owned(),
            "{".to_owned(),
        ];
        for body in refused {
            assert!(parse_txn(body.as_bytes()).is_err(), "{body}");
        }
        // A 256-digit integer key is a valid key; 257 digits are not.
        assert!(
            parse_txn(format!(r#"{{"txn":[["r",{},null]]}}"#, "9".repeat(256)).as_bytes()).is_ok()
        );
        assert!(
            parse_txn(format!(r#"{{"txn":[["r",{},null]]}}"#, "9".repeat(257)).as_bytes()).is_err()
        );
    }
}
