//! The model's input: a plain snapshot of every simulated cluster, as far as the
//! mesh cares. Built from the object store by the istiod stand-in; each field
//! says which Kubernetes or Istio object it comes from.
//!
//! Certificates are named by fingerprint (any stable string, e.g. the sha256 of
//! the root's DER in hex): the model only compares them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Label on Namespace/Pod/Service: the network of endpoints, or (on a Service) a network gateway.
pub const NETWORK_LABEL: &str = "topology.istio.io/network";
/// Label istiod stamps on every endpoint internally: its cluster ID (usable in `failoverPriority`).
pub const CLUSTER_LABEL: &str = "topology.istio.io/cluster";
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const SUBZONE_LABEL: &str = "topology.istio.io/subzone";
/// istiod's `CLUSTER_ID` and the sidecar's `ISTIO_META_CLUSTER_ID` when `clusterName` is unset.
pub const DEFAULT_CLUSTER_ID: &str = "Kubernetes";
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// Every cluster the sim runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MeshView {
    pub clusters: Vec<ClusterView>,
}

impl MeshView {
    pub fn cluster(&self, name: &str) -> Option<&ClusterView> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

/// One simulated cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// The sim's name for the cluster (its kubeconfig context/cluster name). Not an Istio ID.
    pub name: String,
    /// Which flat pod network the cluster sits on, from the sim's own configuration (not a
    /// Kubernetes object): pod IPs are routable between clusters with the same value only.
    /// Give each cluster its own value unless the sim is told they share one.
    pub pod_network: String,
    /// Node name -> locality, from each Node's labels `topology.kubernetes.io/region`,
    /// `topology.kubernetes.io/zone`, `topology.istio.io/subzone`.
    pub nodes: BTreeMap<String, Locality>,
    /// Namespace `istio-system`, label `topology.istio.io/network`: the default network of every
    /// endpoint in this cluster (FACTS 4.1). `None` when the label is absent.
    pub network: Option<String>,
    /// Namespace `istio-system`, annotation `topology.istio.io/controlPlaneClusters`, split on `,`
    /// and trimmed (`*` allowed). Empty when absent.
    pub control_plane_clusters: Vec<String>,
    /// istiod running in this cluster (Deployment `istiod` in `istio-system` with an available
    /// replica). `None` when absent or not running.
    pub istiod: Option<Istiod>,
    /// Set when this cluster is a primary-remote *remote* (installed with `profile: remote`).
    pub remote: Option<RemoteProfile>,
    /// Services that istiod treats as network gateways: any Service labelled
    /// `topology.istio.io/network`, plus `istio-system/istio-eastwestgateway` even without the
    /// label (so the model can say the label is what is missing).
    pub gateways: Vec<GatewayService>,
    /// `networking.istio.io` Gateway objects, all namespaces.
    pub istio_gateways: Vec<IstioGateway>,
    /// `networking.istio.io` DestinationRules, all namespaces.
    pub destination_rules: Vec<DestinationRule>,
    /// `security.istio.io` PeerAuthentications **without** `spec.selector` (the builder skips the
    /// workload-scoped ones, which the model does not simulate).
    pub peer_authentications: Vec<PeerAuthentication>,
    /// Core Services, all namespaces.
    pub services: Vec<Service>,
    /// Pods, all namespaces (the probe's own pod need not be listed).
    pub pods: Vec<Pod>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub subzone: String,
}

impl Locality {
    pub fn new(region: &str, zone: &str, subzone: &str) -> Self {
        Self {
            region: region.into(),
            zone: zone.into(),
            subzone: subzone.into(),
        }
    }
}

/// A running istiod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Istiod {
    /// Deployment `istiod` env `CLUSTER_ID` (from `values.global.multiCluster.clusterName`);
    /// `"Kubernetes"` when unset.
    pub cluster_id: String,
    /// ConfigMap `istio-system/istio` key `mesh`, `defaultConfig.meshId` (from `values.global.meshID`).
    /// Empty when unset: the model then uses the trust domain, as Istio does.
    pub mesh_id: String,
    /// ConfigMap `istio` key `mesh`, `trustDomain` (`cluster.local` when unset).
    pub trust_domain: String,
    /// ConfigMap `istio` key `mesh`, `trustDomainAliases`.
    pub trust_domain_aliases: Vec<String>,
    /// The CA istiod chose once at start (FACTS 3.3): a restart is what changes it.
    pub ca: CaState,
    /// Deployment `istiod` env `EXTERNAL_ISTIOD` is `true` (`values.global.externalIstiod`).
    pub external_istiod: bool,
    /// Clusters registered from Secrets labelled `istio/multiCluster=true` in `istio-system`,
    /// one entry per data key, in the order istiod saw them.
    pub remote_clusters: Vec<RemoteCluster>,
}

impl Istiod {
    /// `meshID`, or the trust domain when it is empty (FACTS 4.1).
    pub fn effective_mesh_id(&self) -> &str {
        if self.mesh_id.is_empty() {
            &self.trust_domain
        } else {
            &self.mesh_id
        }
    }
}

/// The CA an istiod started with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaState {
    /// Fingerprints of every root in the bundle it distributes (`root-cert.pem` of `cacerts`, or
    /// the `istio-ca-secret` root). What `istio-ca-root-cert` carries.
    pub trusted_roots: Vec<String>,
    /// Fingerprint of the root its signing chain ends in.
    pub signing_root: String,
    /// `cacerts` (plugged-in) or `istio-ca-secret` (self-signed).
    pub source: CaSource,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaSource {
    #[default]
    SelfSigned,
    PluggedIn,
}

/// One data key of a remote secret, as istiod registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCluster {
    /// The data key: the cluster ID istiod files the remote's endpoints under.
    pub cluster_id: String,
    /// `<namespace>/<name>` of the Secret (for messages).
    pub secret: String,
    /// The sim cluster the embedded kubeconfig's `server` points at; `None` when it points at no
    /// sim cluster.
    pub target: Option<String>,
    /// Whether the kubeconfig authenticated and the informers synced (the builder decides).
    pub status: SyncStatus,
}

/// istiod's sync states for a remote (`SyncStatus*` in `pkg/kube/multicluster/cluster.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncStatus {
    Synced,
    Syncing,
    Timeout,
    Closed,
}

/// A primary-remote remote cluster's install (FACTS 7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteProfile {
    /// The cluster ID injection bakes into this cluster's pods: `cluster` in
    /// `istiodRemote.injectionPath` (`/inject/cluster/<id>/net/<net>`), else
    /// `values.global.multiCluster.clusterName` in ConfigMap `istio-sidecar-injector`.
    pub cluster_id: String,
    /// `values.global.remotePilotAddress`: the address the remote's `istiod` Service/EndpointSlice
    /// points at. Works when it is the LB address of a primary's east-west gateway that exposes
    /// istiod on 15012.
    pub remote_pilot_address: String,
}

/// A Service istiod may use as a network gateway (FACTS 2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayService {
    pub namespace: String,
    pub name: String,
    /// Service label `topology.istio.io/network`.
    pub network: Option<String>,
    /// Service label `networking.istio.io/gatewayPort` (mTLS port; 15443 when absent).
    pub gateway_port: Option<u16>,
    /// `spec.externalIPs` and `status.loadBalancer.ingress[].ip`/`hostname`.
    pub addresses: Vec<String>,
    /// `spec.ports[].port`.
    pub ports: Vec<u16>,
    /// Labels of the gateway pods behind it (`spec.selector`), which Gateway objects select on,
    /// e.g. `istio: eastwestgateway`.
    pub pod_labels: BTreeMap<String, String>,
    /// Ready pods behind the Service.
    pub ready_pods: u32,
}

impl GatewayService {
    pub fn mtls_port(&self) -> u16 {
        self.gateway_port.unwrap_or(15443)
    }
}

/// `networking.istio.io/v1 Gateway`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IstioGateway {
    pub namespace: String,
    pub name: String,
    /// `spec.selector`.
    pub selector: BTreeMap<String, String>,
    /// `spec.servers[]`.
    pub servers: Vec<GatewayServer>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayServer {
    /// `port.number`.
    pub port: u16,
    /// `port.protocol`, as written (`TLS`, `tls`, `HTTP`...).
    pub protocol: String,
    /// `tls.mode` (`AUTO_PASSTHROUGH`, `PASSTHROUGH`, `ISTIO_MUTUAL`, `SIMPLE`...), if any.
    pub tls_mode: Option<String>,
    /// `hosts`, as written (`*.local`, `*`, `ns/host`).
    pub hosts: Vec<String>,
}

/// `networking.istio.io` DestinationRule (only what the model uses).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DestinationRule {
    pub namespace: String,
    pub name: String,
    /// `spec.host` as written (short names are relative to the rule's namespace).
    pub host: String,
    /// `spec.trafficPolicy.loadBalancer.localityLbSetting`.
    pub locality_lb: Option<LocalityLbSetting>,
    /// `spec.trafficPolicy.outlierDetection`; `Some` whenever the block is present, even empty.
    pub outlier_detection: Option<OutlierDetection>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalityLbSetting {
    /// `enabled`; `None` means the mesh default, which is enabled.
    pub enabled: Option<bool>,
    /// `failover[]` `{from, to}` regions.
    pub failover: Vec<(String, String)>,
    /// `failoverPriority[]` label keys, optionally `key=value`.
    pub failover_priority: Vec<String>,
    /// `distribute[]`: `from` locality pattern -> (`to` locality pattern -> weight).
    pub distribute: Vec<(String, BTreeMap<String, u32>)>,
}

/// `outlierDetection` (FACTS 6). `None` fields take Envoy/Istio defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutlierDetection {
    /// `consecutive5xxErrors` (default 5; 0 disables). The old `consecutiveErrors` is ignored by
    /// istiod since 1.7, so the builder must not map it here.
    pub consecutive_5xx_errors: Option<u32>,
    /// `maxEjectionPercent` (default 10; Envoy still ejects at least one host).
    pub max_ejection_percent: Option<u32>,
}

/// A selector-less PeerAuthentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAuthentication {
    /// `istio-system` makes it mesh-wide.
    pub namespace: String,
    /// `spec.mtls.mode`.
    pub mode: MtlsMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MtlsMode {
    Unset,
    #[default]
    Permissive,
    Strict,
    Disable,
}

/// Core Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// `spec.ports[].port`.
    pub ports: Vec<u16>,
    /// `spec.selector`; empty selects nothing.
    pub selector: BTreeMap<String, String>,
}

/// A Pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `status.conditions[type=Ready]` is True.
    pub ready: bool,
    /// `spec.nodeName`: its locality comes from `ClusterView::nodes`.
    pub node: Option<String>,
    /// What the application container serves.
    pub app: App,
    /// The injected `istio-proxy`, `None` when not injected.
    pub sidecar: Option<Sidecar>,
}

/// The application in a pod, as far as the model answers for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum App {
    /// Istio's helloworld sample (FACTS 5). `version` is `SERVICE_VERSION`: the container env
    /// if set, else the image (`examples-helloworld-v2` bakes `v2`), else the `version` label.
    HelloWorld { version: String },
    /// Anything else: nothing listens on the requested port.
    #[default]
    Other,
}

/// What injection baked into a pod; fixed until the pod is recreated (FACTS 9 items 1-3, 7-9).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    /// `istio-proxy` env `ISTIO_META_CLUSTER_ID`.
    pub cluster_id: String,
    /// `istio-proxy` env `ISTIO_META_NETWORK`; empty when absent.
    pub network: String,
    /// `istio-proxy` env `ISTIO_META_MESH_ID` (or proxy config `meshId`); empty when absent.
    pub mesh_id: String,
    /// Trust domain of the workload certificate's SPIFFE ID (its istiod's at signing time).
    pub trust_domain: String,
    /// Roots the proxy trusts (the `istio-ca-root-cert` bundle it started with).
    pub trusted_roots: Vec<String>,
    /// The root its workload certificate chains to.
    pub cert_root: String,
}

impl Sidecar {
    pub fn effective_mesh_id(&self) -> &str {
        if self.mesh_id.is_empty() {
            &self.trust_domain
        } else {
            &self.mesh_id
        }
    }
}
