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
//! - `existingMesh: adopt` (a cluster that already runs an Istio, kept and
//!   reconfigured in place) is set on primaries other than the source only;
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
//!   `failoverTest.service.port >= 1` and its path starts with `/`;
//! - `mesh.istioVersion` is within 1.24.0 to 1.31.x (`version.rs`);
//! - a cluster's `apiServer` is an `https://` URL, routable (not loopback,
//!   unspecified or link-local) unless the cluster is `simulated`;
//!   `tlsServerName` is a DNS name and needs Istio 1.26 or later.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `apiVersion` a spec declares.
pub const API_VERSION: &str = "migrate.meshops.dev/v1alpha1";
/// The `kind` a spec declares.
pub const KIND: &str = "MeshMigration";

/// A whole spec file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshMigration {
    /// [`API_VERSION`].
    pub api_version: String,
    /// [`KIND`].
    pub kind: String,
    /// Its name.
    pub metadata: Metadata,
    /// What to migrate, and how.
    pub spec: Spec,
}

/// The document's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The migration's name, shown in plans and the state.
    pub name: String,
}

/// What to migrate, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// The mesh as a whole.
    pub mesh: Mesh,
    /// Multi-primary or primary-remote.
    pub topology: Topology,
    /// The program that installs Istio.
    pub installer: Installer,
    /// Every cluster, the source among them.
    pub clusters: Vec<ClusterSpec>,
    /// The shared root of trust.
    pub trust: Trust,
    /// Istio configuration to write.
    #[serde(default)]
    pub routing: Routing,
    /// Prometheus and tracing settings.
    #[serde(default)]
    pub observability: Observability,
    /// Workloads to restart.
    #[serde(default)]
    pub workloads: Workloads,
    /// The failover drill, if any.
    #[serde(default)]
    pub failover_test: Option<FailoverTest>,
    /// Where the run's state lives when not in the local state directory (`--state` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSpec>,
}

/// `spec.state`: where a team keeps the run's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSpec {
    /// In a namespace of a cluster: Secrets for the records, a Lease for the lock.
    pub kubernetes: Option<KubernetesState>,
}

/// `spec.state.kubernetes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesState {
    /// The kubeconfig context; the current one when absent.
    #[serde(default)]
    pub context: Option<String>,
    /// The namespace holding the state.
    pub namespace: String,
}

/// The mesh as a whole: its ID, trust domain and Istio version.
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
    /// The Istio version running on the source, and installed everywhere.
    pub istio_version: String,
    /// The control plane revision the source runs (`1-26-4`: istiod-1-26-4,
    /// namespaces labelled `istio.io/rev=1-26-4`); every cluster is
    /// (re)configured as that revision. Absent: the default revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl Mesh {
    /// The revision, empty for the default one.
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or_default()
    }
}

impl Mesh {
    /// `istioVersion`, parsed. Validation refuses a spec whose version does
    /// not parse or is unsupported; a spec built without it (tests) is read
    /// as the oldest supported release, whose plan does the most.
    pub fn version(&self) -> super::version::IstioVersion {
        super::version::IstioVersion::parse(&self.istio_version)
            .unwrap_or(super::version::MIN_SUPPORTED)
    }
}

fn default_trust_domain() -> String {
    "cluster.local".into()
}

/// How the clusters share control planes (Istio's multicluster models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// Every cluster runs istiod.
    MultiPrimary,
    /// Remotes are served by a primary's istiod.
    PrimaryRemote,
}

/// The program that installs Istio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Installer {
    /// Which installer it is.
    pub kind: InstallerKind,
    /// Path or name of the installer binary (looked up on PATH); when not
    /// given, the kind's program (`istioctl`, `helm`). The serde default is
    /// `istioctl`: a spec serialised by migrate always names its path.
    #[serde(default = "default_installer_path")]
    pub path: String,
    /// Helm only: where Istio's charts come from; `https://istio-release.storage.googleapis.com/charts` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charts: Option<ChartSource>,
    /// Helm only: the release names of Istio's charts.
    #[serde(default, skip_serializing_if = "HelmReleases::is_default")]
    pub releases: HelmReleases,
}

fn default_installer_path() -> String {
    "istioctl".into()
}

/// Which installer it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallerKind {
    /// `istioctl install` with an IstioOperator file.
    Istioctl,
    /// `helm upgrade --install` of Istio's charts `base`, `istiod` and `gateway`.
    Helm,
}

impl InstallerKind {
    /// The program's name, the default `installer.path`.
    pub fn program(self) -> &'static str {
        match self {
            InstallerKind::Istioctl => "istioctl",
            InstallerKind::Helm => "helm",
        }
    }
}

/// Where Helm finds Istio's charts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChartSource {
    /// A chart repository URL: charts are `--repo URL base|istiod|gateway`.
    Repo(String),
    /// A local directory holding `base/`, `istiod/` and `gateway/`.
    Dir(PathBuf),
}

/// Istio's official chart repository.
pub const ISTIO_CHART_REPO: &str = "https://istio-release.storage.googleapis.com/charts";

/// The Helm release names of Istio's charts (the docs' names by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmReleases {
    /// The `base` chart's release.
    #[serde(default = "default_base_release")]
    pub base: String,
    /// The `istiod` chart's release.
    #[serde(default = "default_istiod_release")]
    pub istiod: String,
    /// The east-west gateway's release (the `gateway` chart).
    #[serde(default = "default_eastwest_release")]
    pub eastwest: String,
}

fn default_base_release() -> String {
    "istio-base".into()
}
fn default_istiod_release() -> String {
    "istiod".into()
}
fn default_eastwest_release() -> String {
    "istio-eastwestgateway".into()
}

impl Default for HelmReleases {
    fn default() -> Self {
        HelmReleases {
            base: default_base_release(),
            istiod: default_istiod_release(),
            eastwest: default_eastwest_release(),
        }
    }
}

impl HelmReleases {
    fn is_default(&self) -> bool {
        *self == HelmReleases::default()
    }
}

/// One cluster of the mesh, as the spec describes it (the live cluster is
/// `cluster::Cluster`).
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
    /// Where its nodes are; checked in preflight when given.
    #[serde(default)]
    pub locality: Option<Locality>,
    /// What to do with an Istio this (non-source) cluster already runs:
    /// absent, preflight refuses such a cluster; `adopt` reconfigures it in
    /// place like the source, and rollback re-installs its values instead of
    /// uninstalling it.
    #[serde(default)]
    pub existing_mesh: Option<ExistingMesh>,
    /// The address other clusters reach this API server at
    /// (`https://host[:port]`): the server of the remote secrets that read
    /// it. Absent: the server of the kubeconfig `migrate` uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<String>,
    /// The TLS server name those remote secrets verify (Istio 1.26 and
    /// later), when the certificate does not name `apiServer`'s host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// A simulated cluster (all clusters on this machine): its API server
    /// is on loopback and that is fine. A real cluster's `apiServer` must be
    /// routable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub simulated: bool,
}

impl ClusterSpec {
    /// The spec says this cluster's pre-existing mesh is to be adopted.
    pub fn adopts_existing_mesh(&self) -> bool {
        self.existing_mesh == Some(ExistingMesh::Adopt)
    }
}

/// A cluster's `existingMesh`: what migrate may do with an Istio that runs
/// there before the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExistingMesh {
    /// Reconfigure it in place (snapshot of its values first); rollback puts
    /// those values back and never uninstalls it.
    Adopt,
}

/// A cluster's role in a primary-remote mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs istiod.
    Primary,
    /// Served by a primary's istiod.
    Remote,
}

/// Where a cluster's nodes are (`topology.kubernetes.io/region`, `zone`,
/// Istio's `subzone`), checked on its nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Locality {
    /// The region.
    pub region: String,
    /// The zone, if checked.
    #[serde(default)]
    pub zone: Option<String>,
    /// The subzone, if any.
    #[serde(default)]
    pub subzone: Option<String>,
}

/// The mesh's shared root of trust and the intermediates signed from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trust {
    /// Where the root comes from.
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

/// Where the shared root comes from.
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

/// A root to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRoot {
    /// `ecdsa-p256` when not given (the only choice today).
    #[serde(default)]
    pub algorithm: KeyAlgorithm,
    /// 3650 when not given.
    #[serde(default = "default_root_days")]
    pub validity_days: u32,
    /// The certificates' organisation (`O=`).
    pub org: String,
    /// How running workloads move to the new root.
    #[serde(default)]
    pub transition: RootTransition,
}

fn default_root_days() -> u32 {
    3650
}

/// The key algorithm of a generated root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA on P-256.
    #[default]
    EcdsaP256,
}

/// How running workloads move to a generated root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootTransition {
    /// Trust old+new, switch signer, drop old (no downtime). The default.
    #[default]
    MultiRoot,
    /// Switch at once and restart every injected workload (acknowledged downtime).
    RestartAll,
}

/// A root given as PEM files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootFiles {
    /// The root certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// Istio configuration written to the config clusters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Routing {
    /// Hosts exposed through the cross-network gateway (AUTO_PASSTHROUGH);
    /// empty means `*.local`. Only used when the mesh spans several networks.
    pub expose_hosts: Vec<String>,
    /// DestinationRules to write.
    pub destination_rules: Vec<DestinationRule>,
    /// VirtualServices, passed through.
    pub virtual_services: Vec<ObjectSpec>,
    /// ServiceEntries, passed through.
    pub service_entries: Vec<ObjectSpec>,
    /// ALLOW policies naming callers by service account; their principals
    /// are written for the trust domain and every alias, so callers keep
    /// access whichever trust domain their certificate carries.
    pub authorization_policies: Vec<AuthorizationPolicy>,
    /// Mesh-wide PeerAuthentication STRICT once every cluster trusts the shared root.
    pub strict_mtls: bool,
}

/// An ALLOW AuthorizationPolicy by caller service account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    /// Its name.
    pub name: String,
    /// Its namespace.
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

/// A DestinationRule with locality load balancing and outlier detection.
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
    /// Locality load balancing, if any.
    #[serde(default)]
    pub locality_lb: Option<LocalityLb>,
    /// Outlier detection, if any.
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
}

/// Istio's `localityLbSetting`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalityLb {
    /// Labels whose matches are preferred, in order (`failoverPriority`).
    #[serde(default)]
    pub failover_priority: Vec<String>,
    /// Region failover rules.
    #[serde(default)]
    pub failover: Vec<FailoverRule>,
}

/// A `failover` entry: from one region to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRule {
    /// The region whose traffic fails over.
    pub from: String,
    /// The region it fails over to.
    pub to: String,
}

/// Durations are kept as the user wrote them (`30s`, `1m30s`) after they were
/// checked to parse; Istio takes the same strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    /// `consecutive5xxErrors`.
    #[serde(default)]
    pub consecutive5xx_errors: Option<u32>,
    /// `consecutiveGatewayErrors`.
    #[serde(default)]
    pub consecutive_gateway_errors: Option<u32>,
    /// Ignored by Istio since 1.7; validation warns and the planner emits
    /// `consecutive5xxErrors` with this value instead (unless
    /// `consecutive5xxErrors` is also given: that one wins).
    #[serde(default)]
    pub consecutive_errors: Option<u32>,
    /// `interval`, a duration.
    #[serde(default)]
    pub interval: Option<String>,
    /// `baseEjectionTime`, a duration.
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    /// `maxEjectionPercent`.
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
}

/// A VirtualService or ServiceEntry given by the user: name, namespace,
/// target clusters and the Istio `spec` passed through as-is (the CRD
/// schema validates it on the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSpec {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Clusters it goes to; empty means every cluster.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// The Istio `spec`, as given.
    pub spec: serde_json::Value,
}

/// Prometheus and tracing settings per cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observability {
    /// Prometheus to label (and federate), if any.
    #[serde(default)]
    pub prometheus: Option<Prometheus>,
    /// Tracing to set, if any.
    #[serde(default)]
    pub tracing: Option<Tracing>,
}

/// The Prometheus configuration to label (and federate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prometheus {
    /// Add a federation scrape config for the other clusters; false when not given.
    #[serde(default)]
    pub federate: bool,
    /// Namespace and ConfigMap of the Prometheus configuration.
    #[serde(default = "default_prom_namespace")]
    pub namespace: String,
    /// The name of that ConfigMap.
    #[serde(default = "default_prom_configmap")]
    pub config_map: String,
}

fn default_prom_namespace() -> String {
    "istio-system".into()
}
fn default_prom_configmap() -> String {
    "prometheus".into()
}

/// Mesh-wide tracing to a Zipkin-compatible collector.
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

/// Which injected workloads are restarted when a cluster changes.
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

/// The failover drill: probe a service, drain one cluster, probe again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverTest {
    /// The Service the probe calls.
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

/// The Service the drill calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The port the probe calls.
    pub port: u16,
    /// HTTP path the probe calls; `/` when not given.
    #[serde(default = "default_service_path")]
    pub path: String,
}

fn default_service_path() -> String {
    "/".into()
}
