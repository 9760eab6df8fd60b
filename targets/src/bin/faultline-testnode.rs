//! `faultline-testnode`: a tiny HTTP/1.0 server, dynamically linked, standing
//! in for `faultline-node` in this crate's tests of the container runtime.
//!
//! Usage: `faultline-testnode [--listen ADDR] [--data-dir DIR] [--fail-start]`
//! (defaults `0.0.0.0:7001`, `/data`).
//!
//! Routes (all `GET`):
//! - `/health`: `200 ok`;
//! - `/time`: the wall clock (`SystemTime`, so libfaketime applies) as
//!   seconds since the epoch with milliseconds, e.g. `1795799668.123`;
//! - `/hostname`: the contents of `/etc/hostname`;
//! - `/peer/<ip>/<port>`: this node's own `GET /health` to another node
//!   (1 s timeouts): `200 reached <status line>` or `502 <error>`;
//! - `/put/<key>/<value>`: writes `value` to `<data-dir>/<key>` (keys and
//!   values of `a-z A-Z 0-9 - _`), fsynced;
//! - `/get/<key>`: the file's contents, or 404.
//!
//! `--fail-start` prints a message and exits with status 3, to test how the
//! runtime reports a node that never becomes ready.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

struct Options {
    listen: String,
    data_dir: PathBuf,
    fail_start: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        listen: "0.0.0.0:7001".to_string(),
        data_dir: PathBuf::from("/data"),
        fail_start: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--listen" => options.listen = it.next().ok_or("--listen needs an address")?.clone(),
            "--data-dir" => {
                options.data_dir = PathBuf::from(it.next().ok_or("--data-dir needs a path")?)
            }
            "--fail-start" => options.fail_start = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn now_text() -> String {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => format!("{}.{:03}", d.as_secs(), d.subsec_millis()),
        Err(e) => format!("-{:.3}", e.duration().as_secs_f64()),
    }
}

/// Answers one request path with a status and a body.
fn route(path: &str, data_dir: &Path) -> (u16, String) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["health"] => (200, "ok".into()),
        ["time"] => (200, now_text()),
        ["hostname"] => match std::fs::read_to_string("/etc/hostname") {
            Ok(h) => (200, h.trim().to_string()),
            Err(e) => (500, e.to_string()),
        },
        ["peer", ip, port] => match format!("{ip}:{port}").parse() {
            Ok(addr) => match probe_peer(addr) {
                Ok(line) => (200, format!("reached {line}")),
                Err(e) => (502, e.to_string()),
            },
            Err(_) => (400, "bad address".into()),
        },
        ["put", key, value] if is_word(key) && is_word(value) => {
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::File::create(data_dir.join(key))?;
                f.write_all(value.as_bytes())?;
                f.sync_all()
            };
            match write() {
                Ok(()) => (200, "stored".into()),
                Err(e) => (500, e.to_string()),
            }
        }
        ["get", key] if is_word(key) => match std::fs::read_to_string(data_dir.join(key)) {
            Ok(v) => (200, v),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (404, "no such key".into()),
            Err(e) => (500, e.to_string()),
        },
        _ => (404, "not found".into()),
    }
}

/// `GET /health` on `addr`; returns the status line of the answer.
fn probe_peer(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let timeout = std::time::Duration::from_secs(1);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line.trim().to_string())
}

fn serve(stream: TcpStream, data_dir: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut words = request_line.split_whitespace();
    let (status, body) = match (words.next(), words.next()) {
        (Some("GET"), Some(path)) => route(path, data_dir),
        _ => (400, "bad request".into()),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        502 => "Bad Gateway",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.0 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("faultline-testnode: {e}");
            std::process::exit(2);
        }
    };
    if options.fail_start {
        eprintln!("faultline-testnode: failing on purpose (--fail-start)");
        std::process::exit(3);
    }
    let listener = match TcpListener::bind(&options.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "faultline-testnode: cannot listen on {}: {e}",
                options.listen
            );
            std::process::exit(1);
        }
    };
    println!(
        "faultline-testnode listening on {} at {}",
        options.listen,
        now_text()
    );
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                let dir = options.data_dir.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(s, &dir) {
                        eprintln!("faultline-testnode: {e}");
                    }
                });
            }
            Err(e) => eprintln!("faultline-testnode: accept: {e}"),
        }
    }
}
