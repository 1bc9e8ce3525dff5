//! Jobs run to completion: a pod on a node the scheduler picks (waiting while every node is
//! cordoned), an outcome and a log from the cluster's JobRunner, then the pod's phase and
//! conditions and the Job's counts and conditions.

use super::objects::{owner_ref, rt};
use crate::cluster::ClusterInner;
use crate::jobs::{JobContext, JobRunner};
use crate::kubelet::scheduler;
use crate::store::{StatusPolicy, WriteOptions, meta_str, now_rfc3339, random_suffix};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

pub(super) fn reconcile(
    cluster: &Arc<ClusterInner>,
    runner: &Arc<dyn JobRunner>,
    job: &Value,
    started: &mut HashSet<String>,
) {
    let uid = meta_str(job, "uid").unwrap_or_default().to_string();
    let done = job.pointer("/status/completionTime").is_some()
        || job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Failed" && c["status"] == "True")
            });
    if done
        || job.pointer("/status/startTime").is_some()
        || job.pointer("/metadata/deletionTimestamp").is_some()
        || !started.insert(uid)
    {
        return;
    }
    let cluster = cluster.clone();
    let runner = runner.clone();
    let job = job.clone();
    // The run happens after the cluster's start-up delay, off the event loop.
    tokio::spawn(async move {
        if !cluster.ready_delay.is_zero() {
            tokio::time::sleep(cluster.ready_delay).await;
        }
        let Some(node) = wait_for_node(&cluster, &job).await else {
            return;
        };
        run(&cluster, runner.as_ref(), &job, &node);
    });
}

/// A node for the Job's pod; while none fits (all cordoned), waits for a node to change, as the
/// scheduler keeps the pod Pending. `None` when the Job went away meanwhile.
async fn wait_for_node(cluster: &Arc<ClusterInner>, job: &Value) -> Option<String> {
    let store = &cluster.store;
    let job_rt = rt(store, "batch", "jobs")?;
    let ns = meta_str(job, "namespace").unwrap_or_default();
    let name = meta_str(job, "name").unwrap_or_default();
    let mut events = store.events();
    loop {
        match scheduler::pick(store, job.pointer("/spec/template").unwrap_or(&Value::Null)) {
            Ok(node) => return Some(node),
            Err(why) => {
                tracing::debug!(cluster = %cluster.name, job = name, why, "job pod unschedulable")
            }
        }
        loop {
            match events.recv().await {
                Ok(e) if e.gr.group.is_empty() && e.gr.resource == "nodes" => break,
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    let current = store.get_arc(&job_rt, Some(ns), name).ok()?;
                    if current.pointer("/metadata/uid") != job.pointer("/metadata/uid")
                        || current.pointer("/metadata/deletionTimestamp").is_some()
                    {
                        return None;
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn run(cluster: &Arc<ClusterInner>, runner: &dyn JobRunner, job: &Value, node: &str) {
    let store = &cluster.store;
    let (Some(job_rt), Some(pod_rt)) = (rt(store, "batch", "jobs"), rt(store, "", "pods")) else {
        return;
    };
    let ns = meta_str(job, "namespace").unwrap_or_default().to_string();
    let name = meta_str(job, "name").unwrap_or_default().to_string();
    let uid = meta_str(job, "uid").unwrap_or_default().to_string();
    let start = now_rfc3339();
    let mut labels = job
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if !labels.is_object() {
        labels = json!({});
    }
    labels["job-name"] = json!(name);
    labels["batch.kubernetes.io/job-name"] = json!(name);
    labels["controller-uid"] = json!(uid);
    labels["batch.kubernetes.io/controller-uid"] = json!(uid);
    let mut spec = job
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or(json!({}));
    if !spec.is_object() {
        spec = json!({});
    }
    spec["nodeName"] = json!(node);
    let pod_name = format!("{name}-{}", random_suffix(5));
    let pod = json!({
        "metadata": {"name": pod_name, "namespace": ns, "labels": labels, "ownerReferences": [owner_ref(job)]},
        "spec": spec,
        "status": {"phase": "Running", "startTime": start},
    });
    let opts = WriteOptions::default();
    let Ok(mut pod) = store.create(&pod_rt, pod, &opts) else {
        // The job or its namespace went away meanwhile.
        return;
    };
    let outcome = runner.run(&JobContext {
        cluster: &cluster.name,
        job,
        pod: &pod,
        clusters: &cluster.all,
    });
    store.set_log(&ns, &pod_name, outcome.log.clone());
    let end = now_rfc3339();
    let exit_code = if outcome.succeeded { 0 } else { 1 };
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| json!({"name": c.get("name"), "image": c.get("image"), "imageID": "", "ready": false,
                    "started": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": exit_code,
                        "reason": if outcome.succeeded { "Completed" } else { "Error" },
                        "message": outcome.message,
                        "startedAt": start, "finishedAt": end}}}))
                .collect()
        })
        .unwrap_or_default();
    // As the kubelet reports a pod whose containers ran to the end.
    let pod_cond = |t: &str, ok: bool, since: &str| {
        let mut c = json!({"type": t, "status": if ok { "True" } else { "False" },
            "lastProbeTime": null, "lastTransitionTime": since});
        if !ok {
            c["reason"] = json!("PodCompleted");
        }
        c
    };
    pod["status"] = json!({
        "phase": if outcome.succeeded { "Succeeded" } else { "Failed" },
        "conditions": [pod_cond("PodScheduled", true, &start), pod_cond("Initialized", true, &start),
            pod_cond("ContainersReady", false, &end), pod_cond("Ready", false, &end)],
        "hostIP": format!("172.18.{}.2", cluster.index % 256),
        "podIP": format!("10.{}.{}.{}", 240 + cluster.index % 10, fastrand::u8(0..255), fastrand::u8(2..255)),
        "startTime": start,
        "containerStatuses": containers,
    });
    if !outcome.message.is_empty() {
        pod["status"]["message"] = json!(outcome.message);
    }
    if store.update(&pod_rt, pod, &opts).is_err() {
        return;
    }
    let cond = |t: &str, reason: &str, message: &str| {
        json!({"type": t, "status": "True", "lastProbeTime": end, "lastTransitionTime": end,
            "reason": reason, "message": message})
    };
    let status = if outcome.succeeded {
        json!({"startTime": start, "completionTime": end, "succeeded": 1, "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [cond("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                           cond("Complete", "CompletionsReached", "Reached expected number of succeeded pods")]})
    } else {
        json!({"startTime": start, "failed": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
            "conditions": [cond("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                           cond("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]})
    };
    let status_only = WriteOptions {
        dry_run: false,
        status: StatusPolicy::StatusOnly,
    };
    for _ in 0..5 {
        let Ok(mut current) = store.get(&job_rt, Some(&ns), &name) else {
            return;
        };
        if meta_str(&current, "uid") != Some(uid.as_str()) {
            return;
        }
        current["status"] = status.clone();
        match store.update(&job_rt, current, &status_only) {
            Err(e) if e.code == 409 => continue,
            _ => return,
        }
    }
}
