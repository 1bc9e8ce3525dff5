//! What mesh a cluster runs today, read before anything changes: the
//! installer of record, control-plane revisions and tags, versions, the
//! data plane mode, the CA and any multi-cluster leftovers.
//!
//! [`read`] lists the objects (read-only); the classifiers in the submodules
//! are pure functions over them, so each is unit-tested without a cluster.
//! Secret values never leave the classifiers: the inventory holds names,
//! labels and booleans only.

pub mod ca;
pub mod dataplane;
pub mod installer;
pub mod multicluster;
pub mod revisions;

pub use ca::{CaFound, CaKind};
pub use dataplane::{DataPlane, DataPlaneMode};
pub use installer::{InstallerKind, InstallerOfRecord};
pub use revisions::{ControlPlane, NamespaceUse, RevisionTag, minor_skew};

use super::{Backoff, Cluster, ClusterError, retry};
use crate::object::ObjectRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The API group of the Sail operator's `Istio` and `IstioRevision`.
pub const SAIL_API_VERSION: &str = "sailoperator.io/v1";
/// The Sail operator's kinds that say it owns the control plane.
pub const SAIL_KINDS: [&str; 2] = ["Istio", "IstioRevision"];
/// The label of istiod's remote secrets.
pub const REMOTE_SECRET_SELECTOR: &str = "istio/multiCluster=true";
/// The label of Helm's release Secrets.
pub const HELM_RELEASE_SELECTOR: &str = "owner=helm";

/// One cluster's mesh as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshInventory {
    /// The control plane's namespace that was read.
    pub namespace: String,
    /// Who installed the control plane.
    pub installer: InstallerOfRecord,
    /// One per istiod Deployment, by name.
    pub control_planes: Vec<ControlPlane>,
    /// `istio-revision-tag-<tag>` webhooks and the revision each points to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<RevisionTag>,
    /// Namespaces that join the mesh, and the revision or tag they name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NamespaceUse>,
    /// Sidecars or ambient.
    pub data_plane: DataPlane,
    /// The CA that signs workload certificates.
    pub ca: CaFound,
    /// Objects of a multi-cluster mesh already present (`Secret istio-system/x`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multi_cluster: Vec<String>,
    /// What could not be read (forbidden), so the inventory may be partial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<String>,
}

/// The objects the classifiers look at; [`read`] fills them from a cluster.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// The control plane's namespace.
    pub namespace: String,
    /// Its Namespace object, when it exists.
    pub namespace_object: Option<Value>,
    /// Deployments of the control plane's namespace.
    pub deployments: Vec<Value>,
    /// DaemonSets of the control plane's namespace.
    pub daemonsets: Vec<Value>,
    /// Services of the control plane's namespace.
    pub services: Vec<Value>,
    /// Helm's release Secrets (`owner=helm`) of the control plane's namespace.
    pub helm_releases: Vec<Value>,
    /// Remote secrets (`istio/multiCluster=true`) of the control plane's namespace.
    pub remote_secrets: Vec<Value>,
    /// `istio-ca-secret`, when present.
    pub ca_secret: Option<Value>,
    /// `cacerts`, when present.
    pub cacerts: Option<Value>,
    /// Every MutatingWebhookConfiguration.
    pub webhooks: Vec<Value>,
    /// Every Namespace.
    pub namespaces: Vec<Value>,
    /// The Sail operator's objects; None when its API is not served.
    pub sail: Option<Vec<Value>>,
    /// What could not be read.
    pub unread: Vec<String>,
}

/// Classifies what was read.
pub fn classify(objects: &Objects) -> MeshInventory {
    let istiods = revisions::istiods(&objects.deployments);
    MeshInventory {
        namespace: objects.namespace.clone(),
        installer: installer::classify(&istiods, &objects.helm_releases, objects.sail.as_deref()),
        control_planes: istiods
            .iter()
            .map(|d| revisions::control_plane(d))
            .collect(),
        tags: revisions::tags(&objects.webhooks),
        namespaces: revisions::namespace_uses(&objects.namespaces),
        data_plane: dataplane::classify(&objects.daemonsets, &objects.namespaces),
        ca: ca::classify(
            &istiods,
            objects.ca_secret.as_ref(),
            objects.cacerts.as_ref(),
        ),
        multi_cluster: multicluster::evidence(
            objects.namespace_object.as_ref(),
            &objects.remote_secrets,
            &objects.deployments,
            &objects.services,
        ),
        unread: objects.unread.clone(),
    }
}

/// Reads `cluster`'s mesh with `namespace` as the control plane's namespace.
/// Read-only. Each read is retried on its own under `backoff` (one flaky
/// answer must not fail the whole reading), `on_retry` told of each retry.
/// The Sail operator's objects are read only where its API is served; a
/// read the credentials forbid there is reported in `unread`.
pub async fn read(
    cluster: &Cluster,
    namespace: &str,
    backoff: Backoff,
    on_retry: &(dyn Fn(u32, &ClusterError) + Sync),
) -> Result<MeshInventory, ClusterError> {
    Ok(classify(
        &read_objects(cluster, namespace, backoff, on_retry).await?,
    ))
}

/// The objects [`read`] classifies, for callers that look at more of them
/// than the inventory keeps (the multi-cluster checker). They may hold
/// Secret data (`cacerts`, remote secrets): keep them in memory only.
pub async fn read_objects(
    cluster: &Cluster,
    namespace: &str,
    backoff: Backoff,
    on_retry: &(dyn Fn(u32, &ClusterError) + Sync),
) -> Result<Objects, ClusterError> {
    let ns = Some(namespace);
    let again = async |api_version: &str, kind: &str, ns: Option<&str>, selector: Option<&str>| {
        retry(
            backoff,
            || cluster.list(api_version, kind, ns, selector),
            on_retry,
        )
        .await
        .map(|(v, _)| v)
    };
    let get = async |key: ObjectRef| {
        retry(backoff, || cluster.get(&key), on_retry)
            .await
            .map(|(v, _)| v)
    };
    let mut sail = None;
    let mut unread = Vec::new();
    for kind in SAIL_KINDS {
        match again(SAIL_API_VERSION, kind, None, None).await {
            Ok(found) => sail.get_or_insert_with(Vec::new).extend(found),
            Err(ClusterError::UnknownKind { .. }) => {}
            Err(e) if e.code() == Some(403) => unread.push(format!("{kind}.sailoperator.io")),
            Err(e) => return Err(e),
        }
    }
    let webhooks = match again(
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        None,
        None,
    )
    .await
    {
        Err(ClusterError::UnknownKind { .. }) => Vec::new(),
        other => other?,
    };
    let objects = Objects {
        namespace: namespace.to_string(),
        namespace_object: get(ObjectRef::namespace(namespace)).await?,
        deployments: again("apps/v1", "Deployment", ns, None).await?,
        daemonsets: again("apps/v1", "DaemonSet", ns, None).await?,
        services: again("v1", "Service", ns, None).await?,
        helm_releases: again("v1", "Secret", ns, Some(HELM_RELEASE_SELECTOR)).await?,
        remote_secrets: again("v1", "Secret", ns, Some(REMOTE_SECRET_SELECTOR)).await?,
        ca_secret: get(ObjectRef::secret(namespace, ca::SELF_SIGNED_SECRET)).await?,
        cacerts: get(ObjectRef::secret(namespace, ca::PLUGGED_IN_SECRET)).await?,
        webhooks,
        namespaces: again("v1", "Namespace", None, None).await?,
        sail,
        unread,
    };
    Ok(objects)
}

impl MeshInventory {
    /// The Istio version of the mesh: that of the first control plane
    /// (by Deployment name) whose version is known.
    pub fn version(&self) -> Option<&str> {
        self.control_planes
            .iter()
            .find_map(|c| c.version.as_deref())
    }

    /// Whether any istiod runs here.
    pub fn has_mesh(&self) -> bool {
        !self.control_planes.is_empty()
    }

    /// One line: installer, revisions with versions, data plane, CA.
    pub fn summary(&self) -> String {
        let planes: Vec<String> = self
            .control_planes
            .iter()
            .map(|c| {
                format!(
                    "revision {} (Istio {})",
                    c.revision,
                    c.version.as_deref().unwrap_or("version unknown")
                )
            })
            .collect();
        let planes = if planes.is_empty() {
            "no istiod".to_string()
        } else {
            planes.join(", ")
        };
        format!(
            "installer {}, {planes}, {} mode, CA {}",
            self.installer.kind, self.data_plane.mode, self.ca.kind
        )
    }
}

/// A label of `object`, when set and not empty.
pub(crate) fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// `metadata.name` of `object`, `?` when missing.
pub(crate) fn name(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?")
}

/// The env of the first container of a Deployment's pod template.
pub(crate) fn env<'a>(deployment: &'a Value, key: &str) -> Option<&'a str> {
    deployment
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(key))
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests;
