//! What the checker expects of the mesh: the clusters and how to reach them,
//! and what the user said (a spec) about names, networks and the model.
//! Every value is optional: without a spec (`--context A --context B`) the
//! checker fills what the clusters show ([`Expect::fill_from`]), and a rule
//! that needs a value nobody gave is skipped with an info finding (MC002).

use super::snapshot::ClusterSnapshot;
use crate::cluster::ClusterTarget;
use serde::Serialize;
use std::path::PathBuf;

/// The mesh's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Model {
    /// Every cluster runs istiod.
    MultiPrimary,
    /// Some clusters (remotes) are led by another's istiod.
    PrimaryRemote,
}

/// A cluster's part in the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs istiod.
    Primary,
    /// Led by a primary's istiod.
    Remote,
}

/// Where a value came from: the user's word is checked against the
/// clusters; a value read from the clusters is only compared across them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The spec (or a flag) said so.
    Said,
    /// Read from the clusters (no spec).
    Guessed,
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Known<T> {
    /// The value.
    pub value: T,
    /// Said or guessed.
    pub source: Source,
}

impl<T> Known<T> {
    /// A value the user gave.
    pub fn said(value: T) -> Self {
        Known {
            value,
            source: Source::Said,
        }
    }

    /// A value read from the clusters.
    pub fn guessed(value: T) -> Self {
        Known {
            value,
            source: Source::Guessed,
        }
    }
}

/// What is expected of one cluster.
#[derive(Debug, Clone)]
pub struct ClusterExpect {
    /// Which context of which kubeconfig reaches it; `target.name` names it in findings.
    pub target: ClusterTarget,
    /// Its Istio clusterName.
    pub cluster_name: Option<Known<String>>,
    /// Its network (multi-network meshes).
    pub network: Option<Known<String>>,
    /// Primary or remote.
    pub role: Option<Known<Role>>,
    /// For a remote: the cluster (by `target.name`) whose istiod leads it.
    pub primary: Option<String>,
    /// The API server address other clusters' istiods dial (the spec's
    /// `apiServer`); none: the address of the context.
    pub api_server: Option<String>,
}

impl ClusterExpect {
    /// A cluster reached by `target`, nothing else said.
    pub fn new(target: ClusterTarget) -> Self {
        ClusterExpect {
            target,
            cluster_name: None,
            network: None,
            role: None,
            primary: None,
            api_server: None,
        }
    }

    /// The name findings use.
    pub fn name(&self) -> &str {
        &self.target.name
    }

    /// Whether it runs istiod (unknown role: assumed primary).
    pub fn is_primary(&self) -> bool {
        !matches!(
            self.role,
            Some(Known {
                value: Role::Remote,
                ..
            })
        )
    }
}

/// What the checker expects of the whole mesh.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The clusters, in the order given.
    pub clusters: Vec<ClusterExpect>,
    /// The kubeconfig for clusters that name none (`--kubeconfig`, `$KUBECONFIG`).
    pub default_kubeconfig: Option<PathBuf>,
    /// The control plane's namespace.
    pub namespace: String,
    /// The meshID every cluster shares.
    pub mesh_id: Option<Known<String>>,
    /// Multi-primary or primary-remote.
    pub model: Option<Known<Model>>,
    /// Whether the clusters are on different networks.
    pub multi_network: Option<Known<bool>>,
    /// The control plane revision (`default` when none).
    pub revision: Option<String>,
    /// The Istio version every cluster should run.
    pub istio_version: Option<String>,
}

/// The control plane's usual namespace.
pub const ISTIO_SYSTEM: &str = "istio-system";

impl Expect {
    /// Clusters reached by `targets`, nothing else said.
    pub fn from_targets(targets: Vec<ClusterTarget>, default_kubeconfig: Option<PathBuf>) -> Self {
        Expect {
            clusters: targets.into_iter().map(ClusterExpect::new).collect(),
            default_kubeconfig,
            namespace: ISTIO_SYSTEM.to_string(),
            mesh_id: None,
            model: None,
            multi_network: None,
            revision: None,
            istio_version: None,
        }
    }

    /// The expectation of cluster `name`.
    pub fn cluster(&self, name: &str) -> Option<&ClusterExpect> {
        self.clusters.iter().find(|c| c.name() == name)
    }

    /// Fills what nobody said from what the clusters show: clusterName from
    /// istiod's `CLUSTER_ID`, network from the `istio-system` label, role
    /// from whether istiod runs there, meshID from the first cluster that
    /// has one, the model and whether the mesh is multi-network from those.
    /// Values said stay as said.
    pub fn fill_from(&mut self, snapshots: &[ClusterSnapshot]) {
        for c in &mut self.clusters {
            let Some(s) = snapshots.iter().find(|s| s.cluster == c.target.name) else {
                continue;
            };
            if c.cluster_name.is_none() {
                c.cluster_name = s.istiod_cluster_id().map(|v| Known::guessed(v.to_string()));
            }
            if c.network.is_none() {
                c.network = s.network_label.clone().map(Known::guessed);
            }
            if c.role.is_none() && s.read_ok() {
                let role = if s.runs_istiod() {
                    Role::Primary
                } else {
                    Role::Remote
                };
                c.role = Some(Known::guessed(role));
            }
        }
        if self.mesh_id.is_none() {
            self.mesh_id = snapshots
                .iter()
                .find_map(|s| s.mesh_id.clone())
                .map(Known::guessed);
        }
        if self.model.is_none() && !self.clusters.iter().all(|c| c.role.is_none()) {
            let model = if self.clusters.iter().all(ClusterExpect::is_primary) {
                Model::MultiPrimary
            } else {
                Model::PrimaryRemote
            };
            self.model = Some(Known::guessed(model));
        }
        if self.multi_network.is_none() {
            let networks: std::collections::BTreeSet<&str> = self
                .clusters
                .iter()
                .filter_map(|c| c.network.as_ref().map(|n| n.value.as_str()))
                .collect();
            if !networks.is_empty() {
                self.multi_network = Some(Known::guessed(networks.len() > 1));
            }
        }
    }

    /// Whether the mesh is multi-network (unknown: false).
    pub fn is_multi_network(&self) -> bool {
        self.multi_network.as_ref().is_some_and(|k| k.value)
    }

    /// Whether the mesh is primary-remote (unknown: false).
    pub fn is_primary_remote(&self) -> bool {
        matches!(
            self.model,
            Some(Known {
                value: Model::PrimaryRemote,
                ..
            })
        )
    }
}
