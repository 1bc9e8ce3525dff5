//! Defaults the real API server fills in on create and update.

use crate::resources::ResourceType;
use serde_json::{Value, json};

/// Type-specific defaults for a new object. `seq` makes addresses unique.
pub fn on_create(rt: &ResourceType, obj: &mut Value, _cluster: &str, seq: u64) {
    fold_string_data(rt, obj);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
            let name = obj.pointer("/metadata/name").cloned().unwrap_or_default();
            let labels = &mut obj["metadata"]["labels"];
            if !labels.is_object() {
                *labels = json!({});
            }
            labels["kubernetes.io/metadata.name"] = name;
        }
        ("", "Service") => {
            if !obj["spec"].is_object() {
                obj["spec"] = json!({});
            }
            let spec = &mut obj["spec"];
            if spec.get("type").is_none() {
                spec["type"] = json!("ClusterIP");
            }
            if spec.get("clusterIP").is_none() {
                let ip = format!("10.96.{}.{}", (seq / 250) % 250, seq % 250 + 2);
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
            if spec.get("sessionAffinity").is_none() {
                spec["sessionAffinity"] = json!("None");
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                    if p.get("targetPort").is_none()
                        && let Some(port) = p.get("port").cloned()
                    {
                        p["targetPort"] = port;
                    }
                }
            }
            if obj.get("status").is_none() {
                obj["status"] = json!({"loadBalancer": {}});
            }
        }
        ("apps", "Deployment") | ("apps", "ReplicaSet") => {
            if !obj["spec"].is_object() {
                obj["spec"] = json!({});
            }
            let spec = &mut obj["spec"];
            if spec.get("replicas").is_none() {
                spec["replicas"] = json!(1);
            }
            if rt.kind == "Deployment" {
                if spec.get("strategy").is_none() {
                    spec["strategy"] = json!({"type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
                }
                if spec.get("revisionHistoryLimit").is_none() {
                    spec["revisionHistoryLimit"] = json!(10);
                }
                if spec.get("progressDeadlineSeconds").is_none() {
                    spec["progressDeadlineSeconds"] = json!(600);
                }
            }
        }
        ("batch", "Job") => job_selector(obj),
        ("", "Pod") if obj.get("status").is_none() => {
            obj["status"] = json!({"phase": "Pending"});
        }
        ("", "Secret") if obj.get("type").is_none() => {
            obj["type"] = json!("Opaque");
        }
        _ => {}
    }
}

/// Keeps server-assigned fields a client's update may leave out.
pub fn on_update(rt: &ResourceType, obj: &mut Value, old: &Value) {
    fold_string_data(rt, obj);
    if let ("", "Service") = (rt.group.as_str(), rt.kind.as_str()) {
        for field in ["clusterIP", "clusterIPs"] {
            if obj.pointer(&format!("/spec/{field}")).is_none()
                && let Some(v) = old.pointer(&format!("/spec/{field}")).cloned()
                && obj["spec"].is_object()
            {
                obj["spec"][field] = v;
            }
        }
    }
    if let ("", "Namespace") = (rt.group.as_str(), rt.kind.as_str())
        && obj.pointer("/spec/finalizers").is_none()
        && let Some(f) = old.pointer("/spec/finalizers").cloned()
    {
        obj["spec"] = json!({"finalizers": f});
    }
}

/// A Secret's write-only `stringData` is merged into `data` (base64), winning over it, and
/// never stored, as the real API server does.
fn fold_string_data(rt: &ResourceType, obj: &mut Value) {
    use base64::Engine;
    if !(rt.group.is_empty() && rt.kind == "Secret") {
        return;
    }
    let Some(Value::Object(strings)) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
    else {
        return;
    };
    if !obj["data"].is_object() {
        obj["data"] = json!({});
    }
    for (k, v) in strings {
        let text = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

/// A Job without `manualSelector` selects its pods by its uid, and its template carries the
/// labels that match (what `kubectl logs job/<name>` relies on).
fn job_selector(obj: &mut Value) {
    if obj.pointer("/spec/manualSelector") == Some(&Value::Bool(true))
        || obj.pointer("/spec/selector").is_some()
        || !obj["spec"].is_object()
    {
        return;
    }
    let uid = obj.pointer("/metadata/uid").cloned().unwrap_or_default();
    let name = obj.pointer("/metadata/name").cloned().unwrap_or_default();
    obj["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    if !obj["spec"]["template"].is_object() {
        obj["spec"]["template"] = json!({});
    }
    let template = &mut obj["spec"]["template"];
    if !template["metadata"].is_object() {
        template["metadata"] = json!({});
    }
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    let labels = &mut template["metadata"]["labels"];
    labels["batch.kubernetes.io/controller-uid"] = uid.clone();
    labels["batch.kubernetes.io/job-name"] = name.clone();
    labels["controller-uid"] = uid;
    labels["job-name"] = name;
}
