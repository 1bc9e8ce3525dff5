//! Deployments: a ReplicaSet per pod template (named by its hash), pods
//! that become ready after the configured delay, and the status fields and
//! conditions that `kubectl rollout status`/`wait` and kube's conditions read.

use super::objects::{owned_by, owner_ref, rt};
use crate::cluster::ClusterInner;
use crate::resources::ResourceType;
use crate::store::{StatusPolicy, Store, WriteOptions, meta_str, now_rfc3339, random_suffix};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

fn revision(obj: &Value) -> u64 {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The Deployment a pod or ReplicaSet belongs to, if any.
pub(super) fn owning_deployment(store: &Store, obj: &Value) -> Option<String> {
    let owner = |o: &Value, kind: &str| -> Option<String> {
        o.pointer("/metadata/ownerReferences")?
            .as_array()?
            .iter()
            .find(|r| r.get("kind").and_then(Value::as_str) == Some(kind))?
            .get("name")?
            .as_str()
            .map(str::to_string)
    };
    if obj.get("kind").and_then(Value::as_str) == Some("ReplicaSet") {
        return owner(obj, "Deployment");
    }
    let rs_name = owner(obj, "ReplicaSet")?;
    let ns = meta_str(obj, "namespace")?;
    // The ReplicaSet may be gone already; its name still tells the deployment.
    match store.get_arc(&rt(store, "apps", "replicasets")?, Some(ns), &rs_name) {
        Ok(rs) => owner(&rs, "Deployment"),
        Err(_) => rs_name.rsplit_once('-').map(|(d, _)| d.to_string()),
    }
}

/// Kubernetes-style hash of the pod template (10 characters of its alphabet).
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let digest = Sha256::digest(serde_json::to_vec(template).unwrap_or_default());
    digest
        .iter()
        .take(10)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

pub(super) fn reconcile(cluster: &Arc<ClusterInner>, ns: &str, name: &str) {
    // Writes race with API writes; a conflict means "look again".
    for _ in 0..5 {
        match reconcile_once(cluster, ns, name) {
            Ok(()) => return,
            Err(e) if e.code == 409 => continue,
            Err(e) => {
                tracing::debug!(cluster = %cluster.name, ns, name, error = %e, "deployment reconcile failed");
                return;
            }
        }
    }
}

struct Types {
    deploy: ResourceType,
    rs: ResourceType,
    pod: ResourceType,
}

fn reconcile_once(
    cluster: &Arc<ClusterInner>,
    ns: &str,
    name: &str,
) -> Result<(), crate::status::ApiError> {
    let store = &cluster.store;
    let (Some(deploy), Some(rs), Some(pod)) = (
        rt(store, "apps", "deployments"),
        rt(store, "apps", "replicasets"),
        rt(store, "", "pods"),
    ) else {
        return Ok(());
    };
    let types = Types { deploy, rs, pod };
    let Ok(d) = store.get(&types.deploy, Some(ns), name) else {
        return Ok(());
    };
    if d.pointer("/metadata/deletionTimestamp").is_some() {
        return Ok(());
    }
    let uid = meta_str(&d, "uid").unwrap_or_default().to_string();
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0);
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = template_hash(&template);
    let rs_name = format!("{name}-{hash}");
    let opts = WriteOptions::default();

    // The current ReplicaSet; old ones are retired below, once the current
    // one is fully ready (a rolling update with maxUnavailable 0, as
    // Kubernetes does for one replica: the old pod serves until the new is
    // ready; istiod's webhook is never without a pod).
    let (all_rs, _) = store.list(&types.rs, Some(ns));
    let max_revision = all_rs
        .iter()
        .filter(|r| owned_by(r, &uid))
        .map(|r| revision(r))
        .max()
        .unwrap_or(0);
    let mut current = None;
    let mut old_sets = Vec::new();
    for r in all_rs.iter().filter(|r| owned_by(r, &uid)) {
        if meta_str(r, "name") == Some(rs_name.as_str()) {
            current = Some(r.clone());
        } else {
            old_sets.push(r.clone());
        }
    }
    let mut labels = template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if !labels.is_object() {
        labels = json!({});
    }
    labels[HASH_LABEL] = json!(hash);
    // The newest template always has the highest revision (an undo re-numbers an old ReplicaSet).
    let current = match current {
        Some(r)
            if r.pointer("/spec/replicas").and_then(Value::as_i64) == Some(replicas)
                && revision(&r) == max_revision =>
        {
            r
        }
        Some(r) => {
            let mut r = (*r).clone();
            r["spec"]["replicas"] = json!(replicas);
            if revision(&r) != max_revision {
                r["metadata"]["annotations"][REVISION] = json!((max_revision + 1).to_string());
            }
            Arc::new(store.update(&types.rs, r, &opts)?)
        }
        None => {
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            if !selector.get("matchLabels").is_some_and(Value::is_object) {
                selector["matchLabels"] = json!({});
            }
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"] = labels.clone();
            let obj = json!({
                "metadata": {"name": rs_name, "namespace": ns, "labels": labels,
                    "annotations": {REVISION: (max_revision + 1).to_string()},
                    "ownerReferences": [owner_ref(&d)]},
                "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
            });
            Arc::new(store.create(&types.rs, obj, &opts)?)
        }
    };
    let rs_uid = meta_str(&current, "uid").unwrap_or_default().to_string();

    // Pods of the current ReplicaSet: create the missing, delete the extra.
    let mut pods: Vec<Arc<Value>> = store
        .list(&types.pod, Some(ns))
        .0
        .into_iter()
        .filter(|p| owned_by(p, &rs_uid) && p.pointer("/metadata/deletionTimestamp").is_none())
        .collect();
    while (pods.len() as i64) < replicas {
        let pod = new_pod(cluster, &current, &template, &labels, &rs_name, ns);
        let created = store.create(&types.pod, pod, &opts)?;
        schedule_ready(cluster, &types.pod, &created);
        pods.push(Arc::new(created));
    }
    while (pods.len() as i64) > replicas {
        if let Some(p) = pods.pop() {
            let _ = store.delete(
                &types.pod,
                Some(ns),
                meta_str(&p, "name").unwrap_or_default(),
                &Default::default(),
            );
        }
    }
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i64;
    let total = pods.len() as i64;

    // Retire the old ReplicaSets once the new pods are all ready.
    if ready >= replicas {
        for r in &old_sets {
            let old_uid = meta_str(r, "uid").unwrap_or_default();
            for p in store
                .list(&types.pod, Some(ns))
                .0
                .iter()
                .filter(|p| owned_by(p, old_uid))
            {
                let _ = store.delete(
                    &types.pod,
                    Some(ns),
                    meta_str(p, "name").unwrap_or_default(),
                    &Default::default(),
                );
            }
            if r.pointer("/spec/replicas").and_then(Value::as_i64) != Some(0) {
                let mut scaled = (**r).clone();
                scaled["spec"]["replicas"] = json!(0);
                scaled["status"] =
                    json!({"replicas": 0, "observedGeneration": r.pointer("/metadata/generation")});
                store.update(&types.rs, scaled, &opts)?;
            }
        }
    }

    let rs_status = json!({"replicas": total, "fullyLabeledReplicas": total, "readyReplicas": ready,
        "availableReplicas": ready, "observedGeneration": current.pointer("/metadata/generation")});
    if current.get("status") != Some(&rs_status) {
        let mut r = (*current).clone();
        r["status"] = rs_status;
        store.update(&types.rs, r, &opts)?;
    }
    let mut d = d;
    let current_revision = revision(&current).to_string();
    if d.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        != Some(current_revision.as_str())
    {
        if !d["metadata"]["annotations"].is_object() {
            d["metadata"]["annotations"] = json!({});
        }
        d["metadata"]["annotations"][REVISION] = json!(current_revision);
        d = store.update(&types.deploy, d, &opts)?;
    }
    let status = deployment_status(&d, replicas, total, ready, &rs_name);
    if d.get("status") != Some(&status) {
        let mut updated = d.clone();
        updated["status"] = status;
        let status_only = WriteOptions {
            dry_run: false,
            status: StatusPolicy::StatusOnly,
        };
        store.update(&types.deploy, updated, &status_only)?;
    }
    Ok(())
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn new_pod(
    cluster: &ClusterInner,
    rs: &Value,
    template: &Value,
    labels: &Value,
    rs_name: &str,
    ns: &str,
) -> Value {
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    if !spec.is_object() {
        spec = json!({});
    }
    // No node fits (all cordoned): the pod goes to the kubelet, which schedules it once one does.
    let node = crate::kubelet::scheduler::pick(&cluster.store, &json!({"spec": spec})).ok();
    if let Some(node) = &node {
        spec["nodeName"] = json!(node);
    }
    let annotations = template.pointer("/metadata/annotations").cloned();
    let mut meta = json!({
        "name": format!("{rs_name}-{}", random_suffix(5)),
        "namespace": ns,
        "labels": labels,
        "ownerReferences": [owner_ref(rs)],
    });
    if let Some(a) = annotations {
        meta["annotations"] = a;
    }
    let mut pod = json!({"metadata": meta, "spec": spec});
    if node.is_none() {
        return pod;
    }
    if cluster.ready_delay.is_zero() {
        pod["status"] = running_status(cluster, &pod);
    } else {
        pod["status"] = json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}]});
    }
    pod
}

fn running_status(cluster: &ClusterInner, pod: &Value) -> Value {
    let now = now_rfc3339();
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({"name": c.get("name"), "image": c.get("image"), "imageID": "", "ready": true,
                        "started": true, "restartCount": 0, "state": {"running": {"startedAt": now}}})
                })
                .collect()
        })
        .unwrap_or_default();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
    json!({
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
        "hostIP": format!("172.18.{}.2", cluster.index % 256),
        "podIP": format!("10.{}.{}.{}", 240 + cluster.index % 10, fastrand::u8(0..255), fastrand::u8(2..255)),
        "startTime": now,
        "containerStatuses": containers,
    })
}

/// Marks the pod ready after the cluster's delay (simulated start-up time).
fn schedule_ready(cluster: &Arc<ClusterInner>, pod_rt: &ResourceType, pod: &Value) {
    if cluster.ready_delay.is_zero() || pod.pointer("/spec/nodeName").is_none() {
        return;
    }
    let cluster = cluster.clone();
    let pod_rt = pod_rt.clone();
    let ns = meta_str(pod, "namespace").unwrap_or_default().to_string();
    let name = meta_str(pod, "name").unwrap_or_default().to_string();
    tokio::spawn(async move {
        tokio::time::sleep(cluster.ready_delay).await;
        for _ in 0..5 {
            let Ok(mut p) = cluster.store.get(&pod_rt, Some(&ns), &name) else {
                return;
            };
            // A container that already crashed (e.g. istiod refusing its CA) stays down.
            if crashed(&p) {
                return;
            }
            p["status"] = running_status(&cluster, &p);
            match cluster.store.update(&pod_rt, p, &WriteOptions::default()) {
                Err(e) if e.code == 409 => continue,
                _ => return,
            }
        }
    });
}

fn crashed(pod: &Value) -> bool {
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c.pointer("/state/waiting").is_some()))
}

fn deployment_status(d: &Value, replicas: i64, total: i64, ready: i64, rs_name: &str) -> Value {
    let old = d.get("status");
    let now = now_rfc3339();
    let available = ready >= replicas;
    let complete = total == replicas && ready == replicas;
    let old_cond = |t: &str| -> Option<Value> {
        old?.get("conditions")?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
            .cloned()
    };
    // Timestamps move only when the condition changes, so a no-op reconcile writes nothing.
    let condition = |t: &str, reason: &str, message: String| -> Value {
        let (transition, update) = match old_cond(t) {
            Some(c) if c["reason"] == reason && c["message"] == message.as_str() => {
                (c["lastTransitionTime"].clone(), c["lastUpdateTime"].clone())
            }
            Some(c) if c["status"] == "True" => (c["lastTransitionTime"].clone(), json!(now)),
            _ => (json!(now), json!(now)),
        };
        json!({"type": t, "status": "True", "lastUpdateTime": update, "lastTransitionTime": transition,
            "reason": reason, "message": message})
    };
    let available_cond = if available {
        condition(
            "Available",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        let mut c = condition(
            "Available",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        );
        c["status"] = json!("False");
        c
    };
    let progressing = if complete {
        condition(
            "Progressing",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    } else {
        condition(
            "Progressing",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs_name}\" is progressing."),
        )
    };
    let mut status = json!({
        "observedGeneration": d.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": total,
        "updatedReplicas": total,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": [available_cond, progressing],
    });
    if replicas > ready {
        status["unavailableReplicas"] = json!(replicas - ready);
    }
    // Zero counts are omitted, as the real server's JSON does.
    if let Some(m) = status.as_object_mut() {
        m.retain(|_, v| v != &json!(0));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_template_sensitive() {
        let a = template_hash(&json!({"spec": {"containers": [{"name": "a"}]}}));
        let b = template_hash(&json!({"spec": {"containers": [{"name": "b"}]}}));
        assert_eq!(a.len(), 10);
        assert_eq!(
            a,
            template_hash(&json!({"spec": {"containers": [{"name": "a"}]}}))
        );
        assert_ne!(a, b);
    }
}
