//! The istiod pod and what the istiod stand-in records on it: which pod serves, which one
//! answers the injection webhook, its cluster ID and environment.
//!
//! Runtime state lives on the istiod pod as annotations, so the view builder, injection and tests (and
//! `kubectl get pod -o yaml`) read it: [`ANN_CA_MODE`] (`self-signed`, `plugged-in` or
//! `failed`), [`ANN_TRUSTED_ROOTS`] (SHA-256 fingerprints, comma separated),
//! [`ANN_SIGNING_ROOT`] and [`ANN_ROOT_BUNDLE`] (the PEM bundle it distributes; public
//! certificates only). A pod keeps them until it is replaced.

use super::fields::{annotation, containers, env_of, is_ready, labels, name_of};
use super::install::ISTIO_NAMESPACE;
use crate::mesh;
use crate::store::{Store, meta_str};
use serde_json::Value;
use std::sync::Arc;

/// How the pod's CA was chosen: [`MODE_SELF_SIGNED`], [`MODE_PLUGGED_IN`] or [`MODE_FAILED`].
pub const ANN_CA_MODE: &str = "meshsim.dev/ca-mode";
/// The SHA-256 fingerprints of the roots the pod trusts, comma separated.
pub const ANN_TRUSTED_ROOTS: &str = "meshsim.dev/trusted-roots";
/// The fingerprint of the root the pod signs under.
pub const ANN_SIGNING_ROOT: &str = "meshsim.dev/signing-root";
/// The PEM bundle the pod distributes (public certificates only).
pub const ANN_ROOT_BUNDLE: &str = "meshsim.dev/root-cert-pem";
/// Why istiod could not start (with mode `failed`).
pub const ANN_CA_ERROR: &str = "meshsim.dev/ca-error";
/// The pod created or loaded `istio-ca-secret`.
pub const MODE_SELF_SIGNED: &str = "self-signed";
/// The pod uses the complete `cacerts` Secret.
pub const MODE_PLUGGED_IN: &str = "plugged-in";
/// The pod could not start its CA (see [`ANN_CA_ERROR`]).
pub const MODE_FAILED: &str = "failed";

/// The istiod pod that is serving: in `istio-system`, `app: istiod`, ready, not terminating,
/// with a CA chosen; the newest if several.
pub fn serving_istiod_pod(store: &Store) -> Option<Arc<Value>> {
    istiod_pod(store, true)
}

/// The istiod pod that answers the injection webhook: the serving one, else one that chose its
/// CA and is still starting. The sim replaces a Deployment's pods at once, where a rolling
/// update keeps the old istiod answering until the new one is ready.
pub fn webhook_istiod_pod(store: &Store) -> Option<Arc<Value>> {
    istiod_pod(store, true).or_else(|| istiod_pod(store, false))
}

/// As [`webhook_istiod_pod`], among the pods of one revision (empty: `default`), as a
/// revision's webhook reaches only its own `istiod-<rev>` Service.
pub fn webhook_istiod_pod_of(store: &Store, revision: &str) -> Option<Arc<Value>> {
    let rev = super::install::rev_label(revision);
    istiod_pod_of(store, true, Some(rev)).or_else(|| istiod_pod_of(store, false, Some(rev)))
}

fn istiod_pod(store: &Store, ready: bool) -> Option<Arc<Value>> {
    istiod_pod_of(store, ready, None)
}

fn istiod_pod_of(store: &Store, ready: bool, revision: Option<&str>) -> Option<Arc<Value>> {
    let rt = store.resolve("", "v1", "pods")?;
    store
        .list(&rt, Some(ISTIO_NAMESPACE))
        .0
        .into_iter()
        .filter(|p| {
            let l = labels(p);
            l.get("app").map(String::as_str) == Some("istiod")
                && revision.is_none_or(|r| {
                    l.get("istio.io/rev")
                        .map(String::as_str)
                        .unwrap_or("default")
                        == r
                })
                && p.pointer("/metadata/deletionTimestamp").is_none()
                && (!ready || is_ready(p))
                && matches!(
                    annotation(p, ANN_CA_MODE),
                    Some(MODE_SELF_SIGNED | MODE_PLUGGED_IN)
                )
        })
        .max_by_key(|p| {
            (
                meta_str(p, "creationTimestamp")
                    .unwrap_or_default()
                    .to_string(),
                name_of(p),
            )
        })
}

/// The `CLUSTER_ID` an istiod pod runs with (`Kubernetes` when unset).
pub fn pod_cluster_id(pod: &Value) -> String {
    istiod_env(pod, "CLUSTER_ID")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| mesh::DEFAULT_CLUSTER_ID.into())
}

/// The value of env `name` in the pod's `discovery` container.
pub(crate) fn istiod_env(pod: &Value, name: &str) -> Option<String> {
    containers(pod)
        .into_iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some("discovery"))
        .and_then(|c| env_of(c, name))
}
