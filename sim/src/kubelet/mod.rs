//! The kubelet (with the scheduler in front of it): every pod nobody else runs is placed on a
//! node and started, its containers' programs run through the shell model with the mesh
//! answering their requests, and its status and log follow, as a real node reports them.
//!
//! A pod is the kubelet's when it arrives with no status but the API server's `Pending` (bare pods, `kubectl run`, any pod
//! created through the API). Deployment pods (whose readiness the Deployment controller
//! simulates with the cluster's delay) and Job pods (the Job runner decides their end) come
//! with a status and are left to their controllers; the kubelet still ends them when they are
//! deleted gracefully. A pod whose status someone else rewrites (istiod crashing its own pod)
//! is given up.
//!
//! Graceful deletion: the API server marks a running pod (`deletionTimestamp`,
//! `deletionGracePeriodSeconds`); the kubelet sends SIGTERM: the image's servers stop at once,
//! while a shell program, PID 1 without a handler, ignores it and is killed when the period
//! ends; then the kubelet removes the object.

mod entrypoint;
mod logs;
mod network;
mod pod;
pub(crate) mod scheduler;
mod status;
pub(crate) mod stdio;

use crate::cluster::ClusterInner;
use crate::store::{DeleteOptions, EventType, Grace, WatchEvent, meta_str};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One cluster's kubelet: the pods it runs.
#[derive(Default)]
pub(crate) struct Kubelet {
    pods: HashMap<String, Running>,
    /// Pods of other controllers whose graceful deletion the kubelet is finishing.
    ending: HashSet<String>,
}

struct Running {
    /// The grace period (seconds) once the pod is being deleted.
    stop: watch::Sender<Option<i64>>,
    task: JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        for r in self.pods.values() {
            r.task.abort();
        }
    }
}

impl Kubelet {
    /// Reacts to a pod event (or a pod seen at resync).
    pub(crate) fn on_pod(&mut self, cluster: &Arc<ClusterInner>, kind: EventType, pod: &Value) {
        let uid = meta_str(pod, "uid").unwrap_or_default().to_string();
        if kind == EventType::Deleted {
            if let Some(r) = self.pods.remove(&uid) {
                r.task.abort();
            }
            self.ending.remove(&uid);
            return;
        }
        self.pods.retain(|_, r| !r.task.is_finished());
        let grace = pod
            .pointer("/metadata/deletionTimestamp")
            .is_some()
            .then(|| {
                pod.pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            });
        if let Some(r) = self.pods.get(&uid) {
            if grace.is_some() {
                r.stop.send_if_modified(|g| {
                    let changed = *g != grace;
                    *g = grace;
                    changed
                });
            }
            return;
        }
        if let Some(grace) = grace {
            // Not ours: its containers are servers that stop on SIGTERM; remove it now.
            let scheduled = pod.pointer("/spec/nodeName").is_some();
            if scheduled && grace > 0 && self.ending.insert(uid.clone()) {
                remove_now(cluster, pod);
            }
            return;
        }
        if fresh(pod) {
            let (stop, rx) = watch::channel(None);
            let task = tokio::spawn(pod::run(cluster.clone(), pod.clone(), rx));
            self.pods.insert(uid, Running { stop, task });
        }
    }
}

/// A pod nobody has reported on: no status beyond the API server's initial `Pending`.
fn fresh(pod: &Value) -> bool {
    match pod.get("status").and_then(Value::as_object) {
        None => true,
        Some(s) => s.keys().all(|k| k == "phase") && s.get("phase").is_none_or(|p| p == "Pending"),
    }
}

/// Removes a pod whose containers have stopped (the kubelet's final, zero-grace delete).
pub(crate) fn remove_now(cluster: &ClusterInner, pod: &Value) {
    let Some(rt) = cluster.store.resolve("", "v1", "pods") else {
        return;
    };
    let opts = DeleteOptions {
        precondition_uid: meta_str(pod, "uid").map(str::to_string),
        grace: Grace::Now,
        ..Default::default()
    };
    let _ = cluster.store.delete(
        &rt,
        meta_str(pod, "namespace"),
        meta_str(pod, "name").unwrap_or_default(),
        &opts,
    );
}

/// Whether an event concerns what the scheduler decides on (a node changed).
pub(crate) fn is_node_event(e: &WatchEvent) -> bool {
    e.gr.group.is_empty() && e.gr.resource == "nodes"
}

/// What `pods/exec` runs in container `container` of `pod`: the command with the container's
/// environment, and the network it meets. A program in `istio-proxy` runs as the proxy's user,
/// whose requests leave the pod past the sidecar (Istio's iptables rules exclude that user);
/// in a pod the kubelet runs, the sidecar's `quitquitquit` reaches it.
pub(crate) fn exec_program(
    cluster: &Arc<ClusterInner>,
    pod: &Value,
    container: &Value,
    argv: Vec<String>,
) -> (
    crate::shell::Program,
    Arc<network::PodNetwork>,
    &'static str,
) {
    let name = container.get("name").and_then(Value::as_str);
    let direct = name == Some("istio-proxy");
    let uid = meta_str(pod, "uid").unwrap_or_default();
    // Nobody listening (a pod the kubelet does not run): quitquitquit says it is not modelled.
    let quit = cluster
        .stdio
        .quit(uid)
        .unwrap_or_else(|| tokio::sync::mpsc::unbounded_channel().0);
    let net = Arc::new(network::PodNetwork {
        cluster: cluster.clone(),
        pod: pod.clone(),
        seed: u64::from_str_radix(uid.get(..8).unwrap_or("0"), 16).unwrap_or(0),
        requests: Default::default(),
        quit,
        direct,
    });
    let program = crate::shell::Program::new(argv, entrypoint::literal_env(container));
    (program, net, entrypoint::prompt(container))
}
