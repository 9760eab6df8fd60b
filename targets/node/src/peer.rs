//! The cluster's peer token: node-to-node routes (`/raft/messages`, `/internal/*`) answer
//! only requests that carry it as `Authorization: Bearer TOKEN`.
//!
//! A node takes the token from `--peer-token`, from the environment variable
//! `FAULTLINE_PEER_TOKEN` (what clap reads when the flag is absent), or from the file named
//! by `--peer-token-file` (its first line); it does not start without one. A token is 16
//! to 1024 printable ASCII characters without spaces. The check runs before the body of a
//! request is read, and compares in constant time.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::Answer;

/// Shortest token accepted.
pub const MIN_TOKEN_CHARS: usize = 16;
/// Longest token accepted.
pub const MAX_TOKEN_CHARS: usize = 1024;

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Neither the flag, the environment nor a file gave one.
    #[error("a peer token is needed: --peer-token TOKEN, FAULTLINE_PEER_TOKEN or --peer-token-file PATH")]
    Missing,
    /// Both a token and a token file were given.
    #[error("give the peer token once: --peer-token (or FAULTLINE_PEER_TOKEN) or --peer-token-file, not both")]
    Twice,
    /// The token file could not be read.
    #[error("reading the peer token file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The token is not 16 to 1024 printable ASCII characters without spaces.
    #[error("the peer token must be {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} printable ASCII characters without spaces (got {0} bytes)")]
    Malformed(usize),
}

/// The cluster's token, checked for shape.
#[derive(Clone)]
pub struct PeerToken(Arc<str>);

impl std::fmt::Debug for PeerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerToken(..)")
    }
}

impl PeerToken {
    /// The token from the flag (or environment) `flag` or the file `file`; exactly one.
    pub fn load(flag: Option<&str>, file: Option<&Path>) -> Result<Self, TokenError> {
        let text = match (flag, file) {
            (Some(_), Some(_)) => return Err(TokenError::Twice),
            (None, None) => return Err(TokenError::Missing),
            (Some(t), None) => t.to_owned(),
            (None, Some(p)) => std::fs::read_to_string(p)
                .map_err(|source| TokenError::File {
                    path: p.display().to_string(),
                    source,
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        Self::new(&text)
    }

    /// Checks the shape of `token`.
    pub fn new(token: &str) -> Result<Self, TokenError> {
        let ok = (MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&token.len())
            && token.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(Self(token.into()))
        } else {
            Err(TokenError::Malformed(token.len()))
        }
    }

    /// The `Authorization` header value that carries it.
    pub fn header_value(&self) -> HeaderValue {
        // The shape checked in `new` is always a valid header value.
        HeaderValue::from_str(&format!("Bearer {}", self.0))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// Headers to send with every request to a peer.
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, self.header_value());
        h
    }

    /// Whether `presented` is the token; the time taken depends on the lengths only.
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

/// A fresh token: 32 bytes from the kernel's random source, as 64 hex digits.
pub fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares two byte strings without stopping at the first difference: the time depends
/// only on their lengths (the expected token's length is not a secret worth hiding).
pub fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != presented.len());
    for (i, e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(!*e);
        diff |= std::hint::black_box(e ^ p);
    }
    diff == 0
}

/// What a peer route needs to check a request: the token and the node's name.
#[derive(Clone)]
pub struct Guard {
    /// The cluster's token.
    pub token: PeerToken,
    /// The node's name, for the answers.
    pub node: Arc<str>,
}

/// Middleware for peer routes: 401 `unauthorized` without a bearer token, 403 `forbidden`
/// with another one; the request goes on only with the cluster's token.
pub async fn require_token(State(g): State<Guard>, req: Request, next: Next) -> Response {
    // The scheme is case-insensitive (RFC 9110 §11.1), the token is not.
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
        .map(|v| &v[7..]);
    match presented {
        None => {
            tracing::warn!(path = %req.uri().path(), "peer request without a token");
            let mut r = Answer::fail(&g.node, "unauthorized")
                .with_detail("peer routes need Authorization: Bearer <cluster token>")
                .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Some(t) if !g.token.matches(t) => {
            tracing::warn!(path = %req.uri().path(), "peer request with a wrong token");
            Answer::fail(&g.node, "forbidden")
                .with_detail("not this cluster's token")
                .into_response()
        }
        Some(_) => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_for_shape_and_compared_exactly() {
        assert!(PeerToken::new("0123456789abcdef").is_ok());
        assert!(PeerToken::new("short").is_err());
        assert!(PeerToken::new("0123456789 abcdef").is_err());
        assert!(PeerToken::new(&"x".repeat(1025)).is_err());
        assert!(PeerToken::load(None, None).is_err());
        assert!(PeerToken::load(Some("0123456789abcdef"), Some(Path::new("/x"))).is_err());
        let t = PeerToken::new("0123456789abcdef").unwrap_or_else(|e| panic!("{e}"));
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeF"));
        assert!(!t.matches(b"0123456789abcde"));
        assert!(!t.matches(b"0123456789abcdef0"));
        assert!(!t.matches(b""));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
        assert_eq!(
            t.header_value().to_str().ok(),
            Some("Bearer 0123456789abcdef")
        );
        assert_eq!(format!("{t:?}"), "PeerToken(..)");
    }
}
