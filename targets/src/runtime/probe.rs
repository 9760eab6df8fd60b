//! Readiness probes (an HTTP path, a TCP port, or a host command). HTTP goes through
//! reqwest (HTTP/1.1, chunked bodies, keep-alive), enough to wait for a node's `/health`
//! and to read small answers in tests.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::spec::ReadyProbe;

use thiserror::Error;
use tokio::net::TcpStream;

/// Largest body read; a readiness answer is tiny.
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
    /// Connecting, sending or reading failed.
    #[error("{0}")]
    Http(String),
    /// Nothing came back in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The body was larger than the probe reads.
    #[error("answer larger than {MAX_RESPONSE} bytes")]
    TooLarge,
}

/// The text of a reqwest error with its causes ("error sending request: ...:
/// Connection refused"), so that the reason is visible in one line.
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

/// A client for probes: no proxy, each request bounded by `timeout`.
fn probe_client(timeout: Duration) -> Result<reqwest::Client, ProbeError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|e| ProbeError::Http(error_text(&e)))
}

async fn get_with(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<HttpResponse, ProbeError> {
    let exchange = async {
        let url = format!("http://{addr}{path}");
        let mut resp = client
            .get(&url)
            .send()
            .await
            .map_err(|e| ProbeError::Http(error_text(&e)))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ProbeError::Http(error_text(&e)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(ProbeError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}

/// `GET path` on `addr`, the whole exchange bounded by `timeout`.
pub async fn http_get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<HttpResponse, ProbeError> {
    let client = probe_client(timeout)?;
    get_with(&client, addr, path, timeout).await
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
    let client = probe_client(Duration::from_secs(1)).map_err(|e| e.to_string())?;
    let mut last = String::from("never probed");
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(last);
        }
        let attempt = (deadline - now).min(Duration::from_secs(1));
        match get_with(&client, addr, path, attempt).await {
            Ok(r) if r.status == 200 => return Ok(start.elapsed()),
            Ok(r) => last = format!("HTTP {} {}", r.status, r.body.trim()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(interval).await;
    }
}

/// What `probe` asks of the node at `ip`, for messages (`http://10.0.0.11:7001/health`).
pub fn describe(ip: IpAddr, probe: &ReadyProbe) -> String {
    match probe {
        ReadyProbe::Http { port, path } => {
            format!("http://{}{path}", SocketAddr::from((ip, *port)))
        }
        ReadyProbe::Tcp { port } => format!("tcp://{}", SocketAddr::from((ip, *port))),
        ReadyProbe::TcpExchange { port, send, expect } => {
            format!(
                "tcp://{} (sending {send:?}, expecting {expect:?})",
                SocketAddr::from((ip, *port))
            )
        }
        ReadyProbe::Command { argv } => format!("command {}", argv.join(" ")),
    }
}

/// One attempt of `probe` against the node at `ip`, bounded by `timeout`: `Ok` when ready,
/// else what was seen.
pub async fn probe_once(ip: IpAddr, probe: &ReadyProbe, timeout: Duration) -> Result<(), String> {
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
        ReadyProbe::TcpExchange { port, send, expect } => {
            let addr = SocketAddr::from((ip, *port));
            match tokio::time::timeout(timeout, tcp_exchange(addr, send)).await {
                Ok(Ok(text)) if text.contains(expect.as_str()) => Ok(()),
                Ok(Ok(text)) => {
                    let first: String = text.trim().chars().take(200).collect();
                    Err(format!("answer to {send:?} lacks {expect:?}: {first:?}"))
                }
                Ok(Err(e)) => Err(e),
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

/// The most of an answer [`tcp_exchange`] reads.
pub const TCP_EXCHANGE_LIMIT: u64 = 64 * 1024;

/// Connects to `addr`, writes `send` and reads the answer until the peer closes (at
/// most [`TCP_EXCHANGE_LIMIT`] bytes), as text: a line protocol's health or status word
/// (ZooKeeper's `srvr`). No time limit of its own: the caller bounds it. `Err` says
/// which step failed.
pub async fn tcp_exchange(addr: SocketAddr, send: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream
        .write_all(send.as_bytes())
        .await
        .map_err(|e| format!("sending {send:?}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(TCP_EXCHANGE_LIMIT)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("reading the answer to {send:?}: {e}"))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Polls `probe` on the node at `ip` every `interval` until it succeeds, or until
/// `timeout` has passed. Returns how long it took, or the last failure (as text).
pub async fn wait_ready(
    ip: IpAddr,
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot server answering `answer` to the first request; returns its address
    /// and the request it received.
    async fn serve_once(answer: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = sock.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            sock.write_all(answer).await.unwrap();
            sock.shutdown().await.unwrap();
            req
        });
        (addr, server)
    }

    #[tokio::test]
    async fn reads_a_plain_answer() {
        let (addr, server) = serve_once(b"HTTP/1.0 200 OK\r\n\r\nfine").await;
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
            .starts_with("GET /health HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn reads_a_chunked_answer() {
        let (addr, _server) = serve_once(
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\n{\"hea\r\na\r\nlth\":false\r\n1\r\n}\r\n0\r\n\r\n",
        )
        .await;
        let r = http_get(addr, "/health", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "{\"health\":false}");
    }

    #[tokio::test]
    async fn garbage_is_an_error() {
        let (addr, _server) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        let err = http_get(addr, "/health", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::Http(_)), "{err}");
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
        assert!(err.to_lowercase().contains("refused"), "{err}");
    }

    /// A one-shot line server on loopback: reads the request, answers `answer`, closes.
    async fn word_server(answer: &'static str) -> (IpAddr, u16) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut word = [0u8; 4];
                if s.read_exact(&mut word).await.is_ok() && &word == b"srvr" {
                    let _ = s.write_all(answer.as_bytes()).await;
                }
            }
        });
        (IpAddr::from([127, 0, 0, 1]), port)
    }

    #[tokio::test]
    async fn a_tcp_exchange_passes_only_with_the_expected_answer() {
        let probe = |port| ReadyProbe::TcpExchange {
            port,
            send: "srvr".into(),
            expect: "Mode: ".into(),
        };
        let (ip, serving) = word_server("Zxid: 0x100000002\nMode: follower\n").await;
        let t = Duration::from_secs(2);
        assert_eq!(probe_once(ip, &probe(serving), t).await, Ok(()));
        let (ip, idle) =
            word_server("This ZooKeeper instance is not currently serving requests\n").await;
        let err = probe_once(ip, &probe(idle), t).await.unwrap_err();
        assert!(err.contains("not currently serving"), "{err}");
        assert!(describe(ip, &probe(idle)).contains("expecting \"Mode: \""));
        // Nobody listening: the connection error.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(probe_once(ip, &probe(port), t).await.is_err());
    }
}
