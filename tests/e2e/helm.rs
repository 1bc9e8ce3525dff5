//! Helm as the installer, on a revisioned mesh: meshsim's cluster1 runs
//! Istio 1.26.4 from Istio's charts at revision 1-26-4 (with a value of the
//! user's own on the istiod release), and `plans/helm-revision.yaml` migrates
//! it with the real binary and the `helm` stand-in, checked with the real
//! kubectl and helm's own `get values` / `status`.

use crate::sim_support::{Dump, SimEnv};
use crate::support::repo_root;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub(crate) const REVISION: &str = "1-26-4";
pub(crate) const VERSION: &str = "1.26.4";

/// cluster1 seeded by Helm at the revision, with the user's own value on
/// the istiod release; cluster2 with helloworld v2 in a namespace that asks
/// for the revision, and a Prometheus. `latency` slows every API answer.
pub(crate) fn world(latency: Duration) -> SimEnv {
    let localities = crate::specs::TWO_CLUSTER_LOCALITIES
        .iter()
        .map(|(region, zone)| meshsim::mesh::Locality::new(region, zone, ""))
        .collect();
    let mut config = meshsim::SimConfig {
        clusters: 2,
        ready_delay: Duration::from_millis(10),
        localities,
        ..Default::default()
    };
    config.faults.latency = latency;
    let env = SimEnv::start_with(config);
    let mesh = meshsim::seed::SourceMesh {
        installer: meshsim::seed::Installer::Helm,
        revision: REVISION.into(),
        istio_version: VERSION.into(),
        ambient: false,
    };
    env.rt.block_on(async {
        meshsim::seed::seed_mesh(&env.sim, "cluster1", &mesh)
            .await
            .expect("the Helm mesh is seeded");
        meshsim::seed::deploy_helloworld(&env.sim, "cluster2", "v2")
            .await
            .expect("helloworld v2 on cluster2");
        meshsim::seed::deploy_prometheus(&env.sim, "cluster2")
            .await
            .expect("prometheus on cluster2");
    });
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    meshsim::helm::link(&bin, Path::new(env!("CARGO_BIN_EXE_migrate"))).unwrap();
    // A revisioned control plane injects only namespaces that name it.
    let label = env.kubectl(
        "cluster2",
        &[
            "label",
            "namespace",
            "sample",
            &format!("istio.io/rev={REVISION}"),
            "istio-injection-",
        ],
    );
    assert!(label.status.success(), "{}", text(&label.stderr));
    // A revision tag `prod` pointing at the revision, as `istioctl tag set` writes it.
    let tag = env.path("tag.json");
    std::fs::write(
        &tag,
        meshsim::istio::install::revision_tag_webhook("prod", REVISION).to_string(),
    )
    .unwrap();
    ok(
        &env.kubectl("cluster1", &["apply", "-f", &tag.to_string_lossy()]),
        "kubectl apply the tag",
    );
    // The user's own value of record, which the migration must keep.
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
                "pilot.autoscaleEnabled=false",
                "--wait",
            ],
        ),
        "the user's helm upgrade",
    );
    env
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} exited {:?}\n{}{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The `helm` stand-in against one cluster's istio-system.
pub(crate) fn helm(env: &SimEnv, cluster: &str, args: &[&str]) -> Output {
    let out = Command::new(env.path("bin").join("helm"))
        .args(args)
        .args(["-n", "istio-system", "--kube-context"])
        .arg(env.sim.cluster(cluster).context())
        .env("KUBECONFIG", env.kubeconfig())
        .output()
        .expect("the helm link runs");
    env.record_output(&format!("helm {}", args.join(" ")), &text(&out.stdout));
    out
}

fn helm_json(env: &SimEnv, cluster: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = helm(env, cluster, &all);
    ok(&out, &format!("helm {all:?}"));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// plans/helm-revision.yaml with this test's cert dir.
pub(crate) fn example_spec(env: &SimEnv) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("plans/helm-revision.yaml")).unwrap();
    assert!(text.contains("certDir: ./migrate-certs"));
    env.write_spec(
        "helm-revision.yaml",
        &text.replace("certDir: ./migrate-certs", "certDir: \"@CERTS@\""),
    )
}

/// The dump minus Helm's release records: a rollback is a new revision by
/// design (the history shows it), everything it rendered is compared.
fn without_release_records(mut dump: Dump) -> Dump {
    for objects in dump.clusters.values_mut() {
        objects.retain(|key, _| !key.contains("/sh.helm.release.v1."));
    }
    dump
}

fn istiod_env(env: &SimEnv, cluster: &str, name: &str) -> Option<String> {
    let out = env.kubectl(
        cluster,
        &[
            "get",
            "deployment",
            "-n",
            "istio-system",
            &format!("istiod-{REVISION}"),
            "-o",
            "json",
        ],
    );
    ok(&out, "kubectl get istiod");
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    d["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(str::to_string))
}

/// Where the revision tag `prod` sends each webhook: its service and selectors.
fn tag_targets(env: &SimEnv) -> Vec<Value> {
    let out = env.kubectl(
        "cluster1",
        &[
            "get",
            "mutatingwebhookconfiguration",
            "istio-revision-tag-prod",
            "-o",
            "json",
        ],
    );
    ok(&out, "kubectl get the tag");
    let tag: Value = serde_json::from_slice(&out.stdout).unwrap();
    tag["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            serde_json::json!([
                w["clientConfig"]["service"],
                w["namespaceSelector"],
                w["objectSelector"]
            ])
        })
        .collect()
}

fn assert_all_done(env: &SimEnv) {
    let status = env.migrate(&["status", "-o", "json"]).expect_ok();
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    for step in status["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "done", "{step}");
    }
}

#[test]
fn a_helm_installed_revisioned_mesh_migrates_drills_and_rolls_back() {
    let env = world(Duration::ZERO);
    let before = without_release_records(env.settled_dump());
    let tag_before = tag_targets(&env);
    assert!(tag_before[0].to_string().contains("istiod-1-26-4"));
    let spec = example_spec(&env);
    let spec = spec.to_string_lossy();
    let applied = env.migrate(&["apply", "-f", &spec]).expect_ok();
    assert_all_done(&env);
    assert_eq!(
        tag_targets(&env),
        tag_before,
        "the tag points where it pointed"
    );
    for table in ["baseline", "drain"] {
        let line = format!("probe failover/{table} from cluster1: 20 requests PASSED");
        assert!(
            applied.stderr.contains(&line),
            "{}",
            applied.describe(&format!("no {line:?}"))
        );
    }
    // Both clusters run istiod-1-26-4 with the multi-cluster identity.
    for (cluster, network) in [("cluster1", "network1"), ("cluster2", "network2")] {
        assert_eq!(
            istiod_env(&env, cluster, "CLUSTER_ID").as_deref(),
            Some(cluster)
        );
        let values = helm_json(&env, cluster, &["get", "values", "istiod"]);
        assert_eq!(values["global"]["multiCluster"]["clusterName"], cluster);
        assert_eq!(values["global"]["network"], network);
        assert_eq!(values["global"]["meshID"], "mesh1");
        assert_eq!(values["revision"], REVISION);
    }
    // The user's own value stays on the release of record.
    let values = helm_json(&env, "cluster1", &["get", "values", "istiod"]);
    assert_eq!(values["pilot"]["autoscaleEnabled"], false, "{values}");
    let deployed = helm_json(&env, "cluster1", &["status", "istiod"]);
    let upgraded_to = deployed["version"].as_u64().unwrap();
    assert_eq!(upgraded_to, 3, "seed v1, the user's v2, migrate's v3");

    env.migrate(&["rollback", "--to", "phase0"]).expect_ok();
    env.assert_no_secrets_in_outputs();
    let after = without_release_records(env.settled_dump());
    after.assert_eq(&before, "after rollback --to phase0");
    // The history shows the rollback to the user's revision, values and all.
    let status = helm_json(&env, "cluster1", &["status", "istiod"]);
    assert_eq!(status["info"]["description"], "Rollback to 2", "{status}");
    assert_eq!(status["version"], upgraded_to + 1);
    let values = helm_json(&env, "cluster1", &["get", "values", "istiod"]);
    assert_eq!(
        values,
        serde_json::json!({"revision": REVISION, "pilot": {"autoscaleEnabled": false}})
    );
    // cluster2's releases are gone: migrate installed them from nothing.
    let list = helm_json(&env, "cluster2", &["list"]);
    assert_eq!(list, serde_json::json!([]), "{list}");
}

/// `dir` first on PATH.
fn path_with(dir: &Path) -> String {
    match std::env::var("PATH") {
        Ok(p) => format!("{}:{p}", dir.display()),
        Err(_) => dir.display().to_string(),
    }
}

/// The labels of `release`'s newest record in cluster1, read from meshsim's store.
fn latest_record(env: &SimEnv, release: &str) -> Option<(u64, String)> {
    let store = env.sim.cluster("cluster1").store();
    let rt = store.resolve_kind("v1", "Secret")?;
    store
        .list(&rt, Some("istio-system"))
        .0
        .iter()
        .filter(|s| s.pointer("/metadata/labels/name").and_then(Value::as_str) == Some(release))
        .filter(|s| s.pointer("/metadata/labels/owner").and_then(Value::as_str) == Some("helm"))
        .filter_map(|s| {
            let l = |k: &str| s.pointer(&format!("/metadata/labels/{k}"))?.as_str();
            Some((l("version")?.parse().ok()?, l("status")?.to_string()))
        })
        .max()
}

/// Starts `apply` of the example, and SIGKILLs it while helm's upgrade of
/// istiod on cluster1 is in flight (its revision 3 written pending-upgrade).
fn kill_mid_istiod_upgrade(env: &SimEnv, spec: &Path) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_migrate"));
    cmd.args(["apply", "-f", &spec.to_string_lossy(), "--state-dir"])
        .arg(&env.state_dir)
        .current_dir(env.path(""))
        .env("KUBECONFIG", env.kubeconfig())
        .env("PATH", path_with(&env.path("bin")))
        .env_remove(migrate::engine::failpoint::ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("migrate starts");
    env.wait_for(
        "helm's upgrade of istiod in flight (revision 3 pending-upgrade)",
        Duration::from_secs(120),
        || latest_record(env, "istiod") == Some((3, "pending-upgrade".into())),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // helm dies with migrate: its record stays pending, and Helm refuses the release.
    assert_eq!(
        latest_record(env, "istiod"),
        Some((3, "pending-upgrade".into()))
    );
    let refused = helm(
        env,
        "cluster1",
        &["upgrade", "istiod", "istio/istiod", "--version", VERSION],
    );
    assert!(!refused.status.success(), "helm refuses a pending release");
}

#[test]
fn a_helm_killed_mid_upgrade_is_undone_by_rollback() {
    // Slow answers keep helm's upgrade of istiod in flight long enough to
    // see its pending record.
    let env = world(Duration::from_millis(5));
    let before = without_release_records(env.settled_dump());
    let spec = example_spec(&env);
    kill_mid_istiod_upgrade(&env, &spec);
    env.migrate(&["rollback", "--to", "phase0"]).expect_ok();
    let after = without_release_records(env.settled_dump());
    after.assert_eq(&before, "after the killed run's rollback --to phase0");
    // The pending record gave way to a rollback that applied revision 2 again.
    let status = helm_json(&env, "cluster1", &["status", "istiod"]);
    assert_eq!(status["info"]["description"], "Rollback to 2", "{status}");
    assert_eq!(status["version"], 3, "{status}");
}

#[test]
fn a_helm_killed_mid_upgrade_is_recovered_on_resume_without_a_second_upgrade() {
    let env = world(Duration::from_millis(5));
    let spec = example_spec(&env);
    kill_mid_istiod_upgrade(&env, &spec);
    let resumed = env
        .migrate(&["apply", "-f", &spec.to_string_lossy(), "--resume"])
        .expect_ok();
    assert_all_done(&env);
    // The pending record was cleared and the upgrade redone once: revision 3
    // deployed, no fourth one.
    assert_eq!(latest_record(&env, "istiod"), Some((3, "deployed".into())));
    let status = env
        .migrate(&["status", "-o", "json", "--events"])
        .expect_ok();
    assert!(
        status
            .stdout
            .contains("revision 3 was left pending-upgrade by a helm this step started"),
        "{}",
        resumed.describe("no note of the recovery")
    );
    assert_eq!(
        istiod_env(&env, "cluster1", "CLUSTER_ID").as_deref(),
        Some("cluster1")
    );
    let values = helm_json(&env, "cluster1", &["get", "values", "istiod"]);
    assert_eq!(values["pilot"]["autoscaleEnabled"], false, "{values}");
}
