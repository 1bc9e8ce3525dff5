//! The node lifecycle controller's NoSchedule tainting: a cordoned node
//! (`spec.unschedulable: true`) carries `node.kubernetes.io/unschedulable`,
//! an uncordoned one loses it.

use super::objects::rt;
use crate::cluster::ClusterInner;
use crate::store::{WriteOptions, now_rfc3339};
use serde_json::{Value, json};

/// The taint the node lifecycle controller keeps in step with `spec.unschedulable`.
pub(crate) const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

pub(super) fn reconcile(cluster: &ClusterInner, node: &Value) {
    if node.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let cordoned = node.pointer("/spec/unschedulable") == Some(&json!(true));
    let taints: Vec<Value> = node
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_ours = |t: &Value| {
        t.get("key").and_then(Value::as_str) == Some(UNSCHEDULABLE_TAINT)
            && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
    };
    let tainted = taints.iter().any(is_ours);
    if cordoned == tainted {
        return;
    }
    let Some(rt) = rt(&cluster.store, "", "nodes") else {
        return;
    };
    let mut kept: Vec<Value> = taints.into_iter().filter(|t| !is_ours(t)).collect();
    if cordoned {
        kept.push(
            json!({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": now_rfc3339()}),
        );
    }
    let mut updated = node.clone();
    if kept.is_empty() {
        if let Some(spec) = updated.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("taints");
        }
    } else {
        updated["spec"]["taints"] = json!(kept);
    }
    // A conflict means a newer version exists; its event brings us back.
    let _ = cluster.store.update(&rt, updated, &WriteOptions::default());
}
