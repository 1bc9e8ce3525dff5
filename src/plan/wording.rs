//! The plan's wording: one line of English per action (`migrate plan`'s
//! text view, the progress lines, the journal). Kept apart from the data
//! types in `action.rs`; a description is not part of the fingerprint.

use super::action::{
    Action, CaMode, Check, Condition, ConfigEdit, FileContent, LocalOp, RuntimeValue, ScaleTarget,
    SecretSource, Substitution,
};
use serde_json::Value;
use std::fmt;
use std::path::PathBuf;

fn duration(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// One line per action: `apply Secret istio-system/cacerts @cluster2`.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Apply {
                cluster,
                object,
                manifest,
                secret_data,
            } => {
                write!(f, "apply {object} @{cluster}")?;
                let labels = manifest
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object);
                if object.kind == "Namespace"
                    && let Some(labels) = labels
                {
                    let text: Vec<String> = labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    write!(f, " labels {}", text.join(","))?;
                    if let Some(ann) = manifest
                        .pointer("/metadata/annotations")
                        .and_then(Value::as_object)
                    {
                        let text: Vec<String> = ann
                            .iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                            .collect();
                        write!(f, " annotations {}", text.join(","))?;
                    }
                }
                if !secret_data.is_empty() {
                    let refs: Vec<String> = secret_data
                        .iter()
                        .map(|(k, v)| format!("{k}<-{v}"))
                        .collect();
                    write!(f, " data [{}]", refs.join(", "))?;
                }
                Ok(())
            }
            Action::Delete { cluster, object } => write!(f, "delete {object} @{cluster}"),
            Action::DeleteEverywhere {
                cluster,
                kind,
                name,
                ..
            } => write!(
                f,
                "delete every {kind} named {name} (all namespaces) @{cluster}"
            ),
            Action::Patch {
                cluster,
                object,
                patch,
            } => write!(f, "patch {object} @{cluster} {patch}"),
            Action::Scale {
                cluster,
                target,
                replicas,
            } => write!(f, "scale {target} @{cluster} to {replicas}"),
            Action::Restart {
                cluster,
                object,
                only_if_changed: None,
            } => write!(f, "restart {object} @{cluster}"),
            Action::Restart {
                cluster,
                object,
                only_if_changed: Some(changed),
            } => write!(
                f,
                "restart {object} @{cluster} if the step replaced a different {changed}"
            ),
            Action::RestartWorkloads {
                cluster, namespace, ..
            } => write!(f, "restart workloads in namespace {namespace} @{cluster}"),
            Action::Wait {
                cluster,
                object,
                condition,
                timeout_seconds,
            } => write!(
                f,
                "wait {object} {condition} @{cluster} (timeout {})",
                duration(*timeout_seconds)
            ),
            Action::HelmUpgrade {
                cluster,
                program,
                namespace,
                release,
                chart,
                repo,
                version,
                values,
                substitutions,
                ..
            } => {
                write!(f, "{program} upgrade --install {release} {chart}")?;
                if let Some(repo) = repo {
                    write!(f, " --repo {repo}")?;
                }
                write!(
                    f,
                    " --version {version} -n {namespace} @{cluster}, values {values} over the release's"
                )?;
                if !substitutions.is_empty() {
                    let subs: Vec<String> = substitutions.iter().map(ToString::to_string).collect();
                    write!(f, " with {}", subs.join(", "))?;
                }
                Ok(())
            }
            Action::HelmRollback {
                cluster,
                program,
                namespace,
                release,
                ..
            } => write!(
                f,
                "{program} rollback {release} -n {namespace} @{cluster} to the revision recorded before this step (uninstall where the step installed it)"
            ),
            Action::Exec {
                cluster,
                program,
                args,
                file,
                ..
            } => {
                let shown: Vec<String> = args
                    .iter()
                    .map(|a| match file {
                        Some(file) if a == "{file}" => file.name.clone(),
                        _ => a.clone(),
                    })
                    .collect();
                write!(f, "exec {program} {} @{cluster}", shown.join(" "))?;
                match file.as_ref().map(|file| &file.content) {
                    Some(FileContent::Inline { substitutions, .. })
                        if !substitutions.is_empty() =>
                    {
                        let subs: Vec<String> =
                            substitutions.iter().map(ToString::to_string).collect();
                        write!(f, " with {}", subs.join(", "))
                    }
                    Some(FileContent::IstioOperatorFromSnapshot { object, key }) => {
                        write!(f, " (file from snapshot of {object} key {key})")
                    }
                    _ => Ok(()),
                }
            }
            Action::EditConfig {
                cluster,
                object,
                key,
                edits,
                substitutions,
            } => {
                let text: Vec<String> = edits.iter().map(ToString::to_string).collect();
                write!(f, "edit {object} key {key} @{cluster}: {}", text.join("; "))?;
                if !substitutions.is_empty() {
                    let subs: Vec<String> = substitutions.iter().map(ToString::to_string).collect();
                    write!(f, " with {}", subs.join(", "))?;
                }
                Ok(())
            }
            Action::Local { op } => write!(f, "local {op}"),
            Action::Probe {
                cluster,
                job,
                requests,
                expect,
                ..
            } => {
                write!(f, "probe {job} @{cluster}: {requests} requests, expect")?;
                if expect.all_answered {
                    write!(f, " all answered,")?;
                }
                write!(f, " answers from >= {} cluster(s)", expect.min_clusters)?;
                if !expect.not_from.is_empty() {
                    write!(f, ", none from {}", expect.not_from.join(", "))?;
                }
                Ok(())
            }
            Action::Check { cluster, check } => match (cluster, check) {
                (Some(c), _) => write!(f, "check {check} @{c}"),
                (None, Check::Gate { .. }) => write!(f, "check {check}"),
                (None, _) => write!(f, "check {check} (local)"),
            },
            Action::Snapshot { cluster, object } => write!(f, "snapshot {object} @{cluster}"),
            Action::Restore { cluster, object } => write!(f, "restore {object} @{cluster}"),
            Action::RestoreScale { cluster, target } => {
                write!(f, "restore-scale {target} @{cluster}")
            }
        }
    }
}

impl fmt::Display for ScaleTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaleTarget::Object(o) => write!(f, "{o}"),
            ScaleTarget::ServiceBackends(s) => write!(f, "backends of {s}"),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::DeploymentAvailable => write!(f, "available"),
            Condition::LoadBalancerAddress => write!(f, "has a LoadBalancer address"),
            Condition::Present => write!(f, "present"),
            Condition::Absent => write!(f, "absent"),
            Condition::SecretHasKeys { keys } => write!(f, "has keys {}", keys.join(",")),
            Condition::ConfigMapHasRoots {
                key,
                contains,
                lacks,
            } => {
                let paths = |v: &[PathBuf]| {
                    v.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" + ")
                };
                write!(f, "{key} contains {}", paths(contains))?;
                if !lacks.is_empty() {
                    write!(f, " and not {}", paths(lacks))?;
                }
                Ok(())
            }
            Condition::RemoteClusterSynced { remote } => write!(f, "has {remote} synced"),
            Condition::Label { key, value } => write!(f, "labelled {key}={value}"),
            Condition::JobComplete => write!(f, "complete"),
            Condition::BackendsDrained => write!(f, "backends drained"),
            Condition::BackendsAvailable => write!(f, "backends available"),
        }
    }
}

impl fmt::Display for Substitution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            RuntimeValue::LoadBalancerAddress { cluster, service } => {
                write!(f, "{} = address of {service} @{cluster}", self.placeholder)
            }
        }
    }
}

impl fmt::Display for ConfigEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigEdit::Set { path, value } => write!(f, "set {} = {value}", path.join(".")),
            ConfigEdit::Upsert {
                path,
                match_key,
                item,
            } => {
                let id = item.get(match_key).map(ToString::to_string);
                write!(
                    f,
                    "upsert {}[{match_key}={}]",
                    path.join("."),
                    id.unwrap_or_default()
                )
            }
        }
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::RemoteKubeconfig(k) => {
                write!(
                    f,
                    "remote kubeconfig of {} (context {}) from token {}",
                    k.cluster, k.context, k.token_secret
                )?;
                if let Some(server) = &k.server {
                    write!(f, ", server {server}")?;
                }
                if let Some(tls) = &k.tls_server_name {
                    write!(f, ", tls-server-name {tls}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for LocalOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        };
        match self {
            LocalOp::FetchLiveRoot {
                cluster,
                secret,
                fallback,
                dir,
            } => write!(
                f,
                "fetch live root of {cluster} from {secret} (else {}) into {}",
                fallback.name,
                dir.display()
            ),
            LocalOp::GenerateRoot {
                algorithm,
                org,
                validity_days,
                dir,
            } => write!(
                f,
                "generate root {algorithm} O={org} {validity_days}d into {}",
                dir.display()
            ),
            LocalOp::ImportRoot { cert, key, dir } => write!(
                f,
                "import root {} (key {}) into {}",
                cert.display(),
                key.display(),
                dir.display()
            ),
            LocalOp::SignIntermediate {
                cluster,
                root_dir,
                dir,
                validity_days,
                trusted_roots,
                ..
            } => write!(
                f,
                "sign intermediate of {cluster} with {} {validity_days}d into {} (roots {})",
                root_dir.display(),
                dir.display(),
                list(trusted_roots)
            ),
            LocalOp::BundleCacerts {
                cluster,
                signer_dir,
                dir,
                trusted_roots,
            } => write!(
                f,
                "bundle cacerts of {cluster}: signer {} into {} (roots {})",
                signer_dir.display(),
                dir.display(),
                list(trusted_roots)
            ),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Reachable => write!(f, "reachable"),
            Check::KubernetesVersion { at_least } => write!(f, "kubernetes version >= {at_least}"),
            Check::InstallerVersion { program, expected } => {
                write!(f, "{program} version == {expected}")
            }
            Check::MeshPresent { istiod } => write!(f, "mesh present: {istiod} available"),
            Check::IstioVersion { istiod, expected } => {
                write!(f, "istio version of {istiod} == {expected}")
            }
            Check::CaMode {
                expected,
                ca_secret,
                cacerts,
            } => {
                let mode = match expected {
                    CaMode::SelfSigned => "self-signed",
                    CaMode::PluggedIn => "plugged-in",
                    CaMode::Any => "any",
                };
                write!(f, "ca mode {mode} ({} / {})", ca_secret.name, cacerts.name)
            }
            Check::ClusterName {
                env,
                default,
                planned,
                ..
            } => write!(
                f,
                "cluster name today (istiod {env}, default {default}) -> {planned}"
            ),
            Check::TrustDomain {
                config_map,
                expected,
            } => write!(f, "trust domain {expected} in {config_map}"),
            Check::NoMesh { istiod } => write!(f, "no mesh yet: {istiod} absent"),
            Check::WorkloadsCurrent {
                namespace,
                cluster_id,
            } => write!(
                f,
                "pods of namespace {namespace} injected as cluster {cluster_id}"
            ),
            Check::RootsShared {
                namespace,
                clusters,
            } => write!(
                f,
                "istio-ca-root-cert of namespace {namespace} shares a root across {}",
                clusters.join(", ")
            ),
            Check::Permissions { needs } => write!(
                f,
                "permissions: {} access(es) the plan needs (SelfSubjectAccessReview)",
                needs.len()
            ),
            Check::MeshInventory {
                namespace,
                installer,
                trust,
            } => match installer {
                Some(i) => write!(
                    f,
                    "mesh inventory of {namespace}: refuse ambient, an installer of record other than {i}, a CA trust {trust} cannot use; warn of multi-cluster leftovers"
                ),
                None => write!(
                    f,
                    "mesh inventory of {namespace}: refuse ambient; warn of multi-cluster leftovers"
                ),
            },
            Check::VersionSkew { clusters, .. } => {
                write!(f, "same Istio minor version across {}", clusters.join(", "))
            }
            Check::NodeLocality { region, zone } => match zone {
                Some(z) => write!(f, "node locality {region}/{z}"),
                None => write!(f, "node locality {region}"),
            },
            Check::Gate {
                groups,
                expectations,
            } => {
                let clusters: Vec<&str> = expectations
                    .clusters
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                write!(
                    f,
                    "gate: {} across {} (errors fail the step, warnings pass)",
                    groups.join(", "),
                    clusters.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectRef;

    #[test]
    fn one_line_summaries() {
        let restart = Action::Restart {
            cluster: "cluster1".into(),
            object: ObjectRef::deployment("istio-system", "istiod"),
            only_if_changed: None,
        };
        assert_eq!(
            restart.to_string(),
            "restart Deployment istio-system/istiod @cluster1"
        );
        let conditional = Action::Restart {
            cluster: "cluster1".into(),
            object: ObjectRef::deployment("istio-system", "istiod"),
            only_if_changed: Some(ObjectRef::secret(
                "istio-system",
                "istio-remote-secret-cluster2",
            )),
        };
        assert_eq!(
            conditional.to_string(),
            "restart Deployment istio-system/istiod @cluster1 if the step replaced a different Secret istio-system/istio-remote-secret-cluster2"
        );
        let wait = Action::Wait {
            cluster: "c".into(),
            object: ObjectRef::service("istio-system", "istio-eastwestgateway"),
            condition: Condition::LoadBalancerAddress,
            timeout_seconds: 330,
        };
        assert_eq!(
            wait.to_string(),
            "wait Service istio-system/istio-eastwestgateway has a LoadBalancer address @c (timeout 5m30s)"
        );
    }
}
