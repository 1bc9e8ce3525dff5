//! Istio's 15 CRDs (1.30.3, FACTS.md 5) with permissive schemas, for the
//! stand-in istioctl to install when the real ones are not present. Tests
//! that want Istio's real schemas apply ../shared/istio/crds first; an
//! existing CRD is never replaced.

use serde_json::{Value, json};

/// (plural, group, kind, short names, served versions, storage version)
pub type IstioKind = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
);

pub const ISTIO_KINDS: &[IstioKind] = &[
    (
        "trafficextensions",
        "extensions.istio.io",
        "TrafficExtension",
        &[],
        &["v1alpha1"],
        "v1alpha1",
    ),
    (
        "wasmplugins",
        "extensions.istio.io",
        "WasmPlugin",
        &[],
        &["v1alpha1"],
        "v1alpha1",
    ),
    (
        "destinationrules",
        "networking.istio.io",
        "DestinationRule",
        &["dr"],
        &["v1", "v1alpha3", "v1beta1"],
        "v1",
    ),
    (
        "envoyfilters",
        "networking.istio.io",
        "EnvoyFilter",
        &[],
        &["v1alpha3"],
        "v1alpha3",
    ),
    (
        "gateways",
        "networking.istio.io",
        "Gateway",
        &["gw"],
        &["v1", "v1alpha3", "v1beta1"],
        "v1",
    ),
    (
        "proxyconfigs",
        "networking.istio.io",
        "ProxyConfig",
        &[],
        &["v1beta1"],
        "v1beta1",
    ),
    (
        "serviceentries",
        "networking.istio.io",
        "ServiceEntry",
        &["se"],
        &["v1", "v1alpha3", "v1beta1"],
        "v1",
    ),
    (
        "sidecars",
        "networking.istio.io",
        "Sidecar",
        &[],
        &["v1", "v1alpha3", "v1beta1"],
        "v1",
    ),
    (
        "virtualservices",
        "networking.istio.io",
        "VirtualService",
        &["vs"],
        &["v1", "v1alpha3", "v1beta1"],
        "v1",
    ),
    (
        "workloadentries",
        "networking.istio.io",
        "WorkloadEntry",
        &["we"],
        &["v1", "v1alpha3", "v1beta1"],
        "v1",
    ),
    (
        "workloadgroups",
        "networking.istio.io",
        "WorkloadGroup",
        &["wg"],
        &["v1", "v1alpha3", "v1beta1"],
        "v1",
    ),
    (
        "authorizationpolicies",
        "security.istio.io",
        "AuthorizationPolicy",
        &["ap"],
        &["v1", "v1beta1"],
        "v1",
    ),
    (
        "peerauthentications",
        "security.istio.io",
        "PeerAuthentication",
        &["pa"],
        &["v1", "v1beta1"],
        "v1",
    ),
    (
        "requestauthentications",
        "security.istio.io",
        "RequestAuthentication",
        &["ra"],
        &["v1", "v1beta1"],
        "v1",
    ),
    (
        "telemetries",
        "telemetry.istio.io",
        "Telemetry",
        &["telemetry"],
        &["v1", "v1alpha1"],
        "v1alpha1",
    ),
];

/// The CustomResourceDefinitions, each accepting any `spec` and `status`.
pub fn permissive_crds() -> Vec<Value> {
    ISTIO_KINDS
        .iter()
        .map(|(plural, group, kind, short, versions, storage)| {
            let schema = json!({"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                },
                "x-kubernetes-preserve-unknown-fields": true
            }});
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| json!({"name": v, "served": true, "storage": v == storage, "schema": schema,
                                "subresources": {"status": {}}}))
                .collect();
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {
                    "name": format!("{plural}.{group}"),
                    "labels": {"app": "istio-pilot", "chart": "istio", "heritage": "Tiller", "release": "istio"},
                    "annotations": {"helm.sh/resource-policy": "keep"}
                },
                "spec": {
                    "group": group,
                    "names": {
                        "kind": kind,
                        "listKind": format!("{kind}List"),
                        "plural": plural,
                        "singular": kind.to_lowercase(),
                        "shortNames": short,
                        "categories": ["istio-io", group.split('.').next().unwrap_or("istio")],
                    },
                    "scope": "Namespaced",
                    "versions": versions
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_kinds_one_storage_version_each() {
        let crds = permissive_crds();
        assert_eq!(crds.len(), 15);
        for crd in &crds {
            let versions = crd["spec"]["versions"].as_array().unwrap();
            assert_eq!(
                versions.iter().filter(|v| v["storage"] == true).count(),
                1,
                "{}",
                crd["metadata"]["name"]
            );
        }
        assert!(
            crds.iter()
                .any(|c| c["metadata"]["name"] == "destinationrules.networking.istio.io")
        );
    }
}
