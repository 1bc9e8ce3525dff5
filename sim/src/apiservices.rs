//! `apiregistration.k8s.io/v1` APIService objects, as the kube-apiserver's
//! aggregator registers them: one per built-in group/version at start
//! (`automanaged: onstart`) and one per served CRD group/version, kept in step
//! with the CRDs (`automanaged: "true"`, the crdregistration controller's).
//! The same priorities order the groups and versions of discovery.

use crate::resources::ResourceType;
use crate::store::{Store, WriteOptions, meta_str, now_rfc3339};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The label the aggregator's autoregister controller puts on what it manages.
pub const AUTOMANAGED_LABEL: &str = "kube-aggregator.kubernetes.io/automanaged";

/// CRD groups rank below every built-in one (crdregistration's values).
const CRD_PRIORITY: (i32, i32) = (1000, 100);

/// The kube-apiserver's built-in priorities (`apiVersionPriorities`) for the
/// groups meshsim serves: (groupPriorityMinimum, versionPriority).
const BUILTIN_PRIORITIES: &[(&str, &str, i32, i32)] = &[
    ("", "v1", 18000, 1),
    ("apiregistration.k8s.io", "v1", 18000, 15),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
];

/// (groupPriorityMinimum, versionPriority) of a served group/version.
pub(crate) fn priority(group: &str, version: &str, custom: bool) -> (i32, i32) {
    if custom {
        return CRD_PRIORITY;
    }
    BUILTIN_PRIORITIES
        .iter()
        .find(|(g, v, _, _)| *g == group && *v == version)
        .map(|(_, _, gp, vp)| (*gp, *vp))
        // A built-in group missing from the table still outranks CRDs.
        .unwrap_or((1500, 15))
}

/// `v1.`, `v1.apps`, `v1beta1.networking.istio.io`.
pub(crate) fn name_of(group: &str, version: &str) -> String {
    format!("{version}.{group}")
}

/// A local APIService (served by this API server itself, no `service`).
fn object(group: &str, version: &str, custom: bool) -> Value {
    let (gp, vp) = priority(group, version, custom);
    let managed = if custom { "true" } else { "onstart" };
    json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": name_of(group, version), "labels": {AUTOMANAGED_LABEL: managed}},
        "spec": {"group": group, "version": version, "groupPriorityMinimum": gp, "versionPriority": vp},
        "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local",
            "message": "Local APIServices are always available", "lastTransitionTime": now_rfc3339()}]},
    })
}

fn apiservice_type(store: &Store) -> Option<ResourceType> {
    store.resolve("apiregistration.k8s.io", "v1", "apiservices")
}

/// Registers the built-in group/versions (at cluster start).
pub(crate) fn register_builtin(store: &Store) {
    let Some(rt) = apiservice_type(store) else {
        return;
    };
    let served: BTreeSet<(String, String)> = store
        .types()
        .iter()
        .filter(|t| !t.custom)
        .map(|t| (t.group.clone(), t.version.clone()))
        .collect();
    for (group, version) in served {
        // A fresh store: nothing can clash.
        let _ = store.create(
            &rt,
            object(&group, &version, false),
            &WriteOptions::default(),
        );
    }
}

/// Brings the CRD-managed APIServices in line with the group/versions CRDs
/// serve now: creates the missing, deletes those no CRD serves any more.
/// Idempotent, so it may run on every CRD event and at resync.
pub(crate) fn reconcile_crds(store: &Store) {
    let Some(rt) = apiservice_type(store) else {
        return;
    };
    let wanted: BTreeSet<String> = store
        .types()
        .iter()
        .filter(|t| t.custom)
        .map(|t| name_of(&t.group, &t.version))
        .collect();
    let (existing, _) = store.list(&rt, None);
    let mut present = BTreeSet::new();
    for svc in &existing {
        let name = meta_str(svc, "name").unwrap_or_default();
        present.insert(name.to_string());
        let crd_managed = svc
            .pointer("/metadata/labels")
            .and_then(|l| l.get(AUTOMANAGED_LABEL))
            == Some(&json!("true"));
        if crd_managed && !wanted.contains(name) {
            // Already gone (a concurrent reconcile) is the wanted end state.
            let _ = store.delete(&rt, None, name, &Default::default());
        }
    }
    for t in store.types().iter().filter(|t| t.custom) {
        let name = name_of(&t.group, &t.version);
        if !present.contains(&name) {
            present.insert(name);
            // AlreadyExists from a concurrent reconcile is the wanted end state.
            let _ = store.create(
                &rt,
                object(&t.group, &t.version, true),
                &WriteOptions::default(),
            );
        }
    }
}
