//! The `MeshMigration` document as typed data.
//!
//! These types are what the rest of the program sees after parsing and
//! validation succeeded: phases read them, nothing writes them. Field names
//! follow the YAML (camelCase) so `-o json` of a spec round-trips. The spec
//! is decoded by hand (`decode/`), not by these serde derives; the serde
//! defaults below mirror the decoder's so both read a file the same way.
//!
//! What a spec returned by `load_file` guarantees (checked in `check/`):
//! - at least two clusters; names are unique DNS-1123 labels; contexts are
//!   unique and non-empty; exactly one cluster has `source: true`;
//! - `network` is set on every cluster or on none, and is a label value;
//! - multi-primary: no `role: remote`, no `primary`; primary-remote: every
//!   cluster has a role, the source is a primary, every remote names a
//!   primary in `primary`, primaries name none;
//! - `trust.root.adopt` names the source cluster; generated roots outlive
//!   their intermediates; validity days are in 1..=36500;
//! - every cluster name used elsewhere (DestinationRule/VirtualService/
//!   ServiceEntry `clusters`, `workloads.perCluster` keys, `failoverTest.from`
//!   and `.drain`) names a cluster, and `from != drain`;
//! - a DestinationRule without `namespace` has a host of the form
//!   `name.namespace...`; durations parse as Go durations of at least 1ms;
//! - `tracing.sampling` is in 0..=100; `failoverTest.requests >= 1`;
//!   `failoverTest.service.port >= 1` and its path starts with `/`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const API_VERSION: &str = "migrate.meshops.dev/v1alpha1";
pub const KIND: &str = "MeshMigration";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshMigration {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub mesh: Mesh,
    pub topology: Topology,
    pub installer: Installer,
    pub clusters: Vec<ClusterSpec>,
    pub trust: Trust,
    #[serde(default)]
    pub routing: Routing,
    #[serde(default)]
    pub observability: Observability,
    #[serde(default)]
    pub workloads: Workloads,
    #[serde(default)]
    pub failover_test: Option<FailoverTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mesh {
    /// `values.global.meshID`, identical in every cluster.
    pub id: String,
    /// Mesh config `trustDomain`; `cluster.local` unless said otherwise.
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Other trust domains accepted during the migration (`trustDomainAliases`).
    #[serde(default)]
    pub trust_domain_aliases: Vec<String>,
    pub istio_version: String,
}

fn default_trust_domain() -> String {
    "cluster.local".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    MultiPrimary,
    PrimaryRemote,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Installer {
    pub kind: InstallerKind,
    /// Path or name of the installer binary (looked up on PATH); `istioctl`
    /// when not given.
    #[serde(default = "default_installer_path")]
    pub path: String,
}

fn default_installer_path() -> String {
    "istioctl".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallerKind {
    Istioctl,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// The Istio cluster ID (`values.global.multiCluster.clusterName`); a DNS-1123 label.
    pub name: String,
    /// The kubeconfig context used to reach it.
    pub context: String,
    /// A kubeconfig file for this cluster only; otherwise `--kubeconfig` / `$KUBECONFIG`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// `values.global.network`; all equal (or all absent) means one network.
    #[serde(default)]
    pub network: Option<String>,
    /// The cluster that runs the mesh today. Exactly one.
    #[serde(default)]
    pub source: bool,
    /// primary-remote only: `primary` or `remote`. Multi-primary: every cluster is primary.
    #[serde(default)]
    pub role: Option<Role>,
    /// primary-remote only: the primary whose istiod serves this remote.
    #[serde(default)]
    pub primary: Option<String>,
    #[serde(default)]
    pub locality: Option<Locality>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Remote,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Locality {
    pub region: String,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub subzone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trust {
    pub root: TrustRoot,
    /// Validity of each cluster's intermediate CA.
    #[serde(default = "default_intermediate_days")]
    pub intermediate_validity_days: u32,
    /// Where CA keys are written (0600). Never in the state store.
    #[serde(default = "default_cert_dir")]
    pub cert_dir: PathBuf,
}

fn default_intermediate_days() -> u32 {
    730
}
fn default_cert_dir() -> PathBuf {
    PathBuf::from("./migrate-certs")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TrustRoot {
    /// Sign intermediates with the live self-signed root of this (source) cluster.
    Adopt(String),
    /// A new root, introduced through the multi-root transition.
    Generate(GenerateRoot),
    /// A root the user already has, as PEM files.
    Files(RootFiles),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRoot {
    /// `ecdsa-p256` when not given (the only choice today).
    #[serde(default)]
    pub algorithm: KeyAlgorithm,
    /// 3650 when not given.
    #[serde(default = "default_root_days")]
    pub validity_days: u32,
    pub org: String,
    /// How running workloads move to the new root.
    #[serde(default)]
    pub transition: RootTransition,
}

fn default_root_days() -> u32 {
    3650
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    #[default]
    EcdsaP256,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootTransition {
    /// Trust old+new, switch signer, drop old (no downtime). The default.
    #[default]
    MultiRoot,
    /// Switch at once and restart every injected workload (acknowledged downtime).
    RestartAll,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Routing {
    /// Hosts exposed through the cross-network gateway (AUTO_PASSTHROUGH);
    /// empty means `*.local`. Only used when the mesh spans several networks.
    pub expose_hosts: Vec<String>,
    pub destination_rules: Vec<DestinationRule>,
    pub virtual_services: Vec<ObjectSpec>,
    pub service_entries: Vec<ObjectSpec>,
    /// ALLOW policies naming callers by service account; their principals
    /// are written for the trust domain and every alias, so callers keep
    /// access whichever trust domain their certificate carries.
    pub authorization_policies: Vec<AuthorizationPolicy>,
    /// Mesh-wide PeerAuthentication STRICT once every cluster trusts the shared root.
    pub strict_mtls: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    pub name: String,
    pub namespace: String,
    /// Clusters it goes to; empty means every cluster.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// `matchLabels` of the workloads it protects; empty: the whole namespace.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// Callers allowed in, as `namespace/serviceaccount`.
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    /// FQDN, e.g. `helloworld.sample.svc.cluster.local`.
    pub host: String,
    /// Where the rule is created; defaults to the host's namespace (its
    /// second label, which validation guarantees exists when this is unset).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Clusters it goes to; empty means every cluster.
    #[serde(default)]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub locality_lb: Option<LocalityLb>,
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalityLb {
    #[serde(default)]
    pub failover_priority: Vec<String>,
    #[serde(default)]
    pub failover: Vec<FailoverRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRule {
    pub from: String,
    pub to: String,
}

/// Durations are kept as the user wrote them (`30s`, `1m30s`) after they were
/// checked to parse; Istio takes the same strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    #[serde(default)]
    pub consecutive5xx_errors: Option<u32>,
    #[serde(default)]
    pub consecutive_gateway_errors: Option<u32>,
    /// Ignored by Istio since 1.7; validation warns and the planner emits
    /// `consecutive5xxErrors` with this value instead (unless
    /// `consecutive5xxErrors` is also given: that one wins).
    #[serde(default)]
    pub consecutive_errors: Option<u32>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
}

/// A VirtualService or ServiceEntry given by the user: name, namespace,
/// target clusters and the Istio `spec` passed through as-is (the CRD
/// schema validates it on the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSpec {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub clusters: Vec<String>,
    pub spec: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observability {
    #[serde(default)]
    pub prometheus: Option<Prometheus>,
    #[serde(default)]
    pub tracing: Option<Tracing>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prometheus {
    /// Add a federation scrape config for the other clusters; false when not given.
    #[serde(default)]
    pub federate: bool,
    /// Namespace and ConfigMap of the Prometheus configuration.
    #[serde(default = "default_prom_namespace")]
    pub namespace: String,
    #[serde(default = "default_prom_configmap")]
    pub config_map: String,
}

fn default_prom_namespace() -> String {
    "istio-system".into()
}
fn default_prom_configmap() -> String {
    "prometheus".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracing {
    /// `host:port` of a Zipkin-compatible collector.
    pub zipkin: String,
    /// Percentage of requests traced, 0.0 to 100.0; 1.0 (Istio's default)
    /// when not given.
    #[serde(default = "default_sampling")]
    pub sampling: f64,
}

fn default_sampling() -> f64 {
    1.0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Workloads {
    /// Injected namespaces whose workloads are restarted after the cluster
    /// identity or the CA changes.
    pub restart_namespaces: Vec<String>,
    /// Per-cluster overrides; absent means `restart_namespaces`.
    #[serde(default)]
    pub per_cluster: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverTest {
    pub service: ServiceRef,
    /// The client cluster the probe runs in.
    pub from: String,
    /// The cluster whose service is scaled to zero.
    pub drain: String,
    /// Calls the probe makes before and after the drain; 20 when not given.
    #[serde(default = "default_requests")]
    pub requests: u32,
}

impl Spec {
    /// Whether a DestinationRule with locality load balancing governs the
    /// failover test's service in its client cluster: healthy local endpoints
    /// then take every request, so only a drain of that cluster moves traffic.
    pub fn locality_lb_applies(&self, t: &FailoverTest) -> bool {
        let host = format!(
            "{}.{}.svc.cluster.local",
            t.service.name, t.service.namespace
        );
        self.routing.destination_rules.iter().any(|dr| {
            dr.host == host
                && dr.locality_lb.is_some()
                && (dr.clusters.is_empty() || dr.clusters.contains(&t.from))
        })
    }
}

fn default_requests() -> u32 {
    20
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    pub port: u16,
    /// HTTP path the probe calls; `/` when not given.
    #[serde(default = "default_service_path")]
    pub path: String,
}

fn default_service_path() -> String {
    "/".into()
}
