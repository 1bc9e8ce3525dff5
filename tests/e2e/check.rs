//! `migrate check` against meshsim, with the real binary and the real
//! kubectl: quiet (no error) on the mesh `apply -f plans/demo.yaml` leaves;
//! each mistake a user makes by hand afterwards is found with its code,
//! cluster and object, exit 1; `--context` without a spec finds two meshes
//! that never shared a root; a cluster that cannot be reached is a finding;
//! input that cannot be used exits 2 and says what and where.

use crate::sim_support::{Run, SimEnv};
use crate::support::repo_root;
use meshsim::SimConfig;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Two clusters as `migrate sim serve --seed` starts them.
fn seeded() -> SimEnv {
    let env = SimEnv::start_with(SimConfig {
        clusters: 2,
        ready_delay: Duration::from_millis(10),
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
    env
}

/// plans/demo.yaml with the installer and cert dir of this test.
fn demo_spec(env: &SimEnv) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("plans/demo.yaml")).unwrap();
    let text = text
        .replace("path: istioctl", "path: \"@ISTIOCTL@\"")
        .replace("certDir: ./migrate-certs", "certDir: \"@CERTS@\"");
    env.write_spec("demo.yaml", &text)
}

/// The findings of a `-o json` run: (code, severity, cluster, object).
fn findings(run: &Run) -> Vec<(String, String, String, String)> {
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{}", run.describe(&format!("-o json is not JSON: {e}"))));
    doc["findings"]
        .as_array()
        .expect("a findings array")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("code"), s("severity"), s("cluster"), s("object"))
        })
        .collect()
}

fn kubectl_ok(env: &SimEnv, cluster: &str, args: &[&str]) {
    let out = env.kubectl(cluster, args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `check -f spec -o json`, expects exit 1 and the finding.
fn finds(env: &SimEnv, spec: &str, code: &str, cluster: &str, object: &str) {
    let run = env.migrate(&["check", "-f", spec, "-o", "json"]);
    let found = findings(&run);
    assert!(
        found
            .iter()
            .any(|f| f.0 == code && f.1 == "error" && f.2 == cluster && f.3 == object),
        "{}",
        run.describe(&format!(
            "expected error {code} on {cluster} {object}; found {found:?}"
        ))
    );
    assert_eq!(run.code, Some(1), "{}", run.describe("exit 1 with errors"));
}

#[test]
fn quiet_on_the_migrated_demo_then_each_hand_made_mistake_is_found() {
    let env = seeded();
    let spec = demo_spec(&env);
    let spec = spec.to_string_lossy();
    env.migrate(&["apply", "-f", &spec]).expect_ok();

    let run = env.migrate(&["check", "-f", &spec]);
    assert_eq!(
        run.code,
        Some(0),
        "{}",
        run.describe("a migrated mesh passes")
    );
    assert!(
        run.stdout.contains("0 errors"),
        "{}",
        run.describe("the summary")
    );
    let run = env.migrate(&["check", "-f", &spec, "-o", "json"]);
    assert!(
        findings(&run).iter().all(|f| f.1 == "info"),
        "{}",
        run.describe("no error or warning on a migrated mesh")
    );

    // Mistakes, one after another; each check still finds the earlier ones.
    kubectl_ok(
        &env,
        "cluster1",
        &[
            "-n",
            "istio-system",
            "delete",
            "secret",
            "istio-remote-secret-cluster2",
        ],
    );
    finds(
        &env,
        &spec,
        "MC501",
        "cluster1",
        "Secret istio-system/istio-remote-secret-cluster2",
    );
    let run = env.migrate(&["check", "-f", &spec]);
    assert!(
        run.stdout
            .contains("ERROR   MC501 cluster1 Secret istio-system/istio-remote-secret-cluster2: ")
            && run.stdout.contains(
                "fix: istioctl create-remote-secret --context=sim-cluster2 --name=cluster2"
            ),
        "{}",
        run.describe("the text view names the finding and its fix")
    );

    kubectl_ok(
        &env,
        "cluster2",
        &[
            "-n",
            "istio-system",
            "annotate",
            "secret",
            "istio-remote-secret-cluster1",
            "networking.istio.io/cluster=cluster-one",
            "--overwrite",
        ],
    );
    finds(
        &env,
        &spec,
        "MC203",
        "cluster2",
        "Secret istio-system/istio-remote-secret-cluster1",
    );

    kubectl_ok(
        &env,
        "cluster1",
        &[
            "-n",
            "sample",
            "patch",
            "destinationrule",
            "helloworld",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/spec/trafficPolicy/outlierDetection"}]"#,
        ],
    );
    finds(
        &env,
        &spec,
        "MC601",
        "cluster1",
        "DestinationRule sample/helloworld",
    );

    kubectl_ok(
        &env,
        "cluster2",
        &[
            "label",
            "namespace",
            "istio-system",
            "topology.istio.io/network=network9",
            "--overwrite",
        ],
    );
    finds(&env, &spec, "MC301", "cluster2", "Namespace istio-system");

    kubectl_ok(
        &env,
        "cluster2",
        &[
            "-n",
            "sample",
            "patch",
            "service",
            "helloworld",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/ports/0/port","value":5001}]"#,
        ],
    );
    finds(
        &env,
        &spec,
        "MC652",
        "cluster2",
        "Service sample/helloworld",
    );

    kubectl_ok(
        &env,
        "cluster2",
        &[
            "-n",
            "istio-system",
            "delete",
            "serviceaccount",
            "istio-reader-service-account",
        ],
    );
    finds(
        &env,
        &spec,
        "MC751",
        "cluster2",
        "ServiceAccount istio-system/istio-reader-service-account",
    );

    kubectl_ok(
        &env,
        "cluster1",
        &[
            "-n",
            "istio-system",
            "label",
            "service",
            "istio-eastwestgateway",
            "topology.istio.io/network=network7",
            "--overwrite",
        ],
    );
    finds(
        &env,
        &spec,
        "MC303",
        "cluster1",
        "Service istio-system/istio-eastwestgateway",
    );

    // A second cross-network Gateway, as a copy of the sample applied twice under another name.
    let gateway = env.kubectl(
        "cluster1",
        &[
            "-n",
            "istio-system",
            "get",
            "gateway",
            "cross-network-gateway",
            "-o",
            "json",
        ],
    );
    let mut gateway: Value = serde_json::from_slice(&gateway.stdout).expect("the Gateway as JSON");
    gateway["metadata"] =
        serde_json::json!({ "name": "cross-network-gateway-copy", "namespace": "istio-system" });
    let file = env.path("gateway-copy.json");
    std::fs::write(&file, gateway.to_string()).unwrap();
    kubectl_ok(&env, "cluster1", &["apply", "-f", &file.to_string_lossy()]);
    finds(
        &env,
        &spec,
        "MC405",
        "cluster1",
        "Gateway istio-system/cross-network-gateway-copy",
    );

    kubectl_ok(
        &env,
        "cluster2",
        &[
            "-n",
            "istio-system",
            "patch",
            "secret",
            "cacerts",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/data/cert-chain.pem"}]"#,
        ],
    );
    finds(
        &env,
        &spec,
        "MC103",
        "cluster2",
        "Secret istio-system/cacerts",
    );

    // A pod injected before the clusterName was set (as the injector left it then).
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "legacy-0", "namespace": "default",
            "annotations": { "sidecar.istio.io/status": r#"{"containers":["istio-proxy"]}"# } },
        "spec": { "containers": [
            { "name": "app", "image": "busybox" },
            { "name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.30.3",
              "env": [{ "name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes" }] } ] }
    });
    let file = env.path("legacy-pod.json");
    std::fs::write(&file, pod.to_string()).unwrap();
    kubectl_ok(&env, "cluster1", &["apply", "-f", &file.to_string_lossy()]);
    finds(&env, &spec, "MC901", "cluster1", "Namespace default");

    // A group chosen runs that group only (and reading).
    let run = env.migrate(&[
        "check",
        "-f",
        &spec,
        "--group",
        "destination-rules",
        "-o",
        "json",
    ]);
    let codes: Vec<String> = findings(&run).into_iter().map(|f| f.0).collect();
    assert_eq!(
        codes,
        vec!["MC601".to_string()],
        "{}",
        run.describe("--group destination-rules")
    );
    env.assert_no_secrets_in_outputs();
}

#[test]
fn contexts_without_a_spec_find_two_meshes_that_never_shared_a_root() {
    let env = SimEnv::start(2);
    env.rt.block_on(async {
        for c in ["cluster1", "cluster2"] {
            meshsim::seed::seed_source_mesh(&env.sim, c)
                .await
                .expect("a mesh on each cluster");
        }
    });
    let (a, b) = (
        env.sim.cluster("cluster1").context(),
        env.sim.cluster("cluster2").context(),
    );
    let run = env.migrate(&["check", "--context", &a, "--context", &b, "-o", "json"]);
    let found = findings(&run);
    assert!(
        found.iter().any(|f| f.0 == "MC101"
            && f.2 == b
            && f.3 == "ConfigMap istio-system/istio-ca-root-cert"),
        "{}",
        run.describe(&format!("the roots mismatch; found {found:?}"))
    );
    // Both istiods call themselves Kubernetes: one clusterName for two clusters.
    assert!(
        found.iter().any(|f| f.0 == "MC202" && f.2 == b),
        "{found:?}"
    );
    assert_eq!(run.code, Some(1), "{}", run.describe("exit 1"));
    env.assert_no_secrets_in_outputs();
}

#[test]
fn an_unreachable_cluster_is_a_finding_and_bad_input_exits_2() {
    let env = SimEnv::start(1);
    let a = env.sim.cluster("cluster1").context().to_string();
    // A copy of the kubeconfig with a context whose server refuses connections.
    let copy = env.path("with-gone.kubeconfig");
    std::fs::copy(env.kubeconfig(), &copy).unwrap();
    let user = String::from_utf8(
        std::process::Command::new("kubectl")
            .args([
                "--kubeconfig",
                &copy.to_string_lossy(),
                "config",
                "view",
                "-o",
                "jsonpath={.users[0].name}",
            ])
            .output()
            .expect("kubectl runs")
            .stdout,
    )
    .unwrap();
    for args in [
        vec![
            "config",
            "set-cluster",
            "gone",
            "--server=https://127.0.0.1:9",
            "--insecure-skip-tls-verify=true",
        ],
        vec![
            "config",
            "set-context",
            "gone",
            "--cluster=gone",
            &format!("--user={user}"),
        ],
    ] {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&copy)
            .args(&args)
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let copy = copy.to_string_lossy();
    let run = env.migrate(&[
        "--kubeconfig",
        &copy,
        "check",
        "--context",
        &a,
        "--context",
        "gone",
        "-o",
        "json",
    ]);
    let found = findings(&run);
    assert!(
        found.iter().any(|f| f.0 == "MC001" && f.2 == "gone"),
        "{}",
        run.describe(&format!("{found:?}"))
    );
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("an unreadable cluster is an error finding")
    );

    let run = env.migrate(&["check", "--context", "no-such-context"]);
    assert_eq!(run.code, Some(2), "{}", run.describe("unknown context"));
    assert!(
        run.stderr.contains("no-such-context") && run.stderr.contains("known:"),
        "{}",
        run.describe("names the context and the known ones")
    );

    let missing = env.path("missing.yaml");
    let run = env.migrate(&["check", "-f", &missing.to_string_lossy()]);
    assert_eq!(run.code, Some(2), "{}", run.describe("unreadable spec"));
    assert!(
        run.stderr.contains("missing.yaml"),
        "{}",
        run.describe("names the file")
    );

    for args in [
        vec!["check"],
        vec!["check", "--context", &a, "--group", "nonsense"],
    ] {
        let run = env.migrate(&args);
        assert_eq!(run.code, Some(2), "{}", run.describe("bad flags"));
    }
}
