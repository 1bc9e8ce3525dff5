//! Drift against meshsim, with the real binary and the real kubectl: hand
//! edits made after apply to objects `migrate` created (DestinationRule
//! sample/helloworld, phase 4) and edited (the `istio` mesh config, phase 5)
//! are shown by `rollback --dry-run` and `plan`, refused by `rollback`
//! (nothing changed), and overwritten by `rollback --force`, journalled.

use crate::apply::{apply, seeded_with_spec, step_statuses};
use crate::sim_support::{Run, SimEnv};
use std::path::Path;

fn kubectl_ok(env: &SimEnv, args: &[&str]) -> String {
    let out = env.kubectl("cluster1", args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The mesh config of cluster1's `istio` ConfigMap.
fn mesh_config(env: &SimEnv) -> String {
    kubectl_ok(
        env,
        &[
            "-n",
            "istio-system",
            "get",
            "configmap",
            "istio",
            "-o",
            "jsonpath={.data.mesh}",
        ],
    )
}

/// What a user does by hand after the apply: a label and a connection pool
/// on the DestinationRule, an access log in the mesh config.
fn edit_by_hand(env: &SimEnv) {
    kubectl_ok(
        env,
        &[
            "-n",
            "sample",
            "label",
            "destinationrule",
            "helloworld",
            "team=payments",
        ],
    );
    kubectl_ok(
        env,
        &[
            "-n",
            "sample",
            "patch",
            "destinationrule",
            "helloworld",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"trafficPolicy":{"connectionPool":{"tcp":{"maxConnections":7}}}}}"#,
        ],
    );
    let mesh = format!(
        "{}\naccessLogFile: /dev/stdout\n",
        mesh_config(env).trim_end()
    );
    let patch = serde_json::json!({ "data": { "mesh": mesh } }).to_string();
    kubectl_ok(
        env,
        &[
            "-n",
            "istio-system",
            "patch",
            "configmap",
            "istio",
            "--type",
            "merge",
            "-p",
            &patch,
        ],
    );
}

fn plan(env: &SimEnv, spec: &Path) -> Run {
    let state = env.state_dir.to_string_lossy().into_owned();
    env.migrate(&["plan", "-f", &spec.to_string_lossy(), "--state-dir", &state])
}

fn assert_names_the_drift(text: &str, what: &str) {
    for needle in [
        "DRIFTED",
        "DestinationRule sample/helloworld",
        "metadata.labels.team",
        "\"payments\"",
        "spec.trafficPolicy.connectionPool",
        "maxConnections",
        "ConfigMap istio-system/istio",
        "data.mesh.accessLogFile",
        "\"/dev/stdout\"",
        "installer-managed objects are not checked for drift",
    ] {
        assert!(text.contains(needle), "{what} lacks {needle:?}:\n{text}");
    }
}

#[test]
fn hand_edits_are_shown_refused_and_overwritten_only_with_force() {
    let (env, spec) = seeded_with_spec();
    apply(&env, &spec, &[], None).expect_ok();
    edit_by_hand(&env);
    let edited = env.settled_dump();
    let statuses = step_statuses(&env);

    let dry = env.migrate(&["rollback", "--to", "phase3", "--dry-run"]);
    assert!(dry.ok(), "{}", dry.describe("rollback --dry-run"));
    assert_names_the_drift(&dry.stdout, "rollback --dry-run");
    assert!(
        dry.stdout.contains("LEFT BY MIGRATE"),
        "the value migrate left is shown:\n{}",
        dry.stdout
    );
    env.settled_dump()
        .assert_eq(&edited, "rollback --dry-run changes nothing");

    let refused = env.migrate(&["rollback", "--to", "phase3"]);
    assert_eq!(
        refused.code,
        Some(1),
        "{}",
        refused.describe("rollback over drift must fail")
    );
    assert_names_the_drift(&refused.stderr, "the refused rollback");
    assert!(
        refused.stderr.contains("--force"),
        "it says how to overwrite:\n{}",
        refused.stderr
    );
    env.settled_dump()
        .assert_eq(&edited, "a refused rollback changes nothing");
    assert_eq!(
        step_statuses(&env),
        statuses,
        "the run is as the apply left it"
    );

    let forced = env.migrate(&["rollback", "--to", "phase3", "--force"]);
    assert!(forced.ok(), "{}", forced.describe("rollback --force"));
    assert!(
        forced
            .stderr
            .contains("2 object(s) changed since migrate left them were put back"),
        "the forced rollback says what it overwrote:\n{}",
        forced.stderr
    );
    let gone = env.kubectl(
        "cluster1",
        &["-n", "sample", "get", "destinationrule", "helloworld"],
    );
    assert!(
        !gone.status.success(),
        "the DestinationRule migrate created is deleted"
    );
    let mesh = mesh_config(&env);
    assert!(
        !mesh.contains("accessLogFile"),
        "the mesh config is restored:\n{mesh}"
    );
    let journal = env
        .migrate(&["status", "-o", "json", "--events"])
        .expect_ok();
    for object in [
        "DestinationRule sample/helloworld",
        "ConfigMap istio-system/istio",
    ] {
        assert!(
            journal
                .stdout
                .lines()
                .any(|l| l.contains("overwrites drift") && l.contains(object)),
            "the journal records the forced overwrite of {object}:\n{}",
            journal.stdout
        );
    }
    env.assert_no_secrets_in_outputs();
}

#[test]
fn without_hand_edits_rollback_runs_as_before_and_dry_run_says_no_drift() {
    let (env, spec) = seeded_with_spec();
    apply(&env, &spec, &[], None).expect_ok();
    let dry = env.migrate(&["rollback", "--to", "phase0", "--dry-run"]);
    assert!(dry.ok(), "{}", dry.describe("rollback --dry-run"));
    assert!(
        dry.stdout.contains("no drift") && !dry.stdout.contains("DRIFTED"),
        "nothing drifted after a plain apply:\n{}",
        dry.stdout
    );
    for class in ["delete ", "restore "] {
        assert!(
            dry.stdout.contains(class),
            "objects are classified ({class}):\n{}",
            dry.stdout
        );
    }
    let run = env.migrate(&["rollback", "--to", "phase3"]);
    assert!(run.ok(), "{}", run.describe("rollback --to phase3"));
    let run = env.migrate(&["rollback", "--to", "phase0"]);
    assert!(run.ok(), "{}", run.describe("rollback --to phase0"));
    env.assert_no_secrets_in_outputs();
}

#[test]
fn plan_after_apply_reports_the_drift_of_the_runs_objects() {
    let (env, spec) = seeded_with_spec();
    apply(&env, &spec, &[], None).expect_ok();
    let clean = plan(&env, &spec).expect_ok();
    assert!(
        clean
            .stdout
            .contains("none: every object is as migrate left it"),
        "{}",
        clean.stdout
    );
    edit_by_hand(&env);
    let drifted = plan(&env, &spec).expect_ok();
    assert_names_the_drift(&drifted.stdout, "migrate plan");
    env.assert_no_secrets_in_outputs();
}
