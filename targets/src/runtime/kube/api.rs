//! The Kubernetes API through kube-rs: where the API is and with which credentials
//! ([`KubeApi::connect`]: a kubeconfig, the in-cluster service account, or a plain URL
//! such as `kubectl proxy`'s), creating the objects of [`super::manifest`], reading a
//! Pod and its log, and deleting objects one by one or a run's objects by label.
//! [`deploy`] creates a list of objects in order and, when one fails, deletes those it
//! created before returning the error; [`teardown_run`] deletes every object labelled
//! with a run.

use std::time::Duration;

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams,
    PostParams,
};
use serde_json::Value;

use crate::runtime::error::RuntimeError;
use crate::runtime::names::{RunId, LABEL_RUN};

/// How long one call to the API may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One object the API holds: enough to delete it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `v1`, `batch/v1`, `rbac.authorization.k8s.io/v1`.
    pub api_version: String,
    /// `Pod`, `Service`, ...
    pub kind: String,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectRef {
    /// The reference of an object as [`super::manifest`] builds it; `None` when it
    /// lacks its apiVersion, kind, namespace or name.
    pub fn of(object: &Value) -> Option<ObjectRef> {
        let text = |v: &Value| v.as_str().map(str::to_string);
        Some(ObjectRef {
            api_version: text(&object["apiVersion"])?,
            kind: text(&object["kind"])?,
            namespace: text(&object["metadata"]["namespace"])?,
            name: text(&object["metadata"]["name"])?,
        })
    }

    /// The collection path of its kind in its namespace.
    pub fn collection(&self) -> Result<String, RuntimeError> {
        collection_path(&self.api_version, &self.kind, &self.namespace)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// The plural (the resource name in URLs) of the kinds faultline creates.
fn plural(kind: &str) -> Result<&'static str, RuntimeError> {
    Ok(match kind {
        "Pod" => "pods",
        "Service" => "services",
        "Secret" => "secrets",
        "ConfigMap" => "configmaps",
        "ServiceAccount" => "serviceaccounts",
        "Job" => "jobs",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "TimeChaos" => "timechaos",
        other => {
            return Err(RuntimeError::Api {
                op: format!("address kind {other}"),
                status: None,
                message: "not a kind faultline creates".into(),
            })
        }
    })
}

/// The resource of `kind` in `api_version` (`v1`, `group/version`), as kube-rs
/// addresses it.
fn resource(api_version: &str, kind: &str) -> Result<ApiResource, RuntimeError> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Ok(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural(kind)?,
    ))
}

/// `/api/v1/namespaces/<ns>/pods`, `/apis/batch/v1/namespaces/<ns>/jobs`, ...: the
/// path of the namespaced kinds faultline creates.
pub fn collection_path(
    api_version: &str,
    kind: &str,
    namespace: &str,
) -> Result<String, RuntimeError> {
    let plural = plural(kind)?;
    let group = if api_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{api_version}")
    };
    Ok(format!("{group}/namespaces/{namespace}/{plural}"))
}

/// Where the API is and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiSource {
    /// A URL that needs no credentials: `kubectl proxy` (which holds them), or a test's
    /// fake API.
    Url(String),
    /// The usual configuration: the kubeconfig of `KUBECONFIG` (or `~/.kube/config`)
    /// and its current context, else the in-cluster service account of the Pod the
    /// harness runs in.
    Inferred,
}

/// A client of the Kubernetes API (kube-rs), with the configuration it came from (to
/// connect again from another thread's runtime, see [`KubeApi::reconnect`]).
#[derive(Clone)]
pub struct KubeApi {
    client: kube::Client,
    config: kube::Config,
}

impl std::fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApi")
            .field("cluster", &self.config.cluster_url.to_string())
            .field("default_namespace", &self.config.default_namespace)
            .finish()
    }
}

/// A failed call: the API's `Status` (code and message) when it answered, else the
/// transport's error.
fn api_error(op: String, e: kube::Error) -> RuntimeError {
    match e {
        kube::Error::Api(status) => RuntimeError::Api {
            op,
            // The API's Status carries its HTTP code; 0 when a server left it out.
            status: (status.code != 0).then_some(status.code),
            message: if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            },
        },
        other => RuntimeError::Api {
            op,
            status: None,
            message: error_chain(&other),
        },
    }
}

/// An error with its sources (`error trying to connect: tcp connect error: Connection
/// refused`), as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Whether `e` is the API's 404.
fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl KubeApi {
    /// Connects as `source` says (nothing is called yet; a missing kubeconfig and no
    /// in-cluster service account is [`RuntimeError::Unavailable`], saying what to do).
    /// Must run inside a tokio runtime.
    pub async fn connect(source: &ApiSource) -> Result<KubeApi, RuntimeError> {
        let mut config = match source {
            ApiSource::Url(url) => {
                let uri: http::Uri = url.parse().map_err(|e| RuntimeError::Unavailable {
                    runtime: "kubernetes",
                    reason: format!("the Kubernetes API URL {url:?} is not a URL: {e}"),
                })?;
                kube::Config::new(uri)
            }
            ApiSource::Inferred => {
                kube::Config::infer()
                    .await
                    .map_err(|e| RuntimeError::Unavailable {
                        runtime: "kubernetes",
                        reason: format!(
                            "no Kubernetes credentials found ({}): point KUBECONFIG at your \
                             cluster's kubeconfig (or write ~/.kube/config), run the harness in \
                             the cluster (the Job of `faultline k8s manifest`), or give an API \
                             URL that needs none with --kube-api URL (`kubectl proxy` serves \
                             one at http://127.0.0.1:8001)",
                            error_chain(&e)
                        ),
                    })?
            }
        };
        config.read_timeout = Some(CALL_TIMEOUT);
        Self::from_config(config)
    }

    fn from_config(config: kube::Config) -> Result<KubeApi, RuntimeError> {
        let client =
            kube::Client::try_from(config.clone()).map_err(|e| RuntimeError::Unavailable {
                runtime: "kubernetes",
                reason: format!(
                    "cannot make a client of the Kubernetes API at {}: {}",
                    config.cluster_url,
                    error_chain(&e)
                ),
            })?;
        Ok(KubeApi { client, config })
    }

    /// A new client with the same configuration, bound to the tokio runtime it is
    /// called in (a client serves only while the runtime that made it runs).
    pub fn reconnect(&self) -> Result<KubeApi, RuntimeError> {
        Self::from_config(self.config.clone())
    }

    /// The API's URL.
    pub fn base(&self) -> String {
        self.config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string()
    }

    /// The namespace of the configuration: the kubeconfig context's, the service
    /// account's, else `default`.
    pub fn default_namespace(&self) -> &str {
        &self.config.default_namespace
    }

    fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<Api<DynamicObject>, RuntimeError> {
        Ok(Api::namespaced_with(
            self.client.clone(),
            namespace,
            &resource(api_version, kind)?,
        ))
    }

    /// The API server's version (`v1.30.2`).
    pub async fn version(&self) -> Result<String, RuntimeError> {
        self.client
            .apiserver_version()
            .await
            .map(|info| info.git_version)
            .map_err(|e| api_error("read the API's version".into(), e))
    }

    /// Whether `namespace` exists; `None` when the credentials may not read namespaces
    /// (a harness whose Role covers its own namespace only).
    pub async fn namespace_exists(&self, namespace: &str) -> Result<Option<bool>, RuntimeError> {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("", "v1", "Namespace"),
            "namespaces",
        );
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &ar);
        match api.get_opt(namespace).await {
            Ok(found) => Ok(Some(found.is_some())),
            Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
            Err(e) => Err(api_error(format!("read namespace {namespace}"), e)),
        }
    }

    /// Whether the API serves `group_version` (`chaos-mesh.org/v1alpha1`): its
    /// discovery document answers.
    pub async fn serves(&self, group_version: &str) -> Result<bool, RuntimeError> {
        let op = format!("discover {group_version}");
        match self.client.list_api_group_resources(group_version).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(api_error(op, e)),
        }
    }

    /// Creates `object` (its apiVersion, kind, namespace and name say where).
    pub async fn create(&self, object: &Value) -> Result<ObjectRef, RuntimeError> {
        let r = ObjectRef::of(object).ok_or_else(|| RuntimeError::Api {
            op: "create an object".into(),
            status: None,
            message: "it lacks apiVersion, kind, metadata.namespace or metadata.name".into(),
        })?;
        let op = format!("create {r}");
        let dynamic: DynamicObject =
            serde_json::from_value(object.clone()).map_err(|e| RuntimeError::Api {
                op: op.clone(),
                status: None,
                message: format!("not an object: {e}"),
            })?;
        self.api(&r.api_version, &r.kind, &r.namespace)?
            .create(&PostParams::default(), &dynamic)
            .await
            .map_err(|e| api_error(op, e))?;
        Ok(r)
    }

    /// Deletes one object; one already gone (404) counts as deleted.
    pub async fn delete(&self, r: &ObjectRef) -> Result<(), RuntimeError> {
        match self
            .api(&r.api_version, &r.kind, &r.namespace)?
            .delete(&r.name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(api_error(format!("delete {r}"), e)),
        }
    }

    /// The objects of `kind` (in `api_version`) in `namespace` whose labels match
    /// `selector` (`faultline=1`, `faultline.run=<id>`).
    pub async fn list_in(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Value>, RuntimeError> {
        let op = format!("list the {kind}s labelled {selector} in {namespace}");
        let list = self
            .api(api_version, kind, namespace)?
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| api_error(op.clone(), e))?;
        list.items
            .into_iter()
            .map(|o| {
                serde_json::to_value(o).map_err(|e| RuntimeError::Api {
                    op: op.clone(),
                    status: None,
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// The objects of `kind` (`v1` kinds) in `namespace` whose labels match `selector`.
    pub async fn list(
        &self,
        kind: &str,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Value>, RuntimeError> {
        self.list_in("v1", kind, namespace, selector).await
    }

    /// Deletes every object of `kind` (in `api_version`) in `namespace` whose labels
    /// match `selector`: each one listed, then deleted by name (what every API version
    /// serves; a Service collection cannot be deleted at once before Kubernetes 1.28).
    /// Listed items are addressed by the kind asked for: an API server leaves apiVersion
    /// and kind out of the items of a built-in kind's list.
    pub async fn delete_labelled(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        selector: &str,
    ) -> Result<(), RuntimeError> {
        let mut first = None;
        for object in self.list_in(api_version, kind, namespace, selector).await? {
            let Some(name) = object["metadata"]["name"].as_str() else {
                continue;
            };
            let r = ObjectRef {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                namespace: namespace.to_string(),
                name: name.to_string(),
            };
            if let Err(e) = self.delete(&r).await {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A Pod as the API has it (its `status.phase`, `status.podIP`, conditions...).
    pub async fn pod(&self, namespace: &str, name: &str) -> Result<Value, RuntimeError> {
        let op = format!("read Pod {namespace}/{name}");
        let pod = self
            .api("v1", "Pod", namespace)?
            .get(name)
            .await
            .map_err(|e| api_error(op.clone(), e))?;
        serde_json::to_value(pod).map_err(|e| RuntimeError::Api {
            op,
            status: None,
            message: e.to_string(),
        })
    }

    /// The log of a Pod's container (`node`): the last `tail` lines, or all.
    pub async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        tail: Option<usize>,
    ) -> Result<Vec<u8>, RuntimeError> {
        let op = format!("read the log of Pod {namespace}/{pod}");
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: Some("node".to_string()),
            tail_lines: tail.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            ..LogParams::default()
        };
        // As bytes: a program's output need not be UTF-8.
        let mut stream = pods
            .log_stream(pod, &params)
            .await
            .map_err(|e| api_error(op.clone(), e))?;
        let mut bytes = Vec::new();
        futures_util::AsyncReadExt::read_to_end(&mut stream, &mut bytes)
            .await
            .map_err(|e| RuntimeError::Api {
                op,
                status: None,
                message: e.to_string(),
            })?;
        Ok(bytes)
    }
}

/// Whether a Pod as the API returns it is ready (its `Ready` condition is `True`), and
/// its IP once it has one.
pub fn pod_readiness(pod: &Value) -> (bool, Option<String>) {
    let ready = pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    let ip = pod["status"]["podIP"].as_str().map(str::to_string);
    (ready, ip)
}

/// Creates `objects` in order. When one cannot be created, deletes the ones created
/// before it (newest first; a failed deletion is logged) and returns the creation's
/// error: a run that cannot start leaves nothing behind.
pub async fn deploy(api: &KubeApi, objects: &[Value]) -> Result<Vec<ObjectRef>, RuntimeError> {
    let mut created = Vec::new();
    for object in objects {
        match api.create(object).await {
            Ok(r) => created.push(r),
            Err(e) => {
                for r in created.iter().rev() {
                    if let Err(d) = api.delete(r).await {
                        tracing::warn!("rolling back: {d}");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(created)
}

/// The kinds of a run's objects, in the order [`teardown_run`] deletes them.
pub const RUN_KINDS: [&str; 4] = ["Pod", "Service", "Secret", "ConfigMap"];

/// Deletes every object of `run` in `namespace` (its Chaos Mesh TimeChaos objects, Pods,
/// Service, Secret and the nodes' ConfigMaps, by the run label); tries each kind even
/// when one fails, and returns the first failure.
pub async fn teardown_run(api: &KubeApi, namespace: &str, run: &RunId) -> Result<(), RuntimeError> {
    let selector = format!("{LABEL_RUN}={run}");
    let mut first = None;
    // Clock faults first, while their Pods still run for Chaos Mesh to put the clocks
    // back. A cluster without Chaos Mesh does not serve the kind (404), and a harness
    // that may not read it (403) cannot have made any.
    match api
        .delete_labelled(
            super::manifest::CHAOS_MESH_API,
            "TimeChaos",
            namespace,
            &selector,
        )
        .await
    {
        Ok(()) => {}
        Err(RuntimeError::Api {
            status: Some(403 | 404),
            ..
        }) => {}
        Err(e) => {
            tracing::warn!("{e}");
            first = Some(e);
        }
    }
    for kind in RUN_KINDS {
        if let Err(e) = api.delete_labelled("v1", kind, namespace, &selector).await {
            tracing::warn!("{e}");
            first.get_or_insert(e);
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
