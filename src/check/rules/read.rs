//! Clusters that could not be read, wholly or in part.

use crate::check::finding::Finding;
use crate::check::snapshot::ClusterSnapshot;

pub(super) fn check(snapshots: &[ClusterSnapshot]) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in snapshots {
        if let Some(error) = &s.error {
            out.push(Finding::new(
                "MC001",
                &s.cluster,
                "-",
                format!(
                    "cannot read the cluster{}: {error}; no other check ran on it",
                    if s.server.is_empty() { String::new() } else { format!(" at {}", s.server) }
                ),
                "check that the context reaches the API server (kubectl get ns with the same context) and that its credentials may read the mesh (view on the cluster, and Secrets in the control plane's namespace)",
            ));
        } else if !s.unread.is_empty() {
            out.push(Finding::new(
                "MC003",
                &s.cluster,
                "-",
                format!("forbidden to read: {}; checks that need them may miss mistakes", s.unread.join(", ")),
                "grant the checking identity get/list on these kinds (the view ClusterRole plus Secrets in the control plane's namespace)",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_cluster_is_an_error_finding() {
        let s = ClusterSnapshot::unreadable("c2", "https://x", "connection refused".into());
        let f = check(&[s]);
        assert_eq!((f[0].code.as_str(), f[0].cluster.as_str()), ("MC001", "c2"));
        assert!(check(&[ClusterSnapshot::default()]).is_empty());
    }
}
