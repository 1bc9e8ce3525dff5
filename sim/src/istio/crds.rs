//! The CustomResourceDefinitions of Istio's kinds, as the base component of
//! `istioctl install` registers them: served versions, storage version,
//! short names and categories as Istio declares them, and structural
//! schemas (written in meshsim's own words, one module per API group) that
//! know every field Istio's own CRDs know. A field they do not know is
//! refused under `--validate=strict` at any depth, as a real cluster refuses
//! it. A test pins the field trees to Istio's CRDs when those are at hand.
//!
//! Reading a field tree: `f` is an optional field, `req` a required one,
//! `nullable` one that may be `null`; an upper-case constant is a message
//! (an object's fields) named as Istio's API names it, shared where Istio
//! shares it (a DestinationRule's `trafficPolicy` and a subset's are one).
//! `Open` marks the few places Istio keeps any field (an EnvoyFilter patch's
//! `value`, a WasmPlugin's `pluginConfig`, `status`).

mod common;
mod extensions;
mod networking;
mod security;
mod telemetry;
#[cfg(test)]
mod tests;

use crate::schema::tree::{Field, Ty, f, object_schema};
use serde_json::{Value, json};

/// One Istio kind and what its CustomResourceDefinition declares.
#[derive(Debug, Clone, Copy)]
pub struct IstioKind {
    /// API group (`networking.istio.io`).
    pub group: &'static str,
    /// Kind (`DestinationRule`).
    pub kind: &'static str,
    /// Resource name (`destinationrules`).
    pub plural: &'static str,
    /// Served versions, in the order Istio lists them.
    pub versions: &'static [&'static str],
    /// The version objects are stored in.
    pub storage: &'static str,
    /// `kubectl get` short names (`dr`).
    pub short_names: &'static [&'static str],
    /// The fields of `spec`.
    pub spec: &'static [Field],
    /// Whether an object must have a `spec`.
    pub spec_required: bool,
}

const NETWORKING_VERSIONS: &[&str] = &["v1", "v1alpha3", "v1beta1"];
const SECURITY_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// Every kind the base component registers, in Istio's order.
pub const KINDS: &[IstioKind] = &[
    IstioKind {
        group: "extensions.istio.io",
        kind: "TrafficExtension",
        plural: "trafficextensions",
        versions: &["v1alpha1"],
        storage: "v1alpha1",
        short_names: &[],
        spec: extensions::TRAFFIC_EXTENSION_SPEC,
        spec_required: true,
    },
    IstioKind {
        group: "extensions.istio.io",
        kind: "WasmPlugin",
        plural: "wasmplugins",
        versions: &["v1alpha1"],
        storage: "v1alpha1",
        short_names: &[],
        spec: extensions::WASM_PLUGIN_SPEC,
        spec_required: true,
    },
    IstioKind {
        group: "networking.istio.io",
        kind: "DestinationRule",
        plural: "destinationrules",
        versions: NETWORKING_VERSIONS,
        storage: "v1",
        short_names: &["dr"],
        spec: networking::DESTINATION_RULE_SPEC,
        spec_required: false,
    },
    IstioKind {
        group: "networking.istio.io",
        kind: "EnvoyFilter",
        plural: "envoyfilters",
        versions: &["v1alpha3"],
        storage: "v1alpha3",
        short_names: &[],
        spec: networking::ENVOY_FILTER_SPEC,
        spec_required: false,
    },
    IstioKind {
        group: "networking.istio.io",
        kind: "Gateway",
        plural: "gateways",
        versions: NETWORKING_VERSIONS,
        storage: "v1",
        short_names: &["gw"],
        spec: networking::GATEWAY_SPEC,
        spec_required: false,
    },
    IstioKind {
        group: "networking.istio.io",
        kind: "ProxyConfig",
        plural: "proxyconfigs",
        versions: &["v1beta1"],
        storage: "v1beta1",
        short_names: &[],
        spec: networking::PROXY_CONFIG_SPEC,
        spec_required: false,
    },
    IstioKind {
        group: "networking.istio.io",
        kind: "ServiceEntry",
        plural: "serviceentries",
        versions: NETWORKING_VERSIONS,
        storage: "v1",
        short_names: &["se"],
        spec: networking::SERVICE_ENTRY_SPEC,
        spec_required: true,
    },
    IstioKind {
        group: "networking.istio.io",
        kind: "Sidecar",
        plural: "sidecars",
        versions: NETWORKING_VERSIONS,
        storage: "v1",
        short_names: &[],
        spec: networking::SIDECAR_SPEC,
        spec_required: false,
    },
    IstioKind {
        group: "networking.istio.io",
        kind: "VirtualService",
        plural: "virtualservices",
        versions: NETWORKING_VERSIONS,
        storage: "v1",
        short_names: &["vs"],
        spec: networking::VIRTUAL_SERVICE_SPEC,
        spec_required: false,
    },
    IstioKind {
        group: "networking.istio.io",
        kind: "WorkloadEntry",
        plural: "workloadentries",
        versions: NETWORKING_VERSIONS,
        storage: "v1",
        short_names: &["we"],
        spec: networking::WORKLOAD_ENTRY,
        spec_required: true,
    },
    IstioKind {
        group: "networking.istio.io",
        kind: "WorkloadGroup",
        plural: "workloadgroups",
        versions: NETWORKING_VERSIONS,
        storage: "v1",
        short_names: &["wg"],
        spec: networking::WORKLOAD_GROUP_SPEC,
        spec_required: true,
    },
    IstioKind {
        group: "security.istio.io",
        kind: "AuthorizationPolicy",
        plural: "authorizationpolicies",
        versions: SECURITY_VERSIONS,
        storage: "v1",
        short_names: &["ap"],
        spec: security::AUTHORIZATION_POLICY_SPEC,
        spec_required: false,
    },
    IstioKind {
        group: "security.istio.io",
        kind: "PeerAuthentication",
        plural: "peerauthentications",
        versions: SECURITY_VERSIONS,
        storage: "v1",
        short_names: &["pa"],
        spec: security::PEER_AUTHENTICATION_SPEC,
        spec_required: false,
    },
    IstioKind {
        group: "security.istio.io",
        kind: "RequestAuthentication",
        plural: "requestauthentications",
        versions: SECURITY_VERSIONS,
        storage: "v1",
        short_names: &["ra"],
        spec: security::REQUEST_AUTHENTICATION_SPEC,
        spec_required: false,
    },
    IstioKind {
        group: "telemetry.istio.io",
        kind: "Telemetry",
        plural: "telemetries",
        versions: &["v1", "v1alpha1"],
        storage: "v1alpha1",
        short_names: &["telemetry"],
        spec: telemetry::TELEMETRY_SPEC,
        spec_required: false,
    },
];

impl IstioKind {
    /// `destinationrules.networking.istio.io`.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// `istio-io` and the group's own (`networking-istio-io`), as Istio lists them.
    pub fn categories(&self) -> [String; 2] {
        ["istio-io".to_string(), self.group.replace('.', "-")]
    }

    /// The `openAPIV3Schema` of every version: `spec` as described, and the
    /// `status` istiod writes, which also keeps fields it does not know.
    pub fn schema(&self) -> Value {
        let root: &[Field] = &[
            f("spec", Ty::Obj(self.spec)),
            f("status", Ty::OpenObj(common::STATUS)),
        ];
        let mut schema = object_schema(root);
        if self.spec_required {
            schema["required"] = json!(["spec"]);
        }
        schema
    }

    /// The CustomResourceDefinition (no labels: the installer adds its own).
    pub fn crd(&self) -> Value {
        let schema = self.schema();
        let versions: Vec<Value> = self
            .versions
            .iter()
            .map(|v| {
                json!({"name": v, "served": true, "storage": *v == self.storage,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema}})
            })
            .collect();
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": self.crd_name()},
            "spec": {"group": self.group, "scope": "Namespaced",
                "names": {"kind": self.kind, "plural": self.plural,
                    "singular": self.kind.to_ascii_lowercase(),
                    "listKind": format!("{}List", self.kind),
                    "shortNames": self.short_names, "categories": self.categories()},
                "versions": versions},
        })
    }
}

/// The CustomResourceDefinitions of every Istio kind, in Istio's order.
pub fn crds() -> Vec<Value> {
    KINDS.iter().map(IstioKind::crd).collect()
}
