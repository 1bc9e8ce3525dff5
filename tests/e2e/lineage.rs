//! Run lineage against meshsim, with the real binary: a second apply of a
//! changed plan is refused while the first run's steps are not rolled back
//! (nothing changes), and `rollback --to phase0` then restores the
//! pre-migration clusters; `apply --resume` after success has nothing to do.

use crate::apply::{apply, seeded_with_spec};
use crate::sim_support::SimEnv;
use serde_json::Value;
use std::path::Path;

/// The spec with the drill's request count changed: another plan.
fn changed_spec(env: &SimEnv, spec: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(spec).unwrap();
    assert!(text.contains("requests: 20"), "the spec has the drill");
    env.write_spec(
        "changed.yaml",
        &text.replace("requests: 20", "requests: 10"),
    )
}

fn status_json(env: &SimEnv) -> Value {
    let run = env.migrate(&["status", "-o", "json"]).expect_ok();
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn a_changed_plan_is_refused_over_a_run_not_rolled_back_and_rollback_restores_the_start() {
    let (env, spec) = seeded_with_spec();
    let before = env.settled_dump();
    apply(&env, &spec, &[], None).expect_ok();
    let migrated = env.settled_dump();
    let changed = changed_spec(&env, &spec);

    let refused = apply(&env, &changed, &[], None);
    assert_eq!(
        refused.code,
        Some(2),
        "{}",
        refused.describe("second apply")
    );
    assert!(
        refused.stderr.contains("--resume --replan") && refused.stderr.contains("rollback"),
        "{}",
        refused.stderr
    );
    // The hints repeat the flags given.
    assert!(
        refused.stderr.contains("--kubeconfig"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--state-dir"), "{}", refused.stderr);
    env.settled_dump()
        .assert_eq(&migrated, "a refused apply changes nothing");
    let status = status_json(&env);
    let lineage = status["lineage"].as_array().unwrap();
    assert_eq!(lineage.len(), 1, "no second run was recorded: {status}");
    assert!(lineage[0]["stepsNotRolledBack"].as_u64().unwrap() > 0);

    let undone = env.migrate(&["rollback", "--to", "phase0"]);
    assert!(undone.ok(), "{}", undone.describe("rollback --to phase0"));
    assert!(
        !undone.stdout.contains(": 0 steps undone"),
        "{}",
        undone.stdout
    );
    env.settled_dump()
        .assert_eq(&before, "rollback --to phase0 after the refused apply");

    // Every earlier run rolled back: the changed plan may start a new run.
    apply(&env, &changed, &[], None).expect_ok();
    let lineage = status_json(&env)["lineage"].as_array().unwrap().clone();
    assert_eq!(lineage.len(), 2);
    assert_eq!(lineage[0]["stepsNotRolledBack"], 0);
    env.assert_no_secrets_in_outputs();
}

#[test]
fn replan_continues_a_succeeded_run_and_resume_after_success_has_nothing_to_do() {
    let (env, spec) = seeded_with_spec();
    apply(&env, &spec, &[], None).expect_ok();
    let again = apply(&env, &spec, &["--resume"], None);
    assert_eq!(
        again.code,
        Some(0),
        "{}",
        again.describe("resume after success")
    );
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);

    let changed = changed_spec(&env, &spec);
    let without = apply(&env, &changed, &["--resume"], None);
    assert_eq!(
        without.code,
        Some(2),
        "{}",
        without.describe("resume, spec changed")
    );
    let replanned = apply(&env, &changed, &["--resume", "--replan"], None);
    assert!(replanned.ok(), "{}", replanned.describe("resume --replan"));
    let status = status_json(&env);
    assert_eq!(status["lineage"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(status["run"]["outcome"], "succeeded");
    let again = apply(&env, &changed, &["--resume"], None);
    assert_eq!(
        again.code,
        Some(0),
        "{}",
        again.describe("resume after the replan")
    );
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);
}
