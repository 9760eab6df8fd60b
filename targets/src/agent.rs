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
//! | `POST /v1/process/stop` | [`StopRequest`] | [`Confirmed`] once the child has ended |
//!
//! A refused request answers 4xx/5xx with [`AgentFailure`]; a missing or wrong token 401.
//!
//! The status says, besides the child's state, whether libfaketime is mapped into the
//! running child ([`Faketime`], read from `/proc/<pid>/maps`): a clock fault reaches the
//! program only then, and only the running program can tell. An agent older than this
//! field answers without it, which reads as [`Faketime::Unknown`].

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
/// The route of the graceful stop ([`StopRequest`]).
pub const STOP_ROUTE: &str = "/v1/process/stop";
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

/// `POST /v1/process/stop`: SIGTERM to the child's process group (SIGCONT too, so that a paused
/// child can handle it), SIGKILL after `grace_ms` if it has not ended, and the child
/// reaped. The answer comes once the child has ended; stopping a stopped child does
/// nothing. The harness's request timeout bounds the grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    /// How long the child may take to end after SIGTERM, in milliseconds.
    pub grace_ms: u64,
}

/// Why libfaketime is not mapped into the agent's running child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotLoadedReason {
    /// The agent was told to preload a library (`--faketime-lib`) that is not there: the
    /// agent image holds no libfaketime (or `agent-install` did not find it).
    NoLibrary,
    /// The child was started without libfaketime in `LD_PRELOAD`.
    NotPreloaded,
    /// The child was started with libfaketime in `LD_PRELOAD` and did not load it: a
    /// static or musl binary, or a program that reads the clock without libc (Go).
    ProgramDidNotLoad,
}

/// Whether libfaketime is mapped into the agent's running child, the only proof that a
/// clock fault will reach the program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Faketime {
    /// The child's memory maps hold the library.
    Loaded {
        /// The mapped file's path, as the child sees it.
        path: String,
    },
    /// The child runs without the library.
    NotLoaded {
        /// Why.
        reason: NotLoadedReason,
        /// What the agent saw, in words.
        detail: String,
    },
    /// The agent cannot tell: no child runs, its maps cannot be read, or the agent is
    /// older than this field.
    Unknown {
        /// Why not.
        detail: String,
    },
}

impl Default for Faketime {
    fn default() -> Self {
        Faketime::Unknown {
            detail: "the agent did not say (an agent older than this harness)".to_string(),
        }
    }
}

impl Faketime {
    /// Whether a clock fault will reach the running child.
    pub fn is_loaded(&self) -> bool {
        matches!(self, Faketime::Loaded { .. })
    }
}

/// What the agent did to put libfaketime into its child, for [`faketime_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preload {
    /// `--faketime-lib PATH` named a file that does not exist.
    Missing(String),
    /// The child's `LD_PRELOAD` holds this libfaketime path.
    Set(String),
    /// Nothing: the child's environment does not preload libfaketime.
    None,
}

impl Preload {
    /// What an `LD_PRELOAD` value says (entries separated by `:` or spaces).
    pub fn from_ld_preload(value: Option<&str>) -> Preload {
        value
            .into_iter()
            .flat_map(|v| v.split([':', ' ']))
            .find(|entry| entry.contains("libfaketime"))
            .map_or(Preload::None, |entry| Preload::Set(entry.to_string()))
    }
}

/// The path of the first libfaketime mapping in a `/proc/<pid>/maps` text.
pub fn faketime_in_maps(maps: &str) -> Option<&str> {
    maps.lines()
        // address perms offset dev inode pathname: the path is the sixth field and may
        // hold spaces.
        .filter_map(|line| line.splitn(6, char::is_whitespace).nth(5))
        .map(str::trim)
        .find(|path| {
            path.rsplit('/')
                .next()
                .is_some_and(|file| file.contains("libfaketime"))
        })
}

/// Whether libfaketime is loaded in the child, from what the agent did ([`Preload`]) and
/// the child's maps: `Ok(text)` read, `Err(why)` unreadable, or `None` when no child
/// runs. Pure.
pub fn faketime_status(preload: &Preload, maps: Option<Result<&str, &str>>) -> Faketime {
    let maps = match maps {
        None => {
            return Faketime::Unknown {
                detail: "the program is not running".to_string(),
            }
        }
        Some(Err(why)) => {
            return Faketime::Unknown {
                detail: format!("cannot read the program's memory maps: {why}"),
            }
        }
        Some(Ok(text)) => text,
    };
    if let Some(path) = faketime_in_maps(maps) {
        return Faketime::Loaded {
            path: path.to_string(),
        };
    }
    match preload {
        Preload::Missing(path) => Faketime::NotLoaded {
            reason: NotLoadedReason::NoLibrary,
            detail: format!(
                "{path} does not exist: the agent image holds no libfaketime where \
                 `faultline agent-install` looks (put libfaketime.so.1 in the agent image, \
                 e.g. apt-get install libfaketime, or name it with FAULTLINE_LIBFAKETIME)"
            ),
        },
        Preload::Set(path) => Faketime::NotLoaded {
            reason: NotLoadedReason::ProgramDidNotLoad,
            detail: format!(
                "the program was started with LD_PRELOAD={path} and did not load it: a \
                 static or musl binary, or a program that reads the clock without libc \
                 (Go), cannot have its clock moved by libfaketime"
            ),
        },
        Preload::None => Faketime::NotLoaded {
            reason: NotLoadedReason::NotPreloaded,
            detail: "the program was started without libfaketime in LD_PRELOAD (the agent \
                     had no --faketime-lib and the node's environment does not preload it)"
                .to_string(),
        },
    }
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
    /// Whether libfaketime is mapped into the child ([`Faketime::Unknown`] from an agent
    /// that does not say).
    #[serde(default)]
    pub faketime: Faketime,
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
        self.call_with_timeout(route, body, REQUEST_TIMEOUT).await
    }

    async fn call_with_timeout<R: DeserializeOwned>(
        &self,
        route: &str,
        body: Option<serde_json::Value>,
        timeout: Duration,
    ) -> Result<R, AgentError> {
        let url = format!("http://{}{route}", self.addr);
        let request = match body {
            Some(body) => self.http.post(&url).json(&body),
            None => self.http.get(&url),
        }
        .timeout(timeout);
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

    /// Stops the child: SIGTERM to its process group, SIGKILL after `grace`, reaped. The
    /// request may take the grace plus [`REQUEST_TIMEOUT`].
    pub async fn stop(&self, grace: Duration) -> Result<Confirmed, AgentError> {
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        let body =
            serde_json::to_value(StopRequest { grace_ms }).map_err(|e| AgentError::Transport {
                addr: self.addr,
                message: format!("cannot encode the request to {STOP_ROUTE}: {e}"),
            })?;
        self.call_with_timeout(
            STOP_ROUTE,
            Some(body),
            grace.saturating_add(REQUEST_TIMEOUT),
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
        assert_eq!(
            serde_json::to_string(&StopRequest { grace_ms: 2500 }).unwrap(),
            r#"{"grace_ms":2500}"#
        );
    }

    const MAPS_LOADED: &str = "\
5581c0a00000-5581c0a02000 r--p 00000000 08:01 1311 /usr/bin/sleep
7f1c2e400000-7f1c2e428000 r--p 00000000 08:01 2722 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2e600000-7f1c2e604000 r-xp 00002000 08:01 9001 /faultline/libfaketime.so.1
7ffd5a1e0000-7ffd5a201000 rw-p 00000000 00:00 0    [stack]
";
    const MAPS_PLAIN: &str = "\
5581c0a00000-5581c0a02000 r--p 00000000 08:01 1311 /usr/bin/sleep
7f1c2e400000-7f1c2e428000 r--p 00000000 08:01 2722 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1c2e800000-7f1c2e801000 rw-p 00000000 00:00 0
7ffd5a1e0000-7ffd5a201000 rw-p 00000000 00:00 0    [stack]
";

    #[test]
    fn the_maps_show_whether_libfaketime_is_loaded() {
        assert_eq!(
            faketime_in_maps(MAPS_LOADED),
            Some("/faultline/libfaketime.so.1")
        );
        assert_eq!(faketime_in_maps(MAPS_PLAIN), None);
        // A folder named after it is not the library.
        assert_eq!(
            faketime_in_maps("7f-7f r--p 0 08:01 1 /opt/libfaketime-src/README\n"),
            None
        );
        assert_eq!(
            faketime_in_maps("7f-7f r--p 0 08:01 1 /my dir/libfaketimeMT.so.1\n"),
            Some("/my dir/libfaketimeMT.so.1")
        );
    }

    #[test]
    fn the_reporting_names_the_reason() {
        let set = Preload::Set("/faultline/libfaketime.so.1".into());
        assert_eq!(
            faketime_status(&set, Some(Ok(MAPS_LOADED))),
            Faketime::Loaded {
                path: "/faultline/libfaketime.so.1".into()
            }
        );
        let reason = |p: &Preload| match faketime_status(p, Some(Ok(MAPS_PLAIN))) {
            Faketime::NotLoaded { reason, detail } => (reason, detail),
            other => panic!("{other:?}"),
        };
        let (r, d) = reason(&set);
        assert_eq!(r, NotLoadedReason::ProgramDidNotLoad);
        assert!(d.contains("static or musl") && d.contains("Go"), "{d}");
        let (r, d) = reason(&Preload::Missing("/faultline/libfaketime.so.1".into()));
        assert_eq!(r, NotLoadedReason::NoLibrary);
        assert!(d.contains("agent image holds no libfaketime"), "{d}");
        assert_eq!(reason(&Preload::None).0, NotLoadedReason::NotPreloaded);
        // Not running, or maps that cannot be read: unknown, never loaded.
        assert!(matches!(
            faketime_status(&set, None),
            Faketime::Unknown { .. }
        ));
        let unreadable = faketime_status(&set, Some(Err("permission denied")));
        assert!(!unreadable.is_loaded());
        assert!(
            matches!(unreadable, Faketime::Unknown { detail } if detail.contains("permission denied"))
        );
    }

    #[test]
    fn ld_preload_is_read_entry_by_entry() {
        assert_eq!(Preload::from_ld_preload(None), Preload::None);
        assert_eq!(
            Preload::from_ld_preload(Some("/lib/a.so:/usr/lib/faketime/libfaketime.so.1")),
            Preload::Set("/usr/lib/faketime/libfaketime.so.1".into())
        );
        assert_eq!(
            Preload::from_ld_preload(Some("/lib/a.so /lib/b.so")),
            Preload::None
        );
    }

    #[test]
    fn a_status_without_faketime_parses_as_unknown() {
        let old: ChildStatus =
            serde_json::from_str(r#"{"state":"running","pid":7,"last_exit":null}"#).unwrap();
        assert!(matches!(old.faketime, Faketime::Unknown { .. }));
        let new = ChildStatus {
            state: "running".into(),
            pid: Some(7),
            last_exit: None,
            faketime: Faketime::NotLoaded {
                reason: NotLoadedReason::ProgramDidNotLoad,
                detail: "x".into(),
            },
        };
        let text = serde_json::to_string(&new).unwrap();
        assert!(
            text.contains(
                r#""faketime":{"state":"not_loaded","reason":"program_did_not_load","detail":"x"}"#
            ),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<ChildStatus>(&text).unwrap(), new);
    }
}
