//! The migration's starting point: one cluster with Istio as users run it
//! (CLUSTER_ID Kubernetes, no network), the sample apps and Prometheus, and
//! Nodes that carry their cluster's locality.

use crate::harness::*;
use meshsim::SimConfig;
use meshsim::mesh::Locality;
use meshsim::seed::{SeedError, deploy_helloworld, seed_source_mesh};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_mesh_as_a_user_runs_it() {
    let sim = start(2).await;
    seed_source_mesh(&sim, "cluster1").await.expect("seed");

    let d = istiod_deployment(&sim, "cluster1").await;
    assert_eq!(d["status"]["availableReplicas"], 1, "{d}");
    assert_eq!(cluster_id_of(&d).as_deref(), Some("Kubernetes"));
    let values = injector_values(&sim, "cluster1").await;
    assert_eq!(values["global"]["network"], "");
    assert_eq!(values["global"]["meshID"], "");
    // No plugged-in CA: istiod signs with its own (the istiod controller creates istio-ca-secret).
    absent(
        &sim,
        "cluster1",
        &["secret", "cacerts", "-n", "istio-system"],
    )
    .await;
    let ns_labels = jsonpath(
        &sim,
        "cluster1",
        &["ns", "istio-system"],
        "{.metadata.labels}",
    )
    .await;
    assert!(
        !ns_labels.contains("topology.istio.io/network"),
        "{ns_labels}"
    );

    assert_jsonpaths(
        &sim,
        "cluster1",
        &[
            (
                &["ns", "sample"],
                "{.metadata.labels.istio-injection}",
                "enabled",
            ),
            (
                &["deploy", "helloworld-v1", "-n", "sample"],
                "{.status.availableReplicas}",
                "1",
            ),
            (
                &["deploy", "curl", "-n", "sample"],
                "{.status.availableReplicas}",
                "1",
            ),
            (
                &["svc", "helloworld", "-n", "sample"],
                "{.spec.ports[0].port}",
                "5000",
            ),
            (
                &["deploy", "helloworld-v1", "-n", "sample"],
                "{.spec.template.spec.containers[0].image}",
                "docker.io/istio/examples-helloworld-v1:1.0",
            ),
            (
                &["deploy", "curl", "-n", "sample"],
                "{.spec.template.spec.serviceAccountName}",
                "curl",
            ),
            (
                &["pods", "-n", "sample", "-l", "app=helloworld,version=v1"],
                "{.items[*].spec.nodeName}",
                "cluster1-control-plane",
            ),
        ],
    )
    .await;

    let config = jsonpath(
        &sim,
        "cluster1",
        &["cm", "prometheus", "-n", "istio-system"],
        "{.data.prometheus\\.yml}",
    )
    .await;
    let parsed: serde_yaml::Value = serde_yaml::from_str(&config).expect("prometheus.yml is YAML");
    assert!(
        parsed["scrape_configs"]
            .as_sequence()
            .is_some_and(|s| !s.is_empty()),
        "{config}"
    );
    assert_jsonpaths(
        &sim,
        "cluster1",
        &[(
            &["svc", "prometheus", "-n", "istio-system"],
            "{.spec.type} {.spec.ports[0].port}",
            "LoadBalancer 9090",
        )],
    )
    .await;

    // Nothing went to the other cluster.
    absent(&sim, "cluster2", &["ns", "sample"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helloworld_in_another_version_and_bad_versions() {
    let sim = start(2).await;
    deploy_helloworld(&sim, "cluster2", "v2")
        .await
        .expect("deploy v2");
    assert_jsonpaths(
        &sim,
        "cluster2",
        &[
            (
                &["deploy", "helloworld-v2", "-n", "sample"],
                "{.status.availableReplicas} {.spec.template.metadata.labels.version}",
                "1 v2",
            ),
            (
                &["ns", "sample"],
                "{.metadata.labels.istio-injection}",
                "enabled",
            ),
        ],
    )
    .await;
    assert!(matches!(
        deploy_helloworld(&sim, "cluster2", "2").await,
        Err(SeedError::BadVersion { .. })
    ));
    assert!(matches!(
        deploy_helloworld(&sim, "cluster9", "v1").await,
        Err(SeedError::NoCluster(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_carry_the_configured_locality() {
    let sim = start_with(SimConfig {
        clusters: 3,
        ready_delay: Duration::ZERO,
        localities: vec![Locality::new("eu-west", "eu-west-1a", "rack7")],
        ..Default::default()
    })
    .await;
    let labels = |cluster: &'static str| {
        let sim = &sim;
        async move {
            jsonpath(
                sim,
                cluster,
                &["nodes"],
                "{.items[*].metadata.labels.topology\\.kubernetes\\.io/region}/{.items[*].metadata.labels.topology\\.kubernetes\\.io/zone}/{.items[*].metadata.labels.topology\\.istio\\.io/subzone}",
            )
            .await
        }
    };
    assert_eq!(labels("cluster1").await, "eu-west/eu-west-1a/rack7");
    assert_eq!(labels("cluster2").await, "region2/zone2/");
    assert_eq!(labels("cluster3").await, "region3/zone3/");
    let default = start(2).await;
    let node = jsonpath(
        &default,
        "cluster1",
        &["nodes"],
        "{.items[*].metadata.labels.topology\\.kubernetes\\.io/region}",
    )
    .await;
    assert_eq!(node, "region1");
}
