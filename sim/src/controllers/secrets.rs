//! Service-account token Secrets get a token meshsim accepts as that
//! account, the cluster CA and the namespace.

use super::objects::rt;
use crate::cluster::ClusterInner;
use crate::store::{WriteOptions, meta_str};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const SA_ANNOTATION: &str = "kubernetes.io/service-account.name";

pub(super) fn reconcile(cluster: &ClusterInner, secret: &Value) {
    if secret.get("type").and_then(Value::as_str) != Some(TOKEN_TYPE)
        || secret.pointer("/data/token").is_some()
        || secret.pointer("/metadata/deletionTimestamp").is_some()
    {
        return;
    }
    let Some(sa_name) = secret
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SA_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return;
    };
    let ns = meta_str(secret, "namespace").unwrap_or_default();
    let store = &cluster.store;
    let (Some(sa_rt), Some(secret_rt)) =
        (rt(store, "", "serviceaccounts"), rt(store, "", "secrets"))
    else {
        return;
    };
    // The account must exist; its creation brings us back (pending_for).
    let Ok(sa) = store.get_arc(&sa_rt, Some(ns), sa_name) else {
        return;
    };
    let secret_name = meta_str(secret, "name").unwrap_or_default();
    let token = cluster.auth.mint_secret_token(ns, sa_name, secret_name);
    let mut updated = secret.clone();
    if !updated.get("data").is_some_and(Value::is_object) {
        updated["data"] = json!({});
    }
    updated["data"]["token"] = json!(STANDARD.encode(token));
    updated["data"]["ca.crt"] = json!(STANDARD.encode(&cluster.tls.ca_pem));
    updated["data"]["namespace"] = json!(STANDARD.encode(ns));
    if let Some(uid) = meta_str(&sa, "uid") {
        updated["metadata"]["annotations"]["kubernetes.io/service-account.uid"] = json!(uid);
    }
    let _ = store.update(&secret_rt, updated, &WriteOptions::default());
}

/// A service account appeared: fill the token Secrets that waited for it.
pub(super) fn pending_for(cluster: &ClusterInner, ns: &str, sa_name: &str) {
    let Some(secret_rt) = rt(&cluster.store, "", "secrets") else {
        return;
    };
    let (secrets, _) = cluster.store.list(&secret_rt, Some(ns));
    for s in secrets {
        let for_sa = s
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(SA_ANNOTATION))
            .and_then(Value::as_str)
            == Some(sa_name);
        if for_sa {
            reconcile(cluster, &s);
        }
    }
}
