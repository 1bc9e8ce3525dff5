//! Know the mesh before touching it: preflight reads what each cluster runs
//! (installer of record, revisions, versions, data plane, CA, multi-cluster
//! leftovers); what migrate cannot carry out is refused with its evidence
//! and nothing changed; `plan` (live) and `status` show the inventory.

use crate::apply::{apply, step_statuses};
use crate::sim_support::SimEnv;
use crate::specs::two_cluster;
use meshsim::seed::{Installer, SourceMesh};
use serde_json::{Value, json};

/// cluster1 runs `mesh`; cluster2 has helloworld v2 and Prometheus, no mesh.
fn seeded(mesh: &SourceMesh) -> SimEnv {
    let env = SimEnv::start(2);
    env.rt.block_on(async {
        meshsim::seed::seed_mesh(&env.sim, "cluster1", mesh)
            .await
            .expect("the source mesh is seeded");
        meshsim::seed::deploy_helloworld(&env.sim, "cluster2", "v2")
            .await
            .expect("helloworld v2 on cluster2");
        meshsim::seed::deploy_prometheus(&env.sim, "cluster2")
            .await
            .expect("prometheus on cluster2");
    });
    env
}

fn helm(revision: &str, version: &str) -> SourceMesh {
    SourceMesh {
        installer: Installer::Helm,
        revision: revision.into(),
        istio_version: version.into(),
        ambient: false,
    }
}

/// Every step of install and later phases never started.
fn assert_nothing_after_preflight(env: &SimEnv) {
    for (id, status) in step_statuses(env) {
        if !id.starts_with("preflight/") {
            assert_eq!(status, "pending", "{id} never started");
        }
    }
}

#[test]
fn an_ambient_source_is_refused_in_preflight_naming_ambient_with_nothing_changed() {
    let env = seeded(&SourceMesh {
        ambient: true,
        ..Default::default()
    });
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let before = env.settled_dump();
    let run = apply(&env, &spec, &[], None);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("apply of an ambient mesh")
    );
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("cluster cluster1 runs Istio's ambient data plane")
            && said.contains("DaemonSet istio-system/ztunnel")
            && said.contains("still beta upstream")
            && said.contains("nothing was changed on any cluster"),
        "the refusal says ambient, why, and that nothing changed: {said}"
    );
    assert_nothing_after_preflight(&env);
    env.settled_dump()
        .assert_eq(&before, "a refused ambient mesh is left as it was");
    env.assert_no_secrets_in_outputs();
}

#[test]
fn a_helm_installed_source_with_installer_istioctl_is_refused_naming_the_release() {
    let env = seeded(&helm("", "1.30.3"));
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let before = env.settled_dump();
    let run = apply(&env, &spec, &[], None);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("apply with the wrong installer")
    );
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains(
            "cluster1's mesh was installed by Helm: release istiod in istio-system; set installer.kind: helm"
        ) && said.contains("nothing was changed on any cluster"),
        "the refusal names the evidence and the fix: {said}"
    );
    assert_nothing_after_preflight(&env);
    env.settled_dump()
        .assert_eq(&before, "an installer mismatch changes nothing");
    // status shows what preflight found, from the journal.
    let status = env.migrate(&["status"]);
    assert!(status.ok(), "{}", status.describe("status"));
    assert!(
        status
            .stdout
            .contains("mesh inventory (as preflight found it)")
            && status
                .stdout
                .contains("cluster1: installer helm (release istiod in istio-system)")
            && status.stdout.contains("cluster2: no mesh"),
        "status reports the inventory: {}",
        status.stdout
    );
    let json = env.migrate(&["status", "-o", "json"]);
    let doc: Value = serde_json::from_str(&json.stdout).expect("status -o json is JSON");
    assert_eq!(
        doc["meshInventory"]["cluster1"]["installer"]["kind"],
        "helm"
    );
    env.assert_no_secrets_in_outputs();
}

#[test]
fn live_plan_of_a_revisioned_helm_source_shows_installer_revision_version_and_mode() {
    let env = seeded(&helm("1-26-4", "1.26.4"));
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let spec = spec.to_string_lossy();
    let before = env.settled_dump();
    let run = env.migrate(&["plan", "-f", &spec]);
    assert!(run.ok(), "{}", run.describe("plan (live)"));
    let section = run
        .stdout
        .split("mesh inventory (read-only")
        .nth(1)
        .unwrap_or_else(|| panic!("no mesh inventory section in:\n{}", run.stdout));
    for want in [
        "cluster1: installer helm (release istiod in istio-system)",
        "control plane istio-system/istiod-1-26-4: revision 1-26-4, Istio 1.26.4",
        "injected namespaces: sample -> 1-26-4",
        "data plane: sidecar mode",
        "CA: self-signed (Secret istio-ca-secret)",
        "trust modes that apply: adopt, generate, files",
        "cluster2: no mesh",
    ] {
        assert!(section.contains(want), "{want:?} in:\n{section}");
    }
    // Its ingress gateway is no east-west gateway.
    assert!(!section.contains("already multi-cluster"), "{section}");
    let run = env.migrate(&["plan", "-f", &spec, "-o", "json"]);
    assert!(run.ok(), "{}", run.describe("plan -o json"));
    let doc: Value = serde_json::from_str(&run.stdout).expect("plan -o json is JSON");
    let c1 = &doc["meshInventory"]["cluster1"];
    assert_eq!(c1["installer"]["kind"], "helm");
    assert_eq!(
        c1["controlPlanes"],
        json!([{"deployment": "istiod-1-26-4", "revision": "1-26-4", "version": "1.26.4"}])
    );
    assert_eq!(c1["dataPlane"]["mode"], "sidecar");
    env.settled_dump()
        .assert_eq(&before, "plan reads, never writes");
    env.assert_no_secrets_in_outputs();
}

#[test]
fn a_leftover_remote_secret_is_reported_by_plan_and_warned_by_preflight() {
    let env = seeded(&SourceMesh::default());
    let store = env.sim.cluster("cluster1").store();
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "istio-remote-secret-old", "namespace": "istio-system",
            "labels": {"istio/multiCluster": "true"}},
        "stringData": {"old": "apiVersion: v1\nkind: Config\n"}});
    let rt = store
        .resolve_kind("v1", "Secret")
        .expect("Secrets are served");
    store
        .create(&rt, secret, &Default::default())
        .expect("the leftover remote secret is created");
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let spec_s = spec.to_string_lossy();
    let run = env.migrate(&["plan", "-f", &spec_s]);
    assert!(run.ok(), "{}", run.describe("plan (live)"));
    assert!(
        run.stdout
            .contains("already multi-cluster: remote secret istio-system/istio-remote-secret-old"),
        "plan names the leftover: {}",
        run.stdout
    );
    // Preflight warns and goes on: a dry run reaches past it.
    let run = apply(&env, &spec, &["--dry-run"], None);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("cluster cluster1 already holds parts of a multi-cluster mesh")
            && said.contains("remote secret istio-system/istio-remote-secret-old"),
        "{}",
        run.describe("apply --dry-run warns about the leftover")
    );
    assert!(
        said.contains("done   preflight/cluster1"),
        "{}",
        run.describe("a leftover is a warning, not a refusal")
    );
    env.assert_no_secrets_in_outputs();
}

#[test]
fn an_external_ca_is_refused_naming_the_evidence_and_the_modes_that_apply() {
    let env = seeded(&SourceMesh::default());
    // istio-csr's documented setup: istiod's own CA server off.
    let store = env.sim.cluster("cluster1").store();
    let rt = store
        .resolve_kind("apps/v1", "Deployment")
        .expect("Deployments are served");
    let mut istiod = store
        .get(&rt, Some("istio-system"), "istiod")
        .expect("istiod is seeded");
    let env_list = istiod
        .pointer_mut("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array_mut)
        .expect("istiod has env");
    env_list.push(json!({"name": "ENABLE_CA_SERVER", "value": "false"}));
    store
        .update(&rt, istiod, &Default::default())
        .expect("istiod is updated");
    let spec = env.write_spec("spec.yaml", &two_cluster());
    let before = env.settled_dump();
    let run = apply(&env, &spec, &[], None);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("apply over an external CA")
    );
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("come from an external CA (Deployment istiod env ENABLE_CA_SERVER=false)")
            && said.contains("so none applies (the spec says adopt)")
            && said.contains("nothing was changed on any cluster"),
        "the refusal names the evidence and the modes: {said}"
    );
    assert_nothing_after_preflight(&env);
    env.settled_dump()
        .assert_eq(&before, "a refused external CA changes nothing");
}

#[test]
fn minor_version_skew_between_the_source_and_an_adopted_mesh_is_a_warning() {
    let env = SimEnv::start(2);
    env.rt.block_on(async {
        meshsim::seed::seed_mesh(&env.sim, "cluster1", &SourceMesh::default())
            .await
            .expect("the source mesh is seeded");
        let older = SourceMesh {
            istio_version: "1.28.2".into(),
            ..Default::default()
        };
        meshsim::seed::seed_mesh(&env.sim, "cluster2", &older)
            .await
            .expect("cluster2's own mesh is seeded");
    });
    let from = "name: cluster2, context: sim-cluster2,";
    let text = two_cluster();
    assert!(text.contains(from), "the two-cluster spec changed: {text}");
    let text = text.replace(from, &format!("{from} existingMesh: adopt,"));
    let spec = env.write_spec("spec.yaml", &text);
    let spec_s = spec.to_string_lossy();
    let run = env.migrate(&["plan", "-f", &spec_s]);
    assert!(run.ok(), "{}", run.describe("plan (live)"));
    assert!(
        run.stdout.contains(
            "version skew across clusters: cluster1 runs Istio 1.30.3, cluster2 runs Istio 1.28.2"
        ),
        "plan shows the skew: {}",
        run.stdout
    );
    let run = apply(&env, &spec, &["--dry-run"], None);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("the meshes run different Istio minor versions (cluster1 runs Istio 1.30.3, cluster2 runs Istio 1.28.2)")
            && said.contains("done   preflight/cluster1"),
        "{}",
        run.describe("apply --dry-run warns about the skew and goes on")
    );
}
