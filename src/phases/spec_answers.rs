//! What every phase asks of the spec (which cluster is the source, which
//! are primaries or remotes, where certificates go), answered once in [`Ctx`].

use crate::spec::{ClusterSpec, MeshMigration, Role, Spec, Topology};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The spec with the questions phases ask answered once.
pub struct Ctx<'a> {
    /// The whole document (metadata included).
    pub doc: &'a MeshMigration,
    /// Its `spec`, which phases read most.
    pub spec: &'a Spec,
    /// More than one distinct network: east-west gateways and the
    /// cross-network Gateway are needed.
    pub multi_network: bool,
    by_name: HashMap<&'a str, &'a ClusterSpec>,
}

impl<'a> Ctx<'a> {
    /// Answers the questions once for `doc`.
    pub fn new(doc: &'a MeshMigration) -> Ctx<'a> {
        let networks: BTreeSet<&str> = doc
            .spec
            .clusters
            .iter()
            .filter_map(|c| c.network.as_deref())
            .collect();
        Ctx {
            doc,
            spec: &doc.spec,
            multi_network: networks.len() > 1,
            by_name: doc
                .spec
                .clusters
                .iter()
                .map(|c| (c.name.as_str(), c))
                .collect(),
        }
    }

    /// Every cluster, in spec order.
    pub fn clusters(&self) -> &'a [ClusterSpec] {
        &self.spec.clusters
    }

    /// The cluster called `name`.
    pub fn cluster(&self, name: &str) -> Option<&'a ClusterSpec> {
        self.by_name.get(name).copied()
    }

    /// The cluster running the mesh today (the first one should validation
    /// ever let a spec without one through).
    pub fn source(&self) -> Option<&'a ClusterSpec> {
        self.spec
            .clusters
            .iter()
            .find(|c| c.source)
            .or(self.spec.clusters.first())
    }

    /// Whether `c` is the cluster running the mesh today.
    pub fn is_source(&self, c: &ClusterSpec) -> bool {
        self.source().is_some_and(|s| s.name == c.name)
    }

    /// Whether `c` runs a mesh before the migration that the migration
    /// keeps: the source, or a primary whose spec says `existingMesh: adopt`.
    /// Such a mesh is reconfigured in place and, on rollback, re-installed
    /// from the values it had; it is never uninstalled.
    pub fn keeps_existing_mesh(&self, c: &ClusterSpec) -> bool {
        self.is_source(c) || (c.adopts_existing_mesh() && !self.is_remote(c))
    }

    /// Whether the mesh is primary-remote (else multi-primary).
    pub fn primary_remote(&self) -> bool {
        self.spec.topology == Topology::PrimaryRemote
    }

    /// A remote of a primary-remote mesh (no istiod of its own).
    pub fn is_remote(&self, c: &ClusterSpec) -> bool {
        self.primary_remote() && c.role == Some(Role::Remote)
    }

    /// Clusters that run istiod and hold Istio configuration.
    pub fn primaries(&self) -> impl Iterator<Item = &'a ClusterSpec> + '_ {
        self.spec.clusters.iter().filter(|c| !self.is_remote(c))
    }

    /// The remotes of a primary-remote mesh, in spec order.
    pub fn remotes(&self) -> impl Iterator<Item = &'a ClusterSpec> + '_ {
        self.spec.clusters.iter().filter(|c| self.is_remote(c))
    }

    /// The primary serving a remote: the one it names, else the source when
    /// it is a primary, else the first primary.
    pub fn primary_of(&self, remote: &ClusterSpec) -> Option<&'a ClusterSpec> {
        remote
            .primary
            .as_deref()
            .and_then(|p| self.cluster(p))
            .or_else(|| self.source().filter(|s| !self.is_remote(s)))
            .or_else(|| self.primaries().next())
    }

    /// The remotes served by `primary`.
    pub fn remotes_of(&self, primary: &ClusterSpec) -> Vec<&'a ClusterSpec> {
        self.remotes()
            .filter(|r| self.primary_of(r).is_some_and(|p| p.name == primary.name))
            .collect()
    }

    /// The primary-side cluster that holds the configuration for `c`.
    pub fn config_cluster(&self, c: &'a ClusterSpec) -> &'a ClusterSpec {
        if self.is_remote(c) {
            self.primary_of(c).unwrap_or(c)
        } else {
            c
        }
    }

    /// A primary (not remote) with its own east-west gateway installed in
    /// phase 1: every primary of a multi-network mesh, and every primary
    /// serving remotes (istiod is exposed through it).
    pub fn primary_has_eastwest(&self, c: &ClusterSpec) -> bool {
        !self.is_remote(c) && (self.multi_network || !self.remotes_of(c).is_empty())
    }

    /// Injected namespaces to restart in `c`.
    pub fn workload_namespaces(&self, c: &ClusterSpec) -> &'a [String] {
        self.spec
            .workloads
            .per_cluster
            .get(&c.name)
            .unwrap_or(&self.spec.workloads.restart_namespaces)
    }

    /// The control plane revision, empty for the default one.
    pub fn revision(&self) -> &'a str {
        self.spec.mesh.revision()
    }

    /// Where certificates and keys are written on this machine.
    pub fn cert_dir(&self) -> &'a Path {
        &self.spec.trust.cert_dir
    }

    /// A path under [`cert_dir`](Self::cert_dir), joined from `parts`.
    pub fn cert_path(&self, parts: &[&str]) -> PathBuf {
        let mut p = self.cert_dir().to_path_buf();
        for part in parts {
            p.push(part);
        }
        p
    }
}
