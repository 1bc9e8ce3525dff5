//! The scheduler, reduced to what a person sees on a small cluster: a pod goes to a Ready node
//! that is not cordoned (`spec.unschedulable`) and matches its `nodeSelector`; when none does,
//! the pod stays Pending with the scheduler's message.

use crate::store::{Store, meta_str};
use serde_json::Value;
use std::collections::BTreeMap;

/// Picks a node for `pod`: its name, or the scheduler's message saying why none fits.
pub(crate) fn pick(store: &Store, pod: &Value) -> Result<String, String> {
    let Some(rt) = store.resolve("", "v1", "nodes") else {
        return Err("0/0 nodes are available.".into());
    };
    let nodes = store.list(&rt, None).0;
    let selector: BTreeMap<&str, &str> = pod
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut fits: Vec<&str> = Vec::new();
    for n in &nodes {
        let reason = if n.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
            Some("node(s) were unschedulable")
        } else if !ready(n) {
            Some("node(s) were not ready")
        } else if !selector.iter().all(|(k, v)| {
            n.pointer("/metadata/labels")
                .and_then(|l| l.get(*k))
                .and_then(Value::as_str)
                == Some(*v)
        }) {
            Some("node(s) didn't match Pod's node affinity/selector")
        } else {
            None
        };
        match reason {
            Some(r) => *reasons.entry(r).or_default() += 1,
            None => fits.extend(meta_str(n, "name")),
        }
    }
    // The least loaded would win; every simulated node is alike, so the first by name.
    fits.sort_unstable();
    if let Some(node) = fits.first() {
        return Ok((*node).to_string());
    }
    let total = nodes.len();
    let why: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    Err(format!(
        "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling.",
        why.join(", ")
    ))
}

fn ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_none_or(|cs| {
            cs.iter()
                .filter(|c| c["type"] == "Ready")
                .all(|c| c["status"] == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteOptions;
    use serde_json::json;

    #[test]
    fn cordon_and_selectors() {
        let store = Store::new("c1");
        let rt = store.resolve("", "v1", "nodes").unwrap();
        let node = json!({"metadata": {"name": "c1-control-plane", "labels": {"zone": "a"}}});
        store.create(&rt, node, &WriteOptions::default()).unwrap();
        let pod = json!({"spec": {}});
        assert_eq!(pick(&store, &pod).unwrap(), "c1-control-plane");
        let picky = json!({"spec": {"nodeSelector": {"zone": "b"}}});
        assert!(
            pick(&store, &picky)
                .unwrap_err()
                .contains("1 node(s) didn't match")
        );
        let mut n = store.get(&rt, None, "c1-control-plane").unwrap();
        n["spec"] = json!({"unschedulable": true});
        store.update(&rt, n, &WriteOptions::default()).unwrap();
        assert_eq!(
            pick(&store, &pod).unwrap_err(),
            "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are \
             available: 1 Preemption is not helpful for scheduling."
        );
    }
}
