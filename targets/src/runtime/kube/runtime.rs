//! [`KubeRuntime`]: the [`Runtime`] on a Kubernetes cluster, through [`KubeApi`]
//! (kube-rs, with the credentials of your kubeconfig or of the Pod the harness runs in,
//! or a URL that needs none such as `kubectl proxy`'s).
//!
//! What each operation does there:
//!
//! - Addresses: nodes reach each other by their stable DNS names under the run's
//!   headless Service (`<node>.faultline-<run>.<namespace>.svc`), known before the Pods
//!   exist; the harness reaches each node at its Pod's IP, read from the API once the Pod
//!   has one (the harness must run where Pod IPs are routed: inside the cluster, as the
//!   Job of `faultline k8s manifest`).
//! - Creation: the token Secret, the headless Service, a ConfigMap per node with files
//!   (mounted at their paths under `/data`), then one Pod per node whose entry point is
//!   the node agent ([`super::manifest::node_pod`]); a refusal midway deletes
//!   what was created. A Pod that gets no IP within the readiness time (unschedulable,
//!   an image that cannot be pulled, a Pod that ended) is a [`RuntimeError::NotReady`]
//!   naming the node, with its log when there is one.
//! - Nodes always run under the agent: a spec without [`super::AgentSpec`] is refused.
//!   Kill, start, pause and resume act on the agent's child (the node's program) through
//!   its control API, so the Pod, its IP and its DNS name stay; restart is the agent's
//!   graceful stop (SIGTERM, SIGKILL after the grace) then a start. The status is the agent's: the
//!   child's pid inside the Pod, no network-namespace path (faults from the host are
//!   impossible; they go through the agents).
//! - Images: nothing is built or pulled by faultline. A target that runs an image runs it
//!   as it is (its arguments are the program's whole command line, run by the agent, so
//!   the image's own entry point is not used); a host binary runs from the agent image,
//!   which must hold it at `/usr/local/bin/<file name>`.
//! - Clock faults: through Chaos Mesh's TimeChaos where the cluster serves it
//!   ([`Runtime::set_clock`], any program); else through the libfaketime the agent image
//!   delivers, which each node's agent must confirm loaded in its running program.
//! - Logs: the Pod log API (`node` container: the agent's output and its child's).
//! - Clean-up: a run's Pods, Services, Secrets and ConfigMaps are deleted by its label; orphans are
//!   runs whose Pods name a harness of this host that no longer runs.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::api::{deploy, pod_readiness, teardown_run, ApiSource, KubeApi, RUN_KINDS};
use super::manifest::{
    headless_service, node_files, node_pod, pod_name, service_name, time_chaos, token_secret,
    KubeNode, KubeRun, CHAOS_MESH_API,
};
use crate::agent::{AgentClient, ProcessOp};
use crate::runtime::error::RuntimeError;
use crate::runtime::names::{
    harness_alive, in_scope_with, this_host, CleanScope, NodeName, NodeRef, RunId, LABEL_FAULTLINE,
    LABEL_HARNESS, LABEL_NODE, LABEL_RUN,
};
use crate::runtime::spec::{
    AddressPlan, AgentSpec, Capabilities, ClusterSpec, ImageSpec, PreparedImage, ReadyProbe,
};
use crate::runtime::state::{plan_step, Action, NodeState, NodeStatus, Step};
use crate::runtime::{CleanReport, EngineInfo, Runtime};

/// Where `kubectl proxy` serves the API by default (named in messages).
pub const DEFAULT_KUBE_API: &str = "http://127.0.0.1:8001";
/// The environment variable naming an API URL that needs no credentials when no option
/// does.
pub const KUBE_API_ENV: &str = "FAULTLINE_KUBE_API";
/// The namespace used when neither an option nor the kubeconfig names one.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The environment variable naming the namespace when no option does (the harness Job
/// sets it to its own namespace).
pub const NAMESPACE_ENV: &str = "FAULTLINE_NAMESPACE";
/// How many log lines an error about a node shows.
const LOG_TAIL_LINES: usize = 20;
/// The Pod annotation holding the harness id (see the manifest).
const ANNOTATION_HARNESS: &str = "faultline.harness";
/// How long a TimeChaos may take to be injected into a node, or to go.
const CHAOS_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach a cluster and what to run there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeConfig {
    /// Where the API is and with which credentials.
    pub api: ApiSource,
    /// The namespace of every object; `None`: the kubeconfig context's (or the service
    /// account's), else [`DEFAULT_NAMESPACE`].
    pub namespace: Option<String>,
    /// The image holding `faultline` at [`super::AGENT_IMAGE_PATH`] (and, for clock faults
    /// without Chaos Mesh, libfaketime), which each
    /// node Pod's init container copies the agent from; needed to create a cluster.
    pub agent_image: Option<String>,
    /// Put each node on its own host (required Pod anti-affinity).
    pub anti_affinity: bool,
    /// Pause between two reads of a Pod while waiting for its IP.
    pub poll: Duration,
}

impl KubeConfig {
    /// The defaults with the API at the URL `api`, else at `FAULTLINE_KUBE_API`'s, else
    /// as the kubeconfig (or the in-cluster service account) says; the namespace
    /// `FAULTLINE_NAMESPACE`, else the configuration's.
    pub fn new(api: Option<&str>) -> KubeConfig {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let api = match api.map(str::to_string).or_else(|| env(KUBE_API_ENV)) {
            Some(url) => ApiSource::Url(url),
            None => ApiSource::Inferred,
        };
        KubeConfig {
            api,
            namespace: env(NAMESPACE_ENV),
            agent_image: None,
            anti_affinity: false,
            poll: Duration::from_millis(500),
        }
    }
}

/// What the runtime keeps about one node of a run it created.
#[derive(Debug, Clone)]
struct KubeNodeState {
    pod: String,
    agent: AgentClient,
    /// The clock offset a TimeChaos holds on the node (0: none).
    clock_ms: i64,
}

/// A [`Runtime`] on a Kubernetes cluster. See the module documentation.
#[derive(Debug)]
pub struct KubeRuntime {
    api: KubeApi,
    config: KubeConfig,
    /// The namespace of every object (the option's, else the configuration's).
    namespace: String,
    /// Whether the cluster serves Chaos Mesh's TimeChaos (seen by [`Runtime::check`]):
    /// clock faults then go through it.
    time_chaos: AtomicBool,
    /// Numbers the TimeChaos objects of this runtime (each change gets a new one).
    chaos_seq: AtomicU64,
    /// The nodes of the runs this runtime created, for their agents.
    nodes: Mutex<HashMap<NodeRef, KubeNodeState>>,
}

/// The message of an unreachable API: what to check or run.
fn unreachable(source: &ApiSource, base: &str, e: &RuntimeError) -> RuntimeError {
    let what = match source {
        ApiSource::Url(_) => format!(
            "no Kubernetes API answers at {base} ({e}): run `kubectl proxy` (it serves the \
             API of your kubeconfig's cluster at {DEFAULT_KUBE_API}), give the right URL with \
             --kube-api URL, the plan's kube_api or {KUBE_API_ENV}, or leave them all unset to \
             use your kubeconfig"
        ),
        ApiSource::Inferred => format!(
            "the Kubernetes API at {base}, named by your kubeconfig (KUBECONFIG or \
             ~/.kube/config) or the in-cluster service account, does not answer ({e}): check \
             that the cluster runs and that `kubectl version` reaches it"
        ),
    };
    RuntimeError::Unavailable {
        runtime: "kubernetes",
        reason: what,
    }
}

impl KubeRuntime {
    /// A runtime speaking to the API of `config`: credentials are read, nothing is
    /// called yet (see [`Runtime::check`]). Must run inside a tokio runtime.
    pub async fn connect(config: KubeConfig) -> Result<KubeRuntime, RuntimeError> {
        let api = KubeApi::connect(&config.api).await?;
        let namespace = config
            .namespace
            .clone()
            .unwrap_or_else(|| api.default_namespace().to_string());
        Ok(KubeRuntime {
            api,
            config,
            namespace,
            time_chaos: AtomicBool::new(false),
            chaos_seq: AtomicU64::new(0),
            nodes: Mutex::new(HashMap::new()),
        })
    }

    /// The namespace of the runtime's objects.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The configuration.
    pub fn config(&self) -> &KubeConfig {
        &self.config
    }

    fn node_state(&self, node: &NodeRef) -> Result<KubeNodeState, RuntimeError> {
        self.nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .cloned()
            .ok_or_else(|| RuntimeError::UnknownNode(format!("{} of run {}", node.name, node.run)))
    }

    fn forget(&self, run: &RunId) {
        self.nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|n, _| n.run != *run);
    }

    fn agent_error(node: &NodeRef, e: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Agent {
            node: node.name.to_string(),
            message: e.to_string(),
        }
    }

    /// The node's status as its agent tells it.
    async fn agent_status(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        let state = self.node_state(node)?;
        let child = state
            .agent
            .status()
            .await
            .map_err(|e| Self::agent_error(node, e))?;
        let state = match child.state.as_str() {
            "running" => NodeState::Running,
            "paused" => NodeState::Paused,
            _ => NodeState::Stopped,
        };
        Ok(NodeStatus {
            state,
            pid: child.pid.filter(|_| state != NodeState::Stopped),
            netns_path: None,
        })
    }

    async fn act(&self, node: &NodeRef, action: Action) -> Result<NodeStatus, RuntimeError> {
        let status = self.agent_status(node).await?;
        let op = match plan_step(status.state, action) {
            Step::Nothing => return Ok(status),
            Step::Refuse => {
                return Err(RuntimeError::InvalidState {
                    node: node.name.to_string(),
                    action,
                    state: status.state,
                })
            }
            Step::Start => ProcessOp::Start,
            Step::Unpause => ProcessOp::Resume,
            Step::Kill => ProcessOp::Kill,
            Step::Pause => ProcessOp::Pause,
        };
        let state = self.node_state(node)?;
        state
            .agent
            .process(op)
            .await
            .map_err(|e| Self::agent_error(node, e))?;
        if op == ProcessOp::Start && state.clock_ms != 0 {
            // Chaos Mesh shifted the processes that ran when it injected: the program
            // started now runs on the real clock until the TimeChaos is made again.
            self.shift_clock(node, state.clock_ms).await?;
        }
        self.agent_status(node).await
    }

    /// Removes the TimeChaos objects of `node` and waits until they are gone (Chaos Mesh
    /// has put the clock back), then, unless `offset_ms` is 0, creates one holding
    /// `offset_ms` and waits until Chaos Mesh says it is injected (`AllInjected`). One
    /// that is not injected in time is deleted again, so that the node's clock is what
    /// the failed fault says: real.
    async fn shift_clock(&self, node: &NodeRef, offset_ms: i64) -> Result<(), RuntimeError> {
        let ns = &self.namespace;
        let selector = format!("{LABEL_RUN}={},{LABEL_NODE}={}", node.run, node.name);
        self.api
            .delete_labelled(CHAOS_MESH_API, "TimeChaos", ns, &selector)
            .await?;
        self.wait_chaos(node, &selector, "remove the node's TimeChaos", |items| {
            items.is_empty()
        })
        .await?;
        self.remember_clock(node, 0);
        if offset_ms == 0 {
            return Ok(());
        }
        let seq = self.chaos_seq.fetch_add(1, Ordering::Relaxed);
        let r = self
            .api
            .create(&time_chaos(ns, node, seq, offset_ms))
            .await?;
        let injected = |items: &[Value]| {
            items.iter().any(|o| {
                o["metadata"]["name"] == r.name.as_str()
                    && o["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "AllInjected" && c["status"] == "True")
                    })
            })
        };
        if let Err(e) = self
            .wait_chaos(node, &selector, &format!("inject {r}"), injected)
            .await
        {
            if let Err(d) = self.api.delete(&r).await {
                tracing::warn!("taking back {r}: {d}");
            }
            return Err(e);
        }
        self.remember_clock(node, offset_ms);
        Ok(())
    }

    /// Polls the TimeChaos objects of `selector` until `done` holds of them, for up to
    /// [`CHAOS_TIMEOUT`]; the error says what Chaos Mesh did not do (`what`) and the
    /// objects' last status.
    async fn wait_chaos(
        &self,
        node: &NodeRef,
        selector: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + CHAOS_TIMEOUT;
        loop {
            let items = self
                .api
                .list_in(CHAOS_MESH_API, "TimeChaos", &self.namespace, selector)
                .await?;
            if done(&items) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let seen: Vec<String> = items
                    .iter()
                    .map(|o| format!("{} {}", o["metadata"]["name"], o["status"]))
                    .collect();
                return Err(RuntimeError::Agent {
                    node: node.name.to_string(),
                    message: format!(
                        "Chaos Mesh did not {what} within {} s (is its controller running? \
                         last seen: {})",
                        CHAOS_TIMEOUT.as_secs(),
                        if seen.is_empty() {
                            "none".to_string()
                        } else {
                            seen.join("; ")
                        }
                    ),
                });
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    /// Keeps the clock offset a TimeChaos holds on `node`, for a start to make it again.
    fn remember_clock(&self, node: &NodeRef, offset_ms: i64) {
        if let Some(state) = self
            .nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(node)
        {
            state.clock_ms = offset_ms;
        }
    }

    /// What clock faults can do on this cluster: through Chaos Mesh's TimeChaos when it
    /// is installed, for any program; else `without` (libfaketime's case).
    fn clock_capabilities(&self, without: Capabilities) -> Capabilities {
        if self.time_chaos.load(Ordering::Relaxed) {
            Capabilities {
                clock_faults: true,
                clock_faults_unavailable: None,
                clock_by_runtime: true,
                ..Capabilities::default()
            }
        } else {
            without
        }
    }

    /// The objects of a run's cluster: the token Secret, the headless Service, a Pod per
    /// node.
    fn objects(
        &self,
        spec: &ClusterSpec,
        image: &PreparedImage,
    ) -> Result<(KubeRun, Vec<Value>), RuntimeError> {
        let agent = agent_spec(spec)?;
        let agent_image = self.agent_image()?;
        let mut ports: Vec<u16> = spec
            .nodes
            .iter()
            .filter_map(|n| n.ready.as_ref().and_then(ReadyProbe::port))
            .filter(|p| *p != agent.port)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        ports.sort_unstable();
        let run = KubeRun {
            namespace: self.namespace.clone(),
            run: spec.run.clone(),
            node_image: image.reference.clone(),
            agent_image,
            agent_port: agent.port,
            ports,
            anti_affinity: self.config.anti_affinity,
            harness: spec.harness.label(),
        };
        let program = if spec.image_program {
            None
        } else {
            Some(spec.binary_mount()?)
        };
        let nodes: Vec<KubeNode> = spec
            .nodes
            .iter()
            .map(|node| KubeNode {
                name: node.name.clone(),
                command: program
                    .iter()
                    .cloned()
                    .chain(node.args.iter().cloned())
                    .collect(),
                env: node.env.clone(),
                ready: node.ready.clone(),
                files: node
                    .files
                    .iter()
                    .map(|f| (f.path.to_string_lossy().into_owned(), f.contents.clone()))
                    .collect(),
            })
            .collect();
        // The Pods last: each finds its token, its DNS subdomain and its files.
        let mut objects = vec![token_secret(&run, &agent.token), headless_service(&run)];
        objects.extend(nodes.iter().filter_map(|n| node_files(&run, n)));
        objects.extend(nodes.iter().map(|n| node_pod(&run, n)));
        Ok((run, objects))
    }

    fn agent_image(&self) -> Result<String, RuntimeError> {
        self.config
            .agent_image
            .clone()
            .ok_or_else(|| RuntimeError::Unavailable {
                runtime: "kubernetes",
                reason: "the node Pods need the agent image: give --k8s-agent-image IMAGE or \
                         the plan's k8s_agent_image (an image holding \
                         /usr/local/bin/faultline)"
                    .into(),
            })
    }

    /// Waits until the Pod of `node` has an IP; a Pod that ended, or has none within
    /// `timeout`, is [`RuntimeError::NotReady`] with its log when it has one.
    async fn wait_pod_ip(
        &self,
        run: &RunId,
        node: &NodeName,
        timeout: Duration,
    ) -> Result<IpAddr, RuntimeError> {
        let ns = &self.namespace;
        let pod = pod_name(run, node);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last;
        loop {
            let seen = self.api.pod(ns, &pod).await;
            match &seen {
                Ok(p) => {
                    let (_, ip) = pod_readiness(p);
                    let phase = p["status"]["phase"].as_str().unwrap_or("Pending");
                    if matches!(phase, "Failed" | "Succeeded") {
                        last = format!("the Pod ended (phase {phase})");
                        break;
                    }
                    match ip.as_deref().map(str::parse::<IpAddr>) {
                        Some(Ok(ip)) => return Ok(ip),
                        Some(Err(_)) => last = format!("the Pod's IP {ip:?} is not an address"),
                        None => last = pod_waiting(p, phase),
                    }
                }
                Err(e) => last = e.to_string(),
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(self.config.poll).await;
        }
        let log_tail = match self.api.logs(ns, &pod, Some(LOG_TAIL_LINES)).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(logs unavailable: {e})"),
        };
        Err(RuntimeError::NotReady {
            node: node.to_string(),
            url: format!("Pod {ns}/{pod}"),
            waited: timeout,
            last_error: last,
            log_tail,
        })
    }

    /// Removes the objects of `run` and what the runtime kept about it; each object
    /// (`Pod jepsen/faultline-r1-n1`, ...) in the report.
    async fn clean_run(&self, run: &RunId, report: &mut CleanReport) -> Result<(), RuntimeError> {
        let ns = &self.namespace;
        let selector = format!("{LABEL_RUN}={run}");
        for kind in RUN_KINDS {
            for item in self.api.list(kind, ns, &selector).await? {
                if let Some(name) = item["metadata"]["name"].as_str() {
                    report.objects.push(format!("{kind} {ns}/{name}"));
                }
            }
        }
        teardown_run(&self.api, ns, run).await?;
        self.forget(run);
        Ok(())
    }
}

/// The spec's agent: every node runs under one on Kubernetes.
fn agent_spec(spec: &ClusterSpec) -> Result<&AgentSpec, RuntimeError> {
    spec.agent
        .as_ref()
        .ok_or_else(|| RuntimeError::Unavailable {
            runtime: "kubernetes",
            reason: "on Kubernetes every node runs under the node agent (its Pod's entry point) \
                 and faults from the host are impossible: use --faults agent"
                .into(),
        })
}

/// Why a Pod without IP is still waiting, as the API says it (`Pending`, an unschedulable
/// condition's message, a container's `ImagePullBackOff`).
fn pod_waiting(pod: &Value, phase: &str) -> String {
    let mut why = format!("the Pod is {phase} without an IP");
    if let Some(c) = pod["status"]["conditions"].as_array().and_then(|cs| {
        cs.iter()
            .find(|c| c["status"] == "False" && c["message"].is_string())
    }) {
        why.push_str(&format!(
            "; {}: {}",
            c["reason"].as_str().unwrap_or(""),
            c["message"].as_str().unwrap_or("")
        ));
    }
    for key in ["initContainerStatuses", "containerStatuses"] {
        for s in pod["status"][key].as_array().into_iter().flatten() {
            if let Some(reason) = s["state"]["waiting"]["reason"].as_str() {
                why.push_str(&format!(
                    "; container {}: {reason}",
                    s["name"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    why
}

/// The labels of an API object, with its harness annotation as the harness label (what
/// [`in_scope_with`] reads).
fn labels_of(object: &Value) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    if let Some(h) = object["metadata"]["annotations"][ANNOTATION_HARNESS].as_str() {
        labels.insert(LABEL_HARNESS.to_string(), h.to_string());
    }
    labels
}

#[async_trait]
impl Runtime for KubeRuntime {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    async fn check(&self) -> Result<EngineInfo, RuntimeError> {
        let base = self.api.base();
        let version = self.api.version().await.map_err(|e| match e {
            RuntimeError::Api { status: None, .. }
            | RuntimeError::Api {
                status: Some(404), ..
            } => unreachable(&self.config.api, &base, &e),
            e => e,
        })?;
        let ns = &self.namespace;
        // A harness whose Role is its namespace's only (the Job of `faultline k8s
        // manifest`) may not read namespaces (None): it runs in that one.
        let found = self.api.namespace_exists(ns).await?.unwrap_or(true);
        if !found {
            return Err(RuntimeError::Unavailable {
                runtime: "kubernetes",
                reason: format!(
                    "namespace {ns:?} does not exist on the cluster at {base}: create it \
                     (kubectl create namespace {ns}) or choose another"
                ),
            });
        }
        // Clock faults through Chaos Mesh when the cluster serves its TimeChaos (the
        // discovery document is readable by every authenticated user).
        let chaos = match self.api.serves(CHAOS_MESH_API).await {
            Ok(served) => served,
            Err(e) => {
                tracing::debug!("cannot tell whether Chaos Mesh is installed: {e}");
                false
            }
        };
        self.time_chaos.store(chaos, Ordering::Relaxed);
        Ok(EngineInfo {
            runtime: "kubernetes",
            version,
            api_version: "v1".to_string(),
        })
    }

    async fn prepare_image(&self, spec: &ImageSpec) -> Result<PreparedImage, RuntimeError> {
        // Nothing is built: the program comes from the agent image, which the release
        // makes with faultline and the bundled node side by side.
        let reference = self.agent_image()?;
        if let Some(tree) = spec.trees.first() {
            return Err(RuntimeError::Unavailable {
                runtime: "kubernetes",
                reason: format!(
                    "the program needs host directory trees ({} ...) carried into its image, \
                     which faultline builds on Docker only: on Kubernetes, run the target from \
                     an image that holds it (a target file's image)",
                    tree.display()
                ),
            });
        }
        // Clock faults: Chaos Mesh's TimeChaos where the cluster serves it; else the
        // libfaketime that `agent-install` copied out of the agent image, which the agent
        // preloads and whose loading each node's agent confirms once the program runs.
        Ok(PreparedImage {
            reference: reference.clone(),
            reused: true,
            libraries: Vec::new(),
            capabilities: self.clock_capabilities(Capabilities::preloaded_by_agent()),
        })
    }

    async fn existing_image(&self, reference: &str) -> Result<PreparedImage, RuntimeError> {
        // The cluster pulls it when a Pod needs it; a missing image shows as a Pod that
        // never gets ready (ErrImagePull), with the node named. Its program runs under
        // the agent like any other: clock faults as for `prepare_image`.
        let mut image = PreparedImage::as_is(reference);
        image.capabilities = self.clock_capabilities(Capabilities::preloaded_by_agent());
        Ok(image)
    }

    fn plan_addresses(
        &self,
        run: &RunId,
        names: &[NodeName],
        _attempt: u32,
    ) -> Result<AddressPlan, RuntimeError> {
        let ns = &self.namespace;
        Ok(AddressPlan {
            subnet: None,
            hosts: names
                .iter()
                .map(|n| format!("{n}.{}.{ns}.svc", service_name(run)))
                .collect(),
        })
    }

    async fn create_cluster(
        &self,
        spec: &ClusterSpec,
        image: &PreparedImage,
    ) -> Result<Vec<IpAddr>, RuntimeError> {
        let agent = agent_spec(spec)?;
        let (run, objects) = self.objects(spec, image)?;
        deploy(&self.api, &objects).await?;
        let ips = futures_util::future::try_join_all(
            spec.nodes
                .iter()
                .map(|n| self.wait_pod_ip(&run.run, &n.name, spec.ready_timeout)),
        )
        .await?;
        let mut known = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        for (node, ip) in spec.nodes.iter().zip(&ips) {
            let client = AgentClient::new(SocketAddr::from((*ip, agent.port)), &agent.token)
                .map_err(|e| RuntimeError::Agent {
                    node: node.name.to_string(),
                    message: e.to_string(),
                })?;
            known.insert(
                NodeRef {
                    run: spec.run.clone(),
                    name: node.name.clone(),
                },
                KubeNodeState {
                    pod: pod_name(&spec.run, &node.name),
                    agent: client,
                    clock_ms: 0,
                },
            );
        }
        Ok(ips)
    }

    async fn status(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        self.agent_status(node).await
    }

    async fn start(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        self.act(node, Action::Start).await
    }

    async fn kill(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        self.act(node, Action::Kill).await
    }

    async fn pause(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        self.act(node, Action::Pause).await
    }

    async fn resume(&self, node: &NodeRef) -> Result<NodeStatus, RuntimeError> {
        self.act(node, Action::Resume).await
    }

    async fn restart(&self, node: &NodeRef, grace: Duration) -> Result<NodeStatus, RuntimeError> {
        // The agent stops its child (SIGTERM to its process group, thawed if paused;
        // SIGKILL after `grace`), then starts it again: the Pod, its IP and name stay.
        let state = self.node_state(node)?;
        state
            .agent
            .stop(grace)
            .await
            .map_err(|e| Self::agent_error(node, e))?;
        self.act(node, Action::Start).await
    }

    async fn set_clock(&self, node: &NodeRef, offset_ms: i64) -> Result<(), RuntimeError> {
        if !self.time_chaos.load(Ordering::Relaxed) {
            return Err(RuntimeError::Unavailable {
                runtime: "kubernetes",
                reason: format!(
                    "node {}: Chaos Mesh's TimeChaos is not installed on this cluster",
                    node.name
                ),
            });
        }
        self.node_state(node)?;
        self.shift_clock(node, offset_ms).await
    }

    async fn logs(&self, node: &NodeRef, tail: Option<usize>) -> Result<Vec<u8>, RuntimeError> {
        let pod = match self.node_state(node) {
            Ok(s) => s.pod,
            Err(_) => pod_name(&node.run, &node.name),
        };
        self.api.logs(&self.namespace, &pod, tail).await
    }

    async fn clean(
        &self,
        scope: &CleanScope,
        _remove_dirs: bool,
    ) -> Result<CleanReport, RuntimeError> {
        let mut report = CleanReport::default();
        let runs: BTreeSet<String> = match scope {
            CleanScope::Run(run) => BTreeSet::from([run.to_string()]),
            CleanScope::All | CleanScope::Orphans { .. } => {
                let ns = &self.namespace;
                let selector = format!("{LABEL_FAULTLINE}=1");
                let here = this_host();
                let alive = |id: &_| harness_alive(id, &here);
                // Pods name their harness: a run with a Pod of a live harness stays. A
                // Service, Secret or ConfigMap goes with its run (alone, it is a run's
                // leftover).
                let (mut runs, mut live) = (BTreeSet::new(), BTreeSet::new());
                for item in self.api.list("Pod", ns, &selector).await? {
                    let labels = labels_of(&item);
                    let Some(run) = labels.get(LABEL_RUN).cloned() else {
                        continue;
                    };
                    if in_scope_with(&labels, scope, alive) {
                        runs.insert(run);
                    } else {
                        live.insert(run);
                    }
                }
                for kind in RUN_KINDS.into_iter().filter(|k| *k != "Pod") {
                    for item in self.api.list(kind, ns, &selector).await? {
                        if let Some(run) = labels_of(&item).get(LABEL_RUN) {
                            runs.insert(run.clone());
                        }
                    }
                }
                runs.difference(&live).cloned().collect()
            }
        };
        for run in runs {
            let run = RunId::new(&run)?;
            self.clean_run(&run, &mut report).await?;
        }
        Ok(report)
    }

    fn clean_blocking(&self, run: &RunId) {
        let api = self.api.clone();
        let ns = self.namespace.clone();
        let target = run.clone();
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
            // The client serves only while the runtime that made it runs, which may be
            // the one blocked in this drop: connect again on this thread's.
            rt.block_on(async {
                let api = api.reconnect()?;
                teardown_run(&api, &ns, &target).await
            })
            .map_err(|e| e.to_string())
        });
        match worker.join() {
            Ok(Ok(())) => tracing::info!("removed run {run} from the cluster"),
            Ok(Err(e)) => tracing::error!(
                "could not remove run {run} from the cluster: {e}; run `faultline clean \
                 --runtime kubernetes --run {run}`"
            ),
            Err(_) => tracing::error!("clean-up thread of run {run} panicked"),
        }
        self.forget(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_api_is_the_options_url_else_the_kubeconfigs() {
        assert_eq!(
            KubeConfig::new(Some("http://10.0.0.1:8001")).api,
            ApiSource::Url("http://10.0.0.1:8001".into())
        );
        let c = KubeConfig::new(None);
        let expected = match std::env::var(KUBE_API_ENV).ok().filter(|v| !v.is_empty()) {
            Some(url) => ApiSource::Url(url),
            None => ApiSource::Inferred,
        };
        assert_eq!(c.api, expected);
        let ns = std::env::var(NAMESPACE_ENV).ok().filter(|v| !v.is_empty());
        assert_eq!(c.namespace, ns);
    }

    #[tokio::test]
    async fn nodes_are_named_by_their_dns_names() {
        let rt = KubeRuntime::connect(KubeConfig {
            namespace: Some("jepsen".into()),
            ..KubeConfig::new(Some("http://127.0.0.1:1"))
        })
        .await
        .expect("runtime");
        let run = RunId::new("r1").expect("run");
        let names = [
            NodeName::new("n1").expect("n1"),
            NodeName::new("n2").expect("n2"),
        ];
        let plan = rt.plan_addresses(&run, &names, 3).expect("plan");
        assert_eq!(plan.subnet, None);
        assert_eq!(
            plan.hosts,
            vec![
                "n1.faultline-r1.jepsen.svc".to_string(),
                "n2.faultline-r1.jepsen.svc".to_string()
            ]
        );
    }

    #[test]
    fn a_waiting_pod_says_why() {
        let pod = json!({"status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/3 nodes are available"}],
            "initContainerStatuses": [{"name": "install-agent",
                                       "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
        }});
        assert_eq!(
            pod_waiting(&pod, "Pending"),
            "the Pod is Pending without an IP; Unschedulable: 0/3 nodes are available; \
             container install-agent: ImagePullBackOff"
        );
    }

    #[test]
    fn the_harness_annotation_counts_as_the_harness_label() {
        let pod = json!({"metadata": {
            "labels": {"faultline": "1", "faultline.run": "r1"},
            "annotations": {"faultline.harness": "h/1/2"},
        }});
        let labels = labels_of(&pod);
        assert_eq!(labels.get(LABEL_HARNESS).map(String::as_str), Some("h/1/2"));
        assert_eq!(labels.get(LABEL_RUN).map(String::as_str), Some("r1"));
    }
}
