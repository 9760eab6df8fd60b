//! Kubernetes objects of faultline, as data (pure; no API client): the objects a
//! Kubernetes runtime creates per run (a headless Service giving every node a stable DNS
//! name, the run's agent token as a Secret, one Pod per node whose entry point is the
//! node agent, delivered into any image by an init container), and the objects that run
//! the harness itself inside a cluster (ServiceAccount, Role, RoleBinding, the plan as a
//! ConfigMap, and a Job, Indexed for sharded verification).
//!
//! [`KubeApi`] speaks to the API through kube-rs, with the credentials of the usual
//! kubeconfig or of the Pod the harness runs in (or to a URL that needs none, such as
//! `kubectl proxy`'s): [`deploy`] creates a run's objects in order and deletes what it
//! created when one fails midway; [`teardown_run`] deletes a run's objects by label.
//!
//! Every object carries the run labels the Docker runtime puts on its containers
//! (`faultline=1`, `faultline.run=<id>`, `faultline.node=<name>`), so that clean-up can
//! select a run's objects by label. The generated objects are compared with the golden
//! files in `testdata/` (`FAULTLINE_UPDATE_GOLDEN=1 cargo test -p faultline-targets
//! kube` rewrites them; review the diff).

mod api;
mod manifest;
mod runtime;

pub use api::{
    collection_path, deploy, pod_readiness, teardown_run, ApiSource, KubeApi, ObjectRef, RUN_KINDS,
};

pub use runtime::{
    KubeConfig, KubeRuntime, DEFAULT_KUBE_API, DEFAULT_NAMESPACE, KUBE_API_ENV, NAMESPACE_ENV,
};

pub use manifest::{
    agent_args, config_map, harness_job, headless_service, node_dns, node_files, node_pod,
    pod_name, role, role_binding, run_labels, service_account, service_name, time_chaos,
    time_chaos_name, token_secret, HarnessJob, KubeNode, KubeRun, AGENT_BIN_DIR,
    AGENT_FAKETIME_LIB, AGENT_IMAGE_PATH, CHAOS_MESH_API, PLAN_DIR, STORE_DIR,
};
