//! `migrate unlock --force ID` against the mesh's Lease: a run killed (SIGKILL) while it claims the mesh
//! refuses another store's apply, naming the holder and the command that frees it; a wrong id frees nothing;
//! the right one deletes the Lease cluster by cluster (an unreachable cluster makes it partial, and a second
//! unlock from the dead run's own state finishes it), and the other store's apply then proceeds.

use crate::sim_support::{Run, SimEnv};
use crate::specs::two_cluster;
use serde_json::Value;

const CLUSTERS: [&str; 2] = ["cluster1", "cluster2"];

/// The mesh's Lease on `cluster` as kubectl shows it, if there is one.
fn mesh_lease(env: &SimEnv, cluster: &str) -> Option<Value> {
    let out = env.kubectl(
        cluster,
        &[
            "get",
            "lease",
            "migrate-mesh",
            "-n",
            "kube-system",
            "-o",
            "json",
        ],
    );
    if out.status.success() {
        return Some(serde_json::from_slice(&out.stdout).expect("kubectl prints JSON"));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NotFound"), "kubectl get lease: {err}");
    None
}

/// The holder id a mesh Lease's claim names.
fn claim_id(lease: &Value) -> String {
    let record = lease["metadata"]["annotations"]["migrate.meshops.dev/claim"]
        .as_str()
        .unwrap_or_else(|| panic!("a claim record: {lease}"));
    let record: Value = serde_json::from_str(record).expect("the claim record is JSON");
    record["id"].as_str().expect("an id").to_string()
}

fn unlock(env: &SimEnv, args: &[&str]) -> Run {
    let mut all = vec!["unlock"];
    all.extend_from_slice(args);
    env.migrate(&all)
}

#[test]
fn unlock_force_frees_the_mesh_claimed_by_a_killed_run_and_nothing_else() {
    let env = crate::apply::seeded();
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let spec_arg = spec.to_string_lossy().into_owned();
    let dead_dir = env.state_dir.to_string_lossy().into_owned();
    let other_dir = env.path("other-team").to_string_lossy().into_owned();

    // Killed after it claimed the mesh, before its first change; its Leases would hold for 10 minutes.
    let killed = env.migrate_env(
        &["apply", "-f", &spec_arg],
        &[
            ("MIGRATE_FAILPOINT", "before-step:preflight/cluster1"),
            ("MIGRATE_STATE_LEASE_SECONDS", "600"),
        ],
    );
    assert_eq!(killed.signal, Some(9), "{}", killed.describe("SIGKILL"));
    let leases: Vec<Value> = CLUSTERS
        .iter()
        .map(|c| mesh_lease(&env, c).unwrap_or_else(|| panic!("a claim on {c}")))
        .collect();
    let id = claim_id(&leases[0]);
    assert_eq!(claim_id(&leases[1]), id, "one holder id on every cluster");
    // The id is that of the dead process's hold on its state directory: one id frees both.
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(env.state_dir.join("lock.json"))
            .expect("the dead run's lock record"),
    )
    .unwrap();
    assert_eq!(record["id"].as_str(), Some(id.as_str()));

    // Another team's store: refused, naming the holder and how to free the mesh.
    let refused = env.migrate(&["apply", "-f", &spec_arg, "--state-dir", &other_dir]);
    assert_eq!(refused.code, Some(1), "{}", refused.describe("refused"));
    assert!(
        refused.stderr.contains("claimed by another state store")
            && refused.stderr.contains(&dead_dir)
            && refused
                .stderr
                .contains(&format!("migrate unlock --force {id}"))
            && !refused.stderr.contains("kubectl delete"),
        "{}",
        refused.describe("the refusal names the holder and the unlock")
    );

    // A wrong id frees nothing: every Lease is named and left alone; exit 1.
    let wrong = unlock(
        &env,
        &[
            "--force",
            "0000deadbeef",
            "-f",
            &spec_arg,
            "--state-dir",
            &other_dir,
        ],
    );
    assert_eq!(wrong.code, Some(1), "{}", wrong.describe("a wrong id"));
    for cluster in CLUSTERS {
        assert!(
            wrong.stdout.contains(&format!(
                "cluster {cluster}: Lease kube-system/migrate-mesh is held by"
            )) && wrong
                .stdout
                .contains(&format!("id {id}, not 0000deadbeef; left alone")),
            "{}",
            wrong.describe("names the holder")
        );
        assert_eq!(
            mesh_lease(&env, cluster).map(|l| claim_id(&l)),
            Some(id.clone()),
            "{cluster}: left alone"
        );
    }

    // The right id, with a spec whose cluster2 cannot be reached: cluster1 freed, the rest reported; exit 3.
    let unreachable = env.write_spec(
        "unreachable.yaml",
        &two_cluster().replace("context: sim-cluster2", "context: sim-gone"),
    );
    let partial = unlock(
        &env,
        &[
            "--force",
            &id,
            "-f",
            &unreachable.to_string_lossy(),
            "--state-dir",
            &other_dir,
        ],
    );
    assert_eq!(partial.code, Some(3), "{}", partial.describe("partial"));
    assert!(
        partial
            .stdout
            .contains("cluster cluster1: deleted Lease kube-system/migrate-mesh")
            && partial.stderr.contains("cluster cluster2: not reached")
            && partial.stderr.contains("partial"),
        "{}",
        partial.describe("cluster by cluster")
    );
    assert_eq!(mesh_lease(&env, "cluster1"), None, "deleted on cluster1");
    assert!(
        mesh_lease(&env, "cluster2").is_some(),
        "cluster2 not reached"
    );

    // From the dead run's own state, without a spec: its lock and the Lease on the clusters its run recorded.
    let rest = unlock(&env, &["--force", &id]);
    assert!(
        rest.ok(),
        "{}",
        rest.describe("unlock from the run's state")
    );
    assert!(
        rest.stdout.contains("released the lock held by")
            && rest
                .stdout
                .contains("cluster cluster1: no Lease kube-system/migrate-mesh held")
            && rest
                .stdout
                .contains("cluster cluster2: deleted Lease kube-system/migrate-mesh"),
        "{}",
        rest.describe("what was done")
    );
    assert!(
        !env.state_dir.join("lock.json").exists(),
        "the lock record is gone"
    );
    for cluster in CLUSTERS {
        assert_eq!(mesh_lease(&env, cluster), None, "{cluster}: freed");
    }

    // The other team's apply now proceeds, and gives the mesh up when it succeeds.
    let proceeds = env.migrate(&["apply", "-f", &spec_arg, "--state-dir", &other_dir]);
    assert!(proceeds.ok(), "{}", proceeds.describe("the other apply"));
    for cluster in CLUSTERS {
        assert_eq!(
            mesh_lease(&env, cluster),
            None,
            "{cluster}: released at the end"
        );
    }
    env.assert_no_secrets_in_outputs();
}
