//! Saved plans against meshsim: `plan --out` then `apply --plan` runs the
//! plan; a hand edit in between is refused naming the object and the field,
//! and nothing changes; the file holds no secret; a plan edited in the file
//! is refused.

use crate::apply::{seeded_with_spec, step_statuses};
use crate::sim_support::SimEnv;
use serde_json::Value;
use std::path::Path;

/// A DestinationRule a user keeps for helloworld before the migration.
const USER_DR: &str = r#"{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule",
"metadata":{"name":"helloworld","namespace":"sample"},
"spec":{"host":"helloworld.sample.svc.cluster.local",
"trafficPolicy":{"loadBalancer":{"simple":"ROUND_ROBIN"}}}}"#;

fn kubectl_ok(env: &SimEnv, args: &[&str]) {
    let out = env.kubectl("cluster1", args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn save(env: &SimEnv, spec: &Path) -> std::path::PathBuf {
    let out = env.path("plan.json");
    let run = env
        .migrate(&[
            "plan",
            "-f",
            &spec.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ])
        .expect_ok();
    assert!(run.stderr.contains("plan saved to"), "{}", run.stderr);
    out
}

#[test]
fn a_saved_plan_applied_unchanged_runs_and_holds_no_secret() {
    let (env, spec) = seeded_with_spec();
    let file = save(&env, &spec);
    let text = std::fs::read_to_string(&file).unwrap();
    for (origin, secret) in env.secrets() {
        assert!(!text.contains(&secret), "the plan file holds {origin}");
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    let objects = doc["objects"].as_array().unwrap();
    let ca_secret = objects
        .iter()
        .find(|o| o["key"]["kind"] == "Secret" && o["key"]["name"] == "istio-ca-secret")
        .expect("the source's CA Secret, which the trust phase reads, is fingerprinted");
    assert_eq!(ca_secret["found"]["state"], "present");
    assert!(ca_secret["found"]["content"].is_null(), "no Secret content");
    assert!(
        ca_secret["found"]["hash"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
    assert!(
        objects
            .iter()
            .any(|o| o["key"]["kind"] == "ConfigMap" && o["resourceVersion"].is_string()),
        "resourceVersions are recorded"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let run = env
        .migrate(&["apply", "--plan", &file.to_string_lossy()])
        .expect_ok();
    assert!(run.stderr.contains("are as they were"), "{}", run.stderr);
    let statuses = step_statuses(&env);
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|(_, s)| s == "done"), "{statuses:?}");
    env.assert_no_secrets_in_outputs();
}

#[test]
fn a_hand_edit_after_saving_is_refused_naming_object_and_field() {
    let (env, spec) = seeded_with_spec();
    let dr = env.path("dr.json");
    std::fs::write(&dr, USER_DR).unwrap();
    kubectl_ok(&env, &["apply", "-f", &dr.to_string_lossy()]);
    let file = save(&env, &spec);
    kubectl_ok(
        &env,
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
    kubectl_ok(
        &env,
        &[
            "-n",
            "istio-system",
            "label",
            "configmap",
            "istio",
            "team=payments",
        ],
    );
    let before = env.settled_dump();
    let run = env.migrate(&["apply", "--plan", &file.to_string_lossy()]);
    assert_eq!(run.code, Some(2), "{}", run.describe("refused"));
    assert!(
        run.stderr.contains(
            "DestinationRule sample/helloworld in cluster1: spec.trafficPolicy.connectionPool \
             changed since the plan was saved"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("ConfigMap istio-system/istio in cluster1: metadata.labels.team changed"),
        "{}",
        run.stderr
    );
    env.settled_dump()
        .assert_eq(&before, "a refused saved plan changes nothing");
    let status = env.migrate(&["status"]);
    assert!(
        !status.stdout.contains("run #1"),
        "no run started: {}",
        status.stdout
    );

    // A plan changed in the file is not the plan that was saved.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let steps = doc["plan"]["steps"].as_array_mut().unwrap();
    steps.last_mut().unwrap()["forward"] = Value::Array(Vec::new());
    let edited = env.path("edited.json");
    std::fs::write(&edited, serde_json::to_string(&doc).unwrap()).unwrap();
    let run = env.migrate(&["apply", "--plan", &edited.to_string_lossy()]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("edited after it was saved"),
        "{}",
        run.stderr
    );
}
