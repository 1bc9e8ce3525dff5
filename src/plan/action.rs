//! Actions: what a step does, as plain data. The schema is described in the
//! module documentation of [`crate::plan`].

use super::ObjectRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One thing the engine does against one cluster (or locally).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Action {
    /// Server-side apply, field manager `migrate`, forced, strict field
    /// validation. `secretData` values are references resolved when the
    /// action runs and written base64-encoded into `data.<key>`.
    #[serde(rename_all = "camelCase")]
    Apply {
        cluster: String,
        object: ObjectRef,
        manifest: Value,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        secret_data: BTreeMap<String, SecretSource>,
    },
    /// Delete if present (background propagation).
    Delete { cluster: String, object: ObjectRef },
    /// Delete every object of a kind with this name, in every namespace:
    /// what a controller wrote everywhere (istiod's `istio-ca-root-cert`
    /// ConfigMaps), when the cluster had none before.
    #[serde(rename_all = "camelCase")]
    DeleteEverywhere {
        cluster: String,
        api_version: String,
        kind: String,
        name: String,
    },
    /// JSON merge patch (labels and annotations included).
    Patch {
        cluster: String,
        object: ObjectRef,
        patch: Value,
    },
    /// Set `spec.replicas` through the scale subresource.
    Scale {
        cluster: String,
        target: ScaleTarget,
        replicas: u32,
    },
    /// Rollout restart: stamp the pod template (see the engine's restart
    /// stamp). With `onlyIfChanged`, only when the step replaced that object
    /// (in `cluster`) with different content: forward, when the step's
    /// snapshot of it (taken before its first change) was present and its
    /// `data` differs from the live one's; in a rollback, when the restore
    /// put back a present object that differs from what the step left.
    /// Absent (plans of older runs): always.
    #[serde(rename_all = "camelCase")]
    Restart {
        cluster: String,
        object: ObjectRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        only_if_changed: Option<ObjectRef>,
    },
    /// Rollout restart every Deployment, StatefulSet and DaemonSet of a
    /// namespace, then wait until each has rolled out.
    #[serde(rename_all = "camelCase")]
    RestartWorkloads {
        cluster: String,
        namespace: String,
        timeout_seconds: u64,
    },
    /// Wait until `condition` holds for `object`, at most `timeoutSeconds`.
    #[serde(rename_all = "camelCase")]
    Wait {
        cluster: String,
        object: ObjectRef,
        condition: Condition,
        timeout_seconds: u64,
    },
    /// Run the installer. `{file}` in `args` is replaced by the path of
    /// `file`, written to a private temporary directory.
    #[serde(rename_all = "camelCase")]
    Exec {
        cluster: String,
        program: String,
        args: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<GeneratedFile>,
        timeout_seconds: u64,
    },
    /// `helm upgrade --install RELEASE CHART` in `namespace` (installer
    /// helm). Its values file is the release's values of record (`helm get
    /// values`) with `values` merged over them when the action runs, so the
    /// user's other values stay. Before the step's first upgrade the
    /// release's deployed revision (or its absence) is journalled durably:
    /// `helm-rollback` returns to it. A record a killed helm left pending is
    /// cleared first; an upgrade that would change nothing is skipped.
    #[serde(rename_all = "camelCase")]
    HelmUpgrade {
        cluster: String,
        program: String,
        context: String,
        namespace: String,
        release: String,
        /// The chart: a name with `repo`, else a local chart directory.
        chart: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repo: Option<String>,
        /// The chart version (Istio's charts: the Istio version).
        version: String,
        values: Value,
        /// Placeholders in string `values` filled in when the action runs
        /// (a remote's `global.remotePilotAddress`: its primary's east-west
        /// gateway address).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        substitutions: Vec<Substitution>,
        timeout_seconds: u64,
    },
    /// Undo the step's `helm-upgrade` of `release`: `helm rollback` to the
    /// revision journalled before it, `helm uninstall` where it installed the
    /// release from nothing; nothing where it never ran.
    #[serde(rename_all = "camelCase")]
    HelmRollback {
        cluster: String,
        program: String,
        context: String,
        namespace: String,
        release: String,
        timeout_seconds: u64,
    },
    /// Edit the YAML document stored under `data.<key>` of a ConfigMap.
    #[serde(rename_all = "camelCase")]
    EditConfig {
        cluster: String,
        object: ObjectRef,
        key: String,
        edits: Vec<ConfigEdit>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        substitutions: Vec<Substitution>,
    },
    /// Work on this machine (CA files under certDir).
    Local { op: LocalOp },
    /// Create a Job in `cluster` that calls a service, read its log, and
    /// check where the answers came from.
    #[serde(rename_all = "camelCase")]
    Probe {
        cluster: String,
        job: ObjectRef,
        manifest: Value,
        requests: u32,
        expect: ProbeExpect,
        timeout_seconds: u64,
    },
    /// A read-only assertion; `cluster` absent means this machine.
    Check {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        check: Check,
    },
    /// Record the live object (or its absence) unless a snapshot exists
    /// already. For objects an installer changes behind the engine's back;
    /// the engine snapshots what it mutates itself anyway.
    Snapshot { cluster: String, object: ObjectRef },
    /// Put back the first snapshot of the object, or delete it when the
    /// snapshot recorded it absent.
    Restore { cluster: String, object: ObjectRef },
    /// Put back the replica counts recorded before the first `scale`.
    RestoreScale {
        cluster: String,
        target: ScaleTarget,
    },
}

/// What a `scale` acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScaleTarget {
    /// One Deployment (or StatefulSet).
    Object(ObjectRef),
    /// Every Deployment in the Service's namespace whose pod template
    /// labels match the Service's selector.
    ServiceBackends(ObjectRef),
}

/// Conditions a `wait` can wait for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "condition", rename_all = "kebab-case")]
pub enum Condition {
    /// Rolled out: observedGeneration current, every replica updated and available.
    DeploymentAvailable,
    /// `status.loadBalancer.ingress[]` has an ip or hostname.
    LoadBalancerAddress,
    /// The object exists.
    Present,
    /// The object does not exist.
    Absent,
    /// A Secret with every key non-empty (a token filled in by the controller).
    SecretHasKeys { keys: Vec<String> },
    /// A ConfigMap whose `key` holds every certificate of the `contains`
    /// files and none of the `lacks` files (PEM files under certDir).
    #[serde(rename_all = "camelCase")]
    ConfigMapHasRoots {
        key: String,
        contains: Vec<PathBuf>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lacks: Vec<PathBuf>,
    },
    /// istiod (the object) reports the remote cluster `synced`
    /// (`istioctl remote-clusters`: istiod debug/clusterz through a port-forward).
    RemoteClusterSynced { remote: String },
    /// The object carries the label with this value.
    Label { key: String, value: String },
    /// A Job finished with `Complete=True`.
    JobComplete,
    /// The backends of a Service (see `ScaleTarget::ServiceBackends`) have no ready pod.
    BackendsDrained,
    /// The backends of a Service are all available again.
    BackendsAvailable,
}

/// A file handed to the installer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedFile {
    pub name: String,
    pub content: FileContent,
}

/// Where the text of a generated file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FileContent {
    /// The text itself; `substitutions` are filled in at run time.
    #[serde(rename_all = "camelCase")]
    Inline {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        substitutions: Vec<Substitution>,
    },
    /// An IstioOperator whose `spec.values` is the JSON stored under `key`
    /// of a snapshotted ConfigMap (the `values` ConfigMap's
    /// `original-values`): re-installs what was there before. Skipped when
    /// the snapshot recorded the ConfigMap absent.
    #[serde(rename_all = "camelCase")]
    IstioOperatorFromSnapshot { object: ObjectRef, key: String },
}

/// A placeholder in generated text and the run-time value that replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Substitution {
    pub placeholder: String,
    pub value: RuntimeValue,
}

/// A value known only when the action runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum RuntimeValue {
    /// The first `status.loadBalancer.ingress[]` ip (or hostname) of a Service.
    LoadBalancerAddress { cluster: String, service: ObjectRef },
}

/// One change to a YAML document held in a ConfigMap key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum ConfigEdit {
    /// Set the value at `path`, creating maps on the way.
    Set { path: Vec<String>, value: Value },
    /// In the list at `path`, replace the item whose `matchKey` equals the
    /// new item's, or append it.
    #[serde(rename_all = "camelCase")]
    Upsert {
        path: Vec<String>,
        match_key: String,
        item: Value,
    },
}

/// Where a secret value comes from when the action runs. The plan holds
/// only the reference, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretSource {
    /// The content of a file (written 0600 under certDir by a `local` action).
    File(PathBuf),
    /// A kubeconfig for reading `cluster`, shaped as `istioctl
    /// create-remote-secret` writes it (FACTS 1.2): cluster, context and user
    /// all named `cluster`, the server of `context`, and `ca.crt` and
    /// `token` of `tokenSecret`.
    RemoteKubeconfig(Box<RemoteKubeconfig>),
}

/// A kubeconfig for a remote cluster, built at run time from a token Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteKubeconfig {
    pub cluster: String,
    pub context: String,
    pub token_secret: ObjectRef,
    /// The server other clusters reach `cluster` at (spec `apiServer`);
    /// absent: the server of the kubeconfig `migrate` reaches it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `tls-server-name` of the embedded cluster entry (spec `tlsServerName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
}

/// CA work on this machine. Keys are written 0600 under certDir; nothing
/// secret comes back into the plan or the state store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum LocalOp {
    /// Copy the live root (`ca-cert.pem`/`ca-key.pem` of `secret`, else of
    /// `fallback`) of `cluster` into `dir` as root-cert.pem and root-key.pem
    /// (FACTS 3.5 `fetch-root-ca`).
    FetchLiveRoot {
        cluster: String,
        secret: ObjectRef,
        fallback: ObjectRef,
        dir: PathBuf,
    },
    /// A new root (ECDSA P-256), `O=<org>, CN=Root CA`, into `dir`.
    #[serde(rename_all = "camelCase")]
    GenerateRoot {
        algorithm: String,
        org: String,
        validity_days: u32,
        dir: PathBuf,
    },
    /// Copy a root the user provides into `dir` after checking it is a CA
    /// whose key matches.
    ImportRoot {
        cert: PathBuf,
        key: PathBuf,
        dir: PathBuf,
    },
    /// Sign the intermediate of `cluster` with the root in `rootDir` and
    /// write the four `cacerts` files into `dir`; root-cert.pem holds the
    /// `trustedRoots` files concatenated.
    #[serde(rename_all = "camelCase")]
    SignIntermediate {
        cluster: String,
        root_dir: PathBuf,
        dir: PathBuf,
        org: String,
        validity_days: u32,
        trusted_roots: Vec<PathBuf>,
    },
    /// Write `cacerts` files into `dir` whose signer is taken from
    /// `signerDir` (a root directory: the root signs directly; or a
    /// directory of cacerts files: its intermediate) and whose root-cert.pem
    /// is `trustedRoots` concatenated. The steps of a multi-root transition.
    #[serde(rename_all = "camelCase")]
    BundleCacerts {
        cluster: String,
        signer_dir: PathBuf,
        dir: PathBuf,
        trusted_roots: Vec<PathBuf>,
    },
}

/// What a probe must see for the step to succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeExpect {
    /// Every request answered `Hello version: ..., instance: ...`.
    pub all_answered: bool,
    /// Answers came from at least this many clusters.
    pub min_clusters: u32,
    /// No answer came from these clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_from: Vec<String>,
}

/// Read-only assertions of the preflight phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum Check {
    /// The API server answers with the context's credentials.
    Reachable,
    /// The server's version is at least `atLeast`.
    #[serde(rename_all = "camelCase")]
    KubernetesVersion { at_least: String },
    /// `<program> version --remote=false` prints `expected`.
    InstallerVersion { program: String, expected: String },
    /// The mesh runs here: istiod exists and is available.
    MeshPresent { istiod: ObjectRef },
    /// istiod's image tag is `expected` (warning when it differs).
    IstioVersion { istiod: ObjectRef, expected: String },
    /// The CA mode: `self-signed` (istio-ca-secret, no cacerts) or
    /// `plugged-in` (cacerts); `any` reports it.
    #[serde(rename_all = "camelCase")]
    CaMode {
        expected: CaMode,
        ca_secret: ObjectRef,
        cacerts: ObjectRef,
    },
    /// Reports the cluster name istiod runs with today (`env` of the istiod
    /// container, `default` when unset) and that it will change.
    ClusterName {
        istiod: ObjectRef,
        env: String,
        default: String,
        planned: String,
    },
    /// The mesh config's trustDomain (key `mesh` of the ConfigMap) is `expected`.
    #[serde(rename_all = "camelCase")]
    TrustDomain {
        config_map: ObjectRef,
        expected: String,
    },
    /// No istiod runs here yet (an error otherwise, unless the spec adopts it).
    NoMesh { istiod: ObjectRef },
    /// Every pod of `namespace` runs the sidecar of the cluster's current
    /// identity: injected (when the namespace asks for injection) and with
    /// `ISTIO_META_CLUSTER_ID` = `cluster_id`. Pods keep what they were
    /// injected with until they restart (FACTS 4.1, 9).
    #[serde(rename_all = "camelCase")]
    WorkloadsCurrent {
        namespace: String,
        cluster_id: String,
    },
    /// The `istio-ca-root-cert` bundles of `namespace` in `clusters` share
    /// at least one root: without one, workloads of one cluster cannot
    /// verify the others' certificates and cross-cluster mTLS fails.
    RootsShared {
        namespace: String,
        clusters: Vec<String>,
    },
    /// The cluster's credentials allow every access the plan needs there
    /// (forward and rollback, every step), asked of the API server with one
    /// SelfSubjectAccessReview each; filled in when the plan is assembled
    /// (see [`crate::plan::permissions`]).
    Permissions {
        needs: Vec<super::permissions::Need>,
    },
    /// Reads the mesh the cluster runs (installer of record, revisions and
    /// tags, versions, data plane, CA, multi-cluster leftovers; control
    /// plane in `namespace`) and journals it. Refuses the ambient data
    /// plane, an installer of record other than `installer` (None: a
    /// cluster that runs no mesh yet) and a CA the `trust` mode
    /// (`adopt`, `generate`, `files`) cannot work with; warns about
    /// leftovers of a multi-cluster mesh.
    MeshInventory {
        namespace: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        installer: Option<String>,
        trust: String,
    },
    /// The meshes of `clusters` run the same Istio minor version (a
    /// warning otherwise).
    VersionSkew {
        namespace: String,
        clusters: Vec<String>,
    },
    /// Some node carries these topology labels.
    NodeLocality {
        region: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
    },
    /// A phase's gate: the mesh verifier's rule `groups` (named as `migrate
    /// check --group` takes them) over every cluster of `expectations`, after
    /// the phase's steps. Error findings fail the step; warnings are
    /// journalled and pass. Reads only.
    Gate {
        groups: Vec<String>,
        expectations: GateExpectations,
    },
}

/// What a gate expects of the mesh: what the spec says, as plain data (the
/// engine turns it into the verifier's expectations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateExpectations {
    /// The control plane's namespace.
    pub namespace: String,
    /// The meshID every cluster shares.
    pub mesh_id: String,
    /// `multi-primary` or `primary-remote` (as the plan header says).
    pub topology: String,
    /// The control plane revision; none: the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The Istio version every cluster runs.
    pub istio_version: String,
    /// Every cluster of the mesh, in spec order.
    pub clusters: Vec<GateCluster>,
}

/// One cluster as a gate expects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateCluster {
    /// Its name in the plan, which is also its Istio clusterName.
    pub name: String,
    /// Its network (multi-network meshes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Led by another cluster's istiod (primary-remote).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remote: bool,
    /// For a remote: the cluster whose istiod leads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// The API server address other clusters' istiods dial (spec `apiServer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<String>,
}

impl GateExpectations {
    /// Whether the clusters are on more than one network.
    pub fn multi_network(&self) -> bool {
        let networks: std::collections::BTreeSet<&str> = self
            .clusters
            .iter()
            .filter_map(|c| c.network.as_deref())
            .collect();
        networks.len() > 1
    }
}

/// One access a SelfSubjectAccessReview asks about (RBAC attributes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    pub verb: String,
    /// The API group; empty for the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The resource, plural and lowercase (`deployments`).
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    /// None: a cluster-scoped resource, or every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// An access the plan needs on one cluster, and why: the steps needing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Need {
    #[serde(flatten)]
    pub access: Access,
    pub steps: Vec<String>,
}

impl Access {
    /// An access to `resource` (plural) of `group`; `namespace` None: cluster-scoped or every namespace.
    pub fn new(verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> Access {
        Access {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: None,
            namespace: namespace.map(str::to_string),
        }
    }

    /// The same access to a subresource (`scale`, `log`, `proxy`).
    pub fn with_subresource(mut self, subresource: &str) -> Access {
        self.subresource = Some(subresource.into());
        self
    }

    /// `kubectl`'s spelling: `deployments.apps/scale`, `secrets`.
    pub fn resource_name(&self) -> String {
        let mut out = self.resource.clone();
        if !self.group.is_empty() {
            out.push('.');
            out.push_str(&self.group);
        }
        if let Some(sub) = &self.subresource {
            out.push('/');
            out.push_str(sub);
        }
        out
    }
}

/// The kind of CA a cluster's istiod runs, as a `ca-mode` check expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaMode {
    SelfSigned,
    PluggedIn,
    Any,
}

impl Action {
    /// The cluster the action runs against; `None` for work on this machine.
    pub fn cluster(&self) -> Option<&str> {
        match self {
            Action::Apply { cluster, .. }
            | Action::Delete { cluster, .. }
            | Action::DeleteEverywhere { cluster, .. }
            | Action::Patch { cluster, .. }
            | Action::Scale { cluster, .. }
            | Action::Restart { cluster, .. }
            | Action::RestartWorkloads { cluster, .. }
            | Action::Wait { cluster, .. }
            | Action::Exec { cluster, .. }
            | Action::HelmUpgrade { cluster, .. }
            | Action::HelmRollback { cluster, .. }
            | Action::EditConfig { cluster, .. }
            | Action::Probe { cluster, .. }
            | Action::Snapshot { cluster, .. }
            | Action::Restore { cluster, .. }
            | Action::RestoreScale { cluster, .. } => Some(cluster),
            Action::Check { cluster, .. } => cluster.as_deref(),
            Action::Local { op } => match op {
                LocalOp::FetchLiveRoot { cluster, .. } => Some(cluster),
                _ => None,
            },
        }
    }

    /// Every cluster the action reaches: its own, or the clusters a gate reads.
    pub fn clusters(&self) -> Vec<&str> {
        match self {
            Action::Check {
                check: Check::Gate { expectations, .. },
                ..
            } => expectations
                .clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect(),
            _ => self.cluster().into_iter().collect(),
        }
    }

    /// The action kind as it appears in `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Apply { .. } => "apply",
            Action::Delete { .. } => "delete",
            Action::DeleteEverywhere { .. } => "delete-everywhere",
            Action::Patch { .. } => "patch",
            Action::Scale { .. } => "scale",
            Action::Restart { .. } => "restart",
            Action::RestartWorkloads { .. } => "restart-workloads",
            Action::Wait { .. } => "wait",
            Action::Exec { .. } => "exec",
            Action::HelmUpgrade { .. } => "helm-upgrade",
            Action::HelmRollback { .. } => "helm-rollback",
            Action::EditConfig { .. } => "edit-config",
            Action::Local { .. } => "local",
            Action::Probe { .. } => "probe",
            Action::Check { .. } => "check",
            Action::Snapshot { .. } => "snapshot",
            Action::Restore { .. } => "restore",
            Action::RestoreScale { .. } => "restore-scale",
        }
    }

    /// Changes something in a cluster (and so needs a way back).
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Action::Apply { .. }
                | Action::Delete { .. }
                | Action::DeleteEverywhere { .. }
                | Action::Patch { .. }
                | Action::Scale { .. }
                | Action::Restart { .. }
                | Action::RestartWorkloads { .. }
                | Action::Exec { .. }
                | Action::HelmUpgrade { .. }
                | Action::HelmRollback { .. }
                | Action::EditConfig { .. }
                | Action::Probe { .. }
        )
    }

    /// The object the action is about, when it is about one.
    pub fn object(&self) -> Option<&ObjectRef> {
        match self {
            Action::Apply { object, .. }
            | Action::Delete { object, .. }
            | Action::Patch { object, .. }
            | Action::Restart { object, .. }
            | Action::Wait { object, .. }
            | Action::EditConfig { object, .. }
            | Action::Snapshot { object, .. }
            | Action::Restore { object, .. } => Some(object),
            Action::Probe { job, .. } => Some(job),
            Action::Scale { target, .. } | Action::RestoreScale { target, .. } => match target {
                ScaleTarget::Object(o) | ScaleTarget::ServiceBackends(o) => Some(o),
            },
            _ => None,
        }
    }

    /// A rough duration in seconds for the critical-path estimate: what the
    /// action usually takes on a healthy cluster, not its timeout.
    pub fn estimated_seconds(&self) -> u64 {
        match self {
            Action::Apply { .. }
            | Action::Delete { .. }
            | Action::DeleteEverywhere { .. }
            | Action::Patch { .. }
            | Action::Scale { .. }
            | Action::Restart { .. }
            | Action::EditConfig { .. }
            | Action::Snapshot { .. }
            | Action::Restore { .. }
            | Action::RestoreScale { .. }
            | Action::Check { .. }
            | Action::Local { .. } => 1,
            Action::RestartWorkloads { .. } => 60,
            Action::Wait { condition, .. } => match condition {
                Condition::DeploymentAvailable | Condition::BackendsAvailable => 30,
                Condition::LoadBalancerAddress => 20,
                Condition::RemoteClusterSynced { .. } => 15,
                Condition::ConfigMapHasRoots { .. } => 10,
                Condition::BackendsDrained => 15,
                Condition::JobComplete => 20,
                _ => 2,
            },
            Action::Exec { .. } | Action::HelmUpgrade { .. } | Action::HelmRollback { .. } => 60,
            Action::Probe { .. } => 30,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_serialise_with_stable_tags() {
        let a = Action::Wait {
            cluster: "cluster1".into(),
            object: ObjectRef::deployment("istio-system", "istiod"),
            condition: Condition::DeploymentAvailable,
            timeout_seconds: 300,
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["type"], "wait");
        assert_eq!(v["condition"]["condition"], "deployment-available");
        assert_eq!(v["timeoutSeconds"], 300);
        assert_eq!(v["object"]["apiVersion"], "apps/v1");
        let back: Action = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn a_stored_restart_without_its_condition_is_unconditional() {
        // Plans stored by runs before `onlyIfChanged` existed.
        let stored = json!({
            "type": "restart", "cluster": "c1",
            "object": {"apiVersion": "apps/v1", "kind": "Deployment",
                       "namespace": "istio-system", "name": "istiod"},
        });
        let a: Action = serde_json::from_value(stored.clone()).unwrap();
        assert!(matches!(
            &a,
            Action::Restart {
                only_if_changed: None,
                ..
            }
        ));
        assert_eq!(serde_json::to_value(&a).unwrap(), stored);
        let conditional = Action::Restart {
            cluster: "c1".into(),
            object: ObjectRef::deployment("istio-system", "istiod"),
            only_if_changed: Some(ObjectRef::secret("istio-system", "istio-remote-secret-c2")),
        };
        let v = serde_json::to_value(&conditional).unwrap();
        assert_eq!(v["onlyIfChanged"]["name"], "istio-remote-secret-c2");
        assert_eq!(serde_json::from_value::<Action>(v).unwrap(), conditional);
    }

    #[test]
    fn secret_sources_are_references() {
        let a = Action::Apply {
            cluster: "cluster2".into(),
            object: ObjectRef::secret("istio-system", "cacerts"),
            manifest: json!({"apiVersion": "v1", "kind": "Secret"}),
            secret_data: BTreeMap::from([(
                "ca-key.pem".to_string(),
                SecretSource::File("./certs/cluster2/ca-key.pem".into()),
            )]),
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v["secretData"]["ca-key.pem"]["file"],
            "./certs/cluster2/ca-key.pem"
        );
        assert_eq!(
            a.to_string(),
            "apply Secret istio-system/cacerts @cluster2 data [ca-key.pem<-file ./certs/cluster2/ca-key.pem]"
        );
    }
}
