//! Rollback exactness against meshsim: after a full apply, `rollback --to
//! phase(k-1)` gives the objects of the moment phase k-1 had finished;
//! `--to phase0` gives the pre-migration objects; a rollback killed with
//! SIGKILL and run again converges to the same. On both state backends.

use crate::apply::{apply, killed_in, seeded_with_spec_on, steps};
use crate::sim_support::{Backend, SimEnv};

const PHASES: [&str; 7] = [
    "preflight",
    "install",
    "trust",
    "discovery",
    "routing",
    "observability",
    "failover",
];

fn rollback(env: &SimEnv, to: &str, failpoint: Option<&str>) -> crate::sim_support::Run {
    let args = ["rollback", "--to", to];
    match failpoint {
        Some(fp) => env.migrate_env(&args, &[("MIGRATE_FAILPOINT", fp)]),
        None => env.migrate(&args),
    }
}

#[test]
fn rollback_to_each_phase_equals_the_dump_taken_after_it_on_sled() {
    rollback_to_each_phase_equals_the_dump_taken_after_it(Backend::Sled, 1..PHASES.len());
}

/// `--to phase0`, `phase2` and `phase4`, spread over the plan: everything undone (every kind of record a
/// rollback reads from the log, CA and Secret snapshots included), and two partial rollbacks that must stop at
/// a phase boundary (trust kept, then routing kept). The other three are sled's alone, to keep the suite's
/// time: each costs a whole apply and rollback.
#[test]
fn rollback_to_each_phase_equals_the_dump_taken_after_it_on_kubernetes() {
    rollback_to_each_phase_equals_the_dump_taken_after_it(Backend::Kubernetes, [1, 3, 5]);
}

/// For each `k`: killed right after phase k-1, resumed to the end, rolled back `--to phase(k-1)`.
fn rollback_to_each_phase_equals_the_dump_taken_after_it(
    backend: Backend,
    phases: impl IntoIterator<Item = usize>,
) {
    for k in phases {
        let (env, spec) = seeded_with_spec_on(backend);
        let before = env.settled_dump();
        let plan = steps(&env, &spec);
        let last = plan
            .iter()
            .rev()
            .find(|(_, phase, _)| phase == PHASES[k - 1])
            .map(|(id, _, _)| id.clone())
            .unwrap();
        // One step at a time, in plan order (phase by phase): killed right
        // after phase k-1's last step, the clusters are as phase k-1 left them.
        let at = format!("after-step:{last}");
        killed_in(
            &env,
            apply(&env, &spec, &["--parallelism", "1"], Some(&at)),
            &at,
        );
        let after_phase = env.settled_dump();
        if k == 1 {
            after_phase.assert_eq(&before, &format!("{backend:?}: preflight changes nothing"));
        }
        apply(&env, &spec, &["--resume"], None).expect_ok();
        let to = format!("phase{}", k - 1);
        let run = rollback(&env, &to, None);
        assert!(
            run.ok(),
            "{}",
            run.describe(&format!("{backend:?}: rollback --to {to}"))
        );
        env.settled_dump().assert_eq(
            &after_phase,
            &format!("{backend:?}: rollback --to {to} after a full apply"),
        );
        env.assert_no_secrets_in_outputs();
    }
}

#[test]
fn a_killed_rollback_run_again_converges_on_sled() {
    a_killed_rollback_run_again_converges(Backend::Sled);
}

#[test]
fn a_killed_rollback_run_again_converges_on_kubernetes() {
    a_killed_rollback_run_again_converges(Backend::Kubernetes);
}

fn a_killed_rollback_run_again_converges(backend: Backend) {
    for at in [
        "after-step:3",
        "inside-step:install/cluster1:2",
        "before-step:trust/cluster1",
    ] {
        let (env, spec) = seeded_with_spec_on(backend);
        let before = env.settled_dump();
        apply(&env, &spec, &[], None).expect_ok();
        killed_in(&env, rollback(&env, "phase0", Some(at)), at);
        let run = rollback(&env, "phase0", None);
        assert!(
            run.ok(),
            "{}",
            run.describe(&format!("{backend:?}: rollback again after a kill at {at}"))
        );
        env.settled_dump().assert_eq(
            &before,
            &format!("{backend:?}: rollback to phase0 killed at {at}, run again"),
        );
        env.assert_no_secrets_in_outputs();
    }
}
