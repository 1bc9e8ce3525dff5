//! The data plane mode: sidecars, or ambient (ztunnel, namespaces labelled
//! `istio.io/dataplane-mode=ambient`).

use super::{label, name};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The namespace label that puts a namespace in ambient mode.
pub const DATAPLANE_MODE_LABEL: &str = "istio.io/dataplane-mode";

/// How workloads join the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataPlaneMode {
    /// An injected `istio-proxy` per pod.
    Sidecar,
    /// ztunnel per node (and waypoints): no sidecars.
    Ambient,
}

impl fmt::Display for DataPlaneMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataPlaneMode::Sidecar => "sidecar",
            DataPlaneMode::Ambient => "ambient",
        })
    }
}

/// The mode and what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataPlane {
    /// The mode.
    pub mode: DataPlaneMode,
    /// What shows ambient (`DaemonSet istio-system/ztunnel`); empty for sidecars.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// Ambient when a ztunnel DaemonSet runs in the control plane's namespace
/// or any namespace is labelled for ambient; sidecars otherwise.
pub fn classify(daemonsets: &[Value], namespaces: &[Value]) -> DataPlane {
    let mut evidence: Vec<String> = daemonsets
        .iter()
        .filter(|d| name(d) == "ztunnel" || label(d, "app") == Some("ztunnel"))
        .map(|d| {
            let ns = d
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("?");
            format!("DaemonSet {ns}/{}", name(d))
        })
        .collect();
    evidence.extend(
        namespaces
            .iter()
            .filter(|ns| label(ns, DATAPLANE_MODE_LABEL) == Some("ambient"))
            .map(|ns| format!("Namespace {} ({DATAPLANE_MODE_LABEL}=ambient)", name(ns))),
    );
    let mode = if evidence.is_empty() {
        DataPlaneMode::Sidecar
    } else {
        DataPlaneMode::Ambient
    };
    DataPlane { mode, evidence }
}
