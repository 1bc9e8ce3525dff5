//! The controllers a real cluster runs, reduced to what clients observe:
//! one task per cluster reacting to store events.

mod deployments;
mod jobs;
mod namespaces;
mod nodes;
mod objects;
mod secrets;
mod services;

use crate::cluster::ClusterInner;
use crate::jobs::JobRunner;
use crate::kubelet::Kubelet;
use crate::store::{EventType, Store, WatchEvent, meta_str};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

pub(crate) struct Controllers {
    cluster: Arc<ClusterInner>,
    /// Decides how Jobs end (only the Job controller calls it).
    job_runner: Arc<dyn JobRunner>,
    /// Jobs already started (their pod may not be written yet).
    started_jobs: HashSet<String>,
    /// Next host part of LoadBalancer addresses.
    next_lb: u32,
    /// Runs the pods no other controller runs, and ends gracefully deleted ones.
    kubelet: Kubelet,
}

/// Runs until the task is aborted.
pub(crate) async fn run(cluster: Arc<ClusterInner>, job_runner: Arc<dyn JobRunner>) {
    let mut events = cluster.store.events();
    let mut c = Controllers {
        cluster,
        job_runner,
        started_jobs: HashSet::new(),
        next_lb: 200,
        kubelet: Kubelet::default(),
    };
    c.resync();
    loop {
        match events.recv().await {
            Ok(e) => c.on_event(&e),
            Err(RecvError::Lagged(_)) => c.resync(),
            Err(RecvError::Closed) => return,
        }
    }
}

impl Controllers {
    fn store(&self) -> &Store {
        &self.cluster.store
    }

    fn on_event(&mut self, e: &WatchEvent) {
        let name = meta_str(&e.object, "name").unwrap_or_default().to_string();
        let ns = e.namespace.clone();
        match (e.gr.group.as_str(), e.gr.resource.as_str(), e.kind) {
            ("apps", "deployments", EventType::Added | EventType::Modified) => {
                deployments::reconcile(&self.cluster, &ns, &name);
            }
            ("", "pods", kind) => {
                self.kubelet.on_pod(&self.cluster, kind, &e.object);
                if let Some(deploy) = deployments::owning_deployment(self.store(), &e.object) {
                    deployments::reconcile(&self.cluster, &ns, &deploy);
                }
            }
            ("apps", "replicasets", _) => {
                if let Some(deploy) = deployments::owning_deployment(self.store(), &e.object) {
                    deployments::reconcile(&self.cluster, &ns, &deploy);
                }
            }
            ("", "services", EventType::Added | EventType::Modified) => {
                services::reconcile(&self.cluster, &e.object, &mut self.next_lb);
            }
            ("", "secrets", EventType::Added | EventType::Modified) => {
                secrets::reconcile(&self.cluster, &e.object);
            }
            ("", "serviceaccounts", EventType::Added) => {
                secrets::pending_for(&self.cluster, &ns, &name)
            }
            ("batch", "jobs", EventType::Added | EventType::Modified) => {
                jobs::reconcile(
                    &self.cluster,
                    &self.job_runner,
                    &e.object,
                    &mut self.started_jobs,
                );
            }
            ("", "nodes", EventType::Added | EventType::Modified) => {
                nodes::reconcile(&self.cluster, &e.object)
            }
            ("apiextensions.k8s.io", "customresourcedefinitions", _) => {
                crate::apiservices::reconcile_crds(self.store())
            }
            ("", "namespaces", EventType::Added) => namespaces::populate(&self.cluster, &name),
            ("", "namespaces", EventType::Modified) => {
                namespaces::reconcile(&self.cluster, &e.object)
            }
            _ => {}
        }
        if e.kind == EventType::Deleted && !ns.is_empty() {
            namespaces::maybe_finalize(&self.cluster, &ns);
        }
    }

    /// Reconciles everything (at start, and after missing events).
    fn resync(&mut self) {
        let each = |c: &Controllers, g: &str, r: &str| -> Vec<Arc<Value>> {
            c.store()
                .resolve(g, "v1", r)
                .map(|rt| c.store().list(&rt, None).0)
                .unwrap_or_default()
        };
        for ns in each(self, "", "namespaces") {
            namespaces::populate(&self.cluster, meta_str(&ns, "name").unwrap_or_default());
            namespaces::reconcile(&self.cluster, &ns);
        }
        for n in each(self, "", "nodes") {
            nodes::reconcile(&self.cluster, &n);
        }
        crate::apiservices::reconcile_crds(self.store());
        for d in each(self, "apps", "deployments") {
            deployments::reconcile(
                &self.cluster,
                meta_str(&d, "namespace").unwrap_or_default(),
                meta_str(&d, "name").unwrap_or_default(),
            );
        }
        for s in each(self, "", "services") {
            services::reconcile(&self.cluster, &s, &mut self.next_lb);
        }
        for s in each(self, "", "secrets") {
            secrets::reconcile(&self.cluster, &s);
        }
        for p in each(self, "", "pods") {
            self.kubelet.on_pod(&self.cluster, EventType::Modified, &p);
        }
        for j in each(self, "batch", "jobs") {
            jobs::reconcile(&self.cluster, &self.job_runner, &j, &mut self.started_jobs);
        }
    }
}
