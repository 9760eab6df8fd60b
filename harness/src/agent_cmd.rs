//! `faultline agent`: the node agent, run as a node's entry point. It starts the system
//! under test as its child, answers the harness's control requests (authenticated with
//! the run's token, see [`faultline_targets::agent`]) and carries out the node's faults
//! from inside its network namespace through [`faultline_nemesis::local::LocalNode`]
//! (packet rules, delay, rate, the libfaketime file) and signals to the child's process
//! group (kill, start, pause, resume). The agent itself is thin: every fault mechanism is
//! the nemesis crate's.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use faultline_nemesis::local::{probe_here, LocalNode};
use faultline_nemesis::{unix_ns_now, Capabilities, Confirmed, Mechanism};
use faultline_targets::agent::{
    token_matches, AgentFailure, ChildStatus, ClockRequest, DelayRequest, NetRequest, ProcessOp,
    RateRequest, TOKEN_ENV,
};
use tokio::sync::Mutex;

use crate::{exit, reaper};

/// Arguments of `faultline agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Address the control channel listens on.
    #[arg(long, default_value = "0.0.0.0:7900")]
    pub listen: SocketAddr,
    /// The node's own address (the source of its packets).
    #[arg(long)]
    pub ip: IpAddr,
    /// The folder holding libfaketime's timestamp file `rc`.
    #[arg(long, default_value = "/faketime")]
    pub clock_dir: PathBuf,
    /// Run the program as UID:GID.
    #[arg(long, value_name = "UID:GID")]
    pub user: Option<String>,
    /// An environment variable for the program only (KEY=VALUE; repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// The system under test, as the agent's child.
#[derive(Debug)]
struct Supervisor {
    command: Vec<String>,
    env: Vec<(String, String)>,
    user: Option<(u32, u32)>,
    child: Option<tokio::process::Child>,
    paused: bool,
    last_exit: Option<String>,
}

impl Supervisor {
    fn spawn(&mut self) -> Result<(), String> {
        let Some((program, args)) = self.command.split_first() else {
            return Err("no program to run".to_string());
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_remove(TOKEN_ENV)
            .envs(self.env.iter().cloned())
            .stdin(std::process::Stdio::null())
            // Its own process group: pause and kill reach every process it starts.
            .process_group(0)
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// Forgets a child that ended by itself.
    fn reap(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(Some(status)) = child.try_wait() {
                self.last_exit = Some(status.to_string());
                self.child = None;
                self.paused = false;
            }
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    fn signal(&self, signal: i32) -> Result<(), String> {
        let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) else {
            return Err("the program is not running".to_string());
        };
        // SAFETY: killpg only sends a signal; the group is our child's own.
        if unsafe { libc::killpg(pid, signal) } != 0 {
            return Err(format!(
                "signal {signal} to process group {pid}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    async fn op(&mut self, op: ProcessOp) -> Result<(), String> {
        self.reap();
        match op {
            ProcessOp::Kill => {
                if self.child.is_some() {
                    self.signal(libc::SIGKILL)?;
                    if let Some(mut child) = self.child.take() {
                        let status = child.wait().await.map_err(|e| e.to_string())?;
                        self.last_exit = Some(status.to_string());
                    }
                }
                self.paused = false;
                Ok(())
            }
            ProcessOp::Start => match (&self.child, self.paused) {
                (Some(_), true) => {
                    self.signal(libc::SIGCONT)?;
                    self.paused = false;
                    Ok(())
                }
                (Some(_), false) => Ok(()),
                (None, _) => self.spawn(),
            },
            ProcessOp::Pause => {
                self.signal(libc::SIGSTOP)?;
                self.paused = true;
                Ok(())
            }
            ProcessOp::Resume => {
                if self.child.is_some() {
                    self.signal(libc::SIGCONT)?;
                }
                self.paused = false;
                Ok(())
            }
        }
    }

    fn status(&mut self) -> ChildStatus {
        self.reap();
        let state = match (&self.child, self.paused) {
            (None, _) => "stopped",
            (Some(_), true) => "paused",
            (Some(_), false) => "running",
        };
        ChildStatus {
            state: state.to_string(),
            pid: self.pid(),
            last_exit: self.last_exit.clone(),
        }
    }

    /// SIGTERM to the group, SIGKILL after `grace`.
    async fn stop(&mut self, grace: Duration) {
        self.reap();
        if self.child.is_none() {
            return;
        }
        let _ = self.signal(libc::SIGCONT);
        let _ = self.signal(libc::SIGTERM);
        if let Some(child) = &mut self.child {
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = self.signal(libc::SIGKILL);
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait().await;
        }
    }
}

struct AgentState {
    token: String,
    caps: Capabilities,
    local: Mutex<LocalNode>,
    child: Mutex<Supervisor>,
}

type Failure = (StatusCode, Json<AgentFailure>);

fn fail(status: StatusCode, error: impl ToString) -> Failure {
    (
        status,
        Json(AgentFailure {
            error: error.to_string(),
        }),
    )
}

fn authorised(state: &AgentState, headers: &HeaderMap) -> Result<(), Failure> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if token_matches(given, &state.token) {
        Ok(())
    } else {
        Err(fail(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token (Authorization: Bearer <the run's token>)",
        ))
    }
}

async fn caps(
    State(s): State<Arc<AgentState>>,
    headers: HeaderMap,
) -> Result<Json<Capabilities>, Failure> {
    authorised(&s, &headers)?;
    Ok(Json(s.caps.clone()))
}

async fn status(
    State(s): State<Arc<AgentState>>,
    headers: HeaderMap,
) -> Result<Json<ChildStatus>, Failure> {
    authorised(&s, &headers)?;
    Ok(Json(s.child.lock().await.status()))
}

fn confirmed<E: std::fmt::Display>(
    result: Result<Confirmed, E>,
) -> Result<Json<Confirmed>, Failure> {
    result
        .map(Json)
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))
}

async fn net(
    State(s): State<Arc<AgentState>>,
    headers: HeaderMap,
    Json(req): Json<NetRequest>,
) -> Result<Json<Confirmed>, Failure> {
    authorised(&s, &headers)?;
    confirmed(s.local.lock().await.set_net(&req.rules).await)
}

async fn delay(
    State(s): State<Arc<AgentState>>,
    headers: HeaderMap,
    Json(req): Json<DelayRequest>,
) -> Result<Json<Confirmed>, Failure> {
    authorised(&s, &headers)?;
    confirmed(s.local.lock().await.set_delay(req.ms).await)
}

async fn rate(
    State(s): State<Arc<AgentState>>,
    headers: HeaderMap,
    Json(req): Json<RateRequest>,
) -> Result<Json<Confirmed>, Failure> {
    authorised(&s, &headers)?;
    confirmed(s.local.lock().await.set_rate(req.kbit).await)
}

async fn clock(
    State(s): State<Arc<AgentState>>,
    headers: HeaderMap,
    Json(req): Json<ClockRequest>,
) -> Result<Json<Confirmed>, Failure> {
    authorised(&s, &headers)?;
    confirmed(
        s.local
            .lock()
            .await
            .set_clock(req.offset_ms, req.strobe)
            .await,
    )
}

async fn process(
    State(s): State<Arc<AgentState>>,
    headers: HeaderMap,
    Path(op): Path<String>,
) -> Result<Json<Confirmed>, Failure> {
    authorised(&s, &headers)?;
    let Some(op) = ProcessOp::parse(&op) else {
        return Err(fail(
            StatusCode::NOT_FOUND,
            format!("no process operation {op:?} (kill, start, pause, resume)"),
        ));
    };
    s.child
        .lock()
        .await
        .op(op)
        .await
        .map_err(|e| fail(StatusCode::CONFLICT, e))?;
    Ok(Json(Confirmed {
        mechanism: Mechanism::Process,
        in_force_unix_ns: unix_ns_now(),
    }))
}

/// The control routes over `state`.
fn router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route("/v1/caps", get(caps))
        .route("/v1/status", get(status))
        .route("/v1/net", post(net))
        .route("/v1/delay", post(delay))
        .route("/v1/rate", post(rate))
        .route("/v1/clock", post(clock))
        .route("/v1/process/{op}", post(process))
        .with_state(state)
}

/// `UID:GID` as numbers.
fn parse_user(text: &str) -> Result<(u32, u32)> {
    let (u, g) = text
        .split_once(':')
        .with_context(|| format!("--user {text:?}: expected UID:GID"))?;
    Ok((
        u.parse().with_context(|| format!("--user: uid {u:?}"))?,
        g.parse().with_context(|| format!("--user: gid {g:?}"))?,
    ))
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Reaps the agent's zombie children other than the supervised program on every
/// `SIGCHLD` and once a second (a signal may be coalesced or missed).
async fn reap_orphans_forever(state: Arc<AgentState>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigchld = signal(SignalKind::child()).ok();
    loop {
        match sigchld.as_mut() {
            Some(s) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), s.recv()).await;
            }
            None => tokio::time::sleep(Duration::from_secs(1)).await,
        }
        // Under the supervisor's lock, so the program's pid cannot change meanwhile.
        let child = state.child.lock().await;
        let keep: Vec<u32> = child.pid().into_iter().collect();
        let reaped = reaper::reap_orphans(&keep);
        drop(child);
        if !reaped.is_empty() {
            tracing::debug!("reaped orphaned processes {reaped:?}");
        }
    }
}

/// Runs `faultline agent` until SIGTERM.
pub fn run(args: AgentArgs) -> Result<u8> {
    // Fix the agent's Unix time to its wall clock now, before any clock fault: a clock
    // shifted later (Chaos Mesh shifts the agent with its child) leaves the times it
    // reports true.
    unix_ns_now();
    let token = std::env::var(TOKEN_ENV).unwrap_or_default();
    if token.len() < 16 {
        bail!("{TOKEN_ENV} must hold the run's token (at least 16 characters)");
    }
    let user = args.user.as_deref().map(parse_user).transpose()?;
    let mut env = Vec::new();
    for pair in &args.env {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--env {pair:?}: expected KEY=VALUE"))?;
        env.push((k.to_string(), v.to_string()));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Orphans of the program are reparented to the agent (PID 1 in a node's container,
    // and a subreaper anywhere), which reaps them (see `reaper`).
    if let Err(e) = reaper::become_subreaper() {
        tracing::warn!("cannot become a child subreaper ({e}); orphans go to PID 1");
    }
    rt.block_on(async move {
        // Probe before the program starts: the probe briefly changes `lo`.
        let caps = probe_here().await;
        tracing::info!("node capabilities: {caps:?}");
        let local = LocalNode::new(args.ip, caps.clone(), args.clock_dir, args.listen.port());
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let mut child = Supervisor {
            command: args.command,
            env,
            user,
            child: None,
            paused: false,
            last_exit: None,
        };
        child.spawn().map_err(anyhow::Error::msg)?;
        let state = Arc::new(AgentState {
            token,
            caps,
            local: Mutex::new(local),
            child: Mutex::new(child),
        });
        tokio::spawn(reap_orphans_forever(state.clone()));
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(terminated())
            .await
            .context("the control channel failed")?;
        state.child.lock().await.stop(Duration::from_secs(5)).await;
        Ok(exit::VALID)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse() {
        assert_eq!(parse_user("1000:1000").unwrap(), (1000, 1000));
        assert!(parse_user("1000").is_err());
        assert!(parse_user("a:b").is_err());
    }

    #[tokio::test]
    async fn the_supervisor_kills_starts_pauses_and_resumes_its_child() {
        let mut s = Supervisor {
            command: vec!["sleep".into(), "30".into()],
            env: vec![],
            user: None,
            child: None,
            paused: false,
            last_exit: None,
        };
        s.spawn().unwrap();
        assert_eq!(s.status().state, "running");
        s.op(ProcessOp::Pause).await.unwrap();
        assert_eq!(s.status().state, "paused");
        // Starting a paused program thaws it.
        s.op(ProcessOp::Start).await.unwrap();
        assert_eq!(s.status().state, "running");
        s.op(ProcessOp::Kill).await.unwrap();
        let st = s.status();
        assert_eq!(st.state, "stopped");
        assert!(st.last_exit.unwrap().contains("9"));
        // Resuming a stopped program does nothing; pausing it is refused.
        s.op(ProcessOp::Resume).await.unwrap();
        assert!(s.op(ProcessOp::Pause).await.is_err());
        s.op(ProcessOp::Start).await.unwrap();
        assert_eq!(s.status().state, "running");
        s.stop(Duration::from_secs(2)).await;
        assert_eq!(s.status().state, "stopped");
    }
}
