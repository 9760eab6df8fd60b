//! The Kubernetes API client against a fake API server on loopback (axum) that records
//! every request and keeps the objects created: a run's objects are created in order
//! with the bodies the golden files show, a Pod's readiness and log are read, teardown
//! deletes the run's objects by label, and a creation that fails midway deletes
//! everything created before it. No cluster needed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use faultline_targets::runtime::kube::{
    deploy, headless_service, node_pod, pod_readiness, teardown_run, token_secret, KubeApi,
    KubeNode, KubeRun,
};
use faultline_targets::runtime::{NodeName, ReadyProbe, RunId, RuntimeError};
use serde_json::{json, Value};

/// What the fake server saw and holds.
#[derive(Default)]
struct Fake {
    /// Every request: method, path with query, body.
    requests: Vec<(String, String, Option<Value>)>,
    /// Objects by path (`<collection>/<name>`), with their labels.
    objects: BTreeMap<String, Value>,
    /// Refuse to create the object of this name (403, as RBAC would).
    refuse: Option<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn status(code: StatusCode, message: &str) -> Response {
    (
        code,
        axum::Json(
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message}),
        ),
    )
        .into_response()
}

async fn handle(state: Shared, method: Method, uri: Uri, body: Bytes) -> Response {
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let mut fake = state.lock().expect("fake");
    fake.requests.push((
        method.to_string(),
        match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        },
        body.clone(),
    ));
    match method {
        Method::POST => {
            let object = body.unwrap_or(Value::Null);
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if fake.refuse.as_deref() == Some(name.as_str()) {
                return status(
                    StatusCode::FORBIDDEN,
                    &format!("pods \"{name}\" is forbidden: exceeded quota"),
                );
            }
            let key = format!("{path}/{name}");
            if fake.objects.contains_key(&key) {
                return status(StatusCode::CONFLICT, "already exists");
            }
            fake.objects.insert(key, object.clone());
            (StatusCode::CREATED, axum::Json(object)).into_response()
        }
        Method::DELETE => match query
            .as_deref()
            .and_then(|q| q.strip_prefix("labelSelector="))
        {
            Some(selector) => {
                let selector = selector.replace("%3D", "=");
                let (key, value) = selector.split_once('=').expect("key=value");
                let doomed: Vec<String> = fake
                    .objects
                    .iter()
                    .filter(|(p, o)| {
                        p.starts_with(&format!("{path}/")) && o["metadata"]["labels"][key] == value
                    })
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in doomed {
                    fake.objects.remove(&p);
                }
                (
                    StatusCode::OK,
                    axum::Json(json!({"kind": "Status", "status": "Success"})),
                )
                    .into_response()
            }
            None => match fake.objects.remove(&path) {
                Some(o) => (StatusCode::OK, axum::Json(o)).into_response(),
                None => status(StatusCode::NOT_FOUND, "not found"),
            },
        },
        Method::GET => {
            if let Some(pod) = path.strip_suffix("/log") {
                if !fake.objects.contains_key(pod) {
                    return status(StatusCode::NOT_FOUND, "not found");
                }
                let lines = ["starting", "joined the cluster", "leader is n1"];
                let tail: usize = query
                    .as_deref()
                    .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("tailLines=")))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(lines.len());
                let text: String = lines[lines.len() - tail.min(lines.len())..]
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect();
                return (StatusCode::OK, text).into_response();
            }
            match fake.objects.get(&path) {
                Some(o) => {
                    let mut pod = o.clone();
                    pod["status"] = json!({
                        "phase": "Running",
                        "podIP": "10.244.1.7",
                        "conditions": [{"type": "Ready", "status": "True"}],
                    });
                    (StatusCode::OK, axum::Json(pod)).into_response()
                }
                None => status(StatusCode::NOT_FOUND, "not found"),
            }
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "no"),
    }
}

/// Starts the fake API on a free loopback port.
async fn fake_api() -> (String, Shared) {
    let state: Shared = Arc::default();
    let s = state.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let s = s.clone();
        async move { handle(s, method, uri, body).await }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback port");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("fake API serves");
    });
    (format!("http://{addr}"), state)
}

fn run() -> KubeRun {
    KubeRun {
        namespace: "jepsen".into(),
        run: RunId::new("r1764900000-42").expect("run id"),
        node_image: "registry.example/mydb:1.4".into(),
        agent_image: "registry.example/faultline:0.1".into(),
        agent_port: 7900,
        ports: vec![7001],
        anti_affinity: true,
        harness: "harness-pod/1/12345".into(),
    }
}

/// The run's objects: token Secret, headless Service, then a Pod per node.
fn objects(k: &KubeRun, nodes: usize) -> Vec<Value> {
    let mut v = vec![token_secret(k, "0123456789abcdef"), headless_service(k)];
    for i in 1..=nodes {
        v.push(node_pod(
            k,
            &KubeNode {
                name: NodeName::new(&format!("n{i}")).expect("node name"),
                command: vec!["/usr/local/bin/mydb".into()],
                env: Vec::new(),
                ready: Some(ReadyProbe::health(7001)),
            },
        ));
    }
    v
}

fn paths(fake: &Shared) -> Vec<String> {
    fake.lock()
        .expect("fake")
        .requests
        .iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect()
}

#[tokio::test]
async fn a_run_is_created_read_and_torn_down_through_the_api() {
    let (base, fake) = fake_api().await;
    let api = KubeApi::new(&base).expect("client");
    let k = run();
    let objs = objects(&k, 3);
    let created = deploy(&api, &objs).await.expect("deployed");
    assert_eq!(
        created.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        vec![
            "Secret jepsen/faultline-r1764900000-42-token",
            "Service jepsen/faultline-r1764900000-42",
            "Pod jepsen/faultline-r1764900000-42-n1",
            "Pod jepsen/faultline-r1764900000-42-n2",
            "Pod jepsen/faultline-r1764900000-42-n3",
        ]
    );
    assert_eq!(
        paths(&fake),
        vec![
            "POST /api/v1/namespaces/jepsen/secrets",
            "POST /api/v1/namespaces/jepsen/services",
            "POST /api/v1/namespaces/jepsen/pods",
            "POST /api/v1/namespaces/jepsen/pods",
            "POST /api/v1/namespaces/jepsen/pods",
        ]
    );
    // The API received exactly the generated objects (whose shape the golden files fix).
    let bodies: Vec<Value> = fake
        .lock()
        .expect("fake")
        .requests
        .iter()
        .map(|(_, _, b)| b.clone().expect("a JSON body"))
        .collect();
    assert_eq!(bodies, objs);
    // Ready, with its IP, once the API says so; its log, whole or the tail.
    let pod = api
        .pod("jepsen", "faultline-r1764900000-42-n2")
        .await
        .expect("pod");
    assert_eq!(pod_readiness(&pod), (true, Some("10.244.1.7".into())));
    let log = api
        .logs("jepsen", "faultline-r1764900000-42-n2", Some(1))
        .await
        .expect("log");
    assert_eq!(log, b"leader is n1\n");
    let log = api
        .logs("jepsen", "faultline-r1764900000-42-n2", None)
        .await
        .expect("log");
    assert_eq!(String::from_utf8_lossy(&log).lines().count(), 3);
    // A Pod that is not there is an error naming it and the API's answer.
    let err = api
        .pod("jepsen", "faultline-r1764900000-42-n9")
        .await
        .expect_err("no such pod");
    assert_eq!(
        err.to_string(),
        "Kubernetes API: read Pod jepsen/faultline-r1764900000-42-n9 failed (404): not found"
    );
    // Teardown: the run's Pods, Service and Secret, by its label; nothing is left.
    fake.lock().expect("fake").requests.clear();
    teardown_run(&api, "jepsen", &k.run)
        .await
        .expect("torn down");
    assert_eq!(
        paths(&fake),
        vec![
            "DELETE /api/v1/namespaces/jepsen/pods?labelSelector=faultline.run%3Dr1764900000-42",
            "DELETE /api/v1/namespaces/jepsen/services?labelSelector=faultline.run%3Dr1764900000-42",
            "DELETE /api/v1/namespaces/jepsen/secrets?labelSelector=faultline.run%3Dr1764900000-42",
        ]
    );
    assert!(fake.lock().expect("fake").objects.is_empty());
}

#[tokio::test]
async fn a_creation_that_fails_midway_deletes_everything_created_before_it() {
    let (base, fake) = fake_api().await;
    let api = KubeApi::new(&base).expect("client");
    let k = run();
    // Another run's object stays whatever happens to this one.
    let other = RunId::new("r1764900000-7").expect("run id");
    let mut bystander = run();
    bystander.run = other;
    api.create(&headless_service(&bystander))
        .await
        .expect("created");
    fake.lock().expect("fake").requests.clear();
    fake.lock().expect("fake").refuse = Some("faultline-r1764900000-42-n3".into());
    let err = deploy(&api, &objects(&k, 4))
        .await
        .expect_err("the third Pod is refused");
    match &err {
        RuntimeError::Api { status, .. } => assert_eq!(*status, Some(403)),
        other => panic!("{other}"),
    }
    assert_eq!(
        err.to_string(),
        "Kubernetes API: create Pod jepsen/faultline-r1764900000-42-n3 failed (403): pods \"faultline-r1764900000-42-n3\" is forbidden: exceeded quota"
    );
    // Created in order up to the refusal, then deleted newest first; the fourth Pod is
    // never asked for.
    assert_eq!(
        paths(&fake),
        vec![
            "POST /api/v1/namespaces/jepsen/secrets",
            "POST /api/v1/namespaces/jepsen/services",
            "POST /api/v1/namespaces/jepsen/pods",
            "POST /api/v1/namespaces/jepsen/pods",
            "POST /api/v1/namespaces/jepsen/pods",
            "DELETE /api/v1/namespaces/jepsen/pods/faultline-r1764900000-42-n2",
            "DELETE /api/v1/namespaces/jepsen/pods/faultline-r1764900000-42-n1",
            "DELETE /api/v1/namespaces/jepsen/services/faultline-r1764900000-42",
            "DELETE /api/v1/namespaces/jepsen/secrets/faultline-r1764900000-42-token",
        ]
    );
    let left: Vec<String> = fake.lock().expect("fake").objects.keys().cloned().collect();
    assert_eq!(
        left,
        vec!["/api/v1/namespaces/jepsen/services/faultline-r1764900000-7"]
    );
}

#[tokio::test]
async fn an_unreachable_api_is_an_error_naming_the_call() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("address")
        .port();
    let api = KubeApi::new(&format!("http://127.0.0.1:{port}")).expect("client");
    let err = deploy(&api, &objects(&run(), 1))
        .await
        .expect_err("nothing answers");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "Kubernetes API: create Secret jepsen/faultline-r1764900000-42-token failed: "
        ),
        "{text}"
    );
}
