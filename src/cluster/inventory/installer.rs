//! The installer of record: who installed (and so must change) istiod.
//!
//! - istioctl: the operator's labels (`operator.istio.io/managed`,
//!   `install.operator.istio.io/owning-resource`) on istiod and friends;
//! - Helm: release Secrets `sh.helm.release.v1.<release>.v<N>` (labels
//!   `owner=helm`, `name`, `status`) in the control plane's namespace, and
//!   `app.kubernetes.io/managed-by: Helm` on istiod;
//! - the Sail operator: `Istio` / `IstioRevision` objects of `sailoperator.io`.

use super::{label, name};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// istioctl's labels on what it installs.
pub const OPERATOR_LABELS: [&str; 2] = [
    "operator.istio.io/managed",
    "install.operator.istio.io/owning-resource",
];
/// The label Helm-rendered objects carry.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The label naming a Helm-rendered object's release.
pub const INSTANCE: &str = "app.kubernetes.io/instance";

/// Which installer put the mesh there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallerKind {
    /// No istiod here.
    None,
    /// `istioctl install` (the operator's labels).
    Istioctl,
    /// Helm, with Istio's charts.
    Helm,
    /// The Sail operator (`sailoperator.io`).
    Sail,
    /// istiod runs, but nothing says who installed it (plain manifests).
    Unknown,
}

impl InstallerKind {
    /// The name `spec.installer.kind` gives it (`istioctl`, `helm`), or the
    /// word for it when the spec has none.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallerKind::None => "none",
            InstallerKind::Istioctl => "istioctl",
            InstallerKind::Helm => "helm",
            InstallerKind::Sail => "sail",
            InstallerKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for InstallerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The installer found and why we think so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallerOfRecord {
    /// Which installer.
    pub kind: InstallerKind,
    /// Helm's releases in the namespace (latest record of each), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<HelmRelease>,
    /// What says so, in words (`release istiod in istio-system`).
    pub evidence: String,
}

/// One Helm release, from its latest record's labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmRelease {
    /// The release name (label `name`).
    pub name: String,
    /// The release revision (`v<N>` of the Secret's name, label `version`).
    pub version: u32,
    /// `deployed`, `pending-upgrade`, `failed`, ...
    pub status: String,
}

/// The installer of record from the istiod Deployments, Helm's release
/// Secrets of their namespace and the Sail operator's objects (None: the
/// API is not served).
pub fn classify(
    istiods: &[&Value],
    helm_secrets: &[Value],
    sail: Option<&[Value]>,
) -> InstallerOfRecord {
    let releases = releases(helm_secrets);
    let namespace = istiods
        .first()
        .and_then(|d| d.pointer("/metadata/namespace"))
        .and_then(Value::as_str)
        .unwrap_or("istio-system");
    let record = |kind, evidence: String| InstallerOfRecord {
        kind,
        releases: releases.clone(),
        evidence,
    };
    if let Some(objects) = sail.filter(|s| !s.is_empty()) {
        let names: Vec<String> = objects
            .iter()
            .map(|o| {
                let kind = o.get("kind").and_then(Value::as_str).unwrap_or("Istio");
                format!("{kind} {}", name(o))
            })
            .collect();
        return record(
            InstallerKind::Sail,
            format!("{} (sailoperator.io)", names.join(", ")),
        );
    }
    if istiods.is_empty() {
        return record(InstallerKind::None, "no istiod Deployment".into());
    }
    // The release that rendered istiod, by its instance label; else any
    // release there, when istiod says Helm manages it.
    let helm_istiod = istiods
        .iter()
        .find(|d| label(d, MANAGED_BY) == Some("Helm"));
    let rendered_by = istiods
        .iter()
        .filter_map(|d| label(d, INSTANCE))
        .find(|i| releases.iter().any(|r| r.name == *i));
    if let Some(release) = rendered_by {
        return record(
            InstallerKind::Helm,
            format!("release {release} in {namespace}"),
        );
    }
    if let Some(d) = helm_istiod {
        let evidence = match releases.first() {
            Some(r) => format!("release {} in {namespace}", r.name),
            None => format!("{MANAGED_BY}: Helm on Deployment {namespace}/{}", name(d)),
        };
        return record(InstallerKind::Helm, evidence);
    }
    if let Some((d, key)) = istiods.iter().find_map(|d| {
        OPERATOR_LABELS
            .iter()
            .find(|k| label(d, k).is_some())
            .map(|k| (d, k))
    }) {
        return record(
            InstallerKind::Istioctl,
            format!("label {key} on Deployment {namespace}/{}", name(d)),
        );
    }
    record(
        InstallerKind::Unknown,
        format!(
            "Deployment {namespace}/{} carries neither istioctl's nor Helm's labels",
            name(istiods[0])
        ),
    )
}

/// The latest record of every release among Helm's Secrets (type
/// `helm.sh/release.v1`, labels `name`, `version`, `status`).
pub fn releases(secrets: &[Value]) -> Vec<HelmRelease> {
    let mut latest: BTreeMap<String, HelmRelease> = BTreeMap::new();
    for s in secrets {
        if s.get("type").and_then(Value::as_str) != Some("helm.sh/release.v1") {
            continue;
        }
        let Some(release) = label(s, "name") else {
            continue;
        };
        let version = label(s, "version")
            .and_then(|v| v.parse().ok())
            .or_else(|| name(s).rsplit_once(".v").and_then(|(_, v)| v.parse().ok()))
            .unwrap_or(0);
        let status = label(s, "status").unwrap_or("unknown").to_string();
        let newer = latest.get(release).is_none_or(|r| r.version < version);
        if newer {
            latest.insert(
                release.to_string(),
                HelmRelease {
                    name: release.to_string(),
                    version,
                    status,
                },
            );
        }
    }
    latest.into_values().collect()
}
