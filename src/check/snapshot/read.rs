//! Reading one cluster: the mesh inventory's objects, then what the rules
//! need besides. Read-only; transient errors are retried.

use super::{ClusterSnapshot, PeerSync, Reader, parse};
use crate::cluster::inventory::{self, revisions};
use crate::cluster::{Backoff, Cluster, ClusterError, PeerView, retry};
use crate::object::ObjectRef;
use serde_json::Value;
use std::collections::BTreeSet;

/// The reader ServiceAccount remote secrets use.
pub const READER_SA: &str = "istio-reader-service-account";
/// ClusterRoles of the reader start so.
const READER_ROLE_PREFIX: &str = "istio-reader";
/// Attempts of the first request, which tells a cluster that is down.
const PROBE_ATTEMPTS: u32 = 4;
/// Namespaces never counted as the mesh's.
const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Reads `cluster` with `namespace` as the control plane's namespace and
/// `revision` (none: the first istiod) as the control plane checked. A
/// cluster that cannot be read gives a snapshot with `error` set.
pub async fn read(
    cluster: &Cluster,
    namespace: &str,
    revision: Option<&str>,
    backoff: Backoff,
) -> ClusterSnapshot {
    match read_all(cluster, namespace, revision, backoff).await {
        Ok(s) => s,
        Err(e) => ClusterSnapshot {
            api_ca: cluster.ca_fingerprint().map(str::to_string),
            ..ClusterSnapshot::unreadable(&cluster.name, cluster.server(), e.to_string())
        },
    }
}

/// A list that may be forbidden (noted in `unread`) or not served (empty).
async fn list_or_note(
    cluster: &Cluster,
    backoff: Backoff,
    unread: &mut Vec<String>,
    (api_version, kind): (&str, &str),
    namespace: Option<&str>,
) -> Result<Vec<Value>, ClusterError> {
    match retry(
        backoff,
        || cluster.list(api_version, kind, namespace, None),
        |_, _| {},
    )
    .await
    {
        Ok((v, _)) => Ok(v),
        Err(ClusterError::UnknownKind { .. }) => Ok(Vec::new()),
        Err(e) if e.code() == Some(403) => {
            unread.push(format!("{kind} ({api_version})"));
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

async fn get_or_note(
    cluster: &Cluster,
    backoff: Backoff,
    unread: &mut Vec<String>,
    key: ObjectRef,
) -> Result<Option<Value>, ClusterError> {
    match retry(backoff, || cluster.get(&key), |_, _| {}).await {
        Ok((v, _)) => Ok(v),
        Err(ClusterError::UnknownKind { .. }) => Ok(None),
        Err(e) if e.code() == Some(403) => {
            unread.push(key.to_string());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn read_all(
    cluster: &Cluster,
    namespace: &str,
    revision: Option<&str>,
    backoff: Backoff,
) -> Result<ClusterSnapshot, ClusterError> {
    // One request that proves the cluster answers before the many that follow:
    // a cluster that does not answer at all is reported after a few attempts;
    // one that answers with a passing error (429, 5xx) gets every attempt.
    let probe = Backoff {
        max_attempts: backoff.max_attempts.min(PROBE_ATTEMPTS),
        ..backoff
    };
    match retry(probe, || cluster.server_version(), |_, _| {}).await {
        Err(e) if e.is_transient() && e.code().is_some() => {
            retry(backoff, || cluster.server_version(), |_, _| {}).await?;
        }
        answered => {
            answered?;
        }
    }
    let objects = inventory::read_objects(cluster, namespace, backoff, &|_, _| {}).await?;
    let mut unread = objects.unread.clone();
    let mut s = ClusterSnapshot {
        cluster: cluster.name.clone(),
        server: cluster.server().to_string(),
        api_ca: cluster.ca_fingerprint().map(str::to_string),
        inventory: Some(inventory::classify(&objects)),
        ..Default::default()
    };

    let mut istiods: Vec<_> = revisions::istiods(&objects.deployments)
        .into_iter()
        .map(parse::istiod)
        .collect();
    if let Some(rev) = revision {
        // The revision checked first, so its clusterName is the cluster's.
        istiods.sort_by_key(|i| i.revision != rev);
    }
    s.istiods = istiods;
    s.network_label = objects
        .namespace_object
        .as_ref()
        .and_then(|n| inventory::label(n, parse::NETWORK_LABEL))
        .map(str::to_string);
    s.remote_secrets = objects
        .remote_secrets
        .iter()
        .map(parse::remote_secret)
        .collect();
    s.cacerts = objects.cacerts.as_ref().map(parse::cacerts);
    s.eastwest = parse::eastwest(&objects.services);
    s.injectors = objects.webhooks.iter().flat_map(parse::injectors).collect();

    // The install's values and mesh config, of the revision checked.
    let rev = s
        .istiods
        .first()
        .map(|i| i.revision.clone())
        .unwrap_or_else(|| revisions::DEFAULT_REVISION.to_string());
    let suffixed = |base: &str| {
        if rev == revisions::DEFAULT_REVISION {
            base.to_string()
        } else {
            format!("{base}-{rev}")
        }
    };
    let config_maps = list_or_note(
        cluster,
        backoff,
        &mut unread,
        ("v1", "ConfigMap"),
        Some(namespace),
    )
    .await?;
    let config_map = |name: &str| config_maps.iter().find(|c| inventory::name(c) == name);
    if let Some(values) = config_map(&suffixed("values")) {
        s.mesh_id = parse::values_global(values, "meshID");
        s.values_network = parse::values_global(values, "network");
    }
    if let Some(mesh) = config_map(&suffixed("istio")).and_then(parse::mesh_config) {
        if s.mesh_id.is_none() {
            s.mesh_id = mesh
                .pointer("/defaultConfig/meshId")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        s.dns_capture = mesh
            .pointer("/defaultConfig/proxyMetadata/ISTIO_META_DNS_CAPTURE")
            .and_then(Value::as_str)
            == Some("true");
    }
    s.served_roots = config_map("istio-ca-root-cert")
        .and_then(|c| c.pointer("/data/root-cert.pem"))
        .and_then(Value::as_str)
        .map(parse::cert_list);

    let networking = "networking.istio.io/v1";
    s.gateways = list_or_note(cluster, backoff, &mut unread, (networking, "Gateway"), None)
        .await?
        .iter()
        .map(parse::gateway)
        .collect();
    s.destination_rules = list_or_note(
        cluster,
        backoff,
        &mut unread,
        (networking, "DestinationRule"),
        None,
    )
    .await?
    .iter()
    .map(parse::destination_rule)
    .collect();

    // The mesh's namespaces: injection asked for, or injected pods running.
    s.proxies = list_or_note(cluster, backoff, &mut unread, ("v1", "Pod"), None)
        .await?
        .iter()
        .filter_map(parse::proxy)
        .collect();
    let mut mesh: BTreeSet<String> = revisions::namespace_uses(&objects.namespaces)
        .into_iter()
        .map(|u| u.namespace)
        .collect();
    mesh.extend(s.proxies.iter().map(|p| p.namespace.clone()));
    mesh.remove(namespace);
    for system in SYSTEM_NAMESPACES {
        mesh.remove(system);
    }
    s.mesh_namespaces = mesh.into_iter().collect();
    s.services = list_or_note(cluster, backoff, &mut unread, ("v1", "Service"), None)
        .await?
        .iter()
        .map(parse::service)
        .filter(|svc| s.mesh_namespaces.contains(&svc.namespace))
        .collect();

    s.reader = read_reader(cluster, namespace, backoff, &mut unread).await?;
    match read_peers(cluster, namespace, &s, backoff).await {
        Ok(peers) => s.peers = peers,
        Err(e) => s.peers_error = Some(e),
    }
    s.unread = unread;
    Ok(s)
}

/// istiod's own account of its peers (`debug/clusterz`, through a
/// port-forward as `istioctl remote-clusters` asks it), retried like every
/// read; an answer it could not give is kept as the reason, so the peer rule
/// reports it instead of passing silently.
async fn read_peers(
    cluster: &Cluster,
    namespace: &str,
    s: &ClusterSnapshot,
    backoff: Backoff,
) -> Result<Option<Vec<PeerSync>>, String> {
    let Some(istiod) = s.istiods.first() else {
        return Ok(None);
    };
    let target = ObjectRef::deployment(namespace, &istiod.deployment);
    // One attempt is several requests (the Deployment, its pods, the port-forward, the request through it),
    // each of which may meet a passing error: twice the attempts of a single read.
    let backoff = Backoff {
        max_attempts: backoff.max_attempts.saturating_mul(2),
        ..backoff
    };
    match retry(backoff, || cluster.istiod_clusterz(&target), |_, _| {}).await {
        Ok((registry, _)) => Ok(Some(
            registry
                .ids()
                .into_iter()
                .map(|id| match registry.peer(&id) {
                    PeerView::Synced => PeerSync {
                        cluster: id,
                        status: "synced".into(),
                        pod: None,
                    },
                    PeerView::Lagging { pod, status } => PeerSync {
                        cluster: id,
                        status: status.unwrap_or_else(|| "absent".into()),
                        pod: Some(pod),
                    },
                })
                .collect(),
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The reader ServiceAccount, its ClusterRoles and the bindings between them.
async fn read_reader(
    cluster: &Cluster,
    namespace: &str,
    backoff: Backoff,
    unread: &mut Vec<String>,
) -> Result<Reader, ClusterError> {
    let rbac = "rbac.authorization.k8s.io/v1";
    let sa = ObjectRef::namespaced("v1", "ServiceAccount", namespace, READER_SA);
    let service_account = get_or_note(cluster, backoff, unread, sa).await?.is_some();
    let cluster_roles: Vec<String> =
        list_or_note(cluster, backoff, unread, (rbac, "ClusterRole"), None)
            .await?
            .iter()
            .map(inventory::name)
            .filter(|n| n.starts_with(READER_ROLE_PREFIX))
            .map(str::to_string)
            .collect();
    let bindings = list_or_note(cluster, backoff, unread, (rbac, "ClusterRoleBinding"), None)
        .await?
        .iter()
        .filter(|b| {
            let role = b
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let binds_sa = b
                .get("subjects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|s| {
                    s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                        && s.get("name").and_then(Value::as_str) == Some(READER_SA)
                        && s.get("namespace").and_then(Value::as_str) == Some(namespace)
                });
            binds_sa && cluster_roles.iter().any(|r| r == role)
        })
        .map(|b| inventory::name(b).to_string())
        .collect();
    Ok(Reader {
        service_account,
        cluster_roles,
        bindings,
    })
}
