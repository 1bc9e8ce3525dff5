//! Saved plans against meshsim: `plan --out` then `apply --plan` runs the
//! plan; a hand edit in between is refused naming the object and the field,
//! and nothing changes; the file holds no secret; a plan edited in the file
//! is refused, and so is one whose fingerprinted objects were edited; a
//! Helm release upgraded by hand or a file put under certDir since is
//! named.

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

    // The fingerprinted objects edited by hand: one the plan reads taken
    // out (it would go unchecked), one it does not read put in.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let objects = doc["objects"].as_array_mut().unwrap();
    let at = objects
        .iter()
        .position(|o| o["key"]["kind"] == "Secret" && o["key"]["name"] == "istio-ca-secret")
        .expect("the CA Secret is fingerprinted");
    let mut planted = objects.remove(at);
    planted["key"]["name"] = Value::from("planted");
    objects.push(planted);
    let edited = env.path("objects-edited.json");
    std::fs::write(&edited, serde_json::to_string(&doc).unwrap()).unwrap();
    let run = env.migrate(&["apply", "--plan", &edited.to_string_lossy()]);
    assert_eq!(run.code, Some(2), "{}", run.describe("refused"));
    assert!(
        run.stderr
            .contains("not fingerprinted: cluster1: v1 Secret istio-system/istio-ca-secret")
            && run
                .stderr
                .contains("not read by the plan: cluster1: v1 Secret istio-system/planted"),
        "{}",
        run.stderr
    );
    env.settled_dump()
        .assert_eq(&before, "a refused saved plan changes nothing");
}

#[test]
fn a_file_put_under_cert_dir_since_saving_is_named() {
    let (env, spec) = seeded_with_spec();
    let file = save(&env, &spec);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let root_cert = env.cert_dir.join("root").join("root-cert.pem");
    assert!(
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == root_cert.to_string_lossy().as_ref() && f["sha256"].is_null()),
        "the root the trust phase would reuse is fingerprinted, absent: {}",
        doc["files"]
    );
    std::fs::create_dir_all(root_cert.parent().unwrap()).unwrap();
    std::fs::write(&root_cert, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let before = env.settled_dump();
    let run = env.migrate(&["apply", "--plan", &file.to_string_lossy()]);
    assert_eq!(run.code, Some(2), "{}", run.describe("refused"));
    assert!(
        run.stderr.contains(&format!(
            "file {}: created since the plan was saved",
            root_cert.display()
        )),
        "{}",
        run.stderr
    );
    env.settled_dump()
        .assert_eq(&before, "a refused saved plan changes nothing");
}

#[test]
fn a_helm_release_upgraded_by_hand_since_saving_is_named() {
    use crate::helm::{REVISION, VERSION, example_spec, helm, ok, world};
    let env = world(std::time::Duration::ZERO);
    let spec = example_spec(&env);
    let file = save(&env, &spec);
    let text = std::fs::read_to_string(&file).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let istiod = doc["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"]["cluster"] == "cluster1" && r["key"]["release"] == "istiod")
        .expect("the istiod release the plan upgrades is fingerprinted");
    assert!(istiod["valuesHash"].is_string(), "{istiod}");
    let values = istiod["values"].as_object().expect("hashes per key");
    assert!(values.contains_key("pilot"), "{istiod}");
    assert!(
        values
            .values()
            .all(|h| h.as_str().is_some_and(|h| h.len() == 64)),
        "hashes only, never a value: {istiod}"
    );
    // The user's values of record, changed by hand with Helm.
    ok(
        &helm(
            &env,
            "cluster1",
            &[
                "upgrade",
                "istiod",
                "istio/istiod",
                "--version",
                VERSION,
                "--set",
                &format!("revision={REVISION}"),
                "--set",
                "pilot.autoscaleEnabled=true",
                "--wait",
            ],
        ),
        "the user's second helm upgrade",
    );
    let run = env.migrate(&["apply", "--plan", &file.to_string_lossy()]);
    assert_eq!(run.code, Some(2), "{}", run.describe("refused"));
    assert!(
        run.stderr.contains(
            "Helm release istio-system/istiod in cluster1: its values of record changed (pilot); revision "
        ) && run.stderr.contains("(deployed) -> revision "),
        "{}",
        run.stderr
    );
    let status = env.migrate(&["status"]);
    assert!(!status.stdout.contains("run #1"), "{}", status.stdout);
}
