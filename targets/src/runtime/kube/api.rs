//! The Kubernetes API over plain HTTP (`kubectl proxy`, which holds the credentials, or
//! any base URL): create the objects of [`super::manifest`], read a Pod, its log, and
//! delete objects one by one or a run's objects by label. [`deploy`] creates a list of
//! objects in order and, when one fails, deletes those it created before returning the
//! error; [`teardown_run`] deletes every object labelled with a run.

use serde_json::Value;

use crate::runtime::error::RuntimeError;
use crate::runtime::names::{RunId, LABEL_RUN};

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

/// `/api/v1/namespaces/<ns>/pods`, `/apis/batch/v1/namespaces/<ns>/jobs`, ...: the
/// path of the namespaced kinds faultline creates.
pub fn collection_path(
    api_version: &str,
    kind: &str,
    namespace: &str,
) -> Result<String, RuntimeError> {
    let plural = match kind {
        "Pod" => "pods",
        "Service" => "services",
        "Secret" => "secrets",
        "ConfigMap" => "configmaps",
        "ServiceAccount" => "serviceaccounts",
        "Job" => "jobs",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        other => {
            return Err(RuntimeError::Api {
                op: format!("address kind {other}"),
                status: None,
                message: "not a kind faultline creates".into(),
            })
        }
    };
    let group = if api_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{api_version}")
    };
    Ok(format!("{group}/namespaces/{namespace}/{plural}"))
}

/// A client of the API at a base URL (`http://127.0.0.1:8001` for `kubectl proxy`).
#[derive(Debug, Clone)]
pub struct KubeApi {
    base: String,
    http: reqwest::Client,
}

/// The message of a failed call: the API's `Status.message` when it sent one.
async fn failure(op: String, response: reqwest::Response) -> RuntimeError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or(body);
    RuntimeError::Api {
        op,
        status: Some(status),
        message,
    }
}

fn transport(op: String, e: reqwest::Error) -> RuntimeError {
    RuntimeError::Api {
        op,
        status: None,
        message: e.to_string(),
    }
}

impl KubeApi {
    /// A client of the API at `base` (no trailing slash needed).
    pub fn new(base: &str) -> Result<Self, RuntimeError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| transport("build the HTTP client".into(), e))?;
        Ok(KubeApi {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// Creates `object` (POST to its collection).
    pub async fn create(&self, object: &Value) -> Result<ObjectRef, RuntimeError> {
        let r = ObjectRef::of(object).ok_or_else(|| RuntimeError::Api {
            op: "create an object".into(),
            status: None,
            message: "it lacks apiVersion, kind, metadata.namespace or metadata.name".into(),
        })?;
        let op = format!("create {r}");
        let url = format!("{}{}", self.base, r.collection()?);
        let response = self
            .http
            .post(url)
            .json(object)
            .send()
            .await
            .map_err(|e| transport(op.clone(), e))?;
        if response.status().is_success() {
            Ok(r)
        } else {
            Err(failure(op, response).await)
        }
    }

    /// Deletes one object; one already gone (404) counts as deleted.
    pub async fn delete(&self, r: &ObjectRef) -> Result<(), RuntimeError> {
        let op = format!("delete {r}");
        let url = format!("{}{}/{}", self.base, r.collection()?, r.name);
        let response = self
            .http
            .delete(url)
            .send()
            .await
            .map_err(|e| transport(op.clone(), e))?;
        if response.status().is_success() || response.status().as_u16() == 404 {
            Ok(())
        } else {
            Err(failure(op, response).await)
        }
    }

    /// Deletes every object of `kind` (`v1` kinds) in `namespace` labelled with `run`.
    pub async fn delete_run_objects(
        &self,
        kind: &str,
        namespace: &str,
        run: &RunId,
    ) -> Result<(), RuntimeError> {
        let op = format!("delete the {kind}s of run {run} in {namespace}");
        let url = format!(
            "{}{}?labelSelector={LABEL_RUN}%3D{run}",
            self.base,
            collection_path("v1", kind, namespace)?
        );
        let response = self
            .http
            .delete(url)
            .send()
            .await
            .map_err(|e| transport(op.clone(), e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(failure(op, response).await)
        }
    }

    /// The object at `path` (below the base URL) as JSON; `None` when the API answers
    /// 404. `op` names the call in errors.
    pub async fn get_json(&self, op: &str, path: &str) -> Result<Option<Value>, RuntimeError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| transport(op.to_string(), e))?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(failure(op.to_string(), response).await);
        }
        response
            .json()
            .await
            .map(Some)
            .map_err(|e| transport(op.to_string(), e))
    }

    /// The objects of `kind` (`v1` kinds) in `namespace` whose labels match `selector`
    /// (`faultline=1`, `faultline.run=<id>`): the list's `items`.
    pub async fn list(
        &self,
        kind: &str,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Value>, RuntimeError> {
        let op = format!("list the {kind}s labelled {selector} in {namespace}");
        let path = format!(
            "{}?labelSelector={}",
            collection_path("v1", kind, namespace)?,
            selector.replace('=', "%3D")
        );
        let list = self.get_json(&op, &path).await?.unwrap_or(Value::Null);
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// The base URL this client speaks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A Pod as the API has it (its `status.phase`, `status.podIP`, conditions...).
    pub async fn pod(&self, namespace: &str, name: &str) -> Result<Value, RuntimeError> {
        let op = format!("read Pod {namespace}/{name}");
        let url = format!("{}/api/v1/namespaces/{namespace}/pods/{name}", self.base);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| transport(op.clone(), e))?;
        if !response.status().is_success() {
            return Err(failure(op, response).await);
        }
        response.json().await.map_err(|e| transport(op, e))
    }

    /// The log of a Pod's container (`node`): the last `tail` lines, or all.
    pub async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        tail: Option<usize>,
    ) -> Result<Vec<u8>, RuntimeError> {
        let op = format!("read the log of Pod {namespace}/{pod}");
        let mut url = format!(
            "{}/api/v1/namespaces/{namespace}/pods/{pod}/log?container=node",
            self.base
        );
        if let Some(n) = tail {
            url.push_str(&format!("&tailLines={n}"));
        }
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| transport(op.clone(), e))?;
        if !response.status().is_success() {
            return Err(failure(op, response).await);
        }
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| transport(op, e))
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

/// Deletes every object of `run` in `namespace` (its Pods, Service, Secret and the nodes'
/// ConfigMaps, by the run label); tries each kind even when one fails, and returns the
/// first failure.
pub async fn teardown_run(api: &KubeApi, namespace: &str, run: &RunId) -> Result<(), RuntimeError> {
    let mut first = None;
    for kind in RUN_KINDS {
        if let Err(e) = api.delete_run_objects(kind, namespace, run).await {
            tracing::warn!("{e}");
            first.get_or_insert(e);
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
