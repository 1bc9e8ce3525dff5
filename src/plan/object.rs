//! Naming an object in a cluster.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which object: apiVersion, kind, namespace (absent for cluster-scoped kinds)
/// and name. Serialises with the same field names as the cluster layer's
/// `ObjectKey`, so the engine converts one into the other field by field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
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

    pub fn secret(namespace: &str, name: &str) -> Self {
        Self::namespaced("v1", "Secret", namespace, name)
    }

    pub fn config_map(namespace: &str, name: &str) -> Self {
        Self::namespaced("v1", "ConfigMap", namespace, name)
    }

    pub fn deployment(namespace: &str, name: &str) -> Self {
        Self::namespaced("apps/v1", "Deployment", namespace, name)
    }

    pub fn service(namespace: &str, name: &str) -> Self {
        Self::namespaced("v1", "Service", namespace, name)
    }

    pub fn namespace(name: &str) -> Self {
        Self::cluster_scoped("v1", "Namespace", name)
    }

    /// The reference of a manifest built by a phase; `None` when apiVersion,
    /// kind or metadata.name is missing.
    pub fn of(manifest: &serde_json::Value) -> Option<Self> {
        let meta = manifest.get("metadata")?;
        Some(ObjectRef {
            api_version: manifest.get("apiVersion")?.as_str()?.into(),
            kind: manifest.get("kind")?.as_str()?.into(),
            namespace: meta
                .get("namespace")
                .and_then(serde_json::Value::as_str)
                .map(Into::into),
            name: meta.get("name")?.as_str()?.into(),
        })
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
