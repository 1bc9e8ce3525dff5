//! The multi-cluster verifier: reads every cluster once ([`snapshot`]) and
//! runs pure rules over what it read ([`rules`]), each finding a mistake
//! users make when they join clusters into one mesh, with a stable code
//! ([`finding::CODES`]), the values seen and the fix.
//!
//! `migrate check` runs it on any mesh; the engine can run a chosen subset
//! ([`Group`]) as a gate between phases. It reads, never writes, and never
//! keeps or prints secret data (see [`snapshot`]).

pub mod expect;
pub mod finding;
pub mod rules;
pub mod snapshot;

pub use expect::{ClusterExpect, Expect, Known, Model, Role};
pub use finding::{CODES, Finding, Severity};
pub use snapshot::ClusterSnapshot;

use crate::cluster::{Backoff, Cluster, ClusterError, connect};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A group of checks: what a gate or `--group` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// Reading the clusters themselves (always on).
    Read,
    /// The roots each cluster serves and holds in `cacerts`.
    Roots,
    /// clusterName, remote secret names, meshID.
    Names,
    /// Network labels and values.
    Networks,
    /// The east-west gateway and its Gateways.
    Gateway,
    /// Remote secrets and istiod's view of its peers.
    RemoteSecrets,
    /// DestinationRules' failover and outlier detection.
    DestinationRules,
    /// Services across clusters.
    Services,
    /// A remote's injection webhook.
    Webhook,
    /// The reader identity remote secrets use.
    ReaderRbac,
    /// Istio versions across clusters.
    Skew,
    /// Injected pods started before the mesh changed.
    StalePods,
}

impl Group {
    /// Every group, in report order.
    pub const ALL: [Group; 12] = [
        Group::Read,
        Group::Roots,
        Group::Names,
        Group::Networks,
        Group::Gateway,
        Group::RemoteSecrets,
        Group::DestinationRules,
        Group::Services,
        Group::Webhook,
        Group::ReaderRbac,
        Group::Skew,
        Group::StalePods,
    ];

    /// The name `--group` takes.
    pub fn name(self) -> &'static str {
        match self {
            Group::Read => "read",
            Group::Roots => "roots",
            Group::Names => "names",
            Group::Networks => "networks",
            Group::Gateway => "gateway",
            Group::RemoteSecrets => "remote-secrets",
            Group::DestinationRules => "destination-rules",
            Group::Services => "services",
            Group::Webhook => "webhook",
            Group::ReaderRbac => "reader-rbac",
            Group::Skew => "skew",
            Group::StalePods => "stale-pods",
        }
    }

    /// The first three characters of its codes (`MC1` for roots).
    pub fn code_prefix(self) -> &'static str {
        match self {
            Group::Read => "MC0",
            Group::Roots => "MC1",
            Group::Names => "MC2",
            Group::Networks => "MC3",
            Group::Gateway => "MC4",
            Group::RemoteSecrets => "MC5",
            Group::DestinationRules | Group::Services => "MC6",
            Group::Webhook | Group::ReaderRbac => "MC7",
            Group::Skew => "MC8",
            Group::StalePods => "MC9",
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Group {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Group::ALL
            .into_iter()
            .find(|g| g.name() == s || g.name().replace('-', "_") == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Group::ALL.iter().map(|g| g.name()).collect();
                format!("unknown check group {s:?} (known: {})", names.join(", "))
            })
    }
}

/// What a check found, sorted: errors first, then by group, cluster, object, code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The clusters checked, by name.
    pub clusters: Vec<String>,
    /// The groups that ran.
    pub groups: Vec<Group>,
    /// Every finding.
    pub findings: Vec<Finding>,
}

impl Report {
    /// A report of `findings`, sorted stably.
    pub fn new(clusters: Vec<String>, groups: Vec<Group>, mut findings: Vec<Finding>) -> Report {
        findings.sort_by(|a, b| {
            (
                a.severity, a.group, &a.cluster, &a.object, &a.code, &a.message,
            )
                .cmp(&(
                    b.severity, b.group, &b.cluster, &b.object, &b.code, &b.message,
                ))
        });
        findings.dedup();
        Report {
            clusters,
            groups,
            findings,
        }
    }

    /// How many findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Whether any finding is an error (the check fails).
    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }
}

/// Why a check could not run at all (as opposed to what it found).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// No cluster to check.
    #[error("no cluster to check: give a spec (-f) or at least one --context")]
    NoClusters,
    /// A context that cannot be loaded from its kubeconfig (unknown, unreadable).
    #[error(transparent)]
    Connect(ClusterError),
}

/// Connects to every cluster of `expect`, then [`run_on`]. A cluster that
/// cannot be reached is an MC001 finding, not an error; a context the
/// kubeconfig does not have is an error (the input is wrong).
pub async fn run(expect: Expect, groups: &[Group]) -> Result<Report, CheckError> {
    if expect.clusters.is_empty() {
        return Err(CheckError::NoClusters);
    }
    let mut connected = Vec::new();
    for c in &expect.clusters {
        let cluster = connect(&c.target, expect.default_kubeconfig.as_deref())
            .await
            .map_err(CheckError::Connect)?;
        connected.push(Arc::new(cluster));
    }
    Ok(run_on(expect, connected, groups).await)
}

/// Reads `clusters` (one per cluster of `expect`, in its order; a caller
/// that holds clients already, as the engine does for gates) in parallel,
/// fills what was not said from what was read, and runs the rules of
/// `groups` (empty: all).
pub async fn run_on(mut expect: Expect, clusters: Vec<Arc<Cluster>>, groups: &[Group]) -> Report {
    // A read meets throttling (429) and passing server errors as the engine's
    // steps do, with as many attempts: a gate must not fail on one. A cluster
    // that does not answer at all is told apart quickly (`snapshot::read`).
    let backoff = Backoff::default();
    let mut reads = tokio::task::JoinSet::new();
    for (i, cluster) in clusters.into_iter().enumerate() {
        let namespace = expect.namespace.clone();
        let revision = expect.revision.clone();
        reads.spawn(async move {
            let s = snapshot::read(&cluster, &namespace, revision.as_deref(), backoff).await;
            (i, s)
        });
    }
    let mut snapshots: Vec<(usize, ClusterSnapshot)> = Vec::new();
    while let Some(done) = reads.join_next().await {
        match done {
            Ok(read) => snapshots.push(read),
            // A read that panicked is a bug; it must not hide the others.
            Err(e) => tracing::error!("a cluster read failed: {e}"),
        }
    }
    // A cluster without a snapshot (a read that ended early, or no client given) counts as not read.
    for (i, c) in expect.clusters.iter().enumerate() {
        if !snapshots.iter().any(|(j, _)| *j == i) {
            let why = "reading it ended unexpectedly (see the log)".to_string();
            snapshots.push((i, ClusterSnapshot::unreadable(c.name(), "", why)));
        }
    }
    snapshots.sort_by_key(|(i, _)| *i);
    let snapshots: Vec<ClusterSnapshot> = snapshots.into_iter().map(|(_, s)| s).collect();
    expect.fill_from(&snapshots);
    evaluate(&expect, &snapshots, groups)
}

/// The rules of `groups` (empty: all) over `snapshots`: pure, for gates and tests.
pub fn evaluate(expect: &Expect, snapshots: &[ClusterSnapshot], groups: &[Group]) -> Report {
    let groups: Vec<Group> = if groups.is_empty() {
        Group::ALL.to_vec()
    } else {
        let mut g: Vec<Group> = groups.to_vec();
        g.push(Group::Read);
        g.sort();
        g.dedup();
        g
    };
    let findings = groups
        .iter()
        .flat_map(|g| rules::run(*g, expect, snapshots))
        .collect();
    Report::new(
        expect
            .clusters
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        groups,
        findings,
    )
}
