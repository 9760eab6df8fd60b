//! Running the external tools (`nsenter`, `nft`, `iptables`, `tc`, `ip`) with a time limit,
//! from async code and (for clean-up in `Drop`) from synchronous code.
//!
//! The only effects here are child processes; what they are fed comes from
//! [`crate::rules`].

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::NemesisError;

/// How long one external command may take before it is killed and reported as failed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// The output of a command that exited with success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// Runs `program args...`, feeding `stdin` if given, and fails unless it exits with 0.
pub async fn run(
    program: &str,
    args: &[String],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<Output, NemesisError> {
    let command_line = || {
        std::iter::once(program.to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawn_err = |source| NemesisError::Spawn {
        program: program.to_string(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.map_err(spawn_err)?;
        drop(pipe);
    }
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(result) => result.map_err(spawn_err)?,
        Err(_) => {
            return Err(NemesisError::Command {
                command: command_line(),
                status: format!("no exit within {} s (killed)", timeout.as_secs()),
                stderr: String::new(),
            })
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        return Err(NemesisError::Command {
            command: command_line(),
            status: out.status.to_string(),
            stderr,
        });
    }
    Ok(Output { stdout, stderr })
}

/// The path of this process's own network namespace. A mechanism handed this path (a node
/// agent acting inside its node) runs its tools directly, without `nsenter`.
pub const OWN_NETNS: &str = "/proc/self/ns/net";

/// True when `netns` is the namespace this process is in (same device and inode as
/// [`OWN_NETNS`]): entering it is a no-op, and needs no privilege beyond the tools' own.
pub fn is_own_netns(netns: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if netns == Path::new(OWN_NETNS) {
        return true;
    }
    match (std::fs::metadata(netns), std::fs::metadata(OWN_NETNS)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Runs `program args...` inside the network namespace at `netns`
/// (`nsenter --net=PATH program args...`; directly when it is our own, [`is_own_netns`]).
pub async fn run_in_netns(
    netns: &Path,
    program: &str,
    args: &[String],
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<Output, NemesisError> {
    if is_own_netns(netns) {
        return run(program, args, stdin, timeout).await;
    }
    let mut full = vec![format!("--net={}", netns.display()), program.to_string()];
    full.extend(args.iter().cloned());
    run("nsenter", &full, stdin, timeout).await
}

/// Runs `nsenter --net=PATH program args...` from synchronous code (a `Drop`), waiting at
/// most `timeout`: the child is killed when it overruns. Fails unless it exits with 0.
pub fn run_in_netns_blocking(
    netns: &Path,
    program: &str,
    args: &[String],
    timeout: Duration,
) -> Result<(), NemesisError> {
    let (tool, full) = if is_own_netns(netns) {
        (program.to_string(), args.to_vec())
    } else {
        let mut full = vec![format!("--net={}", netns.display()), program.to_string()];
        full.extend(args.iter().cloned());
        ("nsenter".to_string(), full)
    };
    let command = || format!("{tool} {}", full.join(" "));
    let spawn_err = |source| NemesisError::Spawn {
        program: tool.clone(),
        source,
    };
    let mut child = std::process::Command::new(&tool)
        .args(&full)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(spawn_err)?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(spawn_err)? {
            if status.success() {
                return Ok(());
            }
            return Err(NemesisError::Command {
                command: command(),
                status: status.to_string(),
                stderr: String::new(),
            });
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NemesisError::Command {
                command: command(),
                status: format!("no exit within {} s (killed)", timeout.as_secs()),
                stderr: String::new(),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// True when `program` can be started and exits with success given `args`
/// (e.g. `nft --version`).
pub async fn available(program: &str, args: &[&str]) -> bool {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run(program, &args, None, Duration::from_secs(5))
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn feeds_stdin_and_captures_stdout() {
        let out = run("cat", &[], Some("hello\n"), COMMAND_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(out.stdout, "hello\n");
    }

    #[tokio::test]
    async fn reports_failure_with_status_and_stderr() {
        let err = run(
            "sh",
            &args(&["-c", "echo oops >&2; exit 3"]),
            None,
            COMMAND_TIMEOUT,
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("oops"), "{text}");
    }

    #[tokio::test]
    async fn kills_a_command_that_overruns() {
        let started = std::time::Instant::now();
        let err = run("sleep", &args(&["5"]), None, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(err.to_string().contains("killed"), "{err}");
    }

    #[test]
    fn blocking_runner_reports_status_and_kills_overruns() {
        // This process's own namespace: the command runs directly (no nsenter, so no root
        // needed), with the same status reporting and overrun kill as through nsenter.
        let netns = Path::new("/proc/self/ns/net");
        let t = Duration::from_secs(5);
        run_in_netns_blocking(netns, "true", &[], t).unwrap();
        let err = run_in_netns_blocking(netns, "false", &[], t).unwrap_err();
        assert!(err.to_string().contains("exit status: 1"), "{err}");
        let started = std::time::Instant::now();
        let err = run_in_netns_blocking(netns, "sleep", &args(&["5"]), Duration::from_millis(200))
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(err.to_string().contains("killed"), "{err}");
    }

    #[tokio::test]
    async fn our_own_namespace_needs_no_nsenter() {
        let own = Path::new(OWN_NETNS);
        assert!(is_own_netns(own));
        let by_pid = format!("/proc/{}/ns/net", std::process::id());
        assert!(is_own_netns(Path::new(&by_pid)));
        assert!(!is_own_netns(Path::new("/nonexistent/ns")));
        let out = run_in_netns(own, "echo", &args(&["hi"]), None, COMMAND_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(out.stdout, "hi\n");
        run_in_netns_blocking(own, "true", &[], COMMAND_TIMEOUT).unwrap();
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let err = run("faultline-no-such-tool", &[], None, COMMAND_TIMEOUT)
            .await
            .unwrap_err();
        assert!(matches!(err, NemesisError::Spawn { .. }), "{err}");
        assert!(!available("faultline-no-such-tool", &[]).await);
        assert!(available("true", &[]).await);
    }
}
