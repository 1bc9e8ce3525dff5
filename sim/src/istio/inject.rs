//! Sidecar injection at pod creation, as Istio's webhook does it (FACTS 4.1, 7, 9 items 7-9).
//!
//! A pod is injected when one of the cluster's injector webhooks (a MutatingWebhookConfiguration
//! whose webhook is named `*sidecar-injector.istio.io`: `istio-sidecar-injector`, a revision's
//! `istio-sidecar-injector-<rev>`, or a revision tag's `istio-revision-tag-<tag>`) selects the
//! pod's namespace (or the pod is labelled `sidecar.istio.io/inject: "true"` and the default
//! webhook exists), and an istiod of that webhook's revision serves it (its own, or for a
//! primary-remote remote the primary that `remotePilotAddress` reaches); never when that label
//! or annotation is `"false"`. The revision is the webhook's `istio.io/rev` label, else its
//! service's name (`istiod-<rev>`). What is baked in stays until the pod is replaced:
//! - `istio-proxy` env `ISTIO_META_CLUSTER_ID`, `ISTIO_META_NETWORK` (when non-empty),
//!   `ISTIO_META_MESH_ID`, from the serving istiod's `istio-sidecar-injector` values of that
//!   moment, overridden by the webhook's injection path (`/inject/cluster/<id>/net/<net>`);
//! - Istio's `sidecar.istio.io/status` annotation and `security.istio.io/tlsMode` label;
//! - the proxy's trust: annotations [`ANN_PROXY_TRUSTED_ROOTS`], [`ANN_PROXY_CERT_ROOT`],
//!   [`ANN_PROXY_TRUST_DOMAIN`] (the serving istiod's bundle, signing root and trust domain).

use super::install::ISTIO_NAMESPACE;
use super::install::revisioned;
use super::istiod_pod::{
    ANN_SIGNING_ROOT, ANN_TRUSTED_ROOTS, webhook_istiod_pod, webhook_istiod_pod_of,
};
use super::view::{
    ANN_PROXY_CERT_ROOT, ANN_PROXY_TRUST_DOMAIN, ANN_PROXY_TRUSTED_ROOTS, ANN_SIDECAR_STATUS,
    build_view, injection_envs, injection_path, trust_domain,
};
use crate::cluster::ClusterSet;
use crate::mesh;
use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::{Admission, Store, meta_str};
use serde_json::{Value, json};

pub const INJECT_LABEL: &str = "sidecar.istio.io/inject";

/// The admission hook of one cluster.
pub struct Injector {
    cluster: String,
    clusters: ClusterSet,
}

impl Injector {
    pub fn new(cluster: &str, clusters: &ClusterSet) -> Self {
        Injector {
            cluster: cluster.to_string(),
            clusters: clusters.clone(),
        }
    }
}

impl Admission for Injector {
    fn admit_create(&self, rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
        if !rt.group.is_empty() || rt.resource != "pods" {
            return Ok(());
        }
        let Some(store) = self.clusters.get(&self.cluster) else {
            return Ok(());
        };
        super::istiod::on_pod_create(store, obj);
        let Some(revision) = wants_injection(store, obj) else {
            return Ok(());
        };
        if let Some(proxy) = serving_revision(&self.clusters, &self.cluster, store, &revision) {
            inject(obj, &proxy);
        }
        Ok(())
    }
}

/// The revision (empty: default) whose webhook injects this pod, or None.
fn wants_injection(store: &Store, pod: &Value) -> Option<String> {
    let flag = |path: &str| -> Option<&str> {
        pod.pointer(path)
            .and_then(|m| m.get(INJECT_LABEL))
            .and_then(Value::as_str)
    };
    let label = flag("/metadata/labels");
    if label == Some("false") || flag("/metadata/annotations") == Some("false") {
        return None;
    }
    if pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANN_SIDECAR_STATUS))
        .is_some()
        || pod.pointer("/spec/hostNetwork") == Some(&Value::Bool(true))
        || pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        return None;
    }
    let hooks = injector_webhooks(store);
    let namespace = meta_str(pod, "namespace")
        .and_then(|ns| {
            let rt = store.resolve("", "v1", "namespaces")?;
            store.get_arc(&rt, None, ns).ok()
        })
        .map(|ns| (*ns).clone())
        .unwrap_or(Value::Null);
    for (revision, webhook) in &hooks {
        let selects = |field: &str, obj: &Value| {
            webhook.get(field).is_none_or(|sel| {
                crate::selector::LabelSelector::from_label_selector_json(sel)
                    .is_ok_and(|s| s.matches_object(obj))
            })
        };
        if selects("namespaceSelector", &namespace) && selects("objectSelector", pod) {
            return Some(revision.clone());
        }
    }
    // `sidecar.istio.io/inject: "true"` on the pod: the default webhook injects it.
    let default_exists = hooks
        .iter()
        .any(|(_, w)| w["name"] == "namespace.sidecar-injector.istio.io");
    (label == Some("true") && default_exists).then(String::new)
}

/// Every injector webhook in the cluster with the revision it serves, by configuration name.
fn injector_webhooks(store: &Store) -> Vec<(String, Value)> {
    let Some(rt) = store.resolve(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for config in store.list(&rt, None).0 {
        let rev_label = config
            .pointer("/metadata/labels/istio.io~1rev")
            .and_then(Value::as_str)
            .map(str::to_string);
        for hook in config
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = hook.get("name").and_then(Value::as_str).unwrap_or_default();
            if !name.ends_with("sidecar-injector.istio.io") {
                continue;
            }
            let from_service = hook
                .pointer("/clientConfig/service/name")
                .and_then(Value::as_str)
                .and_then(|n| n.strip_prefix("istiod-"))
                .map(str::to_string);
            let revision = rev_label
                .clone()
                .or(from_service)
                .filter(|r| r != "default")
                .unwrap_or_default();
            out.push((revision, hook.clone()));
        }
    }
    out
}

/// What the serving istiod bakes into a proxy now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Env of `istio-proxy`, in order.
    pub env: Vec<(String, String)>,
    /// A network from the injection path also labels the pod (FACTS 4.1).
    pub network_label: Option<String>,
    pub trust_domain: String,
    pub trusted_roots: String,
    pub cert_root: String,
    pub image: String,
    /// The control plane revision that injected it (`default` for the default one).
    pub revision: String,
}

/// The injection the cluster's default webhook would do now, or `None` when no istiod serves it.
pub fn serving(clusters: &ClusterSet, cluster: &str, store: &Store) -> Option<Proxy> {
    serving_revision(clusters, cluster, store, "")
}

/// The injection the webhook of `revision` (empty: default) would do now, or `None` when no
/// istiod of that revision serves it.
pub fn serving_revision(
    clusters: &ClusterSet,
    cluster: &str,
    store: &Store,
    revision: &str,
) -> Option<Proxy> {
    // The istiod that answers the webhook, and the store it reads its config from. A cluster
    // whose only control plane is revisioned answers a default-revision pod too (the
    // pre-revision behaviour of a single istiod).
    let local = webhook_istiod_pod_of(store, revision).or_else(|| {
        revision
            .is_empty()
            .then(|| webhook_istiod_pod(store))
            .flatten()
    });
    let (pod, config): (_, &Store) = match local {
        Some(p) => (p, store),
        None => {
            let view = build_view(clusters);
            let primary = mesh::configured_by(&view, cluster).ok()?;
            let primary_store = clusters.get(&primary)?;
            (webhook_istiod_pod(primary_store)?, primary_store)
        }
    };
    let values: Value = config
        .resolve("", "v1", "configmaps")
        .and_then(|rt| {
            config
                .get_arc(
                    &rt,
                    Some(ISTIO_NAMESPACE),
                    &revisioned("istio-sidecar-injector", pod_revision(&pod)),
                )
                .ok()
        })
        .and_then(|cm| serde_json::from_str(cm.pointer("/data/values")?.as_str()?).ok())
        .unwrap_or(Value::Null);
    let value = |path: &str| {
        values
            .pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let trust_domain = trust_domain(config);
    let mut cluster_id = value("/global/multiCluster/clusterName");
    if cluster_id.is_empty() {
        cluster_id = mesh::DEFAULT_CLUSTER_ID.into();
    }
    let mut network = value("/global/network");
    let mut mesh_id = value("/global/meshID");
    if mesh_id.is_empty() {
        mesh_id = trust_domain.clone();
    }
    let mut extra = Vec::new();
    let mut network_label = None;
    for (k, v) in injection_path(store)
        .map(|p| injection_envs(&p))
        .unwrap_or_default()
    {
        match k.as_str() {
            "ISTIO_META_CLUSTER_ID" => cluster_id = v,
            "ISTIO_META_NETWORK" => {
                network = v.clone();
                network_label = Some(v);
            }
            _ => extra.push((k, v)),
        }
    }
    let mut env = vec![("ISTIO_META_CLUSTER_ID".to_string(), cluster_id)];
    if !network.is_empty() {
        env.push(("ISTIO_META_NETWORK".into(), network));
    }
    env.push(("ISTIO_META_MESH_ID".into(), mesh_id));
    env.extend(extra);
    let ann = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let tag = match value("/global/tag") {
        t if t.is_empty() => "latest".to_string(),
        t => t,
    };
    Some(Proxy {
        env,
        network_label,
        trust_domain,
        trusted_roots: ann(ANN_TRUSTED_ROOTS),
        cert_root: ann(ANN_SIGNING_ROOT),
        image: format!("docker.io/istio/proxyv2:{tag}"),
        revision: super::install::rev_label(pod_revision(&pod)).to_string(),
    })
}

/// The `istio.io/rev` label of an istiod pod, empty for the default revision.
fn pod_revision(pod: &Value) -> &str {
    match pod
        .pointer("/metadata/labels/istio.io~1rev")
        .and_then(Value::as_str)
    {
        Some("default") | None => "",
        Some(r) => r,
    }
}

/// Adds the proxy to a pod object.
pub fn inject(pod: &mut Value, proxy: &Proxy) {
    let env: Vec<Value> = proxy
        .env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let first_container = pod
        .pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let container = json!({
        "name": "istio-proxy",
        "image": proxy.image,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
        "env": env,
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "volumeMounts": [{"name": "istiod-ca-cert", "mountPath": "/var/run/secrets/istio"}],
    });
    // `sidecar.istio.io/nativeSidecar: "true"` (Istio 1.24+) asks for a native sidecar: an init
    // container with `restartPolicy: Always`, first, that the kubelet stops once the app's
    // containers end. Without it, `ENABLE_NATIVE_SIDECARS=auto` (1.27+) turns native sidecars on
    // only when every node's kubelet is 1.33 or later (`detectNativeSidecar`), never on the
    // sim's v1.32 nodes: the proxy is an ordinary container, and the pod runs until deleted.
    let native = pod
        .pointer("/metadata/annotations/sidecar.istio.io~1nativeSidecar")
        .and_then(Value::as_str)
        == Some("true");
    if native {
        let mut container = container;
        container["restartPolicy"] = json!("Always");
        let spec = &mut pod["spec"];
        if !spec["initContainers"].is_array() {
            spec["initContainers"] = json!([]);
        }
        if let Some(cs) = spec["initContainers"].as_array_mut() {
            cs.insert(0, container);
        }
    } else if let Some(cs) = pod
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
    {
        cs.push(container);
    }
    // A pod written with its status already (the sim's kubelet at once) reports the proxy too.
    if !native
        && let Some(statuses) = pod
            .pointer_mut("/status/containerStatuses")
            .and_then(Value::as_array_mut)
        && let Some(first) = statuses.first().cloned()
    {
        let mut s = first;
        s["name"] = json!("istio-proxy");
        s["image"] = json!(proxy.image);
        statuses.push(s);
    }
    let spec = &mut pod["spec"];
    if !spec["volumes"].is_array() {
        spec["volumes"] = json!([]);
    }
    if let Some(vs) = spec["volumes"].as_array_mut() {
        vs.push(json!({"name": "istiod-ca-cert", "configMap": {"name": "istio-ca-root-cert"}}));
    }
    let meta = &mut pod["metadata"];
    if !meta["annotations"].is_object() {
        meta["annotations"] = json!({});
    }
    let (init, containers) = if native {
        (json!(["istio-proxy"]), Value::Null)
    } else {
        (Value::Null, json!(["istio-proxy"]))
    };
    let status = json!({"initContainers": init, "containers": containers,
        "volumes": ["istiod-ca-cert"], "imagePullSecrets": null, "revision": proxy.revision});
    meta["annotations"][ANN_SIDECAR_STATUS] = json!(status.to_string());
    // Istio names the application container as the default for kubectl logs/exec.
    if let Some(app) = &first_container {
        for key in [
            "kubectl.kubernetes.io/default-container",
            "kubectl.kubernetes.io/default-logs-container",
        ] {
            if meta["annotations"].get(key).is_none() {
                meta["annotations"][key] = json!(app);
            }
        }
    }
    meta["annotations"][ANN_PROXY_TRUSTED_ROOTS] = json!(proxy.trusted_roots);
    meta["annotations"][ANN_PROXY_CERT_ROOT] = json!(proxy.cert_root);
    meta["annotations"][ANN_PROXY_TRUST_DOMAIN] = json!(proxy.trust_domain);
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    let canonical = meta["labels"]
        .get("app")
        .and_then(Value::as_str)
        .or_else(|| meta.get("generateName").and_then(Value::as_str))
        .or_else(|| meta.get("name").and_then(Value::as_str))
        .unwrap_or("unknown")
        .trim_end_matches('-')
        .to_string();
    let labels = &mut meta["labels"];
    labels["security.istio.io/tlsMode"] = json!("istio");
    if labels.get("service.istio.io/canonical-name").is_none() {
        labels["service.istio.io/canonical-name"] = json!(canonical);
    }
    if let Some(net) = &proxy.network_label {
        labels[mesh::NETWORK_LABEL] = json!(net);
    }
}
