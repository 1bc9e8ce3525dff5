//! State written by an older migrate: tests/fixtures/state-v1-killed-in-install is a state directory the first
//! release wrote (schema 1, records and stored plan without a version): `apply -f plans/demo.yaml --parallelism 1`
//! against `migrate sim serve --seed`, SIGKILLed right after install/cluster1 (its done mark was lost, so the step
//! reads as running), then `status` once. Its stored plan names a kubeconfig that no longer exists.
//!
//! This build must read it, resume it to the end (install/cluster1 re-runs with the snapshots the old binary
//! took) and roll it back to the pre-migration clusters exactly, reaching them through the kubeconfig given now;
//! and refuse a directory of a newer schema, naming who wrote it, without changing it.

use crate::sim_support::SimEnv;
use crate::support::repo_root;
use meshsim::SimConfig;
use migrate::engine::StoredPlan;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FIXTURE: &str = "tests/fixtures/state-v1-killed-in-install";

/// Simulated clusters as `migrate sim serve --seed` starts them (its default ready delay and localities), and
/// the demo spec, unchanged, in the directory the binary runs in: its `istioctl` is the stand-in on PATH and its
/// `./migrate-certs` is relative to that directory, as when the fixture was written.
fn seeded_like_sim_serve() -> (SimEnv, PathBuf) {
    let env = SimEnv::start_with(SimConfig {
        clusters: 2,
        ready_delay: Duration::from_millis(50),
        ..Default::default()
    });
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
    env.istioctl();
    let text = fs::read_to_string(repo_root().join("plans/demo.yaml")).unwrap();
    let spec = env.write_spec("demo.yaml", &text);
    (env, spec)
}

/// Copies `from` to `to`, the top directory private (mode 0700) as a state directory must be.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o700)).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(contents(&path));
        } else {
            let bytes = fs::read(&path).unwrap();
            out.insert(path, bytes);
        }
    }
    out
}

fn marker(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("migrate-state.json")).unwrap()).unwrap()
}

#[test]
fn the_fixture_holds_no_key_material() {
    for (path, bytes) in contents(&repo_root().join(FIXTURE)) {
        let text = String::from_utf8_lossy(&bytes);
        // PEM in clear, or base64 of "-----BEGIN" as Secret data holds it.
        for needle in ["PRIVATE KEY", "-----BEGIN", "LS0tLS1CRUdJTi"] {
            assert!(
                !text.contains(needle),
                "{} contains {needle:?}",
                path.display()
            );
        }
    }
}

#[test]
fn the_fixture_is_schema_1_with_an_unversioned_plan() {
    let dir = repo_root().join(FIXTURE);
    let m = marker(&dir);
    assert_eq!(m["schema"], json!(1), "{m}");
    assert!(m.get("written_by").is_none(), "{m}");
    // The status copy holds the stored plan as the first release wrote it.
    let plan: Value =
        serde_json::from_slice(&fs::read(dir.join("status-plan.json")).unwrap()).unwrap();
    assert!(plan.get("format").is_none());
    let stored = StoredPlan::from_value(plan).expect("a format 1 plan reads");
    assert_eq!(stored.format, 1);
    // The first release recorded the kubeconfig of a scratch directory long
    // gone: the rollback test must give its own.
    let recorded = stored
        .kubeconfigs
        .get("cluster1")
        .expect("a recorded kubeconfig");
    assert!(recorded.ends_with("kc"), "{recorded:?}");
}

#[test]
fn a_stored_plan_of_a_newer_format_is_refused_naming_it() {
    let dir = repo_root().join(FIXTURE);
    let mut plan: Value =
        serde_json::from_slice(&fs::read(dir.join("status-plan.json")).unwrap()).unwrap();
    plan["format"] = json!(StoredPlan::FORMAT + 1);
    plan["writtenBy"] = json!("9.9.9");
    // Steps of a newer format may not parse: the version is read first.
    plan["steps"] = json!("reshaped");
    let err = StoredPlan::from_value(plan).unwrap_err().to_string();
    for part in [
        &format!("plan format {}", StoredPlan::FORMAT + 1),
        "9.9.9",
        "nothing was changed",
    ] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
}

#[test]
fn state_from_the_first_release_resumes_and_rolls_back_exactly() {
    let (env, spec) = seeded_like_sim_serve();
    copy_dir(&repo_root().join(FIXTURE), &env.state_dir);
    let before = env.settled_dump();

    let status = env.migrate(&["status"]).expect_ok();
    let line = status
        .stdout
        .lines()
        .find(|l| l.contains("install/cluster1 "))
        .unwrap_or_else(|| panic!("status names install/cluster1:\n{}", status.stdout));
    assert!(
        line.contains("running"),
        "the old binary lost install/cluster1's done mark: {line}"
    );
    assert_eq!(marker(&env.state_dir)["schema"], json!(2), "upgraded");

    let spec = spec.to_string_lossy();
    // Preflight has asked for permissions since (issue 12): its done steps changed, hence --replan.
    // The first release recorded no cluster identity: refused, naming that
    // cause, until the user says the contexts reach the same clusters.
    let refused = env.migrate(&["apply", "-f", &spec, "--resume", "--replan"]);
    assert!(
        !refused.ok() && refused.stderr.contains("recorded no identity"),
        "{}",
        refused.describe("resume of a run without identities")
    );
    let apply = env.migrate(&[
        "apply",
        "-f",
        &spec,
        "--resume",
        "--replan",
        "--accept-unknown-identity",
    ]);
    assert!(apply.ok(), "{}", apply.describe("resume of the old run"));
    let status = env.migrate(&["status", "-o", "json"]).expect_ok();
    let doc: Value = serde_json::from_str(&status.stdout).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    assert!(
        steps.iter().all(|s| s["status"] == "done"),
        "after the resume:\n{}",
        status.stdout
    );
    let install = steps
        .iter()
        .find(|s| s["id"] == "install/cluster1")
        .unwrap();
    assert_eq!(
        install["attempts"],
        json!(2),
        "install/cluster1 re-ran once, over the old binary's snapshots"
    );

    // The recorded kubeconfig is not these clusters': the one given now must be used.
    let kubeconfig = env.kubeconfig().to_string_lossy().into_owned();
    let rollback = env.migrate(&["rollback", "--to", "phase0", "--kubeconfig", &kubeconfig]);
    assert!(
        rollback.ok(),
        "{}",
        rollback.describe("rollback --to phase0")
    );
    env.settled_dump().assert_eq(
        &before,
        "rollback --to phase0 of a run begun by the first release",
    );
    env.assert_no_secrets_in_outputs();
}

#[test]
fn a_directory_of_a_newer_schema_is_refused_and_left_unchanged() {
    let (env, spec) = seeded_like_sim_serve();
    copy_dir(&repo_root().join(FIXTURE), &env.state_dir);
    let mut m = marker(&env.state_dir);
    m["schema"] = json!(99);
    m["written_by"] = json!("9.9.9");
    fs::write(env.state_dir.join("migrate-state.json"), m.to_string()).unwrap();
    let before = contents(&env.state_dir);
    let spec = spec.to_string_lossy();
    for args in [
        vec!["status"],
        vec!["apply", "-f", &spec, "--resume"],
        vec!["rollback", "--to", "phase0"],
    ] {
        let run = env.migrate(&args);
        assert!(!run.ok(), "{}", run.describe("expected a refusal"));
        for part in ["9.9.9", "schema 99", "nothing was changed"] {
            assert!(
                run.stderr.contains(part),
                "{}",
                run.describe(&format!("{part:?} missing"))
            );
        }
        assert_eq!(
            contents(&env.state_dir),
            before,
            "migrate {} changed the directory",
            args.join(" ")
        );
    }
}
