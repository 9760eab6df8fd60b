//! The client routes both modes serve, over a [`Backend`] that executes operations.
//!
//! - `GET /kv/{key}`: read
//! - `PUT /kv/{key}` with `{"value": V}`: write
//! - `POST /kv/{key}/cas` with `{"expected": E, "new": N}`: compare-and-set
//! - `POST /txn` with `{"txn": [MOP, ...]}`: a transaction (see [`crate::api::parse_txn`])
//! - `GET /health`: 200 when ready to serve, 503 otherwise
//! - `GET /status`: the node's state as JSON, including its wall-clock time
//!
//! Anything else gets a JSON 404. Bodies over [`MAX_BODY_BYTES`] get 413, bodies that do
//! not parse and bad keys get 400; see [`crate::api`] for every answer's shape.
//! [`json_answers`] wraps a mode's whole router so that every answer, including those
//! axum makes itself (405 for a wrong method, 400 for a path that is not UTF-8 once
//! percent-decoded), is a JSON object with `outcome` and `node`.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::{
    bad_request, parse_op, parse_txn, validate_key, Answer, Op, Txn, FORWARDED_HEADER,
    MAX_BODY_BYTES,
};

/// What a mode provides behind the client routes.
pub trait Backend: Clone + Send + Sync + 'static {
    /// The node's name (`n1`).
    fn name(&self) -> &str;
    /// Executes a validated operation; `forwarded` is set when another node sent it here.
    fn execute(
        &self,
        key: String,
        op: Op,
        forwarded: bool,
    ) -> impl Future<Output = Response> + Send;
    /// Executes a validated transaction; `forwarded` is set when another node sent it here.
    fn execute_txn(&self, txn: Txn, forwarded: bool) -> impl Future<Output = Response> + Send;
    /// Answers `/health`.
    fn health(&self) -> impl Future<Output = Response> + Send;
    /// Answers `/status`.
    fn status(&self) -> impl Future<Output = Response> + Send;
}

/// The client routes over `backend`.
pub fn client_routes<B: Backend>(backend: B) -> Router {
    let name: std::sync::Arc<str> = backend.name().into();
    Router::new()
        .route("/kv/{key}", get(read::<B>).put(write::<B>))
        .route("/kv/{key}/cas", post(cas::<B>))
        .route("/txn", post(txn::<B>))
        .route("/health", get(health::<B>))
        .route("/status", get(status::<B>))
        .route_layer(axum::middleware::from_fn_with_state(
            (name, MAX_BODY_BYTES),
            refuse_declared_over,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .fallback(not_found::<B>)
        .with_state(backend)
}

/// Route middleware (state: the node's name and the limit) that answers 413 `too-large`
/// at once, before reading anything, to a request whose `Content-Length` is over the
/// limit. A body without a length (chunked) is cut at the limit by [`DefaultBodyLimit`],
/// which the routes set too.
pub async fn refuse_declared_over(
    State((node, limit)): State<(std::sync::Arc<str>, usize)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > u64::try_from(limit).unwrap_or(u64::MAX) => Answer::fail(&node, "too-large")
            .with_detail(format!("body of {n} bytes, over the limit of {limit}"))
            .into_response(),
        _ => next.run(req).await,
    }
}

fn is_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED_HEADER)
}

async fn read<B: Backend>(
    State(b): State<B>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = validate_key(&key) {
        return bad_request(b.name(), &e);
    }
    b.execute(key, Op::Read, is_forwarded(&headers)).await
}

async fn write<B: Backend>(
    State(b): State<B>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    mutate(b, key, headers, body, false).await
}

async fn cas<B: Backend>(
    State(b): State<B>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    mutate(b, key, headers, body, true).await
}

async fn mutate<B: Backend>(
    b: B,
    key: String,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    is_cas: bool,
) -> Response {
    if let Err(e) = validate_key(&key) {
        return bad_request(b.name(), &e);
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Answer::fail(b.name(), "too-large").into_response();
        }
        Err(rejection) => return bad_request(b.name(), &rejection.body_text()),
    };
    match parse_op(is_cas, &body) {
        Ok(op) => b.execute(key, op, is_forwarded(&headers)).await,
        Err(e) => bad_request(b.name(), &e),
    }
}

async fn txn<B: Backend>(
    State(b): State<B>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Answer::fail(b.name(), "too-large").into_response();
        }
        Err(rejection) => return bad_request(b.name(), &rejection.body_text()),
    };
    match parse_txn(&body) {
        Ok(txn) => b.execute_txn(txn, is_forwarded(&headers)).await,
        Err(e) => bad_request(b.name(), &e),
    }
}

async fn health<B: Backend>(State(b): State<B>) -> Response {
    b.health().await
}

async fn status<B: Backend>(State(b): State<B>) -> Response {
    b.status().await
}

async fn not_found<B: Backend>(State(b): State<B>) -> Response {
    Answer::fail(b.name(), "not-found").into_response()
}

/// Longest part of a non-JSON answer's text kept in the `detail` of its replacement.
const DETAIL_BYTES: usize = 512;

/// Wraps `app` (a mode's complete router) so that every answer is a JSON object with
/// `outcome` and `node`: the answers the routes make pass through unchanged; any other
/// (axum's own 405 for a wrong method, a rejected path or body extractor, ...) is replaced
/// by an answer with the same status, `outcome: "fail"` (`"ok"` for a success) and an
/// `error` named after the status, its text kept in `detail`.
pub fn json_answers(app: Router, node: &str) -> Router {
    let node: std::sync::Arc<str> = node.into();
    app.layer(axum::middleware::map_response_with_state(node, ensure_json))
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

/// The `error` of a refused request answered with `status`.
pub fn error_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        s if s.is_client_error() => "bad-request",
        _ => "internal",
    }
}

async fn ensure_json(State(node): State<std::sync::Arc<str>>, resp: Response) -> Response {
    if is_json(&resp) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut detail: String = text.trim().chars().take(DETAIL_BYTES).collect();
    if detail.is_empty() {
        detail = parts
            .status
            .canonical_reason()
            .unwrap_or("refused")
            .to_owned();
    }
    let (status, answer) = if parts.status.is_success() {
        (StatusCode::OK, Answer::ack(&node))
    } else {
        let a = Answer::fail(&node, error_for_status(parts.status)).with_detail(detail);
        (parts.status, a)
    };
    let mut out = (status, axum::Json(answer)).into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    if let Some(auth) = parts.headers.get(header::WWW_AUTHENTICATE) {
        out.headers_mut()
            .insert(header::WWW_AUTHENTICATE, auth.clone());
    }
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

/// Sends `op` on `key` to the node at `addr` (marked as forwarded) and passes its answer
/// through. A connection refused means the request never left: `fail`, with `refused_error`;
/// any later failure is `unknown`.
pub async fn forward(
    client: &reqwest::Client,
    me: &str,
    addr: &str,
    key: &str,
    op: &Op,
    timeout: std::time::Duration,
    refused_error: &str,
) -> Response {
    let base = format!("http://{addr}/kv/{key}");
    let req = match op {
        Op::Read => client.get(&base),
        Op::Write { value } => client
            .put(&base)
            .json(&serde_json::json!({ "value": value })),
        Op::Cas { expected, new } => client
            .post(format!("{base}/cas"))
            .json(&serde_json::json!({ "expected": expected, "new": new })),
    };
    let sent = req
        .header(FORWARDED_HEADER, me)
        .timeout(timeout)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Answer::fail(me, refused_error).into_response(),
        Err(e) if e.is_timeout() => return Answer::unknown(me, "timeout").into_response(),
        Err(_) => return Answer::unknown(me, "forward-failed").into_response(),
    };
    let status = resp.status();
    match resp.bytes().await {
        Ok(body) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) if e.is_timeout() => Answer::unknown(me, "timeout").into_response(),
        Err(_) => Answer::unknown(me, "forward-failed").into_response(),
    }
}

/// Sends `txn` to the node at `addr` (marked as forwarded) and returns its answer, parsed.
/// A connection refused means the request never left: `fail`, with `refused_error`; any
/// later failure, or an answer that is not a JSON answer, is `unknown`.
pub async fn forward_txn(
    client: &reqwest::Client,
    me: &str,
    addr: &str,
    txn: &Txn,
    timeout: std::time::Duration,
    refused_error: &str,
) -> Answer {
    let sent = client
        .post(format!("http://{addr}/txn"))
        .json(&txn.body())
        .header(FORWARDED_HEADER, me)
        .timeout(timeout)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Answer::fail(me, refused_error),
        Err(e) if e.is_timeout() => return Answer::unknown(me, "timeout"),
        Err(_) => return Answer::unknown(me, "forward-failed"),
    };
    match resp.bytes().await {
        Ok(body) => serde_json::from_slice(&body).unwrap_or_else(|e| {
            Answer::unknown(me, "forward-failed")
                .with_detail(format!("the leader's answer does not parse: {e}"))
        }),
        Err(e) if e.is_timeout() => Answer::unknown(me, "timeout"),
        Err(_) => Answer::unknown(me, "forward-failed"),
    }
}
