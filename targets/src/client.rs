//! The HTTP/JSON client of faultline-node (both modes), and the pure mapping of its
//! answers and transport errors onto ok / fail / info.
//!
//! The rule (DESIGN §5): only what proves an operation did not happen is `fail` — an
//! answer `"outcome":"fail"`, or a connection that could not be opened, so nothing was
//! sent. A timeout, a reset after sending, an unreadable answer or an `unknown` outcome
//! is `info`: the operation may have taken effect.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::target::{
    check_txn_answer, Client, ClientOp, Completion, CompletionKind, Role, TargetError,
};

/// An answer of faultline-node, as far as the client reads it.
#[derive(Debug, Deserialize)]
struct Answer {
    outcome: String,
    /// `Some(Null)` for `"value":null` (never written), `None` when absent.
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    node: Option<String>,
    /// A transaction's micro-operations with the reads filled in (`POST /txn`).
    #[serde(default)]
    txn: Option<Value>,
}

/// Keeps a JSON `null` as `Some(Value::Null)`: only an absent field is `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Maps an HTTP answer (status and body) to a completion of `op`.
///
/// - `"outcome":"ok"`: ok; a read's value is the answer's `value` (`null` = never
///   written), a write's or cas's is the invoke's argument. An ok read without `value` is
///   not trusted: info.
/// - `"outcome":"ok"` of a transaction: ok with the answer's `txn` (reads filled in),
///   when it is the list sent with its reads filled ([`check_txn_answer`]); otherwise
///   info (the transaction may have been applied, but what it read is not known).
/// - `"outcome":"fail"`: fail, with the answer's `error` (`mismatch`, `not-leader`,
///   `not-a-list`...).
/// - `"outcome":"unknown"`, or a body that is not an answer: info.
pub fn map_answer(status: u16, body: &[u8], op: &ClientOp) -> Completion {
    let answer: Answer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            return Completion::info(format!("unreadable answer (HTTP {status}): {text}"));
        }
    };
    let node = answer.node.clone();
    let mut c = match answer.outcome.as_str() {
        "ok" => match op {
            ClientOp::Read => match answer.value {
                Some(v) => Completion {
                    kind: CompletionKind::Ok,
                    value: v,
                    error: None,
                    node: None,
                },
                None => Completion::info("ok read without a value"),
            },
            ClientOp::Txn(mops) => match answer.txn {
                Some(list) => match check_txn_answer(mops, &list) {
                    Ok(()) => Completion {
                        kind: CompletionKind::Ok,
                        value: list,
                        error: None,
                        node: None,
                    },
                    Err(why) => Completion::info(format!("ok transaction answer: {why}")),
                },
                None => Completion::info("ok transaction without its txn"),
            },
            _ => Completion {
                kind: CompletionKind::Ok,
                value: op.argument(),
                error: None,
                node: None,
            },
        },
        "fail" => Completion::fail(answer.error.unwrap_or_else(|| format!("http-{status}"))),
        "unknown" => Completion::info(answer.error.unwrap_or_else(|| "unknown".to_string())),
        other => Completion::info(format!("unexpected outcome {other:?} (HTTP {status})")),
    };
    c.node = node;
    c
}

/// What went wrong on the way, as far as the mapping cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// The connection could not be opened (refused, unreachable, connect timed out):
    /// nothing was sent.
    Connect,
    /// No answer within the timeout after sending.
    Timeout,
    /// Anything else after the connection was open (reset, closed, broken body).
    Other,
}

/// Maps a transport error to a completion: `Connect` is fail (nothing was sent),
/// everything else info.
pub fn map_transport_error(kind: TransportError, detail: &str) -> Completion {
    match kind {
        TransportError::Connect => Completion::fail(format!("connect: {detail}")),
        TransportError::Timeout => Completion::info("timeout"),
        TransportError::Other => Completion::info(format!("transport: {detail}")),
    }
}

fn classify(e: &reqwest::Error) -> TransportError {
    if e.is_connect() {
        TransportError::Connect
    } else if e.is_timeout() {
        TransportError::Timeout
    } else {
        TransportError::Other
    }
}

/// The HTTP client of a target's client for `node`: every request bounded by `timeout`,
/// opening a connection by at most half of it, connections kept, no proxy.
pub fn http_client(node: &str, timeout: Duration) -> Result<reqwest::Client, TargetError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout / 2)
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .no_proxy()
        .build()
        .map_err(|e| TargetError::Client {
            node: node.to_string(),
            message: e.to_string(),
        })
}

/// The completion of `op` from what sending its request gave: the answer through `map`
/// (HTTP status, body, op), or a transport failure. Only a connection that could not be
/// opened is a definite `fail`; once the request is sent, a failure says nothing about
/// its effect.
pub async fn complete(
    sent: Result<reqwest::Response, reqwest::Error>,
    op: &ClientOp,
    map: impl FnOnce(u16, &[u8], &ClientOp) -> Completion,
) -> Completion {
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Ok(body) => map(status, &body, op),
                Err(e) => map_transport_error(
                    match classify(&e) {
                        TransportError::Connect => TransportError::Other,
                        k => k,
                    },
                    &e.to_string(),
                ),
            }
        }
        Err(e) => map_transport_error(classify(&e), &e.to_string()),
    }
}

/// A faultline-node client bound to one node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    base: String,
    node: String,
    status_path: String,
}

impl NodeClient {
    /// A client for `node` at `addr`; every request is bounded by `timeout`, opening a
    /// connection by at most half of it.
    pub fn new(node: &str, addr: SocketAddr, timeout: Duration) -> Result<Self, TargetError> {
        Ok(NodeClient {
            http: http_client(node, timeout)?,
            base: format!("http://{addr}"),
            node: node.to_string(),
            status_path: "/status".to_string(),
        })
    }

    /// The same client asking `path` (instead of `/status`) who leads.
    pub fn with_status_path(mut self, path: &str) -> Self {
        self.status_path = path.to_string();
        self
    }

    /// The request for `op` on `key` (a transaction is `POST /txn`; the key is not used).
    fn request(&self, key: &str, op: &ClientOp) -> reqwest::RequestBuilder {
        let url = format!("{}/kv/{key}", self.base);
        match op {
            ClientOp::Txn(_) => self
                .http
                .post(format!("{}/txn", self.base))
                .json(&json!({ "txn": op.argument() })),
            ClientOp::Read => self.http.get(url),
            ClientOp::Write(v) => self.http.put(url).json(&json!({ "value": v })),
            ClientOp::Cas { expected, new } => self
                .http
                .post(format!("{url}/cas"))
                .json(&json!({ "expected": expected, "new": new })),
        }
    }
}

#[async_trait]
impl Client for NodeClient {
    async fn invoke(&self, key: &str, op: &ClientOp) -> Completion {
        let sent = self.request(key, op).send().await;
        let mut c = complete(sent, op, map_answer).await;
        if c.node.is_none() {
            c.node = Some(self.node.clone());
        }
        c
    }

    async fn role(&self) -> Role {
        let Ok(resp) = self
            .http
            .get(format!("{}{}", self.base, self.status_path))
            .send()
            .await
        else {
            return Role::Unknown;
        };
        match resp.json::<Value>().await {
            Ok(v) => role_of_status(&v),
            Err(_) => Role::Unknown,
        }
    }
}

/// The role a faultline-node `/status` document states (`"role"` and `"term"`;
/// quorum-kv has neither and is [`Role::Unknown`]).
pub fn role_of_status(status: &Value) -> Role {
    match status.get("role").and_then(Value::as_str) {
        Some("leader") => Role::Leader {
            term: status.get("term").and_then(Value::as_u64).unwrap_or(0),
        },
        Some(_) => Role::Follower,
        None => Role::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(c: &Completion) -> CompletionKind {
        c.kind
    }

    #[test]
    fn ok_reads_carry_the_value_and_null_means_never_written() {
        let c = map_answer(
            200,
            br#"{"outcome":"ok","value":7,"node":"n2"}"#,
            &ClientOp::Read,
        );
        assert_eq!(
            (kind(&c), c.value.clone(), c.node.as_deref()),
            (CompletionKind::Ok, json!(7), Some("n2"))
        );
        let c = map_answer(
            200,
            br#"{"outcome":"ok","value":null,"node":"n1"}"#,
            &ClientOp::Read,
        );
        assert_eq!((kind(&c), c.value), (CompletionKind::Ok, Value::Null));
        let c = map_answer(200, br#"{"outcome":"ok","node":"n1"}"#, &ClientOp::Read);
        assert_eq!(
            kind(&c),
            CompletionKind::Info,
            "an ok read without value is not trusted"
        );
    }

    #[test]
    fn transactions_complete_with_the_reads_filled_in() {
        let op = ClientOp::Txn(vec![
            crate::target::Mop::Append(1, 4),
            crate::target::Mop::Read(1),
            crate::target::Mop::Read(7),
        ]);
        let c = map_answer(
            200,
            br#"{"outcome":"ok","txn":[["append",1,4],["r",1,[2,4]],["r",7,null]],"node":"n3"}"#,
            &op,
        );
        assert_eq!(
            (kind(&c), c.value.clone(), c.node.as_deref()),
            (
                CompletionKind::Ok,
                json!([["append", 1, 4], ["r", 1, [2, 4]], ["r", 7, null]]),
                Some("n3")
            )
        );
        // An abort (the key holds no list) did nothing: fail.
        let c = map_answer(
            409,
            br#"{"outcome":"fail","error":"not-a-list","node":"n1"}"#,
            &op,
        );
        assert_eq!(
            (kind(&c), c.error.as_deref()),
            (CompletionKind::Fail, Some("not-a-list"))
        );
        // Unknown, an answer without the list, or one that is not the list sent: info.
        for body in [
            &br#"{"outcome":"unknown","error":"timeout","node":"n1"}"#[..],
            br#"{"outcome":"ok","node":"n1"}"#,
            br#"{"outcome":"ok","txn":[["append",1,4]],"node":"n1"}"#,
            br#"{"outcome":"ok","txn":[["append",1,5],["r",1,[5]],["r",7,null]]}"#,
            b"<html>bad gateway</html>",
        ] {
            assert_eq!(
                kind(&map_answer(504, body, &op)),
                CompletionKind::Info,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let c = map_answer(
            503,
            br#"{"outcome":"fail","error":"not-leader","node":"n2"}"#,
            &op,
        );
        assert_eq!(kind(&c), CompletionKind::Fail);
    }

    #[test]
    fn ok_writes_and_cas_record_their_argument() {
        let c = map_answer(
            200,
            br#"{"outcome":"ok","value":3,"node":"n1"}"#,
            &ClientOp::Write(3),
        );
        assert_eq!((kind(&c), c.value), (CompletionKind::Ok, json!(3)));
        let op = ClientOp::Cas {
            expected: 3,
            new: 4,
        };
        let c = map_answer(200, br#"{"outcome":"ok","value":4,"node":"n1"}"#, &op);
        assert_eq!((kind(&c), c.value), (CompletionKind::Ok, json!([3, 4])));
    }

    #[test]
    fn definite_refusals_are_fail_with_their_error() {
        let op = ClientOp::Cas {
            expected: 3,
            new: 4,
        };
        let c = map_answer(
            409,
            br#"{"outcome":"fail","error":"mismatch","current":5,"node":"n1"}"#,
            &op,
        );
        assert_eq!(
            (kind(&c), c.error.as_deref()),
            (CompletionKind::Fail, Some("mismatch"))
        );
        let c = map_answer(
            503,
            br#"{"outcome":"fail","error":"not-leader","node":"n3"}"#,
            &ClientOp::Write(1),
        );
        assert_eq!(
            (kind(&c), c.error.as_deref()),
            (CompletionKind::Fail, Some("not-leader"))
        );
    }

    #[test]
    fn unknown_outcomes_and_garbage_are_info() {
        let c = map_answer(
            504,
            br#"{"outcome":"unknown","error":"timeout","node":"n1"}"#,
            &ClientOp::Write(1),
        );
        assert_eq!(
            (kind(&c), c.error.as_deref()),
            (CompletionKind::Info, Some("timeout"))
        );
        assert_eq!(
            kind(&map_answer(502, b"Bad Gateway", &ClientOp::Write(1))),
            CompletionKind::Info
        );
        assert_eq!(
            kind(&map_answer(
                200,
                br#"{"outcome":"maybe","node":"n1"}"#,
                &ClientOp::Read
            )),
            CompletionKind::Info
        );
    }

    #[test]
    fn only_a_refused_connection_is_fail() {
        assert_eq!(
            map_transport_error(TransportError::Connect, "refused").kind,
            CompletionKind::Fail
        );
        assert_eq!(
            map_transport_error(TransportError::Timeout, "").kind,
            CompletionKind::Info
        );
        assert_eq!(
            map_transport_error(TransportError::Other, "reset").kind,
            CompletionKind::Info
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_fail_and_a_silent_server_is_info() {
        // A port nobody listens on: refused before sending.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed = l.local_addr().expect("addr");
        drop(l);
        let c = NodeClient::new("n1", closed, Duration::from_millis(500)).expect("client");
        let done = c.invoke("k0", &ClientOp::Write(1)).await;
        assert_eq!(done.kind, CompletionKind::Fail, "{done:?}");
        assert_eq!(done.node.as_deref(), Some("n1"));

        // A server that accepts and never answers: the write may have happened.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = silent.local_addr().expect("addr");
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let c = NodeClient::new("n2", addr, Duration::from_millis(300)).expect("client");
        let done = c.invoke("k0", &ClientOp::Write(1)).await;
        assert_eq!(
            (done.kind, done.error.as_deref()),
            (CompletionKind::Info, Some("timeout"))
        );
        keep.abort();
    }
}
