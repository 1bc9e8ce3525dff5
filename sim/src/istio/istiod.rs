//! The istiod stand-in: one task per cluster, reacting to store events of every cluster.
//!
//! What it does, as a running istiod would:
//! - When a pod of the `istiod` Deployment appears (install, rollout restart), it chooses the CA
//!   once (FACTS 3.2, 3.3): a complete `cacerts` -> plugged-in; a partial one -> the pod fails
//!   (CrashLoopBackOff with istiod's message), except that before 1.27 one without
//!   `ca-key.pem` is ignored; none -> load or create `istio-ca-secret`.
//! - Before 1.31 it keeps the client of a remote secret that changed until it restarts.
//! - While a pod serves, it writes ConfigMap `istio-ca-root-cert` (FACTS 3.4) into every
//!   namespace of its cluster and of every remote it leads (primary-remote, FACTS 7), including
//!   namespaces created later, and puts it back when changed or deleted.
//! - its monitoring port 15014 (`debug/clusterz`) is [`super::monitoring`].
//!
//! Runtime state lives on the istiod pod as annotations (see [`super::istiod_pod`]).

use super::ca::{self, CaChoice, CaMaterial};
use super::install::ISTIO_NAMESPACE;
use super::istiod_pod::{
    ANN_CA_ERROR, ANN_CA_MODE, ANN_ROOT_BUNDLE, ANN_SIGNING_ROOT, ANN_TRUSTED_ROOTS, MODE_FAILED,
    MODE_PLUGGED_IN, MODE_SELF_SIGNED, serving_istiod_pod,
};
use super::view::build_view;
use crate::cluster::ClusterInner;
use crate::mesh;
use crate::store::{EventType, Store, WatchEvent, WriteOptions, meta_str, now_rfc3339};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::broadcast;

/// The per-namespace root bundle (FACTS 3.4).
pub const ROOT_CERT_CONFIGMAP: &str = "istio-ca-root-cert";
/// Namespaces istiod leaves without `istio-ca-root-cert`.
const SKIPPED_NAMESPACES: [&str; 3] = ["kube-public", "kube-node-lease", "local-path-storage"];

enum Signal {
    /// An event, and whether it is this cluster's.
    Event(bool, Arc<WatchEvent>),
    /// Events were missed: look at everything again.
    Resync,
}

fn events_of(store: &Store, own: bool) -> BoxStream<'static, Signal> {
    stream::unfold(store.events(), move |mut rx| async move {
        match rx.recv().await {
            Ok(e) => Some((Signal::Event(own, e), rx)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some((Signal::Resync, rx)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
    .boxed()
}

/// Runs until the task is aborted.
pub(crate) async fn run(cluster: Arc<ClusterInner>) {
    let mut events = stream::select_all(
        cluster
            .all
            .iter()
            .map(|(name, s)| events_of(s, name == cluster.name)),
    );
    let mut serving = String::new();
    start_pods(&cluster);
    watch_secrets(&cluster, &mut serving, &[]);
    reconcile_root_certs(&cluster);
    while let Some(first) = events.next().await {
        // Take what is already queued, then act once.
        let mut relevant = false;
        let mut secrets = Vec::new();
        let mut signal = Some(first);
        while let Some(s) = signal {
            match s {
                Signal::Resync => {
                    start_pods(&cluster);
                    serving.clear();
                    relevant = true;
                }
                Signal::Event(own, e) => {
                    if own && is_istiod_pod(&e.object) && e.kind == EventType::Added {
                        start_pod(&cluster, &e.object);
                    }
                    if own && e.gr.resource == "secrets" && e.namespace == ISTIO_NAMESPACE {
                        let uid = meta_str(&e.object, "uid").unwrap_or_default().to_string();
                        if e.kind == EventType::Deleted {
                            cluster.ignored_secrets.forget(&uid);
                            cluster.loaded_secrets.forget(&uid);
                        } else {
                            secrets
                                .push(meta_str(&e.object, "name").unwrap_or_default().to_string());
                        }
                    }
                    relevant |= matters(&e);
                }
            }
            signal = futures_util::FutureExt::now_or_never(events.next()).flatten();
        }
        if relevant {
            watch_secrets(&cluster, &mut serving, &secrets);
            reconcile_root_certs(&cluster);
        }
    }
}

/// What the serving istiod makes of remote secrets as it sees them (FACTS 1.6): all of them
/// when it has just started (`serving` is the uid of the pod last seen serving), else the ones
/// named in `changed`.
fn watch_secrets(cluster: &ClusterInner, serving: &mut String, changed: &[String]) {
    let store = &cluster.store;
    let (Some(pod), Some(rt)) = (
        serving_istiod_pod(store),
        store.resolve("", "v1", "secrets"),
    ) else {
        serving.clear();
        return;
    };
    let uid = meta_str(&pod, "uid").unwrap_or_default();
    let mut secrets: Vec<Arc<Value>> = if uid != serving.as_str() {
        serving.clear();
        serving.push_str(uid);
        store.list(&rt, Some(ISTIO_NAMESPACE)).0
    } else {
        changed
            .iter()
            .filter_map(|n| store.get_arc(&rt, Some(ISTIO_NAMESPACE), n).ok())
            .collect()
    };
    secrets.retain(|s| super::remote::is_remote_secret(s));
    secrets.sort_by_key(|s| {
        (
            meta_str(s, "creationTimestamp")
                .unwrap_or_default()
                .to_string(),
            meta_str(s, "name").unwrap_or_default().to_string(),
        )
    });
    let stale = super::versions::keeps_stale_remote_secrets(&pod);
    for s in &secrets {
        if stale {
            cluster.loaded_secrets.see(uid, s, || ca::secret_data(s));
        }
        super::remote::record_ignored(&cluster.ignored_secrets, &cluster.all, store, &pod, s);
    }
}

/// From 1.27 an incomplete `cacerts` is fatal; before, one without `ca-key.pem` is ignored
/// and istiod falls back to self-signed (FACTS 3.1, PR #55696).
fn ignores_cacerts_without_key(version: (u32, u32, u32), cacerts: &Value) -> bool {
    if version >= (1, 27, 0) {
        return false;
    }
    let data = ca::secret_data(cacerts);
    let has = |k: &str| {
        data.iter()
            .any(|(key, v)| key == k && v.as_deref().is_some_and(|v| !v.trim().is_empty()))
    };
    !(has("ca-key.pem") || has("tls.key") || data.iter().any(|(k, _)| k == "istio-generated"))
}

/// Events that can change who gets which `istio-ca-root-cert`.
fn matters(e: &WatchEvent) -> bool {
    let system = e.namespace == ISTIO_NAMESPACE;
    match (e.gr.group.as_str(), e.gr.resource.as_str()) {
        ("", "namespaces") => true,
        ("", "configmaps") => system || meta_str(&e.object, "name") == Some(ROOT_CERT_CONFIGMAP),
        ("", "pods" | "services" | "secrets" | "serviceaccounts")
        | ("apps", "deployments")
        | ("discovery.k8s.io", "endpointslices") => system,
        ("networking.istio.io", "gateways") => true,
        ("admissionregistration.k8s.io", _) => true,
        ("rbac.authorization.k8s.io", _) => true,
        _ => false,
    }
}

fn is_istiod_pod(pod: &Value) -> bool {
    meta_str(pod, "namespace") == Some(ISTIO_NAMESPACE)
        && pod.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("istiod")
        && pod.get("kind").and_then(Value::as_str) == Some("Pod")
}

/// Istiod pods that have not chosen a CA yet (at start and after missed events).
fn start_pods(cluster: &ClusterInner) {
    let store = &cluster.store;
    let Some(rt) = store.resolve("", "v1", "pods") else {
        return;
    };
    for p in store.list(&rt, Some(ISTIO_NAMESPACE)).0 {
        if is_istiod_pod(&p) {
            start_pod(cluster, &p);
        }
    }
}

/// The CA choice a new istiod pod makes, written onto the pod.
fn start_pod(cluster: &ClusterInner, pod: &Value) {
    let ann = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
    };
    let crashed = pod
        .pointer("/status/containerStatuses/0/state/waiting")
        .is_some();
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let store = &cluster.store;
    let choice = match ann(ANN_CA_MODE) {
        None => choose_ca(store, super::versions::pod_version(pod)),
        // Chosen at creation, but a create through the API drops the status: crash it now.
        Some(MODE_FAILED) if !crashed => CaChoice::Failed(
            ann(ANN_CA_ERROR)
                .unwrap_or(ca::INCOMPLETE_BUNDLE)
                .to_string(),
        ),
        Some(_) => return,
    };
    let name = meta_str(pod, "name").unwrap_or_default().to_string();
    let Some(rt) = store.resolve("", "v1", "pods") else {
        return;
    };
    for _ in 0..10 {
        let Ok(mut current) = store.get(&rt, Some(ISTIO_NAMESPACE), &name) else {
            return;
        };
        if meta_str(&current, "uid") != meta_str(pod, "uid") {
            return;
        }
        record_choice(&mut current, &choice);
        match store.update(&rt, current, &WriteOptions::default()) {
            Err(e) if e.code == 409 => continue,
            Err(e) => {
                tracing::debug!(cluster = %cluster.name, pod = %name, error = %e, "istiod pod update failed");
                return;
            }
            Ok(_) => return,
        }
    }
}

/// Writes a CA choice onto an istiod pod object.
fn record_choice(pod: &mut Value, choice: &CaChoice) {
    if !pod["metadata"]["annotations"].is_object() {
        pod["metadata"]["annotations"] = json!({});
    }
    let ann = &mut pod["metadata"]["annotations"];
    match choice {
        CaChoice::Ready(m) => {
            ann[ANN_CA_MODE] = json!(if m.plugged_in {
                MODE_PLUGGED_IN
            } else {
                MODE_SELF_SIGNED
            });
            ann[ANN_TRUSTED_ROOTS] = json!(m.trusted_roots.join(","));
            ann[ANN_SIGNING_ROOT] = json!(m.signing_root);
            ann[ANN_ROOT_BUNDLE] = json!(m.root_bundle_pem);
        }
        CaChoice::Failed(message) => {
            ann[ANN_CA_MODE] = json!(MODE_FAILED);
            ann[ANN_CA_ERROR] = json!(message);
            pod["status"] = crashed_status(pod, message);
        }
    }
}

/// At creation (the admission hook): an istiod pod chooses its CA as it is written, so no
/// moment exists in which the newest istiod has none (the sim replaces pods at once, where a
/// rolling update would keep the old istiod answering). The task's `start_pod` covers pods
/// written without the hook.
pub(crate) fn on_pod_create(store: &Store, pod: &mut Value) {
    // Called for pods only; `kind` may not be set yet.
    let istiod = meta_str(pod, "namespace") == Some(ISTIO_NAMESPACE)
        && pod.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("istiod");
    if !istiod
        || pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(ANN_CA_MODE))
            .is_some()
    {
        return;
    }
    let choice = choose_ca(store, super::versions::pod_version(pod));
    record_choice(pod, &choice);
}

/// What a pod whose only container keeps exiting looks like.
fn crashed_status(pod: &Value, message: &str) -> Value {
    let now = now_rfc3339();
    let cond = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": now});
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({"name": c.get("name"), "image": c.get("image"), "imageID": "",
                        "ready": false, "started": false, "restartCount": 1,
                        "state": {"waiting": {"reason": "CrashLoopBackOff",
                            "message": format!("back-off 10s restarting failed container={} pod={}",
                                c.get("name").and_then(Value::as_str).unwrap_or_default(),
                                meta_str(pod, "name").unwrap_or_default())}},
                        "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                            "message": message, "startedAt": now, "finishedAt": now}}})
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "phase": "Running",
        "message": message,
        "conditions": [cond("Initialized", "True"), cond("Ready", "False"),
                       cond("ContainersReady", "False"), cond("PodScheduled", "True")],
        "startTime": now,
        "containerStatuses": containers,
    })
}

/// FACTS 3.1-3.3: `cacerts` decides when it has any signing key; otherwise `istio-ca-secret`
/// is loaded, or created with a new self-signed root for the mesh's trust domain. An istiod
/// before 1.27 (`version`) ignores a `cacerts` without `ca-key.pem`; from 1.27 it fails.
pub fn choose_ca(store: &Store, version: (u32, u32, u32)) -> CaChoice {
    let Some(secrets) = store.resolve("", "v1", "secrets") else {
        return CaChoice::Failed("failed to create an istiod CA: secrets are not served".into());
    };
    let cacerts = store
        .get_arc(&secrets, Some(ISTIO_NAMESPACE), ca::CACERTS)
        .ok()
        .filter(|c| !ignores_cacerts_without_key(version, c));
    if let Some(choice) = ca::from_cacerts(cacerts.as_deref()) {
        return choice;
    }
    for _ in 0..3 {
        if let Ok(existing) = store.get_arc(&secrets, Some(ISTIO_NAMESPACE), ca::CA_SECRET) {
            return match ca::from_ca_secret(&existing) {
                Some(m) => CaChoice::Ready(m),
                None => CaChoice::Failed(format!(
                    "failed to create an istiod CA: {} holds no usable root certificate",
                    ca::CA_SECRET
                )),
            };
        }
        let (secret, material): (Value, CaMaterial) =
            match ca::new_ca_secret(&super::view::trust_domain(store)) {
                Ok(x) => x,
                Err(e) => {
                    return CaChoice::Failed(format!(
                        "failed to create an istiod CA: generating the self-signed root: {e}"
                    ));
                }
            };
        match store.create(&secrets, secret, &WriteOptions::default()) {
            Ok(_) => return CaChoice::Ready(material),
            // Someone created it meanwhile: load theirs.
            Err(e) if e.code == 409 => continue,
            Err(e) => {
                return CaChoice::Failed(format!(
                    "failed to create an istiod CA: creating {}: {}",
                    ca::CA_SECRET,
                    e.message
                ));
            }
        }
    }
    CaChoice::Failed(format!(
        "failed to create an istiod CA: {} keeps changing",
        ca::CA_SECRET
    ))
}

/// Writes this cluster's istiod bundle into every namespace it is responsible for.
fn reconcile_root_certs(cluster: &ClusterInner) {
    let Some(pod) = serving_istiod_pod(&cluster.store) else {
        return;
    };
    let Some(bundle) = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANN_ROOT_BUNDLE))
        .and_then(Value::as_str)
    else {
        return;
    };
    write_everywhere(&cluster.store, bundle);
    if super::istiod_pod::istiod_env(&pod, "EXTERNAL_ISTIOD").as_deref() != Some("true") {
        return;
    }
    let view = build_view(&cluster.all);
    for c in &view.clusters {
        if c.name == cluster.name || c.istiod.is_some() {
            continue;
        }
        let mine = mesh::configured_by(&view, &c.name).is_ok_and(|p| p == cluster.name);
        if mine
            && mesh::leads(&view, &c.name)
            && let Some(store) = cluster.all.get(&c.name)
        {
            write_everywhere(store, bundle);
        }
    }
}

fn write_everywhere(store: &Store, bundle: &str) {
    let (Some(ns_rt), Some(cm_rt)) = (
        store.resolve("", "v1", "namespaces"),
        store.resolve("", "v1", "configmaps"),
    ) else {
        return;
    };
    for ns in store.list(&ns_rt, None).0 {
        let name = meta_str(&ns, "name").unwrap_or_default();
        if SKIPPED_NAMESPACES.contains(&name) || ns.pointer("/metadata/deletionTimestamp").is_some()
        {
            continue;
        }
        let data = json!({"root-cert.pem": bundle});
        match store.get(&cm_rt, Some(name), ROOT_CERT_CONFIGMAP) {
            Ok(cm) if cm.get("data") == Some(&data) => {}
            Ok(mut cm) => {
                cm["data"] = data;
                let _ = store.update(&cm_rt, cm, &WriteOptions::default());
            }
            Err(_) => {
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CERT_CONFIGMAP, "namespace": name,
                                 "labels": {"istio.io/config": "true"}},
                    "data": data});
                let _ = store.create(&cm_rt, cm, &WriteOptions::default());
            }
        }
    }
}
