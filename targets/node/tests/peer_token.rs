//! Peer routes (`/raft/messages`, `/internal/*`) answer only requests that carry the
//! cluster's token (`Authorization: Bearer TOKEN`): 401 without it, 403 with another one,
//! before the body is read. A node does not start without a token.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, scratch_dir, Cluster, Spec};
use serde_json::{json, Value};

async fn answer(r: reqwest::Result<reqwest::Response>) -> (u16, Value) {
    match r {
        Ok(resp) => {
            let code = resp.status().as_u16();
            (code, resp.json().await.unwrap_or(Value::Null))
        }
        Err(e) => panic!("no answer: {e}"),
    }
}

/// Every way of not holding the token, on one peer route of node 0.
async fn refused_without_the_token(c: &Cluster, method: reqwest::Method, path: &str) {
    let url = c.url(0, path);
    let send = |auth: Option<String>, body: Vec<u8>| {
        let mut req = c.anonymous.request(method.clone(), &url).body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    let other = common::fresh_token();
    let cases = [
        (None, 401),
        (Some("Basic dXNlcjpwdw==".to_owned()), 401),
        (Some("Bearer".to_owned()), 401),
        (Some(format!("Bearer {other}")), 403),
        (
            Some(format!("Bearer {}", &c.token[..c.token.len() - 1])),
            403,
        ),
        (Some(format!("Bearer {}x", c.token)), 403),
        (Some(format!("bearer {}", c.token.to_uppercase())), 403),
    ];
    for (auth, want) in cases {
        let (code, body) = answer(send(auth.clone(), Vec::new()).await).await;
        assert_eq!(code, want, "{path} with {auth:?}: {body}");
        let error = if want == 401 {
            "unauthorized"
        } else {
            "forbidden"
        };
        assert_eq!(
            (body["outcome"].clone(), body["error"].clone()),
            (json!("fail"), json!(error)),
            "{path} with {auth:?}: {body}"
        );
        assert_eq!(body["node"], "n1");
    }
    // The body of an unauthenticated request is not read: one announced as 100 MiB, of
    // which 1 KiB is sent, is answered at once, for the token, not for its size.
    let (code, body) = c
        .announce_body(0, method.as_str(), path, 100 * 1024 * 1024, 1024, false)
        .await;
    assert_eq!(
        (code, body["error"].clone()),
        (401, json!("unauthorized")),
        "{path}: a huge unauthenticated body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_register_peers_need_the_cluster_token() {
    let c = Cluster::start(Spec::new("raft-register", 3)).await;
    c.wait_leader(&[0, 1, 2]).await;
    refused_without_the_token(&c, reqwest::Method::POST, "/raft/messages").await;
    // With the token: an empty batch is fine.
    let (code, body) = c.post_raft(0, Vec::new()).await;
    assert_eq!(
        (code, body["outcome"].clone()),
        (200, json!("ok")),
        "{body}"
    );
    // Client routes need no token.
    let (code, body) = answer(c.anonymous.get(c.url(0, "/kv/a")).send().await).await;
    assert_eq!(code, 200, "{body}");
    // The nodes, which hold the token, replicate as before.
    c.write_ok(0, "t", json!(1)).await;
    assert_eq!(c.read_ok(2, "t").await, json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_kv_peers_need_the_cluster_token() {
    let c = Cluster::start(Spec::new("quorum-kv", 3)).await;
    for i in 0..3 {
        c.wait_healthy(i).await;
    }
    c.write_ok(1, "q", json!("v")).await;
    refused_without_the_token(&c, reqwest::Method::GET, "/internal/kv/q").await;
    refused_without_the_token(&c, reqwest::Method::PUT, "/internal/kv/q").await;
    refused_without_the_token(&c, reqwest::Method::GET, "/internal/ping").await;
    let (code, body) = c.get(0, "/internal/kv/q").await;
    assert_eq!((code, body["value"].clone()), (200, json!("v")), "{body}");
    let (code, _) = answer(c.anonymous.get(c.url(0, "/kv/q")).send().await).await;
    assert_eq!(code, 200);
}

/// Runs a node with `args` and `token_env`; its exit status and stderr if it exits within
/// a few seconds (it is killed otherwise and `None` is returned).
fn run_node(args: &[String], token_env: Option<&str>) -> Option<(i32, String)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline-node"));
    cmd.args(args)
        .env_remove("FAULTLINE_PEER_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(t) = token_env {
        cmd.env("FAULTLINE_PEER_TOKEN", t);
    }
    let mut child = cmd.spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Some((status.code().unwrap_or(-1), err));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_node_needs_a_token_of_sixteen_printable_characters_or_more() {
    for mode in ["raft-register", "quorum-kv"] {
        let dir = scratch_dir("token");
        let port = free_port();
        let base: Vec<String> = [
            mode,
            "--id",
            "1",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--peers",
            &format!("1=127.0.0.1:{port}"),
            "--data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.join("data").display().to_string()])
        .collect();
        let none = run_node(&base, None);
        assert!(
            matches!(&none, Some((1, e)) if e.contains("peer token")),
            "{mode} without a token: {none:?}"
        );
        let short = run_node(&base, Some("short"));
        assert!(
            matches!(&short, Some((1, e)) if e.contains("peer token")),
            "{mode} with a short token: {short:?}"
        );
        let spaced = run_node(&base, Some("a token with spaces in it"));
        assert!(
            matches!(&spaced, Some((1, _))),
            "{mode} with spaces: {spaced:?}"
        );
        // A token from a file (a trailing newline is not part of it) starts the node.
        let file = dir.join("token");
        std::fs::write(&file, format!("{}\n", common::fresh_token())).expect("write");
        let mut with_file = base.clone();
        with_file.extend(["--peer-token-file".to_owned(), file.display().to_string()]);
        assert_eq!(run_node(&with_file, None), None, "{mode} with a token file");
        // So does one on the command line.
        let mut with_flag = base.clone();
        with_flag.extend(["--peer-token".to_owned(), common::fresh_token()]);
        assert_eq!(run_node(&with_flag, None), None, "{mode} with --peer-token");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
