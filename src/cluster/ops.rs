//! The primitive operations on one cluster.

use super::{Cluster, ClusterError, clean_for_restore};
use crate::object::ObjectRef;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, PostParams,
    ValidationDirective,
};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use serde_json::{Value, json};

/// The field manager of every write `migrate` makes.
pub const FIELD_MANAGER: &str = "migrate";

/// What restoring a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// The object did not exist before and was deleted.
    Deleted,
    /// It did not exist before and does not exist now.
    AlreadyAbsent,
    /// It was recreated from the snapshot.
    Recreated,
    /// Its content was put back.
    Replaced,
}

impl Cluster {
    /// A dynamic API for the key's kind, resolving (and caching) its resource.
    pub async fn api_for(&self, key: &ObjectRef) -> Result<Api<DynamicObject>, ClusterError> {
        let (group, version) = key.group_version();
        let cache_key = (key.api_version.clone(), key.kind.clone());
        let cached = self
            .kinds
            .lock()
            .ok()
            .and_then(|m| m.get(&cache_key).cloned());
        let (resource, caps) = match cached {
            Some(found) => found,
            None => {
                let gvk = GroupVersionKind::gvk(group, version, &key.kind);
                let found = pinned_kind(&self.client, &gvk).await.map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 404 => self.unknown_kind(key),
                    kube::Error::Discovery(_) => self.unknown_kind(key),
                    other => ClusterError::from_kube(&self.name, &key.to_string(), other),
                })?;
                if let Ok(mut map) = self.kinds.lock() {
                    map.insert(cache_key, found.clone());
                }
                found
            }
        };
        Ok(match (caps.scope, &key.namespace) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            (Scope::Namespaced, None) => {
                return Err(ClusterError::Invalid {
                    cluster: self.name.clone(),
                    object: key.to_string(),
                    message: format!(
                        "{} is namespaced: the object needs metadata.namespace",
                        key.kind
                    ),
                });
            }
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &resource),
        })
    }

    fn unknown_kind(&self, key: &ObjectRef) -> ClusterError {
        ClusterError::UnknownKind {
            cluster: self.name.clone(),
            api_version: key.api_version.clone(),
            kind: key.kind.clone(),
        }
    }

    fn err(&self, key: &ObjectRef, e: kube::Error) -> ClusterError {
        ClusterError::from_kube(&self.name, &key.to_string(), e)
    }

    fn to_value(&self, key: &ObjectRef, obj: DynamicObject) -> Result<Value, ClusterError> {
        serde_json::to_value(obj).map_err(|e| ClusterError::Invalid {
            cluster: self.name.clone(),
            object: key.to_string(),
            message: format!("unreadable object: {e}"),
        })
    }

    fn parse_object(&self, key: &ObjectRef, object: &Value) -> Result<DynamicObject, ClusterError> {
        serde_json::from_value(object.clone()).map_err(|e| ClusterError::Invalid {
            cluster: self.name.clone(),
            object: key.to_string(),
            message: format!("not a Kubernetes object: {e}"),
        })
    }

    fn key_of(&self, object: &Value) -> Result<ObjectRef, ClusterError> {
        ObjectRef::of(object).ok_or_else(|| ClusterError::Invalid {
            cluster: self.name.clone(),
            object: "object".into(),
            message: "apiVersion, kind and metadata.name are required".into(),
        })
    }

    /// The live object, or None when it does not exist.
    pub async fn get(&self, key: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let api = self.api_for(key).await?;
        match api.get_opt(&key.name).await {
            Ok(Some(obj)) => Ok(Some(self.to_value(key, obj)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// Objects of a kind in a namespace (None: all namespaces, or cluster
    /// scope), optionally filtered by a label selector.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let key = ObjectRef::new(api_version, kind, namespace, "*");
        let api = match namespace {
            Some(_) => self.api_for(&key).await?,
            None => {
                // all namespaces: resolve with a placeholder namespace, then widen.
                let probe = ObjectRef::new(api_version, kind, Some("default"), "*");
                let _ = self.api_for(&probe).await?;
                let cached = self
                    .kinds
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&(api_version.to_string(), kind.to_string())).cloned());
                match cached {
                    Some((resource, _)) => Api::all_with(self.client.clone(), &resource),
                    None => return Err(self.unknown_kind(&key)),
                }
            }
        };
        let mut params = ListParams::default();
        if let Some(selector) = label_selector {
            params = params.labels(selector);
        }
        let list = api.list(&params).await.map_err(|e| self.err(&key, e))?;
        list.items
            .into_iter()
            .map(|o| self.to_value(&key, o))
            .collect()
    }

    /// Server-side apply with field manager `migrate`, force (migrate takes
    /// over the fields it sets, from istioctl or kubectl), and strict field
    /// validation so a typo in a generated object fails loudly.
    pub async fn apply(&self, object: &Value, dry_run: bool) -> Result<Value, ClusterError> {
        let key = self.key_of(object)?;
        let api = self.api_for(&key).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        params.field_validation = Some(ValidationDirective::Strict);
        let applied = api
            .patch(&key.name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| self.err(&key, e))?;
        self.to_value(&key, applied)
    }

    /// Creates the object; an existing one is an error (409 AlreadyExists).
    pub async fn create(&self, object: &Value) -> Result<Value, ClusterError> {
        let key = self.key_of(object)?;
        let api = self.api_for(&key).await?;
        let obj = self.parse_object(&key, object)?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let created = api
            .create(&params, &obj)
            .await
            .map_err(|e| self.err(&key, e))?;
        self.to_value(&key, created)
    }

    /// Deletes the object if present (background propagation); true if it existed.
    pub async fn delete(&self, key: &ObjectRef) -> Result<bool, ClusterError> {
        let api = self.api_for(key).await?;
        match api.delete(&key.name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(self.err(key, e)),
        }
    }

    /// JSON merge patch (labels, annotations, a field or two).
    pub async fn merge_patch(&self, key: &ObjectRef, patch: &Value) -> Result<Value, ClusterError> {
        let api = self.api_for(key).await?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let patched = api
            .patch(&key.name, &params, &Patch::Merge(patch))
            .await
            .map_err(|e| self.err(key, e))?;
        self.to_value(key, patched)
    }

    /// Sets replicas through the scale subresource.
    pub async fn scale(&self, key: &ObjectRef, replicas: i32) -> Result<(), ClusterError> {
        let api = self.api_for(key).await?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch_scale(
            &key.name,
            &params,
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .map_err(|e| self.err(key, e))?;
        Ok(())
    }

    /// Puts an object back the way a snapshot recorded it: `None` means it
    /// did not exist, so it is deleted. The whole object is replaced (PUT),
    /// so fields `migrate` added by any means disappear.
    pub async fn restore(
        &self,
        key: &ObjectRef,
        snapshot: Option<&Value>,
    ) -> Result<RestoreOutcome, ClusterError> {
        let Some(snapshot) = snapshot else {
            return Ok(if self.delete(key).await? {
                RestoreOutcome::Deleted
            } else {
                RestoreOutcome::AlreadyAbsent
            });
        };
        let wanted = clean_for_restore(snapshot);
        let api = self.api_for(key).await?;
        let live = api.get_opt(&key.name).await.map_err(|e| self.err(key, e))?;
        match live {
            None => {
                self.create(&wanted).await?;
                Ok(RestoreOutcome::Recreated)
            }
            Some(live) => {
                let mut obj = self.parse_object(key, &wanted)?;
                obj.metadata.resource_version = live.metadata.resource_version.clone();
                obj.metadata.uid = live.metadata.uid.clone();
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                api.replace(&key.name, &params, &obj)
                    .await
                    .map_err(|e| self.err(key, e))?;
                Ok(RestoreOutcome::Replaced)
            }
        }
    }

    /// The log of one pod (the first container unless named).
    pub async fn pod_log(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<String, ClusterError> {
        let key = ObjectRef::new("v1", "Pod", Some(namespace), pod);
        let api: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let params = LogParams {
            container: container.map(Into::into),
            ..Default::default()
        };
        api.logs(pod, &params).await.map_err(|e| self.err(&key, e))
    }

    /// A raw GET of an API path (a service proxy, say), as text.
    pub async fn get_text(&self, path: &str) -> Result<String, ClusterError> {
        let request =
            http::Request::get(path)
                .body(Vec::new())
                .map_err(|e| ClusterError::Invalid {
                    cluster: self.name.clone(),
                    object: path.to_string(),
                    message: e.to_string(),
                })?;
        self.client
            .request_text(request)
            .await
            .map_err(|e| ClusterError::from_kube(&self.name, path, e))
    }

    /// The server's version (`gitVersion`), which also proves the cluster is
    /// reachable and the credentials work.
    pub async fn server_version(&self) -> Result<String, ClusterError> {
        self.client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .map_err(|e| ClusterError::from_kube(&self.name, "/version", e))
    }
}
