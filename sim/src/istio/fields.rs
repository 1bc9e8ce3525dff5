//! Small readers of Kubernetes objects held as JSON (labels, annotations, containers,
//! readiness), shared by the Istio stand-in's modules.

use crate::store::meta_str;
use serde_json::Value;
use std::collections::BTreeMap;

/// A JSON object of strings as a map (non-strings skipped).
pub(crate) fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.labels`.
pub(crate) fn labels(obj: &Value) -> BTreeMap<String, String> {
    str_map(obj.pointer("/metadata/labels"))
}

/// One `metadata.annotations` entry.
pub(crate) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?.get(key)?.as_str()
}

/// `metadata.name` (empty when unset).
pub(crate) fn name_of(obj: &Value) -> String {
    meta_str(obj, "name").unwrap_or_default().to_string()
}

/// `metadata.namespace` (empty when unset).
pub(crate) fn ns_of(obj: &Value) -> String {
    meta_str(obj, "namespace").unwrap_or_default().to_string()
}

/// `status.conditions[type=Ready]` is True.
pub(crate) fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The literal value of env `name` in a container.
pub(crate) fn env_of(container: &Value, name: &str) -> Option<String> {
    container
        .get("env")?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

/// `spec.containers` of a pod.
pub(crate) fn containers(pod: &Value) -> Vec<&Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().collect())
        .unwrap_or_default()
}
