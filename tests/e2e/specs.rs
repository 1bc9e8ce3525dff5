//! Specs for runs against meshsim: the example plans pointed at the
//! simulated clusters' contexts, the istioctl stand-in and a private cert
//! dir (`@ISTIOCTL@`, `@CERTS@` are filled in by `SimEnv::write_spec`).

use crate::support::repo_root;

/// The localities plans/two-cluster.yaml gives cluster1 and cluster2; the
/// simulated clusters' nodes carry them (preflight checks them).
pub const TWO_CLUSTER_LOCALITIES: [(&str, &str); 2] =
    [("us-west", "us-west-1a"), ("us-east", "us-east-1a")];

/// plans/two-cluster.yaml with only what points outside the simulation
/// changed: contexts, the installer path and the cert dir.
pub fn two_cluster() -> String {
    let text = std::fs::read_to_string(repo_root().join("plans/two-cluster.yaml")).unwrap();
    let mut out = text;
    for (from, to) in [
        ("context: kind-cluster1", "context: sim-cluster1"),
        ("context: kind-cluster2", "context: sim-cluster2"),
        ("path: istioctl", "path: \"@ISTIOCTL@\""),
        ("certDir: ./migrate-certs", "certDir: \"@CERTS@\""),
    ] {
        assert!(
            out.contains(from),
            "plans/two-cluster.yaml no longer has {from:?}: adapt tests/e2e/specs.rs"
        );
        out = out.replace(from, to);
    }
    out
}
