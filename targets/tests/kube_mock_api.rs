//! The Kubernetes API client against a fake API server on loopback (axum) that records
//! every request and keeps the objects created: a run's objects are created in order
//! with the bodies the golden files show, a Pod's readiness and log are read, teardown
//! deletes the run's objects by label, and a creation that fails midway deletes
//! everything created before it. No cluster needed.
//!
//! The runtime tests (`KubeRuntime` through `runtime::connect` and `Cluster`) add fake
//! node agents on loopback addresses (`127.0.0.2`, `127.0.0.3`, ...: the fake API gives
//! them out as the Pods' IPs), which answer the agent's control API and the nodes'
//! readiness probe.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use faultline_targets::runtime::kube::{
    deploy, headless_service, node_files, node_pod, pod_readiness, teardown_run, token_secret,
    ApiSource, KubeApi, KubeNode, KubeRun,
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
    /// Pod IPs by Pod name: `None` keeps the Pod Pending without an IP; a Pod not named
    /// here is Running at `10.244.1.7`.
    pod_ips: BTreeMap<String, Option<String>>,
    /// Whether Chaos Mesh is installed: its API group is served, and a TimeChaos is
    /// injected as soon as it is created. Without it, its paths are 404.
    chaos_mesh: bool,
}

/// Chaos Mesh's API group on the fake.
const CHAOS_PATH: &str = "/apis/chaos-mesh.org/v1alpha1";

type Shared = Arc<Mutex<Fake>>;

fn status(code: StatusCode, message: &str) -> Response {
    (
        code,
        axum::Json(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": message,
                   "reason": match code.as_u16() {
                       403 => "Forbidden",
                       404 => "NotFound",
                       409 => "AlreadyExists",
                       _ => "MethodNotAllowed",
                   },
                   "code": code.as_u16()}),
        ),
    )
        .into_response()
}

/// The query's parameters, decoded (`labelSelector=faultline.run%3Dr1` gives
/// `("labelSelector", "faultline.run=r1")`), empty ones left out.
fn params(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                    out.push(u8::from_str_radix(hex, 16).expect("a %XX escape"));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).expect("UTF-8")
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The value of the query parameter `key`.
fn param(query: Option<&str>, key: &str) -> Option<String> {
    params(query)
        .into_iter()
        .find_map(|(k, v)| (k == key).then_some(v))
}

async fn handle(state: Shared, method: Method, uri: Uri, body: Bytes) -> Response {
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let mut fake = state.lock().expect("fake");
    // Recorded with the query decoded: `GET <path>?labelSelector=faultline.run=r1`.
    let shown: Vec<String> = params(query.as_deref())
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    fake.requests.push((
        method.to_string(),
        if shown.is_empty() {
            path.clone()
        } else {
            format!("{path}?{}", shown.join("&"))
        },
        // A request's body, when it is an object being created (kube-rs sends
        // DeleteParams with a delete).
        if method == Method::POST {
            body.clone()
        } else {
            None
        },
    ));
    if path.starts_with(CHAOS_PATH) && !fake.chaos_mesh {
        return status(
            StatusCode::NOT_FOUND,
            "the server could not find the requested resource",
        );
    }
    if path == CHAOS_PATH {
        return axum::Json(json!({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "chaos-mesh.org/v1alpha1",
            "resources": [{"name": "timechaos", "singularName": "timechaos", "namespaced": true,
                           "kind": "TimeChaos", "verbs": ["create", "delete", "get", "list"]}],
        }))
        .into_response();
    }
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
            let mut object = object;
            if object["kind"] == "TimeChaos" {
                // Chaos Mesh's controller injects it at once.
                object["status"] = json!({"conditions": [
                    {"type": "Selected", "status": "True"},
                    {"type": "AllInjected", "status": "True"},
                ]});
            }
            fake.objects.insert(key, object.clone());
            (StatusCode::CREATED, axum::Json(object)).into_response()
        }
        Method::DELETE => match fake.objects.remove(&path) {
            Some(o) => (StatusCode::OK, axum::Json(o)).into_response(),
            None => status(StatusCode::NOT_FOUND, "not found"),
        },
        Method::GET => {
            if let Some(pod) = path.strip_suffix("/log") {
                if !fake.objects.contains_key(pod) {
                    return status(StatusCode::NOT_FOUND, "not found");
                }
                let lines = ["starting", "joined the cluster", "leader is n1"];
                assert_eq!(
                    param(query.as_deref(), "container").as_deref(),
                    Some("node"),
                    "the node container's log"
                );
                let tail: usize = param(query.as_deref(), "tailLines")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(lines.len());
                let text: String = lines[lines.len() - tail.min(lines.len())..]
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect();
                return (StatusCode::OK, text).into_response();
            }
            if path == "/version" {
                return axum::Json(json!({
                    "major": "1", "minor": "30", "gitVersion": "v1.30.0-fake",
                    "gitCommit": "0", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                    "goVersion": "go1.22", "compiler": "gc", "platform": "linux/amd64",
                }))
                .into_response();
            }
            if let Some(ns) = path.strip_prefix("/api/v1/namespaces/") {
                if !ns.contains('/') {
                    return if ns == "jepsen" {
                        axum::Json(json!({"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": ns}}))
                        .into_response()
                    } else {
                        status(
                            StatusCode::NOT_FOUND,
                            &format!("namespaces \"{ns}\" not found"),
                        )
                    };
                }
            }
            if let Some(selector) = param(query.as_deref(), "labelSelector") {
                // `k1=v1,k2=v2`: every pair must match.
                let pairs: Vec<(&str, &str)> = selector
                    .split(',')
                    .map(|kv| kv.split_once('=').expect("key=value"))
                    .collect();
                let items: Vec<Value> = fake
                    .objects
                    .iter()
                    .filter(|(p, o)| {
                        p.starts_with(&format!("{path}/"))
                            && pairs.iter().all(|(k, v)| o["metadata"]["labels"][*k] == *v)
                    })
                    .map(|(_, o)| {
                        // As an API server lists built-in kinds: items without their
                        // apiVersion and kind.
                        let mut item = o.clone();
                        if let Some(m) = item.as_object_mut() {
                            m.remove("apiVersion");
                            m.remove("kind");
                        }
                        item
                    })
                    .collect();
                return axum::Json(json!({"apiVersion": "v1", "kind": "List",
                                         "metadata": {}, "items": items}))
                .into_response();
            }
            match fake.objects.get(&path) {
                Some(o) => {
                    let mut pod = o.clone();
                    let name = o["metadata"]["name"].as_str().unwrap_or("").to_string();
                    pod["status"] = match fake.pod_ips.get(&name) {
                        Some(None) => json!({
                            "phase": "Pending",
                            "conditions": [{"type": "PodScheduled", "status": "False",
                                            "reason": "Unschedulable",
                                            "message": "0/3 nodes are available"}],
                        }),
                        Some(Some(ip)) => json!({
                            "phase": "Running",
                            "podIP": ip,
                            "conditions": [{"type": "Ready", "status": "True"}],
                        }),
                        None => json!({
                            "phase": "Running",
                            "podIP": "10.244.1.7",
                            "conditions": [{"type": "Ready", "status": "True"}],
                        }),
                    };
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
                files: vec![],
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
    let api = KubeApi::connect(&ApiSource::Url(base.clone()))
        .await
        .expect("client");
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
    // Each kind listed by the run's label, then each object deleted by name; Chaos
    // Mesh's TimeChaos first, a kind this cluster does not serve.
    assert_eq!(
        paths(&fake),
        vec![
            "GET /apis/chaos-mesh.org/v1alpha1/namespaces/jepsen/timechaos?labelSelector=faultline.run=r1764900000-42",
            "GET /api/v1/namespaces/jepsen/pods?labelSelector=faultline.run=r1764900000-42",
            "DELETE /api/v1/namespaces/jepsen/pods/faultline-r1764900000-42-n1",
            "DELETE /api/v1/namespaces/jepsen/pods/faultline-r1764900000-42-n2",
            "DELETE /api/v1/namespaces/jepsen/pods/faultline-r1764900000-42-n3",
            "GET /api/v1/namespaces/jepsen/services?labelSelector=faultline.run=r1764900000-42",
            "DELETE /api/v1/namespaces/jepsen/services/faultline-r1764900000-42",
            "GET /api/v1/namespaces/jepsen/secrets?labelSelector=faultline.run=r1764900000-42",
            "DELETE /api/v1/namespaces/jepsen/secrets/faultline-r1764900000-42-token",
            "GET /api/v1/namespaces/jepsen/configmaps?labelSelector=faultline.run=r1764900000-42",
        ]
    );
    assert!(fake.lock().expect("fake").objects.is_empty());
}

#[tokio::test]
async fn a_creation_that_fails_midway_deletes_everything_created_before_it() {
    let (base, fake) = fake_api().await;
    let api = KubeApi::connect(&ApiSource::Url(base.clone()))
        .await
        .expect("client");
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
    let api = KubeApi::connect(&ApiSource::Url(format!("http://127.0.0.1:{port}")))
        .await
        .expect("client");
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

// ---------------------------------------------------------------------------------------
// The runtime: `KubeRuntime` through `runtime::connect`, `Cluster` and the node handles,
// with fake node agents.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::http::HeaderMap;
use faultline_nemesis::rules::NetRules;
use faultline_nemesis::{Confirmed, Mechanism, Node as _, Strobe};
use faultline_targets::agent::AgentClient;
use faultline_targets::runtime::{
    connect, AgentSpec, CleanScope, Cluster, ClusterSpec, ImageSpec, NodeFile, NodeSpec, NodeState,
    Runtime, RuntimeKind, RuntimeOptions,
};
use faultline_targets::NemesisNode;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const AGENT_IMAGE: &str = "registry.example/faultline:0.1";

/// One fake agent: the state of its child and the requests it answered.
#[derive(Default)]
struct FakeAgent {
    /// `running`, `paused` or `stopped`.
    state: String,
    /// Every authorised request: method and path, and the body of a POST.
    requests: Vec<(String, Option<Value>)>,
}

type Agent = Arc<Mutex<FakeAgent>>;

fn confirmed() -> Response {
    axum::Json(Confirmed {
        mechanism: Mechanism::Process,
        in_force_unix_ns: 1,
    })
    .into_response()
}

async fn agent_handle(
    state: Agent,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let mut agent = state.lock().expect("agent");
    // The readiness probe carries no token: the node's program answers it.
    if path == "/health" {
        return if agent.state == "running" {
            (StatusCode::OK, "ok").into_response()
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
        };
    }
    let bearer = format!("Bearer {TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "bad token"})),
        )
            .into_response();
    }
    agent.requests.push((
        format!("{method} {path}"),
        serde_json::from_slice(&body).ok(),
    ));
    match (method, path.as_str()) {
        (Method::GET, "/v1/status") => {
            let pid = (agent.state != "stopped").then_some(42);
            axum::Json(json!({"state": agent.state, "pid": pid, "last_exit": null})).into_response()
        }
        (Method::POST, "/v1/net") => confirmed(),
        (Method::POST, op) if op.starts_with("/v1/process/") => {
            agent.state = match &op["/v1/process/".len()..] {
                "kill" | "stop" => "stopped",
                "start" | "resume" => "running",
                "pause" => "paused",
                _ => return (StatusCode::NOT_FOUND, "no").into_response(),
            }
            .to_string();
            confirmed()
        }
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no route"})),
        )
            .into_response(),
    }
}

/// Fake agents on `127.0.0.2`, `127.0.0.3`, ... all on one port, their child in `state`.
async fn fake_agents(states: &[&str]) -> (u16, Vec<(IpAddr, Agent)>) {
    let mut port = 0;
    let mut agents = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let ip: IpAddr = format!("127.0.0.{}", i + 2).parse().expect("ip");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, port)))
            .await
            .expect("a loopback port for the fake agent");
        port = listener.local_addr().expect("address").port();
        let shared: Agent = Arc::new(Mutex::new(FakeAgent {
            state: state.to_string(),
            requests: Vec::new(),
        }));
        let s = shared.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let s = s.clone();
                async move { agent_handle(s, method, uri, headers, body).await }
            },
        );
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake agent serves");
        });
        agents.push((ip, shared));
    }
    (port, agents)
}

fn options(base: &str) -> RuntimeOptions {
    RuntimeOptions {
        kind: RuntimeKind::Kubernetes,
        kube_api: Some(base.to_string()),
        namespace: Some("jepsen".into()),
        agent_image: Some(AGENT_IMAGE.into()),
        ..RuntimeOptions::default()
    }
}

/// A cluster spec of `n` nodes of the bundled node (a host binary: run from the agent
/// image) with the runtime's addresses, readiness on the agents' port.
/// The run folder of `run` (`Cluster::start` makes its node folders there).
fn run_dir(run: &RunId) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("faultline-kube-mock-{run}"))
}

fn kube_spec(runtime: &dyn Runtime, run: &RunId, n: usize, port: u16) -> ClusterSpec {
    let dir = run_dir(run);
    let mut spec = ClusterSpec::new(run.clone(), dir, "/build/faultline-node");
    let names: Vec<NodeName> = (1..=n)
        .map(|i| NodeName::new(&format!("n{i}")).expect("name"))
        .collect();
    let plan = runtime.plan_addresses(run, &names, 0).expect("addresses");
    spec.subnet = plan.subnet;
    spec.leftovers = CleanScope::Run(run.clone());
    spec.ready_timeout = Duration::from_secs(2);
    let peers = plan.hosts.join(",");
    spec.nodes = names
        .into_iter()
        .zip(plan.hosts)
        .map(|(name, host)| NodeSpec {
            name,
            host,
            args: vec!["raft-register".into(), "--peers".into(), peers.clone()],
            env: vec![],
            ready: Some(ReadyProbe::health(port)),
            files: vec![],
        })
        .collect();
    spec.agent = Some(AgentSpec {
        binary: "/usr/local/bin/faultline".into(),
        token: TOKEN.into(),
        port,
        child_user: None,
    });
    spec
}

fn pod_ips(fake: &Shared, run: &RunId, ips: &[Option<IpAddr>]) {
    let mut f = fake.lock().expect("fake");
    for (i, ip) in ips.iter().enumerate() {
        let node = NodeName::new(&format!("n{}", i + 1)).expect("name");
        f.pod_ips.insert(
            faultline_targets::runtime::kube::pod_name(run, &node),
            ip.map(|ip| ip.to_string()),
        );
    }
}

fn objects_left(fake: &Shared) -> Vec<String> {
    fake.lock().expect("fake").objects.keys().cloned().collect()
}

fn agent_requests(agent: &Agent) -> Vec<String> {
    agent
        .lock()
        .expect("agent")
        .requests
        .iter()
        .map(|(r, _)| r.clone())
        .filter(|r| r != "GET /v1/status")
        .collect()
}

/// A test bed: the fake API (with Chaos Mesh or not), a fake agent per state in
/// `states` (one node each, its Pod at the agent's address), the runtime connected to
/// them, and the spec of run `run`.
struct Bed {
    fake: Shared,
    port: u16,
    agents: Vec<(IpAddr, Agent)>,
    runtime: std::sync::Arc<dyn Runtime>,
    engine: faultline_targets::runtime::EngineInfo,
    run: RunId,
    spec: ClusterSpec,
}

async fn bed(run: &str, states: &[&str], chaos_mesh: bool) -> Bed {
    let (base, fake) = fake_api().await;
    fake.lock().expect("fake").chaos_mesh = chaos_mesh;
    let (port, agents) = fake_agents(states).await;
    let (runtime, engine) = connect(&options(&base)).await.expect("connects");
    let run = RunId::new(run).expect("run");
    let ips: Vec<Option<IpAddr>> = agents.iter().map(|(ip, _)| Some(*ip)).collect();
    pod_ips(&fake, &run, &ips);
    let spec = kube_spec(runtime.as_ref(), &run, states.len(), port);
    Bed {
        fake,
        port,
        agents,
        runtime,
        engine,
        run,
        spec,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_starts_takes_faults_through_its_agents_and_is_torn_down() {
    let Bed {
        fake,
        port,
        agents,
        runtime,
        engine,
        run,
        mut spec,
    } = bed("rk1", &["running", "running"], false).await;
    assert_eq!(
        (engine.runtime, engine.version.as_str()),
        ("kubernetes", "v1.30.0-fake")
    );
    // n1 has a file to find in its data folder when it starts.
    spec.nodes[0].files = vec![NodeFile::new("conf/node.cfg", "id=1\n")];
    // Peers name each other by DNS; no subnet.
    assert_eq!(spec.subnet, None);
    assert_eq!(spec.nodes[1].host, "n2.faultline-rk1.jepsen.svc");
    let image = runtime
        .prepare_image(&ImageSpec::new("/build/faultline-node"))
        .await
        .expect("image");
    assert_eq!(image.reference, AGENT_IMAGE);
    // Clock faults: the agent preloads libfaketime and each node confirms it.
    assert!(image.capabilities.clock_faults && image.capabilities.clock_confirm_by_agent);

    let cluster = Cluster::start(runtime.clone(), spec, &image)
        .await
        .expect("the cluster starts");
    // Created: leftovers of the run removed by label first, then Secret, Service, Pods,
    // whose IPs are read.
    let seen = paths(&fake);
    let creates: Vec<&String> = seen.iter().filter(|p| p.starts_with("POST")).collect();
    assert_eq!(
        creates,
        vec![
            "POST /api/v1/namespaces/jepsen/secrets",
            "POST /api/v1/namespaces/jepsen/services",
            "POST /api/v1/namespaces/jepsen/configmaps",
            "POST /api/v1/namespaces/jepsen/pods",
            "POST /api/v1/namespaces/jepsen/pods",
        ]
    );
    // n1's file: in its ConfigMap, mounted at its path under /data.
    let files = fake.lock().expect("fake").objects
        ["/api/v1/namespaces/jepsen/configmaps/faultline-rk1-n1-files"]
        .clone();
    assert_eq!(files["data"], json!({"f0": "id=1\n"}));
    assert!(seen.contains(&"GET /api/v1/namespaces/jepsen/pods/faultline-rk1-n2".to_string()));
    // The node Pod runs the host binary's name from the agent image, under the agent,
    // with the DNS peer list.
    let pod = fake.lock().expect("fake").objects["/api/v1/namespaces/jepsen/pods/faultline-rk1-n1"]
        .clone();
    let node = &pod["spec"]["containers"][0];
    assert_eq!(node["image"], AGENT_IMAGE);
    let args: Vec<&str> = node["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let program = args.iter().position(|a| *a == "--").expect("--") + 1;
    assert_eq!(
        args[program..],
        [
            "/usr/local/bin/faultline-node",
            "raft-register",
            "--peers",
            "n1.faultline-rk1.jepsen.svc,n2.faultline-rk1.jepsen.svc"
        ]
    );
    assert!(
        node["volumeMounts"]
            .as_array()
            .expect("mounts")
            .contains(&json!({"name": "files", "mountPath": "/data/conf/node.cfg",
                              "subPath": "f0", "readOnly": true})),
        "{node:#}"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["faultline.harness"],
        cluster.spec().harness.label()
    );

    // The harness reaches each node at its Pod's IP; the peers' name stays the DNS one.
    let n2 = cluster.node("n2").expect("n2").clone();
    assert_eq!(n2.ip(), agents[1].0);
    assert_eq!(n2.host(), "n2.faultline-rk1.jepsen.svc");
    assert_eq!(n2.ready_addr(), Some(SocketAddr::from((agents[1].0, port))));

    // A packet fault through the agent, as the nemesis sends it.
    let nemesis_node = NemesisNode::new(n2.clone())
        .await
        .expect("status")
        .with_agent(AgentClient::new(SocketAddr::from((n2.ip(), port)), TOKEN).expect("client"));
    let mut rules = NetRules::default();
    rules.drop_from.insert(agents[0].0);
    rules.exempt_tcp_port = Some(port);
    nemesis_node
        .agent()
        .expect("an agent")
        .set_net(&rules)
        .await
        .expect("the agent confirms");
    let net = agents[1]
        .1
        .lock()
        .expect("agent")
        .requests
        .iter()
        .find(|(r, _)| r == "POST /v1/net")
        .and_then(|(_, b)| b.clone())
        .expect("the rules reached n2's agent");
    assert_eq!(net["rules"]["drop_from"], json!(["127.0.0.2"]));
    // The nemesis's kill goes to the agent's child too.
    nemesis_node.kill().await.expect("killed through the agent");
    assert_eq!(
        agent_requests(&agents[1].1).last().map(String::as_str),
        Some("POST /v1/process/kill")
    );

    // Kill / start / pause / resume on the handle: the agent's child; the status is the
    // agent's (no namespace path: faults from the host are impossible here).
    let s = n2
        .kill()
        .await
        .expect("kill of a stopped node does nothing");
    assert_eq!(
        (s.state, s.pid, s.netns_path),
        (NodeState::Stopped, None, None)
    );
    let err = n2.pause().await.expect_err("a stopped node cannot pause");
    assert!(matches!(err, RuntimeError::InvalidState { .. }), "{err}");
    let s = n2.start().await.expect("start");
    assert_eq!((s.state, s.pid), (NodeState::Running, Some(42)));
    n2.wait_ready(Duration::from_secs(2))
        .await
        .expect("ready again");
    assert_eq!(n2.pause().await.expect("pause").state, NodeState::Paused);
    assert_eq!(n2.resume().await.expect("resume").state, NodeState::Running);
    assert_eq!(
        n2.restart(Duration::from_secs(1))
            .await
            .expect("restart")
            .state,
        NodeState::Running
    );
    assert_eq!(
        agent_requests(&agents[1].1),
        vec![
            "POST /v1/net",
            "POST /v1/process/kill",
            "POST /v1/process/start",
            "POST /v1/process/pause",
            "POST /v1/process/resume",
            "POST /v1/process/stop",
            "POST /v1/process/start",
        ]
    );
    // n1 was never touched.
    assert!(agent_requests(&agents[0].1).is_empty());

    // Logs: the Pod log API.
    assert_eq!(n2.logs(Some(1)).await.expect("log"), b"leader is n1\n");
    let logs = std::env::temp_dir().join("faultline-kube-mock-rk1-logs");
    let written = cluster.collect_logs(&logs).await.expect("logs");
    assert_eq!(written.len(), 2);
    assert_eq!(
        std::fs::read_to_string(&written[0]).expect("n1.log"),
        "starting\njoined the cluster\nleader is n1\n"
    );
    std::fs::remove_dir_all(&logs).ok();

    // Teardown: by the run's label; nothing is left.
    let report = cluster.teardown().await.expect("torn down");
    assert_eq!(
        report.objects,
        vec![
            "Pod jepsen/faultline-rk1-n1",
            "Pod jepsen/faultline-rk1-n2",
            "Service jepsen/faultline-rk1",
            "Secret jepsen/faultline-rk1-token",
            "ConfigMap jepsen/faultline-rk1-n1-files",
        ]
    );
    assert!(report.containers.is_empty() && report.networks.is_empty());
    assert!(objects_left(&fake).is_empty(), "{:?}", objects_left(&fake));
    // The runtime forgot the run: its nodes are unknown now.
    assert!(matches!(
        n2.status().await,
        Err(RuntimeError::UnknownNode(_))
    ));
    cluster.remove_node_dirs().expect("node dirs");
    std::fs::remove_dir_all(run_dir(&run)).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_refused_midway_leaves_nothing_behind() {
    let Bed {
        fake,
        runtime,
        run,
        spec,
        ..
    } = bed("rk2", &["running", "running", "running"], false).await;
    fake.lock().expect("fake").refuse = Some("faultline-rk2-n2".into());
    let image = runtime
        .existing_image("registry.example/mydb:1.4")
        .await
        .expect("image");
    let err = Cluster::start(runtime.clone(), spec, &image)
        .await
        .expect_err("n2's Pod is refused");
    assert_eq!(
        err.to_string(),
        "Kubernetes API: create Pod jepsen/faultline-rk2-n2 failed (403): pods \"faultline-rk2-n2\" is forbidden: exceeded quota"
    );
    // Rolled back newest first, then the run removed by label; n3 never asked for.
    let seen = paths(&fake);
    let tail: Vec<&str> = seen
        .iter()
        .skip_while(|p| !p.starts_with("DELETE /api/v1/namespaces/jepsen/pods/"))
        .map(String::as_str)
        .take(3)
        .collect();
    assert_eq!(
        tail,
        vec![
            "DELETE /api/v1/namespaces/jepsen/pods/faultline-rk2-n1",
            "DELETE /api/v1/namespaces/jepsen/services/faultline-rk2",
            "DELETE /api/v1/namespaces/jepsen/secrets/faultline-rk2-token",
        ]
    );
    assert_eq!(seen.iter().filter(|p| p.starts_with("POST")).count(), 4);
    assert!(seen
        .iter()
        .any(|p| p == "GET /api/v1/namespaces/jepsen/pods?labelSelector=faultline.run=rk2"));
    assert!(objects_left(&fake).is_empty(), "{:?}", objects_left(&fake));
    std::fs::remove_dir_all(run_dir(&run)).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_without_an_ip_times_out_naming_the_node_and_everything_goes() {
    let Bed {
        fake,
        agents,
        runtime,
        run,
        spec,
        ..
    } = bed("rk3", &["running", "running"], false).await;
    // n1 runs; n2 is never scheduled.
    pod_ips(&fake, &run, &[Some(agents[0].0), None]);
    let image = runtime
        .existing_image("registry.example/mydb:1.4")
        .await
        .expect("image");
    let started = std::time::Instant::now();
    let err = Cluster::start(runtime.clone(), spec, &image)
        .await
        .expect_err("n2 never gets an IP");
    assert!(started.elapsed() < Duration::from_secs(10));
    match &err {
        RuntimeError::NotReady {
            node,
            url,
            last_error,
            log_tail,
            ..
        } => {
            assert_eq!(node, "n2");
            assert_eq!(url, "Pod jepsen/faultline-rk3-n2");
            assert_eq!(
                last_error,
                "the Pod is Pending without an IP; Unschedulable: 0/3 nodes are available"
            );
            assert!(log_tail.contains("leader is n1"), "{log_tail}");
        }
        other => panic!("{other}"),
    }
    assert!(objects_left(&fake).is_empty(), "{:?}", objects_left(&fake));
    std::fs::remove_dir_all(run_dir(&run)).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_answers_its_probe_is_named_and_everything_goes() {
    // n2's program is down: its probe answers 503.
    let Bed {
        fake,
        port,
        runtime,
        run,
        spec,
        ..
    } = bed("rk4", &["running", "stopped"], false).await;
    let image = runtime
        .existing_image("registry.example/mydb:1.4")
        .await
        .expect("image");
    let err = Cluster::start(runtime.clone(), spec, &image)
        .await
        .expect_err("n2 is never ready");
    match &err {
        RuntimeError::NotReady { node, url, .. } => {
            assert_eq!(node, "n2");
            assert_eq!(url, &format!("http://127.0.0.3:{port}/health"));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("node is Stopped"), "{err}");
    assert!(objects_left(&fake).is_empty(), "{:?}", objects_left(&fake));
    std::fs::remove_dir_all(run_dir(&run)).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_cluster_is_removed_and_clean_finds_orphans() {
    let (base, fake) = fake_api().await;
    let (port, agents) = fake_agents(&["running"]).await;
    let (runtime, _) = connect(&options(&base)).await.expect("connects");
    let gone = RunId::new("rk5").expect("run");
    pod_ips(&fake, &gone, &[Some(agents[0].0)]);
    let image = runtime
        .existing_image("registry.example/mydb:1.4")
        .await
        .expect("image");
    let cluster = Cluster::start(
        runtime.clone(),
        kube_spec(runtime.as_ref(), &gone, 1, port),
        &image,
    )
    .await
    .expect("starts");
    assert_eq!(objects_left(&fake).len(), 3);
    // Dropped without teardown (a panic, an early return): removed, blocking.
    tokio::task::block_in_place(|| drop(cluster));
    assert!(objects_left(&fake).is_empty(), "{:?}", objects_left(&fake));

    // Orphans: a run whose harness (on this host) is gone, and a Service alone; a live
    // run of this very process stays.
    let live = RunId::new("rk6").expect("run");
    pod_ips(&fake, &live, &[Some(agents[0].0)]);
    let _cluster = Cluster::start(
        runtime.clone(),
        kube_spec(runtime.as_ref(), &live, 1, port),
        &image,
    )
    .await
    .expect("starts");
    let api = KubeApi::connect(&ApiSource::Url(base.clone()))
        .await
        .expect("client");
    let mut dead = run();
    dead.run = RunId::new("rk7").expect("run");
    dead.namespace = "jepsen".into();
    dead.harness = format!("{}/999999999/1", faultline_targets::runtime::this_host());
    let node = KubeNode {
        name: NodeName::new("n1").expect("n1"),
        command: vec!["/bin/true".into()],
        env: vec![],
        ready: None,
        files: vec![],
    };
    api.create(&node_pod(&dead, &node)).await.expect("pod");
    api.create(&token_secret(&dead, "t")).await.expect("secret");
    let mut alone = run();
    alone.run = RunId::new("rk8").expect("run");
    api.create(&headless_service(&alone))
        .await
        .expect("service");
    let with_files = KubeNode {
        files: vec![("a.cfg".into(), "x".into())],
        ..node.clone()
    };
    api.create(&node_files(&alone, &with_files).expect("files"))
        .await
        .expect("config map");
    let report = runtime
        .clean(&CleanScope::orphans(), false)
        .await
        .expect("clean");
    assert_eq!(
        report.objects,
        vec![
            "Pod jepsen/faultline-rk7-n1",
            "Secret jepsen/faultline-rk7-token",
            "Service jepsen/faultline-rk8",
            "ConfigMap jepsen/faultline-rk8-n1-files",
        ]
    );
    let left = objects_left(&fake);
    assert_eq!(
        left,
        vec![
            "/api/v1/namespaces/jepsen/pods/faultline-rk6-n1",
            "/api/v1/namespaces/jepsen/secrets/faultline-rk6-token",
            "/api/v1/namespaces/jepsen/services/faultline-rk6",
        ]
    );
    // --force: every run.
    runtime
        .clean(&CleanScope::All, false)
        .await
        .expect("clean all");
    assert!(objects_left(&fake).is_empty(), "{:?}", objects_left(&fake));
    std::fs::remove_dir_all(run_dir(&gone)).ok();
    std::fs::remove_dir_all(run_dir(&live)).ok();
}

#[tokio::test]
async fn what_kubernetes_cannot_do_is_refused_before_anything_is_created() {
    let (base, fake) = fake_api().await;
    // No such namespace: a setup error saying how to make it.
    let mut o = options(&base);
    o.namespace = Some("nowhere".into());
    let err = connect(&o).await.expect_err("no namespace");
    assert!(err.is_setup_error(), "{err}");
    assert!(
        err.to_string().contains("kubectl create namespace nowhere"),
        "{err}"
    );
    // Host faults: every node runs under an agent here.
    let (runtime, _) = connect(&options(&base)).await.expect("connects");
    let run = RunId::new("rk9").expect("run");
    let mut spec = kube_spec(runtime.as_ref(), &run, 1, 7900);
    spec.agent = None;
    let image = runtime
        .existing_image("registry.example/mydb:1.4")
        .await
        .expect("image");
    let err = Cluster::start(runtime.clone(), spec, &image)
        .await
        .expect_err("refused");
    assert!(err.is_setup_error());
    assert!(err.to_string().contains("--faults agent"), "{err}");
    // A program carried as host directory trees (ZooKeeper's Java tree): Docker only.
    let mut trees = ImageSpec::new("/usr/bin/java");
    trees.trees = vec!["/usr/share/zookeeper".into()];
    let err = runtime.prepare_image(&trees).await.expect_err("no trees");
    assert!(err.is_setup_error());
    assert!(err.to_string().contains("/usr/share/zookeeper"), "{err}");
    // No agent image: said so.
    let mut o = options(&base);
    o.agent_image = None;
    let (bare, _) = connect(&o).await.expect("connects");
    let err = bare
        .prepare_image(&ImageSpec::new("/build/faultline-node"))
        .await
        .expect_err("no agent image");
    assert!(err.to_string().contains("--k8s-agent-image"), "{err}");
    assert!(fake
        .lock()
        .expect("fake")
        .requests
        .iter()
        .all(|(m, _, _)| m != "POST"));
    std::fs::remove_dir_all(run_dir(&run)).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_chaos_mesh_a_clock_fault_is_a_time_chaos_made_again_after_a_start() {
    let Bed {
        fake,
        port,
        agents,
        runtime,
        run,
        spec,
        ..
    } = bed("rkc", &["running", "running"], true).await;
    // Any image, whatever its program (a Go binary too): the runtime moves the clock.
    let image = runtime
        .existing_image("registry.example/etcd:3.5")
        .await
        .expect("image");
    assert!(image.capabilities.clock_faults && image.capabilities.clock_by_runtime);
    // No libfaketime settings and nothing for the agents to confirm.
    assert!(
        !image.capabilities.clock_preloaded_by_agent && !image.capabilities.clock_confirm_by_agent
    );
    let cluster = Cluster::start(runtime.clone(), spec, &image)
        .await
        .expect("starts");
    let n2 = cluster.node("n2").expect("n2").clone();
    let node = NemesisNode::new(n2.clone())
        .await
        .expect("status")
        .with_agent(AgentClient::new(SocketAddr::from((n2.ip(), port)), TOKEN).expect("client"))
        .with_runtime_clock();
    let agent = node.agent().expect("an agent");
    let chaos = |fake: &Shared| -> Vec<(String, Value)> {
        fake.lock()
            .expect("fake")
            .objects
            .iter()
            .filter(|(p, _)| p.starts_with(CHAOS_PATH))
            .map(|(p, o)| (p.rsplit('/').next().unwrap_or("").to_string(), o.clone()))
            .collect()
    };

    // A bump: one TimeChaos on n2's Pod, held until removed; the agent is not asked.
    let confirmed = agent.set_clock(-90_000, None).await.expect("shifted");
    assert_eq!(confirmed.mechanism, Mechanism::Runtime);
    let held = chaos(&fake);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, "faultline-rkc-n2-clock-0");
    assert_eq!(held[0].1["spec"]["timeOffset"], "-90000ms");
    assert_eq!(
        held[0].1["spec"]["selector"]["labelSelectors"],
        json!({"faultline.run": "rkc", "faultline.node": "n2"})
    );
    assert!(agent_requests(&agents[1].1)
        .iter()
        .all(|r| !r.contains("/v1/clock")));
    // A strobe cannot be held by one offset: refused, nothing changes.
    let strobe = Strobe {
        delta_ms: 1_000,
        period_ms: 8,
        duration_ms: 500,
    };
    let err = agent
        .set_clock(0, Some(strobe))
        .await
        .expect_err("no strobe");
    assert!(err.to_string().contains("cannot strobe"), "{err}");
    assert_eq!(chaos(&fake).len(), 1);

    // Killed and started again: the new program runs shifted too (a new TimeChaos).
    node.kill().await.expect("killed through the agent");
    node.start().await.expect("started through the runtime");
    let held = chaos(&fake);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, "faultline-rkc-n2-clock-1");
    assert_eq!(held[0].1["spec"]["timeOffset"], "-90000ms");

    // Back to real time: none left.
    agent.set_clock(0, None).await.expect("healed");
    assert!(chaos(&fake).is_empty());
    // A start with the clock real makes none.
    node.kill().await.expect("killed");
    node.start().await.expect("started");
    assert!(chaos(&fake).is_empty());

    // Teardown removes a held TimeChaos before the Pods.
    agent.set_clock(5_000, None).await.expect("shifted");
    fake.lock().expect("fake").requests.clear();
    cluster.teardown().await.expect("torn down");
    let deletes: Vec<String> = paths(&fake)
        .into_iter()
        .filter(|p| p.starts_with("DELETE"))
        .collect();
    assert_eq!(
        deletes.first().map(String::as_str),
        Some("DELETE /apis/chaos-mesh.org/v1alpha1/namespaces/jepsen/timechaos/faultline-rkc-n2-clock-2"),
        "{deletes:?}"
    );
    assert!(objects_left(&fake).is_empty(), "{:?}", objects_left(&fake));
    cluster.remove_node_dirs().expect("node dirs");
    std::fs::remove_dir_all(run_dir(&run)).ok();
}

#[tokio::test]
async fn without_chaos_mesh_the_runtime_does_not_move_clocks() {
    let (base, _fake) = fake_api().await;
    let (runtime, _) = connect(&options(&base)).await.expect("connects");
    let image = runtime
        .existing_image("registry.example/etcd:3.5")
        .await
        .expect("image");
    assert!(!image.capabilities.clock_by_runtime);
    // libfaketime instead: the agent preloads it, and each node's agent must confirm it.
    assert!(image.capabilities.clock_faults);
    assert!(image.capabilities.clock_preloaded_by_agent);
    assert!(image.capabilities.clock_confirm_by_agent);
    let node = faultline_targets::runtime::NodeRef {
        run: RunId::new("rkn").expect("run"),
        name: NodeName::new("n1").expect("n1"),
    };
    let err = runtime
        .set_clock(&node, 1_000)
        .await
        .expect_err("no TimeChaos");
    assert!(err.to_string().contains("Chaos Mesh"), "{err}");
}
