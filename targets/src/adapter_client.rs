//! The `adapter` client: a program the user writes in any language, started by faultline,
//! speaking JSON Lines over its stdin and stdout (`docs/adapter-protocol.md`).
//!
//! **One adapter per client process.** A faultline process is single-threaded and bound
//! to one node; its adapter is started on its first operation and serves only it, one
//! request at a time. When an operation ends `info` the process is over (the worker goes
//! on as a fresh process), so its adapter is stopped; the next process gets a new one.
//! That makes a crashed, hung or confused adapter cost exactly one `info`:
//!
//! - no reply within the request timeout plus a grace (plus a start-up allowance for a
//!   fresh adapter): `info`, the adapter is killed;
//! - the adapter exits or closes its output: `info`;
//! - a reply that is not a JSON object of the protocol, or answers another `id`: `info`,
//!   the adapter is killed;
//! - the adapter cannot be started at all: `fail` (nothing was sent).
//!
//! The adapter's stderr is appended to `<run>/logs/adapter-<node>.stderr`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::client::role_of_status;
use crate::target::{Client, ClientOp, Completion, CompletionKind, Role, TargetError};

/// The longest reply line read (a larger one is garbage: `info`).
pub const MAX_REPLY_BYTES: u64 = 1 << 20;

/// The process slot used for leader questions (`f = "role"`).
const ROLE_PROCESS: u64 = u64::MAX;

/// How to start an adapter and how long to wait for it.
#[derive(Debug, Clone)]
pub struct AdapterSpec {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Its environment, besides faultline's `FAULTLINE_PROCESS`.
    pub env: Vec<(String, String)>,
    /// Its working folder.
    pub cwd: PathBuf,
    /// How long a reply may take.
    pub reply_timeout: Duration,
    /// Extra time for the first reply of a freshly started adapter.
    pub start_grace: Duration,
    /// The file its stderr is appended to.
    pub stderr_log: PathBuf,
}

/// A running adapter.
#[derive(Debug)]
struct Running {
    /// Killed when dropped.
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    fresh: bool,
    /// A request was sent and its reply not read yet: set while a round trip is under
    /// way, so an exchange abandoned half-way (its future dropped) is seen by the next one,
    /// which then discards this adapter instead of reading the old reply.
    busy: bool,
}

type Slot = Arc<tokio::sync::Mutex<Option<Running>>>;

/// The adapter client of one node.
#[derive(Debug)]
pub struct AdapterClient {
    inner: Arc<Inner>,
}

/// What the client's requests share (also with a leader question that outlives its
/// caller).
#[derive(Debug)]
struct Inner {
    node: String,
    spec: AdapterSpec,
    slots: Mutex<HashMap<u64, Slot>>,
    next_id: AtomicU64,
    started: AtomicU64,
}

/// A reply line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    id: Value,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    node: Option<String>,
}

/// Keeps a JSON `null` as `Some(Value::Null)`: only an absent field is `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Maps a reply line to the completion of `op` sent with `id`; `Err` says why the line is
/// not a valid reply (the adapter is then stopped and the operation is `info`).
pub fn map_reply(id: u64, line: &str, op: &ClientOp) -> Result<Completion, String> {
    let reply: Reply = serde_json::from_str(line.trim()).map_err(|e| {
        let shown: String = line.trim().chars().take(80).collect();
        format!("adapter wrote something that is not a reply ({e}): {shown:?}")
    })?;
    if reply.id.as_u64() != Some(id) {
        return Err(format!("adapter answered id {} to request {id}", reply.id));
    }
    let c = match reply.kind.as_str() {
        "ok" => match op {
            ClientOp::Read => match reply.value {
                Some(v) => Completion {
                    kind: CompletionKind::Ok,
                    value: v,
                    error: None,
                    node: None,
                },
                None => return Err("an ok read without a value".to_string()),
            },
            _ => Completion {
                kind: CompletionKind::Ok,
                value: op.argument(),
                error: None,
                node: None,
            },
        },
        "fail" => Completion::fail(reply.error.unwrap_or_else(|| "fail".to_string())),
        "info" => Completion::info(reply.error.unwrap_or_else(|| "info".to_string())),
        other => {
            return Err(format!(
                "adapter answered type {other:?} (ok, fail or info)"
            ))
        }
    };
    Ok(Completion {
        node: reply.node,
        ..c
    })
}

impl Running {
    /// Sends one request line and reads one reply line.
    async fn roundtrip(&mut self, line: &[u8]) -> Result<String, String> {
        self.stdin
            .write_all(line)
            .await
            .map_err(|e| format!("adapter closed its input: {e}"))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| format!("adapter closed its input: {e}"))?;
        loop {
            let mut buf = Vec::new();
            let n = (&mut self.stdout)
                .take(MAX_REPLY_BYTES)
                .read_until(b'\n', &mut buf)
                .await
                .map_err(|e| format!("reading the adapter's output: {e}"))?;
            if n == 0 {
                return Err("adapter exited (its output closed) before answering".to_string());
            }
            if !buf.ends_with(b"\n") {
                return Err(if n as u64 >= MAX_REPLY_BYTES {
                    format!("adapter reply longer than {MAX_REPLY_BYTES} bytes")
                } else {
                    "adapter exited in the middle of a reply".to_string()
                });
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            if !text.trim().is_empty() {
                return Ok(text);
            }
        }
    }
}

impl AdapterClient {
    /// The client of `node`; adapters start on demand.
    pub fn new(node: &str, spec: AdapterSpec) -> Result<Self, TargetError> {
        if spec.argv.is_empty() {
            return Err(TargetError::Client {
                node: node.to_string(),
                message: "the adapter command is empty".to_string(),
            });
        }
        if let Some(dir) = spec.stderr_log.parent() {
            std::fs::create_dir_all(dir).map_err(|e| TargetError::Client {
                node: node.to_string(),
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        Ok(AdapterClient {
            inner: Arc::new(Inner {
                node: node.to_string(),
                spec,
                slots: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                started: AtomicU64::new(0),
            }),
        })
    }

    /// How many adapters this client started so far.
    pub fn started(&self) -> u64 {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// Starts the adapter that answers leader questions now, in the background (inside a
    /// tokio runtime; otherwise nothing), so the nemesis's first question does not wait
    /// for an interpreter to start.
    pub fn warm_role(&self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let inner = self.inner.clone();
            handle.spawn(async move { inner.role().await });
        }
    }
}

impl Inner {
    fn slot(&self, process: u64) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(process).or_default().clone()
    }

    fn forget(&self, process: u64) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(&process);
    }

    fn spawn(&self, process: u64) -> Result<Running, String> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.stderr_log)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let (program, args) = self
            .spec
            .argv
            .split_first()
            .ok_or_else(|| "empty command".to_string())?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .envs(self.spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FAULTLINE_PROCESS", process.to_string())
            .current_dir(&self.spec.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the adapter's pipes are missing".to_string());
        };
        self.started.fetch_add(1, Ordering::Relaxed);
        Ok(Running {
            _child: child,
            stdin,
            stdout: BufReader::new(stdout),
            fresh: true,
            busy: false,
        })
    }

    /// Sends `request` (its `id` is filled in) on `process`'s adapter and returns the
    /// reply line, or the completion when there is none (the adapter is then stopped).
    async fn exchange(
        &self,
        process: u64,
        mut request: Value,
    ) -> (u64, Result<String, Completion>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        request["id"] = json!(id);
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        let slot = self.slot(process);
        let mut guard = slot.lock().await;
        if guard.as_ref().is_some_and(|r| r.busy) {
            // An earlier exchange was abandoned mid-way: its reply may still come.
            *guard = None;
        }
        if guard.is_none() {
            match self.spawn(process) {
                Ok(r) => *guard = Some(r),
                Err(e) => {
                    tracing::warn!("adapter for {}: {e}", self.node);
                    return (
                        id,
                        Err(Completion::fail(format!("adapter not started: {e}"))),
                    );
                }
            }
        }
        let Some(running) = guard.as_mut() else {
            return (id, Err(Completion::fail("adapter not started")));
        };
        let wait = if running.fresh {
            self.spec.reply_timeout + self.spec.start_grace
        } else {
            self.spec.reply_timeout
        };
        running.fresh = false;
        running.busy = true;
        let result = match tokio::time::timeout(wait, running.roundtrip(&line)).await {
            Ok(Ok(reply)) => {
                running.busy = false;
                Ok(reply)
            }
            Ok(Err(e)) => Err(Completion::info(e)),
            Err(_) => Err(Completion::info(format!(
                "adapter did not answer within {} ms",
                wait.as_millis()
            ))),
        };
        if result.is_err() {
            // Dropping the adapter kills it.
            *guard = None;
        }
        (id, result)
    }
}

#[async_trait]
impl Client for AdapterClient {
    async fn invoke(&self, key: &str, op: &ClientOp) -> Completion {
        self.invoke_as(ROLE_PROCESS - 1, key, op).await
    }

    async fn invoke_as(&self, process: u64, key: &str, op: &ClientOp) -> Completion {
        self.inner.invoke_as(process, key, op).await
    }

    async fn role(&self) -> Role {
        // The question runs on its own task: a caller that stops waiting (the nemesis asks
        // with a short timeout) leaves it to finish, so the role adapter stays in step and
        // warm for the next question.
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.role().await })
            .await
            .unwrap_or(Role::Unknown)
    }
}

impl Inner {
    async fn invoke_as(&self, process: u64, key: &str, op: &ClientOp) -> Completion {
        if matches!(op, ClientOp::Txn(_)) {
            // The adapter protocol has no transactions (the adapter target offers no
            // transactional workload, so a plan never gets here): nothing is sent.
            return Completion::fail("the adapter protocol has no transactions");
        }
        let request = json!({
            "id": 0,
            "f": op.f(),
            "key": key,
            "value": op.argument(),
            "node": self.node,
        });
        let (id, reply) = self.exchange(process, request).await;
        let mut done = match reply {
            Ok(line) => match map_reply(id, &line, op) {
                Ok(c) => c,
                Err(e) => {
                    self.slot(process).lock().await.take();
                    Completion::info(e)
                }
            },
            Err(c) => c,
        };
        if done.kind == CompletionKind::Info {
            // The process is over: stop its adapter (dropping it kills it).
            self.slot(process).lock().await.take();
            self.forget(process);
        }
        if done.node.is_none() {
            done.node = Some(self.node.clone());
        }
        done
    }

    async fn role(&self) -> Role {
        let request = json!({ "id": 0, "f": "role", "node": self.node });
        let (id, reply) = self.exchange(ROLE_PROCESS, request).await;
        let Ok(line) = reply else {
            return Role::Unknown;
        };
        let parsed: Result<Reply, _> = serde_json::from_str(line.trim());
        match parsed {
            Ok(r) if r.id.as_u64() == Some(id) && r.kind == "ok" => {
                r.value.as_ref().map_or(Role::Unknown, role_of_status)
            }
            _ => {
                self.slot(ROLE_PROCESS).lock().await.take();
                Role::Unknown
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An adapter that answers `reply` (with the request's id spliced in for `ID`) to every
    /// line, as a shell loop.
    fn answering(reply: &str) -> String {
        format!(
            "while read l; do id=$(echo \"$l\" | sed 's/.*\"id\":\\([0-9]*\\).*/\\1/'); echo '{}' | sed \"s/ID/$id/\"; done",
            reply
        )
    }

    fn client(script: &str, tag: &str) -> (AdapterClient, PathBuf) {
        let dir = std::env::temp_dir().join(format!("fl-adapter-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = dir.join("logs").join("adapter-n1.stderr");
        let spec = AdapterSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![("FAULTLINE_NODE".into(), "n1".into())],
            cwd: std::env::temp_dir(),
            reply_timeout: Duration::from_millis(300),
            start_grace: Duration::from_millis(300),
            stderr_log: log,
        };
        (AdapterClient::new("n1", spec).expect("client"), dir)
    }

    #[test]
    fn replies_map_to_completions() {
        let read = ClientOp::Read;
        let c = map_reply(3, r#"{"id":3,"type":"ok","value":null}"#, &read).expect("reply");
        assert_eq!((c.kind, c.value), (CompletionKind::Ok, Value::Null));
        assert!(map_reply(3, r#"{"id":3,"type":"ok"}"#, &read).is_err());
        let w = ClientOp::Write(4);
        let c = map_reply(3, r#"{"id":3,"type":"ok","node":"n2"}"#, &w).expect("reply");
        assert_eq!((c.value, c.node.as_deref()), (json!(4), Some("n2")));
        let c = map_reply(3, r#"{"id":3,"type":"fail","error":"mismatch"}"#, &w).expect("reply");
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (CompletionKind::Fail, Some("mismatch"))
        );
        let c = map_reply(3, r#"{"id":3,"type":"info"}"#, &w).expect("reply");
        assert_eq!(c.kind, CompletionKind::Info);
        for bad in [
            "garbage",
            r#"{"id":4,"type":"ok"}"#,
            r#"{"id":3,"type":"OK"}"#,
            r#"{"id":3,"type":"ok","vaule":1}"#,
            "[1,2]",
        ] {
            assert!(map_reply(3, bad, &w).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_working_adapter_serves_its_process_and_keeps_running() {
        let (c, dir) = client(&answering(r#"{"id":ID,"type":"ok","value":5}"#), "ok");
        for _ in 0..3 {
            let done = c.invoke_as(0, "k1", &ClientOp::Read).await;
            assert_eq!(
                (done.kind, done.value.clone()),
                (CompletionKind::Ok, json!(5)),
                "{done:?}"
            );
            assert_eq!(done.node.as_deref(), Some("n1"));
        }
        let done = c.invoke_as(0, "k1", &ClientOp::Write(9)).await;
        assert_eq!((done.kind, done.value), (CompletionKind::Ok, json!(9)));
        assert_eq!(c.started(), 1, "one adapter for the process");
        c.invoke_as(1, "k1", &ClientOp::Read).await;
        assert_eq!(c.started(), 2, "another for another process");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn garbage_exit_silence_and_wrong_ids_are_info_and_restart_the_adapter() {
        let cases = [
            (
                "garbage",
                "while read l; do echo 'not json at all'; done".to_string(),
            ),
            ("exits", "exit 0".to_string()),
            ("crashes", "read l; kill -9 $$".to_string()),
            ("silent", "cat > /dev/null".to_string()),
            (
                "wrong-id",
                answering(r#"{"id":999999,"type":"ok","value":1}"#),
            ),
            (
                "half-line",
                "read l; printf '{\"id\":1,'; exit 3".to_string(),
            ),
        ];
        for (tag, script) in cases {
            let (c, dir) = client(&script, tag);
            let t0 = Instant::now();
            for op in [ClientOp::Write(1), ClientOp::Read] {
                let done = c.invoke_as(7, "k", &op).await;
                assert_eq!(done.kind, CompletionKind::Info, "{tag}: {done:?}");
                assert!(done.error.is_some(), "{tag}");
            }
            // Bounded: at most the reply timeout plus the start grace per operation.
            assert!(
                t0.elapsed() < Duration::from_secs(3),
                "{tag}: {:?}",
                t0.elapsed()
            );
            assert_eq!(c.started(), 2, "{tag}: a fresh adapter after each info");
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[tokio::test]
    async fn an_adapter_that_cannot_start_is_fail_and_stderr_goes_to_the_log() {
        let (c, dir) = client("echo to-stderr >&2; exit 1", "stderr");
        let done = c.invoke_as(0, "k", &ClientOp::Write(1)).await;
        assert_eq!(done.kind, CompletionKind::Info);
        let log = std::fs::read_to_string(dir.join("logs/adapter-n1.stderr")).unwrap_or_default();
        assert!(log.contains("to-stderr"), "{log:?}");
        let mut spec = c.inner.spec.clone();
        spec.argv = vec!["/nonexistent/adapter".into()];
        let c = AdapterClient::new("n1", spec).expect("client");
        let done = c.invoke_as(1, "k", &ClientOp::Write(1)).await;
        assert_eq!(
            done.kind,
            CompletionKind::Fail,
            "nothing was sent: {done:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_fail_keeps_the_adapter_and_the_role_is_asked_of_it() {
        let (c, dir) = client(
            &answering(r#"{"id":ID,"type":"ok","value":{"role":"leader","term":4}}"#),
            "role",
        );
        assert_eq!(c.role().await, Role::Leader { term: 4 });
        // A question abandoned half-way does not leave its reply for the next one.
        let slow = client(
            &format!(
                "sleep 0.3; {}",
                answering(r#"{"id":ID,"type":"ok","value":{"role":"leader","term":5}}"#)
            ),
            "role-slow",
        );
        let quick = tokio::time::timeout(Duration::from_millis(50), slow.0.role()).await;
        assert!(quick.is_err(), "the caller gave up");
        assert_eq!(slow.0.role().await, Role::Leader { term: 5 });
        let _ = std::fs::remove_dir_all(slow.1);
        let _ = std::fs::remove_dir_all(dir);
        let (c, dir) = client(
            &answering(r#"{"id":ID,"type":"fail","error":"mismatch"}"#),
            "fail",
        );
        let cas = ClientOp::Cas {
            expected: 1,
            new: 2,
        };
        for _ in 0..2 {
            let done = c.invoke_as(0, "k", &cas).await;
            assert_eq!(
                (done.kind, done.error.as_deref()),
                (CompletionKind::Fail, Some("mismatch"))
            );
        }
        assert_eq!(c.started(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
