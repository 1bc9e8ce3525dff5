//! The cluster layer: one kube client per kubeconfig context, and the
//! primitive operations (get, apply, delete, patch, scale, restart, restore,
//! wait, exec) that the engine's actions are made of, and istiod's debug
//! endpoints read through a port-forward (`istiod_debug`).
//!
//! It knows Kubernetes, not plans: objects are `serde_json::Value`s and
//! `ObjectRef`s. Every error says which cluster and which object, and knows
//! whether retrying can help (`ClusterError::is_transient`).

mod access;
mod clean;
mod connect;
mod error;
mod exec;
mod identity;
pub mod inventory;
mod istiod_debug;
mod ops;
mod retry;
pub mod wait;

pub use access::AccessQuery;
pub use clean::{clean_for_compare, clean_for_restore};
pub use connect::{ClusterTarget, connect};
pub use error::ClusterError;
pub use exec::{
    ExecOutput, InputFile, ProcessIdentity, RunningCommand, kill_children, run_command,
    start_command,
};
pub use identity::{ClusterIdentity, ca_fingerprint};
pub use istiod_debug::{Clusterz, ClusterzRow, MONITORING_PORT, PeerView, ReplicaClusterz};
pub use ops::{FIELD_MANAGER, RestoreOutcome};
pub use retry::{Backoff, retry};

use kube::Client;
use kube::discovery::{ApiCapabilities, ApiResource};
use std::collections::HashMap;
use std::sync::Mutex;

/// One reachable cluster: its Istio name, the context that reaches it, a
/// client, and the kinds resolved so far (discovery is cached per run).
pub struct Cluster {
    pub name: String,
    pub context: String,
    /// The API server URL of the context.
    server: String,
    /// The API server CA the kubeconfig trusts (`identity`).
    ca_fingerprint: Option<String>,
    client: Client,
    kinds: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A cluster reached through `client`, named as the plan names it.
    pub fn new(
        name: impl Into<String>,
        context: impl Into<String>,
        server: impl Into<String>,
        client: Client,
    ) -> Self {
        Cluster {
            name: name.into(),
            context: context.into(),
            server: server.into(),
            ca_fingerprint: None,
            client,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// The same cluster, trusting the API server CA of this fingerprint.
    pub fn with_ca_fingerprint(mut self, fingerprint: Option<String>) -> Self {
        self.ca_fingerprint = fingerprint;
        self
    }

    /// The API server URL, as the kubeconfig gives it.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The underlying client, for typed calls the primitives do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
