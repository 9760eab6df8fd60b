//! Where `--runtime kubernetes` finds the API and its credentials when no URL is given:
//! the kubeconfig `KUBECONFIG` names (its current context's cluster, user token and
//! namespace), and a clear refusal when there is neither a kubeconfig nor an in-cluster
//! service account. One test, because it sets `KUBECONFIG` for the whole process.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Uri};
use faultline_targets::runtime::kube::{ApiSource, KubeApi};
use faultline_targets::runtime::{connect, RuntimeKind, RuntimeOptions};
use serde_json::json;

/// Each request's path and `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A fake API on loopback answering `/version` and namespace reads, recording each
/// request's path and `Authorization` header.
async fn fake_api() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let s = s.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            s.lock().expect("seen").push((uri.path().to_string(), auth));
            if uri.path() == "/version" {
                axum::Json(json!({
                    "major": "1", "minor": "31", "gitVersion": "v1.31.4-kubeconfig",
                    "gitCommit": "0", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.22", "compiler": "gc", "platform": "linux/amd64",
                }))
            } else {
                let name = uri.path().rsplit('/').next().unwrap_or("").to_string();
                axum::Json(json!({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": name}}))
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("fake API serves");
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn the_kubeconfig_names_the_cluster_the_token_and_the_namespace() {
    // Neither a kubeconfig nor an in-cluster service account: refused, saying what to do.
    let dir = std::env::temp_dir().join(format!("faultline-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::env::set_var("KUBECONFIG", dir.join("missing"));
    std::env::remove_var("KUBERNETES_SERVICE_HOST");
    std::env::remove_var("FAULTLINE_KUBE_API");
    std::env::remove_var("FAULTLINE_NAMESPACE");
    let err = KubeApi::connect(&ApiSource::Inferred)
        .await
        .expect_err("no credentials");
    assert!(err.is_setup_error(), "{err}");
    let text = err.to_string();
    for hint in [
        "KUBECONFIG",
        "--kube-api",
        "kubectl proxy",
        "faultline k8s manifest",
    ] {
        assert!(text.contains(hint), "{hint} missing from: {text}");
    }

    // A kubeconfig whose current context names the fake API, a bearer token and a
    // namespace: the runtime uses all three, with no URL given.
    let (base, seen) = fake_api().await;
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: lab\n\
             clusters:\n- name: lab\n  cluster:\n    server: {base}\n\
             users:\n- name: tester\n  user:\n    token: s3cret-token\n\
             contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: tester\n    namespace: jepsen\n"
        ),
    )
    .expect("kubeconfig written");
    std::env::set_var("KUBECONFIG", &kubeconfig);
    let api = KubeApi::connect(&ApiSource::Inferred)
        .await
        .expect("the kubeconfig is read");
    assert_eq!(api.default_namespace(), "jepsen");
    assert_eq!(api.base(), base);
    let (_, engine) = connect(&RuntimeOptions {
        kind: RuntimeKind::Kubernetes,
        agent_image: Some("registry.example/faultline:0.1".into()),
        ..RuntimeOptions::default()
    })
    .await
    .expect("connects with the kubeconfig");
    assert_eq!(engine.version, "v1.31.4-kubeconfig");
    let seen = seen.lock().expect("seen").clone();
    assert!(
        seen.iter().any(|(p, _)| p == "/api/v1/namespaces/jepsen"),
        "the context's namespace is the run's: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|(_, auth)| auth.as_deref() == Some("Bearer s3cret-token")),
        "every call carries the kubeconfig's token: {seen:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
