//! Object addresses: which object, in which cluster.
//!
//! The lowest layer of the crate (it imports nothing else of it): the plan
//! names objects with [`ObjectRef`], the cluster layer reads and writes them by
//! it, and the state store keys snapshots by the same address plus the
//! cluster (`state::SnapshotKey`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Which object: apiVersion, kind, namespace (absent for cluster-scoped kinds)
/// and name. Serialised as `{ "apiVersion", "kind", "namespace"?, "name" }`
/// (the plan's `Object`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `v1`, `apps/v1`, `networking.istio.io/v1`, ...
    pub api_version: String,
    /// The kind, as in a manifest: `Secret`, `Deployment`, ...
    pub kind: String,
    /// `None` for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// metadata.name.
    pub name: String,
}

impl ObjectRef {
    /// An object of any scope.
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        }
    }

    /// A namespaced object.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> Self {
        Self::new(api_version, kind, Some(namespace), name)
    }

    /// A cluster-scoped object.
    pub fn cluster_scoped(api_version: &str, kind: &str, name: &str) -> Self {
        Self::new(api_version, kind, None, name)
    }

    /// A core `v1` Secret.
    pub fn secret(namespace: &str, name: &str) -> Self {
        Self::namespaced("v1", "Secret", namespace, name)
    }

    /// A core `v1` ConfigMap.
    pub fn config_map(namespace: &str, name: &str) -> Self {
        Self::namespaced("v1", "ConfigMap", namespace, name)
    }

    /// An `apps/v1` Deployment.
    pub fn deployment(namespace: &str, name: &str) -> Self {
        Self::namespaced("apps/v1", "Deployment", namespace, name)
    }

    /// A core `v1` Service.
    pub fn service(namespace: &str, name: &str) -> Self {
        Self::namespaced("v1", "Service", namespace, name)
    }

    /// A Namespace (cluster-scoped).
    pub fn namespace(name: &str) -> Self {
        Self::cluster_scoped("v1", "Namespace", name)
    }

    /// The address of a manifest; `None` when apiVersion, kind or
    /// metadata.name is missing.
    pub fn of(manifest: &Value) -> Option<Self> {
        let meta = manifest.get("metadata")?;
        Some(ObjectRef {
            api_version: manifest.get("apiVersion")?.as_str()?.into(),
            kind: manifest.get("kind")?.as_str()?.into(),
            namespace: meta
                .get("namespace")
                .and_then(Value::as_str)
                .map(Into::into),
            name: meta.get("name")?.as_str()?.into(),
        })
    }

    /// (group, version) of the apiVersion: `v1` is the core group "".
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_of_namespaced_and_cluster_objects() {
        let ns = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts", "namespace": "istio-system"}});
        let key = ObjectRef::of(&ns).unwrap();
        assert_eq!(key.to_string(), "Secret istio-system/cacerts");
        assert_eq!(key.group_version(), ("", "v1"));
        let cr = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}});
        let key = ObjectRef::of(&cr).unwrap();
        assert_eq!(key.to_string(), "ClusterRole r");
        assert_eq!(key.group_version(), ("rbac.authorization.k8s.io", "v1"));
        assert!(ObjectRef::of(&json!({"kind": "Secret"})).is_none());
    }

    #[test]
    fn object_serialises_without_an_absent_namespace() {
        let ns = ObjectRef::namespace("istio-system");
        assert_eq!(
            serde_json::to_string(&ns).unwrap(),
            r#"{"apiVersion":"v1","kind":"Namespace","name":"istio-system"}"#
        );
    }
}
