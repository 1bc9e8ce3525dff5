//! The permissions a plan needs, derived from its actions: per cluster, every
//! (verb, group, resource, subresource, namespace) that the engine's calls
//! for every forward, finally and rollback action of every step make, with
//! the steps that need it. Preflight asks each API server about them
//! (SelfSubjectAccessReview) before anything changes anywhere.
//!
//! The mapping follows what the engine really calls (src/engine/action.rs,
//! checks.rs, conditions.rs, probe.rs, src/cluster/ops.rs and wait.rs):
//! a permission the engine uses that is missing here is a bug.

pub use super::{Access, Need};
use super::{Action, Check, Condition, FileContent, LocalOp, ObjectRef, ScaleTarget, Step};
use super::{RuntimeValue, SecretSource, Substitution};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Every cluster's needs for these steps, one per distinct access (so one
/// review each), sorted by access. `clusters` are the plan's clusters: a probe reads
/// the pods of every one of them.
pub fn needs(steps: &[Step], clusters: &[String]) -> BTreeMap<String, Vec<Need>> {
    // Steps in the order given (phase by phase): the first named is the
    // first that would fail.
    let mut found: BTreeMap<String, BTreeMap<Access, Vec<String>>> = BTreeMap::new();
    for step in steps {
        for action in step
            .forward
            .iter()
            .chain(&step.finally)
            .chain(&step.rollback)
        {
            for (cluster, access) in action_needs(action, clusters) {
                let named = found.entry(cluster).or_default().entry(access).or_default();
                if !named.contains(&step.id) {
                    named.push(step.id.clone());
                }
            }
        }
    }
    // Every run records which cluster each context reaches: the uid of
    // Namespace kube-system (engine::identity), before any step.
    for accesses in found.values_mut() {
        let named = accesses
            .entry(Access::new(GET, "", "namespaces", None))
            .or_default();
        named.push("cluster identity".into());
        // The mesh's claim (engine::mesh_lease): read, created or taken over, renewed, deleted at the end.
        for verb in [GET, CREATE, UPDATE, DELETE] {
            accesses
                .entry(Access::new(
                    verb,
                    "coordination.k8s.io",
                    "leases",
                    Some(MESH_LEASE_NAMESPACE),
                ))
                .or_default()
                .push("mesh lease".into());
        }
    }
    found
        .into_iter()
        .map(|(cluster, accesses)| {
            let needs = accesses
                .into_iter()
                .map(|(access, steps)| Need { access, steps })
                .collect();
            (cluster, needs)
        })
        .collect()
}

/// What one action needs, per cluster (an action may read another cluster:
/// a remote secret's token, a probe's pod owners).
pub fn action_needs(action: &Action, clusters: &[String]) -> Vec<(String, Access)> {
    let mut out = Needs::default();
    match action {
        Action::Apply {
            cluster,
            object,
            secret_data,
            ..
        } => {
            // Snapshot, then server-side apply: a patch that creates the
            // object when missing, which the API server authorises as create.
            out.object(cluster, object, &[GET, CREATE, PATCH]);
            for source in secret_data.values() {
                if let SecretSource::RemoteKubeconfig(remote) = source {
                    out.object(&remote.cluster, &remote.token_secret, &[GET]);
                }
            }
        }
        Action::Delete { cluster, object } => out.object(cluster, object, &[GET, DELETE]),
        Action::DeleteEverywhere {
            cluster,
            api_version,
            kind,
            ..
        } => {
            let all = ObjectRef::new(api_version, kind, None, "*");
            out.object(cluster, &all, &[LIST, DELETE]);
        }
        Action::Patch {
            cluster, object, ..
        } => out.object(cluster, object, &[GET, PATCH]),
        Action::Scale {
            cluster, target, ..
        }
        | Action::RestoreScale { cluster, target } => out.scale(cluster, target),
        Action::Restart {
            cluster,
            object,
            only_if_changed,
        } => {
            out.object(cluster, object, &[PATCH]);
            // The forward decision reads the object live.
            if let Some(changed) = only_if_changed {
                out.object(cluster, changed, &[GET]);
            }
        }
        Action::RestartWorkloads {
            cluster, namespace, ..
        } => {
            // List the Deployments, stamp each, watch each roll out.
            let d = deployments(namespace);
            out.object(cluster, &d, &[LIST, PATCH]);
            out.watched(cluster, &d);
        }
        Action::Wait {
            cluster,
            object,
            condition,
            ..
        } => out.wait(cluster, object, condition),
        Action::Exec {
            cluster,
            args,
            file,
            program: _,
            timeout_seconds: _,
        } => {
            out.installer(cluster, args, file.as_ref().map(|f| &f.content));
            if let Some(FileContent::Inline { substitutions, .. }) =
                file.as_ref().map(|f| &f.content)
            {
                out.substitutions(substitutions);
            }
        }
        Action::HelmUpgrade {
            cluster,
            namespace,
            substitutions,
            ..
        } => {
            out.substitutions(substitutions);
            out.helm(cluster, namespace, false);
        }
        Action::HelmRollback {
            cluster, namespace, ..
        } => out.helm(cluster, namespace, true),
        Action::EditConfig {
            cluster,
            object,
            substitutions,
            ..
        } => {
            out.object(cluster, object, &[GET, PATCH]);
            out.substitutions(substitutions);
        }
        Action::Local { op } => {
            if let LocalOp::FetchLiveRoot {
                cluster,
                secret,
                fallback,
                ..
            } = op
            {
                out.object(cluster, secret, &[GET]);
                out.object(cluster, fallback, &[GET]);
            }
        }
        Action::Probe { cluster, job, .. } => {
            // The old Job deleted and its absence awaited, the new one
            // applied and awaited, its pod listed and its log read; every
            // cluster's pods tell who answered.
            out.object(cluster, job, &[GET, DELETE, CREATE, PATCH]);
            out.watched(cluster, job);
            let ns = job.namespace.as_deref();
            let pods = ObjectRef::new("v1", "Pod", ns, "*");
            out.object(cluster, &pods, &[LIST]);
            out.push(
                cluster,
                Access::new(GET, "", "pods", ns).with_subresource("log"),
            );
            for c in clusters {
                out.object(c, &pods, &[LIST]);
            }
        }
        Action::Check { cluster, check } => match (cluster, check) {
            (Some(cluster), _) => out.check(cluster, check),
            // Checks across clusters name their clusters themselves.
            (None, Check::RootsShared { .. } | Check::VersionSkew { .. } | Check::Gate { .. }) => {
                out.check("", check)
            }
            (None, _) => {}
        },
        Action::Snapshot { cluster, object } => out.object(cluster, object, &[GET]),
        // Read, then recreate (create), put back (PUT: update) or delete.
        Action::Restore { cluster, object } => {
            out.object(cluster, object, &[GET, CREATE, UPDATE, DELETE])
        }
    }
    out.0
}

const GET: &str = "get";
const LIST: &str = "list";
const WATCH: &str = "watch";
const CREATE: &str = "create";
const PATCH: &str = "patch";
const UPDATE: &str = "update";
const DELETE: &str = "delete";

#[derive(Default)]
struct Needs(Vec<(String, Access)>);

impl Needs {
    fn push(&mut self, cluster: &str, access: Access) {
        self.0.push((cluster.to_string(), access));
    }

    fn object(&mut self, cluster: &str, object: &ObjectRef, verbs: &[&str]) {
        let (group, _) = object.group_version();
        let resource = plural(&object.kind);
        for verb in verbs {
            self.push(
                cluster,
                Access::new(verb, group, &resource, object.namespace.as_deref()),
            );
        }
    }

    /// A wait: a watch on the collection (list, then watch, as kube's
    /// `await_condition` does), and a read of the object when it times out.
    fn watched(&mut self, cluster: &str, object: &ObjectRef) {
        self.object(cluster, object, &[GET, LIST, WATCH]);
    }

    fn wait(&mut self, cluster: &str, object: &ObjectRef, condition: &Condition) {
        match condition {
            // istioctl remote-clusters' source: istiod's debug endpoint, on a
            // pod the Deployment selects, through a port-forward.
            Condition::RemoteClusterSynced { .. } => {
                let ns = object.namespace.as_deref();
                self.object(cluster, object, &[GET]);
                self.push(cluster, Access::new(LIST, "", "pods", ns));
                self.push(
                    cluster,
                    Access::new(CREATE, "", "pods", ns).with_subresource("portforward"),
                );
            }
            // The Service's selector, the namespace's Deployments, a watch on each.
            Condition::BackendsDrained | Condition::BackendsAvailable => {
                self.object(cluster, object, &[GET]);
                let d = deployments(object.namespace.as_deref().unwrap_or_default());
                self.object(cluster, &d, &[LIST]);
                self.watched(cluster, &d);
            }
            _ => self.watched(cluster, object),
        }
    }

    /// Scale targets are read (snapshot, replicas) and scaled through the
    /// scale subresource; a Service's backends are found from its selector.
    fn scale(&mut self, cluster: &str, target: &ScaleTarget) {
        let object = match target {
            ScaleTarget::Object(o) => o.clone(),
            ScaleTarget::ServiceBackends(service) => {
                self.object(cluster, service, &[GET]);
                let d = deployments(service.namespace.as_deref().unwrap_or_default());
                self.object(cluster, &d, &[LIST]);
                d
            }
        };
        self.object(cluster, &object, &[GET]);
        let (group, _) = object.group_version();
        let ns = object.namespace.as_deref();
        self.push(
            cluster,
            Access::new(PATCH, group, &plural(&object.kind), ns).with_subresource("scale"),
        );
    }

    /// A helm upgrade or rollback of a release in `namespace`: what the
    /// chart renders, as an install writes it (a rollback re-applies an
    /// older manifest, an uninstall deletes), and Helm's release records:
    /// Secrets listed by label, written, replaced and (a pending one, an
    /// uninstall) deleted.
    fn helm(&mut self, cluster: &str, namespace: &str, rollback: bool) {
        self.installer(cluster, &["install".into()], None);
        let records = ObjectRef::new("v1", "Secret", Some(namespace), "*");
        self.object(
            cluster,
            &records,
            &[GET, LIST, CREATE, PATCH, UPDATE, DELETE],
        );
        // Istio's CRDs listed before an install, and those it brought
        // deleted with the release (Helm keeps them).
        let (crd_group, crds) = CRDS;
        self.push(cluster, Access::new(LIST, crd_group, crds, None));
        if rollback {
            self.push(cluster, Access::new(DELETE, crd_group, crds, None));
        }
    }

    fn substitutions(&mut self, substitutions: &[Substitution]) {
        for s in substitutions {
            let RuntimeValue::LoadBalancerAddress { cluster, service } = &s.value;
            self.object(cluster, service, &[GET]);
        }
    }

    fn check(&mut self, cluster: &str, check: &Check) {
        match check {
            // /version and the reviews themselves are open to every authenticated user.
            Check::Reachable
            | Check::KubernetesVersion { .. }
            | Check::InstallerVersion { .. }
            | Check::Permissions { .. } => {}
            Check::MeshPresent { istiod }
            | Check::IstioVersion { istiod, .. }
            | Check::ClusterName { istiod, .. } => self.object(cluster, istiod, &[GET]),
            Check::NoMesh { istiod } => {
                self.object(cluster, istiod, &[GET]);
                // Revisioned control planes (`istiod-<rev>`) are found by label.
                let namespace = istiod.namespace.as_deref().unwrap_or_default();
                let all = ObjectRef::namespaced("apps/v1", "Deployment", namespace, "*");
                self.object(cluster, &all, &[LIST]);
            }
            Check::CaMode {
                ca_secret, cacerts, ..
            } => {
                self.object(cluster, ca_secret, &[GET]);
                self.object(cluster, cacerts, &[GET]);
            }
            Check::TrustDomain { config_map, .. } => self.object(cluster, config_map, &[GET]),
            Check::WorkloadsCurrent { namespace, .. } => {
                self.object(cluster, &ObjectRef::namespace(namespace), &[GET]);
                let pods = ObjectRef::namespaced("v1", "Pod", namespace, "*");
                self.object(cluster, &pods, &[LIST]);
            }
            Check::RootsShared {
                namespace,
                clusters,
            } => {
                let cm = ObjectRef::config_map(namespace, "istio-ca-root-cert");
                for c in clusters {
                    self.object(c, &cm, &[GET]);
                }
            }
            Check::MeshInventory { namespace, .. } => self.inventory(cluster, namespace),
            Check::VersionSkew {
                namespace,
                clusters,
            } => {
                let d = deployments(namespace);
                for c in clusters {
                    self.object(c, &d, &[LIST]);
                }
            }
            Check::NodeLocality { .. } => {
                self.object(
                    cluster,
                    &ObjectRef::cluster_scoped("v1", "Node", "*"),
                    &[LIST],
                );
            }
            Check::Gate { expectations, .. } => {
                for c in &expectations.clusters {
                    self.verifier(&c.name, &expectations.namespace);
                }
            }
        }
    }

    /// What the mesh verifier (`crate::check`'s snapshot) reads of one
    /// cluster, whichever rules run: the mesh inventory, the control
    /// plane's ConfigMaps, Gateways, DestinationRules, Pods and Services in
    /// every namespace, the reader ServiceAccount and the ClusterRoles and
    /// bindings, and istiod's peers through a port-forward to its pod.
    fn verifier(&mut self, cluster: &str, namespace: &str) {
        self.inventory(cluster, namespace);
        let config_maps = ObjectRef::namespaced("v1", "ConfigMap", namespace, "*");
        self.object(cluster, &config_maps, &[LIST]);
        for (api_version, kind) in [
            ("networking.istio.io/v1", "Gateway"),
            ("networking.istio.io/v1", "DestinationRule"),
            ("v1", "Pod"),
            ("v1", "Service"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ] {
            let all = ObjectRef::new(api_version, kind, None, "*");
            self.object(cluster, &all, &[LIST]);
        }
        let reader = ObjectRef::namespaced("v1", "ServiceAccount", namespace, "*");
        self.object(cluster, &reader, &[GET]);
        // istiod's debug/clusterz: its Deployment, a pod of it, a port-forward.
        self.object(cluster, &deployments(namespace), &[GET]);
        let ns = Some(namespace);
        self.push(cluster, Access::new(LIST, "", "pods", ns));
        self.push(
            cluster,
            Access::new(CREATE, "", "pods", ns).with_subresource("portforward"),
        );
    }

    /// What reading a cluster's mesh inventory reads: the control plane's
    /// namespace and its Deployments, DaemonSets, Services and Secrets
    /// (Helm's release records, remote secrets, the two CA Secrets), every
    /// namespace and mutating webhook. The Sail operator's kinds are
    /// listed only where discovery (open to every user) shows them.
    fn inventory(&mut self, cluster: &str, namespace: &str) {
        self.object(cluster, &ObjectRef::namespace(namespace), &[GET]);
        for (api_version, kind) in [
            ("apps/v1", "Deployment"),
            ("apps/v1", "DaemonSet"),
            ("v1", "Service"),
            ("v1", "Secret"),
        ] {
            let all = ObjectRef::namespaced(api_version, kind, namespace, "*");
            self.object(cluster, &all, &[LIST]);
        }
        for name in ["istio-ca-secret", "cacerts"] {
            self.object(cluster, &ObjectRef::secret(namespace, name), &[GET]);
        }
        for (api_version, kind) in [
            ("v1", "Namespace"),
            (
                "admissionregistration.k8s.io/v1",
                "MutatingWebhookConfiguration",
            ),
        ] {
            let all = ObjectRef::cluster_scoped(api_version, kind, "*");
            self.object(cluster, &all, &[LIST]);
        }
    }

    /// The installer's footprint: what `istioctl install` / `uninstall`
    /// (and the test stand-in that mirrors them) read and
    /// write with the cluster's credentials. Both apply what the
    /// profile renders (CRDs, webhooks, cluster roles and bindings, and the
    /// control plane's Deployments, Services, ConfigMaps, ServiceAccounts,
    /// Roles, bindings, PDBs and HPAs in its namespace), wait for the
    /// Deployments, and prune: list every kind below across all namespaces
    /// by label and delete what matches; `--purge` removes the CRDs too.
    fn installer(&mut self, cluster: &str, args: &[String], file: Option<&FileContent>) {
        let mut namespaces = BTreeSet::from([CONTROL_PLANE_NAMESPACE.to_string()]);
        if let Some(FileContent::Inline { text, .. }) = file {
            namespaces.extend(operator_namespaces(text));
        }
        let install = args.first().map(String::as_str) == Some("install");
        let purge = args.iter().any(|a| a == "--purge");
        let written: &[&str] = if install {
            &[GET, CREATE, PATCH, DELETE]
        } else {
            &[DELETE]
        };
        for (group, resource) in INSTALLER_NAMESPACED {
            self.push(cluster, Access::new(LIST, group, resource, None));
            for ns in &namespaces {
                for verb in written {
                    self.push(cluster, Access::new(verb, group, resource, Some(ns)));
                }
            }
        }
        for (group, resource) in INSTALLER_CLUSTER {
            self.push(cluster, Access::new(LIST, group, resource, None));
            for verb in written {
                self.push(cluster, Access::new(verb, group, resource, None));
            }
        }
        let (crd_group, crds) = CRDS;
        if install {
            for verb in [GET, CREATE, PATCH] {
                self.push(cluster, Access::new(verb, crd_group, crds, None));
            }
            for verb in [GET, CREATE] {
                self.push(cluster, Access::new(verb, "", "namespaces", None));
            }
            for ns in &namespaces {
                let d = deployments(ns);
                self.object(cluster, &d, &[LIST, WATCH]);
            }
        }
        if purge {
            for verb in [LIST, DELETE] {
                self.push(cluster, Access::new(verb, crd_group, crds, None));
            }
        }
    }
}

/// Where the mesh's Lease lives on every cluster (engine::mesh_lease): kube-system exists everywhere, also on a
/// cluster the mesh is being extended to.
pub const MESH_LEASE_NAMESPACE: &str = "kube-system";

/// The control plane's namespace (FACTS 1.4).
const CONTROL_PLANE_NAMESPACE: &str = "istio-system";

/// Namespaced kinds the installer writes and prunes (istioctl's pruner list).
const INSTALLER_NAMESPACED: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("apps", "daemonsets"),
    ("", "services"),
    ("discovery.k8s.io", "endpointslices"),
    ("", "configmaps"),
    ("", "pods"),
    ("", "secrets"),
    ("", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "roles"),
    ("policy", "poddisruptionbudgets"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("networking.istio.io", "envoyfilters"),
    ("coordination.k8s.io", "leases"),
];

/// Cluster-scoped kinds the installer writes and prunes.
const INSTALLER_CLUSTER: &[(&str, &str)] = &[
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
];

const CRDS: (&str, &str) = ("apiextensions.k8s.io", "customresourcedefinitions");

fn deployments(namespace: &str) -> ObjectRef {
    ObjectRef::namespaced("apps/v1", "Deployment", namespace, "*")
}

/// Namespaces an IstioOperator puts things in: its own and its components'.
fn operator_namespaces(text: &str) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("namespace", Value::String(ns)) if !ns.is_empty() => out.push(ns.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    // Text that is not YAML fails the installer anyway; it needs nothing more.
    if let Ok(doc) = serde_yaml::from_str::<Value>(text) {
        walk(&doc, &mut out);
    }
    out
}

/// The resource name of a kind, as the API server pluralises built-in and
/// Istio kinds: lowercase, then `-es` after s/x/z/ch/sh, `-ies` for a
/// consonant and y, `-s` otherwise (kube-core's rule).
pub fn plural(kind: &str) -> String {
    let word = kind.to_ascii_lowercase();
    if word == "endpoints" {
        return word;
    }
    if word.ends_with(['s', 'x', 'z']) || word.ends_with("ch") || word.ends_with("sh") {
        return format!("{word}es");
    }
    if let Some(stem) = word.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    format!("{word}s")
}

#[cfg(test)]
mod tests;
