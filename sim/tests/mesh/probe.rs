//! The probe kubelet end to end: a mesh set up through the API as the Istio docs do it, a
//! probe Job created with kubectl, its log read with `kubectl logs job/...` (FACTS 8).

use crate::harness::*;
use meshsim::Sim;
use meshsim::mesh::probe::{ParsedAnswer, parse_log, probe_job};
use std::collections::BTreeSet;

const URL: &str = "http://helloworld.sample:5000/hello";

struct Mesh {
    /// Share one root through `cacerts` (and restart istiod); otherwise each cluster keeps its
    /// own self-signed root.
    shared_root: bool,
    /// Remote secrets `(of, into)`.
    links: &'static [(&'static str, &'static str)],
    /// cluster1's clusterName at install time (changed to `cluster1` later by the test).
    cluster1_name: &'static str,
}

const BOTH_WAYS: &[(&str, &str)] = &[("cluster2", "cluster1"), ("cluster1", "cluster2")];

/// Two primaries on two networks (docs: multi-primary multi-network), helloworld v1 in
/// cluster1 and v2 in cluster2, the Service in both.
async fn setup(sim: &Sim, mesh: &Mesh) {
    let roots = Roots::new("Istio");
    for (i, c) in ["cluster1", "cluster2"].into_iter().enumerate() {
        let net = format!("network{}", i + 1);
        network_namespace(sim, c, &net).await;
        let name = if c == "cluster1" {
            mesh.cluster1_name
        } else {
            c
        };
        install(sim.cluster(c).store(), &primary_iop(name, &net));
        install(sim.cluster(c).store(), &eastwest_iop(&net));
        istiod_running(sim, c).await;
        apply(
            sim,
            c,
            &["-n", "istio-system"],
            &sample("multicluster/expose-services.yaml"),
        )
        .await;
        if mesh.shared_root {
            create_cacerts(sim, c, &roots.cacerts(c)).await;
            rollout_restart(sim, c, "istio-system", "istiod").await;
            root_cert_becomes(sim, c, "default", &roots.root_pem()).await;
        }
        eastwest_address(sim, c).await;
    }
    for (of, into) in mesh.links {
        link(sim, of, into).await;
        let rows = clusterz(sim, into).await;
        assert_eq!(status_of(&rows, of).as_deref(), Some("synced"), "{rows:?}");
    }
    for (c, version) in [("cluster1", "v1"), ("cluster2", "v2")] {
        injection_namespace(sim, c, "sample").await;
        roll_out_helloworld(sim, c, version).await;
    }
}

/// `istio-system` created and labelled with its network before Istio is installed.
async fn network_namespace(sim: &Sim, cluster: &str, network: &str) {
    k(sim, cluster, &["create", "namespace", "istio-system"]).await;
    let label = format!("topology.istio.io/network={network}");
    k(
        sim,
        cluster,
        &["label", "namespace", "istio-system", &label],
    )
    .await;
}

/// The helloworld Service and the Deployment of `version` in `sample`, rolled out.
async fn roll_out_helloworld(sim: &Sim, cluster: &str, version: &str) {
    let helloworld = sample("helloworld/helloworld.yaml");
    let selector = format!("version={version}");
    for selector in ["service=helloworld", &selector] {
        apply(sim, cluster, &["-n", "sample", "-l", selector], &helloworld).await;
    }
    rollout_status(sim, cluster, "sample", &format!("helloworld-{version}")).await;
}

/// Runs a probe Job from `cluster` and returns its parsed log.
async fn probe(sim: &Sim, cluster: &str, name: &str, count: u32) -> Vec<ParsedAnswer> {
    let job = probe_job(name, "sample", URL, count, 5).to_string();
    apply(sim, cluster, &[], &job).await;
    k(
        sim,
        cluster,
        &[
            "wait",
            "--for=condition=complete",
            &format!("job/{name}"),
            "-n",
            "sample",
            "--timeout=30s",
        ],
    )
    .await;
    let log = k(
        sim,
        cluster,
        &["logs", &format!("job/{name}"), "-n", "sample"],
    )
    .await;
    let answers = parse_log(&log);
    assert_eq!(answers.len(), count as usize, "{log}");
    answers
}

fn versions(answers: &[ParsedAnswer]) -> BTreeSet<String> {
    answers.iter().filter_map(|a| a.version.clone()).collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_multi_network_mesh_answers_from_both_clusters() {
    let Some(_) = istio(
        "samples",
        "a_correct_multi_network_mesh_answers_from_both_clusters",
    ) else {
        return;
    };
    let sim = start_slow(2).await;
    setup(
        &sim,
        &Mesh {
            shared_root: true,
            links: BOTH_WAYS,
            cluster1_name: "cluster1",
        },
    )
    .await;
    for (c, name) in [("cluster1", "probe-a"), ("cluster2", "probe-b")] {
        let answers = probe(&sim, c, name, 10).await;
        assert!(answers.iter().all(|a| a.error.is_none()), "{answers:?}");
        assert_eq!(versions(&answers), set(&["v1", "v2"]), "from {c}");
        // Instances are real pod names of that version.
        let v2 = answers
            .iter()
            .find(|a| a.version.as_deref() == Some("v2"))
            .unwrap();
        assert!(
            v2.instance
                .as_deref()
                .unwrap()
                .starts_with("helloworld-v2-")
        );
    }
    // The probe pod was injected with its cluster's identity.
    assert_jsonpath(
        &sim,
        "cluster2",
        &["pods", "-n", "sample", "-l", "job-name=probe-b"],
        "{.items[0].spec.containers[1].env[0].value}",
        "cluster2",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_remote_secret_only_local_endpoints_answer() {
    let Some(_) = istio(
        "samples",
        "without_the_remote_secret_only_local_endpoints_answer",
    ) else {
        return;
    };
    let sim = start(2).await;
    // cluster2 reads cluster1, but cluster1 has no secret for cluster2.
    setup(
        &sim,
        &Mesh {
            shared_root: true,
            links: &[("cluster1", "cluster2")],
            cluster1_name: "cluster1",
        },
    )
    .await;
    let from1 = probe(&sim, "cluster1", "probe-1", 8).await;
    assert_eq!(versions(&from1), set(&["v1"]));
    assert!(from1.iter().all(|a| a.error.is_none()));
    let from2 = probe(&sim, "cluster2", "probe-2", 8).await;
    assert_eq!(versions(&from2), set(&["v1", "v2"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_roots_fail_the_tls_handshake() {
    let Some(_) = istio("samples", "different_roots_fail_the_tls_handshake") else {
        return;
    };
    let sim = start(2).await;
    setup(
        &sim,
        &Mesh {
            shared_root: false,
            links: BOTH_WAYS,
            cluster1_name: "cluster1",
        },
    )
    .await;
    let roots1 = root_cert_of(&sim, "cluster1", "sample").await.unwrap();
    let roots2 = root_cert_of(&sim, "cluster2", "sample").await.unwrap();
    assert_ne!(roots1, roots2);
    // Envoy's retries land on the local v1: only v1 answers.
    assert_eq!(
        versions(&probe(&sim, "cluster1", "probe-1", 6).await),
        set(&["v1"])
    );
    // With no local endpoint the handshake error reaches curl.
    k(
        &sim,
        "cluster1",
        &[
            "scale",
            "deployment/helloworld-v1",
            "-n",
            "sample",
            "--replicas=0",
        ],
    )
    .await;
    rollout_status(&sim, "cluster1", "sample", "helloworld-v1").await;
    let answers = probe(&sim, "cluster1", "probe-2", 3).await;
    for a in &answers {
        let e = a.error.as_deref().unwrap_or_default();
        assert!(e.contains("CERTIFICATE_VERIFY_FAILED"), "{a:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_not_restarted_after_a_cluster_name_change_lose_cross_cluster_traffic() {
    let Some(_) = istio(
        "samples",
        "pods_not_restarted_after_a_cluster_name_change_lose_cross_cluster_traffic",
    ) else {
        return;
    };
    let sim = start(2).await;
    // cluster1 installed without a clusterName ("Kubernetes"), its workloads injected so.
    setup(
        &sim,
        &Mesh {
            shared_root: true,
            links: BOTH_WAYS,
            cluster1_name: "",
        },
    )
    .await;
    // The install phase sets clusterName and istiod restarts; the workloads are not restarted.
    let store = sim.cluster("cluster1").store();
    install(store, &primary_iop("cluster1", "network1"));
    istiod_with_cluster_id(store, "cluster1").await;
    // From cluster2 the stale v1 pod fails and retries land on v2.
    assert_eq!(
        versions(&probe(&sim, "cluster2", "probe-1", 6).await),
        set(&["v2"])
    );
    rollout_restart(&sim, "cluster1", "sample", "helloworld-v1").await;
    assert_eq!(
        versions(&probe(&sim, "cluster2", "probe-2", 6).await),
        set(&["v1", "v2"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_is_not_the_probe_fails_with_a_clear_message() {
    let sim = start(1).await;
    let job = r#"{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "other"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}"#;
    apply(&sim, "cluster1", &["-n", "default"], job).await;
    k(
        &sim,
        "cluster1",
        &[
            "wait",
            "--for=condition=failed",
            "job/other",
            "-n",
            "default",
            "--timeout=30s",
        ],
    )
    .await;
    let message = jsonpath(
        &sim,
        "cluster1",
        &["pods", "-n", "default", "-l", "job-name=other"],
        "{.items[0].status.message}",
    )
    .await;
    assert!(message.contains("runs only the probe program"), "{message}");
    assert!(
        message.contains("\"busybox\" is not curlimages/curl"),
        "{message}"
    );
    assert_jsonpath(
        &sim,
        "cluster1",
        &["pods", "-n", "default", "-l", "job-name=other"],
        "{.items[0].status.phase}",
        "Failed",
    )
    .await;
}

/// Docs: primary-remote on different networks (FACTS 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_remote_answers_from_both_and_the_primary_serves_the_remote() {
    let Some(_) = istio(
        "samples",
        "primary_remote_answers_from_both_and_the_primary_serves_the_remote",
    ) else {
        return;
    };
    let sim = start(2).await;
    network_namespace(&sim, "cluster1", "network1").await;
    let primary = format!(
        "{}      externalIstiod: true\n",
        primary_iop("cluster1", "network1")
    );
    install(sim.cluster("cluster1").store(), &primary);
    install(sim.cluster("cluster1").store(), &eastwest_iop("network1"));
    istiod_running(&sim, "cluster1").await;
    apply(
        &sim,
        "cluster1",
        &["-n", "istio-system"],
        &sample("multicluster/expose-istiod.yaml"),
    )
    .await;
    apply(
        &sim,
        "cluster1",
        &["-n", "istio-system"],
        &sample("multicluster/expose-services.yaml"),
    )
    .await;
    let address = eastwest_address(&sim, "cluster1").await;

    network_namespace(&sim, "cluster2", "network2").await;
    let remote = format!(
        "apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  profile: remote
  values:
    istiodRemote:
      injectionPath: /inject/cluster/cluster2/net/network2
    global:
      remotePilotAddress: {address}
"
    );
    install(sim.cluster("cluster2").store(), &remote);
    install(sim.cluster("cluster2").store(), &eastwest_iop("network2"));
    link(&sim, "cluster2", "cluster1").await;

    // Without controlPlaneClusters the primary does not lead the remote: no root cert there.
    k(&sim, "cluster2", &["create", "namespace", "sample"]).await;
    let primary_root = root_cert_of(&sim, "cluster1", "default").await.unwrap();
    k(&sim, "cluster1", &["create", "namespace", "sync-point"]).await;
    root_cert_becomes(&sim, "cluster1", "sync-point", &primary_root).await;
    assert_eq!(root_cert_of(&sim, "cluster2", "sample").await, None);
    k(
        &sim,
        "cluster2",
        &[
            "annotate",
            "namespace",
            "istio-system",
            "topology.istio.io/controlPlaneClusters=cluster1",
        ],
    )
    .await;
    root_cert_becomes(&sim, "cluster2", "sample", &primary_root).await;

    injection_namespace(&sim, "cluster1", "sample").await;
    k(
        &sim,
        "cluster2",
        &["label", "namespace", "sample", "istio-injection=enabled"],
    )
    .await;
    for (c, version) in [("cluster1", "v1"), ("cluster2", "v2")] {
        roll_out_helloworld(&sim, c, version).await;
    }
    // Remote pods carry the injection path's identity and network.
    let labels = k(&sim, "cluster2", &["get", "pods", "-n", "sample", "-l", "version=v2", "-o",
        "jsonpath={.items[0].metadata.labels.topology\\.istio\\.io/network} {.items[0].spec.containers[1].env[0].value}"]).await;
    assert_eq!(labels, "network2 cluster2");
    for (c, name) in [("cluster2", "probe-r"), ("cluster1", "probe-p")] {
        let answers = probe(&sim, c, name, 8).await;
        assert_eq!(
            versions(&answers),
            set(&["v1", "v2"]),
            "from {c}: {answers:?}"
        );
    }
}
