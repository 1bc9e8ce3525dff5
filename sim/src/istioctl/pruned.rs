//! What istioctl's pruner looks at (install after applying, uninstall
//! always) and how it names what it deletes.

/// Namespaced kinds the pruner looks at (plus the EndpointSlice the remote profile renders).
pub(super) const NAMESPACED: &[(&str, &str)] = &[
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
    ("v1", "Service"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("v1", "ConfigMap"),
    ("v1", "Pod"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("networking.istio.io/v1alpha3", "EnvoyFilter"),
    ("coordination.k8s.io/v1", "Lease"),
];

/// Cluster-scoped kinds the pruner looks at.
pub(super) const CLUSTER: &[(&str, &str)] = &[
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
];

/// `apps/v1, Kind=Deployment/istiod.istio-system`, as istioctl names what it deletes.
pub(super) fn removed_name(api_version: &str, kind: &str, name: &str, ns: &str) -> String {
    let gv = match api_version.split_once('/') {
        Some((g, v)) => format!("{g}/{v}"),
        None => format!("/{api_version}"),
    };
    format!("{gv}, Kind={kind}/{name}.{ns}")
}
