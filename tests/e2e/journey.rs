//! Whole migrations on simulated clusters: every phase applied by the real
//! binary, meshsim's mesh model judging whether traffic crosses clusters, and
//! the seeds' own checks made with the real kubectl.

use crate::sim_support::SimEnv;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// helloworld's version in cluster `i` (1-based): v1 on the source, v2, v3...
fn version_of(i: usize) -> String {
    format!("v{i}")
}

/// `n` simulated clusters: cluster1 runs today's single-cluster mesh, every
/// other one helloworld of its own version (and a Prometheus for the
/// observability phase), no mesh. `flat`: one pod network for all (pod IPs
/// routable between clusters), else one each.
fn world(n: usize, flat: bool) -> SimEnv {
    let env = SimEnv::start_with(meshsim::SimConfig {
        clusters: n,
        ready_delay: std::time::Duration::from_millis(10),
        pod_networks: if flat {
            vec!["vpc1".into(); n]
        } else {
            Vec::new()
        },
        ..Default::default()
    });
    env.rt.block_on(async {
        meshsim::seed::seed_source_mesh(&env.sim, "cluster1")
            .await
            .expect("the source mesh is seeded");
        for i in 2..=n {
            let c = format!("cluster{i}");
            meshsim::seed::deploy_helloworld(&env.sim, &c, &version_of(i))
                .await
                .expect("helloworld deployed");
            meshsim::seed::deploy_prometheus(&env.sim, &c)
                .await
                .expect("prometheus deployed");
        }
    });
    env
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} exited {:?}\n{}{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn kubectl_json(env: &SimEnv, cluster: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = env.kubectl(cluster, &all);
    ok(&out, &format!("kubectl {all:?}"));
    serde_json::from_slice(&out.stdout).unwrap()
}

static PROBES: AtomicU32 = AtomicU32::new(0);

/// Runs meshsim's documented probe Job in `cluster`'s namespace `sample`
/// with the real kubectl and counts the answers per helloworld version;
/// errors count under `error: <line>`.
fn probe(env: &SimEnv, cluster: &str, requests: u32) -> BTreeMap<String, u32> {
    let name = format!("test-probe-{}", PROBES.fetch_add(1, Ordering::Relaxed));
    let job = meshsim::mesh::probe::probe_job(
        &name,
        "sample",
        "http://helloworld.sample:5000/hello",
        requests,
        5,
    );
    let file = env.path(&format!("{name}.json"));
    std::fs::write(&file, job.to_string()).unwrap();
    ok(
        &env.kubectl(cluster, &["apply", "-f", &file.to_string_lossy()]),
        "kubectl apply probe",
    );
    let job_ref = format!("job/{name}");
    ok(
        &env.kubectl(
            cluster,
            &[
                "wait",
                "-n",
                "sample",
                "--for=condition=complete",
                "--timeout=60s",
                &job_ref,
            ],
        ),
        "kubectl wait for the probe",
    );
    let out = env.kubectl(cluster, &["logs", "-n", "sample", &job_ref, "-c", "probe"]);
    ok(&out, "kubectl logs");
    let mut counts = BTreeMap::new();
    for answer in meshsim::mesh::probe::parse_log(&text(&out.stdout)) {
        let key = match (answer.version, answer.error) {
            (Some(v), _) => v,
            (None, e) => format!("error: {}", e.unwrap_or_default()),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    ok(
        &env.kubectl(cluster, &["delete", "-n", "sample", &job_ref]),
        "kubectl delete probe",
    );
    counts
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Every cluster a primary on its own network.
    MultiNetwork,
    /// Every cluster a primary, one network.
    SameNetwork,
    /// cluster1 primary, the others remotes of it, each on its own network.
    PrimaryRemote,
}

/// A spec for `n` clusters. `drill` adds the locality DestinationRule and the
/// failover test (draining the client's own cluster, as Istio's docs do).
fn spec(n: usize, shape: Shape, restart: &str, drill: bool) -> String {
    let topology = if shape == Shape::PrimaryRemote {
        "primary-remote"
    } else {
        "multi-primary"
    };
    let mut clusters = String::new();
    for i in 1..=n {
        let network = if shape == Shape::SameNetwork {
            "network1".to_string()
        } else {
            format!("network{i}")
        };
        let role = match (shape, i) {
            (Shape::PrimaryRemote, 1) => ", role: primary",
            (Shape::PrimaryRemote, _) => ", role: remote, primary: cluster1",
            _ => "",
        };
        let source = if i == 1 { ", source: true" } else { "" };
        clusters.push_str(&format!(
            "    - {{ name: cluster{i}, context: sim-cluster{i}, network: {network}{role}{source}, locality: {{ region: region{i}, zone: zone{i} }} }}\n"
        ));
    }
    let drill = if drill {
        "  routing:\n    destinationRules:\n      - host: helloworld.sample.svc.cluster.local\n        localityLb: { failoverPriority: [topology.kubernetes.io/region] }\n        outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m }\n  failoverTest:\n    service: { namespace: sample, name: helloworld, port: 5000, path: /hello }\n    from: cluster1\n    drain: cluster1\n    requests: 20\n"
    } else {
        ""
    };
    format!(
        "apiVersion: migrate.meshops.dev/v1alpha1
kind: MeshMigration
metadata: {{ name: journey }}
spec:
  mesh: {{ id: mesh1, trustDomain: cluster.local, istioVersion: \"1.30.3\" }}
  topology: {topology}
  installer: {{ kind: istioctl, path: @ISTIOCTL@ }}
  clusters:
{clusters}  trust:
    root: {{ adopt: cluster1 }}
    certDir: @CERTS@
  observability:
    prometheus: {{ federate: true }}
  workloads:
    restartNamespaces: [{restart}]
{drill}"
    )
}

/// Versions that answered a probe from `cluster`, errors excluded.
fn versions(counts: &BTreeMap<String, u32>) -> Vec<String> {
    counts
        .keys()
        .filter(|k| !k.starts_with("error: "))
        .cloned()
        .collect()
}

fn all_versions(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (1..=n).map(version_of).collect();
    v.sort();
    v
}

/// Apply, check the mesh after it, then roll back one phase at a time,
/// checking at each step that the mesh is what that phase leaves.
fn migrate_and_walk_back(n: usize, shape: Shape) {
    migrate_and_walk_back_with_root(n, shape, "{ adopt: cluster1 }");
}

fn migrate_and_walk_back_with_root(n: usize, shape: Shape, root: &str) {
    let world = world(n, shape == Shape::SameNetwork);
    // Before: one cluster, its own answers only.
    assert_eq!(versions(&probe(&world, "cluster1", 10)), ["v1"]);

    let text = spec(n, shape, "sample", true).replace("{ adopt: cluster1 }", root);
    let spec = world.write_spec("journey.yaml", &text);
    let spec = spec.to_string_lossy();
    let applied = world.migrate(&["apply", "-f", &spec]).expect_ok();
    let status = world.migrate(&["status", "-o", "json"]).expect_ok();
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    for step in status["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "done", "{step}");
    }
    // The drill passed: answers from cluster1 before the drain, from the
    // others after it.
    for table in ["baseline", "drain"] {
        let line = format!("probe failover/{table} from cluster1: 20 requests PASSED");
        assert!(
            applied.stderr.contains(&line),
            "{}",
            applied.describe(&format!("no {line:?}"))
        );
    }

    seeds_checks(&world, n, shape);

    // Locality load balancing keeps cluster1's calls at home while v1 is
    // healthy; with v1 gone every answer crosses to the other clusters.
    assert_eq!(versions(&probe(&world, "cluster1", 10)), ["v1"]);
    scale_v1(&world, 0);
    let others: Vec<String> = all_versions(n).into_iter().filter(|v| v != "v1").collect();
    let answers = probe(&world, "cluster1", 30);
    assert_eq!(versions(&answers), others, "{answers:?}");
    scale_v1(&world, 1);

    // Roll back one phase at a time; each time the mesh is what that phase
    // left: routing (phase4) makes cross-network calls possible and the
    // DestinationRule keeps them local; without it the same network still
    // reaches every cluster; without discovery (phase3) nothing crosses.
    let phase4_left = vec!["v1".to_string()];
    let phase2_left = if shape == Shape::SameNetwork {
        all_versions(n)
    } else {
        vec!["v1".to_string()]
    };
    for (to, want) in [
        ("phase5", phase4_left.clone()),
        ("phase4", phase4_left),
        ("phase3", phase2_left),
        ("phase2", vec!["v1".to_string()]),
        ("phase1", vec!["v1".to_string()]),
        ("phase0", vec!["v1".to_string()]),
    ] {
        world.migrate(&["rollback", "--to", to]).expect_ok();
        let answers = probe(&world, "cluster1", 30);
        assert_eq!(versions(&answers), want, "after --to {to}: {answers:?}");
    }
    world.assert_no_secrets_in_outputs();
    // Today's mesh again: cluster2 has no istiod, cluster1's runs as `Kubernetes`.
    let istiod = world.kubectl(
        "cluster2",
        &["get", "deployment", "-n", "istio-system", "istiod"],
    );
    assert!(!istiod.status.success(), "istiod still on cluster2");
    let istiod = kubectl_json(
        &world,
        "cluster1",
        &["get", "deployment", "-n", "istio-system", "istiod"],
    );
    let env = istiod["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let cluster_id = env
        .iter()
        .find(|e| e["name"] == "CLUSTER_ID")
        .map(|e| e["value"].clone());
    assert_eq!(cluster_id, Some("Kubernetes".into()));
}

/// Scales helloworld v1 in cluster1 and waits for the rollout.
fn scale_v1(world: &SimEnv, replicas: u32) {
    let r = format!("--replicas={replicas}");
    ok(
        &world.kubectl(
            "cluster1",
            &["scale", "-n", "sample", "deployment/helloworld-v1", &r],
        ),
        "kubectl scale",
    );
    ok(
        &world.kubectl(
            "cluster1",
            &[
                "rollout",
                "status",
                "-n",
                "sample",
                "deployment/helloworld-v1",
                "--timeout=60s",
            ],
        ),
        "kubectl rollout status",
    );
}

/// What the seeds' runbook checks by hand after a migration.
fn seeds_checks(world: &SimEnv, n: usize, shape: Shape) {
    let primaries: Vec<usize> = match shape {
        Shape::PrimaryRemote => vec![1],
        _ => (1..=n).collect(),
    };
    for &i in &primaries {
        let c = format!("cluster{i}");
        let secrets = kubectl_json(
            world,
            &c,
            &[
                "get",
                "secrets",
                "-n",
                "istio-system",
                "-l",
                "istio/multiCluster=true",
            ],
        );
        assert_eq!(
            secrets["items"].as_array().unwrap().len(),
            n - 1,
            "{c}: remote secrets"
        );
    }
    let mut issuers = Vec::new();
    for i in 1..=n {
        let c = format!("cluster{i}");
        let ns = kubectl_json(world, &c, &["get", "namespace", "istio-system"]);
        let want = if shape == Shape::SameNetwork {
            "network1".to_string()
        } else {
            format!("network{i}")
        };
        assert_eq!(
            ns["metadata"]["labels"]["topology.istio.io/network"],
            want.as_str(),
            "{c}"
        );
        if shape != Shape::SameNetwork {
            let gw = kubectl_json(
                world,
                &c,
                &[
                    "get",
                    "service",
                    "-n",
                    "istio-system",
                    "istio-eastwestgateway",
                ],
            );
            assert!(
                gw["status"]["loadBalancer"]["ingress"][0]["ip"].is_string()
                    || gw["status"]["loadBalancer"]["ingress"][0]["hostname"].is_string(),
                "{c}: east-west gateway without an address: {gw}"
            );
        }
        if primaries.contains(&i) {
            let cacerts = kubectl_json(
                world,
                &c,
                &["get", "secret", "-n", "istio-system", "cacerts"],
            );
            let root = cacerts["data"]["root-cert.pem"].as_str().unwrap();
            use base64::Engine;
            let pem = base64::engine::general_purpose::STANDARD
                .decode(root)
                .unwrap();
            let file = world.path(&format!("root-{c}.pem"));
            std::fs::write(&file, pem).unwrap();
            let out = std::process::Command::new("openssl")
                .args(["x509", "-noout", "-issuer", "-in"])
                .arg(&file)
                .output()
                .unwrap();
            ok(&out, "openssl x509 -issuer");
            issuers.push(text(&out.stdout));
        }
    }
    issuers.dedup();
    assert_eq!(issuers.len(), 1, "cacerts roots differ: {issuers:?}");
}

#[test]
fn two_clusters_multi_network() {
    migrate_and_walk_back(2, Shape::MultiNetwork);
}

/// A new root through the multi-root transition: old and new roots trusted
/// side by side, signers switched, then the old root dropped.
#[test]
fn two_clusters_with_a_generated_root() {
    migrate_and_walk_back_with_root(
        2,
        Shape::MultiNetwork,
        "{ generate: { org: Acme Platform, validityDays: 3650, transition: multi-root } }",
    );
}

#[test]
fn three_clusters_multi_network() {
    migrate_and_walk_back(3, Shape::MultiNetwork);
}

#[test]
fn two_clusters_same_network() {
    migrate_and_walk_back(2, Shape::SameNetwork);
}

#[test]
fn primary_remote() {
    migrate_and_walk_back(2, Shape::PrimaryRemote);
}

/// Skipping the workload restart leaves cluster1's pods with the old
/// clusterName and cluster2's without a sidecar: the drill must fail and say
/// why, and rollback must bring back today's mesh.
#[test]
fn skipping_the_workload_restart_fails_the_drill() {
    let world = world(2, false);
    let spec = world.write_spec("no-restart.yaml", &spec(2, Shape::MultiNetwork, "", true));
    let spec = spec.to_string_lossy();
    let run = world.migrate(&["apply", "-f", &spec]);
    assert_eq!(run.code, Some(1), "{}", run.describe("apply should fail"));
    let err = &run.stderr;
    assert!(err.contains("FAILED failover/baseline"), "{err}");
    assert!(
        err.contains("helloworld-v1") && err.contains("clusterName Kubernetes"),
        "the failure does not name the stale pods:\n{err}"
    );
    assert!(err.contains("restartNamespaces"), "no fix named:\n{err}");
    world.migrate(&["rollback", "--to", "phase0"]).expect_ok();
    assert_eq!(versions(&probe(&world, "cluster1", 10)), ["v1"]);
    world.assert_no_secrets_in_outputs();
}

/// A cluster whose CA chains to another root (someone plugged in their own
/// cacerts and restarted istiod and the workloads): the drill must fail and
/// say the clusters trust different roots, and rollback must recover.
#[test]
fn clusters_with_different_roots_fail_the_drill() {
    let world = world(2, false);
    let spec = world.write_spec(
        "journey.yaml",
        &spec(2, Shape::MultiNetwork, "sample", true),
    );
    let spec = spec.to_string_lossy();
    world.migrate(&["apply", "-f", &spec]).expect_ok();
    world.migrate(&["rollback", "--to", "phase5"]).expect_ok();

    // cluster2 gets an intermediate of a root nobody else knows.
    let now = time::OffsetDateTime::now_utc();
    let stranger = migrate::ca::Root::generate("Stranger", 365, now).unwrap();
    let intermediate = stranger
        .sign_intermediate("cluster2", "Stranger", 30, now)
        .unwrap();
    let cacerts = intermediate.cacerts(&stranger, &[stranger.cert_pem()]);
    let dir = world.path("stranger");
    cacerts.write_to(&dir).unwrap();
    let before = root_bundle(&world, "cluster2");
    let mut args = vec![
        "create".to_string(),
        "secret".into(),
        "generic".into(),
        "cacerts".into(),
        "-n".into(),
        "istio-system".into(),
        "--dry-run=client".into(),
        "-o".into(),
        "yaml".into(),
    ];
    for (name, _) in cacerts.files() {
        args.push(format!("--from-file={name}={}", dir.join(name).display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let manifest = world.kubectl("cluster2", &args);
    ok(&manifest, "kubectl create secret --dry-run");
    let file = world.path("stranger-cacerts.yaml");
    std::fs::write(&file, &manifest.stdout).unwrap();
    ok(
        &world.kubectl("cluster2", &["apply", "-f", &file.to_string_lossy()]),
        "kubectl apply cacerts",
    );
    ok(
        &world.kubectl(
            "cluster2",
            &[
                "rollout",
                "restart",
                "deployment/istiod",
                "-n",
                "istio-system",
            ],
        ),
        "restart istiod",
    );
    world.wait_for(
        "cluster2's istiod to distribute the stranger root",
        Duration::from_secs(30),
        || root_bundle(&world, "cluster2") != before,
    );
    ok(
        &world.kubectl(
            "cluster2",
            &["rollout", "restart", "deployment", "-n", "sample"],
        ),
        "restart workloads",
    );

    let run = world.migrate(&["apply", "-f", &spec, "--resume"]);
    assert_eq!(
        run.code,
        Some(1),
        "{}",
        run.describe("the drill should fail")
    );
    assert!(
        run.stderr.contains("FAILED failover/baseline"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("trust different roots") && run.stderr.contains("O=Stranger"),
        "the failure does not name the cause:\n{}",
        run.stderr
    );
    // The stranger cacerts is drift: put back over it.
    world
        .migrate(&["rollback", "--to", "phase0", "--force"])
        .expect_ok();
    assert_eq!(versions(&probe(&world, "cluster1", 10)), ["v1"]);
    world.assert_no_secrets_in_outputs();
}

fn root_bundle(world: &SimEnv, cluster: &str) -> String {
    let cm = kubectl_json(
        world,
        cluster,
        &["get", "configmap", "-n", "sample", "istio-ca-root-cert"],
    );
    cm["data"]["root-cert.pem"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `apply --dry-run` walks the whole plan with server-side dry runs and
/// leaves every cluster, the state directory and the cert dir untouched.
#[test]
fn a_dry_run_changes_nothing() {
    let world = world(2, false);
    // A dry run installs nothing: the Istio kinds it writes on cluster2 must
    // be served already, as where a platform team pre-installed Istio's CRDs.
    world
        .rt
        .block_on(meshsim::seed::register_istio_kinds(&world.sim, "cluster2"))
        .expect("Istio's kinds are registered on cluster2");
    let spec = world.write_spec(
        "journey.yaml",
        &spec(2, Shape::MultiNetwork, "sample", true),
    );
    let before = world.settled_dump();
    let run = world
        .migrate(&["apply", "-f", &spec.to_string_lossy(), "--dry-run"])
        .expect_ok();
    assert!(
        run.stdout.contains("dry run: run #1 succeeded"),
        "{}",
        run.stdout
    );
    world.settled_dump().assert_eq(&before, "after a dry run");
    assert!(
        !world.state_dir.exists(),
        "a dry run wrote a state directory"
    );
    assert!(!world.cert_dir.exists(), "a dry run wrote keys");
    world.assert_no_secrets_in_outputs();
}
