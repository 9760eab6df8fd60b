//! Every answer of the node API is a JSON object with an `outcome` and the `node` that
//! served it, whatever the request: wrong methods, paths that are not UTF-8 once decoded,
//! unknown routes, bodies that do not parse or are too large, on client and peer routes.

mod common;

use common::{Cluster, Spec};
use reqwest::Method;
use serde_json::{json, Value};

/// One request: method, path (already percent-encoded), body.
type Probe = (Method, &'static str, Vec<u8>);

fn probes_common() -> Vec<Probe> {
    vec![
        // Wrong methods on every client route.
        (Method::DELETE, "/kv/k", vec![]),
        (Method::PATCH, "/kv/k", vec![]),
        (Method::POST, "/kv/k", br#"{"value":1}"#.to_vec()),
        (Method::GET, "/kv/k/cas", vec![]),
        (Method::PUT, "/kv/k/cas", vec![]),
        (Method::POST, "/health", vec![]),
        (Method::PUT, "/status", vec![]),
        (Method::OPTIONS, "/status", vec![]),
        // Paths that are not UTF-8 once percent-decoded, and other garbage.
        (Method::GET, "/kv/%FF", vec![]),
        (Method::PUT, "/kv/%C3%28", br#"{"value":1}"#.to_vec()),
        (
            Method::POST,
            "/kv/%FF%FE/cas",
            br#"{"expected":1,"new":2}"#.to_vec(),
        ),
        (Method::GET, "/kv/%00", vec![]),
        (Method::GET, "/kv/a%2Fb", vec![]),
        (Method::GET, "/%FF", vec![]),
        // Unknown routes.
        (Method::GET, "/", vec![]),
        (Method::GET, "/nope", vec![]),
        (Method::GET, "/kv", vec![]),
        (Method::GET, "/kv/", vec![]),
        (Method::GET, "/kv/a/b/c", vec![]),
        // Bodies that do not parse, and one too large.
        (Method::PUT, "/kv/k", b"{".to_vec()),
        (Method::PUT, "/kv/k", vec![0xff, 0xfe]),
        (Method::PUT, "/kv/k", br#"{"value":1,"extra":2}"#.to_vec()),
        (Method::POST, "/kv/k/cas", br#"{"expected":1}"#.to_vec()),
    ]
}

/// Bodies over a route's limit: `(method, path, announced length)`.
fn oversized_common() -> Vec<(&'static str, &'static str, usize)> {
    vec![
        ("PUT", "/kv/k", 2 * 1024 * 1024),
        ("POST", "/kv/k/cas", 1024 * 1024 + 1),
    ]
}

async fn check_every_answer(c: &Cluster, probes: &[Probe], oversized: &[(&str, &str, usize)]) {
    for node in 0..c.spec.nodes {
        for (method, path, len) in oversized {
            let (code, v) = c.announce_body(node, method, path, *len, 4096, true).await;
            assert_eq!(code, 413, "{method} {path} of {len} bytes: {v}");
            assert_eq!(
                (v["outcome"].clone(), v["error"].clone(), v["node"].clone()),
                (
                    json!("fail"),
                    json!("too-large"),
                    json!(format!("n{}", node + 1))
                ),
                "{method} {path} of {len} bytes"
            );
        }
    }
    let names: Vec<String> = (1..=c.spec.nodes).map(|i| format!("n{i}")).collect();
    for node in 0..c.spec.nodes {
        let me = format!("n{}", node + 1);
        for (method, path, body) in probes {
            let r = c
                .http
                .request(method.clone(), c.url(node, path))
                .body(body.clone())
                .send()
                .await;
            let Ok(r) = r else {
                panic!("{method} {path}: no answer: {r:?}");
            };
            let status = r.status().as_u16();
            let bytes = r.bytes().await.unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            // A request forwarded to the leader is answered by the leader.
            let named = v["node"]
                .as_str()
                .is_some_and(|n| names.iter().any(|m| m == n));
            assert!(
                v.is_object() && v["outcome"].is_string() && named,
                "{method} {path} on {me}: HTTP {status}, not a JSON answer: {text:?}"
            );
            // A refused request says why, and its status is an error.
            if v["outcome"] != "ok" {
                assert!(v["error"].is_string(), "{method} {path}: {text}");
                assert!(status >= 400, "{method} {path}: {status} {text}");
            }
        }
    }
    c.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_register_answers_every_request_with_json() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    c.wait_leader(&[0, 1, 2]).await;
    let mut probes = probes_common();
    probes.extend([
        (Method::GET, "/raft/messages", vec![]),
        (Method::PUT, "/raft/messages", vec![]),
        (Method::POST, "/raft/messages", vec![9u8, 0, 0, 0, 1]),
        (Method::POST, "/raft/messages/x", vec![]),
        (Method::GET, "/health", vec![]),
        (Method::GET, "/status", vec![]),
        (Method::GET, "/kv/fine", vec![]),
    ]);
    let mut oversized = oversized_common();
    oversized.push(("POST", "/raft/messages", 64 * 1024 * 1024 + 64 * 1024 + 1));
    check_every_answer(&c, &probes, &oversized).await;
    // The wrong method is refused with 405 and says so.
    let r = c.http.delete(c.url(0, "/kv/k")).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(v["error"], "method-not-allowed", "{v}");
    c.write_ok(0, "fine", serde_json::json!(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_kv_answers_every_request_with_json() {
    let c = Cluster::start(Spec::new("quorum-kv", 3)).await;
    for i in 0..3 {
        c.wait_healthy(i).await;
    }
    let mut probes = probes_common();
    probes.extend([
        (Method::DELETE, "/internal/kv/k", vec![]),
        (Method::POST, "/internal/kv/k", vec![]),
        (Method::GET, "/internal/kv/%FF", vec![]),
        (Method::PUT, "/internal/kv/k", b"{".to_vec()),
        (Method::PUT, "/internal/kv/bad%20key", vec![]),
        (Method::POST, "/internal/ping", vec![]),
        (Method::GET, "/internal/ping", vec![]),
        (Method::GET, "/internal/kv/k", vec![]),
        (Method::GET, "/internal/nope", vec![]),
        (Method::GET, "/health", vec![]),
        (Method::GET, "/status", vec![]),
    ]);
    let mut oversized = oversized_common();
    oversized.push(("PUT", "/internal/kv/k", 1024 * 1024 + 4 * 1024 + 1));
    check_every_answer(&c, &probes, &oversized).await;
    c.write_ok(1, "fine", serde_json::json!(1)).await;
}
