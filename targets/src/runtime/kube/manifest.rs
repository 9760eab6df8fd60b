//! The objects, built as JSON values (the Kubernetes API's own format; `kubectl apply -f`
//! reads them as they are). Pure: the same input gives the same bytes.

use serde_json::{json, Map, Value};

use crate::agent::TOKEN_ENV;
use crate::runtime::names::{NodeName, NodeRef, RunId, LABEL_FAULTLINE, LABEL_NODE, LABEL_RUN};
use crate::runtime::rootfs::{AGENT_PATH, CLOCK_MOUNT, DATA_MOUNT};
use crate::runtime::spec::ReadyProbe;

use super::runtime::NAMESPACE_ENV;

/// Where an agent image holds the `faultline` binary (the init container runs it from
/// there as `faultline agent-install`, which copies it; the harness Job runs it from
/// there).
pub const AGENT_IMAGE_PATH: &str = "/usr/local/bin/faultline";
/// The shared emptyDir in every node Pod the binary is copied into; the node
/// container's entry point is `<AGENT_BIN_DIR>/faultline`, and libfaketime, when the agent
/// image holds it, is [`AGENT_FAKETIME_LIB`].
pub const AGENT_BIN_DIR: &str = "/faultline";
/// Where `faultline agent-install` puts the agent image's libfaketime in a node Pod; the
/// agent preloads it into the program (`--faketime-lib`) when it is there.
pub const AGENT_FAKETIME_LIB: &str = "/faultline/libfaketime.so.1";
/// Where the harness Job mounts its plan (`plan.toml`, from the ConfigMap).
pub const PLAN_DIR: &str = "/etc/faultline";
/// Where the harness Job keeps its store.
pub const STORE_DIR: &str = "/store";
/// The Pod annotation naming the harness that created a run (its value holds `/`,
/// which a label value may not).
const ANNOTATION_HARNESS: &str = "faultline.harness";
/// The label naming the harness Job's objects.
const LABEL_JOB: &str = "faultline.job";
/// The env var the Indexed Job's shard number is read into (from the completion-index
/// annotation the Job controller sets on each Pod).
const SHARD_ENV: &str = "FAULTLINE_SHARD";
/// The env var holding the Pod's own IP (the downward API), given to the agent.
const POD_IP_ENV: &str = "FAULTLINE_POD_IP";

/// One run's nodes on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRun {
    /// The namespace of every object.
    pub namespace: String,
    /// The run.
    pub run: RunId,
    /// The image of the system under test (any image: the agent is copied in).
    pub node_image: String,
    /// The image holding `faultline` at [`AGENT_IMAGE_PATH`] (and, for clock faults,
    /// libfaketime where `faultline agent-install` finds it).
    pub agent_image: String,
    /// The port the agents listen on.
    pub agent_port: u16,
    /// The ports the nodes serve (client and peer ports), published by the Service.
    pub ports: Vec<u16>,
    /// Put each node on its own host (required Pod anti-affinity on the hostname).
    pub anti_affinity: bool,
    /// The harness that owns the run (`<host>/<pid>/<start>`), as an annotation.
    pub harness: String,
}

/// One node of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeNode {
    /// Its name: the Pod's hostname, so `<name>.<service>.<namespace>.svc` resolves.
    pub name: NodeName,
    /// The program and its arguments, run by the agent as its child.
    pub command: Vec<String>,
    /// Environment of the program only.
    pub env: Vec<(String, String)>,
    /// How to tell the node is ready; a host command has no in-cluster form and is
    /// left out.
    pub ready: Option<ReadyProbe>,
    /// Files the program finds in its data folder when it starts (path relative to
    /// `/data`, contents): held by the node's ConfigMap ([`node_files`]) and mounted
    /// read-only one by one at `/data/<path>`.
    pub files: Vec<(String, String)>,
}

/// The labels of a run's objects (a node's also name the node).
pub fn run_labels(run: &RunId, node: Option<&NodeName>) -> Value {
    let mut m = Map::new();
    m.insert(LABEL_FAULTLINE.into(), "1".into());
    m.insert(LABEL_RUN.into(), run.to_string().into());
    if let Some(n) = node {
        m.insert(LABEL_NODE.into(), n.to_string().into());
    }
    Value::Object(m)
}

/// `faultline-<run>`: the headless Service (and the nodes' DNS subdomain).
pub fn service_name(run: &RunId) -> String {
    format!("faultline-{run}")
}

/// `faultline-<run>-<node>`: a node's Pod.
pub fn pod_name(run: &RunId, node: &NodeName) -> String {
    format!("faultline-{run}-{node}")
}

/// A node's stable DNS name: `<node>.faultline-<run>.<namespace>.svc`.
pub fn node_dns(k: &KubeRun, node: &NodeName) -> String {
    format!("{node}.{}.{}.svc", service_name(&k.run), k.namespace)
}

fn token_secret_name(run: &RunId) -> String {
    format!("faultline-{run}-token")
}

fn files_name(run: &RunId, node: &NodeName) -> String {
    format!("faultline-{run}-{node}-files")
}

/// The ConfigMap holding a node's files (keys `f0`, `f1`, ... in order; a path with `/`
/// cannot be a key), or `None` when it has none.
pub fn node_files(k: &KubeRun, node: &KubeNode) -> Option<Value> {
    if node.files.is_empty() {
        return None;
    }
    let data: Map<String, Value> = node
        .files
        .iter()
        .enumerate()
        .map(|(i, (_, contents))| (format!("f{i}"), Value::from(contents.as_str())))
        .collect();
    Some(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": files_name(&k.run, &node.name),
            "namespace": k.namespace,
            "labels": run_labels(&k.run, Some(&node.name)),
        },
        "data": data,
    }))
}

/// The headless Service that gives every node of the run a DNS name, published before
/// the nodes are ready (a cluster forming needs its peers' names first).
pub fn headless_service(k: &KubeRun) -> Value {
    let mut ports = vec![json!({"name": "agent", "port": k.agent_port, "protocol": "TCP"})];
    for p in &k.ports {
        ports.push(json!({"name": format!("p{p}"), "port": p, "protocol": "TCP"}));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(&k.run),
            "namespace": k.namespace,
            "labels": run_labels(&k.run, None),
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": { LABEL_RUN: k.run.to_string() },
            "ports": ports,
        }
    })
}

/// The run's agent token, which every node's agent reads from its environment.
pub fn token_secret(k: &KubeRun, token: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": token_secret_name(&k.run),
            "namespace": k.namespace,
            "labels": run_labels(&k.run, None),
        },
        "type": "Opaque",
        "stringData": { "token": token },
    })
}

/// The agent's arguments in a node Pod: listen on the agent port, the Pod's own IP
/// (expanded by Kubernetes from the downward API), the clock folder, the libfaketime
/// `agent-install` copied (the agent runs the program without it when it is not there,
/// and says so), the program's environment, then the program.
pub fn agent_args(k: &KubeRun, node: &KubeNode) -> Vec<String> {
    let mut args = vec![
        "agent".to_string(),
        "--listen".to_string(),
        format!("0.0.0.0:{}", k.agent_port),
        "--ip".to_string(),
        format!("$({POD_IP_ENV})"),
        "--clock-dir".to_string(),
        CLOCK_MOUNT.to_string(),
        "--faketime-lib".to_string(),
        AGENT_FAKETIME_LIB.to_string(),
    ];
    for (key, value) in &node.env {
        args.push("--env".to_string());
        args.push(format!("{key}={value}"));
    }
    args.push("--".to_string());
    args.extend(node.command.iter().cloned());
    args
}

fn readiness(probe: &ReadyProbe) -> Option<Value> {
    let check = match probe {
        ReadyProbe::Http { port, path } => json!({"httpGet": {"path": path, "port": port}}),
        ReadyProbe::Tcp { port } => json!({"tcpSocket": {"port": port}}),
        // Kubernetes has no send-and-expect probe: the port accepting connections is
        // the closest it checks (the harness probes the exchange itself as well).
        ReadyProbe::TcpExchange { port, .. } => json!({"tcpSocket": {"port": port}}),
        ReadyProbe::Command { .. } => return None,
    };
    let mut v = check;
    v["periodSeconds"] = 1.into();
    v["failureThreshold"] = 3.into();
    Some(v)
}

/// A node's Pod: an init container runs `faultline agent-install` in the agent image,
/// which copies `faultline` (and the image's libfaketime, if any) into a shared emptyDir
/// (the agent image needs no `cp`); the node container runs the user's image with `faultline agent` as
/// its entry point (supervising the program), `NET_ADMIN` for the agent's packet rules,
/// emptyDirs at `/data` and `/faketime`, and the run's labels. Never restarted by
/// Kubernetes: kills and starts are the agent's.
pub fn node_pod(k: &KubeRun, node: &KubeNode) -> Value {
    let agent = format!("{AGENT_BIN_DIR}/faultline");
    let mut ports = vec![json!({"name": "agent", "containerPort": k.agent_port})];
    for p in &k.ports {
        ports.push(json!({"name": format!("p{p}"), "containerPort": p}));
    }
    let mut container = json!({
        "name": "node",
        "image": k.node_image,
        "command": [agent],
        "args": agent_args(k, node),
        "workingDir": DATA_MOUNT,
        "env": [
            {"name": POD_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": token_secret_name(&k.run), "key": "token"}}},
            {"name": "PATH", "value": AGENT_PATH},
        ],
        "ports": ports,
        "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
        "volumeMounts": [
            {"name": "faultline-bin", "mountPath": AGENT_BIN_DIR, "readOnly": true},
            {"name": "data", "mountPath": DATA_MOUNT},
            {"name": "faketime", "mountPath": CLOCK_MOUNT},
        ],
    });
    if let Some(probe) = node.ready.as_ref().and_then(readiness) {
        container["readinessProbe"] = probe;
    }
    if let Some(mounts) = container["volumeMounts"].as_array_mut() {
        for (i, (path, _)) in node.files.iter().enumerate() {
            mounts.push(json!({
                "name": "files",
                "mountPath": format!("{DATA_MOUNT}/{path}"),
                "subPath": format!("f{i}"),
                "readOnly": true,
            }));
        }
    }
    let mut spec = json!({
        "hostname": node.name.to_string(),
        "subdomain": service_name(&k.run),
        "restartPolicy": "Never",
        "enableServiceLinks": false,
        "terminationGracePeriodSeconds": 5,
        "initContainers": [{
            "name": "install-agent",
            "image": k.agent_image,
            "command": [AGENT_IMAGE_PATH, "agent-install", AGENT_BIN_DIR],
            "volumeMounts": [{"name": "faultline-bin", "mountPath": AGENT_BIN_DIR}],
        }],
        "containers": [container],
        "volumes": [
            {"name": "faultline-bin", "emptyDir": {}},
            {"name": "data", "emptyDir": {}},
            {"name": "faketime", "emptyDir": {}},
        ],
    });
    if !node.files.is_empty() {
        if let Some(volumes) = spec["volumes"].as_array_mut() {
            volumes.push(json!({
                "name": "files",
                "configMap": {"name": files_name(&k.run, &node.name)},
            }));
        }
    }
    if k.anti_affinity {
        spec["affinity"] = json!({
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": { LABEL_RUN: k.run.to_string() }},
                    "topologyKey": "kubernetes.io/hostname",
                }]
            }
        });
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(&k.run, &node.name),
            "namespace": k.namespace,
            "labels": run_labels(&k.run, Some(&node.name)),
            "annotations": { ANNOTATION_HARNESS: k.harness },
        },
        "spec": spec,
    })
}

/// Chaos Mesh's API group and version of [`time_chaos`].
pub const CHAOS_MESH_API: &str = "chaos-mesh.org/v1alpha1";

/// `faultline-<run>-<node>-clock-<seq>`: the `seq`-th TimeChaos of a node.
pub fn time_chaos_name(run: &RunId, node: &NodeName, seq: u64) -> String {
    format!("{}-clock-{seq}", pod_name(run, node))
}

/// A Chaos Mesh TimeChaos shifting the wall clock (`CLOCK_REALTIME` only, as libfaketime
/// does for the Docker runtime) of the `node` container of one node's Pod by `offset_ms`,
/// until it is deleted (no duration). Chaos Mesh shifts the container's first process
/// (the agent) and its children at injection time: a program started later is not
/// shifted, so the runtime injects again after a start.
pub fn time_chaos(namespace: &str, node: &NodeRef, seq: u64, offset_ms: i64) -> Value {
    json!({
        "apiVersion": CHAOS_MESH_API,
        "kind": "TimeChaos",
        "metadata": {
            "name": time_chaos_name(&node.run, &node.name, seq),
            "namespace": namespace,
            "labels": run_labels(&node.run, Some(&node.name)),
        },
        "spec": {
            "mode": "all",
            "selector": {
                "namespaces": [namespace],
                "labelSelectors": {
                    LABEL_RUN: node.run.to_string(),
                    LABEL_NODE: node.name.to_string(),
                },
            },
            "containerNames": ["node"],
            "clockIds": ["CLOCK_REALTIME"],
            "timeOffset": format!("{offset_ms}ms"),
        },
    })
}

/// The harness run inside a cluster: a Job running `faultline` with a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarnessJob {
    /// The namespace of every object.
    pub namespace: String,
    /// The name of the Job, its ServiceAccount, Role, RoleBinding and ConfigMap.
    pub name: String,
    /// The image holding `faultline` at [`AGENT_IMAGE_PATH`] (the agent image).
    pub image: String,
    /// The plan file's text, mounted at `<PLAN_DIR>/plan.toml`.
    pub plan_toml: String,
    /// The command and its flags (`test`, or `verify --campaigns N --seed S`); the plan,
    /// the runtime, the store and the shard are added.
    pub args: Vec<String>,
    /// Run this many shards at once (an Indexed Job; `--shard <index>/N` each).
    pub shards: Option<usize>,
    /// A PersistentVolumeClaim to keep the store in (else an emptyDir, gone with the
    /// Pod).
    pub store_claim: Option<String>,
}

fn job_labels(name: &str) -> Value {
    json!({ LABEL_FAULTLINE: "1", LABEL_JOB: name })
}

/// The ServiceAccount the harness Job runs as.
pub fn service_account(j: &HarnessJob) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": j.name, "namespace": j.namespace, "labels": job_labels(&j.name)},
    })
}

/// What the harness may do in its namespace: create, watch and delete the runs' Pods,
/// Services, Secrets and ConfigMaps (the nodes' files) and Chaos Mesh TimeChaos objects
/// (clock faults, where Chaos Mesh is installed), and read the Pods' logs. Nothing
/// cluster-wide.
pub fn role(j: &HarnessJob) -> Value {
    let manage = ["create", "get", "list", "watch", "delete"];
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": j.name, "namespace": j.namespace, "labels": job_labels(&j.name)},
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "services", "secrets", "configmaps"], "verbs": manage},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
            // Clock faults through Chaos Mesh, when the cluster has it.
            {"apiGroups": ["chaos-mesh.org"], "resources": ["timechaos"], "verbs": manage},
        ],
    })
}

/// Binds [`role`] to [`service_account`].
pub fn role_binding(j: &HarnessJob) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": j.name, "namespace": j.namespace, "labels": job_labels(&j.name)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": j.name},
        "subjects": [{"kind": "ServiceAccount", "name": j.name, "namespace": j.namespace}],
    })
}

/// The plan as a ConfigMap (`plan.toml`).
pub fn config_map(j: &HarnessJob) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": j.name, "namespace": j.namespace, "labels": job_labels(&j.name)},
        "data": {"plan.toml": j.plan_toml},
    })
}

/// The Job running the harness: `faultline <args> --plan <PLAN_DIR>/plan.toml --runtime
/// kubernetes --k8s-agent-image <image> --store <STORE_DIR>` in its namespace
/// (`FAULTLINE_NAMESPACE`), speaking to the API with its service account's in-cluster
/// credentials (the token Kubernetes mounts into the Pod); with shards an Indexed Job of
/// N completions, all at once,
/// each Pod adding `--shard <its index>/N`. Never retried: a campaign that failed says
/// why in its log, and running it again is the user's call.
pub fn harness_job(j: &HarnessJob) -> Value {
    let mut args = j.args.clone();
    args.extend([
        "--plan".to_string(),
        format!("{PLAN_DIR}/plan.toml"),
        "--runtime".to_string(),
        "kubernetes".to_string(),
        "--k8s-agent-image".to_string(),
        j.image.clone(),
        "--store".to_string(),
        STORE_DIR.to_string(),
    ]);
    let mut env = vec![json!({
        "name": NAMESPACE_ENV,
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    })];
    if let Some(n) = j.shards {
        args.push("--shard".to_string());
        args.push(format!("$({SHARD_ENV})/{n}"));
        env.push(json!({
            "name": SHARD_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}},
        }));
    }
    let store = match &j.store_claim {
        Some(claim) => json!({"name": "store", "persistentVolumeClaim": {"claimName": claim}}),
        None => json!({"name": "store", "emptyDir": {}}),
    };
    let mut spec = json!({
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": job_labels(&j.name)},
            "spec": {
                "serviceAccountName": j.name,
                "restartPolicy": "Never",
                "containers": [{
                    "name": "faultline",
                    "image": j.image,
                    "command": [AGENT_IMAGE_PATH],
                    "args": args,
                    "env": env,
                    "volumeMounts": [
                        {"name": "plan", "mountPath": PLAN_DIR, "readOnly": true},
                        {"name": "store", "mountPath": STORE_DIR},
                    ],
                }],
                "volumes": [
                    {"name": "plan", "configMap": {"name": j.name}},
                    store,
                ],
            },
        },
    });
    if let Some(n) = j.shards {
        spec["completionMode"] = "Indexed".into();
        spec["completions"] = n.into();
        spec["parallelism"] = n.into();
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": j.name, "namespace": j.namespace, "labels": job_labels(&j.name)},
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Compares `value` with the golden file `testdata/<name>.json`, byte for byte;
    /// `FAULTLINE_UPDATE_GOLDEN=1` rewrites the file instead.
    fn golden(name: &str, value: &Value) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("src/runtime/kube/testdata")
            .join(format!("{name}.json"));
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(value).expect("serializes")
        );
        if std::env::var_os("FAULTLINE_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &text).expect("golden file written");
            return;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (FAULTLINE_UPDATE_GOLDEN=1 cargo test -p faultline-targets kube writes it)",
                path.display()
            )
        });
        assert_eq!(
            text,
            want,
            "{} differs (FAULTLINE_UPDATE_GOLDEN=1 rewrites it; review the diff)",
            path.display()
        );
    }

    #[test]
    fn a_time_chaos_shifts_one_nodes_wall_clock_until_deleted() {
        let node = NodeRef {
            run: run().run,
            name: NodeName::new("n2").expect("node name"),
        };
        let chaos = time_chaos("jepsen", &node, 3, -90_000);
        golden("timechaos", &chaos);
        assert_eq!(chaos["spec"]["timeOffset"], "-90000ms");
        assert!(
            chaos["spec"].get("duration").is_none(),
            "held until deleted"
        );
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

    fn node() -> KubeNode {
        KubeNode {
            name: NodeName::new("n2").expect("node name"),
            command: vec![
                "/usr/local/bin/mydb".into(),
                "--id".into(),
                "2".into(),
                "--peers".into(),
                "n1.faultline-r1764900000-42.jepsen.svc:7001,n3.faultline-r1764900000-42.jepsen.svc:7001".into(),
            ],
            env: vec![("FAKETIME_NO_CACHE".into(), "1".into())],
            ready: Some(ReadyProbe::health(7001)),
            files: vec![],
        }
    }

    fn job(shards: Option<usize>) -> HarnessJob {
        HarnessJob {
            namespace: "jepsen".into(),
            name: "faultline".into(),
            image: "registry.example/faultline:0.1".into(),
            plan_toml: "target = \"raft-register\"\nnodes = 5\ntime_limit = 60.0\n".into(),
            args: vec![
                "verify".into(),
                "--campaigns".into(),
                "50".into(),
                "--seed".into(),
                "7".into(),
            ],
            shards,
            store_claim: Some("faultline-store".into()),
        }
    }

    #[test]
    fn the_node_pod_matches_its_golden_file() {
        golden("pod", &node_pod(&run(), &node()));
    }

    #[test]
    fn a_node_with_files_gets_them_from_its_config_map_at_their_paths() {
        let mut n = node();
        assert_eq!(node_files(&run(), &n), None);
        n.files = vec![
            ("zoo.cfg".into(), "tickTime=200\n".into()),
            ("zk/myid".into(), "2\n".into()),
        ];
        let files = node_files(&run(), &n).expect("a ConfigMap");
        golden("node-files", &files);
        golden("pod-files", &node_pod(&run(), &n));
    }

    #[test]
    fn the_headless_service_and_the_token_secret_match_their_golden_files() {
        golden("service", &headless_service(&run()));
        golden("secret", &token_secret(&run(), "0123456789abcdef"));
    }

    #[test]
    fn the_harness_job_and_its_rbac_match_their_golden_files() {
        let j = job(None);
        golden("serviceaccount", &service_account(&j));
        golden("role", &role(&j));
        golden("rolebinding", &role_binding(&j));
        golden("configmap", &config_map(&j));
        golden("job", &harness_job(&j));
        golden("job-indexed", &harness_job(&job(Some(4))));
    }

    #[test]
    fn a_pod_is_found_by_its_run_labels_and_named_by_dns() {
        let k = run();
        let n = node();
        let pod = node_pod(&k, &n);
        let service = headless_service(&k);
        // The Service selects every Pod of the run, and the Pod's hostname and subdomain
        // make `<node>.<service>.<namespace>.svc` its name.
        for (key, value) in service["spec"]["selector"].as_object().expect("selector") {
            assert_eq!(&pod["metadata"]["labels"][key], value);
        }
        assert_eq!(pod["spec"]["subdomain"], service["metadata"]["name"]);
        assert_eq!(
            node_dns(&k, &n.name),
            format!(
                "{}.{}.jepsen.svc",
                pod["spec"]["hostname"].as_str().expect("hostname"),
                service["metadata"]["name"].as_str().expect("name")
            )
        );
        // Without anti-affinity the scheduler may put nodes together.
        let mut k2 = k.clone();
        k2.anti_affinity = false;
        assert!(node_pod(&k2, &n)["spec"].get("affinity").is_none());
        // A host command has no in-cluster readiness form.
        let mut n2 = n.clone();
        n2.ready = Some(ReadyProbe::Command {
            argv: vec!["true".into()],
        });
        assert!(node_pod(&k, &n2)["spec"]["containers"][0]
            .get("readinessProbe")
            .is_none());
    }

    #[test]
    fn the_agent_runs_the_program_after_its_own_flags() {
        let args = agent_args(&run(), &node());
        let split = args.iter().position(|a| a == "--").expect("--");
        assert_eq!(&args[split + 1..], node().command.as_slice());
        assert_eq!(
            &args[..split],
            &[
                "agent",
                "--listen",
                "0.0.0.0:7900",
                "--ip",
                "$(FAULTLINE_POD_IP)",
                "--clock-dir",
                "/faketime",
                "--faketime-lib",
                "/faultline/libfaketime.so.1",
                "--env",
                "FAKETIME_NO_CACHE=1"
            ]
        );
    }

    #[test]
    fn each_shard_of_an_indexed_job_runs_its_own_share() {
        let j = harness_job(&job(Some(4)));
        assert_eq!(j["spec"]["completionMode"], "Indexed");
        assert_eq!(j["spec"]["completions"], 4);
        assert_eq!(j["spec"]["parallelism"], 4);
        let args = &j["spec"]["template"]["spec"]["containers"][0]["args"];
        let args: Vec<&str> = args
            .as_array()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let at = args.iter().position(|a| *a == "--shard").expect("--shard");
        assert_eq!(args[at + 1], "$(FAULTLINE_SHARD)/4");
        let plain = harness_job(&job(None));
        assert!(plain["spec"].get("completionMode").is_none());
        assert!(!plain.to_string().contains("--shard"));
    }
}
