//! meshsim: simulated Kubernetes clusters that the real kubectl and kube-rs
//! accept, served over real HTTPS.
//!
//! ```no_run
//! # async fn demo() -> Result<(), meshsim::SimError> {
//! use meshsim::{Sim, SimConfig};
//! let sim = Sim::start(SimConfig { clusters: 2, ..Default::default() }).await?;
//! // kubectl --kubeconfig <path> --context sim-cluster1 get ns
//! println!("{}", sim.kubeconfig_path().display());
//! let c2 = sim.cluster("cluster2");
//! c2.faults().set(meshsim::FaultConfig { error_rate: 0.1, ..Default::default() });
//! # Ok(()) }
//! ```
//!
//! # The store API (in process)
//!
//! Every cluster has a [`Store`] (`sim.cluster("cluster1").store()`) holding
//! objects as `serde_json::Value`, with the same rules as the HTTP API
//! (resourceVersion, generation, uid, finalizers, cascades, namespaces):
//!
//! - resolve a type: [`Store::resolve`] (group, version, plural) or
//!   [`Store::resolve_kind`] (apiVersion, kind) -> [`ResourceType`];
//! - read: [`Store::get`] / [`Store::get_arc`], [`Store::list`] (one namespace or all);
//! - write: [`Store::create`], [`Store::update`] (resourceVersion in the object is a
//!   precondition), [`Store::delete`], each with [`WriteOptions`] / [`DeleteOptions`];
//!   in-process writes skip authentication and schema validation, but not the
//!   store's [`Admission`] hook (sidecar injection);
//! - watch: [`Store::subscribe`] (history after a resourceVersion plus live events)
//!   or [`Store::events`] (live only), yielding [`WatchEvent`]s;
//! - pod logs: [`Store::set_log`] / [`Store::log`].
//!
//! Jobs are decided by a [`JobRunner`] set on [`SimConfig`]; it sees every
//! cluster's store through [`ClusterSet`]. The default, [`istio::kubelet::MeshJobRunner`],
//! runs only the probe program (`mesh::probe`) against the mesh model.
//!
//! # Pods
//!
//! Every cluster runs a kubelet (with a scheduler in front): pods that no controller runs (bare
//! pods, `kubectl run`) go to a node that is not cordoned, start with their conditions in order,
//! and their commands run through [`shell`] (curl, sleep, echo, `sh -c` loops), the mesh model
//! answering their requests; their output is their log. Pod deletion through the API is graceful
//! (`deletionTimestamp`, grace period, then gone); `pods/eviction` honours PodDisruptionBudgets.
//!
//! # The Istio stand-in
//!
//! Every cluster runs an istiod stand-in ([`istio::istiod`]): once Istio's objects are
//! installed (`istio::install`), the istiod pod chooses its CA, writes `istio-ca-root-cert`
//! everywhere, registers remote secrets and answers `debug/clusterz` through the service
//! proxy. Pods are injected at creation ([`istio::inject`], an [`Admission`] hook on the
//! store, so API and controller writes alike), and [`istio::view::build_view`] turns every
//! store into the mesh model's input.
//!
//! Installers: [`istioctl`] and [`helm`] stand in for the real command-line tools (the
//! `migrate` binary becomes one when started through a link of that name); [`seed`] installs
//! the meshes users run (istioctl or Helm, a revision, an Istio version, ambient).

mod apiservices;
mod auth;
mod bootstrap;
mod cluster;
mod controllers;
mod defaults;
mod discovery;
mod faults;
mod handlers;
pub mod helm;
mod http;
pub mod istio;
pub mod istioctl;
mod jobs;
pub mod kubeconfig;
mod kubelet;
pub mod merge;
pub mod mesh;
mod openapi;
mod protobuf;
mod resource_path;
mod resources;
pub mod schema;
pub mod seed;
pub mod selector;
mod server;
pub mod shell;
pub mod status;
mod store;
mod streaming;
pub mod testdata;
mod tls;
mod validation;

pub use cluster::{ClusterHandle, ClusterSet};
pub use discovery::GIT_VERSION;
pub use faults::{Counters, FaultConfig, Faults};
pub use jobs::{JobContext, JobOutcome, JobRunner, SucceedingJobRunner};
pub use resources::{GroupResource, ResourceType};
pub use status::ApiError;
pub use store::{
    Admission, DeleteOptions, Deleted, EventType, Grace, Propagation, StatusPolicy, Store,
    WatchEvent, WriteOptions,
};
pub use streaming::StreamStats;

use cluster::ClusterInner;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no clusters requested: at least one is needed")]
    NoClusters,
    #[error("listening on 127.0.0.1: {0}")]
    Listen(#[source] std::io::Error),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("writing the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How to start a simulation.
#[derive(Clone)]
pub struct SimConfig {
    /// How many clusters (`cluster1` .. `clusterN`).
    pub clusters: usize,
    /// How long new pods take to become ready (0: at once).
    pub ready_delay: Duration,
    /// Decides how Jobs end and what their pods log. Default: the probe
    /// kubelet ([`istio::kubelet::MeshJobRunner`]); [`SucceedingJobRunner`]
    /// completes every Job with an empty log.
    pub job_runner: Arc<dyn JobRunner>,
    /// Where to write the kubeconfig; None: a private temporary directory
    /// removed when the simulation ends.
    pub kubeconfig_path: Option<PathBuf>,
    /// Faults every cluster starts with.
    pub faults: FaultConfig,
    /// The locality of cluster N's node (`localities[N-1]`): its labels
    /// `topology.kubernetes.io/region`, `/zone` (and `topology.istio.io/subzone`).
    /// Clusters past the end get `regionN` / `zoneN`.
    pub localities: Vec<mesh::Locality>,
    /// The flat pod network of cluster N (`pod_networks[N-1]`): clusters that
    /// share a value reach each other's pod IPs directly, as on one VPC
    /// (Istio's "same network"). Clusters past the end get their own.
    pub pod_networks: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            clusters: 2,
            ready_delay: Duration::from_millis(50),
            job_runner: Arc::new(istio::kubelet::MeshJobRunner),
            kubeconfig_path: None,
            faults: FaultConfig::default(),
            localities: Vec::new(),
            pod_networks: Vec::new(),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("clusters", &self.clusters)
            .field("ready_delay", &self.ready_delay)
            .field("kubeconfig_path", &self.kubeconfig_path)
            .field("faults", &self.faults)
            .field("localities", &self.localities)
            .field("pod_networks", &self.pod_networks)
            .finish_non_exhaustive()
    }
}

/// Running simulated clusters. Dropping it (or [`Sim::shutdown`]) stops them.
pub struct Sim {
    clusters: Vec<ClusterHandle>,
    kubeconfig_path: PathBuf,
    kubeconfig: String,
    temp_dir: Option<PathBuf>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("clusters", &self.clusters)
            .field("kubeconfig_path", &self.kubeconfig_path)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// Starts the clusters, each on its own 127.0.0.1 port, and writes the kubeconfig.
    pub async fn start(config: SimConfig) -> Result<Sim, SimError> {
        if config.clusters == 0 {
            return Err(SimError::NoClusters);
        }
        let all = ClusterSet::default();
        let mut inners = Vec::new();
        let mut listeners = Vec::new();
        for index in 1..=config.clusters {
            let name = format!("cluster{index}");
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(SimError::Listen)?;
            let port = listener.local_addr().map_err(SimError::Listen)?.port();
            let store = Store::new(&name);
            let locality = config
                .localities
                .get(index - 1)
                .cloned()
                .unwrap_or_else(|| bootstrap::default_locality(index));
            let pod_network = config
                .pod_networks
                .get(index - 1)
                .cloned()
                .unwrap_or_else(|| name.clone());
            bootstrap::populate(&store, &name, &locality, &pod_network);
            inners.push(Arc::new(ClusterInner {
                tls: tls::generate(&name)?,
                auth: auth::Authenticator::generate(),
                faults: Faults::new(config.faults.clone()),
                name,
                index,
                store,
                port,
                ready_delay: config.ready_delay,
                all: all.clone(),
                ignored_secrets: Default::default(),
                lb_hostnames: Default::default(),
                loaded_secrets: Default::default(),
                streams: Default::default(),
                stdio: Default::default(),
            }));
            listeners.push(listener);
        }
        all.fill(
            inners
                .iter()
                .map(|c| (c.name.clone(), c.store.clone()))
                .collect(),
        );
        all.fill_clusters(&inners);
        for c in &inners {
            c.store
                .set_admission(Some(Arc::new(istio::inject::Injector::new(&c.name, &all))));
        }
        let entries: Vec<kubeconfig::Entry<'_>> = inners
            .iter()
            .map(|c| kubeconfig::Entry {
                name: &c.name,
                server: format!("https://127.0.0.1:{}", c.port),
                ca_pem: &c.tls.ca_pem,
                token: c.auth.admin_token(),
            })
            .collect();
        let text = kubeconfig::render(&entries);
        let (path, temp_dir) = match config.kubeconfig_path {
            Some(p) => (p, None),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "meshsim-{}-{}",
                    std::process::id(),
                    store::random_suffix(8)
                ));
                std::fs::create_dir_all(&dir).map_err(|source| SimError::Kubeconfig {
                    path: dir.clone(),
                    source,
                })?;
                (dir.join("kubeconfig"), Some(dir))
            }
        };
        kubeconfig::write(&path, &text).map_err(|source| SimError::Kubeconfig {
            path: path.clone(),
            source,
        })?;
        let mut tasks = Vec::new();
        for (inner, listener) in inners.iter().zip(listeners) {
            tasks.push(tokio::spawn(controllers::run(
                inner.clone(),
                config.job_runner.clone(),
            )));
            tasks.push(tokio::spawn(istio::istiod::run(inner.clone())));
            tasks.push(tokio::spawn(server::serve(inner.clone(), Some(listener))));
        }
        Ok(Sim {
            clusters: inners
                .into_iter()
                .map(|inner| ClusterHandle { inner })
                .collect(),
            kubeconfig_path: path,
            kubeconfig: text,
            temp_dir,
            tasks,
        })
    }

    pub fn clusters(&self) -> &[ClusterHandle] {
        &self.clusters
    }

    /// The cluster named `name` (`cluster1`, ...).
    ///
    /// # Panics
    /// When there is no such cluster (a test's mistake); see [`Sim::get`].
    pub fn cluster(&self, name: &str) -> &ClusterHandle {
        match self.get(name) {
            Some(c) => c,
            None => panic!(
                "meshsim has no cluster named {name:?} (it has cluster1..cluster{})",
                self.clusters.len()
            ),
        }
    }

    pub fn get(&self, name: &str) -> Option<&ClusterHandle> {
        self.clusters.iter().find(|c| c.name() == name)
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The kubeconfig text (contains tokens).
    pub fn kubeconfig(&self) -> &str {
        &self.kubeconfig
    }

    /// Stops the servers and controllers and waits for them to end.
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.release_hooks();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Sim {
    /// The injector holds every store; dropping it breaks that cycle.
    fn release_hooks(&self) {
        for c in &self.clusters {
            c.store().set_admission(None);
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.release_hooks();
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
