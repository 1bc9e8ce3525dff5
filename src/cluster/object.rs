//! Naming objects, and cleaning them for comparison and restore.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Which object, in a cluster: apiVersion, kind, namespace (None for
/// cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectKey {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        }
    }

    /// The key of a manifest; `None` when apiVersion, kind or name is missing.
    pub fn of(object: &Value) -> Option<Self> {
        let meta = object.get("metadata")?;
        Some(ObjectKey {
            api_version: object.get("apiVersion")?.as_str()?.into(),
            kind: object.get("kind")?.as_str()?.into(),
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

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Metadata the server owns: never sent back, never compared.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The object as a user would write it again: server metadata and status
/// removed. This is what a snapshot is restored from.
pub fn clean_for_restore(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in SERVER_METADATA {
                meta.remove(*key);
            }
        }
    }
    out
}

/// The object for comparing two dumps of a cluster: like `clean_for_restore`,
/// and also without the annotations that record *when* something happened
/// (rollout restarts) and status, which controllers own.
pub fn clean_for_compare(object: &Value) -> Value {
    let mut out = clean_for_restore(object);
    for path in [
        &["metadata", "annotations"][..],
        &["spec", "template", "metadata", "annotations"][..],
    ] {
        let mut cursor = Some(&mut out);
        for key in path {
            cursor = cursor.and_then(|v| v.get_mut(*key));
        }
        if let Some(map) = cursor.and_then(Value::as_object_mut) {
            map.remove("kubectl.kubernetes.io/restartedAt");
            map.remove("deployment.kubernetes.io/revision");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_of_namespaced_and_cluster_objects() {
        let ns = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts", "namespace": "istio-system"}});
        let key = ObjectKey::of(&ns).unwrap();
        assert_eq!(key.to_string(), "Secret istio-system/cacerts");
        assert_eq!(key.group_version(), ("", "v1"));
        let cr = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}});
        let key = ObjectKey::of(&cr).unwrap();
        assert_eq!(key.to_string(), "ClusterRole r");
        assert_eq!(key.group_version(), ("rbac.authorization.k8s.io", "v1"));
        assert!(ObjectKey::of(&json!({"kind": "Secret"})).is_none());
    }

    #[test]
    fn cleaning_drops_server_fields_only() {
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "istiod", "namespace": "istio-system", "uid": "u", "resourceVersion": "7",
                         "generation": 3, "managedFields": [], "labels": {"app": "istiod"},
                         "annotations": {"deployment.kubernetes.io/revision": "2", "keep": "me"}},
            "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "t"}}}},
            "status": {"replicas": 1}
        });
        let restore = clean_for_restore(&live);
        assert!(restore.get("status").is_none());
        assert_eq!(restore["metadata"]["labels"]["app"], "istiod");
        assert!(restore["metadata"].get("uid").is_none());
        assert_eq!(
            restore["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            "t"
        );
        let compare = clean_for_compare(&live);
        assert_eq!(compare["metadata"]["annotations"], json!({"keep": "me"}));
        assert_eq!(
            compare["spec"]["template"]["metadata"]["annotations"],
            json!({})
        );
    }
}
