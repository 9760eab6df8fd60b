//! The node agent's control channel: the protocol (HTTP/1.1 with JSON bodies, every
//! request carrying the run's token as `Authorization: Bearer`) and the harness's client,
//! [`AgentClient`], which implements [`faultline_nemesis::NodeAgent`].
//!
//! The agent is the `faultline` binary run as a node's entry point (`faultline agent`):
//! it supervises the system under test as its child and carries out the node's faults
//! from inside its network namespace. Its routes:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /v1/caps` | — | [`faultline_nemesis::Capabilities`] probed inside the node |
//! | `GET /v1/status` | — | [`ChildStatus`] |
//! | `POST /v1/net` | [`NetRequest`] | [`Confirmed`] |
//! | `POST /v1/delay` | [`DelayRequest`] | [`Confirmed`] |
//! | `POST /v1/rate` | [`RateRequest`] | [`Confirmed`] |
//! | `POST /v1/clock` | [`ClockRequest`] | [`Confirmed`] |
//! | `POST /v1/process/{kill,start,pause,resume}` | — | [`Confirmed`] |
//!
//! A refused request answers 4xx/5xx with [`AgentFailure`]; a missing or wrong token 401.

use std::net::SocketAddr;
use std::time::Duration;

use faultline_nemesis::rules::NetRules;
use faultline_nemesis::{Capabilities, ConfirmFuture, Confirmed, NodeAgent, Strobe};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The port every agent listens on inside its node.
pub const AGENT_PORT: u16 = 7900;
/// The environment variable that hands the agent the run's token.
pub const TOKEN_ENV: &str = "FAULTLINE_AGENT_TOKEN";
/// How long one control request may take (an NFQUEUE delay install is the slowest, tens
/// of milliseconds).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /v1/net`: the node's whole packet-filter state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRequest {
    /// The rules (the agent adds its own control port as exempt).
    pub rules: NetRules,
}

/// `POST /v1/delay`: delay outgoing packets by `ms`, or stop (`null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayRequest {
    /// The delay in milliseconds, or none.
    pub ms: Option<u32>,
}

/// `POST /v1/rate`: limit the outgoing rate to `kbit`, or lift it (`null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateRequest {
    /// The rate in kilobits per second, or none.
    pub kbit: Option<u32>,
}

/// `POST /v1/clock`: the clock offset, and a strobe around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRequest {
    /// The offset in milliseconds.
    pub offset_ms: i64,
    /// Strobe around the offset.
    #[serde(default)]
    pub strobe: Option<Strobe>,
}

/// A process operation on the agent's child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessOp {
    /// SIGKILL the child and reap it.
    Kill,
    /// Start the child again (thaw it when it is stopped).
    Start,
    /// SIGSTOP the child's process group.
    Pause,
    /// SIGCONT the child's process group.
    Resume,
}

impl ProcessOp {
    /// The route's last segment (`kill`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessOp::Kill => "kill",
            ProcessOp::Start => "start",
            ProcessOp::Pause => "pause",
            ProcessOp::Resume => "resume",
        }
    }

    /// Parses a route segment.
    pub fn parse(text: &str) -> Option<ProcessOp> {
        match text {
            "kill" => Some(ProcessOp::Kill),
            "start" => Some(ProcessOp::Start),
            "pause" => Some(ProcessOp::Pause),
            "resume" => Some(ProcessOp::Resume),
            _ => None,
        }
    }
}

/// `GET /v1/status`: the child's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildStatus {
    /// `running`, `paused` or `stopped`.
    pub state: String,
    /// The child's pid inside the node, while it exists.
    pub pid: Option<u32>,
    /// The exit status of the last child that ended, as text.
    pub last_exit: Option<String>,
}

/// The body of a refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFailure {
    /// What went wrong.
    pub error: String,
}

/// Why a control request failed.
#[derive(Debug, Error)]
pub enum AgentError {
    /// The agent could not be reached, or its answer could not be read.
    #[error("agent at {addr}: {message}")]
    Transport {
        /// The agent's address.
        addr: SocketAddr,
        /// What failed.
        message: String,
    },
    /// The agent answered with an error.
    #[error("agent at {addr} refused {route} (HTTP {status}): {message}")]
    Refused {
        /// The agent's address.
        addr: SocketAddr,
        /// The route.
        route: String,
        /// The HTTP status.
        status: u16,
        /// The agent's message.
        message: String,
    },
}

/// The harness's side of one agent's control channel.
#[derive(Debug, Clone)]
pub struct AgentClient {
    addr: SocketAddr,
    token: String,
    http: reqwest::Client,
}

fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl AgentClient {
    /// A client for the agent at `addr` with the run's `token`.
    pub fn new(addr: SocketAddr, token: &str) -> Result<AgentClient, AgentError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| AgentError::Transport {
                addr,
                message: error_text(&e),
            })?;
        Ok(AgentClient {
            addr,
            token: token.to_string(),
            http,
        })
    }

    /// The agent's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn call<R: DeserializeOwned>(
        &self,
        route: &str,
        body: Option<serde_json::Value>,
    ) -> Result<R, AgentError> {
        let url = format!("http://{}{route}", self.addr);
        let request = match body {
            Some(body) => self.http.post(&url).json(&body),
            None => self.http.get(&url),
        };
        let transport = |e: reqwest::Error| AgentError::Transport {
            addr: self.addr,
            message: error_text(&e),
        };
        let resp = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(transport)?;
        if status != 200 {
            let message = serde_json::from_slice::<AgentFailure>(&bytes)
                .map(|f| f.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(AgentError::Refused {
                addr: self.addr,
                route: route.to_string(),
                status,
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| AgentError::Transport {
            addr: self.addr,
            message: format!("unreadable answer to {route}: {e}"),
        })
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        route: &str,
        body: &B,
    ) -> Result<R, AgentError> {
        let body = serde_json::to_value(body).map_err(|e| AgentError::Transport {
            addr: self.addr,
            message: format!("cannot encode the request to {route}: {e}"),
        })?;
        self.call(route, Some(body)).await
    }

    /// What the node can do, probed by the agent inside it.
    pub async fn capabilities(&self) -> Result<Capabilities, AgentError> {
        self.call("/v1/caps", None).await
    }

    /// The child's state.
    pub async fn status(&self) -> Result<ChildStatus, AgentError> {
        self.call("/v1/status", None).await
    }

    /// Kills, starts, pauses or resumes the child.
    pub async fn process(&self, op: ProcessOp) -> Result<Confirmed, AgentError> {
        self.post(
            &format!("/v1/process/{}", op.as_str()),
            &serde_json::json!({}),
        )
        .await
    }

    /// Waits until the agent answers its status, at most `timeout`.
    pub async fn wait_up(&self, timeout: Duration) -> Result<(), AgentError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.status().await {
                Ok(_) => return Ok(()),
                Err(e @ AgentError::Refused { .. }) => return Err(e),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

fn boxed<T>(result: Result<T, AgentError>) -> Result<T, Box<dyn std::error::Error + Send + Sync>> {
    result.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
}

impl NodeAgent for AgentClient {
    fn control_port(&self) -> u16 {
        self.addr.port()
    }

    fn set_net(&self, rules: &NetRules) -> ConfirmFuture<'_> {
        let body = NetRequest {
            rules: rules.clone(),
        };
        Box::pin(async move { boxed(self.post("/v1/net", &body).await) })
    }

    fn set_delay(&self, ms: Option<u32>) -> ConfirmFuture<'_> {
        Box::pin(async move { boxed(self.post("/v1/delay", &DelayRequest { ms }).await) })
    }

    fn set_rate(&self, kbit: Option<u32>) -> ConfirmFuture<'_> {
        Box::pin(async move { boxed(self.post("/v1/rate", &RateRequest { kbit }).await) })
    }

    fn set_clock(&self, offset_ms: i64, strobe: Option<Strobe>) -> ConfirmFuture<'_> {
        Box::pin(async move {
            boxed(
                self.post("/v1/clock", &ClockRequest { offset_ms, strobe })
                    .await,
            )
        })
    }
}

/// A fresh per-run token: 32 random bytes as 64 hex digits.
pub fn new_token() -> String {
    crate::target::cluster_token()
}

/// Whether `given` (an `Authorization` header's value) carries `token`, compared in
/// constant time over the token's length.
pub fn token_matches(given: Option<&str>, token: &str) -> bool {
    let Some(given) = given.and_then(|g| g.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    if a.len() != b.len() || b.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_exactly() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token());
        assert!(token_matches(Some(&format!("Bearer {t}")), &t));
        assert!(!token_matches(Some(&t), &t));
        assert!(!token_matches(Some("Bearer "), &t));
        assert!(!token_matches(Some(&format!("Bearer {t}x")), &t));
        assert!(!token_matches(None, &t));
        assert!(!token_matches(Some("Bearer "), ""));
    }

    #[test]
    fn process_ops_round_trip() {
        for op in [
            ProcessOp::Kill,
            ProcessOp::Start,
            ProcessOp::Pause,
            ProcessOp::Resume,
        ] {
            assert_eq!(ProcessOp::parse(op.as_str()), Some(op));
        }
        assert_eq!(ProcessOp::parse("reboot"), None);
    }

    #[test]
    fn requests_have_stable_json() {
        let c = ClockRequest {
            offset_ms: -1500,
            strobe: None,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"offset_ms":-1500,"strobe":null}"#
        );
        let back: ClockRequest = serde_json::from_str(r#"{"offset_ms":5}"#).unwrap();
        assert_eq!(back.strobe, None);
    }
}
