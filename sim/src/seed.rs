//! The starting point of a migration: one cluster running Istio the way a
//! user's cluster usually does (default profile, no clusterName so
//! CLUSTER_ID `Kubernetes`, no meshID or network, istiod's self-signed CA),
//! with the docs' sample apps in `sample` and a Prometheus in istio-system.
//!
//! [`seed_mesh`] starts from the mesh you ask for ([`SourceMesh`]): installed
//! by istioctl or Helm, at a revision, at an Istio version, or with the
//! ambient data plane; [`seed_source_mesh`] is today's default.
//!
//! Everything goes through the API server over HTTPS: Istio through the
//! istioctl or Helm stand-in's install path, the rest by server-side apply,
//! and the waits on watch events with a deadline.

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
    #[error("seeding {cluster} with Helm: {source}")]
    Helm {
        cluster: String,
        #[source]
        source: crate::helm::HelmError,
    },
    #[error("{0:?} is not an Istio version (expected X.Y.Z)")]
    BadIstioVersion(String),
    #[error("{0:?} is not a revision name (lower-case letters, digits and '-')")]
    BadRevision(String),
}

/// Which installer put Istio in the source cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Installer {
    /// `istioctl install` (the operator's labels, ConfigMap `values`).
    #[default]
    Istioctl,
    /// Helm releases `istio-base`, `istiod` and `istio-ingressgateway` of Istio's charts.
    Helm,
}

/// The mesh [`seed_mesh`] installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMesh {
    pub installer: Installer,
    /// The control plane's revision (`1-26-4`); empty for the default revision.
    pub revision: String,
    /// The Istio release (`1.26.4`), as image tags, labels and chart versions show it.
    pub istio_version: String,
    /// The ambient data plane: ztunnel in istio-system, the sample namespace labelled
    /// `istio.io/dataplane-mode=ambient` and no sidecars.
    pub ambient: bool,
}

impl Default for SourceMesh {
    fn default() -> Self {
        SourceMesh {
            installer: Installer::default(),
            revision: String::new(),
            istio_version: crate::istio::install::VERSION.to_string(),
            ambient: false,
        }
    }
}

impl SourceMesh {
    /// Refuses a version or revision Istio would not accept.
    pub fn check(&self) -> Result<(), SeedError> {
        let parts: Vec<&str> = self.istio_version.split('.').collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(SeedError::BadIstioVersion(self.istio_version.clone()));
        }
        let r = &self.revision;
        if !r.is_empty()
            && (r.len() > 63
                || r.starts_with('-')
                || r.ends_with('-')
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(SeedError::BadRevision(r.clone()));
        }
        Ok(())
    }

    /// The labels of the sample namespace: how its pods join this mesh.
    pub fn sample_namespace_labels(&self) -> Value {
        if self.ambient {
            json!({"istio.io/dataplane-mode": "ambient"})
        } else if self.revision.is_empty() {
            json!({"istio-injection": "enabled"})
        } else {
            json!({"istio.io/rev": self.revision})
        }
    }
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
    seed_mesh(sim, cluster, &SourceMesh::default()).await
}

/// Installs the mesh `mesh` describes on `cluster` and deploys helloworld v1,
/// curl and Prometheus; returns once all are available.
pub async fn seed_mesh(sim: &Sim, cluster: &str, mesh: &SourceMesh) -> Result<(), SeedError> {
    mesh.check()?;
    let wrap = |source| SeedError::Cluster {
        cluster: cluster.to_string(),
        source,
    };
    let mut api = api_for(sim, cluster).await?;
    match mesh.installer {
        Installer::Istioctl => {
            let mut spec = json!({"profile": "default"});
            if !mesh.revision.is_empty() {
                spec["revision"] = json!(mesh.revision);
            }
            if mesh.ambient {
                spec["values"] = json!({"pilot": {"env": {"PILOT_ENABLE_AMBIENT": "true"}}});
            }
            let iop = json!({"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator", "spec": spec});
            let mut output = Vec::new();
            crate::istioctl::install::install_version(
                api.client(),
                &iop,
                &mesh.istio_version,
                READY_TIMEOUT,
                &mut output,
            )
            .await
            .map_err(wrap)?;
            tracing::debug!(
                cluster,
                "istioctl install: {}",
                String::from_utf8_lossy(&output)
            );
        }
        Installer::Helm => helm_install(&api, cluster, mesh).await?,
    }
    let mut deployments = Vec::new();
    if mesh.ambient {
        apply(&mut api, &ztunnel(mesh), &mut deployments)
            .await
            .map_err(wrap)?;
    }
    for obj in prometheus_objects() {
        apply(&mut api, &obj, &mut deployments)
            .await
            .map_err(wrap)?;
    }
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": SAMPLE_NAMESPACE, "labels": mesh.sample_namespace_labels()}});
    for obj in std::iter::once(namespace)
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

/// Labels `sample` on `cluster` for injection by control-plane revision
/// `revision` (`istio.io/rev`, instead of `istio-injection`), as a cluster
/// joining a revisioned mesh must be.
pub async fn use_revision(sim: &Sim, cluster: &str, revision: &str) -> Result<(), SeedError> {
    let mut api = api_for(sim, cluster).await?;
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": SAMPLE_NAMESPACE, "labels": {"istio.io/rev": revision}}});
    // The same field manager as `deploy_helloworld`: its injection label goes.
    api.apply_as(&namespace, FIELD_MANAGER)
        .await
        .map(|_| ())
        .map_err(|source| SeedError::Cluster {
            cluster: cluster.to_string(),
            source,
        })
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

/// Istio's Helm install (the docs' order): `istio-base` (base), `istiod` (istiod) and
/// `istio-ingressgateway` (gateway) in istio-system, each `upgrade --install --wait`.
async fn helm_install(api: &KubeApi, cluster: &str, mesh: &SourceMesh) -> Result<(), SeedError> {
    let wrap = |source| SeedError::Helm {
        cluster: cluster.to_string(),
        source,
    };
    let mut helm = crate::helm::Helm::new(
        KubeApi::new(api.client().clone()),
        crate::istio::install::ISTIO_NAMESPACE,
    );
    let mut istiod_values = json!({});
    if !mesh.revision.is_empty() {
        istiod_values["revision"] = json!(mesh.revision);
    }
    if mesh.ambient {
        istiod_values["pilot"] = json!({"env": {"PILOT_ENABLE_AMBIENT": "true"}});
    }
    let mut gateway_values = json!({"labels": {"istio": "ingressgateway"}});
    if !mesh.revision.is_empty() {
        gateway_values["revision"] = json!(mesh.revision);
    }
    let releases = [
        ("istio-base", "istio/base", json!({})),
        ("istiod", "istio/istiod", istiod_values),
        ("istio-ingressgateway", "istio/gateway", gateway_values),
    ];
    for (release, chart, values) in releases {
        let args = crate::helm::UpgradeArgs {
            release: release.into(),
            chart: chart.into(),
            install: true,
            fresh: false,
            create_namespace: true,
            values_files: Vec::new(),
            sets: Vec::new(),
            version: Some(mesh.istio_version.clone()),
            wait: true,
            timeout: READY_TIMEOUT,
        };
        helm.upgrade(&args, values).await.map_err(wrap)?;
    }
    Ok(())
}

/// The ztunnel DaemonSet of an ambient mesh, labelled as its installer labels it.
pub fn ztunnel(mesh: &SourceMesh) -> Value {
    let ns = crate::istio::install::ISTIO_NAMESPACE;
    let mut labels = json!({"app": "ztunnel", "app.kubernetes.io/name": "ztunnel",
        "istio.io/rev": crate::istio::install::rev_label(&mesh.revision)});
    let mut annotations = json!({});
    match mesh.installer {
        Installer::Istioctl => {
            labels[crate::istio::install::COMPONENT_LABEL] = json!("Ztunnel");
            labels[crate::istio::install::MANAGED_LABEL] = json!("Reconcile");
            labels[crate::istio::install::OWNER_LABEL] =
                json!(crate::istio::install::UNNAMED_OWNER);
        }
        Installer::Helm => {
            labels[crate::helm::chart::MANAGED_BY] = json!("Helm");
            annotations[crate::helm::chart::RELEASE_NAME_ANNOTATION] = json!("ztunnel");
            annotations[crate::helm::chart::RELEASE_NAMESPACE_ANNOTATION] = json!(ns);
        }
    }
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
    "metadata": {"name": "ztunnel", "namespace": ns, "labels": labels, "annotations": annotations},
    "spec": {
        "selector": {"matchLabels": {"app": "ztunnel"}},
        "template": {
            "metadata": {"labels": {"app": "ztunnel", "sidecar.istio.io/inject": "false"}},
            "spec": {"containers": [{"name": "istio-proxy",
                "image": format!("docker.io/istio/ztunnel:{}", mesh.istio_version)}]},
        },
    }})
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
