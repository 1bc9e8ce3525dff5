//! One simulated cluster: its store, TLS material, tokens, faults and
//! settings, shared by its server and controllers.

use crate::auth::Authenticator;
use crate::faults::Faults;
use crate::istio::ignored_keys::IgnoredKeys;
use crate::istio::loaded_secrets::LoadedSecrets;
use crate::store::Store;
use crate::streaming::StreamStats;
use crate::tls::ClusterTls;
use std::sync::{Arc, Weak};
use std::time::Duration;

pub(crate) struct ClusterInner {
    pub name: String,
    /// 1-based position, used for fake addresses (172.18.<index>.x).
    pub index: usize,
    pub store: Store,
    pub auth: Authenticator,
    pub tls: ClusterTls,
    pub faults: Faults,
    pub port: u16,
    pub ready_delay: Duration,
    /// Every cluster of the simulation (for the job runner and the Istio stand-in).
    pub all: ClusterSet,
    /// Remote-secret keys istiod ignored as duplicates (see `istio::ignored_keys`).
    pub ignored_secrets: IgnoredKeys,
    /// The remote secrets an istiod before 1.31 built its clients from (see `istio::loaded_secrets`).
    pub loaded_secrets: LoadedSecrets,
    /// Port-forward sessions and proxied istiod debug requests served.
    pub streams: StreamStats,
    /// The kubelet's running containers' stdio and pods' networks (for exec and attach).
    pub stdio: crate::kubelet::stdio::Registry,
    /// Whether new load balancers get a DNS name and no IP (as on AWS EKS).
    pub lb_hostnames: std::sync::atomic::AtomicBool,
}

/// Every cluster's store, by name, for code that looks across clusters.
#[derive(Clone, Debug, Default)]
pub struct ClusterSet {
    stores: Arc<std::sync::OnceLock<Vec<(String, Store)>>>,
    /// The clusters themselves (tokens, TLS, faults), for code that checks a
    /// kubeconfig against them. Weak: every cluster holds this set.
    inners: Arc<std::sync::OnceLock<Vec<Weak<ClusterInner>>>>,
}

impl ClusterSet {
    pub(crate) fn fill(&self, stores: Vec<(String, Store)>) {
        let _ = self.stores.set(stores);
    }

    pub(crate) fn fill_clusters(&self, inners: &[Arc<ClusterInner>]) {
        let _ = self.inners.set(inners.iter().map(Arc::downgrade).collect());
    }

    /// Every running cluster (empty for a set built without a simulation).
    pub(crate) fn clusters(&self) -> Vec<Arc<ClusterInner>> {
        self.inners
            .get()
            .into_iter()
            .flatten()
            .filter_map(Weak::upgrade)
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&Store> {
        self.stores
            .get()?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Store)> {
        self.stores
            .get()
            .into_iter()
            .flatten()
            .map(|(n, s)| (n.as_str(), s))
    }
}

/// A handle on one simulated cluster (cheap to clone).
#[derive(Clone)]
pub struct ClusterHandle {
    pub(crate) inner: Arc<ClusterInner>,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("name", &self.inner.name)
            .field("port", &self.inner.port)
            .finish()
    }
}

impl ClusterHandle {
    /// `cluster1`, `cluster2`, ...
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The kubeconfig context for this cluster (`sim-cluster1`).
    pub fn context(&self) -> String {
        crate::kubeconfig::context_name(&self.inner.name)
    }

    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.inner.port)
    }

    /// The cluster CA certificate (PEM) clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.inner.tls.ca_pem
    }

    /// What the cluster's streaming endpoints served (port-forwards, proxied istiod debug requests).
    pub fn streams(&self) -> &StreamStats {
        &self.inner.streams
    }

    /// The admin bearer token. A secret: do not log it.
    pub fn admin_token(&self) -> &str {
        self.inner.auth.admin_token()
    }

    /// A token this cluster accepts as the service account (while it exists).
    pub fn mint_token(&self, namespace: &str, service_account: &str) -> String {
        self.inner.auth.mint_sa_token(namespace, service_account)
    }

    /// The object store, for in-process reads and writes (see the crate docs).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The fault layer (error rates, latency, down).
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// With `true`, LoadBalancer Services that get an address from now on get
    /// a DNS name and no IP in `status.loadBalancer.ingress[]`, as AWS load
    /// balancers (EKS) do; with `false` (the default), an IP. Addresses
    /// already given stay.
    pub fn set_load_balancer_hostnames(&self, on: bool) {
        self.inner
            .lb_hostnames
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits (blocking) until the cluster's port accepts connections, at most `timeout`; false
    /// if it did not. The server reopens its listener on its own task after
    /// `faults().set_down(false)`: a test that needs the cluster back waits here, not on a sleep.
    pub fn wait_listening(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.inner.port)).is_ok() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
