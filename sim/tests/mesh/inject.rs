//! Sidecar injection at pod creation (FACTS 4.1, 9 items 7-9).

use crate::harness::*;
use serde_json::Value;

/// `ISTIO_META_*` env of the `istio-proxy` container of each pod matching `selector`.
async fn proxy_env(
    sim: &meshsim::Sim,
    cluster: &str,
    ns: &str,
    selector: &str,
) -> Vec<Option<Value>> {
    let out = k(
        sim,
        cluster,
        &["get", "pods", "-n", ns, "-l", selector, "-o", "json"],
    )
    .await;
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "istio-proxy")
                .map(|c| c["env"].clone())
        })
        .collect()
}

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 2
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: example/app:1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_keep_the_cluster_name_of_their_injection_until_restarted() {
    let sim = start(1).await;
    let store = sim.cluster("cluster1").store();
    install(store, &primary_iop("old-name", "network1"));
    istiod_running(&sim, "cluster1").await;
    injection_namespace(&sim, "cluster1", "sample").await;
    apply(&sim, "cluster1", &["-n", "sample"], DEPLOY).await;
    rollout_status(&sim, "cluster1", "sample", "app").await;
    let envs = proxy_env(&sim, "cluster1", "sample", "app=app").await;
    assert_eq!(envs.len(), 2);
    for env in &envs {
        let env = env.as_ref().expect("injected");
        assert_eq!(
            env_value(env, "ISTIO_META_CLUSTER_ID").as_deref(),
            Some("old-name")
        );
        assert_eq!(
            env_value(env, "ISTIO_META_NETWORK").as_deref(),
            Some("network1")
        );
        assert_eq!(
            env_value(env, "ISTIO_META_MESH_ID").as_deref(),
            Some("mesh1")
        );
    }
    let status = jsonpath(
        &sim,
        "cluster1",
        &["pods", "-n", "sample", "-l", "app=app"],
        "{.items[0].metadata.annotations.sidecar\\.istio\\.io/status}",
    )
    .await;
    assert!(status.contains("istio-proxy"), "{status}");

    // Re-install with another clusterName: istiod restarts with it, old pods keep theirs.
    install(store, &primary_iop("new-name", ""));
    istiod_with_cluster_id(store, "new-name").await;
    for env in proxy_env(&sim, "cluster1", "sample", "app=app").await {
        assert_eq!(
            env_value(env.as_ref().unwrap(), "ISTIO_META_CLUSTER_ID").as_deref(),
            Some("old-name")
        );
    }
    rollout_restart(&sim, "cluster1", "sample", "app").await;
    let envs = proxy_env(&sim, "cluster1", "sample", "app=app").await;
    assert_eq!(envs.len(), 2);
    for env in envs {
        let env = env.unwrap();
        assert_eq!(
            env_value(&env, "ISTIO_META_CLUSTER_ID").as_deref(),
            Some("new-name")
        );
        // An empty network is not set at all.
        assert_eq!(env_value(&env, "ISTIO_META_NETWORK"), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_follows_labels_and_needs_an_istiod() {
    let sim = start_slow(1).await;
    let pod = |name: &str, label: Option<&str>| {
        let labels = match label {
            Some(v) => format!("\n  labels: {{sidecar.istio.io/inject: \"{v}\"}}"),
            None => String::new(),
        };
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}{labels}\nspec:\n  containers:\n  - name: c\n    image: example/app:1\n"
        )
    };
    let injected = |name: &'static str, ns: &'static str| {
        let sim = &sim;
        async move {
            let out = jsonpath(
                sim,
                "cluster1",
                &["pod", name, "-n", ns],
                "{.spec.containers[*].name}",
            )
            .await;
            out.split_whitespace().any(|c| c == "istio-proxy")
        }
    };
    injection_namespace(&sim, "cluster1", "on").await;
    k(&sim, "cluster1", &["create", "namespace", "off"]).await;
    // No Istio yet: nothing injected.
    apply(&sim, "cluster1", &["-n", "on"], &pod("before", None)).await;
    assert!(!injected("before", "on").await);

    install(
        sim.cluster("cluster1").store(),
        &primary_iop("cluster1", "network1"),
    );
    istiod_running(&sim, "cluster1").await;
    apply(&sim, "cluster1", &["-n", "on"], &pod("plain", None)).await;
    apply(
        &sim,
        "cluster1",
        &["-n", "on"],
        &pod("opted-out", Some("false")),
    )
    .await;
    apply(&sim, "cluster1", &["-n", "off"], &pod("unlabelled", None)).await;
    apply(
        &sim,
        "cluster1",
        &["-n", "off"],
        &pod("opted-in", Some("true")),
    )
    .await;
    assert!(injected("plain", "on").await);
    assert!(!injected("opted-out", "on").await);
    assert!(!injected("unlabelled", "off").await);
    assert!(injected("opted-in", "off").await);
    assert!(!injected("before", "on").await);
    // The proxy remembers the root it trusts: the one istiod distributes.
    let pod_roots = jsonpath(
        &sim,
        "cluster1",
        &["pod", "plain", "-n", "on"],
        "{.metadata.annotations.meshsim\\.dev/proxy-trusted-roots}",
    )
    .await;
    let istiod = istiod_running(&sim, "cluster1").await;
    let istiod_roots = jsonpath(
        &sim,
        "cluster1",
        &["pod", &istiod, "-n", "istio-system"],
        "{.metadata.annotations.meshsim\\.dev/trusted-roots}",
    )
    .await;
    assert_eq!(pod_roots, istiod_roots);
    assert_eq!(pod_roots.len(), 64);
}
