//! What a multi-cluster mesh leaves in a cluster: remote secrets, an
//! east-west gateway, the network label on the control plane's namespace.
//! Found before the migration, they are a half-done manual migration.

use super::{label, name};
use serde_json::Value;

/// The namespace label naming the cluster's network.
pub const NETWORK_LABEL: &str = "topology.istio.io/network";

/// One line per object of a multi-cluster mesh already present.
pub fn evidence(
    namespace: Option<&Value>,
    remote_secrets: &[Value],
    deployments: &[Value],
    services: &[Value],
) -> Vec<String> {
    let ns_of = |o: &Value| {
        o.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    let mut out: Vec<String> = remote_secrets
        .iter()
        .map(|s| format!("remote secret {}/{}", ns_of(s), name(s)))
        .collect();
    let east_west = |o: &Value| label(o, "istio") == Some("eastwestgateway");
    out.extend(
        deployments
            .iter()
            .filter(|d| east_west(d))
            .map(|d| format!("east-west gateway Deployment {}/{}", ns_of(d), name(d))),
    );
    out.extend(
        services
            .iter()
            .filter(|s| east_west(s) || label(s, NETWORK_LABEL).is_some())
            .map(|s| format!("east-west gateway Service {}/{}", ns_of(s), name(s))),
    );
    if let Some(ns) = namespace
        && let Some(network) = label(ns, NETWORK_LABEL)
    {
        out.push(format!(
            "Namespace {} labelled {NETWORK_LABEL}={network}",
            name(ns)
        ));
    }
    out
}
