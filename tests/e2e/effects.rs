//! Effects at most once, with the real binary against meshsim: a SIGKILL
//! inside the drain after its scale leaves a durable restore-pending record
//! that `status` names and resume clears with the replicas back; a SIGKILL
//! inside a step that restarts workloads, then resume, rolls each Deployment
//! out as often as an uninterrupted run (counted by the deployment
//! controller's `deployment.kubernetes.io/revision` and by `generation`).

use crate::apply::{apply, killed, seeded_with_spec, step_statuses};
use crate::sim_support::{Dump, SimEnv};
use serde_json::Value;
use std::collections::BTreeMap;

/// Per Deployment (cluster, namespace/name): its revision (one per rollout)
/// and generation (one per spec change, replicas included).
fn rollouts(env: &SimEnv) -> BTreeMap<String, (String, i64)> {
    let mut out = BTreeMap::new();
    for c in env.sim.clusters() {
        let Some(rt) = c.store().resolve_kind("apps/v1", "Deployment") else {
            continue;
        };
        for d in c.store().list(&rt, None).0 {
            let s = |p: &str| {
                d.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let revision = d
                .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let generation = d
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            out.insert(
                format!(
                    "{} {}/{}",
                    c.name(),
                    s("/metadata/namespace"),
                    s("/metadata/name")
                ),
                (revision, generation),
            );
        }
    }
    out
}

/// An uninterrupted run: its settled dump and rollouts.
fn reference() -> (Dump, BTreeMap<String, (String, i64)>) {
    let (env, spec) = seeded_with_spec();
    apply(&env, &spec, &[], None).expect_ok();
    let dump = env.settled_dump();
    (dump, rollouts(&env))
}

fn replicas(env: &SimEnv, cluster: &str, ns: &str, name: &str) -> String {
    let out = env.kubectl(
        cluster,
        &[
            "get",
            "deployment",
            "-n",
            ns,
            name,
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    );
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn killed_after_the_drain_scaled_status_names_the_restore_and_resume_performs_it() {
    let (want, want_rollouts) = reference();
    let (env, spec) = seeded_with_spec();
    let at = "inside-step:failover/drain:1";
    killed(apply(&env, &spec, &[], Some(at)), at);
    assert_eq!(replicas(&env, "cluster1", "sample", "helloworld-v1"), "0");
    let status = env.migrate(&["status"]).expect_ok();
    assert!(
        status
            .stdout
            .contains("cluster1 sample/helloworld-v1 scaled to 0, restore pending"),
        "{}",
        status.stdout
    );
    let resumed = apply(&env, &spec, &["--resume"], None);
    assert!(
        resumed.ok(),
        "{}",
        resumed.describe("resume after the drain kill")
    );
    assert_eq!(replicas(&env, "cluster1", "sample", "helloworld-v1"), "1");
    let status = env.migrate(&["status"]).expect_ok();
    assert!(
        !status.stdout.contains("restore pending"),
        "{}",
        status.stdout
    );
    env.settled_dump()
        .assert_eq(&want, "drain killed, then resumed");
    assert_eq!(
        rollouts(&env),
        want_rollouts,
        "replicas changed as often as in an uninterrupted run"
    );
}

#[test]
fn a_rollback_after_a_kill_in_the_drain_restores_first() {
    let (env, spec) = seeded_with_spec();
    let before = env.settled_dump();
    let at = "inside-step:failover/drain:1";
    killed(apply(&env, &spec, &[], Some(at)), at);
    let undone = env.migrate(&["rollback", "--to", "phase0"]);
    assert!(
        undone.ok(),
        "{}",
        undone.describe("rollback after the drain kill")
    );
    let status = env.migrate(&["status"]).expect_ok();
    assert!(
        !status.stdout.contains("restore pending"),
        "{}",
        status.stdout
    );
    env.settled_dump()
        .assert_eq(&before, "rollback after the drain kill");
}

#[test]
fn killed_inside_restarting_steps_resume_rolls_out_no_more_than_an_uninterrupted_run() {
    let (want, want_rollouts) = reference();
    for at in [
        "inside-step:install/cluster1/restart-workloads:1",
        "inside-step:trust/cluster1:3",
        "inside-step:trust/cluster2:7",
    ] {
        let (env, spec) = seeded_with_spec();
        killed(apply(&env, &spec, &[], Some(at)), at);
        let resumed = apply(&env, &spec, &["--resume"], None);
        assert!(
            resumed.ok(),
            "{}",
            resumed.describe(&format!("resume after {at}"))
        );
        for (id, status) in step_statuses(&env) {
            assert_eq!(status, "done", "after a kill at {at}: step {id}");
        }
        env.settled_dump()
            .assert_eq(&want, &format!("kill at {at}, then resume"));
        assert_eq!(
            rollouts(&env),
            want_rollouts,
            "rollouts per Deployment after a kill at {at}"
        );
    }
}
