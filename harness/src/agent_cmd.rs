//! `faultline agent`: the node agent, run as a node's entry point. It starts the system
//! under test as its child, answers the harness's control requests (authenticated with
//! the run's token, see [`faultline_targets::agent`]) and carries out the node's faults
//! from inside its network namespace through [`faultline_nemesis::local::LocalNode`]
//! (packet rules, delay, rate, the libfaketime file) and signals to the child's process
//! group (kill, start, pause, resume, and a graceful stop: SIGTERM, SIGKILL after a
//! grace). The agent itself is thin: every fault mechanism is the nemesis crate's.
//!
//! With `--faketime-lib PATH` the agent preloads libfaketime into its child itself (the
//! Kubernetes runtime's way: `faultline agent-install` copied the library next to the
//! agent); either way its status tells whether the running child has the library mapped
//! (see [`faultline_targets::agent::Faketime`]).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path as FsPath, PathBuf};
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
    faketime_status, token_matches, AgentFailure, ChildStatus, ClockRequest, DelayRequest,
    NetRequest, Preload, ProcessOp, RateRequest, StopRequest, STOP_ROUTE, TOKEN_ENV,
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
    /// Preload this libfaketime into the program, its clock following `<clock-dir>/rc`
    /// (set to `+0` first). When the file does not exist the program runs without it and
    /// the agent reports clock faults unavailable, saying why.
    #[arg(long, value_name = "PATH")]
    pub faketime_lib: Option<PathBuf>,
    /// An environment variable for the program only (KEY=VALUE; repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Arguments of `faultline agent-install`.
#[derive(Debug, Args)]
pub struct AgentInstallArgs {
    /// The folder to copy into (a Kubernetes node Pod's shared emptyDir).
    pub dir: PathBuf,
}

/// The file name `agent-install` gives libfaketime in its folder (what a node Pod's agent
/// is given as `--faketime-lib`).
pub const INSTALLED_FAKETIME: &str = "libfaketime.so.1";

/// What `agent-install` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Where the agent went.
    pub agent: PathBuf,
    /// Where libfaketime went, and where it came from; `None` when this image has none.
    pub faketime: Option<(PathBuf, PathBuf)>,
}

fn copy_file(from: &FsPath, to: &FsPath, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot make {} mode {mode:o}", to.display()))
}

/// Copies the executable `exe` to `dir/faultline` (mode 0755) and, when given, the
/// libfaketime at `faketime` to `dir/libfaketime.so.1` (0755).
pub fn install(dir: &FsPath, exe: &FsPath, faketime: Option<&FsPath>) -> Result<Installed> {
    if !dir.is_dir() {
        bail!(
            "{} is not a folder: give agent-install the shared folder to copy into (mounted by \
             the Pod as an emptyDir)",
            dir.display()
        );
    }
    let agent = dir.join("faultline");
    copy_file(exe, &agent, 0o755)?;
    let faketime = match faketime {
        Some(lib) => {
            let to = dir.join(INSTALLED_FAKETIME);
            copy_file(lib, &to, 0o755)?;
            Some((to, lib.to_path_buf()))
        }
        None => None,
    };
    Ok(Installed { agent, faketime })
}

/// Runs `faultline agent-install DIR`: the agent image's own executable and, when the
/// image holds one, libfaketime (found as the nemesis finds it: the usual distribution
/// paths, or `FAULTLINE_LIBFAKETIME`), copied into DIR; says what it copied and what it
/// did not find.
pub fn run_install(args: AgentInstallArgs) -> Result<u8> {
    let exe = std::env::current_exe().context("cannot find this faultline executable")?;
    let lib = faultline_nemesis::clock::find_libfaketime();
    let done = install(&args.dir, &exe, lib.as_deref())?;
    println!("copied {} to {}", exe.display(), done.agent.display());
    match &done.faketime {
        Some((to, from)) => println!("copied {} to {}", from.display(), to.display()),
        None => println!(
            "no libfaketime in this image (looked at {} and FAULTLINE_LIBFAKETIME): clock \
             faults will be unavailable on this node",
            faultline_nemesis::clock::LIBFAKETIME_PATHS.join(", ")
        ),
    }
    Ok(exit::VALID)
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
    /// What was done to put libfaketime into the child.
    preload: Preload,
}

/// The program's environment and what it preloads: with `faketime_lib` present, the
/// nemesis's faketime variables (the clock file `<clock_dir>/rc`, written `+0` here, as a
/// file that does not parse would make libfaketime end the program) before `env`; with
/// it absent, `env` alone and [`Preload::Missing`]; without it, whatever `env` (or the
/// agent's own environment, which the program inherits) preloads.
fn faketime_setup(
    faketime_lib: Option<&FsPath>,
    clock_dir: &FsPath,
    env: Vec<(String, String)>,
) -> Result<(Vec<(String, String)>, Preload)> {
    let Some(lib) = faketime_lib else {
        let ld_preload = env
            .iter()
            .rev()
            .find(|(k, _)| k == "LD_PRELOAD")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var("LD_PRELOAD").ok());
        return Ok((env, Preload::from_ld_preload(ld_preload.as_deref())));
    };
    if !lib.is_file() {
        return Ok((env, Preload::Missing(lib.display().to_string())));
    }
    faultline_nemesis::clock::init_clock_dir(clock_dir)
        .with_context(|| format!("cannot set the clock file in {}", clock_dir.display()))?;
    let rc = clock_dir.join(faultline_nemesis::clock::TIMESTAMP_FILE);
    let mut all = faultline_nemesis::clock::faketime_env(
        lib,
        &rc,
        faultline_nemesis::clock::CacheMode::OneSecond,
    );
    all.extend(env);
    Ok((all, Preload::Set(lib.display().to_string())))
}

/// `/proc/<pid>/maps`. The program may run as another user, whose maps root may read only
/// with CAP_SYS_PTRACE (not granted in containers): then the file is opened from a thread
/// whose filesystem ids are the program's, which the kernel's check accepts.
fn read_maps(pid: u32, user: Option<(u32, u32)>) -> Result<String, String> {
    let path = format!("/proc/{pid}/maps");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let Some((uid, gid)) = user else {
                return Err(format!("{path}: {e}"));
            };
            read_maps_as(pid, uid, gid)
        }
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// `/proc/<pid>/maps` opened from a new thread whose filesystem uid and gid are `uid` and
/// `gid` (the program's), which passes the kernel's access check without CAP_SYS_PTRACE.
fn read_maps_as(pid: u32, uid: u32, gid: u32) -> Result<String, String> {
    let path = format!("/proc/{pid}/maps");
    let reader = std::thread::spawn(move || {
        // SAFETY: setfsgid/setfsuid change this short-lived thread's filesystem ids only
        // (the raw calls are per thread); the thread ends after the read.
        unsafe {
            libc::setfsgid(gid);
            libc::setfsuid(uid);
        }
        std::fs::read_to_string(&path).map_err(|e| format!("{path} as {uid}:{gid}: {e}"))
    });
    reader
        .join()
        .unwrap_or_else(|_| Err("the maps reader thread panicked".to_string()))
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
        let maps = self.pid().map(|pid| read_maps(pid, self.user));
        let faketime = faketime_status(
            &self.preload,
            maps.as_ref().map(|m| m.as_deref().map_err(String::as_str)),
        );
        ChildStatus {
            state: state.to_string(),
            pid: self.pid(),
            last_exit: self.last_exit.clone(),
            faketime,
        }
    }

    /// SIGTERM to the group (then SIGCONT, so that a paused child handles it), SIGKILL
    /// to the group after `grace` if the child has not ended, the child reaped; any
    /// process left in its group is killed too, so that a start begins clean. Stopping a
    /// stopped child does nothing.
    async fn stop(&mut self, grace: Duration) -> Result<(), String> {
        self.reap();
        let Some(group) = self.pid().and_then(|p| i32::try_from(p).ok()) else {
            self.paused = false;
            return Ok(());
        };
        self.signal(libc::SIGTERM)?;
        let _ = self.signal(libc::SIGCONT);
        let mut ended = None;
        if let Some(child) = &mut self.child {
            if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
                ended = Some(status.map_err(|e| format!("waiting for the program: {e}"))?);
            }
        }
        if ended.is_none() {
            let _ = self.signal(libc::SIGKILL);
            if let Some(child) = &mut self.child {
                let status = child
                    .wait()
                    .await
                    .map_err(|e| format!("waiting for the program after SIGKILL: {e}"))?;
                ended = Some(status);
            }
        }
        // SAFETY: killpg only sends a signal; the group was our child's own (ESRCH when
        // nothing is left in it).
        unsafe { libc::killpg(group, libc::SIGKILL) };
        self.child = None;
        self.paused = false;
        if let Some(status) = ended {
            self.last_exit = Some(status.to_string());
        }
        Ok(())
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
            format!("no process operation {op:?} (kill, start, pause, resume, stop)"),
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

async fn stop(
    State(s): State<Arc<AgentState>>,
    headers: HeaderMap,
    Json(req): Json<StopRequest>,
) -> Result<Json<Confirmed>, Failure> {
    authorised(&s, &headers)?;
    s.child
        .lock()
        .await
        .stop(Duration::from_millis(req.grace_ms))
        .await
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?;
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
        .route(STOP_ROUTE, post(stop))
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
    let (env, preload) = faketime_setup(args.faketime_lib.as_deref(), &args.clock_dir, env)?;
    rt.block_on(async move {
        // Probe before the program starts: the probe briefly changes `lo`.
        let mut caps = probe_here().await;
        match &preload {
            Preload::Set(lib) => caps.libfaketime = Some(PathBuf::from(lib)),
            Preload::Missing(lib) => {
                tracing::warn!(
                    "clock faults unavailable: {lib} does not exist (the agent image holds no \
                     libfaketime); the program runs without it"
                );
                caps.libfaketime = None;
            }
            Preload::None => {}
        }
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
            preload,
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
        if let Err(e) = state.child.lock().await.stop(Duration::from_secs(5)).await {
            tracing::warn!("stopping the program: {e}");
        }
        Ok(exit::VALID)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_targets::agent::{Faketime, NotLoadedReason};

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
            preload: Preload::None,
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
        s.stop(Duration::from_secs(2)).await.unwrap();
        assert_eq!(s.status().state, "stopped");
    }

    fn supervisor(command: &[&str], env: Vec<(String, String)>, preload: Preload) -> Supervisor {
        Supervisor {
            command: command.iter().map(|c| c.to_string()).collect(),
            env,
            user: None,
            child: None,
            paused: false,
            last_exit: None,
            preload,
        }
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("faultline-agent-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Waits until the shell has set its trap (it writes `ready`), so that the signal
    /// does not arrive before it.
    async fn wait_for_file(path: &FsPath) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_child_that_handles_sigterm_ends_gracefully_within_the_grace() {
        let dir = scratch("graceful");
        let (ready, marker) = (dir.join("ready"), dir.join("marker"));
        let script = format!(
            "trap 'echo bye > {m}; exit 3' TERM; echo > {r}; while :; do sleep 0.05; done",
            m = marker.display(),
            r = ready.display()
        );
        let mut s = supervisor(&["sh", "-c", &script], vec![], Preload::None);
        s.spawn().unwrap();
        wait_for_file(&ready).await;
        let grace = Duration::from_secs(10);
        let t0 = std::time::Instant::now();
        s.stop(grace).await.unwrap();
        let elapsed = t0.elapsed();
        assert!(
            elapsed < grace,
            "took {elapsed:?}: SIGKILLed after the grace?"
        );
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "bye\n");
        let st = s.status();
        assert_eq!(st.state, "stopped");
        assert_eq!(st.pid, None);
        let exit = st.last_exit.unwrap();
        assert!(exit.contains("exit status: 3"), "{exit}");
        // Stopping a stopped child does nothing.
        s.stop(grace).await.unwrap();
        assert!(s.status().last_exit.unwrap().contains("exit status: 3"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_child_that_ignores_sigterm_is_killed_after_the_grace() {
        let dir = scratch("ignore");
        let (ready, marker) = (dir.join("ready"), dir.join("marker"));
        // SIG_IGN is inherited by `sleep` as well: the whole group ignores SIGTERM.
        let script = format!(
            "trap '' TERM; echo > {r}; sleep 5; echo late > {m}",
            m = marker.display(),
            r = ready.display()
        );
        let mut s = supervisor(&["sh", "-c", &script], vec![], Preload::None);
        s.spawn().unwrap();
        wait_for_file(&ready).await;
        let grace = Duration::from_millis(600);
        let t0 = std::time::Instant::now();
        s.stop(grace).await.unwrap();
        let elapsed = t0.elapsed();
        assert!(
            elapsed >= grace,
            "ended after {elapsed:?}, before the grace"
        );
        assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
        assert!(!marker.exists(), "the child went on after SIGTERM");
        let st = s.status();
        assert_eq!(st.state, "stopped");
        let exit = st.last_exit.unwrap();
        assert!(exit.contains("signal: 9"), "{exit}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_paused_child_is_stopped_too() {
        let mut s = supervisor(&["sleep", "30"], vec![], Preload::None);
        s.spawn().unwrap();
        s.op(ProcessOp::Pause).await.unwrap();
        assert_eq!(s.status().state, "paused");
        let grace = Duration::from_secs(10);
        let t0 = std::time::Instant::now();
        s.stop(grace).await.unwrap();
        // `sleep` ends on SIGTERM once thawed, well before the grace.
        assert!(t0.elapsed() < grace, "took {:?}", t0.elapsed());
        let st = s.status();
        assert_eq!(st.state, "stopped");
        let exit = st.last_exit.unwrap();
        assert!(exit.contains("signal: 15"), "{exit}");
    }

    /// The child's faketime status once it runs `sleep` and the dynamic loader has
    /// mapped libc (before its exec the child's maps are this test's own; right after it,
    /// only the loader's, and preloads come before libc).
    async fn faketime_of_sleep(s: &mut Supervisor) -> Faketime {
        s.spawn().unwrap();
        let pid = s.pid().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
            if exe.file_name().is_some_and(|n| n == "sleep") && maps.contains("/libc.so") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sleep never mapped libc"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let st = s.status();
        s.op(ProcessOp::Kill).await.unwrap();
        assert!(matches!(s.status().faketime, Faketime::Unknown { .. }));
        st.faketime
    }

    fn system_libfaketime() -> PathBuf {
        faultline_nemesis::clock::LIBFAKETIME_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .expect("libfaketime is not installed here: apt-get install libfaketime")
    }

    #[tokio::test]
    async fn the_status_says_whether_the_running_child_mapped_libfaketime() {
        let lib = system_libfaketime();
        let dir = scratch("maps");
        // Through --faketime-lib: the agent writes +0 and sets the variables.
        let (env, preload) = faketime_setup(Some(&lib), &dir, vec![]).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("rc")).unwrap(), "+0s\n");
        assert_eq!(
            env[0],
            ("LD_PRELOAD".to_string(), lib.display().to_string())
        );
        let mut s = supervisor(&["sleep", "30"], env, preload);
        match faketime_of_sleep(&mut s).await {
            Faketime::Loaded { path } => assert_eq!(FsPath::new(&path), lib),
            other => panic!("{other:?}"),
        }
        // Through the node's own LD_PRELOAD (the Docker runtime's way).
        let env = vec![("LD_PRELOAD".to_string(), lib.display().to_string())];
        let (env, preload) = faketime_setup(None, &dir, env).unwrap();
        assert_eq!(preload, Preload::Set(lib.display().to_string()));
        let mut s = supervisor(&["sleep", "30"], env, preload);
        assert!(faketime_of_sleep(&mut s).await.is_loaded());
        // Without it.
        let (env, preload) = faketime_setup(None, &dir, vec![]).unwrap();
        let mut s = supervisor(&["sleep", "30"], env, preload);
        match faketime_of_sleep(&mut s).await {
            Faketime::NotLoaded { reason, .. } => {
                assert_eq!(reason, NotLoadedReason::NotPreloaded)
            }
            other => panic!("{other:?}"),
        }
        // A library the agent image does not hold: the program runs without it.
        let missing = dir.join("libfaketime.so.1");
        let (env, preload) = faketime_setup(Some(&missing), &dir, vec![]).unwrap();
        assert!(env.is_empty());
        let mut s = supervisor(&["sleep", "30"], env, preload);
        match faketime_of_sleep(&mut s).await {
            Faketime::NotLoaded { reason, detail } => {
                assert_eq!(reason, NotLoadedReason::NoLibrary);
                assert!(detail.contains(&missing.display().to_string()), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn the_client_stops_the_child_over_the_control_channel() {
        let dir = scratch("http");
        let ready = dir.join("ready");
        let script = format!("trap '' TERM; echo > {}; sleep 30", ready.display());
        let mut child = supervisor(&["sh", "-c", &script], vec![], Preload::None);
        child.spawn().unwrap();
        let token = "0123456789abcdef0123";
        let state = Arc::new(AgentState {
            token: token.to_string(),
            caps: Capabilities::default(),
            local: Mutex::new(LocalNode::new(
                "127.0.0.1".parse().unwrap(),
                Capabilities::default(),
                dir.clone(),
                0,
            )),
            child: Mutex::new(child),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router(state)).await });
        let client = faultline_targets::agent::AgentClient::new(addr, token).unwrap();
        wait_for_file(&ready).await;
        assert_eq!(client.status().await.unwrap().state, "running");
        let grace = Duration::from_millis(400);
        let t0 = std::time::Instant::now();
        client.stop(grace).await.unwrap();
        assert!(t0.elapsed() >= grace, "answered after {:?}", t0.elapsed());
        let st = client.status().await.unwrap();
        assert_eq!(st.state, "stopped");
        assert!(st.last_exit.unwrap().contains("signal: 9"));
        // Stopping again does nothing; a start runs it again.
        client.stop(grace).await.unwrap();
        client.process(ProcessOp::Start).await.unwrap();
        assert_eq!(client.status().await.unwrap().state, "running");
        client.stop(Duration::ZERO).await.unwrap();
        server.abort();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn agent_install_copies_the_agent_and_the_library_when_there_is_one() {
        use std::os::unix::fs::PermissionsExt;
        let src = scratch("install-src");
        let (exe, lib) = (src.join("exe"), src.join("lib.so"));
        std::fs::write(&exe, b"agent").unwrap();
        std::fs::write(&lib, b"library").unwrap();
        let dir = scratch("install-dir");
        let done = install(&dir, &exe, Some(&lib)).unwrap();
        assert_eq!(done.agent, dir.join("faultline"));
        assert_eq!(std::fs::read(dir.join("faultline")).unwrap(), b"agent");
        let mode = std::fs::metadata(dir.join("faultline"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            done.faketime,
            Some((dir.join("libfaketime.so.1"), lib.clone()))
        );
        assert_eq!(
            std::fs::read(dir.join("libfaketime.so.1")).unwrap(),
            b"library"
        );
        // Without a library only the agent goes.
        let bare = scratch("install-bare");
        let done = install(&bare, &exe, None).unwrap();
        assert_eq!(done.faketime, None);
        assert!(!bare.join("libfaketime.so.1").exists());
        // A missing folder is named.
        let err = install(&bare.join("nope"), &exe, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope") && err.contains("not a folder"),
            "{err}"
        );
        for d in [src, dir, bare] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    /// Drops CAP_SYS_PTRACE from this thread's effective set (capabilities are per
    /// thread; threads it starts inherit the drop), as in a container without it.
    fn drop_cap_sys_ptrace_in_this_thread() {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        const CAP_SYS_PTRACE: u32 = 19;
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: capget/capset read and write the two structs given, laid out as the
        // kernel's version-3 header and data.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
                0
            );
            data[0].effective &= !(1 << CAP_SYS_PTRACE);
            assert_eq!(
                libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
                0
            );
        }
    }

    #[test]
    fn the_maps_of_a_child_run_as_another_user_are_read_with_its_filesystem_ids() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            let why = "this test needs root (to run a child as 65534:65534)";
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{why}");
            eprintln!("SKIPPED (CI unset): {why}");
            return;
        }
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .uid(65534)
            .gid(65534)
            .process_group(0)
            .spawn()
            .expect("run sleep as 65534:65534");
        let pid = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::fs::read_link(format!("/proc/{pid}/exe"))
            .unwrap_or_default()
            .ends_with("sleep")
        {
            assert!(std::time::Instant::now() < deadline, "no exec of sleep");
            std::thread::sleep(Duration::from_millis(10));
        }
        // (proc(5) makes the access a PTRACE_MODE_READ_FSCREDS check, which root without
        // CAP_SYS_PTRACE fails for another user's process; this machine's kernel lets it
        // through all the same, so only the reading as the child is shown here.)
        let maps = std::thread::spawn(move || {
            drop_cap_sys_ptrace_in_this_thread();
            read_maps_as(pid, 65534, 65534)
        })
        .join()
        .expect("the reading thread");
        let _ = child.kill();
        let _ = child.wait();
        let maps = maps.expect("maps read as 65534:65534 without CAP_SYS_PTRACE");
        assert!(maps.contains("/sleep"), "{maps}");
        // The thread's ids went with it: this thread is still root.
        // SAFETY: setfsuid(-1) fails and returns the current filesystem uid.
        assert_eq!(unsafe { libc::setfsuid(u32::MAX) }, 0);
    }
}
