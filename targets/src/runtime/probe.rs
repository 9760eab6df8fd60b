//! Readiness probes (an HTTP path, a TCP port, or a host command) and a minimal HTTP/1.0
//! GET client over tokio, enough to probe a node's readiness URL (`/health` = 200) and to
//! read small answers in tests. The
//! request text and the response parsing are pure functions.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::spec::ReadyProbe;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response read; a readiness answer is tiny.
const MAX_RESPONSE: usize = 1 << 20;

/// One HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

/// Why a probe did not get an answer.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// Connecting, writing or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Nothing came back in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The bytes were not an HTTP response.
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
}

/// The bytes of `GET path` for `host`, closing the connection after the answer.
pub fn request_bytes(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Parses a whole HTTP/1.x response (status line, headers, body).
pub fn parse_response(bytes: &[u8]) -> Result<HttpResponse, ProbeError> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = match text.split_once("\r\n\r\n") {
        Some(parts) => parts,
        None => text
            .split_once("\n\n")
            .ok_or_else(|| ProbeError::Malformed("no end of headers".into()))?,
    };
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ProbeError::Malformed(format!(
            "status line {status_line:?}"
        )));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| ProbeError::Malformed(format!("status line {status_line:?}")))?;
    Ok(HttpResponse {
        status,
        body: body.to_string(),
    })
}

/// `GET path` on `addr`, the whole exchange bounded by `timeout`.
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<HttpResponse, ProbeError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(&request_bytes(&addr.to_string(), path))
            .await?;
        let mut buf = Vec::new();
        let mut limited = (&mut stream).take(MAX_RESPONSE as u64);
        limited.read_to_end(&mut buf).await?;
        parse_response(&buf)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

/// Polls `GET path` on `addr` every `interval` until it answers 200, or until
/// `timeout` has passed. Returns how long it took, or the last failure
/// (as text) when time ran out.
pub async fn wait_http_ok(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut last = String::from("never probed");
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(last);
        }
        let attempt = (deadline - now).min(Duration::from_secs(1));
        match http_get(addr, path, attempt).await {
            Ok(r) if r.status == 200 => return Ok(start.elapsed()),
            Ok(r) => last = format!("HTTP {} {}", r.status, r.body.trim()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(interval).await;
    }
}

/// What `probe` asks of the node at `ip`, for messages (`http://10.0.0.11:7001/health`).
pub fn describe(ip: Ipv4Addr, probe: &ReadyProbe) -> String {
    match probe {
        ReadyProbe::Http { port, path } => format!("http://{ip}:{port}{path}"),
        ReadyProbe::Tcp { port } => format!("tcp://{ip}:{port}"),
        ReadyProbe::Command { argv } => format!("command {}", argv.join(" ")),
    }
}

/// One attempt of `probe` against the node at `ip`, bounded by `timeout`: `Ok` when ready,
/// else what was seen.
pub async fn probe_once(ip: Ipv4Addr, probe: &ReadyProbe, timeout: Duration) -> Result<(), String> {
    match probe {
        ReadyProbe::Http { port, path } => {
            match http_get(SocketAddr::from((ip, *port)), path, timeout).await {
                Ok(r) if r.status == 200 => Ok(()),
                Ok(r) => Err(format!("HTTP {} {}", r.status, r.body.trim())),
                Err(e) => Err(e.to_string()),
            }
        }
        ReadyProbe::Tcp { port } => {
            match tokio::time::timeout(timeout, TcpStream::connect((ip, *port))).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(ProbeError::Timeout(timeout).to_string()),
            }
        }
        ReadyProbe::Command { argv } => {
            let Some((program, args)) = argv.split_first() else {
                return Err("empty readiness command".to_string());
            };
            let child = tokio::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .output();
            match tokio::time::timeout(timeout, child).await {
                Ok(Ok(out)) if out.status.success() => Ok(()),
                Ok(Ok(out)) => {
                    let err = String::from_utf8_lossy(&out.stderr);
                    let err: String = err.trim().chars().take(200).collect();
                    Err(format!("{program} exited with {}: {err}", out.status))
                }
                Ok(Err(e)) => Err(format!("cannot run {program}: {e}")),
                Err(_) => Err(ProbeError::Timeout(timeout).to_string()),
            }
        }
    }
}

/// Polls `probe` on the node at `ip` every `interval` until it succeeds, or until
/// `timeout` has passed. Returns how long it took, or the last failure (as text).
pub async fn wait_ready(
    ip: Ipv4Addr,
    probe: &ReadyProbe,
    timeout: Duration,
    interval: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut last = String::from("never probed");
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(last);
        }
        let attempt = (deadline - now).min(Duration::from_secs(2));
        match probe_once(ip, probe, attempt).await {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) => last = e,
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_text() {
        assert_eq!(
            request_bytes("10.0.0.11:7001", "/health"),
            b"GET /health HTTP/1.0\r\nHost: 10.0.0.11:7001\r\nConnection: close\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn parses_responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!(
            r,
            HttpResponse {
                status: 200,
                body: "ok".into()
            }
        );
        let r = parse_response(b"HTTP/1.0 503 Service Unavailable\r\n\r\n").unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "");
        let r = parse_response(b"HTTP/1.0 404 Not Found\n\nnope").unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "nope"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            parse_response(b"hello"),
            Err(ProbeError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(b"SSH-2.0\r\n\r\n"),
            Err(ProbeError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 abc\r\n\r\n"),
            Err(ProbeError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn talks_to_a_loopback_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let n = sock.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            sock.write_all(b"HTTP/1.0 200 OK\r\n\r\nfine")
                .await
                .unwrap();
            req
        });
        let r = http_get(addr, "/health", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(
            r,
            HttpResponse {
                status: 200,
                body: "fine".into()
            }
        );
        assert!(server
            .await
            .unwrap()
            .starts_with("GET /health HTTP/1.0\r\n"));
    }

    #[tokio::test]
    async fn wait_reports_the_last_failure() {
        // Bind then drop: the port is closed, so connecting is refused.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let err = wait_http_ok(
            addr,
            "/health",
            Duration::from_millis(300),
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
        assert!(err.contains("refused"), "{err}");
    }
}
