//! The remote-secret keys a serving istiod ignored as duplicates, kept per cluster.
//!
//! Plain data: the cluster holds it (`ClusterInner::ignored_secrets`), the istiod task
//! records into it and [`super::remote`] reads it when it lists what an istiod registers.
//! It names neither, so the cluster state stays below the Istio stand-in.

use crate::store::meta_str;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// Keys each Secret had ignored as duplicates when the serving istiod saw that version of it:
/// (istiod pod uid, Secret uid) -> (Secret resourceVersion, keys).
#[derive(Debug, Default)]
pub struct IgnoredKeys {
    seen: Mutex<Seen>,
}

/// (istiod pod uid, Secret uid) -> (Secret resourceVersion, ignored keys).
type Seen = HashMap<(String, String), (String, Vec<String>)>;

impl IgnoredKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the istiod with pod uid `istiod` ignored in `secret`, if it saw this version of it.
    pub(crate) fn get(&self, istiod: &str, secret: &Value) -> Vec<String> {
        let key = (
            istiod.to_string(),
            meta_str(secret, "uid").unwrap_or_default().to_string(),
        );
        match self.lock().get(&key) {
            Some((rv, keys)) if Some(rv.as_str()) == meta_str(secret, "resourceVersion") => {
                keys.clone()
            }
            _ => Vec::new(),
        }
    }

    /// Drops what istiod `pod_uid` recorded for Secret `secret_uid` (before judging it afresh).
    pub(crate) fn clear(&self, pod_uid: &str, secret_uid: &str) {
        self.lock()
            .remove(&(pod_uid.to_string(), secret_uid.to_string()));
    }

    /// Records the keys istiod `pod_uid` ignores in version `rv` of Secret `secret_uid`.
    pub(crate) fn record(&self, pod_uid: &str, secret_uid: &str, rv: &str, keys: Vec<String>) {
        self.lock().insert(
            (pod_uid.to_string(), secret_uid.to_string()),
            (rv.to_string(), keys),
        );
    }

    /// Forgets a deleted Secret.
    pub(crate) fn forget(&self, secret_uid: &str) {
        self.lock().retain(|(_, s), _| s != secret_uid);
    }
}
