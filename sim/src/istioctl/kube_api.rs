//! The API client side: kubeconfig and context, discovery of each kind,
//! server-side apply, list, delete, and waiting for Deployments.

use super::{Global, IstioctlError};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Client, Config};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// The field manager istioctl's installer applies with (`operator/pkg/install`).
pub const FIELD_MANAGER: &str = "istio-operator";

/// A client for `--kubeconfig` (or `$KUBECONFIG`, or `~/.kube/config`) and
/// `--context` (or the current context), as istioctl builds one.
pub async fn connect(global: &Global) -> Result<Client, IstioctlError> {
    let kubeconfig = match &global.kubeconfig {
        Some(path) => Kubeconfig::read_from(path).map_err(|e| {
            IstioctlError::Kubeconfig(format!("cannot read {}: {e}", path.display()))
        })?,
        None => Kubeconfig::read().map_err(|e| {
            IstioctlError::Kubeconfig(format!("cannot read $KUBECONFIG or ~/.kube/config: {e}"))
        })?,
    };
    if let Some(context) = &global.context
        && !kubeconfig.contexts.iter().any(|c| &c.name == context)
    {
        return Err(IstioctlError::Kubeconfig(format!(
            "context {context:?} does not exist"
        )));
    }
    let opts = KubeConfigOptions {
        context: global.context.clone(),
        ..Default::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &opts)
        .await
        .map_err(|e| IstioctlError::Kubeconfig(e.to_string()))?;
    config.connect_timeout = Some(Duration::from_secs(10));
    Client::try_from(config).map_err(|e| IstioctlError::api("building the API client", e))
}

/// Retries a request answered with 500 or 502, as a client would that
/// survives a flaky API server (kube's own retry layer covers 429, 503 and
/// 504); the last error otherwise.
async fn server_retry<T, F, Fut>(mut request: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    const ATTEMPTS: u32 = 8;
    let mut delay = Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match request().await {
            Err(kube::Error::Api(s)) if matches!(s.code, 500 | 502) && attempt < ATTEMPTS => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// `apiVersion` split into group and version.
fn group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// "Deployment istio-system/istiod" for messages.
pub fn describe(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    match meta_str(obj, "namespace") {
        "" => format!("{kind} {}", meta_str(obj, "name")),
        ns => format!("{kind} {ns}/{}", meta_str(obj, "name")),
    }
}

/// The cluster's API, with each kind discovered once.
pub struct KubeApi {
    client: Client,
    kinds: HashMap<(String, String), Option<(ApiResource, ApiCapabilities)>>,
}

impl KubeApi {
    pub fn new(client: Client) -> Self {
        KubeApi {
            client,
            kinds: HashMap::new(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The resource serving `kind` in `api_version`, or None when the cluster does not serve it.
    pub async fn resolve(
        &mut self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<(ApiResource, ApiCapabilities)>, IstioctlError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.kinds.get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = group_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = match server_retry(|| kube::discovery::pinned_kind(&self.client, &gvk)).await {
            Ok(found) => Some(found),
            // Not served: the group version is unknown (404) or lacks the kind.
            Err(kube::Error::Api(s)) if s.code == 404 => None,
            Err(kube::Error::Discovery(_)) => None,
            Err(e) => {
                return Err(IstioctlError::api(
                    format!("discovering {kind} ({api_version})"),
                    e,
                ));
            }
        };
        self.kinds.insert(key, found.clone());
        Ok(found)
    }

    async fn api_for(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<(Api<DynamicObject>, Scope), IstioctlError> {
        let (ar, caps) =
            self.resolve(api_version, kind)
                .await?
                .ok_or_else(|| IstioctlError::NotServed {
                    api_version: api_version.into(),
                    kind: kind.into(),
                })?;
        let api = match (&caps.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        };
        Ok((api, caps.scope))
    }

    fn api_version_kind(obj: &Value) -> (String, String) {
        (
            obj.get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            obj.get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        )
    }

    /// The live object, if any.
    pub async fn get(&mut self, obj: &Value) -> Result<Option<DynamicObject>, IstioctlError> {
        let (api_version, kind) = Self::api_version_kind(obj);
        let ns = Some(meta_str(obj, "namespace")).filter(|n| !n.is_empty());
        let (api, _) = self.api_for(&api_version, &kind, ns).await?;
        server_retry(|| api.get_opt(meta_str(obj, "name")))
            .await
            .map_err(|e| IstioctlError::api(format!("reading {}", describe(obj)), e))
    }

    /// Server-side apply with istioctl's field manager, taking over conflicting fields.
    pub async fn apply(&mut self, obj: &Value) -> Result<DynamicObject, IstioctlError> {
        self.apply_as(obj, FIELD_MANAGER).await
    }

    /// Server-side apply (forced) as `manager`.
    pub async fn apply_as(
        &mut self,
        obj: &Value,
        manager: &str,
    ) -> Result<DynamicObject, IstioctlError> {
        let (api_version, kind) = Self::api_version_kind(obj);
        let ns = Some(meta_str(obj, "namespace")).filter(|n| !n.is_empty());
        let (api, _) = self.api_for(&api_version, &kind, ns).await?;
        let params = PatchParams::apply(manager).force();
        let patch = Patch::Apply(obj);
        server_retry(|| api.patch(meta_str(obj, "name"), &params, &patch))
            .await
            .map_err(|e| IstioctlError::api(format!("applying {}", describe(obj)), e))
    }

    /// Creates the object unless it exists (true when it was created).
    pub async fn create_if_absent(&mut self, obj: &Value) -> Result<bool, IstioctlError> {
        if self.get(obj).await?.is_some() {
            return Ok(false);
        }
        let (api_version, kind) = Self::api_version_kind(obj);
        let ns = Some(meta_str(obj, "namespace")).filter(|n| !n.is_empty());
        let (api, _) = self.api_for(&api_version, &kind, ns).await?;
        let body: DynamicObject =
            serde_json::from_value(obj.clone()).map_err(|e| IstioctlError::BadFile {
                path: describe(obj),
                message: e.to_string(),
            })?;
        let params = Default::default();
        match server_retry(|| api.create(&params, &body)).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(IstioctlError::api(format!("creating {}", describe(obj)), e)),
        }
    }

    /// Every object of a kind (in all namespaces) matching a label selector;
    /// empty when the cluster does not serve the kind.
    pub async fn list(
        &mut self,
        api_version: &str,
        kind: &str,
        selector: &str,
    ) -> Result<Vec<DynamicObject>, IstioctlError> {
        if self.resolve(api_version, kind).await?.is_none() {
            return Ok(Vec::new());
        }
        let (api, _) = self.api_for(api_version, kind, None).await?;
        let params = ListParams::default().labels(selector);
        let list = server_retry(|| api.list(&params))
            .await
            .map_err(|e| IstioctlError::api(format!("listing {kind} ({selector})"), e))?;
        Ok(list.items)
    }

    /// Deletes one object; a 404 is success (someone else was quicker).
    pub async fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, IstioctlError> {
        let (api, _) = self.api_for(api_version, kind, namespace).await?;
        let params = DeleteParams::background();
        match server_retry(|| api.delete(name, &params)).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(IstioctlError::api(
                format!(
                    "deleting {kind} {}{name}",
                    namespace.map(|n| format!("{n}/")).unwrap_or_default()
                ),
                e,
            )),
        }
    }

    /// Waits (on watch events) until the Deployment has rolled out: the
    /// current generation observed, every replica updated and available.
    pub async fn wait_deployment(
        &mut self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), IstioctlError> {
        let (api, _) = self
            .api_for("apps/v1", "Deployment", Some(namespace))
            .await?;
        let what = format!("Deployment {namespace}/{name}");
        let deadline = tokio::time::Instant::now() + timeout;
        // A watch that fails to start (a 500 on its list) is started again until the deadline.
        let mut failures = 0;
        loop {
            let wait = kube::runtime::wait::await_condition(
                api.clone(),
                name,
                |d: Option<&DynamicObject>| {
                    d.is_some_and(|d| deployment_ready(d.metadata.generation, &d.data))
                },
            );
            match tokio::time::timeout_at(deadline, wait).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => {
                    failures += 1;
                    if failures >= 8 {
                        return Err(IstioctlError::Watch {
                            what,
                            message: e.to_string(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(_) => {
                    return Err(IstioctlError::NotReady {
                        what,
                        seconds: timeout.as_secs(),
                    });
                }
            }
        }
    }
}

/// A Deployment whose current spec has rolled out completely.
pub fn deployment_ready(generation: Option<i64>, data: &Value) -> bool {
    let int = |path: &str| data.pointer(path).and_then(Value::as_i64);
    let want = int("/spec/replicas").unwrap_or(1);
    let observed = int("/status/observedGeneration").unwrap_or(0);
    observed >= generation.unwrap_or(1)
        && int("/status/updatedReplicas").unwrap_or(0) >= want
        && int("/status/availableReplicas").unwrap_or(0) >= want
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_needs_the_current_generation_and_every_replica() {
        let spec = json!({"spec": {"replicas": 2}, "status": {"observedGeneration": 3, "updatedReplicas": 2, "availableReplicas": 2}});
        assert!(deployment_ready(Some(3), &spec));
        assert!(!deployment_ready(Some(4), &spec));
        let short = json!({"spec": {"replicas": 2}, "status": {"observedGeneration": 3, "updatedReplicas": 2, "availableReplicas": 1}});
        assert!(!deployment_ready(Some(3), &short));
        assert!(deployment_ready(
            Some(1),
            &json!({"spec": {"replicas": 0}, "status": {"observedGeneration": 1}})
        ));
        assert_eq!(group_version("apps/v1"), ("apps", "v1"));
        assert_eq!(group_version("v1"), ("", "v1"));
    }
}
