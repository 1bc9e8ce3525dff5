//! One read of each cluster into plain data the rules look at.
//!
//! Secrets stay out: of `cacerts` only the certificates (public) are kept,
//! never the key; of a remote secret only its name, annotation, data keys
//! and, per kubeconfig inside, the server URL, whether a CA and credentials
//! are present and the CA's fingerprint; the token is dropped while parsing.

mod parse;
pub mod read;

pub use parse::{cert_list, remote_secret};
pub use read::read;

use crate::cluster::inventory::MeshInventory;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// A certificate, named by subject and SHA-256 fingerprint of its DER.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Cert {
    /// The subject, `O=cluster.local, CN=Root CA`.
    pub subject: String,
    /// `sha256:<hex>` of the DER.
    pub fingerprint: String,
}

impl fmt::Display for Cert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.fingerprint.trim_start_matches("sha256:");
        write!(
            f,
            "\"{}\" sha256:{}",
            self.subject,
            &hex[..hex.len().min(16)]
        )
    }
}

/// `cacerts`, certificates only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cacerts {
    /// Its data keys (names only).
    pub keys: Vec<String>,
    /// `root-cert.pem`.
    pub root: Vec<Cert>,
    /// `cert-chain.pem`, leaf first.
    pub chain: Vec<Cert>,
}

/// One kubeconfig inside a remote secret, without its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteKubeconfig {
    /// The data key that holds it (istiod's name for the cluster it reads).
    pub key: String,
    /// The server of its current context.
    pub server: Option<String>,
    /// The fingerprint of its CA (`certificate-authority-data`), if any.
    pub ca: Option<String>,
    /// A CA given as a file path, which istiod cannot read from a Secret.
    pub ca_file: bool,
    /// `insecure-skip-tls-verify: true`.
    pub insecure: bool,
    /// A token, client certificate or exec plugin is present.
    pub has_credentials: bool,
    /// Why it could not be read (worded without its text).
    pub error: Option<String>,
}

/// A Secret labelled `istio/multiCluster=true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteSecret {
    /// Its name.
    pub name: String,
    /// `networking.istio.io/cluster`.
    pub annotation: Option<String>,
    /// Its data keys.
    pub keys: Vec<String>,
    /// One per data key.
    pub kubeconfigs: Vec<RemoteKubeconfig>,
}

/// The east-west gateway's Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GatewayService {
    /// Its name.
    pub name: String,
    /// `topology.istio.io/network`.
    pub network: Option<String>,
    /// Load-balancer IPs and hostnames, external IPs.
    pub addresses: Vec<String>,
    /// Its ports.
    pub ports: Vec<u16>,
    /// The pod labels it selects (those a Gateway's selector matches).
    pub selector: BTreeMap<String, String>,
}

/// An Istio Gateway, as far as the east-west checks care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gateway {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `spec.selector`.
    pub selector: BTreeMap<String, String>,
    /// A server on 15443 with `tls.mode: AUTO_PASSTHROUGH`.
    pub passthrough_15443: bool,
}

/// A DestinationRule, as far as the failover checks care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationRule {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `spec.host`.
    pub host: String,
    /// A traffic policy (top level or per port) with locality failover.
    pub failover: bool,
    /// Whether every policy with failover also has outlierDetection.
    pub outlier_with_failover: bool,
    /// Paths where the obsolete `consecutiveErrors` is set.
    pub consecutive_errors: Vec<String>,
}

/// A port of a Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ServicePort {
    /// Its name.
    pub name: String,
    /// `port`.
    pub port: u16,
    /// TCP, UDP, SCTP.
    pub protocol: String,
}

impl fmt::Display for ServicePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}/{}", self.port, self.protocol)
        } else {
            write!(f, "{} {}/{}", self.name, self.port, self.protocol)
        }
    }
}

/// A Service in a namespace of the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `ClusterIP`, `LoadBalancer`, ...
    pub kind: String,
    /// `clusterIP: None`.
    pub headless: bool,
    /// Its ports, sorted.
    pub ports: Vec<ServicePort>,
}

/// One webhook of a MutatingWebhookConfiguration that injects sidecars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InjectorWebhook {
    /// The configuration's name.
    pub configuration: String,
    /// The webhook's name.
    pub webhook: String,
    /// `clientConfig.url`.
    pub url: Option<String>,
    /// `clientConfig.service` as `namespace/name`.
    pub service: Option<String>,
    /// A non-empty `caBundle`.
    pub ca_bundle: bool,
}

/// The reader identity other clusters' istiods use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reader {
    /// ServiceAccount `istio-reader-service-account` exists.
    pub service_account: bool,
    /// ClusterRoles named `istio-reader-*`.
    pub cluster_roles: Vec<String>,
    /// ClusterRoleBindings that bind the ServiceAccount to one of them.
    pub bindings: Vec<String>,
}

/// An istiod Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Istiod {
    /// The Deployment's name.
    pub deployment: String,
    /// Its revision (`default` without one).
    pub revision: String,
    /// The Istio version of its image.
    pub version: Option<String>,
    /// Its `CLUSTER_ID` env: the clusterName (`Kubernetes` when unset).
    pub cluster_id: Option<String>,
}

/// An injected pod's identity, as its sidecar was given it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proxy {
    /// Its namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// Its Deployment (or other owner), when known.
    pub workload: Option<String>,
    /// `ISTIO_META_CLUSTER_ID`.
    pub cluster_id: Option<String>,
    /// `ISTIO_META_NETWORK`.
    pub network: Option<String>,
    /// `ISTIO_META_MESH_ID`.
    pub mesh_id: Option<String>,
}

/// What istiod says of one peer cluster (`debug/clusterz`), over every
/// Ready replica: `synced` only when each says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerSync {
    /// The peer's clusterName.
    pub cluster: String,
    /// `synced` (every replica), else the lagging replica's: `syncing`,
    /// `timeout`, ..., or `absent` where it has not registered the peer.
    pub status: String,
    /// The first replica (pod name) that does not report it synced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// One cluster as read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterSnapshot {
    /// The cluster's name in the check (spec or context).
    pub cluster: String,
    /// The API server the context reaches.
    pub server: String,
    /// The fingerprint of the API server CA the kubeconfig trusts.
    pub api_ca: Option<String>,
    /// Why the cluster could not be read; everything else is empty then.
    pub error: Option<String>,
    /// The mesh inventory (installer, revisions, versions, CA kind).
    pub inventory: Option<MeshInventory>,
    /// istiod Deployments.
    pub istiods: Vec<Istiod>,
    /// The meshID of the install.
    pub mesh_id: Option<String>,
    /// The install's `global.network`.
    pub values_network: Option<String>,
    /// The control-plane namespace's `topology.istio.io/network`.
    pub network_label: Option<String>,
    /// DNS proxying (`ISTIO_META_DNS_CAPTURE`) on in the mesh config.
    pub dns_capture: bool,
    /// The roots `istio-ca-root-cert` serves.
    pub served_roots: Option<Vec<Cert>>,
    /// `cacerts`, certificates only.
    pub cacerts: Option<Cacerts>,
    /// Remote secrets.
    pub remote_secrets: Vec<RemoteSecret>,
    /// The east-west gateway Service.
    pub eastwest: Option<GatewayService>,
    /// Istio Gateways, every namespace.
    pub gateways: Vec<Gateway>,
    /// DestinationRules, every namespace.
    pub destination_rules: Vec<DestinationRule>,
    /// Services of the namespaces in the mesh.
    pub services: Vec<Service>,
    /// Namespaces in the mesh (injection on, or injected pods).
    pub mesh_namespaces: Vec<String>,
    /// Sidecar injector webhooks.
    pub injectors: Vec<InjectorWebhook>,
    /// The reader identity.
    pub reader: Reader,
    /// Injected pods.
    pub proxies: Vec<Proxy>,
    /// istiod's view of its peers, when it could be asked.
    pub peers: Option<Vec<PeerSync>>,
    /// Why istiod could not be asked (`peers` is then `None`).
    pub peers_error: Option<String>,
    /// What could not be read (forbidden).
    pub unread: Vec<String>,
}

impl ClusterSnapshot {
    /// A cluster that could not be read.
    pub fn unreadable(cluster: &str, server: &str, error: String) -> Self {
        ClusterSnapshot {
            cluster: cluster.to_string(),
            server: server.to_string(),
            error: Some(error),
            ..Default::default()
        }
    }

    /// Whether it was read.
    pub fn read_ok(&self) -> bool {
        self.error.is_none()
    }

    /// Whether istiod runs here.
    pub fn runs_istiod(&self) -> bool {
        !self.istiods.is_empty()
    }

    /// The first istiod's clusterName (`Kubernetes` when it sets none, as istiod does).
    pub fn istiod_cluster_id(&self) -> Option<&str> {
        self.istiods
            .first()
            .map(|i| i.cluster_id.as_deref().unwrap_or(DEFAULT_CLUSTER_ID))
    }
}

/// istiod's clusterName when none is set.
pub const DEFAULT_CLUSTER_ID: &str = "Kubernetes";
