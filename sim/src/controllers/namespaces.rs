//! Namespaces: the default service account and root CA ConfigMap on
//! creation; on deletion, their contents go, then the namespace.

use super::objects::rt;
use crate::cluster::ClusterInner;
use crate::store::{WriteOptions, meta_str};
use serde_json::{Value, json};

pub(super) fn populate(cluster: &ClusterInner, ns: &str) {
    let store = &cluster.store;
    let opts = WriteOptions::default();
    if let Some(sa) = rt(store, "", "serviceaccounts")
        && store.get_arc(&sa, Some(ns), "default").is_err()
    {
        let obj = json!({"metadata": {"name": "default", "namespace": ns}});
        let _ = store.create(&sa, obj, &opts);
    }
    if let Some(cm) = rt(store, "", "configmaps")
        && store.get_arc(&cm, Some(ns), "kube-root-ca.crt").is_err()
    {
        let obj = json!({
            "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
            "data": {"ca.crt": cluster.tls.ca_pem},
        });
        let _ = store.create(&cm, obj, &opts);
    }
}

pub(super) fn reconcile(cluster: &ClusterInner, ns: &Value) {
    if ns.pointer("/metadata/deletionTimestamp").is_none() {
        return;
    }
    let name = meta_str(ns, "name").unwrap_or_default();
    cluster.store.purge_namespace(name);
    let _ = cluster.store.finalize_namespace(name);
}

/// Something in `ns` went away: if the namespace is terminating and now empty, remove it.
pub(super) fn maybe_finalize(cluster: &ClusterInner, ns: &str) {
    let Some(ns_rt) = rt(&cluster.store, "", "namespaces") else {
        return;
    };
    let terminating = cluster
        .store
        .get_arc(&ns_rt, None, ns)
        .is_ok_and(|o| o.pointer("/metadata/deletionTimestamp").is_some());
    if terminating {
        let _ = cluster.store.finalize_namespace(ns);
    }
}
