//! Undo only what was done: a target cluster that already runs an Istio is
//! refused in preflight with nothing changed, unless the spec adopts that
//! mesh (`existingMesh: adopt`), and then rollback puts its values back and
//! never uninstalls it; a step that failed before its first change is not
//! undone (the installer log shows no uninstall).

use crate::apply::{apply, step_statuses};
use crate::sim_support::SimEnv;
use crate::specs::two_cluster;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The istiod Deployment, the values ConfigMap and one of Istio's CRDs.
const EXISTING: [(&str, &str, Option<&str>, &str); 3] = [
    ("apps/v1", "Deployment", Some("istio-system"), "istiod"),
    ("v1", "ConfigMap", Some("istio-system"), "values"),
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "virtualservices.networking.istio.io",
    ),
];

/// cluster1 as the other tests seed it; cluster2 runs an Istio of its own
/// (installed with the istioctl stand-in, as a user would have), then
/// helloworld v2 and Prometheus.
fn seeded_with_existing_mesh() -> SimEnv {
    seeded_with_mesh_spec("  profile: default\n")
}

/// As [`seeded_with_existing_mesh`], cluster2's IstioOperator spec given.
fn seeded_with_mesh_spec(iop_spec: &str) -> SimEnv {
    let env = SimEnv::start(2);
    env.rt.block_on(async {
        meshsim::seed::seed_source_mesh(&env.sim, "cluster1")
            .await
            .expect("the source mesh is seeded");
    });
    let iop = env.path("existing-istio.yaml");
    std::fs::write(
        &iop,
        format!("apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n{iop_spec}"),
    )
    .unwrap();
    let out = Command::new(env.istioctl())
        .args(["install", "-y", "-f"])
        .arg(&iop)
        .args(["--context", "sim-cluster2"])
        .env("KUBECONFIG", env.kubeconfig())
        .output()
        .expect("the istioctl stand-in runs");
    assert!(
        out.status.success(),
        "istioctl install on cluster2: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.rt.block_on(async {
        meshsim::seed::deploy_helloworld(&env.sim, "cluster2", "v2")
            .await
            .expect("helloworld v2 on cluster2");
        meshsim::seed::deploy_prometheus(&env.sim, "cluster2")
            .await
            .expect("prometheus on cluster2");
    });
    env
}

/// The two-cluster spec, with `existingMesh: adopt` on cluster2 when asked.
fn spec(env: &SimEnv, adopt: bool) -> PathBuf {
    let mut text = two_cluster();
    if adopt {
        let from = "name: cluster2, context: sim-cluster2,";
        assert!(text.contains(from), "the two-cluster spec changed: {text}");
        text = text.replace(
            from,
            "name: cluster2, context: sim-cluster2, existingMesh: adopt,",
        );
    }
    env.write_spec("spec.yaml", &text)
}

/// The object in cluster2's store, if there.
fn object(
    env: &SimEnv,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
) -> Option<Value> {
    let store = env.sim.cluster("cluster2").store();
    let rt = store.resolve_kind(api_version, kind)?;
    store.get(&rt, ns, name).ok()
}

fn existing_objects(env: &SimEnv) -> Vec<Option<Value>> {
    EXISTING
        .iter()
        .map(|(api, kind, ns, name)| object(env, api, kind, *ns, name))
        .collect()
}

/// The lines of the installer log (`MESHSIM_ISTIOCTL_LOG`).
fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A canary control plane (`istiod-canary`, no plain `istiod`) is a mesh too.
#[test]
fn a_target_cluster_running_a_revisioned_istio_is_refused_too() {
    let env = seeded_with_mesh_spec("  profile: default\n  revision: canary\n");
    assert!(
        object(
            &env,
            "apps/v1",
            "Deployment",
            Some("istio-system"),
            "istiod"
        )
        .is_none()
            && object(
                &env,
                "apps/v1",
                "Deployment",
                Some("istio-system"),
                "istiod-canary"
            )
            .is_some(),
        "cluster2 runs only the canary revision"
    );
    let spec = spec(&env, false);
    let before = env.settled_dump();
    let run = apply(&env, &spec, &[], None);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("apply over a canary mesh")
    );
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("cluster cluster2 already runs Istio")
            && said.contains("Deployment istio-system/istiod-canary")
            && said.contains("revision canary"),
        "the refusal names the revisioned control plane: {said}"
    );
    env.settled_dump()
        .assert_eq(&before, "a refused preflight changes nothing");
}

#[test]
fn a_target_cluster_running_istio_is_refused_in_preflight_with_nothing_changed() {
    let env = seeded_with_existing_mesh();
    let spec = spec(&env, false);
    let before = env.settled_dump();
    let run = apply(&env, &spec, &[], None);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("apply over an existing mesh")
    );
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("cluster cluster2 already runs Istio")
            && said.contains("Deployment istio-system/istiod")
            && said.contains("Istio 1.30.3")
            && said.contains("existingMesh: adopt"),
        "the refusal names the evidence and the way out: {said}"
    );
    let statuses = step_statuses(&env);
    for (id, status) in &statuses {
        if id.starts_with("install/") {
            assert_eq!(status, "pending", "{id} never started");
        }
    }
    env.settled_dump()
        .assert_eq(&before, "a refused preflight changes nothing");
    env.assert_no_secrets_in_outputs();
}

#[test]
fn an_adopted_mesh_is_migrated_and_rollback_to_phase0_gives_it_back() {
    let env = seeded_with_existing_mesh();
    let spec = spec(&env, true);
    let existing = existing_objects(&env);
    assert!(existing.iter().all(Option::is_some), "cluster2 runs Istio");
    let before = env.settled_dump();
    let log = env.path("istioctl.log");
    let log_s = log.to_string_lossy().into_owned();
    let ist = [("MESHSIM_ISTIOCTL_LOG", log_s.as_str())];
    let spec_s = spec.to_string_lossy().into_owned();
    let run = env.migrate_env(&["apply", "-f", &spec_s], &ist);
    assert!(
        run.ok(),
        "{}",
        run.describe("apply adopting cluster2's mesh")
    );
    for (id, status) in step_statuses(&env) {
        assert_eq!(status, "done", "step {id}");
    }
    // Reconfigured in place: the same istiod, now cluster2 of mesh1.
    let values = object(&env, "v1", "ConfigMap", Some("istio-system"), "values").unwrap();
    assert!(
        values.to_string().contains("cluster2"),
        "the adopted mesh carries its new clusterName: {values}"
    );
    let run = env.migrate_env(&["rollback", "--to", "phase0"], &ist);
    assert!(run.ok(), "{}", run.describe("rollback --to phase0"));
    let lines = log_lines(&log);
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("command=uninstall")
                && l.contains("context=sim-cluster2 file=istio-")),
        "cluster2's own Istio was never uninstalled: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("start")
            && l.contains("command=install context=sim-cluster2 file=istio-cluster2-before.yaml")),
        "it was re-installed from its snapshot: {lines:#?}"
    );
    let after = existing_objects(&env);
    assert!(
        after.iter().all(Option::is_some),
        "istiod, values and the CRDs are still there"
    );
    let data = |v: &Option<Value>| v.as_ref().map(|v| v["data"].clone());
    assert_eq!(
        data(&after[1]),
        data(&existing[1]),
        "its values are as before"
    );
    env.settled_dump()
        .assert_eq(&before, "rollback --to phase0 of an adopted mesh");
    env.assert_no_secrets_in_outputs();
}

#[test]
fn a_step_that_failed_before_its_first_change_is_not_undone() {
    let env = crate::apply::seeded();
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let spec_s = spec.to_string_lossy().into_owned();
    let before = env.settled_dump();
    let log = env.path("istioctl.log");
    let log_s = log.to_string_lossy().into_owned();
    // One step at a time; cluster2 goes down while cluster1's installer runs,
    // after every preflight step passed: install/cluster2 fails reading its
    // snapshots, before its first change.
    let run = std::thread::scope(|s| {
        let applying = s.spawn(|| {
            env.migrate_env(
                &["apply", "-f", &spec_s, "--parallelism", "1"],
                &[
                    ("MESHSIM_ISTIOCTL_LOG", log_s.as_str()),
                    ("MESHSIM_ISTIOCTL_DELAY_MS", "1500"),
                ],
            )
        });
        env.wait_for(
            "cluster1's installer to start",
            Duration::from_secs(120),
            || {
                log_lines(&log)
                    .iter()
                    .any(|l| l.starts_with("start") && l.contains("command=install"))
            },
        );
        let lines = log_lines(&log);
        let first = lines
            .iter()
            .find(|l| l.starts_with("start") && l.contains("command=install"));
        assert!(
            first.is_some_and(|l| l.contains("context=sim-cluster1")),
            "cluster1 is installed first: {lines:?}"
        );
        env.sim.cluster("cluster2").faults().set_down(true);
        applying.join().expect("apply ran")
    });
    env.sim.cluster("cluster2").faults().set_down(false);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("apply with cluster2 gone")
    );
    let statuses: Vec<(String, String)> = step_statuses(&env);
    let status_of = |id: &str| {
        statuses
            .iter()
            .find(|(s, _)| s == id)
            .map(|(_, st)| st.clone())
            .unwrap_or_default()
    };
    assert_eq!(status_of("install/cluster2"), "failed", "{statuses:?}");
    let dry = env
        .migrate(&["rollback", "--to", "phase0", "--dry-run"])
        .expect_ok();
    let said = format!("{}{}", dry.stdout, dry.stderr);
    assert!(
        said.contains("skip install/cluster2: nothing to undo")
            && !said.contains("undo install/cluster2 "),
        "the dry run skips install/cluster2: {said}"
    );
    let run = env.migrate_env(
        &["rollback", "--to", "phase0"],
        &[("MESHSIM_ISTIOCTL_LOG", log_s.as_str())],
    );
    assert!(run.ok(), "{}", run.describe("rollback --to phase0"));
    let lines = log_lines(&log);
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("command=uninstall") && l.contains("context=sim-cluster2")),
        "nothing was uninstalled from cluster2: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("context=sim-cluster2")),
        "no installer ever ran against cluster2: {lines:#?}"
    );
    // Rollback left it as it was: failed, with nothing to undo.
    let status = env.migrate(&["status"]).expect_ok();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.contains("install/cluster2") && l.contains("nothing to undo")),
        "status says install/cluster2 has nothing to undo: {}",
        status.stdout
    );
    env.settled_dump().assert_eq(
        &before,
        "rollback --to phase0 after install/cluster2 failed",
    );
    env.assert_no_secrets_in_outputs();
}

/// Istio's CRDs left on cluster2 by an earlier Istio (installed, then
/// uninstalled without `--purge`, as istioctl's docs show), with a user's
/// VirtualService of theirs: migrate installs there, and `rollback --to
/// phase0` uninstalls what it installed without `--purge`, so the CRDs and
/// the user's object stay.
#[test]
fn rollback_keeps_istio_crds_that_were_there_before() {
    let env = seeded_with_existing_mesh();
    let iop = env.path("existing-istio.yaml");
    let out = Command::new(env.istioctl())
        .args(["uninstall", "-y", "-f"])
        .arg(&iop)
        .args(["--context", "sim-cluster2"])
        .env("KUBECONFIG", env.kubeconfig())
        .output()
        .expect("the istioctl stand-in runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crd = (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "virtualservices.networking.istio.io",
    );
    assert!(
        object(&env, crd.0, crd.1, crd.2, crd.3).is_some(),
        "the CRDs stayed"
    );
    assert!(
        object(
            &env,
            "apps/v1",
            "Deployment",
            Some("istio-system"),
            "istiod"
        )
        .is_none(),
        "no istiod runs on cluster2"
    );
    let vs = env.path("vs.yaml");
    std::fs::write(
        &vs,
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: teams-own, namespace: sample}\n\
         spec: {hosts: [helloworld], http: [{route: [{destination: {host: helloworld}}]}]}\n",
    )
    .unwrap();
    let made = env.kubectl("cluster2", &["apply", "-f", &vs.to_string_lossy()]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let spec = spec(&env, false);
    let run = apply(&env, &spec, &[], None);
    assert!(run.ok(), "{}", run.describe("apply over leftover CRDs"));
    let run = env.migrate(&["rollback", "--to", "phase0"]);
    assert!(run.ok(), "{}", run.describe("rollback --to phase0"));
    assert!(
        run.stderr
            .contains("uninstall in cluster2 without --purge: Istio's CRDs were there before"),
        "{}",
        run.describe("the rollback says why it keeps the CRDs")
    );
    assert!(
        object(&env, crd.0, crd.1, crd.2, crd.3).is_some(),
        "the CRD that was there before is still there"
    );
    assert!(
        object(
            &env,
            "networking.istio.io/v1",
            "VirtualService",
            Some("sample"),
            "teams-own"
        )
        .is_some(),
        "the user's VirtualService is still there"
    );
}
