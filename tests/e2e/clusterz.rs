//! The discovery phase proves each istiod synced its peer by reading
//! `debug/clusterz` as `istioctl remote-clusters` does: through a
//! port-forward to an istiod pod (a localhost request, which istiod answers
//! on every version), never through the API server's service proxy (which
//! real istiod refuses with 401).

use crate::apply::{apply, seeded_with_spec, step_statuses};

#[test]
fn discovery_reads_clusterz_through_a_port_forward_never_the_service_proxy() {
    let (env, spec) = seeded_with_spec();
    let before: Vec<u64> = ["cluster1", "cluster2"]
        .iter()
        .map(|c| env.sim.cluster(c).streams().port_forwards())
        .collect();
    apply(&env, &spec, &[], None).expect_ok();

    let statuses = step_statuses(&env);
    // discovery/cluster1<-cluster2 and back: each waits until its istiod reports the peer synced.
    let discovery: Vec<_> = statuses
        .iter()
        .filter(|(id, _)| id.starts_with("discovery/") && id.contains("<-"))
        .collect();
    assert_eq!(discovery.len(), 2, "{statuses:?}");
    assert!(discovery.iter().all(|(_, s)| s == "done"), "{discovery:?}");
    for (i, c) in ["cluster1", "cluster2"].iter().enumerate() {
        let streams = env.sim.cluster(c).streams();
        // Each istiod was asked about its peer on its own cluster.
        assert!(
            streams.port_forwards() > before[i],
            "{c}: no port-forward session"
        );
        assert_eq!(
            streams.proxied_debug(),
            0,
            "{c}: the service proxy was used"
        );
    }
    env.assert_no_secrets_in_outputs();
}
