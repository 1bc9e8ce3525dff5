//! Remote secrets (FACTS 1.6): which clusters an istiod registers from Secrets labelled
//! `istio/multiCluster=true` in `istio-system`, and whether each embedded kubeconfig really
//! works against a simulated cluster.
//!
//! The status is decided when asked (by `debug/clusterz` and the view builder), from the
//! current objects: a token Secret deleted later turns `synced` into `timeout`, as istiod's
//! informers would stop syncing. Registration order is the Secrets' creation order (then name),
//! which is the order a running istiod sees them added. A key istiod ignored as a duplicate
//! stays ignored until its Secret changes, even once the Secret that registered the ID is
//! gone: the istiod task records those keys per Secret version (`record_ignored`, into
//! the cluster's [`IgnoredKeys`]).
//!
//! Istio before 1.31 keeps the client it built from a remote secret when that Secret changes,
//! until istiod restarts (issue 13's table): such an istiod judges what it loaded
//! (`ClusterInner::loaded_secrets`), not the Secret as it is now. From 1.31 a change is picked up at once.

use super::ca::secret_data;
use super::ignored_keys::IgnoredKeys;
use super::install::ISTIO_NAMESPACE;
use super::istiod_pod::{pod_cluster_id, serving_istiod_pod};
use crate::auth::{Attributes, authorize};
use crate::cluster::ClusterSet;
use crate::mesh::{RemoteCluster, SyncStatus};
use crate::store::{Store, meta_str};
use base64::Engine;
use serde_json::Value;
use std::sync::Arc;

pub const MULTICLUSTER_LABEL: &str = "istio/multiCluster";

/// Records what the serving istiod (`istiod` pod) ignores in `secret` as it is now: the keys
/// whose cluster ID another Secret registered first.
pub(crate) fn record_ignored(
    ignored: &IgnoredKeys,
    clusters: &ClusterSet,
    store: &Store,
    istiod: &Value,
    secret: &Value,
) {
    let pod_uid = meta_str(istiod, "uid").unwrap_or_default();
    let secret_uid = meta_str(secret, "uid").unwrap_or_default();
    let own = pod_cluster_id(istiod);
    let name = format!(
        "{ISTIO_NAMESPACE}/{}",
        meta_str(secret, "name").unwrap_or_default()
    );
    // Judge this version afresh: drop what an older version had recorded.
    ignored.clear(pod_uid, secret_uid);
    let registered = registered(clusters, store, &own);
    let keys: Vec<String> = secret_data(secret)
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| {
            *id != own
                && registered
                    .iter()
                    .any(|r| r.cluster_id == *id && r.secret != name)
        })
        .collect();
    let rv = meta_str(secret, "resourceVersion").unwrap_or_default();
    ignored.record(pod_uid, secret_uid, rv, keys);
}

/// Whether a Secret is one istiod reads as a remote secret.
pub fn is_remote_secret(s: &Value) -> bool {
    meta_str(s, "namespace") == Some(ISTIO_NAMESPACE)
        && s.pointer("/metadata/labels")
            .and_then(|l| l.get(MULTICLUSTER_LABEL))
            .and_then(Value::as_str)
            == Some("true")
        && s.pointer("/metadata/deletionTimestamp").is_none()
}

/// Every cluster an istiod with `own_id` running in `store` registers, in order, with the sync
/// status of each. IDs equal to its own and IDs already registered are skipped.
pub fn registered(clusters: &ClusterSet, store: &Store, own_id: &str) -> Vec<RemoteCluster> {
    let Some(rt) = store.resolve("", "v1", "secrets") else {
        return Vec::new();
    };
    let mut secrets: Vec<Arc<Value>> = store
        .list(&rt, Some(ISTIO_NAMESPACE))
        .0
        .into_iter()
        .filter(|s| is_remote_secret(s))
        .collect();
    let istiod = serving_istiod_pod(store);
    let istiod_uid = istiod
        .as_deref()
        .and_then(|p| meta_str(p, "uid"))
        .unwrap_or_default();
    let inner = clusters
        .clusters()
        .into_iter()
        .find(|c| c.name == store.cluster_name());
    secrets.sort_by(|a, b| {
        let key = |s: &Value| {
            (
                meta_str(s, "creationTimestamp")
                    .unwrap_or_default()
                    .to_string(),
                meta_str(s, "name").unwrap_or_default().to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut out: Vec<RemoteCluster> = Vec::new();
    for s in &secrets {
        let name = meta_str(s, "name").unwrap_or_default();
        let ignored = inner
            .as_ref()
            .map(|c| c.ignored_secrets.get(istiod_uid, s))
            .unwrap_or_default();
        // Before 1.31 istiod serves from what it loaded, however the Secret changed since,
        // and a Secret it has not loaded yet registers nothing yet.
        let data = match (istiod.as_deref(), inner.as_ref()) {
            (Some(pod), Some(c)) if super::versions::keeps_stale_remote_secrets(pod) => {
                let uid = meta_str(s, "uid").unwrap_or_default();
                match c.loaded_secrets.get(istiod_uid, uid) {
                    Some(loaded) => loaded,
                    None => continue,
                }
            }
            _ => secret_data(s),
        };
        for (id, kubeconfig) in data {
            if id == own_id || ignored.contains(&id) || out.iter().any(|r| r.cluster_id == id) {
                continue;
            }
            // A kubeconfig istiod cannot even read builds no client: nothing is registered.
            let Some((target, status)) = kubeconfig.and_then(|text| check(clusters, &text)) else {
                continue;
            };
            out.push(RemoteCluster {
                cluster_id: id,
                secret: format!("{ISTIO_NAMESPACE}/{name}"),
                target,
                status,
            });
        }
    }
    out
}

/// The sim cluster a kubeconfig's current context points at, and whether istiod's informers
/// would sync through it: the server is that cluster's, the CA data is its CA (or TLS checks
/// are off), the cluster is up, the token authenticates there, and RBAC lets it list pods,
/// services and secrets cluster-wide.
/// `None` when the text is not a kubeconfig with a current context.
pub fn check(clusters: &ClusterSet, kubeconfig: &str) -> Option<(Option<String>, SyncStatus)> {
    let kc = Kubeconfig::parse(kubeconfig)?;
    Some(judge(clusters, kc))
}

fn judge(clusters: &ClusterSet, kc: Kubeconfig) -> (Option<String>, SyncStatus) {
    let server = kc.server.trim_end_matches('/');
    let Some(inner) = clusters.clusters().into_iter().find(|c| {
        let url = format!("https://127.0.0.1:{}", c.port);
        let local = format!("https://localhost:{}", c.port);
        server == url || server == local
    }) else {
        return (None, SyncStatus::Timeout);
    };
    let target = Some(inner.name.clone());
    let ca_ok = kc.insecure
        || kc
            .ca_pem
            .as_deref()
            .is_some_and(|ca| ca.trim() == inner.tls.ca_pem.trim());
    if !ca_ok || inner.faults.is_down() {
        return (target, SyncStatus::Timeout);
    }
    let Some(token) = kc.token else {
        return (target, SyncStatus::Timeout);
    };
    let header = format!("Bearer {token}");
    let Some(who) = inner.auth.authenticate(Some(&header), &inner.store) else {
        return (target, SyncStatus::Timeout);
    };
    let can_list = |resource: &str| {
        authorize(
            &inner.store,
            &who,
            &Attributes {
                verb: "list",
                group: "",
                resource,
                subresource: None,
                namespace: None,
                name: None,
            },
        )
    };
    if ["pods", "services", "secrets"].iter().all(|r| can_list(r)) {
        (target, SyncStatus::Synced)
    } else {
        (target, SyncStatus::Timeout)
    }
}

/// What istiod uses from a kubeconfig (its current context).
struct Kubeconfig {
    server: String,
    ca_pem: Option<String>,
    insecure: bool,
    token: Option<String>,
}

impl Kubeconfig {
    fn parse(text: &str) -> Option<Kubeconfig> {
        let doc: Value = serde_yaml::from_str(text).ok()?;
        let named = |list: &str, name: &str, field: &str| -> Option<Value> {
            doc.get(list)?
                .as_array()?
                .iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(name))?
                .get(field)
                .cloned()
        };
        let current = doc.get("current-context")?.as_str()?;
        let context = named("contexts", current, "context")?;
        let cluster = named("clusters", context.get("cluster")?.as_str()?, "cluster")?;
        let user = context
            .get("user")
            .and_then(Value::as_str)
            .and_then(|u| named("users", u, "user"));
        let ca_pem = cluster
            .get("certificate-authority-data")
            .and_then(Value::as_str)
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .and_then(|b| String::from_utf8(b).ok());
        Some(Kubeconfig {
            server: cluster.get("server")?.as_str()?.to_string(),
            ca_pem,
            insecure: cluster
                .get("insecure-skip-tls-verify")
                .and_then(Value::as_bool)
                == Some(true),
            token: user
                .as_ref()
                .and_then(|u| u.get("token"))
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

/// `debug/clusterz` rows (the real JSON field names): the istiod's own cluster first, then its
/// registered remotes.
pub fn clusterz(own_id: &str, remotes: &[RemoteCluster]) -> Value {
    let status = |s: SyncStatus| match s {
        SyncStatus::Synced => "synced",
        SyncStatus::Syncing => "syncing",
        SyncStatus::Timeout => "timeout",
        SyncStatus::Closed => "closed",
    };
    let mut rows =
        vec![serde_json::json!({"ID": own_id, "SecretName": "", "SyncStatus": "synced"})];
    rows.extend(remotes.iter().map(|r| {
        serde_json::json!({"ID": r.cluster_id, "SecretName": r.secret, "SyncStatus": status(r.status)})
    }));
    Value::Array(rows)
}
