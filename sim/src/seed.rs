//! The starting point of a migration: one cluster running Istio the way a
//! user's cluster usually does (default profile, no clusterName so
//! CLUSTER_ID `Kubernetes`, no meshID or network, istiod's self-signed CA),
//! with the docs' sample apps in `sample` and a Prometheus in istio-system.
//!
//! Everything goes through the API server over HTTPS: Istio through the
//! istioctl stand-in's install path, the rest by server-side apply, and the
//! waits on watch events with a deadline.

use crate::Sim;
use crate::istioctl::kube_api::KubeApi;
use crate::istioctl::{Global, IstioctlError};
use serde_json::{Value, json};
use std::time::Duration;

/// The namespace of the sample apps (labelled for injection).
pub const SAMPLE_NAMESPACE: &str = "sample";
/// How long a seeded Deployment may take to become available.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
const FIELD_MANAGER: &str = "kubectl";

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("meshsim has no cluster named {0:?}")]
    NoCluster(String),
    #[error("{version:?} is not a helloworld version (expected v1, v2, ...)")]
    BadVersion { version: String },
    #[error("seeding {cluster}: {source}")]
    Cluster {
        cluster: String,
        #[source]
        source: IstioctlError,
    },
}

async fn api_for(sim: &Sim, cluster: &str) -> Result<KubeApi, SeedError> {
    let handle = sim
        .get(cluster)
        .ok_or_else(|| SeedError::NoCluster(cluster.to_string()))?;
    let global = Global {
        kubeconfig: Some(sim.kubeconfig_path().to_path_buf()),
        context: Some(handle.context()),
        ..Default::default()
    };
    let client = crate::istioctl::connect(&global)
        .await
        .map_err(|source| SeedError::Cluster {
            cluster: cluster.into(),
            source,
        })?;
    Ok(KubeApi::new(client))
}

/// Installs Istio on `cluster` as a user's single-cluster mesh and deploys
/// helloworld v1, curl and Prometheus; returns once all are available.
pub async fn seed_source_mesh(sim: &Sim, cluster: &str) -> Result<(), SeedError> {
    let wrap = |source| SeedError::Cluster {
        cluster: cluster.to_string(),
        source,
    };
    let mut api = api_for(sim, cluster).await?;
    let iop = json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "spec": {"profile": "default"},
    });
    let mut output = Vec::new();
    crate::istioctl::install::install(api.client(), &iop, READY_TIMEOUT, &mut output)
        .await
        .map_err(wrap)?;
    tracing::debug!(
        cluster,
        "istioctl install: {}",
        String::from_utf8_lossy(&output)
    );
    let mut deployments = Vec::new();
    for obj in prometheus_objects() {
        apply(&mut api, &obj, &mut deployments)
            .await
            .map_err(wrap)?;
    }
    for obj in sample_namespace()
        .into_iter()
        .chain(helloworld_objects("v1"))
        .chain(curl_objects())
    {
        apply(&mut api, &obj, &mut deployments)
            .await
            .map_err(wrap)?;
    }
    wait_all(&mut api, &deployments).await.map_err(wrap)
}

/// Deploys helloworld `version` (`v1`, `v2`, ...) into `sample` on
/// `cluster`: the namespace labelled for injection, the Service and
/// Deployment `helloworld-<version>`; returns once it is available.
pub async fn deploy_helloworld(sim: &Sim, cluster: &str, version: &str) -> Result<(), SeedError> {
    let valid = version
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !valid {
        return Err(SeedError::BadVersion {
            version: version.to_string(),
        });
    }
    let wrap = |source| SeedError::Cluster {
        cluster: cluster.to_string(),
        source,
    };
    let mut api = api_for(sim, cluster).await?;
    let mut deployments = Vec::new();
    for obj in sample_namespace()
        .into_iter()
        .chain(helloworld_objects(version))
    {
        apply(&mut api, &obj, &mut deployments)
            .await
            .map_err(wrap)?;
    }
    wait_all(&mut api, &deployments).await.map_err(wrap)
}

/// The Prometheus ConfigMap and LoadBalancer Service (port 9090) the
/// observability phase edits and federates, in `istio-system` of `cluster`.
pub async fn deploy_prometheus(sim: &Sim, cluster: &str) -> Result<(), SeedError> {
    let wrap = |source| SeedError::Cluster {
        cluster: cluster.to_string(),
        source,
    };
    let mut api = api_for(sim, cluster).await?;
    let mut deployments = Vec::new();
    for obj in prometheus_objects() {
        apply(&mut api, &obj, &mut deployments)
            .await
            .map_err(wrap)?;
    }
    wait_all(&mut api, &deployments).await.map_err(wrap)
}

/// Registers Istio's kinds on `cluster` without installing Istio: the base
/// component's CustomResourceDefinitions alone, as a platform team that
/// pre-installs Istio's CRDs leaves a cluster. A dry run of a migration
/// needs them on a cluster that runs no mesh yet, since it installs nothing.
pub async fn register_istio_kinds(sim: &Sim, cluster: &str) -> Result<(), SeedError> {
    let mut api = api_for(sim, cluster).await?;
    for crd in crate::istio::crds::crds() {
        api.create_if_absent(&crd)
            .await
            .map_err(|source| SeedError::Cluster {
                cluster: cluster.to_string(),
                source,
            })?;
    }
    Ok(())
}

async fn apply(
    api: &mut KubeApi,
    obj: &Value,
    deployments: &mut Vec<(String, String)>,
) -> Result<(), IstioctlError> {
    if obj["kind"] == "Namespace" && obj["metadata"].get("labels").is_none() {
        // Only make sure it exists: its labels belong to whoever set them.
        api.create_if_absent(obj).await?;
    } else {
        api.apply_as(obj, FIELD_MANAGER).await?;
    }
    if obj["kind"] == "Deployment" {
        let meta = &obj["metadata"];
        deployments.push((
            meta["namespace"].as_str().unwrap_or_default().to_string(),
            meta["name"].as_str().unwrap_or_default().to_string(),
        ));
    }
    Ok(())
}

async fn wait_all(
    api: &mut KubeApi,
    deployments: &[(String, String)],
) -> Result<(), IstioctlError> {
    for (ns, name) in deployments {
        api.wait_deployment(ns, name, READY_TIMEOUT).await?;
    }
    Ok(())
}

fn sample_namespace() -> Vec<Value> {
    vec![json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": SAMPLE_NAMESPACE, "labels": {"istio-injection": "enabled"}}})]
}

/// helloworld as the Istio sample shapes it: a Service for every version
/// (`app: helloworld`, port 5000 `http`) and one Deployment per version.
pub fn helloworld_objects(version: &str) -> Vec<Value> {
    let labels = json!({"app": "helloworld", "version": version});
    vec![
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "helloworld", "namespace": SAMPLE_NAMESPACE,
                         "labels": {"app": "helloworld", "service": "helloworld"}},
            "spec": {"selector": {"app": "helloworld"},
                     "ports": [{"name": "http", "port": 5000, "targetPort": 5000, "protocol": "TCP"}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("helloworld-{version}"), "namespace": SAMPLE_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "helloworld",
                    "image": format!("docker.io/istio/examples-helloworld-{version}:1.0"),
                    "imagePullPolicy": "IfNotPresent",
                    "resources": {"requests": {"cpu": "100m"}},
                    "ports": [{"containerPort": 5000, "protocol": "TCP"}],
                }]},
            },
        }}),
    ]
}

/// The docs' client: ServiceAccount, Service (port 80) and Deployment `curl`
/// whose container idles until someone execs curl in it.
pub fn curl_objects() -> Vec<Value> {
    let labels = json!({"app": "curl"});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "curl", "namespace": SAMPLE_NAMESPACE}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "curl", "namespace": SAMPLE_NAMESPACE, "labels": {"app": "curl", "service": "curl"}},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "curl", "namespace": SAMPLE_NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "curl",
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{
                        "name": "curl",
                        "image": "curlimages/curl",
                        "command": ["/bin/sleep", "infinity"],
                        "imagePullPolicy": "IfNotPresent",
                    }],
                },
            },
        }}),
    ]
}

/// A minimal Prometheus configuration: itself, and pods that ask to be scraped.
pub const PROMETHEUS_CONFIG: &str = "\
global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['localhost:9090']
  - job_name: kubernetes-pods
    kubernetes_sd_configs:
      - role: pod
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        action: keep
        regex: 'true'
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
";

/// ConfigMap `prometheus` (key `prometheus.yml`), Deployment and
/// LoadBalancer Service `prometheus` (9090) in istio-system.
pub fn prometheus_objects() -> Vec<Value> {
    let ns = crate::istio::install::ISTIO_NAMESPACE;
    let labels = json!({"app": "prometheus"});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "prometheus", "namespace": ns, "labels": labels},
            "data": {"prometheus.yml": PROMETHEUS_CONFIG}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "prometheus", "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {"sidecar.istio.io/inject": "false"}},
                "spec": {
                    "containers": [{
                        "name": "prometheus-server",
                        "image": "prom/prometheus:v3.5.0",
                        "args": ["--config.file=/etc/config/prometheus.yml", "--storage.tsdb.path=/data"],
                        "ports": [{"containerPort": 9090, "protocol": "TCP"}],
                        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/config"}],
                    }],
                    "volumes": [{"name": "config-volume", "configMap": {"name": "prometheus"}}],
                },
            },
        }}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "prometheus", "namespace": ns, "labels": labels},
            "spec": {"type": "LoadBalancer", "selector": labels,
                     "ports": [{"name": "http", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]}}),
    ]
}
