//! What a fresh cluster holds: system namespaces, a node, the default
//! ClusterRoles and the admin binding, and optionally permissive Istio CRDs.

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

pub(crate) fn populate(
    store: &Store,
    cluster: &str,
    locality: &Locality,
    pod_network: &str,
    istio_crds: bool,
) {
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
    if istio_crds {
        for crd in istio_permissive_crds() {
            create("apiextensions.k8s.io", "customresourcedefinitions", crd);
        }
    }
}

/// (group, kind, plural, versions, short names): the Istio kinds meshsim
/// serves on its own, with schemas that accept anything.
/// group, kind, plural, versions (storage first), short names.
type IstioKind = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const ISTIO_KINDS: &[IstioKind] = &[
    (
        "networking.istio.io",
        "DestinationRule",
        "destinationrules",
        &["v1", "v1beta1", "v1alpha3"],
        &["dr"],
    ),
    (
        "networking.istio.io",
        "VirtualService",
        "virtualservices",
        &["v1", "v1beta1", "v1alpha3"],
        &["vs"],
    ),
    (
        "networking.istio.io",
        "Gateway",
        "gateways",
        &["v1", "v1beta1", "v1alpha3"],
        &["gw"],
    ),
    (
        "networking.istio.io",
        "ServiceEntry",
        "serviceentries",
        &["v1", "v1beta1", "v1alpha3"],
        &["se"],
    ),
    (
        "networking.istio.io",
        "Sidecar",
        "sidecars",
        &["v1", "v1beta1", "v1alpha3"],
        &[],
    ),
    (
        "networking.istio.io",
        "WorkloadEntry",
        "workloadentries",
        &["v1", "v1beta1", "v1alpha3"],
        &["we"],
    ),
    (
        "networking.istio.io",
        "WorkloadGroup",
        "workloadgroups",
        &["v1", "v1beta1", "v1alpha3"],
        &["wg"],
    ),
    (
        "networking.istio.io",
        "EnvoyFilter",
        "envoyfilters",
        &["v1alpha3"],
        &[],
    ),
    (
        "security.istio.io",
        "PeerAuthentication",
        "peerauthentications",
        &["v1", "v1beta1"],
        &["pa"],
    ),
    (
        "security.istio.io",
        "AuthorizationPolicy",
        "authorizationpolicies",
        &["v1", "v1beta1"],
        &["ap"],
    ),
    (
        "security.istio.io",
        "RequestAuthentication",
        "requestauthentications",
        &["v1", "v1beta1"],
        &["ra"],
    ),
    (
        "telemetry.istio.io",
        "Telemetry",
        "telemetries",
        &["v1", "v1alpha1"],
        &["telemetry"],
    ),
    (
        "install.istio.io",
        "IstioOperator",
        "istiooperators",
        &["v1alpha1"],
        &["iop", "io"],
    ),
];

/// Permissive CustomResourceDefinitions for the Istio kinds (not Istio's real schemas).
pub fn istio_permissive_crds() -> Vec<Value> {
    ISTIO_KINDS
        .iter()
        .map(|(group, kind, plural, versions, short)| {
            let versions: Vec<Value> = versions
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    json!({"name": v, "served": true, "storage": i == 0,
                        "subresources": {"status": {}},
                        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
                })
                .collect();
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": format!("{plural}.{group}"), "labels": {"meshsim.io/permissive": "true"}},
                "spec": {"group": group, "scope": "Namespaced",
                    "names": {"kind": kind, "plural": plural, "singular": kind.to_ascii_lowercase(),
                        "listKind": format!("{kind}List"), "shortNames": short, "categories": ["istio-io"]},
                    "versions": versions},
            })
        })
        .collect()
}
