//! The remote secrets an istiod before 1.31 built its clients from, kept per cluster.
//!
//! Istio before 1.31 keeps the client it built from a remote secret when that Secret changes,
//! until istiod restarts (issue 13's table). Plain data like [`super::ignored_keys`]: the
//! cluster holds it (`ClusterInner::loaded_secrets`), the istiod task records into it and
//! [`super::remote`] reads it, so the cluster state stays below the Istio stand-in.

use crate::store::meta_str;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// The data of a remote secret (cluster ID -> kubeconfig) as an istiod loaded it.
pub type SecretData = Vec<(String, Option<String>)>;

/// What each istiod before 1.31 loaded from each remote secret: (istiod pod uid, Secret uid)
/// -> the Secret's data when first seen. Kept in memory only (it holds tokens).
#[derive(Default)]
pub struct LoadedSecrets {
    loaded: Mutex<HashMap<(String, String), SecretData>>,
}

impl std::fmt::Debug for LoadedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the kubeconfigs: they carry tokens.
        f.write_str("LoadedSecrets")
    }
}

impl LoadedSecrets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), SecretData>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// istiod `pod_uid` sees `secret`: the first sight loads it; a later change is not picked
    /// up (Istio before 1.31). Entries of other (replaced) istiod pods are dropped.
    pub(crate) fn see(&self, pod_uid: &str, secret: &Value, data: impl FnOnce() -> SecretData) {
        let secret_uid = meta_str(secret, "uid").unwrap_or_default().to_string();
        let mut loaded = self.lock();
        loaded.retain(|(p, _), _| p == pod_uid);
        loaded
            .entry((pod_uid.to_string(), secret_uid))
            .or_insert_with(data);
    }

    /// What istiod `pod_uid` loaded from the Secret with `secret_uid`, if it did.
    pub(crate) fn get(&self, pod_uid: &str, secret_uid: &str) -> Option<SecretData> {
        self.lock()
            .get(&(pod_uid.to_string(), secret_uid.to_string()))
            .cloned()
    }

    /// Forgets a deleted Secret (a new one of that name is new to istiod).
    pub(crate) fn forget(&self, secret_uid: &str) {
        self.lock().retain(|(_, s), _| s != secret_uid);
    }
}
