//! What a fresh cluster holds: system namespaces, a node, the built-in
//! APIServices, the default ClusterRoles and the admin binding. No Istio kinds: those come with
//! `istioctl install` (or Istio's own CRDs, applied like any others).

use crate::mesh::Locality;
use crate::store::{Store, WriteOptions};
use serde_json::{Value, json};

/// Node annotation naming the flat pod network the cluster's pods sit on
/// (`SimConfig::pod_networks`): meshsim's own, read by the view builder.
pub const POD_NETWORK_ANNOTATION: &str = "meshsim.dev/pod-network";

/// `regionN` / `zoneN` for cluster N when the configuration names none.
pub(crate) fn default_locality(index: usize) -> Locality {
    Locality::new(&format!("region{index}"), &format!("zone{index}"), "")
}

/// The one Node of a cluster (the Deployment controller schedules every pod
/// on it), labelled with the cluster's locality as a cloud provider would.
fn node(cluster: &str, locality: &Locality, pod_network: &str) -> Value {
    let name = format!("{cluster}-control-plane");
    let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
        "node-role.kubernetes.io/control-plane": "",
        "topology.kubernetes.io/region": locality.region, "topology.kubernetes.io/zone": locality.zone});
    if !locality.subzone.is_empty() {
        labels["topology.istio.io/subzone"] = json!(locality.subzone);
    }
    json!({"metadata": {"name": name, "labels": labels,
            "annotations": {POD_NETWORK_ANNOTATION: pod_network}},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}})
}

/// Writes what a fresh cluster holds into its (empty) store.
pub(crate) fn populate(store: &Store, cluster: &str, locality: &Locality, pod_network: &str) {
    let opts = WriteOptions::default();
    let create = |group: &str, resource: &str, obj: Value| {
        if let Some(rt) = store.resolve(group, "v1", resource) {
            // A fresh store: nothing can clash.
            let _ = store.create(&rt, obj, &opts);
        }
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        create("", "namespaces", json!({"metadata": {"name": ns}}));
    }
    create("", "nodes", node(cluster, locality, pod_network));
    crate::apiservices::register_builtin(store);
    let rbac = "rbac.authorization.k8s.io";
    create(
        rbac,
        "clusterroles",
        json!({"metadata": {"name": "cluster-admin"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
    );
    let read = json!(["get", "list", "watch"]);
    create(
        rbac,
        "clusterroles",
        json!({"metadata": {"name": "view"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps", "endpoints", "pods", "pods/log", "pods/status", "services", "services/status", "serviceaccounts", "namespaces", "namespaces/status", "events"], "verbs": read},
            {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/status"], "verbs": read},
            {"apiGroups": ["batch"], "resources": ["jobs", "jobs/status"], "verbs": read},
        ]}),
    );
    create(
        rbac,
        "clusterroles",
        json!({"metadata": {"name": "edit"}, "rules": [
            {"apiGroups": ["", "apps", "batch"], "resources": ["*"], "verbs": ["*"]},
        ]}),
    );
    create(
        rbac,
        "clusterrolebindings",
        json!({"metadata": {"name": "cluster-admin"},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": rbac, "kind": "Group", "name": "system:masters"}]}),
    );
}
