//! Drift against meshsim, with the real binary and the real kubectl: hand
//! edits made after apply to objects `migrate` created (DestinationRule
//! sample/helloworld, phase 4) and edited (the `istio` mesh config, phase 5)
//! are shown by `rollback --dry-run` and `plan`, refused by `rollback`
//! (nothing changed), and overwritten by `rollback --force`, journalled.

use crate::apply::{apply, seeded, seeded_with_spec, step_statuses};
use crate::sim_support::{Run, SimEnv};
use crate::specs::two_cluster;
use serde_json::Value;
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
        "installer-managed objects are checked for drift only where rollback restores them",
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

/// Whether a step of the plan edits cluster1's `istio` ConfigMap itself.
fn edits_mesh_config(env: &SimEnv, spec: &Path) -> bool {
    let out = env
        .migrate(&["plan", "-f", &spec.to_string_lossy(), "-o", "json"])
        .expect_ok();
    let plan: Value = serde_json::from_str(&out.stdout).expect("plan -o json");
    let steps = plan["steps"].as_array().expect("steps");
    steps
        .iter()
        .flat_map(|s| s["forward"].as_array().into_iter().flatten())
        .any(|a| {
            a["type"] != "snapshot"
                && a["cluster"] == "cluster1"
                && a["object"]["kind"] == "ConfigMap"
                && a["object"]["name"] == "istio"
        })
}

#[test]
fn a_hand_edit_of_what_only_the_installer_changed_is_refused() {
    // Without tracing, only the install step (istioctl) changes the mesh
    // config: the ConfigMap is one its rollback restores from a snapshot.
    let env = seeded();
    let text: String = two_cluster()
        .lines()
        .filter(|l| !l.trim_start().starts_with("tracing:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let spec = env.write_spec("spec.yaml", &text);
    assert!(
        !edits_mesh_config(&env, &spec),
        "the spec must leave the mesh config to the installer"
    );
    apply(&env, &spec, &[], None).expect_ok();
    let mesh = format!(
        "{}\naccessLogFile: /dev/stdout\n",
        mesh_config(&env).trim_end()
    );
    let patch = serde_json::json!({ "data": { "mesh": mesh } }).to_string();
    kubectl_ok(
        &env,
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
    let edited = env.settled_dump();
    let statuses = step_statuses(&env);

    let dry = env.migrate(&["rollback", "--to", "phase0", "--dry-run"]);
    assert!(dry.ok(), "{}", dry.describe("rollback --dry-run"));
    for needle in [
        "DRIFTED",
        "ConfigMap istio-system/istio",
        "data.mesh.accessLogFile",
    ] {
        assert!(
            dry.stdout.contains(needle),
            "dry run lacks {needle:?}:\n{}",
            dry.stdout
        );
    }

    let refused = env.migrate(&["rollback", "--to", "phase0"]);
    assert_eq!(
        refused.code,
        Some(1),
        "{}",
        refused.describe("rollback over the installer's drifted object must fail")
    );
    for needle in [
        "ConfigMap istio-system/istio",
        "install/cluster1",
        "data.mesh.accessLogFile",
        "\"/dev/stdout\"",
    ] {
        assert!(
            refused.stderr.contains(needle),
            "the refusal lacks {needle:?}:\n{}",
            refused.stderr
        );
    }
    assert!(
        !refused.stderr.contains("DestinationRule"),
        "only the hand-edited object is drift:\n{}",
        refused.stderr
    );
    env.settled_dump()
        .assert_eq(&edited, "a refused rollback changes nothing");
    assert_eq!(
        step_statuses(&env),
        statuses,
        "the run is as the apply left it"
    );
    env.assert_no_secrets_in_outputs();
}
