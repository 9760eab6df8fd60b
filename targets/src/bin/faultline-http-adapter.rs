//! `faultline-http-adapter`: an adapter (`docs/adapter-protocol.md`) that forwards each
//! request to a node speaking faultline's HTTP protocol (`docs/protocol-http.md`) over
//! one kept-alive HTTP/1.1 connection, blocking, one request at a time. The compiled
//! counterpart of `examples/targets/http_kv_adapter.py`, for measuring what the adapter
//! protocol costs against the built-in `http-kv` client.
//!
//! Environment: `FAULTLINE_NODE_ADDR` (required), `FAULTLINE_TIMEOUT_MS` (default 1500).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};

/// Why a request got no answer.
enum Failure {
    /// The connection could not be opened: nothing was sent.
    NotSent(String),
    /// Anything after sending.
    Unknown(String),
}

struct Conn {
    addr: SocketAddr,
    timeout: Duration,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, self.timeout)
                .map_err(|e| Failure::NotSent(e.to_string()))?;
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(self.timeout));
            let _ = s.set_write_timeout(Some(self.timeout));
            self.stream = Some(BufReader::new(s));
        }
        let result = self.exchange(method, path, body);
        if result.is_err() {
            self.stream = None;
        }
        result.map_err(Failure::Unknown)
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let stream = self.stream.as_mut().ok_or("no connection")?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let w = stream.get_mut();
        w.write_all(head.as_bytes())
            .and_then(|()| w.write_all(body.as_bytes()))
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        stream.read_line(&mut line).map_err(|e| e.to_string())?;
        if !line.starts_with("HTTP/1.") {
            return Err(format!("not an HTTP answer: {line:?}"));
        }
        let mut length = None;
        let mut close = false;
        loop {
            let mut h = String::new();
            stream.read_line(&mut h).map_err(|e| e.to_string())?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse::<usize>().ok(),
                    "connection" => close = v.trim().eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
        }
        let length = length.ok_or("an answer without Content-Length")?;
        if length > 1 << 20 {
            return Err("an answer over 1 MiB".to_string());
        }
        let mut buf = vec![0u8; length];
        stream.read_exact(&mut buf).map_err(|e| e.to_string())?;
        if close {
            self.stream = None;
        }
        serde_json::from_slice(&buf).map_err(|e| e.to_string())
    }
}

fn handle(conn: &mut Conn, req: &Value) -> Value {
    let f = req.get("f").and_then(Value::as_str).unwrap_or("");
    let key = req.get("key").and_then(Value::as_str).unwrap_or("");
    let value = req.get("value").cloned().unwrap_or(Value::Null);
    let sent = match f {
        "read" => conn.request("GET", &format!("/kv/{key}"), None),
        "write" => conn.request(
            "PUT",
            &format!("/kv/{key}"),
            Some(&json!({ "value": value })),
        ),
        "cas" => conn.request(
            "POST",
            &format!("/kv/{key}/cas"),
            Some(&json!({ "expected": value.get(0), "new": value.get(1) })),
        ),
        "role" => match conn.request("GET", "/status", None) {
            Ok(s) => {
                return json!({"type": "ok", "value": {"role": s.get("role"), "term": s.get("term")}})
            }
            Err(_) => return json!({"type": "fail", "error": "no status"}),
        },
        other => return json!({"type": "fail", "error": format!("unknown f {other:?}")}),
    };
    let answer = match sent {
        Ok(a) => a,
        Err(Failure::NotSent(e)) => {
            return json!({"type": "fail", "error": format!("connect: {e}")})
        }
        Err(Failure::Unknown(e)) => return json!({"type": "info", "error": e}),
    };
    let mut reply = match answer.get("outcome").and_then(Value::as_str) {
        Some("ok") if f != "read" => json!({"type": "ok"}),
        Some("ok") => match answer.get("value") {
            Some(v) => json!({"type": "ok", "value": v}),
            None => json!({"type": "info", "error": "an ok read without a value"}),
        },
        Some("fail") => {
            json!({"type": "fail", "error": answer.get("error").cloned().unwrap_or(json!("fail"))})
        }
        _ => {
            json!({"type": "info", "error": answer.get("error").cloned().unwrap_or(json!("unknown"))})
        }
    };
    if let Some(node) = answer.get("node").filter(|n| n.is_string()) {
        reply["node"] = node.clone();
    }
    reply
}

fn main() {
    let Some(addr) = std::env::var("FAULTLINE_NODE_ADDR")
        .ok()
        .and_then(|a| a.parse::<SocketAddr>().ok())
    else {
        eprintln!("faultline-http-adapter: FAULTLINE_NODE_ADDR (IP:PORT) is required");
        std::process::exit(2);
    };
    let timeout_ms = std::env::var("FAULTLINE_TIMEOUT_MS")
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1500);
    let mut conn = Conn {
        addr,
        timeout: Duration::from_millis(timeout_ms.max(1)),
        stream: None,
    };
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let req: Value = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("faultline-http-adapter: bad request line: {e}");
                break;
            }
        };
        let mut reply = handle(&mut conn, &req);
        reply["id"] = req.get("id").cloned().unwrap_or(Value::Null);
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
}
