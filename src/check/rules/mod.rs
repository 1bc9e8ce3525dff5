//! The rules: pure functions from what was expected and read to findings,
//! one module per [`Group`], each tied to a mistake users report.

mod destination_rules;
mod gateway;
mod names;
mod networks;
mod read;
mod reader_rbac;
mod remote_secrets;
mod roots;
mod services;
mod skew;
mod stale_pods;
mod webhook;

#[cfg(test)]
mod fixtures;

use super::Group;
use super::expect::{ClusterExpect, Expect};
use super::finding::Finding;
use super::snapshot::ClusterSnapshot;

/// The findings of one group.
pub fn run(group: Group, expect: &Expect, snapshots: &[ClusterSnapshot]) -> Vec<Finding> {
    let view = View::new(expect, snapshots);
    match group {
        Group::Read => read::check(snapshots),
        Group::Roots => roots::check(&view),
        Group::Names => names::check(&view),
        Group::Networks => networks::check(&view),
        Group::Gateway => gateway::check(&view),
        Group::RemoteSecrets => remote_secrets::check(&view),
        Group::DestinationRules => destination_rules::check(&view),
        Group::Services => services::check(&view),
        Group::Webhook => webhook::check(&view),
        Group::ReaderRbac => reader_rbac::check(&view),
        Group::Skew => skew::check(&view),
        Group::StalePods => stale_pods::check(&view),
    }
}

/// The clusters that could be read, each with what is expected of it.
pub(crate) struct View<'a> {
    /// The whole expectation.
    pub expect: &'a Expect,
    /// Readable clusters, in the order given.
    pub clusters: Vec<(&'a ClusterExpect, &'a ClusterSnapshot)>,
}

impl<'a> View<'a> {
    fn new(expect: &'a Expect, snapshots: &'a [ClusterSnapshot]) -> Self {
        let clusters = expect
            .clusters
            .iter()
            .filter_map(|c| {
                let s = snapshots.iter().find(|s| s.cluster == c.name())?;
                s.read_ok().then_some((c, s))
            })
            .collect();
        View { expect, clusters }
    }

    /// The namespace of the control plane.
    fn ns(&self) -> &str {
        &self.expect.namespace
    }

    /// The clusterName expected of `c`: said, else what its istiod uses.
    fn cluster_name<'b>(&'b self, c: &'b ClusterExpect, s: &'b ClusterSnapshot) -> Option<&'b str> {
        c.cluster_name
            .as_ref()
            .map(|k| k.value.as_str())
            .or_else(|| s.istiod_cluster_id())
    }

    /// The network expected of `c`: said, else its label.
    fn network<'b>(&'b self, c: &'b ClusterExpect, s: &'b ClusterSnapshot) -> Option<&'b str> {
        c.network
            .as_ref()
            .map(|k| k.value.as_str())
            .or(s.network_label.as_deref())
    }
}

/// `Kind namespace/name`.
fn obj(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind} {namespace}/{name}")
}

/// `--context X` for commands in fixes.
fn ctx(c: &ClusterExpect) -> String {
    format!("--context {}", c.target.context)
}

/// An MC002: `check` on `cluster` skipped because `needs` is unknown.
fn skipped(cluster: &str, check: &str, needs: &str) -> Finding {
    Finding::new(
        "MC002",
        cluster,
        "-",
        format!(
            "{check} not checked: {needs} is not known (no spec said it and the cluster does not show it)"
        ),
        "run migrate check -f SPEC with the spec of this mesh, or set the value in the cluster",
    )
}

/// A list for messages: `a, b, c` (at most `max`, then `and N more`).
fn listed<T: std::fmt::Display>(items: &[T], max: usize) -> String {
    let mut out: Vec<String> = items.iter().take(max).map(|i| i.to_string()).collect();
    if items.len() > max {
        out.push(format!("and {} more", items.len() - max));
    }
    if out.is_empty() {
        "none".to_string()
    } else {
        out.join(", ")
    }
}
