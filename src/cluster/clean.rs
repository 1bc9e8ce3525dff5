//! Cleaning live objects of what the server owns, for restore and comparison.

use serde_json::Value;

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
